#!/usr/bin/env bash
# Balsam's map-reduce test (issue 22): three parents each write square.dat;
# the reduce (input_files "square*.dat*") sees all three: the first as
# square.dat, the others as square.dat_<parent uuid8> (as Balsam names
# them), its history notes each renamed link, and the sum is right.
# Its stage_out_files without a stage_out_url stay in its directory and
# the task finishes (Balsam's behaviour).
source "$(dirname "$0")/lib.sh"
setup_db

cat >"$T/square.sh" <<'SH'
awk -v x="$X" 'BEGIN { printf "%.3f\n", x * x }' >square.dat
SH
cat >"$T/reduce.sh" <<'SH'
ls square.dat* | sort
cat square.dat* | awk '{ s += $1 } END { printf "sum %.3f\n", s }' | tee sum.txt
SH
add_app square "sh $T/square.sh"
add_app reduce "sh $T/reduce.sh"

p1=$(add_job sq1 square --workflow mr --env X=1.5)
p2=$(add_job sq2 square --workflow mr --env X=2.5)
p3=$(add_job sq3 square --workflow mr --env X=3.5)
add_job red reduce --workflow mr --parents "$p1,$p2,$p3" \
    --input-files "square*.dat*" --stage-out-files "sum.txt" >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1 -v
wait_for_state red JOB_FINISHED 40
wait_launcher "$LPID" 30

out=$(cat "$(workdir_of red)/red.out")
# 2.25 + 6.25 + 12.25
assert_contains "$out" "sum 20.750" "the reduce's sum"
names=$(grep '^square' <<<"$out" | tr '\n' ' ')
assert_eq 3 "$(grep -c '^square' <<<"$out")" "files the reduce sees: $names"
h=$(history_of red | grep -- '->STAGED_IN')
n=0
for p in "$p1" "$p2" "$p3"; do
	if [[ $names == *"square.dat_${p:0:8}"* ]]; then
		n=$((n + 1))
		assert_contains "$h" "square.dat_${p:0:8}" "renamed link in the history"
	fi
done
assert_eq "sum 20.750" "$(cat "$(workdir_of red)/sum.txt")" "sum.txt kept in the workdir"
assert_eq 2 "$n" "links renamed with their parent's uuid8 ($names)"
pass
