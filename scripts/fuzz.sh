#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, COPAL_FUZZ=ON, clang, ASan + UBSan)
# in build-fuzz/ and runs each for a fixed time from its committed corpus
# (fuzz/corpus/<harness>/, read only: what a run finds goes to
# build-fuzz/fuzz-run/<harness>/). A crash, a leak, undefined behaviour, a
# failed property or a timeout fails that harness; its input is kept as
# build-fuzz/fuzz-artifacts/<harness>-crash-* (or -leak-, -timeout-, ...).
#
#   bash scripts/fuzz.sh [SECONDS [HARNESS...]]
#
# SECONDS per harness (default $FUZZ_SECONDS, else 20). The last line reads
# "fuzz: N passed, N failed" (scripts/test.sh takes it as its summary).
set -uo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
SECS=${1:-${FUZZ_SECONDS:-20}}
shift || true
HARNESSES=("$@")
((${#HARNESSES[@]})) || HARNESSES=(broker_fuzz conf_fuzz tmpl_fuzz jsonl_fuzz)
B=$ROOT/build-fuzz

echo "==> [build-fuzz] configure"
mkdir -p "$B"
if ! cmake -S "$ROOT" -B "$B" -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOPAL_FUZZ=ON -DCOPAL_TESTS=OFF \
    -DCOPAL_SANITIZE=OFF -DCOPAL_WERROR=ON >"$B/configure.log" 2>&1; then
  cat "$B/configure.log"
  echo "fuzz: configure FAILED"
  exit 1
fi
echo "==> [build-fuzz] build ${HARNESSES[*]}"
if ! cmake --build "$B" -j"$JOBS" --target "${HARNESSES[@]}"; then
  echo "fuzz: build FAILED"
  exit 1
fi

# The harnesses' private directories (a store, a settings file) in memory
# when there is a /dev/shm: conf_fuzz writes a file per input
tmp=$(mktemp -d -p /dev/shm copal-fuzz.XXXXXX 2>/dev/null ||
  mktemp -d -p "$B" fuzz-tmp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0
nfailed=0
mkdir -p "$B/fuzz-artifacts"
for h in "${HARNESSES[@]}"; do
  run=$B/fuzz-run/$h
  log=$B/fuzz-run/$h.log
  rm -rf "$run"
  mkdir -p "$run"
  echo "==> [build-fuzz] $h: ${SECS} s from fuzz/corpus/$h"
  # -timeout: one input over 10 s is a hang; the outer timeout catches a
  # harness that does not stop
  rc=0
  timeout -k 10 $((SECS + 120)) "$B/fuzz/$h" -max_total_time="$SECS" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$B/fuzz-artifacts/$h-" \
    "$run" "$ROOT/fuzz/corpus/$h" >"$log" 2>&1 || rc=$?
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  speed=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log")
  cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -n 1 |
    sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([^ ]+).*/cov \1, ft \2, corpus \3/p')
  if ((rc == 0)); then
    passed=$((passed + 1))
    echo "$h: passed (${runs:-?} runs, ${speed:-?} exec/s, ${cov:-no stats})"
  else
    nfailed=$((nfailed + 1))
    grep -aE 'ERROR|SUMMARY|^fuzz: |runtime error' "$log" | head -n 20
    tail -n 40 "$log"
    echo "$h: FAILED (exit $rc; log $log; input in $B/fuzz-artifacts/)"
  fi
done
echo "fuzz: $passed passed, $nfailed failed"
((nfailed == 0))
