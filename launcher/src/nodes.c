// Node discovery: Slurm hostlists, PBS and Cobalt node files, local host.
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "copal/common.h"
#include "nodes.h"

static int
push(nodelist *l, size_t *cap, const char *name, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->names[i]) == len &&
		    memcmp(l->names[i], name, len) == 0)
			return 0; // merge duplicates
	if (l->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **v = realloc(l->names, nc * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		l->names = v;
		*cap = nc;
	}
	char *s = malloc(len + 1);
	if (s == NULL)
		return CPL_ENOMEM;
	memcpy(s, name, len);
	s[len] = '\0';
	l->names[l->n++] = s;
	return 0;
}

void
nodes_free(nodelist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	l->names = NULL;
	l->n = 0;
}

// Expands one host expression: prefix[ranges]suffix, where ranges is a
// comma list of N or N-M (zero padding kept). Only one bracket group per
// name is supported, as Slurm prints them.
static int
expand_one(nodelist *l, size_t *cap, const char *s, size_t len, size_t max)
{
	const char *lb = memchr(s, '[', len);
	int rv;
	if (lb == NULL) {
		if (len == 0 || len > 255)
			return CPL_EINVAL;
		if (l->n >= max)
			return CPL_EINVAL;
		return push(l, cap, s, len);
	}
	const char *rb = memchr(lb, ']', len - (size_t)(lb - s));
	if (rb == NULL)
		return CPL_EINVAL;
	size_t plen = (size_t)(lb - s), slen = len - (size_t)(rb - s) - 1;
	const char *suffix = rb + 1;
	if (memchr(suffix, '[', slen) || plen > 200 || slen > 50)
		return CPL_EINVAL;
	const char *p = lb + 1;
	if (p == rb)
		return CPL_EINVAL; // "n[]": brackets with no numbers
	while (p < rb) {
		const char *end = p;
		while (end < rb && *end != ',')
			end++;
		// N or N-M
		const char *dash = memchr(p, '-', (size_t)(end - p));
		const char *aend = dash ? dash : end;
		size_t width = (size_t)(aend - p);
		if (width == 0 || width > 18)
			return CPL_EINVAL;
		for (const char *q = p; q < end; q++)
			if (!isdigit((unsigned char)*q) && q != dash)
				return CPL_EINVAL;
		unsigned long long a = strtoull(p, NULL, 10), b = a;
		if (dash) {
			if (end - dash - 1 <= 0)
				return CPL_EINVAL;
			b = strtoull(dash + 1, NULL, 10);
		}
		if (b < a || b - a >= max)
			return CPL_EINVAL;
		for (unsigned long long v = a; v <= b; v++) {
			char buf[300];
			int n = snprintf(buf, sizeof(buf), "%.*s%0*llu%.*s",
			    (int)plen, s, (int)width, v, (int)slen, suffix);
			if (n < 0 || (size_t)n >= sizeof(buf))
				return CPL_EINVAL;
			if (l->n >= max)
				return CPL_EINVAL;
			if ((rv = push(l, cap, buf, (size_t)n)) != 0)
				return rv;
		}
		p = end < rb ? end + 1 : end;
	}
	return 0;
}

int
hostlist_expand(const char *spec, size_t max, nodelist *out)
{
	nodelist l = { NULL, 0, NULL };
	size_t cap = 0;
	int rv = 0;
	if (spec == NULL || *spec == '\0')
		return CPL_EINVAL;
	const char *p = spec;
	while (*p && rv == 0) {
		// a comma outside brackets ends one host expression
		const char *q = p;
		int depth = 0;
		while (*q && !(*q == ',' && depth == 0)) {
			if (*q == '[')
				depth++;
			else if (*q == ']' && --depth < 0)
				break;
			q++;
		}
		if (depth != 0) {
			rv = CPL_EINVAL;
			break;
		}
		rv = expand_one(&l, &cap, p, (size_t)(q - p), max);
		p = *q ? q + 1 : q;
	}
	if (rv == 0 && l.n == 0)
		rv = CPL_EINVAL; // nothing in it (",", "")
	if (rv) {
		nodes_free(&l);
		return rv;
	}
	*out = l;
	return 0;
}

static int
read_nodefile(const char *path, nodelist *out)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t cap = 0;
	int rv = 0;
	nodelist l = { NULL, 0, NULL };
	if (f == NULL)
		return CPL_ENOTFOUND;
	while (fgets(line, sizeof(line), f) && rv == 0) {
		size_t n = strcspn(line, " \t\r\n");
		if (n)
			rv = push(&l, &cap, line, n);
	}
	fclose(f);
	if (rv == 0 && l.n == 0)
		rv = CPL_EINVAL;
	if (rv) {
		nodes_free(&l);
		return rv;
	}
	*out = l;
	return 0;
}

int
nodes_discover(char *(*ge)(const char *), nodelist *out)
{
	const char *v;
	int rv;
	if (ge == NULL)
		ge = getenv;
	if ((v = ge("SLURM_JOB_NODELIST")) != NULL ||
	    (v = ge("SLURM_NODELIST")) != NULL) {
		if ((rv = hostlist_expand(v, 1u << 20, out)) == 0)
			out->source = "slurm";
		return rv;
	}
	if ((v = ge("PBS_NODEFILE")) != NULL) {
		if ((rv = read_nodefile(v, out)) == 0)
			out->source = "pbs";
		return rv;
	}
	if ((v = ge("COBALT_NODEFILE")) != NULL) {
		if ((rv = read_nodefile(v, out)) == 0)
			out->source = "cobalt";
		return rv;
	}
	if ((v = ge("COBALT_PARTNAME")) != NULL) {
		if (*v == '\0')
			return CPL_EINVAL;
		// Cobalt on Cray: a node id list such as "1-3,7"
		char spec[4096];
		snprintf(spec, sizeof(spec), "nid[%s]", v);
		if ((rv = hostlist_expand(spec, 1u << 20, out)) == 0)
			out->source = "cobalt";
		return rv;
	}
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[HOST_NAME_MAX] = '\0';
	size_t cap = 0;
	nodelist l = { NULL, 0, NULL };
	if ((rv = push(&l, &cap, host, strlen(host))) != 0)
		return rv;
	l.source = "local";
	*out = l;
	return 0;
}

// Whether a and b name the same host: equal, or equal up to the first '.'
// of the longer one.
static bool
same_host(const char *a, const char *b)
{
	size_t la = strcspn(a, "."), lb = strcspn(b, ".");
	if (strcmp(a, b) == 0)
		return true;
	return la == lb && strncmp(a, b, la) == 0 &&
	    (a[la] == '\0' || b[lb] == '\0');
}

size_t
nodes_find_host(const nodelist *l, const char *host)
{
	for (size_t i = 0; i < l->n; i++)
		if (same_host(l->names[i], host))
			return i;
	return l->n;
}

size_t
nodes_find_self(const nodelist *l)
{
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) != 0)
		return l->n;
	host[HOST_NAME_MAX] = '\0';
	return nodes_find_host(l, host);
}

int
nodes_slice(nodelist *l, size_t offset, size_t limit)
{
	if (offset >= l->n)
		return CPL_EINVAL;
	size_t keep = l->n - offset;
	if (limit && limit < keep)
		keep = limit;
	for (size_t i = 0; i < offset; i++)
		free(l->names[i]);
	for (size_t i = offset + keep; i < l->n; i++)
		free(l->names[i]);
	memmove(l->names, l->names + offset, keep * sizeof(char *));
	l->n = keep;
	return 0;
}
