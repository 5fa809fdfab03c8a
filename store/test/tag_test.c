// Tags: the indices kept with a task (tags, tag_idx, tag_runq) through
// create, query, count, claim, restart, spec update and delete; malformed
// tags refused with nothing written. Every test ends with cpl_store_check,
// which rebuilds the tag indices from the specs and compares.
#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

// A task of workflow wf with the given tags (NULL-terminated) and priority.
static uint64_t
tagged(tu_env *e, const char *name, const char *wf, int32_t prio, ...)
{
	tu_spec sp;
	char *tags[8];
	size_t n = 0;
	va_list ap;
	tu_spec_init(&sp, name, wf, NULL);
	va_start(ap, prio);
	for (char *t; (t = va_arg(ap, char *)) != NULL && n < 8;)
		tags[n++] = t;
	va_end(ap);
	sp.spec.tags = tags;
	sp.spec.n_tags = n;
	sp.spec.priority = prio;
	return tu_task_spec(e, &sp);
}

static size_t
query_tags(tu_env *e, const char *const *tags, size_t ntags, uint32_t states,
    tu_ids *out)
{
	cpl_filter f;
	memset(&f, 0, sizeof f);
	f.tags = tags;
	f.ntags = ntags;
	f.states = states;
	out->n = 0;
	TU_OK(tu_query(e, &f, 0, 0, out, NULL));
	return out->n;
}

struct cnt {
	const char *tag;
	uint64_t by[CPL_NSTATES];
};

static int
count_cb(cpl_txn *t, void *arg)
{
	struct cnt *c = arg;
	memset(c->by, 0, sizeof c->by);
	return cpl_count_tag(t, c->tag, c->by);
}

static uint64_t
count_tag(tu_env *e, const char *tag, cpl_state s)
{
	struct cnt c = { tag, { 0 } };
	TU_OK(cpl_store_read(e->s, count_cb, &c));
	return c.by[s];
}

static void
test_query_and_count(void **state)
{
	tu_env *e = *state;
	uint64_t a = tagged(e, "a", "w", 0, "system=H2O", "run=1", NULL);
	uint64_t b = tagged(e, "b", "w", 0, "system=H2O", "run=2", NULL);
	uint64_t c = tagged(e, "c", "w", 0, "system=CO2", "run=1", NULL);
	uint64_t d = tu_task(e, "d", "w", 0);
	// a repeated tag is one entry
	uint64_t x = tagged(e, "x", "w", 0, "k=v", "k=v", NULL);
	tu_ids ids;
	const char *h2o[] = { "system=H2O" };
	assert_int_equal(query_tags(e, h2o, 1, 0, &ids), 2);
	assert_true(ids.id[0] == a && ids.id[1] == b);
	const char *both[] = { "system=H2O", "run=1" };
	assert_int_equal(query_tags(e, both, 2, 0, &ids), 1);
	assert_true(ids.id[0] == a);
	const char *run1[] = { "run=1" };
	assert_int_equal(query_tags(e, run1, 1, 0, &ids), 2);
	assert_true(ids.id[0] == a && ids.id[1] == c);
	const char *none[] = { "system=XE" };
	assert_int_equal(query_tags(e, none, 1, 0, &ids), 0);
	// a prefix of a tag is not the tag
	const char *pre[] = { "system=H2" };
	assert_int_equal(query_tags(e, pre, 1, 0, &ids), 0);
	const char *kv[] = { "k=v" };
	assert_int_equal(query_tags(e, kv, 1, 0, &ids), 1);
	assert_true(ids.id[0] == x);
	// with a state: the tag index walked, the state checked
	assert_int_equal(query_tags(e, h2o, 1, 1u << CPL_READY, &ids), 2);
	assert_int_equal(query_tags(e, h2o, 1, 1u << CPL_FAILED, &ids), 0);
	// paging through the tag index
	cpl_filter f;
	bool more = false;
	memset(&f, 0, sizeof f);
	f.tags = h2o;
	f.ntags = 1;
	ids.n = 0;
	TU_OK(tu_query(e, &f, 0, 1, &ids, &more));
	assert_int_equal(ids.n, 1);
	assert_true(more && ids.id[0] == a);
	ids.n = 0;
	TU_OK(tu_query(e, &f, a, 1, &ids, &more));
	assert_true(ids.n == 1 && ids.id[0] == b && !more);
	TU_EQ_U64(count_tag(e, "system=H2O", CPL_READY), 2);
	TU_EQ_U64(count_tag(e, "run=1", CPL_READY), 2);
	TU_EQ_U64(count_tag(e, "system=XE", CPL_READY), 0);
	(void)d;
	TU_CHECK(e);
}

static void
test_malformed_refused(void **state)
{
	tu_env *e = *state;
	uint64_t a = tagged(e, "a", "w", 0, "k=v", NULL);
	static const char *const bad[] = { "novalue", "=v", "", "k=\x01",
		"k=\xff\xfe", "k=\xc0\xaf" };
	tu_snap s;
	tu_snap_take(e, a, &s);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tu_spec sp;
		char *tags[1] = { (char *)bad[i] };
		tu_spec_init(&sp, "bad", "w", NULL);
		sp.spec.tags = tags;
		sp.spec.n_tags = 1;
		TU_ERR(tu_create_spec(e, &sp.spec, NULL, NULL), CPL_EINVAL);
		cpl_filter f;
		tu_ids ids;
		memset(&f, 0, sizeof f);
		f.tags = bad + i;
		f.ntags = 1;
		TU_ERR(tu_query(e, &f, 0, 0, &ids, NULL), CPL_EINVAL);
	}
	// too long
	char big[300];
	memset(big, 'a', sizeof big - 1);
	big[0] = 'k';
	big[1] = '=';
	big[sizeof big - 1] = '\0';
	tu_spec sp;
	char *tags[1] = { big };
	tu_spec_init(&sp, "bad", "w", NULL);
	sp.spec.tags = tags;
	sp.spec.n_tags = 1;
	TU_ERR(tu_create_spec(e, &sp.spec, NULL, NULL), CPL_EINVAL);
	tu_snap_same(e, a, &s, "malformed tags");
	TU_CHECK(e);
}

static void
test_claim_by_tag(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 60000);
	uint64_t lo = tagged(e, "lo", "w1", 0, "g=1", NULL);
	uint64_t other = tagged(e, "other", "w1", 9, "g=2", NULL);
	uint64_t hi = tagged(e, "hi", "w2", 5, "g=1", "x=y", NULL);
	uint64_t plain = tu_task(e, "plain", "w1", 0);
	cpl_node_cap nodes[8];
	cpl_capacity cap;
	tu_claimed got;
	const char *g1[] = { "g=1" };
	for (int i = 0; i < 8; i++) {
		nodes[i].free_units = CPL_NODE_UNITS;
		nodes[i].free_gpus = 0;
	}
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = 8;
	cap.nodes = nodes;
	cap.nnodes = 8;
	cap.tags = g1;
	cap.ntags = 1;
	TU_OK(tu_claim(e, lease, &cap, &got));
	// priority order within the tag, nothing else
	assert_int_equal(got.n, 2);
	assert_true(got.id[0] == hi && got.id[1] == lo);
	TU_CHECK(e);
	// the untagged claim takes what is left, not the claimed ones
	TU_OK(tu_claim_n(e, lease, 8, &got));
	assert_int_equal(got.n, 2);
	assert_true(got.id[0] == other && got.id[1] == plain);
	TU_CHECK(e);
	// claims given back (a launcher's exit) are claimable by their tag
	// again
	TU_OK(tu_release(e, lease));
	TU_CHECK(e);
	lease = tu_lease(e, 60000);
	for (int i = 0; i < 8; i++)
		nodes[i].free_units = CPL_NODE_UNITS;
	TU_OK(tu_claim(e, lease, &cap, &got));
	assert_int_equal(got.n, 2);
	assert_true(got.id[0] == hi && got.id[1] == lo);
	TU_CHECK(e);
	// the tag's counters follow its tasks' transitions
	TU_EQ_U64(count_tag(e, "g=1", CPL_READY), 2);
	TU_OK(tu_report(e, lo, lease, tu_task_get(e, lo).attempt, CPL_RUNNING));
	TU_EQ_U64(count_tag(e, "g=1", CPL_READY), 1);
	TU_EQ_U64(count_tag(e, "g=1", CPL_RUNNING), 1);
	uint64_t killed = 0;
	TU_OK(tu_kill(e, hi, &killed));
	TU_EQ_U64(count_tag(e, "g=1", CPL_READY), 0);
	TU_EQ_U64(count_tag(e, "g=1", CPL_USER_KILLED), 1);
	TU_EQ_U64(count_tag(e, "x=y", CPL_USER_KILLED), 1);
	TU_CHECK(e);
}

static void
test_claim_tags_and_workflow(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 60000);
	uint64_t a = tagged(e, "a", "w1", 0, "g=1", "h=1", NULL);
	tagged(e, "b", "w2", 0, "g=1", "h=1", NULL);
	tagged(e, "c", "w1", 0, "g=1", NULL);
	cpl_node_cap nodes[8];
	cpl_capacity cap;
	tu_claimed got;
	const char *gh[] = { "g=1", "h=1" };
	for (int i = 0; i < 8; i++) {
		nodes[i].free_units = CPL_NODE_UNITS;
		nodes[i].free_gpus = 0;
	}
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = 8;
	cap.nodes = nodes;
	cap.nnodes = 8;
	cap.tags = gh;
	cap.ntags = 2;
	cap.workflow = "w1";
	TU_OK(tu_claim(e, lease, &cap, &got));
	assert_true(got.n == 1 && got.id[0] == a);
	// a malformed tag: refused, nothing claimed
	const char *bad[] = { "nokey" };
	cap.tags = bad;
	cap.ntags = 1;
	cap.workflow = NULL;
	TU_ERR(tu_claim(e, lease, &cap, &got), CPL_EINVAL);
	TU_EQ_U64(tu_count(e, CPL_READY), 3);
	TU_CHECK(e);
}

static void
test_update_and_delete(void **state)
{
	tu_env *e = *state;
	uint64_t a = tagged(e, "a", "w", 0, "old=1", NULL);
	uint64_t b = tu_task(e, "b", "w", 0);
	tu_ids ids;
	const char *old[] = { "old=1" }, *nw[] = { "new=1" };
	// new tags replace the old in every index
	cpl_task t;
	TU_OK(tu_get_spec(e, a, &t));
	char *tags[2] = { "new=1", "more=2" };
	char **own = t.spec->tags; // the unpacked spec's, freed with it
	size_t nown = t.spec->n_tags;
	t.spec->tags = tags;
	t.spec->n_tags = 2;
	TU_OK(tu_update_spec(e, a, t.spec));
	t.spec->n_tags = nown;
	t.spec->tags = own;
	cpl_task_clear(&t);
	assert_int_equal(query_tags(e, old, 1, 0, &ids), 0);
	assert_int_equal(query_tags(e, nw, 1, 0, &ids), 1);
	TU_CHECK(e);
	// an untagged task gains tags
	TU_OK(tu_get_spec(e, b, &t));
	own = t.spec->tags;
	nown = t.spec->n_tags;
	t.spec->tags = tags;
	t.spec->n_tags = 1;
	TU_OK(tu_update_spec(e, b, t.spec));
	t.spec->n_tags = nown;
	t.spec->tags = own;
	cpl_task_clear(&t);
	assert_int_equal(query_tags(e, nw, 1, 0, &ids), 2);
	TU_CHECK(e);
	// and loses them
	TU_OK(tu_get_spec(e, a, &t));
	nown = t.spec->n_tags;
	t.spec->n_tags = 0;
	TU_OK(tu_update_spec(e, a, t.spec));
	t.spec->n_tags = nown;
	cpl_task_clear(&t);
	assert_int_equal(query_tags(e, nw, 1, 0, &ids), 1);
	TU_CHECK(e);
	TU_OK(tu_delete(e, b));
	assert_int_equal(query_tags(e, nw, 1, 0, &ids), 0);
	TU_EQ_U64(count_tag(e, "new=1", CPL_READY), 0);
	TU_CHECK(e);
}

// Makes the database of e look as one written before the tag indices:
// their four sub-databases dropped, and the "tagged" flag (bit 16 of the
// third byte of a state record, store/src/store_impl.h) cleared.
static void
make_old(tu_env *e)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi d;
	MDB_cursor *c;
	MDB_val k, v;
	static const char *const names[] = { "tags", "tag_idx", "tag_runq",
		"tag_cnt" };
	cpl_store_close(e->s);
	e->s = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 64);
	mdb_env_set_mapsize(env, 1u << 30);
	assert_int_equal(mdb_env_open(env, e->dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(mdb_dbi_open(txn, names[i], 0, &d), 0);
		assert_int_equal(mdb_drop(txn, d, 1), 0);
	}
	assert_int_equal(mdb_dbi_open(txn, "state", 0, &d), 0);
	assert_int_equal(mdb_cursor_open(txn, d, &c), 0);
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint8_t rec[80];
		assert_int_equal(v.mv_size, sizeof rec);
		memcpy(rec, v.mv_data, sizeof rec);
		rec[2] &= (uint8_t)~16u;
		MDB_val nv = { sizeof rec, rec };
		assert_int_equal(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
	}
	mdb_cursor_close(c);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
test_old_database_indexed_at_open(void **state)
{
	tu_env *e = *state;
	uint64_t a = tagged(e, "a", "w", 0, "k=v", NULL);
	uint64_t b = tagged(e, "b", "w", 3, "k=v", "z=1", NULL);
	tu_task(e, "c", "w", 0);
	uint64_t lease = tu_lease(e, 600000);
	tu_finish(e, lease, "w2", tu_task(e, "done", "w2", 0));
	make_old(e);
	TU_OK(cpl_store_open(e->dir, &e->opts, &e->s));
	tu_ids ids;
	const char *kv[] = { "k=v" };
	assert_int_equal(query_tags(e, kv, 1, 0, &ids), 2);
	assert_true(ids.id[0] == a && ids.id[1] == b);
	TU_EQ_U64(count_tag(e, "k=v", CPL_READY), 2);
	TU_CHECK(e);
	// and claimable by tag
	cpl_node_cap nodes[2] = { { CPL_NODE_UNITS, 0 }, { CPL_NODE_UNITS, 0 } };
	cpl_capacity cap;
	tu_claimed got;
	const char *z[] = { "z=1" };
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = 2;
	cap.nodes = nodes;
	cap.nnodes = 2;
	cap.tags = z;
	cap.ntags = 1;
	TU_OK(tu_claim(e, lease, &cap, &got));
	assert_true(got.n == 1 && got.id[0] == b);
	TU_CHECK(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_query_and_count, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_refused, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_by_tag, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_tags_and_workflow,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_update_and_delete, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_old_database_indexed_at_open, tu_setup_durable,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
