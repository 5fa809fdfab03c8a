// copal store: the LMDB environment (open, close, filesystem safety, map
// growth after a full map, reopen after a panic) and the transactions that
// run the callers' callbacks.
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "copal/dbdir.h"
#include "store_impl.h"

const char *const cs_db_names[DB_COUNT] = {
	"meta", "spec", "state", "st_idx", "runq", "uuid", "wf_idx",
	"app_idx", "child", "parent", "lease", "lease_idx", "notice",
	"event", "task_ev", "names", "app", "uuid_new", "reply", "reply_age",
	"lease_log", "bjob", "wrunq", "tags", "tag_idx", "tag_runq",
	"tag_cnt", "mrunq", "wmrunq", "runq_ll", "wrunq_ll",
	"lease_bj", "bj_task", "bj_count", "uuid_gen", "reply_log",
};

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
	if (t->meta.magic != META_MAGIC || (t->meta.version != META_VERSION &&
	    t->meta.version != META_VERSION_UGEN &&
	    t->meta.version != META_VERSION_RLOG &&
	    t->meta.version != META_VERSION_RKEY))
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
	free(t->ubuf);
	free(t->utmp);
	t->ubuf = t->utmp = NULL;
	t->nubuf = t->capubuf = t->caputmp = 0;
}

static int
txn_commit(cpl_txn *t)
{
	int rv;
	t->meta.last_time = t->now;
	if ((rv = cs_uuid_flush(t)) != 0) {
		mdb_txn_abort(t->txn);
		return rv;
	}
	if (t->meta.uuid_new_n >= UUID_MERGE_AT &&
	    (rv = cs_uuid_merge(t)) != 0) {
		mdb_txn_abort(t->txn);
		return rv;
	}
	if ((rv = cs_name_count_flush(t)) != 0 ||
	    (rv = tput(t, DB_META, "meta", 4, &t->meta, sizeof(t->meta), 0)) !=
	    0) {
		mdb_txn_abort(t->txn);
		return rv;
	}
	int rc = mdb_txn_commit(t->txn);
	return map_mdb(rc);
}

// Builds the workflows' run queues of a database written before they
// existed (wrunq empty, runq not): one entry per runq entry. Returns an
// LMDB code.
static int
wrunq_fill(MDB_txn *txn, const cpl_store *s)
{
	MDB_cursor *c;
	MDB_val k, v;
	MDB_stat st;
	int rc;
	if ((rc = mdb_stat(txn, s->dbi[DB_WRUNQ], &st)) != 0 ||
	    st.ms_entries != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->dbi[DB_RUNQ], &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fit f;
		uint8_t wk[16];
		if (k.mv_size != 12 || v.mv_size != sizeof(f))
			continue; // cpl_store_check reports it
		memcpy(&f, v.mv_data, sizeof(f));
		be32(wk, f.wf);
		memcpy(wk + 4, k.mv_data, 12);
		MDB_val nk = { sizeof(wk), wk };
		if ((rc = mdb_put(txn, s->dbi[DB_WRUNQ], &nk, &v, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

// Moves one queue's entries of tasks of more than one node to its
// by-node-count queue (kl: the key length of from; to's key puts the
// node count after a workflow prefix of pre bytes): the keys are found
// first, then moved. Returns an LMDB code.
static int
mrunq_move(MDB_txn *txn, const cpl_store *s, int from, int to, size_t kl,
    size_t pre)
{
	struct mv {
		uint8_t k[20];
		struct fit f;
	} *m = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;
	if ((rc = mdb_cursor_open(txn, s->dbi[from], &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fit f;
		if (k.mv_size != kl || v.mv_size != sizeof(f))
			continue; // cpl_store_check reports it
		memcpy(&f, v.mv_data, sizeof(f));
		if (nodes_class(f.nodes) == 1)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			struct mv *nm = realloc(m, cap * sizeof(*m));
			if (nm == NULL) {
				rc = ENOMEM;
				break;
			}
			m = nm;
		}
		memcpy(m[n].k, k.mv_data, kl);
		m[n++].f = f;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint8_t nk[24];
		MDB_val ok = { kl, m[i].k }, fv = { sizeof(m[i].f), &m[i].f };
		memcpy(nk, m[i].k, pre);
		be32(nk + pre, m[i].f.nodes);
		memcpy(nk + pre + 4, m[i].k + pre, kl - pre);
		MDB_val nkv = { kl + 4, nk };
		if ((rc = mdb_put(txn, s->dbi[to], &nkv, &fv, 0)) == 0)
			rc = mdb_del(txn, s->dbi[from], &ok, NULL);
	}
	free(m);
	return rc;
}

// Databases written before the by-node-count queues keep runnable
// multi-node tasks in runq and wrunq: moved once, then marked in meta.
static int
mrunq_fill(MDB_txn *txn, const cpl_store *s)
{
	MDB_val k = { 5, "mrunq" }, v;
	int rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
	if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mrunq_move(txn, s, DB_RUNQ, DB_MRUNQ, 12, 0)) != 0 ||
	    (rc = mrunq_move(txn, s, DB_WRUNQ, DB_WMRUNQ, 16, 4)) != 0)
		return rc;
	v.mv_size = 0;
	v.mv_data = "";
	return mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
}

// Rewrites db's keys through scratch (empty): each key of total bytes,
// whose 24 bytes from at are a client id and a request id, gets the
// request id first (reply.c); other keys stay. Returns an LMDB code.
static int
rekey(MDB_txn *txn, MDB_dbi db, MDB_dbi scratch, size_t total, size_t at)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t nk[8 + 24];
	int rc;
	if ((rc = mdb_cursor_open(txn, db, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		MDB_val key = k;
		if (k.mv_size == total) {
			const uint8_t *p = k.mv_data;
			memcpy(nk, p, at);
			memcpy(nk + at, p + at + 16, 8);   // the request id
			memcpy(nk + at + 8, p + at, 16);   // the client id
			key.mv_data = nk;
		}
		if ((rc = mdb_put(txn, scratch, &key, &v, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_drop(txn, db, 0)) != 0 ||
	    (rc = mdb_cursor_open(txn, scratch, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if ((rc = mdb_put(txn, db, &k, &v, MDB_APPEND)) != 0)
			break;
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc;
	return mdb_drop(txn, scratch, 0);
}

// A database whose replies were stored client id first (before
// META_VERSION_RKEY) gets its reply and reply_age keys rewritten, request
// id first, and is marked; one without stored replies is left as it is
// (its first reply marks it). In the open's one transaction: done whole
// or not at all. It needs room for about twice the reply tables (the
// copy, and the pages of the originals, freed only at the commit): a map
// too small is grown (cpl_store_open). Returns an LMDB code.
static int
reply_rekey(MDB_txn *txn, const cpl_store *s)
{
	struct meta m;
	MDB_val k = { 4, "meta" }, v;
	MDB_stat st;
	MDB_dbi scratch;
	int rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0; // a new database
	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(m))
		return 0; // refused when it is read (CPL_EVERSION)
	memcpy(&m, v.mv_data, sizeof(m));
	if (m.magic != META_MAGIC || m.version >= META_VERSION_RKEY)
		return 0;
	if ((rc = mdb_stat(txn, s->dbi[DB_REPLY], &st)) != 0 ||
	    st.ms_entries == 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, "reply_rekey", MDB_CREATE,
	         &scratch)) != 0 ||
	    (rc = mdb_drop(txn, scratch, 0)) != 0 ||
	    (rc = rekey(txn, s->dbi[DB_REPLY], scratch, 24, 0)) != 0 ||
	    (rc = rekey(txn, s->dbi[DB_REPLY_AGE], scratch, 8 + 24, 8)) != 0 ||
	    (rc = mdb_drop(txn, scratch, 1)) != 0)
		return rc;
	m.version = META_VERSION_RKEY;
	v.mv_size = sizeof(m);
	v.mv_data = &m;
	return mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
}

static int
env_open(cpl_store *s)
{
	int rc;
	MDB_txn *txn;
	if ((rc = mdb_env_create(&s->env)) != 0)
		return map_mdb(rc);
	mdb_env_set_maxdbs(s->env, DB_COUNT + 3); // (+ reply_rekey's scratch)
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
	// a sub-database added with the tag indices: absent in a database
	// written before them, whose tasks' tags are then indexed once
	MDB_dbi probe;
	s->tags_fill = mdb_dbi_open(txn, cs_db_names[DB_TAG_CNT], 0,
	    &probe) == MDB_NOTFOUND;
	for (int i = 0; i < DB_COUNT; i++) {
		if ((rc = mdb_dbi_open(txn, cs_db_names[i], MDB_CREATE,
		         &s->dbi[i])) != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	if ((rc = wrunq_fill(txn, s)) != 0 ||
	    (rc = mrunq_fill(txn, s)) != 0 ||
	    (rc = reply_rekey(txn, s)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
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
	// the changes made at open (a rekeying copies the reply tables
	// once) may need a larger map than the database had
	while ((rv = env_open(s)) == CPL_EMAPFULL &&
	    s->map_size * 2 <= s->opts.map_max)
		s->map_size *= 2;
	if (rv != 0)
		goto fail;
	pthread_mutex_init(&s->wlock, NULL);
	pthread_rwlock_init(&s->envlock, NULL);

	// check (and on a new database, write) the meta record
	cpl_txn t;
	if ((rv = txn_begin(s, true, &t)) != 0) {
		mdb_env_close(s->env);
		goto fail_locks;
	}
	if (s->tags_fill && (rv = cs_tag_fill(&t)) != 0) {
		mdb_txn_abort(t.txn);
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
	// the child looks uuids up in the trees: the parent's waiting ones
	// go there first
	if ((rv = cs_uuid_flush(parent)) != 0)
		return rv;
	memset(&t, 0, sizeof(t));
	t.s = parent->s;
	t.write = true;
	t.parent = parent;
	t.now = parent->now;
	t.meta = parent->meta;
	if ((rc = mdb_txn_begin(parent->s->env, parent->txn, 0, &t.txn)) != 0)
		return fail(parent, map_mdb(rc));
	rv = fn(&t, arg);
	if (rv == 0) {
		// failures land in t.err
		(void)cs_uuid_flush(&t);
		(void)cs_name_count_flush(&t);
	}
	if (t.err) {
		// an LMDB-level failure inside: the whole transaction is lost
		mdb_txn_abort(t.txn);
		txn_free(&t);
		cs_cache_clear(parent);
		return fail(parent, t.err);
	}
	if (rv == 0) {
		if ((rc = mdb_txn_commit(t.txn)) != 0) {
			txn_free(&t);
			cs_cache_clear(parent);
			return fail(parent, map_mdb(rc));
		}
		parent->meta = t.meta;
		// what the child changed is the parent's now (a direct
		// caller around it must know)
		parent->changes += t.changes + 1;
	} else {
		mdb_txn_abort(t.txn);
	}
	txn_free(&t);
	cs_cache_clear(parent); // names or leases seen inside may be gone
	return rv;
}

int
cpl_txn_direct(cpl_txn *txn, cpl_txn_fn fn, void *arg, bool *changed)
{
	if (txn == NULL || fn == NULL || changed == NULL || !txn->write)
		return CPL_EINVAL;
	*changed = false;
	if (txn->err)
		return txn->err;
	uint64_t c0 = txn->changes;
	struct meta m0 = txn->meta;
	int rv = fn(txn, arg);
	if (rv != 0 && txn->err == 0)
		*changed = txn->changes != c0 ||
		    memcmp(&m0, &txn->meta, sizeof(m0)) != 0;
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

uint64_t
cpl_store_claimable_seq(cpl_store *s)
{
	return __atomic_load_n(&s->claimable_seq, __ATOMIC_ACQUIRE);
}

int
cpl_store_stats_get(cpl_store *s, cpl_store_stats *out)
{
	if (s == NULL || out == NULL)
		return CPL_EINVAL;
	memset(out, 0, sizeof(*out));
	return cpl_store_read(s, stats_cb, out);
}
