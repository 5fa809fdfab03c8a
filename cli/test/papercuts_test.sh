#!/usr/bin/env bash
# Issue 18, the paper cuts a new user meets, each through the real CLI,
# broker and launcher, with the exact messages and exit codes:
#
#   1. copal server start prints the pid of the broker that runs (never
#      0); the pid file is whole whenever it is there;
#   2. copal ls --wf for an unknown workflow: exit 3, the closest names;
#   3. a launcher whose --wf-filter matches no task refuses to start,
#      unless --persistent or --idle-ttl says to wait;
#   4. runnable tasks that fit no node of a launcher: it says so when it
#      goes idle and at exit; copal ls says so once such a launcher ran;
#   5. a bulk load that loses the broker says which lines were
#      acknowledged, which may or may not have been added, and how to look;
#   6. copal completion bash completes verbs and options.
#
#   papercuts_test.sh BUILD_DIR
#
# Uses the launcher tests' helpers (launcher/test/lib.sh).
COPAL_BIN=${1:-${COPAL_BIN:-}}
export COPAL_BIN
source "$(dirname "$0")/../../launcher/test/lib.sh"

# run CMD...: runs CMD; its stdout, stderr and exit status go to
# OUT, ERR and RC (a failure does not stop the test)
run() {
	local o=$T/run.out e=$T/run.err
	RC=0
	"$@" >"$o" 2>"$e" || RC=$?
	OUT=$(<"$o")
	ERR=$(<"$e")
}

setup_db

# ------------------------------------------------------------ 1. pid file
for i in 1 2 3 4 5; do
	run copal server stop
	assert_eq 0 "$RC" "server stop ($ERR)"
	run copal server start
	assert_eq 0 "$RC" "server start ($ERR)"
	assert_match "$OUT" "^broker for $DB started \(pid [1-9][0-9]*\)$" \
	    "server start output"
	pid=${OUT##*pid }
	pid=${pid%)}
	assert_eq "$pid" "$(<"$DB/broker.pid")" "pid printed = pid file"
	assert_eq copal-broker "$(cat /proc/"$pid"/comm)" "pid $pid is the broker"
	run copal server status
	assert_contains "$OUT" "pid:            $pid" "server status pid"
	run copal server start
	assert_eq "broker for $DB already running (pid $pid)" "$OUT" \
	    "second server start"
done
compgen -G "$DB/broker.pid.*" >/dev/null && fail "temporary pid file left"
# the autostart line of any verb shows the real pid too
run copal server stop
run env -u COPAL_NO_AUTOSTART copal --db "$DB" ls
assert_eq 0 "$RC" "ls with autostart ($ERR)"
assert_eq "copal: started the broker for $DB (pid $(<"$DB/broker.pid"))" \
    "$ERR" "autostart message"
log "1. pid file: ok"

# ------------------------------------------------------------ 2. ls --wf
add_app hello 'echo hello'
add_job a1 hello --workflow alpha >/dev/null
add_job a2 hello --workflow alpha2 >/dev/null
add_job b1 hello --workflow beta >/dev/null
run copal ls --wf alpah
assert_eq 3 "$RC" "ls --wf alpah: exit status"
assert_eq "" "$OUT" "ls --wf alpah prints no table"
assert_eq "copal ls: no workflow named alpah; did you mean: alpha, alpha2?" \
    "$ERR" "ls --wf alpah"
run copal ls --wf alp
assert_eq 3 "$RC" "ls --wf alp: exit status"
assert_eq "copal ls: no workflow named alp; did you mean: alpha, alpha2?" \
    "$ERR" "ls --wf alp (a prefix)"
run copal ls --wf zzzzzz
assert_eq 3 "$RC" "ls --wf zzzzzz: exit status"
assert_eq "copal ls: no workflow named zzzzzz; the workflows are: alpha, alpha2, beta" \
    "$ERR" "ls --wf zzzzzz (nothing close)"
run copal ls wf --wf gamma
assert_eq 3 "$RC" "ls wf --wf gamma: exit status"
run copal ls --wf alpha --format csv
assert_eq 0 "$RC" "ls --wf alpha ($ERR)"
assert_eq 2 "$(wc -l <<<"$OUT")" "ls --wf alpha: one task"
log "2. ls --wf: ok"

# ------------------------------------------------------------ 3. --wf-filter
run copal launcher --job-mode serial --wf-filter alpah
assert_eq 3 "$RC" "launcher --wf-filter alpah: exit status"
assert_eq "copal launcher: --wf-filter alpah matches no task; did you mean: alpha, alpha2? (the workflows with tasks: alpha, alpha2, beta)
copal launcher: to wait for tasks of alpah to come, give --persistent or --idle-ttl S" \
    "$ERR" "launcher --wf-filter alpah"
run copal launcher --job-mode serial --wf-filter zzz
assert_eq 3 "$RC" "launcher --wf-filter zzz: exit status"
assert_eq "copal launcher: --wf-filter zzz matches no task (the workflows with tasks: alpha, alpha2, beta)
copal launcher: to wait for tasks of zzz to come, give --persistent or --idle-ttl S" \
    "$ERR" "launcher --wf-filter zzz"
# told to wait: it starts, and ends after its idle time
run copal launcher --job-mode serial --wf-filter alpah --idle-ttl 1
assert_eq 0 "$RC" "launcher --wf-filter alpah --idle-ttl 1 ($ERR)"
assert_contains "$ERR" "done: 0 task(s) run" "the waiting launcher ran"
start_launcher persistent --job-mode serial --wf-filter later --persistent
wait_for 'grep -q "started: serial mode" "$T/persistent.log"' 30 \
    "the --persistent launcher starts"
add_job l1 hello --workflow later >/dev/null
wait_for_state l1 JOB_FINISHED 30
stop_launcher "$LPID"
# a filter that matches is taken as before
start_launcher alpha --job-mode serial --wf-filter alpha --idle-ttl 1
wait_launcher "$LPID" 30
assert_eq JOB_FINISHED "$(state_of a1)" "a1 run by --wf-filter alpha"
log "3. --wf-filter: ok"

# ------------------------------------------------------------ 4. unfit tasks
huge=$(add_job huge hello --workflow big --num-nodes 64)
# one node, no GPU: it says why it runs nothing, idle and at its end
start_launcher big --job-mode serial --wf-filter big --idle-ttl 2
wait_launcher "$LPID" 30
want="1 runnable task(s) of workflow big fit no node of this launcher: the largest request is 64 node(s), 0 GPU(s) per node, no wall time; this launcher has 1 node(s), 0 GPU(s) per node, no wall-time limit"
assert_eq 1 "$(grep -c "WARN *idle: $want\$" "$T/big.log")" "idle warning once: $(cat "$T/big.log")"
assert_eq 1 "$(grep -c "WARN *done: $want\$" "$T/big.log")" "exit warning"
assert_contains "$(tail -1 "$T/big.log")" "done: 0 task(s) run" "last line"
assert_eq READY "$(state_of huge)" "huge stays READY"
# GPUs and wall time are checked too
add_job gpu hello --workflow gpus --gpus-per-rank 2 >/dev/null
add_job long hello --workflow gpus --wall-time-minutes 30 >/dev/null
start_launcher gpus --job-mode serial --wf-filter gpus --idle-ttl 2 \
    --gpus-per-node 1 --time-limit-minutes 10
wait_launcher "$LPID" 30
assert_contains "$(cat "$T/gpus.log")" "WARN   done: 2 runnable task(s) of workflow gpus fit no node of this launcher: the largest request is 1 node(s), 2 GPU(s) per node, 30 minutes; this launcher has 1 node(s), 1 GPU(s) per node, " \
    "GPU and wall-time warning"
assert_match "$(grep 'WARN *done' "$T/gpus.log")" "1 GPU\(s\) per node, [0-9]+ minutes left$" \
    "the wall time left"
# copal ls says the same, now that launchers ran on this database: of
# the shapes recorded, none fits huge or gpu (long fits the first: no
# wall-time limit)
run copal ls
assert_eq 0 "$RC" "ls ($ERR)"
assert_eq "copal ls: warning: 2 runnable task(s) can never run: no launcher that ran on this database fits them: the largest request is 64 node(s), 2 GPU(s) per node, no wall time; the launchers had 1 node(s), 0 GPU(s) per node, no wall-time limit; 1 node(s), 1 GPU(s) per node, 10 minutes: ${huge:0:8} huge, $(uuid_of gpu | cut -c1-8) gpu" \
    "$ERR" "ls warning"
log "4. unfit tasks: ok"

# ------------------------------------------------------------ 5. bulk load
# Batches of 5 lines from a pipe: lines 1-10 go in and are acknowledged;
# then the broker stops answering (SIGSTOP) and lines 11-15 go out as one
# batch that times out; lines 16-17 are never sent.
mkfifo "$T/bulk.fifo"
line() { printf '{"name": "%s", "workflow": "bulk", "app": "hello"}\n' "$1"; }
COPAL_TIMEOUT=2 copal job --from-file "$T/bulk.fifo" --batch 5 \
    >"$T/bulk.out" 2>"$T/bulk.err" &
bulk=$!
exec 7>"$T/bulk.fifo"
for i in $(seq 1 10); do line "t$i" >&7; done
wait_for '[[ $(copal ls --wf bulk --format csv 2>/dev/null | wc -l) == 11 ]]' 30 \
    "the first 10 lines added"
bpid=$(<"$DB/broker.pid")
kill -STOP "$bpid"
for i in $(seq 11 17); do line "t$i" >&7; done
exec 7>&-
rc=0
wait "$bulk" || rc=$?
kill -CONT "$bpid"
assert_eq 1 "$rc" "exit status of the failed load"
assert_eq "copal job: no answer from the broker: timed out
$T/bulk.fifo: lines 1-10 were added (10 tasks, acknowledged by the broker)
$T/bulk.fifo: lines 11-15 may or may not have been added (sent, but the broker did not answer); look for the tasks of lines 11 and 15 with:
  copal ls --wf bulk --name t11
  copal ls --wf bulk --name t15
$T/bulk.fifo: nothing from line 16 on was added" "$(<"$T/bulk.err")" "failed load"
assert_not_contains "$(<"$T/bulk.err")" "Nothing of the failing batch" \
    "no contradiction"
# the commands it names answer the question
run copal ls --wf bulk --name t15 --format csv
assert_eq 0 "$RC" "ls of a maybe-added task ($ERR)"
log "5. bulk load: ok"

# ------------------------------------------------------------ 6. completion
run command copal completion bash
assert_eq 0 "$RC" "completion bash ($ERR)"
script=$OUT
run command copal completion zsh
assert_eq 2 "$RC" "completion zsh"
# complete WORD...: the completions of the last word, as bash's
# programmable completion asks _copal for them
complete_words() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	_copal
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
(
	set +eu
	eval "$script"
	# every verb of the table is there (copal --help lists them)
	for v in $(command copal --help | sed -n '/^verbs:/,/^$/p' | awk 'NF > 1 {print $1}'); do
		[[ " $_copal_verbs " == *" $v "* ]] || fail "verb $v not completed"
	done
	assert_eq "launcher log ls " "$(complete_words copal l)" "copal l<TAB>"
	assert_eq "launcher log ls " "$(complete_words copal --db /x l)" \
	    "copal --db /x l<TAB>"
	assert_eq "--db " "$(complete_words copal --d)" "copal --d<TAB>"
	assert_eq "--wf --workflow " "$(complete_words copal ls --w)" \
	    "copal ls --w<TAB>"
	# the task spec's options, from common/src/spec.c's table
	assert_eq "--name --no-auto-timeout-retry --node-packing-count --num-nodes " \
	    "$(complete_words copal job --n)" "copal job --n<TAB>"
	assert_eq "--gpus-per-rank " "$(complete_words copal mkchild --gp)" \
	    "copal mkchild --gp<TAB>"
	# the launcher's, from its own option table
	assert_eq "--wf-filter " "$(complete_words copal launcher --wf)" \
	    "copal launcher --wf<TAB>"
	assert_eq "--persistent " "$(complete_words copal launcher --pe)" \
	    "copal launcher --pe<TAB>"
	# an option's value is a file name, not an option
	touch "$T/values.jsonl"
	assert_eq "$T/values.jsonl " \
	    "$(complete_words copal job --from-file "$T/values.j")" \
	    "copal job --from-file FILE<TAB>"
	assert_eq "ls " "$(complete_words copal help ls)" "copal help ls<TAB>"
) || exit 1
log "6. completion: ok"

pass
