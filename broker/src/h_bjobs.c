// Handlers of batch jobs (add, update, list) and of the backlog the
// batch-job service sizes its jobs by.
#include <inttypes.h>
#include <string.h>

#include "handlers.h"
#include "copal/conf.h"

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

int
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

int
h_batch_update(hctx *h, cpl_txn *txn)
{
	const Copal__BatchJobUpdateRequest *u = h->req->batch_update;
	Copal__BatchJob *out = NULL, *old = NULL;
	cpl_bjob_change c = { u->id, u->state, u->scheduler_id, u->message,
		u->sched_state, u->script, u->sched_reason };
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
	if (out->state == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
	    out->state == COPAL__BATCH_JOB_STATE__BJ_CANCELLED) {
		// the job is gone and its launchers with it: leases they did
		// not give back are ended now, not after their TTL, so that
		// their tasks run elsewhere
		char msg[96];
		uint64_t nl = 0, nt = 0;
		snprintf(msg, sizeof(msg), "batch job %" PRIu64 " %s", u->id,
		    out->state == COPAL__BATCH_JOB_STATE__BJ_CANCELLED ?
		    "cancelled" : "ended");
		if ((rv = cpl_lease_end_bjob(txn, u->id, msg, &nl, &nt)) != 0)
			return rv;
		if (nl)
			LOG(LOG_INFO, "lease", "%s: ended %" PRIu64 " lease%s, "
			    "%" PRIu64 " task%s", msg, nl, nl == 1 ? "" : "s",
			    nt, nt == 1 ? "" : "s");
	}
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
	cpl_txn *txn;
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
	int rv = cpl_bjob_counts(c->txn, j->id, &copy->tasks_ran,
	    &copy->tasks_running, &copy->tasks_failed);
	if (rv) {
		copal__batch_job__free_unpacked(copy, NULL);
		return rv;
	}
	if (arena_defer(c->h->a, free_bjob, copy) != 0)
		return CPL_ENOMEM;
	c->rep->jobs[c->rep->n_jobs++] = copy;
	return 0;
}

int
h_batch_list(hctx *h, cpl_txn *txn)
{
	Copal__BatchJobListReply *rep = NEW(h, Copal__BatchJobListReply,
	    COPAL__BATCH_JOB_LIST_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	struct bjob_ctx c = { h, txn, h->req->batch_list, rep, 0 };
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

int
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
