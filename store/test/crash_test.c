// Crash test of the store: durability and atomicity under SIGKILL.
//
// The parent makes a temporary directory, then for many rounds forks a child
// that opens the store durably (no_sync = false) and commits batches with
// cpl_store_write() as fast as it can. Each batch creates 1-300 tasks whose
// names encode (round, batch, index), and also moves earlier tasks along
// (claim + RUNNING, RUN_DONE, RUN_ERROR, JOB_FINISHED reports, lease expiry
// of the leases of earlier, killed children). After each successful commit
// the child writes the batch number to a pipe: that is the acknowledgement.
// The parent kills the child with SIGKILL after a random delay, reaps it,
// reads the acknowledgements, opens the store itself and checks:
//   * every acknowledged batch is present completely;
//   * at most the one batch after the last acknowledgement is present, and
//     then completely (a batch is all or nothing), batches of earlier rounds
//     stay exactly as they were found;
//   * the reports of a batch are in the history exactly when its tasks are
//     (the first task of a batch records how many reports went with it);
//   * every task's history is a chain CREATED -> ... -> its current state;
//   * cpl_store_check() returns 0; counters equal a recount, both from a walk
//     of all tasks and from per-state queries; stats agree.
// Every other child opens with a 1 MiB map, so that the store grows the map
// (and reruns write callbacks) while kills land.
// LMDB is not fork-safe: the parent opens the store only after the child is
// reaped and closes it before the next fork.
//
// COPAL_CRASH_SEED=<n> replays a run; COPAL_CRASH_ROUNDS=<n> changes the
// number of rounds (default 40).
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "copal/store.h"

#define MAX_ROUNDS 200
#define MAX_BATCHES 4096   // per round; a child stops committing after this
#define MAX_BATCH_TASKS 300
#define MAX_CLAIM 40        // tasks claimed per batch at most
#define MAX_ADVANCE 120     // held tasks moved one step per batch at most
#define LEASE_TTL_MS 3000
#define APP_NAME "crashapp"
#define WORKFLOW "crash"

#define CHECK_OK(expr)                                                       \
	do {                                                                 \
		int rc_ = (expr);                                            \
		if (rc_ != 0)                                                \
			fail_msg("%s failed: %d %s (%s)", #expr, rc_,        \
			    cpl_errname(rc_), cpl_strerror(rc_));            \
	} while (0)

// ------------------------------------------------------------ helpers

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t g_seed;

// Number of tasks of batch b of round r: 1..MAX_BATCH_TASKS, known to both.
static uint32_t
batch_ntasks(uint32_t r, uint32_t b)
{
	uint64_t h = mix64(g_seed ^ mix64(((uint64_t)r << 32) | b));
	return 1 + (uint32_t)(h % MAX_BATCH_TASKS);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int
rm_rf(const char *dir)
{
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

// ------------------------------------------------------------ child

// A task the child holds under its lease, as committed.
typedef struct held {
	uint64_t id;
	uint32_t attempt;
	cpl_state state; // RUNNING or RUN_DONE
} held;

typedef struct child {
	cpl_store *s;
	uint32_t round;
	uint64_t lease;     // committed lease
	uint64_t txn_lease; // lease used by the batch being written
	bool lost_lease;    // that batch replaced an expired lease
	held *held;
	size_t nheld, capheld;
	// Plan of the batch being written, recomputed on every run of the
	// callback (a write callback may run more than once).
	uint32_t batch;
	held claimed[MAX_CLAIM];
	size_t nclaimed;
	size_t nadvanced;      // held[0..nadvanced) were moved one step
	cpl_state advanced_to[MAX_ADVANCE];
	uint32_t nreports;
	char err[256];
} child;

static void
child_die(child *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	fprintf(stderr, "crash_test child round %u batch %u: %s\n", c->round,
	    c->batch, c->err);
	_exit(3);
}

// Inside a write callback: remember what failed and return the error, so
// that the store aborts (and, on a full map, grows the map and runs the
// callback again). The child dies only if cpl_store_write() fails.
static int
child_fail(child *c, int rc, const char *fmt, ...)
{
	char what[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(c->err, sizeof c->err, "%s: %s (%s)", what, cpl_strerror(rc),
	    cpl_errname(rc));
	return rc;
}

static int
child_app_fn(cpl_txn *txn, void *arg)
{
	(void)arg;
	Copal__App app = COPAL__APP__INIT;
	app.name = APP_NAME;
	app.executable = "/bin/true --crash";
	app.description = "crash test app";
	int rc = cpl_app_put(txn, &app, false);
	return rc == CPL_EEXISTS ? 0 : rc;
}

static int
child_lease_fn(cpl_txn *txn, void *arg)
{
	child *c = arg;
	char owner[64];
	snprintf(owner, sizeof owner, "crash child round %u pid %d", c->round,
	    (int)getpid());
	return cpl_lease_grant(txn, owner, LEASE_TTL_MS, &c->lease);
}

static int
child_claim_fn(const cpl_task *t, const uint32_t *nodes, size_t n, void *arg)
{
	child *c = arg;
	(void)nodes;
	(void)n;
	if (c->nclaimed >= MAX_CLAIM)
		return CPL_EINTERNAL;
	c->claimed[c->nclaimed].id = t->id;
	c->claimed[c->nclaimed].attempt = t->attempt;
	c->claimed[c->nclaimed].state = CPL_RUNNING;
	c->nclaimed++;
	return 0;
}

static int
child_report(cpl_txn *txn, child *c, const held *h, cpl_state to, int32_t rcode,
    const char *tag)
{
	cpl_report r = {
		.task_id = h->id,
		.lease = c->txn_lease,
		.attempt = h->attempt,
		.to = to,
		.return_code = rcode,
		.message = tag,
	};
	int rc = cpl_task_report(txn, &r);
	if (rc != 0)
		return child_fail(c, rc, "report task %" PRIu64 " attempt %u "
		    "%s -> %s", h->id, h->attempt, cpl_state_name(h->state),
		    cpl_state_name(to));
	c->nreports++;
	return 0;
}

static int
child_batch_fn(cpl_txn *txn, void *arg)
{
	child *c = arg;
	uint64_t rng = mix64(g_seed ^ 0x5eed ^ ((uint64_t)c->round << 40) ^
	    c->batch);
	char tag[32];
	snprintf(tag, sizeof tag, "r%03u-b%05u", c->round, c->batch);

	c->nclaimed = 0;
	c->nadvanced = 0;
	c->nreports = 0;

	c->txn_lease = c->lease;
	c->lost_lease = false;
	int rc = cpl_lease_renew(txn, c->lease, 0, NULL);
	if (rc == CPL_EEXPIRED || rc == CPL_ENOTFOUND) {
		// Only if this child stalled for longer than the lease's ttl
		// (a very busy machine): expire it below and take a new one.
		c->lost_lease = true;
	} else if (rc != 0) {
		return child_fail(c, rc, "lease renew");
	}
	// The leases of the children killed before are expired here once
	// their deadline passed: their RUNNING tasks time out and retry.
	uint64_t nl = 0, nt = 0;
	rc = cpl_lease_expire(txn, &nl, &nt);
	if (rc != 0)
		return child_fail(c, rc, "lease expire");
	if (c->lost_lease) {
		rc = cpl_lease_grant(txn, "crash child, again", LEASE_TTL_MS,
		    &c->txn_lease);
		if (rc != 0)
			return child_fail(c, rc, "lease grant");
	}

	// Move held tasks one step on.
	size_t nadv = (size_t)((rng >> 8) % (MAX_ADVANCE + 1));
	if (nadv > c->nheld || c->lost_lease)
		nadv = c->lost_lease ? 0 : c->nheld;
	for (size_t i = 0; i < nadv; i++) {
		held *h = &c->held[i];
		cpl_state to;
		int32_t rcode = 0;
		if (h->state == CPL_RUNNING) {
			if (h->id % 7 == 0) {
				to = CPL_RUN_ERROR; // no handler: -> FAILED
				rcode = 1;
			} else {
				to = CPL_RUN_DONE;
			}
		} else {
			to = CPL_JOB_FINISHED;
		}
		if ((rc = child_report(txn, c, h, to, rcode, tag)) != 0)
			return rc;
		c->advanced_to[i] = to;
	}
	c->nadvanced = nadv;

	// Claim some runnable tasks and start them.
	uint32_t want = (uint32_t)((rng >> 20) % (MAX_CLAIM + 1));
	if (want > 0) {
		cpl_node_cap nodes[MAX_CLAIM];
		for (uint32_t i = 0; i < want; i++) {
			nodes[i].free_units = CPL_NODE_UNITS;
			nodes[i].free_gpus = 0;
		}
		cpl_capacity cap = {
			.max_tasks = want,
			.nodes = nodes,
			.nnodes = want,
		};
		size_t n = 0;
		rc = cpl_claim(txn, c->txn_lease, &cap, child_claim_fn, c, &n);
		if (rc != 0)
			return child_fail(c, rc, "claim");
		if (n != c->nclaimed)
			return child_fail(c, CPL_EINTERNAL, "claim said %zu "
			    "tasks, callback saw %zu", n, c->nclaimed);
		for (size_t i = 0; i < c->nclaimed; i++) {
			held h = c->claimed[i];
			h.state = CPL_READY;
			rc = child_report(txn, c, &h, CPL_RUNNING, 0, tag);
			if (rc != 0)
				return rc;
		}
	}

	// Create the batch's tasks; the first records the number of reports.
	uint32_t k = batch_ntasks(c->round, c->batch);
	for (uint32_t i = 0; i < k; i++) {
		char name[64], args[96], desc[64], env1[32];
		snprintf(name, sizeof name, "r%03u-b%05u-i%04u", c->round,
		    c->batch, i);
		snprintf(args, sizeof args, "--round %u --batch %u --index %u",
		    c->round, c->batch, i);
		snprintf(desc, sizeof desc, "reports=%u", c->nreports);
		snprintf(env1, sizeof env1, "%u", i);
		Copal__EnvVar e0 = COPAL__ENV_VAR__INIT, e1 = COPAL__ENV_VAR__INIT;
		e0.name = "OMP_NUM_THREADS";
		e0.value = "1";
		e1.name = "CRASH_INDEX";
		e1.value = env1;
		Copal__EnvVar *env[2] = { &e0, &e1 };
		Copal__Resources res = COPAL__RESOURCES__INIT;
		res.num_nodes = 1;
		res.ranks_per_node = 1;
		res.threads_per_rank = 1;
		res.node_packing_count = 1;
		res.wall_time_minutes = 5;
		Copal__TaskSpec spec = COPAL__TASK_SPEC__INIT;
		spec.name = name;
		spec.workflow = WORKFLOW;
		spec.application = APP_NAME;
		spec.args = args;
		spec.description = i == 0 ? desc : "";
		spec.n_environ = 2;
		spec.environ = env;
		spec.resources = &res;
		spec.priority = (int32_t)(i % 3);
		if (i % 3 == 0) {
			spec.auto_timeout_retry = true;
			spec.max_retries = 2;
		}
		uint64_t id;
		uint8_t uuid[16];
		rc = cpl_task_create(txn, &spec, &id, uuid);
		if (rc != 0)
			return child_fail(c, rc, "create %s", name);
	}
	return 0;
}

// After a commit: the plan becomes the child's view of what it holds.
static void
child_apply(child *c)
{
	if (c->lost_lease) {
		c->nheld = 0; // the old lease's tasks were expired
		c->lease = c->txn_lease;
	}
	size_t w = 0;
	for (size_t i = 0; i < c->nheld; i++) {
		held h = c->held[i];
		if (i < c->nadvanced) {
			cpl_state to = c->advanced_to[i];
			if (to != CPL_RUN_DONE)
				continue; // finished or failed: released
			h.state = to;
		}
		c->held[w++] = h;
	}
	c->nheld = w;
	if (c->nheld + c->nclaimed > c->capheld) {
		c->capheld = (c->nheld + c->nclaimed) * 2 + 64;
		c->held = realloc(c->held, c->capheld * sizeof *c->held);
		if (c->held == NULL)
			child_die(c, "out of memory");
	}
	if (c->nclaimed > 0)
		memcpy(c->held + c->nheld, c->claimed,
		    c->nclaimed * sizeof *c->held);
	c->nheld += c->nclaimed;
}

static void
child_main(const char *dir, uint32_t round, int ackfd)
{
	child c;
	memset(&c, 0, sizeof c);
	c.round = round;
	cpl_store_opts opts;
	memset(&opts, 0, sizeof opts);
	opts.no_sync = false;
	// Every other child starts with a tiny map, so that kills also land
	// while the store grows the map and reruns a write callback.
	if (round % 2 == 0)
		opts.map_size = 1u << 20;
	int rc = cpl_store_open(dir, &opts, &c.s);
	if (rc != 0)
		child_die(&c, "open: %s", cpl_strerror(rc));
	rc = cpl_store_write(c.s, child_app_fn, &c);
	if (rc != 0)
		child_die(&c, "app put: %s", cpl_strerror(rc));
	rc = cpl_store_write(c.s, child_lease_fn, &c);
	if (rc != 0)
		child_die(&c, "lease grant: %s", cpl_strerror(rc));
	for (c.batch = 0; c.batch < MAX_BATCHES; c.batch++) {
		c.err[0] = '\0';
		rc = cpl_store_write(c.s, child_batch_fn, &c);
		if (rc != 0)
			child_die(&c, "cpl_store_write: %s (%s); inside: %s",
			    cpl_strerror(rc), cpl_errname(rc),
			    c.err[0] ? c.err : "-");
		child_apply(&c);
		uint32_t ack = c.batch;
		if (write(ackfd, &ack, sizeof ack) != (ssize_t)sizeof ack)
			child_die(&c, "ack write: %s", strerror(errno));
	}
	for (;;)
		pause(); // wait for the kill
}

// ------------------------------------------------------------ parent

typedef struct batch_seen {
	uint32_t ntasks;          // tasks found
	int64_t reports_expected; // from the first task's description; -1: none
	uint32_t reports_seen;    // tagged launcher events found
	uint64_t idx[(MAX_BATCH_TASKS + 63) / 64];
} batch_seen;

typedef struct task_row {
	uint64_t id;
	cpl_state state;
	cpl_state last_to; // from the history chain
	uint32_t nevents;
} task_row;

typedef struct verify {
	uint32_t nrounds; // rounds 0..nrounds-1 exist so far
	batch_seen *seen; // [MAX_ROUNDS * MAX_BATCHES]
	task_row *rows;
	size_t nrows, caprows;
	uint64_t recount[CPL_NSTATES];
	uint64_t counts[CPL_NSTATES];
	uint64_t bystate_query[CPL_NSTATES];
	uint64_t nevents;
	uint64_t ntimeouts; // events to RUN_TIMEOUT (expired leases)
	char err[512];
} verify;

static uint64_t g_timeouts; // found by the last check

static void
verr(verify *v, const char *fmt, ...)
{
	if (v->err[0] != '\0')
		return; // keep the first
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->err, sizeof v->err, fmt, ap);
	va_end(ap);
}

static batch_seen *
seen_at(verify *v, uint32_t r, uint32_t b)
{
	return &v->seen[(size_t)r * MAX_BATCHES + b];
}

static int
parse_tag(const char *s, uint32_t *r, uint32_t *b, uint32_t *i)
{
	unsigned rr, bb, ii;
	int end = 0;
	if (i != NULL) {
		if (sscanf(s, "r%3u-b%5u-i%4u%n", &rr, &bb, &ii, &end) != 3 ||
		    s[end] != '\0')
			return -1;
		*i = ii;
	} else {
		if (sscanf(s, "r%3u-b%5u%n", &rr, &bb, &end) != 2 ||
		    s[end] != '\0')
			return -1;
	}
	if (rr >= MAX_ROUNDS || bb >= MAX_BATCHES)
		return -1;
	*r = rr;
	*b = bb;
	return 0;
}

static int
verify_task_fn(const cpl_task *t, void *arg)
{
	verify *v = arg;
	if (t->spec == NULL || t->spec->name == NULL) {
		verr(v, "task %" PRIu64 ": no spec", t->id);
		return 0;
	}
	if (t->state <= CPL_STATE_NONE || t->state >= CPL_NSTATES) {
		verr(v, "task %" PRIu64 ": state %d out of range", t->id,
		    (int)t->state);
		return 0;
	}
	if (v->nrows > 0 && t->id <= v->rows[v->nrows - 1].id)
		verr(v, "query not in id order at %" PRIu64, t->id);
	uint32_t r, b, i;
	if (parse_tag(t->spec->name, &r, &b, &i) != 0 || r >= v->nrounds) {
		verr(v, "task %" PRIu64 ": unexpected name '%s'", t->id,
		    t->spec->name);
		return 0;
	}
	batch_seen *bs = seen_at(v, r, b);
	if (i >= batch_ntasks(r, b)) {
		verr(v, "task %s: index beyond the batch's %u tasks",
		    t->spec->name, batch_ntasks(r, b));
		return 0;
	}
	if (bs->idx[i / 64] & (1ull << (i % 64))) {
		verr(v, "task %s present twice", t->spec->name);
		return 0;
	}
	bs->idx[i / 64] |= 1ull << (i % 64);
	bs->ntasks++;
	if (i == 0) {
		unsigned n;
		if (t->spec->description == NULL ||
		    sscanf(t->spec->description, "reports=%u", &n) != 1) {
			verr(v, "task %s: bad description", t->spec->name);
			return 0;
		}
		bs->reports_expected = n;
	}
	if (t->spec->application == NULL ||
	    strcmp(t->spec->application, APP_NAME) != 0 ||
	    t->spec->workflow == NULL ||
	    strcmp(t->spec->workflow, WORKFLOW) != 0)
		verr(v, "task %s: app or workflow lost", t->spec->name);
	if (v->nrows == v->caprows) {
		v->caprows = v->caprows ? v->caprows * 2 : 4096;
		v->rows = realloc(v->rows, v->caprows * sizeof *v->rows);
		assert_non_null(v->rows);
	}
	task_row *row = &v->rows[v->nrows++];
	row->id = t->id;
	row->state = t->state;
	row->last_to = CPL_STATE_NONE;
	row->nevents = 0;
	v->recount[t->state]++;
	return 0;
}

static task_row *
find_row(verify *v, uint64_t id)
{
	size_t lo = 0, hi = v->nrows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->rows[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->nrows && v->rows[lo].id == id ? &v->rows[lo] : NULL;
}

static int
verify_event_fn(const cpl_event *e, void *arg)
{
	verify *v = arg;
	v->nevents++;
	task_row *row = find_row(v, e->task_id);
	if (row == NULL) {
		verr(v, "event %" PRIu64 " for missing task %" PRIu64, e->seq,
		    e->task_id);
		return 0;
	}
	if (row->nevents == 0) {
		if (e->from != CPL_CREATED)
			verr(v, "task %" PRIu64 ": first event from %s, not "
			    "CREATED", e->task_id, cpl_state_name(e->from));
	} else if (e->from != row->last_to) {
		verr(v, "task %" PRIu64 ": event %" PRIu64 " from %s but the "
		    "previous event went to %s", e->task_id, e->seq,
		    cpl_state_name(e->from), cpl_state_name(row->last_to));
	}
	row->last_to = e->to;
	row->nevents++;
	if (e->to == CPL_RUN_TIMEOUT)
		v->ntimeouts++;
	uint32_t r, b;
	if (e->message != NULL && parse_tag(e->message, &r, &b, NULL) == 0 &&
	    (e->to == CPL_RUNNING || e->to == CPL_RUN_DONE ||
		e->to == CPL_RUN_ERROR || e->to == CPL_JOB_FINISHED)) {
		if (r >= v->nrounds)
			verr(v, "event %" PRIu64 " of future round %u", e->seq,
			    r);
		else
			seen_at(v, r, b)->reports_seen++;
	}
	return 0;
}

static int
verify_count_fn(const cpl_task *t, void *arg)
{
	uint64_t *n = arg;
	(void)t;
	(*n)++;
	return 0;
}

static int
verify_read_fn(cpl_txn *txn, void *arg)
{
	verify *v = arg;
	cpl_filter all;
	memset(&all, 0, sizeof all);
	bool more = true;
	int rc = cpl_query(txn, &all, 0, 0, CPL_GET_SPEC, verify_task_fn, v,
	    &more);
	if (rc != 0)
		return rc;
	if (more)
		verr(v, "query without limit says more follow");
	rc = cpl_history_scan(txn, 0, 0, verify_event_fn, v);
	if (rc != 0)
		return rc;
	rc = cpl_count_states(txn, v->counts);
	if (rc != 0)
		return rc;
	for (int s = 1; s < CPL_NSTATES; s++) {
		uint64_t one = cpl_count_state(txn, (cpl_state)s);
		if (one != v->counts[s])
			verr(v, "cpl_count_state(%s) = %" PRIu64 " but "
			    "cpl_count_states says %" PRIu64, cpl_state_name(s),
			    one, v->counts[s]);
		cpl_filter f;
		memset(&f, 0, sizeof f);
		f.states = 1u << s;
		v->bystate_query[s] = 0;
		rc = cpl_query(txn, &f, 0, 0, 0, verify_count_fn,
		    &v->bystate_query[s], NULL);
		if (rc != 0)
			return rc;
	}
	if (v->nrows > 0) {
		Copal__App *app = NULL;
		rc = cpl_app_get(txn, APP_NAME, &app);
		if (rc != 0)
			return rc;
		copal__app__free_unpacked(app, NULL);
	}
	return 0;
}

// What the checks of earlier rounds found, kept for later rounds.
typedef struct round_result {
	int64_t last_ack;    // -1: none
	bool extra;          // batch last_ack + 1 was committed without an ack
	uint32_t nbatches;   // batches present
} round_result;

static void
verify_store(const char *dir, uint32_t round, round_result *res,
    uint64_t *ntasks_out, uint64_t counts_out[CPL_NSTATES])
{
	verify *v = calloc(1, sizeof *v);
	assert_non_null(v);
	v->nrounds = round + 1;
	v->seen = calloc((size_t)MAX_ROUNDS * MAX_BATCHES, sizeof *v->seen);
	assert_non_null(v->seen);
	for (size_t i = 0; i < (size_t)MAX_ROUNDS * MAX_BATCHES; i++)
		v->seen[i].reports_expected = -1;

	cpl_store_opts opts;
	memset(&opts, 0, sizeof opts);
	cpl_store *s = NULL;
	CHECK_OK(cpl_store_open(dir, &opts, &s));

	char report[2048] = "";
	int rc = cpl_store_check(s, report, sizeof report);
	if (rc != 0)
		fail_msg("round %u: cpl_store_check: %s (%s): %s", round,
		    cpl_strerror(rc), cpl_errname(rc), report);

	CHECK_OK(cpl_store_read(s, verify_read_fn, v));
	if (v->err[0] != '\0')
		fail_msg("round %u: %s", round, v->err);

	cpl_store_stats st;
	CHECK_OK(cpl_store_stats_get(s, &st));
	cpl_store_close(s);

	// Counters against the recount.
	uint64_t sum = 0;
	for (int k = 0; k < CPL_NSTATES; k++) {
		if (v->counts[k] != v->recount[k])
			fail_msg("round %u: counter of %s is %" PRIu64 ", a "
			    "recount finds %" PRIu64, round,
			    k ? cpl_state_name(k) : "NONE", v->counts[k],
			    v->recount[k]);
		if (k > 0 && v->bystate_query[k] != v->recount[k])
			fail_msg("round %u: a query for state %s finds %"
			    PRIu64 " tasks, a recount %" PRIu64, round,
			    cpl_state_name(k), v->bystate_query[k],
			    v->recount[k]);
		sum += v->counts[k];
	}
	if (sum != v->nrows || st.ntasks != v->nrows)
		fail_msg("round %u: %zu tasks walked, counters sum to %" PRIu64
		    ", stats say %" PRIu64, round, v->nrows, sum, st.ntasks);
	if (st.nevents != v->nevents)
		fail_msg("round %u: stats say %" PRIu64 " events, the log has %"
		    PRIu64, round, st.nevents, v->nevents);

	// History chains end in each task's state.
	for (size_t i = 0; i < v->nrows; i++) {
		task_row *row = &v->rows[i];
		if (row->nevents == 0 || row->last_to != row->state)
			fail_msg("round %u: task %" PRIu64 " is %s but its %u "
			    "events end in %s", round, row->id,
			    cpl_state_name(row->state), row->nevents,
			    row->nevents ? cpl_state_name(row->last_to)
					 : "nothing");
	}

	// Batches: acknowledged ones complete, at most one more, all or
	// nothing, reports with their batch.
	for (uint32_t r = 0; r <= round; r++) {
		round_result *rr = &res[r];
		uint32_t present = 0;
		for (uint32_t b = 0; b < MAX_BATCHES; b++) {
			batch_seen *bs = seen_at(v, r, b);
			uint32_t k = batch_ntasks(r, b);
			bool acked = (int64_t)b <= rr->last_ack;
			if (bs->ntasks == 0) {
				if (acked)
					fail_msg("round %u: acknowledged batch "
					    "r%03u-b%05u is missing", round, r,
					    b);
				if (bs->reports_seen != 0)
					fail_msg("round %u: %u reports of "
					    "batch r%03u-b%05u are in the "
					    "history but its tasks are not",
					    round, bs->reports_seen, r, b);
				continue;
			}
			if (bs->ntasks != k)
				fail_msg("round %u: partial batch r%03u-b%05u: "
				    "%u of %u tasks", round, r, b, bs->ntasks,
				    k);
			if (bs->reports_expected < 0 ||
			    (uint64_t)bs->reports_expected != bs->reports_seen)
				fail_msg("round %u: batch r%03u-b%05u made %"
				    PRId64 " reports, the history has %u",
				    round, r, b, bs->reports_expected,
				    bs->reports_seen);
			if (!acked) {
				if ((int64_t)b != rr->last_ack + 1)
					fail_msg("round %u: batch r%03u-b%05u "
					    "present but the last ack was %"
					    PRId64, round, r, b, rr->last_ack);
				if (r < round && !rr->extra)
					fail_msg("round %u: batch r%03u-b%05u "
					    "appeared after its round was "
					    "checked", round, r, b);
				if (r == round)
					rr->extra = true;
			}
			present++;
		}
		if (r < round && present != rr->nbatches)
			fail_msg("round %u: round %u had %u batches, now %u",
			    round, r, rr->nbatches, present);
		rr->nbatches = present;
	}
	*ntasks_out = v->nrows;
	memcpy(counts_out, v->counts, sizeof v->counts);
	g_timeouts = v->ntimeouts;
	free(v->rows);
	free(v->seen);
	free(v);
}

static uint32_t
env_u32(const char *name, uint32_t dflt)
{
	const char *s = getenv(name);
	if (s == NULL || *s == '\0')
		return dflt;
	return (uint32_t)strtoul(s, NULL, 0);
}

// The temporary directory and the per-round results, made before the test
// and removed after it, also when it fails.
typedef struct fixture {
	char dir[64];
	round_result *res;
} fixture;

static int
setup(void **state)
{
	fixture *fx = calloc(1, sizeof *fx);
	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof fx->dir, "/tmp/copal-crash-XXXXXX");
	fx->res = calloc(MAX_ROUNDS, sizeof *fx->res);
	if (fx->res == NULL || mkdtemp(fx->dir) == NULL) {
		free(fx->res);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	fixture *fx = *state;
	rm_rf(fx->dir);
	free(fx->res);
	free(fx);
	return 0;
}

static void
test_crash_durability(void **state)
{
	fixture *fx = *state;
	const char *dir = fx->dir;
	round_result *res = fx->res;
	const char *seed_env = getenv("COPAL_CRASH_SEED");
	g_seed = seed_env && *seed_env ? strtoull(seed_env, NULL, 0)
				       : mix64((uint64_t)time(NULL) ^
					     ((uint64_t)getpid() << 32));
	uint32_t rounds = env_u32("COPAL_CRASH_ROUNDS", 40);
	if (rounds == 0 || rounds > MAX_ROUNDS)
		rounds = 40;
	printf("crash_test: seed %" PRIu64 " (COPAL_CRASH_SEED to replay), "
	       "%u rounds\n", g_seed, rounds);
	fflush(stdout);

	uint64_t rng = mix64(g_seed ^ 0xdead);
	uint64_t total_acked = 0, total_extra = 0, ntasks = 0;
	uint64_t counts[CPL_NSTATES] = { 0 };
	uint64_t t0 = now_ms();

	for (uint32_t round = 0; round < rounds; round++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child_main(dir, round, pfd[1]);
			_exit(4);
		}
		close(pfd[1]);
		rng = mix64(rng + round);
		uint32_t delay_us = (uint32_t)(rng % 150001);
		usleep(delay_us);
		kill(pid, SIGKILL);
		int status = 0;
		while (waitpid(pid, &status, 0) < 0)
			assert_int_equal(errno, EINTR);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			close(pfd[0]);
			fail_msg("round %u: child ended by itself (status 0x%x): "
			    "see its message above", round, (unsigned)status);
		}

		int64_t last = -1;
		uint32_t ack;
		ssize_t n;
		while ((n = read(pfd[0], &ack, sizeof ack)) > 0) {
			assert_int_equal(n, sizeof ack);
			if ((int64_t)ack != last + 1)
				fail_msg("round %u: ack %u after %" PRId64,
				    round, ack, last);
			last = ack;
		}
		assert_int_equal(n, 0);
		close(pfd[0]);
		res[round].last_ack = last;

		verify_store(dir, round, res, &ntasks, counts);
		total_acked += (uint64_t)(last + 1);
		total_extra += res[round].extra;
		printf("round %2u: killed after %3u ms, %4" PRId64 " batches "
		       "acked%s, %7" PRIu64 " tasks in store\n", round,
		    delay_us / 1000, last + 1,
		    res[round].extra ? " (+1 committed, not acked)" : "",
		    ntasks);
		fflush(stdout);
	}
	printf("crash_test: %u rounds, %" PRIu64 " batches acked, %" PRIu64
	       " unacked commits survived, %" PRIu64 " tasks, %.1f s\n",
	    rounds, total_acked, total_extra, ntasks,
	    (double)(now_ms() - t0) / 1000.0);
	printf("crash_test: final states:");
	for (int k = 1; k < CPL_NSTATES; k++)
		if (counts[k] != 0)
			printf(" %s %" PRIu64, cpl_state_name(k), counts[k]);
	printf("; %" PRIu64 " timeouts of expired leases in the history\n",
	    g_timeouts);
	// The run must have exercised something.
	assert_true(total_acked > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crash_durability, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
