// copal stats: a campaign's profile from one pass over the event log.
//
// What is kept while the log streams by (events.c), none of it growing with
// the number of events:
//   * per task, only while it waits (READY or RESTART_READY: the time it
//     became so) or runs (its start, its node weight);
//   * a time series of fixed size (at most SERIES_CAP buckets, whose width
//     grows through a ladder of round values as the campaign gets longer):
//     tasks finished and busy node-seconds per bucket, for the plots;
//   * tasks finished per minute (one counter per minute of the campaign);
//   * for the quantiles of run time and queue wait, a uniform random sample
//     (reservoir) of at most SAMPLE_CAP values each: exact below that
//     number, estimates above it (counts, min, max and means stay exact);
//   * per workflow and per host, a few counters.
//
// Utilization is node-weighted: a run counts as num_nodes /
// node_packing_count nodes. The export has no resources, so the specs of
// the tasks that start running in each page are fetched by id
// (QueryRequest with_spec, 10,000 ids per request) before the page is
// processed; --by-runs skips that and counts runs instead.
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "events.h"

#define SAMPLE_CAP 100000u
#define SERIES_CAP 600u
#define QUERY_IDS 10000u
#define US 1000000.0

enum { KEY_PLOT = 620, KEY_BY_RUNS };

const cli_opt stats_opts[] = {
	{ "plot", KEY_PLOT, OPT_ARG, "DIR",
	    "also write DIR/utilization.svg and DIR/throughput.svg" },
	{ "by-runs", KEY_BY_RUNS, OPT_NOARG, NULL,
	    "utilization in runs, not nodes (no task specs are fetched)" },
	{ "format", KEY_FORMAT, OPT_ARG, "FMT", "table (default) or json" },
	{ NULL, 0, 0, NULL, NULL },
};

// ------------------------------------------------------------ distributions

// Count, min, max and mean of every value; quantiles from a reservoir.
typedef struct dist {
	uint64_t n;
	double min, max, sum;
	double *s;
	size_t ns;
	uint64_t rng;
	bool sorted;
} dist;

static void
dist_init(dist *d, uint64_t seed)
{
	memset(d, 0, sizeof(*d));
	d->rng = seed;
}

static uint64_t
rng_next(uint64_t *x)
{
	// xorshift64*
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * UINT64_C(2685821657736338717);
}

static void
dist_add(dist *d, double v)
{
	if (d->n == 0 || v < d->min)
		d->min = v;
	if (d->n == 0 || v > d->max)
		d->max = v;
	d->n++;
	d->sum += v;
	if (d->s == NULL)
		d->s = xmalloc(SAMPLE_CAP * sizeof(double));
	if (d->ns < SAMPLE_CAP) {
		d->s[d->ns++] = v;
	} else {
		// Algorithm R: keep each of the n values with probability
		// SAMPLE_CAP / n
		uint64_t j = rng_next(&d->rng) % d->n;
		if (j < SAMPLE_CAP)
			d->s[j] = v;
	}
	d->sorted = false;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

// Quantile q (0..1) with linear interpolation between the closest ranks.
static double
dist_q(dist *d, double q)
{
	if (d->ns == 0)
		return 0;
	if (!d->sorted) {
		qsort(d->s, d->ns, sizeof(double), cmp_double);
		d->sorted = true;
	}
	double pos = q * (double)(d->ns - 1);
	size_t i = (size_t)pos;
	if (i + 1 >= d->ns)
		return d->s[d->ns - 1];
	return d->s[i] + (pos - (double)i) * (d->s[i + 1] - d->s[i]);
}

static void
dist_free(dist *d)
{
	free(d->s);
	d->s = NULL;
}

// ------------------------------------------------------------ time series

// Bucket widths: each divides the next, so that buckets merge exactly.
static const uint64_t ladder_s[] = { 1, 2, 10, 20, 60, 120, 600, 1200, 3600,
	7200, 21600, 43200, 86400, 172800, 604800, 1209600, 2419200 };
#define NLADDER (sizeof(ladder_s) / sizeof(ladder_s[0]))

typedef struct series {
	bool started;
	uint64_t t0;      // start of bucket 0 (a multiple of the width)
	unsigned rung;    // index in ladder_s
	size_t n;         // buckets in use
	double done[SERIES_CAP];   // tasks finished
	double area[SERIES_CAP];   // busy node-units x microseconds
	double rarea[SERIES_CAP];  // open runs x microseconds
} series;

static uint64_t
series_w(const series *s)
{
	return ladder_s[s->rung] * 1000000u;
}

static void
series_start(series *s, uint64_t t)
{
	s->started = true;
	s->rung = 0;
	s->t0 = t / series_w(s) * series_w(s);
	s->n = 1;
}

// Widens the buckets until t falls within SERIES_CAP of them.
static void
series_fit(series *s, uint64_t t)
{
	while (t >= s->t0 && (t - s->t0) / series_w(s) >= SERIES_CAP &&
	    s->rung + 1 < NLADDER) {
		uint64_t w = series_w(s);
		s->rung++;
		uint64_t w2 = series_w(s), t02 = s->t0 / w2 * w2;
		double d[SERIES_CAP] = { 0 }, a[SERIES_CAP] = { 0 },
		       r[SERIES_CAP] = { 0 };
		size_t n2 = 0;
		for (size_t i = 0; i < s->n; i++) {
			size_t k = (size_t)((s->t0 + i * w - t02) / w2);
			d[k] += s->done[i];
			a[k] += s->area[i];
			r[k] += s->rarea[i];
			if (k + 1 > n2)
				n2 = k + 1;
		}
		memcpy(s->done, d, sizeof(d));
		memcpy(s->area, a, sizeof(a));
		memcpy(s->rarea, r, sizeof(r));
		s->t0 = t02;
		s->n = n2;
	}
}

// The bucket of t (the series extended to it); times before the start
// count in the first bucket.
static size_t
series_at(series *s, uint64_t t)
{
	if (!s->started)
		series_start(s, t);
	if (t < s->t0)
		return 0;
	series_fit(s, t);
	size_t k = (size_t)((t - s->t0) / series_w(s));
	if (k >= SERIES_CAP) // beyond the last rung: ~40 years
		k = SERIES_CAP - 1;
	while (s->n <= k) {
		s->done[s->n] = s->area[s->n] = s->rarea[s->n] = 0;
		s->n++;
	}
	return k;
}

// Adds level x [a, b) to the buckets it covers: units * microseconds.
static void
series_level(series *s, uint64_t a, uint64_t b, double units, double runs)
{
	if (b <= a || (units == 0 && runs == 0))
		return;
	series_at(s, b); // widen first: the buckets of a are then final
	while (a < b) {
		size_t k = series_at(s, a);
		uint64_t end = s->t0 + (k + 1) * series_w(s);
		if (end > b || k == SERIES_CAP - 1)
			end = b;
		s->area[k] += units * (double)(end - a);
		s->rarea[k] += runs * (double)(end - a);
		a = end;
	}
}

// ------------------------------------------------------------ state

struct queued {   // a task waiting to run
	uint64_t since_us;
};

struct running {  // a run that is open
	uint64_t start_us;
	uint32_t units;  // node weight in 1/CPL_NODE_UNITS of a node
	uint32_t wf;
};

struct wfstat {
	uint64_t tasks;     // now (WorkflowListRequest)
	uint64_t finished, failed, runs, done, errors, timeouts, killed;
	double run_s, run_max_s;
	double node_s;      // node-seconds of its runs
};

struct stats {
	bool by_runs;
	const ev_window *w;
	cpl_client *c;      // before the stream; then the stream's
	cpl_client *qc;     // the specs' queries during the stream (lazily)
	u64map queued;      // task -> struct queued
	u64map open;        // task -> struct running
	u64map weights;     // this page's tasks starting to run -> units + 1
	strset wfs;
	struct wfstat *wf;
	size_t capwf;
	strset hosts, slots;

	uint64_t events, first_us, last_us;
	uint64_t runs, finished, failed, errors, timeouts, killed;
	uint64_t act_start, act_end;   // first run start, last activity
	int64_t busy_units;            // now
	uint64_t busy_runs;
	uint64_t peak_units, peak_runs;
	uint64_t level_t;              // time of the last level change
	double area_units, area_runs;  // units x us and runs x us, all time

	uint32_t *per_min;             // finished per minute from min0
	size_t nmin, capmin;
	uint64_t min0;

	dist run_all, run_done, wait;
	series ser;
};

static struct wfstat *
wf_of(struct stats *st, const char *name, uint32_t *idx)
{
	uint32_t k = strset_add(&st->wfs, name ? name : "", NULL);
	if (k >= st->capwf) {
		size_t cap = st->capwf ? st->capwf * 2 : 16;
		while (cap <= k)
			cap *= 2;
		st->wf = xrealloc(st->wf, cap * sizeof(*st->wf));
		memset(st->wf + st->capwf, 0, (cap - st->capwf) * sizeof(*st->wf));
		st->capwf = cap;
	}
	if (idx)
		*idx = k;
	return &st->wf[k];
}

// The busy level changes at t: integrate the old level up to t.
static void
level_to(struct stats *st, uint64_t t)
{
	if (st->level_t && t > st->level_t) {
		double dt = (double)(t - st->level_t);
		st->area_units += (double)st->busy_units * dt;
		st->area_runs += (double)st->busy_runs * dt;
		series_level(&st->ser, st->level_t, t, (double)st->busy_units,
		    (double)st->busy_runs);
	}
	if (t > st->level_t)
		st->level_t = t;
}

static void
close_run(struct stats *st, const struct running *r, uint64_t t, int to)
{
	double dur = t > r->start_us ? (double)(t - r->start_us) / US : 0;
	struct wfstat *w = &st->wf[r->wf];
	level_to(st, t);
	st->busy_units -= r->units;
	st->busy_runs--;
	st->runs++;
	w->runs++;
	w->run_s += dur;
	w->node_s += dur * r->units / CPL_NODE_UNITS;
	if (dur > w->run_max_s)
		w->run_max_s = dur;
	dist_add(&st->run_all, dur);
	if (to == CPL_RUN_DONE || to == CPL_POSTPROCESSED ||
	    to == CPL_JOB_FINISHED) {
		dist_add(&st->run_done, dur);
		w->done++;
	}
	if (t > st->act_end)
		st->act_end = t;
}

static void
count_minute(struct stats *st, uint64_t t)
{
	uint64_t m = t / 60000000u;
	if (st->nmin == 0)
		st->min0 = m;
	if (m < st->min0)
		m = st->min0; // the clock went back: count it in the first
	size_t k = (size_t)(m - st->min0);
	if (k >= st->capmin) {
		size_t cap = st->capmin ? st->capmin : 64;
		while (cap <= k)
			cap *= 2;
		st->per_min = xrealloc(st->per_min, cap * sizeof(uint32_t));
		memset(st->per_min + st->capmin, 0,
		    (cap - st->capmin) * sizeof(uint32_t));
		st->capmin = cap;
	}
	st->per_min[k]++;
	if (k + 1 > st->nmin)
		st->nmin = k + 1;
}

static void
stats_event(struct stats *st, const Copal__Event *e)
{
	uint64_t t = e->time_us;
	int to = (int)e->to_state;
	uint32_t wi;
	struct wfstat *w = wf_of(st, e->workflow, &wi);
	st->events++;
	if (st->first_us == 0)
		st->first_us = t;
	if (t > st->last_us)
		st->last_us = t;

	struct running *r = u64map_get(&st->open, e->task_id);
	if (r) {
		// any change of a running task ends its run
		struct running copy = *r;
		u64map_del(&st->open, e->task_id);
		close_run(st, &copy, t, to == CPL_RUNNING ? 0 : to);
	}
	switch (to) {
	case CPL_RUNNING: {
		struct queued *q = u64map_get(&st->queued, e->task_id);
		if (q) {
			dist_add(&st->wait, (double)(t - (t > q->since_us ?
			    q->since_us : t)) / US);
			u64map_del(&st->queued, e->task_id);
		}
		uint32_t units = CPL_NODE_UNITS;
		uint32_t *wu = u64map_get(&st->weights, e->task_id);
		if (wu && *wu)
			units = *wu - 1;
		level_to(st, t);
		if (st->act_start == 0)
			st->act_start = t;
		if (t > st->act_end)
			st->act_end = t;
		(void)series_at(&st->ser, t);
		r = u64map_put(&st->open, e->task_id, NULL);
		r->start_us = t;
		r->units = units;
		r->wf = wi;
		st->busy_units += units;
		st->busy_runs++;
		if ((uint64_t)st->busy_units > st->peak_units)
			st->peak_units = (uint64_t)st->busy_units;
		if (st->busy_runs > st->peak_runs)
			st->peak_runs = st->busy_runs;
		// capacity seen: hosts (the part before '/') and slots
		const char *node = e->node && e->node[0] ? e->node : "(no node)";
		strset_add(&st->slots, node, NULL);
		const char *slash = strrchr(node, '/');
		if (slash) {
			char host[256];
			size_t len = (size_t)(slash - node);
			if (len >= sizeof(host))
				len = sizeof(host) - 1;
			memcpy(host, node, len);
			host[len] = '\0';
			strset_add(&st->hosts, host, NULL);
		} else {
			strset_add(&st->hosts, node, NULL);
		}
		break;
	}
	case CPL_READY:
	case CPL_RESTART_READY: {
		struct queued *q = u64map_put(&st->queued, e->task_id, NULL);
		q->since_us = t;
		break;
	}
	case CPL_STAGED_IN:
	case CPL_PREPROCESSED:
		break; // on its way to RUNNING: still waiting
	default:
		u64map_del(&st->queued, e->task_id);
		break;
	}
	switch (to) {
	case CPL_JOB_FINISHED:
		st->finished++;
		w->finished++;
		st->ser.done[series_at(&st->ser, t)] += 1;
		count_minute(st, t);
		if (st->act_start == 0)
			st->act_start = t;
		if (t > st->act_end)
			st->act_end = t;
		break;
	case CPL_RUN_ERROR:
		st->errors++;
		w->errors++;
		break;
	case CPL_RUN_TIMEOUT:
		st->timeouts++;
		w->timeouts++;
		break;
	case CPL_FAILED:
		st->failed++;
		w->failed++;
		break;
	case CPL_USER_KILLED:
		st->killed++;
		w->killed++;
		break;
	default:
		break;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

// Node weights of the tasks that start running in this page.
static int
page_weights(struct stats *st, const Copal__ExportReply *page)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	int rc = 0;
	u64map_free(&st->weights);
	u64map_init(&st->weights, sizeof(uint32_t));
	for (size_t i = 0; i < page->n_events; i++)
		if (page->events[i]->to_state == COPAL__TASK_STATE__STATE_RUNNING)
			n++;
	if (n == 0)
		return 0;
	ids = xmalloc(n * sizeof(uint64_t));
	n = 0;
	for (size_t i = 0; i < page->n_events; i++)
		if (page->events[i]->to_state == COPAL__TASK_STATE__STATE_RUNNING)
			ids[n++] = page->events[i]->task_id;
	qsort(ids, n, sizeof(uint64_t), cmp_u64);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || ids[u - 1] != ids[i])
			ids[u++] = ids[i];
	if (u && st->qc == NULL && (rc = cli_connect(&st->qc)) != 0) {
		free(ids);
		return rc;
	}
	for (size_t off = 0; off < u && rc == 0; off += QUERY_IDS) {
		Copal__Filter f = COPAL__FILTER__INIT;
		Copal__Reply *rep;
		f.ids = ids + off;
		f.n_ids = u - off < QUERY_IDS ? u - off : QUERY_IDS;
		if ((rc = cli_call_rc(st->qc, cpl_call_query(st->qc, &f, 0,
		         QUERY_IDS, true, &rep))) != 0)
			break;
		for (size_t i = 0; i < rep->query->n_tasks; i++) {
			const Copal__Task *t = rep->query->tasks[i];
			const Copal__Resources *res = t->spec ? t->spec->resources :
			                                        NULL;
			uint32_t nn = res && res->num_nodes ? res->num_nodes : 1;
			uint32_t pc = res && res->node_packing_count ?
			    res->node_packing_count : 1;
			uint64_t units = (uint64_t)nn * CPL_NODE_UNITS / pc;
			if (units == 0)
				units = 1;
			if (units > UINT32_MAX - 1)
				units = UINT32_MAX - 1;
			*(uint32_t *)u64map_put(&st->weights, t->id, NULL) =
			    (uint32_t)units + 1;
		}
		copal__reply__free_unpacked(rep, NULL);
	}
	free(ids);
	return rc;
}

static int
stats_page(const Copal__ExportReply *page, void *arg)
{
	struct stats *st = arg;
	int rc;
	if (!st->by_runs && (rc = page_weights(st, page)) != 0)
		return rc;
	for (size_t i = 0; i < page->n_events; i++)
		stats_event(st, page->events[i]);
	return 0;
}

// ------------------------------------------------------------ SVG plots

// A round step near range / n: 1, 2 or 5 times a power of ten.
static double
nice_step(double range, int n)
{
	if (!(range > 0))
		return 1;
	double raw = range / n, p = 1;
	while (p * 10 <= raw)
		p *= 10;
	while (p > raw)
		p /= 10;
	double f = raw / p;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

// The smallest multiple of step at or above v (v >= 0).
static double
ceil_to(double v, double step)
{
	double k = (double)(uint64_t)(v / step);
	if (k * step < v - step * 1e-9)
		k += 1;
	return k * step;
}

static void
svg_text(FILE *fp, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", fp); break;
		case '>': fputs("&gt;", fp); break;
		case '&': fputs("&amp;", fp); break;
		case '"': fputs("&quot;", fp); break;
		default: fputc(*s, fp); break;
		}
	}
}

// A tick label: 0.25, 40, 2500, 12k, 1.5M (the decimals the step needs).
static void
fmt_num(char *buf, size_t len, double v, double step)
{
	const char *suffix = "";
	if (v >= 10000 && step >= 1000) {
		double div = v >= 1e6 && step >= 1e5 ? 1e6 : 1e3;
		suffix = div == 1e6 ? "M" : "k";
		v /= div;
		step /= div;
	}
	int dec = 0;
	for (double s = step; s < 0.999 && dec < 9; s *= 10)
		dec++;
	snprintf(buf, len, "%.*f%s", dec, v, suffix);
}

// A line plot of n points (x in seconds since t0_us, y) with axes, ticks,
// grid and labels. Returns 0 or an exit code.
static int
svg_plot(const char *path, const char *title, const char *ylabel,
    uint64_t t0_us, const double *x, const double *y, size_t n)
{
	const double W = 900, H = 500, ml = 80, mr = 30, mt = 50, mb = 70;
	const double pw = W - ml - mr, ph = H - mt - mb;
	double xmax = 0, ymax = 0;
	for (size_t i = 0; i < n; i++) {
		if (x[i] > xmax)
			xmax = x[i];
		if (y[i] > ymax)
			ymax = y[i];
	}
	// x unit: seconds, minutes or hours
	const char *unit = "s";
	double div = 1;
	if (xmax > 3 * 3600) {
		unit = "h";
		div = 3600;
	} else if (xmax > 600) {
		unit = "min";
		div = 60;
	}
	double xr = xmax / div, xstep = nice_step(xr > 0 ? xr : 1, 8);
	double xtop = ceil_to(xr > 0 ? xr : 1, xstep);
	double ystep = nice_step(ymax > 0 ? ymax : 1, 5);
	double ytop = ceil_to(ymax > 0 ? ymax * 1.04 : 1, ystep);
	FILE *fp = fopen(path, "w");
	if (fp == NULL) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		return EXIT_ERR;
	}
	char start[40], num[32];
	time_t ts = (time_t)(t0_us / 1000000u);
	struct tm tm;
	gmtime_r(&ts, &tm);
	strftime(start, sizeof(start), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
	    "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
	    "font-family=\"sans-serif\" font-size=\"13\">\n", W, H, W, H);
	fprintf(fp, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(fp, "<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\" "
	    "font-size=\"18\" font-weight=\"bold\">", W / 2);
	svg_text(fp, title);
	fprintf(fp, "</text>\n");
	// grid, ticks and tick labels
	fprintf(fp, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
	for (double v = 0; v <= ytop + ystep / 2; v += ystep) {
		double py = mt + ph - v / ytop * ph;
		fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
		    ml, py, ml + pw, py);
	}
	for (double v = 0; v <= xtop + xstep / 2; v += xstep) {
		double px = ml + v / xtop * pw;
		fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
		    px, mt, px, mt + ph);
	}
	fprintf(fp, "</g>\n<g text-anchor=\"end\">\n");
	for (double v = 0; v <= ytop + ystep / 2; v += ystep) {
		double py = mt + ph - v / ytop * ph;
		fmt_num(num, sizeof(num), v, ystep);
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", ml - 8,
		    py + 4, num);
	}
	fprintf(fp, "</g>\n<g text-anchor=\"middle\">\n");
	for (double v = 0; v <= xtop + xstep / 2; v += xstep) {
		double px = ml + v / xtop * pw;
		fmt_num(num, sizeof(num), v, xstep);
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", px,
		    mt + ph + 20, num);
	}
	fprintf(fp, "</g>\n");
	// axes and their labels
	fprintf(fp, "<g stroke=\"black\" stroke-width=\"1.5\">"
	    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
	    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
	    ml, mt + ph, ml + pw, mt + ph, ml, mt, ml, mt + ph);
	if (t0_us)
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
		    "time since %s UTC (%s)</text>\n", ml + pw / 2, H - 20, start,
		    unit);
	else
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
		    "time since the first run (%s): no runs</text>\n",
		    ml + pw / 2, H - 20, unit);
	fprintf(fp, "<text transform=\"translate(22 %.1f) rotate(-90)\" "
	    "text-anchor=\"middle\">", mt + ph / 2);
	svg_text(fp, ylabel);
	fprintf(fp, "</text>\n");
	// the series
	fprintf(fp, "<polyline fill=\"none\" stroke=\"#1f77b4\" "
	    "stroke-width=\"2\" stroke-linejoin=\"round\" points=\"");
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s%.1f,%.1f", i ? " " : "",
		    ml + x[i] / div / xtop * pw, mt + ph - y[i] / ytop * ph);
	fprintf(fp, "\"/>\n");
	if (n <= 60) { // few points: mark them
		fprintf(fp, "<g fill=\"#1f77b4\">\n");
		for (size_t i = 0; i < n; i++)
			fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n",
			    ml + x[i] / div / xtop * pw,
			    mt + ph - y[i] / ytop * ph);
		fprintf(fp, "</g>\n");
	}
	fprintf(fp, "</svg>\n");
	if (fclose(fp) != 0) {
		cli_err("cannot write %s: %s", path, strerror(errno));
		return EXIT_ERR;
	}
	return 0;
}

// The plot points: one per bucket, at the middle of the part of the
// bucket inside the activity. Utilization: average busy nodes (or runs)
// over that part; throughput: tasks finished in the bucket per minute.
static void
series_points(const struct stats *st, double *x, double *util, double *thr)
{
	const series *s = &st->ser;
	double w = (double)series_w(s);
	for (size_t i = 0; i < s->n; i++) {
		double b0 = (double)s->t0 + (double)i * w, b1 = b0 + w;
		double a = b0 > (double)st->act_start ? b0 : (double)st->act_start;
		double e = b1 < (double)st->act_end ? b1 : (double)st->act_end;
		if (e <= a) { // a bucket of one instant
			a = b0 > (double)st->act_start ? b0 : (double)st->act_start;
			e = a;
		}
		x[i] = ((a + e) / 2 - (double)st->act_start) / US;
		double area = st->by_runs ? s->rarea[i] :
		                            s->area[i] / CPL_NODE_UNITS;
		util[i] = e > a ? area / (e - a) : 0;
		thr[i] = s->done[i] * 60.0 * US / w;
	}
}

// "1 s", "20 s", "2 min", "6 h", "7 d"
static void
fmt_width(uint64_t s, char *buf, size_t len)
{
	if (s % 86400 == 0)
		snprintf(buf, len, "%" PRIu64 " d", s / 86400);
	else if (s % 3600 == 0)
		snprintf(buf, len, "%" PRIu64 " h", s / 3600);
	else if (s % 60 == 0)
		snprintf(buf, len, "%" PRIu64 " min", s / 60);
	else
		snprintf(buf, len, "%" PRIu64 " s", s);
}

static int
write_plots(const struct stats *st, const char *dir)
{
	char path[PATH_MAX];
	int rc;
	size_t n = st->ser.n;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		cli_err("cannot make %s: %s", dir, strerror(errno));
		return EXIT_ERR;
	}
	double *x = xcalloc(n ? n : 1, sizeof(double));
	double *u = xcalloc(n ? n : 1, sizeof(double));
	double *t = xcalloc(n ? n : 1, sizeof(double));
	series_points(st, x, u, t);
	char title[256], bw[32];
	fmt_width(ladder_s[st->ser.rung], bw, sizeof(bw));
	snprintf(title, sizeof(title), "Utilization%s%s (%s, %s buckets)",
	    st->w->workflow ? ": workflow " : "",
	    st->w->workflow ? st->w->workflow : "",
	    st->by_runs ? "runs" : "nodes", bw);
	snprintf(path, sizeof(path), "%s/utilization.svg", dir);
	rc = svg_plot(path, title, st->by_runs ? "runs in progress" :
	    "busy nodes (num_nodes / node_packing_count)", st->act_start, x, u, n);
	if (rc == 0) {
		snprintf(title, sizeof(title), "Throughput%s%s (%s buckets)",
		    st->w->workflow ? ": workflow " : "",
		    st->w->workflow ? st->w->workflow : "", bw);
		snprintf(path, sizeof(path), "%s/throughput.svg", dir);
		rc = svg_plot(path, title, "tasks finished per minute",
		    st->act_start, x, t, n);
	}
	free(x);
	free(u);
	free(t);
	return rc;
}

// ------------------------------------------------------------ reports

static int
fetch_counts(cpl_client *c, const ev_window *w, Copal__Reply **rep)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	if (w->workflow)
		f.workflow = (char *)w->workflow;
	return cli_call_rc(c, cpl_call_count(c, w->workflow ? &f : NULL, rep));
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
		wf_of(st, w->name, NULL)->tasks = w->tasks;
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
	series_points(st, x, ut, th);
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
	    "start", a, "bucket_seconds", (json_int_t)ladder_s[st->ser.rung],
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
	st->w = &w;
	u64map_init(&st->queued, sizeof(struct queued));
	u64map_init(&st->open, sizeof(struct running));
	u64map_init(&st->weights, sizeof(uint32_t));
	strset_init(&st->wfs);
	strset_init(&st->hosts);
	strset_init(&st->slots);
	dist_init(&st->run_all, 0x9E3779B97F4A7C15ull);
	dist_init(&st->run_done, 0xD1B54A32D192ED03ull);
	dist_init(&st->wait, 0x94D049BB133111EBull);
	if ((rc = cli_connect(&st->c)) != 0 ||
	    (rc = ev_window_resolve(st->c, &w)) != 0 ||
	    (rc = fetch_counts(st->c, &w, &cnt)) != 0 ||
	    (rc = fetch_workflows(st)) != 0)
		goto done;
	if ((rc = ev_stream(st->c, &w, stats_page, st)) != 0)
		goto done;
	// runs still open count as busy up to the last event
	if (st->open.n) {
		level_to(st, st->last_us);
		if (st->last_us > st->act_end)
			st->act_end = st->last_us;
	}
	if (json)
		report_json(st, cnt->count);
	else
		report_table(st, cnt->count);
	if (plot && (rc = write_plots(st, plot)) == 0 && !json)
		printf("\nPlots: %s/utilization.svg, %s/throughput.svg\n", plot,
		    plot);
done:
	if (cnt)
		copal__reply__free_unpacked(cnt, NULL);
	cpl_client_close(st->c);
	cpl_client_close(st->qc);
	u64map_free(&st->queued);
	u64map_free(&st->open);
	u64map_free(&st->weights);
	strset_free(&st->wfs);
	strset_free(&st->hosts);
	strset_free(&st->slots);
	dist_free(&st->run_all);
	dist_free(&st->run_done);
	dist_free(&st->wait);
	free(st->wf);
	free(st->per_min);
	free(st);
	cli_parse_free(&p);
	return rc;
}
