#!/usr/bin/env bash
# The copal command as a whole process, on large databases: what a user
# waits for. Prints every figure of BENCHMARKS.md's "copal ls", "History
# queries", "Profiling verbs" and "Tags" tables.
#
#   bash scripts/bench_cli.sh [-q] [-t] [-n TASKS] [-d DIR] [BUILD_DIR]
#
#   -n TASKS   tasks in each database (default 1,000,000)
#   -q         quick: 100,000 tasks
#   -t         only part 4 (tags)
#   -d DIR     parent of the databases (default /var/tmp); about 4 KB per
#              task is used at the peak and removed at the end
#   BUILD_DIR  default build-rel (copal, copal-broker and mkevents: built
#              with the tests in cli/, or with the benchmarks in bench/)
#
# 1. `copal make_dummies N` (timed), then with N READY tasks, 20 runs each
#    (median and max wall time): /bin/true (the cost of starting a
#    process, the reference), `ls --by-states`, `ls --state READY --limit
#    50`, `ls --limit 50` without a queue policy and with one (which adds
#    the broker's backlog walk and the unfit-task warning).
# 2. mkevents fills a second database through a real broker: N tasks, each
#    CREATED->READY->RUNNING->RUN_DONE (RUN_ERROR for 1 in 1000)->
#    JOB_FINISHED (FAILED), 4N events. Then, 10 runs each: `ls --history
#    --id PREFIX` of one task and `export --format csv` of a 50 ms window
#    in the middle of the log.
# 3. On the same database: `export` in the three formats to /dev/null (3
#    runs each), to a file and through a pipe (1 run), `stats --plot DIR`
#    and `stats --by-runs` (3 runs each), `top --once`: wall time, events
#    per second, maximum RSS and CPU of copal (/usr/bin/time), and the
#    broker's CPU (utime + stime of /proc/PID/stat, before and after).
#    The references: `cat` of each exported file to /dev/null and to a copy.
# 4. A third database: N tasks made by one `copal job --from-file` (timed)
#    of JSON lines, each tagged sys=vK with K = i mod 100 (100 distinct
#    values, N/100 tasks each). Then 20 runs each: /bin/true, `ls --state
#    READY --limit 50` (no tag: the reference under the same load), the first
#    page of one tag (`ls --tag sys=v42 --limit 50`), the count of one tag
#    (`ls --tag sys=v42 --by-states`), two tags ANDed that no task has,
#    and one tag with a state; target < 20 ms (median) as a whole command.
#
# Each timed command must succeed and print what it should (ls --by-states
# counts N, each export has 4N events, the window is not empty): otherwise
# the script stops with exit 1.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

N=1000000
PARENT=/var/tmp
ONLY_TAGS=0
while getopts qtn:d: opt; do
	case $opt in
	q) N=100000 ;;
	t) ONLY_TAGS=1 ;;
	n) N=$OPTARG ;;
	d) PARENT=$OPTARG ;;
	*) sed -n '6,13p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
BUILD=$(readlink -f "${1:-build-rel}")
COPAL=$BUILD/cli/copal
MKEVENTS=$BUILD/cli/mkevents
[[ -x $MKEVENTS ]] || MKEVENTS=$BUILD/bench/mkevents
for b in "$COPAL" "$BUILD/broker/copal-broker" "$MKEVENTS" /usr/bin/time; do
	[[ -x $b ]] || { echo "bench_cli.sh: $b missing (build first; /usr/bin/time: Debian package time)" >&2; exit 1; }
done
export COPAL_BROKER_BIN=$BUILD/broker/copal-broker
T=$(mktemp -d "$PARENT/copal-bcli.XXXXXX")
export HOME=$T
cleanup() {
	for db in "$T"/db1 "$T"/db2 "$T"/db3; do
		if [[ -d $db ]]; then
			"$COPAL" --db "$db" server stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "bench_cli.sh: $*" >&2; exit 1; }

# runs K CMD...: runs CMD K times (output to /dev/null); RUNS = the wall
# times in us. A failing run stops the script with its stderr.
runs() {
	local k=$1 i s e
	shift
	RUNS=()
	for ((i = 1; i <= k; i++)); do
		s=$EPOCHREALTIME
		if ! "$@" >/dev/null 2>"$T/err"; then
			cat "$T/err" >&2
			fail "run $i of $k failed: $*"
		fi
		e=$EPOCHREALTIME
		RUNS+=($((10#${e/./} - 10#${s/./})))
	done
}
# med_max: "median / max" of RUNS in ms
med_max() {
	printf '%s\n' "${RUNS[@]}" | sort -n |
	    awk '{ v[NR] = $1 } END { printf "%.1f / %.1f ms", v[int((NR + 1) / 2)] / 1000, v[NR] / 1000 }'
}
row() { printf '%-62s %s\n' "$1" "$2"; }

echo "bench_cli.sh: $N tasks, in $T; load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

# ------------------------------------------------------------ 4. tags
tags_part() {
	local DB=$T/db3 us k=$((N / 100))
	"$COPAL" init "$DB" >/dev/null
	export COPAL_DB=$DB
	"$COPAL" server start >/dev/null
	"$COPAL" app --name dummy --executable true >/dev/null
	awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "{\"name\":\"t%d\",\"app\":\"dummy\",\"workflow\":\"tags\",\"tags\":{\"sys\":\"v%d\"}}\n", i, i % 100 }' >"$T/tags.jsonl"
	local s=$EPOCHREALTIME
	"$COPAL" job --from-file "$T/tags.jsonl" -q --yes >/dev/null || fail "job --from-file of $N tagged tasks"
	local e=$EPOCHREALTIME
	us=$((10#${e/./} - 10#${s/./}))
	rm -f "$T/tags.jsonl"
	n=$("$COPAL" ls --tag sys=v42 --by-states --format json | jq '.[] | select(.state == "READY") | .count')
	[[ $n == "$k" ]] || fail "ls --tag sys=v42 --by-states counts ${n:-no} READY tasks, not $k"
	n=$("$COPAL" ls --tag sys=v42 --limit 50 --format csv | tail -n +2 | wc -l)
	[[ $n == 50 ]] || fail "ls --tag sys=v42 --limit 50 lists $n tasks"
	n=$("$COPAL" ls --tag sys=v42 --tag sys=v43 --limit 50 --format csv | tail -n +2 | wc -l)
	[[ $n == 0 ]] || fail "ls --tag sys=v42 --tag sys=v43 lists $n tasks"
	echo
	echo "== tags: $N READY tasks, 100 values of one tag ($k tasks each); 20 runs each: median / max; target < 20 ms =="
	row "copal job --from-file, $N tagged tasks" "$(awk -v u="$us" -v n="$N" 'BEGIN { printf "%.2f s, %.0f tasks/s", u / 1e6, n / (u / 1e6) }')"
	runs 20 /bin/true
	row "/bin/true (starting a process; reference)" "$(med_max)"
	local label
	for label in "ls --state READY --limit 50" \
	    "ls --tag sys=v42 --limit 50" "ls --tag sys=v42 --by-states" \
	    "ls --tag sys=v42 --tag sys=v43 --limit 50" \
	    "ls --tag sys=v99 --state READY --limit 50"; do
		# shellcheck disable=SC2086 # the label is the command's words
		runs 20 "$COPAL" $label
		row "copal $label" "$(med_max) $(printf '%s\n' "${RUNS[@]}" | sort -n |
		    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] < 20000 ? "PASS" : "MISS" }')"
	done
	"$COPAL" server stop >/dev/null
	rm -rf "$DB"
}
if ((ONLY_TAGS)); then
	tags_part
	echo
	echo "bench_cli.sh: every command succeeded; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi

# ------------------------------------------------------------ 1. copal ls
DB=$T/db1
"$COPAL" init "$DB" >/dev/null
export COPAL_DB=$DB
"$COPAL" server start >/dev/null
s=$EPOCHREALTIME
"$COPAL" make_dummies "$N" >/dev/null
e=$EPOCHREALTIME
us=$((10#${e/./} - 10#${s/./}))
n=$("$COPAL" ls --by-states --format json | jq '.[] | select(.state == "READY") | .count')
[[ $n == "$N" ]] || fail "ls --by-states counts ${n:-no} READY tasks, not $N"

echo
echo "== copal ls, whole process, $N READY tasks (20 runs each: median / max) =="
row "copal make_dummies $N" "$(awk -v u="$us" -v n="$N" 'BEGIN { printf "%.2f s, %.0f tasks/s", u / 1e6, n / (u / 1e6) }')"
runs 20 /bin/true
row "/bin/true (starting a process; reference)" "$(med_max)"
runs 20 "$COPAL" ls --by-states
row "copal ls --by-states" "$(med_max)"
runs 20 "$COPAL" ls --state READY --limit 50
row "copal ls --state READY --limit 50" "$(med_max)"
runs 20 "$COPAL" ls --limit 50
row "copal ls --limit 50, no queue policy" "$(med_max)"
printf 'queue.debug.max_nodes = 1\nqueue.debug.max_minutes = 60\n' >>"$DB/copal.conf"
runs 20 "$COPAL" ls --limit 50
row "copal ls --limit 50, one queue policy (+ backlog walk)" "$(med_max)"
"$COPAL" server stop >/dev/null
rm -rf "$DB"

# ------------------------------------------------------------ 2. history
DB=$T/db2
"$COPAL" init "$DB" >/dev/null
export COPAL_DB=$DB
"$COPAL" server start >/dev/null
echo
"$MKEVENTS" --db "$DB" -n "$N" -l 4 -c 1000 -w 4 -e 1000 || fail "mkevents failed"
EV=$((4 * N))
BPID=$(cat "$DB/broker.pid")
CLK=$(getconf CLK_TCK)
broker_cpu() { awk -v c="$CLK" '{ printf "%.2f", ($14 + $15) / c }' "/proc/$BPID/stat"; }

"$COPAL" export --format jsonl -o "$T/all.jsonl" 2>/dev/null
lines=$(wc -l <"$T/all.jsonl")
[[ $lines == "$EV" ]] || fail "export --format jsonl: $lines events, not $EV"
# the event in the middle of the log: its task's uuid and its time
read -r uuid tus < <(sed -n "$((EV / 2))p" "$T/all.jsonl" | jq -r '"\(.uuid) \(.time_us)"')
rm -f "$T/all.jsonl"
since=$(awk -v t="$tus" 'BEGIN { printf "%.6f", t / 1e6 }')
until=$(awk -v t="$tus" 'BEGIN { printf "%.6f", t / 1e6 + 0.05 }')
h=$("$COPAL" ls --history --id "${uuid:0:8}" --format jsonl |
    jq -s 'if length == 1 then .[0].events | length else 0 end')
[[ $h == 4 ]] || fail "ls --history --id ${uuid:0:8}: not one task with 4 events"
w=$("$COPAL" export --format jsonl --since "$since" --until "$until" | wc -l)
((w > 0)) || fail "export of the window [$since, $until]: no events"

echo
echo "== history queries, $N tasks, $EV events (10 runs each: median / max) =="
runs 10 "$COPAL" ls --history --id "${uuid:0:8}"
row "copal ls --history --id PREFIX (one task, $h events)" "$(med_max)"
runs 10 "$COPAL" export --format csv --since "$since" --until "$until"
row "copal export --format csv, 50 ms window ($w events)" "$(med_max)"

# ------------------------------------------------------------ 3. profiling
# prof LABEL RUNS EVENTS CMD...: wall (min-max over RUNS), events/s of the
# fastest, max RSS and copal's user + sys of the last run, broker CPU per
# run. EVENTS 0: no rate.
prof() {
	local label=$1 k=$2 ev=$3 i s e b0 b1 wall=() bcpu=()
	shift 3
	for ((i = 1; i <= k; i++)); do
		b0=$(broker_cpu)
		s=$EPOCHREALTIME
		/usr/bin/time -f '%M %U %S' -o "$T/time" "$@" >/dev/null 2>"$T/err" ||
		    { cat "$T/err" >&2; fail "$label failed"; }
		e=$EPOCHREALTIME
		b1=$(broker_cpu)
		wall+=($((10#${e/./} - 10#${s/./})))
		bcpu+=("$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", b - a }')")
	done
	read -r rss ut st <"$T/time"
	printf '%s\n' "${wall[@]}" | sort -n | awk -v l="$label" -v ev="$ev" \
	    -v rss="$rss" -v ut="$ut" -v st="$st" -v b="$(printf '%s\n' "${bcpu[@]}" | sort -n | paste -sd- | sed 's/-.*-/-/')" '
	    { v[NR] = $1 / 1e6 }
	    END {
		wall = NR > 1 ? sprintf("%.2f-%.2f s", v[1], v[NR]) : sprintf("%.2f s", v[1])
		rate = ev > 0 ? sprintf("%.0f", ev / v[1]) : "-"
		printf "%-44s %13s %10s %7.0f MB %5.1f + %.1f s %9s s\n", l, wall, rate, rss / 1024, ut, st, b
	    }'
}

echo
echo "== profiling verbs, $EV events; copal CPU of the last run; broker CPU per run (min-max) =="
printf '%-44s %13s %10s %10s %13s %11s\n' command wall events/s "max RSS" "copal CPU" "broker CPU"
for f in jsonl csv chrome; do
	prof "export --format $f -o /dev/null" 3 "$EV" "$COPAL" export --format "$f" -o /dev/null
done
for f in jsonl csv chrome; do
	prof "export --format $f -o FILE" 1 "$EV" "$COPAL" export --format "$f" -o "$T/out.$f"
	# jsonl is one line per event (csv quotes the newlines of messages)
	if [[ $f == jsonl && $(wc -l <"$T/out.$f") != "$EV" ]]; then
		fail "out.jsonl: not $EV events"
	fi
done
# shellcheck disable=SC2016 # $1 is the inner shell's
prof "export | wc -l (jsonl through a pipe)" 1 "$EV" bash -c '"$1" export --format jsonl | wc -l' _ "$COPAL"
mkdir -p "$T/plots"
prof "stats --plot DIR" 3 "$EV" "$COPAL" stats --plot "$T/plots"
prof "stats --by-runs" 3 "$EV" "$COPAL" stats --by-runs
prof "top --once" 1 0 "$COPAL" top --once

echo
echo "== the references: the exported bytes without copal (1 run each) =="
for f in jsonl csv chrome; do
	bytes=$(stat -c %s "$T/out.$f")
	runs 1 cat "$T/out.$f"
	a=${RUNS[0]}
	runs 1 cp "$T/out.$f" "$T/copy"
	b=${RUNS[0]}
	rm -f "$T/copy"
	row "out.$f ($bytes bytes): cat > /dev/null / cp to a file" \
	    "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f s / %.2f s", a / 1e6, b / 1e6 }')"
done
"$COPAL" server stop >/dev/null
rm -rf "$DB"
tags_part
echo
echo "bench_cli.sh: every command succeeded; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
