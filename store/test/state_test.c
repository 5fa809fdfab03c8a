// The state table, state names and error strings (no database needed).
//
// The header does not spell out the transition table; the table below is
// the one that follows from store.h and DESIGN.md section 2:
//  * the broker does bookkeeping: CREATED -> READY / AWAITING_PARENTS /
//    PARENT_KILLED, dependency release, PARENT_KILLED cascades, a new
//    parent (cpl_dep_add) sending a not-yet-started task back to
//    AWAITING_PARENTS, lease expiry (RUN_TIMEOUT for started tasks) and the
//    retry policy (RUN_TIMEOUT/RUN_ERROR -> RESTART_READY or FAILED,
//    RESTART_READY beyond max_retries -> FAILED);
//  * the launcher walks a claimed task (READY or RESTART_READY) through the
//    stages, may skip stages with nothing to do, reports RUN_ERROR,
//    RUN_TIMEOUT or FAILED, and ends error/timeout handlers with
//    RESTART_READY or FAILED;
//  * the user kills any unfinished task, restarts (RESTART_READY) a final,
//    errored or timed-out task or resets a not-yet-started one (as Balsam
//    users do with "modify ... state RESTART_READY"), and may fail an
//    errored or timed-out one.
// Every other (from, to, actor) is refused; nothing at all leaves NONE or
// enters NONE or CREATED, nothing leaves a final state except a user
// restart, and actor 0 may do nothing.
#include "copal/testing/util.h"

#include <ctype.h>
#include <string.h>

#define B CPL_BY_BROKER
#define L CPL_BY_LAUNCHER
#define U CPL_BY_USER

typedef struct allowed {
	cpl_state from, to;
	unsigned actors;
} allowed;

static const allowed expected[] = {
	{ CPL_CREATED, CPL_AWAITING_PARENTS, B },
	{ CPL_CREATED, CPL_READY, B },
	{ CPL_CREATED, CPL_PARENT_KILLED, B },
	{ CPL_CREATED, CPL_USER_KILLED, U },

	{ CPL_AWAITING_PARENTS, CPL_READY, B },
	{ CPL_AWAITING_PARENTS, CPL_PARENT_KILLED, B },
	{ CPL_AWAITING_PARENTS, CPL_USER_KILLED, U },
	{ CPL_AWAITING_PARENTS, CPL_RESTART_READY, U }, // reset by hand

	{ CPL_READY, CPL_AWAITING_PARENTS, B },
	{ CPL_READY, CPL_STAGED_IN, L },
	{ CPL_READY, CPL_PREPROCESSED, L },
	{ CPL_READY, CPL_RUNNING, L },
	{ CPL_READY, CPL_RUN_ERROR, L },
	{ CPL_READY, CPL_FAILED, L },
	{ CPL_READY, CPL_USER_KILLED, U },
	{ CPL_READY, CPL_PARENT_KILLED, B },
	{ CPL_READY, CPL_RESTART_READY, U }, // reset by hand
	{ CPL_READY, CPL_RUN_TIMEOUT, L }, // cut in its preprocess (issue 22)

	{ CPL_STAGED_IN, CPL_PREPROCESSED, L },
	{ CPL_STAGED_IN, CPL_RUNNING, L },
	{ CPL_STAGED_IN, CPL_RUN_ERROR, L },
	{ CPL_STAGED_IN, CPL_RUN_TIMEOUT, L | B },
	{ CPL_STAGED_IN, CPL_FAILED, L },
	{ CPL_STAGED_IN, CPL_USER_KILLED, U },
	{ CPL_STAGED_IN, CPL_PARENT_KILLED, B },

	{ CPL_PREPROCESSED, CPL_RUNNING, L },
	{ CPL_PREPROCESSED, CPL_RUN_ERROR, L },
	{ CPL_PREPROCESSED, CPL_RUN_TIMEOUT, L | B },
	{ CPL_PREPROCESSED, CPL_FAILED, L },
	{ CPL_PREPROCESSED, CPL_USER_KILLED, U },
	{ CPL_PREPROCESSED, CPL_PARENT_KILLED, B },

	{ CPL_RUNNING, CPL_RUN_DONE, L },
	{ CPL_RUNNING, CPL_RUN_ERROR, L },
	{ CPL_RUNNING, CPL_RUN_TIMEOUT, L | B },
	{ CPL_RUNNING, CPL_FAILED, L },
	{ CPL_RUNNING, CPL_USER_KILLED, U },
	{ CPL_RUNNING, CPL_PARENT_KILLED, B },

	{ CPL_RUN_DONE, CPL_POSTPROCESSED, L },
	{ CPL_RUN_DONE, CPL_JOB_FINISHED, L },
	{ CPL_RUN_DONE, CPL_RUN_ERROR, L },
	{ CPL_RUN_DONE, CPL_RUN_TIMEOUT, L | B },
	{ CPL_RUN_DONE, CPL_FAILED, L },
	{ CPL_RUN_DONE, CPL_USER_KILLED, U },
	{ CPL_RUN_DONE, CPL_PARENT_KILLED, B },

	{ CPL_POSTPROCESSED, CPL_JOB_FINISHED, L },
	{ CPL_POSTPROCESSED, CPL_RUN_ERROR, L },
	{ CPL_POSTPROCESSED, CPL_RUN_TIMEOUT, L | B },
	{ CPL_POSTPROCESSED, CPL_FAILED, L },
	{ CPL_POSTPROCESSED, CPL_USER_KILLED, U },
	{ CPL_POSTPROCESSED, CPL_PARENT_KILLED, B },

	{ CPL_JOB_FINISHED, CPL_RESTART_READY, U },

	{ CPL_RUN_ERROR, CPL_JOB_FINISHED, L },
	{ CPL_RUN_ERROR, CPL_RESTART_READY, L | B | U },
	{ CPL_RUN_ERROR, CPL_FAILED, L | B | U },
	{ CPL_RUN_ERROR, CPL_USER_KILLED, U },
	{ CPL_RUN_ERROR, CPL_PARENT_KILLED, B },

	// a handler's verdict "finished" (issue 22)
	{ CPL_RUN_TIMEOUT, CPL_JOB_FINISHED, L },
	{ CPL_RUN_TIMEOUT, CPL_RESTART_READY, L | B | U },
	{ CPL_RUN_TIMEOUT, CPL_FAILED, L | B | U },
	{ CPL_RUN_TIMEOUT, CPL_USER_KILLED, U },
	{ CPL_RUN_TIMEOUT, CPL_PARENT_KILLED, B },

	{ CPL_RESTART_READY, CPL_AWAITING_PARENTS, B },
	{ CPL_RESTART_READY, CPL_STAGED_IN, L },
	{ CPL_RESTART_READY, CPL_PREPROCESSED, L },
	{ CPL_RESTART_READY, CPL_RUNNING, L },
	// the timeout handler a wall-time cut did not let run (issue 22)
	{ CPL_RESTART_READY, CPL_RUN_TIMEOUT, L },
	{ CPL_RESTART_READY, CPL_RUN_ERROR, L },
	{ CPL_RESTART_READY, CPL_FAILED, L | B },
	{ CPL_RESTART_READY, CPL_USER_KILLED, U },
	{ CPL_RESTART_READY, CPL_PARENT_KILLED, B },

	{ CPL_FAILED, CPL_RESTART_READY, U },
	{ CPL_USER_KILLED, CPL_RESTART_READY, U },
	{ CPL_PARENT_KILLED, CPL_RESTART_READY, U },
};

static unsigned
expected_actors(int from, int to)
{
	for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
		if ((int)expected[i].from == from && (int)expected[i].to == to)
			return expected[i].actors;
	return 0;
}

static const char *
actor_name(unsigned a)
{
	switch (a) {
	case B:
		return "BROKER";
	case L:
		return "LAUNCHER";
	case U:
		return "USER";
	default:
		return "?";
	}
}

// Every (from, to, actor) over all 16 x 16 states and the three actors
// matches the expected table: each allowed entry allowed, everything else
// refused.
static void
test_transition_table_complete(void **state)
{
	(void)state;
	const unsigned actors[] = { B, L, U };
	int bad = 0;
	for (int from = 0; from < CPL_NSTATES; from++) {
		for (int to = 0; to < CPL_NSTATES; to++) {
			unsigned want = expected_actors(from, to);
			for (size_t k = 0; k < 3; k++) {
				bool w = (want & actors[k]) != 0;
				bool g = cpl_transition_allowed((cpl_state)from,
				    (cpl_state)to, (cpl_actor)actors[k]);
				if (w != g) {
					print_error("%s -> %s by %s: expected "
					            "%s, got %s\n",
					    tu_sname(from), tu_sname(to),
					    actor_name(actors[k]),
					    w ? "allowed" : "refused",
					    g ? "allowed" : "refused");
					bad++;
				}
			}
		}
	}
	if (bad)
		TU_FAIL("%d table entries differ", bad);
}

// Properties that hold whatever the details of the table.
static void
test_transition_table_properties(void **state)
{
	(void)state;
	const unsigned actors[] = { B, L, U };
	for (int s = 0; s < CPL_NSTATES; s++) {
		for (size_t k = 0; k < 3; k++) {
			cpl_actor a = (cpl_actor)actors[k];
			// Nothing enters NONE or CREATED, nothing leaves NONE.
			assert_false(cpl_transition_allowed((cpl_state)s,
			    CPL_STATE_NONE, a));
			assert_false(cpl_transition_allowed((cpl_state)s,
			    CPL_CREATED, a));
			assert_false(cpl_transition_allowed(CPL_STATE_NONE,
			    (cpl_state)s, a));
			// No self transitions.
			assert_false(cpl_transition_allowed((cpl_state)s,
			    (cpl_state)s, a));
			// Out of range never allowed.
			assert_false(cpl_transition_allowed((cpl_state)s,
			    (cpl_state)CPL_NSTATES, a));
			assert_false(cpl_transition_allowed(
			    (cpl_state)CPL_NSTATES, (cpl_state)s, a));
			assert_false(cpl_transition_allowed((cpl_state)s,
			    (cpl_state)-1, a));
			assert_false(cpl_transition_allowed((cpl_state)-1,
			    (cpl_state)s, a));
			assert_false(cpl_transition_allowed((cpl_state)s,
			    (cpl_state)1000, a));
		}
		for (int t = 0; t < CPL_NSTATES; t++) {
			// No actor at all: nothing allowed.
			assert_false(cpl_transition_allowed((cpl_state)s,
			    (cpl_state)t, (cpl_actor)0));
			if (cpl_state_is_final((cpl_state)s)) {
				// Final states: no launcher or broker moves;
				// only a user restart.
				assert_false(cpl_transition_allowed(
				    (cpl_state)s, (cpl_state)t,
				    CPL_BY_LAUNCHER));
				assert_false(cpl_transition_allowed(
				    (cpl_state)s, (cpl_state)t, CPL_BY_BROKER));
				if (t != CPL_RESTART_READY)
					assert_false(cpl_transition_allowed(
					    (cpl_state)s, (cpl_state)t,
					    CPL_BY_USER));
			}
		}
		// PARENT_KILLED is the broker's bookkeeping only.
		assert_false(cpl_transition_allowed((cpl_state)s,
		    CPL_PARENT_KILLED, CPL_BY_USER));
		assert_false(cpl_transition_allowed((cpl_state)s,
		    CPL_PARENT_KILLED, CPL_BY_LAUNCHER));
		// USER_KILLED is the user's only.
		assert_false(cpl_transition_allowed((cpl_state)s,
		    CPL_USER_KILLED, CPL_BY_LAUNCHER));
		assert_false(cpl_transition_allowed((cpl_state)s,
		    CPL_USER_KILLED, CPL_BY_BROKER));
		// Only the broker resolves dependencies.
		assert_false(cpl_transition_allowed((cpl_state)s,
		    CPL_AWAITING_PARENTS, CPL_BY_LAUNCHER));
		assert_false(cpl_transition_allowed((cpl_state)s,
		    CPL_AWAITING_PARENTS, CPL_BY_USER));
		assert_false(cpl_transition_allowed((cpl_state)s, CPL_READY,
		    CPL_BY_LAUNCHER));
		assert_false(cpl_transition_allowed((cpl_state)s, CPL_READY,
		    CPL_BY_USER));
		// Nobody but the launcher runs stages.
		const cpl_state stages[] = { CPL_STAGED_IN, CPL_PREPROCESSED,
			CPL_RUNNING, CPL_RUN_DONE, CPL_POSTPROCESSED,
			CPL_JOB_FINISHED };
		for (size_t i = 0; i < 6; i++) {
			assert_false(cpl_transition_allowed((cpl_state)s,
			    stages[i], CPL_BY_BROKER));
			assert_false(cpl_transition_allowed((cpl_state)s,
			    stages[i], CPL_BY_USER));
		}
		// A user may kill any unfinished task.
		if (s != CPL_STATE_NONE && !cpl_state_is_final((cpl_state)s))
			assert_true(cpl_transition_allowed((cpl_state)s,
			    CPL_USER_KILLED, CPL_BY_USER));
	}
	// The pipeline and the policy transitions named in store.h.
	assert_true(cpl_transition_allowed(CPL_READY, CPL_STAGED_IN, L));
	assert_true(cpl_transition_allowed(CPL_STAGED_IN, CPL_PREPROCESSED, L));
	assert_true(cpl_transition_allowed(CPL_PREPROCESSED, CPL_RUNNING, L));
	assert_true(cpl_transition_allowed(CPL_RUNNING, CPL_RUN_DONE, L));
	assert_true(cpl_transition_allowed(CPL_RUN_DONE, CPL_POSTPROCESSED, L));
	assert_true(cpl_transition_allowed(CPL_POSTPROCESSED,
	    CPL_JOB_FINISHED, L));
	assert_true(cpl_transition_allowed(CPL_RUNNING, CPL_RUN_TIMEOUT, B));
	assert_true(cpl_transition_allowed(CPL_RUN_TIMEOUT, CPL_RESTART_READY,
	    B));
	assert_true(cpl_transition_allowed(CPL_RUN_TIMEOUT, CPL_FAILED, B));
	assert_true(cpl_transition_allowed(CPL_RUN_ERROR, CPL_FAILED, B));
	assert_true(cpl_transition_allowed(CPL_RUN_ERROR, CPL_RESTART_READY, L));
	assert_true(cpl_transition_allowed(CPL_RESTART_READY, CPL_FAILED, B));
	assert_true(cpl_transition_allowed(CPL_AWAITING_PARENTS, CPL_READY, B));
	assert_true(cpl_transition_allowed(CPL_AWAITING_PARENTS,
	    CPL_PARENT_KILLED, B));
	assert_true(cpl_transition_allowed(CPL_JOB_FINISHED, CPL_RESTART_READY,
	    U));
	// A launcher cannot jump from a claim to the end, nor go backwards.
	assert_false(cpl_transition_allowed(CPL_READY, CPL_JOB_FINISHED, L));
	assert_false(cpl_transition_allowed(CPL_READY, CPL_RUN_DONE, L));
	assert_false(cpl_transition_allowed(CPL_STAGED_IN, CPL_RUN_DONE, L));
	assert_false(cpl_transition_allowed(CPL_RUNNING, CPL_JOB_FINISHED, L));
	assert_false(cpl_transition_allowed(CPL_RUNNING, CPL_STAGED_IN, L));
	assert_false(cpl_transition_allowed(CPL_RUN_DONE, CPL_RUNNING, L));
	assert_false(cpl_transition_allowed(CPL_POSTPROCESSED, CPL_RUN_DONE,
	    L));
	assert_false(cpl_transition_allowed(CPL_RUNNING, CPL_RESTART_READY, L));
	assert_false(cpl_transition_allowed(CPL_READY, CPL_RUN_TIMEOUT, B));
	assert_false(cpl_transition_allowed(CPL_RUN_ERROR, CPL_RUNNING, L));
	assert_false(cpl_transition_allowed(CPL_RUN_TIMEOUT, CPL_RUNNING, L));
	assert_false(cpl_transition_allowed(CPL_AWAITING_PARENTS,
	    CPL_STAGED_IN, L));
	assert_false(cpl_transition_allowed(CPL_CREATED, CPL_RUNNING, L));
}

static void
test_state_names(void **state)
{
	(void)state;
	static const char *const names[CPL_NSTATES] = { NULL, "CREATED",
		"AWAITING_PARENTS", "READY", "STAGED_IN", "PREPROCESSED",
		"RUNNING", "RUN_DONE", "POSTPROCESSED", "JOB_FINISHED",
		"RUN_ERROR", "RUN_TIMEOUT", "RESTART_READY", "FAILED",
		"USER_KILLED", "PARENT_KILLED" };
	for (int s = 1; s < CPL_NSTATES; s++) {
		const char *n = cpl_state_name(s);
		assert_non_null(n);
		assert_string_equal(n, names[s]);
		assert_int_equal(cpl_state_parse(n), s);
		// case-insensitive
		char low[64], mixed[64];
		size_t len = strlen(n);
		assert_true(len < sizeof low);
		for (size_t i = 0; i <= len; i++) {
			low[i] = (char)tolower((unsigned char)n[i]);
			mixed[i] = (i % 2) ? low[i] : n[i];
		}
		assert_int_equal(cpl_state_parse(low), s);
		assert_int_equal(cpl_state_parse(mixed), s);
	}
	// The numbers are the wire's.
	assert_int_equal(CPL_RUN_DONE, COPAL__TASK_STATE__STATE_RUN_DONE);
	assert_int_equal(CPL_PARENT_KILLED,
	    COPAL__TASK_STATE__STATE_PARENT_KILLED);
	assert_int_equal(CPL_CREATED, COPAL__TASK_STATE__STATE_CREATED);
	assert_int_equal(CPL_RESTART_READY,
	    COPAL__TASK_STATE__STATE_RESTART_READY);
	// Out of range names are NULL.
	assert_null(cpl_state_name(-1));
	assert_null(cpl_state_name(CPL_NSTATES));
	assert_null(cpl_state_name(1000));
	// Unknown names parse to NONE.
	assert_int_equal(cpl_state_parse("bogus"), CPL_STATE_NONE);
	assert_int_equal(cpl_state_parse(""), CPL_STATE_NONE);
	assert_int_equal(cpl_state_parse("RUN"), CPL_STATE_NONE);
	assert_int_equal(cpl_state_parse("READY "), CPL_STATE_NONE);
	assert_int_equal(cpl_state_parse("JOB_FINISHEDX"), CPL_STATE_NONE);
}

static void
test_state_is_final(void **state)
{
	(void)state;
	for (int s = 0; s < CPL_NSTATES; s++) {
		bool want = s == CPL_JOB_FINISHED || s == CPL_FAILED ||
		    s == CPL_USER_KILLED || s == CPL_PARENT_KILLED;
		if (cpl_state_is_final((cpl_state)s) != want)
			TU_FAIL("cpl_state_is_final(%s) = %d, expected %d",
			    tu_sname(s), !want, want);
	}
}

static void
test_strerror(void **state)
{
	(void)state;
	static const char *const names[] = {
#define X(name, msg) #name,
		CPL_ERRNO_MAP(X)
#undef X
	};
	static const char *const msgs[] = {
#define X(name, msg) msg,
		CPL_ERRNO_MAP(X)
#undef X
	};
	assert_int_equal(CPL_EOK, 0);
	assert_int_equal(sizeof names / sizeof names[0], CPL_NERRORS);
	for (int e = 0; e < CPL_NERRORS; e++) {
		const char *m = cpl_strerror(e);
		const char *n = cpl_errname(e);
		assert_non_null(m);
		assert_non_null(n);
		assert_true(m[0] != '\0');
		assert_string_equal(m, msgs[e]);
		assert_string_equal(n, names[e]);
	}
	// Distinct messages for distinct codes.
	for (int a = 0; a < CPL_NERRORS; a++)
		for (int b = a + 1; b < CPL_NERRORS; b++)
			assert_string_not_equal(cpl_strerror(a),
			    cpl_strerror(b));
	// Out of range: never NULL.
	const int odd[] = { -1, -1000, CPL_NERRORS, CPL_NERRORS + 1, 12345 };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		assert_non_null(cpl_strerror(odd[i]));
		assert_non_null(cpl_errname(odd[i]));
	}
	assert_string_equal(cpl_errname(CPL_ENOTFOUND), "NOTFOUND");
	assert_string_equal(cpl_strerror(CPL_ELOCKED),
	    "database is open in another process");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition_table_complete),
		cmocka_unit_test(test_transition_table_properties),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_state_is_final),
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
