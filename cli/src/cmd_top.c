// copal top: a live view of a database: tasks by state, throughput, and
// the launchers that hold leases.
//
// Each frame asks the broker for the time (PingRequest), the counts by
// state (CountRequest) and the live leases (LeaseListRequest): O(1) or
// O(launchers) work for the broker, whatever the size of the campaign.
// Throughput is the change of the JOB_FINISHED count between two frames;
// the first frame (and --once) counts the JOB_FINISHED events of the last
// interval in the event log instead (at most two pages of it).
//
// On a terminal the screen is redrawn in place (ANSI clear and home, the
// cursor hidden) and q or Ctrl-C ends the view, restoring the terminal.
// Elsewhere (a pipe, a file) the frames follow each other, as top -b does.
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "events.h"

enum { KEY_INTERVAL = 640, KEY_ONCE };

const cli_opt top_opts[] = {
	{ "interval", KEY_INTERVAL, OPT_ARG, "S",
	    "seconds between frames (default 2; 0.2 to 3600)" },
	{ "once", KEY_ONCE, OPT_NOARG, NULL, "print one frame and exit" },
	{ "wf", KEY_WF, OPT_ARG, "WF", "count only the tasks of workflow WF" },
	{ NULL, 0, 0, NULL, NULL },
};

static volatile sig_atomic_t top_stop;

static void
on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

// The terminal as it was, to restore.
static struct termios saved_tio;
static bool tio_saved, screen_alt;

static void
term_restore(void)
{
	if (screen_alt) {
		// show the cursor again; the last frame stays on the screen
		fputs("\033[?25h", stdout);
		fflush(stdout);
		screen_alt = false;
	}
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_saved = false;
	}
}

static void
term_setup(void)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios t = saved_tio;
		// keys one at a time, not echoed; ^C still signals
		t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
			tio_saved = true;
	}
	fputs("\033[?25l", stdout); // hide the cursor
	screen_alt = true;
	fflush(stdout);
}

// ------------------------------------------------------------ data

struct frame {
	Copal__Reply *ping, *count, *leases;
};

static void
frame_free(struct frame *f)
{
	if (f->ping)
		copal__reply__free_unpacked(f->ping, NULL);
	if (f->count)
		copal__reply__free_unpacked(f->count, NULL);
	if (f->leases)
		copal__reply__free_unpacked(f->leases, NULL);
	memset(f, 0, sizeof(*f));
}

static int
frame_fetch(cpl_client *c, const char *wf, struct frame *f)
{
	Copal__Filter flt = COPAL__FILTER__INIT;
	int rc;
	memset(f, 0, sizeof(*f));
	if ((rc = cli_call_rc(c, cpl_call_ping(c, &f->ping))) != 0)
		return rc;
	if (wf)
		flt.workflow = (char *)wf;
	if ((rc = cli_call_rc(c, cpl_call_count(c, wf ? &flt : NULL,
	         &f->count))) != 0)
		return rc;
	return cli_call_rc(c, cpl_call_lease_list(c, &f->leases));
}

static uint64_t
finished_of(const struct frame *f)
{
	const Copal__CountReply *r = f->count->count;
	return r->n_by_state > CPL_JOB_FINISHED ? r->by_state[CPL_JOB_FINISHED] :
	                                          0;
}

// JOB_FINISHED events from since_us on, from at most two pages of the log:
// *n of them up to *until_us (the last event looked at).
static int
recent_finished(cpl_client *c, const char *wf, uint64_t since_us,
    uint64_t now_us, uint64_t *n, uint64_t *until_us)
{
	uint64_t after = 0;
	*n = 0;
	*until_us = now_us;
	for (int page = 0; page < 2; page++) {
		Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
		Copal__Reply *rep;
		int rc;
		er.after_seq = after;
		er.since_us = since_us;
		er.workflow = (char *)(wf ? wf : "");
		er.limit = EV_PAGE;
		if ((rc = cli_call_rc(c, cpl_call_export(c, &er, &rep))) != 0)
			return rc;
		const Copal__ExportReply *x = rep->export;
		for (size_t i = 0; i < x->n_events; i++)
			if (x->events[i]->to_state ==
			    COPAL__TASK_STATE__STATE_JOB_FINISHED)
				(*n)++;
		bool more = x->more && x->last_seq > after;
		if (more && x->n_events)
			*until_us = x->events[x->n_events - 1]->time_us;
		after = x->last_seq;
		copal__reply__free_unpacked(rep, NULL);
		if (!more) {
			*until_us = now_us;
			break;
		}
	}
	return 0;
}

// ------------------------------------------------------------ drawing

static void
fmt_span(double s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "expired %.1f s ago", -s);
	else if (s < 120)
		snprintf(buf, len, "%.1f s", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0f min", s / 60);
	else
		snprintf(buf, len, "%.1f h", s / 3600);
}

static void
draw(FILE *fp, const struct frame *f, const char *wf, double interval,
    bool have_rate, double rate, double rate_s, bool live)
{
	const Copal__PingReply *p = f->ping->ping;
	const Copal__CountReply *cnt = f->count->count;
	const Copal__LeaseListReply *ll = f->leases->lease_list;
	char now[40], up[40];
	fmt_time_us(p->broker_time_us, now, sizeof(now));
	now[19] = '\0'; // to the second
	fmt_span(p->broker_time_us > p->started_us ?
	    (double)(p->broker_time_us - p->started_us) / 1e6 : 0, up,
	    sizeof(up));
	fprintf(fp, "copal top  %s  %s\n", now, p->db_dir);
	fprintf(fp, "broker pid %u, up %s, copal %s", p->pid, up, p->version);
	if (live)
		fprintf(fp, "; every %g s, q to quit", interval);
	fputc('\n', fp);

	fprintf(fp, "\nTasks%s%s: %" PRIu64 "\n", wf ? " of workflow " : "",
	    wf ? wf : "", cnt->total);
	int col = 0;
	for (size_t s = 1; s < cnt->n_by_state; s++) {
		if (cnt->by_state[s] == 0 && s != CPL_RUNNING && s != CPL_READY &&
		    s != CPL_JOB_FINISHED)
			continue;
		fprintf(fp, "  %-14s %9" PRIu64, cpl_state_name((int)s),
		    cnt->by_state[s]);
		if (++col % 3 == 0)
			fputc('\n', fp);
	}
	if (col % 3)
		fputc('\n', fp);

	if (have_rate)
		fprintf(fp, "\nThroughput: %.1f tasks/s finished (%.0f per "
		    "minute) over the last %.1f s\n", rate, rate * 60, rate_s);
	else
		fprintf(fp, "\nThroughput: measuring...\n");

	fprintf(fp, "\nLaunchers (live leases): %zu\n", ll->n_leases);
	if (ll->n_leases) {
		static const tcol cols[] = { { "lease", COL_INT },
			{ "tasks", COL_INT }, { "deadline in", COL_INT },
			{ "up", COL_INT }, { "owner", COL_STR } };
		table *t = table_open(FMT_TABLE, cols, 5, fp);
		for (size_t i = 0; i < ll->n_leases; i++) {
			const Copal__Lease *l = ll->leases[i];
			char id[24], nt[16], dl[40], lu[40];
			snprintf(id, sizeof(id), "%" PRIu64, l->id);
			snprintf(nt, sizeof(nt), "%u", l->ntasks);
			fmt_span(((double)l->deadline_us -
			    (double)p->broker_time_us) / 1e6, dl, sizeof(dl));
			fmt_span(l->created_us && p->broker_time_us > l->created_us ?
			    (double)(p->broker_time_us - l->created_us) / 1e6 : 0,
			    lu, sizeof(lu));
			const char *cells[] = { id, nt, dl, lu, l->owner };
			table_row(t, cells);
		}
		table_close(t);
	}
}

// Writes the frame in one go, each line cut to the terminal's width.
static void
show(const char *buf, size_t len, bool live)
{
	struct winsize ws;
	size_t width = 0, rows = 0;
	if (live && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
		width = ws.ws_col;
		rows = ws.ws_row;
	}
	if (live)
		fputs("\033[H\033[2J", stdout);
	size_t line = 0;
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && buf[e] != '\n')
			e++;
		if (rows && line + 1 >= rows)
			break;
		size_t n = e - i;
		if (width && n > width) {
			// cut at a character boundary of UTF-8
			size_t cols = 0, k = i;
			for (; k < e; k++) {
				if (((unsigned char)buf[k] & 0xC0) != 0x80 &&
				    cols++ == width)
					break;
			}
			n = k - i;
		}
		fwrite(buf + i, 1, n, stdout);
		if (e < len)
			fputc('\n', stdout);
		i = e + 1;
		line++;
	}
	fflush(stdout);
}

// Waits up to ms for a key: true if q (or Q) was pressed.
static bool
wait_key(int ms, bool keys)
{
	struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
	double end = now_s() + ms / 1000.0;
	while (!top_stop) {
		double left = end - now_s();
		if (left <= 0)
			return false;
		int r = poll(keys ? &pfd : NULL, keys ? 1 : 0, (int)(left * 1000) + 1);
		if (r > 0 && (pfd.revents & POLLIN)) {
			char ch[16];
			ssize_t n = read(STDIN_FILENO, ch, sizeof(ch));
			for (ssize_t i = 0; i < n; i++)
				if (ch[i] == 'q' || ch[i] == 'Q')
					return true;
			if (n == 0)
				keys = false; // end of input: keep the timer only
		} else if (r > 0) {
			keys = false; // POLLHUP or POLLERR
		}
	}
	return true;
}

int
cmd_top(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *wf = NULL;
	double interval = 2;
	bool once = false;
	cpl_client *c = NULL;
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == KEY_INTERVAL) {
			char *end;
			errno = 0;
			interval = strtod(arg, &end);
			if (errno || *end || end == arg || !(interval >= 0.2) ||
			    interval > 3600)
				rc = cli_usage("--interval: %s is not a number of "
				    "seconds from 0.2 to 3600", arg);
		} else if (k == KEY_ONCE) {
			once = true;
		} else if (k == KEY_WF) {
			wf = arg;
			if (wf[0] == '\0')
				rc = cli_usage("--wf: give a workflow name");
		} else {
			rc = EXIT_USAGE;
		}
		if (rc)
			goto done;
	}
	if ((rc = cli_no_operands(&p)) != 0)
		goto done;
	if ((rc = cli_connect(&c)) != 0)
		goto done;

	bool live = !once && isatty(STDOUT_FILENO);
	bool keys = live && isatty(STDIN_FILENO);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; // no SA_RESTART: poll returns at once
	sigemptyset(&sa.sa_mask);
	if (!once) {
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}
	if (live)
		term_setup();

	struct frame prev, cur;
	memset(&prev, 0, sizeof(prev));
	memset(&cur, 0, sizeof(cur));
	for (bool first = true; !top_stop; first = false) {
		bool have_rate = false;
		double rate = 0, rate_s = 0;
		if ((rc = frame_fetch(c, wf, &cur)) != 0)
			break;
		uint64_t now = cur.ping->ping->broker_time_us;
		if (first) {
			uint64_t span = (uint64_t)(interval * 1e6), n, until;
			uint64_t since = now > span ? now - span : 1;
			if ((rc = recent_finished(c, wf, since, now, &n, &until)) != 0)
				break;
			if (until > since) {
				rate_s = (double)(until - since) / 1e6;
				rate = (double)n / rate_s;
				have_rate = true;
			}
		} else {
			uint64_t then = prev.ping->ping->broker_time_us;
			uint64_t a = finished_of(&prev), b = finished_of(&cur);
			if (now > then) {
				rate_s = (double)(now - then) / 1e6;
				rate = b > a ? (double)(b - a) / rate_s : 0;
				have_rate = true;
			}
		}
		char *buf = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&buf, &len);
		if (mem == NULL) {
			cli_err("out of memory");
			rc = EXIT_ERR;
			break;
		}
		draw(mem, &cur, wf, interval, have_rate, rate, rate_s, live);
		fclose(mem);
		if (!live && !first)
			fputc('\n', stdout);
		show(buf, len, live);
		free(buf);
		frame_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		if (once || wait_key((int)(interval * 1000), keys))
			break;
	}
	frame_free(&prev);
	frame_free(&cur);
	term_restore();
done:
	cpl_client_close(c);
	cli_parse_free(&p);
	return rc;
}
