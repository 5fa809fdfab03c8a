// The launcher's log: one line per message on stderr, with the time and
// the syslog level's name.
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "launcher_impl.h"

static int log_level = LL_NOTICE;

void
log_set_level(int level)
{
	log_level = level;
}

void
logm(int level, const char *fmt, ...)
{
	static const char *const names[] = { "", "", "", "ERROR", "WARN",
		"NOTICE", "INFO", "DEBUG" };
	va_list ap;
	if (level > log_level)
		return;
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld launcher %-6s ", ts, now.tv_nsec / 1000000,
	    names[level & 7]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
