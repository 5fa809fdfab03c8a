#!/usr/bin/env bash
# No file outside data/ (issue 12): tasks whose names or workflows climb
# (../) or are absolute run with their directory and output file inside
# the database's data/ folder; nothing is written where the names point.
# The output file is <workdir>/<name made a safe path component>.out.
source "$(dirname "$0")/lib.sh"
setup_db

# $T/db/data/default/<name>_<uuid8>: four levels up is $T's parent
mkdir -p "$T/out"
add_app hello 'echo hello'
add_job '../../../../escape-up' hello >/dev/null
add_job "$T/out/abs-name" hello >/dev/null
add_job 'dotdot-wf' hello --workflow '../../../wf-up' >/dev/null
add_job 'abs-wf' hello --workflow "$T/out/wf-abs" >/dev/null
add_job '..' hello --workflow '..' >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1
for n in '../../../../escape-up' "$T/out/abs-name" dotdot-wf abs-wf '..'; do
	wait_for_state "$n" JOB_FINISHED 30
done
wait_launcher "$LPID" 30

# nothing where the names point
for p in "$T/../escape-up.out" "$T/escape-up.out" "$T/db/escape-up.out" \
    "$T/out/abs-name.out" "$T/out/abs-name" "$T/out/wf-abs" \
    "$T/wf-up" "$T/../wf-up"; do
	[[ ! -e $p ]] || fail "$p was written outside data/"
done
[[ -z $(ls -A "$T/out") ]] || fail "files in $T/out: $(ls -A "$T/out")"
# every output file is under data/, and says hello
outs=$(find "$T" -name '*.out' 2>/dev/null | sort)
n=0
while IFS= read -r f; do
	[[ -n $f ]] || continue
	case $f in
	"$DB/data/"*) ;;
	*) fail "output file $f outside data/" ;;
	esac
	assert_eq hello "$(cat "$f")" "content of $f"
	n=$((n + 1))
done <<<"$outs"
assert_eq 5 "$n" "output files under data/ ($outs)"
pass
