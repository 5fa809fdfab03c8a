# nng-leak.awk REPORT: exit 0 when a sanitizer report holds nothing but the
# leak NNG 1.5.2 (Debian 12's libnng1) leaves when its IPC listener breaks
# (upstream #1518, fixed in 1.6.0: a peer gone during negotiation makes
# the listener stop accepting; the broker's self-check closes it and opens
# a new one, and NNG never frees the old one and its pipes). Exit 1 for
# anything else: a report that is not LeakSanitizer's, or any leak whose
# stack reaches code of ours other than the broker's ipc_listen.
#
# A leak is NNG's when, reading its stack from frame #1 (frame #0 is the
# allocator), every frame is in libnng until the first one that is either
# ipc_listen (the listener itself, made by nng_listener_create/start) or
# start_thread (the allocation came from one of NNG's own threads, with
# nothing of ours on the way) in an Indirect leak: the pipes of the lost
# listener are reachable only from it. A Direct leak made on NNG's thread
# is not excused: a message NNG received for us and that we never freed
# has exactly that stack. The caller (launcher/test/lib.sh) applies this
# to the broker's reports only.
function end_block() {
	if (inblock && !decided)
		bad = 1
	inblock = 0
}
/ERROR: LeakSanitizer: detected memory leaks/ { seen = 1; next }
/ERROR: |runtime error|WARNING: ThreadSanitizer|SUMMARY: UndefinedBehavior/ {
	bad = 1
	next
}
/^(Direct|Indirect) leak of / {
	end_block()
	inblock = 1
	decided = 0
	direct = ($1 == "Direct")
	blocks++
	next
}
/^[ \t]*$/ { end_block(); next }
inblock && /^[ \t]*#[0-9]+ / {
	if ($1 == "#0" || decided)
		next
	if ($0 ~ /libnng\.so/)
		next
	if ($0 ~ / in ipc_listen .*broker\/src\/net\.c/)
		decided = 1
	else if ($0 ~ / in start_thread / && !direct)
		decided = 1
	else {
		decided = 1
		bad = 1
	}
	next
}
END {
	end_block()
	exit (seen && blocks > 0 && !bad) ? 0 : 1
}
