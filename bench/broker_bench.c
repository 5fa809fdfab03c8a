// Broker benchmark: a real broker process, the client library, and
// simulated launchers that claim and report without spawning anything.
//
//   broker_bench [-n TASKS] [-b BATCH] [-s SUBMITTERS] [-l LAUNCHERS]
//                [-c CLAIM] [-T ipc|tcp|tls|both|all] [-q]
//
// -T: ipc (the local socket), tcp (plain, broker_tcp_insecure), tls
// (tls+tcp with the database's certificate, what launchers on other nodes
// use), both (ipc and tcp) or all (default: ipc, tcp, tls).
//
// In the same run it measures the physical reference, a raw NNG REQ/REP
// round trip (in-process echo server, same transport), and prints each
// figure beside it. All broker commits are durable.
//
// Exits 1 when the run is not what it claims to measure: after the bulk
// create every task must be READY and the backlog walk must see them all;
// the simulated launchers must claim every task exactly once; at the end
// the broker must count exactly the tasks reported JOB_FINISHED and FAILED
// and none in any other state; the first page of FAILED must be full; the
// broker must exit 0 on SIGTERM.
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/transport/tls/tls.h>

#include "bench_util.h"
#include "copal/client.h"
#include "copal/tlsgen.h"

extern char **environ;

static int ntasks = 1000000, batch = 10000, nlaunch = 8, claim_max = 1000;
static bool quick;

static bool failed_check;

// A correctness check of the run: says what is wrong and makes the
// program exit 1 once its figures are printed.
static void
expect(bool ok, const char *fmt, ...)
{
	if (ok)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "broker_bench: check failed: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failed_check = true;
}

// Tasks counted in states other than `a` and `b` (0: none).
static uint64_t
others(const Copal__CountReply *cr, int a, int b)
{
	uint64_t n = 0;
	for (size_t i = 0; i < cr->n_by_state; i++)
		if ((int)i != a && (int)i != b)
			n += cr->by_state[i];
	return n;
}

// ---------------------------------------------------------------- reference

struct echo {
	nng_socket s;
	volatile int stop;
};

static void *
echo_main(void *arg)
{
	struct echo *e = arg;
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(e->s, &m, 0) != 0)
			return NULL;
		if (nng_sendmsg(e->s, m, 0) != 0)
			nng_msg_free(m);
	}
}

// The whole of a small file, NUL-terminated.
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	if (f == NULL || buf == NULL)
		die(path, CPL_EIO);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

// A TLS configuration as the broker (server) or a client uses it: the
// database's certificate shown, pinned and required.
static nng_tls_config *
tls_cfg(const char *dir, bool server)
{
	char cp[PATH_MAX + 16], kp[PATH_MAX + 16];
	nng_tls_config *cfg;
	cpl_dbpath(dir, CPL_DB_TLS_CERT, cp, sizeof(cp));
	cpl_dbpath(dir, CPL_DB_TLS_KEY, kp, sizeof(kp));
	char *cert = slurp(cp), *key = slurp(kp);
	if (nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER :
	                                        NNG_TLS_MODE_CLIENT) ||
	    nng_tls_config_own_cert(cfg, cert, key, NULL) ||
	    nng_tls_config_ca_chain(cfg, cert, NULL) ||
	    nng_tls_config_server_name(cfg, CPL_TLS_SERVER_NAME) ||
	    nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED))
		die("reference TLS configuration", CPL_EINVAL);
	free(cert);
	free(key);
	return cfg;
}

// Raw REQ/REP round trips per second with a 100-byte message; with tls_dir,
// over TLS with that database's certificate.
static double
raw_rtt(const char *url, int n, const char *tls_dir)
{
	struct echo e;
	nng_socket c;
	pthread_t th;
	char buf[100];
	memset(buf, 'x', sizeof(buf));
	if (nng_rep0_open(&e.s) || nng_req0_open(&c))
		die("reference open", CPL_ECONNECT);
	if (tls_dir) {
		nng_listener l;
		nng_dialer d;
		nng_tls_config *sc = tls_cfg(tls_dir, true);
		nng_tls_config *cc = tls_cfg(tls_dir, false);
		if (nng_listener_create(&l, e.s, url) ||
		    nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, sc) ||
		    nng_listener_start(l, 0))
			die("reference listen", CPL_ECONNECT);
		pthread_create(&th, NULL, echo_main, &e);
		if (nng_dialer_create(&d, c, url) ||
		    nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cc) ||
		    nng_dialer_start(d, 0))
			die("reference dial", CPL_ECONNECT);
		nng_tls_config_free(sc);
		nng_tls_config_free(cc);
	} else {
		if (nng_listen(e.s, url, NULL, 0))
			die("reference listen", CPL_ECONNECT);
		pthread_create(&th, NULL, echo_main, &e);
		if (nng_dial(c, url, NULL, 0))
			die("reference dial", CPL_ECONNECT);
	}
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		void *r;
		size_t rl;
		if (nng_send(c, buf, sizeof(buf), 0) ||
		    nng_recv(c, &r, &rl, NNG_FLAG_ALLOC))
			die("reference round trip", CPL_ECONNECT);
		nng_free(r, rl);
	}
	double dt = now_s() - t0;
	nng_close(c);
	nng_close(e.s);
	pthread_join(th, NULL);
	return n / dt;
}

// ---------------------------------------------------------------- helpers


// CPU time (user + system) of this process (the clients' side).
static double
self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}


// ---------------------------------------------------------------- launchers

struct launcher {
	const char *dir;
	const char *url;
	pthread_t th;
	int idx;
	uint64_t done, failed;
	double *lat;
	size_t nlat, caplat;
};

static void
report(cpl_client *c, uint64_t lease, Copal__ClaimReply *cr, int to,
    int err_every, uint64_t *failed)
{
	size_t n = cr->n_tasks;
	Copal__StateReport *s = calloc(n, sizeof(*s));
	Copal__StateReport **sp = calloc(n, sizeof(*sp));
	for (size_t i = 0; i < n; i++) {
		Copal__StateReport x = COPAL__STATE_REPORT__INIT;
		s[i] = x;
		s[i].task_id = cr->tasks[i]->task->id;
		s[i].attempt = cr->tasks[i]->task->status->attempt;
		s[i].to_state = to;
		// one task in err_every fails at RUN_DONE time
		if (to == COPAL__TASK_STATE__STATE_RUN_DONE && err_every &&
		    s[i].task_id % (uint64_t)err_every == 0) {
			s[i].to_state = COPAL__TASK_STATE__STATE_RUN_ERROR;
			s[i].return_code = 1;
			s[i].message = "simulated failure";
			(*failed)++;
		}
		sp[i] = &s[i];
	}
	Copal__Reply *r;
	must(c, cpl_call_report(c, lease, sp, n, &r));
	for (size_t i = 0; i < r->report->n_status; i++) {
		// a task that failed at RUN_DONE is FAILED: its FINISHED
		// report is refused, as it should be
		if (r->report->status[i] != 0 &&
		    !(to == COPAL__TASK_STATE__STATE_JOB_FINISHED && err_every &&
		        s[i].task_id % (uint64_t)err_every == 0)) {
			fprintf(stderr, "report refused: %s\n",
			    cpl_strerror((int)r->report->status[i]));
			exit(1);
		}
	}
	copal__reply__free_unpacked(r, NULL);
	free(s);
	free(sp);
}

static void *
launcher_main(void *arg)
{
	struct launcher *L = arg;
	cpl_client *c;
	cpl_client_opts o;
	int rv;
	memset(&o, 0, sizeof(o));
	o.db_dir = L->dir;
	o.url = L->url;
	o.timeout_ms = 60000;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die("launcher open", rv);
	char owner[32];
	snprintf(owner, sizeof(owner), "sim-launcher-%d", L->idx);
	Copal__Reply *r;
	must(c, cpl_call_heartbeat(c, 0, owner, 600000, false, &r));
	uint64_t lease = r->heartbeat->lease_id;
	copal__reply__free_unpacked(r, NULL);

	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT;
	nc.free_units = 5040;
	Copal__NodeCapacity **ncp = calloc((size_t)claim_max, sizeof(*ncp));
	for (int i = 0; i < claim_max; i++)
		ncp[i] = &nc;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = (uint32_t)claim_max;
	cl.n_nodes = (size_t)claim_max;
	cl.nodes = ncp;
	for (;;) {
		double t0 = now_s();
		must(c, cpl_call_claim(c, &cl, &r));
		double dt = now_s() - t0;
		if (L->nlat == L->caplat) {
			L->caplat = L->caplat ? L->caplat * 2 : 1024;
			L->lat = realloc(L->lat, L->caplat * sizeof(double));
		}
		L->lat[L->nlat++] = dt;
		if (r->claim->n_tasks == 0) {
			copal__reply__free_unpacked(r, NULL);
			break;
		}
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_RUNNING, 0,
		    &L->failed);
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_RUN_DONE,
		    10000, &L->failed);
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_JOB_FINISHED,
		    10000, &L->failed);
		L->done += r->claim->n_tasks;
		copal__reply__free_unpacked(r, NULL);
	}
	free(ncp);
	cpl_client_close(c);
	return NULL;
}

// ---------------------------------------------------------------- creators

static int submitters = 2;

struct creator {
	const char *dir, *url;
	int first, last;
	pthread_t th;
};

static void *
creator_main(void *arg)
{
	struct creator *C = arg;
	cpl_client *c;
	cpl_client_opts o;
	int rv;
	memset(&o, 0, sizeof(o));
	o.db_dir = C->dir;
	o.url = C->url;
	o.timeout_ms = 60000;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die("creator open", rv);
	bench_create_tasks(c, "bench", true, C->first, C->last, batch);
	cpl_client_close(c);
	return NULL;
}

// ---------------------------------------------------------------- one run

static void
bench(const char *transport, const char *self_dir)
{
	char dir[] = "/tmp/copal-bbench-XXXXXX";
	char path[PATH_MAX + 64], broker[PATH_MAX + 64], url[128] = "";
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", CPL_EIO);
	cpl_dbpath(dir, CPL_DB_CONF, path, sizeof(path));
	FILE *f = fopen(path, "w");
	fprintf(f, "# benchmark database\n");
	fclose(f);
	cpl_dbpath(dir, CPL_DB_SECRET, path, sizeof(path));
	f = fopen(path, "w");
	fprintf(f, "benchmark-token-0123456789abcdef\n");
	fclose(f);
	chmod(path, 0600);
	bool tls = strcmp(transport, "tls") == 0;
	bool tcp = tls || strcmp(transport, "tcp") == 0;
	int port = 20000 + (int)(getpid() % 20000) + (tls ? 2 : 0);
	char err[PATH_MAX + 64];
	if (cpl_tls_generate(dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "broker_bench: %s\n", err);
		exit(1);
	}
	if (tcp)
		snprintf(url, sizeof(url), "%s://127.0.0.1:%d",
		    tls ? "tls+tcp" : "tcp", port);
	if (tcp && !tls) {
		// plain TCP only by name
		cpl_dbpath(dir, CPL_DB_CONF, path, sizeof(path));
		f = fopen(path, "a");
		fprintf(f, "broker_tcp_insecure = true\n");
		fclose(f);
	}

	// the reference: raw round trips on the same transport
	char refurl[128];
	if (tcp)
		snprintf(refurl, sizeof(refurl), "%s://127.0.0.1:%d",
		    tls ? "tls+tcp" : "tcp", port + 1);
	else
		snprintf(refurl, sizeof(refurl), "ipc://%s/ref", dir);
	double rtt = raw_rtt(refurl, quick ? 5000 : 20000, tls ? dir : NULL);

	snprintf(broker, sizeof(broker), "%s/../broker/copal-broker", self_dir);
	char *argv[] = { broker, "--db", dir, "--tcp", url, NULL };
	if (!tcp)
		argv[3] = NULL;
	pid_t pid;
	if (posix_spawn(&pid, broker, NULL, NULL, argv, environ) != 0)
		die("spawn broker", CPL_EIO);
	cpl_client *c;
	cpl_client_opts o;
	memset(&o, 0, sizeof(o));
	o.db_dir = dir;
	o.url = tcp ? url : NULL;
	o.timeout_ms = 60000;
	int rv;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die("client open", rv);
	wait_for_broker(c);
	long rss0 = bench_status_kb(pid, "RssAnon:");

	// app
	Copal__App app = COPAL__APP__INIT;
	app.name = "sim";
	app.executable = "/bin/true";
	Copal__Reply *r;
	must(c, cpl_call_app_register(c, &app, false, &r));
	cpl_reply_free(r);

	// bulk create: `submitters` threads, each with its own connection,
	// keep that many batches in flight so that encoding overlaps the
	// broker's group commit
	struct creator cr[8];
	int nsub = submitters;
	double cpu0 = bench_proc_cpu_s(pid), scpu0 = self_cpu_s();
	double t0 = now_s();
	for (int i = 0; i < nsub; i++) {
		cr[i].dir = dir;
		cr[i].url = tcp ? url : NULL;
		cr[i].first = (int)((long)ntasks * i / nsub);
		cr[i].last = (int)((long)ntasks * (i + 1) / nsub);
		pthread_create(&cr[i].th, NULL, creator_main, &cr[i]);
	}
	for (int i = 0; i < nsub; i++)
		pthread_join(cr[i].th, NULL);
	double create_s = now_s() - t0;
	double create_cpu = bench_proc_cpu_s(pid) - cpu0;
	double create_scpu = self_cpu_s() - scpu0;
	long rss1 = bench_status_kb(pid, "RssAnon:");
	long file1 = bench_status_kb(pid, "RssFile:");

	must(c, cpl_call_count(c, NULL, &r));
	uint64_t ready = bench_in_state(r->count,
	    COPAL__TASK_STATE__STATE_READY);
	uint64_t other = others(r->count, COPAL__TASK_STATE__STATE_READY, -1);
	cpl_reply_free(r);
	expect(ready == (uint64_t)ntasks && other == 0,
	    "after create: %" PRIu64 " READY and %" PRIu64 " in other states, "
	    "expected %d READY", ready, other, ntasks);

	// count by states at N (the `copal ls --by-states` request)
	t0 = now_s();
	for (int i = 0; i < 200; i++) {
		must(c, cpl_call_count(c, NULL, &r));
		cpl_reply_free(r);
	}
	double count_ms = (now_s() - t0) / 200 * 1e3;

	// the backlog walk of one service round (`copal service`, and `copal
	// ls` with a queue policy): every runnable task against one queue
	Copal__QueueLimit ql = COPAL__QUEUE_LIMIT__INIT;
	Copal__QueueLimit *qlp = &ql;
	ql.max_nodes = 1;
	ql.max_minutes = 60;
	Copal__BacklogRequest bq = COPAL__BACKLOG_REQUEST__INIT;
	bq.queues = &qlp;
	bq.n_queues = 1;
	bq.max_unfit_ids = 10;
	uint64_t backlog_tasks = 0, backlog_unfit = 0;
	t0 = now_s();
	for (int i = 0; i < 5; i++) {
		must(c, cpl_call_backlog(c, &bq, &r));
		backlog_tasks = r->backlog->tasks;
		backlog_unfit = r->backlog->unfit;
		cpl_reply_free(r);
	}
	double backlog_ms = (now_s() - t0) / 5 * 1e3;
	// every task is one node, no wall time: all fit the one queue
	expect(backlog_tasks == (uint64_t)ntasks && backlog_unfit == 0,
	    "backlog walk: %" PRIu64 " tasks fit, %" PRIu64 " unfit, expected "
	    "all %d to fit", backlog_tasks, backlog_unfit, ntasks);

	// drain with simulated launchers
	struct launcher *L = calloc((size_t)nlaunch, sizeof(*L));
	double cpu1 = bench_proc_cpu_s(pid), scpu1 = self_cpu_s();
	t0 = now_s();
	for (int i = 0; i < nlaunch; i++) {
		L[i].dir = dir;
		L[i].url = tcp ? url : NULL;
		L[i].idx = i;
		pthread_create(&L[i].th, NULL, launcher_main, &L[i]);
	}
	uint64_t done = 0, failed = 0;
	size_t nlat = 0;
	for (int i = 0; i < nlaunch; i++) {
		pthread_join(L[i].th, NULL);
		done += L[i].done;
		failed += L[i].failed;
		nlat += L[i].nlat;
	}
	double drain_s = now_s() - t0;
	double drain_cpu = bench_proc_cpu_s(pid) - cpu1;
	double drain_scpu = self_cpu_s() - scpu1;
	double *lat = malloc(nlat * sizeof(double));
	size_t k = 0;
	for (int i = 0; i < nlaunch; i++) {
		memcpy(lat + k, L[i].lat, L[i].nlat * sizeof(double));
		k += L[i].nlat;
		free(L[i].lat);
	}
	qsort(lat, nlat, sizeof(double), cmp_d);
	long rss2 = bench_status_kb(pid, "RssAnon:");
	long file2 = bench_status_kb(pid, "RssFile:");

	// first page of FAILED
	Copal__TaskState fs = COPAL__TASK_STATE__STATE_FAILED;
	Copal__Filter fl = COPAL__FILTER__INIT;
	fl.n_states = 1;
	fl.states = &fs;
	size_t nfailed = 0;
	t0 = now_s();
	for (int i = 0; i < 50; i++) {
		must(c, cpl_call_query(c, &fl, 0, 50, true, &r));
		nfailed = r->query->n_tasks;
		cpl_reply_free(r);
	}
	double page_ms = (now_s() - t0) / 50 * 1e3;
	must(c, cpl_call_count(c, NULL, &r));
	uint64_t finished = bench_in_state(r->count,
	    COPAL__TASK_STATE__STATE_JOB_FINISHED);
	uint64_t nfail = bench_in_state(r->count,
	    COPAL__TASK_STATE__STATE_FAILED);
	uint64_t left = others(r->count, COPAL__TASK_STATE__STATE_JOB_FINISHED,
	    COPAL__TASK_STATE__STATE_FAILED);
	cpl_reply_free(r);

	printf("\n== transport %s: %d tasks, batches of %d from %d submitters, "
	       "%d launchers claiming up to %d ==\n", transport, ntasks, batch,
	    submitters, nlaunch, claim_max);
	printf("%-44s %14s %10s %s\n", "figure", "value", "target", "");
	printf("%-44s %11.0f/s %10s\n", "raw NNG REQ/REP round trips (reference)",
	    rtt, "");
	printf("%-44s %11.1f us\n", "  one raw round trip", 1e6 / rtt);
	double cr_rate = ntasks / create_s;
	printf("%-44s %11.0f/s %10s %s  (%.1f tasks per raw round-trip time)\n",
	    "bulk create through the client library", cr_rate, ">=200000",
	    cr_rate >= 200000 ? "PASS" : "MISS", cr_rate / rtt);
	double dr_rate = done / drain_s;
	printf("%-44s %11.0f/s %10s %s  (%.1f tasks per raw round-trip time)\n",
	    "drain: claim+RUNNING+RUN_DONE+JOB_FINISHED", dr_rate, ">=50000",
	    dr_rate >= 50000 ? "PASS" : "MISS", dr_rate / rtt);
	// TLS against plain TCP of the same run
	static double tcp_drain, tcp_create;
	if (tcp && !tls) {
		tcp_drain = dr_rate;
		tcp_create = cr_rate;
	}
	if (tls && tcp_drain > 0) {
		printf("%-44s %12.2f %10s %s\n", "  TLS drain / plain TCP drain",
		    dr_rate / tcp_drain, ">=0.80",
		    dr_rate / tcp_drain >= 0.8 ? "PASS" : "MISS");
		printf("%-44s %12.2f\n", "  TLS create / plain TCP create",
		    cr_rate / tcp_create);
	}
	printf("%-44s %11.2f us\n", "  broker CPU per task: create",
	    create_cpu * 1e6 / ntasks);
	printf("%-44s %11.2f us\n", "  broker CPU per task: drain",
	    drain_cpu * 1e6 / ntasks);
	printf("%-44s %11.2f us\n", "  clients' CPU per task: create",
	    create_scpu * 1e6 / ntasks);
	printf("%-44s %11.2f us\n", "  clients' CPU per task: drain",
	    drain_scpu * 1e6 / ntasks);
	printf("%-44s %11.2f ms\n", "  claim latency p50", lat[nlat / 2] * 1e3);
	printf("%-44s %11.2f ms\n", "  claim latency p99",
	    lat[(size_t)(nlat * 0.99)] * 1e3);
	printf("%-44s %11.3f ms %10s %s  (%.1f raw round trips)\n",
	    "count by states (ls --by-states request)", count_ms, "<20 ms",
	    count_ms < 20 ? "PASS" : "MISS", count_ms * 1e-3 * rtt);
	printf("%-44s %11.1f ms %10s %s  (%" PRIu64 " runnable tasks, %.0f ns "
	    "each)\n", "backlog walk (one service round)", backlog_ms, "<1000 ms",
	    backlog_ms < 1000 ? "PASS" : "MISS", backlog_tasks,
	    backlog_tasks ? backlog_ms * 1e6 / (double)backlog_tasks : 0.0);
	printf("%-44s %11.3f ms %10s %s  (%zu tasks)\n",
	    "first page (50) of state FAILED", page_ms, "<50 ms",
	    page_ms < 50 ? "PASS" : "MISS", nfailed);
	printf("%-44s %11ld MB\n", "broker RSS anon: empty", rss0 / 1024);
	printf("%-44s %11ld MB  (+ %ld MB of mapped database pages)\n",
	    "broker RSS anon: after create", rss1 / 1024, file1 / 1024);
	printf("%-44s %11ld MB  (+ %ld MB of mapped database pages)\n",
	    "broker RSS anon: after drain", rss2 / 1024, file2 / 1024);
	printf("%-44s %11llu JOB_FINISHED, %llu FAILED, %llu other (claimed "
	    "%llu, reported %llu RUN_ERROR)\n", "check",
	    (unsigned long long)finished, (unsigned long long)nfail,
	    (unsigned long long)left, (unsigned long long)done,
	    (unsigned long long)failed);
	expect(done == (uint64_t)ntasks, "the launchers claimed %" PRIu64
	    " tasks, not %d", done, ntasks);
	expect(finished == (uint64_t)ntasks - failed && nfail == failed &&
	    left == 0, "after the drain: %" PRIu64 " JOB_FINISHED, %" PRIu64
	    " FAILED, %" PRIu64 " in other states; expected %" PRIu64
	    " and %" PRIu64, finished, nfail, left, (uint64_t)ntasks - failed,
	    failed);
	expect(nfailed == (failed < 50 ? failed : 50), "the first page of "
	    "FAILED has %zu tasks", nfailed);
	cpl_client_close(c);
	kill(pid, SIGTERM);
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		die("wait broker", CPL_EIO);
	expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "the broker ended with status %#x", st);
	free(L);
	free(lat);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "broker_bench: could not remove %s\n", dir);
}

int
main(int argc, char **argv)
{
	bench_name = "broker_bench";
	const char *transport = "all";
	int opt;
	while ((opt = getopt(argc, argv, "n:b:l:c:s:T:q")) != -1) {
		switch (opt) {
		case 'n':
			ntasks = atoi(optarg);
			break;
		case 'b':
			batch = atoi(optarg);
			break;
		case 'l':
			nlaunch = atoi(optarg);
			break;
		case 'c':
			claim_max = atoi(optarg);
			break;
		case 's':
			submitters = atoi(optarg);
			if (submitters < 1 || submitters > 8) {
				fprintf(stderr, "broker_bench: -s 1..8\n");
				return 2;
			}
			break;
		case 'T':
			transport = optarg;
			break;
		case 'q':
			quick = true;
			ntasks = 100000;
			break;
		default:
			fprintf(stderr, "usage: broker_bench [-n TASKS] [-b BATCH] "
			    "[-s SUBMITTERS] [-l LAUNCHERS] [-c CLAIM] "
			    "[-T ipc|tcp|tls|both|all] [-q]\n");
			return 2;
		}
	}
	if (ntasks < 1 || batch < 1 || nlaunch < 1 || claim_max < 1) {
		fprintf(stderr, "broker_bench: counts must be positive\n");
		return 2;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		die("readlink /proc/self/exe", CPL_EIO);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	signal(SIGPIPE, SIG_IGN);
	bool all = strcmp(transport, "all") == 0,
	     both = strcmp(transport, "both") == 0;
	if (!all && !both && strcmp(transport, "ipc") != 0 &&
	    strcmp(transport, "tcp") != 0 && strcmp(transport, "tls") != 0) {
		fprintf(stderr, "broker_bench: -T ipc, tcp, tls, both or all\n");
		return 2;
	}
	if (all || both || strcmp(transport, "ipc") == 0)
		bench("ipc", self);
	if (all || both || strcmp(transport, "tcp") == 0)
		bench("tcp", self);
	if (all || strcmp(transport, "tls") == 0)
		bench("tls", self);
	if (failed_check) {
		fprintf(stderr, "broker_bench: a correctness check failed "
		    "(above): the figures do not count\n");
		return 1;
	}
	return 0;
}
