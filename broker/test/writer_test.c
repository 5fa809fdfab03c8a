// Unit test of the broker's single writer (broker/src/writer.c) on a real
// store in a temporary directory, without NNG: jobs from several threads
// are each completed exactly once through their done callback; jobs queued
// together share one commit; a failing job is undone without undoing the
// others of its batch, nested or direct (a direct one that had changed
// something makes the batch run again, nested, each job reset first);
// a failure outside the nested transactions loses
// the whole batch; a replayed job does not run; stop runs and completes
// what is queued, and refuses what comes after; the jobs of a large batch
// are answered in order off the writer, which meanwhile runs the next;
// claims held in such a batch hear of what later batches changed; a few
// sources never make a batch wait for more jobs, and many seen lately do
// even after a batch of one.
//
// Each job registers an app named after it, so what was committed is read
// back from the store.
#include "copal/testing/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "writer.h"

enum { NTHREADS = 4, PER_THREAD = 200 };

// ------------------------------------------------------------ jobs

struct tjob {
	wjob j;
	char name[32];
	int fail;          // run writes its app, then returns this
	int fail_early;    // run returns this before it writes anything
	int after_fail;    // after returns this
	bool replay;       // replay says the job is done already
	bool block;        // run waits for release (holds the batch open)
	bool block_done;   // done waits for release_done
	bool bump;         // run ends a lease: what claims find changes
	int done_seq;      // the order in which done was called (from 1)
	// outcomes (written on the writer thread, read after done)
	int nrun, nafter, ndone, nreset;
	int run_rv;        // what after saw
	int done_rv;
};

// Completion: every done counts here; the test waits on it.
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ndone;
static bool blocked, released;
static bool done_blocked, done_released;
// The writer's on_claimable: how many done calls had been made at each.
enum { MAX_WAKES = 64 };
static int nwakes, wake_at[MAX_WAKES];

static int
job_replay(cpl_txn *txn, wjob *j, bool *done)
{
	struct tjob *t = j->arg;
	(void)txn;
	*done = t->replay;
	return 0;
}

static int
job_run(cpl_txn *txn, wjob *j)
{
	struct tjob *t = j->arg;
	Copal__App app = COPAL__APP__INIT;
	pthread_mutex_lock(&mx);
	t->nrun++;
	pthread_mutex_unlock(&mx);
	if (t->block) {
		pthread_mutex_lock(&mx);
		blocked = true;
		pthread_cond_broadcast(&cv);
		while (!released)
			pthread_cond_wait(&cv, &mx);
		pthread_mutex_unlock(&mx);
	}
	if (t->fail_early)
		return t->fail_early;
	app.name = t->name;
	app.executable = "/bin/true";
	int rv = cpl_app_put(txn, &app, false);
	if (rv == 0 && t->bump) {
		uint64_t lease;
		if ((rv = cpl_lease_grant(txn, t->name, 60000, &lease)) == 0)
			rv = cpl_lease_release(txn, lease);
	}
	return rv ? rv : t->fail;
}

static int
job_after(cpl_txn *txn, wjob *j, int rv)
{
	struct tjob *t = j->arg;
	(void)txn;
	t->nafter++;
	t->run_rv = rv;
	return t->after_fail;
}

static void
job_reset(wjob *j)
{
	struct tjob *t = j->arg;
	t->nreset++;
}

static void
job_done(wjob *j, int rv)
{
	struct tjob *t = j->arg;
	t->done_rv = rv;
	pthread_mutex_lock(&mx);
	if (t->block_done) {
		done_blocked = true;
		pthread_cond_broadcast(&cv);
		while (!done_released)
			pthread_cond_wait(&cv, &mx);
	}
	t->ndone++;
	t->done_seq = ++ndone;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
}

static const wjob_ops ops = {
	.replay = job_replay,
	.run = job_run,
	.after = job_after,
	.reset = job_reset,
	.done = job_done,
};

static void
job_init(struct tjob *t, const char *prefix, int i)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s%d", prefix, i);
	t->j.ops = &ops;
	t->j.arg = t;
}

static void
reset(void)
{
	pthread_mutex_lock(&mx);
	ndone = 0;
	blocked = released = false;
	done_blocked = done_released = false;
	nwakes = 0;
	pthread_mutex_unlock(&mx);
}

// Waits until n jobs in all are done (or 30 s).
static void
wait_done(int n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&mx);
	while (ndone < n && pthread_cond_timedwait(&cv, &mx, &ts) == 0)
		;
	int got = ndone;
	pthread_mutex_unlock(&mx);
	if (got < n)
		TU_FAIL("only %d of %d jobs completed", got, n);
}

// Waits until the blocking job runs (the writer is inside a batch).
static void
wait_blocked(void)
{
	pthread_mutex_lock(&mx);
	while (!blocked)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
}

static void
release(void)
{
	pthread_mutex_lock(&mx);
	released = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
}

static void
on_wake(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mx);
	if (nwakes < MAX_WAKES)
		wake_at[nwakes] = ndone;
	nwakes++;
	pthread_mutex_unlock(&mx);
}

// Waits until a job's done blocks (s seconds at most); false if none did.
static bool
wait_done_blocked(int s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += s;
	pthread_mutex_lock(&mx);
	while (!done_blocked && pthread_cond_timedwait(&cv, &mx, &ts) == 0)
		;
	bool b = done_blocked;
	pthread_mutex_unlock(&mx);
	return b;
}

static void
release_done(void)
{
	pthread_mutex_lock(&mx);
	done_released = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
}

static bool app_exists(tu_env *e, const char *name);

// Waits until app name is committed (s seconds at most).
static bool
wait_app(tu_env *e, const char *name, int s)
{
	for (int i = 0; i < s * 100; i++) {
		if (app_exists(e, name))
			return true;
		usleep(10000);
	}
	return false;
}

// Waits until job t has run (s seconds at most).
static bool
wait_ran(struct tjob *t, int s)
{
	for (int i = 0; i < s * 100; i++) {
		pthread_mutex_lock(&mx);
		bool ran = t->nrun > 0;
		pthread_mutex_unlock(&mx);
		if (ran)
			return true;
		usleep(10000);
	}
	return false;
}

static bool
app_exists(tu_env *e, const char *name)
{
	Copal__App *a = NULL;
	int rv = tu_app_get(e, name, &a);
	if (a)
		copal__app__free_unpacked(a, NULL);
	if (rv != 0 && rv != CPL_ENOTFOUND)
		TU_FAIL("reading app %s: %s", name, cpl_strerror(rv));
	return rv == 0;
}

// ------------------------------------------------------------ submitters

struct submitter {
	writer *w;
	struct tjob *jobs;
	int n;
};

static void *
submit_main(void *arg)
{
	struct submitter *s = arg;
	for (int i = 0; i < s->n; i++)
		if (writer_submit(s->w, &s->jobs[i].j) != 0)
			abort();
	return NULL;
}

// Submits n jobs from NTHREADS threads and joins them.
static void
submit_threads(writer *w, struct tjob *jobs, int n)
{
	pthread_t th[NTHREADS];
	struct submitter sub[NTHREADS];
	int per = n / NTHREADS;
	for (int t = 0; t < NTHREADS; t++) {
		sub[t].w = w;
		sub[t].jobs = jobs + t * per;
		sub[t].n = t == NTHREADS - 1 ? n - t * per : per;
		assert_int_equal(pthread_create(&th[t], NULL, submit_main,
		    &sub[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
}

// ------------------------------------------------------------ tests

// Jobs from several threads: each runs and completes exactly once, and
// what each did is committed.
static void
test_threads_complete_once(void **state)
{
	tu_env *e = *state;
	enum { N = NTHREADS * PER_THREAD };
	static struct tjob jobs[N];
	writer *w;
	writer_stats st;
	reset();
	for (int i = 0; i < N; i++)
		job_init(&jobs[i], "t", i);
	TU_OK(writer_start(e->s, &w));
	submit_threads(w, jobs, N);
	wait_done(N);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].ndone, 1);
		assert_int_equal(jobs[i].done_rv, 0);
		assert_int_equal(jobs[i].nrun, 1);
		assert_int_equal(jobs[i].run_rv, 0);
		assert_true(app_exists(e, jobs[i].name));
	}
	assert_int_equal(ndone, N);
	assert_int_equal(st.applied, N);
	assert_int_equal(st.replayed, 0);
	assert_int_equal(st.failed, 0);
	assert_true(st.batches >= 1 && st.batches <= N);
}

// Jobs queued while the writer is busy with a batch all go into the next
// one: one commit for all of them.
static void
test_queued_together_one_commit(void **state)
{
	tu_env *e = *state;
	enum { N = 100 };
	static struct tjob jobs[N];
	struct tjob blocker;
	writer *w;
	writer_stats st;
	reset();
	job_init(&blocker, "blocker", 0);
	blocker.block = true;
	for (int i = 0; i < N; i++)
		job_init(&jobs[i], "g", i);
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &blocker.j));
	wait_blocked();
	submit_threads(w, jobs, N);
	release();
	wait_done(N + 1);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.batches, 2); // the blocker's, then all the rest
	assert_int_equal(st.applied, N + 1);
	assert_int_equal(blocker.ndone, 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].ndone, 1);
		assert_int_equal(jobs[i].done_rv, 0);
		assert_true(app_exists(e, jobs[i].name));
	}
}

// A job that fails is undone (its nested transaction), the others of its
// batch are committed; after sees each job's own result, and every job
// completes with the commit's result (0).
static void
test_failing_job_undone_alone(void **state)
{
	tu_env *e = *state;
	struct tjob blocker, a, bad, b;
	writer *w;
	writer_stats st;
	reset();
	job_init(&blocker, "blocker", 0);
	blocker.block = true;
	job_init(&a, "a", 0);
	job_init(&bad, "bad", 0);
	bad.fail = CPL_EBADSTATE;
	job_init(&b, "b", 0);
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &blocker.j));
	wait_blocked();
	TU_OK(writer_submit(w, &a.j));
	TU_OK(writer_submit(w, &bad.j));
	TU_OK(writer_submit(w, &b.j));
	release();
	wait_done(4);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.applied, 4);
	assert_int_equal(bad.nrun, 1);
	assert_int_equal(bad.run_rv, CPL_EBADSTATE);
	assert_int_equal(bad.ndone, 1);
	assert_int_equal(bad.done_rv, 0);
	assert_int_equal(a.run_rv, 0);
	assert_int_equal(b.run_rv, 0);
	assert_int_equal(a.done_rv, 0);
	assert_int_equal(b.done_rv, 0);
	assert_true(app_exists(e, "a0"));
	assert_true(app_exists(e, "b0"));
	assert_false(app_exists(e, "bad0"));
}

// Direct jobs (no nested transaction each): one that fails before it
// changed anything is undone alone, in the same run of the batch.
static void
test_direct_failing_early(void **state)
{
	tu_env *e = *state;
	struct tjob blocker, a, bad, b;
	writer *w;
	writer_stats st;
	reset();
	job_init(&blocker, "blocker", 3);
	blocker.block = true;
	job_init(&a, "a", 3);
	job_init(&bad, "bad", 3);
	job_init(&b, "b", 3);
	a.j.direct = bad.j.direct = b.j.direct = true;
	bad.fail_early = CPL_EBADSTATE;
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &blocker.j));
	wait_blocked();
	TU_OK(writer_submit(w, &a.j));
	TU_OK(writer_submit(w, &bad.j));
	TU_OK(writer_submit(w, &b.j));
	release();
	wait_done(4);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.redone, 0);
	assert_int_equal(st.applied, 4);
	assert_int_equal(a.nrun + bad.nrun + b.nrun, 3);
	assert_int_equal(a.nreset + bad.nreset + b.nreset, 0);
	assert_int_equal(bad.run_rv, CPL_EBADSTATE);
	assert_int_equal(bad.done_rv, 0);
	assert_int_equal(a.run_rv, 0);
	assert_int_equal(b.run_rv, 0);
	assert_true(app_exists(e, "a3"));
	assert_true(app_exists(e, "b3"));
	assert_false(app_exists(e, "bad3"));
}

// A direct job that fails after it wrote: the batch's transaction is
// given up and the batch runs again with every job nested (each job
// reset first), so that only the failed job is undone; a nested job
// beside them runs in both runs too.
static void
test_direct_failing_late_redone(void **state)
{
	tu_env *e = *state;
	struct tjob blocker, a, nest, bad, b;
	writer *w;
	writer_stats st;
	reset();
	job_init(&blocker, "blocker", 4);
	blocker.block = true;
	job_init(&a, "a", 4);
	job_init(&nest, "nest", 4);
	job_init(&bad, "bad", 4);
	job_init(&b, "b", 4);
	a.j.direct = bad.j.direct = b.j.direct = true;
	bad.fail = CPL_EBADSTATE;
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &blocker.j));
	wait_blocked();
	TU_OK(writer_submit(w, &a.j));
	TU_OK(writer_submit(w, &nest.j));
	TU_OK(writer_submit(w, &bad.j));
	TU_OK(writer_submit(w, &b.j));
	release();
	wait_done(5);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.redone, 1);
	assert_int_equal(st.applied, 5);
	// the first run stopped at bad; the second ran them all
	assert_int_equal(a.nrun, 2);
	assert_int_equal(nest.nrun, 2);
	assert_int_equal(bad.nrun, 2);
	assert_int_equal(b.nrun, 1);
	assert_int_equal(a.nreset, 1);
	assert_int_equal(b.nreset, 1);
	assert_int_equal(blocker.nreset, 0);
	assert_int_equal(a.nafter, 2);
	assert_int_equal(b.nafter, 1);
	assert_int_equal(bad.run_rv, CPL_EBADSTATE);
	assert_int_equal(a.ndone + nest.ndone + bad.ndone + b.ndone, 4);
	assert_int_equal(a.done_rv, 0);
	assert_int_equal(bad.done_rv, 0);
	assert_int_equal(b.done_rv, 0);
	assert_true(app_exists(e, "a4"));
	assert_true(app_exists(e, "nest4"));
	assert_true(app_exists(e, "b4"));
	assert_false(app_exists(e, "bad4"));
}

// A failure outside the nested transactions (after) loses the batch:
// nothing of it is committed and every job of it completes with the error.
// The batch before it stays committed.
static void
test_batch_lost(void **state)
{
	tu_env *e = *state;
	struct tjob blocker, a, bad, b;
	writer *w;
	writer_stats st;
	reset();
	job_init(&blocker, "blocker", 0);
	blocker.block = true;
	job_init(&a, "a", 1);
	job_init(&bad, "bad", 1);
	bad.after_fail = CPL_EIO;
	job_init(&b, "b", 1);
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &blocker.j));
	wait_blocked();
	TU_OK(writer_submit(w, &a.j));
	TU_OK(writer_submit(w, &bad.j));
	TU_OK(writer_submit(w, &b.j));
	release();
	wait_done(4);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.batches, 1);
	assert_int_equal(st.failed, 1);
	assert_int_equal(blocker.done_rv, 0);
	assert_true(app_exists(e, "blocker0"));
	assert_int_equal(a.ndone, 1);
	assert_int_equal(bad.ndone, 1);
	assert_int_equal(b.ndone, 1);
	assert_int_equal(a.done_rv, CPL_EIO);
	assert_int_equal(bad.done_rv, CPL_EIO);
	assert_int_equal(b.done_rv, CPL_EIO);
	assert_int_equal(b.nrun, 0); // the batch stopped at bad
	assert_false(app_exists(e, "a1"));
	assert_false(app_exists(e, "bad1"));
	assert_false(app_exists(e, "b1"));
}

// A job whose replay says it is done does not run and is completed.
static void
test_replay_skips_run(void **state)
{
	tu_env *e = *state;
	struct tjob r, a;
	writer *w;
	writer_stats st;
	reset();
	job_init(&r, "r", 0);
	r.replay = true;
	job_init(&a, "a", 2);
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &r.j));
	TU_OK(writer_submit(w, &a.j));
	wait_done(2);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(r.nrun, 0);
	assert_int_equal(r.nafter, 0);
	assert_int_equal(r.ndone, 1);
	assert_int_equal(r.done_rv, 0);
	assert_int_equal(a.ndone, 1);
	assert_int_equal(st.replayed, 1);
	assert_int_equal(st.applied, 1);
	assert_false(app_exists(e, "r0"));
	assert_true(app_exists(e, "a2"));
}

static void *
stop_main(void *arg)
{
	writer_stop(arg);
	return NULL;
}

// Stop while jobs are queued: they all run, commit and complete before
// the thread ends; a job submitted after is refused and never completed.
static void
test_stop_drains(void **state)
{
	tu_env *e = *state;
	enum { N = 100 };
	static struct tjob jobs[N];
	struct tjob blocker, late;
	writer *w;
	writer_stats st;
	pthread_t th;
	reset();
	job_init(&blocker, "blocker", 2);
	blocker.block = true;
	for (int i = 0; i < N; i++)
		job_init(&jobs[i], "s", i);
	job_init(&late, "late", 0);
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &blocker.j));
	wait_blocked();
	submit_threads(w, jobs, N);
	assert_int_equal(pthread_create(&th, NULL, stop_main, w), 0);
	usleep(50000); // let stop be asked while the jobs wait
	release();
	pthread_join(th, NULL);
	assert_int_equal(ndone, N + 1);
	assert_int_equal(writer_submit(w, &late.j), CPL_ESHUTDOWN);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.applied, N + 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].ndone, 1);
		assert_int_equal(jobs[i].done_rv, 0);
		assert_true(app_exists(e, jobs[i].name));
	}
	assert_int_equal(late.nrun, 0);
	assert_int_equal(late.ndone, 0);
	assert_false(app_exists(e, "late0"));
}

// Starts a writer (with on_wake as its claimable hook if wake) whose
// first batch is blocker alone and whose second is the n jobs, queued
// while blocker runs; returns once the completer is held in the first
// answer of that second batch (jobs[0]'s done blocks until
// release_done).
static writer *
hold_first_answer(tu_env *e, struct tjob *blocker, struct tjob *jobs, int n,
    bool wake)
{
	writer *w;
	blocker->block = true;
	jobs[0].block_done = true;
	TU_OK(writer_start(e->s, &w));
	if (wake)
		writer_on_claimable(w, on_wake, NULL);
	TU_OK(writer_submit(w, &blocker->j));
	wait_blocked();
	for (int i = 0; i < n; i++) // one batch of n, in this order
		TU_OK(writer_submit(w, &jobs[i].j));
	release();
	if (!wait_done_blocked(30))
		TU_FAIL("the first job's done was never called");
	return w;
}

// The jobs of a large batch are answered off the writer: while one of
// them is still being answered, the next batch runs and is committed. Its
// job is answered only after every job of the first batch, in order.
static void
test_answered_while_next_runs(void **state)
{
	tu_env *e = *state;
	enum { N = WRITER_HANDOFF_MIN * 2 };
	static struct tjob jobs[N];
	struct tjob blocker, next;
	writer *w;
	writer_stats st;
	reset();
	job_init(&blocker, "blocker", 3);
	for (int i = 0; i < N; i++)
		job_init(&jobs[i], "c", i);
	job_init(&next, "next", 0);
	w = hold_first_answer(e, &blocker, jobs, N, false);
	TU_OK(writer_submit(w, &next.j));
	// the writer is not held up by the answer still being given
	bool ran = wait_ran(&next, 30);
	bool committed = ran && wait_app(e, "next0", 30);
	pthread_mutex_lock(&mx);
	int next_done = next.ndone;
	pthread_mutex_unlock(&mx);
	release_done();
	wait_done(N + 2);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_true(ran);
	assert_true(committed);
	assert_int_equal(next_done, 0);
	// the blocker's batch, then the N, in order, then next
	assert_int_equal(blocker.done_seq, 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].ndone, 1);
		assert_int_equal(jobs[i].done_seq, 2 + i);
	}
	assert_int_equal(next.done_seq, N + 2);
	assert_int_equal(st.batches, 3);
	assert_int_equal(st.applied, N + 2);
}

// A claim held in a batch answered by the completer hears of what a
// later job of the writer made claimable: the wake comes after its
// answer (it is in the park only then), not only before it.
static void
test_wake_after_answer(void **state)
{
	tu_env *e = *state;
	enum { N = WRITER_HANDOFF_MIN * 2 };
	static struct tjob jobs[N];
	struct tjob blocker, claim, bump;
	writer *w;
	reset();
	job_init(&blocker, "blocker", 4);
	for (int i = 0; i < N; i++)
		job_init(&jobs[i], "w", i);
	job_init(&claim, "claim", 0);
	job_init(&bump, "bump", 0);
	bump.bump = true;
	w = hold_first_answer(e, &blocker, jobs, N, true);
	// the completer is held in the first answer of the batch of N; the
	// claim, then a job that changes what claims find
	TU_OK(writer_submit(w, &claim.j));
	TU_OK(writer_submit(w, &bump.j));
	bool ran = wait_ran(&bump, 30) && wait_app(e, "bump0", 30);
	usleep(20000); // the writer looks at the sequence after its commit
	release_done();
	wait_done(N + 3);
	writer_stop(w);
	writer_free(w);
	assert_true(ran);
	assert_int_equal(claim.ndone, 1);
	assert_int_equal(bump.ndone, 1);
	// some wake came once the claim had been answered
	bool after = false;
	for (int i = 0; i < nwakes && i < MAX_WAKES; i++)
		if (wake_at[i] >= claim.done_seq)
			after = true;
	if (!after)
		TU_FAIL("%d wake(s), none after the claim's answer (done #%d)",
		    nwakes, claim.done_seq);
}

// A lone launcher (whose next request comes only after its answer) and a
// few clients beside it never make a batch wait for more jobs.
static void
test_few_sources_not_held(void **state)
{
	tu_env *e = *state;
	enum { N = 60 };
	static struct tjob jobs[N];
	writer *w;
	writer_stats st;
	reset();
	TU_OK(writer_start(e->s, &w));
	for (int i = 0; i < N; i++) {
		job_init(&jobs[i], "few", i);
		// mostly the launcher, now and then one of the others
		jobs[i].j.src = i % 4 ? 7 : 8 + (uint32_t)(i / 4) %
		    (WRITER_GATHER_MIN_SOURCES - 2);
		TU_OK(writer_submit(w, &jobs[i].j));
		wait_done(i + 1);
	}
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.applied, N);
	assert_int_equal(st.batches, N);
	assert_int_equal(st.gathered, 0);
}

// Once jobs of several sources were taken, a batch waits for more even
// when the batch before it held a single job: the sources are counted
// over a window, not from the last batch alone.
static void
test_sources_counted_over_window(void **state)
{
	tu_env *e = *state;
	enum { N = WRITER_GATHER_MIN_SOURCES };
	static struct tjob jobs[N];
	struct tjob blocker, one, two;
	writer *w;
	writer_stats st;
	reset();
	job_init(&blocker, "blocker", 5);
	blocker.block = true;
	blocker.j.src = 100;
	for (int i = 0; i < N; i++) {
		job_init(&jobs[i], "s", i);
		jobs[i].j.src = 200 + (uint32_t)i; // launchers
	}
	job_init(&one, "one", 0);
	one.j.src = 200;
	job_init(&two, "two", 0);
	two.j.src = 200;
	TU_OK(writer_start(e->s, &w));
	TU_OK(writer_submit(w, &blocker.j)); // one source seen: no wait
	wait_blocked();
	for (int i = 0; i < N; i++) // one batch of N sources
		TU_OK(writer_submit(w, &jobs[i].j));
	release();
	wait_done(N + 1);
	TU_OK(writer_submit(w, &one.j)); // a batch of one: waits
	wait_done(N + 2);
	TU_OK(writer_submit(w, &two.j)); // after a batch of one: waits too
	wait_done(N + 3);
	writer_stop(w);
	writer_stats_get(w, &st);
	writer_free(w);
	assert_int_equal(st.applied, N + 3);
	assert_int_equal(st.batches, 4);
	assert_int_equal(st.gathered, 2);
	assert_int_equal(one.done_rv, 0);
	assert_int_equal(two.done_rv, 0);
	assert_true(app_exists(e, "two0"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_threads_complete_once,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_few_sources_not_held,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_sources_counted_over_window,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_queued_together_one_commit,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_failing_job_undone_alone,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_direct_failing_early,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_direct_failing_late_redone,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_batch_lost,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_replay_skips_run,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stop_drains,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_answered_while_next_runs,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_wake_after_answer,
		    tu_setup_bare, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
