#!/usr/bin/env bash
# copal web against a real broker and a real launcher running a small
# campaign:
#
#   alpha: a1 a2 a3   sleep 1, exit 0                      -> JOB_FINISHED
#   beta:  e1 e2      print "boom N", sleep 1, exit 3       -> FAILED
#   gamma: g1         sleep 60 (killed from the page's API) -> USER_KILLED
#
# The JSON API is checked endpoint by endpoint against the CLI (copal ls,
# history, export), every bad input gets its status (400 with a reason, 401
# without the token, 403 for actions when they are off, 404, 405) and
# changes nothing; kill and restart work with --allow-actions. Off
# loopback the page is HTTPS with the database's certificate. Then
# headless Chromium loads the page: its tasks-by-state table must equal
# `copal ls --by-states`, its failed tasks the FAILED tasks with their
# return code and output; following a failed task's link shows its
# history. Screenshots are kept in BUILD_DIR/web-artifacts/.
#
#   web_test.sh BUILD_DIR
#
# Chromium (Debian's chromium, scripts/deps.sh) is required: without it
# the test fails, it never skips.
COPAL_BIN=${1:-${COPAL_BIN:-}}
export COPAL_BIN
source "$(dirname "$0")/../../launcher/test/lib.sh"

ART=$COPAL_BIN/web-artifacts
CHROME=$(command -v chromium || command -v chromium-browser || true)
[[ -n $CHROME ]] || fail "chromium is needed (bash scripts/deps.sh installs it)"
command -v curl >/dev/null || fail "curl is needed"
command -v jq >/dev/null || fail "jq is needed"
rm -rf "$ART"
mkdir -p "$ART"

setup_db
TOKEN=$(cat "$DB/secret")
add_app sl "sh -c 'echo \"boom \$0\"; sleep \"\$0\"; exit \"\$1\"'"
J=(--node-packing-count 8)
for n in a1 a2 a3; do
	tg=site=x
	[[ $n == a2 ]] && tg=site=x,kind=big
	[[ $n == a3 ]] && tg=site=y
	add_job "$n" sl --workflow alpha --args "1 0" --tag "$tg" "${J[@]}" >/dev/null
done
for n in e1 e2; do
	add_job "$n" sl --workflow beta --args "1 3" --max-retries 0 "${J[@]}" >/dev/null
done
add_job g1 sl --workflow gamma --args "60 0" "${J[@]}" >/dev/null

WEB_PIDS=()
# start_web LOGNAME [copal web options]: URL (without token) in WEBURL
start_web() {
	local name=$1
	shift
	command copal --db "$DB" web "$@" >"$T/$name.log" 2>&1 &
	WEB_PIDS+=($!)
	WPID=$!
	wait_for "grep -qs 'open http' '$T/$name.log'" 20 "copal web $* printing its URL"
	WEBURL=$(sed -n 's|^copal web: open \(https\?://[^/]*\)/?token=.*|\1|p' "$T/$name.log")
	[[ -n $WEBURL ]] || fail "no URL in $(cat "$T/$name.log")"
	log "copal web $* at $WEBURL (pid $WPID)"
}
stop_web() { # PID: SIGTERM, exit status 0
	local rc=0
	kill -TERM "$1"
	wait "$1" || rc=$?
	assert_eq 0 "$rc" "copal web (pid $1) exit status after SIGTERM"
}

# api PATH [curl args]: the body in BODY, the status in CODE; the token
# from AUTH
AUTH=(-H "Authorization: Bearer $TOKEN")
api() {
	local path=$1
	shift
	BODY=$(curl -s -o - -w '\n%{http_code}' "${AUTH[@]}" "$@" "$URL/api/$path")
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
expect() { # CODE PATH [curl args]: checks the status, and a reason for errors
	local want=$1 path=$2
	shift 2
	api "$path" "$@"
	assert_eq "$want" "$CODE" "status of /api/$path $* ($BODY)"
	if [[ $want != 200 ]]; then
		local why
		why=$(jq -r .error <<<"$BODY") || fail "/api/$path: no JSON error: $BODY"
		[[ -n $why && $why != null ]] || fail "/api/$path: no reason given: $BODY"
	fi
}

start_web web1 --listen 127.0.0.1:0
URL=$WEBURL

# ------------------------------------------------------------ a usage error
rc=0
out=$(copal web --listen nonsense 2>&1) || rc=$?
assert_eq 2 "$rc" "copal web --listen nonsense"
assert_contains "$out" "not HOST:PORT" "bad --listen"

# ------------------------------------------------------------ while it runs
start_launcher l1 --job-mode serial --idle-ttl 1
wait_for_state g1 RUNNING 30
wait_for_state e1 FAILED 30
wait_for_state e2 FAILED 30
for n in a1 a2 a3; do wait_for_state "$n" JOB_FINISHED 30; done

expect 200 launchers
assert_eq 1 "$(jq '.launchers | length' <<<"$BODY")" "one running launcher"
assert_eq "$(hostname)" "$(jq -r '.launchers[0].host' <<<"$BODY")" "launcher host"
assert_match "$(jq -r '.launchers[0].owner' <<<"$BODY")" '^launcher ' "launcher owner"
assert_eq 1 "$(jq '.launchers[0].tasks' <<<"$BODY")" "tasks the launcher holds (g1)"
fcmp "$(jq '.launchers[0].age_s' <<<"$BODY")" '>' 0 || fail "lease age: $BODY"

# ------------------------------------------------------------ the API
expect 200 info
assert_eq "$DB" "$(jq -r .db <<<"$BODY")" "info: the database"
assert_eq false "$(jq -r .allow_actions <<<"$BODY")" "info: read-only"

# counts = copal ls --by-states (JSON), and the workflows
expect 200 counts
want=$(copal ls --by-states --format json | jq -c '[.[] | select(.state != "total") | {(.state): .count}] | add')
got=$(jq -c '.by_state | with_entries(select(.value > 0))' <<<"$BODY")
assert_eq "$want" "$got" "counts by state = copal ls --by-states"
assert_eq 6 "$(jq .total <<<"$BODY")" "total"
assert_eq '{"alpha":3,"beta":2,"gamma":1}' \
    "$(jq -c '[.workflows[] | {(.name): .tasks}] | add' <<<"$BODY")" "counts by workflow"
expect 200 "counts?limit=1&offset=1"
assert_eq '["beta"] true' "$(jq -c '[.workflows[].name]' <<<"$BODY") $(jq .more <<<"$BODY")" "workflows paged"

# failed: the two FAILED tasks with return code and output tail
expect 200 failed
want=$(copal ls --state FAILED --format json | jq -c '[.[].uuid] | sort')
assert_eq "$want" "$(jq -c '[.tasks[].uuid] | sort' <<<"$BODY")" "failed tasks = copal ls --state FAILED"
assert_eq '[3,3]' "$(jq -c '[.tasks[].return_code]' <<<"$BODY")" "failed: return codes"
assert_eq '["boom 1\n","boom 1\n"]' "$(jq -c '[.tasks[].tail]' <<<"$BODY")" "failed: output tails"
expect 200 "failed?limit=1"
assert_eq "1 true" "$(jq '.tasks | length' <<<"$BODY") $(jq .more <<<"$BODY")" "failed: first page"
next=$(jq .next <<<"$BODY")
expect 200 "failed?limit=1&after=$next"
assert_eq "1 false" "$(jq '.tasks | length' <<<"$BODY") $(jq .more <<<"$BODY")" "failed: second page"

# task: one task and its history, = copal history
E1=$(uuid_of e1)
expect 200 "task?uuid=${E1:0:8}"
assert_eq "$E1 FAILED 3" "$(jq -r '"\(.uuid) \(.state) \(.return_code)"' <<<"$BODY")" "task e1"
want=$(copal history "$E1" --format json | jq -c '[.[0].events[].to]')
assert_eq "$want" "$(jq -c '[.history[].to]' <<<"$BODY")" "task e1: history = copal history"
assert_contains "$(jq -c '[.history[].to]' <<<"$BODY")" '"RUN_ERROR"' "history has the run error"
want=$(copal history "$E1" --format json | jq -c '[.[0].events[].user]')
assert_eq "$want" "$(jq -c '[.history[].user]' <<<"$BODY")" "task e1: who did each change = copal history"
assert_eq "$(id -un)" "$(jq -r '.history[0].user' <<<"$BODY")" "task e1: created by this user"

# search: by uuid prefix, name, workflow, state
A2=$(uuid_of a2)
expect 200 "search?uuid=${A2:0:6}"
assert_eq "[\"$A2\"]" "$(jq -c '[.tasks[].uuid]' <<<"$BODY")" "search by uuid prefix"
expect 200 "search?name=a2"
assert_eq "[\"$A2\"]" "$(jq -c '[.tasks[].uuid]' <<<"$BODY")" "search by name"
expect 200 "search?workflow=alpha"
assert_eq '["a1","a2","a3"]' "$(jq -c '[.tasks[].name]' <<<"$BODY")" "search by workflow"
expect 200 "search?workflow=beta&state=failed"
assert_eq '["e1","e2"]' "$(jq -c '[.tasks[].name]' <<<"$BODY")" "search by workflow and state"
expect 200 "search?name=nosuchtask"
assert_eq 0 "$(jq '.tasks | length' <<<"$BODY")" "search: no match"
# by tag (repeatable: all of them) = copal ls --tag
expect 200 "search?tag=site%3Dx"
assert_eq '["a1","a2"]' "$(jq -c '[.tasks[].name]' <<<"$BODY")" "search by tag"
want=$(copal ls --tag site=x --format json | jq -c '[.[].uuid] | sort')
assert_eq "$want" "$(jq -c '[.tasks[].uuid] | sort' <<<"$BODY")" "search by tag = copal ls --tag"
expect 200 "search?tag=site=x&tag=kind=big"
assert_eq '["a2"]' "$(jq -c '[.tasks[].name]' <<<"$BODY")" "search by two tags"
expect 200 "search?tag=site=y&state=JOB_FINISHED&workflow=alpha"
assert_eq '["a3"]' "$(jq -c '[.tasks[].name]' <<<"$BODY")" "search by tag, state and workflow"
expect 200 "search?tag=site=z"
assert_eq 0 "$(jq '.tasks | length' <<<"$BODY")" "search by tag: no match"
# the hand-started launcher ran in no batch job: job 1 does not exist yet
expect 409 "search?batch_job=1"

# stats: the profile of copal stats (its library), kept up to date
wait_for "api 'stats?range=all'; [[ \$(jq .finished <<<\"\$BODY\") == 3 ]]" 20 "stats: 3 finished"
want=$(copal stats --format json)
assert_eq "$(jq .finished <<<"$want") $(jq .failed <<<"$want")" \
    "$(jq .finished <<<"$BODY") $(jq .failed <<<"$BODY")" "stats: finished and failed = copal stats"
assert_eq true "$(jq '(.t | length) > 0 and (.t | length) == (.util | length) and (.t | length) == (.thr | length)' <<<"$BODY")" "stats: points"
fcmp "$(jq '[.util[]] | max' <<<"$BODY")" '>' 0 || fail "stats: no utilization: $BODY"
expect 200 "stats?range=hour"
assert_eq "3 3" "$(jq .finished <<<"$BODY") $(jq .finished_shown <<<"$BODY")" "stats of the last hour"

# timeline: every run of the window, on the launcher's node slots
expect 200 "timeline?since=-1h"
assert_eq 6 "$(jq '.spans | length' <<<"$BODY")" "timeline: 6 runs"
assert_eq 1 "$(jq '[.spans[] | select(.[3] == "running")] | length' <<<"$BODY")" "timeline: g1 running"
assert_eq 2 "$(jq '[.spans[] | select(.[3] == "RUN_ERROR")] | length' <<<"$BODY")" "timeline: two errors"
expect 200 "timeline?since=-1h&until=-50m"
assert_eq 0 "$(jq '.spans | length' <<<"$BODY")" "timeline: a window before the campaign"

# export: each format, as copal export writes it
for f in jsonl csv chrome; do
	curl -s -H "Authorization: Bearer $TOKEN" -D "$T/h.$f" -o "$T/web.$f" "$URL/api/export?format=$f"
	copal export --format "$f" -o "$T/cli.$f"
	assert_contains "$(cat "$T/h.$f")" "attachment; filename=" "export $f: a download"
	if [[ $f == chrome ]]; then
		jq -e '.traceEvents | length > 0' "$T/web.$f" >/dev/null || fail "export chrome: not a trace"
	else
		# the page's export may have 1-2 events more (g1 killed later: none yet)
		assert_eq "$(wc -l <"$T/cli.$f")" "$(wc -l <"$T/web.$f")" "export $f: lines"
	fi
done
expect 200 "export?format=jsonl&wf=beta"
assert_eq '["beta"]' "$(jq -sc '[.[].workflow] | unique' <<<"$BODY")" "export of one workflow"

expect 200 jobs
assert_eq 0 "$(jq .total <<<"$BODY")" "no batch jobs"

# ------------------------------------------------------------ bad input
before=$(copal ls --format json | jq -c '[.[] | {uuid, state}]')
AUTH=()
for p in info counts failed "stats?range=all" task search timeline "export?format=csv" \
    launchers jobs kill restart; do
	expect 401 "$p"
	expect 401 "$p" -H "Authorization: Bearer wrong$TOKEN"
	expect 401 "$p" -H "Authorization: Bearer ${TOKEN:0:10}"
done
expect 401 counts -H "Cookie: copal_token=nope"
expect 401 "kill?uuid=$(uuid_of g1)" -X POST -H "X-Copal-Action: 1"
expect 200 counts -H "Cookie: a=b; copal_token=$TOKEN"
AUTH=(-H "Authorization: Bearer $TOKEN")
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/?token=wrong")
assert_eq 401 "$code" "the page with a wrong token"
hdr=$(curl -s -D - -o /dev/null "$URL/?token=$TOKEN")
assert_contains "$hdr" "303" "the page with the token: a redirect"
assert_contains "$hdr" "Set-Cookie: copal_token=$TOKEN; Path=/; HttpOnly; SameSite=Strict" "the cookie"

long=$(printf 'x%.0s' {1..300})
huge=$(printf 'y%.0s' {1..2100})
for p in "failed?limit=abc" "failed?limit=0" "failed?limit=501" "failed?limit=-1" \
    "failed?after=x" "counts?bogus=1" "counts?offset=1e3" "failed?limit=1&limit=2" \
    "search?name=%zz" "search?name=%4" "search?name=a%00b" "search?name=%ff%fe" \
    "search?name=$long" "search?uuid=xyz" "search?uuid=$(printf 'a%.0s' {1..40})" \
    "search?state=BOGUS" "task?uuid=" "task" "task?uuid=zz" "timeline?since=yesterday" \
    "timeline?since=-1h&until=-2h" "timeline?until=2026-02-31T00:00:00Z" \
    "export" "export?format=xml" "export?format=csv&since=x" "stats?range=day" \
    "info?x=1" "search?$huge" "search?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13" \
    "search?tag=site" "search?tag=%3Dx" "search?tag=site=x&tag=a%01b=1" "search?tag=a=%ff" \
    "search?batch_job=x" "search?batch_job=0" "search?batch_job=-1" "search?batch_job=99999999999" \
    "search?batch_job=1&batch_job=2" "search?$(printf 'tag=a=%d&' {1..13})"; do
	expect 400 "$p"
done
expect 404 "task?uuid=ffffffff"
# no request has a body: NNG refuses one before copal web sees it
code=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -H "X-Copal-Action: 1" \
    --data-binary "@$DB/secret" "$URL/api/kill?uuid=$(uuid_of g1)")
assert_eq 400 "$code" "a POST with a body"
expect 404 nosuch
expect 405 kill
expect 405 counts -X POST -H "X-Copal-Action: 1"
expect 405 counts -X DELETE
expect 403 "kill?uuid=$(uuid_of g1)" -X POST -H "X-Copal-Action: 1"
expect 403 "restart?uuid=$E1" -X POST -H "X-Copal-Action: 1"
after=$(copal ls --format json | jq -c '[.[] | {uuid, state}]')
assert_eq "$before" "$after" "bad requests changed nothing"
assert_eq RUNNING "$(state_of g1)" "g1 still running"

# ------------------------------------------------------------ actions
start_web web2 --listen 127.0.0.1:0 --allow-actions
URL=$WEBURL
expect 200 info
assert_eq true "$(jq -r .allow_actions <<<"$BODY")" "info: actions allowed"
G1=$(uuid_of g1)
expect 400 "kill?uuid=$G1" -X POST
assert_eq RUNNING "$(state_of g1)" "no kill without X-Copal-Action"
expect 400 "kill?uuid=" -X POST -H "X-Copal-Action: 1"
expect 200 "kill?uuid=$G1" -X POST -H "X-Copal-Action: 1"
assert_eq 1 "$(jq .changed <<<"$BODY")" "kill: one task"
wait_for_state g1 USER_KILLED 30
expect 200 "restart?uuid=$E1" -X POST -H "X-Copal-Action: 1"
assert_eq 1 "$(jq .changed <<<"$BODY")" "restart: one task"
wait_for "[[ \$(state_of e1) =~ ^(RESTART_READY|RUNNING|RUN_ERROR|FAILED)$ ]]" 20 "e1 restarted"
assert_contains "$(copal history "$E1")" "restarted from copal web" "restart in e1's history"
wait_for_state e1 FAILED 30
wait_launcher "$LPID" 60

# a task run in batch job 1 (the local scheduler): search by batch job =
# copal ls --batch-job, and its history on the API names the job
add_job d1 sl --workflow delta --args "0 0" "${J[@]}" >/dev/null
out=$(copal submit-launch -n 1 -t 2 --job-mode serial 2>&1) || fail "submit: $out"
wait_for_state d1 JOB_FINISHED 40
# its launcher idle, the job ends (before more tasks come)
wait_for "[[ \$(copal ls queues --format json | jq -r '.[0].state') == FINISHED ]]" 60 \
    "batch job 1 finished"
expect 200 "search?batch_job=1"
assert_eq '["d1"]' "$(jq -c '[.tasks[].name]' <<<"$BODY")" "search by batch job"
want=$(copal ls --batch-job 1 --format json | jq -c '[.[].uuid]')
assert_eq "$want" "$(jq -c '[.tasks[].uuid]' <<<"$BODY")" "search by batch job = copal ls --batch-job"
expect 200 "search?batch_job=1&workflow=alpha"
assert_eq 0 "$(jq '.tasks | length' <<<"$BODY")" "batch job and workflow: none"
expect 200 "task?uuid=$(uuid_of d1)"
assert_eq 1 "$(jq '[.history[] | select(.to == "RUNNING")] | last | .batch_job' <<<"$BODY")" \
    "history: the RUNNING event's batch job"
stop_web "$WPID"

# ------------------------------------------------------------ off loopback
start_web web3 --listen 0.0.0.0:0
[[ $WEBURL == https://* ]] || fail "off loopback: not HTTPS ($WEBURL)"
PORT=${WEBURL##*:}
URL=https://copal-broker:$PORT
expect 200 info --cacert "$DB/tls.crt" --resolve "copal-broker:$PORT:127.0.0.1"
assert_eq true "$(jq -r .tls <<<"$BODY")" "info: TLS"
AUTH=()
expect 401 info --cacert "$DB/tls.crt" --resolve "copal-broker:$PORT:127.0.0.1"
AUTH=(-H "Authorization: Bearer $TOKEN")
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/info" || true)
[[ $code != 200 ]] || fail "plain HTTP answered off loopback"
stop_web "$WPID"

# ------------------------------------------------------------ the page
URL=$(sed -n 's|^copal web: open \(http://[^/]*\)/?token=.*|\1|p' "$T/web1.log")
chrome() { # URL [chromium args]: the DOM after the page's scripts ran
	local u=$1
	shift
	timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu \
	    --disable-dev-shm-usage --no-first-run --user-data-dir="$T/chrome" \
	    --hide-scrollbars --window-size=1400,2600 \
	    --virtual-time-budget=8000 "$@" "$u" 2>>"$T/chrome.log"
}
chrome "$URL/?token=$TOKEN" --dump-dom >"$T/page.html" || fail "chromium failed"
cp "$T/page.html" "$ART/page.html"
dom_states=$(grep -o '<tr data-state="[A-Z_]*" data-count="[0-9]*"' "$T/page.html" |
    sed 's/.*data-state="\([A-Z_]*\)" data-count="\([0-9]*\)"/\1 \2/' | sort)
cli_states=$(copal ls --by-states --format json | jq -r '.[] | select(.state != "total") | "\(.state) \(.count)"' | sort)
log "page, tasks by state:"$'\n'"$dom_states"
[[ -n $dom_states ]] || fail "the page shows no state counts"
assert_eq "$cli_states" "$dom_states" "the page's tasks by state = copal ls --by-states"
dom_failed=$(grep -o '<tr data-uuid="[0-9a-f-]*" data-rc="[0-9-]*"' "$T/page.html" |
    sed 's/.*data-uuid="\([0-9a-f-]*\)" data-rc="\([0-9-]*\)"/\1 \2/' | sort)
cli_failed=$(copal ls --state FAILED --format json | jq -r '.[] | "\(.uuid) 3"' | sort)
assert_eq "$cli_failed" "$dom_failed" "the page's failed tasks = FAILED tasks, rc 3"
assert_contains "$(cat "$T/page.html")" "boom 1" "the page shows the output tail"
assert_contains "$(cat "$T/page.html")" "$DB" "the page names its database"
assert_contains "$(cat "$T/page.html")" '<canvas id="thr-all"' "the charts"
# the search box, by link: two tags (all required), then a batch job
chrome "$URL/?token=$TOKEN#search=tags=site%3Dx+kind%3Dbig" --dump-dom >"$T/search.html" ||
    fail "chromium failed (search)"
cp "$T/search.html" "$ART/search.html"
assert_eq "a2" "$(grep -o '<tr data-name="[^"]*"' "$T/search.html" | sed 's/.*="\(.*\)"/\1/' | paste -sd,)" \
    "the page's search by tags site=x and kind=big"
chrome "$URL/?token=$TOKEN#search=batch_job=1" --dump-dom >"$T/search.html" ||
    fail "chromium failed (search by batch job)"
assert_eq "d1" "$(grep -o '<tr data-name="[^"]*"' "$T/search.html" | sed 's/.*="\(.*\)"/\1/' | paste -sd,)" \
    "the page's search by batch job"
grep -q 'runs on [0-9]* nodes' "$T/page.html" || fail "the timeline did not load"

# follow a failed task's link to its history
link=$(grep -o 'class="task-link" href="#task=[0-9a-f-]*"' "$T/page.html" | head -1 |
    sed 's/.*href="\(#task=[0-9a-f-]*\)"/\1/')
[[ -n $link ]] || link=$(grep -o 'href="#task=[0-9a-f-]*" class="task-link"' "$T/page.html" | head -1 |
    sed 's/href="\(#task=[0-9a-f-]*\)".*/\1/')
[[ -n $link ]] || fail "no link from a failed task"
U=${link#\#task=}
chrome "$URL/?token=$TOKEN$link" --dump-dom >"$T/task.html" || fail "chromium failed (task)"
cp "$T/task.html" "$ART/task.html"
dom_hist=$(grep -o '<tr data-to="[A-Z_]*"' "$T/task.html" | sed 's/.*="\(.*\)"/\1/' | paste -sd,)
cli_hist=$(copal history "$U" --format json | jq -r '.[0].events[].to' | paste -sd,)
assert_eq "$cli_hist" "$dom_hist" "the task's history on the page = copal history"
# who did each change: the creation and the restart by this user
dom_users=$(grep -o '<tr data-to="[A-Z_]*" data-user="[^"]*"' "$T/task.html" |
    sed 's/.*data-user="\(.*\)"/\1/' | paste -sd,)
cli_users=$(copal history "$U" --format json | jq -r '.[0].events[].user' | paste -sd,)
assert_eq "$cli_users" "$dom_users" "the users in the page's history = copal history"
assert_contains "$dom_users" "$(id -un)" "the page's history names the user"
grep -q "data-uuid=\"$U\"" "$T/task.html" || fail "the task panel is not of $U"

chrome "$URL/?token=$TOKEN" --screenshot="$ART/page.png" >/dev/null || fail "screenshot"
chrome "$URL/?token=$TOKEN$link" --screenshot="$ART/task.png" >/dev/null || fail "screenshot (task)"
for f in page.png task.png; do
	[[ $(stat -c %s "$ART/$f") -gt 10000 ]] || fail "$ART/$f is empty"
done
log "screenshots: $ART/page.png $ART/task.png"

# ------------------------------------------------------------ a larger log
# 30,000 more tasks by mkevents (120,000 events, 30 FAILED): a timeline
# window of more than 100,000 events keeps its last 100,000 (its start
# moves), and the statistics thread catches up with the new events
"$COPAL_BIN/cli/mkevents" --db "$DB" -n 30000 -e 1000 -q
expect 200 "timeline?since=-1h"
assert_eq "true true" "$(jq .cut <<<"$BODY") $(jq .truncated <<<"$BODY")" "timeline of 120,000+ events: cut, and 5,000 runs at most"
assert_eq true "$(jq '.since_ms > .asked_since_ms' <<<"$BODY")" "timeline: its start moved"
assert_eq 5000 "$(jq '.spans | length' <<<"$BODY")" "timeline: 5,000 runs"
want=$(copal ls --by-states --format json | jq '.[] | select(.state == "JOB_FINISHED") | .count')
wait_for "api 'stats?range=all'; [[ \$(jq .finished <<<\"\$BODY\") == $want ]]" 60 \
    "stats: $want finished (from $(jq .finished <<<"$BODY"))"
expect 200 failed
assert_eq 32 "$(jq '.tasks | length' <<<"$BODY")" "failed: 2 + 30"

stop_web "${WEB_PIDS[0]}"
pass
