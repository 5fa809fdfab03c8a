// copal stats: a campaign's profile from one pass over the event log
// (stats_calc.c), printed as a table or JSON, plotted with --plot DIR
// (stats_svg.c). What is kept and how: stats.h.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "stats.h"

enum { KEY_PLOT = 620, KEY_BY_RUNS };

const cli_opt stats_opts[] = {
	{ "plot", KEY_PLOT, OPT_ARG, "DIR",
	    "also write DIR/utilization.svg and DIR/throughput.svg" },
	{ "by-runs", KEY_BY_RUNS, OPT_NOARG, NULL,
	    "utilization in runs, not nodes (no task specs are fetched)" },
	{ "format", KEY_FORMAT, OPT_ARG, "FMT", "table (default) or json" },
	{ NULL, 0, 0, NULL, NULL },
};

// ------------------------------------------------------------ reports

static int
fetch_counts(cpl_client *c, const ev_window *w, Copal__Reply **rep)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	if (w->workflow)
		f.workflow = (char *)w->workflow;
	f.tags = (char **)w->tags;
	f.n_tags = w->ntags;
	return cli_call_rc(c, cpl_call_count(c,
	    w->workflow || w->ntags ? &f : NULL, rep));
}

static int
fetch_workflows(struct stats *st)
{
	Copal__Reply *rep;
	int rc;
	if ((rc = cli_call_rc(st->c, cpl_call_workflow_list(st->c, &rep))) != 0)
		return rc;
	for (size_t i = 0; i < rep->workflow_list->n_workflows; i++) {
		const Copal__WorkflowCount *w = rep->workflow_list->workflows[i];
		if (st->w->workflow && strcmp(st->w->workflow, w->name) != 0)
			continue;
		// a workflow's task count is of all its tasks: under --tag,
		// the rows come from the tagged tasks' events only
		if (st->w->ntags)
			continue;
		stats_wf(st, w->name, NULL)->tasks = w->tasks;
	}
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

static double
act_seconds(const struct stats *st)
{
	return st->act_end > st->act_start ?
	    (double)(st->act_end - st->act_start) / US : 0;
}

static json_t *
dist_json(dist *d)
{
	if (d->n == 0)
		return json_pack("{s:i}", "count", 0);
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:b}", "count",
	    (json_int_t)d->n, "min", d->min, "median", dist_q(d, 0.5), "p95",
	    dist_q(d, 0.95), "max", d->max, "mean", d->sum / (double)d->n,
	    "exact", d->n <= SAMPLE_CAP);
}

static void
iso(uint64_t us, char *buf)
{
	fmt_time_iso(us, buf, 40);
}

static int
cmp_wf(const void *a, const void *b, void *arg)
{
	const strset *s = arg;
	return strcmp(s->strs[*(const uint32_t *)a], s->strs[*(const uint32_t *)b]);
}

// Workflow numbers in name order (those with tasks or events).
static uint32_t *
wf_order(const struct stats *st, size_t *n)
{
	uint32_t *v = xmalloc((st->wfs.n ? st->wfs.n : 1) * sizeof(uint32_t));
	size_t k = 0;
	for (uint32_t i = 0; i < st->wfs.n; i++) {
		const struct wfstat *w = &st->wf[i];
		if (w->tasks || w->runs || w->finished || w->failed ||
		    w->errors || w->timeouts || w->killed)
			v[k++] = i;
	}
	qsort_r(v, k, sizeof(uint32_t), cmp_wf, (void *)&st->wfs);
	*n = k;
	return v;
}

static void
report_json(struct stats *st, const Copal__CountReply *cnt)
{
	char a[40], b[40];
	json_t *o = json_object(), *states = json_object();
	double span = act_seconds(st);
	json_object_set_new(o, "workflow", st->w->workflow ?
	    json_string(st->w->workflow) : json_null());
	iso(st->w->since_us, a);
	json_object_set_new(o, "since", st->w->since_us ? json_string(a) :
	                                                  json_null());
	iso(st->w->until_us, a);
	json_object_set_new(o, "until", st->w->until_us ? json_string(a) :
	                                                  json_null());
	for (size_t s = 1; s < cnt->n_by_state; s++)
		if (cnt->by_state[s])
			json_object_set_new(states, cpl_state_name((int)s),
			    json_integer((json_int_t)cnt->by_state[s]));
	json_object_set_new(o, "states", states);
	json_object_set_new(o, "tasks", json_integer((json_int_t)cnt->total));
	iso(st->first_us, a);
	iso(st->last_us, b);
	json_object_set_new(o, "events", json_pack("{s:I, s:s, s:s}", "count",
	    (json_int_t)st->events, "first", a, "last", b));
	json_object_set_new(o, "runs", json_pack("{s:I, s:I}", "ended",
	    (json_int_t)st->runs, "running", (json_int_t)st->open.n));
	json_object_set_new(o, "finished", json_integer((json_int_t)st->finished));
	json_object_set_new(o, "failed", json_integer((json_int_t)st->failed));
	json_object_set_new(o, "errors", json_integer((json_int_t)st->errors));
	json_object_set_new(o, "timeouts", json_integer((json_int_t)st->timeouts));
	json_object_set_new(o, "killed", json_integer((json_int_t)st->killed));
	iso(st->act_start, a);
	iso(st->act_end, b);
	json_object_set_new(o, "activity", json_pack("{s:s, s:s, s:f}", "start",
	    a, "end", b, "seconds", span));

	json_t *pm = json_array();
	uint32_t peak = 0;
	for (size_t i = 0; i < st->nmin; i++) {
		json_array_append_new(pm, json_integer(st->per_min[i]));
		if (st->per_min[i] > peak)
			peak = st->per_min[i];
	}
	iso(st->min0 * 60000000u, a);
	json_object_set_new(o, "throughput", json_pack("{s:f, s:s, s:o, s:i}",
	    "per_minute", span > 0 ? (double)st->finished / (span / 60) : 0.0,
	    "first_minute", st->nmin ? a : "", "per_minute_series", pm,
	    "peak_per_minute", (int)peak));

	double avg_units = span > 0 ? st->area_units / (span * US) : 0;
	double avg_runs = span > 0 ? st->area_runs / (span * US) : 0;
	double nodes = avg_units / CPL_NODE_UNITS;
	json_t *u = json_object();
	json_object_set_new(u, "unit", json_string(st->by_runs ? "runs" :
	                                                         "nodes"));
	json_object_set_new(u, "average_runs", json_real(avg_runs));
	json_object_set_new(u, "peak_runs", json_integer((json_int_t)st->peak_runs));
	if (!st->by_runs) {
		json_object_set_new(u, "average_nodes", json_real(nodes));
		json_object_set_new(u, "peak_nodes",
		    json_real((double)st->peak_units / CPL_NODE_UNITS));
	}
	json_object_set_new(u, "hosts_seen", json_integer((json_int_t)st->hosts.n));
	json_object_set_new(u, "slots_seen", json_integer((json_int_t)st->slots.n));
	double frac = st->by_runs ? (st->slots.n ? avg_runs / st->slots.n : 0) :
	                            (st->hosts.n ? nodes / st->hosts.n : 0);
	json_object_set_new(u, "average_fraction", json_real(frac));
	json_object_set_new(o, "utilization", u);

	json_object_set_new(o, "runtime", dist_json(&st->run_all));
	json_object_set_new(o, "runtime_done", dist_json(&st->run_done));
	json_object_set_new(o, "queue_wait", dist_json(&st->wait));

	size_t n = st->ser.n;
	double *x = xcalloc(n ? n : 1, sizeof(double));
	double *ut = xcalloc(n ? n : 1, sizeof(double));
	double *th = xcalloc(n ? n : 1, sizeof(double));
	stats_points(st, x, ut, th);
	json_t *jx = json_array(), *ju = json_array(), *jt = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(jx, json_real(x[i]));
		json_array_append_new(ju, json_real(ut[i]));
		json_array_append_new(jt, json_real(th[i]));
	}
	free(x);
	free(ut);
	free(th);
	iso(st->act_start, a);
	json_object_set_new(o, "series", json_pack("{s:s, s:I, s:o, s:o, s:o}",
	    "start", a, "bucket_seconds", (json_int_t)stats_bucket_s(st),
	    "seconds", jx, "utilization", ju, "throughput_per_minute", jt));

	json_t *wfs = json_array();
	size_t nw;
	uint32_t *order = wf_order(st, &nw);
	for (size_t i = 0; i < nw; i++) {
		const struct wfstat *w = &st->wf[order[i]];
		json_array_append_new(wfs, json_pack("{s:s, s:I, s:I, s:I, s:I, "
		    "s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "workflow",
		    st->wfs.strs[order[i]], "tasks", (json_int_t)w->tasks,
		    "finished", (json_int_t)w->finished, "failed",
		    (json_int_t)w->failed, "runs", (json_int_t)w->runs, "done",
		    (json_int_t)w->done, "errors", (json_int_t)w->errors,
		    "timeouts", (json_int_t)w->timeouts, "killed",
		    (json_int_t)w->killed, "mean_run_s", w->runs ? w->run_s /
		    (double)w->runs : 0.0, "max_run_s", w->run_max_s,
		    "node_hours", w->node_s / 3600));
	}
	free(order);
	json_object_set_new(o, "workflows", wfs);
	json_t *us = json_array();
	for (size_t i = 0; i < st->users.n; i++) {
		const struct ustat *u = &st->us[i];
		json_array_append_new(us, json_pack("{s:s, s:I, s:I, s:I, s:I, "
		    "s:I}", "user", st->users.strs[i], "events",
		    (json_int_t)u->events, "created", (json_int_t)u->created,
		    "restarted", (json_int_t)u->restarted, "killed",
		    (json_int_t)u->killed, "deleted", (json_int_t)u->deleted));
	}
	json_object_set_new(o, "users", us);
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(10));
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	json_decref(o);
}

// "1.234 s", "12.3 min", "2.50 h": a duration for people.
static void
fmt_dur(double s, char *buf, size_t len)
{
	if (s < 120)
		snprintf(buf, len, "%.3f s", s);
	else if (s < 3 * 3600)
		snprintf(buf, len, "%.1f min", s / 60);
	else
		snprintf(buf, len, "%.2f h", s / 3600);
}

static void
dist_row(table *t, const char *name, dist *d)
{
	char c[7][32];
	snprintf(c[0], sizeof(c[0]), "%" PRIu64, d->n);
	if (d->n == 0) {
		const char *cells[] = { name, c[0], "-", "-", "-", "-", "-" };
		table_row(t, cells);
		return;
	}
	snprintf(c[1], sizeof(c[1]), "%.3f", d->min);
	snprintf(c[2], sizeof(c[2]), "%.3f", dist_q(d, 0.5));
	snprintf(c[3], sizeof(c[3]), "%.3f", dist_q(d, 0.95));
	snprintf(c[4], sizeof(c[4]), "%.3f", d->max);
	snprintf(c[5], sizeof(c[5]), "%.3f", d->sum / (double)d->n);
	const char *cells[] = { name, c[0], c[1], c[2], c[3], c[4], c[5] };
	table_row(t, cells);
}

static void
report_table(struct stats *st, const Copal__CountReply *cnt)
{
	char a[40], b[40], d[40];
	double span = act_seconds(st);
	printf("Workflow:   %s\n", st->w->workflow ? st->w->workflow : "(all)");
	if (st->w->since_us || st->w->until_us) {
		fmt_time_us(st->w->since_us, a, sizeof(a));
		fmt_time_us(st->w->until_us, b, sizeof(b));
		printf("Window:     %s to %s\n", st->w->since_us ? a : "start",
		    st->w->until_us ? b : "now");
	}
	fmt_time_us(st->first_us, a, sizeof(a));
	fmt_time_us(st->last_us, b, sizeof(b));
	printf("Events:     %" PRIu64 " (%s to %s)\n", st->events, a, b);
	printf("\nTasks by state now: %" PRIu64 "\n", cnt->total);
	for (size_t s = 1; s < cnt->n_by_state; s++)
		if (cnt->by_state[s])
			printf("  %-16s %10" PRIu64 "\n", cpl_state_name((int)s),
			    cnt->by_state[s]);

	printf("\nActivity\n");
	fmt_time_us(st->act_start, a, sizeof(a));
	fmt_time_us(st->act_end, b, sizeof(b));
	fmt_dur(span, d, sizeof(d));
	if (st->act_start)
		printf("  %-28s %s to %s (%s)\n", "first run to last end:", a, b,
		    d);
	else
		printf("  %-28s none\n", "first run to last end:");
	printf("  %-28s %" PRIu64 " ended, %zu running now\n", "runs:", st->runs,
	    st->open.n);
	printf("  %-28s %" PRIu64 "\n", "finished (JOB_FINISHED):",
	    st->finished);
	printf("  %-28s %" PRIu64 "\n", "errors (RUN_ERROR):", st->errors);
	printf("  %-28s %" PRIu64 "\n", "timeouts (RUN_TIMEOUT):", st->timeouts);
	printf("  %-28s %" PRIu64 "\n", "failed (FAILED):", st->failed);
	printf("  %-28s %" PRIu64 "\n", "killed (USER_KILLED):", st->killed);

	uint32_t peak = 0;
	for (size_t i = 0; i < st->nmin; i++)
		if (st->per_min[i] > peak)
			peak = st->per_min[i];
	printf("\nThroughput (tasks reaching JOB_FINISHED)\n");
	printf("  %-28s %.1f\n", "per minute, overall:",
	    span > 0 ? (double)st->finished / (span / 60) : 0.0);
	printf("  %-28s %" PRIu32 "\n", "peak in one clock minute:", peak);
	if (st->nmin && st->nmin <= 60) {
		printf("  per clock minute:\n");
		for (size_t i = 0; i < st->nmin; i++) {
			time_t m = (time_t)((st->min0 + i) * 60);
			struct tm tm;
			localtime_r(&m, &tm);
			strftime(a, sizeof(a), "%Y-%m-%d %H:%M", &tm);
			printf("    %s  %10" PRIu32 "\n", a, st->per_min[i]);
		}
	} else if (st->nmin) {
		printf("  %-28s %zu (see --format json or --plot)\n",
		    "clock minutes:", st->nmin);
	}

	double avg_units = span > 0 ? st->area_units / (span * US) : 0;
	double avg_runs = span > 0 ? st->area_runs / (span * US) : 0;
	printf("\nUtilization (over the activity)\n");
	if (!st->by_runs) {
		double nodes = avg_units / CPL_NODE_UNITS;
		printf("  %-28s %.2f (peak %.2f)\n", "busy nodes, average:", nodes,
		    (double)st->peak_units / CPL_NODE_UNITS);
		if (st->hosts.n)
			printf("  %-28s %.1f%% of the %zu host(s) that ran "
			    "tasks\n", "average utilization:",
			    100 * nodes / (double)st->hosts.n, st->hosts.n);
	}
	printf("  %-28s %.2f (peak %" PRIu64 ")\n", "runs in progress, average:",
	    avg_runs, st->peak_runs);
	if (st->by_runs && st->slots.n)
		printf("  %-28s %.1f%% of the %zu slot(s) that ran tasks\n",
		    "average utilization:", 100 * avg_runs / (double)st->slots.n,
		    st->slots.n);

	printf("\nDurations (seconds)%s\n", st->run_all.n > SAMPLE_CAP ||
	    st->wait.n > SAMPLE_CAP ? "; median and p95 estimated from a "
	    "random sample of 100,000" : "");
	static const tcol dcols[] = { { "", COL_STR }, { "count", COL_INT },
		{ "min", COL_INT }, { "median", COL_INT }, { "p95", COL_INT },
		{ "max", COL_INT }, { "mean", COL_INT } };
	table *t = table_open(FMT_TABLE, dcols, 7, stdout);
	dist_row(t, "run (all)", &st->run_all);
	dist_row(t, "run (done)", &st->run_done);
	dist_row(t, "queue wait", &st->wait);
	table_close(t);

	printf("\nBy workflow\n");
	static const tcol wcols[] = { { "workflow", COL_STR },
		{ "tasks", COL_INT }, { "finished", COL_INT },
		{ "failed", COL_INT }, { "runs", COL_INT }, { "errors", COL_INT },
		{ "timeouts", COL_INT }, { "mean run s", COL_INT },
		{ "max run s", COL_INT }, { "node-hours", COL_INT } };
	t = table_open(FMT_TABLE, wcols, 10, stdout);
	size_t nw;
	uint32_t *order = wf_order(st, &nw);
	for (size_t i = 0; i < nw; i++) {
		const struct wfstat *w = &st->wf[order[i]];
		char c[9][32];
		snprintf(c[0], 32, "%" PRIu64, w->tasks);
		snprintf(c[1], 32, "%" PRIu64, w->finished);
		snprintf(c[2], 32, "%" PRIu64, w->failed);
		snprintf(c[3], 32, "%" PRIu64, w->runs);
		snprintf(c[4], 32, "%" PRIu64, w->errors);
		snprintf(c[5], 32, "%" PRIu64, w->timeouts);
		snprintf(c[6], 32, "%.3f", w->runs ? w->run_s / (double)w->runs :
		                                     0.0);
		snprintf(c[7], 32, "%.3f", w->run_max_s);
		double nh = w->node_s / 3600;
		if (nh > 0 && nh < 0.001)
			snprintf(c[8], 32, "<0.001");
		else
			snprintf(c[8], 32, "%.3f", nh);
		const char *name = st->wfs.strs[order[i]];
		const char *cells[] = { name[0] ? name : "(none)", c[0], c[1],
			c[2], c[3], c[4], c[5], c[6], c[7], c[8] };
		table_row(t, cells);
	}
	table_close(t);
	free(order);

	if (st->users.n == 0)
		return;
	printf("\nBy user (events they caused)\n");
	static const tcol ucols[] = { { "user", COL_STR },
		{ "events", COL_INT }, { "created", COL_INT },
		{ "restarted", COL_INT }, { "killed", COL_INT },
		{ "deleted", COL_INT } };
	t = table_open(FMT_TABLE, ucols, 6, stdout);
	for (size_t i = 0; i < st->users.n; i++) {
		const struct ustat *u = &st->us[i];
		char c[5][24];
		snprintf(c[0], 24, "%" PRIu64, u->events);
		snprintf(c[1], 24, "%" PRIu64, u->created);
		snprintf(c[2], 24, "%" PRIu64, u->restarted);
		snprintf(c[3], 24, "%" PRIu64, u->killed);
		snprintf(c[4], 24, "%" PRIu64, u->deleted);
		const char *cells[] = { st->users.strs[i], c[0], c[1], c[2],
			c[3], c[4] };
		table_row(t, cells);
	}
	table_close(t);
}

// ------------------------------------------------------------ the verb

int
cmd_stats(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *plot = NULL;
	ev_window w;
	struct stats *st = xcalloc(1, sizeof(*st));
	Copal__Reply *cnt = NULL;
	bool json = false;
	int k, rc;
	memset(&w, 0, sizeof(w));
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0) {
		free(st);
		return rc;
	}
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (ev_window_opt(&w, k, arg, &rc)) {
		} else if (k == KEY_PLOT) {
			plot = arg;
			if (plot[0] == '\0')
				rc = cli_usage("--plot: give a directory");
		} else if (k == KEY_BY_RUNS) {
			st->by_runs = true;
		} else if (k == KEY_FORMAT) {
			if (!strcmp(arg, "json"))
				json = true;
			else if (strcmp(arg, "table") != 0)
				rc = cli_usage("--format: %s is not table or json",
				    arg);
		} else {
			rc = EXIT_USAGE;
		}
		if (rc)
			goto done;
	}
	if ((rc = cli_no_operands(&p)) != 0)
		goto done;
	if ((rc = ev_window_check(&w)) != 0)
		goto done;
	stats_init(st, &w);
	if ((rc = cli_connect(&st->c)) != 0 ||
	    (rc = ev_window_resolve(st->c, &w)) != 0 ||
	    (rc = fetch_counts(st->c, &w, &cnt)) != 0 ||
	    (rc = fetch_workflows(st)) != 0)
		goto done;
	if ((rc = ev_stream(st->c, &w, stats_page, st)) != 0)
		goto done;
	stats_finish(st);
	if (json)
		report_json(st, cnt->count);
	else
		report_table(st, cnt->count);
	if (plot && (rc = stats_write_plots(st, plot)) == 0 && !json)
		printf("\nPlots: %s/utilization.svg, %s/throughput.svg\n", plot,
		    plot);
done:
	if (cnt)
		copal__reply__free_unpacked(cnt, NULL);
	stats_free(st);
	free(st);
	cli_parse_free(&p);
	return rc;
}
