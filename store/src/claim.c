// copal store: the claim path. Runnable tasks are taken from the run queue
// (a workflow's own queue for a filtered claim) in priority order and
// placed on the nodes a launcher offers.
#include <stdlib.h>

#include "store_impl.h"

// ------------------------------------------------------------ claims

struct placer {
	cpl_capacity *cap;
	size_t first_free; // nodes before this one have no free units
	uint32_t full_nodes; // nodes with all units free
	uint32_t idx[MAX_NODES];
};

// Places a task on the offered nodes; fills p->idx and returns how many
// nodes it took, or 0 if it does not fit.
static size_t
place(struct placer *p, const struct fit *f)
{
	cpl_capacity *cap = p->cap;
	uint32_t nodes = f->nodes ? f->nodes : 1;
	uint32_t packing = f->packing ? f->packing : 1;
	while (p->first_free < cap->nnodes &&
	    cap->nodes[p->first_free].free_units == 0)
		p->first_free++;
	if (cap->remaining_minutes && f->wall_min > cap->remaining_minutes)
		return 0;
	if (cap->max_task_nodes && nodes > cap->max_task_nodes)
		return 0;
	if (nodes == 1 && packing > 1) {
		uint32_t need = (CPL_NODE_UNITS + packing - 1) / packing;
		for (size_t i = p->first_free; i < cap->nnodes; i++) {
			cpl_node_cap *n = &cap->nodes[i];
			if (n->free_units >= need && n->free_gpus >= f->gpus) {
				if (n->free_units == CPL_NODE_UNITS)
					p->full_nodes--;
				n->free_units -= need;
				n->free_gpus -= f->gpus;
				p->idx[0] = (uint32_t)i;
				return 1;
			}
		}
		return 0;
	}
	if (nodes > p->full_nodes)
		return 0;
	size_t got = 0;
	for (size_t i = p->first_free; i < cap->nnodes && got < nodes; i++) {
		cpl_node_cap *n = &cap->nodes[i];
		if (n->free_units == CPL_NODE_UNITS && n->free_gpus >= f->gpus)
			p->idx[got++] = (uint32_t)i;
	}
	if (got < nodes)
		return 0;
	for (size_t j = 0; j < got; j++) {
		cpl_node_cap *n = &cap->nodes[p->idx[j]];
		n->free_units = 0;
		n->free_gpus -= f->gpus;
	}
	p->full_nodes -= nodes;
	return got;
}

// The first claim in long_large_first order builds its queues from runq
// (one pass over the runnable tasks); from then on every change of the
// run queue keeps them (META_LL_QUEUES).
static int
ll_queues_build(cpl_txn *t)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv;
	if ((rv = tcursor(t, DB_RUNQ, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fit f;
		if (k.mv_size != 12 || v.mv_size != sizeof(f)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&f, v.mv_data, sizeof(f));
		const uint8_t *p = k.mv_data;
		int32_t prio = (int32_t)(~rd32(p) ^ 0x80000000u);
		if ((rv = runq_ll_put(t, rd64(p + 4), prio, &f)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	if (rv == 0)
		t->meta.flags |= META_LL_QUEUES;
	return rv;
}

int
cpl_claim(cpl_txn *t, uint64_t lease, cpl_capacity *cap, cpl_claim_fn fn,
    void *arg, size_t *nclaimed)
{
	MDB_cursor *c;
	MDB_val k, v;
	struct placer *p;
	uint32_t wf = 0;
	size_t n = 0, skipped = 0;
	int rc, rv;
	if (t == NULL || !t->write || cap == NULL || cap->max_tasks == 0 ||
	    (cap->nnodes > 0 && cap->nodes == NULL) || cap->nnodes > MAX_NODES ||
	    (cap->order != CPL_ORDER_FIFO &&
	        cap->order != CPL_ORDER_LONG_LARGE_FIRST))
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = cs_lease_live(t, lease)) != 0)
		return rv;
	if (cap->workflow) {
		rv = cs_name_id(t, 'w', cap->workflow, false, &wf);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL) {
			if (nclaimed)
				*nclaimed = 0;
			return 0;
		}
		if (rv)
			return rv;
	}
	if ((p = malloc(sizeof(*p))) == NULL)
		return CPL_ENOMEM;
	p->cap = cap;
	p->first_free = 0;
	p->full_nodes = 0;
	for (size_t i = 0; i < cap->nnodes; i++) {
		if (cap->nodes[i].free_units > CPL_NODE_UNITS) {
			free(p);
			return CPL_EINVAL;
		}
		if (cap->nodes[i].free_units == CPL_NODE_UNITS)
			p->full_nodes++;
	}
	// A filtered claim walks its workflow's queue (wf(4) ...), the others
	// the whole queue; fifo walks by ~prio(4) id, long_large_first by
	// ~prio(4) ~size(8) id. The entries of the other queues go too.
	bool ll = cap->order == CPL_ORDER_LONG_LARGE_FIRST;
	if (ll && !(t->meta.flags & META_LL_QUEUES) &&
	    (rv = ll_queues_build(t)) != 0) {
		free(p);
		return rv;
	}
	int db = ll ? (wf ? DB_WRUNQ_LL : DB_RUNQ_LL) : (wf ? DB_WRUNQ : DB_RUNQ);
	size_t kl = (wf ? 4 : 0) + (ll ? 20 : 12);
	if ((rv = tcursor(t, db, &c)) != 0) {
		free(p);
		return rv;
	}
	// Skipping tasks that do not fit is bounded so that a claim never
	// walks a million-entry queue.
	size_t max_skip = 4096 + 4 * (size_t)cap->max_tasks;
	MDB_cursor_op op = wf ? MDB_SET_RANGE : MDB_FIRST;
	uint8_t seek[24];
	be32(seek, wf);
	memset(seek + 4, 0, sizeof(seek) - 4);
	rc = 0;
	while (n < cap->max_tasks && skipped < max_skip) {
		struct fit f;
		size_t got;
		if (op == MDB_SET_RANGE) {
			k.mv_data = seek;
			k.mv_size = kl;
		}
		if ((rc = mdb_cursor_get(c, &k, &v, op)) != 0)
			break;
		op = MDB_NEXT;
		if (k.mv_size != kl || v.mv_size != sizeof(f)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (wf && rd32(k.mv_data) != wf)
			break; // past the workflow's queue
		memcpy(&f, v.mv_data, sizeof(f));
		if ((got = place(p, &f)) == 0) {
			skipped++;
			continue;
		}
		// the queue key without its workflow: ~prio(4) [~size(8)] id(8)
		const uint8_t *rk = (const uint8_t *)k.mv_data + (wf ? 4 : 0);
		uint64_t id = rd64(rk + (ll ? 12 : 4));
		int32_t prio = (int32_t)(~rd32(rk) ^ 0x80000000u);
		struct srec r;
		uint8_t lk[16];
		// After the delete, seek to the deleted key: that lands on its
		// successor, the next candidate.
		memcpy(seek, k.mv_data, kl);
		op = MDB_SET_RANGE;
		if ((rc = mdb_cursor_del(c, 0)) != 0) {
			rv = fail(t, map_mdb(rc));
			rc = 0;
			break;
		}
		if ((rv = runq_del_but(t, id, prio, &f, db)) != 0)
			break;
		if ((rv = srec_get(t, id, &r)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		r.lease = lease;
		r.attempt++;
		pair_key(lk, lease, id);
		if ((rv = srec_put(t, id, &r)) != 0 ||
		    (rv = tput(t, DB_LEASE_IDX, lk, 16, "", 0, 0)) != 0)
			break;
		n++;
		if (fn != NULL) {
			cpl_task tk;
			task_fill(&tk, id, &r);
			if ((rv = fn(&tk, p->idx, got, arg)) != 0) {
				rv = fail(t, rv);
				break;
			}
		}
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	free(p);
	if (rv == 0 && nclaimed)
		*nclaimed = n;
	return rv;
}

