// copal: the command line of a copal database.
//
//   copal [--db DIR] VERB [options] [arguments]
//
// Every verb is one row of the table below (tmux's cmd_entry): its name,
// usage, one line of help, its option tables and the function that runs it.
// A verb may be abbreviated to any unique prefix.
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db_archive.h"
#include "copal/version.h"
#include "events.h"

#define OPTS(...) ((const cli_opt *const[]){ __VA_ARGS__, common_opts, NULL })

static const cli_verb verbs[] = {
	{ "app", "--name NAME --executable CMD [options]",
	    "add a new application definition", NULL, OPTS(app_opts), cmd_app },
	{ "job", "--name NAME --app APP [options]  |  --from-file FILE.jsonl",
	    "add a new task (or many, from a JSON-lines file)",
	    "Shows the task and asks \"Confirm adding job to DB [y/n]\" unless\n"
	    "--yes; prints the new task's uuid.\n"
	    "--from-file: one JSON object per line with the fields below\n"
	    "(num_nodes or num-nodes, env as an object, parents as uuid\n"
	    "prefixes or integer ids), plus \"key\" to name a task and\n"
	    "\"parent_keys\" to depend on tasks named on earlier lines.\n"
	    "Lines go to the broker in batches, each all or nothing.\n",
	    OPTS(job_opts, spec_opts), cmd_job },
	{ "dep", "PARENT CHILD | --remove PARENT CHILD | --replace CHILD "
	    "[PARENT...]", "add, remove or replace dependencies between "
	    "existing tasks", "A child's parents change only before it "
	    "starts; its state follows\n(AWAITING_PARENTS or READY) and "
	    "each change is in its history.\n", OPTS(dep_opts), cmd_dep },
	{ "ls", "[jobs|apps|wf|queues] [options]",
	    "list tasks, applications, tasks by workflow, or batch jobs",
	    "Default columns: job_id | name | workflow | application | state.\n"
	    "Filters combine (all must hold). Tables size their columns from\n"
	    "the first 10,000 rows and stream the rest.\n",
	    OPTS(ls_opts, filter_opts, format_opts), cmd_ls },
	{ "modify", "ID FIELD VALUE  |  [filters] FIELD VALUE",
	    "change a field (or the state) of one task or of every task a "
	    "filter selects", modify_more, OPTS(modify_opts, filter_opts),
	    cmd_modify },
	{ "rm", "ID...  |  [filters]  |  app NAME",
	    "remove tasks (or an application)", NULL, OPTS(rm_opts, filter_opts),
	    cmd_rm },
	{ "killjob", "ID...  |  [filters]",
	    "kill tasks: USER_KILLED, running ones are stopped", NULL,
	    OPTS(killjob_opts, filter_opts), cmd_killjob },
	{ "mkchild", "--name NAME --app APP [options]",
	    "add a child of the running task ($COPAL_TASK_ID), without asking",
	    "The child joins the parent's workflow unless --workflow is given.\n",
	    OPTS(mkchild_opts, spec_opts), cmd_mkchild },
	{ "history", "ID", "show a task's state changes (ls --history --id ID)",
	    NULL, OPTS(history_opts, format_opts), cmd_history },
	{ "init", "DIR", "create a new database in DIR", NULL, OPTS(init_opts),
	    cmd_init },
	{ "activate", "DIR",
	    "print shell code that selects DIR: eval \"$(copal activate DIR)\"",
	    "Starts DIR's broker if it is not running. DIR may also be the\n"
	    "name of a database listed in ~/.copal/databases. The script\n"
	    "copalactivate does the same: source copalactivate DIR\n",
	    OPTS(activate_opts), cmd_activate },
	{ "deactivate", "", "print shell code that undoes activate: "
	    "eval \"$(copal deactivate)\"", NULL, OPTS(activate_opts),
	    cmd_deactivate },
	{ "which", "[--list]", "print the current database", NULL,
	    OPTS(which_opts), cmd_which },
	{ "log", "[-n N] [-f]", "show the end of the broker's log", NULL,
	    OPTS(log_opts), cmd_log },
	{ "server", "start|stop|status [--tcp URL] | --add-user NAME [--role R]"
	    " | --drop-user NAME | --list-users | --list-active-connections",
	    "start, stop or query the database's broker; manage its users",
	    "start returns once the broker answers (\"already running\" is\n"
	    "success); stop sends SIGTERM and waits (SIGKILL after 10 s);\n"
	    "status exits 1 when no broker runs.\n"
	    "Users: the owner is admin; --add-user lets another unix user in\n"
	    "through the local socket and writes a credential file for TCP;\n"
	    "roles read < write < admin; only an admin manages users.\n",
	    OPTS(server_opts), cmd_server },
	{ "launcher", "--job-mode serial|mpi [options]",
	    "run tasks here or in a batch job (runs copal-launcher)",
	    "Every option is the launcher's: see copal launcher --help.\n",
	    OPTS(launcher_opts), cmd_launcher },
	{ "submit-launch", "-A PROJECT -q QUEUE -n NODES -t MINUTES "
	    "--job-mode serial|mpi [--wf-filter WF] [--sched-flags \"...\"]",
	    "queue a launcher job on the site's batch scheduler",
	    "Renders the database's job-script template (copal.conf's\n"
	    "job_template, default job-templates/<scheduler>.tmpl) into\n"
	    "qsubmit/qlaunchN.sh and submits it to copal.conf's scheduler\n"
	    "(slurm: sbatch, pbs/cobalt: qsub, local: started here at once).\n"
	    "The job is recorded in the broker: copal ls queues lists it.\n"
	    "The launcher in the job stops wall_time_margin_seconds before\n"
	    "the job's end (at most a quarter of it); the script forwards\n"
	    "SIGTERM to it. -A and -q are needed except with the local\n"
	    "scheduler; -A defaults to copal.conf's project.\n",
	    OPTS(submit_opts), cmd_submit_launch },
	{ "queue", "rm ID...", "cancel batch jobs (copal ls queues lists them)",
	    "rm: scancel (slurm), qdel (pbs, cobalt) or, for a local job,\n"
	    "SIGTERM to its session (SIGKILL if it outlives half of\n"
	    "scheduler_timeout_seconds); waits until the scheduler no longer\n"
	    "runs it, then records it CANCELLED. The broker then ends the\n"
	    "leases its launchers left: tasks claimed but not started go back\n"
	    "to the queue, running ones become RUN_TIMEOUT and are retried by\n"
	    "their policy (auto_timeout_retry). A job that has ended is an\n"
	    "error, and nothing changes.\n",
	    OPTS(queue_opts), cmd_queue },
	{ "service", "[--once] [--period SECONDS]",
	    "keep launcher jobs queued to match the backlog (elastic)",
	    "Every period: syncs the batch jobs' states from the scheduler;\n"
	    "cancels its own jobs queued longer than service_max_wait_minutes;\n"
	    "compares the runnable backlog's node footprint (num_nodes /\n"
	    "node_packing_count) with the nodes of jobs queued or running, and\n"
	    "submits jobs for the gap within the queue policy of copal.conf\n"
	    "(queue.NAME.*: node and wall-time bands, jobs per queue;\n"
	    "service_max_queued_jobs in all). Reports runnable tasks no queue\n"
	    "can run. One service per database (service.lock). Logs to stdout\n"
	    "and log/service.log. SIGTERM or Ctrl-C stops it.\n",
	    OPTS(service_opts), cmd_service },
	{ "db", "stats [--json] | compact | check | archive --before DATE "
	    "[--wf WF] [-o FILE]",
	    "a big database: its size, compaction, archiving finished tasks",
	    "stats: data.mdb's size, the pages in use and free (the freelist),\n"
	    "the map and its free space, tasks by state, events, and every\n"
	    "table's entries and pages. Read from a snapshot beside the running\n"
	    "broker (LMDB readers are safe beside its writer); --json for a\n"
	    "script.\n"
	    "compact: LMDB's compacting copy (mdb_copy -c) written beside\n"
	    "data.mdb, made durable, then renamed over it. The broker must be\n"
	    "stopped (copal server stop): a running one is refused and nothing\n"
	    "changes; a failed or interrupted copy leaves data.mdb as it was.\n"
	    "check: rebuilds every index and counter from the records and\n"
	    "compares (cpl_store_check); the broker must be stopped.\n"
	    "archive: moves finished tasks (JOB_FINISHED, FAILED, USER_KILLED,\n"
	    "PARENT_KILLED) whose last event is before DATE, with all their\n"
	    "events, out of the store into a gzip'd JSON-lines file (zcat reads\n"
	    "it): one line per task, {\"task\": as ls --json, \"events\": as\n"
	    "export}. A task goes only with all its children (a parent of an\n"
	    "unfinished task stays). Through the broker, in chunks of at most\n"
	    "10,000 tasks, each written and fsync'd before it is removed.\n"
	    "Needs the admin role when the database has users.\n"
	    "DATE: 2026-11-25T15:00:00Z, 2026-11-25, -30d, epoch seconds, now.\n",
	    OPTS(db_opts), cmd_db },
	{ "export", "[--format jsonl|csv|chrome] [--wf WF] [--since T] "
	    "[--until T] [-o FILE]",
	    "write the event log: JSON lines, CSV, or a trace for Perfetto",
	    "Every state change of every task, in log order, streamed a page\n"
	    "(100,000 events) at a time. Fields: seq, task, uuid, name,\n"
	    "workflow, from, to, time (UTC, microseconds), time_us, launcher,\n"
	    "lease, node, attempt, return_code, message, commit_us, user,\n"
	    "batch_job, scheduler_job_id (the batch job of the event's lease;\n"
	    "0 and \"\": a launcher started by hand). time is\n"
	    "when it happened: by the launcher's clock for a launcher's report\n"
	    "(a process started or ended), else when the broker committed it\n"
	    "(commit_us; the log's order, what --since and --until select).\n"
	    "--format chrome: Trace Event Format JSON for https://ui.perfetto.dev\n"
	    "or chrome://tracing: one process per launcher, one thread per\n"
	    "node slot (host/slot), one span per run (RUNNING to its end),\n"
	    "colored by outcome; a run without an end is shown up to the last\n"
	    "event as \"running\".\n"
	    "T: 2026-11-25T15:00:00Z, \"2026-11-25 15:00:00\" (local time),\n"
	    "-10m, -2h, -30s, -1d (before the broker's clock), or epoch seconds.\n",
	    OPTS(export_opts, window_opts), cmd_export },
	{ "stats", "[--wf WF] [--since T] [--until T] [--plot DIR] "
	    "[--by-runs] [--format table|json]",
	    "profile a campaign: throughput, utilization, run times, errors",
	    "One pass over the event log (see export). Reports the tasks by\n"
	    "state now; runs, errors (RUN_ERROR), timeouts (RUN_TIMEOUT),\n"
	    "failures; tasks reaching JOB_FINISHED per minute (overall and per\n"
	    "clock minute); utilization: busy nodes over time, a run counting\n"
	    "num_nodes / node_packing_count nodes (specs fetched by id), or\n"
	    "runs with --by-runs; run time (RUNNING to the end of the run) and\n"
	    "queue wait (READY or RESTART_READY to RUNNING): count, min, median,\n"
	    "p95, max, mean; and a summary per workflow.\n"
	    "Memory stays bounded: per task only while it waits or runs;\n"
	    "median and p95 are exact up to 100,000 values and estimated from\n"
	    "a uniform random sample of 100,000 beyond (count, min, max, mean\n"
	    "stay exact). Runs and waits that began before --since are not\n"
	    "counted.\n"
	    "--plot DIR: DIR/utilization.svg and DIR/throughput.svg, at most\n"
	    "600 points each (buckets of 1 s, 2 s, 10 s, 20 s, 1 min, ...).\n",
	    OPTS(stats_opts, window_opts), cmd_stats },
	{ "top", "[--interval S] [--once] [--wf WF]",
	    "live view: tasks by state, throughput, running launchers",
	    "Redraws every S seconds (default 2): tasks by state, tasks\n"
	    "finished per second over the last interval, and the launchers\n"
	    "holding leases (id, tasks held, time to the lease's deadline,\n"
	    "owner). q or Ctrl-C quits. Not on a terminal, or with --once, the\n"
	    "frames are printed one after the other.\n",
	    OPTS(top_opts), cmd_top },
	{ "web", "[--listen HOST:PORT] [--allow-actions]",
	    "serve a live view of the database to a browser",
	    "Serves the page and its JSON API (README: \"copal web\") until\n"
	    "Ctrl-C or SIGTERM, and prints the URL to open: it carries the\n"
	    "database's token (?token=...), which the page keeps in a cookie;\n"
	    "API clients send \"Authorization: Bearer TOKEN\" (the secret file).\n"
	    "Default 127.0.0.1:8765 (reach it through an SSH tunnel:\n"
	    "ssh -L 8765:127.0.0.1:8765 login1). Any other address is served\n"
	    "over HTTPS with the database's certificate (tls.crt, tls.key).\n"
	    "Read-only unless --allow-actions (kill, restart a task).\n",
	    OPTS(web_opts), cmd_web },
	{ "make_dummies", "N [--wf WF]",
	    "add N tasks of the app \"dummy\" (/bin/true), for testing", NULL,
	    OPTS(dummies_opts), cmd_make_dummies },
	{ "completion", "bash",
	    "print a bash completion script of every verb and option",
	    "Enable it in this shell: source <(copal completion bash)\n"
	    "or for everyone: copal completion bash > "
	    "/etc/bash_completion.d/copal\n",
	    OPTS(completion_opts), cmd_completion },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

const cli_verb *
cli_verb_table(size_t *n)
{
	*n = NVERBS;
	return verbs;
}

static void
help(FILE *fp)
{
	fprintf(fp,
	    "usage: copal [--db DIR] VERB [options] [arguments]\n"
	    "\n"
	    "copal %s: many-task workflows on HPC machines (a C Balsam)\n"
	    "\n"
	    "verbs:\n", COPAL_VERSION);
	for (size_t i = 0; i < NVERBS; i++)
		fprintf(fp, "  %-14s%s\n", verbs[i].name, verbs[i].help);
	fprintf(fp,
	    "\n"
	    "copal VERB --help shows a verb's options.\n"
	    "\n"
	    "The database is --db DIR, else $COPAL_DB (set by copal activate).\n"
	    "Verbs that need the broker start it when it is not running;\n"
	    "set COPAL_NO_AUTOSTART=1 to get an error instead. COPAL_TIMEOUT:\n"
	    "seconds to wait for an answer (10, three tries).\n"
	    "\n"
	    "Exit codes: 0 done, 1 refused by the broker or a system error,\n"
	    "2 bad command line, 3 no such task, app or database.\n");
}

static const cli_verb *
find_verb(const char *name)
{
	const cli_verb *found = NULL;
	size_t len = strlen(name);
	for (size_t i = 0; i < NVERBS; i++) {
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
		if (len && strncmp(verbs[i].name, name, len) == 0) {
			if (found) {
				fprintf(stderr, "copal: %s is ambiguous (%s, %s, "
				    "...)\n", name, found->name, verbs[i].name);
				exit(EXIT_USAGE);
			}
			found = &verbs[i];
		}
	}
	return found;
}

int
main(int argc, char **argv)
{
	int i = 1;
	cpl_set_oom_handler(cli_oom);
	spec_cli_init(); // the options and help made from the spec's table
	// options before the verb: --db, --help, --version
	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help(stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			printf("copal %s\n", COPAL_VERSION);
			return EXIT_OK;
		} else if (!strcmp(a, "--db") && i + 1 < argc) {
			cli_db_opt = argv[i + 1];
			i += 2;
		} else if (!strncmp(a, "--db=", 5)) {
			cli_db_opt = a + 5;
			i++;
		} else {
			fprintf(stderr, "copal: unknown option %s (see copal "
			    "--help)\n", a);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help")) {
		const cli_verb *v = i + 1 < argc ? find_verb(argv[i + 1]) : NULL;
		if (v)
			cli_verb_help(v, stdout);
		else
			help(stdout);
		return EXIT_OK;
	}
	const cli_verb *v = find_verb(argv[i]);
	if (v == NULL) {
		fprintf(stderr, "copal: unknown verb %s (see copal --help)\n",
		    argv[i]);
		return EXIT_USAGE;
	}
	cli_verb_name = v->name;
	int rc = v->exec(v, argc - i, argv + i);
	if (fflush(stdout) != 0 && rc == 0) {
		cli_err("cannot write the output");
		rc = EXIT_ERR;
	}
	return rc;
}
