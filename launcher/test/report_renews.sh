#!/usr/bin/env bash
# A launcher that reports needs no heartbeat: the broker renews the lease
# with the reports (once a third of the TTL has gone) and says for how
# long in the reply, and the launcher's next heartbeat waits another
# interval after each (while that leaves two intervals before the lease
# would end). With --lease-ttl 9 a launcher heartbeats every 2 s; through
# a stream of short tasks it sends hardly any, keeps its lease the whole
# time (nothing is lost or timed out), and goes back to heartbeats once
# idle.
source "$(dirname "$0")/lib.sh"
setup_db

add_app quick 'sleep 0.25'
N=40
for i in $(seq 1 $N); do
	add_job q$i quick --workflow renew >/dev/null
done

t0=$(elapsed_ms)
start_launcher a --job-mode serial --lease-ttl 9 --idle-ttl 2 -v
A=$LPID
wait_for_state q$N JOB_FINISHED 90
busy_ms=$(($(elapsed_ms) - t0))
wait_launcher "$A" 60

for i in $(seq 1 $N); do
	assert_eq JOB_FINISHED "$(state_of q$i)" "state of q$i"
	assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
	    "$(transitions_of q$i)" "history of q$i"
done
logf=$T/a.log
assert_not_contains "$(cat "$logf")" "lease lost" "launcher log"
done_line=$(grep 'done: ' "$logf" | tail -1)
[[ $done_line =~ ([0-9]+)\ heartbeat\(s\) ]] ||
	fail "no heartbeat count in the launcher's last line: $done_line"
hb=${BASH_REMATCH[1]}
log "$N tasks in $busy_ms ms with $hb heartbeat(s): $done_line"
# Without the renewals it would be one every 2 s of the run (the lease
# asked for, then every 2 s), idle tail included. With them: the lease
# asked for, and the idle tail's (2 s at most before the launcher stops).
busy_s=$((busy_ms / 1000))
((busy_s >= 8)) || fail "the run took only $busy_ms ms: too short to tell"
((hb <= 2 + busy_s / 4)) ||
	fail "$hb heartbeats over a run of $busy_ms ms of reports (TTL 9 s)"
pass
