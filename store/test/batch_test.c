// Batch job records (ids, times, allowed state moves, persistence) and the
// backlog walk (footprint in node units, workflow filter, tasks that no
// queue of a policy can run).
#include "copal/testing/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct bj_arg {
	const Copal__BatchJob *job;
	const cpl_bjob_change *upd;
	Copal__BatchJob *out;
} bj_arg;

static int
add_cb(cpl_txn *txn, void *arg)
{
	bj_arg *a = arg;
	return cpl_bjob_add(txn, a->job, &a->out);
}

static int
upd_cb(cpl_txn *txn, void *arg)
{
	bj_arg *a = arg;
	return cpl_bjob_update(txn, a->upd, &a->out);
}

static Copal__BatchJob
job_of(uint32_t nodes, uint32_t minutes)
{
	Copal__BatchJob j = COPAL__BATCH_JOB__INIT;
	j.scheduler = "slurm";
	j.project = "chem";
	j.queue = "debug";
	j.nodes = nodes;
	j.wall_minutes = minutes;
	j.job_mode = "serial";
	j.origin = "test";
	return j;
}

static uint64_t
add(tu_env *e, uint32_t nodes, uint32_t minutes)
{
	Copal__BatchJob j = job_of(nodes, minutes);
	bj_arg a = { &j, NULL, NULL };
	TU_OK(cpl_store_write(e->s, add_cb, &a));
	assert_non_null(a.out);
	assert_int_equal(a.out->state, COPAL__BATCH_JOB_STATE__BJ_SUBMITTING);
	assert_int_equal(a.out->nodes, nodes);
	assert_true(a.out->submitted_us >= TU_T0);
	uint64_t id = a.out->id;
	copal__batch_job__free_unpacked(a.out, NULL);
	return id;
}

static int
update(tu_env *e, uint64_t id, Copal__BatchJobState st, const char *sid,
    Copal__BatchJob **out)
{
	cpl_bjob_change u = { id, st, sid, NULL, NULL, NULL, NULL };
	bj_arg a = { NULL, &u, NULL };
	int rv = cpl_store_write(e->s, upd_cb, &a);
	if (out)
		*out = a.out;
	else if (a.out)
		copal__batch_job__free_unpacked(a.out, NULL);
	return rv;
}

static void
test_bjob_ids_and_moves(void **state)
{
	tu_env *e = *state;
	uint64_t a = add(e, 2, 30), b = add(e, 1, 5);
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
	Copal__BatchJob *j = NULL;
	tu_advance_ms(e, 1000);
	TU_OK(update(e, a, COPAL__BATCH_JOB_STATE__BJ_QUEUED, "4711", &j));
	assert_string_equal(j->scheduler_id, "4711");
	assert_string_equal(j->project, "chem");
	assert_int_equal(j->started_us, 0);
	copal__batch_job__free_unpacked(j, NULL);
	tu_advance_ms(e, 1000);
	TU_OK(update(e, a, COPAL__BATCH_JOB_STATE__BJ_RUNNING, NULL, &j));
	assert_string_equal(j->scheduler_id, "4711"); // kept
	assert_true(j->started_us > j->submitted_us);
	copal__batch_job__free_unpacked(j, NULL);
	// back to QUEUED or to SUBMIT_FAILED is refused; nothing changes
	TU_ERR(update(e, a, COPAL__BATCH_JOB_STATE__BJ_QUEUED, NULL, NULL),
	    CPL_EBADSTATE);
	TU_ERR(update(e, a, COPAL__BATCH_JOB_STATE__BJ_SUBMIT_FAILED, NULL,
	           NULL), CPL_EBADSTATE);
	TU_OK(update(e, a, COPAL__BATCH_JOB_STATE__BJ_FINISHED, NULL, &j));
	assert_true(j->ended_us >= j->started_us);
	copal__batch_job__free_unpacked(j, NULL);
	// final states stay
	TU_ERR(update(e, a, COPAL__BATCH_JOB_STATE__BJ_RUNNING, NULL, NULL),
	    CPL_EBADSTATE);
	TU_OK(update(e, b, COPAL__BATCH_JOB_STATE__BJ_SUBMIT_FAILED, NULL,
	    NULL));
	TU_ERR(update(e, b, COPAL__BATCH_JOB_STATE__BJ_QUEUED, NULL, NULL),
	    CPL_EBADSTATE);
	TU_ERR(update(e, 99, COPAL__BATCH_JOB_STATE__BJ_QUEUED, NULL, NULL),
	    CPL_ENOTFOUND);
	TU_ERR(update(e, b, COPAL__BATCH_JOB_STATE__BJ_UNSPECIFIED, NULL, NULL),
	    CPL_EINVAL);
	// ids keep growing after a reopen; records survive it
	TU_OK(tu_reopen(e));
	assert_int_equal(add(e, 1, 1), 3);
}

static void
test_bjob_bad_records(void **state)
{
	tu_env *e = *state;
	Copal__BatchJob j = job_of(0, 10);
	bj_arg a = { &j, NULL, NULL };
	TU_ERR(cpl_store_write(e->s, add_cb, &a), CPL_EINVAL);
	j = job_of(1, 0);
	TU_ERR(cpl_store_write(e->s, add_cb, &a), CPL_EINVAL);
	j = job_of(70000, 10);
	TU_ERR(cpl_store_write(e->s, add_cb, &a), CPL_EINVAL);
	j = job_of(1, 10);
	char big[300];
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	j.queue = big;
	TU_ERR(cpl_store_write(e->s, add_cb, &a), CPL_EINVAL);
	// nothing was recorded: the next id is still 1
	assert_int_equal(add(e, 1, 1), 1);
}

typedef struct list_arg {
	uint64_t ids[8];
	size_t n;
} list_arg;

static int
list_fn(const Copal__BatchJob *j, void *arg)
{
	list_arg *l = arg;
	if (l->n < 8)
		l->ids[l->n] = j->id;
	l->n++;
	return 0;
}

static int
list_cb(cpl_txn *txn, void *arg)
{
	return cpl_bjob_list(txn, list_fn, arg);
}

static void
test_bjob_list(void **state)
{
	tu_env *e = *state;
	for (int i = 0; i < 5; i++)
		add(e, 1, 1);
	list_arg l = { { 0 }, 0 };
	TU_OK(cpl_store_read(e->s, list_cb, &l));
	assert_int_equal(l.n, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(l.ids[i], i + 1);
}

typedef struct bl_arg {
	const char *wf;
	const cpl_queue_limit *lim;
	size_t nlim;
	cpl_backlog b;
	uint64_t ids[4];
} bl_arg;

static int
bl_cb(cpl_txn *txn, void *arg)
{
	bl_arg *a = arg;
	a->b.unfit_ids = a->ids;
	a->b.max_unfit = 4;
	return cpl_backlog_get(txn, a->wf, a->lim, a->nlim, &a->b);
}

static uint64_t
task_r(tu_env *e, const char *wf, uint32_t nodes, uint32_t packing,
    uint32_t gpus, uint32_t wall)
{
	tu_spec sp;
	tu_spec_init(&sp, "t", wf, "app");
	sp.res.num_nodes = nodes;
	sp.res.node_packing_count = packing;
	sp.res.gpus_per_rank = gpus;
	sp.res.wall_time_minutes = wall;
	return tu_task_spec(e, &sp);
}

static void
test_backlog(void **state)
{
	tu_env *e = *state;
	// 8 tasks packed 4 to a node = 2 nodes; one 3-node task; one task
	// with 2 GPUs; one 2-hour task; one 9-node task
	for (int i = 0; i < 8; i++)
		task_r(e, "a", 1, 4, 0, 10);
	uint64_t three = task_r(e, "b", 3, 1, 0, 10);
	uint64_t gpu = task_r(e, "a", 1, 1, 2, 10);
	uint64_t longer = task_r(e, "b", 1, 1, 0, 120);
	uint64_t nine = task_r(e, "a", 9, 1, 0, 10);
	// a task that is not runnable (awaiting its parent) does not count
	tu_spec sp;
	tu_spec_init(&sp, "child", "a", "app");
	tu_spec_parent(&sp, three);
	uint64_t child = tu_task_spec(e, &sp);
	TU_STATE(e, child, CPL_AWAITING_PARENTS);

	bl_arg a = { NULL, NULL, 0, { 0 }, { 0 } };
	TU_OK(cpl_store_read(e->s, bl_cb, &a));
	assert_int_equal(a.b.tasks, 12);
	assert_int_equal(a.b.unfit, 0);
	assert_int_equal(a.b.max_nodes, 9);
	assert_int_equal(a.b.max_minutes, 120);
	// 8 * 1/4 + 3 + 1 + 1 + 9 nodes
	TU_EQ_U64(a.b.node_units, 16ull * CPL_NODE_UNITS);

	// a policy of one queue: 4 nodes, no GPUs, 60 minutes
	cpl_queue_limit one = { 4, 0, 60 };
	a = (bl_arg){ NULL, &one, 1, { 0 }, { 0 } };
	TU_OK(cpl_store_read(e->s, bl_cb, &a));
	assert_int_equal(a.b.unfit, 3);
	assert_int_equal(a.b.nunfit_ids, 3);
	assert_int_equal(a.ids[0], gpu);
	assert_int_equal(a.ids[1], longer);
	assert_int_equal(a.ids[2], nine);
	assert_int_equal(a.b.tasks, 9);
	assert_int_equal(a.b.max_nodes, 3);
	TU_EQ_U64(a.b.node_units, 5ull * CPL_NODE_UNITS);

	// a second queue with GPUs and long wall time lets two of them in
	cpl_queue_limit two[2] = { { 4, 0, 60 }, { 2, 4, 720 } };
	a = (bl_arg){ NULL, two, 2, { 0 }, { 0 } };
	TU_OK(cpl_store_read(e->s, bl_cb, &a));
	assert_int_equal(a.b.unfit, 1);
	assert_int_equal(a.ids[0], nine);

	// workflow filter
	a = (bl_arg){ "b", NULL, 0, { 0 }, { 0 } };
	TU_OK(cpl_store_read(e->s, bl_cb, &a));
	assert_int_equal(a.b.tasks, 2);
	assert_int_equal(a.b.max_nodes, 3);
	a = (bl_arg){ "nope", NULL, 0, { 0 }, { 0 } };
	TU_OK(cpl_store_read(e->s, bl_cb, &a));
	assert_int_equal(a.b.tasks, 0);

	// a held task leaves the backlog
	TU_OK(tu_kill(e, nine, NULL));
	a = (bl_arg){ NULL, &one, 1, { 0 }, { 0 } };
	TU_OK(cpl_store_read(e->s, bl_cb, &a));
	assert_int_equal(a.b.unfit, 2);
}

// More unfit tasks than ids asked for: the smallest ids are kept, sorted,
// whatever the priority order of the run queue.
static void
test_backlog_unfit_ids_bounded(void **state)
{
	tu_env *e = *state;
	uint64_t ids[10];
	for (int i = 0; i < 10; i++) {
		tu_spec sp;
		tu_spec_init(&sp, "t", "w", "app");
		sp.res.num_nodes = 5;
		sp.spec.priority = i; // later tasks come first in the queue
		ids[i] = tu_task_spec(e, &sp);
	}
	cpl_queue_limit one = { 4, 0, 0 };
	bl_arg a = { NULL, &one, 1, { 0 }, { 0 } };
	TU_OK(cpl_store_read(e->s, bl_cb, &a));
	assert_int_equal(a.b.unfit, 10);
	assert_int_equal(a.b.nunfit_ids, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(a.ids[i], ids[i]);
}

// ------------------------------------------------------------ tasks by job

struct grant_arg {
	uint64_t bjob;
	const char *sid;
	uint64_t lease;
};

static int
grant_cb(cpl_txn *txn, void *arg)
{
	struct grant_arg *g = arg;
	return cpl_lease_grant_job(txn, "launcher in a job", 3600000u, g->bjob,
	    g->sid, &g->lease);
}

struct counts_arg {
	uint64_t bjob, ran, running, failed;
	uint64_t lease;
	uint64_t got_bjob;
	char sid[128];
	int lease_rv;
};

static int
counts_cb(cpl_txn *txn, void *arg)
{
	struct counts_arg *c = arg;
	c->lease_rv = cpl_lease_batch_job(txn, c->lease, &c->got_bjob, c->sid,
	    sizeof(c->sid));
	return cpl_bjob_counts(txn, c->bjob, &c->ran, &c->running, &c->failed);
}

static struct counts_arg
counts(tu_env *e, uint64_t bjob, uint64_t lease)
{
	struct counts_arg c;
	memset(&c, 0, sizeof(c));
	c.bjob = bjob;
	c.lease = lease;
	TU_OK(cpl_store_read(e->s, counts_cb, &c));
	return c;
}

struct end_arg {
	uint64_t bjob, nl, nt;
};

static int
end_cb(cpl_txn *txn, void *arg)
{
	struct end_arg *a = arg;
	return cpl_lease_end_bjob(txn, a->bjob, "batch job gone", &a->nl, &a->nt);
}

static size_t
in_job(tu_env *e, uint64_t bjob, uint64_t *ids, size_t max)
{
	cpl_filter f;
	memset(&f, 0, sizeof(f));
	f.batch_job = bjob;
	tu_ids *out = calloc(1, sizeof(*out));
	TU_OK(tu_query(e, &f, 0, 0, out, NULL));
	size_t n = out->n < max ? out->n : max;
	memcpy(ids, out->id, n * sizeof(uint64_t));
	size_t all = out->n;
	free(out);
	return all;
}

// A lease taken in a batch job records every task it moves to RUNNING
// under the job: the index (ls --batch-job), the counters (ls queues);
// a lease of a launcher started by hand records nothing.
static void
test_tasks_by_batch_job(void **state)
{
	tu_env *e = *state;
	uint64_t bj = add(e, 1, 10);
	struct grant_arg g = { bj, "4242", 0 }, h = { 0, NULL, 0 };
	TU_OK(cpl_store_write(e->s, grant_cb, &g));
	TU_OK(cpl_store_write(e->s, grant_cb, &h));
	uint64_t a = tu_task(e, "a", "wa", 0);
	tu_spec sp;
	tu_spec_init(&sp, "b", "wb", "app");
	sp.spec.auto_timeout_retry = true;
	sp.spec.max_retries = 3;
	uint64_t b = tu_task_spec(e, &sp);
	uint64_t c = tu_task(e, "c", "wc", 0);
	uint64_t d = tu_task(e, "d", "wd", 0);
	tu_finish(e, g.lease, "wa", a);
	uint32_t at = tu_claim_task(e, g.lease, "wb", b);
	tu_run_to(e, b, g.lease, at, CPL_RUNNING);
	uint32_t ct = tu_claim_task(e, g.lease, "wc", c);
	tu_run_to(e, c, g.lease, ct, CPL_RUNNING);
	TU_OK(tu_report_full(e, c, g.lease, ct, CPL_RUN_ERROR, 2, "boom"));
	tu_finish(e, h.lease, "wd", d); // by hand
	struct counts_arg n = counts(e, bj, g.lease);
	assert_int_equal(n.ran, 3);
	assert_int_equal(n.running, 1);
	assert_int_equal(n.failed, 1);
	// (x, below, makes it 4)
	TU_EQ_U64(n.got_bjob, bj);
	assert_string_equal(n.sid, "4242");
	assert_int_equal(counts(e, bj, h.lease).lease_rv, CPL_ENOTFOUND);
	uint64_t ids[8];
	assert_int_equal(in_job(e, bj, ids, 8), 3);
	TU_EQ_U64(ids[0], a);
	TU_EQ_U64(ids[1], b);
	TU_EQ_U64(ids[2], c);
	assert_int_equal(in_job(e, bj + 1, ids, 8), 0);
	// a deleted task drops out of the listing
	uint64_t x = tu_task(e, "x", "wx", 0);
	tu_finish(e, g.lease, "wx", x);
	assert_int_equal(in_job(e, bj, ids, 8), 4);
	TU_OK(tu_delete(e, x));
	assert_int_equal(in_job(e, bj, ids, 8), 3);
	// filters combine: the RUNNING one
	cpl_filter f;
	memset(&f, 0, sizeof(f));
	f.batch_job = bj;
	f.states = 1u << CPL_RUNNING;
	tu_ids *out = calloc(1, sizeof(*out));
	TU_OK(tu_query(e, &f, 0, 0, out, NULL));
	assert_int_equal(out->n, 1);
	TU_EQ_U64(out->id[0], b);
	free(out);

	// the job is gone: its lease ends, b times out and is retried
	struct end_arg ea = { bj, 0, 0 };
	TU_OK(cpl_store_write(e->s, end_cb, &ea));
	TU_EQ_U64(ea.nl, 1);
	TU_EQ_U64(ea.nt, 1);
	cpl_task t = tu_task_get(e, b);
	assert_int_equal(t.state, CPL_RESTART_READY);
	n = counts(e, bj, g.lease);
	assert_int_equal(n.ran, 4); // x's run stays counted
	assert_int_equal(n.running, 0);
	assert_int_equal(n.failed, 2); // c's error, b's timeout
	tu_evs *ev = calloc(1, sizeof(*ev));
	TU_OK(tu_history(e, b, ev));
	bool said = false;
	for (size_t i = 0; i < ev->n; i++)
		said |= ev->e[i].ev.to == CPL_RUN_TIMEOUT &&
		    strcmp(ev->e[i].msg, "batch job gone") == 0;
	assert_true(said);
	free(ev);
	// the lease by hand lives on; nothing else to end
	ea = (struct end_arg){ bj, 0, 0 };
	TU_OK(cpl_store_write(e->s, end_cb, &ea));
	TU_EQ_U64(ea.nl, 0);
	cpl_lease l;
	TU_OK(tu_lease_get(e, h.lease, &l));
	// bad input
	ea = (struct end_arg){ 0, 0, 0 };
	assert_int_equal(cpl_store_write(e->s, end_cb, &ea), CPL_EINVAL);
	char longid[200];
	memset(longid, '9', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	struct grant_arg bad = { bj, longid, 0 };
	assert_int_equal(cpl_store_write(e->s, grant_cb, &bad), CPL_EINVAL);
}

// A fast-failure relaunch is an event of its own: RUNNING -> RUNNING, the
// state and the job's counters stay.
static int
restart_cb(cpl_txn *txn, void *arg)
{
	return cpl_task_report_restart(txn, arg);
}

static void
test_restart_event(void **state)
{
	tu_env *e = *state;
	uint64_t bj = add(e, 1, 10);
	struct grant_arg g = { bj, NULL, 0 };
	TU_OK(cpl_store_write(e->s, grant_cb, &g));
	uint64_t a = tu_task(e, "a", "wa", 0);
	uint32_t at = tu_claim_task(e, g.lease, "wa", a);
	cpl_report r = { a, g.lease, at, CPL_RUNNING, 9, "again", "n1/0", false, 0 };
	// not yet RUNNING
	assert_int_equal(cpl_store_write(e->s, restart_cb, &r), CPL_EBADSTATE);
	tu_run_to(e, a, g.lease, at, CPL_RUNNING);
	size_t n0 = tu_history_len(e, a);
	TU_OK(cpl_store_write(e->s, restart_cb, &r));
	assert_int_equal(tu_history_len(e, a), n0 + 1);
	assert_int_equal(tu_task_get(e, a).state, CPL_RUNNING);
	struct counts_arg n = counts(e, bj, g.lease);
	assert_int_equal(n.ran, 1);
	assert_int_equal(n.running, 1);
	// stale attempt, another state
	r.attempt = at + 1;
	assert_int_equal(cpl_store_write(e->s, restart_cb, &r), CPL_ESTALE);
	r.attempt = at;
	r.to = CPL_RUN_DONE;
	assert_int_equal(cpl_store_write(e->s, restart_cb, &r), CPL_EBADSTATE);
	assert_int_equal(tu_history_len(e, a), n0 + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bjob_ids_and_moves,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_bjob_bad_records,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_bjob_list, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_tasks_by_batch_job,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_restart_event, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_backlog, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_backlog_unfit_ids_bounded,
		    tu_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
