#!/usr/bin/env bash
# Issue 22: tasks with a direct command and no app (Balsam's
# direct_command), and a task's own preprocess / postprocess overriding its
# app's:
#   hi:      copal job --command 'echo hi' --args there (no --app)
#   own:     app base has pre/post; the task's own --preprocess and
#            --postprocess run instead
#   inherit: same app, no overrides: the app's run
#   judged:  a direct command that fails, with its own postprocess as its
#            error handler: exit 3 -> JOB_FINISHED
#   jl:      a JSON line with command and preprocess (copal job --from-file)
#   bad input: neither --app nor --command; an unknown app: refused,
#            nothing added
source "$(dirname "$0")/lib.sh"
setup_db

add_app base "echo base-run" --preprocess "echo app-pre" \
    --postprocess "echo app-post"
out=$(copal job --name hi --workflow wf --command 'echo hi' --args there -q) ||
    fail "copal job --command without --app failed"
assert_match "$out" '^[0-9a-f-]{36}$' "uuid of hi"
add_job own base --workflow wf --preprocess "echo task-pre" \
    --postprocess "echo task-post" >/dev/null
add_job inherit base --workflow wf >/dev/null
cat >"$T/handler.sh" <<'SH'
echo "handler stage=$COPAL_STAGE error=${COPAL_ERROR:-0}"
[ "$COPAL_STAGE" = handler ] || exit 0
grep -q "partial 7" "$COPAL_TASK_NAME.out" && exit 3
exit 1
SH
copal job --name judged --workflow wf -q --post-error-handler \
    --command "sh -c 'echo partial 7; exit 1'" \
    --postprocess "sh $T/handler.sh" >/dev/null || fail "judged not added"
printf '%s\n' '{"name": "jl", "workflow": "wf", "command": "echo jl-run", "preprocess": "echo jl-pre"}' \
    >"$T/tasks.jsonl"
copal job --from-file "$T/tasks.jsonl" >/dev/null || fail "JSON line refused"

# ---- bad input: a clear error, nothing added
n0=$(copal ls --wf wf --format json | jq length)
if copal job --name none --workflow wf -q 2>"$T/err1.txt"; then
	fail "a task with neither an app nor a command was accepted"
fi
assert_contains "$(cat "$T/err1.txt")" "application (app) or a command" \
    "refusal of a task without app and command"
if copal job --name ghost --workflow wf --app nosuch -q 2>"$T/err2.txt"; then
	fail "a task of an unknown app was accepted"
fi
assert_contains "$(cat "$T/err2.txt")" "nosuch" "refusal names the unknown app"
assert_eq "$n0" "$(copal ls --wf wf --format json | jq length)" \
    "nothing added by refused jobs"

start_launcher l1 --job-mode serial --idle-ttl 1 -v
for t in hi own inherit judged jl; do
	wait_for_state $t JOB_FINISHED 40
done
wait_launcher "$LPID" 30

assert_eq "hi there" "$(cat "$(workdir_of hi)/hi.out")" "output of hi"
assert_eq "" "$(task_field hi application)" "hi has no app"
assert_eq "echo hi" "$(task_field hi command)" "command of hi"
out=$(cat "$(workdir_of own)/own.out")
assert_eq "task-pre base-run task-post" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')" \
    "own's stages: its own pre and post around the app's run"
out=$(cat "$(workdir_of inherit)/inherit.out")
assert_eq "app-pre base-run app-post" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')" \
    "inherit's stages: the app's"
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_ERROR RUN_ERROR->JOB_FINISHED" \
    "$(transitions_of judged)" "history of judged"
assert_contains "$(cat "$(workdir_of judged)/judged.out")" \
    "handler stage=handler error=1" "the task's own handler ran"
out=$(cat "$(workdir_of jl)/jl.out")
assert_eq "jl-pre jl-run" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')" \
    "jl's stages from its JSON line"
assert_eq "echo jl-pre" "$(task_field jl preprocess)" "jl's preprocess stored"
pass
