#!/usr/bin/env bash
# The main job: install dependencies, build a Release tree in build-rel/ and
# run the store benchmark. Arguments go to store_bench (-q: quick 100k-task
# run; default: 1M tasks). This grows into a full local campaign (broker,
# launchers, CLI) as those parts land.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
JOBS=${JOBS:-2}

bash scripts/deps.sh

cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DCOPAL_SANITIZE=OFF -DCOPAL_TESTS=OFF
cmake --build build-rel -j"$JOBS"

bench=build-rel/bench/store_bench
if [[ ! -x $bench ]]; then
  echo "run.sh: error: $bench was not built (is bench/store_bench.c in the tree?)" >&2
  exit 1
fi
exec "$bench" "$@"
