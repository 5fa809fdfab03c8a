// copal store: batch job records (launcher jobs submitted to a batch
// scheduler), one each, keyed by id.
#include "store_impl.h"

// ------------------------------------------------------------ batch jobs

#define MAX_BJOB_STR 4096u

static bool
bjob_str_ok(const char *s, size_t max, bool allow_empty)
{
	if (s == NULL)
		return allow_empty;
	size_t n = strnlen(s, max + 1);
	return n <= max && (allow_empty || n > 0);
}

bool
cpl_bjob_move_ok(Copal__BatchJobState from, Copal__BatchJobState to)
{
	if (to == COPAL__BATCH_JOB_STATE__BJ_UNSPECIFIED ||
	    to == COPAL__BATCH_JOB_STATE__BJ_SUBMITTING)
		return from == to;
	switch (from) {
	case COPAL__BATCH_JOB_STATE__BJ_SUBMITTING:
		return to == COPAL__BATCH_JOB_STATE__BJ_QUEUED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_RUNNING ||
		    to == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_SUBMIT_FAILED;
	case COPAL__BATCH_JOB_STATE__BJ_QUEUED:
		return to == COPAL__BATCH_JOB_STATE__BJ_QUEUED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_RUNNING ||
		    to == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_CANCELLED;
	case COPAL__BATCH_JOB_STATE__BJ_RUNNING:
		return to == COPAL__BATCH_JOB_STATE__BJ_RUNNING ||
		    to == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
		    to == COPAL__BATCH_JOB_STATE__BJ_CANCELLED;
	default: // final states stay
		return from == to;
	}
}

static bool
bjob_final(Copal__BatchJobState s)
{
	return s == COPAL__BATCH_JOB_STATE__BJ_FINISHED ||
	    s == COPAL__BATCH_JOB_STATE__BJ_SUBMIT_FAILED ||
	    s == COPAL__BATCH_JOB_STATE__BJ_CANCELLED;
}

// Packs job under its id and hands back a decoded copy.
static int
bjob_store(cpl_txn *t, const Copal__BatchJob *job, Copal__BatchJob **out)
{
	uint8_t k[8];
	void *p = NULL;
	int rv;
	size_t sz = protobuf_c_message_get_packed_size(&job->base);
	if (sz > MAX_SPEC)
		return CPL_ETOOBIG;
	be64(k, job->id);
	if ((rv = treserve(t, DB_BJOB, k, 8, sz, 0, &p)) != 0)
		return rv;
	protobuf_c_message_pack(&job->base, p);
	if (out) {
		*out = copal__batch_job__unpack(NULL, sz, p);
		if (*out == NULL)
			return CPL_ENOMEM;
	}
	return 0;
}

int
cpl_bjob_add(cpl_txn *t, const Copal__BatchJob *job, Copal__BatchJob **out)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv;
	if (t == NULL || job == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (!bjob_str_ok(job->scheduler, MAX_NAME, false) ||
	    !bjob_str_ok(job->scheduler_id, MAX_NAME, true) ||
	    !bjob_str_ok(job->project, MAX_NAME, true) ||
	    !bjob_str_ok(job->queue, MAX_NAME, true) ||
	    !bjob_str_ok(job->job_mode, MAX_NAME, false) ||
	    !bjob_str_ok(job->wf_filter, MAX_NAME, true) ||
	    !bjob_str_ok(job->script, MAX_BJOB_STR, true) ||
	    !bjob_str_ok(job->message, MAX_MSG, true) ||
	    !bjob_str_ok(job->sched_flags, MAX_BJOB_STR, true) ||
	    !bjob_str_ok(job->origin, MAX_NAME, true) ||
	    !bjob_str_ok(job->sched_state, MAX_NAME, true) ||
	    !bjob_str_ok(job->sched_reason, MAX_MSG, true) ||
	    job->nodes == 0 || job->nodes > MAX_NODES ||
	    job->wall_minutes == 0)
		return CPL_EINVAL;
	uint64_t id = 1;
	if ((rv = tcursor(t, DB_BJOB, &c)) != 0)
		return rv;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8)
		id = rd64(k.mv_data) + 1;
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fail(t, map_mdb(rc));
	Copal__BatchJob j = *job;
	j.id = id;
	j.state = COPAL__BATCH_JOB_STATE__BJ_SUBMITTING;
	j.submitted_us = j.updated_us = t->now;
	j.started_us = j.ended_us = 0;
	return bjob_store(t, &j, out);
}

int
cpl_bjob_get(cpl_txn *t, uint64_t id, Copal__BatchJob **out)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || out == NULL)
		return CPL_EINVAL;
	be64(k, id);
	if ((rv = tget(t, DB_BJOB, k, 8, &v)) != 0)
		return rv;
	*out = copal__batch_job__unpack(NULL, v.mv_size, v.mv_data);
	return *out ? 0 : fail(t, CPL_ECORRUPT);
}

static bool
set_if(const char *s)
{
	return s != NULL && s[0] != '\0';
}

int
cpl_bjob_update(cpl_txn *t, const cpl_bjob_change *u, Copal__BatchJob **out)
{
	Copal__BatchJob *old = NULL;
	int rv;
	if (t == NULL || u == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (!bjob_str_ok(u->scheduler_id, MAX_NAME, true) ||
	    !bjob_str_ok(u->message, MAX_MSG, true) ||
	    !bjob_str_ok(u->sched_state, MAX_NAME, true) ||
	    !bjob_str_ok(u->script, MAX_BJOB_STR, true) ||
	    !bjob_str_ok(u->sched_reason, MAX_MSG, true) ||
	    u->state == COPAL__BATCH_JOB_STATE__BJ_UNSPECIFIED)
		return CPL_EINVAL;
	if ((rv = cpl_bjob_get(t, u->id, &old)) != 0)
		return rv;
	if (!cpl_bjob_move_ok(old->state, u->state)) {
		copal__batch_job__free_unpacked(old, NULL);
		return CPL_EBADSTATE;
	}
	// j only lends u's strings to bjob_store(), which packs them
	Copal__BatchJob j = *old;
	if (set_if(u->scheduler_id))
		j.scheduler_id = (char *)u->scheduler_id;
	if (set_if(u->message))
		j.message = (char *)u->message;
	if (set_if(u->sched_state))
		j.sched_state = (char *)u->sched_state;
	if (set_if(u->script))
		j.script = (char *)u->script;
	if (set_if(u->sched_reason))
		j.sched_reason = (char *)u->sched_reason;
	if (u->state != old->state) {
		j.state = u->state;
		if (u->state == COPAL__BATCH_JOB_STATE__BJ_RUNNING)
			j.started_us = t->now;
		if (bjob_final(u->state))
			j.ended_us = t->now;
	}
	j.updated_us = t->now;
	rv = bjob_store(t, &j, out);
	copal__batch_job__free_unpacked(old, NULL);
	return rv;
}

int
cpl_bjob_list(cpl_txn *t, cpl_bjob_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv = 0;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = tcursor(t, DB_BJOB, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		Copal__BatchJob *j =
		    copal__batch_job__unpack(NULL, v.mv_size, v.mv_data);
		if (j == NULL) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		rv = fn(j, arg);
		copal__batch_job__free_unpacked(j, NULL);
		if (rv)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

