#!/usr/bin/env bash
# Issue 13: restarting a failed parent with `copal modify ID state
# RESTART_READY --recursive` (and the same by filter) brings its
# PARENT_KILLED descendants back to AWAITING_PARENTS, with history
# events, unless another of their parents is still failed or killed;
# they then run. --recursive with another field or state is refused and
# changes nothing.
source "$(dirname "$0")/lib.sh"
setup_db

# fails until $T/ok exists
add_app gate "sh -c 'test -f $T/ok'"
add_app ok "true"
# a -> b -> c, a -> c; e (fails too) -> d, b -> d: d keeps waiting on e
A=$(add_job a gate --workflow rr --max-retries 0)
B=$(add_job b ok --workflow rr --parents "$A")
C=$(add_job c ok --workflow rr --parents "$A" --parents "$B")
E=$(add_job e gate --workflow rr2 --max-retries 0)
D=$(add_job d ok --workflow rr --parents "$B" --parents "$E")
start_launcher l1 --job-mode serial --idle-ttl 1
wait_launcher "$LPID" 30
for n in a e; do assert_eq FAILED "$(state_of $n)" "state of $n"; done
for n in b c d; do assert_eq PARENT_KILLED "$(state_of $n)" "state of $n"; done

# bad input: refused, nothing changed
rc=0
out=$(copal modify "$A" priority 5 --recursive 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "--recursive with priority was taken: $out"
assert_contains "$out" "RESTART_READY" "--recursive refusal names the state"
rc=0
out=$(copal modify "$A" state FAILED --recursive 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "--recursive with state FAILED was taken: $out"
assert_eq FAILED "$(state_of a)" "a after refused modifies"
assert_eq PARENT_KILLED "$(state_of b)" "b after refused modifies"

touch "$T/ok"
out=$(copal modify "$A" state RESTART_READY --recursive) ||
    fail "modify --recursive failed: $out"
log "$out"
assert_eq AWAITING_PARENTS "$(state_of b)" "b after the recursive restart"
assert_eq AWAITING_PARENTS "$(state_of c)" "c after the recursive restart"
assert_eq PARENT_KILLED "$(state_of d)" "d (its parent e is still FAILED)"
h=$(transitions_of b)
assert_contains "$h" "PARENT_KILLED->RESTART_READY RESTART_READY->AWAITING_PARENTS" \
    "history of b"
msg=$(copal ls --history --name b --format json |
    jq -r '[.[0].events[] | select(.from == "PARENT_KILLED")][0].message')
assert_contains "$msg" "restarted" "b's event says why"
assert_contains "$msg" "${A:0:8}" "b's event names the parent by uuid prefix"

# by filter: the failed tasks of rr2 (e), and d follows
out=$(copal modify --wf rr2 --state FAILED state RESTART_READY --recursive) ||
    fail "modify by filter --recursive failed: $out"
log "$out"
assert_contains "$out" "changed 2" "e and d changed"
assert_eq AWAITING_PARENTS "$(state_of d)" "d after e's recursive restart"

start_launcher l2 --job-mode serial --idle-ttl 1
for n in a b c d e; do wait_for_state $n JOB_FINISHED 30; done
wait_launcher "$LPID" 30
pass
