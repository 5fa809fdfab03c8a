// copal stats: the profile, kept while the event log streams by (what is
// kept: stats.h).
//
// Utilization is node-weighted: a run counts as num_nodes /
// node_packing_count nodes. The export has no resources, so the specs of
// the tasks that start running in each page are fetched by id
// (QueryRequest with_spec, 10,000 ids per request) before the page is
// processed; --by-runs skips that and counts runs instead.
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define QUERY_IDS 10000u

// ------------------------------------------------------------ distributions

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

double
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

void
stats_init(struct stats *st, const ev_window *w)
{
	st->w = w;
	u64map_init(&st->queued, sizeof(struct queued));
	u64map_init(&st->open, sizeof(struct running));
	u64map_init(&st->weights, sizeof(uint32_t));
	strset_init(&st->wfs);
	strset_init(&st->hosts);
	strset_init(&st->slots);
	strset_init(&st->users);
	dist_init(&st->run_all, 0x9E3779B97F4A7C15ull);
	dist_init(&st->run_done, 0xD1B54A32D192ED03ull);
	dist_init(&st->wait, 0x94D049BB133111EBull);
}

void
stats_free(struct stats *st)
{
	cpl_client_close(st->c);
	cpl_client_close(st->qc);
	u64map_free(&st->queued);
	u64map_free(&st->open);
	u64map_free(&st->weights);
	strset_free(&st->wfs);
	strset_free(&st->hosts);
	strset_free(&st->slots);
	strset_free(&st->users);
	free(st->us);
	dist_free(&st->run_all);
	dist_free(&st->run_done);
	dist_free(&st->wait);
	free(st->wf);
	free(st->per_min);
}

struct wfstat *
stats_wf(struct stats *st, const char *name, uint32_t *idx)
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

// An event a user caused, counted as theirs.
static void
user_event(struct stats *st, const Copal__Event *e)
{
	uint32_t i = strset_add(&st->users, e->user, NULL);
	if (i >= st->capus) {
		size_t cap = st->capus ? st->capus * 2 : 8;
		while (cap <= i)
			cap *= 2;
		st->us = xrealloc(st->us, cap * sizeof(*st->us));
		memset(st->us + st->capus, 0,
		    (cap - st->capus) * sizeof(*st->us));
		st->capus = cap;
	}
	struct ustat *u = &st->us[i];
	int to = (int)e->to_state;
	u->events++;
	if ((int)e->from_state == CPL_CREATED)
		u->created++;
	else if (to == CPL_USER_KILLED)
		u->killed++;
	else if (to == CPL_RESTART_READY)
		u->restarted++;
	else if (to == 0)
		u->deleted++;
}

static void
stats_event(struct stats *st, const Copal__Event *e)
{
	uint64_t t = ev_time(e);
	int to = (int)e->to_state;
	uint32_t wi;
	struct wfstat *w = stats_wf(st, e->workflow, &wi);
	st->events++;
	if (e->user && e->user[0])
		user_event(st, e);
	// event times come in log (commit) order, a launcher's a little
	// earlier than its commit: the first is the least
	if (st->first_us == 0 || t < st->first_us)
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
		if (st->act_start == 0 || t < st->act_start)
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
		if (st->act_start == 0 || t < st->act_start)
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

int
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

void
stats_finish(struct stats *st)
{
	if (st->open.n) {
		level_to(st, st->last_us);
		if (st->last_us > st->act_end)
			st->act_end = st->last_us;
	}
}

uint64_t
stats_bucket_s(const struct stats *st)
{
	return ladder_s[st->ser.rung];
}

void
stats_points(const struct stats *st, double *x, double *util, double *thr)
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
