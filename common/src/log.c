// The one logger of the programs (copal/log.h).
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "copal/log.h"

#define MAX_SINKS 4

int cpl_log_level = CPL_LOG_INFO;

static const cpl_log_style broker_style = { CPL_LOG_UTC_MS, NULL, true,
	true, false };

static struct sink {
	FILE *fp;
	bool owned; // opened by cpl_log_add
	cpl_log_style st;
} sinks[MAX_SINKS];
static size_t nsinks;
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;

int
cpl_log_add(FILE *fp, const char *path, const cpl_log_style *st)
{
	pthread_mutex_lock(&mtx);
	if (nsinks == MAX_SINKS) {
		pthread_mutex_unlock(&mtx);
		errno = ENOSPC;
		return -1;
	}
	bool owned = false;
	if (path) {
		if ((fp = fopen(path, "ae")) == NULL) {
			int e = errno;
			pthread_mutex_unlock(&mtx);
			errno = e;
			return -1;
		}
		setvbuf(fp, NULL, _IOLBF, 0);
		owned = true;
	}
	sinks[nsinks].fp = fp ? fp : stderr;
	sinks[nsinks].owned = owned;
	sinks[nsinks].st = st ? *st : broker_style;
	nsinks++;
	pthread_mutex_unlock(&mtx);
	return 0;
}

void
cpl_log_close(void)
{
	pthread_mutex_lock(&mtx);
	for (size_t i = 0; i < nsinks; i++)
		if (sinks[i].owned)
			fclose(sinks[i].fp);
	nsinks = 0;
	pthread_mutex_unlock(&mtx);
}

static void
stamp(cpl_log_clock clock, const struct timespec *now, char *buf, size_t len)
{
	struct tm tm;
	size_t n;
	switch (clock) {
	case CPL_LOG_UTC_HMS_MS:
		gmtime_r(&now->tv_sec, &tm);
		n = strftime(buf, len, "%H:%M:%S", &tm);
		snprintf(buf + n, len - n, ".%03ld", now->tv_nsec / 1000000);
		break;
	case CPL_LOG_LOCAL_S:
		localtime_r(&now->tv_sec, &tm);
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
		break;
	case CPL_LOG_UTC_MS:
	default:
		gmtime_r(&now->tv_sec, &tm);
		n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(buf + n, len - n, ".%03ldZ", now->tv_nsec / 1000000);
		break;
	}
}

static void
put_line(FILE *fp, const cpl_log_style *st, const struct timespec *now,
    int level, const char *id, const char *msg, bool flush)
{
	static const char *const names[] = { "EMERG", "ALERT", "CRIT", "ERROR",
		"WARN", "NOTICE", "INFO", "DEBUG" };
	char ts[48];
	stamp(st->clock, now, ts, sizeof(ts));
	fputs(ts, fp);
	if (st->tag)
		fprintf(fp, " %s", st->tag);
	if (st->level)
		fprintf(fp, " %-6s", names[level & 7]);
	if (st->id)
		fprintf(fp, " %-12s", id ? id : "");
	if (st->pid)
		fprintf(fp, " [%ld]", (long)getpid());
	fputc(' ', fp);
	fputs(msg, fp);
	fputc('\n', fp);
	if (flush)
		fflush(fp);
}

// ---------------------------------------------------------------- holding

// This thread's held lines (cpl_log_hold), one after another in buf: each
// a struct held, then its id and its message, each ending in a NUL,
// padded to the struct's alignment.
struct held {
	struct timespec now;
	int level;
	size_t idlen, msglen;
};
#define HOLD_MAX (1u << 20) // written out beyond this; the hold goes on

static __thread struct {
	bool on;
	int level; // held: this level and below (numerically at least)
	char *buf;
	size_t len, cap;
} hold;

static size_t
held_size(const struct held *h)
{
	size_t n = sizeof(*h) + h->idlen + 1 + h->msglen + 1;
	return (n + _Alignof(struct held) - 1) & ~(_Alignof(struct held) - 1);
}

// Writes the held lines to every stream, one write each, and empties the
// hold. With the lock held.
static void
hold_write_locked(void)
{
	size_t ns = nsinks ? nsinks : 1;
	for (size_t i = 0; i < ns && hold.len; i++) {
		FILE *fp = nsinks ? sinks[i].fp : stderr;
		const cpl_log_style *st = nsinks ? &sinks[i].st : &broker_style;
		char *text = NULL;
		size_t tlen = 0;
		FILE *m = open_memstream(&text, &tlen);
		for (size_t off = 0; off < hold.len;) {
			const struct held *h = (const struct held *)(hold.buf + off);
			const char *id = (const char *)(h + 1);
			put_line(m ? m : fp, st, &h->now, h->level, id,
			    id + h->idlen + 1, false);
			off += held_size(h);
		}
		if (m != NULL && fclose(m) == 0 && text != NULL)
			fwrite(text, 1, tlen, fp);
		free(text);
		fflush(fp);
	}
	hold.len = 0;
}

static void
hold_write(void)
{
	pthread_mutex_lock(&mtx);
	hold_write_locked();
	pthread_mutex_unlock(&mtx);
}

// Keeps a line in the hold; false if it cannot (out of memory).
static bool
hold_add(const struct timespec *now, int level, const char *id,
    const char *msg)
{
	struct held h = { *now, level, id ? strlen(id) : 0, strlen(msg) };
	size_t need = held_size(&h);
	if (hold.len && hold.len + need > HOLD_MAX)
		hold_write();
	if (hold.len + need > hold.cap) {
		size_t cap = hold.cap ? hold.cap : 16384;
		while (cap < hold.len + need)
			cap *= 2;
		char *nb = realloc(hold.buf, cap);
		if (nb == NULL)
			return false;
		hold.buf = nb;
		hold.cap = cap;
	}
	char *p = hold.buf + hold.len;
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), id ? id : "", h.idlen + 1);
	memcpy(p + sizeof(h) + h.idlen + 1, msg, h.msglen + 1);
	hold.len += need;
	return true;
}

void
cpl_log_hold(int level)
{
	hold.on = true;
	hold.level = level;
}

void
cpl_log_release(bool write)
{
	if (write && hold.len)
		hold_write();
	// (not kept between holds: a thread's end would leave it behind)
	free(hold.buf);
	hold.buf = NULL;
	hold.len = hold.cap = 0;
	hold.on = false;
}

void
cpl_vlog(int level, const char *id, const char *fmt, va_list ap)
{
	if (level > cpl_log_level)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	// the message once, for every stream
	char small[1024], *msg = small;
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n >= (int)sizeof(small) && (msg = malloc((size_t)n + 1)) != NULL)
		vsnprintf(msg, (size_t)n + 1, fmt, ap2);
	else if (msg == NULL)
		msg = small; // out of memory: the message cut short
	va_end(ap2);
	if (hold.on && level >= hold.level && hold_add(&now, level, id, msg)) {
		if (msg != small)
			free(msg);
		return;
	}
	pthread_mutex_lock(&mtx);
	if (hold.len) // what this thread holds comes first
		hold_write_locked();
	if (nsinks == 0)
		put_line(stderr, &broker_style, &now, level, id, msg, true);
	for (size_t i = 0; i < nsinks; i++)
		put_line(sinks[i].fp, &sinks[i].st, &now, level, id, msg, true);
	pthread_mutex_unlock(&mtx);
	if (msg != small)
		free(msg);
}

void
cpl_log(int level, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cpl_vlog(level, id, fmt, ap);
	va_end(ap);
}
