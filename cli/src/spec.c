// The task spec on the command line: the options of `copal job` (and
// mkchild), the JSON lines of `job --from-file` and the FIELD help of
// `copal modify`, all made from the rule book's field table
// (copal/spec.h); and the spec printed for a confirmation or as JSON.
#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "copal/params.h"
#include "cli.h"

#define NF CPL_SPEC_NFIELDS

// Option keys: KEY_SPEC + i sets field i; KEY_SPEC + NF + i too, under the
// field's key when that is not its option (--application for --app);
// KEY_SPEC + 2 NF + i clears a bool that starts true
// (--no-auto-timeout-retry).
enum { ALT = NF, NEG = 2 * NF };

cli_opt spec_opts[3 * NF + 1];
char modify_more[4096];

// Names and help lines of the extra options.
static char extra_name[2 * NF][48], extra_help[2 * NF][64];

static void
dashed(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
	for (char *p = dst; *p; p++)
		if (*p == '_')
			*p = '-';
}

static void
more_add(size_t *n, const char *fmt, const char *s)
{
	if (*n < sizeof(modify_more))
		*n += (size_t)snprintf(modify_more + *n,
		    sizeof(modify_more) - *n, fmt, s);
}

// The FIELD part of `copal modify --help`.
static void
modify_help_init(void)
{
	size_t n = 0;
	const char *sep = "";
	more_add(&n, "%s", "FIELD: state, or a field below (with - or _; also ");
	for (size_t i = 0; i < NF; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		if (!f->modify)
			continue;
		if (f->alias) {
			more_add(&n, "%s", sep);
			more_add(&n, "%s", f->alias);
			sep = ", ";
		}
		if (strcmp(f->proto, f->key) != 0) {
			more_add(&n, "%s", sep);
			more_add(&n, "%s", f->proto);
			sep = ", ";
		}
	}
	more_add(&n, "%s", ").\nAll selected tasks change, or none. Example:\n"
	    "copal modify dda7 state RESTART_READY\n\nfields:\n");
	for (size_t i = 0; i < NF; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		char line[128];
		if (!f->modify)
			continue;
		snprintf(line, sizeof(line), "  %-22s  %s\n", f->key, f->help);
		more_add(&n, "%s", line);
	}
	more_add(&n, "%s", "  tags                    all of a task's tags: "
	    "K=V,K2=V2 (\"\" for none)\n");
}

void
spec_cli_init(void)
{
	size_t k = 0;
	for (size_t i = 0; i < NF; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		spec_opts[k++] = (cli_opt){ f->opt, KEY_SPEC + (int)i,
			f->type == CPL_SPEC_BOOL ? OPT_OPTARG : OPT_ARG,
			f->metavar, f->help };
	}
	for (size_t i = 0; i < NF; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		dashed(extra_name[i], sizeof(extra_name[i]), f->key);
		if (strcmp(extra_name[i], f->opt) == 0)
			continue;
		snprintf(extra_help[i], sizeof(extra_help[i]), "same as --%s",
		    f->opt);
		spec_opts[k++] = (cli_opt){ extra_name[i],
			KEY_SPEC + ALT + (int)i, OPT_ARG, f->metavar,
			extra_help[i] };
	}
	for (size_t i = 0; i < NF; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		if (f->type != CPL_SPEC_BOOL || f->dflt == 0)
			continue;
		snprintf(extra_name[NF + i], sizeof(extra_name[NF + i]), "no-%s",
		    f->opt);
		snprintf(extra_help[NF + i], sizeof(extra_help[NF + i]),
		    "same as --%s=no", f->opt);
		spec_opts[k++] = (cli_opt){ extra_name[NF + i],
			KEY_SPEC + NEG + (int)i, OPT_NOARG, NULL,
			extra_help[NF + i] };
	}
	spec_opts[k] = (cli_opt){ NULL, 0, 0, NULL, NULL };
	modify_help_init();
}

const cpl_spec_field *
spec_field_named(const char *name, bool proto)
{
	char norm[64];
	snprintf(norm, sizeof(norm), "%s", name);
	for (char *p = norm; *p; p++)
		if (*p == '-')
			*p = '_';
	for (size_t i = 0; i < NF; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		if (!strcmp(f->key, norm) || (f->alias && !strcmp(f->alias, norm))
		    || (proto && !strcmp(f->proto, norm)))
			return f;
	}
	return NULL;
}

void
spec_init(spec_buf *b)
{
	memset(b, 0, sizeof(*b));
	copal__task_spec__init(&b->sp);
	copal__resources__init(&b->res);
	b->sp.resources = &b->res;
	for (size_t i = 0; i < NF; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		void *p = cpl_spec_member(f, &b->sp);
		if (f->dflt == 0)
			continue;
		if (f->type == CPL_SPEC_UINT)
			*(uint32_t *)p = (uint32_t)f->dflt;
		else if (f->type == CPL_SPEC_INT)
			*(int32_t *)p = (int32_t)f->dflt;
		else if (f->type == CPL_SPEC_BOOL)
			*(protobuf_c_boolean *)p = 1;
	}
}

static char **
push_str(arena *a, char **arr, size_t *n, const char *s, size_t len)
{
	char **v = arena_append(a, arr, *n, sizeof(char *));
	if (v == NULL)
		return arr;
	v[*n] = arena_strndup(a, s, len);
	(*n)++;
	return v;
}

static int
add_env(arena *a, Copal__EnvVar ***arr, size_t *n, const char *k, size_t klen,
    const char *v)
{
	Copal__EnvVar *e = arena_alloc(a, sizeof(*e));
	Copal__EnvVar **na = arena_append(a, *arr, *n, sizeof(*na));
	if (e == NULL || na == NULL)
		return -1;
	copal__env_var__init(e);
	e->name = arena_strndup(a, k, klen);
	e->value = arena_strdup(a, v);
	na[(*n)++] = e;
	*arr = na;
	return 0;
}

static bool
env_name_ok(const char *k, size_t n)
{
	if (n == 0 || isdigit((unsigned char)k[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && k[i] != '_')
			return false;
	return true;
}

// Splits s at any of seps, appending each non-empty piece.
static void
split_into(arena *a, char ***arr, size_t *n, const char *s, const char *seps)
{
	while (*s) {
		size_t skip = strspn(s, seps);
		s += skip;
		size_t len = strcspn(s, seps);
		if (len)
			*arr = push_str(a, *arr, n, s, len);
		s += len;
	}
}

void
spec_add_parent(spec_buf *b, arena *a, uint64_t id)
{
	for (size_t i = 0; i < b->sp.n_parent_ids; i++)
		if (b->sp.parent_ids[i] == id)
			return;
	uint64_t *v = arena_append(a, b->sp.parent_ids, b->sp.n_parent_ids,
	    sizeof(uint64_t));
	if (v == NULL)
		return;
	v[b->sp.n_parent_ids++] = id;
	b->sp.parent_ids = v;
}

// Normalizes a JSON document to its compact form; NULL if not JSON.
static char *
json_norm(arena *a, const char *s, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
	if (j == NULL) {
		snprintf(err, errlen, "not valid JSON: %s (column %d)", je.text,
		    je.column);
		return NULL;
	}
	char *d = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	char *out = d ? arena_strdup(a, d) : NULL;
	free(d);
	return out;
}

// Appends a uuid prefix of a parent, resolved later.
static void
push_ref(spec_buf *b, arena *a, const char *s, size_t len)
{
	char **refs = (char **)b->parent_refs;
	refs = push_str(a, refs, &b->nparent_refs, s, len);
	b->parent_refs = (const char **)refs;
}

int
spec_set_opt(spec_buf *b, arena *a, int key, const char *arg)
{
	int idx = key - KEY_SPEC, rc = 0;
	char opt[64], err[256];
	if (idx >= NEG && idx < NEG + NF) {
		*(protobuf_c_boolean *)cpl_spec_member(&cpl_spec_fields[idx - NEG],
		    &b->sp) = 0;
		return 0;
	}
	if (idx >= ALT && idx < ALT + NF)
		idx -= ALT;
	if (idx < 0 || idx >= NF)
		return cli_usage("internal: unknown spec option %d", key);
	const cpl_spec_field *f = &cpl_spec_fields[idx];
	void *p = cpl_spec_member(f, &b->sp);
	size_t *n = cpl_spec_count(f, &b->sp);
	snprintf(opt, sizeof(opt), "--%s", f->opt);
	switch (f->type) {
	case CPL_SPEC_STRING:
		*(char **)p = arena_strdup(a, arg);
		break;
	case CPL_SPEC_UINT:
		rc = cli_u32(opt, arg, p);
		break;
	case CPL_SPEC_INT:
		rc = cli_i32(opt, arg, p);
		break;
	case CPL_SPEC_BOOL: {
		bool v;
		if ((rc = cli_bool(opt, arg, &v)) == 0)
			*(protobuf_c_boolean *)p = v;
		break;
	}
	case CPL_SPEC_ENV: {
		const char *eq = strchr(arg, '=');
		if (eq == NULL || !env_name_ok(arg, (size_t)(eq - arg)))
			return cli_usage("%s: %s is not NAME=VALUE", opt, arg);
		add_env(a, p, n, arg, (size_t)(eq - arg), eq + 1);
		break;
	}
	case CPL_SPEC_JSON: {
		char *d = json_norm(a, arg, err, sizeof(err));
		if (d == NULL)
			return cli_usage("%s: %s", opt, err);
		*(char **)p = d;
		break;
	}
	case CPL_SPEC_LIST:
		// a list of whole words (no separator): an empty one is
		// refused, not dropped
		if (f->sep[0] == '\0' && arg[0] == '\0')
			return cli_usage("%s: %s: an empty word", opt, f->key);
		split_into(a, p, n, arg, f->sep);
		break;
	case CPL_SPEC_IDS: {
		char **refs = (char **)b->parent_refs;
		split_into(a, &refs, &b->nparent_refs, arg, f->sep);
		b->parent_refs = (const char **)refs;
		for (size_t i = 0; i < b->nparent_refs; i++)
			if (!is_uuid_prefix(b->parent_refs[i]))
				return cli_usage("%s: %s is not a task id "
				    "(a uuid prefix)", opt, b->parent_refs[i]);
		break;
	}
	}
	return rc;
}

// ------------------------------------------------------------ JSON lines

static int
json_u32(json_t *v, uint32_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return -1;
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

// A JSON string or array of strings, appended to arr.
static int
json_strings(arena *a, json_t *v, char ***arr, size_t *n, const char *seps)
{
	if (json_is_string(v)) {
		split_into(a, arr, n, json_string_value(v), seps);
		return 0;
	}
	if (!json_is_array(v))
		return -1;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return -1;
		*arr = push_str(a, *arr, n, json_string_value(e),
		    json_string_length(e));
	}
	return 0;
}

// env: {"NAME": "value"}; numbers and booleans are written as JSON.
static int
json_env(arena *a, const cpl_spec_field *f, json_t *v, Copal__EnvVar ***arr,
    size_t *n, char *err, size_t errlen)
{
	const char *k;
	json_t *ev;
	json_object_foreach(v, k, ev) {
		if (!env_name_ok(k, strlen(k))) {
			snprintf(err, errlen, "%s: %s is not a variable name",
			    f->key, k);
			return -1;
		}
		if (json_is_string(ev)) {
			add_env(a, arr, n, k, strlen(k), json_string_value(ev));
		} else if (json_is_number(ev) || json_is_boolean(ev)) {
			char *d = json_dumps(ev, JSON_ENCODE_ANY);
			add_env(a, arr, n, k, strlen(k), d ? d : "");
			free(d);
		} else {
			snprintf(err, errlen, "%s: %s: the value must be a "
			    "string", f->key, k);
			return -1;
		}
	}
	return 0;
}

// Sets field f from JSON value v. Returns 0, -1 with err written, or 1
// when v has the wrong type (*want says what it must be).
static int
json_field(spec_buf *b, arena *a, const cpl_spec_field *f, json_t *v,
    const char **want, char *err, size_t errlen)
{
	void *p = cpl_spec_member(f, &b->sp);
	size_t *n = cpl_spec_count(f, &b->sp);
	switch (f->type) {
	case CPL_SPEC_STRING:
		*want = "a string";
		if (!json_is_string(v))
			return 1;
		*want = "a string without NUL bytes";
		if (strlen(json_string_value(v)) != json_string_length(v))
			return 1;
		*(char **)p = arena_strndup(a, json_string_value(v),
		    json_string_length(v));
		return 0;
	case CPL_SPEC_UINT:
		*want = "a non-negative integer";
		return json_u32(v, p) != 0;
	case CPL_SPEC_INT:
		*want = "a 32-bit integer";
		if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
		    json_integer_value(v) > INT32_MAX)
			return 1;
		*(int32_t *)p = (int32_t)json_integer_value(v);
		return 0;
	case CPL_SPEC_BOOL:
		*want = "true or false";
		if (!json_is_boolean(v))
			return 1;
		*(protobuf_c_boolean *)p = json_is_true(v);
		return 0;
	case CPL_SPEC_ENV:
		*want = "an object {\"NAME\": \"value\"}";
		if (!json_is_object(v))
			return 1;
		return json_env(a, f, v, p, n, err, errlen);
	case CPL_SPEC_JSON: {
		char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		*(char **)p = d ? arena_strdup(a, d) : NULL;
		free(d);
		return 0;
	}
	case CPL_SPEC_LIST:
		*want = "a list of strings";
		if (json_is_object(v) && !f->resources &&
		    f->off == offsetof(Copal__TaskSpec, tags)) {
			// Balsam's tags were a dict: keep "key=value"
			const char *k;
			json_t *tv;
			json_object_foreach(v, k, tv) {
				char buf[512];
				snprintf(buf, sizeof(buf), "%s=%s", k,
				    json_is_string(tv) ? json_string_value(tv) :
				                         "");
				*(char ***)p = push_str(a, *(char ***)p, n, buf,
				    strlen(buf));
			}
			return 0;
		}
		return json_strings(a, v, p, n, f->sep) != 0;
	case CPL_SPEC_IDS: {
		size_t i;
		json_t *e;
		*want = "a list of uuid prefixes or integer ids";
		if (!json_is_array(v))
			return 1;
		json_array_foreach(v, i, e) {
			if (json_is_integer(e) && json_integer_value(e) > 0)
				spec_add_parent(b, a,
				    (uint64_t)json_integer_value(e));
			else if (json_is_string(e) &&
			    is_uuid_prefix(json_string_value(e)))
				push_ref(b, a, json_string_value(e),
				    json_string_length(e));
			else
				return 1;
		}
		return 0;
	}
	}
	return 0;
}

int
spec_from_json(spec_buf *b, arena *a, json_t *obj, const char *const *skip,
    char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	json_object_foreach(obj, key, v) {
		bool skipped = false;
		for (const char *const *s = skip; s && *s; s++)
			skipped |= strcmp(*s, key) == 0;
		if (skipped)
			continue;
		const cpl_spec_field *f = spec_field_named(key, false);
		if (f == NULL) {
			snprintf(err, errlen, "unknown field \"%s\"", key);
			return -1;
		}
		if (json_is_null(v))
			continue;
		const char *want = NULL;
		int rv = json_field(b, a, f, v, &want, err, errlen);
		if (rv < 0)
			return -1;
		if (rv > 0) {
			snprintf(err, errlen, "%s: must be %s", key, want);
			return -1;
		}
	}
	return 0;
}

static uint32_t
one(uint32_t v)
{
	return v ? v : 1;
}

// ------------------------------------------------------------ printing

#define KEYW 32

static void
kv(FILE *fp, const char *k, const char *v)
{
	char key[64];
	snprintf(key, sizeof(key), "%s:", k);
	if (v && *v)
		fprintf(fp, "%-*s%s\n", KEYW, key, v);
	else
		fprintf(fp, "%s\n", key);
}

static void
kvu(FILE *fp, const char *k, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	kv(fp, k, buf);
}

static void
kvlist(FILE *fp, const char *k, char **v, size_t n, const char *sep)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + strlen(sep);
	char *buf = xcalloc(1, len);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(buf, sep);
		strcat(buf, v[i]);
	}
	kv(fp, k, buf);
	free(buf);
}

void
spec_print(FILE *fp, const Copal__TaskSpec *sp, const Copal__App *app,
    const char *db, const char *uuid, bool all, const uuid_map *m)
{
	const Copal__Resources *r = sp->resources;
	Copal__Resources none = COPAL__RESOURCES__INIT;
	char buf[4096];
	if (r == NULL)
		r = &none;
	kv(fp, "workflow", sp->workflow);
	kv(fp, "name", sp->name);
	kv(fp, "description", sp->description);
	if (sp->n_parent_ids == 0) {
		kv(fp, "parents", "[]");
	} else {
		size_t n = 0;
		n += (size_t)snprintf(buf, sizeof(buf), "[");
		for (size_t i = 0; i < sp->n_parent_ids && n < sizeof(buf); i++)
		{
			const char *u = uuid_map_get(m, sp->parent_ids[i]);
			if (u)
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				    "%s%s", i ? ", " : "", u);
			else
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				    "%s%" PRIu64, i ? ", " : "",
				    sp->parent_ids[i]);
		}
		if (n < sizeof(buf))
			snprintf(buf + n, sizeof(buf) - n, "]");
		kv(fp, "parents", buf);
	}
	kvlist(fp, "input_files", sp->input_files, sp->n_input_files, " ");
	kvu(fp, "num_nodes", one(r->num_nodes));
	kvu(fp, "ranks_per_node", one(r->ranks_per_node));
	if (all || r->threads_per_rank > 1)
		kvu(fp, "threads_per_rank", one(r->threads_per_rank));
	if (all || r->threads_per_core > 1)
		kvu(fp, "threads_per_core", one(r->threads_per_core));
	if (all || (r->cpu_affinity && r->cpu_affinity[0]))
		kv(fp, "cpu_affinity", r->cpu_affinity);
	if (all || r->gpus_per_rank)
		kvu(fp, "gpus_per_rank", r->gpus_per_rank);
	if (all || r->node_packing_count > 1)
		kvu(fp, "node_packing_count", one(r->node_packing_count));
	if (all || r->wall_time_minutes)
		kvu(fp, "wall_time_minutes", r->wall_time_minutes);
	{
		size_t n = 0;
		buf[0] = '\0';
		for (size_t i = 0; i < sp->n_environ && n < sizeof(buf); i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s=%s",
			    i ? " " : "", sp->environ[i]->name,
			    sp->environ[i]->value);
		kv(fp, "environ_vars", buf);
	}
	kv(fp, "application", sp->application);
	if (all || (sp->command && sp->command[0]))
		kv(fp, "command", sp->command);
	kv(fp, "args", sp->args);
	if (all || (sp->preprocess && sp->preprocess[0]))
		kv(fp, "preprocess", sp->preprocess);
	if (all || (sp->postprocess && sp->postprocess[0]))
		kv(fp, "postprocess", sp->postprocess);
	if (all || (sp->data_json && sp->data_json[0]))
		kv(fp, "data", sp->data_json);
	if (all || sp->n_tags)
		kvlist(fp, "tags", sp->tags, sp->n_tags, ",");
	if (all || sp->n_params) {
		size_t n = 0;
		buf[0] = '\0';
		for (size_t i = 0; i < sp->n_params && n < sizeof(buf); i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s=%s",
			    i ? " " : "", sp->params[i]->name,
			    sp->params[i]->value);
		kv(fp, "params", buf);
	}
	if (all || sp->n_launch_params)
		kvlist(fp, "launch_params", sp->launch_params,
		    sp->n_launch_params, " ");
	if (all || (sp->stage_in_url && sp->stage_in_url[0]))
		kv(fp, "stage_in_url", sp->stage_in_url);
	if (all || (sp->stage_out_files && sp->stage_out_files[0]))
		kv(fp, "stage_out_files", sp->stage_out_files);
	if (all || (sp->stage_out_url && sp->stage_out_url[0]))
		kv(fp, "stage_out_url", sp->stage_out_url);
	kv(fp, "auto_timeout_retry", sp->auto_timeout_retry ? "True" : "False");
	if (all || sp->post_error_handler)
		kv(fp, "post_error_handler",
		    sp->post_error_handler ? "True" : "False");
	if (all || sp->post_timeout_handler)
		kv(fp, "post_timeout_handler",
		    sp->post_timeout_handler ? "True" : "False");
	if (all || sp->max_retries != 3)
		kvu(fp, "max_retries", sp->max_retries);
	if (all || sp->priority) {
		snprintf(buf, sizeof(buf), "%" PRId32, sp->priority);
		kv(fp, "priority", buf);
	}
	if (all || sp->timeout_seconds)
		kvu(fp, "timeout_seconds", sp->timeout_seconds);
	// the task's direct command, or else its app's executable (a
	// parameterized app's template as the launcher renders it)
	char cmd[4096];
	const char *exe = NULL;
	if (sp->command && sp->command[0])
		exe = sp->command;
	else if (app) {
		if (cpl_cmd_render(app, sp, cmd, sizeof(cmd)) != 0)
			snprintf(cmd, sizeof(cmd), "%s", app->executable);
		exe = cmd;
	}
	if (exe) {
		// "echo Hello, " + "World 1!" reads "echo Hello, World 1!"
		int n = (int)strlen(exe);
		while (n > 0 && isspace((unsigned char)exe[n - 1]))
			n--;
		snprintf(buf, sizeof(buf), "%.*s%s%s", n, exe,
		    sp->args && sp->args[0] ? " " : "", sp->args ? sp->args : "");
		kv(fp, "  *** Executed command", buf);
	}
	if (db) {
		// the directory the launcher will make (common's cpl_workdir)
		char rel[1024];
		if (cpl_workdir(sp->workflow, sp->name, uuid ? uuid : "<uuid8>",
		        sp->workdir, rel, sizeof(rel)) == 0) {
			cpl_dbpath_file(db, CPL_DB_DATA_DIR, buf, sizeof(buf),
			    "%s", rel);
			kv(fp, "  *** Working directory", buf);
		}
	}
}

// ------------------------------------------------------------ JSON

void *
task_json(const Copal__Task *t, const uuid_map *m)
{
	json_t *o = json_object();
	char tb[40];
	json_object_set_new(o, "id", json_integer((json_int_t)t->id));
	json_object_set_new(o, "uuid", json_string(t->uuid));
	const Copal__TaskSpec *sp = t->spec;
	if (sp) {
		const Copal__Resources *r = sp->resources;
		Copal__Resources none = COPAL__RESOURCES__INIT;
		if (r == NULL)
			r = &none;
		json_object_set_new(o, "name", json_string(sp->name));
		json_object_set_new(o, "workflow", json_string(sp->workflow));
		json_object_set_new(o, "description",
		    json_string(sp->description));
		json_object_set_new(o, "application",
		    json_string(sp->application));
		json_object_set_new(o, "args", json_string(sp->args));
		json_object_set_new(o, "command", json_string(sp->command));
		json_object_set_new(o, "preprocess",
		    json_string(sp->preprocess));
		json_object_set_new(o, "postprocess",
		    json_string(sp->postprocess));
		json_t *env = json_object();
		for (size_t i = 0; i < sp->n_environ; i++)
			json_object_set_new(env, sp->environ[i]->name,
			    json_string(sp->environ[i]->value));
		json_object_set_new(o, "env", env);
		json_t *data = NULL;
		if (sp->data_json && sp->data_json[0])
			data = json_loads(sp->data_json, JSON_DECODE_ANY, NULL);
		json_object_set_new(o, "data", data ? data : json_null());
		json_t *tags = json_array();
		for (size_t i = 0; i < sp->n_tags; i++)
			json_array_append_new(tags, json_string(sp->tags[i]));
		json_object_set_new(o, "tags", tags);
		if (sp->n_params) {
			json_t *pv = json_object();
			for (size_t i = 0; i < sp->n_params; i++)
				json_object_set_new(pv, sp->params[i]->name,
				    json_string(sp->params[i]->value));
			json_object_set_new(o, "params", pv);
		}
		if (sp->n_launch_params) {
			json_t *lp = json_array();
			for (size_t i = 0; i < sp->n_launch_params; i++)
				json_array_append_new(lp,
				    json_string(sp->launch_params[i]));
			json_object_set_new(o, "launch_params", lp);
		}
		json_object_set_new(o, "num_nodes", json_integer(one(r->num_nodes)));
		json_object_set_new(o, "ranks_per_node",
		    json_integer(one(r->ranks_per_node)));
		json_object_set_new(o, "threads_per_rank",
		    json_integer(one(r->threads_per_rank)));
		json_object_set_new(o, "threads_per_core",
		    json_integer(one(r->threads_per_core)));
		json_object_set_new(o, "cpu_affinity",
		    json_string(r->cpu_affinity ? r->cpu_affinity : ""));
		json_object_set_new(o, "gpus_per_rank",
		    json_integer(r->gpus_per_rank));
		json_object_set_new(o, "node_packing_count",
		    json_integer(one(r->node_packing_count)));
		json_object_set_new(o, "wall_time_minutes",
		    json_integer(r->wall_time_minutes));
		json_t *parents = json_array();
		for (size_t i = 0; i < sp->n_parent_ids; i++) {
			const char *u = uuid_map_get(m, sp->parent_ids[i]);
			json_array_append_new(parents, u ? json_string(u) :
			    json_integer((json_int_t)sp->parent_ids[i]));
		}
		json_object_set_new(o, "parents", parents);
		json_t *inputs = json_array();
		for (size_t i = 0; i < sp->n_input_files; i++)
			json_array_append_new(inputs,
			    json_string(sp->input_files[i]));
		json_object_set_new(o, "input_files", inputs);
		json_object_set_new(o, "stage_in_url",
		    json_string(sp->stage_in_url));
		json_object_set_new(o, "stage_out_files",
		    json_string(sp->stage_out_files));
		json_object_set_new(o, "stage_out_url",
		    json_string(sp->stage_out_url));
		json_object_set_new(o, "workdir", json_string(sp->workdir));
		json_object_set_new(o, "auto_timeout_retry",
		    json_boolean(sp->auto_timeout_retry));
		json_object_set_new(o, "post_error_handler",
		    json_boolean(sp->post_error_handler));
		json_object_set_new(o, "post_timeout_handler",
		    json_boolean(sp->post_timeout_handler));
		json_object_set_new(o, "max_retries",
		    json_integer(sp->max_retries));
		json_object_set_new(o, "priority", json_integer(sp->priority));
		json_object_set_new(o, "timeout_seconds",
		    json_integer(sp->timeout_seconds));
	}
	const Copal__TaskStatus *st = t->status;
	if (st) {
		json_object_set_new(o, "state",
		    json_string(cpl_state_name((int)st->state)));
		json_object_set_new(o, "attempt", json_integer(st->attempt));
		json_object_set_new(o, "return_code",
		    json_integer(st->return_code));
		json_object_set_new(o, "pending_parents",
		    json_integer(st->pending_parents));
		json_object_set_new(o, "lease_id",
		    json_integer((json_int_t)st->lease_id));
		fmt_time_iso(st->created_us, tb, sizeof(tb));
		json_object_set_new(o, "created", json_string(tb));
		fmt_time_iso(st->changed_us, tb, sizeof(tb));
		json_object_set_new(o, "changed", json_string(tb));
	}
	return o;
}
