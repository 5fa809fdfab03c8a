// Option parsing from per-verb option tables, and help text made from the
// same tables: an option exists in exactly one place.
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

const char *cli_verb_name = NULL;
const char *cli_db_opt = NULL;

const cli_opt common_opts[] = {
	{ "db", KEY_DB, OPT_ARG, "DIR",
	    "database directory (default: $COPAL_DB)" },
	{ "help", KEY_HELP, OPT_NOARG, NULL, "show this help" },
	{ NULL, 0, 0, NULL, NULL },
};

static void
vmsg(const char *kind, const char *fmt, va_list ap)
{
	fflush(stdout);
	if (cli_verb_name)
		fprintf(stderr, "copal %s: %s", cli_verb_name, kind);
	else
		fprintf(stderr, "copal: %s", kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
cli_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void
cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

int
cli_usage(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "copal %s: ", cli_verb_name ? cli_verb_name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see copal %s --help)\n",
	    cli_verb_name ? cli_verb_name : "");
	return EXIT_USAGE;
}

int
cli_no_operands(const cli_parse *p)
{
	return p->nargs ? cli_usage("unexpected argument %s", p->argv[p->first])
	                : 0;
}

int
cli_exit_for(int err)
{
	if (err == 0)
		return EXIT_OK;
	return err == CPL_ENOTFOUND ? EXIT_NOTFOUND : EXIT_ERR;
}

// ------------------------------------------------------------ parsing

static const cli_opt *
find_long(const cli_verb *v, const char *name, size_t len)
{
	for (const cli_opt *const *t = v->opts; t && *t; t++)
		for (const cli_opt *o = *t; o->name; o++)
			if (strlen(o->name) == len && !strncmp(o->name, name, len))
				return o;
	return NULL;
}

static const cli_opt *
find_short(const cli_verb *v, int c)
{
	for (const cli_opt *const *t = v->opts; t && *t; t++)
		for (const cli_opt *o = *t; o->name; o++)
			if (o->key == c)
				return o;
	return NULL;
}

static bool
negative_number(const char *s)
{
	if (s[0] != '-' || s[1] < '0' || s[1] > '9')
		return false;
	for (s++; *s; s++)
		if ((*s < '0' || *s > '9') && *s != '.')
			return false;
	return true;
}

// copal modify ... FIELD VALUE: the value after the field name is taken
// as it is, even one that starts with "--" (args "--sleep 0").
static bool
value_follows(const cli_verb *v, char **ops, int nops)
{
	if (nops == 0 || strcmp(v->name, "modify") != 0)
		return false;
	const char *f = ops[nops - 1];
	return spec_field_named(f, true) != NULL || cpl_spec_find(f) != NULL ||
	    strcmp(f, "state") == 0 || strcmp(f, "job_state") == 0 ||
	    strcmp(f, "job-state") == 0;
}

// Puts options (with their values) first, then "--", then the operands in
// their order, so that an operand such as "-5" is not taken for an option.
static char **
arrange(const cli_verb *v, int argc, char **argv, int *nargc)
{
	bool took_value = false;
	char **out = calloc((size_t)argc + 2, sizeof(char *));
	char **ops = calloc((size_t)argc + 1, sizeof(char *));
	int n = 0, nops = 0, i = 1;
	if (out == NULL || ops == NULL) {
		free(out);
		free(ops);
		return NULL;
	}
	out[n++] = argv[0];
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++)
				ops[nops++] = argv[i];
			break;
		}
		if (a[0] != '-' || a[1] == '\0' || negative_number(a) ||
		    (!took_value && value_follows(v, ops, nops))) {
			took_value = took_value || value_follows(v, ops, nops);
			ops[nops++] = argv[i];
			continue;
		}
		out[n++] = argv[i];
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			const cli_opt *o = find_long(v, a + 2,
			    eq ? (size_t)(eq - a - 2) : strlen(a + 2));
			if (o && o->arg == OPT_ARG && !eq && i + 1 < argc)
				out[n++] = argv[++i];
			continue;
		}
		for (const char *c = a + 1; *c; c++) {
			const cli_opt *o = find_short(v, (unsigned char)*c);
			if (o && o->arg != OPT_NOARG) {
				if (c[1] == '\0' && o->arg == OPT_ARG &&
				    i + 1 < argc)
					out[n++] = argv[++i];
				break;
			}
		}
	}
	out[n++] = (char *)"--";
	for (int k = 0; k < nops; k++)
		out[n++] = ops[k];
	free(ops);
	*nargc = n;
	return out;
}

int
cli_parse_init(cli_parse *p, const cli_verb *v, int argc, char **argv)
{
	size_t n = 0;
	memset(p, 0, sizeof(*p));
	p->verb = v;
	if ((p->argv = arrange(v, argc, argv, &p->argc)) == NULL) {
		cli_err("out of memory");
		return EXIT_ERR;
	}
	for (const cli_opt *const *t = v->opts; t && *t; t++)
		for (const cli_opt *o = *t; o->name; o++)
			n++;
	struct option *lo = calloc(n + 1, sizeof(*lo));
	char *so = calloc(3 * n + 3, 1);
	if (lo == NULL || so == NULL) {
		free(lo);
		free(so);
		free(p->argv);
		cli_err("out of memory");
		return EXIT_ERR;
	}
	size_t i = 0, k = 0;
	so[k++] = ':'; // report a missing argument as ':'
	for (const cli_opt *const *t = v->opts; t && *t; t++) {
		for (const cli_opt *o = *t; o->name; o++) {
			lo[i].name = o->name;
			lo[i].has_arg = o->arg == OPT_ARG ? required_argument :
			    o->arg == OPT_OPTARG ? optional_argument : no_argument;
			lo[i].flag = NULL;
			lo[i].val = o->key;
			i++;
			if (o->key > 0 && o->key < 128) {
				so[k++] = (char)o->key;
				if (o->arg == OPT_ARG)
					so[k++] = ':';
				else if (o->arg == OPT_OPTARG) {
					so[k++] = ':';
					so[k++] = ':';
				}
			}
		}
	}
	p->longopts = lo;
	p->shortopts = so;
	optind = 0; // GNU: start a fresh scan
	opterr = 0;
	return 0;
}

void
cli_parse_free(cli_parse *p)
{
	free(p->longopts);
	free(p->shortopts);
	free(p->argv);
	p->longopts = NULL;
	p->shortopts = NULL;
	p->argv = NULL;
}

int
cli_parse_next(cli_parse *p, const char **arg)
{
	for (;;) {
		int c = getopt_long(p->argc, p->argv, p->shortopts,
		    p->longopts, NULL);
		*arg = optarg;
		if (c == -1) {
			p->first = optind;
			p->nargs = p->argc - optind;
			return -1;
		}
		if (c == '?' || c == ':') {
			const char *bad = p->argv[optind - 1];
			if (c == ':')
				cli_usage("option %s needs a value", bad);
			else if (optopt && optopt < 128 &&
			    strncmp(bad, "--", 2) != 0)
				cli_usage("unknown option -%c", optopt);
			else
				cli_usage("unknown option %s", bad);
			return '?';
		}
		if (c == KEY_HELP) {
			cli_verb_help(p->verb, stdout);
			cli_parse_free(p);
			exit(EXIT_OK);
		}
		if (c == KEY_DB) {
			cli_db_opt = optarg;
			continue;
		}
		return c;
	}
}

void
cli_verb_help(const cli_verb *v, FILE *fp)
{
	fprintf(fp, "usage: copal %s %s\n%s\n", v->name, v->usage, v->help);
	if (v->more)
		fprintf(fp, "\n%s", v->more);
	fprintf(fp, "\noptions:\n");
	for (const cli_opt *const *t = v->opts; t && *t; t++) {
		for (const cli_opt *o = *t; o->name; o++) {
			char left[80];
			int n;
			if (o->key > 0 && o->key < 128)
				n = snprintf(left, sizeof(left), "-%c, --%s",
				    o->key, o->name);
			else
				n = snprintf(left, sizeof(left), "    --%s",
				    o->name);
			if (o->metavar && o->arg == OPT_ARG)
				snprintf(left + n, sizeof(left) - (size_t)n,
				    " %s", o->metavar);
			else if (o->metavar && o->arg == OPT_OPTARG)
				snprintf(left + n, sizeof(left) - (size_t)n,
				    "[=%s]", o->metavar);
			if (strlen(left) > 30)
				fprintf(fp, "  %s\n  %-30s  %s\n", left, "",
				    o->help ? o->help : "");
			else
				fprintf(fp, "  %-30s  %s\n", left,
				    o->help ? o->help : "");
		}
	}
}

// ------------------------------------------------------------ numbers

int
cli_u64(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return cli_usage("%s: %s is not a non-negative integer", opt,
		    s ? s : "(none)");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return cli_usage("%s: %s is not a non-negative integer", opt, s);
	*out = v;
	return 0;
}

int
cli_u32(const char *opt, const char *s, uint32_t *out)
{
	uint64_t v = 0;
	int rc = cli_u64(opt, s, &v);
	if (rc)
		return rc;
	if (v > UINT32_MAX)
		return cli_usage("%s: %s is too large", opt, s);
	*out = (uint32_t)v;
	return 0;
}

int
cli_i32(const char *opt, const char *s, int32_t *out)
{
	char *end;
	errno = 0;
	if (s == NULL || *s == '\0' || *s == ' ')
		return cli_usage("%s: an integer is needed", opt);
	long v = strtol(s, &end, 10);
	if (errno || *end || v < INT32_MIN || v > INT32_MAX)
		return cli_usage("%s: %s is not a 32-bit integer", opt, s);
	*out = (int32_t)v;
	return 0;
}

int
cli_bool(const char *opt, const char *s, bool *out)
{
	if (s == NULL || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
	    !strcmp(s, "1") || !strcasecmp(s, "on"))
		*out = true;
	else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") ||
	    !strcmp(s, "0") || !strcasecmp(s, "off"))
		*out = false;
	else
		return cli_usage("%s: %s is not yes/no (true/false, 1/0)", opt,
		    s);
	return 0;
}
