#!/usr/bin/env bash
# Scenario 2, failure: a run that exits with code 3 becomes RUN_ERROR with
# "return code 3" and the end of its output in the history message, then
# FAILED (no error handler: no retry).
source "$(dirname "$0")/lib.sh"
setup_db

add_app failer "sh -c 'echo first line; echo something went wrong >&2; exit 3'"
add_app ok 'echo fine'
add_job bad failer --workflow wf >/dev/null
add_job good ok --workflow wf >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1
wait_for_state bad FAILED 30
wait_for_state good JOB_FINISHED 30
wait_launcher "$LPID" 30

assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->FAILED" \
    "$(transitions_of bad)" "history of bad"
h=$(history_of bad)
err=$(grep '^RUNNING->RUN_ERROR ' <<<"$h") || fail "no RUN_ERROR event: $h"
assert_contains "$err" "rc=3 " "return code of the RUN_ERROR event"
assert_contains "$err" "return code 3" "RUN_ERROR message"
assert_contains "$err" "first line" "output tail (stdout) in the RUN_ERROR message"
assert_contains "$err" "something went wrong" "output tail (stderr) in the RUN_ERROR message"
assert_contains "$err" " a=1 " "attempt of the RUN_ERROR event"
fin=$(grep '^RUN_ERROR->FAILED ' <<<"$h") || fail "no FAILED event: $h"
assert_contains "$fin" "no error handler" "FAILED message"
assert_eq 1 "$(task_field bad attempt)" "attempt of bad (no retry)"
assert_eq 3 "$(task_field bad return_code)" "return code of bad"
# stdout and stderr both went to the .out file
out=$(cat "$(workdir_of bad)/bad.out")
assert_eq $'first line\nsomething went wrong' "$out" "bad.out"
pass
