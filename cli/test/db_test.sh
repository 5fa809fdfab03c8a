#!/usr/bin/env bash
# Issue 17: copal db stats / compact / check / archive, through the real
# CLI, broker and launcher in a private database.
#
# archive: tasks of two workflows, some run to JOB_FINISHED by a real
# launcher, one FAILED, some killed (USER_KILLED and a PARENT_KILLED child),
# some left READY, a finished parent whose child is READY. After
# `db archive --before now --wf A` the file decompresses (zcat) to exactly
# the tasks no longer in the store, each with all its events (as many as
# export showed before), only finished ones, none of workflow B; the
# counts by state dropped by exactly the file's; tags and workflow counts
# follow; cpl_store_check passes. Bad input (date, workflow, --out) is
# refused with nothing removed.
#
# compact: refused while the broker runs (nothing changes); with it
# stopped, smaller after, same tasks; a copy killed midway (file size
# limit) or refused leaves data.mdb byte for byte as it was.
#
#   db_test.sh BUILD_DIR
COPAL_BIN=${1:-${COPAL_BIN:-}}
export COPAL_BIN
source "$(dirname "$0")/../../launcher/test/lib.sh"

setup_db
add_app ok "true"
add_app bad "false"

# --- tasks that run now (a real launcher)
for i in 1 2 3; do add_job a$i ok --workflow A --tag k=v >/dev/null; done
add_job afail bad --workflow A --max-retries 0 >/dev/null
add_job apar ok --workflow A >/dev/null
add_job b1 ok --workflow B --tag k=v >/dev/null
start_launcher l --job-mode serial --idle-ttl 2
wait_launcher "$LPID" 60
for n in a1 a2 a3 apar b1; do assert_eq JOB_FINISHED "$(state_of $n)" "$n ran"; done
assert_eq FAILED "$(state_of afail)" "afail failed"

# --- tasks that stay unfinished, or are killed (no launcher runs now)
add_job achild ok --workflow A --parents "$(uuid_of apar)" >/dev/null
add_job aready ok --workflow A --tag k=v >/dev/null
add_job akill ok --workflow A >/dev/null
add_job akchild ok --workflow A --parents "$(uuid_of akill)" >/dev/null
add_job b2 ok --workflow B >/dev/null
copal killjob "$(uuid_of akill)" >/dev/null || fail "killjob akill"
assert_eq USER_KILLED "$(state_of akill)" "akill killed"
assert_eq PARENT_KILLED "$(state_of akchild)" "akchild parent-killed"
assert_eq READY "$(state_of achild)" "achild waits to run"
sleep 0.05

# --- what the store holds before
py() { python3 - "$@"; }
copal ls --all --format json > "$T/before.json" || fail "ls --json"
copal export > "$T/before-events.jsonl" || fail "export"
copal ls --by-states --format csv > "$T/before-states.csv" || fail "ls --by-states"
copal ls wf --format csv > "$T/before-wf.csv" || fail "ls wf"
tagged_before=$(copal ls --tag k=v --format csv | tail -n +2 | wc -l)

# --- bad input: clear errors, nothing removed
count_all() { copal ls --all --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
n0=$(count_all)
rc=0; out=$(copal db archive --before yesterday-ish --wf A -o "$T/x1.gz" 2>&1) || rc=$?
assert_eq 2 "$rc" "a bad date is a usage error: $out"
assert_contains "$out" "not a time" "bad date message"
[[ ! -e $T/x1.gz ]] || fail "a bad date left a file"
out=$(copal db archive --before now --wf NOPE -o "$T/x2.gz" 2>&1) && fail "unknown workflow accepted: $out"
assert_contains "$out" "NOPE" "unknown workflow message"
[[ ! -e $T/x2.gz ]] || fail "an unknown workflow left a file"
out=$(copal db archive --before now --wf A -o "$T/no/such/dir/x.gz" 2>&1) && fail "unwritable --out accepted"
assert_contains "$out" "cannot create" "unwritable --out message"
touch "$T/exists.gz"
out=$(copal db archive --before now --wf A -o "$T/exists.gz" 2>&1) && fail "an existing --out was overwritten"
assert_contains "$out" "never overwritten" "existing --out message"
out=$(copal db archive --wf A 2>&1) && fail "archive without --before accepted"
out=$(copal db archive --before 2000-01-01 --wf A -o "$T/x3.gz" 2>&1) || fail "archive before 2000: $out"
assert_contains "$out" "nothing to archive" "nothing before 2000"
[[ ! -e $T/x3.gz ]] || fail "an empty archive left a file"
# a file that cannot be written (the file size limit: EFBIG) removes
# nothing, and leaves no file
(trap '' XFSZ; ulimit -f 1; exec "$COPAL_BIN/cli/copal" --db "$DB" db archive --before now --wf A -o "$T/x4.gz") > "$T/x4.out" 2>&1 &&
    fail "archive into a file that cannot grow succeeded"
assert_contains "$(cat "$T/x4.out")" "writing" "a failed write says so"
[[ ! -e $T/x4.gz ]] || fail "a failed archive left its file"
assert_eq "$n0" "$(count_all)" "bad input removed nothing"

# --- stats beside the running broker
copal db stats --json > "$T/stats.json" || fail "db stats --json"
py "$T/stats.json" "$n0" <<'EOF' || fail "db stats --json is wrong"
import json, sys
s = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert s["tasks"] == n, (s["tasks"], n)
assert s["events"] > n and s["page_size"] > 0
assert s["used_bytes"] <= s["file_bytes"] <= s["map_size"]
assert s["map_free_bytes"] == s["map_size"] - s["used_bytes"]
names = [t["name"] for t in s["tables"]]
assert "(freelist)" in names and "state" in names and "event" in names
state = [t for t in s["tables"] if t["name"] == "state"][0]
assert state["entries"] == n
EOF
out=$(copal db stats) || fail "db stats"
assert_contains "$out" "tasks:        $n0" "db stats human output"

# --- the archive
# chunks of 2 tasks: several gzip members, and akill waits for a second
# pass (its child akchild is in the next page)
out=$(copal db archive --before now --wf A --chunk 2 -o "$T/a.jsonl.gz" 2>&1) || fail "archive: $out"
assert_contains "$out" "archived 6 tasks" "archive output"
assert_match "$out" "[4-9] gzip members" "one gzip member per chunk"
log "$out"
zcat "$T/a.jsonl.gz" > "$T/a.jsonl" || fail "zcat cannot read the archive"
copal ls --all --format json > "$T/after.json" || fail "ls --json after"
copal ls --by-states --format csv > "$T/after-states.csv"
copal ls wf --format csv > "$T/after-wf.csv"
py "$T" <<'EOF' || fail "the archive does not hold exactly what left"
import collections, csv, json, sys
T = sys.argv[1]
before = {t["uuid"]: t for t in json.load(open(T + "/before.json"))}
after = {t["uuid"]: t for t in json.load(open(T + "/after.json"))}
lines = [json.loads(l) for l in open(T + "/a.jsonl")]
arch = {l["task"]["uuid"]: l for l in lines}
assert len(arch) == len(lines), "a task twice in the file"
gone = set(before) - set(after)
assert set(after) <= set(before)
assert set(arch) == gone, ("file", sorted(arch), "gone", sorted(gone))
names = sorted(before[u]["name"] for u in gone)
want = sorted(["a1", "a2", "a3", "afail", "akill", "akchild"])
assert names == want, names
evs = collections.Counter(json.loads(l)["uuid"] for l in open(T + "/before-events.jsonl"))
final = {"JOB_FINISHED", "FAILED", "USER_KILLED", "PARENT_KILLED"}
for u, l in arch.items():
    t = l["task"]
    assert t["state"] in final and t["workflow"] == "A", t
    assert t == before[u], ("task record differs", t, before[u])
    assert len(l["events"]) == evs[u], (t["name"], len(l["events"]), evs[u])
    assert all(e["uuid"] == u for e in l["events"])
    seqs = [e["seq"] for e in l["events"]]
    assert seqs == sorted(seqs)
    assert l["events"][-1]["to"] == t["state"]
for u, t in after.items():
    if t["workflow"] == "A" and t["name"] in ("apar",):
        pass  # its child is READY: it stays
names_after = {t["name"] for t in after.values()}
assert {"apar", "achild", "aready", "b1", "b2"} <= names_after
def states(p):
    r = list(csv.reader(open(p)))
    return {row[0]: int(row[1]) for row in r[1:] if len(row) >= 2 and row[1].isdigit()}
sb, sa = states(T + "/before-states.csv"), states(T + "/after-states.csv")
drop = collections.Counter(l["task"]["state"] for l in lines)
drop["total"] = len(lines)
assert sb, "no counts by state"
for s in set(sb) | set(sa):
    assert sb.get(s, 0) - drop.get(s, 0) == sa.get(s, 0), (s, sb.get(s), sa.get(s), drop.get(s))
def wfs(p):
    r = list(csv.reader(open(p)))
    return {row[0]: {k: v for k, v in zip(r[0][1:], row[1:]) if v not in ("", "0")}
            for row in r[1:]}
wb, wa = wfs(T + "/before-wf.csv"), wfs(T + "/after-wf.csv")
assert wb["B"] == wa["B"], ("B changed", wb["B"], wa["B"])
assert wb["A"] != wa["A"], ("A did not change", wb["A"], wa["A"])
EOF
tagged_after=$(copal ls --tag k=v --format csv | tail -n +2 | wc -l)
assert_eq $((tagged_before - 3)) "$tagged_after" "tag k=v lost the three archived tasks"
out=$(copal ls --tag k=v --by-states --format csv 2>&1) || true
after_events=$(copal export | wc -l)
before_events=$(wc -l < "$T/before-events.jsonl")
arch_events=$(py "$T/a.jsonl" <<'EOF'
import json, sys
print(sum(len(json.loads(l)["events"]) for l in open(sys.argv[1])))
EOF
)
assert_eq $((before_events - arch_events)) "$after_events" "export lost exactly the archived events"
# a second run finds nothing more (apar keeps its READY child)
out=$(copal db archive --before now --wf A -o "$T/a2.jsonl.gz" 2>&1) || fail "second archive: $out"
assert_contains "$out" "nothing to archive" "second archive"
# the broker goes on: new tasks, a new event after the gaps
add_job anew ok --workflow A >/dev/null
copal db stats --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["archived_events"] > 0, s' ||
    fail "stats: archived events"

# large specs: 64 tasks of ~1 MB each (JSON lines, args of 1,000,000
# bytes) are more than a pick's reply may hold: the broker halves its
# page until it fits, and every task is archived
python3 - "$T/big.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(64):
        f.write(json.dumps({"name": "big%d" % i, "workflow": "BIG", "app": "ok",
                            "args": ("x%d " % i) * 250000}) + "\n")
EOF
copal job --from-file "$T/big.jsonl" -q >/dev/null || fail "64 big tasks"
copal killjob --wf BIG --yes >/dev/null || fail "kill the big tasks"
out=$(copal db archive --before now --wf BIG -o "$T/big.gz" 2>&1) || fail "archive of big tasks: $out"
assert_contains "$out" "archived 64 tasks" "every big task archived"
assert_contains "$out" "2 gzip members" "a page of 64 big tasks halved to 32"
assert_eq 64 "$(zcat "$T/big.gz" | wc -l)" "64 lines of big tasks"
assert_eq 0 "$(copal ls --wf BIG --format csv | tail -n +2 | wc -l)" "no big task left"

# --- check and compact: the broker must be stopped
out=$(copal db compact 2>&1) && fail "compact with the broker running: $out"
assert_contains "$out" "copal server stop" "compact refused while the broker runs"
out=$(copal db check 2>&1) && fail "check with the broker running: $out"
copal server stop >/dev/null
BROKER_STARTED=
out=$(copal db check 2>&1) || fail "cpl_store_check after archive: $out"

sum0=$(sha256sum < "$DB/data.mdb")
# a copy that hits the file size limit dies midway (SIGXFSZ) or fails
# (SIGXFSZ ignored): data.mdb stays as it was, byte for byte
(ulimit -f 8; exec "$COPAL_BIN/cli/copal" --db "$DB" db compact) > "$T/c1.out" 2>&1 && fail "compact under a 4 KiB file limit succeeded"
assert_eq "$sum0" "$(sha256sum < "$DB/data.mdb")" "a killed compact left data.mdb as it was"
(trap '' XFSZ; ulimit -f 8; exec "$COPAL_BIN/cli/copal" --db "$DB" db compact) > "$T/c2.out" 2>&1 && fail "compact with EFBIG succeeded"
assert_contains "$(cat "$T/c2.out")" "data.mdb was not changed" "a failed compact says so"
assert_eq "$sum0" "$(sha256sum < "$DB/data.mdb")" "a failed compact left data.mdb as it was"
out=$(copal db compact 2>&1) || fail "compact: $out"
assert_contains "$out" "compacted" "compact output"
[[ ! -e $DB/data.mdb.compact ]] || fail "compact left its copy"
out=$(copal db check 2>&1) || fail "check after compact: $out"
copal server start >/dev/null
BROKER_STARTED=1
copal ls --all --format json > "$T/after2.json"
py "$T" <<'EOF' || fail "compact changed the tasks"
import json, sys
T = sys.argv[1]
a = {t["uuid"]: t for t in json.load(open(T + "/after.json"))}
b = {t["uuid"]: t for t in json.load(open(T + "/after2.json"))}
assert set(a) <= set(b) and len(b) == len(a) + 1, (len(a), len(b))
for u in a:
    assert a[u] == b[u], (a[u], b[u])
EOF
pass
