#!/usr/bin/env bash
# Scenario 8, a launcher killed with SIGKILL mid-run (--lease-ttl 2): once
# its lease expires the broker makes its RUNNING tasks RUN_TIMEOUT ("lease
# expired") and retries them (--auto-timeout-retry); a second launcher runs
# attempt 2 to JOB_FINISHED.
# The launcher's guard kills the processes of attempt 1 with it (orphans.sh
# checks that); the test still ends them itself, should any be left.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/twostep.sh" <<'SH'
echo "attempt $COPAL_ATTEMPT"
echo $$ >"pid.$COPAL_ATTEMPT"
if [ "$COPAL_ATTEMPT" = 1 ]; then
	exec sleep 300
fi
echo "done attempt $COPAL_ATTEMPT"
SH
add_app twostep "sh $T/twostep.sh"
for t in w1 w2; do
	add_job $t twostep --workflow lease --node-packing-count 2 --auto-timeout-retry >/dev/null
done

orphans=()
end_orphans() {
	for p in "${orphans[@]}"; do
		kill_tree "$p"
	done
}

start_launcher a --job-mode serial --lease-ttl 2 --idle-ttl 30 -v
A=$LPID
for t in w1 w2; do
	wait_for_state $t RUNNING 30
	wait_for_file "$(workdir_of $t)/pid.1" 30
	orphans+=("$(cat "$(workdir_of $t)/pid.1")")
done
kill -KILL "$A"
wait "$A" 2>/dev/null || true # (status 137)
k0=$(elapsed_ms)
log "launcher a (pid $A) killed with SIGKILL"

for t in w1 w2; do
	wait_for_state $t RESTART_READY 60
done
took=$(($(elapsed_ms) - k0))
log "tasks back to RESTART_READY $took ms after the SIGKILL"
# the lease (2 s) expired and the sweep found it: well before the 300 s the
# orphaned attempt would run, however loaded the machine (the message,
# checked below, says why they came back)
((took < 45000)) || fail "lease ttl 2 s, yet the tasks came back only after $took ms"
for t in w1 w2; do
	h=$(history_of $t)
	assert_contains "$(grep '^RUNNING->RUN_TIMEOUT' <<<"$h")" "lease expired" \
	    "RUN_TIMEOUT message of $t"
	assert_contains "$(grep '^RUN_TIMEOUT->RESTART_READY' <<<"$h")" "a=1 " \
	    "retry of $t after attempt 1"
done

start_launcher b --job-mode serial --lease-ttl 2 --idle-ttl 1 -v
for t in w1 w2; do
	wait_for_state $t JOB_FINISHED 60
done
wait_launcher "$LPID" 60
end_orphans

for t in w1 w2; do
	assert_eq 2 "$(task_field $t attempt)" "attempt of $t"
	assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_TIMEOUT RUN_TIMEOUT->RESTART_READY RESTART_READY->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
	    "$(transitions_of $t)" "history of $t"
	assert_contains "$(cat "$(workdir_of $t)/$t.out")" "done attempt 2" "output of $t"
done
pass
