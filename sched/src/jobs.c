// Batch-job records through the broker (see copal/sched.h): listing and
// updating them, syncing their states from the schedulers, and the backlog
// against the queue policy.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

// ------------------------------------------------------------ records

// "QUEUED" for BJ_QUEUED: the schema's name without its prefix.
const char *
sched_job_state_name(Copal__BatchJobState s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &copal__batch_job_state__descriptor, (int)s);
	return v && strncmp(v->name, "BJ_", 3) == 0 ? v->name + 3 : "?";
}

bool
sched_job_active(Copal__BatchJobState s)
{
	return s == BJ(SUBMITTING) || s == BJ(QUEUED) || s == BJ(RUNNING);
}

int
sched_called(cpl_client *c, int rv, char *why, size_t wl)
{
	if (rv && !cpl_client_err_remote(c))
		snprintf(why, wl, "no answer from the broker: %s",
		    cpl_strerror(rv));
	else if (rv)
		// Cut to the caller's buffer on purpose (a log line).
		snprintf(why, wl, "%s", cpl_client_errmsg(c));
	return rv;
}

int
sched_job_update(cpl_client *c, uint64_t id, Copal__BatchJobState st,
    const char *sid, const char *msg, const char *word, const char *script,
    Copal__BatchJob **out, char *why, size_t wl)
{
	return sched_job_update_reason(c, id, st, sid, msg, word, NULL,
	    script, out, why, wl);
}

int
sched_job_update_reason(cpl_client *c, uint64_t id, Copal__BatchJobState st,
    const char *sid, const char *msg, const char *word, const char *reason,
    const char *script, Copal__BatchJob **out, char *why, size_t wl)
{
	Copal__BatchJobUpdateRequest u = COPAL__BATCH_JOB_UPDATE_REQUEST__INIT;
	Copal__Reply *rep;
	u.id = id;
	u.state = st;
	u.scheduler_id = (char *)(sid ? sid : "");
	u.message = (char *)(msg ? msg : "");
	u.sched_state = (char *)(word ? word : "");
	u.script = (char *)(script ? script : "");
	u.sched_reason = (char *)(reason ? reason : "");
	int rv = sched_called(c, cpl_call_bjob_update(c, &u, &rep), why, wl);
	if (rv == 0) {
		if (out) {
			*out = rep->batch_update->job;
			rep->batch_update->job = NULL;
		}
		copal__reply__free_unpacked(rep, NULL);
	}
	return rv;
}

int
sched_job_list(cpl_client *c, bool active_only, Copal__Reply **rep,
    char *why, size_t wl)
{
	static const Copal__BatchJobState act[] = { BJ(SUBMITTING), BJ(QUEUED),
		BJ(RUNNING) };
	return sched_called(c, cpl_call_bjob_list(c, active_only ? act : NULL,
	    active_only ? 3 : 0, rep), why, wl);
}

// ------------------------------------------------------------ sync

int
sched_sync(cpl_client *c, const cpl_conf *conf, sched_say_fn say)
{
	Copal__Reply *rep;
	char why[1024];
	int rv = sched_job_list(c, true, &rep, why, sizeof(why));
	if (rv) {
		say("cannot list batch jobs: %s", why);
		return rv;
	}
	Copal__BatchJobListReply *l = rep->batch_list;
	size_t n = l->n_jobs;
	sched_state *st = cpl_xcalloc(n ? n : 1, sizeof(*st));
	uint64_t now = (uint64_t)time(NULL) * 1000000u;
	uint64_t cutoff = (2u * conf->scheduler_timeout_seconds + 60u) *
	    1000000ull;
	const char *const *names = cpl_schedulers;
	for (size_t k = 0; names[k]; k++) {
		const sched_ops *so = sched_find(names[k]);
		size_t m = 0;
		Copal__BatchJob **who = cpl_xcalloc(n ? n : 1, sizeof(*who));
		for (size_t i = 0; i < n; i++) {
			Copal__BatchJob *j = l->jobs[i];
			if (strcmp(j->scheduler, names[k]) != 0)
				continue;
			if (j->scheduler_id[0] == '\0') {
				if (j->state == BJ(SUBMITTING) &&
				    now > j->submitted_us + cutoff &&
				    sched_job_update(c, j->id, BJ(SUBMIT_FAILED), NULL,
				        "the submission was cut off before the "
				        "scheduler answered (copal stopped?)",
				        NULL, NULL, NULL, why, sizeof(why)) == 0)
					say("qlaunch %" PRIu64 ": SUBMITTING -> "
					    "SUBMIT_FAILED (cut off)", j->id);
				continue;
			}
			st[m] = (sched_state){ .id = j->scheduler_id,
				.script = j->script[0] ? j->script : NULL };
			who[m++] = j;
		}
		if (m && sched_status(so, st, m,
		             conf->scheduler_timeout_seconds, why,
		             sizeof(why)) != 0) {
			say("cannot read job states from %s: %s (kept as they "
			    "were)", names[k], why);
			m = 0;
		} else if (m && why[0]) {
			say("%s", why);
		}
		for (size_t i = 0; i < m; i++) {
			Copal__BatchJob *j = who[i];
			Copal__BatchJobState to = st[i].state;
			if (to == BJ(UNSPECIFIED))
				continue;
			// a requeued job stays RUNNING for copal; its word
			// tells
			if (j->state == BJ(RUNNING) && to == BJ(QUEUED))
				to = BJ(RUNNING);
			if (to == j->state &&
			    strcmp(st[i].word, j->sched_state) == 0 &&
			    (st[i].reason[0] == '\0' ||
			        strcmp(st[i].reason, j->sched_reason) == 0))
				continue;
			if (sched_job_update_reason(c, j->id, to, NULL, NULL,
			        st[i].word, st[i].reason, NULL, NULL, why,
			        sizeof(why)) != 0) {
				say("qlaunch %" PRIu64 ": %s", j->id, why);
				continue;
			}
			if (to != j->state)
				say("qlaunch %" PRIu64 " (%s job %s): %s -> %s (%s)",
				    j->id, names[k], j->scheduler_id,
				    sched_job_state_name(j->state), sched_job_state_name(to), st[i].word);
		}
		free(who);
	}
	free(st);
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

// ------------------------------------------------------------ unfit tasks

int
sched_backlog(cpl_client *c, const cpl_conf *conf, const char *wf,
    uint32_t max_ids, Copal__Reply **rep, char *why, size_t wl)
{
	Copal__BacklogRequest b = COPAL__BACKLOG_REQUEST__INIT;
	Copal__QueueLimit lim[CPL_CONF_MAX_QUEUES], *lp[CPL_CONF_MAX_QUEUES];
	for (size_t i = 0; i < conf->nqueues; i++) {
		lim[i] = (Copal__QueueLimit)COPAL__QUEUE_LIMIT__INIT;
		lim[i].max_nodes = conf->queues[i].max_nodes;
		lim[i].gpus_per_node = conf->queues[i].gpus_per_node;
		lim[i].max_minutes = conf->queues[i].max_minutes;
		lp[i] = &lim[i];
	}
	b.workflow = (char *)(wf ? wf : "");
	b.queues = lp;
	b.n_queues = conf->nqueues;
	b.max_unfit_ids = max_ids;
	return sched_called(c, cpl_call_backlog(c, &b, rep), why, wl);
}

// "uuid8 name, uuid8 name, ..." of up to 10 tasks by id.
static void
describe_tasks(cpl_client *c, const uint64_t *ids, size_t n, char *out,
    size_t len)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__Reply *rep;
	char why[256];
	size_t off = 0;
	out[0] = '\0';
	f.ids = (uint64_t *)ids;
	f.n_ids = n;
	if (sched_called(c, cpl_call_query(c, &f, 0, (uint32_t)n, true, &rep),
	        why, sizeof(why)) != 0)
		return;
	for (size_t i = 0; i < rep->query->n_tasks && off < len; i++) {
		const Copal__Task *t = rep->query->tasks[i];
		int k = snprintf(out + off, len - off, "%s%.8s %s",
		    i ? ", " : "", t->uuid, t->spec ? t->spec->name : "");
		if (k < 0)
			break;
		off += (size_t)k;
	}
	copal__reply__free_unpacked(rep, NULL);
}

static void
policy_limits(const cpl_conf *conf, char *b, size_t len)
{
	size_t off = 0;
	b[0] = '\0';
	for (size_t i = 0; i < conf->nqueues && off < len; i++) {
		const cpl_queue_policy *q = &conf->queues[i];
		int k = snprintf(b + off, len - off,
		    "%s%s: <= %u nodes, %u GPUs per node, %u minutes",
		    i ? "; " : "", q->name, q->max_nodes, q->gpus_per_node,
		    q->max_minutes);
		if (k < 0)
			break;
		off += (size_t)k;
	}
}

void
sched_unfit_text(cpl_client *c, const cpl_conf *conf,
    const Copal__BacklogReply *b, char *out, size_t len)
{
	char lim[1024], who[1024];
	policy_limits(conf, lim, sizeof(lim));
	describe_tasks(c, b->unfit_ids, b->n_unfit_ids, who, sizeof(who));
	snprintf(out, len, "%" PRIu64 " runnable task%s can never run: no "
	    "queue of the policy in copal.conf fits %s (%s): %s%s", b->unfit,
	    b->unfit == 1 ? "" : "s", b->unfit == 1 ? "it" : "them", lim, who,
	    b->unfit > b->n_unfit_ids ? ", ..." : "");
}
