// The one out-of-memory policy of the programs (copal/xalloc.h).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/xalloc.h"

static void
oom_default(void)
{
	fflush(stdout);
	fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
	exit(1);
}

static cpl_oom_fn oom_fn = oom_default;

cpl_oom_fn
cpl_set_oom_handler(cpl_oom_fn fn)
{
	cpl_oom_fn old = oom_fn;
	oom_fn = fn ? fn : oom_default;
	return old;
}

static void
oom(void)
{
	oom_fn();
	abort(); // a handler that returned
}

void *
cpl_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

void *
cpl_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom();
	return p;
}

void *
cpl_xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL)
		oom();
	return p;
}

char *
cpl_xstrdup(const char *s)
{
	char *p = strdup(s);
	if (p == NULL)
		oom();
	return p;
}
