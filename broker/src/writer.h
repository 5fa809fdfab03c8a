// The broker's single writer (internal): every mutation runs on one thread,
// in batches that share one write transaction and one durable commit
// (group commit). Jobs come from any thread; each runs in a nested
// transaction of its batch, so a job that fails undoes only itself, or,
// if it says it may (wjob.direct), in the batch's transaction itself: a
// batch in which such a job fails after it changed something is then run
// again with every job nested. Once
// the batch's commit is done (or has failed) every job of it is completed,
// in order, through its own done callback: the writer knows nothing of
// who submitted the job nor how it is answered. A large batch is completed
// on a second thread (the completer) while the writer runs the next one.
//
// Between batches, and at least every WRITER_SWEEP_US, the writer expires
// leases whose deadline passed and prunes stored replies. When it starts,
// and after a stall, it first gives every lease one TTL of grace.
#ifndef COPAL_BROKER_WRITER_H
#define COPAL_BROKER_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "copal/store.h"

// There is no cap on the jobs of a batch: a batch is every job queued
// when the writer takes the queue.

// How long the idle writer sleeps before it looks whether a sweep is due.
#define WRITER_IDLE_WAIT_MS 250
// How often expired leases are swept and old replies pruned.
#define WRITER_SWEEP_US 1000000u
// After at least this many jobs, the first sweep the writer makes while
// idle returns the heap they freed to the system (malloc_trim).
#define WRITER_TRIM_JOBS 64u
// A writer that did not come round for this long (the process stopped, a
// commit that hung) gives every lease one TTL of grace before its next
// sweep, as it does when it starts: launchers that could not reach it are
// not at fault.
#define WRITER_STALL_US 2000000u
// Under steady load from several clients (wjob.src) a batch waits for
// more jobs WRITER_GATHER_PER_SOURCE_US for each source it took jobs from
// lately (the more of those of this window of WRITER_SOURCE_WINDOW_US and
// those of the one before), at most WRITER_GATHER_US (the latency it
// adds; reached with WRITER_GATHER_SOURCES), or until WRITER_GATHER_FULL
// are queued; with fewer than WRITER_GATHER_MIN_SOURCES, not at all.
// The wait is latency spent on CPU and disk: 25 ms (reached at 500
// sources) against 10 ms took 20-40 % off the writer's CPU per task and
// 28-35 % off the bytes written per task with 512-4,096 launchers, for
// claims answered 9-17 ms later at p50 and 15-22 ms at p99 (p99 28-38
// ms, BENCHMARKS.md).
#define WRITER_GATHER_US 25000u
#define WRITER_GATHER_PER_SOURCE_US 50u
#define WRITER_GATHER_SOURCES (WRITER_GATHER_US / WRITER_GATHER_PER_SOURCE_US)
#define WRITER_SOURCE_WINDOW_US 1000000u
#define WRITER_GATHER_FULL 128u
#define WRITER_GATHER_MIN_SOURCES 16u
// The writer's lines of this level and less severe wait for their batch's
// commit (cpl_log_hold), and go with a batch run again or lost; errors
// are written at once.
#define WRITER_LOG_HELD CPL_LOG_WARN
// The jobs of a batch of at least this many are answered on the writer's
// completer thread while the writer runs the next batch (a smaller batch,
// as a lone client makes, is answered at once, without a thread hop).
#define WRITER_HANDOFF_MIN 8u
// How long replies are kept for resent requests.
#define WRITER_REPLY_KEEP_US 600000000u
// The most replies one sweep prunes.
#define WRITER_PRUNE_MAX 10000u

typedef struct writer writer;
typedef struct wjob wjob;

// The steps of a job. All but done run on the writer thread inside the
// batch's write transaction; a non-zero return of replay or after fails
// the whole batch (nothing of it is committed).
typedef struct wjob_ops {
	// Optional, first: sets *done when the job needs no run (a resent
	// request whose answer is stored); such a job is completed as is.
	int (*replay)(cpl_txn *txn, wjob *j, bool *done);
	// The job, in a nested transaction (or, for a direct job, in the
	// batch's): non-zero undoes what it did, and only that; the batch
	// goes on.
	int (*run)(cpl_txn *txn, wjob *j);
	// Optional, after run (what it does is kept even when run was
	// undone), with run's result.
	int (*after)(cpl_txn *txn, wjob *j, int rv);
	// Optional: the batch's transaction was given up and is run again
	// (a direct job failed after it changed something, or the map was
	// full and has grown): forget what replay, run and after did outside
	// the transaction. Called for every job before each run of its
	// batch but the first.
	void (*reset)(wjob *j);
	// After the commit, outside the transaction and every lock of the
	// writer, on its thread or its completer's: rv is 0 or the error
	// that lost the batch. Called exactly once for every job the writer
	// accepted, in the order the jobs were taken.
	void (*done)(wjob *j, int rv);
} wjob_ops;

struct wjob {
	const wjob_ops *ops;
	void *arg;      // the submitter's
	// where it comes from (a launcher, a client; 0: unknown): a batch
	// waits for more jobs only when many sources were seen lately
	uint32_t src;
	// run may go without a nested transaction of its own
	// (cpl_txn_direct): when it fails it has, nearly always, changed
	// nothing yet. Else the batch is run again, every job nested.
	bool direct;
	wjob *next;     // the writer's queue
};

// Counts, brought up to date after each batch's jobs are completed.
typedef struct writer_stats {
	uint64_t batches;   // write transactions of jobs committed
	uint64_t failed;    // batches lost (their jobs got the error)
	uint64_t applied;   // jobs run in committed batches
	uint64_t replayed;  // jobs answered by replay in committed batches
	uint64_t sweeps;    // lease sweeps run
	uint64_t gathered;  // batches that waited for more jobs
	uint64_t redone;    // batches run again, every job nested
} writer_stats;

// Starts the writer thread on st. Errors: CPL_ENOMEM.
int writer_start(cpl_store *st, writer **out);
// Queues j (from any thread). Errors: CPL_ESHUTDOWN once the writer has
// stopped: j is then not run and not completed.
int writer_submit(writer *w, wjob *j);
// Stops: runs and completes what is queued, then joins the writer's
// thread and its completer's. Jobs submitted later are refused.
void writer_stop(writer *w);
void writer_stats_get(writer *w, writer_stats *out);
// Calls fn(arg) after a commit (of a batch, once its jobs are completed,
// or of a sweep) that may have changed what a claim finds
// (cpl_store_claimable_seq moved): on the writer's thread, or on its
// completer's once it has answered that batch. Set before any job.
void writer_on_claimable(writer *w, void (*fn)(void *), void *arg);
// Renewals kept outside the store (hbtab.h) that the writer must write.
// flush runs first in every write transaction of the writer (all: in a
// sweep, before leases are expired; otherwise it writes only when a
// renewal is due); done runs after that transaction's commit or abort,
// with its result. Set before any job.
typedef struct writer_leases {
	int (*flush)(cpl_txn *txn, void *arg, bool all);
	void (*done)(void *arg, int rv);
	void *arg;
} writer_leases;
void writer_on_leases(writer *w, const writer_leases *l);
// Frees a stopped writer.
void writer_free(writer *w);

#endif
