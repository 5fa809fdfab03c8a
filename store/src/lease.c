// copal store: leases. A launcher holds one lease and every task it claims
// is held under it; renewing the lease renews them all.
#include <stdio.h>
#include <stdlib.h>

#include "store_impl.h"

// ------------------------------------------------------------ leases

int
cpl_lease_grant(cpl_txn *t, const char *owner, uint32_t ttl_ms, uint64_t *id)
{
	uint8_t k[8];
	void *p = NULL;
	int rv;
	if (t == NULL || !t->write || ttl_ms == 0 || id == NULL)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	size_t on = owner ? cpl_utf8_cut(owner, strnlen(owner, 127)) : 0;
	struct lrec l;
	memset(&l, 0, sizeof(l));
	l.created = t->now;
	l.deadline = t->now + (uint64_t)ttl_ms * 1000u;
	l.ttl_ms = ttl_ms;
	uint64_t lid = t->meta.next_lease++;
	be64(k, lid);
	if ((rv = treserve(t, DB_LEASE, k, 8, sizeof(l) + on, MDB_APPEND,
	         &p)) != 0)
		return rv;
	memcpy(p, &l, sizeof(l));
	if (on)
		memcpy((char *)p + sizeof(l), owner, on);
	// the owner stays known after the lease ends, for the history
	if ((rv = tput(t, DB_LEASE_LOG, k, 8, owner ? owner : "", on,
	         MDB_APPEND)) != 0)
		return rv;
	t->lease_ok = false;
	*id = lid;
	return 0;
}

int
cpl_lease_grant_job(cpl_txn *t, const char *owner, uint32_t ttl_ms,
    uint64_t bjob, const char *sched_id, uint64_t *id)
{
	uint8_t k[8], v[8 + 128];
	int rv;
	size_t sn = sched_id ? strnlen(sched_id, 128) : 0;
	if (sn == 128)
		return CPL_EINVAL;
	if ((rv = cpl_lease_grant(t, owner, ttl_ms, id)) != 0 || bjob == 0)
		return rv;
	be64(k, *id);
	be64(v, bjob);
	if (sn)
		memcpy(v + 8, sched_id, sn);
	return tput(t, DB_LEASE_BJ, k, 8, v, 8 + sn, MDB_APPEND);
}

int
cpl_lease_owner(cpl_txn *t, uint64_t id, char *buf, size_t len)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || buf == NULL || len == 0)
		return CPL_EINVAL;
	be64(k, id);
	if ((rv = tget(t, DB_LEASE_LOG, k, 8, &v)) != 0)
		return rv;
	size_t n = v.mv_size < len - 1 ? v.mv_size :
	    cpl_utf8_cut(v.mv_data, len - 1);
	memcpy(buf, v.mv_data, n);
	buf[n] = '\0';
	return 0;
}

int
cpl_lease_list(cpl_txn *t, cpl_lease_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	cpl_ids ids = { NULL, 0, 0 };
	int rc, rv;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = tcursor(t, DB_LEASE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (k.mv_size == 8)
			rv = cpl_ids_push(&ids, rd64(k.mv_data));
	mdb_cursor_close(c);
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		cpl_lease l;
		if ((rv = cpl_lease_get(t, ids.v[i], &l)) == 0)
			rv = fn(&l, arg);
	}
	free(ids.v);
	return rv;
}

int
cpl_lease_get(cpl_txn *t, uint64_t id, cpl_lease *out)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || out == NULL)
		return CPL_EINVAL;
	be64(k, id);
	if ((rv = tget(t, DB_LEASE, k, 8, &v)) != 0)
		return rv;
	struct lrec l;
	if (v.mv_size < sizeof(l))
		return fail(t, CPL_ECORRUPT);
	memcpy(&l, v.mv_data, sizeof(l));
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->deadline_us = l.deadline;
	out->created_us = l.created;
	out->ttl_ms = l.ttl_ms;
	size_t on = v.mv_size - sizeof(l);
	if (on > sizeof(out->owner) - 1)
		on = cpl_utf8_cut((char *)v.mv_data + sizeof(l),
		    sizeof(out->owner) - 1);
	memcpy(out->owner, (char *)v.mv_data + sizeof(l), on);
	out->owner[on] = '\0';
	cpl_ids ids = { NULL, 0, 0 };
	rv = cs_pair_walk(t, DB_LEASE_IDX, id, cs_idvec_cb, &ids);
	out->ntasks = (uint32_t)ids.n;
	free(ids.v);
	return rv;
}

// Ends one lease (why: "expired" or "released"): claims not reported
// started go back to the run queue, started tasks time out. Then the lease
// and its notices are deleted.
static int
lease_end(cpl_txn *t, uint64_t lid, const char *why, const char *runmsg,
    uint64_t *ntasks)
{
	cpl_ids ids = { NULL, 0, 0 };
	uint8_t k[16];
	int rv;
	// a claim held open under this lease must hear that it is gone
	__atomic_add_fetch(&t->s->claimable_seq, 1, __ATOMIC_RELEASE);
	if ((rv = cs_pair_walk(t, DB_LEASE_IDX, lid, cs_idvec_cb, &ids)) != 0) {
		free(ids.v);
		return rv == CPL_ENOMEM ? fail(t, rv) : rv;
	}
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		struct srec r;
		uint64_t id = ids.v[i];
		if ((rv = srec_get(t, id, &r)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (r.state == CPL_READY || r.state == CPL_RESTART_READY) {
			// claimed, not reported started: back to the queue.
			// Its launcher may have started it all the same (its
			// report lost with it), so the claim is an event of
			// its own and its attempt counts: the next run is
			// another attempt, and every start is on record.
			char msg[96];
			snprintf(msg, sizeof(msg), "returned: lease %s, "
			    "attempt %u", why, r.attempt);
			pair_key(k, lid, id);
			if ((rv = tdel(t, DB_LEASE_IDX, k, 16)) != 0)
				break;
			r.lease = 0;
			if ((rv = runq_add(t, id, &r)) != 0 ||
			    (rv = srec_put(t, id, &r)) != 0 ||
			    (rv = cs_event_append(t, id, (cpl_state)r.state,
			         (cpl_state)r.state, r.attempt, lid, 0, msg)) != 0)
				break;
		} else if (r.state == CPL_RUN_ERROR) {
			rv = cs_transition(t, id, &r, CPL_FAILED, CPL_BY_BROKER,
			    0, "lease expired during error handling");
		} else if (r.state == CPL_RUN_TIMEOUT) {
			// no launcher left to run the handler: policy decides
			const char *m = "lease expired during timeout handling";
			cpl_state to = (r.flags & SF_AUTO_RETRY) ?
			    CPL_RESTART_READY : CPL_FAILED;
			rv = cs_transition(t, id, &r, to, CPL_BY_BROKER, 0, m);
		} else {
			rv = cs_transition(t, id, &r, CPL_RUN_TIMEOUT,
			    CPL_BY_BROKER, 0, runmsg ? runmsg : "lease expired");
		}
		if (rv == 0)
			rv = cs_drain(t, NULL);
		if (rv)
			rv = fail(t, rv);
	}
	if (ntasks)
		*ntasks += ids.n;
	free(ids.v);
	if (rv)
		return rv;
	// notices of a dead launcher are moot
	cpl_ids nids = { NULL, 0, 0 };
	if ((rv = cs_pair_walk(t, DB_NOTICE, lid, cs_idvec_cb, &nids)) == 0) {
		for (size_t i = 0; i < nids.n && rv == 0; i++) {
			pair_key(k, lid, nids.v[i]);
			rv = tdel(t, DB_NOTICE, k, 16);
		}
	}
	free(nids.v);
	if (rv)
		return fail(t, rv);
	be64(k, lid);
	if ((rv = tdel(t, DB_LEASE, k, 8)) != 0)
		return rv;
	t->lease_ok = false;
	return 0;
}

// A lease record read to be changed: its key, its bytes (the fixed part,
// then the owner) and the fixed part decoded.
struct lease_rw {
	uint8_t k[8];
	uint8_t buf[sizeof(struct lrec) + 128];
	size_t n;
	struct lrec l;
};

static int
lease_load(cpl_txn *t, uint64_t id, struct lease_rw *w)
{
	MDB_val v;
	int rv;
	be64(w->k, id);
	if ((rv = tget(t, DB_LEASE, w->k, 8, &v)) != 0)
		return rv;
	if (v.mv_size < sizeof(w->l) || v.mv_size > sizeof(w->buf))
		return fail(t, CPL_ECORRUPT);
	w->n = v.mv_size;
	memcpy(w->buf, v.mv_data, w->n);
	memcpy(&w->l, w->buf, sizeof(w->l));
	return 0;
}

// Writes w back with its fixed part as changed.
static int
lease_save(cpl_txn *t, struct lease_rw *w)
{
	memcpy(w->buf, &w->l, sizeof(w->l));
	int rv = tput(t, DB_LEASE, w->k, 8, w->buf, w->n, 0);
	if (rv == 0)
		t->lease_ok = false;
	return rv;
}

int
cpl_lease_renew(cpl_txn *t, uint64_t id, uint32_t ttl_ms, uint64_t *deadline)
{
	return cpl_lease_renew_waited(t, id, ttl_ms, 0, deadline);
}

int
cpl_lease_renew_waited(cpl_txn *t, uint64_t id, uint32_t ttl_ms,
    uint64_t waited_us, uint64_t *deadline)
{
	struct lease_rw w;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = lease_load(t, id, &w)) != 0)
		return rv;
	if (w.l.deadline + waited_us < t->now) {
		if ((rv = lease_end(t, id, "expired", NULL, NULL)) != 0)
			return rv;
		return CPL_EEXPIRED;
	}
	if (ttl_ms)
		w.l.ttl_ms = ttl_ms;
	w.l.deadline = t->now + (uint64_t)w.l.ttl_ms * 1000u;
	if ((rv = lease_save(t, &w)) != 0)
		return rv;
	if (deadline)
		*deadline = w.l.deadline;
	return 0;
}

int
cpl_lease_release(cpl_txn *t, uint64_t id)
{
	struct lrec l;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = cs_lease_load(t, id, &l)) != 0)
		return rv;
	return lease_end(t, id, "released", NULL, NULL);
}

int
cpl_lease_expire(cpl_txn *t, uint64_t *nleases, uint64_t *ntasks)
{
	MDB_cursor *c;
	MDB_val k, v;
	cpl_ids due = { NULL, 0, 0 };
	int rc, rv = 0;
	uint64_t nt = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = tcursor(t, DB_LEASE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct lrec l;
		if (v.mv_size < sizeof(l) || k.mv_size != 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&l, v.mv_data, sizeof(l));
		if (l.deadline < t->now &&
		    (rv = cpl_ids_push(&due, rd64(k.mv_data))) != 0)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	for (size_t i = 0; i < due.n && rv == 0; i++)
		rv = lease_end(t, due.v[i], "expired", NULL, &nt);
	if (rv == 0) {
		if (nleases)
			*nleases = due.n;
		if (ntasks)
			*ntasks = nt;
	}
	free(due.v);
	return rv;
}

int
cpl_lease_grace(cpl_txn *t, uint64_t *n)
{
	MDB_cursor *c;
	MDB_val k, v;
	cpl_ids due = { NULL, 0, 0 };
	int rc, rv = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = tcursor(t, DB_LEASE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct lrec l;
		if (v.mv_size < sizeof(l) || k.mv_size != 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&l, v.mv_data, sizeof(l));
		if (l.deadline < t->now + (uint64_t)l.ttl_ms * 1000u &&
		    (rv = cpl_ids_push(&due, rd64(k.mv_data))) != 0)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	// written after the walk: no cursor over what changes
	for (size_t i = 0; i < due.n && rv == 0; i++) {
		struct lease_rw w;
		if ((rv = lease_load(t, due.v[i], &w)) != 0)
			break;
		w.l.deadline = t->now + (uint64_t)w.l.ttl_ms * 1000u;
		rv = lease_save(t, &w);
	}
	if (rv == 0) {
		t->lease_ok = false;
		if (n)
			*n = due.n;
	}
	free(due.v);
	return rv;
}

int
cpl_lease_take_notices(cpl_txn *t, uint64_t id, cpl_id_fn fn, void *arg)
{
	cpl_ids ids = { NULL, 0, 0 };
	uint8_t k[16];
	int rv;
	if (t == NULL || !t->write || fn == NULL)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = cs_pair_walk(t, DB_NOTICE, id, cs_idvec_cb, &ids)) != 0) {
		free(ids.v);
		return rv;
	}
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		pair_key(k, id, ids.v[i]);
		if ((rv = tdel(t, DB_NOTICE, k, 16)) == 0)
			rv = fn(ids.v[i], arg);
	}
	free(ids.v);
	return rv;
}

int
cpl_lease_end_bjob(cpl_txn *t, uint64_t bjob, const char *msg,
    uint64_t *nleases, uint64_t *ntasks)
{
	MDB_cursor *c;
	MDB_val k, v;
	cpl_ids ids = { NULL, 0, 0 };
	int rc, rv = 0;
	uint64_t nt = 0;
	if (t == NULL || !t->write || bjob == 0)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	// the live leases are few (one per launcher): each one's batch job
	if ((rv = tcursor(t, DB_LEASE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t b;
		if (k.mv_size != 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		uint64_t lid = rd64(k.mv_data);
		if ((rv = cs_lease_bjob(t, lid, &b)) == 0 && b == bjob)
			rv = cpl_ids_push(&ids, lid);
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	for (size_t i = 0; i < ids.n && rv == 0; i++)
		rv = lease_end(t, ids.v[i], "released", msg, &nt);
	if (rv == 0) {
		if (nleases)
			*nleases = ids.n;
		if (ntasks)
			*ntasks = nt;
	}
	free(ids.v);
	return rv;
}

// ------------------------------------------------------------ lazy renewals

int
cpl_lease_peek(cpl_txn *t, uint64_t id, uint64_t *deadline, uint32_t *ttl_ms,
    bool *notices)
{
	uint8_t k[8];
	MDB_val v;
	struct lrec l;
	cpl_ids ids = { NULL, 0, 0 };
	int rv;
	if (t == NULL || deadline == NULL || ttl_ms == NULL || notices == NULL)
		return CPL_EINVAL;
	be64(k, id);
	if ((rv = tget(t, DB_LEASE, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size < sizeof(l))
		return fail(t, CPL_ECORRUPT);
	memcpy(&l, v.mv_data, sizeof(l));
	*deadline = l.deadline;
	*ttl_ms = l.ttl_ms;
	// (a launcher has few notices: one per task killed under it)
	rv = cs_pair_walk(t, DB_NOTICE, id, cs_idvec_cb, &ids);
	*notices = ids.n > 0;
	free(ids.v);
	return rv;
}

int
cpl_lease_touch(cpl_txn *t, uint64_t id, uint64_t *deadline)
{
	struct lease_rw w;
	int rv;
	if (t == NULL || !t->write || deadline == NULL)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = lease_load(t, id, &w)) != 0)
		return rv;
	if (w.l.deadline < t->now)
		return CPL_EEXPIRED;
	uint64_t ttl = (uint64_t)w.l.ttl_ms * 1000u;
	if (w.l.deadline - t->now < ttl - ttl / 3) {
		w.l.deadline = t->now + ttl;
		if ((rv = lease_save(t, &w)) != 0)
			return rv;
	}
	*deadline = w.l.deadline;
	return 0;
}

int
cpl_lease_extend(cpl_txn *t, uint64_t id, uint64_t deadline, uint32_t ttl_ms)
{
	struct lease_rw w;
	int rv;
	if (t == NULL || !t->write || ttl_ms == 0)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = lease_load(t, id, &w)) != 0)
		return rv;
	if (w.l.deadline >= deadline && w.l.ttl_ms == ttl_ms)
		return 0;
	if (deadline > w.l.deadline)
		w.l.deadline = deadline;
	w.l.ttl_ms = ttl_ms;
	return lease_save(t, &w);
}
