// copal store: the uuid index. New uuids go to the small uuid_new tree and
// are merged into the main uuid tree in bulk (see UUID_MERGE_AT); lookups
// by prefix search both trees.
#include <sys/random.h>

#include <uuid/uuid.h>

#include "store_impl.h"

// A random (version 4) uuid. libuuid's uuid_generate_random() reseeds and
// calls getpid() per uuid; at a million tasks that is a tenth of the create
// cost, so random bytes are taken from getrandom() a page at a time.
int
cs_uuid_new(cpl_store *s, uint8_t u[16])
{
	if (s->rnd_used + 16 > sizeof(s->rnd)) {
		size_t got = 0;
		while (got < sizeof(s->rnd)) {
			ssize_t n = getrandom(s->rnd + got, sizeof(s->rnd) - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return CPL_EIO;
			got += (size_t)n;
		}
		s->rnd_used = 0;
	}
	memcpy(u, s->rnd + s->rnd_used, 16);
	s->rnd_used += 16;
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); // version 4
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); // RFC 4122 variant
	return 0;
}

void
cpl_uuid_format(const uint8_t uuid[16], char buf[37])
{
	uuid_unparse_lower(uuid, buf);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

// Parses a hex uuid prefix into bytes: *nbytes whole bytes, and if the
// number of digits is odd, a last half byte in *half (high nibble).
int
cs_parse_prefix(const char *p, uint8_t b[16], size_t *nbytes, int *half)
{
	size_t nd = 0;
	memset(b, 0, 16);
	for (; *p; p++) {
		if (*p == '-')
			continue;
		int v = hexval((unsigned char)*p);
		if (v < 0 || nd >= 32)
			return CPL_EINVAL;
		if (nd % 2 == 0)
			b[nd / 2] = (uint8_t)(v << 4);
		else
			b[nd / 2] |= (uint8_t)v;
		nd++;
	}
	if (nd == 0)
		return CPL_EINVAL;
	*nbytes = nd / 2;
	*half = nd % 2 ? b[nd / 2] >> 4 : -1;
	return 0;
}

// Walks one uuid tree over every uuid starting with the prefix.
static int
uuid_walk_db(cpl_txn *t, int db, const uint8_t *b, size_t nb, int half,
    cpl_id_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16];
	int rv = 0, rc;
	if ((rv = tcursor(t, db, &c)) != 0)
		return rv;
	memcpy(start, b, 16);
	k.mv_data = start;
	k.mv_size = 16;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 || v.mv_size != 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (!prefix_match(k.mv_data, b, nb, half))
			break;
		if ((rv = fn(rd64(v.mv_data), arg)) != 0)
			break;
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

// Walks the uuid index (both trees) over every uuid starting with prefix.
int
cs_uuid_walk(cpl_txn *t, const char *prefix, cpl_id_fn fn, void *arg)
{
	uint8_t b[16];
	size_t nb;
	int half, rv;
	if ((rv = cs_parse_prefix(prefix, b, &nb, &half)) != 0)
		return rv;
	if ((rv = uuid_walk_db(t, DB_UUID, b, nb, half, fn, arg)) != 0)
		return rv;
	return uuid_walk_db(t, DB_UUID_NEW, b, nb, half, fn, arg);
}

// Moves every entry of uuid_new into the main uuid tree (sorted order, so
// each main page is dirtied once) and empties uuid_new.
int
cs_uuid_merge(cpl_txn *t)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv = 0;
	if ((rv = tcursor(t, DB_UUID_NEW, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if ((rv = tput(t, DB_UUID, k.mv_data, k.mv_size, v.mv_data,
		         v.mv_size, 0)) != 0)
			break;
	}
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	if (rv)
		return rv;
	if ((rc = mdb_drop(t->txn, t->s->dbi[DB_UUID_NEW], 0)) != 0)
		return fail(t, map_mdb(rc));
	t->meta.uuid_new_n = 0;
	return 0;
}

struct lookup_ctx {
	uint64_t id;
	int n;
};

static int
lookup_cb(uint64_t id, void *arg)
{
	struct lookup_ctx *l = arg;
	l->id = id;
	return ++l->n > 1 ? CPL_EAMBIGUOUS : 0;
}

int
cpl_task_lookup(cpl_txn *t, const char *prefix, uint64_t *id)
{
	struct lookup_ctx l = { 0, 0 };
	int rv;
	if (t == NULL || prefix == NULL || id == NULL)
		return CPL_EINVAL;
	if ((rv = cs_uuid_walk(t, prefix, lookup_cb, &l)) != 0)
		return rv;
	if (l.n == 0)
		return CPL_ENOTFOUND;
	*id = l.id;
	return 0;
}
