// copal store: the history log. One event per state change (and per
// note), in seq order, with a per-task index.
#include <stdlib.h>

#include "store_impl.h"

// what event_decode needs: message, node, user, each with its NUL
#define EVBUF (MAX_MSG + 1 + 256 + 256)

// Appends one history event. `newest` says the task is the newest one
// (just created): its (task, seq) key is then the last of task_ev and is
// appended without a search.
int
cs_event_write(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg,
    const char *node, uint64_t etime, bool newest)
{
	uint8_t k[8], tk[16];
	size_t ml = msg ? cpl_utf8_cut(msg, strnlen(msg, MAX_MSG)) : 0;
	size_t nl = node ? cpl_utf8_cut(node, strnlen(node, 255)) : 0;
	size_t ul = t->user ? cpl_utf8_cut(t->user,
	                          strnlen(t->user, CPL_EVENT_USER_MAX)) : 0;
	void *p = NULL;
	int rv;
	uint64_t seq = t->meta.next_seq++;
	be64(k, seq);
	size_t xl = etime ? 8 : 0;
	if ((rv = treserve(t, DB_EVENT, k, 8,
	         sizeof(struct evrec) + nl + ml + xl + ul, MDB_APPEND,
	         &p)) != 0)
		return rv;
	struct evrec e;
	memset(&e, 0, sizeof(e));
	e.task = id;
	e.time = t->now;
	e.lease = lease;
	e.attempt = attempt;
	e.rc = rc;
	e.from = (uint8_t)from;
	e.to = (uint8_t)to;
	e.msglen = (uint16_t)ml;
	e.nodelen = (uint8_t)nl;
	e.skipped = t->ev_skipped;
	t->ev_skipped = 0;
	e.flags = etime ? EVF_ETIME : 0;
	e.userlen = (uint8_t)ul;
	memcpy(p, &e, sizeof(e));
	if (nl)
		memcpy((char *)p + sizeof(e), node, nl);
	if (ml)
		memcpy((char *)p + sizeof(e) + nl, msg, ml);
	if (xl)
		memcpy((char *)p + sizeof(e) + nl + ml, &etime, 8);
	if (ul)
		memcpy((char *)p + sizeof(e) + nl + ml + xl, t->user, ul);
	pair_key(tk, id, seq);
	return tput(t, DB_TASK_EV, tk, 16, "", 0, newest ? MDB_APPEND : 0);
}

void
cpl_txn_set_user(cpl_txn *t, const char *user)
{
	if (t != NULL)
		t->user = user && *user ? user : NULL;
}

int
cs_event_append(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg)
{
	return cs_event_write(t, id, from, to, attempt, lease, rc, msg, NULL,
	    0, false);
}

// ------------------------------------------------------------ history

static int
event_decode(const MDB_val *k, const MDB_val *v, cpl_event *e, char *buf)
{
	struct evrec r;
	if (k->mv_size != 8 || v->mv_size < sizeof(r))
		return CPL_ECORRUPT;
	memcpy(&r, v->mv_data, sizeof(r));
	size_t xl = (r.flags & EVF_ETIME) ? 8 : 0;
	if ((r.flags & ~EVF_ETIME) ||
	    v->mv_size != sizeof(r) + r.nodelen + r.msglen + xl + r.userlen)
		return CPL_ECORRUPT;
	e->seq = rd64(k->mv_data);
	e->task_id = r.task;
	e->from = (cpl_state)r.from;
	e->to = (cpl_state)r.to;
	e->time_us = r.time;
	e->event_us = r.time;
	if (xl)
		memcpy(&e->event_us,
		    (char *)v->mv_data + sizeof(r) + r.nodelen + r.msglen, 8);
	e->attempt = r.attempt;
	e->lease = r.lease;
	e->return_code = r.rc;
	e->skipped = 0;
	if (r.skipped & EV_SKIP_STAGED_IN)
		e->skipped |= 1u << CPL_STAGED_IN;
	if (r.skipped & EV_SKIP_PREPROCESSED)
		e->skipped |= 1u << CPL_PREPROCESSED;
	if (r.skipped & EV_SKIP_POSTPROCESSED)
		e->skipped |= 1u << CPL_POSTPROCESSED;
	// buf holds the message, the node, the user: EVBUF bytes
	memcpy(buf, (char *)v->mv_data + sizeof(r) + r.nodelen, r.msglen);
	buf[r.msglen] = '\0';
	e->message = buf;
	char *node = buf + r.msglen + 1;
	memcpy(node, (char *)v->mv_data + sizeof(r), r.nodelen);
	node[r.nodelen] = '\0';
	e->node = node;
	char *user = node + r.nodelen + 1;
	memcpy(user, (char *)v->mv_data + sizeof(r) + r.nodelen + r.msglen +
	    xl, r.userlen);
	user[r.userlen] = '\0';
	e->user = user;
	return 0;
}

int
cpl_history_task(cpl_txn *t, uint64_t id, cpl_event_fn fn, void *arg)
{
	cpl_ids seqs = { NULL, 0, 0 };
	char *buf;
	int rv;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = cs_pair_walk(t, DB_TASK_EV, id, cs_idvec_cb, &seqs)) != 0) {
		free(seqs.v);
		return rv;
	}
	if ((buf = malloc(EVBUF)) == NULL) {
		free(seqs.v);
		return CPL_ENOMEM;
	}
	for (size_t i = 0; i < seqs.n && rv == 0; i++) {
		uint8_t k[8];
		MDB_val key = { 8, k }, v;
		cpl_event e;
		be64(k, seqs.v[i]);
		if ((rv = tget(t, DB_EVENT, k, 8, &v)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if ((rv = event_decode(&key, &v, &e, buf)) != 0) {
			rv = fail(t, rv);
			break;
		}
		rv = fn(&e, arg);
	}
	free(buf);
	free(seqs.v);
	return rv;
}

int
cpl_history_scan(cpl_txn *t, uint64_t after, size_t limit, cpl_event_fn fn,
    void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[8];
	char *buf;
	size_t n = 0;
	int rc, rv = 0;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((buf = malloc(EVBUF)) == NULL)
		return CPL_ENOMEM;
	if ((rv = tcursor(t, DB_EVENT, &c)) != 0) {
		free(buf);
		return rv;
	}
	be64(start, after + 1);
	k.mv_data = start;
	k.mv_size = 8;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && (limit == 0 || n < limit);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		cpl_event e;
		if ((rv = event_decode(&k, &v, &e, buf)) != 0) {
			rv = fail(t, rv);
			break;
		}
		n++;
		if ((rv = fn(&e, arg)) != 0)
			break;
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	free(buf);
	return rv;
}

int
cpl_history_seek_time(cpl_txn *t, uint64_t time_us, uint64_t *seq)
{
	int rv;
	if (t == NULL || seq == NULL)
		return CPL_EINVAL;
	// The first seq from which every event is at or after time_us. The
	// log may have gaps (archived events): each probe looks at the first
	// event at or after mid.
	MDB_cursor *c;
	if ((rv = tcursor(t, DB_EVENT, &c)) != 0)
		return rv;
	uint64_t lo = 1, hi = t->meta.next_seq; // answer in [lo, hi]
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		uint8_t k[8];
		MDB_val key = { 8, k }, v;
		struct evrec r;
		be64(k, mid);
		int rc = mdb_cursor_get(c, &key, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND) {
			hi = mid;
			continue;
		}
		if (rc || v.mv_size < sizeof(r) || key.mv_size != 8) {
			mdb_cursor_close(c);
			return fail(t, rc ? map_mdb(rc) : CPL_ECORRUPT);
		}
		memcpy(&r, v.mv_data, sizeof(r));
		if (r.time < time_us)
			lo = rd64(key.mv_data) + 1;
		else
			hi = mid;
	}
	// lo may be a gap before the event found: name the event
	if (lo < t->meta.next_seq) {
		uint8_t k[8];
		MDB_val key = { 8, k }, v;
		be64(k, lo);
		if (mdb_cursor_get(c, &key, &v, MDB_SET_RANGE) == 0 &&
		    key.mv_size == 8)
			lo = rd64(key.mv_data);
	}
	mdb_cursor_close(c);
	*seq = lo;
	return 0;
}

int
cpl_history_note(cpl_txn *t, uint64_t id, const char *message)
{
	struct srec r;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	return cs_event_append(t, id, (cpl_state)r.state, (cpl_state)r.state,
	    r.attempt, r.lease, r.rc, message);
}
