// The logger's hold (cpl_log_hold / cpl_log_release): a thread's lines
// of the hold's level and below wait, in order, until released, and are
// then written whole; a line above it is written at once, after the lines
// held before it; released without writing they are gone; another
// thread's lines are not held; a hold of more than the buffer's bound
// loses nothing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copal/log.h"

static char path[64];

static const cpl_log_style plain = { CPL_LOG_UTC_MS, NULL, true, false,
	false };

// The messages in the file so far (after "LEVEL  "), one per line, as a
// string of "msg|msg|...".
static char *
messages(void)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t cap = 1 << 22, len = 0;
	char *out = calloc(1, cap), line[512];
	assert_non_null(out);
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		assert_true(n > 0 && line[n - 1] == '\n'); // whole lines only
		line[n - 1] = '\0';
		const char *m = strrchr(line, ' ');
		assert_non_null(m);
		len += (size_t)snprintf(out + len, cap - len, "%s|", m + 1);
		assert_true(len < cap);
	}
	fclose(f);
	return out;
}

static void
expect(const char *want)
{
	char *got = messages();
	assert_string_equal(got, want);
	free(got);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/copal-log-test-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return cpl_log_add(NULL, path, &plain);
}

static int
teardown(void **state)
{
	(void)state;
	cpl_log_close();
	unlink(path);
	return 0;
}

static void *
other_thread(void *arg)
{
	(void)arg;
	cpl_log(CPL_LOG_INFO, "t", "other");
	return NULL;
}

static void
test_hold(void **state)
{
	(void)state;
	cpl_log(CPL_LOG_INFO, "t", "before");
	cpl_log_hold(CPL_LOG_NOTICE);
	cpl_log(CPL_LOG_INFO, "t", "a1");
	cpl_log(CPL_LOG_NOTICE, "t", "a2");
	expect("before|");
	// another thread is not held
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, other_thread, NULL), 0);
	pthread_join(th, NULL);
	expect("before|other|");
	// a warning comes at once, after what was held before it
	cpl_log(CPL_LOG_WARN, "t", "w1");
	expect("before|other|a1|a2|w1|");
	cpl_log(CPL_LOG_INFO, "t", "a3");
	cpl_log_release(true);
	expect("before|other|a1|a2|w1|a3|");
	// released without writing: gone
	cpl_log_hold(CPL_LOG_NOTICE);
	cpl_log(CPL_LOG_INFO, "t", "undone");
	cpl_log_release(false);
	expect("before|other|a1|a2|w1|a3|");
	// the hold has ended
	cpl_log(CPL_LOG_INFO, "t", "after");
	expect("before|other|a1|a2|w1|a3|after|");
}

// A hold of warnings (the broker's writer, whose batch may be undone and
// run again): a warning waits and is forgotten with the rest; an error is
// written at once, after what was held.
static void
test_hold_warnings(void **state)
{
	(void)state;
	cpl_log_hold(CPL_LOG_WARN);
	cpl_log(CPL_LOG_INFO, "t", "i1");
	cpl_log(CPL_LOG_WARN, "t", "w1");
	expect("");
	cpl_log_release(false);
	expect("");
	cpl_log_hold(CPL_LOG_WARN);
	cpl_log(CPL_LOG_WARN, "t", "w2");
	cpl_log(CPL_LOG_ERR, "t", "e1");
	expect("w2|e1|");
	cpl_log(CPL_LOG_WARN, "t", "w3");
	cpl_log_release(true);
	expect("w2|e1|w3|");
}

// Beyond the hold's bound (1 MiB) what is held is written and the hold
// goes on: every line, whole and in order.
static void
test_hold_large(void **state)
{
	(void)state;
	char pad[201];
	memset(pad, 'x', 200);
	pad[200] = '\0';
	enum { N = 8000 }; // ~2 MB
	cpl_log_hold(CPL_LOG_NOTICE);
	for (int i = 0; i < N; i++)
		cpl_log(CPL_LOG_INFO, "t", "%s-%d", pad, i);
	cpl_log_release(true);
	char *got = messages();
	const char *p = got;
	for (int i = 0; i < N; i++) {
		char want[256];
		snprintf(want, sizeof(want), "%s-%d|", pad, i);
		assert_memory_equal(p, want, strlen(want));
		p += strlen(want);
	}
	assert_int_equal(*p, '\0');
	free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_warnings, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hold_large, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
