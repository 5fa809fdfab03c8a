#!/usr/bin/env bash
# Subtree kills (issue 22): copal killjob --recursive of a running task
# makes it and every unfinished descendant USER_KILLED (Balsam's tests of a
# subtree kill), its run stopped; a diamond's shared grandchild once. A
# kill without --recursive leaves the descendants PARENT_KILLED, and so
# does a failure. Unknown id: exit 3, nothing changed.
#   root (running) -> c1 -> g (also a child of c2); root -> c2
#   fails (exit 1) -> fc
#   k (not recursive) -> kc
source "$(dirname "$0")/lib.sh"
setup_db

add_app slow "sleep 300"
add_app quick "echo quick"
add_app bad "sh -c 'exit 1'"
root=$(add_job root slow --workflow wf --node-packing-count 4)
c1=$(add_job c1 quick --workflow wf --parents "$root")
c2=$(add_job c2 quick --workflow wf --parents "$root")
add_job g quick --workflow wf --parents "$c1,$c2" >/dev/null
f=$(add_job fails bad --workflow wf --node-packing-count 4)
add_job fc quick --workflow wf --parents "$f" >/dev/null
k=$(add_job k quick --workflow other)
add_job kc quick --workflow other --parents "$k" >/dev/null

rc=0
copal killjob --recursive ffffffffffff 2>"$T/err.txt" || rc=$?
assert_eq 3 "$rc" "exit code of killjob of an unknown id"
assert_eq READY "$(state_of root)" "nothing changed by the refused kill"

start_launcher l1 --job-mode serial --wf-filter wf --idle-ttl 2 --lease-ttl 3 -v
wait_for_state root RUNNING 30
wait_for_state fails FAILED 30
out=$(copal killjob --recursive "$root") || fail "killjob --recursive failed"
assert_contains "$out" "Killed 4 tasks (USER_KILLED, descendants included)" \
    "killjob's report"
copal killjob "$k" >/dev/null || fail "killjob of k failed"
for t in root c1 c2 g; do
	wait_for_state $t USER_KILLED 10
done
wait_launcher "$LPID" 40

assert_eq "CREATED->READY READY->RUNNING RUNNING->USER_KILLED" \
    "$(transitions_of root)" "history of root"
for t in c1 c2 g; do
	assert_eq "CREATED->AWAITING_PARENTS AWAITING_PARENTS->USER_KILLED" \
	    "$(transitions_of $t)" "history of $t"
	assert_contains "$(history_of $t | grep 'USER_KILLED')" \
	    "with its ancestor ${root:0:8}" "$t's kill names the subtree's root"
done
assert_eq PARENT_KILLED "$(state_of fc)" "a failure's child"
assert_eq USER_KILLED "$(state_of k)" "k"
assert_eq PARENT_KILLED "$(state_of kc)" "a child of a kill without --recursive"
# the run was stopped: the launcher logged the kill notice
grep -q "kill notice for task" "$T/l1.log" || fail "no kill notice in the launcher's log"
pass
