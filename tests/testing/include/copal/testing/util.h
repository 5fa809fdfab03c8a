// copal/testing/util.h: helpers of the store's unit tests, built once in
// the copal_testing library (tests/testing/).
//
//   #include "copal/testing/util.h"      (includes cmocka itself)
//
// What is here:
//  * assertion macros that print the copal error name and message
//    (TU_OK, TU_ERR, TU_REFUSED, TU_STATE);
//  * a fixture (tu_env) with a fresh store in its own mkdtemp directory under
//    /tmp, a controllable fake clock, and a teardown that runs
//    cpl_store_check() before removing the directory;
//  * builders for a TaskSpec and an App;
//  * one-call wrappers that run a single store operation in its own write
//    (or read) transaction, so that tests read as a sequence of steps.
//
// The helpers that "fail the test" do so with cmocka's fail(): call them
// only from the thread running the test, never inside a store callback.
#ifndef COPAL_TESTING_UTIL_H
#define COPAL_TESTING_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>

#include "copal/store.h"

// ------------------------------------------------------------ assertions

#define TU_FAIL(...)                                                       \
	do {                                                               \
		print_error(__VA_ARGS__);                                  \
		print_error("\n");                                         \
		fail();                                                    \
	} while (0)

// expr must return 0.
#define TU_OK(expr)                                                        \
	do {                                                               \
		int tu_rv_ = (expr);                                       \
		if (tu_rv_ != 0)                                           \
			TU_FAIL("%s:%d: %s returned %d %s (%s), expected " \
			        "success",                                  \
			    __FILE__, __LINE__, #expr, tu_rv_,             \
			    cpl_errname(tu_rv_), cpl_strerror(tu_rv_));    \
	} while (0)

// expr must return exactly want.
#define TU_ERR(expr, want)                                                 \
	do {                                                               \
		int tu_rv_ = (expr);                                       \
		int tu_want_ = (want);                                     \
		if (tu_rv_ != tu_want_)                                    \
			TU_FAIL("%s:%d: %s returned %d %s (%s), expected " \
			        "%d %s (%s)",                               \
			    __FILE__, __LINE__, #expr, tu_rv_,             \
			    cpl_errname(tu_rv_), cpl_strerror(tu_rv_),     \
			    tu_want_, cpl_errname(tu_want_),               \
			    cpl_strerror(tu_want_));                       \
	} while (0)

// expr must return one of two codes (where the header allows either).
#define TU_ERR2(expr, want1, want2)                                        \
	do {                                                               \
		int tu_rv_ = (expr);                                       \
		int tu_w1_ = (want1), tu_w2_ = (want2);                    \
		if (tu_rv_ != tu_w1_ && tu_rv_ != tu_w2_)                  \
			TU_FAIL("%s:%d: %s returned %d %s (%s), expected " \
			        "%s or %s",                                 \
			    __FILE__, __LINE__, #expr, tu_rv_,             \
			    cpl_errname(tu_rv_), cpl_strerror(tu_rv_),     \
			    cpl_errname(tu_w1_), cpl_errname(tu_w2_));     \
	} while (0)

// expr must fail (any error code).
#define TU_REFUSED(expr)                                                   \
	do {                                                               \
		int tu_rv_ = (expr);                                       \
		if (tu_rv_ == 0)                                           \
			TU_FAIL("%s:%d: %s succeeded, expected a refusal", \
			    __FILE__, __LINE__, #expr);                    \
	} while (0)

// The name of state s, or "(invalid)".
const char *tu_sname(int s);

// Two states must be equal.
#define TU_EQ_STATE(got, want)                                             \
	do {                                                               \
		int tu_g_ = (int)(got), tu_w_ = (int)(want);               \
		if (tu_g_ != tu_w_)                                        \
			TU_FAIL("%s:%d: %s is %s (%d), expected %s (%d)",  \
			    __FILE__, __LINE__, #got, tu_sname(tu_g_),     \
			    tu_g_, tu_sname(tu_w_), tu_w_);                \
	} while (0)

// Task id of env e must be in state want.
#define TU_STATE(e, id, want)                                              \
	do {                                                               \
		cpl_task tu_t_;                                            \
		uint64_t tu_id_ = (id);                                    \
		int tu_rv_ = tu_get((e), tu_id_, &tu_t_);                  \
		if (tu_rv_ != 0)                                           \
			TU_FAIL("%s:%d: get task %llu: %s (%s)", __FILE__, \
			    __LINE__, (unsigned long long)tu_id_,          \
			    cpl_errname(tu_rv_), cpl_strerror(tu_rv_));    \
		if ((int)tu_t_.state != (int)(want))                       \
			TU_FAIL("%s:%d: task %llu (%s) is %s, expected "   \
			        "%s",                                       \
			    __FILE__, __LINE__, (unsigned long long)tu_id_, \
			    #id, tu_sname(tu_t_.state),                    \
			    tu_sname((int)(want)));                        \
	} while (0)

#define TU_EQ_U64(got, want)                                               \
	do {                                                               \
		unsigned long long tu_g_ = (unsigned long long)(got);      \
		unsigned long long tu_w_ = (unsigned long long)(want);     \
		if (tu_g_ != tu_w_)                                        \
			TU_FAIL("%s:%d: %s is %llu, expected %llu (%s)",   \
			    __FILE__, __LINE__, #got, tu_g_, tu_w_, #want); \
	} while (0)

// ------------------------------------------------------------ directories

// Removes a directory tree (like rm -rf). Returns 0 on success.
int tu_rmrf(const char *dir);

// Makes a fresh directory /tmp/copal-test-XXXXXX into buf (>= 64 bytes).
int tu_mkdtemp(char *buf, size_t len);

// ------------------------------------------------------------ fixture

#define TU_T0 1700000000000000ull // fake clock start, microseconds

typedef struct tu_env {
	char dir[64];
	cpl_store *s;
	cpl_store_opts opts;
	uint64_t now_us; // the fake clock
} tu_env;

// Moves the fake clock forward.
static inline void
tu_advance_ms(tu_env *e, uint64_t ms)
{
	e->now_us += ms * 1000u;
}

static inline void
tu_advance_us(tu_env *e, uint64_t us)
{
	e->now_us += us;
}

// Creates the env and its directory, without opening a store.
tu_env *tu_env_new(void);

// Fixture setup: fresh store in a temp dir, app "app" registered.
int tu_setup(void **state);

// Fixture setup without the app (for app tests).
int tu_setup_bare(void **state);

// Fixture setup: like tu_setup but durable (fsync at commit), for tests
// that close and reopen the store.
int tu_setup_durable(void **state);

// Closes and reopens the store of e with the same options.
int tu_reopen(tu_env *e);

// Fixture teardown: the store must pass cpl_store_check(); then the store
// is closed and its directory removed.
int tu_teardown(void **state);

// Asserts cpl_store_check() passes now.
#define TU_CHECK(e)                                                        \
	do {                                                               \
		char tu_rep_[2048] = "";                                   \
		int tu_rv_ = cpl_store_check((e)->s, tu_rep_,              \
		    sizeof tu_rep_);                                       \
		if (tu_rv_ != 0)                                           \
			TU_FAIL("%s:%d: cpl_store_check: %s (%s)\n%s",     \
			    __FILE__, __LINE__, cpl_errname(tu_rv_),       \
			    cpl_strerror(tu_rv_), tu_rep_);                \
	} while (0)

// ------------------------------------------------------------ specs, apps

// A TaskSpec with its resources and parents in one block. Do not copy a
// tu_spec by value (the spec points into it).
#define TU_MAX_PARENTS 16
typedef struct tu_spec {
	Copal__TaskSpec spec;
	Copal__Resources res;
	uint64_t parents[TU_MAX_PARENTS];
	char name[64];
	char workflow[64];
	char app[64];
} tu_spec;

// Fills t for a task named name in workflow (app NULL: "app"), one rank
// on one node, no parents.
void tu_spec_init(tu_spec *t, const char *name, const char *workflow,
    const char *app);

// Adds a parent (up to TU_MAX_PARENTS).
void tu_spec_parent(tu_spec *t, uint64_t parent);

// ------------------------------------------------------------ one-call ops

// Registers an app (replace: over an existing one of that name).
int tu_app_put_msg(tu_env *e, const Copal__App *app, bool replace);

// Registers app name running exe.
int tu_app_put(tu_env *e, const char *name, const char *exe);

// Reads an app; *out freed with copal__app__free_unpacked(*out, NULL).
int tu_app_get(tu_env *e, const char *name, Copal__App **out);

// Deletes an app.
int tu_app_delete(tu_env *e, const char *name);

// Creates a task in its own transaction; returns the error code.
int tu_create_spec(tu_env *e, const Copal__TaskSpec *spec, uint64_t *id,
    uint8_t uuid[16]);

// Creates task `name` in `workflow` (app "app") with nparents parents
// given as uint64_t varargs; fails the test on error. Returns the id.
uint64_t tu_task(tu_env *e, const char *name, const char *workflow,
    int nparents, ...);

// Creates a task from sp; fails the test on error. Returns the id.
uint64_t tu_task_spec(tu_env *e, tu_spec *sp);

// Reads a task (without spec) in a read transaction.
int tu_get(tu_env *e, uint64_t id, cpl_task *out);

// Reads a task with its spec (free with cpl_task_clear).
int tu_get_spec(tu_env *e, uint64_t id, cpl_task *out);

// The state of a task; fails the test if it cannot be read.
cpl_state tu_state(tu_env *e, uint64_t id);

// A task record; fails the test if it cannot be read.
cpl_task tu_task_get(tu_env *e, uint64_t id);

// A launcher report with return code and message.
int tu_report_full(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state to, int32_t rc, const char *msg);
// A launcher report carrying the launcher's time of the event.
int tu_report_at(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state to, uint64_t event_us);

// A launcher report (return code 0, no message).
int tu_report(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state to);

// A user's state change.
int tu_set_state(tu_env *e, uint64_t id, cpl_state to, const char *msg);

// Kills a task; *killed (may be NULL) gets the number changed.
int tu_kill(tu_env *e, uint64_t id, uint64_t *killed);

// Makes child depend on parent.
int tu_dep_add(tu_env *e, uint64_t parent, uint64_t child);

// Deletes a task.
int tu_delete(tu_env *e, uint64_t id);

// Replaces the spec of a task.
int tu_update_spec(tu_env *e, uint64_t id, const Copal__TaskSpec *spec);

// Adds a note to the history of a task.
int tu_note(tu_env *e, uint64_t id, const char *msg);

// ------------------------------------------------------------ id lists

// A list of task ids.
#define TU_MAX_IDS 1024
typedef struct tu_ids {
	size_t n;
	uint64_t id[TU_MAX_IDS];
	int overflow;
} tu_ids;

// Appends id to the tu_ids list arg (a callback of the store's walks).
int tu_ids_cb(uint64_t id, void *arg);

// Children and parents of a task.
int tu_children(tu_env *e, uint64_t id, tu_ids *out);
int tu_parents(tu_env *e, uint64_t id, tu_ids *out);

// Whether l holds id.
bool tu_ids_has(const tu_ids *l, uint64_t id);

// ------------------------------------------------------------ leases

// Grants a lease to owner.
int tu_grant(tu_env *e, const char *owner, uint32_t ttl_ms, uint64_t *id);

// Grants a lease; fails the test on error.
uint64_t tu_lease(tu_env *e, uint32_t ttl_ms);

// Renews a lease; *deadline (may be NULL) gets its new deadline.
int tu_renew(tu_env *e, uint64_t id, uint32_t ttl_ms, uint64_t *deadline);

// Reads a lease.
int tu_lease_get(tu_env *e, uint64_t id, cpl_lease *out);

// Releases a lease.
int tu_release(tu_env *e, uint64_t id);

// Expires the leases past their deadline; the counts may be NULL.
int tu_expire(tu_env *e, uint64_t *nleases, uint64_t *ntasks);

// Takes the kill notices of a lease.
int tu_notices(tu_env *e, uint64_t lease, tu_ids *out);

// ------------------------------------------------------------ claims

// What a claim gave out, task by task.
#define TU_MAX_CLAIM 1024
#define TU_MAX_NODES_PER_TASK 8
typedef struct tu_claimed {
	size_t n;        // tasks given to the callback
	size_t nclaimed; // what cpl_claim reported
	uint64_t id[TU_MAX_CLAIM];
	uint32_t attempt[TU_MAX_CLAIM];
	cpl_state state[TU_MAX_CLAIM];
	uint64_t lease[TU_MAX_CLAIM];
	int32_t priority[TU_MAX_CLAIM];
	size_t nnodes[TU_MAX_CLAIM];
	uint32_t nodes[TU_MAX_CLAIM][TU_MAX_NODES_PER_TASK];
	int overflow;
} tu_claimed;

// Claims with an explicit capacity (cap->nodes updated in place).
int tu_claim(tu_env *e, uint64_t lease, cpl_capacity *cap, tu_claimed *out);

// Claims up to max tasks (of workflow wf, NULL: any) with plenty of room:
// max whole nodes with 64 GPUs each, no wall-time limit.
int tu_claim_wf(tu_env *e, uint64_t lease, const char *wf, uint32_t max,
    tu_claimed *out);

// tu_claim_wf over all workflows.
int tu_claim_n(tu_env *e, uint64_t lease, uint32_t max, tu_claimed *out);

// Claims exactly one task, which must be `id` (use a workflow of its own or
// make it the only runnable task); returns its attempt number.
uint32_t tu_claim_task(tu_env *e, uint64_t lease, const char *wf, uint64_t id);

// Reports each state of path in turn; each must be accepted and leave the
// task in that state.
void tu_walk(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    const cpl_state *path, size_t n);

// Drives a claimed task along the pipeline from where it is now (READY,
// RESTART_READY or a pipeline state) up to and including `target` (one of
// STAGED_IN .. JOB_FINISHED).
void tu_run_to(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state target);

// Claims task id (alone in workflow wf, or the only runnable one) under
// lease and runs it to JOB_FINISHED.
void tu_finish(tu_env *e, uint64_t lease, const char *wf, uint64_t id);

// ------------------------------------------------------------ history

// The events of one task, with their messages.
#define TU_MAX_EVENTS 256
typedef struct tu_ev {
	cpl_event ev;
	char msg[160];
} tu_ev;

typedef struct tu_evs {
	size_t n;
	tu_ev e[TU_MAX_EVENTS];
	int overflow;
} tu_evs;

// Events of one task (out should be heap-allocated: it is large).
int tu_history(tu_env *e, uint64_t id, tu_evs *out);

// Number of events of one task; fails the test on error.
size_t tu_history_len(tu_env *e, uint64_t id);

// ------------------------------------------------------------ counts

// Stored counters (cpl_count_states).
int tu_counts(tu_env *e, uint64_t counts[CPL_NSTATES]);

// A recount over all tasks (and cpl_count_state per state).
typedef struct tu_recount_arg {
	uint64_t counts[CPL_NSTATES];
	uint64_t single[CPL_NSTATES]; // cpl_count_state per state
	uint64_t total;
	int bad_state;
} tu_recount_arg;

// Recount by walking all tasks with cpl_query.
int tu_recount(tu_env *e, tu_recount_arg *out);

// The stored counters must equal a recount over all tasks, and
// cpl_count_state must agree with cpl_count_states.
#define TU_COUNTS_CONSISTENT(e)                                            \
	do {                                                               \
		uint64_t tu_c_[CPL_NSTATES];                               \
		tu_recount_arg tu_r_;                                      \
		TU_OK(tu_counts((e), tu_c_));                              \
		TU_OK(tu_recount((e), &tu_r_));                            \
		if (tu_r_.bad_state)                                       \
			TU_FAIL("%s:%d: a task has an invalid state",      \
			    __FILE__, __LINE__);                           \
		for (int tu_s_ = 1; tu_s_ < CPL_NSTATES; tu_s_++) {        \
			if (tu_c_[tu_s_] != tu_r_.counts[tu_s_] ||         \
			    tu_r_.single[tu_s_] != tu_c_[tu_s_])           \
				TU_FAIL("%s:%d: count of %s: stored %llu, " \
				        "count_state %llu, recount %llu",   \
				    __FILE__, __LINE__, tu_sname(tu_s_),   \
				    (unsigned long long)tu_c_[tu_s_],      \
				    (unsigned long long)tu_r_.single[tu_s_], \
				    (unsigned long long)tu_r_.counts[tu_s_]); \
		}                                                          \
	} while (0)

// The stored count of state s; fails the test on error.
uint64_t tu_count(tu_env *e, cpl_state s);

// cpl_store_stats_get; fails the test on error.
cpl_store_stats tu_stats(tu_env *e);

// ------------------------------------------------------------ snapshots

// For refusals: everything observable about one task and the store's
// totals, taken before and compared after.
typedef struct tu_snap {
	cpl_task t;
	uint64_t counts[CPL_NSTATES];
	size_t hist;
	uint64_t nevents;
	uint64_t ntasks;
} tu_snap;

// Takes a snapshot of task id and the totals.
void tu_snap_take(tu_env *e, uint64_t id, tu_snap *s);

// Compares task id and the totals with snapshot s; prints each difference
// (`what` names the refused operation) and returns how many there were.
int tu_snap_diff(tu_env *e, uint64_t id, const tu_snap *s, const char *what);

// Asserts that task id and the totals are as in snapshot s.
void tu_snap_same(tu_env *e, uint64_t id, const tu_snap *s, const char *what);

// ------------------------------------------------------------ queries

// Ids of tasks matching f (after_id, limit as cpl_query); *more optional.
int tu_query(tu_env *e, const cpl_filter *f, uint64_t after, size_t limit,
    tu_ids *out, bool *more);

// Looks a task up by uuid prefix.
int tu_lookup(tu_env *e, const char *prefix, uint64_t *id);

// Names with counts (workflows or apps), in the order given.
#define TU_MAX_NAMES 64
typedef struct tu_names {
	size_t n;
	char name[TU_MAX_NAMES][64];
	uint64_t count[TU_MAX_NAMES];
	int overflow;
} tu_names;

// cpl_workflow_list into out.
int tu_workflows(tu_env *e, tu_names *out);

// cpl_app_list into out (names and task counts).
int tu_apps(tu_env *e, tu_names *out);

// Count for name in l, or -1 if absent.
long long tu_names_count(const tu_names *l, const char *name);

// xorshift PRNG for reproducible random sequences.
uint64_t tu_rand(uint64_t *s);

#endif // COPAL_TESTING_UTIL_H
