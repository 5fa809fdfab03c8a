// Broker log: one line per event with time, level and a short stable id.
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include "broker.h"

int log_level = LOG_INFO;
static FILE *log_fp;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

int
log_open(const char *path)
{
	FILE *fp = path ? fopen(path, "a") : NULL;
	if (path && fp == NULL)
		return -1;
	if (fp)
		setvbuf(fp, NULL, _IOLBF, 0);
	log_fp = fp;
	return 0;
}

void
log_close(void)
{
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
}

void
log_msg(int level, const char *id, const char *fmt, ...)
{
	static const char *const names[] = { "EMERG", "ALERT", "CRIT", "ERROR",
		"WARN", "NOTICE", "INFO", "DEBUG" };
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	FILE *fp = log_fp ? log_fp : stderr;
	pthread_mutex_lock(&log_mtx);
	fprintf(fp, "%s.%03ldZ %-6s %-12s ", ts, now.tv_nsec / 1000000,
	    names[level & 7], id);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fputc('\n', fp);
	pthread_mutex_unlock(&log_mtx);
}
