// Tags, app parameters and the command template (copal/params.h): the
// tag rules, the checks of an app's declared parameters and of a task's
// values, and rendering with shell quoting, checked by running the result
// through /bin/sh: every value must arrive as one literal word.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "copal/common.h"
#include "copal/params.h"

static void
test_tags(void **state)
{
	(void)state;
	char err[256], big[400];
	assert_int_equal(cpl_tag_check("system=H2O", err, sizeof err), 0);
	assert_int_equal(cpl_tag_check("k=", err, sizeof err), 0);
	assert_int_equal(cpl_tag_check("k=a=b", err, sizeof err), 0);
	assert_int_equal(cpl_tag_check("é=ü", err, sizeof err), 0);
	assert_int_equal(cpl_tag_check("k", err, sizeof err), CPL_EINVAL);
	assert_non_null(strstr(err, "not key=value"));
	assert_int_equal(cpl_tag_check("=v", err, sizeof err), CPL_EINVAL);
	assert_non_null(strstr(err, "empty key"));
	assert_int_equal(cpl_tag_check("", err, sizeof err), CPL_EINVAL);
	assert_int_equal(cpl_tag_check(NULL, err, sizeof err), CPL_EINVAL);
	assert_int_equal(cpl_tag_check("k=\t", err, sizeof err), CPL_EINVAL);
	assert_non_null(strstr(err, "control"));
	assert_int_equal(cpl_tag_check("k=\xff", err, sizeof err), CPL_EINVAL);
	assert_non_null(strstr(err, "UTF-8"));
	assert_int_equal(cpl_tag_check("k=\xc3", err, sizeof err), CPL_EINVAL);
	assert_int_equal(cpl_tag_check("k=\xed\xa0\x80", err, sizeof err),
	    CPL_EINVAL); // a surrogate
	memset(big, 'a', sizeof big);
	big[1] = '=';
	big[CPL_TAG_MAX] = '\0';
	assert_int_equal(cpl_tag_check(big, err, sizeof err), 0);
	big[CPL_TAG_MAX] = 'a';
	big[CPL_TAG_MAX + 1] = '\0';
	assert_int_equal(cpl_tag_check(big, err, sizeof err), CPL_EINVAL);
	assert_non_null(strstr(err, "limit"));
}

// An app "sim" with parameters given as "name" or "name=default".
struct app {
	Copal__App app;
	Copal__AppParam p[8], *pp[8];
	char names[8][32];
};

static void
app_make(struct app *a, const char *exe, int n, ...)
{
	va_list ap;
	copal__app__init(&a->app);
	a->app.name = (char *)"sim";
	a->app.executable = (char *)exe;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *s = va_arg(ap, const char *);
		const char *eq = strchr(s, '=');
		copal__app_param__init(&a->p[i]);
		snprintf(a->names[i], sizeof a->names[i], "%.*s",
		    (int)(eq ? (size_t)(eq - s) : strlen(s)), s);
		a->p[i].name = a->names[i];
		if (eq) {
			a->p[i].default_value = (char *)eq + 1;
			a->p[i].has_default = 1;
		}
		a->pp[i] = &a->p[i];
	}
	va_end(ap);
	a->app.params = a->pp;
	a->app.n_params = (size_t)n;
}

struct task {
	Copal__TaskSpec sp;
	Copal__EnvVar v[8], *vp[8];
};

static void
task_make(struct task *t, int n, ...)
{
	va_list ap;
	copal__task_spec__init(&t->sp);
	t->sp.name = (char *)"t";
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		copal__env_var__init(&t->v[i]);
		t->v[i].name = va_arg(ap, char *);
		t->v[i].value = va_arg(ap, char *);
		t->vp[i] = &t->v[i];
	}
	va_end(ap);
	t->sp.params = t->vp;
	t->sp.n_params = (size_t)n;
}

static void
test_app_check(void **state)
{
	(void)state;
	struct app a;
	char err[300];
	app_make(&a, "sim.x -n {{ n }} --input {{input}}", 2, "n=1", "input");
	assert_int_equal(cpl_app_params_check(&a.app, err, sizeof err), 0);
	app_make(&a, "sim.x {{ m }}", 1, "n");
	assert_int_equal(cpl_app_params_check(&a.app, err, sizeof err),
	    CPL_EINVAL);
	assert_non_null(strstr(err, "{{ m }}"));
	app_make(&a, "sim.x {{ n", 1, "n");
	assert_int_equal(cpl_app_params_check(&a.app, err, sizeof err),
	    CPL_EINVAL);
	app_make(&a, "sim.x {{ n }}", 2, "n", "n=2");
	assert_int_equal(cpl_app_params_check(&a.app, err, sizeof err),
	    CPL_EINVAL);
	assert_non_null(strstr(err, "twice"));
	app_make(&a, "sim.x", 1, "1n");
	assert_int_equal(cpl_app_params_check(&a.app, err, sizeof err),
	    CPL_EINVAL);
	app_make(&a, "sim.x", 1, "a-b");
	assert_int_equal(cpl_app_params_check(&a.app, err, sizeof err),
	    CPL_EINVAL);
	// a plain app's braces are the user's
	app_make(&a, "awk '{{ print }}' {{", 0);
	assert_int_equal(cpl_app_params_check(&a.app, err, sizeof err), 0);
}

static void
test_task_check(void **state)
{
	(void)state;
	struct app a;
	struct task t;
	char err[300];
	app_make(&a, "sim.x -n {{ n }} --input {{ input }}", 2, "n=1", "input");
	task_make(&t, 1, "input", "a.dat");
	assert_int_equal(cpl_task_params_check(&a.app, &t.sp, err, sizeof err),
	    0);
	task_make(&t, 2, "input", "a.dat", "n", "3");
	assert_int_equal(cpl_task_params_check(&a.app, &t.sp, err, sizeof err),
	    0);
	task_make(&t, 0);
	assert_int_equal(cpl_task_params_check(&a.app, &t.sp, err, sizeof err),
	    CPL_EINVAL);
	assert_non_null(strstr(err, "missing parameter input"));
	task_make(&t, 2, "input", "a", "nn", "3");
	assert_int_equal(cpl_task_params_check(&a.app, &t.sp, err, sizeof err),
	    CPL_EINVAL);
	assert_non_null(strstr(err, "unknown parameter nn"));
	task_make(&t, 2, "input", "a", "input", "b");
	assert_int_equal(cpl_task_params_check(&a.app, &t.sp, err, sizeof err),
	    CPL_EINVAL);
	assert_non_null(strstr(err, "twice"));
	// a plain app takes no values, and needs none
	app_make(&a, "echo", 0);
	task_make(&t, 0);
	assert_int_equal(cpl_task_params_check(&a.app, &t.sp, err, sizeof err),
	    0);
	task_make(&t, 1, "x", "1");
	assert_int_equal(cpl_task_params_check(&a.app, &t.sp, err, sizeof err),
	    CPL_EINVAL);
	assert_non_null(strstr(err, "unknown parameter x"));
}

// Runs cmd with /bin/sh and returns its output (static buffer).
static const char *
sh_out(const char *cmd)
{
	static char out[8192];
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

static void
test_render(void **state)
{
	(void)state;
	struct app a;
	struct task t;
	char out[4096];
	static const char *const hard[] = {
		"a b", "it's", "\"dq\"", "$(echo pwned)", "`echo pwned`",
		"*", "$HOME", "a\\b", "'", "''", "", "semi;colon && x",
		"new\nline", "-n", "é ü",
	};
	app_make(&a, "printf '<%s>\\n' {{ v }} {{n}} end", 2, "v", "n=dflt");
	for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) {
		char want[256];
		task_make(&t, 1, "v", (char *)hard[i]);
		assert_int_equal(cpl_cmd_render(&a.app, &t.sp, out, sizeof out),
		    0);
		snprintf(want, sizeof want, "<%s>\n<dflt>\n<end>\n", hard[i]);
		const char *got = sh_out(out);
		if (strcmp(got, want) != 0)
			fail_msg("value [%s]: command %s printed [%s]", hard[i],
			    out, got);
	}
	// a plain app is copied as it is
	app_make(&a, "echo {{ x }} $A", 0);
	task_make(&t, 0);
	assert_int_equal(cpl_cmd_render(&a.app, &t.sp, out, sizeof out), 0);
	assert_string_equal(out, "echo {{ x }} $A");
	// too small a buffer, a missing value
	app_make(&a, "x {{ v }}", 1, "v");
	task_make(&t, 1, "v", "0123456789");
	assert_int_equal(cpl_cmd_render(&a.app, &t.sp, out, 10), CPL_ETOOBIG);
	task_make(&t, 0);
	assert_int_equal(cpl_cmd_render(&a.app, &t.sp, out, sizeof out),
	    CPL_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_app_check),
		cmocka_unit_test(test_task_check),
		cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
