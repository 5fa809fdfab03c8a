// The broker's server: NNG REP contexts, the writer thread with group
// commit, the lease sweeper and the IPC listener self-check.
//
// Each context runs a small state machine on its aio: RECV -> (reads are
// answered at once from a short read transaction) -> SEND -> RECV, or
// RECV -> WAIT (queued for the writer) -> SEND -> RECV. The writer takes
// every queued request, applies each in a nested transaction of one write
// transaction, commits once, and only then sends the replies.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/transport/ipc/ipc.h>

#include "broker.h"
#include "copal/version.h"
#include "server.h"

enum { W_RECV, W_WAIT, W_SEND };

// How long a reply may wait for a peer that does not read.
#define SEND_TIMEOUT_MS 2000

struct work {
	server *srv;
	nng_aio *aio;
	nng_ctx ctx;
	int state;
	budget bud;
	Copal__Request *req;
	const handler *h;
	uint8_t *reply;
	size_t reply_len;
	struct work *next;
};

struct server {
	cpl_store *st;
	nng_socket sock;
	nng_listener ipc;
	nng_listener tcp;
	bool have_tcp;
	pthread_mutex_t lmx; // guards the ipc listener during a re-open
	char ipc_url[PATH_MAX + 16];
	char tcp_url[256];
	char tcp_bound[280]; // tcp_url with the port the kernel gave for :0
	struct work **works;
	int nworks;
	pthread_mutex_t qmx;
	pthread_cond_t qcv;
	struct work *qhead, *qtail;
	pthread_t writer, checker;
	bool writer_started, checker_started;
	volatile int stop;
	uint8_t token[64];
	size_t token_len;
	struct server_info info;
	uid_t uid;
	size_t max_msg;
	uint64_t reopens;
};

const struct server_info *
server_info(server *s)
{
	return &s->info;
}

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

// ---------------------------------------------------------------- replies

// Packs a reply into a malloc'd buffer.
static int
pack_reply(const Copal__Reply *rep, uint8_t **buf, size_t *len)
{
	size_t n = copal__reply__get_packed_size(rep);
	uint8_t *b = malloc(n ? n : 1);
	if (b == NULL)
		return CPL_ENOMEM;
	copal__reply__pack(rep, b);
	*buf = b;
	*len = n;
	return 0;
}

// A reply with only a status and a message.
static void
error_reply(struct work *w, uint64_t reqid, int status, const char *msg)
{
	Copal__Reply rep = COPAL__REPLY__INIT;
	rep.version = 1;
	rep.request_id = reqid;
	rep.status = (uint32_t)status;
	rep.error = (char *)(msg ? msg : cpl_strerror(status));
	free(w->reply);
	w->reply = NULL;
	w->reply_len = 0;
	(void)pack_reply(&rep, &w->reply, &w->reply_len);
}

static void
send_reply(struct work *w)
{
	nng_msg *m;
	// The decoded request is freed when the send completes, on an NNG
	// thread: freeing a 10,000-task request is ~100k free() calls that
	// must not hold up the writer.
	if (w->reply == NULL || nng_msg_alloc(&m, w->reply_len) != 0) {
		// nothing to send: drop the request, the client will retry
		free(w->reply);
		w->reply = NULL;
		if (w->req) {
			copal__request__free_unpacked(w->req, &w->bud.pa);
			w->req = NULL;
		}
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	memcpy(nng_msg_body(m), w->reply, w->reply_len);
	free(w->reply);
	w->reply = NULL;
	w->state = W_SEND;
	// A peer that stops reading must not hold this context for ever:
	// after the timeout its connection is closed (see work_cb).
	nng_aio_set_timeout(w->aio, SEND_TIMEOUT_MS);
	nng_aio_set_msg(w->aio, m);
	nng_ctx_send(w->ctx, w->aio);
}

// Runs a handler and packs its reply into w->reply. For mutations txn is
// the writer's nested transaction; for reads a read snapshot.
static int
run_handler(struct work *w, cpl_txn *txn, int *status)
{
	hctx h;
	Copal__Reply rep = COPAL__REPLY__INIT;
	memset(&h, 0, sizeof(h));
	h.srv = w->srv;
	h.req = w->req;
	h.rep = &rep;
	if ((h.a = arena_new()) == NULL)
		return CPL_ENOMEM;
	rep.version = 1;
	rep.request_id = w->req->request_id;
	int rv = w->h->fn(&h, txn);
	rep.status = (uint32_t)rv;
	if (rv != 0) {
		// a failed request answers with its error only
		rep.body_case = COPAL__REPLY__BODY__NOT_SET;
		rep.error = h.err[0] ? h.err : (char *)cpl_strerror(rv);
	}
	free(w->reply);
	w->reply = NULL;
	int prv = pack_reply(&rep, &w->reply, &w->reply_len);
	arena_free(h.a);
	*status = rv;
	return prv;
}

struct read_arg {
	struct work *w;
	int status;
};

static int
read_cb(cpl_txn *txn, void *arg)
{
	struct read_arg *ra = arg;
	return run_handler(ra->w, txn, &ra->status);
}

// ---------------------------------------------------------------- writer

struct batch {
	server *srv;
	struct work *list;
	size_t n, applied, replayed;
};

static int
sub_cb(cpl_txn *txn, void *arg)
{
	struct work *w = arg;
	int status = 0;
	int rv = run_handler(w, txn, &status);
	if (rv)
		return rv;
	// a refused request is undone; its error reply is kept
	return status;
}

static int
batch_cb(cpl_txn *txn, void *arg)
{
	struct batch *b = arg;
	int rv;
	b->applied = b->replayed = 0;
	for (struct work *w = b->list; w; w = w->next) {
		uint64_t reqid = w->req->request_id;
		const void *old;
		size_t oldlen;
		if (reqid != 0 && cpl_reply_get(txn, reqid, &old, &oldlen) == 0) {
			// a resent request: answer as the first time
			free(w->reply);
			w->reply = malloc(oldlen ? oldlen : 1);
			if (w->reply == NULL)
				return CPL_ENOMEM;
			memcpy(w->reply, old, oldlen);
			w->reply_len = oldlen;
			b->replayed++;
			continue;
		}
		if ((rv = cpl_txn_error(txn)) != 0)
			return rv;
		rv = cpl_txn_sub(txn, sub_cb, w);
		if (cpl_txn_error(txn) != 0)
			return cpl_txn_error(txn);
		if (w->reply == NULL) {
			// run_handler could not even pack a reply
			error_reply(w, reqid, rv ? rv : CPL_ENOMEM, NULL);
			if (w->reply == NULL)
				return CPL_ENOMEM;
		}
		if (reqid != 0 &&
		    (rv = cpl_reply_put(txn, reqid, w->reply, w->reply_len)) != 0)
			return rv;
		b->applied++;
	}
	return 0;
}

struct sweep {
	uint64_t nleases, ntasks;
	size_t pruned;
};

static int
sweep_cb(cpl_txn *txn, void *arg)
{
	struct sweep *sw = arg;
	int rv;
	if ((rv = cpl_lease_expire(txn, &sw->nleases, &sw->ntasks)) != 0)
		return rv;
	// replies are kept for resends for ten minutes
	uint64_t now = cpl_txn_now(txn);
	if (now > 600000000u)
		rv = cpl_reply_prune(txn, now - 600000000u, 10000, &sw->pruned);
	return rv;
}

static void
do_sweep(server *s)
{
	struct sweep sw = { 0, 0, 0 };
	int rv = cpl_store_write(s->st, sweep_cb, &sw);
	if (rv)
		LOG(LOG_ERR, "sweep", "lease sweep failed: %s", cpl_strerror(rv));
	else if (sw.nleases)
		LOG(LOG_NOTICE, "lease", "expired %llu lease(s) holding %llu task(s)",
		    (unsigned long long)sw.nleases,
		    (unsigned long long)sw.ntasks);
}

static void *
writer_main(void *arg)
{
	server *s = arg;
	uint64_t last_sweep = 0;
	pthread_mutex_lock(&s->qmx);
	for (;;) {
		while (s->qhead == NULL && !s->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 250 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&s->qcv, &s->qmx, &ts);
			if (cpl_mono_us() - last_sweep > 1000000u)
				break;
		}
		struct work *list = s->qhead;
		s->qhead = s->qtail = NULL;
		bool stop = s->stop;
		pthread_mutex_unlock(&s->qmx);

		if (list) {
			struct batch b = { s, list, 0, 0, 0 };
			int rv = cpl_store_write(s->st, batch_cb, &b);
			if (rv) {
				LOG(LOG_ERR, "commit", "group commit failed: %s",
				    cpl_strerror(rv));
				for (struct work *w = list; w; w = w->next)
					error_reply(w, w->req->request_id, rv,
					    NULL);
			}
			for (struct work *w = list, *n; w; w = n) {
				n = w->next;
				w->next = NULL;
				send_reply(w);
			}
		}
		if (cpl_mono_us() - last_sweep > 1000000u) {
			do_sweep(s);
			last_sweep = cpl_mono_us();
		}
		pthread_mutex_lock(&s->qmx);
		if (stop && s->qhead == NULL)
			break;
	}
	pthread_mutex_unlock(&s->qmx);
	return NULL;
}

static void
enqueue(server *s, struct work *w)
{
	pthread_mutex_lock(&s->qmx);
	w->next = NULL;
	if (s->qtail)
		s->qtail->next = w;
	else
		s->qhead = w;
	s->qtail = w;
	pthread_cond_signal(&s->qcv);
	pthread_mutex_unlock(&s->qmx);
}

// ---------------------------------------------------------------- contexts

static bool
token_ok(server *s, const Copal__Request *req)
{
	if (s->token_len == 0 || req->credentials == NULL ||
	    req->credentials->token.len != s->token_len)
		return false;
	// constant time: no early exit on the first differing byte
	unsigned char diff = 0;
	for (size_t i = 0; i < s->token_len; i++)
		diff |= req->credentials->token.data[i] ^ s->token[i];
	return diff == 0;
}

static void
handle_msg(struct work *w, nng_msg *msg)
{
	server *s = w->srv;
	size_t len = nng_msg_len(msg);
	char err[512];
	bool over_tcp = false;
	if (s->have_tcp) {
		nng_pipe p = nng_msg_get_pipe(msg);
		nng_listener l = nng_pipe_listener(p);
		over_tcp = nng_listener_id(l) == nng_listener_id(s->tcp);
	}
	// strings are checked on the wire, before protobuf-c decodes them
	// (it would cut a string at a NUL byte without a word)
	if (validate_wire(nng_msg_body(msg), len, err, sizeof(err)) != 0) {
		uint64_t rid = wire_request_id(nng_msg_body(msg), len);
		nng_msg_free(msg);
		LOG(LOG_WARN, "proto", "invalid request: %s", err);
		error_reply(w, rid, CPL_EPROTO, err);
		send_reply(w);
		return;
	}
	// a budget of 32 bytes of memory per wire byte bounds the expansion
	budget_init(&w->bud, 32 * len + (1u << 20));
	w->req = copal__request__unpack(&w->bud.pa, len, nng_msg_body(msg));
	nng_msg_free(msg);
	if (w->req == NULL) {
		LOG(LOG_WARN, "proto", "undecodable request of %zu bytes", len);
		error_reply(w, 0, CPL_EPROTO,
		    w->bud.exceeded ? "request expands past the memory limit" :
		                      "request is not a valid copal.Request");
		send_reply(w);
		return;
	}
	uint64_t reqid = w->req->request_id;
	if (validate_request(w->req, err, sizeof(err)) != 0) {
		LOG(LOG_WARN, "proto", "invalid request: %s", err);
		error_reply(w, reqid, CPL_EPROTO, err);
		send_reply(w);
		return;
	}
	if (over_tcp && !token_ok(s, w->req)) {
		LOG(LOG_WARN, "auth", "request over TCP with a wrong token");
		error_reply(w, reqid, CPL_EPERM, "wrong or missing token");
		send_reply(w);
		return;
	}
	w->h = handler_find(w->req->body_case);
	if (w->h == NULL) {
		error_reply(w, reqid, CPL_EPROTO, "unknown request");
		send_reply(w);
		return;
	}
	LOG(LOG_DEBUG, "request", "%s id %llx", w->h->name,
	    (unsigned long long)reqid);
	if (w->h->mutates) {
		w->state = W_WAIT;
		enqueue(s, w);
		return;
	}
	struct read_arg ra = { w, 0 };
	int rv = cpl_store_read(s->st, read_cb, &ra);
	if (rv != 0 && w->reply == NULL)
		error_reply(w, reqid, rv, NULL);
	send_reply(w);
}

static void
work_cb(void *arg)
{
	struct work *w = arg;
	int rv;
	switch (w->state) {
	case W_RECV:
		if ((rv = nng_aio_result(w->aio)) != 0) {
			if (rv == NNG_ECLOSED || w->srv->stop)
				return;
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		if (w->srv->stop) {
			// shutting down: the client will resend elsewhere
			nng_msg_free(nng_aio_get_msg(w->aio));
			return;
		}
		handle_msg(w, nng_aio_get_msg(w->aio));
		break;
	case W_SEND:
		if ((rv = nng_aio_result(w->aio)) != 0) {
			nng_msg *m = nng_aio_get_msg(w->aio);
			if (rv == NNG_ETIMEDOUT && m != NULL) {
				nng_pipe p = nng_msg_get_pipe(m);
				LOG(LOG_WARN, "slowpeer", "a client does not read "
				    "its replies: closing its connection");
				nng_pipe_close(p);
			}
			if (m)
				nng_msg_free(m);
		}
		if (w->req) {
			copal__request__free_unpacked(w->req, &w->bud.pa);
			w->req = NULL;
		}
		if (w->srv->stop)
			return;
		w->state = W_RECV;
		nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
		nng_ctx_recv(w->ctx, w->aio);
		break;
	default:
		break;
	}
}

// ---------------------------------------------------------------- listeners

// Closes IPC connections from other users (the socket is 0600 in a 0700
// directory; this is the second wall).
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	server *s = arg;
	uint64_t uid;
	(void)ev;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0)
		return; // not IPC
	if (uid != (uint64_t)s->uid) {
		LOG(LOG_WARN, "auth", "closed IPC connection from uid %llu",
		    (unsigned long long)uid);
		nng_pipe_close(p);
	}
}

static int
ipc_listen(server *s)
{
	int rv;
	// we hold the database lock: any socket file left is stale
	unlink(s->ipc_url + strlen("ipc://"));
	if ((rv = nng_listener_create(&s->ipc, s->sock, s->ipc_url)) != 0)
		return rv;
	nng_listener_set_size(s->ipc, NNG_OPT_RECVMAXSZ, s->max_msg);
	nng_listener_set_int(s->ipc, NNG_OPT_IPC_PERMISSIONS, 0600);
	if ((rv = nng_listener_start(s->ipc, 0)) != 0) {
		nng_listener_close(s->ipc);
		return rv;
	}
	return 0;
}

// One health check: a new connection that pings and waits for the answer.
static int
self_ping(server *s)
{
	nng_socket c;
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__PingRequest ping = COPAL__PING_REQUEST__INIT;
	uint8_t buf[64];
	void *rbuf = NULL;
	size_t rlen;
	int rv;
	req.version = 1;
	req.body_case = COPAL__REQUEST__BODY_PING;
	req.ping = &ping;
	size_t n = copal__request__pack(&req, buf);
	if ((rv = nng_req0_open(&c)) != 0)
		return rv;
	nng_socket_set_ms(c, NNG_OPT_RECVTIMEO, 3000);
	nng_socket_set_ms(c, NNG_OPT_SENDTIMEO, 3000);
	if ((rv = nng_dial(c, s->ipc_url, NULL, 0)) == 0 &&
	    (rv = nng_send(c, buf, n, 0)) == 0 &&
	    (rv = nng_recv(c, &rbuf, &rlen, NNG_FLAG_ALLOC)) == 0)
		nng_free(rbuf, rlen);
	nng_close(c);
	return rv;
}

// NNG 1.5.2 (upstream #1518): a peer that connects and closes at once can
// leave the IPC listener no longer accepting. Every few seconds a fresh
// connection pings the broker; after two failures in a row the listener is
// closed and opened again.
static void *
checker_main(void *arg)
{
	server *s = arg;
	int fails = 0;
	while (!s->stop) {
		for (int i = 0; i < 20 && !s->stop; i++)
			usleep(100000);
		if (s->stop)
			break;
		if (self_ping(s) == 0) {
			fails = 0;
			continue;
		}
		if (++fails < 2 || s->stop)
			continue;
		LOG(LOG_WARN, "selfcheck",
		    "IPC listener does not answer new connections: re-opening");
		pthread_mutex_lock(&s->lmx);
		nng_listener_close(s->ipc);
		int rv = ipc_listen(s);
		pthread_mutex_unlock(&s->lmx);
		if (rv)
			LOG(LOG_ERR, "selfcheck", "re-open of %s failed: %s",
			    s->ipc_url, nng_strerror(rv));
		s->reopens++;
		fails = 0;
	}
	return NULL;
}

// ---------------------------------------------------------------- lifecycle

// The TCP address clients can dial: the configured URL, with the port the
// kernel chose when it named port 0.
static void
bound_url(server *s)
{
	int port = 0;
	size_t n = strlen(s->tcp_url);
	snprintf(s->tcp_bound, sizeof(s->tcp_bound), "%s", s->tcp_url);
	if (n >= 2 && strcmp(s->tcp_url + n - 2, ":0") == 0 &&
	    nng_listener_get_int(s->tcp, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		snprintf(s->tcp_bound, sizeof(s->tcp_bound), "%.*s:%d",
		    (int)(n - 2), s->tcp_url, port);
}

int
server_start(const server_opts *o, server **out)
{
	server *s;
	int rv;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CPL_ENOMEM;
	s->st = o->store;
	s->uid = getuid();
	s->max_msg = o->max_msg ? o->max_msg : (64u << 20);
	s->info.started_us = now_us();
	s->info.db_dir = o->db_dir;
	pthread_mutex_init(&s->qmx, NULL);
	pthread_cond_init(&s->qcv, NULL);
	pthread_mutex_init(&s->lmx, NULL);
	snprintf(s->ipc_url, sizeof(s->ipc_url), "%s", o->ipc_url);
	if (o->token_len > sizeof(s->token)) {
		free(s);
		return CPL_EINVAL;
	}
	memcpy(s->token, o->token, o->token_len);
	s->token_len = o->token_len;

	if ((rv = nng_rep0_open(&s->sock)) != 0)
		goto nngfail;
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->max_msg);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, s);
	s->nworks = o->contexts > 0 ? o->contexts : 256;
	s->works = calloc((size_t)s->nworks, sizeof(*s->works));
	if (s->works == NULL) {
		rv = NNG_ENOMEM;
		goto nngfail;
	}
	for (int i = 0; i < s->nworks; i++) {
		struct work *w = calloc(1, sizeof(*w));
		if (w == NULL) {
			rv = NNG_ENOMEM;
			goto nngfail;
		}
		w->srv = s;
		s->works[i] = w;
		if ((rv = nng_aio_alloc(&w->aio, work_cb, w)) != 0 ||
		    (rv = nng_ctx_open(&w->ctx, s->sock)) != 0)
			goto nngfail;
	}
	if ((rv = ipc_listen(s)) != 0) {
		LOG(LOG_ERR, "listen", "cannot listen on %s: %s", s->ipc_url,
		    nng_strerror(rv));
		goto nngfail;
	}
	if (o->tcp_url && o->tcp_url[0]) {
		if (s->token_len == 0) {
			LOG(LOG_ERR, "listen", "TCP needs the database token");
			rv = NNG_EINVAL;
			goto nngfail;
		}
		snprintf(s->tcp_url, sizeof(s->tcp_url), "%s", o->tcp_url);
		if ((rv = nng_listener_create(&s->tcp, s->sock, s->tcp_url)) != 0)
			goto nngfail;
		nng_listener_set_size(s->tcp, NNG_OPT_RECVMAXSZ, s->max_msg);
		if ((rv = nng_listener_start(s->tcp, 0)) != 0) {
			LOG(LOG_ERR, "listen", "cannot listen on %s: %s",
			    s->tcp_url, nng_strerror(rv));
			goto nngfail;
		}
		s->have_tcp = true;
		bound_url(s);
	}
	s->info.ipc_url = s->ipc_url;
	s->info.tcp_url = s->tcp_bound;
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		rv = NNG_ENOMEM;
		goto nngfail;
	}
	s->writer_started = true;
	for (int i = 0; i < s->nworks; i++) {
		s->works[i]->state = W_RECV;
		nng_ctx_recv(s->works[i]->ctx, s->works[i]->aio);
	}
	if (!o->no_selfcheck) {
		if (pthread_create(&s->checker, NULL, checker_main, s) == 0)
			s->checker_started = true;
	}
	LOG(LOG_NOTICE, "start", "copal-broker %s serving %s%s%s with %d "
	    "contexts", COPAL_VERSION, s->ipc_url, s->have_tcp ? " and " : "",
	    s->tcp_bound, s->nworks);
	*out = s;
	return 0;
nngfail:
	s->stop = 1;
	server_stop(s);
	return rv == NNG_EADDRINUSE ? CPL_EEXISTS : CPL_ECONNECT;
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
	pthread_mutex_lock(&s->qmx);
	s->stop = 1;
	pthread_cond_broadcast(&s->qcv);
	pthread_mutex_unlock(&s->qmx);
	if (s->checker_started)
		pthread_join(s->checker, NULL);
	if (s->writer_started)
		pthread_join(s->writer, NULL);
	nng_close(s->sock);
	for (int i = 0; s->works && i < s->nworks; i++) {
		struct work *w = s->works[i];
		if (w == NULL)
			continue;
		if (w->aio) {
			nng_aio_stop(w->aio);
			nng_aio_free(w->aio);
		}
		if (w->req)
			copal__request__free_unpacked(w->req, &w->bud.pa);
		free(w->reply);
		free(w);
	}
	free(s->works);
	unlink(s->ipc_url + strlen("ipc://"));
	pthread_mutex_destroy(&s->qmx);
	pthread_cond_destroy(&s->qcv);
	pthread_mutex_destroy(&s->lmx);
	LOG(LOG_NOTICE, "stop", "broker stopped");
	free(s);
}

uint64_t
server_reopens(server *s)
{
	return s->reopens;
}
