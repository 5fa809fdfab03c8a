// copal_testing: what the store holds, read back for assertions: history,
// state counters and recounts, snapshots around refusals, queries, lookups
// and name lists. See copal/testing/util.h.
#include <stdio.h>
#include <string.h>

#include "copal/testing/util.h"

static int
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

static int
tu_hist_cb(cpl_txn *txn, void *arg)
{
	tu_hist_arg *a = arg;
	a->out->n = 0;
	a->out->overflow = 0;
	return cpl_history_task(txn, a->id, tu_evs_cb, a->out);
}

int
tu_history(tu_env *e, uint64_t id, tu_evs *out)
{
	tu_hist_arg a = { id, out };
	return cpl_store_read(e->s, tu_hist_cb, &a);
}

static int
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

static int
tu_hist_len_cb(cpl_txn *txn, void *arg)
{
	tu_hlen_arg *a = arg;
	a->n = 0;
	return cpl_history_task(txn, a->id, tu_count_ev_cb, &a->n);
}

size_t
tu_history_len(tu_env *e, uint64_t id)
{
	tu_hlen_arg a = { id, 0 };
	int rv = cpl_store_read(e->s, tu_hist_len_cb, &a);
	if (rv != 0)
		TU_FAIL("history of %llu: %s (%s)", (unsigned long long)id,
		    cpl_errname(rv), cpl_strerror(rv));
	return a.n;
}

static int
tu_counts_cb(cpl_txn *txn, void *arg)
{
	return cpl_count_states(txn, (uint64_t *)arg);
}

int
tu_counts(tu_env *e, uint64_t counts[CPL_NSTATES])
{
	memset(counts, 0, CPL_NSTATES * sizeof counts[0]);
	return cpl_store_read(e->s, tu_counts_cb, counts);
}

static int
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

static int
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

int
tu_recount(tu_env *e, tu_recount_arg *out)
{
	return cpl_store_read(e->s, tu_recount_cb, out);
}

uint64_t
tu_count(tu_env *e, cpl_state s)
{
	uint64_t c[CPL_NSTATES];
	int rv = tu_counts(e, c);
	if (rv != 0)
		TU_FAIL("cpl_count_states: %s (%s)", cpl_errname(rv),
		    cpl_strerror(rv));
	return c[s];
}

cpl_store_stats
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

void
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

int
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

void
tu_snap_same(tu_env *e, uint64_t id, const tu_snap *s, const char *what)
{
	if (tu_snap_diff(e, id, s, what) != 0)
		TU_FAIL("%s: a refusal changed something (see above)", what);
}

typedef struct tu_query_arg {
	const cpl_filter *f;
	uint64_t after;
	size_t limit;
	unsigned flags;
	tu_ids *out;
	bool more;
} tu_query_arg;

static int
tu_query_fn(const cpl_task *t, void *arg)
{
	return tu_ids_cb(t->id, arg);
}

static int
tu_query_cb(cpl_txn *txn, void *arg)
{
	tu_query_arg *a = arg;
	a->out->n = 0;
	a->out->overflow = 0;
	a->more = false;
	return cpl_query(txn, a->f, a->after, a->limit, a->flags, tu_query_fn,
	    a->out, &a->more);
}

int
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

static int
tu_lookup_cb(cpl_txn *txn, void *arg)
{
	tu_lookup_arg *a = arg;
	a->id = 0;
	return cpl_task_lookup(txn, a->prefix, &a->id);
}

int
tu_lookup(tu_env *e, const char *prefix, uint64_t *id)
{
	tu_lookup_arg a = { prefix, 0 };
	int rv = cpl_store_read(e->s, tu_lookup_cb, &a);
	if (id != NULL)
		*id = rv == 0 ? a.id : 0;
	return rv;
}

static int
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

static int
tu_workflows_cb(cpl_txn *txn, void *arg)
{
	tu_names *l = arg;
	l->n = 0;
	l->overflow = 0;
	return cpl_workflow_list(txn, tu_names_cb, l);
}

int
tu_workflows(tu_env *e, tu_names *out)
{
	return cpl_store_read(e->s, tu_workflows_cb, out);
}

static int
tu_apps_fn(const Copal__App *app, uint64_t ntasks, void *arg)
{
	return tu_names_cb(app->name, ntasks, arg);
}

static int
tu_apps_cb(cpl_txn *txn, void *arg)
{
	tu_names *l = arg;
	l->n = 0;
	l->overflow = 0;
	return cpl_app_list(txn, tu_apps_fn, l);
}

int
tu_apps(tu_env *e, tu_names *out)
{
	return cpl_store_read(e->s, tu_apps_cb, out);
}

long long
tu_names_count(const tu_names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->name[i], name) == 0)
			return (long long)l->count[i];
	return -1;
}
