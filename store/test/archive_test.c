// Archiving (copal db archive): cpl_archive_eligible decides which tasks
// may go, cpl_task_purge removes one with its history and every index
// entry, and cpl_store_check passes after (the event log's gaps are
// counted). Also the database file: cpl_db_stats_get from another process
// beside the open store, cpl_db_compact (refused while the store is open,
// a stale copy removed, the data kept).
#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TTL (3600u * 1000u)

struct purge_arg {
	uint64_t id;
	uint64_t nev;
};

static int
purge_cb(cpl_txn *t, void *arg)
{
	struct purge_arg *a = arg;
	return cpl_task_purge(t, a->id, &a->nev);
}

static int
purge(tu_env *e, uint64_t id, uint64_t *nev)
{
	struct purge_arg a = { id, 0 };
	int rv = cpl_store_write(e->s, purge_cb, &a);
	if (nev)
		*nev = a.nev;
	return rv;
}

struct elig_arg {
	uint64_t id, before;
	const char *wf;
	bool ok;
	uint64_t last;
};

static int
elig_cb(cpl_txn *t, void *arg)
{
	struct elig_arg *a = arg;
	return cpl_archive_eligible(t, a->id, a->before, a->wf, &a->ok,
	    &a->last);
}

static bool
eligible(tu_env *e, uint64_t id, uint64_t before, const char *wf)
{
	struct elig_arg a = { id, before, wf, false, 0 };
	TU_OK(cpl_store_read(e->s, elig_cb, &a));
	return a.ok;
}

static uint64_t
tagged_task(tu_env *e, const char *name, const char *wf, const char *tag)
{
	tu_spec sp;
	char *tags[1] = { (char *)tag };
	tu_spec_init(&sp, name, wf, NULL);
	sp.spec.n_tags = 1;
	sp.spec.tags = tags;
	return tu_task_spec(e, &sp);
}

struct tag_arg {
	const char *tag;
	uint64_t c[CPL_NSTATES];
};

static int
tag_count_cb(cpl_txn *t, void *arg)
{
	struct tag_arg *a = arg;
	return cpl_count_tag(t, a->tag, a->c);
}

static uint64_t
tag_count(tu_env *e, const char *tag, cpl_state s)
{
	struct tag_arg a = { tag, { 0 } };
	TU_OK(cpl_store_read(e->s, tag_count_cb, &a));
	return a.c[s];
}

static void
test_purge(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t done = tagged_task(e, "done", "wA", "k=v");
	uint64_t ready = tu_task(e, "ready", "wB", 0);
	uint64_t parent = tu_task(e, "parent", "wC", 0);
	uint64_t child = tu_task(e, "child", "wC2", 1, parent);
	tu_finish(e, lease, "wA", done);
	tu_finish(e, lease, "wC", parent);
	tu_note(e, done, "a note");
	size_t hist = tu_history_len(e, done);
	assert_true(hist >= 4);
	uint64_t nfin = tu_count(e, CPL_JOB_FINISHED);
	assert_int_equal(tag_count(e, "k=v", CPL_JOB_FINISHED), 1);
	cpl_store_stats st0 = tu_stats(e);

	// refusals write nothing
	tu_snap sn;
	tu_snap_take(e, ready, &sn);
	assert_int_equal(purge(e, ready, NULL), CPL_EBADSTATE);
	tu_snap_same(e, ready, &sn, "purge of a READY task");
	tu_snap_take(e, parent, &sn);
	assert_int_equal(purge(e, parent, NULL), CPL_EINUSE);
	tu_snap_same(e, parent, &sn, "purge of a parent");
	assert_int_equal(purge(e, 999999, NULL), CPL_ENOTFOUND);

	// the finished task goes with its history and its indices
	cpl_task t = tu_task_get(e, done);
	char u[37];
	cpl_uuid_format(t.uuid, u);
	uint64_t nev = 0;
	TU_OK(purge(e, done, &nev));
	assert_int_equal(nev, hist);
	cpl_task gone;
	assert_int_equal(tu_get(e, done, &gone), CPL_ENOTFOUND);
	assert_int_equal(tu_history_len(e, done), 0);
	assert_int_equal(tu_count(e, CPL_JOB_FINISHED), nfin - 1);
	assert_int_equal(tag_count(e, "k=v", CPL_JOB_FINISHED), 0);
	cpl_store_stats st1 = tu_stats(e);
	assert_int_equal(st1.ntasks, st0.ntasks - 1);
	TU_CHECK(e);
	TU_COUNTS_CONSISTENT(e);

	// the child is unfinished: its parent may not go; once it is
	// killed, both go, child first
	assert_false(eligible(e, parent, e->now_us + 1, NULL));
	uint64_t killed = 0;
	tu_advance_ms(e, 10);
	TU_OK(tu_kill(e, child, &killed));
	tu_advance_ms(e, 10);
	assert_true(eligible(e, parent, e->now_us + 1, NULL));
	// ... but not for workflow wC alone (the child is of wC2)
	assert_false(eligible(e, parent, e->now_us + 1, "wC"));
	// nor before its child's last event
	assert_false(eligible(e, parent, e->now_us - 15000, NULL));
	assert_false(eligible(e, ready, e->now_us + 1, NULL));
	assert_false(eligible(e, child, e->now_us + 1, "nosuchwf"));
	TU_OK(purge(e, child, NULL));
	TU_OK(purge(e, parent, NULL));
	tu_ids kids = { 0 };
	TU_OK(tu_children(e, parent, &kids));
	assert_int_equal(kids.n, 0);
	TU_CHECK(e);
	TU_COUNTS_CONSISTENT(e);

	// the log has gaps now: a seek by time still finds the right place,
	// and new events go on from the next seq
	uint64_t later = tu_task(e, "later", "wB", 0);
	TU_OK(tu_note(e, later, "x"));
	TU_CHECK(e);
	TU_OK(tu_reopen(e));
	TU_CHECK(e);
}

static int
seek_cb(cpl_txn *t, void *arg)
{
	uint64_t *io = arg;
	return cpl_history_seek_time(t, io[0], &io[1]);
}

static void
test_seek_gaps(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t ids[6];
	for (int i = 0; i < 6; i++) {
		char wf[8];
		snprintf(wf, sizeof(wf), "w%d", i);
		ids[i] = tu_task(e, "t", wf, 0);
		tu_advance_ms(e, 1000);
		tu_finish(e, lease, wf, ids[i]);
		tu_advance_ms(e, 1000);
	}
	uint64_t mid = e->now_us;
	for (int i = 0; i < 3; i++)
		TU_OK(purge(e, ids[i], NULL));
	tu_evs *h = calloc(1, sizeof(*h));
	TU_OK(tu_history(e, ids[3], h));
	assert_true(h->n > 0);
	// the first event of task 3 is found by its time (the seqs of tasks
	// 0..2 are gone)
	uint64_t io[2] = { h->e[0].ev.time_us, 0 };
	TU_OK(cpl_store_read(e->s, seek_cb, io));
	assert_int_equal(io[1], h->e[0].ev.seq);
	io[0] = mid + 1; // after every event: the next seq
	TU_OK(cpl_store_read(e->s, seek_cb, io));
	assert_int_equal(io[1], tu_stats(e).nevents + 1);
	io[0] = 0; // before every event: the first one left
	TU_OK(cpl_store_read(e->s, seek_cb, io));
	assert_int_equal(io[1], h->e[0].ev.seq);
	free(h);
	TU_CHECK(e);
}

// cpl_db_stats_get from another process while this one has the store
// open: the counts it reads are those committed.
static void
test_stats_beside_writer(void **state)
{
	tu_env *e = *state;
	for (int i = 0; i < 50; i++)
		tu_task(e, "t", "w", 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cpl_db_stats st;
		if (cpl_db_stats_get(e->dir, &st) != 0)
			_exit(2);
		if (st.ntasks != 50 || st.counts[CPL_READY] != 50 ||
		    st.nevents != 50 || st.page_size == 0 ||
		    st.used_bytes > st.file_bytes || st.ntables < 30 ||
		    st.map_size < st.file_bytes)
			_exit(3);
		_exit(0);
	}
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	// and the writer goes on
	tu_task(e, "t", "w", 0);
	TU_CHECK(e);
}

static void
test_compact(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t keep = tu_task(e, "keep", "wk", 0);
	for (int i = 0; i < 2000; i++) {
		uint64_t id = tu_task(e, "t", "w", 0);
		if (i % 2)
			TU_OK(tu_delete(e, id));
	}
	tu_finish(e, lease, "wk", keep);
	uint64_t b = 0, a = 0;
	char why[512];
	// refused while the store is open (copal.lock)
	assert_int_equal(cpl_db_compact(e->dir, &b, &a, why, sizeof(why)),
	    CPL_ELOCKED);
	cpl_store_close(e->s);
	e->s = NULL;
	// a copy left by a crash is no obstacle
	char stale[128];
	snprintf(stale, sizeof(stale), "%s/data.mdb.compact", e->dir);
	FILE *fp = fopen(stale, "w");
	assert_non_null(fp);
	fputs("half a copy", fp);
	fclose(fp);
	TU_OK(cpl_db_compact(e->dir, &b, &a, why, sizeof(why)));
	assert_true(a > 0 && a <= b);
	struct stat sb;
	assert_int_not_equal(stat(stale, &sb), 0);
	// a copy that cannot be made leaves data.mdb as it was
	char data[128];
	snprintf(data, sizeof(data), "%s/data.mdb", e->dir);
	assert_int_equal(mkdir(stale, 0700), 0);
	char blk[160];
	snprintf(blk, sizeof(blk), "%s/x", stale);
	fp = fopen(blk, "w"); // not empty: the directory cannot go
	assert_non_null(fp);
	fclose(fp);
	struct stat s0;
	assert_int_equal(stat(data, &s0), 0);
	assert_int_not_equal(cpl_db_compact(e->dir, NULL, NULL, why,
	    sizeof(why)), 0);
	assert_true(why[0] != '\0');
	assert_int_equal(stat(data, &sb), 0);
	assert_int_equal(sb.st_ino, s0.st_ino);
	assert_int_equal(sb.st_size, s0.st_size);
	unlink(blk);
	rmdir(stale);
	TU_OK(tu_reopen(e));
	TU_STATE(e, keep, CPL_JOB_FINISHED);
	assert_int_equal(tu_stats(e).ntasks, 1001);
	TU_CHECK(e);
}

struct bj_arg {
	uint64_t bj, lease, ran;
};

static int
bj_fn(cpl_txn *t, void *arg)
{
	struct bj_arg *a = arg;
	Copal__BatchJob bj = COPAL__BATCH_JOB__INIT, *out = NULL;
	int rv;
	bj.scheduler = "local";
	bj.nodes = 1;
	bj.wall_minutes = 60;
	bj.job_mode = "serial";
	if ((rv = cpl_bjob_add(t, &bj, &out)) != 0)
		return rv;
	a->bj = out->id;
	copal__batch_job__free_unpacked(out, NULL);
	return cpl_lease_grant_job(t, "archive_test", TTL, a->bj, "7",
	    &a->lease);
}

static int
bj_count_fn(cpl_txn *t, void *arg)
{
	struct bj_arg *a = arg;
	return cpl_bjob_counts(t, a->bj, &a->ran, NULL, NULL);
}

// A task run by a batch job's launcher leaves the job's tasks and its
// count of tasks run; cpl_store_check recounts both.
static void
test_purge_batch_job(void **state)
{
	tu_env *e = *state;
	struct bj_arg a = { 0, 0, 0 };
	TU_OK(cpl_store_write(e->s, bj_fn, &a));
	uint64_t t1 = tu_task(e, "t1", "w1", 0);
	uint64_t t2 = tu_task(e, "t2", "w2", 0);
	tu_finish(e, a.lease, "w1", t1);
	tu_finish(e, a.lease, "w2", t2);
	TU_OK(cpl_store_read(e->s, bj_count_fn, &a));
	assert_int_equal(a.ran, 2);
	TU_OK(purge(e, t1, NULL));
	TU_OK(cpl_store_read(e->s, bj_count_fn, &a));
	assert_int_equal(a.ran, 1);
	TU_CHECK(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_purge, tu_setup_durable,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_seek_gaps, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_purge_batch_job, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_stats_beside_writer,
		    tu_setup_durable, tu_teardown),
		cmocka_unit_test_setup_teardown(test_compact, tu_setup_durable,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
