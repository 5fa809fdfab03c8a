// Crash safety: a creator thread streams batches of creates and a launcher
// thread claims tasks and reports them RUNNING, RUN_DONE, JOB_FINISHED;
// both record every request the broker acknowledged and the one it did
// not (the call that failed when the broker died). The broker is killed
// with SIGKILL at a random moment and started again. Then:
//  * every acknowledged create is there (ids and names);
//  * every acknowledged report's state is there (or a later state that an
//    unacknowledged report may have reached);
//  * the unacknowledged requests, resent with their request ids, are
//    applied at most once (task totals add up, no duplicate history
//    events) and a second resend gets the same reply;
//  * every task held by the launcher's lease is one the launcher knows of
//    (a claim lost in the crash is recovered by resending it).
// Several rounds on one database; at the end the store is opened directly
// and cpl_store_check() verifies every index and counter.
// COPAL_TEST_SEED=N repeats a run's kill times.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/broker.h"
#include "copal/store.h"

#define ROUNDS 5
#define BATCH 20
#define CLAIM_MAX 16
#define MAX_TASKS 200000
#define WF "crash"

enum { R_NONE = 0, R_CLAIMED, R_RUNNING, R_RUN_DONE, R_FINISHED };

static int
rank_state(int s)
{
	switch (s) {
	case CPL_READY: return R_CLAIMED;
	case CPL_RUNNING: return R_RUNNING;
	case CPL_RUN_DONE: return R_RUN_DONE;
	case CPL_JOB_FINISHED: return R_FINISHED;
	default: return -1;
	}
}

static const int rank_to_state[] = { 0, CPL_READY, CPL_RUNNING, CPL_RUN_DONE,
	CPL_JOB_FINISHED };

// The client identity of every request this test resends after a crash
// (copal.proto, Request: ids are per client): the test is one client
// whose connections (cpl_client objects) come and go with the broker.
static uint8_t test_cid[16] = { 'c', 'r', 'a', 's', 'h', '-', 't', 'e',
	's', 't', '-', 'c', 'i', 'd', '0', '1' };

static void
set_cid(Copal__Request *rq)
{
	rq->client_id.data = test_cid;
	rq->client_id.len = sizeof(test_cid);
}

struct create_rec {
	uint64_t rid;
	int round, iter;
	bool acked;
	uint64_t first_id;
};

struct task_rec {
	uint8_t acked;     // highest acknowledged rank
	uint8_t sent;      // highest rank sent (acknowledged or not)
	uint8_t known;     // the launcher knows it holds the task
	uint32_t attempt;
	uint64_t lease;
};

struct report_item {
	uint64_t id;
	uint32_t attempt;
	int to;
};

struct shared {
	bh_broker *b;
	int round;
	uint64_t lease;
	// creator
	struct create_rec *creates;
	size_t ncreates, capcreates;
	// launcher
	struct task_rec *tasks; // by id
	bool claim_unacked;
	uint64_t claim_rid;
	bool report_unacked;
	uint64_t report_rid;
	struct report_item report[CLAIM_MAX];
	size_t nreport;
	uint64_t nclaims, nreports;
	char err[2][512];
};

static cpl_client *
thread_client(struct shared *sh)
{
	cpl_client_opts o;
	cpl_client *c = NULL;
	memset(&o, 0, sizeof(o));
	o.db_dir = sh->b->dir;
	o.timeout_ms = 1500 * bh_slow();
	o.attempts = 1;
	if (cpl_client_open(&o, &c) != 0)
		return NULL;
	return c;
}

// Builds the create request of (round, iter) in the caller's storage.
struct create_rq {
	Copal__TaskSpec specs[BATCH], *sp[BATCH];
	char names[BATCH][32];
	Copal__CreateTasksRequest cr;
	Copal__Request rq;
};

static void
create_rq_init(struct create_rq *c, int round, int iter, uint64_t rid)
{
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	Copal__Request rq = COPAL__REQUEST__INIT;
	for (int i = 0; i < BATCH; i++) {
		snprintf(c->names[i], sizeof(c->names[i]), "k%d-%d-%d", round,
		    iter, i);
		c->specs[i] = bh_spec(c->names[i], WF, "app");
		c->sp[i] = &c->specs[i];
	}
	c->cr = cr;
	c->cr.n_tasks = BATCH;
	c->cr.tasks = c->sp;
	c->rq = rq;
	c->rq.body_case = COPAL__REQUEST__BODY_CREATE;
	c->rq.create = &c->cr;
	c->rq.request_id = rid;
	set_cid(&c->rq);
}

static void *
creator_main(void *arg)
{
	struct shared *sh = arg;
	cpl_client *c = thread_client(sh);
	if (c == NULL) {
		snprintf(sh->err[0], sizeof(sh->err[0]), "creator: no client");
		return NULL;
	}
	for (int iter = 0; iter < 100000; iter++) {
		struct create_rq *q = malloc(sizeof(*q));
		Copal__Reply *r = NULL;
		if (sh->ncreates == sh->capcreates) {
			sh->capcreates = sh->capcreates ? sh->capcreates * 2 : 256;
			sh->creates = realloc(sh->creates,
			    sh->capcreates * sizeof(*sh->creates));
		}
		struct create_rec *rec = &sh->creates[sh->ncreates++];
		memset(rec, 0, sizeof(*rec));
		rec->rid = cpl_request_id();
		rec->round = sh->round;
		rec->iter = iter;
		create_rq_init(q, sh->round, iter, rec->rid);
		int rv = cpl_client_call(c, &q->rq, &r);
		free(q);
		if (rv != 0)
			break; // the broker is gone: this create is unacknowledged
		if (r->status != 0 || r->create->count != BATCH) {
			snprintf(sh->err[0], sizeof(sh->err[0]),
			    "creator: create answered %s (%s): %s",
			    cpl_errname((int)r->status),
			    cpl_strerror((int)r->status), r->error);
			bh_free(r);
			break;
		}
		rec->acked = true;
		rec->first_id = r->create->first_id;
		bh_free(r);
	}
	cpl_client_close(c);
	return NULL;
}

static Copal__Request *
claim_rq(Copal__ClaimRequest *cl, Copal__NodeCapacity *nc,
    Copal__NodeCapacity **ncp, Copal__Request *rq, uint64_t lease,
    uint64_t rid)
{
	Copal__ClaimRequest c0 = COPAL__CLAIM_REQUEST__INIT;
	Copal__NodeCapacity n0 = COPAL__NODE_CAPACITY__INIT;
	Copal__Request r0 = COPAL__REQUEST__INIT;
	*nc = n0;
	nc->free_units = 5040;
	for (int i = 0; i < CLAIM_MAX; i++)
		ncp[i] = nc;
	*cl = c0;
	cl->lease_id = lease;
	cl->max_tasks = CLAIM_MAX;
	cl->n_nodes = CLAIM_MAX;
	cl->nodes = ncp;
	cl->workflow = (char *)WF;
	*rq = r0;
	rq->body_case = COPAL__REQUEST__BODY_CLAIM;
	rq->claim = cl;
	rq->request_id = rid;
	set_cid(rq);
	return rq;
}

static Copal__Request *
report_rq(Copal__ReportRequest *rr, Copal__StateReport *s,
    Copal__StateReport **sp, Copal__Request *rq, uint64_t lease,
    const struct report_item *items, size_t n, uint64_t rid)
{
	Copal__ReportRequest r0 = COPAL__REPORT_REQUEST__INIT;
	Copal__Request q0 = COPAL__REQUEST__INIT;
	for (size_t i = 0; i < n; i++) {
		Copal__StateReport x = COPAL__STATE_REPORT__INIT;
		s[i] = x;
		s[i].task_id = items[i].id;
		s[i].attempt = items[i].attempt;
		s[i].to_state = (Copal__TaskState)items[i].to;
		s[i].message = (char *)"crash test";
		sp[i] = &s[i];
	}
	*rr = r0;
	rr->lease_id = lease;
	rr->n_reports = n;
	rr->reports = sp;
	*rq = q0;
	rq->body_case = COPAL__REQUEST__BODY_REPORT;
	rq->report = rr;
	rq->request_id = rid;
	set_cid(rq);
	return rq;
}

static void *
launcher_main(void *arg)
{
	struct shared *sh = arg;
	cpl_client *c = thread_client(sh);
	Copal__ClaimRequest cl;
	Copal__NodeCapacity nc, *ncp[CLAIM_MAX];
	Copal__ReportRequest rr;
	Copal__StateReport s[CLAIM_MAX], *sp[CLAIM_MAX];
	Copal__Request rq;
	if (c == NULL) {
		snprintf(sh->err[1], sizeof(sh->err[1]), "launcher: no client");
		return NULL;
	}
	for (;;) {
		Copal__Reply *r = NULL;
		uint64_t rid = cpl_request_id();
		claim_rq(&cl, &nc, ncp, &rq, sh->lease, rid);
		if (cpl_client_call(c, &rq, &r) != 0) {
			sh->claim_unacked = true;
			sh->claim_rid = rid;
			break;
		}
		if (r->status != 0) {
			snprintf(sh->err[1], sizeof(sh->err[1]),
			    "launcher: claim answered %s: %s",
			    cpl_errname((int)r->status), r->error);
			bh_free(r);
			break;
		}
		sh->nclaims++;
		struct report_item items[CLAIM_MAX];
		size_t n = r->claim->n_tasks;
		for (size_t i = 0; i < n; i++) {
			Copal__Task *t = r->claim->tasks[i]->task;
			if (t->id >= MAX_TASKS)
				continue;
			struct task_rec *tr = &sh->tasks[t->id];
			tr->known = 1;
			tr->attempt = t->status->attempt;
			tr->lease = sh->lease;
			tr->acked = tr->sent = R_CLAIMED;
			items[i].id = t->id;
			items[i].attempt = t->status->attempt;
		}
		bh_free(r);
		if (n == 0) {
			bh_sleep_ms(5);
			continue;
		}
		bool stop = false;
		for (int k = R_RUNNING; k <= R_FINISHED && !stop; k++) {
			rid = cpl_request_id();
			for (size_t i = 0; i < n; i++) {
				items[i].to = rank_to_state[k];
				sh->tasks[items[i].id].sent = (uint8_t)k;
			}
			report_rq(&rr, s, sp, &rq, sh->lease, items, n, rid);
			if (cpl_client_call(c, &rq, &r) != 0) {
				sh->report_unacked = true;
				sh->report_rid = rid;
				memcpy(sh->report, items, n * sizeof(items[0]));
				sh->nreport = n;
				stop = true;
				break;
			}
			bool ok = r->status == 0 && r->report->n_status == n;
			for (size_t i = 0; ok && i < n; i++)
				ok = r->report->status[i] == 0;
			if (!ok) {
				snprintf(sh->err[1], sizeof(sh->err[1]),
				    "launcher: report -> %s answered %s (%s), "
				    "first status %s",
				    bh_sname(rank_to_state[k]),
				    cpl_errname((int)r->status), r->error,
				    r->report && r->report->n_status ?
				        cpl_errname((int)r->report->status[0]) :
				        "-");
				bh_free(r);
				stop = true;
				break;
			}
			bh_free(r);
			sh->nreports++;
			for (size_t i = 0; i < n; i++)
				sh->tasks[items[i].id].acked = (uint8_t)k;
		}
		if (stop)
			break;
	}
	cpl_client_close(c);
	return NULL;
}

// ------------------------------------------------------------ checks

// Every task (with spec) by id: name and status.
struct seen {
	bool present;
	int state;
	uint32_t attempt;
	uint64_t lease;
	char name[32];
};

static struct seen *
load_all(cpl_client *c, size_t *maxid)
{
	struct seen *v = calloc(MAX_TASKS, sizeof(*v));
	uint64_t after = 0;
	*maxid = 0;
	for (;;) {
		Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
		q.after_id = after;
		q.limit = 10000;
		q.with_spec = true;
		BH_REQ(rq, QUERY, query, &q);
		Copal__Reply *r = BH_OK(c, &rq);
		for (size_t i = 0; i < r->query->n_tasks; i++) {
			Copal__Task *t = r->query->tasks[i];
			BH_CHECK(t->id < MAX_TASKS, "task id %" PRIu64 " too large",
			    t->id);
			struct seen *s = &v[t->id];
			s->present = true;
			s->state = (int)t->status->state;
			s->attempt = t->status->attempt;
			s->lease = t->status->lease_id;
			snprintf(s->name, sizeof(s->name), "%s", t->spec->name);
			if (t->id > *maxid)
				*maxid = t->id;
			after = t->id;
		}
		bool more = r->query->more;
		bh_free(r);
		if (!more)
			break;
	}
	return v;
}

// Resends the unacknowledged create twice; returns its first id.
static uint64_t
resend_create(cpl_client *c, const struct create_rec *rec)
{
	struct create_rq *q = malloc(sizeof(*q));
	create_rq_init(q, rec->round, rec->iter, rec->rid);
	Copal__Reply *r1 = BH_OK(c, &q->rq);
	q->rq.request_id = rec->rid;
	Copal__Reply *r2 = BH_CALL(c, &q->rq, -1);
	BH_SAME_REPLY(r1, r2);
	uint64_t first = r1->create->first_id;
	BH_EQ_U64(r1->create->count, BATCH);
	bh_free(r1);
	bh_free(r2);
	free(q);
	return first;
}

static void
check_round(bh_broker *b, struct shared *sh, uint64_t *expect_total)
{
	cpl_client *c = bh_client(b);
	size_t maxid;
	struct seen *v = load_all(c, &maxid);

	// acknowledged creates are there, with their names
	size_t acked = 0;
	for (size_t i = 0; i < sh->ncreates; i++) {
		struct create_rec *rec = &sh->creates[i];
		if (rec->round != sh->round || !rec->acked)
			continue;
		acked++;
		for (int k = 0; k < BATCH; k++) {
			uint64_t id = rec->first_id + (uint64_t)k;
			char want[32];
			snprintf(want, sizeof(want), "k%d-%d-%d", rec->round,
			    rec->iter, k);
			BH_CHECK(id < MAX_TASKS && v[id].present,
			    "round %d: acknowledged create %d (first id %" PRIu64
			    "): task %" PRIu64 " is missing after the crash",
			    sh->round, rec->iter, rec->first_id, id);
			BH_CHECK(strcmp(v[id].name, want) == 0,
			    "round %d: task %" PRIu64 " is named %s, expected %s",
			    sh->round, id, v[id].name, want);
		}
		*expect_total += BATCH;
	}
	// acknowledged reports are there
	size_t nrep = 0;
	for (size_t id = 1; id < MAX_TASKS; id++) {
		struct task_rec *tr = &sh->tasks[id];
		if (!tr->known || tr->lease != sh->lease)
			continue;
		int got = v[id].present ? rank_state(v[id].state) : -1;
		BH_CHECK(got >= tr->acked && got <= tr->sent,
		    "round %d: task %zu is %s; acknowledged %s, last sent %s",
		    sh->round, id, v[id].present ? bh_sname(v[id].state) : "absent",
		    bh_sname(rank_to_state[tr->acked]),
		    bh_sname(rank_to_state[tr->sent]));
		if (tr->acked >= R_RUNNING)
			nrep++;
	}
	// unacknowledged requests that were committed before the kill (the
	// case the request ids are for)
	size_t precommitted = 0;
	for (size_t i = 0; i < sh->ncreates; i++) {
		struct create_rec *rec = &sh->creates[i];
		char want[32];
		if (rec->round != sh->round || rec->acked)
			continue;
		snprintf(want, sizeof(want), "k%d-%d-0", rec->round, rec->iter);
		for (size_t id = 1; id <= maxid; id++)
			if (v[id].present && strcmp(v[id].name, want) == 0)
				precommitted++;
	}
	if (sh->report_unacked && sh->nreport &&
	    v[sh->report[0].id].state == sh->report[0].to)
		precommitted++;
	if (sh->claim_unacked) {
		bool held_unknown = false;
		for (size_t id = 1; id <= maxid; id++)
			held_unknown |= v[id].present && v[id].lease == sh->lease &&
			    !sh->tasks[id].known;
		precommitted += held_unknown;
	}
	free(v);

	// the unacknowledged create, resent: applied once
	size_t unacked_creates = 0;
	for (size_t i = 0; i < sh->ncreates; i++) {
		struct create_rec *rec = &sh->creates[i];
		if (rec->round != sh->round || rec->acked)
			continue;
		unacked_creates++;
		rec->first_id = resend_create(c, rec);
		rec->acked = true;
		*expect_total += BATCH;
	}
	// the unacknowledged claim, resent: the launcher learns its tasks
	if (sh->claim_unacked) {
		Copal__ClaimRequest cl;
		Copal__NodeCapacity nc, *ncp[CLAIM_MAX];
		Copal__Request rq;
		claim_rq(&cl, &nc, ncp, &rq, sh->lease, sh->claim_rid);
		Copal__Reply *r1 = BH_OK(c, &rq);
		rq.request_id = sh->claim_rid;
		Copal__Reply *r2 = BH_CALL(c, &rq, -1);
		BH_SAME_REPLY(r1, r2);
		for (size_t i = 0; i < r1->claim->n_tasks; i++) {
			Copal__Task *t = r1->claim->tasks[i]->task;
			struct task_rec *tr = &sh->tasks[t->id];
			tr->known = 1;
			tr->lease = sh->lease;
			tr->attempt = t->status->attempt;
			tr->acked = tr->sent = R_CLAIMED;
		}
		bh_free(r1);
		bh_free(r2);
	}
	// the unacknowledged report, resent: every item applies (now or
	// before the crash) and the task is in the reported state
	if (sh->report_unacked) {
		Copal__ReportRequest rr;
		Copal__StateReport s[CLAIM_MAX], *sp[CLAIM_MAX];
		Copal__Request rq;
		report_rq(&rr, s, sp, &rq, sh->lease, sh->report, sh->nreport,
		    sh->report_rid);
		Copal__Reply *r1 = BH_OK(c, &rq);
		rq.request_id = sh->report_rid;
		Copal__Reply *r2 = BH_CALL(c, &rq, -1);
		BH_SAME_REPLY(r1, r2);
		BH_EQ_U64(r1->report->n_status, sh->nreport);
		for (size_t i = 0; i < sh->nreport; i++) {
			BH_CHECK(r1->report->status[i] == 0,
			    "resent report of task %" PRIu64 " -> %s: %s",
			    sh->report[i].id, bh_sname(sh->report[i].to),
			    cpl_errname((int)r1->report->status[i]));
			BH_STATE(c, sh->report[i].id, sh->report[i].to);
		}
		bh_free(r1);
		bh_free(r2);
	}

	// totals: each create applied once
	BH_EQ_U64(bh_count_wf(c, WF), *expect_total);
	// the launcher knows every task its lease holds
	v = load_all(c, &maxid);
	for (size_t id = 1; id <= maxid; id++) {
		if (!v[id].present || v[id].lease != sh->lease)
			continue;
		BH_CHECK(sh->tasks[id].known,
		    "round %d: task %zu (%s) is held by the launcher's lease "
		    "%" PRIu64 " but no claim reply named it",
		    sh->round, id, bh_sname(v[id].state), sh->lease);
	}
	free(v);

	// history: one creation per task, no transition twice
	bh_snap snap;
	bh_snapshot(c, &snap);
	uint8_t(*tally)[CPL_NSTATES] = calloc(MAX_TASKS, sizeof(*tally));
	uint64_t after = 0;
	for (;;) {
		Copal__ExportRequest e = COPAL__EXPORT_REQUEST__INIT;
		e.after_seq = after;
		e.limit = 100000;
		BH_REQ(rq, EXPORT, export, &e);
		Copal__Reply *r = BH_OK(c, &rq);
		for (size_t i = 0; i < r->export->n_events; i++) {
			Copal__Event *ev = r->export->events[i];
			if (ev->task_id < MAX_TASKS && (int)ev->to_state < CPL_NSTATES &&
			    tally[ev->task_id][ev->to_state] < 255)
				tally[ev->task_id][ev->to_state]++;
			if (ev->from_state == COPAL__TASK_STATE__STATE_CREATED)
				tally[ev->task_id][0]++; // creations
		}
		bool more = r->export->more;
		after = r->export->last_seq;
		bh_free(r);
		if (!more)
			break;
	}
	for (size_t id = 1; id <= maxid; id++) {
		BH_CHECK(tally[id][0] == 1, "task %zu created %u times in the log",
		    id, tally[id][0]);
		for (int st = CPL_RUNNING; st <= CPL_JOB_FINISHED; st++)
			BH_CHECK(tally[id][st] <= 1,
			    "task %zu went to %s %u times (a report applied twice)",
			    id, bh_sname(st), tally[id][st]);
	}
	free(tally);
	print_message("round %d: %zu creates acknowledged, %zu tasks with "
	              "acknowledged reports, unacknowledged: create %s, claim "
	              "%s, report %s (%zu of them committed before the kill)\n",
	    sh->round, acked, nrep, unacked_creates ? "yes" : "no",
	    sh->claim_unacked ? "yes" : "no", sh->report_unacked ? "yes" : "no",
	    precommitted);
	cpl_client_close(c);
}

static void
test_kill9_during_traffic(void **state)
{
	bh_broker *b = *state;
	uint64_t seed = bh_seed(), rs = seed;
	print_message("crash test seed %" PRIu64 " (COPAL_TEST_SEED)\n", seed);
	struct shared *sh = calloc(1, sizeof(*sh));
	sh->b = b;
	sh->tasks = calloc(MAX_TASKS, sizeof(*sh->tasks));
	uint64_t expect_total = 0;
	cpl_client *c = bh_client(b);
	bh_app(c, "app");
	cpl_client_close(c);

	for (int round = 0; round < ROUNDS; round++) {
		pthread_t tc, tl;
		// the creates of earlier rounds were all resolved
		sh->round = round;
		sh->claim_unacked = sh->report_unacked = false;
		sh->nclaims = sh->nreports = 0;
		c = bh_client(b);
		sh->lease = bh_lease(c, "crash-launcher", 600000);
		cpl_client_close(c);
		BH_CHECK(pthread_create(&tc, NULL, creator_main, sh) == 0, "thread");
		BH_CHECK(pthread_create(&tl, NULL, launcher_main, sh) == 0, "thread");
		unsigned wait = 150 + (unsigned)(bh_rand(&rs) % 1200);
		bh_sleep_ms(wait);
		bh_kill9(b);
		pthread_join(tc, NULL);
		pthread_join(tl, NULL);
		for (int k = 0; k < 2; k++)
			BH_CHECK(sh->err[k][0] == 0, "round %d: %s", round, sh->err[k]);
		print_message("round %d: killed after %u ms, %" PRIu64 " claims and "
		              "%" PRIu64 " reports acknowledged\n",
		    round, wait, sh->nclaims, sh->nreports);
		bh_start(b);
		check_round(b, sh, &expect_total);
	}
	bh_stop(b);

	// the store itself is consistent
	cpl_store *st;
	cpl_store_opts so;
	char report[2048] = "";
	memset(&so, 0, sizeof(so));
	int rv = cpl_store_open(b->dir, &so, &st);
	BH_CHECK(rv == 0, "cpl_store_open after the crashes: %s", cpl_errname(rv));
	rv = cpl_store_check(st, report, sizeof(report));
	cpl_store_close(st);
	BH_CHECK(rv == 0, "cpl_store_check: %s: %s", cpl_errname(rv), report);
	free(sh->creates);
	free(sh->tasks);
	free(sh);
}

static int
setup(void **state)
{
	bh_broker *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	*state = b;
	bh_init(b, false);
	bh_start(b);
	return 0;
}

static int
teardown(void **state)
{
	bh_broker *b = *state;
	bh_finish(b);
	free(b);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kill9_during_traffic, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
