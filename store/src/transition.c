// copal store: state transitions. cs_transition() is the one place a task's
// state changes (history, state index, per-state counters, run queue,
// lease); the bookkeeping that follows (dependency release, cascades,
// retry policy) is queued and drained without recursion.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

// ------------------------------------------------------------ transitions

static int
work_push(cpl_txn *t, uint64_t id, cpl_state to, cpl_actor actor,
    uint32_t only_from, const char *msg)
{
	if (t->nwork == t->capwork) {
		size_t cap = t->capwork ? t->capwork * 2 : 64;
		struct work *w = realloc(t->work, cap * sizeof(*w));
		if (w == NULL)
			return fail(t, CPL_ENOMEM);
		t->work = w;
		t->capwork = cap;
	}
	struct work *w = &t->work[t->nwork++];
	t->changes++;
	w->id = id;
	w->to = (uint8_t)to;
	w->actor = (uint8_t)actor;
	w->only_from = only_from;
	w->only_from_mask_set = only_from != 0;
	// the message is cut to the record's field on purpose, at a
	// character boundary (names in it are UTF-8)
	size_t n = msg ? strlen(msg) : 0;
	if (n > sizeof(w->msg) - 1)
		n = cpl_utf8_cut(msg, sizeof(w->msg) - 1);
	memcpy(w->msg, msg ? msg : "", n);
	w->msg[n] = '\0';
	return 0;
}

#define NOT_FINAL_MASK                                                      \
	(~(BIT(CPL_JOB_FINISHED) | BIT(CPL_FAILED) | BIT(CPL_USER_KILLED) | \
	    BIT(CPL_PARENT_KILLED) | BIT(CPL_STATE_NONE)) &                  \
	    ((1u << CPL_NSTATES) - 1))

// Queues the consequences for the children of a task that just reached
// JOB_FINISHED (finished), left it (unfinished) or failed (killed).
static int
children_follow(cpl_txn *t, uint64_t id, cpl_state to, cpl_state from)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16], pre[8];
	bool ok;
	int rv;
	enum { FINISHED, UNFINISHED, KILLED } what;
	if (to == CPL_JOB_FINISHED)
		what = FINISHED;
	else if (from == CPL_JOB_FINISHED)
		what = UNFINISHED;
	else if (to == CPL_FAILED || to == CPL_USER_KILLED ||
	    to == CPL_PARENT_KILLED)
		what = KILLED;
	else
		return 0;
	be64(pre, id);
	pair_key(start, id, 0);
	// the transaction's cursor on child: nothing below writes child
	if ((c = tcur(t, DB_CHILD)) == NULL)
		return t->err;
	// the message names the parent (its spec read and unpacked): made
	// at the first child only, most tasks have none
	char msg[160] = "";
	for (rv = crange(t, c, MDB_SET_RANGE, pre, 8, start, 16, &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(t, c, MDB_NEXT, pre, 8, NULL, 0, &k, &v, &ok)) {
		uint64_t child = rd64((uint8_t *)k.mv_data + 8);
		if (msg[0] == '\0') {
			char label[128];
			struct srec pr;
			if ((rv = srec_get(t, id, &pr)) != 0)
				break;
			cs_task_label(t, id, pr.uuid, label, sizeof(label));
			snprintf(msg, sizeof(msg), "parent %s %s", label,
			    cpl_state_name(to));
		}
		struct srec cr;
		if ((rv = srec_get(t, child, &cr)) != 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (what == FINISHED) {
			if (cr.pending == 0) {
				rv = fail(t, CPL_ECORRUPT);
				break;
			}
			cr.pending--;
			if ((rv = srec_put(t, child, &cr)) != 0)
				break;
			if (cr.pending == 0 && cr.state == CPL_AWAITING_PARENTS)
				rv = work_push(t, child, CPL_READY,
				    CPL_BY_BROKER, BIT(CPL_AWAITING_PARENTS),
				    msg);
		} else if (what == UNFINISHED) {
			cr.pending++;
			if ((rv = srec_put(t, child, &cr)) != 0)
				break;
			if (runnable(&cr))
				rv = work_push(t, child, CPL_AWAITING_PARENTS,
				    CPL_BY_BROKER,
				    BIT(CPL_READY) | BIT(CPL_RESTART_READY), msg);
		} else {
			if (!cpl_state_is_final((cpl_state)cr.state))
				rv = work_push(t, child, CPL_PARENT_KILLED,
				    CPL_BY_BROKER, NOT_FINAL_MASK, msg);
		}
		if (rv)
			break;
	}
	return rv;
}

// The stages of the path READY -> STAGED_IN -> PREPROCESSED -> RUNNING ->
// RUN_DONE -> POSTPROCESSED -> JOB_FINISHED that a launcher's move from
// one state of it to a later one passes over (EV_SKIP_*).
static uint8_t
skipped_stages(cpl_state from, cpl_state to)
{
	static const cpl_state path[] = { CPL_READY, CPL_STAGED_IN,
		CPL_PREPROCESSED, CPL_RUNNING, CPL_RUN_DONE, CPL_POSTPROCESSED,
		CPL_JOB_FINISHED };
	int a = -1, b = -1;
	if (from == CPL_RESTART_READY)
		from = CPL_READY;
	for (int i = 0; i < (int)(sizeof(path) / sizeof(path[0])); i++) {
		if (path[i] == from)
			a = i;
		if (path[i] == to)
			b = i;
	}
	uint8_t m = 0;
	for (int i = a + 1; a >= 0 && i < b; i++) {
		if (path[i] == CPL_STAGED_IN)
			m |= EV_SKIP_STAGED_IN;
		else if (path[i] == CPL_PREPROCESSED)
			m |= EV_SKIP_PREPROCESSED;
		else if (path[i] == CPL_POSTPROCESSED)
			m |= EV_SKIP_POSTPROCESSED;
	}
	return m;
}

// The one place a task's state changes: history event, state index,
// counters, run queue, lease, and queued bookkeeping. r is the task's
// current record; it is updated and written.
int
cs_transition(cpl_txn *t, uint64_t id, struct srec *r, cpl_state to,
    cpl_actor actor, int32_t rc, const char *msg)
{
	cpl_state from = (cpl_state)r->state;
	uint8_t k[16];
	int rv;

	if (!cpl_transition_allowed(from, to, actor))
		return CPL_EBADSTATE;
	if (actor == CPL_BY_LAUNCHER)
		t->ev_skipped = skipped_stages(from, to);
	// a launcher's report says where the task ran
	bool byl = actor == CPL_BY_LAUNCHER;
	if ((rv = cs_event_write(t, id, from, to, r->attempt, r->lease, rc, msg,
	         byl ? t->node : NULL, byl ? t->etime : 0, false)) != 0)
		return rv;
	if (runnable(r) && (rv = runq_del(t, id, r)) != 0)
		return rv;
	st_key(k, from, id);
	if ((rv = tdel(t, DB_ST_IDX, k, 9)) != 0)
		return rv;
	st_key(k, to, id);
	if ((rv = tput(t, DB_ST_IDX, k, 9, "", 0, 0)) != 0)
		return rv;
	t->meta.counts[from]--;
	t->meta.counts[to]++;
	if ((r->flags & SF_TAGGED) && (rv = cs_tag_count(t, id, from, to)) != 0)
		return rv;

	if ((from == CPL_RUNNING || to == CPL_RUNNING) && r->lease != 0 &&
	    (rv = cs_bj_note(t, id, r->lease, from, to)) != 0)
		return rv;
	// Entering READY or RESTART_READY hands the task back to the queue;
	// a lease is kept only by the stages a launcher is still working on.
	if (r->lease != 0 && (!holds_lease(to) || to == CPL_READY ||
	                         to == CPL_RESTART_READY)) {
		pair_key(k, r->lease, id);
		if ((rv = tdel(t, DB_LEASE_IDX, k, 16)) != 0)
			return rv;
		if (to == CPL_USER_KILLED || to == CPL_PARENT_KILLED) {
			// the launcher must stop the process it may be running
			if ((rv = notice_add(t, r->lease, id)) != 0)
				return rv;
		}
		r->lease = 0;
	}
	// A wall-time cut is not a failure (cpl_report.cut): the attempt is
	// not counted, nor is the claim that only runs the timeout handler
	// the cut did not let run.
	if (to == CPL_RUN_TIMEOUT && actor == CPL_BY_LAUNCHER &&
	    (t->cut || from == CPL_RESTART_READY)) {
		if (r->cuts < CUTS_FREE_MAX)
			r->cuts++;
		if (from == CPL_RESTART_READY)
			r->flags &= (uint8_t)~SF_HANDLER_DUE;
		else if (r->flags & SF_TIMEOUT_HANDLER)
			r->flags |= SF_HANDLER_DUE;
	}
	r->state = (uint8_t)to;
	// the time of the change: by the launcher's clock for its reports
	// (the lower bound of the task's next event time)
	r->changed_us = byl && t->etime ? t->etime : t->now;
	if (actor == CPL_BY_LAUNCHER)
		r->rc = rc;
	if (runnable(r) && (rv = runq_add(t, id, r)) != 0)
		return rv;
	if ((rv = srec_put(t, id, r)) != 0)
		return rv;

	// bookkeeping that follows from the new state
	switch (to) {
	case CPL_JOB_FINISHED:
	case CPL_FAILED:
	case CPL_USER_KILLED:
	case CPL_PARENT_KILLED:
		return children_follow(t, id, to, from);
	case CPL_RUN_TIMEOUT:
		if (t->cut && actor == CPL_BY_LAUNCHER) {
			char m[128];
			snprintf(m, sizeof(m), "cut %u: not counted as an "
			    "attempt%s", r->cuts, (r->flags & SF_HANDLER_DUE) ?
			    "; the timeout handler runs at the next claim" : "");
			return work_push(t, id, CPL_RESTART_READY, CPL_BY_BROKER,
			    BIT(CPL_RUN_TIMEOUT), m);
		}
		if ((r->flags & SF_TIMEOUT_HANDLER) && actor == CPL_BY_LAUNCHER)
			return 0; // the launcher runs the handler and decides
		if (r->flags & SF_AUTO_RETRY)
			return work_push(t, id, CPL_RESTART_READY, CPL_BY_BROKER,
			    BIT(CPL_RUN_TIMEOUT), "timed out: retry");
		return work_push(t, id, CPL_FAILED, CPL_BY_BROKER,
		    BIT(CPL_RUN_TIMEOUT), "timed out: no auto_timeout_retry");
	case CPL_RUN_ERROR:
		if ((r->flags & SF_ERR_HANDLER) && actor == CPL_BY_LAUNCHER)
			return 0;
		return work_push(t, id, CPL_FAILED, CPL_BY_BROKER,
		    BIT(CPL_RUN_ERROR), "run error: no error handler");
	case CPL_RESTART_READY:
		if (from == CPL_JOB_FINISHED &&
		    (rv = children_follow(t, id, to, from)) != 0)
			return rv;
		if (actor != CPL_BY_USER &&
		    r->attempt > (uint32_t)r->max_retries + r->cuts)
			return work_push(t, id, CPL_FAILED, CPL_BY_BROKER,
			    BIT(CPL_RESTART_READY), "retry limit reached");
		if (r->pending > 0)
			return work_push(t, id, CPL_AWAITING_PARENTS,
			    CPL_BY_BROKER, BIT(CPL_RESTART_READY),
			    "waiting for parents");
		return 0;
	default:
		return 0;
	}
}

// Applies queued follow-ups until none is left.
int
cs_drain(cpl_txn *t, uint64_t *changed)
{
	int rv = 0;
	size_t i;
	for (i = 0; i < t->nwork && rv == 0; i++) {
		struct work w = t->work[i];
		struct srec r;
		if ((rv = srec_get(t, w.id, &r)) != 0) {
			if (rv == CPL_ENOTFOUND)
				rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (w.only_from_mask_set && !(w.only_from & BIT(r.state)))
			continue; // something else changed it meanwhile
		rv = cs_transition(t, w.id, &r, (cpl_state)w.to,
		    (cpl_actor)w.actor, 0, w.msg);
		if (rv == CPL_EBADSTATE) {
			rv = 0; // a follow-up that no longer applies
			continue;
		}
		if (rv == 0 && changed)
			(*changed)++;
	}
	t->nwork = 0;
	if (rv != 0 && t->err == 0)
		t->err = rv; // half-applied bookkeeping must not commit
	return rv;
}

// A launcher's time of an event, clamped into [the task's last change,
// now]: a launcher clock ahead of ours cannot put an event after its
// commit, one behind cannot put it before the event it follows (a
// task's events stay in order). More than CPL_EVENT_SKEW_US off, the
// clock is wrong, not late: 0, the commit time stands.
static uint64_t
event_time(const cpl_txn *t, const struct srec *r, uint64_t us)
{
	if (us == 0 || us > t->now + CPL_EVENT_SKEW_US ||
	    us + CPL_EVENT_SKEW_US < t->now)
		return 0;
	if (us > t->now)
		us = t->now;
	if (us < r->changed_us)
		us = r->changed_us;
	return us;
}

int
cpl_task_report(cpl_txn *t, const cpl_report *rep)
{
	struct srec r;
	int rv;
	if (t == NULL || rep == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((unsigned)rep->to >= CPL_NSTATES || rep->to == CPL_STATE_NONE)
		return CPL_EINVAL;
	if ((rv = srec_get(t, rep->task_id, &r)) != 0)
		return rv;
	if (r.lease == 0 || r.lease != rep->lease || r.attempt != rep->attempt)
		return CPL_ESTALE;
	if ((rv = cs_lease_live(t, rep->lease)) != 0)
		return rv == CPL_ENOTFOUND ? CPL_ESTALE : rv;
	if (!cpl_transition_allowed((cpl_state)r.state, rep->to,
	        CPL_BY_LAUNCHER))
		return CPL_EBADSTATE;
	t->node = rep->node;
	t->cut = rep->cut && rep->to == CPL_RUN_TIMEOUT;
	t->etime = event_time(t, &r, rep->event_us);
	rv = cs_transition(t, rep->task_id, &r, rep->to, CPL_BY_LAUNCHER,
	    rep->return_code, rep->message);
	t->node = NULL;
	t->cut = false;
	t->etime = 0;
	if (rv != 0)
		return fail(t, rv);
	return cs_drain(t, NULL);
}

int
cpl_task_report_restart(cpl_txn *t, const cpl_report *rep)
{
	struct srec r;
	int rv;
	if (t == NULL || rep == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, rep->task_id, &r)) != 0)
		return rv;
	if (r.lease == 0 || r.lease != rep->lease || r.attempt != rep->attempt)
		return CPL_ESTALE;
	if ((rv = cs_lease_live(t, rep->lease)) != 0)
		return rv == CPL_ENOTFOUND ? CPL_ESTALE : rv;
	if (r.state != CPL_RUNNING || rep->to != CPL_RUNNING)
		return CPL_EBADSTATE;
	// an event of its own, as a returned claim's: the state stays; at
	// the launcher's time of the new start
	if ((rv = cs_event_write(t, rep->task_id, CPL_RUNNING, CPL_RUNNING,
	         r.attempt, r.lease, rep->return_code, rep->message, rep->node,
	         event_time(t, &r, rep->event_us), false)) != 0)
		return fail(t, rv);
	return 0;
}

int
cpl_task_set_state(cpl_txn *t, uint64_t id, cpl_state to, const char *msg)
{
	struct srec r;
	int rv;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((unsigned)to >= CPL_NSTATES || to == CPL_STATE_NONE)
		return CPL_EINVAL;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (to == CPL_USER_KILLED) {
		if (cpl_state_is_final((cpl_state)r.state))
			return CPL_EBADSTATE;
		return cpl_task_kill(t, id, msg, NULL);
	}
	if (r.lease != 0)
		return CPL_EBUSY;
	if (!cpl_transition_allowed((cpl_state)r.state, to, CPL_BY_USER))
		return CPL_EBADSTATE;
	if ((rv = cs_transition(t, id, &r, to, CPL_BY_USER, 0,
	         msg ? msg : "set by user")) != 0)
		return fail(t, rv);
	return cs_drain(t, NULL);
}

int
cpl_task_kill(cpl_txn *t, uint64_t id, const char *msg, uint64_t *killed)
{
	struct srec r;
	int rv;
	uint64_t n = 0;
	if (t == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if ((rv = srec_get(t, id, &r)) != 0)
		return rv;
	if (!cpl_state_is_final((cpl_state)r.state)) {
		if ((rv = cs_transition(t, id, &r, CPL_USER_KILLED,
		         CPL_BY_USER, 0, msg ? msg : "killed by user")) != 0)
			return fail(t, rv);
		n = 1;
		if ((rv = cs_drain(t, &n)) != 0)
			return rv;
	}
	if (killed)
		*killed = n;
	return 0;
}


// ------------------------------------------------------------ revival

// Whether every parent of a task is alive: none FAILED or killed.
static int
parents_alive(cpl_txn *t, uint64_t id, bool *alive)
{
	cpl_ids ps = { NULL, 0, 0 };
	int rv = cs_pair_walk(t, DB_PARENT, id, cs_idvec_cb, &ps);
	*alive = true;
	for (size_t i = 0; i < ps.n && rv == 0 && *alive; i++) {
		struct srec pr;
		if ((rv = srec_get(t, ps.v[i], &pr)) != 0)
			break;
		if (pr.state == CPL_FAILED || pr.state == CPL_USER_KILLED ||
		    pr.state == CPL_PARENT_KILLED)
			*alive = false;
	}
	free(ps.v);
	return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
}

int
cpl_task_revive(cpl_txn *t, uint64_t id, uint64_t *revived)
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
	char label[128], msg[160];
	cs_task_label(t, id, r.uuid, label, sizeof(label));
	snprintf(msg, sizeof(msg), "revived: ancestor %s restarted", label);
	if ((rv = cs_pair_walk(t, DB_CHILD, id, cs_idvec_cb, &q)) != 0)
		goto out;
	// breadth first; a task reached while another of its parents is
	// still dead is reached again from that parent once it is revived
	for (size_t i = 0; i < q.n && rv == 0; i++) {
		uint64_t c = q.v[i];
		struct srec cr;
		bool alive;
		if ((rv = srec_get(t, c, &cr)) != 0)
			break;
		if (cr.state != CPL_PARENT_KILLED)
			continue;
		if ((rv = parents_alive(t, c, &alive)) != 0 || !alive)
			continue;
		// PARENT_KILLED -> RESTART_READY -> AWAITING_PARENTS (or
		// runnable when every parent has finished meanwhile)
		if ((rv = cs_transition(t, c, &cr, CPL_RESTART_READY,
		         CPL_BY_USER, 0, msg)) != 0) {
			rv = fail(t, rv);
			break;
		}
		if ((rv = cs_drain(t, NULL)) != 0)
			break;
		n++;
		if ((rv = cs_pair_walk(t, DB_CHILD, c, cs_idvec_cb, &q)) != 0)
			break;
	}
out:
	free(q.v);
	if (rv == CPL_ENOMEM)
		rv = fail(t, rv);
	if (rv == 0 && revived)
		*revived = n;
	return rv;
}
