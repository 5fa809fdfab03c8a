// History: one event per transition with from, to, time, attempt, lease,
// return code and message; per-task history in order; the global log
// (cpl_history_scan) complete, in increasing seq, pageable; seek by time;
// history kept after delete; broker time monotonic.
#include "copal/testing/util.h"

#include <stdlib.h>
#include <string.h>

#define TTL (3600u * 1000u)

typedef struct seqs {
	size_t n, cap;
	uint64_t *seq;
	uint64_t *task;
	uint64_t *time;
	int nonincreasing;
} seqs;

static int
seqs_cb(const cpl_event *ev, void *arg)
{
	seqs *s = arg;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint64_t *a = realloc(s->seq, cap * sizeof *a);
		uint64_t *b = realloc(s->task, cap * sizeof *b);
		uint64_t *c = realloc(s->time, cap * sizeof *c);
		if (a)
			s->seq = a;
		if (b)
			s->task = b;
		if (c)
			s->time = c;
		if (!a || !b || !c)
			return CPL_ENOMEM;
		s->cap = cap;
	}
	if (s->n > 0 && ev->seq <= s->seq[s->n - 1])
		s->nonincreasing = 1;
	s->seq[s->n] = ev->seq;
	s->task[s->n] = ev->task_id;
	s->time[s->n] = ev->time_us;
	s->n++;
	return 0;
}

static void
seqs_free(seqs *s)
{
	free(s->seq);
	free(s->task);
	free(s->time);
	memset(s, 0, sizeof *s);
}

typedef struct scan_arg {
	uint64_t after;
	size_t limit;
	seqs *out;
} scan_arg;

static int
scan_cb(cpl_txn *txn, void *arg)
{
	scan_arg *a = arg;
	a->out->n = 0;
	a->out->nonincreasing = 0;
	return cpl_history_scan(txn, a->after, a->limit, seqs_cb, a->out);
}

static int
scan(tu_env *e, uint64_t after, size_t limit, seqs *out)
{
	scan_arg a = { after, limit, out };
	return cpl_store_read(e->s, scan_cb, &a);
}

typedef struct seek_arg {
	uint64_t time, seq;
} seek_arg;

static int
seek_cb(cpl_txn *txn, void *arg)
{
	seek_arg *a = arg;
	a->seq = 0;
	return cpl_history_seek_time(txn, a->time, &a->seq);
}

static uint64_t
seek(tu_env *e, uint64_t time)
{
	seek_arg a = { time, 0 };
	TU_OK(cpl_store_read(e->s, seek_cb, &a));
	return a.seq;
}

// ------------------------------------------------------------ tests

static void
test_history_lifecycle(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t id = tu_task(e, "t", "w", 0);
	uint64_t t_create = e->now_us;
	tu_advance_ms(e, 10);
	uint32_t a = tu_claim_task(e, lease, "w", id);
	static const struct {
		cpl_state to;
		int32_t rc;
		const char *msg;
	} steps[] = {
		{ CPL_STAGED_IN, 0, "staged 3 files" },
		{ CPL_PREPROCESSED, 0, NULL },
		{ CPL_RUNNING, 0, "pid 4242 on nid0001" },
		{ CPL_RUN_DONE, 0, "exit 0" },
		{ CPL_POSTPROCESSED, 5, "post returned 5" },
		{ CPL_JOB_FINISHED, 0, "" },
	};
	uint64_t times[6];
	for (size_t i = 0; i < 6; i++) {
		tu_advance_ms(e, 7 + i);
		times[i] = e->now_us;
		TU_OK(tu_report_full(e, id, lease, a, steps[i].to, steps[i].rc,
		    steps[i].msg));
	}
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_int_equal(h->n, 7);
	TU_EQ_STATE(h->e[0].ev.from, CPL_CREATED);
	TU_EQ_STATE(h->e[0].ev.to, CPL_READY);
	TU_EQ_U64(h->e[0].ev.time_us, t_create);
	assert_int_equal(h->e[0].ev.attempt, 0);
	TU_EQ_U64(h->e[0].ev.lease, 0);
	cpl_state prev = CPL_READY;
	for (size_t i = 0; i < 6; i++) {
		const tu_ev *ev = &h->e[i + 1];
		TU_EQ_U64(ev->ev.task_id, id);
		TU_EQ_STATE(ev->ev.from, prev);
		TU_EQ_STATE(ev->ev.to, steps[i].to);
		TU_EQ_U64(ev->ev.time_us, times[i]);
		assert_int_equal(ev->ev.attempt, a);
		TU_EQ_U64(ev->ev.lease, lease);
		assert_int_equal(ev->ev.return_code, steps[i].rc);
		assert_string_equal(ev->msg,
		    steps[i].msg ? steps[i].msg : "");
		assert_true(ev->ev.seq > h->e[i].ev.seq);
		prev = steps[i].to;
	}
	cpl_task t = tu_task_get(e, id);
	TU_EQ_U64(t.created_us, t_create);
	TU_EQ_U64(t.changed_us, times[5]);
	free(h);
	TU_ERR2(tu_history(e, 98765, h = calloc(1, sizeof *h)), 0,
	    CPL_ENOTFOUND);
	assert_int_equal(h->n, 0);
	free(h);
}

// A long message is kept (at least its start), NUL-terminated.
static void
test_history_long_message(void **state)
{
	tu_env *e = *state;
	uint64_t id = tu_task(e, "t", "w", 0);
	char *msg = malloc(4001);
	for (int i = 0; i < 4000; i++)
		msg[i] = (char)('a' + i % 26);
	msg[4000] = '\0';
	TU_OK(tu_set_state(e, id, CPL_USER_KILLED, msg));
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_int_equal(h->n, 2);
	// tu_ev keeps the first 159 characters.
	assert_int_equal(strncmp(h->e[1].msg, msg, sizeof h->e[1].msg - 1), 0);
	free(h);
	free(msg);
}

// Interleaved tasks: the global log holds every event once, in increasing
// seq, and equals the union of the per-task histories.
static void
test_history_scan_complete(void **state)
{
	tu_env *e = *state;
	enum { N = 30 };
	uint64_t lease = tu_lease(e, TTL);
	uint64_t ids[N];
	for (int i = 0; i < N; i++) {
		ids[i] = tu_task(e, "t", "w", i > 0 ? 1 : 0,
		    i > 0 ? ids[(i - 1) / 2] : 0);
		tu_advance_ms(e, 1);
	}
	tu_claimed *cl = calloc(1, sizeof *cl);
	uint64_t seed = 12345;
	for (int round = 0; round < 20; round++) {
		TU_OK(tu_claim_n(e, lease, 8, cl));
		for (size_t i = 0; i < cl->n; i++) {
			tu_advance_ms(e, 1);
			if (tu_rand(&seed) % 5 == 0)
				TU_OK(tu_report(e, cl->id[i], lease,
				    cl->attempt[i], CPL_FAILED));
			else
				tu_run_to(e, cl->id[i], lease, cl->attempt[i],
				    CPL_JOB_FINISHED);
		}
		if (cl->n == 0)
			break;
	}
	free(cl);

	seqs all = { 0 };
	TU_OK(scan(e, 0, 0, &all));
	assert_false(all.nonincreasing);
	cpl_store_stats st = tu_stats(e);
	TU_EQ_U64(all.n, st.nevents);
	// Times never go down along the log.
	for (size_t i = 1; i < all.n; i++)
		assert_true(all.time[i] >= all.time[i - 1]);
	// Union of per-task histories.
	size_t total = 0;
	tu_evs *h = calloc(1, sizeof *h);
	for (int i = 0; i < N; i++) {
		TU_OK(tu_history(e, ids[i], h));
		assert_true(h->n >= 2);
		total += h->n;
		for (size_t k = 0; k < h->n; k++) {
			if (k > 0)
				assert_true(h->e[k].ev.seq > h->e[k - 1].ev.seq);
			// Find it in the log.
			size_t lo = 0, hi = all.n;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (all.seq[mid] < h->e[k].ev.seq)
					lo = mid + 1;
				else
					hi = mid;
			}
			assert_true(lo < all.n);
			TU_EQ_U64(all.seq[lo], h->e[k].ev.seq);
			TU_EQ_U64(all.task[lo], ids[i]);
		}
	}
	TU_EQ_U64(total, all.n);
	free(h);

	// Paging: pages of 7 after the last seq seen give the same log.
	seqs page = { 0 };
	size_t k = 0;
	uint64_t after = 0;
	for (;;) {
		TU_OK(scan(e, after, 7, &page));
		assert_true(page.n <= 7);
		if (page.n == 0)
			break;
		for (size_t i = 0; i < page.n; i++, k++) {
			assert_true(k < all.n);
			TU_EQ_U64(page.seq[i], all.seq[k]);
		}
		after = page.seq[page.n - 1];
	}
	TU_EQ_U64(k, all.n);
	// From the middle.
	TU_OK(scan(e, all.seq[10], 0, &page));
	TU_EQ_U64(page.n, all.n - 11);
	TU_EQ_U64(page.seq[0], all.seq[11]);
	// Past the end.
	TU_OK(scan(e, all.seq[all.n - 1], 0, &page));
	assert_int_equal(page.n, 0);
	seqs_free(&page);
	seqs_free(&all);
}

static void
test_history_seek_time(void **state)
{
	tu_env *e = *state;
	// Events at T0, T0+10ms (two), T0+30ms, T0+31ms.
	uint64_t a = tu_task(e, "a", "w", 0);
	tu_advance_ms(e, 10);
	uint64_t b = tu_task(e, "b", "w", 0);
	TU_OK(tu_note(e, a, "same time"));
	tu_advance_ms(e, 20);
	TU_OK(tu_kill(e, b, NULL));
	tu_advance_ms(e, 1);
	TU_OK(tu_note(e, b, "last"));
	seqs all = { 0 };
	TU_OK(scan(e, 0, 0, &all));
	assert_int_equal(all.n, 5);
	TU_EQ_U64(all.time[0], TU_T0);
	TU_EQ_U64(all.time[1], TU_T0 + 10000);
	TU_EQ_U64(all.time[2], TU_T0 + 10000);
	TU_EQ_U64(all.time[3], TU_T0 + 30000);
	TU_EQ_U64(all.time[4], TU_T0 + 31000);
	TU_EQ_U64(seek(e, 0), all.seq[0]);
	TU_EQ_U64(seek(e, TU_T0 - 1), all.seq[0]);
	TU_EQ_U64(seek(e, TU_T0), all.seq[0]);
	TU_EQ_U64(seek(e, TU_T0 + 1), all.seq[1]);
	TU_EQ_U64(seek(e, TU_T0 + 10000), all.seq[1]); // first of equal times
	TU_EQ_U64(seek(e, TU_T0 + 10001), all.seq[3]);
	TU_EQ_U64(seek(e, TU_T0 + 29999), all.seq[3]);
	TU_EQ_U64(seek(e, TU_T0 + 30000), all.seq[3]);
	TU_EQ_U64(seek(e, TU_T0 + 30500), all.seq[4]);
	TU_EQ_U64(seek(e, TU_T0 + 31000), all.seq[4]);
	// One past the last if none.
	TU_EQ_U64(seek(e, TU_T0 + 31001), all.seq[4] + 1);
	TU_EQ_U64(seek(e, UINT64_MAX), all.seq[4] + 1);
	// Scanning from seek-1 gives the events at or after the time.
	seqs tail = { 0 };
	TU_OK(scan(e, seek(e, TU_T0 + 10000) - 1, 0, &tail));
	assert_int_equal(tail.n, 4);
	seqs_free(&tail);
	seqs_free(&all);
}

// Many events: the binary search agrees with a linear one.
static void
test_history_seek_many(void **state)
{
	tu_env *e = *state;
	uint64_t seed = 77;
	uint64_t id = tu_task(e, "t", "w", 0);
	for (int i = 0; i < 300; i++) {
		tu_advance_us(e, tu_rand(&seed) % 3 * 1000); // 0, 1 or 2 ms
		TU_OK(tu_note(e, id, "tick"));
	}
	seqs all = { 0 };
	TU_OK(scan(e, 0, 0, &all));
	assert_int_equal(all.n, 301);
	for (uint64_t t = TU_T0 - 500; t <= e->now_us + 1000; t += 500) {
		size_t k = 0;
		while (k < all.n && all.time[k] < t)
			k++;
		uint64_t want = k < all.n ? all.seq[k] : all.seq[all.n - 1] + 1;
		uint64_t got = seek(e, t);
		if (got != want)
			TU_FAIL("seek(T0%+lld us) = %llu, expected %llu",
			    (long long)(t - TU_T0), (unsigned long long)got,
			    (unsigned long long)want);
	}
	seqs_free(&all);
}

static void
test_history_kept_after_delete(void **state)
{
	tu_env *e = *state;
	uint64_t a = tu_task(e, "a", "w", 0);
	uint64_t b = tu_task(e, "b", "w", 0);
	TU_OK(tu_note(e, a, "note on a"));
	size_t ha = tu_history_len(e, a);
	assert_int_equal(ha, 2);
	uint64_t nev = tu_stats(e).nevents;
	TU_OK(tu_delete(e, a));
	cpl_task t;
	TU_ERR(tu_get(e, a, &t), CPL_ENOTFOUND);
	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, a, h));
	// The events stay (the delete itself may add one).
	assert_true(h->n == ha || h->n == ha + 1);
	TU_EQ_STATE(h->e[0].ev.to, CPL_READY);
	assert_string_equal(h->e[1].msg, "note on a");
	size_t ha_after = h->n;
	free(h);
	TU_EQ_U64(tu_stats(e).nevents, nev + (ha_after - ha));
	seqs all = { 0 };
	TU_OK(scan(e, 0, 0, &all));
	size_t of_a = 0;
	for (size_t i = 0; i < all.n; i++)
		of_a += all.task[i] == a;
	assert_int_equal(of_a, ha_after);
	seqs_free(&all);
	TU_STATE(e, b, CPL_READY);
}

// Refused operations write no event.
static void
test_history_refusals_no_event(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t id = tu_task(e, "t", "w", 0);
	uint32_t a = tu_claim_task(e, lease, "w", id);
	uint64_t n0 = tu_stats(e).nevents;
	TU_REFUSED(tu_report(e, id, lease, a, CPL_JOB_FINISHED));
	TU_REFUSED(tu_report(e, id, lease + 1, a, CPL_STAGED_IN));
	TU_REFUSED(tu_report(e, id, lease, a + 1, CPL_STAGED_IN));
	TU_REFUSED(tu_set_state(e, id, CPL_RESTART_READY, NULL));
	TU_REFUSED(tu_note(e, id + 10, "x"));
	TU_EQ_U64(tu_stats(e).nevents, n0);
	assert_int_equal(tu_history_len(e, id), 1);
}

// Broker time: constant within a transaction, never smaller than an
// earlier commit's, even when the clock steps back.
typedef struct now_arg {
	tu_env *e;
	uint64_t now1, now2, id, created;
	int rv;
} now_arg;

static int
now_cb(cpl_txn *txn, void *arg)
{
	now_arg *a = arg;
	a->now1 = cpl_txn_now(txn);
	a->e->now_us += 5000000; // the clock moves on inside
	a->now2 = cpl_txn_now(txn);
	tu_spec sp;
	tu_spec_init(&sp, "in-txn", "w", "app");
	uint8_t u[16];
	return cpl_task_create(txn, &sp.spec, &a->id, u);
}

static void
test_broker_time(void **state)
{
	tu_env *e = *state;
	uint64_t first = tu_task(e, "first", "w", 0);
	TU_EQ_U64(tu_task_get(e, first).created_us, TU_T0);
	now_arg a = { e, 0, 0, 0, 0, 0 };
	e->now_us = TU_T0 + 1000;
	TU_OK(cpl_store_write(e->s, now_cb, &a));
	TU_EQ_U64(a.now1, a.now2);
	TU_EQ_U64(a.now1, TU_T0 + 1000);
	TU_EQ_U64(tu_task_get(e, a.id).created_us, a.now1);
	// The clock steps back a minute: broker time does not.
	uint64_t last = tu_task_get(e, a.id).created_us;
	e->now_us = TU_T0 - 60000000ull;
	uint64_t later = tu_task(e, "later", "w", 0);
	cpl_task t = tu_task_get(e, later);
	assert_true(t.created_us >= last);
	seqs all = { 0 };
	TU_OK(scan(e, 0, 0, &all));
	for (size_t i = 1; i < all.n; i++)
		assert_true(all.time[i] >= all.time[i - 1]);
	seqs_free(&all);
}

// Event times: a launcher's report keeps its clock's time of the event
// beside the commit time, clamped: not after the commit, not before the
// task's previous event; more than a day off, the commit time stands.
// Events without one (and records from before event times) read with
// event_us == time_us; the store checks clean.
static void
test_history_event_time(void **state)
{
	tu_env *e = *state;
	uint64_t lease = tu_lease(e, TTL);
	uint64_t id = tu_task(e, "t", "w", 0);
	uint64_t t_ready = e->now_us;
	tu_advance_ms(e, 10);
	uint32_t a = tu_claim_task(e, lease, "w", id);
	tu_advance_ms(e, 2000);
	uint64_t ran = e->now_us - 1500000; // started 1.5 s before the commit
	TU_OK(tu_report_at(e, id, lease, a, CPL_RUNNING, ran));
	uint64_t c_run = e->now_us;
	tu_advance_ms(e, 3000);
	uint64_t ended = ran + 1000000;     // a 1 s run, committed late
	TU_OK(tu_report_at(e, id, lease, a, CPL_RUN_DONE, ended));
	uint64_t c_done = e->now_us;
	tu_advance_ms(e, 5);
	// a clock 2 s ahead: not after the commit
	TU_OK(tu_report_at(e, id, lease, a, CPL_POSTPROCESSED,
	    e->now_us + 2000000));
	uint64_t c_post = e->now_us;
	tu_advance_ms(e, 5);
	// a clock far behind (two days): ignored, the commit time stands
	TU_OK(tu_report_at(e, id, lease, a, CPL_JOB_FINISHED,
	    e->now_us - 2 * CPL_EVENT_SKEW_US));
	uint64_t c_fin = e->now_us;

	// a second task: an event time before its previous event (READY)
	uint64_t id2 = tu_task(e, "t2", "w", 0);
	uint64_t t2_ready = e->now_us;
	tu_advance_ms(e, 10);
	uint32_t a2 = tu_claim_task(e, lease, "w", id2);
	tu_advance_ms(e, 10);
	TU_OK(tu_report_at(e, id2, lease, a2, CPL_RUNNING, t2_ready - 60000000));

	tu_evs *h = calloc(1, sizeof *h);
	TU_OK(tu_history(e, id, h));
	assert_int_equal(h->n, 5);
	TU_EQ_U64(h->e[0].ev.time_us, t_ready);
	TU_EQ_U64(h->e[0].ev.event_us, t_ready);
	TU_EQ_STATE(h->e[1].ev.to, CPL_RUNNING);
	TU_EQ_U64(h->e[1].ev.time_us, c_run);
	TU_EQ_U64(h->e[1].ev.event_us, ran);
	TU_EQ_U64(h->e[2].ev.time_us, c_done);
	TU_EQ_U64(h->e[2].ev.event_us, ended);
	TU_EQ_U64(h->e[3].ev.event_us, c_post);
	TU_EQ_U64(h->e[4].ev.time_us, c_fin);
	TU_EQ_U64(h->e[4].ev.event_us, c_fin);
	cpl_task t = tu_task_get(e, id);
	TU_EQ_U64(t.changed_us, c_fin);
	memset(h, 0, sizeof *h);
	TU_OK(tu_history(e, id2, h));
	assert_int_equal(h->n, 2);
	TU_EQ_U64(h->e[1].ev.event_us, t2_ready);
	TU_EQ_U64(h->e[1].ev.time_us, t2_ready + 20000);
	free(h);
	// the global log reads the same records
	seqs sq;
	memset(&sq, 0, sizeof sq);
	TU_OK(scan(e, 0, 0, &sq));
	assert_int_equal(sq.n, 7);
	seqs_free(&sq);
	TU_CHECK(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_history_lifecycle,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_long_message,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_scan_complete,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_seek_time,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_seek_many,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_kept_after_delete,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_refusals_no_event,
		    tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_broker_time, tu_setup,
		    tu_teardown),
		cmocka_unit_test_setup_teardown(test_history_event_time,
		    tu_setup, tu_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
