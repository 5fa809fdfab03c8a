// Apps: put, get, list (name order, task counts), replace, delete, and the
// refusals (EINVAL, EEXISTS, ENOTFOUND, EINUSE).
#include "copal/testing/util.h"

#include <stdio.h>

// An App with its strings in one block.
typedef struct appb {
	Copal__App a;
	char s[6][96];
} appb;

static Copal__App *
fill(appb *x, const char *name, const char *exe, const char *tag)
{
	copal__app__init(&x->a);
	snprintf(x->s[0], sizeof x->s[0], "%s", name);
	snprintf(x->s[1], sizeof x->s[1], "%s", exe);
	snprintf(x->s[2], sizeof x->s[2], "pre-%s", tag);
	snprintf(x->s[3], sizeof x->s[3], "post-%s", tag);
	snprintf(x->s[4], sizeof x->s[4], "env-%s.sh", tag);
	snprintf(x->s[5], sizeof x->s[5], "the %s app", tag);
	x->a.name = x->s[0];
	x->a.executable = x->s[1];
	x->a.preprocess = x->s[2];
	x->a.postprocess = x->s[3];
	x->a.envscript = x->s[4];
	x->a.description = x->s[5];
	return &x->a;
}

static void
expect_app(tu_env *e, const char *name, const char *exe, const char *tag)
{
	Copal__App *g = NULL;
	TU_OK(tu_app_get(e, name, &g));
	assert_non_null(g);
	char buf[64];
	assert_string_equal(g->name, name);
	assert_string_equal(g->executable, exe);
	snprintf(buf, sizeof buf, "pre-%s", tag);
	assert_string_equal(g->preprocess, buf);
	snprintf(buf, sizeof buf, "post-%s", tag);
	assert_string_equal(g->postprocess, buf);
	snprintf(buf, sizeof buf, "env-%s.sh", tag);
	assert_string_equal(g->envscript, buf);
	snprintf(buf, sizeof buf, "the %s app", tag);
	assert_string_equal(g->description, buf);
	copal__app__free_unpacked(g, NULL);
}

static void
test_app_put_get(void **state)
{
	tu_env *e = *state;
	appb a;
	TU_OK(tu_app_put_msg(e,
	    fill(&a, "sim", "singularity exec img.sif /opt/sim --fast", "v1"),
	    false));
	expect_app(e, "sim", "singularity exec img.sif /opt/sim --fast", "v1");
	Copal__App *g = NULL;
	TU_ERR(tu_app_get(e, "Sim", &g), CPL_ENOTFOUND);
	TU_ERR(tu_app_get(e, "si", &g), CPL_ENOTFOUND);
	TU_ERR(tu_app_get(e, "simx", &g), CPL_ENOTFOUND);
	assert_null(g);
}

static void
test_app_exists_and_replace(void **state)
{
	tu_env *e = *state;
	appb a, b;
	fill(&a, "sim", "/bin/sim1", "v1");
	fill(&b, "sim", "/bin/sim2", "v2");
	TU_OK(tu_app_put_msg(e, &a.a, false));
	TU_ERR(tu_app_put_msg(e, &b.a, false), CPL_EEXISTS);
	expect_app(e, "sim", "/bin/sim1", "v1");
	TU_OK(tu_app_put_msg(e, &b.a, true));
	expect_app(e, "sim", "/bin/sim2", "v2");
	// replace of a new name just creates it.
	appb c;
	TU_OK(tu_app_put_msg(e, fill(&c, "fresh", "/bin/fresh", "v3"), true));
	expect_app(e, "fresh", "/bin/fresh", "v3");
	// Replacing an app in use is fine; its tasks keep referring to it.
	tu_spec sp;
	tu_spec_init(&sp, "t", "w", "sim");
	uint64_t id = tu_task_spec(e, &sp);
	TU_OK(tu_app_put_msg(e, fill(&a, "sim", "/bin/sim3", "v4"), true));
	expect_app(e, "sim", "/bin/sim3", "v4");
	tu_names l;
	TU_OK(tu_apps(e, &l));
	assert_int_equal(tu_names_count(&l, "sim"), 1);
	TU_STATE(e, id, CPL_READY);
}

static void
test_app_invalid(void **state)
{
	tu_env *e = *state;
	appb a;
	TU_ERR(tu_app_put_msg(e, fill(&a, "", "/bin/x", "v"), false),
	    CPL_EINVAL);
	TU_ERR(tu_app_put_msg(e, &a.a, true), CPL_EINVAL);
	TU_ERR(tu_app_put_msg(e, fill(&a, "noexe", "", "v"), false),
	    CPL_EINVAL);
	TU_ERR(tu_app_put_msg(e, &a.a, true), CPL_EINVAL);
	tu_names l;
	TU_OK(tu_apps(e, &l));
	assert_int_equal(l.n, 0);
	Copal__App *g = NULL;
	TU_ERR(tu_app_get(e, "noexe", &g), CPL_ENOTFOUND);
}

static void
test_app_list(void **state)
{
	tu_env *e = *state;
	const char *names[] = { "zeta", "alpha", "mid", "beta" };
	for (size_t i = 0; i < 4; i++)
		TU_OK(tu_app_put(e, names[i], "/bin/true"));
	tu_spec sp;
	for (int i = 0; i < 3; i++) {
		tu_spec_init(&sp, "t", "w", "mid");
		tu_task_spec(e, &sp);
	}
	tu_spec_init(&sp, "t", "w", "zeta");
	uint64_t z = tu_task_spec(e, &sp);
	tu_names l;
	TU_OK(tu_apps(e, &l));
	assert_int_equal(l.n, 4);
	assert_string_equal(l.name[0], "alpha");
	assert_string_equal(l.name[1], "beta");
	assert_string_equal(l.name[2], "mid");
	assert_string_equal(l.name[3], "zeta");
	assert_int_equal(l.count[0], 0);
	assert_int_equal(l.count[1], 0);
	assert_int_equal(l.count[2], 3);
	assert_int_equal(l.count[3], 1);
	TU_OK(tu_delete(e, z));
	TU_OK(tu_apps(e, &l));
	assert_int_equal(l.count[3], 0);
}

static void
test_app_delete(void **state)
{
	tu_env *e = *state;
	TU_OK(tu_app_put(e, "used", "/bin/u"));
	TU_OK(tu_app_put(e, "unused", "/bin/n"));
	tu_spec sp;
	tu_spec_init(&sp, "t", "w", "used");
	uint64_t id = tu_task_spec(e, &sp);
	TU_ERR(tu_app_delete(e, "nope"), CPL_ENOTFOUND);
	TU_ERR(tu_app_delete(e, "used"), CPL_EINUSE);
	Copal__App *g = NULL;
	TU_OK(tu_app_get(e, "used", &g));
	copal__app__free_unpacked(g, NULL);
	TU_OK(tu_app_delete(e, "unused"));
	TU_ERR(tu_app_get(e, "unused", &g), CPL_ENOTFOUND);
	TU_ERR(tu_app_delete(e, "unused"), CPL_ENOTFOUND);
	// A final task still refers to its app.
	TU_OK(tu_kill(e, id, NULL));
	TU_ERR(tu_app_delete(e, "used"), CPL_EINUSE);
	// Once its tasks are gone the app can go.
	TU_OK(tu_delete(e, id));
	TU_OK(tu_app_delete(e, "used"));
	tu_names l;
	TU_OK(tu_apps(e, &l));
	assert_int_equal(l.n, 0);
	// Tasks cannot be created for a deleted app.
	tu_spec_init(&sp, "t", "w", "used");
	TU_ERR(tu_create_spec(e, &sp.spec, NULL, NULL), CPL_ENOTFOUND);
	// And it can be registered again.
	TU_OK(tu_app_put(e, "used", "/bin/u2"));
	TU_OK(tu_create_spec(e, &sp.spec, NULL, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_app_put_get, tu_setup_bare,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_app_exists_and_replace,
		    tu_setup_bare, tu_teardown),
		cmocka_unit_test_setup_teardown(test_app_invalid, tu_setup_bare,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_app_list, tu_setup_bare,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_app_delete, tu_setup_bare,
		    tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
