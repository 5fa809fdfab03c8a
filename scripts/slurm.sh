#!/usr/bin/env bash
# A private single-node Slurm (22.05, Debian 12) for tests: munged, slurmctld
# and slurmd, all with their config, key, sockets, state and logs under a
# directory the caller owns.
#
#   scripts/slurm.sh check       exit 0 if this machine can run it, else say
#                                why and exit 77 (tests map 77 to "skipped")
#   scripts/slurm.sh start DIR   create DIR, start the daemons, wait (bounded)
#                                until the node is idle; last stdout line is
#                                `export SLURM_CONF=DIR/slurm.conf` to eval
#   scripts/slurm.sh stop DIR    cancel every job, stop the daemons (TERM,
#                                bounded wait, KILL); DIR is left for the
#                                caller to delete. Safe to call twice and
#                                after a start that failed halfway.
#
# Typical use from a test:
#   bash scripts/slurm.sh check || exit $?
#   dir=$(mktemp -d); trap 'bash scripts/slurm.sh stop "$dir"; rm -rf "$dir"' EXIT
#   eval "$(bash scripts/slurm.sh start "$dir")"
#   sbatch --parsable -t 1 --wrap '...'
#
# Fixed ports 6917 (slurmctld) and 6918 (slurmd): one above the defaults
# (6817/6818) so a system Slurm on the same machine is never contacted or
# clashed with. Two instances of this script must therefore not run at the
# same time (the second start fails: port in use); tests run one at a time.
#
# Needs root: SlurmUser=root and slurmd must run jobs as their submitter; and
# `ip addr add` (see ensure_loopback).
set -euo pipefail

CTLD_PORT=6917
SLURMD_PORT=6918
START_TIMEOUT=${SLURM_START_TIMEOUT:-60} # s until the node must be idle
STOP_TIMEOUT=${SLURM_STOP_TIMEOUT:-20}   # s for the jobs, then the daemons
# The node's address. 127.0.0.2 rather than 127.0.0.1: see ensure_loopback.
NODE_ADDR=127.0.0.2

BINARIES=(munged slurmctld slurmd sbatch squeue scancel sinfo ip ss)
ME=slurm.sh
ROOT_WHY="SlurmUser=root, ip addr add"
# die, cmd_check, pid_alive, our_pid, start_failed, stop_daemons,
# our_step_sessions
# shellcheck source=scripts/slurm-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-common.sh"

usage() {
  echo "usage: slurm.sh check | start DIR | stop DIR" >&2
  exit 2
}

# glibc's getaddrinfo with AI_ADDRCONFIG (which Slurm uses) returns no IPv4
# address at all unless some IPv4 address other than exactly 127.0.0.1 is
# configured; in a network namespace with only `lo` every lookup fails.
# Any second loopback address fixes it, and the node uses that one. Left in
# place by stop: harmless, and another instance may rely on it.
ensure_loopback() {
  if ! ip -4 -o addr show dev lo | grep -q " $NODE_ADDR/"; then
    ip link set lo up 2>/dev/null || true
    # "File exists" when a concurrent caller just added it: fine.
    if ! ip addr add "$NODE_ADDR/8" dev lo 2>/dev/null &&
       ! ip -4 -o addr show dev lo | grep -q " $NODE_ADDR/"; then
      # Not allowed to (no CAP_NET_ADMIN)? Where the machine has another
      # IPv4 address, lookups work and 127.0.0.1 serves as well.
      if ip -4 -o addr show | awk '{print $4}' | grep -qv '^127\.'; then
        NODE_ADDR=127.0.0.1
      else
        die "cannot add $NODE_ADDR/8 to lo, and this machine has no other IPv4 address"
      fi
    fi
  fi
}

# show_logs DIR: the end of each daemon's log, on stderr. slurmctld and
# slurmd write the same lines to their log file and (with -D) to stderr,
# which is kept in NAME.out for what comes before logging is set up.
show_logs() {
  local dir=$1 name f
  for name in munged slurmctld slurmd; do
    f=$dir/log/$name.log
    [[ -s "$f" ]] || f=$dir/log/$name.out
    [[ -f "$f" ]] || continue
    echo "---- $f (tail) ----" >&2
    tail -n 25 "$f" >&2
  done
}

cmd_start() {
  local dir=$1
  [[ -n "$dir" ]] || usage
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  local node
  node=$(hostname -s)
  [[ -n "$node" ]] || die "hostname -s is empty"
  # Unix sockets under DIR, whose path must fit sun_path (107 bytes):
  # munged's, and slurmd's spool/NODE_JOBID.STEPID per job step.
  ((${#dir} + ${#node} + 32 <= 107)) || die "DIR too long for unix socket paths: $dir"
  if our_pid slurmctld "$dir" >/dev/null || our_pid slurmd "$dir" >/dev/null ||
     our_pid munged "$dir" >/dev/null; then
    die "daemons already running in $dir (stop it first)"
  fi
  rm -rf "$dir/munge" "$dir/ctld" "$dir/spool" "$dir/log" "$dir/pids"
  mkdir -m 700 "$dir/munge" "$dir/ctld" "$dir/spool" "$dir/log" "$dir/pids"
  # munged refuses a socket, key or log directory writable by group/other,
  # and a socket directory (with its parents) not searchable by all.
  chmod 711 "$dir" "$dir/munge"

  ensure_loopback
  # A clear message now rather than slurmctld's or slurmd's fatal bind error
  # (another instance running, or a system Slurm on these ports).
  local port
  for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if [[ -n "$(ss -Hltn "sport = :$port")" ]]; then
      die "TCP port $port is in use (another slurm.sh instance still running?)"
    fi
  done

  # Sockets, boards, cores, threads and memory as slurmd itself detects them:
  # a node configured with more than slurmd finds is drained ("Low socket*core
  # count", "Low RealMemory").
  local hw
  hw=$(slurmd -C | sed -n 's/^NodeName=[^ ]* //p')
  [[ -n "$hw" ]] || die "slurmd -C printed no NodeName line"

  # A fresh key each start: dd from urandom is what mungekey does; no
  # dependency on /etc/munge/munge.key or the munge user.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  # Empty: keeps /etc/slurm/plugstack.conf (SPANK plugins) out.
  : >"$dir/plugstack.conf"

  cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm.sh start; private single-node test cluster.
ClusterName=copal
SlurmctldHost=$node($NODE_ADDR)
# Not the defaults 6817/6818: never reach or clash with a system Slurm.
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
# munge with our own munged: both plugins find its socket through AuthInfo.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/pids/slurmctld.own
SlurmdPidFile=$dir/pids/slurmd.own
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
# No cgroups: linuxproc tracks a job's processes by parent pid, task/none
# binds nothing. Works in containers/VMs without a delegated cgroup tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# One CPU is the unit: two 1-CPU jobs run side by side on the 2-CPU node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Reject at submission a job the partition can never run (-N 2, -c 3,
# --mem too large) instead of leaving it PENDING forever
# (PartitionNodeLimit, PartitionConfig).
EnforcePartLimits=ALL
# slurmctld starts batch jobs only from its 1 s background loop, and by
# default only every batch_sched_delay=3 s: sbatch to RUNNING took 3 s and
# 10 jobs 12 s. With 0 (every pass), 1 s and 5-6 s (2 CPUs, 2 jobs a pass).
# sched/builtin measured the same as sched/backfill.
SchedulerParameters=batch_sched_delay=0
# No slurmdbd, no job accounting or completion log.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
# A node that was down comes back as soon as slurmd registers again.
ReturnToService=2
# Finished jobs stay in \`squeue -t all\` (COMPLETED, FAILED, CANCELLED,
# TIMEOUT; plain squeue drops them at once) for at least this many seconds,
# so a watcher polling it sees the end state. slurmctld purges every 60 s,
# so a finished job is listed for 30 to 90 s (measured: 58 s).
MinJobAge=30
# Seconds between SIGTERM and SIGKILL on scancel or time limit (measured:
# the batch script's TERM trap runs at once, SIGKILL 4.5-5 s later).
KillWait=5
# A job is ended at its time limit (checked every 30 s: -t 1 ends after
# 60-90 s), not minutes later.
OverTimeLimit=0
NodeName=$node NodeAddr=$NODE_ADDR $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

  export SLURM_CONF="$dir/slurm.conf"
  # The daemons run in the foreground (-D, -F) as children of a subshell
  # that exits at once, so this script can exit while they keep running.
  # Their stdin/stdout/stderr must not be the caller's: `eval "$(slurm.sh
  # start)"` and ctest wait for EOF on the pipe, which would never come.
  # (munged -F logs to stderr only: log/munged.out.) Their pids are saved by
  # us (pids/*): the daemons' own pid files are only written after they
  # initialise, too late for a failed start. They stay in the caller's
  # process group, so `timeout` or a killed test group takes them too.
  (
    munged -F --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
      </dev/null >>"$dir/log/munged.out" 2>&1 &
    echo $! >"$dir/pids/munged"
  )
  # Wait for munged's socket before slurmctld needs it.
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S "$dir/munge/munge.socket" ]] && break
    pid_alive "$dir/pids/munged" || start_failed "$dir" "munged exited"
    sleep 0.1
  done
  [[ -S "$dir/munge/munge.socket" ]] || start_failed "$dir" "munged did not create its socket in 10 s"

  # -c: ignore any saved state (a fresh cluster each time); -i: do not stop
  # on unreadable state files.
  (
    slurmctld -D -c -i </dev/null >>"$dir/log/slurmctld.out" 2>&1 &
    echo $! >"$dir/pids/slurmctld"
  )
  # -N: this node's name, whatever gethostname() says later.
  (
    slurmd -D -N "$node" </dev/null >>"$dir/log/slurmd.out" 2>&1 &
    echo $! >"$dir/pids/slurmd"
  )

  local state="" p t0=$SECONDS
  while ((SECONDS - t0 < START_TIMEOUT)); do
    for p in munged slurmctld slurmd; do
      pid_alive "$dir/pids/$p" || start_failed "$dir" "$p exited during start"
    done
    # timeout: sinfo waits MessageTimeout (10 s) on a controller that
    # accepts but does not answer.
    state=$(timeout 5 sinfo -h -o %T 2>/dev/null || true)
    [[ "$state" == idle ]] && break
    sleep 0.2
  done
  [[ "$state" == idle ]] ||
    start_failed "$dir" "node not idle after ${START_TIMEOUT} s (sinfo state: '${state:-none}')"
  # slurmctld's first scheduling pass comes 3 s after it starts (the node is
  # idle after 0.4-1.2 s); no job starts before it. Waiting for it here
  # (it logs its SchedulerParameters then) gives every job, the first one
  # included, the same ~1 s from sbatch to RUNNING. A hint only: go on
  # without it after 10 s.
  for ((i = 0; i < 100; i++)); do
    grep -q 'SchedulerParameters=' "$dir/log/slurmctld.log" 2>/dev/null && break
    sleep 0.1
  done
  echo "export SLURM_CONF=$dir/slurm.conf"
}

cmd_stop() {
  local dir=$1
  [[ -n "$dir" ]] || usage
  [[ -d "$dir" ]] || return 0
  dir=$(cd "$dir" && pwd -P)
  export SLURM_CONF="$dir/slurm.conf"
  if our_pid slurmctld "$dir" >/dev/null && our_pid munged "$dir" >/dev/null &&
     [[ -f "$SLURM_CONF" ]]; then
    # Cancel every job, any user: slurmd does not end running jobs when it
    # stops. Cancelled jobs get SIGTERM, then SIGKILL KillWait (5 s) later.
    local ids deadline=$((SECONDS + STOP_TIMEOUT))
    ids=$(timeout 10 squeue -h -t PD,R,CG,S,CF,RQ,RH,RS,SE -o %i 2>/dev/null || true)
    # shellcheck disable=SC2086 # one word per job id
    [[ -z "$ids" ]] || timeout 10 scancel $ids 2>/dev/null || true
    # Wait for them to end (COMPLETING included: their processes may still
    # run). Finished jobs stay listed for MinJobAge; not shown by -t here.
    while ((SECONDS < deadline)); do
      ids=$(timeout 5 squeue -h -t PD,R,CG,S,CF -o %i 2>/dev/null || echo unknown)
      [[ -z "$ids" ]] && break
      sleep 0.2
    done
  fi
  # munged too: slurmd and slurmctld need no credential to shut down.
  stop_daemons "$dir" slurmd slurmctld munged
  # A job step still running (slurmctld was dead or hung, or a job ignored
  # the kill): kill its whole session, slurmstepd included.
  local sid
  for sid in $(our_step_sessions "$dir"); do
    echo "slurm.sh: killing leftover job step session $sid" >&2
    pkill -KILL -s "$sid" 2>/dev/null || true
  done
  return 0
}

main() {
  # The daemons and ip are in /usr/sbin, not always in a root PATH (su, sudo
  # without secure_path, cron).
  case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
  export PATH
  local cmd=${1:-}
  case "$cmd" in
    check) cmd_check ;;
    start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    *) usage ;;
  esac
}

main "$@"
