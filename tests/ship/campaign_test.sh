#!/usr/bin/env bash
# The main job (README's first command: scripts/run.sh runs
# scripts/campaign.sh on the Release tree) as a test: runs the campaign in a
# private directory, then checks its outcome task by task: every final
# state, the DAG's files and the data that flowed through them, the task
# retried by its error handler and the one that timed out.
#
#   campaign_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(readlink -f "$1")
SRC=$(readlink -f "$2")
T=$(mktemp -d /tmp/cpl-camp.XXXXXX)
export HOME=$T/home
mkdir -p "$HOME"
export COPAL_DEMO_DB=$T/db
export PATH="$BUILD/cli:$BUILD/broker:$BUILD/launcher:$PATH"
export COPAL_DB=$COPAL_DEMO_DB
cleanup() { copal server stop >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "campaign_test: FAIL: $*" >&2; exit 1; }
ok() { echo "campaign_test: ok: $*"; }

bash "$SRC/scripts/campaign.sh" "$BUILD" >"$T/campaign.log" 2>&1 || {
  cat "$T/campaign.log"; fail "scripts/campaign.sh exited non-zero"; }
ok "scripts/campaign.sh"

copal ls --all --format json >"$T/tasks.json"
copal ls --all --history --format json >"$T/history.json"
q() { jq -r "$@" "$T/tasks.json"; }

[[ $(q 'length') -eq 308 ]] || fail "$(q 'length') tasks, want 308"
# every greeting finished, once, and wrote its line
[[ $(q '[.[] | select(.workflow=="greetings")] | length') -eq 300 ]] || fail "greetings count"
[[ $(q '[.[] | select(.workflow=="greetings" and .state=="JOB_FINISHED" and .attempt==1 and .return_code==0)] | length') -eq 300 ]] ||
  fail "not every greeting is JOB_FINISHED after one attempt: $(q '[.[] | select(.workflow=="greetings") | .state] | group_by(.) | map({(.[0]): length}) | add')"
for i in 1 150 300; do
  u=$(q ".[] | select(.name==\"hello$i\") | .uuid")
  out=$(cat "$COPAL_DB/data/greetings/hello${i}_${u:0:8}/hello$i.out")
  [[ $out == "Hello from task $i" ]] || fail "hello$i.out: '$out'"
done
ok "300 greetings JOB_FINISHED with their output"

# the DAG: every node finished, data flowed parent -> children -> reducer
[[ $(q '[.[] | select(.workflow=="dag" and .state=="JOB_FINISHED")] | length') -eq 6 ]] || fail "DAG not all JOB_FINISHED"
dir() { local u; u=$(q ".[] | select(.name==\"$1\") | .uuid"); echo "$COPAL_DB/data/dag/$1_${u:0:8}"; }
[[ $(wc -l <"$(dir produce)/out.dat") -eq 1000 ]] || fail "produce's out.dat"
sum=0
for k in 0 1 2 3; do
  d=$(dir transform$k)
  [[ -L $d/out.dat || -f $d/out.dat ]] || fail "transform$k: out.dat not linked in"
  cmp -s "$d/out.dat" "$(dir produce)/out.dat" || fail "transform$k: out.dat is not the parent's"
  id=$(q ".[] | select(.name==\"transform$k\") | .id")
  part=$(cat "$d/part-$id.dat")
  [[ $part =~ ^[0-9]+$ ]] || fail "transform$k: part '$part'"
  sum=$((sum + part))
  # the parent is recorded
  [[ $(q ".[] | select(.name==\"transform$k\") | .parents | length") -eq 1 ]] || fail "transform$k parents"
done
[[ $sum -eq 500500 ]] || fail "parts add up to $sum"
r=$(dir reduce)
[[ $(ls "$r"/part-*.dat | wc -l) -eq 4 ]] || fail "reduce got $(ls "$r"/part-*.dat | wc -l) parts"
[[ $(cat "$r/reduce.out") == "sum of 1..1000 from 4 parts: 500500" ]] || fail "reduce.out: $(cat "$r/reduce.out")"
[[ $(q '.[] | select(.name=="reduce") | .parents | length') -eq 4 ]] || fail "reduce parents"
# no child ran before its parent finished
h() { jq -r "$@" "$T/history.json"; }
fin() { h ".[] | select(.name==\"$1\") | .events[] | select(.to==\"JOB_FINISHED\") | .time"; }
run() { h ".[] | select(.name==\"$1\") | .events[] | select(.to==\"RUNNING\") | .time"; }
for k in 0 1 2 3; do
  [[ ! "$(run transform$k)" < "$(fin produce)" ]] || fail "transform$k ran before produce finished"
  [[ ! "$(run reduce)" < "$(fin transform$k)" ]] || fail "reduce ran before transform$k finished"
done
ok "DAG: 6 JOB_FINISHED, out.dat linked into 4 children, 4 parts summed to 500500, order kept"

# the flaky task: failed once (rc 3), its error handler asked for a retry,
# the second attempt finished
[[ $(q '.[] | select(.name=="flaky") | "\(.state) \(.attempt)"') == "JOB_FINISHED 2" ]] || fail "flaky: $(q '.[] | select(.name=="flaky") | "\(.state) \(.attempt)"')"
fl=$(h -c '.[] | select(.name=="flaky") | [.events[] | [.to, .return_code]]')
[[ $fl == '[["READY",0],["RUNNING",0],["RUN_ERROR",3],["RESTART_READY",0],["RUNNING",0],["RUN_DONE",0],["POSTPROCESSED",0],["JOB_FINISHED",0]]' ]] ||
  fail "flaky history: $fl"
msg=$(h -r '.[] | select(.name=="flaky") | .events[] | select(.to=="RUN_ERROR") | .message')
[[ $msg == *"simulated crash"* ]] || fail "flaky: RUN_ERROR does not carry the output's tail: $msg"
ok "flaky: RUN_ERROR (rc 3) -> RESTART_READY by its handler -> JOB_FINISHED on attempt 2"

# the slow task: timed out (3 s) on both attempts, then FAILED
[[ $(q '.[] | select(.name=="slow") | "\(.state) \(.attempt)"') == "FAILED 2" ]] || fail "slow: $(q '.[] | select(.name=="slow") | "\(.state) \(.attempt)"')"
[[ $(h '[.[] | select(.name=="slow") | .events[] | select(.to=="RUN_TIMEOUT")] | length') -eq 2 ]] || fail "slow: not 2 RUN_TIMEOUT"
[[ $(h '[.[] | select(.name=="slow") | .events[] | select(.to=="RUNNING")] | length') -eq 2 ]] || fail "slow: not 2 runs"
[[ $(h -r '.[] | select(.name=="slow") | .events[-1].to') == FAILED ]] || fail "slow: last event is not FAILED"
ok "slow: RUN_TIMEOUT twice, then FAILED"

# and nothing is left running
[[ $(q '[.[] | select(.state!="JOB_FINISHED" and .state!="FAILED")] | length') -eq 0 ]] || fail "tasks left unfinished"
echo "campaign_test: all passed"
