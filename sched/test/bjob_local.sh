#!/usr/bin/env bash
# Tasks by batch job and copal queue rm, on the local scheduler: every
# RUNNING event names the batch job its launcher ran in (none for a
# launcher started by hand); copal ls --batch-job lists a job's tasks and
# copal ls queues counts what each job ran, is running and failed;
# copal queue rm cancels a running job, records it, and its tasks run
# elsewhere; a job whose launcher died without giving its lease back ends
# that lease once the job is gone; bad requests change nothing.
source "$(dirname "$0")/../../launcher/test/lib.sh"
setup_db
# a lease that would outlive the test: only the job's end can free it
sed -i 's/^lease_ttl_seconds = .*/lease_ttl_seconds = 600/' "$DB/copal.conf"
sed -i 's/^scheduler_timeout_seconds = .*/scheduler_timeout_seconds = 20/' "$DB/copal.conf"

jobs_json() { copal ls queues --format json; }
job_field() { # ID FIELD
	jobs_json | jq -r --arg id "$1" ".[] | select(.id == (\$id|tonumber)) | .$2"
}
wait_job_state() { # ID STATE TIMEOUT
	local t0=$SECONDS
	while [[ $(job_field "$1" state) != "$2" ]]; do
		((SECONDS - t0 < $3)) || fail "qlaunch $1 not $2 after $3 s: $(jobs_json)"
		sleep 0.5
	done
}
names_in_job() { # ID: names of its tasks, sorted, one line
	copal ls --batch-job "$1" --format json | jq -r '.[].name' | sort | tr '\n' ' '
}
running_event() { # NAME: the task's last RUNNING event as JSON
	copal history "$(uuid_of "$1")" --format json |
	    jq -c '[.[0].events[] | select(.to == "RUNNING")] | last'
}
refused() { # RC ARGS...: copal ARGS must exit with RC; prints its output
	local want=$1 out rc
	shift
	set +e
	out=$(copal "$@" 2>&1)
	rc=$?
	set -e
	assert_eq "$want" "$rc" "copal $*: $out"
	echo "$out"
}

add_app hello /bin/echo
add_app bad /bin/false
add_app sleeper /bin/sleep

# ------------------------------------------------------------ a job's tasks
for i in 1 2 3; do add_job "ok$i" hello --args "hi $i" >/dev/null; done
add_job fails bad >/dev/null
out=$(copal submit-launch -n 1 -t 2 --job-mode serial 2>&1) || fail "submit: $out"
pid=$(job_field 1 scheduler_id)
for i in 1 2 3; do wait_for_state "ok$i" JOB_FINISHED 30; done
wait_for_state fails FAILED 30
wait_job_state 1 FINISHED 40
assert_eq "fails ok1 ok2 ok3 " "$(names_in_job 1)" "ls --batch-job 1"
assert_eq 4 "$(job_field 1 ran)" "ran"
assert_eq 0 "$(job_field 1 running)" "running"
assert_eq 1 "$(job_field 1 failed)" "failed"
ev=$(running_event ok2)
assert_eq 1 "$(jq -r .batch_job <<<"$ev")" "RUNNING event's batch job: $ev"
assert_eq "$pid" "$(jq -r .scheduler_job_id <<<"$ev")" "scheduler's id"
out=$(copal history "$(uuid_of ok2)")
assert_contains "$out" "(batch job 1, scheduler job $pid)" "history table"
# export names the job of each event under its lease (JSON lines, CSV)
ex=$(copal export | jq -c --arg u "$(uuid_of ok2)" \
    'select(.uuid == $u and .to == "RUNNING") | [.batch_job, .scheduler_job_id]')
assert_eq "[1,\"$pid\"]" "$ex" "export: the RUNNING event's batch job"
copal export --format csv -o "$T/ev.csv"
assert_contains "$(head -1 "$T/ev.csv")" ",user,batch_job,scheduler_job_id" "export csv header"
assert_contains "$(grep "$(uuid_of ok2)" "$T/ev.csv" | grep ',RUNNING,')" ",1,$pid" "export csv: the batch job"
# filters combine: the failed one
assert_eq "fails " "$(copal ls --batch-job 1 --state FAILED --format json |
    jq -r '.[].name' | tr '\n' ' ')" "batch job and state"
assert_contains "$(copal ls --batch-job 1 --by-states)" "JOB_FINISHED" "by states"

# a launcher started by hand records no batch job
add_job byhand hello --args x >/dev/null
start_launcher hand --job-mode serial --idle-ttl 1
wait_launcher "$LPID" 30
assert_eq JOB_FINISHED "$(state_of byhand)" "hand launcher ran it"
ev=$(running_event byhand)
assert_eq null "$(jq -r .batch_job <<<"$ev")" "no batch job by hand: $ev"
assert_eq "fails ok1 ok2 ok3 " "$(names_in_job 1)" "job 1 unchanged"

# ------------------------------------------------------------ queue rm
for i in 1 2; do
	add_job "long$i" sleeper --args 300 --node-packing-count 4 >/dev/null
done
out=$(copal submit-launch -n 1 -t 10 --job-mode serial 2>&1) || fail "submit 2: $out"
wait_for_state long1 RUNNING 20
wait_for_state long2 RUNNING 20
wait_for '[[ $(job_field 2 running) == 2 ]]' 10 "2 running in job 2"
pid2=$(job_field 2 scheduler_id)
out=$(copal queue rm 2 2>&1) || fail "queue rm 2: $out"
assert_contains "$out" "qlaunch 2 (local job $pid2): cancelled" "queue rm says"
assert_eq CANCELLED "$(job_field 2 state)" "job 2 record"
assert_contains "$(job_field 2 message)" "cancelled by copal queue rm" "message"
# gone, or a zombie nobody has reaped yet
[[ ! -e /proc/$pid2 ]] || grep -q '^State:.*Z' "/proc/$pid2/status" ||
    fail "job 2's session still runs: $(cat "/proc/$pid2/status" | head -3)"
# its tasks timed out and were retried by their policy ...
for t in long1 long2; do
	st=$(state_of $t)
	[[ $st == RESTART_READY || $st == READY ]] || fail "$t is $st after queue rm"
done
assert_eq 0 "$(job_field 2 running)" "nothing runs in job 2"
assert_eq 2 "$(job_field 2 ran)" "job 2 ran two"
# ... and run elsewhere: a launcher started by hand takes them
start_launcher after --job-mode serial --persistent
wait_for_state long1 RUNNING 20
wait_for_state long2 RUNNING 20
ev=$(running_event long1)
assert_eq null "$(jq -r .batch_job <<<"$ev")" "rerun by hand: $ev"
hist=$(copal history "$(uuid_of long1)")
assert_contains "$hist" "(batch job 2, scheduler job $pid2)" "first run in job 2"
copal killjob --yes "$(uuid_of long1)" "$(uuid_of long2)" >/dev/null
stop_launcher "$LPID"

# ------------------------------------------------------------ a lost lease
# The job's launcher dies without giving its lease back (TTL 600 s): the
# job ends with it, and its end ends the lease; the task is retried now.
add_job orphan sleeper --args 300 >/dev/null
out=$(copal submit-launch -n 1 -t 10 --job-mode serial 2>&1) || fail "submit 3: $out"
wait_for_state orphan RUNNING 20
pid3=$(job_field 3 scheduler_id)
lpid=$(pgrep -s "$pid3" -f copal-launcher | head -1)
[[ -n $lpid ]] || fail "no launcher in job 3's session"
kill -KILL "$lpid"
pkill -KILL -s "$pid3" sleep || true
wait_job_state 3 FINISHED 30
st=$(state_of orphan)
[[ $st == RESTART_READY || $st == READY ]] || fail "orphan is $st after job 3 ended"
assert_contains "$(copal history "$(uuid_of orphan)")" "batch job 3 ended" \
    "history says why"
copal killjob --yes "$(uuid_of orphan)" >/dev/null

# ------------------------------------------------------------ bad requests
before=$(jobs_json | jq -c '[.[] | {id, state, message}]')
out=$(refused 1 queue rm 1)
assert_contains "$out" "batch job 1 is FINISHED: nothing to cancel" "finished job"
out=$(refused 3 queue rm 99)
assert_contains "$out" "no batch job 99" "unknown job"
refused 2 queue rm abc >/dev/null
refused 2 queue rm 0 >/dev/null
refused 2 queue rm >/dev/null
refused 2 queue >/dev/null
refused 2 queue list >/dev/null
assert_eq "$before" "$(jobs_json | jq -c '[.[] | {id, state, message}]')" \
    "bad requests changed nothing"
out=$(refused 3 ls --batch-job 99)
assert_contains "$out" "no batch job 99" "ls of an unknown job"
refused 2 ls --batch-job x >/dev/null
refused 2 ls --batch-job 0 >/dev/null
# the verbose listing has the scheduler's words
out=$(copal ls queues --verbose --format json)
assert_eq "no process $pid" "$(jq -r '.[0].sched_reason' <<<"$out")" "reason"
pass
