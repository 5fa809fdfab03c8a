// Shared helpers for the copal unit tests (header-only).
//
// Include after <cmocka.h>'s prerequisites; this header includes them itself:
//
//   #include "testutil.h"
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
// Callbacks given to cpl_store_write() never use cmocka assertions (a failed
// assertion would jump out of an open transaction); they record and the test
// asserts afterwards. Write callbacks reset their outputs first, since the
// store may run them more than once (see the caveats in store.h).
#ifndef COPAL_TESTUTIL_H
#define COPAL_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static inline const char *
tu_sname(int s)
{
	const char *n = cpl_state_name(s);
	return n != NULL ? n : "(invalid)";
}

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

static inline int
tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

// Removes a directory tree (like rm -rf). Returns 0 on success.
static inline int
tu_rmrf(const char *dir)
{
	return nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

// Makes a fresh directory /tmp/copal-test-XXXXXX into buf (>= 64 bytes).
static inline int
tu_mkdtemp(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/copal-test-XXXXXX");
	return mkdtemp(buf) != NULL ? 0 : -1;
}

// ------------------------------------------------------------ fixture

#define TU_T0 1700000000000000ull // fake clock start, microseconds

typedef struct tu_env {
	char dir[64];
	cpl_store *s;
	cpl_store_opts opts;
	uint64_t now_us; // the fake clock
} tu_env;

static inline uint64_t
tu_clock_fn(void *arg)
{
	return ((tu_env *)arg)->now_us;
}

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

// Default options: fast (no fsync), fake clock.
static inline void
tu_default_opts(tu_env *e)
{
	memset(&e->opts, 0, sizeof e->opts);
	e->opts.no_sync = true;
	e->opts.clock = tu_clock_fn;
	e->opts.clock_arg = e;
}

// Creates the env and its directory, without opening a store.
static inline tu_env *
tu_env_new(void)
{
	tu_env *e = calloc(1, sizeof *e);
	if (e == NULL)
		return NULL;
	if (tu_mkdtemp(e->dir, sizeof e->dir) != 0) {
		free(e);
		return NULL;
	}
	e->now_us = TU_T0;
	tu_default_opts(e);
	return e;
}

static inline int tu_app_put(tu_env *e, const char *name, const char *exe);

// Fixture setup: fresh store in a temp dir, app "app" registered.
static inline int
tu_setup(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv != 0) {
		print_error("cpl_store_open(%s): %s (%s)\n", e->dir,
		    cpl_errname(rv), cpl_strerror(rv));
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	rv = tu_app_put(e, "app", "/bin/true");
	if (rv != 0) {
		print_error("registering app: %s (%s)\n", cpl_errname(rv),
		    cpl_strerror(rv));
		cpl_store_close(e->s);
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

// Fixture setup without the app (for app tests).
static inline int
tu_setup_bare(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv != 0) {
		print_error("cpl_store_open(%s): %s (%s)\n", e->dir,
		    cpl_errname(rv), cpl_strerror(rv));
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

// Fixture setup: like tu_setup but durable (fsync at commit), for tests
// that close and reopen the store.
static inline int
tu_setup_durable(void **state)
{
	tu_env *e = tu_env_new();
	if (e == NULL)
		return -1;
	e->opts.no_sync = false;
	int rv = cpl_store_open(e->dir, &e->opts, &e->s);
	if (rv == 0)
		rv = tu_app_put(e, "app", "/bin/true");
	if (rv != 0) {
		print_error("cpl_store_open(%s): %s (%s)\n", e->dir,
		    cpl_errname(rv), cpl_strerror(rv));
		if (e->s != NULL)
			cpl_store_close(e->s);
		tu_rmrf(e->dir);
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

// Closes and reopens the store of e with the same options.
static inline int
tu_reopen(tu_env *e)
{
	if (e->s != NULL)
		cpl_store_close(e->s);
	e->s = NULL;
	return cpl_store_open(e->dir, &e->opts, &e->s);
}

// Fixture teardown: the store must pass cpl_store_check(); then the store
// is closed and its directory removed.
static inline int
tu_teardown(void **state)
{
	tu_env *e = *state;
	int ret = 0;
	if (e == NULL)
		return 0;
	if (e->s != NULL) {
		char report[2048] = "";
		int rv = cpl_store_check(e->s, report, sizeof report);
		if (rv != 0) {
			print_error("cpl_store_check after test: %s (%s)\n%s\n",
			    cpl_errname(rv), cpl_strerror(rv), report);
			ret = -1;
		}
		cpl_store_close(e->s);
		e->s = NULL;
	}
	tu_rmrf(e->dir);
	free(e);
	*state = NULL;
	return ret;
}

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

static inline void
tu_spec_init(tu_spec *t, const char *name, const char *workflow,
    const char *app)
{
	memset(t, 0, sizeof *t);
	copal__task_spec__init(&t->spec);
	copal__resources__init(&t->res);
	snprintf(t->name, sizeof t->name, "%s", name ? name : "");
	snprintf(t->workflow, sizeof t->workflow, "%s",
	    workflow ? workflow : "");
	snprintf(t->app, sizeof t->app, "%s", app ? app : "app");
	t->spec.name = t->name;
	t->spec.workflow = t->workflow;
	t->spec.application = t->app;
	t->spec.resources = &t->res;
	t->res.num_nodes = 1;
	t->res.ranks_per_node = 1;
	t->res.node_packing_count = 1;
	t->spec.parent_ids = t->parents;
	t->spec.n_parent_ids = 0;
}

static inline void
tu_spec_parent(tu_spec *t, uint64_t parent)
{
	if (t->spec.n_parent_ids < TU_MAX_PARENTS)
		t->parents[t->spec.n_parent_ids++] = parent;
}

// ------------------------------------------------------------ one-call ops

typedef struct tu_app_arg {
	const Copal__App *app;
	bool replace;
} tu_app_arg;

static inline int
tu_app_put_cb(cpl_txn *txn, void *arg)
{
	tu_app_arg *a = arg;
	return cpl_app_put(txn, a->app, a->replace);
}

static inline int
tu_app_put_msg(tu_env *e, const Copal__App *app, bool replace)
{
	tu_app_arg a = { app, replace };
	return cpl_store_write(e->s, tu_app_put_cb, &a);
}

static inline int
tu_app_put(tu_env *e, const char *name, const char *exe)
{
	Copal__App app = COPAL__APP__INIT;
	app.name = (char *)name;
	app.executable = (char *)exe;
	return tu_app_put_msg(e, &app, false);
}

typedef struct tu_app_get_arg {
	const char *name;
	Copal__App *app;
} tu_app_get_arg;

static inline int
tu_app_get_cb(cpl_txn *txn, void *arg)
{
	tu_app_get_arg *a = arg;
	a->app = NULL;
	return cpl_app_get(txn, a->name, &a->app);
}

// Reads an app; *out freed with copal__app__free_unpacked(*out, NULL).
static inline int
tu_app_get(tu_env *e, const char *name, Copal__App **out)
{
	tu_app_get_arg a = { name, NULL };
	int rv = cpl_store_read(e->s, tu_app_get_cb, &a);
	if (rv == 0) {
		*out = a.app;
	} else {
		*out = NULL;
		if (a.app != NULL)
			copal__app__free_unpacked(a.app, NULL);
	}
	return rv;
}

static inline int
tu_app_delete_cb(cpl_txn *txn, void *arg)
{
	return cpl_app_delete(txn, ((tu_app_get_arg *)arg)->name);
}

static inline int
tu_app_delete(tu_env *e, const char *name)
{
	tu_app_get_arg a = { name, NULL };
	return cpl_store_write(e->s, tu_app_delete_cb, &a);
}

typedef struct tu_create_arg {
	const Copal__TaskSpec *spec;
	uint64_t id;
	uint8_t uuid[16];
} tu_create_arg;

static inline int
tu_create_cb(cpl_txn *txn, void *arg)
{
	tu_create_arg *a = arg;
	a->id = 0;
	return cpl_task_create(txn, a->spec, &a->id, a->uuid);
}

// Creates a task in its own transaction; returns the error code.
static inline int
tu_create_spec(tu_env *e, const Copal__TaskSpec *spec, uint64_t *id,
    uint8_t uuid[16])
{
	tu_create_arg a = { spec, 0, { 0 } };
	int rv = cpl_store_write(e->s, tu_create_cb, &a);
	// Outputs are always written (zero on error).
	if (id != NULL)
		*id = rv == 0 ? a.id : 0;
	if (uuid != NULL) {
		if (rv == 0)
			memcpy(uuid, a.uuid, 16);
		else
			memset(uuid, 0, 16);
	}
	return rv;
}

// Creates task `name` in `workflow` (app "app") with nparents parents
// given as uint64_t varargs; fails the test on error. Returns the id.
static inline uint64_t
tu_task(tu_env *e, const char *name, const char *workflow, int nparents, ...)
{
	tu_spec sp;
	tu_spec_init(&sp, name, workflow, "app");
	va_list ap;
	va_start(ap, nparents);
	for (int i = 0; i < nparents; i++)
		tu_spec_parent(&sp, va_arg(ap, uint64_t));
	va_end(ap);
	uint64_t id = 0;
	int rv = tu_create_spec(e, &sp.spec, &id, NULL);
	if (rv != 0)
		TU_FAIL("creating task %s: %s (%s)", name, cpl_errname(rv),
		    cpl_strerror(rv));
	return id;
}

// Creates a task from sp; fails the test on error. Returns the id.
static inline uint64_t
tu_task_spec(tu_env *e, tu_spec *sp)
{
	uint64_t id = 0;
	int rv = tu_create_spec(e, &sp->spec, &id, NULL);
	if (rv != 0)
		TU_FAIL("creating task %s: %s (%s)", sp->name,
		    cpl_errname(rv), cpl_strerror(rv));
	return id;
}

typedef struct tu_get_arg {
	uint64_t id;
	unsigned flags;
	cpl_task *out;
} tu_get_arg;

static inline int
tu_get_cb(cpl_txn *txn, void *arg)
{
	tu_get_arg *a = arg;
	return cpl_task_get(txn, a->id, a->flags, a->out);
}

// Reads a task (without spec) in a read transaction.
static inline int
tu_get(tu_env *e, uint64_t id, cpl_task *out)
{
	memset(out, 0, sizeof *out);
	tu_get_arg a = { id, 0, out };
	return cpl_store_read(e->s, tu_get_cb, &a);
}

// Reads a task with its spec (free with cpl_task_clear).
static inline int
tu_get_spec(tu_env *e, uint64_t id, cpl_task *out)
{
	memset(out, 0, sizeof *out);
	tu_get_arg a = { id, CPL_GET_SPEC, out };
	return cpl_store_read(e->s, tu_get_cb, &a);
}

// The state of a task; fails the test if it cannot be read.
static inline cpl_state
tu_state(tu_env *e, uint64_t id)
{
	cpl_task t;
	int rv = tu_get(e, id, &t);
	if (rv != 0)
		TU_FAIL("get task %llu: %s (%s)", (unsigned long long)id,
		    cpl_errname(rv), cpl_strerror(rv));
	return t.state;
}

// A task record; fails the test if it cannot be read.
static inline cpl_task
tu_task_get(tu_env *e, uint64_t id)
{
	cpl_task t;
	int rv = tu_get(e, id, &t);
	if (rv != 0)
		TU_FAIL("get task %llu: %s (%s)", (unsigned long long)id,
		    cpl_errname(rv), cpl_strerror(rv));
	return t;
}

typedef struct tu_report_arg {
	cpl_report r;
} tu_report_arg;

static inline int
tu_report_cb(cpl_txn *txn, void *arg)
{
	return cpl_task_report(txn, &((tu_report_arg *)arg)->r);
}

// A launcher report with return code and message.
static inline int
tu_report_full(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state to, int32_t rc, const char *msg)
{
	tu_report_arg a;
	memset(&a, 0, sizeof a);
	a.r.task_id = id;
	a.r.lease = lease;
	a.r.attempt = attempt;
	a.r.to = to;
	a.r.return_code = rc;
	a.r.message = msg;
	return cpl_store_write(e->s, tu_report_cb, &a);
}

static inline int
tu_report(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state to)
{
	return tu_report_full(e, id, lease, attempt, to, 0, NULL);
}

typedef struct tu_set_arg {
	uint64_t id;
	cpl_state to;
	const char *msg;
	uint64_t killed;
} tu_set_arg;

static inline int
tu_set_state_cb(cpl_txn *txn, void *arg)
{
	tu_set_arg *a = arg;
	return cpl_task_set_state(txn, a->id, a->to, a->msg);
}

// A user's state change.
static inline int
tu_set_state(tu_env *e, uint64_t id, cpl_state to, const char *msg)
{
	tu_set_arg a = { id, to, msg, 0 };
	return cpl_store_write(e->s, tu_set_state_cb, &a);
}

static inline int
tu_kill_cb(cpl_txn *txn, void *arg)
{
	tu_set_arg *a = arg;
	a->killed = 0;
	return cpl_task_kill(txn, a->id, a->msg, &a->killed);
}

// Kills a task; *killed (may be NULL) gets the number changed.
static inline int
tu_kill(tu_env *e, uint64_t id, uint64_t *killed)
{
	tu_set_arg a = { id, CPL_USER_KILLED, "killed by test", 0 };
	int rv = cpl_store_write(e->s, tu_kill_cb, &a);
	if (killed != NULL)
		*killed = rv == 0 ? a.killed : 0;
	return rv;
}

typedef struct tu_pair_arg {
	uint64_t a, b;
} tu_pair_arg;

static inline int
tu_dep_cb(cpl_txn *txn, void *arg)
{
	tu_pair_arg *p = arg;
	return cpl_dep_add(txn, p->a, p->b);
}

static inline int
tu_dep_add(tu_env *e, uint64_t parent, uint64_t child)
{
	tu_pair_arg p = { parent, child };
	return cpl_store_write(e->s, tu_dep_cb, &p);
}

static inline int
tu_delete_cb(cpl_txn *txn, void *arg)
{
	return cpl_task_delete(txn, ((tu_pair_arg *)arg)->a);
}

static inline int
tu_delete(tu_env *e, uint64_t id)
{
	tu_pair_arg p = { id, 0 };
	return cpl_store_write(e->s, tu_delete_cb, &p);
}

typedef struct tu_upd_arg {
	uint64_t id;
	const Copal__TaskSpec *spec;
} tu_upd_arg;

static inline int
tu_update_cb(cpl_txn *txn, void *arg)
{
	tu_upd_arg *a = arg;
	return cpl_task_update_spec(txn, a->id, a->spec);
}

static inline int
tu_update_spec(tu_env *e, uint64_t id, const Copal__TaskSpec *spec)
{
	tu_upd_arg a = { id, spec };
	return cpl_store_write(e->s, tu_update_cb, &a);
}

typedef struct tu_note_arg {
	uint64_t id;
	const char *msg;
} tu_note_arg;

static inline int
tu_note_cb(cpl_txn *txn, void *arg)
{
	tu_note_arg *a = arg;
	return cpl_history_note(txn, a->id, a->msg);
}

static inline int
tu_note(tu_env *e, uint64_t id, const char *msg)
{
	tu_note_arg a = { id, msg };
	return cpl_store_write(e->s, tu_note_cb, &a);
}

// ------------------------------------------------------------ id lists

#define TU_MAX_IDS 1024
typedef struct tu_ids {
	size_t n;
	uint64_t id[TU_MAX_IDS];
	int overflow;
} tu_ids;

static inline int
tu_ids_cb(uint64_t id, void *arg)
{
	tu_ids *l = arg;
	if (l->n < TU_MAX_IDS)
		l->id[l->n++] = id;
	else
		l->overflow = 1;
	return 0;
}

typedef struct tu_walk_arg {
	uint64_t id;
	tu_ids *out;
	int parents;
} tu_walk_arg;

static inline int
tu_walk_cb(cpl_txn *txn, void *arg)
{
	tu_walk_arg *a = arg;
	a->out->n = 0;
	a->out->overflow = 0;
	if (a->parents)
		return cpl_task_parents(txn, a->id, tu_ids_cb, a->out);
	return cpl_task_children(txn, a->id, tu_ids_cb, a->out);
}

static inline int
tu_children(tu_env *e, uint64_t id, tu_ids *out)
{
	tu_walk_arg a = { id, out, 0 };
	return cpl_store_read(e->s, tu_walk_cb, &a);
}

static inline int
tu_parents(tu_env *e, uint64_t id, tu_ids *out)
{
	tu_walk_arg a = { id, out, 1 };
	return cpl_store_read(e->s, tu_walk_cb, &a);
}

static inline bool
tu_ids_has(const tu_ids *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->id[i] == id)
			return true;
	return false;
}

// ------------------------------------------------------------ leases

typedef struct tu_lease_arg {
	const char *owner;
	uint32_t ttl_ms;
	uint64_t id;
	uint64_t deadline;
	uint64_t nleases, ntasks;
	cpl_lease lease;
	tu_ids *ids;
} tu_lease_arg;

static inline int
tu_grant_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->id = 0;
	return cpl_lease_grant(txn, a->owner, a->ttl_ms, &a->id);
}

static inline int
tu_grant(tu_env *e, const char *owner, uint32_t ttl_ms, uint64_t *id)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.owner = owner;
	a.ttl_ms = ttl_ms;
	int rv = cpl_store_write(e->s, tu_grant_cb, &a);
	if (id != NULL)
		*id = rv == 0 ? a.id : 0;
	return rv;
}

// Grants a lease; fails the test on error.
static inline uint64_t
tu_lease(tu_env *e, uint32_t ttl_ms)
{
	uint64_t id = 0;
	int rv = tu_grant(e, "test-launcher", ttl_ms, &id);
	if (rv != 0)
		TU_FAIL("cpl_lease_grant: %s (%s)", cpl_errname(rv),
		    cpl_strerror(rv));
	return id;
}

static inline int
tu_renew_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->deadline = 0;
	return cpl_lease_renew(txn, a->id, a->ttl_ms, &a->deadline);
}

static inline int
tu_renew(tu_env *e, uint64_t id, uint32_t ttl_ms, uint64_t *deadline)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.id = id;
	a.ttl_ms = ttl_ms;
	int rv = cpl_store_write(e->s, tu_renew_cb, &a);
	if (deadline != NULL)
		*deadline = rv == 0 ? a.deadline : 0;
	return rv;
}

static inline int
tu_lease_get_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	return cpl_lease_get(txn, a->id, &a->lease);
}

static inline int
tu_lease_get(tu_env *e, uint64_t id, cpl_lease *out)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	memset(out, 0, sizeof *out);
	a.id = id;
	int rv = cpl_store_read(e->s, tu_lease_get_cb, &a);
	if (rv == 0)
		*out = a.lease;
	return rv;
}

static inline int
tu_release_cb(cpl_txn *txn, void *arg)
{
	return cpl_lease_release(txn, ((tu_lease_arg *)arg)->id);
}

static inline int
tu_release(tu_env *e, uint64_t id)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.id = id;
	return cpl_store_write(e->s, tu_release_cb, &a);
}

static inline int
tu_expire_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->nleases = a->ntasks = 0;
	return cpl_lease_expire(txn, &a->nleases, &a->ntasks);
}

static inline int
tu_expire(tu_env *e, uint64_t *nleases, uint64_t *ntasks)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	int rv = cpl_store_write(e->s, tu_expire_cb, &a);
	if (nleases != NULL)
		*nleases = rv == 0 ? a.nleases : 0;
	if (ntasks != NULL)
		*ntasks = rv == 0 ? a.ntasks : 0;
	return rv;
}

static inline int
tu_notices_cb(cpl_txn *txn, void *arg)
{
	tu_lease_arg *a = arg;
	a->ids->n = 0;
	a->ids->overflow = 0;
	return cpl_lease_take_notices(txn, a->id, tu_ids_cb, a->ids);
}

static inline int
tu_notices(tu_env *e, uint64_t lease, tu_ids *out)
{
	tu_lease_arg a;
	memset(&a, 0, sizeof a);
	a.id = lease;
	a.ids = out;
	return cpl_store_write(e->s, tu_notices_cb, &a);
}

// ------------------------------------------------------------ claims

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

static inline int
tu_claim_fn(const cpl_task *t, const uint32_t *nodes, size_t n, void *arg)
{
	tu_claimed *c = arg;
	if (c->n >= TU_MAX_CLAIM) {
		c->overflow = 1;
		return 0;
	}
	size_t i = c->n++;
	c->id[i] = t->id;
	c->attempt[i] = t->attempt;
	c->state[i] = t->state;
	c->lease[i] = t->lease;
	c->priority[i] = t->priority;
	c->nnodes[i] = n;
	for (size_t k = 0; k < n && k < TU_MAX_NODES_PER_TASK; k++)
		c->nodes[i][k] = nodes[k];
	return 0;
}

typedef struct tu_claim_arg {
	uint64_t lease;
	cpl_capacity *cap;
	cpl_capacity cap0; // the capacity as given, restored on a rerun
	cpl_node_cap *nodes0;
	tu_claimed *out;
} tu_claim_arg;

static inline int
tu_claim_cb(cpl_txn *txn, void *arg)
{
	tu_claim_arg *a = arg;
	// A rerun of this callback (map growth) starts from the original
	// capacity again.
	*a->cap = a->cap0;
	if (a->cap->nnodes > 0)
		memcpy(a->cap->nodes, a->nodes0,
		    a->cap->nnodes * sizeof *a->cap->nodes);
	memset(a->out, 0, sizeof *a->out);
	size_t n = 0;
	int rv = cpl_claim(txn, a->lease, a->cap, tu_claim_fn, a->out, &n);
	a->out->nclaimed = n;
	return rv;
}

// Claims with an explicit capacity (cap->nodes updated in place).
static inline int
tu_claim(tu_env *e, uint64_t lease, cpl_capacity *cap, tu_claimed *out)
{
	tu_claim_arg a;
	a.lease = lease;
	a.cap = cap;
	a.cap0 = *cap;
	a.out = out;
	a.nodes0 = NULL;
	if (cap->nnodes > 0) {
		a.nodes0 = malloc(cap->nnodes * sizeof *cap->nodes);
		if (a.nodes0 == NULL)
			return CPL_ENOMEM;
		memcpy(a.nodes0, cap->nodes, cap->nnodes * sizeof *cap->nodes);
	}
	int rv = cpl_store_write(e->s, tu_claim_cb, &a);
	free(a.nodes0);
	return rv;
}

// Claims up to max tasks (of workflow wf, NULL: any) with plenty of room:
// max whole nodes with 64 GPUs each, no wall-time limit.
static inline int
tu_claim_wf(tu_env *e, uint64_t lease, const char *wf, uint32_t max,
    tu_claimed *out)
{
	size_t nn = max > 0 ? max : 1;
	cpl_node_cap *nodes = calloc(nn, sizeof *nodes);
	if (nodes == NULL)
		return CPL_ENOMEM;
	for (size_t i = 0; i < nn; i++) {
		nodes[i].free_units = CPL_NODE_UNITS;
		nodes[i].free_gpus = 64;
	}
	cpl_capacity cap;
	memset(&cap, 0, sizeof cap);
	cap.max_tasks = max;
	cap.nodes = nodes;
	cap.nnodes = nn;
	cap.workflow = wf;
	int rv = tu_claim(e, lease, &cap, out);
	free(nodes);
	return rv;
}

static inline int
tu_claim_n(tu_env *e, uint64_t lease, uint32_t max, tu_claimed *out)
{
	return tu_claim_wf(e, lease, NULL, max, out);
}

// Claims exactly one task, which must be `id` (use a workflow of its own or
// make it the only runnable task); returns its attempt number.
static inline uint32_t
tu_claim_task(tu_env *e, uint64_t lease, const char *wf, uint64_t id)
{
	tu_claimed *c = calloc(1, sizeof *c);
	if (c == NULL)
		TU_FAIL("out of memory");
	int rv = tu_claim_wf(e, lease, wf, 1, c);
	if (rv != 0) {
		free(c);
		TU_FAIL("claim of task %llu: %s (%s)", (unsigned long long)id,
		    cpl_errname(rv), cpl_strerror(rv));
	}
	if (c->n != 1 || c->id[0] != id) {
		unsigned long long got = c->n > 0 ? c->id[0] : 0;
		size_t n = c->n;
		free(c);
		TU_FAIL("claim expected task %llu, got %zu tasks (first %llu)",
		    (unsigned long long)id, n, got);
	}
	uint32_t att = c->attempt[0];
	free(c);
	return att;
}

// Reports each state of path in turn; each must be accepted and leave the
// task in that state.
static inline void
tu_walk(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    const cpl_state *path, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rv = tu_report(e, id, lease, attempt, path[i]);
		if (rv != 0)
			TU_FAIL("task %llu: report -> %s: %s (%s)",
			    (unsigned long long)id, tu_sname(path[i]),
			    cpl_errname(rv), cpl_strerror(rv));
		cpl_state s = tu_state(e, id);
		if (s != path[i])
			TU_FAIL("task %llu: after report -> %s it is %s",
			    (unsigned long long)id, tu_sname(path[i]),
			    tu_sname(s));
	}
}

// Drives a claimed task along the pipeline from where it is now (READY,
// RESTART_READY or a pipeline state) up to and including `target` (one of
// STAGED_IN .. JOB_FINISHED).
static inline void
tu_run_to(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state target)
{
	// The normal pipeline of a claimed task.
	static const cpl_state tu_pipeline[] = { CPL_STAGED_IN,
		CPL_PREPROCESSED, CPL_RUNNING, CPL_RUN_DONE, CPL_POSTPROCESSED,
		CPL_JOB_FINISHED };
	const size_t np = sizeof tu_pipeline / sizeof tu_pipeline[0];
	size_t n = 0, start = 0;
	while (n < np && tu_pipeline[n] != target)
		n++;
	if (n == np)
		TU_FAIL("tu_run_to: %s is not on the pipeline",
		    tu_sname(target));
	cpl_state now = tu_state(e, id);
	for (size_t i = 0; i < np; i++)
		if (tu_pipeline[i] == now)
			start = i + 1;
	if (start > n + 1)
		TU_FAIL("tu_run_to: task %llu is %s, past %s",
		    (unsigned long long)id, tu_sname(now), tu_sname(target));
	tu_walk(e, id, lease, attempt, tu_pipeline + start, n + 1 - start);
}

// Claims task id (alone in workflow wf, or the only runnable one) under
// lease and runs it to JOB_FINISHED.
static inline void
tu_finish(tu_env *e, uint64_t lease, const char *wf, uint64_t id)
{
	uint32_t att = tu_claim_task(e, lease, wf, id);
	tu_run_to(e, id, lease, att, CPL_JOB_FINISHED);
}

// ------------------------------------------------------------ history

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

static inline int
tu_evs_cb(const cpl_event *ev, void *arg)
{
	tu_evs *l = arg;
	if (l->n >= TU_MAX_EVENTS) {
		l->overflow = 1;
		return 0;
	}
	tu_ev *x = &l->e[l->n++];
	x->ev = *ev;
	snprintf(x->msg, sizeof x->msg, "%s", ev->message ? ev->message : "");
	x->ev.message = NULL;
	return 0;
}

typedef struct tu_hist_arg {
	uint64_t id;
	tu_evs *out;
} tu_hist_arg;

static inline int
tu_hist_cb(cpl_txn *txn, void *arg)
{
	tu_hist_arg *a = arg;
	a->out->n = 0;
	a->out->overflow = 0;
	return cpl_history_task(txn, a->id, tu_evs_cb, a->out);
}

// Events of one task (out should be heap-allocated: it is large).
static inline int
tu_history(tu_env *e, uint64_t id, tu_evs *out)
{
	tu_hist_arg a = { id, out };
	return cpl_store_read(e->s, tu_hist_cb, &a);
}

static inline int
tu_count_ev_cb(const cpl_event *ev, void *arg)
{
	(void)ev;
	(*(size_t *)arg)++;
	return 0;
}

typedef struct tu_hlen_arg {
	uint64_t id;
	size_t n;
} tu_hlen_arg;

static inline int
tu_hist_len_cb(cpl_txn *txn, void *arg)
{
	tu_hlen_arg *a = arg;
	a->n = 0;
	return cpl_history_task(txn, a->id, tu_count_ev_cb, &a->n);
}

// Number of events of one task; fails the test on error.
static inline size_t
tu_history_len(tu_env *e, uint64_t id)
{
	tu_hlen_arg a = { id, 0 };
	int rv = cpl_store_read(e->s, tu_hist_len_cb, &a);
	if (rv != 0)
		TU_FAIL("history of %llu: %s (%s)", (unsigned long long)id,
		    cpl_errname(rv), cpl_strerror(rv));
	return a.n;
}

// ------------------------------------------------------------ counts

static inline int
tu_counts_cb(cpl_txn *txn, void *arg)
{
	return cpl_count_states(txn, (uint64_t *)arg);
}

// Stored counters (cpl_count_states).
static inline int
tu_counts(tu_env *e, uint64_t counts[CPL_NSTATES])
{
	memset(counts, 0, CPL_NSTATES * sizeof counts[0]);
	return cpl_store_read(e->s, tu_counts_cb, counts);
}

typedef struct tu_recount_arg {
	uint64_t counts[CPL_NSTATES];
	uint64_t single[CPL_NSTATES]; // cpl_count_state per state
	uint64_t total;
	int bad_state;
} tu_recount_arg;

static inline int
tu_recount_fn(const cpl_task *t, void *arg)
{
	tu_recount_arg *a = arg;
	if ((int)t->state <= 0 || (int)t->state >= CPL_NSTATES)
		a->bad_state = 1;
	else
		a->counts[t->state]++;
	a->total++;
	return 0;
}

static inline int
tu_recount_cb(cpl_txn *txn, void *arg)
{
	tu_recount_arg *a = arg;
	memset(a, 0, sizeof *a);
	cpl_filter f;
	memset(&f, 0, sizeof f);
	for (int s = 0; s < CPL_NSTATES; s++)
		a->single[s] = cpl_count_state(txn, (cpl_state)s);
	return cpl_query(txn, &f, 0, 0, 0, tu_recount_fn, a, NULL);
}

// Recount by walking all tasks with cpl_query.
static inline int
tu_recount(tu_env *e, tu_recount_arg *out)
{
	return cpl_store_read(e->s, tu_recount_cb, out);
}

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

static inline uint64_t
tu_count(tu_env *e, cpl_state s)
{
	uint64_t c[CPL_NSTATES];
	int rv = tu_counts(e, c);
	if (rv != 0)
		TU_FAIL("cpl_count_states: %s (%s)", cpl_errname(rv),
		    cpl_strerror(rv));
	return c[s];
}

static inline cpl_store_stats
tu_stats(tu_env *e)
{
	cpl_store_stats st;
	memset(&st, 0, sizeof st);
	int rv = cpl_store_stats_get(e->s, &st);
	if (rv != 0)
		TU_FAIL("cpl_store_stats_get: %s (%s)", cpl_errname(rv),
		    cpl_strerror(rv));
	return st;
}

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

static inline void
tu_snap_take(tu_env *e, uint64_t id, tu_snap *s)
{
	memset(s, 0, sizeof *s);
	s->t = tu_task_get(e, id);
	TU_OK(tu_counts(e, s->counts));
	s->hist = tu_history_len(e, id);
	cpl_store_stats st = tu_stats(e);
	s->nevents = st.nevents;
	s->ntasks = st.ntasks;
}

// Compares task id and the totals with snapshot s; prints each difference
// (`what` names the refused operation) and returns how many there were.
static inline int
tu_snap_diff(tu_env *e, uint64_t id, const tu_snap *s, const char *what)
{
	tu_snap now;
	int bad = 0;
	tu_snap_take(e, id, &now);
	if (now.t.state != s->t.state || now.t.attempt != s->t.attempt ||
	    now.t.lease != s->t.lease ||
	    now.t.return_code != s->t.return_code ||
	    now.t.pending_parents != s->t.pending_parents ||
	    now.t.priority != s->t.priority ||
	    now.t.changed_us != s->t.changed_us) {
		print_error("%s: refused but task %llu changed: state %s->%s "
		            "attempt %u->%u lease %llu->%llu rc %d->%d\n",
		    what, (unsigned long long)id, tu_sname(s->t.state),
		    tu_sname(now.t.state), s->t.attempt, now.t.attempt,
		    (unsigned long long)s->t.lease,
		    (unsigned long long)now.t.lease, s->t.return_code,
		    now.t.return_code);
		bad++;
	}
	if (memcmp(now.counts, s->counts, sizeof now.counts) != 0) {
		print_error("%s: refused but state counters changed\n", what);
		bad++;
	}
	if (now.hist != s->hist) {
		print_error("%s: refused but history of task %llu grew %zu -> "
		            "%zu\n",
		    what, (unsigned long long)id, s->hist, now.hist);
		bad++;
	}
	if (now.nevents != s->nevents) {
		print_error("%s: refused but the event log grew %llu -> %llu\n",
		    what, (unsigned long long)s->nevents,
		    (unsigned long long)now.nevents);
		bad++;
	}
	if (now.ntasks != s->ntasks) {
		print_error("%s: refused but the task count changed\n", what);
		bad++;
	}
	return bad;
}

// Asserts that task id and the totals are as in snapshot s.
static inline void
tu_snap_same(tu_env *e, uint64_t id, const tu_snap *s, const char *what)
{
	if (tu_snap_diff(e, id, s, what) != 0)
		TU_FAIL("%s: a refusal changed something (see above)", what);
}

// ------------------------------------------------------------ queries

typedef struct tu_query_arg {
	const cpl_filter *f;
	uint64_t after;
	size_t limit;
	unsigned flags;
	tu_ids *out;
	bool more;
} tu_query_arg;

static inline int
tu_query_fn(const cpl_task *t, void *arg)
{
	return tu_ids_cb(t->id, arg);
}

static inline int
tu_query_cb(cpl_txn *txn, void *arg)
{
	tu_query_arg *a = arg;
	a->out->n = 0;
	a->out->overflow = 0;
	a->more = false;
	return cpl_query(txn, a->f, a->after, a->limit, a->flags, tu_query_fn,
	    a->out, &a->more);
}

// Ids of tasks matching f (after_id, limit as cpl_query); *more optional.
static inline int
tu_query(tu_env *e, const cpl_filter *f, uint64_t after, size_t limit,
    tu_ids *out, bool *more)
{
	tu_query_arg a = { f, after, limit, 0, out, false };
	int rv = cpl_store_read(e->s, tu_query_cb, &a);
	if (more != NULL)
		*more = rv == 0 ? a.more : false;
	return rv;
}

typedef struct tu_lookup_arg {
	const char *prefix;
	uint64_t id;
} tu_lookup_arg;

static inline int
tu_lookup_cb(cpl_txn *txn, void *arg)
{
	tu_lookup_arg *a = arg;
	a->id = 0;
	return cpl_task_lookup(txn, a->prefix, &a->id);
}

// Looks a task up by uuid prefix.
static inline int
tu_lookup(tu_env *e, const char *prefix, uint64_t *id)
{
	tu_lookup_arg a = { prefix, 0 };
	int rv = cpl_store_read(e->s, tu_lookup_cb, &a);
	if (id != NULL)
		*id = rv == 0 ? a.id : 0;
	return rv;
}

// Names with counts (workflows or apps), in the order given.
#define TU_MAX_NAMES 64
typedef struct tu_names {
	size_t n;
	char name[TU_MAX_NAMES][64];
	uint64_t count[TU_MAX_NAMES];
	int overflow;
} tu_names;

static inline int
tu_names_cb(const char *name, uint64_t n, void *arg)
{
	tu_names *l = arg;
	if (l->n >= TU_MAX_NAMES) {
		l->overflow = 1;
		return 0;
	}
	snprintf(l->name[l->n], sizeof l->name[0], "%s", name);
	l->count[l->n++] = n;
	return 0;
}

static inline int
tu_workflows_cb(cpl_txn *txn, void *arg)
{
	tu_names *l = arg;
	l->n = 0;
	l->overflow = 0;
	return cpl_workflow_list(txn, tu_names_cb, l);
}

// cpl_workflow_list into out.
static inline int
tu_workflows(tu_env *e, tu_names *out)
{
	return cpl_store_read(e->s, tu_workflows_cb, out);
}

static inline int
tu_apps_fn(const Copal__App *app, uint64_t ntasks, void *arg)
{
	return tu_names_cb(app->name, ntasks, arg);
}

static inline int
tu_apps_cb(cpl_txn *txn, void *arg)
{
	tu_names *l = arg;
	l->n = 0;
	l->overflow = 0;
	return cpl_app_list(txn, tu_apps_fn, l);
}

// cpl_app_list into out (names and task counts).
static inline int
tu_apps(tu_env *e, tu_names *out)
{
	return cpl_store_read(e->s, tu_apps_cb, out);
}

// Count for name in l, or -1 if absent.
static inline long long
tu_names_count(const tu_names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->name[i], name) == 0)
			return (long long)l->count[i];
	return -1;
}

// xorshift PRNG for reproducible random sequences.
static inline uint64_t
tu_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

#endif // COPAL_TESTUTIL_H
