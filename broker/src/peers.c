// The broker's peers: connection state by NNG pipe id (who it is, its
// role, since when, how many requests), the cap on TCP connections, the
// drop of TCP peers that do not authenticate in time, rate-limited
// warnings and the listener's TLS configuration.
//
// NNG 1.5.2 cannot give one connection its own receive limit, and a pipe
// cannot tell which client certificate it saw: a TCP connection is
// "authenticated" once one of its requests carried the database token or
// a user's (checked on the wire bytes, before anything is decoded), and
// until then net.c closes it on any frame larger than PEER_UNAUTH_MAX. A
// local connection is known by its peer uid from the start.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/transport/tls/tls.h>

#include "broker.h"
#include "copal/dbdir.h"
#include "peers.h"

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------- ratelog

void
ratelog_warn(ratelog *r, const char *id, const char *fmt, ...)
{
	char line[512];
	int64_t now = mono_ms() / 1000;
	uint64_t left_out;
	pthread_mutex_lock(&r->mx);
	if (r->last_s == now && r->last_s != 0) {
		r->suppressed++;
		pthread_mutex_unlock(&r->mx);
		return;
	}
	r->last_s = now;
	left_out = r->suppressed;
	r->suppressed = 0;
	pthread_mutex_unlock(&r->mx);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (left_out)
		LOG(LOG_WARN, id, "%s (and %llu more like it since the last "
		    "line)", line, (unsigned long long)left_out);
	else
		LOG(LOG_WARN, id, "%s", line);
}

void
peer_addr(nng_pipe p, char *buf, size_t len)
{
	nng_sockaddr sa;
	char a[INET6_ADDRSTRLEN];
	snprintf(buf, len, "?");
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	switch (sa.s_family) {
	case NNG_AF_INET:
		if (inet_ntop(AF_INET, &sa.s_in.sa_addr, a, sizeof(a)))
			snprintf(buf, len, "%s:%u", a, ntohs(sa.s_in.sa_port));
		break;
	case NNG_AF_INET6:
		if (inet_ntop(AF_INET6, sa.s_in6.sa_addr, a, sizeof(a)))
			snprintf(buf, len, "[%s]:%u", a,
			    ntohs(sa.s_in6.sa_port));
		break;
	case NNG_AF_IPC:
		snprintf(buf, len, "ipc");
		break;
	default:
		break;
	}
}

// ---------------------------------------------------------------- peers

#define NBUCKETS 4096

struct peer {
	uint32_t id;
	bool authed;
	bool ipc;           // local socket: not counted against max...
	bool refused;       // ...unless its uid is not a user (peers_reap
	                    // closes it once its answer has gone)
	int64_t since_ms;
	uint64_t since_us;  // wall clock, for the list of connections
	int64_t uid;        // the peer's uid on the local socket, else -1
	int role;
	const char *cred;   // how it proved who it is (static text)
	char user[PEER_USER_MAX + 1];
	uint64_t requests;
	struct peer *next;
};

struct peers {
	pthread_mutex_t mx;
	int max, count;
	struct peer *b[NBUCKETS];
};

int
peers_new(int max, peers **out)
{
	peers *ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return CPL_ENOMEM;
	pthread_mutex_init(&ps->mx, NULL);
	ps->max = max > 0 ? max : 1;
	*out = ps;
	return 0;
}

void
peers_free(peers *ps)
{
	if (ps == NULL)
		return;
	for (int i = 0; i < NBUCKETS; i++) {
		struct peer *e, *n;
		for (e = ps->b[i]; e; e = n) {
			n = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&ps->mx);
	free(ps);
}

static struct peer **
slot(peers *ps, uint32_t id)
{
	struct peer **pp = &ps->b[(id * 2654435761u) % NBUCKETS];
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static uint64_t
wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool
add(peers *ps, nng_pipe p, bool ipc, bool refused, int64_t uid,
    const char *user, int role)
{
	uint32_t id = (uint32_t)nng_pipe_id(p);
	struct peer *e = calloc(1, sizeof(*e));
	bool ok = false;
	if (e == NULL)
		return false;
	e->id = id;
	e->ipc = ipc;
	e->refused = refused;
	e->authed = ipc && !refused;
	e->uid = uid;
	e->role = role;
	e->cred = ipc ? "peer uid" : "";
	snprintf(e->user, sizeof(e->user), "%s", user ? user : "");
	e->since_ms = mono_ms();
	e->since_us = wall_us();
	pthread_mutex_lock(&ps->mx);
	bool counted = !e->authed;
	if ((!counted || ps->count < ps->max) && *slot(ps, id) == NULL) {
		e->next = ps->b[(id * 2654435761u) % NBUCKETS];
		ps->b[(id * 2654435761u) % NBUCKETS] = e;
		if (counted)
			ps->count++;
		ok = true;
	}
	pthread_mutex_unlock(&ps->mx);
	if (!ok)
		free(e);
	return ok;
}

bool
peers_add(peers *ps, nng_pipe p)
{
	return add(ps, p, false, false, -1, NULL, 0);
}

bool
peers_add_ipc(peers *ps, nng_pipe p, uint64_t uid, const char *user,
    int role)
{
	return add(ps, p, true, false, (int64_t)uid, user, role);
}

bool
peers_add_refused(peers *ps, nng_pipe p, uint64_t uid)
{
	return add(ps, p, true, true, (int64_t)uid, NULL, 0);
}

void
peers_remove(peers *ps, nng_pipe p)
{
	uint32_t id = (uint32_t)nng_pipe_id(p);
	struct peer *e;
	pthread_mutex_lock(&ps->mx);
	struct peer **pp = slot(ps, id);
	if ((e = *pp) != NULL) {
		*pp = e->next;
		if (!e->ipc || e->refused)
			ps->count--;
	}
	pthread_mutex_unlock(&ps->mx);
	free(e);
}

bool
peers_ident(peers *ps, nng_pipe p, char *user, int *role)
{
	bool found = false;
	pthread_mutex_lock(&ps->mx);
	struct peer *e = *slot(ps, (uint32_t)nng_pipe_id(p));
	if (e != NULL && e->authed) {
		memcpy(user, e->user, sizeof(e->user));
		*role = e->role;
		e->requests++;
		found = true;
	}
	pthread_mutex_unlock(&ps->mx);
	return found;
}

void
peers_set_ident(peers *ps, nng_pipe p, const char *user, int role,
    const char *cred)
{
	pthread_mutex_lock(&ps->mx);
	struct peer *e = *slot(ps, (uint32_t)nng_pipe_id(p));
	if (e) {
		e->authed = true;
		e->requests++;
		// the same name most of the time: no copy then
		if (e->role != role || strcmp(e->user, user) != 0) {
			snprintf(e->user, sizeof(e->user), "%s", user);
			e->role = role;
			e->cred = cred;
		}
	}
	pthread_mutex_unlock(&ps->mx);
}

size_t
peers_list(peers *ps, peer_info *out, size_t cap)
{
	size_t n = 0;
	pthread_mutex_lock(&ps->mx);
	for (int i = 0; i < NBUCKETS; i++)
		for (struct peer *e = ps->b[i]; e; e = e->next) {
			if (n < cap) {
				peer_info *o = &out[n];
				o->id = e->id;
				o->ipc = e->ipc;
				o->uid = e->uid;
				o->role = e->role;
				o->cred = e->cred;
				o->since_us = e->since_us;
				o->requests = e->requests;
				memcpy(o->user, e->user, sizeof(o->user));
			}
			n++;
		}
	pthread_mutex_unlock(&ps->mx);
	return n;
}

int
peers_close_user(peers *ps, const char *user)
{
	uint32_t *ids = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&ps->mx);
	for (int i = 0; i < NBUCKETS; i++)
		for (struct peer *e = ps->b[i]; e; e = e->next) {
			if (strcmp(e->user, user) != 0)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				uint32_t *v = realloc(ids, nc * sizeof(*v));
				if (v == NULL)
					continue;
				ids = v;
				cap = nc;
			}
			ids[n++] = e->id;
			// no request of it is taken from now on
			e->authed = false;
			e->user[0] = '\0';
			e->role = 0;
		}
	pthread_mutex_unlock(&ps->mx);
	// closed outside the lock: closing runs the pipe callbacks
	for (size_t i = 0; i < n; i++) {
		nng_pipe p = NNG_PIPE_INITIALIZER;
		p.id = ids[i];
		nng_pipe_close(p);
	}
	free(ids);
	return (int)n;
}

bool
peers_authed(peers *ps, nng_pipe p)
{
	bool a;
	pthread_mutex_lock(&ps->mx);
	struct peer *e = *slot(ps, (uint32_t)nng_pipe_id(p));
	a = e != NULL && e->authed;
	pthread_mutex_unlock(&ps->mx);
	return a;
}

int
peers_max(peers *ps)
{
	return ps->max;
}

int
peers_count(peers *ps)
{
	int n;
	pthread_mutex_lock(&ps->mx);
	n = ps->count;
	pthread_mutex_unlock(&ps->mx);
	return n;
}

int
peers_reap(peers *ps, ratelog *rl)
{
	enum { BATCH = 256 };
	uint32_t ids[BATCH];
	int64_t uids[BATCH];
	int n = 0, total = 0;
	int64_t cut = mono_ms() - PEER_AUTH_MS;
	// the ids are collected under the lock and closed outside it: closing
	// runs the pipe callbacks, which take the lock
	do {
		n = 0;
		pthread_mutex_lock(&ps->mx);
		for (int i = 0; i < NBUCKETS && n < BATCH; i++)
			for (struct peer *e = ps->b[i]; e && n < BATCH;
			     e = e->next)
				if (!e->authed && (!e->ipc || e->refused) &&
				    e->since_ms < cut) {
					uids[n] = e->refused ? e->uid : -1;
					ids[n++] = e->id;
					// not again while NNG closes it
					e->since_ms = INT64_MAX;
				}
		pthread_mutex_unlock(&ps->mx);
		for (int i = 0; i < n; i++) {
			nng_pipe p = NNG_PIPE_INITIALIZER;
			char addr[64];
			p.id = ids[i];
			peer_addr(p, addr, sizeof(addr));
			if (uids[i] >= 0)
				ratelog_warn(rl, "auth", "closed the refused "
				    "IPC connection of uid %lld after %d s",
				    (long long)uids[i], PEER_AUTH_MS / 1000);
			else
				ratelog_warn(rl, "auth", "dropped the connection "
				    "of %s: no request with the token within "
				    "%d s", addr, PEER_AUTH_MS / 1000);
			nng_pipe_close(p);
		}
		total += n;
	} while (n == BATCH);
	return total;
}

// ---------------------------------------------------------------- tls

static char *
read_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	ssize_t k;
	while (buf && (k = read(fd, buf + n, cap - 1 - n)) > 0) {
		n += (size_t)k;
		if (n + 1 == cap) // a PEM file of a key is a few hundred bytes
			break;
	}
	close(fd);
	if (buf)
		buf[n] = '\0';
	return buf;
}

int
peers_tls_listen(nng_listener l, const char *db, char *err, size_t errlen)
{
	char cpath[PATH_MAX], kpath[PATH_MAX];
	char *cert = NULL, *key = NULL;
	nng_tls_config *cfg = NULL;
	int rv;
	cpl_dbpath(db, CPL_DB_TLS_CERT, cpath, sizeof(cpath));
	cpl_dbpath(db, CPL_DB_TLS_KEY, kpath, sizeof(kpath));
	if ((cert = read_text(cpath)) == NULL ||
	    (key = read_text(kpath)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s (copal init makes "
		    "it)", cert ? kpath : cpath, strerror(errno));
		rv = NNG_ENOENT;
		goto out;
	}
	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0 ||
	    (rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0 ||
	    (rv = nng_tls_config_ca_chain(cfg, cert, NULL)) != 0 ||
	    (rv = nng_tls_config_auth_mode(cfg,
	         NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
		snprintf(err, errlen, "TLS with %s and %s: %s", cpath, kpath,
		    nng_strerror(rv));
		goto out;
	}
out:
	if (cfg)
		nng_tls_config_free(cfg); // the listener holds its own reference
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	free(cert);
	return rv;
}
