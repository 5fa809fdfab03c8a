// copal store: the reply cache. Replies of applied requests, kept so that
// a resent request gets the first reply and is not applied twice.
#include <stdio.h>
#include <stdlib.h>

#include "store_impl.h"

// ------------------------------------------------------------ replies
//   reply      key                 -> time(8) || digest(16) || reply bytes
//                                  or time(8) || digest(16) || pos(8)
//   reply_log  pos(8)              -> reply bytes
//   reply_age  time(8) key         -> ""
// The key is the request id (8 bytes, a request without a client id) or
// the request id and the client id (8 + 16 bytes). Request ids first:
// clients number their requests by the time (cpl_client_next_id), so the
// replies of one commit, from hundreds of clients, sort side by side and
// share a few pages at the tree's end, and pruning them ten minutes later
// takes them from its front. With the client id first each client's
// replies were a run of their own, and every request dirtied a page of
// its own (BENCHMARKS.md, issue 17). A database written with the client
// id first is rekeyed when it is opened (reply_rekey in env.c); the first
// reply stored, or that rekeying, marks it META_VERSION_RKEY. The top bit of the
// stored time says a digest follows: replies stored before digests were
// kept (time(8) || reply bytes) have it clear and are taken as matching.
// The next bit (IN_LOG) says the reply's bytes are in reply_log at pos.
//
// Why a log: the keys are scattered (each client's replies are a run of
// their own), so every stored reply dirtied a leaf page of its own, and
// its pruning ten minutes later another; a claim's reply (hundreds of
// bytes) filled and split those pages soon. Replies of LOG_MIN bytes or
// more are appended to reply_log instead, in commit order: the appends of
// one commit share pages, and pruning, in age order, takes them from the
// front. The scattered entry keeps 32 bytes (BENCHMARKS.md, issue 17).

#define KEY_MAX (CPL_CLIENT_ID_LEN + 8)
#define HAS_DIGEST (1ull << 63)
#define IN_LOG (1ull << 62)
#define TIME_MASK (~(HAS_DIGEST | IN_LOG))
#define LOG_MIN 64u
#define HDR (8 + CPL_DIGEST_LEN)

static size_t
key_make(uint8_t *k, const cpl_reqkey *rk)
{
	be64(k, rk->id);
	if (rk->client == NULL)
		return 8;
	memcpy(k + 8, rk->client, CPL_CLIENT_ID_LEN);
	return 8 + CPL_CLIENT_ID_LEN;
}

int
cpl_reply_get(cpl_txn *t, const cpl_reqkey *rk, const void **data,
    size_t *len)
{
	uint8_t k[KEY_MAX];
	MDB_val v;
	int rv;
	if (t == NULL || rk == NULL || data == NULL || len == NULL)
		return CPL_EINVAL;
	size_t kn = key_make(k, rk);
	if ((rv = tget(t, DB_REPLY, k, kn, &v)) != 0)
		return rv;
	if (v.mv_size < 8)
		return fail(t, CPL_ECORRUPT);
	const uint8_t *p = v.mv_data;
	size_t skip = 8;
	uint64_t tm = rd64(p);
	if (tm & HAS_DIGEST) {
		if (v.mv_size < HDR)
			return fail(t, CPL_ECORRUPT);
		if (memcmp(p + 8, rk->digest, CPL_DIGEST_LEN) != 0)
			return CPL_EREUSED;
		skip += CPL_DIGEST_LEN;
	}
	if (tm & IN_LOG) {
		uint8_t pk[8];
		if (!(tm & HAS_DIGEST) || v.mv_size != HDR + 8)
			return fail(t, CPL_ECORRUPT);
		memcpy(pk, p + HDR, 8);
		if ((rv = tget(t, DB_REPLY_LOG, pk, 8, &v)) != 0)
			return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
		*data = v.mv_data;
		*len = v.mv_size;
		return 0;
	}
	*data = p + skip;
	*len = v.mv_size - skip;
	return 0;
}

// Appends a reply's bytes to reply_log; *pos gets where.
static int
log_append(cpl_txn *t, const void *data, size_t len, uint8_t pos[8])
{
	MDB_cursor *c = tcur(t, DB_REPLY_LOG);
	MDB_val k, v;
	void *p = NULL;
	uint64_t next = 1;
	int rc, rv;
	if (c == NULL)
		return t->err;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0) {
		if (k.mv_size != 8)
			return fail(t, CPL_ECORRUPT);
		next = rd64(k.mv_data) + 1;
	} else if (rc != MDB_NOTFOUND) {
		return fail(t, map_mdb(rc));
	}
	be64(pos, next);
	if ((rv = treserve(t, DB_REPLY_LOG, pos, 8, len, MDB_APPEND, &p)) != 0)
		return rv;
	memcpy(p, data, len);
	return 0;
}

// Deletes the reply entry of key k (kn bytes) and, for one in the log, its
// bytes there; *tm gets its stored time (flags masked off).
static int
entry_del(cpl_txn *t, const uint8_t *k, size_t kn, uint64_t *tm)
{
	MDB_val v;
	uint8_t pk[8];
	bool logged;
	int rv = tget(t, DB_REPLY, k, kn, &v);
	if (rv)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	if (v.mv_size < 8)
		return fail(t, CPL_ECORRUPT);
	uint64_t raw = rd64(v.mv_data);
	*tm = raw & TIME_MASK;
	if ((logged = (raw & IN_LOG) != 0)) {
		if (v.mv_size != HDR + 8)
			return fail(t, CPL_ECORRUPT);
		memcpy(pk, (const uint8_t *)v.mv_data + HDR, 8);
	}
	if ((rv = tdel(t, DB_REPLY, k, kn)) != 0)
		return rv;
	return logged ? tdel(t, DB_REPLY_LOG, pk, 8) : 0;
}

int
cpl_reply_put(cpl_txn *t, const cpl_reqkey *rk, const void *data, size_t len)
{
	uint8_t k[KEY_MAX], ak[8 + KEY_MAX], pos[8];
	MDB_val v;
	void *p = NULL;
	int rv;
	if (t == NULL || rk == NULL || !t->write || (data == NULL && len > 0))
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (len > (64u << 20))
		return CPL_ETOOBIG;
	size_t kn = key_make(k, rk);
	rv = tget(t, DB_REPLY, k, kn, &v);
	if (rv == 0) {
		// replacing: drop the old entry (and its bytes in the log) and
		// its age entry
		uint64_t old;
		if ((rv = entry_del(t, k, kn, &old)) != 0)
			return rv;
		be64(ak, old);
		memcpy(ak + 8, k, kn);
		if ((rv = tdel(t, DB_REPLY_AGE, ak, 8 + kn)) != 0)
			return rv;
	} else if (rv != CPL_ENOTFOUND) {
		return rv;
	}
	bool logged = len >= LOG_MIN;
	if (logged && (rv = log_append(t, data, len, pos)) != 0)
		return rv;
	// binaries from before the log or this key order must not open it
	if (t->meta.version < META_VERSION_RKEY)
		t->meta.version = META_VERSION_RKEY;
	if ((rv = treserve(t, DB_REPLY, k, kn, HDR + (logged ? 8 : len), 0,
	         &p)) != 0)
		return rv;
	be64(p, t->now | HAS_DIGEST | (logged ? IN_LOG : 0));
	memcpy((uint8_t *)p + 8, rk->digest, CPL_DIGEST_LEN);
	if (logged)
		memcpy((uint8_t *)p + HDR, pos, 8);
	else if (len)
		memcpy((uint8_t *)p + HDR, data, len);
	be64(ak, t->now);
	memcpy(ak + 8, k, kn);
	return tput(t, DB_REPLY_AGE, ak, 8 + kn, "", 0, 0);
}

// One age entry to delete: its time and reply key.
struct aged {
	uint8_t k[8 + KEY_MAX];
	size_t n;
};

int
cpl_reply_prune(cpl_txn *t, uint64_t older_than, size_t max, size_t *np)
{
	MDB_cursor *c;
	MDB_val k, v;
	struct aged *del = NULL;
	size_t n = 0, cap = 0;
	int rc, rv = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = tcursor(t, DB_REPLY_AGE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	     rc == 0 && n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 && k.mv_size != 8 + KEY_MAX) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (rd64(k.mv_data) >= older_than)
			break;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct aged *d = realloc(del, nc * sizeof(*d));
			if (d == NULL) {
				rv = CPL_ENOMEM;
				break;
			}
			del = d;
			cap = nc;
		}
		memcpy(del[n].k, k.mv_data, k.mv_size);
		del[n++].n = k.mv_size;
	}
	mdb_cursor_close(c);
	for (size_t i = 0; i < n && rv == 0; i++) {
		uint64_t tm;
		if ((rv = tdel(t, DB_REPLY_AGE, del[i].k, del[i].n)) == 0)
			rv = entry_del(t, del[i].k + 8, del[i].n - 8, &tm);
	}
	if (rv == 0 && np)
		*np = n;
	free(del);
	return rv;
}

static int
pos_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int
cs_reply_check(cpl_txn *t, char *why, size_t len)
{
	MDB_cursor *c;
	MDB_val k, v, lv;
	MDB_stat st;
	uint64_t n = 0, *pos = NULL;
	size_t npos = 0, cap = 0;
	int rc, rv;
	if ((rv = tcursor(t, DB_REPLY, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		n++;
		uint64_t raw = v.mv_size >= 8 ? rd64(v.mv_data) : 0;
		// the rules cpl_reply_get reads them by
		if (v.mv_size < 8 || (k.mv_size != 8 && k.mv_size != KEY_MAX) ||
		    ((raw & HAS_DIGEST) && v.mv_size < HDR) ||
		    ((raw & IN_LOG) && (!(raw & HAS_DIGEST) ||
		    v.mv_size != HDR + 8))) {
			snprintf(why, len, "reply: entry of %zu+%zu bytes "
			    "(flags %llx)", k.mv_size, v.mv_size,
			    (unsigned long long)(raw >> 62));
			rv = CPL_ECORRUPT;
			break;
		}
		uint8_t ak[8 + KEY_MAX];
		be64(ak, raw & TIME_MASK);
		memcpy(ak + 8, k.mv_data, k.mv_size);
		MDB_val akv = { 8 + k.mv_size, ak };
		if ((rc = mdb_get(t->txn, t->s->dbi[DB_REPLY_AGE], &akv,
		    &lv)) != 0) {
			if (rc == MDB_NOTFOUND) {
				snprintf(why, len, "reply: an entry has no age "
				    "entry");
				rv = CPL_ECORRUPT;
			} else {
				rv = fail(t, map_mdb(rc));
			}
			break;
		}
		if (!(raw & IN_LOG))
			continue;
		MDB_val pk = { 8, (uint8_t *)v.mv_data + HDR };
		if ((rc = mdb_get(t->txn, t->s->dbi[DB_REPLY_LOG], &pk,
		    &lv)) != 0) {
			if (rc == MDB_NOTFOUND) {
				snprintf(why, len, "reply: an entry's bytes are "
				    "not in reply_log");
				rv = CPL_ECORRUPT;
			} else {
				rv = fail(t, map_mdb(rc));
			}
			break;
		}
		if (npos == cap) {
			size_t nc = cap ? 2 * cap : 256;
			uint64_t *np = realloc(pos, nc * sizeof(*np));
			if (np == NULL) {
				rv = CPL_ENOMEM;
				break;
			}
			pos = np;
			cap = nc;
		}
		pos[npos++] = rd64(pk.mv_data);
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	// two entries naming one position: pruning either loses the other's
	if (rv == 0 && npos > 1) {
		qsort(pos, npos, sizeof(*pos), pos_cmp);
		for (size_t i = 1; i < npos; i++)
			if (pos[i] == pos[i - 1]) {
				snprintf(why, len, "reply: two entries name "
				    "position %llu of reply_log",
				    (unsigned long long)pos[i]);
				rv = CPL_ECORRUPT;
				break;
			}
	}
	free(pos);
	if (rv)
		return rv;
	if ((rc = mdb_stat(t->txn, t->s->dbi[DB_REPLY_LOG], &st)) != 0)
		return fail(t, map_mdb(rc));
	if (st.ms_entries != npos) {
		snprintf(why, len, "reply_log: %llu entries, the replies name "
		    "%llu", (unsigned long long)st.ms_entries,
		    (unsigned long long)npos);
		return CPL_ECORRUPT;
	}
	if (npos && t->meta.version < META_VERSION_RLOG) {
		snprintf(why, len, "reply_log holds replies but the database is "
		    "not marked for it (version %u)", t->meta.version);
		return CPL_ECORRUPT;
	}
	// (a database is rekeyed and marked when it is opened)
	if (n && t->meta.version < META_VERSION_RKEY) {
		snprintf(why, len, "reply: %llu replies in a database not "
		    "marked for their key order (version %u)",
		    (unsigned long long)n, t->meta.version);
		return CPL_ECORRUPT;
	}
	if ((rc = mdb_stat(t->txn, t->s->dbi[DB_REPLY_AGE], &st)) != 0)
		return fail(t, map_mdb(rc));
	if (st.ms_entries != n) {
		snprintf(why, len, "reply_age: %llu entries for %llu replies",
		    (unsigned long long)st.ms_entries, (unsigned long long)n);
		return CPL_ECORRUPT;
	}
	return 0;
}
