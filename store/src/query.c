// copal store: queries: task listing with filters and paging, counts by
// state, and the runnable backlog against queue limits.
#include <stdlib.h>

#include "copal/params.h"
#include "store_impl.h"

// ------------------------------------------------------------ queries

static bool
filter_match_rec(const cpl_filter *f, const struct srec *r, uint32_t wf,
    uint32_t app)
{
	if (f->states && !(f->states & BIT(r->state)))
		return false;
	if (f->workflow && r->wf != wf)
		return false;
	if (f->application && r->app != app)
		return false;
	if (f->min_nodes && r->nodes < f->min_nodes)
		return false;
	if (f->max_nodes && r->nodes > f->max_nodes)
		return false;
	return true;
}

struct qctx {
	cpl_txn *t;
	const cpl_filter *f;
	uint32_t wf, app;
	uint64_t after;
	size_t limit, n;
	unsigned flags;
	cpl_task_fn fn;
	void *arg;
	bool *more;
	uint8_t pb[16];
	size_t pnb;
	int phalf;
	size_t tag_from; // tags before this one are known to match
	// cursors kept across candidates (in id order: see cget)
	MDB_cursor *sc;      // state records
	MDB_cursor *tc[4];   // tag_idx, one per checked tag (the rest share
	                     // the last)
	bool skip_gone; // the index may name deleted tasks (bj_task)
};

#define Q_STOP_LIMIT 0x7fff0001 // internal: limit reached

// Considers one candidate id; returns non-zero to stop.
static int
q_consider(struct qctx *q, uint64_t id)
{
	struct srec r;
	cpl_task tk;
	int rv;
	if (id <= q->after)
		return 0;
	// the other tags first: point checks that need no record
	for (size_t i = q->tag_from; i < q->f->ntags; i++) {
		bool has;
		size_t ci = i - q->tag_from < 4 ? i - q->tag_from : 3;
		if ((rv = cs_tag_has_c(q->t, &q->tc[ci], id, q->f->tags[i],
		         &has)) != 0)
			return rv;
		if (!has)
			return 0;
	}
	{
		uint8_t k[8];
		MDB_val v;
		be64(k, id);
		rv = cget(q->t, &q->sc, DB_STATE, k, 8, &v);
		if (rv == 0 && v.mv_size != sizeof(r))
			rv = CPL_ENOTFOUND;
		if (rv == CPL_ENOTFOUND && q->skip_gone)
			return 0;
		if (rv)
			return rv == CPL_ENOTFOUND ? fail(q->t, CPL_ECORRUPT) : rv;
		memcpy(&r, v.mv_data, sizeof(r));
	}
	if (!filter_match_rec(q->f, &r, q->wf, q->app))
		return 0;
	if (q->f->uuid_prefix && !prefix_match(r.uuid, q->pb, q->pnb, q->phalf))
		return 0;
	task_fill(&tk, id, &r);
	if (q->f->name || (q->flags & CPL_GET_SPEC)) {
		if ((rv = cs_spec_read(q->t, id, &tk.spec)) != 0)
			return rv;
		if (q->f->name && strcmp(tk.spec->name, q->f->name) != 0) {
			cpl_task_clear(&tk);
			return 0;
		}
		if (!(q->flags & CPL_GET_SPEC)) {
			cpl_task_clear(&tk);
		}
	}
	if (q->limit && q->n == q->limit) {
		cpl_task_clear(&tk);
		if (q->more)
			*q->more = true;
		return Q_STOP_LIMIT;
	}
	q->n++;
	rv = q->fn(&tk, q->arg);
	cpl_task_clear(&tk);
	return rv;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

// Walks ids from a (prefix || id) index, ids > after, in id order.
static int
q_walk_idx(struct qctx *q, int db, const uint8_t *pre, size_t plen)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[CPL_TAG_MAX + 1 + 8];
	bool ok;
	int rv, frv = 0;
	memcpy(start, pre, plen);
	be64(start + plen, q->after + 1);
	if ((rv = tcursor(q->t, db, &c)) != 0)
		return rv;
	for (rv = crange(q->t, c, MDB_SET_RANGE, pre, plen, start, plen + 8,
	         &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(q->t, c, MDB_NEXT, pre, plen, NULL, 0, &k, &v, &ok)) {
		if ((frv = q_consider(q, rd64((uint8_t *)k.mv_data + plen))) !=
		    0)
			break;
	}
	mdb_cursor_close(c);
	return rv ? rv : frv;
}

// Merges the state index ranges of several states in id order.
static int
q_walk_states(struct qctx *q)
{
	MDB_cursor *c[CPL_NSTATES];
	uint64_t head[CPL_NSTATES];
	bool live[CPL_NSTATES];
	int ns = 0, rv = 0, frv = 0;
	uint8_t st[CPL_NSTATES];
	for (int s = 0; s < CPL_NSTATES; s++) {
		if (!(q->f->states & BIT(s)))
			continue;
		MDB_val k, v;
		uint8_t start[9];
		bool ok;
		st_key(start, (cpl_state)s, q->after + 1);
		if ((rv = tcursor(q->t, DB_ST_IDX, &c[ns])) != 0)
			break;
		st[ns] = (uint8_t)s;
		rv = crange(q->t, c[ns], MDB_SET_RANGE, &st[ns], 1, start, 9,
		    &k, &v, &ok);
		live[ns] = rv == 0 && ok;
		if (live[ns])
			head[ns] = rd64((uint8_t *)k.mv_data + 1);
		ns++;
		if (rv)
			break;
	}
	while (rv == 0) {
		int best = -1;
		for (int i = 0; i < ns; i++)
			if (live[i] && (best < 0 || head[i] < head[best]))
				best = i;
		if (best < 0)
			break;
		if ((frv = q_consider(q, head[best])) != 0)
			break;
		MDB_val k, v;
		bool ok;
		rv = crange(q->t, c[best], MDB_NEXT, &st[best], 1, NULL, 0, &k,
		    &v, &ok);
		live[best] = rv == 0 && ok;
		if (live[best])
			head[best] = rd64((uint8_t *)k.mv_data + 1);
	}
	for (int i = 0; i < ns; i++)
		mdb_cursor_close(c[i]);
	return rv ? rv : frv;
}

int
cpl_query(cpl_txn *t, const cpl_filter *f, uint64_t after_id, size_t limit,
    unsigned flags, cpl_task_fn fn, void *arg, bool *more)
{
	static const cpl_filter all = { 0, NULL, NULL, NULL, NULL, 0, 0, NULL,
		0, 0 };
	struct qctx q;
	int rv;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if (f == NULL)
		f = &all;
	if (more)
		*more = false;
	memset(&q, 0, sizeof(q));
	q.t = t;
	q.f = f;
	q.after = after_id;
	q.limit = limit;
	q.flags = flags;
	q.fn = fn;
	q.arg = arg;
	q.more = more;
	if (f->states & ~((1u << CPL_NSTATES) - 1))
		return CPL_EINVAL;
	if (f->ntags && f->tags == NULL)
		return CPL_EINVAL;
	for (size_t i = 0; i < f->ntags; i++)
		if (cpl_tag_check(f->tags[i], NULL, 0) != 0)
			return CPL_EINVAL;
	if (f->uuid_prefix &&
	    (rv = cs_parse_prefix(f->uuid_prefix, q.pb, &q.pnb, &q.phalf)) != 0)
		return rv;
	if (f->workflow) {
		rv = cs_name_id(t, 'w', f->workflow, false, &q.wf);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL)
			return 0; // no such workflow: nothing matches
		if (rv)
			return rv;
	}
	if (f->application) {
		rv = cs_name_id(t, 'a', f->application, false, &q.app);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL)
			return 0;
		if (rv)
			return rv;
	}
	uint8_t pre[8];
	if (f->batch_job) {
		// the job's own index: usually far fewer tasks than the rest
		// would select. It keeps the tasks a job ran after they are
		// deleted (a record of the job, as its counters are)
		be64(pre, f->batch_job);
		q.skip_gone = true;
		rv = q_walk_idx(&q, DB_BJ_TASK, pre, 8);
	} else if (f->uuid_prefix) {
		// collect the matching ids, then visit them in id order
		cpl_ids ids = { NULL, 0, 0 };
		rv = cs_uuid_walk(t, f->uuid_prefix, cs_idvec_cb, &ids);
		if (rv == 0) {
			if (ids.n > 1)
				qsort(ids.v, ids.n, sizeof(uint64_t), cmp_u64);
			for (size_t i = 0; i < ids.n && rv == 0; i++)
				rv = q_consider(&q, ids.v[i]);
		}
		free(ids.v);
	} else if (f->ntags) {
		// a tag is the most selective index but a uuid prefix
		uint8_t tp[CPL_TAG_MAX + 1];
		size_t pl = cs_tag_prefix(tp, f->tags[0]);
		q.tag_from = 1;
		rv = q_walk_idx(&q, DB_TAG_IDX, tp, pl);
	} else if (f->states) {
		rv = q_walk_states(&q);
	} else if (f->workflow) {
		be32(pre, q.wf);
		rv = q_walk_idx(&q, DB_WF_IDX, pre, 4);
	} else if (f->application) {
		be32(pre, q.app);
		rv = q_walk_idx(&q, DB_APP_IDX, pre, 4);
	} else {
		rv = q_walk_idx(&q, DB_STATE, pre, 0);
	}
	if (q.sc)
		mdb_cursor_close(q.sc);
	for (int i = 0; i < 4; i++)
		if (q.tc[i])
			mdb_cursor_close(q.tc[i]);
	return rv == Q_STOP_LIMIT ? 0 : rv;
}

int
cpl_count_states(cpl_txn *t, uint64_t counts[CPL_NSTATES])
{
	if (t == NULL || counts == NULL)
		return CPL_EINVAL;
	memcpy(counts, t->meta.counts, sizeof(t->meta.counts));
	return 0;
}

uint64_t
cpl_count_state(cpl_txn *t, cpl_state s)
{
	if (t == NULL || (unsigned)s >= CPL_NSTATES)
		return 0;
	return t->meta.counts[s];
}

// ------------------------------------------------------------ backlog

// Keeps the max_unfit smallest ids seen, sorted.
static void
keep_smallest(cpl_backlog *b, uint64_t id)
{
	size_t n = b->nunfit_ids;
	if (b->max_unfit == 0)
		return;
	if (n == b->max_unfit) {
		if (id >= b->unfit_ids[n - 1])
			return;
		n--; // the largest falls out
	}
	size_t i = n;
	while (i > 0 && b->unfit_ids[i - 1] > id) {
		b->unfit_ids[i] = b->unfit_ids[i - 1];
		i--;
	}
	b->unfit_ids[i] = id;
	b->nunfit_ids = n + 1;
}

static bool
limit_fits(const cpl_queue_limit *q, const struct fit *f)
{
	uint32_t nodes = f->nodes ? f->nodes : 1;
	return nodes <= q->max_nodes && f->gpus <= q->gpus_per_node &&
	    (q->max_minutes == 0 || f->wall_min <= q->max_minutes);
}

// Adds one run queue (runq: key length 12, mrunq: 16) to a backlog.
static int
backlog_walk(cpl_txn *t, int db, size_t kl, uint32_t wf,
    const cpl_queue_limit *limits, size_t nlimits, cpl_backlog *out)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv = 0;
	if ((rv = tcursor(t, db, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fit f;
		if (k.mv_size != kl || v.mv_size != sizeof(f)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&f, v.mv_data, sizeof(f));
		if (wf && f.wf != wf)
			continue;
		bool ok = nlimits == 0;
		for (size_t i = 0; i < nlimits && !ok; i++)
			ok = limit_fits(&limits[i], &f);
		if (!ok) {
			// the run queue is in priority order; ids are kept
			// smallest first
			uint64_t id = rd64((uint8_t *)k.mv_data + kl - 8);
			out->unfit++;
			keep_smallest(out, id);
			continue;
		}
		uint32_t nodes = f.nodes ? f.nodes : 1;
		uint32_t packing = f.packing ? f.packing : 1;
		out->tasks++;
		out->node_units += nodes == 1 ?
		    (CPL_NODE_UNITS + packing - 1) / packing :
		    (uint64_t)nodes * CPL_NODE_UNITS;
		if (nodes > out->max_nodes)
			out->max_nodes = nodes;
		if (f.wall_min > out->max_minutes)
			out->max_minutes = f.wall_min;
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

int
cpl_backlog_get(cpl_txn *t, const char *workflow,
    const cpl_queue_limit *limits, size_t nlimits, cpl_backlog *out)
{
	uint32_t wf = 0;
	int rv;
	if (t == NULL || out == NULL || (nlimits && limits == NULL) ||
	    (out->max_unfit && out->unfit_ids == NULL))
		return CPL_EINVAL;
	out->tasks = out->node_units = out->unfit = 0;
	out->max_nodes = out->max_minutes = 0;
	out->nunfit_ids = 0;
	if (workflow && workflow[0]) {
		rv = cs_name_id(t, 'w', workflow, false, &wf);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL)
			return 0; // no such workflow: no backlog
		if (rv)
			return rv;
	}
	// tasks of one node (runq), then of more (mrunq, by node count)
	if ((rv = backlog_walk(t, DB_RUNQ, 12, wf, limits, nlimits, out)) != 0)
		return rv;
	return backlog_walk(t, DB_MRUNQ, 16, wf, limits, nlimits, out);
}

