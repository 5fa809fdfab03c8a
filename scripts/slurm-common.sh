# Shared by scripts/slurm.sh (one node) and scripts/slurm-multi.sh (nodes in
# network namespaces): finding, stopping and cleaning up the daemons and job
# steps of one private Slurm instance under a directory. Sourced, not run.
# The sourcing script sets ME (its name, for messages), BINARIES (what it
# needs), ROOT_WHY (why it needs root) and STOP_TIMEOUT, and defines cmd_stop.

die() {
	echo "$ME: error: $*" >&2
	exit 1
}

# cmd_check: exit 0 if this machine can run the instance, else say why and
# exit 77 (tests map 77 to "skipped").
cmd_check() {
	if ((EUID != 0)); then
		echo "$ME: skip: needs root ($ROOT_WHY)" >&2
		exit 77
	fi
	local b missing=()
	for b in "${BINARIES[@]}"; do
		# munged, slurmctld, slurmd and ip live in /usr/sbin, which a
		# non-login root shell may not have in PATH; main() adds it.
		command -v "$b" >/dev/null 2>&1 || missing+=("$b")
	done
	if ((${#missing[@]})); then
		echo "$ME: skip: missing ${missing[*]} (bash scripts/deps.sh installs them)" >&2
		exit 77
	fi
	exit 0
}

# pid_alive FILE: the pid saved in FILE is a running process. Not a zombie:
# our daemons are orphans (their parent subshell exits at once), reaped by
# init or a subreaper whenever it gets round to it; kill -0 succeeds on a
# zombie.
pid_alive() {
	local pid stat
	[[ -s "$1" ]] || return 1
	pid=$(<"$1")
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	# Field 3 (state), after the parenthesised command name.
	stat=${stat##*) }
	[[ "${stat%% *}" != Z ]]
}

# our_pid NAME DIR: the pid saved in DIR/pids/NAME, if that process still
# runs the daemon NAME names (munged, slurmctld, slurmd, slurmd.cnI):
# guards against the pid having been reused since.
our_pid() {
	local pid want=${1%%.*}
	pid_alive "$2/pids/$1" || return 1
	pid=$(<"$2/pids/$1")
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$want" ]] || return 1
	echo "$pid"
}

# start_failed DIR MESSAGE: show the daemons' logs, stop what was started
# (the caller's stop then finds nothing to do), fail.
start_failed() {
	show_logs "$1"
	cmd_stop "$1" || true
	die "$2"
}

# stop_daemons DIR NAME...: TERM them all at once (they exit within about
# 0.3 s), wait up to STOP_TIMEOUT, KILL.
stop_daemons() {
	local dir=$1 name pid i
	shift
	local -A pids=()
	for name in "$@"; do
		if pid=$(our_pid "$name" "$dir"); then
			pids[$name]=$pid
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		for name in "${!pids[@]}"; do
			pid_alive "$dir/pids/$name" || unset "pids[$name]"
		done
		((${#pids[@]})) || return 0
		sleep 0.1
	done
	for name in "${!pids[@]}"; do
		echo "$ME: $name (${pids[$name]}) ignored TERM for ${STOP_TIMEOUT} s; killing it" >&2
		kill -KILL "${pids[$name]}" 2>/dev/null || true
	done
}

# our_step_sessions DIR: session ids of this instance's job steps. slurmd
# starts each slurmstepd in a new session (setsid, then a second fork)
# which holds the job's processes too (unless one calls setsid itself);
# slurmd passes on its environment, which holds our SLURM_CONF. Never the
# session this script (and so its caller) is in.
our_step_sessions() {
	local dir=$1 p sid mine
	mine=$(ps -o sid= -p $$ | tr -d ' ')
	for p in $(pgrep -x slurmstepd 2>/dev/null || true); do
		# (Braces: the redirection's error, when $p has just exited,
		# is bash's.)
		{ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$dir/slurm.conf" || continue
		sid=$(ps -o sid= -p "$p" 2>/dev/null | tr -d ' ') || continue
		[[ "$sid" =~ ^[0-9]+$ ]] && ((sid > 1)) && [[ "$sid" != "$mine" ]] && echo "$sid"
	done | sort -u
}
