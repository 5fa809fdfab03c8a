#!/usr/bin/env bash
# A launcher's first request is a claim that takes its lease with it
# (ClaimRequest.new_lease): one round trip to its first tasks, and one
# request per launcher when a large allocation starts them all at once.
# Exactly one lease is granted (the comm thread asks for none of its own
# meanwhile), the tasks run under it, and the launcher gives it back.
source "$(dirname "$0")/lib.sh"
setup_db

add_app quick 'true'
for i in 1 2 3; do
	add_job f$i quick --workflow first >/dev/null
done
start_launcher a --job-mode serial --idle-ttl 1 -v
wait_launcher "$LPID" 60
for i in 1 2 3; do
	assert_eq JOB_FINISHED "$(state_of f$i)" "state of f$i"
done
logf=$T/a.log
started=$(grep 'started: ' "$logf" | head -1)
[[ $started =~ lease\ ([0-9]+)\ \(with\ the\ first\ claim\) ]] ||
	fail "the lease did not come with the first claim: $started"
lease=${BASH_REMATCH[1]}
blog=$DB/log/broker.log
ngrant=$(grep -c 'granted lease' "$blog" || true)
assert_eq 1 "$ngrant" "leases granted (broker log)"
grep -q "granted lease $lease to launcher" "$blog" ||
	fail "the broker's log does not name lease $lease"
grep -q "lease $lease released" "$blog" ||
	fail "lease $lease was not given back"
pass
