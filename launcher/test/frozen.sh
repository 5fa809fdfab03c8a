#!/usr/bin/env bash
# Issue 13, a frozen launcher: SIGSTOP longer than the lease's TTL while
# tasks run and more wait in its local backlog, then SIGCONT. The broker
# has expired the lease meanwhile, so the launcher must start nothing until
# the broker confirms its lease (here: it learns that the lease is gone,
# drops what it held and claims anew), and the frozen time is not idle
# time: it stays to run the work that remains.
# Each task appends "ID ATTEMPT" to a file when it starts: every start must
# be in the history as a RUNNING of that attempt.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/logstart.sh" <<SH
echo "\$COPAL_TASK_ID \$COPAL_ATTEMPT" >>"$T/starts"
sleep 3
SH
add_app logstart "sh $T/logstart.sh"
N=12
for i in $(seq 1 $N); do
	add_job f$i logstart --workflow frozen --node-packing-count 4 \
	    --auto-timeout-retry --max-retries 5 >/dev/null
done

start_launcher a --job-mode serial --max-concurrent 4 --lease-ttl 2 \
    --idle-ttl 3 -v
A=$LPID
wait_for '[[ -f $T/starts ]] && (($(wc -l <"$T/starts") >= 4))' 30 \
    "four tasks started"
kill -STOP "$A" || fail "launcher a (pid $A) is gone: $(tail -5 "$T/a.log")"
log "launcher a (pid $A) stopped"
# the broker expires the 2 s lease and takes its tasks back
wait_for '[[ $(copal ls --workflow frozen --format csv | grep -c RESTART_READY) -ge 1 ]]' 60 \
    "the broker took the frozen launcher's tasks back"
sleep 2
kill -CONT "$A"
log "launcher a continued"
for i in $(seq 1 $N); do
	wait_for_state f$i JOB_FINISHED 90
done
# still there (not gone "idle" with work left): it ran the rest
assert_not_contains "$(cat "$T/a.log")" "idle for 3 s: done" \
    "launcher a left while work remained"
wait_launcher "$A" 60

# every start of a task's process is a RUNNING of that attempt
bad=""
for i in $(seq 1 $N); do
	id=$(id_of f$i)
	started=$(awk -v id="$id" '$1 == id { print $2 }' "$T/starts" | sort | paste -sd' ')
	running=$(copal ls --history --name f$i --format json |
	    jq -r '[.[0].events[] | select(.to == "RUNNING") | .attempt | tostring] | sort | join(" ")')
	if [[ "$started" != "$running" ]]; then
		bad+="f$i (id $id): started attempts [$started], RUNNING events [$running]"$'\n'
	fi
done
[[ -z $bad ]] || fail "starts not in the history:"$'\n'"$bad"
assert_contains "$(cat "$T/a.log")" "confirming lease" "the stall noticed"
pass
