// copal store: tasks: create, read, modify the spec, delete, and the
// dependencies between tasks.
#include <stdio.h>
#include <stdlib.h>

#include "store_impl.h"

// ------------------------------------------------------------ tasks

// The interned id of the task's app; 0 for a task with a direct command
// and no app (issue 22; the spec check makes sure it has one or the other).
static int
app_of(cpl_txn *t, const Copal__TaskSpec *sp, uint32_t *id)
{
	if (sp->application == NULL || sp->application[0] == '\0') {
		*id = 0;
		return 0;
	}
	return cs_app_lookup(t, sp->application, id);
}

int
cpl_task_create(cpl_txn *t, const Copal__TaskSpec *sp, uint64_t *idp,
    uint8_t uuidp[16])
{
	struct srec r;
	int rv;
	uint8_t k[16];

	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	memset(&r, 0, sizeof(r));
	if ((rv = cs_spec_check(sp, &r)) != 0)
		return rv;
	if ((rv = app_of(t, sp, &r.app)) != 0)
		return rv;
	// parents: all exist, no duplicates (a small quadratic check: a task
	// has few parents)
	bool killed = false;
	for (size_t i = 0; i < sp->n_parent_ids; i++) {
		struct srec pr;
		for (size_t j = 0; j < i; j++)
			if (sp->parent_ids[j] == sp->parent_ids[i])
				return CPL_EINVAL;
		if ((rv = srec_get(t, sp->parent_ids[i], &pr)) != 0)
			return rv;
		if (pr.state != CPL_JOB_FINISHED)
			r.pending++;
		if (pr.state == CPL_FAILED || pr.state == CPL_USER_KILLED ||
		    pr.state == CPL_PARENT_KILLED)
			killed = true;
	}
	// Nothing has been written yet; from here on any failure is an LMDB
	// failure and poisons the transaction.
	if ((rv = cs_wf_intern(t, sp->workflow ? sp->workflow : "",
	         &r.wf)) != 0)
		return rv;
	uint64_t id = t->meta.next_task++;
	cpl_state st = killed ? CPL_PARENT_KILLED :
	    r.pending ? CPL_AWAITING_PARENTS : CPL_READY;
	r.ver = 1;
	r.state = (uint8_t)st;
	r.created_us = r.changed_us = t->now;
	if ((rv = cs_uuid_new(t->s, r.uuid)) != 0)
		return fail(t, rv);

	if ((rv = cs_spec_write(t, id, sp, MDB_APPEND)) != 0)
		return rv == CPL_ETOOBIG ? fail(t, rv) : rv;
	be64(k, id);
	if ((rv = tput(t, DB_STATE, k, 8, &r, sizeof(r), MDB_APPEND)) != 0)
		return rv;
	if ((rv = cs_uuid_add(t, r.uuid, k)) != 0)
		return rv;
	st_key(k, st, id);
	if ((rv = tput(t, DB_ST_IDX, k, 9, "", 0, 0)) != 0)
		return rv;
	idx32_key(k, r.wf, id);
	if ((rv = cput(t, tcur_wf(t, DB_WF_IDX, r.wf), k, 12, "", 0, 0)) != 0)
		return rv;
	idx32_key(k, r.app, id);
	if ((rv = tput(t, DB_APP_IDX, k, 12, "", 0, 0)) != 0)
		return rv;
	if ((rv = cs_name_count(t, 'w', r.wf, 1)) != 0 ||
	    (rv = cs_name_count(t, 'a', r.app, 1)) != 0)
		return rv;
	for (size_t i = 0; i < sp->n_parent_ids; i++) {
		pair_key(k, sp->parent_ids[i], id);
		if ((rv = tput(t, DB_CHILD, k, 16, "", 0, 0)) != 0)
			return rv;
		pair_key(k, id, sp->parent_ids[i]);
		if ((rv = tput(t, DB_PARENT, k, 16, "", 0, 0)) != 0)
			return rv;
	}
	if ((rv = cs_tag_add(t, id, sp)) != 0)
		return rv;
	if ((r.flags & SF_TAGGED) &&
	    (rv = cs_tag_count(t, id, CPL_STATE_NONE, st)) != 0)
		return rv;
	if (st == CPL_READY && (rv = runq_add(t, id, &r)) != 0)
		return rv;
	t->meta.counts[st]++;
	if ((rv = cs_event_write(t, id, CPL_CREATED, st, 0, 0, 0,
	         killed ? "created: a parent failed" : "created", NULL, 0,
	         true)) != 0)
		return rv;
	if (idp)
		*idp = id;
	if (uuidp)
		memcpy(uuidp, r.uuid, 16);
	return 0;
}

int
cpl_task_get(cpl_txn *t, uint64_t id, unsigned flags, cpl_task *out)
{
	struct srec r;
	int rv;
	Copal__TaskSpec *sp = NULL;
	if (t == NULL || out == NULL)
		return CPL_EINVAL;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if ((flags & CPL_GET_SPEC) && (rv = cs_spec_read(t, id, &sp)) != 0)
		return rv;
	task_fill(out, id, &r);
	out->spec = sp;
	return 0;
}

int
cpl_task_get_names(cpl_txn *t, uint64_t id, cpl_task *out, char *name,
    char *workflow)
{
	struct srec r;
	int rv;
	if (t == NULL || out == NULL || name == NULL || workflow == NULL)
		return CPL_EINVAL;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if ((rv = cs_spec_names(t, id, name, workflow)) != 0)
		return rv;
	task_fill(out, id, &r);
	out->spec = NULL;
	return 0;
}

void
cpl_task_clear(cpl_task *tk)
{
	if (tk && tk->spec) {
		copal__task_spec__free_unpacked(tk->spec, NULL);
		tk->spec = NULL;
	}
}

int
cpl_task_update_spec(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp)
{
	return cpl_task_update_spec_held(t, id, sp, 0);
}

int
cpl_task_update_spec_held(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp,
    uint64_t lease)
{
	struct srec r, nr;
	Copal__TaskSpec *old = NULL;
	int rv;
	uint8_t k[12];
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (r.lease != lease)
		return r.lease != 0 ? CPL_EBUSY : CPL_ESTALE;
	nr = r;
	if ((rv = cs_spec_check(sp, &nr)) != 0)
		return rv;
	if ((rv = app_of(t, sp, &nr.app)) != 0)
		return rv;
	if ((rv = cs_spec_read(t, id, &old)) != 0)
		return rv;
	// keep the stored parents
	Copal__TaskSpec copy = *sp;
	copy.n_parent_ids = old->n_parent_ids;
	copy.parent_ids = old->parent_ids;
	if (protobuf_c_message_get_packed_size(&copy.base) > MAX_SPEC) {
		copal__task_spec__free_unpacked(old, NULL);
		return CPL_ETOOBIG;
	}
	rv = cs_wf_intern(t, sp->workflow ? sp->workflow : "", &nr.wf);
	if (rv == 0)
		rv = cs_spec_write(t, id, &copy, 0);
	copal__task_spec__free_unpacked(old, NULL);
	if (rv)
		return fail(t, rv);
	if (runnable(&r) && (rv = runq_del(t, id, &r)) != 0)
		return rv;
	if (nr.wf != r.wf) {
		idx32_key(k, r.wf, id);
		if ((rv = tdel(t, DB_WF_IDX, k, 12)) != 0)
			return rv;
		idx32_key(k, nr.wf, id);
		if ((rv = tput(t, DB_WF_IDX, k, 12, "", 0, 0)) != 0 ||
		    (rv = cs_name_count(t, 'w', r.wf, -1)) != 0 ||
		    (rv = cs_name_count(t, 'w', nr.wf, 1)) != 0)
			return rv;
	}
	if (nr.app != r.app) {
		idx32_key(k, r.app, id);
		if ((rv = tdel(t, DB_APP_IDX, k, 12)) != 0)
			return rv;
		idx32_key(k, nr.app, id);
		if ((rv = tput(t, DB_APP_IDX, k, 12, "", 0, 0)) != 0 ||
		    (rv = cs_name_count(t, 'a', r.app, -1)) != 0 ||
		    (rv = cs_name_count(t, 'a', nr.app, 1)) != 0)
			return rv;
	}
	// the old tags leave with the old run queue entries, the new ones
	// come before the new
	if ((r.flags & SF_TAGGED) && (rv = cs_tag_count(t, id,
	         (cpl_state)r.state, CPL_STATE_NONE)) != 0)
		return rv;
	if ((rv = cs_tag_del(t, id)) != 0 || (rv = cs_tag_add(t, id, sp)) != 0)
		return rv;
	if ((nr.flags & SF_TAGGED) && (rv = cs_tag_count(t, id,
	         CPL_STATE_NONE, (cpl_state)nr.state)) != 0)
		return rv;
	if (runnable(&nr) && (rv = runq_add(t, id, &nr)) != 0)
		return rv;
	return srec_put(t, id, &nr);
}

struct has_ctx {
	bool any;
};

static int
has_cb(uint64_t id, void *arg)
{
	(void)id;
	((struct has_ctx *)arg)->any = true;
	return 1; // stop at the first
}

int
cpl_task_children(cpl_txn *t, uint64_t id, cpl_id_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	return cs_pair_walk(t, DB_CHILD, id, fn, arg);
}

int
cpl_task_parents(cpl_txn *t, uint64_t id, cpl_id_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	return cs_pair_walk(t, DB_PARENT, id, fn, arg);
}

int
cpl_task_delete(cpl_txn *t, uint64_t id)
{
	return cs_task_remove(t, id, true);
}

// cpl_task_delete, and (without the "deleted" event) the archive's
// removal of a task whose history goes with it (archive.c).
int
cs_task_remove(cpl_txn *t, uint64_t id, bool note)
{
	struct srec r;
	struct has_ctx h = { false };
	cpl_ids parents = { NULL, 0, 0 };
	uint8_t k[16];
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (r.lease != 0)
		return CPL_EBUSY;
	if ((rv = cs_pair_walk(t, DB_CHILD, id, has_cb, &h)) < 0 ||
	    (rv != 0 && rv != 1))
		return rv;
	if (h.any)
		return CPL_EINUSE;
	if ((rv = cs_pair_walk(t, DB_PARENT, id, cs_idvec_cb, &parents)) != 0) {
		free(parents.v);
		return rv == CPL_ENOMEM ? rv : fail(t, rv);
	}
	// from here on: writes
	if (note && (rv = cs_event_append(t, id, (cpl_state)r.state,
	         CPL_STATE_NONE, r.attempt, 0, 0, "deleted")) != 0)
		goto out;
	for (size_t i = 0; i < parents.n; i++) {
		pair_key(k, parents.v[i], id);
		if ((rv = tdel(t, DB_CHILD, k, 16)) != 0)
			goto out;
		pair_key(k, id, parents.v[i]);
		if ((rv = tdel(t, DB_PARENT, k, 16)) != 0)
			goto out;
	}
	if (runnable(&r) && (rv = runq_del(t, id, &r)) != 0)
		goto out;
	if ((r.flags & SF_TAGGED) && (rv = cs_tag_count(t, id,
	         (cpl_state)r.state, CPL_STATE_NONE)) != 0)
		goto out;
	if ((rv = cs_tag_del(t, id)) != 0)
		goto out;
	st_key(k, (cpl_state)r.state, id);
	if ((rv = tdel(t, DB_ST_IDX, k, 9)) != 0)
		goto out;
	idx32_key(k, r.wf, id);
	if ((rv = tdel(t, DB_WF_IDX, k, 12)) != 0)
		goto out;
	idx32_key(k, r.app, id);
	if ((rv = tdel(t, DB_APP_IDX, k, 12)) != 0)
		goto out;
	if ((rv = cs_uuid_del(t, r.uuid)) != 0)
		goto out;
	be64(k, id);
	if ((rv = tdel(t, DB_SPEC, k, 8)) != 0 ||
	    (rv = tdel(t, DB_STATE, k, 8)) != 0)
		goto out;
	if ((rv = cs_name_count(t, 'w', r.wf, -1)) != 0 ||
	    (rv = cs_name_count(t, 'a', r.app, -1)) != 0)
		goto out;
	t->meta.counts[r.state]--;
out:
	free(parents.v);
	return rv;
}

// Is `target` an ancestor of `from` (or from itself)? Breadth-first over
// the parent index with a visited list.
static int
is_ancestor(cpl_txn *t, uint64_t from, uint64_t target, bool *found)
{
	cpl_ids q = { NULL, 0, 0 };
	int rv;
	*found = false;
	if ((rv = cpl_ids_push(&q, from)) != 0)
		return rv;
	for (size_t i = 0; i < q.n && !*found; i++) {
		if (q.v[i] == target) {
			*found = true;
			break;
		}
		size_t before = q.n;
		if ((rv = cs_pair_walk(t, DB_PARENT, q.v[i], cs_idvec_cb,
		         &q)) != 0)
			break;
		// drop ids already queued (keeps diamonds from exploding)
		size_t w = before;
		for (size_t j = before; j < q.n; j++) {
			bool dup = false;
			for (size_t m = 0; m < before && !dup; m++)
				dup = q.v[m] == q.v[j];
			if (!dup)
				q.v[w++] = q.v[j];
		}
		q.n = w;
	}
	free(q.v);
	return rv;
}

int
cpl_dep_add(cpl_txn *t, uint64_t parent, uint64_t child)
{
	struct srec pr, cr;
	uint8_t k[16];
	MDB_val v;
	Copal__TaskSpec *sp = NULL;
	bool cyc;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (parent == child)
		return CPL_EINVAL;
	if ((rv = srec_get(t, parent, &pr)) != 0 ||
	    (rv = srec_get(t, child, &cr)) != 0)
		return rv;
	pair_key(k, parent, child);
	if ((rv = tget(t, DB_CHILD, k, 16, &v)) == 0)
		return CPL_EEXISTS;
	if (rv != CPL_ENOTFOUND)
		return rv;
	if (cr.lease != 0)
		return CPL_EBUSY;
	if (cr.state != CPL_CREATED && cr.state != CPL_AWAITING_PARENTS &&
	    cr.state != CPL_READY && cr.state != CPL_RESTART_READY)
		return CPL_EBADSTATE;
	if ((rv = is_ancestor(t, parent, child, &cyc)) != 0)
		return rv;
	if (cyc)
		return CPL_ECYCLE;
	if ((rv = cs_spec_read(t, child, &sp)) != 0)
		return rv;
	// from here on: writes
	uint64_t *ids = malloc((sp->n_parent_ids + 1) * sizeof(*ids));
	if (ids == NULL) {
		copal__task_spec__free_unpacked(sp, NULL);
		return CPL_ENOMEM;
	}
	if (sp->n_parent_ids)
		memcpy(ids, sp->parent_ids, sp->n_parent_ids * sizeof(*ids));
	ids[sp->n_parent_ids] = parent;
	uint64_t *oldids = sp->parent_ids;
	size_t oldn = sp->n_parent_ids;
	sp->parent_ids = ids;
	sp->n_parent_ids = oldn + 1;
	rv = cs_spec_write(t, child, sp, 0);
	sp->parent_ids = oldids;
	sp->n_parent_ids = oldn;
	free(ids);
	copal__task_spec__free_unpacked(sp, NULL);
	if (rv)
		return fail(t, rv);
	if ((rv = tput(t, DB_CHILD, k, 16, "", 0, 0)) != 0)
		return rv;
	pair_key(k, child, parent);
	if ((rv = tput(t, DB_PARENT, k, 16, "", 0, 0)) != 0)
		return rv;
	if (pr.state == CPL_JOB_FINISHED)
		return 0;
	cr.pending++;
	if ((rv = srec_put(t, child, &cr)) != 0)
		return rv;
	char msg[160], label[128];
	cs_task_label(t, parent, pr.uuid, label, sizeof(label));
	snprintf(msg, sizeof(msg), "new parent %s", label);
	if (pr.state == CPL_FAILED || pr.state == CPL_USER_KILLED ||
	    pr.state == CPL_PARENT_KILLED)
		rv = cs_transition(t, child, &cr, CPL_PARENT_KILLED,
		    CPL_BY_BROKER, 0, msg);
	else if (cr.state != CPL_AWAITING_PARENTS)
		rv = cs_transition(t, child, &cr, CPL_AWAITING_PARENTS,
		    CPL_BY_BROKER, 0, msg);
	if (rv)
		return fail(t, rv);
	return cs_drain(t, NULL);
}
