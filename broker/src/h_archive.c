// Handlers of copal db archive: picking a page of tasks that may leave the
// store (a read) and removing exactly those (a mutation, all or nothing).
//
// The client writes what a pick returned to its archive file and makes it
// durable before it asks for the removal; the removal checks every task
// again (final, not held, its last event the one picked), so that what
// left is what the file holds. Each request is bounded (ARCHIVE_MAX
// tasks): the writer is never held long by one.
#include <stdlib.h>
#include <string.h>

#include "handlers.h"

#define ARCHIVE_MAX 10000u
// A pick's reply stays below this (the client takes up to 256 MiB)
#define PICK_BYTES (48u << 20)

static uint32_t
final_mask(void)
{
	uint32_t m = 0;
	for (int s = 0; s < CPL_NSTATES; s++)
		if (cpl_state_is_final((cpl_state)s))
			m |= 1u << s;
	return m;
}

struct wf_find {
	const char *name;
	bool found;
};

static int
wf_find_cb(const char *name, uint64_t n, void *arg)
{
	struct wf_find *w = arg;
	(void)n;
	if (strcmp(name, w->name) == 0)
		w->found = true;
	return 0;
}

// The request's workflow: NULL for any, else it must exist.
static int
archive_wf(hctx *h, cpl_txn *txn, const char *wf, const char **out)
{
	struct wf_find w = { wf, false };
	int rv;
	*out = NULL;
	if (wf == NULL || *wf == '\0')
		return 0;
	if ((rv = cpl_workflow_list(txn, wf_find_cb, &w)) != 0)
		return rv;
	if (!w.found)
		FAIL(h, CPL_ENOTFOUND, "no workflow named \"%s\" has tasks", wf);
	*out = wf;
	return 0;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int
ids_cb(const cpl_task *t, void *arg)
{
	return cpl_ids_push(arg, t->id);
}

static int
kid_cb(uint64_t id, void *arg)
{
	return cpl_ids_push(arg, id);
}

// One page of at most limit tasks looked at; CPL_ETOOBIG when its
// reply would pass PICK_BYTES (and limit > 1: the caller halves it).
static int
pick_page(hctx *h, cpl_txn *txn, const Copal__ArchivePickRequest *rq,
    const char *wf, uint32_t limit)
{
	cpl_filter f;
	cpl_ids seen = { NULL, 0, 0 }, kids = { NULL, 0, 0 };
	bool more = false;
	size_t bytes = 0;
	int rv;
	memset(&f, 0, sizeof(f));
	f.states = final_mask();
	f.workflow = wf;
	if ((rv = cpl_query(txn, &f, rq->after_id, limit, 0, ids_cb, &seen,
	         &more)) != 0)
		goto out;
	Copal__ArchivePickReply *rep =
	    NEW(h, Copal__ArchivePickReply, COPAL__ARCHIVE_PICK_REPLY__INIT);
	if (rep == NULL) {
		rv = CPL_ENOMEM;
		goto out;
	}
	rep->last_id = seen.n ? seen.v[seen.n - 1] : rq->after_id;
	rep->more = more;
	// the eligible ones (in id order: seen is)
	size_t n = 0;
	for (size_t i = 0; i < seen.n && rv == 0; i++) {
		bool ok = false;
		uint64_t ls = 0;
		rv = cpl_archive_eligible(txn, seen.v[i], rq->before_us, wf,
		    &ok, &ls);
		if (rv == 0 && ok)
			seen.v[n++] = seen.v[i];
	}
	if (rv)
		goto out;
	// keep a task only with all its children in the page: drop those
	// with a child outside, until nothing more drops (dropping a task
	// may leave its parents with a child outside)
	bool *drop = calloc(n ? n : 1, sizeof(*drop));
	if (drop == NULL) {
		rv = CPL_ENOMEM;
		goto out;
	}
	for (bool changed = true; changed && rv == 0;) {
		changed = false;
		for (size_t i = 0; i < n && rv == 0; i++) {
			if (drop[i])
				continue;
			kids.n = 0;
			if ((rv = cpl_task_children(txn, seen.v[i],
			         kid_cb, &kids)) != 0)
				break;
			for (size_t j = 0; j < kids.n; j++) {
				uint64_t *p = bsearch(&kids.v[j], seen.v, n,
				    sizeof(*seen.v), u64_cmp);
				if (p == NULL || drop[p - seen.v]) {
					drop[i] = true;
					rep->deferred++;
					changed = true;
					break;
				}
			}
		}
	}
	size_t cap = 0, nt = 0;
	rep->tasks = arena_alloc(h->a, (n ? n : 1) * sizeof(*rep->tasks));
	if (rep->tasks == NULL && rv == 0)
		rv = CPL_ENOMEM;
	for (size_t i = 0; i < n && rv == 0; i++) {
		cpl_task t;
		if (drop[i])
			continue;
		if ((rv = task_get_owned(h, txn, seen.v[i], &t)) != 0)
			break;
		if ((rep->tasks[nt] = task_wire(h, &t, t.spec)) == NULL) {
			rv = CPL_ENOMEM;
			break;
		}
		nt++;
		size_t e0 = rep->n_events;
		rv = history_events(h, txn, seen.v[i], &rep->events,
		    &rep->n_events, &cap);
		bytes += copal__task__get_packed_size(rep->tasks[nt - 1]);
		for (size_t j = e0; j < rep->n_events && rv == 0; j++)
			bytes += copal__event__get_packed_size(rep->events[j]);
		if (rv == 0 && bytes > PICK_BYTES && limit > 1)
			rv = CPL_ETOOBIG;
	}
	free(drop);
	if (rv)
		goto out;
	rep->n_tasks = nt;
	h->rep->body_case = COPAL__REPLY__BODY_ARCHIVE_PICK;
	h->rep->archive_pick = rep;
out:
	free(seen.v);
	free(kids.v);
	return rv;
}

int
h_archive_pick(hctx *h, cpl_txn *txn)
{
	const Copal__ArchivePickRequest *rq = h->req->archive_pick;
	const char *wf;
	int rv;
	if (rq->before_us == 0)
		FAIL(h, CPL_EINVAL, "archive: no time given (before_us)");
	if (rq->limit == 0 || rq->limit > ARCHIVE_MAX)
		FAIL(h, CPL_EINVAL, "archive: limit %u is not in 1..%u",
		    rq->limit, ARCHIVE_MAX);
	if ((rv = archive_wf(h, txn, rq->workflow, &wf)) != 0)
		return rv;
	// large specs or histories: fewer tasks a page (what the arena
	// holds of a larger try goes with the request)
	uint32_t limit = rq->limit;
	while ((rv = pick_page(h, txn, rq, wf, limit)) == CPL_ETOOBIG &&
	    limit > 1)
		limit /= 2;
	return rv;
}

struct purge_ctx {
	uint64_t events; // events removed with the tasks
};

static int
purge_one(cpl_txn *txn, uint64_t id, void *arg)
{
	struct purge_ctx *pc = arg;
	uint64_t k = 0;
	int rv = cpl_task_purge(txn, id, &k);
	if (rv == 0)
		pc->events += k;
	return rv;
}

int
h_archive(hctx *h, cpl_txn *txn)
{
	const Copal__ArchiveRequest *rq = h->req->archive;
	const char *wf;
	uint64_t *ids = NULL, nev = 0;
	size_t n = rq->n_ids;
	int rv;
	if (rq->before_us == 0)
		FAIL(h, CPL_EINVAL, "archive: no time given (before_us)");
	if (n == 0 || n > ARCHIVE_MAX)
		FAIL(h, CPL_EINVAL, "archive: %zu tasks, not 1..%u", n,
		    ARCHIVE_MAX);
	if (rq->n_last_seqs != n)
		FAIL(h, CPL_EINVAL, "archive: %zu tasks but %zu last events", n,
		    rq->n_last_seqs);
	if ((rv = archive_wf(h, txn, rq->workflow, &wf)) != 0)
		return rv;
	if ((ids = malloc(n * sizeof(*ids))) == NULL)
		return CPL_ENOMEM;
	memcpy(ids, rq->ids, n * sizeof(*ids));
	qsort(ids, n, sizeof(*ids), u64_cmp);
	for (size_t i = 1; i < n; i++)
		if (ids[i] == ids[i - 1]) {
			unsigned long long dup = ids[i];
			free(ids);
			FAIL(h, CPL_EINVAL, "archive: task id %llu given twice",
			    dup);
		}
	// every task as it was picked
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		uint64_t ls = 0;
		rv = cpl_archive_eligible(txn, rq->ids[i], rq->before_us, wf,
		    &ok, &ls);
		if (rv == CPL_ENOTFOUND || (rv == 0 &&
		    (!ok || ls != rq->last_seqs[i]))) {
			const char *l = task_label(h, txn, rq->ids[i]);
			free(ids);
			FAIL(h, CPL_ESTALE, "archive: task %s changed since it "
			    "was read (nothing was removed)", l);
		}
		if (rv) {
			free(ids);
			return rv;
		}
	}
	// children before parents, as h_delete
	struct purge_ctx pc = { 0 };
	rv = remove_children_first(txn, ids, n, purge_one, &pc);
	nev = pc.events;
	if (rv) {
		const char *l = task_label(h, txn, ids[0]);
		free(ids);
		FAIL(h, rv, "archive: task %s: %s%s (nothing was removed)", l,
		    cpl_strerror(rv), rv == CPL_EINUSE ? ": it has children "
		    "that are not being archived" : "");
	}
	free(ids);
	Copal__ArchiveReply *rep =
	    NEW(h, Copal__ArchiveReply, COPAL__ARCHIVE_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->removed = n;
	rep->removed_events = nev;
	h->rep->body_case = COPAL__REPLY__BODY_ARCHIVE;
	h->rep->archive = rep;
	return 0;
}
