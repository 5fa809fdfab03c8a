#!/usr/bin/env bash
# Issue 13, transient errors are transient: the database's disk is full for
# a while during a campaign. The broker cannot commit reports or lease
# renewals meanwhile; the launcher keeps its reports and its lease and sends
# them again (the same request), so that afterwards no report is lost, no
# task was killed for a "lost lease", and every start of a task's process
# (each appends "ID ATTEMPT" to a file) is a RUNNING in the history.
# The database lives on a small tmpfs of its own: mounting it needs root
# (skipped, 77, otherwise).
source "$(dirname "$0")/lib.sh"
if (($(id -u) != 0)); then
	log "SKIP: mounting a small tmpfs needs root"
	exit 77
fi
MNT=$(mktemp -d /tmp/copal-lt-diskfull-fs.XXXXXX)
mount -t tmpfs -o size=48m tmpfs "$MNT" || { log "SKIP: cannot mount a tmpfs"; rmdir "$MNT"; exit 77; }
# unmounted by the EXIT trap, once the broker has stopped (a watcher
# process could be killed with the test's process group and leave it)
CLEANUP_LAST+=("umount -l '$MNT' && rmdir '$MNT'")
DB=$MNT/db
setup_db

cat >"$T/logstart.sh" <<SH
echo "\$COPAL_TASK_ID \$COPAL_ATTEMPT" >>"$T/starts"
sleep 0.3
SH
add_app logstart "sh $T/logstart.sh"
N=60
for i in $(seq 1 $N); do
	add_job d$i logstart --workflow full --node-packing-count 4 >/dev/null
done
start_launcher a --job-mode serial --max-concurrent 4 --idle-ttl 5 -v
A=$LPID
wait_for '[[ -f $T/starts ]] && (($(wc -l <"$T/starts") >= 8))' 60 \
    "eight tasks started"
dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null || true
log "disk full ($(df -h "$MNT" | tail -1))"
sleep 8
rm -f "$MNT/filler"
log "disk free again"
for i in $(seq 1 $N); do
	wait_for_state d$i JOB_FINISHED 120
done
wait_launcher "$A" 60
log "$(grep -c 'refused: input/output\|heartbeat of lease .* not taken' "$T/a.log" || true) request(s) refused for the full disk, sent again"
assert_not_contains "$(cat "$T/a.log")" "lost" "the launcher's log"
bad=""
for i in $(seq 1 $N); do
	id=$(id_of d$i)
	started=$(awk -v id="$id" '$1 == id { print $2 }' "$T/starts" | sort | paste -sd' ')
	running=$(copal ls --history --name d$i --format json |
	    jq -r '[.[0].events[] | select(.to == "RUNNING") | .attempt | tostring] | sort | join(" ")')
	if [[ "$started" != "$running" || "$started" != 1 ]]; then
		bad+="d$i (id $id): started attempts [$started], RUNNING events [$running]"$'\n'
	fi
done
[[ -z $bad ]] || fail "starts not as in the history:"$'\n'"$bad"
pass
