#!/usr/bin/env bash
# Issue 13, the broker down longer than the lease TTL: kill -9 while tasks
# run, wait past the TTL (tasks finish meanwhile, their reports wait in
# the launcher), start it again. The broker's absence is not the
# launcher's fault: a live lease gets one TTL of grace after the restart,
# so the launcher's heartbeats and reports are taken, no lease is expired
# and no task that finished during the outage runs again with the same
# attempt. Each task appends "ID ATTEMPT" when it starts: every start is a
# RUNNING of that attempt, and no (task, attempt) starts twice.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/logstart.sh" <<SH
echo "\$COPAL_TASK_ID \$COPAL_ATTEMPT" >>"$T/starts"
sleep 1
SH
add_app logstart "sh $T/logstart.sh"
N=16
for i in $(seq 1 $N); do
	add_job b$i logstart --workflow down --node-packing-count 4 \
	    --auto-timeout-retry --max-retries 5 >/dev/null
done

start_launcher a --job-mode serial --max-concurrent 4 --lease-ttl 2 \
    --idle-ttl 5 -v
A=$LPID
wait_for '[[ -f $T/starts ]] && (($(wc -l <"$T/starts") >= 4))' 30 \
    "four tasks started"
bpid=$(cat "$DB/broker.pid" 2>/dev/null || true)
[[ -n $bpid ]] || bpid=$(pgrep -f "copal-broker.*$DB" | head -1)
[[ -n $bpid ]] || fail "no broker pid"
kill -KILL "$bpid"
log "broker (pid $bpid) killed with SIGKILL"
# down for twice the TTL: the running tasks end meanwhile
sleep 4
copal server start >/dev/null || fail "broker did not start again"
log "broker started again"
for i in $(seq 1 $N); do
	wait_for_state b$i JOB_FINISHED 90
done
wait_launcher "$A" 60
assert_not_contains "$(cat "$DB/log/broker.log")" "expired" \
    "a lease expired after the restart"
assert_not_contains "$(cat "$T/a.log")" "lost" "the launcher lost its lease"

dups=$(sort "$T/starts" | uniq -d)
[[ -z $dups ]] || fail "started twice with the same attempt: $dups"
bad=""
for i in $(seq 1 $N); do
	id=$(id_of b$i)
	started=$(awk -v id="$id" '$1 == id { print $2 }' "$T/starts" | sort | paste -sd' ')
	running=$(copal ls --history --name b$i --format json |
	    jq -r '[.[0].events[] | select(.to == "RUNNING") | .attempt | tostring] | sort | join(" ")')
	if [[ "$started" != "$running" ]]; then
		bad+="b$i (id $id): started attempts [$started], RUNNING events [$running]"$'\n'
	fi
done
[[ -z $bad ]] || fail "starts not in the history:"$'\n'"$bad"
pass
