// copal web: throughput and utilization over time (web.h).
//
// The profile is `copal stats`'s own (stats.h, stats_calc.c), kept by a
// thread with its own client: the first pass reads the whole event log a
// page (EV_PAGE events) at a time, then every WEB_STATS_PERIOD only the
// events after the last one read. So an open page costs the broker the new
// events, not the log, and /api/stats answers from a snapshot.
//
// Two profiles: the whole campaign, and the last hour (its window starts
// an hour before it is made, and it is made again every WEB_HOUR_REBUILD,
// reading only that hour of the log again: the broker exports each event
// about twice in all; its points older than an hour are left out of the
// answer).
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats.h"
#include "web.h"

#define WEB_STATS_PERIOD_MS 2000
#define WEB_HOUR_US (3600ull * 1000000)
#define WEB_HOUR_REBUILD_US (3600ull * 1000000)

struct prof {
	ev_window w;
	struct stats *st;
	uint64_t after;   // last event read
	uint64_t made_us; // broker time it was made
	bool loaded;      // the log read to its end once
};

struct web_stats {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, started;
	cpl_client *c;
	struct prof all, hour;
	json_t *snap_all, *snap_hour;
};

static void
prof_reset(struct prof *p, uint64_t since_us, uint64_t now_us)
{
	if (p->st)
		stats_free(p->st);
	free(p->st);
	memset(p, 0, sizeof(*p));
	p->w.since_us = since_us;
	p->st = xcalloc(1, sizeof(*p->st));
	stats_init(p->st, &p->w);
	p->made_us = now_us;
}

static void
prof_free(struct prof *p)
{
	if (p->st)
		stats_free(p->st);
	free(p->st);
	p->st = NULL;
}

static json_t *
darray(const double *v, size_t n, size_t from)
{
	json_t *a = json_array();
	for (size_t i = from; i < n; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

// The snapshot of p: points from cut_us on (0: all of them).
static json_t *
prof_json(struct prof *p, const char *range, uint64_t cut_us)
{
	struct stats *st = p->st;
	size_t n = st->ser.n;
	double *x = xcalloc(n + 1, sizeof(double));
	double *u = xcalloc(n + 1, sizeof(double));
	double *t = xcalloc(n + 1, sizeof(double));
	stats_finish(st); // open runs count up to the last event read
	stats_points(st, x, u, t);
	// x: seconds from the first run's start; the page wants epoch ms
	size_t from = 0;
	for (size_t i = 0; i < n; i++) {
		x[i] = (double)st->act_start / 1000.0 + x[i] * 1000.0;
		if (cut_us && x[i] < (double)cut_us / 1000.0)
			from = i + 1;
	}
	double span_min = st->act_end > st->act_start ?
	    (double)(st->act_end - st->act_start) / 60e6 : 0;
	json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:f, s:f, s:I, s:I}",
	    "range", range, "loaded", p->loaded,
	    "events", (json_int_t)st->events,
	    "bucket_s", (json_int_t)stats_bucket_s(st),
	    "finished", (json_int_t)st->finished,
	    "failed", (json_int_t)st->failed,
	    "runs", (json_int_t)st->runs,
	    "errors", (json_int_t)st->errors,
	    "timeouts", (json_int_t)st->timeouts,
	    "per_min", span_min > 0 ? (double)st->finished / span_min : 0.0,
	    "busy_nodes", (double)st->busy_units / CPL_NODE_UNITS,
	    "first_us", (json_int_t)st->act_start,
	    "last_us", (json_int_t)st->act_end);
	// tasks finished in the points answered (the hour's profile may
	// hold up to two hours)
	double shown = 0;
	for (size_t i = from; i < n; i++)
		shown += st->ser.done[i];
	json_object_set_new(o, "finished_shown",
	    json_integer((json_int_t)shown));
	json_object_set_new(o, "t", darray(x, n, from));
	json_object_set_new(o, "util", darray(u, n, from));
	json_object_set_new(o, "thr", darray(t, n, from));
	free(x);
	free(u);
	free(t);
	return o;
}

// Reads the events after p->after, page by page, into p. Returns 0 or an
// exit code.
static int
prof_feed(struct web_stats *s, struct prof *p, bool *stop)
{
	for (;;) {
		Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
		Copal__Reply *rep;
		er.after_seq = p->after;
		er.since_us = p->after ? 0 : p->w.since_us;
		er.limit = EV_PAGE;
		int rc = cli_call_rc(s->c, cpl_call_export(s->c, &er, &rep));
		if (rc)
			return rc;
		const Copal__ExportReply *x = rep->export;
		bool more = x->more && x->last_seq > p->after;
		if ((rc = stats_page(x, p->st)) != 0) {
			cpl_reply_free(rep);
			return rc;
		}
		if (x->last_seq > p->after)
			p->after = x->last_seq;
		cpl_reply_free(rep);
		if (!more) {
			p->loaded = true;
			return 0;
		}
		// a long first pass shows its progress
		json_t *j = prof_json(p, p->w.since_us ? "hour" : "all", 0);
		pthread_mutex_lock(&s->mu);
		json_t **slot = p == &s->all ? &s->snap_all : &s->snap_hour;
		json_decref(*slot);
		*slot = j;
		bool st = s->stop;
		pthread_mutex_unlock(&s->mu);
		if (st) {
			*stop = true;
			return 0;
		}
	}
}

static void *
stats_main(void *arg)
{
	web *w = arg;
	struct web_stats *s = w->stats;
	for (;;) {
		uint64_t now;
		bool stop = false;
		if (ev_broker_now(s->c, &now) == 0) {
			if (s->hour.st == NULL ||
			    now - s->hour.made_us > WEB_HOUR_REBUILD_US)
				prof_reset(&s->hour, now - WEB_HOUR_US, now);
			if (prof_feed(s, &s->all, &stop) == 0 && !stop &&
			    prof_feed(s, &s->hour, &stop) == 0 && !stop) {
				json_t *a = prof_json(&s->all, "all", 0);
				json_t *h = prof_json(&s->hour, "hour",
				    now - WEB_HOUR_US);
				pthread_mutex_lock(&s->mu);
				json_decref(s->snap_all);
				json_decref(s->snap_hour);
				s->snap_all = a;
				s->snap_hour = h;
				pthread_mutex_unlock(&s->mu);
			}
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WEB_STATS_PERIOD_MS / 1000;
		pthread_mutex_lock(&s->mu);
		while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
			;
		stop = s->stop;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			return NULL;
	}
}

int
web_stats_start(web *w)
{
	struct web_stats *s = xcalloc(1, sizeof(*s));
	int rc;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	w->stats = s;
	if ((rc = cli_connect(&s->c)) != 0)
		return rc;
	prof_reset(&s->all, 0, 0);
	if ((errno = pthread_create(&s->th, NULL, stats_main, w)) != 0) {
		cli_err("cannot start a thread: %s", strerror(errno));
		return EXIT_ERR;
	}
	s->started = true;
	return 0;
}

void
web_stats_stop(web *w)
{
	struct web_stats *s = w->stats;
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->th, NULL);
	prof_free(&s->all);
	prof_free(&s->hour);
	json_decref(s->snap_all);
	json_decref(s->snap_hour);
	cpl_client_close(s->c);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	w->stats = NULL;
}

json_t *
web_stats_get(web *w, bool hour)
{
	struct web_stats *s = w->stats;
	json_t *j;
	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&s->mu);
	j = json_incref(hour ? s->snap_hour : s->snap_all);
	pthread_mutex_unlock(&s->mu);
	return j;
}
