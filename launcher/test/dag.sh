#!/usr/bin/env bash
# Scenario 5, a DAG with data: the parent writes out.dat; two children
# (--parents PARENT --input-files "*.dat") find out.dat linked (a symlink)
# in their own directories and read it; the grandchild (parents: both
# children) stays AWAITING_PARENTS until both have finished, then reads the
# files they wrote.
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/gen.sh" <<'SH'
echo payload-42 >out.dat
echo not-for-children >notes.txt
SH
cat >"$T/reader.sh" <<'SH'
[ -L out.dat ] || { echo "out.dat is not a symlink"; ls -l; exit 1; }
[ ! -e notes.txt ] || { echo "notes.txt should not be linked"; exit 1; }
echo "read $(cat out.dat)"
echo "from $COPAL_TASK_NAME" >"$COPAL_TASK_NAME.dat"
sleep "$NAP"
SH
cat >"$T/joiner.sh" <<'SH'
for f in c1.dat c2.dat; do
	[ -L "$f" ] || { echo "$f is not a symlink"; ls -l; exit 1; }
done
[ ! -e out.dat ] || { echo "out.dat matches no pattern of the grandchild"; exit 1; }
cat c1.dat c2.dat
SH
add_app gen "sh $T/gen.sh"
add_app reader "sh $T/reader.sh"
add_app joiner "sh $T/joiner.sh"

p=$(add_job parent gen --workflow dag)
c1=$(add_job c1 reader --workflow dag --parents "$p" --input-files "*.dat" --env NAP=0)
c2=$(add_job c2 reader --workflow dag --parents "$p" --input-files "*.dat" --env NAP=3)
add_job gc joiner --workflow dag --parents "$c1,$c2" --input-files "c*.dat" >/dev/null
for t in c1 c2 gc; do
	assert_eq AWAITING_PARENTS "$(state_of $t)" "$t before the launcher"
done

start_launcher l1 --job-mode serial --idle-ttl 2 -v
wait_for_state c1 JOB_FINISHED 20
# c2 naps 3 s: the grandchild must still wait for it
st2=$(state_of c2)
assert_match "$st2" '^(READY|STAGED_IN|RUNNING)$' "c2 still running when c1 finished"
assert_eq AWAITING_PARENTS "$(state_of gc)" "grandchild while c2 runs"
wait_for_state c2 JOB_FINISHED 20
wait_for_state gc JOB_FINISHED 20
wait_launcher "$LPID" 30

pdir=$(workdir_of parent)
for c in c1 c2; do
	d=$(workdir_of $c)
	assert_eq "read payload-42" "$(cat "$d/$c.out")" "output of $c"
	[[ -L $d/out.dat ]] || fail "$d/out.dat is not a symlink"
	assert_eq "$pdir/out.dat" "$(readlink "$d/out.dat")" "target of $c's out.dat link"
	[[ ! -e $d/notes.txt ]] || fail "notes.txt (not *.dat) was linked into $c"
	assert_contains "$(transitions_of $c)" "AWAITING_PARENTS->READY" "$c waited for parent"
	assert_contains "$(transitions_of $c)" "->STAGED_IN" "$c staged in the link"
done
assert_eq $'from c1\nfrom c2' "$(cat "$(workdir_of gc)/gc.out")" "output of gc"
# the grandchild became READY only after both children finished
gready=$(time_entered gc READY)
for c in c1 c2; do
	cdone=$(time_entered $c JOB_FINISHED)
	[[ $gready > "$cdone" || $gready == "$cdone" ]] ||
	    fail "gc became READY at $gready, before $c finished at $cdone"
done
assert_eq "CREATED->READY READY->RUNNING RUNNING->RUN_DONE RUN_DONE->JOB_FINISHED" \
    "$(transitions_of parent)" "history of parent"
pass
