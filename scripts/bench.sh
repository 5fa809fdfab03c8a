#!/usr/bin/env bash
# Every benchmark that BENCHMARKS.md reports, in one command, each measuring
# its physical reference in the same run (raw LMDB puts, raw NNG round
# trips, raw posix_spawn, starting /bin/true). Results and how to read
# them: BENCHMARKS.md. Run on an otherwise idle machine.
#
#   scripts/bench.sh [-q] [-o DIR]
#
#   -q      quick sizes: 100,000 tasks (store, broker, copal commands),
#           2,000 spawns (launcher); the full sizes are 1,000,000 and 10,000
#   -o DIR  where the raw outputs go (default build-rel/bench-results/DATE)
#
# Writes DIR/machine.txt (CPUs, memory, kernel, compiler, load before and
# after), then one file per program: store_bench.txt, broker_bench.txt,
# launcher_bench.txt, bench_cli.txt (stdout and stderr of each). Every
# program runs even if one before it failed; the script exits 1 if any did
# (each fails when its own correctness checks fail).
#
# Not included: scripts/bench_queue.sh (batch-job verbs against Slurm) needs
# root and starts a private Slurm; run it apart.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
quick=
out=
while getopts qo: opt; do
	case $opt in
	q) quick=-q ;;
	o) out=$OPTARG ;;
	*) sed -n '7,11p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ $# == 0 ]] || { sed -n '7,11p' "$0" >&2; exit 2; }

bash scripts/deps.sh
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DCOPAL_SANITIZE=OFF -DCOPAL_TESTS=OFF
cmake --build build-rel -j"${JOBS:-2}"
out=${out:-build-rel/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(readlink -f "$out")

machine() {
	echo "date: $(date -Is)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with changes)')"
	echo "sizes: ${quick:-full}"
	echo "kernel: $(uname -srm)"
	grep -m1 'model name' /proc/cpuinfo || true
	echo "CPUs: $(nproc)"
	grep MemTotal /proc/meminfo
	echo "disk of /tmp and /var/tmp: $(df -h --output=source,fstype /tmp /var/tmp | tail -n +2 | tr -s ' ' | paste -sd ';')"
	echo "compiler: $(grep CMAKE_C_COMPILER: build-rel/CMakeCache.txt | cut -d= -f2) $("$(grep CMAKE_C_COMPILER: build-rel/CMakeCache.txt | cut -d= -f2)" -dumpfullversion 2>/dev/null)"
	echo "LMDB: $(dpkg-query -W -f '${Version}' liblmdb-dev 2>/dev/null || echo '?'), protobuf-c: $(dpkg-query -W -f '${Version}' libprotobuf-c-dev 2>/dev/null || echo '?')"
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
}
machine >"$out/machine.txt"

failed=()
run() { # NAME CMD...: CMD's stdout and stderr to $out/NAME.txt
	local name=$1 rc=0
	shift
	echo "== $name: $* (-> $out/$name.txt)"
	echo "\$ $*" >"$out/$name.txt"
	"$@" >>"$out/$name.txt" 2>&1 || rc=$?
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/$name.txt"
	if ((rc)); then
		echo "   FAILED (exit $rc)"
		failed+=("$name")
	fi
}
if [[ $quick == -q ]]; then
	run store_bench build-rel/bench/store_bench -q
	run broker_bench build-rel/bench/broker_bench -q
	run launcher_bench build-rel/bench/launcher_bench -n 2000 -c 8 -w 10
	run bench_cli bash scripts/bench_cli.sh -q build-rel
else
	run store_bench build-rel/bench/store_bench
	run broker_bench build-rel/bench/broker_bench
	run launcher_bench build-rel/bench/launcher_bench -n 10000 -c 8
	run bench_cli bash scripts/bench_cli.sh build-rel
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "bench.sh: raw outputs in $out"
if ((${#failed[@]})); then
	echo "bench.sh: failed: ${failed[*]}" >&2
	exit 1
fi
