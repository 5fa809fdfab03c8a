// copal queue rm: cancel a batch job and wait until it is gone, then
// record it CANCELLED (the broker then ends the leases its launchers did
// not give back, so that their tasks run elsewhere).
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

// The record of batch job id (a copy to free), or NULL with why.
static int
job_get(cpl_client *c, uint64_t id, Copal__BatchJob **out, char *why,
    size_t wl)
{
	Copal__Reply *rep = NULL;
	int rv = sched_job_list(c, false, &rep, why, wl);
	*out = NULL;
	if (rv)
		return rv;
	Copal__BatchJobListReply *l = rep->batch_list;
	for (size_t i = 0; i < l->n_jobs; i++) {
		if (l->jobs[i]->id == id) {
			*out = l->jobs[i];
			l->jobs[i] = l->jobs[--l->n_jobs];
			break;
		}
	}
	copal__reply__free_unpacked(rep, NULL);
	if (*out == NULL) {
		snprintf(why, wl, "no batch job %" PRIu64 " (copal ls queues "
		    "lists them)", id);
		return CPL_ENOTFOUND;
	}
	return 0;
}

static void
nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
sched_job_cancel(cpl_client *c, const cpl_conf *conf, uint64_t id,
    Copal__BatchJob **out, char *why, size_t wl)
{
	Copal__BatchJob *j = NULL;
	int rv;
	*out = NULL;
	if ((rv = job_get(c, id, &j, why, wl)) != 0)
		return rv;
	const sched_ops *so = sched_find(j->scheduler);
	if (!sched_job_active(j->state) || j->scheduler_id[0] == '\0' ||
	    so == NULL) {
		snprintf(why, wl, "batch job %" PRIu64 " is %s%s: nothing to "
		    "cancel", id, sched_job_state_name(j->state),
		    sched_job_active(j->state) ? " without a scheduler id "
		    "(still being submitted)" : "");
		copal__batch_job__free_unpacked(j, NULL);
		return CPL_EBADSTATE;
	}
	bool local = strcmp(j->scheduler, "local") == 0;
	unsigned t = conf->scheduler_timeout_seconds;
	char cwhy[512];
	if (sched_cancel(so, j->scheduler_id, t, cwhy, sizeof(cwhy)) != 0) {
		snprintf(why, wl, "batch job %" PRIu64 " (%s job %s): %s", id,
		    j->scheduler, j->scheduler_id, cwhy);
		copal__batch_job__free_unpacked(j, NULL);
		return CPL_EIO;
	}
	// Wait until the scheduler no longer runs it: only then are its
	// launchers gone and their leases safe to end. A local job that
	// outlives half the wait (its launcher's grace) is killed.
	double start = sched_mono_s();
	bool gone = false, killed = false;
	sched_state st;
	for (;;) {
		memset(&st, 0, sizeof(st));
		st.id = j->scheduler_id;
		st.script = j->script[0] ? j->script : NULL;
		if (sched_status(so, &st, 1, t, cwhy, sizeof(cwhy)) == 0 &&
		    st.state == BJ(FINISHED)) {
			gone = true;
			break;
		}
		double waited = sched_mono_s() - start;
		if (waited > t)
			break;
		if (local && !killed && waited > t / 2.0 &&
		    st.state == BJ(RUNNING)) {
			long pid = atol(j->scheduler_id);
			if (pid > 1)
				kill((pid_t)-pid, SIGKILL);
			killed = true;
		}
		nap_ms(250);
	}
	char msg[256], when[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	Copal__BatchJobState to = gone ? BJ(CANCELLED) : j->state;
	if (gone)
		snprintf(msg, sizeof(msg), "cancelled by copal queue rm at %s "
		    "(%s %s)", when, local ? "kill" : so == sched_find("slurm") ?
		    "scancel" : "qdel", j->scheduler_id);
	else
		snprintf(msg, sizeof(msg), "copal queue rm asked %s to cancel "
		    "it at %s; still listed after %u s", j->scheduler, when, t);
	rv = sched_job_update_reason(c, id, to, NULL, msg,
	    gone ? "cancelled" : NULL, gone ? st.reason : NULL, NULL, out,
	    why, wl);
	copal__batch_job__free_unpacked(j, NULL);
	if (rv)
		return rv;
	if (!gone) {
		snprintf(why, wl, "batch job %" PRIu64 " is still listed by the "
		    "scheduler %u s after the cancel (%s); copal ls queues "
		    "records its end when it goes", id, t,
		    st.word[0] ? st.word : "state unknown");
		return CPL_ETIMEOUT;
	}
	return 0;
}
