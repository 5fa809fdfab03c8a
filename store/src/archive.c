// copal store: archiving finished tasks (copal db archive). A task leaves
// the store with its whole history: its records, every index entry, its
// links, its events and its entries of the batch-job index. The event log
// then has gaps; meta "archived" counts the events removed so that
// cpl_store_check still accounts for every seq ever given.
#include <stdlib.h>

#include "store_impl.h"

// How deep the children of a task are followed to decide that it may go
// (a deeper family waits for a later run).
#define ELIGIBLE_DEPTH 64

// The states a task never leaves by itself are the state machine's final
// ones (cpl_state_is_final): RESTART_READY by a user can bring one back,
// but only while it is in the store.

// The descendants of one task already found eligible: in a DAG a task is
// reached by every path to it, and without this a chain of k diamonds
// would be walked 2^k times (by the writer, while every write waits).
struct seen {
	uint64_t *v; // open addressing, 0 = empty (task ids start at 1)
	size_t cap, n;
};

static bool
seen_has(const struct seen *s, uint64_t id)
{
	if (s->cap == 0)
		return false;
	for (size_t i = (size_t)(id * 0x9E3779B97F4A7C15ull) & (s->cap - 1);;
	     i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == id)
			return true;
		if (s->v[i] == 0)
			return false;
	}
}

static int
seen_add(struct seen *s, uint64_t id)
{
	if (2 * (s->n + 1) > s->cap) {
		struct seen g = { calloc(s->cap ? 2 * s->cap : 64,
			sizeof(uint64_t)), s->cap ? 2 * s->cap : 64, 0 };
		if (g.v == NULL)
			return CPL_ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i] != 0)
				(void)seen_add(&g, s->v[i]);
		free(s->v);
		*s = g;
	}
	size_t i = (size_t)(id * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
	while (s->v[i] != 0 && s->v[i] != id)
		i = (i + 1) & (s->cap - 1);
	if (s->v[i] == 0) {
		s->v[i] = id;
		s->n++;
	}
	return 0;
}

// The seq and time of a task's last event (0, 0: none).
static int
last_event(cpl_txn *t, uint64_t id, uint64_t *seq, uint64_t *time)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16];
	int rc, rv = 0;
	*seq = 0;
	*time = 0;
	if ((rv = tcursor(t, DB_TASK_EV, &c)) != 0)
		return rv;
	pair_key(start, id + 1, 0);
	k.mv_size = 16;
	k.mv_data = start;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 16 && rd64(k.mv_data) == id)
		*seq = rd64((uint8_t *)k.mv_data + 8);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	if (rv || *seq == 0)
		return rv;
	uint8_t ek[8];
	struct evrec e;
	be64(ek, *seq);
	if ((rv = tget(t, DB_EVENT, ek, 8, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	if (v.mv_size < sizeof(e))
		return fail(t, CPL_ECORRUPT);
	memcpy(&e, v.mv_data, sizeof(e));
	*time = e.time;
	return 0;
}

static int
eligible(cpl_txn *t, uint64_t id, uint64_t before, bool any_wf, uint32_t wf,
    int depth, struct seen *seen, bool *ok, uint64_t *last_seq)
{
	struct srec r;
	uint64_t seq, time;
	cpl_ids kids = { NULL, 0, 0 };
	int rv;
	*ok = false;
	if (depth > ELIGIBLE_DEPTH)
		return 0;
	if (last_seq == NULL && seen_has(seen, id)) {
		*ok = true;
		return 0;
	}
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (!cpl_state_is_final((cpl_state)r.state) || r.lease != 0 ||
	    (!any_wf && r.wf != wf))
		return 0;
	if ((rv = last_event(t, id, &seq, &time)) != 0)
		return rv;
	if (time >= before || r.changed_us >= before)
		return 0;
	if (last_seq)
		*last_seq = seq;
	if ((rv = cs_pair_walk(t, DB_CHILD, id, cs_idvec_cb, &kids)) != 0) {
		free(kids.v);
		return rv;
	}
	bool all = true;
	for (size_t i = 0; i < kids.n && all && rv == 0; i++)
		rv = eligible(t, kids.v[i], before, any_wf, wf, depth + 1,
		    seen, &all, NULL);
	free(kids.v);
	*ok = rv == 0 && all;
	if (*ok && last_seq == NULL)
		rv = seen_add(seen, id);
	return rv;
}

int
cpl_archive_eligible(cpl_txn *t, uint64_t id, uint64_t before_us,
    const char *wf, bool *ok, uint64_t *last_seq)
{
	uint32_t wid = 0;
	int rv;
	if (t == NULL || ok == NULL)
		return CPL_EINVAL;
	*ok = false;
	if (last_seq)
		*last_seq = 0;
	if (wf && *wf && (rv = cs_name_id(t, 'w', wf, false, &wid)) != 0)
		return rv == CPL_ENOTFOUND ? 0 : rv;
	struct seen seen = { NULL, 0, 0 };
	rv = eligible(t, id, before_us, !(wf && *wf), wid, 0, &seen, ok,
	    last_seq);
	free(seen.v);
	return rv;
}

static int
archived_add(cpl_txn *t, uint64_t n)
{
	MDB_val v;
	uint64_t cur = 0;
	int rv = tget(t, DB_META, "archived", 8, &v);
	if (rv == 0 && v.mv_size == 8)
		memcpy(&cur, v.mv_data, 8);
	else if (rv == 0)
		return fail(t, CPL_ECORRUPT);
	else if (rv != CPL_ENOTFOUND)
		return rv;
	cur += n;
	return tput(t, DB_META, "archived", 8, &cur, 8, 0);
}

int
cs_archived_events(cpl_txn *t, uint64_t *n)
{
	MDB_val v;
	int rv = tget(t, DB_META, "archived", 8, &v);
	*n = 0;
	if (rv == CPL_ENOTFOUND)
		return 0;
	if (rv)
		return rv;
	if (v.mv_size != 8)
		return fail(t, CPL_ECORRUPT);
	memcpy(n, v.mv_data, 8);
	return 0;
}

int
cpl_task_purge(cpl_txn *t, uint64_t id, uint64_t *nevents)
{
	struct srec r;
	cpl_ids seqs = { NULL, 0, 0 };
	int rv;
	if (nevents)
		*nevents = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (!cpl_state_is_final((cpl_state)r.state))
		return CPL_EBADSTATE;
	// the refusals (held, children) come before any write
	if ((rv = cs_task_remove(t, id, false)) != 0)
		return rv;
	if ((rv = cs_pair_walk(t, DB_TASK_EV, id, cs_idvec_cb, &seqs)) != 0)
		goto out;
	for (size_t i = 0; i < seqs.n; i++) {
		uint8_t k[16];
		MDB_val v;
		struct evrec e;
		uint64_t bj = 0;
		be64(k, seqs.v[i]);
		if ((rv = tget(t, DB_EVENT, k, 8, &v)) != 0) {
			rv = rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
			goto out;
		}
		if (v.mv_size < sizeof(e)) {
			rv = fail(t, CPL_ECORRUPT);
			goto out;
		}
		memcpy(&e, v.mv_data, sizeof(e));
		// the runs of the task under a batch job's launchers: the
		// job's tasks (bj_task) and its count of them
		if (e.lease && (rv = cs_lease_bjob(t, e.lease, &bj)) != 0)
			goto out;
		if (bj && (rv = cs_bj_forget(t, bj, id)) != 0)
			goto out;
		if ((rv = tdel(t, DB_EVENT, k, 8)) != 0)
			goto out;
		pair_key(k, id, seqs.v[i]);
		if ((rv = tdel(t, DB_TASK_EV, k, 16)) != 0)
			goto out;
	}
	if ((rv = archived_add(t, seqs.n)) != 0)
		goto out;
	if (nevents)
		*nevents = seqs.n;
out:
	free(seqs.v);
	return rv;
}
