// The broker's server: wires the network side (net.c), request dispatch
// (dispatch.c) and the single writer (writer.c) together, and starts and
// stops them in order.
#include <stdlib.h>
#include <time.h>

#include "broker.h"
#include "dispatch.h"
#include "net.h"
#include "server.h"
#include "writer.h"

struct server {
	struct broker_info info;
	dispatch disp;
	net *net;
};

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
server_start(const server_opts *o, server **out)
{
	server *s;
	int rv;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CPL_ENOMEM;
	s->info.started_us = now_us();
	s->info.db_dir = o->db_dir;
	s->disp.st = o->store;
	s->disp.info = &s->info;
	s->disp.reply = net_reply;
	net_opts no = {
		.ipc_url = o->ipc_url,
		.tcp_url = o->tcp_url,
		.tcp_insecure = o->tcp_insecure,
		.db_dir = o->db_dir,
		.max_conns = o->max_conns,
		.token = o->token,
		.token_len = o->token_len,
		.contexts = o->contexts,
		.max_msg = o->max_msg,
		.no_selfcheck = o->no_selfcheck,
		.disp = &s->disp,
	};
	if ((rv = net_open(&no, &s->net)) != 0) {
		if (s->net == NULL) {
			// nothing was opened
			free(s);
			return rv;
		}
		goto fail;
	}
	s->info.ipc_url = net_ipc_url(s->net);
	s->info.tcp_url = net_tcp_url(s->net);
	if (writer_start(o->store, &s->disp.wr) != 0) {
		rv = CPL_ECONNECT;
		goto fail;
	}
	net_run(s->net);
	*out = s;
	return 0;
fail:
	server_stop(s);
	return rv;
}

void
server_stop(server *s)
{
	if (s == NULL)
		return;
	// 1. no new requests: contexts drop what arrives from now on;
	// 2. the writer commits and answers what is queued, on contexts that
	//    are still open (sending on a closed socket's context is a bug
	//    NNG panics on);
	// 3. then the socket closes. A client that misses an answer resends
	//    to the next broker and gets the stored reply.
	net_quiesce(s->net);
	writer_stop(s->disp.wr);
	net_close(s->net);
	writer_free(s->disp.wr);
	LOG(LOG_NOTICE, "stop", "broker stopped");
	free(s);
}

uint64_t
server_reopens(server *s)
{
	return net_reopens(s->net);
}

const char *
server_tcp_url(server *s)
{
	return s->info.tcp_url;
}
