// Value checks of the settings reader: what a setting's text may be
// (conf.c's tables name these for each key).
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_check.h"
#include "copal/conf.h"

// ------------------------------------------------------------ value checks

const char *const cpl_schedulers[] = { "local", "slurm", "pbs", "cobalt",
	NULL };

bool
cpl_scheduler_known(const char *v)
{
	for (const char *const *s = cpl_schedulers; *s; s++)
		if (strcmp(v, *s) == 0)
			return true;
	return false;
}

bool
conf_is_job_mode(const char *v)
{
	return strcmp(v, "serial") == 0 || strcmp(v, "mpi") == 0;
}

bool
conf_name_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || strchr("._@+-", ch) != NULL;
}

// Names end up on scheduler command lines and in job scripts unquoted:
// only characters that no shell treats specially.
bool
conf_is_name(const char *v)
{
	if (*v == '\0')
		return false;
	for (; *v; v++)
		if (!conf_name_char(*v))
			return false;
	return true;
}

bool
conf_is_name_or_empty(const char *v)
{
	return *v == '\0' || conf_is_name(v);
}

bool
conf_is_claim_order(const char *v)
{
	return strcmp(v, "fifo") == 0 || strcmp(v, "long_large_first") == 0;
}

bool
conf_is_code_list(const char *v)
{
	return cpl_code_list_parse(v, NULL) == 0;
}

bool
conf_is_uuid_kind(const char *v)
{
	return strcmp(v, "random") == 0 || strcmp(v, "time") == 0;
}

bool
conf_is_bool(const char *v)
{
	return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
}

bool
conf_is_any(const char *v)
{
	(void)v;
	return true;
}

// "" or [tls+]tcp://HOST:PORT: HOST empty or * (every interface), a name
// or IPv4 address, or [IPv6]; PORT 1..65535. The broker hands the URL to
// nng; checking it here makes a typo a message with a line number instead
// of a broker that will not start. (Whether plain tcp:// may be used is
// the broker's question: broker_tcp_insecure.)
bool
conf_is_tcp(const char *v)
{
	if (*v == '\0')
		return true;
	if (strncmp(v, "tls+", 4) == 0)
		v += 4;
	if (strncmp(v, "tcp://", 6) != 0)
		return false;
	const char *host = v + 6, *colon = strrchr(host, ':');
	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
		return false;
	unsigned long port = 0;
	for (const char *d = colon + 1; *d; d++) {
		if (*d < '0' || *d > '9')
			return false;
		port = port * 10 + (unsigned long)(*d - '0');
	}
	if (port < 1 || port > 65535)
		return false;
	size_t hl = (size_t)(colon - host);
	if (hl > 0 && host[0] == '[') {
		if (hl < 3 || host[hl - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < hl; i++)
			if (strchr("0123456789abcdefABCDEF:.", host[i]) == NULL)
				return false;
		return true;
	}
	if (hl == 1 && host[0] == '*')
		return true;
	for (size_t i = 0; i < hl; i++) {
		char ch = host[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		        (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		        ch == '_'))
			return false;
	}
	return true;
}

// "" or a host for broker_advertise: a name or IPv4 address (letters,
// digits . - _), or [IPv6].
bool
conf_is_host_or_empty(const char *v)
{
	size_t n = strlen(v);
	if (n == 0)
		return true;
	if (n > 253)
		return false;
	if (v[0] == '[') {
		if (n < 3 || v[n - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < n; i++)
			if (strchr("0123456789abcdefABCDEF:.", v[i]) == NULL)
				return false;
		return true;
	}
	for (const char *p = v; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		        (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		        *p == '_'))
			return false;
	return true;
}

bool
conf_is_refuse_warn(const char *v)
{
	return strcmp(v, "refuse") == 0 || strcmp(v, "warn") == 0;
}

