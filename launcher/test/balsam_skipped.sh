#!/usr/bin/env bash
# Skipped stages are recorded (issue 22: Balsam's history has every stage;
# copal's launcher jumps over those with nothing to do). The event of the
# jump names the stages it passed over, in the same write:
#   plain: no stage-in, no preprocess, no postprocess
#   pre:   a preprocess only
#   full:  stage-in, preprocess and postprocess: nothing skipped
source "$(dirname "$0")/lib.sh"
setup_db

echo data >"$T/in.txt"
copal job --name plain --workflow wf -q --command true >/dev/null
copal job --name pre --workflow wf -q --command true --preprocess true >/dev/null
copal job --name full --workflow wf -q --command true --preprocess true \
    --postprocess true --stage-in-url "local:$T/in.txt" >/dev/null
start_launcher l1 --job-mode serial --idle-ttl 1 -v
for t in plain pre full; do
	wait_for_state $t JOB_FINISHED 30
done
wait_launcher "$LPID" 30

skips() { # NAME: "FROM->TO:SKIPPED,..." for each event
	copal ls --history --name "$1" --format json |
	    jq -r '[.[0].events[] | "\(.from)->\(.to):\((.skipped // []) | join(","))"] | join(" ")'
}
assert_eq "CREATED->READY: READY->RUNNING:STAGED_IN,PREPROCESSED RUNNING->RUN_DONE: RUN_DONE->JOB_FINISHED:POSTPROCESSED" \
    "$(skips plain)" "plain's skipped stages"
assert_eq "CREATED->READY: READY->PREPROCESSED:STAGED_IN PREPROCESSED->RUNNING: RUNNING->RUN_DONE: RUN_DONE->JOB_FINISHED:POSTPROCESSED" \
    "$(skips pre)" "pre's skipped stages"
assert_eq "CREATED->READY: READY->STAGED_IN: STAGED_IN->PREPROCESSED: PREPROCESSED->RUNNING: RUNNING->RUN_DONE: RUN_DONE->POSTPROCESSED: POSTPROCESSED->JOB_FINISHED:" \
    "$(skips full)" "full skipped nothing"
text=$(copal ls --history --name plain)
assert_contains "$text" "(skipped STAGED_IN, PREPROCESSED) started" \
    "the text history names the skipped stages"
pass
