#!/usr/bin/env bash
# Stage-in of directories and local: URLs (issue 22; Balsam's
# stage_in_url = "local:/path"):
#   loc:   local:DIR brings DIR's contents, subdirectories, modes and links
#          included
#   plain: the same directory as a plain path, and a file:// URL of a file
#   glob:  DIR/* brings each entry as itself (sub/ as a directory)
#   none:  local:/no/such -> RUN_ERROR "no such file" -> FAILED
#   ftp:   gsiftp://... is refused with a message naming what works
source "$(dirname "$0")/lib.sh"
setup_db

mkdir -p "$T/in/sub/deeper"
echo alpha >"$T/in/a.txt"
echo beta >"$T/in/sub/b.txt"
echo gamma >"$T/in/sub/deeper/c.txt"
printf '#!/bin/sh\necho tool ran\n' >"$T/in/tool.sh"
chmod 755 "$T/in/tool.sh"
ln -s a.txt "$T/in/link.txt"
echo single >"$T/one.txt"

show='cat a.txt sub/b.txt sub/deeper/c.txt link.txt; ./tool.sh'
copal job --name loc --workflow wf -q --command "sh -c '$show'" \
    --stage-in-url "local:$T/in" >/dev/null || fail "loc not added"
copal job --name plain --workflow wf -q --command "sh -c '$show; cat one.txt'" \
    --stage-in-url "$T/in file://$T/one.txt" >/dev/null || fail "plain not added"
copal job --name glob --workflow wf -q \
    --command "sh -c 'cat a.txt sub/deeper/c.txt'" \
    --stage-in-url "$T/in/*" >/dev/null || fail "glob not added"
copal job --name none --workflow wf -q --command true \
    --stage-in-url "local:/no/such/dir" >/dev/null || fail "none not added"
copal job --name ftp --workflow wf -q --command true \
    --stage-in-url "gsiftp://host/dir" >/dev/null || fail "ftp not added"

start_launcher l1 --job-mode serial --idle-ttl 1 -v
for t in loc plain glob; do
	wait_for_state $t JOB_FINISHED 40
done
wait_for_state none FAILED 40
wait_for_state ftp FAILED 40
wait_launcher "$LPID" 30

want="alpha beta gamma alpha tool ran"
assert_eq "$want" "$(tr '\n' ' ' <"$(workdir_of loc)/loc.out" | sed 's/ $//')" \
    "loc's run saw the directory's contents"
assert_eq "a.txt" "$(readlink "$(workdir_of loc)/link.txt")" "a link stays a link"
assert_eq "$want single" \
    "$(tr '\n' ' ' <"$(workdir_of plain)/plain.out" | sed 's/ $//')" \
    "plain path and file:// URL"
assert_eq "alpha gamma" "$(tr '\n' ' ' <"$(workdir_of glob)/glob.out" | sed 's/ $//')" \
    "DIR/* brings each entry"
assert_contains "$(transitions_of loc)" "READY->STAGED_IN" "loc staged in"
assert_contains "$(history_of none | grep '^READY->RUN_ERROR')" \
    "/no/such/dir: no such file" "missing local: path"
assert_contains "$(history_of ftp | grep '^READY->RUN_ERROR')" \
    "only local paths, local: and file:// URLs" "unsupported protocol"
pass
