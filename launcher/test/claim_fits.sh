#!/usr/bin/env bash
# Issue 12, claims find what fits: 100,000 runnable 4-node tasks of higher
# priority ahead of five 1-node tasks; a launcher of one node (serial
# mode, the local host) claims and runs the 1-node ones at once (a claim
# used to skip at most 4096 + 4 x max_tasks tasks that did not fit and
# gave nothing), and leaves the 4-node ones alone.
source "$(dirname "$0")/lib.sh"
setup_db

add_app ok "true"
add_app big "true"
python3 - "$T/big.jsonl" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(100000):
        f.write('{"name": "b%d", "application": "big", "workflow": "w", '
                '"num_nodes": 4, "priority": 5}\n' % i)
PY
copal job --from-file "$T/big.jsonl" >/dev/null || fail "creating the 4-node tasks"
for i in 1 2 3 4 5; do
	add_job s$i ok --workflow w >/dev/null
done
log "100000 4-node and 5 1-node tasks created"
start_launcher l1 --job-mode serial --idle-ttl 2 -v
t0=$(date +%s.%N)
for i in 1 2 3 4 5; do
	wait_for_state s$i JOB_FINISHED 20
done
t1=$(date +%s.%N)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
log "the five 1-node tasks finished $took s after the launcher started"
fcmp "$took" '<' 10 || fail "the 1-node tasks took $took s"
wait_launcher "$LPID" 60
ready=$(copal ls --by-states --format json | jq -r '[.[] | select(.state == "READY") | .count][0] // 0')
assert_eq 100000 "$ready" "4-node tasks still READY"
pass
