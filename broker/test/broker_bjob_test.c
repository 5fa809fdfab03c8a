// Tasks by batch job, batch jobs that end, fast-failure restarts and the
// claim order, through the protocol against a real copal-broker: a lease
// taken with batch_job_id records the tasks it runs (Filter.batch_job_id,
// the list's counters, Event.batch_job_id); a batch job that becomes
// CANCELLED ends the leases of its launchers; a restart report is one
// RUNNING -> RUNNING event; ClaimRequest.order long_large_first; bad
// input (an unknown batch job, an unknown order, a scheduler id too long,
// a restart of a task that is not RUNNING) is refused and changes nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/store.h"
#include "copal/testing/broker.h"

static uint64_t
bjob_add(cpl_client *c)
{
	Copal__BatchJob j = COPAL__BATCH_JOB__INIT;
	j.scheduler = "local";
	j.nodes = 1;
	j.wall_minutes = 10;
	j.job_mode = "serial";
	j.queue = "local";
	Copal__BatchJobAddRequest a = COPAL__BATCH_JOB_ADD_REQUEST__INIT;
	a.job = &j;
	BH_REQ(rq, BATCH_ADD, batch_add, &a);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t id = r->batch_add->job->id;
	bh_free(r);
	return id;
}

static int
bjob_set(cpl_client *c, uint64_t id, Copal__BatchJobState st)
{
	Copal__BatchJobUpdateRequest u = COPAL__BATCH_JOB_UPDATE_REQUEST__INIT;
	u.id = id;
	u.state = st;
	u.scheduler_id = "4242";
	u.sched_reason = "Resources";
	BH_REQ(rq, BATCH_UPDATE, batch_update, &u);
	Copal__Reply *r = BH_CALL(c, &rq, -1);
	int s = (int)r->status;
	bh_free(r);
	return s;
}

static uint64_t
lease_in_job(cpl_client *c, uint64_t bjob, const char *sid, int want)
{
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.owner = "launcher in a job";
	hb.ttl_ms = 600000;
	hb.batch_job_id = bjob;
	hb.scheduler_job_id = (char *)sid;
	BH_REQ(rq, HEARTBEAT, heartbeat, &hb);
	Copal__Reply *r = BH_CALL(c, &rq, want);
	uint64_t l = want == 0 ? r->heartbeat->lease_id : 0;
	bh_free(r);
	return l;
}

// The one claimed task's attempt (the claim must take exactly it).
static uint32_t
claim_one(cpl_client *c, uint64_t lease, const char *wf, uint64_t id)
{
	Copal__Reply *r = bh_claim(c, lease, 1, 1, CPL_NODE_UNITS, 0, wf);
	assert_int_equal(r->claim->n_tasks, 1);
	assert_int_equal(r->claim->tasks[0]->task->id, id);
	uint32_t a = r->claim->tasks[0]->task->status->attempt;
	bh_free(r);
	return a;
}

static const Copal__BatchJob *
job_in(const Copal__Reply *r, uint64_t id)
{
	for (size_t i = 0; i < r->batch_list->n_jobs; i++)
		if (r->batch_list->jobs[i]->id == id)
			return r->batch_list->jobs[i];
	return NULL;
}

static Copal__Reply *
bjob_list(cpl_client *c)
{
	Copal__BatchJobListRequest l = COPAL__BATCH_JOB_LIST_REQUEST__INIT;
	BH_REQ(rq, BATCH_LIST, batch_list, &l);
	return BH_OK(c, &rq);
}

static void
test_tasks_by_batch_job(void **state)
{
	bh_fx *f = *state;
	cpl_client *c = f->c;
	uint64_t bj = bjob_add(c);
	assert_int_equal(bjob_set(c, bj, COPAL__BATCH_JOB_STATE__BJ_RUNNING), 0);
	uint64_t lease = lease_in_job(c, bj, "4242", 0);
	uint64_t hand = bh_lease(c, "by hand", 600000);
	uint64_t a = bh_create(c, 1, "a", "wa", "app");
	uint64_t b = bh_create(c, 1, "b", "wb", "app");
	uint64_t d = bh_create(c, 1, "d", "wd", "app");
	uint32_t at = claim_one(c, lease, "wa", a);
	assert_int_equal(bh_report1(c, lease, a, at, CPL_RUNNING, 0, NULL), 0);
	assert_int_equal(bh_report1(c, lease, a, at, CPL_RUN_ERROR, 1, "x"), 0);
	uint32_t bt = claim_one(c, lease, "wb", b);
	assert_int_equal(bh_report1(c, lease, b, bt, CPL_RUNNING, 0, NULL), 0);
	uint32_t dt = claim_one(c, hand, "wd", d);
	assert_int_equal(bh_report1(c, hand, d, dt, CPL_RUNNING, 0, NULL), 0);

	// the job's tasks, and the same with a state
	Copal__Filter fl = COPAL__FILTER__INIT;
	fl.batch_job_id = bj;
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	q.filter = &fl;
	BH_REQ(rq, QUERY, query, &q);
	Copal__Reply *r = BH_OK(c, &rq);
	assert_int_equal(r->query->n_tasks, 2);
	assert_int_equal(r->query->tasks[0]->id, a);
	assert_int_equal(r->query->tasks[1]->id, b);
	bh_free(r);
	uint64_t by[CPL_NSTATES];
	assert_int_equal(bh_count(c, &fl, by), 2);
	assert_int_equal(by[CPL_RUNNING], 1);
	// explicit ids combine with it
	uint64_t ids[] = { a, d };
	fl.ids = ids;
	fl.n_ids = 2;
	assert_int_equal(bh_count(c, &fl, by), 1);
	fl.ids = NULL;
	fl.n_ids = 0;

	// the counters
	r = bjob_list(c);
	const Copal__BatchJob *j = job_in(r, bj);
	assert_non_null(j);
	assert_int_equal(j->tasks_ran, 2);
	assert_int_equal(j->tasks_running, 1);
	assert_int_equal(j->tasks_failed, 1);
	assert_string_equal(j->sched_reason, "Resources");
	bh_free(r);

	// the RUNNING event names the job; by hand: none
	r = bh_history(c, b);
	bool named = false;
	for (size_t i = 0; i < r->history->n_events; i++) {
		const Copal__Event *e = r->history->events[i];
		if (e->to_state == COPAL__TASK_STATE__STATE_RUNNING) {
			assert_int_equal(e->batch_job_id, bj);
			assert_string_equal(e->scheduler_job_id, "4242");
			named = true;
		}
	}
	assert_true(named);
	bh_free(r);
	r = bh_history(c, d);
	for (size_t i = 0; i < r->history->n_events; i++) {
		assert_int_equal(r->history->events[i]->batch_job_id, 0);
		assert_string_equal(r->history->events[i]->scheduler_job_id, "");
	}
	bh_free(r);

	// the job is cancelled: its lease ends, b times out; the lease by
	// hand lives on
	assert_int_equal(bjob_set(c, bj, COPAL__BATCH_JOB_STATE__BJ_CANCELLED),
	    0);
	int sb = bh_state(c, b);
	assert_true(sb == CPL_FAILED || sb == CPL_RESTART_READY);
	BH_STATE(c, d, CPL_RUNNING);
	assert_int_equal(bh_report1(c, lease, b, bt, CPL_RUN_DONE, 0, NULL),
	    CPL_ESTALE);
	assert_int_equal(bh_report1(c, hand, d, dt, CPL_RUN_DONE, 0, NULL), 0);
	r = bjob_list(c);
	j = job_in(r, bj);
	assert_int_equal(j->tasks_running, 0);
	assert_int_equal(j->tasks_failed, 2);
	bh_free(r);
	// a straggler of the ended job gets no new lease, whether it asks
	// with a heartbeat or with its first claim (which claims nothing)
	lease_in_job(c, bj, "4242", CPL_EBADSTATE);
	uint64_t e = bh_create(c, 1, "e", "wj", "app");
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.owner = "launcher in a job";
	hb.batch_job_id = bj;
	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, *ncp = &nc;
	nc.free_units = CPL_NODE_UNITS;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.max_tasks = 1;
	cl.n_nodes = 1;
	cl.nodes = &ncp;
	cl.new_lease = &hb;
	BH_REQ(crq, CLAIM, claim, &cl);
	r = BH_CALL(c, &crq, CPL_EBADSTATE);
	assert_non_null(strstr(r->error, "has ended"));
	bh_free(r);
	BH_STATE(c, e, CPL_READY);
}

static void
test_bad_input(void **state)
{
	bh_fx *f = *state;
	cpl_client *c = f->c;
	uint64_t bj = bjob_add(c);
	uint64_t a = bh_create(c, 1, "a", "wa", "app");
	uint64_t lease = bh_lease(c, "l", 600000);
	bh_snap s0, s1;
	bh_snapshot(c, &s0);

	// an unknown batch job in a filter
	Copal__Filter fl = COPAL__FILTER__INIT;
	fl.batch_job_id = bj + 7;
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	q.filter = &fl;
	BH_REQ(rq, QUERY, query, &q);
	Copal__Reply *r = BH_CALL(c, &rq, CPL_ENOTFOUND);
	assert_non_null(strstr(r->error, "no batch job"));
	bh_free(r);
	Copal__KillRequest k = COPAL__KILL_REQUEST__INIT;
	k.filter = &fl;
	BH_REQ(rk, KILL, kill, &k);
	bh_free(BH_CALL(c, &rk, CPL_ENOTFOUND));

	// an unknown claim order
	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, *ncp = &nc;
	nc.free_units = CPL_NODE_UNITS;
	Copal__ClaimRequest cr = COPAL__CLAIM_REQUEST__INIT;
	cr.lease_id = lease;
	cr.max_tasks = 1;
	cr.nodes = &ncp;
	cr.n_nodes = 1;
	cr.order = 2;
	BH_REQ(rc, CLAIM, claim, &cr);
	r = BH_CALL(c, &rc, CPL_EINVAL);
	assert_non_null(strstr(r->error, "claim order 2 unknown"));
	bh_free(r);
	BH_STATE(c, a, CPL_READY);

	// a scheduler id too long
	char sid[200];
	memset(sid, '7', sizeof(sid) - 1);
	sid[sizeof(sid) - 1] = '\0';
	lease_in_job(c, bj, sid, CPL_EINVAL);

	// a restart of a task that is not RUNNING
	Copal__StateReport sr = COPAL__STATE_REPORT__INIT, *srp = &sr;
	sr.task_id = a;
	sr.attempt = 1;
	sr.to_state = COPAL__TASK_STATE__STATE_RUNNING;
	sr.restart = true;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	rr.lease_id = lease;
	rr.reports = &srp;
	rr.n_reports = 1;
	BH_REQ(rp, REPORT, report, &rr);
	r = BH_OK(c, &rp);
	assert_int_equal(r->report->status[0], CPL_ESTALE); // not claimed
	bh_free(r);
	bh_snapshot(c, &s1);
	BH_SAME_SNAP(&s0, &s1, "bad requests");
}

// A launcher that names a batch job the database does not have gets a
// lease, and runs tasks, filed under no batch job: the store stays
// consistent (the fuzzer's find: the job was recorded under the lease,
// and cpl_store_check refused the store).
static void
test_unknown_batch_job(void **state)
{
	bh_fx *f = *state;
	cpl_client *c = f->c;
	uint64_t a = bh_create(c, 1, "a", "wa", "app");
	uint64_t lease = lease_in_job(c, 30000, "nid009 pid 1", 0);
	BH_CHECK(lease != 0, "no lease for a launcher of an unknown job");
	claim_one(c, lease, "wa", a);
	BH_CHECK(bh_log_contains(&f->b, "which is not on record"),
	    "no warning for an unknown batch job");
	cpl_client_close(c);
	f->c = NULL;
	bh_stop(&f->b);
	cpl_store *st = NULL;
	char why[512] = "";
	BH_CHECK(cpl_store_open(f->b.dir, NULL, &st) == 0, "open %s",
	    f->b.dir);
	int rv = cpl_store_check(st, why, sizeof(why));
	cpl_store_close(st);
	BH_CHECK(rv == 0, "the store is inconsistent: %s", why);
}

static void
test_restart_and_order(void **state)
{
	bh_fx *f = *state;
	cpl_client *c = f->c;
	uint64_t small = bh_create(c, 1, "small", "w", "app");
	Copal__TaskSpec sp = bh_spec("big", "w", "app");
	Copal__Resources res = COPAL__RESOURCES__INIT;
	res.num_nodes = 2;
	res.wall_time_minutes = 30;
	sp.resources = &res;
	Copal__TaskSpec *spp = &sp;
	Copal__CreateTasksRequest ct = COPAL__CREATE_TASKS_REQUEST__INIT;
	ct.tasks = &spp;
	ct.n_tasks = 1;
	BH_REQ(rq, CREATE, create, &ct);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t big = r->create->first_id;
	bh_free(r);
	uint64_t lease = bh_lease(c, "l", 600000);

	// three nodes, one task: long_large_first takes the younger, larger
	Copal__NodeCapacity nc[3], *ncp[3];
	for (int i = 0; i < 3; i++) {
		copal__node_capacity__init(&nc[i]);
		nc[i].free_units = CPL_NODE_UNITS;
		ncp[i] = &nc[i];
	}
	Copal__ClaimRequest cr = COPAL__CLAIM_REQUEST__INIT;
	cr.lease_id = lease;
	cr.max_tasks = 1;
	cr.nodes = ncp;
	cr.n_nodes = 3;
	cr.order = 1;
	BH_REQ(rc, CLAIM, claim, &cr);
	r = BH_OK(c, &rc);
	assert_int_equal(r->claim->n_tasks, 1);
	assert_int_equal(r->claim->tasks[0]->task->id, big);
	uint32_t at = r->claim->tasks[0]->task->status->attempt;
	bh_free(r);
	assert_true(small < big);

	// a restart: one event, the state stays
	assert_int_equal(bh_report1(c, lease, big, at, CPL_RUNNING, 0, NULL), 0);
	r = bh_history(c, big);
	size_t n0 = r->history->n_events;
	bh_free(r);
	Copal__StateReport sr = COPAL__STATE_REPORT__INIT, *srp = &sr;
	sr.task_id = big;
	sr.attempt = at;
	sr.to_state = COPAL__TASK_STATE__STATE_RUNNING;
	sr.return_code = 9;
	sr.message = "fast failure: started again, 1 of 3";
	sr.restart = true;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	rr.lease_id = lease;
	rr.reports = &srp;
	rr.n_reports = 1;
	BH_REQ(rp, REPORT, report, &rr);
	r = BH_OK(c, &rp);
	assert_int_equal(r->report->status[0], 0);
	bh_free(r);
	r = bh_history(c, big);
	assert_int_equal(r->history->n_events, n0 + 1);
	const Copal__Event *e = r->history->events[n0];
	assert_int_equal(e->from_state, COPAL__TASK_STATE__STATE_RUNNING);
	assert_int_equal(e->to_state, COPAL__TASK_STATE__STATE_RUNNING);
	assert_int_equal(e->return_code, 9);
	bh_free(r);
	BH_STATE(c, big, CPL_RUNNING);
	// a restart that names another state
	sr.to_state = COPAL__TASK_STATE__STATE_RUN_DONE;
	rp.request_id = 0; // a new request
	r = BH_OK(c, &rp);
	assert_int_equal(r->report->status[0], CPL_EBADSTATE);
	bh_free(r);
	BH_STATE(c, big, CPL_RUNNING);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tasks_by_batch_job, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_batch_job, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_restart_and_order, bh_fx_setup,
		    bh_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
