// Batch job records (ids, times, allowed state moves, persistence) and the
// backlog walk (footprint in node units, workflow filter, tasks that no
// queue of a policy can run).
#include "copal/testing/util.h"

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
		cmocka_unit_test_setup_teardown(test_backlog, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_backlog_unfit_ids_bounded,
		    tu_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
