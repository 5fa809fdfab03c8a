#!/usr/bin/env bash
# Scenario 6, node packing: 8 tasks with --node-packing-count 8 share the
# one node and run at once (each records start and end times and sleeps
# 2 s: every start comes before every end); 2 tasks with packing 1 take
# the whole node each and run one after the other.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/stamp.sh" <<'SH'
date +%s.%N >start
sleep "$NAP"
date +%s.%N >end
SH
add_app stamp "sh $T/stamp.sh"

# ---- 8 packed tasks
for i in 1 2 3 4 5 6 7 8; do
	add_job pk$i stamp --workflow pack --node-packing-count 8 --env NAP=2 >/dev/null
done
start_launcher l1 --job-mode serial --idle-ttl 1 -v
for i in 1 2 3 4 5 6 7 8; do
	wait_for_state pk$i JOB_FINISHED 30
done
wait_launcher "$LPID" 30
starts=() ends=()
for i in 1 2 3 4 5 6 7 8; do
	d=$(workdir_of pk$i)
	starts+=("$(cat "$d/start")")
	ends+=("$(cat "$d/end")")
done
last_start=$(printf '%s\n' "${starts[@]}" | sort -g | tail -1)
first_end=$(printf '%s\n' "${ends[@]}" | sort -g | head -1)
log "packed: last start $last_start, first end $first_end"
fcmp "$last_start" '<' "$first_end" ||
    fail "the 8 packed tasks did not all run at once: last start $last_start >= first end $first_end (starts: ${starts[*]}; ends: ${ends[*]})"

# ---- 2 tasks with packing 1: one at a time
add_job s1 stamp --workflow pack --node-packing-count 1 --env NAP=1 >/dev/null
add_job s2 stamp --workflow pack --node-packing-count 1 --env NAP=1 >/dev/null
start_launcher l2 --job-mode serial --idle-ttl 1 -v
wait_for_state s1 JOB_FINISHED 30
wait_for_state s2 JOB_FINISHED 30
wait_launcher "$LPID" 30
d1=$(workdir_of s1) d2=$(workdir_of s2)
a1=$(cat "$d1/start") e1=$(cat "$d1/end") a2=$(cat "$d2/start") e2=$(cat "$d2/end")
log "s1 $a1..$e1, s2 $a2..$e2"
fcmp "$e1" '<=' "$a2" || fcmp "$e2" '<=' "$a1" ||
    fail "the two packing-1 tasks overlapped: s1 $a1..$e1, s2 $a2..$e2"
pass
