// copal task store on LMDB: the private header of store/src.
//
// Layout (one LMDB environment, named sub-databases; all integers in keys
// are big-endian so that byte order is numeric order):
//
//   meta      "meta"             -> struct meta (counters, next ids, clock)
//   spec      id                 -> packed copal.TaskSpec (written once)
//   state     id                 -> struct srec (rewritten per transition)
//   st_idx    state(1) id        -> ""           tasks by state
//   runq      ~prio(4) id        -> struct fit   runnable, not held,
//                                                of one node
//   wrunq     wf(4) ~prio(4) id  -> struct fit   the same, by workflow (a
//                                                filtered claim's queue)
//   mrunq     nodes(4) ~prio(4) id -> struct fit runnable tasks of more
//                                                than one node, by count
//   wmrunq    wf(4) nodes(4) ~prio(4) id -> struct fit  the same, by
//                                                workflow
//             (a claim walks only the node counts that can fit its nodes,
//             merged in priority order: tasks that cannot fit never hide
//             those that can; meta "mrunq" says older databases' multi-node
//             entries were moved out of runq/wrunq)
//   uuid      uuid(16)           -> id
//   wf_idx    wf(4) id           -> ""           tasks by workflow
//   app_idx   app(4) id          -> ""           tasks by app
//   child     parent id, child   -> ""
//   parent    child id, parent   -> ""
//   lease     lease id           -> struct lrec + owner
//   lease_idx lease id, task id  -> ""           tasks held by a lease
//   notice    lease id, task id  -> ""           kills for a launcher
//   event     seq                -> struct evrec + message
//   task_ev   task id, seq       -> ""
//   names     'w'|'a' name       -> struct nrec  (interned id, task count)
//             'W'|'A' id(4)      -> name
//   app       name               -> packed copal.App
//   uuid_new  uuid(16)           -> id           new uuids (see UUID_MERGE_AT)
//   reply     [client(16)] request id -> time(8) || digest(16) || reply
//   reply_age time(8) reply key  -> ""           replies by age
//   lease_log lease id           -> owner        kept after the lease ends
//   bjob      batch job id       -> packed copal.BatchJob
//   tags      id                 -> "k=v" NUL "k2=v2" NUL   a task's tags
//   tag_idx   tag NUL id         -> ""           tasks by tag
//   tag_runq  tag NUL ~prio(4) id -> struct fit  runnable, not held, by tag
//                                                (a tag-filtered claim)
//   tag_cnt   tag                -> u64[CPL_NSTATES]  tasks of a tag by state
//   runq_ll   ~prio(4) ~ns(8) id -> struct fit   runq in long_large_first
//   wrunq_ll  wf(4) ~prio ~ns id -> struct fit   wrunq in long_large_first
//                                                order (ns: num_nodes x
//                                                wall minutes); kept once
//                                                meta.flags has
//                                                META_LL_QUEUES
//   lease_bj  lease id           -> bjob id(8) + scheduler job id bytes
//                                                (kept after the lease ends)
//   bj_task   bjob id, task id   -> ""           tasks a batch job started
//   bj_count  bjob id            -> struct bjcount
//
// A write transaction loads the meta record once, keeps counters in memory
// and writes it back once at commit: counting by state is one read.
//
// One file per concern. A file calls only files listed below it, never one
// above (no call cycles):
//   check.c       cpl_store_check: rebuild every index and compare
//   env.c         environment open/close, filesystem safety, map growth,
//                 transactions (write, read, nested), stats
//   lease.c       leases: grant, renew, release, expire, notices
//   query.c       task listing (filters, paging), counts, the backlog
//   claim.c       the claim path: runnable tasks placed on offered nodes
//   task.c        create, read, modify, delete tasks; dependencies
//   transition.c  state transitions and their bookkeeping; reports, kills
//   history.c     the history log: append, read, seek
//   app.c         interned workflow and app names, the app registry
//   uuid.c        the uuid index (two trees), uuid prefix lookup
//   record.c      spec and lease records, walks of pair-keyed indices
//   bjob.c        batch job records
//   bjtask.c      tasks by batch job: the index and counters a RUNNING
//                 task's lease keeps
//   reply.c       the reply cache
//   tag.c         the tag indices (a task's tags, tasks by tag, runnable
//                 tasks by tag)
//   archive.c     archiving: a finished task and its history leave the
//                 store (copal db archive); meta "archived" counts the
//                 events removed, the log's gaps
//   dbfile.c      the database file as a whole: its statistics read
//                 beside a running broker, the compacting copy
//
// This header holds the record layouts, the key encoders and the small LMDB
// wrappers as static inline functions: they sit on every hot path and the
// build has no link-time optimization. Functions shared between the files
// are named cs_ ("copal store"): not API, but a static library exports
// them, so they carry a prefix no other part of copal uses.
#ifndef COPAL_STORE_IMPL_H
#define COPAL_STORE_IMPL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lmdb.h>

#include "copal/spec.h"
#include "copal/store.h"

#define META_MAGIC 0x4c41504f43ull // "COPAL"
#define META_VERSION 1u
// Names (workflows and apps, interned under their bytes; batch jobs'
// strings) are as long as a task spec's names may be; a record of a task
// spec, an app or a batch job is as large as a packed task spec may be;
// a batch job spans as many nodes as a task may ask for.
#define MAX_NAME CPL_SPEC_NAME_MAX
#define MAX_MSG 8192u
#define MAX_SPEC CPL_SPEC_BYTES_MAX
#define MAX_NODES CPL_SPEC_NODES_MAX

enum {
	DB_META, DB_SPEC, DB_STATE, DB_ST_IDX, DB_RUNQ, DB_UUID, DB_WF_IDX,
	DB_APP_IDX, DB_CHILD, DB_PARENT, DB_LEASE, DB_LEASE_IDX, DB_NOTICE,
	DB_EVENT, DB_TASK_EV, DB_NAMES, DB_APP, DB_UUID_NEW, DB_REPLY,
	DB_REPLY_AGE, DB_LEASE_LOG, DB_BJOB, DB_WRUNQ, DB_TAGS, DB_TAG_IDX,
	DB_TAG_RUNQ, DB_TAG_CNT, DB_MRUNQ, DB_WMRUNQ, DB_RUNQ_LL, DB_WRUNQ_LL,
	DB_LEASE_BJ, DB_BJ_TASK, DB_BJ_COUNT, DB_COUNT
};

// Names of the sub-databases, indexed by DB_* (env.c).
extern const char *const cs_db_names[DB_COUNT];

// New uuids are appended to the main uuid tree when they sort above its
// last key, as version 7 (time-ordered, task_uuids = time) ones do
// (uuid.c). Those that cannot be appended (a database holding version 4
// uuids from before, whose random high bytes sort above them) go to the
// small uuid_new tree; every UUID_MERGE_AT of them are moved into the main
// uuid tree in one sorted pass at commit. Random keys
// inserted straight into a million-entry tree dirty most of its pages at
// every commit (measured here: 5 GB written for a 100 MB tree, 120k
// inserts/s); the small tree keeps each commit's dirty set small, and a
// merge touches each main page once. Lookups search both trees.
#define UUID_MERGE_AT 65536u
// A merge moves one of UUID_MERGE_SLICES key ranges of uuid_new (by the
// uuid's first byte, in turn), not all of it. LMDB keeps every page a
// write transaction dirtied on its own free list (malloc'd, until the
// environment closes), so the broker's heap is the largest dirty set of
// any one commit: a whole merge of 65,536 random uuids into a 10M-task
// tree dirtied ~45,000 leaves (bench/size_bench: broker RssAnon 74 MB at
// 1M, 215 MB at 10M). A slice's keys are as dense on its part of the
// main tree as the whole merge's on all of it (each slice, merged every
// UUID_MERGE_AT / UUID_MERGE_SLICES creates, holds about that many), so
// leaves dirtied per uuid stay the same while one commit's dirty set is
// a quarter.
#define UUID_MERGE_SLICES 4u
// Random uuids are not put into uuid_new one by one as their tasks are
// made, each a descent to a random leaf of a tree of up to UUID_MERGE_AT
// keys, but kept in the transaction (cpl_txn.ubuf) and put in sorted
// order before anything looks uuids up, at commit, or when this many are
// waiting: sorted keys land on the leaf page the transaction's cursor is
// already on (uuid.c).
#define UUID_BUF_MAX 16384u

// meta.flags: the long_large_first run queues (runq_ll, wrunq_ll) are
// kept. They are built by the first claim in that order and kept from
// then on, so that a database whose launchers all claim fifo pays
// nothing for them.
#define META_LL_QUEUES 1u

struct meta {
	uint64_t magic;
	uint32_t version;
	uint32_t flags;       // META_*
	uint64_t next_task;
	uint64_t next_seq;
	uint64_t next_lease;
	uint64_t last_time;
	uint32_t next_wf;
	uint32_t next_app;
	uint64_t uuid_new_n; // entries in uuid_new
	uint64_t counts[CPL_NSTATES];
};

// Flags in srec.flags.
#define SF_AUTO_RETRY 1u
#define SF_ERR_HANDLER 2u
#define SF_TIMEOUT_HANDLER 4u
// a wall-time cut interrupted the run: the timeout handler runs at the
// next claim (issue 22)
#define SF_HANDLER_DUE 8u
// Cuts that do not count as attempts: at most this many (srec.cuts).
#define CUTS_FREE_MAX 255u
#define SF_TAGGED 16u // the task has tags (entries in tags, tag_idx)

// The small record each transition rewrites.
struct srec {
	uint8_t ver;
	uint8_t state;
	uint8_t flags;
	uint8_t cuts;   // attempts cut by their launcher's end (not counted)
	uint32_t attempt;
	uint32_t pending;
	int32_t priority;
	uint64_t lease;
	int32_t rc;
	uint32_t wf;
	uint32_t app;
	uint32_t wall_min;
	uint16_t nodes;
	uint16_t packing;
	uint16_t gpus; // per node
	uint16_t max_retries;
	uint64_t created_us;
	uint64_t changed_us;
	uint8_t uuid[16];
};
_Static_assert(sizeof(struct srec) == 80, "srec layout");

// What a claim needs to know without reading the task: runq's value.
struct fit {
	uint32_t wf;
	uint32_t wall_min;
	uint16_t nodes;
	uint16_t packing;
	uint16_t gpus;
	uint16_t pad;
};
_Static_assert(sizeof(struct fit) == 16, "fit layout");

struct evrec {
	uint64_t task;
	uint64_t time;
	uint64_t lease;
	uint32_t attempt;
	int32_t rc;
	uint8_t from;
	uint8_t to;
	uint16_t msglen;
	uint8_t nodelen;
	uint8_t skipped;  // EV_SKIP_* stages a launcher's move passed over
	uint8_t flags;    // EVF_*; 0 in records written before them
	uint8_t userlen;  // 0 in records from before users were recorded
	// node bytes, then message bytes follow, no NULs; then, with
	// EVF_ETIME, the event time (8 bytes, host order); then user bytes
};
// Stages a launcher's report jumped over (issue 22: Balsam records each
// stage; copal records the skipped ones on the event that passed them,
// at no cost: no extra write).
#define EV_SKIP_STAGED_IN 1u
#define EV_SKIP_PREPROCESSED 2u
#define EV_SKIP_POSTPROCESSED 4u
// the record carries the launcher's time of the event (StateReport.event_us)
#define EVF_ETIME 0x01u
_Static_assert(sizeof(struct evrec) == 40, "evrec layout");

struct lrec {
	uint64_t deadline;
	uint64_t created;
	uint32_t ttl_ms;
	uint32_t pad;
	// owner bytes follow, no NUL
};

// What a batch job's launchers did (bj_count).
struct bjcount {
	uint64_t ran;     // distinct tasks started
	uint64_t running; // tasks in RUNNING now
	uint64_t failed;  // runs that ended in RUN_ERROR or RUN_TIMEOUT
};

struct nrec {
	uint32_t id;
	uint32_t pad;
	uint64_t count;
};

struct cpl_store {
	MDB_env *env;
	// random bytes for uuids, refilled in bulk; used only by the writer
	uint8_t rnd[4096];
	size_t rnd_used;
	// the key range of uuid_new the next merge moves (UUID_MERGE_SLICES);
	// any order is correct, so a restart beginning at 0 is harmless
	unsigned uuid_slice;
	MDB_dbi dbi[DB_COUNT];
	char *dir;
	int lockfd;
	cpl_store_opts opts;
	uint64_t map_size;
	pthread_mutex_t wlock;     // one writer
	pthread_rwlock_t envlock;  // readers shared; map resize / reopen exclusive
	uint64_t claimable_seq;    // cpl_store_claimable_seq (atomic)
	bool tags_fill;            // opened a database from before the tag
	                           // indices: index its tasks' tags once
};

// A follow-up transition queued by bookkeeping (dependency release,
// cascades, retry policy). Processed in order until none is left, so that a
// chain of any depth needs no recursion.
struct work {
	uint64_t id;
	uint8_t to;
	uint8_t actor;
	uint8_t only_from_mask_set;
	uint32_t only_from; // bit mask of states the task must be in
	char msg[96];
};

struct cpl_txn {
	cpl_store *s;
	MDB_txn *txn;
	cpl_txn *parent;
	bool write;
	int err;        // sticky: set by the first LMDB-level failure
	uint64_t now;
	struct meta meta;
	// work list of follow-up transitions
	struct work *work;
	size_t nwork, capwork;
	// node of the launcher report being applied (for its event)
	const char *node;
	// the report being applied is a wall-time cut (cpl_report.cut)
	bool cut;
	// EV_SKIP_* of the next event written (cs_transition sets it)
	uint8_t ev_skipped;
	// and its event time, clamped (0: none)
	uint64_t etime;
	// the user whose request this is (for its events); NULL: none
	const char *user;
	// cached lease (reports come in batches under one lease)
	uint64_t lease_id;
	struct lrec lease;
	bool lease_ok;
	// cached batch job of a lease (bjtask.c)
	uint64_t bj_lease, bj_id;
	// cached interned names (creates come in batches of one workflow, or
	// of a few: workflows of names up to 47 bytes by a hash of their
	// name, probing 4 slots)
	struct {
		char name[48];
		uint32_t id;
	} wfc[32];
	char app_name[MAX_NAME + 1];
	uint32_t app_id;
	// task-count deltas of interned names, written once at commit
	struct {
		char kind;
		uint32_t id;
		int64_t delta;
	} ndelta[64];
	size_t nndelta;
	// One cursor per sub-database, opened on first use by a write
	// transaction's tget/tput/treserve/tdel and freed by LMDB when the
	// transaction ends (a write transaction's cursors are). A put or get
	// through a cursor already on the right leaf page (keys that grow, as
	// most of a create's do) finds its place on that page without a
	// descent from the root, where mdb_put/mdb_get start from the root
	// every time.
	MDB_cursor *cur[DB_COUNT];
	// and for the puts of wf_idx and wrunq, whose keys start with the
	// workflow, one cursor per workflow (by id, 8 of them): a
	// batch spread over several workflows puts each task next to the
	// last one of its workflow, on the page that workflow's cursor is on
	MDB_cursor *wfcur[2][8];
	// New random (version 4) uuids of this transaction, not yet in
	// uuid_new: put there sorted by cs_uuid_flush (see UUID_BUF_MAX).
	struct ubuf {
		uint8_t u[16];
		uint8_t id[8];
	} *ubuf;
	size_t nubuf, capubuf;
};

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
	if (rc == 0)
		rc = mdb_cursor_del(c, 0);
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

// ------------------------------------------------------------ record.c

// A name of at most MAX_NAME bytes; NULL or "" only if allow_empty.
int cs_check_name(const char *s, bool allow_empty);
// Validates a spec against the rule book (copal/spec.h, all but the packed
// size, which cs_spec_write measures) and derives the record fields it
// fixes into r. Errors: CPL_EINVAL.
int cs_spec_check(const Copal__TaskSpec *sp, struct srec *r);
// Packs a spec under id (CPL_ETOOBIG beyond MAX_SPEC, nothing written).
int cs_spec_write(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp,
    unsigned flags);
// Unpacks a task's spec; a missing or unreadable one is corruption.
int cs_spec_read(cpl_txn *t, uint64_t id, Copal__TaskSpec **out);
// How messages name a task: the first 8 hex digits of its uuid and its
// name ("1a2b3c4d (name)"), which the CLI can look up; uuid: the task's.
void cs_task_label(cpl_txn *t, uint64_t id, const uint8_t uuid[16],
    char *buf, size_t len);
// Reads a lease record through the transaction's one-lease cache.
int cs_lease_load(cpl_txn *t, uint64_t id, struct lrec *out);
// 0 if the lease exists and its deadline has not passed: CPL_ENOTFOUND,
// CPL_EEXPIRED otherwise.
int cs_lease_live(cpl_txn *t, uint64_t id);
// Calls fn(b) for each (a, b) key of a pair-keyed index, in b order.
int cs_pair_walk(cpl_txn *t, int db, uint64_t a, cpl_id_fn fn, void *arg);
// A cpl_id_fn that appends the id to the cpl_ids given as arg.
int cs_idvec_cb(uint64_t id, void *arg);

// ------------------------------------------------------------ uuid.c

// A new uuid: random (version 4), or with opts.uuid_v7 time-ordered
// (version 7), increasing within the process.
int cs_uuid_new(cpl_store *s, uint8_t u[16]);
// Adds a new task's uuid (-> id, big-endian) to the uuid index.
int cs_uuid_add(cpl_txn *t, const uint8_t u[16], const uint8_t id[8]);
// Parses a hex uuid prefix (dashes ignored) for prefix_match().
int cs_parse_prefix(const char *p, uint8_t b[16], size_t *nbytes, int *half);
// Calls fn for the id of every uuid (in both trees) that starts with prefix.
int cs_uuid_walk(cpl_txn *t, const char *prefix, cpl_id_fn fn, void *arg);
// Moves one key range of uuid_new into the main uuid tree (at commit, see
// UUID_MERGE_AT and UUID_MERGE_SLICES).
int cs_uuid_merge(cpl_txn *t);
// Puts the transaction's waiting uuids into uuid_new (UUID_BUF_MAX): at
// commit and before any lookup of uuids in a write transaction.
int cs_uuid_flush(cpl_txn *t);

// ------------------------------------------------------------ app.c

// Looks up (and with create, interns) a workflow ('w') or app ('a') name.
int cs_name_id(cpl_txn *t, char kind, const char *name, bool create,
    uint32_t *id);
// Writes the buffered task-count deltas of names (before commit and before
// anything reads the counts).
int cs_name_count_flush(cpl_txn *t);
// Adds delta to the task count of an interned name (buffered).
int cs_name_count(cpl_txn *t, char kind, uint32_t id, int64_t delta);
// cs_name_id(t, 'w', name, true, id) through the transaction's cache.
int cs_wf_intern(cpl_txn *t, const char *name, uint32_t *id);
// The interned id of a registered app, through the transaction's cache.
int cs_app_lookup(cpl_txn *t, const char *name, uint32_t *id);
// Forgets the transaction's cached names and lease.
void cs_cache_clear(cpl_txn *t);

// ------------------------------------------------------------ history.c

// Appends one history event; newest: the task was just created; etime:
// the launcher's time of the event (0: none, the commit time stands).
int cs_event_write(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg,
    const char *node, uint64_t etime, bool newest);
// cs_event_write() without a node, for a task that is not the newest.
int cs_event_append(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg);

// ------------------------------------------------------------ bjtask.c

// The batch job of a lease (0: none, or a lease of a launcher started by
// hand), through the transaction's cache.
int cs_lease_bjob(cpl_txn *t, uint64_t lease, uint64_t *bjob);
// cpl_store_check of lease_bj, bj_task and bj_count (CPL_ECORRUPT: why)
int cs_bj_check(cpl_txn *t, char *why, size_t len);
// An archived task leaves batch job bjob's tasks (bj_task) and its count
// of tasks run (which counts the tasks in the store; a task never RUNNING
// in the job is no error).
int cs_bj_forget(cpl_txn *t, uint64_t bjob, uint64_t id);
// Records a task's move into or out of RUNNING under its lease's batch
// job: the bj_task index and the job's counters.
int cs_bj_note(cpl_txn *t, uint64_t id, uint64_t lease, cpl_state from,
    cpl_state to);

// ------------------------------------------------------------ task.c

// Deletes a task, its index entries and links (cpl_task_delete); with
// note, a "deleted" event is appended to its history, which stays.
int cs_task_remove(cpl_txn *t, uint64_t id, bool note);

// ------------------------------------------------------------ archive.c

// Events removed from the log with the tasks archived (meta "archived"):
// the log's gaps, which cpl_store_check accounts for.
int cs_archived_events(cpl_txn *t, uint64_t *n);

// ------------------------------------------------------------ transition.c

// The one place a task's state changes; r is its current record, updated
// and written. Follow-ups are queued: cs_drain() applies them.
int cs_transition(cpl_txn *t, uint64_t id, struct srec *r, cpl_state to,
    cpl_actor actor, int32_t rc, const char *msg);
// Applies queued follow-up transitions until none is left; *changed (may
// be NULL) counts those applied.
int cs_drain(cpl_txn *t, uint64_t *changed);

#endif // COPAL_STORE_IMPL_H
