// Connection benchmark: many simulated launchers on one broker.
//
//   conn_bench [-l N[,N...]] [-r ROUNDS] [-k TASKS] [-c CONTEXTS]
//              [-T ipc|tcp] [-B BROKER] [-H SECONDS] [-2]
//
// For each N (default 512,1024,2048,4096) a fresh database and broker; N
// simulated launchers, each with its own connection (one REQ socket) and
// its own lease, as one launcher per node of a large allocation would be.
// Each starts as a launcher does, with a claim that takes its lease with
// it (ClaimRequest.new_lease: one request; -2: a heartbeat for the lease,
// then the claim, as launchers did before, and as a broker without
// new_lease needs). Each heartbeats every 2 s (TTL 30 s, the launcher's default) on one
// context of its socket, unless a report renewed the lease meanwhile (as
// a launcher does, from a broker that says so), and, on another, loops:
// claim up to K tasks (-k, default 4: four free nodes), report RUNNING,
// let them "run" 1-3 s (random, a timer), report RUN_DONE and
// JOB_FINISHED (one request, as a launcher sends them for a task without
// a postprocess), claim again; an empty claim waits 1 s. The broker gets
// N * K * ROUNDS tasks (-r, default 3), created first in bulk. -c: the
// broker's --contexts. Everything is driven by NNG aio callbacks: the
// benchmark needs a few threads, not N.
//
// Figures per N: claim latency p50/p99 (request sent to reply received),
// heartbeat latency p99, leases lost (any heartbeat, claim or report
// refused), broker CPU per finished task (utime + stime of the broker in
// /proc/PID/stat over the launcher phase, heartbeats and empty claims
// included), broker anonymous RSS and descriptors (peaks, sampled every
// 0.5 s). Exits 1 if a lease was lost, a request refused, or the broker
// does not end with every task JOB_FINISHED.
//
// Broker CPU per task is also given as a ratio to two physical references
// measured at the start of the same run: the CPU a bare NNG REP echo
// server (contexts on aio callbacks, as the broker's) spends per round
// trip of a small message from 64 REQ connections over IPC ("rt"), and
// the CPU of one durable LMDB commit of one small record ("commits").
// The broker's log line on its commits (commits, requests, heartbeats
// renewed in memory) is copied to stderr, with the broker's CPU per task
// by thread (writer, answers, NNG's) and two floors: the requests and
// commits it was sent priced at those references, and priced with a
// third, measured before each size: the same echo server's CPU per round
// trip when N connections each send a request 250-750 ms after the last
// answer, so that requests come alone, as most of a launcher's do (each
// then wakes NNG's threads on its own: 24-49 µs against 7-12 µs on the
// machine of BENCHMARKS.md).
//
// -B: run this broker binary instead of the one built beside (A/B runs
// of two builds with the same load). -H S: no tasks, the launchers only
// heartbeat for S seconds: broker CPU per heartbeat. The start-up storm
// (all launchers start at once) has two columns: the first claim's own
// latency, and the start, from a launcher's first request to its first
// claim's answer (its time to its first tasks).
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <lmdb.h>

#include "bench_util.h"
#include "copal/client.h"

extern char **environ;

#define HB_EVERY_MS 2000
#define HB_TTL_MS 30000
#define IDLE_MS 1000
#define TOKEN "benchmark-token-0123456789abcdef"

static int rounds = 3, per_claim = 4;
static bool use_tcp;
static const char *contexts; // --contexts of the broker (NULL: its default)
static const char *broker_bin; // -B: another broker binary (A/B runs)
static int hb_only_s; // -H: only heartbeats, for this many seconds
static bool two_step; // -2: the lease by a heartbeat, then the first claim

// The broker's CPU so far by its threads' names: its writer, its
// answering thread, NNG's threads (nng:*, which receive, decode and send),
// and the rest (main, the claim park, the checker, the reaper).
enum { TH_WRITER, TH_ANSWERS, TH_NNG, TH_OTHER, TH_N };

static void
thread_cpu(pid_t pid, double out[TH_N])
{
	char path[320], comm[64];
	for (int i = 0; i < TH_N; i++)
		out[i] = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		double cpu;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid,
		    e->d_name);
		if (!bench_stat_cpu(path, comm, sizeof(comm), &cpu))
			continue;
		int k = strcmp(comm, "copal:writer") == 0 ? TH_WRITER :
		    strcmp(comm, "copal:answers") == 0 ? TH_ANSWERS :
		    strncmp(comm, "nng:", 4) == 0 ? TH_NNG : TH_OTHER;
		out[k] += cpu;
	}
	closedir(d);
}

// ---------------------------------------------------------------- samples

struct lat {
	pthread_mutex_t mx;
	double *v;
	size_t n, cap;
};

static void
lat_add(struct lat *l, double s)
{
	pthread_mutex_lock(&l->mx);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		l->v = realloc(l->v, l->cap * sizeof(double));
		if (l->v == NULL)
			die("out of memory", CPL_ENOMEM);
	}
	l->v[l->n++] = s;
	pthread_mutex_unlock(&l->mx);
}

static double
lat_pct(struct lat *l, double p)
{
	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof(double), cmp_d);
	size_t i = (size_t)(p * (double)(l->n - 1));
	return l->v[i];
}

static struct lat claim_lat = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
// each launcher's first claim, sent by all of them at once at the start
static struct lat first_lat = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
// from each launcher's first request to its first claim's answer
static struct lat start_lat = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
static struct lat hb_lat = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
static struct lat rep_lat = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
static atomic_long finished, claimed, refused, lost, empty_claims;
static atomic_int stopping;
static long total_tasks;

// ---------------------------------------------------------------- launchers

enum { S_HELLO, S_CLAIM, S_RUNNING, S_RUN, S_DONE, S_IDLE };

struct sim {
	int idx;
	nng_socket sock;
	nng_ctx wctx, hctx;
	nng_aio *waio, *haio;
	int wstate;
	bool wsent, hsent;
	double wt0, ht0;
	double start0; // its first request
	uint64_t seq, lease;
	uint8_t cid[16];
	char owner[32];
	size_t ntask;
	long nclaims; // answered
	uint64_t ids[64];
	uint32_t att[64];
	unsigned rnd;
	// a report the broker took renewed the lease (ReportReply's
	// lease_left_ms): no heartbeat before this (now_s), as a launcher
	_Atomic double hb_after;
};

static nng_msg *
pack(struct sim *S, Copal__Request *req)
{
	Copal__Credentials cred = COPAL__CREDENTIALS__INIT;
	cred.token.data = (uint8_t *)TOKEN;
	cred.token.len = strlen(TOKEN);
	req->version = CPL_PROTOCOL_VERSION;
	// the timer thread and NNG's callback threads both send for S. The
	// id as the client library picks it (cpl_client_next_id): the time
	// in microseconds, or one more than the last
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u +
	    (uint64_t)ts.tv_nsec / 1000u, cur, next;
	cur = __atomic_load_n(&S->seq, __ATOMIC_RELAXED);
	do {
		next = now > cur ? now : cur + 1;
	} while (!__atomic_compare_exchange_n(&S->seq, &cur, next, false,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	req->request_id = next;
	req->client_id.data = S->cid;
	req->client_id.len = sizeof(S->cid);
	req->credentials = &cred;
	size_t n = copal__request__get_packed_size(req);
	nng_msg *m;
	if (nng_msg_alloc(&m, n) != 0)
		die("nng_msg_alloc", CPL_ENOMEM);
	copal__request__pack(req, nng_msg_body(m));
	return m;
}

static void
send_on(nng_ctx ctx, nng_aio *aio, nng_msg *m)
{
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
}

// The reply in aio, or NULL (counted as refused) if the broker refused it.
static Copal__Reply *
reply_of(nng_aio *aio)
{
	nng_msg *m = nng_aio_get_msg(aio);
	Copal__Reply *r = copal__reply__unpack(NULL, nng_msg_len(m),
	    nng_msg_body(m));
	nng_msg_free(m);
	if (r == NULL)
		die("reply does not decode", CPL_EPROTO);
	if (r->status != 0) {
		fprintf(stderr, "%s: refused: %s: %s\n", bench_name,
		    cpl_strerror((int)r->status), r->error ? r->error : "");
		atomic_fetch_add(&refused, 1);
		if (r->status == CPL_EEXPIRED)
			atomic_fetch_add(&lost, 1);
		copal__reply__free_unpacked(r, NULL);
		return NULL;
	}
	return r;
}

static void
send_heartbeat(struct sim *S, nng_ctx ctx, nng_aio *aio)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.lease_id = S->lease;
	hb.owner = S->owner;
	hb.ttl_ms = HB_TTL_MS;
	req.body_case = COPAL__REQUEST__BODY_HEARTBEAT;
	req.heartbeat = &hb;
	send_on(ctx, aio, pack(S, &req));
}

static void
send_claim(struct sim *S)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	Copal__NodeCapacity nc[64], *ncp[64];
	for (int i = 0; i < per_claim; i++) {
		Copal__NodeCapacity x = COPAL__NODE_CAPACITY__INIT;
		nc[i] = x;
		nc[i].free_units = 5040;
		ncp[i] = &nc[i];
	}
	// no lease yet: the claim takes one with it
	Copal__HeartbeatRequest nl = COPAL__HEARTBEAT_REQUEST__INIT;
	nl.owner = S->owner;
	nl.ttl_ms = HB_TTL_MS;
	if (S->lease == 0)
		cl.new_lease = &nl;
	cl.lease_id = S->lease;
	cl.max_tasks = (uint32_t)per_claim;
	cl.n_nodes = (size_t)per_claim;
	cl.nodes = ncp;
	req.body_case = COPAL__REQUEST__BODY_CLAIM;
	req.claim = &cl;
	S->wstate = S_CLAIM;
	S->wt0 = now_s();
	send_on(S->wctx, S->waio, pack(S, &req));
}

// Reports every task of the claim going to state to and, if then is not
// 0, on to then, in one request: a launcher's RUN_DONE and JOB_FINISHED
// of a task without a postprocess are queued together and go in one
// batch (launcher/src/task.c, start_post).
static void
send_report(struct sim *S, int st, int to, int then)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	Copal__StateReport s[128], *sp[128];
	size_t n = 0;
	for (size_t i = 0; i < S->ntask; i++) {
		for (int k = 0; k < (then ? 2 : 1); k++) {
			Copal__StateReport x = COPAL__STATE_REPORT__INIT;
			s[n] = x;
			s[n].task_id = S->ids[i];
			s[n].attempt = S->att[i];
			s[n].to_state = k ? then : to;
			sp[n] = &s[n];
			n++;
		}
	}
	rr.lease_id = S->lease;
	rr.n_reports = n;
	rr.reports = sp;
	req.body_case = COPAL__REQUEST__BODY_REPORT;
	req.report = &rr;
	S->wstate = st;
	S->wt0 = now_s();
	send_on(S->wctx, S->waio, pack(S, &req));
}

// ---------------------------------------------------------------- timers

// One thread times every simulated launcher's waits (task run times, the
// pause after an empty claim, heartbeat intervals) from a binary heap.
// They were nng_sleep_aio()s, but NNG 1.5's aio expiry threads walk every
// pending aio at each expiry: at 4,096 launchers (8,192 sleeps) they took
// 42% of both cores in `perf record -a` (the broker 13%), so the load
// generator, not the broker, set the latencies measured.
struct tev {
	double at;
	struct sim *S;
	bool hb; // a heartbeat is due (else the work loop's next step)
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tev *h;
	size_t n, cap;
	bool stop;
	pthread_t th;
} tq = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0,
	false, 0 };

static void
tq_push(struct sim *S, bool hb, int ms)
{
	struct tev e = { now_s() + ms / 1000.0, S, hb };
	pthread_mutex_lock(&tq.mu);
	if (tq.stop) { // the run is over: a late callback's wait is dropped
		pthread_mutex_unlock(&tq.mu);
		return;
	}
	if (tq.n == tq.cap) {
		size_t cap = tq.cap ? tq.cap * 2 : 1024;
		struct tev *h = realloc(tq.h, cap * sizeof(*h));
		if (h == NULL)
			die("timer heap", CPL_ENOMEM);
		tq.h = h;
		tq.cap = cap;
	}
	size_t i = tq.n++;
	while (i > 0 && tq.h[(i - 1) / 2].at > e.at) {
		tq.h[i] = tq.h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	tq.h[i] = e;
	if (i == 0)
		pthread_cond_signal(&tq.cv);
	pthread_mutex_unlock(&tq.mu);
}

// Removes the earliest event into *e (the heap is not empty).
static void
tq_pop(struct tev *e)
{
	*e = tq.h[0];
	struct tev last = tq.h[--tq.n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= tq.n)
			break;
		if (c + 1 < tq.n && tq.h[c + 1].at < tq.h[c].at)
			c++;
		if (last.at <= tq.h[c].at)
			break;
		tq.h[i] = tq.h[c];
		i = c;
	}
	if (tq.n)
		tq.h[i] = last;
}

static void fire(struct sim *S, bool hb);

static void *
tq_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&tq.mu);
	while (!tq.stop) {
		if (tq.n == 0) {
			pthread_cond_wait(&tq.cv, &tq.mu);
			continue;
		}
		double at = tq.h[0].at; // CLOCK_MONOTONIC (now_s), as tq.cv
		if (at > now_s()) {
			struct timespec ts;
			ts.tv_sec = (time_t)at;
			ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
			pthread_cond_timedwait(&tq.cv, &tq.mu, &ts);
			continue;
		}
		struct tev e;
		tq_pop(&e);
		pthread_mutex_unlock(&tq.mu);
		fire(e.S, e.hb);
		pthread_mutex_lock(&tq.mu);
	}
	pthread_mutex_unlock(&tq.mu);
	return NULL;
}

static void
tq_start(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&tq.cv);
	pthread_cond_init(&tq.cv, &ca);
	pthread_condattr_destroy(&ca);
	tq.stop = false; // tq.n is 0: tq_stop empties the heap
	if (pthread_create(&tq.th, NULL, tq_main, NULL) != 0)
		die("timer thread", CPL_ENOMEM);
}

// Stops the timer thread: no event fires after it returns.
static void
tq_stop(void)
{
	pthread_mutex_lock(&tq.mu);
	tq.stop = true;
	pthread_cond_signal(&tq.cv);
	pthread_mutex_unlock(&tq.mu);
	pthread_join(tq.th, NULL);
	pthread_mutex_lock(&tq.mu);
	tq.n = 0;
	pthread_mutex_unlock(&tq.mu);
}

static void
sleep_w(struct sim *S, int st, int ms)
{
	S->wstate = st;
	S->wsent = false;
	tq_push(S, false, ms);
}

// A wait ended: the work loop's next request (after a task's run time,
// RUN_DONE; after an empty claim, another claim), or a heartbeat.
static void
fire(struct sim *S, bool hb)
{
	if (atomic_load(&stopping))
		return;
	if (hb) {
		double after = atomic_load(&S->hb_after), now = now_s();
		if (now < after) {
			tq_push(S, true, (int)((after - now) * 1000) + 1);
			return;
		}
		S->hsent = true;
		S->ht0 = now_s();
		send_heartbeat(S, S->hctx, S->haio);
		return;
	}
	// before the send: its completion may run on another thread before
	// send_* returns
	S->wsent = true;
	if (S->wstate == S_RUN)
		send_report(S, S_DONE, COPAL__TASK_STATE__STATE_RUN_DONE,
		    COPAL__TASK_STATE__STATE_JOB_FINISHED);
	else
		send_claim(S);
}

// A report's reply that says the lease was renewed puts off the next
// heartbeat by an interval from when the report was sent, as a launcher
// does (launcher/src/comm.c).
static void
renewed_by(struct sim *S, const Copal__Reply *r)
{
	if (r->report && r->report->lease_left_ms > 0)
		atomic_store(&S->hb_after, S->wt0 + HB_EVERY_MS / 1000.0);
}

// The work loop: each completion either was a send (then receive) or a
// receive or a timer (then the next step).
static void
work_cb(void *arg)
{
	struct sim *S = arg;
	int rv = nng_aio_result(S->waio);
	if (atomic_load(&stopping))
		return;
	if (rv != 0) {
		fprintf(stderr, "%s: launcher %d: %s\n", bench_name, S->idx,
		    nng_strerror(rv));
		atomic_fetch_add(&refused, 1);
		return;
	}
	if (S->wsent) {
		S->wsent = false;
		nng_ctx_recv(S->wctx, S->waio);
		return;
	}
	S->wsent = true;
	double dt = now_s() - S->wt0;
	Copal__Reply *r = reply_of(S->waio);
	if (r == NULL)
		return; // this launcher stops: the run fails
	switch (S->wstate) {
	case S_HELLO:
		S->lease = r->heartbeat->lease_id;
		copal__reply__free_unpacked(r, NULL);
		// heartbeats from now on, at a random phase
		tq_push(S, true, (int)(rand_r(&S->rnd) % HB_EVERY_MS));
		if (hb_only_s == 0)
			send_claim(S);
		return;
	case S_CLAIM:
		if (S->lease == 0) {
			// the claim took the lease: heartbeats from now on, at
			// a random phase
			S->lease = r->claim->lease_id;
			if (S->lease == 0)
				die("a claim with new_lease got no lease (a "
				    "broker without it? try -2)", CPL_EPROTO);
			tq_push(S, true, (int)(rand_r(&S->rnd) % HB_EVERY_MS));
		}
		if (S->nclaims == 0)
			lat_add(&start_lat, now_s() - S->start0);
		lat_add(S->nclaims++ ? &claim_lat : &first_lat, dt);
		S->ntask = r->claim->n_tasks;
		for (size_t i = 0; i < S->ntask && i < 64; i++) {
			S->ids[i] = r->claim->tasks[i]->task->id;
			S->att[i] = r->claim->tasks[i]->task->status->attempt;
		}
		copal__reply__free_unpacked(r, NULL);
		if (S->ntask == 0) {
			atomic_fetch_add(&empty_claims, 1);
			sleep_w(S, S_IDLE, IDLE_MS);
			return;
		}
		atomic_fetch_add(&claimed, (long)S->ntask);
		send_report(S, S_RUNNING, COPAL__TASK_STATE__STATE_RUNNING, 0);
		return;
	case S_RUNNING:
		lat_add(&rep_lat, dt);
		renewed_by(S, r);
		copal__reply__free_unpacked(r, NULL);
		sleep_w(S, S_RUN, 1000 + (int)(rand_r(&S->rnd) % 2001));
		return;
	case S_DONE:
		lat_add(&rep_lat, dt);
		renewed_by(S, r);
		copal__reply__free_unpacked(r, NULL);
		atomic_fetch_add(&finished, (long)S->ntask);
		S->ntask = 0;
		send_claim(S);
		return;
	}
}

static void
hb_cb(void *arg)
{
	struct sim *S = arg;
	int rv = nng_aio_result(S->haio);
	if (atomic_load(&stopping))
		return;
	if (rv != 0) {
		fprintf(stderr, "%s: launcher %d heartbeat: %s\n", bench_name,
		    S->idx, nng_strerror(rv));
		atomic_fetch_add(&refused, 1);
		return;
	}
	if (S->hsent) {
		S->hsent = false;
		nng_ctx_recv(S->hctx, S->haio);
		return;
	}
	double dt = now_s() - S->ht0;
	lat_add(&hb_lat, dt);
	Copal__Reply *r = reply_of(S->haio);
	if (r == NULL)
		return;
	copal__reply__free_unpacked(r, NULL);
	// the next one HB_EVERY_MS after this one was sent
	int wait = HB_EVERY_MS - (int)(dt * 1000);
	tq_push(S, true, wait > 0 ? wait : 0);
}

// ---------------------------------------------------------------- broker

static int
proc_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

// ---------------------------------------------------------------- references

// Physical references measured in the same run, on the same machine and
// transport: the CPU a bare NNG REP server (contexts with aio callbacks,
// as the broker's) spends per round trip of a small message, with 64 REQ
// connections in flight; and the CPU of one durable LMDB commit of one
// small record (two fdatasyncs, as every group commit of the broker).
#define REF_CONNS 64
#define REF_MSGS 20000
#define REF_COMMITS 300

struct echo {
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
};

static void
echo_cb(void *arg)
{
	struct echo *e = arg;
	if (nng_aio_result(e->aio) != 0) {
		if (e->sending)
			nng_msg_free(nng_aio_get_msg(e->aio));
		if (nng_aio_result(e->aio) == NNG_ECLOSED)
			return;
		e->sending = false;
		nng_ctx_recv(e->ctx, e->aio);
		return;
	}
	if (e->sending) {
		e->sending = false;
		nng_ctx_recv(e->ctx, e->aio);
	} else {
		e->sending = true;
		nng_ctx_send(e->ctx, e->aio); // the request's message back
	}
}

// The echo server, a fork of this process made before it used NNG: a
// context for each of up to nctx requests in flight.
static void
echo_server(const char *url, int nctx)
{
	nng_socket s;
	struct echo *e = calloc((size_t)nctx, sizeof(*e));
	if (e == NULL || nng_rep0_open(&s) != 0 ||
	    nng_listen(s, url, NULL, 0) != 0)
		_exit(1);
	for (int i = 0; i < nctx; i++) {
		if (nng_ctx_open(&e[i].ctx, s) != 0 ||
		    nng_aio_alloc(&e[i].aio, echo_cb, &e[i]) != 0)
			_exit(1);
		nng_ctx_recv(e[i].ctx, e[i].aio);
	}
	for (;;)
		pause();
}

struct pinger {
	nng_socket s;
	nng_ctx ctx;
	nng_aio *aio;
};
static atomic_long ref_left;
static atomic_int ref_busy;

static void
ping_send(struct pinger *p)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, 96) != 0)
		die("nng_msg_alloc", CPL_ENOMEM);
	memset(nng_msg_body(m), 'x', 96);
	nng_aio_set_msg(p->aio, m);
	nng_ctx_send(p->ctx, p->aio);
}

static void
ping_cb(void *arg)
{
	struct pinger *p = arg;
	int rv = nng_aio_result(p->aio);
	if (rv != 0) {
		atomic_fetch_sub(&ref_busy, 1);
		return;
	}
	nng_msg *m = nng_aio_get_msg(p->aio);
	if (m != NULL) {
		// a reply: one round trip done
		nng_msg_free(m);
		nng_aio_set_msg(p->aio, NULL);
		if (atomic_fetch_sub(&ref_left, 1) <= 1) {
			atomic_fetch_sub(&ref_busy, 1);
			return;
		}
		ping_send(p);
	} else {
		nng_ctx_recv(p->ctx, p->aio); // sent: wait for the reply
	}
}

static pid_t echo_pid;
static char echo_dir[] = "/tmp/copal-cref-XXXXXX", echo_url[96];
static void echo_stop(void);

// Starts the echo server for up to maxconn connections (before any NNG
// use here).
static void
echo_start(int maxconn)
{
	if (mkdtemp(echo_dir) == NULL)
		die("mkdtemp", CPL_EIO);
	snprintf(echo_url, sizeof echo_url, "ipc://%s/echo", echo_dir);
	pid_t parent = getpid();
	if ((echo_pid = fork()) < 0)
		die("fork", CPL_EIO);
	if (echo_pid == 0) {
		// not left behind, even by a parent gone before the prctl
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		echo_server(echo_url, 2 * (maxconn > REF_CONNS ? maxconn :
		    REF_CONNS));
	}
	atexit(echo_stop);
}

static void
echo_stop(void)
{
	kill(echo_pid, SIGKILL);
	waitpid(echo_pid, NULL, 0);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", echo_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: could not remove %s\n", bench_name,
		    echo_dir);
}

static void
pinger_open(struct pinger *p, void (*cb)(void *))
{
	// non-blocking: dials again until the server listens
	if (nng_req0_open(&p->s) != 0 ||
	    nng_dial(p->s, echo_url, NULL, NNG_FLAG_NONBLOCK) != 0 ||
	    nng_ctx_open(&p->ctx, p->s) != 0 ||
	    nng_aio_alloc(&p->aio, cb, p) != 0)
		die("reference dial (raise ulimit -n?)", CPL_ECONNECT);
}

// CPU µs the echo server spends per round trip, REF_CONNS connections
// each sending its next request as soon as it has the answer.
static double
ref_nng_us(void)
{
	static struct pinger p[REF_CONNS];
	for (int i = 0; i < REF_CONNS; i++)
		pinger_open(&p[i], ping_cb);
	// warm up, then measure
	double cpu0 = 0;
	for (int round = 0; round < 2; round++) {
		atomic_store(&ref_left, round ? REF_MSGS : REF_MSGS / 10);
		atomic_store(&ref_busy, REF_CONNS);
		cpu0 = bench_proc_cpu_s(echo_pid);
		for (int i = 0; i < REF_CONNS; i++)
			ping_send(&p[i]);
		while (atomic_load(&ref_busy) > 0)
			usleep(1000);
	}
	double us = (bench_proc_cpu_s(echo_pid) - cpu0) / REF_MSGS * 1e6;
	for (int i = 0; i < REF_CONNS; i++) {
		nng_aio_free(p[i].aio);
		nng_close(p[i].s);
	}
	return us;
}

// The same echo spread as the launchers' requests: n connections, each
// sending a request, then waiting SPARSE_GAP_MS (+-50 %) after the answer
// before the next, so that each request comes alone, as most of a
// launcher's do. CPU µs of the server per round trip over SPARSE_S.
#define SPARSE_GAP_MS 500
#define SPARSE_S 5

struct sparse {
	struct pinger p;
	int st; // 0 sending, 1 receiving, 2 waiting
	unsigned rnd;
};
static atomic_long sparse_rts;
static atomic_int sparse_stop;

static void
sparse_cb(void *arg)
{
	struct sparse *q = arg;
	int rv = nng_aio_result(q->p.aio);
	if (atomic_load(&sparse_stop)) {
		if (rv != 0 && q->st == 0) // a send stopped: the message is ours
			nng_msg_free(nng_aio_get_msg(q->p.aio));
		return;
	}
	if (rv != 0)
		die("reference echo", CPL_ECONNECT);
	switch (q->st) {
	case 0:
		q->st = 1;
		nng_ctx_recv(q->p.ctx, q->p.aio);
		return;
	case 1:
		nng_msg_free(nng_aio_get_msg(q->p.aio));
		nng_aio_set_msg(q->p.aio, NULL);
		atomic_fetch_add(&sparse_rts, 1);
		q->st = 2;
		nng_sleep_aio(SPARSE_GAP_MS / 2 +
		    (int)(rand_r(&q->rnd) % SPARSE_GAP_MS), q->p.aio);
		return;
	default:
		q->st = 0;
		ping_send(&q->p);
		return;
	}
}

static double
ref_sparse_us(int n)
{
	struct sparse *q = calloc((size_t)n, sizeof(*q));
	if (q == NULL)
		die("calloc", CPL_ENOMEM);
	atomic_store(&sparse_stop, 0);
	for (int i = 0; i < n; i++) {
		q[i].rnd = (unsigned)i * 2654435761u + 1;
		pinger_open(&q[i].p, sparse_cb);
		q[i].st = 2; // at a random phase
		nng_sleep_aio((int)(rand_r(&q[i].rnd) % SPARSE_GAP_MS),
		    q[i].p.aio);
	}
	sleep(1);
	long rt0 = atomic_load(&sparse_rts);
	double cpu0 = bench_proc_cpu_s(echo_pid);
	sleep(SPARSE_S);
	double cpu = bench_proc_cpu_s(echo_pid) - cpu0;
	long rts = atomic_load(&sparse_rts) - rt0;
	atomic_store(&sparse_stop, 1);
	for (int i = 0; i < n; i++)
		nng_aio_stop(q[i].p.aio);
	for (int i = 0; i < n; i++) {
		nng_aio_free(q[i].p.aio);
		nng_close(q[i].p.s);
	}
	free(q);
	return rts > 0 ? cpu / (double)rts * 1e6 : 0;
}

// The start-up storm on the bare echo: n connections, all connected and
// each warmed by one round trip, then each sends one request at once, as
// every launcher of an allocation does at its start. Latency from each
// one's send to its answer: the floor of the storm's "start" column on
// this machine (NNG and the two cores, with the load generator's sends
// on them too, and no work behind the answer).
struct stormer {
	struct pinger p;
	int st; // 0 sending, 1 receiving
	double t0;
};
static atomic_long storm_done;
static struct lat storm_lat = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
static bool storm_record;

static void
storm_cb(void *arg)
{
	struct stormer *q = arg;
	if (nng_aio_result(q->p.aio) != 0)
		die("reference echo (storm)", CPL_ECONNECT);
	if (q->st == 0) {
		q->st = 1;
		nng_ctx_recv(q->p.ctx, q->p.aio);
		return;
	}
	nng_msg_free(nng_aio_get_msg(q->p.aio));
	nng_aio_set_msg(q->p.aio, NULL);
	if (storm_record)
		lat_add(&storm_lat, now_s() - q->t0);
	atomic_fetch_add(&storm_done, 1);
}

static void
storm_round(struct stormer *q, int n)
{
	atomic_store(&storm_done, 0);
	for (int i = 0; i < n; i++) {
		q[i].st = 0;
		q[i].t0 = now_s();
		ping_send(&q[i].p);
	}
	double until = now_s() + 60;
	while (atomic_load(&storm_done) < n && now_s() < until)
		usleep(1000);
	if (atomic_load(&storm_done) < n)
		die("reference echo (storm): no answer in 60 s", CPL_ETIMEOUT);
}

static void
ref_storm(int n, double *p50, double *p99)
{
	struct stormer *q = calloc((size_t)n, sizeof(*q));
	if (q == NULL)
		die("calloc", CPL_ENOMEM);
	for (int i = 0; i < n; i++)
		pinger_open(&q[i].p, storm_cb);
	// warm: every connection made and used once, one at a time
	storm_record = false;
	for (int i = 0; i < n; i++)
		storm_round(&q[i], 1);
	usleep(200000);
	storm_lat.n = 0;
	storm_record = true;
	storm_round(q, n);
	*p50 = lat_pct(&storm_lat, 0.50);
	*p99 = lat_pct(&storm_lat, 0.99);
	for (int i = 0; i < n; i++) {
		nng_aio_free(q[i].p.aio);
		nng_close(q[i].p.s);
	}
	free(q);
}

static double
thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// CPU µs of one durable LMDB commit of one small record, in /tmp as the
// benchmark's databases.
static double
ref_lmdb_us(void)
{
	char dir[] = "/tmp/copal-cref-XXXXXX";
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", CPL_EIO);
	if (mdb_env_create(&env) != 0 ||
	    mdb_env_set_mapsize(env, 64u << 20) != 0 ||
	    mdb_env_open(env, dir, MDB_NOTLS | MDB_NORDAHEAD, 0600) != 0)
		die("reference lmdb", CPL_EIO);
	double cpu0 = 0;
	for (int i = 0; i < REF_COMMITS + 30; i++) {
		if (i == 30)
			cpu0 = thread_cpu_s();
		uint64_t k = (uint64_t)i;
		char v[100];
		memset(v, 'v', sizeof v);
		MDB_val kv = { sizeof k, &k }, vv = { sizeof v, v };
		if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
		    mdb_dbi_open(txn, NULL, 0, &dbi) != 0 ||
		    mdb_put(txn, dbi, &kv, &vv, 0) != 0 ||
		    mdb_txn_commit(txn) != 0)
			die("reference commit", CPL_EIO);
	}
	double us = (thread_cpu_s() - cpu0) / REF_COMMITS * 1e6;
	mdb_env_close(env);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: could not remove %s\n", bench_name, dir);
	return us;
}

static double ref_rt_us, ref_commit_us;

// ---------------------------------------------------------------- one run

static bool
run(int nl, const char *self_dir)
{
	// the echo under the launchers' spread, before the broker starts
	double sparse_us = hb_only_s ? 0 : ref_sparse_us(nl);
	double storm50 = 0, storm99 = 0;
	if (!hb_only_s)
		ref_storm(nl, &storm50, &storm99);
	char dir[] = "/tmp/copal-cbench-XXXXXX";
	char path[PATH_MAX + 64], broker[PATH_MAX + 64], url[PATH_MAX + 128];
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", CPL_EIO);
	cpl_dbpath(dir, CPL_DB_CONF, path, sizeof(path));
	FILE *f = fopen(path, "w");
	fprintf(f, "# benchmark database\n");
	if (use_tcp)
		fprintf(f, "broker_tcp_insecure = true\n");
	fclose(f);
	cpl_dbpath(dir, CPL_DB_SECRET, path, sizeof(path));
	f = fopen(path, "w");
	fprintf(f, TOKEN "\n");
	fclose(f);
	chmod(path, 0600);
	int port = 20000 + (int)(getpid() % 20000);
	char tcpurl[64];
	snprintf(tcpurl, sizeof tcpurl, "tcp://127.0.0.1:%d", port);
	if (broker_bin)
		snprintf(broker, sizeof(broker), "%s", broker_bin);
	else
		snprintf(broker, sizeof(broker), "%s/../broker/copal-broker",
		    self_dir);
	char *argv[8] = { broker, "--db", dir, NULL };
	int ac = 3;
	if (contexts) {
		argv[ac++] = "--contexts";
		argv[ac++] = (char *)contexts;
	}
	if (use_tcp) {
		argv[ac++] = "--tcp";
		argv[ac++] = tcpurl;
	}
	pid_t pid;
	if (posix_spawn(&pid, broker, NULL, NULL, argv, environ) != 0)
		die("spawn broker", CPL_EIO);
	cpl_client *c;
	cpl_client_opts o;
	memset(&o, 0, sizeof(o));
	o.db_dir = dir;
	o.url = use_tcp ? tcpurl : NULL;
	o.timeout_ms = 60000;
	int rv;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die("client open", rv);
	wait_for_broker(c);
	Copal__App app = COPAL__APP__INIT;
	app.name = "sim";
	app.executable = "/bin/true";
	Copal__Reply *r;
	must(c, cpl_call_app_register(c, &app, false, &r));
	cpl_reply_free(r);
	total_tasks = hb_only_s ? 0 : (long)nl * per_claim * rounds;
	bench_create_tasks(c, "conn", false, 0, total_tasks, 10000);
	if (use_tcp) {
		snprintf(url, sizeof url, "%s", tcpurl);
	} else {
		cpl_dbpath(dir, CPL_DB_SOCKET, path, sizeof(path));
		snprintf(url, sizeof url, "ipc://%s", path);
	}

	atomic_store(&finished, 0);
	atomic_store(&claimed, 0);
	atomic_store(&refused, 0);
	atomic_store(&lost, 0);
	atomic_store(&empty_claims, 0);
	atomic_store(&stopping, 0);
	claim_lat.n = first_lat.n = start_lat.n = hb_lat.n = rep_lat.n = 0;

	struct sim *sims = calloc((size_t)nl, sizeof(*sims));
	for (int i = 0; i < nl; i++) {
		struct sim *S = &sims[i];
		S->idx = i;
		S->rnd = (unsigned)i * 2654435761u + 1;
		for (int j = 0; j < 16; j++)
			S->cid[j] = (uint8_t)rand_r(&S->rnd);
		snprintf(S->owner, sizeof S->owner, "sim-%d", i);
		if ((rv = nng_req0_open(&S->sock)) != 0 ||
		    (rv = nng_socket_set_ms(S->sock, NNG_OPT_REQ_RESENDTIME,
		         NNG_DURATION_INFINITE)) != 0 ||
		    (rv = nng_dial(S->sock, url, NULL, 0)) != 0 ||
		    (rv = nng_ctx_open(&S->wctx, S->sock)) != 0 ||
		    (rv = nng_ctx_open(&S->hctx, S->sock)) != 0 ||
		    (rv = nng_aio_alloc(&S->waio, work_cb, S)) != 0 ||
		    (rv = nng_aio_alloc(&S->haio, hb_cb, S)) != 0) {
			fprintf(stderr, "%s: launcher %d: %s (raise ulimit -n?)\n",
			    bench_name, i, nng_strerror(rv));
			exit(1);
		}
	}
	tq_start();
	double cpu0 = bench_proc_cpu_s(pid), t0 = now_s();
	double th0[TH_N], th1[TH_N];
	thread_cpu(pid, th0);
	long long wc0 = bench_proc_field(pid, "io", "wchar:");
	for (int i = 0; i < nl; i++) {
		struct sim *S = &sims[i];
		S->start0 = now_s();
		if (!two_step && !hb_only_s) {
			S->wsent = true; // (before the send, as in fire)
			send_claim(S); // with its new lease
			continue;
		}
		Copal__Request req = COPAL__REQUEST__INIT;
		Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
		hb.owner = S->owner;
		hb.ttl_ms = HB_TTL_MS;
		req.body_case = COPAL__REQUEST__BODY_HEARTBEAT;
		req.heartbeat = &hb;
		S->wstate = S_HELLO;
		S->wsent = true;
		S->wt0 = now_s();
		send_on(S->wctx, S->waio, pack(S, &req));
	}
	long rss_max = 0;
	int fd_max = 0;
	double deadline = t0 + 120.0 + (double)total_tasks / 100.0;
	if (hb_only_s)
		deadline = t0 + hb_only_s;
	while ((hb_only_s || atomic_load(&finished) < total_tasks) &&
	    atomic_load(&refused) == 0 && now_s() < deadline) {
		usleep(500000);
		long rss = bench_status_kb(pid, "RssAnon:");
		int fds = proc_fds(pid);
		if (rss > rss_max)
			rss_max = rss;
		if (fds > fd_max)
			fd_max = fds;
	}
	double wall = now_s() - t0, cpu1 = bench_proc_cpu_s(pid);
	thread_cpu(pid, th1);
	long long wc1 = bench_proc_field(pid, "io", "wchar:");
	atomic_store(&stopping, 1);
	tq_stop();
	for (int i = 0; i < nl; i++) {
		nng_aio_stop(sims[i].waio);
		nng_aio_stop(sims[i].haio);
	}
	for (int i = 0; i < nl; i++) {
		nng_aio_free(sims[i].waio);
		nng_aio_free(sims[i].haio);
		nng_close(sims[i].sock);
	}
	free(sims);

	// the broker's own count: every task finished, none elsewhere
	must(c, cpl_call_count(c, NULL, &r));
	uint64_t fin = 0, other = 0;
	for (size_t i = 0; i < r->count->n_by_state; i++) {
		if (i == COPAL__TASK_STATE__STATE_JOB_FINISHED)
			fin += r->count->by_state[i];
		else
			other += r->count->by_state[i];
	}
	cpl_reply_free(r);
	cpl_client_close(c);
	kill(pid, SIGTERM);
	int ws;
	waitpid(pid, &ws, 0);
	bool ok = fin == (uint64_t)total_tasks && other == 0 &&
	    atomic_load(&refused) == 0 && atomic_load(&lost) == 0 &&
	    WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
	long done = atomic_load(&finished);
	double c50 = lat_pct(&claim_lat, 0.50) * 1e3;
	double c99 = lat_pct(&claim_lat, 0.99) * 1e3;
	double r99 = lat_pct(&rep_lat, 0.99) * 1e3;
	double h99 = lat_pct(&hb_lat, 0.99) * 1e3;
	double hmax = lat_pct(&hb_lat, 1.0) * 1e3;
	double us = done ? (cpu1 - cpu0) / (double)done * 1e6 : 0;
	if (hb_only_s) {
		size_t nh = hb_lat.n;
		printf("| %d | heartbeats only, %d s | %zu heartbeats | broker CPU "
		       "per heartbeat %.1f µs (%.1f rt) | heartbeat p99 %.1f ms | "
		       "%s |\n", nl, hb_only_s, nh, nh ? (cpu1 - cpu0) /
		    (double)nh * 1e6 : 0, nh ? (cpu1 - cpu0) / (double)nh *
		    1e6 / ref_rt_us : 0, h99, ok ? "ok" : "FAIL");
		goto out;
	}
	printf("| %d | %ld | %.1f s | %.0f | %.1f / %.1f ms | %.1f / %.1f ms | "
	       "%.1f / %.1f ms | %.1f ms | %.1f / %.1f ms (%zu) | %ld | %.1f µs (%.1f rt, %.2f "
	       "commits) | %.1f MB | %d | %s |\n",
	    nl, done, wall, (double)done / wall, c50, c99,
	    lat_pct(&first_lat, 0.50) * 1e3, lat_pct(&first_lat, 0.99) * 1e3,
	    lat_pct(&start_lat, 0.50) * 1e3, lat_pct(&start_lat, 0.99) * 1e3,
	    r99, h99, hmax,
	    hb_lat.n, atomic_load(&lost), us, us / ref_rt_us,
	    us / ref_commit_us, (double)rss_max / 1024.0, fd_max,
	    ok ? "ok" : "FAIL");
	fflush(stdout);
	if (done && wc0 >= 0 && wc1 >= wc0)
		// (wchar: what the commits pwrite. Not write_bytes: on ext4
		// with Linux 6.18 it counted 13x what the device was sent,
		// /sys/block/vda/stat, as if whole large folios were written)
		fprintf(stderr, "%s: N=%d: broker wrote %.1f kB per task\n",
		    bench_name, nl, (double)(wc1 - wc0) / 1024.0 /
		    (double)done);
	if (done)
		fprintf(stderr, "%s: N=%d: broker CPU per task by thread: writer "
		    "%.1f µs, answers %.1f µs, NNG's %.1f µs, other %.1f µs\n",
		    bench_name, nl, (th1[TH_WRITER] - th0[TH_WRITER]) /
		    (double)done * 1e6, (th1[TH_ANSWERS] - th0[TH_ANSWERS]) /
		    (double)done * 1e6, (th1[TH_NNG] - th0[TH_NNG]) /
		    (double)done * 1e6, (th1[TH_OTHER] - th0[TH_OTHER]) /
		    (double)done * 1e6);
	if (!ok)
		fprintf(stderr, "%s: N=%d: broker has %" PRIu64 " finished, %"
		    PRIu64 " elsewhere (want %ld); %ld refused, %ld leases lost, "
		    "broker exit %d\n", bench_name, nl, fin, other, total_tasks,
		    atomic_load(&refused), atomic_load(&lost),
		    WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
out:
	// the broker's own account of its commits (logged as it stopped)
	cpl_dbpath(dir, CPL_DB_BROKER_LOG, path, sizeof(path));
	unsigned long long commits = 0, wreqs = 0, inmem = 0;
	bool counted = false;
	if ((f = fopen(path, "r")) != NULL) {
		char line[512];
		while (fgets(line, sizeof line, f)) {
			const char *wl = strstr(line, "writer: ");
			if (wl == NULL)
				continue;
			fprintf(stderr, "%s: N=%d: %s", bench_name, nl, wl);
			counted = sscanf(wl, "writer: %llu commits of %llu "
			    "requests (%*u answered from stored replies), "
			    "%*u sweeps; %llu", &commits, &wreqs, &inmem) == 3;
		}
		fclose(f);
	}
	// The least the broker could spend per task on what it was sent:
	// a bare round trip for each request (heartbeats renewed in memory
	// included) and the reference commit for each commit it made. (The
	// broker's counts are of its whole life, the bulk creates before the
	// run included: a few requests and commits more.)
	if (counted && !hb_only_s && done > 0 && ref_rt_us > 0) {
		double rq = (double)(wreqs + inmem) / (double)done;
		double cm = (double)commits / (double)done;
		double floor_us = rq * ref_rt_us + cm * ref_commit_us;
		fprintf(stderr, "%s: N=%d: per task %.2f requests and %.3f "
		    "commits; the references' floor for them %.1f µs "
		    "(%.1f x %.2f + %.1f x %.3f), the broker's %.1f µs is "
		    "%.1fx it\n", bench_name, nl, rq, cm, floor_us, ref_rt_us,
		    rq, ref_commit_us, cm, us, us / floor_us);
		// the same with the round trip of requests that come alone
		double sfloor = rq * sparse_us + cm * ref_commit_us;
		if (sparse_us > 0)
			fprintf(stderr, "%s: N=%d: a bare echo with %d "
			    "connections, each a request %d ms (+-50 %%) after "
			    "its answer: %.1f µs CPU per round trip; the floor "
			    "with it %.1f µs, the broker's is %.1fx it\n",
			    bench_name, nl, nl, SPARSE_GAP_MS, sparse_us,
			    sfloor, us / sfloor);
	}
	if (storm99 > 0 && !hb_only_s)
		fprintf(stderr, "%s: N=%d: start-up storm on a bare echo (%d "
		    "connections, one request each, all at once): p50 %.1f / "
		    "p99 %.1f ms; the broker's start p50 %.1f / p99 %.1f ms is "
		    "%.1fx / %.1fx it\n", bench_name, nl, nl, storm50 * 1e3,
		    storm99 * 1e3, lat_pct(&start_lat, 0.50) * 1e3,
		    lat_pct(&start_lat, 0.99) * 1e3,
		    lat_pct(&start_lat, 0.50) / storm50,
		    lat_pct(&start_lat, 0.99) / storm99);
	// the database goes (a few MB each)
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: could not remove %s\n", bench_name, dir);
	return ok;
}

static void
usage(void)
{
	fprintf(stderr, "usage: conn_bench [-l N[,N...]] [-r ROUNDS] [-k TASKS] "
			"[-c CONTEXTS] [-T ipc|tcp] [-B BROKER] [-H SECONDS] [-2]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	bench_name = "conn_bench";
	const char *list = "512,1024,2048,4096";
	int opt;
	while ((opt = getopt(argc, argv, "l:r:k:c:T:B:H:2h")) != -1) {
		switch (opt) {
		case 'l':
			list = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'k':
			per_claim = atoi(optarg);
			break;
		case 'c':
			contexts = optarg;
			break;
		case 'B':
			broker_bin = optarg;
			break;
		case 'H':
			hb_only_s = atoi(optarg);
			break;
		case '2':
			two_step = true;
			break;
		case 'T':
			if (strcmp(optarg, "tcp") == 0)
				use_tcp = true;
			else if (strcmp(optarg, "ipc") != 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (rounds < 1 || per_claim < 1 || per_claim > 64 || hb_only_s < 0 ||
	    optind != argc)
		usage();
	// two descriptors per launcher here at most, with room for NNG's own
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		die("readlink", CPL_EIO);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	printf("conn_bench: simulated launchers, %d tasks per claim, tasks run "
	       "1-3 s, heartbeat every %d ms (TTL %d ms), %d rounds, over %s, "
	       "broker contexts %s, lease %s\n", per_claim, HB_EVERY_MS,
	    HB_TTL_MS, rounds, use_tcp ? "tcp" : "ipc",
	    contexts ? contexts : "(default)", two_step ?
	    "by a heartbeat, then the first claim (-2)" :
	    "taken by the first claim");
	// before any NNG use here: the echo server is a fork of this process
	int maxconn = 0;
	for (const char *p = list; *p;) {
		if (atoi(p) > maxconn)
			maxconn = atoi(p);
		p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
	}
	echo_start(maxconn);
	ref_rt_us = ref_nng_us();
	ref_commit_us = ref_lmdb_us();
	printf("references: bare NNG REP echo %.1f µs CPU per round trip "
	       "(%d connections, ipc); durable LMDB commit of one record %.1f "
	       "µs CPU\n", ref_rt_us, REF_CONNS, ref_commit_us);
	printf("| launchers | tasks | wall | tasks/s | claim p50 / p99 | "
	       "first claims (all at once%s) p50 / p99 | start (first request "
	       "to first tasks) p50 / p99 | report p99 | heartbeat p99 / max (n) | leases lost | broker CPU "
	       "per task (in round trips, in commits) | broker RssAnon peak | "
	       "broker fds peak | |\n"
	       "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
	    two_step ? "" : "; each grants its lease too");
	fflush(stdout);
	bool ok = true;
	for (const char *p = list; *p;) {
		int nl = atoi(p);
		if (nl < 1)
			usage();
		ok &= run(nl, self);
		p = strchr(p, ',');
		if (p == NULL)
			break;
		p++;
	}
	return ok ? 0 : 1;
}
