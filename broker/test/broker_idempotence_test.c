// Idempotent retry: a mutation resent with the same request id is applied
// once and answered with the first reply (byte for byte), also when the
// two copies race on two connections and after the broker restarts (clean
// stop or kill -9). Covers create, report, modify, claim, heartbeat and a
// refused request; request id 0 opts out.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/broker.h"

// A create request of n tasks named "<prefix><i>" in the caller's storage.
struct create_rq {
	Copal__TaskSpec specs[8];
	Copal__TaskSpec *sp[8];
	char names[8][32];
	Copal__CreateTasksRequest cr;
	Copal__Request rq;
};

static void
create_rq_init(struct create_rq *c, size_t n, const char *prefix,
    const char *app, uint64_t reqid)
{
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	Copal__Request rq = COPAL__REQUEST__INIT;
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		snprintf(c->names[i], sizeof(c->names[i]), "%s%zu", prefix, i);
		c->specs[i] = bh_spec(c->names[i], "idem", app);
		c->sp[i] = &c->specs[i];
	}
	c->cr = cr;
	c->cr.n_tasks = n;
	c->cr.tasks = c->sp;
	c->cr.want_uuids = true;
	c->rq = rq;
	c->rq.body_case = COPAL__REQUEST__BODY_CREATE;
	c->rq.create = &c->cr;
	c->rq.request_id = reqid;
}

// Sends rq twice with its request id; both replies must be equal and
// successful. Returns the first (free it).
static Copal__Reply *
twice(cpl_client *c, Copal__Request *rq)
{
	uint64_t id = rq->request_id;
	assert_true(id != 0);
	Copal__Reply *r1 = BH_OK(c, rq);
	rq->request_id = id;
	Copal__Reply *r2 = BH_CALL(c, rq, -1);
	BH_EQ_U64(r2->request_id, id);
	BH_SAME_REPLY(r1, r2);
	bh_free(r2);
	return r1;
}

// How many events of task id went to state `to`.
static size_t
events_to(cpl_client *c, uint64_t id, int to)
{
	Copal__Reply *r = bh_history(c, id);
	size_t n = 0;
	for (size_t i = 0; i < r->history->n_events; i++)
		if ((int)r->history->events[i]->to_state == to)
			n++;
	bh_free(r);
	return n;
}

static void
test_create_twice(void **state)
{
	bh_fx *f = *state;
	struct create_rq c;
	create_rq_init(&c, 3, "c", "app", cpl_request_id());
	Copal__Reply *r = twice(f->c, &c.rq);
	uint64_t first = r->create->first_id;
	BH_EQ_U64(r->create->count, 3);
	BH_EQ_U64(r->create->n_uuids, 3);
	bh_free(r);
	BH_EQ_U64(bh_count(f->c, NULL, NULL), 3);
	for (uint64_t id = first; id < first + 3; id++)
		BH_EQ_U64(events_to(f->c, id, CPL_READY), 1);
	// the same content under another id is another request
	c.rq.request_id = cpl_request_id();
	r = BH_OK(f->c, &c.rq);
	BH_EQ_U64(r->create->first_id, first + 3);
	bh_free(r);
	BH_EQ_U64(bh_count(f->c, NULL, NULL), 6);
}

static void
test_report_modify_twice(void **state)
{
	bh_fx *f = *state;
	uint64_t t = bh_create(f->c, 2, "r", "idem", "app"), u = t + 1;
	uint64_t lease = bh_lease(f->c, "idem", 60000);
	Copal__Reply *r = bh_claim(f->c, lease, 1, 1, 5040, 0, "idem");
	BH_EQ_U64(r->claim->n_tasks, 1);
	BH_EQ_U64(r->claim->tasks[0]->task->id, t);
	bh_free(r);

	// report: a second application would be refused (RUNNING -> RUNNING)
	Copal__StateReport s = COPAL__STATE_REPORT__INIT, *sp = &s;
	s.task_id = t;
	s.attempt = 1;
	s.to_state = COPAL__TASK_STATE__STATE_RUNNING;
	s.message = (char *)"once";
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	rr.lease_id = lease;
	rr.n_reports = 1;
	rr.reports = &sp;
	BH_REQ(rq, REPORT, report, &rr);
	rq.request_id = cpl_request_id();
	r = twice(f->c, &rq);
	BH_EQ_U64(r->report->n_status, 1);
	BH_EQ_ERR(r->report->status[0], 0);
	bh_free(r);
	BH_EQ_U64(events_to(f->c, t, CPL_RUNNING), 1);

	// modify state: a second application would change nothing
	Copal__Filter fu = COPAL__FILTER__INIT;
	fu.n_ids = 1;
	fu.ids = &u;
	Copal__ModifyRequest m = COPAL__MODIFY_REQUEST__INIT;
	m.filter = &fu;
	m.field = (char *)"state";
	m.value = (char *)"RESTART_READY";
	BH_REQ(mq, MODIFY, modify, &m);
	mq.request_id = cpl_request_id();
	r = twice(f->c, &mq);
	BH_EQ_U64(r->modify->changed, 1);
	bh_free(r);
	BH_EQ_U64(events_to(f->c, u, CPL_RESTART_READY), 1);
	// modify a field
	m.field = (char *)"priority";
	m.value = (char *)"9";
	mq.request_id = cpl_request_id();
	r = twice(f->c, &mq);
	BH_EQ_U64(r->modify->changed, 1);
	bh_free(r);
}

static void
test_claim_heartbeat_twice(void **state)
{
	bh_fx *f = *state;
	bh_create(f->c, 4, "h", "idem", "app");
	// heartbeat: one lease, not two
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.owner = (char *)"idem";
	hb.ttl_ms = 60000;
	BH_REQ(hq, HEARTBEAT, heartbeat, &hb);
	hq.request_id = cpl_request_id();
	Copal__Reply *r = twice(f->c, &hq);
	uint64_t lease = r->heartbeat->lease_id;
	bh_free(r);
	uint64_t other = bh_lease(f->c, "other", 60000);
	BH_EQ_U64(other, lease + 1);

	// claim: the same two tasks, not two more
	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, *ncp[2] = { &nc, &nc };
	nc.free_units = 5040;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = 2;
	cl.n_nodes = 2;
	cl.nodes = ncp;
	BH_REQ(cq, CLAIM, claim, &cl);
	cq.request_id = cpl_request_id();
	r = twice(f->c, &cq);
	BH_EQ_U64(r->claim->n_tasks, 2);
	bh_free(r);
	BH_EQ_U64(bh_count_state(f->c, CPL_READY), 4); // claimed stay READY
	Copal__Reply *q = bh_claim(f->c, other, 4, 4, 5040, 0, NULL);
	BH_EQ_U64(q->claim->n_tasks, 2); // the two not claimed twice
	bh_free(q);
}

// A refused request is answered with its stored refusal, even when it
// would succeed now.
static void
test_refused_twice(void **state)
{
	bh_fx *f = *state;
	struct create_rq c;
	uint64_t id = cpl_request_id();
	create_rq_init(&c, 2, "x", "later", id);
	Copal__Reply *r1 = BH_CALL(f->c, &c.rq, CPL_ENOTFOUND);
	bh_app(f->c, "later");
	c.rq.request_id = id;
	Copal__Reply *r2 = BH_CALL(f->c, &c.rq, -1);
	BH_SAME_REPLY(r1, r2);
	bh_free(r1);
	bh_free(r2);
	BH_EQ_U64(bh_count(f->c, NULL, NULL), 0);
}

// Request id 0 means "no retry protection": each copy is applied.
static void
test_request_id_zero(void **state)
{
	bh_fx *f = *state;
	struct create_rq c;
	create_rq_init(&c, 1, "z", "app", 0);
	c.rq.version = 1;
	size_t len;
	uint8_t *buf = bh_pack_req(&c.rq, &len);
	Copal__Reply *r1 = BH_RAW_EXPECT(f->b.url, buf, len, 0);
	Copal__Reply *r2 = BH_RAW_EXPECT(f->b.url, buf, len, 0);
	free(buf);
	BH_EQ_U64(r1->request_id, 0);
	BH_CHECK(r2->create->first_id == r1->create->first_id + 1,
	    "request id 0 sent twice: first ids %" PRIu64 " and %" PRIu64,
	    r1->create->first_id, r2->create->first_id);
	bh_free(r1);
	bh_free(r2);
}

// Whether app name is registered.
static bool
has_app(cpl_client *c, const char *name)
{
	Copal__AppListRequest al = COPAL__APP_LIST_REQUEST__INIT;
	BH_REQ(rq, APP_LIST, app_list, &al);
	Copal__Reply *r = BH_OK(c, &rq);
	bool found = false;
	for (size_t i = 0; i < r->app_list->n_apps; i++)
		found |= strcmp(r->app_list->apps[i]->name, name) == 0;
	bh_free(r);
	return found;
}

// Request ids are per client (issue 12): app_register id 7 of one client
// and app_delete id 7 of another are two requests, both applied; the same
// client reusing id 7 for another request is refused and told why, never
// answered with the first reply; resending the first still gets its reply.
static void
test_ids_per_client(void **state)
{
	bh_fx *f = *state;
	cpl_client *other = bh_client(&f->b);
	Copal__App app = COPAL__APP__INIT;
	app.name = (char *)"seven";
	app.executable = (char *)"/bin/true";
	Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
	ar.app = &app;
	BH_REQ(reg, APP_REGISTER, app_register, &ar);
	reg.request_id = 7;
	Copal__Reply *r1 = BH_OK(f->c, &reg);
	assert_true(has_app(f->c, "seven"));

	Copal__AppDeleteRequest ad = COPAL__APP_DELETE_REQUEST__INIT;
	ad.name = (char *)"seven";
	BH_REQ(del, APP_DELETE, app_delete, &ad);
	del.request_id = 7;
	bh_free(BH_OK(other, &del));
	BH_CHECK(!has_app(f->c, "seven"),
	    "app_delete id 7 of another client was not applied");

	// the first client reuses id 7 for another request
	Copal__AppDeleteRequest ad2 = COPAL__APP_DELETE_REQUEST__INIT;
	ad2.name = (char *)"app";
	BH_REQ(del2, APP_DELETE, app_delete, &ad2);
	del2.request_id = 7;
	Copal__Reply *r = BH_CALL(f->c, &del2, CPL_EREUSED);
	BH_CHECK(r->error && strstr(r->error, "already used for a different "
	    "request") != NULL, "refusal says: %s", r->error ? r->error : "");
	BH_EQ_U64(r->request_id, 7);
	bh_free(r);
	assert_true(has_app(f->c, "app"));
	// a resend of the first request: its stored reply, not applied again
	reg.request_id = 7;
	Copal__Reply *r2 = BH_OK(f->c, &reg);
	BH_SAME_REPLY(r1, r2);
	bh_free(r1);
	bh_free(r2);
	BH_CHECK(!has_app(f->c, "seven"), "resent app_register applied again");
	cpl_client_close(other);
}

// Requests without a client id (older clients) share one namespace of
// request ids: the same id with another body is refused there too, and an
// identical resend gets the stored reply.
static void
test_ids_without_client(void **state)
{
	bh_fx *f = *state;
	struct create_rq a, b;
	create_rq_init(&a, 1, "na", "app", 77);
	create_rq_init(&b, 1, "nb", "app", 77);
	a.rq.version = b.rq.version = 1;
	size_t la, lb;
	uint8_t *ba = bh_pack_req(&a.rq, &la);
	uint8_t *bb = bh_pack_req(&b.rq, &lb);
	Copal__Reply *r1 = BH_RAW_EXPECT(f->b.url, ba, la, 0);
	Copal__Reply *r2 = BH_RAW_EXPECT(f->b.url, ba, la, 0);
	BH_SAME_REPLY(r1, r2);
	Copal__Reply *r3 = BH_RAW_EXPECT(f->b.url, bb, lb, CPL_EREUSED);
	BH_EQ_U64(bh_count(f->c, NULL, NULL), 1);
	// a client id of the wrong length is malformed
	a.rq.client_id.data = (uint8_t *)"short";
	a.rq.client_id.len = 5;
	uint8_t *bc = bh_pack_req(&a.rq, &la);
	bh_free(BH_RAW_EXPECT(f->b.url, bc, la, CPL_EPROTO));
	free(ba);
	free(bb);
	free(bc);
	bh_free(r1);
	bh_free(r2);
	bh_free(r3);
}

// ------------------------------------------------------------ racing copies

struct racer {
	const char *url;
	const uint8_t *buf;
	size_t len;
	pthread_barrier_t *bar;
	uint8_t *reply;
	size_t reply_len;
	int rv;
};

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	nng_socket s;
	void *rb = NULL;
	size_t rl = 0;
	r->rv = bh_raw_open(r->url, 10000 * bh_slow(), &s);
	pthread_barrier_wait(r->bar);
	if (r->rv != 0)
		return NULL;
	if ((r->rv = nng_send(s, (void *)r->buf, r->len, 0)) == 0 &&
	    (r->rv = nng_recv(s, &rb, &rl, NNG_FLAG_ALLOC)) == 0) {
		r->reply = malloc(rl);
		memcpy(r->reply, rb, rl);
		r->reply_len = rl;
		nng_free(rb, rl);
	}
	nng_close(s);
	return NULL;
}

// Two connections send the same create at the same moment (often landing
// in one group commit): one is applied, both get the same reply.
static void
test_same_id_racing(void **state)
{
	bh_fx *f = *state;
	const int rounds = 20;
	for (int i = 0; i < rounds; i++) {
		struct create_rq c;
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "race%d-", i);
		create_rq_init(&c, 2, prefix, "app", cpl_request_id());
		c.rq.version = 1;
		size_t len;
		uint8_t *buf = bh_pack_req(&c.rq, &len);
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, 2);
		struct racer r[2];
		pthread_t th[2];
		for (int k = 0; k < 2; k++) {
			memset(&r[k], 0, sizeof(r[k]));
			r[k].url = f->b.url;
			r[k].buf = buf;
			r[k].len = len;
			r[k].bar = &bar;
			pthread_create(&th[k], NULL, racer_main, &r[k]);
		}
		for (int k = 0; k < 2; k++)
			pthread_join(th[k], NULL);
		pthread_barrier_destroy(&bar);
		free(buf);
		for (int k = 0; k < 2; k++)
			BH_CHECK(r[k].rv == 0, "round %d copy %d: %s", i, k,
			    nng_strerror(r[k].rv));
		bool same = r[0].reply_len == r[1].reply_len &&
		    memcmp(r[0].reply, r[1].reply, r[0].reply_len) == 0;
		Copal__Reply *a = copal__reply__unpack(NULL, r[0].reply_len,
		    r[0].reply);
		Copal__Reply *b = copal__reply__unpack(NULL, r[1].reply_len,
		    r[1].reply);
		BH_CHECK(a && b && a->status == 0 && b->status == 0,
		    "round %d: statuses %s / %s", i,
		    a ? cpl_errname((int)a->status) : "?",
		    b ? cpl_errname((int)b->status) : "?");
		BH_CHECK(same, "round %d: the two copies got different replies "
		    "(first ids %" PRIu64 " and %" PRIu64 ")", i,
		    a->create->first_id, b->create->first_id);
		bh_free(a);
		bh_free(b);
		free(r[0].reply);
		free(r[1].reply);
	}
	BH_EQ_U64(bh_count(f->c, NULL, NULL), 2 * rounds);
}

// ------------------------------------------------------------ restarts

// Replies of five mutations, kept with their requests to resend later.
struct kept {
	// the client's identity, kept by the test across the client's close
	// and reopen (a client that lives on while the broker restarts)
	uint8_t cid[16];
	struct create_rq c;
	Copal__StateReport s, *sp;
	Copal__ReportRequest rr;
	Copal__Request rq_report;
	Copal__Filter fm;
	uint64_t mid;
	Copal__ModifyRequest m;
	Copal__Request rq_modify;
	Copal__NodeCapacity nc, *ncp;
	Copal__ClaimRequest cl;
	Copal__Request rq_claim;
	Copal__HeartbeatRequest hb;
	Copal__Request rq_hb;
	Copal__Request *all[5];
	Copal__Reply *replies[5];
	uint64_t ids[5];
};

static void
kept_run(bh_fx *f, struct kept *k, int round)
{
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "rs%d-", round);
	// heartbeat (a lease) and create
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	k->hb = hb;
	k->hb.owner = (char *)"restart";
	k->hb.ttl_ms = 600000;
	Copal__Request rq = COPAL__REQUEST__INIT;
	k->rq_hb = rq;
	k->rq_hb.body_case = COPAL__REQUEST__BODY_HEARTBEAT;
	k->rq_hb.heartbeat = &k->hb;
	create_rq_init(&k->c, 3, prefix, "app", 0);
	k->c.specs[0].workflow = (char *)"restart-wf"; // the one claimed
	// claim (the first task of the create, alone in its workflow)
	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT;
	k->nc = nc;
	k->nc.free_units = 5040;
	k->ncp = &k->nc;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	k->cl = cl;
	k->cl.max_tasks = 1;
	k->cl.n_nodes = 1;
	k->cl.nodes = &k->ncp;
	k->cl.workflow = (char *)"restart-wf";
	k->rq_claim = rq;
	k->rq_claim.body_case = COPAL__REQUEST__BODY_CLAIM;
	k->rq_claim.claim = &k->cl;
	// report RUNNING for it
	Copal__StateReport s = COPAL__STATE_REPORT__INIT;
	k->s = s;
	k->s.attempt = 1;
	k->s.to_state = COPAL__TASK_STATE__STATE_RUNNING;
	k->sp = &k->s;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	k->rr = rr;
	k->rr.n_reports = 1;
	k->rr.reports = &k->sp;
	k->rq_report = rq;
	k->rq_report.body_case = COPAL__REQUEST__BODY_REPORT;
	k->rq_report.report = &k->rr;
	// modify the second task's state
	Copal__Filter fm = COPAL__FILTER__INIT;
	k->fm = fm;
	k->fm.n_ids = 1;
	k->fm.ids = &k->mid;
	Copal__ModifyRequest m = COPAL__MODIFY_REQUEST__INIT;
	k->m = m;
	k->m.filter = &k->fm;
	k->m.field = (char *)"state";
	k->m.value = (char *)"RESTART_READY";
	k->rq_modify = rq;
	k->rq_modify.body_case = COPAL__REQUEST__BODY_MODIFY;
	k->rq_modify.modify = &k->m;

	Copal__Request *order[5] = { &k->rq_hb, &k->c.rq, &k->rq_claim,
		&k->rq_report, &k->rq_modify };
	for (size_t i = 0; i < sizeof(k->cid); i += 8) {
		uint64_t v = cpl_request_id();
		memcpy(k->cid + i, &v, 8);
	}
	for (int i = 0; i < 5; i++) {
		k->all[i] = order[i];
		k->ids[i] = cpl_request_id();
		order[i]->request_id = k->ids[i];
		order[i]->client_id.data = k->cid;
		order[i]->client_id.len = sizeof(k->cid);
		if (i == 2)
			k->cl.lease_id = k->replies[0]->heartbeat->lease_id;
		if (i == 3) {
			BH_EQ_U64(k->replies[2]->claim->n_tasks, 1);
			k->rr.lease_id = k->cl.lease_id;
			k->s.task_id = k->replies[2]->claim->tasks[0]->task->id;
			BH_EQ_U64(k->s.task_id, k->replies[1]->create->first_id);
		}
		if (i == 4)
			k->mid = k->replies[1]->create->first_id + 1;
		k->replies[i] = BH_OK(f->c, order[i]);
	}
}

static void
kept_resend(bh_fx *f, struct kept *k)
{
	for (int i = 0; i < 5; i++) {
		k->all[i]->request_id = k->ids[i];
		Copal__Reply *r = BH_CALL(f->c, k->all[i], -1);
		BH_SAME_REPLY(k->replies[i], r);
		bh_free(r);
	}
}

static void
kept_free(struct kept *k)
{
	for (int i = 0; i < 5; i++)
		bh_free(k->replies[i]);
}

static void
test_resend_after_restart(void **state)
{
	bh_fx *f = *state;
	for (int round = 0; round < 2; round++) {
		struct kept *k = calloc(1, sizeof(*k));
		bh_snap before, after;
		kept_run(f, k, round);
		bh_snapshot(f->c, &before);
		cpl_client_close(f->c);
		f->c = NULL;
		if (round == 0)
			bh_stop(&f->b);
		else
			bh_kill9(&f->b);
		bh_start(&f->b);
		f->c = bh_client(&f->b);
		kept_resend(f, k);
		bh_snapshot(f->c, &after);
		BH_SAME_SNAP(&before, &after,
		    round == 0 ? "resending after a clean restart" :
		                 "resending after kill -9 and restart");
		BH_EQ_U64(bh_count(f->c, NULL, NULL), 3 * (round + 1));
		kept_free(k);
		free(k);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_twice, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_report_modify_twice, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_claim_heartbeat_twice, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_refused_twice, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_ids_per_client, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_ids_without_client, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_request_id_zero, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_same_id_racing, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_resend_after_restart, bh_fx_setup,
		    bh_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
