// Power loss: what a store keeps when the machine loses power, not just
// when the broker is killed. (kill -9 leaves every written page in the
// kernel's page cache, so a store that never syncs passes a kill -9 test;
// this one does not.)
//
// Each round: a fresh database; a real copal-broker started with the
// recorder tests/powercut/shim.c in LD_PRELOAD, which keeps a shadow copy
// of the database's data.mdb holding only what was synced (fdatasync,
// fsync, writes through an O_DSYNC descriptor); two creator threads
// streaming batches of creates and a launcher thread claiming tasks and
// reporting them RUNNING, RUN_DONE, JOB_FINISHED, each recording every
// request that got a SUCCESS reply; SIGKILL at a random moment during the
// broker's group commits. Then the power cut: the shadow is put as
// data.mdb into a fresh database directory (the same layout), the store
// opened there, cpl_store_check() run on it, and every acknowledged
// request's effect looked for: the app, the lease, each created task (id
// and name), each claim (the task held by the lease, or later), each
// report (the task in the reported state or a later one that was sent).
//
//   powercut_test [--rounds N] [--seed S] [--only R]
//
// --rounds: rounds to run (default 200, or $COPAL_PC_ROUNDS). --seed: repeat a run's kill times
// (printed at the start; also COPAL_TEST_SEED). --only R: run round R of
// that seed alone. COPAL_TEST_KEEP=1 keeps a failing round's directories.
//
// With a store that does not sync (MDB_NOSYNC) the shadow stays as it was
// at open (empty), and the first round fails: the acknowledged app and
// tasks are not there.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/store.h"
#include "copal/testing/broker.h"

#ifndef COPAL_PC_SHIM
#error "define COPAL_PC_SHIM to the recorder library"
#endif

#define BATCH 10
#define CREATORS 2
#define CLAIM_MAX 8
#define MAX_TASKS 100000
#define WF "pc"
#define APP "pcapp"

enum { R_NONE = 0, R_CLAIMED, R_RUNNING, R_RUN_DONE, R_FINISHED };

static const int rank_to_state[] = { 0, CPL_READY, CPL_RUNNING, CPL_RUN_DONE,
	CPL_JOB_FINISHED };

static int
rank_state(int s)
{
	switch (s) {
	case CPL_READY: return R_CLAIMED;
	case CPL_RUNNING: return R_RUNNING;
	case CPL_RUN_DONE: return R_RUN_DONE;
	case CPL_JOB_FINISHED: return R_FINISHED;
	default: return -1;
	}
}

static int opt_rounds = 200, opt_only = -1;
static uint64_t opt_seed;

struct create_rec {
	int creator, iter;
	uint64_t first_id;
};

struct task_rec {
	uint8_t acked;   // highest acknowledged rank
	uint8_t sent;    // highest rank sent
	uint32_t attempt;
};

struct round {
	bh_broker *b;
	uint64_t lease;
	volatile int stop;
	// creators: acknowledged creates
	struct create_rec *creates[CREATORS];
	size_t ncreates[CREATORS], capcreates[CREATORS];
	// launcher
	struct task_rec *tasks; // by id
	uint64_t nclaims, nreports;
	char err[CREATORS + 1][512];
};

struct creator_arg {
	struct round *r;
	int k;
};

static cpl_client *
thread_client(struct round *r)
{
	cpl_client_opts o;
	cpl_client *c = NULL;
	memset(&o, 0, sizeof(o));
	o.db_dir = r->b->dir;
	// a reply lost in the kill is not waited for long; a slow reply
	// only ends the thread early (an unacknowledged request)
	o.timeout_ms = 2000 * bh_slow();
	o.attempts = 1;
	if (cpl_client_open(&o, &c) != 0)
		return NULL;
	return c;
}

static void *
creator_main(void *arg)
{
	struct creator_arg *a = arg;
	struct round *r = a->r;
	int k = a->k;
	cpl_client *c = thread_client(r);
	if (c == NULL) {
		snprintf(r->err[k], sizeof(r->err[k]), "creator %d: no client", k);
		return NULL;
	}
	for (int iter = 0; !r->stop; iter++) {
		Copal__TaskSpec specs[BATCH], *sp[BATCH];
		char names[BATCH][32];
		Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
		for (int i = 0; i < BATCH; i++) {
			snprintf(names[i], sizeof(names[i]), "c%d-%d-%d", k, iter, i);
			specs[i] = bh_spec(names[i], WF, APP);
			sp[i] = &specs[i];
		}
		cr.n_tasks = BATCH;
		cr.tasks = sp;
		BH_REQ(rq, CREATE, create, &cr);
		Copal__Reply *rep = NULL;
		if (cpl_client_call(c, &rq, &rep) != 0)
			break; // the broker is gone: unacknowledged
		if (rep->status != 0 || rep->create->count != BATCH) {
			snprintf(r->err[k], sizeof(r->err[k]),
			    "creator %d: create answered %s: %s", k,
			    cpl_errname((int)rep->status), rep->error);
			bh_free(rep);
			break;
		}
		if (r->ncreates[k] == r->capcreates[k]) {
			r->capcreates[k] = r->capcreates[k] ? 2 * r->capcreates[k] :
			                                      256;
			r->creates[k] = realloc(r->creates[k],
			    r->capcreates[k] * sizeof(*r->creates[k]));
		}
		struct create_rec *rec = &r->creates[k][r->ncreates[k]++];
		rec->creator = k;
		rec->iter = iter;
		rec->first_id = rep->create->first_id;
		bh_free(rep);
	}
	cpl_client_close(c);
	return NULL;
}

static void *
launcher_main(void *arg)
{
	struct round *r = arg;
	char *err = r->err[CREATORS];
	size_t errlen = sizeof(r->err[CREATORS]);
	cpl_client *c = thread_client(r);
	if (c == NULL) {
		snprintf(err, errlen, "launcher: no client");
		return NULL;
	}
	while (!r->stop) {
		Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
		Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT;
		Copal__NodeCapacity *ncp[CLAIM_MAX];
		nc.free_units = 5040;
		for (int i = 0; i < CLAIM_MAX; i++)
			ncp[i] = &nc;
		cl.lease_id = r->lease;
		cl.max_tasks = CLAIM_MAX;
		cl.n_nodes = CLAIM_MAX;
		cl.nodes = ncp;
		cl.workflow = (char *)WF;
		BH_REQ(rq, CLAIM, claim, &cl);
		Copal__Reply *rep = NULL;
		if (cpl_client_call(c, &rq, &rep) != 0)
			break;
		if (rep->status != 0) {
			snprintf(err, errlen, "launcher: claim answered %s: %s",
			    cpl_errname((int)rep->status), rep->error);
			bh_free(rep);
			break;
		}
		r->nclaims++;
		uint64_t ids[CLAIM_MAX];
		uint32_t att[CLAIM_MAX];
		size_t n = 0;
		for (size_t i = 0; i < rep->claim->n_tasks; i++) {
			Copal__Task *t = rep->claim->tasks[i]->task;
			if (t->id >= MAX_TASKS)
				continue;
			struct task_rec *tr = &r->tasks[t->id];
			tr->attempt = t->status->attempt;
			tr->acked = tr->sent = R_CLAIMED;
			ids[n] = t->id;
			att[n++] = t->status->attempt;
		}
		bh_free(rep);
		if (n == 0) {
			bh_sleep_ms(2);
			continue;
		}
		for (int k = R_RUNNING; k <= R_FINISHED; k++) {
			Copal__StateReport s[CLAIM_MAX], *sp[CLAIM_MAX];
			for (size_t i = 0; i < n; i++) {
				Copal__StateReport x = COPAL__STATE_REPORT__INIT;
				s[i] = x;
				s[i].task_id = ids[i];
				s[i].attempt = att[i];
				s[i].to_state = (Copal__TaskState)rank_to_state[k];
				sp[i] = &s[i];
				r->tasks[ids[i]].sent = (uint8_t)k;
			}
			Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
			rr.lease_id = r->lease;
			rr.n_reports = n;
			rr.reports = sp;
			BH_REQ(rq2, REPORT, report, &rr);
			if (cpl_client_call(c, &rq2, &rep) != 0)
				goto out;
			bool ok = rep->status == 0 && rep->report->n_status == n;
			for (size_t i = 0; ok && i < n; i++)
				ok = rep->report->status[i] == 0;
			if (!ok) {
				snprintf(err, errlen, "launcher: report -> %s "
				    "answered %s: %s", bh_sname(rank_to_state[k]),
				    cpl_errname((int)rep->status), rep->error);
				bh_free(rep);
				goto out;
			}
			bh_free(rep);
			r->nreports++;
			for (size_t i = 0; i < n; i++)
				r->tasks[ids[i]].acked = (uint8_t)k;
		}
	}
out:
	cpl_client_close(c);
	return NULL;
}

// ------------------------------------------------------------ the cut

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	BH_CHECK(in >= 0, "cannot read %s: %s (was the recorder loaded?)", from,
	    strerror(errno));
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	BH_CHECK(out >= 0, "cannot create %s: %s", to, strerror(errno));
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		BH_CHECK(write(out, buf, (size_t)n) == n, "write %s: %s", to,
		    strerror(errno));
	BH_CHECK(n == 0, "read %s: %s", from, strerror(errno));
	close(in);
	close(out);
}

struct found {
	bool present;
	int state;
	uint32_t attempt;
	uint64_t lease;
	char name[32];
};

static int
found_cb(const cpl_task *t, void *arg)
{
	struct found *v = arg;
	if (t->id >= MAX_TASKS)
		return CPL_ETOOBIG;
	struct found *f = &v[t->id];
	f->present = true;
	f->state = (int)t->state;
	f->attempt = t->attempt;
	f->lease = t->lease;
	snprintf(f->name, sizeof(f->name), "%s", t->spec->name);
	return 0;
}

struct after_cut {
	struct found *tasks;
	uint64_t lease;
	int app_rv, lease_rv;
	cpl_lease l;
};

static int
read_all(cpl_txn *txn, void *arg)
{
	struct after_cut *a = arg;
	Copal__App *app = NULL;
	a->app_rv = cpl_app_get(txn, APP, &app);
	if (app)
		copal__app__free_unpacked(app, NULL);
	a->lease_rv = cpl_lease_get(txn, a->lease, &a->l);
	return cpl_query(txn, NULL, 0, 0, CPL_GET_SPEC, found_cb, a->tasks,
	    NULL);
}

// Opens the database after the cut, checks it and every acknowledged
// request; returns how many acknowledged requests were checked.
static uint64_t
check_cut(struct round *r, const char *dir, int round)
{
	char report[4096] = "";
	cpl_store *s = NULL;
	int rv = cpl_store_open(dir, NULL, &s);
	BH_CHECK(rv == 0, "round %d: the store does not open after the power "
	    "cut: %s (%s)", round, cpl_errname(rv), cpl_strerror(rv));
	rv = cpl_store_check(s, report, sizeof(report));
	BH_CHECK(rv == 0, "round %d: cpl_store_check after the power cut: %s:\n%s",
	    round, cpl_errname(rv), report);
	struct after_cut a;
	memset(&a, 0, sizeof(a));
	a.tasks = calloc(MAX_TASKS, sizeof(*a.tasks));
	a.lease = r->lease;
	rv = cpl_store_read(s, read_all, &a);
	cpl_store_close(s);
	BH_CHECK(rv == 0, "round %d: reading the tasks: %s", round,
	    cpl_errname(rv));

	uint64_t checked = 2; // the app and the lease
	BH_CHECK(a.app_rv == 0, "round %d: the acknowledged app %s is gone "
	    "after the power cut (%s)", round, APP, cpl_errname(a.app_rv));
	BH_CHECK(a.lease_rv == 0, "round %d: the acknowledged lease %" PRIu64
	    " is gone after the power cut (%s)", round, r->lease,
	    cpl_errname(a.lease_rv));
	for (int k = 0; k < CREATORS; k++) {
		for (size_t i = 0; i < r->ncreates[k]; i++) {
			struct create_rec *rec = &r->creates[k][i];
			for (int j = 0; j < BATCH; j++) {
				uint64_t id = rec->first_id + (uint64_t)j;
				char want[32];
				snprintf(want, sizeof(want), "c%d-%d-%d", k,
				    rec->iter, j);
				BH_CHECK(id < MAX_TASKS && a.tasks[id].present,
				    "round %d: task %" PRIu64 " (%s) of an "
				    "acknowledged create is gone after the power "
				    "cut", round, id, want);
				BH_CHECK(strcmp(a.tasks[id].name, want) == 0,
				    "round %d: task %" PRIu64 " is named %s, "
				    "expected %s", round, id, a.tasks[id].name,
				    want);
			}
			checked++;
		}
	}
	uint64_t claimed = 0;
	for (size_t id = 1; id < MAX_TASKS; id++) {
		struct task_rec *tr = &r->tasks[id];
		if (tr->acked == R_NONE)
			continue;
		struct found *f = &a.tasks[id];
		int got = f->present ? rank_state(f->state) : -1;
		BH_CHECK(got >= tr->acked && got <= tr->sent,
		    "round %d: task %zu is %s after the power cut; acknowledged "
		    "%s, last sent %s", round, id,
		    f->present ? bh_sname(f->state) : "absent",
		    bh_sname(rank_to_state[tr->acked]),
		    bh_sname(rank_to_state[tr->sent]));
		BH_CHECK(f->attempt == tr->attempt, "round %d: task %zu is at "
		    "attempt %u, claimed at %u", round, id, f->attempt,
		    tr->attempt);
		if (got < R_FINISHED)
			BH_CHECK(f->lease == r->lease, "round %d: task %zu (%s) "
			    "is held by lease %" PRIu64 ", claimed by %" PRIu64,
			    round, id, bh_sname(f->state), f->lease, r->lease);
		claimed++;
	}
	// each task's claim and its acknowledged reports (one per rank)
	checked += claimed;
	for (size_t id = 1; id < MAX_TASKS; id++)
		if (r->tasks[id].acked > R_CLAIMED)
			checked += (uint64_t)(r->tasks[id].acked - R_CLAIMED);
	free(a.tasks);
	return checked;
}

static void
free_round(struct round *r)
{
	for (int k = 0; k < CREATORS; k++)
		free(r->creates[k]);
	free(r->tasks);
}

static uint64_t
round_seed(uint64_t seed, int round)
{
	uint64_t s = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(round + 1));
	bh_rand(&s);
	return s;
}

// One round; returns the number of acknowledged requests checked.
static uint64_t
one_round(int round, uint64_t *ms_killed)
{
	uint64_t rs = round_seed(opt_seed, round);
	bh_broker b, cut;
	struct round r;
	char real[PATH_MAX], file[PATH_MAX + 16], sdir[] = "/tmp/cplpc.XXXXXX";
	char shadow[sizeof(sdir) + 16], to[128];

	memset(&r, 0, sizeof(r));
	r.b = &b;
	r.tasks = calloc(MAX_TASKS, sizeof(*r.tasks));
	bh_init(&b, false);
	BH_CHECK(mkdtemp(sdir) != NULL, "mkdtemp: %s", strerror(errno));
	BH_CHECK(realpath(b.dir, real) != NULL, "realpath %s", b.dir);
	snprintf(file, sizeof(file), "%s/data.mdb", real);
	snprintf(shadow, sizeof(shadow), "%s/shadow", sdir);

	// the broker, and only it, runs over the recorder
	setenv("COPAL_PC_FILE", file, 1);
	setenv("COPAL_PC_SHADOW", shadow, 1);
	setenv("LD_PRELOAD", COPAL_PC_SHIM, 1);
#ifdef __SANITIZE_ADDRESS__
	// the recorder comes before the ASan runtime in the broker
	setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1);
#endif
	bh_start(&b);
	unsetenv("LD_PRELOAD");
	unsetenv("COPAL_PC_FILE");
	unsetenv("COPAL_PC_SHADOW");

	cpl_client *c = bh_client(&b);
	bh_app(c, APP);
	r.lease = bh_lease(c, "powercut", 600000);
	cpl_client_close(c);

	pthread_t tc[CREATORS], tl;
	struct creator_arg ca[CREATORS];
	for (int k = 0; k < CREATORS; k++) {
		ca[k].r = &r;
		ca[k].k = k;
		BH_CHECK(pthread_create(&tc[k], NULL, creator_main, &ca[k]) == 0,
		    "thread");
	}
	BH_CHECK(pthread_create(&tl, NULL, launcher_main, &r) == 0, "thread");
	// the cut: anywhere from the first commits to a few hundred of them
	unsigned wait = 5 + (unsigned)(bh_rand(&rs) % 400);
	bh_sleep_ms(wait * (unsigned)bh_slow());
	bh_kill9(&b);
	r.stop = 1;
	for (int k = 0; k < CREATORS; k++)
		pthread_join(tc[k], NULL);
	pthread_join(tl, NULL);
	for (int k = 0; k <= CREATORS; k++)
		BH_CHECK(r.err[k][0] == 0, "round %d: %s", round, r.err[k]);

	// the disk after the power cut, in a database of the same layout
	bh_init(&cut, false);
	snprintf(to, sizeof(to), "%s/data.mdb", cut.dir);
	copy_file(shadow, to);
	uint64_t checked = check_cut(&r, cut.dir, round);
	*ms_killed = wait;

	bh_destroy(&cut);
	bh_destroy(&b);
	unlink(shadow);
	rmdir(sdir);
	free_round(&r);
	return checked;
}

static void
test_powercut(void **state)
{
	(void)state;
	uint64_t t0 = bh_now_ms(), total = 0;
	int first = opt_only >= 0 ? opt_only : 0;
	int last = opt_only >= 0 ? opt_only + 1 : opt_rounds;
	print_message("powercut: seed %" PRIu64 ", rounds %d..%d (repeat with "
	              "--seed %" PRIu64 " [--only ROUND])\n",
	    opt_seed, first, last - 1, opt_seed);
	for (int round = first; round < last; round++) {
		uint64_t ms = 0, n = one_round(round, &ms);
		total += n;
		if (opt_only >= 0 || round % 50 == 0)
			print_message("round %d: cut after %" PRIu64 " ms, %" PRIu64
			              " acknowledged requests found\n",
			    round, ms, n);
	}
	print_message("powercut: %d rounds in %.1f s, %" PRIu64 " acknowledged "
	              "requests checked after the cuts\n",
	    last - first, (double)(bh_now_ms() - t0) / 1000.0, total);
}

static void
usage(void)
{
	fprintf(stderr, "usage: powercut_test [--rounds N] [--seed S] "
	                "[--only ROUND]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	opt_seed = bh_seed();
	const char *env_rounds = getenv("COPAL_PC_ROUNDS");
	if (env_rounds && *env_rounds)
		opt_rounds = atoi(env_rounds);
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--rounds") == 0)
			opt_rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0)
			opt_seed = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--only") == 0)
			opt_only = atoi(argv[++i]);
		else
			usage();
	}
	if (opt_rounds < 1 || opt_only < -1)
		usage();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_powercut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
