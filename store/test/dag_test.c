// Dependencies: release of children when parents finish, PARENT_KILLED
// cascades on a multi-level DAG, cpl_dep_add refusals, children/parents
// walks.
//
// The DAG used throughout (each task in a workflow of its own, so a claim
// can pick exactly one):
//
//        A
//       | |
//      B   C        diamond A -> {B, C} -> D
//       | |
//        D
//        |
//        E -> F -> G   chain of depth 4 below the diamond (D E F G)
#include "copal/testing/util.h"

#include <stdlib.h>

#define TTL (3600u * 1000u)

typedef struct dag {
	uint64_t a, b, c, d, f1, f2, f3; // f1..f3 are E, F, G
} dag;

static void
make_dag(tu_env *e, dag *g)
{
	g->a = tu_task(e, "A", "wA", 0);
	g->b = tu_task(e, "B", "wB", 1, g->a);
	g->c = tu_task(e, "C", "wC", 1, g->a);
	g->d = tu_task(e, "D", "wD", 2, g->b, g->c);
	g->f1 = tu_task(e, "E", "wE", 1, g->d);
	g->f2 = tu_task(e, "F", "wF", 1, g->f1);
	g->f3 = tu_task(e, "G", "wG", 1, g->f2);
}

static void
expect(tu_env *e, uint64_t id, cpl_state s, uint32_t pending)
{
	cpl_task t = tu_task_get(e, id);
	if (t.state != s)
		TU_FAIL("task %llu is %s, expected %s", (unsigned long long)id,
		    tu_sname(t.state), tu_sname(s));
	if (s == CPL_AWAITING_PARENTS || s == CPL_READY)
		if (t.pending_parents != pending)
			TU_FAIL("task %llu has %u pending parents, expected %u",
			    (unsigned long long)id, t.pending_parents, pending);
}

// The last event of a task must be from -> to.
static void
last_event(tu_env *e, uint64_t id, cpl_state from, cpl_state to)
{
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_true(h->n > 0);
	TU_EQ_STATE(h->e[h->n - 1].ev.from, from);
	TU_EQ_STATE(h->e[h->n - 1].ev.to, to);
	free(h);
}

static void
test_dag_release(void **state)
{
	tu_env *e = *state;
	dag g;
	make_dag(e, &g);
	uint64_t lease = tu_lease(e, TTL);

	expect(e, g.a, CPL_READY, 0);
	expect(e, g.b, CPL_AWAITING_PARENTS, 1);
	expect(e, g.c, CPL_AWAITING_PARENTS, 1);
	expect(e, g.d, CPL_AWAITING_PARENTS, 2);
	expect(e, g.f1, CPL_AWAITING_PARENTS, 1);
	expect(e, g.f2, CPL_AWAITING_PARENTS, 1);
	expect(e, g.f3, CPL_AWAITING_PARENTS, 1);
	assert_int_equal(tu_count(e, CPL_AWAITING_PARENTS), 6);

	// Only A is claimable.
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, lease, 100, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], g.a);
	// A not finished yet (RUN_DONE): children still wait.
	tu_run_to(e, g.a, lease, cl->attempt[0], CPL_RUN_DONE);
	expect(e, g.b, CPL_AWAITING_PARENTS, 1);
	TU_OK(tu_report(e, g.a, lease, cl->attempt[0], CPL_JOB_FINISHED));
	expect(e, g.b, CPL_READY, 0);
	expect(e, g.c, CPL_READY, 0);
	expect(e, g.d, CPL_AWAITING_PARENTS, 2);
	last_event(e, g.b, CPL_AWAITING_PARENTS, CPL_READY);
	last_event(e, g.c, CPL_AWAITING_PARENTS, CPL_READY);
	TU_COUNTS_CONSISTENT(e);

	tu_finish(e, lease, "wB", g.b);
	expect(e, g.d, CPL_AWAITING_PARENTS, 1);
	tu_finish(e, lease, "wC", g.c);
	expect(e, g.d, CPL_READY, 0);
	last_event(e, g.d, CPL_AWAITING_PARENTS, CPL_READY);
	expect(e, g.f1, CPL_AWAITING_PARENTS, 1);

	tu_finish(e, lease, "wD", g.d);
	expect(e, g.f1, CPL_READY, 0);
	expect(e, g.f2, CPL_AWAITING_PARENTS, 1);
	tu_finish(e, lease, "wE", g.f1);
	expect(e, g.f2, CPL_READY, 0);
	expect(e, g.f3, CPL_AWAITING_PARENTS, 1);
	tu_finish(e, lease, "wF", g.f2);
	expect(e, g.f3, CPL_READY, 0);
	tu_finish(e, lease, "wG", g.f3);
	assert_int_equal(tu_count(e, CPL_JOB_FINISHED), 7);
	assert_int_equal(tu_count(e, CPL_AWAITING_PARENTS), 0);
	assert_int_equal(tu_count(e, CPL_READY), 0);
	TU_COUNTS_CONSISTENT(e);
	free(cl);
}

static void
test_dag_root_fails_cascades(void **state)
{
	tu_env *e = *state;
	dag g;
	make_dag(e, &g);
	uint64_t lease = tu_lease(e, TTL);
	uint32_t a = tu_claim_task(e, lease, "wA", g.a);
	tu_run_to(e, g.a, lease, a, CPL_RUNNING);
	// RUN_ERROR without an error handler -> FAILED -> cascade.
	TU_OK(tu_report_full(e, g.a, lease, a, CPL_RUN_ERROR, 3, "boom"));
	expect(e, g.a, CPL_FAILED, 0);
	const uint64_t desc[] = { g.b, g.c, g.d, g.f1, g.f2, g.f3 };
	for (size_t i = 0; i < 6; i++) {
		expect(e, desc[i], CPL_PARENT_KILLED, 0);
		last_event(e, desc[i], CPL_AWAITING_PARENTS, CPL_PARENT_KILLED);
		// One event per transition: created, killed.
		assert_int_equal(tu_history_len(e, desc[i]), 2);
	}
	assert_int_equal(tu_count(e, CPL_FAILED), 1);
	assert_int_equal(tu_count(e, CPL_PARENT_KILLED), 6);
	TU_COUNTS_CONSISTENT(e);
	// Nothing is claimable.
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, lease, 100, cl));
	assert_int_equal(cl->n, 0);
	free(cl);
}

static void
test_dag_middle_fails(void **state)
{
	tu_env *e = *state;
	dag g;
	make_dag(e, &g);
	uint64_t lease = tu_lease(e, TTL);
	tu_finish(e, lease, "wA", g.a);
	tu_finish(e, lease, "wB", g.b);
	uint32_t a = tu_claim_task(e, lease, "wC", g.c);
	TU_OK(tu_report(e, g.c, lease, a, CPL_FAILED));
	expect(e, g.a, CPL_JOB_FINISHED, 0);
	expect(e, g.b, CPL_JOB_FINISHED, 0);
	expect(e, g.c, CPL_FAILED, 0);
	expect(e, g.d, CPL_PARENT_KILLED, 0);
	expect(e, g.f1, CPL_PARENT_KILLED, 0);
	expect(e, g.f2, CPL_PARENT_KILLED, 0);
	expect(e, g.f3, CPL_PARENT_KILLED, 0);
	assert_int_equal(tu_count(e, CPL_PARENT_KILLED), 4);
	assert_int_equal(tu_count(e, CPL_JOB_FINISHED), 2);
	TU_COUNTS_CONSISTENT(e);
}

static void
test_dag_user_kill_cascades(void **state)
{
	tu_env *e = *state;
	dag g;
	make_dag(e, &g);
	uint64_t lease = tu_lease(e, TTL);
	tu_finish(e, lease, "wA", g.a);
	// Kill B while READY and unheld.
	uint64_t killed = 0;
	TU_OK(tu_kill(e, g.b, &killed));
	assert_int_equal(killed, 5); // B, D, E, F, G
	expect(e, g.b, CPL_USER_KILLED, 0);
	expect(e, g.c, CPL_READY, 0);
	expect(e, g.d, CPL_PARENT_KILLED, 0);
	expect(e, g.f1, CPL_PARENT_KILLED, 0);
	expect(e, g.f2, CPL_PARENT_KILLED, 0);
	expect(e, g.f3, CPL_PARENT_KILLED, 0);
	last_event(e, g.b, CPL_READY, CPL_USER_KILLED);
	// No notice: B was not held.
	tu_ids n;
	TU_OK(tu_notices(e, lease, &n));
	assert_int_equal(n.n, 0);
	// C still runs to the end; D stays killed.
	tu_finish(e, lease, "wC", g.c);
	expect(e, g.d, CPL_PARENT_KILLED, 0);
	// Killing a final task changes nothing.
	TU_OK(tu_kill(e, g.d, &killed));
	assert_int_equal(killed, 0);
	expect(e, g.d, CPL_PARENT_KILLED, 0);
	TU_OK(tu_kill(e, g.a, &killed));
	assert_int_equal(killed, 0);
	expect(e, g.a, CPL_JOB_FINISHED, 0);
	TU_ERR(tu_kill(e, 999999, &killed), CPL_ENOTFOUND);
	TU_COUNTS_CONSISTENT(e);
}

typedef struct revive_arg {
	uint64_t id, n;
} revive_arg;

static int
revive_cb(cpl_txn *txn, void *arg)
{
	revive_arg *a = arg;
	return cpl_task_revive(txn, a->id, &a->n);
}

// Restarting a killed task and reviving: its PARENT_KILLED descendants
// whose parents are alive again go back through RESTART_READY to
// AWAITING_PARENTS, with the pending counts they had; one with another
// dead parent stays; the diamond's sink is revived once both sides are.
static void
test_dag_revive(void **state)
{
	tu_env *e = *state;
	dag g;
	make_dag(e, &g);
	uint64_t lease = tu_lease(e, TTL);
	uint64_t x = tu_task(e, "X", "wX", 0);          // another parent of G
	TU_OK(tu_dep_add(e, x, g.f3));
	uint64_t killed = 0;
	TU_OK(tu_kill(e, x, &killed));
	TU_OK(tu_kill(e, g.a, &killed));
	expect(e, g.d, CPL_PARENT_KILLED, 0);
	expect(e, g.f3, CPL_PARENT_KILLED, 0);
	TU_OK(tu_set_state(e, g.a, CPL_RESTART_READY, NULL));
	revive_arg ra = { g.a, 0 };
	TU_OK(cpl_store_write(e->s, revive_cb, &ra));
	assert_int_equal(ra.n, 5); // B, C, D, E, F; not G (X is dead)
	expect(e, g.a, CPL_RESTART_READY, 0);
	expect(e, g.b, CPL_AWAITING_PARENTS, 1);
	expect(e, g.c, CPL_AWAITING_PARENTS, 1);
	expect(e, g.d, CPL_AWAITING_PARENTS, 2);
	expect(e, g.f1, CPL_AWAITING_PARENTS, 1);
	expect(e, g.f2, CPL_AWAITING_PARENTS, 1);
	expect(e, g.f3, CPL_PARENT_KILLED, 0);
	last_event(e, g.d, CPL_RESTART_READY, CPL_AWAITING_PARENTS);
	// then X: G follows
	TU_OK(tu_set_state(e, x, CPL_RESTART_READY, NULL));
	ra.id = x;
	TU_OK(cpl_store_write(e->s, revive_cb, &ra));
	assert_int_equal(ra.n, 1);
	expect(e, g.f3, CPL_AWAITING_PARENTS, 2);
	// and it all runs to the end
	tu_finish(e, lease, "wA", g.a);
	tu_finish(e, lease, "wX", x);
	tu_finish(e, lease, "wB", g.b);
	tu_finish(e, lease, "wC", g.c);
	tu_finish(e, lease, "wD", g.d);
	tu_finish(e, lease, "wE", g.f1);
	tu_finish(e, lease, "wF", g.f2);
	tu_finish(e, lease, "wG", g.f3);
	expect(e, g.f3, CPL_JOB_FINISHED, 0);
	// nothing to revive: 0; an unknown task: CPL_ENOTFOUND
	ra.id = g.a;
	TU_OK(cpl_store_write(e->s, revive_cb, &ra));
	assert_int_equal(ra.n, 0);
	ra.id = 999999;
	TU_ERR(cpl_store_write(e->s, revive_cb, &ra), CPL_ENOTFOUND);
	TU_COUNTS_CONSISTENT(e);
}

// A kill of a running task with running siblings: the killed one gets a
// notice, its descendants die, the sibling finishes normally.
static void
test_dag_kill_running(void **state)
{
	tu_env *e = *state;
	dag g;
	make_dag(e, &g);
	uint64_t lease = tu_lease(e, TTL);
	tu_finish(e, lease, "wA", g.a);
	uint32_t ab = tu_claim_task(e, lease, "wB", g.b);
	uint32_t ac = tu_claim_task(e, lease, "wC", g.c);
	tu_run_to(e, g.b, lease, ab, CPL_RUNNING);
	tu_run_to(e, g.c, lease, ac, CPL_RUNNING);
	uint64_t killed = 0;
	TU_OK(tu_kill(e, g.c, &killed));
	assert_int_equal(killed, 5); // C, D, E, F, G
	cpl_task t = tu_task_get(e, g.c);
	TU_EQ_STATE(t.state, CPL_USER_KILLED);
	TU_EQ_U64(t.lease, 0);
	tu_ids n;
	TU_OK(tu_notices(e, lease, &n));
	assert_int_equal(n.n, 1);
	assert_int_equal(n.id[0], g.c);
	// Taken: gone.
	TU_OK(tu_notices(e, lease, &n));
	assert_int_equal(n.n, 0);
	// The launcher's late report for C is refused.
	tu_snap before;
	tu_snap_take(e, g.c, &before);
	TU_REFUSED(tu_report(e, g.c, lease, ac, CPL_RUN_DONE));
	tu_snap_same(e, g.c, &before, "report for a killed task");
	// B goes on.
	tu_run_to(e, g.b, lease, ab, CPL_RUN_DONE);
	TU_OK(tu_report(e, g.b, lease, ab, CPL_JOB_FINISHED));
	expect(e, g.d, CPL_PARENT_KILLED, 0);
	cpl_lease l;
	TU_OK(tu_lease_get(e, lease, &l));
	assert_int_equal(l.ntasks, 0);
	TU_COUNTS_CONSISTENT(e);
}

// A wide fan-out/fan-in: 50 parents, one child; the child waits for all.
static void
test_dag_fan_in(void **state)
{
	tu_env *e = *state;
	enum { N = 50 };
	uint64_t p[N];
	for (int i = 0; i < N; i++)
		p[i] = tu_task(e, "p", "fan", 0);
	// Build the child with tu_spec: up to 16 parents per spec, the rest
	// with cpl_dep_add.
	tu_spec sp;
	tu_spec_init(&sp, "sink", "sink", "app");
	for (int i = 0; i < TU_MAX_PARENTS; i++)
		tu_spec_parent(&sp, p[i]);
	uint64_t sink = tu_task_spec(e, &sp);
	for (int i = TU_MAX_PARENTS; i < N; i++)
		TU_OK(tu_dep_add(e, p[i], sink));
	expect(e, sink, CPL_AWAITING_PARENTS, N);
	tu_ids par;
	TU_OK(tu_parents(e, sink, &par));
	assert_int_equal(par.n, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(par.id[i], p[i]); // id order
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_wf(e, lease, "fan", N, cl));
	assert_int_equal(cl->n, N);
	for (size_t i = 0; i < cl->n; i++) {
		tu_run_to(e, cl->id[i], lease, cl->attempt[i],
		    CPL_JOB_FINISHED);
		expect(e, sink, i + 1 == N ? CPL_READY : CPL_AWAITING_PARENTS,
		    (uint32_t)(N - i - 1));
	}
	free(cl);
	TU_COUNTS_CONSISTENT(e);
}

// ------------------------------------------------------------ dep_add

static void
test_dep_add_refusals(void **state)
{
	tu_env *e = *state;
	uint64_t a = tu_task(e, "a", "w1", 0);
	uint64_t b = tu_task(e, "b", "w2", 1, a);
	uint64_t c = tu_task(e, "c", "w3", 1, b);
	uint64_t x = tu_task(e, "x", "w4", 0);
	tu_snap sa, sb;

	// Cycles, direct and through the chain.
	tu_snap_take(e, a, &sa);
	TU_ERR(tu_dep_add(e, c, a), CPL_ECYCLE);
	TU_ERR(tu_dep_add(e, b, a), CPL_ECYCLE);
	tu_snap_same(e, a, &sa, "dep_add making a cycle");
	// Self.
	TU_ERR(tu_dep_add(e, a, a), CPL_EINVAL);
	tu_snap_same(e, a, &sa, "dep_add to itself");
	// Duplicate.
	tu_snap_take(e, b, &sb);
	TU_ERR(tu_dep_add(e, a, b), CPL_EEXISTS);
	tu_snap_same(e, b, &sb, "duplicate dep_add");
	// Unknown parent or child.
	TU_ERR(tu_dep_add(e, 99999, b), CPL_ENOTFOUND);
	TU_ERR(tu_dep_add(e, a, 99999), CPL_ENOTFOUND);
	tu_snap_same(e, b, &sb, "dep_add of unknown");
	// Links unchanged.
	tu_ids l;
	TU_OK(tu_children(e, a, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.id[0], b);
	TU_OK(tu_parents(e, a, &l));
	assert_int_equal(l.n, 0);
	TU_OK(tu_children(e, c, &l));
	assert_int_equal(l.n, 0);

	// A started child (held, RUNNING) is refused.
	uint64_t lease = tu_lease(e, TTL);
	uint32_t ax = tu_claim_task(e, lease, "w4", x);
	tu_run_to(e, x, lease, ax, CPL_RUNNING);
	tu_snap sx;
	tu_snap_take(e, x, &sx);
	TU_ERR2(tu_dep_add(e, a, x), CPL_EBUSY, CPL_EBADSTATE);
	tu_snap_same(e, x, &sx, "dep_add to a running child");
	// Held but not started (claimed READY) is also refused.
	uint64_t y = tu_task(e, "y", "w5", 0);
	tu_claim_task(e, lease, "w5", y);
	tu_snap_take(e, y, &sx);
	TU_ERR2(tu_dep_add(e, a, y), CPL_EBUSY, CPL_EBADSTATE);
	tu_snap_same(e, y, &sx, "dep_add to a claimed child");
	// A finished child is refused.
	tu_run_to(e, x, lease, ax, CPL_JOB_FINISHED);
	tu_snap_take(e, x, &sx);
	TU_ERR2(tu_dep_add(e, a, x), CPL_EBUSY, CPL_EBADSTATE);
	tu_snap_same(e, x, &sx, "dep_add to a finished child");
	TU_OK(tu_children(e, a, &l));
	assert_int_equal(l.n, 1);
	TU_COUNTS_CONSISTENT(e);
}

static void
test_dep_add_effects(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t p_open = tu_task(e, "open", "w1", 0);
	uint64_t p_done = tu_task(e, "done", "w2", 0);
	tu_finish(e, lease, "w2", p_done);
	uint64_t k1 = tu_task(e, "k1", "w3", 0);
	uint64_t k2 = tu_task(e, "k2", "w4", 0);

	// A READY child with a new unfinished parent waits for it.
	TU_OK(tu_dep_add(e, p_open, k1));
	expect(e, k1, CPL_AWAITING_PARENTS, 1);
	last_event(e, k1, CPL_READY, CPL_AWAITING_PARENTS);
	// A finished parent changes nothing.
	TU_OK(tu_dep_add(e, p_done, k2));
	expect(e, k2, CPL_READY, 0);
	TU_OK(tu_dep_add(e, p_done, k1));
	expect(e, k1, CPL_AWAITING_PARENTS, 1);
	// A waiting child with another unfinished parent waits for both.
	uint64_t p2 = tu_task(e, "p2", "w5", 0);
	TU_OK(tu_dep_add(e, p2, k1));
	expect(e, k1, CPL_AWAITING_PARENTS, 2);
	tu_ids l;
	TU_OK(tu_parents(e, k1, &l));
	assert_int_equal(l.n, 3);
	assert_int_equal(l.id[0], p_open);
	assert_int_equal(l.id[1], p_done);
	assert_int_equal(l.id[2], p2);
	TU_OK(tu_children(e, p_done, &l));
	assert_int_equal(l.n, 2);
	assert_int_equal(l.id[0], k1);
	assert_int_equal(l.id[1], k2);
	// k1 not claimable while it waits.
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_wf(e, lease, "w3", 10, cl));
	assert_int_equal(cl->n, 0);
	tu_finish(e, lease, "w1", p_open);
	expect(e, k1, CPL_AWAITING_PARENTS, 1);
	tu_finish(e, lease, "w5", p2);
	expect(e, k1, CPL_READY, 0);
	TU_OK(tu_claim_wf(e, lease, "w3", 10, cl));
	assert_int_equal(cl->n, 1);
	free(cl);
	TU_COUNTS_CONSISTENT(e);
}

// Cycle detection through a long chain and across a diamond.
static void
test_dep_add_cycle_long(void **state)
{
	tu_env *e = *state;
	enum { N = 60 };
	uint64_t id[N];
	id[0] = tu_task(e, "c0", "chain", 0);
	for (int i = 1; i < N; i++)
		id[i] = tu_task(e, "c", "chain", 1, id[i - 1]);
	for (int i = 0; i < N - 1; i += 7)
		TU_ERR(tu_dep_add(e, id[N - 1], id[i]), CPL_ECYCLE);
	TU_ERR(tu_dep_add(e, id[30], id[29]), CPL_ECYCLE);
	// Forward shortcuts are fine (not cycles).
	TU_OK(tu_dep_add(e, id[0], id[N - 1]));
	TU_OK(tu_dep_add(e, id[10], id[40]));
	expect(e, id[N - 1], CPL_AWAITING_PARENTS, 2);
	TU_ERR(tu_dep_add(e, id[40], id[10]), CPL_ECYCLE);
	TU_COUNTS_CONSISTENT(e);
}

static int
stop_at_second(uint64_t id, void *arg)
{
	int *n = arg;
	(void)id;
	return ++*n == 2 ? 77 : 0;
}

typedef struct walk_stop {
	uint64_t id;
	int n;
	int parents;
} walk_stop;

static int
walk_stop_cb(cpl_txn *txn, void *arg)
{
	walk_stop *w = arg;
	w->n = 0;
	return w->parents ? cpl_task_parents(txn, w->id, stop_at_second, &w->n)
	                  : cpl_task_children(txn, w->id, stop_at_second,
	                        &w->n);
}

static void
test_children_parents_walk(void **state)
{
	tu_env *e = *state;
	uint64_t p = tu_task(e, "p", "w", 0);
	uint64_t q = tu_task(e, "q", "w", 0);
	uint64_t r = tu_task(e, "r", "w", 0);
	uint64_t k[5];
	for (int i = 0; i < 5; i++)
		k[i] = tu_task(e, "k", "w", 3, r, p, q);
	tu_ids l;
	TU_OK(tu_children(e, p, &l));
	assert_int_equal(l.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(l.id[i], k[i]);
	TU_OK(tu_parents(e, k[2], &l));
	assert_int_equal(l.n, 3);
	assert_int_equal(l.id[0], p);
	assert_int_equal(l.id[1], q);
	assert_int_equal(l.id[2], r);
	// A non-zero return stops the walk and is returned.
	walk_stop w = { p, 0, 0 };
	TU_ERR(cpl_store_read(e->s, walk_stop_cb, &w), 77);
	assert_int_equal(w.n, 2);
	w = (walk_stop){ k[0], 0, 1 };
	TU_ERR(cpl_store_read(e->s, walk_stop_cb, &w), 77);
	assert_int_equal(w.n, 2);
	// Unknown task (the header names no error): nothing walked.
	TU_ERR2(tu_children(e, 99999, &l), 0, CPL_ENOTFOUND);
	assert_int_equal(l.n, 0);
	TU_ERR2(tu_parents(e, 99999, &l), 0, CPL_ENOTFOUND);
	assert_int_equal(l.n, 0);
	// A leaf has no children.
	TU_OK(tu_children(e, k[4], &l));
	assert_int_equal(l.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dag_release, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_dag_root_fails_cascades,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_dag_middle_fails, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_dag_user_kill_cascades,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_dag_kill_running, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_dag_fan_in, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_dep_add_refusals, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_dep_add_effects, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_dep_add_cycle_long,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_children_parents_walk,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_dag_revive, tu_setup,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
