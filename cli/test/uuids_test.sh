#!/usr/bin/env bash
# Issue 17: task_uuids = time in copal.conf. Through the real CLI, broker
# and launcher: new tasks get version 7 uuids in creation order; two tasks
# of the same name and workflow created together run in two directories
# (<name>_<last 8 digits>); a long prefix finds one task, the shared time
# prefix is refused as ambiguous; a bad value is refused with a message.
#
#   uuids_test.sh BUILD_DIR
COPAL_BIN=${1:-${COPAL_BIN:-}}
export COPAL_BIN
source "$(dirname "$0")/../../launcher/test/lib.sh"

command copal init "$DB" >/dev/null
sed -i "s/^task_uuids = .*/task_uuids = time/" "$DB/copal.conf"
grep -q "^task_uuids = time$" "$DB/copal.conf" || fail "copal init wrote no task_uuids line"
copal server start >/dev/null
BROKER_STARTED=1

add_app echo "echo"
a=$(add_job same echo --workflow w --args A --yes)
b=$(add_job same echo --workflow w --args B --yes)
assert_eq 7 "${a:14:1}" "version 7 uuid ($a)"
assert_eq 7 "${b:14:1}" "version 7 uuid ($b)"
[[ $a < $b ]] || fail "uuids not in creation order: $a then $b"
assert_eq "${a:0:8}" "${b:0:8}" "tasks created together share the time prefix"

# a long prefix names one task; the shared 8 digits do not
out=$(copal ls --id "${a:0:23}" --format csv 2>&1) || fail "ls --id ${a:0:23}: $out"
assert_contains "$out" "$a" "ls --id of a 23-character prefix"
assert_not_contains "$out" "$b" "ls --id of a 23-character prefix"
out=$(copal modify "${a:0:8}" priority 3 2>&1) && fail "modify by the shared prefix worked: $out"
assert_contains "$out" "ambiguous" "the shared prefix is ambiguous"

start_launcher l --job-mode serial --idle-ttl 2
wait_launcher "$LPID" 60
da="$DB/data/w/same_${a: -8}"
db="$DB/data/w/same_${b: -8}"
assert_eq "A" "$(cat "$da/same.out")" "task a's output in its own directory"
assert_eq "B" "$(cat "$db/same.out")" "task b's output in its own directory"

# a value that is neither random nor time: refused, with what is allowed
copal server stop >/dev/null
sed -i "s/^task_uuids = .*/task_uuids = v7/" "$DB/copal.conf"
out=$(copal server start 2>&1) && fail "broker started with task_uuids = v7"
assert_contains "$out" "random or time" "the allowed values in the message"
pass
