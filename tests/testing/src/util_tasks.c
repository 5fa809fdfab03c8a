// copal_testing: task specs, apps and the one-call store operations on
// tasks (create, read, report, state changes, dependencies, notes) and
// their id lists. See copal/testing/util.h.
//
// Callbacks given to cpl_store_write() never use cmocka assertions (a
// failed assertion would jump out of an open transaction); they record and
// the caller asserts afterwards. Write callbacks reset their outputs
// first, since the store may run them more than once.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/util.h"

void
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

void
tu_spec_parent(tu_spec *t, uint64_t parent)
{
	if (t->spec.n_parent_ids < TU_MAX_PARENTS)
		t->parents[t->spec.n_parent_ids++] = parent;
}

typedef struct tu_app_arg {
	const Copal__App *app;
	bool replace;
} tu_app_arg;

static int
tu_app_put_cb(cpl_txn *txn, void *arg)
{
	tu_app_arg *a = arg;
	return cpl_app_put(txn, a->app, a->replace);
}

int
tu_app_put_msg(tu_env *e, const Copal__App *app, bool replace)
{
	tu_app_arg a = { app, replace };
	return cpl_store_write(e->s, tu_app_put_cb, &a);
}

int
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

static int
tu_app_get_cb(cpl_txn *txn, void *arg)
{
	tu_app_get_arg *a = arg;
	a->app = NULL;
	return cpl_app_get(txn, a->name, &a->app);
}

int
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

static int
tu_app_delete_cb(cpl_txn *txn, void *arg)
{
	return cpl_app_delete(txn, ((tu_app_get_arg *)arg)->name);
}

int
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

static int
tu_create_cb(cpl_txn *txn, void *arg)
{
	tu_create_arg *a = arg;
	a->id = 0;
	return cpl_task_create(txn, a->spec, &a->id, a->uuid);
}

int
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

uint64_t
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

uint64_t
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

static int
tu_get_cb(cpl_txn *txn, void *arg)
{
	tu_get_arg *a = arg;
	return cpl_task_get(txn, a->id, a->flags, a->out);
}

int
tu_get(tu_env *e, uint64_t id, cpl_task *out)
{
	memset(out, 0, sizeof *out);
	tu_get_arg a = { id, 0, out };
	return cpl_store_read(e->s, tu_get_cb, &a);
}

int
tu_get_spec(tu_env *e, uint64_t id, cpl_task *out)
{
	memset(out, 0, sizeof *out);
	tu_get_arg a = { id, CPL_GET_SPEC, out };
	return cpl_store_read(e->s, tu_get_cb, &a);
}

cpl_state
tu_state(tu_env *e, uint64_t id)
{
	cpl_task t;
	int rv = tu_get(e, id, &t);
	if (rv != 0)
		TU_FAIL("get task %llu: %s (%s)", (unsigned long long)id,
		    cpl_errname(rv), cpl_strerror(rv));
	return t.state;
}

cpl_task
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

static int
tu_report_cb(cpl_txn *txn, void *arg)
{
	return cpl_task_report(txn, &((tu_report_arg *)arg)->r);
}

int
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

int
tu_report_at(tu_env *e, uint64_t id, uint64_t lease, uint32_t attempt,
    cpl_state to, uint64_t event_us)
{
	tu_report_arg a;
	memset(&a, 0, sizeof a);
	a.r.task_id = id;
	a.r.lease = lease;
	a.r.attempt = attempt;
	a.r.to = to;
	a.r.event_us = event_us;
	return cpl_store_write(e->s, tu_report_cb, &a);
}

int
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

static int
tu_set_state_cb(cpl_txn *txn, void *arg)
{
	tu_set_arg *a = arg;
	return cpl_task_set_state(txn, a->id, a->to, a->msg);
}

int
tu_set_state(tu_env *e, uint64_t id, cpl_state to, const char *msg)
{
	tu_set_arg a = { id, to, msg, 0 };
	return cpl_store_write(e->s, tu_set_state_cb, &a);
}

static int
tu_kill_cb(cpl_txn *txn, void *arg)
{
	tu_set_arg *a = arg;
	a->killed = 0;
	return cpl_task_kill(txn, a->id, a->msg, &a->killed);
}

int
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

static int
tu_dep_cb(cpl_txn *txn, void *arg)
{
	tu_pair_arg *p = arg;
	return cpl_dep_add(txn, p->a, p->b);
}

int
tu_dep_add(tu_env *e, uint64_t parent, uint64_t child)
{
	tu_pair_arg p = { parent, child };
	return cpl_store_write(e->s, tu_dep_cb, &p);
}

static int
tu_delete_cb(cpl_txn *txn, void *arg)
{
	return cpl_task_delete(txn, ((tu_pair_arg *)arg)->a);
}

int
tu_delete(tu_env *e, uint64_t id)
{
	tu_pair_arg p = { id, 0 };
	return cpl_store_write(e->s, tu_delete_cb, &p);
}

typedef struct tu_upd_arg {
	uint64_t id;
	const Copal__TaskSpec *spec;
} tu_upd_arg;

static int
tu_update_cb(cpl_txn *txn, void *arg)
{
	tu_upd_arg *a = arg;
	return cpl_task_update_spec(txn, a->id, a->spec);
}

int
tu_update_spec(tu_env *e, uint64_t id, const Copal__TaskSpec *spec)
{
	tu_upd_arg a = { id, spec };
	return cpl_store_write(e->s, tu_update_cb, &a);
}

typedef struct tu_note_arg {
	uint64_t id;
	const char *msg;
} tu_note_arg;

static int
tu_note_cb(cpl_txn *txn, void *arg)
{
	tu_note_arg *a = arg;
	return cpl_history_note(txn, a->id, a->msg);
}

int
tu_note(tu_env *e, uint64_t id, const char *msg)
{
	tu_note_arg a = { id, msg };
	return cpl_store_write(e->s, tu_note_cb, &a);
}

int
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

static int
tu_walk_cb(cpl_txn *txn, void *arg)
{
	tu_walk_arg *a = arg;
	a->out->n = 0;
	a->out->overflow = 0;
	if (a->parents)
		return cpl_task_parents(txn, a->id, tu_ids_cb, a->out);
	return cpl_task_children(txn, a->id, tu_ids_cb, a->out);
}

int
tu_children(tu_env *e, uint64_t id, tu_ids *out)
{
	tu_walk_arg a = { id, out, 0 };
	return cpl_store_read(e->s, tu_walk_cb, &a);
}

int
tu_parents(tu_env *e, uint64_t id, tu_ids *out)
{
	tu_walk_arg a = { id, out, 1 };
	return cpl_store_read(e->s, tu_walk_cb, &a);
}

bool
tu_ids_has(const tu_ids *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->id[i] == id)
			return true;
	return false;
}
