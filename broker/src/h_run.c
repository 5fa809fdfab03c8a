// Handlers of the launchers' run: claim, report, heartbeat (leases and
// their kill notices) and the lease list.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "copal/params.h"
#include "handlers.h"

#define MAX_CLAIM 100000u

// ---------------------------------------------------------------- helpers

static void
free_app(void *p)
{
	copal__app__free_unpacked(p, NULL);
}

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

// ---------------------------------------------------------------- leases

// The TTL a lease request asks for, checked (0: the default).
static int
lease_ttl(hctx *h, const Copal__HeartbeatRequest *r, uint32_t *ttl)
{
	*ttl = r->ttl_ms ? r->ttl_ms : DEFAULT_TTL_MS;
	if (*ttl < MIN_TTL_MS || *ttl > MAX_TTL_MS)
		FAIL(h, CPL_EINVAL, "ttl_ms must be %u..%u", MIN_TTL_MS,
		    MAX_TTL_MS);
	return 0;
}

// Grants a new lease as r asks (a heartbeat of lease 0, or a claim's
// new_lease): its id and its deadline (the broker's clock).
static int
grant_lease(hctx *h, cpl_txn *txn, const Copal__HeartbeatRequest *r,
    uint32_t ttl, uint64_t *lease, uint64_t *deadline)
{
	int rv;
	if (r->scheduler_job_id && strlen(r->scheduler_job_id) > 127)
		FAIL(h, CPL_EINVAL, "scheduler_job_id of more than 127 bytes");
	uint64_t bjob = r->batch_job_id;
	if (bjob) {
		// a launcher of a batch job copal does not know is still a
		// launcher, but its tasks are filed under no batch job: the
		// store files only under jobs it has (cpl_store_check holds
		// it to that). One of a job that has ended (cancelled, or
		// gone from the scheduler) is a straggler: its leases were
		// ended with the job, and it gets no new one
		Copal__BatchJob *bj = NULL;
		if (cpl_bjob_get(txn, r->batch_job_id, &bj) == 0) {
			Copal__BatchJobState st = bj->state;
			copal__batch_job__free_unpacked(bj, NULL);
			if (st == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
			    st == COPAL__BATCH_JOB_STATE__BJ_CANCELLED ||
			    st == COPAL__BATCH_JOB_STATE__BJ_SUBMIT_FAILED)
				FAIL(h, CPL_EBADSTATE, "batch job %" PRIu64
				    " has ended: no new lease for its "
				    "launchers", r->batch_job_id);
		} else {
			LOG(LOG_WARN, "lease", "%s says it runs in batch job %"
			    PRIu64 ", which is not on record: its tasks are "
			    "filed under no batch job", r->owner ? r->owner : "",
			    r->batch_job_id);
			bjob = 0;
		}
	}
	if ((rv = cpl_lease_grant_job(txn, r->owner, ttl, bjob,
	         r->scheduler_job_id, lease)) != 0)
		return rv;
	*deadline = cpl_txn_now(txn) + (uint64_t)ttl * 1000u;
	return 0;
}

static void
log_granted(uint64_t lease, const Copal__HeartbeatRequest *r)
{
	LOG(LOG_INFO, "lease", "granted lease %" PRIu64 " to %s", lease,
	    r->owner ? r->owner : "");
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

int
h_claim(hctx *h, cpl_txn *txn)
{
	const Copal__ClaimRequest *r = h->req->claim;
	const Copal__HeartbeatRequest *nl = r->new_lease;
	cpl_capacity cap;
	size_t n = 0;
	uint64_t lease = r->lease_id, deadline = 0;
	uint32_t ttl = 0;
	int rv;
	if (nl != NULL) {
		if (lease != 0)
			FAIL(h, CPL_EINVAL, "a claim under lease %" PRIu64
			    " asks for a new lease: say one or the other",
			    lease);
		if (nl->lease_id != 0 || nl->release)
			FAIL(h, CPL_EINVAL, "a claim's new_lease renews or "
			    "releases nothing: its lease_id must be 0 and "
			    "release false");
		if ((rv = lease_ttl(h, nl, &ttl)) != 0)
			return rv;
	}
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
		if (r->node_parts && r->nodes[i]->free_parts > CPL_NODE_PARTS)
			FAIL(h, CPL_EINVAL, "node %zu: free_parts above %u", i,
			    CPL_NODE_PARTS);
		if (!r->node_parts && r->nodes[i]->free_units > CPL_NODE_UNITS)
			FAIL(h, CPL_EINVAL, "node %zu: free_units above %u", i,
			    CPL_NODE_UNITS);
		nodes[i].free_units = r->node_parts ? r->nodes[i]->free_parts :
		    r->nodes[i]->free_units;
		nodes[i].free_gpus = r->nodes[i]->free_gpus;
	}
	if (r->order > CPL_ORDER_LONG_LARGE_FIRST)
		FAIL(h, CPL_EINVAL, "claim order %u unknown (0 fifo, 1 "
		    "long_large_first)", r->order);
	memset(&cap, 0, sizeof(cap));
	cap.order = (cpl_claim_order)r->order;
	cap.max_tasks = r->max_tasks;
	cap.nodes = nodes;
	cap.nnodes = r->n_nodes;
	cap.remaining_minutes = r->remaining_minutes;
	cap.max_task_nodes = r->max_task_nodes;
	cap.parts = r->node_parts;
	cap.workflow = r->workflow && r->workflow[0] ? r->workflow : NULL;
	if (r->n_tags > CPL_TAGS_MAX)
		FAIL(h, CPL_EINVAL, "%zu tags in a claim, above the limit %u",
		    r->n_tags, CPL_TAGS_MAX);
	for (size_t i = 0; i < r->n_tags; i++) {
		char why[200];
		if (cpl_tag_check(r->tags[i], why, sizeof(why)) != 0)
			FAIL(h, CPL_EINVAL, "claim: %s", why);
	}
	cap.tags = (const char *const *)r->tags;
	cap.ntags = r->n_tags;
	// the request is checked whole before the lease is granted (a refused
	// job is undone all the same); its log line comes when the claim
	// has succeeded
	if (nl != NULL &&
	    (rv = grant_lease(h, txn, nl, ttl, &lease, &deadline)) != 0)
		return rv;
	if ((rv = cpl_claim(txn, lease, &cap, claim_cb, &cc, &n)) != 0)
		FAIL(h, rv, "claim under lease %" PRIu64 ": %s", lease,
		    cpl_strerror(rv));
	Copal__ClaimReply *rep = NEW(h, Copal__ClaimReply, COPAL__CLAIM_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	if (nl != NULL) {
		rep->lease_id = lease;
		rep->deadline_us = deadline;
	}
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
		if (t.spec->application == NULL ||
		    t.spec->application[0] == '\0') {
			// a direct command (TaskSpec.command): no app record
			ct->app = NEW(h, Copal__App, COPAL__APP__INIT);
			if (ct->app == NULL)
				return CPL_ENOMEM;
		} else if (last_app == NULL ||
		    strcmp(last_app->name, t.spec->application) != 0) {
			if ((rv = cpl_app_get(txn, t.spec->application,
			         &last_app)) != 0)
				FAIL(h, rv, "app %s of task %s: %s",
				    t.spec->application,
				    task_label(h, txn, t.id), cpl_strerror(rv));
			if (arena_defer(h->a, free_app, last_app) != 0)
				return CPL_ENOMEM;
			ct->app = last_app;
		} else {
			ct->app = last_app;
		}
		ct->timeout_handler_due = t.timeout_handler_due;
		ct->n_node_index = cc.v[i].nnodes;
		ct->node_index = cc.v[i].nodes;
		if (t.spec->n_parent_ids) {
			ct->parent_dirs = arena_alloc(h->a,
			    t.spec->n_parent_ids * sizeof(char *));
			ct->parent_uuids = arena_alloc(h->a,
			    t.spec->n_parent_ids * sizeof(char *));
			if (ct->parent_dirs == NULL || ct->parent_uuids == NULL)
				return CPL_ENOMEM;
			for (size_t j = 0; j < t.spec->n_parent_ids; j++) {
				cpl_task pt;
				if ((rv = task_get_owned(h, txn,
				         t.spec->parent_ids[j], &pt)) != 0)
					continue; // a parent deleted since
				ct->parent_dirs[ct->n_parent_dirs++] =
				    workdir_of(h, pt.spec, pt.uuid);
				char *u = arena_alloc(h->a, 37);
				if (u == NULL)
					return CPL_ENOMEM;
				cpl_uuid_format(pt.uuid, u);
				ct->parent_uuids[ct->n_parent_uuids++] = u;
			}
		}
		rep->tasks[rep->n_tasks++] = ct;
	}
	if (nl == NULL && (rv = take_notices(h, txn, lease,
	    &rep->kill_task_ids, &rep->n_kill_task_ids)) != 0)
		return rv;
	// nothing to give: the claim may be held open and run again when a
	// task becomes runnable (dispatch.c, park.c); not one that took a
	// new lease, whose launcher waits for the lease's id
	if (n == 0 && rep->n_kill_task_ids == 0 && nl == NULL) {
		h->park_ms = r->wait_ms;
		h->park_key = lease;
	}
	h->rep->body_case = COPAL__REPLY__BODY_CLAIM;
	h->rep->claim = rep;
	if (nl != NULL)
		log_granted(lease, nl);
	return 0;
}

// ---------------------------------------------------------------- report

int
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
			s->node, s->cut, s->event_us };
		int rv = s->restart ? cpl_task_report_restart(txn, &cr) :
		    cpl_task_report(txn, &cr);
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
	// Reports are as good a sign of life as a heartbeat: they renew the
	// lease (written once a third of its TTL has gone), and the reply
	// says for how long, so that a launcher that reports needs no
	// heartbeat meanwhile. A lease that has ended or is past its
	// deadline is not renewed, and the reply says nothing.
	uint64_t deadline, now = cpl_txn_now(txn);
	rv = r->lease_id ? cpl_lease_touch(txn, r->lease_id, &deadline) :
	    CPL_ENOTFOUND;
	if (rv == 0 && deadline > now)
		rep->lease_left_ms = (uint32_t)((deadline - now) / 1000u);
	else if (rv != 0 && rv != CPL_ENOTFOUND && rv != CPL_EEXPIRED)
		return rv;
	if (r->stopping)
		h->unpark_key = r->lease_id;
	h->rep->body_case = COPAL__REPLY__BODY_REPORT;
	h->rep->report = rep;
	return 0;
}

// ---------------------------------------------------------------- heartbeat

int
h_heartbeat(hctx *h, cpl_txn *txn)
{
	const Copal__HeartbeatRequest *r = h->req->heartbeat;
	uint32_t ttl;
	uint64_t lease = r->lease_id, deadline = 0;
	int rv;
	if ((rv = lease_ttl(h, r, &ttl)) != 0)
		return rv;
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
		if ((rv = grant_lease(h, txn, r, ttl, &lease, &deadline)) != 0)
			return rv;
		log_granted(lease, r);
	} else if ((rv = cpl_lease_renew_waited(txn, lease, ttl, h->waited_us,
	    &deadline)) != 0) {
		// a heartbeat that waited for the writer is judged as of its
		// arrival: another client's long request does not end the lease
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

// ---------------------------------------------------------------- lease list

int
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

int
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
