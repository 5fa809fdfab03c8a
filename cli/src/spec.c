// The fields of a task spec as one table: each row gives the command-line
// option (`copal job --num-nodes 2`), the JSON key of `job --from-file`
// lines ({"num_nodes": 2}), the type and where the value goes. Options,
// JSON parsing and help all come from this table.
#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

enum sf_type {
	SF_STR,      // string in the spec
	SF_RES_STR,  // string in the resources
	SF_U32,
	SF_RES_U32,
	SF_I32,
	SF_BOOL,
	SF_ENV,      // K=V, repeatable; JSON object
	SF_DATA,     // a JSON document
	SF_TAGS,     // comma-separated, repeatable; JSON array
	SF_INPUTS,   // space-separated patterns, repeatable; JSON array
	SF_PARENTS,  // uuid prefixes; JSON: prefixes or integer ids
};

#define S(f) offsetof(Copal__TaskSpec, f)
#define R(f) offsetof(Copal__Resources, f)

// X(id, option, json key, json alias, type, offset, metavar, help)
#define SPEC_FIELDS(X)                                                        \
	X(NAME, "name", "name", NULL, SF_STR, S(name), "NAME",                \
	    "task name (required)")                                           \
	X(WORKFLOW, "workflow", "workflow", "wf", SF_STR, S(workflow), "WF",  \
	    "workflow the task belongs to")                                   \
	X(DESCRIPTION, "description", "description", NULL, SF_STR,            \
	    S(description), "TEXT", "free text")                              \
	X(APP, "app", "application", "app", SF_STR, S(application), "APP",    \
	    "application to run (required; see copal ls apps)")               \
	X(ARGS, "args", "args", NULL, SF_STR, S(args), "ARGS",                \
	    "arguments appended to the app's command line")                   \
	X(ENV, "env", "env", "environ", SF_ENV, 0, "K=V",                     \
	    "environment variable for the task (repeat)")                     \
	X(DATA, "data", "data", NULL, SF_DATA, S(data_json), "JSON",          \
	    "user JSON document kept with the task")                          \
	X(TAGS, "tags", "tags", NULL, SF_TAGS, 0, "TAG,...", "tags (repeat)") \
	X(NUM_NODES, "num-nodes", "num_nodes", NULL, SF_RES_U32,              \
	    R(num_nodes), "N", "nodes per run (default 1)")                   \
	X(RANKS_PER_NODE, "ranks-per-node", "ranks_per_node", NULL,           \
	    SF_RES_U32, R(ranks_per_node), "N", "MPI ranks per node (1)")     \
	X(THREADS_PER_RANK, "threads-per-rank", "threads_per_rank", NULL,     \
	    SF_RES_U32, R(threads_per_rank), "N", "threads per rank (1)")     \
	X(THREADS_PER_CORE, "threads-per-core", "threads_per_core", NULL,     \
	    SF_RES_U32, R(threads_per_core), "N", "threads per core (1)")     \
	X(CPU_AFFINITY, "cpu-affinity", "cpu_affinity", NULL, SF_RES_STR,     \
	    R(cpu_affinity), "AFF", "none, depth, core, ...")                 \
	X(GPUS_PER_RANK, "gpus-per-rank", "gpus_per_rank", NULL, SF_RES_U32,  \
	    R(gpus_per_rank), "N", "GPUs per rank (0)")                       \
	X(NODE_PACKING_COUNT, "node-packing-count", "node_packing_count",     \
	    NULL, SF_RES_U32, R(node_packing_count), "N",                     \
	    "tasks that may share one node (1)")                              \
	X(WALL_TIME_MINUTES, "wall-time-minutes", "wall_time_minutes", NULL,  \
	    SF_RES_U32, R(wall_time_minutes), "MIN",                          \
	    "expected run time (0: unknown)")                                 \
	X(PARENTS, "parents", "parents", NULL, SF_PARENTS, 0, "ID,...",       \
	    "tasks to wait for: uuid prefixes (repeat or comma-separated)")   \
	X(INPUT_FILES, "input-files", "input_files", NULL, SF_INPUTS, 0,      \
	    "PATTERNS", "patterns of parents' files to link in")              \
	X(STAGE_IN_URL, "stage-in-url", "stage_in_url", NULL, SF_STR,         \
	    S(stage_in_url), "URL", "data to copy in before the run")         \
	X(STAGE_OUT_FILES, "stage-out-files", "stage_out_files", NULL,        \
	    SF_STR, S(stage_out_files), "PATTERNS",                           \
	    "files to copy out after the run")                                \
	X(STAGE_OUT_URL, "stage-out-url", "stage_out_url", NULL, SF_STR,      \
	    S(stage_out_url), "URL", "where to copy them")                    \
	X(WORKDIR, "workdir", "workdir", NULL, SF_STR, S(workdir), "DIR",     \
	    "run directory under data/ (default WF/NAME_UUID8)")              \
	X(AUTO_TIMEOUT_RETRY, "auto-timeout-retry", "auto_timeout_retry",     \
	    NULL, SF_BOOL, S(auto_timeout_retry), "yes|no",                   \
	    "rerun after a timeout (default yes)")                            \
	X(POST_ERROR_HANDLER, "post-error-handler", "post_error_handler",     \
	    NULL, SF_BOOL, S(post_error_handler), "yes|no",                   \
	    "let the postprocess script handle errors")                       \
	X(POST_TIMEOUT_HANDLER, "post-timeout-handler",                       \
	    "post_timeout_handler", NULL, SF_BOOL, S(post_timeout_handler),   \
	    "yes|no", "let the postprocess script handle timeouts")           \
	X(MAX_RETRIES, "max-retries", "max_retries", NULL, SF_U32,            \
	    S(max_retries), "N", "reruns after errors (default 3)")           \
	X(PRIORITY, "priority", "priority", NULL, SF_I32, S(priority), "N",   \
	    "higher runs first (default 0)")                                  \
	X(TIMEOUT_SECONDS, "timeout-seconds", "timeout_seconds", NULL,        \
	    SF_U32, S(timeout_seconds), "S",                                  \
	    "kill the run after S seconds: RUN_TIMEOUT (0: never)")

enum {
#define X(id, ...) F_##id,
	SPEC_FIELDS(X)
#undef X
	F_COUNT,
	// extra command-line spellings
	F_APPLICATION = F_COUNT,
	F_NO_AUTO_TIMEOUT_RETRY,
};

static const struct spec_field {
	const char *opt, *json, *alias;
	enum sf_type type;
	size_t off;
} fields[] = {
#define X(id, opt, json, alias, type, off, mv, help) { opt, json, alias, type, off },
	SPEC_FIELDS(X)
#undef X
};

const cli_opt spec_opts[] = {
#define X(id, opt, json, alias, type, off, mv, help)                       \
	{ opt, KEY_SPEC + F_##id,                                          \
	    type == SF_BOOL ? OPT_OPTARG : OPT_ARG, mv, help },
	SPEC_FIELDS(X)
#undef X
	{ "application", KEY_SPEC + F_APPLICATION, OPT_ARG, "APP",
	    "same as --app" },
	{ "no-auto-timeout-retry", KEY_SPEC + F_NO_AUTO_TIMEOUT_RETRY,
	    OPT_NOARG, NULL, "same as --auto-timeout-retry=no" },
	{ NULL, 0, 0, NULL, NULL },
};

void
spec_init(spec_buf *b)
{
	memset(b, 0, sizeof(*b));
	copal__task_spec__init(&b->sp);
	copal__resources__init(&b->res);
	b->sp.resources = &b->res;
	b->sp.max_retries = 3;
	b->sp.auto_timeout_retry = 1;
}

static void *
field_ptr(spec_buf *b, const struct spec_field *f)
{
	if (f->type == SF_RES_STR || f->type == SF_RES_U32)
		return (char *)&b->res + f->off;
	return (char *)&b->sp + f->off;
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
add_env(spec_buf *b, arena *a, const char *k, size_t klen, const char *v)
{
	Copal__EnvVar *e = arena_alloc(a, sizeof(*e));
	Copal__EnvVar **arr = arena_append(a, b->sp.environ, b->sp.n_environ,
	    sizeof(*arr));
	if (e == NULL || arr == NULL)
		return -1;
	copal__env_var__init(e);
	e->name = arena_strndup(a, k, klen);
	e->value = arena_strdup(a, v);
	arr[b->sp.n_environ++] = e;
	b->sp.environ = arr;
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

int
spec_set_opt(spec_buf *b, arena *a, int key, const char *arg)
{
	int idx = key - KEY_SPEC, rc = 0;
	char opt[64], err[256];
	if (idx == F_APPLICATION)
		idx = F_APP;
	if (idx == F_NO_AUTO_TIMEOUT_RETRY) {
		b->sp.auto_timeout_retry = 0;
		return 0;
	}
	if (idx < 0 || idx >= F_COUNT)
		return cli_usage("internal: unknown spec option %d", key);
	const struct spec_field *f = &fields[idx];
	void *p = field_ptr(b, f);
	snprintf(opt, sizeof(opt), "--%s", f->opt);
	switch (f->type) {
	case SF_STR:
	case SF_RES_STR:
		*(char **)p = arena_strdup(a, arg);
		break;
	case SF_U32:
	case SF_RES_U32:
		rc = cli_u32(opt, arg, p);
		break;
	case SF_I32:
		rc = cli_i32(opt, arg, p);
		break;
	case SF_BOOL: {
		bool v;
		if ((rc = cli_bool(opt, arg, &v)) == 0)
			*(protobuf_c_boolean *)p = v;
		break;
	}
	case SF_ENV: {
		const char *eq = strchr(arg, '=');
		if (eq == NULL || !env_name_ok(arg, (size_t)(eq - arg)))
			return cli_usage("--env: %s is not NAME=VALUE", arg);
		add_env(b, a, arg, (size_t)(eq - arg), eq + 1);
		break;
	}
	case SF_DATA: {
		char *d = json_norm(a, arg, err, sizeof(err));
		if (d == NULL)
			return cli_usage("--data: %s", err);
		b->sp.data_json = d;
		break;
	}
	case SF_TAGS:
		split_into(a, &b->sp.tags, &b->sp.n_tags, arg, ",");
		break;
	case SF_INPUTS:
		split_into(a, &b->sp.input_files, &b->sp.n_input_files, arg,
		    " \t\n");
		break;
	case SF_PARENTS: {
		char **refs = (char **)b->parent_refs;
		split_into(a, &refs, &b->nparent_refs, arg, ", \t\n");
		b->parent_refs = (const char **)refs;
		for (size_t i = 0; i < b->nparent_refs; i++)
			if (!is_uuid_prefix(b->parent_refs[i]))
				return cli_usage("--parents: %s is not a task id "
				    "(a uuid prefix)", b->parent_refs[i]);
		break;
	}
	}
	return rc;
}

// ------------------------------------------------------------ JSON lines

static const struct spec_field *
field_by_json(const char *key, char *norm, size_t len)
{
	// "num-nodes" and "num_nodes" both name num_nodes
	snprintf(norm, len, "%s", key);
	for (char *p = norm; *p; p++)
		if (*p == '-')
			*p = '_';
	for (size_t i = 0; i < F_COUNT; i++)
		if (!strcmp(fields[i].json, norm) ||
		    (fields[i].alias && !strcmp(fields[i].alias, norm)))
			return &fields[i];
	return NULL;
}

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

int
spec_from_json(spec_buf *b, arena *a, json_t *obj, const char *const *skip,
    char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	char norm[64];
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
		const struct spec_field *f = field_by_json(key, norm, sizeof(norm));
		if (f == NULL) {
			snprintf(err, errlen, "unknown field \"%s\"", key);
			return -1;
		}
		void *p = field_ptr(b, f);
		const char *want = NULL;
		if (json_is_null(v))
			continue;
		switch (f->type) {
		case SF_STR:
		case SF_RES_STR:
			if (!json_is_string(v)) {
				want = "a string";
				break;
			}
			if (strlen(json_string_value(v)) != json_string_length(v)) {
				want = "a string without NUL bytes";
				break;
			}
			*(char **)p = arena_strndup(a, json_string_value(v),
			    json_string_length(v));
			break;
		case SF_U32:
		case SF_RES_U32:
			if (json_u32(v, p) != 0)
				want = "a non-negative integer";
			break;
		case SF_I32:
			if (!json_is_integer(v) ||
			    json_integer_value(v) < INT32_MIN ||
			    json_integer_value(v) > INT32_MAX)
				want = "a 32-bit integer";
			else
				*(int32_t *)p = (int32_t)json_integer_value(v);
			break;
		case SF_BOOL:
			if (!json_is_boolean(v))
				want = "true or false";
			else
				*(protobuf_c_boolean *)p = json_is_true(v);
			break;
		case SF_ENV: {
			const char *k;
			json_t *ev;
			if (!json_is_object(v)) {
				want = "an object {\"NAME\": \"value\"}";
				break;
			}
			json_object_foreach(v, k, ev) {
				if (!env_name_ok(k, strlen(k))) {
					snprintf(err, errlen, "env: %s is not a "
					    "variable name", k);
					return -1;
				}
				if (json_is_string(ev))
					add_env(b, a, k, strlen(k),
					    json_string_value(ev));
				else if (json_is_number(ev) || json_is_boolean(ev)) {
					char *d = json_dumps(ev, JSON_ENCODE_ANY);
					add_env(b, a, k, strlen(k), d ? d : "");
					free(d);
				} else {
					snprintf(err, errlen, "env: %s: the value "
					    "must be a string", k);
					return -1;
				}
			}
			break;
		}
		case SF_DATA: {
			char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			b->sp.data_json = d ? arena_strdup(a, d) : NULL;
			free(d);
			break;
		}
		case SF_TAGS:
			if (json_is_object(v)) {
				// Balsam's tags were a dict: keep "key=value"
				const char *k;
				json_t *tv;
				json_object_foreach(v, k, tv) {
					char buf[512];
					snprintf(buf, sizeof(buf), "%s=%s", k,
					    json_is_string(tv) ?
					        json_string_value(tv) : "");
					b->sp.tags = push_str(a, b->sp.tags,
					    &b->sp.n_tags, buf, strlen(buf));
				}
			} else if (json_strings(a, v, &b->sp.tags, &b->sp.n_tags,
			               ",") != 0) {
				want = "a list of strings";
			}
			break;
		case SF_INPUTS:
			if (json_strings(a, v, &b->sp.input_files,
			        &b->sp.n_input_files, " \t\n") != 0)
				want = "a list of strings";
			break;
		case SF_PARENTS: {
			size_t i;
			json_t *e;
			if (!json_is_array(v)) {
				want = "a list of uuid prefixes or integer ids";
				break;
			}
			json_array_foreach(v, i, e) {
				if (json_is_integer(e) && json_integer_value(e) > 0) {
					spec_add_parent(b, a,
					    (uint64_t)json_integer_value(e));
				} else if (json_is_string(e) &&
				    is_uuid_prefix(json_string_value(e))) {
					char **refs = (char **)b->parent_refs;
					refs = push_str(a, refs, &b->nparent_refs,
					    json_string_value(e),
					    json_string_length(e));
					b->parent_refs = (const char **)refs;
				} else {
					want = "a list of uuid prefixes or "
					       "integer ids";
					break;
				}
			}
			break;
		}
		}
		if (want) {
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

int
spec_check(const Copal__TaskSpec *sp, char *err, size_t errlen)
{
	if (sp->name == NULL || sp->name[0] == '\0') {
		snprintf(err, errlen, "a task needs a name");
		return -1;
	}
	if (sp->application == NULL || sp->application[0] == '\0') {
		snprintf(err, errlen, "a task needs an app");
		return -1;
	}
	if (strlen(sp->name) > 255 || strlen(sp->workflow) > 255 ||
	    strlen(sp->application) > 255) {
		snprintf(err, errlen, "name, workflow and app are at most 255 "
		    "bytes");
		return -1;
	}
	// the store's bounds (store.c spec_check), said by name here
	const Copal__Resources *r = sp->resources;
	if (r) {
		static const struct {
			const char *name;
			size_t off;
			uint32_t max;
		} lim[] = {
			{ "num_nodes", offsetof(Copal__Resources, num_nodes), 65535 },
			{ "ranks_per_node", offsetof(Copal__Resources,
			    ranks_per_node), 65535 },
			{ "threads_per_rank", offsetof(Copal__Resources,
			    threads_per_rank), 65535 },
			{ "threads_per_core", offsetof(Copal__Resources,
			    threads_per_core), 64 },
			{ "node_packing_count", offsetof(Copal__Resources,
			    node_packing_count), CPL_NODE_UNITS },
		};
		for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
			uint32_t v = *(const uint32_t *)((const char *)r +
			    lim[i].off);
			if (v > lim[i].max) {
				snprintf(err, errlen, "%s: at most %u", lim[i].name,
				    lim[i].max);
				return -1;
			}
		}
		if (r->num_nodes > 1 && r->node_packing_count > 1) {
			snprintf(err, errlen, "node_packing_count is for "
			    "single-node tasks (num_nodes is %u)", r->num_nodes);
			return -1;
		}
		if ((uint64_t)r->gpus_per_rank * one(r->ranks_per_node) > 65535) {
			snprintf(err, errlen, "gpus_per_rank x ranks_per_node: at "
			    "most 65535");
			return -1;
		}
	}
	char wd[1024];
	if (sp->workdir && sp->workdir[0] &&
	    cpl_workdir(sp->workflow, sp->name, "", sp->workdir, wd,
	        sizeof(wd)) != 0) {
		snprintf(err, errlen, "workdir: a path relative to data/, "
		    "without \"..\"");
		return -1;
	}
	if (sp->max_retries > 65535) {
		snprintf(err, errlen, "max_retries: at most 65535");
		return -1;
	}
	// the store keeps a spec of at most 1 MiB (its MAX_SPEC)
	size_t packed = copal__task_spec__get_packed_size(sp);
	if (packed > (1u << 20)) {
		snprintf(err, errlen, "the task is too large: %zu bytes (at most "
		    "1 MiB)", packed);
		return -1;
	}
	return 0;
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
	kv(fp, "args", sp->args);
	if (all || (sp->data_json && sp->data_json[0]))
		kv(fp, "data", sp->data_json);
	if (all || sp->n_tags)
		kvlist(fp, "tags", sp->tags, sp->n_tags, ",");
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
	if (app) {
		// "echo Hello, " + "World 1!" reads "echo Hello, World 1!"
		int n = (int)strlen(app->executable);
		while (n > 0 && isspace((unsigned char)app->executable[n - 1]))
			n--;
		snprintf(buf, sizeof(buf), "%.*s%s%s", n, app->executable,
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
