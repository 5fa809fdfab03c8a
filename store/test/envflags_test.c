// The store's LMDB environment runs without MDB_WRITEMAP, and the LMDB
// behaviour that decision rests on (BENCHMARKS.md, "MDB_WRITEMAP"):
// - the broker runs every job of a group commit in a nested transaction
//   (cpl_txn_sub), which LMDB refuses in a MDB_WRITEMAP environment;
// - with MDB_WRITEMAP, data.mdb is as large as the map (a sparse file),
//   so `copal db stats`' file size would be the map size, not the data.
// If a newer LMDB lifts either, this test fails: measure again before
// changing the environment's flags.
// store_impl.h first: cmocka defines a fail() macro, the store a fail().
#include "../src/store_impl.h"

#include "copal/testing/util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

// Nothing inside: the nested transaction's begin and commit are the test.
static int
sub_empty(cpl_txn *t, void *arg)
{
	(void)t;
	(void)arg;
	return 0;
}

static int
write_nested(cpl_txn *t, void *arg)
{
	(void)arg;
	return cpl_txn_sub(t, sub_empty, NULL);
}

// The store's own environment: durable, no write map, nested
// transactions work, data.mdb no larger than its pages.
static void
test_store_env(void **state)
{
	tu_env *e = *state;
	unsigned flags = 0;
	assert_int_equal(mdb_env_get_flags(e->s->env, &flags), 0);
	assert_int_equal(flags & MDB_WRITEMAP, 0);
	assert_int_equal(flags & MDB_NOSYNC, 0); // tu_setup_durable
	TU_OK(cpl_store_write(e->s, write_nested, NULL));
	for (int i = 0; i < 200; i++) {
		char name[16];
		snprintf(name, sizeof(name), "t%d", i);
		assert_int_not_equal(tu_task(e, name, "wf", 0), 0);
	}

	cpl_store_stats st;
	TU_OK(cpl_store_stats_get(e->s, &st));
	char path[PATH_MAX];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/data.mdb", e->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(st.file_bytes, (uint64_t)sb.st_size);
	// a few hundred tasks: a few hundred kB, far from the 1 GiB map
	assert_true(st.used_bytes <= st.file_bytes);
	assert_true(st.file_bytes < st.map_size / 16);
}

// LMDB with MDB_WRITEMAP, in a directory of its own: a nested write
// transaction is refused (MDB_BAD_TXN), and data.mdb takes the map's
// size at open while the blocks it holds stay few.
static void
test_lmdb_writemap(void **state)
{
	(void)state;
	char dir[64], path[PATH_MAX];
	MDB_env *env;
	MDB_txn *txn, *child = NULL;
	struct stat sb;
	const size_t map = 64u << 20;
	assert_int_equal(tu_mkdtemp(dir, sizeof(dir)), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_mapsize(env, map), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_WRITEMAP | MDB_NOTLS,
	    0600), 0);
	unsigned flags = 0;
	assert_int_equal(mdb_env_get_flags(env, &flags), 0);
	assert_int_not_equal(flags & MDB_WRITEMAP, 0);

	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	int rc = mdb_txn_begin(env, txn, 0, &child);
	if (rc == 0)
		fail_msg("LMDB %s allows a nested transaction with "
		    "MDB_WRITEMAP: see BENCHMARKS.md, MDB_WRITEMAP",
		    mdb_version(NULL, NULL, NULL));
	assert_int_equal(rc, MDB_BAD_TXN);
	MDB_dbi dbi;
	MDB_val k = { 1, "k" }, v = { 1, "v" };
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, (uint64_t)map);
	assert_true((uint64_t)sb.st_blocks * 512u < map / 16);
	mdb_env_close(env);
	assert_int_equal(tu_rmrf(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_env,
		    tu_setup_durable, tu_teardown),
		cmocka_unit_test(test_lmdb_writemap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
