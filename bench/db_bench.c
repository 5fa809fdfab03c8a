// The store's side of copal db's benchmark (scripts/db_bench.sh).
//
//   db_bench fill DIR N    N tasks (16 workflows, store_bench's specs) run
//                          to JOB_FINISHED under a batch job's lease,
//                          10,000 per durable transaction, in the database
//                          DIR (made by copal init; the broker stopped)
//   db_bench purge DIR     every final task leaves with its history
//                          (cpl_task_purge, 10,000 tasks per durable
//                          transaction): the store's own rate, without
//                          the broker, the wire or the archive file, the
//                          reference for copal db archive's rate
// Prints "fill: N tasks in S s" / "purge: N tasks, E events in S s (R
// tasks/s, CPU C s)".
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "copal/store.h"

#define APP_NAME "bench-app"
#define NWORKFLOWS 16
#define BATCH 10000u

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "db_bench: %s: %s\n", what, cpl_strerror(rc));
		exit(1);
	}
}

static int
app_fn(cpl_txn *txn, void *arg)
{
	(void)arg;
	Copal__App app = COPAL__APP__INIT;
	app.name = APP_NAME;
	app.executable = "/opt/sim/bin/simulate --config /opt/sim/etc/sim.yaml";
	app.description = "db benchmark application";
	int rv = cpl_app_put(txn, &app, false);
	return rv == CPL_EEXISTS ? 0 : rv;
}

struct fill {
	size_t first, count;
	uint64_t lease;
	cpl_node_cap *nodes;
	uint64_t *ids;
	uint32_t *att;
	size_t ngot;
};

static int
create_fn(cpl_txn *txn, void *arg)
{
	struct fill *f = arg;
	for (size_t i = 0; i < f->count; i++) {
		size_t t = f->first + i;
		char name[32], wf[16], args[96];
		snprintf(name, sizeof name, "task-%07zu", t);
		snprintf(wf, sizeof wf, "wf-%02zu", t % NWORKFLOWS);
		snprintf(args, sizeof args,
		    "--input /scratch/run/in/%07zu.h5 --steps 1000 --seed %zu",
		    t, t * 7919);
		Copal__Resources res = COPAL__RESOURCES__INIT;
		res.num_nodes = 1;
		res.ranks_per_node = 4;
		res.node_packing_count = 1;
		res.wall_time_minutes = 30;
		Copal__TaskSpec spec = COPAL__TASK_SPEC__INIT;
		spec.name = name;
		spec.workflow = wf;
		spec.application = APP_NAME;
		spec.args = args;
		spec.resources = &res;
		spec.max_retries = 3;
		uint64_t id;
		uint8_t uuid[16];
		int rc = cpl_task_create(txn, &spec, &id, uuid);
		if (rc)
			return rc;
	}
	return 0;
}

static int
claim_cb(const cpl_task *t, const uint32_t *nodes, size_t n, void *arg)
{
	struct fill *f = arg;
	(void)nodes;
	(void)n;
	f->ids[f->ngot] = t->id;
	f->att[f->ngot] = t->attempt;
	f->ngot++;
	return 0;
}

static int
run_fn(cpl_txn *txn, void *arg)
{
	struct fill *f = arg;
	size_t n = 0;
	f->ngot = 0;
	for (size_t i = 0; i < f->count; i++)
		f->nodes[i].free_units = CPL_NODE_UNITS;
	cpl_capacity cap = { .max_tasks = (uint32_t)f->count,
		.nodes = f->nodes, .nnodes = f->count };
	int rc = cpl_claim(txn, f->lease, &cap, claim_cb, f, &n);
	static const cpl_state to[] = { CPL_RUNNING, CPL_RUN_DONE,
		CPL_JOB_FINISHED };
	for (size_t p = 0; p < 3 && rc == 0; p++)
		for (size_t i = 0; i < f->ngot && rc == 0; i++) {
			cpl_report r = { .task_id = f->ids[i],
				.lease = f->lease, .attempt = f->att[i],
				.to = to[p] };
			rc = cpl_task_report(txn, &r);
		}
	return rc;
}

static int
lease_fn(cpl_txn *txn, void *arg)
{
	struct fill *f = arg;
	Copal__BatchJob bj = COPAL__BATCH_JOB__INIT, *out = NULL;
	int rv;
	bj.scheduler = "local";
	bj.nodes = 1;
	bj.wall_minutes = 60;
	bj.job_mode = "serial";
	if ((rv = cpl_bjob_add(txn, &bj, &out)) != 0)
		return rv;
	uint64_t id = out->id;
	copal__batch_job__free_unpacked(out, NULL);
	return cpl_lease_grant_job(txn, "db_bench", 3600u * 1000u, id, "1",
	    &f->lease);
}

static int
fill(cpl_store *s, size_t n)
{
	struct fill f;
	memset(&f, 0, sizeof(f));
	f.nodes = calloc(BATCH, sizeof(*f.nodes));
	f.ids = calloc(BATCH, sizeof(*f.ids));
	f.att = calloc(BATCH, sizeof(*f.att));
	check(cpl_store_write(s, app_fn, NULL), "app");
	check(cpl_store_write(s, lease_fn, &f), "lease");
	double t0 = now_s();
	for (size_t done = 0; done < n; done += f.count) {
		f.first = done;
		f.count = n - done < BATCH ? n - done : BATCH;
		check(cpl_store_write(s, create_fn, &f), "create");
		check(cpl_store_write(s, run_fn, &f), "run");
		if (f.ngot != f.count) {
			fprintf(stderr, "db_bench: claimed %zu of %zu\n", f.ngot,
			    f.count);
			return 1;
		}
	}
	printf("fill: %zu tasks in %.1f s\n", n, now_s() - t0);
	free(f.nodes);
	free(f.ids);
	free(f.att);
	return 0;
}

struct purge {
	cpl_ids ids;
	size_t at, count;
	uint64_t nev;
};

static int
list_cb(const cpl_task *t, void *arg)
{
	return cpl_ids_push(arg, t->id);
}

static int
list_fn(cpl_txn *txn, void *arg)
{
	cpl_filter f;
	memset(&f, 0, sizeof(f));
	f.states = (1u << CPL_JOB_FINISHED) | (1u << CPL_FAILED) |
	    (1u << CPL_USER_KILLED) | (1u << CPL_PARENT_KILLED);
	return cpl_query(txn, &f, 0, 0, 0, list_cb, arg, NULL);
}

static int
purge_fn(cpl_txn *txn, void *arg)
{
	struct purge *p = arg;
	uint64_t nev = 0;
	for (size_t i = 0; i < p->count; i++) {
		uint64_t k = 0;
		int rc = cpl_task_purge(txn, p->ids.v[p->at + i], &k);
		if (rc)
			return rc;
		nev += k;
	}
	p->nev += nev; // (a rerun after a map resize starts again)
	return 0;
}

static int
purge_all(cpl_store *s)
{
	struct purge p;
	memset(&p, 0, sizeof(p));
	check(cpl_store_read(s, list_fn, &p.ids), "list");
	double t0 = now_s(), c0 = cpu_s();
	for (p.at = 0; p.at < p.ids.n; p.at += p.count) {
		p.count = p.ids.n - p.at < BATCH ? p.ids.n - p.at : BATCH;
		check(cpl_store_write(s, purge_fn, &p), "purge");
	}
	double dt = now_s() - t0, dc = cpu_s() - c0;
	printf("purge: %zu tasks, %" PRIu64 " events in %.2f s (%.0f tasks/s, "
	    "CPU %.2f s)\n", p.ids.n, p.nev, dt, (double)p.ids.n / dt, dc);
	free(p.ids.v);
	return 0;
}

int
main(int argc, char **argv)
{
	cpl_store *s = NULL;
	cpl_store_opts o;
	if (argc < 3 || (strcmp(argv[1], "fill") == 0 && argc != 4)) {
		fprintf(stderr, "usage: db_bench fill DIR N | purge DIR\n");
		return 2;
	}
	memset(&o, 0, sizeof(o));
	check(cpl_store_open(argv[2], &o, &s), argv[2]);
	int rc = strcmp(argv[1], "fill") == 0 ?
	    fill(s, strtoull(argv[3], NULL, 10)) : purge_all(s);
	char rep[1024];
	if (rc == 0 && strcmp(argv[1], "purge") == 0)
		check(cpl_store_check(s, rep, sizeof(rep)), "check");
	cpl_store_close(s);
	return rc;
}
