// copal_testing: the store fixture (a fresh store in its own temporary
// directory, with a fake clock), temporary directories, state names and
// the PRNG. See copal/testing/util.h.
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/util.h"

const char *
tu_sname(int s)
{
	const char *n = cpl_state_name(s);
	return n != NULL ? n : "(invalid)";
}

static int
tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
tu_rmrf(const char *dir)
{
	return nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int
tu_mkdtemp(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/copal-test-XXXXXX");
	return mkdtemp(buf) != NULL ? 0 : -1;
}

static uint64_t
tu_clock_fn(void *arg)
{
	return ((tu_env *)arg)->now_us;
}

// Default options: fast (no fsync), fake clock.
static void
tu_default_opts(tu_env *e)
{
	memset(&e->opts, 0, sizeof e->opts);
	e->opts.no_sync = true;
	e->opts.clock = tu_clock_fn;
	e->opts.clock_arg = e;
}

tu_env *
tu_env_new(void)
{
	tu_env *e = calloc(1, sizeof *e);
	if (e == NULL)
		return NULL;
	if (tu_mkdtemp(e->dir, sizeof e->dir) != 0) {
		free(e);
		return NULL;
	}
	e->now_us = TU_T0;
	tu_default_opts(e);
	return e;
}

int
tu_setup(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv != 0) {
		print_error("cpl_store_open(%s): %s (%s)\n", e->dir,
		    cpl_errname(rv), cpl_strerror(rv));
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	rv = tu_app_put(e, "app", "/bin/true");
	if (rv != 0) {
		print_error("registering app: %s (%s)\n", cpl_errname(rv),
		    cpl_strerror(rv));
		cpl_store_close(e->s);
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

int
tu_setup_bare(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv != 0) {
		print_error("cpl_store_open(%s): %s (%s)\n", e->dir,
		    cpl_errname(rv), cpl_strerror(rv));
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

int
tu_setup_durable(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	e->opts.no_sync = false;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv == 0)
		rv = tu_app_put(e, "app", "/bin/true");
	if (rv != 0) {
		print_error("cpl_store_open(%s): %s (%s)\n", e->dir,
		    cpl_errname(rv), cpl_strerror(rv));
		if (e->s != NULL)
			cpl_store_close(e->s);
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

int
tu_reopen(tu_env *e)
{
	if (e->s != NULL)
		cpl_store_close(e->s);
	e->s = NULL;
	return cpl_store_open(e->dir, &e->opts, &e->s);
}

int
tu_teardown(void **state)
{
	tu_env *e = *state;
	int ret = 0;
	if (e == NULL)
		return 0;
	if (e->s != NULL) {
		char report[2048] = "";
		int rv = cpl_store_check(e->s, report, sizeof report);
		if (rv != 0) {
			print_error("cpl_store_check after test: %s (%s)\n%s\n",
			    cpl_errname(rv), cpl_strerror(rv), report);
			ret = -1;
		}
		cpl_store_close(e->s);
		e->s = NULL;
	}
	tu_rmrf(e->dir);
	free(e);
	*state = NULL;
	return ret;
}

uint64_t
tu_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}
