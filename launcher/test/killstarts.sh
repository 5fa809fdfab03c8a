#!/usr/bin/env bash
# Issue 13, every start recorded: a launcher SIGKILLed while the broker did
# not answer (SIGSTOP) has started tasks whose RUNNING reports were never
# committed. When its lease ends the broker hands those claims back; each
# such return is an event of the task's history (READY->READY or
# RESTART_READY->RESTART_READY, "returned ...") and its attempt counts, so
# that no (task, attempt) starts twice and the starts of a task's process
# equal its RUNNING events plus its recorded returned claims. Each task
# appends "ID ATTEMPT" to a file when it starts.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/logstart.sh" <<SH
echo "\$COPAL_TASK_ID \$COPAL_ATTEMPT" >>"$T/starts"
sleep 0.4
SH
add_app logstart "sh $T/logstart.sh"
N=40
{
	for i in $(seq 1 $N); do
		echo "{\"name\": \"k$i\", \"app\": \"logstart\", \"workflow\": \"ks\", \"node_packing_count\": 4, \"auto_timeout_retry\": true, \"max_retries\": 5}"
	done
} >"$T/tasks.jsonl"
copal job --from-file "$T/tasks.jsonl" >/dev/null || fail "tasks not created"

start_launcher a --job-mode serial --max-concurrent 4 --lease-ttl 4 \
    --idle-ttl 30 -v
A=$LPID
wait_for '[[ -f $T/starts ]] && (($(wc -l <"$T/starts") >= 8))' 30 \
    "eight tasks started"
bpid=$(cat "$DB/broker.pid")
kill -STOP "$bpid"
n0=$(wc -l <"$T/starts")
sleep 1.5
kill -KILL "$A"
wait "$A" 2>/dev/null || true
n1=$(wc -l <"$T/starts")
kill -CONT "$bpid"
log "broker stopped while the launcher started $((n1 - n0)) task(s); launcher killed"

# b must outlast a's lease: up to its TTL (4 s) after the last request of
# a's that the broker took, a report as much as a heartbeat (reports renew
# the lease), and the sweep after it
start_launcher b --job-mode serial --max-concurrent 4 --lease-ttl 4 \
    --idle-ttl 8 -v
for i in $(seq 1 $N); do
	wait_for_state k$i JOB_FINISHED 120
done
wait_launcher "$LPID" 60

dups=$(sort "$T/starts" | uniq -d)
[[ -z $dups ]] || fail "started twice with the same attempt:"$'\n'"$dups"
bad=""
returned=0
for i in $(seq 1 $N); do
	id=$(id_of k$i)
	nstart=$(awk -v id="$id" '$1 == id' "$T/starts" | wc -l)
	h=$(copal ls --history --name k$i --format json)
	nrun=$(jq '[.[0].events[] | select(.to == "RUNNING")] | length' <<<"$h")
	nret=$(jq '[.[0].events[] | select(.from == .to and (.message | startswith("returned")))] | length' <<<"$h")
	returned=$((returned + nret))
	if ((nstart > nrun + nret)); then
		bad+="k$i (id $id): $nstart start(s), $nrun RUNNING, $nret returned"$'\n'
	fi
done
log "$returned returned claim(s) recorded"
[[ -z $bad ]] || fail "starts not in the history:"$'\n'"$bad"
pass
