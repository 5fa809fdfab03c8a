#!/usr/bin/env bash
# Scenario 7, copal killjob of a running task: it becomes USER_KILLED at
# once, and its whole process group (the task's shell and the `sleep 300 &`
# it started) is gone within a few seconds; one that ignores SIGTERM is
# SIGKILLed. The launcher goes on and runs the next task (--idle-ttl 6:
# a slow machine must not let it go idle first).
# --lease-ttl 3: the launcher hears of kills with its heartbeat (ttl / 3).
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/bg.sh" <<'SH'
[ -n "$IGNORE_TERM" ] && trap '' TERM
sleep 300 &
echo $! >child.pid
echo $$ >main.pid
wait
SH
add_app bg "sh $T/bg.sh"
add_app hello 'echo hello'
add_job victim bg --workflow kill --node-packing-count 2 >/dev/null
add_job deaf bg --workflow kill --node-packing-count 2 --env IGNORE_TERM=1 >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 6 --lease-ttl 3 -v
wait_for_state victim RUNNING 10
wait_for_state deaf RUNNING 10
declare -A main child
for t in victim deaf; do
	d=$(workdir_of $t)
	wait_for_file "$d/child.pid" 10
	wait_for_file "$d/main.pid" 10
	main[$t]=$(cat "$d/main.pid")
	child[$t]=$(cat "$d/child.pid")
	alive "${main[$t]}" || fail "$t's shell (pid ${main[$t]}) is not running"
	alive "${child[$t]}" || fail "$t's sleep (pid ${child[$t]}) is not running"
	# the task's shell leads its own process group
	assert_eq "${main[$t]}" "$(ps -o pgid= -p "${main[$t]}" | tr -d ' ')" "process group of $t"
done

k0=$(elapsed_ms)
copal killjob "$(uuid_of victim)" "$(uuid_of deaf)" >/dev/null || fail "copal killjob failed"
wait_for_state victim USER_KILLED 2
wait_for_state deaf USER_KILLED 2
for t in victim deaf; do
	for _ in $(seq 1 80); do
		alive "${main[$t]}" || alive "${child[$t]}" || break
		sleep 0.1
	done
	alive "${main[$t]}" && fail "$t's shell (pid ${main[$t]}) survived the kill"
	alive "${child[$t]}" && fail "$t's child sleep 300 (pid ${child[$t]}) survived the kill"
	# (a zombie does not count: pid 1 of a container may not reap)
	for p in $(pgrep -g "${main[$t]}" || true); do
		alive "$p" && fail "process group of $t still has: $(ps -o pid,stat,args -p "$p")"
	done
done
log "both process groups gone $(($(elapsed_ms) - k0)) ms after killjob"

# the launcher goes on
add_job after hello --workflow kill >/dev/null
wait_for_state after JOB_FINISHED 15
wait_launcher "$LPID" 30
for t in victim deaf; do
	tr=$(transitions_of $t)
	assert_eq "RUNNING->USER_KILLED" "${tr##* }" "last transition of $t (no report after the kill)"
	assert_eq USER_KILLED "$(state_of $t)" "final state of $t"
done
grep -q "kill notice for task" "$T/l1.log" || fail "launcher log lacks a kill notice"
pass
