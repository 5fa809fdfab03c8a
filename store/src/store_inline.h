// copal task store: the small LMDB wrappers, key encoders and record
// helpers of store/src, as static inline functions (they sit on every hot
// path and the build has no link-time optimization). Included by
// store_impl.h only, after the record layouts it uses.
#ifndef COPAL_STORE_INLINE_H
#define COPAL_STORE_INLINE_H

// ------------------------------------------------------------ helpers

static inline void
be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t
rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void
be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t
prio_key(int32_t prio)
{
	// higher priority sorts first
	return ~((uint32_t)prio ^ 0x80000000u);
}

// Maps an LMDB (or errno) code to ours. Here rather than in env.c: every
// file's LMDB calls need it, and env.c calls into the other files.
static inline int
map_mdb(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return CPL_ENOTFOUND;
	case MDB_KEYEXIST:
		return CPL_EEXISTS;
	case MDB_MAP_FULL:
		return CPL_EMAPFULL;
	case MDB_TXN_FULL:
	case MDB_BAD_VALSIZE:
		return CPL_ETOOBIG;
	case MDB_PANIC:
		return CPL_EPANIC;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		return CPL_ECORRUPT;
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:
		return CPL_EVERSION;
	case MDB_READERS_FULL:
		return CPL_EBUSY;
	case ENOMEM:
		return CPL_ENOMEM;
	case EIO:
	case ENOSPC:
	case EDQUOT:
		return CPL_EIO;
	case ENOENT:
		return CPL_ENOTFOUND;
	case EACCES:
	case EPERM:
		return CPL_EINVAL;
	default:
		return CPL_EINTERNAL;
	}
}

// Records an LMDB-level failure: the transaction is poisoned.
static inline int
fail(cpl_txn *t, int cplerr)
{
	if (t->err == 0)
		t->err = cplerr;
	return t->err;
}

// The write transaction's cursor on db (see cpl_txn.cur); NULL and the
// transaction poisoned if LMDB cannot open one.
static inline MDB_cursor *
tcur(cpl_txn *t, int db)
{
	if (t->cur[db] == NULL) {
		int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &t->cur[db]);
		if (rc) {
			t->cur[db] = NULL;
			fail(t, map_mdb(rc));
		}
	}
	return t->cur[db];
}

// The cursor for a put of workflow wf's key into wf_idx or wrunq (see
// cpl_txn.wfcur).
static inline MDB_cursor *
tcur_wf(cpl_txn *t, int db, uint32_t wf)
{
	size_t n = sizeof(t->wfcur[0]) / sizeof(t->wfcur[0][0]);
	MDB_cursor **c = &t->wfcur[db == DB_WF_IDX ? 0 : 1][wf % n];
	if (*c == NULL) {
		int rc = mdb_cursor_open(t->txn, t->s->dbi[db], c);
		if (rc) {
			*c = NULL;
			fail(t, map_mdb(rc));
		}
	}
	return *c;
}

// mdb_cursor_put through c (from tcur or tcur_wf).
static inline int
cput(cpl_txn *t, MDB_cursor *c, const void *k, size_t kl, const void *v,
    size_t vl, unsigned flags)
{
	if (t->err)
		return t->err;
	if (c == NULL)
		return t->err ? t->err : fail(t, CPL_EINTERNAL);
	MDB_val key = { kl, (void *)k }, val = { vl, (void *)v };
	int rc = mdb_cursor_put(c, &key, &val, flags);
	t->changes++;
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

static inline int
tget(cpl_txn *t, int db, const void *k, size_t kl, MDB_val *v)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k };
	int rc;
	if (t->write) {
		MDB_cursor *c = tcur(t, db);
		if (c == NULL)
			return t->err;
		rc = mdb_cursor_get(c, &key, v, MDB_SET);
	} else {
		rc = mdb_get(t->txn, t->s->dbi[db], &key, v);
	}
	if (rc == MDB_NOTFOUND)
		return CPL_ENOTFOUND;
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

static inline int
tput(cpl_txn *t, int db, const void *k, size_t kl, const void *v, size_t vl,
    unsigned flags)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k }, val = { vl, (void *)v };
	MDB_cursor *c = tcur(t, db);
	if (c == NULL)
		return t->err;
	int rc = mdb_cursor_put(c, &key, &val, flags);
	t->changes++;
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

// Reserves vl bytes for a value and returns where to write them.
static inline int
treserve(cpl_txn *t, int db, const void *k, size_t kl, size_t vl,
    unsigned flags, void **out)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k }, val = { vl, NULL };
	MDB_cursor *c = tcur(t, db);
	if (c == NULL)
		return t->err;
	int rc = mdb_cursor_put(c, &key, &val, flags | MDB_RESERVE);
	t->changes++;
	if (rc)
		return fail(t, map_mdb(rc));
	*out = val.mv_data;
	return 0;
}

// Deletes a key that must exist (an index entry): absence is corruption.
static inline int
tdel(cpl_txn *t, int db, const void *k, size_t kl)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k }, v;
	MDB_cursor *c = tcur(t, db);
	if (c == NULL)
		return t->err;
	int rc = mdb_cursor_get(c, &key, &v, MDB_SET);
	if (rc == 0) {
		rc = mdb_cursor_del(c, 0);
		t->changes++;
	}
	if (rc == MDB_NOTFOUND)
		return fail(t, CPL_ECORRUPT);
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

static inline int
tcursor(cpl_txn *t, int db, MDB_cursor **c)
{
	if (t->err)
		return t->err;
	int rc = mdb_cursor_open(t->txn, t->s->dbi[db], c);
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

// Positions c at the first key >= (prefix, from) and tells whether that key
// still starts with prefix. Returns 0 and *ok, or an error.
static inline int
crange(cpl_txn *t, MDB_cursor *c, MDB_cursor_op op, const uint8_t *prefix,
    size_t plen, const uint8_t *start, size_t slen, MDB_val *k, MDB_val *v,
    bool *ok)
{
	int rc;
	*ok = false;
	if (op == MDB_SET_RANGE) {
		k->mv_data = (void *)start;
		k->mv_size = slen;
	}
	rc = mdb_cursor_get(c, k, v, op);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return fail(t, map_mdb(rc));
	*ok = k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0;
	return 0;
}

// A point lookup through a cursor kept open across lookups: for keys in
// increasing order (a walk of an index in id order), LMDB finds the next
// key on the page it is on without a descent from the root, several
// times faster than mdb_get. *c is opened on first use (close it).
static inline int
cget(cpl_txn *t, MDB_cursor **c, int db, const void *k, size_t kl,
    MDB_val *v)
{
	if (t->err)
		return t->err;
	if (*c == NULL) {
		int orc = mdb_cursor_open(t->txn, t->s->dbi[db], c);
		if (orc)
			return fail(t, map_mdb(orc));
	}
	MDB_val key = { kl, (void *)k };
	int rc = mdb_cursor_get(*c, &key, v, MDB_SET);
	if (rc == MDB_NOTFOUND)
		return CPL_ENOTFOUND;
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

// ------------------------------------------------------------ records

static inline int
srec_get(cpl_txn *t, uint64_t id, struct srec *r)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	be64(k, id);
	if ((rv = tget(t, DB_STATE, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size != sizeof(*r))
		return fail(t, CPL_ECORRUPT);
	memcpy(r, v.mv_data, sizeof(*r));
	return 0;
}

static inline int
srec_put(cpl_txn *t, uint64_t id, const struct srec *r)
{
	uint8_t k[8];
	be64(k, id);
	return tput(t, DB_STATE, k, 8, r, sizeof(*r), 0);
}

static inline void
st_key(uint8_t k[9], cpl_state s, uint64_t id)
{
	k[0] = (uint8_t)s;
	be64(k + 1, id);
}

static inline void
runq_key(uint8_t k[12], int32_t prio, uint64_t id)
{
	be32(k, prio_key(prio));
	be64(k + 4, id);
}

static inline void
wrunq_key(uint8_t k[16], uint32_t wf, int32_t prio, uint64_t id)
{
	be32(k, wf);
	runq_key(k + 4, prio, id);
}

// The node count a task's run queues are kept by: 1 for every task of one
// node (packed or not), else its num_nodes.
static inline uint32_t
nodes_class(uint32_t nodes)
{
	return nodes > 1 ? nodes : 1;
}

static inline void
mrunq_key(uint8_t k[16], uint32_t nodes, int32_t prio, uint64_t id)
{
	be32(k, nodes);
	runq_key(k + 4, prio, id);
}

static inline void
wmrunq_key(uint8_t k[20], uint32_t wf, uint32_t nodes, int32_t prio,
    uint64_t id)
{
	be32(k, wf);
	mrunq_key(k + 4, nodes, prio, id);
}

// A task's footprint in node-minutes: the long_large_first queues sort by
// it, largest first (a task of unknown wall time counts one minute).
static inline uint64_t
fit_size(const struct fit *f)
{
	return (uint64_t)(f->nodes ? f->nodes : 1) *
	    (f->wall_min ? f->wall_min : 1);
}

static inline void
runq_ll_key(uint8_t k[20], int32_t prio, uint64_t size, uint64_t id)
{
	be32(k, prio_key(prio));
	be64(k + 4, ~size);
	be64(k + 12, id);
}

static inline void
wrunq_ll_key(uint8_t k[24], uint32_t wf, int32_t prio, uint64_t size,
    uint64_t id)
{
	be32(k, wf);
	runq_ll_key(k + 4, prio, size, id);
}

static inline void
pair_key(uint8_t k[16], uint64_t a, uint64_t b)
{
	be64(k, a);
	be64(k + 8, b);
}

static inline void
idx32_key(uint8_t k[12], uint32_t a, uint64_t id)
{
	be32(k, a);
	be64(k + 4, id);
}

static inline struct fit
fit_of(const struct srec *r)
{
	struct fit f;
	memset(&f, 0, sizeof(f));
	f.wf = r->wf;
	f.wall_min = r->wall_min;
	f.nodes = r->nodes;
	f.packing = r->packing;
	f.gpus = r->gpus;
	return f;
}

static inline bool
runnable(const struct srec *r)
{
	return r->lease == 0 &&
	    (r->state == CPL_READY || r->state == CPL_RESTART_READY);
}

// Whether a task in this state is still held by the launcher that claimed it.
static inline bool
holds_lease(cpl_state s)
{
	switch (s) {
	case CPL_READY:
	case CPL_RESTART_READY:
	case CPL_STAGED_IN:
	case CPL_PREPROCESSED:
	case CPL_RUNNING:
	case CPL_RUN_DONE:
	case CPL_POSTPROCESSED:
	case CPL_RUN_ERROR:
	case CPL_RUN_TIMEOUT:
		return true;
	default:
		return false;
	}
}

// ------------------------------------------------------------ tag.c
// (declared here: the run queue's helpers below call it)

// Adds (add) or removes a runnable task's entries in tag_runq.
int cs_tag_runq(cpl_txn *t, uint64_t id, const struct srec *r, bool add);
// Writes a new task's tags (tags, tag_idx); sp's tags are checked.
int cs_tag_add(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp);
// Moves a tagged task from state `from` to `to` in the counters of its
// tags (CPL_STATE_NONE: it is new / it goes).
int cs_tag_count(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to);
// Removes a task's tags from tags and tag_idx (not tag_runq).
int cs_tag_del(cpl_txn *t, uint64_t id);
// Whether task id carries tag (a point lookup in tag_idx; through *c as
// cget() when c is not NULL).
int cs_tag_has(cpl_txn *t, uint64_t id, const char *tag, bool *has);
int cs_tag_has_c(cpl_txn *t, MDB_cursor **c, uint64_t id, const char *tag,
    bool *has);
// Indexes the tags of every task of a database written before the tag
// indices existed (at open, once): tasks whose tags are all well formed
// get SF_TAGGED and their entries; others stay unindexed (a `modify ID
// tags K=V` fixes them).
int cs_tag_fill(cpl_txn *t);
// cpl_store_check's look at the tag counters: each equals a recount of
// its tag's entries. CPL_ECORRUPT with the reason in why.
int cs_tag_check_counts(cpl_txn *t, char *why, size_t len);
// cpl_store_check's look at one task (r, sp): its tag entries are all
// there; adds to n[0..2] the entries of tags, tag_idx and tag_runq it
// implies. CPL_ECORRUPT with the reason in why.
int cs_tag_check_task(cpl_txn *t, uint64_t id, const struct srec *r,
    const Copal__TaskSpec *sp, uint64_t n[3], char *why, size_t len);
// The key prefix of a tag in tag_idx and tag_runq: tag bytes, NUL.
// Returns its length, or 0 for a tag over CPL_TAG_MAX bytes.
size_t cs_tag_prefix(uint8_t *k, const char *tag);

// The keys of a runnable task in its two queues (runq and wrunq, or
// mrunq and wmrunq for more than one node): dbs, keys, key lengths.
static inline void
runq_keys(const struct srec *r, uint64_t id, int db[2], uint8_t k[16],
    uint8_t wk[20], size_t len[2])
{
	uint32_t n = nodes_class(r->nodes);
	if (n == 1) {
		db[0] = DB_RUNQ, db[1] = DB_WRUNQ;
		runq_key(k, r->priority, id);
		wrunq_key(wk, r->wf, r->priority, id);
		len[0] = 12, len[1] = 16;
	} else {
		db[0] = DB_MRUNQ, db[1] = DB_WMRUNQ;
		mrunq_key(k, n, r->priority, id);
		wmrunq_key(wk, r->wf, n, r->priority, id);
		len[0] = 16, len[1] = 20;
	}
}

// A runnable task has one entry in each run queue: by priority then age
// (runq and per workflow wrunq, or mrunq and wmrunq for tasks of more
// than one node), by tag (tag_runq, tagged tasks) and, once a launcher
// has claimed in long_large_first order (META_LL_QUEUES), by priority then
// size (runq_ll, wrunq_ll), so that either claim order is one walk.
static inline int
runq_ll_put(cpl_txn *t, uint64_t id, int32_t prio, const struct fit *f)
{
	uint8_t lk[20], wlk[24];
	uint64_t sz = fit_size(f);
	int rv;
	runq_ll_key(lk, prio, sz, id);
	wrunq_ll_key(wlk, f->wf, prio, sz, id);
	if ((rv = tput(t, DB_RUNQ_LL, lk, 20, f, sizeof(*f), 0)) != 0)
		return rv;
	return tput(t, DB_WRUNQ_LL, wlk, 24, f, sizeof(*f), 0);
}

static inline int
runq_add(cpl_txn *t, uint64_t id, const struct srec *r)
{
	uint8_t k[16], wk[20];
	int db[2];
	size_t len[2];
	struct fit f = fit_of(r);
	int rv;
	runq_keys(r, id, db, k, wk, len);
	__atomic_add_fetch(&t->s->claimable_seq, 1, __ATOMIC_RELEASE);
	if ((rv = tput(t, db[0], k, len[0], &f, sizeof(f), 0)) != 0)
		return rv;
	if (db[1] == DB_WRUNQ)
		rv = cput(t, tcur_wf(t, DB_WRUNQ, r->wf), wk, len[1], &f,
		    sizeof(f), 0);
	else
		rv = tput(t, db[1], wk, len[1], &f, sizeof(f), 0);
	if (rv != 0)
		return rv;
	if ((t->meta.flags & META_LL_QUEUES) &&
	    (rv = runq_ll_put(t, id, r->priority, &f)) != 0)
		return rv;
	return (r->flags & SF_TAGGED) ? cs_tag_runq(t, id, r, true) : 0;
}

// Deletes a runnable task's entries of the long_large_first queues.
static inline int
runq_ll_del(cpl_txn *t, uint64_t id, int32_t prio, const struct fit *f)
{
	uint8_t lk[20], wlk[24];
	uint64_t sz = fit_size(f);
	int rv;
	runq_ll_key(lk, prio, sz, id);
	wrunq_ll_key(wlk, f->wf, prio, sz, id);
	if ((rv = tdel(t, DB_RUNQ_LL, lk, 20)) != 0)
		return rv;
	return tdel(t, DB_WRUNQ_LL, wlk, 24);
}

static inline int
runq_del(cpl_txn *t, uint64_t id, const struct srec *r)
{
	uint8_t k[16], wk[20];
	int db[2];
	size_t len[2];
	int rv;
	runq_keys(r, id, db, k, wk, len);
	if ((rv = tdel(t, db[0], k, len[0])) != 0 ||
	    (rv = tdel(t, db[1], wk, len[1])) != 0)
		return rv;
	if (t->meta.flags & META_LL_QUEUES) {
		struct fit f = fit_of(r);
		if ((rv = runq_ll_del(t, id, r->priority, &f)) != 0)
			return rv;
	}
	return (r->flags & SF_TAGGED) ? cs_tag_runq(t, id, r, false) : 0;
}

static inline int
notice_add(cpl_txn *t, uint64_t lease, uint64_t id)
{
	uint8_t k[16];
	pair_key(k, lease, id);
	return tput(t, DB_NOTICE, k, 16, "", 0, 0);
}

// Bit of a state in a mask of states.
#define BIT(s) (1u << (s))

// The public view of a task's state record (no spec).
static inline void
task_fill(cpl_task *out, uint64_t id, const struct srec *r)
{
	memset(out, 0, sizeof(*out));
	out->id = id;
	memcpy(out->uuid, r->uuid, 16);
	out->state = (cpl_state)r->state;
	out->attempt = r->attempt;
	out->lease = r->lease;
	out->return_code = r->rc;
	out->pending_parents = r->pending;
	out->priority = r->priority;
	out->created_us = r->created_us;
	out->changed_us = r->changed_us;
	out->cuts = r->cuts;
	out->timeout_handler_due = (r->flags & SF_HANDLER_DUE) &&
	    (r->flags & SF_TIMEOUT_HANDLER);
}

// Whether uuid u starts with a prefix parsed by cs_parse_prefix().
static inline bool
prefix_match(const uint8_t *u, const uint8_t *b, size_t nbytes, int half)
{
	if (memcmp(u, b, nbytes) != 0)
		return false;
	return half < 0 || (u[nbytes] >> 4) == half;
}


#endif // COPAL_STORE_INLINE_H
