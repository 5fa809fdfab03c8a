// copal task store on LMDB.
//
// Layout (one LMDB environment, named sub-databases; all integers in keys
// are big-endian so that byte order is numeric order):
//
//   meta      "meta"             -> struct meta (counters, next ids, clock)
//   spec      id                 -> packed copal.TaskSpec (written once)
//   state     id                 -> struct srec (rewritten per transition)
//   st_idx    state(1) id        -> ""           tasks by state
//   runq      ~prio(4) id        -> struct fit   runnable, not held
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
//
// A write transaction loads the meta record once, keeps counters in memory
// and writes it back once at commit: counting by state is one read.
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <uuid/uuid.h>

#include "copal/dbdir.h"
#include "copal/store.h"

#define META_MAGIC 0x4c41504f43ull // "COPAL"
#define META_VERSION 1u
#define MAX_NAME 255u
#define MAX_MSG 8192u
#define MAX_SPEC (1u << 20)
#define MAX_NODES 65535u

enum {
	DB_META, DB_SPEC, DB_STATE, DB_ST_IDX, DB_RUNQ, DB_UUID, DB_WF_IDX,
	DB_APP_IDX, DB_CHILD, DB_PARENT, DB_LEASE, DB_LEASE_IDX, DB_NOTICE,
	DB_EVENT, DB_TASK_EV, DB_NAMES, DB_APP, DB_UUID_NEW, DB_REPLY,
	DB_REPLY_AGE, DB_LEASE_LOG, DB_BJOB, DB_COUNT
};

static const char *const db_names[DB_COUNT] = {
	"meta", "spec", "state", "st_idx", "runq", "uuid", "wf_idx",
	"app_idx", "child", "parent", "lease", "lease_idx", "notice",
	"event", "task_ev", "names", "app", "uuid_new", "reply", "reply_age",
	"lease_log", "bjob",
};

// New uuids go to the small uuid_new tree; every UUID_MERGE_AT of them are
// moved into the main uuid tree in one sorted pass at commit. Random keys
// inserted straight into a million-entry tree dirty most of its pages at
// every commit (measured here: 5 GB written for a 100 MB tree, 120k
// inserts/s); the small tree keeps each commit's dirty set small, and a
// merge touches each main page once. Lookups search both trees.
#define UUID_MERGE_AT 65536u

struct meta {
	uint64_t magic;
	uint32_t version;
	uint32_t pad;
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

// The small record each transition rewrites.
struct srec {
	uint8_t ver;
	uint8_t state;
	uint8_t flags;
	uint8_t pad;
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
	uint8_t pad[3];
	// node bytes, then message bytes follow, no NULs
};
_Static_assert(sizeof(struct evrec) == 40, "evrec layout");

struct lrec {
	uint64_t deadline;
	uint64_t created;
	uint32_t ttl_ms;
	uint32_t pad;
	// owner bytes follow, no NUL
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
	MDB_dbi dbi[DB_COUNT];
	char *dir;
	int lockfd;
	cpl_store_opts opts;
	uint64_t map_size;
	pthread_mutex_t wlock;     // one writer
	pthread_rwlock_t envlock;  // readers shared; map resize / reopen exclusive
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
	// cached lease (reports come in batches under one lease)
	uint64_t lease_id;
	struct lrec lease;
	bool lease_ok;
	// cached interned names (creates come in batches of one workflow)
	char wf_name[MAX_NAME + 1];
	uint32_t wf_id;
	char app_name[MAX_NAME + 1];
	uint32_t app_id;
	// task-count deltas of interned names, written once at commit
	struct {
		char kind;
		uint32_t id;
		int64_t delta;
	} ndelta[64];
	size_t nndelta;
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
prio_key(int32_t prio)
{
	// higher priority sorts first
	return ~((uint32_t)prio ^ 0x80000000u);
}

static int
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
static int
fail(cpl_txn *t, int cplerr)
{
	if (t->err == 0)
		t->err = cplerr;
	return t->err;
}

static int
tget(cpl_txn *t, int db, const void *k, size_t kl, MDB_val *v)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k };
	int rc = mdb_get(t->txn, t->s->dbi[db], &key, v);
	if (rc == MDB_NOTFOUND)
		return CPL_ENOTFOUND;
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

static int
tput(cpl_txn *t, int db, const void *k, size_t kl, const void *v, size_t vl,
    unsigned flags)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k }, val = { vl, (void *)v };
	int rc = mdb_put(t->txn, t->s->dbi[db], &key, &val, flags);
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

// Reserves vl bytes for a value and returns where to write them.
static int
treserve(cpl_txn *t, int db, const void *k, size_t kl, size_t vl,
    unsigned flags, void **out)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k }, val = { vl, NULL };
	int rc = mdb_put(t->txn, t->s->dbi[db], &key, &val, flags | MDB_RESERVE);
	if (rc)
		return fail(t, map_mdb(rc));
	*out = val.mv_data;
	return 0;
}

// Deletes a key that must exist (an index entry): absence is corruption.
static int
tdel(cpl_txn *t, int db, const void *k, size_t kl)
{
	if (t->err)
		return t->err;
	MDB_val key = { kl, (void *)k };
	int rc = mdb_del(t->txn, t->s->dbi[db], &key, NULL);
	if (rc == MDB_NOTFOUND)
		return fail(t, CPL_ECORRUPT);
	if (rc)
		return fail(t, map_mdb(rc));
	return 0;
}

static int
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
static int
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

static uint64_t
clock_now(const cpl_store *s)
{
	if (s->opts.clock != NULL)
		return s->opts.clock(s->opts.clock_arg);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
cpl_txn_error(const cpl_txn *txn)
{
	return txn ? txn->err : CPL_EINVAL;
}

uint64_t
cpl_txn_now(const cpl_txn *txn)
{
	return txn->now;
}

// ------------------------------------------------------------ records

static int
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

static int
srec_put(cpl_txn *t, uint64_t id, const struct srec *r)
{
	uint8_t k[8];
	be64(k, id);
	return tput(t, DB_STATE, k, 8, r, sizeof(*r), 0);
}

static void
st_key(uint8_t k[9], cpl_state s, uint64_t id)
{
	k[0] = (uint8_t)s;
	be64(k + 1, id);
}

static void
runq_key(uint8_t k[12], int32_t prio, uint64_t id)
{
	be32(k, prio_key(prio));
	be64(k + 4, id);
}

static void
pair_key(uint8_t k[16], uint64_t a, uint64_t b)
{
	be64(k, a);
	be64(k + 8, b);
}

static void
idx32_key(uint8_t k[12], uint32_t a, uint64_t id)
{
	be32(k, a);
	be64(k + 4, id);
}

static struct fit
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

static bool
runnable(const struct srec *r)
{
	return r->lease == 0 &&
	    (r->state == CPL_READY || r->state == CPL_RESTART_READY);
}

// Whether a task in this state is still held by the launcher that claimed it.
static bool
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

static int
runq_add(cpl_txn *t, uint64_t id, const struct srec *r)
{
	uint8_t k[12];
	struct fit f = fit_of(r);
	runq_key(k, r->priority, id);
	return tput(t, DB_RUNQ, k, 12, &f, sizeof(f), 0);
}

static int
runq_del(cpl_txn *t, uint64_t id, const struct srec *r)
{
	uint8_t k[12];
	runq_key(k, r->priority, id);
	return tdel(t, DB_RUNQ, k, 12);
}

// Appends one history event. `newest` says the task is the newest one
// (just created): its (task, seq) key is then the last of task_ev and is
// appended without a search.
static int
event_write(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg,
    const char *node, bool newest)
{
	uint8_t k[8], tk[16];
	size_t ml = msg ? strnlen(msg, MAX_MSG) : 0;
	size_t nl = node ? strnlen(node, 255) : 0;
	void *p = NULL;
	int rv;
	uint64_t seq = t->meta.next_seq++;
	be64(k, seq);
	if ((rv = treserve(t, DB_EVENT, k, 8, sizeof(struct evrec) + nl + ml,
	         MDB_APPEND, &p)) != 0)
		return rv;
	struct evrec e;
	memset(&e, 0, sizeof(e));
	e.task = id;
	e.time = t->now;
	e.lease = lease;
	e.attempt = attempt;
	e.rc = rc;
	e.from = (uint8_t)from;
	e.to = (uint8_t)to;
	e.msglen = (uint16_t)ml;
	e.nodelen = (uint8_t)nl;
	memcpy(p, &e, sizeof(e));
	if (nl)
		memcpy((char *)p + sizeof(e), node, nl);
	if (ml)
		memcpy((char *)p + sizeof(e) + nl, msg, ml);
	pair_key(tk, id, seq);
	return tput(t, DB_TASK_EV, tk, 16, "", 0, newest ? MDB_APPEND : 0);
}

static int
event_append(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg)
{
	return event_write(t, id, from, to, attempt, lease, rc, msg, NULL,
	    false);
}

// ------------------------------------------------------------ names

// Looks up (and with create, interns) a workflow ('w') or app ('a') name.
static int
name_id(cpl_txn *t, char kind, const char *name, bool create, uint32_t *id)
{
	uint8_t k[1 + MAX_NAME];
	size_t n = strlen(name);
	MDB_val v;
	int rv;
	if (n > MAX_NAME)
		return CPL_EINVAL;
	k[0] = (uint8_t)kind;
	memcpy(k + 1, name, n);
	rv = tget(t, DB_NAMES, k, 1 + n, &v);
	if (rv == 0) {
		struct nrec nr;
		if (v.mv_size != sizeof(nr))
			return fail(t, CPL_ECORRUPT);
		memcpy(&nr, v.mv_data, sizeof(nr));
		*id = nr.id;
		return 0;
	}
	if (rv != CPL_ENOTFOUND || !create)
		return rv;
	struct nrec nr = { 0, 0, 0 };
	nr.id = kind == 'w' ? t->meta.next_wf++ : t->meta.next_app++;
	if ((rv = tput(t, DB_NAMES, k, 1 + n, &nr, sizeof(nr), 0)) != 0)
		return rv;
	uint8_t rk[5];
	rk[0] = (uint8_t)(kind - 'a' + 'A');
	be32(rk + 1, nr.id);
	if ((rv = tput(t, DB_NAMES, rk, 5, name, n, 0)) != 0)
		return rv;
	*id = nr.id;
	return 0;
}

// Reads the name of an interned id into buf (MAX_NAME + 1 bytes).
static int
name_of(cpl_txn *t, char kind, uint32_t id, char *buf)
{
	uint8_t rk[5];
	MDB_val v;
	int rv;
	rk[0] = (uint8_t)(kind - 'a' + 'A');
	be32(rk + 1, id);
	if ((rv = tget(t, DB_NAMES, rk, 5, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	size_t n = v.mv_size > MAX_NAME ? MAX_NAME : v.mv_size;
	memcpy(buf, v.mv_data, n);
	buf[n] = '\0';
	return 0;
}

// Writes the task count delta of one interned name.
static int
name_count_write(cpl_txn *t, char kind, uint32_t id, int64_t delta)
{
	char name[MAX_NAME + 1];
	uint8_t k[1 + MAX_NAME];
	MDB_val v;
	int rv;
	if ((rv = name_of(t, kind, id, name)) != 0)
		return rv;
	size_t n = strlen(name);
	k[0] = (uint8_t)kind;
	memcpy(k + 1, name, n);
	if ((rv = tget(t, DB_NAMES, k, 1 + n, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	struct nrec nr;
	memcpy(&nr, v.mv_data, sizeof(nr));
	nr.count = (uint64_t)((int64_t)nr.count + delta);
	return tput(t, DB_NAMES, k, 1 + n, &nr, sizeof(nr), 0);
}

// Writes every buffered count delta. Called before commit and before
// anything reads the counts.
static int
name_count_flush(cpl_txn *t)
{
	int rv = 0;
	for (size_t i = 0; i < t->nndelta && rv == 0; i++)
		if (t->ndelta[i].delta != 0)
			rv = name_count_write(t, t->ndelta[i].kind,
			    t->ndelta[i].id, t->ndelta[i].delta);
	t->nndelta = 0;
	return rv;
}

// Adds delta to the task count of an interned name (buffered: a batch of
// creates in one workflow costs one write).
static int
name_count(cpl_txn *t, char kind, uint32_t id, int64_t delta)
{
	int rv;
	for (size_t i = 0; i < t->nndelta; i++) {
		if (t->ndelta[i].kind == kind && t->ndelta[i].id == id) {
			t->ndelta[i].delta += delta;
			return 0;
		}
	}
	if (t->nndelta == sizeof(t->ndelta) / sizeof(t->ndelta[0]) &&
	    (rv = name_count_flush(t)) != 0)
		return rv;
	t->ndelta[t->nndelta].kind = kind;
	t->ndelta[t->nndelta].id = id;
	t->ndelta[t->nndelta].delta = delta;
	t->nndelta++;
	return 0;
}

// Cached forms for the create path, where one batch shares names.
static int
wf_intern(cpl_txn *t, const char *name, uint32_t *id)
{
	int rv;
	if (strcmp(t->wf_name, name) == 0 && t->wf_id != 0) {
		*id = t->wf_id;
		return 0;
	}
	if ((rv = name_id(t, 'w', name, true, id)) != 0)
		return rv;
	snprintf(t->wf_name, sizeof(t->wf_name), "%s", name);
	t->wf_id = *id;
	return 0;
}

static int
app_lookup(cpl_txn *t, const char *name, uint32_t *id)
{
	int rv;
	MDB_val v;
	if (strcmp(t->app_name, name) == 0 && t->app_id != 0) {
		*id = t->app_id;
		return 0;
	}
	size_t n = strlen(name);
	if (n == 0 || n > MAX_NAME)
		return CPL_ENOTFOUND;
	// the app record must exist, not only its interned name
	if ((rv = tget(t, DB_APP, name, n, &v)) != 0)
		return rv;
	if ((rv = name_id(t, 'a', name, false, id)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	snprintf(t->app_name, sizeof(t->app_name), "%s", name);
	t->app_id = *id;
	return 0;
}

static void
cache_clear(cpl_txn *t)
{
	t->wf_name[0] = '\0';
	t->wf_id = 0;
	t->app_name[0] = '\0';
	t->app_id = 0;
	t->lease_ok = false;
	t->lease_id = 0;
}

// Interned ids start at 1 so that 0 means "none" in caches.

// ------------------------------------------------------------ batch jobs

#define MAX_BJOB_STR 4096u

static bool
bjob_str_ok(const char *s, size_t max, bool allow_empty)
{
	if (s == NULL)
		return allow_empty;
	size_t n = strnlen(s, max + 1);
	return n <= max && (allow_empty || n > 0);
}

bool
cpl_bjob_move_ok(Copal__BatchJobState from, Copal__BatchJobState to)
{
	if (to == COPAL__BATCH_JOB_STATE__BJ_UNSPECIFIED ||
	    to == COPAL__BATCH_JOB_STATE__BJ_SUBMITTING)
		return from == to;
	switch (from) {
	case COPAL__BATCH_JOB_STATE__BJ_SUBMITTING:
		return to == COPAL__BATCH_JOB_STATE__BJ_QUEUED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_RUNNING ||
		    to == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_SUBMIT_FAILED;
	case COPAL__BATCH_JOB_STATE__BJ_QUEUED:
		return to == COPAL__BATCH_JOB_STATE__BJ_QUEUED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_RUNNING ||
		    to == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_CANCELLED;
	case COPAL__BATCH_JOB_STATE__BJ_RUNNING:
		return to == COPAL__BATCH_JOB_STATE__BJ_RUNNING ||
		    to == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_CANCELLED;
	default: // final states stay
		return from == to;
	}
}

static bool
bjob_final(Copal__BatchJobState s)
{
	return s == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
	    s == COPAL__BATCH_JOB_STATE__BJ_SUBMIT_FAILED ||
	    s == COPAL__BATCH_JOB_STATE__BJ_CANCELLED;
}

// Packs job under its id and hands back a decoded copy.
static int
bjob_store(cpl_txn *t, const Copal__BatchJob *job, Copal__BatchJob **out)
{
	uint8_t k[8];
	void *p = NULL;
	int rv;
	size_t sz = protobuf_c_message_get_packed_size(&job->base);
	if (sz > MAX_SPEC)
		return CPL_ETOOBIG;
	be64(k, job->id);
	if ((rv = treserve(t, DB_BJOB, k, 8, sz, 0, &p)) != 0)
		return rv;
	protobuf_c_message_pack(&job->base, p);
	if (out) {
		*out = copal__batch_job__unpack(NULL, sz, p);
		if (*out == NULL)
			return CPL_ENOMEM;
	}
	return 0;
}

int
cpl_bjob_add(cpl_txn *t, const Copal__BatchJob *job, Copal__BatchJob **out)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv;
	if (t == NULL || job == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (!bjob_str_ok(job->scheduler, MAX_NAME, false) ||
	    !bjob_str_ok(job->scheduler_id, MAX_NAME, true) ||
	    !bjob_str_ok(job->project, MAX_NAME, true) ||
	    !bjob_str_ok(job->queue, MAX_NAME, true) ||
	    !bjob_str_ok(job->job_mode, MAX_NAME, false) ||
	    !bjob_str_ok(job->wf_filter, MAX_NAME, true) ||
	    !bjob_str_ok(job->script, MAX_BJOB_STR, true) ||
	    !bjob_str_ok(job->message, MAX_MSG, true) ||
	    !bjob_str_ok(job->sched_flags, MAX_BJOB_STR, true) ||
	    !bjob_str_ok(job->origin, MAX_NAME, true) ||
	    !bjob_str_ok(job->sched_state, MAX_NAME, true) ||
	    job->nodes == 0 || job->nodes > MAX_NODES ||
	    job->wall_minutes == 0)
		return CPL_EINVAL;
	uint64_t id = 1;
	if ((rv = tcursor(t, DB_BJOB, &c)) != 0)
		return rv;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8)
		id = rd64(k.mv_data) + 1;
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fail(t, map_mdb(rc));
	Copal__BatchJob j = *job;
	j.id = id;
	j.state = COPAL__BATCH_JOB_STATE__BJ_SUBMITTING;
	j.submitted_us = j.updated_us = t->now;
	j.started_us = j.ended_us = 0;
	return bjob_store(t, &j, out);
}

int
cpl_bjob_get(cpl_txn *t, uint64_t id, Copal__BatchJob **out)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || out == NULL)
		return CPL_EINVAL;
	be64(k, id);
	if ((rv = tget(t, DB_BJOB, k, 8, &v)) != 0)
		return rv;
	*out = copal__batch_job__unpack(NULL, v.mv_size, v.mv_data);
	return *out ? 0 : fail(t, CPL_ECORRUPT);
}

static bool
set_if(const char *s)
{
	return s != NULL && s[0] != '\0';
}

int
cpl_bjob_update(cpl_txn *t, const Copal__BatchJobUpdateRequest *u,
    Copal__BatchJob **out)
{
	Copal__BatchJob *old = NULL;
	int rv;
	if (t == NULL || u == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (!bjob_str_ok(u->scheduler_id, MAX_NAME, true) ||
	    !bjob_str_ok(u->message, MAX_MSG, true) ||
	    !bjob_str_ok(u->sched_state, MAX_NAME, true) ||
	    !bjob_str_ok(u->script, MAX_BJOB_STR, true) ||
	    u->state == COPAL__BATCH_JOB_STATE__BJ_UNSPECIFIED)
		return CPL_EINVAL;
	if ((rv = cpl_bjob_get(t, u->id, &old)) != 0)
		return rv;
	if (!cpl_bjob_move_ok(old->state, u->state)) {
		copal__batch_job__free_unpacked(old, NULL);
		return CPL_EBADSTATE;
	}
	Copal__BatchJob j = *old;
	if (set_if(u->scheduler_id))
		j.scheduler_id = u->scheduler_id;
	if (set_if(u->message))
		j.message = u->message;
	if (set_if(u->sched_state))
		j.sched_state = u->sched_state;
	if (set_if(u->script))
		j.script = u->script;
	if (u->state != old->state) {
		j.state = u->state;
		if (u->state == COPAL__BATCH_JOB_STATE__BJ_RUNNING)
			j.started_us = t->now;
		if (bjob_final(u->state))
			j.ended_us = t->now;
	}
	j.updated_us = t->now;
	rv = bjob_store(t, &j, out);
	copal__batch_job__free_unpacked(old, NULL);
	return rv;
}

int
cpl_bjob_list(cpl_txn *t, cpl_bjob_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv = 0;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = tcursor(t, DB_BJOB, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		Copal__BatchJob *j =
		    copal__batch_job__unpack(NULL, v.mv_size, v.mv_data);
		if (j == NULL) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		rv = fn(j, arg);
		copal__batch_job__free_unpacked(j, NULL);
		if (rv)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

// ------------------------------------------------------------ backlog

// Keeps the max_unfit smallest ids seen, sorted.
static void
keep_smallest(cpl_backlog *b, uint64_t id)
{
	size_t n = b->nunfit_ids;
	if (b->max_unfit == 0)
		return;
	if (n == b->max_unfit) {
		if (id >= b->unfit_ids[n - 1])
			return;
		n--; // the largest falls out
	}
	size_t i = n;
	while (i > 0 && b->unfit_ids[i - 1] > id) {
		b->unfit_ids[i] = b->unfit_ids[i - 1];
		i--;
	}
	b->unfit_ids[i] = id;
	b->nunfit_ids = n + 1;
}

static bool
limit_fits(const cpl_queue_limit *q, const struct fit *f)
{
	uint32_t nodes = f->nodes ? f->nodes : 1;
	return nodes <= q->max_nodes && f->gpus <= q->gpus_per_node &&
	    (q->max_minutes == 0 || f->wall_min <= q->max_minutes);
}

int
cpl_backlog_get(cpl_txn *t, const char *workflow,
    const cpl_queue_limit *limits, size_t nlimits, cpl_backlog *out)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint32_t wf = 0;
	int rc, rv;
	if (t == NULL || out == NULL || (nlimits && limits == NULL) ||
	    (out->max_unfit && out->unfit_ids == NULL))
		return CPL_EINVAL;
	out->tasks = out->node_units = out->unfit = 0;
	out->max_nodes = out->max_minutes = 0;
	out->nunfit_ids = 0;
	if (workflow && workflow[0]) {
		rv = name_id(t, 'w', workflow, false, &wf);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL)
			return 0; // no such workflow: no backlog
		if (rv)
			return rv;
	}
	if ((rv = tcursor(t, DB_RUNQ, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fit f;
		if (k.mv_size != 12 || v.mv_size != sizeof(f)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&f, v.mv_data, sizeof(f));
		if (wf && f.wf != wf)
			continue;
		bool ok = nlimits == 0;
		for (size_t i = 0; i < nlimits && !ok; i++)
			ok = limit_fits(&limits[i], &f);
		if (!ok) {
			// the run queue is in priority order; ids are kept
			// smallest first
			uint64_t id = rd64((uint8_t *)k.mv_data + 4);
			out->unfit++;
			keep_smallest(out, id);
			continue;
		}
		uint32_t nodes = f.nodes ? f.nodes : 1;
		uint32_t packing = f.packing ? f.packing : 1;
		out->tasks++;
		out->node_units += nodes == 1 ?
		    (CPL_NODE_UNITS + packing - 1) / packing :
		    (uint64_t)nodes * CPL_NODE_UNITS;
		if (nodes > out->max_nodes)
			out->max_nodes = nodes;
		if (f.wall_min > out->max_minutes)
			out->max_minutes = f.wall_min;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	else
		rv = 0;
	mdb_cursor_close(c);
	return rv;
}

// ------------------------------------------------------------ leases

static int
lease_load(cpl_txn *t, uint64_t id, struct lrec *out)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t->lease_ok && t->lease_id == id) {
		*out = t->lease;
		return 0;
	}
	be64(k, id);
	if ((rv = tget(t, DB_LEASE, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size < sizeof(*out))
		return fail(t, CPL_ECORRUPT);
	memcpy(out, v.mv_data, sizeof(*out));
	t->lease = *out;
	t->lease_id = id;
	t->lease_ok = true;
	return 0;
}

static int
lease_live(cpl_txn *t, uint64_t id)
{
	struct lrec l;
	int rv;
	if (id == 0)
		return CPL_ENOTFOUND;
	if ((rv = lease_load(t, id, &l)) != 0)
		return rv;
	if (l.deadline < t->now)
		return CPL_EEXPIRED;
	return 0;
}

static int
notice_add(cpl_txn *t, uint64_t lease, uint64_t id)
{
	uint8_t k[16];
	pair_key(k, lease, id);
	return tput(t, DB_NOTICE, k, 16, "", 0, 0);
}

// ------------------------------------------------------------ transitions

static int
work_push(cpl_txn *t, uint64_t id, cpl_state to, cpl_actor actor,
    uint32_t only_from, const char *msg)
{
	if (t->nwork == t->capwork) {
		size_t cap = t->capwork ? t->capwork * 2 : 64;
		struct work *w = realloc(t->work, cap * sizeof(*w));
		if (w == NULL)
			return fail(t, CPL_ENOMEM);
		t->work = w;
		t->capwork = cap;
	}
	struct work *w = &t->work[t->nwork++];
	w->id = id;
	w->to = (uint8_t)to;
	w->actor = (uint8_t)actor;
	w->only_from = only_from;
	w->only_from_mask_set = only_from != 0;
	snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
	return 0;
}

#define BIT(s) (1u << (s))
#define NOT_FINAL_MASK                                                      \
	(~(BIT(CPL_JOB_FINISHED) | BIT(CPL_FAILED) | BIT(CPL_USER_KILLED) | \
	    BIT(CPL_PARENT_KILLED) | BIT(CPL_STATE_NONE)) &                  \
	    ((1u << CPL_NSTATES) - 1))

// Queues the consequences for the children of a task that just reached
// JOB_FINISHED (finished), left it (unfinished) or failed (killed).
static int
children_follow(cpl_txn *t, uint64_t id, cpl_state to, cpl_state from)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16], pre[8];
	bool ok;
	int rv;
	enum { FINISHED, UNFINISHED, KILLED } what;
	if (to == CPL_JOB_FINISHED)
		what = FINISHED;
	else if (from == CPL_JOB_FINISHED)
		what = UNFINISHED;
	else if (to == CPL_FAILED || to == CPL_USER_KILLED ||
	    to == CPL_PARENT_KILLED)
		what = KILLED;
	else
		return 0;
	be64(pre, id);
	pair_key(start, id, 0);
	if ((rv = tcursor(t, DB_CHILD, &c)) != 0)
		return rv;
	char msg[64];
	snprintf(msg, sizeof(msg), "parent %llu %s", (unsigned long long)id,
	    cpl_state_name(to));
	for (rv = crange(t, c, MDB_SET_RANGE, pre, 8, start, 16, &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(t, c, MDB_NEXT, pre, 8, NULL, 0, &k, &v, &ok)) {
		uint64_t child = rd64((uint8_t *)k.mv_data + 8);
		struct srec cr;
		if ((rv = srec_get(t, child, &cr)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (what == FINISHED) {
			if (cr.pending == 0) {
				rv = fail(t, CPL_ECORRUPT);
				break;
			}
			cr.pending--;
			if ((rv = srec_put(t, child, &cr)) != 0)
				break;
			if (cr.pending == 0 && cr.state == CPL_AWAITING_PARENTS)
				rv = work_push(t, child, CPL_READY,
				    CPL_BY_BROKER, BIT(CPL_AWAITING_PARENTS),
				    msg);
		} else if (what == UNFINISHED) {
			cr.pending++;
			if ((rv = srec_put(t, child, &cr)) != 0)
				break;
			if (runnable(&cr))
				rv = work_push(t, child, CPL_AWAITING_PARENTS,
				    CPL_BY_BROKER,
				    BIT(CPL_READY) | BIT(CPL_RESTART_READY), msg);
		} else {
			if (!cpl_state_is_final((cpl_state)cr.state))
				rv = work_push(t, child, CPL_PARENT_KILLED,
				    CPL_BY_BROKER, NOT_FINAL_MASK, msg);
		}
		if (rv)
			break;
	}
	mdb_cursor_close(c);
	return rv;
}

// The one place a task's state changes: history event, state index,
// counters, run queue, lease, and queued bookkeeping. r is the task's
// current record; it is updated and written.
static int
transition(cpl_txn *t, uint64_t id, struct srec *r, cpl_state to,
    cpl_actor actor, int32_t rc, const char *msg)
{
	cpl_state from = (cpl_state)r->state;
	uint8_t k[16];
	int rv;

	if (!cpl_transition_allowed(from, to, actor))
		return CPL_EBADSTATE;
	// a launcher's report says where the task ran
	if ((rv = event_write(t, id, from, to, r->attempt, r->lease, rc, msg,
	         actor == CPL_BY_LAUNCHER ? t->node : NULL, false)) != 0)
		return rv;
	if (runnable(r) && (rv = runq_del(t, id, r)) != 0)
		return rv;
	st_key(k, from, id);
	if ((rv = tdel(t, DB_ST_IDX, k, 9)) != 0)
		return rv;
	st_key(k, to, id);
	if ((rv = tput(t, DB_ST_IDX, k, 9, "", 0, 0)) != 0)
		return rv;
	t->meta.counts[from]--;
	t->meta.counts[to]++;

	// Entering READY or RESTART_READY hands the task back to the queue;
	// a lease is kept only by the stages a launcher is still working on.
	if (r->lease != 0 && (!holds_lease(to) || to == CPL_READY ||
	                         to == CPL_RESTART_READY)) {
		pair_key(k, r->lease, id);
		if ((rv = tdel(t, DB_LEASE_IDX, k, 16)) != 0)
			return rv;
		if (to == CPL_USER_KILLED || to == CPL_PARENT_KILLED) {
			// the launcher must stop the process it may be running
			if ((rv = notice_add(t, r->lease, id)) != 0)
				return rv;
		}
		r->lease = 0;
	}
	r->state = (uint8_t)to;
	r->changed_us = t->now;
	if (actor == CPL_BY_LAUNCHER)
		r->rc = rc;
	if (runnable(r) && (rv = runq_add(t, id, r)) != 0)
		return rv;
	if ((rv = srec_put(t, id, r)) != 0)
		return rv;

	// bookkeeping that follows from the new state
	switch (to) {
	case CPL_JOB_FINISHED:
	case CPL_FAILED:
	case CPL_USER_KILLED:
	case CPL_PARENT_KILLED:
		return children_follow(t, id, to, from);
	case CPL_RUN_TIMEOUT:
		if ((r->flags & SF_TIMEOUT_HANDLER) && actor == CPL_BY_LAUNCHER)
			return 0; // the launcher runs the handler and decides
		if (r->flags & SF_AUTO_RETRY)
			return work_push(t, id, CPL_RESTART_READY, CPL_BY_BROKER,
			    BIT(CPL_RUN_TIMEOUT), "timed out: retry");
		return work_push(t, id, CPL_FAILED, CPL_BY_BROKER,
		    BIT(CPL_RUN_TIMEOUT), "timed out: no auto_timeout_retry");
	case CPL_RUN_ERROR:
		if ((r->flags & SF_ERR_HANDLER) && actor == CPL_BY_LAUNCHER)
			return 0;
		return work_push(t, id, CPL_FAILED, CPL_BY_BROKER,
		    BIT(CPL_RUN_ERROR), "run error: no error handler");
	case CPL_RESTART_READY:
		if (from == CPL_JOB_FINISHED &&
		    (rv = children_follow(t, id, to, from)) != 0)
			return rv;
		if (actor != CPL_BY_USER && r->attempt > r->max_retries)
			return work_push(t, id, CPL_FAILED, CPL_BY_BROKER,
			    BIT(CPL_RESTART_READY), "retry limit reached");
		if (r->pending > 0)
			return work_push(t, id, CPL_AWAITING_PARENTS,
			    CPL_BY_BROKER, BIT(CPL_RESTART_READY),
			    "waiting for parents");
		return 0;
	default:
		return 0;
	}
}

// Applies queued follow-ups until none is left.
static int
drain(cpl_txn *t, uint64_t *changed)
{
	int rv = 0;
	size_t i;
	for (i = 0; i < t->nwork && rv == 0; i++) {
		struct work w = t->work[i];
		struct srec r;
		if ((rv = srec_get(t, w.id, &r)) != 0) {
			if (rv == CPL_ENOTFOUND)
				rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (w.only_from_mask_set && !(w.only_from & BIT(r.state)))
			continue; // something else changed it meanwhile
		rv = transition(t, w.id, &r, (cpl_state)w.to,
		    (cpl_actor)w.actor, 0, w.msg);
		if (rv == CPL_EBADSTATE) {
			rv = 0; // a follow-up that no longer applies
			continue;
		}
		if (rv == 0 && changed)
			(*changed)++;
	}
	t->nwork = 0;
	if (rv != 0 && t->err == 0)
		t->err = rv; // half-applied bookkeeping must not commit
	return rv;
}

// ------------------------------------------------------------ txns

static int
meta_load(cpl_txn *t)
{
	MDB_val v;
	int rv = tget(t, DB_META, "meta", 4, &v);
	if (rv == CPL_ENOTFOUND) {
		memset(&t->meta, 0, sizeof(t->meta));
		t->meta.magic = META_MAGIC;
		t->meta.version = META_VERSION;
		t->meta.next_task = 1;
		t->meta.next_seq = 1;
		t->meta.next_lease = 1;
		t->meta.next_wf = 1;
		t->meta.next_app = 1;
		return 0;
	}
	if (rv)
		return rv;
	if (v.mv_size != sizeof(t->meta))
		return CPL_EVERSION;
	memcpy(&t->meta, v.mv_data, sizeof(t->meta));
	if (t->meta.magic != META_MAGIC || t->meta.version != META_VERSION)
		return CPL_EVERSION;
	return 0;
}

static int
txn_begin(cpl_store *s, bool write, cpl_txn *t)
{
	int rc;
	memset(t, 0, sizeof(*t));
	t->s = s;
	t->write = write;
	for (;;) {
		rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
		if (rc != MDB_MAP_RESIZED)
			break;
		// another process grew the map: adopt its size
		mdb_env_set_mapsize(s->env, 0);
	}
	if (rc)
		return map_mdb(rc);
	int rv = meta_load(t);
	if (rv) {
		mdb_txn_abort(t->txn);
		return rv;
	}
	t->now = clock_now(s);
	if (write && t->now < t->meta.last_time)
		t->now = t->meta.last_time; // broker time never goes back
	return 0;
}

static void
txn_free(cpl_txn *t)
{
	free(t->work);
	t->work = NULL;
}

static int uuid_merge(cpl_txn *t);

static int
txn_commit(cpl_txn *t)
{
	int rv;
	t->meta.last_time = t->now;
	if (t->meta.uuid_new_n >= UUID_MERGE_AT && (rv = uuid_merge(t)) != 0) {
		mdb_txn_abort(t->txn);
		return rv;
	}
	if ((rv = name_count_flush(t)) != 0 ||
	    (rv = tput(t, DB_META, "meta", 4, &t->meta, sizeof(t->meta), 0)) !=
	    0) {
		mdb_txn_abort(t->txn);
		return rv;
	}
	int rc = mdb_txn_commit(t->txn);
	return map_mdb(rc);
}

static int
env_open(cpl_store *s)
{
	int rc;
	MDB_txn *txn;
	if ((rc = mdb_env_create(&s->env)) != 0)
		return map_mdb(rc);
	mdb_env_set_maxdbs(s->env, DB_COUNT + 2);
	mdb_env_set_maxreaders(s->env, 512);
	mdb_env_set_mapsize(s->env, s->map_size);
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	if (s->opts.no_sync)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_open(s->env, s->dir, flags, 0600)) != 0)
		goto fail;
	int dead = 0;
	mdb_reader_check(s->env, &dead); // clear readers of dead processes
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	if (info.me_mapsize > s->map_size)
		s->map_size = info.me_mapsize;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		goto fail;
	for (int i = 0; i < DB_COUNT; i++) {
		if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE,
		         &s->dbi[i])) != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return 0;
fail:
	mdb_env_close(s->env);
	s->env = NULL;
	return map_mdb(rc);
}

// Network filesystems on which LMDB's locking and mmap are unsafe.
static bool
is_netfs(long type)
{
	static const unsigned long magics[] = {
		0x6969,     // NFS
		0x0BD00BD0, // Lustre
		0x47504653, // GPFS
		0x19830326, // BeeGFS
		0xFF534D42, // CIFS
		0xFE534D42, // SMB2
		0x517B,     // SMB
		0x00C36400, // Ceph
		0x5346414F, // AFS
		0x01021997, // 9P (v9fs)
		0xAAD7AAEA, // PanFS
		0x13661366, // OrangeFS / PVFS2
		0x01161970, // GFS2
		0x7461636F, // OCFS2
		0x564C,     // NCP
	};
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if ((unsigned long)(unsigned int)type == magics[i])
			return true;
	return false;
}

int
cpl_store_open(const char *dir, const cpl_store_opts *opts, cpl_store **out)
{
	struct statfs sf;
	struct stat st;
	cpl_store *s;
	int rv;

	if (dir == NULL || out == NULL || dir[0] == '\0')
		return CPL_EINVAL;
	if (stat(dir, &st) != 0)
		return errno == ENOENT ? CPL_ENOTFOUND : CPL_EIO;
	if (!S_ISDIR(st.st_mode))
		return CPL_EINVAL;
	if (statfs(dir, &sf) != 0)
		return CPL_EIO;
	if (is_netfs((long)sf.f_type) && !(opts && opts->force_netfs))
		return CPL_ENETFS;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CPL_ENOMEM;
	s->rnd_used = sizeof(s->rnd); // empty: filled on first use
	if (opts)
		s->opts = *opts;
	s->map_size = s->opts.map_size ? s->opts.map_size : (1ull << 30);
	if (s->opts.map_max == 0)
		s->opts.map_max = 1ull << 40;
	if ((s->dir = strdup(dir)) == NULL) {
		free(s);
		return CPL_ENOMEM;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/copal.lock", dir);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0) {
		rv = errno == EACCES ? CPL_EINVAL : CPL_EIO;
		goto fail;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		rv = errno == EWOULDBLOCK ? CPL_ELOCKED : CPL_EIO;
		goto fail;
	}
	if ((rv = env_open(s)) != 0)
		goto fail;
	pthread_mutex_init(&s->wlock, NULL);
	pthread_rwlock_init(&s->envlock, NULL);

	// check (and on a new database, write) the meta record
	cpl_txn t;
	if ((rv = txn_begin(s, true, &t)) != 0) {
		mdb_env_close(s->env);
		goto fail_locks;
	}
	if ((rv = txn_commit(&t)) != 0) {
		mdb_env_close(s->env);
		goto fail_locks;
	}
	*out = s;
	return 0;
fail_locks:
	pthread_mutex_destroy(&s->wlock);
	pthread_rwlock_destroy(&s->envlock);
fail:
	if (s->lockfd >= 0)
		close(s->lockfd);
	free(s->dir);
	free(s);
	return rv;
}

void
cpl_store_close(cpl_store *s)
{
	if (s == NULL)
		return;
	mdb_env_close(s->env);
	pthread_mutex_destroy(&s->wlock);
	pthread_rwlock_destroy(&s->envlock);
	close(s->lockfd);
	free(s->dir);
	free(s);
}

// Doubles the map. Called by the writer with no transaction open; waits
// for readers to leave (LMDB requires no active transaction in this
// process while the map changes).
static int
grow(cpl_store *s)
{
	uint64_t want = s->map_size * 2;
	if (want > s->opts.map_max)
		return CPL_EMAPFULL;
	pthread_rwlock_wrlock(&s->envlock);
	int rc = mdb_env_set_mapsize(s->env, want);
	if (rc == 0)
		s->map_size = want;
	pthread_rwlock_unlock(&s->envlock);
	return rc ? CPL_EMAPFULL : 0;
}

// After MDB_PANIC the environment is unusable until reopened.
static int
reopen(cpl_store *s)
{
	pthread_rwlock_wrlock(&s->envlock);
	mdb_env_close(s->env);
	s->env = NULL;
	int rv = env_open(s);
	pthread_rwlock_unlock(&s->envlock);
	return rv;
}

int
cpl_store_write(cpl_store *s, cpl_txn_fn fn, void *arg)
{
	int rv;
	if (s == NULL || fn == NULL)
		return CPL_EINVAL;
	pthread_mutex_lock(&s->wlock);
	for (int round = 0;; round++) {
		cpl_txn t;
		pthread_rwlock_rdlock(&s->envlock);
		rv = s->env ? txn_begin(s, true, &t) : CPL_EPANIC;
		if (rv == 0) {
			rv = fn(&t, arg);
			if (t.err)
				rv = t.err;
			if (rv == 0)
				rv = txn_commit(&t);
			else
				mdb_txn_abort(t.txn);
			txn_free(&t);
		}
		pthread_rwlock_unlock(&s->envlock);
		if (rv == CPL_EMAPFULL && round < 40 && grow(s) == 0)
			continue; // replay into the bigger map
		if (rv == CPL_EPANIC && round == 0 && reopen(s) == 0)
			continue;
		break;
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int
cpl_store_read(cpl_store *s, cpl_txn_fn fn, void *arg)
{
	int rv;
	cpl_txn t;
	if (s == NULL || fn == NULL)
		return CPL_EINVAL;
	pthread_rwlock_rdlock(&s->envlock);
	rv = s->env ? txn_begin(s, false, &t) : CPL_EPANIC;
	if (rv == 0) {
		rv = fn(&t, arg);
		if (t.err)
			rv = t.err;
		mdb_txn_abort(t.txn);
		txn_free(&t);
	}
	pthread_rwlock_unlock(&s->envlock);
	return rv;
}

int
cpl_txn_sub(cpl_txn *parent, cpl_txn_fn fn, void *arg)
{
	cpl_txn t;
	int rc, rv;
	if (parent == NULL || fn == NULL || !parent->write)
		return CPL_EINVAL;
	if (parent->err)
		return parent->err;
	memset(&t, 0, sizeof(t));
	t.s = parent->s;
	t.write = true;
	t.parent = parent;
	t.now = parent->now;
	t.meta = parent->meta;
	if ((rc = mdb_txn_begin(parent->s->env, parent->txn, 0, &t.txn)) != 0)
		return fail(parent, map_mdb(rc));
	rv = fn(&t, arg);
	if (rv == 0)
		(void)name_count_flush(&t); // failures land in t.err
	if (t.err) {
		// an LMDB-level failure inside: the whole transaction is lost
		mdb_txn_abort(t.txn);
		txn_free(&t);
		cache_clear(parent);
		return fail(parent, t.err);
	}
	if (rv == 0) {
		if ((rc = mdb_txn_commit(t.txn)) != 0) {
			txn_free(&t);
			cache_clear(parent);
			return fail(parent, map_mdb(rc));
		}
		parent->meta = t.meta;
	} else {
		mdb_txn_abort(t.txn);
	}
	txn_free(&t);
	cache_clear(parent); // names or leases seen inside may be gone
	return rv;
}

// ------------------------------------------------------------ tasks

static int
check_name(const char *s, bool allow_empty)
{
	if (s == NULL)
		return allow_empty ? 0 : CPL_EINVAL;
	size_t n = strnlen(s, MAX_NAME + 1);
	if (n > MAX_NAME || (!allow_empty && n == 0))
		return CPL_EINVAL;
	return 0;
}

// Validates a spec and derives the record fields it fixes.
static int
spec_check(const Copal__TaskSpec *sp, struct srec *r)
{
	int rv;
	if (sp == NULL)
		return CPL_EINVAL;
	if ((rv = check_name(sp->name, false)) != 0 ||
	    (rv = check_name(sp->workflow, true)) != 0 ||
	    (rv = check_name(sp->application, false)) != 0)
		return rv;
	if (sp->workdir && sp->workdir[0]) {
		// relative to data/, never above it
		char wd[1024];
		if (cpl_workdir(NULL, NULL, NULL, sp->workdir, wd, sizeof(wd)))
			return CPL_EINVAL;
	}
	uint32_t nodes = 1, packing = 1, rpn = 1, gpr = 0, wall = 0;
	const Copal__Resources *res = sp->resources;
	if (res != NULL) {
		nodes = res->num_nodes ? res->num_nodes : 1;
		packing = res->node_packing_count ? res->node_packing_count : 1;
		rpn = res->ranks_per_node ? res->ranks_per_node : 1;
		gpr = res->gpus_per_rank;
		wall = res->wall_time_minutes;
		if (res->ranks_per_node > 65535 || res->threads_per_rank > 65535 ||
		    res->threads_per_core > 64)
			return CPL_EINVAL;
	}
	if (nodes > MAX_NODES || packing > CPL_NODE_UNITS)
		return CPL_EINVAL;
	if (nodes > 1 && packing > 1)
		return CPL_EINVAL; // packing is for single-node tasks
	if ((uint64_t)gpr * rpn > 65535)
		return CPL_EINVAL;
	if (sp->max_retries > 65535)
		return CPL_EINVAL;
	r->nodes = (uint16_t)nodes;
	r->packing = (uint16_t)packing;
	r->gpus = (uint16_t)(gpr * rpn);
	r->wall_min = wall;
	r->priority = sp->priority;
	r->max_retries = (uint16_t)sp->max_retries;
	r->flags = (uint8_t)((sp->auto_timeout_retry ? SF_AUTO_RETRY : 0) |
	    (sp->post_error_handler ? SF_ERR_HANDLER : 0) |
	    (sp->post_timeout_handler ? SF_TIMEOUT_HANDLER : 0));
	return 0;
}

static int
spec_write(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp, unsigned flags)
{
	uint8_t k[8];
	void *p = NULL;
	int rv;
	size_t n = protobuf_c_message_get_packed_size(&sp->base);
	if (n > MAX_SPEC)
		return CPL_ETOOBIG;
	be64(k, id);
	if ((rv = treserve(t, DB_SPEC, k, 8, n, flags, &p)) != 0)
		return rv;
	protobuf_c_message_pack(&sp->base, p);
	return 0;
}

static int
spec_read(cpl_txn *t, uint64_t id, Copal__TaskSpec **out)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	be64(k, id);
	if ((rv = tget(t, DB_SPEC, k, 8, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	*out = copal__task_spec__unpack(NULL, v.mv_size, v.mv_data);
	if (*out == NULL)
		return fail(t, CPL_ECORRUPT);
	return 0;
}

// A random (version 4) uuid. libuuid's uuid_generate_random() reseeds and
// calls getpid() per uuid; at a million tasks that is a tenth of the create
// cost, so random bytes are taken from getrandom() a page at a time.
static int
uuid_new(cpl_store *s, uint8_t u[16])
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

int
cpl_task_create(cpl_txn *t, const Copal__TaskSpec *sp, uint64_t *idp,
    uint8_t uuidp[16])
{
	struct srec r;
	int rv;
	uint8_t k[16];

	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	memset(&r, 0, sizeof(r));
	if ((rv = spec_check(sp, &r)) != 0)
		return rv;
	if ((rv = app_lookup(t, sp->application, &r.app)) != 0)
		return rv;
	// parents: all exist, no duplicates (a small quadratic check: a task
	// has few parents)
	bool killed = false;
	for (size_t i = 0; i < sp->n_parent_ids; i++) {
		struct srec pr;
		for (size_t j = 0; j < i; j++)
			if (sp->parent_ids[j] == sp->parent_ids[i])
				return CPL_EINVAL;
		if ((rv = srec_get(t, sp->parent_ids[i], &pr)) != 0)
			return rv;
		if (pr.state != CPL_JOB_FINISHED)
			r.pending++;
		if (pr.state == CPL_FAILED || pr.state == CPL_USER_KILLED ||
		    pr.state == CPL_PARENT_KILLED)
			killed = true;
	}
	// Nothing has been written yet; from here on any failure is an LMDB
	// failure and poisons the transaction.
	if ((rv = wf_intern(t, sp->workflow ? sp->workflow : "", &r.wf)) != 0)
		return rv;
	uint64_t id = t->meta.next_task++;
	cpl_state st = killed ? CPL_PARENT_KILLED :
	    r.pending ? CPL_AWAITING_PARENTS : CPL_READY;
	r.ver = 1;
	r.state = (uint8_t)st;
	r.created_us = r.changed_us = t->now;
	if ((rv = uuid_new(t->s, r.uuid)) != 0)
		return fail(t, rv);

	if ((rv = spec_write(t, id, sp, MDB_APPEND)) != 0)
		return rv == CPL_ETOOBIG ? fail(t, rv) : rv;
	be64(k, id);
	if ((rv = tput(t, DB_STATE, k, 8, &r, sizeof(r), MDB_APPEND)) != 0)
		return rv;
	if ((rv = tput(t, DB_UUID_NEW, r.uuid, 16, k, 8, 0)) != 0)
		return rv;
	t->meta.uuid_new_n++;
	st_key(k, st, id);
	if ((rv = tput(t, DB_ST_IDX, k, 9, "", 0, 0)) != 0)
		return rv;
	idx32_key(k, r.wf, id);
	if ((rv = tput(t, DB_WF_IDX, k, 12, "", 0, 0)) != 0)
		return rv;
	idx32_key(k, r.app, id);
	if ((rv = tput(t, DB_APP_IDX, k, 12, "", 0, 0)) != 0)
		return rv;
	if ((rv = name_count(t, 'w', r.wf, 1)) != 0 ||
	    (rv = name_count(t, 'a', r.app, 1)) != 0)
		return rv;
	for (size_t i = 0; i < sp->n_parent_ids; i++) {
		pair_key(k, sp->parent_ids[i], id);
		if ((rv = tput(t, DB_CHILD, k, 16, "", 0, 0)) != 0)
			return rv;
		pair_key(k, id, sp->parent_ids[i]);
		if ((rv = tput(t, DB_PARENT, k, 16, "", 0, 0)) != 0)
			return rv;
	}
	if (st == CPL_READY && (rv = runq_add(t, id, &r)) != 0)
		return rv;
	t->meta.counts[st]++;
	if ((rv = event_write(t, id, CPL_CREATED, st, 0, 0, 0,
	         killed ? "created: a parent failed" : "created", NULL,
	         true)) != 0)
		return rv;
	if (idp)
		*idp = id;
	if (uuidp)
		memcpy(uuidp, r.uuid, 16);
	return 0;
}

static void
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
}

int
cpl_task_get(cpl_txn *t, uint64_t id, unsigned flags, cpl_task *out)
{
	struct srec r;
	int rv;
	Copal__TaskSpec *sp = NULL;
	if (t == NULL || out == NULL)
		return CPL_EINVAL;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if ((flags & CPL_GET_SPEC) && (rv = spec_read(t, id, &sp)) != 0)
		return rv;
	task_fill(out, id, &r);
	out->spec = sp;
	return 0;
}

void
cpl_task_clear(cpl_task *tk)
{
	if (tk && tk->spec) {
		copal__task_spec__free_unpacked(tk->spec, NULL);
		tk->spec = NULL;
	}
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
static int
parse_prefix(const char *p, uint8_t b[16], size_t *nbytes, int *half)
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

static bool
prefix_match(const uint8_t *u, const uint8_t *b, size_t nbytes, int half)
{
	if (memcmp(u, b, nbytes) != 0)
		return false;
	return half < 0 || (u[nbytes] >> 4) == half;
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
static int
uuid_walk(cpl_txn *t, const char *prefix, cpl_id_fn fn, void *arg)
{
	uint8_t b[16];
	size_t nb;
	int half, rv;
	if ((rv = parse_prefix(prefix, b, &nb, &half)) != 0)
		return rv;
	if ((rv = uuid_walk_db(t, DB_UUID, b, nb, half, fn, arg)) != 0)
		return rv;
	return uuid_walk_db(t, DB_UUID_NEW, b, nb, half, fn, arg);
}

// Moves every entry of uuid_new into the main uuid tree (sorted order, so
// each main page is dirtied once) and empties uuid_new.
static int
uuid_merge(cpl_txn *t)
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
	if ((rv = uuid_walk(t, prefix, lookup_cb, &l)) != 0)
		return rv;
	if (l.n == 0)
		return CPL_ENOTFOUND;
	*id = l.id;
	return 0;
}

int
cpl_task_report(cpl_txn *t, const cpl_report *rep)
{
	struct srec r;
	int rv;
	if (t == NULL || rep == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((unsigned)rep->to >= CPL_NSTATES || rep->to == CPL_STATE_NONE)
		return CPL_EINVAL;
	if ((rv = srec_get(t, rep->task_id, &r)) != 0)
		return rv;
	if (r.lease == 0 || r.lease != rep->lease || r.attempt != rep->attempt)
		return CPL_ESTALE;
	if ((rv = lease_live(t, rep->lease)) != 0)
		return rv == CPL_ENOTFOUND ? CPL_ESTALE : rv;
	if (!cpl_transition_allowed((cpl_state)r.state, rep->to,
	        CPL_BY_LAUNCHER))
		return CPL_EBADSTATE;
	t->node = rep->node;
	rv = transition(t, rep->task_id, &r, rep->to, CPL_BY_LAUNCHER,
	    rep->return_code, rep->message);
	t->node = NULL;
	if (rv != 0)
		return fail(t, rv);
	return drain(t, NULL);
}

int
cpl_task_set_state(cpl_txn *t, uint64_t id, cpl_state to, const char *msg)
{
	struct srec r;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((unsigned)to >= CPL_NSTATES || to == CPL_STATE_NONE)
		return CPL_EINVAL;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (to == CPL_USER_KILLED) {
		if (cpl_state_is_final((cpl_state)r.state))
			return CPL_EBADSTATE;
		return cpl_task_kill(t, id, msg, NULL);
	}
	if (r.lease != 0)
		return CPL_EBUSY;
	if (!cpl_transition_allowed((cpl_state)r.state, to, CPL_BY_USER))
		return CPL_EBADSTATE;
	if ((rv = transition(t, id, &r, to, CPL_BY_USER, 0,
	         msg ? msg : "set by user")) != 0)
		return fail(t, rv);
	return drain(t, NULL);
}

int
cpl_task_kill(cpl_txn *t, uint64_t id, const char *msg, uint64_t *killed)
{
	struct srec r;
	int rv;
	uint64_t n = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (!cpl_state_is_final((cpl_state)r.state)) {
		if ((rv = transition(t, id, &r, CPL_USER_KILLED, CPL_BY_USER, 0,
		         msg ? msg : "killed by user")) != 0)
			return fail(t, rv);
		n = 1;
		if ((rv = drain(t, &n)) != 0)
			return rv;
	}
	if (killed)
		*killed = n;
	return 0;
}

int
cpl_task_update_spec(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp)
{
	struct srec r, nr;
	Copal__TaskSpec *old = NULL;
	int rv;
	uint8_t k[12];
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (r.lease != 0)
		return CPL_EBUSY;
	nr = r;
	if ((rv = spec_check(sp, &nr)) != 0)
		return rv;
	if ((rv = app_lookup(t, sp->application, &nr.app)) != 0)
		return rv;
	if ((rv = spec_read(t, id, &old)) != 0)
		return rv;
	// keep the stored parents
	Copal__TaskSpec copy = *sp;
	copy.n_parent_ids = old->n_parent_ids;
	copy.parent_ids = old->parent_ids;
	if (protobuf_c_message_get_packed_size(&copy.base) > MAX_SPEC) {
		copal__task_spec__free_unpacked(old, NULL);
		return CPL_ETOOBIG;
	}
	rv = wf_intern(t, sp->workflow ? sp->workflow : "", &nr.wf);
	if (rv == 0)
		rv = spec_write(t, id, &copy, 0);
	copal__task_spec__free_unpacked(old, NULL);
	if (rv)
		return fail(t, rv);
	if (runnable(&r) && (rv = runq_del(t, id, &r)) != 0)
		return rv;
	if (nr.wf != r.wf) {
		idx32_key(k, r.wf, id);
		if ((rv = tdel(t, DB_WF_IDX, k, 12)) != 0)
			return rv;
		idx32_key(k, nr.wf, id);
		if ((rv = tput(t, DB_WF_IDX, k, 12, "", 0, 0)) != 0 ||
		    (rv = name_count(t, 'w', r.wf, -1)) != 0 ||
		    (rv = name_count(t, 'w', nr.wf, 1)) != 0)
			return rv;
	}
	if (nr.app != r.app) {
		idx32_key(k, r.app, id);
		if ((rv = tdel(t, DB_APP_IDX, k, 12)) != 0)
			return rv;
		idx32_key(k, nr.app, id);
		if ((rv = tput(t, DB_APP_IDX, k, 12, "", 0, 0)) != 0 ||
		    (rv = name_count(t, 'a', r.app, -1)) != 0 ||
		    (rv = name_count(t, 'a', nr.app, 1)) != 0)
			return rv;
	}
	if (runnable(&nr) && (rv = runq_add(t, id, &nr)) != 0)
		return rv;
	return srec_put(t, id, &nr);
}

struct has_ctx {
	bool any;
};

static int
has_cb(uint64_t id, void *arg)
{
	(void)id;
	((struct has_ctx *)arg)->any = true;
	return 1; // stop at the first
}

// Walks (a, *) keys of a pair-keyed index.
static int
pair_walk(cpl_txn *t, int db, uint64_t a, cpl_id_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16], pre[8];
	bool ok;
	int rv, frv = 0;
	be64(pre, a);
	pair_key(start, a, 0);
	if ((rv = tcursor(t, db, &c)) != 0)
		return rv;
	for (rv = crange(t, c, MDB_SET_RANGE, pre, 8, start, 16, &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(t, c, MDB_NEXT, pre, 8, NULL, 0, &k, &v, &ok)) {
		if ((frv = fn(rd64((uint8_t *)k.mv_data + 8), arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv ? rv : frv;
}

int
cpl_task_children(cpl_txn *t, uint64_t id, cpl_id_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	return pair_walk(t, DB_CHILD, id, fn, arg);
}

int
cpl_task_parents(cpl_txn *t, uint64_t id, cpl_id_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	return pair_walk(t, DB_PARENT, id, fn, arg);
}

static int
idvec_cb(uint64_t id, void *arg)
{
	return cpl_ids_push(arg, id);
}

int
cpl_task_delete(cpl_txn *t, uint64_t id)
{
	struct srec r;
	struct has_ctx h = { false };
	cpl_ids parents = { NULL, 0, 0 };
	uint8_t k[16];
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (r.lease != 0)
		return CPL_EBUSY;
	if ((rv = pair_walk(t, DB_CHILD, id, has_cb, &h)) < 0 ||
	    (rv != 0 && rv != 1))
		return rv;
	if (h.any)
		return CPL_EINUSE;
	if ((rv = pair_walk(t, DB_PARENT, id, idvec_cb, &parents)) != 0) {
		free(parents.v);
		return rv == CPL_ENOMEM ? rv : fail(t, rv);
	}
	// from here on: writes
	if ((rv = event_append(t, id, (cpl_state)r.state, CPL_STATE_NONE,
	         r.attempt, 0, 0, "deleted")) != 0)
		goto out;
	for (size_t i = 0; i < parents.n; i++) {
		pair_key(k, parents.v[i], id);
		if ((rv = tdel(t, DB_CHILD, k, 16)) != 0)
			goto out;
		pair_key(k, id, parents.v[i]);
		if ((rv = tdel(t, DB_PARENT, k, 16)) != 0)
			goto out;
	}
	if (runnable(&r) && (rv = runq_del(t, id, &r)) != 0)
		goto out;
	st_key(k, (cpl_state)r.state, id);
	if ((rv = tdel(t, DB_ST_IDX, k, 9)) != 0)
		goto out;
	idx32_key(k, r.wf, id);
	if ((rv = tdel(t, DB_WF_IDX, k, 12)) != 0)
		goto out;
	idx32_key(k, r.app, id);
	if ((rv = tdel(t, DB_APP_IDX, k, 12)) != 0)
		goto out;
	{
		MDB_val uv;
		rv = tget(t, DB_UUID_NEW, r.uuid, 16, &uv);
		if (rv == 0) {
			if ((rv = tdel(t, DB_UUID_NEW, r.uuid, 16)) != 0)
				goto out;
			t->meta.uuid_new_n--;
		} else if (rv == CPL_ENOTFOUND) {
			if ((rv = tdel(t, DB_UUID, r.uuid, 16)) != 0)
				goto out;
		} else {
			goto out;
		}
	}
	be64(k, id);
	if ((rv = tdel(t, DB_SPEC, k, 8)) != 0 ||
	    (rv = tdel(t, DB_STATE, k, 8)) != 0)
		goto out;
	if ((rv = name_count(t, 'w', r.wf, -1)) != 0 ||
	    (rv = name_count(t, 'a', r.app, -1)) != 0)
		goto out;
	t->meta.counts[r.state]--;
out:
	free(parents.v);
	return rv;
}

// Is `target` an ancestor of `from` (or from itself)? Breadth-first over
// the parent index with a visited list.
static int
is_ancestor(cpl_txn *t, uint64_t from, uint64_t target, bool *found)
{
	cpl_ids q = { NULL, 0, 0 };
	int rv;
	*found = false;
	if ((rv = cpl_ids_push(&q, from)) != 0)
		return rv;
	for (size_t i = 0; i < q.n && !*found; i++) {
		if (q.v[i] == target) {
			*found = true;
			break;
		}
		size_t before = q.n;
		if ((rv = pair_walk(t, DB_PARENT, q.v[i], idvec_cb, &q)) != 0)
			break;
		// drop ids already queued (keeps diamonds from exploding)
		size_t w = before;
		for (size_t j = before; j < q.n; j++) {
			bool dup = false;
			for (size_t m = 0; m < before && !dup; m++)
				dup = q.v[m] == q.v[j];
			if (!dup)
				q.v[w++] = q.v[j];
		}
		q.n = w;
	}
	free(q.v);
	return rv;
}

int
cpl_dep_add(cpl_txn *t, uint64_t parent, uint64_t child)
{
	struct srec pr, cr;
	uint8_t k[16];
	MDB_val v;
	Copal__TaskSpec *sp = NULL;
	bool cyc;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (parent == child)
		return CPL_EINVAL;
	if ((rv = srec_get(t, parent, &pr)) != 0 ||
	    (rv = srec_get(t, child, &cr)) != 0)
		return rv;
	pair_key(k, parent, child);
	if ((rv = tget(t, DB_CHILD, k, 16, &v)) == 0)
		return CPL_EEXISTS;
	if (rv != CPL_ENOTFOUND)
		return rv;
	if (cr.lease != 0)
		return CPL_EBUSY;
	if (cr.state != CPL_CREATED && cr.state != CPL_AWAITING_PARENTS &&
	    cr.state != CPL_READY && cr.state != CPL_RESTART_READY)
		return CPL_EBADSTATE;
	if ((rv = is_ancestor(t, parent, child, &cyc)) != 0)
		return rv;
	if (cyc)
		return CPL_ECYCLE;
	if ((rv = spec_read(t, child, &sp)) != 0)
		return rv;
	// from here on: writes
	uint64_t *ids = malloc((sp->n_parent_ids + 1) * sizeof(*ids));
	if (ids == NULL) {
		copal__task_spec__free_unpacked(sp, NULL);
		return CPL_ENOMEM;
	}
	if (sp->n_parent_ids)
		memcpy(ids, sp->parent_ids, sp->n_parent_ids * sizeof(*ids));
	ids[sp->n_parent_ids] = parent;
	uint64_t *oldids = sp->parent_ids;
	size_t oldn = sp->n_parent_ids;
	sp->parent_ids = ids;
	sp->n_parent_ids = oldn + 1;
	rv = spec_write(t, child, sp, 0);
	sp->parent_ids = oldids;
	sp->n_parent_ids = oldn;
	free(ids);
	copal__task_spec__free_unpacked(sp, NULL);
	if (rv)
		return fail(t, rv);
	if ((rv = tput(t, DB_CHILD, k, 16, "", 0, 0)) != 0)
		return rv;
	pair_key(k, child, parent);
	if ((rv = tput(t, DB_PARENT, k, 16, "", 0, 0)) != 0)
		return rv;
	if (pr.state == CPL_JOB_FINISHED)
		return 0;
	cr.pending++;
	if ((rv = srec_put(t, child, &cr)) != 0)
		return rv;
	char msg[64];
	snprintf(msg, sizeof(msg), "new parent %llu", (unsigned long long)parent);
	if (pr.state == CPL_FAILED || pr.state == CPL_USER_KILLED ||
	    pr.state == CPL_PARENT_KILLED)
		rv = transition(t, child, &cr, CPL_PARENT_KILLED, CPL_BY_BROKER,
		    0, msg);
	else if (cr.state != CPL_AWAITING_PARENTS)
		rv = transition(t, child, &cr, CPL_AWAITING_PARENTS,
		    CPL_BY_BROKER, 0, msg);
	if (rv)
		return fail(t, rv);
	return drain(t, NULL);
}

// ------------------------------------------------------------ queries

static bool
filter_match_rec(const cpl_filter *f, const struct srec *r, uint32_t wf,
    uint32_t app)
{
	if (f->states && !(f->states & BIT(r->state)))
		return false;
	if (f->workflow && r->wf != wf)
		return false;
	if (f->application && r->app != app)
		return false;
	if (f->min_nodes && r->nodes < f->min_nodes)
		return false;
	if (f->max_nodes && r->nodes > f->max_nodes)
		return false;
	return true;
}

struct qctx {
	cpl_txn *t;
	const cpl_filter *f;
	uint32_t wf, app;
	uint64_t after;
	size_t limit, n;
	unsigned flags;
	cpl_task_fn fn;
	void *arg;
	bool *more;
	uint8_t pb[16];
	size_t pnb;
	int phalf;
};

#define Q_STOP_LIMIT 0x7fff0001 // internal: limit reached

// Considers one candidate id; returns non-zero to stop.
static int
q_consider(struct qctx *q, uint64_t id)
{
	struct srec r;
	cpl_task tk;
	int rv;
	if (id <= q->after)
		return 0;
	if ((rv = srec_get(q->t, id, &r)) != 0)
		return rv == CPL_ENOTFOUND ? fail(q->t, CPL_ECORRUPT) : rv;
	if (!filter_match_rec(q->f, &r, q->wf, q->app))
		return 0;
	if (q->f->uuid_prefix && !prefix_match(r.uuid, q->pb, q->pnb, q->phalf))
		return 0;
	task_fill(&tk, id, &r);
	if (q->f->name || (q->flags & CPL_GET_SPEC)) {
		if ((rv = spec_read(q->t, id, &tk.spec)) != 0)
			return rv;
		if (q->f->name && strcmp(tk.spec->name, q->f->name) != 0) {
			cpl_task_clear(&tk);
			return 0;
		}
		if (!(q->flags & CPL_GET_SPEC)) {
			cpl_task_clear(&tk);
		}
	}
	if (q->limit && q->n == q->limit) {
		cpl_task_clear(&tk);
		if (q->more)
			*q->more = true;
		return Q_STOP_LIMIT;
	}
	q->n++;
	rv = q->fn(&tk, q->arg);
	cpl_task_clear(&tk);
	return rv;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

// Walks ids from a (prefix || id) index, ids > after, in id order.
static int
q_walk_idx(struct qctx *q, int db, const uint8_t *pre, size_t plen)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16];
	bool ok;
	int rv, frv = 0;
	memcpy(start, pre, plen);
	be64(start + plen, q->after + 1);
	if ((rv = tcursor(q->t, db, &c)) != 0)
		return rv;
	for (rv = crange(q->t, c, MDB_SET_RANGE, pre, plen, start, plen + 8,
	         &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(q->t, c, MDB_NEXT, pre, plen, NULL, 0, &k, &v, &ok)) {
		if ((frv = q_consider(q, rd64((uint8_t *)k.mv_data + plen))) !=
		    0)
			break;
	}
	mdb_cursor_close(c);
	return rv ? rv : frv;
}

// Merges the state index ranges of several states in id order.
static int
q_walk_states(struct qctx *q)
{
	MDB_cursor *c[CPL_NSTATES];
	uint64_t head[CPL_NSTATES];
	bool live[CPL_NSTATES];
	int ns = 0, rv = 0, frv = 0;
	uint8_t st[CPL_NSTATES];
	for (int s = 0; s < CPL_NSTATES; s++) {
		if (!(q->f->states & BIT(s)))
			continue;
		MDB_val k, v;
		uint8_t start[9];
		bool ok;
		st_key(start, (cpl_state)s, q->after + 1);
		if ((rv = tcursor(q->t, DB_ST_IDX, &c[ns])) != 0)
			break;
		st[ns] = (uint8_t)s;
		rv = crange(q->t, c[ns], MDB_SET_RANGE, &st[ns], 1, start, 9,
		    &k, &v, &ok);
		live[ns] = rv == 0 && ok;
		if (live[ns])
			head[ns] = rd64((uint8_t *)k.mv_data + 1);
		ns++;
		if (rv)
			break;
	}
	while (rv == 0) {
		int best = -1;
		for (int i = 0; i < ns; i++)
			if (live[i] && (best < 0 || head[i] < head[best]))
				best = i;
		if (best < 0)
			break;
		if ((frv = q_consider(q, head[best])) != 0)
			break;
		MDB_val k, v;
		bool ok;
		rv = crange(q->t, c[best], MDB_NEXT, &st[best], 1, NULL, 0, &k,
		    &v, &ok);
		live[best] = rv == 0 && ok;
		if (live[best])
			head[best] = rd64((uint8_t *)k.mv_data + 1);
	}
	for (int i = 0; i < ns; i++)
		mdb_cursor_close(c[i]);
	return rv ? rv : frv;
}

int
cpl_query(cpl_txn *t, const cpl_filter *f, uint64_t after_id, size_t limit,
    unsigned flags, cpl_task_fn fn, void *arg, bool *more)
{
	static const cpl_filter all = { 0, NULL, NULL, NULL, NULL, 0, 0 };
	struct qctx q;
	int rv;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if (f == NULL)
		f = &all;
	if (more)
		*more = false;
	memset(&q, 0, sizeof(q));
	q.t = t;
	q.f = f;
	q.after = after_id;
	q.limit = limit;
	q.flags = flags;
	q.fn = fn;
	q.arg = arg;
	q.more = more;
	if (f->states & ~((1u << CPL_NSTATES) - 1))
		return CPL_EINVAL;
	if (f->uuid_prefix &&
	    (rv = parse_prefix(f->uuid_prefix, q.pb, &q.pnb, &q.phalf)) != 0)
		return rv;
	if (f->workflow) {
		rv = name_id(t, 'w', f->workflow, false, &q.wf);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL)
			return 0; // no such workflow: nothing matches
		if (rv)
			return rv;
	}
	if (f->application) {
		rv = name_id(t, 'a', f->application, false, &q.app);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL)
			return 0;
		if (rv)
			return rv;
	}
	uint8_t pre[4];
	if (f->uuid_prefix) {
		// collect the matching ids, then visit them in id order
		cpl_ids ids = { NULL, 0, 0 };
		if ((rv = uuid_walk(t, f->uuid_prefix, idvec_cb, &ids)) == 0) {
			if (ids.n > 1)
				qsort(ids.v, ids.n, sizeof(uint64_t), cmp_u64);
			for (size_t i = 0; i < ids.n && rv == 0; i++)
				rv = q_consider(&q, ids.v[i]);
		}
		free(ids.v);
	} else if (f->states) {
		rv = q_walk_states(&q);
	} else if (f->workflow) {
		be32(pre, q.wf);
		rv = q_walk_idx(&q, DB_WF_IDX, pre, 4);
	} else if (f->application) {
		be32(pre, q.app);
		rv = q_walk_idx(&q, DB_APP_IDX, pre, 4);
	} else {
		rv = q_walk_idx(&q, DB_STATE, pre, 0);
	}
	return rv == Q_STOP_LIMIT ? 0 : rv;
}

int
cpl_count_states(cpl_txn *t, uint64_t counts[CPL_NSTATES])
{
	if (t == NULL || counts == NULL)
		return CPL_EINVAL;
	memcpy(counts, t->meta.counts, sizeof(t->meta.counts));
	return 0;
}

uint64_t
cpl_count_state(cpl_txn *t, cpl_state s)
{
	if (t == NULL || (unsigned)s >= CPL_NSTATES)
		return 0;
	return t->meta.counts[s];
}

static int
names_walk(cpl_txn *t, char kind, cpl_name_count_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t pre = (uint8_t)kind;
	bool ok;
	int rv, frv = 0;
	if (t->write && (rv = name_count_flush(t)) != 0)
		return rv;
	if ((rv = tcursor(t, DB_NAMES, &c)) != 0)
		return rv;
	for (rv = crange(t, c, MDB_SET_RANGE, &pre, 1, &pre, 1, &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(t, c, MDB_NEXT, &pre, 1, NULL, 0, &k, &v, &ok)) {
		struct nrec nr;
		char name[MAX_NAME + 1];
		size_t n = k.mv_size - 1;
		if (n > MAX_NAME || v.mv_size != sizeof(nr)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&nr, v.mv_data, sizeof(nr));
		memcpy(name, (char *)k.mv_data + 1, n);
		name[n] = '\0';
		if (kind == 'w' && nr.count == 0)
			continue;
		if ((frv = fn(name, nr.count, arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv ? rv : frv;
}

int
cpl_workflow_list(cpl_txn *t, cpl_name_count_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	return names_walk(t, 'w', fn, arg);
}

// ------------------------------------------------------------ apps

int
cpl_app_put(cpl_txn *t, const Copal__App *app, bool replace)
{
	MDB_val v;
	void *p = NULL;
	uint32_t id;
	int rv;
	if (t == NULL || app == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (check_name(app->name, false) || app->executable == NULL ||
	    app->executable[0] == '\0')
		return CPL_EINVAL;
	size_t n = strlen(app->name);
	rv = tget(t, DB_APP, app->name, n, &v);
	if (rv == 0 && !replace)
		return CPL_EEXISTS;
	if (rv != 0 && rv != CPL_ENOTFOUND)
		return rv;
	size_t sz = protobuf_c_message_get_packed_size(&app->base);
	if (sz > MAX_SPEC)
		return CPL_ETOOBIG;
	if ((rv = treserve(t, DB_APP, app->name, n, sz, 0, &p)) != 0)
		return rv;
	protobuf_c_message_pack(&app->base, p);
	return name_id(t, 'a', app->name, true, &id);
}

int
cpl_app_get(cpl_txn *t, const char *name, Copal__App **out)
{
	MDB_val v;
	int rv;
	if (t == NULL || name == NULL || out == NULL || check_name(name, false))
		return CPL_EINVAL;
	if ((rv = tget(t, DB_APP, name, strlen(name), &v)) != 0)
		return rv;
	Copal__App *a = copal__app__unpack(NULL, v.mv_size, v.mv_data);
	if (a == NULL)
		return fail(t, CPL_ECORRUPT);
	*out = a;
	return 0;
}

static int
app_ntasks(cpl_txn *t, const char *name, uint64_t *n)
{
	uint8_t k[1 + MAX_NAME];
	MDB_val v;
	int rv;
	size_t len = strlen(name);
	if (t->write && (rv = name_count_flush(t)) != 0)
		return rv;
	k[0] = 'a';
	memcpy(k + 1, name, len);
	if ((rv = tget(t, DB_NAMES, k, 1 + len, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	struct nrec nr;
	memcpy(&nr, v.mv_data, sizeof(nr));
	*n = nr.count;
	return 0;
}

int
cpl_app_list(cpl_txn *t, cpl_app_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv = 0;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = tcursor(t, DB_APP, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		Copal__App *a = copal__app__unpack(NULL, v.mv_size, v.mv_data);
		uint64_t n = 0;
		if (a == NULL) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		rv = app_ntasks(t, a->name, &n);
		if (rv == 0)
			rv = fn(a, n, arg);
		copal__app__free_unpacked(a, NULL);
		if (rv)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

int
cpl_app_delete(cpl_txn *t, const char *name)
{
	MDB_val v;
	uint64_t n;
	uint32_t id;
	uint8_t k[1 + MAX_NAME];
	int rv;
	if (t == NULL || name == NULL || !t->write || check_name(name, false))
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	size_t len = strlen(name);
	if ((rv = tget(t, DB_APP, name, len, &v)) != 0)
		return rv;
	if ((rv = app_ntasks(t, name, &n)) != 0)
		return rv;
	if (n > 0)
		return CPL_EINUSE;
	if ((rv = name_id(t, 'a', name, false, &id)) != 0)
		return fail(t, CPL_ECORRUPT);
	if ((rv = tdel(t, DB_APP, name, len)) != 0)
		return rv;
	k[0] = 'a';
	memcpy(k + 1, name, len);
	if ((rv = tdel(t, DB_NAMES, k, 1 + len)) != 0)
		return rv;
	k[0] = 'A';
	be32(k + 1, id);
	if ((rv = tdel(t, DB_NAMES, k, 5)) != 0)
		return rv;
	cache_clear(t);
	return 0;
}

// ------------------------------------------------------------ leases

int
cpl_lease_grant(cpl_txn *t, const char *owner, uint32_t ttl_ms, uint64_t *id)
{
	uint8_t k[8];
	void *p = NULL;
	int rv;
	if (t == NULL || !t->write || ttl_ms == 0 || id == NULL)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	size_t on = owner ? strnlen(owner, 127) : 0;
	struct lrec l;
	memset(&l, 0, sizeof(l));
	l.created = t->now;
	l.deadline = t->now + (uint64_t)ttl_ms * 1000u;
	l.ttl_ms = ttl_ms;
	uint64_t lid = t->meta.next_lease++;
	be64(k, lid);
	if ((rv = treserve(t, DB_LEASE, k, 8, sizeof(l) + on, MDB_APPEND,
	         &p)) != 0)
		return rv;
	memcpy(p, &l, sizeof(l));
	if (on)
		memcpy((char *)p + sizeof(l), owner, on);
	// the owner stays known after the lease ends, for the history
	if ((rv = tput(t, DB_LEASE_LOG, k, 8, owner ? owner : "", on,
	         MDB_APPEND)) != 0)
		return rv;
	t->lease_ok = false;
	*id = lid;
	return 0;
}

int
cpl_lease_owner(cpl_txn *t, uint64_t id, char *buf, size_t len)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || buf == NULL || len == 0)
		return CPL_EINVAL;
	be64(k, id);
	if ((rv = tget(t, DB_LEASE_LOG, k, 8, &v)) != 0)
		return rv;
	size_t n = v.mv_size < len - 1 ? v.mv_size : len - 1;
	memcpy(buf, v.mv_data, n);
	buf[n] = '\0';
	return 0;
}

int
cpl_lease_list(cpl_txn *t, cpl_lease_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	cpl_ids ids = { NULL, 0, 0 };
	int rc, rv;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = tcursor(t, DB_LEASE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (k.mv_size == 8)
			rv = cpl_ids_push(&ids, rd64(k.mv_data));
	mdb_cursor_close(c);
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		cpl_lease l;
		if ((rv = cpl_lease_get(t, ids.v[i], &l)) == 0)
			rv = fn(&l, arg);
	}
	free(ids.v);
	return rv;
}

int
cpl_lease_get(cpl_txn *t, uint64_t id, cpl_lease *out)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || out == NULL)
		return CPL_EINVAL;
	be64(k, id);
	if ((rv = tget(t, DB_LEASE, k, 8, &v)) != 0)
		return rv;
	struct lrec l;
	if (v.mv_size < sizeof(l))
		return fail(t, CPL_ECORRUPT);
	memcpy(&l, v.mv_data, sizeof(l));
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->deadline_us = l.deadline;
	out->created_us = l.created;
	out->ttl_ms = l.ttl_ms;
	size_t on = v.mv_size - sizeof(l);
	if (on > sizeof(out->owner) - 1)
		on = sizeof(out->owner) - 1;
	memcpy(out->owner, (char *)v.mv_data + sizeof(l), on);
	out->owner[on] = '\0';
	cpl_ids ids = { NULL, 0, 0 };
	rv = pair_walk(t, DB_LEASE_IDX, id, idvec_cb, &ids);
	out->ntasks = (uint32_t)ids.n;
	free(ids.v);
	return rv;
}

// Ends one lease: unstarted claims go back to the run queue, started tasks
// time out. Then the lease and its notices are deleted.
static int
lease_end(cpl_txn *t, uint64_t lid, uint64_t *ntasks)
{
	cpl_ids ids = { NULL, 0, 0 };
	uint8_t k[16];
	int rv;
	if ((rv = pair_walk(t, DB_LEASE_IDX, lid, idvec_cb, &ids)) != 0) {
		free(ids.v);
		return rv == CPL_ENOMEM ? fail(t, rv) : rv;
	}
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		struct srec r;
		uint64_t id = ids.v[i];
		if ((rv = srec_get(t, id, &r)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (r.state == CPL_READY || r.state == CPL_RESTART_READY) {
			// claimed, never started: back to the queue; the
			// claim does not count as an attempt
			pair_key(k, lid, id);
			if ((rv = tdel(t, DB_LEASE_IDX, k, 16)) != 0)
				break;
			r.lease = 0;
			if (r.attempt > 0)
				r.attempt--;
			if ((rv = runq_add(t, id, &r)) != 0 ||
			    (rv = srec_put(t, id, &r)) != 0)
				break;
		} else if (r.state == CPL_RUN_ERROR) {
			rv = transition(t, id, &r, CPL_FAILED, CPL_BY_BROKER, 0,
			    "lease expired during error handling");
		} else if (r.state == CPL_RUN_TIMEOUT) {
			// no launcher left to run the handler: policy decides
			const char *m = "lease expired during timeout handling";
			cpl_state to = (r.flags & SF_AUTO_RETRY) ?
			    CPL_RESTART_READY : CPL_FAILED;
			rv = transition(t, id, &r, to, CPL_BY_BROKER, 0, m);
		} else {
			rv = transition(t, id, &r, CPL_RUN_TIMEOUT,
			    CPL_BY_BROKER, 0, "lease expired");
		}
		if (rv == 0)
			rv = drain(t, NULL);
		if (rv)
			rv = fail(t, rv);
	}
	if (ntasks)
		*ntasks += ids.n;
	free(ids.v);
	if (rv)
		return rv;
	// notices of a dead launcher are moot
	cpl_ids nids = { NULL, 0, 0 };
	if ((rv = pair_walk(t, DB_NOTICE, lid, idvec_cb, &nids)) == 0) {
		for (size_t i = 0; i < nids.n && rv == 0; i++) {
			pair_key(k, lid, nids.v[i]);
			rv = tdel(t, DB_NOTICE, k, 16);
		}
	}
	free(nids.v);
	if (rv)
		return fail(t, rv);
	be64(k, lid);
	if ((rv = tdel(t, DB_LEASE, k, 8)) != 0)
		return rv;
	t->lease_ok = false;
	return 0;
}

int
cpl_lease_renew(cpl_txn *t, uint64_t id, uint32_t ttl_ms, uint64_t *deadline)
{
	struct lrec l;
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	be64(k, id);
	if ((rv = tget(t, DB_LEASE, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size < sizeof(l) || v.mv_size > sizeof(l) + 128)
		return fail(t, CPL_ECORRUPT);
	uint8_t buf[sizeof(l) + 128];
	size_t n = v.mv_size;
	memcpy(buf, v.mv_data, n);
	memcpy(&l, buf, sizeof(l));
	if (l.deadline < t->now) {
		if ((rv = lease_end(t, id, NULL)) != 0)
			return rv;
		return CPL_EEXPIRED;
	}
	if (ttl_ms)
		l.ttl_ms = ttl_ms;
	l.deadline = t->now + (uint64_t)l.ttl_ms * 1000u;
	memcpy(buf, &l, sizeof(l));
	if ((rv = tput(t, DB_LEASE, k, 8, buf, n, 0)) != 0)
		return rv;
	t->lease_ok = false;
	if (deadline)
		*deadline = l.deadline;
	return 0;
}

int
cpl_lease_release(cpl_txn *t, uint64_t id)
{
	struct lrec l;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = lease_load(t, id, &l)) != 0)
		return rv;
	return lease_end(t, id, NULL);
}

int
cpl_lease_expire(cpl_txn *t, uint64_t *nleases, uint64_t *ntasks)
{
	MDB_cursor *c;
	MDB_val k, v;
	cpl_ids due = { NULL, 0, 0 };
	int rc, rv = 0;
	uint64_t nt = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = tcursor(t, DB_LEASE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct lrec l;
		if (v.mv_size < sizeof(l) || k.mv_size != 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&l, v.mv_data, sizeof(l));
		if (l.deadline < t->now &&
		    (rv = cpl_ids_push(&due, rd64(k.mv_data))) != 0)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	for (size_t i = 0; i < due.n && rv == 0; i++)
		rv = lease_end(t, due.v[i], &nt);
	if (rv == 0) {
		if (nleases)
			*nleases = due.n;
		if (ntasks)
			*ntasks = nt;
	}
	free(due.v);
	return rv;
}

int
cpl_lease_take_notices(cpl_txn *t, uint64_t id, cpl_id_fn fn, void *arg)
{
	cpl_ids ids = { NULL, 0, 0 };
	uint8_t k[16];
	int rv;
	if (t == NULL || !t->write || fn == NULL)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = pair_walk(t, DB_NOTICE, id, idvec_cb, &ids)) != 0) {
		free(ids.v);
		return rv;
	}
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		pair_key(k, id, ids.v[i]);
		if ((rv = tdel(t, DB_NOTICE, k, 16)) == 0)
			rv = fn(ids.v[i], arg);
	}
	free(ids.v);
	return rv;
}

// ------------------------------------------------------------ claims

struct placer {
	cpl_capacity *cap;
	size_t first_free; // nodes before this one have no free units
	uint32_t full_nodes; // nodes with all units free
	uint32_t idx[MAX_NODES];
};

// Places a task on the offered nodes; fills p->idx and returns how many
// nodes it took, or 0 if it does not fit.
static size_t
place(struct placer *p, const struct fit *f)
{
	cpl_capacity *cap = p->cap;
	uint32_t nodes = f->nodes ? f->nodes : 1;
	uint32_t packing = f->packing ? f->packing : 1;
	while (p->first_free < cap->nnodes &&
	    cap->nodes[p->first_free].free_units == 0)
		p->first_free++;
	if (cap->remaining_minutes && f->wall_min > cap->remaining_minutes)
		return 0;
	if (nodes == 1 && packing > 1) {
		uint32_t need = (CPL_NODE_UNITS + packing - 1) / packing;
		for (size_t i = p->first_free; i < cap->nnodes; i++) {
			cpl_node_cap *n = &cap->nodes[i];
			if (n->free_units >= need && n->free_gpus >= f->gpus) {
				if (n->free_units == CPL_NODE_UNITS)
					p->full_nodes--;
				n->free_units -= need;
				n->free_gpus -= f->gpus;
				p->idx[0] = (uint32_t)i;
				return 1;
			}
		}
		return 0;
	}
	if (nodes > p->full_nodes)
		return 0;
	size_t got = 0;
	for (size_t i = p->first_free; i < cap->nnodes && got < nodes; i++) {
		cpl_node_cap *n = &cap->nodes[i];
		if (n->free_units == CPL_NODE_UNITS && n->free_gpus >= f->gpus)
			p->idx[got++] = (uint32_t)i;
	}
	if (got < nodes)
		return 0;
	for (size_t j = 0; j < got; j++) {
		cpl_node_cap *n = &cap->nodes[p->idx[j]];
		n->free_units = 0;
		n->free_gpus -= f->gpus;
	}
	p->full_nodes -= nodes;
	return got;
}

int
cpl_claim(cpl_txn *t, uint64_t lease, cpl_capacity *cap, cpl_claim_fn fn,
    void *arg, size_t *nclaimed)
{
	MDB_cursor *c;
	MDB_val k, v;
	struct placer *p;
	uint32_t wf = 0;
	size_t n = 0, skipped = 0;
	int rc, rv;
	if (t == NULL || !t->write || cap == NULL || cap->max_tasks == 0 ||
	    (cap->nnodes > 0 && cap->nodes == NULL) || cap->nnodes > MAX_NODES)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = lease_live(t, lease)) != 0)
		return rv;
	if (cap->workflow) {
		rv = name_id(t, 'w', cap->workflow, false, &wf);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL) {
			if (nclaimed)
				*nclaimed = 0;
			return 0;
		}
		if (rv)
			return rv;
	}
	if ((p = malloc(sizeof(*p))) == NULL)
		return CPL_ENOMEM;
	p->cap = cap;
	p->first_free = 0;
	p->full_nodes = 0;
	for (size_t i = 0; i < cap->nnodes; i++) {
		if (cap->nodes[i].free_units > CPL_NODE_UNITS) {
			free(p);
			return CPL_EINVAL;
		}
		if (cap->nodes[i].free_units == CPL_NODE_UNITS)
			p->full_nodes++;
	}
	if ((rv = tcursor(t, DB_RUNQ, &c)) != 0) {
		free(p);
		return rv;
	}
	// Skipping tasks that do not fit is bounded so that a claim never
	// walks a million-entry queue.
	size_t max_skip = 4096 + 4 * (size_t)cap->max_tasks;
	MDB_cursor_op op = MDB_FIRST;
	uint8_t seek[12];
	rc = 0;
	while (n < cap->max_tasks && skipped < max_skip) {
		struct fit f;
		size_t got;
		if (op == MDB_SET_RANGE) {
			k.mv_data = seek;
			k.mv_size = sizeof(seek);
		}
		if ((rc = mdb_cursor_get(c, &k, &v, op)) != 0)
			break;
		op = MDB_NEXT;
		if (k.mv_size != 12 || v.mv_size != sizeof(f)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&f, v.mv_data, sizeof(f));
		if ((wf && f.wf != wf) || (got = place(p, &f)) == 0) {
			skipped++;
			continue;
		}
		uint64_t id = rd64((uint8_t *)k.mv_data + 4);
		struct srec r;
		uint8_t lk[16];
		// After the delete, seek to the deleted key: that lands on its
		// successor, the next candidate.
		memcpy(seek, k.mv_data, sizeof(seek));
		op = MDB_SET_RANGE;
		if ((rc = mdb_cursor_del(c, 0)) != 0) {
			rv = fail(t, map_mdb(rc));
			rc = 0;
			break;
		}
		if ((rv = srec_get(t, id, &r)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		r.lease = lease;
		r.attempt++;
		pair_key(lk, lease, id);
		if ((rv = srec_put(t, id, &r)) != 0 ||
		    (rv = tput(t, DB_LEASE_IDX, lk, 16, "", 0, 0)) != 0)
			break;
		n++;
		if (fn != NULL) {
			cpl_task tk;
			task_fill(&tk, id, &r);
			if ((rv = fn(&tk, p->idx, got, arg)) != 0) {
				rv = fail(t, rv);
				break;
			}
		}
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	free(p);
	if (rv == 0 && nclaimed)
		*nclaimed = n;
	return rv;
}

// ------------------------------------------------------------ history

static int
event_decode(const MDB_val *k, const MDB_val *v, cpl_event *e, char *buf)
{
	struct evrec r;
	if (k->mv_size != 8 || v->mv_size < sizeof(r))
		return CPL_ECORRUPT;
	memcpy(&r, v->mv_data, sizeof(r));
	if (v->mv_size != sizeof(r) + r.nodelen + r.msglen)
		return CPL_ECORRUPT;
	e->seq = rd64(k->mv_data);
	e->task_id = r.task;
	e->from = (cpl_state)r.from;
	e->to = (cpl_state)r.to;
	e->time_us = r.time;
	e->attempt = r.attempt;
	e->lease = r.lease;
	e->return_code = r.rc;
	// buf holds the message, then the node: MAX_MSG + 1 + 256 bytes
	memcpy(buf, (char *)v->mv_data + sizeof(r) + r.nodelen, r.msglen);
	buf[r.msglen] = '\0';
	e->message = buf;
	char *node = buf + r.msglen + 1;
	memcpy(node, (char *)v->mv_data + sizeof(r), r.nodelen);
	node[r.nodelen] = '\0';
	e->node = node;
	return 0;
}

int
cpl_history_task(cpl_txn *t, uint64_t id, cpl_event_fn fn, void *arg)
{
	cpl_ids seqs = { NULL, 0, 0 };
	char *buf;
	int rv;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = pair_walk(t, DB_TASK_EV, id, idvec_cb, &seqs)) != 0) {
		free(seqs.v);
		return rv;
	}
	if ((buf = malloc(MAX_MSG + 1 + 256)) == NULL) {
		free(seqs.v);
		return CPL_ENOMEM;
	}
	for (size_t i = 0; i < seqs.n && rv == 0; i++) {
		uint8_t k[8];
		MDB_val key = { 8, k }, v;
		cpl_event e;
		be64(k, seqs.v[i]);
		if ((rv = tget(t, DB_EVENT, k, 8, &v)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if ((rv = event_decode(&key, &v, &e, buf)) != 0) {
			rv = fail(t, rv);
			break;
		}
		rv = fn(&e, arg);
	}
	free(buf);
	free(seqs.v);
	return rv;
}

int
cpl_history_scan(cpl_txn *t, uint64_t after, size_t limit, cpl_event_fn fn,
    void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[8];
	char *buf;
	size_t n = 0;
	int rc, rv = 0;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((buf = malloc(MAX_MSG + 1 + 256)) == NULL)
		return CPL_ENOMEM;
	if ((rv = tcursor(t, DB_EVENT, &c)) != 0) {
		free(buf);
		return rv;
	}
	be64(start, after + 1);
	k.mv_data = start;
	k.mv_size = 8;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && (limit == 0 || n < limit);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		cpl_event e;
		if ((rv = event_decode(&k, &v, &e, buf)) != 0) {
			rv = fail(t, rv);
			break;
		}
		n++;
		if ((rv = fn(&e, arg)) != 0)
			break;
	}
	if (rv == 0 && rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	free(buf);
	return rv;
}

int
cpl_history_seek_time(cpl_txn *t, uint64_t time_us, uint64_t *seq)
{
	int rv;
	if (t == NULL || seq == NULL)
		return CPL_EINVAL;
	uint64_t lo = 1, hi = t->meta.next_seq; // answer in [lo, hi]
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		uint8_t k[8];
		MDB_val v;
		struct evrec r;
		be64(k, mid);
		if ((rv = tget(t, DB_EVENT, k, 8, &v)) != 0)
			return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
		if (v.mv_size < sizeof(r))
			return fail(t, CPL_ECORRUPT);
		memcpy(&r, v.mv_data, sizeof(r));
		if (r.time < time_us)
			lo = mid + 1;
		else
			hi = mid;
	}
	*seq = lo;
	return 0;
}

int
cpl_history_note(cpl_txn *t, uint64_t id, const char *message)
{
	struct srec r;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	return event_append(t, id, (cpl_state)r.state, (cpl_state)r.state,
	    r.attempt, r.lease, r.rc, message);
}

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

// ------------------------------------------------------------ upkeep

struct stats_ctx {
	cpl_store_stats *out;
};

static int
stats_cb(cpl_txn *t, void *arg)
{
	cpl_store_stats *st = arg;
	MDB_envinfo info;
	MDB_stat ms;
	uint64_t n = 0;
	for (int i = 0; i < CPL_NSTATES; i++)
		n += t->meta.counts[i];
	st->ntasks = n;
	st->nevents = t->meta.next_seq - 1;
	mdb_env_info(t->s->env, &info);
	mdb_env_stat(t->s->env, &ms);
	st->map_size = info.me_mapsize;
	st->used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
	char path[PATH_MAX];
	struct stat sb;
	st->file_bytes = cpl_dbpath(t->s->dir, CPL_DB_LMDB_DATA, path,
	    sizeof(path)) == 0 && stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	return 0;
}

int
cpl_store_stats_get(cpl_store *s, cpl_store_stats *out)
{
	if (s == NULL || out == NULL)
		return CPL_EINVAL;
	memset(out, 0, sizeof(*out));
	return cpl_store_read(s, stats_cb, out);
}

#include "check.inc"
