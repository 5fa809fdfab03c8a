#!/usr/bin/env bash
# Scenario 3, error handler: the app's postprocess script runs as the
# handler (COPAL_ERROR=1) of a task with --post-error-handler and decides:
# exit 0 = retry (RESTART_READY), else FAILED.
#   flaky:  fails on attempt 1, succeeds on attempt 2 -> JOB_FINISHED
#   doomed: always fails, its handler says no (exit 7) -> FAILED
#   stubborn: always fails, the handler always says retry, --max-retries 1
#             -> FAILED "retry limit reached" after attempt 2
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/post.sh" <<'SH'
echo "post stage=$COPAL_STAGE error=${COPAL_ERROR:-0} attempt=$COPAL_ATTEMPT"
if [ "${COPAL_ERROR:-}" = 1 ]; then
	exit "${HANDLER_VERDICT:-0}"
fi
exit 0
SH
add_app flaky "sh -c 'echo run attempt=\$COPAL_ATTEMPT; [ -z \"\$FAIL_ALWAYS\" ] && test \$COPAL_ATTEMPT -ge 2'" \
    --postprocess "sh $T/post.sh"

add_job flaky flaky --workflow wf --post-error-handler >/dev/null
add_job doomed flaky --workflow wf --post-error-handler --env FAIL_ALWAYS=1 \
    --env HANDLER_VERDICT=7 >/dev/null
add_job stubborn flaky --workflow wf --post-error-handler --env FAIL_ALWAYS=1 \
    --max-retries 1 >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1 -v
wait_for_state flaky JOB_FINISHED 30
wait_for_state doomed FAILED 30
wait_for_state stubborn FAILED 30
wait_launcher "$LPID" 30

# ---- flaky
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_DONE RUN_DONE->POSTPROCESSED POSTPROCESSED->JOB_FINISHED" \
    "$(transitions_of flaky)" "history of flaky"
h=$(history_of flaky)
assert_contains "$(grep '^RUN_ERROR->RESTART_READY' <<<"$h")" "handler: retry" \
    "message of the handler's verdict"
assert_contains "$(grep '^RUNNING->RUN_ERROR' <<<"$h")" " a=1 " "the error was attempt 1"
assert_contains "$(grep '^POSTPROCESSED->JOB_FINISHED' <<<"$h")" " a=2 " "finished in attempt 2"
assert_eq 2 "$(task_field flaky attempt)" "attempt of flaky"
out=$(cat "$(workdir_of flaky)/flaky.out")
assert_eq "run attempt=1
post stage=handler error=1 attempt=1
run attempt=2
post stage=postprocess error=0 attempt=2" "$out" "flaky.out (runs, handler, postprocess in order)"

# ---- doomed
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->FAILED" \
    "$(transitions_of doomed)" "history of doomed"
assert_contains "$(history_of doomed | grep '^RUN_ERROR->FAILED')" "handler returned 7" \
    "FAILED message of doomed"
assert_eq 1 "$(task_field doomed attempt)" "attempt of doomed"

# ---- stubborn
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->RESTART_READY RESTART_READY->FAILED" \
    "$(transitions_of stubborn)" "history of stubborn"
assert_contains "$(history_of stubborn | grep '^RESTART_READY->FAILED')" "retry limit reached" \
    "FAILED message of stubborn"
assert_eq 2 "$(task_field stubborn attempt)" "attempt of stubborn"
pass
