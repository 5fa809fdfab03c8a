// The reply status codes are part of the schema (enum Status in
// proto/copal.proto) and of the C library (CPL_ERRNO_MAP in copal/common.h).
// They must stay one list: same numbers, same names, same meanings. This
// test reads both the compiled schema (the descriptor protoc-c generated)
// and the .proto text (for the meaning written beside each value).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal.pb-c.h"
#include "copal/common.h"

// Every C code has a schema value with the same number and name, and the
// schema has no value the C list lacks.
static void
test_descriptor_matches_c_list(void **state)
{
	(void)state;
	const ProtobufCEnumDescriptor *d = &copal__status__descriptor;
	assert_int_equal(d->n_values, CPL_NERRORS);
	for (int e = 0; e < CPL_NERRORS; e++) {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value(d, e);
		assert_non_null(v);
		char want[64];
		snprintf(want, sizeof(want), "STATUS_%s", cpl_errname(e));
		if (strcmp(v->name, want) != 0)
			fail_msg("status %d: schema says %s, C says %s", e,
			    v->name, want);
	}
	// and by name, the other way round
	for (unsigned i = 0; i < d->n_values; i++) {
		const ProtobufCEnumValue *v = &d->values[i];
		assert_true(v->value >= 0 && v->value < CPL_NERRORS);
		assert_string_equal(v->name + strlen("STATUS_"),
		    cpl_errname(v->value));
	}
}

// Finds the line "  STATUS_<NAME> = <n>;  // <meaning>" of the .proto text.
static int
proto_line(const char *text, const char *name, int *num, char *meaning,
    size_t mlen)
{
	char key[80];
	snprintf(key, sizeof(key), "  STATUS_%s = ", name);
	const char *p = strstr(text, key);
	if (p == NULL)
		return -1;
	p += strlen(key);
	char *end;
	*num = (int)strtol(p, &end, 10);
	if (*end != ';')
		return -1;
	const char *c = strstr(end, "// ");
	const char *nl = strchr(end, '\n');
	if (c == NULL || nl == NULL || c > nl)
		return -1;
	c += 3;
	snprintf(meaning, mlen, "%.*s", (int)(nl - c), c);
	return 0;
}

// The meaning written in the schema is cpl_strerror's text, so a client in
// another language can show the same words.
static void
test_proto_text_meanings(void **state)
{
	(void)state;
	FILE *fp = fopen(COPAL_PROTO_FILE, "r");
	assert_non_null(fp);
	static char text[1 << 20];
	size_t n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	assert_non_null(strstr(text, "enum Status {"));
	for (int e = 0; e < CPL_NERRORS; e++) {
		int num = -1;
		char meaning[256];
		if (proto_line(text, cpl_errname(e), &num, meaning,
		        sizeof(meaning)) != 0)
			fail_msg("no line for STATUS_%s in %s", cpl_errname(e),
			    COPAL_PROTO_FILE);
		assert_int_equal(num, e);
		if (strcmp(meaning, cpl_strerror(e)) != 0)
			fail_msg("STATUS_%s: the schema says \"%s\", "
			    "cpl_strerror says \"%s\"", cpl_errname(e), meaning,
			    cpl_strerror(e));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor_matches_c_list),
		cmocka_unit_test(test_proto_text_meanings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
