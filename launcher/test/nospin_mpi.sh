#!/usr/bin/env bash
# Issue 22, no launcher mode spins: in mpi mode the launcher sleeps while
# its task runs. Over 6 s of a 2-rank task (through mpirun) it uses less
# than 0.1 s of CPU (0.3 s in a sanitizer build: cpu_bound; utime + stime
# of the launcher's own process, from /proc/PID/stat; mpirun's own CPU is
# logged, not judged).
source "$(dirname "$0")/lib.sh"
command -v mpirun >/dev/null ||
    fail "mpirun not found: install openmpi-bin (bash scripts/deps.sh)"
# mpirun refuses to run as root without these
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
setup_db

add_app nap "sleep 8"
add_job nap nap --workflow nospin --ranks-per-node 2 >/dev/null
start_launcher a --job-mode mpi --idle-ttl 1 -v
A=$LPID
wait_for_state nap RUNNING 30
cpu() { # ticks of utime + stime
	local s
	s=$(cat "/proc/$1/stat")
	s=${s##*) }
	awk '{ print $12 + $13 }' <<<"$s"
}
hz=$(getconf CLK_TCK)
m=$(pgrep -f "^mpirun .*sleep 8" | head -1 || true)
c0=$(cpu "$A")
m0=$([[ -n $m ]] && cpu "$m" || echo 0)
sleep 6
c1=$(cpu "$A")
m1=$([[ -n $m ]] && cpu "$m" || echo 0)
log "the task's process ($m: $(tr '\0' ' ' <"/proc/$m/cmdline" 2>/dev/null | cut -c1-60)) used $(awk -v a="$m0" -v b="$m1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (b - a) / hz }') s"

used=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
log "mpi-mode launcher CPU over 6 s of a running task: $used s"
bound=$(cpu_bound 0.1)
fcmp "$used" '<' "$bound" ||
    fail "the launcher used $used s of CPU in 6 s of waiting (at most $bound)"
wait_for_state nap JOB_FINISHED 30
wait_launcher "$A" 30
pass
