// copal_testing: requests through the client library that fail the test
// with the status name and the broker's error text, one-call helpers for
// common requests, and database snapshots. See copal/testing/broker.h.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/broker.h"

const char *
bh_body_name(const Copal__Request *rq)
{
	switch (rq->body_case) {
	case COPAL__REQUEST__BODY_CREATE: return "create";
	case COPAL__REQUEST__BODY_CLAIM: return "claim";
	case COPAL__REQUEST__BODY_REPORT: return "report";
	case COPAL__REQUEST__BODY_HEARTBEAT: return "heartbeat";
	case COPAL__REQUEST__BODY_QUERY: return "query";
	case COPAL__REQUEST__BODY_COUNT: return "count";
	case COPAL__REQUEST__BODY_MODIFY: return "modify";
	case COPAL__REQUEST__BODY_DELETE: return "delete";
	case COPAL__REQUEST__BODY_KILL: return "kill";
	case COPAL__REQUEST__BODY_ADD_DEPENDENCY: return "add_dependency";
	case COPAL__REQUEST__BODY_HISTORY: return "history";
	case COPAL__REQUEST__BODY_EXPORT: return "export";
	case COPAL__REQUEST__BODY_APP_REGISTER: return "app_register";
	case COPAL__REQUEST__BODY_APP_LIST: return "app_list";
	case COPAL__REQUEST__BODY_APP_DELETE: return "app_delete";
	case COPAL__REQUEST__BODY_PING: return "ping";
	default: return "(no body)";
	}
}

Copal__Reply *
bh_call_(cpl_client *c, Copal__Request *rq, int want, const char *expr,
    const char *file, int line)
{
	Copal__Reply *r = NULL;
	int rv = cpl_client_call(c, rq, &r);
	if (rv != 0)
		BH_FAIL("%s:%d: %s request %s: no reply: %s (%s)", file, line,
		    bh_body_name(rq), expr, cpl_errname(rv), cpl_strerror(rv));
	if (want >= 0 && (int)r->status != want)
		BH_FAIL("%s:%d: %s request %s: status %s (%s), error text \"%s\"; "
		        "expected %s (%s)",
		    file, line, bh_body_name(rq), expr,
		    cpl_errname((int)r->status), cpl_strerror((int)r->status),
		    r->error ? r->error : "", cpl_errname(want),
		    cpl_strerror(want));
	if (r->status == 0 && r->body_case != (Copal__Reply__BodyCase)rq->body_case)
		BH_FAIL("%s:%d: %s request %s: success with reply body %d, "
		        "expected %d",
		    file, line, bh_body_name(rq), expr, (int)r->body_case,
		    (int)rq->body_case);
	return r;
}

uint8_t *
bh_pack_reply(const Copal__Reply *r, size_t *len)
{
	*len = copal__reply__get_packed_size(r);
	uint8_t *b = malloc(*len ? *len : 1);
	if (b)
		copal__reply__pack(r, b);
	return b;
}

void
bh_same_reply_(const Copal__Reply *a, const Copal__Reply *b, const char *file,
    int line)
{
	size_t la, lb;
	uint8_t *pa = bh_pack_reply(a, &la), *pb = bh_pack_reply(b, &lb);
	bool same = pa && pb && la == lb && memcmp(pa, pb, la) == 0;
	free(pa);
	free(pb);
	if (!same)
		BH_FAIL("%s:%d: the replies differ: status %s/%s, body %d/%d, "
		        "%zu/%zu bytes packed",
		    file, line, cpl_errname((int)a->status),
		    cpl_errname((int)b->status), (int)a->body_case,
		    (int)b->body_case, la, lb);
}

void
bh_app(cpl_client *c, const char *name)
{
	Copal__App app = COPAL__APP__INIT;
	Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
	app.name = (char *)name;
	app.executable = (char *)"/bin/true";
	ar.app = &app;
	ar.replace = true;
	BH_REQ(rq, APP_REGISTER, app_register, &ar);
	bh_free(BH_OK(c, &rq));
}

Copal__TaskSpec
bh_spec(const char *name, const char *wf, const char *app)
{
	Copal__TaskSpec s = COPAL__TASK_SPEC__INIT;
	s.name = (char *)name;
	s.workflow = (char *)(wf ? wf : "");
	s.application = (char *)app;
	return s;
}

uint64_t
bh_create(cpl_client *c, size_t n, const char *prefix, const char *wf,
    const char *app)
{
	Copal__TaskSpec *specs = calloc(n, sizeof(*specs));
	Copal__TaskSpec **sp = calloc(n, sizeof(*sp));
	char (*names)[64] = calloc(n, 64);
	if (!specs || !sp || !names)
		BH_FAIL("out of memory");
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 64, "%s%zu", prefix, i);
		specs[i] = bh_spec(names[i], wf, app);
		sp[i] = &specs[i];
	}
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = n;
	cr.tasks = sp;
	BH_REQ(rq, CREATE, create, &cr);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t first = r->create->first_id;
	BH_EQ_U64(r->create->count, n);
	bh_free(r);
	free(specs);
	free(sp);
	free(names);
	return first;
}

Copal__Reply *
bh_query_id(cpl_client *c, uint64_t id, bool with_spec, Copal__Task **t)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	f.n_ids = 1;
	f.ids = &id;
	q.filter = &f;
	q.with_spec = with_spec;
	BH_REQ(rq, QUERY, query, &q);
	Copal__Reply *r = BH_OK(c, &rq);
	*t = r->query->n_tasks ? r->query->tasks[0] : NULL;
	if (*t && (*t)->id != id)
		BH_FAIL("query for id %" PRIu64 " returned task %" PRIu64, id,
		    (*t)->id);
	return r;
}

int
bh_state(cpl_client *c, uint64_t id)
{
	Copal__Task *t;
	Copal__Reply *r = bh_query_id(c, id, false, &t);
	int s = t ? (int)t->status->state : -1;
	bh_free(r);
	return s;
}

uint64_t
bh_lease(cpl_client *c, const char *owner, uint32_t ttl_ms)
{
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.owner = (char *)owner;
	hb.ttl_ms = ttl_ms;
	BH_REQ(rq, HEARTBEAT, heartbeat, &hb);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t id = r->heartbeat->lease_id;
	bh_free(r);
	if (id == 0)
		BH_FAIL("heartbeat granted lease id 0");
	return id;
}

Copal__Reply *
bh_claim(cpl_client *c, uint64_t lease, uint32_t max, size_t nnodes,
    uint32_t units, uint32_t gpus, const char *wf)
{
	Copal__NodeCapacity *nc = calloc(nnodes, sizeof(*nc));
	Copal__NodeCapacity **ncp = calloc(nnodes, sizeof(*ncp));
	if (!nc || !ncp)
		BH_FAIL("out of memory");
	for (size_t i = 0; i < nnodes; i++) {
		Copal__NodeCapacity x = COPAL__NODE_CAPACITY__INIT;
		nc[i] = x;
		nc[i].free_units = units;
		nc[i].free_gpus = gpus;
		ncp[i] = &nc[i];
	}
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = max;
	cl.n_nodes = nnodes;
	cl.nodes = ncp;
	cl.workflow = (char *)(wf ? wf : "");
	BH_REQ(rq, CLAIM, claim, &cl);
	Copal__Reply *r = BH_OK(c, &rq);
	free(nc);
	free(ncp);
	return r;
}

int
bh_report1(cpl_client *c, uint64_t lease, uint64_t id, uint32_t attempt,
    int to, int rc, const char *msg)
{
	Copal__StateReport s = COPAL__STATE_REPORT__INIT;
	Copal__StateReport *sp = &s;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	s.task_id = id;
	s.attempt = attempt;
	s.to_state = (Copal__TaskState)to;
	s.return_code = rc;
	s.message = (char *)(msg ? msg : "");
	rr.lease_id = lease;
	rr.n_reports = 1;
	rr.reports = &sp;
	BH_REQ(rq, REPORT, report, &rr);
	Copal__Reply *r = BH_OK(c, &rq);
	if (r->report->n_status != 1)
		BH_FAIL("report of 1 answered with %zu statuses",
		    r->report->n_status);
	int st = (int)r->report->status[0];
	bh_free(r);
	return st;
}

Copal__Reply *
bh_history(cpl_client *c, uint64_t id)
{
	Copal__HistoryRequest h = COPAL__HISTORY_REQUEST__INIT;
	h.task_id = id;
	BH_REQ(rq, HISTORY, history, &h);
	return BH_OK(c, &rq);
}

uint64_t
bh_count(cpl_client *c, const Copal__Filter *f, uint64_t by[CPL_NSTATES])
{
	Copal__CountRequest cr = COPAL__COUNT_REQUEST__INIT;
	cr.filter = (Copal__Filter *)f;
	BH_REQ(rq, COUNT, count, &cr);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t total = r->count->total, sum = 0;
	for (int s = 0; s < CPL_NSTATES; s++) {
		uint64_t v = (size_t)s < r->count->n_by_state ?
		    r->count->by_state[s] : 0;
		if (by)
			by[s] = v;
		sum += v;
	}
	if (sum != total)
		BH_FAIL("count: by_state adds up to %" PRIu64 ", total is %" PRIu64,
		    sum, total);
	bh_free(r);
	return total;
}

uint64_t
bh_count_state(cpl_client *c, int state)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__TaskState s = (Copal__TaskState)state;
	f.n_states = 1;
	f.states = &s;
	return bh_count(c, &f, NULL);
}

uint64_t
bh_count_wf(cpl_client *c, const char *wf)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	f.workflow = (char *)wf;
	return bh_count(c, &f, NULL);
}

void
bh_snapshot(cpl_client *c, bh_snap *s)
{
	memset(s, 0, sizeof(*s));
	s->total = bh_count(c, NULL, s->by_state);
	uint64_t after = 0;
	for (int page = 0; page < 1000; page++) {
		Copal__ExportRequest e = COPAL__EXPORT_REQUEST__INIT;
		e.after_seq = after;
		e.limit = 100000;
		BH_REQ(rq, EXPORT, export, &e);
		Copal__Reply *r = BH_OK(c, &rq);
		s->nevents += r->export->n_events;
		if (r->export->n_events)
			s->last_seq = r->export->events[r->export->n_events - 1]->seq;
		bool more = r->export->more;
		if (r->export->last_seq <= after && more)
			BH_FAIL("export: more with no progress past seq %" PRIu64,
			    after);
		after = r->export->last_seq;
		bh_free(r);
		if (!more)
			break;
	}
	Copal__AppListRequest al = COPAL__APP_LIST_REQUEST__INIT;
	BH_REQ(rq, APP_LIST, app_list, &al);
	Copal__Reply *r = BH_OK(c, &rq);
	s->napps = r->app_list->n_apps;
	bh_free(r);
}

void
bh_same_snap_(const bh_snap *a, const bh_snap *b, const char *what,
    const char *file, int line)
{
	for (int s = 0; s < CPL_NSTATES; s++)
		if (a->by_state[s] != b->by_state[s])
			BH_FAIL("%s:%d: after %s: %s count %" PRIu64 ", was %" PRIu64,
			    file, line, what, bh_sname(s), b->by_state[s],
			    a->by_state[s]);
	if (a->total != b->total || a->nevents != b->nevents ||
	    a->last_seq != b->last_seq || a->napps != b->napps)
		BH_FAIL("%s:%d: after %s: tasks %" PRIu64 " events %" PRIu64
		        " last seq %" PRIu64 " apps %" PRIu64 "; was %" PRIu64
		        " / %" PRIu64 " / %" PRIu64 " / %" PRIu64,
		    file, line, what, b->total, b->nevents, b->last_seq,
		    b->napps, a->total, a->nevents, a->last_seq, a->napps);
}
