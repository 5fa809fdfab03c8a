#!/usr/bin/env bash
# Build and test copal, warnings as errors (COPAL_WERROR), in four trees:
#   build-rel/   the main job first, exactly as the README runs it
#                (scripts/run.sh: Release, gcc); then the same tree with
#                its tests, and the "ship" tests on it (the campaign's
#                outcome, cmake --install, cpack -G DEB)
#   build/       RelWithDebInfo, gcc: every test
#   build-asan/  Debug with AddressSanitizer + UndefinedBehaviorSanitizer,
#                gcc: every test but "ship" (programs built outside the
#                tree against an ASan library need the ASan runtime)
#   build-clang/ Release (-O3), clang: every test
# and then the fuzzing harnesses (scripts/fuzz.sh): build-fuzz/, clang
# with libFuzzer, ASan and UBSan, each harness for $FUZZ_SECONDS (20 s)
# from its corpus in fuzz/corpus/.
# Every tree is always attempted; the script exits non-zero if any
# configure, build or test step failed in any.
#
# Each tree's summary line reads "TREE: N passed, N failed, N skipped"
# (CI reads "TREE: N passed, N failed"). A test is skipped when it exits
# with its SKIP_RETURN_CODE (77) because it cannot run here; ctest counts
# skips among its "tests passed", this script does not. With CI=true a
# skipped test fails the run unless .ci/allowed-skips names it (one test
# name and the reason per line).
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT=$PWD
JOBS=${JOBS:-2}

bash scripts/deps.sh

declare -A SUMMARY=()
declare -A SKIPNOTE=()
failed=0

# The tests that may be skipped under CI=true: first word of each line of
# .ci/allowed-skips that is not blank or a comment.
allowed_skips=" "
if [[ -f .ci/allowed-skips ]]; then
  while read -r name _; do
    [[ -z $name || $name == \#* ]] || allowed_skips+="$name "
  done <.ci/allowed-skips
fi

# run_tree <dir> <ctest args> <cmake args...>
# Never relies on set -e inside (it is called from a plain statement and
# checks every step itself); records one summary line in SUMMARY[<dir>].
run_tree() {
  local dir=$1 ctest_args=$2
  shift 2
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
  # shellcheck disable=SC2086
  (cd "$ROOT/$dir" && ctest --output-on-failure --no-tests=error -j"$JOBS" $ctest_args) 2>&1 | tee "$log" || rc=$?
  # "NN% tests passed, F tests failed out of T"; skipped tests are among
  # ctest's passed and listed under "The following tests did not run:" as
  # "<tab>  N - name (Skipped)" (or "(Disabled)")
  local line total nfail nskip name bad=""
  local -a skipped=()
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -n "$line" ]]; then
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    mapfile -t skipped < <(sed -nE 's/^[[:space:]]+[0-9]+ - ([^ ]+) \((Skipped|Disabled)\)$/\1/p' "$log")
    nskip=${#skipped[@]}
    SUMMARY[$dir]="$dir: $((total - nfail - nskip)) passed, $nfail failed, $nskip skipped"
    if [[ ${CI:-} == true ]]; then
      for name in "${skipped[@]}"; do
        [[ $allowed_skips == *" $name "* ]] || bad+=" $name"
      done
      if [[ -n $bad ]]; then
        SKIPNOTE[$dir]="$dir: skipped under CI=true, not in .ci/allowed-skips:$bad"
        echo "==> [${SKIPNOTE[$dir]}]"
        ((rc)) || rc=1
      fi
    fi
  elif grep -q 'No tests were found' "$log"; then
    SUMMARY[$dir]="$dir: no tests found (FAILED)"
  else
    SUMMARY[$dir]="$dir: ctest FAILED (exit $rc, no summary)"
  fi
  return "$rc"
}

# The README's first command, as a user runs it (plus warnings as errors).
echo "==> [build-rel] the main job: bash scripts/run.sh"
runlog=$(mktemp)
trap 'rm -f "$runlog"' EXIT
if COPAL_CMAKE_ARGS="-DCOPAL_WERROR=ON" bash scripts/run.sh >"$runlog" 2>&1; then
  tail -n 3 "$runlog"
  SUMMARY[main]="main job (scripts/run.sh): passed"
else
  cat "$runlog"
  SUMMARY[main]="main job (scripts/run.sh): FAILED"
  failed=1
fi
run_tree build-rel "-L ship" -DCMAKE_BUILD_TYPE=Release -DCOPAL_SANITIZE=OFF \
  -DCOPAL_TESTS=ON -DCOPAL_WERROR=ON || failed=1

run_tree build "" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOPAL_SANITIZE=OFF \
  -DCOPAL_WERROR=ON || failed=1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_tree build-asan "-LE ship" -DCMAKE_BUILD_TYPE=Debug -DCOPAL_SANITIZE=ON \
  -DCOPAL_WERROR=ON || failed=1
unset ASAN_OPTIONS UBSAN_OPTIONS

# The real Slurm tests (label slurm, ~2.3 min, one at a time) run in the
# gcc and ASan trees; what they test is the scripts, the scheduler and
# the batch-job verbs against a real slurmctld, which the compiler does
# not change: the clang tree runs everything else, keeping .ci/run within
# its 30 minutes on 2 cores.
run_tree build-clang "-LE slurm" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release \
  -DCOPAL_SANITIZE=OFF -DCOPAL_WERROR=ON || failed=1

# The fuzzing harnesses, a fixed time each: a crash fails the run.
echo "==> [build-fuzz] the fuzzing harnesses: bash scripts/fuzz.sh"
fuzzlog=$(mktemp)
trap 'rm -f "$runlog" "$fuzzlog"' EXIT
if ! bash scripts/fuzz.sh 2>&1 | tee "$fuzzlog"; then
  failed=1
fi
SUMMARY[fuzz]=$(grep -E '^fuzz: ' "$fuzzlog" | tail -n 1 || true)
[[ -n ${SUMMARY[fuzz]} ]] || SUMMARY[fuzz]="fuzz: FAILED (no summary)"

echo
echo "==> test.sh summary"
for dir in main build-rel build build-asan build-clang fuzz; do
  echo "${SUMMARY[$dir]:-$dir: not run}"
done
for dir in build-rel build build-asan build-clang; do
  [[ -z ${SKIPNOTE[$dir]:-} ]] || echo "${SKIPNOTE[$dir]}"
done
if ((failed)); then
  echo "test.sh: FAILED" >&2
  exit 1
fi
echo "test.sh: all passed"
