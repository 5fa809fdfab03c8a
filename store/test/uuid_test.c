// Uuids of new tasks with task_uuids = time (cpl_store_opts.uuid_v7):
// time-ordered version 7 (RFC 9562), strictly
// increasing within a process, unique across a million, parsed back by
// libuuid and by the prefix lookup; and a database holding version 4 uuids
// from before keeps finding them while new ones are added. Random
// (version 4) uuids, waiting in their transaction to be put in sorted
// order, are found inside it and after.
// store_impl.h first: cmocka defines a fail() macro, the store a fail().
#include "../src/store_impl.h"

#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>
#include <uuid/uuid.h>

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
ms_of(const uint8_t u[16])
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | u[i];
	return ms;
}

static void
assert_v7(const uint8_t u[16])
{
	assert_int_equal(u[6] >> 4, 7);        // version
	assert_int_equal(u[8] & 0xc0, 0x80);   // variant 10
}

// A million uuids from one store: each version 7 with the time of its
// making, each above the one before (so all distinct), each parsed back.
static void
test_million_v7_increasing(void **state)
{
	tu_env *e = *state;
	enum { N = 1000000 };
	uint8_t prev[16], u[16];
	uint64_t t0 = now_ms();
	uint64_t last_ms = 0;
	for (int i = 0; i < N; i++) {
		TU_OK(cs_uuid_new(e->s, u));
		assert_v7(u);
		if (i > 0 && memcmp(prev, u, 16) >= 0)
			fail_msg("uuid %d is not above the one before", i);
		last_ms = ms_of(u);
		if (i % 1000 == 0) {
			// Parses back: libuuid, and as a full-length prefix.
			char buf[37];
			uuid_t back;
			cpl_uuid_format(u, buf);
			assert_int_equal(uuid_parse(buf, back), 0);
			assert_memory_equal(back, u, 16);
			uint8_t b[16];
			size_t nb;
			int half;
			TU_OK(cs_parse_prefix(buf, b, &nb, &half));
			assert_int_equal(nb, 16);
			assert_int_equal(half, -1);
			assert_memory_equal(b, u, 16);
		}
		memcpy(prev, u, 16);
	}
	uint64_t t1 = now_ms();
	// The time field is the clock's (a carry out of the random bits may move
	// it on by a ms now and then, never by much).
	uint8_t first[16];
	TU_OK(cs_uuid_new(e->s, first));
	assert_true(ms_of(first) >= t0);
	assert_true(last_ms >= t0 && last_ms <= t1 + 1000);
}

// Uuids of created tasks: version 7, in creation order, each found by its
// full uuid and by its shortest unique prefix.
static void
test_created_tasks_v7(void **state)
{
	tu_env *e = *state;
	enum { N = 300 };
	uint8_t u[N][16];
	uint64_t ids[N];
	tu_spec sp;
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof name, "t%d", i);
		tu_spec_init(&sp, name, "wf", "app");
		TU_OK(tu_create_spec(e, &sp.spec, &ids[i], u[i]));
		assert_v7(u[i]);
		if (i > 0)
			assert_true(memcmp(u[i - 1], u[i], 16) < 0);
	}
	for (int i = 0; i < N; i++) {
		char buf[37];
		uint64_t got = 0;
		cpl_uuid_format(u[i], buf);
		TU_OK(tu_lookup(e, buf, &got));
		assert_int_equal(got, ids[i]);
		// 20 hex digits (time, version, rand_a, 3 of rand_b) are unique
		// here: neighbours differ by a random step.
		char pre[24];
		snprintf(pre, sizeof pre, "%.8s%.4s%.4s%.4s", buf, buf + 9,
		    buf + 14, buf + 19);
		got = 0;
		TU_OK(tu_lookup(e, pre, &got));
		assert_int_equal(got, ids[i]);
	}
	// A prefix of the time alone names many tasks.
	char buf[37];
	cpl_uuid_format(u[0], buf);
	buf[6] = '\0';
	uint64_t got;
	assert_int_equal(tu_lookup(e, buf, &got), CPL_EAMBIGUOUS);
	TU_CHECK(e);
}

// Gives the tasks ids[0..n) random version 4 uuids whose first byte is
// above any version 7 uuid's for the next centuries, in the state records
// and the uuid tree, as a database written before version 7 holds them.
static void
make_v4(tu_env *e, const uint64_t *ids, int n, uint8_t (*v4)[16])
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dst, duu;
	MDB_val k, v;
	cpl_store_close(e->s);
	e->s = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 64);
	mdb_env_set_mapsize(env, 1u << 30);
	assert_int_equal(mdb_env_open(env, e->dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "state", 0, &dst), 0);
	assert_int_equal(mdb_dbi_open(txn, "uuid", 0, &duu), 0);
	for (int i = 0; i < n; i++) {
		uint8_t key[8], rec[80];
		for (int j = 0; j < 8; j++)
			key[j] = (uint8_t)(ids[i] >> (56 - 8 * j));
		k = (MDB_val){ 8, key };
		assert_int_equal(mdb_get(txn, dst, &k, &v), 0);
		assert_int_equal(v.mv_size, sizeof rec);
		memcpy(rec, v.mv_data, sizeof rec);
		MDB_val uk = { 16, rec + 64 };
		assert_int_equal(mdb_del(txn, duu, &uk, NULL), 0);
		uuid_generate_random(v4[i]);
		v4[i][0] |= 0xf0;
		memcpy(rec + 64, v4[i], 16);
		v = (MDB_val){ sizeof rec, rec };
		assert_int_equal(mdb_put(txn, dst, &k, &v, 0), 0);
		uk = (MDB_val){ 16, v4[i] };
		MDB_val uv = { 8, key };
		assert_int_equal(mdb_put(txn, duu, &uk, &uv, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	TU_OK(cpl_store_open(e->dir, &e->opts, &e->s));
}

static int
uuid_new_n_cb(cpl_txn *t, void *arg)
{
	*(uint64_t *)arg = t->meta.uuid_new_n;
	return 0;
}

// Version 4 uuids from before stay found; new tasks in such a database
// (their uuids sort below the old ones: no append) go to uuid_new and are
// found too; the store checks clean, and a delete takes either kind out.
static void
test_old_v4_database(void **state)
{
	tu_env *e = *state;
	enum { OLD = 20, NEW = 20 };
	uint64_t old[OLD], nw[NEW];
	uint8_t v4[OLD][16], u[NEW][16];
	for (int i = 0; i < OLD; i++)
		old[i] = tu_task(e, "old", "wf", 0);
	make_v4(e, old, OLD, v4);
	TU_CHECK(e);
	tu_spec sp;
	for (int i = 0; i < NEW; i++) {
		tu_spec_init(&sp, "new", "wf", "app");
		TU_OK(tu_create_spec(e, &sp.spec, &nw[i], u[i]));
		assert_v7(u[i]);
	}
	uint64_t in_new = 0;
	TU_OK(cpl_store_read(e->s, uuid_new_n_cb, &in_new));
	assert_int_equal(in_new, NEW);
	for (int i = 0; i < OLD; i++) {
		char buf[37];
		uint64_t got = 0;
		cpl_uuid_format(v4[i], buf);
		TU_OK(tu_lookup(e, buf, &got));
		assert_int_equal(got, old[i]);
		cpl_task t = tu_task_get(e, old[i]);
		assert_memory_equal(t.uuid, v4[i], 16);
	}
	for (int i = 0; i < NEW; i++) {
		char buf[37];
		uint64_t got = 0;
		cpl_uuid_format(u[i], buf);
		TU_OK(tu_lookup(e, buf, &got));
		assert_int_equal(got, nw[i]);
	}
	TU_CHECK(e);
	TU_OK(tu_delete(e, old[0]));
	TU_OK(tu_delete(e, nw[0]));
	char buf[37];
	uint64_t got;
	cpl_uuid_format(v4[0], buf);
	assert_int_equal(tu_lookup(e, buf, &got), CPL_ENOTFOUND);
	cpl_uuid_format(u[0], buf);
	assert_int_equal(tu_lookup(e, buf, &got), CPL_ENOTFOUND);
	TU_CHECK(e);
}

// Random (version 4, the default) uuids wait in their write transaction
// and go into uuid_new sorted (UUID_BUF_MAX at a time, and at commit):
// a lookup, a delete and a nested transaction inside the creating
// transaction see them all; after the commit every one is found, the
// count of uuid_new is right, and the merge into uuid_gen (past
// UUID_MERGE_AT) keeps every one found.
enum { V4_N = UUID_BUF_MAX + 3000, V4_MORE = UUID_MERGE_AT };

struct v4_ctx {
	uint64_t *ids;
	uint8_t (*u)[16];
	size_t first, n;
	bool probe; // look up, delete and nest inside the transaction
};

static int
v4_sub_cb(cpl_txn *t, void *arg)
{
	struct v4_ctx *c = arg;
	char buf[37];
	uint64_t got = 0;
	cpl_uuid_format(c->u[c->first + c->n - 1], buf);
	int rv = cpl_task_lookup(t, buf, &got);
	if (rv == 0 && got != c->ids[c->first + c->n - 1])
		rv = CPL_EINTERNAL;
	return rv;
}

static int
v4_create_cb(cpl_txn *t, void *arg)
{
	struct v4_ctx *c = arg;
	tu_spec sp;
	int rv;
	for (size_t i = c->first; i < c->first + c->n; i++) {
		tu_spec_init(&sp, "v4", i % 2 ? "wf-a" : "wf-b", "app");
		if ((rv = cpl_task_create(t, &sp.spec, &c->ids[i],
		         c->u[i])) != 0)
			return rv;
		if (!c->probe || i % 997 != 0)
			continue;
		// every one made so far in this transaction is found
		for (size_t j = c->first; j <= i; j += 331) {
			char buf[37];
			uint64_t got = 0;
			cpl_uuid_format(c->u[j], buf);
			if ((rv = cpl_task_lookup(t, buf, &got)) != 0)
				return rv;
			if (got != c->ids[j])
				return CPL_EINTERNAL;
		}
	}
	if (!c->probe)
		return 0;
	// the last one, from a nested transaction
	if ((rv = cpl_txn_sub(t, v4_sub_cb, c)) != 0)
		return rv;
	// the first one made here leaves again
	return cpl_task_delete(t, c->ids[c->first]);
}

static void
test_v4_buffered(void **state)
{
	tu_env *e = *state;
	size_t total = V4_N + V4_MORE;
	uint64_t *ids = calloc(total, sizeof(*ids));
	uint8_t (*u)[16] = calloc(total, 16);
	assert_non_null(ids);
	assert_non_null(u);
	struct v4_ctx c = { ids, u, 0, V4_N, true };
	TU_OK(cpl_store_write(e->s, v4_create_cb, &c));
	uint64_t in_new = 0;
	TU_OK(cpl_store_read(e->s, uuid_new_n_cb, &in_new));
	assert_int_equal(in_new, V4_N - 1);
	TU_CHECK(e);
	// past UUID_MERGE_AT: merged into uuid_gen at a commit
	for (size_t first = V4_N; first < total; first += 10000) {
		struct v4_ctx m = { ids, u, first,
			total - first < 10000 ? total - first : 10000, false };
		TU_OK(cpl_store_write(e->s, v4_create_cb, &m));
	}
	TU_OK(cpl_store_read(e->s, uuid_new_n_cb, &in_new));
	assert_true(in_new < UUID_MERGE_AT);
	// a merge moves one key range (UUID_MERGE_SLICES), not all: most
	// uuids made before it still wait in uuid_new
	assert_true(in_new > UUID_MERGE_AT / 2);
	char buf[37];
	uint64_t got = 0;
	for (size_t i = 0; i < total; i += 97) {
		assert_int_equal(u[i][6] >> 4, 4);
		cpl_uuid_format(u[i], buf);
		if (i == 0) {
			assert_int_equal(tu_lookup(e, buf, &got), CPL_ENOTFOUND);
			continue;
		}
		TU_OK(tu_lookup(e, buf, &got));
		assert_int_equal(got, ids[i]);
	}
	TU_CHECK(e);
	free(ids);
	free(u);
}

// The store of tu_setup, opened again with version 7 uuids.
static int
setup7(void **state)
{
	if (tu_setup(state) != 0)
		return -1;
	tu_env *e = *state;
	cpl_store_close(e->s);
	e->opts.uuid_v7 = true;
	return cpl_store_open(e->dir, &e->opts, &e->s) == 0 ? 0 : -1;
}

// The sort of the uuids a transaction keeps (cs_ubuf_sort): random ones,
// ones sharing their first 4 bytes (the radix passes leave those to an
// insertion pass) and equal ones, against qsort; every entry kept.
static int
ubuf_cmp(const void *a, const void *b)
{
	int c = memcmp(a, b, 16);
	return c ? c : memcmp((const uint8_t *)a + 16, (const uint8_t *)b + 16, 8);
}

static void
test_ubuf_sort(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct ubuf *a = calloc(N, sizeof(*a)), *b = calloc(N, sizeof(*b));
	assert_non_null(a);
	assert_non_null(b);
	srand(17);
	for (size_t i = 0; i < N; i++) {
		for (int k = 0; k < 16; k++)
			a[i].u[k] = (uint8_t)rand();
		if (i % 3 == 0) // a few 4-byte prefixes shared by many
			memcpy(a[i].u, "\x10\x20\x30", 3), a[i].u[3] =
			    (uint8_t)(i % 7);
		if (i % 11 == 0 && i > 0) // equal uuids
			memcpy(a[i].u, a[i - 1].u, 16);
		memcpy(a[i].id, &i, sizeof(i));
	}
	memcpy(b, a, N * sizeof(*a));
	struct ubuf *tmp = calloc(N, sizeof(*tmp)), *c = calloc(N, sizeof(*c));
	assert_non_null(tmp);
	assert_non_null(c);
	memcpy(c, a, N * sizeof(*a));
	cs_ubuf_sort(a, N, tmp);
	cs_ubuf_sort(c, N, NULL); // without room: the in-place fallback
	qsort(b, N, sizeof(*b), ubuf_cmp);
	for (size_t i = 1; i < N; i++) {
		assert_true(memcmp(a[i - 1].u, a[i].u, 16) <= 0);
		assert_true(memcmp(c[i - 1].u, c[i].u, 16) <= 0);
	}
	// the same multiset: sort both fully (ties by id) and compare
	qsort(a, N, sizeof(*a), ubuf_cmp);
	qsort(c, N, sizeof(*c), ubuf_cmp);
	assert_memory_equal(a, b, N * sizeof(*a));
	assert_memory_equal(c, b, N * sizeof(*c));
	cs_ubuf_sort(a, 0, tmp);
	cs_ubuf_sort(a, 1, tmp);
	assert_memory_equal(a, b, N * sizeof(*a));
	free(a);
	free(b);
	free(c);
	free(tmp);
}

// Generations (UUID_GEN_MAX, here 20,000 through uuid_gen_max): random
// uuids merged past a generation's size go into a new one; every uuid of
// every generation is found by its whole uuid and by a prefix, deletes
// from an old generation, the newest and uuid_new keep the store
// consistent (cpl_store_check compares every generation's entries with
// the tasks, and the newest one's count with "ugen"), all of it holds
// after the store is opened again, an emptied generation is skipped, and
// cpl_store_check finds a missing, a stray and a miscounted entry. The
// database is marked META_VERSION_UGEN.
static int
ugen_cb(cpl_txn *t, void *arg)
{
	return cs_ugen_load(t, arg);
}

static int
setup_gen(void **state)
{
	if (tu_setup(state) != 0)
		return -1;
	tu_env *e = *state;
	cpl_store_close(e->s);
	e->opts.uuid_gen_max = 20000;
	return cpl_store_open(e->dir, &e->opts, &e->s) == 0 ? 0 : -1;
}

static void
gen_lookups(tu_env *e, const uint64_t *ids, uint8_t (*u)[16], size_t n,
    const bool *gone)
{
	char buf[37];
	uint64_t got = 0;
	for (size_t i = 0; i < n; i += 89) {
		cpl_uuid_format(u[i], buf);
		if (gone[i]) {
			assert_int_equal(tu_lookup(e, buf, &got), CPL_ENOTFOUND);
			continue;
		}
		TU_OK(tu_lookup(e, buf, &got));
		assert_int_equal(got, ids[i]);
		buf[13] = '\0'; // "xxxxxxxx-xxxx": 12 digits, found in its tree
		got = 0;
		int rv = tu_lookup(e, buf, &got);
		assert_true(rv == 0 || rv == CPL_EAMBIGUOUS);
		if (rv == 0)
			assert_int_equal(got, ids[i]);
	}
}

static int
version_cb(cpl_txn *t, void *arg)
{
	*(uint32_t *)arg = t->meta.version;
	return 0;
}

// Stores a reply large enough for the reply log.
static int
logged_reply_cb(cpl_txn *t, void *arg)
{
	(void)arg;
	uint8_t big[128];
	memset(big, 'q', sizeof big);
	cpl_reqkey k;
	memset(&k, 0, sizeof k);
	k.id = 77;
	return cpl_reply_put(t, &k, big, sizeof big);
}

// Deletes every task whose uuid is in generation 1 (through the store,
// so the index stays consistent).
static int
empty_gen1_cb(cpl_txn *t, void *arg)
{
	(void)arg;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t ids[4096];
	size_t n;
	int rv;
	do {
		n = 0;
		if ((rv = tcursor(t, DB_UUID_GEN, &c)) != 0)
			return rv;
		int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		while (rc == 0 && rd32(k.mv_data) == 1 && n < 4096) {
			ids[n++] = rd64(v.mv_data);
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(c);
		for (size_t i = 0; i < n; i++)
			if ((rv = cpl_task_delete(t, ids[i])) != 0)
				return rv;
	} while (n == 4096);
	return 0;
}

// Damage to uuid_gen the check must find: kind 0 takes an entry of the
// newest generation away, 1 adds a stray entry, 2 miscounts "ugen";
// with undo, puts it back.
struct damage {
	int kind;
	bool undo;
	uint8_t k[20], v[8];
	struct ugen g;
};

static int
damage_cb(cpl_txn *t, void *arg)
{
	struct damage *d = arg;
	MDB_cursor *c;
	MDB_val k, v;
	int rv;
	if (d->kind == 0 && !d->undo) {
		if ((rv = tcursor(t, DB_UUID_GEN, &c)) != 0)
			return rv;
		int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		if (rc == 0) {
			memcpy(d->k, k.mv_data, 20);
			memcpy(d->v, v.mv_data, 8);
			rc = mdb_cursor_del(c, 0);
		}
		mdb_cursor_close(c);
		return rc ? CPL_EINTERNAL : 0;
	}
	if (d->kind == 0)
		return tput(t, DB_UUID_GEN, d->k, 20, d->v, 8, 0);
	if (d->kind == 1) {
		uint8_t k1[20] = { 0, 0, 0, 1, 0xee, 0xee }, v1[8] = { 0 };
		return d->undo ? tdel(t, DB_UUID_GEN, k1, 20) :
		    tput(t, DB_UUID_GEN, k1, 20, v1, 8, 0);
	}
	if (!d->undo) {
		if ((rv = cs_ugen_load(t, &d->g)) != 0)
			return rv;
		struct ugen bad = d->g;
		bad.n++;
		return tput(t, DB_META, "ugen", 4, &bad, sizeof(bad), 0);
	}
	return tput(t, DB_META, "ugen", 4, &d->g, sizeof(d->g), 0);
}

static void
test_v4_generations(void **state)
{
	tu_env *e = *state;
	enum { N = 150000 };
	uint64_t *ids = calloc(N, sizeof(*ids));
	uint8_t (*u)[16] = calloc(N, 16);
	bool *gone = calloc(N, sizeof(bool));
	assert_non_null(ids);
	assert_non_null(u);
	assert_non_null(gone);
	for (size_t first = 0; first < N; first += 10000) {
		struct v4_ctx m = { ids, u, first, 10000, false };
		TU_OK(cpl_store_write(e->s, v4_create_cb, &m));
	}
	struct ugen g;
	TU_OK(cpl_store_read(e->s, ugen_cb, &g));
	// 150,000 made, at most UUID_MERGE_AT waiting: the rest merged, at
	// most 20,000 plus one slice per generation
	assert_true(g.gen >= 3);
	assert_true(g.n > 0 && g.n <= 20000 + UUID_MERGE_AT);
	uint64_t in_new = 0;
	TU_OK(cpl_store_read(e->s, uuid_new_n_cb, &in_new));
	assert_true(in_new < UUID_MERGE_AT);
	TU_CHECK(e);
	gen_lookups(e, ids, u, N, gone);
	// delete the first tasks (oldest generation), the last (uuid_new or
	// the newest generation) and some between
	for (size_t i = 0; i < N; i += N / 40) {
		TU_OK(tu_delete(e, ids[i]));
		gone[i] = true;
	}
	for (size_t i = N - 5; i < N; i++) {
		TU_OK(tu_delete(e, ids[i]));
		gone[i] = true;
	}
	TU_CHECK(e);
	gen_lookups(e, ids, u, N, gone);
	// more merges after the deletes, then again after a reopen
	uint64_t *ids2 = calloc(40000, sizeof(*ids2));
	uint8_t (*u2)[16] = calloc(40000, 16);
	assert_non_null(ids2);
	assert_non_null(u2);
	for (size_t first = 0; first < 40000; first += 10000) {
		struct v4_ctx m = { ids2, u2, first, 10000, false };
		TU_OK(cpl_store_write(e->s, v4_create_cb, &m));
	}
	TU_CHECK(e);
	cpl_store_close(e->s);
	TU_OK(cpl_store_open(e->dir, &e->opts, &e->s));
	struct ugen g2;
	TU_OK(cpl_store_read(e->s, ugen_cb, &g2));
	assert_true(g2.gen > g.gen || (g2.gen == g.gen && g2.n > g.n));
	TU_CHECK(e);
	gen_lookups(e, ids, u, N, gone);
	bool none[40000] = { false };
	gen_lookups(e, ids2, u2, 40000, none);
	uint32_t version = 0;
	TU_OK(cpl_store_read(e->s, version_cb, &version));
	assert_int_equal(version, META_VERSION_UGEN);
	// a database marked for its stored replies (version 4) keeps that mark
	// through the merges that mark uuid generations (2)
	TU_OK(cpl_store_write(e->s, logged_reply_cb, NULL));
	TU_OK(cpl_store_read(e->s, version_cb, &version));
	assert_int_equal(version, META_VERSION_RKEY);
	struct ugen g3 = g2;
	{
		// creates until a merge moved uuids into a generation
		uint64_t *ids3 = calloc(10000, sizeof(*ids3));
		uint8_t (*u3)[16] = calloc(10000, 16);
		assert_non_null(ids3);
		assert_non_null(u3);
		for (int round = 0; round < 12 && g3.gen == g2.gen &&
		     g3.n == g2.n; round++) {
			struct v4_ctx m = { ids3, u3, 0, 10000, false };
			TU_OK(cpl_store_write(e->s, v4_create_cb, &m));
			TU_OK(cpl_store_read(e->s, ugen_cb, &g3));
		}
		free(ids3);
		free(u3);
	}
	assert_true(g3.gen > g2.gen || (g3.gen == g2.gen && g3.n > g2.n));
	TU_OK(cpl_store_read(e->s, version_cb, &version));
	assert_int_equal(version, META_VERSION_RKEY);
	TU_CHECK(e);
	// empty generation 1 (its tasks are the first ones merged): lookups
	// and deletes of the others skip it
	TU_OK(cpl_store_write(e->s, empty_gen1_cb, NULL));
	TU_OK(cpl_store_read(e->s, ugen_cb, &g2));
	assert_true(g2.gen > 1);
	gen_lookups(e, ids2, u2, 40000, none);
	// damage, each found by the check and undone
	struct damage d = { 0 };
	for (d.kind = 0; d.kind < 3; d.kind++) {
		char why[512];
		TU_OK(cpl_store_write(e->s, damage_cb, &d));
		assert_int_equal(cpl_store_check(e->s, why, sizeof(why)),
		    CPL_ECORRUPT);
		assert_non_null(strstr(why, "uuid_gen"));
		d.undo = true;
		TU_OK(cpl_store_write(e->s, damage_cb, &d));
		d.undo = false;
		TU_CHECK(e);
	}
	free(ids);
	free(u);
	free(gone);
	free(ids2);
	free(u2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ubuf_sort),
		cmocka_unit_test_setup_teardown(test_v4_generations, setup_gen,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_million_v7_increasing,
		    setup7, tu_teardown),
		cmocka_unit_test_setup_teardown(test_created_tasks_v7, setup7,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_old_v4_database, setup7,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_v4_buffered, tu_setup,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
