#!/usr/bin/env bash
# copal submit-launch and copal ls queues on the local scheduler (no batch
# system: the job script starts at once on this machine): a job runs a
# batch of tasks to JOB_FINISHED and ends; the record follows; SIGTERM to
# the job reaches the launcher; bad requests are refused and change
# nothing; a broken template fails the submission with its line.
source "$(dirname "$0")/../../launcher/test/lib.sh"
setup_db

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

# init copied the default templates and made qsubmit/
for s in local slurm pbs cobalt; do
	[[ -s $DB/job-templates/$s.tmpl ]] || fail "no job-templates/$s.tmpl"
done
[[ -d $DB/qsubmit ]] || fail "no qsubmit/"

add_app hello /bin/echo
for i in 1 2 3 4 5 6; do add_job "t$i" hello --args "hi $i" >/dev/null; done

# ------------------------------------------------------------ a job
# (a database made before templates existed: the default is written back)
rm "$DB/job-templates/local.tmpl"
out=$(copal submit-launch -n 1 -t 2 --job-mode serial 2>&1) || fail "submit-launch: $out"
assert_contains "$out" "wrote copal's default template" "template restored"
[[ -s $DB/job-templates/local.tmpl ]] || fail "default template not written back"
assert_contains "$out" "Submit OK: qlaunch 1" "submit output"
assert_contains "$out" "$DB/qsubmit/qlaunch1.sh" "script path shown"
[[ -x $DB/qsubmit/qlaunch1.sh ]] || fail "script not written"
bash -n "$DB/qsubmit/qlaunch1.sh" || fail "script is not valid bash"
# the launcher's limit is below the job's two minutes (margin 30 s = 1/4)
grep -q -- '--time-limit-minutes 1.50' "$DB/qsubmit/qlaunch1.sh" ||
    fail "launcher limit: $(grep launcher "$DB/qsubmit/qlaunch1.sh")"
assert_eq RUNNING "$(job_field 1 state)" "local job runs at once"
pid=$(job_field 1 scheduler_id)
assert_match "$pid" '^[0-9]+$' "local job id is a pid"
for i in 1 2 3 4 5 6; do wait_for_state "t$i" JOB_FINISHED 30; done
# the launcher ends when idle, and so does the job
wait_job_state 1 FINISHED 40
assert_eq gone "$(job_field 1 sched_state)" "sched_state"
assert_contains "$(cat "$DB/qsubmit/qlaunch1.out")" "launcher" "job output"

# ------------------------------------------------------------ SIGTERM
add_app sleeper /bin/sleep
add_job long sleeper --args 60 >/dev/null
out=$(copal submit-launch -n 1 -t 5 --job-mode serial) || fail "submit 2: $out"
wait_for_state long RUNNING 20
pid=$(job_field 2 scheduler_id)
# what a scheduler does at scancel / the end of the wall time: SIGTERM to
# the job's processes; the script passes it on, the launcher stops its task
kill -TERM "$pid"
wait_job_state 2 FINISHED 30
st=$(state_of long)
[[ $st != RUNNING ]] || fail "task still RUNNING after the job's SIGTERM"
grep -qi "sigterm\|signal" "$DB/qsubmit/qlaunch2.out" ||
    fail "launcher did not see SIGTERM: $(tail -5 "$DB/qsubmit/qlaunch2.out")"
copal killjob --yes "$(uuid_of long)" >/dev/null 2>&1 || true

# ------------------------------------------------------------ bad requests
n_before=$(jobs_json | jq length)
refused() { # ARGS...: copal submit-launch ARGS must exit 2
	set +e
	out=$(copal submit-launch "$@" 2>&1)
	local rc=$?
	set -e
	assert_eq 2 "$rc" "submit-launch $*: $out"
}
refused -n 0 -t 5
refused -n 1
refused -n 1 -t 5 --job-mode both
refused -n 1 -t 5 -q 'bad;rm -rf /'
refused -n 1 -t 5 --wf-filter 'a b'
refused -n 1 -t 5 -A '$(reboot)'
refused -n 70000 -t 5
refused -n 1 -t 5 --sched-flags $'--x\n--y'
assert_eq "$n_before" "$(jobs_json | jq length)" "bad requests recorded nothing"

# slurm needs a project and a queue
sed -i 's/^scheduler = local/scheduler = slurm/' "$DB/copal.conf"
set +e
out=$(copal submit-launch -n 1 -t 5 2>&1); rc=$?
set -e
assert_eq 2 "$rc" "slurm without -A: $out"
assert_contains "$out" "project" "says what is missing"
sed -i 's/^scheduler = slurm/scheduler = local/' "$DB/copal.conf"

# an invalid settings file: refused with file and line
cp "$DB/copal.conf" "$T/conf.good"
echo "service_period_seconds = soon" >>"$DB/copal.conf"
set +e
out=$(copal submit-launch -n 1 -t 5 2>&1); rc=$?
set -e
assert_eq 1 "$rc" "bad conf: $out"
assert_match "$out" "copal.conf:[0-9]+:.*service_period_seconds" "conf error names the line"
cp "$T/conf.good" "$DB/copal.conf"

# a broken template: the submission fails and says where; the record stays
# as SUBMIT_FAILED with that message
cp "$DB/job-templates/local.tmpl" "$T/local.tmpl.good"
printf '#!/bin/bash\necho {{ no_such_variable }}\n' >"$DB/job-templates/local.tmpl"
set +e
out=$(copal submit-launch -n 1 -t 5 2>&1); rc=$?
set -e
assert_eq 1 "$rc" "broken template: $out"
assert_contains "$out" "Submit FAILED" "failure said"
assert_contains "$out" "no_such_variable" "failure names the variable"
id=$(jobs_json | jq '.[-1].id')
assert_eq SUBMIT_FAILED "$(job_field "$id" state)" "failed record"
assert_contains "$(job_field "$id" message)" "no_such_variable" "record message"
cp "$T/local.tmpl.good" "$DB/job-templates/local.tmpl"
# a template named in the settings that is not there: refused, named
echo "job_template = job-templates/site.tmpl" >>"$DB/copal.conf"
sed -i '0,/^job_template = $/{/^job_template = $/d}' "$DB/copal.conf"
set +e
out=$(copal submit-launch -n 1 -t 5 2>&1); rc=$?
set -e
assert_eq 1 "$rc" "missing template: $out"
assert_contains "$out" "job-templates/site.tmpl" "names the missing template"
[[ ! -e $DB/job-templates/site.tmpl ]] || fail "a site template was invented"
cp "$T/conf.good" "$DB/copal.conf"

# ls queues as a table
out=$(copal ls queues)
assert_contains "$out" "SUBMIT_FAILED" "table shows failures"
assert_contains "$out" "FINISHED" "table shows finished jobs"
pass
