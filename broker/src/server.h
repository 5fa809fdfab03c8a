// The broker server's lifecycle (internal).
#ifndef COPAL_BROKER_SERVER_H
#define COPAL_BROKER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copal/store.h"

typedef struct server server;

typedef struct server_opts {
	cpl_store *store;
	const char *db_dir;
	const char *ipc_url;
	const char *tcp_url;     // NULL: no TCP listener
	bool tcp_insecure;       // plain tcp:// allowed (see net.h)
	int max_conns;           // TCP connections at once; 0: automatic
	const uint8_t *token;    // the database secret (TCP clients send it)
	size_t token_len;
	int contexts;            // concurrent requests; 0: 256
	size_t max_msg;          // largest request; 0: 64 MiB
	bool no_selfcheck;
} server_opts;

int server_start(const server_opts *o, server **out);
// Stops: answers what is queued for the writer, closes the socket.
void server_stop(server *s);
uint64_t server_reopens(server *s);
// The TCP listener's bound URL (the port the kernel chose for :0), or
// NULL / "" without one.
const char *server_tcp_url(server *s);

#endif
