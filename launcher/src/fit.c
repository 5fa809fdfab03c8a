// What the launcher checks with a client of its own, outside the loop's
// traffic with the broker (comm.c):
//   - at start, that a workflow filter names a workflow with tasks (a typo
//     would otherwise run nothing, silently, until the idle time is up);
//   - its shape (nodes, GPUs per node, wall time), added to the
//     database's list of launchers that ran (copal/shapes.h, copal ls);
//   - when it goes idle and when it ends, the runnable tasks that fit none
//     of its nodes: how many, the largest request, what it has.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/shapes.h"
#include "copal/suggest.h"
#include "launcher_impl.h"

static int
own_client(const char *db, cpl_client **c)
{
	cpl_client_opts co;
	memset(&co, 0, sizeof(co));
	co.db_dir = db;
	co.timeout_ms = 5000;
	co.attempts = 1;
	return cpl_client_open(&co, c);
}

// "a, b (3), ..." of names[0..n), at most 10.
static void
join(char *b, size_t len, const char *const *names, size_t n)
{
	size_t off = 0;
	b[0] = '\0';
	for (size_t i = 0; i < n && i < 10 && off < len; i++) {
		int k = snprintf(b + off, len - off, "%s%s", i ? ", " : "",
		    names[i]);
		if (k < 0)
			break;
		off += (size_t)k;
	}
	if (n > 10 && off < len)
		snprintf(b + off, len - off, ", ... (%zu in all)", n);
}

int
fit_check_filter(const launcher_opts *o)
{
	cpl_client *c;
	Copal__Reply *rep = NULL;
	int rv = 0;
	// a broker that does not answer is launcher_run's to report
	if (own_client(o->db_dir, &c) != 0)
		return 0;
	if (cpl_call_workflow_list(c, &rep) != 0) {
		cpl_client_close(c);
		return 0;
	}
	const Copal__WorkflowListReply *l = rep->workflow_list;
	const char **names = calloc(l->n_workflows + 1, sizeof(char *));
	size_t n = 0;
	if (names == NULL)
		goto out;
	for (size_t i = 0; i < l->n_workflows; i++) {
		const Copal__WorkflowCount *w = l->workflows[i];
		if (w->tasks == 0 || !w->name[0])
			continue;
		if (strcmp(w->name, o->wf_filter) == 0)
			goto out; // it has tasks
		names[n++] = w->name;
	}
	const char *close[5];
	char all[2048], near[1024];
	size_t nc = cpl_closest_names(o->wf_filter, names, n, close, 5);
	join(all, sizeof(all), names, n);
	join(near, sizeof(near), close, nc);
	fprintf(stderr, "copal launcher: --wf-filter %s matches no task", o->wf_filter);
	if (nc)
		fprintf(stderr, "; did you mean: %s?", near);
	if (n)
		fprintf(stderr, " (the workflows with tasks: %s)", all);
	else
		fprintf(stderr, " (no task has a workflow yet)");
	fprintf(stderr, "\ncopal launcher: to wait for tasks of %s to come, "
	    "give --persistent or --idle-ttl S\n", o->wf_filter);
	rv = CPL_ENOTFOUND;
out:
	free(names);
	cpl_reply_free(rep);
	cpl_client_close(c);
	return rv;
}

// The wall time left (minutes, at least 1), 0 without a limit.
static uint32_t
minutes_left(const launcher *L)
{
	if (!L->deadline_us)
		return 0;
	uint64_t now = cpl_mono_us();
	uint32_t m = L->deadline_us > now ?
	    (uint32_t)((L->deadline_us - now) / 60000000u) : 0;
	return m ? m : 1;
}

void
fit_note_shape(launcher *L)
{
	cpl_shape s = { (uint32_t)L->nnodes, L->o->gpus_per_node, 0 };
	if (L->o->time_limit_min > 0) { // whole minutes, rounded up
		s.minutes = (uint32_t)L->o->time_limit_min;
		if (s.minutes < L->o->time_limit_min)
			s.minutes++;
	}
	if (cpl_shapes_add(L->db, &s) != 0)
		logm(LL_DEBUG, "cannot record this launcher's shape in %s",
		    L->db);
}

// The largest request among the tasks ids: per dimension.
static void
largest(cpl_client *c, const uint64_t *ids, size_t n, cpl_shape *big)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__Reply *rep = NULL;
	memset(big, 0, sizeof(*big));
	f.ids = (uint64_t *)ids;
	f.n_ids = n;
	if (cpl_call_query(c, &f, 0, (uint32_t)n, true, &rep) != 0) {
		cpl_reply_free(rep);
		return;
	}
	for (size_t i = 0; i < rep->query->n_tasks; i++) {
		const Copal__TaskSpec *sp = rep->query->tasks[i]->spec;
		const Copal__Resources *r = sp ? sp->resources : NULL;
		if (r == NULL)
			continue;
		uint32_t nodes = r->num_nodes ? r->num_nodes : 1;
		uint32_t gpus = r->gpus_per_rank *
		    (r->ranks_per_node ? r->ranks_per_node : 1);
		if (nodes > big->nodes)
			big->nodes = nodes;
		if (gpus > big->gpus_per_node)
			big->gpus_per_node = gpus;
		if (r->wall_time_minutes > big->minutes)
			big->minutes = r->wall_time_minutes;
	}
	cpl_reply_free(rep);
}

void
fit_warn_unfit(launcher *L, const char *when)
{
	Copal__BacklogRequest b = COPAL__BACKLOG_REQUEST__INIT;
	Copal__QueueLimit q = COPAL__QUEUE_LIMIT__INIT, *qp = &q;
	Copal__Reply *rep = NULL;
	cpl_client *c;
	if (own_client(L->db, &c) != 0)
		return;
	q.max_nodes = (uint32_t)L->nnodes;
	q.gpus_per_node = L->o->gpus_per_node;
	q.max_minutes = minutes_left(L);
	b.workflow = (char *)(L->o->wf_filter ? L->o->wf_filter : "");
	b.queues = &qp;
	b.n_queues = 1;
	b.max_unfit_ids = 1000;
	if (cpl_call_backlog(c, &b, &rep) == 0 && rep->backlog->unfit) {
		const Copal__BacklogReply *bl = rep->backlog;
		size_t n = bl->n_unfit_ids < 1000 ? bl->n_unfit_ids : 1000;
		cpl_shape big;
		char tw[32], lw[32];
		largest(c, bl->unfit_ids, n, &big);
		if (big.minutes)
			snprintf(tw, sizeof(tw), "%u minutes", big.minutes);
		else
			snprintf(tw, sizeof(tw), "no wall time");
		if (q.max_minutes)
			snprintf(lw, sizeof(lw), "%u minutes left", q.max_minutes);
		else
			snprintf(lw, sizeof(lw), "no wall-time limit");
		logm(LL_WARN, "%s: %" PRIu64 " runnable task(s)%s%s fit no node "
		    "of this launcher: the largest request is %u node(s), %u "
		    "GPU(s) per node, %s%s; this launcher has %u node(s), %u "
		    "GPU(s) per node, %s", when, bl->unfit,
		    L->o->wf_filter ? " of workflow " : "",
		    L->o->wf_filter ? L->o->wf_filter : "", big.nodes,
		    big.gpus_per_node, tw, bl->unfit > n ? " (among the "
		    "first 1000)" : "", q.max_nodes, q.gpus_per_node, lw);
	}
	cpl_reply_free(rep);
	cpl_client_close(c);
}
