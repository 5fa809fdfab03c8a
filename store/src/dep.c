// copal store: removing and replacing a task's parents (copal dep --remove,
// --replace; issue 22: Balsam's rescue job re-parents the children of a
// timed-out parent). Adding one is cpl_dep_add (task.c).
#include <stdio.h>
#include <stdlib.h>

#include "store_impl.h"

// Whether a task in this state may have its parents changed: not started
// and not held (as for cpl_dep_add).
static int
child_changeable(const struct srec *cr)
{
	if (cr->lease != 0)
		return CPL_EBUSY;
	if (cr->state != CPL_CREATED && cr->state != CPL_AWAITING_PARENTS &&
	    cr->state != CPL_READY && cr->state != CPL_RESTART_READY)
		return CPL_EBADSTATE;
	return 0;
}

int
cpl_dep_remove(cpl_txn *t, uint64_t parent, uint64_t child)
{
	struct srec pr, cr;
	uint8_t k[16];
	MDB_val v;
	Copal__TaskSpec *sp = NULL;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, parent, &pr)) != 0 ||
	    (rv = srec_get(t, child, &cr)) != 0)
		return rv;
	pair_key(k, parent, child);
	if ((rv = tget(t, DB_CHILD, k, 16, &v)) != 0)
		return rv; // CPL_ENOTFOUND: not a parent of child
	if ((rv = child_changeable(&cr)) != 0)
		return rv;
	if ((rv = cs_spec_read(t, child, &sp)) != 0)
		return rv;
	// from here on: writes
	size_t n = 0;
	for (size_t i = 0; i < sp->n_parent_ids; i++)
		if (sp->parent_ids[i] != parent)
			sp->parent_ids[n++] = sp->parent_ids[i];
	sp->n_parent_ids = n;
	rv = cs_spec_write(t, child, sp, 0);
	copal__task_spec__free_unpacked(sp, NULL);
	if (rv)
		return fail(t, rv);
	if ((rv = tdel(t, DB_CHILD, k, 16)) != 0)
		return rv;
	pair_key(k, child, parent);
	if ((rv = tdel(t, DB_PARENT, k, 16)) != 0)
		return rv;
	char msg[160], label[128];
	cs_task_label(t, parent, pr.uuid, label, sizeof(label));
	snprintf(msg, sizeof(msg), "parent %s removed", label);
	if (pr.state != CPL_JOB_FINISHED) {
		if (cr.pending == 0)
			return fail(t, CPL_ECORRUPT);
		cr.pending--;
		if ((rv = srec_put(t, child, &cr)) != 0)
			return rv;
		if (cr.pending == 0 && cr.state == CPL_AWAITING_PARENTS) {
			if ((rv = cs_transition(t, child, &cr, CPL_READY,
			         CPL_BY_BROKER, 0, msg)) != 0)
				return fail(t, rv);
			return cs_drain(t, NULL);
		}
	}
	// no change of state: the removal is an event all the same
	return cs_event_append(t, child, (cpl_state)cr.state,
	    (cpl_state)cr.state, cr.attempt, 0, 0, msg);
}

struct replace {
	uint64_t child;
	const uint64_t *ids;
	size_t n;
};

static int
replace_fn(cpl_txn *t, void *arg)
{
	const struct replace *a = arg;
	Copal__TaskSpec *sp = NULL;
	struct srec cr;
	int rv;
	if ((rv = srec_get(t, a->child, &cr)) != 0)
		return rv;
	if ((rv = child_changeable(&cr)) != 0)
		return rv;
	for (size_t i = 0; i < a->n; i++) {
		if (a->ids[i] == a->child)
			return CPL_EINVAL;
		for (size_t j = 0; j < i; j++)
			if (a->ids[j] == a->ids[i])
				return CPL_EINVAL;
		struct srec pr;
		if ((rv = srec_get(t, a->ids[i], &pr)) != 0)
			return rv;
	}
	if ((rv = cs_spec_read(t, a->child, &sp)) != 0)
		return rv;
	size_t nold = sp->n_parent_ids;
	uint64_t *old = malloc((nold ? nold : 1) * sizeof(*old));
	if (old == NULL) {
		copal__task_spec__free_unpacked(sp, NULL);
		return CPL_ENOMEM;
	}
	for (size_t i = 0; i < nold; i++)
		old[i] = sp->parent_ids[i];
	copal__task_spec__free_unpacked(sp, NULL);
	// parents that stay are left alone; the new come first, then the
	// others go (so a waiting child does not pass through READY)
	for (size_t j = 0; j < a->n && rv == 0; j++) {
		bool had = false;
		for (size_t i = 0; i < nold && !had; i++)
			had = old[i] == a->ids[j];
		if (!had)
			rv = cpl_dep_add(t, a->ids[j], a->child);
	}
	for (size_t i = 0; i < nold && rv == 0; i++) {
		bool keep = false;
		for (size_t j = 0; j < a->n && !keep; j++)
			keep = a->ids[j] == old[i];
		if (!keep)
			rv = cpl_dep_remove(t, old[i], a->child);
	}
	free(old);
	if (rv)
		return rv;
	// one event says what the parents are now
	char msg[200], label[128];
	size_t off = (size_t)snprintf(msg, sizeof(msg), "parents replaced:%s",
	    a->n ? "" : " none");
	for (size_t j = 0; j < a->n && off < sizeof(msg); j++) {
		struct srec pr;
		if ((rv = srec_get(t, a->ids[j], &pr)) != 0)
			return rv;
		cs_task_label(t, a->ids[j], pr.uuid, label, sizeof(label));
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s %s",
		    j ? "," : "", label);
	}
	if ((rv = srec_get(t, a->child, &cr)) != 0)
		return rv;
	return cs_event_append(t, a->child, (cpl_state)cr.state,
	    (cpl_state)cr.state, cr.attempt, 0, 0, msg);
}

int
cpl_dep_replace(cpl_txn *t, uint64_t child, const uint64_t *ids, size_t n)
{
	if (t == NULL || !t->write || (n > 0 && ids == NULL))
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	struct replace a = { child, ids, n };
	// all or nothing: a refusal half way leaves the parents as they were
	return cpl_txn_sub(t, replace_fn, &a);
}

int
cpl_task_kill_tree(cpl_txn *t, uint64_t id, const char *msg, uint64_t *killed)
{
	cpl_ids q = { NULL, 0, 0 };
	uint64_t n = 0;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	struct srec r;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	// the task and every descendant (through finished ones too), each
	// once: a DAG may reach a task by several paths
	if ((rv = cpl_ids_push(&q, id)) != 0)
		return rv;
	for (size_t i = 0; i < q.n && rv == 0; i++) {
		size_t before = q.n;
		if ((rv = cs_pair_walk(t, DB_CHILD, q.v[i], cs_idvec_cb,
		         &q)) != 0)
			break;
		size_t w = before;
		for (size_t j = before; j < q.n; j++) {
			bool dup = false;
			for (size_t m = 0; m < w && !dup; m++)
				dup = m != j && q.v[m] == q.v[j];
			if (!dup)
				q.v[w++] = q.v[j];
		}
		q.n = w;
	}
	char m[320], label[128];
	cs_task_label(t, id, r.uuid, label, sizeof(label));
	snprintf(m, sizeof(m), "%s (with its ancestor %s)",
	    msg ? msg : "killed by user", label);
	// All become USER_KILLED before the queued cascades run: those find
	// the descendants final and pass (cs_drain's only_from mask).
	for (size_t i = 0; i < q.n && rv == 0; i++) {
		if ((rv = srec_get(t, q.v[i], &r)) != 0)
			break;
		if (cpl_state_is_final((cpl_state)r.state))
			continue;
		rv = cs_transition(t, q.v[i], &r, CPL_USER_KILLED, CPL_BY_USER,
		    0, i == 0 ? (msg ? msg : "killed by user") : m);
		if (rv == 0)
			n++;
	}
	free(q.v);
	if (rv)
		return fail(t, rv);
	if ((rv = cs_drain(t, NULL)) != 0)
		return rv;
	if (killed)
		*killed = n;
	return 0;
}
