// Random sequences of operations (create with parents, claim, reports
// right and wrong, user changes, kills, deletes, new dependencies, lease
// renewals, expiry with the fake clock, releases, sub-transactions that
// fail). After each step the return code must be one the header allows;
// every few steps the stored counters must equal a recount, dependency
// counts and lease holdings must agree with the tasks, and
// cpl_store_check must pass.
#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NLEASES 3
#define MAXT 4096

typedef struct world {
	tu_env *e;
	uint64_t seed;
	uint64_t ids[MAXT]; // every id ever created (some deleted)
	size_t nids;
	uint64_t lease[NLEASES];
	uint32_t ttl[NLEASES];
	uint64_t deadline[NLEASES]; // our view of the deadline
	int steps;
	int applied, refused;
} world;

static uint64_t
rnd(world *w, uint64_t n)
{
	return n ? tu_rand(&w->seed) % n : 0;
}

static uint64_t
pick_id(world *w)
{
	return w->nids ? w->ids[rnd(w, w->nids)] : 1;
}

static void
new_lease(world *w, int k)
{
	w->ttl[k] = 2000 + (uint32_t)rnd(w, 8000);
	w->lease[k] = tu_lease(w->e, w->ttl[k]);
	w->deadline[k] = w->e->now_us + (uint64_t)w->ttl[k] * 1000;
}

// Live: before its deadline. Dead: after it. At the deadline itself,
// neither (the boundary is not asserted).
static bool
lease_live(world *w, int k)
{
	return w->lease[k] != 0 && w->e->now_us < w->deadline[k];
}

static bool
lease_dead(world *w, int k)
{
	return w->lease[k] != 0 && w->e->now_us > w->deadline[k];
}

// ------------------------------------------------------------ all tasks

typedef struct all_tasks {
	size_t n;
	cpl_task t[MAXT];
} all_tasks;

static int
all_fn(const cpl_task *t, void *arg)
{
	all_tasks *a = arg;
	if (a->n < MAXT)
		a->t[a->n++] = *t;
	return 0;
}

static int
all_cb(cpl_txn *txn, void *arg)
{
	all_tasks *a = arg;
	a->n = 0;
	cpl_filter f;
	memset(&f, 0, sizeof f);
	return cpl_query(txn, &f, 0, 0, 0, all_fn, a, NULL);
}

static const cpl_task *
find(const all_tasks *a, uint64_t id)
{
	size_t lo = 0, hi = a->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a->t[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->n && a->t[lo].id == id ? &a->t[lo] : NULL;
}

// Dependency counts and lease holdings agree with the tasks.
static void
check_invariants(world *w, all_tasks *a)
{
	tu_env *e = w->e;
	TU_OK(cpl_store_read(e->s, all_cb, a));
	uint32_t held[NLEASES] = { 0 };
	for (size_t i = 0; i < a->n; i++) {
		const cpl_task *t = &a->t[i];
		if (i > 0)
			assert_true(t->id > a->t[i - 1].id);
		if (cpl_state_is_final(t->state) && t->lease != 0)
			TU_FAIL("step %d: task %llu is %s but held by %llu",
			    w->steps, (unsigned long long)t->id,
			    tu_sname(t->state), (unsigned long long)t->lease);
		if (t->lease != 0) {
			int k = -1;
			for (int j = 0; j < NLEASES; j++)
				if (w->lease[j] == t->lease)
					k = j;
			if (k < 0) {
				cpl_lease l;
				int rv = tu_lease_get(e, t->lease, &l);
				TU_FAIL("step %d: task %llu (%s) held by lease "
				        "%llu, which is no longer ours (%s)",
				    w->steps, (unsigned long long)t->id,
				    tu_sname(t->state),
				    (unsigned long long)t->lease,
				    cpl_errname(rv));
			}
			held[k]++;
		}
		bool unstarted = t->state == CPL_AWAITING_PARENTS ||
		    ((t->state == CPL_READY ||
		         t->state == CPL_RESTART_READY) &&
		        t->lease == 0);
		if (!unstarted)
			continue;
		tu_ids par;
		TU_OK(tu_parents(e, t->id, &par));
		uint32_t open = 0;
		for (size_t k = 0; k < par.n; k++) {
			const cpl_task *p = find(a, par.id[k]);
			if (p == NULL)
				TU_FAIL("step %d: parent %llu of %llu missing",
				    w->steps, (unsigned long long)par.id[k],
				    (unsigned long long)t->id);
			if (p->state != CPL_JOB_FINISHED)
				open++;
		}
		if (t->pending_parents != open)
			TU_FAIL("step %d: task %llu (%s) pending_parents %u, "
			        "unfinished parents %u",
			    w->steps, (unsigned long long)t->id,
			    tu_sname(t->state), t->pending_parents, open);
		if ((t->state == CPL_AWAITING_PARENTS) != (open > 0))
			TU_FAIL("step %d: task %llu is %s with %u unfinished "
			        "parents",
			    w->steps, (unsigned long long)t->id,
			    tu_sname(t->state), open);
	}
	for (int k = 0; k < NLEASES; k++) {
		if (w->lease[k] == 0)
			continue;
		cpl_lease l;
		int rv = tu_lease_get(e, w->lease[k], &l);
		if (rv == CPL_ENOTFOUND) {
			// Expired by a sweep: it must hold nothing.
			assert_int_equal(held[k], 0);
			continue;
		}
		TU_OK(rv);
		if (l.ntasks != held[k])
			TU_FAIL("step %d: lease %llu says %u tasks, %u held",
			    w->steps, (unsigned long long)w->lease[k],
			    l.ntasks, held[k]);
	}
}

// ------------------------------------------------------------ steps

static void
op_create(world *w)
{
	if (w->nids >= MAXT - 8)
		return;
	tu_spec sp;
	char wf[8];
	snprintf(wf, sizeof wf, "w%d", (int)rnd(w, 4));
	tu_spec_init(&sp, "t", wf, "app");
	sp.spec.priority = (int32_t)rnd(w, 5) - 2;
	sp.res.node_packing_count = 1u << rnd(w, 3);
	sp.spec.auto_timeout_retry = rnd(w, 2);
	sp.spec.post_error_handler = rnd(w, 3) == 0;
	sp.spec.post_timeout_handler = rnd(w, 4) == 0;
	sp.spec.max_retries = (uint32_t)rnd(w, 3);
	int np = (int)rnd(w, 3);
	for (int i = 0; i < np && w->nids > 0; i++) {
		uint64_t p = pick_id(w);
		bool dup = false;
		for (size_t k = 0; k < sp.spec.n_parent_ids; k++)
			dup |= sp.parents[k] == p;
		if (!dup)
			tu_spec_parent(&sp, p);
	}
	uint64_t id = 0;
	int rv = tu_create_spec(w->e, &sp.spec, &id, NULL);
	if (rv == 0) {
		w->ids[w->nids++] = id;
		w->applied++;
	} else if (rv == CPL_ENOTFOUND) {
		w->refused++; // a deleted parent
	} else {
		TU_FAIL("step %d: create: %s (%s)", w->steps, cpl_errname(rv),
		    cpl_strerror(rv));
	}
}

static void
op_claim(world *w)
{
	int k = (int)rnd(w, NLEASES);
	if (w->lease[k] == 0)
		return;
	tu_claimed *cl = malloc(sizeof *cl);
	cpl_node_cap nodes[2] = { { CPL_NODE_UNITS, 0 },
		{ CPL_NODE_UNITS, 0 } };
	cpl_capacity cap;
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = 1 + (uint32_t)rnd(w, 5);
	cap.nodes = nodes;
	cap.nnodes = 2;
	if (rnd(w, 4) == 0) {
		static char wf[8];
		snprintf(wf, sizeof wf, "w%d", (int)rnd(w, 4));
		cap.workflow = wf;
	}
	int rv = tu_claim(w->e, w->lease[k], &cap, cl);
	if (lease_live(w, k)) {
		if (rv != 0)
			TU_FAIL("step %d: claim on a live lease: %s", w->steps,
			    cpl_errname(rv));
		for (size_t i = 0; i < cl->n; i++)
			if (cl->lease[i] != w->lease[k])
				TU_FAIL("step %d: claimed task %llu shows "
				        "lease %llu",
				    w->steps, (unsigned long long)cl->id[i],
				    (unsigned long long)cl->lease[i]);
	} else if (!lease_dead(w, k)) {
		// at the deadline: either way
	} else if (rv != 0 && rv != CPL_EEXPIRED && rv != CPL_ENOTFOUND) {
		TU_FAIL("step %d: claim on an old lease: %s", w->steps,
		    cpl_errname(rv));
	} else if (rv == 0 && cl->n > 0) {
		TU_FAIL("step %d: an expired lease claimed %zu tasks",
		    w->steps, cl->n);
	}
	free(cl);
}

static cpl_state
next_state(world *w, cpl_state s)
{
	switch (s) {
	case CPL_READY:
	case CPL_RESTART_READY:
		return rnd(w, 5) ? CPL_STAGED_IN : CPL_RUNNING;
	case CPL_STAGED_IN:
		return CPL_PREPROCESSED;
	case CPL_PREPROCESSED:
		return CPL_RUNNING;
	case CPL_RUNNING: {
		const cpl_state o[] = { CPL_RUN_DONE, CPL_RUN_DONE,
			CPL_RUN_DONE, CPL_RUN_DONE, CPL_RUN_DONE,
			CPL_RUN_ERROR, CPL_RUN_TIMEOUT, CPL_FAILED };
		return o[rnd(w, 8)];
	}
	case CPL_RUN_DONE:
		return rnd(w, 2) ? CPL_POSTPROCESSED : CPL_JOB_FINISHED;
	case CPL_POSTPROCESSED:
		return CPL_JOB_FINISHED;
	case CPL_RUN_ERROR:
	case CPL_RUN_TIMEOUT:
		return rnd(w, 3) ? CPL_RESTART_READY : CPL_FAILED;
	default:
		return (cpl_state)rnd(w, CPL_NSTATES);
	}
}

static void
op_report(world *w, all_tasks *a)
{
	TU_OK(cpl_store_read(w->e->s, all_cb, a));
	size_t nheld = 0;
	for (size_t i = 0; i < a->n; i++)
		nheld += a->t[i].lease != 0;
	if (nheld == 0)
		return;
	size_t pick = rnd(w, nheld);
	const cpl_task *t = NULL;
	for (size_t i = 0; i < a->n; i++)
		if (a->t[i].lease != 0 && pick-- == 0) {
			t = &a->t[i];
			break;
		}
	int k = -1;
	for (int j = 0; j < NLEASES; j++)
		if (w->lease[j] == t->lease)
			k = j;
	assert_true(k >= 0);
	cpl_state to = rnd(w, 10) < 8 ? next_state(w, t->state)
	                              : (cpl_state)rnd(w, CPL_NSTATES);
	uint32_t att = t->attempt;
	uint64_t lease = t->lease;
	int wrong = (int)rnd(w, 20);
	if (wrong == 0)
		att += 1;
	else if (wrong == 1)
		att -= 1;
	else if (wrong == 2)
		lease = w->lease[(k + 1) % NLEASES] ? w->lease[(k + 1) % NLEASES]
		                                    : 424242;
	tu_snap before;
	tu_snap_take(w->e, t->id, &before);
	int rv = tu_report(w->e, t->id, lease, att, to);
	char what[96];
	snprintf(what, sizeof what, "step %d: report %s -> %s", w->steps,
	    tu_sname(t->state), tu_sname(to));
	if (to == CPL_STATE_NONE) {
		// not a state at all
		if (rv != CPL_EINVAL && rv != CPL_EBADSTATE &&
		    rv != CPL_ESTALE)
			TU_FAIL("%s: %s", what, cpl_errname(rv));
	} else if (wrong <= 2) {
		// another attempt or another lease: stale
		if (lease_live(w, k))
			TU_ERR(rv, CPL_ESTALE);
		else
			TU_REFUSED(rv);
	} else if (lease_live(w, k)) {
		bool ok = cpl_transition_allowed(t->state, to, CPL_BY_LAUNCHER);
		if (ok && rv != 0)
			TU_FAIL("%s (allowed): %s (%s)", what, cpl_errname(rv),
			    cpl_strerror(rv));
		if (!ok && rv != CPL_EBADSTATE && rv != CPL_EINVAL)
			TU_FAIL("%s (refused by the table): %s", what,
			    cpl_errname(rv));
	}
	if (rv != 0) {
		tu_snap_same(w->e, t->id, &before, what);
		w->refused++;
	} else {
		w->applied++;
	}
}

static void
op_user(world *w)
{
	uint64_t id = pick_id(w);
	cpl_task t;
	int rv = tu_get(w->e, id, &t);
	cpl_state to = (cpl_state)(1 + rnd(w, CPL_NSTATES - 1));
	if (rnd(w, 2))
		to = rnd(w, 2) ? CPL_RESTART_READY : CPL_USER_KILLED;
	int rs = tu_set_state(w->e, id, to, "user");
	if (rv == CPL_ENOTFOUND) {
		TU_ERR(rs, CPL_ENOTFOUND);
		return;
	}
	TU_OK(rv);
	char what[96];
	snprintf(what, sizeof what, "step %d: user %s -> %s", w->steps,
	    tu_sname(t.state), tu_sname(to));
	bool ok = cpl_transition_allowed(t.state, to, CPL_BY_USER);
	if (t.lease != 0 && to != CPL_USER_KILLED) {
		if (rs != CPL_EBUSY && rs != CPL_EBADSTATE)
			TU_FAIL("%s (held): %s", what, cpl_errname(rs));
	} else if (t.lease == 0) {
		if (ok && rs != 0)
			TU_FAIL("%s (allowed): %s (%s)", what, cpl_errname(rs),
			    cpl_strerror(rs));
		if (!ok && rs != CPL_EBADSTATE)
			TU_FAIL("%s (refused): %s", what, cpl_errname(rs));
	}
	if (rs == 0)
		w->applied++;
	else
		w->refused++;
}

static void
op_kill(world *w)
{
	uint64_t id = pick_id(w);
	cpl_task t;
	int rv = tu_get(w->e, id, &t);
	uint64_t killed = 0;
	int rk = tu_kill(w->e, id, &killed);
	if (rv == CPL_ENOTFOUND) {
		TU_ERR(rk, CPL_ENOTFOUND);
		return;
	}
	TU_OK(rk);
	if (cpl_state_is_final(t.state))
		assert_int_equal(killed, 0);
	else
		assert_true(killed >= 1);
	TU_STATE(w->e, id, cpl_state_is_final(t.state) ? t.state
	                                                : CPL_USER_KILLED);
	if (t.lease != 0 && !cpl_state_is_final(t.state)) {
		// A notice is queued for its launcher; take them now and
		// then.
		for (int k = 0; k < NLEASES; k++)
			if (w->lease[k] == t.lease && rnd(w, 2)) {
				tu_ids n;
				TU_OK(tu_notices(w->e, t.lease, &n));
				assert_true(tu_ids_has(&n, id));
			}
	}
	w->applied++;
}

static void
op_delete(world *w)
{
	uint64_t id = pick_id(w);
	int rv = tu_delete(w->e, id);
	if (rv != 0 && rv != CPL_EINUSE && rv != CPL_EBUSY &&
	    rv != CPL_ENOTFOUND)
		TU_FAIL("step %d: delete: %s", w->steps, cpl_errname(rv));
	if (rv == 0) {
		cpl_task t;
		TU_ERR(tu_get(w->e, id, &t), CPL_ENOTFOUND);
		w->applied++;
	} else {
		w->refused++;
	}
}

static void
op_dep(world *w)
{
	uint64_t p = pick_id(w), c = pick_id(w);
	int rv = tu_dep_add(w->e, p, c);
	const int ok[] = { 0, CPL_ECYCLE, CPL_EEXISTS, CPL_EINVAL, CPL_EBUSY,
		CPL_EBADSTATE, CPL_ENOTFOUND };
	bool fine = false;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		fine |= rv == ok[i];
	if (!fine)
		TU_FAIL("step %d: dep_add: %s", w->steps, cpl_errname(rv));
	if (p == c)
		TU_ERR2(rv, CPL_EINVAL, CPL_ENOTFOUND);
	if (rv == 0)
		w->applied++;
	else
		w->refused++;
}

static void
op_time(world *w)
{
	tu_advance_ms(w->e, rnd(w, 700));
	int what = (int)rnd(w, 4);
	if (what == 0) {
		uint64_t nl = 0;
		TU_OK(tu_expire(w->e, &nl, NULL));
		for (int k = 0; k < NLEASES; k++)
			if (lease_dead(w, k)) {
				cpl_lease l;
				TU_ERR(tu_lease_get(w->e, w->lease[k], &l),
				    CPL_ENOTFOUND);
			}
	} else if (what == 1) {
		int k = (int)rnd(w, NLEASES);
		if (w->lease[k] == 0)
			return;
		int rv = tu_renew(w->e, w->lease[k], 0, NULL);
		if (lease_live(w, k))
			TU_OK(rv);
		else if (lease_dead(w, k))
			TU_ERR2(rv, CPL_EEXPIRED, CPL_ENOTFOUND);
		if (rv == 0)
			w->deadline[k] = w->e->now_us +
			    (uint64_t)w->ttl[k] * 1000;
	} else if (what == 2) {
		// Replace dead leases by new ones (old ones are swept first
		// so that no task is left pointing at a lease we forgot).
		for (int k = 0; k < NLEASES; k++)
			if (lease_dead(w, k)) {
				TU_OK(tu_expire(w->e, NULL, NULL));
				new_lease(w, k);
			}
	} else if (rnd(w, 8) == 0) {
		int k = (int)rnd(w, NLEASES);
		if (lease_live(w, k)) {
			TU_OK(tu_release(w->e, w->lease[k]));
			new_lease(w, k);
		}
	}
}

typedef struct sub_batch {
	int n, fail_at;
	int rvs[4];
	int made[4];
} sub_batch;

static int
sub_one(cpl_txn *txn, void *arg)
{
	int *made = arg;
	tu_spec sp;
	tu_spec_init(&sp, "sub", "wsub", "app");
	uint64_t id;
	uint8_t u[16];
	*made = 0;
	int rv = cpl_task_create(txn, &sp.spec, &id, u);
	if (rv == 0)
		*made = 1;
	return rv;
}

static int
sub_fail(cpl_txn *txn, void *arg)
{
	int rv = sub_one(txn, arg);
	return rv ? rv : CPL_EINTERNAL;
}

static int
batch_cb(cpl_txn *txn, void *arg)
{
	sub_batch *b = arg;
	for (int i = 0; i < b->n; i++)
		b->rvs[i] = cpl_txn_sub(txn, i == b->fail_at ? sub_fail : sub_one,
		    &b->made[i]);
	return 0;
}

static void
op_sub(world *w)
{
	sub_batch b;
	memset(&b, 0, sizeof b);
	b.n = 4;
	b.fail_at = (int)rnd(w, 4);
	uint64_t n0 = tu_stats(w->e).ntasks;
	TU_OK(cpl_store_write(w->e->s, batch_cb, &b));
	for (int i = 0; i < 4; i++)
		TU_ERR(b.rvs[i], i == b.fail_at ? CPL_EINTERNAL : 0);
	TU_EQ_U64(tu_stats(w->e).ntasks, n0 + 3);
}

static void
run(void **state, uint64_t seed, int nsteps)
{
	tu_env *e = *state;
	world *w = calloc(1, sizeof *w);
	all_tasks *a = malloc(sizeof *a);
	w->e = e;
	w->seed = seed;
	for (int k = 0; k < NLEASES; k++)
		new_lease(w, k);
	for (int i = 0; i < 20; i++)
		op_create(w);
	for (w->steps = 0; w->steps < nsteps; w->steps++) {
		int r = (int)rnd(w, 100);
		if (r < 15)
			op_create(w);
		else if (r < 27)
			op_claim(w);
		else if (r < 70)
			op_report(w, a);
		else if (r < 75)
			op_user(w);
		else if (r < 78)
			op_kill(w);
		else if (r < 82)
			op_delete(w);
		else if (r < 86)
			op_dep(w);
		else if (r < 96)
			op_time(w);
		else if (r < 98)
			op_sub(w);
		else
			TU_ERR2(tu_note(e, pick_id(w), "note"), 0,
			    CPL_ENOTFOUND);
		if (w->steps % 10 == 0)
			TU_COUNTS_CONSISTENT(e);
		if (w->steps % 50 == 0)
			check_invariants(w, a);
		if (w->steps % 250 == 0)
			TU_CHECK(e);
	}
	TU_COUNTS_CONSISTENT(e);
	check_invariants(w, a);
	TU_CHECK(e);
	// Let every lease run out and sweep: nothing is held any more.
	tu_advance_ms(e, 100000);
	TU_OK(tu_expire(e, NULL, NULL));
	TU_OK(cpl_store_read(e->s, all_cb, a));
	for (size_t i = 0; i < a->n; i++)
		if (a->t[i].lease != 0)
			TU_FAIL("after expiring all leases task %llu (%s) is "
			        "held by %llu",
			    (unsigned long long)a->t[i].id,
			    tu_sname(a->t[i].state),
			    (unsigned long long)a->t[i].lease);
	TU_COUNTS_CONSISTENT(e);
	uint64_t c[CPL_NSTATES];
	TU_OK(tu_counts(e, c));
	print_message("seed %llu: %d applied, %d refused; %zu tasks: "
	              "READY %llu FINISHED %llu FAILED %llu KILLED %llu/%llu "
	              "AWAITING %llu RESTART %llu\n",
	    (unsigned long long)seed, w->applied, w->refused, a->n,
	    (unsigned long long)c[CPL_READY],
	    (unsigned long long)c[CPL_JOB_FINISHED],
	    (unsigned long long)c[CPL_FAILED],
	    (unsigned long long)c[CPL_USER_KILLED],
	    (unsigned long long)c[CPL_PARENT_KILLED],
	    (unsigned long long)c[CPL_AWAITING_PARENTS],
	    (unsigned long long)c[CPL_RESTART_READY]);
	assert_true(w->applied > nsteps / 4);
	free(a);
	free(w);
}

static void
test_random_1(void **state)
{
	run(state, 0x1234567887654321ull, 5000);
}

static void
test_random_2(void **state)
{
	run(state, 0xdeadbeefcafef00dull, 5000);
}

static void
test_random_3(void **state)
{
	run(state, 42, 5000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_1, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_random_2, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_random_3, tu_setup,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
