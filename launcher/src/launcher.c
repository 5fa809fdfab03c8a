// The launcher: pulls tasks that fit its nodes from the broker, runs them
// through their stages and reports every state change in batches.
//
// One thread, one loop: signals (SIGCHLD, SIGTERM, SIGINT) arrive on a
// signalfd; children are reaped with waitpid(WNOHANG) in a loop; reports
// collected during one turn go to the broker in one request; one
// heartbeat per launcher renews the lease of every task it holds.
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launcher.h"

extern char **environ;

#define MAX_TASKS 65536
// serial mode claims up to this many nodes' worth of tasks ahead
#define BACKLOG_NODES 2u
#define TAIL_BYTES 2048
#define TAIL_LINES 12

enum { LL_ERR = 3, LL_WARN = 4, LL_NOTICE = 5, LL_INFO = 6, LL_DEBUG = 7 };

static struct L {
	const launcher_opts *o;
	cpl_client *c;
	comm *cm;
	bool claim_inflight;
	uint64_t lease;             // for logs; comm owns the lease
	nodelist nl;
	lnode *nodes;
	size_t nnodes;
	ltask **tasks;
	size_t ntasks;
	struct report *reps;
	size_t nreps, capreps;
	int sigfd;
	uint64_t start_us, deadline_us, last_busy_us, next_claim_us;
	bool stopping;      // no more claims
	bool cutting;       // wall-time: SIGTERM sent, waiting for the grace
	const char *cut_why;
	uint64_t kill_at_us;
	char self_hosts[8192];
	uint64_t started, finished;
	char db[PATH_MAX];
} L;

static void
logm(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
logm(int level, const char *fmt, ...)
{
	static const char *const names[] = { "", "", "", "ERROR", "WARN",
		"NOTICE", "INFO", "DEBUG" };
	va_list ap;
	if (level > L.o->log_level)
		return;
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld launcher %-6s ", ts, now.tv_nsec / 1000000,
	    names[level & 7]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

// ---------------------------------------------------------------- broker

static void
report(ltask *t, int to, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
report(ltask *t, int to, int rc, const char *fmt, ...)
{
	if (L.nreps == L.capreps) {
		size_t cap = L.capreps ? L.capreps * 2 : 256;
		struct report *r = realloc(L.reps, cap * sizeof(*r));
		if (r == NULL) {
			logm(LL_ERR, "out of memory for reports");
			return;
		}
		L.reps = r;
		L.capreps = cap;
	}
	struct report *r = &L.reps[L.nreps++];
	if (t->nnodes && t->slot >= 0)
		snprintf(r->node, sizeof(r->node), "%s/%d",
		    L.nodes[t->nodes[0]].name, t->slot);
	else if (t->nnodes)
		snprintf(r->node, sizeof(r->node), "%s",
		    L.nodes[t->nodes[0]].name);
	else
		r->node[0] = '\0';
	r->id = t->id;
	r->attempt = t->attempt;
	r->to = to;
	r->rc = rc;
	r->msg = NULL;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&r->msg, fmt, ap) < 0)
			r->msg = NULL;
		va_end(ap);
	}
	logm(LL_DEBUG, "task %s %s -> %s", t->uuid, t->name,
	    cpl_state_name(to));
}

// Hands the reports of this turn to the comm thread (one request).
static void
flush_reports(void)
{
	if (L.nreps == 0)
		return;
	comm_report(L.cm, L.reps, L.nreps);
	L.nreps = 0;
}

// ---------------------------------------------------------------- processes

static void
kill_group(ltask *t, int sig)
{
	if (t->pid > 0 && killpg(t->pid, sig) != 0 && errno != ESRCH)
		logm(LL_WARN, "killpg %d: %s", (int)t->pid, strerror(errno));
}

static char *
hosts_of(ltask *t, char *buf, size_t len)
{
	size_t pos = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < t->nnodes; i++) {
		int n = snprintf(buf + pos, len - pos, "%s%s", i ? "," : "",
		    L.nodes[t->nodes[i]].name);
		if (n < 0 || (size_t)n >= len - pos)
			break;
		pos += (size_t)n;
	}
	return buf;
}

// Environment of a task's processes: ours, then copal's variables, then
// the task's own. Returns a NULL-terminated array to free with env_free.
static char **
task_env(ltask *t, const char *extra1, const char *extra2)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const Copal__Resources *res = sp->resources;
	size_t n0 = 0;
	while (environ[n0])
		n0++;
	size_t cap = n0 + sp->n_environ + 20;
	char **env = calloc(cap, sizeof(char *));
	size_t n = 0;
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n0; i++)
		env[n++] = strdup(environ[i]);
	char parents[4096] = "", hosts[4096];
	size_t pos = 0;
	for (size_t i = 0; i < sp->n_parent_ids && pos < sizeof(parents) - 24;
	     i++)
		pos += (size_t)snprintf(parents + pos, sizeof(parents) - pos,
		    "%s%llu", i ? "," : "", (unsigned long long)sp->parent_ids[i]);
	uint32_t tpr = res && res->threads_per_rank ? res->threads_per_rank : 1;
	char *v;
#define ADD(...)                                             \
	do {                                                 \
		if (asprintf(&v, __VA_ARGS__) >= 0)          \
			env[n++] = v;                        \
	} while (0)
	ADD("COPAL_DB=%s", L.db);
	ADD("COPAL_TASK_ID=%llu", (unsigned long long)t->id);
	ADD("COPAL_TASK_UUID=%s", t->uuid);
	ADD("COPAL_TASK_NAME=%s", t->name);
	ADD("COPAL_WORKFLOW=%s", sp->workflow);
	ADD("COPAL_ATTEMPT=%u", t->attempt);
	ADD("COPAL_PARENT_IDS=%s", parents);
	ADD("COPAL_NODES=%s", hosts_of(t, hosts, sizeof(hosts)));
	ADD("COPAL_LAUNCHER_NODES=%s", L.self_hosts);
	ADD("COPAL_JOB_MODE=%s", L.o->mode == MODE_MPI ? "mpi" : "serial");
	ADD("OMP_NUM_THREADS=%u", tpr);
	if (t->gpu_list[0])
		ADD("CUDA_VISIBLE_DEVICES=%s", t->gpu_list);
	if (extra1)
		ADD("%s", extra1);
	if (extra2)
		ADD("%s", extra2);
	for (size_t i = 0; i < sp->n_environ; i++)
		ADD("%s=%s", sp->environ[i]->name, sp->environ[i]->value);
#undef ADD
	env[n] = NULL;
	return env;
}

static void
env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

// Starts `cmd` through /bin/sh in the task's directory, output appended to
// its .out file, in a new session (its own process group), with default
// signal handling. Returns 0 or an errno.
static int
spawn(ltask *t, const char *cmd, const char *extra1, const char *extra2)
{
	const char *envscript = t->ct->app->envscript;
	char *full = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
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
	char **env = task_env(t, extra1, extra2);
	if (env == NULL) {
		free(full);
		return ENOMEM;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, t->outpath,
	    O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addchdir_np(&fa, t->workdir);
	// nothing of the launcher's (sockets, inherited descriptors) leaks in
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	rv = plain ? posix_spawn(&pid, argv[0], &fa, &at, argv, env) :
	             posix_spawn(&pid, "/bin/sh", &fa, &at, argv, env);
	if (plain && rv == ENOENT) {
		// as the shell would say it; the task fails, the launcher goes on
		int fd = open(t->outpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0644);
		if (fd >= 0) {
			dprintf(fd, "copal: %s: command not found\n", argv[0]);
			close(fd);
		}
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	env_free(env);
	free(full);
	if (rv == 0)
		t->pid = pid;
	return rv;
}

// The last lines of a task's output, for the history message.
static void
output_tail(ltask *t, char *buf, size_t len)
{
	buf[0] = '\0';
	int fd = open(t->outpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > TAIL_BYTES ? end - TAIL_BYTES : 0;
	char tmp[TAIL_BYTES + 1];
	ssize_t n = pread(fd, tmp, TAIL_BYTES, from);
	close(fd);
	if (n <= 0)
		return;
	tmp[n] = '\0';
	// keep the last TAIL_LINES lines
	char *p = tmp + n;
	int lines = 0;
	if (p > tmp && p[-1] == '\n')
		p--;
	while (p > tmp && lines < TAIL_LINES) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (*p == '\n')
		p++;
	for (char *q = p; *q; q++) // keep the message valid text
		if ((unsigned char)*q < 0x20 && *q != '\n' && *q != '\t')
			*q = '?';
	snprintf(buf, len, "%s", p);
}

// ---------------------------------------------------------------- files

static int
copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rv = 0;
	if (in < 0)
		return errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		rv = errno;
		close(in);
		return rv;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				rv = errno;
				goto done;
			}
			off += w;
		}
	}
	if (n < 0)
		rv = errno;
done:
	close(in);
	if (close(out) != 0 && rv == 0)
		rv = errno;
	return rv;
}

static const char *
strip_file_url(const char *u)
{
	return strncmp(u, "file://", 7) == 0 ? u + 7 : u;
}

static int
mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	// usually only the leaf is new: one system call
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return errno;
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

// Stage in: copy each path or file:// URL of stage_in_url (space
// separated, globs allowed) into the task's directory, and link parents'
// outputs that match input_files. Returns 0 or fills err.
static int
stage_in(ltask *t, char *err, size_t errlen, bool *did)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	char list[8192];
	*did = false;
	if (sp->stage_in_url && sp->stage_in_url[0]) {
		snprintf(list, sizeof(list), "%s", sp->stage_in_url);
		for (char *save, *tok = strtok_r(list, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save)) {
			glob_t g;
			const char *pat = strip_file_url(tok);
			if (strstr(tok, "://") && strncmp(tok, "file://", 7)) {
				snprintf(err, errlen,
				    "stage in: %s: only local paths and file:// "
				    "URLs are supported", tok);
				return -1;
			}
			if (glob(pat, 0, NULL, &g) != 0) {
				snprintf(err, errlen, "stage in: %s: no such file",
				    pat);
				return -1;
			}
			for (size_t i = 0; i < g.gl_pathc; i++) {
				const char *base = strrchr(g.gl_pathv[i], '/');
				char dst[8192];
				base = base ? base + 1 : g.gl_pathv[i];
				snprintf(dst, sizeof(dst), "%s/%s", t->workdir, base);
				int e = copy_file(g.gl_pathv[i], dst);
				if (e) {
					snprintf(err, errlen, "stage in: %s: %s",
					    g.gl_pathv[i], strerror(e));
					globfree(&g);
					return -1;
				}
				*did = true;
			}
			globfree(&g);
		}
	}
	// parents' outputs that match input_files are linked in
	for (size_t p = 0; p < t->ct->n_parent_dirs; p++) {
		for (size_t k = 0; k < sp->n_input_files; k++) {
			char pat[8192];
			glob_t g;
			snprintf(pat, sizeof(pat), "%s/data/%s/%s", L.db,
			    t->ct->parent_dirs[p], sp->input_files[k]);
			if (glob(pat, 0, NULL, &g) != 0)
				continue;
			for (size_t i = 0; i < g.gl_pathc; i++) {
				const char *base = strrchr(g.gl_pathv[i], '/') + 1;
				char dst[8192];
				snprintf(dst, sizeof(dst), "%s/%s", t->workdir, base);
				if (symlink(g.gl_pathv[i], dst) == 0)
					*did = true;
				else if (errno != EEXIST) {
					snprintf(err, errlen, "link %s: %s",
					    g.gl_pathv[i], strerror(errno));
					globfree(&g);
					return -1;
				}
			}
			globfree(&g);
		}
	}
	return 0;
}

// Stage out: copy files matching stage_out_files to stage_out_url.
static int
stage_out(ltask *t, char *err, size_t errlen)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	char list[8192];
	if (!sp->stage_out_files || !sp->stage_out_files[0])
		return 0;
	if (!sp->stage_out_url || !sp->stage_out_url[0]) {
		snprintf(err, errlen, "stage out: stage_out_files without a "
		    "stage_out_url");
		return -1;
	}
	const char *dest = strip_file_url(sp->stage_out_url);
	if (strstr(sp->stage_out_url, "://") &&
	    strncmp(sp->stage_out_url, "file://", 7)) {
		snprintf(err, errlen, "stage out: %s: only local paths and "
		    "file:// URLs are supported", sp->stage_out_url);
		return -1;
	}
	int e = mkdir_p(dest);
	if (e) {
		snprintf(err, errlen, "stage out: %s: %s", dest, strerror(e));
		return -1;
	}
	snprintf(list, sizeof(list), "%s", sp->stage_out_files);
	for (char *save, *tok = strtok_r(list, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		char pat[8192];
		glob_t g;
		snprintf(pat, sizeof(pat), "%s/%s", t->workdir, tok);
		if (glob(pat, 0, NULL, &g) != 0)
			continue;
		for (size_t i = 0; i < g.gl_pathc; i++) {
			const char *base = strrchr(g.gl_pathv[i], '/') + 1;
			char dst[8192];
			snprintf(dst, sizeof(dst), "%s/%s", dest, base);
			if ((e = copy_file(g.gl_pathv[i], dst)) != 0) {
				snprintf(err, errlen, "stage out: %s: %s",
				    g.gl_pathv[i], strerror(e));
				globfree(&g);
				return -1;
			}
		}
		globfree(&g);
	}
	return 0;
}

// ---------------------------------------------------------------- stages

// A slot number on the task's first node: the lowest free one, so that a
// trace shows one track per slot.
static void
take_slot(ltask *t)
{
	t->slot = -1;
	if (t->nnodes == 0)
		return;
	lnode *n = &L.nodes[t->nodes[0]];
	if (n->slot_busy == NULL &&
	    (n->slot_busy = calloc(MAX_SLOTS, 1)) == NULL)
		return;
	for (int i = 0; i < MAX_SLOTS; i++) {
		if (!n->slot_busy[i]) {
			n->slot_busy[i] = 1;
			t->slot = i;
			return;
		}
	}
}

static void
release(ltask *t)
{
	if (t->slot >= 0 && t->nnodes) {
		L.nodes[t->nodes[0]].slot_busy[t->slot] = 0;
		t->slot = -1;
	}
	for (size_t i = 0; i < t->nnodes; i++) {
		lnode *n = &L.nodes[t->nodes[i]];
		n->free_units += t->units;
		if (n->free_units > CPL_NODE_UNITS)
			n->free_units = CPL_NODE_UNITS;
	}
	if (t->gpu_list[0] && t->nnodes) {
		// give the GPUs back (same ids on every node of the task)
		char tmp[256];
		snprintf(tmp, sizeof(tmp), "%s", t->gpu_list);
		for (char *save, *tok = strtok_r(tmp, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			int g = atoi(tok);
			for (size_t i = 0; i < t->nnodes; i++)
				if (g >= 0 && g < 64)
					L.nodes[t->nodes[i]].gpu_busy[g] = 0;
		}
	}
	t->stage = ST_DONE;
	t->pid = 0;
	L.finished++;
}

static void
start_post(ltask *t);

// Runs the application.
static void
start_run(ltask *t)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const Copal__Resources *res = sp->resources;
	char base[16384], cmd[20000];
	snprintf(base, sizeof(base), "%s%s%s", t->ct->app->executable,
	    sp->args && sp->args[0] ? " " : "", sp->args ? sp->args : "");
	uint32_t rpn = res && res->ranks_per_node ? res->ranks_per_node : 1;
	uint32_t tpr = res && res->threads_per_rank ? res->threads_per_rank : 1;
	uint32_t nn = (uint32_t)t->nnodes;
	if (L.o->mode == MODE_MPI && (nn > 1 || rpn > 1)) {
		char *hosts[4096];
		for (uint32_t i = 0; i < nn && i < 4096; i++)
			hosts[i] = L.nodes[t->nodes[i]].name;
		if (mpi_render(L.o->mpi_template, nn * rpn, rpn, nn, tpr, hosts,
		        base, cmd, sizeof(cmd)) != 0) {
			report(t, CPL_RUN_ERROR, -1, "bad MPI template: %s",
			    L.o->mpi_template);
			t->after = CPL_RUN_ERROR;
			start_post(t);
			return;
		}
	} else {
		snprintf(cmd, sizeof(cmd), "%s", base);
	}
	int e = spawn(t, cmd, NULL, NULL);
	if (e == ENOENT) {
		report(t, CPL_RUN_ERROR, 127, "return code 127\n%s: command not "
		    "found", cmd);
		t->after = CPL_RUN_ERROR;
		start_post(t);
		return;
	}
	if (e) {
		report(t, CPL_RUN_ERROR, -1, "cannot start %s: %s", cmd,
		    strerror(e));
		t->after = CPL_RUN_ERROR;
		start_post(t);
		return;
	}
	t->stage = ST_RUN;
	t->run_start_us = cpl_mono_us();
	L.started++;
	report(t, CPL_RUNNING, 0, "started %llu us after claim",
	    (unsigned long long)(t->run_start_us - t->claimed_us));
}

// Takes a claimed task through stage in and preprocess to its run.
static void
start_task(ltask *t)
{
	char err[1024], rel[1024];
	bool did = false;
	const Copal__TaskSpec *sp = t->ct->task->spec;
	int rv = cpl_workdir(sp->workflow, sp->name, t->uuid, sp->workdir, rel,
	    sizeof(rel));
	if (rv != 0) {
		snprintf(t->workdir, sizeof(t->workdir), "%s/data", L.db);
		snprintf(t->outpath, sizeof(t->outpath), "/dev/null");
		report(t, CPL_RUN_ERROR, -1, "bad working directory %s",
		    sp->workdir);
		t->after = CPL_RUN_ERROR;
		start_post(t);
		return;
	}
	snprintf(t->workdir, sizeof(t->workdir), "%s/data/%s", L.db, rel);
	snprintf(t->outpath, sizeof(t->outpath), "%s/%s.out", t->workdir,
	    sp->name);
	int e = mkdir_p(t->workdir);
	if (e) {
		snprintf(t->outpath, sizeof(t->outpath), "/dev/null");
		report(t, CPL_RUN_ERROR, -1, "cannot make %s: %s", t->workdir,
		    strerror(e));
		t->after = CPL_RUN_ERROR;
		start_post(t);
		return;
	}
	if (stage_in(t, err, sizeof(err), &did) != 0) {
		report(t, CPL_RUN_ERROR, -1, "%s", err);
		t->after = CPL_RUN_ERROR;
		start_post(t);
		return;
	}
	if (did)
		report(t, CPL_STAGED_IN, 0, NULL);
	const char *pre = t->ct->app->preprocess;
	if (pre && pre[0]) {
		if ((e = spawn(t, pre, "COPAL_STAGE=preprocess", NULL)) != 0) {
			report(t, CPL_RUN_ERROR, -1, "cannot start preprocess: %s",
			    strerror(e));
			t->after = CPL_RUN_ERROR;
			start_post(t);
			return;
		}
		t->stage = ST_PRE;
		return;
	}
	start_run(t);
}

// After the run: RUN_DONE -> postprocess -> stage out -> JOB_FINISHED, or
// the error / timeout handler.
static void
start_post(ltask *t)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const char *post = t->ct->app->postprocess;
	char err[1024];
	int e;
	if (t->after == CPL_RUN_DONE) {
		if (post && post[0]) {
			if ((e = spawn(t, post, "COPAL_STAGE=postprocess",
			         NULL)) == 0) {
				t->stage = ST_POST;
				return;
			}
			report(t, CPL_RUN_ERROR, -1, "cannot start postprocess: %s",
			    strerror(e));
			t->after = CPL_RUN_ERROR;
		} else if (stage_out(t, err, sizeof(err)) != 0) {
			report(t, CPL_RUN_ERROR, -1, "%s", err);
			t->after = CPL_RUN_ERROR;
		} else {
			report(t, CPL_JOB_FINISHED, 0, NULL);
			release(t);
			return;
		}
	}
	// With a handler flag the broker waits for this launcher's verdict;
	// without one it applies the retry policy itself.
	bool handler = (t->after == CPL_RUN_ERROR && sp->post_error_handler) ||
	    (t->after == CPL_RUN_TIMEOUT && sp->post_timeout_handler);
	if (handler) {
		const char *flag = t->after == CPL_RUN_ERROR ? "COPAL_ERROR=1" :
		                                               "COPAL_TIMEOUT=1";
		if (t->cut)
			report(t, CPL_RESTART_READY, 0,
			    "cut off before its handler could run");
		else if (!post || !post[0])
			report(t, CPL_FAILED, -1, "a handler is asked for but "
			    "app %s has no postprocess", t->ct->app->name);
		else if ((e = spawn(t, post, flag, "COPAL_STAGE=handler")) == 0) {
			t->stage = ST_HANDLER;
			return;
		} else
			report(t, CPL_FAILED, -1, "cannot start the handler: %s",
			    strerror(e));
	}
	release(t);
}

// A process of a task ended.
static void
on_exit_status(ltask *t, int status)
{
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) :
	    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
	char tail[TAIL_BYTES + 1];
	t->pid = 0;
	if (t->killed) {
		// copal killjob: the broker already has it USER_KILLED
		logm(LL_INFO, "task %s %s killed", t->uuid, t->name);
		release(t);
		return;
	}
	switch (t->stage) {
	case ST_PRE:
		if (rc == 0) {
			report(t, CPL_PREPROCESSED, 0, NULL);
			start_run(t);
		} else {
			output_tail(t, tail, sizeof(tail));
			report(t, CPL_RUN_ERROR, rc, "preprocess returned %d\n%s",
			    rc, tail);
			t->after = CPL_RUN_ERROR;
			start_post(t);
		}
		break;
	case ST_RUN:
		if (t->cut) {
			report(t, CPL_RUN_TIMEOUT, rc, "cut off: launcher %s",
			    L.cut_why ? L.cut_why : "stopping");
			t->after = CPL_RUN_TIMEOUT;
		} else if (t->after == CPL_RUN_TIMEOUT) {
			report(t, CPL_RUN_TIMEOUT, rc,
			    "killed after timeout_seconds=%u",
			    t->ct->task->spec->timeout_seconds);
		} else if (rc == 0) {
			report(t, CPL_RUN_DONE, 0, NULL);
			t->after = CPL_RUN_DONE;
		} else {
			output_tail(t, tail, sizeof(tail));
			report(t, CPL_RUN_ERROR, rc, "return code %d\n%s", rc,
			    tail);
			t->after = CPL_RUN_ERROR;
		}
		start_post(t);
		break;
	case ST_POST: {
		char err[1024];
		if (rc != 0) {
			output_tail(t, tail, sizeof(tail));
			report(t, CPL_RUN_ERROR, rc, "postprocess returned %d\n%s",
			    rc, tail);
			t->after = CPL_RUN_ERROR;
			start_post(t);
		} else if (stage_out(t, err, sizeof(err)) != 0) {
			report(t, CPL_POSTPROCESSED, 0, NULL);
			report(t, CPL_RUN_ERROR, -1, "%s", err);
			t->after = CPL_RUN_ERROR;
			start_post(t);
		} else {
			report(t, CPL_POSTPROCESSED, 0, NULL);
			report(t, CPL_JOB_FINISHED, 0, NULL);
			release(t);
		}
		break;
	}
	case ST_HANDLER:
		// the handler's verdict: 0 = try again, anything else = fail
		if (rc == 0)
			report(t, CPL_RESTART_READY, 0, "handler: retry");
		else
			report(t, CPL_FAILED, rc, "handler returned %d", rc);
		release(t);
		break;
	default:
		break;
	}
}

static void
reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		for (size_t i = 0; i < L.ntasks; i++) {
			if (L.tasks[i]->pid == pid) {
				on_exit_status(L.tasks[i], status);
				break;
			}
		}
	}
}

// Frees finished slots.
static void
compact(void)
{
	size_t w = 0;
	for (size_t i = 0; i < L.ntasks; i++) {
		ltask *t = L.tasks[i];
		if (t->stage == ST_DONE) {
			copal__claimed_task__free_unpacked(t->ct, NULL);
			free(t->nodes);
			free(t);
			continue;
		}
		L.tasks[w++] = t;
	}
	L.ntasks = w;
}

// ---------------------------------------------------------------- claims

static ltask *
find_task(uint64_t id)
{
	for (size_t i = 0; i < L.ntasks; i++)
		if (L.tasks[i]->id == id && L.tasks[i]->stage != ST_DONE)
			return L.tasks[i];
	return NULL;
}

// Takes the GPUs a placed task needs (the same ids on each of its nodes).
static void
take_gpus(ltask *t)
{
	if (t->gpus == 0 || t->nnodes == 0)
		return;
	lnode *n0 = &L.nodes[t->nodes[0]];
	size_t pos = 0;
	uint32_t got = 0;
	for (uint32_t g = 0; g < n0->ngpus && g < 64 && got < t->gpus; g++) {
		if (n0->gpu_busy[g])
			continue;
		for (size_t i = 0; i < t->nnodes; i++)
			L.nodes[t->nodes[i]].gpu_busy[g] = 1;
		pos += (size_t)snprintf(t->gpu_list + pos,
		    sizeof(t->gpu_list) - pos, "%s%u", got ? "," : "", g);
		got++;
	}
}

// Places a claimed task on the nodes the broker chose and takes GPUs.
// Takes ownership of ct.
static int
adopt(Copal__ClaimedTask *ct)
{
	ltask *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		copal__claimed_task__free_unpacked(ct, NULL);
		return CPL_ENOMEM;
	}
	t->ct = ct;
	if (ct->task == NULL || ct->task->spec == NULL || ct->app == NULL ||
	    ct->task->status == NULL) {
		copal__claimed_task__free_unpacked(ct, NULL);
		free(t);
		return CPL_EPROTO;
	}
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const Copal__Resources *res = sp->resources;
	t->id = t->ct->task->id;
	t->attempt = t->ct->task->status->attempt;
	t->name = sp->name;
	snprintf(t->uuid, sizeof(t->uuid), "%s", t->ct->task->uuid);
	uint32_t packing = res && res->node_packing_count ?
	    res->node_packing_count : 1;
	uint32_t nodes = res && res->num_nodes ? res->num_nodes : 1;
	t->units = nodes == 1 && packing > 1 ?
	    (CPL_NODE_UNITS + packing - 1) / packing : CPL_NODE_UNITS;
	t->gpus = res ? res->gpus_per_rank *
	        (res->ranks_per_node ? res->ranks_per_node : 1) : 0;
	t->nnodes = t->ct->n_node_index;
	t->nodes = calloc(t->nnodes ? t->nnodes : 1, sizeof(uint32_t));
	if (t->nodes == NULL) {
		copal__claimed_task__free_unpacked(t->ct, NULL);
		free(t);
		return CPL_ENOMEM;
	}
	bool ahead = false;
	for (size_t i = 0; i < t->nnodes; i++)
		ahead |= t->ct->node_index[i] >= L.nnodes;
	if (ahead) {
		// claimed ahead on the backlog's share: placed when a slot frees
		t->queued = true;
		t->nnodes = 0;
	}
	for (size_t i = 0; i < t->nnodes; i++) {
		uint32_t ni = t->ct->node_index[i];
		t->nodes[i] = ni;
		L.nodes[ni].free_units = L.nodes[ni].free_units > t->units ?
		    L.nodes[ni].free_units - t->units : 0;
	}
	t->slot = -1;
	if (!t->queued) {
		take_gpus(t);
		take_slot(t);
	}
	t->claimed_us = cpl_mono_us();
	L.tasks[L.ntasks++] = t;
	if (!t->queued)
		start_task(t);
	return 0;
}

// Starts backlog tasks (serial mode: one node each) that now fit.
static void
start_queued(void)
{
	for (size_t i = 0; i < L.ntasks; i++) {
		ltask *t = L.tasks[i];
		if (!t->queued || t->stage != ST_NEW)
			continue;
		size_t n;
		for (n = 0; n < L.nnodes; n++) {
			uint32_t fg = 0;
			for (uint32_t g = 0; g < L.nodes[n].ngpus && g < 64; g++)
				fg += !L.nodes[n].gpu_busy[g];
			if (L.nodes[n].free_units >= t->units && fg >= t->gpus)
				break;
		}
		if (n == L.nnodes)
			return; // keep claim order: wait for room
		t->queued = false;
		t->nodes[0] = (uint32_t)n;
		t->nnodes = 1;
		L.nodes[n].free_units -= t->units;
		take_gpus(t);
		take_slot(t);
		start_task(t);
	}
}

// Asks for as much work as fits the free capacity. In serial mode one
// more node's worth is claimed ahead and kept in a local backlog, so that
// a slot freed by a finished task is refilled at once, without waiting
// for a round trip to the broker.
static void
claim(void)
{
	uint32_t act = 0, queued_units = 0;
	for (size_t i = 0; i < L.ntasks; i++) {
		if (L.tasks[i]->stage == ST_DONE)
			continue;
		act++;
		if (L.tasks[i]->queued)
			queued_units += L.tasks[i]->units;
	}
	uint32_t limit = L.o->mode == MODE_SERIAL ?
	    (BACKLOG_NODES + 1) * L.o->max_concurrent : L.o->max_concurrent;
	uint32_t cap = limit > act ? limit - act : 0;
	if (cap == 0 || L.ntasks + cap > MAX_TASKS)
		return;
	uint32_t backlog = 0; // units to claim ahead
	if (L.o->mode == MODE_SERIAL &&
	    queued_units < BACKLOG_NODES * CPL_NODE_UNITS)
		backlog = BACKLOG_NODES * CPL_NODE_UNITS - queued_units;
	uint64_t real_free = 0;
	for (size_t i = 0; i < L.nnodes; i++)
		real_free += L.nodes[i].free_units;
	// wait while the backlog is more than half full: it fills free
	// slots first, and one claim then brings many tasks
	if (queued_units > 0 &&
	    backlog < BACKLOG_NODES * CPL_NODE_UNITS / 2)
		return;
	if (real_free == 0 && backlog == 0)
		return;
	size_t nback = (backlog + CPL_NODE_UNITS - 1) / CPL_NODE_UNITS;
	size_t noff = L.nnodes + nback;
	Copal__NodeCapacity *nc = calloc(noff, sizeof(*nc));
	Copal__NodeCapacity **ncp = calloc(noff, sizeof(*ncp));
	if (nc == NULL || ncp == NULL) {
		free(nc);
		free(ncp);
		return;
	}
	for (size_t i = 0; i < noff; i++) {
		Copal__NodeCapacity x = COPAL__NODE_CAPACITY__INIT;
		nc[i] = x;
		ncp[i] = &nc[i];
		if (i >= L.nnodes) { // the backlog's share, node by node
			uint32_t u = backlog > CPL_NODE_UNITS ? CPL_NODE_UNITS :
			                                        backlog;
			backlog -= u;
			nc[i].free_units = u;
			nc[i].free_gpus = L.o->gpus_per_node;
			continue;
		}
		nc[i].free_units = L.nodes[i].free_units;
		uint32_t fg = 0;
		for (uint32_t g = 0; g < L.nodes[i].ngpus && g < 64; g++)
			fg += !L.nodes[i].gpu_busy[g];
		nc[i].free_gpus = fg;
	}
	uint32_t *units = calloc(noff, sizeof(uint32_t));
	uint32_t *gpus = calloc(noff, sizeof(uint32_t));
	comm_claim_req cl;
	memset(&cl, 0, sizeof(cl));
	if (units && gpus) {
		for (size_t i = 0; i < noff; i++) {
			units[i] = nc[i].free_units;
			gpus[i] = nc[i].free_gpus;
		}
		cl.max_tasks = cap;
		cl.n = noff;
		cl.units = units;
		cl.gpus = gpus;
		if (L.deadline_us) {
			uint64_t now = cpl_mono_us();
			cl.remaining_min = L.deadline_us > now ?
			    (uint32_t)((L.deadline_us - now) / 60000000u) : 0;
			if (cl.remaining_min == 0)
				cl.remaining_min = 1;
		}
		L.claim_inflight = comm_claim(L.cm, &cl);
	}
	free(units);
	free(gpus);
	free(nc);
	free(ncp);
}

// ---------------------------------------------------------------- lease

// Stops every process of ours (the lease is gone: the broker has given
// the tasks to others) without reporting.
static void
drop_all(const char *why)
{
	for (size_t i = 0; i < L.ntasks; i++) {
		ltask *t = L.tasks[i];
		if (t->stage == ST_DONE)
			continue;
		logm(LL_WARN, "task %s %s: %s: stopping it", t->uuid, t->name,
		    why);
		t->killed = true;
		if (t->pid > 0)
			kill_group(t, SIGKILL);
		else
			release(t);
	}
	for (size_t i = 0; i < L.nreps; i++)
		free(L.reps[i].msg);
	L.nreps = 0;
}

// Kill notices from the broker: stop the whole process group.
static void
apply_kills(const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ltask *t = find_task(ids[i]);
		if (t == NULL)
			continue;
		logm(LL_NOTICE, "kill notice for task %s %s", t->uuid, t->name);
		t->killed = true;
		if (t->pid > 0) {
			kill_group(t, SIGTERM);
			kill_group(t, SIGCONT);
		} else {
			release(t);
		}
	}
}

// ---------------------------------------------------------------- main loop

static void
check_timeouts(uint64_t now)
{
	for (size_t i = 0; i < L.ntasks; i++) {
		ltask *t = L.tasks[i];
		uint32_t to = t->ct->task->spec->timeout_seconds;
		if (t->stage != ST_RUN || to == 0 || t->after == CPL_RUN_TIMEOUT)
			continue;
		// (a task started later in this same turn has run_start > now)
		if (now > t->run_start_us &&
		    now - t->run_start_us >= (uint64_t)to * 1000000u) {
			logm(LL_INFO, "task %s %s: timeout after %u s", t->uuid,
			    t->name, to);
			t->after = CPL_RUN_TIMEOUT;
			kill_group(t, SIGKILL);
		}
	}
	// kill notices: SIGKILL what ignored the SIGTERM for 2 s
	static uint64_t last_sweep;
	if (now - last_sweep > 2000000u) {
		last_sweep = now;
		for (size_t i = 0; i < L.ntasks; i++)
			if (L.tasks[i]->killed && L.tasks[i]->pid > 0)
				kill_group(L.tasks[i], SIGKILL);
	}
}

static size_t
active(void)
{
	size_t n = 0;
	for (size_t i = 0; i < L.ntasks; i++)
		n += L.tasks[i]->stage != ST_DONE;
	return n;
}

// The wall-time limit or a SIGTERM: stop claiming, SIGTERM every task's
// process group, SIGKILL after the grace period; cut tasks are reported
// RUN_TIMEOUT and retried by the broker's policy.
static void
begin_cut(const char *why)
{
	if (L.cutting)
		return;
	logm(LL_NOTICE, "%s: stopping %zu task(s)", why, active());
	L.stopping = true;
	L.cutting = true;
	L.cut_why = why;
	L.kill_at_us = cpl_mono_us() + (uint64_t)(L.o->grace_s * 1e6);
	for (size_t i = 0; i < L.ntasks; i++) {
		ltask *t = L.tasks[i];
		if (t->stage == ST_DONE)
			continue;
		t->cut = true;
		if (t->pid > 0)
			kill_group(t, SIGTERM);
		else
			release(t);
	}
}

static int
setup_nodes(void)
{
	int rv = nodes_discover(NULL, &L.nl);
	if (rv) {
		logm(LL_ERR, "node discovery failed: %s", cpl_strerror(rv));
		return rv;
	}
	if ((rv = nodes_slice(&L.nl, L.o->node_offset, L.o->node_limit)) != 0) {
		logm(LL_ERR, "--node-offset/--num-nodes leave no node of %zu",
		    L.nl.n);
		return rv;
	}
	// serial mode: this launcher is the agent of its own node, the one
	// of the list it runs on (job scripts start one per node: srun,
	// aprun, mpiexec), else the first
	if (L.o->mode == MODE_SERIAL && L.nl.n > 1) {
		size_t self = nodes_find_self(&L.nl);
		size_t pick = self < L.nl.n ? self : 0;
		logm(LL_NOTICE, "serial mode: this launcher runs the tasks of "
		    "node %s (%s of %zu); run one launcher per node for the "
		    "others", L.nl.names[pick],
		    self < L.nl.n ? "this host" : "the first", L.nl.n);
		nodes_slice(&L.nl, pick, 1);
	}
	L.nnodes = L.nl.n;
	L.nodes = calloc(L.nnodes, sizeof(lnode));
	if (L.nodes == NULL)
		return CPL_ENOMEM;
	size_t pos = 0;
	for (size_t i = 0; i < L.nnodes; i++) {
		L.nodes[i].name = L.nl.names[i];
		L.nodes[i].free_units = CPL_NODE_UNITS;
		L.nodes[i].ngpus = L.o->gpus_per_node;
		int n = snprintf(L.self_hosts + pos, sizeof(L.self_hosts) - pos,
		    "%s%s", i ? "," : "", L.nodes[i].name);
		if (n > 0 && (size_t)n < sizeof(L.self_hosts) - pos)
			pos += (size_t)n;
	}
	logm(LL_INFO, "%zu node(s) from %s: %s", L.nnodes, L.nl.source,
	    L.self_hosts);
	return 0;
}

int
launcher_run(const launcher_opts *o)
{
	cpl_client_opts co;
	sigset_t sigs;
	int rv;
	memset(&L, 0, sizeof(L));
	L.o = o;
	L.sigfd = -1;
	if (realpath(o->db_dir, L.db) == NULL) {
		logm(LL_ERR, "%s: %s", o->db_dir, strerror(errno));
		return CPL_ENOTFOUND;
	}
	if ((rv = setup_nodes()) != 0)
		return rv;
	L.tasks = calloc(MAX_TASKS, sizeof(ltask *));
	if (L.tasks == NULL)
		return CPL_ENOMEM;
	// Block the signals the loop takes from its signalfd before any
	// thread exists (NNG's and the comm thread inherit the mask);
	// otherwise the kernel may deliver SIGTERM to a thread that does not
	// block it, and the default action ends the launcher at once.
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	memset(&co, 0, sizeof(co));
	co.db_dir = L.db;
	co.timeout_ms = 15000;
	if ((rv = cpl_client_open(&co, &L.c)) != 0) {
		logm(LL_ERR, "cannot reach the broker of %s: %s", L.db,
		    cpl_strerror(rv));
		return rv;
	}
	L.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	if ((rv = comm_start(L.c, o, &L.cm)) != 0) {
		cpl_client_close(L.c);
		return rv;
	}
	L.start_us = cpl_mono_us();
	L.last_busy_us = L.start_us;
	if (o->time_limit_min > 0)
		L.deadline_us = L.start_us + (uint64_t)(o->time_limit_min * 60e6);
	bool announced = false;

	for (;;) {
		uint64_t now = cpl_mono_us();
		struct signalfd_siginfo si;
		while (read(L.sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				begin_cut(si.ssi_signo == SIGTERM ?
				    "got SIGTERM" : "got SIGINT");
		}
		reap();
		comm_events ev;
		comm_take(L.cm, &ev);
		if (ev.lease_lost)
			drop_all("lease lost");
		if (ev.have_lease && !announced) {
			logm(LL_NOTICE, "started: %s mode, %zu node(s), up to %u "
			    "task(s), lease %llu", o->mode == MODE_MPI ? "mpi" :
			    "serial", L.nnodes, o->max_concurrent,
			    (unsigned long long)ev.lease);
			announced = true;
			L.last_busy_us = now; // idleness counts from here
		}
		L.lease = ev.have_lease ? ev.lease : 0;
		apply_kills(ev.kills, ev.nkills);
		for (size_t i = 0; i < ev.ntasks; i++) {
			if (L.stopping) {
				// the lease release gives it back
				copal__claimed_task__free_unpacked(ev.tasks[i], NULL);
				continue;
			}
			if (adopt(ev.tasks[i]) != 0)
				logm(LL_ERR, "could not take a claimed task");
		}
		if (ev.claim_answered) {
			L.claim_inflight = false;
			if (ev.ntasks > 0) {
				L.last_busy_us = now;
				L.next_claim_us = 0; // more may fit
			} else {
				// nothing (or an error): back off
				L.next_claim_us = now + (ev.claim_failed ?
				    1000000u : 500000u);
			}
		}
		free(ev.tasks); // the tasks themselves were adopted or freed
		free(ev.kills);
		start_queued();
		check_timeouts(now);
		if (L.deadline_us && now >= L.deadline_us)
			begin_cut("reached its wall-time limit");
		if (L.cutting && now >= L.kill_at_us) {
			for (size_t i = 0; i < L.ntasks; i++)
				kill_group(L.tasks[i], SIGKILL);
		}
		if (!announced && now - L.start_us > 60000000u) {
			logm(LL_ERR, "no lease from the broker after 60 s");
			break;
		}
		if (L.lease && !L.stopping && !L.claim_inflight &&
		    now >= L.next_claim_us)
			claim();
		flush_reports();
		compact();
		size_t act = active();
		if (act)
			L.last_busy_us = now;
		if (L.stopping && act == 0)
			break;
		if (!o->persistent && act == 0 && !L.stopping && announced &&
		    !L.claim_inflight &&
		    now - L.last_busy_us > (uint64_t)(o->idle_ttl_s * 1e6)) {
			logm(LL_NOTICE, "idle for %.0f s: done", o->idle_ttl_s);
			break;
		}
		// sleep until a child ends, a signal, the comm thread, or a timer
		int ms = 1000;
		if (!L.stopping && !L.claim_inflight && L.lease) {
			ms = L.next_claim_us > now ?
			    (int)((L.next_claim_us - now) / 1000u) : 0;
			if (ms > 1000)
				ms = 1000;
		}
		if (act && ms > 100)
			ms = 100; // timeouts and kill escalation
		struct pollfd pfd[2] = { { L.sigfd, POLLIN, 0 },
			{ comm_fd(L.cm), POLLIN, 0 } };
		if (ms > 0)
			poll(pfd, 2, ms);
	}
	flush_reports();
	// the comm thread sends what is left and gives the lease back
	comm_stop(L.cm);
	logm(LL_NOTICE, "done: %llu task(s) run", (unsigned long long)L.started);
	cpl_client_close(L.c);
	close(L.sigfd);
	free(L.tasks);
	free(L.reps);
	for (size_t i = 0; i < L.nnodes; i++)
		free(L.nodes[i].slot_busy);
	free(L.nodes);
	nodes_free(&L.nl);
	return 0;
}
