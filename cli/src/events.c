// The event log as a stream (see events.h): paging with a fetching thread,
// time arguments, JSON strings, and the hash maps of the profiling verbs.
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"

const cli_opt window_opts[] = {
	{ "wf", KEY_WF, OPT_ARG, "WF", "only the tasks of workflow WF" },
	{ "since", KEY_SINCE, OPT_ARG, "T",
	    "only events at or after T: ISO 8601 (2026-11-25T15:00:00Z, "
	    "local time without a zone), -10m / -2h / -30s / -1d, or epoch "
	    "seconds" },
	{ "until", KEY_UNTIL, OPT_ARG, "T", "only events before T (same forms)" },
	{ "tag", KEY_WTAG, OPT_ARG, "K=V",
	    "only the tasks tagged K=V (repeat: all of them)" },
	{ NULL, 0, 0, NULL, NULL },
};

int
ev_window_opt(ev_window *w, int key, const char *arg, int *rc)
{
	*rc = 0;
	switch (key) {
	case KEY_WF:
		if (arg[0] == '\0')
			*rc = cli_usage("--wf: give a workflow name");
		w->workflow = arg;
		return 1;
	case KEY_WTAG: {
		char why[200];
		if (cpl_tag_check(arg, why, sizeof(why)) != 0)
			*rc = cli_usage("--tag: %s", why);
		else if (w->ntags == CPL_TAGS_MAX)
			*rc = cli_usage("--tag: at most %u", CPL_TAGS_MAX);
		else
			w->tags[w->ntags++] = (char *)arg;
		return 1;
	}
	case KEY_SINCE:
	case KEY_UNTIL: {
		// absolute times are final now; relative ones are checked
		// with a dummy clock and resolved once connected
		uint64_t t = 0;
		if (ev_parse_time(arg, UINT64_C(4102444800000000), &t) != 0)
			*rc = cli_usage("%s: %s is not a time (2026-11-25T15:00:00Z,"
			    " \"2026-11-25 15:00:00\", -10m, -2h, -30s or epoch "
			    "seconds)", key == KEY_SINCE ? "--since" : "--until",
			    arg);
		if (arg[0] == '-')
			t = 0;
		if (key == KEY_SINCE) {
			w->since = arg;
			w->since_us = t;
		} else {
			w->until = arg;
			w->until_us = t;
		}
		return 1;
	}
	default:
		return 0;
	}
}

int
ev_broker_now(cpl_client *c, uint64_t *now_us)
{
	Copal__Reply *rep;
	int rc;
	if ((rc = cli_call_rc(c, cpl_call_ping(c, &rep))) != 0)
		return rc;
	*now_us = rep->ping->broker_time_us;
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

int
ev_window_check(const ev_window *w)
{
	bool rel_s = w->since && w->since[0] == '-';
	bool rel_u = w->until && w->until[0] == '-';
	if (rel_s && rel_u) {
		// both relative: compare them against one clock
		uint64_t now = UINT64_C(4102444800000000), a = 0, b = 0;
		(void)ev_parse_time(w->since, now, &a);
		(void)ev_parse_time(w->until, now, &b);
		if (b <= a)
			goto bad;
	} else if (!rel_s && !rel_u && w->since_us && w->until_us &&
	    w->until_us <= w->since_us) {
		goto bad;
	}
	return 0;
bad:
	return cli_usage("--until %s is not after --since %s", w->until,
	    w->since);
}

int
ev_window_resolve(cpl_client *c, ev_window *w)
{
	uint64_t now = 0;
	int rc;
	bool rel_s = w->since && w->since[0] == '-';
	bool rel_u = w->until && w->until[0] == '-';
	if (!rel_s && !rel_u)
		return 0;
	if ((rc = ev_broker_now(c, &now)) != 0)
		return rc;
	if (rel_s && ev_parse_time(w->since, now, &w->since_us) != 0)
		return cli_usage("--since: %s is before the epoch", w->since);
	if (rel_u && ev_parse_time(w->until, now, &w->until_us) != 0)
		return cli_usage("--until: %s is before the epoch", w->until);
	if (w->since_us && w->until_us && w->until_us <= w->since_us)
		return cli_usage("--until %s is not after --since %s", w->until,
		    w->since);
	return 0;
}

// ------------------------------------------------------------ times

// n decimal digits at *p (exactly n); advances *p.
static bool
digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static int
parse_iso(const char *s, uint64_t *out)
{
	const char *p = s;
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	long frac_us = 0;
	bool zone = false;
	long off_s = 0;
	memset(&tm, 0, sizeof(tm));
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
	    *p++ != '-' || !digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',') {
				long scale = 100000;
				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				for (; isdigit((unsigned char)*p); p++) {
					frac_us += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (*p == 'Z' || *p == 'z') {
			zone = true;
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
			if (!digits(&p, 2, &oh))
				return -1;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char)*p) && !digits(&p, 2, &om))
				return -1;
			if (oh > 23 || om > 59)
				return -1;
			zone = true;
			off_s = sign * (oh * 3600L + om * 60L);
		}
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || y < 1970)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t;
	if (zone) {
		t = timegm(&tm);
		t -= off_s;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	// mktime/timegm normalize 2026-02-31 into March: refuse that
	if (t == (time_t)-1 || tm.tm_mday != d || t < 0)
		return -1;
	*out = (uint64_t)t * 1000000u + (uint64_t)frac_us;
	return 0;
}

int
ev_parse_time(const char *s, uint64_t now_us, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0')
		return -1;
	if (s[0] == '-') {
		// relative: -10m, -2h, -30s, -1d, -1.5h
		if (!isdigit((unsigned char)s[1]) && s[1] != '.')
			return -1;
		errno = 0;
		double v = strtod(s + 1, &end);
		double unit;
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -1;
		}
		if (errno || end[1] != '\0' || !isfinite(v) || v < 0)
			return -1;
		double us = v * unit * 1e6;
		if (us >= (double)now_us)
			return -1;
		*out = now_us - (uint64_t)us;
		return 0;
	}
	const char *p = s;
	while (isdigit((unsigned char)*p))
		p++;
	if (p > s && (*p == '\0' || *p == '.')) {
		// epoch seconds
		errno = 0;
		double v = strtod(s, &end);
		if (errno || *end || !isfinite(v) || v <= 0 || v > 4e12)
			return -1;
		*out = (uint64_t)(v * 1e6 + 0.5);
		return 0;
	}
	return parse_iso(s, out);
}

// ------------------------------------------------------------ JSON

// Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0.
static size_t
utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	if (c >= 0xC2 && c <= 0xDF)
		return (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
		    (p[3] & 0xC0) == 0x80 ? 4 : 0;
	}
	return 0;
}

void
json_str(FILE *fp, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	putc_unlocked('"', fp);
	while (*s) {
		const unsigned char *run = s;
		while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
			s++;
		if (s > run)
			fwrite_unlocked(run, 1, (size_t)(s - run), fp);
		if (*s == '\0')
			break;
		unsigned c = *s;
		if (c >= 0x80) {
			size_t n = utf8_len(s);
			if (n) {
				fwrite_unlocked(s, 1, n, fp);
				s += n;
			} else {
				fputs_unlocked("\xEF\xBF\xBD", fp); // U+FFFD
				s++;
			}
			continue;
		}
		s++;
		switch (c) {
		case '"': fputs_unlocked("\\\"", fp); break;
		case '\\': fputs_unlocked("\\\\", fp); break;
		case '\n': fputs_unlocked("\\n", fp); break;
		case '\r': fputs_unlocked("\\r", fp); break;
		case '\t': fputs_unlocked("\\t", fp); break;
		default: fprintf(fp, "\\u%04x", c); break;
		}
	}
	putc_unlocked('"', fp);
}

// ------------------------------------------------------------ stream

struct fetch {
	cpl_client *c;
	const ev_window *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	Copal__Reply *page; // a fetched page waiting for the consumer
	bool full;          // page (or rc / end) is there to take
	bool end;           // nothing comes after what is there
	int rc;             // the fetch failed (an exit code)
	bool stop;          // the consumer gave up
};

static void *
fetch_main(void *arg)
{
	struct fetch *f = arg;
	uint64_t after = 0;
	for (;;) {
		Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
		Copal__Reply *rep = NULL;
		// one page waits for the consumer at most: the next one is
		// asked for once it is taken (and fetched while it is used)
		pthread_mutex_lock(&f->mu);
		while (f->full && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		bool stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			return NULL;
		er.after_seq = after;
		er.since_us = f->w->since_us;
		er.until_us = f->w->until_us;
		er.workflow = (char *)(f->w->workflow ? f->w->workflow : "");
		er.tags = (char **)f->w->tags;
		er.n_tags = f->w->ntags;
		er.limit = EV_PAGE;
		int rc = cli_call_rc(f->c, cpl_call_export(f->c, &er, &rep));
		bool more = false;
		if (rc == 0) {
			const Copal__ExportReply *x = rep->export;
			// a page that does not advance would loop forever
			more = x->more && x->last_seq > after;
			after = x->last_seq;
		}
		pthread_mutex_lock(&f->mu);
		if (f->stop) {
			pthread_mutex_unlock(&f->mu);
			if (rep)
				copal__reply__free_unpacked(rep, NULL);
			return NULL;
		}
		f->page = rep;
		f->rc = rc;
		f->end = rc != 0 || !more;
		f->full = true;
		pthread_cond_broadcast(&f->cv);
		bool done = f->end;
		pthread_mutex_unlock(&f->mu);
		if (done)
			return NULL;
	}
}

int
ev_stream(cpl_client *c, const ev_window *w, ev_page_fn fn, void *arg)
{
	struct fetch f;
	pthread_t th;
	int rc;
	memset(&f, 0, sizeof(f));
	f.w = w;
	f.c = c;
	// Each page is a ~15 MB message and ~100,000 small objects, allocated
	// and freed again and again: keep them in the heap (no mmap, no trim
	// of the heap's top), or every page faults its memory in afresh. For
	// 4,000,000 events: 1.1 s of system time down to 0.2 s, same RSS.
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	if ((errno = pthread_create(&th, NULL, fetch_main, &f)) != 0) {
		cli_err("cannot start a thread: %s", strerror(errno));
		return EXIT_ERR;
	}
	for (;;) {
		pthread_mutex_lock(&f.mu);
		while (!f.full)
			pthread_cond_wait(&f.cv, &f.mu);
		Copal__Reply *page = f.page;
		bool end = f.end;
		rc = f.rc;
		f.page = NULL;
		f.full = false;
		pthread_cond_broadcast(&f.cv);
		pthread_mutex_unlock(&f.mu);
		if (rc)
			break;
		rc = fn(page->export, arg);
		copal__reply__free_unpacked(page, NULL);
		if (rc || end)
			break;
	}
	pthread_mutex_lock(&f.mu);
	f.stop = true;
	pthread_cond_broadcast(&f.cv);
	pthread_mutex_unlock(&f.mu);
	pthread_join(th, NULL);
	if (f.page)
		copal__reply__free_unpacked(f.page, NULL);
	pthread_mutex_destroy(&f.mu);
	pthread_cond_destroy(&f.cv);
	return rc;
}

// ------------------------------------------------------------ u64 map

static inline size_t
u64_slot(uint64_t key, size_t cap)
{
	return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (cap - 1);
}

void
u64map_init(u64map *m, size_t vsize)
{
	memset(m, 0, sizeof(*m));
	m->vsize = vsize ? vsize : 1;
}

void
u64map_free(u64map *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->n = 0;
}

static void
u64map_grow(u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 1024;
	uint64_t *ok = m->keys;
	unsigned char *ov = m->vals;
	size_t ocap = m->cap;
	m->keys = xcalloc(ncap, sizeof(uint64_t));
	m->vals = xmalloc(ncap * m->vsize);
	m->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (ok[i] == 0)
			continue;
		size_t j = u64_slot(ok[i], ncap);
		while (m->keys[j])
			j = (j + 1) & (ncap - 1);
		m->keys[j] = ok[i];
		memcpy(m->vals + j * m->vsize, ov + i * m->vsize, m->vsize);
	}
	free(ok);
	free(ov);
}

void *
u64map_get(const u64map *m, uint64_t key)
{
	if (m->cap == 0 || key == 0)
		return NULL;
	for (size_t j = u64_slot(key, m->cap);; j = (j + 1) & (m->cap - 1)) {
		if (m->keys[j] == key)
			return m->vals + j * m->vsize;
		if (m->keys[j] == 0)
			return NULL;
	}
}

void *
u64map_put(u64map *m, uint64_t key, bool *added)
{
	if ((m->n + 1) * 10 > m->cap * 6)
		u64map_grow(m);
	size_t j = u64_slot(key, m->cap);
	for (; m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		if (m->keys[j] == key) {
			if (added)
				*added = false;
			return m->vals + j * m->vsize;
		}
	}
	m->keys[j] = key;
	m->n++;
	memset(m->vals + j * m->vsize, 0, m->vsize);
	if (added)
		*added = true;
	return m->vals + j * m->vsize;
}

void
u64map_del(u64map *m, uint64_t key)
{
	if (m->cap == 0 || key == 0)
		return;
	size_t mask = m->cap - 1, j = u64_slot(key, m->cap);
	while (m->keys[j] != key) {
		if (m->keys[j] == 0)
			return;
		j = (j + 1) & mask;
	}
	// backward-shift deletion: no tombstones
	size_t hole = j;
	for (size_t k = (j + 1) & mask; m->keys[k]; k = (k + 1) & mask) {
		size_t home = u64_slot(m->keys[k], m->cap);
		// move k into the hole unless its home lies in (hole, k]
		bool stays = hole <= k ? (home > hole && home <= k) :
		                         (home > hole || home <= k);
		if (stays)
			continue;
		m->keys[hole] = m->keys[k];
		memcpy(m->vals + hole * m->vsize, m->vals + k * m->vsize,
		    m->vsize);
		hole = k;
	}
	m->keys[hole] = 0;
	m->n--;
}

bool
u64map_next(const u64map *m, size_t *i, uint64_t *key, void **val)
{
	for (; *i < m->cap; (*i)++) {
		if (m->keys[*i]) {
			*key = m->keys[*i];
			*val = m->vals + *i * m->vsize;
			(*i)++;
			return true;
		}
	}
	return false;
}

// ------------------------------------------------------------ strings

static uint64_t
str_hash(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return h;
}

void
strset_init(strset *s)
{
	memset(s, 0, sizeof(*s));
}

void
strset_free(strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

static void
strset_rehash(strset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 64;
	free(s->slots);
	s->slots = xcalloc(ncap, sizeof(uint32_t));
	s->cap = ncap;
	for (size_t i = 0; i < s->n; i++) {
		size_t j = (size_t)str_hash(s->strs[i]) & (ncap - 1);
		while (s->slots[j])
			j = (j + 1) & (ncap - 1);
		s->slots[j] = (uint32_t)i + 1;
	}
}

uint32_t
strset_add(strset *s, const char *str, bool *added)
{
	if ((s->n + 1) * 2 > s->cap)
		strset_rehash(s);
	size_t j = (size_t)str_hash(str) & (s->cap - 1);
	for (; s->slots[j]; j = (j + 1) & (s->cap - 1)) {
		uint32_t k = s->slots[j] - 1;
		if (strcmp(s->strs[k], str) == 0) {
			if (added)
				*added = false;
			return k;
		}
	}
	if (s->n == s->capn) {
		s->capn = s->capn ? s->capn * 2 : 16;
		s->strs = xrealloc(s->strs, s->capn * sizeof(char *));
	}
	s->strs[s->n] = xstrdup(str);
	s->slots[j] = (uint32_t)s->n + 1;
	if (added)
		*added = true;
	return (uint32_t)s->n++;
}
