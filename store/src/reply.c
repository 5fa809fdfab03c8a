// copal store: the reply cache. Replies of applied requests, kept so that
// a resent request gets the first reply and is not applied twice.
#include <stdlib.h>

#include "store_impl.h"

// ------------------------------------------------------------ replies
//   reply      key                 -> time(8) || digest(16) || reply bytes
//   reply_age  time(8) key         -> ""
// The key is the request id (8 bytes, a request without a client id) or
// the client id and the request id (16 + 8 bytes). The top bit of the
// stored time says a digest follows: replies stored before digests were
// kept (time(8) || reply bytes) have it clear and are taken as matching.

#define KEY_MAX (CPL_CLIENT_ID_LEN + 8)
#define HAS_DIGEST (1ull << 63)

static size_t
key_make(uint8_t *k, const cpl_reqkey *rk)
{
	size_t n = 0;
	if (rk->client) {
		memcpy(k, rk->client, CPL_CLIENT_ID_LEN);
		n = CPL_CLIENT_ID_LEN;
	}
	be64(k + n, rk->id);
	return n + 8;
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
	if (rd64(p) & HAS_DIGEST) {
		if (v.mv_size < 8 + CPL_DIGEST_LEN)
			return fail(t, CPL_ECORRUPT);
		if (memcmp(p + 8, rk->digest, CPL_DIGEST_LEN) != 0)
			return CPL_EREUSED;
		skip += CPL_DIGEST_LEN;
	}
	*data = p + skip;
	*len = v.mv_size - skip;
	return 0;
}

int
cpl_reply_put(cpl_txn *t, const cpl_reqkey *rk, const void *data, size_t len)
{
	uint8_t k[KEY_MAX], ak[8 + KEY_MAX];
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
		// replacing: drop the old age entry
		if (v.mv_size < 8)
			return fail(t, CPL_ECORRUPT);
		be64(ak, rd64(v.mv_data) & ~HAS_DIGEST);
		memcpy(ak + 8, k, kn);
		if ((rv = tdel(t, DB_REPLY_AGE, ak, 8 + kn)) != 0)
			return rv;
	} else if (rv != CPL_ENOTFOUND) {
		return rv;
	}
	size_t hdr = 8 + CPL_DIGEST_LEN;
	if ((rv = treserve(t, DB_REPLY, k, kn, hdr + len, 0, &p)) != 0)
		return rv;
	be64(p, t->now | HAS_DIGEST);
	memcpy((uint8_t *)p + 8, rk->digest, CPL_DIGEST_LEN);
	if (len)
		memcpy((uint8_t *)p + hdr, data, len);
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
		if ((rv = tdel(t, DB_REPLY_AGE, del[i].k, del[i].n)) == 0)
			rv = tdel(t, DB_REPLY, del[i].k + 8, del[i].n - 8);
	}
	if (rv == 0 && np)
		*np = n;
	free(del);
	return rv;
}
