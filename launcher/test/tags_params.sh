#!/usr/bin/env bash
# Scenario: Balsam 0.7's campaign tools (issue 14). Tags: key=value tags on
# tasks, indexed; `ls`, `ls --by-states`, `modify`, `killjob`, `rm`,
# `export` and `stats` select by them (several AND together); a launcher
# given --tag claims only tasks with those tags. Parameterized apps: an
# app's command is a template with {{ name }} placeholders and declared
# parameters with defaults; each task's values arrive as one literal word
# (spaces, quotes, $() and globs included). Bad input (malformed tag,
# unknown or missing parameter) is refused with a clear message and adds
# nothing, not even the rest of its batch.
source "$(dirname "$0")/lib.sh"
setup_db

count_tasks() { # copal ls filter options...: number of rows
	copal ls --format csv "$@" | tail -n +2 | grep -c . || true
}

# ------------------------------------------------------------ tags
add_app echo 'echo ran'
for i in 1 2 3; do
	add_job "h2o_$i" echo --workflow tags --tag system=H2O --tag "run=$i" >/dev/null
done
add_job co2_1 echo --workflow tags --tags system=CO2,run=1 >/dev/null
add_job plain echo --workflow tags >/dev/null
# Balsam's dict form in JSON lines
printf '%s\n' '{"name": "nh3_1", "app": "echo", "workflow": "tags", "tags": {"system": "NH3", "run": "1"}}' \
    >"$T/nh3.jsonl"
copal job --from-file "$T/nh3.jsonl" -q --yes >/dev/null || fail "jsonl with a tags dict"

assert_eq 3 "$(count_tasks --tag system=H2O)" "ls --tag system=H2O"
assert_eq 1 "$(count_tasks --tag system=H2O --tag run=2)" "two tags AND together"
assert_eq 3 "$(count_tasks --tag run=1)" "ls --tag run=1 (H2O, CO2, NH3)"
assert_eq 0 "$(count_tasks --tag system=XE)" "an unknown tag selects nothing"
assert_eq 1 "$(count_tasks --tag system=H2O --tag run=2 --state READY)" "tag and state"
out=$(copal ls --by-states --tag system=H2O)
assert_match "$out" 'READY +\| +3' "ls --by-states --tag counts the tag's tasks"
out=$(copal ls --format json --tag system=NH3)
assert_contains "$out" '"run=1"' "the tags of a JSON-lines task"

# malformed tags: refused, nothing changed
for bad in novalue '=v' "$(printf 'k=\x01')" "k=$(printf 'a%.0s' $(seq 300))"; do
	if out=$(copal job --name bad --app echo --tag "$bad" -q 2>&1); then
		fail "copal job --tag $bad was accepted"
	fi
	assert_contains "$out" "tag" "the message says what is wrong with the tag: $out"
	if out=$(copal ls --tag "$bad" 2>&1); then
		fail "copal ls --tag $bad was accepted"
	fi
done
if copal job --name bad --app echo --tag "$(printf 'k=\xff')" -q >/dev/null 2>&1; then
	fail "a tag of bad UTF-8 was accepted"
fi
assert_eq 0 "$(count_tasks --name bad)" "no task of a malformed tag was added"
printf '%s\n' '{"name": "ok1", "app": "echo", "tags": ["a=1"]}' \
    '{"name": "bad2", "app": "echo", "tags": ["nokey"]}' >"$T/badtags.jsonl"
if out=$(copal job --from-file "$T/badtags.jsonl" --yes 2>&1); then
	fail "a batch with a malformed tag was accepted"
fi
assert_contains "$out" "nokey" "the message names the tag"
assert_eq 0 "$(count_tasks --name ok1)" "nothing of the batch was added"

# modify by tag
out=$(copal modify --tag system=H2O --tag run=3 priority 7 2>&1) || fail "modify --tag: $out"
assert_eq 7 "$(task_field h2o_3 priority)" "modify by tag changed h2o_3"
assert_eq 0 "$(task_field h2o_2 priority)" "modify by tag left h2o_2"
# modify of the tags themselves: the whole set replaced, re-indexed
out=$(copal modify "$(uuid_of plain)" tags "extra=1,system=none" 2>&1) || fail "modify tags: $out"
assert_eq 1 "$(count_tasks --tag extra=1 --tag system=none)" "plain found by its new tags"
if out=$(copal modify "$(uuid_of plain)" tags "extra=1,nokey" 2>&1); then
	fail "modify to a malformed tag was accepted"
fi
assert_contains "$out" "nokey" "the message names the malformed tag"
assert_eq 1 "$(count_tasks --tag extra=1)" "a refused modify changed nothing"
out=$(copal modify "$(uuid_of plain)" tags "" 2>&1) || fail "modify tags to none: $out"
assert_eq 0 "$(count_tasks --tag extra=1)" "tags removed by modify"

# killjob by tag
out=$(copal killjob --tag system=CO2 --yes 2>&1) || fail "killjob --tag: $out"
assert_eq USER_KILLED "$(state_of co2_1)" "killjob --tag system=CO2"
assert_eq READY "$(state_of h2o_1)" "killjob by tag left H2O"
# rm by tag
out=$(copal rm --tag system=NH3 --yes 2>&1) || fail "rm --tag: $out"
assert_eq 0 "$(count_tasks --name nh3_1)" "rm --tag system=NH3 removed nh3_1"
assert_eq 0 "$(count_tasks --tag system=NH3)" "the tag index forgot nh3_1"
assert_eq 3 "$(count_tasks --tag system=H2O)" "rm by tag left H2O"

# ------------------------------------------------------------ launcher --tag
if copal-launcher --db "$DB" --job-mode serial --tag nokey >"$T/badl.log" 2>&1; then
	fail "a launcher with a malformed --tag started"
fi
assert_contains "$(cat "$T/badl.log")" "not key=value" "launcher --tag message"

start_launcher l1 --job-mode serial --idle-ttl 1 --tag system=H2O --tag run=1 -v
wait_for_state h2o_1 JOB_FINISHED 30
wait_launcher "$LPID" 30
assert_eq READY "$(state_of h2o_2)" "the tag-filtered launcher left run=2"
assert_eq READY "$(state_of plain)" "the tag-filtered launcher left an untagged task"
start_launcher l2 --job-mode serial --idle-ttl 1 --tag system=H2O -v
wait_for_state h2o_2 JOB_FINISHED 30
wait_for_state h2o_3 JOB_FINISHED 30
wait_launcher "$LPID" 30
assert_eq READY "$(state_of plain)" "the second tag-filtered launcher left plain"

# export and stats by tag
out=$(copal export --tag system=H2O --tag run=2)
n=$(grep -c '"to":"JOB_FINISHED"' <<<"$out" || true)
assert_eq 1 "$n" "export --tag: one task finished with these tags: $out"
assert_not_contains "$out" '"name":"h2o_1"' "export --tag left h2o_1 out"
assert_not_contains "$out" '"name":"plain"' "export --tag left plain out"
out=$(copal stats --tag system=H2O --format json)
assert_match "$out" '"JOB_FINISHED": *3' "stats --tag counts the tagged tasks: $out"
if copal export --tag nokey >/dev/null 2>&1; then
	fail "export --tag nokey was accepted"
fi

# ------------------------------------------------------------ parameters
add_app sim 'printf "<%s>\n" {{ n }} {{input}} --' --param n=1 --param input
out=$(copal ls apps)
assert_match "$out" 'sim .*\| +n=1 input' "ls apps shows the declared parameters"
out=$(copal ls apps --format json)
assert_contains "$out" '"params":{"n":"1","input":null}' "ls apps --format json: the parameters"
weird='a b "c" '"'"'d'"'"' $(touch '"$T"'/pwned) `id` *'
add_job p1 sim --workflow par --param "input=$weird" >/dev/null
add_job p2 sim --workflow par --param input=x.dat --param n=4 >/dev/null
printf '%s\n' '{"name": "p3", "app": "sim", "workflow": "par", "params": {"input": "j s", "n": 7}}' \
    >"$T/p3.jsonl"
copal job --from-file "$T/p3.jsonl" -q --yes >/dev/null || fail "jsonl with params"
out=$(copal ls --format json --name p2)
assert_contains "$out" '"params"' "ls shows a task's params"

# unknown / missing parameters: refused naming the parameter
if out=$(copal job --name p_bad --app sim --param input=a --param nn=2 -q 2>&1); then
	fail "an unknown parameter was accepted"
fi
assert_contains "$out" "unknown parameter nn" "the message names the unknown parameter"
if out=$(copal job --name p_bad --app sim --param n=2 -q 2>&1); then
	fail "a missing parameter was accepted"
fi
assert_contains "$out" "missing parameter input" "the message names the missing parameter"
if out=$(copal job --name p_bad --app echo --param x=1 -q 2>&1); then
	fail "a parameter for a plain app was accepted"
fi
assert_contains "$out" "unknown parameter x" "a plain app takes no parameters"
printf '%s\n' '{"name": "p_ok", "app": "sim", "params": {"input": "z"}}' \
    '{"name": "p_bad2", "app": "sim", "params": {"n": "3"}}' >"$T/pbad.jsonl"
if out=$(copal job --from-file "$T/pbad.jsonl" --yes 2>&1); then
	fail "a batch with a missing parameter was accepted"
fi
assert_contains "$out" "missing parameter input" "batch: names the parameter"
assert_eq 0 "$(count_tasks --name p_ok)" "nothing of the bad batch was added"
assert_eq 0 "$(count_tasks --name p_bad)" "no bad task was added"
assert_eq 0 "$(count_tasks --name p_bad2)" "no bad task was added"

# bad app templates: refused at registration
if out=$(copal app --name sim2 --command 'x {{ m }}' --param n 2>&1); then
	fail "a template with an undeclared placeholder was accepted"
fi
assert_contains "$out" "{{ m }}" "names the undeclared placeholder"
if out=$(copal app --name sim3 --command 'x {{ n' --param n 2>&1); then
	fail "an unclosed placeholder was accepted"
fi
if out=$(copal app --name sim4 --command 'x' --param '1n' 2>&1); then
	fail "a bad parameter name was accepted"
fi

start_launcher l3 --job-mode serial --idle-ttl 1 -v
for t in p1 p2 p3 plain; do
	wait_for_state $t JOB_FINISHED 30
done
wait_launcher "$LPID" 30
assert_eq "<1>
<$weird>
<-->" "$(cat "$(workdir_of p1)/p1.out")" "p1: the default and one literal word"
assert_eq "<4>
<x.dat>
<-->" "$(cat "$(workdir_of p2)/p2.out")" "p2: given values"
assert_eq "<7>
<j s>
<-->" "$(cat "$(workdir_of p3)/p3.out")" "p3: JSON-lines values"
[[ ! -e $T/pwned ]] || fail "a parameter's \$() ran"

# ------------------------------------------------------------ launch params
if out=$(copal job --name lp_bad --app echo --launch-param= -q 2>&1); then
	fail "an empty launch parameter was accepted"
fi
assert_contains "$out" "launch_params" "the message names launch_params"
printf '%s\n' '{"name": "lp_bad", "app": "echo", "launch_params": ["-x", ""]}' >"$T/lpbad.jsonl"
if out=$(copal job --from-file "$T/lpbad.jsonl" --yes 2>&1); then
	fail "an empty launch parameter in JSON lines was accepted"
fi
assert_contains "$out" "launch_params: an empty word" "JSON lines: names launch_params"
args=()
for i in $(seq 33); do args+=(--launch-param "-v$i"); done
if out=$(copal job --name lp_bad --app echo "${args[@]}" -q 2>&1); then
	fail "33 launch parameters were accepted"
fi
assert_contains "$out" "launch_params has 33 entries, above the limit 32" "count bound"
assert_eq 0 "$(count_tasks --name lp_bad)" "no task of a bad launch parameter"

# each launch parameter is one word of the starter's command, before the
# command; a fake starter prints its arguments one per line
cat >"$T/starter.sh" <<'SH'
#!/bin/sh
for a; do printf '[%s]\n' "$a"; done
SH
chmod +x "$T/starter.sh"
add_app hi 'echo hi'
add_job lp1 hi --workflow lp --launch-param=--cpu-bind=depth \
    --launch-param "--env=A B" --launch-param "\$(x)" >/dev/null
printf '%s\n' '{"name": "lp2", "app": "hi", "workflow": "lp", "launch_params": ["-d", "2"]}' \
    >"$T/lp2.jsonl"
copal job --from-file "$T/lp2.jsonl" -q --yes >/dev/null || fail "jsonl launch_params"
start_launcher l4 --job-mode mpi --idle-ttl 1 --mpi-template "$T/starter.sh -n {ranks} {cmd}" -v
wait_for_state lp1 JOB_FINISHED 30
wait_for_state lp2 JOB_FINISHED 30
wait_launcher "$LPID" 30
assert_eq "[-n]
[1]
[--cpu-bind=depth]
[--env=A B]
[\$(x)]
[echo]
[hi]" "$(cat "$(workdir_of lp1)/lp1.out")" "lp1: the starter's words"
assert_eq "[-n]
[1]
[-d]
[2]
[echo]
[hi]" "$(cat "$(workdir_of lp2)/lp2.out")" "lp2: JSON-lines launch params"
pass
