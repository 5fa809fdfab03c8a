#!/usr/bin/env bash
# Scenario 1, success: tasks run to JOB_FINISHED, the output is in
# data/<workflow>/<name>_<uuid8>/<name>.out, the task sees copal's
# environment (ids, database, parents, nodes, mode, OMP_NUM_THREADS from
# --threads-per-rank, its --env variables, the app's envscript sourced
# before the app) and inherits no descriptor but 0, 1 and 2.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/envscript.sh" <<'SH'
export FROM_ENVSCRIPT=yes
export ENVSCRIPT_SAW_TASK_ID="${COPAL_TASK_ID:-unset}"
export ENVSCRIPT_SAW_GREETING="${GREETING:-unset}"
SH

add_app hello 'echo Hello,'
add_app envprobe env --envscript "$T/envscript.sh"
add_app fds 'ls -1 /proc/self/fd'

hello=$(add_job hello hello --workflow wf1 --args "World 1!")
probe=$(add_job probe envprobe --workflow wf1 --parents "$hello" \
    --threads-per-rank 4 --env "GREETING=hello there" --env COLOR=blue)
fds=$(add_job fds fds --workflow wf1)
assert_eq AWAITING_PARENTS "$(state_of probe)" "probe waits for hello"

start_launcher l1 --job-mode serial --idle-ttl 1 -v
L1=$LPID
for t in hello probe fds; do
	wait_for_state $t JOB_FINISHED 30
done
wait_launcher "$L1" 30

# ---- hello: output where it belongs, a clean history
out=$DB/data/wf1/hello_${hello:0:8}/hello.out
[[ -f $out ]] || fail "no output file $out; data/ has: $(cd "$DB/data" && find .)"
assert_eq "Hello, World 1!" "$(cat "$out")" "output of hello"
assert_eq "$out" "$(workdir_of hello)/hello.out" "workdir_of helper"
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
    "$(transitions_of hello)" "history of hello"
assert_eq 1 "$(task_field hello attempt)" "attempt of hello"
assert_eq 0 "$(task_field hello return_code)" "return code of hello"

# ---- probe: the environment of a task
penv=$(cat "$DB/data/wf1/probe_${probe:0:8}/probe.out")
envv() { # NAME: the value of NAME in the probe's environment
	local line
	line=$(grep -m1 "^$1=" <<<"$penv") || fail "probe's environment lacks $1:"$'\n'"$penv"
	echo "${line#*=}"
}
assert_eq "$(id_of probe)" "$(envv COPAL_TASK_ID)" "COPAL_TASK_ID"
assert_eq "$probe" "$(envv COPAL_TASK_UUID)" "COPAL_TASK_UUID"
assert_eq probe "$(envv COPAL_TASK_NAME)" "COPAL_TASK_NAME"
assert_eq wf1 "$(envv COPAL_WORKFLOW)" "COPAL_WORKFLOW"
assert_eq "$DB" "$(envv COPAL_DB)" "COPAL_DB"
assert_eq "$(id_of hello)" "$(envv COPAL_PARENT_IDS)" "COPAL_PARENT_IDS"
assert_eq "$(uname -n)" "$(envv COPAL_NODES)" "COPAL_NODES (local host)"
assert_eq "$(uname -n)" "$(envv COPAL_LAUNCHER_NODES)" "COPAL_LAUNCHER_NODES"
assert_eq serial "$(envv COPAL_JOB_MODE)" "COPAL_JOB_MODE"
assert_eq 1 "$(envv COPAL_ATTEMPT)" "COPAL_ATTEMPT"
assert_eq 4 "$(envv OMP_NUM_THREADS)" "OMP_NUM_THREADS from --threads-per-rank 4"
assert_eq "hello there" "$(envv GREETING)" "--env GREETING"
assert_eq blue "$(envv COLOR)" "--env COLOR"
assert_eq yes "$(envv FROM_ENVSCRIPT)" "variable exported by the envscript"
assert_eq "$(id_of probe)" "$(envv ENVSCRIPT_SAW_TASK_ID)" \
    "the envscript runs in the task's environment"
assert_eq "hello there" "$(envv ENVSCRIPT_SAW_GREETING)" \
    "the envscript sees the task's --env variables"
# the launcher's own variables are passed on (PATH: copal is found)
assert_eq "$PATH" "$(envv PATH)" "PATH"

# ---- fds: no descriptor of the launcher leaks into a task; ls itself
# opens one (3) to read the directory
fout=$(paste -sd' ' "$DB/data/wf1/fds_${fds:0:8}/fds.out")
assert_eq "0 1 2 3" "$fout" "descriptors open in a task (ls /proc/self/fd)"

pass
