#!/usr/bin/env bash
# Balsam's recovery pattern (its functional tests), issue 22: the error or
# timeout handler decides the task's outcome.
#   judged:   the run fails (rc 1) but its output is good; the error
#             handler exits 3 ("finished") -> JOB_FINISHED after ONE run,
#             the verdict and the handler's output in the history
#   reargs:   the run fails with --fail; the handler changes the task's
#             args with `copal modify --lease $COPAL_LEASE_ID` (allowed for
#             the lease holder's handler) and exits 0 (retry): the second
#             run sees the new args (a value starting with --)
#   tjudged:  killed by its own timeout; the timeout handler (told by
#             COPAL_TIMED_OUT=1, not the CLI's COPAL_TIMEOUT) exits 3
#   rejected: the handler exits 5 -> FAILED, "handler returned 5"
#   nolease:  `copal modify` of a held task without the lease is still
#             refused (nothing changed)
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/app.sh" <<'SH'
echo "run args=$* attempt=$COPAL_ATTEMPT"
case "$1" in
--ok) exit 0 ;;
--sleep) sleep "$2"; exit 0 ;;
esac
echo "result 42"
exit 1
SH
cat >"$T/handler.sh" <<'SH'
echo "handler stage=$COPAL_STAGE error=${COPAL_ERROR:-0} timed_out=${COPAL_TIMED_OUT:-0} timeout_env=${COPAL_TIMEOUT:-none}"
[ "$COPAL_STAGE" = handler ] || exit 0
case "$MODE" in
judge)
	grep -q "result 42" "$COPAL_TASK_NAME.out" && { echo "output is good"; exit 3; }
	exit 1 ;;
reargs)
	copal modify --lease "$COPAL_LEASE_ID" "$COPAL_TASK_UUID" args "--ok" \
	    --message "handler: new args" || exit 9
	exit 0 ;;
nolease)
	if copal modify "$COPAL_TASK_UUID" args "--ok" 2>err.txt; then
		echo "modify without the lease was accepted"
		exit 9
	fi
	exit 3 ;;
*)	exit "$MODE" ;;
esac
SH
add_app app "sh $T/app.sh" --postprocess "sh $T/handler.sh"

add_job judged app --workflow wf --post-error-handler --env MODE=judge >/dev/null
add_job reargs app --workflow wf --post-error-handler --env MODE=reargs \
    --args "--fail" >/dev/null
add_job tjudged app --workflow wf --post-timeout-handler --env MODE=judge \
    --args "--sleep 30" --timeout-seconds 1 --no-auto-timeout-retry >/dev/null
add_job rejected app --workflow wf --post-error-handler --env MODE=5 >/dev/null
add_job nolease app --workflow wf --post-error-handler --env MODE=nolease >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1 -v
wait_for_state judged JOB_FINISHED 40
wait_for_state reargs JOB_FINISHED 40
wait_for_state tjudged FAILED 40
wait_for_state rejected FAILED 40
wait_for_state nolease JOB_FINISHED 40
wait_launcher "$LPID" 30

# ---- judged: one run, finished by its handler
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->JOB_FINISHED" \
    "$(transitions_of judged)" "history of judged"
assert_eq 1 "$(task_field judged attempt)" "attempt of judged"
h=$(grep '^RUN_ERROR->JOB_FINISHED' <<<"$(history_of judged)")
assert_contains "$h" "handler: finished (exit 3)" "verdict in the history"
assert_contains "$h" "output is good" "handler's output in the history"
assert_not_contains "$h" "result 42" "the run's output is not the handler's"

# ---- reargs: the second run sees the args the handler set
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_DONE RUN_DONE->POSTPROCESSED POSTPROCESSED->JOB_FINISHED" \
    "$(transitions_of reargs)" "history of reargs"
assert_eq "--ok" "$(task_field reargs args)" "args of reargs"
out=$(cat "$(workdir_of reargs)/reargs.out")
assert_contains "$out" "run args=--fail attempt=1" "first run"
assert_contains "$out" "run args=--ok attempt=2" "second run with the new args"
assert_contains "$(history_of reargs | grep '^RUN_ERROR->RESTART_READY')" \
    "handler: retry" "verdict of reargs"

# ---- tjudged: the timeout handler ran (COPAL_TIMED_OUT) but the output
# has no "result 42": exit 1 -> FAILED; the CLI's variable is not set
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->FAILED" \
    "$(transitions_of tjudged)" "history of tjudged"
assert_contains "$(cat "$(workdir_of tjudged)/tjudged.out")" \
    "handler stage=handler error=0 timed_out=1 timeout_env=none" "timeout handler's env"

# ---- rejected
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->FAILED" \
    "$(transitions_of rejected)" "history of rejected"
assert_contains "$(history_of rejected | grep '^RUN_ERROR->FAILED')" \
    "handler returned 5" "FAILED message of rejected"

# ---- nolease: refused, nothing changed
assert_eq "" "$(task_field nolease args)" "args of nolease"
assert_contains "$(cat "$(workdir_of nolease)/err.txt")" "held by a launcher" \
    "refusal of a modify without the lease"
pass
