#!/usr/bin/env bash
# Issue 13, exact packing: node_packing_count p packs exactly p tasks on
# a node for any p in 1..5040, also where p does not divide 5040 (11, 32,
# 64, 128; a task used to take ceil(5040/p) of 5040 units, so 32 per node
# ran 31 at once and 11 ran 10). p + 3 tasks per count on the launcher's
# one node (serial mode): each appends "+1" and "-1" lines with its clock
# when it starts and ends; the most running at once must be exactly p.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/count.sh" <<'SH'
echo "$(date +%s.%N) 1" >>"$LOG"
sleep 1.5
echo "$(date +%s.%N) -1" >>"$LOG"
SH
add_app count "sh $T/count.sh"

# most at once from a log of (time, +1/-1) lines
peak() {
	sort -g "$1" | awk '{ n += $2; if (n > m) m = n } END { print m + 0 }'
}

for p in 11 32 64 128; do
	n=$((p + 3))
	lines=""
	for i in $(seq 1 $n); do
		lines+="{\"name\": \"p${p}_$i\", \"application\": \"count\", \"workflow\": \"pk$p\", \"node_packing_count\": $p, \"env\": {\"LOG\": \"$T/ev.$p\"}}"$'\n'
	done
	printf '%s' "$lines" >"$T/jobs.$p.jsonl"
	copal job --from-file "$T/jobs.$p.jsonl" >/dev/null ||
	    fail "creating the tasks of packing $p"
	start_launcher l$p --job-mode serial --idle-ttl 1 --wf-filter pk$p -v
	wait_launcher "$LPID" 90
	done_n=$(copal ls --wf pk$p --state JOB_FINISHED --format json | jq length)
	assert_eq "$n" "$done_n" "tasks of packing $p finished"
	got=$(peak "$T/ev.$p")
	log "node_packing_count $p: at most $got at once ($n tasks)"
	assert_eq "$p" "$got" "most tasks at once on one node with node_packing_count $p"
done
pass
