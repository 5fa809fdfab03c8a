// Held claims: a list of items with deadlines, a thread that waits for the
// nearest deadline or a wake, and a count of places (see park.h).
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "broker.h"
#include "park.h"

struct park {
	pthread_mutex_t mx;
	pthread_cond_t cv;
	pthread_t thread;
	bool started;
	bool stop;
	bool woken;       // park_wake since the thread last looked
	size_t max;
	size_t places;    // reserved or held
	size_t held;
	pitem *list;
	uint64_t dropped[64];   // keys of park_drop_key, the latest ones
	size_t ndropped;
};

// Waits on p->cv until abs_us (cpl_mono_us() clock; 0: a second).
static void
wait_until(park *p, uint64_t abs_us)
{
	uint64_t now = cpl_mono_us(), left = 1000000u;
	if (abs_us && abs_us > now && abs_us - now < left)
		left = abs_us - now;
	else if (abs_us && abs_us <= now)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(left / 1000000u);
	ts.tv_nsec += (long)(left % 1000000u) * 1000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&p->cv, &p->mx, &ts);
}

static void *
park_main(void *arg)
{
	park *p = arg;
	pthread_setname_np(pthread_self(), "copal:park");
	pthread_mutex_lock(&p->mx);
	for (;;) {
		// what to hand back: all on a wake or a stop, else the
		// items whose deadline passed
		uint64_t now = cpl_mono_us(), next = 0;
		bool all = p->woken || p->stop;
		pitem *due = NULL, **pp = &p->list;
		while (*pp) {
			pitem *it = *pp;
			if (all || it->until_us <= now) {
				*pp = it->next;
				it->next = due;
				due = it;
				p->held--;
				p->places--;
			} else {
				if (next == 0 || it->until_us < next)
					next = it->until_us;
				pp = &it->next;
			}
		}
		bool woken = p->woken, stop = p->stop;
		p->woken = false;
		if (due) {
			pthread_mutex_unlock(&p->mx);
			for (pitem *it = due, *n; it; it = n) {
				n = it->next;
				it->next = NULL;
				if (woken && !stop && it->until_us > now)
					it->again(it);
				else
					it->expire(it);
			}
			pthread_mutex_lock(&p->mx);
			continue;
		}
		if (stop)
			break;
		if (!p->woken)
			wait_until(p, next);
	}
	pthread_mutex_unlock(&p->mx);
	return NULL;
}

int
park_start(size_t max, park **out)
{
	park *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	if (p == NULL)
		return CPL_ENOMEM;
	p->max = max;
	pthread_mutex_init(&p->mx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	// set before the thread runs: it shares the word it reads under
	// the lock (ThreadSanitizer saw the write race its first read)
	p->started = true;
	if (pthread_create(&p->thread, NULL, park_main, p) != 0) {
		p->started = false;
		park_free(p);
		return CPL_ENOMEM;
	}
	*out = p;
	return 0;
}

bool
park_reserve(park *p)
{
	bool ok = false;
	pthread_mutex_lock(&p->mx);
	if (!p->stop && p->places < p->max) {
		p->places++;
		ok = true;
	}
	pthread_mutex_unlock(&p->mx);
	return ok;
}

// Under p->mx.
static bool
dropped_locked(const park *p, uint64_t key)
{
	for (size_t i = 0; i < p->ndropped && i < 64; i++)
		if (p->dropped[i] == key)
			return true;
	return false;
}

bool
park_dropped(park *p, uint64_t key)
{
	pthread_mutex_lock(&p->mx);
	bool found = dropped_locked(p, key);
	pthread_mutex_unlock(&p->mx);
	return found;
}

bool
park_reserve_key(park *p, uint64_t key)
{
	return !park_dropped(p, key) && park_reserve(p);
}

void
park_drop_key(park *p, uint64_t key)
{
	pitem *due = NULL;
	pthread_mutex_lock(&p->mx);
	p->dropped[p->ndropped++ % 64] = key;
	for (pitem **pp = &p->list; *pp;) {
		pitem *it = *pp;
		if (it->key == key) {
			*pp = it->next;
			it->next = due;
			due = it;
			p->held--;
			p->places--;
		} else {
			pp = &it->next;
		}
	}
	pthread_mutex_unlock(&p->mx);
	for (pitem *it = due, *n; it; it = n) {
		n = it->next;
		it->next = NULL;
		it->expire(it);
	}
}

void
park_unreserve(park *p)
{
	pthread_mutex_lock(&p->mx);
	p->places--;
	pthread_mutex_unlock(&p->mx);
}

void
park_add(park *p, pitem *it)
{
	pthread_mutex_lock(&p->mx);
	// reserved before the stop, or before its launcher said it stops
	// (its answer may come after the report that said so: the writer
	// runs the next batch while the last is answered): answered now
	if (p->stop || dropped_locked(p, it->key)) {
		p->places--;
		pthread_mutex_unlock(&p->mx);
		it->expire(it);
		return;
	}
	it->next = p->list;
	p->list = it;
	p->held++;
	// the thread may sleep past this deadline, or be stopping: let it
	// look again
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mx);
}

void
park_wake(park *p)
{
	pthread_mutex_lock(&p->mx);
	if (p->held) {
		p->woken = true;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mx);
}

size_t
park_count(park *p)
{
	pthread_mutex_lock(&p->mx);
	size_t n = p->held;
	pthread_mutex_unlock(&p->mx);
	return n;
}

void
park_stop(park *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mx);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mx);
	if (p->started)
		pthread_join(p->thread, NULL);
	p->started = false;
}

void
park_free(park *p)
{
	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->mx);
	pthread_cond_destroy(&p->cv);
	free(p);
}
