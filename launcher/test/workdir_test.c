// The launcher's own guard on a task's working directory (stage_workdir in
// launcher/src/stages.c): a spec whose workdir is absolute or climbs out
// with ".." is refused (-1, nothing made, output to /dev/null) whatever
// let it through (the store and the CLI refuse them at submission, so
// launcher/test/spawnfail.sh cannot hand one to a launcher; a record
// written before those checks, or by another writer, still could); a good
// one is made under <db>/data/.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/common.h"
#include "launcher_impl.h"

struct fx {
	char dir[64];      // mkdtemp: the database and, beside it, "outside"
	launcher L;
	Copal__Task task;
	Copal__TaskSpec spec;
	Copal__ClaimedTask ct;
	ltask t;
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/cplwd.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->L.db, sizeof(f->L.db), "%s/db", f->dir);
	assert_int_equal(mkdir(f->L.db, 0700), 0);
	Copal__Task t0 = COPAL__TASK__INIT;
	Copal__TaskSpec s0 = COPAL__TASK_SPEC__INIT;
	Copal__ClaimedTask c0 = COPAL__CLAIMED_TASK__INIT;
	f->task = t0;
	f->spec = s0;
	f->ct = c0;
	f->spec.name = (char *)"t1";
	f->spec.workflow = (char *)"wf";
	f->spec.application = (char *)"app";
	f->task.spec = &f->spec;
	f->ct.task = &f->task;
	f->t.ct = &f->ct;
	snprintf(f->t.uuid, sizeof(f->t.uuid),
	    "0123abcd-0000-4000-8000-000000000000");
	*state = f;
	return 0;
}

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static bool
exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

// stage_workdir on workdir wd must refuse it and make nothing.
static void
refused(struct fx *f, const char *wd)
{
	char path[PATH_MAX + 64];
	f->spec.workdir = (char *)wd;
	int rv = stage_workdir(&f->L, &f->t);
	if (rv != -1)
		fail_msg("workdir \"%s\": stage_workdir returned %d (made %s), "
		         "expected -1: the launcher's guard let it through",
		    wd, rv, f->t.workdir);
	assert_string_equal(f->t.outpath, "/dev/null");
	snprintf(path, sizeof(path), "%s/data", f->L.db);
	assert_string_equal(f->t.workdir, path);
	// nothing was made outside data/ (nor inside: data/ itself is not
	// needed to refuse)
	snprintf(path, sizeof(path), "%s/escape", f->L.db);
	assert_false(exists(path));
	snprintf(path, sizeof(path), "%s/escape", f->dir);
	assert_false(exists(path));
	snprintf(path, sizeof(path), "%s/outside", f->dir);
	assert_false(exists(path));
}

static void
test_refuses_escapes(void **state)
{
	struct fx *f = *state;
	char abs[PATH_MAX];
	refused(f, "../escape");
	refused(f, "../../escape");
	refused(f, "ok/../../escape");
	refused(f, "ok/../..");
	refused(f, "..");
	snprintf(abs, sizeof(abs), "%s/outside", f->dir);
	refused(f, abs);
	refused(f, "/");
}

static void
test_makes_good_ones(void **state)
{
	struct fx *f = *state;
	char want[PATH_MAX + 64];
	struct stat st;

	f->spec.workdir = (char *)"ok/deeper";
	assert_int_equal(stage_workdir(&f->L, &f->t), 0);
	snprintf(want, sizeof(want), "%s/data/ok/deeper", f->L.db);
	assert_string_equal(f->t.workdir, want);
	assert_int_equal(stat(want, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(want, sizeof(want), "%s/data/ok/deeper/t1.out", f->L.db);
	assert_string_equal(f->t.outpath, want);

	// names with dots inside are not "..": allowed
	f->spec.workdir = (char *)"a..b/..c/d..";
	assert_int_equal(stage_workdir(&f->L, &f->t), 0);
	snprintf(want, sizeof(want), "%s/data/a..b/..c/d..", f->L.db);
	assert_string_equal(f->t.workdir, want);

	// none given: <workflow>/<name>_<uuid8>
	f->spec.workdir = (char *)"";
	assert_int_equal(stage_workdir(&f->L, &f->t), 0);
	snprintf(want, sizeof(want), "%s/data/wf/t1_0123abcd", f->L.db);
	assert_string_equal(f->t.workdir, want);
	assert_int_equal(stat(want, &st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refuses_escapes, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_makes_good_ones, fx_setup,
		    fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
