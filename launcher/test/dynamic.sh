#!/usr/bin/env bash
# Scenario 10, a dynamic DAG: a running task adds two children, one with
# `copal mkchild` and one with `copal job --parents $COPAL_TASK_UUID`; they
# wait for it, then the same launcher runs them to JOB_FINISHED.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/spawner.sh" <<'SH'
set -e
copal mkchild --name kid1 --app kid -q >kid1.uuid
copal job --name kid2 --app kid --workflow "$COPAL_WORKFLOW" \
    --parents "$COPAL_TASK_UUID" -q >kid2.uuid
echo "spawned $(cat kid1.uuid) $(cat kid2.uuid)"
SH
add_app spawner "sh $T/spawner.sh"
add_app kid "sh -c 'echo parents=\$COPAL_PARENT_IDS wf=\$COPAL_WORKFLOW'"
add_job spawner spawner --workflow dyn >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 2 -v
wait_for_state spawner JOB_FINISHED 20
sd=$(workdir_of spawner)
for k in kid1 kid2; do
	[[ -s $sd/$k.uuid ]] || fail "the spawner did not add $k: $(cat "$sd/spawner.out")"
	assert_eq "$(cat "$sd/$k.uuid")" "$(uuid_of $k)" "uuid printed for $k"
	wait_for_state $k JOB_FINISHED 20
done
wait_launcher "$LPID" 30

sid=$(id_of spawner)
for k in kid1 kid2; do
	assert_eq dyn "$(task_field $k workflow)" "workflow of $k"
	assert_eq "[\"$(uuid_of spawner)\"]" "$(task_field $k parents | jq -c .)" "parents of $k"
	assert_eq "parents=$sid wf=dyn" "$(cat "$(workdir_of $k)/$k.out")" "output of $k"
	# added while the spawner ran: they waited for it
	assert_eq "CREATED->AWAITING_PARENTS AWAITING_PARENTS->READY READY->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
	    "$(transitions_of $k)" "history of $k"
	# by the one launcher there is (its -v log names every task it runs)
	grep -q "$(uuid_of $k)" "$T/l1.log" || fail "launcher l1 did not run $k"
done
pass
