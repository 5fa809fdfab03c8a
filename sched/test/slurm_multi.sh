#!/usr/bin/env bash
# Against a real 3-node Slurm (scripts/slurm-multi.sh: slurmctld and the
# broker in a controller network namespace, one slurmd per node namespace
# with its own hostname cnI and address), with the database's socket
# directory hidden from the nodes as on a real cluster (a Unix socket on a
# shared filesystem does not connect across hosts):
#   - a launcher that cannot reach the broker says at once which address
#     it tried and why (the Unix socket of the database on another host);
#   - submit-launch refuses a multi-node job while the broker has no
#     network listener;
#   - with broker_tcp (a wildcard bind), submit-launch -n 3 --job-mode
#     serial fans out one launcher per node, each reaches the broker over
#     tls+tcp at the address the job script hands it, every task runs and
#     the history shows all three hosts;
#   - a node's launcher killed with SIGKILL: its tasks are run again on the
#     other nodes once its lease expires.
# Exit 77 (skipped) only when not root; as root anything else fails.
HERE=$(cd "$(dirname "$0")" && pwd)
MULTI_SH=$HERE/../../scripts/slurm-multi.sh
if ((EUID != 0)); then
	echo "SKIP: slurm_multi: needs root (network namespaces, SlurmUser=root)"
	exit 77
fi
if ! why=$(bash "$MULTI_SH" check 2>&1); then
	echo "slurm_multi: FAIL: cannot run Slurm here as root: $why" >&2
	exit 1
fi
source "$HERE/../../launcher/test/lib.sh"

SDIR=$T/slurm
chmod 711 "$T" # munged: every directory down to its socket searchable
HOST=$(hostname)
PORT=7555

cluster_stop() { bash "$MULTI_SH" stop "$SDIR" >/dev/null 2>&1 || true; }
# Slurm (jobs, daemons, namespaces) first, then lib.sh's cleanup (broker,
# leftover processes); keep the exit status.
trap 'rc=$?; cluster_stop; (exit $rc); cleanup' EXIT

# The database before the cluster: its socket directory must exist to be
# hidden in the nodes' mount namespaces.
command copal init "$DB" >/dev/null
mkdir -p -m 700 "$DB/sock"
setconf() {
	if grep -q "^$1 =" "$DB/copal.conf"; then
		sed -i "s|^$1 =.*|$1 = $2|" "$DB/copal.conf"
	else
		echo "$1 = $2" >>"$DB/copal.conf"
	fi
}
setconf scheduler slurm
setconf project chem
# a killed launcher's tasks come back within seconds
setconf lease_ttl_seconds 3

t0=$SECONDS
start_out=$(bash "$MULTI_SH" start "$SDIR" --hide "$DB/sock" 2>&1) ||
    fail "slurm-multi start: $start_out"
eval "$(tail -n 1 <<<"$start_out")"
log "3-node slurm up in $((SECONDS - t0)) s ($SLURM_CONF)"

# Everything that talks to slurmctld or is reached by the nodes runs in
# the controller's network namespace: the copal command (sbatch, squeue)
# and the broker it starts.
inctl() { bash "$MULTI_SH" ctl "$SDIR" "$@"; }
onnode() { bash "$MULTI_SH" node "$SDIR" "$@"; }
copal() { inctl copal --db "$DB" "$@"; }
squeue() { inctl squeue "$@"; }

# the hidden socket directory is empty on a node
assert_eq "" "$(onnode 1 ls -A "$DB/sock")" "sock/ hidden on cn1"
assert_eq cn2 "$(onnode 2 hostname)" "node 2's hostname"

# ------------------------------------------------------------ no TCP
copal server start >/dev/null
BROKER_STARTED=1
[[ -S $DB/sock/broker ]] || fail "no broker socket on the controller"

# a launcher on a node: the Unix socket of a broker on another host
t1=$SECONDS
set +e
out=$(onnode 1 timeout 30 copal-launcher --db "$DB" --job-mode serial 2>&1)
rc=$?
set -e
log "launcher without a network address ended in $((SECONDS - t1)) s (status $rc)"
[[ $rc != 0 && $rc != 124 ]] || fail "launcher on cn1 without TCP: status $rc: $out"
((SECONDS - t1 <= 10)) || fail "launcher took $((SECONDS - t1)) s to give up: $out"
assert_contains "$out" "Unix socket of database $DB on host $HOST while running on host cn1" \
    "launcher's reason"
assert_contains "$out" "set broker_tcp so launchers on other hosts can connect" \
    "launcher's advice"

# a job of several nodes is refused while the broker has no TCP listener
set +e
out=$(copal submit-launch -A chem -q debug -n 3 -t 5 --job-mode serial 2>&1)
rc=$?
set -e
assert_eq 1 "$rc" "submit-launch -n 3 without broker_tcp: $out"
assert_contains "$out" "Submit FAILED: a job of 3 nodes needs the broker's network listener" \
    "the refusal"
assert_contains "$out" "Set broker_tcp" "the refusal names the setting"
assert_eq 0 "$(copal ls queues --format json | jq length)" "no job recorded"

# ------------------------------------------------------------ over TLS
copal server stop >/dev/null
# a wildcard bind: the job script must get a routable address instead
setconf broker_tcp "tls+tcp://0.0.0.0:$PORT"
copal server start >/dev/null
st=$(copal server status)
assert_contains "$st" "tls+tcp://0.0.0.0:$PORT" "server status lists the TCP listener"

add_app nap /bin/sleep
add_app env /usr/bin/printenv
for i in $(seq 1 12); do add_job "t$i" nap --args 4 >/dev/null; done
add_job url env --args COPAL_BROKER_URL >/dev/null

t1=$SECONDS
out=$(copal submit-launch -A chem -q debug -n 3 -t 5 --job-mode serial) ||
    fail "submit-launch: $out"
assert_contains "$out" "Submit OK: qlaunch 1" "submit output"
script=$DB/qsubmit/qlaunch1.sh
assert_contains "$(cat "$script")" "broker_url=tls+tcp://10.77.0.1:$PORT" \
    "the job script hands the launchers the controller's address"

# a launcher on each node runs tasks
running_nodes() {
	copal export --format jsonl |
	    jq -r 'select(.to == "RUNNING") | .node | split("/")[0]' | sort -u | tr '\n' ' '
}
wait_for '[[ $(running_nodes) == "cn1 cn2 cn3 " ]]' 90 \
    "tasks running on cn1, cn2 and cn3 (so far: $(running_nodes))"
log "tasks on all three nodes $((SECONDS - t1)) s after submit"

# SIGKILL the launcher of cn2 while it runs tasks: its tasks come back
lpid=""
for p in $(pgrep -x copal-launcher || true); do
	if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx SLURMD_NODENAME=cn2 &&
	    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "COPAL_DB=$DB"; then
		lpid=$p
	fi
done
[[ -n $lpid ]] || fail "no launcher of cn2 found"
# the tasks whose latest event is RUNNING on cn2
on_cn2() {
	copal export --format jsonl | jq -rs 'group_by(.task) | map(last) |
	    .[] | select(.to == "RUNNING" and (.node | startswith("cn2/"))) | .name'
}
wait_for '[[ -n $(on_cn2) ]]' 60 "a task running on cn2"
kill -KILL "$lpid"
log "killed cn2's launcher (pid $lpid)"

for i in $(seq 1 12); do wait_for_state "t$i" JOB_FINISHED 120; done
wait_for_state url JOB_FINISHED 60
log "all 13 tasks finished $((SECONDS - t1)) s after submit"
assert_eq "tls+tcp://10.77.0.1:$PORT" "$(cat "$(workdir_of url)/url.out")" \
    "launchers reached the broker over TLS at the advertised address"
assert_eq "cn1 cn2 cn3 " "$(running_nodes)" "hosts in the history"
# the tasks cn2 held: their lease expired (RUN_TIMEOUT), then they ran
# again, on cn1 or cn3
events=$(copal export --format jsonl)
victims=$(jq -r 'select(.to == "RUN_TIMEOUT") | .name' <<<"$events" | sort -u)
[[ -n $victims ]] || fail "no lease expired after cn2's launcher was killed: $events"
for v in $victims; do
	runs=$(jq -r --arg n "$v" 'select(.name == $n and .to == "RUNNING") |
	    .node | split("/")[0]' <<<"$events" | tr '\n' ' ')
	[[ $runs == "cn2 cn1 " || $runs == "cn2 cn3 " ]] ||
	    fail "task $v: RUNNING on [$runs], not cn2 then another node"
done
log "tasks of cn2 run again on the other nodes: $(tr '\n' ' ' <<<"$victims")"
log "total $((SECONDS - t0)) s"
pass
