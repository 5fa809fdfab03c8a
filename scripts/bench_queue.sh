#!/usr/bin/env bash
# Cost of copal's batch-job verbs against a real single-node Slurm, next to
# the physical reference measured in the same run: the raw scheduler
# commands. Needs root (scripts/slurm.sh starts munge and Slurm).
#
#   sudo bash scripts/bench_queue.sh [BUILD_DIR]     (default build-rel)
#
# Figures: raw `sbatch --parsable -H` vs `copal submit-launch` (held jobs,
# so nothing runs), raw `squeue` vs `copal ls queues` (which syncs every
# job's state from squeue first); averages of N=20 runs each.
#
# Exits non-zero if any timed command fails even once (a failing
# submit-launch must not be timed as a fast one), or if Slurm does not end
# up holding every job submitted and copal does not list each of its own.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT=$PWD
BUILD=$(readlink -f "${1:-build-rel}")
COPAL=$BUILD/cli/copal
[[ -x $COPAL ]] || { echo "bench_queue.sh: build first ($COPAL missing)" >&2; exit 1; }
bash scripts/slurm.sh check
N=20
T=$(mktemp -d /tmp/copal-bq.XXXXXX)
chmod 711 "$T" # munged wants every directory to its socket searchable
export HOME=$T COPAL_DB=$T/db COPAL_BROKER_BIN=$BUILD/broker/copal-broker
cleanup() {
	scancel -u "$(id -un)" 2>/dev/null || true
	"$COPAL" server stop >/dev/null 2>&1 || true
	bash "$ROOT/scripts/slurm.sh" stop "$T/slurm" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
eval "$(bash scripts/slurm.sh start "$T/slurm" | tail -n 1)"
"$COPAL" init "$T/db" >/dev/null
sed -i 's/^scheduler = local/scheduler = slurm/' "$T/db/copal.conf"
"$COPAL" server start >/dev/null

ms_each() { # CMD...: average wall time of N runs, in us; fails if one does
	local s e i
	s=$(date +%s%N)
	for ((i = 1; i <= N; i++)); do
		if ! "$@" >/dev/null 2>"$T/err"; then
			echo "bench_queue.sh: run $i of $N failed: $*" >&2
			cat "$T/err" >&2
			return 1
		fi
	done
	e=$(date +%s%N)
	echo $(((e - s) / N / 1000))
}
fmt() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }

raw_sb=$(ms_each sbatch --parsable -H -N1 -t 1 -o /dev/null --wrap true) || exit 1
ours_sb=$(ms_each "$COPAL" submit-launch -A bench -q debug -n 1 -t 1 --sched-flags -H) || exit 1
raw_sq=$(ms_each squeue -h -a -t all -o '%i|%T') || exit 1
ours_sq=$(ms_each "$COPAL" ls queues) || exit 1
jobs=$("$COPAL" ls queues --format json | jq length)
held=$(squeue -h -a -t PENDING -o '%i' | wc -l)
if [[ $jobs != "$N" || $held != $((2 * N)) ]]; then
	echo "bench_queue.sh: copal lists $jobs jobs (expected $N), Slurm holds $held (expected $((2 * N)))" >&2
	exit 1
fi
printf '%-52s %10s\n' "raw sbatch --parsable (held job; reference)" "$(fmt "$raw_sb")"
printf '%-52s %10s  %s of raw\n' "copal submit-launch (record, render, sbatch, update)" "$(fmt "$ours_sb")" "$(ratio "$ours_sb" "$raw_sb")"
printf '%-52s %10s\n' "raw squeue (reference)" "$(fmt "$raw_sq")"
printf '%-52s %10s  %s of raw  (%s jobs)\n' "copal ls queues (squeue sync + list)" "$(fmt "$ours_sq")" "$(ratio "$ours_sq" "$raw_sq")" "$jobs"
