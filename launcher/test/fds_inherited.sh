#!/usr/bin/env bash
# No descriptor the launcher holds reaches a task, not even one it
# inherited without close-on-exec from whatever started it (a batch
# job's starter, mpirun, srun often leave some): the task finds only 0, 1
# and 2 open (ls /proc/self/fd shows a 3rd, its own directory handle).
# Here the launcher is started with descriptor 9 open.
source "$(dirname "$0")/lib.sh"
setup_db

add_app fds 'ls -1 /proc/self/fd'
add_app fdsh 'ls -1 /proc/self/fd' --envscript /dev/null
add_job direct fds --workflow fd >/dev/null
add_job viash fdsh --workflow fd >/dev/null

LAUNCHER_EXTRA_FD=9 start_launcher l1 --job-mode serial --idle-ttl 1
L1=$LPID
for _ in $(seq 1 50); do # until the subshell has become the launcher
	[[ $(tr '\0' ' ' <"/proc/$L1/cmdline" 2>/dev/null) == copal-launcher* ]] && break
	sleep 0.1
done
[[ -e /proc/$L1/fd/9 ]] || fail "the launcher did not get descriptor 9 (test setup)"
wait_for_state direct JOB_FINISHED 20
wait_for_state viash JOB_FINISHED 20
wait_launcher "$L1" 30
for t in direct viash; do
	got=$(paste -sd' ' "$(workdir_of $t)/$t.out")
	assert_eq "0 1 2 3" "$got" \
	    "descriptors open in task $t when the launcher inherited descriptor 9"
done

# A descriptor inherited high up (harnesses and starters leave some at
# 250 and above) is moved down by the launcher, still open: the kernel
# copies the table up to the highest open descriptor at every fork, for
# every task (issue 13). Tasks still get none of it.
add_job high fds --workflow fd >/dev/null
LAUNCHER_EXTRA_FD=200 start_launcher l2 --job-mode serial --idle-ttl 3
L2=$LPID
wait_for_state high JOB_FINISHED 20
nfd=0
highest=0
for f in /proc/"$L2"/fd/*; do
	n=${f##*/}
	((n > highest)) && highest=$n
	[[ $(readlink "$f") == /dev/null ]] && nfd=$((nfd + 1))
done
((highest < 64)) || fail "the launcher still holds descriptor $highest"
# 0 (the test's redirection), the launcher's own /dev/null for tasks'
# input and the moved descriptor 200
((nfd >= 3)) || fail "the inherited descriptor was closed, not moved ($nfd on /dev/null)"
wait_launcher "$L2" 30
got=$(paste -sd' ' "$(workdir_of high)/high.out")
assert_eq "0 1 2 3" "$got" \
    "descriptors open in a task when the launcher inherited descriptor 200"
pass
