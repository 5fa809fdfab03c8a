// Integration tests of tags, app parameters and launch parameters through
// the protocol, against a real copal-broker: Filter.tags in query, count,
// modify, kill and delete; ClaimRequest.tags; ExportRequest.tags; App.params
// checked at registration; TaskSpec.params checked against the app at
// creation (the whole batch refused, the parameter named); bad tags and
// launch parameters refused with nothing changed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/broker.h"

// Creates specs in one request; the reply (free it), or NULL if refused
// with `want` (whose message is copied into err).
static Copal__Reply *
create(cpl_client *c, Copal__TaskSpec **sp, size_t n, int want)
{
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = n;
	cr.tasks = sp;
	BH_REQ(rq, CREATE, create, &cr);
	return BH_CALL(c, &rq, want);
}

static uint64_t
tagged(cpl_client *c, const char *name, const char *wf, char **tags,
    size_t ntags)
{
	Copal__TaskSpec s = bh_spec(name, wf, "app"), *sp = &s;
	s.tags = tags;
	s.n_tags = ntags;
	Copal__Reply *r = create(c, &sp, 1, 0);
	uint64_t id = r->create->first_id;
	bh_free(r);
	return id;
}

static uint64_t
count_tags(cpl_client *c, char **tags, size_t n, int state)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	uint64_t by[CPL_NSTATES];
	f.tags = tags;
	f.n_tags = n;
	uint64_t total = bh_count(c, &f, by);
	return state ? by[state] : total;
}

static void
test_filters(void **state)
{
	bh_fx *f = *state;
	char *h1[] = { "system=H2O", "run=1" }, *h2[] = { "system=H2O", "run=2" };
	char *c1[] = { "system=CO2", "run=1" };
	uint64_t a = tagged(f->c, "a", "w", h1, 2);
	uint64_t b = tagged(f->c, "b", "w", h2, 2);
	uint64_t c = tagged(f->c, "c", "w", c1, 2);
	uint64_t d = bh_create(f->c, 1, "plain", "w", "app");
	char *h2o[] = { "system=H2O" }, *run1[] = { "run=1" };
	char *h2o_run1[] = { "system=H2O", "run=1" };
	BH_EQ_U64(count_tags(f->c, h2o, 1, 0), 2);
	BH_EQ_U64(count_tags(f->c, run1, 1, CPL_READY), 2);
	BH_EQ_U64(count_tags(f->c, h2o_run1, 2, 0), 1);

	// query: the first page by tag, in id order
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	Copal__Filter fl = COPAL__FILTER__INIT;
	fl.tags = h2o;
	fl.n_tags = 1;
	q.filter = &fl;
	q.limit = 1;
	BH_REQ(rq, QUERY, query, &q);
	Copal__Reply *r = BH_OK(f->c, &rq);
	BH_CHECK(r->query->n_tasks == 1 && r->query->tasks[0]->id == a &&
	    r->query->more, "first page of system=H2O");
	bh_free(r);

	// modify by tag
	Copal__ModifyRequest m = COPAL__MODIFY_REQUEST__INIT;
	Copal__Filter mf = COPAL__FILTER__INIT;
	mf.tags = h2o_run1;
	mf.n_tags = 2;
	m.filter = &mf;
	m.field = "priority";
	m.value = "5";
	BH_REQ(mrq, MODIFY, modify, &m);
	r = BH_OK(f->c, &mrq);
	BH_EQ_U64(r->modify->matched, 1);
	bh_free(r);
	Copal__Task *t;
	r = bh_query_id(f->c, a, true, &t);
	BH_CHECK(t->spec->priority == 5, "a's priority after modify by tag");
	bh_free(r);
	r = bh_query_id(f->c, b, true, &t);
	BH_CHECK(t->spec->priority == 0, "b untouched by modify by tag");
	bh_free(r);

	// kill by tag
	Copal__KillRequest k = COPAL__KILL_REQUEST__INIT;
	Copal__Filter kf = COPAL__FILTER__INIT;
	char *co2[] = { "system=CO2" };
	kf.tags = co2;
	kf.n_tags = 1;
	k.filter = &kf;
	BH_REQ(krq, KILL, kill, &k);
	r = BH_OK(f->c, &krq);
	BH_EQ_U64(r->kill->killed, 1);
	bh_free(r);
	BH_STATE(f->c, c, CPL_USER_KILLED);
	BH_STATE(f->c, a, CPL_READY);

	// delete by tag, with explicit ids too: both must match
	Copal__DeleteRequest del = COPAL__DELETE_REQUEST__INIT;
	Copal__Filter df = COPAL__FILTER__INIT;
	uint64_t ids[] = { a, d };
	df.tags = h2o;
	df.n_tags = 1;
	df.ids = ids;
	df.n_ids = 2;
	del.filter = &df;
	BH_REQ(drq, DELETE, delete_, &del);
	r = BH_OK(f->c, &drq);
	BH_EQ_U64(r->delete_->deleted, 1);
	bh_free(r);
	BH_CHECK(bh_state(f->c, a) < 0, "a deleted by tag");
	BH_STATE(f->c, d, CPL_READY);
	BH_EQ_U64(count_tags(f->c, h2o, 1, 0), 1);
}

static void
test_bad_tags(void **state)
{
	bh_fx *f = *state;
	char *ok[] = { "k=v" };
	tagged(f->c, "a", "w", ok, 1);
	bh_snap before, after;
	bh_snapshot(f->c, &before);
	static char *bad[] = { "novalue", "=v", "", "k=\x01" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		// in a create batch: the good task before it is not added
		Copal__TaskSpec s[2] = { bh_spec("good", "w", "app"),
			bh_spec("bad", "w", "app") };
		Copal__TaskSpec *sp[2] = { &s[0], &s[1] };
		s[0].tags = ok;
		s[0].n_tags = 1;
		s[1].tags = &bad[i];
		s[1].n_tags = 1;
		Copal__Reply *r = create(f->c, sp, 2, CPL_EINVAL);
		bh_free(r);
		// in a filter
		Copal__Filter fl = COPAL__FILTER__INIT;
		Copal__CountRequest cq = COPAL__COUNT_REQUEST__INIT;
		fl.tags = &bad[i];
		fl.n_tags = 1;
		cq.filter = &fl;
		BH_REQ(rq, COUNT, count, &cq);
		bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
		Copal__KillRequest k = COPAL__KILL_REQUEST__INIT;
		k.filter = &fl;
		BH_REQ(krq, KILL, kill, &k);
		bh_free(BH_CALL(f->c, &krq, CPL_EINVAL));
		// in an export
		Copal__ExportRequest ex = COPAL__EXPORT_REQUEST__INIT;
		ex.tags = &bad[i];
		ex.n_tags = 1;
		BH_REQ(erq, EXPORT, export, &ex);
		bh_free(BH_CALL(f->c, &erq, CPL_EINVAL));
		// in a claim
		uint64_t lease = bh_lease(f->c, "t", 30000);
		Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, *ncp = &nc;
		nc.free_units = CPL_NODE_UNITS;
		Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
		cl.lease_id = lease;
		cl.max_tasks = 1;
		cl.nodes = &ncp;
		cl.n_nodes = 1;
		cl.tags = &bad[i];
		cl.n_tags = 1;
		BH_REQ(crq, CLAIM, claim, &cl);
		bh_free(BH_CALL(f->c, &crq, CPL_EINVAL));
		Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
		hb.lease_id = lease;
		hb.release = 1;
		BH_REQ(hrq, HEARTBEAT, heartbeat, &hb);
		bh_free(BH_OK(f->c, &hrq));
	}
	bh_snapshot(f->c, &after);
	// leases granted and released leave no task change; the log may
	// not hold lease events, so compare the tasks
	BH_EQ_U64(after.total, before.total);
	BH_EQ_U64(after.by_state[CPL_READY], before.by_state[CPL_READY]);
	BH_EQ_U64(after.nevents, before.nevents);
}

static void
test_claim_and_exportby_tag(void **state)
{
	bh_fx *f = *state;
	char *g1[] = { "g=1" }, *g2[] = { "g=2" };
	uint64_t a = tagged(f->c, "a", "w", g1, 1);
	uint64_t b = tagged(f->c, "b", "w", g2, 1);
	uint64_t lease = bh_lease(f->c, "t", 30000);
	Copal__NodeCapacity nc[4], *ncp[4];
	for (int i = 0; i < 4; i++) {
		copal__node_capacity__init(&nc[i]);
		nc[i].free_units = CPL_NODE_UNITS;
		ncp[i] = &nc[i];
	}
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = 4;
	cl.nodes = ncp;
	cl.n_nodes = 4;
	cl.tags = g1;
	cl.n_tags = 1;
	BH_REQ(crq, CLAIM, claim, &cl);
	Copal__Reply *r = BH_OK(f->c, &crq);
	BH_CHECK(r->claim->n_tasks == 1 && r->claim->tasks[0]->task->id == a,
	    "a claim with tag g=1 takes a only (got %zu)", r->claim->n_tasks);
	uint32_t att = r->claim->tasks[0]->task->status->attempt;
	bh_free(r);
	BH_EQ_U64(bh_report1(f->c, lease, a, att, CPL_RUNNING, 0, NULL), 0);
	BH_STATE(f->c, b, CPL_READY);

	Copal__ExportRequest ex = COPAL__EXPORT_REQUEST__INIT;
	ex.tags = g1;
	ex.n_tags = 1;
	BH_REQ(erq, EXPORT, export, &ex);
	r = BH_OK(f->c, &erq);
	BH_CHECK(r->export->n_events == 2, "export of g=1: %zu events",
	    r->export->n_events);
	for (size_t i = 0; i < r->export->n_events; i++)
		BH_CHECK(r->export->events[i]->task_id == a,
		    "export of g=1 has an event of task %llu",
		    (unsigned long long)r->export->events[i]->task_id);
	bh_free(r);
}

static void
test_params(void **state)
{
	bh_fx *f = *state;
	Copal__App app = COPAL__APP__INIT;
	Copal__AppParam pn = COPAL__APP_PARAM__INIT, pi = COPAL__APP_PARAM__INIT;
	Copal__AppParam *pp[2] = { &pn, &pi };
	pn.name = "n";
	pn.default_value = "1";
	pn.has_default = 1;
	pi.name = "input";
	app.name = "sim";
	app.executable = "sim.x -n {{ n }} --input {{ input }}";
	app.params = pp;
	app.n_params = 2;
	Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
	ar.app = &app;
	// an undeclared placeholder is refused
	app.executable = "sim.x {{ m }}";
	BH_REQ(arq, APP_REGISTER, app_register, &ar);
	Copal__Reply *r = BH_CALL(f->c, &arq, CPL_EINVAL);
	BH_CHECK(strstr(r->error, "{{ m }}") != NULL, "error: %s", r->error);
	bh_free(r);
	app.executable = "sim.x -n {{ n }} --input {{ input }}";
	BH_REQ(arq2, APP_REGISTER, app_register, &ar);
	bh_free(BH_OK(f->c, &arq2));

	bh_snap before, after;
	bh_snapshot(f->c, &before);
	Copal__EnvVar in = COPAL__ENV_VAR__INIT, nn = COPAL__ENV_VAR__INIT;
	Copal__EnvVar *good[1] = { &in }, *unk[2] = { &in, &nn };
	in.name = "input";
	in.value = "a b";
	nn.name = "nn";
	nn.value = "2";
	Copal__TaskSpec s[2] = { bh_spec("ok", "w", "sim"),
		bh_spec("bad", "w", "sim") };
	Copal__TaskSpec *sp[2] = { &s[0], &s[1] };
	s[0].params = good;
	s[0].n_params = 1;
	// unknown parameter: the batch refused, the parameter named
	s[1].params = unk;
	s[1].n_params = 2;
	r = create(f->c, sp, 2, CPL_EINVAL);
	BH_CHECK(strstr(r->error, "unknown parameter nn") != NULL, "error: %s",
	    r->error);
	bh_free(r);
	// missing parameter
	s[1].params = NULL;
	s[1].n_params = 0;
	r = create(f->c, sp, 2, CPL_EINVAL);
	BH_CHECK(strstr(r->error, "missing parameter input") != NULL,
	    "error: %s", r->error);
	bh_free(r);
	// a value for a plain app
	s[1] = bh_spec("bad", "w", "app");
	s[1].params = good;
	s[1].n_params = 1;
	r = create(f->c, sp, 2, CPL_EINVAL);
	BH_CHECK(strstr(r->error, "unknown parameter input") != NULL,
	    "error: %s", r->error);
	bh_free(r);
	// bad launch parameters
	char *lp_empty[] = { "-x", "" };
	s[1] = bh_spec("bad", "w", "app");
	s[1].launch_params = lp_empty;
	s[1].n_launch_params = 2;
	r = create(f->c, sp, 2, CPL_EINVAL);
	BH_CHECK(strstr(r->error, "launch_params") != NULL, "error: %s",
	    r->error);
	bh_free(r);
	char *many[33];
	for (int i = 0; i < 33; i++)
		many[i] = "-v";
	s[1].launch_params = many;
	s[1].n_launch_params = 33;
	r = create(f->c, sp, 2, CPL_EINVAL);
	BH_CHECK(strstr(r->error, "launch_params") != NULL, "error: %s",
	    r->error);
	bh_free(r);
	bh_snapshot(f->c, &after);
	BH_SAME_SNAP(&before, &after, "refused parameters");

	// the good one alone goes in, with its values kept
	r = create(f->c, sp, 1, 0);
	uint64_t id = r->create->first_id;
	bh_free(r);
	Copal__Task *t;
	r = bh_query_id(f->c, id, true, &t);
	BH_CHECK(t->spec->n_params == 1 &&
	    strcmp(t->spec->params[0]->value, "a b") == 0, "params kept");
	bh_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_filters, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_tags, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_claim_and_exportby_tag,
		    bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_params, bh_fx_setup, bh_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
