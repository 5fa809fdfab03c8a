#!/usr/bin/env bash
# What a task's process starts with: a process group of its own (a kill of
# the group reaches all it started), no controlling terminal even when the
# launcher has one (here it runs on a pseudo-terminal of script(1)), no
# signal ignored or blocked (the launcher ignores SIGPIPE and blocks
# SIGCHLD, SIGTERM and SIGINT), and a program given by path run directly.
source "$(dirname "$0")/lib.sh"
setup_db

add_app stat '/bin/cat /proc/self/stat'
add_app status '/bin/cat /proc/self/status'
add_app shstat 'cat /proc/self/stat' --envscript /dev/null
for a in stat status shstat; do
	add_job $a $a --workflow proc >/dev/null
done

# script(1) gives its command a new session with the pseudo-terminal as
# its controlling terminal
script -qec "exec copal-launcher --db '$DB' --job-mode serial --idle-ttl 2" \
    /dev/null </dev/null >"$T/l.log" 2>&1 &
SPID=$!
wait_for 'LPID=$(pgrep -f "^copal-launcher --db $DB" | head -1)' 20 "the launcher under script"
LAUNCHER_PIDS+=("$LPID")
LAUNCHER_LOG[$LPID]=$T/l.log
read -r -a lst <"/proc/$LPID/stat"
((lst[6] != 0)) || fail "the launcher has no controlling terminal (test setup)"
for a in stat status shstat; do
	wait_for_state $a JOB_FINISHED 30
done
wait "$SPID" || fail "script(1) or the launcher exited with status $?"

# /proc/PID/stat: pid comm state ppid pgrp session tty_nr
for a in stat shstat; do
	read -r -a st <"$(workdir_of $a)/$a.out"
	assert_eq "${st[0]}" "${st[4]}" "process group of task $a (its own)"
	assert_eq 0 "${st[6]}" "controlling terminal of task $a"
	assert_eq "$LPID" "${st[3]}" "parent of task $a"
done
out=$(workdir_of status)/status.out
for f in SigIgn SigBlk; do
	assert_eq 0000000000000000 "$(awk -v f="$f:" '$1 == f { print $2 }' "$out")" \
	    "$f of a task"
done
assert_eq cat "$(awk '$1 == "Name:" { print $2 }' "$out")" \
    "the task's process (run directly, no shell)"
pass
