// Shared helpers for the broker integration tests (header-only).
//
//   #include "broker_harness.h"      (includes cmocka itself)
//
// Needs COPAL_BROKER defined to the path of the copal-broker executable
// (tests/CMakeLists.txt does this) and links with copal_client, NNG and
// Threads.
//
// What is here:
//  * bh_broker: a database in its own mkdtemp directory under /tmp (with
//    copal.conf and a 0600 secret) and the broker process serving it.
//    bh_init() makes the directory (and picks a free TCP port if asked),
//    bh_start() spawns the broker with posix_spawn and waits until it
//    answers a ping, bh_stop() sends SIGTERM and requires exit status 0
//    (so a sanitizer report or a leak in the broker fails the test) and
//    that no process is left, bh_kill9() kills it hard, bh_destroy() kills
//    whatever is left and removes the directory. Every broker spawned is
//    also killed at exit, and (through setpriv --pdeathsig, if present)
//    when the test process dies, so no broker outlives its test.
//    The broker's stderr (its log, --log-stderr, and any sanitizer report)
//    goes to DIR/broker.err; failures print its tail.
//  * calls through the client library that fail the test with the status
//    name, its message and the broker's error text (BH_OK, BH_CALL), and
//    one-line helpers for common requests (main thread only: they assert);
//  * raw NNG REQ sockets and raw AF_UNIX connections for bad input;
//  * a protobuf wire writer for requests protobuf-c cannot pack (strings
//    with NUL bytes, out-of-range values);
//  * a snapshot of what a database holds (counts by state, history length)
//    to prove that a bad request changed nothing.
//
// cmocka assertions jump out of the test: never call an asserting helper
// from a thread other than the one running the test. Threads record their
// errors and the test asserts after joining them.
#ifndef COPAL_BROKER_HARNESS_H
#define COPAL_BROKER_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "copal/client.h"

#ifndef COPAL_BROKER
#error "define COPAL_BROKER to the copal-broker executable"
#endif

extern char **environ;

// ------------------------------------------------------------ basics

#define BH_FAIL(...)                                                       \
	do {                                                               \
		print_error(__VA_ARGS__);                                  \
		print_error("\n");                                         \
		fail();                                                    \
	} while (0)

#define BH_CHECK(cond, ...)                                                \
	do {                                                               \
		if (!(cond)) {                                             \
			print_error("%s:%d: check failed: %s\n  ",         \
			    __FILE__, __LINE__, #cond);                    \
			BH_FAIL(__VA_ARGS__);                              \
		}                                                          \
	} while (0)

#define BH_EQ_U64(got, want)                                               \
	do {                                                               \
		unsigned long long bh_g_ = (unsigned long long)(got);      \
		unsigned long long bh_w_ = (unsigned long long)(want);     \
		if (bh_g_ != bh_w_)                                        \
			BH_FAIL("%s:%d: %s is %llu, expected %llu (%s)",   \
			    __FILE__, __LINE__, #got, bh_g_, bh_w_, #want); \
	} while (0)

static inline const char *
bh_sname(int s)
{
	const char *n = cpl_state_name(s);
	return n != NULL ? n : "(invalid state)";
}

#define BH_EQ_STATE(got, want)                                             \
	do {                                                               \
		int bh_g_ = (int)(got), bh_w_ = (int)(want);               \
		if (bh_g_ != bh_w_)                                        \
			BH_FAIL("%s:%d: %s is %s (%d), expected %s (%d)",  \
			    __FILE__, __LINE__, #got, bh_sname(bh_g_),     \
			    bh_g_, bh_sname(bh_w_), bh_w_);                \
	} while (0)

// Compare two error codes (copal statuses), by name.
#define BH_EQ_ERR(got, want)                                               \
	do {                                                               \
		int bh_g_ = (int)(got), bh_w_ = (int)(want);               \
		if (bh_g_ != bh_w_)                                        \
			BH_FAIL("%s:%d: %s is %s (%s), expected %s (%s)",  \
			    __FILE__, __LINE__, #got, cpl_errname(bh_g_),  \
			    cpl_strerror(bh_g_), cpl_errname(bh_w_),       \
			    cpl_strerror(bh_w_));                          \
	} while (0)

static inline uint64_t
bh_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void
bh_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

// Time factor: sanitizer builds run the broker several times slower.
static inline int
bh_slow(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 3;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return 3;
#else
	return 1;
#endif
#else
	return 1;
#endif
}

// A small seeded PRNG (xorshift64*), the same sequence on every run.
static inline uint64_t
bh_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

// A seed from COPAL_TEST_SEED or from the time and pid (printed by the
// caller so that a failing run can be repeated).
static inline uint64_t
bh_seed(void)
{
	const char *e = getenv("COPAL_TEST_SEED");
	if (e && *e)
		return strtoull(e, NULL, 0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
	    ((uint64_t)getpid() << 40);
}

static inline int
bh_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static inline void
bh_rm_rf(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, bh_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

// ------------------------------------------------------------ processes

// Every broker this process spawned and has not reaped.
static pid_t bh_pids[64];

static inline void
bh_forget_pid(pid_t pid)
{
	for (size_t i = 0; i < sizeof(bh_pids) / sizeof(bh_pids[0]); i++)
		if (bh_pids[i] == pid)
			bh_pids[i] = 0;
}

static inline void
bh_atexit(void)
{
	for (size_t i = 0; i < sizeof(bh_pids) / sizeof(bh_pids[0]); i++) {
		if (bh_pids[i] > 0) {
			kill(bh_pids[i], SIGKILL);
			waitpid(bh_pids[i], NULL, 0);
			bh_pids[i] = 0;
		}
	}
}

static inline void
bh_remember_pid(pid_t pid)
{
	static bool registered;
	if (!registered) {
		atexit(bh_atexit);
		registered = true;
	}
	for (size_t i = 0; i < sizeof(bh_pids) / sizeof(bh_pids[0]); i++) {
		if (bh_pids[i] == 0) {
			bh_pids[i] = pid;
			return;
		}
	}
}

// Waits up to ms for pid to exit; returns true and the status if it did.
static inline bool
bh_wait_exit(pid_t pid, unsigned ms, int *status)
{
	uint64_t end = bh_now_ms() + ms;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return true;
		if (r < 0 && errno == ECHILD) {
			*status = -1;
			return true;
		}
		if (bh_now_ms() >= end)
			return false;
		bh_sleep_ms(5);
	}
}

static inline void
bh_describe_status(int status, char *buf, size_t len)
{
	if (status == -1)
		snprintf(buf, len, "(not our child)");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status 0x%x", status);
}

// ------------------------------------------------------------ brokers

typedef struct bh_broker {
	char dir[64];        // the database directory (mkdtemp)
	char url[160];       // ipc://DIR/sock/broker
	char tcp[64];        // tcp://127.0.0.1:PORT, or "" for IPC only
	char token[33];      // the database secret
	char errpath[96];    // DIR/broker.err
	int port;
	pid_t pid;           // running broker, or 0
	int starts;
	// LeakSanitizer suppressions for the broker (sanitizer builds), one
	// per line such as "leak:libnng.so"; NULL: none. Only for tests that
	// trigger a known leak inside a dependency on purpose.
	const char *lsan_suppressions;
} bh_broker;

// A TCP port on 127.0.0.1 that nobody listens on now, chosen from the
// pid so that test programs running at once do not pick the same ones.
static inline int
bh_free_port(void)
{
	static unsigned n;
	for (int tries = 0; tries < 500; tries++) {
		unsigned p = 20000u +
		    ((unsigned)getpid() * 131u + (n++) * 7919u) % 40000u;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa;
		if (fd < 0)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)p);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return (int)p;
	}
	return -1;
}

static inline int
bh_write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, len);
	fchmod(fd, mode);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

// Makes a fresh database directory; with tcp, also picks a port.
static inline void
bh_init(bh_broker *b, bool tcp)
{
	char path[160];
	uint64_t seed = bh_seed();
	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "/tmp/cplbt.XXXXXX");
	if (mkdtemp(b->dir) == NULL)
		BH_FAIL("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/copal.conf", b->dir);
	const char *conf = "# copal test database\n";
	if (bh_write_file(path, conf, strlen(conf), 0644) != 0)
		BH_FAIL("cannot write %s: %s", path, strerror(errno));
	for (int i = 0; i < 32; i++)
		b->token[i] = "0123456789abcdef"[bh_rand(&seed) & 15];
	b->token[32] = '\0';
	snprintf(path, sizeof(path), "%s/secret", b->dir);
	if (bh_write_file(path, b->token, 32, 0600) != 0)
		BH_FAIL("cannot write %s: %s", path, strerror(errno));
	if (cpl_db_socket_url(b->dir, b->url, sizeof(b->url)) != 0)
		BH_FAIL("cpl_db_socket_url(%s) failed", b->dir);
	snprintf(b->errpath, sizeof(b->errpath), "%s/broker.err", b->dir);
	if (tcp) {
		if ((b->port = bh_free_port()) < 0)
			BH_FAIL("no free TCP port");
		snprintf(b->tcp, sizeof(b->tcp), "tcp://127.0.0.1:%d", b->port);
	}
}

// Prints the last `max` bytes of the broker's stderr.
static inline void
bh_log_tail(const bh_broker *b, size_t max)
{
	char buf[4097];
	int fd = open(b->errpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (max > sizeof(buf) - 1)
		max = sizeof(buf) - 1;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)max ? end - (off_t)max : 0;
	ssize_t n = pread(fd, buf, max, from);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		print_error("---- tail of %s ----\n%s\n---- end ----\n",
		    b->errpath, buf);
	}
}

// Whether the broker's stderr contains s.
static inline bool
bh_log_contains(const bh_broker *b, const char *s)
{
	FILE *f = fopen(b->errpath, "r");
	char line[1024];
	bool found = false;
	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, s) != NULL;
	fclose(f);
	return found;
}

// Spawns the broker; does not wait for it.
static inline pid_t
bh_spawn(bh_broker *b)
{
	posix_spawn_file_actions_t fa;
	char *argv[16];
	int k = 0;
	bool pdeath = access("/usr/bin/setpriv", X_OK) == 0;
	if (pdeath) {
		// the broker dies with the test process (a ctest timeout
		// kills the test with SIGKILL and no atexit runs)
		argv[k++] = (char *)"/usr/bin/setpriv";
		argv[k++] = (char *)"--pdeathsig";
		argv[k++] = (char *)"KILL";
		argv[k++] = (char *)"--";
	}
	argv[k++] = (char *)COPAL_BROKER;
	argv[k++] = (char *)"--db";
	argv[k++] = b->dir;
	if (b->tcp[0]) {
		argv[k++] = (char *)"--tcp";
		argv[k++] = b->tcp;
	}
	argv[k++] = (char *)"--log-stderr";
	argv[k] = NULL;
	// the environment, with LSAN_OPTIONS pointing at suppressions if asked
	char **envp = environ, **own = NULL;
	char supp[200];
	if (b->lsan_suppressions) {
		char path[120];
		size_t n = 0;
		snprintf(path, sizeof(path), "%s/lsan.supp", b->dir);
		if (bh_write_file(path, b->lsan_suppressions,
		        strlen(b->lsan_suppressions), 0644) != 0)
			BH_FAIL("cannot write %s", path);
		while (environ[n])
			n++;
		own = calloc(n + 2, sizeof(*own));
		if (own == NULL)
			BH_FAIL("out of memory");
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (strncmp(environ[i], "LSAN_OPTIONS=", 13) != 0)
				own[k++] = environ[i];
		snprintf(supp, sizeof(supp), "LSAN_OPTIONS=suppressions=%s", path);
		own[k++] = supp;
		own[k] = NULL;
		envp = own;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, b->errpath,
	    O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int rv = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(own);
	if (rv != 0)
		BH_FAIL("posix_spawn %s: %s", argv[0], strerror(rv));
	bh_remember_pid(pid);
	b->pid = pid;
	b->starts++;
	return pid;
}

// Opens a client on the broker's IPC socket (or TCP with the right token
// if tcp is set). timeout_ms 0: 5000 (times the sanitizer factor).
static inline cpl_client *
bh_client_opts(const bh_broker *b, bool tcp, const char *token,
    int timeout_ms, int attempts)
{
	cpl_client_opts o;
	cpl_client *c = NULL;
	memset(&o, 0, sizeof(o));
	o.db_dir = tcp ? NULL : b->dir;
	o.url = tcp ? b->tcp : NULL;
	o.token = tcp ? (token ? token : b->token) : token;
	o.timeout_ms = timeout_ms ? timeout_ms : 5000 * bh_slow();
	o.attempts = attempts ? attempts : 1;
	int rv = cpl_client_open(&o, &c);
	if (rv != 0)
		BH_FAIL("cpl_client_open(%s): %s (%s)", tcp ? b->tcp : b->dir,
		    cpl_errname(rv), cpl_strerror(rv));
	return c;
}

static inline cpl_client *
bh_client(const bh_broker *b)
{
	return bh_client_opts(b, false, NULL, 0, 1);
}

// One ping with a short timeout; 0 if the broker answered with success.
static inline int
bh_try_ping(cpl_client *c, int timeout_ms, uint32_t *pid)
{
	Copal__PingRequest p = COPAL__PING_REQUEST__INIT;
	Copal__Request rq = COPAL__REQUEST__INIT;
	Copal__Reply *r = NULL;
	rq.body_case = COPAL__REQUEST__BODY_PING;
	rq.ping = &p;
	int rv = cpl_client_call_once(c, &rq, timeout_ms, &r);
	if (rv != 0)
		return rv;
	rv = (int)r->status;
	if (rv == 0 && r->body_case != COPAL__REPLY__BODY_PING)
		rv = CPL_EPROTO;
	if (rv == 0 && pid)
		*pid = r->ping->pid;
	copal__reply__free_unpacked(r, NULL);
	return rv;
}

// Waits until the broker answers a ping over IPC (and TCP if it has a
// port), failing the test if it exits or does not answer in time.
static inline void
bh_wait_ready(bh_broker *b, unsigned ms)
{
	uint64_t end = bh_now_ms() + ms;
	cpl_client *c = bh_client_opts(b, false, NULL, 0, 1);
	cpl_client *t = b->tcp[0] ? bh_client_opts(b, true, NULL, 0, 1) : NULL;
	int rv = -1, trv = t ? -1 : 0;
	uint32_t pid = 0;
	for (;;) {
		int status;
		if (rv != 0)
			rv = bh_try_ping(c, 200, &pid);
		if (rv == 0 && trv != 0)
			trv = bh_try_ping(t, 200, NULL);
		if (rv == 0 && trv == 0)
			break;
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			char d[64];
			bh_describe_status(status, d, sizeof(d));
			bh_forget_pid(b->pid);
			b->pid = 0;
			cpl_client_close(c);
			cpl_client_close(t);
			bh_log_tail(b, 2000);
			BH_FAIL("broker for %s exited while starting: %s",
			    b->dir, d);
		}
		if (bh_now_ms() > end) {
			cpl_client_close(c);
			cpl_client_close(t);
			bh_log_tail(b, 2000);
			BH_FAIL("broker for %s did not answer a ping within %u ms "
			        "(ipc: %s, tcp: %s)",
			    b->dir, ms, cpl_errname(rv), cpl_errname(trv));
		}
		bh_sleep_ms(20);
	}
	cpl_client_close(c);
	cpl_client_close(t);
	if (pid != (uint32_t)b->pid) {
		bh_log_tail(b, 2000);
		BH_FAIL("ping answered by pid %u, the broker spawned is %d",
		    pid, (int)b->pid);
	}
}

// Spawns the broker and waits until it serves. A TCP port taken by
// someone else meanwhile is replaced by another once or twice.
static inline void
bh_start(bh_broker *b)
{
	for (int attempt = 0;; attempt++) {
		int status;
		bh_spawn(b);
		if (!b->tcp[0] || attempt >= 2)
			break;
		// a port taken between the bind check and the listen makes
		// the broker exit at once
		bh_sleep_ms(50);
		if (waitpid(b->pid, &status, WNOHANG) != b->pid)
			break;
		bh_forget_pid(b->pid);
		b->pid = 0;
		if (!bh_log_contains(b, "cannot listen on tcp"))
			break;
		if ((b->port = bh_free_port()) < 0)
			BH_FAIL("no free TCP port");
		snprintf(b->tcp, sizeof(b->tcp), "tcp://127.0.0.1:%d", b->port);
	}
	if (b->pid == 0)
		BH_FAIL("broker for %s could not start", b->dir);
	bh_wait_ready(b, 20000u * (unsigned)bh_slow());
}

static inline bool
bh_alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

// Stops the broker with SIGTERM. It must exit with status 0 within a
// generous time, remove its pid file and socket, and be gone. Returns
// false with the reason in err (and the log tail printed) otherwise.
static inline bool
bh_stop_check(bh_broker *b, char *err, size_t errlen)
{
	int status = 0;
	char d[64], path[160];
	struct stat st;
	pid_t pid = b->pid;
	if (pid <= 0) {
		snprintf(err, errlen, "no broker running for %s", b->dir);
		return false;
	}
	if (kill(pid, SIGTERM) != 0) {
		snprintf(err, errlen, "kill(%d, SIGTERM): %s", (int)pid,
		    strerror(errno));
		return false;
	}
	if (!bh_wait_exit(pid, 30000u * (unsigned)bh_slow(), &status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		bh_forget_pid(pid);
		b->pid = 0;
		bh_log_tail(b, 3000);
		snprintf(err, errlen,
		    "broker %d did not stop within %d s of SIGTERM (killed)",
		    (int)pid, 30 * bh_slow());
		return false;
	}
	bh_forget_pid(pid);
	b->pid = 0;
	if (!(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		bh_describe_status(status, d, sizeof(d));
		bh_log_tail(b, 4000);
		snprintf(err, errlen,
		    "broker %d stopped by SIGTERM: %s, expected exit status 0",
		    (int)pid, d);
		return false;
	}
	if (kill(pid, 0) == 0 || errno != ESRCH) {
		snprintf(err, errlen, "broker %d is still there after it was "
		    "reaped", (int)pid);
		return false;
	}
	snprintf(path, sizeof(path), "%s/broker.pid", b->dir);
	if (stat(path, &st) == 0) {
		snprintf(err, errlen, "%s is left after a clean stop", path);
		return false;
	}
	snprintf(path, sizeof(path), "%s/sock/broker", b->dir);
	if (stat(path, &st) == 0) {
		snprintf(err, errlen, "%s is left after a clean stop", path);
		return false;
	}
	return true;
}

static inline void
bh_stop(bh_broker *b)
{
	char err[512];
	if (!bh_stop_check(b, err, sizeof(err)))
		BH_FAIL("bh_stop: %s", err);
}

// Kills the broker with SIGKILL and reaps it.
static inline void
bh_kill9(bh_broker *b)
{
	int status;
	pid_t pid = b->pid;
	if (pid <= 0)
		BH_FAIL("bh_kill9: no broker running for %s", b->dir);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	bh_forget_pid(pid);
	b->pid = 0;
	if (kill(pid, 0) == 0 || errno != ESRCH)
		BH_FAIL("broker %d is still there after SIGKILL", (int)pid);
}

// Kills a broker still running (a failed test) and removes the directory.
static inline void
bh_destroy(bh_broker *b);

// The usual fixture end: stop the broker if it runs (it must exit 0),
// remove the directory, then fail if the stop was not clean.
static inline void
bh_finish(bh_broker *b)
{
	char err[512];
	bool ok = b->pid > 0 ? bh_stop_check(b, err, sizeof(err)) : true;
	bh_destroy(b);
	if (!ok)
		BH_FAIL("stopping the broker: %s", err);
}

static inline void
bh_destroy(bh_broker *b)
{
	if (b->pid > 0) {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
		bh_forget_pid(b->pid);
		b->pid = 0;
	}
	if (getenv("COPAL_TEST_KEEP") == NULL)
		bh_rm_rf(b->dir);
	else
		fprintf(stderr, "kept %s\n", b->dir);
}

// ------------------------------------------------------------ requests

static inline const char *
bh_body_name(const Copal__Request *rq)
{
	switch (rq->body_case) {
	case COPAL__REQUEST__BODY_CREATE: return "create";
	case COPAL__REQUEST__BODY_CLAIM: return "claim";
	case COPAL__REQUEST__BODY_REPORT: return "report";
	case COPAL__REQUEST__BODY_HEARTBEAT: return "heartbeat";
	case COPAL__REQUEST__BODY_QUERY: return "query";
	case COPAL__REQUEST__BODY_COUNT: return "count";
	case COPAL__REQUEST__BODY_MODIFY: return "modify";
	case COPAL__REQUEST__BODY_DELETE: return "delete";
	case COPAL__REQUEST__BODY_KILL: return "kill";
	case COPAL__REQUEST__BODY_ADD_DEPENDENCY: return "add_dependency";
	case COPAL__REQUEST__BODY_HISTORY: return "history";
	case COPAL__REQUEST__BODY_EXPORT: return "export";
	case COPAL__REQUEST__BODY_APP_REGISTER: return "app_register";
	case COPAL__REQUEST__BODY_APP_LIST: return "app_list";
	case COPAL__REQUEST__BODY_APP_DELETE: return "app_delete";
	case COPAL__REQUEST__BODY_PING: return "ping";
	default: return "(no body)";
	}
}

// Sends rq (a fresh request id unless rq->request_id is set) and returns
// the reply; want < 0 accepts any status, else the status must be want.
// The caller frees the reply with copal__reply__free_unpacked(r, NULL).
static inline Copal__Reply *
bh_call_(cpl_client *c, Copal__Request *rq, int want, const char *expr,
    const char *file, int line)
{
	Copal__Reply *r = NULL;
	int rv = cpl_client_call(c, rq, &r);
	if (rv != 0)
		BH_FAIL("%s:%d: %s request %s: no reply: %s (%s)", file, line,
		    bh_body_name(rq), expr, cpl_errname(rv), cpl_strerror(rv));
	if (want >= 0 && (int)r->status != want)
		BH_FAIL("%s:%d: %s request %s: status %s (%s), error text \"%s\"; "
		        "expected %s (%s)",
		    file, line, bh_body_name(rq), expr,
		    cpl_errname((int)r->status), cpl_strerror((int)r->status),
		    r->error ? r->error : "", cpl_errname(want),
		    cpl_strerror(want));
	if (r->status == 0 && r->body_case != (Copal__Reply__BodyCase)rq->body_case)
		BH_FAIL("%s:%d: %s request %s: success with reply body %d, "
		        "expected %d",
		    file, line, bh_body_name(rq), expr, (int)r->body_case,
		    (int)rq->body_case);
	return r;
}

#define BH_CALL(c, rq, want) bh_call_((c), (rq), (want), #rq, __FILE__, __LINE__)
#define BH_OK(c, rq) BH_CALL((c), (rq), 0)

// Declares `Copal__Request name` with the given body.
#define BH_REQ(name, KIND, field, bodyp)                                   \
	Copal__Request name = COPAL__REQUEST__INIT;                        \
	name.body_case = COPAL__REQUEST__BODY_##KIND;                      \
	name.field = (bodyp)

#define bh_free(r) copal__reply__free_unpacked((r), NULL)

// Packs a reply to compare two replies byte for byte; free the result.
static inline uint8_t *
bh_pack_reply(const Copal__Reply *r, size_t *len)
{
	*len = copal__reply__get_packed_size(r);
	uint8_t *b = malloc(*len ? *len : 1);
	if (b)
		copal__reply__pack(r, b);
	return b;
}

// Two replies must be equal (same packed bytes).
#define BH_SAME_REPLY(a, b) bh_same_reply_((a), (b), __FILE__, __LINE__)
static inline void
bh_same_reply_(const Copal__Reply *a, const Copal__Reply *b, const char *file,
    int line)
{
	size_t la, lb;
	uint8_t *pa = bh_pack_reply(a, &la), *pb = bh_pack_reply(b, &lb);
	bool same = pa && pb && la == lb && memcmp(pa, pb, la) == 0;
	free(pa);
	free(pb);
	if (!same)
		BH_FAIL("%s:%d: the replies differ: status %s/%s, body %d/%d, "
		        "%zu/%zu bytes packed",
		    file, line, cpl_errname((int)a->status),
		    cpl_errname((int)b->status), (int)a->body_case,
		    (int)b->body_case, la, lb);
}

// --- one-call helpers (assert on failure)

static inline void
bh_app(cpl_client *c, const char *name)
{
	Copal__App app = COPAL__APP__INIT;
	Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
	app.name = (char *)name;
	app.executable = (char *)"/bin/true";
	ar.app = &app;
	ar.replace = true;
	BH_REQ(rq, APP_REGISTER, app_register, &ar);
	bh_free(BH_OK(c, &rq));
}

// A spec in the caller's storage.
static inline Copal__TaskSpec
bh_spec(const char *name, const char *wf, const char *app)
{
	Copal__TaskSpec s = COPAL__TASK_SPEC__INIT;
	s.name = (char *)name;
	s.workflow = (char *)(wf ? wf : "");
	s.application = (char *)app;
	return s;
}

// Creates n tasks named "<prefix><i>" in workflow wf with app; returns the
// first id (ids are first .. first+n-1).
static inline uint64_t
bh_create(cpl_client *c, size_t n, const char *prefix, const char *wf,
    const char *app)
{
	Copal__TaskSpec *specs = calloc(n, sizeof(*specs));
	Copal__TaskSpec **sp = calloc(n, sizeof(*sp));
	char (*names)[64] = calloc(n, 64);
	if (!specs || !sp || !names)
		BH_FAIL("out of memory");
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 64, "%s%zu", prefix, i);
		specs[i] = bh_spec(names[i], wf, app);
		sp[i] = &specs[i];
	}
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = n;
	cr.tasks = sp;
	BH_REQ(rq, CREATE, create, &cr);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t first = r->create->first_id;
	BH_EQ_U64(r->create->count, n);
	bh_free(r);
	free(specs);
	free(sp);
	free(names);
	return first;
}

// The reply to a query for one task by id (NULL task if it does not
// exist). Free the reply.
static inline Copal__Reply *
bh_query_id(cpl_client *c, uint64_t id, bool with_spec, Copal__Task **t)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	f.n_ids = 1;
	f.ids = &id;
	q.filter = &f;
	q.with_spec = with_spec;
	BH_REQ(rq, QUERY, query, &q);
	Copal__Reply *r = BH_OK(c, &rq);
	*t = r->query->n_tasks ? r->query->tasks[0] : NULL;
	if (*t && (*t)->id != id)
		BH_FAIL("query for id %" PRIu64 " returned task %" PRIu64, id,
		    (*t)->id);
	return r;
}

// State of task id, or -1 if there is no such task.
static inline int
bh_state(cpl_client *c, uint64_t id)
{
	Copal__Task *t;
	Copal__Reply *r = bh_query_id(c, id, false, &t);
	int s = t ? (int)t->status->state : -1;
	bh_free(r);
	return s;
}

#define BH_STATE(c, id, want)                                              \
	do {                                                               \
		uint64_t bh_id_ = (id);                                    \
		int bh_s_ = bh_state((c), bh_id_);                         \
		if (bh_s_ != (int)(want))                                  \
			BH_FAIL("%s:%d: task %" PRIu64 " (%s) is %s, "     \
			        "expected %s",                             \
			    __FILE__, __LINE__, bh_id_, #id,               \
			    bh_s_ < 0 ? "absent" : bh_sname(bh_s_),        \
			    bh_sname((int)(want)));                        \
	} while (0)

// Grants a lease (ttl_ms) and returns its id.
static inline uint64_t
bh_lease(cpl_client *c, const char *owner, uint32_t ttl_ms)
{
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.owner = (char *)owner;
	hb.ttl_ms = ttl_ms;
	BH_REQ(rq, HEARTBEAT, heartbeat, &hb);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t id = r->heartbeat->lease_id;
	bh_free(r);
	if (id == 0)
		BH_FAIL("heartbeat granted lease id 0");
	return id;
}

// Claims under a lease with nnodes nodes of `units` free units each;
// returns the reply (free it).
static inline Copal__Reply *
bh_claim(cpl_client *c, uint64_t lease, uint32_t max, size_t nnodes,
    uint32_t units, uint32_t gpus, const char *wf)
{
	Copal__NodeCapacity *nc = calloc(nnodes, sizeof(*nc));
	Copal__NodeCapacity **ncp = calloc(nnodes, sizeof(*ncp));
	if (!nc || !ncp)
		BH_FAIL("out of memory");
	for (size_t i = 0; i < nnodes; i++) {
		Copal__NodeCapacity x = COPAL__NODE_CAPACITY__INIT;
		nc[i] = x;
		nc[i].free_units = units;
		nc[i].free_gpus = gpus;
		ncp[i] = &nc[i];
	}
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = max;
	cl.n_nodes = nnodes;
	cl.nodes = ncp;
	cl.workflow = (char *)(wf ? wf : "");
	BH_REQ(rq, CLAIM, claim, &cl);
	Copal__Reply *r = BH_OK(c, &rq);
	free(nc);
	free(ncp);
	return r;
}

// One report; returns its per-report status.
static inline int
bh_report1(cpl_client *c, uint64_t lease, uint64_t id, uint32_t attempt,
    int to, int rc, const char *msg)
{
	Copal__StateReport s = COPAL__STATE_REPORT__INIT;
	Copal__StateReport *sp = &s;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	s.task_id = id;
	s.attempt = attempt;
	s.to_state = (Copal__TaskState)to;
	s.return_code = rc;
	s.message = (char *)(msg ? msg : "");
	rr.lease_id = lease;
	rr.n_reports = 1;
	rr.reports = &sp;
	BH_REQ(rq, REPORT, report, &rr);
	Copal__Reply *r = BH_OK(c, &rq);
	if (r->report->n_status != 1)
		BH_FAIL("report of 1 answered with %zu statuses",
		    r->report->n_status);
	int st = (int)r->report->status[0];
	bh_free(r);
	return st;
}

static inline Copal__Reply *
bh_history(cpl_client *c, uint64_t id)
{
	Copal__HistoryRequest h = COPAL__HISTORY_REQUEST__INIT;
	h.task_id = id;
	BH_REQ(rq, HISTORY, history, &h);
	return BH_OK(c, &rq);
}

// Counts of one plain count request: by_state[16] and total.
static inline uint64_t
bh_count(cpl_client *c, const Copal__Filter *f, uint64_t by[CPL_NSTATES])
{
	Copal__CountRequest cr = COPAL__COUNT_REQUEST__INIT;
	cr.filter = (Copal__Filter *)f;
	BH_REQ(rq, COUNT, count, &cr);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t total = r->count->total, sum = 0;
	for (int s = 0; s < CPL_NSTATES; s++) {
		uint64_t v = (size_t)s < r->count->n_by_state ?
		    r->count->by_state[s] : 0;
		if (by)
			by[s] = v;
		sum += v;
	}
	if (sum != total)
		BH_FAIL("count: by_state adds up to %" PRIu64 ", total is %" PRIu64,
		    sum, total);
	bh_free(r);
	return total;
}

// Tasks in one state, over the whole database.
static inline uint64_t
bh_count_state(cpl_client *c, int state)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__TaskState s = (Copal__TaskState)state;
	f.n_states = 1;
	f.states = &s;
	return bh_count(c, &f, NULL);
}

// Tasks in one workflow.
static inline uint64_t
bh_count_wf(cpl_client *c, const char *wf)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	f.workflow = (char *)wf;
	return bh_count(c, &f, NULL);
}

// What a database holds, to show that a request changed nothing.
typedef struct bh_snap {
	uint64_t by_state[CPL_NSTATES];
	uint64_t total;
	uint64_t nevents;   // history events (export of the whole log)
	uint64_t last_seq;
	uint64_t napps;
} bh_snap;

static inline void
bh_snapshot(cpl_client *c, bh_snap *s)
{
	memset(s, 0, sizeof(*s));
	s->total = bh_count(c, NULL, s->by_state);
	uint64_t after = 0;
	for (int page = 0; page < 1000; page++) {
		Copal__ExportRequest e = COPAL__EXPORT_REQUEST__INIT;
		e.after_seq = after;
		e.limit = 100000;
		BH_REQ(rq, EXPORT, export, &e);
		Copal__Reply *r = BH_OK(c, &rq);
		s->nevents += r->export->n_events;
		if (r->export->n_events)
			s->last_seq = r->export->events[r->export->n_events - 1]->seq;
		bool more = r->export->more;
		if (r->export->last_seq <= after && more)
			BH_FAIL("export: more with no progress past seq %" PRIu64,
			    after);
		after = r->export->last_seq;
		bh_free(r);
		if (!more)
			break;
	}
	Copal__AppListRequest al = COPAL__APP_LIST_REQUEST__INIT;
	BH_REQ(rq, APP_LIST, app_list, &al);
	Copal__Reply *r = BH_OK(c, &rq);
	s->napps = r->app_list->n_apps;
	bh_free(r);
}

#define BH_SAME_SNAP(a, b, what) bh_same_snap_((a), (b), (what), __FILE__, __LINE__)
static inline void
bh_same_snap_(const bh_snap *a, const bh_snap *b, const char *what,
    const char *file, int line)
{
	for (int s = 0; s < CPL_NSTATES; s++)
		if (a->by_state[s] != b->by_state[s])
			BH_FAIL("%s:%d: after %s: %s count %" PRIu64 ", was %" PRIu64,
			    file, line, what, bh_sname(s), b->by_state[s],
			    a->by_state[s]);
	if (a->total != b->total || a->nevents != b->nevents ||
	    a->last_seq != b->last_seq || a->napps != b->napps)
		BH_FAIL("%s:%d: after %s: tasks %" PRIu64 " events %" PRIu64
		        " last seq %" PRIu64 " apps %" PRIu64 "; was %" PRIu64
		        " / %" PRIu64 " / %" PRIu64 " / %" PRIu64,
		    file, line, what, b->total, b->nevents, b->last_seq,
		    b->napps, a->total, a->nevents, a->last_seq, a->napps);
}

// ------------------------------------------------------------ raw NNG

// A REQ socket dialed to url (blocking dial), with send and receive
// timeouts and NNG's own resend turned off.
static inline int
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

// Sends bytes as one message and waits for one reply; *rep gets the
// decoded reply (NULL if undecodable). Returns an NNG error or 0.
static inline int
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

// Packs a request with protobuf-c exactly as given (no defaults filled).
static inline uint8_t *
bh_pack_req(const Copal__Request *rq, size_t *len)
{
	*len = copal__request__get_packed_size(rq);
	uint8_t *b = malloc(*len ? *len : 1);
	if (b == NULL)
		BH_FAIL("out of memory");
	copal__request__pack(rq, b);
	return b;
}

// Sends raw bytes on a fresh REQ socket and requires a reply with status
// want (< 0: any non-zero status); returns the reply (free it).
#define BH_RAW_EXPECT(url, buf, len, want)                                 \
	bh_raw_expect_((url), (buf), (len), (want), __FILE__, __LINE__)
static inline Copal__Reply *
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

// ------------------------------------------------------------ wire writer

typedef struct bh_wbuf {
	uint8_t *p;
	size_t n, cap;
} bh_wbuf;

static inline void
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

static inline void
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

// A varint field.
static inline void
bh_w_uint(bh_wbuf *b, unsigned field, uint64_t v)
{
	bh_w_varint(b, (uint64_t)field << 3 | 0);
	bh_w_varint(b, v);
}

// A length-delimited field (string, bytes or sub-message).
static inline void
bh_w_bytes(bh_wbuf *b, unsigned field, const void *d, size_t n)
{
	bh_w_varint(b, (uint64_t)field << 3 | 2);
	bh_w_varint(b, n);
	bh_w_raw(b, d, n);
}

static inline void
bh_w_sub(bh_wbuf *b, unsigned field, const bh_wbuf *sub)
{
	bh_w_bytes(b, field, sub->p, sub->n);
}

static inline void
bh_w_free(bh_wbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

// A whole request: version, request id, then one body field.
static inline void
bh_w_request(bh_wbuf *out, uint32_t version, uint64_t reqid, unsigned body,
    const bh_wbuf *sub)
{
	if (version)
		bh_w_uint(out, 1, version);
	if (reqid)
		bh_w_uint(out, 2, reqid);
	bh_w_sub(out, body, sub);
}

// ------------------------------------------------------------ raw sockets

// A plain AF_UNIX stream connection to an ipc:// URL; -1 on error.
static inline int
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

// A plain TCP connection to 127.0.0.1:port; -1 on error.
static inline int
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

// Writes all of buf (MSG_NOSIGNAL); false on error.
static inline bool
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

// Reads exactly n bytes within ms; returns n, 0 if the peer closed, -1 on
// error or timeout.
static inline ssize_t
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

// Whether the peer closes fd within ms (reading and dropping anything it
// sends first).
static inline bool
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

// SP protocol numbers (NNG: REQ 0x30, REP 0x31).
#define BH_SP_REQ 0x30
#define BH_SP_REP 0x31

// The SP connection header for `proto`; writes it and reads the peer's.
// Returns 0, or -1 (closed or wrong answer) with a reason in why.
static inline int
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

// One SP message on a raw stream: for IPC a type byte (1) first, then the
// 64-bit big-endian length, the 4-byte REQ request id (top bit set) and
// the body. TCP frames have no type byte.
static inline void
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

static inline void
bh_sp_frame(bh_wbuf *out, uint32_t reqid, const void *body, size_t n)
{
	bh_sp_frame_on(out, false, reqid, body, n);
}

// Reads one SP message from a raw stream within ms: *reqid gets its REQ
// id and *rep the decoded reply. Returns 0, or -1 (timeout, closed, bad).
static inline int
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

static inline int
bh_sp_read_reply(int fd, unsigned ms, uint32_t *reqid, Copal__Reply **rep)
{
	return bh_sp_read_reply_on(fd, false, ms, reqid, rep);
}

// A packed ping request (version 1).
static inline uint8_t *
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

// A fresh client must be served: a ping on a new connection within ms.
#define BH_SERVES(b, ms) bh_serves_((b), (ms), __FILE__, __LINE__)
static inline void
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

#endif // COPAL_BROKER_HARNESS_H
