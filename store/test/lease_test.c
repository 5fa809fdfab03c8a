// Leases and the retry policy: grant, renew, expiry with the fake clock
// (unstarted claims back to the queue, started tasks RUN_TIMEOUT then
// RESTART_READY or FAILED), release, kill notices, stale reports, and the
// RUN_ERROR / RUN_TIMEOUT / RESTART_READY policy of cpl_task_report.
#include "copal/testing/util.h"

#include <stdlib.h>
#include <string.h>

#define TTL (3600u * 1000u)

static uint64_t
task_policy(tu_env *e, const char *wf, bool auto_retry, bool err_handler,
    bool timeout_handler, uint32_t max_retries)
{
	tu_spec sp;
	tu_spec_init(&sp, "t", wf, "app");
	sp.spec.auto_timeout_retry = auto_retry;
	sp.spec.post_error_handler = err_handler;
	sp.spec.post_timeout_handler = timeout_handler;
	sp.spec.max_retries = max_retries;
	return tu_task_spec(e, &sp);
}

// The task's history must be exactly these transitions (from, to pairs)
// with these attempts.
static void
expect_history(tu_env *e, uint64_t id, const cpl_state (*tr)[2],
    const uint32_t *attempts, size_t n)
{
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	int bad = h->n != n;
	for (size_t i = 0; i < n && i < h->n; i++)
		if (h->e[i].ev.from != tr[i][0] || h->e[i].ev.to != tr[i][1] ||
		    h->e[i].ev.attempt != attempts[i])
			bad = 1;
	if (bad) {
		print_error("history of task %llu:\n", (unsigned long long)id);
		for (size_t i = 0; i < h->n; i++)
			print_error("  got  %s -> %s attempt %u \"%s\"\n",
			    tu_sname(h->e[i].ev.from), tu_sname(h->e[i].ev.to),
			    h->e[i].ev.attempt, h->e[i].msg);
		for (size_t i = 0; i < n; i++)
			print_error("  want %s -> %s attempt %u\n",
			    tu_sname(tr[i][0]), tu_sname(tr[i][1]),
			    attempts[i]);
		free(h);
		TU_FAIL("history of task %llu differs", (unsigned long long)id);
	}
	free(h);
}

// ------------------------------------------------------------ grant, renew

static void
test_lease_grant_get(void **state)
{
	tu_env *e = *state;
	uint64_t id = 0;
	TU_ERR(tu_grant(e, "x", 0, &id), CPL_EINVAL);
	uint64_t a, b;
	TU_OK(tu_grant(e, "host1 pid 7 job 99", 1500, &a));
	tu_advance_ms(e, 10);
	TU_OK(tu_grant(e, "host2", 2500, &b));
	assert_true(a != 0 && b > a);
	cpl_lease l;
	TU_OK(tu_lease_get(e, a, &l));
	TU_EQ_U64(l.id, a);
	TU_EQ_U64(l.deadline_us, TU_T0 + 1500 * 1000);
	assert_int_equal(l.ttl_ms, 1500);
	TU_EQ_U64(l.created_us, TU_T0);
	assert_int_equal(l.ntasks, 0);
	assert_string_equal(l.owner, "host1 pid 7 job 99");
	TU_OK(tu_lease_get(e, b, &l));
	TU_EQ_U64(l.deadline_us, TU_T0 + 10000 + 2500 * 1000);
	TU_EQ_U64(l.created_us, TU_T0 + 10000);
	// Lease ids are never reused.
	TU_OK(tu_release(e, b));
	uint64_t c;
	TU_OK(tu_grant(e, "host3", 1000, &c));
	assert_true(c > b);
	// A long owner is cut, NUL-terminated.
	char longname[400];
	memset(longname, 'o', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	uint64_t d;
	TU_OK(tu_grant(e, longname, 1000, &d));
	TU_OK(tu_lease_get(e, d, &l));
	assert_true(memchr(l.owner, '\0', sizeof l.owner) != NULL);
	assert_true(strlen(l.owner) > 0);
	assert_memory_equal(l.owner, longname, strlen(l.owner));
	TU_ERR(tu_lease_get(e, 777777, &l), CPL_ENOTFOUND);
	TU_ERR(tu_release(e, 777777), CPL_ENOTFOUND);
}

static void
test_lease_renew(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 1000);
	uint64_t t = tu_task(e, "t", "wf", 0);
	uint32_t a = tu_claim_task(e, lease, "wf", t);
	tu_run_to(e, t, lease, a, CPL_RUNNING);

	tu_advance_ms(e, 800);
	uint64_t dl = 0;
	TU_OK(tu_renew(e, lease, 0, &dl));
	TU_EQ_U64(dl, e->now_us + 1000 * 1000);
	cpl_lease l;
	TU_OK(tu_lease_get(e, lease, &l));
	TU_EQ_U64(l.deadline_us, dl);
	assert_int_equal(l.ttl_ms, 1000);
	// Past the old deadline, before the new one: nothing expires.
	tu_advance_ms(e, 800);
	uint64_t nl = 99, nt = 99;
	TU_OK(tu_expire(e, &nl, &nt));
	assert_int_equal(nl, 0);
	assert_int_equal(nt, 0);
	TU_STATE(e, t, CPL_RUNNING);
	TU_EQ_U64(tu_task_get(e, t).lease, lease);
	// A new ttl.
	TU_OK(tu_renew(e, lease, 5000, &dl));
	TU_EQ_U64(dl, e->now_us + 5000 * 1000);
	TU_OK(tu_lease_get(e, lease, &l));
	TU_EQ_U64(l.deadline_us, dl);
	assert_int_equal(l.ttl_ms, 5000);
	tu_advance_ms(e, 4000);
	TU_OK(tu_expire(e, &nl, &nt));
	assert_int_equal(nl, 0);
	// The task can still report.
	TU_OK(tu_report(e, t, lease, a, CPL_RUN_DONE));
	TU_ERR(tu_renew(e, 4242, 0, NULL), CPL_ENOTFOUND);
}

static void
test_lease_renew_expired(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 1000);
	tu_advance_ms(e, 1001);
	// Past its deadline, not yet swept.
	TU_ERR2(tu_renew(e, lease, 0, NULL), CPL_EEXPIRED, CPL_ENOTFOUND);
	uint64_t nl = 0;
	TU_OK(tu_expire(e, &nl, NULL));
	assert_int_equal(nl, 1);
	TU_ERR2(tu_renew(e, lease, 0, NULL), CPL_EEXPIRED, CPL_ENOTFOUND);
	TU_ERR2(tu_renew(e, lease, 5000, NULL), CPL_EEXPIRED, CPL_ENOTFOUND);
	// A second sweep finds nothing.
	TU_OK(tu_expire(e, &nl, NULL));
	assert_int_equal(nl, 0);
}

// A renewal that waited behind a busy writer is judged as of its arrival.
struct waited_arg {
	uint64_t lease, waited, deadline;
};

static int
renew_waited_cb(cpl_txn *txn, void *arg)
{
	struct waited_arg *a = arg;
	return cpl_lease_renew_waited(txn, a->lease, 0, a->waited,
	    &a->deadline);
}

static void
test_lease_renew_waited(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 1000);
	tu_advance_ms(e, 3000);
	// arrived 2.5 s ago, 0.5 s into its ttl: renewed from now
	struct waited_arg a = { lease, 2500000, 0 };
	TU_OK(cpl_store_write(e->s, renew_waited_cb, &a));
	assert_int_equal(a.deadline, TU_T0 + 4000000);
	tu_advance_ms(e, 3000);
	// arrived 1.5 s ago, 0.5 s after its deadline: expired
	a.waited = 1500000;
	TU_ERR(cpl_store_write(e->s, renew_waited_cb, &a), CPL_EEXPIRED);
}

// A report's touch renews a lease only once it has aged a third of its
// TTL, by its stored TTL, and never one past its deadline.
struct touch_arg {
	uint64_t lease, deadline;
};

static int
touch_cb(cpl_txn *txn, void *arg)
{
	struct touch_arg *a = arg;
	return cpl_lease_touch(txn, a->lease, &a->deadline);
}

static void
test_lease_touch(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 3000);
	struct touch_arg a = { lease, 0 };
	cpl_lease l;
	// fresh: left as it is
	tu_advance_ms(e, 500);
	TU_OK(cpl_store_write(e->s, touch_cb, &a));
	TU_EQ_U64(a.deadline, TU_T0 + 3000000);
	TU_OK(tu_lease_get(e, lease, &l));
	TU_EQ_U64(l.deadline_us, TU_T0 + 3000000);
	// a third of its TTL gone: renewed from now, with its TTL
	tu_advance_ms(e, 600);
	TU_OK(cpl_store_write(e->s, touch_cb, &a));
	TU_EQ_U64(a.deadline, e->now_us + 3000000);
	TU_OK(tu_lease_get(e, lease, &l));
	TU_EQ_U64(l.deadline_us, a.deadline);
	assert_int_equal(l.ttl_ms, 3000);
	// past its deadline: refused, nothing written, and the sweep ends it
	tu_advance_ms(e, 3001);
	uint64_t before = a.deadline;
	TU_ERR(cpl_store_write(e->s, touch_cb, &a), CPL_EEXPIRED);
	TU_EQ_U64(a.deadline, before);
	uint64_t nl = 0;
	TU_OK(tu_expire(e, &nl, NULL));
	assert_int_equal(nl, 1);
	TU_ERR(cpl_store_write(e->s, touch_cb, &a), CPL_ENOTFOUND);
}

// ------------------------------------------------------------ expiry

// Started tasks become RUN_TIMEOUT and the retry policy applies; the
// expired lease holds nothing any more.
static void
test_expire_started_tasks(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, 1000);
	uint64_t retry = task_policy(e, "w1", true, false, false, 3);
	uint64_t noretry = task_policy(e, "w2", false, false, false, 3);
	uint64_t staged = task_policy(e, "w3", true, false, false, 3);
	uint64_t exhausted = task_policy(e, "w4", true, false, false, 0);
	uint32_t a1 = tu_claim_task(e, lease, "w1", retry);
	uint32_t a2 = tu_claim_task(e, lease, "w2", noretry);
	uint32_t a3 = tu_claim_task(e, lease, "w3", staged);
	uint32_t a4 = tu_claim_task(e, lease, "w4", exhausted);
	tu_run_to(e, retry, lease, a1, CPL_RUNNING);
	tu_run_to(e, noretry, lease, a2, CPL_RUNNING);
	tu_run_to(e, staged, lease, a3, CPL_STAGED_IN);
	tu_run_to(e, exhausted, lease, a4, CPL_RUNNING);

	uint64_t nl = 99, nt = 99;
	tu_advance_ms(e, 999);
	TU_OK(tu_expire(e, &nl, &nt));
	assert_int_equal(nl, 0);
	assert_int_equal(nt, 0);
	TU_STATE(e, retry, CPL_RUNNING);

	tu_advance_ms(e, 2);
	TU_OK(tu_expire(e, &nl, &nt));
	assert_int_equal(nl, 1);
	assert_int_equal(nt, 4);

	// With auto_timeout_retry and attempts left: RESTART_READY.
	const cpl_state h_retry[][2] = { { CPL_CREATED, CPL_READY },
		{ CPL_READY, CPL_STAGED_IN }, { CPL_STAGED_IN, CPL_PREPROCESSED },
		{ CPL_PREPROCESSED, CPL_RUNNING },
		{ CPL_RUNNING, CPL_RUN_TIMEOUT },
		{ CPL_RUN_TIMEOUT, CPL_RESTART_READY } };
	const uint32_t at_retry[] = { 0, 1, 1, 1, 1, 1 };
	expect_history(e, retry, h_retry, at_retry, 6);
	const cpl_state h_staged[][2] = { { CPL_CREATED, CPL_READY },
		{ CPL_READY, CPL_STAGED_IN }, { CPL_STAGED_IN, CPL_RUN_TIMEOUT },
		{ CPL_RUN_TIMEOUT, CPL_RESTART_READY } };
	const uint32_t at_staged[] = { 0, 1, 1, 1 };
	expect_history(e, staged, h_staged, at_staged, 4);
	// Without auto_timeout_retry: FAILED.
	const cpl_state h_noretry[][2] = { { CPL_CREATED, CPL_READY },
		{ CPL_READY, CPL_STAGED_IN }, { CPL_STAGED_IN, CPL_PREPROCESSED },
		{ CPL_PREPROCESSED, CPL_RUNNING },
		{ CPL_RUNNING, CPL_RUN_TIMEOUT },
		{ CPL_RUN_TIMEOUT, CPL_FAILED } };
	expect_history(e, noretry, h_noretry, at_retry, 6);
	// max_retries 0: no retry left, FAILED (possibly through
	// RESTART_READY).
	TU_STATE(e, exhausted, CPL_FAILED);
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, exhausted, h));
	assert_true(h->n >= 6);
	TU_EQ_STATE(h->e[4].ev.from, CPL_RUNNING);
	TU_EQ_STATE(h->e[4].ev.to, CPL_RUN_TIMEOUT);
	TU_EQ_STATE(h->e[h->n - 1].ev.to, CPL_FAILED);
	free(h);

	// Nothing is held by the dead lease any more.
	const uint64_t all[] = { retry, noretry, staged, exhausted };
	for (size_t i = 0; i < 4; i++) {
		cpl_task t = tu_task_get(e, all[i]);
		if (t.lease != 0)
			TU_FAIL("task %llu (%s) still held by expired lease "
			        "%llu",
			    (unsigned long long)all[i], tu_sname(t.state),
			    (unsigned long long)t.lease);
	}
	assert_int_equal(tu_count(e, CPL_RESTART_READY), 2);
	assert_int_equal(tu_count(e, CPL_FAILED), 2);
	TU_COUNTS_CONSISTENT(e);
	TU_CHECK(e);
}

// The retried tasks are claimable again by a new lease, attempt 2.
static void
test_expire_then_reclaim(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, 1000);
	uint64_t id = task_policy(e, "w", true, false, false, 3);
	uint32_t a = tu_claim_task(e, l1, "w", id);
	assert_int_equal(a, 1);
	tu_run_to(e, id, l1, a, CPL_RUNNING);
	tu_advance_ms(e, 2000);
	TU_OK(tu_expire(e, NULL, NULL));
	TU_STATE(e, id, CPL_RESTART_READY);
	uint64_t l2 = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, l2, 10, cl));
	if (cl->n != 1)
		TU_FAIL("RESTART_READY task after expiry: claim gave %zu "
		        "tasks, expected 1 (task lease %llu)",
		    cl->n, (unsigned long long)tu_task_get(e, id).lease);
	assert_int_equal(cl->id[0], id);
	assert_int_equal(cl->attempt[0], 2);
	free(cl);
}

// max_retries 2: attempts 1 and 2 time out and are retried, attempt 3
// times out and fails.
static void
test_expire_retry_until_exhausted(void **state)
{
	tu_env *e = *state;
	uint64_t id = task_policy(e, "w", true, false, false, 2);
	for (uint32_t round = 1; round <= 3; round++) {
		uint64_t lease = tu_lease(e, 1000);
		uint32_t a = tu_claim_task(e, lease, "w", id);
		assert_int_equal(a, round);
		tu_run_to(e, id, lease, a, CPL_RUNNING);
		tu_advance_ms(e, 1500);
		TU_OK(tu_expire(e, NULL, NULL));
		cpl_task t = tu_task_get(e, id);
		TU_EQ_STATE(t.state, round < 3 ? CPL_RESTART_READY : CPL_FAILED);
		TU_EQ_U64(t.lease, 0);
		assert_int_equal(t.attempt, round);
	}
	// Every RUN_TIMEOUT event carries its attempt.
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	uint32_t seen = 0;
	for (size_t i = 0; i < h->n; i++)
		if (h->e[i].ev.to == CPL_RUN_TIMEOUT)
			assert_int_equal(h->e[i].ev.attempt, ++seen);
	assert_int_equal(seen, 3);
	TU_EQ_STATE(h->e[h->n - 1].ev.to, CPL_FAILED);
	free(h);
}

// Claimed but not started: back to the run queue, READY, claimable.
static void
test_expire_unstarted_back_to_queue(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, 1000);
	uint64_t id = tu_task(e, "t", "w", 0);
	uint64_t id2 = tu_task(e, "t2", "w2", 0);
	tu_claim_task(e, l1, "w", id);
	tu_claim_task(e, l1, "w2", id2);
	size_t h0 = tu_history_len(e, id);
	tu_advance_ms(e, 1001);
	uint64_t nl = 0, nt = 0;
	TU_OK(tu_expire(e, &nl, &nt));
	assert_int_equal(nl, 1);
	assert_int_equal(nt, 2);
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_READY);
	TU_EQ_U64(t.lease, 0);
	// No state change, but one event: the returned claim (issue 13:
	// its launcher may have started it with the report lost).
	assert_int_equal(tu_history_len(e, id), h0 + 1);
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	TU_EQ_STATE(h->e[h->n - 1].ev.from, CPL_READY);
	TU_EQ_STATE(h->e[h->n - 1].ev.to, CPL_READY);
	assert_int_equal(h->e[h->n - 1].ev.attempt, 1);
	assert_string_equal(h->e[h->n - 1].msg,
	    "returned: lease expired, attempt 1");
	free(h);
	assert_int_equal(tu_count(e, CPL_READY), 2);
	uint64_t l2 = tu_lease(e, TTL);
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, l2, 10, cl));
	assert_int_equal(cl->n, 2);
	assert_int_equal(cl->id[0], id);
	assert_int_equal(cl->id[1], id2);
	TU_EQ_U64(tu_task_get(e, id).lease, l2);
	free(cl);
	TU_COUNTS_CONSISTENT(e);
}

// store.h: a claim whose lease ends before the task was reported started
// is given back and counts as an attempt (issue 13: its launcher may have
// started it, its report lost), so the next run is another attempt. A
// stale report from the first claim is still refused: its lease is gone.
static void
test_expire_unstarted_attempt_counted(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, 1000);
	uint64_t id = tu_task(e, "t", "w", 0);
	uint32_t a = tu_claim_task(e, l1, "w", id);
	assert_int_equal(a, 1);
	tu_advance_ms(e, 1001);
	TU_OK(tu_expire(e, NULL, NULL));
	assert_int_equal(tu_task_get(e, id).attempt, 1);
	uint64_t l2 = tu_lease(e, TTL);
	a = tu_claim_task(e, l2, "w", id);
	assert_int_equal(a, 2);
	assert_int_equal(tu_task_get(e, id).attempt, 2);
	assert_int_equal(tu_task_get(e, id).lease, l2);
}

// cpl_lease_release ends a lease at once, as if it expired.
static void
test_lease_release(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, TTL);
	uint64_t unstarted = tu_task(e, "u", "w1", 0);
	uint64_t running = task_policy(e, "w2", false, false, false, 0);
	tu_claim_task(e, l1, "w1", unstarted);
	uint32_t a = tu_claim_task(e, l1, "w2", running);
	tu_run_to(e, running, l1, a, CPL_RUNNING);
	TU_OK(tu_release(e, l1));
	cpl_task t = tu_task_get(e, unstarted);
	TU_EQ_STATE(t.state, CPL_READY);
	TU_EQ_U64(t.lease, 0);
	t = tu_task_get(e, running);
	TU_EQ_STATE(t.state, CPL_FAILED);
	TU_EQ_U64(t.lease, 0);
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, running, h));
	TU_EQ_STATE(h->e[h->n - 2].ev.to, CPL_RUN_TIMEOUT);
	free(h);
	TU_ERR2(tu_renew(e, l1, 0, NULL), CPL_EEXPIRED, CPL_ENOTFOUND);
	TU_ERR2(tu_release(e, l1), CPL_ENOTFOUND, CPL_EEXPIRED);
	TU_COUNTS_CONSISTENT(e);
}

// ------------------------------------------------------------ kills

static void
test_kill_held_notice(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, TTL);
	uint64_t l2 = tu_lease(e, TTL);
	uint64_t run = tu_task(e, "run", "w1", 0);
	uint64_t claimed = tu_task(e, "claimed", "w2", 0);
	uint64_t other = tu_task(e, "other", "w3", 0);
	uint64_t free_t = tu_task(e, "free", "w4", 0);
	uint32_t a = tu_claim_task(e, l1, "w1", run);
	tu_run_to(e, run, l1, a, CPL_RUNNING);
	tu_claim_task(e, l1, "w2", claimed);
	uint32_t ao = tu_claim_task(e, l2, "w3", other);
	cpl_lease l;
	TU_OK(tu_lease_get(e, l1, &l));
	assert_int_equal(l.ntasks, 2);

	uint64_t killed = 0;
	TU_OK(tu_kill(e, run, &killed));
	assert_int_equal(killed, 1);
	TU_OK(tu_kill(e, claimed, &killed));
	assert_int_equal(killed, 1);
	TU_OK(tu_kill(e, free_t, &killed));
	assert_int_equal(killed, 1);
	cpl_task t = tu_task_get(e, run);
	TU_EQ_STATE(t.state, CPL_USER_KILLED);
	TU_EQ_U64(t.lease, 0);
	TU_OK(tu_lease_get(e, l1, &l));
	assert_int_equal(l.ntasks, 0);

	tu_ids n;
	TU_OK(tu_notices(e, l1, &n));
	assert_int_equal(n.n, 2);
	assert_true(tu_ids_has(&n, run));
	assert_true(tu_ids_has(&n, claimed));
	// Taken means removed.
	TU_OK(tu_notices(e, l1, &n));
	assert_int_equal(n.n, 0);
	// Nothing for the other lease, whose task lives on.
	TU_OK(tu_notices(e, l2, &n));
	assert_int_equal(n.n, 0);
	TU_OK(tu_report(e, other, l2, ao, CPL_STAGED_IN));
	// The killed task's launcher reports late: refused, no change.
	tu_snap before;
	tu_snap_take(e, run, &before);
	TU_REFUSED(tu_report(e, run, l1, a, CPL_RUN_DONE));
	TU_REFUSED(tu_report(e, run, l1, a, CPL_JOB_FINISHED));
	tu_snap_same(e, run, &before, "report after kill");
	// The killed task is not claimable.
	tu_claimed *cl = calloc(1, sizeof *cl);
	TU_OK(tu_claim_n(e, l1, 10, cl));
	assert_int_equal(cl->n, 0);
	free(cl);
	TU_COUNTS_CONSISTENT(e);
}

// ------------------------------------------------------------ stale

static void
test_stale_wrong_lease(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, TTL);
	uint64_t l2 = tu_lease(e, TTL);
	uint64_t id = tu_task(e, "t", "w", 0);
	uint32_t a = tu_claim_task(e, l1, "w", id);
	tu_run_to(e, id, l1, a, CPL_RUNNING);
	tu_snap before;
	tu_snap_take(e, id, &before);
	TU_ERR(tu_report(e, id, l2, a, CPL_RUN_DONE), CPL_ESTALE);
	TU_ERR(tu_report(e, id, 0, a, CPL_RUN_DONE), CPL_ESTALE);
	TU_ERR(tu_report(e, id, 999, a, CPL_RUN_DONE), CPL_ESTALE);
	tu_snap_same(e, id, &before, "report under another lease");
	TU_OK(tu_report(e, id, l1, a, CPL_RUN_DONE));
}

static void
test_stale_old_attempt(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, TTL);
	uint64_t id = tu_task(e, "t", "w", 0);
	uint32_t a1 = tu_claim_task(e, l1, "w", id);
	tu_run_to(e, id, l1, a1, CPL_RUNNING);
	TU_OK(tu_report(e, id, l1, a1, CPL_FAILED));
	TU_OK(tu_set_state(e, id, CPL_RESTART_READY, "again"));
	// Same lease claims it again: attempt 2.
	uint32_t a2 = tu_claim_task(e, l1, "w", id);
	assert_int_equal(a2, a1 + 1);
	tu_snap before;
	tu_snap_take(e, id, &before);
	TU_ERR(tu_report(e, id, l1, a1, CPL_RUNNING), CPL_ESTALE);
	TU_ERR(tu_report(e, id, l1, a2 + 1, CPL_RUNNING), CPL_ESTALE);
	TU_ERR(tu_report(e, id, l1, 0, CPL_RUNNING), CPL_ESTALE);
	tu_snap_same(e, id, &before, "report for another attempt");
	TU_OK(tu_report(e, id, l1, a2, CPL_RUNNING));
	TU_STATE(e, id, CPL_RUNNING);
}

static void
test_stale_after_expiry(void **state)
{
	tu_env *e = *state;
	uint64_t l1 = tu_lease(e, 1000);
	uint64_t id = task_policy(e, "w", false, false, false, 0);
	uint64_t id2 = tu_task(e, "t2", "w2", 0);
	uint32_t a = tu_claim_task(e, l1, "w", id);
	uint32_t a2 = tu_claim_task(e, l1, "w2", id2);
	tu_run_to(e, id, l1, a, CPL_RUNNING);
	tu_advance_ms(e, 1500);
	TU_OK(tu_expire(e, NULL, NULL));
	TU_STATE(e, id, CPL_FAILED);
	tu_snap before;
	tu_snap_take(e, id, &before);
	TU_REFUSED(tu_report(e, id, l1, a, CPL_RUN_DONE));
	TU_REFUSED(tu_report(e, id, l1, a, CPL_JOB_FINISHED));
	tu_snap_same(e, id, &before, "report after expiry (started)");
	// The unstarted one went back to the queue; its old launcher's
	// report is stale, before and after another lease claims it.
	tu_snap_take(e, id2, &before);
	TU_ERR(tu_report(e, id2, l1, a2, CPL_STAGED_IN), CPL_ESTALE);
	tu_snap_same(e, id2, &before, "report after expiry (unstarted)");
	uint64_t l2 = tu_lease(e, TTL);
	uint32_t b2 = tu_claim_task(e, l2, "w2", id2);
	tu_snap_take(e, id2, &before);
	TU_ERR(tu_report(e, id2, l1, a2, CPL_STAGED_IN), CPL_ESTALE);
	tu_snap_same(e, id2, &before, "old lease after reclaim");
	TU_OK(tu_report(e, id2, l2, b2, CPL_STAGED_IN));
}

// ------------------------------------------------------------ policy

static void
test_run_error_without_handler_fails(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t id = task_policy(e, "w", true, false, false, 5);
	uint32_t a = tu_claim_task(e, lease, "w", id);
	tu_run_to(e, id, lease, a, CPL_RUNNING);
	TU_OK(tu_report_full(e, id, lease, a, CPL_RUN_ERROR, 17, "segfault"));
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_FAILED);
	TU_EQ_U64(t.lease, 0);
	assert_int_equal(t.return_code, 17);
	const cpl_state tr[][2] = { { CPL_CREATED, CPL_READY },
		{ CPL_READY, CPL_STAGED_IN }, { CPL_STAGED_IN, CPL_PREPROCESSED },
		{ CPL_PREPROCESSED, CPL_RUNNING }, { CPL_RUNNING, CPL_RUN_ERROR },
		{ CPL_RUN_ERROR, CPL_FAILED } };
	const uint32_t at[] = { 0, 1, 1, 1, 1, 1 };
	expect_history(e, id, tr, at, 6);
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_string_equal(h->e[4].msg, "segfault");
	assert_int_equal(h->e[4].ev.return_code, 17);
	free(h);
	cpl_lease l;
	TU_OK(tu_lease_get(e, lease, &l));
	assert_int_equal(l.ntasks, 0);
	assert_int_equal(tu_count(e, CPL_FAILED), 1);
	assert_int_equal(tu_count(e, CPL_RUN_ERROR), 0);
}

static void
test_run_error_with_handler(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t id = task_policy(e, "w", false, true, false, 5);
	uint32_t a = tu_claim_task(e, lease, "w", id);
	tu_run_to(e, id, lease, a, CPL_RUNNING);
	TU_OK(tu_report(e, id, lease, a, CPL_RUN_ERROR));
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_RUN_ERROR);
	TU_EQ_U64(t.lease, lease); // the launcher runs the handler
	// The handler decides to retry.
	TU_OK(tu_report(e, id, lease, a, CPL_RESTART_READY));
	t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_RESTART_READY);
	if (t.lease != 0)
		TU_FAIL("RESTART_READY reported by the launcher: still held by "
		        "lease %llu; store.h promises the lease is released",
		    (unsigned long long)t.lease);
	uint32_t a2 = tu_claim_task(e, lease, "w", id);
	assert_int_equal(a2, 2);
}

// max_retries 0 with an error handler: the handler's RESTART_READY is
// beyond max_retries -> FAILED.
static void
test_restart_beyond_max_retries_fails(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t id = task_policy(e, "w", false, true, false, 0);
	uint32_t a = tu_claim_task(e, lease, "w", id);
	tu_run_to(e, id, lease, a, CPL_RUNNING);
	TU_OK(tu_report(e, id, lease, a, CPL_RUN_ERROR));
	TU_OK(tu_report(e, id, lease, a, CPL_RESTART_READY));
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_FAILED);
	TU_EQ_U64(t.lease, 0);
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_true(h->n >= 2);
	TU_EQ_STATE(h->e[h->n - 2].ev.from, CPL_RUN_ERROR);
	TU_EQ_STATE(h->e[h->n - 2].ev.to, CPL_RESTART_READY);
	TU_EQ_STATE(h->e[h->n - 1].ev.from, CPL_RESTART_READY);
	TU_EQ_STATE(h->e[h->n - 1].ev.to, CPL_FAILED);
	free(h);
	assert_int_equal(tu_count(e, CPL_RESTART_READY), 0);
	TU_COUNTS_CONSISTENT(e);
}

// max_retries 1: the first restart is allowed, the second is not.
static void
test_restart_max_retries_sequence(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t id = task_policy(e, "w", false, true, false, 1);
	uint32_t a = tu_claim_task(e, lease, "w", id);
	tu_run_to(e, id, lease, a, CPL_RUNNING);
	TU_OK(tu_report(e, id, lease, a, CPL_RUN_ERROR));
	TU_OK(tu_report(e, id, lease, a, CPL_RESTART_READY));
	TU_STATE(e, id, CPL_RESTART_READY);
	a = tu_claim_task(e, lease, "w", id);
	assert_int_equal(a, 2);
	TU_OK(tu_report(e, id, lease, a, CPL_RUNNING));
	TU_OK(tu_report(e, id, lease, a, CPL_RUN_ERROR));
	TU_OK(tu_report(e, id, lease, a, CPL_RESTART_READY));
	cpl_task t = tu_task_get(e, id);
	TU_EQ_STATE(t.state, CPL_FAILED);
	TU_EQ_U64(t.lease, 0);
	assert_int_equal(t.attempt, 2);
}

static void
test_run_timeout_reported(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	// No handler, auto retry: RESTART_READY, released, claimable.
	uint64_t r = task_policy(e, "w1", true, false, false, 3);
	// No handler, no auto retry: FAILED.
	uint64_t f = task_policy(e, "w2", false, false, false, 3);
	// Handler: stays RUN_TIMEOUT, held, until the launcher decides.
	uint64_t h = task_policy(e, "w3", true, false, true, 3);
	uint32_t ar = tu_claim_task(e, lease, "w1", r);
	uint32_t af = tu_claim_task(e, lease, "w2", f);
	uint32_t ah = tu_claim_task(e, lease, "w3", h);
	tu_run_to(e, r, lease, ar, CPL_RUNNING);
	tu_run_to(e, f, lease, af, CPL_RUNNING);
	tu_run_to(e, h, lease, ah, CPL_RUNNING);
	TU_OK(tu_report(e, r, lease, ar, CPL_RUN_TIMEOUT));
	TU_OK(tu_report(e, f, lease, af, CPL_RUN_TIMEOUT));
	TU_OK(tu_report(e, h, lease, ah, CPL_RUN_TIMEOUT));

	cpl_task t = tu_task_get(e, f);
	TU_EQ_STATE(t.state, CPL_FAILED);
	TU_EQ_U64(t.lease, 0);
	t = tu_task_get(e, h);
	TU_EQ_STATE(t.state, CPL_RUN_TIMEOUT);
	TU_EQ_U64(t.lease, lease);
	TU_OK(tu_report(e, h, lease, ah, CPL_FAILED));
	t = tu_task_get(e, h);
	TU_EQ_STATE(t.state, CPL_FAILED);
	TU_EQ_U64(t.lease, 0);

	t = tu_task_get(e, r);
	TU_EQ_STATE(t.state, CPL_RESTART_READY);
	if (t.lease != 0)
		TU_FAIL("RUN_TIMEOUT -> RESTART_READY by policy: still held by "
		        "lease %llu; store.h promises the lease is released",
		    (unsigned long long)t.lease);
	uint32_t a2 = tu_claim_task(e, lease, "w1", r);
	assert_int_equal(a2, 2);
	TU_COUNTS_CONSISTENT(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lease_touch, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_lease_grant_get, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_lease_renew, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_lease_renew_waited,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_lease_renew_expired,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_expire_started_tasks,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_expire_then_reclaim,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_expire_retry_until_exhausted, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_expire_unstarted_back_to_queue, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_expire_unstarted_attempt_counted, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_lease_release, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_kill_held_notice, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_stale_wrong_lease,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stale_old_attempt,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stale_after_expiry,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_run_error_without_handler_fails, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_run_error_with_handler,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_restart_beyond_max_retries_fails, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(
		    test_restart_max_retries_sequence, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_run_timeout_reported,
		    tu_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
