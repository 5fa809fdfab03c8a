#!/usr/bin/env bash
# Scenario 11, spawn failures: a missing executable is RUN_ERROR with
# return code 127 and "not found" in the message (run directly and through
# the shell, as an app with an envscript is); a bad working directory
# ("../escape", an absolute path; the CLI refuses them in copal job, so
# they are set with copal modify) is RUN_ERROR with the reason. All end
# FAILED; the launcher keeps running and finishes a task added afterwards
# (--idle-ttl 5: a slow machine must not let it go idle first).
source "$(dirname "$0")/lib.sh"
setup_db

: >"$T/empty-envscript.sh"
add_app ghost '/nonexistent/prog-xyz --flag'
add_app ghostsh 'no-such-prog-xyz --flag' --envscript "$T/empty-envscript.sh"
add_app hello 'echo fine'
add_job ghost ghost --workflow sf >/dev/null
add_job ghostsh ghostsh --workflow sf >/dev/null

# the CLI refuses such directories at submission
if copal job --name x --app hello --workdir ../escape -q >/dev/null 2>&1; then
	fail "copal job accepted --workdir ../escape"
fi
esc=$(add_job escape hello --workflow sf --workdir ok/escape)
abs=$(add_job absolute hello --workflow sf --workdir ok/absolute)
badwd=(escape absolute)
if copal modify "$esc" workdir ../escape >/dev/null 2>&1 &&
    copal modify "$abs" workdir "$T/outside" >/dev/null 2>&1; then
	assert_eq ../escape "$(task_field escape workdir)" "workdir of escape after modify"
else
	# a CLI that refuses them in modify too leaves no way to hand them
	# to the launcher from here: those two then simply run. The
	# launcher's own check is tested by workdir_test (launcher/test).
	log "copal modify refuses bad workdirs: the launcher's check is covered by workdir_test"
	badwd=()
fi

start_launcher l1 --job-mode serial --idle-ttl 5 -v
for t in ghost ghostsh "${badwd[@]}"; do
	wait_for_state $t FAILED 20
done

for t in ghost ghostsh; do
	h=$(history_of $t)
	err=$(grep -- '->RUN_ERROR ' <<<"$h") || fail "no RUN_ERROR event for $t: $h"
	assert_contains "$err" "rc=127 " "return code of $t"
	assert_contains "$err" "return code 127" "RUN_ERROR message of $t"
	assert_contains "$err" "not found" "RUN_ERROR message of $t"
	assert_contains "$(grep -- '->FAILED ' <<<"$h")" "no error handler" "FAILED message of $t"
	assert_eq 127 "$(task_field $t return_code)" "return code of $t"
done
assert_contains "$(cat "$(workdir_of ghost)/ghost.out")" "/nonexistent/prog-xyz" "ghost.out names the program"

for t in "${badwd[@]}"; do
	h=$(history_of $t)
	err=$(grep -- '->RUN_ERROR ' <<<"$h") || fail "no RUN_ERROR event for $t: $h"
	assert_contains "$err" "working directory" "RUN_ERROR message of $t"
	assert_eq FAILED "$(state_of $t)" "state of $t"
done
if ((${#badwd[@]})); then
	assert_contains "$(history_of escape | grep -- '->RUN_ERROR ')" "../escape" \
	    "RUN_ERROR message names the directory"
fi
[[ ! -e $DB/escape && ! -e $T/outside ]] || fail "a directory outside data/ was made"

# the launcher is still there and runs more work
add_job good hello --workflow sf >/dev/null
wait_for_state good JOB_FINISHED 15
wait_launcher "$LPID" 30
assert_eq fine "$(cat "$(workdir_of good)/good.out")" "output of good"
pass
