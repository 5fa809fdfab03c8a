// Every transition through the store's two entry points for state changes:
//  * cpl_task_report (launcher): a task is claimed under a lease, brought to
//    each state a launcher can hold it in, and each of the 16 target states
//    is reported. Allowed ones (by cpl_transition_allowed) apply with one
//    history event carrying from, to, attempt, lease, return code and
//    message; refused ones return CPL_EBADSTATE and change nothing (task
//    record, counters, history).
//  * cpl_task_set_state (user): the same over every state a task can rest
//    in unheld; on held tasks every change but a kill is CPL_EBUSY (or
//    CPL_EBADSTATE where the table refuses it anyway).
// Tasks here have error and timeout handlers and many retries, so that no
// bookkeeping follows a report and the task stays where it was sent.
#include "copal/testing/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LONG_TTL (3600u * 1000u)

// The matrices check every case and report all problems at the end, so
// that one wrong entry does not hide the others.
static int nbad;
#define SOFT(cond, ...)                                                    \
	do {                                                               \
		if (!(cond)) {                                             \
			print_error("%s:%d: ", __FILE__, __LINE__);        \
			print_error(__VA_ARGS__);                          \
			print_error("\n");                                 \
			nbad++;                                            \
		}                                                          \
	} while (0)

// Brings a new task of workflow wf to RESTART_READY, unheld, at attempt 1:
// it fails under lease and a user restarts it. (This path depends neither
// on a launcher's RESTART_READY report nor on lease expiry, which have
// tests of their own.)
static uint64_t
restart_ready_by_user(tu_env *e, uint64_t lease, const char *wf)
{
	tu_spec sp;
	tu_spec_init(&sp, "t", wf, "app");
	sp.spec.post_error_handler = 1;
	sp.spec.post_timeout_handler = 1;
	sp.spec.max_retries = 50;
	uint64_t id = tu_task_spec(e, &sp);
	uint32_t a = tu_claim_task(e, lease, wf, id);
	tu_run_to(e, id, lease, a, CPL_RUNNING);
	TU_OK(tu_report(e, id, lease, a, CPL_FAILED));
	TU_OK(tu_set_state(e, id, CPL_RESTART_READY, "again"));
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_RESTART_READY);
	TU_EQ_U64(t.lease, 0);
	assert_int_equal(t.attempt, 1);
	return id;
}

static const char *
wf_name(char *buf, size_t len, const char *kind, int from, int to)
{
	snprintf(buf, len, "%s-%d-%d", kind, from, to);
	return buf;
}

static void
spec_for(tu_spec *sp, const char *wf)
{
	tu_spec_init(sp, "t", wf, "app");
	sp->spec.post_error_handler = 1;
	sp->spec.post_timeout_handler = 1;
	sp->spec.max_retries = 50;
}

// Creates a task in workflow wf and brings it to `from`, held by lease.
// Returns its id; *att gets the current attempt.
static uint64_t
reach_held(tu_env *e, uint64_t lease, const char *wf, cpl_state from,
    uint32_t *att)
{
	tu_spec sp;
	uint64_t id;
	uint32_t a;
	if (from == CPL_RESTART_READY) {
		id = restart_ready_by_user(e, lease, wf);
		a = tu_claim_task(e, lease, wf, id);
		assert_int_equal(a, 2);
		goto check;
	}
	spec_for(&sp, wf);
	id = tu_task_spec(e, &sp);
	a = tu_claim_task(e, lease, wf, id);
	switch (from) {
	case CPL_READY:
		break;
	case CPL_STAGED_IN:
	case CPL_PREPROCESSED:
	case CPL_RUNNING:
	case CPL_RUN_DONE:
	case CPL_POSTPROCESSED:
		tu_run_to(e, id, lease, a, from);
		break;
	case CPL_RUN_ERROR:
	case CPL_RUN_TIMEOUT:
		tu_run_to(e, id, lease, a, CPL_RUNNING);
		TU_OK(tu_report(e, id, lease, a, from));
		break;
	default:
		TU_FAIL("reach_held: %s", tu_sname(from));
	}
check:;
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, from);
	TU_EQ_U64(t.lease, lease);
	assert_int_equal(t.attempt, a);
	*att = a;
	return id;
}

static bool
releases_lease(cpl_state s)
{
	return s == CPL_RESTART_READY || s == CPL_JOB_FINISHED ||
	    s == CPL_FAILED || s == CPL_USER_KILLED || s == CPL_PARENT_KILLED;
}

static void
test_report_matrix(void **state)
{
	tu_env *e = *state;
	const cpl_state held[] = { CPL_READY, CPL_RESTART_READY,
		CPL_STAGED_IN, CPL_PREPROCESSED, CPL_RUNNING, CPL_RUN_DONE,
		CPL_POSTPROCESSED, CPL_RUN_ERROR, CPL_RUN_TIMEOUT };
	uint64_t lease = tu_lease(e, LONG_TTL);
	tu_evs *h = calloc(1, sizeof *h);
	int napplied = 0, nrefused = 0;
	nbad = 0;

	for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
		cpl_state from = held[i];
		for (int to = 0; to < CPL_NSTATES; to++) {
			char wf[32], msg[64];
			wf_name(wf, sizeof wf, "r", from, to);
			uint32_t att;
			uint64_t id = reach_held(e, lease, wf, from, &att);
			tu_snap before;
			tu_snap_take(e, id, &before);
			snprintf(msg, sizeof msg, "report %s to %s",
			    tu_sname(from), tu_sname(to));
			int32_t rc = 100 + to;
			tu_advance_ms(e, 1);
			int rv = tu_report_full(e, id, lease, att,
			    (cpl_state)to, rc, msg);
			bool allowed = cpl_transition_allowed(from,
			    (cpl_state)to, CPL_BY_LAUNCHER);
			if (!allowed) {
				nrefused++;
				if (to == CPL_STATE_NONE)
					SOFT(rv == CPL_EBADSTATE ||
					        rv == CPL_EINVAL,
					    "%s: got %s, expected BADSTATE or "
					    "INVAL",
					    msg, cpl_errname(rv));
				else
					SOFT(rv == CPL_EBADSTATE,
					    "%s (refused by the table): got %s "
					    "(%s), expected BADSTATE",
					    msg, cpl_errname(rv),
					    cpl_strerror(rv));
				nbad += tu_snap_diff(e, id, &before, msg);
				continue;
			}
			napplied++;
			SOFT(rv == 0, "%s (allowed by the table): %s (%s)", msg,
			    cpl_errname(rv), cpl_strerror(rv));
			if (rv != 0)
				continue;
			cpl_task t = tu_task_get(e, id);
			SOFT(t.state == (cpl_state)to, "%s: task is %s", msg,
			    tu_sname(t.state));
			SOFT(t.attempt == att, "%s: attempt %u, expected %u",
			    msg, t.attempt, att);
			SOFT(t.return_code == rc, "%s: return code %d, "
			    "expected %d", msg, t.return_code, rc);
			SOFT(t.changed_us == e->now_us, "%s: changed_us %llu, "
			    "expected %llu", msg,
			    (unsigned long long)t.changed_us,
			    (unsigned long long)e->now_us);
			if (releases_lease((cpl_state)to))
				SOFT(t.lease == 0,
				    "%s: the launcher is done with the task "
				    "but it is still held by lease %llu "
				    "(store.h: reaching RESTART_READY, "
				    "JOB_FINISHED, FAILED or killed releases "
				    "the lease)",
				    msg, (unsigned long long)t.lease);
			else
				SOFT(t.lease == lease,
				    "%s: lease %llu, expected %llu", msg,
				    (unsigned long long)t.lease,
				    (unsigned long long)lease);
			// Exactly one new event, describing the report.
			TU_OK(tu_history(e, id, h));
			SOFT(h->n == before.hist + 1,
			    "%s: history grew %zu -> %zu, expected one event",
			    msg, before.hist, h->n);
			if (h->n <= before.hist)
				continue;
			const tu_ev *ev = &h->e[before.hist];
			SOFT(ev->ev.from == from && ev->ev.to == (cpl_state)to,
			    "%s: event says %s -> %s", msg,
			    tu_sname(ev->ev.from), tu_sname(ev->ev.to));
			SOFT(ev->ev.attempt == att, "%s: event attempt %u",
			    msg, ev->ev.attempt);
			SOFT(ev->ev.lease == lease, "%s: event lease %llu",
			    msg, (unsigned long long)ev->ev.lease);
			SOFT(ev->ev.return_code == rc, "%s: event rc %d", msg,
			    ev->ev.return_code);
			SOFT(ev->ev.time_us == e->now_us, "%s: event time",
			    msg);
			SOFT(ev->ev.task_id == id, "%s: event task", msg);
			SOFT(strcmp(ev->msg, msg) == 0, "%s: event message "
			    "\"%s\"", msg, ev->msg);
			// Counters moved by one.
			uint64_t c[CPL_NSTATES];
			TU_OK(tu_counts(e, c));
			SOFT(c[from] == before.counts[from] - 1 &&
			        c[to] == before.counts[to] + 1,
			    "%s: counters did not move by one", msg);
		}
		TU_COUNTS_CONSISTENT(e);
	}
	free(h);
	// The lease holds exactly the tasks it holds.
	cpl_lease l;
	TU_OK(tu_lease_get(e, lease, &l));
	cpl_filter f;
	memset(&f, 0, sizeof f);
	uint32_t nheld = 0;
	tu_ids all;
	TU_OK(tu_query(e, &f, 0, 0, &all, NULL));
	assert_false(all.overflow);
	for (size_t i = 0; i < all.n; i++)
		if (tu_task_get(e, all.id[i]).lease == lease)
			nheld++;
	SOFT(l.ntasks == nheld, "lease ntasks %u, tasks held %u", l.ntasks,
	    nheld);
	// The table gives the launcher at least the pipeline and handler exits.
	assert_true(napplied >= 20);
	assert_true(nrefused >= 80);
	if (nbad)
		TU_FAIL("%d problems in the report matrix (see above)", nbad);
}

// store.h, cpl_task_report: "Reaching a state the launcher is done with
// (RESTART_READY, JOB_FINISHED, FAILED, killed) releases the lease."
// A RESTART_READY task must be claimable again, by any launcher.
static void
test_report_restart_ready_releases_lease(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, LONG_TTL);
	uint64_t l2 = tu_lease(e, LONG_TTL);
	tu_spec sp;
	spec_for(&sp, "rr");
	uint64_t id = tu_task_spec(e, &sp);
	uint32_t a = tu_claim_task(e, l1, "rr", id);
	tu_run_to(e, id, l1, a, CPL_RUNNING);
	TU_OK(tu_report(e, id, l1, a, CPL_RUN_ERROR));
	TU_STATE(e, id, CPL_RUN_ERROR);
	TU_OK(tu_report(e, id, l1, a, CPL_RESTART_READY));
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_RESTART_READY);
	TU_EQ_U64(t.lease, 0);
	cpl_lease l;
	TU_OK(tu_lease_get(e, l1, &l));
	assert_int_equal(l.ntasks, 0);
	// Another launcher claims it: attempt 2.
	a = tu_claim_task(e, l2, "rr", id);
	assert_int_equal(a, 2);
	// And the same via RUN_TIMEOUT with a timeout handler.
	tu_run_to(e, id, l2, a, CPL_RUNNING);
	TU_OK(tu_report(e, id, l2, a, CPL_RUN_TIMEOUT));
	TU_STATE(e, id, CPL_RUN_TIMEOUT);
	TU_OK(tu_report(e, id, l2, a, CPL_RESTART_READY));
	t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_RESTART_READY);
	TU_EQ_U64(t.lease, 0);
	a = tu_claim_task(e, l1, "rr", id);
	assert_int_equal(a, 3);
}

// Reports for tasks the lease does not hold any more (finished, failed,
// given back) or never held, and for tasks that do not exist.
static void
test_report_unheld_refused(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, LONG_TTL);
	tu_spec sp;

	spec_for(&sp, "fin");
	uint64_t fin = tu_task_spec(e, &sp);
	uint32_t a_fin = tu_claim_task(e, lease, "fin", fin);
	tu_run_to(e, fin, lease, a_fin, CPL_JOB_FINISHED);

	tu_spec_init(&sp, "f", "fail", "app");
	uint64_t failed = tu_task_spec(e, &sp);
	uint32_t a_fail = tu_claim_task(e, lease, "fail", failed);
	TU_OK(tu_report(e, failed, lease, a_fail, CPL_FAILED));

	uint64_t open = tu_task(e, "open", "open", 0);
	uint64_t waiting = tu_task(e, "w", "wait", 1, open);
	TU_STATE(e, waiting, CPL_AWAITING_PARENTS);

	uint64_t ready = tu_task(e, "r", "ready", 0);

	const struct {
		uint64_t id;
		uint32_t att;
	} cases[] = { { fin, a_fin }, { failed, a_fail }, { waiting, 0 },
		{ waiting, 1 }, { ready, 0 }, { ready, 1 } };
	const cpl_state tos[] = { CPL_RUNNING, CPL_STAGED_IN, CPL_JOB_FINISHED,
		CPL_FAILED, CPL_RESTART_READY, CPL_RUN_ERROR, CPL_READY };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (size_t k = 0; k < sizeof tos / sizeof tos[0]; k++) {
			tu_snap before;
			tu_snap_take(e, cases[i].id, &before);
			char what[96];
			snprintf(what, sizeof what,
			    "report %s for unheld task in %s", tu_sname(tos[k]),
			    tu_sname(before.t.state));
			int rv = tu_report(e, cases[i].id, lease, cases[i].att,
			    tos[k]);
			if (rv != CPL_ESTALE && rv != CPL_EBADSTATE)
				TU_FAIL("%s: got %s (%s), expected STALE or "
				        "BADSTATE",
				    what, cpl_errname(rv), cpl_strerror(rv));
			tu_snap_same(e, cases[i].id, &before, what);
		}
	}
	// Unheld tasks are not "current" for any lease: STALE for a task
	// that was never claimed.
	TU_ERR(tu_report(e, ready, lease, 1, CPL_STAGED_IN), CPL_ESTALE);
	// No such task.
	TU_ERR(tu_report(e, 987654, lease, 1, CPL_RUNNING), CPL_ENOTFOUND);
	TU_COUNTS_CONSISTENT(e);
}

// Out-of-range target states are refused without a change.
static void
test_report_bad_target(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, LONG_TTL);
	uint32_t att;
	uint64_t id = reach_held(e, lease, "bad", CPL_RUNNING, &att);
	const int bad[] = { -1, CPL_NSTATES, 99 };
	for (size_t i = 0; i < 3; i++) {
		tu_snap before;
		tu_snap_take(e, id, &before);
		int rv = tu_report(e, id, lease, att, (cpl_state)bad[i]);
		if (rv != CPL_EBADSTATE && rv != CPL_EINVAL)
			TU_FAIL("report to state %d: got %s, expected "
			        "BADSTATE or INVAL",
			    bad[i], cpl_errname(rv));
		tu_snap_same(e, id, &before, "report to a bad state");
		rv = tu_set_state(e, id, (cpl_state)bad[i], NULL);
		if (rv == 0)
			TU_FAIL("set_state to %d accepted", bad[i]);
		tu_snap_same(e, id, &before, "set_state to a bad state");
	}
}

// ------------------------------------------------------------ user

typedef enum rest {
	REST_AWAITING,
	REST_READY,
	REST_RESTART_READY,
	REST_FINISHED,
	REST_FAILED,
	REST_USER_KILLED,
	REST_PARENT_KILLED,
	REST_N
} rest;

static const cpl_state rest_state[REST_N] = { CPL_AWAITING_PARENTS,
	CPL_READY, CPL_RESTART_READY, CPL_JOB_FINISHED, CPL_FAILED,
	CPL_USER_KILLED, CPL_PARENT_KILLED };

// Creates a task in workflow wf resting unheld in state rest_state[r].
static uint64_t
reach_unheld(tu_env *e, uint64_t lease, const char *wf, rest r)
{
	tu_spec sp;
	spec_for(&sp, wf);
	uint64_t id = 0, p;
	uint32_t a;
	char pwf[48];
	snprintf(pwf, sizeof pwf, "%s-parent", wf);
	switch (r) {
	case REST_AWAITING:
		p = tu_task(e, "parent", pwf, 0);
		tu_spec_parent(&sp, p);
		id = tu_task_spec(e, &sp);
		break;
	case REST_READY:
		id = tu_task_spec(e, &sp);
		break;
	case REST_RESTART_READY:
		id = restart_ready_by_user(e, lease, wf);
		break;
	case REST_FINISHED:
		id = tu_task_spec(e, &sp);
		tu_finish(e, lease, wf, id);
		break;
	case REST_FAILED:
		id = tu_task_spec(e, &sp);
		a = tu_claim_task(e, lease, wf, id);
		TU_OK(tu_report(e, id, lease, a, CPL_FAILED));
		break;
	case REST_USER_KILLED:
		id = tu_task_spec(e, &sp);
		TU_OK(tu_kill(e, id, NULL));
		break;
	case REST_PARENT_KILLED:
		p = tu_task(e, "parent", pwf, 0);
		tu_spec_parent(&sp, p);
		id = tu_task_spec(e, &sp);
		TU_OK(tu_kill(e, p, NULL));
		break;
	default:
		TU_FAIL("reach_unheld %d", (int)r);
	}
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, rest_state[r]);
	TU_EQ_U64(t.lease, 0);
	return id;
}

static void
test_set_state_matrix(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, LONG_TTL);
	tu_evs *h = calloc(1, sizeof *h);
	nbad = 0;
	for (int r = 0; r < REST_N; r++) {
		cpl_state from = rest_state[r];
		for (int to = 0; to < CPL_NSTATES; to++) {
			char wf[32], msg[64];
			wf_name(wf, sizeof wf, "u", r, to);
			uint64_t id = reach_unheld(e, lease, wf, (rest)r);
			tu_snap before;
			tu_snap_take(e, id, &before);
			snprintf(msg, sizeof msg, "user %s to %s",
			    tu_sname(from), tu_sname(to));
			tu_advance_ms(e, 1);
			int rv = tu_set_state(e, id, (cpl_state)to, msg);
			bool allowed = cpl_transition_allowed(from,
			    (cpl_state)to, CPL_BY_USER);
			if (!allowed) {
				if (to == CPL_STATE_NONE)
					SOFT(rv == CPL_EBADSTATE ||
					        rv == CPL_EINVAL,
					    "%s: got %s", msg, cpl_errname(rv));
				else if (to == CPL_USER_KILLED &&
				    cpl_state_is_final(from))
					// A kill of a final task does
					// nothing; whether set_state says so
					// with BADSTATE has its own test.
					SOFT(rv == CPL_EBADSTATE || rv == 0,
					    "%s: got %s", msg, cpl_errname(rv));
				else
					SOFT(rv == CPL_EBADSTATE,
					    "%s (refused by the table): got %s "
					    "(%s), expected BADSTATE",
					    msg, cpl_errname(rv),
					    cpl_strerror(rv));
				nbad += tu_snap_diff(e, id, &before, msg);
				continue;
			}
			SOFT(rv == 0, "%s (allowed by the table): %s (%s)", msg,
			    cpl_errname(rv), cpl_strerror(rv));
			if (rv != 0)
				continue;
			cpl_task t = tu_task_get(e, id);
			SOFT(t.lease == 0, "%s: now held", msg);
			TU_OK(tu_history(e, id, h));
			SOFT(h->n >= before.hist + 1, "%s: no event", msg);
			if (h->n < before.hist + 1)
				continue;
			const tu_ev *ev = &h->e[before.hist];
			SOFT(ev->ev.from == from && ev->ev.to == (cpl_state)to,
			    "%s: event says %s -> %s", msg,
			    tu_sname(ev->ev.from), tu_sname(ev->ev.to));
			SOFT(ev->ev.time_us == e->now_us, "%s: event time",
			    msg);
			SOFT(strcmp(ev->msg, msg) == 0, "%s: event message "
			    "\"%s\"", msg, ev->msg);
			if (r == REST_AWAITING && to == CPL_RESTART_READY) {
				// Its parent is unfinished: the broker sends
				// it back to wait, with an event of its own.
				SOFT(t.state == CPL_AWAITING_PARENTS,
				    "%s: task is %s", msg, tu_sname(t.state));
				SOFT(h->n == before.hist + 2 &&
				        h->e[h->n - 1].ev.from ==
				            CPL_RESTART_READY &&
				        h->e[h->n - 1].ev.to ==
				            CPL_AWAITING_PARENTS,
				    "%s: expected RESTART_READY -> "
				    "AWAITING_PARENTS to follow",
				    msg);
				SOFT(t.pending_parents == 1,
				    "%s: pending parents %u", msg,
				    t.pending_parents);
			} else if (r == REST_PARENT_KILLED &&
			    to == CPL_RESTART_READY) {
				// Its parent is dead: bookkeeping may
				// follow the restart.
				SOFT(t.state == CPL_RESTART_READY ||
				        t.state == CPL_AWAITING_PARENTS ||
				        t.state == CPL_PARENT_KILLED,
				    "%s: task is %s", msg, tu_sname(t.state));
			} else {
				SOFT(t.state == (cpl_state)to,
				    "%s: task is %s", msg, tu_sname(t.state));
				SOFT(h->n == before.hist + 1,
				    "%s: %zu events added, expected 1", msg,
				    h->n - before.hist);
			}
		}
		TU_COUNTS_CONSISTENT(e);
	}
	free(h);
	TU_ERR(tu_set_state(e, 424242, CPL_USER_KILLED, NULL), CPL_ENOTFOUND);
	TU_ERR(tu_set_state(e, 424242, CPL_RESTART_READY, NULL),
	    CPL_ENOTFOUND);
	if (nbad)
		TU_FAIL("%d problems in the user matrix (see above)", nbad);
}

// cpl_task_set_state(USER_KILLED) on a final task changes nothing, and
// says so: the table refuses FINAL -> USER_KILLED, and a refusal is
// CPL_EBADSTATE (store.h: refusals ... CPL_EBADSTATE; set_state is "a
// user's state change" checked against the table). Only cpl_task_kill is
// documented to skip final tasks silently ("unless it is already final").
static void
test_set_state_kill_final_refused(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, LONG_TTL);
	const rest finals[] = { REST_FINISHED, REST_FAILED, REST_USER_KILLED,
		REST_PARENT_KILLED };
	for (size_t i = 0; i < 4; i++) {
		char wf[32];
		wf_name(wf, sizeof wf, "kf", (int)finals[i], 0);
		uint64_t id = reach_unheld(e, lease, wf, finals[i]);
		tu_snap before;
		tu_snap_take(e, id, &before);
		TU_ERR(tu_set_state(e, id, CPL_USER_KILLED, "late kill"),
		    CPL_EBADSTATE);
		tu_snap_same(e, id, &before, "set_state USER_KILLED of final");
		// cpl_task_kill: no error, nothing killed.
		uint64_t killed = 99;
		TU_OK(tu_kill(e, id, &killed));
		assert_int_equal(killed, 0);
		tu_snap_same(e, id, &before, "kill of a final task");
	}
}

// Held tasks: a user change other than a kill is CPL_EBUSY (or refused by
// the table) and changes nothing.
static void
test_set_state_held_busy(void **state)
{
	tu_env *e = *state;
	const cpl_state held[] = { CPL_READY, CPL_RESTART_READY,
		CPL_STAGED_IN, CPL_PREPROCESSED, CPL_RUNNING, CPL_RUN_DONE,
		CPL_POSTPROCESSED, CPL_RUN_ERROR, CPL_RUN_TIMEOUT };
	uint64_t lease = tu_lease(e, LONG_TTL);
	for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
		char wf[32];
		wf_name(wf, sizeof wf, "h", held[i], 0);
		uint32_t att;
		uint64_t id = reach_held(e, lease, wf, held[i], &att);
		for (int to = 1; to < CPL_NSTATES; to++) {
			if (to == CPL_USER_KILLED)
				continue;
			tu_snap before;
			tu_snap_take(e, id, &before);
			char msg[64];
			snprintf(msg, sizeof msg, "user %s to %s (held)",
			    tu_sname(held[i]), tu_sname(to));
			int rv = tu_set_state(e, id, (cpl_state)to, msg);
			bool allowed = cpl_transition_allowed(held[i],
			    (cpl_state)to, CPL_BY_USER);
			if (allowed && rv != CPL_EBUSY)
				TU_FAIL("%s: got %s (%s), expected BUSY", msg,
				    cpl_errname(rv), cpl_strerror(rv));
			if (!allowed && rv != CPL_EBUSY && rv != CPL_EBADSTATE)
				TU_FAIL("%s: got %s (%s), expected BUSY or "
				        "BADSTATE",
				    msg, cpl_errname(rv), cpl_strerror(rv));
			tu_snap_same(e, id, &before, msg);
		}
		// The launcher can still go on with it.
		if (held[i] == CPL_RUNNING) {
			TU_OK(tu_report(e, id, lease, att, CPL_RUN_DONE));
			TU_STATE(e, id, CPL_RUN_DONE);
		}
	}
	TU_COUNTS_CONSISTENT(e);
}

// A user kill through cpl_task_set_state of an unheld task is the same as
// cpl_task_kill: descendants become PARENT_KILLED.
static void
test_set_state_kill_cascades(void **state)
{
	tu_env *e = *state;
	uint64_t a = tu_task(e, "a", "wf", 0);
	uint64_t b = tu_task(e, "b", "wf", 1, a);
	uint64_t c = tu_task(e, "c", "wf", 1, b);
	TU_OK(tu_set_state(e, a, CPL_USER_KILLED, "stop"));
	TU_STATE(e, a, CPL_USER_KILLED);
	TU_STATE(e, b, CPL_PARENT_KILLED);
	TU_STATE(e, c, CPL_PARENT_KILLED);
	assert_int_equal(tu_count(e, CPL_PARENT_KILLED), 2);
	assert_int_equal(tu_count(e, CPL_USER_KILLED), 1);
	TU_COUNTS_CONSISTENT(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_report_matrix, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_report_restart_ready_releases_lease, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_report_unheld_refused,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_report_bad_target,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_set_state_matrix,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_set_state_kill_final_refused, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_set_state_held_busy,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_set_state_kill_cascades,
		    tu_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
