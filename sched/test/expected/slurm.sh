#!/bin/bash
#SBATCH --job-name=copal-proj-7
#SBATCH --account=chem42
#SBATCH --partition=debug
#SBATCH --nodes=4
#SBATCH --exclusive
#SBATCH --time=90
#SBATCH --output=/home/u/proj/qsubmit/qlaunch7.out
#SBATCH --chdir=/home/u/proj

# Job copal-proj-7 (launch 7), rendered from
# /home/u/proj/job-templates/slurm.tmpl by copal submit-launch.
# Edits belong in the template: this file is written anew for each job.
# --exclusive: the launcher places tasks on whole nodes.

# Serial mode runs one launcher per node, each running the tasks of its own
# node: srun starts them as one job step with all of each node's CPUs and
# memory (and passes SIGTERM on to them).
per_node="srun --nodes=4 --ntasks=4 --ntasks-per-node=1 --cpus-per-task=${SLURM_CPUS_ON_NODE:-1} --mem=0 --kill-on-bad-exit=0"

cd /home/u/proj || exit 1
export PATH=/opt/copal/bin:$PATH
export COPAL_DB=/home/u/proj
# The batch job the launchers run in: copal records each task they start
# under it (copal ls --batch-job 7, copal ls queues).
export COPAL_BATCH_JOB_ID=7
# The job's id without a batch system (local): the pid of this shell. A
# scheduler's own ($SLURM_JOB_ID, $PBS_JOBID, $COBALT_JOBID) comes first.
export COPAL_SCHED_JOB_ID=$$
# The broker's network address (copal server status lists it), given to
# the launchers; empty when the broker listens only on the database's Unix
# socket, which only this host can use. The certificate and the token
# (tls.crt, tls.key, secret) are read from the database directory.
broker_url=tls+tcp://10.1.2.3:7555
if [ -n "$broker_url" ]; then export COPAL_BROKER_URL=$broker_url; fi

# pre-run commands here (module load ..., the environment the tasks need)

# The launcher runs in the background so that this shell can pass SIGTERM
# (scancel, qdel, the end of the wall time) and SIGINT on to it as SIGTERM:
# the launcher then stops its tasks and hands their leases back.
launcher=
signalled=
forward_signal() {
	signalled=1
	if [ -n "$launcher" ]; then kill -TERM "$launcher" 2>/dev/null; fi
}
trap forward_signal TERM INT

if [ mpi = serial ] && [ -n "$per_node" ]; then
	$per_node copal launcher --job-mode mpi --wf-filter relax --time-limit-minutes 89.00 &
else
	copal launcher --job-mode mpi --wf-filter relax --time-limit-minutes 89.00 &
fi
launcher=$!
# a signal that came before $launcher was set
if [ -n "$signalled" ]; then kill -TERM "$launcher" 2>/dev/null; fi

# `wait` returns early, with 128+signal, when a trapped signal arrives:
# wait again until the launcher itself has ended; exit with its status.
while :; do
	signalled=
	wait "$launcher"
	status=$?
	if [ -z "$signalled" ] || [ "$status" -le 128 ]; then break; fi
done
exit "$status"
