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
//   uuid      uuid(16)           -> id           version 7 uuids (appended),
//                                                version 4 ones of old databases
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
//   reply     request id [client(16)] -> time(8) || digest(16) || reply
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
//   uuid_gen  gen(4) uuid(16)    -> id           random uuids merged from
//                                                uuid_new, in generations of
//                                                UUID_GEN_MAX; meta "ugen"
//                                                (struct ugen): the newest
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
// This header holds the record layouts and the transaction; it includes
// store_inline.h (the key encoders and the small LMDB wrappers as static
// inline functions: they sit on every hot path and the build has no
// link-time optimization) and store_fn.h (the functions shared between the
// files, named cs_ ("copal store"): not API, but a static library exports
// them, so they carry a prefix no other part of copal uses).
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
// A database whose random uuids went into uuid_gen (the first merge into
// a generation sets it): binaries from before uuid_gen would not find
// those uuids, so they refuse it (CPL_EVERSION) rather than answer
// "no such task" or fail deletes. Databases without a generation stay at
// META_VERSION, which both open.
#define META_VERSION_UGEN 2u
// A database whose stored replies went into reply_log (reply.c; the first
// reply stored there sets it): binaries from before it would answer a
// resent request with the log's position for its reply, so they refuse
// it. It may have uuid generations too.
#define META_VERSION_RLOG 3u
// A database whose stored replies are keyed request id first (reply.c;
// the first reply stored, or the rekeying of older ones when the
// database is opened, sets it): binaries from before it would not find
// them and would apply a resent request again. It has reply_log as
// META_VERSION_RLOG has.
#define META_VERSION_RKEY 4u
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
	DB_LEASE_BJ, DB_BJ_TASK, DB_BJ_COUNT, DB_UUID_GEN, DB_REPLY_LOG,
	DB_COUNT
};

// Names of the sub-databases, indexed by DB_* (env.c).
extern const char *const cs_db_names[DB_COUNT];

// New uuids are appended to the main uuid tree when they sort above its
// last key, as version 7 (time-ordered, task_uuids = time) ones do
// (uuid.c). Those that cannot be appended (a database holding version 4
// uuids from before, whose random high bytes sort above them) go to the
// small uuid_new tree; every UUID_MERGE_AT of them, a key range is moved
// into a generation of uuid_gen (UUID_GEN_MAX) in one sorted pass at
// commit. Random keys inserted straight into a million-entry tree dirty
// most of its pages at every commit (measured here: 5 GB written for a
// 100 MB tree, 120k inserts/s); the small tree keeps each commit's dirty
// set small, and a merge touches each page of its range once. Lookups
// search every tree.
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
// Random uuids are merged not into the main tree but into generations of
// at most about UUID_GEN_MAX uuids each (sub-database uuid_gen, keys: the
// generation, big-endian 32 bits, then the uuid; cpl_store_opts
// .uuid_gen_max overrides it for tests): a merge dirties about every leaf
// of the key range it merges into, so merging into one tree of all N
// uuids cost each uuid a leaf write that grew with N (store_bench -C:
// 1.4 GB written for 1M creates, 69 GB for 10M, create 228k -> 121k
// tasks/s). A generation's size is bounded, so the merge's cost per uuid
// is too; lookups by prefix search each generation (N / UUID_GEN_MAX
// seeks). The generation merged into now and its count are the meta
// record "ugen" (struct ugen); a database without it has none yet.
#define UUID_GEN_MAX 1048576u
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

// meta "ugen": the generation of uuid_gen random uuids are merged into
// now (0: none yet) and how many entries it holds.
struct ugen {
	uint32_t gen;
	uint32_t pad;
	uint64_t n;
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
	// Changes made so far: every put and delete (the helpers of
	// store_inline.h, and the few direct LMDB calls beside them) and
	// every change kept for the commit (name-count deltas, buffered
	// uuids, follow-up work) counts one. cpl_txn_direct tells by it
	// whether a failed call left something behind.
	uint64_t changes;
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
	} *ubuf, *utmp; // utmp: cs_ubuf_sort's room
	size_t nubuf, capubuf, caputmp;
};

// the inline helpers, then the cs_ functions of each file
#include "store_inline.h"
#include "store_fn.h"

#endif // COPAL_STORE_IMPL_H
