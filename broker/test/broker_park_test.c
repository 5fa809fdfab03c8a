// Claims held open (issue 13): a claim with wait_ms that finds nothing is
// held by the broker and answered as soon as a task becomes runnable, or
// empty when its wait runs out; held claims take at most half the
// broker's request contexts (128 of the default 256), beyond which a
// claim is answered empty at once, and the broker still answers everyone
// else. A claim without wait_ms is answered at once, as before. A broker
// that stops answers the claims it holds.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/broker.h"

#define NCLAIMS 140
#define HELD_MAX 128
#define WAIT_MS 6000u

struct claimer {
	const bh_broker *b;
	uint64_t lease;
	uint32_t wait_ms;
	pthread_t th;
	// results
	int rv;            // of the call, or the reply's status
	size_t ntasks;
	uint64_t sent_ms, done_ms;
};

static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static size_t ndone;

static void *
claimer_main(void *arg)
{
	struct claimer *w = arg;
	cpl_client_opts o;
	cpl_client *c = NULL;
	memset(&o, 0, sizeof(o));
	o.db_dir = w->b->dir;
	o.timeout_ms = 30000;
	o.attempts = 1;
	w->rv = cpl_client_open(&o, &c);
	if (w->rv == 0) {
		Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT;
		Copal__NodeCapacity *ncp = &nc;
		Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
		Copal__Request rq = COPAL__REQUEST__INIT;
		Copal__Reply *r = NULL;
		nc.free_units = CPL_NODE_UNITS;
		cl.lease_id = w->lease;
		cl.max_tasks = 1;
		cl.n_nodes = 1;
		cl.nodes = &ncp;
		cl.wait_ms = w->wait_ms;
		cl.workflow = (char *)"";
		rq.body_case = COPAL__REQUEST__BODY_CLAIM;
		rq.claim = &cl;
		w->sent_ms = bh_now_ms();
		int rv = cpl_client_call(c, &rq, &r);
		uint64_t done_ms = bh_now_ms();
		size_t ntasks = 0;
		if (rv == 0) {
			rv = (int)r->status;
			if (rv == 0 && r->claim)
				ntasks = r->claim->n_tasks;
			bh_free(r);
		}
		cpl_client_close(c);
		// the results under mx: the test reads them while others run
		pthread_mutex_lock(&mx);
		w->rv = rv;
		w->done_ms = done_ms;
		w->ntasks = ntasks;
		pthread_mutex_unlock(&mx);
	}
	pthread_mutex_lock(&mx);
	ndone++;
	pthread_mutex_unlock(&mx);
	return NULL;
}

static size_t
done_count(void)
{
	pthread_mutex_lock(&mx);
	size_t n = ndone;
	pthread_mutex_unlock(&mx);
	return n;
}

static int
setup(void **state)
{
	ndone = 0;
	return bh_fx_setup(state);
}

// 140 claims at once on an empty queue: 128 held, 12 answered at once;
// a ping is answered meanwhile; a task created then goes to a held claim
// at once; the rest are answered empty when their wait runs out.
static void
test_held(void **state)
{
	bh_fx *f = *state;
	uint64_t lease = bh_lease(f->c, "parker", 60000);
	static struct claimer w[NCLAIMS];
	memset(w, 0, sizeof(w));
	for (size_t i = 0; i < NCLAIMS; i++) {
		w[i].b = &f->b;
		w[i].lease = lease;
		w[i].wait_ms = WAIT_MS;
		BH_CHECK(pthread_create(&w[i].th, NULL, claimer_main, &w[i]) == 0,
		    "pthread_create");
	}
	// those beyond the bound come back at once
	uint64_t t0 = bh_now_ms();
	while (done_count() < NCLAIMS - HELD_MAX &&
	    bh_now_ms() - t0 < 3000u * (uint64_t)bh_slow())
		bh_sleep_ms(10);
	bh_sleep_ms(300);
	BH_EQ_U64(done_count(), NCLAIMS - HELD_MAX);
	// everyone else is still served
	uint64_t p0 = bh_now_ms();
	BH_EQ_ERR(bh_try_ping(f->c, 2000, NULL), 0);
	print_message("ping answered in %llu ms with %d claims held\n",
	    (unsigned long long)(bh_now_ms() - p0), HELD_MAX);
	// a new task goes to a held claim at once
	uint64_t c0 = bh_now_ms();
	(void)bh_create(f->c, 1, "t", "w", "app");
	size_t got = 0;
	uint64_t took = 0;
	while (got == 0 && bh_now_ms() - c0 < 3000) {
		pthread_mutex_lock(&mx);
		for (size_t i = 0; i < NCLAIMS; i++)
			if (w[i].done_ms && w[i].ntasks) {
				got = w[i].ntasks;
				took = w[i].done_ms - c0;
			}
		pthread_mutex_unlock(&mx);
		bh_sleep_ms(1);
	}
	BH_EQ_U64(got, 1);
	print_message("a held claim got the new task %llu ms after its "
	    "create was sent\n", (unsigned long long)took);
	BH_CHECK(took < 500u * (uint64_t)bh_slow(), "took %llu ms",
	    (unsigned long long)took);
	for (size_t i = 0; i < NCLAIMS; i++)
		pthread_join(w[i].th, NULL);
	size_t total = 0, at_once = 0, waited = 0;
	for (size_t i = 0; i < NCLAIMS; i++) {
		BH_EQ_ERR(w[i].rv, 0);
		total += w[i].ntasks;
		uint64_t d = w[i].done_ms - w[i].sent_ms;
		if (w[i].ntasks)
			continue;
		if (d < 1000)
			at_once++;
		else if (d >= WAIT_MS - 50 && d < WAIT_MS + 3000u * bh_slow())
			waited++;
	}
	BH_EQ_U64(total, 1);
	BH_EQ_U64(at_once, NCLAIMS - HELD_MAX);
	BH_EQ_U64(waited, HELD_MAX - 1);
}

// Without wait_ms a claim is answered at once; a broker that stops
// answers the claims it holds (empty).
static void
test_nowait_and_stop(void **state)
{
	bh_fx *f = *state;
	uint64_t lease = bh_lease(f->c, "parker", 60000);
	struct claimer a = { .b = &f->b, .lease = lease, .wait_ms = 0 };
	claimer_main(&a);
	BH_EQ_ERR(a.rv, 0);
	BH_CHECK(a.done_ms - a.sent_ms < 1000, "a claim without wait took "
	    "%llu ms", (unsigned long long)(a.done_ms - a.sent_ms));
	struct claimer h = { .b = &f->b, .lease = lease, .wait_ms = WAIT_MS };
	BH_CHECK(pthread_create(&h.th, NULL, claimer_main, &h) == 0, "create");
	bh_sleep_ms(500);
	BH_EQ_U64(done_count(), 1);
	bh_stop(&f->b);
	pthread_join(h.th, NULL);
	BH_EQ_ERR(h.rv, 0);
	BH_EQ_U64(h.ntasks, 0);
	BH_CHECK(h.done_ms - h.sent_ms < WAIT_MS - 1000, "a held claim was "
	    "not answered when the broker stopped (%llu ms)",
	    (unsigned long long)(h.done_ms - h.sent_ms));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_held, setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_nowait_and_stop, setup,
		    bh_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
