# Shared helpers of the launcher integration tests (launcher/test/*.sh).
#
# A test script does:
#
#   source "$(dirname "$0")/lib.sh"
#   setup_db                  # private database + broker (copal server start)
#   add_app ...; add_job ...
#   start_launcher l1 --job-mode serial --idle-ttl 1
#   wait_for_state NAME JOB_FINISHED 30
#   wait_launcher "$LPID" 30  # every launcher must end (exit status 0)
#   pass
#
# COPAL_BIN names the build tree; the programs are taken from
# $COPAL_BIN/cli, /broker and /launcher and put first on PATH.
# Everything lives in one `mktemp -d` directory ($T) with its own HOME and
# database ($DB). The EXIT trap stops the broker, kills any launcher left,
# fails the test if a launcher or a task process (or a sanitizer report) was
# left behind, prints the logs when the test failed, and removes $T.
set -euo pipefail
export LC_ALL=C

TEST_NAME=$(basename "$0" .sh)

if [[ -z ${COPAL_BIN:-} ]]; then
	echo "FAIL: $TEST_NAME: set COPAL_BIN to the build tree" \
	    "(e.g. COPAL_BIN=/work/main/build bash $0)" >&2
	exit 1
fi
COPAL_BIN=$(readlink -f "$COPAL_BIN")
# the source tree (this file is launcher/test/lib.sh in it)
COPAL_SRC=$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/../..")
for _b in cli/copal broker/copal-broker launcher/copal-launcher; do
	if [[ ! -x $COPAL_BIN/$_b ]]; then
		echo "FAIL: $TEST_NAME: $COPAL_BIN/$_b is not built" >&2
		exit 1
	fi
done
export PATH="$COPAL_BIN/cli:$COPAL_BIN/broker:$COPAL_BIN/launcher:$PATH"
export COPAL_BROKER_BIN=$COPAL_BIN/broker/copal-broker
# Nothing from the caller's session: its database, a remote broker, a task
# we might run inside, or a batch allocation (the launcher must find the
# local host).
unset COPAL_DB COPAL_BROKER_URL COPAL_TOKEN COPAL_TASK_ID COPAL_TASK_UUID \
    COPAL_PARENT_IDS COPAL_NODES COPAL_JOB_MODE COPAL_ATTEMPT COPAL_STAGE \
    COPAL_ERROR COPAL_TIMEOUT COPAL_TIMED_OUT COPAL_LEASE_ID OMP_NUM_THREADS SLURM_JOB_ID \
    SLURM_JOB_NODELIST SLURM_NODELIST PBS_NODEFILE COBALT_NODEFILE \
    COBALT_PARTNAME COPAL_BATCH_JOB_ID COPAL_SCHED_JOB_ID
# A broker that is not running is an error, never started behind our back.
export COPAL_NO_AUTOSTART=1

T=$(mktemp -d "${TMPDIR:-/tmp}/copal-lt-$TEST_NAME.XXXXXX")
T=$(readlink -f "$T")
DB=$T/db
export HOME=$T/home
mkdir -p "$HOME"
# In a sanitizer build every report (of the launcher, the broker, the CLI
# run by tasks) lands in $T/sanitizer.PROGRAM.PID; the EXIT trap fails on
# any.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer:log_exe_name=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer:log_exe_name=1"

LAUNCHER_PIDS=()
declare -A LAUNCHER_LOG=()
BROKER_STARTED=0
_T0=${EPOCHREALTIME/./}

# ------------------------------------------------------------ messages

# Milliseconds since the test started.
elapsed_ms() {
	local now=${EPOCHREALTIME/./}
	echo $(((now - _T0) / 1000))
}

log() {
	printf '[%s %6.1fs] %s\n' "$TEST_NAME" "$(elapsed_ms)e-3" "$*" >&2
}

fail() {
	echo "FAIL: $TEST_NAME: $*" >&2
	exit 1
}

assert_eq() { # WANT GOT MESSAGE
	if [[ "$1" != "$2" ]]; then
		fail "$3: expected [$1], got [$2]"
	fi
}

assert_contains() { # HAYSTACK NEEDLE MESSAGE
	if [[ "$1" != *"$2"* ]]; then
		fail "$3: [$2] not found in: $1"
	fi
}

assert_not_contains() { # HAYSTACK NEEDLE MESSAGE
	if [[ "$1" == *"$2"* ]]; then
		fail "$3: [$2] unexpectedly found in: $1"
	fi
}

assert_match() { # STRING ERE MESSAGE
	if ! [[ "$1" =~ $2 ]]; then
		fail "$3: [$1] does not match /$2/"
	fi
}

# A bound on a process's CPU time, in seconds: as given, or three times it
# in a sanitizer build (COPAL_SANITIZE), whose allocator and shadow memory
# make each of a process's wakeups several times dearer. (A launcher that
# spins uses the whole of its time: 27.6 s of 30, against 0.03-0.06 s.)
cpu_bound() {
	if grep -q '^COPAL_SANITIZE:BOOL=ON' "$COPAL_BIN/CMakeCache.txt" \
	    2>/dev/null; then
		awk -v b="$1" 'BEGIN { print b * 3 }'
	else
		echo "$1"
	fi
}

# Floating-point comparison with awk: fcmp A OP B, e.g. fcmp 1.5 '<' 2
fcmp() {
	awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN { if (op == "<") r = a < b; else if (op == "<=") r = a <= b; else if (op == ">") r = a > b; else if (op == ">=") r = a >= b; else r = 0; exit !r }'
}

pass() {
	log "PASS"
	exit 0
}

# ------------------------------------------------------------ database

# The copal command on this test's database (never $COPAL_DB of a caller).
copal() {
	command copal --db "$DB" "$@"
}

setup_db() {
	command copal init "$DB" >/dev/null
	copal server start >/dev/null
	BROKER_STARTED=1
	log "database $DB, broker started"
}

add_app() { # NAME EXECUTABLE [copal app options...]
	local name=$1 exe=$2
	shift 2
	copal app --name "$name" --executable "$exe" "$@" >/dev/null ||
	    fail "copal app --name $name failed"
}

add_job() { # NAME APP [copal job options...]; prints the uuid
	local name=$1 app=$2 out
	shift 2
	out=$(copal job --name "$name" --app "$app" -q "$@") ||
	    fail "copal job --name $name --app $app $* failed"
	assert_match "$out" '^[0-9a-f-]{36}$' "uuid of new task $name"
	echo "$out"
}

# The one task named NAME as a JSON object.
task_json() {
	local out n
	out=$(copal ls --name "$1" --format json) ||
	    fail "copal ls --name $1 --format json failed"
	n=$(jq length <<<"$out")
	assert_eq 1 "$n" "number of tasks named $1"
	jq -c '.[0]' <<<"$out"
}

task_field() { # NAME FIELD
	local j
	j=$(task_json "$1")
	jq -r ".$2" <<<"$j"
}

uuid_of() { task_field "$1" uuid; }
id_of() { task_field "$1" id; }

# State of the task named NAME (from copal ls --format csv: the last column).
state_of() {
	local out rows
	out=$(copal ls --name "$1" --format csv) ||
	    fail "copal ls --name $1 --format csv failed"
	rows=$(tail -n +2 <<<"${out//$'\r'/}") # CSV lines end in CRLF
	[[ -n $rows ]] || fail "no task named $1"
	[[ $(wc -l <<<"$rows") == 1 ]] || fail "several tasks named $1: $rows"
	echo "${rows##*,}"
}

# The history of task NAME, one event a line:
#   FROM->TO a=ATTEMPT rc=RC MESSAGE (newlines of the message as \n)
history_of() {
	local out
	out=$(copal ls --history --name "$1" --format json) ||
	    fail "copal ls --history --name $1 failed"
	jq -r '.[0].events[] | "\(.from)->\(.to) a=\(.attempt) rc=\(.return_code) \(.message | gsub("\n"; "\\n"))"' <<<"$out"
}

# Only the transitions of task NAME, space-separated: "CREATED->READY ...".
transitions_of() {
	local out
	out=$(copal ls --history --name "$1" --format json) ||
	    fail "copal ls --history --name $1 failed"
	jq -r '[.[0].events[] | "\(.from)->\(.to)"] | join(" ")' <<<"$out"
}

# The time (ISO 8601) of the first event of NAME that enters STATE.
time_entered() { # NAME STATE
	local out
	out=$(copal ls --history --name "$1" --format json) ||
	    fail "copal ls --history --name $1 failed"
	jq -r --arg s "$2" '[.[0].events[] | select(.to == $s)][0].time // ""' <<<"$out"
}

# Seconds since the epoch (with fractions) of an ISO 8601 history time.
iso_to_s() {
	date -d "$1" +%s.%N
}

# Seconds (with fractions) from the first entry of NAME into STATE1 to
# the first entry into STATE2 after it.
seconds_between() { # NAME STATE1 STATE2
	local out a b
	out=$(copal ls --history --name "$1" --format json) ||
	    fail "copal ls --history --name $1 failed"
	a=$(jq -r --arg s "$2" '[.[0].events[] | select(.to == $s)][0].time // ""' <<<"$out")
	[[ -n $a ]] || fail "task $1 never entered $2"
	b=$(jq -r --arg s "$3" --arg a "$a" '[.[0].events[] | select(.to == $s and .time >= $a)][0].time // ""' <<<"$out")
	[[ -n $b ]] || fail "task $1 never entered $3 after $2"
	awk -v a="$(iso_to_s "$a")" -v b="$(iso_to_s "$b")" 'BEGIN { printf "%.3f\n", b - a }'
}

# The run directory of task NAME: data/<workflow>/<name>_<uuid8>, uuid8
# the first 8 digits of a version 4 uuid, the last 8 of a version 7 one.
workdir_of() {
	local j wf uuid u8
	j=$(task_json "$1")
	wf=$(jq -r .workflow <<<"$j")
	uuid=$(jq -r .uuid <<<"$j")
	u8=${uuid:0:8}
	[[ ${uuid:14:1} == 7 ]] && u8=${uuid: -8}
	echo "$DB/data/${wf:-default}/$1_$u8"
}

is_final() {
	case $1 in
	JOB_FINISHED | FAILED | USER_KILLED | PARENT_KILLED) return 0 ;;
	*) return 1 ;;
	esac
}

# Polls until task NAME is in STATE (or one of STATE1|STATE2...); fails
# after TIMEOUT seconds, or at once if the task reached another final
# state.
wait_for_state() { # NAME STATE [TIMEOUT]
	local name=$1 want=$2 to=${3:-30} cur=""
	local deadline=$(($(elapsed_ms) + to * 1000))
	while :; do
		cur=$(state_of "$name")
		if [[ "|$want|" == *"|$cur|"* ]]; then
			return 0
		fi
		if is_final "$cur"; then
			fail "task $name reached $cur while waiting for $want;" \
			    "history:"$'\n'"$(history_of "$name")"
		fi
		if (($(elapsed_ms) > deadline)); then
			fail "task $name still $cur after ${to}s (waiting for" \
			    "$want); history:"$'\n'"$(history_of "$name")"
		fi
		sleep 0.2
	done
}

# Polls (every 0.2 s) until the shell command CONDITION succeeds; fails
# after TIMEOUT seconds, naming WHAT (default: the condition). Timing
# tests wait for what they need with a generous deadline rather than
# sleeping a fixed time or bounding a duration tightly: a loaded 2-core
# machine stretches every step.
wait_for() { # CONDITION TIMEOUT [WHAT]
	local cond=$1 to=$2 what=${3:-$1}
	local deadline=$(($(elapsed_ms) + to * 1000))
	until eval "$cond"; do
		(($(elapsed_ms) <= deadline)) || fail "not after ${to}s: $what"
		sleep 0.2
	done
}

# Waits until FILE exists (tasks use files to say how far they got).
wait_for_file() { # FILE [TIMEOUT]
	local f=$1 to=${2:-30}
	local deadline=$(($(elapsed_ms) + to * 1000))
	until [[ -s $f ]]; do
		(($(elapsed_ms) <= deadline)) || fail "no $f after ${to}s"
		sleep 0.1
	done
}

# ------------------------------------------------------------ processes

# True while PID runs (a zombie that is not reaped yet does not count).
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s%% *} != Z ]]
}

# Starts a launcher in the background: start_launcher LOGNAME [options...]
# (--db is added). Its pid is in LPID, its output in $T/LOGNAME.log.
# The launcher gets descriptors 0, 1 and 2 only, whatever the shell that
# runs the test has open (harnesses leak some), so that what a task finds
# open comes from the launcher; with LAUNCHER_EXTRA_FD=N it also inherits
# descriptor N (not close-on-exec), read-only on /dev/null.
start_launcher() {
	local name=$1
	shift
	(
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			if ((fd > 2 && fd != 255)); then
				eval "exec $fd>&-"
			fi
		done
		if [[ -n ${LAUNCHER_EXTRA_FD:-} ]]; then
			eval "exec $LAUNCHER_EXTRA_FD</dev/null"
		fi
		exec copal-launcher --db "$DB" "$@"
	) </dev/null >"$T/$name.log" 2>&1 &
	LPID=$!
	LAUNCHER_PIDS+=("$LPID")
	LAUNCHER_LOG[$LPID]=$T/$name.log
	log "launcher $name started (pid $LPID): $*"
}

# Waits for a launcher to end by itself (idle time, wall-time limit) and
# checks that it exited with status 0.
wait_launcher() { # PID [TIMEOUT]
	local pid=$1 to=${2:-60} rc=0
	local deadline=$(($(elapsed_ms) + to * 1000))
	while alive "$pid"; do
		if (($(elapsed_ms) > deadline)); then
			fail "launcher pid $pid still running after ${to}s"
		fi
		sleep 0.1
	done
	wait "$pid" || rc=$?
	log "launcher pid $pid exited with status $rc"
	assert_eq 0 "$rc" "exit status of launcher pid $pid (log" \
	    "${LAUNCHER_LOG[$pid]})"
}

# Ends a launcher (say, a --persistent one) with SIGTERM, as a batch
# system does, and checks that it exits with status 0.
stop_launcher() { # PID [TIMEOUT]
	kill -TERM "$1" 2>/dev/null || true
	wait_launcher "$1" "${2:-30}"
}

# Pids of the processes of this test: any whose command line mentions $T
# (launchers, the broker) or whose environment has COPAL_DB=$DB (task
# processes and whatever they started). Pure bash: no helper process of
# ours can match.
test_procs() {
	local d p a e
	local -a args envs
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		mapfile -d '' -t args 2>/dev/null <"$d/cmdline" || continue
		a=" ${args[*]} "
		if [[ $a == *"$T"* ]]; then
			echo "$p"
			continue
		fi
		mapfile -d '' -t envs 2>/dev/null <"$d/environ" || continue
		for e in "${envs[@]}"; do
			if [[ $e == "COPAL_DB=$DB" ]]; then
				echo "$p"
				break
			fi
		done
	done
}

# Kills (SIGKILL) the process group of PID and PID itself, quietly.
kill_tree() {
	kill -KILL -- "-$1" 2>/dev/null || true
	kill -KILL "$1" 2>/dev/null || true
}

dump_logs() {
	local f
	echo "---- $TEST_NAME: diagnostics ($T)" >&2
	if ((BROKER_STARTED)) &&
	    command copal --db "$DB" server status >/dev/null 2>&1; then
		echo "---- copal ls --all" >&2
		command copal --db "$DB" ls --all >&2 2>&1 || true
	fi
	for f in "$T"/*.log; do
		[[ -e $f ]] || continue
		echo "---- $f (last 60 lines)" >&2
		tail -n 60 "$f" >&2
	done
	if [[ -f $DB/log/broker.log ]]; then
		echo "---- $DB/log/broker.log (last 30 lines)" >&2
		tail -n 30 "$DB/log/broker.log" >&2
	fi
}

cleanup() {
	local rc=$? bad=0 pid p left
	set +e
	trap - EXIT
	# finish even if nobody reads our output any more (| head) or a
	# second ^C comes
	trap '' PIPE INT TERM HUP
	if ((rc != 0)); then
		dump_logs
	fi
	# a launcher still running now was left behind
	for pid in "${LAUNCHER_PIDS[@]}"; do
		if alive "$pid" && ((rc != 0)); then
			echo "NOTE: $TEST_NAME: launcher pid $pid still running" \
			    "(the test stopped early): killed" >&2
			kill -KILL "$pid" 2>/dev/null
		elif alive "$pid"; then
			echo "FAIL: $TEST_NAME: launcher pid $pid left running" >&2
			ps -o pid,ppid,pgid,stat,etime,args -p "$pid" >&2
			bad=1
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	if ((BROKER_STARTED)); then
		command copal --db "$DB" server stop >/dev/null 2>&1 ||
		    echo "WARN: $TEST_NAME: copal server stop failed" >&2
	fi
	# whatever else of ours is still there (a task process, a child it
	# started, the broker) was left behind; give dying ones a moment
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		left=$(test_procs)
		[[ -z $left ]] && break
		sleep 0.2
	done
	if [[ -n $left ]]; then
		echo "FAIL: $TEST_NAME: processes left behind:" >&2
		ps -o pid,ppid,pgid,stat,etime,args -p "$(paste -sd, <<<"$left")" >&2
		bad=1
		for p in $left; do
			kill -KILL "$p" 2>/dev/null
		done
	fi
	for f in "$T"/sanitizer.*; do
		[[ -e $f ]] || continue
		# NNG 1.5.2's broken IPC listener (upstream #1518) leaks inside
		# libnng once the broker's self-check has replaced it: not ours,
		# and excused only then, only in a broker's report and only when
		# nothing else is in it (tests/testing/nng-leak.awk says what
		# it lets through)
		if [[ $f == "$T"/sanitizer.copal-broker.* ]] &&
		    grep -rqs "IPC listener does not answer new connections" \
		    "$T" --include=broker.log &&
		    awk -f "$COPAL_SRC/tests/testing/nng-leak.awk" "$f"; then
			echo "note: $TEST_NAME: $f holds only NNG 1.5.2's" \
			    "leak of the listener it broke (upstream #1518)" >&2
			continue
		fi
		echo "FAIL: $TEST_NAME: sanitizer report $f:" >&2
		cat "$f" >&2
		bad=1
	done
	if ((bad && rc == 0)); then
		dump_logs
		rc=1
	fi
	# a test's own last steps (e.g. unmounting what it mounted), after
	# the broker has stopped
	for c in "${CLEANUP_LAST[@]}"; do
		eval "$c"
	done
	rm -rf "$T"
	exit "$rc"
}
CLEANUP_LAST=()
trap cleanup EXIT
# a signal ends the test through the EXIT trap too (nothing left behind)
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE
