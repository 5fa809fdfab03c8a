#!/usr/bin/env bash
# nng-leak.awk excuses NNG 1.5.2's own listener leak and nothing else: the
# report of a real broker run where the listener broke (data/) passes;
# the same report with one of our frames in a stack, or with another kind
# of error, does not.
set -euo pipefail
here=$(dirname "$0")
awkf=$here/nng-leak.awk
base=$here/data/nng-leak-1518.txt
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fails=0
expect() { # WANT(0|1) FILE WHAT
	local rc=0
	awk -f "$awkf" "$2" || rc=$?
	if [[ $rc != "$1" ]]; then
		echo "FAIL: $3: exit $rc, expected $1" >&2
		fails=$((fails + 1))
	else
		echo "ok: $3"
	fi
}
expect 0 "$base" "the listener leak of a broken NNG listener"
# a message the broker forgot: a frame of ours under libnng, on NNG's thread
sed '0,/#2 0x7fdcfebc9ab5 .*/s//#2 0x557f5c877000 in claim_done \/x\/broker\/src\/h_claim.c:88/' \
    "$base" >"$t/ours.txt"
grep -q h_claim "$t/ours.txt"
expect 1 "$t/ours.txt" "a leak through our code on an NNG thread"
# a message NNG received for us, never freed: a Direct leak, all libnng
# down to NNG's own thread
sed '0,/^Indirect leak of 5280/s//Direct leak of 5280/' "$base" >"$t/direct.txt"
grep -q "^Direct leak of 5280" "$t/direct.txt"
expect 1 "$t/direct.txt" "a direct leak on an NNG thread (a lost message)"
# the same from main: a frame of ours other than ipc_listen
sed '0,/ in ipc_listen /s// in server_start /' "$base" >"$t/main.txt"
expect 1 "$t/main.txt" "a leak through another function of ours"
# a leak whose stack is cut before any deciding frame
awk '/#6 .*start_thread/ && !done { done = 1; next } { print }' "$base" \
    >"$t/cut.txt"
expect 1 "$t/cut.txt" "a stack cut before start_thread"
# other reports
printf '==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n' \
    >"$t/uaf.txt"
cat "$base" >>"$t/uaf.txt"
expect 1 "$t/uaf.txt" "a use after free beside the leak"
printf 'broker/src/net.c:12:3: runtime error: signed integer overflow\n' \
    >"$t/ub.txt"
expect 1 "$t/ub.txt" "an UndefinedBehaviorSanitizer report"
: >"$t/empty.txt"
expect 1 "$t/empty.txt" "an empty report"
((fails == 0)) || exit 1
echo "PASS: nng_leak_test"
