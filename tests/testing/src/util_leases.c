// copal_testing: leases and claims in their own transactions, and driving
// a claimed task along the pipeline. See copal/testing/util.h.
#include <stdlib.h>
#include <string.h>

#include "copal/testing/util.h"

typedef struct tu_lease_arg {
	const char *owner;
	uint32_t ttl_ms;
	uint64_t id;
	uint64_t deadline;
	uint64_t nleases, ntasks;
	cpl_lease lease;
	tu_ids *ids;
} tu_lease_arg;

static int
tu_grant_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->id = 0;
	return cpl_lease_grant(txn, a->owner, a->ttl_ms, &a->id);
}

int
tu_grant(tu_env *e, const char *owner, uint32_t ttl_ms, uint64_t *id)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.owner = owner;
	a.ttl_ms = ttl_ms;
	int rv = cpl_store_write(e->s, tu_grant_cb, &a);
	if (id != NULL)
		*id = rv == 0 ? a.id : 0;
	return rv;
}

uint64_t
tu_lease(tu_env *e, uint32_t ttl_ms)
{
	uint64_t id = 0;
	int rv = tu_grant(e, "test-launcher", ttl_ms, &id);
	if (rv != 0)
		TU_FAIL("cpl_lease_grant: %s (%s)", cpl_errname(rv),
		    cpl_strerror(rv));
	return id;
}

static int
tu_renew_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->deadline = 0;
	return cpl_lease_renew(txn, a->id, a->ttl_ms, &a->deadline);
}

int
tu_renew(tu_env *e, uint64_t id, uint32_t ttl_ms, uint64_t *deadline)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.id = id;
	a.ttl_ms = ttl_ms;
	int rv = cpl_store_write(e->s, tu_renew_cb, &a);
	if (deadline != NULL)
		*deadline = rv == 0 ? a.deadline : 0;
	return rv;
}

static int
tu_lease_get_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	return cpl_lease_get(txn, a->id, &a->lease);
}

int
tu_lease_get(tu_env *e, uint64_t id, cpl_lease *out)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	memset(out, 0, sizeof *out);
	a.id = id;
	int rv = cpl_store_read(e->s, tu_lease_get_cb, &a);
	if (rv == 0)
		*out = a.lease;
	return rv;
}

static int
tu_release_cb(cpl_txn *txn, void *arg)
{
	return cpl_lease_release(txn, ((tu_lease_arg *)arg)->id);
}

int
tu_release(tu_env *e, uint64_t id)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.id = id;
	return cpl_store_write(e->s, tu_release_cb, &a);
}

static int
tu_expire_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->nleases = a->ntasks = 0;
	return cpl_lease_expire(txn, &a->nleases, &a->ntasks);
}

int
tu_expire(tu_env *e, uint64_t *nleases, uint64_t *ntasks)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	int rv = cpl_store_write(e->s, tu_expire_cb, &a);
	if (nleases != NULL)
		*nleases = rv == 0 ? a.nleases : 0;
	if (ntasks != NULL)
		*ntasks = rv == 0 ? a.ntasks : 0;
	return rv;
}

static int
tu_notices_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->ids->n = 0;
	a->ids->overflow = 0;
	return cpl_lease_take_notices(txn, a->id, tu_ids_cb, a->ids);
}

int
tu_notices(tu_env *e, uint64_t lease, tu_ids *out)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.id = lease;
	a.ids = out;
	return cpl_store_write(e->s, tu_notices_cb, &a);
}

static int
tu_claim_fn(const cpl_task *t, const uint32_t *nodes, size_t n, void *arg)
{
	tu_claimed *c = arg;
	if (c->n >= TU_MAX_CLAIM) {
		c->overflow = 1;
		return 0;
	}
	size_t i = c->n++;
	c->id[i] = t->id;
	c->attempt[i] = t->attempt;
	c->state[i] = t->state;
	c->lease[i] = t->lease;
	c->priority[i] = t->priority;
	c->nnodes[i] = n;
	for (size_t k = 0; k < n && k < TU_MAX_NODES_PER_TASK; k++)
		c->nodes[i][k] = nodes[k];
	return 0;
}

typedef struct tu_claim_arg {
	uint64_t lease;
	cpl_capacity *cap;
	cpl_capacity cap0; // the capacity as given, restored on a rerun
	cpl_node_cap *nodes0;
	tu_claimed *out;
} tu_claim_arg;

static int
tu_claim_cb(cpl_txn *txn, void *arg)
{
	tu_claim_arg *a = arg;
	// A rerun of this callback (map growth) starts from the original
	// capacity again.
	*a->cap = a->cap0;
	if (a->cap->nnodes > 0)
		memcpy(a->cap->nodes, a->nodes0,
		    a->cap->nnodes * sizeof *a->cap->nodes);
	memset(a->out, 0, sizeof *a->out);
	size_t n = 0;
	int rv = cpl_claim(txn, a->lease, a->cap, tu_claim_fn, a->out, &n);
	a->out->nclaimed = n;
	return rv;
}

int
tu_claim(tu_env *e, uint64_t lease, cpl_capacity *cap, tu_claimed *out)
{
	tu_claim_arg a;
	a.lease = lease;
	a.cap = cap;
	a.cap0 = *cap;
	a.out = out;
	a.nodes0 = NULL;
	if (cap->nnodes > 0) {
		a.nodes0 = malloc(cap->nnodes * sizeof *cap->nodes);
		if (a.nodes0 == NULL)
			return CPL_ENOMEM;
		memcpy(a.nodes0, cap->nodes, cap->nnodes * sizeof *cap->nodes);
	}
	int rv = cpl_store_write(e->s, tu_claim_cb, &a);
	free(a.nodes0);
	return rv;
}

int
tu_claim_wf(tu_env *e, uint64_t lease, const char *wf, uint32_t max,
    tu_claimed *out)
{
	size_t nn = max > 0 ? max : 1;
	cpl_node_cap *nodes = calloc(nn, sizeof *nodes);
	if (nodes == NULL)
		return CPL_ENOMEM;
	for (size_t i = 0; i < nn; i++) {
		nodes[i].free_units = CPL_NODE_UNITS;
		nodes[i].free_gpus = 64;
	}
	cpl_capacity cap;
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = max;
	cap.nodes = nodes;
	cap.nnodes = nn;
	cap.workflow = wf;
	int rv = tu_claim(e, lease, &cap, out);
	free(nodes);
	return rv;
}

int
tu_claim_n(tu_env *e, uint64_t lease, uint32_t max, tu_claimed *out)
{
	return tu_claim_wf(e, lease, NULL, max, out);
}

uint32_t
tu_claim_task(tu_env *e, uint64_t lease, const char *wf, uint64_t id)
{
	tu_claimed *c = calloc(1, sizeof *c);
	if (c == NULL)
		TU_FAIL("out of memory");
	int rv = tu_claim_wf(e, lease, wf, 1, c);
	if (rv != 0) {
		free(c);
		TU_FAIL("claim of task %llu: %s (%s)", (unsigned long long)id,
		    cpl_errname(rv), cpl_strerror(rv));
	}
	if (c->n != 1 || c->id[0] != id) {
		unsigned long long got = c->n > 0 ? c->id[0] : 0;
		size_t n = c->n;
		free(c);
		TU_FAIL("claim expected task %llu, got %zu tasks (first %llu)",
		    (unsigned long long)id, n, got);
	}
	uint32_t att = c->attempt[0];
	free(c);
	return att;
}

void
tu_walk(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    const cpl_state *path, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rv = tu_report(e, id, lease, attempt, path[i]);
		if (rv != 0)
			TU_FAIL("task %llu: report -> %s: %s (%s)",
			    (unsigned long long)id, tu_sname(path[i]),
			    cpl_errname(rv), cpl_strerror(rv));
		cpl_state s = tu_state(e, id);
		if (s != path[i])
			TU_FAIL("task %llu: after report -> %s it is %s",
			    (unsigned long long)id, tu_sname(path[i]),
			    tu_sname(s));
	}
}

void
tu_run_to(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state target)
{
	// The normal pipeline of a claimed task.
	static const cpl_state tu_pipeline[] = { CPL_STAGED_IN,
		CPL_PREPROCESSED, CPL_RUNNING, CPL_RUN_DONE, CPL_POSTPROCESSED,
		CPL_JOB_FINISHED };
	const size_t np = sizeof tu_pipeline / sizeof tu_pipeline[0];
	size_t n = 0, start = 0;
	while (n < np && tu_pipeline[n] != target)
		n++;
	if (n == np)
		TU_FAIL("tu_run_to: %s is not on the pipeline",
		    tu_sname(target));
	cpl_state now = tu_state(e, id);
	for (size_t i = 0; i < np; i++)
		if (tu_pipeline[i] == now)
			start = i + 1;
	if (start > n + 1)
		TU_FAIL("tu_run_to: task %llu is %s, past %s",
		    (unsigned long long)id, tu_sname(now), tu_sname(target));
	tu_walk(e, id, lease, attempt, tu_pipeline + start, n + 1 - start);
}

void
tu_finish(tu_env *e, uint64_t lease, const char *wf, uint64_t id)
{
	uint32_t att = tu_claim_task(e, lease, wf, id);
	tu_run_to(e, id, lease, att, CPL_JOB_FINISHED);
}
