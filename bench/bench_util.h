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
