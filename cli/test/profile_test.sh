#!/usr/bin/env bash
# The profiling verbs (copal export, stats, top) on a campaign with known
# durations, run by a real launcher:
#
#   alpha: a1 a2 a3   sleep 1, exit 0           -> JOB_FINISHED
#   beta:  b1 b2      sleep 2, exit 0           -> JOB_FINISHED
#          e1 e2      sleep 1, exit 3           -> RUN_ERROR -> FAILED
#   gamma: t1         sleep 30, timeout 1 s     -> RUN_TIMEOUT -> FAILED
#
# All eight run at once (node_packing_count 8, one serial launcher), then
# the exports are checked against the tasks' histories (every event once,
# in order), the trace's spans and the statistics against the known
# durations, counts exactly.
#
#   profile_test.sh BUILD_DIR
#
# Uses the launcher tests' helpers (launcher/test/lib.sh): a private HOME
# and database, nothing left behind, no sanitizer report.
COPAL_BIN=${1:-${COPAL_BIN:-}}
export COPAL_BIN
source "$(dirname "$0")/../../launcher/test/lib.sh"

command -v python3 >/dev/null || fail "python3 is needed"
command -v jq >/dev/null || fail "jq is needed"
PY=python3

setup_db
add_app sl "sh -c 'sleep \"\$0\"; exit \"\$1\"'"
J=(--node-packing-count 8)
for n in a1 a2 a3; do add_job "$n" sl --workflow alpha --args "1 0" "${J[@]}" >/dev/null; done
for n in b1 b2; do add_job "$n" sl --workflow beta --args "2 0" "${J[@]}" >/dev/null; done
for n in e1 e2; do
	add_job "$n" sl --workflow beta --args "1 3" --max-retries 0 "${J[@]}" >/dev/null
done
add_job t1 sl --workflow gamma --args "30 0" --timeout-seconds 1 \
    --no-auto-timeout-retry "${J[@]}" >/dev/null

# ------------------------------------------------------------ usage errors
for v in export stats top; do
	out=$(copal "$v" --help) || fail "copal $v --help failed"
	assert_contains "$out" "usage: copal $v" "$v --help"
done
expect_rc() { # RC ARGS...: runs copal ARGS, checks its exit status
	local want=$1 rc=0
	shift
	OUT=$(copal "$@" 2>&1) || rc=$?
	assert_eq "$want" "$rc" "exit status of copal $* ($OUT)"
}
expect_rc 2 export --format xml
assert_contains "$OUT" "is not jsonl, csv or chrome" "bad --format"
expect_rc 2 export --since yesterday
assert_contains "$OUT" "is not a time" "bad --since"
expect_rc 2 export --since 2026-02-31T00:00:00Z
expect_rc 2 export --until -5x
expect_rc 2 export extra
expect_rc 1 export -o "$T/no/such/dir/x.jsonl"
assert_contains "$OUT" "cannot write" "unwritable -o"
expect_rc 2 stats --format csv
expect_rc 2 stats --since 1764082800 --until 1764082700
assert_contains "$OUT" "is not after" "until before since"
expect_rc 2 top --interval 0
expect_rc 2 top --interval abc

# ------------------------------------------------------------ the campaign
start_launcher l1 --job-mode serial --idle-ttl 1
wait_for_state b1 RUNNING 30
sleep 0.3

# while it runs: top shows the launcher, the trace shows open runs
out=$(copal top --once) || fail "copal top --once failed"
log "top --once during the campaign:"$'\n'"$out"
assert_contains "$out" "Launchers (live leases): 1" "top: one launcher"
assert_contains "$out" "launcher " "top: the launcher's owner"
assert_match "$out" "RUNNING +[1-8]" "top: tasks running"
copal export --format chrome -o "$T/mid.json" 2>/dev/null ||
    fail "export --format chrome during the campaign"
$PY - "$T/mid.json" <<'EOF' || fail "trace during the campaign"
import json, sys
d = json.load(open(sys.argv[1]))
x = [e for e in d["traceEvents"] if e["ph"] == "X"]
running = [e for e in x if e["args"]["outcome"] == "running"]
assert running, "no open run shown as running: %r" % x
for e in running:
    assert e["cname"] == "yellow" and e["dur"] >= 0, e
EOF

wait_launcher "$LPID" 60
for n in a1 a2 a3 b1 b2; do assert_eq JOB_FINISHED "$(state_of $n)" "state of $n"; done
for n in e1 e2 t1; do assert_eq FAILED "$(state_of $n)" "state of $n"; done

# ------------------------------------------------------------ export
copal ls --history --format json >"$T/hist.json" || fail "ls --history"
nhist=$(jq '[.[].events | length] | add' "$T/hist.json")
log "history events: $nhist"

copal export --format jsonl -o "$T/ev.jsonl" 2>"$T/export.err" ||
    fail "export jsonl: $(cat "$T/export.err")"
assert_contains "$(cat "$T/export.err")" "$nhist events to" "export summary"
copal export --format jsonl >"$T/ev2.jsonl" || fail "export to stdout"
cmp -s "$T/ev.jsonl" "$T/ev2.jsonl" || fail "export -o and stdout differ"
copal export --format csv -o "$T/ev.csv" 2>/dev/null || fail "export csv"
copal export --format chrome -o "$T/trace.json" 2>/dev/null ||
    fail "export chrome"
python3 -m json.tool "$T/trace.json" >/dev/null || fail "trace is not JSON"

$PY - "$T" "$nhist" <<'EOF' || fail "export checks"
import csv, json, sys
T, nhist = sys.argv[1], int(sys.argv[2])
ev = [json.loads(l) for l in open(T + "/ev.jsonl")]
assert len(ev) == nhist, "jsonl: %d events, history has %d" % (len(ev), nhist)
seqs = [e["seq"] for e in ev]
assert all(a < b for a, b in zip(seqs, seqs[1:])), "seq not increasing"
keys = ["seq", "task", "uuid", "name", "workflow", "from", "to", "time",
        "time_us", "launcher", "lease", "node", "attempt", "return_code",
        "message", "commit_us", "user", "batch_job", "scheduler_job_id"]
for e in ev:
    assert list(e) == keys, e
    # time_us: when it happened (a launcher's clock for its reports), at
    # or before its commit
    assert e["time_us"] <= e["commit_us"], e
    # launchers started by hand: in no batch job
    assert e["batch_job"] == 0 and e["scheduler_job_id"] == "", e
# each task's events: exactly its history, in order
hist = json.load(open(T + "/hist.json"))
for h in hist:
    mine = [(e["from"], e["to"], e["time"], e["attempt"], e["return_code"],
             e["message"]) for e in ev if e["uuid"] == h["job_id"]]
    theirs = [(e["from"], e["to"], e["time"], e["attempt"], e["return_code"],
               e["message"]) for e in h["events"]]
    assert mine == theirs, (h["name"], mine, theirs)
# run reports carry the launcher and "host/slot"
for e in ev:
    if e["to"] in ("RUNNING", "RUN_DONE", "RUN_ERROR", "RUN_TIMEOUT"):
        assert e["launcher"].startswith("launcher "), e
        assert e["lease"] > 0, e
        host, slot = e["node"].rsplit("/", 1)
        assert host and slot.isdigit(), e
    assert e["time"].endswith("Z") and len(e["time"]) == 27, e
# CSV: RFC 4180, the same rows
with open(T + "/ev.csv", newline="") as f:
    rows = list(csv.DictReader(f))
assert len(rows) == len(ev), "csv: %d rows" % len(rows)
for r, e in zip(rows, ev):
    for k in keys:
        assert r[k] == str(e[k]), (k, r[k], e[k])
assert open(T + "/ev.csv", "rb").read().count(b"\r\n") >= len(ev) + 1
# the trace: one span per run, the known durations
d = json.load(open(T + "/trace.json"))
assert d["displayTimeUnit"] == "ms"
te = d["traceEvents"]
x = [e for e in te if e["ph"] == "X"]
runs = [e for e in ev if e["to"] == "RUNNING"]
assert len(x) == len(runs) == 8, (len(x), len(runs))
want = {"a": (1, "done", "good", 0), "b": (2, "done", "good", 0),
        "e": (1, "error", "terrible", 3), "t": (1, "timeout", "bad", None)}
for s in x:
    sec, outcome, cname, rc = want[s["name"][0]]
    dur = s["dur"] / 1e6
    assert sec - 0.3 <= dur <= sec + 0.7, (s["name"], dur)
    assert s["args"]["outcome"] == outcome and s["cname"] == cname, s
    assert rc is None or s["args"]["return_code"] == rc, s
    assert s["args"]["attempt"] == 1 and len(s["args"]["uuid"]) == 36, s
    assert s["cat"] == {"a": "alpha", "b": "beta", "e": "beta",
                        "t": "gamma"}[s["name"][0]], s
pnames = {e["pid"]: e["args"]["name"] for e in te
          if e["ph"] == "M" and e["name"] == "process_name"}
tnames = {(e["pid"], e["tid"]): e["args"]["name"] for e in te
          if e["ph"] == "M" and e["name"] == "thread_name"}
for s in x:
    assert pnames[s["pid"]].startswith("launcher "), pnames
    host, slot = tnames[(s["pid"], s["tid"])].rsplit("/", 1)
    assert slot.isdigit(), tnames
# eight slots at once: eight threads, spans of one thread do not overlap
assert len(tnames) == 8, tnames
by = {}
for s in x:
    by.setdefault(s["tid"], []).append((s["ts"], s["ts"] + s["dur"]))
for v in by.values():
    v.sort()
    assert all(a[1] <= b[0] for a, b in zip(v, v[1:])), v
EOF

# windows: --wf, --since, --until
n=$(copal export --wf alpha | wc -l)
assert_eq 12 "$n" "events of workflow alpha"
n=$(copal export --since -1h | wc -l)
assert_eq "$nhist" "$n" "events of the last hour"
first_run=$(jq -r 'select(.to == "RUNNING") | .time' "$T/ev.jsonl" | head -1)
want=$(jq -r --arg t "$first_run" 'select(.time >= $t) | .seq' "$T/ev.jsonl" | wc -l)
n=$(copal export --since "$first_run" | wc -l)
assert_eq "$want" "$n" "events since the first run ($first_run)"
want=$(jq -r --arg t "$first_run" 'select(.time < $t) | .seq' "$T/ev.jsonl" | wc -l)
n=$(copal export --until "$first_run" --format csv | tail -n +2 | wc -l)
assert_eq "$want" "$n" "events until the first run"
us=$(jq -r 'select(.to == "RUNNING") | .time_us' "$T/ev.jsonl" | head -1)
n=$(copal export --since "$((us / 1000000)).$(printf %06d $((us % 1000000)))" | wc -l)
assert_eq "$want" "$((nhist - n))" "--since in epoch seconds"
# a window that starts inside the runs: spans from the window's start
copal export --format chrome --since "$first_run" -o "$T/w.json" 2>/dev/null ||
    fail "chrome with --since"
python3 -m json.tool "$T/w.json" >/dev/null || fail "windowed trace is not JSON"

# ------------------------------------------------------------ stats
copal stats --format json --plot "$T/plots" >"$T/stats.json" ||
    fail "copal stats --format json"
$PY - "$T" <<'EOF' || { cat "$T/stats.json" >&2; fail "stats checks"; }
import json, sys
import xml.etree.ElementTree as ET
T = sys.argv[1]
s = json.load(open(T + "/stats.json"))
assert s["errors"] == 2 and s["timeouts"] == 1, s
assert s["finished"] == 5 and s["failed"] == 3 and s["killed"] == 0, s
assert s["runs"] == {"ended": 8, "running": 0}, s["runs"]
assert s["tasks"] == 8 and s["states"] == {"JOB_FINISHED": 5, "FAILED": 3}
r = s["runtime"]
assert r["count"] == 8 and r["exact"], r
# a run lasts from the broker's commit of RUNNING to that of its end
assert 0.7 <= r["min"] <= 1.7, r
assert 0.7 <= r["median"] <= 1.7, r
assert 1.7 <= r["max"] <= 2.7, r
d = s["runtime_done"]
assert d["count"] == 5 and 1.7 <= d["max"] <= 2.7, d
assert s["queue_wait"]["count"] == 8 and s["queue_wait"]["min"] >= 0
wf = {w["workflow"]: w for w in s["workflows"]}
def check(name, **want):
    for k, v in want.items():
        assert wf[name][k] == v, (name, k, wf[name][k], v)
check("alpha", tasks=3, finished=3, failed=0, runs=3, done=3, errors=0,
      timeouts=0)
check("beta", tasks=4, finished=2, failed=2, runs=4, done=2, errors=2,
      timeouts=0)
check("gamma", tasks=1, finished=0, failed=1, runs=1, done=0, errors=0,
      timeouts=1)
assert 1.7 <= wf["beta"]["max_run_s"] <= 2.7
u = s["utilization"]
assert u["peak_runs"] == 8 and u["hosts_seen"] == 1 and u["slots_seen"] == 8, u
assert abs(u["peak_nodes"] - 1.0) < 1e-9, u       # 8 runs x 1/8 node
assert 0 < u["average_nodes"] <= 1.0, u
assert sum(s["throughput"]["per_minute_series"]) == 5
ser = s["series"]
n = len(ser["seconds"])
assert n >= 2 and len(ser["utilization"]) == n == len(ser["throughput_per_minute"])
assert abs(sum(ser["throughput_per_minute"]) * ser["bucket_seconds"] / 60 - 5) < 1e-6
for name in ("utilization", "throughput"):
    root = ET.parse("%s/plots/%s.svg" % (T, name)).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(".//%spolyline" % ns)
    assert len(lines) == 1, name
    pts = lines[0].get("points").split()
    assert len(pts) == n, (name, len(pts), n)
    texts = [t.text for t in root.iter(ns + "text")]
    assert any(t and "time since" in t for t in texts), texts
    assert len(texts) > 8, texts     # title, labels, ticks
EOF

out=$(copal stats) || fail "copal stats"
log "copal stats:"$'\n'"$out"
assert_contains "$out" "errors (RUN_ERROR):          2" "stats table errors"
assert_contains "$out" "timeouts (RUN_TIMEOUT):      1" "stats table timeouts"
assert_match "$out" $'\n''beta +\| +4 \| +2 \| +2 \| +4 \| +2 \| +0 ' "stats table beta"
out=$(copal stats --wf beta --format json --by-runs) || fail "stats --wf beta"
assert_eq "2 0 4" "$(jq -r '"\(.errors) \(.timeouts) \(.runs.ended)"' <<<"$out")" \
    "stats --wf beta"
assert_eq 4 "$(jq -r .tasks <<<"$out")" "stats --wf beta: tasks now"

# ------------------------------------------------------------ top
out=$(copal top --once) || fail "copal top --once"
assert_match "$out" "JOB_FINISHED +5" "top: finished"
assert_match "$out" "FAILED +3" "top: failed"
assert_contains "$out" "Tasks: 8" "top: total"
assert_contains "$out" "Launchers (live leases): 0" "top: no launcher left"
out=$(copal top --once --wf alpha) || fail "copal top --once --wf alpha"
assert_contains "$out" "Tasks of workflow alpha: 3" "top --wf"
# not a terminal: frames one after the other, ended by SIGINT (the
# program itself, not a subshell running the copal function)
command copal --db "$DB" top --interval 0.2 >"$T/top.out" 2>&1 &
tp=$!
sleep 1
kill -INT "$tp"
rc=0
wait "$tp" || rc=$?
assert_eq 0 "$rc" "top ended by SIGINT"
n=$(grep -c '^copal top ' "$T/top.out")
((n >= 2)) || fail "top printed $n frames in 1 s"
pass
