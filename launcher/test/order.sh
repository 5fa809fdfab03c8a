#!/usr/bin/env bash
# Claim order: an MPI launcher on 4 nodes (a node file) with
# long_large_first (copal.conf's claim_order) starts the largest task
# (num_nodes x wall time) first and backfills a small one on the node
# left; the next largest follows, small ones last. --order fifo takes them
# by age. A bad --order is refused.
source "$(dirname "$0")/lib.sh"
setup_db
printf 'n1\nn2\nn3\nn4\n' >"$T/nodes"

cat >"$T/stamp.sh" <<'SH'
date +%s.%N >start
sleep "$NAP"
date +%s.%N >end
SH
add_app stamp "sh $T/stamp.sh"

# oldest first: three small ones, then a medium, then the largest
make_tasks() { # WF
	local wf=$1
	for i in 1 2 3; do
		add_job "$wf-s$i" stamp --workflow "$wf" --wall-time-minutes 5 \
		    --env NAP=0.3 >/dev/null
	done
	add_job "$wf-mid" stamp --workflow "$wf" --num-nodes 2 \
	    --wall-time-minutes 20 --env NAP=1 >/dev/null   # 40 node-minutes
	add_job "$wf-big" stamp --workflow "$wf" --num-nodes 3 \
	    --wall-time-minutes 30 --env NAP=2 >/dev/null   # 90 node-minutes
}
start_of() { cat "$(workdir_of "$1")/start"; }
end_of() { cat "$(workdir_of "$1")/end"; }
run_launcher() { # NAME [options]
	local name=$1
	shift
	PBS_NODEFILE=$T/nodes start_launcher "$name" --job-mode mpi \
	    --mpi-template '{cmd}' --idle-ttl 1 "$@"
	wait_launcher "$LPID" 60
}

# ---- long_large_first from copal.conf
sed -i 's/^claim_order = .*/claim_order = long_large_first/' "$DB/copal.conf"
grep -q '^claim_order = long_large_first$' "$DB/copal.conf" ||
    fail "copal.conf has no claim_order"
make_tasks ll
run_launcher ll
for t in ll-s1 ll-s2 ll-s3 ll-mid ll-big; do
	assert_eq JOB_FINISHED "$(state_of $t)" "$t"
done
big=$(start_of ll-big)
# big and the oldest small one start together (the small one backfills
# the fourth node); the medium one waits for big's nodes, the other small
# ones backfill the fourth node in turn while big runs
fcmp "$(start_of ll-s1)" '<' "$(end_of ll-big)" ||
    fail "ll-s1 did not backfill beside ll-big"
for t in ll-mid ll-s2 ll-s3; do
	fcmp "$big" '<' "$(start_of $t)" || fail "$t started before ll-big"
done
fcmp "$(end_of ll-big)" '<=' "$(start_of ll-mid)" ||
    fail "ll-mid started while ll-big held 3 of the 4 nodes"
fcmp "$(start_of ll-s3)" '<' "$(end_of ll-big)" ||
    fail "ll-s3 did not backfill while ll-big ran"

# ---- --order fifo overrides the settings: by age
make_tasks ff
run_launcher ff --order fifo
s3=$(start_of ff-s3)
for t in ff-mid ff-big; do
	fcmp "$s3" '<' "$(start_of $t)" || fail "$t started before ff-s3 (fifo)"
done

# ---- a bad order is refused
set +e
out=$(copal-launcher --db "$DB" --job-mode serial --order lifo 2>&1)
rc=$?
set -e
assert_eq 2 "$rc" "--order lifo: $out"
assert_contains "$out" "--order is fifo or long_large_first, not lifo" "message"
sed -i 's/^claim_order = .*/claim_order = biggest/' "$DB/copal.conf"
set +e
out=$(copal-launcher --db "$DB" --job-mode serial 2>&1)
rc=$?
set -e
assert_eq 2 "$rc" "claim_order = biggest: $out"
assert_contains "$out" "claim_order" "the setting is named"
pass
