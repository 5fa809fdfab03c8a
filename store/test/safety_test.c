// Transactions and the database as a whole: an aborted write leaves
// nothing, cpl_txn_sub undoes only its own part, cpl_txn_direct says when
// a failure left a change behind, a refusal inside a
// transaction leaves the rest, the map grows under load (and a map that
// cannot grow reports CPL_EMAPFULL and keeps the store usable), one open
// per directory (CPL_ELOCKED), data kept across close and reopen, readers
// see a snapshot beside a writer, concurrent writers are serialized.
#include "copal/testing/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TTL (3600u * 1000u)

static void
expect_empty(tu_env *e)
{
	cpl_store_stats st = tu_stats(e);
	TU_EQ_U64(st.ntasks, 0);
	TU_EQ_U64(st.nevents, 0);
	uint64_t c[CPL_NSTATES];
	TU_OK(tu_counts(e, c));
	for (int s = 0; s < CPL_NSTATES; s++)
		TU_EQ_U64(c[s], 0);
	cpl_filter f;
	memset(&f, 0, sizeof f);
	tu_ids got;
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 0);
	tu_names l;
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(l.n, 0);
}

// ------------------------------------------------------------ abort

typedef struct abort_arg {
	int ncreated;
	int rv_app, rv_lease;
	uint64_t lease;
	int ret;
} abort_arg;

static int
abort_cb(cpl_txn *txn, void *arg)
{
	abort_arg *a = arg;
	a->ncreated = 0;
	Copal__App app = COPAL__APP__INIT;
	app.name = "tmpapp";
	app.executable = "/bin/tmp";
	a->rv_app = cpl_app_put(txn, &app, false);
	uint64_t prev = 0;
	for (int i = 0; i < 5; i++) {
		tu_spec sp;
		tu_spec_init(&sp, "doomed", "doomed-wf", i % 2 ? "tmpapp" : "app");
		if (prev)
			tu_spec_parent(&sp, prev);
		uint64_t id;
		uint8_t u[16];
		if (cpl_task_create(txn, &sp.spec, &id, u) == 0) {
			a->ncreated++;
			prev = id;
		}
	}
	a->rv_lease = cpl_lease_grant(txn, "doomed", 1000, &a->lease);
	if (prev)
		cpl_history_note(txn, prev, "note");
	return a->ret;
}

static void
test_write_abort_leaves_nothing(void **state)
{
	tu_env *e = *state;
	const int rets[] = { CPL_EINTERNAL, CPL_EINVAL, 12345 };
	for (size_t i = 0; i < 3; i++) {
		abort_arg a = { 0, 0, 0, 0, rets[i] };
		TU_ERR(cpl_store_write(e->s, abort_cb, &a), rets[i]);
		TU_OK(a.rv_app);
		TU_OK(a.rv_lease);
		assert_int_equal(a.ncreated, 5);
		expect_empty(e);
		Copal__App *g = NULL;
		TU_ERR(tu_app_get(e, "tmpapp", &g), CPL_ENOTFOUND);
		cpl_lease l;
		TU_ERR(tu_lease_get(e, a.lease, &l), CPL_ENOTFOUND);
		TU_CHECK(e);
	}
	// The store works normally afterwards.
	uint64_t id = tu_task(e, "alive", "w", 0);
	TU_STATE(e, id, CPL_READY);
	assert_int_equal(tu_stats(e).ntasks, 1);
}

// ------------------------------------------------------------ sub

typedef struct sub_arg {
	const char *name;
	int ret;
	int ncreated;
	uint64_t report_task, report_lease;
	uint32_t report_attempt;
} sub_arg;

static int
sub_fn(cpl_txn *txn, void *arg)
{
	sub_arg *a = arg;
	a->ncreated = 0;
	for (int i = 0; i < 2; i++) {
		tu_spec sp;
		tu_spec_init(&sp, a->name, a->name, "app");
		uint64_t id;
		uint8_t u[16];
		if (cpl_task_create(txn, &sp.spec, &id, u) == 0)
			a->ncreated++;
	}
	if (a->report_task) {
		cpl_report r = { a->report_task, a->report_lease,
			a->report_attempt, CPL_STAGED_IN, 0, "in sub", NULL, false, 0 };
		int rv = cpl_task_report(txn, &r);
		if (rv != 0)
			return rv;
	}
	return a->ret;
}

typedef struct outer_arg {
	sub_arg s[4];
	int rv[4];
	int rv_outer_create;
} outer_arg;

static int
outer_cb(cpl_txn *txn, void *arg)
{
	outer_arg *o = arg;
	tu_spec sp;
	tu_spec_init(&sp, "outer", "outer", "app");
	uint64_t id;
	uint8_t u[16];
	o->rv_outer_create = cpl_task_create(txn, &sp.spec, &id, u);
	for (int i = 0; i < 4; i++)
		o->rv[i] = cpl_txn_sub(txn, sub_fn, &o->s[i]);
	return 0;
}

static void
test_txn_sub(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t x = tu_task(e, "x", "xw", 0);
	uint32_t ax = tu_claim_task(e, lease, "xw", x);
	uint64_t y = tu_task(e, "y", "yw", 0);
	uint32_t ay = tu_claim_task(e, lease, "yw", y);
	size_t hx = tu_history_len(e, x);
	uint64_t ready0 = tu_count(e, CPL_READY);

	outer_arg o;
	memset(&o, 0, sizeof o);
	o.s[0] = (sub_arg){ "fails", CPL_EINVAL, 0, 0, 0, 0 };
	o.s[1] = (sub_arg){ "works", 0, 0, 0, 0, 0 };
	// A sub that moves x and then fails: x's move is undone.
	o.s[2] = (sub_arg){ "fails-after-report", CPL_EBUSY, 0, x, lease, ax };
	// A sub that moves y and succeeds.
	o.s[3] = (sub_arg){ "moves", 0, 0, y, lease, ay };
	TU_OK(cpl_store_write(e->s, outer_cb, &o));
	TU_OK(o.rv_outer_create);
	TU_ERR(o.rv[0], CPL_EINVAL);
	TU_OK(o.rv[1]);
	TU_ERR(o.rv[2], CPL_EBUSY);
	TU_OK(o.rv[3]);
	for (int i = 0; i < 4; i++)
		assert_int_equal(o.s[i].ncreated, 2);

	tu_names l;
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(tu_names_count(&l, "outer"), 1);
	assert_int_equal(tu_names_count(&l, "works"), 2);
	assert_int_equal(tu_names_count(&l, "moves"), 2);
	assert_int_equal(tu_names_count(&l, "fails"), -1);
	assert_int_equal(tu_names_count(&l, "fails-after-report"), -1);
	cpl_filter f;
	memset(&f, 0, sizeof f);
	f.name = "fails";
	tu_ids got;
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 0);
	assert_int_equal(tu_stats(e).ntasks, 2 + 1 + 2 + 2);

	cpl_task t = tu_task_get(e, x);
	TU_EQ_STATE(t.state, CPL_READY);
	TU_EQ_U64(t.lease, lease);
	assert_int_equal(tu_history_len(e, x), hx);
	TU_STATE(e, y, CPL_STAGED_IN);
	// READY: x stays, y left; outer + works + moves are new.
	TU_EQ_U64(tu_count(e, CPL_READY), ready0 - 1 + 5);
	TU_COUNTS_CONSISTENT(e);
	TU_CHECK(e);
	// x can still move.
	TU_OK(tu_report(e, x, lease, ax, CPL_STAGED_IN));
}

// cpl_txn_direct: work run in the transaction itself. A failure before
// any change leaves the transaction as it was (changed false) and it
// goes on to commit; a failure after a change that moves no counter of
// the store's meta (a lease renewed), in txn or in a nested transaction
// inside it, still says changed; a success says nothing changed that
// must be undone.
typedef struct direct_arg {
	int mode;           // 0 fail at once, 1 renew then fail, 2 report,
	                    // 3 renew in a nested transaction, then fail
	uint64_t lease, task;
	uint32_t attempt;
} direct_arg;

static int
renew_fn(cpl_txn *txn, void *arg)
{
	direct_arg *d = arg;
	uint64_t dl;
	return cpl_lease_renew(txn, d->lease, 0, &dl);
}

static int
direct_fn(cpl_txn *txn, void *arg)
{
	direct_arg *d = arg;
	int rv;
	switch (d->mode) {
	case 0:
		return CPL_EINVAL;
	case 1:
	case 3:
		rv = d->mode == 1 ? renew_fn(txn, d) :
		    cpl_txn_sub(txn, renew_fn, d);
		return rv ? rv : CPL_EBUSY;
	default: {
		cpl_report r = { d->task, d->lease, d->attempt, CPL_STAGED_IN,
			0, "direct", NULL, false, 0 };
		return cpl_task_report(txn, &r);
	}
	}
}

typedef struct direct_outer {
	direct_arg d[4];
	int rv[4];
	bool changed[4];
	int rv_null;
} direct_outer;

static int
direct_outer_cb(cpl_txn *txn, void *arg)
{
	direct_outer *o = arg;
	bool ch;
	o->rv_null = cpl_txn_direct(txn, NULL, NULL, &ch);
	for (int i = 0; i < 4; i++)
		o->rv[i] = cpl_txn_direct(txn, direct_fn, &o->d[i],
		    &o->changed[i]);
	// what changed and then failed cannot be undone alone: give up
	return o->changed[1] ? CPL_EBUSY : 0;
}

static int
direct_report_cb(cpl_txn *txn, void *arg)
{
	direct_outer *o = arg;
	o->rv[0] = cpl_txn_direct(txn, direct_fn, &o->d[0], &o->changed[0]);
	o->rv[2] = cpl_txn_direct(txn, direct_fn, &o->d[2], &o->changed[2]);
	return 0;
}

static void
test_txn_direct(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t x = tu_task(e, "x", "dw", 0);
	uint32_t ax = tu_claim_task(e, lease, "dw", x);
	size_t hx = tu_history_len(e, x);

	direct_outer o;
	memset(&o, 0, sizeof o);
	o.d[0] = (direct_arg){ 0, lease, x, ax };
	o.d[1] = (direct_arg){ 1, lease, x, ax };
	o.d[2] = (direct_arg){ 2, lease, x, ax };
	o.d[3] = (direct_arg){ 3, lease, x, ax };
	TU_ERR(cpl_store_write(e->s, direct_outer_cb, &o), CPL_EBUSY);
	TU_ERR(o.rv_null, CPL_EINVAL);
	TU_ERR(o.rv[0], CPL_EINVAL);
	assert_false(o.changed[0]);
	TU_ERR(o.rv[1], CPL_EBUSY);
	assert_true(o.changed[1]); // the renewal, which moves no meta counter
	TU_OK(o.rv[2]);
	assert_false(o.changed[2]);
	// what a nested transaction inside changed counts too
	TU_ERR(o.rv[3], CPL_EBUSY);
	assert_true(o.changed[3]);
	// given up whole: x did not move (claimed, still READY)
	TU_STATE(e, x, CPL_READY);
	assert_int_equal(tu_history_len(e, x), hx);

	// without the renewal: the early failure leaves the rest to commit
	memset(o.rv, 0, sizeof o.rv);
	TU_OK(cpl_store_write(e->s, direct_report_cb, &o));
	TU_ERR(o.rv[0], CPL_EINVAL);
	assert_false(o.changed[0]);
	TU_OK(o.rv[2]);
	TU_STATE(e, x, CPL_STAGED_IN);
	assert_int_equal(tu_history_len(e, x), hx + 1);
	TU_COUNTS_CONSISTENT(e);
	TU_CHECK(e);
}

// A refusal inside a transaction: what came before and after stays.
typedef struct refuse_arg {
	uint64_t a, b, t;
	uint64_t lease;
	int rv_bad_create, rv_bad_report, rv_bad_dep, rv_bad_delete;
} refuse_arg;

static int
refuse_cb(cpl_txn *txn, void *arg)
{
	refuse_arg *r = arg;
	tu_spec sp;
	uint8_t u[16];
	tu_spec_init(&sp, "a", "w", "app");
	int rv = cpl_task_create(txn, &sp.spec, &r->a, u);
	if (rv)
		return rv;
	tu_spec_init(&sp, "bad", "w", "no-app");
	r->rv_bad_create = cpl_task_create(txn, &sp.spec, &r->b, u);
	cpl_report rep = { r->t, r->lease, 1, CPL_JOB_FINISHED, 0, NULL, NULL, false, 0 };
	r->rv_bad_report = cpl_task_report(txn, &rep);
	r->rv_bad_dep = cpl_dep_add(txn, r->a, r->a);
	r->rv_bad_delete = cpl_task_delete(txn, r->t);
	tu_spec_init(&sp, "b", "w", "app");
	tu_spec_parent(&sp, r->a);
	return cpl_task_create(txn, &sp.spec, &r->b, u);
}

static void
test_refusals_inside_txn(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t t = tu_task(e, "t", "tw", 0);
	tu_claim_task(e, lease, "tw", t);
	tu_snap before;
	tu_snap_take(e, t, &before);
	refuse_arg r;
	memset(&r, 0, sizeof r);
	r.t = t;
	r.lease = lease;
	TU_OK(cpl_store_write(e->s, refuse_cb, &r));
	TU_ERR(r.rv_bad_create, CPL_ENOTFOUND);
	TU_ERR(r.rv_bad_report, CPL_EBADSTATE);
	TU_ERR(r.rv_bad_dep, CPL_EINVAL);
	TU_ERR(r.rv_bad_delete, CPL_EBUSY);
	TU_STATE(e, r.a, CPL_READY);
	TU_STATE(e, r.b, CPL_AWAITING_PARENTS);
	cpl_task tt = tu_task_get(e, t);
	TU_EQ_STATE(tt.state, CPL_READY);
	TU_EQ_U64(tt.lease, lease);
	assert_int_equal(tu_history_len(e, t), before.hist);
	assert_int_equal(tu_stats(e).ntasks, 3);
	assert_int_equal(tu_stats(e).nevents, before.nevents + 2);
	TU_COUNTS_CONSISTENT(e);
}

// ------------------------------------------------------------ map

typedef struct batch_arg {
	int n, start;
	int created, calls, first_err;
	uint64_t last_id;
} batch_arg;

static int
batch_cb(cpl_txn *txn, void *arg)
{
	batch_arg *b = arg;
	b->calls++;
	b->created = 0; // computed afresh on a rerun
	b->first_err = 0;
	for (int i = 0; i < b->n; i++) {
		tu_spec sp;
		char name[32];
		snprintf(name, sizeof name, "task-%d", b->start + i);
		tu_spec_init(&sp, name, (b->start + i) % 2 ? "odd" : "even",
		    "app");
		sp.spec.args = "--a-fairly-long-argument-string to use some "
		               "space in the map --input data/file.dat";
		uint64_t id;
		uint8_t u[16];
		int rv = cpl_task_create(txn, &sp.spec, &id, u);
		if (rv != 0) {
			b->first_err = rv;
			return rv;
		}
		b->created++;
		b->last_id = id;
	}
	return 0;
}

static int
setup_small_map(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	e->opts.map_size = 1u << 20;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv == 0)
		rv = tu_app_put(e, "app", "/bin/true");
	if (rv != 0) {
		print_error("open with a 1 MiB map: %s (%s)\n", cpl_errname(rv),
		    cpl_strerror(rv));
		if (e->s)
			cpl_store_close(e->s);
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

static void
test_map_grows(void **state)
{
	tu_env *e = *state;
	enum { TOTAL = 50000, BATCH = 5000 };
	cpl_store_stats st0 = tu_stats(e);
	assert_true(st0.map_size <= (2u << 20));
	int calls = 0;
	for (int start = 0; start < TOTAL; start += BATCH) {
		batch_arg b = { BATCH, start, 0, 0, 0, 0 };
		int rv = cpl_store_write(e->s, batch_cb, &b);
		if (rv != 0)
			TU_FAIL("batch at %d: %s (%s), first error %s", start,
			    cpl_errname(rv), cpl_strerror(rv),
			    cpl_errname(b.first_err));
		assert_int_equal(b.created, BATCH);
		calls += b.calls;
	}
	cpl_store_stats st = tu_stats(e);
	TU_EQ_U64(st.ntasks, TOTAL);
	TU_EQ_U64(st.nevents, TOTAL);
	assert_true(st.map_size > (1u << 20));
	assert_true(st.used_bytes <= st.map_size);
	assert_true(st.file_bytes > (1u << 20));
	TU_EQ_U64(tu_count(e, CPL_READY), TOTAL);
	TU_COUNTS_CONSISTENT(e);
	tu_names l;
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(tu_names_count(&l, "odd"), TOTAL / 2);
	assert_int_equal(tu_names_count(&l, "even"), TOTAL / 2);
	// Names survived intact.
	cpl_filter f;
	memset(&f, 0, sizeof f);
	f.name = "task-49999";
	tu_ids got;
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 1);
	TU_CHECK(e);
	print_message("map grew from %llu to %llu bytes in %d callback runs "
	              "for %d batches\n",
	    (unsigned long long)st0.map_size, (unsigned long long)st.map_size,
	    calls, TOTAL / BATCH);
}

static int
setup_capped_map(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	e->opts.map_size = 1u << 20;
	e->opts.map_max = 2u << 20;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv == 0)
		rv = tu_app_put(e, "app", "/bin/true");
	if (rv != 0) {
		print_error("open with a capped map: %s (%s)\n",
		    cpl_errname(rv), cpl_strerror(rv));
		if (e->s)
			cpl_store_close(e->s);
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

// A map that may not grow further: CPL_EMAPFULL, that batch not written,
// everything before it intact and usable.
static void
test_map_full(void **state)
{
	tu_env *e = *state;
	int start = 0, rv = 0;
	uint64_t committed = 0;
	while (start < 200000) {
		batch_arg b = { 1000, start, 0, 0, 0, 0 };
		rv = cpl_store_write(e->s, batch_cb, &b);
		if (rv != 0)
			break;
		committed += 1000;
		start += 1000;
	}
	TU_ERR(rv, CPL_EMAPFULL);
	assert_true(committed > 0);
	cpl_store_stats st = tu_stats(e);
	TU_EQ_U64(st.ntasks, committed);
	assert_true(st.map_size <= (2u << 20));
	TU_COUNTS_CONSISTENT(e);
	TU_CHECK(e);
	// Reads work; one more small write either fits or is refused with
	// CPL_EMAPFULL, and nothing is half-written.
	cpl_task t;
	TU_OK(tu_get(e, 1, &t));
	tu_spec sp;
	tu_spec_init(&sp, "one-more", "w", "app");
	uint64_t id = 0;
	rv = tu_create_spec(e, &sp.spec, &id, NULL);
	TU_ERR2(rv, 0, CPL_EMAPFULL);
	TU_EQ_U64(tu_stats(e).ntasks, committed + (rv == 0));
	TU_COUNTS_CONSISTENT(e);
}

// cpl_txn_error: 0 after refusals and after a sub-transaction that failed
// on its own; non-zero once an LMDB-level failure (here: a map that cannot
// grow) has poisoned the transaction, which then commits nothing.
typedef struct poison_arg {
	int err_after_refusal, err_after_sub_refusal;
	int rv_sub, err_after_sub_full;
	int runs;
} poison_arg;

static int
refusing_sub(cpl_txn *txn, void *arg)
{
	(void)arg;
	tu_spec sp;
	tu_spec_init(&sp, "x", "w", "no-such-app");
	uint64_t id;
	uint8_t u[16];
	return cpl_task_create(txn, &sp.spec, &id, u);
}

static int
filling_sub(cpl_txn *txn, void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000000; i++) {
		tu_spec sp;
		tu_spec_init(&sp, "filler", "fill", "app");
		sp.spec.args = "--some arguments to take room in the map "
		               "--some arguments to take room in the map";
		uint64_t id;
		uint8_t u[16];
		int rv = cpl_task_create(txn, &sp.spec, &id, u);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int
poison_cb(cpl_txn *txn, void *arg)
{
	poison_arg *a = arg;
	a->runs++;
	tu_spec sp;
	tu_spec_init(&sp, "x", "w", "no-such-app");
	uint64_t id;
	uint8_t u[16];
	(void)cpl_task_create(txn, &sp.spec, &id, u);
	a->err_after_refusal = cpl_txn_error(txn);
	(void)cpl_txn_sub(txn, refusing_sub, NULL);
	a->err_after_sub_refusal = cpl_txn_error(txn);
	a->rv_sub = cpl_txn_sub(txn, filling_sub, NULL);
	a->err_after_sub_full = cpl_txn_error(txn);
	return 0; // the store must still not commit a poisoned transaction
}

static void
test_txn_error_poisoned(void **state)
{
	tu_env *e = *state;
	uint64_t before = tu_stats(e).ntasks;
	poison_arg a;
	memset(&a, 0, sizeof a);
	int rv = cpl_store_write(e->s, poison_cb, &a);
	TU_OK(a.err_after_refusal);
	TU_OK(a.err_after_sub_refusal);
	TU_REFUSED(a.rv_sub);
	if (a.err_after_sub_full == 0)
		TU_FAIL("sub-transaction failed with %s but cpl_txn_error is 0",
		    cpl_errname(a.rv_sub));
	TU_REFUSED(rv);
	TU_ERR(rv, CPL_EMAPFULL);
	TU_EQ_U64(tu_stats(e).ntasks, before);
	TU_COUNTS_CONSISTENT(e);
	// Writes that fit still work.
	uint64_t id = tu_task(e, "after", "w", 0);
	TU_STATE(e, id, CPL_READY);
}

typedef struct clean_arg {
	int err1, err2, rv_sub;
} clean_arg;

static int
clean_cb(cpl_txn *txn, void *arg)
{
	clean_arg *a = arg;
	a->rv_sub = cpl_txn_sub(txn, refusing_sub, NULL);
	a->err1 = cpl_txn_error(txn);
	uint64_t killed;
	(void)cpl_task_kill(txn, 999999, NULL, &killed);
	a->err2 = cpl_txn_error(txn);
	return 0;
}

static void
test_txn_error_clean(void **state)
{
	tu_env *e = *state;
	clean_arg a = { -1, -1, 0 };
	TU_OK(cpl_store_write(e->s, clean_cb, &a));
	TU_ERR(a.rv_sub, CPL_ENOTFOUND);
	TU_OK(a.err1);
	TU_OK(a.err2);
}

// ------------------------------------------------------------ lock, reopen

static void
test_lock_and_reopen(void **state)
{
	tu_env *e = *state; // durable: what is committed survives
	cpl_store *second = NULL;
	TU_ERR(cpl_store_open(e->dir, &e->opts, &second), CPL_ELOCKED);
	assert_null(second);
	uint64_t a = tu_task(e, "a", "w", 0);
	uint64_t b = tu_task(e, "b", "w", 1, a);
	uint64_t lease = tu_lease(e, TTL);
	uint32_t att = tu_claim_task(e, lease, "w", a);
	tu_run_to(e, a, lease, att, CPL_RUNNING);

	// Reopen: everything is there.
	tu_advance_ms(e, 10);
	TU_OK(tu_reopen(e));
	TU_ERR(cpl_store_open(e->dir, &e->opts, &second), CPL_ELOCKED);
	cpl_task t = tu_task_get(e, a);
	TU_EQ_STATE(t.state, CPL_RUNNING);
	TU_EQ_U64(t.lease, lease);
	assert_int_equal(t.attempt, att);
	TU_STATE(e, b, CPL_AWAITING_PARENTS);
	assert_int_equal(tu_history_len(e, a), 4);
	TU_CHECK(e);
	// Ids go on after the old ones.
	uint64_t c = tu_task(e, "c", "w", 0);
	assert_true(c > b);
	uint64_t l2 = tu_lease(e, TTL);
	assert_true(l2 > lease);
	// The work goes on.
	TU_OK(tu_report(e, a, lease, att, CPL_RUN_DONE));
	TU_OK(tu_report(e, a, lease, att, CPL_JOB_FINISHED));
	TU_STATE(e, b, CPL_READY);
	TU_COUNTS_CONSISTENT(e);
}

static void
test_open_errors(void **state)
{
	(void)state;
	cpl_store_opts o;
	memset(&o, 0, sizeof o);
	o.no_sync = true;
	cpl_store *s = NULL;
	TU_ERR(cpl_store_open("/tmp/copal-test-does-not-exist/x", &o, &s),
	    CPL_ENOTFOUND);
	assert_null(s);
}

// All-default options (map 1 GiB, durable, real clock) work.
static void
test_open_defaults(void **state)
{
	tu_env *e = *state;
	memset(&e->opts, 0, sizeof e->opts);
	TU_OK(tu_reopen(e));
	uint64_t id = tu_task(e, "t", "w", 0);
	cpl_task t = tu_task_get(e, id);
	// Real clock: some time after 2020.
	assert_true(t.created_us > 1577836800000000ull);
}

// ------------------------------------------------------------ threads

typedef struct snap_arg {
	tu_env *e;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int phase; // 1: reader has its snapshot; 2: writer done
	uint64_t before, after;
	int rv;
} snap_arg;

static int
count_cb(const cpl_task *t, void *arg)
{
	(void)t;
	(*(uint64_t *)arg)++;
	return 0;
}

static int
reader_cb(cpl_txn *txn, void *arg)
{
	snap_arg *a = arg;
	cpl_filter f;
	memset(&f, 0, sizeof f);
	a->before = 0;
	int rv = cpl_query(txn, &f, 0, 0, 0, count_cb, &a->before, NULL);
	pthread_mutex_lock(&a->mu);
	a->phase = 1;
	pthread_cond_broadcast(&a->cv);
	while (a->phase < 2)
		pthread_cond_wait(&a->cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
	a->after = 0;
	if (rv == 0)
		rv = cpl_query(txn, &f, 0, 0, 0, count_cb, &a->after, NULL);
	return rv;
}

static void *
reader_thread(void *arg)
{
	snap_arg *a = arg;
	a->rv = cpl_store_read(a->e->s, reader_cb, a);
	return NULL;
}

static void
test_reader_snapshot_beside_writer(void **state)
{
	tu_env *e = *state;
	for (int i = 0; i < 5; i++)
		tu_task(e, "t", "w", 0);
	snap_arg a;
	memset(&a, 0, sizeof a);
	a.e = e;
	pthread_mutex_init(&a.mu, NULL);
	pthread_cond_init(&a.cv, NULL);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_thread, &a), 0);
	pthread_mutex_lock(&a.mu);
	while (a.phase < 1)
		pthread_cond_wait(&a.cv, &a.mu);
	pthread_mutex_unlock(&a.mu);
	// The writer commits while the reader holds its snapshot.
	uint64_t ids[3];
	for (int i = 0; i < 3; i++)
		ids[i] = tu_task(e, "new", "w", 0);
	pthread_mutex_lock(&a.mu);
	a.phase = 2;
	pthread_cond_broadcast(&a.cv);
	pthread_mutex_unlock(&a.mu);
	pthread_join(th, NULL);
	TU_OK(a.rv);
	assert_int_equal(a.before, 5);
	assert_int_equal(a.after, 5); // its snapshot
	assert_int_equal(tu_stats(e).ntasks, 8);
	assert_true(ids[2] > ids[0]);
	pthread_mutex_destroy(&a.mu);
	pthread_cond_destroy(&a.cv);
}

typedef struct writer_arg {
	tu_env *e;
	int n;
	uint64_t ids[300];
	int rv;
} writer_arg;

static void *
writer_thread(void *arg)
{
	writer_arg *w = arg;
	for (int i = 0; i < w->n; i++) {
		tu_spec sp;
		tu_spec_init(&sp, "par", "par", "app");
		int rv = tu_create_spec(w->e, &sp.spec, &w->ids[i], NULL);
		if (rv != 0) {
			w->rv = rv;
			break;
		}
	}
	return NULL;
}

static void
test_concurrent_writers(void **state)
{
	tu_env *e = *state;
	writer_arg *w = calloc(3, sizeof *w);
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		w[i].e = e;
		w[i].n = 300;
		assert_int_equal(pthread_create(&th[i], NULL, writer_thread,
		                     &w[i]),
		    0);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 3; i++)
		TU_OK(w[i].rv);
	// 900 distinct ids, each increasing within its thread.
	uint64_t *all = calloc(900, sizeof *all);
	size_t n = 0;
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 300; k++) {
			if (k > 0)
				assert_true(w[i].ids[k] > w[i].ids[k - 1]);
			all[n++] = w[i].ids[k];
		}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_true(all[i] != all[j]);
	assert_int_equal(tu_stats(e).ntasks, 900);
	TU_COUNTS_CONSISTENT(e);
	free(all);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_abort_leaves_nothing,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_txn_sub, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_txn_direct, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_refusals_inside_txn,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_map_grows,
		    setup_small_map, tu_teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup_capped_map,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_txn_error_poisoned,
		    setup_capped_map, tu_teardown),
		cmocka_unit_test_setup_teardown(test_txn_error_clean, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_lock_and_reopen,
		    tu_setup_durable, tu_teardown),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(test_open_defaults, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_reader_snapshot_beside_writer, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers,
		    tu_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
