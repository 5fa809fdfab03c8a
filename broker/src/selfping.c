// The IPC self-check's ping, over a plain Unix socket rather than an NNG
// REQ socket of the broker's own process.
//
// Why not NNG: NNG frees every closed connection of the process on one
// thread, its reaper, and nng_close() waits for it. NNG 1.5.2 can leave
// that thread stuck for good (see checker_main in net.c); seen in CI, the
// checker then waited forever in nng_close() of its own client socket,
// and the broker's stop waited for the checker. Here every step has a
// deadline (poll), and closing is close(2), so the check goes on, and can
// tell that the reaper is stuck.
//
// The wire is NNG's IPC transport: each side sends an 8-byte SP header
// (0, 'S', 'P', 0, protocol as 16 bits big-endian, 0, 0), then messages
// framed as a type byte (1) and a 64-bit big-endian length. A REQ
// message starts with its 32-bit request id, high bit set; the REP
// answer carries it back.
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "copal.pb-c.h"
#include "copal/common.h"
#include "net.h"

enum { SP_REQ = 0x30, SP_REP = 0x31, PING_ID = 0x80000001u };

static int64_t
now_ms(void)
{
	return (int64_t)(cpl_mono_us() / 1000);
}

// Waits for fd to be ready for ev until the deadline: 0, or -1 (time out,
// error or hang-up without data).
static int
wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p = { .fd = fd, .events = ev };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return (p.revents & ev) ? 0 : -1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int
write_all(int fd, const uint8_t *b, size_t n, int64_t deadline)
{
	while (n > 0) {
		if (wait_fd(fd, POLLOUT, deadline) != 0)
			return -1;
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, uint8_t *b, size_t n, int64_t deadline)
{
	while (n > 0) {
		if (wait_fd(fd, POLLIN, deadline) != 0)
			return -1;
		ssize_t r = recv(fd, b, n, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static uint64_t
get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

// The exchange on a connected socket: 0 when the broker answered the
// ping.
static int
ping_on(int fd, int64_t deadline)
{
	uint8_t hdr[8] = { 0, 'S', 'P', 0, 0, SP_REQ, 0, 0 }, peer[8];
	if (write_all(fd, hdr, sizeof(hdr), deadline) != 0 ||
	    read_all(fd, peer, sizeof(peer), deadline) != 0)
		return -1;
	if (memcmp(peer, "\0SP\0", 4) != 0 || get_be(peer + 4, 2) != SP_REP)
		return -1;

	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__PingRequest ping = COPAL__PING_REQUEST__INIT;
	req.version = 1;
	req.body_case = COPAL__REQUEST__BODY_PING;
	req.ping = &ping;
	uint8_t msg[64];
	size_t body = copal__request__get_packed_size(&req);
	if (body > sizeof(msg) - 13)
		return -1;
	msg[0] = 1;
	put_be(msg + 1, body + 4, 8);
	put_be(msg + 9, PING_ID, 4);
	copal__request__pack(&req, msg + 13);
	if (write_all(fd, msg, 13 + body, deadline) != 0)
		return -1;

	// the answer: any reply with our request id shows that the listener
	// takes connections and the broker answers, whatever its status (a
	// ping that fails on the database is still an answer). Its size
	// grows with the database's path; a ping's reply is never near 64 kB.
	uint8_t rh[13];
	if (read_all(fd, rh, sizeof(rh), deadline) != 0 || rh[0] != 1)
		return -1;
	uint64_t len = get_be(rh + 1, 8);
	if (len < 4 || len - 4 > 65536 || get_be(rh + 9, 4) != PING_ID)
		return -1;
	uint8_t *rb = malloc(len - 4 > 0 ? (size_t)(len - 4) : 1);
	if (rb == NULL)
		return -1;
	int ok = -1;
	if (read_all(fd, rb, (size_t)(len - 4), deadline) == 0) {
		Copal__Reply *rep =
		    copal__reply__unpack(NULL, (size_t)(len - 4), rb);
		if (rep != NULL) {
			ok = 0;
			copal__reply__free_unpacked(rep, NULL);
		}
	}
	free(rb);
	return ok;
}

int
net_selfping(const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int64_t deadline = now_ms() + timeout_ms;
	int rv;
	// a Unix socket's non-blocking connect does not wait for a full
	// backlog (EAGAIN, not connected): try again until the deadline
	while ((rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) != 0 &&
	    (errno == EAGAIN || errno == EINTR) && now_ms() < deadline)
		usleep(10000);
	if (rv == 0)
		rv = ping_on(fd, deadline);
	close(fd);
	return rv;
}
