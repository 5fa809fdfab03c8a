// copal stats, inside: a campaign's profile from one pass over the event
// log. stats_calc.c keeps the profile while the log streams by (events.c),
// stats_svg.c draws its time series, cmd_stats.c parses the options,
// fetches the counts and prints the report.
//
// What is kept, none of it growing with the number of events:
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
#ifndef COPAL_STATS_H
#define COPAL_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

#define SAMPLE_CAP 100000u
#define SERIES_CAP 600u
#define US 1000000.0

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

// Quantile q (0..1) with linear interpolation between the closest ranks
// of the sample (sorts it the first time).
double dist_q(dist *d, double q);

// ------------------------------------------------------------ time series

typedef struct series {
	bool started;
	uint64_t t0;      // start of bucket 0 (a multiple of the width)
	unsigned rung;    // index in the ladder of widths (stats_calc.c)
	size_t n;         // buckets in use
	double done[SERIES_CAP];   // tasks finished
	double area[SERIES_CAP];   // busy node-units x microseconds
	double rarea[SERIES_CAP];  // open runs x microseconds
} series;

// ------------------------------------------------------------ the profile

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
	// who did what: the events users caused (copal.proto, Event.user)
	strset users;
	struct ustat *us;
	size_t capus;
};

// The events one user caused, by kind.
struct ustat {
	uint64_t events, created, restarted, killed, deleted;
};

// Readies a zeroed struct stats (by_runs may be set already) for the
// window w, which must outlive it.
void stats_init(struct stats *st, const ev_window *w);
// Frees what st holds, closes both clients; st itself stays the caller's.
// Also right after the xcalloc, without stats_init.
void stats_free(struct stats *st);

// The counters of workflow name (added if new); *idx (may be NULL) gets
// its number in st->wfs. The pointer is valid until the next call.
struct wfstat *stats_wf(struct stats *st, const char *name, uint32_t *idx);

// The ev_stream callback (arg: the struct stats). Unless by_runs, asks the
// broker for the specs of the page's tasks that start running, through
// st->qc (opened at the first need). Returns 0 or an exit code.
int stats_page(const Copal__ExportReply *page, void *arg);

// After the stream: runs still open count as busy up to the last event.
void stats_finish(struct stats *st);

// The width of the series' buckets in seconds.
uint64_t stats_bucket_s(const struct stats *st);

// The plot points, st->ser.n of each: one per bucket, at the middle of the
// part of the bucket inside the activity. Utilization: average busy nodes
// (or runs) over that part; throughput: tasks finished in the bucket per
// minute.
void stats_points(const struct stats *st, double *x, double *util,
    double *thr);

// Writes DIR/utilization.svg and DIR/throughput.svg (DIR made if missing).
// Returns 0 or an exit code (the reason is printed).
int stats_write_plots(const struct stats *st, const char *dir);

#endif // COPAL_STATS_H
