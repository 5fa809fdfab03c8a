#!/usr/bin/env bash
# Wall-time cuts are not failures (issue 22, Balsam retries cuts without
# limit). Three launchers of 3 s each (--time-limit-minutes 0.05):
#   ckpt: a checkpointed task that needs three allocations, with
#         --max-retries 0 and --no-auto-timeout-retry: each cut puts it
#         back (RESTART_READY, "not counted as an attempt"), the third run
#         finishes it; the checkpoint file counts the runs
#   th:   a task with a timeout handler cut by the first launcher: the
#         handler runs on the NEXT launcher (COPAL_TIMED_OUT=1, the run's
#         output there), judges the partial output good (exit 3) ->
#         JOB_FINISHED without another run
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/ckpt.sh" <<'SH'
n=$(cat progress 2>/dev/null || echo 0)
echo "run $n attempt=$COPAL_ATTEMPT"
if [ "$n" -ge 2 ]; then
	echo "sum 6"
	exit 0
fi
echo $((n + 1)) >progress
exec sleep 60
SH
cat >"$T/th.sh" <<'SH'
echo "run attempt=$COPAL_ATTEMPT"
echo "partial 42"
exec sleep 60
SH
cat >"$T/handler.sh" <<'SH'
echo "handler stage=$COPAL_STAGE timed_out=${COPAL_TIMED_OUT:-0} attempt=$COPAL_ATTEMPT"
[ "$COPAL_STAGE" = handler ] || exit 0
grep -q "partial 42" "$COPAL_TASK_NAME.out" && { echo "partial output is good"; exit 3; }
exit 1
SH
add_app ckpt "sh $T/ckpt.sh"
add_app th "sh $T/th.sh" --postprocess "sh $T/handler.sh"
add_job ckpt ckpt --workflow wf --max-retries 0 --no-auto-timeout-retry \
    --node-packing-count 2 >/dev/null
add_job th th --workflow wf --max-retries 0 --post-timeout-handler \
    --node-packing-count 2 >/dev/null

for l in 1 2 3; do
	start_launcher l$l --job-mode serial --time-limit-minutes 0.05 \
	    --grace 1 --idle-ttl 1 -v
	wait_launcher "$LPID" 40
	log "after launcher $l: ckpt $(state_of ckpt), th $(state_of th)"
	if ((l == 1)); then
		assert_eq RESTART_READY "$(state_of ckpt)" "ckpt after the first cut"
		assert_eq RESTART_READY "$(state_of th)" "th after the first cut"
	fi
done

# ---- ckpt: three runs, two cuts that are not attempts
assert_eq JOB_FINISHED "$(state_of ckpt)" "ckpt after three launchers"
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
    "$(transitions_of ckpt)" "history of ckpt"
h=$(history_of ckpt)
assert_contains "$(grep '^RUNNING->RUN_TIMEOUT' <<<"$h" | head -1)" \
    "cut off: launcher reached its wall-time limit" "cut message"
assert_contains "$h" "cut 1: not counted as an attempt" "first cut"
assert_contains "$h" "cut 2: not counted as an attempt" "second cut"
assert_not_contains "$h" "retry limit" "ckpt never reached its retry limit"
out=$(cat "$(workdir_of ckpt)/ckpt.out")
assert_contains "$out" "run 2 attempt=3" "third run"
assert_contains "$out" "sum 6" "the result"

# ---- th: cut once, its handler ran on the second launcher and finished it
assert_eq JOB_FINISHED "$(state_of th)" "th after its handler"
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY RESTART_READY->RUN_TIMEOUT RUN_TIMEOUT->JOB_FINISHED" \
    "$(transitions_of th)" "history of th"
h=$(history_of th)
assert_contains "$h" "the timeout handler runs at the next claim" "handler due"
assert_contains "$(grep '^RESTART_READY->RUN_TIMEOUT' <<<"$h")" \
    "timeout handler of the run cut off at attempt 1" "handler's claim"
assert_contains "$(grep '^RUN_TIMEOUT->JOB_FINISHED' <<<"$h")" \
    "partial output is good" "handler's verdict and output"
out=$(cat "$(workdir_of th)/th.out")
assert_eq 1 "$(grep -c '^run attempt' <<<"$out")" "th ran once"
assert_contains "$out" "handler stage=handler timed_out=1 attempt=2" \
    "the handler ran on the next launcher, told of the timeout"
grep -q "th" "$T/l2.log" || fail "second launcher log does not mention th"
pass
