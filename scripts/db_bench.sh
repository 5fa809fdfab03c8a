#!/usr/bin/env bash
# copal db at N tasks (default 1,000,000): stats, archive, compact, and
# their physical references (BENCHMARKS.md, "copal db").
#
#   scripts/db_bench.sh BUILD_DIR [N]
#
# A database of N finished tasks (db_bench fill: store_bench's specs, 16
# workflows, each task claimed, RUNNING, RUN_DONE, JOB_FINISHED under a
# batch job's lease: 4 events a task) is copied twice. On the first:
# copal db stats (3 runs), copal db archive --before now of every task
# through a running broker (client and broker CPU from /proc), copal db
# stats again, copal db compact; references: mdb_copy -c and cp of the
# same file, gzip -6 of the archive's JSON bytes. On the copy: db_bench
# purge (cpl_task_purge in 10,000-task transactions, no broker or file):
# the store's own rate.
set -euo pipefail
B=$(cd "${1:?usage: db_bench.sh BUILD_DIR [N]}" && pwd)
N=${2:-1000000}
COPAL=$B/cli/copal
export COPAL_BROKER_BIN=$B/broker/copal-broker
T=$(mktemp -d /var/tmp/copal-dbbench.XXXXXX)
trap '"$COPAL" --db "$T/db" server stop >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
export HOME=$T/home COPAL_NO_AUTOSTART=1
unset COPAL_DB COPAL_BROKER_URL
mkdir -p "$HOME"
c() { "$COPAL" --db "$T/db" "$@"; }
ms() { date +%s%N | cut -c1-13; }
# utime+stime of a pid in seconds
cpu_of() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }

"$COPAL" init "$T/db" >/dev/null
"$B/bench/db_bench" fill "$T/db" "$N"
mkdir "$T/ref"
cp "$T/db/data.mdb" "$T/ref/data.mdb"

echo "== stats (broker stopped) at $N tasks"
for i in 1 2 3; do
	t0=$(ms); c db stats --json > "$T/stats.json"; t1=$(ms)
	echo "stats: $((t1 - t0)) ms"
done
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("file %d B, used %d B, free pages %d, tasks %d, events %d" % (s["file_bytes"], s["used_bytes"], s["free_pages"], s["tasks"], s["events"]))' "$T/stats.json"

echo "== references: raw copy, mdb_copy -c"
sync
t0=$(ms); cp "$T/db/data.mdb" "$T/copy.mdb"; sync "$T/copy.mdb"; t1=$(ms)
echo "cp data.mdb + sync: $((t1 - t0)) ms"
rm -f "$T/copy.mdb"; mkdir -p "$T/mc"
t0=$(ms); mdb_copy -c "$T/db" "$T/mc"; sync "$T/mc/data.mdb"; t1=$(ms)
echo "mdb_copy -c + sync: $((t1 - t0)) ms, $(stat -c %s "$T/mc/data.mdb") B"
rm -rf "$T/mc"

echo "== compact of the filled database"
t0=$(ms); c db compact; t1=$(ms)
echo "compact: $((t1 - t0)) ms"

echo "== archive --before now of all $N tasks through the broker"
c server start >/dev/null
bpid=$(cat "$T/db/broker.pid")
t0=$(ms); b0=$(cpu_of "$bpid")
/usr/bin/time -f "client: %e s wall, %U s user, %S s sys, %M KiB max RSS" \
    "$COPAL" --db "$T/db" db archive --before now -o "$T/a.jsonl.gz"
t1=$(ms); b1=$(cpu_of "$bpid")
echo "archive: $((t1 - t0)) ms, $(awk -v n="$N" -v ms=$((t1 - t0)) 'BEGIN{printf "%.0f", n / (ms / 1000)}') tasks/s; broker CPU $(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", b - a}') s"
echo "stats with the broker running:"
t0=$(ms); c db stats --json > "$T/stats2.json"; t1=$(ms)
echo "stats: $((t1 - t0)) ms"
c server stop >/dev/null
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("after archive: file %d B, used %d B, free pages %d (%d B), tasks %d, events %d" % (s["file_bytes"], s["used_bytes"], s["free_pages"], s["free_pages"]*s["page_size"], s["tasks"], s["events"]))' "$T/stats2.json"
raw=$(zcat "$T/a.jsonl.gz" | wc -c)
echo "archive file: $(stat -c %s "$T/a.jsonl.gz") B gzip, $raw B JSON, $(zcat "$T/a.jsonl.gz" | wc -l) lines"
zcat "$T/a.jsonl.gz" > "$T/a.jsonl"
t0=$(ms)
/usr/bin/time -f "reference gzip -6 of the same JSON: %e s wall, %U s user, %S s sys" \
    gzip -6 -c "$T/a.jsonl" > /dev/null
t1=$(ms)
rm -f "$T/a.jsonl"

echo "== compact after the archive"
t0=$(ms); c db compact; t1=$(ms)
echo "compact: $((t1 - t0)) ms"
c db check

echo "== store-level reference: db_bench purge on the copy"
cp -r "$T/db" "$T/db2"
cp "$T/ref/data.mdb" "$T/db2/data.mdb"; rm -f "$T/db2/lock.mdb"
"$B/bench/db_bench" purge "$T/db2"
