#!/usr/bin/env bash
# Black-box test of the copal command line against a real broker: the
# walkthrough of the Balsam talk, then every verb, exit codes and errors.
#
#   cli_test.sh COPAL COPAL_BROKER
#
# Runs in a private temporary HOME and database; stops its broker and
# checks that none is left behind.
set -u

COPAL=$(readlink -f "$1")
export COPAL_BROKER_BIN=$(readlink -f "$2")
T=$(mktemp -d /tmp/copal-cli-test.XXXXXX)
export HOME=$T/home
mkdir -p "$HOME"
unset COPAL_DB COPAL_BROKER_URL COPAL_TOKEN COPAL_NO_AUTOSTART COPAL_TASK_ID
# `source copalactivate` searches PATH; the build keeps it beside copal
export PATH=$(dirname "$COPAL"):$PATH
DB=$T/db
fails=0

cleanup() {
	"$COPAL" --db "$DB" server stop >/dev/null 2>&1
	"$COPAL" --db "$T/db2" server stop >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# expect RC CMD...: runs copal with args, output in $OUT
expect() {
	local want=$1
	shift
	OUT=$("$COPAL" "$@" 2>&1)
	local rc=$?
	[[ $rc == "$want" ]] || fail "copal $* -> exit $rc, want $want: $OUT"
}

has() {
	grep -qE -- "$1" <<<"$OUT" || fail "output lacks /$1/: $OUT"
}
hasnt() {
	! grep -qE -- "$1" <<<"$OUT" || fail "output has /$1/: $OUT"
}

# ------------------------------------------------------------ walkthrough
expect 0 init "$DB"
has "Successfully created copal DB at: $DB"
[[ $(stat -c %a "$DB/secret") == 600 ]] || fail "secret mode"
[[ $(wc -c <"$DB/secret") == 64 ]] || fail "secret length"
[[ $(stat -c %a "$DB/sock") == 700 ]] || fail "sock mode"
grep -q '^scheduler = local' "$DB/copal.conf" || fail "conf scheduler"
grep -q '^lease_ttl_seconds = 30' "$DB/copal.conf" || fail "conf lease"
grep -qx "$DB" "$HOME/.copal/databases" || fail "databases list"
expect 1 init "$DB"

source copalactivate "$DB" 2>/dev/null || fail "copalactivate"
[[ ${COPAL_DB:-} == "$DB" ]] || fail "COPAL_DB after activate"
[[ $PS1 == "[copal: db] "* ]] || fail "PS1 after activate: $PS1"

expect 0 app --name say-hello --executable "echo Hello, "
has "Added app to database"
expect 0 job --name test1 --workflow test --app say-hello --args "World 1!" --yes
has "Executed command: +echo Hello, World 1!"
has "Added task [0-9a-f-]{36}"
for i in $(seq 2 10); do
	expect 0 job --name test$i --workflow test --app say-hello --args "World $i!" --yes
done
expect 0 ls
[[ $(grep -c 'READY$' <<<"$OUT") == 10 ]] || fail "ls: 10 READY rows: $OUT"
has '^ +job_id \|   name \| workflow \| application \| state$'
has '^-+$'
expect 0 ls --by-states
has '^READY +\| +10$'
id=$("$COPAL" ls --format csv | sed -n 2p | cut -c1-8)
expect 0 modify "$id" state RESTART_READY
has "state changed to: RESTART_READY"
expect 0 ls --history --id "$id"
has 'READY -> RESTART_READY +modified by user'

# ------------------------------------------------------------ jobs, DAG
P=$("$COPAL" job -q --name parent --workflow dag --app say-hello) || fail "job -q"
C=$("$COPAL" job -q --name child --workflow dag --app say-hello --parents "${P:0:8}" \
	--env A=1 --data '{"k": [1, 2]}' --tags x=1,y=2 --num-nodes 2 --priority -5) || fail "job child"
expect 0 ls --id "${C:0:8}" --format json
has '"parents":\["'"$P"'"\]'
has '"env":\{"A":"1"\}'
has '"data":\{"k":\[1,2\]\}'
has '"state":"AWAITING_PARENTS"'
expect 0 ls --tree --wf dag
has '^parent  '"${P:0:8}"'  READY'
has '^`-- child  '"${C:0:8}"'  AWAITING_PARENTS'
expect 0 ls wf
has '^dag +\| +2 '
expect 1 dep "${C:0:8}" "${P:0:8}"
has 'cycle'
# the refusal names both tasks as users know them: uuid prefix and name,
# never the broker's internal ids
has "${C:0:8} \\(child\\) -> ${P:0:8} \\(parent\\)"
hasnt 'dependency [0-9]+ -> [0-9]+'
expect 1 dep "${P:0:8}" "${C:0:8}"
has "${P:0:8} \\(parent\\) -> ${C:0:8} \\(child\\)"
COPAL_TASK_ID=$("$COPAL" ls --id "${P:0:8}" --format csv --verbose | sed -n 2p | cut -d, -f6)
export COPAL_TASK_ID
expect 0 mkchild --name kid --app say-hello
has '^workflow: +dag$'
unset COPAL_TASK_ID
expect 2 mkchild --name kid --app say-hello
expect 3 job --name x --app nope --yes
expect 2 job --name x --yes
expect 2 job --name x --app say-hello --data '{bad'
expect 2 job --name x --app say-hello --bogus
expect 1 app --name say-hello --executable foo
echo n | "$COPAL" job --name no --app say-hello >/dev/null 2>&1 && fail "declined job"
expect 0 ls --name no
[[ $(wc -l <<<"$OUT") == 2 ]] || fail "declined job was added"

# ------------------------------------------------------------ bulk
python3 - "$T/bulk.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(50):
        d = {"name": "b%d" % i, "workflow": "bulk", "app": "say-hello", "key": "k%d" % i}
        if i % 3:
            d["parent_keys"] = ["k%d" % (i - 1)]
        if i == 0:
            d["num-nodes"] = 1
        f.write(json.dumps(d) + "\n")
PY
expect 0 job --from-file "$T/bulk.jsonl" --batch 7
has 'Added 50 tasks'
expect 0 ls --wf bulk --format json
python3 - "$OUT" <<'PY' || fail "bulk parents"
import json, sys
ts = json.loads(sys.argv[1]); by = {t["uuid"]: t["name"] for t in ts}
for t in ts:
    i = int(t["name"][1:])
    want = ["b%d" % (i - 1)] if i % 3 else []
    assert [by[u] for u in t["parents"]] == want, t
PY
printf '{"name":"a","app":"say-hello"}\n{"name":"b","app":"say-hello",\n' >"$T/bad.jsonl"
expect 1 job --from-file "$T/bad.jsonl"
has 'bad.jsonl:2: not JSON'
expect 0 ls --name a
[[ $(wc -l <<<"$OUT") == 2 ]] || fail "a line of a failed batch was added"
printf '{"name":"a","app":"say-hello","parents":[999999]}\n' >"$T/bad2.jsonl"
expect 3 job --from-file "$T/bad2.jsonl"
has 'bad2.jsonl:1: parent id 999999 does not exist'

# ------------------------------------------------------------ modify, rm, kill
expect 0 modify --wf test --state READY priority 7
has 'matched 9 tasks, changed 9'
expect 2 modify state READY
expect 1 modify "$id" num_nodes abc
expect 3 modify ffffffffffff state READY
expect 0 make_dummies 25 --wf dum
has 'Created 25 dummy tasks'
# a one-digit prefix shared by two tasks (there are more than 16)
amb=$("$COPAL" ls --format csv | sed 1d | cut -c1 | sort | uniq -d | head -1)
expect 1 modify "$amb" state READY
has 'is ambiguous'
expect 0 killjob "${P:0:8}"
has 'Killed 3 tasks'
expect 0 ls --wf dag --state PARENT_KILLED --format csv
[[ $(wc -l <<<"$OUT") == 3 ]] || fail "PARENT_KILLED children: $OUT"
echo n | "$COPAL" rm --wf dum >/dev/null 2>&1 && fail "declined rm"
expect 0 rm --wf dum --yes
has 'Removed 25 tasks'
expect 3 rm --wf dum --yes
expect 1 rm app say-hello
expect 3 rm app nope

# ------------------------------------------------------------ server, which, log
expect 0 which
[[ $OUT == "$DB" ]] || fail "which: $OUT"
expect 0 which --list
has "^\* +\| $DB +\| running, pid [0-9]+$"
expect 0 server status
has 'tasks: +[0-9]+'
expect 0 log -n 1
has 'NOTICE'
expect 0 server start
has 'already running'
expect 0 server stop
expect 1 server status
COPAL_NO_AUTOSTART=1 expect 1 ls
has 'no broker for .*: run copal server start'
expect 0 ls --limit 1          # starts it again
expect 0 server stop
expect 0 server stop
has 'no broker running'
eval "$("$COPAL" deactivate)"
[[ -z ${COPAL_DB:-} ]] || fail "deactivate"
expect 3 ls
expect 0 init "$T/db2"
eval "$("$COPAL" activate db2 2>/dev/null)" || fail "activate by name"
[[ ${COPAL_DB:-} == "$T/db2" ]] || fail "activate by name: ${COPAL_DB:-}"
expect 0 server stop

# no broker left behind
if pgrep -f "copal-broker --db $T/" >/dev/null; then
	fail "a broker is still running"
fi
if ((fails)); then
	echo "cli_test: $fails failure(s)" >&2
	exit 1
fi
echo "cli_test: all passed"
