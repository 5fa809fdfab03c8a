// copal_testing: broker processes. A database directory per broker, the
// broker spawned with posix_spawn and waited for, stopped (exit status 0
// required), killed and cleaned up; every broker spawned is also killed at
// exit. See copal/testing/broker.h.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "copal/testing/broker.h"
#include "copal/tlsgen.h"

// The broker of this build tree, set by tests/testing/CMakeLists.txt.
#ifndef COPAL_BROKER
#error "define COPAL_BROKER to the copal-broker executable"
#endif

extern char **environ;

const char *
bh_sname(int s)
{
	const char *n = cpl_state_name(s);
	return n != NULL ? n : "(invalid state)";
}

uint64_t
bh_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
bh_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
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

uint64_t
bh_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

uint64_t
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

static int
bh_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void
bh_rm_rf(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, bh_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

// Every broker this process spawned and has not reaped.
static pid_t bh_pids[64];

static void
bh_forget_pid(pid_t pid)
{
	for (size_t i = 0; i < sizeof(bh_pids) / sizeof(bh_pids[0]); i++)
		if (bh_pids[i] == pid)
			bh_pids[i] = 0;
}

static void
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

static void
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

bool
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

void
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

int
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

static int
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

void
bh_init(bh_broker *b, bool tcp)
{
	bh_init_at(b, tcp, "/tmp/cplbt.XXXXXX");
}

void
bh_init_at(bh_broker *b, bool tcp, const char *tmpl)
{
	char path[160];
	uint64_t seed = bh_seed();
	memset(b, 0, sizeof(*b));
	if (strlen(tmpl) >= sizeof(b->dir))
		BH_FAIL("bh_init_at: %s is longer than %zu characters", tmpl,
		    sizeof(b->dir) - 1);
	memcpy(b->dir, tmpl, strlen(tmpl) + 1);
	if (mkdtemp(b->dir) == NULL)
		BH_FAIL("mkdtemp %s: %s", tmpl, strerror(errno));
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
		char err[256];
		if (cpl_tls_generate(b->dir, err, sizeof(err)) != 0)
			BH_FAIL("TLS identity for %s: %s", b->dir, err);
		if ((b->port = bh_free_port()) < 0)
			BH_FAIL("no free TCP port");
		snprintf(b->tcp, sizeof(b->tcp), "tls+tcp://127.0.0.1:%d",
		    b->port);
	}
}

void
bh_plain_tcp(bh_broker *b)
{
	char path[160];
	const char *line = "broker_tcp_insecure = true\n";
	snprintf(b->tcp, sizeof(b->tcp), "tcp://127.0.0.1:%d", b->port);
	snprintf(path, sizeof(path), "%s/copal.conf", b->dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		BH_FAIL("cannot write %s: %s", path, strerror(errno));
	close(fd);
}

void
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

// Prints every thread's stack of a broker that will not stop, before it is
// killed, so that a hang seen once in CI can be read afterwards. Needs gdb
// (the test command installs it) and a system that lets it attach to a
// sibling process; otherwise gdb says why, and the test goes on.
static void
dump_stacks(pid_t pid)
{
	char p[32];
	snprintf(p, sizeof(p), "%d", (int)pid);
	char *argv[] = { "timeout", "60", "gdb", "-batch", "-nx", "-p", p,
		"-ex", "thread apply all bt", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	pid_t g;
	int status = 0;
	print_error("---- stacks of broker %d ----\n", (int)pid);
	fflush(stdout);
	fflush(stderr);
	int rv = posix_spawnp(&g, "timeout", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rv != 0) {
		print_error("cannot run gdb: %s\n", strerror(rv));
		return;
	}
	while (waitpid(g, &status, 0) < 0 && errno == EINTR)
		;
	print_error("---- end of stacks (gdb: status %d) ----\n", status);
}

bool
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

bool
bh_log_wait(const bh_broker *b, const char *s, unsigned ms)
{
	uint64_t end = bh_now_ms() + ms;
	for (;;) {
		if (bh_log_contains(b, s))
			return true;
		if (bh_now_ms() >= end)
			return false;
		bh_sleep_ms(20);
	}
}

pid_t
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

cpl_client *
bh_client_opts(const bh_broker *b, bool tcp, const char *token,
    int timeout_ms, int attempts)
{
	cpl_client_opts o;
	cpl_client *c = NULL;
	memset(&o, 0, sizeof(o));
	char cert[128], key[128];
	snprintf(cert, sizeof(cert), "%s/tls.crt", b->dir);
	snprintf(key, sizeof(key), "%s/tls.key", b->dir);
	o.db_dir = tcp ? NULL : b->dir;
	o.url = tcp ? b->tcp : NULL;
	o.tls_cert = cert;
	o.tls_key = key;
	o.token = tcp ? (token ? token : b->token) : token;
	o.timeout_ms = timeout_ms ? timeout_ms : 5000 * bh_slow();
	o.attempts = attempts ? attempts : 1;
	int rv = cpl_client_open(&o, &c);
	if (rv != 0)
		BH_FAIL("cpl_client_open(%s): %s (%s)", tcp ? b->tcp : b->dir,
		    cpl_errname(rv), cpl_strerror(rv));
	return c;
}

cpl_client *
bh_client(const bh_broker *b)
{
	return bh_client_opts(b, false, NULL, 0, 1);
}

int
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

void
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

void
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
		if (!bh_log_contains(b, "cannot listen on tcp") &&
		    !bh_log_contains(b, "cannot listen on tls+tcp"))
			break;
		if ((b->port = bh_free_port()) < 0)
			BH_FAIL("no free TCP port");
		snprintf(b->tcp, sizeof(b->tcp), "%s://127.0.0.1:%d",
		    strncmp(b->tcp, "tls+", 4) == 0 ? "tls+tcp" : "tcp",
		    b->port);
	}
	if (b->pid == 0)
		BH_FAIL("broker for %s could not start", b->dir);
	bh_wait_ready(b, 20000u * (unsigned)bh_slow());
}

bool
bh_alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

bool
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
		dump_stacks(pid);
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

void
bh_stop(bh_broker *b)
{
	char err[512];
	if (!bh_stop_check(b, err, sizeof(err)))
		BH_FAIL("bh_stop: %s", err);
}

void
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

void
bh_finish(bh_broker *b)
{
	char err[512];
	bool ok = b->pid > 0 ? bh_stop_check(b, err, sizeof(err)) : true;
	bh_destroy(b);
	if (!ok)
		BH_FAIL("stopping the broker: %s", err);
}

void
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

int
bh_fx_setup(void **state)
{
	bh_fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	bh_init(&f->b, false);
	bh_start(&f->b);
	f->c = bh_client(&f->b);
	bh_app(f->c, "app");
	return 0;
}

int
bh_fx_teardown(void **state)
{
	bh_fx *f = *state;
	cpl_client_close(f->c);
	bh_finish(&f->b);
	free(f);
	return 0;
}
