// copal store: the uuid index. New (version 7, time-ordered) uuids are
// appended to the main uuid tree; one that cannot be appended (random,
// version 4) goes to the small uuid_new tree, merged in bulk, a key range
// at a time (see UUID_MERGE_AT), into the newest generation of uuid_gen
// (UUID_GEN_MAX); lookups by prefix search all of them.
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include <uuid/uuid.h>

#include "store_impl.h"

// With task_uuids = time (cpl_store_opts.uuid_v7; random version 4 uuids
// are the default) new uuids are time-ordered, version 7 (RFC 9562): a 48-bit unix time in
// ms, the version, 12 bits rand_a, the variant, 62 bits rand_b. Ordered by
// creation, they go into the uuid tree as appends (one hot leaf page per
// commit) where random version 4 uuids dirtied pages all over the tree.
// Uuids already in a database (version 4) stay valid: lookups only compare
// bytes.
//
// Within a process they are strictly increasing (so also unique): rand_a
// holds the fraction of the ms in 1/4096ths (RFC 9562, 6.2 method 3), and
// if that tick is not above the last uuid's (two uuids within 244 ns, or the
// clock set back) the last tick plus one is used, carrying into the ms.
// rand_b (62 bits) is fresh random in every uuid, so neighbours differ
// within their first 16 hex digits rather than sharing a long counter
// prefix, and a uuid cannot be guessed from the one before it.
static pthread_mutex_t v7_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t v7_tick; // ms << 12 | rand_a of the last uuid made

// 8 random bytes from the store's buffer, refilled from getrandom() a page
// at a time (libuuid reseeds and calls getpid() per uuid: a tenth of the
// create cost at a million tasks).
static int
rnd8(cpl_store *s, uint8_t r[8])
{
	if (s->rnd_used + 8 > sizeof(s->rnd)) {
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
	memcpy(r, s->rnd + s->rnd_used, 8);
	s->rnd_used += 8;
	return 0;
}

static uint64_t
ld64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int
cs_uuid_new(cpl_store *s, uint8_t u[16])
{
	uint8_t r[8];
	struct timespec ts;
	int rv;
	if ((rv = rnd8(s, r)) != 0)
		return rv;
	if (!s->opts.uuid_v7) {
		// random (version 4): the default (task_uuids = random)
		memcpy(u, r, 8);
		if ((rv = rnd8(s, u + 8)) != 0)
			return rv;
		u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); // version 4
		u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); // RFC 4122 variant
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000u +
	    (uint64_t)ts.tv_nsec / 1000000u;
	uint64_t tick = now << 12 |
	    ((uint64_t)(ts.tv_nsec % 1000000) * 4096u / 1000000u);
	pthread_mutex_lock(&v7_mu);
	if (tick <= v7_tick)
		tick = v7_tick + 1;
	v7_tick = tick;
	pthread_mutex_unlock(&v7_mu);
	uint64_t ms = tick >> 12, a = tick & 0xfff;
	uint64_t b = ld64(r) & ((1ull << 62) - 1);
	for (int i = 0; i < 6; i++)
		u[i] = (uint8_t)(ms >> (40 - 8 * i));
	u[6] = (uint8_t)(0x70 | (a >> 8)); // version 7
	u[7] = (uint8_t)a;
	u[8] = (uint8_t)(0x80 | (b >> 56)); // RFC 9562 variant (10)
	for (int i = 9; i < 16; i++)
		u[i] = (uint8_t)(b >> (8 * (15 - i)));
	return 0;
}

// Sorts the waiting uuids: a radix sort on their first four bytes (four
// counting passes, least significant first, through tmp of n entries),
// then an insertion pass for the rare neighbours that share those bytes.
// qsort with a memcmp comparator took ~950 instructions per uuid, 3% of a
// create; this takes about a tenth of that. Random uuids are the only
// input, so the insertion pass moves almost nothing.
void
cs_ubuf_sort(struct ubuf *a, size_t n, struct ubuf *tmp)
{
	if (tmp == NULL) {
		// no room for the radix passes: sorting is for speed only
		// (the puts go in in any order), so insert in place
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 &&
			     memcmp(a[j - 1].u, a[j].u, 16) > 0; j--) {
				struct ubuf x = a[j];
				a[j] = a[j - 1];
				a[j - 1] = x;
			}
		return;
	}
	struct ubuf *src = a, *dst = tmp;
	for (int byte = 3; byte >= 0; byte--) {
		size_t cnt[257] = { 0 };
		for (size_t i = 0; i < n; i++)
			cnt[src[i].u[byte] + 1]++;
		for (int b = 0; b < 256; b++)
			cnt[b + 1] += cnt[b];
		for (size_t i = 0; i < n; i++)
			dst[cnt[src[i].u[byte]]++] = src[i];
		struct ubuf *x = src;
		src = dst;
		dst = x;
	}
	// four passes: the sorted run is back in a
	for (size_t i = 1; i < n; i++) {
		if (memcmp(a[i - 1].u, a[i].u, 4) != 0)
			continue;
		for (size_t j = i; j > 0 && memcmp(a[j - 1].u, a[j].u, 16) > 0;
		     j--) {
			struct ubuf x = a[j];
			a[j] = a[j - 1];
			a[j - 1] = x;
		}
	}
}

int
cs_uuid_flush(cpl_txn *t)
{
	int rv = 0;
	if (t->nubuf == 0)
		return t->err;
	// the radix passes' room, kept with the transaction (up to
	// UUID_BUF_MAX entries: an mmap and munmap per flush otherwise)
	if (t->caputmp < t->nubuf) {
		void *nt = realloc(t->utmp, t->capubuf * sizeof(t->ubuf[0]));
		if (nt != NULL) {
			t->utmp = nt;
			t->caputmp = t->capubuf;
		}
	}
	cs_ubuf_sort(t->ubuf, t->nubuf, t->caputmp >= t->nubuf ? t->utmp :
	    NULL);
	for (size_t i = 0; i < t->nubuf && rv == 0; i++)
		rv = tput(t, DB_UUID_NEW, t->ubuf[i].u, 16, t->ubuf[i].id, 8, 0);
	if (rv == 0)
		t->meta.uuid_new_n += t->nubuf;
	t->nubuf = 0;
	return rv;
}

// Adds a new task's uuid to the index. A version 7 uuid is above every
// uuid made before it, so it is appended to the main tree; one that is not
// above the last key (a database with version 4 uuids from before, whose
// high bytes are random, or a clock set back) goes to uuid_new, merged in
// bulk (UUID_MERGE_AT) so that such inserts stay cheap too. A random
// (version 4) uuid waits in the transaction to be put into uuid_new in
// sorted order (UUID_BUF_MAX): one that would sort above the main tree's
// last key is rare and found in uuid_new all the same.
int
cs_uuid_add(cpl_txn *t, const uint8_t u[16], const uint8_t id[8])
{
	if (t->err)
		return t->err;
	if (!t->s->opts.uuid_v7) {
		if (t->nubuf == t->capubuf && t->capubuf < UUID_BUF_MAX) {
			size_t cap = t->capubuf ? t->capubuf * 2 : 1024;
			void *nb = realloc(t->ubuf, cap * sizeof(t->ubuf[0]));
			if (nb != NULL) {
				t->ubuf = nb;
				t->capubuf = cap;
			}
		}
		if (t->nubuf == t->capubuf) {
			int rv = cs_uuid_flush(t);
			if (rv != 0)
				return rv;
		}
		if (t->nubuf < t->capubuf) {
			memcpy(t->ubuf[t->nubuf].u, u, 16);
			memcpy(t->ubuf[t->nubuf].id, id, 8);
			t->nubuf++;
			t->changes++;
			return 0;
		}
		// no buffer at all (out of memory): straight into uuid_new
	} else {
		MDB_val key = { 16, (void *)u }, val = { 8, (void *)id };
		MDB_cursor *c = tcur(t, DB_UUID);
		if (c == NULL)
			return t->err;
		int rc = mdb_cursor_put(c, &key, &val, MDB_APPEND);
		t->changes++;
		if (rc == 0)
			return 0;
		if (rc != MDB_KEYEXIST)
			return fail(t, map_mdb(rc));
	}
	int rc;
	if ((rc = tput(t, DB_UUID_NEW, u, 16, id, 8, 0)) != 0)
		return rc;
	t->meta.uuid_new_n++;
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

// Walks one uuid tree over every uuid starting with the prefix: uuid or
// uuid_new (gen 0), or generation gen of uuid_gen (keys: gen, uuid).
static int
uuid_walk_db(cpl_txn *t, int db, uint32_t gen, const uint8_t *b, size_t nb,
    int half, cpl_id_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[20];
	size_t off = gen ? 4 : 0;
	int rv = 0, rc;
	if ((rv = tcursor(t, db, &c)) != 0)
		return rv;
	be32(start, gen);
	memcpy(start + off, b, 16);
	k.mv_data = start;
	k.mv_size = 16 + off;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 + off || v.mv_size != 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if ((off && rd32(k.mv_data) != gen) ||
		    !prefix_match((const uint8_t *)k.mv_data + off, b, nb, half))
			break;
		if ((rv = fn(rd64(v.mv_data), arg)) != 0)
			break;
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

// The first generation of uuid_gen from `from` on that holds any entry,
// into *gen (0: none; from 0 is past the last one). The tree itself says
// which exist: generations emptied by deletes (archive) cost nothing,
// and nothing depends on the "ugen" record.
static int
gen_next(cpl_txn *t, uint32_t from, uint32_t *gen)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t key[20] = { 0 };
	int rc, rv;
	*gen = 0;
	if (from == 0)
		return 0;
	if ((rv = tcursor(t, DB_UUID_GEN, &c)) != 0)
		return rv;
	be32(key, from);
	k.mv_data = key;
	k.mv_size = 20;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size != 20)
		rv = fail(t, CPL_ECORRUPT);
	else if (rc == 0)
		*gen = rd32(k.mv_data);
	else if (rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

// Walks the uuid index (every tree and generation) over every uuid
// starting with prefix.
int
cs_uuid_walk(cpl_txn *t, const char *prefix, cpl_id_fn fn, void *arg)
{
	uint8_t b[16];
	size_t nb;
	int half, rv;
	if ((rv = cs_parse_prefix(prefix, b, &nb, &half)) != 0)
		return rv;
	if (t->write && (rv = cs_uuid_flush(t)) != 0)
		return rv;
	if ((rv = uuid_walk_db(t, DB_UUID, 0, b, nb, half, fn, arg)) != 0 ||
	    (rv = uuid_walk_db(t, DB_UUID_NEW, 0, b, nb, half, fn, arg)) != 0)
		return rv;
	for (uint32_t gen = 0;;) {
		if ((rv = gen_next(t, gen + 1, &gen)) != 0 || gen == 0)
			return rv;
		if ((rv = uuid_walk_db(t, DB_UUID_GEN, gen, b, nb, half, fn,
		         arg)) != 0)
			return rv;
	}
}

int
cs_ugen_load(cpl_txn *t, struct ugen *g)
{
	MDB_val v;
	int rv = tget(t, DB_META, "ugen", 4, &v);
	memset(g, 0, sizeof(*g));
	if (rv == CPL_ENOTFOUND)
		return 0;
	if (rv)
		return rv;
	if (v.mv_size != sizeof(*g))
		return fail(t, CPL_ECORRUPT);
	memcpy(g, v.mv_data, sizeof(*g));
	return 0;
}

static int
ugen_save(cpl_txn *t, const struct ugen *g)
{
	return tput(t, DB_META, "ugen", 4, g, sizeof(*g), 0);
}

int
cs_uuid_del(cpl_txn *t, const uint8_t u[16])
{
	MDB_val v;
	uint8_t k[20];
	struct ugen g;
	int rv;
	if ((rv = cs_uuid_flush(t)) != 0)
		return rv;
	if ((rv = tget(t, DB_UUID_NEW, u, 16, &v)) == 0) {
		if ((rv = tdel(t, DB_UUID_NEW, u, 16)) != 0)
			return rv;
		t->meta.uuid_new_n--;
		return 0;
	}
	if (rv != CPL_ENOTFOUND)
		return rv;
	if ((rv = tget(t, DB_UUID, u, 16, &v)) == 0)
		return tdel(t, DB_UUID, u, 16);
	if (rv != CPL_ENOTFOUND)
		return rv;
	// each generation that holds anything, oldest first
	for (uint32_t gen = 0;;) {
		if ((rv = gen_next(t, gen + 1, &gen)) != 0)
			return rv;
		if (gen == 0)
			break;
		be32(k, gen);
		memcpy(k + 4, u, 16);
		if ((rv = tget(t, DB_UUID_GEN, k, 20, &v)) == CPL_ENOTFOUND)
			continue;
		if (rv || (rv = tdel(t, DB_UUID_GEN, k, 20)) != 0 ||
		    (rv = cs_ugen_load(t, &g)) != 0)
			return rv;
		if (gen != g.gen)
			return 0;
		g.n = g.n ? g.n - 1 : 0;
		return ugen_save(t, &g);
	}
	return fail(t, CPL_ECORRUPT);
}

// Moves the entries of uuid_new whose first byte is in the next slice's
// range into the newest generation of uuid_gen (a new one once it holds
// UUID_GEN_MAX), in sorted order so that each of its pages is dirtied
// once (UUID_MERGE_SLICES says why one slice and not all).
int
cs_uuid_merge(cpl_txn *t)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16] = { 0 }, gk[20];
	struct ugen g;
	uint64_t gen_max = t->s->opts.uuid_gen_max ? t->s->opts.uuid_gen_max :
	    UUID_GEN_MAX;
	unsigned slice = t->s->uuid_slice % UUID_MERGE_SLICES;
	unsigned lo = slice * 256u / UUID_MERGE_SLICES;
	unsigned hi = (slice + 1) * 256u / UUID_MERGE_SLICES;
	uint64_t moved = 0;
	int rc, rv = 0;
	if ((rv = cs_ugen_load(t, &g)) != 0)
		return rv;
	if (g.gen == 0 || g.n >= gen_max) {
		if (g.gen == UINT32_MAX)
			return fail(t, CPL_EINTERNAL);
		g.gen++;
		g.n = 0;
	}
	// binaries from before uuid_gen must not open this database (one
	// marked for the reply log is marked for both)
	if (t->meta.version < META_VERSION_UGEN)
		t->meta.version = META_VERSION_UGEN;
	be32(gk, g.gen);
	if ((rv = tcursor(t, DB_UUID_NEW, &c)) != 0)
		return rv;
	start[0] = (uint8_t)lo;
	k.mv_data = start;
	k.mv_size = 16;
	// after mdb_cursor_del the cursor stands on the next entry, which
	// MDB_NEXT then returns (LMDB's C_DEL), so nothing is skipped
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 || v.mv_size != 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (((const uint8_t *)k.mv_data)[0] >= hi)
			break;
		memcpy(gk + 4, k.mv_data, 16);
		if ((rv = tput(t, DB_UUID_GEN, gk, 20, v.mv_data, v.mv_size,
		         0)) != 0)
			break;
		t->changes++;
		if ((rc = mdb_cursor_del(c, 0)) != 0) {
			rv = fail(t, map_mdb(rc));
			break;
		}
		moved++;
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	if (rv)
		return rv;
	// never below zero: a count short of the tree (it cannot be, but a
	// wrapped one would merge at every commit) restarts from the tree
	t->meta.uuid_new_n = t->meta.uuid_new_n > moved ?
	    t->meta.uuid_new_n - moved : 0;
	t->s->uuid_slice = (slice + 1) % UUID_MERGE_SLICES;
	if (moved == 0)
		return 0; // nothing went in: no new generation either
	g.n += moved;
	return ugen_save(t, &g);
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
