// copal store: the database file as a whole (copal db stats, copal db
// compact).
//
// Statistics are read through a read-only LMDB environment of their own,
// without the store's lock (copal.lock): LMDB lets any number of
// processes read beside the one writer. Each reader takes a slot in
// lock.mdb's reader table, and the writer never reuses a page a slot's
// snapshot can see, so the broker may keep writing meanwhile (the
// broker's environment uses LMDB's locking: no MDB_NOLOCK).
//
// The compacting copy needs the database to itself: it takes copal.lock as
// cpl_store_open does (CPL_ELOCKED while a broker runs), copies into a new
// file beside data.mdb, makes it durable, and only then renames it over
// data.mdb. Until that rename the old file is untouched, so a crash or a
// failed copy leaves it as it was (and a stale copy behind, removed by
// the next compact).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/dbdir.h"
#include "store_impl.h"

// Opens dir's environment read-only (no map size of ours: LMDB takes the
// writer's from the file).
static int
ro_open(const char *dir, MDB_env **env)
{
	char path[PATH_MAX];
	struct stat sb;
	int rc;
	if (cpl_dbpath(dir, CPL_DB_LMDB_DATA, path, sizeof(path)) != 0)
		return CPL_EINVAL;
	if (stat(path, &sb) != 0)
		return errno == ENOENT ? CPL_ENOTFOUND : CPL_EIO;
	if ((rc = mdb_env_create(env)) != 0)
		return map_mdb(rc);
	mdb_env_set_maxdbs(*env, DB_COUNT + 2);
	mdb_env_set_maxreaders(*env, 512);
	if ((rc = mdb_env_open(*env, dir, MDB_RDONLY | MDB_NOTLS |
	         MDB_NORDAHEAD, 0600)) != 0) {
		mdb_env_close(*env);
		*env = NULL;
		return map_mdb(rc);
	}
	return 0;
}

static void
table_fill(cpl_db_table *tb, const char *name, const MDB_stat *ms)
{
	snprintf(tb->name, sizeof(tb->name), "%s", name);
	tb->entries = ms->ms_entries;
	tb->pages = (uint64_t)ms->ms_branch_pages + ms->ms_leaf_pages +
	    ms->ms_overflow_pages;
	tb->depth = ms->ms_depth;
}

int
cpl_db_stats_get(const char *dir, cpl_db_stats *out)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_envinfo info;
	MDB_stat ms;
	MDB_cursor *c;
	MDB_val k, v;
	char path[PATH_MAX];
	struct stat sb;
	int rc, rv;
	if (dir == NULL || out == NULL)
		return CPL_EINVAL;
	memset(out, 0, sizeof(*out));
	if ((rv = ro_open(dir, &env)) != 0)
		return rv;
	// the broker grew the map since we opened: adopt its size, once
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ==
	    MDB_MAP_RESIZED && mdb_env_set_mapsize(env, 0) == 0)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc != 0) {
		mdb_env_close(env);
		return map_mdb(rc);
	}
	mdb_env_info(env, &info);
	mdb_env_stat(env, &ms);
	out->page_size = ms.ms_psize;
	out->map_size = info.me_mapsize;
	out->last_pgno = info.me_last_pgno;
	out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
	out->txnid = info.me_last_txnid;
	out->readers = info.me_numreaders;
	if (cpl_dbpath(dir, CPL_DB_LMDB_DATA, path, sizeof(path)) == 0 &&
	    stat(path, &sb) == 0) {
		out->file_bytes = (uint64_t)sb.st_size;
		out->disk_bytes = (uint64_t)sb.st_blocks * 512;
	}
	// the freelist (table 0): each value a list of page numbers, its
	// first word their count
	if ((rc = mdb_stat(txn, 0, &ms)) != 0)
		goto fail;
	table_fill(&out->tables[0], "(freelist)", &ms);
	if ((rc = mdb_cursor_open(txn, 0, &c)) != 0)
		goto fail;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		size_t n;
		if (v.mv_size < sizeof(n))
			continue;
		memcpy(&n, v.mv_data, sizeof(n));
		out->free_pages += n;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		goto fail;
	out->ntables = 1;
	for (int i = 0; i < DB_COUNT; i++) {
		MDB_dbi dbi;
		cpl_db_table *tb = &out->tables[out->ntables];
		rc = mdb_dbi_open(txn, cs_db_names[i], 0, &dbi);
		if (rc == MDB_NOTFOUND)
			continue; // a database from before this table
		if (rc || (rc = mdb_stat(txn, dbi, &ms)) != 0)
			goto fail;
		table_fill(tb, cs_db_names[i], &ms);
		out->ntables++;
		if (i == DB_STATE)
			out->ntasks = ms.ms_entries;
		else if (i == DB_EVENT)
			out->nevents = ms.ms_entries;
		else if (i == DB_META) {
			MDB_val mk = { 4, "meta" }, mv;
			struct meta m;
			if (mdb_get(txn, dbi, &mk, &mv) == 0 &&
			    mv.mv_size == sizeof(m)) {
				memcpy(&m, mv.mv_data, sizeof(m));
				for (int s = 0; s < CPL_NSTATES; s++)
					out->counts[s] = m.counts[s];
			}
			MDB_val ak = { 8, "archived" };
			if (mdb_get(txn, dbi, &ak, &mv) == 0 && mv.mv_size == 8)
				memcpy(&out->archived_events, mv.mv_data, 8);
		}
	}
	// the main table: the named tables' roots
	mdb_env_stat(env, &ms);
	out->tables[out->ntables].name[0] = '\0';
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return 0;
fail:
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return map_mdb(rc);
}

// fsync of a directory, for a rename in it to be durable.
static int
dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return CPL_EIO;
	int rv = fsync(fd) == 0 ? 0 : CPL_EIO;
	close(fd);
	return rv;
}

int
cpl_db_compact(const char *dir, uint64_t *before, uint64_t *after,
    char *why, size_t len)
{
	char lock[PATH_MAX], data[PATH_MAX], tmp[PATH_MAX + 16];
	char lmdb_lock[PATH_MAX];
	struct stat sb;
	MDB_env *env = NULL;
	int lockfd = -1, fd = -1, rc, rv;
#define WHY(...) (why ? (void)snprintf(why, len, __VA_ARGS__) : (void)0)
	if (dir == NULL)
		return CPL_EINVAL;
	if (why && len)
		why[0] = '\0';
	if (cpl_dbpath(dir, CPL_DB_LMDB_DATA, data, sizeof(data)) != 0 ||
	    cpl_dbpath(dir, CPL_DB_LMDB_LOCK, lmdb_lock,
	        sizeof(lmdb_lock)) != 0)
		return CPL_EINVAL;
	snprintf(lock, sizeof(lock), "%s/copal.lock", dir);
	snprintf(tmp, sizeof(tmp), "%s.compact", data);
	if (stat(data, &sb) != 0) {
		WHY("%s: %s", data, strerror(errno));
		return errno == ENOENT ? CPL_ENOTFOUND : CPL_EIO;
	}
	if (before)
		*before = (uint64_t)sb.st_size;
	// the store's own lock: no broker, no other compact
	if ((lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		WHY("%s: %s", lock, strerror(errno));
		return CPL_EIO;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		rv = errno == EWOULDBLOCK ? CPL_ELOCKED : CPL_EIO;
		WHY("%s: %s", lock, rv == CPL_ELOCKED ? "the database is open "
		    "(a broker runs on it)" : strerror(errno));
		close(lockfd);
		return rv;
	}
	if (unlink(tmp) != 0 && errno != ENOENT) {
		WHY("cannot remove the copy left by an earlier compact, %s: %s",
		    tmp, strerror(errno));
		rv = CPL_EIO;
		goto out;
	}
	if ((rv = ro_open(dir, &env)) != 0) {
		WHY("%s: cannot open: %s", dir, cpl_strerror(rv));
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	         0600)) < 0) {
		WHY("%s: %s", tmp, strerror(errno));
		rv = CPL_EIO;
		goto out;
	}
	if ((rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT)) != 0) {
		WHY("the compacting copy into %s failed: %s", tmp,
		    mdb_strerror(rc));
		rv = CPL_EIO;
		goto out;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		WHY("%s: %s", tmp, strerror(errno));
		rv = CPL_EIO;
		goto out;
	}
	fd = -1;
	mdb_env_close(env);
	env = NULL;
	if (stat(tmp, &sb) != 0) {
		WHY("%s: %s", tmp, strerror(errno));
		rv = CPL_EIO;
		goto out;
	}
	if (after)
		*after = (uint64_t)sb.st_size;
	// The swap. The copy starts a new transaction count, so the lock
	// file's (which a process that found the file in use would trust)
	// goes too: LMDB makes a fresh one at the next open.
	if (rename(tmp, data) != 0) {
		WHY("rename %s to %s: %s", tmp, data, strerror(errno));
		rv = CPL_EIO;
		goto out;
	}
	if (unlink(lmdb_lock) != 0 && errno != ENOENT) {
		WHY("%s: %s", lmdb_lock, strerror(errno));
		rv = CPL_EIO;
		goto out;
	}
	if ((rv = dir_sync(dir)) != 0)
		WHY("%s: fsync: %s", dir, strerror(errno));
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	} else if (rv != 0) {
		unlink(tmp);
	}
	if (env)
		mdb_env_close(env);
	close(lockfd); // releases the lock
	return rv;
#undef WHY
}
