#!/usr/bin/env bash
# Fast-failure relaunch (Balsam's serial mode): a run that cannot start
# (a missing program: the shell's 127), dies by a signal, or exits with a
# code of fast_fail_codes within fast_fail_seconds is started again on the
# spot, up to 3 times, each start an event in its history, then it is
# RUN_ERROR. A run that fails later, or with another code, is not; one
# that succeeds on a relaunch finishes.
source "$(dirname "$0")/lib.sh"
setup_db
sed -i 's/^fast_fail_codes = .*/fast_fail_codes = 3,7/' "$DB/copal.conf"

add_app missing /no/such/program
add_app killself "sh -c 'kill -KILL \$\$'"
add_app code3 "sh -c 'echo run; exit 3'"
add_app code4 "sh -c 'exit 4'"
# fails twice quickly, then works (a count in its working directory)
add_app flaky "sh -c 'n=\$(cat n 2>/dev/null || echo 0); echo \$((n+1)) >n; [ \$n -ge 2 ] || exit 3'"
add_app slowfail "sh -c 'sleep 1.5; exit 3'"
add_job missing missing >/dev/null
add_job killself killself >/dev/null
add_job code3 code3 >/dev/null
add_job code4 code4 >/dev/null
add_job flaky flaky >/dev/null
add_job slowfail slowfail >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1 --fast-fail-seconds 1
for t in missing killself code3 code4 slowfail; do wait_for_state $t FAILED 30; done
wait_for_state flaky JOB_FINISHED 30
wait_launcher "$LPID" 30

relaunches() { history_of "$1" | grep -c '^RUNNING->RUNNING ' || true; }
for t in missing killself code3; do
	assert_eq 3 "$(relaunches $t)" "relaunches of $t"
	assert_eq "CREATED->READY READY->RUNNING RUNNING->RUNNING RUNNING->RUNNING RUNNING->RUNNING RUNNING->RUN_ERROR RUN_ERROR->FAILED" \
	    "$(transitions_of $t)" "history of $t"
	assert_eq 1 "$(task_field $t attempt)" "$t: relaunches are not attempts"
done
h=$(history_of code3)
assert_contains "$h" "rc=3 fast failure (return code 3 after" "the failed run's code"
assert_contains "$h" "started again, 3 of 3" "the count"
assert_contains "$h" "\\nrun" "the failed run's output"
assert_contains "$(history_of killself)" "killed by signal 9" "signal"
assert_contains "$(history_of missing)" "fast failure (could not start: No such file or directory): could not start again, 3 of 3" "start"
# not a fast failure: another code, or later than the window
for t in code4 slowfail; do
	assert_eq 0 "$(relaunches $t)" "relaunches of $t"
done
# two quick failures, then a run that works
assert_eq 2 "$(relaunches flaky)" "relaunches of flaky"
assert_eq 3 "$(cat "$(workdir_of flaky)/n")" "flaky ran three times"

# the window 0 turns it off
add_job off killself >/dev/null
start_launcher l2 --job-mode serial --idle-ttl 1 --fast-fail-seconds 0
wait_for_state off FAILED 30
wait_launcher "$LPID" 30
assert_eq 0 "$(relaunches off)" "no relaunch with --fast-fail-seconds 0"

# bad options are refused
for bad in "--fast-fail-seconds -1" "--fast-fail-seconds x" \
    "--fast-fail-codes 0" "--fast-fail-codes 1,,2" "--fast-fail-codes 300"; do
	set +e
	# shellcheck disable=SC2086
	out=$(copal-launcher --db "$DB" --job-mode serial $bad 2>&1)
	rc=$?
	set -e
	assert_eq 2 "$rc" "copal-launcher $bad: $out"
done
pass
