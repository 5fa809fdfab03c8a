// Tasks: create, get, spec round trip, initial states, ids and uuids,
// lookup by uuid prefix, refused creates that write nothing, notes.
#include "copal/testing/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

// ------------------------------------------------------------ round trip

static void
test_create_get_spec_roundtrip(void **state)
{
	tu_env *e = *state;
	Copal__TaskSpec sp = COPAL__TASK_SPEC__INIT;
	Copal__Resources res = COPAL__RESOURCES__INIT;
	Copal__EnvVar ev1 = COPAL__ENV_VAR__INIT, ev2 = COPAL__ENV_VAR__INIT;
	Copal__EnvVar *envs[2] = { &ev1, &ev2 };
	char *tags[3] = { "greek=alpha", "greek=beta", "greek=gamma" };
	char *inputs[2] = { "*.dat", "out/*.json" };

	ev1.name = "OMP_PROC_BIND";
	ev1.value = "spread";
	ev2.name = "EMPTY";
	ev2.value = "";
	res.num_nodes = 3;
	res.ranks_per_node = 4;
	res.threads_per_rank = 2;
	res.threads_per_core = 1;
	res.cpu_affinity = "depth";
	res.gpus_per_rank = 1;
	res.node_packing_count = 1;
	res.wall_time_minutes = 45;
	sp.name = "sim-42";
	sp.workflow = "campaign";
	sp.description = "a task with every field set";
	sp.application = "app";
	sp.args = "--in x.dat --steps 100 'quoted arg'";
	sp.n_environ = 2;
	sp.environ = envs;
	sp.data_json = "{\"x\": 1, \"y\": [1,2,3]}";
	sp.n_tags = 3;
	sp.tags = tags;
	sp.resources = &res;
	sp.n_input_files = 2;
	sp.input_files = inputs;
	sp.stage_in_url = "file:///tmp/in";
	sp.stage_out_files = "*.out *.log";
	sp.stage_out_url = "file:///tmp/out";
	sp.workdir = "campaign/sim-42";
	sp.auto_timeout_retry = 1;
	sp.post_error_handler = 1;
	sp.post_timeout_handler = 0;
	sp.max_retries = 7;
	sp.priority = -12;

	uint64_t id = 0;
	uint8_t uuid[16];
	TU_OK(tu_create_spec(e, &sp, &id, uuid));
	assert_true(id != 0);

	cpl_task t;
	TU_OK(tu_get_spec(e, id, &t));
	assert_int_equal(t.id, id);
	assert_memory_equal(t.uuid, uuid, 16);
	TU_EQ_STATE(t.state, CPL_READY);
	assert_int_equal(t.attempt, 0);
	assert_int_equal(t.lease, 0);
	assert_int_equal(t.pending_parents, 0);
	assert_int_equal(t.priority, -12);
	TU_EQ_U64(t.created_us, TU_T0);
	TU_EQ_U64(t.changed_us, TU_T0);
	assert_non_null(t.spec);
	Copal__TaskSpec *g = t.spec;
	assert_string_equal(g->name, "sim-42");
	assert_string_equal(g->workflow, "campaign");
	assert_string_equal(g->description, "a task with every field set");
	assert_string_equal(g->application, "app");
	assert_string_equal(g->args, sp.args);
	assert_int_equal(g->n_environ, 2);
	assert_string_equal(g->environ[0]->name, "OMP_PROC_BIND");
	assert_string_equal(g->environ[0]->value, "spread");
	assert_string_equal(g->environ[1]->name, "EMPTY");
	assert_string_equal(g->environ[1]->value, "");
	assert_string_equal(g->data_json, sp.data_json);
	assert_int_equal(g->n_tags, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(g->tags[i], tags[i]);
	assert_non_null(g->resources);
	assert_int_equal(g->resources->num_nodes, 3);
	assert_int_equal(g->resources->ranks_per_node, 4);
	assert_int_equal(g->resources->threads_per_rank, 2);
	assert_int_equal(g->resources->threads_per_core, 1);
	assert_string_equal(g->resources->cpu_affinity, "depth");
	assert_int_equal(g->resources->gpus_per_rank, 1);
	assert_int_equal(g->resources->node_packing_count, 1);
	assert_int_equal(g->resources->wall_time_minutes, 45);
	assert_int_equal(g->n_parent_ids, 0);
	assert_int_equal(g->n_input_files, 2);
	assert_string_equal(g->input_files[0], "*.dat");
	assert_string_equal(g->input_files[1], "out/*.json");
	assert_string_equal(g->stage_in_url, "file:///tmp/in");
	assert_string_equal(g->stage_out_files, "*.out *.log");
	assert_string_equal(g->stage_out_url, "file:///tmp/out");
	assert_string_equal(g->workdir, "campaign/sim-42");
	assert_true(g->auto_timeout_retry);
	assert_true(g->post_error_handler);
	assert_false(g->post_timeout_handler);
	assert_int_equal(g->max_retries, 7);
	assert_int_equal(g->priority, -12);
	cpl_task_clear(&t);

	// Without CPL_GET_SPEC no spec is given.
	TU_OK(tu_get(e, id, &t));
	assert_null(t.spec);
	assert_int_equal(t.id, id);

	// One history event CREATED -> READY.
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_int_equal(h->n, 1);
	TU_EQ_STATE(h->e[0].ev.from, CPL_CREATED);
	TU_EQ_STATE(h->e[0].ev.to, CPL_READY);
	assert_int_equal(h->e[0].ev.task_id, id);
	TU_EQ_U64(h->e[0].ev.time_us, TU_T0);
	free(h);
	TU_COUNTS_CONSISTENT(e);
	assert_int_equal(tu_count(e, CPL_READY), 1);
}

// A spec with parents keeps its parent list.
static void
test_create_parent_list_roundtrip(void **state)
{
	tu_env *e = *state;
	uint64_t a = tu_task(e, "a", "wf", 0);
	uint64_t b = tu_task(e, "b", "wf", 0);
	uint64_t c = tu_task(e, "c", "wf", 2, b, a);
	cpl_task t;
	TU_OK(tu_get_spec(e, c, &t));
	assert_int_equal(t.spec->n_parent_ids, 2);
	bool ha = false, hb = false;
	for (size_t i = 0; i < 2; i++) {
		ha |= t.spec->parent_ids[i] == a;
		hb |= t.spec->parent_ids[i] == b;
	}
	assert_true(ha && hb);
	cpl_task_clear(&t);
	assert_null(t.spec);
}

static void
test_get_not_found(void **state)
{
	tu_env *e = *state;
	cpl_task t;
	TU_ERR(tu_get(e, 1, &t), CPL_ENOTFOUND);
	TU_ERR(tu_get(e, 999999, &t), CPL_ENOTFOUND);
	uint64_t id = tu_task(e, "x", "wf", 0);
	TU_ERR(tu_get(e, id + 1, &t), CPL_ENOTFOUND);
	TU_ERR(tu_get(e, 0, &t), CPL_ENOTFOUND);
}

// ------------------------------------------------------------ initial state

static void
test_create_initial_states(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 60000);

	uint64_t p_open = tu_task(e, "open", "p1", 0);
	uint64_t p_done = tu_task(e, "done", "p2", 0);
	uint64_t p_fail = tu_task(e, "fail", "p3", 0);
	uint64_t p_kill = tu_task(e, "kill", "p4", 0);
	tu_finish(e, lease, "p2", p_done);
	uint32_t att = tu_claim_task(e, lease, "p3", p_fail);
	TU_OK(tu_report(e, p_fail, lease, att, CPL_FAILED));
	TU_STATE(e, p_fail, CPL_FAILED);
	TU_OK(tu_kill(e, p_kill, NULL));
	TU_STATE(e, p_kill, CPL_USER_KILLED);

	struct {
		const char *name;
		uint64_t parent;
		cpl_state want;
		uint32_t pending;
	} cases[] = {
		{ "c-open", p_open, CPL_AWAITING_PARENTS, 1 },
		{ "c-done", p_done, CPL_READY, 0 },
		{ "c-fail", p_fail, CPL_PARENT_KILLED, 0 },
		{ "c-kill", p_kill, CPL_PARENT_KILLED, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t c = tu_task(e, cases[i].name, "kids", 1,
		    cases[i].parent);
		cpl_task t = tu_task_get(e, c);
		TU_EQ_STATE(t.state, cases[i].want);
		if (cases[i].want != CPL_PARENT_KILLED)
			assert_int_equal(t.pending_parents, cases[i].pending);
		tu_evs *h = calloc(1, sizeof *h);
		TU_OK(tu_history(e, c, h));
		assert_int_equal(h->n, 1);
		TU_EQ_STATE(h->e[0].ev.from, CPL_CREATED);
		TU_EQ_STATE(h->e[0].ev.to, cases[i].want);
		free(h);
	}
	// A child of two parents, one finished and one open, waits for one.
	uint64_t c2 = tu_task(e, "two", "kids", 2, p_done, p_open);
	cpl_task t = tu_task_get(e, c2);
	TU_EQ_STATE(t.state, CPL_AWAITING_PARENTS);
	assert_int_equal(t.pending_parents, 1);
	// One open parent and one failed parent: killed at once.
	uint64_t c3 = tu_task(e, "mixed", "kids", 2, p_open, p_fail);
	TU_STATE(e, c3, CPL_PARENT_KILLED);
	TU_COUNTS_CONSISTENT(e);
}

// ------------------------------------------------------------ ids, uuids

static void
test_ids_monotonic_uuids_random(void **state)
{
	tu_env *e = *state;
	enum { N = 40 };
	uint64_t ids[N];
	uint8_t uuids[N][16];
	tu_spec sp;
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof name, "t%d", i);
		tu_spec_init(&sp, name, "wf", "app");
		TU_OK(tu_create_spec(e, &sp.spec, &ids[i], uuids[i]));
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
		// Random (version 4, RFC 4122 variant) uuids from libuuid.
		assert_int_equal(uuids[i][6] >> 4, 4);
		assert_int_equal(uuids[i][8] & 0xc0, 0x80);
		for (int j = 0; j < i; j++)
			assert_memory_not_equal(uuids[i], uuids[j], 16);
		cpl_task t = tu_task_get(e, ids[i]);
		assert_memory_equal(t.uuid, uuids[i], 16);
	}
	// Ids are never reused, even after a delete of the newest.
	TU_OK(tu_delete(e, ids[N - 1]));
	uint64_t next = tu_task(e, "after-delete", "wf", 0);
	assert_true(next > ids[N - 1]);
}

static void
test_uuid_format(void **state)
{
	(void)state;
	uint8_t u[16];
	for (int round = 0; round < 20; round++) {
		uuid_generate_random(u);
		char buf[37], ref[37];
		memset(buf, 'Z', sizeof buf);
		cpl_uuid_format(u, buf);
		uuid_unparse_lower(u, ref);
		assert_int_equal(strlen(buf), 36);
		assert_string_equal(buf, ref);
	}
	const uint8_t fixed[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
		0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
	char buf[37];
	cpl_uuid_format(fixed, buf);
	assert_string_equal(buf, "01234567-89ab-cdef-fedc-ba9876543210");
}

// ------------------------------------------------------------ lookup

static void
hex32(const uint8_t u[16], char out[33])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[u[i] >> 4];
		out[2 * i + 1] = digits[u[i] & 15];
	}
	out[32] = '\0';
}

static void
test_lookup_prefix(void **state)
{
	tu_env *e = *state;
	enum { N = 24 }; // > 16: some first hex digit is shared
	uint64_t ids[N];
	char hex[N][33];
	tu_spec sp;
	for (int i = 0; i < N; i++) {
		uint8_t u[16];
		char name[32];
		snprintf(name, sizeof name, "t%d", i);
		tu_spec_init(&sp, name, "wf", "app");
		TU_OK(tu_create_spec(e, &sp.spec, &ids[i], u));
		hex32(u, hex[i]);
	}

	for (int i = 0; i < N; i++) {
		uint64_t got = 0;
		// Full hex and canonical form (dashes ignored).
		TU_OK(tu_lookup(e, hex[i], &got));
		assert_int_equal(got, ids[i]);
		cpl_task t = tu_task_get(e, ids[i]);
		char canon[37];
		cpl_uuid_format(t.uuid, canon);
		got = 0;
		TU_OK(tu_lookup(e, canon, &got));
		assert_int_equal(got, ids[i]);

		// The shortest prefix unique among the tasks finds it.
		size_t len = 1;
		for (; len <= 32; len++) {
			int shared = 0;
			for (int j = 0; j < N; j++)
				if (j != i && strncmp(hex[i], hex[j], len) == 0)
					shared = 1;
			if (!shared)
				break;
		}
		assert_true(len <= 32);
		char pre[40];
		snprintf(pre, sizeof pre, "%.*s", (int)len, hex[i]);
		got = 0;
		TU_OK(tu_lookup(e, pre, &got));
		assert_int_equal(got, ids[i]);
		// One digit shorter is ambiguous (when len > 1).
		if (len > 1) {
			pre[len - 1] = '\0';
			TU_ERR(tu_lookup(e, pre, &got), CPL_EAMBIGUOUS);
		}
		// A prefix of 8 digits given with the canonical dash.
		if (len <= 8) {
			char dashed[16];
			snprintf(dashed, sizeof dashed, "%.8s-%.2s", canon,
			    canon + 9);
			got = 0;
			TU_OK(tu_lookup(e, dashed, &got));
			assert_int_equal(got, ids[i]);
		}
	}

	// Pigeonhole: some first digit is shared by two tasks.
	int shared_digit = -1;
	for (int d = 0; d < 16 && shared_digit < 0; d++) {
		int n = 0;
		for (int i = 0; i < N; i++)
			if (hex[i][0] == "0123456789abcdef"[d])
				n++;
		if (n >= 2)
			shared_digit = d;
	}
	assert_true(shared_digit >= 0);
	char one[2] = { "0123456789abcdef"[shared_digit], '\0' };
	uint64_t got = 12345;
	TU_ERR(tu_lookup(e, one, &got), CPL_EAMBIGUOUS);

	// Some two-digit prefix is unused (24 tasks, 256 prefixes).
	char two[3] = "";
	for (int v = 0; v < 256 && two[0] == '\0'; v++) {
		char cand[3];
		snprintf(cand, sizeof cand, "%02x", v);
		int used = 0;
		for (int i = 0; i < N; i++)
			if (strncmp(hex[i], cand, 2) == 0)
				used = 1;
		if (!used)
			memcpy(two, cand, 3);
	}
	assert_true(two[0] != '\0');
	TU_ERR(tu_lookup(e, two, &got), CPL_ENOTFOUND);

	// A full uuid nobody has.
	char other[33];
	memcpy(other, hex[0], 33);
	other[31] = other[31] == '0' ? '1' : '0';
	int unused = 1;
	for (int i = 0; i < N; i++)
		if (strcmp(hex[i], other) == 0)
			unused = 0;
	if (unused)
		TU_ERR(tu_lookup(e, other, &got), CPL_ENOTFOUND);

	// Not hex, or no digit at all.
	const char *bad[] = { "", "-", "---", "xyz", "12g4", "g", "0x12",
		"ab cd", "1.2" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rv = tu_lookup(e, bad[i], &got);
		if (rv != CPL_EINVAL)
			TU_FAIL("lookup(\"%s\") returned %s (%s), expected "
			        "INVAL",
			    bad[i], cpl_errname(rv), cpl_strerror(rv));
	}

	// A deleted task is not found any more.
	TU_OK(tu_delete(e, ids[3]));
	TU_ERR(tu_lookup(e, hex[3], &got), CPL_ENOTFOUND);
}

// ------------------------------------------------------------ refusals

typedef struct two_creates {
	const Copal__TaskSpec *first, *bad, *last;
	int rv_first, rv_bad, rv_last;
	uint64_t id_first, id_bad, id_last;
} two_creates;

static int
two_creates_cb(cpl_txn *txn, void *arg)
{
	two_creates *a = arg;
	uint8_t u[16];
	a->id_first = a->id_bad = a->id_last = 0;
	a->rv_first = cpl_task_create(txn, a->first, &a->id_first, u);
	a->rv_bad = cpl_task_create(txn, a->bad, &a->id_bad, u);
	a->rv_last = a->last ? cpl_task_create(txn, a->last, &a->id_last, u)
	                     : 0;
	return a->rv_first; // commit what was accepted
}

// A refused create inside a transaction writes nothing; what came before
// and after in the same transaction stays.
static void
refused_create_writes_nothing(tu_env *e, tu_spec *bad, int want)
{
	tu_spec first, last;
	tu_spec_init(&first, "first", "good-wf", "app");
	tu_spec_init(&last, "last", "good-wf", "app");
	cpl_store_stats before = tu_stats(e);
	uint64_t c0[CPL_NSTATES];
	TU_OK(tu_counts(e, c0));

	two_creates a = { &first.spec, &bad->spec, &last.spec, 0, 0, 0, 0, 0,
		0 };
	TU_OK(cpl_store_write(e->s, two_creates_cb, &a));
	TU_OK(a.rv_first);
	TU_ERR(a.rv_bad, want);
	TU_OK(a.rv_last);

	cpl_store_stats after = tu_stats(e);
	TU_EQ_U64(after.ntasks, before.ntasks + 2);
	TU_EQ_U64(after.nevents, before.nevents + 2);
	uint64_t c1[CPL_NSTATES];
	TU_OK(tu_counts(e, c1));
	TU_EQ_U64(c1[CPL_READY], c0[CPL_READY] + 2);
	for (int s = 0; s < CPL_NSTATES; s++)
		if (s != CPL_READY)
			TU_EQ_U64(c1[s], c0[s]);

	// Nothing with the bad task's name or workflow exists.
	tu_ids ids;
	cpl_filter f;
	memset(&f, 0, sizeof f);
	f.name = bad->name;
	if (bad->name[0] != '\0') {
		TU_OK(tu_query(e, &f, 0, 0, &ids, NULL));
		assert_int_equal(ids.n, 0);
	}
	memset(&f, 0, sizeof f);
	f.workflow = "bad-wf";
	TU_OK(tu_query(e, &f, 0, 0, &ids, NULL));
	assert_int_equal(ids.n, 0);
	tu_names wfs;
	TU_OK(tu_workflows(e, &wfs));
	assert_int_equal(tu_names_count(&wfs, "bad-wf"), -1);
	TU_COUNTS_CONSISTENT(e);
	TU_CHECK(e);
}

static void
test_create_unknown_app(void **state)
{
	tu_env *e = *state;
	tu_spec bad;
	tu_spec_init(&bad, "ghost-task", "bad-wf", "no-such-app");
	refused_create_writes_nothing(e, &bad, CPL_ENOTFOUND);
	// And the unknown app did not appear either.
	tu_names apps;
	TU_OK(tu_apps(e, &apps));
	assert_int_equal(tu_names_count(&apps, "no-such-app"), -1);
	assert_int_equal(apps.n, 1);
	Copal__App *app = NULL;
	TU_ERR(tu_app_get(e, "no-such-app", &app), CPL_ENOTFOUND);
	assert_null(app);
}

static void
test_create_empty_name(void **state)
{
	tu_env *e = *state;
	tu_spec bad;
	tu_spec_init(&bad, "", "bad-wf", "app");
	refused_create_writes_nothing(e, &bad, CPL_EINVAL);
}

static void
test_create_duplicate_parent(void **state)
{
	tu_env *e = *state;
	uint64_t p = tu_task(e, "p", "wf", 0);
	tu_spec bad;
	tu_spec_init(&bad, "dup", "bad-wf", "app");
	tu_spec_parent(&bad, p);
	tu_spec_parent(&bad, p);
	refused_create_writes_nothing(e, &bad, CPL_EINVAL);
	// The parent got no child.
	tu_ids kids;
	TU_OK(tu_children(e, p, &kids));
	assert_int_equal(kids.n, 0);
}

static void
test_create_unknown_parent(void **state)
{
	tu_env *e = *state;
	uint64_t p = tu_task(e, "p", "wf", 0);
	tu_spec bad;
	tu_spec_init(&bad, "orphan", "bad-wf", "app");
	tu_spec_parent(&bad, p);
	tu_spec_parent(&bad, p + 1000);
	refused_create_writes_nothing(e, &bad, CPL_ENOTFOUND);
	tu_ids kids;
	TU_OK(tu_children(e, p, &kids));
	assert_int_equal(kids.n, 0);
}

static void
test_create_null_resources_ok(void **state)
{
	tu_env *e = *state;
	// Resources absent: everything is read as its default.
	Copal__TaskSpec sp = COPAL__TASK_SPEC__INIT;
	sp.name = "bare";
	sp.application = "app";
	uint64_t id = 0;
	TU_OK(tu_create_spec(e, &sp, &id, NULL));
	TU_STATE(e, id, CPL_READY);
	// And such a task is claimable on one free node.
	uint64_t lease = tu_lease(e, 60000);
	tu_claimed *c = calloc(1, sizeof *c);
	TU_OK(tu_claim_n(e, lease, 4, c));
	assert_int_equal(c->n, 1);
	assert_int_equal(c->id[0], id);
	free(c);
}

// ------------------------------------------------------------ notes

static void
test_history_note(void **state)
{
	tu_env *e = *state;
	uint64_t id = tu_task(e, "n", "wf", 0);
	tu_advance_ms(e, 5);
	TU_OK(tu_note(e, id, "looked at it"));
	TU_STATE(e, id, CPL_READY);
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_int_equal(h->n, 2);
	assert_string_equal(h->e[1].msg, "looked at it");
	assert_true(h->e[1].ev.seq > h->e[0].ev.seq);
	TU_EQ_U64(h->e[1].ev.time_us, TU_T0 + 5000);
	free(h);
	TU_ERR(tu_note(e, id + 100, "nobody"), CPL_ENOTFOUND);
	assert_int_equal(tu_count(e, CPL_READY), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_get_spec_roundtrip,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_create_parent_list_roundtrip, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_get_not_found, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_initial_states,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_ids_monotonic_uuids_random, tu_setup, tu_teardown),
		cmocka_unit_test(test_uuid_format),
		cmocka_unit_test_setup_teardown(test_lookup_prefix, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_unknown_app,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_empty_name,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_duplicate_parent,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_unknown_parent,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_null_resources_ok,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_note, tu_setup,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
