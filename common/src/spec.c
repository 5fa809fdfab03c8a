// The task spec's field table and the check made from it (copal/spec.h).
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "copal/common.h"
#include "copal/params.h"
#include "copal/spec.h"

// The member's schema name comes from the member itself, so a row cannot
// name one field and point at another.
#define SPEC(m) .proto = #m, .off = offsetof(Copal__TaskSpec, m)
#define SPEC_N(m) SPEC(m), .noff = offsetof(Copal__TaskSpec, n_##m)
#define RES(m) .proto = #m, .resources = true, \
	.off = offsetof(Copal__Resources, m)
#define U32 .type = CPL_SPEC_UINT, .max = UINT32_MAX
#define U32_MAX(n) .type = CPL_SPEC_UINT, .max = (n)

const cpl_spec_field cpl_spec_fields[CPL_SPEC_NFIELDS] = {
	{ .key = "name", .opt = "name", SPEC(name), .type = CPL_SPEC_STRING,
	    .max_len = CPL_SPEC_NAME_MAX, .required = true, .modify = true,
	    .metavar = "NAME", .help = "task name (required)" },
	{ .key = "workflow", .alias = "wf", .opt = "workflow", SPEC(workflow),
	    .type = CPL_SPEC_STRING, .max_len = CPL_SPEC_NAME_MAX,
	    .modify = true, .metavar = "WF",
	    .help = "workflow the task belongs to" },
	{ .key = "description", .opt = "description", SPEC(description),
	    .type = CPL_SPEC_STRING, .modify = true, .metavar = "TEXT",
	    .help = "free text" },
	{ .key = "application", .alias = "app", .opt = "app",
	    SPEC(application), .type = CPL_SPEC_STRING,
	    .max_len = CPL_SPEC_NAME_MAX, .modify = true,
	    .metavar = "APP",
	    .help = "application to run (see copal ls apps; or --command)" },
	{ .key = "args", .opt = "args", SPEC(args), .type = CPL_SPEC_STRING,
	    .modify = true, .metavar = "ARGS",
	    .help = "arguments appended to the app's command line" },
	{ .key = "env", .alias = "environ", .opt = "env", SPEC_N(environ),
	    .type = CPL_SPEC_ENV, .metavar = "K=V",
	    .help = "environment variable for the task (repeat)" },
	{ .key = "data", .opt = "data", SPEC(data_json), .type = CPL_SPEC_JSON,
	    .modify = true, .metavar = "JSON",
	    .help = "user JSON document kept with the task" },
	// and each a well-formed key=value (copal/params.h)
	// (a list, so not `modify` here: the broker's modify takes "tags"
	// as a field of its own, "K=V,K2=V2" replacing them all)
	{ .key = "tags", .opt = "tag", SPEC_N(tags), .type = CPL_SPEC_LIST,
	    .max_len = CPL_TAGS_MAX, .sep = ",", .metavar = "K=V,...",
	    .help = "key=value tags, indexed (repeat)" },
	// and each name declared by the app (checked against it at creation)
	{ .key = "params", .opt = "param", SPEC_N(params),
	    .type = CPL_SPEC_ENV, .max_len = CPL_PARAMS_MAX,
	    .metavar = "NAME=VALUE",
	    .help = "value of a parameter of the app's command (repeat)" },
	// and none empty, each at most CPL_LPARAM_MAX bytes
	{ .key = "launch_params", .opt = "launch-param", SPEC_N(launch_params),
	    .type = CPL_SPEC_LIST, .max_len = CPL_LPARAMS_MAX, .sep = "",
	    .metavar = "WORD",
	    .help = "extra word for the MPI starter (repeat)" },
	{ .key = "num_nodes", .opt = "num-nodes", RES(num_nodes),
	    U32_MAX(CPL_SPEC_NODES_MAX), .zero_is_one = true, .modify = true,
	    .metavar = "N", .help = "nodes per run (default 1)" },
	{ .key = "ranks_per_node", .opt = "ranks-per-node",
	    RES(ranks_per_node), U32_MAX(65535), .zero_is_one = true,
	    .modify = true, .metavar = "N", .help = "MPI ranks per node (1)" },
	{ .key = "threads_per_rank", .opt = "threads-per-rank",
	    RES(threads_per_rank), U32_MAX(65535), .zero_is_one = true,
	    .modify = true, .metavar = "N", .help = "threads per rank (1)" },
	{ .key = "threads_per_core", .opt = "threads-per-core",
	    RES(threads_per_core), U32_MAX(64), .zero_is_one = true,
	    .modify = true, .metavar = "N", .help = "threads per core (1)" },
	{ .key = "cpu_affinity", .opt = "cpu-affinity", RES(cpu_affinity),
	    .type = CPL_SPEC_STRING, .modify = true, .metavar = "AFF",
	    .help = "none, depth, core, ..." },
	// and gpus_per_rank x ranks_per_node at most CPL_SPEC_GPUS_MAX
	{ .key = "gpus_per_rank", .opt = "gpus-per-rank", RES(gpus_per_rank),
	    U32_MAX(CPL_SPEC_GPUS_MAX), .modify = true, .metavar = "N",
	    .help = "GPUs per rank (0)" },
	// and more than 1 only with num_nodes 1
	{ .key = "node_packing_count", .opt = "node-packing-count",
	    RES(node_packing_count), U32_MAX(CPL_NODE_UNITS),
	    .zero_is_one = true, .modify = true, .metavar = "N",
	    .help = "tasks that share one node, exactly, 1..5040 (1)" },
	{ .key = "wall_time_minutes", .opt = "wall-time-minutes",
	    RES(wall_time_minutes), U32, .modify = true, .metavar = "MIN",
	    .help = "expected run time (0: unknown)" },
	{ .key = "parents", .opt = "parents", SPEC_N(parent_ids),
	    .type = CPL_SPEC_IDS, .sep = ", \t\n", .metavar = "ID,...",
	    .help = "tasks to wait for: uuid prefixes (repeat or "
	            "comma-separated)" },
	{ .key = "input_files", .opt = "input-files", SPEC_N(input_files),
	    .type = CPL_SPEC_LIST, .sep = " \t\n", .metavar = "PATTERNS",
	    .help = "patterns of parents' files to link in" },
	{ .key = "stage_in_url", .opt = "stage-in-url", SPEC(stage_in_url),
	    .type = CPL_SPEC_STRING, .modify = true, .metavar = "URL",
	    .help = "data to copy in before the run" },
	{ .key = "stage_out_files", .opt = "stage-out-files",
	    SPEC(stage_out_files), .type = CPL_SPEC_STRING, .modify = true,
	    .metavar = "PATTERNS", .help = "files to copy out after the run" },
	{ .key = "stage_out_url", .opt = "stage-out-url", SPEC(stage_out_url),
	    .type = CPL_SPEC_STRING, .modify = true, .metavar = "URL",
	    .help = "where to copy them" },
	// and relative to data/, without ".."
	{ .key = "workdir", .opt = "workdir", SPEC(workdir),
	    .type = CPL_SPEC_STRING, .max_len = CPL_SPEC_WORKDIR_MAX,
	    .modify = true, .metavar = "DIR",
	    .help = "run directory under data/ (default WF/NAME_UUID8)" },
	{ .key = "auto_timeout_retry", .opt = "auto-timeout-retry",
	    SPEC(auto_timeout_retry), .type = CPL_SPEC_BOOL, .modify = true,
	    .dflt = 1, .metavar = "yes|no",
	    .help = "rerun after a timeout (default yes)" },
	{ .key = "post_error_handler", .opt = "post-error-handler",
	    SPEC(post_error_handler), .type = CPL_SPEC_BOOL, .modify = true,
	    .metavar = "yes|no",
	    .help = "let the postprocess script handle errors" },
	{ .key = "post_timeout_handler", .opt = "post-timeout-handler",
	    SPEC(post_timeout_handler), .type = CPL_SPEC_BOOL, .modify = true,
	    .metavar = "yes|no",
	    .help = "let the postprocess script handle timeouts" },
	{ .key = "max_retries", .opt = "max-retries", SPEC(max_retries),
	    U32_MAX(CPL_SPEC_RETRIES_MAX), .modify = true, .dflt = 3,
	    .metavar = "N", .help = "runs after the first, when a timeout "
	    "(--auto-timeout-retry) or an error handler restarts the task; "
	    "an error with no handler fails at once (default 3)" },
	{ .key = "priority", .opt = "priority", SPEC(priority),
	    .type = CPL_SPEC_INT, .min = INT32_MIN, .max = INT32_MAX,
	    .modify = true, .metavar = "N",
	    .help = "higher runs first (default 0)" },
	{ .key = "timeout_seconds", .opt = "timeout-seconds",
	    SPEC(timeout_seconds), U32, .modify = true, .metavar = "S",
	    .help = "kill the run after S seconds: RUN_TIMEOUT (0: never)" },
	// and a task needs an application or a command (issue 22)
	{ .key = "command", .opt = "command", SPEC(command),
	    .type = CPL_SPEC_STRING, .modify = true, .metavar = "CMD",
	    .help = "command line to run instead of an app's (args appended)" },
	{ .key = "preprocess", .opt = "preprocess", SPEC(preprocess),
	    .type = CPL_SPEC_STRING, .modify = true, .metavar = "CMD",
	    .help = "the task's own preprocess, instead of its app's" },
	{ .key = "postprocess", .opt = "postprocess", SPEC(postprocess),
	    .type = CPL_SPEC_STRING, .modify = true, .metavar = "CMD",
	    .help = "the task's own postprocess and handler, instead of its "
	            "app's" },
};

const cpl_spec_field *
cpl_spec_find(const char *name)
{
	for (size_t i = 0; i < CPL_SPEC_NFIELDS; i++)
		if (strcmp(cpl_spec_fields[i].key, name) == 0)
			return &cpl_spec_fields[i];
	return NULL;
}

static const char *
base_of(const cpl_spec_field *f, const Copal__TaskSpec *sp)
{
	if (f->resources)
		return (const char *)sp->resources;
	return (const char *)sp;
}

void *
cpl_spec_member(const cpl_spec_field *f, Copal__TaskSpec *sp)
{
	char *b = (char *)base_of(f, sp);
	return b ? b + f->off : NULL;
}

size_t *
cpl_spec_count(const cpl_spec_field *f, Copal__TaskSpec *sp)
{
	char *b = (char *)base_of(f, sp);
	return b && f->noff ? (size_t *)(b + f->noff) : NULL;
}

// ------------------------------------------------------------ values

static int
u32_parse(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	if (s == NULL || *s == '\0' || *s == '-')
		return CPL_EINVAL;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return CPL_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int
i32_parse(const char *s, int32_t *out)
{
	char *end;
	errno = 0;
	if (s == NULL || *s == '\0')
		return CPL_EINVAL;
	long v = strtol(s, &end, 10);
	if (errno || *end || v > INT32_MAX || v < INT32_MIN)
		return CPL_EINVAL;
	*out = (int32_t)v;
	return 0;
}

static int
bool_parse(const char *s, protobuf_c_boolean *out)
{
	if (s == NULL)
		return CPL_EINVAL;
	if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes"))
		*out = 1;
	else if (!strcasecmp(s, "false") || !strcmp(s, "0") ||
	    !strcasecmp(s, "no"))
		*out = 0;
	else
		return CPL_EINVAL;
	return 0;
}

int
cpl_spec_set(const cpl_spec_field *f, Copal__TaskSpec *sp, const char *value)
{
	void *p = cpl_spec_member(f, sp);
	if (p == NULL)
		return CPL_EINVAL;
	switch (f->type) {
	case CPL_SPEC_STRING:
	case CPL_SPEC_JSON:
		*(const char **)p = value;
		return 0;
	case CPL_SPEC_UINT:
		return u32_parse(value, p);
	case CPL_SPEC_INT:
		return i32_parse(value, p);
	case CPL_SPEC_BOOL:
		return bool_parse(value, p);
	default:
		return CPL_EINVAL;
	}
}

// ------------------------------------------------------------ the check

#define FAIL(...)                                                          \
	do {                                                               \
		if (err != NULL && errlen > 0)                             \
			snprintf(err, errlen, __VA_ARGS__);                \
		return CPL_EINVAL;                                         \
	} while (0)

static int
check_field(const cpl_spec_field *f, const Copal__TaskSpec *sp, char *err,
    size_t errlen)
{
	const char *b = base_of(f, sp);
	const void *p = b ? b + f->off : NULL;
	int64_t v = 0;
	size_t n = 0;
	switch (f->type) {
	case CPL_SPEC_STRING:
	case CPL_SPEC_JSON: {
		if (!f->required && f->max_len == 0)
			return 0; // no need to measure args and the like
		const char *s = p ? *(const char *const *)p : NULL;
		n = s ? strlen(s) : 0;
		if (f->required && n == 0)
			FAIL("a task needs %s %s", strchr("aeiou", f->key[0]) ?
			    "an" : "a", f->key);
		if (f->max_len && n > f->max_len)
			FAIL("%s is %zu bytes, above the limit %" PRIu32, f->key,
			    n, f->max_len);
		return 0;
	}
	case CPL_SPEC_UINT:
		v = p ? *(const uint32_t *)p : 0;
		break;
	case CPL_SPEC_INT:
		v = p ? *(const int32_t *)p : 0;
		break;
	case CPL_SPEC_BOOL:
		return 0;
	case CPL_SPEC_LIST:
	case CPL_SPEC_IDS:
	case CPL_SPEC_ENV:
		n = b ? *(const size_t *)(b + f->noff) : 0;
		if (f->required && n == 0)
			FAIL("a task needs %s", f->key);
		if (f->max_len && n > f->max_len)
			FAIL("%s has %zu entries, above the limit %" PRIu32,
			    f->key, n, f->max_len);
		return 0;
	}
	if (v > f->max)
		FAIL("%s %" PRId64 " is above the limit %" PRId64, f->key, v,
		    f->max);
	if (v < f->min)
		FAIL("%s %" PRId64 " is below the limit %" PRId64, f->key, v,
		    f->min);
	return 0;
}

static uint32_t
one(uint32_t v)
{
	return v ? v : 1;
}

int
cpl_spec_check_fields(const Copal__TaskSpec *sp, char *err, size_t errlen)
{
	int rv;
	if (sp == NULL)
		FAIL("no task spec");
	for (size_t i = 0; i < CPL_SPEC_NFIELDS; i++)
		if ((rv = check_field(&cpl_spec_fields[i], sp, err, errlen)) != 0)
			return rv;
	if ((sp->application == NULL || sp->application[0] == '\0') &&
	    (sp->command == NULL || sp->command[0] == '\0'))
		FAIL("a task needs an application (app) or a command");
	const Copal__Resources *r = sp->resources;
	if (r != NULL) {
		if (r->num_nodes > 1 && r->node_packing_count > 1)
			FAIL("node_packing_count is for single-node tasks "
			    "(num_nodes is %" PRIu32 ")", r->num_nodes);
		uint64_t gpus = (uint64_t)r->gpus_per_rank *
		    one(r->ranks_per_node);
		if (gpus > CPL_SPEC_GPUS_MAX)
			FAIL("gpus_per_rank x ranks_per_node %" PRIu64 " is "
			    "above the limit %u", gpus, CPL_SPEC_GPUS_MAX);
	}
	for (size_t i = 0; i < sp->n_tags; i++)
		if ((rv = cpl_tag_check(sp->tags[i], err, errlen)) != 0)
			return rv;
	for (size_t i = 0; i < sp->n_params; i++) {
		const Copal__EnvVar *v = sp->params[i];
		if (v == NULL || !cpl_param_name_ok(v->name))
			FAIL("parameter name \"%s\": letters, digits and _, "
			    "not a digit first", v && v->name ? v->name : "");
		if (v->value && strlen(v->value) > CPL_PARAM_VALUE_MAX)
			FAIL("value of parameter %s is above the limit of %u "
			    "bytes", v->name, CPL_PARAM_VALUE_MAX);
	}
	for (size_t i = 0; i < sp->n_launch_params; i++) {
		size_t n = sp->launch_params[i] ? strlen(sp->launch_params[i]) : 0;
		if (n == 0)
			FAIL("launch_params: an empty word");
		if (n > CPL_LPARAM_MAX)
			FAIL("launch_params: a word of %zu bytes, above the "
			    "limit %u", n, CPL_LPARAM_MAX);
	}
	if (sp->workdir && sp->workdir[0]) {
		// its length is checked above
		char wd[CPL_SPEC_WORKDIR_MAX + 1];
		if (cpl_workdir(NULL, NULL, NULL, sp->workdir, wd, sizeof(wd)))
			FAIL("workdir: a path relative to data/, without "
			    "\"..\"");
	}
	return 0;
}

int
cpl_spec_check(const Copal__TaskSpec *sp, char *err, size_t errlen)
{
	int rv;
	if ((rv = cpl_spec_check_fields(sp, err, errlen)) != 0)
		return rv;
	size_t packed = copal__task_spec__get_packed_size(sp);
	if (packed > CPL_SPEC_BYTES_MAX) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "the task is %zu bytes packed, "
			    "above the limit %u (1 MiB)", packed,
			    CPL_SPEC_BYTES_MAX);
		return CPL_ETOOBIG;
	}
	return 0;
}

// ---------------------------------------------------------------- packed

// A varint at *p (before end); false if cut or over 10 bytes.
static bool
wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (*p >= end)
			return false;
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

int
cpl_spec_packed_names(const void *buf, size_t len,
    char name[CPL_SPEC_NAME_MAX + 1], char wf[CPL_SPEC_NAME_MAX + 1])
{
	if ((buf == NULL && len) || name == NULL || wf == NULL)
		return CPL_EINVAL;
	const uint8_t *p = buf, *end = p + len;
	name[0] = wf[0] = '\0';
	while (p < end) {
		uint64_t key, n;
		if (!wire_varint(&p, end, &key) || (key >> 3) == 0)
			return CPL_ECORRUPT;
		switch (key & 7) {
		case 0: // varint
			if (!wire_varint(&p, end, &n))
				return CPL_ECORRUPT;
			break;
		case 1: // 64-bit
			if ((size_t)(end - p) < 8)
				return CPL_ECORRUPT;
			p += 8;
			break;
		case 5: // 32-bit
			if ((size_t)(end - p) < 4)
				return CPL_ECORRUPT;
			p += 4;
			break;
		case 2: // bytes, strings, messages
			if (!wire_varint(&p, end, &n) || n > (uint64_t)(end - p))
				return CPL_ECORRUPT;
			if ((key >> 3) == 1 || (key >> 3) == 2) {
				char *dst = (key >> 3) == 1 ? name : wf;
				if (n > CPL_SPEC_NAME_MAX)
					return CPL_ECORRUPT;
				memcpy(dst, p, (size_t)n);
				dst[n] = '\0';
			}
			p += n;
			break;
		default: // groups (3, 4) are not in this schema; 6, 7 are none
			return CPL_ECORRUPT;
		}
	}
	return 0;
}
