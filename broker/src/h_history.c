// Handlers of the event log: a task's history and the export of events.
#include <inttypes.h>
#include <string.h>

#include "copal/params.h"
#include "copal/spec.h"
#include "handlers.h"

#define MAX_EXPORT 100000u

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
	// (the names straight from the packed spec: unpacking it whole was
	// the largest cost of an export)
	cpl_task t;
	char u[37] = "";
	char name[CPL_SPEC_NAME_MAX + 1] = "", wf[CPL_SPEC_NAME_MAX + 1] = "";
	if (cpl_task_get_names(txn, id, &t, name, wf) == 0)
		cpl_uuid_format(t.uuid, u);
	else
		name[0] = wf[0] = '\0'; // "" for a deleted task
	ti->uuid = arena_strdup(h->a, u);
	ti->name = arena_strdup(h->a, name);
	ti->workflow = arena_strdup(h->a, wf);
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
	uint64_t bjob;         // ... and its batch job
	char *sched_id;
	Copal__Event **v;
	size_t n, cap;
	uint64_t until;
	const char *wf_name;  // export: workflow filter
	const char *const *tags; // export: tags filter
	size_t ntags;
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
	    (w->node = arena_strdup(c->h->a, e->node)) == NULL ||
	    (w->user = arena_strdup(c->h->a, e->user ? e->user : "")) == NULL)
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
			char sid[128];
			if (cpl_lease_batch_job(c->txn, e->lease, &c->bjob, sid,
			        sizeof(sid)) != 0) {
				c->bjob = 0;
				sid[0] = '\0';
			}
			if ((c->sched_id = arena_strdup(c->h->a, sid)) == NULL)
				return CPL_ENOMEM;
			c->owner_lease = e->lease;
		}
		w->launcher = c->owner;
		w->batch_job_id = c->bjob;
		w->scheduler_job_id = c->sched_id;
	}
	w->seq = e->seq;
	w->task_id = e->task_id;
	w->from_state = (Copal__TaskState)e->from;
	w->to_state = (Copal__TaskState)e->to;
	w->time_us = e->time_us;
	w->event_us = e->event_us;
	w->attempt = e->attempt;
	w->lease_id = e->lease;
	w->return_code = e->return_code;
	if (e->skipped) {
		w->skipped = arena_alloc(c->h->a, 3 * sizeof(*w->skipped));
		if (w->skipped == NULL)
			return CPL_ENOMEM;
		static const cpl_state stages[] = { CPL_STAGED_IN,
			CPL_PREPROCESSED, CPL_POSTPROCESSED };
		for (size_t i = 0; i < 3; i++)
			if (e->skipped & (1u << stages[i]))
				w->skipped[w->n_skipped++] =
				    (Copal__TaskState)stages[i];
	}
	c->v[c->n++] = w;
	return 0;
}

static int
hist_cb(const cpl_event *e, void *arg)
{
	return ev_push(arg, e);
}

int
history_events(hctx *h, cpl_txn *txn, uint64_t id, Copal__Event ***v,
    size_t *n, size_t *cap)
{
	struct ev_ctx c;
	int rv;
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.txn = txn;
	c.v = *v;
	c.n = *n;
	c.cap = *cap;
	rv = cpl_history_task(txn, id, hist_cb, &c);
	*v = c.v;
	*n = c.n;
	*cap = c.cap;
	return rv;
}

int
h_history(hctx *h, cpl_txn *txn)
{
	struct ev_ctx c;
	cpl_task t;
	int rv;
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.txn = txn;
	if ((rv = cpl_task_get(txn, h->req->history->task_id, 0, &t)) != 0)
		FAIL(h, rv, "%s: %s", task_label(h, txn,
		    h->req->history->task_id), cpl_strerror(rv));
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
	if (c->ntags) {
		bool has;
		int rv = cpl_task_has_tags(c->txn, e->task_id, c->tags,
		    c->ntags, &has);
		if (rv)
			return rv;
		if (!has)
			return 0;
	}
	return ev_push(c, e);
}

int
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
	if (r->n_tags > CPL_TAGS_MAX)
		FAIL(h, CPL_EINVAL, "%zu tags in an export filter, above the "
		    "limit %u", r->n_tags, CPL_TAGS_MAX);
	for (size_t i = 0; i < r->n_tags; i++) {
		char why[200];
		if (cpl_tag_check(r->tags[i], why, sizeof(why)) != 0)
			FAIL(h, CPL_EINVAL, "export: %s", why);
	}
	c.tags = (const char *const *)r->tags;
	c.ntags = r->n_tags;
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
