// Tags, app parameters and launch parameters (copal/params.h).
#include <stdio.h>
#include <string.h>

#include "copal/common.h"
#include "copal/params.h"

#define FAIL(...)                                                          \
	do {                                                               \
		if (err != NULL && errlen > 0)                             \
			snprintf(err, errlen, __VA_ARGS__);                \
		return CPL_EINVAL;                                         \
	} while (0)

// Length of the well-formed UTF-8 character at s (n bytes left), 0 if
// none: overlongs, surrogates and code points above U+10FFFF are refused.
static size_t
utf8_char(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min, cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2, min = 0x80, cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, min = 0x800, cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
cpl_tag_check(const char *tag, char *err, size_t errlen)
{
	if (tag == NULL || tag[0] == '\0')
		FAIL("empty tag: tags are key=value");
	size_t n = strlen(tag);
	const char *eq = strchr(tag, '=');
	if (n > CPL_TAG_MAX)
		FAIL("tag of %zu bytes is above the limit %u", n, CPL_TAG_MAX);
	for (size_t i = 0; i < n;) {
		const unsigned char *p = (const unsigned char *)tag + i;
		size_t l = utf8_char(p, n - i);
		if (l == 0)
			FAIL("tag is not valid UTF-8");
		if (*p < 0x20 || *p == 0x7f)
			FAIL("tag has a control character");
		i += l;
	}
	if (eq == NULL)
		FAIL("tag \"%s\" is not key=value", tag);
	if (eq == tag)
		FAIL("tag \"%s\" has an empty key", tag);
	return 0;
}

bool
cpl_param_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > CPL_PARAM_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

// Parses the placeholder at p (which starts with "{{"): its name's start
// and length, and the length of the whole placeholder. false if it is not
// "{{ name }}".
static bool
placeholder(const char *p, const char **name, size_t *nlen, size_t *len)
{
	const char *q = p + 2;
	while (*q == ' ')
		q++;
	const char *s = q;
	while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
	    (*q >= '0' && *q <= '9') || *q == '_')
		q++;
	if (q == s)
		return false;
	*name = s;
	*nlen = (size_t)(q - s);
	while (*q == ' ')
		q++;
	if (q[0] != '}' || q[1] != '}')
		return false;
	*len = (size_t)(q + 2 - p);
	return true;
}

static const Copal__AppParam *
param_find(const Copal__App *app, const char *name, size_t nlen)
{
	for (size_t i = 0; i < app->n_params; i++) {
		const char *pn = app->params[i]->name;
		if (pn && strlen(pn) == nlen && memcmp(pn, name, nlen) == 0)
			return app->params[i];
	}
	return NULL;
}

int
cpl_app_params_check(const Copal__App *app, char *err, size_t errlen)
{
	if (app == NULL)
		FAIL("no app");
	if (app->n_params > CPL_PARAMS_MAX)
		FAIL("app has %zu parameters, above the limit %u",
		    app->n_params, CPL_PARAMS_MAX);
	for (size_t i = 0; i < app->n_params; i++) {
		const Copal__AppParam *p = app->params[i];
		if (p == NULL || !cpl_param_name_ok(p->name))
			FAIL("parameter name \"%s\": letters, digits and _, "
			    "not a digit first, at most %u bytes",
			    p && p->name ? p->name : "", CPL_PARAM_NAME_MAX);
		if (p->default_value &&
		    strlen(p->default_value) > CPL_PARAM_VALUE_MAX)
			FAIL("default of parameter %s is above the limit of "
			    "%u bytes", p->name, CPL_PARAM_VALUE_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(app->params[j]->name, p->name) == 0)
				FAIL("parameter %s is declared twice", p->name);
	}
	if (app->n_params == 0)
		return 0; // a plain command line: braces are the user's
	const char *x = app->executable ? app->executable : "";
	for (const char *p = strstr(x, "{{"); p; p = strstr(p, "{{")) {
		const char *name;
		size_t nlen, len;
		if (!placeholder(p, &name, &nlen, &len))
			FAIL("command template: \"{{\" at byte %zu does not "
			    "start a placeholder {{ name }}", (size_t)(p - x));
		if (param_find(app, name, nlen) == NULL)
			FAIL("command template uses {{ %.*s }}, which is not a "
			    "declared parameter", (int)nlen, name);
		p += len;
	}
	return 0;
}

int
cpl_task_params_check(const Copal__App *app, const Copal__TaskSpec *sp,
    char *err, size_t errlen)
{
	if (sp->n_params > CPL_PARAMS_MAX)
		FAIL("task has %zu parameters, above the limit %u",
		    sp->n_params, CPL_PARAMS_MAX);
	for (size_t i = 0; i < sp->n_params; i++) {
		const Copal__EnvVar *v = sp->params[i];
		const char *n = v && v->name ? v->name : "";
		if (param_find(app, n, strlen(n)) == NULL)
			FAIL("unknown parameter %s: app %s declares %s", n,
			    app->name, app->n_params ? "others" : "none");
		if (v->value && strlen(v->value) > CPL_PARAM_VALUE_MAX)
			FAIL("value of parameter %s is above the limit of %u "
			    "bytes", n, CPL_PARAM_VALUE_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(sp->params[j]->name, n) == 0)
				FAIL("parameter %s is given twice", n);
	}
	for (size_t i = 0; i < app->n_params; i++) {
		const Copal__AppParam *p = app->params[i];
		if (p->has_default)
			continue;
		bool given = false;
		for (size_t j = 0; j < sp->n_params && !given; j++)
			given = strcmp(sp->params[j]->name, p->name) == 0;
		if (!given)
			FAIL("missing parameter %s: app %s has no default for "
			    "it", p->name, app->name);
	}
	return 0;
}

static int
put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	if (*pos + n + 1 > outlen)
		return CPL_ETOOBIG;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return 0;
}

int
cpl_shell_word(char *out, size_t outlen, size_t *pos, const char *s)
{
	int rv;
	if ((rv = put(out, outlen, pos, "'", 1)) != 0)
		return rv;
	for (const char *q; (q = strchr(s, '\'')) != NULL; s = q + 1) {
		if ((rv = put(out, outlen, pos, s, (size_t)(q - s))) != 0 ||
		    (rv = put(out, outlen, pos, "'\\''", 4)) != 0)
			return rv;
	}
	if ((rv = put(out, outlen, pos, s, strlen(s))) != 0)
		return rv;
	return put(out, outlen, pos, "'", 1);
}

int
cpl_cmd_render(const Copal__App *app, const Copal__TaskSpec *sp, char *out,
    size_t outlen)
{
	const char *x = app->executable ? app->executable : "";
	size_t pos = 0;
	int rv;
	if (outlen == 0)
		return CPL_ETOOBIG;
	out[0] = '\0';
	if (app->n_params == 0)
		return put(out, outlen, &pos, x, strlen(x));
	for (const char *p; (p = strstr(x, "{{")) != NULL;) {
		const char *name, *val = NULL;
		size_t nlen, len;
		if (!placeholder(p, &name, &nlen, &len))
			return CPL_EINVAL;
		const Copal__AppParam *ap = param_find(app, name, nlen);
		if (ap == NULL)
			return CPL_EINVAL;
		for (size_t i = 0; i < sp->n_params && val == NULL; i++)
			if (strcmp(sp->params[i]->name, ap->name) == 0)
				val = sp->params[i]->value;
		if (val == NULL && !ap->has_default)
			return CPL_EINVAL;
		if (val == NULL)
			val = ap->default_value;
		if ((rv = put(out, outlen, &pos, x, (size_t)(p - x))) != 0 ||
		    (rv = cpl_shell_word(out, outlen, &pos,
		         val ? val : "")) != 0)
			return rv;
		x = p + len;
	}
	return put(out, outlen, &pos, x, strlen(x));
}
