// The broker's network side: NNG REP contexts, the listeners, peer checks
// and the IPC listener self-check.
//
// Each context runs a small state machine on its aio: RECV -> (reads are
// answered at once from a short read transaction) -> SEND -> RECV, or
// RECV -> WAIT (queued for the writer) -> SEND -> RECV. Requests are read
// and checked here, then run by dispatch, which hands the reply back
// through net_reply().
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/ipc/ipc.h>

#include "broker.h"
#include "copal/version.h"
#include "net.h"
#include "peers.h"
#include "users.h"

enum { W_RECV, W_WAIT, W_SEND };

// How long a reply may wait for a peer that does not read.
#define SEND_TIMEOUT_MS 2000

struct work {
	net *n;
	nng_aio *aio;
	nng_ctx ctx;
	int state;
	int role;      // of the request being read
	budget bud;
	dreq r;
};

struct net {
	const dispatch *disp;
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
	pthread_t checker;
	bool checker_started;
	atomic_int stop;     // read by NNG's threads, the checker and the reaper
	uint8_t token[64];
	size_t token_len;
	uid_t uid;
	size_t max_msg;
	bool no_selfcheck;
	uint64_t reopens;
	// TCP: connection state, the reaper of idle peers, rate-limited
	// warnings by kind
	char db[PATH_MAX];
	bool tcp_insecure;
	peers *peers;     // every connection (local and TCP) and who it is
	users *users;     // who besides the owner may connect
	users_env uenv;
	pthread_t reaper;
	bool reaper_started;
	ratelog rl_token, rl_big, rl_cap, rl_idle, rl_size, rl_role, rl_uid,
	    rl_slow;
	// local connections NNG has finished closing (see checker_main)
	atomic_uint_fast64_t ipc_gone;
};

// ---------------------------------------------------------------- replies

static void
send_reply(struct work *w)
{
	nng_msg *m;
	// The decoded request is freed when the send completes, on an NNG
	// thread: freeing a 10,000-task request is ~100k free() calls that
	// must not hold up the writer.
	if (w->r.reply == NULL || nng_msg_alloc(&m, w->r.reply_len) != 0) {
		// nothing to send: drop the request, the client will retry
		free(w->r.reply);
		w->r.reply = NULL;
		if (w->r.req) {
			copal__request__free_unpacked(w->r.req, &w->bud.pa);
			w->r.req = NULL;
		}
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	memcpy(nng_msg_body(m), w->r.reply, w->r.reply_len);
	free(w->r.reply);
	w->r.reply = NULL;
	w->state = W_SEND;
	// A peer that stops reading must not hold this context for ever:
	// after the timeout its connection is closed (see work_cb).
	nng_aio_set_timeout(w->aio, SEND_TIMEOUT_MS);
	nng_aio_set_msg(w->aio, m);
	nng_ctx_send(w->ctx, w->aio);
}

// ---------------------------------------------------------------- contexts

static void
recv_next(struct work *w)
{
	w->state = W_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

// Authenticate first, decode second: a TCP request is read no further
// than its credentials (a walk over the request's top-level fields) until
// they hold the token. A peer that has not yet sent the token gets its
// connection closed on a frame over PEER_UNAUTH_MAX bytes without it, so
// that it cannot send another on the same connection (NNG has read the
// frame by then: under TLS only holders of the database's key get that
// far). Returns false when the request was answered or dropped here.
//
// The token names who sends the request: the database's own (the
// owner's launchers and programs: admin), or one made for a user by
// --add-user (compared by its digest). NNG 1.5.2 does not tell which
// certificate a TLS peer showed, so the token, sent with every request,
// is the user's identity, and its removal revokes the user at once.
static bool
tcp_admit(struct work *w, nng_msg *msg, nng_pipe p)
{
	net *s = w->n;
	size_t len = nng_msg_len(msg);
	const uint8_t *body = nng_msg_body(msg), *tok;
	size_t tlen;
	char addr[64];
	// every request carries the token, not only the first
	if (wire_token_ok(body, len, s->token, s->token_len)) {
		memcpy(w->r.user, users_owner(s->users), sizeof(w->r.user));
		w->role = ROLE_ADMIN;
		peers_set_ident(s->peers, p, w->r.user, w->role,
		    "owner token");
		return true;
	}
	if (wire_token(body, len, &tok, &tlen) &&
	    users_by_token(s->users, tok, tlen, w->r.user, &w->role)) {
		peers_set_ident(s->peers, p, w->r.user, w->role,
		    "user token");
		return true;
	}
	bool authed = peers_authed(s->peers, p);
	peer_addr(p, addr, sizeof(addr));
	if (!authed && len > PEER_UNAUTH_MAX) {
		ratelog_warn(&s->rl_big, "auth", "closed the connection of %s: "
		    "a %zu-byte request without the token before it sent the "
		    "token (at most %u bytes until one carries it)", addr, len,
		    PEER_UNAUTH_MAX);
		nng_msg_free(msg);
		nng_pipe_close(p);
		recv_next(w);
		return false;
	}
	uint64_t rid = wire_request_id(body, len);
	ratelog_warn(&s->rl_token, "auth", "refused a request from %s: "
	    "wrong or missing token", addr);
	nng_msg_free(msg);
	dispatch_error(&w->r, rid, CPL_EPERM, "wrong or missing token");
	send_reply(w);
	return false;
}

// A user request (user_add, ...): run here, where the connections are.
static void
users_request(struct work *w)
{
	net *s = w->n;
	Copal__Reply rep = COPAL__REPLY__INIT;
	char err[512] = "";
	arena *a = arena_new();
	int rv = CPL_ENOMEM;
	rep.version = 1;
	rep.request_id = w->r.req->request_id;
	if (a != NULL)
		rv = users_handle(&s->uenv, w->r.req, w->r.user, &rep, a, err,
		    sizeof(err));
	if (rv) {
		dispatch_error(&w->r, w->r.req->request_id, rv,
		    err[0] ? err : NULL);
	} else {
		size_t n = copal__reply__get_packed_size(&rep);
		free(w->r.reply);
		if ((w->r.reply = malloc(n ? n : 1)) != NULL) {
			copal__reply__pack(&rep, w->r.reply);
			w->r.reply_len = n;
		}
	}
	if (rv == 0 && rep.body_case == COPAL__REPLY__BODY_USER_ADD) {
		// the user's key and token are not kept past their packing
		Copal__UserAddReply *u = rep.user_add;
		explicit_bzero(u->key_pem, strlen(u->key_pem));
		explicit_bzero(u->token, strlen(u->token));
	}
	arena_free(a);
	send_reply(w);
}

// A request of someone whose role does not allow it: refused, naming the
// role that was missing.
static bool
role_refused(struct work *w, nng_pipe p)
{
	net *s = w->n;
	Copal__Request__BodyCase b = w->r.req->body_case;
	int need = role_needed(b);
	char msg[256], addr[64];
	if (w->role >= need)
		return false;
	peer_addr(p, addr, sizeof(addr));
	snprintf(msg, sizeof(msg), "user %s has role %s: %s needs role %s",
	    w->r.user, role_name(w->role), body_name(b), role_name(need));
	ratelog_warn(&s->rl_role, "auth", "refused a request from %s: %s",
	    addr, msg);
	dispatch_error(&w->r, w->r.req->request_id, CPL_EPERM, msg);
	send_reply(w);
	return true;
}

static void
handle_msg(struct work *w, nng_msg *msg)
{
	net *s = w->n;
	size_t len = nng_msg_len(msg);
	char err[512], addr[64];
	nng_pipe p = nng_msg_get_pipe(msg);
	w->r.user[0] = '\0';
	w->role = ROLE_NONE;
	if (s->have_tcp && nng_listener_id(nng_pipe_listener(p)) ==
	        nng_listener_id(s->tcp)) {
		if (!tcp_admit(w, msg, p))
			return;
	} else if (!peers_ident(s->peers, p, w->r.user, &w->role)) {
		// a local peer whose uid is not (or no longer) a user: it is
		// told so, and its connection stays until it closes it (see
		// pipe_cb for why the broker does not close it)
		uint64_t rid = wire_request_id(nng_msg_body(msg), len);
		uint64_t uid;
		nng_msg_free(msg);
		if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) == 0)
			snprintf(err, sizeof(err), "uid %llu is not a user of "
			    "this database", (unsigned long long)uid);
		else
			snprintf(err, sizeof(err), "not a user of this "
			    "database");
		dispatch_error(&w->r, rid, CPL_EPERM, err);
		send_reply(w);
		return;
	}
	// the transports take up to twice the limit, so that a request
	// over it gets an answer that says so (NNG drops larger frames
	// silently, closing the connection)
	if (len > s->max_msg) {
		uint64_t rid = wire_request_id(nng_msg_body(msg), len);
		peer_addr(p, addr, sizeof(addr));
		nng_msg_free(msg);
		ratelog_warn(&s->rl_size, "proto", "refused a %zu-byte request "
		    "from %s (at most %zu)", len, addr, s->max_msg);
		snprintf(err, sizeof(err), "request of %zu bytes: larger than "
		    "the broker's limit of %zu", len, s->max_msg);
		dispatch_error(&w->r, rid, CPL_ETOOBIG, err);
		send_reply(w);
		return;
	}
	// strings are checked on the wire, before protobuf-c decodes them
	// (it would cut a string at a NUL byte without a word)
	if (validate_wire(nng_msg_body(msg), len, err, sizeof(err)) != 0) {
		uint64_t rid = wire_request_id(nng_msg_body(msg), len);
		nng_msg_free(msg);
		LOG(LOG_WARN, "proto", "invalid request: %s", err);
		dispatch_error(&w->r, rid, CPL_EPROTO, err);
		send_reply(w);
		return;
	}
	// a budget of 32 bytes of memory per wire byte bounds the expansion
	wire_digest(nng_msg_body(msg), len, w->r.digest);
	budget_init(&w->bud, 32 * len + (1u << 20));
	w->r.req = copal__request__unpack(&w->bud.pa, len, nng_msg_body(msg));
	nng_msg_free(msg);
	if (w->r.req == NULL) {
		LOG(LOG_WARN, "proto", "undecodable request of %zu bytes", len);
		dispatch_error(&w->r, 0, CPL_EPROTO,
		    w->bud.exceeded ? "request expands past the memory limit" :
		                      "request is not a valid copal.Request");
		send_reply(w);
		return;
	}
	uint64_t reqid = w->r.req->request_id;
	if (validate_request(w->r.req, err, sizeof(err)) != 0) {
		LOG(LOG_WARN, "proto", "invalid request: %s", err);
		dispatch_error(&w->r, reqid, CPL_EPROTO, err);
		send_reply(w);
		return;
	}
	if (role_refused(w, p))
		return;
	if (users_body(w->r.req->body_case)) {
		users_request(w);
		return;
	}
	// a mutation waits for the writer; anything else is answered at
	// once, through net_reply()
	w->state = W_WAIT;
	dispatch_request(s->disp, &w->r);
}

void
net_reply(dreq *r)
{
	send_reply((struct work *)((char *)r - offsetof(struct work, r)));
}

static void
work_cb(void *arg)
{
	struct work *w = arg;
	int rv;
	switch (w->state) {
	case W_RECV:
		if ((rv = nng_aio_result(w->aio)) != 0) {
			if (rv == NNG_ECLOSED || atomic_load(&w->n->stop))
				return;
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		if (atomic_load(&w->n->stop)) {
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
				// every context whose reply waited on that
				// peer ends here: one line a second, not one
				// per context
				nng_pipe p = nng_msg_get_pipe(m);
				char addr[64];
				peer_addr(p, addr, sizeof(addr));
				ratelog_warn(&w->n->rl_slow, "slowpeer", "a "
				    "client (%s) does not read its replies: "
				    "closing its connection", addr);
				nng_pipe_close(p);
			}
			if (m)
				nng_msg_free(m);
		}
		if (w->r.req) {
			copal__request__free_unpacked(w->r.req, &w->bud.pa);
			w->r.req = NULL;
		}
		if (atomic_load(&w->n->stop))
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

// Refuses IPC connections from uids that are neither the owner's nor a
// listed user's (without users the socket is 0600 in a 0700 directory;
// with them 0666 in a 0711 one, and this is the wall): their requests get
// "not a user", and the connection is closed a few seconds later. Counts
// TCP connections and refused local ones, and closes those over the cap.
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	net *s = arg;
	uint64_t uid;
	char addr[64], user[USER_NAME_MAX + 1];
	int role;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0) {
		if (ev == NNG_PIPE_EV_REM_POST) {
			peers_remove(s->peers, p);
		} else if (ev == NNG_PIPE_EV_ADD_PRE && !peers_add(s->peers, p)) {
			peer_addr(p, addr, sizeof(addr));
			ratelog_warn(&s->rl_cap, "listen", "refused a connection "
			    "from %s: %d are open (broker_max_connections)",
			    addr, peers_count(s->peers));
			nng_pipe_close(p);
		}
		return;
	}
	if (ev == NNG_PIPE_EV_REM_POST) {
		peers_remove(s->peers, p);
		atomic_fetch_add(&s->ipc_gone, 1);
		return;
	}
	if (ev != NNG_PIPE_EV_ADD_PRE)
		return;
	if (!users_by_uid(s->users, uid, user, &role)) {
		// Not closed here: its requests are answered "not a user"
		// (handle_msg), so that the client says why and exits, and
		// peers_reap closes it PEER_AUTH_MS later. A pipe closed here
		// makes the client's dialer connect again at once, and one
		// that exits in the middle of such a connection stops NNG
		// 1.5.2's IPC listener accepting anyone (upstream #1518;
		// checker_main repairs it, seconds later). Such connections
		// count against broker_max_connections.
		if (!peers_add_refused(s->peers, p, uid)) {
			ratelog_warn(&s->rl_cap, "listen", "closed an IPC "
			    "connection from uid %llu, not a user of this "
			    "database: %d are open (broker_max_connections)",
			    (unsigned long long)uid, peers_count(s->peers));
			nng_pipe_close(p);
		} else {
			ratelog_warn(&s->rl_uid, "auth", "refused IPC "
			    "connection from uid %llu: not a user of this "
			    "database", (unsigned long long)uid);
		}
	} else if (!peers_add_ipc(s->peers, p, uid, user, role)) {
		LOG(LOG_WARN, "auth", "closed IPC connection from uid %llu: "
		    "out of memory", (unsigned long long)uid);
		nng_pipe_close(p);
	}
}

// The local socket's modes: open to other users only while some listed
// user has a uid (the peer-uid check above admits exactly those).
static void
ipc_modes(net *s, int *sock_mode)
{
	char dir[PATH_MAX];
	bool open = users_any_local(s->users);
	snprintf(dir, sizeof(dir), "%s", s->ipc_url + strlen("ipc://"));
	char *slash = strrchr(dir, '/');
	*sock_mode = open ? 0666 : 0600;
	if (slash != NULL) {
		*slash = '\0';
		if (chmod(dir, open ? 0711 : 0700) != 0)
			LOG(LOG_WARN, "listen", "cannot chmod %s: %s", dir,
			    strerror(errno));
	}
}

// The users changed: the socket's modes follow.
static void
users_changed(void *arg)
{
	net *s = arg;
	int mode;
	ipc_modes(s, &mode);
	(void)chmod(s->ipc_url + strlen("ipc://"), (mode_t)mode);
}

static int
ipc_listen(net *s)
{
	int rv;
	// we hold the database lock: any socket file left is stale
	unlink(s->ipc_url + strlen("ipc://"));
	if ((rv = nng_listener_create(&s->ipc, s->sock, s->ipc_url)) != 0)
		return rv;
	nng_listener_set_size(s->ipc, NNG_OPT_RECVMAXSZ, 2 * s->max_msg);
	int mode;
	ipc_modes(s, &mode);
	nng_listener_set_int(s->ipc, NNG_OPT_IPC_PERMISSIONS, mode);
	if ((rv = nng_listener_start(s->ipc, 0)) != 0) {
		nng_listener_close(s->ipc);
		return rv;
	}
	return 0;
}

// NNG 1.5.2 (upstream #1518): a peer that connects and closes at once can
// leave the IPC listener no longer accepting. Every few seconds a fresh
// connection pings the broker; after two failures in a row the listener is
// closed and opened again.
static void *
checker_main(void *arg)
{
	net *s = arg;
	pthread_setname_np(pthread_self(), "copal:checker");
	int fails = 0, unreaped = 0;
	bool said = false, pinged = false;
	uint64_t gone = 0;
	while (!atomic_load(&s->stop)) {
		for (int i = 0; i < 20 && !atomic_load(&s->stop); i++)
			usleep(100000);
		if (atomic_load(&s->stop))
			break;
		// NNG 1.5.2 frees a closed connection on one thread, its
		// reaper. A connection the broker closes while a request is
		// half read can leave that thread waiting forever on a read
		// that was dropped (tcp.c and ipc.c restart a partial read
		// without checking for a close); from then on no closed
		// connection is freed, and each keeps its descriptor. The
		// last self-ping's connection, closed by its end, is freed
		// within milliseconds otherwise.
		uint64_t g = atomic_load(&s->ipc_gone);
		if (g != gone)
			unreaped = 0;
		else if (pinged)
			unreaped++;
		if (unreaped >= 3 && !said) {
			LOG(LOG_ERR, "selfcheck", "NNG has freed none of the "
			    "connections closed in the last 6 s, the "
			    "self-check's own among them: its reaper is "
			    "likely stuck (an NNG 1.5.2 bug), and then each "
			    "connection that closes keeps its descriptor and "
			    "memory. Restart the broker when convenient "
			    "(copal server stop; copal server start): every "
			    "answered request is committed");
			said = true;
		}
		gone = g;
		pinged = net_selfping(s->ipc_url + strlen("ipc://"), 3000) == 0;
		if (pinged) {
			fails = 0;
			continue;
		}
		if (++fails < 2 || atomic_load(&s->stop))
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

// Drops TCP peers that have not sent the token in time, and local ones
// refused as not a user once their answer has gone.
static void *
reaper_main(void *arg)
{
	net *s = arg;
	pthread_setname_np(pthread_self(), "copal:reaper");
	while (!atomic_load(&s->stop)) {
		usleep(250000);
		if (!atomic_load(&s->stop))
			peers_reap(s->peers, &s->rl_idle);
	}
	return NULL;
}

// ---------------------------------------------------------------- lifecycle

// The TCP address clients can dial: the configured URL, with the port the
// kernel chose when it named port 0.
static void
bound_url(net *s)
{
	int port = 0;
	size_t n = strlen(s->tcp_url);
	snprintf(s->tcp_bound, sizeof(s->tcp_bound), "%s", s->tcp_url);
	if (n >= 2 && strcmp(s->tcp_url + n - 2, ":0") == 0 &&
	    nng_listener_get_int(s->tcp, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		snprintf(s->tcp_bound, sizeof(s->tcp_bound), "%.*s:%d",
		    (int)(n - 2), s->tcp_url, port);
}

// Descriptors kept for everything but TCP peers: IPC clients, the
// database, the log, NNG's own.
static int
conn_budget(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 10000;
	long n = (long)rl.rlim_cur, keep = n / 4 > 256 ? n / 4 : 256;
	return n - keep > 16 ? (int)(n - keep) : 16;
}

// Creates the TCP listener (not started): TLS with the database's
// certificate, or plain TCP when the user asked for it by name.
static int
tcp_listen(net *s, const net_opts *o)
{
	char err[PATH_MAX + 128];
	int rv;
	bool tls = strncmp(o->tcp_url, "tls+tcp://", 10) == 0;
	if (s->token_len == 0) {
		LOG(LOG_ERR, "listen", "TCP needs the database token");
		return NNG_EINVAL;
	}
	if (!tls && !(strncmp(o->tcp_url, "tcp://", 6) == 0 &&
	                 o->tcp_insecure)) {
		LOG(LOG_ERR, "listen", "cannot listen on %s: only tls+tcp://"
		    "HOST:PORT (plain tcp:// sends the token in clear; it needs "
		    "broker_tcp_insecure = true in copal.conf)", o->tcp_url);
		return NNG_EINVAL;
	}
	s->tcp_insecure = !tls;
	snprintf(s->tcp_url, sizeof(s->tcp_url), "%s", o->tcp_url);
	int max = peers_max(s->peers);
	if ((rv = nng_listener_create(&s->tcp, s->sock, s->tcp_url)) != 0) {
		LOG(LOG_ERR, "listen", "cannot listen on %s: %s", s->tcp_url,
		    nng_strerror(rv));
		return rv;
	}
	nng_listener_set_size(s->tcp, NNG_OPT_RECVMAXSZ, 2 * s->max_msg);
	if (tls && (rv = peers_tls_listen(s->tcp, s->db, err,
	                sizeof(err))) != 0) {
		LOG(LOG_ERR, "listen", "cannot listen on %s: %s", s->tcp_url,
		    err);
		return rv;
	}
	LOG(LOG_INFO, "listen", "%s: at most %d connections", s->tcp_url, max);
	return 0;
}

int
net_open(const net_opts *o, net **out)
{
	net *s;
	int rv;
	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CPL_ENOMEM;
	s->disp = o->disp;
	s->uid = getuid();
	s->max_msg = o->max_msg ? o->max_msg : (64u << 20);
	pthread_mutex_init(&s->rl_token.mx, NULL);
	pthread_mutex_init(&s->rl_big.mx, NULL);
	pthread_mutex_init(&s->rl_cap.mx, NULL);
	pthread_mutex_init(&s->rl_idle.mx, NULL);
	pthread_mutex_init(&s->rl_size.mx, NULL);
	pthread_mutex_init(&s->rl_role.mx, NULL);
	pthread_mutex_init(&s->rl_uid.mx, NULL);
	pthread_mutex_init(&s->rl_slow.mx, NULL);
	pthread_mutex_init(&s->lmx, NULL);
	snprintf(s->ipc_url, sizeof(s->ipc_url), "%s", o->ipc_url);
	if (o->token_len > sizeof(s->token)) {
		free(s);
		return CPL_EINVAL;
	}
	memcpy(s->token, o->token, o->token_len);
	s->token_len = o->token_len;
	*out = s;
	snprintf(s->db, sizeof(s->db), "%s", o->db_dir ? o->db_dir : ".");
	char uerr[PATH_MAX + 64];
	if ((rv = users_open(o->db_dir, &s->users, uerr, sizeof(uerr))) != 0) {
		LOG(LOG_ERR, "users", "%s", uerr);
		atomic_store(&s->stop, 1);
		return rv;
	}
	if (peers_new(o->max_conns > 0 ? o->max_conns : conn_budget(),
	        &s->peers) != 0) {
		atomic_store(&s->stop, 1);
		return CPL_ENOMEM;
	}
	s->uenv.u = s->users;
	s->uenv.ps = s->peers;
	s->uenv.db = s->db;
	s->uenv.changed = users_changed;
	s->uenv.arg = s;

	if ((rv = nng_rep0_open(&s->sock)) != 0)
		goto nngfail;
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 2 * s->max_msg);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, s);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_cb, s);
	s->nworks = o->contexts > 0 ? o->contexts : 4096;
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
		w->n = s;
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
		if ((rv = tcp_listen(s, o)) != 0)
			goto nngfail;
		if ((rv = nng_listener_start(s->tcp, 0)) != 0) {
			LOG(LOG_ERR, "listen", "cannot listen on %s: %s",
			    s->tcp_url, nng_strerror(rv));
			goto nngfail;
		}
		s->have_tcp = true;
		bound_url(s);
		if (s->tcp_insecure)
			LOG(LOG_WARN, "insecure", "%s is plain TCP "
			    "(broker_tcp_insecure = true): the token and every "
			    "request travel in clear, and clients cannot tell "
			    "this broker from another", s->tcp_bound);
	}
	s->no_selfcheck = o->no_selfcheck;
	return 0;
nngfail:
	atomic_store(&s->stop, 1);
	return rv == NNG_EADDRINUSE ? CPL_EEXISTS : rv == NNG_EINVAL ?
	    CPL_EINVAL : CPL_ECONNECT;
}

const char *
net_ipc_url(const net *s)
{
	return s->ipc_url;
}

const char *
net_tcp_url(const net *s)
{
	return s->tcp_bound;
}

void
net_run(net *s)
{
	for (int i = 0; i < s->nworks; i++) {
		s->works[i]->state = W_RECV;
		nng_ctx_recv(s->works[i]->ctx, s->works[i]->aio);
	}
	if (!s->no_selfcheck) {
		if (pthread_create(&s->checker, NULL, checker_main, s) == 0)
			s->checker_started = true;
	}
	if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0)
		s->reaper_started = true;
	LOG(LOG_NOTICE, "start", "copal-broker %s serving %s%s%s with %d "
	    "contexts", COPAL_VERSION, s->ipc_url, s->have_tcp ? " and " : "",
	    s->tcp_bound, s->nworks);
}

void
net_quiesce(net *s)
{
	if (s != NULL)
		atomic_store(&s->stop, 1);
}

// nng_close() waits for NNG's reaper to free every connection. When the
// reaper is stuck (NNG 1.5.2: see checker_main) it waits forever, and so
// would the broker's stop. By now the writer has committed and answered
// all it took, so the socket is closed on a thread of its own, and the
// broker waits for it at most NET_CLOSE_MS (a close takes milliseconds
// otherwise; `copal server stop` gives the broker 10 s in all).
#define NET_CLOSE_MS 3000

struct closing {
	nng_socket sock;
	pthread_mutex_t mx;
	pthread_cond_t cv;
	bool done;
};

static net *abandoned; // a net whose socket did not close

static void *
closer_main(void *arg)
{
	struct closing *c = arg;
	pthread_setname_np(pthread_self(), "copal:close");
	nng_close(c->sock);
	pthread_mutex_lock(&c->mx);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mx);
	return NULL;
}

static bool
close_socket(net *s)
{
	struct closing *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	pthread_t t;
	if (c == NULL) {
		nng_close(s->sock);
		return true;
	}
	c->sock = s->sock;
	pthread_mutex_init(&c->mx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t, NULL, closer_main, c) != 0) {
		nng_close(s->sock);
		c->done = true;
	} else {
		struct timespec end;
		clock_gettime(CLOCK_MONOTONIC, &end);
		end.tv_sec += NET_CLOSE_MS / 1000;
		pthread_mutex_lock(&c->mx);
		while (!c->done &&
		    pthread_cond_timedwait(&c->cv, &c->mx, &end) != ETIMEDOUT)
			;
		bool done = c->done;
		pthread_mutex_unlock(&c->mx);
		if (!done) {
			// the thread keeps c; the process ends soon
			pthread_detach(t);
			LOG(LOG_ERR, "stop", "NNG did not close the socket "
			    "within %d s (its reaper is stuck, an NNG 1.5.2 "
			    "bug): stopping without it; every answered "
			    "request is committed", NET_CLOSE_MS / 1000);
			return false;
		}
		pthread_join(t, NULL);
	}
	pthread_mutex_destroy(&c->mx);
	pthread_cond_destroy(&c->cv);
	free(c);
	return true;
}

void
net_close(net *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stop, 1);
	if (s->checker_started)
		pthread_join(s->checker, NULL);
	if (s->reaper_started)
		pthread_join(s->reaper, NULL);
	if (!close_socket(s)) {
		// The contexts are closed (nng_close does that before it
		// waits for the reaper), but a callback may still be
		// running, on a read transaction: waited for, as on the
		// normal path, before the caller frees the writer and
		// closes the store. NNG may still touch the rest: kept,
		// and reachable.
		for (int i = 0; s->works && i < s->nworks; i++)
			if (s->works[i] && s->works[i]->aio)
				nng_aio_stop(s->works[i]->aio);
		abandoned = s;
		unlink(s->ipc_url + strlen("ipc://"));
		explicit_bzero(s->token, sizeof(s->token));
		return;
	}
	for (int i = 0; s->works && i < s->nworks; i++) {
		struct work *w = s->works[i];
		if (w == NULL)
			continue;
		if (w->aio) {
			nng_aio_stop(w->aio);
			nng_aio_free(w->aio);
		}
		if (w->r.req)
			copal__request__free_unpacked(w->r.req, &w->bud.pa);
		free(w->r.reply);
		free(w);
	}
	free(s->works);
	unlink(s->ipc_url + strlen("ipc://"));
	pthread_mutex_destroy(&s->lmx);
	peers_free(s->peers);
	users_free(s->users);
	explicit_bzero(s->token, sizeof(s->token));
	free(s);
}

uint64_t
net_reopens(net *s)
{
	return s->reopens;
}
