// copal task store: the task table, its indices and the history log, kept in
// LMDB. This header is the whole API of the store; nothing of LMDB shows.
//
// Caveats (read before use)
//  * One process opens a database for writing at a time: the broker. The
//    store takes an exclusive lock file (copal.lock) at open; a second
//    cpl_store_open() on the same directory fails with CPL_ELOCKED.
//  * All reads and writes happen inside a transaction given to a callback by
//    cpl_store_read() or cpl_store_write(). Pointers into a transaction
//    (cpl_task.spec, event messages, names passed to callbacks) are valid
//    only until the callback that received them returns.
//  * A write callback may be run more than once: when the map is full the
//    store aborts the transaction, grows the map and runs the callback again.
//    Write callbacks must therefore compute their outputs afresh each time.
//  * Any error from LMDB inside a write transaction aborts all of it
//    (nothing is committed). A "refusal" (CPL_EBADSTATE, CPL_ESTALE,
//    CPL_ENOTFOUND, CPL_EINVAL, ...) returned by a mutation function means
//    that function wrote nothing; the callback may go on with other
//    mutations, and what it did before stays in the transaction. The few
//    exceptions are said at their functions.
//  * Never keep a read transaction across slow work (network I/O): LMDB
//    cannot reuse pages while a reader holds an old snapshot.
//  * The database must be on a local filesystem; NFS, Lustre, GPFS, BeeGFS,
//    CIFS/SMB, Ceph and others are refused unless opts.force_netfs is set.
//
// The records of a task's spec and of an app are the wire schema's messages
// (proto/copal.proto), packed; the store and the protocol share one schema.
//
// Errors
// Every function that returns int returns 0 on success and a CPL_E* code
// (copal/common.h, cpl_strerror()) on failure. Each declaration below
// lists the errors the function returns of its own accord, and a callback
// walk returns whatever non-zero value its callback returned. Besides
// those, any call that reads or writes the database may return a backend
// error, mapped from LMDB's:
//   CPL_EMAPFULL   the map is full. cpl_store_write() then grows the map
//                  (doubling it, up to opts.map_max) and runs its callback
//                  again, so it returns this only when the map cannot grow.
//   CPL_EIO        an I/O error, or the disk or quota is full (EIO, ENOSPC,
//                  EDQUOT).
//   CPL_EPANIC     the LMDB environment failed (MDB_PANIC). cpl_store_write()
//                  reopens it and runs its callback once more; while it
//                  cannot be reopened, every transaction fails with this.
//   CPL_ECORRUPT   the database is inconsistent: LMDB found a bad page, or
//                  the store a record or index entry missing or malformed.
//   CPL_ETOOBIG    the transaction has too many dirty pages (MDB_TXN_FULL),
//                  or LMDB refuses a key or value size (MDB_BAD_VALSIZE).
//   CPL_ENOMEM     out of memory.
//   CPL_EINTERNAL  any other LMDB failure.
// Inside a transaction such an error poisons it (see cpl_txn_error()): the
// call that met it and every later call that touches the database return
// that error and do nothing, and the transaction is aborted at its end.
#ifndef COPAL_STORE_H
#define COPAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copal.pb-c.h"
#include "copal/common.h"

#ifdef __cplusplus
extern "C" {
#endif

// ------------------------------------------------------------------ store
typedef struct cpl_store cpl_store;
typedef struct cpl_txn cpl_txn;

typedef struct cpl_store_opts {
	uint64_t map_size;  // initial map size in bytes; 0: 1 GiB
	uint64_t map_max;   // largest map the store grows to; 0: 1 TiB
	bool force_netfs;   // open even on a network filesystem (unsafe)
	bool no_sync;       // do not fsync at commit (tests only: not durable)
	// Clock for broker time in microseconds; NULL: CLOCK_REALTIME.
	// Tests set it to move time forward for lease expiry.
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	// New task uuids time-ordered (version 7, RFC 9562) rather than random
	// (version 4): cheaper creates, longer unique prefixes (uuid.c).
	bool uuid_v7;
	// Random uuids per generation of the uuid index (see UUID_GEN_MAX in
	// store/src/store_impl.h); 0: the default. Tests set it small.
	uint64_t uuid_gen_max;
} cpl_store_opts;

// Opens (creating if needed) the database in directory `dir`, which must
// exist. Checks the filesystem, takes the lock, clears stale readers.
// Errors: CPL_EINVAL (dir or out NULL, dir empty or not a directory, no
// permission to create files in it), CPL_ENOTFOUND (no such directory),
// CPL_ENETFS (on a network filesystem), CPL_ELOCKED (the database is open,
// in this process or another), CPL_EVERSION (not a copal database of this
// version), CPL_EIO (stat, statfs or the lock file failed), CPL_ENOMEM,
// and the backend errors.
int cpl_store_open(const char *dir, const cpl_store_opts *opts,
    cpl_store **out);
// Closes the store. No transaction may be running.
void cpl_store_close(cpl_store *s);

typedef int (*cpl_txn_fn)(cpl_txn *txn, void *arg);

// Runs fn inside one write transaction and commits it durably if fn returns
// 0. If fn returns non-zero, or any store call inside failed at the LMDB
// level, everything is aborted and that error returned. On a full map the
// store grows the map and runs fn again (see Caveats). One writer at a time:
// concurrent calls are serialized.
// Errors: CPL_EINVAL (s or fn NULL), the poisoning error if there is one,
// else fn's non-zero return, else the backend errors of the commit.
int cpl_store_write(cpl_store *s, cpl_txn_fn fn, void *arg);
// Runs fn inside a read-only snapshot. Many may run at once, beside a writer.
// Errors: CPL_EINVAL (s or fn NULL), CPL_EBUSY (all 512 reader slots are
// taken), then as cpl_store_write() (nothing to commit).
int cpl_store_read(cpl_store *s, cpl_txn_fn fn, void *arg);
// A counter that moves whenever a write transaction may have changed what
// a claim finds: a task entered a run queue, or a lease ended. Read after
// a commit to learn whether claims that found nothing should look again
// (it also moves for transactions later undone: a look too many, never
// one too few). Any thread.
uint64_t cpl_store_claimable_seq(cpl_store *s);
// Inside a write transaction: runs fn in a nested transaction. If fn fails,
// only what fn did is undone and its error returned; the outer transaction
// goes on. Used to apply one client request among many in a group commit.
// Errors: CPL_EINVAL (txn or fn NULL, txn read-only), fn's non-zero return,
// or a backend error, which poisons txn as a whole (see cpl_txn_error()).
int cpl_txn_sub(cpl_txn *txn, cpl_txn_fn fn, void *arg);
// Inside a write transaction: runs fn in txn itself, without a nested
// transaction. Cheaper than cpl_txn_sub: LMDB copies every page a nested
// transaction touches that its parent had changed, and merges its list
// of pages into the parent's when it commits, which at hundreds of
// requests per commit is a tenth of the writer's time (BENCHMARKS.md).
// For work that, when it fails, fails before it changed anything: a
// failure that changed nothing leaves txn as it was, and txn goes on.
// One that had changed something cannot be undone alone: *changed is
// set, and the caller must give the transaction up (return an error
// from its cpl_store_write callback) and may run its work again with
// cpl_txn_sub. *changed is false when fn succeeded.
// Errors: CPL_EINVAL (an argument NULL, txn read-only), the error that
// poisoned txn (see cpl_txn_error(); *changed is then false: the whole
// transaction is lost anyway), fn's non-zero return.
int cpl_txn_direct(cpl_txn *txn, cpl_txn_fn fn, void *arg, bool *changed);
// The error that poisoned this transaction (an LMDB-level failure inside
// some store call), or 0. After a failed cpl_txn_sub() it tells whether
// only that part was undone (0) or the whole transaction is lost.
// CPL_EINVAL if txn is NULL.
int cpl_txn_error(const cpl_txn *txn);
// Broker time of this transaction in microseconds since the epoch. Constant
// within a transaction and never smaller than that of an earlier commit.
uint64_t cpl_txn_now(const cpl_txn *txn);

// ------------------------------------------------------------------ tasks
typedef struct cpl_task {
	uint64_t id;
	uint8_t uuid[16];
	cpl_state state;
	// Attempt number: increased by each claim. A claim whose lease ends
	// before the task started (still READY/RESTART_READY) is given back
	// and does not count, so a dying launcher does not use up retries.
	uint32_t attempt;
	uint64_t lease;           // 0: not held by a launcher
	int32_t return_code;
	uint32_t pending_parents; // parents not yet JOB_FINISHED
	int32_t priority;
	uint64_t created_us;
	uint64_t changed_us;      // time of the last state change
	// Attempts cut by their launcher's end (wall time, SIGTERM): they do
	// not count against max_retries (at most 255 of them are free).
	uint32_t cuts;
	// The last run was cut before its timeout handler could run: the
	// launcher that claims the task runs the handler first (issue 22).
	bool timeout_handler_due;
	// Filled only when asked (CPL_GET_SPEC); free with cpl_task_clear().
	Copal__TaskSpec *spec;
} cpl_task;

#define CPL_GET_SPEC 1u

// Creates a task from spec (spec->application must name a registered app;
// spec->parent_ids must name existing tasks). The new task is READY, or
// AWAITING_PARENTS if some parent is unfinished, or PARENT_KILLED if a
// parent failed or was killed; one history event CREATED -> that state is
// written. Ids are monotonic; uuids random (libuuid).
// Errors: CPL_EINVAL (txn NULL or read-only; bad spec: NULL, name or
// application empty, a name over 255 bytes, workdir absolute, with ".." or
// too long, resources out of range, packing on several nodes, max_retries
// over 65535, a duplicate parent), CPL_ENOTFOUND (unknown app or parent),
// CPL_ETOOBIG (packed spec over 1 MiB), CPL_EIO (no random bytes for the
// uuid). The last two poison the transaction.
int cpl_task_create(cpl_txn *txn, const Copal__TaskSpec *spec, uint64_t *id,
    uint8_t uuid[16]);

// Reads a task. With CPL_GET_SPEC in flags, out->spec is unpacked and must
// be freed with cpl_task_clear(). Errors: CPL_EINVAL (txn or out NULL),
// CPL_ENOTFOUND (no such task).
int cpl_task_get(cpl_txn *txn, uint64_t id, unsigned flags, cpl_task *out);
void cpl_task_clear(cpl_task *t);
// Reads a task and its spec's name and workflow only (buffers of
// CPL_SPEC_NAME_MAX + 1), without unpacking the spec: what the history
// and the export need to name each event's task. out->spec is NULL.
// Errors: CPL_EINVAL (an argument NULL), CPL_ENOTFOUND (no such task),
// CPL_ECORRUPT (the stored spec is not a packed spec).
int cpl_task_get_names(cpl_txn *txn, uint64_t id, cpl_task *out,
    char *name, char *workflow);

// Finds a task by a prefix of its uuid in hex (dashes ignored, at least one
// digit). Errors: CPL_EINVAL (an argument NULL; no digit, a character
// other than hex digits and dashes, more than 32 digits), CPL_ENOTFOUND
// (no uuid starts so), CPL_EAMBIGUOUS (several do).
int cpl_task_lookup(cpl_txn *txn, const char *uuid_prefix, uint64_t *id);

// Formats a uuid in its 36-character canonical form (buf of 37 bytes).
void cpl_uuid_format(const uint8_t uuid[16], char buf[37]);

// A launcher's report of one state change of a task it holds.
typedef struct cpl_report {
	uint64_t task_id;
	uint64_t lease;     // lease under which the task was claimed
	uint32_t attempt;   // attempt number returned by the claim
	cpl_state to;
	int32_t return_code;
	const char *message; // may be NULL; stored in the history event
	const char *node;    // where it ran, e.g. "nid001/3" (node/slot);
	                     // may be NULL; at most 255 bytes are kept
	// RUN_TIMEOUT because the launcher ended (its wall time, SIGTERM),
	// not the task's own timeout: not a failure. The attempt does not
	// count against max_retries, the task goes back to RESTART_READY
	// (whatever auto_timeout_retry says), and with a timeout handler the
	// handler runs at its next claim (cpl_task.timeout_handler_due).
	bool cut;
	uint64_t event_us;   // the launcher's clock at the change (0: none);
	                     // kept clamped: not after the commit, not
	                     // before the task's previous event, ignored if
	                     // more than CPL_EVENT_SKEW_US from the commit
} cpl_report;

// A launcher's event time further than this from the broker's clock is
// not kept (one day).
#define CPL_EVENT_SKEW_US (86400ull * 1000000ull)

// A launcher started a RUNNING task's process again on the spot (a fast
// failure, rep->return_code its exit): one history event RUNNING ->
// RUNNING with rep's message and node; the state does not change.
// Errors: as cpl_task_report; CPL_EBADSTATE (the task is not RUNNING, or
// rep->to is not RUNNING).
int cpl_task_report_restart(cpl_txn *txn, const cpl_report *rep);
// Applies one report. Errors: CPL_EINVAL (txn or r NULL, txn read-only,
// r->to not a state), CPL_ENOTFOUND (no such task), CPL_ESTALE (the task is
// not held under r->lease and r->attempt, or that lease is gone),
// CPL_EEXPIRED (the lease is past its deadline), CPL_EBADSTATE (a launcher
// may not make that move). Bookkeeping follows in the same transaction:
// JOB_FINISHED releases children; FAILED/killed cascades PARENT_KILLED;
// RUN_TIMEOUT without a timeout handler applies the retry policy
// (auto_timeout_retry and max_retries) -> RESTART_READY or FAILED;
// RUN_ERROR without an error handler -> FAILED; RESTART_READY beyond
// max_retries -> FAILED. Reaching a state the launcher is done with
// (RESTART_READY, JOB_FINISHED, FAILED, killed) releases the lease.
int cpl_task_report(cpl_txn *txn, const cpl_report *r);

// A user's state change (copal modify ID state S). Same bookkeeping as a
// report. A task held by a launcher may only be killed (use cpl_task_kill);
// other changes to it are refused with CPL_EBUSY.
// Errors: CPL_EINVAL (txn NULL or read-only, to not a state), CPL_ENOTFOUND
// (no such task), CPL_EBUSY, CPL_EBADSTATE (a user may not make that move;
// to USER_KILLED for a task already final).
int cpl_task_set_state(cpl_txn *txn, uint64_t id, cpl_state to,
    const char *message);

// Kills a task (USER_KILLED) unless it is already final; its unfinished
// descendants become PARENT_KILLED. If it was held by a launcher, the kill
// is queued as a notice for that lease (see cpl_lease_take_notices).
// *killed (may be NULL) gets the number of tasks that changed state (0 for
// a task already final: not an error).
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOTFOUND (no such task).
int cpl_task_kill(cpl_txn *txn, uint64_t id, const char *message,
    uint64_t *killed);

// After a user restarted task id (copal modify state RESTART_READY
// --recursive): its PARENT_KILLED descendants whose parents are all
// alive again (none FAILED or killed) go back, breadth first, through
// RESTART_READY to AWAITING_PARENTS (or stay runnable if every parent has
// finished), each with history events naming task id. *revived (may be
// NULL) gets how many. Errors: CPL_EINVAL (txn NULL or read-only),
// CPL_ENOTFOUND (no such task), CPL_ENOMEM.
int cpl_task_revive(cpl_txn *txn, uint64_t id, uint64_t *revived);

// Replaces a task's spec (copal modify of a field). Indices follow the new
// workflow, app and priority. Parents cannot change here (see
// cpl_dep_add); spec->parent_ids is ignored and the stored list kept.
// Errors: CPL_EINVAL (txn NULL or read-only; a bad spec as for
// cpl_task_create), CPL_ENOTFOUND (no such task, unknown app), CPL_EBUSY
// (held by a launcher), CPL_ETOOBIG (packed spec over 1 MiB).
int cpl_task_update_spec(cpl_txn *txn, uint64_t id, const Copal__TaskSpec *spec);
// The same for a task held by lease (nonzero): a stage of the task (its
// handler, preprocess or postprocess) edits its own spec; the launcher
// reads it again after a preprocess, else sees it at the next claim. Errors as above, and CPL_EBUSY
// (held by another lease), CPL_ESTALE (not held).
int cpl_task_update_spec_held(cpl_txn *txn, uint64_t id,
    const Copal__TaskSpec *spec, uint64_t lease);

// Deletes a task, its index entries and its links. Its history stays.
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOTFOUND (no such task),
// CPL_EBUSY (held by a launcher), CPL_EINUSE (it has children: delete them
// first), CPL_ENOMEM.
int cpl_task_delete(cpl_txn *txn, uint64_t id);

// Adds a dependency: child waits for parent. The child must not have
// started (CREATED, AWAITING_PARENTS, READY or RESTART_READY, not held).
// Errors: CPL_EINVAL (txn NULL or read-only, parent == child),
// CPL_ENOTFOUND (either task), CPL_EEXISTS (the link exists), CPL_EBUSY
// (child held by a launcher), CPL_EBADSTATE (child already started),
// CPL_ECYCLE (child is an ancestor of parent), CPL_ENOMEM, CPL_ETOOBIG (the
// child's spec would pass 1 MiB; this one poisons the transaction).
int cpl_dep_add(cpl_txn *txn, uint64_t parent, uint64_t child);

// Removes a dependency (issue 22). The child must not have started, as for
// cpl_dep_add. A child left with no unfinished parent goes from
// AWAITING_PARENTS to READY ("parent X removed"); otherwise the removal is
// an event with no change of state. Errors: CPL_EINVAL, CPL_ENOTFOUND (no
// such task, or parent is not a parent of child), CPL_EBUSY /
// CPL_EBADSTATE (the child has started), CPL_ENOMEM.
int cpl_dep_remove(cpl_txn *txn, uint64_t parent, uint64_t child);
// Replaces child's parents by ids[0..n) (n may be 0): parents not in ids
// are removed, new ones added (cpl_dep_remove, cpl_dep_add: their events
// and state changes), all or nothing. Errors: those of both, and
// CPL_EINVAL (a duplicate, or child itself, in ids), CPL_ECYCLE.
int cpl_dep_replace(cpl_txn *txn, uint64_t child, const uint64_t *ids,
    size_t n);
// Kills a task and all its descendants (copal killjob --recursive, issue
// 22): each unfinished one becomes USER_KILLED, as Balsam's kill of a
// subtree; a failure's descendants still become PARENT_KILLED. Held tasks
// get kill notices as for cpl_task_kill. *killed (may be NULL): how many
// changed state. Errors: CPL_EINVAL, CPL_ENOTFOUND, CPL_ENOMEM.
int cpl_task_kill_tree(cpl_txn *txn, uint64_t id, const char *message,
    uint64_t *killed);

// Calls fn for each child (or parent) id of a task, in id order. A non-zero
// return from fn stops the walk and is returned. A task without links (or
// no task) has none. Errors: CPL_EINVAL (txn or fn NULL).
typedef int (*cpl_id_fn)(uint64_t id, void *arg);
int cpl_task_children(cpl_txn *txn, uint64_t id, cpl_id_fn fn, void *arg);
int cpl_task_parents(cpl_txn *txn, uint64_t id, cpl_id_fn fn, void *arg);

// ------------------------------------------------------------------ queries
typedef struct cpl_filter {
	uint32_t states;          // bit (1u << state) per state; 0: any state
	const char *workflow;     // NULL: any
	const char *application;  // NULL: any
	const char *name;         // exact task name; NULL: any
	const char *uuid_prefix;  // hex digits; NULL: any
	uint32_t min_nodes;       // num_nodes >= this; 0: no bound
	uint32_t max_nodes;       // num_nodes <= this; 0: no bound
	// "key=value" tags a task must all carry (NULL/0: any); the walk
	// then goes through the tag index of the first
	const char *const *tags;
	size_t ntags;
	uint64_t batch_job;       // tasks that ran in this batch job; 0: any
} cpl_filter;

typedef int (*cpl_task_fn)(const cpl_task *t, void *arg);

// Calls fn for tasks matching f with id > after_id, in id order, at most
// limit (0: no limit) of them. flags as for cpl_task_get (the spec passed
// to fn is freed by the store after fn returns). The walk uses the most
// selective index (uuid prefix, state, workflow, app). A non-zero return
// from fn stops the walk and is returned. *more (may be NULL) tells whether
// more matching tasks follow the last one given. An unknown workflow or
// application matches nothing (not an error).
// Errors: CPL_EINVAL (txn or fn NULL, f->states with bits of no state, a
// bad uuid_prefix as for cpl_task_lookup), CPL_ENOMEM.
int cpl_query(cpl_txn *txn, const cpl_filter *f, uint64_t after_id,
    size_t limit, unsigned flags, cpl_task_fn fn, void *arg, bool *more);

// Whether task id carries every one of tags[0..ntags) (*has; false for
// an unknown id): point lookups in the tag index. Errors: CPL_EINVAL.
int cpl_task_has_tags(cpl_txn *txn, uint64_t id, const char *const *tags,
    size_t ntags, bool *has);

// Number of tasks carrying a tag, by state (counts[CPL_NSTATES], added
// to): O(1), the tag's counters. Errors: CPL_EINVAL (an argument NULL, a
// malformed tag).
int cpl_count_tag(cpl_txn *txn, const char *tag, uint64_t *counts);

// Number of tasks in each state, O(1): counts[CPL_NSTATES].
// Errors: CPL_EINVAL (txn or counts NULL).
int cpl_count_states(cpl_txn *txn, uint64_t counts[CPL_NSTATES]);
// Number of tasks in one state, O(1); 0 if txn is NULL or s not a state.
uint64_t cpl_count_state(cpl_txn *txn, cpl_state s);

// Calls fn(name, ntasks) for each workflow that has tasks, in name order.
// Errors: CPL_EINVAL (txn or fn NULL), fn's non-zero return.
typedef int (*cpl_name_count_fn)(const char *name, uint64_t n, void *arg);
int cpl_workflow_list(cpl_txn *txn, cpl_name_count_fn fn, void *arg);

// ------------------------------------------------------------------ apps
// Registers an app (name and executable required).
// Errors: CPL_EINVAL (txn or app NULL, txn read-only, name empty or over
// 255 bytes, executable empty), CPL_EEXISTS (registered, and not replace),
// CPL_ETOOBIG (packed app over 1 MiB).
int cpl_app_put(cpl_txn *txn, const Copal__App *app, bool replace);
// Reads an app; *out is freed with copal__app__free_unpacked(*out, NULL).
// Errors: CPL_EINVAL (an argument NULL, name empty or over 255 bytes),
// CPL_ENOTFOUND (no such app).
int cpl_app_get(cpl_txn *txn, const char *name, Copal__App **out);
// Calls fn for each app in name order (the app is freed after fn returns).
// Errors: CPL_EINVAL (txn or fn NULL), fn's non-zero return.
typedef int (*cpl_app_fn)(const Copal__App *app, uint64_t ntasks, void *arg);
int cpl_app_list(cpl_txn *txn, cpl_app_fn fn, void *arg);
// Removes an app. Errors: CPL_EINVAL (txn or name NULL, txn read-only, name
// empty or over 255 bytes), CPL_ENOTFOUND (no such app), CPL_EINUSE (tasks
// refer to it).
int cpl_app_delete(cpl_txn *txn, const char *name);

// ------------------------------------------------------------------ batch jobs
// Launcher jobs submitted to a batch scheduler. A handful per campaign: one
// record each, keyed by id; the broker checks moves between their states.
// Records a new job in BJ_SUBMITTING: gives it the next id and the times;
// *out (freed with copal__batch_job__free_unpacked) is the stored record.
// Errors: CPL_EINVAL (txn or job NULL, txn read-only; scheduler or job_mode
// empty, a name over 255 bytes, script or sched_flags over 4096, message
// over 8192; nodes 0 or over 65535; wall_minutes 0), CPL_ETOOBIG (packed
// record over 1 MiB), CPL_ENOMEM (no copy for *out: the job is stored).
int cpl_bjob_add(cpl_txn *txn, const Copal__BatchJob *job,
    Copal__BatchJob **out);
// Reads one; *out is freed with copal__batch_job__free_unpacked.
// Errors: CPL_EINVAL (txn or out NULL), CPL_ENOTFOUND (no such job).
int cpl_bjob_get(cpl_txn *txn, uint64_t id, Copal__BatchJob **out);
// A change to a batch job: a move to a state and new texts.
typedef struct cpl_bjob_change {
	uint64_t id;
	Copal__BatchJobState state; // required; may be the current state
	const char *scheduler_id;   // NULL or "": unchanged
	const char *message;        // NULL or "": unchanged
	const char *sched_state;    // NULL or "": unchanged
	const char *script;         // NULL or "": unchanged
	const char *sched_reason;   // NULL or "": unchanged
} cpl_bjob_change;
// Applies a change; *out as for cpl_bjob_add. The move to c->state is
// checked with cpl_bjob_move_ok(); a move to RUNNING sets started_us, to a
// final state ended_us. Errors: CPL_EINVAL (txn or c NULL, txn read-only,
// state BJ_UNSPECIFIED, a text too long as for cpl_bjob_add),
// CPL_ENOTFOUND (no such job), CPL_EBADSTATE (move not allowed),
// CPL_ETOOBIG, CPL_ENOMEM (as for cpl_bjob_add).
int cpl_bjob_update(cpl_txn *txn, const cpl_bjob_change *c,
    Copal__BatchJob **out);
// Calls fn for each job in id order (freed after fn returns).
// Errors: CPL_EINVAL (txn or fn NULL), fn's non-zero return.
typedef int (*cpl_bjob_fn)(const Copal__BatchJob *job, void *arg);
int cpl_bjob_list(cpl_txn *txn, cpl_bjob_fn fn, void *arg);
// What the launchers of batch job id did: distinct tasks they moved to
// RUNNING, tasks RUNNING under them now, runs that ended in RUN_ERROR or
// RUN_TIMEOUT (any pointer may be NULL; all 0 for a job that ran none).
// Errors: CPL_EINVAL (txn NULL).
int cpl_bjob_counts(cpl_txn *txn, uint64_t id, uint64_t *ran,
    uint64_t *running, uint64_t *failed);
// Whether task id was RUNNING in batch job bjob.
bool cpl_bjob_ran(cpl_txn *txn, uint64_t bjob, uint64_t id);
// The batch job a lease was taken in (cpl_lease_grant_job; kept after the
// lease ends) and the scheduler's id for it (sid may be NULL).
// Errors: CPL_EINVAL, CPL_ENOTFOUND (no such lease, or one taken by a
// launcher started by hand).
int cpl_lease_batch_job(cpl_txn *txn, uint64_t lease, uint64_t *bjob,
    char *sid, size_t sidlen);
// Whether a batch job may move from one state to another.
bool cpl_bjob_move_ok(Copal__BatchJobState from, Copal__BatchJobState to);

// ------------------------------------------------------------------ backlog
// The runnable backlog (READY/RESTART_READY, unclaimed), walked in one pass
// of the run queue, against the limits of the queues a policy allows.
typedef struct cpl_queue_limit {
	uint32_t max_nodes;
	uint32_t gpus_per_node;
	uint32_t max_minutes; // 0: none
} cpl_queue_limit;
typedef struct cpl_backlog {
	uint64_t tasks;       // runnable tasks that fit some queue
	uint64_t node_units;  // their footprint in CPL_NODE_UNITS per node
	uint32_t max_nodes;   // the largest num_nodes among them
	uint32_t max_minutes; // the largest wall time among them
	uint64_t unfit;       // runnable tasks that no queue fits
	uint64_t *unfit_ids;  // caller's array of max_unfit; filled in id order
	size_t max_unfit;
	size_t nunfit_ids;
} cpl_backlog;
// workflow: NULL or "" for all; an unknown one has no backlog. With
// nlimits == 0 every task fits. Errors: CPL_EINVAL (txn or out NULL,
// limits NULL with nlimits, unfit_ids NULL with max_unfit).
int cpl_backlog_get(cpl_txn *txn, const char *workflow,
    const cpl_queue_limit *limits, size_t nlimits, cpl_backlog *out);

// ------------------------------------------------------------------ leases
// A launcher holds one lease; every task it claims is held under it.
// Renewing the lease (heartbeat) renews all its tasks at once.
typedef struct cpl_lease {
	uint64_t id;
	uint64_t deadline_us;
	uint32_t ttl_ms;
	uint64_t created_us;
	uint32_t ntasks;      // tasks held now
	char owner[128];      // launcher description, NUL-terminated
} cpl_lease;

// Grants a new lease with a deadline ttl_ms from now. Lease ids are never
// reused. owner (may be NULL) is kept up to 127 bytes.
// Errors: CPL_EINVAL (txn or id NULL, txn read-only, ttl_ms 0).
int cpl_lease_grant(cpl_txn *txn, const char *owner, uint32_t ttl_ms,
    uint64_t *id);
// Moves the deadline to now + ttl_ms (0: keep the lease's ttl).
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOTFOUND / CPL_EEXPIRED
// (the lease is gone or past its deadline: the launcher must stop its tasks
// and get a new lease). Before CPL_EEXPIRED the lease is ended in txn as by
// cpl_lease_release (an exception to "a refusal writes nothing").
int cpl_lease_renew(cpl_txn *txn, uint64_t id, uint32_t ttl_ms,
    uint64_t *deadline_us);
// Same for a renewal that waited waited_us before txn (behind a writer busy
// with other work): it is judged as of its arrival, so the lease is past
// its deadline only if it was so waited_us before txn's time.
int cpl_lease_renew_waited(cpl_txn *txn, uint64_t id, uint32_t ttl_ms,
    uint64_t waited_us, uint64_t *deadline_us);
// For renewals kept in memory and written later (the broker's heartbeats):
// reads lease id's stored deadline and TTL, and whether notices wait for
// it, without writing. Errors: CPL_EINVAL, CPL_ENOTFOUND, CPL_ENOMEM.
int cpl_lease_peek(cpl_txn *txn, uint64_t id, uint64_t *deadline_us,
    uint32_t *ttl_ms, bool *notices);
// Writes such a renewal: the stored deadline becomes deadline_us unless it
// is later already (a deadline never goes back), the TTL ttl_ms.
// Errors: CPL_EINVAL, CPL_ENOTFOUND (the lease has ended).
int cpl_lease_extend(cpl_txn *txn, uint64_t id, uint64_t deadline_us,
    uint32_t ttl_ms);
// A sign of life other than a heartbeat (a launcher's reports): renews
// lease id by its stored TTL if its deadline has less than two thirds of
// the TTL left, so that a lease is written at most once a third of its
// TTL however often its launcher reports. *deadline_us: the deadline
// after it. Errors: CPL_EINVAL, CPL_ENOTFOUND (ended), CPL_EEXPIRED (past
// its deadline: nothing is written; the sweep or a heartbeat ends it).
int cpl_lease_touch(cpl_txn *txn, uint64_t id, uint64_t *deadline_us);
// Reads a live lease (one past its deadline but not yet expired too).
// Errors: CPL_EINVAL (txn or out NULL), CPL_ENOTFOUND, CPL_ENOMEM.
int cpl_lease_get(cpl_txn *txn, uint64_t id, cpl_lease *out);
// cpl_lease_grant for a launcher that runs in batch job bjob (0: none)
// whose scheduler calls it sched_id (NULL or at most 127 bytes): the tasks
// the lease moves to RUNNING are recorded under the job (cpl_filter
// batch_job, cpl_bjob_counts). Errors: as cpl_lease_grant; CPL_EINVAL
// (sched_id too long).
int cpl_lease_grant_job(cpl_txn *txn, const char *owner, uint32_t ttl_ms,
    uint64_t bjob, const char *sched_id, uint64_t *id);
// Ends every live lease taken in batch job bjob (the job is gone, its
// launchers with it), as cpl_lease_release: unstarted claims go back to
// the queue, RUNNING tasks become RUN_TIMEOUT with message msg (NULL:
// "lease expired") and their policy applies. *nleases and *ntasks (may
// be NULL) count what was ended. Errors: CPL_EINVAL (bjob 0, read-only).
int cpl_lease_end_bjob(cpl_txn *txn, uint64_t bjob, const char *msg,
    uint64_t *nleases, uint64_t *ntasks);
// Ends a lease now, as if it expired (see cpl_lease_expire).
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOTFOUND (never granted
// or already ended), CPL_ENOMEM.
int cpl_lease_release(cpl_txn *txn, uint64_t id);
// Expires every lease whose deadline is before now. Tasks claimed but not
// reported started go back to the run queue; the claim stays counted in
// their attempt number and is an event of their history ("returned: lease
// expired, attempt N", from and to their state), since their launcher may
// have started them; tasks that had started (STAGED_IN and later) become RUN_TIMEOUT and the
// retry policy applies.
// *nleases and *ntasks (may be NULL) get what was expired.
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOMEM.
int cpl_lease_expire(cpl_txn *txn, uint64_t *nleases, uint64_t *ntasks);
// One TTL of grace for every lease, for a broker that could not hear its
// launchers (it was down, or stalled): a deadline before now + ttl is moved
// there. *n (may be NULL) gets the number of leases moved.
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOMEM.
int cpl_lease_grace(cpl_txn *txn, uint64_t *n);
// The owner a lease was granted to, also after the lease ended (for the
// history: which launcher ran what), cut to fit buf.
// Errors: CPL_EINVAL (txn or buf NULL, len 0), CPL_ENOTFOUND (never
// granted).
int cpl_lease_owner(cpl_txn *txn, uint64_t id, char *buf, size_t len);
// Calls fn for each live lease in id order.
// Errors: CPL_EINVAL (txn or fn NULL), CPL_ENOMEM, fn's non-zero return.
typedef int (*cpl_lease_fn)(const cpl_lease *l, void *arg);
int cpl_lease_list(cpl_txn *txn, cpl_lease_fn fn, void *arg);
// Takes (removes and returns through fn) the kill notices queued for a lease
// (none for an unknown lease). A non-zero return from fn stops and is
// returned; the notices given to fn so far, that one too, stay removed.
// Errors: CPL_EINVAL (txn or fn NULL, txn read-only), CPL_ENOMEM.
int cpl_lease_take_notices(cpl_txn *txn, uint64_t id, cpl_id_fn fn, void *arg);

// ------------------------------------------------------------------ claims
// Node capacity is measured in units of 1/CPL_NODE_UNITS of a node
// (copal/common.h).

typedef struct cpl_node_cap {
	uint32_t free_units; // 0..CPL_NODE_UNITS (CPL_NODE_PARTS with parts)
	uint32_t free_gpus;
} cpl_node_cap;

// The order of tasks of equal priority in a claim: oldest first (fifo), or
// largest num_nodes x wall_time_minutes first, oldest of equal size first
// (long_large_first: big and long tasks start at once and small ones
// backfill the nodes left over).
typedef enum cpl_claim_order {
	CPL_ORDER_FIFO = 0,
	CPL_ORDER_LONG_LARGE_FIRST = 1,
} cpl_claim_order;

typedef struct cpl_capacity {
	uint32_t max_tasks;         // stop after this many (required, > 0)
	cpl_node_cap *nodes;        // per node; updated in place as tasks are placed
	size_t nnodes;
	uint32_t remaining_minutes; // 0: no wall-time limit
	const char *workflow;       // NULL: any workflow
	uint32_t max_task_nodes;    // tasks of more nodes are skipped; 0: no bound
	// "key=value" tags a task must all carry (NULL/0: any): the claim
	// walks the runnable tasks of the first tag, in priority order
	const char *const *tags;
	size_t ntags;
	bool parts;                 // free_units are in 1/CPL_NODE_PARTS of a
	                            // node (exact packing, cpl_packing_parts)
	cpl_claim_order order;      // after priority: oldest or largest first
} cpl_capacity;

// Called for each claimed task. `nodes` lists the indexes into cap->nodes
// the task was placed on (n entries). t->attempt is the attempt number that
// reports for this task must carry.
typedef int (*cpl_claim_fn)(const cpl_task *t, const uint32_t *nodes,
    size_t n, void *arg);

// Claims runnable tasks (READY or RESTART_READY, not held) in priority order
// (higher first, then by cap->order), taking only those that fit the
// capacity.
// Each claimed task is held by the lease and its attempt number increased.
// fn may be NULL; a non-zero return from it stops the claim, is returned
// and poisons the transaction (the claims made would commit unreported).
// An unknown cap->workflow claims nothing (not an error).
// Errors: CPL_EINVAL (txn NULL or read-only, cap NULL, max_tasks 0, nodes
// NULL with nnodes, nnodes over 65535, a node's free_units over
// CPL_NODE_UNITS, or CPL_NODE_PARTS with parts), CPL_ENOTFOUND / CPL_EEXPIRED (lease 0 or gone / past its
// deadline), CPL_ENOMEM.
int cpl_claim(cpl_txn *txn, uint64_t lease, cpl_capacity *cap,
    cpl_claim_fn fn, void *arg, size_t *nclaimed);

// ------------------------------------------------------------------ history
typedef struct cpl_event {
	uint64_t seq;
	uint64_t task_id;
	cpl_state from;
	cpl_state to;
	uint64_t time_us;
	uint32_t attempt;
	uint64_t lease;
	int32_t return_code;
	const char *message;  // NUL-terminated, valid during the callback
	const char *node;     // as reported ("" if none), same validity
	// Stages this move of a launcher passed over (1u << state): READY ->
	// RUNNING skips STAGED_IN and PREPROCESSED when there was nothing to
	// stage in and no preprocess, RUN_DONE -> JOB_FINISHED POSTPROCESSED.
	unsigned skipped;
	// when it happened: the launcher's clock for its reports (see
	// cpl_report.event_us), else time_us (the commit time, log order)
	uint64_t event_us;
	const char *user;     // who caused it ("" if not recorded), same
} cpl_event;

typedef int (*cpl_event_fn)(const cpl_event *e, void *arg);

// A non-zero return from fn stops the walks below and is returned.

// Events of one task in order (also of a deleted task; none of an unknown
// one). Errors: CPL_EINVAL (txn or fn NULL), CPL_ENOMEM.
int cpl_history_task(cpl_txn *txn, uint64_t id, cpl_event_fn fn, void *arg);
// All events with seq > after_seq in order, at most limit (0: all).
// Errors: CPL_EINVAL (txn or fn NULL), CPL_ENOMEM.
int cpl_history_scan(cpl_txn *txn, uint64_t after_seq, size_t limit,
    cpl_event_fn fn, void *arg);
// The first event seq whose time is >= time_us (binary search on the log);
// one past the last if none. Errors: CPL_EINVAL (txn or seq NULL).
int cpl_history_seek_time(cpl_txn *txn, uint64_t time_us, uint64_t *seq);
// The user whose request a write transaction runs (NULL or "": none):
// every event it writes from now on records the name, cut to
// CPL_EVENT_USER_MAX bytes. The caller keeps user alive until the
// transaction ends or the next call.
#define CPL_EVENT_USER_MAX 64
void cpl_txn_set_user(cpl_txn *txn, const char *user);
// Appends a free-form event (e.g. a note by a user) without a state change.
// message may be NULL; at most 8192 bytes are kept.
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOTFOUND (no such task).
int cpl_history_note(cpl_txn *txn, uint64_t id, const char *message);

// ------------------------------------------------------------------ replies
// Stored replies of applied requests, so that a request resent by a client
// (same client id, request id and body) gets the first reply and is not applied twice, even
// across a broker restart. Written in the same transaction as the request's
// effects.

// A request's identity (copal.proto, Request): the client's 16 random
// bytes (NULL for a request without them: one namespace shared by all such
// requests), its sequence number, and a digest of its body.
#define CPL_CLIENT_ID_LEN 16
#define CPL_DIGEST_LEN 16
typedef struct cpl_reqkey {
	const uint8_t *client;           // CPL_CLIENT_ID_LEN bytes, or NULL
	uint64_t id;                     // not 0
	uint8_t digest[CPL_DIGEST_LEN];  // of the request's body
} cpl_reqkey;

// Finds the reply stored for the request k. *data is valid until the
// transaction ends, or in a write transaction until its next change:
// copy it before writing. Errors: CPL_EINVAL (an argument NULL), CPL_ENOTFOUND,
// CPL_EREUSED (a reply is stored under k's client and id for a request
// with another digest).
int cpl_reply_get(cpl_txn *txn, const cpl_reqkey *k, const void **data,
    size_t *len);
// Stores the reply of k with k's digest (replacing an older one). data
// must not point into the store (an older reply's bytes are deleted
// first).
// Errors: CPL_EINVAL (txn NULL or read-only, data NULL with len),
// CPL_ETOOBIG (len over 64 MiB).
int cpl_reply_put(cpl_txn *txn, const cpl_reqkey *k, const void *data,
    size_t len);
// Forgets replies stored before older_than_us, at most max of them;
// *n (may be NULL) gets how many.
// Errors: CPL_EINVAL (txn NULL or read-only), CPL_ENOMEM.
int cpl_reply_prune(cpl_txn *txn, uint64_t older_than_us, size_t max,
    size_t *n);

// ------------------------------------------------------------------ upkeep
typedef struct cpl_store_stats {
	uint64_t ntasks;
	uint64_t nevents;
	uint64_t map_size;     // current map size in bytes
	uint64_t used_bytes;   // pages in use * page size
	uint64_t file_bytes;   // size of data.mdb
} cpl_store_stats;

// Errors: CPL_EINVAL (s or out NULL), those of cpl_store_read().
int cpl_store_stats_get(cpl_store *s, cpl_store_stats *out);

// ------------------------------------------------------------------ the file
// (dbfile.c: copal db stats, copal db compact)
typedef struct cpl_db_table {
	char name[16];       // "" ends the list
	uint64_t entries;
	uint64_t pages;      // branch, leaf and overflow pages
	uint32_t depth;
} cpl_db_table;

typedef struct cpl_db_stats {
	uint64_t file_bytes;  // size of data.mdb
	uint64_t disk_bytes;  // its blocks on disk
	uint64_t map_size;    // the map the writer set
	uint64_t page_size;
	uint64_t last_pgno;   // the highest page in use
	uint64_t used_bytes;  // (last_pgno + 1) * page_size
	uint64_t free_pages;  // pages on the freelist: reusable, inside used
	uint64_t txnid;       // the last committed transaction
	uint32_t readers;     // reader slots in use (this one's included)
	uint64_t ntasks;
	uint64_t nevents;
	uint64_t archived_events; // events removed by copal db archive
	uint64_t counts[CPL_NSTATES];
	uint32_t ntables;
	cpl_db_table tables[48]; // [0] the freelist, then the named tables
} cpl_db_stats;

// Statistics of the database in dir, read from a snapshot through a
// read-only environment of its own: safe beside a running broker (LMDB
// readers of other processes), without the store's lock.
// Errors: CPL_EINVAL, CPL_ENOTFOUND (no data.mdb), the backend errors.
int cpl_db_stats_get(const char *dir, cpl_db_stats *out);

// Compacts the database in dir: LMDB's compacting copy (free pages left
// out, pages renumbered) into data.mdb.compact, fsync'd, then renamed over
// data.mdb, and LMDB's lock file removed. Needs the database to itself:
// takes the store's lock (copal.lock). Before the rename nothing of the
// database changes; a copy left by a crash is removed by the next call.
// *before, *after (may be NULL): data.mdb's size; why (may be NULL): the
// reason of a failure. Errors: CPL_EINVAL, CPL_ENOTFOUND (no data.mdb),
// CPL_ELOCKED (open in another process: a broker runs), CPL_EIO, the
// backend errors.
int cpl_db_compact(const char *dir, uint64_t *before, uint64_t *after,
    char *why, size_t len);

// ------------------------------------------------------------------ archive
// (archive.c: copal db archive)

// Whether task id may leave the store for an archive (*ok): it is final
// (JOB_FINISHED, FAILED, USER_KILLED or PARENT_KILLED) and not held, its
// last event and last change are before before_us, it is of workflow wf
// (NULL or "": any), and so is every one of its children, recursively
// (at most 64 levels deep). *last_seq (may be NULL): the seq of its last
// event. An unknown workflow: *ok false. Errors: CPL_EINVAL (txn or ok
// NULL), CPL_ENOTFOUND (no such task), CPL_ENOMEM.
int cpl_archive_eligible(cpl_txn *txn, uint64_t id, uint64_t before_us,
    const char *wf, bool *ok, uint64_t *last_seq);
// Removes a final task with its whole history: its records, every index
// entry (state, uuid, workflow, app, tags, batch job's tasks and their
// count of tasks run, name counts), its links to its parents, and its
// events; *nevents (may be
// NULL) gets how many events went. The event log keeps a count of the
// events removed (its gaps). Errors: CPL_EINVAL (txn NULL or read-only),
// CPL_ENOTFOUND (no such task), CPL_EBADSTATE (not final), CPL_EBUSY
// (held), CPL_EINUSE (it has children: purge them first), CPL_ENOMEM;
// a refusal writes nothing.
int cpl_task_purge(cpl_txn *txn, uint64_t id, uint64_t *nevents);

// Rebuilds every index and counter from the primary records in memory and
// compares them with what is stored. Returns 0 if consistent, CPL_ECORRUPT
// otherwise with a description of the first differences in report (may be
// NULL; cut to len bytes).
// Errors: CPL_ECORRUPT, CPL_EINVAL (s NULL), CPL_ENOMEM, those of
// cpl_store_read().
int cpl_store_check(cpl_store *s, char *report, size_t len);
// The same inside a transaction, over what it sees: a write transaction's
// own changes too, before they are committed (the fuzzing harness checks
// every mutation so, then aborts it). Errors: as cpl_store_check, and the
// error that poisoned txn, if one did (nothing is checked then).
int cpl_txn_check(cpl_txn *txn, char *report, size_t len);

#ifdef __cplusplus
}
#endif
#endif // COPAL_STORE_H
