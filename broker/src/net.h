// The broker's network side (internal): the NNG REP socket, its IPC and
// TCP listeners, one context per concurrent request, peer checks, and the
// IPC listener self-check. Decoded and checked requests go to dispatch.
#ifndef COPAL_BROKER_NET_H
#define COPAL_BROKER_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"

typedef struct net net;

typedef struct net_opts {
	const char *ipc_url;
	const char *tcp_url;     // tls+tcp://HOST:PORT, or tcp:// if
	                         // tcp_insecure; NULL: no TCP listener
	bool tcp_insecure;       // plain tcp:// allowed
	const char *db_dir;      // where tls.crt and tls.key are
	int max_conns;           // TCP connections at once; 0: from the
	                         // descriptor limit
	const uint8_t *token;    // the database secret (TCP clients send it)
	size_t token_len;
	int contexts;            // concurrent requests; 0: 4096
	size_t max_msg;          // largest request; 0: 64 MiB
	bool no_selfcheck;
	const dispatch *disp;    // where requests go
} net_opts;

// Opens the socket, its contexts and listeners; nothing is received yet.
// Errors: CPL_EINVAL (also: plain tcp:// without tcp_insecure), CPL_ENOMEM (*out is then NULL), CPL_EEXISTS (the
// address is in use), CPL_ECONNECT (other failures; *out is then set, for
// net_close()).
int net_open(const net_opts *o, net **out);
// The listen URLs (TCP as bound, with the port the kernel chose for :0;
// "" without TCP). Valid until net_close().
const char *net_ipc_url(const net *n);
const char *net_tcp_url(const net *n);
// Starts receiving on every context, and the self-check.
void net_run(net *n);
// From now on, contexts drop what arrives; replies still go out.
void net_quiesce(net *n);
// Stops the self-check, closes the socket and frees n.
void net_close(net *n);
// The reply of r is ready: sends it on r's context (dispatch's callback).
void net_reply(dreq *r);
// The self-check's ping (selfping.c): connects to the IPC socket file at
// path, pings, and waits for the answer, all within timeout_ms. 0 when
// the broker answered (whatever the reply's status); -1 otherwise.
int net_selfping(const char *path, int timeout_ms);
// How often the self-check re-opened the IPC listener.
uint64_t net_reopens(net *n);

#endif
