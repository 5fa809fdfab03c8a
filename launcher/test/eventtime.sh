#!/usr/bin/env bash
# Issue 13, true event times: RUNNING and the end of a run carry the
# launcher's clock at the event, not the broker's commit time. A `sleep 1`
# task whose end is committed late (the broker is stopped with SIGSTOP for
# 1.5 s while it runs, so its RUN_DONE report waits in the launcher) shows
# a run of 1.00 s +- 10 ms in `copal export` (JSON lines, CSV and the
# Chrome trace), `copal stats` and `copal ls --history`; the commit times
# are kept (commit_us) and show the delay.
source "$(dirname "$0")/lib.sh"
setup_db

add_app nap "sleep 1"
add_job n1 nap --workflow et >/dev/null
start_launcher l1 --job-mode serial --idle-ttl 2 -v
wait_for_state n1 RUNNING 30
bpid=$(cat "$DB/broker.pid")
sleep 0.3
kill -STOP "$bpid"
log "broker (pid $bpid) stopped"
sleep 1.5
kill -CONT "$bpid"
log "broker continued"
wait_for_state n1 JOB_FINISHED 30
wait_launcher "$LPID" 30

near1() { # SECONDS WHAT: 1.00 s +- 10 ms
	awk -v d="$1" 'BEGIN { exit !(d >= 0.990 && d <= 1.010) }' ||
	    fail "$2: run of $1 s, not 1.00 s +- 10 ms"
	log "$2: $1 s"
}

# JSON lines: RUNNING -> RUN_DONE by time_us; the commit times differ by
# the stop
copal export --wf et >"$T/ev.jsonl"
run=$(jq -rs '([.[] | select(.to == "RUNNING")][0].time_us) as $a |
    ([.[] | select(.to == "RUN_DONE")][0].time_us) as $b | ($b - $a) / 1e6' "$T/ev.jsonl")
near1 "$run" "export jsonl"
crun=$(jq -rs '([.[] | select(.to == "RUNNING")][0].commit_us) as $a |
    ([.[] | select(.to == "RUN_DONE")][0].commit_us) as $b | ($b - $a) / 1e6' "$T/ev.jsonl")
awk -v d="$crun" 'BEGIN { exit !(d >= 1.6) }' ||
    fail "commit times RUNNING -> RUN_DONE $crun s apart: the stop should show there"
# time (ISO) agrees with time_us
iso=$(jq -rs '[.[] | select(.to == "RUN_DONE")][0] | "\(.time) \(.time_us)"' "$T/ev.jsonl")
s=$(iso_to_s "${iso% *}")
awk -v s="$s" -v us="${iso#* }" 'BEGIN { d = s - us / 1e6; exit !(d > -1e-6 && d < 1e-6) }' ||
    fail "export: time and time_us disagree: $iso"

# CSV: header names commit_us last; time_us column (9th)
copal export --wf et --format csv >"$T/ev.csv"
head -1 "$T/ev.csv" | grep -q ',message,commit_us' ||
    fail "CSV header: $(head -1 "$T/ev.csv")"
run=$(awk -F, '$7 == "RUNNING" { a = $9 } $7 == "RUN_DONE" { b = $9 } END { printf "%.6f", (b - a) / 1e6 }' "$T/ev.csv")
near1 "$run" "export csv"

# Chrome trace: the span's duration
copal export --wf et --format chrome >"$T/trace.json"
dur=$(jq -r '[.traceEvents[] | select(.ph == "X")][0].dur / 1e6' "$T/trace.json")
near1 "$dur" "export chrome"

# stats: the run time distribution
copal stats --wf et --format json >"$T/stats.json"
mx=$(jq -r '.runtime.max' "$T/stats.json")
mn=$(jq -r '.runtime.min' "$T/stats.json")
near1 "$mx" "stats runtime max"
near1 "$mn" "stats runtime min"

# ls --history: times are event times
run=$(seconds_between n1 RUNNING RUN_DONE)
awk -v d="$run" 'BEGIN { exit !(d >= 0.990 && d <= 1.010) }' ||
    fail "ls --history: RUNNING -> RUN_DONE $run s"
log "ls --history: $run s"
pass
