// Claims: priority order, capacity fit (packing units, whole nodes for
// multi-node tasks, GPUs, wall time), workflow filter, max_tasks, holding
// and attempts, and that no task is ever given to two leases.
#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL (3600u * 1000u)

static uint64_t
task_p(tu_env *e, const char *wf, int32_t prio, uint32_t packing,
    uint32_t nodes, uint32_t gpus_per_rank, uint32_t wall)
{
	tu_spec sp;
	tu_spec_init(&sp, "t", wf, "app");
	sp.spec.priority = prio;
	sp.res.node_packing_count = packing;
	sp.res.num_nodes = nodes;
	sp.res.gpus_per_rank = gpus_per_rank;
	sp.res.wall_time_minutes = wall;
	return tu_task_spec(e, &sp);
}

static cpl_capacity
cap_of(cpl_node_cap *nodes, size_t n, uint32_t max)
{
	cpl_capacity c;
	memset(&c, 0, sizeof c);
	c.max_tasks = max;
	c.nodes = nodes;
	c.nnodes = n;
	return c;
}

static void
test_claim_priority_order(void **state)
{
	tu_env *e = *state;
	const int32_t prio[] = { 0, 5, -3, 5, 10, 0, -3, 7, 10, -100 };
	enum { N = sizeof prio / sizeof prio[0] };
	uint64_t id[N];
	for (int i = 0; i < N; i++)
		id[i] = task_p(e, "wf", prio[i], 1, 1, 0, 0);
	// Expected: priority descending, then id ascending.
	int order[N];
	for (int i = 0; i < N; i++)
		order[i] = i;
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++) {
			int a = order[i], b = order[j];
			if (prio[b] > prio[a] || (prio[b] == prio[a] && b < a)) {
				order[i] = b;
				order[j] = a;
			}
		}
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	// Two at a time: each claim takes the best two that are left.
	size_t k = 0;
	while (k < N) {
		TU_OK(tu_claim_n(e, lease, 2, cl));
		assert_int_equal(cl->n, k + 2 <= N ? 2 : N - k);
		assert_int_equal(cl->nclaimed, cl->n);
		for (size_t i = 0; i < cl->n; i++, k++) {
			if (cl->id[i] != id[order[k]])
				TU_FAIL("claim #%zu: got task %llu (priority "
				        "%d), expected %llu (priority %d)",
				    k, (unsigned long long)cl->id[i],
				    cl->priority[i],
				    (unsigned long long)id[order[k]],
				    prio[order[k]]);
			assert_int_equal(cl->priority[i], prio[order[k]]);
		}
	}
	TU_OK(tu_claim_n(e, lease, 2, cl));
	assert_int_equal(cl->n, 0);
	assert_int_equal(cl->nclaimed, 0);
	free(cl);
}

// All in one claim: the callback sees them in priority order too.
static void
test_claim_order_one_call(void **state)
{
	tu_env *e = *state;
	uint64_t lo = task_p(e, "wf", -1, 1, 1, 0, 0);
	uint64_t hi = task_p(e, "wf", 9, 1, 1, 0, 0);
	uint64_t mid1 = task_p(e, "wf", 3, 1, 1, 0, 0);
	uint64_t mid2 = task_p(e, "wf", 3, 1, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, lease, 10, cl));
	assert_int_equal(cl->n, 4);
	assert_int_equal(cl->id[0], hi);
	assert_int_equal(cl->id[1], mid1);
	assert_int_equal(cl->id[2], mid2);
	assert_int_equal(cl->id[3], lo);
	free(cl);
}

static void
test_claim_holds_and_attempts(void **state)
{
	tu_env *e = *state;
	enum { N = 10 };
	uint64_t id[N];
	for (int i = 0; i < N; i++)
		id[i] = task_p(e, "wf", 0, 1, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	tu_claimed *cl2 = calloc(1, sizeof *cl2);
	TU_OK(tu_claim_n(e, lease, 3, cl));
	assert_int_equal(cl->n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cl->id[i], id[i]);
		assert_int_equal(cl->attempt[i], 1);
		TU_EQ_U64(cl->lease[i], lease);
		cpl_task t = tu_task_get(e, id[i]);
		TU_EQ_STATE(t.state, CPL_READY);
		assert_int_equal(t.attempt, 1);
		TU_EQ_U64(t.lease, lease);
	}
	cpl_lease l;
	TU_OK(tu_lease_get(e, lease, &l));
	assert_int_equal(l.ntasks, 3);
	// Claimed tasks are not in the next claim.
	TU_OK(tu_claim_n(e, lease, 3, cl2));
	assert_int_equal(cl2->n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cl2->id[i], id[3 + i]);
		for (size_t j = 0; j < 3; j++)
			assert_true(cl2->id[i] != cl->id[j]);
	}
	TU_OK(tu_lease_get(e, lease, &l));
	assert_int_equal(l.ntasks, 6);
	// Unclaimed ones are unheld with attempt 0.
	cpl_task t = tu_task_get(e, id[9]);
	assert_int_equal(t.attempt, 0);
	TU_EQ_U64(t.lease, 0);
	// A claim does not change the state counters.
	assert_int_equal(tu_count(e, CPL_READY), N);
	TU_COUNTS_CONSISTENT(e);

	// Attempt increments on each claim: fail, restart (user), claim.
	uint64_t x = id[0];
	uint32_t att = cl->attempt[0];
	for (uint32_t round = 2; round <= 4; round++) {
		TU_OK(tu_report(e, x, lease, att, CPL_FAILED));
		TU_OK(tu_set_state(e, x, CPL_RESTART_READY, "retry"));
		TU_STATE(e, x, CPL_RESTART_READY);
		TU_OK(tu_claim_n(e, lease, 1, cl));
		assert_int_equal(cl->n, 1);
		assert_int_equal(cl->id[0], x);
		assert_int_equal(cl->attempt[0], round);
		TU_EQ_STATE(cl->state[0], CPL_RESTART_READY);
		att = cl->attempt[0];
		assert_int_equal(tu_task_get(e, x).attempt, round);
	}
	free(cl);
	free(cl2);
}

static void
test_claim_packing_units(void **state)
{
	tu_env *e = *state;
	enum { N = 10 };
	for (int i = 0; i < N; i++)
		task_p(e, "wf", 0, 4, 1, 0, 0); // a quarter node each
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap nodes[2] = { { CPL_NODE_UNITS, 0 },
		{ CPL_NODE_UNITS, 0 } };
	cpl_capacity cap = cap_of(nodes, 1, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 4);
	assert_int_equal(nodes[0].free_units, 0);
	for (size_t i = 0; i < cl->n; i++) {
		assert_int_equal(cl->nnodes[i], 1);
		assert_int_equal(cl->nodes[i][0], 0);
	}
	// Two nodes, one of them three-quarters free: 3 + 4 = 7 would fit,
	// but only 6 are left.
	nodes[0].free_units = CPL_NODE_UNITS / 4 * 3;
	nodes[1].free_units = CPL_NODE_UNITS;
	cap = cap_of(nodes, 2, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 6);
	int on[2] = { 0, 0 };
	for (size_t i = 0; i < cl->n; i++) {
		assert_int_equal(cl->nnodes[i], 1);
		assert_true(cl->nodes[i][0] < 2);
		on[cl->nodes[i][0]]++;
	}
	assert_true(on[0] <= 3 && on[1] <= 4);
	assert_int_equal(nodes[0].free_units,
	    CPL_NODE_UNITS / 4 * 3 - (uint32_t)on[0] * (CPL_NODE_UNITS / 4));
	assert_int_equal(nodes[1].free_units,
	    CPL_NODE_UNITS - (uint32_t)on[1] * (CPL_NODE_UNITS / 4));
	free(cl);
}

// Units per task are CPL_NODE_UNITS / packing for several packings.
static void
test_claim_units_per_packing(void **state)
{
	tu_env *e = *state;
	const uint32_t packs[] = { 1, 2, 3, 4, 5, 6, 7, 8, 10, 12 };
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	for (size_t i = 0; i < sizeof packs / sizeof packs[0]; i++) {
		char wf[16];
		snprintf(wf, sizeof wf, "p%u", packs[i]);
		for (uint32_t k = 0; k < packs[i] + 2; k++)
			task_p(e, wf, 0, packs[i], 1, 0, 0);
		cpl_node_cap node = { CPL_NODE_UNITS, 0 };
		cpl_capacity cap = cap_of(&node, 1, 100);
		cap.workflow = wf;
		TU_OK(tu_claim(e, lease, &cap, cl));
		// Exactly `packing` tasks fill one node.
		assert_int_equal(cl->n, packs[i]);
		assert_int_equal(node.free_units, 0);
		// One task alone takes CPL_NODE_UNITS / packing.
		node.free_units = CPL_NODE_UNITS;
		cap = cap_of(&node, 1, 1);
		cap.workflow = wf;
		TU_OK(tu_claim(e, lease, &cap, cl));
		assert_int_equal(cl->n, 1);
		assert_int_equal(node.free_units,
		    CPL_NODE_UNITS - CPL_NODE_UNITS / packs[i]);
	}
	free(cl);
}

// Exact packing (capacity in parts, cpl_packing_parts): for every count p
// in 1..5040, p tasks fit a node and p + 1 do not; claims place exactly p
// on a node for counts that do not divide 5040 (11, 32, 64, 128, 5039).
static void
test_claim_exact_parts(void **state)
{
	tu_env *e = *state;
	for (uint64_t p = 1; p <= CPL_NODE_UNITS; p++) {
		uint64_t q = cpl_packing_parts((uint32_t)p);
		if (p * q > CPL_NODE_PARTS || (p + 1) * q <= CPL_NODE_PARTS)
			fail_msg("packing %llu: %llu parts each",
			    (unsigned long long)p, (unsigned long long)q);
	}
	const uint32_t packs[] = { 11, 32, 64, 128, 1000, 5039 };
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	for (size_t i = 0; i < sizeof packs / sizeof packs[0]; i++) {
		uint32_t p = packs[i];
		char wf[16];
		snprintf(wf, sizeof wf, "x%u", p);
		for (uint32_t k = 0; k < p + 1; k++)
			task_p(e, wf, 0, p, 1, 0, 0);
		// two nodes: p on the first, the last one on the second
		cpl_node_cap nodes[2] = { { CPL_NODE_PARTS, 0 },
			{ CPL_NODE_PARTS, 0 } };
		size_t got = 0, on0 = 0;
		while (got < p + 1) {
			cpl_capacity cap = cap_of(nodes, 2, TU_MAX_CLAIM);
			cap.workflow = wf;
			cap.parts = true;
			TU_OK(tu_claim(e, lease, &cap, cl));
			if (cl->n == 0)
				break;
			for (size_t j = 0; j < cl->n; j++)
				on0 += cl->nodes[j][0] == 0;
			got += cl->n;
		}
		assert_int_equal(got, p + 1);
		assert_int_equal(on0, p);
		assert_true(nodes[0].free_units < cpl_packing_parts(p));
		assert_int_equal(nodes[1].free_units,
		    CPL_NODE_PARTS - cpl_packing_parts(p));
		// whole nodes in parts: a one-node task takes all of them
		task_p(e, wf, 0, 1, 1, 0, 0);
		cpl_node_cap whole = { CPL_NODE_PARTS, 0 };
		cpl_capacity cap = cap_of(&whole, 1, 10);
		cap.workflow = wf;
		cap.parts = true;
		TU_OK(tu_claim(e, lease, &cap, cl));
		assert_int_equal(cl->n, 1);
		assert_int_equal(whole.free_units, 0);
	}
	// more than a node of parts is refused
	cpl_node_cap over = { CPL_NODE_PARTS + 1, 0 };
	cpl_capacity cap = cap_of(&over, 1, 10);
	cap.parts = true;
	TU_ERR(tu_claim(e, lease, &cap, cl), CPL_EINVAL);
	free(cl);
}

// A task that does not fit is skipped; later ones that fit are taken.
static void
test_claim_skips_unfit(void **state)
{
	tu_env *e = *state;
	uint64_t whole = task_p(e, "wf", 3, 1, 1, 0, 0);
	uint64_t half = task_p(e, "wf", 2, 2, 1, 0, 0);
	uint64_t quarter = task_p(e, "wf", 1, 4, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap node = { CPL_NODE_UNITS / 2, 0 };
	cpl_capacity cap = cap_of(&node, 1, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], half);
	assert_int_equal(node.free_units, 0);
	TU_EQ_U64(tu_task_get(e, whole).lease, 0);
	TU_EQ_U64(tu_task_get(e, quarter).lease, 0);
	assert_int_equal(tu_task_get(e, whole).attempt, 0);
	// Without any node nothing fits.
	cap = cap_of(NULL, 0, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 0);
	// A full node takes the whole-node task first (highest priority).
	node.free_units = CPL_NODE_UNITS;
	cap = cap_of(&node, 1, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], whole);
	free(cl);
}

static void
test_claim_multi_node(void **state)
{
	tu_env *e = *state;
	uint64_t m1 = task_p(e, "wf", 5, 1, 2, 0, 0);
	uint64_t m2 = task_p(e, "wf", 4, 1, 2, 0, 0);
	uint64_t m3 = task_p(e, "wf", 3, 1, 3, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	// Nodes 0 and 2 are whole; node 1 is half used.
	cpl_node_cap nodes[3] = { { CPL_NODE_UNITS, 0 },
		{ CPL_NODE_UNITS / 2, 0 }, { CPL_NODE_UNITS, 0 } };
	cpl_capacity cap = cap_of(nodes, 3, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], m1);
	assert_int_equal(cl->nnodes[0], 2);
	uint32_t a = cl->nodes[0][0], b = cl->nodes[0][1];
	assert_true((a == 0 && b == 2) || (a == 2 && b == 0));
	assert_int_equal(nodes[0].free_units, 0);
	assert_int_equal(nodes[2].free_units, 0);
	assert_int_equal(nodes[1].free_units, CPL_NODE_UNITS / 2);
	// Four whole nodes: m2 (2 nodes) fits; m3 (3 nodes) does not after it.
	cpl_node_cap four[4];
	for (int i = 0; i < 4; i++)
		four[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(four, 4, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], m2);
	assert_int_equal(cl->nnodes[0], 2);
	assert_true(cl->nodes[0][0] != cl->nodes[0][1]);
	// Three whole nodes: m3 fits.
	cpl_node_cap three[3];
	for (int i = 0; i < 3; i++)
		three[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(three, 3, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], m3);
	assert_int_equal(cl->nnodes[0], 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(three[i].free_units, 0);
	free(cl);
}

// long_large_first: after priority, the largest num_nodes x wall minutes
// first; small tasks fill what is left. fifo takes them by age.
static void
claim_ll(tu_env *e, const char *wf)
{
	uint64_t a = task_p(e, "wf", 0, 1, 1, 0, 10);  // 10 node-minutes
	uint64_t b = task_p(e, "wf", 0, 1, 4, 0, 60);  // 240
	uint64_t c = task_p(e, "wf", 0, 1, 2, 0, 30);  // 60
	uint64_t d = task_p(e, "wf", 0, 1, 1, 0, 5);   // 5
	uint64_t x = task_p(e, "wf", 0, 1, 4, 0, 60);  // 240, younger than b
	uint64_t f = task_p(e, "wf", 5, 1, 1, 0, 1);   // priority first
	uint64_t g = task_p(e, "wf", 0, 1, 1, 0, 0);   // unknown: 1 minute
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap six[6];
	for (int i = 0; i < 6; i++)
		six[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cpl_capacity cap = cap_of(six, 6, 100);
	cap.order = CPL_ORDER_LONG_LARGE_FIRST;
	cap.workflow = wf;
	TU_OK(tu_claim(e, lease, &cap, cl));
	// f (priority), b (the largest, older than x); x and c no longer
	// fit the one node left: a, the largest that does
	assert_int_equal(cl->n, 3);
	TU_EQ_U64(cl->id[0], f);
	TU_EQ_U64(cl->id[1], b);
	TU_EQ_U64(cl->id[2], a);
	// eight more nodes: x (4), c (2), d, g in that order
	cpl_node_cap eight[8];
	for (int i = 0; i < 8; i++)
		eight[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(eight, 8, 100);
	cap.order = CPL_ORDER_LONG_LARGE_FIRST;
	cap.workflow = wf;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 4);
	TU_EQ_U64(cl->id[0], x);
	TU_EQ_U64(cl->id[1], c);
	TU_EQ_U64(cl->id[2], d);
	TU_EQ_U64(cl->id[3], g);
	free(cl);
}

static void
test_claim_long_large_first(void **state)
{
	claim_ll(*state, NULL);
}

static void
test_claim_long_large_first_wf(void **state)
{
	tu_env *e = *state;
	task_p(e, "other", 0, 1, 64, 0, 600); // not of the workflow
	claim_ll(e, "wf");
}

// The same tasks in fifo order: by age after priority; then the other
// order takes the rest (the queues stay in step: the fixture's check).
static void
test_claim_fifo_then_ll(void **state)
{
	tu_env *e = *state;
	uint64_t a = task_p(e, "wf", 0, 1, 1, 0, 10);
	uint64_t b = task_p(e, "wf", 0, 1, 4, 0, 60);
	uint64_t c = task_p(e, "wf", 0, 1, 2, 0, 30);
	uint64_t d = task_p(e, "wf", 0, 1, 1, 0, 50);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap n5[5];
	for (int i = 0; i < 5; i++)
		n5[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cpl_capacity cap = cap_of(n5, 5, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 2); // a, b; c does not fit the one left
	TU_EQ_U64(cl->id[0], a);
	TU_EQ_U64(cl->id[1], b);
	for (int i = 0; i < 5; i++)
		n5[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(n5, 2, 1);
	cap.order = CPL_ORDER_LONG_LARGE_FIRST;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	TU_EQ_U64(cl->id[0], c);
	cap = cap_of(n5 + 2, 3, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	TU_EQ_U64(cl->id[0], d);
	// an order that does not exist
	cap.order = (cpl_claim_order)2;
	assert_int_equal(tu_claim(e, lease, &cap, cl), CPL_EINVAL);
	free(cl);
}

static void
test_claim_gpus(void **state)
{
	tu_env *e = *state;
	// Each needs 2 GPUs (1 rank x 2), half a node.
	uint64_t g1 = task_p(e, "gpu", 0, 2, 1, 2, 0);
	uint64_t g2 = task_p(e, "gpu", 0, 2, 1, 2, 0);
	uint64_t cpu = task_p(e, "cpu", 0, 2, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	// No GPUs: only the CPU task.
	cpl_node_cap node = { CPL_NODE_UNITS, 0 };
	cpl_capacity cap = cap_of(&node, 1, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], cpu);
	// Three GPUs and a whole node: one GPU task fits, not two.
	node = (cpl_node_cap){ CPL_NODE_UNITS, 3 };
	cap = cap_of(&node, 1, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], g1);
	assert_int_equal(node.free_gpus, 1);
	assert_int_equal(node.free_units, CPL_NODE_UNITS / 2);
	// Two nodes with 2 GPUs each: the other one fits.
	cpl_node_cap two[2] = { { CPL_NODE_UNITS, 1 }, { CPL_NODE_UNITS, 2 } };
	cap = cap_of(two, 2, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], g2);
	assert_int_equal(cl->nodes[0][0], 1);
	assert_int_equal(two[1].free_gpus, 0);
	assert_int_equal(two[0].free_gpus, 1);
	free(cl);
}

static void
test_claim_wall_time(void **state)
{
	tu_env *e = *state;
	uint64_t long_t = task_p(e, "wf", 9, 1, 1, 0, 60);
	uint64_t short_t = task_p(e, "wf", 1, 1, 1, 0, 20);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap nodes[4];
	for (int i = 0; i < 4; i++)
		nodes[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cpl_capacity cap = cap_of(nodes, 4, 100);
	cap.remaining_minutes = 30;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], short_t);
	// No limit: the long one too.
	for (int i = 0; i < 4; i++)
		nodes[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(nodes, 4, 100);
	cap.remaining_minutes = 0;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], long_t);
	free(cl);
}

// A launcher's claim-ahead share is offered as extra nodes: max_task_nodes
// keeps a multi-node task off them (a 1-node serial launcher offering 3
// "nodes" must not claim a 3-node task), and the tasks behind it still go.
static void
test_claim_max_task_nodes(void **state)
{
	tu_env *e = *state;
	uint64_t big = task_p(e, "wf", 9, 1, 3, 0, 0);
	uint64_t small = task_p(e, "wf", 1, 1, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap nodes[3];
	for (int i = 0; i < 3; i++)
		nodes[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cpl_capacity cap = cap_of(nodes, 3, 100);
	cap.max_task_nodes = 1;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], small);
	// No bound: the 3-node task fits the 3 offered nodes.
	for (int i = 0; i < 3; i++)
		nodes[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(nodes, 3, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], big);
	free(cl);
}

static void
test_claim_workflow_filter(void **state)
{
	tu_env *e = *state;
	uint64_t a1 = task_p(e, "a", 0, 1, 1, 0, 0);
	uint64_t b1 = task_p(e, "b", 0, 1, 1, 0, 0);
	uint64_t a2 = task_p(e, "a", 5, 1, 1, 0, 0);
	uint64_t b2 = task_p(e, "b", 5, 1, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_wf(e, lease, "b", 10, cl));
	assert_int_equal(cl->n, 2);
	assert_int_equal(cl->id[0], b2);
	assert_int_equal(cl->id[1], b1);
	TU_OK(tu_claim_wf(e, lease, "b", 10, cl));
	assert_int_equal(cl->n, 0);
	TU_OK(tu_claim_wf(e, lease, "nope", 10, cl));
	assert_int_equal(cl->n, 0);
	TU_OK(tu_claim_wf(e, lease, NULL, 10, cl));
	assert_int_equal(cl->n, 2);
	assert_int_equal(cl->id[0], a2);
	assert_int_equal(cl->id[1], a1);
	free(cl);
}

// Many runnable tasks created in one transaction.
struct many {
	const char *wf;
	size_t n;
	int32_t prio;
	uint32_t nodes;
};

static int
many_cb(cpl_txn *txn, void *arg)
{
	struct many *m = arg;
	tu_spec sp;
	tu_spec_init(&sp, "many", m->wf, "app");
	sp.spec.priority = m->prio;
	sp.res.num_nodes = m->nodes;
	for (size_t i = 0; i < m->n; i++) {
		uint64_t id;
		uint8_t u[16];
		int rv = cpl_task_create(txn, &sp.spec, &id, u);
		if (rv)
			return rv;
	}
	return 0;
}

// A workflow-filtered claim finds its tasks however many runnable tasks
// of other workflows come first in the run queue (issue 12: it skipped at
// most 4096 + 4 x max_tasks of them and gave nothing).
static void
test_claim_workflow_behind_many(void **state)
{
	tu_env *e = *state;
	struct many other = { "other", 20000, 9, 1 };
	TU_OK(cpl_store_write(e->s, many_cb, &other));
	uint64_t w1 = task_p(e, "w", 0, 1, 1, 0, 0);
	uint64_t w2 = task_p(e, "w", 0, 1, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_wf(e, lease, "w", 10, cl));
	assert_int_equal(cl->n, 2);
	assert_int_equal(cl->id[0], w1);
	assert_int_equal(cl->id[1], w2);
	free(cl);
	TU_CHECK(e);
}

// Tasks that cannot fit a launcher's nodes do not hide those that can
// (issue 12): 100,000 runnable 4-node tasks of higher priority ahead of
// 1-node ones; a claim on one node takes the 1-node ones at once,
// filtered by workflow or not. Offered 5 nodes, a claim still goes by
// priority across node counts: a 4-node task first, then the 1-node ones
// on the fifth node.
static void
test_claim_small_behind_big(void **state)
{
	tu_env *e = *state;
	struct many big = { "w", 100000, 9, 4 };
	TU_OK(cpl_store_write(e->s, many_cb, &big));
	uint64_t small[30];
	for (int i = 0; i < 30; i++)
		small[i] = task_p(e, "w", 0, 10, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap node = { CPL_NODE_UNITS, 0 };
	cpl_capacity cap = cap_of(&node, 1, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(cl->id[i], small[i]);
	node.free_units = CPL_NODE_UNITS;
	cap = cap_of(&node, 1, 100);
	cap.workflow = "w";
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(cl->id[i], small[10 + i]);
	cpl_node_cap five[5];
	for (int i = 0; i < 5; i++)
		five[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(five, 5, 100);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 11);
	assert_int_equal(cl->nnodes[0], 4);
	assert_int_equal(cl->priority[0], 9);
	for (int i = 1; i < 11; i++)
		assert_int_equal(cl->id[i], small[19 + i]);
	// with max_task_nodes 1, five nodes take no 4-node task
	for (int i = 0; i < 5; i++)
		five[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
	cap = cap_of(five, 5, 100);
	cap.max_task_nodes = 1;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 0);
	free(cl);
	TU_CHECK(e);
}

static void
test_claim_max_tasks(void **state)
{
	tu_env *e = *state;
	for (int i = 0; i < 10; i++)
		task_p(e, "wf", 0, 8, 1, 0, 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap node = { CPL_NODE_UNITS, 0 };
	cpl_capacity cap = cap_of(&node, 1, 3);
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 3);
	assert_int_equal(cl->nclaimed, 3);
	assert_int_equal(node.free_units, CPL_NODE_UNITS - 3 * 630);
	// max_tasks 0 is invalid; nothing claimed.
	node.free_units = CPL_NODE_UNITS;
	cap = cap_of(&node, 1, 0);
	TU_ERR(tu_claim(e, lease, &cap, cl), CPL_EINVAL);
	assert_int_equal(cl->n, 0);
	cpl_lease l;
	TU_OK(tu_lease_get(e, lease, &l));
	assert_int_equal(l.ntasks, 3);
	free(cl);
}

// Only runnable, unheld tasks are claimed.
static void
test_claim_only_runnable(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t p = tu_task(e, "parent", "p", 0);
	uint64_t waiting = tu_task(e, "waiting", "x", 1, p);
	uint64_t done = tu_task(e, "done", "d", 0);
	tu_finish(e, lease, "d", done);
	uint64_t killed = tu_task(e, "killed", "x", 0);
	TU_OK(tu_kill(e, killed, NULL));
	uint64_t ready = tu_task(e, "ready", "x", 0);
	uint64_t restart = tu_task(e, "restart", "r", 0);
	uint32_t a = tu_claim_task(e, lease, "r", restart);
	TU_OK(tu_report(e, restart, lease, a, CPL_FAILED));
	TU_OK(tu_set_state(e, restart, CPL_RESTART_READY, NULL));
	tu_claimed *cl = calloc(1, sizeof *cl);
	uint64_t l2 = tu_lease(e, TTL);
	TU_OK(tu_claim_n(e, l2, 100, cl));
	// p (READY), ready, restart.
	assert_int_equal(cl->n, 3);
	tu_ids got = { 0 };
	for (size_t i = 0; i < cl->n; i++)
		got.id[got.n++] = cl->id[i];
	assert_true(tu_ids_has(&got, p));
	assert_true(tu_ids_has(&got, ready));
	assert_true(tu_ids_has(&got, restart));
	assert_false(tu_ids_has(&got, waiting));
	assert_false(tu_ids_has(&got, done));
	assert_false(tu_ids_has(&got, killed));
	free(cl);
}

// Two leases claim alternately until nothing is left: every task is
// claimed exactly once, by the lease that holds it.
static void
test_claim_two_leases_no_duplicates(void **state)
{
	tu_env *e = *state;
	enum { N = 300 };
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	uint64_t ids[N];
	const uint32_t packs[] = { 1, 2, 3, 4, 6 };
	for (int i = 0; i < N; i++)
		ids[i] = task_p(e, (i % 3) ? "wf" : "other",
		    (int32_t)(tu_rand(&seed) % 7) - 3, packs[tu_rand(&seed) % 5],
		    1, 0, 0);
	uint64_t lease[2] = { tu_lease(e, TTL), tu_lease(e, TTL) };
	uint64_t *owner = calloc(N, sizeof *owner); // by index
	tu_claimed *cl = calloc(1, sizeof *cl);
	int idle = 0, turn = 0, rounds = 0;
	size_t total = 0;
	while (idle < 2 && rounds < 1000) {
		cpl_node_cap nodes[3];
		for (int i = 0; i < 3; i++)
			nodes[i] = (cpl_node_cap){ CPL_NODE_UNITS, 0 };
		cpl_capacity cap = cap_of(nodes, 3, 7);
		TU_OK(tu_claim(e, lease[turn], &cap, cl));
		assert_int_equal(cl->nclaimed, cl->n);
		idle = cl->n == 0 ? idle + 1 : 0;
		for (size_t i = 0; i < cl->n; i++) {
			uint64_t id = cl->id[i];
			assert_true(id >= ids[0] && id <= ids[N - 1]);
			size_t k = (size_t)(id - ids[0]);
			assert_int_equal(ids[k], id);
			if (owner[k] != 0)
				TU_FAIL("task %llu claimed by lease %llu and "
				        "again by %llu",
				    (unsigned long long)id,
				    (unsigned long long)owner[k],
				    (unsigned long long)lease[turn]);
			owner[k] = lease[turn];
			total++;
		}
		turn ^= 1;
		rounds++;
	}
	assert_int_equal(total, N);
	uint32_t held[2] = { 0, 0 };
	for (int k = 0; k < N; k++) {
		assert_true(owner[k] != 0);
		cpl_task t = tu_task_get(e, ids[k]);
		TU_EQ_U64(t.lease, owner[k]);
		assert_int_equal(t.attempt, 1);
		held[owner[k] == lease[1]]++;
	}
	for (int i = 0; i < 2; i++) {
		cpl_lease l;
		TU_OK(tu_lease_get(e, lease[i], &l));
		assert_int_equal(l.ntasks, held[i]);
	}
	free(owner);
	free(cl);
	TU_COUNTS_CONSISTENT(e);
}

static void
test_claim_lease_errors(void **state)
{
	tu_env *e = *state;
	uint64_t id = tu_task(e, "t", "wf", 0);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_ERR(tu_claim_n(e, 4242, 10, cl), CPL_ENOTFOUND);
	uint64_t lease = tu_lease(e, 1000);
	tu_advance_ms(e, 1001);
	// Past its deadline, before any sweep: the claim is refused.
	TU_ERR2(tu_claim_n(e, lease, 10, cl), CPL_EEXPIRED, CPL_ENOTFOUND);
	cpl_task t = tu_task_get(e, id);
	TU_EQ_U64(t.lease, 0);
	assert_int_equal(t.attempt, 0);
	// After the sweep: gone.
	TU_OK(tu_expire(e, NULL, NULL));
	TU_ERR2(tu_claim_n(e, lease, 10, cl), CPL_EEXPIRED, CPL_ENOTFOUND);
	// A released lease cannot claim either.
	uint64_t l2 = tu_lease(e, TTL);
	TU_OK(tu_release(e, l2));
	TU_ERR2(tu_claim_n(e, l2, 10, cl), CPL_EEXPIRED, CPL_ENOTFOUND);
	t = tu_task_get(e, id);
	TU_EQ_U64(t.lease, 0);
	free(cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claim_priority_order,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_order_one_call,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_holds_and_attempts,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_packing_units,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_small_behind_big,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_exact_parts,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_units_per_packing,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_skips_unfit,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_multi_node, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_long_large_first,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_long_large_first_wf,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_fifo_then_ll,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_gpus, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_max_task_nodes,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_wall_time, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_workflow_filter,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_max_tasks, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_only_runnable,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_claim_two_leases_no_duplicates, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_workflow_behind_many,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_lease_errors,
		    tu_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
