// The service's sizing (sched/src/size.c): what a backlog needs against
// the jobs queued or running, the queue and nodes of the next job, the
// service's maximum of jobs, full queues, and stale queued jobs.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "copal/sched.h"

#define BJ(x) COPAL__BATCH_JOB_STATE__BJ_##x

// Two queues: "small" 1-4 nodes, up to 2 jobs; "big" 8-64 nodes, 1 job.
static void
policy(cpl_conf *c)
{
	cpl_conf_defaults(c, NULL);
	c->service_max_queued_jobs = 3;
	c->nqueues = 2;
	c->queues[0] = (cpl_queue_policy){ .name = "small", .min_nodes = 1,
		.max_nodes = 4, .min_minutes = 1, .max_minutes = 30,
		.max_queued = 2 };
	c->queues[1] = (cpl_queue_policy){ .name = "big", .min_nodes = 8,
		.max_nodes = 64, .min_minutes = 1, .max_minutes = 120,
		.max_queued = 1 };
}

static Copal__BatchJob
job(const char *queue, uint32_t nodes, Copal__BatchJobState st)
{
	Copal__BatchJob j = COPAL__BATCH_JOB__INIT;
	j.queue = (char *)queue;
	j.nodes = nodes;
	j.state = st;
	return j;
}

static void
test_count(void **state)
{
	(void)state;
	cpl_conf c;
	policy(&c);
	Copal__BatchJob v[] = { job("small", 2, BJ(QUEUED)),
		job("big", 8, BJ(RUNNING)), job("small", 1, BJ(SUBMITTING)),
		job("small", 4, BJ(FINISHED)), job("other", 3, BJ(QUEUED)),
		job("big", 16, BJ(SUBMIT_FAILED)) };
	Copal__BatchJob *p[6];
	for (size_t i = 0; i < 6; i++)
		p[i] = &v[i];
	Copal__BatchJobListReply l = COPAL__BATCH_JOB_LIST_REPLY__INIT;
	l.jobs = p;
	l.n_jobs = 6;
	sched_load ld;
	// 2.5 nodes of work round up to 3
	sched_load_count(&c, 2 * CPL_NODE_UNITS + CPL_NODE_UNITS / 2, &l, &ld);
	assert_int_equal(ld.need, 3);
	assert_int_equal(ld.have, 2 + 8 + 1 + 3);
	assert_int_equal(ld.njobs, 4);
	assert_int_equal(ld.active[0], 2);
	assert_int_equal(ld.active[1], 1);
	sched_load_count(&c, 0, &l, &ld);
	assert_int_equal(ld.need, 0);
}

static void
test_next(void **state)
{
	(void)state;
	cpl_conf c;
	const cpl_queue_policy *q = NULL;
	uint32_t nodes = 0;
	policy(&c);
	sched_load ld = { .need = 3 };
	// small tasks: the first queue, the nodes missing
	assert_int_equal(sched_size_next(&c, &ld, 1, &q, &nodes),
	    SCHED_SIZE_SUBMIT);
	assert_string_equal(q->name, "small");
	assert_int_equal(nodes, 3);
	// more than the queue takes: its maximum
	ld.need = 10;
	assert_int_equal(sched_size_next(&c, &ld, 1, &q, &nodes),
	    SCHED_SIZE_SUBMIT);
	assert_string_equal(q->name, "small");
	assert_int_equal(nodes, 4);
	sched_load_add(&c, &ld, q, nodes);
	assert_int_equal(ld.have, 4);
	assert_int_equal(ld.njobs, 1);
	assert_int_equal(ld.active[0], 1);
	// a task of 6 nodes fits only "big", whose minimum is 8
	ld = (sched_load){ .need = 6 };
	assert_int_equal(sched_size_next(&c, &ld, 6, &q, &nodes),
	    SCHED_SIZE_SUBMIT);
	assert_string_equal(q->name, "big");
	assert_int_equal(nodes, 8);
	// a job no smaller than the largest task, when the queue allows
	ld = (sched_load){ .need = 20, .have = 18 };
	assert_int_equal(sched_size_next(&c, &ld, 12, &q, &nodes),
	    SCHED_SIZE_SUBMIT);
	assert_string_equal(q->name, "big");
	assert_int_equal(nodes, 12);
	// the largest task fits no queue: the first with room, at its maximum
	ld = (sched_load){ .need = 100 };
	ld.active[1] = 1;
	assert_int_equal(sched_size_next(&c, &ld, 100, &q, &nodes),
	    SCHED_SIZE_SUBMIT);
	assert_string_equal(q->name, "small");
	assert_int_equal(nodes, 4);
}

static void
test_done_full(void **state)
{
	(void)state;
	cpl_conf c;
	const cpl_queue_policy *q = NULL;
	uint32_t nodes = 0;
	policy(&c);
	// enough nodes
	sched_load ld = { .need = 4, .have = 4 };
	assert_int_equal(sched_size_next(&c, &ld, 1, &q, &nodes),
	    SCHED_SIZE_DONE);
	// the service's maximum of jobs
	ld = (sched_load){ .need = 40, .have = 3, .njobs = 3 };
	assert_int_equal(sched_size_next(&c, &ld, 1, &q, &nodes),
	    SCHED_SIZE_DONE);
	c.service_max_queued_jobs = 0;
	ld = (sched_load){ .need = 1 };
	assert_int_equal(sched_size_next(&c, &ld, 1, &q, &nodes),
	    SCHED_SIZE_DONE);
	// every queue at its maximum of jobs
	c.service_max_queued_jobs = 10;
	ld = (sched_load){ .need = 40, .have = 3, .njobs = 3 };
	ld.active[0] = 2;
	ld.active[1] = 1;
	assert_int_equal(sched_size_next(&c, &ld, 1, &q, &nodes),
	    SCHED_SIZE_FULL);
	// submitting fills the queues one by one
	ld = (sched_load){ .need = 1000 };
	size_t n = 0;
	while (sched_size_next(&c, &ld, 1, &q, &nodes) == SCHED_SIZE_SUBMIT) {
		sched_load_add(&c, &ld, q, nodes);
		n++;
	}
	assert_int_equal(n, 3);
	assert_int_equal(ld.have, 4 + 4 + 64);
	assert_int_equal(sched_size_next(&c, &ld, 1, &q, &nodes),
	    SCHED_SIZE_FULL);
}

static void
test_stale(void **state)
{
	(void)state;
	cpl_conf c;
	policy(&c);
	Copal__BatchJob j = job("small", 1, BJ(QUEUED));
	j.origin = (char *)"service";
	j.submitted_us = 1000000000u;
	uint64_t min = 60000000u;
	// never, without a limit
	c.service_max_wait_minutes = 0;
	assert_false(sched_size_stale(&c, &j, j.submitted_us + 1000 * min));
	c.service_max_wait_minutes = 5;
	assert_false(sched_size_stale(&c, &j, j.submitted_us + 5 * min - 1));
	assert_true(sched_size_stale(&c, &j, j.submitted_us + 5 * min));
	// only queued jobs of the service
	j.state = BJ(RUNNING);
	assert_false(sched_size_stale(&c, &j, j.submitted_us + 6 * min));
	j.state = BJ(QUEUED);
	j.origin = (char *)"submit-launch";
	assert_false(sched_size_stale(&c, &j, j.submitted_us + 6 * min));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_done_full),
		cmocka_unit_test(test_stale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
