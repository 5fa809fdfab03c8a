// copal client library over NNG REQ.
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/transport/tls/tls.h>

#include "copal/client.h"
#include "internal.h"

#define MAX_REPLY (256u << 20)

struct cpl_client {
	nng_socket sock;
	nng_dialer dialer;
	char db[PATH_MAX];
	char url[PATH_MAX + 16];
	uint8_t token[64];
	size_t token_len;
	int timeout_ms;
	int attempts;
	bool dialed;
	nng_tls_config *tls; // tls+tcp:// only
	char tls_err[PATH_MAX + 128];
	// request identity (copal.proto, Request): random at open, then
	// the last request id (next_id)
	uint8_t client_id[16];
	uint64_t seq;
	// why the last call failed (cpl_client_errmsg): a static message or
	// errbuf, the broker's text
	const char *errmsg;
	char *errbuf;
	bool err_remote;
};

// Records the outcome of a call: code 0 clears it; text (may be NULL or
// empty) is the broker's when remote.
static void
set_err(cpl_client *c, int code, bool remote, const char *text)
{
	free(c->errbuf);
	c->errbuf = NULL;
	c->err_remote = code != 0 && remote;
	c->errmsg = code ? cpl_strerror(code) : "";
	// without memory for the copy the status's message stands in
	if (code && text && text[0] && (c->errbuf = strdup(text)) != NULL)
		c->errmsg = c->errbuf;
}

// The next request id of c: the time in microseconds, or one more than
// the last id if the clock has not moved past it (or went back). Ids
// grow, and the requests that all clients send at one moment carry ids
// close together: the broker keeps their stored replies side by side, a
// few pages for a commit of hundreds (store/src/reply.c).
static uint64_t
next_id(cpl_client *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u +
	    (uint64_t)ts.tv_nsec / 1000u;
	c->seq = now > c->seq ? now : c->seq + 1;
	return c->seq;
}

uint64_t
cpl_client_next_id(cpl_client *c)
{
	return c ? next_id(c) : cpl_request_id();
}

uint64_t
cpl_request_id(void)
{
	uint64_t v = 0;
	while (v == 0) {
		if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
			// no entropy source: fall back to a time-and-pid mix
			v = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^
			    (uint64_t)clock();
		}
	}
	return v;
}

int
cpl_client_open(const cpl_client_opts *o, cpl_client **out)
{
	cpl_client_opts def;
	cpl_client *c;
	int rv;
	if (o == NULL) {
		memset(&def, 0, sizeof(def));
		o = &def;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CPL_ENOMEM;
	c->errmsg = "";
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	c->attempts = o->attempts > 0 ? o->attempts : 3;
	for (size_t i = 0; i < sizeof(c->client_id); i += 8) {
		uint64_t v = cpl_request_id();
		memcpy(c->client_id + i, &v, 8);
	}
	const char *db = o->db_dir ? o->db_dir : getenv(CPL_ENV_DB);
	const char *url = o->url ? o->url : getenv(CPL_ENV_URL);
	if (db && *db) {
		struct stat st;
		char marker[PATH_MAX + 32];
		if (realpath(db, c->db) == NULL) {
			free(c);
			return CPL_ENOTFOUND;
		}
		if (cpl_dbpath(c->db, CPL_DB_CONF, marker, sizeof(marker)) != 0 ||
		    stat(marker, &st) != 0) {
			free(c);
			return CPL_ENOTFOUND;
		}
	}
	if (url && *url) {
		snprintf(c->url, sizeof(c->url), "%s", url);
	} else if (c->db[0]) {
		if ((rv = cpl_db_socket_url(c->db, c->url, sizeof(c->url))) != 0) {
			free(c);
			return rv;
		}
	} else {
		free(c);
		return CPL_EINVAL;
	}
	const char *tok = o->token ? o->token : getenv(CPL_ENV_TOKEN);
	const char *cred = getenv(CPL_ENV_CREDENTIAL);
	if ((tok == NULL || *tok == '\0') && cred && *cred) {
		// a user's credential file: its token line
		char line[256];
		FILE *fp = fopen(cred, "re");
		if (fp == NULL) {
			free(c);
			return CPL_ENOTFOUND;
		}
		while (fgets(line, sizeof(line), fp))
			if (strncmp(line, "token ", 6) == 0) {
				size_t n = strcspn(line + 6, "\r\n");
				c->token_len = n < sizeof(c->token) ? n :
				                                      sizeof(c->token);
				memcpy(c->token, line + 6, c->token_len);
			}
		explicit_bzero(line, sizeof(line));
		fclose(fp);
	} else if (tok && *tok) {
		c->token_len = strnlen(tok, sizeof(c->token));
		memcpy(c->token, tok, c->token_len);
	} else if (c->db[0]) {
		(void)cpl_read_secret(c->db, c->token, sizeof(c->token),
		    &c->token_len);
	}
	if (strncmp(c->url, "tls+tcp://", 10) == 0 &&
	    (rv = cpl__tls_client_config(c->db,
	         o->tls_cert || getenv(CPL_ENV_TLS_CERT) ? o->tls_cert : cred,
	         o->tls_key,
	         &c->tls, c->tls_err, sizeof(c->tls_err))) != 0) {
		// the reason stays for cpl_client_errmsg of a call; open
		// itself only returns the code
		free(c);
		return rv;
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		if (c->tls)
			nng_tls_config_free(c->tls);
		free(c);
		return CPL_ECONNECT;
	}
	// our own retry loop resends with the same request id; NNG's resend
	// timer stays out of the way
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, MAX_REPLY);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500);
	// The connection is made by the first call, not here: a process that
	// opens a client and exits without a request must not connect and
	// close at once (NNG 1.5.2 can stop accepting IPC clients after that).
	*out = c;
	return 0;
}

static int
connect_once(cpl_client *c)
{
	if (c->dialed)
		return 0;
	int rv;
	if (c->tls) {
		// TLS both ways: the broker must show this database's
		// certificate, or no connection is made and no request sent
		if ((rv = nng_dialer_create(&c->dialer, c->sock, c->url)) == 0 &&
		    (rv = nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG,
		         c->tls)) == 0)
			rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK);
	} else {
		rv = nng_dial(c->sock, c->url, &c->dialer, NNG_FLAG_NONBLOCK);
	}
	if (rv != 0)
		return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? CPL_EINVAL :
		                                                  CPL_ECONNECT;
	c->dialed = true;
	return 0;
}

// nng_close() waits for NNG's reaper, which NNG 1.5.2 can leave stuck
// for good when a connection is closed in the middle of a read (a broker
// killed while it answered: tests/powercut caught a client that never
// returned from its close). The socket is closed on a thread of its own,
// waited for at most CLOSE_MS (a close takes milliseconds otherwise);
// past that the client is left to that thread, reachable from
// `abandoned`, and the caller goes on. NNG never touches the client
// itself (its calls are synchronous), only the socket and the TLS
// configuration, which are kept.
#define CLOSE_MS 3000

struct closing {
	nng_socket sock;
	pthread_mutex_t mx;
	pthread_cond_t cv;
	bool done;
	cpl_client *c;
	struct closing *next;
};

static pthread_mutex_t abandoned_mx = PTHREAD_MUTEX_INITIALIZER;
static struct closing *abandoned; // closes that did not end in time

static void *
closer_main(void *arg)
{
	struct closing *k = arg;
	nng_close(k->sock);
	pthread_mutex_lock(&k->mx);
	k->done = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mx);
	return NULL;
}

// Closes c's socket; false if NNG did not return within CLOSE_MS (k is
// then the closing thread's, and on the abandoned list).
static bool
close_bounded(cpl_client *c)
{
	struct closing *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	pthread_t t;
	if (k == NULL) {
		nng_close(c->sock);
		return true;
	}
	k->sock = c->sock;
	k->c = c;
	pthread_mutex_init(&k->mx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t, NULL, closer_main, k) != 0) {
		nng_close(c->sock);
	} else {
		struct timespec end;
		clock_gettime(CLOCK_MONOTONIC, &end);
		end.tv_sec += CLOSE_MS / 1000;
		pthread_mutex_lock(&k->mx);
		while (!k->done &&
		    pthread_cond_timedwait(&k->cv, &k->mx, &end) != ETIMEDOUT)
			;
		bool done = k->done;
		pthread_mutex_unlock(&k->mx);
		if (!done) {
			pthread_detach(t);
			pthread_mutex_lock(&abandoned_mx);
			k->next = abandoned;
			abandoned = k;
			pthread_mutex_unlock(&abandoned_mx);
			return false;
		}
		pthread_join(t, NULL);
	}
	pthread_mutex_destroy(&k->mx);
	pthread_cond_destroy(&k->cv);
	free(k);
	return true;
}

void
cpl_client_close(cpl_client *c)
{
	if (c == NULL)
		return;
	explicit_bzero(c->token, sizeof(c->token));
	if (!close_bounded(c))
		return; // NNG may still use the socket and the TLS config
	if (c->tls)
		nng_tls_config_free(c->tls);
	free(c->errbuf);
	free(c);
}

const char *
cpl_client_db(const cpl_client *c)
{
	return c->db;
}

const char *
cpl_client_errmsg(const cpl_client *c)
{
	return c ? c->errmsg : cpl_strerror(CPL_EINVAL);
}

bool
cpl_client_err_remote(const cpl_client *c)
{
	return c && c->err_remote;
}

void
cpl_reply_free(Copal__Reply *rep)
{
	if (rep)
		copal__reply__free_unpacked(rep, NULL);
}

static int
send_recv(cpl_client *c, Copal__Request *req, int attempts, int timeout_ms,
    Copal__Reply **reply)
{
	Copal__Credentials cred = COPAL__CREDENTIALS__INIT;
	int rv = connect_once(c);
	if (rv != 0)
		return rv;
	rv = CPL_ETIMEOUT;
	req->version = CPL_PROTOCOL_VERSION;
	// the caller's own id (a resend) keeps it; the client's id goes with
	// every request the caller did not give another
	if (req->request_id == 0)
		req->request_id = next_id(c);
	bool own_cid = req->client_id.len == 0;
	if (own_cid) {
		req->client_id.data = c->client_id;
		req->client_id.len = sizeof(c->client_id);
	}
	if (c->token_len && req->credentials == NULL) {
		cred.token.data = c->token;
		cred.token.len = c->token_len;
		req->credentials = &cred;
	}
	size_t n = copal__request__get_packed_size(req);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL) {
		if (req->credentials == &cred)
			req->credentials = NULL;
		if (own_cid) {
			req->client_id.data = NULL;
			req->client_id.len = 0;
		}
		return CPL_ENOMEM;
	}
	copal__request__pack(req, buf);
	if (req->credentials == &cred)
		req->credentials = NULL;
	if (own_cid) {
		req->client_id.data = NULL;
		req->client_id.len = 0;
	}
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	for (int a = 0; a < attempts; a++) {
		void *rbuf = NULL;
		size_t rlen = 0;
		int e = nng_send(c->sock, buf, n, 0);
		if (e == 0)
			e = nng_recv(c->sock, &rbuf, &rlen, NNG_FLAG_ALLOC);
		if (e == NNG_ETIMEDOUT) {
			rv = CPL_ETIMEOUT;
			continue;
		}
		if (e != 0) {
			rv = CPL_ECONNECT;
			continue;
		}
		Copal__Reply *r = copal__reply__unpack(NULL, rlen, rbuf);
		nng_free(rbuf, rlen);
		if (r == NULL) {
			rv = CPL_EPROTO;
			break;
		}
		if (r->request_id != req->request_id) {
			copal__reply__free_unpacked(r, NULL);
			rv = CPL_EPROTO;
			continue;
		}
		*reply = r;
		rv = 0;
		break;
	}
	free(buf);
	return rv;
}

// Records the outcome of a call's transport (0 or a local error).
static void
record_outcome(cpl_client *c, int rv);

// A raw call: the reply as it came, or a local error (recorded).
static int
call(cpl_client *c, Copal__Request *req, int attempts, int timeout_ms,
    Copal__Reply **reply)
{
	int rv = send_recv(c, req, attempts, timeout_ms, reply);
	record_outcome(c, rv);
	return rv;
}

static void
record_outcome(cpl_client *c, int rv)
{
	if (rv == CPL_ETIMEOUT && c->tls) {
		// NNG does not say why a TLS connection failed: name both
		// possible reasons
		char msg[PATH_MAX + 256];
		snprintf(msg, sizeof(msg), "no answer from %s: no broker there, "
		    "or it and this client do not hold the same database "
		    "certificate (tls.crt)", c->url);
		set_err(c, rv, false, msg);
		return;
	}
	set_err(c, rv, false, NULL);
}

int
cpl_client_call(cpl_client *c, Copal__Request *req, Copal__Reply **reply)
{
	if (c == NULL || req == NULL || reply == NULL)
		return CPL_EINVAL;
	return call(c, req, c->attempts, c->timeout_ms, reply);
}

int
cpl_client_call_once(cpl_client *c, Copal__Request *req, int timeout_ms,
    Copal__Reply **reply)
{
	if (c == NULL || req == NULL || reply == NULL)
		return CPL_EINVAL;
	return call(c, req, 1, timeout_ms, reply);
}

int
cpl__call_typed(cpl_client *c, Copal__Request *req, const void *body,
    int once_ms, Copal__Reply **rep)
{
	Copal__Reply *r = NULL;
	int rv;
	if (rep)
		*rep = NULL;
	if (c == NULL)
		return CPL_EINVAL;
	if (rep == NULL || body == NULL) {
		set_err(c, CPL_EINVAL, false, NULL);
		return CPL_EINVAL;
	}
	rv = once_ms > 0 ? call(c, req, 1, once_ms, &r) :
	                   call(c, req, c->attempts, c->timeout_ms, &r);
	if (rv != 0)
		return rv;
	if (r->status != 0) {
		// a status this library does not know is still the broker's:
		// cpl_strerror says "unknown error" for it
		rv = r->status > INT_MAX ? CPL_EINTERNAL : (int)r->status;
		set_err(c, rv, true, r->error);
		copal__reply__free_unpacked(r, NULL);
		return rv;
	}
	// the reply's body numbers are the request's (copal.proto)
	if ((int)r->body_case != (int)req->body_case) {
		set_err(c, CPL_EPROTO, false, NULL);
		copal__reply__free_unpacked(r, NULL);
		return CPL_EPROTO;
	}
	*rep = r;
	return 0;
}

// ---------------------------------------------------------------- packed

// Reads a varint at p[*i..n); false when it runs past n or over 64 bits.
static bool
rd_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *i < n; shift += 7) {
		uint8_t b = p[(*i)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
	}
	return false;
}

// The request_id (field 2) of a packed Reply, found by skipping the other
// top-level fields without unpacking them; 0 if absent or unreadable.
static uint64_t
packed_request_id(const uint8_t *p, size_t n)
{
	size_t i = 0;
	uint64_t key, v, id = 0;
	while (i < n) {
		if (!rd_varint(p, n, &i, &key))
			return 0;
		switch (key & 7) {
		case 0:
			if (!rd_varint(p, n, &i, &v))
				return 0;
			if (key >> 3 == 2)
				id = v; // the last one counts, as in protobuf
			break;
		case 1:
			i += 8;
			break;
		case 2:
			if (!rd_varint(p, n, &i, &v) || v > n - i)
				return 0;
			i += (size_t)v;
			break;
		case 5:
			i += 4;
			break;
		default:
			return 0;
		}
	}
	return i == n ? id : 0;
}

int
cpl_client_call_packed(cpl_client *c, const void *body, size_t body_len,
    void **reply, size_t *reply_len)
{
	Copal__Request env = COPAL__REQUEST__INIT;
	Copal__Credentials cred = COPAL__CREDENTIALS__INIT;
	if (c == NULL || (body == NULL && body_len) || reply == NULL ||
	    reply_len == NULL)
		return CPL_EINVAL;
	*reply = NULL;
	*reply_len = 0;
	int rv = connect_once(c);
	if (rv != 0) {
		record_outcome(c, rv);
		return rv;
	}
	// the envelope packed alone, then the body: protobuf merges the
	// fields of concatenated messages, so this is one Request
	env.version = CPL_PROTOCOL_VERSION;
	env.request_id = next_id(c);
	env.client_id.data = c->client_id;
	env.client_id.len = sizeof(c->client_id);
	if (c->token_len) {
		cred.token.data = c->token;
		cred.token.len = c->token_len;
		env.credentials = &cred;
	}
	size_t head = copal__request__get_packed_size(&env);
	uint8_t *buf = malloc(head + body_len);
	if (buf == NULL) {
		record_outcome(c, CPL_ENOMEM);
		return CPL_ENOMEM;
	}
	copal__request__pack(&env, buf);
	if (body_len)
		memcpy(buf + head, body, body_len);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, c->timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, c->timeout_ms);
	rv = CPL_ETIMEOUT;
	// the same resend rule as send_recv: the same bytes, so the same
	// request id and body
	for (int a = 0; a < c->attempts; a++) {
		void *rbuf = NULL;
		size_t rlen = 0;
		int e = nng_send(c->sock, buf, head + body_len, 0);
		if (e == 0)
			e = nng_recv(c->sock, &rbuf, &rlen, NNG_FLAG_ALLOC);
		if (e != 0) {
			rv = e == NNG_ETIMEDOUT ? CPL_ETIMEOUT : CPL_ECONNECT;
			continue;
		}
		if (packed_request_id(rbuf, rlen) != env.request_id) {
			nng_free(rbuf, rlen);
			rv = CPL_EPROTO;
			continue;
		}
		*reply = rbuf;
		*reply_len = rlen;
		rv = 0;
		break;
	}
	explicit_bzero(buf, head);
	free(buf);
	record_outcome(c, rv);
	return rv;
}

void
cpl_packed_free(void *reply, size_t len)
{
	if (reply)
		nng_free(reply, len);
}
