// The store the broker harness runs every request against: made once per
// process in a private directory, with apps, tasks in most states across
// two workflows, two leases (one holding tasks, one with a kill notice),
// batch jobs and one stored reply. The ids are fixed (a fresh store
// numbers from 1), so that the seed requests (mkseeds.c) name them.
#include <stdio.h>
#include <string.h>

#include "broker_fuzz.h"
#include "fuzz_util.h"

#define OK(call)                                                       \
	do {                                                           \
		int rv_ = (call);                                      \
		if (rv_ != 0)                                          \
			fz_fail("seed: %s: %s", #call, cpl_strerror(rv_)); \
	} while (0)

static int
put_app(cpl_txn *txn, const char *name, const char *exe, const char *pre)
{
	Copal__App app = COPAL__APP__INIT;
	app.name = (char *)name;
	app.executable = (char *)exe;
	app.preprocess = (char *)pre;
	app.description = "café ☕";
	return cpl_app_put(txn, &app, false);
}

static uint64_t
put_task(cpl_txn *txn, const char *name, const char *wf, const char *app,
    uint64_t parent, uint32_t nodes, int32_t prio)
{
	Copal__TaskSpec sp = COPAL__TASK_SPEC__INIT;
	Copal__Resources res = COPAL__RESOURCES__INIT;
	Copal__EnvVar ev = COPAL__ENV_VAR__INIT, *evs[1] = { &ev };
	char *tags[] = { "k=tag1", "é=1" };
	uint64_t id;
	uint8_t uuid[16];
	sp.name = (char *)name;
	sp.workflow = (char *)wf;
	sp.application = (char *)app;
	sp.args = "--n 3";
	sp.data_json = "{\"x\":1}";
	ev.name = "OMP_NUM_THREADS";
	ev.value = "4";
	sp.environ = evs;
	sp.n_environ = 1;
	sp.tags = tags;
	sp.n_tags = 2;
	res.num_nodes = nodes;
	res.node_packing_count = nodes == 1 ? 2 : 1;
	res.wall_time_minutes = 10;
	sp.resources = &res;
	sp.parent_ids = &parent;
	sp.n_parent_ids = parent ? 1 : 0;
	sp.max_retries = 2;
	sp.auto_timeout_retry = 1;
	sp.priority = prio;
	OK(cpl_task_create(txn, &sp, &id, uuid));
	return id;
}

static int
report(cpl_txn *txn, uint64_t task, uint64_t lease, uint32_t attempt,
    cpl_state to)
{
	cpl_report r = { task, lease, attempt, to, 0, "seeded", "nid001/0", false, 0 };
	return cpl_task_report(txn, &r);
}

struct claimed {
	uint64_t id[4];
	uint32_t attempt[4];
	size_t n;
};

static int
claim_cb(const cpl_task *t, const uint32_t *nodes, size_t n, void *arg)
{
	struct claimed *c = arg;
	(void)nodes;
	(void)n;
	if (c->n < 4) {
		c->id[c->n] = t->id;
		c->attempt[c->n++] = t->attempt;
	}
	return 0;
}

static int
seed_cb(cpl_txn *txn, void *arg)
{
	(void)arg;
	OK(put_app(txn, "hello", "echo hello", ""));
	OK(put_app(txn, "sim", "./sim.x", "module load x"));
	OK(put_app(txn, "unused", "true", ""));
	// ids 1..9
	uint64_t a = put_task(txn, "a", "wf1", "hello", 0, 1, 5);
	uint64_t b = put_task(txn, "b", "wf1", "hello", a, 1, 0);
	put_task(txn, "c", "wf1", "sim", b, 1, 0);
	uint64_t d = put_task(txn, "d", "wf2", "sim", 0, 2, 9);
	put_task(txn, "e", "wf2", "hello", 0, 1, -3);
	uint64_t f = put_task(txn, "f", "wf2", "sim", 0, 1, 1);
	put_task(txn, "g", "wf2", "sim", f, 1, 0);
	uint64_t h = put_task(txn, "h", "wf3", "hello", 0, 1, 0);
	put_task(txn, "ünï", "wf3", "hello", 0, 1, 0);

	// lease 1 (a launcher in batch job 1, slurm job 12345) holds a
	// (finished), d (running) and f (killed: a notice)
	uint64_t l1, l2;
	OK(cpl_lease_grant_job(txn, "nid001 pid 42 job 7", 600000, 1, "12345",
	    &l1));
	OK(cpl_lease_grant(txn, "nid002 pid 43 é", 600000, &l2));
	cpl_node_cap nodes[3] = { { CPL_NODE_UNITS, 0 }, { CPL_NODE_UNITS, 0 },
		{ CPL_NODE_UNITS, 0 } };
	cpl_capacity cap = { .max_tasks = 3, .nodes = nodes, .nnodes = 3 };
	struct claimed c = { { 0 }, { 0 }, 0 };
	size_t n = 0;
	OK(cpl_claim(txn, l1, &cap, claim_cb, &c, &n));
	if (n != 3 || c.id[0] != d || c.id[1] != a || c.id[2] != f)
		fz_fail("seed: claimed %zu tasks, not d, a, f", n);
	static const cpl_state run[] = { CPL_STAGED_IN, CPL_PREPROCESSED,
		CPL_RUNNING, CPL_RUN_DONE, CPL_POSTPROCESSED, CPL_JOB_FINISHED };
	for (size_t i = 0; i < sizeof(run) / sizeof(run[0]); i++)
		OK(report(txn, a, l1, c.attempt[1], run[i]));
	OK(report(txn, d, l1, c.attempt[0], CPL_STAGED_IN));
	OK(report(txn, d, l1, c.attempt[0], CPL_RUNNING));
	OK(report(txn, f, l1, c.attempt[2], CPL_STAGED_IN));
	OK(cpl_task_kill(txn, f, "by hand", NULL));
	OK(cpl_history_note(txn, h, "a note"));

	// batch jobs 1 (queued) and 2 (submitting)
	Copal__BatchJob bj = COPAL__BATCH_JOB__INIT, *out = NULL;
	bj.scheduler = "slurm";
	bj.queue = "debug";
	bj.nodes = 2;
	bj.wall_minutes = 30;
	bj.job_mode = "serial";
	OK(cpl_bjob_add(txn, &bj, &out));
	cpl_bjob_change ch = { out->id, COPAL__BATCH_JOB_STATE__BJ_QUEUED,
		"12345", "queued", "PD", NULL, "Resources" };
	copal__batch_job__free_unpacked(out, NULL);
	OK(cpl_bjob_update(txn, &ch, &out));
	copal__batch_job__free_unpacked(out, NULL);
	bj.scheduler = "local";
	bj.wf_filter = "wf2";
	OK(cpl_bjob_add(txn, &bj, &out));
	copal__batch_job__free_unpacked(out, NULL);

	// a stored reply: request FZ_STORED_ID of client FZ_CLIENT with a
	// body of digest FZ_STORED_DIGEST
	Copal__Reply rep = COPAL__REPLY__INIT;
	uint8_t buf[64];
	rep.version = 1;
	rep.request_id = FZ_STORED_ID;
	size_t len = copal__reply__pack(&rep, buf);
	cpl_reqkey k = { fz_client, FZ_STORED_ID, FZ_STORED_DIGEST };
	OK(cpl_reply_put(txn, &k, buf, len));
	return 0;
}

const uint8_t fz_client[CPL_CLIENT_ID_LEN] = FZ_CLIENT;

void
fz_seed(cpl_store *st)
{
	OK(cpl_store_write(st, seed_cb, NULL));
}
