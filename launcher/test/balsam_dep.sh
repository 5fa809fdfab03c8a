#!/usr/bin/env bash
# Removing and replacing a task's parents (issue 22; Balsam's dynamic
# rescue in test_dag.py): slow times out; its timeout handler adds a
# rescue task (a direct command) and makes it the only parent of slow's
# children (copal dep --replace CHILD RESCUE), then gives up on slow (exit
# 1: FAILED). The children are not PARENT_KILLED: they run after the
# rescue, with its file. c3 waits for a task of a workflow no launcher
# runs; copal dep --remove GATE c3 makes it READY and it runs.
# Bad input (not a parent, a cycle, a started task, a parent twice,
# --remove with --replace): a clear error, nothing changed.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/handler.sh" <<'SH'
[ "$COPAL_STAGE" = handler ] || exit 0
r=$(copal job --name rescue --workflow wf -q \
    --command "sh -c 'echo 7 >res.dat'") || exit 9
for c in $(cat "$CHILDREN"); do
	copal dep --replace "$c" "$r" || exit 8
done
echo "rescued by $r"
exit 1
SH
cat >"$T/child.sh" <<'SH'
echo "child sees $(cat res.dat 2>/dev/null || echo nothing)"
SH
add_app slow "sleep 30" --postprocess "sh $T/handler.sh"
add_app child "sh $T/child.sh"
slow=$(add_job slow slow --workflow wf --timeout-seconds 4 \
    --post-timeout-handler --no-auto-timeout-retry \
    --env CHILDREN="$T/children" --node-packing-count 4)
c1=$(add_job c1 child --workflow wf --parents "$slow" --input-files 'res.dat' \
    --node-packing-count 4)
c2=$(add_job c2 child --workflow wf --parents "$slow" --input-files 'res.dat' \
    --node-packing-count 4)
echo "$c1 $c2" >"$T/children"
gate=$(add_job gate child --workflow other)
c3=$(add_job c3 child --workflow wf --parents "$gate" --node-packing-count 4)
assert_eq AWAITING_PARENTS "$(state_of c3)" "c3 waits for gate"

# ---- bad input before anything runs: refused, nothing changed
h3=$(history_of c3)
if copal dep --remove "$c1" "$c3" 2>"$T/err.txt"; then
	fail "removing a dependency that does not exist was accepted"
fi
assert_contains "$(cat "$T/err.txt")" "not a parent" "not a parent"
if copal dep --replace "$gate" "$c3" 2>"$T/err.txt"; then
	fail "a cycle was accepted"
fi
assert_contains "$(cat "$T/err.txt")" "cycle" "cycle refused"
if copal dep --replace "$c3" "$gate" "$gate" 2>"$T/err.txt"; then
	fail "a parent twice was accepted"
fi
assert_contains "$(cat "$T/err.txt")" "nothing was changed" "duplicate refused"
if copal dep --remove --replace "$gate" "$c3" 2>"$T/err.txt"; then
	fail "--remove with --replace was accepted"
fi
assert_eq "$h3" "$(history_of c3)" "c3's history unchanged by refusals"
assert_eq "[]" "$(copal ls --name gate --format json | jq -c '.[0].parents')" \
    "gate has no parents after the refused cycle"
assert_eq "[\"$gate\"]" "$(copal ls --name c3 --format json | jq -c '.[0].parents')" \
    "c3's parents unchanged"

start_launcher l1 --job-mode serial --wf-filter wf --idle-ttl 2 -v
wait_for_state slow RUNNING 30
if copal dep --replace "$slow" 2>"$T/err.txt"; then
	fail "replacing the parents of a running task was accepted"
fi
assert_contains "$(cat "$T/err.txt")" "already started" "a running task refused"

# c3: its only parent removed -> READY -> runs
copal dep --remove "$gate" "$c3" >/dev/null || fail "dep --remove failed"
wait_for_state c3 JOB_FINISHED 30
for t in c1 c2; do
	wait_for_state $t JOB_FINISHED 60
done
wait_for_state slow FAILED 30
wait_launcher "$LPID" 40

assert_eq "CREATED->AWAITING_PARENTS AWAITING_PARENTS->READY READY->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
    "$(transitions_of c3)" "history of c3"
assert_contains "$(history_of c3 | grep '^AWAITING_PARENTS->READY')" \
    "parent ${gate:0:8}" "c3's release names the removed parent"
assert_contains "$(history_of c3 | grep '^AWAITING_PARENTS->READY')" \
    "removed" "c3's release says it was a removal"
assert_eq "[]" "$(copal ls --name c3 --format json | jq -c '.[0].parents')" \
    "c3 has no parents"
assert_eq "READY" "$(state_of gate)" "gate untouched"

rescue=$(uuid_of rescue)
assert_eq JOB_FINISHED "$(state_of rescue)" "the rescue ran"
for t in c1 c2; do
	assert_eq "child sees 7" "$(cat "$(workdir_of $t)/$t.out")" "$t's data"
	assert_eq "[\"$rescue\"]" \
	    "$(copal ls --name $t --format json | jq -c '.[0].parents')" \
	    "$t's parent is the rescue"
	h=$(history_of $t)
	assert_contains "$h" "AWAITING_PARENTS->AWAITING_PARENTS" "$t: an event for the change"
	assert_contains "$h" "parent ${slow:0:8}" "$t: the removed parent named"
	assert_contains "$h" "parents replaced: ${rescue:0:8}" "$t: the new parents"
	assert_not_contains "$h" "PARENT_KILLED" "$t was not killed with slow"
done
assert_contains "$(history_of slow | grep '^RUN_TIMEOUT->FAILED')" \
    "rescued by $rescue" "slow's handler output"
pass
