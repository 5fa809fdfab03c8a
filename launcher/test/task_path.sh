#!/usr/bin/env bash
# A task's own environment decides where its executable is found: with
# --env PATH=DIR:... an app named by a bare command name that lives only in
# DIR runs (as `exec NAME` in the task's shell would), whether or not the
# launcher starts it through /bin/sh.
source "$(dirname "$0")/lib.sh"
setup_db

mkdir -p "$T/bin"
printf '#!/bin/sh\necho mytool ran with "$@"\n' >"$T/bin/copal-test-tool"
chmod +x "$T/bin/copal-test-tool"
add_app tool 'copal-test-tool plain'
add_app toolsh 'copal-test-tool viash' --envscript /dev/null
add_job direct tool --workflow p --env "PATH=$T/bin:$PATH" >/dev/null
add_job viash toolsh --workflow p --env "PATH=$T/bin:$PATH" >/dev/null

start_launcher l1 --job-mode serial --idle-ttl 1
wait_for_state viash JOB_FINISHED 20
assert_eq "mytool ran with viash" "$(cat "$(workdir_of viash)/viash.out")" "output of viash"
wait_for_state direct JOB_FINISHED 20
assert_eq "mytool ran with plain" "$(cat "$(workdir_of direct)/direct.out")" "output of direct"
wait_launcher "$LPID" 30
pass
