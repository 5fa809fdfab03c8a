// Benchmark of the task store against raw LMDB on the same disk.
//
//   store_bench [-q] [-n TASKS] [-b BATCH] [-d DIR]
//
//   -n TASKS  tasks to create and run through their lifecycle (1000000)
//   -b BATCH  tasks per write transaction (10000)
//   -d DIR    parent directory for the databases (default: a mkdtemp under
//             /tmp); the benchmark's own subdirectories are removed at the end
//   -q        quick mode: 100000 tasks, for smoke use
//   -C        create only: the raw reference and the create phase, then
//             cpl_store_check; for measuring a change to create
//   -7        time-ordered version 7 task uuids (task_uuids = time)
//
// Every commit is durable (no_sync = false). Figures:
//   raw        raw LMDB sequential puts: big-endian u64 keys, ~200-byte
//              values, BATCH puts per durable commit (the reference)
//   create     cpl_task_create, BATCH tasks per cpl_store_write
//   lifecycle  claim, RUNNING, RUN_DONE, JOB_FINISHED for BATCH tasks at a
//              time under one lease, (a) one transaction per phase, (b) all
//              four phases in one transaction
//   count      cpl_count_states at N tasks and in a small store
//   page       first 50 tasks of one state via cpl_query (with specs)
//   bytes      used and file bytes per task, history included
// The end checks every task is JOB_FINISHED (or FAILED for the ~100 failed
// on purpose) with its history events, and runs cpl_store_check().
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "copal/store.h"

#define APP_NAME "bench-app"
#define NWORKFLOWS 16
#define PAGE 50
#define BENCH_BJOB 1 // the batch job the lifecycle's lease runs in
#define NFAILED 100
#define SMALL_N 10000

// Targets.
#define TARGET_CREATE 300000.0
#define TARGET_LIFECYCLE 100000.0
#define TARGET_PAGE_MS 1.0
// cpl_count_states at N tasks may take at most this many times what it
// takes in a SMALL_N-task store (see count_bound_why).
#define COUNT_BOUND 1.5

static const char count_bound_why[] =
    "the state counts live in the store's meta record, which every read\n"
    "transaction reads when it begins: neither the begin nor the call walks\n"
    "anything that grows with the number of tasks. 1.5x leaves room for a\n"
    "noisy machine (each figure is the fastest of 5 rounds); a count that\n"
    "walked the state index would take about N / 10,000 times longer.";

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "store_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void
check(int rc, const char *what)
{
	if (rc != 0)
		die("%s: %s (%s)", what, cpl_strerror(rc), cpl_errname(rc));
}

static void
progress(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "store_bench: remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

static void
rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0)
		die("mkdir %s: %s", path, strerror(errno));
}

// ------------------------------------------------------------ raw LMDB

static void
lmdb_check(int rc, const char *what)
{
	if (rc != 0)
		die("%s: %s", what, mdb_strerror(rc));
}

// Sequential puts of n big-endian u64 keys with 200-byte values, batch
// per durable commit. Returns puts per second.
static double
bench_raw(const char *dir, size_t n, size_t batch)
{
	MDB_env *env;
	lmdb_check(mdb_env_create(&env), "mdb_env_create");
	lmdb_check(mdb_env_set_mapsize(env, (size_t)n * 512 + (256u << 20)),
	    "mdb_env_set_mapsize");
	lmdb_check(mdb_env_open(env, dir, 0, 0600), "mdb_env_open");
	MDB_dbi dbi;
	MDB_txn *txn;
	lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
	lmdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
	lmdb_check(mdb_txn_commit(txn), "mdb_txn_commit");

	unsigned char val[200];
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (unsigned char)('a' + i % 26);
	double t0 = now_s();
	for (size_t done = 0; done < n;) {
		size_t k = n - done < batch ? n - done : batch;
		lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
		for (size_t i = 0; i < k; i++) {
			uint64_t id = done + i + 1;
			unsigned char key[8];
			for (int b = 0; b < 8; b++)
				key[b] = (unsigned char)(id >> (56 - 8 * b));
			memcpy(val, key, 8); // values differ
			MDB_val mk = { sizeof key, key }, mv = { sizeof val, val };
			lmdb_check(mdb_put(txn, dbi, &mk, &mv, 0), "mdb_put");
		}
		lmdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
		done += k;
	}
	double dt = now_s() - t0;
	mdb_env_close(env);
	return (double)n / dt;
}

// ------------------------------------------------------------ store helpers

static bool uuid_v7; // -7: task_uuids = time

static cpl_store *
open_store(const char *dir)
{
	cpl_store_opts opts;
	memset(&opts, 0, sizeof opts);
	opts.no_sync = false; // durable
	opts.uuid_v7 = uuid_v7;
	cpl_store *s = NULL;
	check(cpl_store_open(dir, &opts, &s), "cpl_store_open");
	return s;
}

static int
app_fn(cpl_txn *txn, void *arg)
{
	(void)arg;
	Copal__App app = COPAL__APP__INIT;
	app.name = APP_NAME;
	app.executable = "/opt/sim/bin/simulate --config /opt/sim/etc/sim.yaml";
	app.preprocess = "/opt/sim/bin/prepare";
	app.postprocess = "/opt/sim/bin/collect";
	app.description = "store benchmark application";
	return cpl_app_put(txn, &app, false);
}

// A task's strings, formatted before the transaction that creates it:
// the benchmark's own snprintf took 14% of the create transactions'
// instructions (callgrind), a cost of making up input, not of the store.
struct task_strs {
	char name[32], wf[16], args[96], envv[24];
};

typedef struct create_ctx {
	size_t first;  // index of the first task of the batch
	size_t count;  // tasks in the batch
	uint64_t *ids; // ids[first + i] (may be NULL)
	struct task_strs *strs; // strs[i] of task first + i
} create_ctx;

static void
format_strs(struct task_strs *st, size_t t)
{
	snprintf(st->name, sizeof st->name, "task-%07zu", t);
	snprintf(st->wf, sizeof st->wf, "wf-%02zu", t % NWORKFLOWS);
	snprintf(st->args, sizeof st->args,
	    "--input /scratch/run/in/%07zu.h5 --steps 1000 --seed %zu", t,
	    t * 7919);
	snprintf(st->envv, sizeof st->envv, "%zu", t);
}

static int
create_fn(cpl_txn *txn, void *arg)
{
	create_ctx *c = arg;
	for (size_t i = 0; i < c->count; i++) {
		size_t t = c->first + i;
		struct task_strs *st = &c->strs[i];
		char *name = st->name, *wf = st->wf, *args = st->args;
		char *envv = st->envv;
		Copal__EnvVar e0 = COPAL__ENV_VAR__INIT, e1 = COPAL__ENV_VAR__INIT;
		e0.name = "OMP_NUM_THREADS";
		e0.value = "4";
		e1.name = "SIM_TASK_INDEX";
		e1.value = envv;
		Copal__EnvVar *env[2] = { &e0, &e1 };
		Copal__Resources res = COPAL__RESOURCES__INIT;
		res.num_nodes = 1;
		res.ranks_per_node = 4;
		res.threads_per_rank = 4;
		res.threads_per_core = 1;
		res.cpu_affinity = "depth";
		res.node_packing_count = 1;
		res.wall_time_minutes = 30;
		Copal__TaskSpec spec = COPAL__TASK_SPEC__INIT;
		spec.name = name;
		spec.workflow = wf;
		spec.application = APP_NAME;
		spec.args = args;
		spec.n_environ = 2;
		spec.environ = env;
		spec.resources = &res;
		spec.max_retries = 3;
		uint64_t id;
		uint8_t uuid[16];
		int rc = cpl_task_create(txn, &spec, &id, uuid);
		if (rc != 0) {
			if (rc != CPL_EMAPFULL) // the store grows and reruns
				fprintf(stderr, "cpl_task_create %s: %s\n",
				    name, cpl_strerror(rc));
			return rc;
		}
		if (c->ids != NULL)
			c->ids[t] = id;
	}
	return 0;
}

// CPU seconds (user, system) this process has used so far.
static void
cpu_s(double *user, double *sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
	*sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

// Creates n tasks in batches; returns the seconds the create
// transactions took, and their CPU seconds into *user and *sys (NULL:
// not wanted). Each batch's strings are formatted before its transaction,
// outside what is timed.
static double
create_tasks(cpl_store *s, size_t n, size_t batch, uint64_t *ids,
    double *user, double *sys)
{
	check(cpl_store_write(s, app_fn, NULL), "register app");
	struct task_strs *strs = malloc(batch * sizeof *strs);
	if (strs == NULL)
		die("out of memory");
	double in = 0, last = now_s(), cu = 0, cs = 0;
	for (size_t done = 0; done < n;) {
		create_ctx c = { done, n - done < batch ? n - done : batch, ids,
			strs };
		for (size_t i = 0; i < c.count; i++)
			format_strs(&strs[i], done + i);
		double u0, s0, u1, s1;
		cpu_s(&u0, &s0);
		double t0 = now_s();
		check(cpl_store_write(s, create_fn, &c), "create batch");
		double t = now_s();
		cpu_s(&u1, &s1);
		in += t - t0;
		cu += u1 - u0;
		cs += s1 - s0;
		done += c.count;
		if (t - last > 2.0) {
			progress("  created %zu / %zu (%.0f tasks/s)\n", done, n,
			    (double)done / in);
			last = t;
		}
	}
	free(strs);
	if (user)
		*user = cu;
	if (sys)
		*sys = cs;
	return in;
}

// ------------------------------------------------------------ lifecycle

typedef struct claimed {
	uint64_t id;
	uint32_t attempt;
} claimed;

typedef struct life {
	uint64_t lease;
	size_t want;          // tasks to claim in this round
	size_t nnodes;
	cpl_node_cap *nodes;
	claimed *got;
	size_t ngot;
	cpl_state phase_to;   // for report transactions
	int32_t return_code;
	bool all_phases;      // (b): claim and all reports in one transaction
} life;

static int
lease_fn(cpl_txn *txn, void *arg)
{
	life *l = arg;
	Copal__BatchJob bj = COPAL__BATCH_JOB__INIT, *out = NULL;
	int rv;
	// a launcher in batch job 1 (recorded first, as the broker requires
	// and cpl_store_check verifies): every task it runs is indexed under
	// the job (the cost is in the lifecycle figures)
	bj.scheduler = "local";
	bj.nodes = 1;
	bj.wall_minutes = 60;
	bj.job_mode = "serial";
	if ((rv = cpl_bjob_add(txn, &bj, &out)) != 0)
		return rv;
	rv = out->id == BENCH_BJOB ? 0 : CPL_EINTERNAL;
	copal__batch_job__free_unpacked(out, NULL);
	if (rv)
		return rv;
	return cpl_lease_grant_job(txn, "store_bench pid", 3600u * 1000u,
	    BENCH_BJOB, "1234", &l->lease);
}

static int
claim_cb(const cpl_task *t, const uint32_t *nodes, size_t n, void *arg)
{
	life *l = arg;
	(void)nodes;
	(void)n;
	l->got[l->ngot].id = t->id;
	l->got[l->ngot].attempt = t->attempt;
	l->ngot++;
	return 0;
}

static int
do_claim(cpl_txn *txn, life *l)
{
	l->ngot = 0;
	for (size_t i = 0; i < l->nnodes; i++) {
		l->nodes[i].free_units = CPL_NODE_UNITS;
		l->nodes[i].free_gpus = 0;
	}
	cpl_capacity cap = {
		.max_tasks = (uint32_t)l->want,
		.nodes = l->nodes,
		.nnodes = l->nnodes,
	};
	size_t n = 0;
	int rc = cpl_claim(txn, l->lease, &cap, claim_cb, l, &n);
	if (rc != 0)
		return rc;
	if (n != l->ngot) {
		fprintf(stderr, "cpl_claim: says %zu, callback saw %zu\n", n,
		    l->ngot);
		return CPL_EINTERNAL;
	}
	return 0;
}

static int
do_reports(cpl_txn *txn, life *l, cpl_state to, int32_t rcode)
{
	for (size_t i = 0; i < l->ngot; i++) {
		cpl_report r = {
			.task_id = l->got[i].id,
			.lease = l->lease,
			.attempt = l->got[i].attempt,
			.to = to,
			.return_code = rcode,
			.message = NULL,
		};
		int rc = cpl_task_report(txn, &r);
		if (rc != 0) {
			if (rc != CPL_EMAPFULL) // the store grows and reruns
				fprintf(stderr, "report task %" PRIu64 " -> %s: "
				    "%s\n", r.task_id, cpl_state_name(to),
				    cpl_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static int
claim_fn(cpl_txn *txn, void *arg)
{
	life *l = arg;
	int rc = do_claim(txn, l);
	if (rc != 0 || !l->all_phases)
		return rc;
	if ((rc = do_reports(txn, l, CPL_RUNNING, 0)) != 0)
		return rc;
	if ((rc = do_reports(txn, l, CPL_RUN_DONE, 0)) != 0)
		return rc;
	return do_reports(txn, l, CPL_JOB_FINISHED, 0);
}

static int
report_fn(cpl_txn *txn, void *arg)
{
	life *l = arg;
	return do_reports(txn, l, l->phase_to, l->return_code);
}

// Runs n tasks through their lifecycle; returns seconds.
static double
lifecycle(cpl_store *s, life *l, size_t n, size_t batch, bool all_phases)
{
	l->all_phases = all_phases;
	double t0 = now_s(), last = t0;
	size_t done = 0;
	while (done < n) {
		l->want = n - done < batch ? n - done : batch;
		check(cpl_store_write(s, claim_fn, l), "claim transaction");
		if (l->ngot == 0)
			die("claim found no runnable task after %zu of %zu", done,
			    n);
		if (!all_phases) {
			static const cpl_state phases[] = { CPL_RUNNING,
				CPL_RUN_DONE, CPL_JOB_FINISHED };
			for (size_t p = 0; p < 3; p++) {
				l->phase_to = phases[p];
				l->return_code = 0;
				check(cpl_store_write(s, report_fn, l),
				    cpl_state_name(phases[p]));
			}
		}
		done += l->ngot;
		double t = now_s();
		if (t - last > 2.0) {
			progress("  lifecycle %zu / %zu (%.0f tasks/s)\n", done,
			    n, (double)done / (t - t0));
			last = t;
		}
	}
	return now_s() - t0;
}

// ------------------------------------------------------------ reads

typedef struct count_ctx {
	uint64_t counts[CPL_NSTATES];
	size_t reps;
} count_ctx;

static int
count_fn(cpl_txn *txn, void *arg)
{
	count_ctx *c = arg;
	return cpl_count_states(txn, c->counts);
}

static int
count_many_fn(cpl_txn *txn, void *arg)
{
	count_ctx *c = arg;
	for (size_t i = 0; i < c->reps; i++) {
		int rc = cpl_count_states(txn, c->counts);
		if (rc != 0)
			return rc;
	}
	return 0;
}

#define COUNT_ROUNDS 5

// Microseconds of one count: (a) its own read transaction each, (b) many
// calls inside one read transaction. reps calls in COUNT_ROUNDS rounds;
// each figure is the average of its fastest round, so that another
// process taking the CPU for a moment does not count against the store.
static void
time_count(cpl_store *s, size_t reps, double *per_txn_us, double *in_txn_us,
    uint64_t counts[CPL_NSTATES])
{
	count_ctx c;
	memset(&c, 0, sizeof c);
	for (size_t i = 0; i < 100; i++) // warm up
		check(cpl_store_read(s, count_fn, &c), "count");
	size_t per = reps / COUNT_ROUNDS ? reps / COUNT_ROUNDS : 1;
	*per_txn_us = *in_txn_us = -1;
	for (int round = 0; round < COUNT_ROUNDS; round++) {
		double t0 = now_s();
		for (size_t i = 0; i < per; i++)
			check(cpl_store_read(s, count_fn, &c), "count");
		double us = (now_s() - t0) * 1e6 / (double)per;
		if (*per_txn_us < 0 || us < *per_txn_us)
			*per_txn_us = us;
		c.reps = per;
		t0 = now_s();
		check(cpl_store_read(s, count_many_fn, &c), "count");
		us = (now_s() - t0) * 1e6 / (double)per;
		if (*in_txn_us < 0 || us < *in_txn_us)
			*in_txn_us = us;
	}
	if (counts != NULL)
		memcpy(counts, c.counts, sizeof c.counts);
}

// Dies unless the store counts exactly `want` tasks in state `st` and
// none in any other.
static void
expect_all_in(cpl_store *s, cpl_state st, uint64_t want, const char *when)
{
	count_ctx c;
	memset(&c, 0, sizeof c);
	check(cpl_store_read(s, count_fn, &c), "count");
	for (int k = 0; k < CPL_NSTATES; k++)
		if (c.counts[k] != (k == (int)st ? want : 0))
			die("%s: %" PRIu64 " tasks %s, expected %" PRIu64 " %s "
			    "and no other", when, c.counts[k],
			    k ? cpl_state_name(k) : "NONE", want,
			    cpl_state_name(st));
}

typedef struct page_ctx {
	cpl_state state;
	size_t got;
	size_t named;
	uint64_t bjob;        // filter by batch job instead of state
} page_ctx;

static int
page_task_fn(const cpl_task *t, void *arg)
{
	page_ctx *p = arg;
	if (p->bjob == 0 && t->state != p->state)
		return CPL_EINTERNAL;
	if (t->spec != NULL && t->spec->name != NULL && t->spec->name[0])
		p->named++;
	p->got++;
	return 0;
}

static int
page_fn(cpl_txn *txn, void *arg)
{
	page_ctx *p = arg;
	cpl_filter f;
	memset(&f, 0, sizeof f);
	if (p->bjob)
		f.batch_job = p->bjob;
	else
		f.states = 1u << p->state;
	p->got = 0;
	p->named = 0;
	return cpl_query(txn, &f, 0, PAGE, CPL_GET_SPEC, page_task_fn, p, NULL);
}

// Average milliseconds to read the first page of a state (with specs),
// each in its own read transaction. *got: tasks in the page.
static double
time_page_of(cpl_store *s, cpl_state state, uint64_t bjob, size_t reps,
    size_t *got, double *first_ms)
{
	page_ctx p = { .state = state, .bjob = bjob };
	double t0 = now_s();
	check(cpl_store_read(s, page_fn, &p), "first page");
	*first_ms = (now_s() - t0) * 1e3;
	t0 = now_s();
	for (size_t i = 0; i < reps; i++)
		check(cpl_store_read(s, page_fn, &p), "first page");
	double ms = (now_s() - t0) * 1e3 / (double)reps;
	if (p.named != p.got)
		die("first page of %s: %zu tasks without a name",
		    cpl_state_name(state), p.got - p.named);
	*got = p.got;
	return ms;
}

static double
time_page(cpl_store *s, cpl_state state, size_t reps, size_t *got,
    double *first_ms)
{
	return time_page_of(s, state, 0, reps, got, first_ms);
}

typedef struct bjc_ctx {
	uint64_t ran, running, failed;
} bjc_ctx;

static int
bjc_fn(cpl_txn *txn, void *arg)
{
	bjc_ctx *c = arg;
	return cpl_bjob_counts(txn, BENCH_BJOB, &c->ran, &c->running,
	    &c->failed);
}

// ------------------------------------------------------------ verification

typedef struct verify_ctx {
	const uint64_t *ids; // sorted
	size_t n;
	bool contiguous;
	uint8_t *last_to;    // per task: state of its last event
	uint16_t *seen;      // per task: bit (1 << to) of its events
	uint32_t *nevents;
	uint64_t total;
	uint64_t orphans;
} verify_ctx;

static size_t
find_index(const verify_ctx *v, uint64_t id)
{
	if (v->contiguous)
		return id >= v->ids[0] && id - v->ids[0] < v->n
			   ? (size_t)(id - v->ids[0])
			   : v->n;
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n && v->ids[lo] == id ? lo : v->n;
}

static int
verify_event_fn(const cpl_event *e, void *arg)
{
	verify_ctx *v = arg;
	v->total++;
	size_t i = find_index(v, e->task_id);
	if (i == v->n) {
		v->orphans++;
		return 0;
	}
	if (e->to > 0 && e->to < CPL_NSTATES) {
		v->seen[i] |= (uint16_t)(1u << e->to);
		v->last_to[i] = (uint8_t)e->to;
	}
	v->nevents[i]++;
	return 0;
}

static int
verify_scan_fn(cpl_txn *txn, void *arg)
{
	return cpl_history_scan(txn, 0, 0, verify_event_fn, arg);
}

typedef struct state_walk {
	const uint64_t *ids;
	size_t n;
	size_t pos;
	size_t bad;
	uint8_t *state;
} state_walk;

static int
walk_task_fn(const cpl_task *t, void *arg)
{
	state_walk *w = arg;
	if (w->pos >= w->n || w->ids[w->pos] != t->id) {
		w->bad++;
		return 0;
	}
	w->state[w->pos++] = (uint8_t)t->state;
	return 0;
}

static int
walk_fn(cpl_txn *txn, void *arg)
{
	cpl_filter f;
	memset(&f, 0, sizeof f);
	return cpl_query(txn, &f, 0, 0, 0, walk_task_fn, arg, NULL);
}

// Every task JOB_FINISHED (FAILED for the failed ones) with its events.
static void
verify_all(cpl_store *s, const uint64_t *ids, size_t n, size_t nfailed,
    uint64_t *nevents_out)
{
	uint64_t counts[CPL_NSTATES];
	double a, b;
	time_count(s, 1, &a, &b, counts);
	for (int k = 0; k < CPL_NSTATES; k++) {
		uint64_t want = k == CPL_JOB_FINISHED ? n - nfailed
			      : k == CPL_FAILED	      ? nfailed
						      : 0;
		if (counts[k] != want)
			die("verify: %" PRIu64 " tasks %s, expected %" PRIu64,
			    counts[k], k ? cpl_state_name(k) : "NONE", want);
	}

	state_walk w = { .ids = ids, .n = n };
	w.state = malloc(n);
	if (w.state == NULL)
		die("out of memory");
	check(cpl_store_read(s, walk_fn, &w), "walk tasks");
	if (w.bad != 0 || w.pos != n)
		die("verify: walk of all tasks found %zu of %zu, %zu unexpected",
		    w.pos, n, w.bad);

	verify_ctx v = { .ids = ids, .n = n };
	v.contiguous = n > 0 && ids[n - 1] - ids[0] == n - 1;
	v.last_to = calloc(n, 1);
	v.seen = calloc(n, sizeof *v.seen);
	v.nevents = calloc(n, sizeof *v.nevents);
	if (v.last_to == NULL || v.seen == NULL || v.nevents == NULL)
		die("out of memory");
	check(cpl_store_read(s, verify_scan_fn, &v), "history scan");
	if (v.orphans != 0)
		die("verify: %" PRIu64 " events of unknown tasks", v.orphans);
	const uint16_t life_bits = (1u << CPL_READY) | (1u << CPL_RUNNING) |
	    (1u << CPL_RUN_DONE) | (1u << CPL_JOB_FINISHED);
	const uint16_t fail_bits = (1u << CPL_READY) | (1u << CPL_RUNNING) |
	    (1u << CPL_FAILED);
	size_t finished = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (w.state[i] == CPL_JOB_FINISHED) {
			if (v.nevents[i] < 4 || v.last_to[i] != CPL_JOB_FINISHED ||
			    (v.seen[i] & life_bits) != life_bits)
				die("verify: task %" PRIu64 " is JOB_FINISHED but "
				    "has %u events (last to %s, states seen "
				    "0x%x)", ids[i], v.nevents[i],
				    cpl_state_name(v.last_to[i]), v.seen[i]);
			finished++;
		} else if (w.state[i] == CPL_FAILED) {
			if (v.last_to[i] != CPL_FAILED ||
			    (v.seen[i] & fail_bits) != fail_bits)
				die("verify: task %" PRIu64 " is FAILED but its "
				    "%u events end in %s", ids[i], v.nevents[i],
				    cpl_state_name(v.last_to[i]));
			failed++;
		} else {
			die("verify: task %" PRIu64 " is %s", ids[i],
			    cpl_state_name(w.state[i]));
		}
	}
	if (finished != n - nfailed || failed != nfailed)
		die("verify: %zu finished, %zu failed", finished, failed);
	*nevents_out = v.total;
	free(w.state);
	free(v.last_to);
	free(v.seen);
	free(v.nevents);
}

// ------------------------------------------------------------ report

typedef struct row {
	const char *figure;
	char value[48];
	char ratio[24];
	const char *target;
	const char *result;
} row;

#define MAXROWS 32
static row g_rows[MAXROWS];
static size_t g_nrows;

static row *
add_row(const char *figure, const char *target, const char *result,
    const char *fmt, ...)
{
	if (g_nrows == MAXROWS)
		die("too many rows");
	row *r = &g_rows[g_nrows++];
	r->figure = figure;
	r->target = target;
	r->result = result;
	r->ratio[0] = '\0';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->value, sizeof r->value, fmt, ap);
	va_end(ap);
	return r;
}

static const char *
passmiss(bool ok)
{
	return ok ? "PASS" : "MISS";
}

static void
print_table(void)
{
	printf("\n| figure | value | vs raw LMDB | target | result |\n");
	printf("|---|---:|---:|---|---|\n");
	for (size_t i = 0; i < g_nrows; i++) {
		row *r = &g_rows[i];
		printf("| %s | %s | %s | %s | %s |\n", r->figure, r->value,
		    r->ratio[0] ? r->ratio : "", r->target ? r->target : "",
		    r->result ? r->result : "");
	}
}

// Fraction of all CPUs busy over one second (while this process sleeps):
// what other processes take. -1 if /proc/stat cannot be read.
static int
read_cpu(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	if (f == NULL)
		return -1;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5)
		return -1;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*busy = *total - v[3] - v[4]; // idle, iowait
	return 0;
}

static double
machine_busy(void)
{
	unsigned long long b0, t0, b1, t1;
	if (read_cpu(&b0, &t0) != 0)
		return -1;
	sleep(1);
	if (read_cpu(&b1, &t1) != 0 || t1 == t0)
		return -1;
	return (double)(b1 - b0) / (double)(t1 - t0);
}

// Bytes this process has caused to be written to storage so far
// (write_bytes of /proc/self/io), -1 if unknown.
static double
written_bytes(void)
{
	char line[128];
	double v = -1;
	FILE *f = fopen("/proc/self/io", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "write_bytes:", 12) == 0)
			v = atof(line + 12);
	fclose(f);
	return v;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: store_bench [-q] [-n TASKS] [-b BATCH] [-d DIR]\n"
	    "  -n TASKS  tasks (default 1000000)\n"
	    "  -b BATCH  tasks per write transaction (default 10000)\n"
	    "  -d DIR    parent directory for the databases (default: a "
	    "mkdtemp under /tmp)\n"
	    "  -q        quick mode: 100000 tasks\n"
	    "  -C        create only (raw reference, create, check)\n"
	    "  -7        time-ordered (version 7) task uuids "
	    "(task_uuids = time)\n");
	exit(2);
}

static size_t
parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0)
		usage();
	return (size_t)v;
}

int
main(int argc, char **argv)
{
	size_t n = 1000000, batch = 10000;
	bool n_set = false, quick = false, create_only = false;
	const char *parent = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "qC7n:b:d:h")) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			break;
		case 'C':
			create_only = true;
			break;
		case '7':
			uuid_v7 = true;
			break;
		case 'n':
			n = parse_size(optarg);
			n_set = true;
			break;
		case 'b':
			batch = parse_size(optarg);
			break;
		case 'd':
			parent = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (quick && !n_set)
		n = 100000;
	if (n <= NFAILED * 2)
		die("-n must be more than %d", NFAILED * 2);
	if (batch > UINT32_MAX)
		die("-b too large");

	char tmpl[] = "/tmp/copal-bench-XXXXXX";
	char base[4096];
	if (parent == NULL) {
		if (mkdtemp(tmpl) == NULL)
			die("mkdtemp: %s", strerror(errno));
		snprintf(base, sizeof base, "%s", tmpl);
	} else {
		snprintf(base, sizeof base, "%s/store_bench.%d", parent,
		    (int)getpid());
		make_dir(base);
	}
	char raw_dir[4200], big_dir[4200], small_dir[4200];
	snprintf(raw_dir, sizeof raw_dir, "%s/raw", base);
	snprintf(big_dir, sizeof big_dir, "%s/store", base);
	snprintf(small_dir, sizeof small_dir, "%s/small", base);
	make_dir(raw_dir);
	make_dir(big_dir);
	make_dir(small_dir);

	printf("store_bench: %zu tasks, %zu per transaction, durable commits, "
	       "in %s\n", n, batch, base);
	double busy = machine_busy();
	if (busy >= 0)
		printf("CPU use by other processes just before the start: %.0f%%"
		       "%s\n", busy * 100,
		    busy > 0.10 ? "  -- the machine is busy: figures will be "
				  "low" : "");
	fflush(stdout);

	// 1. Reference.
	progress("raw LMDB: %zu puts...\n", n);
	double raw = bench_raw(raw_dir, n, batch);
	rm_tree(raw_dir);
	progress("  %.0f puts/s\n", raw);
	row *r;
	add_row("raw LMDB sequential put (200 B values)", NULL, NULL,
	    "%.0f puts/s", raw);

	// 2. Create.
	uint64_t *ids = malloc(n * sizeof *ids);
	if (ids == NULL)
		die("out of memory");
	cpl_store *s = open_store(big_dir);
	progress("create: %zu tasks...\n", n);
	double cu, cs;
	double w0 = written_bytes();
	double dt = create_tasks(s, n, batch, ids, &cu, &cs);
	double w1 = written_bytes();
	double create_rate = (double)n / dt;
	progress("  %.0f tasks/s\n", create_rate);
	r = add_row("create (cpl_task_create)", ">= 300,000 tasks/s",
	    passmiss(create_rate >= TARGET_CREATE), "%.0f tasks/s",
	    create_rate);
	snprintf(r->ratio, sizeof r->ratio, "%.2f", create_rate / raw);
	cpl_store_stats st;
	check(cpl_store_stats_get(s, &st), "stats");
	add_row("create: wall / CPU user + sys (share of one core)", NULL,
	    NULL, "%.2f s / %.2f + %.2f s (%.0f%%)", dt, cu, cs,
	    (cu + cs) / dt * 100);
	if (w0 >= 0 && w1 >= 0)
		add_row("create: bytes written to disk / data.mdb size", NULL,
		    NULL, "%.0f / %.0f MB", (w1 - w0) / 1e6,
		    (double)st.file_bytes / 1e6);
	expect_all_in(s, CPL_READY, n, "after create");
	if (create_only) {
		char report[1024] = "";
		int rc = cpl_store_check(s, report, sizeof report);
		if (rc != 0)
			die("cpl_store_check: %s: %s", cpl_strerror(rc), report);
		cpl_store_close(s);
		free(ids);
		print_table();
		rm_tree(base);
		return 0;
	}

	// 3. Reads at N tasks, all READY.
	double cnt_big_txn, cnt_big_in, cnt_small_txn, cnt_small_in;
	time_count(s, 200000, &cnt_big_txn, &cnt_big_in, NULL);
	size_t got;
	double first;
	double page_ready = time_page(s, CPL_READY, 200, &got, &first);
	progress("  count %.2f us, first page READY %.3f ms (%zu tasks; "
		 "first call %.3f ms)\n", cnt_big_txn, page_ready, got, first);
	if (got != PAGE)
		die("first page of READY has %zu tasks", got);

	// 4. About NFAILED tasks fail: RUNNING, RUN_ERROR (no handler).
	life l;
	memset(&l, 0, sizeof l);
	l.nnodes = batch;
	l.nodes = calloc(batch, sizeof *l.nodes);
	l.got = calloc(batch, sizeof *l.got);
	if (l.nodes == NULL || l.got == NULL)
		die("out of memory");
	check(cpl_store_write(s, lease_fn, &l), "lease grant");
	size_t nfailed = 0;
	while (nfailed < NFAILED) {
		l.want = NFAILED - nfailed < batch ? NFAILED - nfailed : batch;
		l.all_phases = false;
		check(cpl_store_write(s, claim_fn, &l), "claim to fail");
		l.phase_to = CPL_RUNNING;
		l.return_code = 0;
		check(cpl_store_write(s, report_fn, &l), "RUNNING");
		l.phase_to = CPL_RUN_ERROR;
		l.return_code = 1;
		check(cpl_store_write(s, report_fn, &l), "RUN_ERROR");
		nfailed += l.ngot;
	}

	// 5. Lifecycle: half one transaction per phase, half all in one.
	size_t rest = n - nfailed;
	size_t na = rest / 2, nb = rest - na;
	progress("lifecycle (a) one transaction per phase: %zu tasks...\n",
	    na);
	dt = lifecycle(s, &l, na, batch, false);
	double life_a = (double)na / dt;
	progress("  %.0f tasks/s\n", life_a);
	progress("lifecycle (b) one transaction per batch: %zu tasks...\n",
	    nb);
	dt = lifecycle(s, &l, nb, batch, true);
	double life_b = (double)nb / dt;
	progress("  %.0f tasks/s\n", life_b);
	r = add_row("lifecycle (a): claim, RUNNING, RUN_DONE, JOB_FINISHED, "
		    "4 transactions per batch",
	    ">= 100,000 tasks/s", passmiss(life_a >= TARGET_LIFECYCLE),
	    "%.0f tasks/s", life_a);
	snprintf(r->ratio, sizeof r->ratio, "%.2f", life_a / raw);
	r = add_row("lifecycle (b): the same, 1 transaction per batch",
	    ">= 100,000 tasks/s", passmiss(life_b >= TARGET_LIFECYCLE),
	    "%.0f tasks/s", life_b);
	snprintf(r->ratio, sizeof r->ratio, "%.2f", life_b / raw);

	// 6. Reads at the end: counts and pages.
	time_count(s, 200000, &cnt_big_txn, &cnt_big_in, NULL);
	double page_fin = time_page(s, CPL_JOB_FINISHED, 200, &got, &first);
	if (got != PAGE)
		die("first page of JOB_FINISHED has %zu tasks", got);
	double first_fin = first;
	size_t got_failed;
	double page_failed = time_page(s, CPL_FAILED, 200, &got_failed, &first);
	if (got_failed != PAGE)
		die("first page of FAILED has %zu tasks", got_failed);
	double first_failed = first;
	size_t got_bj;
	double page_bj = time_page_of(s, CPL_STATE_NONE, BENCH_BJOB, 200,
	    &got_bj, &first);
	if (got_bj != PAGE)
		die("first page of batch job %d has %zu tasks", BENCH_BJOB,
		    got_bj);
	double first_bj = first;
	bjc_ctx bjc;
	double t0c = now_s();
	for (int i = 0; i < 1000; i++)
		check(cpl_store_read(s, bjc_fn, &bjc), "batch job counts");
	double bjc_us = (now_s() - t0c) * 1e3;
	if (bjc.ran != n || bjc.running != 0 || bjc.failed != nfailed)
		die("batch job counts: ran %" PRIu64 " running %" PRIu64
		    " failed %" PRIu64 "; expected %zu, 0, %zu", bjc.ran,
		    bjc.running, bjc.failed, n, nfailed);

	// 7. Verification and sizes.
	progress("verify...\n");
	uint64_t nevents = 0;
	verify_all(s, ids, n, nfailed, &nevents);
	check(cpl_store_stats_get(s, &st), "stats");
	if (st.ntasks != n || st.nevents != nevents)
		die("stats: %" PRIu64 " tasks, %" PRIu64 " events; expected %zu, "
		    "%" PRIu64, st.ntasks, st.nevents, n, nevents);
	progress("cpl_store_check...\n");
	char report[1024] = "";
	double t0 = now_s();
	int rc = cpl_store_check(s, report, sizeof report);
	double check_s = now_s() - t0;
	if (rc != 0)
		die("cpl_store_check: %s: %s", cpl_strerror(rc), report);
	cpl_store_close(s);

	// 8. Count in a small store.
	progress("small store: %d tasks...\n", SMALL_N);
	cpl_store *small = open_store(small_dir);
	create_tasks(small, SMALL_N, batch, NULL, NULL, NULL);
	expect_all_in(small, CPL_READY, SMALL_N, "small store");
	time_count(small, 200000, &cnt_small_txn, &cnt_small_in, NULL);
	cpl_store_close(small);

	char label[128];
	static char count_big_label[128], count_small_label[128];
	snprintf(count_big_label, sizeof count_big_label,
	    "cpl_count_states at %zu tasks (read txn + call)", n);
	snprintf(count_small_label, sizeof count_small_label,
	    "cpl_count_states at %d tasks (read txn + call)", SMALL_N);
	bool count_ok = cnt_big_txn <= COUNT_BOUND * cnt_small_txn;
	add_row(count_big_label, NULL, NULL, "%.3f us", cnt_big_txn);
	add_row(count_small_label, NULL, NULL, "%.3f us", cnt_small_txn);
	static char count_ratio_label[96];
	snprintf(count_ratio_label, sizeof count_ratio_label,
	    "cpl_count_states, %zu tasks / %d tasks", n, SMALL_N);
	add_row(count_ratio_label, "<= 1.5", passmiss(count_ok), "%.2f",
	    cnt_big_txn / cnt_small_txn);
	add_row("cpl_count_states alone (inside one read txn), at N / small",
	    NULL, NULL, "%.3f / %.3f us", cnt_big_in, cnt_small_in);
	static char l1[96], l2[96], l3[96];
	snprintf(l1, sizeof l1, "first page (50, with specs) READY (%zu tasks)",
	    n);
	snprintf(l2, sizeof l2,
	    "first page (50, with specs) JOB_FINISHED (%zu tasks)",
	    n - nfailed);
	snprintf(l3, sizeof l3, "first page (50, with specs) FAILED (%zu tasks)",
	    nfailed);
	add_row(l1, "< 1 ms", passmiss(page_ready < TARGET_PAGE_MS),
	    "%.3f ms", page_ready);
	add_row(l2, "< 1 ms", passmiss(page_fin < TARGET_PAGE_MS),
	    "%.3f ms (first call %.3f)", page_fin, first_fin);
	add_row(l3, "< 1 ms", passmiss(page_failed < TARGET_PAGE_MS),
	    "%.3f ms (first call %.3f)", page_failed, first_failed);
	static char l4[96];
	snprintf(l4, sizeof l4, "first page (50, with specs) of batch job %d "
	    "(%zu tasks)", BENCH_BJOB, n);
	add_row(l4, "< 1 ms", passmiss(page_bj < TARGET_PAGE_MS),
	    "%.3f ms (first call %.3f)", page_bj, first_bj);
	add_row("cpl_bjob_counts (read txn + call)", NULL, NULL, "%.3f us",
	    bjc_us);
	snprintf(label, sizeof label, "%.1f", (double)nevents / (double)n);
	add_row("history events per task", NULL, NULL, "%s", label);
	add_row("used bytes per task (history included)", NULL, NULL, "%.0f B",
	    (double)st.used_bytes / (double)n);
	add_row("file bytes per task (data.mdb)", NULL, NULL, "%.0f B",
	    (double)st.file_bytes / (double)n);
	add_row("cpl_store_check of the whole store", NULL, NULL, "%.2f s",
	    check_s);
	print_table();
	printf("\nThe count's bound: at %zu tasks, at most %.1f times its time "
	       "at %d tasks, because\n%s\n", n, COUNT_BOUND, SMALL_N,
	    count_bound_why);
	printf("\nverified: %zu tasks JOB_FINISHED, %zu FAILED, %" PRIu64
	       " history events, cpl_store_check clean\n",
	    n - nfailed, nfailed, nevents);

	free(ids);
	free(l.nodes);
	free(l.got);
	rm_tree(base);
	return 0;
}
