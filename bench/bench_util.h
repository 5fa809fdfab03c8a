// Helpers shared by the benchmark programs (header-only).
#ifndef COPAL_BENCH_UTIL_H
#define COPAL_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

// Creates the tasks named task<first>..task<last-1> (workflow "bench",
// app "sim", one environment variable, the same spec broker_bench and
// size_bench have always sent) in CreateTasksRequests of batch each.
static inline void
bench_create_tasks(cpl_client *c, long first, long last, long batch)
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
			specs[i].workflow = "bench";
			specs[i].application = "sim";
			specs[i].args = "--input data.in --steps 100";
			specs[i].n_environ = 1;
			specs[i].environ = evp;
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
