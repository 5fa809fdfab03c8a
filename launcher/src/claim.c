// Claims: how much work fits the free capacity of this launcher's nodes,
// the claim sent for it, and the placement of what the broker gives:
// units, GPUs and a slot number per task, given back when it is done.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher_impl.h"

// serial mode claims up to this many nodes' worth of tasks ahead
#define BACKLOG_NODES 2u

// A slot number on the task's first node: the lowest free one, so that a
// trace shows one track per slot.
static void
take_slot(launcher *L, ltask *t)
{
	t->slot = -1;
	if (t->nnodes == 0)
		return;
	lnode *n = &L->nodes[t->nodes[0]];
	if (n->slot_busy == NULL &&
	    (n->slot_busy = calloc(MAX_SLOTS, 1)) == NULL)
		return;
	for (int i = 0; i < MAX_SLOTS; i++) {
		if (!n->slot_busy[i]) {
			n->slot_busy[i] = 1;
			t->slot = i;
			return;
		}
	}
}

void
claim_give_back(launcher *L, ltask *t)
{
	if (t->slot >= 0 && t->nnodes) {
		L->nodes[t->nodes[0]].slot_busy[t->slot] = 0;
		t->slot = -1;
	}
	for (size_t i = 0; i < t->nnodes; i++) {
		lnode *n = &L->nodes[t->nodes[i]];
		n->free_units += t->units;
		if (n->free_units > CPL_NODE_PARTS)
			n->free_units = CPL_NODE_PARTS;
	}
	if (t->gpu_list[0] && t->nnodes) {
		// give the GPUs back (same ids on every node of the task)
		char tmp[256];
		snprintf(tmp, sizeof(tmp), "%s", t->gpu_list);
		for (char *save, *tok = strtok_r(tmp, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			int g = atoi(tok);
			for (size_t i = 0; i < t->nnodes; i++)
				if (g >= 0 && g < 64)
					L->nodes[t->nodes[i]].gpu_busy[g] = 0;
		}
	}
}

// Takes the GPUs a placed task needs (the same ids on each of its nodes).
static void
take_gpus(launcher *L, ltask *t)
{
	if (t->gpus == 0 || t->nnodes == 0)
		return;
	lnode *n0 = &L->nodes[t->nodes[0]];
	size_t pos = 0;
	uint32_t got = 0;
	for (uint32_t g = 0; g < n0->ngpus && g < 64 && got < t->gpus; g++) {
		if (n0->gpu_busy[g])
			continue;
		for (size_t i = 0; i < t->nnodes; i++)
			L->nodes[t->nodes[i]].gpu_busy[g] = 1;
		pos += (size_t)snprintf(t->gpu_list + pos,
		    sizeof(t->gpu_list) - pos, "%s%u", got ? "," : "", g);
		got++;
	}
}

// Places a claimed task on the nodes the broker chose and takes GPUs.
int
claim_adopt(launcher *L, Copal__ClaimedTask *ct, ltask **out)
{
	ltask *t = malloc(sizeof(*t));
	if (t == NULL) {
		copal__claimed_task__free_unpacked(ct, NULL);
		return CPL_ENOMEM;
	}
	memset(t, 0, offsetof(ltask, workdir));
	t->workdir[0] = '\0';
	t->outpath[0] = '\0';
	t->ct = ct;
	if (ct->task == NULL || ct->task->spec == NULL || ct->app == NULL ||
	    ct->task->status == NULL) {
		copal__claimed_task__free_unpacked(ct, NULL);
		free(t);
		return CPL_EPROTO;
	}
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const Copal__Resources *res = sp->resources;
	t->id = t->ct->task->id;
	t->attempt = t->ct->task->status->attempt;
	t->name = sp->name;
	snprintf(t->uuid, sizeof(t->uuid), "%s", t->ct->task->uuid);
	uint32_t packing = res && res->node_packing_count ?
	    res->node_packing_count : 1;
	uint32_t nodes = res && res->num_nodes ? res->num_nodes : 1;
	// exact packing: p tasks of count p fill a node (copal/common.h)
	t->units = nodes == 1 ? cpl_packing_parts(packing) : CPL_NODE_PARTS;
	if (!L->told_packing && L->o->mode == MODE_SERIAL && nodes == 1 &&
	    packing == 1 && L->o->max_concurrent > L->nnodes) {
		// the one reason --max-concurrent is not reached that the
		// user cannot see: a task takes a whole node by default
		logm(LL_NOTICE, "task %s %s has node_packing_count 1: it takes "
		    "a whole node, so such tasks run %zu at a time here, not "
		    "the %u of --max-concurrent; give tasks a "
		    "node_packing_count to run several on one node",
		    t->ct->task->uuid, sp->name, L->nnodes,
		    L->o->max_concurrent);
		L->told_packing = true;
	}
	t->gpus = res ? res->gpus_per_rank *
	        (res->ranks_per_node ? res->ranks_per_node : 1) : 0;
	t->nnodes = t->ct->n_node_index;
	t->nodes = calloc(t->nnodes ? t->nnodes : 1, sizeof(uint32_t));
	if (t->nodes == NULL) {
		copal__claimed_task__free_unpacked(t->ct, NULL);
		free(t);
		return CPL_ENOMEM;
	}
	bool ahead = false;
	for (size_t i = 0; i < t->nnodes; i++)
		ahead |= t->ct->node_index[i] >= L->nnodes;
	if (ahead) {
		// claimed ahead on the backlog's share: placed when a slot frees
		t->queued = true;
		t->nnodes = 0;
	}
	for (size_t i = 0; i < t->nnodes; i++) {
		uint32_t ni = t->ct->node_index[i];
		t->nodes[i] = ni;
		L->nodes[ni].free_units = L->nodes[ni].free_units > t->units ?
		    L->nodes[ni].free_units - t->units : 0;
	}
	t->slot = -1;
	if (!t->queued) {
		take_gpus(L, t);
		take_slot(L, t);
	}
	t->claimed_us = cpl_mono_us();
	L->tasks[L->ntasks++] = t;
	*out = t;
	return 0;
}

// Backlog tasks (serial mode: one node each) are placed in claim order.
ltask *
claim_next_queued(launcher *L, size_t *from)
{
	for (size_t i = *from; i < L->ntasks; i++) {
		ltask *t = L->tasks[i];
		if (!t->queued || t->stage != ST_NEW)
			continue;
		size_t n;
		for (n = 0; n < L->nnodes; n++) {
			uint32_t fg = 0;
			for (uint32_t g = 0; g < L->nodes[n].ngpus && g < 64; g++)
				fg += !L->nodes[n].gpu_busy[g];
			if (L->nodes[n].free_units >= t->units && fg >= t->gpus)
				break;
		}
		if (n == L->nnodes)
			return NULL; // keep claim order: wait for room
		t->queued = false;
		t->nodes[0] = (uint32_t)n;
		t->nnodes = 1;
		L->nodes[n].free_units -= t->units;
		take_gpus(L, t);
		take_slot(L, t);
		*from = i + 1;
		return t;
	}
	return NULL;
}

// Asks for as much work as fits the free capacity. In serial mode one
// more node's worth is claimed ahead and kept in a local backlog, so that
// a slot freed by a finished task is refilled at once, without waiting
// for a round trip to the broker.
bool
claim_ask(launcher *L, uint32_t wait_ms)
{
	uint32_t act = 0;
	uint64_t queued_units = 0;
	for (size_t i = 0; i < L->ntasks; i++) {
		if (L->tasks[i]->stage == ST_DONE)
			continue;
		act++;
		if (L->tasks[i]->queued)
			queued_units += L->tasks[i]->units;
	}
	uint32_t limit = L->o->mode == MODE_SERIAL ?
	    (BACKLOG_NODES + 1) * L->o->max_concurrent : L->o->max_concurrent;
	uint32_t cap = limit > act ? limit - act : 0;
	if (cap == 0 || L->ntasks + cap > MAX_TASKS)
		return false;
	uint32_t backlog = 0; // parts (1/CPL_NODE_PARTS node) to claim ahead
	if (L->o->mode == MODE_SERIAL &&
	    queued_units < BACKLOG_NODES * CPL_NODE_PARTS)
		backlog = BACKLOG_NODES * CPL_NODE_PARTS -
		    (uint32_t)queued_units;
	uint64_t real_free = 0;
	for (size_t i = 0; i < L->nnodes; i++)
		real_free += L->nodes[i].free_units;
	// wait while the backlog is more than half full: it fills free
	// slots first, and one claim then brings many tasks
	if (queued_units > 0 &&
	    backlog < BACKLOG_NODES * CPL_NODE_PARTS / 2)
		return false;
	if (real_free == 0 && backlog == 0)
		return false;
	size_t nback = (backlog + CPL_NODE_PARTS - 1) / CPL_NODE_PARTS;
	size_t noff = L->nnodes + nback;
	Copal__NodeCapacity *nc = calloc(noff, sizeof(*nc));
	Copal__NodeCapacity **ncp = calloc(noff, sizeof(*ncp));
	if (nc == NULL || ncp == NULL) {
		free(nc);
		free(ncp);
		return false;
	}
	for (size_t i = 0; i < noff; i++) {
		Copal__NodeCapacity x = COPAL__NODE_CAPACITY__INIT;
		nc[i] = x;
		ncp[i] = &nc[i];
		if (i >= L->nnodes) { // the backlog's share, node by node
			uint32_t u = backlog > CPL_NODE_PARTS ? CPL_NODE_PARTS :
			                                        backlog;
			backlog -= u;
			nc[i].free_units = u;
			nc[i].free_gpus = L->o->gpus_per_node;
			continue;
		}
		nc[i].free_units = L->nodes[i].free_units;
		uint32_t fg = 0;
		for (uint32_t g = 0; g < L->nodes[i].ngpus && g < 64; g++)
			fg += !L->nodes[i].gpu_busy[g];
		nc[i].free_gpus = fg;
	}
	uint32_t *units = calloc(noff, sizeof(uint32_t));
	uint32_t *gpus = calloc(noff, sizeof(uint32_t));
	comm_claim_req cl;
	bool sent = false;
	memset(&cl, 0, sizeof(cl));
	if (units && gpus) {
		for (size_t i = 0; i < noff; i++) {
			units[i] = nc[i].free_units;
			gpus[i] = nc[i].free_gpus;
		}
		cl.max_tasks = cap;
		cl.n = noff;
		cl.units = units;
		cl.gpus = gpus;
		cl.wait_ms = wait_ms;
		// the backlog's share is not nodes a multi-node task can use
		cl.max_task_nodes = (uint32_t)L->nnodes;
		if (L->deadline_us) {
			uint64_t now = cpl_mono_us();
			cl.remaining_min = L->deadline_us > now ?
			    (uint32_t)((L->deadline_us - now) / 60000000u) : 0;
			if (cl.remaining_min == 0)
				cl.remaining_min = 1;
		}
		sent = comm_claim(L->cm, &cl);
	}
	free(units);
	free(gpus);
	free(nc);
	free(ncp);
	return sent;
}
