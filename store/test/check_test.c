// cpl_store_check must notice damage. Every other test relies on it
// returning 0 after each scenario; this one makes sure a check that always
// says 0 would not pass. The store is filled, closed, and one entry of one
// of its LMDB sub-databases is deleted behind its back (with LMDB
// directly: the test knows only that the store keeps named sub-databases,
// which it lists from the main database). Then the store must either
// refuse to open or cpl_store_check must return CPL_ECORRUPT with a
// report.
//
// store.h: "Rebuilds every index and counter from the primary records in
// memory and compares them with what is stored." So losing an entry of an
// index, or a primary record that indices point to, must be found. Losing
// a record nothing else refers to (a queued kill notice; the meta record,
// which the store may recreate) may go unnoticed.
#include "copal/testing/util.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL (3600u * 1000u)
#define MAXDB 64

struct job_arg {
	uint64_t bjob, lease;
};

static int
job_cb(cpl_txn *txn, void *arg)
{
	struct job_arg *a = arg;
	Copal__BatchJob j = COPAL__BATCH_JOB__INIT, *out = NULL;
	int rv;
	j.scheduler = "local";
	j.nodes = 1;
	j.wall_minutes = 10;
	j.job_mode = "serial";
	if ((rv = cpl_bjob_add(txn, &j, &out)) != 0)
		return rv;
	a->bjob = out->id;
	copal__batch_job__free_unpacked(out, NULL);
	return cpl_lease_grant_job(txn, "launcher in job", TTL, a->bjob,
	    "4242", &a->lease);
}

// Stored replies: one inline, two in the reply log (one under a client
// id).
static int
replies_cb(cpl_txn *txn, void *arg)
{
	(void)arg;
	static const uint8_t client[CPL_CLIENT_ID_LEN] = { 9, 8, 7 };
	uint8_t big[200];
	memset(big, 'r', sizeof big);
	cpl_reqkey k;
	memset(&k, 0, sizeof k);
	k.id = 1;
	int rv = cpl_reply_put(txn, &k, "ok", 2);
	k.id = 2;
	if (rv == 0)
		rv = cpl_reply_put(txn, &k, big, sizeof big);
	k.client = client;
	if (rv == 0)
		rv = cpl_reply_put(txn, &k, big, 100);
	return rv;
}

// A store with something in every kind of record: apps, a DAG in many
// states, a live lease of a batch job holding tasks (one ran, one
// RUNNING: the batch job's tables), a queued kill notice, history,
// stored replies.
static void
populate(tu_env *e)
{
	TU_OK(cpl_store_write(e->s, replies_cb, NULL));
	TU_OK(tu_app_put(e, "app2", "/bin/echo"));
	struct job_arg ja = { 0, 0 };
	TU_OK(cpl_store_write(e->s, job_cb, &ja));
	assert_int_equal(ja.bjob, 1);
	uint64_t lease = ja.lease;
	uint64_t a = tu_task(e, "a", "w1", 0);
	uint64_t b = tu_task(e, "b", "w2", 1, a);
	uint64_t c = tu_task(e, "c", "w3", 1, a);
	tu_task(e, "d", "w4", 2, b, c);
	tu_spec sp;
	tu_spec_init(&sp, "x", "w5", "app2");
	uint64_t x = tu_task_spec(e, &sp);
	uint64_t y = tu_task(e, "y", "w6", 0);
	uint64_t z = tu_task(e, "z", "w7", 0);
	tu_finish(e, lease, "w1", a);
	uint32_t ab = tu_claim_task(e, lease, "w2", b);
	tu_run_to(e, b, lease, ab, CPL_RUNNING);
	tu_claim_task(e, lease, "w5", x);
	uint32_t ay = tu_claim_task(e, lease, "w6", y);
	tu_run_to(e, y, lease, ay, CPL_STAGED_IN);
	TU_OK(tu_kill(e, y, NULL)); // a notice for the lease
	TU_OK(tu_note(e, z, "a note"));
	// a runnable task of two nodes (the by-node-count queues)
	tu_spec_init(&sp, "m", "w8", "app");
	sp.res.num_nodes = 2;
	tu_task_spec(e, &sp);
	TU_CHECK(e);
}

typedef struct dbnames {
	size_t n;
	char name[MAXDB][64];
	size_t entries[MAXDB];
} dbnames;

static int
lmdb_fail(int rc, const char *what)
{
	print_error("lmdb %s: %s\n", what, mdb_strerror(rc));
	return rc;
}

// Lists the named sub-databases and their sizes.
static int
list_dbs(const char *dir, dbnames *out)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi main_dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = mdb_env_create(&env)) != 0)
		return lmdb_fail(rc, "env_create");
	mdb_env_set_maxdbs(env, MAXDB);
	if ((rc = mdb_env_open(env, dir, MDB_RDONLY, 0644)) != 0) {
		mdb_env_close(env);
		return lmdb_fail(rc, "env_open");
	}
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0 ||
	    (rc = mdb_cursor_open(txn, main_dbi, &cur)) != 0) {
		mdb_env_close(env);
		return lmdb_fail(rc, "open main");
	}
	while ((rc = mdb_cursor_get(cur, &k, &v,
	            out->n ? MDB_NEXT : MDB_FIRST)) == 0 &&
	    out->n < MAXDB) {
		snprintf(out->name[out->n], sizeof out->name[0], "%.*s",
		    (int)k.mv_size, (const char *)k.mv_data);
		out->n++;
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; i < out->n; i++) {
		MDB_dbi d;
		MDB_stat st;
		if (mdb_dbi_open(txn, out->name[i], 0, &d) == 0 &&
		    mdb_stat(txn, d, &st) == 0)
			out->entries[i] = st.ms_entries;
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return 0;
}

// Deletes the first (or last) entry of sub-database name.
static int
delete_one(const char *dir, const char *name, bool last)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi d;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;
	if ((rc = mdb_env_create(&env)) != 0)
		return lmdb_fail(rc, "env_create");
	mdb_env_set_maxdbs(env, MAXDB);
	mdb_env_set_mapsize(env, 64u << 20);
	if ((rc = mdb_env_open(env, dir, 0, 0644)) != 0) {
		mdb_env_close(env);
		return lmdb_fail(rc, "env_open");
	}
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		mdb_env_close(env);
		return lmdb_fail(rc, "txn_begin");
	}
	if ((rc = mdb_dbi_open(txn, name, 0, &d)) != 0 ||
	    (rc = mdb_cursor_open(txn, d, &cur)) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return lmdb_fail(rc, "dbi_open");
	}
	rc = mdb_cursor_get(cur, &k, &v, last ? MDB_LAST : MDB_FIRST);
	if (rc == 0)
		rc = mdb_cursor_del(cur, 0);
	mdb_cursor_close(cur);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc ? lmdb_fail(rc, "delete") : 0;
}

// Edits sub-database name: fn gets a write cursor (and the transaction
// and database, to put entries).
static int
edit_db(const char *dir, const char *name,
    int (*fn)(MDB_txn *, MDB_dbi, MDB_cursor *))
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi d;
	MDB_cursor *cur;
	int rc;
	if ((rc = mdb_env_create(&env)) != 0)
		return lmdb_fail(rc, "env_create");
	mdb_env_set_maxdbs(env, MAXDB);
	mdb_env_set_mapsize(env, 64u << 20);
	if ((rc = mdb_env_open(env, dir, 0, 0644)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		mdb_env_close(env);
		return lmdb_fail(rc, "open");
	}
	if ((rc = mdb_dbi_open(txn, name, 0, &d)) != 0 ||
	    (rc = mdb_cursor_open(txn, d, &cur)) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return lmdb_fail(rc, "dbi_open");
	}
	rc = fn(txn, d, cur);
	mdb_cursor_close(cur);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc ? lmdb_fail(rc, "edit") : 0;
}

static bool
may_go_unnoticed(const char *name)
{
	return strcmp(name, "notice") == 0 || strcmp(name, "meta") == 0;
}

// The directory of the store being damaged, removed by the teardown if a
// failure left it behind.
static char leftover[64];

static int
remove_leftover(void **state)
{
	(void)state;
	if (leftover[0] != '\0')
		tu_rmrf(leftover);
	leftover[0] = '\0';
	return 0;
}

static tu_env *
fresh(void)
{
	tu_env *e = tu_env_new();
	assert_non_null(e);
	snprintf(leftover, sizeof leftover, "%s", e->dir);
	TU_OK(cpl_store_open(e->dir, &e->opts, &e->s));
	TU_OK(tu_app_put(e, "app", "/bin/true"));
	populate(e);
	cpl_store_close(e->s);
	e->s = NULL;
	return e;
}

static void
done(tu_env *e)
{
	tu_rmrf(e->dir);
	leftover[0] = '\0';
	free(e);
}

// Runs the damage over every sub-database whose name passes `want`.
static void
damage_each(bool (*want)(const char *name))
{
	dbnames dbs;
	// Find the sub-databases once.
	{
		tu_env *e = fresh();
		assert_int_equal(list_dbs(e->dir, &dbs), 0);
		done(e);
	}
	assert_true(dbs.n >= 3);
	int missed = 0, detected = 0;
	for (size_t i = 0; i < dbs.n; i++) {
		if (dbs.entries[i] == 0 || !want(dbs.name[i]))
			continue;
		for (int last = 0; last < 2; last++) {
			tu_env *e = fresh();
			assert_int_equal(delete_one(e->dir, dbs.name[i],
			                     last),
			    0);
			int rv = cpl_store_open(e->dir, &e->opts, &e->s);
			char report[1024] = "";
			int rc = -1;
			if (rv == 0) {
				rc = cpl_store_check(e->s, report,
				    sizeof report);
				cpl_store_close(e->s);
				e->s = NULL;
			}
			bool found = rv != 0 || rc != 0;
			char *nl = strchr(report, '\n');
			if (nl)
				*nl = '\0';
			print_message("%-10s %s entry (%zu): %s%s%s\n",
			    dbs.name[i], last ? "last " : "first",
			    dbs.entries[i],
			    rv != 0 ? "open refused: " : "check: ",
			    rv != 0 ? cpl_errname(rv) : cpl_errname(rc),
			    report[0] ? " -- " : "");
			if (report[0])
				print_message("           %s\n", report);
			if (rv == 0 && rc != 0) {
				if (rc != CPL_ECORRUPT)
					TU_FAIL("check returned %s, expected "
					        "CORRUPT",
					    cpl_errname(rc));
				if (report[0] == '\0')
					TU_FAIL("CORRUPT without a report");
			}
			if (found) {
				detected++;
			} else if (!may_go_unnoticed(dbs.name[i])) {
				print_error("lost entry of %s (%s) not "
				            "noticed\n",
				    dbs.name[i], last ? "last" : "first");
				missed++;
			}
			done(e);
		}
	}
	assert_true(detected > 0);
	if (missed)
		TU_FAIL("%d lost entries went unnoticed by cpl_store_check",
		    missed);
}

static bool
is_app_db(const char *name)
{
	return strcmp(name, "app") == 0 || strcmp(name, "apps") == 0;
}

static bool
not_app_db(const char *name)
{
	return !is_app_db(name);
}

// Indices, counters and the primary records they point to.
static void
test_check_detects_lost_entries(void **state)
{
	(void)state;
	damage_each(not_app_db);
}

// Losing an app record that tasks name: the tasks now refer to an app
// that does not exist, which cpl_task_create and cpl_app_delete (EINUSE)
// never allow, and which a claim could not serve. The check already
// verifies that held tasks' leases exist; the same is expected of apps.
static void
test_check_detects_lost_app(void **state)
{
	(void)state;
	damage_each(is_app_db);
}

// An intact store checks clean after close and reopen, and the report
// buffer may be small.
static void
test_check_clean(void **state)
{
	tu_env *e = *state;
	populate(e);
	char tiny[4];
	TU_OK(cpl_store_check(e->s, tiny, sizeof tiny));
	cpl_store_close(e->s);
	e->s = NULL;
	TU_OK(cpl_store_open(e->dir, &e->opts, &e->s));
	TU_CHECK(e);
}

// A database from before the by-node-count queues keeps runnable tasks of
// more than one node in runq and wrunq: made here by moving the entries
// of mrunq and wmrunq back (keys without the node count) and dropping
// the meta marker. Opening it moves them again; it checks clean, and a
// claim of two nodes takes the task.
static int
to_old_layout(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi d[5];
	const char *names[5] = { "mrunq", "wmrunq", "runq", "wrunq", "meta" };
	int rc;
	if ((rc = mdb_env_create(&env)) != 0)
		return lmdb_fail(rc, "env_create");
	mdb_env_set_maxdbs(env, MAXDB);
	mdb_env_set_mapsize(env, 64u << 20);
	if ((rc = mdb_env_open(env, dir, 0, 0644)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		mdb_env_close(env);
		return lmdb_fail(rc, "open");
	}
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = mdb_dbi_open(txn, names[i], 0, &d[i]);
	int moved = 0;
	for (int q = 0; q < 2 && rc == 0; q++) {
		size_t pre = q ? 4 : 0; // wmrunq: the workflow first
		MDB_cursor *c;
		MDB_val k, v;
		if ((rc = mdb_cursor_open(txn, d[q], &c)) != 0)
			break;
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
			uint8_t ok[16];
			memcpy(ok, k.mv_data, pre);
			memcpy(ok + pre, (uint8_t *)k.mv_data + pre + 4, 12);
			MDB_val okv = { pre + 12, ok };
			if ((rc = mdb_put(txn, d[2 + q], &okv, &v, 0)) != 0 ||
			    (rc = mdb_cursor_del(c, 0)) != 0)
				break;
			moved++;
		}
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	MDB_val mk = { 5, "mrunq" };
	if (rc == 0)
		rc = mdb_del(txn, d[4], &mk, NULL);
	if (rc == 0 && moved != 2)
		rc = MDB_NOTFOUND; // one entry in each expected
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc ? lmdb_fail(rc, "to the old layout") : 0;
}

static void
test_check_mrunq_from_old_layout(void **state)
{
	(void)state;
	tu_env *e = fresh();
	assert_int_equal(to_old_layout(e->dir), 0);
	TU_OK(cpl_store_open(e->dir, &e->opts, &e->s));
	TU_CHECK(e);
	uint64_t lease = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	cpl_node_cap nodes[2] = { { CPL_NODE_UNITS, 0 }, { CPL_NODE_UNITS, 0 } };
	cpl_capacity cap;
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = 10;
	cap.nodes = nodes;
	cap.nnodes = 2;
	cap.workflow = "w8";
	TU_OK(tu_claim(e, lease, &cap, cl));
	assert_int_equal(cl->n, 1);
	assert_int_equal(cl->nnodes[0], 2);
	free(cl);
	TU_CHECK(e);
	cpl_store_close(e->s);
	e->s = NULL;
	done(e);
}

// bj_count of job 1: ran one more than it did
static int
count_one_more(MDB_txn *txn, MDB_dbi d, MDB_cursor *c)
{
	MDB_val k, v;
	uint64_t cnt[3];
	int rc;
	(void)txn;
	(void)d;
	if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) != 0)
		return rc;
	if (v.mv_size != sizeof(cnt))
		return MDB_BAD_VALSIZE;
	memcpy(cnt, v.mv_data, sizeof(cnt));
	cnt[0]++;
	MDB_val nv = { sizeof(cnt), cnt };
	return mdb_cursor_put(c, &k, &nv, MDB_CURRENT);
}

// bj_task: the first entry's task filed under batch job 99 instead
static int
task_in_no_job(MDB_txn *txn, MDB_dbi d, MDB_cursor *c)
{
	MDB_val k, v;
	uint8_t key[16];
	int rc;
	if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) != 0)
		return rc;
	memcpy(key, k.mv_data, 16);
	if ((rc = mdb_cursor_del(c, 0)) != 0)
		return rc;
	memset(key, 0, 8);
	key[7] = 99;
	MDB_val nk = { 16, key }, nv = { 0, (void *)"" };
	return mdb_put(txn, d, &nk, &nv, 0);
}

// lease_bj: the lease names batch job 7, which was never submitted
static int
lease_in_no_job(MDB_txn *txn, MDB_dbi d, MDB_cursor *c)
{
	MDB_val k, v;
	uint8_t val[16];
	int rc;
	(void)txn;
	(void)d;
	if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) != 0)
		return rc;
	memset(val, 0, 8);
	val[7] = 7;
	memcpy(val + 8, "4242", 4);
	MDB_val nv = { 12, val };
	return mdb_cursor_put(c, &k, &nv, MDB_CURRENT);
}

// The batch-job tables (lease_bj, bj_task, bj_count) are checked against
// each other and the batch jobs: one altered entry (not lost: the lost
// ones are test_check_detects_lost_entries's) is CPL_ECORRUPT, with a
// report naming the table and the job.
static void
test_check_batch_job_tables(void **state)
{
	static const struct {
		const char *db;
		int (*fn)(MDB_txn *, MDB_dbi, MDB_cursor *);
		const char *want;
	} cases[] = {
		{ "bj_count", count_one_more, "bj_count: batch job 1 ran 3 "
		  "tasks, recount from bj_task 2" },
		{ "bj_task", task_in_no_job, "filed under batch job 99, "
		  "which does not exist" },
		{ "lease_bj", lease_in_no_job, "names batch job 7, which "
		  "does not exist" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tu_env *e = fresh();
		char report[1024] = "";
		assert_int_equal(edit_db(e->dir, cases[i].db, cases[i].fn), 0);
		TU_OK(cpl_store_open(e->dir, &e->opts, &e->s));
		int rc = cpl_store_check(e->s, report, sizeof report);
		print_message("%-10s altered: %s -- %s", cases[i].db,
		    cpl_errname(rc), report);
		assert_int_equal(rc, CPL_ECORRUPT);
		if (strstr(report, cases[i].want) == NULL)
			TU_FAIL("report \"%s\" does not say \"%s\"", report,
			    cases[i].want);
		cpl_store_close(e->s);
		e->s = NULL;
		done(e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_check_detects_lost_entries,
		    remove_leftover),
		cmocka_unit_test_teardown(test_check_detects_lost_app,
		    remove_leftover),
		cmocka_unit_test_teardown(test_check_batch_job_tables,
		    remove_leftover),
		cmocka_unit_test_setup_teardown(test_check_clean, tu_setup,
		    tu_teardown),
		cmocka_unit_test_teardown(test_check_mrunq_from_old_layout,
		    remove_leftover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
