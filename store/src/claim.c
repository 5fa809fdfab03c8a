// copal store: the claim path. Runnable tasks are taken from the run queue
// (a workflow's own queue for a filtered claim) in priority order and
// placed on the nodes a launcher offers.
#include <stdlib.h>

#include "copal/params.h"
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
	uint32_t whole = cap->parts ? CPL_NODE_PARTS : CPL_NODE_UNITS;
	if (nodes == 1 && packing > 1) {
		uint32_t need = cap->parts ? cpl_packing_parts(packing) :
		    (CPL_NODE_UNITS + packing - 1) / packing;
		for (size_t i = p->first_free; i < cap->nnodes; i++) {
			cpl_node_cap *n = &cap->nodes[i];
			if (n->free_units >= need && n->free_gpus >= f->gpus) {
				if (n->free_units == whole)
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
		if (n->free_units == whole && n->free_gpus >= f->gpus)
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
// and mrunq (one pass over the runnable tasks); from then on every change
// of the run queues keeps them (META_LL_QUEUES).
static int
ll_queues_build(cpl_txn *t)
{
	static const int dbs[2] = { DB_RUNQ, DB_MRUNQ };
	MDB_cursor *c;
	MDB_val k, v;
	int rc = MDB_NOTFOUND, rv = 0;
	for (int i = 0; i < 2 && rv == 0; i++) {
		// runq: ~prio(4) id(8); mrunq: nodes(4) ~prio(4) id(8)
		size_t off = i ? 4 : 0;
		if ((rv = tcursor(t, dbs[i], &c)) != 0)
			return rv;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct fit f;
			if (k.mv_size != off + 12 || v.mv_size != sizeof(f)) {
				rv = fail(t, CPL_ECORRUPT);
				break;
			}
			memcpy(&f, v.mv_data, sizeof(f));
			const uint8_t *p = (const uint8_t *)k.mv_data + off;
			int32_t prio = (int32_t)(~rd32(p) ^ 0x80000000u);
			if ((rv = runq_ll_put(t, rd64(p + 4), prio, &f)) != 0)
				break;
		}
		mdb_cursor_close(c);
		if (rv == 0 && rc != MDB_NOTFOUND)
			rv = fail(t, map_mdb(rc));
	}
	if (rv == 0)
		t->meta.flags |= META_LL_QUEUES;
	return rv;
}

// One run queue a claim walks: runq or wrunq (tasks of one node), the
// part of mrunq or wmrunq of one node count; or, alone: for a
// tag-filtered claim the tag's part of tag_runq, for a long_large_first
// one runq_ll or the workflow's part of wrunq_ll (every node count, in
// their order). Its head is the next candidate, read by key so that deletes through other queues never
// leave a cursor on a stale position.
struct src {
	int db;
	size_t plen, kl;       // key prefix (workflow, node count or tag),
	                       // key length
	uint32_t nodes;        // 1 for tag_runq and the long_large_first
	                       // queues (their node counts are mixed)
	bool live;
	uint8_t key[CPL_TAG_MAX + 1 + 12]; // the head's key; its prefix stays
	struct fit f;
};

// A claim merges at most this many queues (node counts); higher node
// counts wait for another claim.
#define MAX_SRCS 64

// Reads the first entry of s's queue at or after s->key (after it with
// skip): its head, or not live past its prefix.
static int
src_fill(cpl_txn *t, MDB_cursor *c, struct src *s, bool skip)
{
	MDB_val k = { s->kl, s->key }, v;
	int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && skip && k.mv_size == s->kl &&
	    memcmp(k.mv_data, s->key, s->kl) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	s->live = false;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return fail(t, map_mdb(rc));
	if (k.mv_size < s->plen || memcmp(k.mv_data, s->key, s->plen) != 0)
		return 0; // past its prefix
	if (k.mv_size != s->kl || v.mv_size != sizeof(s->f))
		return fail(t, CPL_ECORRUPT);
	memcpy(s->key, k.mv_data, s->kl);
	memcpy(&s->f, v.mv_data, sizeof(s->f));
	s->live = true;
	return 0;
}

// The queues of a claim: the one-node queue, then, if the offered nodes
// can take tasks of more than one, each node count up to limit that has
// runnable tasks (found by seeking from count to count). wf: the
// workflow filter (0: none).
static int
srcs_open(cpl_txn *t, MDB_cursor *cs[2], uint32_t wf, uint32_t limit,
    const cpl_capacity *cap, struct src *v, size_t *nv)
{
	size_t pre = wf ? 4 : 0;
	int rv;
	struct src *s = &v[0];
	memset(s, 0, sizeof(*s));
	if (cap->ntags) {
		// the first tag's queue (tag NUL ~prio(4) id) holds every
		// workflow and node count: one source, the rest point checks
		s->db = DB_TAG_RUNQ;
		s->plen = cs_tag_prefix(s->key, cap->tags[0]);
		s->kl = s->plen + 12;
		s->nodes = 1;
		*nv = 1;
		return src_fill(t, cs[0], s, false);
	}
	if (cap->order == CPL_ORDER_LONG_LARGE_FIRST) { // (no tags)
		// (wf(4)) ~prio(4) ~size(8) id: one source whose order is
		// the policy; tasks too big for the nodes are skipped
		s->db = wf ? DB_WRUNQ_LL : DB_RUNQ_LL;
		s->plen = pre;
		s->kl = pre + 20;
		s->nodes = 1;
		be32(s->key, wf);
		*nv = 1;
		return src_fill(t, cs[0], s, false);
	}
	s->db = wf ? DB_WRUNQ : DB_RUNQ;
	s->plen = pre;
	s->kl = pre + 12;
	s->nodes = 1;
	be32(s->key, wf);
	if ((rv = src_fill(t, cs[0], s, false)) != 0)
		return rv;
	*nv = 1;
	for (uint32_t n = 2; n <= limit && *nv < MAX_SRCS;) {
		s = &v[*nv];
		memset(s, 0, sizeof(*s));
		s->db = wf ? DB_WMRUNQ : DB_MRUNQ;
		s->plen = pre; // the workflow only, while seeking a count
		s->kl = pre + 16;
		be32(s->key, wf);
		be32(s->key + pre, n);
		if ((rv = src_fill(t, cs[1], s, false)) != 0)
			return rv;
		if (!s->live)
			break;
		s->nodes = rd32(s->key + pre);
		if (s->nodes > limit)
			break;
		s->plen = pre + 4; // from here: this count only
		(*nv)++;
		if (s->nodes == UINT32_MAX)
			break;
		n = s->nodes + 1;
	}
	return 0;
}

// The other queue's key of a task (wrunq for runq, mrunq for wmrunq, ...)
static size_t
pair_of(const struct src *s, uint32_t wf, int *db, uint8_t out[20])
{
	bool multi = s->db == DB_MRUNQ || s->db == DB_WMRUNQ;
	if (wf) { // filtered: drop the workflow
		*db = multi ? DB_MRUNQ : DB_RUNQ;
		memcpy(out, s->key + 4, s->kl - 4);
		return s->kl - 4;
	}
	*db = multi ? DB_WMRUNQ : DB_WRUNQ;
	be32(out, s->f.wf);
	memcpy(out + 4, s->key, s->kl);
	return s->kl + 4;
}

int
cpl_claim(cpl_txn *t, uint64_t lease, cpl_capacity *cap, cpl_claim_fn fn,
    void *arg, size_t *nclaimed)
{
	struct placer *p;
	uint32_t wf = 0;
	size_t n = 0, skipped = 0;
	int rv;
	if (t == NULL || !t->write || cap == NULL || cap->max_tasks == 0 ||
	    (cap->nnodes > 0 && cap->nodes == NULL) || cap->nnodes > MAX_NODES ||
	    (cap->order != CPL_ORDER_FIFO &&
	        cap->order != CPL_ORDER_LONG_LARGE_FIRST))
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (cap->ntags && cap->tags == NULL)
		return CPL_EINVAL;
	for (size_t i = 0; i < cap->ntags; i++)
		if (cpl_tag_check(cap->tags[i], NULL, 0) != 0)
			return CPL_EINVAL;
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
	uint32_t whole = cap->parts ? CPL_NODE_PARTS : CPL_NODE_UNITS;
	for (size_t i = 0; i < cap->nnodes; i++) {
		if (cap->nodes[i].free_units > whole) {
			free(p);
			return CPL_EINVAL;
		}
		if (cap->nodes[i].free_units == whole)
			p->full_nodes++;
	}
	// A tag-filtered claim walks its first tag's queue (tag_runq), a
	// long_large_first one runq_ll (its workflow's part of wrunq_ll); a
	// workflow-filtered one its workflow's queues (wrunq, wmrunq), the
	// others the whole ones (runq, mrunq); only node counts that the
	// offered nodes can take, merged in priority order: tasks that
	// cannot fit by their node count never hide those that can.
	uint32_t limit = p->full_nodes;
	if (cap->max_task_nodes && cap->max_task_nodes < limit)
		limit = cap->max_task_nodes;
	struct src *srcs = malloc(MAX_SRCS * sizeof(*srcs));
	MDB_cursor *cs[2] = { NULL, NULL };
	size_t nsrc = 0;
	if (srcs == NULL) {
		free(p);
		return CPL_ENOMEM;
	}
	bool ll = !cap->ntags && cap->order == CPL_ORDER_LONG_LARGE_FIRST;
	if (ll && !(t->meta.flags & META_LL_QUEUES) &&
	    (rv = ll_queues_build(t)) != 0)
		goto done;
	int db0 = cap->ntags ? DB_TAG_RUNQ : ll ? (wf ? DB_WRUNQ_LL :
	    DB_RUNQ_LL) : wf ? DB_WRUNQ : DB_RUNQ;
	if ((rv = tcursor(t, db0, &cs[0])) != 0 ||
	    (rv = tcursor(t, wf ? DB_WMRUNQ : DB_MRUNQ, &cs[1])) != 0 ||
	    (rv = srcs_open(t, cs, wf, limit, cap, srcs, &nsrc)) != 0)
		goto done;
	// Skipping tasks that do not fit otherwise (GPUs, wall time, a
	// share of a node) is bounded so that a claim never walks a
	// million-entry queue.
	size_t max_skip = 4096 + 4 * (size_t)cap->max_tasks;
	while (n < cap->max_tasks && skipped < max_skip) {
		struct src *s = NULL;
		for (size_t i = 0; i < nsrc; i++) {
			struct src *x = &srcs[i];
			if (x->live && x->nodes > 1 && x->nodes > p->full_nodes)
				x->live = false; // no longer fits: not walked
			if (x->live && (s == NULL || memcmp(x->key + x->kl - 12,
			    s->key + s->kl - 12, 12) < 0))
				s = x;
		}
		if (s == NULL)
			break;
		MDB_cursor *c = cs[s->db == DB_MRUNQ || s->db == DB_WMRUNQ];
		uint64_t id = rd64(s->key + s->kl - 8);
		size_t got;
		if (s->db == DB_TAG_RUNQ) {
			// the workflow and the other tags are point checks
			bool has = !wf || s->f.wf == wf;
			for (size_t i = 1; i < cap->ntags && has && rv == 0; i++)
				rv = cs_tag_has(t, id, cap->tags[i], &has);
			if (rv)
				break;
			if (!has) {
				skipped++;
				if ((rv = src_fill(t, c, s, true)) != 0)
					break;
				continue;
			}
		}
		if ((got = place(p, &s->f)) == 0) {
			skipped++;
			if ((rv = src_fill(t, c, s, true)) != 0)
				break;
			continue;
		}
		struct srec r;
		uint8_t lk[16], ok[20];
		int odb;
		if (s->db == DB_TAG_RUNQ || ll) {
			// every queue's entry, this one's too, by its record
			if ((rv = srec_get(t, id, &r)) != 0) {
				rv = fail(t, CPL_ECORRUPT);
				break;
			}
			if ((rv = runq_del(t, id, &r)) != 0)
				break;
		} else {
			size_t okl = pair_of(s, wf, &odb, ok);
			if ((rv = tdel(t, s->db, s->key, s->kl)) != 0 ||
			    (rv = tdel(t, odb, ok, okl)) != 0)
				break;
			if ((rv = srec_get(t, id, &r)) != 0) {
				rv = fail(t, CPL_ECORRUPT);
				break;
			}
			if ((t->meta.flags & META_LL_QUEUES) &&
			    (rv = runq_ll_del(t, id, r.priority, &s->f)) != 0)
				break;
			if ((r.flags & SF_TAGGED) &&
			    (rv = cs_tag_runq(t, id, &r, false)) != 0)
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
		// the deleted key's successor is the next candidate
		if ((rv = src_fill(t, c, s, false)) != 0)
			break;
	}
done:
	for (int i = 0; i < 2; i++)
		if (cs[i])
			mdb_cursor_close(cs[i]);
	free(srcs);
	free(p);
	if (rv == 0 && nclaimed)
		*nclaimed = n;
	return rv;
}

