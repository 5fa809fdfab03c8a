// copal export: the event log (every state change of every task) as JSON
// lines, CSV or a Chrome trace (Trace Event Format, opened by Perfetto and
// chrome://tracing).
//
// The log streams from the broker a page at a time (events.c); nothing
// grows with the number of events. The trace keeps only the runs that are
// open (RUNNING without an end yet), the launchers and the node slots.
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events.h"

enum { KEY_OUTPUT = 'o' };

const cli_opt export_opts[] = {
	{ "format", KEY_FORMAT, OPT_ARG, "FMT",
	    "jsonl (default), csv or chrome (a trace for Perfetto / "
	    "chrome://tracing)" },
	{ "output", KEY_OUTPUT, OPT_ARG, "FILE",
	    "write to FILE (default: standard output)" },
	{ NULL, 0, 0, NULL, NULL },
};

typedef enum { EXP_JSONL, EXP_CSV, EXP_CHROME } exp_fmt;

// ------------------------------------------------------------ numbers, times

// Decimal digits of v into buf (at least 21 bytes); returns the length.
static size_t
fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, k = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		buf[k++] = tmp[--n];
	buf[k] = '\0';
	return k;
}

static size_t
fmt_i64(char *buf, int64_t v)
{
	if (v < 0) {
		buf[0] = '-';
		return 1 + fmt_u64(buf + 1, (uint64_t)0 - (uint64_t)v);
	}
	return fmt_u64(buf, (uint64_t)v);
}

static void
put_u64(FILE *fp, uint64_t v)
{
	char b[24];
	fwrite_unlocked(b, 1, fmt_u64(b, v), fp);
}

static void
put_i64(FILE *fp, int64_t v)
{
	char b[24];
	fwrite_unlocked(b, 1, fmt_i64(b, v), fp);
}

// fmt_time_iso with the formatted second kept: events come in time order.
struct isocache {
	uint64_t sec;
	char head[24]; // "2026-11-25T15:00:00"
	size_t len;
};

static void
iso_us(struct isocache *c, uint64_t us, char *buf)
{
	uint64_t sec = us / 1000000u;
	if (us == 0) {
		buf[0] = '\0';
		return;
	}
	if (c->len == 0 || c->sec != sec) {
		time_t s = (time_t)sec;
		struct tm tm;
		if (gmtime_r(&s, &tm) == NULL) {
			buf[0] = '\0';
			return;
		}
		c->len = strftime(c->head, sizeof(c->head), "%Y-%m-%dT%H:%M:%S",
		    &tm);
		c->sec = sec;
	}
	memcpy(buf, c->head, c->len);
	char *p = buf + c->len;
	unsigned f = (unsigned)(us % 1000000u);
	*p++ = '.';
	for (int i = 5; i >= 0; i--) {
		p[i] = (char)('0' + f % 10);
		f /= 10;
	}
	p += 6;
	*p++ = 'Z';
	*p = '\0';
}

static const char *
state_name(int s)
{
	const char *n = cpl_state_name(s);
	return n ? n : "?";
}

// ------------------------------------------------------------ JSON lines
//
// Written by hand with json_str (events.c), in the layout of jansson's
// JSON_COMPACT: jansson's encoder (UTF-8 decoding of every character of
// every string) took 10.4 s of CPU for 4,000,000 events here, this 1.5 s.

static void
jl_event_obj(FILE *fp, const Copal__Event *e, const char *iso)
{
	fputs_unlocked("{\"seq\":", fp);
	put_u64(fp, e->seq);
	fputs_unlocked(",\"task\":", fp);
	put_u64(fp, e->task_id);
	fputs_unlocked(",\"uuid\":", fp);
	json_str(fp, e->uuid);
	fputs_unlocked(",\"name\":", fp);
	json_str(fp, e->name);
	fputs_unlocked(",\"workflow\":", fp);
	json_str(fp, e->workflow);
	fputs_unlocked(",\"from\":\"", fp);
	fputs_unlocked(state_name((int)e->from_state), fp);
	fputs_unlocked("\",\"to\":\"", fp);
	fputs_unlocked(state_name((int)e->to_state), fp);
	fputs_unlocked("\",\"time\":\"", fp);
	fputs_unlocked(iso, fp);
	fputs_unlocked("\",\"time_us\":", fp);
	put_u64(fp, ev_time(e));
	fputs_unlocked(",\"launcher\":", fp);
	json_str(fp, e->launcher);
	fputs_unlocked(",\"lease\":", fp);
	put_u64(fp, e->lease_id);
	fputs_unlocked(",\"node\":", fp);
	json_str(fp, e->node);
	fputs_unlocked(",\"attempt\":", fp);
	put_u64(fp, e->attempt);
	fputs_unlocked(",\"return_code\":", fp);
	put_i64(fp, e->return_code);
	fputs_unlocked(",\"message\":", fp);
	json_str(fp, e->message);
	fputs_unlocked(",\"commit_us\":", fp);
	put_u64(fp, e->time_us);
	fputs_unlocked(",\"user\":", fp);
	json_str(fp, e->user ? e->user : "");
	fputs_unlocked(",\"batch_job\":", fp);
	put_u64(fp, e->batch_job_id);
	fputs_unlocked(",\"scheduler_job_id\":", fp);
	json_str(fp, e->scheduler_job_id ? e->scheduler_job_id : "");
	fputc_unlocked('}', fp);
}

static void
jl_event(FILE *fp, const Copal__Event *e, const char *iso)
{
	jl_event_obj(fp, e, iso);
	fputc_unlocked('\n', fp);
}

void
export_event_json(FILE *fp, const Copal__Event *e)
{
	static struct isocache c; // one thread
	char iso[40];
	iso_us(&c, ev_time(e), iso);
	jl_event_obj(fp, e, iso);
}

// ------------------------------------------------------------ CSV

static const char csv_header[] = "seq,task,uuid,name,workflow,from,to,time,"
    "time_us,launcher,lease,node,attempt,return_code,message,commit_us,"
    "user,batch_job,scheduler_job_id\r\n";

static void
csv_event(FILE *fp, const Copal__Event *e, const char *iso)
{
	put_u64(fp, e->seq);
	putc_unlocked(',', fp);
	put_u64(fp, e->task_id);
	putc_unlocked(',', fp);
	csv_field(fp, e->uuid ? e->uuid : "");
	putc_unlocked(',', fp);
	csv_field(fp, e->name ? e->name : "");
	putc_unlocked(',', fp);
	csv_field(fp, e->workflow ? e->workflow : "");
	putc_unlocked(',', fp);
	fputs_unlocked(state_name((int)e->from_state), fp);
	putc_unlocked(',', fp);
	fputs_unlocked(state_name((int)e->to_state), fp);
	putc_unlocked(',', fp);
	fputs_unlocked(iso, fp);
	putc_unlocked(',', fp);
	put_u64(fp, ev_time(e));
	putc_unlocked(',', fp);
	csv_field(fp, e->launcher ? e->launcher : "");
	putc_unlocked(',', fp);
	put_u64(fp, e->lease_id);
	putc_unlocked(',', fp);
	csv_field(fp, e->node ? e->node : "");
	putc_unlocked(',', fp);
	put_u64(fp, e->attempt);
	putc_unlocked(',', fp);
	put_i64(fp, e->return_code);
	putc_unlocked(',', fp);
	csv_field(fp, e->message ? e->message : "");
	putc_unlocked(',', fp);
	put_u64(fp, e->time_us);
	putc_unlocked(',', fp);
	csv_field(fp, e->user ? e->user : "");
	putc_unlocked(',', fp);
	put_u64(fp, e->batch_job_id);
	putc_unlocked(',', fp);
	csv_field(fp, e->scheduler_job_id ? e->scheduler_job_id : "");
	fputs_unlocked("\r\n", fp);
}

// ------------------------------------------------------------ Chrome trace
//
// {"traceEvents":[ ...metadata and "X" spans... ],"displayTimeUnit":"ms"}
// One process per launcher (pid = lease id, named by the lease's owner),
// one thread per node slot (tid numbered in order of appearance, named
// "host/slot"), one complete event per run: from RUNNING to the event
// that ends the run.

struct orun {            // a run that is open
	uint64_t start_us;
	uint64_t lease;
	uint32_t tid;
	uint32_t attempt;
	char *uuid, *name, *wf;
};

struct chrome {
	FILE *fp;
	u64map open;     // task id -> struct orun
	u64map pids;     // lease ids announced
	u64map threads;  // (lease, tid) announced
	strset nodes;    // "host/slot" -> tid - 1
	uint64_t first_us, last_us;
	uint64_t since_us;
	uint64_t spans;
	bool comma;
};

static void
chrome_sep(struct chrome *c)
{
	fputs_unlocked(c->comma ? ",\n" : "\n", c->fp);
	c->comma = true;
}

static void
chrome_meta(struct chrome *c, const char *what, uint64_t pid, uint32_t tid,
    const char *name)
{
	chrome_sep(c);
	fputs_unlocked("{\"name\":\"", c->fp);
	fputs_unlocked(what, c->fp);
	fputs_unlocked("\",\"ph\":\"M\",\"pid\":", c->fp);
	put_u64(c->fp, pid);
	fputs_unlocked(",\"tid\":", c->fp);
	put_u64(c->fp, tid);
	fputs_unlocked(",\"args\":{\"name\":", c->fp);
	json_str(c->fp, name);
	fputs_unlocked("}}", c->fp);
}

// The thread of a node string, announced (with its process) if new.
static uint32_t
chrome_thread(struct chrome *c, uint64_t lease, const char *launcher,
    const char *node)
{
	bool added;
	const char *n = node && node[0] ? node : "(no node)";
	uint32_t tid = strset_add(&c->nodes, n, NULL) + 1;
	u64map_put(&c->pids, lease + 1, &added);
	if (added)
		chrome_meta(c, "process_name", lease,  0,
		    launcher && launcher[0] ? launcher :
		    lease ? "launcher" : "(no launcher)");
	u64map_put(&c->threads, ((lease << 32) | tid) + 1, &added);
	if (added)
		chrome_meta(c, "thread_name", lease, tid, n);
	return tid;
}

static void
outcome_of(int to, const char **outcome, const char **cname)
{
	switch (to) {
	case CPL_RUN_DONE:
	case CPL_POSTPROCESSED:
	case CPL_JOB_FINISHED:
		*outcome = "done";
		*cname = "good";
		break;
	case CPL_RUN_ERROR:
		*outcome = "error";
		*cname = "terrible";
		break;
	case CPL_FAILED:
		*outcome = "failed";
		*cname = "terrible";
		break;
	case CPL_RUN_TIMEOUT:
		*outcome = "timeout";
		*cname = "bad";
		break;
	case CPL_USER_KILLED:
	case CPL_PARENT_KILLED:
		*outcome = "killed";
		*cname = "grey";
		break;
	case CPL_RUNNING:
		*outcome = "running";
		*cname = "yellow";
		break;
	default:
		*outcome = "interrupted";
		*cname = "grey";
		break;
	}
}

static void
chrome_span(struct chrome *c, const struct orun *r, uint64_t end_us,
    const char *name, const char *wf, const char *uuid, int to, int rc)
{
	const char *outcome, *cname;
	FILE *fp = c->fp;
	outcome_of(to, &outcome, &cname);
	chrome_sep(c);
	fputs_unlocked("{\"name\":", fp);
	json_str(fp, name);
	fputs_unlocked(",\"cat\":", fp);
	json_str(fp, wf);
	fputs_unlocked(",\"ph\":\"X\",\"ts\":", fp);
	put_u64(fp, r->start_us);
	fputs_unlocked(",\"dur\":", fp);
	put_u64(fp, end_us > r->start_us ? end_us - r->start_us : 0);
	fputs_unlocked(",\"pid\":", fp);
	put_u64(fp, r->lease);
	fputs_unlocked(",\"tid\":", fp);
	put_u64(fp, r->tid);
	fputs_unlocked(",\"cname\":\"", fp);
	fputs_unlocked(cname, fp);
	fputs_unlocked("\",\"args\":{\"uuid\":", fp);
	json_str(fp, uuid);
	fputs_unlocked(",\"attempt\":", fp);
	put_u64(fp, r->attempt);
	fputs_unlocked(",\"outcome\":\"", fp);
	fputs_unlocked(outcome, fp);
	fputs_unlocked("\",\"return_code\":", fp);
	put_i64(fp, rc);
	fputs_unlocked("}}", fp);
	c->spans++;
}

static void
orun_clear(struct orun *r)
{
	free(r->uuid);
	free(r->name);
	free(r->wf);
}

static void
chrome_event(struct chrome *c, const Copal__Event *e)
{
	uint64_t t = ev_time(e);
	if (c->first_us == 0)
		c->first_us = t;
	if (t > c->last_us)
		c->last_us = t;
	struct orun *r = u64map_get(&c->open, e->task_id);
	if (r) {
		// any change of a task that runs ends its run; a second
		// RUNNING without an end ends the first one too
		int to = (int)e->to_state;
		chrome_span(c, r, t, e->name, e->workflow, e->uuid,
		    to == CPL_RUNNING ? CPL_STATE_NONE : to, e->return_code);
		orun_clear(r);
		u64map_del(&c->open, e->task_id);
	} else if (e->from_state == COPAL__TASK_STATE__STATE_RUNNING) {
		// the run began before the window: show it from its start
		struct orun w;
		memset(&w, 0, sizeof(w));
		w.start_us = c->since_us ? c->since_us : c->first_us;
		w.lease = e->lease_id;
		w.attempt = e->attempt;
		w.tid = chrome_thread(c, e->lease_id, e->launcher, e->node);
		chrome_span(c, &w, t, e->name, e->workflow, e->uuid,
		    (int)e->to_state, e->return_code);
	}
	if (e->to_state == COPAL__TASK_STATE__STATE_RUNNING) {
		r = u64map_put(&c->open, e->task_id, NULL);
		r->start_us = t;
		r->lease = e->lease_id;
		r->attempt = e->attempt;
		r->tid = chrome_thread(c, e->lease_id, e->launcher, e->node);
		r->uuid = xstrdup(e->uuid ? e->uuid : "");
		r->name = xstrdup(e->name ? e->name : "");
		r->wf = xstrdup(e->workflow ? e->workflow : "");
	}
}

// Runs with no end in the log end at its last event.
static void
chrome_finish(struct chrome *c)
{
	uint64_t k;
	void *v;
	for (size_t i = 0; u64map_next(&c->open, &i, &k, &v);) {
		struct orun *r = v;
		chrome_span(c, r, c->last_us, r->name, r->wf, r->uuid,
		    CPL_RUNNING, 0);
		orun_clear(r);
	}
	u64map_free(&c->open);
}

// ------------------------------------------------------------ the verb

struct exp {
	exp_fmt fmt;
	FILE *fp;
	struct chrome ch;
	struct isocache iso;
	uint64_t n;
};

static int
exp_page(const Copal__ExportReply *page, void *arg)
{
	struct exp *x = arg;
	char iso[40];
	for (size_t i = 0; i < page->n_events; i++) {
		const Copal__Event *e = page->events[i];
		switch (x->fmt) {
		case EXP_JSONL:
			iso_us(&x->iso, ev_time(e), iso);
			jl_event(x->fp, e, iso);
			break;
		case EXP_CSV:
			iso_us(&x->iso, ev_time(e), iso);
			csv_event(x->fp, e, iso);
			break;
		case EXP_CHROME:
			chrome_event(&x->ch, e);
			break;
		}
	}
	x->n += page->n_events;
	if (ferror(x->fp)) {
		cli_err("cannot write the output: %s", strerror(errno));
		return EXIT_ERR;
	}
	return 0;
}

int
cmd_export(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *out = NULL;
	ev_window w;
	struct exp x;
	cpl_client *c = NULL;
	int k, rc;
	bool to_file = false;
	memset(&w, 0, sizeof(w));
	memset(&x, 0, sizeof(x));
	x.fmt = EXP_JSONL;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (ev_window_opt(&w, k, arg, &rc)) {
		} else if (k == KEY_FORMAT) {
			if (!strcmp(arg, "jsonl"))
				x.fmt = EXP_JSONL;
			else if (!strcmp(arg, "csv"))
				x.fmt = EXP_CSV;
			else if (!strcmp(arg, "chrome"))
				x.fmt = EXP_CHROME;
			else
				rc = cli_usage("--format: %s is not jsonl, csv or "
				    "chrome", arg);
		} else if (k == KEY_OUTPUT) {
			out = arg;
			if (out[0] == '\0')
				rc = cli_usage("--output: give a file name");
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
	// the output first: nothing to refuse once connected
	if (out && strcmp(out, "-") != 0) {
		if ((x.fp = fopen(out, "w")) == NULL) {
			cli_err("cannot write %s: %s", out, strerror(errno));
			rc = EXIT_ERR;
			goto done;
		}
		to_file = true;
	} else {
		x.fp = stdout;
	}
	if ((rc = cli_connect(&c)) != 0 || (rc = ev_window_resolve(c, &w)) != 0) {
		if (to_file) {
			fclose(x.fp);
			unlink(out);
		}
		goto done;
	}
	setvbuf(x.fp, NULL, _IOFBF, 1 << 20);
	switch (x.fmt) {
	case EXP_JSONL:
		break;
	case EXP_CSV:
		fputs(csv_header, x.fp);
		break;
	case EXP_CHROME:
		u64map_init(&x.ch.open, sizeof(struct orun));
		u64map_init(&x.ch.pids, 1);
		u64map_init(&x.ch.threads, 1);
		strset_init(&x.ch.nodes);
		x.ch.fp = x.fp;
		x.ch.since_us = w.since_us;
		fputs("{\"traceEvents\":[", x.fp);
		break;
	}
	rc = ev_stream(c, &w, exp_page, &x);
	switch (x.fmt) {
	case EXP_JSONL:
	case EXP_CSV:
		break;
	case EXP_CHROME:
		// an incomplete trace is still closed: it stays valid JSON
		chrome_finish(&x.ch);
		fputs("\n],\"displayTimeUnit\":\"ms\"}\n", x.fp);
		u64map_free(&x.ch.pids);
		u64map_free(&x.ch.threads);
		strset_free(&x.ch.nodes);
		break;
	}
	if (fflush(x.fp) != 0 || ferror(x.fp)) {
		if (rc == 0)
			cli_err("cannot write %s: %s", to_file ? out :
			    "the output", strerror(errno));
		rc = rc ? rc : EXIT_ERR;
	}
	if (to_file) {
		if (fclose(x.fp) != 0 && rc == 0) {
			cli_err("cannot write %s: %s", out, strerror(errno));
			rc = EXIT_ERR;
		}
		if (rc == 0) {
			if (x.fmt == EXP_CHROME)
				fprintf(stderr, "copal export: %" PRIu64 " events, %"
				    PRIu64 " runs to %s\n", x.n, x.ch.spans, out);
			else
				fprintf(stderr, "copal export: %" PRIu64
				    " events to %s\n", x.n, out);
		}
	}
done:
	cpl_client_close(c);
	cli_parse_free(&p);
	return rc;
}
