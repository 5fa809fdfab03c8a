#!/usr/bin/env bash
# Event-driven claims (issue 13): a launcher whose claim found nothing
# runnable has it held open by the broker, answered as soon as a task
# becomes runnable, with no fixed back-off. A chain of 100 /bin/true tasks
# finishes in under 3 s (it took 0.5 s per level with the back-off); a
# fan-in task starts within 30 ms of its last parent finishing (history
# times); an idle launcher with its claim held still ends after its idle
# time.
source "$(dirname "$0")/lib.sh"
setup_db
add_app t /bin/true
add_app nap "sleep"

# ---- chain of 100, created at once from JSON lines
{
	echo '{"name": "c0", "app": "t", "workflow": "chain", "key": "c0"}'
	for i in $(seq 1 99); do
		echo "{\"name\": \"c$i\", \"app\": \"t\", \"workflow\": \"chain\", \"key\": \"c$i\", \"parent_keys\": [\"c$((i - 1))\"]}"
	done
} >"$T/chain.jsonl"
copal job --from-file "$T/chain.jsonl" >/dev/null || fail "chain not created"
start_launcher l1 --job-mode serial --max-concurrent 4 --idle-ttl 3
wait_for_state c99 JOB_FINISHED 60
first=$(time_entered c0 RUNNING)
last=$(time_entered c99 JOB_FINISHED)
chain=$(awk -v a="$(iso_to_s "$first")" -v b="$(iso_to_s "$last")" \
    'BEGIN { printf "%.3f\n", b - a }')
log "chain of 100: ${chain} s from the first start to the last end"
fcmp "$chain" '<' 3 || fail "chain of 100 /bin/true took ${chain} s (>= 3 s)"

# ---- fan-in: three parents of different lengths, one child; the
# launcher's claim is held while they run
p1=$(add_job p1 nap --workflow fan --args 0.2)
p2=$(add_job p2 nap --workflow fan --args 0.5)
p3=$(add_job p3 nap --workflow fan --args 1)
add_job kid t --workflow fan --parents "$p1,$p2,$p3" >/dev/null
wait_for_state kid JOB_FINISHED 30
lastp=$(time_entered p3 JOB_FINISHED)
kstart=$(time_entered kid RUNNING)
fanin=$(awk -v a="$(iso_to_s "$lastp")" -v b="$(iso_to_s "$kstart")" \
    'BEGIN { printf "%.3f\n", (b - a) * 1000 }')
log "fan-in: the child started ${fanin} ms after its last parent finished"
fcmp "$fanin" '<' 30 || fail "fan-in child started ${fanin} ms after its" \
    "last parent finished (>= 30 ms)"

# ---- a task created while the claim is held starts at once
sleep 1
add_job late t --workflow late >/dev/null
t0=$(elapsed_ms)
wait_for_state late JOB_FINISHED 10
log "a task created during a held claim finished $(( $(elapsed_ms) - t0 )) ms later"

wait_launcher "$LPID" 30
pass
