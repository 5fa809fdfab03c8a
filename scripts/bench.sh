#!/usr/bin/env bash
# Every benchmark, each measuring its physical reference in the same run
# (raw LMDB puts, raw NNG round trips, raw posix_spawn). Results and how
# to read them: BENCHMARKS.md. Run on an otherwise idle machine.
#   scripts/bench.sh [-q]     -q: quick sizes (100k tasks, 2000 spawns)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
bash scripts/deps.sh
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DCOPAL_SANITIZE=OFF -DCOPAL_TESTS=OFF
cmake --build build-rel -j"${JOBS:-2}"
quick=${1:-}
if [[ $quick == -q ]]; then
  build-rel/bench/store_bench -q
  build-rel/bench/broker_bench -q
  build-rel/bench/launcher_bench -n 2000
else
  build-rel/bench/store_bench
  build-rel/bench/broker_bench
  build-rel/bench/launcher_bench -n 10000
fi
