// Launcher jobs on the site's batch scheduler: copal submit-launch,
// copal ls queues, copal service.
//
// A submission is recorded in the broker before anything is run (so its id
// names the script, qsubmit/qlaunch<id>.sh), then rendered from the
// database's template, then handed to the scheduler; the record ends in
// QUEUED (or RUNNING, local) with the scheduler's id, or in SUBMIT_FAILED
// with the scheduler's own words. States are synced from squeue/qstat by
// `ls queues` and by every round of the service.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "copal/conf.h"
#include "bsched.h"
#include "tmpl.h"

#define MAX_TEMPLATE (1u << 20)
#define BJ(x) COPAL__BATCH_JOB_STATE__BJ_##x

// ------------------------------------------------------------ helpers

// Words that go into job scripts unquoted: names of projects, queues,
// workflows.
static bool
safe_name(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 128)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || strchr("._@+-", *p)))
			return false;
	return true;
}

// Paths that go into job scripts unquoted (no %: Slurm and PBS expand
// %j and the like in output paths).
static bool
safe_path(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || strchr("._@+-/,=:", *p)))
			return false;
	return *s == '/';
}

// "QUEUED" for BJ_QUEUED: the schema's name without its prefix.
static const char *
bj_name(Copal__BatchJobState s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &copal__batch_job_state__descriptor, (int)s);
	return v && strncmp(v->name, "BJ_", 3) == 0 ? v->name + 3 : "?";
}

static bool
bj_active(Copal__BatchJobState s)
{
	return s == BJ(SUBMITTING) || s == BJ(QUEUED) || s == BJ(RUNNING);
}

// A broker call that reports errors as text (the service logs them)
// instead of printing them.
static int
call(cpl_client *c, Copal__Request *req, Copal__Reply **rep, char *why,
    size_t wl)
{
	Copal__Reply *r = NULL;
	int rv = cpl_client_call(c, req, &r);
	if (rv) {
		snprintf(why, wl, "no answer from the broker: %s",
		    cpl_strerror(rv));
		return rv;
	}
	if (r->status) {
		rv = (int)r->status;
		// Cut to the caller's buffer on purpose (a log line).
		snprintf(why, wl, "%s", r->error && r->error[0] ? r->error :
		                                              cpl_strerror(rv));
		copal__reply__free_unpacked(r, NULL);
		return rv;
	}
	*rep = r;
	return 0;
}

// Moves batch job id to st; empty or NULL strings leave a field as it is.
// out (may be NULL): the record after the update, to free with
// copal__batch_job__free_unpacked. Each call is a new request (and request
// id): a reused one would be answered from the broker's reply cache.
static int
bj_update(cpl_client *c, uint64_t id, Copal__BatchJobState st,
    const char *sid, const char *msg, const char *word, const char *script,
    Copal__BatchJob **out, char *why, size_t wl)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__BatchJobUpdateRequest u = COPAL__BATCH_JOB_UPDATE_REQUEST__INIT;
	Copal__Reply *rep;
	u.id = id;
	u.state = st;
	u.scheduler_id = (char *)(sid ? sid : "");
	u.message = (char *)(msg ? msg : "");
	u.sched_state = (char *)(word ? word : "");
	u.script = (char *)(script ? script : "");
	req.body_case = COPAL__REQUEST__BODY_BATCH_UPDATE;
	req.batch_update = &u;
	int rv = call(c, &req, &rep, why, wl);
	if (rv == 0) {
		if (out) {
			*out = rep->batch_update->job;
			rep->batch_update->job = NULL;
		}
		copal__reply__free_unpacked(rep, NULL);
	}
	return rv;
}

// All batch jobs (states: NULL for all). *rep freed by the caller.
static int
bj_list(cpl_client *c, bool active_only, Copal__Reply **rep, char *why,
    size_t wl)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__BatchJobListRequest l = COPAL__BATCH_JOB_LIST_REQUEST__INIT;
	Copal__BatchJobState act[] = { BJ(SUBMITTING), BJ(QUEUED), BJ(RUNNING) };
	if (active_only) {
		l.states = act;
		l.n_states = 3;
	}
	req.body_case = COPAL__REQUEST__BODY_BATCH_LIST;
	req.batch_list = &l;
	return call(c, &req, rep, why, wl);
}

static char *
read_file(const char *path, size_t max, char *why, size_t wl)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(why, wl, "template %.1024s: %.600s", path, strerror(errno));
		return NULL;
	}
	char *b = xmalloc(max + 1);
	size_t n = fread(b, 1, max + 1, fp);
	bool bad = ferror(fp);
	fclose(fp);
	if (bad || n > max) {
		snprintf(why, wl, "template %.600s: %.600s", path,
		    bad ? "read error" : "larger than 1 MB");
		free(b);
		return NULL;
	}
	b[n] = '\0';
	if (strlen(b) != n) {
		snprintf(why, wl, "template %.600s: contains a NUL byte", path);
		free(b);
		return NULL;
	}
	return b;
}

static int
write_script(const char *path, const char *text, char *why, size_t wl)
{
	char tmp[PATH_MAX + 128];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0) {
		snprintf(why, wl, "%.1024s: %.600s", tmp, strerror(errno));
		return -1;
	}
	size_t n = strlen(text), off = 0;
	while (off < n) {
		ssize_t k = write(fd, text + off, n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(why, wl, "%.1024s: %.600s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)k;
	}
	if (fchmod(fd, 0755) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(why, wl, "%.1024s: %.600s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

// The directory holding this copal program (job scripts put it first in
// PATH, so the job runs the same copal).
static int
copal_bin_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash == NULL || (size_t)(slash - exe) >= len)
		return -1;
	*slash = '\0';
	snprintf(buf, len, "%s", exe[0] ? exe : "/");
	return 0;
}


// The database (--db or $COPAL_DB) and its settings. Prints why on
// failure (quiet: not) and returns an exit code.
static int
db_conf(char *db, size_t len, cpl_conf *conf, bool quiet)
{
	char err[1024];
	int rc = quiet && cli_db_opt == NULL && getenv(CPL_ENV_DB) == NULL ?
	    EXIT_NOTFOUND : cli_db_find(db, len);
	if (rc)
		return rc;
	if (cpl_conf_load(db, conf, err, sizeof(err)) != 0) {
		if (!quiet)
			cli_err("%s", err);
		return EXIT_ERR;
	}
	return 0;
}

// ------------------------------------------------------------ submit

// A database made before job templates existed has none: the default
// template of its scheduler is written where init would have put it (only
// there, and only when missing), and the user is told.
static void
restore_default_template(const char *db, const cpl_conf *conf)
{
	char dflt[PATH_MAX + 64], dir[PATH_MAX + 32];
	struct stat st;
	snprintf(dir, sizeof(dir), "%s/job-templates", db);
	snprintf(dflt, sizeof(dflt), "%s/%s.tmpl", dir, conf->scheduler);
	const char *text = tmpl_default(conf->scheduler);
	if (strcmp(dflt, conf->job_template) != 0 || text == NULL ||
	    stat(dflt, &st) == 0 || errno != ENOENT)
		return;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return;
	char why[256];
	if (write_script(dflt, text, why, sizeof(why)) == 0 &&
	    chmod(dflt, 0644) == 0)
		cli_warn("no %s: wrote copal's default template there (edit it "
		    "for your site)", dflt);
}

typedef struct launch_req {
	const char *project, *queue, *job_mode, *wf_filter, *flags, *origin;
	uint32_t nodes, minutes;
} launch_req;

// Checks a request against what job scripts can take; returns a message
// or NULL.
static const char *
launch_check(const cpl_conf *conf, const launch_req *r, char *b, size_t len)
{
	bool local = strcmp(conf->scheduler, "local") == 0;
	if (r->nodes == 0 || r->nodes > 65535)
		return "nodes: 1..65535";
	if (r->minutes == 0 || r->minutes > 525600)
		return "wall time: 1..525600 minutes";
	if (strcmp(r->job_mode, "serial") && strcmp(r->job_mode, "mpi"))
		return "job mode: serial or mpi";
	if (!local && (r->project == NULL || r->project[0] == '\0'))
		return "a project is needed (-A PROJECT, or project in "
		       "copal.conf)";
	if (!local && (r->queue == NULL || r->queue[0] == '\0'))
		return "a queue is needed (-q QUEUE)";
	if (r->project && r->project[0] && !safe_name(r->project)) {
		snprintf(b, len, "project '%s': only letters, digits and . _ "
		    "@ + - (at most 128)", r->project);
		return b;
	}
	if (r->queue && r->queue[0] && !safe_name(r->queue)) {
		snprintf(b, len, "queue '%s': only letters, digits and . _ @ "
		    "+ - (at most 128)", r->queue);
		return b;
	}
	if (r->wf_filter && r->wf_filter[0] && !safe_name(r->wf_filter)) {
		snprintf(b, len, "workflow filter '%s': only letters, digits "
		    "and . _ @ + - (at most 128)", r->wf_filter);
		return b;
	}
	if (r->flags && strpbrk(r->flags, "\n\r")) 
		return "--sched-flags: one line";
	return NULL;
}

static void
print_job(const Copal__BatchJob *j)
{
	printf("    %-13s %s\n", "command", j->script);
	printf("    %-13s %" PRIu64 "\n", "id", j->id);
	printf("    %-13s %s\n", "job_mode", j->job_mode);
	printf("    %-13s %u\n", "nodes", j->nodes);
	printf("    %-13s %s\n", "project", j->project);
	printf("    %-13s %s\n", "queue", j->queue);
	printf("    %-13s %s\n", "scheduler", j->scheduler);
	printf("    %-13s %s\n", "scheduler_id", j->scheduler_id);
	printf("    %-13s %s\n", "state", bj_name(j->state));
	printf("    %-13s %u\n", "wall_minutes", j->wall_minutes);
	printf("    %-13s %s\n", "wf_filter", j->wf_filter);
	if (j->message[0])
		printf("    %-13s %s\n", "message", j->message);
}

// Records, renders and submits one launcher job. Returns 0 and *out (the
// record as it stands after the submission, to free with
// copal__batch_job__free_unpacked), or an error with why; a job refused by
// the scheduler stays recorded in SUBMIT_FAILED (*out is set then too,
// when the broker answered).
static int
launch_submit(cpl_client *c, const char *db, const cpl_conf *conf,
    const launch_req *r, Copal__BatchJob **out, char *why, size_t wl)
{
	char copal_bin[PATH_MAX], script[PATH_MAX + 64], output[PATH_MAX + 64];
	char tbuf[256];
	const char *bad;
	*out = NULL;
	if ((bad = launch_check(conf, r, tbuf, sizeof(tbuf))) != NULL) {
		snprintf(why, wl, "%.600s", bad);
		return CPL_EINVAL;
	}
	const sched_ops *so = sched_find(conf->scheduler);
	if (so == NULL) {
		snprintf(why, wl, "scheduler %.600s unknown", conf->scheduler);
		return CPL_EINVAL;
	}
	if (copal_bin_dir(copal_bin, sizeof(copal_bin)) != 0) {
		snprintf(why, wl, "cannot find where the copal program is");
		return CPL_EINTERNAL;
	}
	if (!safe_path(db) || !safe_path(copal_bin)) {
		snprintf(why, wl, "the database path %.600s or copal's directory "
		    "%.600s has characters a job script cannot take unquoted "
		    "(use letters, digits and . _ - / + , = : @)", db,
		    copal_bin);
		return CPL_EINVAL;
	}
	restore_default_template(db, conf);
	char *text = read_file(conf->job_template, MAX_TEMPLATE, why, wl);
	if (text == NULL)
		return CPL_ENOTFOUND;

	// the record first: its id names the script
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__BatchJobAddRequest ar = COPAL__BATCH_JOB_ADD_REQUEST__INIT;
	Copal__BatchJob j = COPAL__BATCH_JOB__INIT;
	Copal__Reply *rep = NULL;
	j.scheduler = (char *)conf->scheduler;
	j.project = (char *)(r->project ? r->project : "");
	j.queue = (char *)(r->queue ? r->queue : "");
	j.nodes = r->nodes;
	j.wall_minutes = r->minutes;
	j.job_mode = (char *)r->job_mode;
	j.wf_filter = (char *)(r->wf_filter ? r->wf_filter : "");
	j.sched_flags = (char *)(r->flags ? r->flags : "");
	j.origin = (char *)r->origin;
	ar.job = &j;
	req.body_case = COPAL__REQUEST__BODY_BATCH_ADD;
	req.batch_add = &ar;
	int rv = call(c, &req, &rep, why, wl);
	if (rv) {
		free(text);
		return rv;
	}
	uint64_t id = rep->batch_add->job->id;
	copal__reply__free_unpacked(rep, NULL);

	snprintf(script, sizeof(script), "%s/qsubmit/qlaunch%" PRIu64 ".sh", db,
	    id);
	snprintf(output, sizeof(output), "%s/qsubmit/qlaunch%" PRIu64 ".out",
	    db, id);
	char sdir[PATH_MAX + 16];
	snprintf(sdir, sizeof(sdir), "%s/qsubmit", db);
	if (mkdir(sdir, 0755) != 0 && errno != EEXIST) {
		snprintf(why, wl, "%.1024s: %.600s", sdir, strerror(errno));
		goto failed;
	}
	// the launcher ends a little before the job: the margin, but never
	// more than a quarter of the job
	unsigned wall_s = r->minutes * 60u;
	unsigned margin = conf->wall_time_margin_seconds;
	if (margin > wall_s / 4)
		margin = wall_s / 4;
	char s_id[24], s_nodes[16], s_min[16], s_hms[32], s_lmin[32],
	    s_name[160], s_wf[160], base[64];
	const char *b = strrchr(db, '/');
	snprintf(base, sizeof(base), "%s", b && b[1] ? b + 1 : "db");
	for (char *p = base; *p; p++)
		if (!strchr("._-", *p) && !((*p >= 'a' && *p <= 'z') ||
		        (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	snprintf(s_id, sizeof(s_id), "%" PRIu64, id);
	snprintf(s_nodes, sizeof(s_nodes), "%u", r->nodes);
	snprintf(s_min, sizeof(s_min), "%u", r->minutes);
	snprintf(s_hms, sizeof(s_hms), "%02u:%02u:00", r->minutes / 60,
	    r->minutes % 60);
	snprintf(s_lmin, sizeof(s_lmin), "%.2f",
	    (double)(wall_s - margin) / 60.0);
	snprintf(s_name, sizeof(s_name), "copal-%s-%s", base, s_id);
	if (r->wf_filter && r->wf_filter[0])
		snprintf(s_wf, sizeof(s_wf), "--wf-filter %s", r->wf_filter);
	else
		snprintf(s_wf, sizeof(s_wf), "--consume-all");
	const tmpl_var vars[] = {
		{ "job_name", s_name }, { "qlaunch_id", s_id },
		{ "project", j.project }, { "queue", j.queue },
		{ "nodes", s_nodes }, { "wall_minutes", s_min },
		{ "time_minutes", s_min }, { "wall_time_hms", s_hms },
		{ "launcher_minutes", s_lmin }, { "job_mode", r->job_mode },
		{ "wf_filter_opt", s_wf }, { "copal_bin", copal_bin },
		{ "db_path", db }, { "output", output }, { "script", script },
		{ "template", conf->job_template },
	};
	char terr[512];
	char *rendered = tmpl_render(text, vars, sizeof(vars) / sizeof(vars[0]),
	    terr, sizeof(terr));
	if (rendered == NULL) {
		snprintf(why, wl, "template %.600s:%.600s", conf->job_template, terr);
		goto failed;
	}
	rv = write_script(script, rendered, why, wl);
	free(rendered);
	if (rv != 0)
		goto failed;
	char sid[128];
	if (sched_submit(so, script, output, r->flags,
	        conf->scheduler_timeout_seconds, sid, sizeof(sid), why,
	        wl) != 0)
		goto failed;
	free(text);
	// local jobs start at once
	Copal__BatchJobState st = so == sched_find("local") ? BJ(RUNNING) :
	                                                      BJ(QUEUED);
	char uwhy[512];
	if ((rv = bj_update(c, id, st, sid, NULL,
	         st == BJ(RUNNING) ? "running" : "submitted", script, out, uwhy,
	         sizeof(uwhy))) != 0) {
		snprintf(why, wl, "job %.600s was submitted as scheduler job %.600s, "
		    "but recording that failed: %.600s", s_id, sid, uwhy);
		return rv;
	}
	return 0;
failed:
	free(text);
	{
		char uwhy[256];
		bj_update(c, id, BJ(SUBMIT_FAILED), NULL, why, NULL, script, out,
		    uwhy, sizeof(uwhy));
	}
	return CPL_EINVAL;
}

// ------------------------------------------------------------ sync

// Where sync and the service say what they did: stderr for `ls queues`,
// the service's log for the service.
typedef void (*say_fn)(const char *fmt, ...);

static void
say_warn(const char *fmt, ...)
{
	va_list ap;
	char b[2048];
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	cli_warn("%s", b);
}

// Brings the states of the active batch jobs up to date with their
// schedulers. A scheduler that fails or hangs leaves its jobs as they were
// (said once per call); a job whose submission was cut off (no scheduler
// id long after it began) becomes SUBMIT_FAILED.
static int
queues_sync(cpl_client *c, const cpl_conf *conf, say_fn say)
{
	Copal__Reply *rep;
	char why[1024];
	int rv = bj_list(c, true, &rep, why, sizeof(why));
	if (rv) {
		say("cannot list batch jobs: %s", why);
		return rv;
	}
	Copal__BatchJobListReply *l = rep->batch_list;
	size_t n = l->n_jobs;
	sched_state *st = xcalloc(n ? n : 1, sizeof(*st));
	uint64_t now = (uint64_t)time(NULL) * 1000000u;
	uint64_t cutoff = (2u * conf->scheduler_timeout_seconds + 60u) *
	    1000000ull;
	const char *const *names = cpl_schedulers;
	for (size_t k = 0; names[k]; k++) {
		const sched_ops *so = sched_find(names[k]);
		size_t m = 0;
		Copal__BatchJob **who = xcalloc(n ? n : 1, sizeof(*who));
		for (size_t i = 0; i < n; i++) {
			Copal__BatchJob *j = l->jobs[i];
			if (strcmp(j->scheduler, names[k]) != 0)
				continue;
			if (j->scheduler_id[0] == '\0') {
				if (j->state == BJ(SUBMITTING) &&
				    now > j->submitted_us + cutoff &&
				    bj_update(c, j->id, BJ(SUBMIT_FAILED), NULL,
				        "the submission was cut off before the "
				        "scheduler answered (copal stopped?)",
				        NULL, NULL, NULL, why, sizeof(why)) == 0)
					say("qlaunch %" PRIu64 ": SUBMITTING -> "
					    "SUBMIT_FAILED (cut off)", j->id);
				continue;
			}
			st[m] = (sched_state){ .id = j->scheduler_id,
				.script = j->script[0] ? j->script : NULL };
			who[m++] = j;
		}
		if (m && sched_status(so, st, m,
		             conf->scheduler_timeout_seconds, why,
		             sizeof(why)) != 0) {
			say("cannot read job states from %s: %s (kept as they "
			    "were)", names[k], why);
			m = 0;
		} else if (m && why[0]) {
			say("%s", why);
		}
		for (size_t i = 0; i < m; i++) {
			Copal__BatchJob *j = who[i];
			Copal__BatchJobState to = st[i].state;
			if (to == BJ(UNSPECIFIED))
				continue;
			// a requeued job stays RUNNING for copal; its word
			// tells
			if (j->state == BJ(RUNNING) && to == BJ(QUEUED))
				to = BJ(RUNNING);
			if (to == j->state && strcmp(st[i].word, j->sched_state) == 0)
				continue;
			if (bj_update(c, j->id, to, NULL, NULL, st[i].word, NULL,
			        NULL, why, sizeof(why)) != 0) {
				say("qlaunch %" PRIu64 ": %s", j->id, why);
				continue;
			}
			if (to != j->state)
				say("qlaunch %" PRIu64 " (%s job %s): %s -> %s (%s)",
				    j->id, names[k], j->scheduler_id,
				    bj_name(j->state), bj_name(to), st[i].word);
		}
		free(who);
	}
	free(st);
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

// ------------------------------------------------------------ unfit tasks

// Asks the broker for the runnable backlog against the policy's queues.
static int
backlog_get(cpl_client *c, const cpl_conf *conf, const char *wf,
    uint32_t max_ids, Copal__Reply **rep, char *why, size_t wl)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__BacklogRequest b = COPAL__BACKLOG_REQUEST__INIT;
	Copal__QueueLimit lim[CPL_CONF_MAX_QUEUES], *lp[CPL_CONF_MAX_QUEUES];
	for (size_t i = 0; i < conf->nqueues; i++) {
		lim[i] = (Copal__QueueLimit)COPAL__QUEUE_LIMIT__INIT;
		lim[i].max_nodes = conf->queues[i].max_nodes;
		lim[i].gpus_per_node = conf->queues[i].gpus_per_node;
		lim[i].max_minutes = conf->queues[i].max_minutes;
		lp[i] = &lim[i];
	}
	b.workflow = (char *)(wf ? wf : "");
	b.queues = lp;
	b.n_queues = conf->nqueues;
	b.max_unfit_ids = max_ids;
	req.body_case = COPAL__REQUEST__BODY_BACKLOG;
	req.backlog = &b;
	return call(c, &req, rep, why, wl);
}

// "uuid8 name, uuid8 name, ..." of up to 10 tasks by id.
static void
describe_tasks(cpl_client *c, const uint64_t *ids, size_t n, char *out,
    size_t len)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__Reply *rep;
	char why[256];
	size_t off = 0;
	out[0] = '\0';
	f.ids = (uint64_t *)ids;
	f.n_ids = n;
	q.filter = &f;
	q.limit = (uint32_t)n;
	q.with_spec = true;
	req.body_case = COPAL__REQUEST__BODY_QUERY;
	req.query = &q;
	if (call(c, &req, &rep, why, sizeof(why)) != 0)
		return;
	for (size_t i = 0; i < rep->query->n_tasks && off < len; i++) {
		const Copal__Task *t = rep->query->tasks[i];
		int k = snprintf(out + off, len - off, "%s%.8s %s",
		    i ? ", " : "", t->uuid, t->spec ? t->spec->name : "");
		if (k < 0)
			break;
		off += (size_t)k;
	}
	copal__reply__free_unpacked(rep, NULL);
}

static void
policy_limits(const cpl_conf *conf, char *b, size_t len)
{
	size_t off = 0;
	b[0] = '\0';
	for (size_t i = 0; i < conf->nqueues && off < len; i++) {
		const cpl_queue_policy *q = &conf->queues[i];
		int k = snprintf(b + off, len - off,
		    "%s%s: <= %u nodes, %u GPUs per node, %u minutes",
		    i ? "; " : "", q->name, q->max_nodes, q->gpus_per_node,
		    q->max_minutes);
		if (k < 0)
			break;
		off += (size_t)k;
	}
}

// The sentence about runnable tasks that no queue of the policy can run
// (more nodes, GPUs or wall time than any allows), naming the first few.
static void
unfit_text(cpl_client *c, const cpl_conf *conf, const Copal__BacklogReply *b,
    char *out, size_t len)
{
	char lim[1024], who[1024];
	policy_limits(conf, lim, sizeof(lim));
	describe_tasks(c, b->unfit_ids, b->n_unfit_ids, who, sizeof(who));
	snprintf(out, len, "%" PRIu64 " runnable task%s can never run: no "
	    "queue of the policy in copal.conf fits %s (%s): %s%s", b->unfit,
	    b->unfit == 1 ? "" : "s", b->unfit == 1 ? "it" : "them", lim, who,
	    b->unfit > b->n_unfit_ids ? ", ..." : "");
}

// Warns on stderr about runnable tasks that no queue of conf's policy can
// run. Silent without a policy.
static void
warn_unfit(cpl_client *c, const cpl_conf *conf)
{
	char why[512], text[3072];
	Copal__Reply *rep;
	if (conf->nqueues == 0 ||
	    backlog_get(c, conf, NULL, 10, &rep, why, sizeof(why)) != 0)
		return;
	if (rep->backlog->unfit) {
		unfit_text(c, conf, rep->backlog, text, sizeof(text));
		cli_warn("%s", text);
	}
	copal__reply__free_unpacked(rep, NULL);
}

void
ls_warn_unfit(cpl_client *c)
{
	char db[PATH_MAX];
	cpl_conf *conf = xcalloc(1, sizeof(*conf));
	if (db_conf(db, sizeof(db), conf, true) == 0)
		warn_unfit(c, conf);
	free(conf);
}

// ------------------------------------------------------------ ls queues

int
ls_queues(cpl_client *c, out_fmt fmt)
{
	char db[PATH_MAX], why[1024];
	cpl_conf *conf = xcalloc(1, sizeof(*conf));
	Copal__Reply *rep = NULL;
	int rc;
	if ((rc = db_conf(db, sizeof(db), conf, false)) != 0)
		goto out;
	queues_sync(c, conf, say_warn);
	if ((rc = bj_list(c, false, &rep, why, sizeof(why))) != 0) {
		cli_err("%s", why);
		rc = EXIT_ERR;
		goto out;
	}
	static const tcol cols[] = {
		{ "id", COL_INT }, { "scheduler_id", COL_STR },
		{ "scheduler", COL_STR }, { "project", COL_STR },
		{ "queue", COL_STR }, { "nodes", COL_INT },
		{ "wall_minutes", COL_INT }, { "job_mode", COL_STR },
		{ "wf_filter", COL_STR }, { "state", COL_STR },
		{ "sched_state", COL_STR }, { "submitted", COL_STR },
		{ "origin", COL_STR }, { "message", COL_STR },
	};
	table *t = table_open(fmt, cols, sizeof(cols) / sizeof(cols[0]),
	    stdout);
	const Copal__BatchJobListReply *l = rep->batch_list;
	for (size_t i = 0; i < l->n_jobs; i++) {
		const Copal__BatchJob *j = l->jobs[i];
		char id[24], nodes[16], mins[16], when[48];
		snprintf(id, sizeof(id), "%" PRIu64, j->id);
		snprintf(nodes, sizeof(nodes), "%u", j->nodes);
		snprintf(mins, sizeof(mins), "%u", j->wall_minutes);
		if (fmt == FMT_TABLE)
			fmt_time_us(j->submitted_us, when, sizeof(when));
		else
			fmt_time_iso(j->submitted_us, when, sizeof(when));
		if (fmt == FMT_TABLE && strlen(when) > 19)
			when[19] = '\0'; // to the second
		const char *cells[] = { id, j->scheduler_id, j->scheduler,
			j->project, j->queue, nodes, mins, j->job_mode,
			j->wf_filter, bj_name(j->state), j->sched_state, when,
			j->origin, j->message };
		table_row(t, cells);
	}
	table_close(t);
	if (fmt == FMT_TABLE && conf->nqueues) {
		// the policy and what cannot fit it
		printf("\nqueue policy (%s): ", conf->scheduler);
		for (size_t i = 0; i < conf->nqueues; i++) {
			const cpl_queue_policy *q = &conf->queues[i];
			printf("%s%s %u-%u nodes, %u-%u min, <= %u jobs%s", i ? "; " : "",
			    q->name, q->min_nodes, q->max_nodes, q->min_minutes,
			    q->max_minutes, q->max_queued,
			    q->gpus_per_node ? ", GPUs" : "");
		}
		printf("\n");
		fflush(stdout);
		warn_unfit(c, conf);
	}
out:
	if (rep)
		copal__reply__free_unpacked(rep, NULL);
	free(conf);
	return rc;
}

// ------------------------------------------------------------ submit-launch

enum {
	KEY_PROJECT = 'A', KEY_QUEUE = 'q', KEY_NODES = 'n', KEY_TIME = 't',
	KEY_MODE = 512, KEY_WF, KEY_FLAGS, KEY_ONCE, KEY_PERIOD,
};

const cli_opt submit_opts[] = {
	{ "project", KEY_PROJECT, OPT_ARG, "PROJECT",
	    "account to charge (default: copal.conf's project)" },
	{ "queue", KEY_QUEUE, OPT_ARG, "QUEUE", "queue / partition" },
	{ "nodes", KEY_NODES, OPT_ARG, "N", "nodes of the job (1)" },
	{ "time-minutes", KEY_TIME, OPT_ARG, "MINUTES",
	    "wall time of the job; the launcher stops a little before" },
	{ "job-mode", KEY_MODE, OPT_ARG, "serial|mpi",
	    "launcher job mode (default: copal.conf's job_mode)" },
	{ "wf-filter", KEY_WF, OPT_ARG, "WF",
	    "run only tasks of this workflow" },
	{ "sched-flags", KEY_FLAGS, OPT_ARG, "\"FLAGS\"",
	    "extra words for the submit command (sbatch/qsub)" },
	{ NULL, 0, 0, NULL, NULL },
};

int
cmd_submit_launch(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	launch_req r = { .nodes = 1, .origin = "submit-launch" };
	cpl_conf *conf = xcalloc(1, sizeof(*conf));
	char db[PATH_MAX], err[1024], why[2048];
	cpl_client *c = NULL;
	bool have_time = false;
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0) {
		free(conf);
		return rc;
	}
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		switch (k) {
		case KEY_PROJECT: r.project = arg; break;
		case KEY_QUEUE: r.queue = arg; break;
		case KEY_NODES: rc = cli_u32("--nodes", arg, &r.nodes); break;
		case KEY_TIME:
			rc = cli_u32("--time-minutes", arg, &r.minutes);
			have_time = true;
			break;
		case KEY_MODE: r.job_mode = arg; break;
		case KEY_WF: r.wf_filter = arg; break;
		case KEY_FLAGS: r.flags = arg; break;
		default: rc = EXIT_USAGE; break;
		}
		if (rc)
			goto out;
	}
	if ((rc = cli_no_operands(&p)) != 0)
		goto out;
	if (!have_time) {
		rc = cli_usage("give the wall time: -t MINUTES");
		goto out;
	}
	if ((rc = db_conf(db, sizeof(db), conf, false)) != 0)
		goto out;
	if (r.project == NULL)
		r.project = conf->project;
	if (r.job_mode == NULL)
		r.job_mode = conf->job_mode;
	if (r.queue == NULL && strcmp(conf->scheduler, "local") == 0)
		r.queue = "local";
	const char *bad = launch_check(conf, &r, err, sizeof(err));
	if (bad) {
		rc = cli_usage("%s", bad);
		goto out;
	}
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	Copal__BatchJob *j = NULL;
	int rv = launch_submit(c, db, conf, &r, &j, why, sizeof(why));
	if (rv == 0) {
		printf("Submit OK: qlaunch %" PRIu64 "\n", j->id);
		print_job(j);
	} else {
		if (j)
			cli_err("Submit FAILED: qlaunch %" PRIu64 ": %s", j->id,
			    why);
		else
			cli_err("Submit FAILED: %s", why);
		rc = EXIT_ERR;
	}
	if (j)
		copal__batch_job__free_unpacked(j, NULL);
out:
	cpl_client_close(c);
	cli_parse_free(&p);
	free(conf);
	return rc;
}

// ------------------------------------------------------------ service

const cli_opt service_opts[] = {
	{ "once", KEY_ONCE, OPT_NOARG, NULL,
	    "one round (sync, cancel, submit), then exit" },
	{ "period", KEY_PERIOD, OPT_ARG, "SECONDS",
	    "seconds between rounds (default: copal.conf's "
	    "service_period_seconds)" },
	{ NULL, 0, 0, NULL, NULL },
};

static volatile sig_atomic_t svc_stop;
static FILE *svc_logf;

static void
svc_on_signal(int sig)
{
	(void)sig;
	svc_stop = 1;
}

static void
svc_log(const char *fmt, ...)
{
	char msg[4096], when[48];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fmt_time_us((uint64_t)time(NULL) * 1000000u, when, sizeof(when));
	when[19] = '\0';
	printf("%s service: %s\n", when, msg);
	fflush(stdout);
	if (svc_logf) {
		fprintf(svc_logf, "%s [%ld] %s\n", when, (long)getpid(), msg);
		fflush(svc_logf);
	}
}

// One service per database: an exclusive lock on DB/service.lock, held
// while the process lives (the kernel drops it when the process dies).
static int
svc_lock(const char *db, int *fdp)
{
	char path[PATH_MAX + 32], pid[32];
	snprintf(path, sizeof(path), "%s/service.lock", db);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		cli_err("%s: %s", path, strerror(errno));
		return EXIT_ERR;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		cli_err("a copal service already runs for %s%s%s%s", db,
		    pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
		close(fd);
		return EXIT_ERR;
	}
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		cli_err("%s: %s", path, strerror(errno));
		close(fd);
		return EXIT_ERR;
	}
	*fdp = fd;
	return 0;
}

typedef struct svc {
	cpl_client *c;
	const char *db;
	cpl_conf *conf;
	uint64_t last_unfit;
	char last_summary[512];
	char last_full[256];    // the last "every queue is full" said
	unsigned period;        // seconds between rounds
	unsigned fails;         // submissions failed in a row
	double retry_at;        // no submission before this (monotonic s)
} svc;

// After a failed submission the next one waits: the period, doubled with
// each failure in a row, at most 10 minutes, so that a scheduler that
// keeps refusing gets a few tries an hour, not a record every period.
#define SVC_MAX_BACKOFF_S 600.0

// Cancels the service's own jobs that waited in the queue too long;
// returns how many it cancelled.
static size_t
svc_cancel_stale(svc *s, const Copal__BatchJobListReply *l)
{
	const cpl_conf *conf = s->conf;
	char why[1024], msg[256];
	size_t n = 0;
	if (conf->service_max_wait_minutes == 0)
		return 0;
	uint64_t now = (uint64_t)time(NULL) * 1000000u;
	uint64_t limit = (uint64_t)conf->service_max_wait_minutes * 60000000u;
	for (size_t i = 0; i < l->n_jobs; i++) {
		const Copal__BatchJob *j = l->jobs[i];
		if (j->state != BJ(QUEUED) || strcmp(j->origin, "service") != 0 ||
		    now < j->submitted_us + limit)
			continue;
		const sched_ops *so = sched_find(j->scheduler);
		if (so == NULL)
			continue;
		if (sched_cancel(so, j->scheduler_id,
		        conf->scheduler_timeout_seconds, why, sizeof(why)) != 0) {
			svc_log("qlaunch %" PRIu64 ": cancel failed: %s (will "
			    "retry)", j->id, why);
			continue;
		}
		snprintf(msg, sizeof(msg), "queued longer than %u minutes: "
		    "cancelled by copal service", conf->service_max_wait_minutes);
		if (bj_update(s->c, j->id, BJ(CANCELLED), NULL, msg, "cancelled",
		        NULL, NULL, why, sizeof(why)) != 0) {
			svc_log("qlaunch %" PRIu64 ": %s", j->id, why);
			continue;
		}
		n++;
		svc_log("qlaunch %" PRIu64 " (%s job %s): cancelled after "
		    "waiting more than %u minutes", j->id, j->scheduler,
		    j->scheduler_id, conf->service_max_wait_minutes);
	}
	return n;
}

// The queue a new job goes to: the first in the policy with room, and
// among those the first that fits the largest task if any does.
static const cpl_queue_policy *
svc_pick_queue(const cpl_conf *conf, const size_t *active, uint32_t largest)
{
	const cpl_queue_policy *any = NULL;
	for (size_t i = 0; i < conf->nqueues; i++) {
		const cpl_queue_policy *q = &conf->queues[i];
		if (active[i] >= q->max_queued)
			continue;
		if (q->max_nodes >= largest)
			return q;
		if (any == NULL)
			any = q;
	}
	return any;
}

static void
svc_round(svc *s)
{
	const cpl_conf *conf = s->conf;
	Copal__Reply *lrep = NULL, *brep = NULL;
	char why[1024];
	queues_sync(s->c, conf, svc_log);
	if (bj_list(s->c, true, &lrep, why, sizeof(why)) != 0) {
		svc_log("cannot list batch jobs: %s", why);
		return;
	}
	if (svc_cancel_stale(s, lrep->batch_list) > 0) {
		// what is left active after the cancels
		copal__reply__free_unpacked(lrep, NULL);
		if (bj_list(s->c, true, &lrep, why, sizeof(why)) != 0) {
			svc_log("cannot list batch jobs: %s", why);
			return;
		}
	}
	if (backlog_get(s->c, conf, conf->wf_filter, 10, &brep, why,
	        sizeof(why)) != 0) {
		svc_log("cannot read the backlog: %s", why);
		copal__reply__free_unpacked(lrep, NULL);
		return;
	}
	const Copal__BacklogReply *b = brep->backlog;
	if (b->unfit != s->last_unfit) {
		if (b->unfit) {
			char text[3072];
			unfit_text(s->c, conf, b, text, sizeof(text));
			svc_log("%s", text);
		} else {
			svc_log("every runnable task fits the queue policy");
		}
		s->last_unfit = b->unfit;
	}
	// what is needed against what is queued or running
	uint64_t need = (b->node_units + CPL_NODE_UNITS - 1) / CPL_NODE_UNITS;
	uint64_t have = 0;
	size_t njobs = 0, active[CPL_CONF_MAX_QUEUES] = { 0 };
	const Copal__BatchJobListReply *l = lrep->batch_list;
	for (size_t i = 0; i < l->n_jobs; i++) {
		const Copal__BatchJob *j = l->jobs[i];
		if (!bj_active(j->state))
			continue;
		have += j->nodes;
		njobs++;
		for (size_t q = 0; q < conf->nqueues; q++)
			if (strcmp(conf->queues[q].name, j->queue) == 0)
				active[q]++;
	}
	char summary[512];
	snprintf(summary, sizeof(summary), "backlog %" PRIu64 " task%s = %"
	    PRIu64 " node%s; %zu job%s queued or running = %" PRIu64
	    " node%s", b->tasks, b->tasks == 1 ? "" : "s", need,
	    need == 1 ? "" : "s", njobs, njobs == 1 ? "" : "s", have,
	    have == 1 ? "" : "s");
	if (strcmp(summary, s->last_summary) != 0) {
		svc_log("%s", summary);
		snprintf(s->last_summary, sizeof(s->last_summary), "%s", summary);
	}
	if (need <= have)
		s->last_full[0] = '\0';
	if (need > have && now_s() < s->retry_at)
		need = have; // backing off after failed submissions
	while (need > have && njobs < conf->service_max_queued_jobs &&
	    !svc_stop) {
		const cpl_queue_policy *q = svc_pick_queue(conf, active,
		    b->max_nodes);
		if (q == NULL) {
			char full[256];
			snprintf(full, sizeof(full), "backlog needs %" PRIu64
			    " more node%s, but every queue has its maximum of "
			    "jobs", need - have, need - have == 1 ? "" : "s");
			if (strcmp(full, s->last_full) != 0)
				svc_log("%s", full); // said once, not every round
			snprintf(s->last_full, sizeof(s->last_full), "%s", full);
			break;
		}
		uint64_t gap = need - have;
		uint32_t nodes = gap > q->max_nodes ? q->max_nodes : (uint32_t)gap;
		if (nodes < b->max_nodes)
			nodes = b->max_nodes < q->max_nodes ? b->max_nodes :
			                                      q->max_nodes;
		if (nodes < q->min_nodes)
			nodes = q->min_nodes;
		launch_req r = { .project = conf->project, .queue = q->name,
			.job_mode = conf->job_mode, .wf_filter = conf->wf_filter,
			.origin = "service", .nodes = nodes,
			.minutes = q->max_minutes };
		Copal__BatchJob *j = NULL;
		int rv = launch_submit(s->c, s->db, conf, &r, &j, why,
		    sizeof(why));
		if (rv != 0) {
			double wait = s->period;
			for (unsigned k = 0; k < s->fails && wait < SVC_MAX_BACKOFF_S;
			     k++)
				wait *= 2;
			if (wait > SVC_MAX_BACKOFF_S)
				wait = SVC_MAX_BACKOFF_S;
			s->fails++;
			s->retry_at = now_s() + wait;
			svc_log("submit to %s (%u node%s, %u min) failed: %s "
			    "(retry in %.0f s)", q->name, nodes,
			    nodes == 1 ? "" : "s", r.minutes, why, wait);
			if (j)
				copal__batch_job__free_unpacked(j, NULL);
			break;
		}
		svc_log("submitted qlaunch %" PRIu64 " (%s job %s): %s, %u "
		    "node%s, %u min, %s", j->id, j->scheduler, j->scheduler_id,
		    q->name, nodes, nodes == 1 ? "" : "s", r.minutes,
		    r.job_mode);
		copal__batch_job__free_unpacked(j, NULL);
		s->fails = 0;
		have += nodes;
		njobs++;
		active[q - conf->queues]++;
	}
	copal__reply__free_unpacked(brep, NULL);
	copal__reply__free_unpacked(lrep, NULL);
}

int
cmd_service(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	bool once = false;
	uint32_t period = 0;
	char db[PATH_MAX], path[PATH_MAX + 32];
	cpl_conf *conf = xcalloc(1, sizeof(*conf));
	cpl_client *c = NULL;
	int k, rc, lockfd = -1;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0) {
		free(conf);
		return rc;
	}
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == KEY_ONCE)
			once = true;
		else if (k == KEY_PERIOD)
			rc = cli_u32("--period", arg, &period);
		else
			rc = EXIT_USAGE;
		if (rc)
			goto out;
	}
	if ((rc = cli_no_operands(&p)) != 0)
		goto out;
	if (period > 86400) {
		rc = cli_usage("--period: 1..86400 seconds");
		goto out;
	}
	if ((rc = db_conf(db, sizeof(db), conf, false)) != 0)
		goto out;
	if (conf->nqueues == 0) {
		cli_err("the service needs a queue policy: add queue.NAME.* "
		    "settings to %s/copal.conf (see the commented example "
		    "there)", db);
		rc = EXIT_ERR;
		goto out;
	}
	if (period == 0)
		period = conf->service_period_seconds;
	if ((rc = svc_lock(db, &lockfd)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/log/service.log", db);
	svc_logf = fopen(path, "ae");
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = svc_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	svc s = { .c = c, .db = db, .conf = conf, .period = period };
	svc_log("started for %s: scheduler %s, %zu queue%s, every %u s, at "
	    "most %u jobs", db, conf->scheduler, conf->nqueues,
	    conf->nqueues == 1 ? "" : "s", period,
	    conf->service_max_queued_jobs);
	while (!svc_stop) {
		svc_round(&s);
		if (once)
			break;
		// sleep in small steps: a signal may land on another thread
		for (uint32_t t = 0; t < period * 10u && !svc_stop; t++) {
			struct timespec ts = { 0, 100000000 };
			nanosleep(&ts, NULL);
		}
	}
	svc_log("stopped");
out:
	cpl_client_close(c);
	if (svc_logf) {
		fclose(svc_logf);
		svc_logf = NULL;
	}
	if (lockfd >= 0)
		close(lockfd);
	cli_parse_free(&p);
	free(conf);
	return rc;
}
