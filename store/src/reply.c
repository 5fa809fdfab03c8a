// copal store: the reply cache. Replies of applied requests, kept so that
// a resent request gets the first reply and is not applied twice.
#include <stdlib.h>

#include "store_impl.h"

// ------------------------------------------------------------ replies
//   reply      request id          -> time(8) || reply bytes
//   reply_age  time(8) request id  -> ""

int
cpl_reply_get(cpl_txn *t, uint64_t reqid, const void **data, size_t *len)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || data == NULL || len == NULL)
		return CPL_EINVAL;
	be64(k, reqid);
	if ((rv = tget(t, DB_REPLY, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size < 8)
		return fail(t, CPL_ECORRUPT);
	*data = (const uint8_t *)v.mv_data + 8;
	*len = v.mv_size - 8;
	return 0;
}

int
cpl_reply_put(cpl_txn *t, uint64_t reqid, const void *data, size_t len)
{
	uint8_t k[8], ak[16];
	MDB_val v;
	void *p = NULL;
	int rv;
	if (t == NULL || !t->write || (data == NULL && len > 0))
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (len > (64u << 20))
		return CPL_ETOOBIG;
	be64(k, reqid);
	rv = tget(t, DB_REPLY, k, 8, &v);
	if (rv == 0) {
		// replacing: drop the old age entry
		if (v.mv_size < 8)
			return fail(t, CPL_ECORRUPT);
		memcpy(ak, v.mv_data, 8);
		be64(ak + 8, reqid);
		if ((rv = tdel(t, DB_REPLY_AGE, ak, 16)) != 0)
			return rv;
	} else if (rv != CPL_ENOTFOUND) {
		return rv;
	}
	if ((rv = treserve(t, DB_REPLY, k, 8, 8 + len, 0, &p)) != 0)
		return rv;
	be64(p, t->now);
	if (len)
		memcpy((uint8_t *)p + 8, data, len);
	be64(ak, t->now);
	be64(ak + 8, reqid);
	return tput(t, DB_REPLY_AGE, ak, 16, "", 0, 0);
}

int
cpl_reply_prune(cpl_txn *t, uint64_t older_than, size_t max, size_t *np)
{
	MDB_cursor *c;
	MDB_val k, v;
	cpl_ids ids = { NULL, 0, 0 };
	cpl_ids times = { NULL, 0, 0 };
	int rc, rv = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = tcursor(t, DB_REPLY_AGE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	     rc == 0 && ids.n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		uint64_t tm = rd64(k.mv_data);
		if (tm >= older_than)
			break;
		if ((rv = cpl_ids_push(&ids, rd64((uint8_t *)k.mv_data + 8))) != 0 ||
		    (rv = cpl_ids_push(&times, tm)) != 0)
			break;
	}
	mdb_cursor_close(c);
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		uint8_t ak[16], kk[8];
		be64(ak, times.v[i]);
		be64(ak + 8, ids.v[i]);
		be64(kk, ids.v[i]);
		if ((rv = tdel(t, DB_REPLY_AGE, ak, 16)) == 0)
			rv = tdel(t, DB_REPLY, kk, 8);
	}
	if (rv == 0 && np)
		*np = ids.n;
	free(ids.v);
	free(times.v);
	return rv;
}

