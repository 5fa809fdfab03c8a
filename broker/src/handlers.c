// Request handlers: one function per request body, listed in one table.
// Mutating handlers run inside the writer's nested transaction: returning
// an error undoes everything the handler did. Read handlers run in a short
// read snapshot.
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "broker.h"
#include "copal/version.h"
#include "copal/conf.h"

#define DEFAULT_PAGE 100u
#define MAX_PAGE 10000u
#define MAX_EXPORT 100000u
#define MAX_CLAIM 100000u
#define MIN_TTL_MS 1000u
#define MAX_TTL_MS 3600000u
#define DEFAULT_TTL_MS 30000u

#define FAIL(h, rv, ...)                                             \
	do {                                                         \
		snprintf((h)->err, sizeof((h)->err), __VA_ARGS__);   \
		return (rv);                                         \
	} while (0)

#define NEW(h, T, init)                                  \
	({                                               \
		T *p_ = arena_alloc((h)->a, sizeof(T));  \
		if (p_)                                  \
			*p_ = (T)init;                   \
		p_;                                      \
	})

static void
free_spec(void *p)
{
	copal__task_spec__free_unpacked(p, NULL);
}

static void
free_app(void *p)
{
	copal__app__free_unpacked(p, NULL);
}

// ---------------------------------------------------------------- helpers

// The run directory of a task under data/ (as the launcher makes it).
static char *
workdir_of(hctx *h, const Copal__TaskSpec *sp, const uint8_t uuid[16])
{
	char u[37], buf[1024];
	cpl_uuid_format(uuid, u);
	if (cpl_workdir(sp->workflow, sp->name, u, sp->workdir, buf,
	        sizeof(buf)) != 0)
		return arena_strdup(h->a, "");
	return arena_strdup(h->a, buf);
}

// A task on the wire. With a spec, the spec (owned by the caller until
// the arena is freed) is referenced, not copied.
static Copal__Task *
task_wire(hctx *h, const cpl_task *t, Copal__TaskSpec *spec)
{
	Copal__Task *w = NEW(h, Copal__Task, COPAL__TASK__INIT);
	Copal__TaskStatus *st = NEW(h, Copal__TaskStatus, COPAL__TASK_STATUS__INIT);
	char *u = arena_alloc(h->a, 37);
	if (w == NULL || st == NULL || u == NULL)
		return NULL;
	cpl_uuid_format(t->uuid, u);
	w->id = t->id;
	w->uuid = u;
	w->spec = spec;
	st->state = (Copal__TaskState)t->state;
	st->attempt = t->attempt;
	st->lease_id = t->lease;
	st->return_code = t->return_code;
	st->pending_parents = t->pending_parents;
	st->created_us = t->created_us;
	st->changed_us = t->changed_us;
	w->status = st;
	return w;
}

// Reads a task with its spec; the spec lives until the arena is freed.
static int
task_get_owned(hctx *h, cpl_txn *txn, uint64_t id, cpl_task *t)
{
	int rv = cpl_task_get(txn, id, CPL_GET_SPEC, t);
	if (rv)
		return rv;
	if (arena_defer(h->a, free_spec, t->spec) != 0)
		return CPL_ENOMEM;
	return 0;
}

static int
ids_cb(const cpl_task *t, void *arg)
{
	return cpl_ids_push(arg, t->id);
}

// Translates a wire filter. Returns CPL_EINVAL for an empty filter unless
// `all` is set or empty_ok.
static int
filter_from_wire(hctx *h, const Copal__Filter *wf, cpl_filter *f,
    bool empty_ok)
{
	memset(f, 0, sizeof(*f));
	if (wf == NULL) {
		if (empty_ok)
			return 0;
		FAIL(h, CPL_EINVAL, "no filter: say which tasks (or all)");
	}
	for (size_t i = 0; i < wf->n_states; i++) {
		if ((int)wf->states[i] <= 0 || (int)wf->states[i] >= CPL_NSTATES)
			FAIL(h, CPL_EINVAL, "state %d out of range", wf->states[i]);
		f->states |= 1u << wf->states[i];
	}
	if (wf->workflow && wf->workflow[0])
		f->workflow = wf->workflow;
	if (wf->application && wf->application[0])
		f->application = wf->application;
	if (wf->name && wf->name[0])
		f->name = wf->name;
	if (wf->uuid_prefix && wf->uuid_prefix[0])
		f->uuid_prefix = wf->uuid_prefix;
	f->min_nodes = wf->min_nodes;
	f->max_nodes = wf->max_nodes;
	bool empty = !f->states && !f->workflow && !f->application &&
	    !f->name && !f->uuid_prefix && !f->min_nodes && !f->max_nodes &&
	    wf->n_ids == 0;
	if (empty && !wf->all && !empty_ok)
		FAIL(h, CPL_EINVAL,
		    "the filter selects every task: say so explicitly (all)");
	return 0;
}

// Whether task id matches every criterion of f (for explicit id lists;
// cpl_query applies the same criteria through the indices).
static int
task_matches(hctx *h, cpl_txn *txn, uint64_t id, const cpl_filter *f,
    bool *ok)
{
	cpl_task t;
	char u[37];
	int rv = task_get_owned(h, txn, id, &t);
	*ok = false;
	if (rv)
		return rv;
	const Copal__TaskSpec *sp = t.spec;
	uint32_t nodes = sp->resources && sp->resources->num_nodes ?
	    sp->resources->num_nodes : 1;
	cpl_uuid_format(t.uuid, u);
	if (f->states && !(f->states & (1u << t.state)))
		return 0;
	if (f->workflow && strcmp(sp->workflow, f->workflow) != 0)
		return 0;
	if (f->application && strcmp(sp->application, f->application) != 0)
		return 0;
	if (f->name && strcmp(sp->name, f->name) != 0)
		return 0;
	if (f->min_nodes && nodes < f->min_nodes)
		return 0;
	if (f->max_nodes && nodes > f->max_nodes)
		return 0;
	if (f->uuid_prefix) {
		// compare hex digits, dashes ignored on both sides
		const char *p = f->uuid_prefix, *q = u;
		while (*p) {
			if (*p == '-') {
				p++;
				continue;
			}
			while (*q == '-')
				q++;
			if (*q == '\0' || tolower((unsigned char)*p) != *q)
				return 0;
			p++;
			q++;
		}
	}
	*ok = true;
	return 0;
}

// The ids a wire filter selects, in id order.
static int
select_ids(hctx *h, cpl_txn *txn, const Copal__Filter *wf, cpl_ids *out)
{
	cpl_filter f;
	int rv;
	if ((rv = filter_from_wire(h, wf, &f, false)) != 0)
		return rv;
	if (wf->n_ids) {
		// explicit ids: each must exist and match the rest
		for (size_t i = 0; i < wf->n_ids; i++) {
			bool ok;
			if ((rv = task_matches(h, txn, wf->ids[i], &f, &ok)) != 0)
				FAIL(h, rv, "task id %" PRIu64 ": %s", wf->ids[i],
				    cpl_strerror(rv));
			if (ok && (rv = cpl_ids_push(out, wf->ids[i])) != 0)
				return rv;
		}
		return 0;
	}
	return cpl_query(txn, &f, 0, 0, 0, ids_cb, out, NULL);
}

static int
u32_parse(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	if (s == NULL || *s == '\0' || *s == '-')
		return CPL_EINVAL;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return CPL_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int
i32_parse(const char *s, int32_t *out)
{
	char *end;
	errno = 0;
	if (s == NULL || *s == '\0')
		return CPL_EINVAL;
	long v = strtol(s, &end, 10);
	if (errno || *end || v > INT32_MAX || v < INT32_MIN)
		return CPL_EINVAL;
	*out = (int32_t)v;
	return 0;
}

static int
bool_parse(const char *s, protobuf_c_boolean *out)
{
	if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes"))
		*out = 1;
	else if (!strcasecmp(s, "false") || !strcmp(s, "0") ||
	    !strcasecmp(s, "no"))
		*out = 0;
	else
		return CPL_EINVAL;
	return 0;
}

// ---------------------------------------------------------------- create

static int
h_create(hctx *h, cpl_txn *txn)
{
	const Copal__CreateTasksRequest *r = h->req->create;
	Copal__CreateTasksReply *rep =
	    NEW(h, Copal__CreateTasksReply, COPAL__CREATE_TASKS_REPLY__INIT);
	int rv = 0;
	if (rep == NULL)
		return CPL_ENOMEM;
	if (r->n_tasks == 0)
		FAIL(h, CPL_EINVAL, "no tasks to create");
	if (r->n_local_parent_child != r->n_local_parent_parent)
		FAIL(h, CPL_EINVAL, "local dependency lists differ in length");
	for (size_t i = 0; i < r->n_local_parent_child; i++) {
		uint32_t c = r->local_parent_child[i], p = r->local_parent_parent[i];
		if (c >= r->n_tasks || p >= c)
			FAIL(h, CPL_EINVAL,
			    "local dependency %zu: parent %u must come before "
			    "child %u in the batch", i, p, c);
	}
	uint64_t *ids = arena_alloc(h->a, r->n_tasks * sizeof(uint64_t));
	char **uuids = r->want_uuids ?
	    arena_alloc(h->a, r->n_tasks * sizeof(char *)) : NULL;
	if (ids == NULL || (r->want_uuids && uuids == NULL))
		return CPL_ENOMEM;
	// local dependencies sorted by child: a count per task and one pass
	size_t *nloc = arena_alloc(h->a, r->n_tasks * sizeof(size_t));
	if (nloc == NULL)
		return CPL_ENOMEM;
	for (size_t i = 0; i < r->n_local_parent_child; i++)
		nloc[r->local_parent_child[i]]++;
	for (size_t i = 0; i < r->n_tasks; i++) {
		Copal__TaskSpec sp = *r->tasks[i];
		uint8_t uuid[16];
		if (nloc[i]) {
			size_t n = sp.n_parent_ids + nloc[i], k = sp.n_parent_ids;
			uint64_t *pids = arena_alloc(h->a, n * sizeof(uint64_t));
			if (pids == NULL)
				return CPL_ENOMEM;
			if (k)
				memcpy(pids, sp.parent_ids, k * sizeof(uint64_t));
			for (size_t j = 0; j < r->n_local_parent_child; j++)
				if (r->local_parent_child[j] == i)
					pids[k++] = ids[r->local_parent_parent[j]];
			sp.parent_ids = pids;
			sp.n_parent_ids = n;
		}
		if ((rv = cpl_task_create(txn, &sp, &ids[i], uuid)) != 0) {
			if (rv != CPL_ENOTFOUND)
				FAIL(h, rv, "task %zu (%s): %s", i,
				    sp.name ? sp.name : "", cpl_strerror(rv));
			// say which: the app or a parent
			Copal__App *app = NULL;
			if (cpl_app_get(txn, sp.application, &app) != 0)
				FAIL(h, rv, "task %zu (%s): no app named %s", i,
				    sp.name ? sp.name : "", sp.application);
			copal__app__free_unpacked(app, NULL);
			for (size_t j = 0; j < sp.n_parent_ids; j++) {
				cpl_task pt;
				if (cpl_task_get(txn, sp.parent_ids[j], 0, &pt) != 0)
					FAIL(h, rv, "task %zu (%s): no parent task "
					    "with id %" PRIu64, i,
					    sp.name ? sp.name : "", sp.parent_ids[j]);
			}
			FAIL(h, rv, "task %zu (%s): %s", i, sp.name ? sp.name : "",
			    cpl_strerror(rv));
		}
		if (uuids) {
			if ((uuids[i] = arena_alloc(h->a, 37)) == NULL)
				return CPL_ENOMEM;
			cpl_uuid_format(uuid, uuids[i]);
		}
	}
	rep->first_id = ids[0];
	rep->count = (uint32_t)r->n_tasks;
	rep->n_uuids = uuids ? r->n_tasks : 0;
	rep->uuids = uuids;
	h->rep->body_case = COPAL__REPLY__BODY_CREATE;
	h->rep->create = rep;
	return 0;
}

struct notices {
	hctx *h;
	cpl_ids ids;
};

static int
notice_cb(uint64_t id, void *arg)
{
	return cpl_ids_push(&((struct notices *)arg)->ids, id);
}

// Takes the kill notices queued for a lease into an arena array.
static int
take_notices(hctx *h, cpl_txn *txn, uint64_t lease, uint64_t **out,
    size_t *n)
{
	struct notices nt = { h, { NULL, 0, 0 } };
	int rv = cpl_lease_take_notices(txn, lease, notice_cb, &nt);
	if (rv == 0 && nt.ids.n) {
		*out = arena_alloc(h->a, nt.ids.n * sizeof(uint64_t));
		if (*out == NULL)
			rv = CPL_ENOMEM;
		else {
			memcpy(*out, nt.ids.v, nt.ids.n * sizeof(uint64_t));
			*n = nt.ids.n;
		}
	}
	free(nt.ids.v);
	return rv;
}

// ---------------------------------------------------------------- claim

struct claimed {
	uint64_t id;
	uint32_t nnodes;
	uint32_t *nodes;
};

struct claim_ctx {
	hctx *h;
	struct claimed *v;
	size_t n;
};

static int
claim_cb(const cpl_task *t, const uint32_t *nodes, size_t n, void *arg)
{
	struct claim_ctx *c = arg;
	struct claimed *cl = &c->v[c->n++];
	cl->id = t->id;
	cl->nnodes = (uint32_t)n;
	cl->nodes = arena_alloc(c->h->a, n * sizeof(uint32_t));
	if (cl->nodes == NULL)
		return CPL_ENOMEM;
	memcpy(cl->nodes, nodes, n * sizeof(uint32_t));
	return 0;
}

static int
h_claim(hctx *h, cpl_txn *txn)
{
	const Copal__ClaimRequest *r = h->req->claim;
	cpl_capacity cap;
	size_t n = 0;
	int rv;
	if (r->max_tasks == 0 || r->max_tasks > MAX_CLAIM)
		FAIL(h, CPL_EINVAL, "max_tasks must be 1..%u", MAX_CLAIM);
	if (r->n_nodes == 0)
		FAIL(h, CPL_EINVAL, "no node capacity offered");
	if (r->n_nodes > 65535)
		FAIL(h, CPL_EINVAL, "more than 65535 nodes");
	cpl_node_cap *nodes = arena_alloc(h->a, r->n_nodes * sizeof(*nodes));
	struct claim_ctx cc = { h, NULL, 0 };
	cc.v = arena_alloc(h->a, r->max_tasks * sizeof(struct claimed));
	if (nodes == NULL || cc.v == NULL)
		return CPL_ENOMEM;
	for (size_t i = 0; i < r->n_nodes; i++) {
		if (r->nodes[i]->free_units > CPL_NODE_UNITS)
			FAIL(h, CPL_EINVAL, "node %zu: free_units above %u", i,
			    CPL_NODE_UNITS);
		nodes[i].free_units = r->nodes[i]->free_units;
		nodes[i].free_gpus = r->nodes[i]->free_gpus;
	}
	memset(&cap, 0, sizeof(cap));
	cap.max_tasks = r->max_tasks;
	cap.nodes = nodes;
	cap.nnodes = r->n_nodes;
	cap.remaining_minutes = r->remaining_minutes;
	cap.workflow = r->workflow && r->workflow[0] ? r->workflow : NULL;
	if ((rv = cpl_claim(txn, r->lease_id, &cap, claim_cb, &cc, &n)) != 0)
		FAIL(h, rv, "claim under lease %" PRIu64 ": %s", r->lease_id,
		    cpl_strerror(rv));
	Copal__ClaimReply *rep = NEW(h, Copal__ClaimReply, COPAL__CLAIM_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->tasks = arena_alloc(h->a, (n ? n : 1) * sizeof(Copal__ClaimedTask *));
	if (rep->tasks == NULL)
		return CPL_ENOMEM;
	// one app record per name in this reply
	Copal__App *last_app = NULL;
	for (size_t i = 0; i < n; i++) {
		cpl_task t;
		Copal__ClaimedTask *ct =
		    NEW(h, Copal__ClaimedTask, COPAL__CLAIMED_TASK__INIT);
		if (ct == NULL)
			return CPL_ENOMEM;
		if ((rv = task_get_owned(h, txn, cc.v[i].id, &t)) != 0)
			return rv;
		if ((ct->task = task_wire(h, &t, t.spec)) == NULL)
			return CPL_ENOMEM;
		if (last_app == NULL ||
		    strcmp(last_app->name, t.spec->application) != 0) {
			if ((rv = cpl_app_get(txn, t.spec->application,
			         &last_app)) != 0)
				FAIL(h, rv, "app %s of task %" PRIu64 ": %s",
				    t.spec->application, t.id, cpl_strerror(rv));
			if (arena_defer(h->a, free_app, last_app) != 0)
				return CPL_ENOMEM;
		}
		ct->app = last_app;
		ct->n_node_index = cc.v[i].nnodes;
		ct->node_index = cc.v[i].nodes;
		if (t.spec->n_parent_ids) {
			ct->parent_dirs = arena_alloc(h->a,
			    t.spec->n_parent_ids * sizeof(char *));
			if (ct->parent_dirs == NULL)
				return CPL_ENOMEM;
			for (size_t j = 0; j < t.spec->n_parent_ids; j++) {
				cpl_task pt;
				if ((rv = task_get_owned(h, txn,
				         t.spec->parent_ids[j], &pt)) != 0)
					continue; // a parent deleted since
				ct->parent_dirs[ct->n_parent_dirs++] =
				    workdir_of(h, pt.spec, pt.uuid);
			}
		}
		rep->tasks[rep->n_tasks++] = ct;
	}
	if ((rv = take_notices(h, txn, r->lease_id, &rep->kill_task_ids,
	         &rep->n_kill_task_ids)) != 0)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_CLAIM;
	h->rep->claim = rep;
	return 0;
}

// ---------------------------------------------------------------- report

static int
h_report(hctx *h, cpl_txn *txn)
{
	const Copal__ReportRequest *r = h->req->report;
	Copal__ReportReply *rep = NEW(h, Copal__ReportReply, COPAL__REPORT_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->status = arena_alloc(h->a, (r->n_reports ? r->n_reports : 1) *
	    sizeof(uint32_t));
	if (rep->status == NULL)
		return CPL_ENOMEM;
	rep->n_status = r->n_reports;
	for (size_t i = 0; i < r->n_reports; i++) {
		const Copal__StateReport *s = r->reports[i];
		cpl_report cr = { s->task_id, r->lease_id, s->attempt,
			(cpl_state)s->to_state, s->return_code, s->message,
			s->node };
		int rv = cpl_task_report(txn, &cr);
		if (cpl_txn_error(txn))
			return cpl_txn_error(txn);
		rep->status[i] = (uint32_t)rv; // refusals are per report
	}
	// kill notices ride on the reply: a busy launcher hears of a kill
	// at its next report, not its next heartbeat
	int rv = take_notices(h, txn, r->lease_id, &rep->kill_task_ids,
	    &rep->n_kill_task_ids);
	if (rv)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_REPORT;
	h->rep->report = rep;
	return 0;
}

// ---------------------------------------------------------------- heartbeat

static int
h_heartbeat(hctx *h, cpl_txn *txn)
{
	const Copal__HeartbeatRequest *r = h->req->heartbeat;
	uint32_t ttl = r->ttl_ms ? r->ttl_ms : DEFAULT_TTL_MS;
	uint64_t lease = r->lease_id, deadline = 0;
	int rv;
	if (ttl < MIN_TTL_MS || ttl > MAX_TTL_MS)
		FAIL(h, CPL_EINVAL, "ttl_ms must be %u..%u", MIN_TTL_MS,
		    MAX_TTL_MS);
	if (r->release) {
		if (lease == 0)
			FAIL(h, CPL_EINVAL, "release of lease 0");
		if ((rv = cpl_lease_release(txn, lease)) != 0)
			FAIL(h, rv, "lease %" PRIu64 ": %s", lease,
			    cpl_strerror(rv));
		LOG(LOG_INFO, "lease", "lease %" PRIu64 " released by %s", lease,
		    r->owner ? r->owner : "");
		Copal__HeartbeatReply *rel =
		    NEW(h, Copal__HeartbeatReply, COPAL__HEARTBEAT_REPLY__INIT);
		if (rel == NULL)
			return CPL_ENOMEM;
		rel->lease_id = lease;
		h->rep->body_case = COPAL__REPLY__BODY_HEARTBEAT;
		h->rep->heartbeat = rel;
		return 0;
	}
	if (lease == 0) {
		if ((rv = cpl_lease_grant(txn, r->owner, ttl, &lease)) != 0)
			return rv;
		deadline = cpl_txn_now(txn) + (uint64_t)ttl * 1000u;
		LOG(LOG_INFO, "lease", "granted lease %" PRIu64 " to %s", lease,
		    r->owner ? r->owner : "");
	} else if ((rv = cpl_lease_renew(txn, lease, ttl, &deadline)) != 0) {
		FAIL(h, rv, "lease %" PRIu64 ": %s: stop its tasks and ask for "
		    "a new lease", lease, cpl_strerror(rv));
	}
	Copal__HeartbeatReply *rep =
	    NEW(h, Copal__HeartbeatReply, COPAL__HEARTBEAT_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	if ((rv = take_notices(h, txn, lease, &rep->kill_task_ids,
	         &rep->n_kill_task_ids)) != 0)
		return rv;
	rep->lease_id = lease;
	rep->deadline_us = deadline;
	h->rep->body_case = COPAL__REPLY__BODY_HEARTBEAT;
	h->rep->heartbeat = rep;
	return 0;
}

// ---------------------------------------------------------------- query

struct query_ctx {
	hctx *h;
	cpl_txn *txn;
	Copal__QueryReply *rep;
	bool with_spec;
};

static int
query_cb(const cpl_task *t, void *arg)
{
	struct query_ctx *q = arg;
	cpl_task full;
	Copal__Task *w;
	int rv;
	if (q->with_spec) {
		if ((rv = task_get_owned(q->h, q->txn, t->id, &full)) != 0)
			return rv;
		w = task_wire(q->h, &full, full.spec);
	} else {
		w = task_wire(q->h, t, NULL);
	}
	if (w == NULL)
		return CPL_ENOMEM;
	q->rep->tasks[q->rep->n_tasks++] = w;
	return 0;
}

static int
h_query(hctx *h, cpl_txn *txn)
{
	const Copal__QueryRequest *r = h->req->query;
	cpl_filter f;
	bool more = false;
	int rv;
	uint32_t limit = r->limit ? r->limit : DEFAULT_PAGE;
	if (limit > MAX_PAGE)
		FAIL(h, CPL_EINVAL, "limit above %u per page", MAX_PAGE);
	if ((rv = filter_from_wire(h, r->filter, &f, true)) != 0)
		return rv;
	Copal__QueryReply *rep = NEW(h, Copal__QueryReply, COPAL__QUERY_REPLY__INIT);
	if (rep == NULL ||
	    (rep->tasks = arena_alloc(h->a, limit * sizeof(Copal__Task *))) ==
	        NULL)
		return CPL_ENOMEM;
	struct query_ctx q = { h, txn, rep, r->with_spec };
	if (r->filter && r->filter->n_ids) {
		for (size_t i = 0; i < r->filter->n_ids; i++) {
			cpl_task t;
			uint64_t id = r->filter->ids[i];
			if (id <= r->after_id)
				continue;
			if (rep->n_tasks == limit) {
				more = true;
				break;
			}
			bool ok;
			rv = task_matches(h, txn, id, &f, &ok);
			if (rv == CPL_ENOTFOUND || (rv == 0 && !ok))
				continue;
			if (rv || (rv = cpl_task_get(txn, id, 0, &t)) != 0 ||
			    (rv = query_cb(&t, &q)) != 0)
				return rv;
		}
	} else if ((rv = cpl_query(txn, &f, r->after_id, limit, 0, query_cb, &q,
	                &more)) != 0) {
		return rv;
	}
	rep->more = more;
	h->rep->body_case = COPAL__REPLY__BODY_QUERY;
	h->rep->query = rep;
	return 0;
}

struct count_ctx {
	uint64_t *by;
	uint64_t total;
};

static int
count_cb(const cpl_task *t, void *arg)
{
	struct count_ctx *c = arg;
	c->by[t->state]++;
	c->total++;
	return 0;
}

static int
h_count(hctx *h, cpl_txn *txn)
{
	cpl_filter f;
	int rv;
	if ((rv = filter_from_wire(h, h->req->count->filter, &f, true)) != 0)
		return rv;
	Copal__CountReply *rep = NEW(h, Copal__CountReply, COPAL__COUNT_REPLY__INIT);
	uint64_t *by = arena_alloc(h->a, CPL_NSTATES * sizeof(uint64_t));
	if (rep == NULL || by == NULL)
		return CPL_ENOMEM;
	const Copal__Filter *wf = h->req->count->filter;
	bool plain = !f.workflow && !f.application && !f.name &&
	    !f.uuid_prefix && !f.min_nodes && !f.max_nodes &&
	    (wf == NULL || wf->n_ids == 0);
	if (plain) {
		// O(1): the stored counters
		uint64_t all[CPL_NSTATES];
		if ((rv = cpl_count_states(txn, all)) != 0)
			return rv;
		for (int s = 1; s < CPL_NSTATES; s++) {
			if (f.states && !(f.states & (1u << s)))
				continue;
			by[s] = all[s];
			rep->total += all[s];
		}
	} else {
		struct count_ctx c = { by, 0 };
		cpl_ids sel = { NULL, 0, 0 };
		if (wf && wf->n_ids) {
			rv = select_ids(h, txn, wf, &sel);
			for (size_t i = 0; rv == 0 && i < sel.n; i++) {
				cpl_task t;
				if ((rv = cpl_task_get(txn, sel.v[i], 0, &t)) == 0)
					rv = count_cb(&t, &c);
			}
			free(sel.v);
		} else {
			rv = cpl_query(txn, &f, 0, 0, 0, count_cb, &c, NULL);
		}
		if (rv)
			return rv;
		rep->total = c.total;
	}
	rep->by_state = by;
	rep->n_by_state = CPL_NSTATES;
	h->rep->body_case = COPAL__REPLY__BODY_COUNT;
	h->rep->count = rep;
	return 0;
}

// ---------------------------------------------------------------- modify

enum ftype { F_STR, F_U32, F_I32, F_BOOL, F_RES_U32, F_RES_STR };

static const struct field {
	const char *name;
	enum ftype type;
	size_t off;
} fields[] = {
	{ "name", F_STR, offsetof(Copal__TaskSpec, name) },
	{ "workflow", F_STR, offsetof(Copal__TaskSpec, workflow) },
	{ "description", F_STR, offsetof(Copal__TaskSpec, description) },
	{ "application", F_STR, offsetof(Copal__TaskSpec, application) },
	{ "args", F_STR, offsetof(Copal__TaskSpec, args) },
	{ "data", F_STR, offsetof(Copal__TaskSpec, data_json) },
	{ "stage_in_url", F_STR, offsetof(Copal__TaskSpec, stage_in_url) },
	{ "stage_out_files", F_STR, offsetof(Copal__TaskSpec, stage_out_files) },
	{ "stage_out_url", F_STR, offsetof(Copal__TaskSpec, stage_out_url) },
	{ "workdir", F_STR, offsetof(Copal__TaskSpec, workdir) },
	{ "max_retries", F_U32, offsetof(Copal__TaskSpec, max_retries) },
	{ "timeout_seconds", F_U32, offsetof(Copal__TaskSpec, timeout_seconds) },
	{ "priority", F_I32, offsetof(Copal__TaskSpec, priority) },
	{ "auto_timeout_retry", F_BOOL,
	    offsetof(Copal__TaskSpec, auto_timeout_retry) },
	{ "post_error_handler", F_BOOL,
	    offsetof(Copal__TaskSpec, post_error_handler) },
	{ "post_timeout_handler", F_BOOL,
	    offsetof(Copal__TaskSpec, post_timeout_handler) },
	{ "num_nodes", F_RES_U32, offsetof(Copal__Resources, num_nodes) },
	{ "ranks_per_node", F_RES_U32, offsetof(Copal__Resources, ranks_per_node) },
	{ "threads_per_rank", F_RES_U32,
	    offsetof(Copal__Resources, threads_per_rank) },
	{ "threads_per_core", F_RES_U32,
	    offsetof(Copal__Resources, threads_per_core) },
	{ "gpus_per_rank", F_RES_U32, offsetof(Copal__Resources, gpus_per_rank) },
	{ "node_packing_count", F_RES_U32,
	    offsetof(Copal__Resources, node_packing_count) },
	{ "wall_time_minutes", F_RES_U32,
	    offsetof(Copal__Resources, wall_time_minutes) },
	{ "cpu_affinity", F_RES_STR, offsetof(Copal__Resources, cpu_affinity) },
};

static const struct field *
field_find(const char *name)
{
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

// Sets one field on a copy of the spec (strings point at `value`).
static int
field_set(const struct field *fd, Copal__TaskSpec *sp, Copal__Resources *res,
    const char *value)
{
	char *base = fd->type == F_RES_U32 || fd->type == F_RES_STR ?
	    (char *)res : (char *)sp;
	void *p = base + fd->off;
	switch (fd->type) {
	case F_STR:
	case F_RES_STR:
		*(const char **)p = value;
		return 0;
	case F_U32:
	case F_RES_U32:
		return u32_parse(value, p);
	case F_I32:
		return i32_parse(value, p);
	case F_BOOL:
		return bool_parse(value, p);
	}
	return CPL_EINVAL;
}

static int
h_modify(hctx *h, cpl_txn *txn)
{
	const Copal__ModifyRequest *r = h->req->modify;
	cpl_ids sel = { NULL, 0, 0 };
	const struct field *fd = NULL;
	cpl_state st = CPL_STATE_NONE;
	uint64_t changed = 0;
	int rv;
	if (r->field == NULL || r->value == NULL)
		FAIL(h, CPL_EINVAL, "modify needs a field and a value");
	if (strcmp(r->field, "state") == 0) {
		if ((st = cpl_state_parse(r->value)) == CPL_STATE_NONE)
			FAIL(h, CPL_EINVAL, "unknown state %s", r->value);
	} else if ((fd = field_find(r->field)) == NULL) {
		FAIL(h, CPL_EINVAL, "unknown or unmodifiable field %s", r->field);
	}
	if ((rv = select_ids(h, txn, r->filter, &sel)) != 0) {
		free(sel.v);
		return rv;
	}
	for (size_t i = 0; i < sel.n && rv == 0; i++) {
		if (fd == NULL) {
			cpl_task t;
			if ((rv = cpl_task_get(txn, sel.v[i], 0, &t)) != 0)
				break;
			if (t.state == st)
				continue;
			rv = cpl_task_set_state(txn, sel.v[i], st,
			    r->message && r->message[0] ? r->message :
			                                  "modified by user");
		} else {
			cpl_task t;
			Copal__Resources res = COPAL__RESOURCES__INIT;
			if ((rv = task_get_owned(h, txn, sel.v[i], &t)) != 0)
				break;
			Copal__TaskSpec sp = *t.spec;
			if (sp.resources)
				res = *sp.resources;
			sp.resources = &res;
			if ((rv = field_set(fd, &sp, &res, r->value)) != 0) {
				snprintf(h->err, sizeof(h->err),
				    "bad value %s for %s", r->value, fd->name);
				break;
			}
			rv = cpl_task_update_spec(txn, sel.v[i], &sp);
		}
		if (rv == 0) {
			changed++;
		} else if (h->err[0] == '\0') {
			cpl_task t;
			char u[37] = "?";
			if (cpl_task_get(txn, sel.v[i], 0, &t) == 0)
				cpl_uuid_format(t.uuid, u);
			snprintf(h->err, sizeof(h->err),
			    "task %s: %s (nothing was changed)", u,
			    cpl_strerror(rv));
		}
	}
	size_t matched = sel.n;
	free(sel.v);
	if (rv)
		return rv;
	Copal__ModifyReply *rep = NEW(h, Copal__ModifyReply, COPAL__MODIFY_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->matched = matched;
	rep->changed = changed;
	h->rep->body_case = COPAL__REPLY__BODY_MODIFY;
	h->rep->modify = rep;
	return 0;
}

// ---------------------------------------------------------------- delete, kill

static int
h_delete(hctx *h, cpl_txn *txn)
{
	cpl_ids sel = { NULL, 0, 0 };
	int rv;
	if ((rv = select_ids(h, txn, h->req->delete_->filter, &sel)) != 0) {
		free(sel.v);
		return rv;
	}
	// Children before parents: each pass deletes what has no children
	// left (newest first, since children are usually newer); a task whose
	// children are outside the selection stops it all.
	size_t left = sel.n;
	while (left > 0 && rv == 0) {
		size_t w = 0, before = left;
		for (size_t i = left; i-- > 0;) {
			int e = cpl_task_delete(txn, sel.v[i]);
			if (e == CPL_EINUSE) {
				sel.v[w++] = sel.v[i]; // try again next pass
				continue;
			}
			if (e != 0) {
				rv = e;
				sel.v[0] = sel.v[i];
				break;
			}
		}
		if (rv == 0 && w == before)
			rv = CPL_EINUSE; // children outside the selection
		// keep the remaining ids in ascending order
		for (size_t i = 0; i < w / 2; i++) {
			uint64_t x = sel.v[i];
			sel.v[i] = sel.v[w - 1 - i];
			sel.v[w - 1 - i] = x;
		}
		left = w;
	}
	if (rv != 0) {
		cpl_task t;
		char u[37] = "?";
		if (cpl_task_get(txn, sel.v[0], 0, &t) == 0)
			cpl_uuid_format(t.uuid, u);
		snprintf(h->err, sizeof(h->err),
		    "task %s: %s%s (nothing was deleted)", u, cpl_strerror(rv),
		    rv == CPL_EINUSE ? ": it has children that are not being "
		                       "deleted" : "");
	}
	size_t n = sel.n;
	free(sel.v);
	if (rv)
		return rv;
	Copal__DeleteReply *rep = NEW(h, Copal__DeleteReply, COPAL__DELETE_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->deleted = n;
	h->rep->body_case = COPAL__REPLY__BODY_DELETE;
	h->rep->delete_ = rep;
	return 0;
}

static int
h_kill(hctx *h, cpl_txn *txn)
{
	cpl_ids sel = { NULL, 0, 0 };
	uint64_t total = 0;
	int rv;
	if ((rv = select_ids(h, txn, h->req->kill->filter, &sel)) != 0) {
		free(sel.v);
		return rv;
	}
	for (size_t i = 0; i < sel.n && rv == 0; i++) {
		uint64_t n = 0;
		rv = cpl_task_kill(txn, sel.v[i], "killed by user", &n);
		total += n;
	}
	free(sel.v);
	if (rv)
		return rv;
	Copal__KillReply *rep = NEW(h, Copal__KillReply, COPAL__KILL_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->killed = total;
	h->rep->body_case = COPAL__REPLY__BODY_KILL;
	h->rep->kill = rep;
	return 0;
}

static int
h_add_dependency(hctx *h, cpl_txn *txn)
{
	const Copal__AddDependencyRequest *r = h->req->add_dependency;
	int rv = cpl_dep_add(txn, r->parent_id, r->child_id);
	if (rv)
		FAIL(h, rv, "dependency %" PRIu64 " -> %" PRIu64 ": %s%s",
		    r->parent_id, r->child_id, cpl_strerror(rv),
		    rv == CPL_EBADSTATE ? ": the child has already started" : "");
	Copal__AddDependencyReply *rep =
	    NEW(h, Copal__AddDependencyReply, COPAL__ADD_DEPENDENCY_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	h->rep->body_case = COPAL__REPLY__BODY_ADD_DEPENDENCY;
	h->rep->add_dependency = rep;
	return 0;
}

// ---------------------------------------------------------------- history

// Who a task is (for events), looked up once per task per request.
struct tinfo {
	uint64_t id;
	char *uuid, *name, *workflow;
};

struct tcache {
	struct tinfo *v; // open addressing; cap a power of two
	size_t cap, n;
};

static struct tinfo *
tinfo_get(hctx *h, cpl_txn *txn, struct tcache *c, uint64_t id)
{
	if (c->n * 2 >= c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		struct tinfo *v = arena_alloc(h->a, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		for (size_t i = 0; i < c->cap; i++) {
			if (c->v[i].id == 0)
				continue;
			size_t j = (c->v[i].id * 0x9E3779B97F4A7C15ull) & (cap - 1);
			while (v[j].id)
				j = (j + 1) & (cap - 1);
			v[j] = c->v[i];
		}
		c->v = v;
		c->cap = cap;
	}
	size_t j = (id * 0x9E3779B97F4A7C15ull) & (c->cap - 1);
	while (c->v[j].id && c->v[j].id != id)
		j = (j + 1) & (c->cap - 1);
	struct tinfo *ti = &c->v[j];
	if (ti->id == id)
		return ti;
	cpl_task t;
	char u[37] = "";
	const char *name = "", *wf = "";
	int rv = cpl_task_get(txn, id, CPL_GET_SPEC, &t);
	if (rv == 0) {
		cpl_uuid_format(t.uuid, u);
		name = t.spec->name;
		wf = t.spec->workflow;
	}
	ti->uuid = arena_strdup(h->a, u);
	ti->name = arena_strdup(h->a, name); // "" for a deleted task
	ti->workflow = arena_strdup(h->a, wf);
	if (rv == 0)
		cpl_task_clear(&t);
	if (!ti->uuid || !ti->name || !ti->workflow)
		return NULL;
	ti->id = id;
	c->n++;
	return ti;
}

struct ev_ctx {
	hctx *h;
	cpl_txn *txn;
	struct tcache tasks;
	uint64_t owner_lease;  // last lease whose owner was looked up
	char *owner;
	Copal__Event **v;
	size_t n, cap;
	uint64_t until;
	const char *wf_name;  // export: workflow filter
	uint64_t last_seq;
	bool more;
};

static int
ev_push(struct ev_ctx *c, const cpl_event *e)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		Copal__Event **v = arena_alloc(c->h->a, cap * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		if (c->n)
			memcpy(v, c->v, c->n * sizeof(*v));
		c->v = v;
		c->cap = cap;
	}
	Copal__Event *w = NEW(c->h, Copal__Event, COPAL__EVENT__INIT);
	if (w == NULL || (w->message = arena_strdup(c->h->a, e->message)) == NULL ||
	    (w->node = arena_strdup(c->h->a, e->node)) == NULL)
		return CPL_ENOMEM;
	struct tinfo *ti = tinfo_get(c->h, c->txn, &c->tasks, e->task_id);
	if (ti == NULL)
		return CPL_ENOMEM;
	w->uuid = ti->uuid;
	w->name = ti->name;
	w->workflow = ti->workflow;
	w->launcher = "";
	if (e->lease) {
		if (e->lease != c->owner_lease) {
			char own[256];
			if (cpl_lease_owner(c->txn, e->lease, own, sizeof(own)) != 0)
				own[0] = '\0';
			if ((c->owner = arena_strdup(c->h->a, own)) == NULL)
				return CPL_ENOMEM;
			c->owner_lease = e->lease;
		}
		w->launcher = c->owner;
	}
	w->seq = e->seq;
	w->task_id = e->task_id;
	w->from_state = (Copal__TaskState)e->from;
	w->to_state = (Copal__TaskState)e->to;
	w->time_us = e->time_us;
	w->attempt = e->attempt;
	w->lease_id = e->lease;
	w->return_code = e->return_code;
	c->v[c->n++] = w;
	return 0;
}

static int
hist_cb(const cpl_event *e, void *arg)
{
	return ev_push(arg, e);
}

static int
h_history(hctx *h, cpl_txn *txn)
{
	struct ev_ctx c;
	cpl_task t;
	int rv;
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.txn = txn;
	if ((rv = cpl_task_get(txn, h->req->history->task_id, 0, &t)) != 0)
		FAIL(h, rv, "task %" PRIu64 ": %s", h->req->history->task_id,
		    cpl_strerror(rv));
	if ((rv = cpl_history_task(txn, t.id, hist_cb, &c)) != 0)
		return rv;
	Copal__HistoryReply *rep =
	    NEW(h, Copal__HistoryReply, COPAL__HISTORY_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->events = c.v;
	rep->n_events = c.n;
	h->rep->body_case = COPAL__REPLY__BODY_HISTORY;
	h->rep->history = rep;
	return 0;
}

static int
exportcb(const cpl_event *e, void *arg)
{
	struct ev_ctx *c = arg;
	c->last_seq = e->seq;
	if (c->until && e->time_us >= c->until) {
		c->more = false;
		return 1; // past the window: stop
	}
	if (c->wf_name) {
		struct tinfo *ti = tinfo_get(c->h, c->txn, &c->tasks, e->task_id);
		if (ti == NULL)
			return CPL_ENOMEM;
		if (strcmp(ti->workflow, c->wf_name) != 0)
			return 0;
	}
	return ev_push(c, e);
}

static int
h_export(hctx *h, cpl_txn *txn)
{
	const Copal__ExportRequest *r = h->req->export;
	struct ev_ctx c;
	uint64_t after = r->after_seq;
	uint32_t limit = r->limit ? r->limit : 10000;
	int rv;
	if (limit > MAX_EXPORT)
		FAIL(h, CPL_EINVAL, "limit above %u events per page", MAX_EXPORT);
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.txn = txn;
	c.until = r->until_us;
	c.wf_name = r->workflow && r->workflow[0] ? r->workflow : NULL;
	if (r->since_us) {
		uint64_t seq;
		if ((rv = cpl_history_seek_time(txn, r->since_us, &seq)) != 0)
			return rv;
		if (seq > 0 && seq - 1 > after)
			after = seq - 1;
	}
	c.last_seq = after;
	c.more = true;
	rv = cpl_history_scan(txn, after, limit, exportcb, &c);
	if (rv < 0 || (rv != 0 && rv != 1))
		return rv;
	if (rv == 0 && c.last_seq - after < limit)
		c.more = false; // the log ended before the page did
	Copal__ExportReply *rep = NEW(h, Copal__ExportReply, COPAL__EXPORT_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->events = c.v;
	rep->n_events = c.n;
	rep->last_seq = c.last_seq;
	rep->more = c.more;
	h->rep->body_case = COPAL__REPLY__BODY_EXPORT;
	h->rep->export = rep;
	return 0;
}

// ---------------------------------------------------------------- apps

static int
h_app_register(hctx *h, cpl_txn *txn)
{
	const Copal__AppRegisterRequest *r = h->req->app_register;
	if (r->app == NULL)
		FAIL(h, CPL_EINVAL, "no app given");
	int rv = cpl_app_put(txn, r->app, r->replace);
	if (rv == CPL_EEXISTS)
		FAIL(h, rv, "app %s already exists (replace it to change it)",
		    r->app->name);
	if (rv == CPL_EINVAL)
		FAIL(h, rv, "an app needs a name (at most 255 bytes) and an "
		    "executable");
	if (rv)
		return rv;
	Copal__AppRegisterReply *rep =
	    NEW(h, Copal__AppRegisterReply, COPAL__APP_REGISTER_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	h->rep->body_case = COPAL__REPLY__BODY_APP_REGISTER;
	h->rep->app_register = rep;
	return 0;
}

struct app_ctx {
	hctx *h;
	Copal__AppListReply *rep;
	size_t cap;
};

static int
app_cb(const Copal__App *app, uint64_t ntasks, void *arg)
{
	struct app_ctx *c = arg;
	(void)ntasks;
	if (c->rep->n_apps == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		Copal__App **v = arena_alloc(c->h->a, cap * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		if (c->rep->n_apps)
			memcpy(v, c->rep->apps, c->rep->n_apps * sizeof(*v));
		c->rep->apps = v;
		c->cap = cap;
	}
	Copal__App *a = NEW(c->h, Copal__App, COPAL__APP__INIT);
	if (a == NULL)
		return CPL_ENOMEM;
	a->name = arena_strdup(c->h->a, app->name);
	a->executable = arena_strdup(c->h->a, app->executable);
	a->preprocess = arena_strdup(c->h->a, app->preprocess);
	a->postprocess = arena_strdup(c->h->a, app->postprocess);
	a->envscript = arena_strdup(c->h->a, app->envscript);
	a->description = arena_strdup(c->h->a, app->description);
	if (!a->name || !a->executable || !a->preprocess || !a->postprocess ||
	    !a->envscript || !a->description)
		return CPL_ENOMEM;
	c->rep->apps[c->rep->n_apps++] = a;
	return 0;
}

static int
h_app_list(hctx *h, cpl_txn *txn)
{
	Copal__AppListReply *rep =
	    NEW(h, Copal__AppListReply, COPAL__APP_LIST_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	struct app_ctx c = { h, rep, 0 };
	int rv = cpl_app_list(txn, app_cb, &c);
	if (rv)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_APP_LIST;
	h->rep->app_list = rep;
	return 0;
}

static int
h_app_delete(hctx *h, cpl_txn *txn)
{
	const char *name = h->req->app_delete->name;
	int rv = cpl_app_delete(txn, name);
	if (rv == CPL_EINUSE)
		FAIL(h, rv, "app %s is used by tasks: remove them first", name);
	if (rv == CPL_ENOTFOUND)
		FAIL(h, rv, "no app named %s", name);
	if (rv)
		return rv;
	Copal__AppDeleteReply *rep =
	    NEW(h, Copal__AppDeleteReply, COPAL__APP_DELETE_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	h->rep->body_case = COPAL__REPLY__BODY_APP_DELETE;
	h->rep->app_delete = rep;
	return 0;
}

// ---------------------------------------------------------------- workflows

struct wf_ctx {
	hctx *h;
	Copal__WorkflowListReply *rep;
	size_t cap;
};

static int
wf_cb(const char *name, uint64_t n, void *arg)
{
	struct wf_ctx *c = arg;
	if (c->rep->n_workflows == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		Copal__WorkflowCount **v = arena_alloc(c->h->a, cap * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		if (c->rep->n_workflows)
			memcpy(v, c->rep->workflows,
			    c->rep->n_workflows * sizeof(*v));
		c->rep->workflows = v;
		c->cap = cap;
	}
	Copal__WorkflowCount *w =
	    NEW(c->h, Copal__WorkflowCount, COPAL__WORKFLOW_COUNT__INIT);
	if (w == NULL || (w->name = arena_strdup(c->h->a, name)) == NULL)
		return CPL_ENOMEM;
	w->tasks = n;
	c->rep->workflows[c->rep->n_workflows++] = w;
	return 0;
}

static int
h_workflow_list(hctx *h, cpl_txn *txn)
{
	Copal__WorkflowListReply *rep =
	    NEW(h, Copal__WorkflowListReply, COPAL__WORKFLOW_LIST_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	struct wf_ctx c = { h, rep, 0 };
	int rv = cpl_workflow_list(txn, wf_cb, &c);
	if (rv)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_WORKFLOW_LIST;
	h->rep->workflow_list = rep;
	return 0;
}

// ---------------------------------------------------------------- leases

struct lease_ctx {
	hctx *h;
	Copal__LeaseListReply *rep;
	size_t cap;
};

static int
lease_cb(const cpl_lease *l, void *arg)
{
	struct lease_ctx *c = arg;
	if (c->rep->n_leases == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		Copal__Lease **v = arena_alloc(c->h->a, cap * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		if (c->rep->n_leases)
			memcpy(v, c->rep->leases, c->rep->n_leases * sizeof(*v));
		c->rep->leases = v;
		c->cap = cap;
	}
	Copal__Lease *w = NEW(c->h, Copal__Lease, COPAL__LEASE__INIT);
	if (w == NULL || (w->owner = arena_strdup(c->h->a, l->owner)) == NULL)
		return CPL_ENOMEM;
	w->id = l->id;
	w->deadline_us = l->deadline_us;
	w->ttl_ms = l->ttl_ms;
	w->created_us = l->created_us;
	w->ntasks = l->ntasks;
	c->rep->leases[c->rep->n_leases++] = w;
	return 0;
}

static int
h_lease_list(hctx *h, cpl_txn *txn)
{
	Copal__LeaseListReply *rep =
	    NEW(h, Copal__LeaseListReply, COPAL__LEASE_LIST_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	struct lease_ctx c = { h, rep, 0 };
	int rv = cpl_lease_list(txn, lease_cb, &c);
	if (rv)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_LEASE_LIST;
	h->rep->lease_list = rep;
	return 0;
}

// ---------------------------------------------------------------- batch jobs

static void
free_bjob(void *p)
{
	copal__batch_job__free_unpacked(p, NULL);
}

static bool
one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static const char *const job_modes[] = { "serial", "mpi", NULL };

static int
h_batch_add(hctx *h, cpl_txn *txn)
{
	const Copal__BatchJob *j = h->req->batch_add->job;
	Copal__BatchJob *out = NULL;
	if (j == NULL)
		FAIL(h, CPL_EINVAL, "no batch job given");
	if (!cpl_scheduler_known(j->scheduler))
		FAIL(h, CPL_EINVAL, "scheduler '%.64s' unknown (local, slurm, "
		    "pbs, cobalt)", j->scheduler);
	if (!one_of(j->job_mode, job_modes))
		FAIL(h, CPL_EINVAL, "job mode '%.64s' unknown (serial, mpi)",
		    j->job_mode);
	int rv = cpl_bjob_add(txn, j, &out);
	if (rv == CPL_EINVAL)
		FAIL(h, rv, "a batch job needs 1..65535 nodes, a wall time of "
		    "at least a minute, and names of at most 255 bytes");
	if (rv)
		return rv;
	if (arena_defer(h->a, free_bjob, out) != 0) // frees it on failure
		return CPL_ENOMEM;
	Copal__BatchJobAddReply *rep =
	    NEW(h, Copal__BatchJobAddReply, COPAL__BATCH_JOB_ADD_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->job = out;
	h->rep->body_case = COPAL__REPLY__BODY_BATCH_ADD;
	h->rep->batch_add = rep;
	return 0;
}

static const char *
bjob_state_name(Copal__BatchJobState s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &copal__batch_job_state__descriptor, (int)s);
	return v ? v->name : "?";
}

static int
h_batch_update(hctx *h, cpl_txn *txn)
{
	const Copal__BatchJobUpdateRequest *u = h->req->batch_update;
	Copal__BatchJob *out = NULL, *old = NULL;
	cpl_bjob_change c = { u->id, u->state, u->scheduler_id, u->message,
		u->sched_state, u->script };
	int rv = cpl_bjob_update(txn, &c, &out);
	if (rv == CPL_ENOTFOUND)
		FAIL(h, rv, "no batch job %" PRIu64, u->id);
	if (rv == CPL_EBADSTATE) {
		if (cpl_bjob_get(txn, u->id, &old) == 0) {
			snprintf(h->err, sizeof(h->err), "batch job %" PRIu64
			    " is %s: it cannot become %s", u->id,
			    bjob_state_name(old->state),
			    bjob_state_name(u->state));
			free_bjob(old);
		}
		return rv;
	}
	if (rv == CPL_EINVAL)
		FAIL(h, rv, "a batch job update needs a state; names of at "
		    "most 255 bytes, messages of at most 8192");
	if (rv)
		return rv;
	if (arena_defer(h->a, free_bjob, out) != 0) // frees it on failure
		return CPL_ENOMEM;
	Copal__BatchJobUpdateReply *rep = NEW(h, Copal__BatchJobUpdateReply,
	    COPAL__BATCH_JOB_UPDATE_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->job = out;
	h->rep->body_case = COPAL__REPLY__BODY_BATCH_UPDATE;
	h->rep->batch_update = rep;
	return 0;
}

struct bjob_ctx {
	hctx *h;
	const Copal__BatchJobListRequest *req;
	Copal__BatchJobListReply *rep;
	size_t cap;
};

static int
bjob_cb(const Copal__BatchJob *j, void *arg)
{
	struct bjob_ctx *c = arg;
	if (c->req->n_states) {
		bool want = false;
		for (size_t i = 0; i < c->req->n_states && !want; i++)
			want = c->req->states[i] == j->state;
		if (!want)
			return 0;
	}
	if (c->rep->n_jobs == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		Copal__BatchJob **v = arena_alloc(c->h->a, cap * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		if (c->rep->n_jobs)
			memcpy(v, c->rep->jobs, c->rep->n_jobs * sizeof(*v));
		c->rep->jobs = v;
		c->cap = cap;
	}
	// a copy that outlives the callback: pack and unpack
	size_t sz = protobuf_c_message_get_packed_size(&j->base);
	uint8_t *buf = arena_alloc(c->h->a, sz ? sz : 1);
	if (buf == NULL)
		return CPL_ENOMEM;
	protobuf_c_message_pack(&j->base, buf);
	Copal__BatchJob *copy = copal__batch_job__unpack(NULL, sz, buf);
	if (copy == NULL)
		return CPL_ENOMEM;
	if (arena_defer(c->h->a, free_bjob, copy) != 0)
		return CPL_ENOMEM;
	c->rep->jobs[c->rep->n_jobs++] = copy;
	return 0;
}

static int
h_batch_list(hctx *h, cpl_txn *txn)
{
	Copal__BatchJobListReply *rep = NEW(h, Copal__BatchJobListReply,
	    COPAL__BATCH_JOB_LIST_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	struct bjob_ctx c = { h, h->req->batch_list, rep, 0 };
	int rv = cpl_bjob_list(txn, bjob_cb, &c);
	if (rv)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_BATCH_LIST;
	h->rep->batch_list = rep;
	return 0;
}

// ---------------------------------------------------------------- backlog

#define MAX_QUEUE_LIMITS 64u
#define MAX_UNFIT_IDS 1000u

static int
h_backlog(hctx *h, cpl_txn *txn)
{
	const Copal__BacklogRequest *r = h->req->backlog;
	if (r->n_queues > MAX_QUEUE_LIMITS)
		FAIL(h, CPL_EINVAL, "at most %u queues in a backlog request",
		    MAX_QUEUE_LIMITS);
	if (r->max_unfit_ids > MAX_UNFIT_IDS)
		FAIL(h, CPL_EINVAL, "at most %u unfit ids", MAX_UNFIT_IDS);
	cpl_queue_limit lim[MAX_QUEUE_LIMITS];
	for (size_t i = 0; i < r->n_queues; i++) {
		if (r->queues[i]->max_nodes == 0)
			FAIL(h, CPL_EINVAL, "queue %zu allows no nodes", i);
		lim[i].max_nodes = r->queues[i]->max_nodes;
		lim[i].gpus_per_node = r->queues[i]->gpus_per_node;
		lim[i].max_minutes = r->queues[i]->max_minutes;
	}
	Copal__BacklogReply *rep =
	    NEW(h, Copal__BacklogReply, COPAL__BACKLOG_REPLY__INIT);
	uint64_t *ids = arena_alloc(h->a,
	    (r->max_unfit_ids ? r->max_unfit_ids : 1) * sizeof(uint64_t));
	if (rep == NULL || ids == NULL)
		return CPL_ENOMEM;
	cpl_backlog b = { .unfit_ids = ids, .max_unfit = r->max_unfit_ids };
	int rv = cpl_backlog_get(txn, r->workflow, lim, r->n_queues, &b);
	if (rv)
		return rv;
	rep->tasks = b.tasks;
	rep->node_units = b.node_units;
	rep->max_nodes = b.max_nodes;
	rep->max_minutes = b.max_minutes;
	rep->unfit = b.unfit;
	rep->unfit_ids = ids;
	rep->n_unfit_ids = b.nunfit_ids;
	h->rep->body_case = COPAL__REPLY__BODY_BACKLOG;
	h->rep->backlog = rep;
	return 0;
}

// ---------------------------------------------------------------- ping

static int
h_ping(hctx *h, cpl_txn *txn)
{
	const struct server_info *si = server_info(h->srv);
	Copal__PingReply *rep = NEW(h, Copal__PingReply, COPAL__PING_REPLY__INIT);
	uint64_t *by = arena_alloc(h->a, CPL_NSTATES * sizeof(uint64_t));
	if (rep == NULL || by == NULL)
		return CPL_ENOMEM;
	int rv = cpl_count_states(txn, by);
	if (rv)
		return rv;
	rep->broker_time_us = cpl_txn_now(txn);
	rep->pid = (uint32_t)getpid();
	rep->started_us = si->started_us;
	rep->version = COPAL_VERSION;
	rep->db_dir = (char *)(si->db_dir ? si->db_dir : "");
	char **urls = arena_alloc(h->a, 2 * sizeof(char *));
	if (urls == NULL)
		return CPL_ENOMEM;
	if (si->ipc_url && si->ipc_url[0])
		urls[rep->n_listen_urls++] = (char *)si->ipc_url;
	if (si->tcp_url && si->tcp_url[0])
		urls[rep->n_listen_urls++] = (char *)si->tcp_url;
	rep->listen_urls = urls;
	rep->by_state = by;
	rep->n_by_state = CPL_NSTATES;
	struct lease_ctx lc = { h, NEW(h, Copal__LeaseListReply,
		COPAL__LEASE_LIST_REPLY__INIT), 0 };
	if (lc.rep == NULL)
		return CPL_ENOMEM;
	if ((rv = cpl_lease_list(txn, lease_cb, &lc)) != 0)
		return rv;
	rep->leases = (uint32_t)lc.rep->n_leases;
	h->rep->body_case = COPAL__REPLY__BODY_PING;
	h->rep->ping = rep;
	return 0;
}

// ---------------------------------------------------------------- table

static const handler handlers[] = {
	{ COPAL__REQUEST__BODY_CREATE, "create", true, h_create },
	{ COPAL__REQUEST__BODY_CLAIM, "claim", true, h_claim },
	{ COPAL__REQUEST__BODY_REPORT, "report", true, h_report },
	{ COPAL__REQUEST__BODY_HEARTBEAT, "heartbeat", true, h_heartbeat },
	{ COPAL__REQUEST__BODY_QUERY, "query", false, h_query },
	{ COPAL__REQUEST__BODY_COUNT, "count", false, h_count },
	{ COPAL__REQUEST__BODY_MODIFY, "modify", true, h_modify },
	{ COPAL__REQUEST__BODY_DELETE, "delete", true, h_delete },
	{ COPAL__REQUEST__BODY_KILL, "kill", true, h_kill },
	{ COPAL__REQUEST__BODY_ADD_DEPENDENCY, "add_dependency", true,
	    h_add_dependency },
	{ COPAL__REQUEST__BODY_HISTORY, "history", false, h_history },
	{ COPAL__REQUEST__BODY_EXPORT, "export", false, h_export },
	{ COPAL__REQUEST__BODY_APP_REGISTER, "app_register", true,
	    h_app_register },
	{ COPAL__REQUEST__BODY_APP_LIST, "app_list", false, h_app_list },
	{ COPAL__REQUEST__BODY_APP_DELETE, "app_delete", true, h_app_delete },
	{ COPAL__REQUEST__BODY_PING, "ping", false, h_ping },
	{ COPAL__REQUEST__BODY_WORKFLOW_LIST, "workflow_list", false,
	    h_workflow_list },
	{ COPAL__REQUEST__BODY_LEASE_LIST, "lease_list", false, h_lease_list },
	{ COPAL__REQUEST__BODY_BATCH_ADD, "batch_add", true, h_batch_add },
	{ COPAL__REQUEST__BODY_BATCH_UPDATE, "batch_update", true,
	    h_batch_update },
	{ COPAL__REQUEST__BODY_BATCH_LIST, "batch_list", false, h_batch_list },
	{ COPAL__REQUEST__BODY_BACKLOG, "backlog", false, h_backlog },
};

const handler *
handler_find(Copal__Request__BodyCase body)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].body == body)
			return &handlers[i];
	return NULL;
}
