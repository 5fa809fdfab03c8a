// Concurrency: 16 threads, each with its own client and lease, loop for a
// few seconds creating tasks in their own workflow, querying and counting
// it (read-your-writes: a create's reply comes after its commit), and
// claiming tasks from any workflow (so launchers compete) that they run to
// JOB_FINISHED in one report batch. Afterwards every count must add up: no
// task claimed twice, no id handed out twice, every claimed task finished,
// every unclaimed one READY, and the history log holds exactly the events
// those transitions make. No request may fail.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/broker.h"

#define NTHREADS 16
#define RUN_MS 3000
#define BATCH 10
#define CLAIM_MAX 6

struct worker {
	int idx;
	const bh_broker *b;
	pthread_t th;
	uint64_t deadline_ms;
	// results
	uint64_t created, claimed, finished, queries, counts, loops;
	uint64_t *ranges; // first ids of this thread's creates
	size_t nranges, capranges;
	uint64_t *claimed_ids;
	size_t nclaimed, capclaimed;
	char err[512];
};

static int
push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		uint64_t *p = realloc(*v, c * sizeof(*p));
		if (p == NULL)
			return -1;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

// Calls and records the first error; false on any failure.
static bool
wcall(struct worker *w, cpl_client *c, Copal__Request *rq, Copal__Reply **r)
{
	int rv = cpl_client_call(c, rq, r);
	if (rv != 0) {
		snprintf(w->err, sizeof(w->err), "thread %d: %s: no reply: %s (%s)",
		    w->idx, bh_body_name(rq), cpl_errname(rv), cpl_strerror(rv));
		return false;
	}
	if ((*r)->status != 0) {
		snprintf(w->err, sizeof(w->err), "thread %d: %s: %s (%s): %s",
		    w->idx, bh_body_name(rq), cpl_errname((int)(*r)->status),
		    cpl_strerror((int)(*r)->status), (*r)->error);
		bh_free(*r);
		*r = NULL;
		return false;
	}
	return true;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	cpl_client_opts o;
	cpl_client *c = NULL;
	Copal__Reply *r = NULL;
	char wf[32], names[BATCH][32];
	memset(&o, 0, sizeof(o));
	o.db_dir = w->b->dir;
	o.timeout_ms = 30000 * bh_slow();
	o.attempts = 1;
	if (cpl_client_open(&o, &c) != 0) {
		snprintf(w->err, sizeof(w->err), "thread %d: cannot open a client",
		    w->idx);
		return NULL;
	}
	snprintf(wf, sizeof(wf), "cw%02d", w->idx);

	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.owner = wf;
	hb.ttl_ms = 600000;
	BH_REQ(hq, HEARTBEAT, heartbeat, &hb);
	if (!wcall(w, c, &hq, &r))
		goto out;
	uint64_t lease = r->heartbeat->lease_id;
	bh_free(r);

	Copal__TaskSpec specs[BATCH], *sp[BATCH];
	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, *ncp[CLAIM_MAX];
	nc.free_units = 5040;
	for (int i = 0; i < CLAIM_MAX; i++)
		ncp[i] = &nc;

	while (bh_now_ms() < w->deadline_ms) {
		w->loops++;
		// create a batch in our workflow
		for (int i = 0; i < BATCH; i++) {
			snprintf(names[i], sizeof(names[i]), "t%" PRIu64 "-%d",
			    w->loops, i);
			specs[i] = bh_spec(names[i], wf, "app");
			sp[i] = &specs[i];
		}
		Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
		cr.n_tasks = BATCH;
		cr.tasks = sp;
		BH_REQ(crq, CREATE, create, &cr);
		if (!wcall(w, c, &crq, &r))
			break;
		if (r->create->count != BATCH) {
			snprintf(w->err, sizeof(w->err),
			    "thread %d: create of %d answered count %u", w->idx,
			    BATCH, r->create->count);
			bh_free(r);
			break;
		}
		push(&w->ranges, &w->nranges, &w->capranges, r->create->first_id);
		w->created += BATCH;
		bh_free(r);

		// count our workflow: every task we created is there
		Copal__Filter fw = COPAL__FILTER__INIT;
		fw.workflow = wf;
		Copal__CountRequest cq = COPAL__COUNT_REQUEST__INIT;
		cq.filter = &fw;
		BH_REQ(cnt, COUNT, count, &cq);
		if (!wcall(w, c, &cnt, &r))
			break;
		w->counts++;
		if (r->count->total != w->created) {
			snprintf(w->err, sizeof(w->err),
			    "thread %d: count of workflow %s is %" PRIu64
			    " after creating %" PRIu64 " (read-your-writes)",
			    w->idx, wf, r->count->total, w->created);
			bh_free(r);
			break;
		}
		bh_free(r);

		// query the newest page of our workflow with specs
		Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
		q.filter = &fw;
		q.after_id = w->ranges[w->nranges - 1] - 1;
		q.limit = BATCH;
		q.with_spec = true;
		BH_REQ(qq, QUERY, query, &q);
		if (!wcall(w, c, &qq, &r))
			break;
		w->queries++;
		bool ok = r->query->n_tasks == BATCH;
		for (size_t i = 0; ok && i < r->query->n_tasks; i++)
			ok = strcmp(r->query->tasks[i]->spec->workflow, wf) == 0 &&
			    strcmp(r->query->tasks[i]->spec->name, names[i]) == 0;
		if (!ok) {
			snprintf(w->err, sizeof(w->err),
			    "thread %d: query of its newest batch returned %zu "
			    "tasks, or tasks of another workflow or name",
			    w->idx, r->query->n_tasks);
			bh_free(r);
			break;
		}
		bh_free(r);

		// claim from any workflow and run what we got
		Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
		cl.lease_id = lease;
		cl.max_tasks = CLAIM_MAX;
		cl.n_nodes = CLAIM_MAX;
		cl.nodes = ncp;
		BH_REQ(clq, CLAIM, claim, &cl);
		if (!wcall(w, c, &clq, &r))
			break;
		size_t n = r->claim->n_tasks;
		Copal__StateReport rep[3 * CLAIM_MAX], *repp[3 * CLAIM_MAX];
		static const Copal__TaskState seq[3] = {
			COPAL__TASK_STATE__STATE_RUNNING,
			COPAL__TASK_STATE__STATE_RUN_DONE,
			COPAL__TASK_STATE__STATE_JOB_FINISHED,
		};
		for (size_t i = 0; i < n; i++) {
			Copal__Task *t = r->claim->tasks[i]->task;
			push(&w->claimed_ids, &w->nclaimed, &w->capclaimed, t->id);
			for (int k = 0; k < 3; k++) {
				Copal__StateReport x = COPAL__STATE_REPORT__INIT;
				rep[3 * i + k] = x;
				rep[3 * i + k].task_id = t->id;
				rep[3 * i + k].attempt = t->status->attempt;
				rep[3 * i + k].to_state = seq[k];
				repp[3 * i + k] = &rep[3 * i + k];
			}
		}
		w->claimed += n;
		bh_free(r);
		if (n == 0)
			continue;
		Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
		rr.lease_id = lease;
		rr.n_reports = 3 * n;
		rr.reports = repp;
		BH_REQ(rrq, REPORT, report, &rr);
		if (!wcall(w, c, &rrq, &r))
			break;
		for (size_t i = 0; i < r->report->n_status; i++) {
			if (r->report->status[i] != 0) {
				snprintf(w->err, sizeof(w->err),
				    "thread %d: report %zu (task %" PRIu64 " -> %s): "
				    "%s",
				    w->idx, i, rep[i].task_id,
				    bh_sname(rep[i].to_state),
				    cpl_errname((int)r->report->status[i]));
				break;
			}
		}
		if (r->report->n_status != 3 * n && !w->err[0])
			snprintf(w->err, sizeof(w->err),
			    "thread %d: %zu statuses for %zu reports", w->idx,
			    r->report->n_status, 3 * n);
		bh_free(r);
		if (w->err[0])
			break;
		w->finished += n;
	}
out:
	cpl_client_close(c);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
test_sixteen_clients(void **state)
{
	bh_broker *b = *state;
	cpl_client *c = bh_client(b);
	bh_app(c, "app");
	struct worker *w = calloc(NTHREADS, sizeof(*w));
	uint64_t deadline = bh_now_ms() + RUN_MS;
	for (int i = 0; i < NTHREADS; i++) {
		w[i].idx = i;
		w[i].b = b;
		w[i].deadline_ms = deadline;
		BH_CHECK(pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0,
		    "pthread_create");
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(w[i].th, NULL);

	uint64_t created = 0, claimed = 0, finished = 0, loops = 0;
	size_t nranges = 0, nclaimed = 0;
	bool errors = false;
	for (int i = 0; i < NTHREADS; i++) {
		if (w[i].err[0]) {
			print_error("%s\n", w[i].err);
			errors = true;
		}
		created += w[i].created;
		claimed += w[i].claimed;
		finished += w[i].finished;
		loops += w[i].loops;
		nranges += w[i].nranges;
		nclaimed += w[i].nclaimed;
	}
	print_message("16 clients, %d ms: %" PRIu64 " loops, %" PRIu64
	              " tasks created, %" PRIu64 " claimed and finished\n",
	    RUN_MS, loops, created, finished);
	BH_CHECK(!errors, "requests failed under concurrency (see above)");
	BH_CHECK(created > 0 && claimed > 0, "no progress: %" PRIu64
	    " created, %" PRIu64 " claimed", created, claimed);
	BH_EQ_U64(claimed, finished);

	// ids: every create got its own range; no task claimed twice
	uint64_t *firsts = malloc((nranges ? nranges : 1) * sizeof(uint64_t));
	uint64_t *ids = malloc((nclaimed ? nclaimed : 1) * sizeof(uint64_t));
	size_t k = 0, m = 0;
	for (int i = 0; i < NTHREADS; i++) {
		memcpy(firsts + k, w[i].ranges, w[i].nranges * sizeof(uint64_t));
		k += w[i].nranges;
		memcpy(ids + m, w[i].claimed_ids, w[i].nclaimed * sizeof(uint64_t));
		m += w[i].nclaimed;
	}
	qsort(firsts, nranges, sizeof(uint64_t), cmp_u64);
	for (size_t i = 1; i < nranges; i++)
		BH_CHECK(firsts[i] >= firsts[i - 1] + BATCH,
		    "creates overlap: first ids %" PRIu64 " and %" PRIu64,
		    firsts[i - 1], firsts[i]);
	qsort(ids, nclaimed, sizeof(uint64_t), cmp_u64);
	for (size_t i = 1; i < nclaimed; i++)
		BH_CHECK(ids[i] != ids[i - 1], "task %" PRIu64 " claimed twice",
		    ids[i]);
	for (size_t i = 0; i < nclaimed; i++)
		BH_CHECK(ids[i] >= 1 && ids[i] <= created,
		    "claimed id %" PRIu64 " out of range", ids[i]);

	// counts add up
	uint64_t by[CPL_NSTATES];
	BH_EQ_U64(bh_count(c, NULL, by), created);
	BH_EQ_U64(by[CPL_JOB_FINISHED], finished);
	BH_EQ_U64(by[CPL_READY], created - finished);
	for (int i = 0; i < NTHREADS; i++) {
		char wf[32];
		snprintf(wf, sizeof(wf), "cw%02d", i);
		BH_EQ_U64(bh_count_wf(c, wf), w[i].created);
	}
	// one event per creation, three per finished task
	bh_snap s;
	bh_snapshot(c, &s);
	BH_EQ_U64(s.nevents, created + 3 * finished);
	BH_EQ_U64(s.last_seq, created + 3 * finished);
	BH_SERVES(b, 5000);

	for (int i = 0; i < NTHREADS; i++) {
		free(w[i].ranges);
		free(w[i].claimed_ids);
	}
	free(w);
	free(firsts);
	free(ids);
	cpl_client_close(c);
}

static int
setup(void **state)
{
	bh_broker *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	*state = b;
	bh_init(b, false);
	bh_start(b);
	return 0;
}

static int
teardown(void **state)
{
	bh_broker *b = *state;
	bh_finish(b);
	free(b);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sixteen_clients, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
