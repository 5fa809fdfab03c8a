#!/usr/bin/env bash
# Scenario 9, MPI mode with Debian's OpenMPI (openmpi-bin, installed by
# scripts/deps.sh): a task with --ranks-per-node 2 runs through the
# default openmpi template (mpirun --oversubscribe -n 2 --host HOST:2) and
# prints one line per rank; a 1-rank task runs without mpirun. Both see
# COPAL_JOB_MODE=mpi.
source "$(dirname "$0")/lib.sh"

command -v mpirun >/dev/null ||
    fail "mpirun not found: install openmpi-bin (bash scripts/deps.sh)"
# mpirun refuses to run as root without these
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
setup_db

add_app ranks "sh -c 'echo rank=\$OMPI_COMM_WORLD_RANK size=\$OMPI_COMM_WORLD_SIZE mode=\$COPAL_JOB_MODE omp=\$OMP_NUM_THREADS'"
add_app mode 'printenv COPAL_JOB_MODE'
add_job two ranks --workflow mpi --ranks-per-node 2 --threads-per-rank 3 >/dev/null
add_job one mode --workflow mpi >/dev/null

start_launcher l1 --job-mode mpi --idle-ttl 1 -v
wait_for_state two JOB_FINISHED 60
wait_for_state one JOB_FINISHED 60
wait_launcher "$LPID" 60

out=$(cat "$(workdir_of two)/two.out")
ranks=$(grep '^rank=' <<<"$out" | sort)
assert_eq "rank=0 size=2 mode=mpi omp=3
rank=1 size=2 mode=mpi omp=3" "$ranks" "output of the 2-rank task (full output: $out)"
assert_eq mpi "$(cat "$(workdir_of one)/one.out")" "COPAL_JOB_MODE of the 1-rank task"
pass
