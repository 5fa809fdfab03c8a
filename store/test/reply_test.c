// Stored replies (idempotent retries): get, put, replace, prune by age and
// count, written atomically with the request's effects, kept across a
// reopen, and rekeyed (request id first) in a database written before.
#include "../src/store_impl.h"
#include "copal/testing/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct rep_arg {
	uint64_t id;
	const uint8_t *client;   // NULL: a request without a client id
	uint8_t digest;          // the digest's first byte; the rest 0
	const void *data;
	size_t len;
	// get: a copy of what was found
	unsigned char *got;
	size_t got_len;
	// prune
	uint64_t older;
	size_t max, n;
	int ret; // returned by the write callback after its work
} rep_arg;

static cpl_reqkey
key_of(const rep_arg *a)
{
	cpl_reqkey k;
	memset(&k, 0, sizeof k);
	k.client = a->client;
	k.id = a->id;
	k.digest[0] = a->digest;
	return k;
}

static int
get_cb(cpl_txn *txn, void *arg)
{
	rep_arg *a = arg;
	const void *d = NULL;
	size_t len = 0;
	free(a->got);
	a->got = NULL;
	a->got_len = 0;
	cpl_reqkey k = key_of(a);
	int rv = cpl_reply_get(txn, &k, &d, &len);
	if (rv != 0)
		return rv;
	// valid only until the transaction ends: copy now
	a->got = malloc(len ? len : 1);
	if (a->got == NULL)
		return CPL_ENOMEM;
	memcpy(a->got, d, len);
	a->got_len = len;
	return 0;
}

static int
rget(tu_env *e, uint64_t id, rep_arg *a)
{
	a->id = id;
	return cpl_store_read(e->s, get_cb, a);
}

static int
put_cb(cpl_txn *txn, void *arg)
{
	rep_arg *a = arg;
	cpl_reqkey k = key_of(a);
	int rv = cpl_reply_put(txn, &k, a->data, a->len);
	return rv ? rv : a->ret;
}

static int
rput(tu_env *e, uint64_t id, const void *data, size_t len)
{
	rep_arg a;
	memset(&a, 0, sizeof a);
	a.id = id;
	a.data = data;
	a.len = len;
	return cpl_store_write(e->s, put_cb, &a);
}

static int
prune_cb(cpl_txn *txn, void *arg)
{
	rep_arg *a = arg;
	a->n = 0;
	return cpl_reply_prune(txn, a->older, a->max, &a->n);
}

static int
prune_null_cb(cpl_txn *txn, void *arg)
{
	rep_arg *a = arg;
	return cpl_reply_prune(txn, a->older, a->max, NULL);
}

static int
rprune(tu_env *e, uint64_t older, size_t max, size_t *n)
{
	rep_arg a;
	memset(&a, 0, sizeof a);
	a.older = older;
	a.max = max;
	int rv = cpl_store_write(e->s, prune_cb, &a);
	*n = rv == 0 ? a.n : 0;
	return rv;
}

static void
expect_reply(tu_env *e, uint64_t id, const void *data, size_t len)
{
	rep_arg a;
	memset(&a, 0, sizeof a);
	TU_OK(rget(e, id, &a));
	assert_int_equal(a.got_len, len);
	assert_memory_equal(a.got, data, len);
	free(a.got);
}

static void
expect_no_reply(tu_env *e, uint64_t id)
{
	rep_arg a;
	memset(&a, 0, sizeof a);
	TU_ERR(rget(e, id, &a), CPL_ENOTFOUND);
	free(a.got);
}

static void
test_reply_roundtrip(void **state)
{
	tu_env *e = *state;
	expect_no_reply(e, 7);
	TU_OK(rput(e, 7, "hello", 5));
	expect_reply(e, 7, "hello", 5);
	expect_no_reply(e, 8);
	expect_no_reply(e, 6);
	// Replace with a longer one.
	TU_OK(rput(e, 7, "hello, world", 12));
	expect_reply(e, 7, "hello, world", 12);
	// Many ids, binary data with NULs, a large one.
	unsigned char bin[64];
	for (int i = 0; i < 64; i++)
		bin[i] = (unsigned char)(i * 37);
	bin[5] = 0;
	for (uint64_t id = 100; id < 150; id++)
		TU_OK(rput(e, id, bin, (size_t)(id - 100) + 1));
	for (uint64_t id = 100; id < 150; id++)
		expect_reply(e, id, bin, (size_t)(id - 100) + 1);
	size_t big_len = 200000;
	unsigned char *big = malloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	TU_OK(rput(e, UINT64_MAX, big, big_len));
	expect_reply(e, UINT64_MAX, big, big_len);
	free(big);
	expect_reply(e, 7, "hello, world", 12);
}

// A reply is stored with the request's effects or not at all.
typedef struct with_effects {
	uint64_t req;
	int fail;
	uint64_t task;
	int rv_sub;
} with_effects;

static int
effects_fn(cpl_txn *txn, void *arg)
{
	with_effects *w = arg;
	tu_spec sp;
	tu_spec_init(&sp, "req-task", "req", "app");
	uint8_t u[16];
	int rv = cpl_task_create(txn, &sp.spec, &w->task, u);
	cpl_reqkey k;
	memset(&k, 0, sizeof k);
	k.id = w->req;
	if (rv == 0)
		rv = cpl_reply_put(txn, &k, "ok", 2);
	return rv ? rv : w->fail;
}

static int
sub_cb(cpl_txn *txn, void *arg)
{
	with_effects *w = arg;
	w->rv_sub = cpl_txn_sub(txn, effects_fn, w);
	return 0;
}

static void
test_reply_atomic_with_effects(void **state)
{
	tu_env *e = *state;
	with_effects w = { 1, 0, 0, 0 };
	TU_OK(cpl_store_write(e->s, effects_fn, &w));
	expect_reply(e, 1, "ok", 2);
	TU_STATE(e, w.task, CPL_READY);
	// The whole write fails: no task, no reply.
	w = (with_effects){ 2, CPL_EINTERNAL, 0, 0 };
	TU_ERR(cpl_store_write(e->s, effects_fn, &w), CPL_EINTERNAL);
	expect_no_reply(e, 2);
	assert_int_equal(tu_stats(e).ntasks, 1);
	// A failed sub-transaction: no task, no reply; the outer commits.
	w = (with_effects){ 3, CPL_EINVAL, 0, 0 };
	TU_OK(cpl_store_write(e->s, sub_cb, &w));
	TU_ERR(w.rv_sub, CPL_EINVAL);
	expect_no_reply(e, 3);
	assert_int_equal(tu_stats(e).ntasks, 1);
	// A good sub-transaction: both.
	w = (with_effects){ 4, 0, 0, 0 };
	TU_OK(cpl_store_write(e->s, sub_cb, &w));
	TU_OK(w.rv_sub);
	expect_reply(e, 4, "ok", 2);
	assert_int_equal(tu_stats(e).ntasks, 2);
}

static void
test_reply_prune(void **state)
{
	tu_env *e = *state;
	for (uint64_t id = 1; id <= 5; id++)
		TU_OK(rput(e, id, "old", 3));
	tu_advance_ms(e, 10000);
	for (uint64_t id = 6; id <= 8; id++)
		TU_OK(rput(e, id, "new", 3));
	size_t n = 99;
	// Nothing is older than the start.
	TU_OK(rprune(e, TU_T0, 100, &n));
	assert_int_equal(n, 0);
	// At most 2 at a time.
	TU_OK(rprune(e, TU_T0 + 5000000, 2, &n));
	assert_int_equal(n, 2);
	size_t left = 0;
	for (uint64_t id = 1; id <= 5; id++) {
		rep_arg a;
		memset(&a, 0, sizeof a);
		int rv = rget(e, id, &a);
		free(a.got);
		TU_ERR2(rv, 0, CPL_ENOTFOUND);
		left += rv == 0;
	}
	assert_int_equal(left, 3);
	TU_OK(rprune(e, TU_T0 + 5000000, 100, &n));
	assert_int_equal(n, 3);
	for (uint64_t id = 1; id <= 5; id++)
		expect_no_reply(e, id);
	for (uint64_t id = 6; id <= 8; id++)
		expect_reply(e, id, "new", 3);
	TU_OK(rprune(e, TU_T0 + 5000000, 100, &n));
	assert_int_equal(n, 0);
	// A replaced reply counts from its new time.
	tu_advance_ms(e, 10000); // T0 + 20 s
	TU_OK(rput(e, 6, "newer", 5));
	TU_OK(rprune(e, TU_T0 + 15000000, 100, &n));
	assert_int_equal(n, 2); // 7 and 8
	expect_reply(e, 6, "newer", 5);
	expect_no_reply(e, 7);
	// n may be NULL.
	rep_arg a;
	memset(&a, 0, sizeof a);
	a.older = UINT64_MAX;
	a.max = 100;
	TU_OK(cpl_store_write(e->s, prune_null_cb, &a));
	expect_no_reply(e, 6);
}

static void
test_reply_survives_reopen(void **state)
{
	tu_env *e = *state; // durable
	unsigned char big[500];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 29 + 5);
	TU_OK(rput(e, 42, "the answer", 10));
	TU_OK(rput(e, 43, big, sizeof big)); // in the log
	TU_OK(tu_reopen(e));
	expect_reply(e, 42, "the answer", 10);
	expect_reply(e, 43, big, sizeof big);
}

// Identity: the same request id of two clients (and of the shared
// namespace of requests without a client id) names three requests; the
// same key with another digest is refused, not answered with the reply.
static void
test_reply_identity(void **state)
{
	tu_env *e = *state;
	static const uint8_t ca[CPL_CLIENT_ID_LEN] = { 1, 2, 3 };
	static const uint8_t cb[CPL_CLIENT_ID_LEN] = { 1, 2, 4 };
	rep_arg a;
	memset(&a, 0, sizeof a);
	a.id = 7;
	a.client = ca;
	a.digest = 0xaa;
	a.data = "register";
	a.len = 8;
	TU_OK(cpl_store_write(e->s, put_cb, &a));
	a.client = cb;
	a.digest = 0xbb;
	TU_ERR(cpl_store_read(e->s, get_cb, &a), CPL_ENOTFOUND);
	a.data = "delete";
	a.len = 6;
	TU_OK(cpl_store_write(e->s, put_cb, &a));
	TU_OK(cpl_store_read(e->s, get_cb, &a));
	assert_int_equal(a.got_len, 6);
	assert_memory_equal(a.got, "delete", 6);
	// client a: its own reply for the same digest, a refusal for another
	a.client = ca;
	a.digest = 0xaa;
	TU_OK(cpl_store_read(e->s, get_cb, &a));
	assert_int_equal(a.got_len, 8);
	assert_memory_equal(a.got, "register", 8);
	a.digest = 0xbb;
	TU_ERR(cpl_store_read(e->s, get_cb, &a), CPL_EREUSED);
	// no client id: a namespace of its own, digest checked too
	a.client = NULL;
	a.digest = 0xaa;
	TU_ERR(cpl_store_read(e->s, get_cb, &a), CPL_ENOTFOUND);
	TU_OK(rput(e, 7, "legacy", 6));
	expect_reply(e, 7, "legacy", 6);
	a.digest = 0xcc;
	TU_ERR(cpl_store_read(e->s, get_cb, &a), CPL_EREUSED);
	free(a.got);
	// all three are pruned by age
	size_t n = 0;
	TU_OK(rprune(e, UINT64_MAX, 100, &n));
	assert_int_equal(n, 3);
	expect_no_reply(e, 7);
}

struct logstat {
	uint32_t version;
	size_t nlog, nreply, nage;
};

static int
logstat_cb(cpl_txn *t, void *arg)
{
	struct logstat *ls = arg;
	MDB_stat st;
	ls->version = t->meta.version;
	if (mdb_stat(t->txn, t->s->dbi[DB_REPLY_LOG], &st) != 0)
		return CPL_EINTERNAL;
	ls->nlog = st.ms_entries;
	if (mdb_stat(t->txn, t->s->dbi[DB_REPLY], &st) != 0)
		return CPL_EINTERNAL;
	ls->nreply = st.ms_entries;
	if (mdb_stat(t->txn, t->s->dbi[DB_REPLY_AGE], &st) != 0)
		return CPL_EINTERNAL;
	ls->nage = st.ms_entries;
	return 0;
}

static struct logstat
logstat(tu_env *e)
{
	struct logstat ls;
	memset(&ls, 0, sizeof ls);
	TU_OK(cpl_store_read(e->s, logstat_cb, &ls));
	return ls;
}

// Deletes reply_log's first entry behind the store's back, checks the
// store in the same transaction (arg: the check's report, 512 bytes), and
// undoes it all (CHECKED when the check ran).
#define CHECKED CPL_ECYCLE // no store call here returns it
static int
drop_log_cb(cpl_txn *t, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_cursor_open(t->txn, t->s->dbi[DB_REPLY_LOG], &c) != 0)
		return CPL_EINTERNAL;
	int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	if (rc == 0)
		rc = mdb_cursor_del(c, 0);
	mdb_cursor_close(c);
	if (rc)
		return CPL_EINTERNAL;
	if (cpl_txn_check(t, arg, 512) != CPL_ECORRUPT)
		return CPL_EINTERNAL;
	return CHECKED;
}

// Replies of 64 bytes or more keep their bytes in reply_log, in commit
// order (the scattered entry keeps where): answered byte for byte,
// replaced either way, pruned with their entries, checked, and the
// database marked so that binaries from before the log refuse it.
static void
test_reply_log(void **state)
{
	tu_env *e = *state;
	unsigned char big[300], big2[64];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 13 + 1);
	memset(big2, 0x5a, sizeof big2);
	TU_OK(rput(e, 1, "small", 5));
	struct logstat ls = logstat(e);
	assert_int_equal(ls.nlog, 0);
	assert_int_equal(ls.version, META_VERSION_RKEY); // any reply marks it
	TU_OK(rput(e, 2, big, sizeof big));
	TU_OK(rput(e, 3, big2, sizeof big2));
	TU_OK(rput(e, 4, big2, sizeof big2 - 1)); // 63 bytes: inline
	ls = logstat(e);
	assert_int_equal(ls.nlog, 2);
	assert_int_equal(ls.nreply, 4);
	assert_int_equal(ls.nage, 4);
	assert_int_equal(ls.version, META_VERSION_RKEY);
	expect_reply(e, 1, "small", 5);
	expect_reply(e, 2, big, sizeof big);
	expect_reply(e, 3, big2, sizeof big2);
	expect_reply(e, 4, big2, sizeof big2 - 1);
	TU_CHECK(e);
	// replaced: logged by small, small by logged, logged by logged
	TU_OK(rput(e, 2, "now small", 9));
	TU_OK(rput(e, 1, big, sizeof big));
	TU_OK(rput(e, 3, big, 100));
	ls = logstat(e);
	assert_int_equal(ls.nlog, 2);
	assert_int_equal(ls.nreply, 4);
	expect_reply(e, 1, big, sizeof big);
	expect_reply(e, 2, "now small", 9);
	expect_reply(e, 3, big, 100);
	TU_CHECK(e);
	// pruned with their entries
	size_t n = 0;
	TU_OK(rprune(e, UINT64_MAX, 100, &n));
	assert_int_equal(n, 4);
	ls = logstat(e);
	assert_int_equal(ls.nlog, 0);
	assert_int_equal(ls.nreply, 0);
	assert_int_equal(ls.nage, 0);
	assert_int_equal(ls.version, META_VERSION_RKEY);
	expect_no_reply(e, 1);
	TU_CHECK(e);
	// the log starts again after being emptied
	TU_OK(rput(e, 5, big, sizeof big));
	TU_OK(rput(e, 6, big2, sizeof big2));
	expect_reply(e, 5, big, sizeof big);
	expect_reply(e, 6, big2, sizeof big2);
	TU_CHECK(e);
	// the check finds bytes gone from the log (undone after)
	char why[512] = "";
	TU_ERR(cpl_store_write(e->s, drop_log_cb, why), CHECKED);
	assert_non_null(strstr(why, "not in reply_log"));
	expect_reply(e, 5, big, sizeof big);
}

// Puts back the key order of the binaries before META_VERSION_RKEY
// (client id, then request id) in reply and reply_age, and marks the
// database as they did: a database they wrote.
static int
old_order_db(MDB_txn *txn, MDB_dbi db, size_t total, size_t at)
{
	struct ent {
		uint8_t k[32];
		size_t kn;
		void *v;
		size_t vn;
	} *ents = NULL;
	size_t n = 0;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;
	if (mdb_cursor_open(txn, db, &c) != 0)
		return CPL_EINTERNAL;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		ents = realloc(ents, (n + 1) * sizeof(*ents));
		assert_non_null(ents);
		struct ent *e = &ents[n++];
		const uint8_t *p = k.mv_data;
		assert_true(k.mv_size <= sizeof(e->k));
		e->kn = k.mv_size;
		if (k.mv_size == total) { // id, client -> client, id
			memcpy(e->k, p, at);
			memcpy(e->k + at, p + at + 8, 16);
			memcpy(e->k + at + 16, p + at, 8);
		} else {
			memcpy(e->k, p, k.mv_size);
		}
		e->vn = v.mv_size;
		e->v = malloc(v.mv_size ? v.mv_size : 1);
		assert_non_null(e->v);
		memcpy(e->v, v.mv_data, v.mv_size);
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND || mdb_drop(txn, db, 0) != 0)
		return CPL_EINTERNAL;
	int rv = 0;
	for (size_t i = 0; i < n; i++) {
		MDB_val nk = { ents[i].kn, ents[i].k }, nv = { ents[i].vn,
			ents[i].v };
		int prc = rv ? 0 : mdb_put(txn, db, &nk, &nv, 0);
		if (prc != 0) // a full map grows and the write runs again
			rv = prc == MDB_MAP_FULL ? CPL_EMAPFULL : CPL_EINTERNAL;
		free(ents[i].v);
	}
	free(ents);
	return rv;
}

static int
old_order_cb(cpl_txn *t, void *arg)
{
	(void)arg;
	int rv = old_order_db(t->txn, t->s->dbi[DB_REPLY], 24, 0);
	if (rv == 0)
		rv = old_order_db(t->txn, t->s->dbi[DB_REPLY_AGE], 32, 8);
	t->meta.version = META_VERSION_RLOG;
	return rv;
}

static void
expect_client_reply(tu_env *e, const uint8_t *client, uint64_t id,
    const void *data, size_t len)
{
	rep_arg a;
	memset(&a, 0, sizeof a);
	a.client = client;
	TU_OK(rget(e, id, &a));
	assert_int_equal(a.got_len, len);
	assert_memory_equal(a.got, data, len);
	free(a.got);
}

static int
rput_client(tu_env *e, const uint8_t *client, uint64_t id, const void *data,
    size_t len)
{
	rep_arg a;
	memset(&a, 0, sizeof a);
	a.client = client;
	a.id = id;
	a.data = data;
	a.len = len;
	return cpl_store_write(e->s, put_cb, &a);
}

// Replies are keyed request id first (clients number requests by the
// time, so a commit's replies sort together); any reply stored marks the
// database META_VERSION_RKEY. One written by the binaries before, client
// id first, is rekeyed when it is opened: every reply is found again,
// byte for byte, the check passes, and it is marked. One without replies
// is left as it is.
static void
test_reply_rekey(void **state)
{
	tu_env *e = *state;
	static const uint8_t ca[CPL_CLIENT_ID_LEN] = { 0xa1, 2, 3 };
	static const uint8_t cb[CPL_CLIENT_ID_LEN] = { 0x07, 9, 9, 9 };
	unsigned char big[200];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	// an empty database opened again is not marked
	TU_OK(tu_reopen(e));
	assert_int_equal(logstat(e).version, META_VERSION);
	TU_OK(rput_client(e, ca, 1700000000000002ull, "a-two", 5));
	assert_int_equal(logstat(e).version, META_VERSION_RKEY);
	TU_OK(rput_client(e, cb, 1700000000000001ull, big, sizeof big));
	TU_OK(rput_client(e, ca, 1700000000000003ull, big, 100));
	TU_OK(rput(e, 5, "no client", 9));
	TU_CHECK(e);
	// as the binaries before wrote it
	TU_OK(cpl_store_write(e->s, old_order_cb, NULL));
	struct logstat ls = logstat(e);
	assert_int_equal(ls.version, META_VERSION_RLOG);
	rep_arg a;
	memset(&a, 0, sizeof a);
	a.client = ca;
	TU_ERR(rget(e, 1700000000000002ull, &a), CPL_ENOTFOUND);
	TU_OK(tu_reopen(e));
	ls = logstat(e);
	assert_int_equal(ls.version, META_VERSION_RKEY);
	assert_int_equal(ls.nreply, 4);
	assert_int_equal(ls.nage, 4);
	assert_int_equal(ls.nlog, 2);
	expect_client_reply(e, ca, 1700000000000002ull, "a-two", 5);
	expect_client_reply(e, cb, 1700000000000001ull, big, sizeof big);
	expect_client_reply(e, ca, 1700000000000003ull, big, 100);
	expect_reply(e, 5, "no client", 9);
	TU_CHECK(e);
	// and pruned as any
	size_t n = 0;
	TU_OK(rprune(e, UINT64_MAX, 100, &n));
	assert_int_equal(n, 4);
	ls = logstat(e);
	assert_int_equal(ls.nreply + ls.nage + ls.nlog, 0);
	TU_CHECK(e);
}

static int
many_puts_cb(cpl_txn *txn, void *arg)
{
	uint64_t *base = arg;
	static const uint8_t cl[CPL_CLIENT_ID_LEN] = { 0x42 };
	for (int i = 0; i < 1000; i++) {
		cpl_reqkey k;
		memset(&k, 0, sizeof k);
		k.client = cl;
		k.id = *base + (uint64_t)i;
		int rv = cpl_reply_put(txn, &k, "a small reply, inline", 21);
		if (rv)
			return rv;
	}
	*base += 1000;
	return 0;
}

// A database whose map is mostly its old-order replies: the rekeying at
// open needs room for a copy of them, more than the map has; the open
// grows the map and the replies are found again.
static void
test_reply_rekey_grows_map(void **state)
{
	tu_env *e = *state;
	e->opts.map_size = 1u << 20;
	TU_OK(tu_reopen(e));
	uint64_t base = 1700000000000000ull;
	for (int i = 0; i < 40; i++)
		TU_OK(cpl_store_write(e->s, many_puts_cb, &base));
	TU_OK(cpl_store_write(e->s, old_order_cb, NULL));
	cpl_store_stats st0, st1;
	TU_OK(cpl_store_stats_get(e->s, &st0));
	TU_OK(tu_reopen(e));
	TU_OK(cpl_store_stats_get(e->s, &st1));
	assert_true(st1.map_size > st0.map_size);
	struct logstat ls = logstat(e);
	assert_int_equal(ls.version, META_VERSION_RKEY);
	assert_int_equal(ls.nreply, 40000);
	static const uint8_t cl[CPL_CLIENT_ID_LEN] = { 0x42 };
	expect_client_reply(e, cl, 1700000000000000ull + 12345,
	    "a small reply, inline", 21);
	TU_CHECK(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reply_roundtrip, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_reply_atomic_with_effects,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_reply_prune, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_reply_identity, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_reply_survives_reopen,
		    tu_setup_durable, tu_teardown),
		cmocka_unit_test_setup_teardown(test_reply_rekey, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_reply_rekey_grows_map,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_reply_log, tu_setup,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
