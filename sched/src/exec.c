// Running a scheduler command (see copal/sched.h): with a time limit, in a
// session of its own so that a time-out kills all it started, its output
// read in full up to a bound; and the one line that tells why it failed.
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

#define ERR_MAX (64u << 10)

// ------------------------------------------------------------ helpers

double
sched_mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// ------------------------------------------------------------ commands

typedef struct buf {
	char *p;
	size_t n, max;
} buf;

// Reads what is there; returns false at end of file or error.
static bool
drain(int fd, buf *b)
{
	char tmp[8192];
	ssize_t k = read(fd, tmp, sizeof(tmp));
	if (k < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (k <= 0)
		return false;
	size_t take = (size_t)k;
	if (b->n + take > b->max)
		take = b->max - b->n; // the rest is read and dropped
	if (take) {
		b->p = cpl_xrealloc(b->p, b->n + take + 1);
		memcpy(b->p + b->n, tmp, take);
		b->n += take;
		b->p[b->n] = '\0';
	}
	return true;
}

int
sched_exec(char *const argv[], unsigned timeout_s, sched_cmd *r)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	pid_t pid;
	memset(r, 0, sizeof(*r));
	r->status = -1;
	double t0 = sched_mono_s();
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		r->spawn_errno = errno;
		goto done;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawnattr_init(&at);
	// its own session: a time-out kills everything it started
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	int e = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (e != 0) {
		r->spawn_errno = e;
		goto done;
	}
	buf out = { NULL, 0, SCHED_OUT_MAX }, err = { NULL, 0, ERR_MAX };
	bool oopen = true, eopen = true;
	double deadline = t0 + timeout_s;
	while (oopen || eopen) {
		double left = deadline - sched_mono_s();
		if (left <= 0) {
			r->timed_out = true;
			break;
		}
		struct pollfd pf[2] = { { oopen ? po[0] : -1, POLLIN, 0 },
			{ eopen ? pe[0] : -1, POLLIN, 0 } };
		int k = poll(pf, 2, (int)(left * 1000) + 1);
		if (k < 0 && errno != EINTR)
			break;
		if (k <= 0)
			continue;
		if (pf[0].revents && !drain(po[0], &out))
			oopen = false;
		if (pf[1].revents && !drain(pe[0], &err))
			eopen = false;
	}
	// The pipes are closed (or the time is up); the process may linger:
	// give it what is left of the time, then kill its session.
	int st = 0;
	// Out of time: kill the whole session now, before reaping, so that
	// children which kept the pipes open go too (reaping first would free
	// the group id for reuse).
	if (r->timed_out)
		kill(-pid, SIGKILL);
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			st = -1;
			break;
		}
		if (r->timed_out || sched_mono_s() >= deadline) {
			r->timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			break;
		}
		usleep(10000);
	}
	if (!r->timed_out && st != -1 && WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	r->out = out.p;
	r->err = err.p;
done:
	if (r->out == NULL)
		r->out = cpl_xstrdup("");
	if (r->err == NULL)
		r->err = cpl_xstrdup("");
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	r->seconds = sched_mono_s() - t0;
	return r->status == 0 ? 0 : -1;
}

void
sched_cmd_free(sched_cmd *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

// ------------------------------------------------------------ explain

// text with runs of white space (newlines included) made one blank, trimmed
void
sched_one_line(const char *text, char *out, size_t len)
{
	size_t n = 0;
	bool blank = false;
	for (const char *p = text; *p && n + 1 < len; p++) {
		if (isspace((unsigned char)*p)) {
			blank = n > 0;
			continue;
		}
		if (blank && n + 2 < len)
			out[n++] = ' ';
		blank = false;
		out[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	}
	out[n] = '\0';
}

void
sched_cmd_explain(const char *name, const sched_cmd *r, char *b, size_t len)
{
	char said[1024];
	sched_one_line(r->err && r->err[0] ? r->err : (r->out ? r->out : ""), said,
	    sizeof(said));
	if (r->spawn_errno)
		snprintf(b, len, "cannot run %s: %s", name,
		    strerror(r->spawn_errno));
	else if (r->timed_out)
		snprintf(b, len, "%s did not finish in time (killed after "
		    "%.0f s)%s%s", name, r->seconds, said[0] ? ": " : "", said);
	else if (r->status < 0)
		snprintf(b, len, "%s was killed by a signal%s%s", name,
		    said[0] ? ": " : "", said);
	else
		snprintf(b, len, "%s exited %d%s%s", name, r->status,
		    said[0] ? ": " : "", said);
}
