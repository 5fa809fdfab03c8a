// The database directory's layout: the paths of its parts, the limit of
// the local socket's path, and reading the secret token.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copal/common.h"
#include "copal/dbdir.h"

static void
test_paths(void **state)
{
	(void)state;
	char buf[256];
	assert_int_equal(cpl_dbpath("/d", CPL_DB_CONF, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/d/copal.conf");
	assert_int_equal(cpl_dbpath("/d", CPL_DB_BROKER_LOG, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/d/log/broker.log");
	assert_int_equal(cpl_dbpath_file("/d", CPL_DB_QSUBMIT_DIR, buf,
	    sizeof(buf), "qlaunch%d.sh", 7), 0);
	assert_string_equal(buf, "/d/qsubmit/qlaunch7.sh");
	// every part has a name
	for (int p = 0; p < CPL_DB_NPARTS; p++)
		assert_non_null(cpl_dbpart_name((cpl_dbpart)p));
	assert_null(cpl_dbpart_name(CPL_DB_NPARTS));
	assert_int_equal(cpl_dbpath("/d", CPL_DB_NPARTS, buf, sizeof(buf)),
	    CPL_EINVAL);
	// too small a buffer
	assert_int_equal(cpl_dbpath("/d", CPL_DB_CONF, buf, 13), CPL_ETOOBIG);
	assert_int_equal(cpl_dbpath("/d", CPL_DB_CONF, buf, 14), 0);
	assert_int_equal(cpl_dbpath_file("/d", CPL_DB_DATA_DIR, buf, 10, "%s",
	    "abc"), CPL_ETOOBIG);
}

static void
test_socket(void **state)
{
	(void)state;
	char db[200], url[300];
	// "<db>/sock/broker" with its NUL fits in CPL_DB_SOCKET_MAX bytes
	size_t fit = CPL_DB_SOCKET_MAX - 1 - strlen("/sock/broker");
	memset(db, 'a', sizeof(db));
	db[0] = '/';
	db[fit] = '\0';
	assert_int_equal(cpl_db_socket_url(db, url, sizeof(url)), 0);
	assert_memory_equal(url, "ipc:///aaa", 10);
	assert_int_equal(strlen(url), strlen("ipc://") + fit + 12);
	db[fit] = 'a';
	db[fit + 1] = '\0';
	assert_int_equal(cpl_db_socket_url(db, url, sizeof(url)), CPL_ETOOBIG);
	assert_int_equal(cpl_db_socket_url("/d", url, 10), CPL_ETOOBIG);
	assert_int_equal(cpl_db_socket_url("/d", url, sizeof(url)), 0);
	assert_string_equal(url, "ipc:///d/sock/broker");
}

static void
test_secret(void **state)
{
	(void)state;
	char dir[] = "/tmp/cpldbdir.XXXXXX", path[128];
	uint8_t tok[64];
	size_t len = 99;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(cpl_read_secret(dir, tok, sizeof(tok), &len),
	    CPL_ENOTFOUND);
	assert_int_equal(cpl_dbpath(dir, CPL_DB_SECRET, path, sizeof(path)), 0);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("", fp);
	fclose(fp);
	assert_int_equal(cpl_read_secret(dir, tok, sizeof(tok), &len),
	    CPL_EINVAL);
	fp = fopen(path, "w");
	fputs("0123abcd\r\n", fp);
	fclose(fp);
	assert_int_equal(cpl_read_secret(dir, tok, sizeof(tok), &len), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(tok, "0123abcd", 8);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_socket),
		cmocka_unit_test(test_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
