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
    int level, const char *id, const char *msg)
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
	fflush(fp);
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
	pthread_mutex_lock(&mtx);
	if (nsinks == 0)
		put_line(stderr, &broker_style, &now, level, id, msg);
	for (size_t i = 0; i < nsinks; i++)
		put_line(sinks[i].fp, &sinks[i].st, &now, level, id, msg);
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
