// Unit test of the broker's park of held claims (broker/src/park.c), on
// its own thread: an item is held until woken or until its deadline; one
// whose key was dropped before it was added (its launcher said it stops
// while the claim's answer was still on its way) is answered at once, not
// held to its deadline; after a stop, items are answered at once.
#include "copal/testing/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "park.h"

static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int nexpired, nagain;
static uint64_t expired_us;

static void
on_expire(pitem *it)
{
	(void)it;
	pthread_mutex_lock(&mx);
	nexpired++;
	expired_us = cpl_mono_us();
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
}

static void
on_again(pitem *it)
{
	(void)it;
	pthread_mutex_lock(&mx);
	nagain++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
}

static void
item_init(pitem *it, uint64_t key, uint64_t wait_ms)
{
	memset(it, 0, sizeof(*it));
	it->until_us = cpl_mono_us() + wait_ms * 1000u;
	it->again = on_again;
	it->expire = on_expire;
	it->key = key;
	pthread_mutex_lock(&mx);
	nexpired = nagain = 0;
	expired_us = 0;
	pthread_mutex_unlock(&mx);
}

// Waits (at most s seconds) until *counter reaches n.
static int
wait_count(int *counter, int n, int s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += s;
	pthread_mutex_lock(&mx);
	while (*counter < n && pthread_cond_timedwait(&cv, &mx, &ts) == 0)
		;
	int got = *counter;
	pthread_mutex_unlock(&mx);
	return got;
}

// Held until its deadline (about 200 ms), or run again when woken.
static void
test_held_then_woken_or_expired(void **state)
{
	(void)state;
	park *p;
	pitem a, b;
	TU_OK(park_start(8, &p));
	item_init(&a, 1, 200);
	uint64_t t0 = cpl_mono_us();
	assert_true(park_reserve_key(p, 1));
	park_add(p, &a);
	assert_int_equal(wait_count(&nexpired, 1, 10), 1);
	assert_true(expired_us - t0 >= 150000u);
	item_init(&b, 2, 10000);
	assert_true(park_reserve_key(p, 2));
	park_add(p, &b);
	park_wake(p);
	assert_int_equal(wait_count(&nagain, 1, 10), 1);
	assert_int_equal(nexpired, 0);
	park_stop(p);
	park_free(p);
}

// The key was dropped after the place was reserved and before the item
// came: answered at once, on the caller's thread.
static void
test_dropped_key_answered_at_once(void **state)
{
	(void)state;
	park *p;
	pitem a, other;
	TU_OK(park_start(8, &p));
	item_init(&a, 7, 10000);
	assert_true(park_reserve_key(p, 7));
	park_drop_key(p, 7);
	park_add(p, &a);
	assert_int_equal(nexpired, 1); // at once: before park_add returned
	assert_int_equal(park_count(p), 0);
	assert_false(park_reserve_key(p, 7));
	// another key is still held
	item_init(&other, 8, 10000);
	assert_true(park_reserve_key(p, 8));
	park_add(p, &other);
	usleep(100000);
	assert_int_equal(nexpired, 0);
	assert_int_equal(park_count(p), 1);
	park_stop(p); // answers what it holds
	assert_int_equal(nexpired, 1);
	park_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_then_woken_or_expired),
		cmocka_unit_test(test_dropped_key_answered_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
