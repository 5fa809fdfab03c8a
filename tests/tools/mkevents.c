// mkevents: fills a database with a large event log quickly, for the
// profiling verbs (copal export / stats) and their benchmark.
//
//   mkevents --db DIR [-n TASKS] [-l LAUNCHERS] [-c CLAIM] [-w WORKFLOWS]
//            [-e ERR_EVERY] [-q]
//
// DIR is a copal database whose broker runs (copal init DIR; copal --db DIR
// server start). mkevents registers the app "sim", creates TASKS tasks
// (spread over WORKFLOWS workflows "wf0", "wf1", ..., batches of 10,000),
// then LAUNCHERS threads act as launchers without spawning anything: each
// takes a lease, claims up to CLAIM tasks at a time on CLAIM/16 nodes (the
// tasks have node_packing_count 16) and reports RUNNING (with the node
// "simL-hostH/S" it was placed on), RUN_DONE and JOB_FINISHED for all of
// them, as copal-launcher does in serial mode. Every ERR_EVERY-th task fails with
// RUN_ERROR (return code 1) instead of RUN_DONE; it has max_retries 0 and
// the broker makes it FAILED. Each task makes 4 events (CREATED->READY,
// ->RUNNING, ->RUN_DONE or RUN_ERROR, ->JOB_FINISHED or FAILED), so
// 1,000,000 tasks make 4,000,000 events.
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "copal/client.h"

#define SLOTS_PER_HOST 16

static const char *db;
static int ntasks = 1000000, nlaunch = 4, claim_max = 1000, nwf = 4;
static int err_every;
static bool quiet;

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "mkevents: %s: %s\n", what, why);
	exit(1);
}

static cpl_client *
client(void)
{
	cpl_client_opts o;
	cpl_client *c;
	int rv;
	memset(&o, 0, sizeof(o));
	o.db_dir = db;
	o.timeout_ms = 120000;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die(db, cpl_strerror(rv));
	return c;
}

// The result rv of a typed call on c that must succeed.
static void
must(cpl_client *c, int rv)
{
	if (rv && !cpl_client_err_remote(c))
		die("call", cpl_strerror(rv));
	if (rv)
		die("request refused", cpl_client_errmsg(c));
}

// ---------------------------------------------------------------- launchers

struct launcher {
	pthread_t th;
	int idx;
	uint64_t done;
};

static void
report(cpl_client *c, uint64_t lease, const Copal__ClaimReply *cr, int to,
    int idx)
{
	size_t n = cr->n_tasks;
	Copal__StateReport *s = calloc(n, sizeof(*s));
	Copal__StateReport **sp = calloc(n, sizeof(*sp));
	char (*node)[48] = calloc(n, 48);
	uint32_t *used = calloc((size_t)claim_max, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++) {
		const Copal__ClaimedTask *ct = cr->tasks[i];
		Copal__StateReport x = COPAL__STATE_REPORT__INIT;
		// the node the broker placed the task on, and the next slot
		// of that node (the claim's tasks all end before the next)
		uint32_t ni = ct->n_node_index ? ct->node_index[0] : 0;
		s[i] = x;
		s[i].task_id = ct->task->id;
		s[i].attempt = ct->task->status->attempt;
		s[i].to_state = to;
		snprintf(node[i], 48, "sim%d-host%u/%u", idx, ni,
		    ni < (uint32_t)claim_max ? used[ni]++ : 0);
		s[i].node = node[i];
		bool fails = err_every && s[i].task_id % (uint64_t)err_every == 0;
		if (to == COPAL__TASK_STATE__STATE_RUN_DONE && fails) {
			s[i].to_state = COPAL__TASK_STATE__STATE_RUN_ERROR;
			s[i].return_code = 1;
			s[i].message = "return code 1\nsimulated failure";
		}
		if (to == COPAL__TASK_STATE__STATE_RUNNING)
			s[i].message = "started";
		sp[i] = &s[i];
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) // failed tasks have no JOB_FINISHED
		if (!(to == COPAL__TASK_STATE__STATE_JOB_FINISHED && err_every &&
		        s[i].task_id % (uint64_t)err_every == 0))
			sp[k++] = &s[i];
	Copal__Reply *r;
	must(c, cpl_call_report(c, lease, sp, k, &r));
	for (size_t i = 0; i < r->report->n_status; i++)
		if (r->report->status[i] != 0)
			die("report refused", cpl_strerror((int)r->report->status[i]));
	copal__reply__free_unpacked(r, NULL);
	free(s);
	free(sp);
	free(node);
	free(used);
}

static void *
launcher_main(void *arg)
{
	struct launcher *L = arg;
	cpl_client *c = client();
	char owner[64];
	snprintf(owner, sizeof(owner), "launcher sim%d pid %d serial", L->idx,
	    1000 + L->idx);
	Copal__Reply *r;
	must(c, cpl_call_heartbeat(c, 0, owner, 600000, false, &r));
	uint64_t lease = r->heartbeat->lease_id;
	copal__reply__free_unpacked(r, NULL);

	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT;
	nc.free_units = CPL_NODE_UNITS;
	int nnodes = (claim_max + SLOTS_PER_HOST - 1) / SLOTS_PER_HOST;
	Copal__NodeCapacity **ncp = calloc((size_t)nnodes, sizeof(*ncp));
	for (int i = 0; i < nnodes; i++)
		ncp[i] = &nc;
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	cl.lease_id = lease;
	cl.max_tasks = (uint32_t)claim_max;
	cl.n_nodes = (size_t)nnodes;
	cl.nodes = ncp;
	for (;;) {
		must(c, cpl_call_claim(c, &cl, &r));
		if (r->claim->n_tasks == 0) {
			copal__reply__free_unpacked(r, NULL);
			break;
		}
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_RUNNING, L->idx);
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_RUN_DONE,
		    L->idx);
		report(c, lease, r->claim, COPAL__TASK_STATE__STATE_JOB_FINISHED,
		    L->idx);
		L->done += r->claim->n_tasks;
		copal__reply__free_unpacked(r, NULL);
	}
	// release the lease: the launcher is gone
	must(c, cpl_call_heartbeat(c, lease, owner, 600000, true, &r));
	cpl_reply_free(r);
	free(ncp);
	cpl_client_close(c);
	return NULL;
}

// ---------------------------------------------------------------- main

static void
usage(void)
{
	fprintf(stderr, "usage: mkevents --db DIR [-n TASKS] [-l LAUNCHERS] "
	    "[-c CLAIM] [-w WORKFLOWS] [-e ERR_EVERY] [-q]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "db", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "d:n:l:c:w:e:q", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': db = optarg; break;
		case 'n': ntasks = atoi(optarg); break;
		case 'l': nlaunch = atoi(optarg); break;
		case 'c': claim_max = atoi(optarg); break;
		case 'w': nwf = atoi(optarg); break;
		case 'e': err_every = atoi(optarg); break;
		case 'q': quiet = true; break;
		default: usage();
		}
	}
	if (db == NULL || ntasks <= 0 || nlaunch <= 0 || nlaunch > 64 ||
	    claim_max <= 0 || nwf <= 0 || err_every < 0)
		usage();
	cpl_client *c = client();

	Copal__App app = COPAL__APP__INIT;
	app.name = "sim";
	app.executable = "/bin/true";
	Copal__Reply *r;
	must(c, cpl_call_app_register(c, &app, true, &r));
	cpl_reply_free(r);

	double t0 = now_s();
	const int batch = 10000;
	Copal__TaskSpec *specs = calloc((size_t)batch, sizeof(*specs));
	Copal__TaskSpec **sp = calloc((size_t)batch, sizeof(*sp));
	char (*names)[24] = calloc((size_t)batch, 24);
	char (*wfs)[16] = calloc((size_t)nwf, 16);
	for (int w = 0; w < nwf; w++)
		snprintf(wfs[w], 16, "wf%d", w);
	Copal__Resources res = COPAL__RESOURCES__INIT;
	res.num_nodes = 1;
	res.node_packing_count = SLOTS_PER_HOST;
	for (int done = 0; done < ntasks; done += batch) {
		int n = ntasks - done < batch ? ntasks - done : batch;
		for (int i = 0; i < n; i++) {
			Copal__TaskSpec x = COPAL__TASK_SPEC__INIT;
			specs[i] = x;
			snprintf(names[i], 24, "task%d", done + i);
			specs[i].name = names[i];
			specs[i].workflow = wfs[(done + i) % nwf];
			specs[i].application = "sim";
			specs[i].args = "--steps 100";
			specs[i].resources = &res;
			specs[i].max_retries = 0;
			sp[i] = &specs[i];
		}
		Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
		cr.n_tasks = (size_t)n;
		cr.tasks = sp;
		must(c, cpl_call_create_tasks(c, &cr, &r));
		cpl_reply_free(r);
	}
	free(specs);
	free(sp);
	free(names);
	double t1 = now_s();

	struct launcher *L = calloc((size_t)nlaunch, sizeof(*L));
	for (int i = 0; i < nlaunch; i++) {
		L[i].idx = i;
		pthread_create(&L[i].th, NULL, launcher_main, &L[i]);
	}
	uint64_t done = 0;
	for (int i = 0; i < nlaunch; i++) {
		pthread_join(L[i].th, NULL);
		done += L[i].done;
	}
	double t2 = now_s();
	if (!quiet)
		printf("mkevents: %d tasks created in %.1f s, %llu run by %d "
		    "launchers in %.1f s: %llu events\n", ntasks, t1 - t0,
		    (unsigned long long)done, nlaunch, t2 - t1,
		    (unsigned long long)(4ull * done));
	free(L);
	free(wfs);
	cpl_client_close(c);
	return done == (uint64_t)ntasks ? 0 : 1;
}
