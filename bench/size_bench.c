// How cost grows with the number of tasks (issue 17, "Size"): at each size
// N, in its own fresh database, a real broker process, the client library
// and the copal command.
//
//   size_bench [-s SIZES] [-o CSV] [-l LAUNCHERS] [-d DIR] [-u random|time]
//
// -s: comma-separated sizes, k and M suffixes (default 1M,3M,10M);
// -o: the CSV written (default size_bench.csv); -d: where the databases
// go (default $TMPDIR, else /tmp; one at a time, each removed after its
// size); -u: the databases' task_uuids (default random, copal.conf's
// default; time: version 7, appended to the uuid index). At each N:
//
//   raw puts   the physical reference of the store: N sequential LMDB puts
//              of 200-byte values, 10,000 per durable commit (store_bench's)
//   raw rtt    the physical reference of the broker: raw NNG REQ/REP round
//              trips of 100 bytes over IPC (broker_bench's)
//   create     N tasks through the broker, 10,000 per CreateTasksRequest
//              as `copal job --from-file` sends them, two in flight
//   drain      8 simulated launchers: claim up to 1,000, report RUNNING,
//              RUN_DONE (1 in 10,000 RUN_ERROR: FAILED), JOB_FINISHED
//   count      the CountRequest of `copal ls --by-states` (median of 101)
//              and the whole `copal ls --by-states` process (median of 7)
//   page       first page of READY (before the drain) and of JOB_FINISHED
//              (after): QueryRequest limit 50 with specs, and `copal ls
//              --state S --limit 50`
//   history    one task's history (the task in the middle): HistoryRequest
//              and `copal history UUID`
//   export     `copal export --format jsonl` read through a pipe (lines
//              counted): events per second
//   check      cpl_store_check of the whole store, broker stopped
//   bytes      data.mdb's size and its used pages (high-water mark) per task
//   heap       the broker's RssAnon and VmHWM after create and after drain,
//              RssAnon again once it has been idle for 2.5 s (what it
//              keeps: the writer returns freed heap when idle),
//              and its RssFile and RssShmem (the mapped database's resident
//              pages): memory that leaves the heap shows up there
//   CPU        the broker's utime + stime per task over create and drain,
//              per event over the export; copal's (export) and this
//              process's (the load generator): on a busy machine the
//              figure to compare across sizes
//
// Then a table (figures by size; rates also as ratios to the references
// and to the first size) and the targets of issue 17, comparing the
// largest size with the first: rates >= 0.8x (CPU per task <= 1.25x),
// heap <= 1.2x, counts and first pages <= 1.5x (or under 1 ms for a
// request, 20 ms for a process).
// Exits 1 if the run is not what it claims to measure (counts, exports and
// checks that do not add up), never for a MISS.
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "bench_util.h"
#include "copal/client.h"
#include "copal/dbdir.h"
#include "copal/store.h"

extern char **environ;

enum { BATCH = 10000, CLAIM = 1000, ERR_EVERY = 10000, MAXSIZES = 16 };

static int nlaunch = 8;
static const char *uuids = "random"; // task_uuids of copal.conf
static bool failed_check;
static char self_dir[PATH_MAX];
static pid_t broker_pid; // the running broker, stopped if we exit early

static void
stop_broker(void)
{
	if (broker_pid > 0) {
		kill(broker_pid, SIGTERM);
		waitpid(broker_pid, NULL, 0);
		broker_pid = 0;
	}
}

static void
expect(bool ok, const char *fmt, ...)
{
	if (ok)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "size_bench: check failed: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failed_check = true;
}

static void
progress(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "size_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[n / 2];
}

static double
load1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static double
self_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
rm_tree(const char *path)
{
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "size_bench: could not remove %s\n", path);
}

// ---------------------------------------------------------------- references

static void
lmdb_check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "size_bench: %s: %s\n", what, mdb_strerror(rc));
		exit(1);
	}
}

// store_bench's reference: n sequential puts of big-endian u64 keys with
// 200-byte values, BATCH per durable commit. Puts per second.
static double
raw_puts(const char *dir, size_t n)
{
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	if (mkdir(dir, 0700) != 0)
		die(dir, CPL_EIO);
	lmdb_check(mdb_env_create(&env), "mdb_env_create");
	lmdb_check(mdb_env_set_mapsize(env, (size_t)n * 512 + (256u << 20)),
	    "mdb_env_set_mapsize");
	lmdb_check(mdb_env_open(env, dir, 0, 0600), "mdb_env_open");
	lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
	lmdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
	lmdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
	unsigned char val[200];
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (unsigned char)('a' + i % 26);
	double t0 = now_s();
	for (size_t done = 0; done < n;) {
		size_t k = n - done < BATCH ? n - done : BATCH;
		lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
		for (size_t i = 0; i < k; i++) {
			uint64_t id = done + i + 1;
			unsigned char key[8];
			for (int b = 0; b < 8; b++)
				key[b] = (unsigned char)(id >> (56 - 8 * b));
			memcpy(val, key, 8);
			MDB_val mk = { sizeof key, key }, mv = { sizeof val, val };
			lmdb_check(mdb_put(txn, dbi, &mk, &mv, 0), "mdb_put");
		}
		lmdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
		done += k;
	}
	double dt = now_s() - t0;
	mdb_env_close(env);
	rm_tree(dir);
	return (double)n / dt;
}

struct echo {
	nng_socket s;
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

// broker_bench's reference: raw REQ/REP round trips per second, 100 bytes.
static double
raw_rtt(const char *url, int n)
{
	struct echo e;
	nng_socket c;
	pthread_t th;
	char buf[100];
	memset(buf, 'x', sizeof(buf));
	if (nng_rep0_open(&e.s) || nng_req0_open(&c) ||
	    nng_listen(e.s, url, NULL, 0))
		die("reference listen", CPL_ECONNECT);
	pthread_create(&th, NULL, echo_main, &e);
	if (nng_dial(c, url, NULL, 0))
		die("reference dial", CPL_ECONNECT);
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

// ---------------------------------------------------------------- the copal command

// Runs `copal ARGS...` (COPAL_DB and HOME set by the caller) with its
// output to /dev/null, or to *pipe_fd when pipe_fd is not NULL (the caller
// reads it and calls cli_wait). Returns the pid.
static pid_t
cli_spawn(char *const *args, int *pipe_fd)
{
	char copal[PATH_MAX + 16];
	char *argv[16];
	int n = 0, fds[2] = { -1, -1 };
	snprintf(copal, sizeof(copal), "%s/../cli/copal", self_dir);
	argv[n++] = copal;
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (pipe_fd) {
		if (pipe(fds) != 0)
			die("pipe", CPL_EIO);
		posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
		posix_spawn_file_actions_addclose(&fa, fds[0]);
		posix_spawn_file_actions_addclose(&fa, fds[1]);
	} else {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY,
		    0);
	}
	pid_t pid;
	if (posix_spawn(&pid, copal, &fa, NULL, argv, environ) != 0)
		die("spawn copal", CPL_EIO);
	posix_spawn_file_actions_destroy(&fa);
	if (pipe_fd) {
		close(fds[1]);
		*pipe_fd = fds[0];
	}
	return pid;
}

// Waits for `copal ARGS...` (pid), which must exit 0; returns the CPU
// seconds it used.
static double
cli_wait(pid_t pid, char *const *args)
{
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) != pid)
		die("wait copal", CPL_EIO);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "size_bench: `copal");
		for (int i = 0; args[i]; i++)
			fprintf(stderr, " %s", args[i]);
		fprintf(stderr, "` ended with status %#x\n", st);
		exit(1);
	}
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

// Median wall time in ms of reps runs of `copal ARGS...`.
static double
cli_ms(int reps, char *const *args)
{
	double v[32];
	for (int i = 0; i < reps && i < 32; i++) {
		double t0 = now_s();
		(void)cli_wait(cli_spawn(args, NULL), args);
		v[i] = (now_s() - t0) * 1e3;
	}
	return median(v, (size_t)(reps < 32 ? reps : 32));
}

// ---------------------------------------------------------------- creators, launchers

struct creator {
	const char *dir;
	long first, last;
	pthread_t th;
};

static cpl_client *
open_client(const char *dir)
{
	cpl_client *c;
	cpl_client_opts o;
	int rv;
	memset(&o, 0, sizeof(o));
	o.db_dir = dir;
	o.timeout_ms = 600000;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die("client open", rv);
	return c;
}

static void *
creator_main(void *arg)
{
	struct creator *C = arg;
	cpl_client *c = open_client(C->dir);
	bench_create_tasks(c, "bench", true, C->first, C->last, BATCH);
	cpl_client_close(c);
	return NULL;
}

struct launcher {
	const char *dir;
	pthread_t th;
	int idx;
	uint64_t done, failed;
	double lat_max;
};

static void
report(cpl_client *c, uint64_t lease, Copal__ClaimReply *cr, int to,
    uint64_t *failed)
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
		if (to == COPAL__TASK_STATE__STATE_RUN_DONE &&
		    s[i].task_id % ERR_EVERY == 0) {
			s[i].to_state = COPAL__TASK_STATE__STATE_RUN_ERROR;
			s[i].return_code = 1;
			s[i].message = "simulated failure";
			(*failed)++;
		}
		sp[i] = &s[i];
	}
	Copal__Reply *r;
	must(c, cpl_call_report(c, lease, sp, n, &r));
	for (size_t i = 0; i < r->report->n_status; i++)
		if (r->report->status[i] != 0 &&
		    !(to == COPAL__TASK_STATE__STATE_JOB_FINISHED &&
		        s[i].task_id % ERR_EVERY == 0)) {
			fprintf(stderr, "size_bench: report refused: %s\n",
			    cpl_strerror((int)r->report->status[i]));
			exit(1);
		}
	cpl_reply_free(r);
	free(s);
	free(sp);
}

static void *
launcher_main(void *arg)
{
	struct launcher *L = arg;
	cpl_client *c = open_client(L->dir);
	char owner[32];
	snprintf(owner, sizeof(owner), "size-launcher-%d", L->idx);
	Copal__Reply *r;
	must(c, cpl_call_heartbeat(c, 0, owner, 600000, false, &r));
	uint64_t lease = r->heartbeat->lease_id;
	cpl_reply_free(r);
	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT;
	nc.free_units = 5040;
	Copal__NodeCapacity *ncp[CLAIM];
	for (int i = 0; i < CLAIM; i++)
		ncp[i] = &nc;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = CLAIM;
	cl.n_nodes = CLAIM;
	cl.nodes = ncp;
	double beat = now_s();
	for (;;) {
		// a heartbeat now and then, as a launcher does: a drain of
		// millions of tasks on a busy machine outlasts any TTL
		if (now_s() - beat > 30) {
			must(c, cpl_call_heartbeat(c, lease, owner, 600000, false,
			    &r));
			cpl_reply_free(r);
			beat = now_s();
		}
		double t0 = now_s();
		must(c, cpl_call_claim(c, &cl, &r));
		double dt = now_s() - t0;
		if (dt > L->lat_max)
			L->lat_max = dt;
		if (r->claim->n_tasks == 0) {
			cpl_reply_free(r);
			break;
		}
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_RUNNING,
		    &L->failed);
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_RUN_DONE,
		    &L->failed);
		report(c, lease, r->claim,
		    COPAL__TASK_STATE__STATE_JOB_FINISHED, &L->failed);
		L->done += r->claim->n_tasks;
		cpl_reply_free(r);
	}
	cpl_client_close(c);
	return NULL;
}

// ---------------------------------------------------------------- figures

typedef struct row {
	long n;
	double raw_put, rtt;                 // references, per second
	double create, drain, export_eps;    // per second
	double count_rpc, count_cli;         // ms
	double ready_rpc, ready_cli;         // first page of READY, ms
	double fin_rpc, fin_cli;             // first page of JOB_FINISHED, ms
	double hist_rpc, hist_cli;           // one task's history, ms
	double claim_max;                    // ms
	double check_s;
	// CPU per task (us): the broker's during create and drain, and the
	// load generator's (this process, client library); export: the
	// broker's and copal's per event; check: CPU seconds
	double create_bcpu, create_ccpu, drain_bcpu, drain_ccpu;
	double export_bcpu, export_ccpu, check_cpu;
	uint64_t events;
	double file_bpt, used_bpt;           // bytes per task
	long anon_create, hwm_create, anon_drain, hwm_drain; // kB
	long file_create, shmem_create, file_drain, shmem_drain; // kB
	long anon_idle; // kB, the broker idle for 2.5 s after the drain
	double load_start, load_end;
} row;

static uint64_t
total(const Copal__CountReply *cr)
{
	uint64_t n = 0;
	for (size_t i = 0; i < cr->n_by_state; i++)
		n += cr->by_state[i];
	return n;
}

// Median ms of reps CountRequests (all tasks).
static double
count_ms(cpl_client *c, int reps)
{
	double v[128];
	for (int i = 0; i < reps && i < 128; i++) {
		Copal__Reply *r;
		double t0 = now_s();
		must(c, cpl_call_count(c, NULL, &r));
		v[i] = (now_s() - t0) * 1e3;
		cpl_reply_free(r);
	}
	return median(v, (size_t)(reps < 128 ? reps : 128));
}

// Median ms of reps first pages (50, with specs) of state st; *got: the
// tasks on the page.
static double
page_ms(cpl_client *c, Copal__TaskState st, int reps, size_t *got)
{
	double v[128];
	Copal__Filter fl = COPAL__FILTER__INIT;
	fl.n_states = 1;
	fl.states = &st;
	for (int i = 0; i < reps && i < 128; i++) {
		Copal__Reply *r;
		double t0 = now_s();
		must(c, cpl_call_query(c, &fl, 0, 50, true, &r));
		v[i] = (now_s() - t0) * 1e3;
		*got = r->query->n_tasks;
		cpl_reply_free(r);
	}
	return median(v, (size_t)(reps < 128 ? reps : 128));
}

// Sets task_uuids in the copal.conf `copal init` wrote (which names the
// default).
static void
set_uuids(const char *db)
{
	char conf[PATH_MAX + 32], tmp[PATH_MAX + 40], line[4096];
	cpl_dbpath(db, CPL_DB_CONF, conf, sizeof(conf));
	snprintf(tmp, sizeof(tmp), "%s.new", conf);
	FILE *in = fopen(conf, "r"), *out = fopen(tmp, "w");
	bool set = false;
	if (in == NULL || out == NULL)
		die(conf, CPL_EIO);
	while (fgets(line, sizeof(line), in)) {
		if (strncmp(line, "task_uuids", 10) == 0) {
			snprintf(line, sizeof(line), "task_uuids = %s\n", uuids);
			set = true;
		}
		fputs(line, out);
	}
	if (!set)
		fprintf(out, "task_uuids = %s\n", uuids);
	fclose(in);
	if (fclose(out) != 0 || rename(tmp, conf) != 0)
		die(conf, CPL_EIO);
}

static void
one_size(const char *parent, long n, row *R)
{
	char dir[PATH_MAX], db[PATH_MAX + 8], sub[PATH_MAX + 16];
	char url[PATH_MAX + 32], broker[PATH_MAX + 32];
	memset(R, 0, sizeof(*R));
	R->n = n;
	R->load_start = load1();
	snprintf(dir, sizeof(dir), "%s/copal-size-XXXXXX", parent);
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", CPL_EIO);

	// the references, in the same file system
	progress("N=%ld: raw LMDB puts (reference)", n);
	snprintf(sub, sizeof(sub), "%s/raw", dir);
	R->raw_put = raw_puts(sub, (size_t)n);
	snprintf(url, sizeof(url), "ipc://%s/ref", dir);
	R->rtt = raw_rtt(url, 20000);

	// a database as `copal init` makes it, its broker started by hand
	// (its pid: heap figures)
	snprintf(db, sizeof(db), "%s/db", dir);
	setenv("HOME", dir, 1);
	setenv("COPAL_DB", db, 1);
	char *init[] = { "init", db, NULL };
	(void)cli_wait(cli_spawn(init, NULL), init);
	if (strcmp(uuids, "random") != 0)
		set_uuids(db);
	snprintf(broker, sizeof(broker), "%s/../broker/copal-broker", self_dir);
	char *bargv[] = { broker, "--db", db, NULL };
	pid_t pid;
	if (posix_spawn(&pid, broker, NULL, NULL, bargv, environ) != 0)
		die("spawn broker", CPL_EIO);
	broker_pid = pid;
	cpl_client *c = open_client(db);
	wait_for_broker(c);
	Copal__App app = COPAL__APP__INIT;
	app.name = "sim";
	app.executable = "/bin/true";
	Copal__Reply *r;
	must(c, cpl_call_app_register(c, &app, false, &r));
	cpl_reply_free(r);

	progress("N=%ld: create", n);
	struct creator cr[2];
	double b0 = bench_proc_cpu_s(pid), c0 = self_cpu();
	double t0 = now_s();
	for (int i = 0; i < 2; i++) {
		cr[i].dir = db;
		cr[i].first = n * i / 2;
		cr[i].last = n * (i + 1) / 2;
		pthread_create(&cr[i].th, NULL, creator_main, &cr[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(cr[i].th, NULL);
	R->create = n / (now_s() - t0);
	R->create_bcpu = (bench_proc_cpu_s(pid) - b0) * 1e6 / n;
	R->create_ccpu = (self_cpu() - c0) * 1e6 / n;
	R->anon_create = bench_status_kb(pid, "RssAnon:");
	R->hwm_create = bench_status_kb(pid, "VmHWM:");
	R->file_create = bench_status_kb(pid, "RssFile:");
	R->shmem_create = bench_status_kb(pid, "RssShmem:");

	must(c, cpl_call_count(c, NULL, &r));
	uint64_t ready = bench_in_state(r->count,
	    COPAL__TASK_STATE__STATE_READY);
	expect(ready == (uint64_t)n && total(r->count) == (uint64_t)n,
	    "N=%ld after create: %" PRIu64 " READY of %" PRIu64, n, ready,
	    total(r->count));
	cpl_reply_free(r);

	progress("N=%ld: counts and first pages", n);
	R->count_rpc = count_ms(c, 101);
	char *bystates[] = { "ls", "--by-states", NULL };
	R->count_cli = cli_ms(7, bystates);
	size_t got = 0;
	R->ready_rpc = page_ms(c, COPAL__TASK_STATE__STATE_READY, 51, &got);
	expect(got == (size_t)(n < 50 ? n : 50), "N=%ld: first page of READY "
	    "has %zu tasks", n, got);
	char *lsready[] = { "ls", "--state", "READY", "--limit", "50", NULL };
	R->ready_cli = cli_ms(7, lsready);

	progress("N=%ld: drain", n);
	struct launcher *L = calloc((size_t)nlaunch, sizeof(*L));
	b0 = bench_proc_cpu_s(pid);
	c0 = self_cpu();
	t0 = now_s();
	for (int i = 0; i < nlaunch; i++) {
		L[i].dir = db;
		L[i].idx = i;
		pthread_create(&L[i].th, NULL, launcher_main, &L[i]);
	}
	uint64_t done = 0, failed = 0;
	for (int i = 0; i < nlaunch; i++) {
		pthread_join(L[i].th, NULL);
		done += L[i].done;
		failed += L[i].failed;
		if (L[i].lat_max * 1e3 > R->claim_max)
			R->claim_max = L[i].lat_max * 1e3;
	}
	R->drain = done / (now_s() - t0);
	R->drain_bcpu = (bench_proc_cpu_s(pid) - b0) * 1e6 / n;
	R->drain_ccpu = (self_cpu() - c0) * 1e6 / n;
	free(L);
	R->anon_drain = bench_status_kb(pid, "RssAnon:");
	R->hwm_drain = bench_status_kb(pid, "VmHWM:");
	R->file_drain = bench_status_kb(pid, "RssFile:");
	R->shmem_drain = bench_status_kb(pid, "RssShmem:");
	must(c, cpl_call_count(c, NULL, &r));
	uint64_t fin = bench_in_state(r->count,
	    COPAL__TASK_STATE__STATE_JOB_FINISHED);
	uint64_t nfail = bench_in_state(r->count,
	    COPAL__TASK_STATE__STATE_FAILED);
	expect(done == (uint64_t)n && fin + nfail == (uint64_t)n &&
	    nfail == failed && total(r->count) == (uint64_t)n,
	    "N=%ld after the drain: claimed %" PRIu64 ", %" PRIu64
	    " JOB_FINISHED, %" PRIu64 " FAILED (%" PRIu64 " reported)", n,
	    done, fin, nfail, failed);
	cpl_reply_free(r);
	// the heap the broker keeps: idle for two sweeps after the drain
	usleep(2500000);
	R->anon_idle = bench_status_kb(pid, "RssAnon:");

	progress("N=%ld: first page of JOB_FINISHED, history", n);
	R->fin_rpc = page_ms(c, COPAL__TASK_STATE__STATE_JOB_FINISHED, 51,
	    &got);
	expect(got == (size_t)(fin < 50 ? fin : 50), "N=%ld: first page of "
	    "JOB_FINISHED has %zu tasks", n, got);
	char *lsfin[] = { "ls", "--state", "JOB_FINISHED", "--limit", "50",
		NULL };
	R->fin_cli = cli_ms(7, lsfin);

	// the task in the middle (ids are given in order from 1), by its
	// full uuid: a prefix of time-ordered uuids names many tasks
	Copal__TaskState fst = COPAL__TASK_STATE__STATE_JOB_FINISHED;
	Copal__Filter fl = COPAL__FILTER__INIT;
	fl.n_states = 1;
	fl.states = &fst;
	must(c, cpl_call_query(c, &fl, (uint64_t)n / 2, 1, false, &r));
	expect(r->query->n_tasks == 1, "N=%ld: no finished task after id "
	    "%ld", n, n / 2);
	uint64_t hid = r->query->n_tasks ? r->query->tasks[0]->id : 1;
	char uuid[64];
	snprintf(uuid, sizeof(uuid), "%s",
	    r->query->n_tasks ? r->query->tasks[0]->uuid : "0");
	cpl_reply_free(r);
	// the uuids are of the kind asked for (version digit)
	expect(strlen(uuid) == 36 && uuid[14] == (strcmp(uuids, "time") == 0 ?
	    '7' : '4'), "N=%ld: task uuid %s is not of kind %s", n, uuid, uuids);
	double hv[51];
	size_t nev = 0;
	for (int i = 0; i < 51; i++) {
		t0 = now_s();
		must(c, cpl_call_history(c, hid, &r));
		hv[i] = (now_s() - t0) * 1e3;
		nev = r->history->n_events;
		cpl_reply_free(r);
	}
	R->hist_rpc = median(hv, 51);
	expect(nev >= 4, "N=%ld: the history of task %" PRIu64 " has %zu "
	    "events", n, hid, nev);
	char *hist[] = { "history", uuid, NULL };
	R->hist_cli = cli_ms(7, hist);

	progress("N=%ld: export", n);
	char *exp[] = { "export", "--format", "jsonl", NULL };
	int fd;
	b0 = bench_proc_cpu_s(pid);
	t0 = now_s();
	pid_t epid = cli_spawn(exp, &fd);
	static char buf[1 << 16];
	uint64_t lines = 0;
	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			lines += buf[i] == '\n';
	}
	close(fd);
	double ecpu = cli_wait(epid, exp);
	double export_s = now_s() - t0;
	R->export_bcpu = (bench_proc_cpu_s(pid) - b0) * 1e6 / (lines ? lines : 1);
	R->export_ccpu = ecpu * 1e6 / (lines ? lines : 1);
	cpl_client_close(c);

	kill(pid, SIGTERM);
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		die("wait broker", CPL_EIO);
	broker_pid = 0;
	expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "N=%ld: the broker "
	    "ended with status %#x", n, st);

	progress("N=%ld: cpl_store_check", n);
	cpl_store *s;
	int rv;
	if ((rv = cpl_store_open(db, NULL, &s)) != 0)
		die("cpl_store_open", rv);
	cpl_store_stats ss;
	if ((rv = cpl_store_stats_get(s, &ss)) != 0)
		die("cpl_store_stats_get", rv);
	char rep[512] = "";
	c0 = self_cpu();
	t0 = now_s();
	rv = cpl_store_check(s, rep, sizeof(rep));
	R->check_s = now_s() - t0;
	R->check_cpu = self_cpu() - c0;
	expect(rv == 0, "N=%ld: cpl_store_check: %s %s", n, cpl_strerror(rv),
	    rep);
	cpl_store_close(s);
	R->events = ss.nevents;
	R->export_eps = lines / export_s;
	expect(lines == ss.nevents && ss.ntasks == (uint64_t)n,
	    "N=%ld: export gave %" PRIu64 " events, the store has %" PRIu64
	    " (and %" PRIu64 " tasks)", n, lines, ss.nevents, ss.ntasks);
	R->file_bpt = (double)ss.file_bytes / n;
	R->used_bpt = (double)ss.used_bytes / n;
	R->load_end = load1();
	progress("N=%ld done (load %.1f)", n, R->load_end);
	rm_tree(dir);
}

// ---------------------------------------------------------------- output

static void
fmt_n(long n, char *out, size_t len)
{
	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(out, len, "%ldM", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(out, len, "%ldk", n / 1000);
	else
		snprintf(out, len, "%ld", n);
}

#define COL 12

// One line of the table: a figure at every size, "%" fmt each.
static void
line(const row *R, size_t nr, const char *label, const char *fmt,
    double (*get)(const row *))
{
	printf("%-46s", label);
	for (size_t i = 0; i < nr; i++) {
		char b[64];
		snprintf(b, sizeof(b), fmt, get(&R[i]));
		printf(" %*s", COL, b);
	}
	printf("\n");
}

#define G(name, expr) \
	static double name(const row *r) { return (expr); }
G(g_raw_put, r->raw_put)
G(g_rtt, r->rtt)
G(g_rtt_us, 1e6 / r->rtt)
G(g_create, r->create)
G(g_create_ref, r->create / r->raw_put)
G(g_drain, r->drain)
G(g_drain_ref, r->drain / r->raw_put)
G(g_drain_rtt, r->drain / r->rtt)
G(g_claim_max, r->claim_max)
G(g_count_rpc, r->count_rpc)
G(g_count_rtt, r->count_rpc * 1e-3 * r->rtt)
G(g_count_cli, r->count_cli)
G(g_ready_rpc, r->ready_rpc)
G(g_ready_cli, r->ready_cli)
G(g_fin_rpc, r->fin_rpc)
G(g_fin_cli, r->fin_cli)
G(g_hist_rpc, r->hist_rpc)
G(g_hist_cli, r->hist_cli)
G(g_export, r->export_eps)
G(g_export_ref, r->export_eps / r->raw_put)
G(g_events, (double)r->events / (double)r->n)
G(g_check, r->check_s)
G(g_check_pt, r->check_s * 1e9 / (double)r->n)
G(g_file_bpt, r->file_bpt)
G(g_used_bpt, r->used_bpt)
G(g_anon_c, r->anon_create / 1024.0)
G(g_hwm_c, r->hwm_create / 1024.0)
G(g_anon_d, r->anon_drain / 1024.0)
G(g_anon_i, r->anon_idle / 1024.0)
G(g_hwm_d, r->hwm_drain / 1024.0)
G(g_file_c, r->file_create / 1024.0)
G(g_shmem_c, r->shmem_create / 1024.0)
G(g_file_d, r->file_drain / 1024.0)
G(g_shmem_d, r->shmem_drain / 1024.0)
G(g_load, r->load_end)
G(g_create_bcpu, r->create_bcpu)
G(g_create_ccpu, r->create_ccpu)
G(g_drain_bcpu, r->drain_bcpu)
G(g_drain_ccpu, r->drain_ccpu)
G(g_export_bcpu, r->export_bcpu)
G(g_export_ccpu, r->export_ccpu)
G(g_check_cpu, r->check_cpu)

// The target on figure get between the first size and the last: a rate
// at least lo of the first (lo > 0), or a figure at most hi times the
// first or under abs_bound (hi > 0).
static void
target(const row *R, size_t nr, const char *label, double (*get)(const row *),
    double lo, double hi, double abs_bound)
{
	double a = get(&R[0]), b = get(&R[nr - 1]);
	double ratio = a > 0 ? b / a : 0;
	bool pass;
	char want[64];
	if (lo > 0) {
		pass = ratio >= lo;
		snprintf(want, sizeof(want), ">= %.2fx", lo);
	} else {
		pass = ratio <= hi || (abs_bound > 0 && b < abs_bound);
		if (abs_bound > 0)
			snprintf(want, sizeof(want), "<= %.2gx or < %g", hi,
			    abs_bound);
		else
			snprintf(want, sizeof(want), "<= %.3gx", hi);
	}
	printf("%-46s %12.3g %12.3g %8.2fx %20s  %s\n", label, a, b, ratio,
	    want, pass ? "PASS" : "MISS");
}

static void
print_all(const row *R, size_t nr)
{
	char b[24];
	printf("\n== size_bench: %d launchers claiming up to %d, creates of %d, "
	       "task_uuids = %s ==\n", nlaunch, CLAIM, BATCH, uuids);
	printf("%-46s", "tasks");
	for (size_t i = 0; i < nr; i++) {
		fmt_n(R[i].n, b, sizeof(b));
		printf(" %*s", COL, b);
	}
	printf("\n");
	line(R, nr, "raw LMDB puts /s (reference)", "%.0f", g_raw_put);
	line(R, nr, "raw NNG IPC round trips /s (reference)", "%.0f", g_rtt);
	line(R, nr, "  one raw round trip, us", "%.1f", g_rtt_us);
	line(R, nr, "create, tasks/s", "%.0f", g_create);
	line(R, nr, "  / raw puts", "%.3f", g_create_ref);
	line(R, nr, "  broker CPU per task, us", "%.2f", g_create_bcpu);
	line(R, nr, "  client CPU per task, us", "%.2f", g_create_ccpu);
	line(R, nr, "drain (claim + 3 reports), tasks/s", "%.0f", g_drain);
	line(R, nr, "  / raw puts", "%.3f", g_drain_ref);
	line(R, nr, "  tasks per raw round trip", "%.2f", g_drain_rtt);
	line(R, nr, "  broker CPU per task, us", "%.2f", g_drain_bcpu);
	line(R, nr, "  launchers' CPU per task, us", "%.2f", g_drain_ccpu);
	line(R, nr, "  slowest claim, ms", "%.1f", g_claim_max);
	line(R, nr, "count by states (request), ms", "%.3f", g_count_rpc);
	line(R, nr, "  in raw round trips", "%.1f", g_count_rtt);
	line(R, nr, "copal ls --by-states, ms", "%.1f", g_count_cli);
	line(R, nr, "first page READY (request), ms", "%.3f", g_ready_rpc);
	line(R, nr, "copal ls --state READY --limit 50, ms", "%.1f",
	    g_ready_cli);
	line(R, nr, "first page JOB_FINISHED (request), ms", "%.3f",
	    g_fin_rpc);
	line(R, nr, "copal ls --state JOB_FINISHED --limit 50, ms", "%.1f",
	    g_fin_cli);
	line(R, nr, "history of one task (request), ms", "%.3f", g_hist_rpc);
	line(R, nr, "copal history UUID, ms", "%.1f", g_hist_cli);
	line(R, nr, "export --format jsonl, events/s", "%.0f", g_export);
	line(R, nr, "  / raw puts", "%.3f", g_export_ref);
	line(R, nr, "  broker CPU per event, us", "%.2f", g_export_bcpu);
	line(R, nr, "  copal CPU per event, us", "%.2f", g_export_ccpu);
	line(R, nr, "  events per task", "%.2f", g_events);
	line(R, nr, "cpl_store_check, s", "%.2f", g_check);
	line(R, nr, "  ns per task", "%.0f", g_check_pt);
	line(R, nr, "  CPU s", "%.2f", g_check_cpu);
	line(R, nr, "data.mdb bytes per task", "%.0f", g_file_bpt);
	line(R, nr, "used pages bytes per task", "%.0f", g_used_bpt);
	line(R, nr, "broker RssAnon after create, MB", "%.1f", g_anon_c);
	line(R, nr, "broker VmHWM after create, MB", "%.1f", g_hwm_c);
	line(R, nr, "broker RssAnon after drain, MB", "%.1f", g_anon_d);
	line(R, nr, "broker VmHWM after drain, MB", "%.1f", g_hwm_d);
	line(R, nr, "broker RssAnon idle 2.5 s after drain, MB", "%.1f",
	    g_anon_i);
	line(R, nr, "broker RssFile after create, MB", "%.1f",
	    g_file_c);
	line(R, nr, "  RssShmem", "%.1f", g_shmem_c);
	line(R, nr, "broker RssFile after drain, MB", "%.1f", g_file_d);
	line(R, nr, "  RssShmem", "%.1f", g_shmem_d);
	line(R, nr, "load average (1 min) at the end", "%.2f", g_load);
	if (nr < 2)
		return;
	char a[24];
	fmt_n(R[0].n, a, sizeof(a));
	fmt_n(R[nr - 1].n, b, sizeof(b));
	printf("\n== targets: %s against %s ==\n", b, a);
	printf("%-46s %12s %12s %9s %20s\n", "figure", a, b, "ratio", "target");
	target(R, nr, "create rate", g_create, 0.8, 0, 0);
	target(R, nr, "drain rate", g_drain, 0.8, 0, 0);
	target(R, nr, "export rate", g_export, 0.8, 0, 0);
	// the same on CPU time, which the machine's load disturbs less: a
	// rate at 0.8x is 1.25x the CPU per task
	target(R, nr, "  create: broker CPU per task (us)", g_create_bcpu, 0,
	    1.25, 0);
	target(R, nr, "  drain: broker CPU per task (us)", g_drain_bcpu, 0,
	    1.25, 0);
	target(R, nr, "  export: broker CPU per event (us)", g_export_bcpu, 0,
	    1.25, 0);
	target(R, nr, "  export: copal CPU per event (us)", g_export_ccpu, 0,
	    1.25, 0);
	target(R, nr, "broker RssAnon after drain (MB)", g_anon_d, 0, 1.2, 0);
	target(R, nr, "broker RssAnon idle after drain (MB)", g_anon_i, 0, 1.2,
	    0);
	target(R, nr, "count by states, request (ms)", g_count_rpc, 0, 1.5, 1);
	target(R, nr, "copal ls --by-states (ms)", g_count_cli, 0, 1.5, 20);
	target(R, nr, "first page READY, request (ms)", g_ready_rpc, 0, 1.5,
	    1);
	target(R, nr, "copal ls --state READY (ms)", g_ready_cli, 0, 1.5, 20);
	target(R, nr, "first page JOB_FINISHED, request (ms)", g_fin_rpc, 0,
	    1.5, 1);
	target(R, nr, "copal ls --state JOB_FINISHED (ms)", g_fin_cli, 0, 1.5,
	    20);
	printf("(informative) %-32s %12.3g %12.3g %8.2fx\n", "history request "
	    "(ms)", R[0].hist_rpc, R[nr - 1].hist_rpc,
	    R[nr - 1].hist_rpc / R[0].hist_rpc);
	printf("(informative) %-32s %12.3g %12.3g %8.2fx\n", "check ns per "
	    "task", g_check_pt(&R[0]), g_check_pt(&R[nr - 1]),
	    g_check_pt(&R[nr - 1]) / g_check_pt(&R[0]));
}

static void
write_csv(const char *path, const row *R, size_t nr)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		die(path, CPL_EIO);
	fprintf(f, "tasks,raw_puts_per_s,raw_rtt_per_s,create_per_s,"
	    "drain_per_s,claim_max_ms,count_ms,ls_by_states_ms,"
	    "page_ready_ms,ls_ready_ms,page_finished_ms,ls_finished_ms,"
	    "history_ms,copal_history_ms,export_events_per_s,events,"
	    "check_s,file_bytes_per_task,used_bytes_per_task,"
	    "rss_anon_create_kb,vm_hwm_create_kb,rss_anon_drain_kb,"
	    "vm_hwm_drain_kb,load_start,load_end,create_broker_cpu_us,"
	    "create_client_cpu_us,drain_broker_cpu_us,drain_client_cpu_us,"
	    "export_broker_cpu_us,export_copal_cpu_us,check_cpu_s,"
	    "rss_file_create_kb,rss_shmem_create_kb,rss_file_drain_kb,"
	    "rss_shmem_drain_kb,rss_anon_idle_kb\n");
	for (size_t i = 0; i < nr; i++) {
		const row *r = &R[i];
		fprintf(f, "%ld,%.0f,%.0f,%.0f,%.0f,%.1f,%.4f,%.2f,%.4f,%.2f,"
		    "%.4f,%.2f,%.4f,%.2f,%.0f,%" PRIu64 ",%.3f,%.1f,%.1f,%ld,"
		    "%ld,%ld,%ld,%.2f,%.2f,%.3f,%.3f,%.3f,%.3f,%.4f,%.4f,%.3f,%ld,%ld,%ld,%ld,%ld\n",
		    r->n, r->raw_put, r->rtt,
		    r->create, r->drain, r->claim_max, r->count_rpc,
		    r->count_cli, r->ready_rpc, r->ready_cli, r->fin_rpc,
		    r->fin_cli, r->hist_rpc, r->hist_cli, r->export_eps,
		    r->events, r->check_s, r->file_bpt, r->used_bpt,
		    r->anon_create, r->hwm_create, r->anon_drain, r->hwm_drain,
		    r->load_start, r->load_end, r->create_bcpu, r->create_ccpu,
		    r->drain_bcpu, r->drain_ccpu, r->export_bcpu, r->export_ccpu,
		    r->check_cpu, r->file_create, r->shmem_create,
		    r->file_drain, r->shmem_drain, r->anon_idle);
	}
	if (fclose(f) != 0)
		die(path, CPL_EIO);
}

// "1M,3M,10M" or "2000,100k": the sizes, in order.
static size_t
parse_sizes(const char *s, long *out)
{
	size_t n = 0;
	char *end;
	while (*s) {
		long v = strtol(s, &end, 10);
		if (end == s || v < 1)
			return 0;
		if (*end == 'k' || *end == 'K')
			v *= 1000, end++;
		else if (*end == 'M' || *end == 'm')
			v *= 1000000, end++;
		if (n == MAXSIZES || (*end && *end != ','))
			return 0;
		out[n++] = v;
		s = *end ? end + 1 : end;
	}
	return n;
}

int
main(int argc, char **argv)
{
	bench_name = "size_bench";
	const char *csv = "size_bench.csv", *parent = getenv("TMPDIR");
	long sizes[MAXSIZES];
	size_t nsizes = parse_sizes("1M,3M,10M", sizes);
	int opt;
	if (parent == NULL || *parent == '\0')
		parent = "/tmp";
	while ((opt = getopt(argc, argv, "s:o:l:d:u:")) != -1) {
		switch (opt) {
		case 's':
			if ((nsizes = parse_sizes(optarg, sizes)) == 0) {
				fprintf(stderr, "size_bench: -s: sizes such as "
				    "100k,300k,1M (at most %d)\n", MAXSIZES);
				return 2;
			}
			break;
		case 'o':
			csv = optarg;
			break;
		case 'l':
			nlaunch = atoi(optarg);
			break;
		case 'd':
			parent = optarg;
			break;
		case 'u':
			uuids = optarg;
			if (strcmp(uuids, "random") != 0 &&
			    strcmp(uuids, "time") != 0) {
				fprintf(stderr, "size_bench: -u random or time\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: size_bench [-s SIZES] [-o CSV] "
			    "[-l LAUNCHERS] [-d DIR] [-u random|time]\n");
			return 2;
		}
	}
	if (nlaunch < 1 || nlaunch > 256) {
		fprintf(stderr, "size_bench: -l 1..256\n");
		return 2;
	}
	ssize_t k = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	if (k <= 0)
		die("readlink /proc/self/exe", CPL_EIO);
	self_dir[k] = '\0';
	*strrchr(self_dir, '/') = '\0';
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_broker);
	row *R = calloc(nsizes, sizeof(*R));
	for (size_t i = 0; i < nsizes; i++) {
		one_size(parent, sizes[i], &R[i]);
		// the figures so far survive a later size that fails
		write_csv(csv, R, i + 1);
	}
	print_all(R, nsizes);
	printf("\nCSV: %s\n", csv);
	free(R);
	if (failed_check) {
		fprintf(stderr, "size_bench: a correctness check failed "
		    "(above): the figures do not count\n");
		return 1;
	}
	return 0;
}
