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

// One request that must succeed: exits with the broker's reason if not.
static inline Copal__Reply *
call(cpl_client *c, Copal__Request *rq)
{
	Copal__Reply *r;
	int rv;
	rq->request_id = 0;
	if ((rv = cpl_client_call(c, rq, &r)) != 0)
		die("call", rv);
	if (r->status) {
		fprintf(stderr, "%s: request failed: %s\n", bench_name, r->error);
		exit(1);
	}
	return r;
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
	Copal__PingRequest pr = COPAL__PING_REQUEST__INIT;
	Copal__Request prq = COPAL__REQUEST__INIT;
	prq.body_case = COPAL__REQUEST__BODY_PING;
	prq.ping = &pr;
	for (int i = 0;; i++) {
		Copal__Reply *r;
		prq.request_id = 0;
		if (cpl_client_call_once(c, &prq, 200, &r) == 0) {
			copal__reply__free_unpacked(r, NULL);
			return;
		}
		if (i > 100)
			die("broker did not start", CPL_ETIMEOUT);
	}
}

#endif
