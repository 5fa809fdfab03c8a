// Helpers shared by the benchmark programs (header-only).
#ifndef COPAL_BENCH_UTIL_H
#define COPAL_BENCH_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "copal/client.h"

// The program's name for messages; each benchmark sets it first thing.
static const char *bench_name = "bench";

static inline double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline _Noreturn void
die(const char *what, int rv)
{
	fprintf(stderr, "%s: %s: %s\n", bench_name, what, cpl_strerror(rv));
	exit(1);
}

// The result rv of a typed call on c that must succeed: exits with the
// broker's reason if not.
static inline void
must(cpl_client *c, int rv)
{
	if (rv && !cpl_client_err_remote(c))
		die("call", rv);
	if (rv) {
		fprintf(stderr, "%s: request failed: %s\n", bench_name,
		    cpl_client_errmsg(c));
		exit(1);
	}
}

// Creates n tasks "<prefix><i>" of app in workflow wf (args and a
// node_packing_count when not NULL / 0) in CreateTasksRequests of batch
// each; with chain, each the child of the one before (within a request
// through its local links, the first of a later request through
// parent_ids). Returns the first task's id: the others follow in order.
static inline uint64_t
bench_create_chain(cpl_client *c, const char *prefix, const char *wf,
    const char *app, const char *args, uint32_t packing, size_t n,
    size_t batch, bool chain)
{
	Copal__TaskSpec *specs = calloc(batch, sizeof(*specs));
	Copal__TaskSpec **sp = calloc(batch, sizeof(*sp));
	uint32_t *child = calloc(batch, sizeof(uint32_t));
	uint32_t *parent = calloc(batch, sizeof(uint32_t));
	char (*names)[32] = calloc(batch, 32);
	if (!specs || !sp || !child || !parent || !names)
		die("calloc", CPL_ENOMEM);
	Copal__Resources res = COPAL__RESOURCES__INIT;
	res.node_packing_count = packing;
	uint64_t first = 0, last = 0;
	for (size_t done = 0; done < n;) {
		size_t m = n - done < batch ? n - done : batch, nd = 0;
		for (size_t i = 0; i < m; i++) {
			Copal__TaskSpec s = COPAL__TASK_SPEC__INIT;
			snprintf(names[i], 32, "%s%zu", prefix, done + i);
			specs[i] = s;
			specs[i].name = names[i];
			specs[i].workflow = (char *)wf;
			specs[i].application = (char *)app;
			specs[i].args = (char *)args;
			if (packing)
				specs[i].resources = &res;
			sp[i] = &specs[i];
			if (chain && i > 0) {
				child[nd] = (uint32_t)i;
				parent[nd++] = (uint32_t)(i - 1);
			}
		}
		if (chain && last) {
			specs[0].n_parent_ids = 1;
			specs[0].parent_ids = &last;
		}
		Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
		cr.n_tasks = m;
		cr.tasks = sp;
		cr.n_local_parent_child = cr.n_local_parent_parent = nd;
		cr.local_parent_child = child;
		cr.local_parent_parent = parent;
		Copal__Reply *r;
		must(c, cpl_call_create_tasks(c, &cr, &r));
		if (done == 0)
			first = r->create->first_id;
		last = r->create->first_id + m - 1;
		cpl_reply_free(r);
		done += m;
	}
	free(specs);
	free(sp);
	free(child);
	free(parent);
	free(names);
	return first;
}

// Creates the tasks named task<first>..task<last-1> (workflow wf, app
// "sim", with env one environment variable: the spec broker_bench and
// size_bench have always sent; conn_bench's has none) in
// CreateTasksRequests of batch each.
static inline void
bench_create_tasks(cpl_client *c, const char *wf, bool env, long first,
    long last, long batch)
{
	Copal__TaskSpec *specs = calloc((size_t)batch, sizeof(*specs));
	Copal__TaskSpec **sp = calloc((size_t)batch, sizeof(*sp));
	char (*names)[32] = calloc((size_t)batch, 32);
	if (specs == NULL || sp == NULL || names == NULL)
		die("creator memory", CPL_ENOMEM);
	Copal__EnvVar ev = COPAL__ENV_VAR__INIT;
	ev.name = "OMP_PROC_BIND";
	ev.value = "true";
	Copal__EnvVar *evp[1] = { &ev };
	Copal__Resources res = COPAL__RESOURCES__INIT;
	res.num_nodes = 1;
	res.ranks_per_node = 1;
	for (long done = first; done < last; done += batch) {
		long n = last - done < batch ? last - done : batch;
		for (long i = 0; i < n; i++) {
			Copal__TaskSpec x = COPAL__TASK_SPEC__INIT;
			specs[i] = x;
			snprintf(names[i], 32, "task%ld", done + i);
			specs[i].name = names[i];
			specs[i].workflow = (char *)wf;
			specs[i].application = "sim";
			specs[i].args = "--input data.in --steps 100";
			specs[i].n_environ = env ? 1 : 0;
			specs[i].environ = env ? evp : NULL;
			specs[i].resources = &res;
			specs[i].max_retries = 3;
			sp[i] = &specs[i];
		}
		Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
		cr.n_tasks = (size_t)n;
		cr.tasks = sp;
		Copal__Reply *r;
		must(c, cpl_call_create_tasks(c, &cr, &r));
		cpl_reply_free(r);
	}
	free(specs);
	free(sp);
	free(names);
}

// The CPU seconds (utime + stime, fields 14 and 15) in a /proc stat file
// (a process's, or a thread's: /proc/PID/task/TID/stat) and, if comm is
// not NULL, its name; false if it cannot be read.
static inline bool
bench_stat_cpu(const char *path, char *comm, size_t commlen, double *cpu_s)
{
	char buf[1024];
	unsigned long ut = 0, st = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	// counted after the ")" that ends the name (which may hold spaces)
	char *a = strchr(buf, '('), *p = strrchr(buf, ')');
	if (a == NULL || p == NULL || p < a || sscanf(p + 2, "%*c %*d %*d "
	    "%*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return false;
	if (comm && commlen) {
		size_t cl = (size_t)(p - a - 1);
		if (cl > commlen - 1)
			cl = commlen - 1;
		memcpy(comm, a + 1, cl);
		comm[cl] = '\0';
	}
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return true;
}

// CPU seconds (utime + stime) process pid has used so far; 0 if it cannot
// be read. The load of other processes changes wall-clock rates far more
// than this.
static inline double
bench_proc_cpu_s(pid_t pid)
{
	char path[64];
	double s = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return bench_stat_cpu(path, NULL, 0, &s) ? s : 0;
}

// A "field:" of /proc/PID/FILE ("status": RssAnon:, VmHWM: ... in kB;
// "io": wchar:, write_bytes: ... in bytes); -1 if it cannot be read.
static inline long long
bench_proc_field(pid_t pid, const char *file, const char *field)
{
	char path[64], line[256];
	long long v = -1;
	size_t fl = strlen(field);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0)
			v = atoll(line + fl);
	fclose(f);
	return v;
}

static inline long
bench_status_kb(pid_t pid, const char *field)
{
	return (long)bench_proc_field(pid, "status", field);
}

// Tasks in state st by a CountReply (0 for a state it does not list).
static inline uint64_t
bench_in_state(const Copal__CountReply *cr, int st)
{
	return (size_t)st < cr->n_by_state ? cr->by_state[st] : 0;
}

static inline int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

// Pings until the broker answers (about 20 s at most).
static inline void
wait_for_broker(cpl_client *c)
{
	for (int i = 0;; i++) {
		Copal__Reply *r;
		// any answer will do, a refusal too
		int rv = cpl_call_ping_once(c, 200, &r);
		cpl_reply_free(r);
		if (rv == 0 || cpl_client_err_remote(c))
			return;
		if (i > 100)
			die("broker did not start", CPL_ETIMEOUT);
	}
}

#endif
