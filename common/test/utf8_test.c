// cpl_utf8_cut never splits a character; cpl_utf8_clean leaves valid
// UTF-8 whatever bytes it is given.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "copal/common.h"

static void
test_cut(void **state)
{
	(void)state;
	const char *s = "a\xc3\xa9" "b\xe2\x82\xac" "\xf0\x9f\x98\x80";
	// a é b € 😀: bytes 0 | 1-2 | 3 | 4-6 | 7-10
	static const size_t want[] = { 0, 1, 1, 3, 4, 4, 4, 7, 7, 7, 7, 11 };
	for (size_t n = 0; n <= 11; n++)
		assert_int_equal(cpl_utf8_cut(s, n), want[n]);
	// only continuation bytes (not UTF-8 to begin with): left as is
	assert_int_equal(cpl_utf8_cut("\xa9\xa9", 2), 2);
	// ASCII
	assert_int_equal(cpl_utf8_cut("abc", 2), 2);
}

static void
test_clean(void **state)
{
	(void)state;
	char a[] = "\xa9 ok \xc3\xa9 \xc3 \xed\xa0\x80 \xe0\x80\x80 \xf4\x90\x80\x80 \xff";
	size_t bad = cpl_utf8_clean(a);
	assert_string_equal(a, "? ok \xc3\xa9 ? ??? ??? ???? ?");
	assert_int_equal(bad, 13);
	char b[] = "plain \xe2\x82\xac";
	assert_int_equal(cpl_utf8_clean(b), 0);
	assert_string_equal(b, "plain \xe2\x82\xac");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
