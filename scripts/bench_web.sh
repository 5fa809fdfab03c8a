#!/usr/bin/env bash
# copal web at scale: a database of N tasks (default 1,000,000: 4N events)
# filled by mkevents through a real broker, then copal web on it:
#
#   * the first pass of its statistics thread over the whole event log;
#   * each API answer of one refresh of the page (info, counts, stats x2,
#     launchers, jobs, failed) and the on-demand ones (task, search,
#     timeline), 10 runs each with curl: median and max, against the
#     200 ms budget and against the physical reference, a raw HTTP round
#     trip to the same server (GET /app.css, no broker);
#   * the broker's CPU while the page refreshes every 5 s (its default)
#     for 60 s, from /proc/PID/stat.
#
#   scripts/bench_web.sh [-n TASKS] [BUILD_DIR]     (default build-rel)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
n=1000000
while getopts n: opt; do
	case $opt in
	n) n=$OPTARG ;;
	*) sed -n '14p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
B=$(readlink -f "${1:-build-rel}")
for f in cli/copal cli/mkevents broker/copal-broker; do
	[[ -x $B/$f ]] || { echo "bench_web: $B/$f not built (COPAL_TESTS=ON)" >&2; exit 1; }
done
export PATH=$B/cli:$B/broker:$PATH
T=$(mktemp -d /tmp/copal-bench-web.XXXXXX)
export HOME=$T COPAL_NO_AUTOSTART=1
unset COPAL_DB COPAL_BROKER_URL
WPID=
finish() {
	[[ -n $WPID ]] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	copal --db "$T/db" server stop >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap finish EXIT

copal init "$T/db" >/dev/null
copal --db "$T/db" server start >/dev/null
t0=$EPOCHREALTIME
mkevents --db "$T/db" -n "$n" -e 1000 -q
echo "mkevents: $n tasks, $((4 * n)) events in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
BPID=$(cat "$T/db/broker.pid")
t0=$EPOCHREALTIME
copal --db "$T/db" stats --format json >/dev/null
echo "reference: copal stats over the same log: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"

copal --db "$T/db" web --listen 127.0.0.1:0 >"$T/web.log" 2>&1 &
WPID=$!
t0=$EPOCHREALTIME
until grep -qs 'open http' "$T/web.log"; do sleep 0.1; done
URL=$(sed -n 's|^copal web: open \(http://[^/]*\)/?token=.*|\1|p' "$T/web.log")
TOKEN=$(cat "$T/db/secret")
H=(-H "Authorization: Bearer $TOKEN")
until curl -s "${H[@]}" "$URL/api/stats" | grep -q '"loaded":true'; do sleep 0.2; done
echo "stats thread, first pass over the log (whole campaign and last hour): $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"

# median and max of 10 runs of curl's total time, in ms
times() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		curl -s -o /dev/null -w '%{time_total}\n' "${H[@]}" "$URL$1"
	done | sort -n | awk '{ a[NR] = $1 * 1000 } END { printf "%.2f %.2f\n", (a[5] + a[6]) / 2, a[10] }'
}
read -r ref refmax < <(times /app.css)
echo "reference: GET /app.css (raw HTTP round trip, no broker): median $ref ms, max $refmax ms"
UUID=$(curl -s "${H[@]}" "$URL/api/failed?limit=1" | jq -r '.tasks[0].uuid')
NAME=$(curl -s "${H[@]}" "$URL/api/task?uuid=$UUID" | jq -r .name)
printf '%-40s %10s %10s %10s %s\n' "endpoint" "median ms" "max ms" "x ref" "bytes"
for p in /api/info /api/counts "/api/stats?range=all" "/api/stats?range=hour" \
    /api/launchers /api/jobs "/api/failed?limit=20" "/api/task?uuid=${UUID:0:8}" \
    "/api/search?workflow=wf1&limit=50" "/api/search?state=FAILED&limit=50" \
    "/api/search?uuid=${UUID:0:6}" "/api/search?name=$NAME" \
    "/api/timeline?since=-1m" "/api/timeline?since=-10m"; do
	read -r med max < <(times "$p")
	bytes=$(curl -s "${H[@]}" "$URL$p" | wc -c)
	printf '%-40s %10s %10s %10s %s\n' "$p" "$med" "$max" \
	    "$(awk -v a="$med" -v b="$ref" 'BEGIN{printf "%.1f", a/b}')" "$bytes"
done

# the broker's CPU for a page open a minute (refresh every 5 s: 12
# refreshes of 7 requests, as app.js does), against a minute without it
cpu() { awk '{ print $14 + $15 }' "/proc/$BPID/stat"; }
hz=$(getconf CLK_TCK)
c0=$(cpu)
sleep "${IDLE_S:-60}"
c1=$(cpu)
for i in $(seq 12); do
	for p in /api/info /api/counts "/api/stats?range=all" "/api/stats?range=hour" \
	    /api/launchers /api/jobs "/api/failed?limit=20"; do
		curl -s -o /dev/null "${H[@]}" "$URL$p"
	done
	sleep 5
done
c2=$(cpu)
echo "broker CPU per minute: idle $(awk -v a="$c0" -v b="$c1" -v h="$hz" 'BEGIN{printf "%.2f", (b-a)/h}') s," \
    "with the page open (12 refreshes) $(awk -v a="$c1" -v b="$c2" -v h="$hz" 'BEGIN{printf "%.2f", (b-a)/h}') s"
echo "copal web RSS: $(awk '/VmRSS/{print $2, $3}' "/proc/$WPID/status")"
