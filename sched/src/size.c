// Sizing the service's jobs to the backlog (see copal/sched.h): what the
// backlog needs against what is queued or running, which queue and how
// many nodes the next job gets, and which queued jobs waited too long.
// Pure functions of the settings and the records: no broker, no clock.
#include <string.h>

#include "internal.h"

void
sched_load_count(const cpl_conf *conf, uint64_t node_units,
    const Copal__BatchJobListReply *l, sched_load *ld)
{
	memset(ld, 0, sizeof(*ld));
	ld->need = (node_units + CPL_NODE_UNITS - 1) / CPL_NODE_UNITS;
	for (size_t i = 0; i < l->n_jobs; i++) {
		const Copal__BatchJob *j = l->jobs[i];
		if (!sched_job_active(j->state))
			continue;
		ld->have += j->nodes;
		ld->njobs++;
		for (size_t q = 0; q < conf->nqueues; q++)
			if (strcmp(conf->queues[q].name, j->queue) == 0)
				ld->active[q]++;
	}
}

// The queue a new job goes to: the first in the policy with room, and
// among those the first that fits the largest task if any does.
static const cpl_queue_policy *
pick_queue(const cpl_conf *conf, const size_t *active, uint32_t largest)
{
	const cpl_queue_policy *any = NULL;
	for (size_t i = 0; i < conf->nqueues; i++) {
		const cpl_queue_policy *q = &conf->queues[i];
		if (active[i] >= q->max_queued)
			continue;
		if (q->max_nodes >= largest)
			return q;
		if (any == NULL)
			any = q;
	}
	return any;
}

sched_size
sched_size_next(const cpl_conf *conf, const sched_load *ld, uint32_t largest,
    const cpl_queue_policy **qp, uint32_t *nodesp)
{
	if (ld->need <= ld->have || ld->njobs >= conf->service_max_queued_jobs)
		return SCHED_SIZE_DONE;
	const cpl_queue_policy *q = pick_queue(conf, ld->active, largest);
	if (q == NULL)
		return SCHED_SIZE_FULL;
	uint64_t gap = ld->need - ld->have;
	uint32_t nodes = gap > q->max_nodes ? q->max_nodes : (uint32_t)gap;
	if (nodes < largest)
		nodes = largest < q->max_nodes ? largest : q->max_nodes;
	if (nodes < q->min_nodes)
		nodes = q->min_nodes;
	*qp = q;
	*nodesp = nodes;
	return SCHED_SIZE_SUBMIT;
}

void
sched_load_add(const cpl_conf *conf, sched_load *ld,
    const cpl_queue_policy *q, uint32_t nodes)
{
	ld->have += nodes;
	ld->njobs++;
	ld->active[q - conf->queues]++;
}

bool
sched_size_stale(const cpl_conf *conf, const Copal__BatchJob *j,
    uint64_t now_us)
{
	uint64_t limit = (uint64_t)conf->service_max_wait_minutes * 60000000u;
	return conf->service_max_wait_minutes != 0 && j->state == BJ(QUEUED) &&
	    strcmp(j->origin, "service") == 0 && now_us >= j->submitted_us + limit;
}
