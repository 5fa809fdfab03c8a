// Integration tests of the broker's requests, through the client library
// against a real copal-broker. Each test has its own database directory
// and broker: ping; apps; create (uuids, local parents, all-or-nothing);
// query (filters, paging) and count; modify (fields, state, by filter with
// node bounds, all-or-nothing); kill; delete; add dependency; history;
// export paging; heartbeat; claim capacity fit; report batches; lease
// expiry and the retry policy; kill notices in heartbeat, report and
// claim replies; lease release; the workflow list.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "copal/testing/broker.h"

// ------------------------------------------------------------ helpers

static uint64_t
broker_now(cpl_client *c)
{
	Copal__PingRequest p = COPAL__PING_REQUEST__INIT;
	BH_REQ(rq, PING, ping, &p);
	Copal__Reply *r = BH_OK(c, &rq);
	uint64_t t = r->ping->broker_time_us;
	bh_free(r);
	return t;
}

// Creates specs in one request, with optional local dependencies.
static Copal__Reply *
create_specs(cpl_client *c, Copal__TaskSpec *specs, size_t n,
    uint32_t *lchild, uint32_t *lparent, size_t nchild, size_t nparent,
    bool want_uuids, int want)
{
	Copal__TaskSpec *sp[64];
	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++)
		sp[i] = &specs[i];
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = n;
	cr.tasks = sp;
	cr.n_local_parent_child = nchild;
	cr.local_parent_child = lchild;
	cr.n_local_parent_parent = nparent;
	cr.local_parent_parent = lparent;
	cr.want_uuids = want_uuids;
	BH_REQ(rq, CREATE, create, &cr);
	return BH_CALL(c, &rq, want);
}

// Creates one task from a spec; returns its id.
static uint64_t
create1(cpl_client *c, Copal__TaskSpec *s)
{
	Copal__Reply *r = create_specs(c, s, 1, NULL, NULL, 0, 0, false, 0);
	uint64_t id = r->create->first_id;
	bh_free(r);
	return id;
}

static Copal__Reply *
query(cpl_client *c, Copal__Filter *f, uint64_t after, uint32_t limit,
    bool with_spec, int want)
{
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	q.filter = f;
	q.after_id = after;
	q.limit = limit;
	q.with_spec = with_spec;
	BH_REQ(rq, QUERY, query, &q);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
modify(cpl_client *c, Copal__Filter *f, const char *field, const char *value,
    const char *msg, int want)
{
	Copal__ModifyRequest m = COPAL__MODIFY_REQUEST__INIT;
	m.filter = f;
	m.field = (char *)field;
	m.value = (char *)value;
	m.message = (char *)(msg ? msg : "");
	BH_REQ(rq, MODIFY, modify, &m);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
kill_tasks(cpl_client *c, Copal__Filter *f, int want)
{
	Copal__KillRequest k = COPAL__KILL_REQUEST__INIT;
	k.filter = f;
	BH_REQ(rq, KILL, kill, &k);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
delete_tasks(cpl_client *c, Copal__Filter *f, int want)
{
	Copal__DeleteRequest d = COPAL__DELETE_REQUEST__INIT;
	d.filter = f;
	BH_REQ(rq, DELETE, delete_, &d);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
add_dep(cpl_client *c, uint64_t parent, uint64_t child, int want)
{
	Copal__AddDependencyRequest a = COPAL__ADD_DEPENDENCY_REQUEST__INIT;
	a.parent_id = parent;
	a.child_id = child;
	BH_REQ(rq, ADD_DEPENDENCY, add_dependency, &a);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
heartbeat(cpl_client *c, uint64_t lease, uint32_t ttl, int want)
{
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.lease_id = lease;
	hb.ttl_ms = ttl;
	hb.owner = (char *)"basic-test";
	BH_REQ(rq, HEARTBEAT, heartbeat, &hb);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
export_page(cpl_client *c, uint64_t after, uint64_t since, uint64_t until,
    const char *wf, uint32_t limit, int want)
{
	Copal__ExportRequest e = COPAL__EXPORT_REQUEST__INIT;
	e.after_seq = after;
	e.since_us = since;
	e.until_us = until;
	e.workflow = (char *)(wf ? wf : "");
	e.limit = limit;
	BH_REQ(rq, EXPORT, export, &e);
	return BH_CALL(c, &rq, want);
}

// Filter helpers: in the caller's storage.
static Copal__Filter
f_ids(uint64_t *ids, size_t n)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	f.ids = ids;
	f.n_ids = n;
	return f;
}

static Copal__Filter
f_wf(const char *wf)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	f.workflow = (char *)wf;
	return f;
}

// The error text of a reply must contain s.
#define ERR_HAS(r, s)                                                      \
	BH_CHECK((r)->error && strstr((r)->error, (s)) != NULL,            \
	    "error text \"%s\" does not mention \"%s\"",                   \
	    (r)->error ? (r)->error : "(null)", (s))

static bool
uuid_ok(const char *u)
{
	if (u == NULL || strlen(u) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? u[i] != '-' : !strchr("0123456789abcdef", u[i]))
			return false;
	}
	return true;
}

// Whether task id's history has an event from -> to whose message
// contains msg (NULL: any message).
static bool
has_event(cpl_client *c, uint64_t id, int from, int to, const char *msg)
{
	Copal__Reply *r = bh_history(c, id);
	bool found = false;
	for (size_t i = 0; i < r->history->n_events && !found; i++) {
		Copal__Event *e = r->history->events[i];
		found = (int)e->from_state == from && (int)e->to_state == to &&
		    (msg == NULL || (e->message && strstr(e->message, msg)));
	}
	if (!found) {
		print_error("history of task %" PRIu64 ":\n", id);
		for (size_t i = 0; i < r->history->n_events; i++) {
			Copal__Event *e = r->history->events[i];
			print_error("  seq %" PRIu64 " %s -> %s attempt %u rc %d "
			            "\"%s\"\n",
			    e->seq, bh_sname(e->from_state),
			    bh_sname(e->to_state), e->attempt, e->return_code,
			    e->message ? e->message : "");
		}
	}
	bh_free(r);
	return found;
}

#define HAS_EVENT(c, id, from, to, msg)                                    \
	BH_CHECK(has_event((c), (id), (from), (to), (msg)),                \
	    "task %" PRIu64 " has no event %s -> %s with a message "       \
	    "containing \"%s\"",                                           \
	    (uint64_t)(id), bh_sname(from), bh_sname(to), (msg))

// ------------------------------------------------------------ ping, apps

static void
test_ping(void **state)
{
	bh_fx *f = *state;
	struct timespec ts;
	Copal__PingRequest p = COPAL__PING_REQUEST__INIT;
	BH_REQ(rq, PING, ping, &p);
	Copal__Reply *r = BH_OK(f->c, &rq);
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	BH_EQ_U64(r->ping->pid, f->b.pid);
	BH_CHECK(r->ping->version && r->ping->version[0], "empty version");
	BH_CHECK(strcmp(r->ping->db_dir, f->b.dir) == 0,
	    "db_dir is %s, expected %s", r->ping->db_dir, f->b.dir);
	BH_EQ_U64(r->ping->n_by_state, CPL_NSTATES);
	uint64_t bt = r->ping->broker_time_us;
	BH_CHECK(bt + 60000000u > now && bt < now + 60000000u,
	    "broker time %" PRIu64 " is far from local time %" PRIu64, bt, now);
	BH_CHECK(r->ping->started_us <= bt,
	    "started_us %" PRIu64 " after broker time %" PRIu64,
	    r->ping->started_us, bt);
	BH_EQ_U64(r->request_id, rq.request_id);
	BH_EQ_U64(r->version, 1);
	for (int s = 0; s < CPL_NSTATES; s++)
		BH_EQ_U64(r->ping->by_state[s], 0);
	bh_free(r);
}

static Copal__Reply *
app_register(cpl_client *c, const char *name, const char *exe,
    const char *desc, bool replace, int want)
{
	Copal__App app = COPAL__APP__INIT;
	Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
	app.name = (char *)name;
	app.executable = (char *)exe;
	app.description = (char *)(desc ? desc : "");
	ar.app = &app;
	ar.replace = replace;
	BH_REQ(rq, APP_REGISTER, app_register, &ar);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
app_delete(cpl_client *c, const char *name, int want)
{
	Copal__AppDeleteRequest ad = COPAL__APP_DELETE_REQUEST__INIT;
	ad.name = (char *)name;
	BH_REQ(rq, APP_DELETE, app_delete, &ad);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
app_list(cpl_client *c)
{
	Copal__AppListRequest al = COPAL__APP_LIST_REQUEST__INIT;
	BH_REQ(rq, APP_LIST, app_list, &al);
	return BH_OK(c, &rq);
}

static void
test_apps(void **state)
{
	bh_fx *f = *state;
	Copal__Reply *r;
	bh_free(app_register(f->c, "alpha", "/bin/echo alpha", "first", false, 0));
	r = app_register(f->c, "alpha", "/bin/echo other", NULL, false, CPL_EEXISTS);
	ERR_HAS(r, "alpha");
	bh_free(r);
	bh_free(app_register(f->c, "alpha", "/bin/echo alpha2", "second", true, 0));
	bh_free(app_register(f->c, "", "/bin/true", NULL, false, CPL_EINVAL));
	bh_free(app_register(f->c, "noexe", "", NULL, false, CPL_EINVAL));
	{
		Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
		BH_REQ(rq, APP_REGISTER, app_register, &ar);
		bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
	}
	bh_free(app_register(f->c, "beta", "/bin/echo beta", NULL, false, 0));

	// listed in name order, with the replaced fields
	r = app_list(f->c);
	BH_EQ_U64(r->app_list->n_apps, 3);
	BH_CHECK(strcmp(r->app_list->apps[0]->name, "alpha") == 0 &&
	        strcmp(r->app_list->apps[1]->name, "app") == 0 &&
	        strcmp(r->app_list->apps[2]->name, "beta") == 0,
	    "apps listed as %s, %s, %s; expected alpha, app, beta",
	    r->app_list->apps[0]->name, r->app_list->apps[1]->name,
	    r->app_list->apps[2]->name);
	BH_CHECK(strcmp(r->app_list->apps[0]->executable, "/bin/echo alpha2") == 0,
	    "alpha's executable is %s after replace",
	    r->app_list->apps[0]->executable);
	BH_CHECK(strcmp(r->app_list->apps[0]->description, "second") == 0,
	    "alpha's description is %s after replace",
	    r->app_list->apps[0]->description);
	bh_free(r);

	// an app in use cannot be deleted
	Copal__TaskSpec s = bh_spec("uses-alpha", "apps", "alpha");
	uint64_t id = create1(f->c, &s);
	r = app_delete(f->c, "alpha", CPL_EINUSE);
	ERR_HAS(r, "alpha");
	bh_free(r);
	bh_free(app_delete(f->c, "beta", 0));
	r = app_delete(f->c, "beta", CPL_ENOTFOUND);
	ERR_HAS(r, "beta");
	bh_free(r);
	Copal__Filter fi = f_ids(&id, 1);
	bh_free(delete_tasks(f->c, &fi, 0));
	bh_free(app_delete(f->c, "alpha", 0));
	r = app_list(f->c);
	BH_EQ_U64(r->app_list->n_apps, 1);
	BH_CHECK(strcmp(r->app_list->apps[0]->name, "app") == 0,
	    "left app is %s", r->app_list->apps[0]->name);
	bh_free(r);
	// a deleted app cannot be used
	s = bh_spec("uses-alpha-again", "apps", "alpha");
	r = create_specs(f->c, &s, 1, NULL, NULL, 0, 0, false, CPL_ENOTFOUND);
	ERR_HAS(r, "alpha");
	bh_free(r);
}

// ------------------------------------------------------------ create

static void
test_create(void **state)
{
	bh_fx *f = *state;
	Copal__TaskSpec s[3] = { bh_spec("A", "dag", "app"),
		bh_spec("B", "dag", "app"), bh_spec("C", "dag", "app") };
	uint32_t lchild[] = { 1, 2, 2 }, lparent[] = { 0, 0, 1 };
	Copal__Reply *r = create_specs(f->c, s, 3, lchild, lparent, 3, 3, true, 0);
	uint64_t a = r->create->first_id;
	BH_EQ_U64(r->create->count, 3);
	BH_EQ_U64(r->create->n_uuids, 3);
	char uuids[3][37];
	for (int i = 0; i < 3; i++) {
		BH_CHECK(uuid_ok(r->create->uuids[i]), "bad uuid \"%s\"",
		    r->create->uuids[i]);
		snprintf(uuids[i], 37, "%s", r->create->uuids[i]);
	}
	BH_CHECK(strcmp(uuids[0], uuids[1]) && strcmp(uuids[1], uuids[2]) &&
	        strcmp(uuids[0], uuids[2]),
	    "uuids not distinct");
	bh_free(r);

	uint64_t ids[3] = { a, a + 1, a + 2 };
	Copal__Filter fi = f_ids(ids, 3);
	r = query(f->c, &fi, 0, 0, true, 0);
	BH_EQ_U64(r->query->n_tasks, 3);
	const char *names[] = { "A", "B", "C" };
	int want_state[] = { CPL_READY, CPL_AWAITING_PARENTS, CPL_AWAITING_PARENTS };
	uint32_t want_pending[] = { 0, 1, 2 };
	for (int i = 0; i < 3; i++) {
		Copal__Task *t = r->query->tasks[i];
		BH_EQ_U64(t->id, ids[i]);
		BH_CHECK(strcmp(t->uuid, uuids[i]) == 0,
		    "task %d uuid %s, create said %s", i, t->uuid, uuids[i]);
		BH_CHECK(strcmp(t->spec->name, names[i]) == 0, "name %s",
		    t->spec->name);
		BH_EQ_STATE(t->status->state, want_state[i]);
		BH_EQ_U64(t->status->pending_parents, want_pending[i]);
		BH_EQ_U64(t->spec->n_parent_ids, i);
	}
	BH_EQ_U64(r->query->tasks[1]->spec->parent_ids[0], a);
	BH_EQ_U64(r->query->tasks[2]->spec->parent_ids[0], a);
	BH_EQ_U64(r->query->tasks[2]->spec->parent_ids[1], a + 1);
	bh_free(r);

	// an external parent, and a create without uuids
	Copal__TaskSpec d = bh_spec("D", "dag", "app");
	uint64_t pid = a + 2;
	d.n_parent_ids = 1;
	d.parent_ids = &pid;
	r = create_specs(f->c, &d, 1, NULL, NULL, 0, 0, false, 0);
	BH_EQ_U64(r->create->n_uuids, 0);
	BH_EQ_U64(r->create->count, 1);
	uint64_t did = r->create->first_id;
	BH_EQ_U64(did, a + 3);
	bh_free(r);
	BH_STATE(f->c, did, CPL_AWAITING_PARENTS);

	// refused batches change nothing
	bh_snap before, after;
	bh_snapshot(f->c, &before);
	Copal__TaskSpec bad[3] = { bh_spec("x0", "dag", "app"),
		bh_spec("x1", "dag", "app"), bh_spec("x2", "dag", "nope") };
	r = create_specs(f->c, bad, 3, NULL, NULL, 0, 0, true, CPL_ENOTFOUND);
	ERR_HAS(r, "nope");
	bh_free(r);
	bad[2] = bh_spec("x2", "dag", "app");
	uint64_t missing = 99999999;
	bad[2].n_parent_ids = 1;
	bad[2].parent_ids = &missing;
	bh_free(create_specs(f->c, bad, 3, NULL, NULL, 0, 0, true, CPL_ENOTFOUND));
	uint64_t dup[2] = { a, a };
	bad[2].n_parent_ids = 2;
	bad[2].parent_ids = dup;
	bh_free(create_specs(f->c, bad, 3, NULL, NULL, 0, 0, true, CPL_EINVAL));
	bad[2] = bh_spec("", "dag", "app");
	bh_free(create_specs(f->c, bad, 3, NULL, NULL, 0, 0, true, CPL_EINVAL));
	bad[2] = bh_spec("x2", "dag", "app");
	// bad local dependencies
	uint32_t c0[] = { 0 }, p0[] = { 0 }, c5[] = { 5 }, p1[] = { 1 };
	bh_free(create_specs(f->c, bad, 3, c0, p0, 1, 1, false, CPL_EINVAL));
	bh_free(create_specs(f->c, bad, 3, c5, p0, 1, 1, false, CPL_EINVAL));
	bh_free(create_specs(f->c, bad, 3, c0, p1, 1, 1, false, CPL_EINVAL));
	bh_free(create_specs(f->c, bad, 3, p1, NULL, 1, 0, false, CPL_EINVAL));
	bh_free(create_specs(f->c, bad, 0, NULL, NULL, 0, 0, false, CPL_EINVAL));
	bh_snapshot(f->c, &after);
	BH_SAME_SNAP(&before, &after, "refused creates");
	// and use up no ids
	Copal__TaskSpec e = bh_spec("E", "dag", "app");
	BH_EQ_U64(create1(f->c, &e), did + 1);
}

// ------------------------------------------------------------ query, count

static void
test_query_count(void **state)
{
	bh_fx *f = *state;
	bh_app(f->c, "app2");
	uint64_t first = bh_create(f->c, 25, "p", "page", "app");
	uint64_t other = bh_create(f->c, 5, "o", "other", "app2");
	uint32_t nodes[] = { 1, 2, 4, 8 };
	uint64_t nid[4];
	for (int i = 0; i < 4; i++) {
		Copal__Resources res = COPAL__RESOURCES__INIT;
		char name[16];
		snprintf(name, sizeof(name), "n%u", nodes[i]);
		Copal__TaskSpec s = bh_spec(name, "nodes", "app");
		res.num_nodes = nodes[i];
		s.resources = &res;
		nid[i] = create1(f->c, &s);
	}

	// paging through one workflow: 10, 10, 5
	Copal__Filter fw = f_wf("page");
	uint64_t after = 0, seen = 0;
	uint32_t pages[] = { 10, 10, 5 };
	for (int p = 0; p < 3; p++) {
		Copal__Reply *r = query(f->c, &fw, after, 10, false, 0);
		BH_EQ_U64(r->query->n_tasks, pages[p]);
		BH_CHECK(r->query->more == (p < 2), "page %d: more is %d", p,
		    r->query->more);
		for (size_t i = 0; i < r->query->n_tasks; i++) {
			BH_EQ_U64(r->query->tasks[i]->id, first + seen);
			BH_CHECK(r->query->tasks[i]->spec == NULL,
			    "spec sent without with_spec");
			seen++;
		}
		after = r->query->tasks[r->query->n_tasks - 1]->id;
		bh_free(r);
	}
	BH_EQ_U64(seen, 25);
	Copal__Reply *r = query(f->c, &fw, 0, 0, false, 0); // default page 100
	BH_EQ_U64(r->query->n_tasks, 25);
	BH_CHECK(!r->query->more, "more after all 25");
	bh_free(r);
	bh_free(query(f->c, &fw, 0, 10001, false, CPL_EINVAL));
	// no filter: every task
	r = query(f->c, NULL, 0, 1000, false, 0);
	BH_EQ_U64(r->query->n_tasks, 34);
	bh_free(r);

	// each filter field
	Copal__Filter fn = COPAL__FILTER__INIT;
	fn.name = (char *)"p7";
	r = query(f->c, &fn, 0, 0, true, 0);
	BH_EQ_U64(r->query->n_tasks, 1);
	BH_EQ_U64(r->query->tasks[0]->id, first + 7);
	BH_CHECK(strcmp(r->query->tasks[0]->spec->workflow, "page") == 0,
	    "workflow %s", r->query->tasks[0]->spec->workflow);
	bh_free(r);
	Copal__Filter fa = COPAL__FILTER__INIT;
	fa.application = (char *)"app2";
	r = query(f->c, &fa, 0, 0, false, 0);
	BH_EQ_U64(r->query->n_tasks, 5);
	BH_EQ_U64(r->query->tasks[0]->id, other);
	bh_free(r);
	Copal__Task *t;
	Copal__Reply *tr = bh_query_id(f->c, first + 3, false, &t);
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%.11s", t->uuid); // 8 hex, dash, 2 hex
	bh_free(tr);
	Copal__Filter fu = COPAL__FILTER__INIT;
	fu.uuid_prefix = prefix;
	r = query(f->c, &fu, 0, 0, false, 0);
	BH_CHECK(r->query->n_tasks >= 1 && r->query->tasks[0]->id == first + 3,
	    "uuid prefix %s: %zu tasks", prefix, r->query->n_tasks);
	bh_free(r);
	Copal__TaskState ready = COPAL__TASK_STATE__STATE_READY,
	                 done = COPAL__TASK_STATE__STATE_RUN_DONE;
	Copal__Filter fs = f_wf("page");
	fs.n_states = 1;
	fs.states = &ready;
	r = query(f->c, &fs, 0, 0, false, 0);
	BH_EQ_U64(r->query->n_tasks, 25);
	bh_free(r);
	fs.states = &done;
	r = query(f->c, &fs, 0, 0, false, 0);
	BH_EQ_U64(r->query->n_tasks, 0);
	BH_CHECK(!r->query->more, "more with nothing");
	bh_free(r);
	Copal__Filter fnodes = f_wf("nodes");
	fnodes.min_nodes = 2;
	fnodes.max_nodes = 4;
	r = query(f->c, &fnodes, 0, 0, false, 0);
	BH_EQ_U64(r->query->n_tasks, 2);
	BH_EQ_U64(r->query->tasks[0]->id, nid[1]);
	BH_EQ_U64(r->query->tasks[1]->id, nid[2]);
	bh_free(r);
	fnodes.max_nodes = 0;
	fnodes.min_nodes = 3;
	r = query(f->c, &fnodes, 0, 0, false, 0);
	BH_EQ_U64(r->query->n_tasks, 2);
	bh_free(r);
	Copal__Filter fx = f_wf("no-such-workflow");
	r = query(f->c, &fx, 0, 0, false, 0);
	BH_EQ_U64(r->query->n_tasks, 0);
	bh_free(r);
	Copal__TaskState zero = COPAL__TASK_STATE__STATE_UNSPECIFIED;
	Copal__Filter fz = COPAL__FILTER__INIT;
	fz.n_states = 1;
	fz.states = &zero;
	bh_free(query(f->c, &fz, 0, 0, false, CPL_EINVAL));

	// counts: plain (stored counters) and filtered
	uint64_t by[CPL_NSTATES];
	BH_EQ_U64(bh_count(f->c, NULL, by), 34);
	BH_EQ_U64(by[CPL_READY], 34);
	BH_EQ_U64(bh_count_state(f->c, CPL_READY), 34);
	BH_EQ_U64(bh_count_state(f->c, CPL_FAILED), 0);
	BH_EQ_U64(bh_count_wf(f->c, "page"), 25);
	BH_EQ_U64(bh_count(f->c, &fa, NULL), 5);
	BH_EQ_U64(bh_count(f->c, &fn, NULL), 1);
	BH_EQ_U64(bh_count(f->c, &fnodes, NULL), 2);
	uint64_t two[2] = { first, other };
	Copal__Filter f2 = f_ids(two, 2);
	BH_EQ_U64(bh_count(f->c, &f2, NULL), 2);
	// after a kill the counters follow
	Copal__Filter fk = f_ids(&first, 1);
	bh_free(kill_tasks(f->c, &fk, 0));
	BH_EQ_U64(bh_count(f->c, NULL, by), 34);
	BH_EQ_U64(by[CPL_READY], 33);
	BH_EQ_U64(by[CPL_USER_KILLED], 1);
	BH_EQ_U64(bh_count(f->c, &fs, NULL), 0);
	fs.states = &ready;
	BH_EQ_U64(bh_count(f->c, &fs, NULL), 24);
}

// A filter with explicit ids and other fields selects the tasks that are
// in the list AND match the other fields, in every request that takes a
// filter (query, count, modify, delete, kill).
static void
test_filter_ids_and_fields(void **state)
{
	bh_fx *f = *state;
	uint64_t a = bh_create(f->c, 1, "in-a-", "wf-a", "app");
	uint64_t b = bh_create(f->c, 1, "in-b-", "wf-b", "app");
	uint64_t ids[2] = { a, b };
	Copal__Reply *r;

	Copal__Filter fl = f_ids(ids, 2);
	fl.workflow = (char *)"wf-a";
	r = query(f->c, &fl, 0, 0, false, 0);
	size_t nq = r->query->n_tasks;
	bh_free(r);
	uint64_t nc = bh_count(f->c, &fl, NULL);
	r = modify(f->c, &fl, "priority", "5", NULL, 0);
	uint64_t matched = r->modify->matched;
	bh_free(r);

	Copal__TaskState running = COPAL__TASK_STATE__STATE_RUNNING;
	Copal__Filter fs = f_ids(ids, 2);
	fs.n_states = 1;
	fs.states = &running;
	r = query(f->c, &fs, 0, 0, false, 0);
	size_t nqs = r->query->n_tasks;
	bh_free(r);

	Copal__Filter fk = f_ids(&b, 1);
	fk.workflow = (char *)"wf-a";
	r = kill_tasks(f->c, &fk, 0);
	uint64_t killed = r->kill->killed;
	bh_free(r);
	int bstate = bh_state(f->c, b);

	BH_CHECK(nq == 1 && nc == 1 && matched == 1 && nqs == 0 && killed == 0 &&
	        bstate == CPL_READY,
	    "filter {ids: [%" PRIu64 " in wf-a, %" PRIu64 " in wf-b], "
	    "workflow: wf-a}: query returned %zu tasks, count %" PRIu64
	    ", modify matched %" PRIu64 " (expected 1 each); "
	    "filter {ids: both, states: [RUNNING]} (both READY): query "
	    "returned %zu (expected 0); kill {ids: [%" PRIu64 "], workflow: "
	    "wf-a} killed %" PRIu64 " (expected 0) and left the task %s "
	    "(expected READY)",
	    a, b, nq, nc, matched, nqs, b, killed, bh_sname(bstate));
}

// ------------------------------------------------------------ modify

static uint64_t
claim_ids(cpl_client *c, uint64_t lease, const char *wf, uint32_t max,
    uint64_t *out, uint32_t *attempts)
{
	// at least 8 whole nodes: the largest task here needs 8
	Copal__Reply *r = bh_claim(c, lease, max, max < 8 ? 8 : max, 5040, 0, wf);
	size_t n = r->claim->n_tasks;
	for (size_t i = 0; i < n; i++) {
		out[i] = r->claim->tasks[i]->task->id;
		if (attempts)
			attempts[i] = r->claim->tasks[i]->task->status->attempt;
	}
	bh_free(r);
	return n;
}

static void
test_modify(void **state)
{
	bh_fx *f = *state;
	uint32_t nodes[] = { 1, 2, 4, 8 };
	uint64_t t[4];
	for (int i = 0; i < 4; i++) {
		Copal__Resources res = COPAL__RESOURCES__INIT;
		char name[16];
		snprintf(name, sizeof(name), "m%d", i);
		Copal__TaskSpec s = bh_spec(name, "mod", "app");
		res.num_nodes = nodes[i];
		s.resources = &res;
		s.args = (char *)"--old";
		t[i] = create1(f->c, &s);
	}
	Copal__Reply *r;
	Copal__Task *tk;

	// one field of one task
	Copal__Filter f0 = f_ids(&t[0], 1);
	r = modify(f->c, &f0, "args", "--new", NULL, 0);
	BH_EQ_U64(r->modify->matched, 1);
	BH_EQ_U64(r->modify->changed, 1);
	bh_free(r);
	r = bh_query_id(f->c, t[0], true, &tk);
	BH_CHECK(strcmp(tk->spec->args, "--new") == 0, "args is %s", tk->spec->args);
	bh_free(r);
	r = modify(f->c, &f0, "priority", "abc", NULL, CPL_EINVAL);
	ERR_HAS(r, "priority");
	bh_free(r);
	bh_free(modify(f->c, &f0, "bogus", "1", NULL, CPL_EINVAL));
	bh_free(modify(f->c, NULL, "args", "x", NULL, CPL_EINVAL));
	Copal__Filter fe = COPAL__FILTER__INIT;
	r = modify(f->c, &fe, "args", "x", NULL, CPL_EINVAL);
	ERR_HAS(r, "all");
	bh_free(r);

	// by filter with node bounds
	Copal__Filter fb = f_wf("mod");
	fb.min_nodes = 2;
	fb.max_nodes = 4;
	r = modify(f->c, &fb, "priority", "7", NULL, 0);
	BH_EQ_U64(r->modify->matched, 2);
	BH_EQ_U64(r->modify->changed, 2);
	bh_free(r);
	Copal__Filter fw = f_wf("mod");
	r = query(f->c, &fw, 0, 0, true, 0);
	BH_EQ_U64(r->query->n_tasks, 4);
	for (int i = 0; i < 4; i++) {
		int want = nodes[i] >= 2 && nodes[i] <= 4 ? 7 : 0;
		BH_CHECK(r->query->tasks[i]->spec->priority == want,
		    "task with %u nodes has priority %d, expected %d", nodes[i],
		    r->query->tasks[i]->spec->priority, want);
	}
	bh_free(r);
	// the workflow index follows a modified workflow
	Copal__Filter f3 = f_ids(&t[3], 1);
	bh_free(modify(f->c, &f3, "workflow", "mod2", NULL, 0));
	BH_EQ_U64(bh_count_wf(f->c, "mod"), 3);
	BH_EQ_U64(bh_count_wf(f->c, "mod2"), 1);

	// state: READY -> RESTART_READY is allowed for users
	r = modify(f->c, &f0, "state", "RESTART_READY", "reset by test", 0);
	BH_EQ_U64(r->modify->changed, 1);
	bh_free(r);
	BH_STATE(f->c, t[0], CPL_RESTART_READY);
	HAS_EVENT(f->c, t[0], CPL_READY, CPL_RESTART_READY, "reset by test");
	// the same state again: matched, not changed
	r = modify(f->c, &f0, "state", "restart_ready", NULL, 0);
	BH_EQ_U64(r->modify->matched, 1);
	BH_EQ_U64(r->modify->changed, 0);
	bh_free(r);
	bh_free(modify(f->c, &f0, "state", "NO_SUCH_STATE", NULL, CPL_EINVAL));
	Copal__Filter f1 = f_ids(&t[1], 1);
	bh_free(modify(f->c, &f1, "state", "JOB_FINISHED", NULL, CPL_EBADSTATE));
	BH_STATE(f->c, t[1], CPL_READY);

	// all or nothing: one task of two held by a launcher
	uint64_t lease = bh_lease(f->c, "modify-test", 60000);
	uint64_t held;
	BH_EQ_U64(claim_ids(f->c, lease, "mod2", 1, &held, NULL), 1);
	BH_EQ_U64(held, t[3]);
	bh_snap before, after;
	bh_snapshot(f->c, &before);
	uint64_t pair[2] = { t[1], t[3] };
	Copal__Filter fp = f_ids(pair, 2);
	r = modify(f->c, &fp, "args", "--changed", NULL, CPL_EBUSY);
	ERR_HAS(r, "nothing was changed");
	bh_free(r);
	bh_free(modify(f->c, &fp, "state", "RESTART_READY", NULL, CPL_EBUSY));
	bh_snapshot(f->c, &after);
	BH_SAME_SNAP(&before, &after, "refused modify");
	r = bh_query_id(f->c, t[1], true, &tk);
	BH_CHECK(strcmp(tk->spec->args, "--old") == 0,
	    "refused modify changed args to %s", tk->spec->args);
	bh_free(r);
	BH_STATE(f->c, t[1], CPL_READY);
}

// ------------------------------------------------------------ kill, delete

static void
test_kill(void **state)
{
	bh_fx *f = *state;
	Copal__TaskSpec s[4] = { bh_spec("A", "kill", "app"),
		bh_spec("B", "kill", "app"), bh_spec("C", "kill", "app"),
		bh_spec("D", "kill", "app") };
	uint32_t lchild[] = { 1, 2 }, lparent[] = { 0, 1 };
	Copal__Reply *r = create_specs(f->c, s, 4, lchild, lparent, 2, 2, false, 0);
	uint64_t a = r->create->first_id;
	bh_free(r);
	Copal__Filter fa = f_ids(&a, 1);
	r = kill_tasks(f->c, &fa, 0);
	BH_EQ_U64(r->kill->killed, 3);
	bh_free(r);
	BH_STATE(f->c, a, CPL_USER_KILLED);
	BH_STATE(f->c, a + 1, CPL_PARENT_KILLED);
	BH_STATE(f->c, a + 2, CPL_PARENT_KILLED);
	BH_STATE(f->c, a + 3, CPL_READY);
	HAS_EVENT(f->c, a, CPL_READY, CPL_USER_KILLED, "killed");
	HAS_EVENT(f->c, a + 1, CPL_AWAITING_PARENTS, CPL_PARENT_KILLED, "parent");
	// killing a final task changes nothing
	r = kill_tasks(f->c, &fa, 0);
	BH_EQ_U64(r->kill->killed, 0);
	bh_free(r);
	// by name
	Copal__Filter fn = f_wf("kill");
	fn.name = (char *)"D";
	r = kill_tasks(f->c, &fn, 0);
	BH_EQ_U64(r->kill->killed, 1);
	bh_free(r);
	BH_STATE(f->c, a + 3, CPL_USER_KILLED);
	bh_free(kill_tasks(f->c, NULL, CPL_EINVAL));
	uint64_t missing = 424242;
	Copal__Filter fm = f_ids(&missing, 1);
	bh_free(kill_tasks(f->c, &fm, CPL_ENOTFOUND));
	uint64_t by[CPL_NSTATES];
	bh_count(f->c, NULL, by);
	BH_EQ_U64(by[CPL_USER_KILLED], 2);
	BH_EQ_U64(by[CPL_PARENT_KILLED], 2);
}

static void
test_delete(void **state)
{
	bh_fx *f = *state;
	Copal__TaskSpec s[3] = { bh_spec("P", "del", "app"),
		bh_spec("C", "del", "app"), bh_spec("X", "del", "app") };
	uint32_t lchild[] = { 1 }, lparent[] = { 0 };
	Copal__Reply *r = create_specs(f->c, s, 3, lchild, lparent, 1, 1, false, 0);
	uint64_t p = r->create->first_id, c = p + 1, x = p + 2;
	bh_free(r);

	// all or nothing: P has a child, so X is not deleted either
	bh_snap before, after;
	bh_snapshot(f->c, &before);
	uint64_t xp[2] = { x, p };
	Copal__Filter fxp = f_ids(xp, 2);
	r = delete_tasks(f->c, &fxp, CPL_EINUSE);
	ERR_HAS(r, "children");
	bh_free(r);
	bh_snapshot(f->c, &after);
	BH_SAME_SNAP(&before, &after, "refused delete");
	BH_STATE(f->c, x, CPL_READY);
	BH_STATE(f->c, p, CPL_READY);

	// a task held by a launcher cannot be deleted
	Copal__TaskSpec h = bh_spec("H", "del-held", "app");
	uint64_t hid = create1(f->c, &h);
	uint64_t lease = bh_lease(f->c, "delete-test", 60000), got;
	BH_EQ_U64(claim_ids(f->c, lease, "del-held", 1, &got, NULL), 1);
	Copal__Filter fh = f_ids(&hid, 1);
	bh_free(delete_tasks(f->c, &fh, CPL_EBUSY));

	// children first, then the rest
	Copal__Filter fc = f_ids(&c, 1);
	r = delete_tasks(f->c, &fc, 0);
	BH_EQ_U64(r->delete_->deleted, 1);
	bh_free(r);
	r = delete_tasks(f->c, &fxp, 0);
	BH_EQ_U64(r->delete_->deleted, 2);
	bh_free(r);
	BH_CHECK(bh_state(f->c, p) < 0 && bh_state(f->c, c) < 0 &&
	        bh_state(f->c, x) < 0,
	    "deleted tasks are still there");
	BH_EQ_U64(bh_count_wf(f->c, "del"), 0);
	bh_free(delete_tasks(f->c, &fc, CPL_ENOTFOUND));
	bh_free(delete_tasks(f->c, NULL, CPL_EINVAL));
	// the history log keeps a deletion event
	bool found = false;
	r = export_page(f->c, 0, 0, 0, NULL, 1000, 0);
	for (size_t i = 0; i < r->export->n_events; i++) {
		Copal__Event *e = r->export->events[i];
		if (e->task_id == x && e->to_state == 0 && e->message &&
		    strstr(e->message, "deleted"))
			found = true;
	}
	bh_free(r);
	BH_CHECK(found, "no \"deleted\" event for task %" PRIu64 " in the log", x);
}

// ------------------------------------------------------------ dependencies

static void
test_add_dependency(void **state)
{
	bh_fx *f = *state;
	uint64_t x = bh_create(f->c, 4, "d", "deps", "app");
	uint64_t y = x + 1, z = x + 2, w = x + 3;
	Copal__Reply *r;
	bh_free(add_dep(f->c, x, y, 0));
	BH_STATE(f->c, y, CPL_AWAITING_PARENTS);
	// tasks are named as the CLI can find them: uuid prefix and name
	char msg[64];
	Copal__Task *xt;
	Copal__Reply *xr = bh_query_id(f->c, x, false, &xt);
	snprintf(msg, sizeof(msg), "new parent %.8s (d0)", xt->uuid);
	char xlabel[32];
	snprintf(xlabel, sizeof(xlabel), "-> %.8s (d0)", xt->uuid);
	bh_free(xr);
	HAS_EVENT(f->c, y, CPL_READY, CPL_AWAITING_PARENTS, msg);
	bh_free(add_dep(f->c, x, y, CPL_EEXISTS));
	r = add_dep(f->c, y, x, CPL_ECYCLE);
	ERR_HAS(r, "cycle");
	// refusals name tasks by uuid prefix and name, not internal ids
	ERR_HAS(r, "(d1) ");
	ERR_HAS(r, xlabel);
	char ids[64];
	snprintf(ids, sizeof(ids), "%" PRIu64 " -> %" PRIu64, y, x);
	BH_CHECK(strstr(r->error, ids) == NULL, "error text \"%s\" names "
	    "internal ids", r->error);
	bh_free(r);
	bh_free(add_dep(f->c, y, z, 0));
	bh_snap before, after;
	bh_snapshot(f->c, &before);
	bh_free(add_dep(f->c, z, x, CPL_ECYCLE)); // x -> y -> z -> x
	r = add_dep(f->c, x, x, CPL_EINVAL);
	ERR_HAS(r, "a task cannot depend on itself");
	bh_free(r);
	bh_free(add_dep(f->c, x, 7777777, CPL_ENOTFOUND));
	bh_free(add_dep(f->c, 7777777, x, CPL_ENOTFOUND));
	bh_snapshot(f->c, &after);
	BH_SAME_SNAP(&before, &after, "refused dependencies");
	Copal__Task *t;
	r = bh_query_id(f->c, z, true, &t);
	BH_EQ_U64(t->status->pending_parents, 1);
	BH_EQ_U64(t->spec->n_parent_ids, 1);
	BH_EQ_U64(t->spec->parent_ids[0], y);
	bh_free(r);
	// a child a launcher holds cannot get a parent
	uint64_t lease = bh_lease(f->c, "deps-test", 60000), got[4];
	size_t n = claim_ids(f->c, lease, "deps", 4, got, NULL);
	BH_CHECK(n == 2 && got[0] == x && got[1] == w,
	    "claimed %zu tasks, expected x and w", n);
	r = add_dep(f->c, z, w, -1);
	BH_CHECK(r->status == CPL_EBUSY || r->status == CPL_EBADSTATE,
	    "dependency on a held task: %s (%s)", cpl_errname((int)r->status),
	    r->error);
	bh_free(r);
}

// ------------------------------------------------------------ history, export

static void
test_history(void **state)
{
	bh_fx *f = *state;
	uint64_t id = bh_create(f->c, 1, "h", "hist", "app");
	Copal__Filter fi = f_ids(&id, 1);
	bh_free(modify(f->c, &fi, "state", "RESTART_READY", "m1", 0));
	bh_free(modify(f->c, &fi, "args", "x", NULL, 0)); // no event
	uint64_t lease = bh_lease(f->c, "history-test", 60000), got;
	uint32_t att;
	BH_EQ_U64(claim_ids(f->c, lease, "hist", 1, &got, &att), 1);
	BH_EQ_U64(att, 1);
	BH_EQ_ERR(bh_report1(f->c, lease, id, 1, CPL_RUNNING, 0, "starting"), 0);
	BH_EQ_ERR(bh_report1(f->c, lease, id, 1, CPL_RUN_DONE, 0, "done"), 0);
	BH_EQ_ERR(bh_report1(f->c, lease, id, 1, CPL_JOB_FINISHED, 0, "fin"), 0);

	Copal__Reply *r = bh_history(f->c, id);
	struct {
		int from, to;
		const char *msg;
		uint32_t attempt;
		uint64_t lease;
	} want[] = {
		{ CPL_CREATED, CPL_READY, "created", 0, 0 },
		{ CPL_READY, CPL_RESTART_READY, "m1", 0, 0 },
		{ CPL_RESTART_READY, CPL_RUNNING, "starting", 1, lease },
		{ CPL_RUNNING, CPL_RUN_DONE, "done", 1, lease },
		{ CPL_RUN_DONE, CPL_JOB_FINISHED, "fin", 1, lease },
	};
	BH_EQ_U64(r->history->n_events, 5);
	for (size_t i = 0; i < 5; i++) {
		Copal__Event *e = r->history->events[i];
		BH_EQ_U64(e->task_id, id);
		BH_EQ_STATE(e->from_state, want[i].from);
		BH_EQ_STATE(e->to_state, want[i].to);
		BH_CHECK(e->message && strcmp(e->message, want[i].msg) == 0,
		    "event %zu message \"%s\", expected \"%s\"", i, e->message,
		    want[i].msg);
		BH_EQ_U64(e->attempt, want[i].attempt);
		BH_EQ_U64(e->lease_id, want[i].lease);
		if (i > 0) {
			BH_CHECK(e->seq > r->history->events[i - 1]->seq,
			    "event seqs not increasing");
			BH_CHECK(e->time_us >= r->history->events[i - 1]->time_us,
			    "event times going back");
		}
	}
	bh_free(r);
	Copal__HistoryRequest h = COPAL__HISTORY_REQUEST__INIT;
	h.task_id = 31337;
	BH_REQ(rq, HISTORY, history, &h);
	bh_free(BH_CALL(f->c, &rq, CPL_ENOTFOUND));
}

static void
test_export(void **state)
{
	bh_fx *f = *state;
	uint64_t e1 = bh_create(f->c, 10, "a", "e1", "app");
	Copal__Filter fw = f_wf("e1");
	bh_free(modify(f->c, &fw, "state", "RESTART_READY", "bulk", 0));
	bh_sleep_ms(20);
	uint64_t t1 = broker_now(f->c);
	bh_sleep_ms(20);
	uint64_t e2 = bh_create(f->c, 5, "b", "e2", "app");
	bh_sleep_ms(20);
	uint64_t t2 = broker_now(f->c);
	bh_sleep_ms(20);
	bh_create(f->c, 3, "c", "e3", "app");

	// pages of 7 over 28 events: 7, 7, 7, 7 and an empty last page,
	// or 7, 7, 7, 7 with more false
	uint64_t after = 0, total = 0, prev = 0;
	for (int page = 0; page < 10; page++) {
		Copal__Reply *r = export_page(f->c, after, 0, 0, NULL, 7, 0);
		BH_CHECK(r->export->n_events <= 7, "page of %zu events",
		    r->export->n_events);
		for (size_t i = 0; i < r->export->n_events; i++) {
			uint64_t seq = r->export->events[i]->seq;
			BH_CHECK(seq == prev + 1, "event seq %" PRIu64 " after %" PRIu64,
			    seq, prev);
			prev = seq;
		}
		total += r->export->n_events;
		if (r->export->n_events)
			BH_EQ_U64(r->export->last_seq, prev);
		bool more = r->export->more;
		after = r->export->last_seq;
		bh_free(r);
		if (!more)
			break;
		BH_CHECK(page < 9, "export never ends");
	}
	BH_EQ_U64(total, 28);
	Copal__Reply *r = export_page(f->c, after, 0, 0, NULL, 7, 0);
	BH_EQ_U64(r->export->n_events, 0);
	BH_CHECK(!r->export->more, "more past the end");
	bh_free(r);

	// time windows
	r = export_page(f->c, 0, t1, 0, NULL, 1000, 0);
	BH_EQ_U64(r->export->n_events, 8);
	for (size_t i = 0; i < 5; i++)
		BH_EQ_U64(r->export->events[i]->task_id, e2 + i);
	bh_free(r);
	r = export_page(f->c, 0, 0, t1, NULL, 1000, 0);
	BH_EQ_U64(r->export->n_events, 20);
	BH_CHECK(!r->export->more, "more after the until bound");
	bh_free(r);
	r = export_page(f->c, 0, t1, t2, NULL, 1000, 0);
	BH_EQ_U64(r->export->n_events, 5);
	bh_free(r);
	// by workflow
	r = export_page(f->c, 0, 0, 0, "e1", 1000, 0);
	BH_EQ_U64(r->export->n_events, 20);
	for (size_t i = 0; i < r->export->n_events; i++)
		BH_CHECK(r->export->events[i]->task_id >= e1 &&
		        r->export->events[i]->task_id < e1 + 10,
		    "event of task %" PRIu64 " in workflow e1's export",
		    r->export->events[i]->task_id);
	bh_free(r);
	bh_free(export_page(f->c, 0, 0, 0, NULL, 100001, CPL_EINVAL));
}

// ------------------------------------------------------------ leases, claims

static void
test_heartbeat(void **state)
{
	bh_fx *f = *state;
	uint64_t now = broker_now(f->c);
	Copal__Reply *r = heartbeat(f->c, 0, 5000, 0);
	uint64_t lease = r->heartbeat->lease_id, d1 = r->heartbeat->deadline_us;
	BH_CHECK(lease != 0, "lease id 0");
	BH_CHECK(d1 >= now + 4000000u && d1 <= now + 60000000u,
	    "deadline %" PRIu64 " for a 5 s lease at %" PRIu64, d1, now);
	BH_EQ_U64(r->heartbeat->n_kill_task_ids, 0);
	bh_free(r);
	bh_sleep_ms(10);
	r = heartbeat(f->c, lease, 5000, 0);
	BH_EQ_U64(r->heartbeat->lease_id, lease);
	BH_CHECK(r->heartbeat->deadline_us > d1, "renewal did not move the "
	    "deadline: %" PRIu64 " <= %" PRIu64, r->heartbeat->deadline_us, d1);
	bh_free(r);
	r = heartbeat(f->c, 0, 0, 0); // default ttl
	BH_CHECK(r->heartbeat->lease_id != lease && r->heartbeat->lease_id != 0,
	    "second lease id %" PRIu64, r->heartbeat->lease_id);
	bh_free(r);
	bh_free(heartbeat(f->c, 0, 999, CPL_EINVAL));
	bh_free(heartbeat(f->c, 0, 3600001, CPL_EINVAL));
	r = heartbeat(f->c, 987654, 5000, CPL_ENOTFOUND);
	ERR_HAS(r, "lease");
	bh_free(r);
}

static Copal__Reply *
claim_raw(cpl_client *c, uint64_t lease, uint32_t max, const uint32_t *units,
    const uint32_t *gpus, size_t n, uint32_t remaining, const char *wf,
    int want)
{
	Copal__NodeCapacity nc[8], *ncp[8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		Copal__NodeCapacity x = COPAL__NODE_CAPACITY__INIT;
		nc[i] = x;
		nc[i].free_units = units[i];
		nc[i].free_gpus = gpus ? gpus[i] : 0;
		ncp[i] = &nc[i];
	}
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = max;
	cl.n_nodes = n;
	cl.nodes = ncp;
	cl.remaining_minutes = remaining;
	cl.workflow = (char *)(wf ? wf : "");
	BH_REQ(rq, CLAIM, claim, &cl);
	return BH_CALL(c, &rq, want);
}

static void
test_claim_fit(void **state)
{
	bh_fx *f = *state;
	uint64_t lease = bh_lease(f->c, "claim-test", 60000);
	Copal__Reply *r;
	uint32_t full[2] = { 5040, 5040 };

	// five tasks packed four to a node: 1260 units each
	for (int i = 0; i < 5; i++) {
		Copal__Resources res = COPAL__RESOURCES__INIT;
		Copal__TaskSpec s = bh_spec("pk", "pack", "app");
		res.node_packing_count = 4;
		s.resources = &res;
		create1(f->c, &s);
	}
	r = claim_raw(f->c, lease, 10, full, NULL, 1, 0, "pack", 0);
	BH_EQ_U64(r->claim->n_tasks, 4);
	for (size_t i = 0; i < 4; i++) {
		Copal__ClaimedTask *ct = r->claim->tasks[i];
		BH_EQ_U64(ct->n_node_index, 1);
		BH_EQ_U64(ct->node_index[0], 0);
		BH_EQ_U64(ct->task->status->attempt, 1);
		BH_EQ_U64(ct->task->status->lease_id, lease);
		BH_CHECK(ct->task->spec != NULL, "claimed task without its spec");
		BH_CHECK(ct->app && strcmp(ct->app->name, "app") == 0 &&
		        strcmp(ct->app->executable, "/bin/true") == 0,
		    "claimed task without its app");
	}
	bh_free(r);
	uint32_t u1259 = 1259, u1260 = 1260;
	r = claim_raw(f->c, lease, 10, &u1259, NULL, 1, 0, "pack", 0);
	BH_EQ_U64(r->claim->n_tasks, 0);
	bh_free(r);
	r = claim_raw(f->c, lease, 10, &u1260, NULL, 1, 0, "pack", 0);
	BH_EQ_U64(r->claim->n_tasks, 1);
	bh_free(r);

	// a two-node task needs two whole free nodes
	Copal__Resources res2 = COPAL__RESOURCES__INIT;
	Copal__TaskSpec s2 = bh_spec("two", "multi", "app");
	res2.num_nodes = 2;
	s2.resources = &res2;
	uint64_t two = create1(f->c, &s2);
	uint32_t mixed[2] = { 5040, 2520 };
	r = claim_raw(f->c, lease, 10, mixed, NULL, 2, 0, "multi", 0);
	BH_EQ_U64(r->claim->n_tasks, 0);
	bh_free(r);
	r = claim_raw(f->c, lease, 10, full, NULL, 2, 0, "multi", 0);
	BH_EQ_U64(r->claim->n_tasks, 1);
	BH_EQ_U64(r->claim->tasks[0]->task->id, two);
	BH_EQ_U64(r->claim->tasks[0]->n_node_index, 2);
	BH_CHECK(r->claim->tasks[0]->node_index[0] == 0 &&
	        r->claim->tasks[0]->node_index[1] == 1,
	    "two-node task placed on nodes %u, %u",
	    r->claim->tasks[0]->node_index[0], r->claim->tasks[0]->node_index[1]);
	bh_free(r);

	// wall time and GPUs
	Copal__Resources rw = COPAL__RESOURCES__INIT;
	Copal__TaskSpec sw = bh_spec("long", "wall", "app");
	rw.wall_time_minutes = 30;
	sw.resources = &rw;
	create1(f->c, &sw);
	r = claim_raw(f->c, lease, 10, full, NULL, 1, 10, "wall", 0);
	BH_EQ_U64(r->claim->n_tasks, 0);
	bh_free(r);
	r = claim_raw(f->c, lease, 10, full, NULL, 1, 31, "wall", 0);
	BH_EQ_U64(r->claim->n_tasks, 1);
	bh_free(r);
	Copal__Resources rg = COPAL__RESOURCES__INIT;
	Copal__TaskSpec sg = bh_spec("gpu", "gpu", "app");
	rg.gpus_per_rank = 2;
	sg.resources = &rg;
	create1(f->c, &sg);
	uint32_t g1 = 1, g2 = 2;
	r = claim_raw(f->c, lease, 10, full, &g1, 1, 0, "gpu", 0);
	BH_EQ_U64(r->claim->n_tasks, 0);
	bh_free(r);
	r = claim_raw(f->c, lease, 10, full, &g2, 1, 0, "gpu", 0);
	BH_EQ_U64(r->claim->n_tasks, 1);
	bh_free(r);

	// priority first, then age
	Copal__TaskSpec lo = bh_spec("lo", "prio", "app"),
	                hi = bh_spec("hi", "prio", "app");
	hi.priority = 5;
	uint64_t lo_id = create1(f->c, &lo), hi_id = create1(f->c, &hi);
	r = claim_raw(f->c, lease, 1, full, NULL, 2, 0, "prio", 0);
	BH_EQ_U64(r->claim->n_tasks, 1);
	BH_EQ_U64(r->claim->tasks[0]->task->id, hi_id);
	bh_free(r);
	r = claim_raw(f->c, lease, 1, full, NULL, 2, 0, "prio", 0);
	BH_EQ_U64(r->claim->tasks[0]->task->id, lo_id);
	bh_free(r);

	// refusals
	uint32_t over = 5041;
	bh_free(claim_raw(f->c, lease, 0, full, NULL, 1, 0, NULL, CPL_EINVAL));
	bh_free(claim_raw(f->c, lease, 1, full, NULL, 0, 0, NULL, CPL_EINVAL));
	bh_free(claim_raw(f->c, lease, 1, &over, NULL, 1, 0, NULL, CPL_EINVAL));
	bh_free(claim_raw(f->c, 55555, 1, full, NULL, 1, 0, NULL, CPL_ENOTFOUND));
	BH_EQ_U64(bh_count_state(f->c, CPL_READY), 10);
}

// A report batch answers per report; stale, bad and unknown reports are
// refused one by one while the others apply.
static void
test_report(void **state)
{
	bh_fx *f = *state;
	uint64_t t1 = bh_create(f->c, 2, "r", "rep", "app"), t2 = t1 + 1;
	uint64_t lease = bh_lease(f->c, "report-test", 60000), got[2];
	uint32_t att[2];
	BH_EQ_U64(claim_ids(f->c, lease, "rep", 2, got, att), 2);
	BH_CHECK(got[0] == t1 && got[1] == t2 && att[0] == 1 && att[1] == 1,
	    "claimed %" PRIu64 "/%u, %" PRIu64 "/%u", got[0], att[0], got[1],
	    att[1]);

	struct {
		uint64_t id;
		uint32_t attempt;
		int to;
		int want;
	} b[] = {
		{ t1, 1, CPL_RUNNING, 0 },
		{ t2, 7, CPL_RUNNING, CPL_ESTALE },
		{ t1, 1, CPL_JOB_FINISHED, CPL_EBADSTATE },
		{ 999999, 1, CPL_RUNNING, CPL_ENOTFOUND },
		{ t2, 1, CPL_STATE_NONE, CPL_EINVAL },
		{ t1, 1, CPL_RUN_DONE, 0 },
	};
	size_t n = sizeof(b) / sizeof(b[0]);
	Copal__StateReport sr[6], *srp[6];
	for (size_t i = 0; i < n; i++) {
		Copal__StateReport x = COPAL__STATE_REPORT__INIT;
		sr[i] = x;
		sr[i].task_id = b[i].id;
		sr[i].attempt = b[i].attempt;
		sr[i].to_state = (Copal__TaskState)b[i].to;
		sr[i].message = (char *)"batch";
		srp[i] = &sr[i];
	}
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	rr.lease_id = lease;
	rr.n_reports = n;
	rr.reports = srp;
	BH_REQ(rq, REPORT, report, &rr);
	Copal__Reply *r = BH_OK(f->c, &rq);
	BH_EQ_U64(r->report->n_status, n);
	for (size_t i = 0; i < n; i++)
		BH_CHECK((int)r->report->status[i] == b[i].want,
		    "report %zu (task %" PRIu64 " attempt %u -> %s): %s, "
		    "expected %s",
		    i, b[i].id, b[i].attempt, bh_sname(b[i].to),
		    cpl_errname((int)r->report->status[i]),
		    cpl_errname(b[i].want));
	// the reports renew the lease (60 s) once a third of it has gone:
	// the reply says how long it has, so that the launcher needs no
	// heartbeat meanwhile
	BH_CHECK(r->report->lease_left_ms >= 39000 &&
	    r->report->lease_left_ms <= 60000, "lease_left_ms %u",
	    r->report->lease_left_ms);
	bh_free(r);
	BH_STATE(f->c, t1, CPL_RUN_DONE);
	BH_STATE(f->c, t2, CPL_READY);

	// under another lease: stale
	uint64_t other = bh_lease(f->c, "other", 60000);
	BH_EQ_ERR(bh_report1(f->c, other, t2, 1, CPL_RUNNING, 0, NULL), CPL_ESTALE);
	// finishing releases the task: later reports are stale
	BH_EQ_ERR(bh_report1(f->c, lease, t1, 1, CPL_JOB_FINISHED, 0, "ok"), 0);
	BH_STATE(f->c, t1, CPL_JOB_FINISHED);
	BH_EQ_ERR(bh_report1(f->c, lease, t1, 1, CPL_RUNNING, 0, NULL), CPL_ESTALE);
	// an error without an error handler fails the task
	BH_EQ_ERR(bh_report1(f->c, lease, t2, 1, CPL_RUNNING, 0, NULL), 0);
	BH_EQ_ERR(bh_report1(f->c, lease, t2, 1, CPL_RUN_ERROR, 3, "boom"), 0);
	BH_STATE(f->c, t2, CPL_FAILED);
	HAS_EVENT(f->c, t2, CPL_RUNNING, CPL_RUN_ERROR, "boom");
	HAS_EVENT(f->c, t2, CPL_RUN_ERROR, CPL_FAILED, "error handler");
	Copal__Task *t;
	r = bh_query_id(f->c, t2, false, &t);
	BH_EQ_U64(t->status->return_code, 3);
	BH_EQ_U64(t->status->lease_id, 0);
	bh_free(r);
	// an empty batch
	Copal__ReportRequest empty = COPAL__REPORT_REQUEST__INIT;
	empty.lease_id = lease;
	BH_REQ(rq2, REPORT, report, &empty);
	r = BH_OK(f->c, &rq2);
	BH_EQ_U64(r->report->n_status, 0);
	BH_CHECK(r->report->lease_left_ms > 0, "an empty batch says the "
	    "lease's time too");
	bh_free(r);
	// under a lease the broker does not have: nothing renewed, and the
	// reply says nothing of a lease
	Copal__ReportRequest nolease = COPAL__REPORT_REQUEST__INIT;
	nolease.lease_id = 55555;
	BH_REQ(rq3, REPORT, report, &nolease);
	r = BH_OK(f->c, &rq3);
	BH_EQ_U64(r->report->lease_left_ms, 0);
	bh_free(r);

	// a claimed child gets its finished parent's directory
	Copal__TaskSpec cs = bh_spec("child", "rep-child", "app");
	cs.n_parent_ids = 1;
	cs.parent_ids = &t1;
	uint64_t child = create1(f->c, &cs);
	BH_STATE(f->c, child, CPL_READY);
	r = bh_claim(f->c, lease, 1, 1, 5040, 0, "rep-child");
	BH_EQ_U64(r->claim->n_tasks, 1);
	Copal__ClaimedTask *ct = r->claim->tasks[0];
	BH_EQ_U64(ct->n_parent_dirs, 1);
	Copal__Task *pt;
	Copal__Reply *pr = bh_query_id(f->c, t1, false, &pt);
	char want[128];
	snprintf(want, sizeof(want), "rep/r0_%.8s", cpl_uuid_short(pt->uuid));
	BH_CHECK(strcmp(ct->parent_dirs[0], want) == 0,
	    "parent dir %s, expected %s", ct->parent_dirs[0], want);
	bh_free(pr);
	bh_free(r);
}

// A lease not renewed expires: started tasks time out and the retry
// policy decides; claimed but unstarted tasks go back, the claim counted
// and recorded.
static void
test_lease_expiry(void **state)
{
	bh_fx *f = *state;
	Copal__TaskSpec s[4] = { bh_spec("retry", "exp", "app"),
		bh_spec("noretry", "exp", "app"), bh_spec("limit", "exp", "app"),
		bh_spec("unstarted", "exp", "app") };
	s[0].auto_timeout_retry = true;
	s[0].max_retries = 3;
	s[2].auto_timeout_retry = true;
	s[2].max_retries = 0;
	Copal__Reply *r = create_specs(f->c, s, 4, NULL, NULL, 0, 0, false, 0);
	uint64_t a = r->create->first_id, b = a + 1, c = a + 2, d = a + 3;
	bh_free(r);
	uint64_t lease = bh_lease(f->c, "expiry-test", 1000), got[4];
	BH_EQ_U64(claim_ids(f->c, lease, "exp", 4, got, NULL), 4);
	for (uint64_t id = a; id <= c; id++)
		BH_EQ_ERR(bh_report1(f->c, lease, id, 1, CPL_RUNNING, 0, NULL), 0);

	// the sweeper runs every second; the lease ends one second after
	// the last renewal
	uint64_t end = bh_now_ms() + 6000u * (unsigned)bh_slow();
	while (bh_state(f->c, b) != CPL_FAILED && bh_now_ms() < end)
		bh_sleep_ms(100);
	BH_STATE(f->c, a, CPL_RESTART_READY);
	BH_STATE(f->c, b, CPL_FAILED);
	BH_STATE(f->c, c, CPL_FAILED);
	BH_STATE(f->c, d, CPL_READY);
	HAS_EVENT(f->c, a, CPL_RUNNING, CPL_RUN_TIMEOUT, "lease expired");
	HAS_EVENT(f->c, a, CPL_RUN_TIMEOUT, CPL_RESTART_READY, "retry");
	HAS_EVENT(f->c, b, CPL_RUN_TIMEOUT, CPL_FAILED, "auto_timeout_retry");
	HAS_EVENT(f->c, c, CPL_RESTART_READY, CPL_FAILED, "retry limit");
	Copal__Task *t;
	// claimed, not reported started: returned, the claim counted and
	// on record (issue 13)
	r = bh_query_id(f->c, d, false, &t);
	BH_EQ_U64(t->status->attempt, 1);
	BH_EQ_U64(t->status->lease_id, 0);
	bh_free(r);
	HAS_EVENT(f->c, d, CPL_READY, CPL_READY, "returned: lease expired, "
	    "attempt 1");
	r = bh_query_id(f->c, a, false, &t);
	BH_EQ_U64(t->status->attempt, 1);
	BH_EQ_U64(t->status->lease_id, 0);
	bh_free(r);

	// the lease is gone; its reports are stale
	r = heartbeat(f->c, lease, 1000, -1);
	BH_CHECK(r->status == CPL_ENOTFOUND || r->status == CPL_EEXPIRED,
	    "renewal of an expired lease: %s (%s)", cpl_errname((int)r->status),
	    r->error);
	bh_free(r);
	BH_EQ_ERR(bh_report1(f->c, lease, a, 1, CPL_RUN_DONE, 0, NULL), CPL_ESTALE);

	// a new launcher gets the retry (attempt 2) and the returned task
	// (attempt 2: its first claim counted)
	uint64_t l2 = bh_lease(f->c, "expiry-test-2", 60000);
	uint32_t att[4];
	BH_EQ_U64(claim_ids(f->c, l2, "exp", 4, got, att), 2);
	BH_CHECK(got[0] == a && att[0] == 2 && got[1] == d && att[1] == 2,
	    "reclaimed %" PRIu64 "/%u and %" PRIu64 "/%u", got[0], att[0],
	    got[1], att[1]);
}

// Killing a task a launcher holds queues a notice, delivered once in the
// next heartbeat reply of that lease.
static void
test_kill_notice(void **state)
{
	bh_fx *f = *state;
	uint64_t t1 = bh_create(f->c, 3, "k", "kn", "app"), t2 = t1 + 1, t3 = t1 + 2;
	uint64_t lease = bh_lease(f->c, "notice-test", 60000), got[2];
	BH_EQ_U64(claim_ids(f->c, lease, "kn", 2, got, NULL), 2);
	BH_EQ_ERR(bh_report1(f->c, lease, t1, 1, CPL_RUNNING, 0, NULL), 0);
	Copal__Filter fk = f_ids(&t1, 1);
	Copal__Reply *r = kill_tasks(f->c, &fk, 0);
	BH_EQ_U64(r->kill->killed, 1);
	bh_free(r);
	BH_STATE(f->c, t1, CPL_USER_KILLED);
	r = heartbeat(f->c, lease, 60000, 0);
	BH_EQ_U64(r->heartbeat->n_kill_task_ids, 1);
	BH_EQ_U64(r->heartbeat->kill_task_ids[0], t1);
	bh_free(r);
	r = heartbeat(f->c, lease, 60000, 0);
	BH_EQ_U64(r->heartbeat->n_kill_task_ids, 0);
	bh_free(r);
	BH_EQ_ERR(bh_report1(f->c, lease, t1, 1, CPL_RUN_DONE, 0, NULL), CPL_ESTALE);
	// a task no launcher holds: no notice
	Copal__Filter f3 = f_ids(&t3, 1);
	bh_free(kill_tasks(f->c, &f3, 0));
	r = heartbeat(f->c, lease, 60000, 0);
	BH_EQ_U64(r->heartbeat->n_kill_task_ids, 0);
	bh_free(r);
	// claimed but not started: the launcher still hears of it
	Copal__Filter f2 = f_ids(&t2, 1);
	bh_free(kill_tasks(f->c, &f2, 0));
	r = heartbeat(f->c, lease, 60000, 0);
	BH_EQ_U64(r->heartbeat->n_kill_task_ids, 1);
	BH_EQ_U64(r->heartbeat->kill_task_ids[0], t2);
	bh_free(r);

	// notices also ride on the lease's report and claim replies, once
	uint64_t t4 = bh_create(f->c, 2, "k4-", "kn2", "app"), t5 = t4 + 1;
	uint64_t two[2];
	BH_EQ_U64(claim_ids(f->c, lease, "kn2", 2, two, NULL), 2);
	Copal__Filter f4 = f_ids(&t4, 1);
	bh_free(kill_tasks(f->c, &f4, 0));
	Copal__StateReport sr = COPAL__STATE_REPORT__INIT, *srp = &sr;
	sr.task_id = t5;
	sr.attempt = 1;
	sr.to_state = COPAL__TASK_STATE__STATE_RUNNING;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	rr.lease_id = lease;
	rr.n_reports = 1;
	rr.reports = &srp;
	BH_REQ(rq, REPORT, report, &rr);
	r = BH_OK(f->c, &rq);
	BH_EQ_ERR(r->report->status[0], 0);
	BH_EQ_U64(r->report->n_kill_task_ids, 1);
	BH_EQ_U64(r->report->kill_task_ids[0], t4);
	bh_free(r);
	Copal__Filter f5 = f_ids(&t5, 1);
	bh_free(kill_tasks(f->c, &f5, 0));
	r = bh_claim(f->c, lease, 1, 1, 5040, 0, "kn2");
	BH_EQ_U64(r->claim->n_tasks, 0);
	BH_EQ_U64(r->claim->n_kill_task_ids, 1);
	BH_EQ_U64(r->claim->kill_task_ids[0], t5);
	bh_free(r);
	r = heartbeat(f->c, lease, 60000, 0);
	BH_EQ_U64(r->heartbeat->n_kill_task_ids, 0);
	bh_free(r);
}

// The leases the broker holds now.
static size_t
lease_count(cpl_client *c)
{
	Copal__LeaseListRequest ll = COPAL__LEASE_LIST_REQUEST__INIT;
	BH_REQ(rq, LEASE_LIST, lease_list, &ll);
	Copal__Reply *r = BH_OK(c, &rq);
	size_t n = r->lease_list->n_leases;
	bh_free(r);
	return n;
}

// A launcher's first request: a claim that takes its lease with it.
static void
test_claim_new_lease(void **state)
{
	bh_fx *f = *state;
	bh_create(f->c, 3, "nl", "newlease", "app");
	uint64_t now = broker_now(f->c);

	Copal__HeartbeatRequest nl = COPAL__HEARTBEAT_REQUEST__INIT;
	nl.owner = "launcher nl-test";
	nl.ttl_ms = 5000;
	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, nc2 = nc;
	Copal__NodeCapacity *ncp[2] = { &nc, &nc2 };
	nc.free_units = nc2.free_units = 5040;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.max_tasks = 2;
	cl.n_nodes = 2;
	cl.nodes = ncp;
	cl.workflow = "newlease";
	cl.new_lease = &nl;
	BH_REQ(rq, CLAIM, claim, &cl);
	Copal__Reply *r = BH_OK(f->c, &rq);
	uint64_t lease = r->claim->lease_id, dl = r->claim->deadline_us;
	BH_CHECK(lease != 0, "a claim with new_lease got no lease");
	BH_CHECK(dl >= now + 4000000u && dl <= now + 60000000u,
	    "deadline %" PRIu64 " for a 5 s lease at %" PRIu64, dl, now);
	BH_EQ_U64(r->claim->n_tasks, 2);
	for (size_t i = 0; i < r->claim->n_tasks; i++)
		BH_EQ_U64(r->claim->tasks[i]->task->status->lease_id, lease);
	// the same request again (a resend): the first answer, no new lease
	size_t nleases = lease_count(f->c);
	BH_EQ_U64(nleases, 1);
	Copal__Reply *again = BH_OK(f->c, &rq);
	BH_SAME_REPLY(r, again);
	bh_free(again);
	bh_free(r);
	BH_EQ_U64(lease_count(f->c), 1);
	// the lease is a lease like any other: renewed, claimed and
	// reported under
	bh_free(heartbeat(f->c, lease, 5000, 0));
	r = bh_claim(f->c, lease, 5, 1, 5040, 0, "newlease");
	BH_EQ_U64(r->claim->n_tasks, 1);
	uint64_t third = r->claim->tasks[0]->task->id;
	BH_EQ_U64(r->claim->lease_id, 0); // nothing granted
	bh_free(r);
	BH_EQ_ERR(bh_report1(f->c, lease, third, 1, CPL_RUNNING, 0, NULL), 0);

	// nothing to claim: answered at once, not held for wait_ms
	cl.workflow = "newlease-none";
	cl.wait_ms = 10000;
	uint64_t t0 = cpl_mono_us();
	rq.request_id = 0;
	r = BH_OK(f->c, &rq);
	uint64_t took = cpl_mono_us() - t0;
	BH_EQ_U64(r->claim->n_tasks, 0);
	BH_CHECK(r->claim->lease_id != 0 && r->claim->lease_id != lease,
	    "second new lease %" PRIu64, r->claim->lease_id);
	BH_CHECK(took < 5000000u, "a claim taking a new lease was held "
	    "%" PRIu64 " us", took);
	bh_free(r);
	BH_EQ_U64(lease_count(f->c), 2);

	// bad input: refused whole, no lease granted, nothing claimed
	bh_create(f->c, 1, "nlbad", "newlease-bad", "app");
	cl.workflow = "newlease-bad";
	cl.wait_ms = 0;
	bh_snap before, after;
	bh_snapshot(f->c, &before);
	cl.lease_id = lease; // both a lease and a new one
	rq.request_id = 0;
	r = BH_CALL(f->c, &rq, CPL_EINVAL);
	ERR_HAS(r, "say one or the other");
	bh_free(r);
	cl.lease_id = 0;
	nl.lease_id = lease; // a renewal dressed as a new lease
	rq.request_id = 0;
	r = BH_CALL(f->c, &rq, CPL_EINVAL);
	ERR_HAS(r, "lease_id must be 0");
	bh_free(r);
	nl.lease_id = 0;
	nl.release = true;
	rq.request_id = 0;
	bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
	nl.release = false;
	nl.ttl_ms = 999;
	rq.request_id = 0;
	r = BH_CALL(f->c, &rq, CPL_EINVAL);
	ERR_HAS(r, "ttl_ms");
	bh_free(r);
	nl.ttl_ms = 5000;
	nc.free_units = 5041; // the claim itself is wrong
	rq.request_id = 0;
	bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
	nc.free_units = 5040;
	nl.scheduler_job_id = (char *)
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "0123456789012345678901234567890123456789012345678901234567890123";
	rq.request_id = 0;
	r = BH_CALL(f->c, &rq, CPL_EINVAL);
	ERR_HAS(r, "scheduler_job_id");
	bh_free(r);
	BH_EQ_U64(lease_count(f->c), 2);
	bh_snapshot(f->c, &after);
	BH_SAME_SNAP(&before, &after, "refused claims with a new lease");
}

// A launcher that exits releases its lease: unstarted claims go back to
// the queue unused; started tasks time out and the retry policy decides.
static void
test_lease_release(void **state)
{
	bh_fx *f = *state;
	Copal__TaskSpec s[3] = { bh_spec("retry", "rel", "app"),
		bh_spec("unstarted", "rel", "app"), bh_spec("noretry", "rel", "app") };
	s[0].auto_timeout_retry = true;
	s[0].max_retries = 2;
	Copal__Reply *r = create_specs(f->c, s, 3, NULL, NULL, 0, 0, false, 0);
	uint64_t a = r->create->first_id, b = a + 1, c = a + 2;
	bh_free(r);
	uint64_t lease = bh_lease(f->c, "release-test", 60000), got[3];
	BH_EQ_U64(claim_ids(f->c, lease, "rel", 3, got, NULL), 3);
	BH_EQ_ERR(bh_report1(f->c, lease, a, 1, CPL_RUNNING, 0, NULL), 0);
	BH_EQ_ERR(bh_report1(f->c, lease, c, 1, CPL_RUNNING, 0, NULL), 0);

	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.lease_id = lease;
	hb.release = true;
	BH_REQ(rq, HEARTBEAT, heartbeat, &hb);
	r = BH_OK(f->c, &rq);
	BH_EQ_U64(r->heartbeat->lease_id, lease);
	bh_free(r);
	BH_STATE(f->c, a, CPL_RESTART_READY);
	BH_STATE(f->c, b, CPL_READY);
	BH_STATE(f->c, c, CPL_FAILED);
	Copal__Task *t;
	r = bh_query_id(f->c, b, false, &t);
	BH_EQ_U64(t->status->attempt, 1);
	BH_EQ_U64(t->status->lease_id, 0);
	bh_free(r);
	HAS_EVENT(f->c, b, CPL_READY, CPL_READY, "returned: lease released, "
	    "attempt 1");
	// the lease is gone
	bh_free(heartbeat(f->c, lease, 60000, CPL_ENOTFOUND));
	BH_EQ_ERR(bh_report1(f->c, lease, a, 1, CPL_RUN_DONE, 0, NULL), CPL_ESTALE);
	rq.request_id = 0; // a new request, not a resend
	bh_free(BH_CALL(f->c, &rq, CPL_ENOTFOUND)); // released twice
	hb.lease_id = 0;
	rq.request_id = 0;
	bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
}

static void
test_workflow_list(void **state)
{
	bh_fx *f = *state;
	bh_create(f->c, 3, "a", "wf-a", "app");
	uint64_t b = bh_create(f->c, 2, "b", "wf-b", "app");
	bh_create(f->c, 1, "n", "", "app");
	Copal__Filter fb = f_ids(&b, 1);
	bh_free(delete_tasks(f->c, &fb, 0));
	Copal__WorkflowListRequest wl = COPAL__WORKFLOW_LIST_REQUEST__INIT;
	BH_REQ(rq, WORKFLOW_LIST, workflow_list, &wl);
	Copal__Reply *r = BH_OK(f->c, &rq);
	uint64_t na = 0, nb = 0, sum = 0;
	for (size_t i = 0; i < r->workflow_list->n_workflows; i++) {
		Copal__WorkflowCount *w = r->workflow_list->workflows[i];
		if (strcmp(w->name, "wf-a") == 0)
			na = w->tasks;
		if (strcmp(w->name, "wf-b") == 0)
			nb = w->tasks;
		sum += w->tasks;
		if (i > 0)
			BH_CHECK(strcmp(r->workflow_list->workflows[i - 1]->name,
			             w->name) < 0,
			    "workflows not in name order: %s before %s",
			    r->workflow_list->workflows[i - 1]->name, w->name);
	}
	bh_free(r);
	BH_EQ_U64(na, 3);
	BH_EQ_U64(nb, 1);
	BH_CHECK(sum == 4 || sum == 5, "workflow counts add up to %" PRIu64
	    " for 5 tasks (4 named)", sum);
}

// ------------------------------------------------------------ batch jobs

static Copal__Reply *
batch_add(cpl_client *c, const char *sched, const char *mode, uint32_t nodes,
    uint32_t minutes, int want)
{
	Copal__BatchJob j = COPAL__BATCH_JOB__INIT;
	j.scheduler = (char *)sched;
	j.job_mode = (char *)mode;
	j.nodes = nodes;
	j.wall_minutes = minutes;
	j.project = (char *)"chem";
	j.queue = (char *)"debug";
	Copal__BatchJobAddRequest a = COPAL__BATCH_JOB_ADD_REQUEST__INIT;
	a.job = &j;
	BH_REQ(rq, BATCH_ADD, batch_add, &a);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
batch_update(cpl_client *c, uint64_t id, Copal__BatchJobState st,
    const char *sid, int want)
{
	Copal__BatchJobUpdateRequest u = COPAL__BATCH_JOB_UPDATE_REQUEST__INIT;
	u.id = id;
	u.state = st;
	u.scheduler_id = (char *)(sid ? sid : "");
	BH_REQ(rq, BATCH_UPDATE, batch_update, &u);
	return BH_CALL(c, &rq, want);
}

static void
test_batch_jobs(void **state)
{
	bh_fx *f = *state;
	Copal__Reply *r = batch_add(f->c, "slurm", "serial", 2, 30, 0);
	uint64_t id = r->batch_add->job->id;
	BH_EQ_U64(id, 1);
	BH_CHECK(r->batch_add->job->state == COPAL__BATCH_JOB_STATE__BJ_SUBMITTING,
	    "new job state %d", r->batch_add->job->state);
	BH_CHECK(r->batch_add->job->submitted_us > 0, "no submit time");
	bh_free(r);
	// refused, and nothing recorded
	bh_free(batch_add(f->c, "lsf", "serial", 1, 30, CPL_EINVAL));
	bh_free(batch_add(f->c, "slurm", "both", 1, 30, CPL_EINVAL));
	bh_free(batch_add(f->c, "slurm", "mpi", 0, 30, CPL_EINVAL));
	bh_free(batch_add(f->c, "slurm", "mpi", 1, 0, CPL_EINVAL));
	bh_free(batch_add(f->c, "slurm", "mpi", 100000, 5, CPL_EINVAL));
	r = batch_update(f->c, id, COPAL__BATCH_JOB_STATE__BJ_QUEUED, "777", 0);
	BH_CHECK(strcmp(r->batch_update->job->scheduler_id, "777") == 0,
	    "scheduler id %s", r->batch_update->job->scheduler_id);
	bh_free(r);
	bh_free(batch_update(f->c, id, COPAL__BATCH_JOB_STATE__BJ_FINISHED,
	    NULL, 0));
	r = batch_update(f->c, id, COPAL__BATCH_JOB_STATE__BJ_RUNNING, NULL,
	    CPL_EBADSTATE);
	BH_CHECK(strstr(r->error, "FINISHED") && strstr(r->error, "RUNNING"),
	    "error says the move: %s", r->error);
	bh_free(r);
	bh_free(batch_update(f->c, 42, COPAL__BATCH_JOB_STATE__BJ_QUEUED, NULL,
	    CPL_ENOTFOUND));
	// an enum value outside the schema is refused before any handler
	Copal__BatchJobUpdateRequest u = COPAL__BATCH_JOB_UPDATE_REQUEST__INIT;
	u.id = id;
	u.state = (Copal__BatchJobState)99;
	BH_REQ(bad, BATCH_UPDATE, batch_update, &u);
	Copal__Reply *br = NULL;
	int rv = cpl_client_call(f->c, &bad, &br);
	BH_CHECK(rv != 0 || (br && br->status != 0), "state 99 accepted");
	if (br)
		bh_free(br);
	bh_free(batch_add(f->c, "local", "mpi", 1, 5, 0));
	// list: all, then by state
	Copal__BatchJobListRequest l = COPAL__BATCH_JOB_LIST_REQUEST__INIT;
	BH_REQ(lq, BATCH_LIST, batch_list, &l);
	r = BH_OK(f->c, &lq);
	BH_EQ_U64(r->batch_list->n_jobs, 2);
	BH_EQ_U64(r->batch_list->jobs[1]->id, 2);
	bh_free(r);
	Copal__BatchJobState fin = COPAL__BATCH_JOB_STATE__BJ_FINISHED;
	l.states = &fin;
	l.n_states = 1;
	BH_REQ(lq2, BATCH_LIST, batch_list, &l);
	r = BH_OK(f->c, &lq2);
	BH_EQ_U64(r->batch_list->n_jobs, 1);
	BH_EQ_U64(r->batch_list->jobs[0]->id, 1);
	bh_free(r);
}

static void
test_backlog(void **state)
{
	bh_fx *f = *state;
	bh_create(f->c, 10, "t", "wf", "app"); // 10 single-node tasks
	Copal__QueueLimit q = COPAL__QUEUE_LIMIT__INIT, *qp = &q;
	q.max_nodes = 4;
	q.max_minutes = 60;
	Copal__BacklogRequest b = COPAL__BACKLOG_REQUEST__INIT;
	b.queues = &qp;
	b.n_queues = 1;
	b.max_unfit_ids = 5;
	BH_REQ(rq, BACKLOG, backlog, &b);
	Copal__Reply *r = BH_OK(f->c, &rq);
	BH_EQ_U64(r->backlog->tasks, 10);
	BH_EQ_U64(r->backlog->node_units, 10ull * CPL_NODE_UNITS);
	BH_EQ_U64(r->backlog->unfit, 0);
	bh_free(r);
	// a queue that gives no node at all, too many queues, too many ids
	q.max_nodes = 0;
	bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
	q.max_nodes = 4;
	b.max_unfit_ids = 100000;
	bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
	b.max_unfit_ids = 5;
	Copal__QueueLimit *many[65];
	for (int i = 0; i < 65; i++)
		many[i] = &q;
	b.queues = many;
	b.n_queues = 65;
	bh_free(BH_CALL(f->c, &rq, CPL_EINVAL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ping, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_jobs, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_backlog, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_apps, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_create, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_query_count, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_filter_ids_and_fields, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_modify, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_kill, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_delete, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_add_dependency, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_history, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_export, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_claim_fit, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_report, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_kill_notice, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_lease_release, bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_claim_new_lease, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_workflow_list, bh_fx_setup, bh_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
