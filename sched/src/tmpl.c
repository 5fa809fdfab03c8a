// The job-script template renderer (see tmpl.h).
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/tmpl.h"

// A growing output buffer; on a failed allocation it stays failed.
typedef struct buf {
	char *s;
	size_t n, cap;
	bool oom;
} buf;

static void
put(buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *s2 = realloc(b->s, cap);
		if (s2 == NULL) {
			b->oom = true;
			return;
		}
		b->s = s2;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

// The known names, for the message about an unknown one.
static void
known_names(const tmpl_var *vars, size_t nvars, char *out, size_t len)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < nvars && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "",
		    vars[i].name ? vars[i].name : "(null)");
}

char *
tmpl_render(const char *text, const tmpl_var *vars, size_t nvars,
    char *err, size_t errlen)
{
	buf b = { NULL, 0, 0, false };
	unsigned line = 1;
	const char *p = text;

	if (err && errlen)
		err[0] = '\0';
	if (text == NULL) {
		errf(err, errlen, "0: no template");
		return NULL;
	}
	put(&b, "", 0); // an empty template renders as ""
	for (;;) {
		const char *open = strstr(p, "{{");
		const char *upto = open ? open : p + strlen(p);
		for (const char *q = p; q < upto; q++)
			line += *q == '\n';
		put(&b, p, (size_t)(upto - p));
		if (open == NULL)
			break;
		const char *q = open + 2;
		while (*q == ' ' || *q == '\t')
			q++;
		const char *name = q;
		while (name_char(*q))
			q++;
		size_t nlen = (size_t)(q - name);
		while (*q == ' ' || *q == '\t')
			q++;
		if (q[0] != '}' || q[1] != '}') {
			if (*q == '\0' || *q == '\n' || *q == '\r' || *q == '}')
				errf(err, errlen, "%u: {{ not closed by }} on its "
				    "line", line);
			else if (*q > ' ' && *q < 0x7f)
				errf(err, errlen, "%u: '%c' cannot be in a "
				    "variable name (letters, digits and _)", line,
				    *q);
			else
				errf(err, errlen, "%u: byte 0x%02x cannot be in "
				    "a variable name (letters, digits and _)",
				    line, (unsigned char)*q);
			goto fail;
		}
		if (nlen == 0) {
			errf(err, errlen, "%u: {{ }} without a variable name",
			    line);
			goto fail;
		}
		size_t i;
		for (i = 0; i < nvars; i++)
			if (vars[i].name && strlen(vars[i].name) == nlen &&
			    memcmp(vars[i].name, name, nlen) == 0)
				break;
		if (i == nvars) {
			char known[512];
			known_names(vars, nvars, known, sizeof(known));
			errf(err, errlen, "%u: unknown variable {{ %.*s }} "
			    "(known: %s)", line, (int)nlen, name, known);
			goto fail;
		}
		const char *v = vars[i].value ? vars[i].value : "";
		put(&b, v, strlen(v));
		p = q + 2;
	}
	if (b.oom) {
		errf(err, errlen, "%u: out of memory", line);
		goto fail;
	}
	return b.s;
fail:
	free(b.s);
	return NULL;
}

const char *
tmpl_default(const char *scheduler)
{
	if (scheduler == NULL)
		return NULL;
	for (size_t i = 0; tmpl_schedulers[i]; i++)
		if (strcmp(tmpl_schedulers[i], scheduler) == 0)
			return tmpl_texts[i];
	return NULL;
}
