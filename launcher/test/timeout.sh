#!/usr/bin/env bash
# Scenario 4a, timeout and retry limit: --timeout-seconds kills the run
# (RUN_TIMEOUT "killed after timeout_seconds=N"); the broker retries it
# (--auto-timeout-retry) until --max-retries, then FAILED "retry limit
# reached". Without auto retry a timeout is final; with
# --post-timeout-handler the postprocess script (COPAL_TIMED_OUT=1) decides.
source "$(dirname "$0")/lib.sh"

copal job --help | grep -q -- '--timeout-seconds' ||
    fail "copal job has no --timeout-seconds option (the task's timeout_seconds cannot be set)"
setup_db

cat >"$T/post.sh" <<'SH'
echo "post stage=$COPAL_STAGE timeout=${COPAL_TIMED_OUT:-0} attempt=$COPAL_ATTEMPT"
exit 0
SH
add_app sleeper 'sleep 30'
add_app firstslow "sh -c 'if [ \$COPAL_ATTEMPT = 1 ]; then sleep 30; fi; echo done attempt=\$COPAL_ATTEMPT'" \
    --postprocess "sh $T/post.sh"
pack=(--node-packing-count 4 --workflow wf)
add_job slow sleeper "${pack[@]}" --timeout-seconds 1 --auto-timeout-retry --max-retries 1 >/dev/null
add_job once sleeper "${pack[@]}" --timeout-seconds 1 --no-auto-timeout-retry >/dev/null
add_job handled firstslow "${pack[@]}" --timeout-seconds 1 --post-timeout-handler \
    --no-auto-timeout-retry >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1 -v
wait_for_state slow FAILED 90
wait_for_state once FAILED 90
wait_for_state handled JOB_FINISHED 90
wait_launcher "$LPID" 60

# ---- slow: two timeouts, then the retry limit
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY RESTART_READY->FAILED" \
    "$(transitions_of slow)" "history of slow"
h=$(history_of slow)
to=$(grep '^RUNNING->RUN_TIMEOUT' <<<"$h")
assert_eq 2 "$(grep -c 'killed after timeout_seconds=1' <<<"$to")" \
    "RUN_TIMEOUT messages of slow: $to"
assert_contains "$(grep '^RUN_TIMEOUT->RESTART_READY' <<<"$h" | head -1)" "a=1 " \
    "first timeout in attempt 1"
assert_contains "$(grep '^RESTART_READY->FAILED' <<<"$h")" "retry limit reached" \
    "FAILED message of slow"
assert_eq 2 "$(task_field slow attempt)" "attempt of slow"
# not before its timeout, and long before the 30 s it would sleep (the
# upper bound is loose: a loaded machine is slow to kill and report)
d=$(seconds_between slow RUNNING RUN_TIMEOUT)
if ! fcmp "$d" '>=' 0.9 || ! fcmp "$d" '<' 15; then
	fail "slow timed out ${d}s after it started (timeout_seconds=1)"
fi

# ---- once: no auto retry
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->FAILED" \
    "$(transitions_of once)" "history of once"
assert_contains "$(history_of once | grep '^RUN_TIMEOUT->FAILED')" "no auto_timeout_retry" \
    "FAILED message of once"

# ---- handled: the timeout handler says retry, attempt 2 finishes
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_DONE RUN_DONE->POSTPROCESSED POSTPROCESSED->JOB_FINISHED" \
    "$(transitions_of handled)" "history of handled"
assert_contains "$(history_of handled | grep '^RUN_TIMEOUT->RESTART_READY')" "handler: retry" \
    "verdict of the timeout handler"
assert_eq "post stage=handler timeout=1 attempt=1
done attempt=2
post stage=postprocess timeout=0 attempt=2" "$(cat "$(workdir_of handled)/handled.out")" "handled.out"
pass
