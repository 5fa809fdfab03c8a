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

ms_each() { # CMD...: average wall time of N runs, in ms
	local s e
	s=$(date +%s%N)
	for _ in $(seq $N); do "$@" >/dev/null 2>&1; done
	e=$(date +%s%N)
	echo $(((e - s) / N / 1000)) # microseconds
}
fmt() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }

raw_sb=$(ms_each sbatch --parsable -H -N1 -t 1 -o /dev/null --wrap true)
ours_sb=$(ms_each "$COPAL" submit-launch -A bench -q debug -n 1 -t 1 --sched-flags -H)
raw_sq=$(ms_each squeue -h -a -t all -o '%i|%T')
ours_sq=$(ms_each "$COPAL" ls queues)
jobs=$("$COPAL" ls queues --format json | jq length)
printf '%-52s %10s\n' "raw sbatch --parsable (held job; reference)" "$(fmt "$raw_sb")"
printf '%-52s %10s  %s of raw\n' "copal submit-launch (record, render, sbatch, update)" "$(fmt "$ours_sb")" "$(ratio "$ours_sb" "$raw_sb")"
printf '%-52s %10s\n' "raw squeue (reference)" "$(fmt "$raw_sq")"
printf '%-52s %10s  %s of raw  (%s jobs)\n' "copal ls queues (squeue sync + list)" "$(fmt "$ours_sq")" "$(ratio "$ours_sq" "$raw_sq")" "$jobs"
