// Launcher jobs on the site's batch scheduler: the verbs copal
// submit-launch, copal ls queues, copal service. What they do is the
// scheduler library's (sched/, copal/sched.h): submitting, syncing the
// states from squeue/qstat, sizing jobs to the backlog; here are their
// options, what they print, and the service's log.
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "copal/conf.h"
#include "copal/log.h"
#include "copal/sched.h"
#include "copal/shapes.h"

// ------------------------------------------------------------ helpers

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
	printf("    %-13s %s\n", "state", sched_job_state_name(j->state));
	printf("    %-13s %u\n", "wall_minutes", j->wall_minutes);
	printf("    %-13s %s\n", "wf_filter", j->wf_filter);
	if (j->message[0])
		printf("    %-13s %s\n", "message", j->message);
}

// Where the library says what it did: stderr for `ls queues` and
// submit-launch (and the service's notices), the service's log for the
// service.
static void say_warn(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

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

// ------------------------------------------------------------ unfit tasks

// "N node(s), G GPU(s) per node, M minutes|WHEN0" of a shape.
static int
shape_text(char *b, size_t len, const cpl_shape *s, const char *when0)
{
	char m[32];
	if (s->minutes)
		snprintf(m, sizeof(m), "%u minutes", s->minutes);
	return snprintf(b, len, "%u node(s), %u GPU(s) per node, %s",
	    s->nodes, s->gpus_per_node, s->minutes ? m : when0);
}

// Runnable tasks that fit neither a launcher that ran on this database
// (copal/shapes.h) nor a queue of the policy: how many, the largest
// request, the largest launchers, the first few tasks.
static void
warn_unfit_launchers(cpl_client *c, const cpl_conf *conf,
    const cpl_shape *sh, size_t nsh)
{
	Copal__BacklogRequest b = COPAL__BACKLOG_REQUEST__INIT;
	Copal__QueueLimit lim[CPL_CONF_MAX_QUEUES + CPL_SHAPES_MAX];
	Copal__QueueLimit *lp[CPL_CONF_MAX_QUEUES + CPL_SHAPES_MAX];
	Copal__Reply *rep = NULL, *q = NULL;
	size_t n = 0;
	for (size_t i = 0; i < conf->nqueues; i++, n++) {
		lim[n] = (Copal__QueueLimit)COPAL__QUEUE_LIMIT__INIT;
		lim[n].max_nodes = conf->queues[i].max_nodes;
		lim[n].gpus_per_node = conf->queues[i].gpus_per_node;
		lim[n].max_minutes = conf->queues[i].max_minutes;
		lp[n] = &lim[n];
	}
	for (size_t i = 0; i < nsh; i++, n++) {
		lim[n] = (Copal__QueueLimit)COPAL__QUEUE_LIMIT__INIT;
		lim[n].max_nodes = sh[i].nodes;
		lim[n].gpus_per_node = sh[i].gpus_per_node;
		lim[n].max_minutes = sh[i].minutes;
		lp[n] = &lim[n];
	}
	b.workflow = (char *)"";
	b.queues = lp;
	b.n_queues = n;
	b.max_unfit_ids = 1000;
	if (cpl_call_backlog(c, &b, &rep) != 0 || rep->backlog->unfit == 0)
		goto out;
	const Copal__BacklogReply *bl = rep->backlog;
	Copal__Filter f = COPAL__FILTER__INIT;
	f.ids = bl->unfit_ids;
	f.n_ids = bl->n_unfit_ids;
	if (cpl_call_query(c, &f, 0, (uint32_t)f.n_ids, true, &q) != 0)
		goto out;
	cpl_shape big = { 0, 0, 0 };
	char who[1024], text[4096];
	size_t off = 0, wo = 0;
	who[0] = '\0';
	for (size_t i = 0; i < q->query->n_tasks; i++) {
		const Copal__Task *t = q->query->tasks[i];
		const Copal__Resources *r = t->spec ? t->spec->resources : NULL;
		if (i < 10 && wo < sizeof(who)) {
			int k = snprintf(who + wo, sizeof(who) - wo, "%s%.8s %s",
			    i ? ", " : "", t->uuid, t->spec ? t->spec->name : "");
			wo += k > 0 ? (size_t)k : 0;
		}
		if (r == NULL)
			continue;
		uint32_t nodes = r->num_nodes ? r->num_nodes : 1;
		uint32_t gpus = r->gpus_per_rank *
		    (r->ranks_per_node ? r->ranks_per_node : 1);
		big.nodes = nodes > big.nodes ? nodes : big.nodes;
		big.gpus_per_node = gpus > big.gpus_per_node ? gpus :
		    big.gpus_per_node;
		big.minutes = r->wall_time_minutes > big.minutes ?
		    r->wall_time_minutes : big.minutes;
	}
	off += (size_t)snprintf(text, sizeof(text), "%" PRIu64 " runnable "
	    "task(s) can never run: no launcher that ran on this database%s "
	    "fits them: the largest request is ", bl->unfit, conf->nqueues ?
	    " nor any queue of copal.conf" : "");
	off += (size_t)shape_text(text + off, sizeof(text) - off, &big,
	    "no wall time");
	off += (size_t)snprintf(text + off, sizeof(text) - off, "%s; the "
	    "launchers had ", bl->unfit > q->query->n_tasks ? " (among the "
	    "first 1000)" : "");
	for (size_t i = 0; i < nsh && off < sizeof(text); i++) {
		if (i)
			off += (size_t)snprintf(text + off, sizeof(text) - off,
			    "; ");
		if (off < sizeof(text))
			off += (size_t)shape_text(text + off,
			    sizeof(text) - off, &sh[i], "no wall-time limit");
	}
	for (size_t i = 0; i < conf->nqueues && off < sizeof(text); i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "%s%s: <= %u nodes, %u GPUs per node, %u minutes",
		    i ? "; " : "; the queues: ", conf->queues[i].name,
		    conf->queues[i].max_nodes, conf->queues[i].gpus_per_node,
		    conf->queues[i].max_minutes);
	if (off < sizeof(text))
		snprintf(text + off, sizeof(text) - off, ": %s%s", who,
		    bl->unfit > 10 ? ", ..." : "");
	cli_warn("%s", text);
out:
	cpl_reply_free(q);
	cpl_reply_free(rep);
}

// Warns on stderr about runnable tasks that no queue of conf's policy can
// run, nor any launcher that ran on the database db (NULL: the policy
// only). Silent when neither is known.
static void
warn_unfit(cpl_client *c, const cpl_conf *conf, const char *db)
{
	cpl_shape sh[CPL_SHAPES_MAX];
	size_t nsh = db ? cpl_shapes_read(db, sh, CPL_SHAPES_MAX) : 0;
	if (nsh) {
		warn_unfit_launchers(c, conf, sh, nsh);
		return;
	}
	char why[512], text[3072];
	Copal__Reply *rep;
	if (conf->nqueues == 0 ||
	    sched_backlog(c, conf, NULL, 10, &rep, why, sizeof(why)) != 0)
		return;
	if (rep->backlog->unfit) {
		sched_unfit_text(c, conf, rep->backlog, text, sizeof(text));
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
		warn_unfit(c, conf, db);
	free(conf);
}

// ------------------------------------------------------------ ls queues

int
ls_queues(cpl_client *c, out_fmt fmt, bool verbose)
{
	char db[PATH_MAX], why[1024];
	cpl_conf *conf = xcalloc(1, sizeof(*conf));
	Copal__Reply *rep = NULL;
	int rc;
	if ((rc = db_conf(db, sizeof(db), conf, false)) != 0)
		goto out;
	sched_sync(c, conf, say_warn);
	if ((rc = sched_job_list(c, false, &rep, why, sizeof(why))) != 0) {
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
		{ "origin", COL_STR }, { "ran", COL_INT },
		{ "running", COL_INT }, { "failed", COL_INT },
		{ "message", COL_STR }, { "sched_reason", COL_STR },
	};
	// --verbose: the scheduler's longer words (squeue's reason, ...)
	size_t ncols = sizeof(cols) / sizeof(cols[0]) - (verbose ? 0 : 1);
	table *t = table_open(fmt, cols, ncols, stdout);
	const Copal__BatchJobListReply *l = rep->batch_list;
	for (size_t i = 0; i < l->n_jobs; i++) {
		const Copal__BatchJob *j = l->jobs[i];
		char id[24], nodes[16], mins[16], when[48], ran[24], running[24],
		    failed[24];
		snprintf(ran, sizeof(ran), "%" PRIu64, j->tasks_ran);
		snprintf(running, sizeof(running), "%" PRIu64, j->tasks_running);
		snprintf(failed, sizeof(failed), "%" PRIu64, j->tasks_failed);
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
			j->wf_filter, sched_job_state_name(j->state), j->sched_state, when,
			j->origin, ran, running, failed, j->message,
			j->sched_reason };
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
		warn_unfit(c, conf, NULL);
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
	sched_launch_req r = { .nodes = 1, .origin = "submit-launch" };
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
	const char *bad = sched_launch_check(conf, &r, err, sizeof(err));
	if (bad) {
		rc = cli_usage("%s", bad);
		goto out;
	}
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	Copal__BatchJob *j = NULL;
	int rv = sched_launch(c, db, conf, &r, say_warn, &j, why,
	    sizeof(why));
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

static void
svc_on_signal(int sig)
{
	(void)sig;
	svc_stop = 1;
}

static void svc_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

// The common logger (copal/log.h), set up by cmd_service: stdout
// "2024-05-01 12:00:00 service: message", and log/service.log
// "2024-05-01 12:00:00 [pid] message" (local time).
static void
svc_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cpl_vlog(CPL_LOG_NOTICE, NULL, fmt, ap);
	va_end(ap);
}

int
cmd_service(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	bool once = false;
	uint32_t period = 0;
	char db[PATH_MAX], path[PATH_MAX + 32], why[PATH_MAX + 128];
	cpl_conf *conf = xcalloc(1, sizeof(*conf));
	cpl_client *c = NULL;
	sched_service *s = NULL;
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
		    "settings to %s/%s (see the commented example there)", db,
		    cpl_dbpart_name(CPL_DB_CONF));
		rc = EXIT_ERR;
		goto out;
	}
	if (period == 0)
		period = conf->service_period_seconds;
	if (sched_service_lock(db, &lockfd, why, sizeof(why)) != 0) {
		cli_err("%s", why);
		rc = EXIT_ERR;
		goto out;
	}
	static const cpl_log_style out_style = { CPL_LOG_LOCAL_S, "service:",
		false, false, false }, file_style = { CPL_LOG_LOCAL_S, NULL,
		false, false, true };
	cpl_log_add(stdout, NULL, &out_style);
	cpl_dbpath(db, CPL_DB_SERVICE_LOG, path, sizeof(path));
	(void)cpl_log_add(NULL, path, &file_style); // none: stdout only
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = svc_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	s = sched_service_new(c, db, conf, period, svc_log, say_warn,
	    &svc_stop);
	svc_log("started for %s: scheduler %s, %zu queue%s, every %u s, at "
	    "most %u jobs", db, conf->scheduler, conf->nqueues,
	    conf->nqueues == 1 ? "" : "s", period,
	    conf->service_max_queued_jobs);
	while (!svc_stop) {
		sched_service_round(s);
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
	sched_service_free(s);
	cpl_client_close(c);
	cpl_log_close();
	if (lockfd >= 0)
		close(lockfd);
	cli_parse_free(&p);
	free(conf);
	return rc;
}

// ------------------------------------------------------------ queue rm

const cli_opt queue_opts[] = {
	{ NULL, 0, 0, NULL, NULL },
};

int
cmd_queue(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	char db[PATH_MAX];
	cpl_conf *conf = xcalloc(1, sizeof(*conf));
	cpl_client *c = NULL;
	uint64_t *ids = NULL;
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0) {
		free(conf);
		return rc;
	}
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (p.nargs == 0 || strcmp(p.argv[p.first], "rm") != 0) {
		rc = cli_usage("queue what? rm ID... (cancel batch jobs)");
		goto out;
	}
	size_t n = (size_t)p.nargs - 1;
	if (n == 0) {
		rc = cli_usage("queue rm: which batch jobs? (ids from copal ls "
		    "queues)");
		goto out;
	}
	// every id is read before anything is cancelled
	ids = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		if ((rc = cli_u64("queue rm", p.argv[p.first + 1 + i],
		         &ids[i])) != 0)
			goto out;
		if (ids[i] == 0) {
			rc = cli_usage("queue rm: batch job ids start at 1");
			goto out;
		}
	}
	if ((rc = db_conf(db, sizeof(db), conf, false)) != 0)
		goto out;
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char why[2048];
		Copal__BatchJob *j = NULL;
		int rv = sched_job_cancel(c, conf, ids[i], &j, why, sizeof(why));
		if (rv == 0) {
			printf("qlaunch %" PRIu64 " (%s job %s): cancelled\n",
			    j->id, j->scheduler, j->scheduler_id);
		} else {
			cli_err("%s", why);
			if (rc == 0 || rv == CPL_ENOTFOUND)
				rc = rv == CPL_ENOTFOUND ? EXIT_NOTFOUND :
				    EXIT_ERR;
		}
		if (j)
			copal__batch_job__free_unpacked(j, NULL);
	}
out:
	free(ids);
	cpl_client_close(c);
	cli_parse_free(&p);
	free(conf);
	return rc;
}
