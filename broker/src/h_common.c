// Helpers shared by the handler families: tasks on the wire.
#include <string.h>

#include "handlers.h"

// ---------------------------------------------------------------- helpers

static void
free_spec(void *p)
{
	copal__task_spec__free_unpacked(p, NULL);
}

// A task on the wire. With a spec, the spec (owned by the caller until
// the arena is freed) is referenced, not copied.
Copal__Task *
task_wire(hctx *h, const cpl_task *t, Copal__TaskSpec *spec)
{
	Copal__Task *w = NEW(h, Copal__Task, COPAL__TASK__INIT);
	Copal__TaskStatus *st = NEW(h, Copal__TaskStatus, COPAL__TASK_STATUS__INIT);
	char *u = arena_alloc(h->a, 37);
	if (w == NULL || st == NULL || u == NULL)
		return NULL;
	cpl_uuid_format(t->uuid, u);
	w->id = t->id;
	w->uuid = u;
	w->spec = spec;
	st->state = (Copal__TaskState)t->state;
	st->attempt = t->attempt;
	st->lease_id = t->lease;
	st->return_code = t->return_code;
	st->pending_parents = t->pending_parents;
	st->created_us = t->created_us;
	st->changed_us = t->changed_us;
	w->status = st;
	return w;
}

// Reads a task with its spec; the spec lives until the arena is freed.
int
task_get_owned(hctx *h, cpl_txn *txn, uint64_t id, cpl_task *t)
{
	int rv = cpl_task_get(txn, id, CPL_GET_SPEC, t);
	if (rv)
		return rv;
	if (arena_defer(h->a, free_spec, t->spec) != 0)
		return CPL_ENOMEM;
	return 0;
}

// How messages name a task: its uuid prefix and name ("1a2b3c4d (name)"),
// which the CLI can look up, never the internal id; "(a task that does
// not exist)" for an id that names none.
const char *
task_label(hctx *h, cpl_txn *txn, uint64_t id)
{
	cpl_task t;
	char u[37], buf[160];
	if (cpl_task_get(txn, id, CPL_GET_SPEC, &t) != 0)
		return "(a task that does not exist)";
	cpl_uuid_format(t.uuid, u);
	u[8] = '\0';
	const char *name = t.spec && t.spec->name ? t.spec->name : "";
	size_t n = cpl_utf8_cut(name, strnlen(name, 120));
	if (n)
		snprintf(buf, sizeof(buf), "%s (%.*s)", u, (int)n, name);
	else
		snprintf(buf, sizeof(buf), "%s", u);
	cpl_task_clear(&t);
	const char *l = arena_strdup(h->a, buf);
	return l ? l : "a task"; // out of memory: still a message
}

int
remove_children_first(cpl_txn *txn, uint64_t *ids, size_t n,
    int (*rm)(cpl_txn *txn, uint64_t id, void *arg), void *arg)
{
	size_t left = n;
	while (left > 0) {
		// ids [0, i] are still to try this pass; the w deferred ones
		// are kept at the top, [left - w, left), which only ids
		// already tried have used (so none is overwritten before it
		// is tried), in ascending order
		size_t w = 0;
		for (size_t i = left; i-- > 0;) {
			int e = rm(txn, ids[i], arg);
			if (e == CPL_EINUSE) {
				ids[left - 1 - w++] = ids[i];
				continue;
			}
			if (e != 0) {
				ids[0] = ids[i];
				return e;
			}
		}
		if (w == left)
			return CPL_EINUSE; // children outside ids
		memmove(ids, ids + (left - w), w * sizeof(*ids));
		left = w;
	}
	return 0;
}
