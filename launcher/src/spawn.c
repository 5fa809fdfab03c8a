// Processes of tasks: each stage's process is started in a process group
// of its own, so that a kill reaches everything it started, and without a
// controlling terminal; children are reaped with waitpid(WNOHANG) from the
// loop.
//
// A group, not a session of its own (setsid): where the kernel groups
// processes for scheduling by session (sched_autogroup_enabled, the
// default of most distributions), each new session is a new scheduling
// group, made and torn down per task; that cost tens of microseconds of
// CPU per /bin/true and cut the rate at which they could be started by a
// factor of 2-4 on a busy machine (BENCHMARKS.md). The terminal a session of its own would have
// cut it from is given up instead (TIOCNOTTY), when the launcher has one.
//
// The start is a vfork: the child borrows the launcher's memory and stack
// until its exec, as glibc's posix_spawn does, but without posix_spawn's
// own costs per start: a child stack mapped and unmapped (the unmap
// interrupts every CPU the launcher's threads ran on) and a sigaction
// call for each of the 64 signals in the child before its exec. The
// child here resets only the signals that are not at their default in
// the launcher (read once), then makes its group, descriptors and
// directory and execs; the launcher waits for that exec, as with
// posix_spawn, and gets the errno of whichever step failed.
//
// Tasks die with their launcher: a guard process, forked before any
// thread exists, shares a table of the task process groups running with
// the launcher (anonymous shared memory mapped before the fork). The
// launcher writes a group into a slot as it starts and clears the slot as
// it reaps it: no system call, and no wake-up of the guard, per task.
// The guard only reads a pipe; when the launcher ends in any way, SIGKILL
// included, the pipe reads end of file and the guard kills the groups
// still in the table, before the broker hands their tasks to someone
// else. (PR_SET_PDEATHSIG in the child would reach only the group's
// leader.)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher_impl.h"

extern char **environ;

static int guard_fd = -1; // write end of the guard's pipe, kept open
// The shared table: a process group per slot, 0 for a free slot. A task
// has at most one process at a time, so MAX_TASKS slots are enough; the
// free ones are kept on a stack of the launcher's own.
#define GUARD_SLOTS MAX_TASKS
static pid_t *guard_tab;
static uint32_t *guard_free;
static size_t guard_nfree;

// The guard: waits for the launcher's end, then kills what is left.
static void __attribute__((noreturn))
guard_main(int fd)
{
	char buf[64];
	ssize_t got;
	// the launcher's end is what matters: a ^C or a SIGTERM to its
	// group leaves the guard to clean up after it
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_NAME, "copal-guard", 0, 0, 0);
	// nothing is ever written: only the end of file matters
	while ((got = read(fd, buf, sizeof(buf))) != 0)
		if (got < 0 && errno != EINTR)
			break;
	// the launcher is gone, and with it any store still to come
	for (size_t j = 0; j < GUARD_SLOTS; j++) {
		pid_t p = __atomic_load_n(&guard_tab[j], __ATOMIC_ACQUIRE);
		if (p > 0)
			killpg(p, SIGKILL);
	}
	_exit(0);
}

int
proc_guard_start(void)
{
	int p[2];
	guard_tab = mmap(NULL, GUARD_SLOTS * sizeof(pid_t),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (guard_tab == MAP_FAILED) {
		guard_tab = NULL;
		return errno;
	}
	guard_free = malloc(GUARD_SLOTS * sizeof(*guard_free));
	if (guard_free == NULL)
		return ENOMEM;
	for (size_t i = 0; i < GUARD_SLOTS; i++)
		guard_free[i] = (uint32_t)(GUARD_SLOTS - 1 - i);
	guard_nfree = GUARD_SLOTS;
	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		// out of the launcher's group and session: a kill of that
		// group does not take the guard with it
		setsid();
		close(p[1]);
		int fd = p[0] == 3 ? 3 : dup2(p[0], 3);
		closefrom(fd >= 0 ? 4 : 3);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			if (devnull > 2)
				close(devnull);
		}
		guard_main(3);
	}
	close(p[0]);
	guard_fd = p[1];
	return 0;
}

// Descriptors the launcher inherited, from FDS_LOW up (a batch job's
// starter, mpirun or srun may leave some open, e.g. at 251): the kernel
// copies the descriptor table up to the highest open one at every fork,
// and a table over 64 entries is allocated, copied and freed again for
// every task process (and closed in the child before its exec). Moved
// down to the lowest free numbers, the file stays open as before (a pipe
// whose reader waits for the launcher's end still sees it alive).
#define FDS_LOW 64

void
proc_fds_compact(void)
{
	DIR *d = opendir("/proc/self/fd");
	int fds[64], n = 0;
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 64) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end == '\0' && e->d_name[0] != '\0' && fd >= FDS_LOW &&
		    fd != dirfd(d))
			fds[n++] = (int)fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++) {
		int low = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (low >= 0 && low < fds[i])
			close(fds[i]);
		else if (low >= 0)
			close(low);
	}
}

// Puts a task's new process group into the guard's table.
static void
guard_add(ltask *t, pid_t pid)
{
	if (guard_tab == NULL || guard_nfree == 0) {
		// (a task holds one slot at most: not reached)
		logm(LL_WARN, "the guard of task processes has no slot for "
		    "process %d", (int)pid);
		return;
	}
	uint32_t s = guard_free[--guard_nfree];
	__atomic_store_n(&guard_tab[s], pid, __ATOMIC_RELEASE);
	t->gslot = s + 1;
}

// Takes a reaped process group out of the table.
static void
guard_del(ltask *t)
{
	if (t->gslot == 0)
		return;
	uint32_t s = t->gslot - 1;
	__atomic_store_n(&guard_tab[s], 0, __ATOMIC_RELEASE);
	guard_free[guard_nfree++] = s;
	t->gslot = 0;
}

void
proc_kill(ltask *t, int sig)
{
	if (t->pid > 0 && killpg(t->pid, sig) != 0 && errno != ESRCH)
		logm(LL_WARN, "killpg %d: %s", (int)t->pid, strerror(errno));
}

static char *
hosts_of(launcher *L, ltask *t, char *buf, size_t len)
{
	size_t pos = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < t->nnodes; i++) {
		int n = snprintf(buf + pos, len - pos, "%s%s", i ? "," : "",
		    L->nodes[t->nodes[i]].name);
		if (n < 0 || (size_t)n >= len - pos)
			break;
		pos += (size_t)n;
	}
	return buf;
}

// Environment of a task's processes: ours, then copal's variables, then
// the task's own. Returns a NULL-terminated array to free(): ours are not
// copied (the launcher never changes its environment), and the task's
// strings live in the same allocation as the array, written with memcpy
// rather than one asprintf (a malloc and a printf) each: this runs once
// per stage of every task.
struct envw {
	char **env;
	size_t n;
	char *pos;
};

// Appends the variable a b c (a name and =, the value in parts).
static void
env_put(struct envw *w, const char *a, const char *b, const char *c)
{
	char *s = w->pos;
	const char *part[3] = { a, b, c };
	for (int i = 0; i < 3; i++) {
		size_t l = part[i] ? strlen(part[i]) : 0;
		memcpy(w->pos, part[i] ? part[i] : "", l);
		w->pos += l;
	}
	*w->pos++ = '\0';
	w->env[w->n++] = s;
}

static size_t
slen(const char *s)
{
	return s ? strlen(s) : 0;
}

// Decimal digits of v in buf (at least 21 bytes).
static const char *
u64str(char *buf, uint64_t v)
{
	char *p = buf + 20;
	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return p;
}

static char **
task_env(launcher *L, ltask *t, const char *extra1, const char *extra2)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const Copal__Resources *res = sp->resources;
	size_t n0 = 0;
	while (environ[n0])
		n0++;
	char parents[4096], hosts[4096];
	size_t pos = 0;
	parents[0] = '\0';
	for (size_t i = 0; i < sp->n_parent_ids && pos < sizeof(parents) - 24;
	     i++)
		pos += (size_t)snprintf(parents + pos, sizeof(parents) - pos,
		    "%s%llu", i ? "," : "", (unsigned long long)sp->parent_ids[i]);
	hosts_of(L, t, hosts, sizeof(hosts));
	uint32_t tpr = res && res->threads_per_rank ? res->threads_per_rank : 1;
	char idb[21], attb[21], tprb[21], leaseb[21];
	const char *mode = L->o->mode == MODE_MPI ? "mpi" : "serial";
	// the names and = of copal's variables, numbers, NULs: under 512
	size_t bytes = 512 + strlen(L->db) + slen(t->uuid) + slen(t->name) +
	    slen(sp->workflow) + pos + strlen(hosts) + strlen(L->self_hosts) +
	    strlen(t->gpu_list) + slen(extra1) + slen(extra2);
	for (size_t i = 0; i < sp->n_environ; i++)
		bytes += slen(sp->environ[i]->name) +
		    slen(sp->environ[i]->value) + 2;
	size_t cap = n0 + sp->n_environ + 20;
	char **env = malloc(cap * sizeof(char *) + bytes);
	if (env == NULL)
		return NULL;
	memcpy(env, environ, n0 * sizeof(char *));
	struct envw w = { env, n0, (char *)(env + cap) };
	env_put(&w, "COPAL_DB=", L->db, NULL);
	env_put(&w, "COPAL_TASK_ID=", u64str(idb, t->id), NULL);
	env_put(&w, "COPAL_TASK_UUID=", t->uuid, NULL);
	env_put(&w, "COPAL_TASK_NAME=", t->name, NULL);
	env_put(&w, "COPAL_WORKFLOW=", sp->workflow, NULL);
	env_put(&w, "COPAL_ATTEMPT=", u64str(attb, t->attempt), NULL);
	env_put(&w, "COPAL_PARENT_IDS=", parents, NULL);
	env_put(&w, "COPAL_NODES=", hosts, NULL);
	env_put(&w, "COPAL_LAUNCHER_NODES=", L->self_hosts, NULL);
	env_put(&w, "COPAL_JOB_MODE=", mode, NULL);
	env_put(&w, "OMP_NUM_THREADS=", u64str(tprb, tpr), NULL);
	if (t->gpu_list[0])
		env_put(&w, "CUDA_VISIBLE_DEVICES=", t->gpu_list, NULL);
	if (extra1) {
		// a stage around the run may edit its own task (issue 22)
		env_put(&w, "COPAL_LEASE_ID=", u64str(leaseb, L->lease), NULL);
		env_put(&w, extra1, NULL, NULL);
	}
	if (extra2)
		env_put(&w, extra2, NULL, NULL);
	for (size_t i = 0; i < sp->n_environ; i++)
		env_put(&w, sp->environ[i]->name, "=", sp->environ[i]->value);
	env[w.n] = NULL;
	return env;
}

// Signals whose disposition in the launcher is not the default (SIGPIPE
// is ignored; a library may have set a handler): a task gets them back
// at SIG_DFL. Read at the first start (spawn_setup), when every library
// is set up; the launcher sets none after that.
static sigset_t nondefault;
static bool nondefault_read;
// The launcher's controlling terminal (close-on-exec), which each task
// process gives up; -1 without one.
static int tty_fd = -1;
// /dev/null (close-on-exec, above 2), a task's standard input: dup2'd in
// the child, not opened and closed there for each task
static int null_fd = -1;

static void
spawn_setup(void)
{
	tty_fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	// (not 0, 1 or 2, should the launcher have been started without
	// them: dup2 onto itself would keep close-on-exec)
	if (fd >= 0 && fd <= 2) {
		null_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		close(fd);
	} else {
		null_fd = fd;
	}
	sigemptyset(&nondefault);
	for (int s = 1; s < NSIG; s++) {
		struct sigaction sa;
		// (glibc's own signals are refused: EINVAL)
		if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			sigaddset(&nondefault, s);
	}
	nondefault_read = true;
}

// What a task's process is started with; all made before the vfork, so
// that the child only makes system calls.
struct plan {
	const char *path;
	char *const *argv;
	char *const *env;
	const char *dir;
	const char *out;
};

// The child of the vfork, on the launcher's stack and memory until its
// exec: never returns; a failed step's errno goes to *err (the parent's,
// read once the child has exited) and the child exits 127.
static void __attribute__((noreturn, noinline))
spawn_child(const struct plan *p, volatile int *err)
{
	struct sigaction dfl;
	sigset_t none;
	int fd;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	if (setpgid(0, 0) < 0)
		goto fail;
	// (for a process that leads no session, TIOCNOTTY only takes the
	// terminal from this process; it fails on a terminal hung up since,
	// which the kernel has taken from the whole session already)
	if (tty_fd >= 0)
		(void)ioctl(tty_fd, TIOCNOTTY);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&nondefault, s) == 1)
			sigaction(s, &dfl, NULL);
	// 0 from /dev/null, 1 and 2 appended to the output file, nothing
	// else of the launcher's (sockets, inherited descriptors)
	if (null_fd >= 0) {
		if (dup2(null_fd, 0) < 0)
			goto fail;
	} else {
		if ((fd = open("/dev/null", O_RDONLY)) < 0)
			goto fail;
		if (fd != 0 && (dup2(fd, 0) < 0 || close(fd) < 0))
			goto fail;
	}
	// (close-on-exec: the closefrom below closes it, no close of its own)
	if ((fd = open(p->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0644)) < 0)
		goto fail;
	// (a launcher started with fd 1 closed gets the file there, still
	// close-on-exec: dup2 clears the flag on its copy, this on fd 1)
	if (fd == 1 ? fcntl(1, F_SETFD, 0) < 0 : dup2(fd, 1) < 0)
		goto fail;
	if (dup2(1, 2) < 0 || chdir(p->dir) < 0)
		goto fail;
	closefrom(3);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(p->path, p->argv, p->env);
fail:
	*err = errno ? errno : EIO;
	_exit(127);
}

// Starts the plan's process: 0 and its pid in *out, or the errno of the
// step that failed (ENOENT: no such program), with no process left.
static int
spawn_plan(const struct plan *p, pid_t *out)
{
	volatile int err = 0;
	sigset_t all, old;
	// every signal blocked across the vfork: none may run in the child
	// before it has reset them (the child unblocks them just before its
	// exec)
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = vfork();
	if (pid == 0)
		spawn_child(p, &err);
	int e = pid < 0 ? errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid > 0 && err != 0) {
		// it has exited (a vfork returns at the child's exec or exit)
		e = err;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (e == 0)
		*out = pid;
	return e;
}

int
proc_spawn(launcher *L, ltask *t, const char *cmd, const char *extra1,
    const char *extra2)
{
	const char *envscript = t->ct->app->envscript;
	char *full = NULL;
	int rv;
	// A command line with nothing for a shell to do, whose program is
	// given by path, is run directly (one exec instead of two); anything
	// else goes through /bin/sh, which also searches the task's own PATH.
	bool plain = !(envscript && envscript[0]) && strlen(cmd) < 4096 &&
	    strchr(cmd, '/') != NULL && strcspn(cmd, "/") < strcspn(cmd, " ") &&
	    cmd[strspn(cmd, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                   "0123456789_./,:=+-@% ")] == '\0';
	char *words[512];
	char *argv_sh[] = { "/bin/sh", "-c", NULL, NULL };
	char **argv = argv_sh;
	if (plain) {
		size_t nw = 0;
		if ((full = strdup(cmd)) == NULL)
			return ENOMEM;
		for (char *save, *w = strtok_r(full, " ", &save); w && nw < 511;
		     w = strtok_r(NULL, " ", &save))
			words[nw++] = w;
		words[nw] = NULL;
		if (nw == 0 || nw == 511) {
			free(full);
			full = NULL;
			plain = false;
		} else {
			argv = words;
		}
	}
	if (!plain) {
		if (envscript && envscript[0])
			rv = asprintf(&full, ". '%s' && exec %s", envscript, cmd);
		else
			rv = asprintf(&full, "exec %s", cmd);
		if (rv < 0)
			return ENOMEM;
		argv_sh[2] = full;
	}
	char **env = task_env(L, t, extra1, extra2);
	if (env == NULL) {
		free(full);
		return ENOMEM;
	}
	struct stat stb;
	// (in a directory just made there is no output yet: no stat)
	if (t->out_new)
		t->out_from = 0;
	else
		t->out_from = stat(t->outpath, &stb) == 0 ?
		    (long long)stb.st_size : 0;
	t->out_new = false;
	if (!nondefault_read)
		spawn_setup();
	struct plan pl = { plain ? argv[0] : "/bin/sh", argv, env, t->workdir,
		t->outpath };
	pid_t pid = 0;
	rv = spawn_plan(&pl, &pid);
	if (plain && rv == ENOENT) {
		// as the shell would say it; the task fails, the launcher goes on
		int fd = open(t->outpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0644);
		if (fd >= 0) {
			dprintf(fd, "copal: %s: command not found\n", argv[0]);
			close(fd);
		}
	}
	free(env);
	free(full);
	if (rv == 0) {
		t->pid = pid;
		guard_add(t, pid);
	}
	return rv;
}

ltask *
proc_reap(launcher *L, int *status)
{
	for (;;) {
		pid_t pid = waitpid(-1, status, WNOHANG);
		if (pid <= 0)
			return NULL;
		for (size_t i = 0; i < L->ntasks; i++)
			if (L->tasks[i]->pid == pid) {
				guard_del(L->tasks[i]);
				return L->tasks[i];
			}
	}
}
