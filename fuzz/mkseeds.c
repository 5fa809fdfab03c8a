// Writes the hand-made seed inputs of the harnesses into DIR/<harness>/:
//   mkseeds DIR        (DIR is fuzz/corpus; files named seed-*)
// broker_fuzz: one request of each kind, valid against the seeded store
// (broker_fuzz.h) and a few that are refused; conf_fuzz: the default
// settings file and one with queues; tmpl_fuzz: the default templates and
// edge cases; jsonl_fuzz: lines of copal job --from-file.
// Not run by the build: run by hand when the schema or the seeded store
// changes, then minimize the corpus again (README.md, "Fuzzing").
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker_fuzz.h"
#include "copal/conf.h"
#include "copal/tmpl.h"

static const char *root;

static void
put(const char *harness, const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, harness);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%s", root, harness, name);
	FILE *fp = fopen(path, "wb");
	if (fp == NULL || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

static void
puts_seed(const char *harness, const char *name, const char *text)
{
	put(harness, name, text, strlen(text));
}

// ---------------------------------------------------------------- broker

static uint64_t next_id = 100;

static void
req(const char *name, Copal__Request *r)
{
	static uint8_t token[] = FZ_TOKEN;
	static uint8_t client[] = FZ_CLIENT;
	Copal__Credentials cred = COPAL__CREDENTIALS__INIT;
	cred.token.data = token;
	cred.token.len = FZ_TOKEN_LEN;
	r->version = 1;
	if (r->request_id == 0)
		r->request_id = next_id++;
	r->credentials = &cred;
	r->client_id.data = client;
	r->client_id.len = sizeof(client);
	size_t n = copal__request__get_packed_size(r);
	uint8_t *buf = malloc(n);
	copal__request__pack(r, buf);
	put("broker_fuzz", name, buf, n);
	free(buf);
}

#define REQ(name, kind, field, ...)                          \
	do {                                                 \
		Copal__Request r_ = COPAL__REQUEST__INIT;    \
		r_.body_case = COPAL__REQUEST__BODY_##kind;  \
		r_.field = __VA_ARGS__;                      \
		req(name, &r_);                              \
	} while (0)

static void
broker(void)
{
	Copal__TaskSpec sp = COPAL__TASK_SPEC__INIT, sp2, *sps[2] = { &sp, &sp2 };
	Copal__Resources res = COPAL__RESOURCES__INIT;
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	uint32_t lc = 1, lp = 0;
	uint64_t parent = 2;
	sp.name = "new";
	sp.workflow = "wf1";
	sp.application = "hello";
	sp.args = "-x 1";
	res.num_nodes = 1;
	res.node_packing_count = 4;
	sp.resources = &res;
	sp.parent_ids = &parent;
	sp.n_parent_ids = 1;
	sp2 = sp;
	sp2.name = "new2";
	sp2.n_parent_ids = 0;
	cr.tasks = sps;
	cr.n_tasks = 2;
	cr.local_parent_child = &lc;
	cr.local_parent_parent = &lp;
	cr.n_local_parent_child = cr.n_local_parent_parent = 1;
	cr.want_uuids = 1;
	REQ("create", CREATE, create, &cr);

	Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, *ncs[1] = { &nc };
	Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
	nc.free_units = CPL_NODE_UNITS;
	cl.lease_id = 1;
	cl.max_tasks = 4;
	cl.nodes = ncs;
	cl.n_nodes = 1;
	REQ("claim", CLAIM, claim, &cl);
	cl.workflow = "wf3";
	cl.lease_id = 2;
	REQ("claim-wf", CLAIM, claim, &cl);
	Copal__HeartbeatRequest nl = COPAL__HEARTBEAT_REQUEST__INIT;
	nl.owner = "nid010 pid 1";
	nl.ttl_ms = 30000;
	nl.batch_job_id = 1;
	cl.lease_id = 0;
	cl.workflow = "";
	cl.new_lease = &nl;
	REQ("claim-new-lease", CLAIM, claim, &cl);
	cl.new_lease = NULL;

	Copal__StateReport sr = COPAL__STATE_REPORT__INIT, *srs[1] = { &sr };
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	sr.task_id = 4;
	sr.attempt = 1;
	sr.to_state = COPAL__TASK_STATE__STATE_RUN_DONE;
	sr.message = "done";
	sr.node = "nid001/0";
	rr.lease_id = 1;
	rr.reports = srs;
	rr.n_reports = 1;
	REQ("report", REPORT, report, &rr);

	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.lease_id = 1;
	hb.ttl_ms = 30000;
	REQ("heartbeat", HEARTBEAT, heartbeat, &hb);
	hb.lease_id = 0;
	hb.owner = "nid009 pid 1";
	REQ("heartbeat-new", HEARTBEAT, heartbeat, &hb);
	hb.lease_id = 2;
	hb.release = 1;
	REQ("heartbeat-release", HEARTBEAT, heartbeat, &hb);

	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__TaskState states[] = { COPAL__TASK_STATE__STATE_READY };
	f.workflow = "wf2";
	f.states = states;
	f.n_states = 1;
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	q.filter = &f;
	q.with_spec = 1;
	q.limit = 10;
	REQ("query", QUERY, query, &q);
	Copal__Filter fall = COPAL__FILTER__INIT;
	fall.all = 1;
	Copal__QueryRequest qa = COPAL__QUERY_REQUEST__INIT;
	qa.filter = &fall;
	REQ("query-all", QUERY, query, &qa);
	Copal__Filter fid = COPAL__FILTER__INIT;
	uint64_t ids[] = { 1, 3, 9 };
	fid.ids = ids;
	fid.n_ids = 3;
	Copal__CountRequest co = COPAL__COUNT_REQUEST__INIT;
	co.filter = &fid;
	REQ("count", COUNT, count, &co);

	Copal__ModifyRequest mo = COPAL__MODIFY_REQUEST__INIT;
	mo.filter = &fid;
	mo.field = "args";
	mo.value = "-y 2";
	REQ("modify", MODIFY, modify, &mo);
	mo.field = "state";
	mo.value = "READY";
	mo.filter = &f;
	REQ("modify-state", MODIFY, modify, &mo);

	Copal__DeleteRequest de = COPAL__DELETE_REQUEST__INIT;
	de.filter = &fid;
	REQ("delete", DELETE, delete_, &de);
	Copal__Filter fleaf = COPAL__FILTER__INIT;
	uint64_t leaf = 9;
	fleaf.ids = &leaf;
	fleaf.n_ids = 1;
	de.filter = &fleaf;
	REQ("delete-leaf", DELETE, delete_, &de);
	Copal__KillRequest ki = COPAL__KILL_REQUEST__INIT;
	ki.filter = &fall;
	ki.recursive = 1;
	REQ("kill", KILL, kill, &ki);

	Copal__AddDependencyRequest ad = COPAL__ADD_DEPENDENCY_REQUEST__INIT;
	ad.parent_id = 8;
	ad.child_id = 9;
	REQ("add-dependency", ADD_DEPENDENCY, add_dependency, &ad);

	Copal__HistoryRequest hi = COPAL__HISTORY_REQUEST__INIT;
	hi.task_id = 1;
	REQ("history", HISTORY, history, &hi);
	Copal__ExportRequest ex = COPAL__EXPORT_REQUEST__INIT;
	ex.workflow = "wf1";
	ex.limit = 5;
	REQ("export", EXPORT, export, &ex);

	Copal__App app = COPAL__APP__INIT;
	Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
	app.name = "newapp";
	app.executable = "/bin/true";
	ar.app = &app;
	REQ("app-register", APP_REGISTER, app_register, &ar);
	Copal__AppListRequest al = COPAL__APP_LIST_REQUEST__INIT;
	REQ("app-list", APP_LIST, app_list, &al);
	Copal__AppDeleteRequest adl = COPAL__APP_DELETE_REQUEST__INIT;
	adl.name = "unused";
	REQ("app-delete", APP_DELETE, app_delete, &adl);

	Copal__PingRequest pi = COPAL__PING_REQUEST__INIT;
	REQ("ping", PING, ping, &pi);
	Copal__WorkflowListRequest wl = COPAL__WORKFLOW_LIST_REQUEST__INIT;
	REQ("workflow-list", WORKFLOW_LIST, workflow_list, &wl);
	Copal__LeaseListRequest ll = COPAL__LEASE_LIST_REQUEST__INIT;
	REQ("lease-list", LEASE_LIST, lease_list, &ll);

	Copal__BatchJob bj = COPAL__BATCH_JOB__INIT;
	Copal__BatchJobAddRequest ba = COPAL__BATCH_JOB_ADD_REQUEST__INIT;
	bj.scheduler = "slurm";
	bj.nodes = 1;
	bj.wall_minutes = 10;
	bj.job_mode = "mpi";
	ba.job = &bj;
	REQ("batch-add", BATCH_ADD, batch_add, &ba);
	Copal__BatchJobUpdateRequest bu = COPAL__BATCH_JOB_UPDATE_REQUEST__INIT;
	bu.id = 1;
	bu.state = COPAL__BATCH_JOB_STATE__BJ_RUNNING;
	bu.sched_state = "R";
	REQ("batch-update", BATCH_UPDATE, batch_update, &bu);
	Copal__BatchJobListRequest bl = COPAL__BATCH_JOB_LIST_REQUEST__INIT;
	REQ("batch-list", BATCH_LIST, batch_list, &bl);
	Copal__BacklogRequest bk = COPAL__BACKLOG_REQUEST__INIT;
	Copal__QueueLimit qlim = COPAL__QUEUE_LIMIT__INIT, *qls[1] = { &qlim };
	qlim.max_nodes = 1;
	bk.queues = qls;
	bk.n_queues = 1;
	bk.max_unfit_ids = 10;
	REQ("backlog", BACKLOG, backlog, &bk);

	// the stored reply's identity with another body: refused as reused
	Copal__Request r = COPAL__REQUEST__INIT;
	r.body_case = COPAL__REQUEST__BODY_APP_DELETE;
	r.app_delete = &adl;
	r.request_id = FZ_STORED_ID;
	req("reused-id", &r);
}

// ---------------------------------------------------------------- others

static void
conf(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	if (fp == NULL || cpl_conf_write_default(fp) != 0 || fclose(fp) != 0)
		exit(1);
	put("conf_fuzz", "default", text, len);
	free(text);
	puts_seed("conf_fuzz", "queues",
	    "\xEF\xBB\xBFscheduler = slurm\r\n"
	    "# a comment\n"
	    "\t\n"
	    "project = ABC-123\n"
	    "broker_tcp = tls+tcp://0.0.0.0:7000\n"
	    "lease_ttl_seconds = 120\n"
	    "job_template = my.tmpl\n"
	    "queue.debug.max_nodes = 8\n"
	    "queue.debug.min_minutes = 5\n"
	    "queue.prod@x.max_queued = 4\n"
	    "queue.prod@x.gpus_per_node = 4\n"
	    "wf_filter = wf1\n");
	puts_seed("conf_fuzz", "bad", "queue.q.min_nodes = 9\nx = 5 # no\n");
}

static void
tmpl(void)
{
	for (size_t i = 0; tmpl_schedulers[i]; i++)
		puts_seed("tmpl_fuzz", tmpl_schedulers[i], tmpl_texts[i]);
	puts_seed("tmpl_fuzz", "edges", "a {{job_name}} b {{\tnodes }}}} {{ "
	    "x y }}\n}}{{ unknown }}\n{{");
}

static void
jsonl(void)
{
	puts_seed("jsonl_fuzz", "min", "{\"name\": \"a\", \"app\": \"sim\"}\n");
	puts_seed("jsonl_fuzz", "full",
	    "{\"name\": \"b\", \"workflow\": \"w\", \"app\": \"sim\", "
	    "\"args\": \"-x 1\", \"key\": \"b\", \"parent_keys\": [\"a\"], "
	    "\"env\": {\"X\": \"1\", \"OMP_NUM_THREADS\": \"4\"}, "
	    "\"tags\": [\"t=1\", \"é=2\"], \"launch_params\": [\"-d\"], \"parents\": [\"0796bd50\", 42], "
	    "\"num_nodes\": 2, \"ranks_per_node\": 4, \"threads_per_rank\": 2, "
	    "\"gpus_per_rank\": 1, \"cpu_affinity\": \"depth\", "
	    "\"node_packing_count\": 1, \"wall_time_minutes\": 30, "
	    "\"data\": {\"k\": [1, 2.5, null]}, \"priority\": -3, "
	    "\"max_retries\": 5, \"auto_timeout_retry\": false, "
	    "\"post_error_handler\": true, \"timeout_seconds\": 60, "
	    "\"input_files\": [\"*.dat\"], \"stage_in_url\": \"globus://x\", "
	    "\"stage_out_files\": \"out.*\", \"stage_out_url\": \"globus://y\", "
	    "\"workdir\": \"w/b\", \"description\": \"café\"}\n");
	puts_seed("jsonl_fuzz", "bad", "{\"name\": \"../x\", \"app\": \"\", "
	    "\"num_nodes\": -1, \"nope\": 1}");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds DIR (fuzz/corpus)\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) != 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	broker();
	conf();
	tmpl();
	jsonl();
	return 0;
}
