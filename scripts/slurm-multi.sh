#!/usr/bin/env bash
# A private multi-node Slurm (22.05, Debian 12) on one machine, for tests:
# each compute node is a network namespace of its own (own address, own
# hostname, own mount namespace), the controller another one; they are
# joined by veth pairs to a bridge in the controller's namespace. Only
# private addresses (10.77.0.0/24) inside namespaces this script creates
# are used: nothing is sent on the machine's own interfaces.
#
#   scripts/slurm-multi.sh check
#       exit 0 if this machine can run it, else say why and exit 77
#   scripts/slurm-multi.sh start DIR [--nodes N] [--hide PATH]...
#       create DIR, the namespaces and the daemons (one munged, slurmctld
#       in the controller namespace, one slurmd per node namespace); wait
#       (bounded) until every node is idle. --hide PATH covers the
#       directory PATH with an empty tmpfs in every node's mount namespace
#       (e.g. a copal database's sock/: on a real cluster a Unix socket on
#       a shared filesystem does not connect across hosts). Nodes are
#       cn1..cnN (N: 3) at 10.77.0.11.., the controller 10.77.0.1. Last
#       stdout line: `export SLURM_CONF=DIR/slurm.conf` to eval.
#   scripts/slurm-multi.sh ctl DIR CMD [ARG]...
#       run CMD in the controller's network namespace (sbatch, squeue, the
#       broker: whatever must reach slurmctld or be reached by the nodes)
#   scripts/slurm-multi.sh node DIR I CMD [ARG]...
#       run CMD on node cnI: its network, hostname and mounts (as slurmd
#       and its jobs see them)
#   scripts/slurm-multi.sh stop DIR
#       cancel every job, stop the daemons (TERM, bounded wait, KILL), kill
#       leftover job steps, delete the namespaces (their veths, bridge and
#       tmpfs go with them). DIR is left for the caller to delete. Safe to
#       call twice and after a start that failed halfway.
#
# Why this shape (see DESIGN.md, "Scheduler integration"): slurmd takes its
# node name from the hostname, so each runs under `unshare --uts` with the
# node's name; `ip netns exec` does not do for slurmd (it remounts /sys,
# slurmd then finds no /sys/fs/cgroup and exits): nsenter --net is used.
# One slurm.conf serves all (%n in the slurmd paths); one munged serves all
# (its socket is a file every namespace sees).
#
# Ports 6917/6918 as scripts/slurm.sh, but inside our namespaces: this
# cluster and a single-node one do not clash on ports; tests still run one
# Slurm at a time (ctest RESOURCE_LOCK slurm) to spare the 2 CPUs.
# Needs root (namespaces, SlurmUser=root).
set -euo pipefail

CTLD_PORT=6917
SLURMD_PORT=6918
START_TIMEOUT=${SLURM_START_TIMEOUT:-60}
STOP_TIMEOUT=${SLURM_STOP_TIMEOUT:-20}
NET=10.77.0
CTL_ADDR=$NET.1

BINARIES=(munged slurmctld slurmd sbatch squeue scancel sinfo srun ip nsenter unshare mount)
ME=slurm-multi.sh
ROOT_WHY="network namespaces, SlurmUser=root"
# die, cmd_check, pid_alive, our_pid, start_failed, stop_daemons,
# our_step_sessions
# shellcheck source=scripts/slurm-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-common.sh"

usage() {
	echo "usage: slurm-multi.sh check | start DIR [--nodes N] [--hide PATH]... |" \
	    "ctl DIR CMD... | node DIR I CMD... | stop DIR" >&2
	exit 2
}

# The state of a cluster: DIR/cluster holds PREFIX (of the namespace names)
# and NODES.
load() {
	local dir=$1
	[[ -f "$dir/cluster" ]] || return 1
	# shellcheck disable=SC1091
	source "$dir/cluster"
	CTL_NS=${PREFIX}c
}

ctl_run() { # DIR CMD...
	local dir=$1
	shift
	load "$dir" || die "no cluster in $dir"
	SLURM_CONF=$dir/slurm.conf nsenter --net="/run/netns/$CTL_NS" "$@"
}

node_run() { # DIR I CMD...: in the namespaces of node I's slurmd
	local dir=$1 i=$2 pid
	shift 2
	load "$dir" || die "no cluster in $dir"
	pid=$(our_pid "slurmd.cn$i" "$dir") || die "slurmd of cn$i is not running"
	SLURM_CONF=$dir/slurm.conf nsenter -t "$pid" --net --uts --mount "$@"
}

show_logs() {
	local dir=$1 f
	for f in "$dir"/log/*; do
		[[ -s "$f" ]] || continue
		echo "---- $f (tail) ----" >&2
		tail -n 15 "$f" >&2
	done
}

cmd_start() {
	local dir=$1
	shift
	local nodes=3 hides=() h
	while (($#)); do
		case $1 in
		--nodes) nodes=$2; shift 2 ;;
		--hide) h=$(cd "$2" && pwd -P) || die "--hide $2: no such directory"
			hides+=("$h"); shift 2 ;;
		*) usage ;;
		esac
	done
	[[ $nodes =~ ^[1-9]$ ]] || die "--nodes 1..9"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	((${#dir} + 40 <= 107)) || die "DIR too long for unix socket paths: $dir"
	if [[ -f "$dir/cluster" ]]; then
		die "a cluster is already set up in $dir (stop it first)"
	fi
	rm -rf "$dir/munge" "$dir/ctld" "$dir/spool" "$dir/log" "$dir/pids"
	mkdir -m 700 "$dir/munge" "$dir/ctld" "$dir/spool" "$dir/log" "$dir/pids"
	chmod 711 "$dir" "$dir/munge"

	# Namespace names are global: unique per cluster (veth names are
	# per namespace, so those can be fixed).
	local prefix i ns
	prefix=cplm$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	printf 'PREFIX=%s\nNODES=%s\n' "$prefix" "$nodes" >"$dir/cluster"
	load "$dir"
	ip netns add "$CTL_NS" || start_failed "$dir" "ip netns add $CTL_NS"
	ip -n "$CTL_NS" link set lo up
	ip -n "$CTL_NS" link add br0 type bridge
	ip -n "$CTL_NS" addr add "$CTL_ADDR/24" dev br0
	ip -n "$CTL_NS" link set br0 up
	for ((i = 1; i <= nodes; i++)); do
		ns=${prefix}n$i
		ip netns add "$ns" || start_failed "$dir" "ip netns add $ns"
		ip -n "$ns" link set lo up
		# made in the controller's namespace, one end moved to the node's:
		# no interface ever appears in the machine's own namespace
		ip -n "$CTL_NS" link add "n$i" type veth peer name eth0 netns "$ns"
		ip -n "$CTL_NS" link set "n$i" master br0 up
		ip -n "$ns" addr add "$NET.$((10 + i))/24" dev eth0
		ip -n "$ns" link set eth0 up
		mkdir -p "$dir/spool/cn$i"
	done

	local hw host
	hw=$(slurmd -C | sed -n 's/^NodeName=[^ ]* //p')
	[[ -n "$hw" ]] || start_failed "$dir" "slurmd -C printed no NodeName line"
	host=$(hostname -s)
	dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
	chmod 400 "$dir/munge/munge.key"
	: >"$dir/plugstack.conf"
	{
		cat <<EOF
# Written by scripts/slurm-multi.sh start; private $nodes-node test cluster.
ClusterName=copalm
SlurmctldHost=$host($CTL_ADDR)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/ctld
# One file for every slurmd: %n is the node's name.
SlurmdSpoolDir=$dir/spool/%n
SlurmdPidFile=$dir/pids/slurmd-%n.own
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldPidFile=$dir/pids/slurmctld.own
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
EnforcePartLimits=ALL
SchedulerParameters=batch_sched_delay=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=30
KillWait=5
OverTimeLimit=0
EOF
		for ((i = 1; i <= nodes; i++)); do
			echo "NodeName=cn$i NodeAddr=$NET.$((10 + i)) $hw State=UNKNOWN"
		done
		echo "PartitionName=debug Nodes=cn[1-$nodes] Default=YES MaxTime=INFINITE State=UP"
	} >"$dir/slurm.conf"
	export SLURM_CONF=$dir/slurm.conf

	(
		munged -F --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
		    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
		    </dev/null >>"$dir/log/munged.out" 2>&1 &
		echo $! >"$dir/pids/munged"
	)
	for ((i = 0; i < 100; i++)); do
		[[ -S "$dir/munge/munge.socket" ]] && break
		pid_alive "$dir/pids/munged" || start_failed "$dir" "munged exited"
		sleep 0.1
	done
	[[ -S "$dir/munge/munge.socket" ]] || start_failed "$dir" "munged did not create its socket in 10 s"
	(
		nsenter --net="/run/netns/$CTL_NS" slurmctld -D -c -i \
		    </dev/null >>"$dir/log/slurmctld.out" 2>&1 &
		echo $! >"$dir/pids/slurmctld"
	)
	# Each slurmd: the node's network namespace (nsenter execs, no fork),
	# a UTS namespace with the node's hostname and a private mount
	# namespace with the hidden directories covered (unshare and bash
	# exec too): the saved pid is slurmd's.
	local hidelist
	hidelist=$(printf '%s\n' "${hides[@]+"${hides[@]}"}")
	for ((i = 1; i <= nodes; i++)); do
		(
			HIDE=$hidelist NODE=cn$i nsenter --net="/run/netns/${prefix}n$i" \
			    unshare --uts --mount --propagation private bash -c '
				set -e
				hostname "$NODE"
				while IFS= read -r h; do
					[ -n "$h" ] || continue
					mount -t tmpfs -o size=64k,mode=0700 copal-hidden "$h"
				done <<<"$HIDE"
				exec slurmd -D -N "$NODE"' \
			    </dev/null >>"$dir/log/slurmd-cn$i.out" 2>&1 &
			echo $! >"$dir/pids/slurmd.cn$i"
		)
	done

	local idle=0 p t0=$SECONDS states=""
	while ((SECONDS - t0 < START_TIMEOUT)); do
		for p in munged slurmctld; do
			pid_alive "$dir/pids/$p" || start_failed "$dir" "$p exited during start"
		done
		for ((i = 1; i <= nodes; i++)); do
			pid_alive "$dir/pids/slurmd.cn$i" ||
			    start_failed "$dir" "slurmd of cn$i exited during start"
		done
		states=$(timeout 5 nsenter --net="/run/netns/$CTL_NS" sinfo -h -N -o '%N %T' 2>/dev/null || true)
		idle=$(grep -c ' idle$' <<<"$states" || true)
		((idle == nodes)) && break
		sleep 0.3
	done
	((idle == nodes)) ||
	    start_failed "$dir" "not all $nodes nodes idle after ${START_TIMEOUT} s: ${states:-no answer}"
	# slurmctld's first scheduling pass (see slurm.sh)
	for ((i = 0; i < 100; i++)); do
		grep -q 'SchedulerParameters=' "$dir/log/slurmctld.log" 2>/dev/null && break
		sleep 0.1
	done
	echo "export SLURM_CONF=$dir/slurm.conf"
}

cmd_stop() {
	local dir=$1 i
	[[ -d "$dir" ]] || return 0
	dir=$(cd "$dir" && pwd -P)
	load "$dir" || return 0
	export SLURM_CONF="$dir/slurm.conf"
	if our_pid slurmctld "$dir" >/dev/null && our_pid munged "$dir" >/dev/null; then
		local ids deadline=$((SECONDS + STOP_TIMEOUT))
		ids=$(timeout 10 nsenter --net="/run/netns/$CTL_NS" squeue -h -t PD,R,CG,S,CF,RQ,RH,RS,SE -o %i 2>/dev/null || true)
		# shellcheck disable=SC2086 # one word per job id
		[[ -z "$ids" ]] || timeout 10 nsenter --net="/run/netns/$CTL_NS" scancel $ids 2>/dev/null || true
		while ((SECONDS < deadline)); do
			ids=$(timeout 5 nsenter --net="/run/netns/$CTL_NS" squeue -h -t PD,R,CG,S,CF -o %i 2>/dev/null || echo unknown)
			[[ -z "$ids" ]] && break
			sleep 0.2
		done
	fi
	local names=(slurmctld munged)
	for ((i = 1; i <= NODES; i++)); do
		names=("slurmd.cn$i" "${names[@]}")
	done
	stop_daemons "$dir" "${names[@]}"
	local sid
	for sid in $(our_step_sessions "$dir"); do
		echo "slurm-multi.sh: killing leftover job step session $sid" >&2
		pkill -KILL -s "$sid" 2>/dev/null || true
	done
	# The namespaces: their interfaces go with them; each node's mount
	# namespace (and its tmpfs) went with the last process in it.
	ip netns del "$CTL_NS" 2>/dev/null || true
	for ((i = 1; i <= NODES; i++)); do
		ip netns del "${PREFIX}n$i" 2>/dev/null || true
	done
	rm -f "$dir/cluster"
	return 0
}

main() {
	case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
	export PATH
	local cmd=${1:-}
	case "$cmd" in
	check) cmd_check ;;
	start) [[ $# -ge 2 ]] || usage; shift; cmd_start "$@" ;;
	ctl) [[ $# -ge 3 ]] || usage; shift; ctl_run "$@" ;;
	node) [[ $# -ge 4 ]] || usage; shift; node_run "$@" ;;
	stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
	*) usage ;;
	esac
}

main "$@"
