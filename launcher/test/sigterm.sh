#!/usr/bin/env bash
# SIGTERM to a launcher (how a batch system ends a job before its SIGKILL)
# is a graceful end like the wall-time limit: no more claims, SIGTERM to
# every task's process group, SIGKILL after --grace; the cut runs are
# RUN_TIMEOUT ("cut off ...") and retried, the launcher exits with status 0
# and leaves no process behind. Also a --persistent launcher with nothing
# to do ends this way.
source "$(dirname "$0")/lib.sh"
setup_db

add_app sleeper 'sleep 300'
add_job long sleeper --workflow sig --node-packing-count 2 >/dev/null

start_launcher busy --job-mode serial --grace 2 --idle-ttl 60 -v
BUSY=$LPID
start_launcher idle --job-mode serial --persistent --wf-filter nothing -v
IDLE=$LPID
wait_for_state long RUNNING 30
# both have their signal handling in place once they log "started:" (a
# SIGTERM before that would simply kill them)
for l in busy idle; do
	wait_for "grep -q 'started:' '$T/$l.log'" 30 "launcher $l started"
done
kill -TERM "$BUSY" "$IDLE"
wait_launcher "$IDLE" 30
wait_launcher "$BUSY" 30
wait_for_state long RESTART_READY 30
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY" \
    "$(transitions_of long)" "history of long"
assert_contains "$(history_of long | grep '^RUNNING->RUN_TIMEOUT')" "cut off" \
    "RUN_TIMEOUT message of long"
pass
