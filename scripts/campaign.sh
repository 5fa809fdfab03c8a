#!/usr/bin/env bash
# copal's main job on its embedded default: a local broker and launcher,
# no batch scheduler. Makes a database, registers apps, submits a
# campaign (a few hundred tasks, a DAG passing data from parents to
# children, a task that fails once and is retried by its error handler,
# one that times out), runs a local launcher to completion, and shows the
# outcome.
#
#   scripts/campaign.sh [BIN_DIR]     (BIN_DIR: a build tree, default build-rel)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT=$PWD
BIN=${1:-$ROOT/build-rel}
export PATH="$BIN/cli:$BIN/broker:$BIN/launcher:$PATH"
DEMO=$ROOT/scripts/demo

DB=${COPAL_DEMO_DB:-$(mktemp -d /tmp/copal-demo-XXXXXX)/db}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "copal init $DB"
copal init "$DB"
eval "$(copal activate "$DB")"
trap 'copal server stop >/dev/null 2>&1 || true' EXIT
copal server start

say "apps"
copal app --name hello --executable "echo Hello from" --description "a greeting"
copal app --name produce --executable "$DEMO/produce.sh"
copal app --name transform --executable "$DEMO/transform.sh"
copal app --name reduce --executable "$DEMO/reduce.sh"
copal app --name flaky --executable "$DEMO/flaky.sh" --postprocess "$DEMO/handler.sh"
copal app --name slow --executable "$DEMO/slow.sh"
copal ls apps

say "300 tasks from a JSON-lines file"
jsonl=$(dirname "$DB")/tasks.jsonl
for i in $(seq 1 300); do
  printf '{"name":"hello%d","workflow":"greetings","app":"hello","args":"task %d","node_packing_count":8}\n' "$i" "$i"
done > "$jsonl"
copal job --from-file "$jsonl"

say "a DAG: produce -> 4 x transform -> reduce, data passed by input_files"
p=$(copal job -q --name produce --workflow dag --app produce)
parts=()
for k in 0 1 2 3; do
  parts+=("$(copal job -q --name transform$k --workflow dag --app transform \
    --args "$k 4" --parents "$p" --input-files "out.dat" --node-packing-count 4)")
done
r=$(copal job -q --name reduce --workflow dag --app reduce \
  --parents "$(IFS=,; echo "${parts[*]}")" --input-files "part-*.dat")

say "a task that fails once and is retried by its error handler"
f=$(copal job -q --name flaky --workflow faults --app flaky --post-error-handler --max-retries 2)
say "a task that times out (3 s) and is retried once, then fails"
s=$(copal job -q --name slow --workflow faults --app slow --timeout-seconds 3 \
  --auto-timeout-retry --max-retries 1 --node-packing-count 4)

copal ls --by-states
copal ls wf

say "copal launcher --job-mode serial (local host)"
copal launcher --job-mode serial --idle-ttl 2

say "outcome"
copal ls --by-states
copal ls --wf dag
copal ls --wf faults
say "history of the flaky task"
copal ls --history --id "${f:0:8}"
say "history of the slow task"
copal ls --history --id "${s:0:8}"
say "output of the reducer"
cat "$DB"/data/dag/reduce_"${r:0:8}"/reduce.out

# the campaign must have come out as planned
fin=$(copal ls --state JOB_FINISHED --format csv | tail -n +2 | wc -l)
failed=$(copal ls --state FAILED --format csv | tail -n +2 | wc -l)
if [[ $fin -ne 307 || $failed -ne 1 ]]; then
  echo "campaign: expected 307 JOB_FINISHED and 1 FAILED, got $fin and $failed" >&2
  exit 1
fi
say "done: $fin tasks finished, $failed failed as planned; database in $DB"
