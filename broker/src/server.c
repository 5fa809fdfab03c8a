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

// A commit may have made tasks claimable: held claims look again.
static void
claimable_cb(void *arg)
{
	park_wake(arg);
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
	// claims held open take at most half the contexts, and no more than
	// 128 (what half the former default of 256 gave): the rest stay for
	// reports, heartbeats and everyone else
	int nctx = o->contexts > 0 ? o->contexts : 256;
	size_t held = (size_t)nctx / 2 < 128 ? (size_t)nctx / 2 : 128;
	if (park_start(held, &s->disp.pk) != 0) {
		rv = CPL_ENOMEM;
		goto fail;
	}
	writer_on_claimable(s->disp.wr, claimable_cb, s->disp.pk);
	if ((s->disp.hb = hbtab_new()) == NULL) {
		rv = CPL_ENOMEM;
		goto fail;
	}
	writer_leases wl = { hbtab_writer_flush, hbtab_writer_done,
		s->disp.hb };
	writer_on_leases(s->disp.wr, &wl);
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
	// Held claims are answered (empty) first; one the writer holds
	// now is answered when it is done.
	net_quiesce(s->net);
	park_stop(s->disp.pk);
	if (s->disp.hb)
		hbtab_close(s->disp.hb);
	writer_stop(s->disp.wr);
	net_close(s->net);
	if (s->disp.wr) {
		writer_stats ws;
		writer_stats_get(s->disp.wr, &ws);
		LOG(LOG_NOTICE, "stop", "writer: %llu commits of %llu requests "
		    "(%llu answered from stored replies), %llu sweeps; %llu "
		    "heartbeats renewed in memory; %llu batches waited for "
		    "more; %llu run again nested",
		    (unsigned long long)ws.batches,
		    (unsigned long long)(ws.applied + ws.replayed),
		    (unsigned long long)ws.replayed,
		    (unsigned long long)ws.sweeps,
		    (unsigned long long)(s->disp.hb ? hbtab_renewed(s->disp.hb) :
		                                      0),
		    (unsigned long long)ws.gathered,
		    (unsigned long long)ws.redone);
	}
	writer_free(s->disp.wr);
	park_free(s->disp.pk);
	hbtab_free(s->disp.hb);
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
