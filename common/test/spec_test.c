// The task spec's rule book (copal/spec.h): the table covers every field of
// the schema's TaskSpec and Resources (walked through the descriptors that
// protoc-c generated, so a new field cannot be forgotten), no spelling
// names two fields, and every bound gives the right verdict and message at,
// just below and just above it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal.pb-c.h"
#include "copal/common.h"
#include "copal/spec.h"

// A valid spec to break one field of at a time.
typedef struct base {
	Copal__TaskSpec sp;
	Copal__Resources res;
} base;

static void
base_init(base *b)
{
	copal__task_spec__init(&b->sp);
	copal__resources__init(&b->res);
	b->sp.resources = &b->res;
	b->sp.name = (char *)"t";
	b->sp.application = (char *)"a";
}

// Expects cpl_spec_check's verdict want and, on failure, the message msg.
#define VERDICT(sp, want, msg) verdict(sp, want, msg, __LINE__)

static void
verdict(const Copal__TaskSpec *sp, int want, const char *msg, int line)
{
	char err[512] = "";
	int rv = cpl_spec_check(sp, err, sizeof(err));
	if (rv != want)
		fail_msg("line %d: check gave %s (\"%s\"), expected %s", line,
		    cpl_errname(rv), err, cpl_errname(want));
	if (msg != NULL && strcmp(err, msg) != 0)
		fail_msg("line %d: message \"%s\", expected \"%s\"", line, err,
		    msg);
}

static const ProtobufCFieldDescriptor *
proto_field(const cpl_spec_field *f)
{
	const ProtobufCMessageDescriptor *d = f->resources ?
	    &copal__resources__descriptor : &copal__task_spec__descriptor;
	return protobuf_c_message_descriptor_get_field_by_name(d, f->proto);
}

// Whether a row's type fits the schema's field.
static bool
type_fits(const cpl_spec_field *f, const ProtobufCFieldDescriptor *d)
{
	bool rep = d->label == PROTOBUF_C_LABEL_REPEATED;
	switch (f->type) {
	case CPL_SPEC_STRING:
	case CPL_SPEC_JSON:
		return !rep && d->type == PROTOBUF_C_TYPE_STRING;
	case CPL_SPEC_UINT:
		return !rep && d->type == PROTOBUF_C_TYPE_UINT32;
	case CPL_SPEC_INT:
		return !rep && d->type == PROTOBUF_C_TYPE_INT32;
	case CPL_SPEC_BOOL:
		return !rep && d->type == PROTOBUF_C_TYPE_BOOL;
	case CPL_SPEC_LIST:
		return rep && d->type == PROTOBUF_C_TYPE_STRING;
	case CPL_SPEC_IDS:
		return rep && d->type == PROTOBUF_C_TYPE_UINT64;
	case CPL_SPEC_ENV:
		return rep && d->type == PROTOBUF_C_TYPE_MESSAGE &&
		    d->descriptor == &copal__env_var__descriptor;
	}
	return false;
}

// ------------------------------------------------------------ the table

// Every field of both messages has a row (TaskSpec.resources is the
// Resources rows), and every row names a field of the schema at the
// member's offset, with a type that fits it.
static void
test_covers_the_schema(void **state)
{
	(void)state;
	const ProtobufCMessageDescriptor *ds[] = {
		&copal__task_spec__descriptor, &copal__resources__descriptor
	};
	size_t nproto = 0;
	for (size_t k = 0; k < 2; k++) {
		for (unsigned i = 0; i < ds[k]->n_fields; i++) {
			const ProtobufCFieldDescriptor *d = &ds[k]->fields[i];
			if (d->type == PROTOBUF_C_TYPE_MESSAGE &&
			    d->descriptor == &copal__resources__descriptor)
				continue; // TaskSpec.resources: its own rows
			nproto++;
			const cpl_spec_field *row = NULL;
			for (size_t j = 0; j < CPL_SPEC_NFIELDS; j++) {
				const cpl_spec_field *f = &cpl_spec_fields[j];
				if (f->resources == (k == 1) &&
				    strcmp(f->proto, d->name) == 0)
					row = f;
			}
			if (row == NULL)
				fail_msg("%s.%s has no row in cpl_spec_fields",
				    ds[k]->short_name, d->name);
		}
	}
	assert_int_equal(nproto, CPL_SPEC_NFIELDS);
	for (size_t j = 0; j < CPL_SPEC_NFIELDS; j++) {
		const cpl_spec_field *f = &cpl_spec_fields[j];
		const ProtobufCFieldDescriptor *d = proto_field(f);
		if (d == NULL)
			fail_msg("row %s: no field %s in the schema", f->key,
			    f->proto);
		assert_int_equal(f->off, d->offset);
		if (d->label == PROTOBUF_C_LABEL_REPEATED)
			assert_int_equal(f->noff, d->quantifier_offset);
		if (!type_fits(f, d))
			fail_msg("row %s: type %d does not fit %s", f->key,
			    (int)f->type, d->name);
	}
}

// No spelling (key, alias, schema name in modify; option) names two fields.
static void
test_no_duplicate_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < CPL_SPEC_NFIELDS; i++) {
		const cpl_spec_field *a = &cpl_spec_fields[i];
		const char *an[] = { a->key, a->alias, a->proto };
		assert_non_null(a->key);
		assert_non_null(a->opt);
		for (size_t j = 0; j < CPL_SPEC_NFIELDS; j++) {
			const cpl_spec_field *b = &cpl_spec_fields[j];
			const char *bn[] = { b->key, b->alias, b->proto };
			if (i == j)
				continue;
			for (size_t x = 0; x < 3; x++)
				for (size_t y = 0; y < 3; y++)
					if (an[x] && bn[y] && !strcmp(an[x], bn[y]))
						fail_msg("\"%s\" names %s and %s",
						    an[x], a->key, b->key);
			if (strcmp(a->opt, b->opt) == 0)
				fail_msg("--%s is %s and %s", a->opt, a->key,
				    b->key);
		}
		assert_ptr_equal(cpl_spec_find(a->key), a);
	}
	assert_null(cpl_spec_find("state"));
	assert_null(cpl_spec_find("wf")); // an alias, not a key
}

// Rows that are data for other code: numbers have a bound and a default
// inside it, modify reaches only fields one text can set, help is there.
static void
test_rows_complete(void **state)
{
	(void)state;
	for (size_t i = 0; i < CPL_SPEC_NFIELDS; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		if (f->help == NULL || f->help[0] == '\0' || f->metavar == NULL)
			fail_msg("row %s: no help or metavar", f->key);
		if (f->type == CPL_SPEC_UINT || f->type == CPL_SPEC_INT) {
			if (f->max <= 0 || f->min > f->dflt || f->dflt > f->max)
				fail_msg("row %s: bounds [%" PRId64 ", %" PRId64
				    "], default %" PRId64, f->key, f->min,
				    f->max, f->dflt);
		}
		if (f->modify && (f->type == CPL_SPEC_LIST ||
		    f->type == CPL_SPEC_IDS || f->type == CPL_SPEC_ENV))
			fail_msg("row %s: a list cannot be modified", f->key);
		if ((f->type == CPL_SPEC_LIST || f->type == CPL_SPEC_IDS) &&
		    f->sep == NULL)
			fail_msg("row %s: a list without separators", f->key);
	}
}

// ------------------------------------------------------------ bounds

// Every string bound: at, just below and just above.
static void
test_string_lengths(void **state)
{
	(void)state;
	size_t n = 0;
	for (size_t i = 0; i < CPL_SPEC_NFIELDS; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		if (f->type != CPL_SPEC_STRING || f->max_len == 0)
			continue;
		n++;
		base b;
		char *s = malloc(f->max_len + 2);
		char msg[256];
		base_init(&b);
		char **p = cpl_spec_member(f, &b.sp);
		assert_non_null(p);
		memset(s, 'x', f->max_len + 1);
		s[f->max_len + 1] = '\0';
		*p = s + 1; // max_len bytes
		VERDICT(&b.sp, 0, NULL);
		*p = s + 2; // one below
		VERDICT(&b.sp, 0, NULL);
		*p = s; // one above
		snprintf(msg, sizeof(msg), "%s is %" PRIu32 " bytes, above the "
		    "limit %" PRIu32, f->key, f->max_len + 1, f->max_len);
		VERDICT(&b.sp, CPL_EINVAL, msg);
		free(s);
	}
	assert_int_equal(n, 4); // name, workflow, application, workdir
	base b;
	char big[300];
	base_init(&b);
	memset(big, 'n', 299);
	big[299] = '\0';
	b.sp.name = big;
	VERDICT(&b.sp, CPL_EINVAL, "name is 299 bytes, above the limit 255");
}

// Every number bound: at, just below and just above.
static void
test_number_bounds(void **state)
{
	(void)state;
	size_t n = 0;
	for (size_t i = 0; i < CPL_SPEC_NFIELDS; i++) {
		const cpl_spec_field *f = &cpl_spec_fields[i];
		if (f->type != CPL_SPEC_UINT || f->max == UINT32_MAX)
			continue;
		n++;
		base b;
		char msg[256];
		base_init(&b);
		uint32_t *p = cpl_spec_member(f, &b.sp);
		*p = (uint32_t)f->max;
		VERDICT(&b.sp, 0, NULL);
		*p = (uint32_t)f->max - 1;
		VERDICT(&b.sp, 0, NULL);
		*p = (uint32_t)f->max + 1;
		snprintf(msg, sizeof(msg), "%s %" PRId64 " is above the limit "
		    "%" PRId64, f->key, f->max + 1, f->max);
		VERDICT(&b.sp, CPL_EINVAL, msg);
	}
	// num_nodes, ranks_per_node, threads_per_rank, threads_per_core,
	// gpus_per_rank, node_packing_count, max_retries
	assert_int_equal(n, 7);
	base b;
	base_init(&b);
	b.res.num_nodes = 65536;
	VERDICT(&b.sp, CPL_EINVAL, "num_nodes 65536 is above the limit 65535");
	base_init(&b);
	b.res.threads_per_core = 65;
	VERDICT(&b.sp, CPL_EINVAL, "threads_per_core 65 is above the limit 64");
	base_init(&b);
	b.res.node_packing_count = CPL_NODE_UNITS + 1;
	VERDICT(&b.sp, CPL_EINVAL,
	    "node_packing_count 5041 is above the limit 5040");
	base_init(&b);
	b.sp.max_retries = 65536;
	VERDICT(&b.sp, CPL_EINVAL, "max_retries 65536 is above the limit 65535");
	// unbounded ones take their type's range
	base_init(&b);
	b.sp.priority = INT32_MIN;
	b.sp.timeout_seconds = UINT32_MAX;
	b.res.wall_time_minutes = UINT32_MAX;
	VERDICT(&b.sp, 0, NULL);
}

static void
test_required(void **state)
{
	(void)state;
	base b;
	base_init(&b);
	b.sp.name = (char *)"";
	VERDICT(&b.sp, CPL_EINVAL, "a task needs a name");
	b.sp.name = NULL;
	VERDICT(&b.sp, CPL_EINVAL, "a task needs a name");
	base_init(&b);
	b.sp.application = (char *)"";
	VERDICT(&b.sp, CPL_EINVAL,
	    "a task needs an application (app) or a command");
	b.sp.application = NULL;
	VERDICT(&b.sp, CPL_EINVAL,
	    "a task needs an application (app) or a command");
	// a direct command instead of an app (issue 22)
	b.sp.command = (char *)"echo hi";
	VERDICT(&b.sp, 0, NULL);
	// the workflow may be empty or absent, and so may the resources
	base_init(&b);
	b.sp.workflow = NULL;
	b.sp.resources = NULL;
	VERDICT(&b.sp, 0, NULL);
	assert_int_equal(cpl_spec_check(NULL, NULL, 0), CPL_EINVAL);
}

// The rules between fields, each at, below and above its bound.
static void
test_cross_field_rules(void **state)
{
	(void)state;
	base b;
	base_init(&b);
	b.res.num_nodes = 2;
	b.res.node_packing_count = 1;
	VERDICT(&b.sp, 0, NULL);
	b.res.node_packing_count = 2;
	VERDICT(&b.sp, CPL_EINVAL,
	    "node_packing_count is for single-node tasks (num_nodes is 2)");
	b.res.num_nodes = 1;
	VERDICT(&b.sp, 0, NULL);

	// gpus_per_rank x ranks_per_node (0 ranks read as 1)
	base_init(&b);
	b.res.gpus_per_rank = 255;
	b.res.ranks_per_node = 257; // 65535
	VERDICT(&b.sp, 0, NULL);
	b.res.ranks_per_node = 256; // 65280
	VERDICT(&b.sp, 0, NULL);
	b.res.gpus_per_rank = 256; // 65536
	VERDICT(&b.sp, CPL_EINVAL,
	    "gpus_per_rank x ranks_per_node 65536 is above the limit 65535");
	b.res.gpus_per_rank = 65535;
	b.res.ranks_per_node = 0;
	VERDICT(&b.sp, 0, NULL);

	// workdir: relative to data/, never above it
	const char *bad[] = { "/abs", "..", "a/../b", "a/.." };
	const char *good[] = { "a", "a/b", "..a/b.", "a/...", "./a" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		base_init(&b);
		b.sp.workdir = (char *)bad[i];
		VERDICT(&b.sp, CPL_EINVAL,
		    "workdir: a path relative to data/, without \"..\"");
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		base_init(&b);
		b.sp.workdir = (char *)good[i];
		VERDICT(&b.sp, 0, NULL);
	}
}

// The packed spec at, just below and just above 1 MiB.
static void
test_packed_size(void **state)
{
	(void)state;
	base b;
	char msg[256];
	char *s = malloc(CPL_SPEC_BYTES_MAX + 1);
	memset(s, 'a', CPL_SPEC_BYTES_MAX);
	s[CPL_SPEC_BYTES_MAX] = '\0';
	base_init(&b);
	// args of the length that makes the packed spec exactly the limit
	size_t len = CPL_SPEC_BYTES_MAX - 16, packed;
	for (;;) {
		b.sp.args = s + CPL_SPEC_BYTES_MAX - len;
		packed = copal__task_spec__get_packed_size(&b.sp);
		if (packed == CPL_SPEC_BYTES_MAX)
			break;
		len += packed < CPL_SPEC_BYTES_MAX ? 1 : -1;
	}
	VERDICT(&b.sp, 0, NULL);
	b.sp.args = s + CPL_SPEC_BYTES_MAX - (len - 1);
	VERDICT(&b.sp, 0, NULL);
	b.sp.args = s + CPL_SPEC_BYTES_MAX - (len + 1);
	snprintf(msg, sizeof(msg), "the task is %u bytes packed, above the "
	    "limit %u (1 MiB)", CPL_SPEC_BYTES_MAX + 1, CPL_SPEC_BYTES_MAX);
	VERDICT(&b.sp, CPL_ETOOBIG, msg);
	// the store's check leaves the size to the store
	assert_int_equal(cpl_spec_check_fields(&b.sp, NULL, 0), 0);
	free(s);
}

// ------------------------------------------------------------ packed names

// Names read from the packed bytes are those of a whole unpack.
static void
names_agree(const uint8_t *buf, size_t len, int line)
{
	char name[CPL_SPEC_NAME_MAX + 1], wf[CPL_SPEC_NAME_MAX + 1];
	int rv = cpl_spec_packed_names(buf, len, name, wf);
	Copal__TaskSpec *u = copal__task_spec__unpack(NULL, len, buf);
	if (u != NULL && strlen(u->name) <= CPL_SPEC_NAME_MAX &&
	    strlen(u->workflow) <= CPL_SPEC_NAME_MAX) {
		if (rv != 0)
			fail_msg("line %d: %zu bytes that unpack: %s", line,
			    len, cpl_errname(rv));
		if (strcmp(name, u->name) != 0 || strcmp(wf, u->workflow) != 0)
			fail_msg("line %d: names \"%s\" \"%s\", unpacked "
			    "\"%s\" \"%s\"", line, name, wf, u->name,
			    u->workflow);
	} else if (rv != 0 && rv != CPL_ECORRUPT) {
		fail_msg("line %d: %s", line, cpl_errname(rv));
	}
	if (u)
		copal__task_spec__free_unpacked(u, NULL);
}

static void
test_packed_names(void **state)
{
	(void)state;
	base b;
	base_init(&b);
	char longname[CPL_SPEC_NAME_MAX + 1];
	memset(longname, 'n', CPL_SPEC_NAME_MAX);
	longname[CPL_SPEC_NAME_MAX] = '\0';
	Copal__EnvVar ev = COPAL__ENV_VAR__INIT, *evp = &ev;
	ev.name = (char *)"A";
	ev.value = (char *)"1";
	char *tags[] = { (char *)"k=v", (char *)"x=y" };
	uint64_t parents[] = { 1, 300, 1ull << 40 };
	struct {
		const char *name, *wf;
	} cases[] = {
		{ "t", "" }, { "t", "wf" }, { "", "" },
		{ "\xc3\xa9t\xc3\xa9", "w\xe2\x82\xac" }, { longname, longname },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b.sp.name = (char *)cases[i].name;
		b.sp.workflow = (char *)cases[i].wf;
		// other fields of every wire type around them
		b.sp.description = (char *)"d";
		b.sp.n_environ = 1;
		b.sp.environ = &evp;
		b.sp.n_tags = 2;
		b.sp.tags = tags;
		b.sp.n_parent_ids = 3;
		b.sp.parent_ids = parents;
		b.sp.priority = -5;
		b.sp.max_retries = 7;
		b.sp.post_error_handler = true;
		b.res.num_nodes = 2;
		size_t len = copal__task_spec__get_packed_size(&b.sp);
		uint8_t *buf = malloc(len);
		assert_non_null(buf);
		copal__task_spec__pack(&b.sp, buf);
		char name[CPL_SPEC_NAME_MAX + 1], wf[CPL_SPEC_NAME_MAX + 1];
		assert_int_equal(cpl_spec_packed_names(buf, len, name, wf), 0);
		assert_string_equal(name, cases[i].name);
		assert_string_equal(wf, cases[i].wf);
		// every cut of it: an error or what an unpack gives, never
		// a read past the end (the sanitizer build checks that)
		for (size_t cut = 0; cut <= len; cut++) {
			uint8_t *c = malloc(cut ? cut : 1);
			memcpy(c, buf, cut);
			names_agree(c, cut, __LINE__);
			free(c);
		}
		// every single byte changed, one at a time
		for (size_t at = 0; at < len; at++) {
			for (unsigned v = 0; v < 256; v += 37) {
				uint8_t keep = buf[at];
				buf[at] = (uint8_t)v;
				names_agree(buf, len, __LINE__);
				buf[at] = keep;
			}
		}
		free(buf);
	}
	// fields in another order than protobuf-c writes them
	const uint8_t rev[] = { 0x12, 2, 'w', 'f', 0x18, 1, 0x0a, 1, 'n' };
	char name[CPL_SPEC_NAME_MAX + 1], wf[CPL_SPEC_NAME_MAX + 1];
	assert_int_equal(cpl_spec_packed_names(rev, sizeof(rev), name, wf), 0);
	assert_string_equal(name, "n");
	assert_string_equal(wf, "wf");
	const uint8_t rev2[] = { 0x12, 2, 'w', 'f' };
	// a name over the limit, a group, field 0, NULL
	uint8_t big[4 + CPL_SPEC_NAME_MAX + 1] = { 0x0a, 0x80, 0x02 };
	assert_int_equal(cpl_spec_packed_names(big, 3 + 256, name, wf),
	    CPL_ECORRUPT);
	const uint8_t grp[] = { 0x0b }, zero[] = { 0x00, 0x00 };
	assert_int_equal(cpl_spec_packed_names(grp, 1, name, wf), CPL_ECORRUPT);
	assert_int_equal(cpl_spec_packed_names(zero, 2, name, wf),
	    CPL_ECORRUPT);
	assert_int_equal(cpl_spec_packed_names(NULL, 0, name, wf), 0);
	assert_int_equal(cpl_spec_packed_names(rev2, 1, NULL, wf), CPL_EINVAL);
}

// ------------------------------------------------------------ values

static void
test_set_from_text(void **state)
{
	(void)state;
	base b;
	base_init(&b);
	const cpl_spec_field *nodes = cpl_spec_find("num_nodes");
	const cpl_spec_field *prio = cpl_spec_find("priority");
	const cpl_spec_field *retry = cpl_spec_find("auto_timeout_retry");
	const cpl_spec_field *args = cpl_spec_find("args");
	assert_int_equal(cpl_spec_set(nodes, &b.sp, "12"), 0);
	assert_int_equal(b.res.num_nodes, 12);
	assert_int_equal(cpl_spec_set(nodes, &b.sp, "4294967295"), 0);
	assert_int_equal(b.res.num_nodes, UINT32_MAX);
	const char *bad_u[] = { "", "-1", "abc", "4294967296", "1x" };
	for (size_t i = 0; i < sizeof(bad_u) / sizeof(bad_u[0]); i++)
		assert_int_equal(cpl_spec_set(nodes, &b.sp, bad_u[i]),
		    CPL_EINVAL);
	assert_int_equal(b.res.num_nodes, UINT32_MAX);
	assert_int_equal(cpl_spec_set(prio, &b.sp, "-7"), 0);
	assert_int_equal(b.sp.priority, -7);
	assert_int_equal(cpl_spec_set(prio, &b.sp, "2147483648"), CPL_EINVAL);
	const char *yes[] = { "true", "YES", "1" }, *no[] = { "false", "No",
		"0" };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cpl_spec_set(retry, &b.sp, no[i]), 0);
		assert_false(b.sp.auto_timeout_retry);
		assert_int_equal(cpl_spec_set(retry, &b.sp, yes[i]), 0);
		assert_true(b.sp.auto_timeout_retry);
	}
	assert_int_equal(cpl_spec_set(retry, &b.sp, "maybe"), CPL_EINVAL);
	assert_int_equal(cpl_spec_set(args, &b.sp, "-x"), 0);
	assert_string_equal(b.sp.args, "-x");
	assert_int_equal(cpl_spec_set(cpl_spec_find("tags"), &b.sp, "a"),
	    CPL_EINVAL);
	// a Resources field of a spec without resources
	b.sp.resources = NULL;
	assert_int_equal(cpl_spec_set(nodes, &b.sp, "1"), CPL_EINVAL);
	assert_null(cpl_spec_member(nodes, &b.sp));
}

// Run directories of tasks named alike: a version 7 uuid's first digits
// are its creation time, the same for a bulk create, so the directory takes
// its last 8 (random) digits; a version 4 uuid keeps its first 8 (the
// directories of tasks in older databases do not move).
static void
test_workdir_uuid_short(void **state)
{
	(void)state;
	char a[512], b[512];
	const char *v7a = "019af3c2-1b4e-7a01-9c3d-5e6f708192a3";
	const char *v7b = "019af3c2-1b4e-7a02-8d11-22334455bbcc";
	const char *v4 = "0123abcd-1b4e-4a01-9c3d-5e6f708192a3";
	assert_int_equal(cpl_workdir("wf", "t", v7a, NULL, a, sizeof a), 0);
	assert_int_equal(cpl_workdir("wf", "t", v7b, NULL, b, sizeof b), 0);
	assert_string_equal(a, "wf/t_708192a3");
	assert_string_equal(b, "wf/t_4455bbcc");
	assert_int_equal(cpl_workdir("wf", "t", v4, NULL, a, sizeof a), 0);
	assert_string_equal(a, "wf/t_0123abcd");
	assert_string_equal(cpl_uuid_short("0123abcd"), "0123abcd");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_covers_the_schema),
		cmocka_unit_test(test_no_duplicate_names),
		cmocka_unit_test(test_rows_complete),
		cmocka_unit_test(test_string_lengths),
		cmocka_unit_test(test_number_bounds),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_cross_field_rules),
		cmocka_unit_test(test_packed_size),
		cmocka_unit_test(test_packed_names),
		cmocka_unit_test(test_set_from_text),
		cmocka_unit_test(test_workdir_uuid_short),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
