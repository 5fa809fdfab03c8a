#!/usr/bin/env bash
# Issue 13, tasks die with their launcher: a launcher killed with SIGKILL
# leaves no task process behind (the task's shell and what it started in
# its process group), so that a task re-run elsewhere never shares its
# working directory with a stray first run.
source "$(dirname "$0")/lib.sh"
setup_db

MARK="3000.$$$RANDOM"
cat >"$T/long.sh" <<SH
sleep $MARK
echo never
SH
add_app long "sh $T/long.sh"
for i in 1 2 3; do
	add_job o$i long --workflow orphans --node-packing-count 3 >/dev/null
done
start_launcher a --job-mode serial --lease-ttl 5 --idle-ttl 30 -v
A=$LPID
for i in 1 2 3; do
	wait_for_state o$i RUNNING 30
done
wait_for '(($(pgrep -fc "sleep $MARK" || true) == 3))' 30 "three task processes"
kill -KILL "$A"
wait "$A" 2>/dev/null || true
k0=$(elapsed_ms)
wait_for '! pgrep -f "sleep $MARK" >/dev/null' 5 "task processes gone"
took=$(($(elapsed_ms) - k0))
log "task processes gone $took ms after the launcher's SIGKILL"
((took <= 1000)) || fail "task processes outlived their launcher by $took ms"
pass
