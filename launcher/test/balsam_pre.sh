#!/usr/bin/env bash
# A preprocess edits its own task before the run (issue 22, Balsam's
# reduce_pre.py): three parents write square.dat (4, 9, 16); the reduce's
# preprocess lists the files linked in (square.dat, square.dat_<uuid8>...),
# sets its own task's args to them and SCALE=2 in its environment with
# `copal modify --lease $COPAL_LEASE_ID`, and THIS run (the only one) uses
# them: sum 2 * (4 + 9 + 16) = 58.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/square.sh" <<'SH'
echo $(($1 * $1)) >square.dat
SH
cat >"$T/pre.sh" <<'SH'
files=$(ls square.dat* | tr '\n' ' ')
echo "pre found: $files"
copal modify --lease "$COPAL_LEASE_ID" "$COPAL_TASK_UUID" args "$files" || exit 9
copal modify --lease "$COPAL_LEASE_ID" "$COPAL_TASK_UUID" env SCALE=2 || exit 9
SH
cat >"$T/reduce.sh" <<'SH'
echo "reduce args=$* attempt=$COPAL_ATTEMPT scale=${SCALE:-unset}"
s=0
for f; do s=$((s + $(cat "$f"))); done
echo "sum $((s * ${SCALE:-1}))"
SH
add_app square "sh $T/square.sh"
add_app reduce "sh $T/reduce.sh" --preprocess "sh $T/pre.sh"
p1=$(add_job p1 square --workflow wf --args 2)
p2=$(add_job p2 square --workflow wf --args 3)
p3=$(add_job p3 square --workflow wf --args 4)
add_job red reduce --workflow wf --parents "$p1,$p2,$p3" \
    --input-files 'square.dat*' --env SCALE=1 >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1 -v
wait_for_state red JOB_FINISHED 40
wait_launcher "$LPID" 30

out=$(cat "$(workdir_of red)/red.out")
assert_contains "$out" "scale=2" "the run saw the environment its preprocess set"
assert_contains "$out" "sum 58" "the reduce's sum"
assert_eq 1 "$(grep -c '^reduce args' <<<"$out")" "one run"
assert_contains "$out" "attempt=1" "on its first attempt"
assert_eq "CREATED->AWAITING_PARENTS AWAITING_PARENTS->READY READY->STAGED_IN STAGED_IN->PREPROCESSED PREPROCESSED->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
    "$(transitions_of red)" "history of red"
a=$(task_field red args)
assert_contains "$a" "square.dat" "args stored"
assert_eq 3 "$(wc -w <<<"$a")" "three files in the args"
# env: the preprocess's SCALE replaced the task's own
assert_eq 2 "$(copal ls --name red --format json | jq -r '.[0].env.SCALE')" \
    "SCALE stored"
# bad input: no name, nothing changed
if copal modify "$(uuid_of red)" env =3 2>"$T/err.txt"; then
	fail "modify env =3 was accepted"
fi
assert_eq 2 "$(copal ls --name red --format json | jq -r '.[0].env.SCALE')" \
    "SCALE unchanged by a refused modify"
pass
