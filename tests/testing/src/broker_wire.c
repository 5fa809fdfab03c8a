// copal_testing: bad input for the broker. Raw NNG REQ sockets, a protobuf
// wire writer for requests protobuf-c cannot pack, plain AF_UNIX and TCP
// connections speaking SP by hand. See copal/testing/broker.h.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "copal/testing/broker.h"

extern char **environ;

int
bh_raw_open(const char *url, int timeout_ms, nng_socket *s)
{
	int rv;
	if ((rv = nng_req0_open(s)) != 0)
		return rv;
	nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 256u << 20);
	if ((rv = nng_dial(*s, url, NULL, 0)) != 0) {
		nng_close(*s);
		return rv;
	}
	return 0;
}

int
bh_raw_call(nng_socket s, const void *buf, size_t len, Copal__Reply **rep)
{
	void *rb = NULL;
	size_t rl = 0;
	int rv;
	*rep = NULL;
	if ((rv = nng_send(s, (void *)buf, len, 0)) != 0)
		return rv;
	if ((rv = nng_recv(s, &rb, &rl, NNG_FLAG_ALLOC)) != 0)
		return rv;
	*rep = copal__reply__unpack(NULL, rl, rb);
	nng_free(rb, rl);
	return 0;
}

uint8_t *
bh_pack_req(const Copal__Request *rq, size_t *len)
{
	*len = copal__request__get_packed_size(rq);
	uint8_t *b = malloc(*len ? *len : 1);
	if (b == NULL)
		BH_FAIL("out of memory");
	copal__request__pack(rq, b);
	return b;
}

Copal__Reply *
bh_raw_expect_(const char *url, const void *buf, size_t len, int want,
    const char *file, int line)
{
	nng_socket s;
	Copal__Reply *r;
	int rv = bh_raw_open(url, 5000 * bh_slow(), &s);
	if (rv != 0)
		BH_FAIL("%s:%d: dial %s: %s", file, line, url, nng_strerror(rv));
	rv = bh_raw_call(s, buf, len, &r);
	nng_close(s);
	if (rv != 0)
		BH_FAIL("%s:%d: %zu-byte request: no reply: %s", file, line, len,
		    nng_strerror(rv));
	if (r == NULL)
		BH_FAIL("%s:%d: %zu-byte request: undecodable reply", file, line,
		    len);
	if ((want >= 0 && (int)r->status != want) || (want < 0 && r->status == 0))
		BH_FAIL("%s:%d: %zu-byte request: status %s (%s) \"%s\", "
		        "expected %s",
		    file, line, len, cpl_errname((int)r->status),
		    cpl_strerror((int)r->status), r->error ? r->error : "",
		    want >= 0 ? cpl_errname(want) : "an error");
	return r;
}

void
bh_w_raw(bh_wbuf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->n + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (p == NULL)
			BH_FAIL("out of memory");
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, d, n);
	b->n += n;
}

void
bh_w_varint(bh_wbuf *b, uint64_t v)
{
	uint8_t t[10];
	size_t k = 0;
	do {
		t[k] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			t[k] |= 0x80;
		k++;
	} while (v);
	bh_w_raw(b, t, k);
}

void
bh_w_uint(bh_wbuf *b, unsigned field, uint64_t v)
{
	bh_w_varint(b, (uint64_t)field << 3 | 0);
	bh_w_varint(b, v);
}

void
bh_w_bytes(bh_wbuf *b, unsigned field, const void *d, size_t n)
{
	bh_w_varint(b, (uint64_t)field << 3 | 2);
	bh_w_varint(b, n);
	bh_w_raw(b, d, n);
}

void
bh_w_sub(bh_wbuf *b, unsigned field, const bh_wbuf *sub)
{
	bh_w_bytes(b, field, sub->p, sub->n);
}

void
bh_w_free(bh_wbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
bh_w_request(bh_wbuf *out, uint32_t version, uint64_t reqid, unsigned body,
    const bh_wbuf *sub)
{
	if (version)
		bh_w_uint(out, 1, version);
	if (reqid)
		bh_w_uint(out, 2, reqid);
	bh_w_sub(out, body, sub);
}

int
bh_unix_connect(const char *url)
{
	struct sockaddr_un sa;
	const char *path = strncmp(url, "ipc://", 6) == 0 ? url + 6 : url;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
bh_tcp_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

bool
bh_write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

ssize_t
bh_read_full(int fd, void *buf, size_t n, unsigned ms)
{
	uint8_t *p = buf;
	size_t got = 0;
	uint64_t end = bh_now_ms() + ms;
	while (got < n) {
		uint64_t now = bh_now_ms();
		if (now >= end)
			return -1;
		struct pollfd pf = { fd, POLLIN, 0 };
		int pr = poll(&pf, 1, (int)(end - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		ssize_t r = recv(fd, p + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return 0;
		if (r < 0)
			return errno == ECONNRESET ? 0 : -1;
		got += (size_t)r;
	}
	return (ssize_t)n;
}

bool
bh_peer_closes(int fd, unsigned ms)
{
	uint64_t end = bh_now_ms() + ms;
	uint8_t buf[4096];
	for (;;) {
		uint64_t now = bh_now_ms();
		if (now >= end)
			return false;
		struct pollfd pf = { fd, POLLIN, 0 };
		int pr = poll(&pf, 1, (int)(end - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return false;
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0 && errno != EINTR && errno != EAGAIN)
			return true;
	}
}

int
bh_sp_handshake(int fd, unsigned proto, char *why, size_t whylen)
{
	uint8_t h[8] = { 0, 'S', 'P', 0, (uint8_t)(proto >> 8),
		(uint8_t)(proto & 0xff), 0, 0 };
	uint8_t r[8];
	if (!bh_write_all(fd, h, 8)) {
		snprintf(why, whylen, "write: %s", strerror(errno));
		return -1;
	}
	ssize_t n = bh_read_full(fd, r, 8, 5000u * (unsigned)bh_slow());
	if (n != 8) {
		snprintf(why, whylen, "no SP header from the broker (%zd)", n);
		return -1;
	}
	if (r[0] != 0 || r[1] != 'S' || r[2] != 'P' || r[3] != 0) {
		snprintf(why, whylen, "bad SP header from the broker");
		return -1;
	}
	return 0;
}

void
bh_sp_frame_on(bh_wbuf *out, bool tcp, uint32_t reqid, const void *body,
    size_t n)
{
	uint8_t h[13];
	uint64_t len = (uint64_t)n + 4;
	size_t k = 0;
	if (!tcp)
		h[k++] = 1;
	for (int i = 0; i < 8; i++)
		h[k++] = (uint8_t)(len >> (56 - 8 * i));
	reqid |= 0x80000000u;
	h[k++] = (uint8_t)(reqid >> 24);
	h[k++] = (uint8_t)(reqid >> 16);
	h[k++] = (uint8_t)(reqid >> 8);
	h[k++] = (uint8_t)reqid;
	bh_w_raw(out, h, k);
	bh_w_raw(out, body, n);
}

void
bh_sp_frame(bh_wbuf *out, uint32_t reqid, const void *body, size_t n)
{
	bh_sp_frame_on(out, false, reqid, body, n);
}

int
bh_sp_read_reply_on(int fd, bool tcp, unsigned ms, uint32_t *reqid,
    Copal__Reply **rep)
{
	uint8_t h[9];
	size_t hl = tcp ? 8 : 9;
	*rep = NULL;
	if (bh_read_full(fd, h, hl, ms) != (ssize_t)hl || (!tcp && h[0] != 1))
		return -1;
	uint64_t len = 0;
	for (size_t i = hl - 8; i < hl; i++)
		len = len << 8 | h[i];
	if (len < 4 || len > (64u << 20))
		return -1;
	uint8_t *b = malloc(len);
	if (b == NULL)
		return -1;
	if (bh_read_full(fd, b, len, ms) != (ssize_t)len) {
		free(b);
		return -1;
	}
	*reqid = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
	*rep = copal__reply__unpack(NULL, len - 4, b + 4);
	free(b);
	return *rep ? 0 : -1;
}

int
bh_sp_read_reply(int fd, unsigned ms, uint32_t *reqid, Copal__Reply **rep)
{
	return bh_sp_read_reply_on(fd, false, ms, reqid, rep);
}

uint8_t *
bh_ping_bytes(size_t *len, uint64_t reqid)
{
	Copal__PingRequest p = COPAL__PING_REQUEST__INIT;
	Copal__Request rq = COPAL__REQUEST__INIT;
	rq.version = 1;
	rq.request_id = reqid;
	rq.body_case = COPAL__REQUEST__BODY_PING;
	rq.ping = &p;
	return bh_pack_req(&rq, len);
}

void
bh_serves_(bh_broker *b, unsigned ms, const char *file, int line)
{
	uint64_t end = bh_now_ms() + ms;
	int rv;
	do {
		cpl_client *c = bh_client_opts(b, false, NULL, 1000, 1);
		rv = bh_try_ping(c, 1000, NULL);
		cpl_client_close(c);
		if (rv == 0)
			return;
	} while (bh_now_ms() < end);
	bh_log_tail(b, 2000);
	BH_FAIL("%s:%d: the broker does not serve a new IPC client within %u ms "
	        "(last: %s); broker %s",
	    file, line, ms, cpl_errname(rv),
	    bh_alive(b->pid) ? "alive" : "DEAD");
}
