// The broker's single writer thread with group commit, and the lease
// sweeper that runs on it (see writer.h).
//
// The writer takes every queued job, applies each in a nested transaction
// of one write transaction (a direct job in that transaction itself),
// commits once, and only then completes the jobs.
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "broker.h"
#include "writer.h"

// A committed (or failed) batch whose jobs the completer answers.
struct done_item {
	struct done_item *next;
	wjob *list;
	int rv;
	size_t applied, replayed;
	bool wake;      // held claims look again after these answers
};

struct writer {
	cpl_store *st;
	pthread_mutex_t qmx;
	pthread_cond_t qcv;
	wjob *qhead, *qtail;
	size_t qlen;
	bool gathering;  // waits for more jobs: woken only by a full queue
	pthread_t thread;
	bool started;
	bool stop;       // asked to stop: drain the queue and exit
	bool exited;     // the thread has left its loop: refuse jobs
	writer_stats stats;
	void (*on_claimable)(void *);
	void *on_claimable_arg;
	uint64_t claimable_seen;
	writer_leases leases;
	// The completer thread (qmx guards these): the jobs of a batch of
	// WRITER_HANDOFF_MIN or more are answered there, each reply's send
	// off the writer, which meanwhile runs the next batch. Batches are
	// completed in order; while the completer has any, every batch goes
	// to it. Claims held open look again after the answers of a batch
	// whose item has wake set, or when the writer set recheck while the
	// completer was answering the last one (writer_main).
	pthread_cond_t ccv;
	pthread_cond_t cidle;   // the completer has nothing left
	struct done_item *chead, *ctail;
	bool cbusy;      // completing an item or looking at claims
	bool recheck;
	bool cstop;
	pthread_t cthread;
	bool cstarted;
};

// ---------------------------------------------------------------- batches

struct batch {
	const writer_leases *lz;
	wjob *list;
	size_t n, applied, replayed;
	unsigned runs;   // of batch_cb: more than one, the jobs are reset
	bool nested;     // every job in a nested transaction, direct or not
	bool redo;       // a direct job failed after it changed something
};

static int
run_cb(cpl_txn *txn, void *arg)
{
	wjob *j = arg;
	return j->ops->run(txn, j);
}

static int
batch_cb(cpl_txn *txn, void *arg)
{
	struct batch *b = arg;
	int rv;
	b->applied = b->replayed = 0;
	if (b->runs++ > 0) { // run again: the transaction before was given up
		for (wjob *j = b->list; j; j = j->next)
			if (j->ops->reset)
				j->ops->reset(j);
		// and the lines its jobs logged, warnings too: this run logs
		// them anew (those an error or the hold's bound wrote out
		// already stay written)
		cpl_log_release(false);
		cpl_log_hold(WRITER_LOG_HELD);
	}
	if (b->lz->flush && (rv = b->lz->flush(txn, b->lz->arg, false)) != 0)
		return rv;
	for (wjob *j = b->list; j; j = j->next) {
		bool done = false;
		if (j->ops->replay && (rv = j->ops->replay(txn, j, &done)) != 0)
			return rv;
		if (done) {
			b->replayed++;
			continue;
		}
		if ((rv = cpl_txn_error(txn)) != 0)
			return rv;
		if (j->direct && !b->nested) {
			// no nested transaction: LMDB's copies of the pages a
			// nested one touches, and the merge of its page list
			// at its commit, are a tenth of the writer's time
			// (BENCHMARKS.md). A failure that changed something
			// can only be undone with the whole transaction: the
			// batch runs again, every job nested.
			bool changed;
			rv = cpl_txn_direct(txn, run_cb, j, &changed);
			if (changed) {
				b->redo = true;
				return rv;
			}
		} else {
			rv = cpl_txn_sub(txn, run_cb, j);
		}
		if (cpl_txn_error(txn) != 0)
			return cpl_txn_error(txn);
		if (j->ops->after && (rv = j->ops->after(txn, j, rv)) != 0)
			return rv;
		b->applied++;
	}
	return 0;
}

// ---------------------------------------------------------------- sweep

struct sweep {
	const writer_leases *lz;
	uint64_t nleases, ntasks;
	size_t pruned;
};

static int
sweep_cb(cpl_txn *txn, void *arg)
{
	struct sweep *sw = arg;
	int rv;
	// renewals kept in memory first: no lease renewed is expired
	if (sw->lz->flush && (rv = sw->lz->flush(txn, sw->lz->arg, true)) != 0)
		return rv;
	if ((rv = cpl_lease_expire(txn, &sw->nleases, &sw->ntasks)) != 0)
		return rv;
	// replies are kept for resends for ten minutes
	uint64_t now = cpl_txn_now(txn);
	if (now > WRITER_REPLY_KEEP_US)
		rv = cpl_reply_prune(txn, now - WRITER_REPLY_KEEP_US,
		    WRITER_PRUNE_MAX, &sw->pruned);
	return rv;
}

static void
do_sweep(writer *w, const writer_leases *lz)
{
	struct sweep sw = { lz, 0, 0, 0 };
	int rv = cpl_store_write(w->st, sweep_cb, &sw);
	if (lz->done)
		lz->done(lz->arg, rv);
	if (rv)
		LOG(LOG_ERR, "sweep", "lease sweep failed: %s", cpl_strerror(rv));
	else if (sw.nleases)
		LOG(LOG_NOTICE, "lease", "expired %llu lease(s) holding %llu task(s)",
		    (unsigned long long)sw.nleases,
		    (unsigned long long)sw.ntasks);
}

static int
grace_cb(cpl_txn *txn, void *arg)
{
	return cpl_lease_grace(txn, arg);
}

// The broker could not hear its launchers for a while (it was not
// running, or stalled): their leases get one TTL from now, so that the
// heartbeats queued or on their way are taken before any lease is swept.
static void
do_grace(writer *w, uint64_t gap_us)
{
	uint64_t n = 0;
	int rv = cpl_store_write(w->st, grace_cb, &n);
	if (rv)
		LOG(LOG_ERR, "lease", "grace for leases failed: %s",
		    cpl_strerror(rv));
	else if (n && gap_us)
		LOG(LOG_NOTICE, "lease", "did not run for %.1f s: %llu "
		    "lease(s) get one TTL of grace", (double)gap_us / 1e6,
		    (unsigned long long)n);
	else if (n)
		LOG(LOG_NOTICE, "lease", "started: %llu lease(s) of launchers "
		    "get one TTL of grace to reach this broker",
		    (unsigned long long)n);
}

static int
flush_cb(cpl_txn *txn, void *arg)
{
	const writer_leases *lz = arg;
	return lz->flush(txn, lz->arg, true);
}

// The writer stops: renewals kept outside the store are written.
static void
do_flush(writer *w, const writer_leases *lz)
{
	if (lz->flush == NULL)
		return;
	int rv = cpl_store_write(w->st, flush_cb, (void *)lz);
	if (lz->done)
		lz->done(lz->arg, rv);
	if (rv)
		LOG(LOG_ERR, "lease", "writing renewals failed: %s",
		    cpl_strerror(rv));
}

// ---------------------------------------------------------------- completion

static void
complete_jobs(wjob *list, int rv)
{
	for (wjob *j = list, *n; j; j = n) {
		n = j->next;
		j->next = NULL;
		j->ops->done(j, rv);
	}
}

// Claims held open look again (a task became runnable, a lease ended).
static void
wake_claims(writer *w)
{
	pthread_mutex_lock(&w->qmx);
	void (*on_claimable)(void *) = w->on_claimable;
	void *arg = w->on_claimable_arg;
	pthread_mutex_unlock(&w->qmx);
	if (on_claimable)
		on_claimable(arg);
}

// Under qmx.
static void
count_batch(writer *w, int rv, size_t applied, size_t replayed)
{
	if (rv) {
		w->stats.failed++;
	} else {
		w->stats.batches++;
		w->stats.applied += applied;
		w->stats.replayed += replayed;
	}
}

static void *
completer_main(void *arg)
{
	writer *w = arg;
	pthread_setname_np(pthread_self(), "copal:answers");
	pthread_mutex_lock(&w->qmx);
	for (;;) {
		while (w->chead == NULL && !w->recheck && !w->cstop)
			pthread_cond_wait(&w->ccv, &w->qmx);
		if (w->chead == NULL && !w->recheck)
			break; // stopping, and nothing left
		struct done_item *it = w->chead;
		if (it && (w->chead = it->next) == NULL)
			w->ctail = NULL;
		w->cbusy = true;
		pthread_mutex_unlock(&w->qmx);
		if (it)
			complete_jobs(it->list, it->rv);
		// after the answers: a claim of this batch that was held is
		// in the park by now
		pthread_mutex_lock(&w->qmx);
		bool wake = w->recheck || (it && it->wake);
		w->recheck = false;
		if (it)
			count_batch(w, it->rv, it->applied, it->replayed);
		pthread_mutex_unlock(&w->qmx);
		if (wake)
			wake_claims(w);
		pthread_mutex_lock(&w->qmx);
		w->cbusy = false;
		if (w->chead == NULL)
			pthread_cond_broadcast(&w->cidle);
		free(it);
	}
	pthread_mutex_unlock(&w->qmx);
	return NULL;
}

// The writer hands a batch's jobs to the completer: a large batch, or any
// while the completer has earlier ones (so that all are answered in
// order). False: the writer completes them itself.
static bool
hand_off(writer *w, const struct batch *b, int rv)
{
	pthread_mutex_lock(&w->qmx);
	bool busy = w->chead || w->cbusy;
	struct done_item *it = NULL;
	if (w->cstarted && (busy || b->n >= WRITER_HANDOFF_MIN))
		it = malloc(sizeof(*it));
	if (it == NULL) {
		// out of memory with earlier batches still to answer: they
		// go first (the completer signals cidle once it has none)
		while (w->chead || w->cbusy)
			pthread_cond_wait(&w->cidle, &w->qmx);
		pthread_mutex_unlock(&w->qmx);
		return false;
	}
	*it = (struct done_item){ NULL, b->list, rv, b->applied, b->replayed,
		false };
	if (w->ctail)
		w->ctail->next = it;
	else
		w->chead = it;
	w->ctail = it;
	pthread_cond_signal(&w->ccv);
	pthread_mutex_unlock(&w->qmx);
	return true;
}

// ---------------------------------------------------------------- thread

// The sources (wjob.src) the writer has taken jobs from lately: those of
// this window of WRITER_SOURCE_WINDOW_US and of the one before. Only up to
// WRITER_GATHER_SOURCES are told apart (more do not make a batch wait
// longer), in an open-addressing table cleared with each window.
#define SRC_SLOTS 2048u

struct sources {
	uint32_t slot[SRC_SLOTS]; // 0: empty (src 0, unknown, is kept as 1)
	size_t cur, prev;         // distinct sources this window, the last
	uint64_t since;           // this window's start
};

static void
sources_add(struct sources *ss, const wjob *list, uint64_t now)
{
	if (now - ss->since >= WRITER_SOURCE_WINDOW_US) {
		// a window with no job at all leaves none behind
		ss->prev = now - ss->since < 2 * WRITER_SOURCE_WINDOW_US ?
		    ss->cur : 0;
		ss->cur = 0;
		ss->since = now;
		memset(ss->slot, 0, sizeof(ss->slot));
	}
	for (const wjob *j = list; j && ss->cur < WRITER_GATHER_SOURCES;
	    j = j->next) {
		uint32_t src = j->src ? j->src : 1;
		for (uint32_t i = src * 2654435761u;; i++) {
			uint32_t *sl = &ss->slot[i % SRC_SLOTS];
			if (*sl == src)
				break;
			if (*sl == 0) {
				*sl = src;
				ss->cur++;
				break;
			}
		}
	}
}

// How long a batch waits for more jobs (0: it does not): as long as
// WRITER_GATHER_PER_SOURCE_US for each source seen lately, at most
// WRITER_GATHER_US, and only if there are WRITER_GATHER_MIN_SOURCES.
static uint64_t
gather_us(const struct sources *ss)
{
	size_t n = ss->cur > ss->prev ? ss->cur : ss->prev;
	if (n < WRITER_GATHER_MIN_SOURCES)
		return 0;
	uint64_t us = (uint64_t)n * WRITER_GATHER_PER_SOURCE_US;
	return us < WRITER_GATHER_US ? us : WRITER_GATHER_US;
}

static void *
writer_main(void *arg)
{
	writer *w = arg;
	pthread_setname_np(pthread_self(), "copal:writer");
	uint64_t last_sweep = 0, last_turn = 0;
	bool deferred = false;
	size_t prev_n = 0, untrimmed = 0;
	struct sources *ss = calloc(1, sizeof(*ss)); // (NULL: no gather)
	do_grace(w, 0);
	last_turn = cpl_mono_us();
	pthread_mutex_lock(&w->qmx);
	for (;;) {
		while (w->qhead == NULL && !w->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts); // (qcv's clock)
			ts.tv_nsec += WRITER_IDLE_WAIT_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&w->qcv, &w->qmx, &ts);
			if (cpl_mono_us() - last_sweep > WRITER_SWEEP_US)
				break;
		}
		// Under steady load from several clients, a batch waits for
		// more jobs: one commit (its page writes, its fdatasync and
		// synced meta page) then serves more requests. How long grows
		// with the sources seen lately (a launcher is one source,
		// whichever connection its claims and reports come on), up to
		// WRITER_GATHER_US, or until WRITER_GATHER_FULL are queued: a
		// lone launcher, whose next request comes only after its
		// answer, never waits, even with a few clients beside it (a
		// wait of tens of microseconds gathers nothing and costs a
		// chain of tasks each time), and the many launchers of a large
		// allocation, whose requests are what the broker's CPU goes
		// to, up to 25 ms. Counting the sources of a window, not of
		// the last batch, keeps a batch that happened to be small from
		// stopping the next from waiting.
		uint64_t gw = ss ? gather_us(ss) : 0;
		if (w->qhead && !w->stop && gw && w->qlen < WRITER_GATHER_FULL) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(gw / 1000000u);
			ts.tv_nsec += (long)(gw % 1000000u) * 1000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			w->gathering = true;
			while (w->qlen < WRITER_GATHER_FULL && !w->stop &&
			    pthread_cond_timedwait(&w->qcv, &w->qmx, &ts) == 0)
				;
			w->gathering = false;
			w->stats.gathered++;
		}
		wjob *list = w->qhead;
		prev_n = w->qlen;
		w->qhead = w->qtail = NULL;
		w->qlen = 0;
		bool stop = w->stop;
		writer_leases lz = w->leases;
		pthread_mutex_unlock(&w->qmx);
		if (ss) // (the list is the writer's now)
			sources_add(ss, list, cpl_mono_us());

		uint64_t turn = cpl_mono_us();
		if (turn - last_turn > WRITER_STALL_US)
			do_grace(w, turn - last_turn);
		last_turn = turn;
		struct batch b = { &lz, list, prev_n, 0, 0, 0, false, false };
		int rv = 0;
		bool swept = false, handed = false;
		if (list) {
			// the batch's lines (a lease granted by each of
			// thousands of first claims) are written together once
			// it has committed, before any of its answers
			cpl_log_hold(WRITER_LOG_HELD);
			rv = cpl_store_write(w->st, batch_cb, &b);
			if (rv != 0 && b.redo) {
				// (renewals kept in memory are written again
				// by flush, as after a grown map)
				b.nested = true;
				b.redo = false;
				rv = cpl_store_write(w->st, batch_cb, &b);
				pthread_mutex_lock(&w->qmx);
				w->stats.redone++;
				pthread_mutex_unlock(&w->qmx);
			}
			if (lz.done)
				lz.done(lz.arg, rv);
			// (a batch lost: its lines told of what did not
			// happen; the failure is logged below)
			cpl_log_release(rv == 0);
			if (rv)
				LOG(LOG_ERR, "commit", "group commit failed: %s",
				    cpl_strerror(rv));
			if (!(handed = hand_off(w, &b, rv)))
				complete_jobs(list, rv);
		}
		bool due = cpl_mono_us() - last_sweep > WRITER_SWEEP_US;
		if (due && list && !deferred) {
			// jobs that came while this batch ran (a heartbeat among
			// them, judged as of its arrival) go before the sweep: a
			// lease is not expired under a renewal waiting in the
			// queue. Once only, so that a steady stream of jobs does
			// not starve the sweep.
			pthread_mutex_lock(&w->qmx);
			deferred = w->qhead != NULL;
			due = !deferred;
			pthread_mutex_unlock(&w->qmx);
		}
		if (due) {
			do_sweep(w, &lz);
			last_sweep = cpl_mono_us();
			swept = true;
			deferred = false;
		}
		untrimmed += prev_n;
		if (swept && list == NULL && untrimmed >= WRITER_TRIM_JOBS) {
			// idle after a burst: what the burst freed (LMDB's copies
			// of the pages its commits dirtied, decoded requests,
			// replies) glibc keeps in its arenas until asked; give it
			// back, so that the heap a broker keeps does not grow
			// with its largest burst (issue 17)
			untrimmed = 0;
#ifdef __GLIBC__
			uint64_t t0 = cpl_mono_us();
			int gave = malloc_trim(0);
			LOG(LOG_DEBUG, "writer", "idle: heap trimmed (%s) in "
			    "%llu us", gave ? "memory returned" : "nothing to "
			    "return", (unsigned long long)(cpl_mono_us() - t0));
#endif
		}
		// Claims held open look again if a task became runnable or a
		// lease ended, in this batch or this sweep (the sequence moves
		// as jobs run, so only the writer reads it, between batches).
		// That comes after this batch's answers: a claim of it may
		// have been held. Its answers still queued on the completer
		// carry the wake; being given, a recheck follows them.
		uint64_t seq = cpl_store_claimable_seq(w->st);
		bool changed = seq != w->claimable_seen;
		w->claimable_seen = seq;
		pthread_mutex_lock(&w->qmx);
		if (changed && w->ctail) {
			w->ctail->wake = true;
		} else if (changed && w->cbusy) {
			w->recheck = true;
			pthread_cond_signal(&w->ccv);
		} else if (changed) {
			pthread_mutex_unlock(&w->qmx);
			wake_claims(w);
			pthread_mutex_lock(&w->qmx);
		}
		if (list && !handed)
			count_batch(w, rv, b.applied, b.replayed);
		w->stats.sweeps += swept;
		if (stop && w->qhead == NULL) {
			pthread_mutex_unlock(&w->qmx);
			do_flush(w, &lz);
			pthread_mutex_lock(&w->qmx);
			break;
		}
	}
	w->exited = true;
	pthread_mutex_unlock(&w->qmx);
	free(ss);
	return NULL;
}

// ---------------------------------------------------------------- api

int
writer_start(cpl_store *st, writer **out)
{
	writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return CPL_ENOMEM;
	w->st = st;
	w->claimable_seen = cpl_store_claimable_seq(st);
	pthread_mutex_init(&w->qmx, NULL);
	// the writer's waits on qcv are timed on the monotonic clock: a
	// step of the wall clock does not hold a gathering batch
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->qcv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->ccv, NULL);
	pthread_cond_init(&w->cidle, NULL);
	if (pthread_create(&w->cthread, NULL, completer_main, w) != 0) {
		writer_free(w);
		return CPL_ENOMEM;
	}
	w->cstarted = true;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		writer_stop(w);
		writer_free(w);
		return CPL_ENOMEM;
	}
	w->started = true;
	*out = w;
	return 0;
}

int
writer_submit(writer *w, wjob *j)
{
	pthread_mutex_lock(&w->qmx);
	if (w->exited) {
		pthread_mutex_unlock(&w->qmx);
		return CPL_ESHUTDOWN;
	}
	j->next = NULL;
	if (w->qtail)
		w->qtail->next = j;
	else
		w->qhead = j;
	w->qtail = j;
	w->qlen++;
	// a writer gathering a batch is woken by its timeout or a full
	// queue, not by every job
	if (!w->gathering || w->qlen >= WRITER_GATHER_FULL)
		pthread_cond_signal(&w->qcv);
	pthread_mutex_unlock(&w->qmx);
	return 0;
}

void
writer_stop(writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->qmx);
	w->stop = true;
	pthread_cond_broadcast(&w->qcv);
	pthread_mutex_unlock(&w->qmx);
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
	// the completer answers what it has, then ends
	pthread_mutex_lock(&w->qmx);
	w->cstop = true;
	pthread_cond_signal(&w->ccv);
	pthread_mutex_unlock(&w->qmx);
	if (w->cstarted)
		pthread_join(w->cthread, NULL);
	w->cstarted = false;
}

void
writer_on_claimable(writer *w, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&w->qmx);
	w->on_claimable = fn;
	w->on_claimable_arg = arg;
	pthread_mutex_unlock(&w->qmx);
}

void
writer_on_leases(writer *w, const writer_leases *l)
{
	pthread_mutex_lock(&w->qmx);
	w->leases = *l;
	pthread_mutex_unlock(&w->qmx);
}

void
writer_stats_get(writer *w, writer_stats *out)
{
	pthread_mutex_lock(&w->qmx);
	*out = w->stats;
	pthread_mutex_unlock(&w->qmx);
}

void
writer_free(writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_destroy(&w->qmx);
	pthread_cond_destroy(&w->qcv);
	pthread_cond_destroy(&w->ccv);
	pthread_cond_destroy(&w->cidle);
	free(w);
}
