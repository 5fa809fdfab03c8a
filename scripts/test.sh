#!/usr/bin/env bash
# Build and test copal in two trees:
#   build/       RelWithDebInfo
#   build-asan/  Debug with AddressSanitizer + UndefinedBehaviorSanitizer
# Both trees are always attempted; the script exits non-zero if any
# configure, build or test step failed in either.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT=$PWD
JOBS=${JOBS:-2}

bash scripts/deps.sh

declare -A SUMMARY=()
failed=0

# run_tree <dir> <cmake args...>
# Never relies on set -e inside (it is called from a plain statement and
# checks every step itself); records one summary line in SUMMARY[<dir>].
run_tree() {
  local dir=$1
  shift
  local log="$ROOT/$dir/ctest.log"

  echo "==> [$dir] configure: $*"
  if ! cmake -S "$ROOT" -B "$ROOT/$dir" "$@"; then
    SUMMARY[$dir]="$dir: configure FAILED"
    return 1
  fi
  echo "==> [$dir] build"
  if ! cmake --build "$ROOT/$dir" -j"$JOBS"; then
    SUMMARY[$dir]="$dir: build FAILED"
    return 1
  fi
  echo "==> [$dir] test"
  local rc=0
  (cd "$ROOT/$dir" && ctest --output-on-failure --no-tests=error -j"$JOBS") 2>&1 | tee "$log" || rc=$?
  # "NN% tests passed, F tests failed out of T"
  local line total nfail
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -n "$line" ]]; then
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    SUMMARY[$dir]="$dir: $((total - nfail)) passed, $nfail failed"
  elif grep -q 'No tests were found' "$log"; then
    SUMMARY[$dir]="$dir: no tests found (FAILED)"
  else
    SUMMARY[$dir]="$dir: ctest FAILED (exit $rc, no summary)"
  fi
  return "$rc"
}

run_tree build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOPAL_SANITIZE=OFF || failed=1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_tree build-asan -DCMAKE_BUILD_TYPE=Debug -DCOPAL_SANITIZE=ON || failed=1

echo
echo "==> test.sh summary"
for dir in build build-asan; do
  echo "${SUMMARY[$dir]:-$dir: not run}"
done
if ((failed)); then
  echo "test.sh: FAILED" >&2
  exit 1
fi
echo "test.sh: all passed"
