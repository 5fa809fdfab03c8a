#!/usr/bin/env bash
# Scenario 4b, the launcher's wall-time limit: --time-limit-minutes 0.1
# (6 s) --grace 2 cuts the running tasks: SIGTERM to each process group,
# SIGKILL after the grace period to what ignored it; the cut runs are
# RUN_TIMEOUT "cut off: launcher reached its wall-time limit" and retried by
# the broker (RESTART_READY). A task whose --wall-time-minutes exceeds the
# time left is not claimed.
source "$(dirname "$0")/lib.sh"
setup_db

add_app sleeper 'sleep 300'
add_app deaf "sh -c 'trap \"\" TERM; echo deaf; sleep 300'"
add_job long sleeper --workflow wf --node-packing-count 4 >/dev/null
add_job deaf deaf --workflow wf --node-packing-count 4 >/dev/null
add_job toolong sleeper --workflow wf --node-packing-count 4 --wall-time-minutes 5 >/dev/null

t0=$(elapsed_ms)
start_launcher l1 --job-mode serial --time-limit-minutes 0.1 --grace 2 --idle-ttl 60 -v
wait_for_state long RUNNING 30
wait_for_state deaf RUNNING 30
wait_launcher "$LPID" 60
took=$(($(elapsed_ms) - t0))
log "launcher ran ${took} ms"
# not before the limit and the grace period; the upper bound only says it
# stopped by itself (wait_launcher's deadline), not how promptly
((took >= 7500)) ||
    fail "the launcher should stop after 6 s + 2 s grace, it took ${took} ms"

for t in long deaf; do
	wait_for_state $t RESTART_READY 30
	assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY" \
	    "$(transitions_of $t)" "history of $t"
	assert_contains "$(history_of $t | grep '^RUNNING->RUN_TIMEOUT')" \
	    "cut off: launcher reached its wall-time limit" "RUN_TIMEOUT message of $t"
done
# long died of the SIGTERM, deaf only of the SIGKILL after the grace period
assert_contains "$(history_of long | grep '^RUNNING->RUN_TIMEOUT')" "rc=143 " \
    "long ended by SIGTERM (128+15)"
assert_contains "$(history_of deaf | grep '^RUNNING->RUN_TIMEOUT')" "rc=137 " \
    "deaf ended by SIGKILL (128+9)"
d=$(seconds_between deaf RUNNING RUN_TIMEOUT)
fcmp "$d" '>=' 7 || fail "deaf was cut ${d}s after it started: before the grace period"
grep -q "wall-time limit" "$T/l1.log" || fail "launcher log does not mention the wall-time limit"
assert_eq READY "$(state_of toolong)" \
    "a task with --wall-time-minutes 5 is not claimed with 6 s left"
pass
