// Small helpers: time formatting, the y/n prompt, shell quoting.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void
fmt_time_us(uint64_t us, char *buf, size_t len)
{
	time_t s = (time_t)(us / 1000000u);
	struct tm tm;
	if (us == 0 || localtime_r(&s, &tm) == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06u", (unsigned)(us % 1000000u));
}

void
fmt_time_iso(uint64_t us, char *buf, size_t len)
{
	time_t s = (time_t)(us / 1000000u);
	struct tm tm;
	if (us == 0 || gmtime_r(&s, &tm) == NULL) {
		snprintf(buf, len, "%s", "");
		return;
	}
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06uZ", (unsigned)(us % 1000000u));
}

double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool
confirm(const char *prompt)
{
	char line[64];
	fputs(prompt, stdout);
	fputs(" [y/n]: ", stdout);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		fputc('\n', stdout);
		return false;
	}
	if (!isatty(STDIN_FILENO))
		fputs(line, stdout); // echo what was read, as a terminal would
	char *p = line;
	while (isspace((unsigned char)*p))
		p++;
	return !strncasecmp(p, "y", 1) &&
	    (p[1] == '\0' || isspace((unsigned char)p[1]) ||
	        !strncasecmp(p, "yes", 3));
}

void
shell_quote(FILE *fp, const char *s)
{
	fputc('\'', fp);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", fp);
		else
			fputc(*s, fp);
	}
	fputc('\'', fp);
}

bool
is_uuid_prefix(const char *s)
{
	size_t hex = 0;
	for (; *s; s++) {
		if (isxdigit((unsigned char)*s))
			hex++;
		else if (*s != '-')
			return false;
	}
	return hex > 0 && hex <= 32;
}

void
cli_oom(void)
{
	cli_err("out of memory");
	exit(EXIT_ERR);
}
