// The service of one database (see copal/sched.h): its lock, and the round
// that syncs the job states, cancels the jobs that waited too long and
// submits jobs for the backlog, backing off after failed submissions.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

// After a failed submission the next one waits: the period, doubled with
// each failure in a row, at most 10 minutes, so that a scheduler that
// keeps refusing gets a few tries an hour, not a record every period.
#define SVC_MAX_BACKOFF_S 600.0

struct sched_service {
	cpl_client *c;
	const char *db;
	const cpl_conf *conf;
	sched_say_fn log, warn;
	const volatile sig_atomic_t *stop;
	uint64_t last_unfit;
	char last_summary[512];
	char last_full[256];    // the last "every queue is full" said
	unsigned period;        // seconds between rounds
	unsigned fails;         // submissions failed in a row
	double retry_at;        // no submission before this (monotonic s)
};

int
sched_service_lock(const char *db, int *fdp, char *why, size_t wl)
{
	char path[PATH_MAX + 32], pid[32];
	cpl_dbpath(db, CPL_DB_SERVICE_LOCK, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(why, wl, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(why, wl, "a copal service already runs for %s%s%s%s",
		    db, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
		close(fd);
		return -1;
	}
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		snprintf(why, wl, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

sched_service *
sched_service_new(cpl_client *c, const char *db, const cpl_conf *conf,
    unsigned period, sched_say_fn log, sched_say_fn warn,
    const volatile sig_atomic_t *stop)
{
	sched_service *s = cpl_xcalloc(1, sizeof(*s));
	s->c = c;
	s->db = db;
	s->conf = conf;
	s->period = period;
	s->log = log;
	s->warn = warn;
	s->stop = stop;
	return s;
}

void
sched_service_free(sched_service *s)
{
	free(s);
}

// Cancels the service's own jobs that waited in the queue too long;
// returns how many it cancelled.
static size_t
cancel_stale(sched_service *s, const Copal__BatchJobListReply *l)
{
	const cpl_conf *conf = s->conf;
	char why[1024], msg[256];
	size_t n = 0;
	uint64_t now = (uint64_t)time(NULL) * 1000000u;
	for (size_t i = 0; i < l->n_jobs; i++) {
		const Copal__BatchJob *j = l->jobs[i];
		if (!sched_size_stale(conf, j, now))
			continue;
		const sched_ops *so = sched_find(j->scheduler);
		if (so == NULL)
			continue;
		if (sched_cancel(so, j->scheduler_id,
		        conf->scheduler_timeout_seconds, why, sizeof(why)) != 0) {
			s->log("qlaunch %" PRIu64 ": cancel failed: %s (will "
			    "retry)", j->id, why);
			continue;
		}
		snprintf(msg, sizeof(msg), "queued longer than %u minutes: "
		    "cancelled by copal service", conf->service_max_wait_minutes);
		if (sched_job_update(s->c, j->id, BJ(CANCELLED), NULL, msg,
		        "cancelled", NULL, NULL, why, sizeof(why)) != 0) {
			s->log("qlaunch %" PRIu64 ": %s", j->id, why);
			continue;
		}
		n++;
		s->log("qlaunch %" PRIu64 " (%s job %s): cancelled after "
		    "waiting more than %u minutes", j->id, j->scheduler,
		    j->scheduler_id, conf->service_max_wait_minutes);
	}
	return n;
}

// Submits jobs for the backlog b while the load asks for them.
static void
submit_jobs(sched_service *s, const Copal__BacklogReply *b, sched_load *ld)
{
	const cpl_conf *conf = s->conf;
	const cpl_queue_policy *q;
	uint32_t nodes;
	char why[1024];
	if (ld->need <= ld->have)
		s->last_full[0] = '\0';
	if (ld->need > ld->have && sched_mono_s() < s->retry_at)
		ld->need = ld->have; // backing off after failed submissions
	while (!*s->stop) {
		sched_size next = sched_size_next(conf, ld, b->max_nodes, &q,
		    &nodes);
		if (next == SCHED_SIZE_DONE)
			break;
		if (next == SCHED_SIZE_FULL) {
			char full[256];
			uint64_t more = ld->need - ld->have;
			snprintf(full, sizeof(full), "backlog needs %" PRIu64
			    " more node%s, but every queue has its maximum of "
			    "jobs", more, more == 1 ? "" : "s");
			if (strcmp(full, s->last_full) != 0)
				s->log("%s", full); // said once, not every round
			snprintf(s->last_full, sizeof(s->last_full), "%s", full);
			break;
		}
		sched_launch_req r = { .project = conf->project,
			.queue = q->name, .job_mode = conf->job_mode,
			.wf_filter = conf->wf_filter, .origin = "service",
			.nodes = nodes, .minutes = q->max_minutes };
		Copal__BatchJob *j = NULL;
		int rv = sched_launch(s->c, s->db, conf, &r, s->warn, &j, why,
		    sizeof(why));
		if (rv != 0) {
			double wait = s->period;
			for (unsigned k = 0; k < s->fails && wait < SVC_MAX_BACKOFF_S;
			     k++)
				wait *= 2;
			if (wait > SVC_MAX_BACKOFF_S)
				wait = SVC_MAX_BACKOFF_S;
			s->fails++;
			s->retry_at = sched_mono_s() + wait;
			s->log("submit to %s (%u node%s, %u min) failed: %s "
			    "(retry in %.0f s)", q->name, nodes,
			    nodes == 1 ? "" : "s", r.minutes, why, wait);
			if (j)
				copal__batch_job__free_unpacked(j, NULL);
			break;
		}
		s->log("submitted qlaunch %" PRIu64 " (%s job %s): %s, %u "
		    "node%s, %u min, %s", j->id, j->scheduler, j->scheduler_id,
		    q->name, nodes, nodes == 1 ? "" : "s", r.minutes,
		    r.job_mode);
		copal__batch_job__free_unpacked(j, NULL);
		s->fails = 0;
		sched_load_add(conf, ld, q, nodes);
	}
}

void
sched_service_round(sched_service *s)
{
	const cpl_conf *conf = s->conf;
	Copal__Reply *lrep = NULL, *brep = NULL;
	char why[1024];
	sched_sync(s->c, conf, s->log);
	if (sched_job_list(s->c, true, &lrep, why, sizeof(why)) != 0) {
		s->log("cannot list batch jobs: %s", why);
		return;
	}
	if (cancel_stale(s, lrep->batch_list) > 0) {
		// what is left active after the cancels
		copal__reply__free_unpacked(lrep, NULL);
		if (sched_job_list(s->c, true, &lrep, why, sizeof(why)) != 0) {
			s->log("cannot list batch jobs: %s", why);
			return;
		}
	}
	if (sched_backlog(s->c, conf, conf->wf_filter, 10, &brep, why,
	        sizeof(why)) != 0) {
		s->log("cannot read the backlog: %s", why);
		copal__reply__free_unpacked(lrep, NULL);
		return;
	}
	const Copal__BacklogReply *b = brep->backlog;
	if (b->unfit != s->last_unfit) {
		if (b->unfit) {
			char text[3072];
			sched_unfit_text(s->c, conf, b, text, sizeof(text));
			s->log("%s", text);
		} else {
			s->log("every runnable task fits the queue policy");
		}
		s->last_unfit = b->unfit;
	}
	// what is needed against what is queued or running
	sched_load ld;
	sched_load_count(conf, b->node_units, lrep->batch_list, &ld);
	char summary[512];
	snprintf(summary, sizeof(summary), "backlog %" PRIu64 " task%s = %"
	    PRIu64 " node%s; %zu job%s queued or running = %" PRIu64
	    " node%s", b->tasks, b->tasks == 1 ? "" : "s", ld.need,
	    ld.need == 1 ? "" : "s", ld.njobs, ld.njobs == 1 ? "" : "s",
	    ld.have, ld.have == 1 ? "" : "s");
	if (strcmp(summary, s->last_summary) != 0) {
		s->log("%s", summary);
		snprintf(s->last_summary, sizeof(s->last_summary), "%s",
		    summary);
	}
	submit_jobs(s, b, &ld);
	copal__reply__free_unpacked(brep, NULL);
	copal__reply__free_unpacked(lrep, NULL);
}
