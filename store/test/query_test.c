// Queries: filters (state mask, workflow, app, name, uuid prefix),
// paging (after_id, limit, more), specs in results, early stop;
// cpl_workflow_list; cpl_task_update_spec moving the workflow, app and
// priority indices; cpl_task_delete and its refusals.
#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL (3600u * 1000u)
#define BIT(s) (1u << (s))

typedef struct model {
	size_t n;
	uint64_t id[200];
	char wf[200][16];
	char app[200][16];
	char name[200][16];
	char hex[200][33];
	cpl_state st[200];
} model;

static uint64_t
add(tu_env *e, model *m, const char *name, const char *wf, const char *app,
    uint64_t parent)
{
	tu_spec sp;
	tu_spec_init(&sp, name, wf, app);
	if (parent)
		tu_spec_parent(&sp, parent);
	uint64_t id;
	uint8_t u[16];
	TU_OK(tu_create_spec(e, &sp.spec, &id, u));
	size_t i = m->n++;
	m->id[i] = id;
	snprintf(m->wf[i], sizeof m->wf[i], "%s", wf);
	snprintf(m->app[i], sizeof m->app[i], "%s", app);
	snprintf(m->name[i], sizeof m->name[i], "%s", name);
	char c[37];
	cpl_uuid_format(u, c);
	size_t k = 0;
	for (size_t j = 0; c[j]; j++)
		if (c[j] != '-')
			m->hex[i][k++] = c[j];
	m->hex[i][k] = '\0';
	return id;
}

// Refreshes the states in the model from the store.
static void
refresh(tu_env *e, model *m)
{
	for (size_t i = 0; i < m->n; i++)
		m->st[i] = tu_state(e, m->id[i]);
}

// The query result must equal the model's tasks matching f, in id order.
static void
expect_query(tu_env *e, const model *m, const cpl_filter *f, const char *what)
{
	tu_ids got;
	bool more = true;
	TU_OK(tu_query(e, f, 0, 0, &got, &more));
	assert_false(got.overflow);
	if (more)
		TU_FAIL("%s: more set without a limit", what);
	size_t k = 0;
	int bad = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (f->states && !(f->states & BIT(m->st[i])))
			continue;
		if (f->workflow && strcmp(f->workflow, m->wf[i]) != 0)
			continue;
		if (f->application && strcmp(f->application, m->app[i]) != 0)
			continue;
		if (f->name && strcmp(f->name, m->name[i]) != 0)
			continue;
		if (f->uuid_prefix &&
		    strncmp(f->uuid_prefix, m->hex[i],
		        strlen(f->uuid_prefix)) != 0)
			continue;
		if (k >= got.n || got.id[k] != m->id[i])
			bad = 1;
		k++;
	}
	if (bad || k != got.n) {
		print_error("%s: got %zu tasks, expected %zu\n", what, got.n,
		    k);
		TU_FAIL("%s: query result differs from the model", what);
	}
}

static void
build(tu_env *e, model *m)
{
	TU_OK(tu_app_put(e, "app2", "/bin/echo"));
	uint64_t lease = tu_lease(e, TTL);
	memset(m, 0, sizeof *m);
	for (int i = 0; i < 40; i++) {
		const char *wf = i % 3 == 0 ? "wA" : (i % 3 == 1 ? "wB" : "wC");
		const char *app = i % 4 == 0 ? "app2" : "app";
		const char *name = i % 5 == 0 ? "ana" : "sim";
		uint64_t parent = (i % 7 == 6) ? m->id[i - 1] : 0;
		add(e, m, name, wf, app, parent);
	}
	// Move some along: finish, fail, run, kill.
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_wf(e, lease, "wB", 6, cl));
	for (size_t i = 0; i < cl->n; i++) {
		if (i % 3 == 0)
			tu_run_to(e, cl->id[i], lease, cl->attempt[i],
			    CPL_JOB_FINISHED);
		else if (i % 3 == 1)
			TU_OK(tu_report(e, cl->id[i], lease, cl->attempt[i],
			    CPL_FAILED));
		else
			tu_run_to(e, cl->id[i], lease, cl->attempt[i],
			    CPL_RUNNING);
	}
	free(cl);
	TU_OK(tu_kill(e, m->id[3], NULL));
	TU_OK(tu_kill(e, m->id[4], NULL));
	refresh(e, m);
}

static void
test_query_filters(void **state)
{
	tu_env *e = *state;
	model *m = calloc(1, sizeof *m);
	build(e, m);
	cpl_filter f;
	const char *wfs[] = { "wA", "wB", "wC" };
	for (int w = 0; w < 3; w++) {
		memset(&f, 0, sizeof f);
		f.workflow = wfs[w];
		expect_query(e, m, &f, "workflow");
		for (int s = 1; s < CPL_NSTATES; s++) {
			f.states = BIT(s);
			expect_query(e, m, &f, "workflow + one state");
		}
		f.states = BIT(CPL_READY) | BIT(CPL_AWAITING_PARENTS);
		expect_query(e, m, &f, "workflow + two states");
		f.application = "app2";
		expect_query(e, m, &f, "workflow + states + app");
		f.name = "ana";
		expect_query(e, m, &f, "workflow + states + app + name");
	}
	// States alone, apps alone, and with each other.
	for (int s = 1; s < CPL_NSTATES; s++) {
		memset(&f, 0, sizeof f);
		f.states = BIT(s);
		expect_query(e, m, &f, "one state");
	}
	memset(&f, 0, sizeof f);
	f.states = BIT(CPL_FAILED) | BIT(CPL_JOB_FINISHED) |
	    BIT(CPL_PARENT_KILLED) | BIT(CPL_USER_KILLED);
	expect_query(e, m, &f, "final states");
	const char *apps[] = { "app", "app2" };
	for (int a = 0; a < 2; a++) {
		memset(&f, 0, sizeof f);
		f.application = apps[a];
		expect_query(e, m, &f, "app alone");
		f.workflow = "wA";
		expect_query(e, m, &f, "app in wA");
		f.workflow = NULL;
		f.states = BIT(CPL_READY);
		expect_query(e, m, &f, "app + state");
	}
	memset(&f, 0, sizeof f);
	expect_query(e, m, &f, "no filter");
	f.application = "app2";
	f.name = "ana";
	expect_query(e, m, &f, "app2 + name");
	memset(&f, 0, sizeof f);
	f.name = "ana";
	expect_query(e, m, &f, "name alone");
	f.states = BIT(CPL_USER_KILLED) | BIT(CPL_READY);
	expect_query(e, m, &f, "name + states");
	// uuid prefixes of each task, of 1, 2 and 32 digits.
	for (size_t i = 0; i < m->n; i += 5) {
		char pre[40];
		for (int len = 1; len <= 2; len++) {
			memset(&f, 0, sizeof f);
			f.workflow = m->wf[i];
			snprintf(pre, sizeof pre, "%.*s", len, m->hex[i]);
			f.uuid_prefix = pre;
			expect_query(e, m, &f, "uuid prefix");
		}
		memset(&f, 0, sizeof f);
		f.uuid_prefix = m->hex[i];
		tu_ids got;
		TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
		assert_int_equal(got.n, 1);
		assert_int_equal(got.id[0], m->id[i]);
	}
	// No match.
	memset(&f, 0, sizeof f);
	f.workflow = "nope";
	expect_query(e, m, &f, "unknown workflow");
	memset(&f, 0, sizeof f);
	f.application = "nope";
	expect_query(e, m, &f, "unknown app");
	memset(&f, 0, sizeof f);
	f.name = "nope";
	expect_query(e, m, &f, "unknown name");
	memset(&f, 0, sizeof f);
	f.workflow = "wA";
	f.states = BIT(CPL_RUN_TIMEOUT);
	expect_query(e, m, &f, "empty state");
	TU_COUNTS_CONSISTENT(e);
	free(m);
}

static void
test_query_paging(void **state)
{
	tu_env *e = *state;
	uint64_t id[25];
	for (int i = 0; i < 25; i++)
		id[i] = tu_task(e, "t", i % 2 ? "odd" : "even", 0);
	cpl_filter f;
	memset(&f, 0, sizeof f);
	tu_ids got;
	bool more = false;
	TU_OK(tu_query(e, &f, 0, 10, &got, &more));
	assert_int_equal(got.n, 10);
	assert_true(more);
	for (int i = 0; i < 10; i++)
		assert_int_equal(got.id[i], id[i]);
	TU_OK(tu_query(e, &f, got.id[9], 10, &got, &more));
	assert_int_equal(got.n, 10);
	assert_true(more);
	assert_int_equal(got.id[0], id[10]);
	TU_OK(tu_query(e, &f, got.id[9], 10, &got, &more));
	assert_int_equal(got.n, 5);
	assert_false(more);
	assert_int_equal(got.id[4], id[24]);
	// An exact last page: more is false.
	TU_OK(tu_query(e, &f, id[14], 10, &got, &more));
	assert_int_equal(got.n, 10);
	assert_false(more);
	// after_id between ids and past the end.
	TU_OK(tu_query(e, &f, id[24], 10, &got, &more));
	assert_int_equal(got.n, 0);
	assert_false(more);
	// Paging with a filter: 12 odd tasks in pages of 5.
	memset(&f, 0, sizeof f);
	f.workflow = "odd";
	uint64_t after = 0;
	size_t total = 0;
	int pages = 0;
	do {
		TU_OK(tu_query(e, &f, after, 5, &got, &more));
		for (size_t i = 0; i < got.n; i++)
			assert_int_equal(got.id[i], id[2 * (total + i) + 1]);
		total += got.n;
		pages++;
		if (got.n)
			after = got.id[got.n - 1];
		assert_true(more == (total < 12));
	} while (more);
	assert_int_equal(total, 12);
	assert_int_equal(pages, 3);
	// The same with a state mask (all READY).
	f.states = BIT(CPL_READY);
	TU_OK(tu_query(e, &f, id[20], 5, &got, &more));
	assert_int_equal(got.n, 2);
	assert_false(more);
	assert_int_equal(got.id[0], id[21]);
	// Filter with an after_id between.
	memset(&f, 0, sizeof f);
	f.workflow = "even";
	TU_OK(tu_query(e, &f, id[3], 2, &got, &more));
	assert_int_equal(got.n, 2);
	assert_int_equal(got.id[0], id[4]);
	assert_int_equal(got.id[1], id[6]);
	assert_true(more);
}

typedef struct spec_check {
	size_t n;
	int missing, wrong;
	int stop_after;
} spec_check;

static int
spec_check_fn(const cpl_task *t, void *arg)
{
	spec_check *c = arg;
	c->n++;
	if (t->spec == NULL)
		c->missing++;
	else if (strcmp(t->spec->name, "named") != 0 ||
	    strcmp(t->spec->workflow, "w") != 0)
		c->wrong++;
	if (c->stop_after && (int)c->n == c->stop_after)
		return 55;
	return 0;
}

typedef struct spec_q {
	unsigned flags;
	spec_check c;
} spec_q;

static int
spec_q_cb(cpl_txn *txn, void *arg)
{
	spec_q *q = arg;
	int stop = q->c.stop_after;
	memset(&q->c, 0, sizeof q->c);
	q->c.stop_after = stop;
	cpl_filter f;
	memset(&f, 0, sizeof f);
	return cpl_query(txn, &f, 0, 0, q->flags, spec_check_fn, &q->c, NULL);
}

static void
test_query_with_spec_and_stop(void **state)
{
	tu_env *e = *state;
	for (int i = 0; i < 6; i++)
		tu_task(e, "named", "w", 0);
	spec_q q;
	memset(&q, 0, sizeof q);
	q.flags = CPL_GET_SPEC;
	TU_OK(cpl_store_read(e->s, spec_q_cb, &q));
	assert_int_equal(q.c.n, 6);
	assert_int_equal(q.c.missing, 0);
	assert_int_equal(q.c.wrong, 0);
	q.flags = 0;
	TU_OK(cpl_store_read(e->s, spec_q_cb, &q));
	assert_int_equal(q.c.n, 6);
	assert_int_equal(q.c.missing, 6);
	// A non-zero return stops the walk and is returned.
	q.c.stop_after = 3;
	TU_ERR(cpl_store_read(e->s, spec_q_cb, &q), 55);
	assert_int_equal(q.c.n, 3);
}

// min_nodes / max_nodes bound num_nodes (0 is read as 1).
static void
test_query_node_bounds(void **state)
{
	tu_env *e = *state;
	const uint32_t nodes[] = { 0, 1, 2, 3, 4, 8 };
	uint64_t id[6];
	for (int i = 0; i < 6; i++) {
		tu_spec sp;
		tu_spec_init(&sp, "t", i % 2 ? "odd" : "even", "app");
		sp.res.num_nodes = nodes[i];
		id[i] = tu_task_spec(e, &sp);
	}
	struct {
		uint32_t min, max;
		const char *wf;
		int want[6];
	} cases[] = {
		{ 0, 0, NULL, { 1, 1, 1, 1, 1, 1 } },
		{ 1, 0, NULL, { 1, 1, 1, 1, 1, 1 } },
		{ 2, 0, NULL, { 0, 0, 1, 1, 1, 1 } },
		{ 0, 2, NULL, { 1, 1, 1, 0, 0, 0 } },
		{ 0, 1, NULL, { 1, 1, 0, 0, 0, 0 } },
		{ 3, 4, NULL, { 0, 0, 0, 1, 1, 0 } },
		{ 5, 7, NULL, { 0, 0, 0, 0, 0, 0 } },
		{ 8, 8, NULL, { 0, 0, 0, 0, 0, 1 } },
		{ 2, 0, "odd", { 0, 0, 0, 1, 0, 1 } },
		{ 0, 2, "even", { 1, 0, 1, 0, 0, 0 } },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		cpl_filter f;
		memset(&f, 0, sizeof f);
		f.min_nodes = cases[c].min;
		f.max_nodes = cases[c].max;
		f.workflow = cases[c].wf;
		tu_ids got;
		TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
		size_t k = 0;
		int bad = 0;
		for (int i = 0; i < 6; i++) {
			if (!cases[c].want[i])
				continue;
			if (k >= got.n || got.id[k] != id[i])
				bad = 1;
			k++;
		}
		if (bad || k != got.n)
			TU_FAIL("nodes in [%u, %u] wf %s: got %zu tasks, "
			        "expected %zu",
			    cases[c].min, cases[c].max,
			    cases[c].wf ? cases[c].wf : "any", got.n, k);
	}
	// With paging.
	cpl_filter f;
	memset(&f, 0, sizeof f);
	f.min_nodes = 2;
	tu_ids got;
	bool more = false;
	TU_OK(tu_query(e, &f, 0, 3, &got, &more));
	assert_int_equal(got.n, 3);
	assert_true(more);
	assert_int_equal(got.id[0], id[2]);
	TU_OK(tu_query(e, &f, got.id[2], 3, &got, &more));
	assert_int_equal(got.n, 1);
	assert_false(more);
	assert_int_equal(got.id[0], id[5]);
}

// ------------------------------------------------------------ workflows

static void
test_workflow_list(void **state)
{
	tu_env *e = *state;
	tu_names l;
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(l.n, 0);
	uint64_t z[3], a[2];
	for (int i = 0; i < 3; i++)
		z[i] = tu_task(e, "t", "zeta", 0);
	for (int i = 0; i < 2; i++)
		a[i] = tu_task(e, "t", "alpha", 0);
	tu_task(e, "t", "mid", 0);
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(l.n, 3);
	assert_string_equal(l.name[0], "alpha");
	assert_string_equal(l.name[1], "mid");
	assert_string_equal(l.name[2], "zeta");
	assert_int_equal(l.count[0], 2);
	assert_int_equal(l.count[1], 1);
	assert_int_equal(l.count[2], 3);
	// Deleting the last task of a workflow removes it from the list.
	TU_OK(tu_delete(e, a[0]));
	TU_OK(tu_delete(e, a[1]));
	TU_OK(tu_delete(e, z[0]));
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(l.n, 2);
	assert_string_equal(l.name[0], "mid");
	assert_int_equal(l.count[1], 2);
	// Tasks without a workflow (empty name) do not break the list.
	tu_task(e, "t", "", 0);
	TU_OK(tu_workflows(e, &l));
	assert_true(tu_names_count(&l, "zeta") == 2);
	assert_true(tu_names_count(&l, "mid") == 1);
}

// ------------------------------------------------------------ update_spec

static void
test_update_spec_moves_indices(void **state)
{
	tu_env *e = *state;
	TU_OK(tu_app_put(e, "app2", "/bin/echo"));
	uint64_t p = tu_task(e, "parent", "old", 0);
	uint64_t t1 = tu_task(e, "one", "old", 0);
	uint64_t t2 = tu_task(e, "two", "old", 1, p);
	uint64_t t3 = tu_task(e, "three", "old", 0);

	tu_spec sp;
	tu_spec_init(&sp, "one-renamed", "new", "app2");
	sp.spec.priority = 50;
	sp.spec.args = "--changed";
	TU_OK(tu_update_spec(e, t1, &sp.spec));
	// The child's parents cannot change here: the list is kept.
	tu_spec sp2;
	tu_spec_init(&sp2, "two", "new", "app");
	tu_spec_parent(&sp2, t3);
	TU_OK(tu_update_spec(e, t2, &sp2.spec));
	tu_ids par;
	TU_OK(tu_parents(e, t2, &par));
	assert_int_equal(par.n, 1);
	assert_int_equal(par.id[0], p);
	cpl_task t;
	TU_OK(tu_get_spec(e, t2, &t));
	assert_int_equal(t.spec->n_parent_ids, 1);
	assert_int_equal(t.spec->parent_ids[0], p);
	TU_EQ_STATE(t.state, CPL_AWAITING_PARENTS);
	assert_int_equal(t.pending_parents, 1);
	cpl_task_clear(&t);

	TU_OK(tu_get_spec(e, t1, &t));
	assert_string_equal(t.spec->name, "one-renamed");
	assert_string_equal(t.spec->workflow, "new");
	assert_string_equal(t.spec->application, "app2");
	assert_string_equal(t.spec->args, "--changed");
	assert_int_equal(t.priority, 50);
	TU_EQ_STATE(t.state, CPL_READY);
	cpl_task_clear(&t);

	cpl_filter f;
	tu_ids got;
	memset(&f, 0, sizeof f);
	f.workflow = "old";
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 2);
	assert_int_equal(got.id[0], p);
	assert_int_equal(got.id[1], t3);
	f.workflow = "new";
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 2);
	assert_int_equal(got.id[0], t1);
	assert_int_equal(got.id[1], t2);
	memset(&f, 0, sizeof f);
	f.application = "app2";
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 1);
	assert_int_equal(got.id[0], t1);
	memset(&f, 0, sizeof f);
	f.name = "one";
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 0);
	f.name = "one-renamed";
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 1);

	tu_names l;
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(tu_names_count(&l, "old"), 2);
	assert_int_equal(tu_names_count(&l, "new"), 2);
	TU_OK(tu_apps(e, &l));
	assert_int_equal(tu_names_count(&l, "app"), 3);
	assert_int_equal(tu_names_count(&l, "app2"), 1);
	// app2 is in use now, app still too.
	TU_ERR(tu_app_delete(e, "app2"), CPL_EINUSE);

	// Priority moves the claim order: t3 up above t1.
	tu_spec_init(&sp, "three", "old", "app");
	sp.spec.priority = 99;
	TU_OK(tu_update_spec(e, t3, &sp.spec));
	assert_int_equal(tu_task_get(e, t3).priority, 99);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, lease, 10, cl));
	assert_int_equal(cl->n, 3);
	assert_int_equal(cl->id[0], t3);
	assert_int_equal(cl->id[1], t1);
	assert_int_equal(cl->id[2], p);
	free(cl);
	TU_COUNTS_CONSISTENT(e);
}

// New resources decide what fits.
static void
test_update_spec_resources(void **state)
{
	tu_env *e = *state;
	uint64_t id = tu_task(e, "t", "w", 0); // whole node
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap node = { CPL_NODE_UNITS / 4, 0 };
	cpl_capacity cap;
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = 10;
	cap.nodes = &node;
	cap.nnodes = 1;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 0);
	tu_spec sp;
	tu_spec_init(&sp, "t", "w", "app");
	sp.res.node_packing_count = 4;
	TU_OK(tu_update_spec(e, id, &sp.spec));
	node.free_units = CPL_NODE_UNITS / 4;
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->id[0], id);
	free(cl);
}

static void
test_update_spec_refusals(void **state)
{
	tu_env *e = *state;
	uint64_t id = tu_task(e, "t", "w", 0);
	uint64_t held = tu_task(e, "h", "hw", 0);
	uint64_t lease = tu_lease(e, TTL);
	tu_claim_task(e, lease, "hw", held);
	tu_spec sp;
	tu_snap before;

	tu_spec_init(&sp, "x", "w2", "app");
	TU_ERR(tu_update_spec(e, 9999, &sp.spec), CPL_ENOTFOUND);

	tu_snap_take(e, id, &before);
	tu_spec_init(&sp, "", "w2", "app");
	TU_ERR(tu_update_spec(e, id, &sp.spec), CPL_EINVAL);
	tu_snap_same(e, id, &before, "update_spec with empty name");
	tu_spec_init(&sp, "x", "w2", "no-such-app");
	TU_ERR2(tu_update_spec(e, id, &sp.spec), CPL_ENOTFOUND, CPL_EINVAL);
	tu_snap_same(e, id, &before, "update_spec with unknown app");

	tu_snap_take(e, held, &before);
	tu_spec_init(&sp, "x", "w2", "app");
	TU_ERR(tu_update_spec(e, held, &sp.spec), CPL_EBUSY);
	tu_snap_same(e, held, &before, "update_spec of a held task");

	// Nothing moved.
	cpl_task t;
	TU_OK(tu_get_spec(e, id, &t));
	assert_string_equal(t.spec->name, "t");
	assert_string_equal(t.spec->workflow, "w");
	cpl_task_clear(&t);
	tu_names l;
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(tu_names_count(&l, "w2"), -1);
	assert_int_equal(tu_names_count(&l, "w"), 1);
	assert_int_equal(tu_names_count(&l, "hw"), 1);
}

// ------------------------------------------------------------ delete

static void
test_delete(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t p = tu_task(e, "p", "w", 0);
	uint64_t c1 = tu_task(e, "c1", "w", 1, p);
	uint64_t c2 = tu_task(e, "c2", "w", 1, p);
	uint64_t lone = tu_task(e, "lone", "w2", 0);
	uint64_t held = tu_task(e, "held", "hw", 0);
	uint8_t u[16];
	memcpy(u, tu_task_get(e, lone).uuid, 16);
	tu_claim_task(e, lease, "hw", held);
	tu_snap before;

	// With children: refused.
	tu_snap_take(e, p, &before);
	TU_ERR(tu_delete(e, p), CPL_EINUSE);
	tu_snap_same(e, p, &before, "delete of a parent");
	// Held: refused.
	tu_snap_take(e, held, &before);
	TU_ERR(tu_delete(e, held), CPL_EBUSY);
	tu_snap_same(e, held, &before, "delete of a held task");
	TU_ERR(tu_delete(e, 9999), CPL_ENOTFOUND);

	uint64_t n0 = tu_stats(e).ntasks;
	uint64_t ready0 = tu_count(e, CPL_READY);
	TU_OK(tu_delete(e, lone));
	cpl_task t;
	TU_ERR(tu_get(e, lone, &t), CPL_ENOTFOUND);
	TU_ERR(tu_delete(e, lone), CPL_ENOTFOUND);
	TU_EQ_U64(tu_stats(e).ntasks, n0 - 1);
	TU_EQ_U64(tu_count(e, CPL_READY), ready0 - 1);
	char canon[37];
	cpl_uuid_format(u, canon);
	TU_ERR(tu_lookup(e, canon, NULL), CPL_ENOTFOUND);
	cpl_filter f;
	memset(&f, 0, sizeof f);
	f.workflow = "w2";
	tu_ids got;
	TU_OK(tu_query(e, &f, 0, 0, &got, NULL));
	assert_int_equal(got.n, 0);
	tu_names l;
	TU_OK(tu_workflows(e, &l));
	assert_int_equal(tu_names_count(&l, "w2"), -1);

	// Children first, then the parent.
	TU_OK(tu_delete(e, c1));
	tu_ids kids;
	TU_OK(tu_children(e, p, &kids));
	assert_int_equal(kids.n, 1);
	assert_int_equal(kids.id[0], c2);
	TU_ERR(tu_delete(e, p), CPL_EINUSE);
	TU_OK(tu_delete(e, c2));
	TU_OK(tu_children(e, p, &kids));
	assert_int_equal(kids.n, 0);
	// The parent finishes with no children left.
	tu_finish(e, lease, "w", p);
	TU_OK(tu_delete(e, p));
	TU_OK(tu_apps(e, &l));
	assert_int_equal(tu_names_count(&l, "app"), 1); // the held one
	// A deleted READY task is not claimable.
	uint64_t r = tu_task(e, "r", "rw", 0);
	TU_OK(tu_delete(e, r));
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, lease, 10, cl));
	assert_int_equal(cl->n, 0);
	free(cl);
	TU_COUNTS_CONSISTENT(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_query_filters, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_query_paging, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_query_with_spec_and_stop,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_query_node_bounds,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_workflow_list, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_update_spec_moves_indices,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_update_spec_resources,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_update_spec_refusals,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_delete, tu_setup,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
