#!/usr/bin/env bash
# copal service on the local scheduler: it submits a launcher job for a
# backlog and stops submitting once the backlog is covered; it reports
# tasks that no queue of the policy can run (so does copal ls); one service
# per database; scheduler commands that hang, fail or answer garbage are
# logged and survived (fault injection: small sbatch/squeue scripts first
# in PATH, the only way to make a scheduler misbehave on demand).
source "$(dirname "$0")/../../launcher/test/lib.sh"
setup_db

jobs_json() { copal ls queues --format json 2>/dev/null; }
njobs() { jobs_json | jq length; }
svc_once() { # runs one round; output in $OUT
	set +e
	OUT=$(copal service --once 2>&1)
	local rc=$?
	set -e
	assert_eq 0 "$rc" "service --once: $OUT"
}

# no policy: the service refuses to start and says what to add
set +e
out=$(copal service --once 2>&1); rc=$?
set -e
assert_eq 1 "$rc" "service without a policy: $out"
assert_contains "$out" "queue policy" "says a policy is needed"

# setconf KEY VALUE: sets a setting of copal.conf (each key once)
setconf() {
	if grep -q "^$1 =" "$DB/copal.conf"; then
		sed -i "s|^$1 =.*|$1 = $2|" "$DB/copal.conf"
	else
		echo "$1 = $2" >>"$DB/copal.conf"
	fi
}
setconf service_period_seconds 1
setconf service_max_queued_jobs 2
cat >>"$DB/copal.conf" <<'CONF'
queue.local.min_nodes = 1
queue.local.max_nodes = 1
queue.local.min_minutes = 1
queue.local.max_minutes = 2
queue.local.max_queued = 2
CONF

# an empty backlog: nothing to submit
svc_once
assert_contains "$OUT" "backlog 0 tasks" "summary"
assert_eq 0 "$(njobs)" "no job for no work"

# 4 tasks packed 4 to a node: one node of work
add_app nap /bin/sleep
for i in 1 2 3 4; do
	add_job "n$i" nap --args 2 --node-packing-count 4 >/dev/null
done
svc_once
assert_contains "$OUT" "backlog 4 tasks = 1 node" "footprint"
assert_contains "$OUT" "submitted qlaunch 1" "a job for the backlog"
assert_eq 1 "$(njobs)" "one job"
assert_eq service "$(jobs_json | jq -r '.[0].origin')" "origin"
# covered: no second job, however often it looks
svc_once
svc_once
assert_eq 1 "$(njobs)" "backlog covered: no more jobs"
for i in 1 2 3 4; do wait_for_state "n$i" JOB_FINISHED 60; done

# a task no queue can run: 3 nodes where the policy allows 1
add_job big nap --args 1 --num-nodes 3 >/dev/null
set +e
out=$(copal ls 2>&1 >/dev/null)
set -e
assert_contains "$out" "can never run" "copal ls warns"
assert_contains "$out" "big" "names the task"
svc_once
assert_contains "$OUT" "1 runnable task can never run" "service reports it"
assert_not_contains "$OUT" "submitted" "no job for a task that cannot fit"
copal killjob --yes "$(uuid_of big)" >/dev/null

# one service per database
command copal --db "$DB" service --period 1 >"$T/service.log" 2>&1 &
SVC=$!
wait_for "grep -q started '$T/service.log'" 30 "the service started"
set +e
out=$(copal service --once 2>&1); rc=$?
set -e
assert_eq 1 "$rc" "second service: $out"
assert_contains "$out" "already runs" "lock"
assert_contains "$out" "pid $SVC" "names the running one"
kill -TERM "$SVC"
wait "$SVC" || fail "service did not stop cleanly on SIGTERM: $(cat "$T/service.log")"
assert_contains "$(cat "$T/service.log")" "stopped" "service said it stopped"
[[ -s $DB/log/service.log ]] || fail "no log/service.log"

# the local job ends once idle
t0=$SECONDS
while [[ $(jobs_json | jq -r '.[0].state') != FINISHED ]]; do
	((SECONDS - t0 < 120)) || fail "local job did not end: $(jobs_json)"
	sleep 0.5
done

# ------------------------------------------------------------ faults
mkdir -p "$T/fake"
export PATH=$T/fake:$PATH
fake() { printf '#!/bin/sh\n%s\n' "$2" >"$T/fake/$1"; chmod +x "$T/fake/$1"; }
setconf scheduler slurm
setconf project chem
setconf scheduler_timeout_seconds 1
add_job f1 nap --args 1 >/dev/null

# sbatch refuses: logged with the scheduler's words, recorded, no crash
fake sbatch "echo 'sbatch: error: Batch job submission failed: Invalid account' >&2; exit 1"
fake squeue "exit 0"
svc_once
assert_contains "$OUT" "Invalid account" "submit error logged"
assert_eq SUBMIT_FAILED "$(jobs_json | jq -r '.[-1].state')" "failed submission recorded"
assert_contains "$(jobs_json | jq -r '.[-1].message')" "Invalid account" "message kept"

# a scheduler that keeps refusing: the service backs off (period 1 s,
# then 2 s, 4 s, ...) instead of making a failed record every round: by
# the time it says "retry in 4 s" it has failed three times (plus one
# submission it may have had under way)
nfail0=$(jobs_json | jq '[.[] | select(.state == "SUBMIT_FAILED")] | length')
command copal --db "$DB" service >"$T/backoff.log" 2>&1 &
SVC=$!
wait_for "grep -q 'retry in 4 s' '$T/backoff.log'" 60 \
    "third back-off (see $T/backoff.log)"
kill -TERM "$SVC"
wait "$SVC" || fail "service exit status: $(cat "$T/backoff.log")"
blog=$(cat "$T/backoff.log")
assert_contains "$blog" "retry in 1 s" "first back-off"
assert_contains "$blog" "retry in 2 s" "second back-off"
assert_contains "$blog" "retry in 4 s" "third back-off"
nfail=$(jobs_json | jq '[.[] | select(.state == "SUBMIT_FAILED")] | length')
(( nfail - nfail0 <= 4 )) || fail "$((nfail - nfail0)) failed submissions by the third back-off: $blog"

# sbatch hangs: cut off, recorded as failed
fake sbatch "sleep 30"
svc_once
assert_contains "$OUT" "did not finish in time" "hanging sbatch"

# sbatch works, then squeue hangs, fails and talks garbage: the job keeps
# its state each time
fake sbatch "echo 4242"
fake squeue "echo '4242|PENDING'"
svc_once
assert_contains "$OUT" "submitted qlaunch" "submitted once sbatch works"
last=$(jobs_json | jq -r '.[-1].id')
fake squeue "sleep 30"
svc_once
assert_contains "$OUT" "cannot read job states from slurm" "hanging squeue"
fake squeue "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1"
svc_once
assert_contains "$OUT" "Unable to contact" "failing squeue"
fake squeue "echo '<html>502 Bad Gateway</html>'"
svc_once
assert_contains "$OUT" "not understood" "garbage squeue"
assert_eq QUEUED "$(jobs_json | jq -r --argjson id "$last" '.[] | select(.id == $id) | .state')" \
    "state kept through bad answers"
# a clean answer without the job: it has left the queue
fake squeue "exit 0"
svc_once
assert_eq FINISHED "$(jobs_json | jq -r --argjson id "$last" '.[] | select(.id == $id) | .state')" \
    "gone from a clean answer: finished"
copal killjob --yes "$(uuid_of f1)" >/dev/null
pass
