#!/usr/bin/env bash
# Against a real single-node Slurm (munge, slurmctld, slurmd started by
# scripts/slurm.sh in this test's directory): copal submit-launch queues a
# launcher job that runs a batch of tasks to JOB_FINISHED; ls queues follows
# the job from squeue and counts its tasks, ls --batch-job lists them and
# their RUNNING events name the Slurm job; a refused submission keeps
# sbatch's words; the service submits a job for a backlog, stops once it
# is covered, and cancels its own job that waited in the queue too long;
# copal queue rm cancels a running job (scancel) and its task is retried.
# Exit 77 (skipped) only where Slurm cannot run at all: not root (the test
# runs slurmctld and slurmd as SlurmUser=root and adds a loopback address).
# As root, anything else that stops it (packages missing, a daemon that
# does not start) fails the test: scripts/deps.sh installs what it needs.
HERE=$(cd "$(dirname "$0")" && pwd)
SLURM_SH=$HERE/../../scripts/slurm.sh
if ((EUID != 0)); then
	echo "SKIP: slurm: needs root (SlurmUser=root, ip addr add)"
	exit 77
fi
if ! why=$(bash "$SLURM_SH" check 2>&1); then
	echo "slurm: FAIL: cannot run Slurm here as root: $why" >&2
	exit 1
fi
source "$HERE/../../launcher/test/lib.sh"

SDIR=$T/slurm
# munged wants every directory down to its socket searchable by all
chmod 711 "$T"
slurm_stop() { bash "$SLURM_SH" stop "$SDIR" >/dev/null 2>&1 || true; }
# stop Slurm before lib.sh's cleanup looks for processes left behind;
# keep the exit status for it
trap 'rc=$?; slurm_stop; (exit $rc); cleanup' EXIT
start_out=$(bash "$SLURM_SH" start "$SDIR" 2>&1) || fail "slurm start: $start_out"
eval "$(tail -n 1 <<<"$start_out")"
[[ -f ${SLURM_CONF:-} ]] || fail "no SLURM_CONF from slurm.sh start: $start_out"
log "slurm up ($SLURM_CONF)"

setup_db
setconf() {
	if grep -q "^$1 =" "$DB/copal.conf"; then
		sed -i "s|^$1 =.*|$1 = $2|" "$DB/copal.conf"
	else
		echo "$1 = $2" >>"$DB/copal.conf"
	fi
}
setconf scheduler slurm
setconf project chem
jobs_json() { copal ls queues --format json 2>/dev/null; }
job_field() { # ID FIELD
	jobs_json | jq -r --argjson id "$1" ".[] | select(.id == \$id) | .$2"
}
wait_job_state() { # ID STATE TIMEOUT
	local t0=$SECONDS
	while [[ $(job_field "$1" state) != "$2" ]]; do
		((SECONDS - t0 < $3)) ||
		    fail "qlaunch $1 not $2 after $3 s: $(jobs_json) $(squeue -a -t all 2>&1)"
		sleep 1
	done
}

add_app hello /bin/echo
for i in $(seq 1 8); do add_job "t$i" hello --args "hi $i" >/dev/null; done
# serial mode: the job script starts one launcher per node with srun; a
# task sees the job step it runs in
add_app env /usr/bin/printenv
add_job step env --args SLURM_STEP_ID >/dev/null

# ------------------------------------------------------------ submit-launch
out=$(copal submit-launch -A chem -q debug -n 1 -t 2 --job-mode serial) ||
    fail "submit-launch: $out"
assert_contains "$out" "Submit OK: qlaunch 1" "submit output"
sid=$(job_field 1 scheduler_id)
assert_match "$sid" '^[0-9]+$' "slurm job id"
log "qlaunch 1 is slurm job $sid"
squeue -h -j "$sid" -o '%i %P %D %l %j' | grep -q "^$sid debug 1 2:00 copal-db-1" ||
    fail "squeue does not show the job as submitted: $(squeue -a -t all -o '%i %P %D %l %j')"
for i in $(seq 1 8); do wait_for_state "t$i" JOB_FINISHED 90; done
wait_for_state step JOB_FINISHED 30
stepout=$(cat "$(workdir_of step)/step.out")
assert_eq 0 "$stepout" "the launcher ran as job step 0 (srun per node)"
# the tasks ran inside the Slurm job: the launcher found the job's node
node=$(copal export --format jsonl | jq -r 'select(.to == "RUNNING") | .node' | sort -u)
assert_contains "$node" "$(hostname -s)/" "tasks ran on the Slurm node"
# the launcher ends when idle; the job leaves the queue
wait_job_state 1 FINISHED 60
assert_eq COMPLETED "$(job_field 1 sched_state)" "squeue's word for it"
# the job's tasks: listed, counted, and named in their RUNNING events
assert_eq 9 "$(copal ls --batch-job 1 --format json | jq length)" "ls --batch-job 1"
assert_eq 9 "$(job_field 1 ran)" "ran in job 1"
assert_eq 0 "$(job_field 1 failed)" "failed in job 1"
ev=$(copal history "$(uuid_of t3)" --format json |
    jq -c '[.[0].events[] | select(.to == "RUNNING")] | last')
assert_eq 1 "$(jq -r .batch_job <<<"$ev")" "t3's batch job"
assert_eq "$sid" "$(jq -r .scheduler_job_id <<<"$ev")" "t3's Slurm job"
assert_contains "$(cat "$DB/qsubmit/qlaunch1.out")" "launcher" "job output file"

# ------------------------------------------------------------ mpi mode
# the launcher runs in the batch script and starts each task with srun
add_app host /bin/hostname
add_job ranks host --ranks-per-node 2 >/dev/null
out=$(copal submit-launch -A chem -q debug -n 1 -t 2 --job-mode mpi) ||
    fail "submit-launch mpi: $out"
assert_contains "$out" "Submit OK: qlaunch 2" "mpi submit"
wait_for_state ranks JOB_FINISHED 90
assert_eq 2 "$(wc -l <"$(workdir_of ranks)/ranks.out")" "two ranks from srun"
wait_job_state 2 FINISHED 60

# ------------------------------------------------------------ refused
set +e
out=$(copal submit-launch -A chem -q nope -n 1 -t 2 2>&1); rc=$?
set -e
assert_eq 1 "$rc" "submit to a missing partition: $out"
assert_contains "$out" "invalid partition" "sbatch's own words"
assert_eq SUBMIT_FAILED "$(job_field 3 state)" "refused job recorded"
assert_contains "$(job_field 3 message)" "invalid partition" "message kept"

# ------------------------------------------------------------ service
setconf service_max_queued_jobs 1
setconf service_max_wait_minutes 1
setconf scheduler_timeout_seconds 20
cat >>"$DB/copal.conf" <<'CONF'
queue.debug.min_nodes = 1
queue.debug.max_nodes = 1
queue.debug.min_minutes = 1
queue.debug.max_minutes = 2
queue.debug.max_queued = 1
CONF
add_app nap /bin/sleep
for i in 1 2 3 4; do
	add_job "s$i" nap --args 1 --node-packing-count 4 >/dev/null
done
set +e
OUT=$(copal service --once 2>&1); rc=$?
set -e
assert_eq 0 "$rc" "service: $OUT"
assert_contains "$OUT" "backlog 4 tasks = 1 node" "footprint"
assert_contains "$OUT" "submitted qlaunch 4 (slurm job" "a job for the backlog"
OUT=$(copal service --once 2>&1)
assert_not_contains "$OUT" "submitted" "covered: no second job"
assert_eq 4 "$(jobs_json | jq length)" "still four jobs"
for i in 1 2 3 4; do wait_for_state "s$i" JOB_FINISHED 90; done
wait_job_state 4 FINISHED 60

# a job that cannot start (the node is taken by another user's job) is
# cancelled by the service after service_max_wait_minutes
blocker=$(sbatch --parsable --exclusive -N1 -t 5 --wrap 'sleep 300')
add_job w1 nap --args 1 >/dev/null
OUT=$(copal service --once 2>&1)
assert_contains "$OUT" "submitted qlaunch 5" "a job for the new task"
# the blocker holds the node; then squeue shows ours waiting behind it
wait_for "[[ \$(squeue -h -j '$blocker' -o %T 2>/dev/null) == RUNNING ]]" 60 \
    "the blocker job $blocker running"
wait_for "[[ \$(job_field 5 sched_state) == PENDING ]]" 60 \
    "qlaunch 5 PENDING in squeue"
assert_eq QUEUED "$(job_field 5 state)" "waits behind the blocker"
t0=$SECONDS
while :; do
	OUT=$(copal service --once 2>&1)
	[[ $OUT == *"cancelled after waiting"* ]] && break
	((SECONDS - t0 < 120)) || fail "service never cancelled qlaunch 5: $OUT"
	sleep 5
done
assert_eq CANCELLED "$(job_field 5 state)" "cancelled job"
sid5=$(job_field 5 scheduler_id)
st=$(squeue -h -t all -j "$sid5" -o %T 2>/dev/null || true)
[[ -z $st || $st == CANCELLED ]] || fail "slurm job $sid5 is $st, not cancelled"
scancel "$blocker"
copal killjob --yes "$(uuid_of w1)" >/dev/null

# ------------------------------------------------------------ queue rm
# the service may have submitted another job for w1 meanwhile: cancel
# whatever copal has queued or running (several ids at once)
active=$(jobs_json | jq -r '.[] | select(.state == "QUEUED" or .state == "RUNNING") | .id')
if [[ -n $active ]]; then
	# shellcheck disable=SC2086
	out=$(copal queue rm $active 2>&1) || fail "queue rm $active: $out"
	for id in $active; do
		assert_eq CANCELLED "$(job_field "$id" state)" "job $id after queue rm"
	done
fi
add_job longrun nap --args 300 >/dev/null
out=$(copal submit-launch -A chem -q debug -n 1 -t 2 --job-mode serial) ||
    fail "submit: $out"
qid=$(sed -n 's/^Submit OK: qlaunch \([0-9]*\)$/\1/p' <<<"$out")
[[ -n $qid ]] || fail "no qlaunch id in: $out"
wait_for_state longrun RUNNING 90
sidq=$(job_field "$qid" scheduler_id)
out=$(copal queue rm "$qid" 2>&1) || fail "queue rm $qid: $out"
assert_contains "$out" "qlaunch $qid (slurm job $sidq): cancelled" "queue rm says"
assert_eq CANCELLED "$(job_field "$qid" state)" "job $qid record"
assert_contains "$(job_field "$qid" message)" "scancel $sidq" "message"
st=$(state_of longrun)
if [[ $st != RESTART_READY && $st != READY ]]; then
	copal history "$(uuid_of longrun)" >&2 || true
	copal ls queues --verbose >&2 || true
	fail "longrun is $st after queue rm"
fi
assert_contains "$(copal history "$(uuid_of longrun)")" \
    "(batch job $qid, scheduler job $sidq)" "its run in job $qid"
copal killjob --yes "$(uuid_of longrun)" >/dev/null
set +e
out=$(copal queue rm 1 2>&1); rc=$?
set -e
assert_eq 1 "$rc" "queue rm of a finished job: $out"
assert_contains "$out" "batch job 1 is FINISHED: nothing to cancel" "says why"
pass
