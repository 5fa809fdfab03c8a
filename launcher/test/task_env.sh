#!/usr/bin/env bash
# A task's own environment wins over the launcher's (issue 22): the
# launcher runs with SCALE=launcher and OMP_NUM_THREADS=9 in its
# environment; a task with --env SCALE=task run directly (no shell:
# printenv reads the first of duplicate entries) sees SCALE=task, and one
# with --env OMP_NUM_THREADS=4 sees 4 (the task's value over copal's).
# Variables of the CLI's own (COPAL_TIMEOUT) are not set by the launcher
# for handlers: COPAL_TIMED_OUT is (balsam_handler.sh checks that).
source "$(dirname "$0")/lib.sh"
setup_db

add_app penv "printenv SCALE OMP_NUM_THREADS"
add_job mine penv --workflow wf --env SCALE=task --env OMP_NUM_THREADS=4 >/dev/null
add_job theirs penv --workflow wf >/dev/null
SCALE=launcher OMP_NUM_THREADS=9 start_launcher l1 --job-mode serial --idle-ttl 1 -v
wait_for_state mine JOB_FINISHED 30
wait_for_state theirs JOB_FINISHED 30
wait_launcher "$LPID" 30
assert_eq "task 4" "$(tr '\n' ' ' <"$(workdir_of mine)/mine.out" | sed 's/ $//')" \
    "the task's own values"
assert_eq "launcher 1" "$(tr '\n' ' ' <"$(workdir_of theirs)/theirs.out" | sed 's/ $//')" \
    "the launcher's SCALE, copal's OMP_NUM_THREADS"
pass
