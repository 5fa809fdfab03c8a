#!/usr/bin/env bash
# Issue 13, no spinning: while its tasks run and nothing more can be
# claimed, the launcher sleeps. Over 30 s of 32 running `sleep` tasks it
# uses less than 0.1 s of CPU (utime + stime from /proc/PID/stat; 0.3 s
# in a sanitizer build: cpu_bound). More tasks wait in its local backlog,
# so that it has no claim to make.
source "$(dirname "$0")/lib.sh"
setup_db

add_app nap "sleep 45"
# 35 divides 5040: 32 tasks of packing 35 all fit on the one node; 64
# more fill the backlog
for i in $(seq 1 96); do
	add_job n$i nap --workflow nospin --node-packing-count 35 >/dev/null
done
start_launcher a --job-mode serial --max-concurrent 32 --idle-ttl 1
A=$LPID
wait_for '[[ $(copal ls --workflow nospin --state RUNNING --format csv | grep -c ,RUNNING) -ge 32 ]]' 60 \
    "at least 32 tasks running"
cpu() { # ticks of utime + stime
	local s
	s=$(cat "/proc/$1/stat")
	s=${s##*) }
	awk '{ print $12 + $13 }' <<<"$s"
}
hz=$(getconf CLK_TCK)
c0=$(cpu "$A")
sleep 30
c1=$(cpu "$A")
used=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
log "launcher CPU over 30 s with 32 running tasks: $used s"
bound=$(cpu_bound 0.1)
fcmp "$used" '<' "$bound" ||
    fail "the launcher used $used s of CPU in 30 s of waiting (at most $bound)"
stop_launcher "$A" 60
pass
