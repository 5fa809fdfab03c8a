// After a preprocess: the task as the broker has it now, so that what the
// preprocess changed in its own task (`copal modify --lease`: args,
// environment, ranks, threads) applies to this run and not only to the
// next claim, as Balsam's preprocess (reduce_pre.py) expects (issue 22).
// One query, with a client of its own: the comm thread owns L->c.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "launcher_impl.h"

static cpl_client *qc; // opened at the first preprocess, kept

static int
query_client(launcher *L, cpl_client **c)
{
	if (qc == NULL) {
		cpl_client_opts co;
		memset(&co, 0, sizeof(co));
		co.db_dir = L->db;
		co.timeout_ms = 5000;
		co.attempts = 1;
		int rv = cpl_client_open(&co, &qc);
		if (rv)
			return rv;
	}
	*c = qc;
	return 0;
}

void
task_reread(launcher *L, ltask *t)
{
	cpl_client *c;
	Copal__Reply *rep = NULL;
	Copal__Filter f = COPAL__FILTER__INIT;
	uint64_t id = t->id;
	int rv;
	f.ids = &id;
	f.n_ids = 1;
	if ((rv = query_client(L, &c)) != 0 ||
	    (rv = cpl_call_query(c, &f, 0, 1, true, &rep)) != 0) {
		logm(LL_WARN, "task %s %s: cannot read it again after its "
		    "preprocess (%s): its claimed spec is used", t->uuid,
		    t->name, cpl_strerror(rv));
		cpl_reply_free(rep);
		return;
	}
	Copal__QueryReply *q = rep->query;
	if (q == NULL || q->n_tasks != 1 || q->tasks[0]->spec == NULL ||
	    q->tasks[0]->status == NULL ||
	    q->tasks[0]->status->attempt != t->attempt) {
		cpl_reply_free(rep);
		return; // gone or claimed again: its reports will be refused
	}
	// Swap the spec: each unpacked message is its own allocation, so
	// the claim's copy frees the new one with the task. The placement
	// stays what the claim made it: a change of nodes, packing or GPUs
	// applies at the next claim.
	Copal__TaskSpec *nsp = q->tasks[0]->spec, *osp = t->ct->task->spec;
	q->tasks[0]->spec = NULL;
	if (nsp->resources && osp->resources) {
		nsp->resources->num_nodes = osp->resources->num_nodes;
		nsp->resources->node_packing_count =
		    osp->resources->node_packing_count;
		nsp->resources->gpus_per_rank = osp->resources->gpus_per_rank;
	}
	t->ct->task->spec = nsp;
	t->name = nsp->name;
	copal__task_spec__free_unpacked(osp, NULL);
	cpl_reply_free(rep);
}

void
task_reread_close(void)
{
	cpl_client_close(qc);
	qc = NULL;
}
