// Heartbeats renewed in memory (see hbtab.h): an open-addressing table of
// lease id -> kept deadline, emptied by every sweep.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hbtab.h"

struct ent {
	uint64_t id;       // 0: free
	uint64_t deadline;
	uint32_t ttl_ms;
};

struct hbtab {
	pthread_mutex_t mx;
	struct ent *v;
	size_t cap, n;      // cap a power of two
	uint64_t min_stored; // earliest stored deadline among the kept
	uint64_t renewed;
	bool held;          // the writer holds mx over its transaction
	bool closed;        // hbtab_close: keep nothing more
};

hbtab *
hbtab_new(void)
{
	hbtab *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	pthread_mutex_init(&h->mx, NULL);
	h->min_stored = UINT64_MAX;
	return h;
}

void
hbtab_free(hbtab *h)
{
	if (h == NULL)
		return;
	pthread_mutex_destroy(&h->mx);
	free(h->v);
	free(h);
}

void
hbtab_lock(hbtab *h)
{
	pthread_mutex_lock(&h->mx);
}

void
hbtab_unlock(hbtab *h)
{
	pthread_mutex_unlock(&h->mx);
}

static size_t
slot(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static struct ent *
find(hbtab *h, uint64_t id)
{
	if (h->cap == 0)
		return NULL;
	for (size_t i = slot(id, h->cap);; i = (i + 1) & (h->cap - 1)) {
		if (h->v[i].id == id)
			return &h->v[i];
		if (h->v[i].id == 0)
			return NULL;
	}
}

uint64_t
hbtab_get(hbtab *h, uint64_t id)
{
	struct ent *e = find(h, id);
	return e ? e->deadline : 0;
}

static int
grow(hbtab *h)
{
	size_t nc = h->cap ? h->cap * 2 : 1024;
	struct ent *nv = calloc(nc, sizeof(*nv));
	if (nv == NULL)
		return CPL_ENOMEM;
	for (size_t i = 0; i < h->cap; i++) {
		if (h->v[i].id == 0)
			continue;
		size_t j = slot(h->v[i].id, nc);
		while (nv[j].id != 0)
			j = (j + 1) & (nc - 1);
		nv[j] = h->v[i];
	}
	free(h->v);
	h->v = nv;
	h->cap = nc;
	return 0;
}

int
hbtab_put(hbtab *h, uint64_t id, uint64_t deadline, uint32_t ttl_ms,
    uint64_t stored)
{
	if (h->closed)
		return CPL_ESHUTDOWN;
	struct ent *e = find(h, id);
	if (e == NULL) {
		if ((h->n + 1) * 2 > h->cap && grow(h) != 0)
			return CPL_ENOMEM;
		size_t i = slot(id, h->cap);
		while (h->v[i].id != 0)
			i = (i + 1) & (h->cap - 1);
		e = &h->v[i];
		e->id = id;
		h->n++;
	}
	if (deadline > e->deadline)
		e->deadline = deadline;
	e->ttl_ms = ttl_ms;
	if (stored < h->min_stored)
		h->min_stored = stored;
	h->renewed++;
	return 0;
}

int
hbtab_flush(hbtab *h, cpl_txn *txn)
{
	int rv;
	for (size_t i = 0; i < h->cap; i++) {
		struct ent *e = &h->v[i];
		if (e->id == 0)
			continue;
		rv = cpl_lease_extend(txn, e->id, e->deadline, e->ttl_ms);
		if (rv != 0 && rv != CPL_ENOTFOUND)
			return rv;
	}
	return 0;
}

void
hbtab_clear(hbtab *h)
{
	if (h->n)
		memset(h->v, 0, h->cap * sizeof(*h->v));
	h->n = 0;
	h->min_stored = UINT64_MAX;
}

void
hbtab_close(hbtab *h)
{
	pthread_mutex_lock(&h->mx);
	h->closed = true;
	pthread_mutex_unlock(&h->mx);
}

uint64_t
hbtab_renewed(hbtab *h)
{
	pthread_mutex_lock(&h->mx);
	uint64_t n = h->renewed;
	pthread_mutex_unlock(&h->mx);
	return n;
}

// ---------------------------------------------------------------- writer

int
hbtab_writer_flush(cpl_txn *txn, void *arg, bool all)
{
	hbtab *h = arg;
	// (a transaction replayed into a grown map comes here again)
	if (!h->held)
		pthread_mutex_lock(&h->mx);
	h->held = true;
	// A sweep (all) keeps the lock to its commit even with nothing kept:
	// a renewal judged meanwhile on a snapshot from before the sweep
	// could otherwise renew a lease the sweep then expires.
	if (!all && (h->n == 0 ||
	    h->min_stored >= cpl_txn_now(txn) + HBTAB_URGENT_US)) {
		h->held = false;
		pthread_mutex_unlock(&h->mx);
		return 0;
	}
	return hbtab_flush(h, txn);
}

void
hbtab_writer_done(void *arg, int rv)
{
	hbtab *h = arg;
	if (!h->held)
		return;
	if (rv == 0)
		hbtab_clear(h);
	h->held = false;
	pthread_mutex_unlock(&h->mx);
}
