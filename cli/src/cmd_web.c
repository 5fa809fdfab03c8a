// copal web: the listener, the token check and the worker (web.h).
//
// Every request carries the database's token (its `secret`): as
// "Authorization: Bearer TOKEN", or the cookie copal_token that the page
// gets by opening /?token=TOKEN once (the URL copal web prints). The
// token is asked for on 127.0.0.1 too: a login node is shared, and any of
// its users can reach a loopback port. Off loopback the listener is
// HTTPS only, with the database's certificate (tls.crt, tls.key).
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "copal/dbdir.h"
#include "web.h"

enum { KEY_LISTEN = 700, KEY_ALLOW_ACTIONS };

const cli_opt web_opts[] = {
	{ "listen", KEY_LISTEN, OPT_ARG, "HOST:PORT",
	    "address to serve on (default 127.0.0.1:8765; port 0: any free "
	    "one); an address other than loopback is served over HTTPS "
	    "with the database's certificate" },
	{ "allow-actions", KEY_ALLOW_ACTIONS, OPT_NOARG, NULL,
	    "let the page kill and restart tasks (after a confirmation)" },
	{ NULL, 0, 0, NULL, NULL },
};

// ------------------------------------------------------------ answers

void
web_fail(web_answer *a, int status, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cpl_utf8_clean(buf);
	json_decref(a->json);
	free(a->body);
	memset(a, 0, sizeof(*a));
	a->status = status;
	a->json = json_pack("{s:s}", "error", buf);
}

// ------------------------------------------------------------ parameters

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// Decodes %XX and '+' of s[0..n) into a new string; NULL if malformed.
static char *
urldecode(const char *s, size_t n, const char **why)
{
	char *out = xmalloc(n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;
			if (i + 2 >= n) {
				*why = "a truncated %-escape";
				goto bad;
			}
			if ((h = hexval((unsigned char)s[i + 1])) < 0 ||
			    (l = hexval((unsigned char)s[i + 2])) < 0) {
				*why = "a bad %-escape";
				goto bad;
			}
			if (h == 0 && l == 0) {
				*why = "a NUL byte";
				goto bad;
			}
			*o++ = (char)(h << 4 | l);
			i += 2;
		} else
			*o++ = s[i] == '+' ? ' ' : s[i];
	}
	*o = '\0';
	if (cpl_utf8_clean(out) != 0) {
		*why = "text that is not UTF-8";
		goto bad;
	}
	return out;
bad:
	free(out);
	return NULL;
}

int
web_params_parse(const char *q, web_params *p, char *err, size_t len)
{
	memset(p, 0, sizeof(*p));
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);
		const char *why = NULL;
		if (n == 0) {
			q++;
			continue;
		}
		if (p->n == WEB_MAX_PARAMS) {
			snprintf(err, len, "more than %d parameters",
			    WEB_MAX_PARAMS);
			goto bad;
		}
		size_t kn = eq ? (size_t)(eq - q) : n;
		size_t vn = eq ? n - kn - 1 : 0;
		if (kn > 32 || vn > 3 * WEB_MAX_VALUE) {
			snprintf(err, len, "parameter %.32s: longer than %d "
			    "bytes", q, kn > 32 ? 32 : WEB_MAX_VALUE);
			goto bad;
		}
		char *k = urldecode(q, kn, &why);
		char *v = k ? urldecode(eq ? eq + 1 : "", vn, &why) : NULL;
		if (v == NULL) {
			snprintf(err, len, "parameter %.32s: %s", k ? k : "?",
			    why);
			free(k);
			goto bad;
		}
		if (strlen(v) > WEB_MAX_VALUE) {
			snprintf(err, len, "parameter %s: longer than %d bytes",
			    k, WEB_MAX_VALUE);
			free(k);
			free(v);
			goto bad;
		}
		// tag is the one list (search: tasks carrying all of them)
		if (strcmp(k, "tag") != 0 && web_param(p, k)) {
			snprintf(err, len, "parameter %s given twice", k);
			free(k);
			free(v);
			goto bad;
		}
		p->key[p->n] = k;
		p->val[p->n++] = v;
		q += n;
		if (*q == '&')
			q++;
	}
	return 0;
bad:
	web_params_free(p);
	return -1;
}

void
web_params_free(web_params *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->key[i]);
		free(p->val[i]);
	}
	p->n = 0;
}

const char *
web_param(const web_params *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->key[i], key) == 0)
			return p->val[i];
	return NULL;
}

// ------------------------------------------------------------ the worker

struct job {
	struct job *next;
	nng_aio *aio;
	char method[8];
	char *path;
	web_params p;
};

static web W;
static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static struct job *q_head, **q_tail = &q_head;
static size_t q_len;
static bool q_stop;
#define WEB_MAX_QUEUE 64

static void
set_common(nng_http_res *res)
{
	nng_http_res_set_header(res, "X-Content-Type-Options", "nosniff");
	nng_http_res_set_header(res, "Cache-Control", "no-store");
	nng_http_res_set_header(res, "Referrer-Policy", "no-referrer");
}

// Sends a (and frees what it holds) as the reply of aio.
static void
reply(nng_aio *aio, web_answer *a)
{
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		goto out;
	}
	set_common(res);
	nng_http_res_set_status(res, (uint16_t)(a->status ? a->status : 200));
	if (a->status == 401)
		nng_http_res_set_header(res, "WWW-Authenticate",
		    "Bearer realm=\"copal\"");
	if (a->json) {
		char *s = json_dumps(a->json, JSON_COMPACT);
		nng_http_res_set_header(res, "Content-Type",
		    "application/json");
		if (s)
			nng_http_res_copy_data(res, s, strlen(s));
		free(s);
	} else {
		nng_http_res_set_header(res, "Content-Type",
		    a->type ? a->type : "application/octet-stream");
		if (a->disposition[0])
			nng_http_res_set_header(res, "Content-Disposition",
			    a->disposition);
		nng_http_res_copy_data(res, a->body ? a->body : "", a->len);
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
out:
	json_decref(a->json);
	free(a->body);
	memset(a, 0, sizeof(*a));
}

static void *
worker_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&q_mu);
		while (q_head == NULL && !q_stop)
			pthread_cond_wait(&q_cv, &q_mu);
		struct job *j = q_head;
		if (j) {
			q_head = j->next;
			if (q_head == NULL)
				q_tail = &q_head;
			q_len--;
		}
		pthread_mutex_unlock(&q_mu);
		if (j == NULL)
			return NULL;
		web_answer a;
		memset(&a, 0, sizeof(a));
		if (q_stop)
			web_fail(&a, 503, "copal web is stopping");
		else
			web_api(&W, j->method, j->path, &j->p, &a);
		reply(j->aio, &a);
		web_params_free(&j->p);
		free(j->path);
		free(j);
	}
}

// ------------------------------------------------------------ the handler

// Whether the request shows the token: the header or the cookie.
static bool
authorized(nng_http_req *req)
{
	const char *h = nng_http_req_get_header(req, "Authorization");
	const char *tok = NULL;
	size_t n = 0;
	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		tok = h + 7;
		n = strlen(tok);
	} else if ((h = nng_http_req_get_header(req, "Cookie")) != NULL) {
		// "a=1; copal_token=X; b=2"
		for (const char *s = h; s && *s;) {
			while (*s == ' ' || *s == ';')
				s++;
			if (strncmp(s, "copal_token=", 12) == 0) {
				tok = s + 12;
				n = strcspn(tok, ";");
				break;
			}
			s = strchr(s, ';');
		}
	}
	if (tok == NULL || n != W.tokenlen)
		return false;
	unsigned char d = 0; // the same time for every wrong token
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)tok[i] ^ W.token[i];
	return d == 0;
}

static bool
token_is(const char *t)
{
	size_t n = strlen(t);
	unsigned char d = 0;
	if (n != W.tokenlen)
		return false;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)t[i] ^ W.token[i];
	return d == 0;
}

static void
handler(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	const char *method = nng_http_req_get_method(req);
	const char *uri = nng_http_req_get_uri(req);
	web_answer a;
	web_params p;
	char err[300];
	memset(&a, 0, sizeof(a));
	if (strlen(uri) > WEB_MAX_URI) {
		web_fail(&a, 400, "URI longer than %d bytes", WEB_MAX_URI);
		reply(aio, &a);
		return;
	}
	const char *qm = strchr(uri, '?');
	size_t plen = qm ? (size_t)(qm - uri) : strlen(uri);
	char path[WEB_MAX_URI + 1];
	memcpy(path, uri, plen);
	path[plen] = '\0';
	if (web_params_parse(qm ? qm + 1 : NULL, &p, err, sizeof(err)) != 0) {
		web_fail(&a, 400, "%s", err);
		reply(aio, &a);
		return;
	}
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	if (strncmp(path, "/api/", 5) != 0) {
		// the page: / with ?token= sets the cookie and drops the token
		// from the address bar
		const char *t = web_param(&p, "token");
		if (get && strcmp(path, "/") == 0 && t) {
			if (!token_is(t)) {
				web_fail(&a, 401, "wrong token: open the URL "
				    "copal web printed");
				web_params_free(&p);
				reply(aio, &a);
				return;
			}
			nng_http_res *res;
			char ck[400];
			web_params_free(&p);
			if (nng_http_res_alloc(&res) != 0) {
				nng_aio_finish(aio, NNG_ENOMEM);
				return;
			}
			set_common(res);
			snprintf(ck, sizeof(ck), "copal_token=%.*s; Path=/; "
			    "HttpOnly; SameSite=Strict%s", (int)W.tokenlen,
			    (const char *)W.token, W.tls ? "; Secure" : "");
			nng_http_res_set_status(res, 303);
			nng_http_res_set_header(res, "Set-Cookie", ck);
			nng_http_res_set_header(res, "Location", "/");
			// a body, so that the answer has a Content-Length
			nng_http_res_copy_data(res, "see /\n", 6);
			nng_aio_set_output(aio, 0, res);
			nng_aio_finish(aio, 0);
			return;
		}
		web_params_free(&p);
		for (const web_asset *w = web_assets; get && w->path; w++) {
			if (strcmp(w->path, path) != 0)
				continue;
			nng_http_res *res;
			if (nng_http_res_alloc(&res) != 0) {
				nng_aio_finish(aio, NNG_ENOMEM);
				return;
			}
			nng_http_res_set_header(res, "Content-Type", w->type);
			nng_http_res_set_header(res, "X-Content-Type-Options",
			    "nosniff");
			nng_http_res_set_header(res, "Content-Security-Policy",
			    "default-src 'self'; style-src 'self' "
			    "'unsafe-inline'; img-src 'self' data:");
			nng_http_res_set_data(res, w->data, w->len);
			nng_aio_set_output(aio, 0, res);
			nng_aio_finish(aio, 0);
			return;
		}
		web_fail(&a, get ? 404 : 405, get ? "no such page: %s" :
		    "method %s not allowed here", get ? path : method);
		reply(aio, &a);
		return;
	}
	if (!authorized(req)) {
		web_params_free(&p);
		web_fail(&a, 401, "missing or wrong token: send "
		    "\"Authorization: Bearer TOKEN\" or open the URL copal "
		    "web printed");
		reply(aio, &a);
		return;
	}
	if (strcmp(method, "POST") == 0) {
		// a form of another site cannot set this header without CORS
		// (that this server does not grant): no cross-site POST
		const char *x = nng_http_req_get_header(req, "X-Copal-Action");
		if (x == NULL || strcmp(x, "1") != 0) {
			web_params_free(&p);
			web_fail(&a, 400, "an action needs the header "
			    "X-Copal-Action: 1");
			reply(aio, &a);
			return;
		}
	} else if (strcmp(method, "GET") != 0) {
		web_params_free(&p);
		web_fail(&a, 405, "method %s not allowed", method);
		reply(aio, &a);
		return;
	}
	struct job *j = xcalloc(1, sizeof(*j));
	j->aio = aio;
	snprintf(j->method, sizeof(j->method), "%s", method);
	j->path = xstrdup(path + 5);
	j->p = p;
	pthread_mutex_lock(&q_mu);
	if (q_len >= WEB_MAX_QUEUE) {
		pthread_mutex_unlock(&q_mu);
		web_params_free(&j->p);
		free(j->path);
		free(j);
		web_fail(&a, 503, "too many requests waiting");
		reply(aio, &a);
		return;
	}
	*q_tail = j;
	q_tail = &j->next;
	q_len++;
	pthread_cond_signal(&q_cv);
	pthread_mutex_unlock(&q_mu);
}

// ------------------------------------------------------------ the verb

// "HOST:PORT" or "[V6]:PORT" into host and port; loopback or not.
static int
parse_listen(const char *s, char *host, size_t hlen, unsigned *port,
    bool *loopback)
{
	const char *colon;
	size_t n;
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (e == NULL || e[1] != ':')
			return -1;
		n = (size_t)(e - s - 1);
		if (n == 0 || n >= hlen)
			return -1;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		colon = e + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s || memchr(s, ':',
		    (size_t)(colon - s)))
			return -1;
		n = (size_t)(colon - s);
		if (n >= hlen)
			return -1;
		memcpy(host, s, n);
		host[n] = '\0';
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end || errno || v > 65535)
		return -1;
	*port = (unsigned)v;
	struct in_addr a4;
	struct in6_addr a6;
	*loopback = strcmp(host, "localhost") == 0 ||
	    (inet_pton(AF_INET, host, &a4) == 1 &&
	        (ntohl(a4.s_addr) >> 24) == 127) ||
	    (inet_pton(AF_INET6, host, &a6) == 1 &&
	        IN6_IS_ADDR_LOOPBACK(&a6));
	return 0;
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	char *buf = xmalloc(65536);
	size_t n = fread(buf, 1, 65535, fp);
	fclose(fp);
	buf[n] = '\0';
	return buf;
}

static int
setup_tls(nng_http_server *srv)
{
	char crt[PATH_MAX], key[PATH_MAX];
	nng_tls_config *cfg;
	int rv;
	cpl_dbpath(W.db, CPL_DB_TLS_CERT, crt, sizeof(crt));
	cpl_dbpath(W.db, CPL_DB_TLS_KEY, key, sizeof(key));
	char *c = slurp(crt), *k = slurp(key);
	if (c == NULL || k == NULL) {
		cli_err("cannot read %s: %s (HTTPS needs the database's "
		    "certificate and key)", c ? key : crt, strerror(errno));
		free(c);
		free(k);
		return EXIT_ERR;
	}
	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0 ||
	    (rv = nng_tls_config_own_cert(cfg, c, k, NULL)) != 0 ||
	    (rv = nng_http_server_set_tls(srv, cfg)) != 0) {
		cli_err("TLS: %s", nng_strerror(rv));
		free(c);
		free(k);
		return EXIT_ERR;
	}
	nng_tls_config_free(cfg); // the server holds its own reference
	explicit_bzero(k, strlen(k));
	free(c);
	free(k);
	return 0;
}

int
cmd_web(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *listen = "127.0.0.1:8765";
	int key, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((key = cli_parse_next(&p, &arg)) != -1) {
		switch (key) {
		case KEY_LISTEN:
			listen = arg;
			break;
		case KEY_ALLOW_ACTIONS:
			W.allow_actions = true;
			break;
		default:
			cli_parse_free(&p);
			return EXIT_USAGE;
		}
	}
	rc = cli_no_operands(&p);
	cli_parse_free(&p);
	if (rc)
		return rc;
	char host[256];
	unsigned port;
	bool loopback;
	if (parse_listen(listen, host, sizeof(host), &port, &loopback) != 0)
		return cli_usage("--listen %s: not HOST:PORT", listen);
	W.tls = !loopback;
	// SIGINT and SIGTERM end it: blocked before any thread starts (NNG's
	// too, which inherit the mask), waited for by sigwait below
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if ((rc = cli_db_find(W.db, sizeof(W.db))) != 0)
		return rc;
	if (cpl_read_secret(W.db, W.token, sizeof(W.token) - 1,
	        &W.tokenlen) != 0) {
		cli_err("cannot read the database's secret (%s/secret)", W.db);
		return EXIT_ERR;
	}
	for (size_t i = 0; i < W.tokenlen; i++)
		if (W.token[i] <= ' ' || W.token[i] == ';' ||
		    W.token[i] >= 0x7f) {
			cli_err("the database's secret is not printable");
			return EXIT_ERR;
		}
	if ((rc = cli_connect(&W.c)) != 0)
		return rc;
	Copal__Reply *rep;
	if ((rc = cli_call_rc(W.c, cpl_call_ping(W.c, &rep))) != 0) {
		cpl_client_close(W.c);
		return rc;
	}
	cpl_reply_free(rep);

	// the server: one handler for every path
	nng_url *url;
	nng_http_server *srv;
	nng_http_handler *h;
	char u[300];
	snprintf(u, sizeof(u), "%s://%s%s%s:%u", W.tls ? "https" : "http",
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	    port);
	if ((rc = nng_url_parse(&url, u)) != 0 ||
	    (rc = nng_http_server_hold(&srv, url)) != 0) {
		cli_err("%s: %s", u, nng_strerror(rc));
		cpl_client_close(W.c);
		return EXIT_ERR;
	}
	nng_url_free(url);
	if (W.tls && (rc = setup_tls(srv)) != 0) {
		nng_http_server_release(srv);
		cpl_client_close(W.c);
		return rc;
	}
	if ((rc = nng_http_handler_alloc(&h, "/", handler)) != 0 ||
	    (rc = nng_http_handler_set_tree(h)) != 0 ||
	    (rc = nng_http_handler_set_method(h, NULL)) != 0 ||
	    // no request has a body: NNG answers 400 to one (not read)
	    (rc = nng_http_handler_collect_body(h, true, 0)) != 0 ||
	    (rc = nng_http_server_add_handler(srv, h)) != 0 ||
	    (rc = nng_http_server_start(srv)) != 0) {
		cli_err("cannot serve on %s: %s", u, nng_strerror(rc));
		nng_http_server_release(srv);
		cpl_client_close(W.c);
		return EXIT_ERR;
	}
	nng_sockaddr sa;
	if (port == 0 && nng_http_server_get_addr(srv, &sa) == 0)
		port = ntohs(sa.s_family == NNG_AF_INET6 ? sa.s_in6.sa_port :
		                                           sa.s_in.sa_port);
	snprintf(W.url, sizeof(W.url), "%s://%s%s%s:%u",
	    W.tls ? "https" : "http", strchr(host, ':') ? "[" : "", host,
	    strchr(host, ':') ? "]" : "", port);

	pthread_t wt;
	if ((errno = pthread_create(&wt, NULL, worker_main, NULL)) != 0) {
		cli_err("cannot start a thread: %s", strerror(errno));
		nng_http_server_release(srv);
		cpl_client_close(W.c);
		return EXIT_ERR;
	}
	web_stats_start(&W);
	printf("copal web: database %s\n", W.db);
	printf("copal web: open %s/?token=%.*s\n", W.url, (int)W.tokenlen,
	    (const char *)W.token);
	if (W.allow_actions)
		printf("copal web: actions (kill, restart) allowed\n");
	fflush(stdout);
	int sig;
	sigwait(&sigs, &sig);
	nng_http_server_stop(srv);
	nng_http_server_release(srv);
	pthread_mutex_lock(&q_mu);
	q_stop = true;
	pthread_cond_broadcast(&q_cv);
	pthread_mutex_unlock(&q_mu);
	pthread_join(wt, NULL);
	web_stats_stop(&W);
	cpl_client_close(W.c);
	explicit_bzero(W.token, sizeof(W.token));
	return EXIT_OK;
}
