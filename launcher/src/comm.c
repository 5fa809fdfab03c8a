// The launcher's broker traffic on its own threads: batched reports and
// the heartbeat that renews the lease of every task held on one; claims,
// which the broker may hold open until a task becomes runnable, on the
// other, with a client of their own.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "launcher.h"

// Reports coming fast are sent in fewer, larger requests: after a batch
// of at least REPORT_HOLD_MIN reports, the next is sent no sooner than
// REPORT_GAP_US after it (unless REPORT_HOLD_MAX are waiting). Each
// request costs the broker a commit and both ends a round trip through
// NNG's threads (~60 us of the launcher's CPU, issue 13). A batch that
// follows a small one (or none for REPORT_GAP_US) is never held: a chain
// of tasks, or the last parent of a fan-in, is reported at once; a report
// right after a burst waits at most REPORT_GAP_US. The reports carry their
// own event times.
#define REPORT_GAP_US 10000u
#define REPORT_HOLD_MIN 8u
#define REPORT_HOLD_MAX 512u

// The lease comes with the first claim (ClaimRequest.new_lease): one
// round trip to the first tasks, and at a large allocation's start one
// request per launcher, not two. Until the main loop asks that claim
// (GRANT_WAIT, at most GRANT_WAIT_US from the start) and while it is in
// flight (GRANT_INFLIGHT) the comm thread asks for no lease of its own;
// if the claim fails (or a broker without new_lease refuses it), or none
// is asked in time, the comm thread's heartbeat takes the lease, as
// before (GRANT_NONE). The main loop asks at its first turn; the bound is
// for a launcher with nothing to ask for, and is generous for a loaded
// machine. While the claim is in flight the comm thread looks again every
// GRANT_POLL_US (its answer wakes it anyway). If its answer is lost
// (every resend of the client timed out after the broker granted the
// lease), the heartbeat's lease is a second one, and the first lease's
// tasks go back to the queue when it expires, one TTL later.
#define GRANT_WAIT_US 5000000u
#define GRANT_POLL_US 1000000u
enum { GRANT_NONE, GRANT_WAIT, GRANT_INFLIGHT };

struct comm {
	cpl_client *c;
	cpl_client *cc;        // the claim thread's
	const launcher_opts *o;
	pthread_t th, cth;
	bool cth_started;
	pthread_mutex_t mx;
	pthread_cond_t cv;
	pthread_cond_t ccv;    // the claim thread waits on it
	int evfd;
	bool stop;
	// main -> comm
	struct report *out;
	size_t nout, capout;
	bool claim_pending;
	bool renew;            // heartbeat at once
	bool stopping;         // reports say so (no held claim runs again)
	bool holding;          // the comm thread holds a batch (REPORT_GAP_US)
	int grant;             // GRANT_*: whether the first claim takes the lease
	bool grant_renew;      // a renewal was asked while it was in flight
	uint32_t cl_max, cl_rem, cl_wait, cl_maxnodes;
	uint32_t *cl_units, *cl_gpus;
	size_t cl_n, cl_cap;
	// a report batch the broker did not take (a transient error): sent
	// again, before anything newer, with the same request id, so that a
	// batch whose first copy was committed is not applied twice
	struct report *again;
	size_t nagain;
	uint64_t again_rid;
	uint64_t again_lease;  // the lease the batch was made under
	// comm -> main
	comm_events ev;
	size_t capt, capk;
	uint64_t lease;
	uint64_t next_hb;      // when the lease is renewed next (comm thread)
	comm_counts n;         // (each field written by one thread)
};

static void
wake(comm *c)
{
	uint64_t one = 1;
	if (write(c->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		fprintf(stderr, "launcher: eventfd: %s\n", strerror(errno));
}

// The result rv of a typed call: a local failure is said here; a refusal
// (the broker's status) is the caller's to explain.
static int
called(comm *c, int rv)
{
	if (rv && !cpl_client_err_remote(c->c))
		fprintf(stderr, "launcher: broker request failed: %s\n",
		    cpl_strerror(rv));
	return rv;
}

// Whether a failed call may succeed when made again: a local failure (no
// answer, no connection) or a broker that could not commit (disk full, an
// I/O error, the map full, shutting down). A refusal of what was asked
// (the lease is gone, a malformed request) is final.
static bool
transient(comm *c, int rv)
{
	if (!cpl_client_err_remote(c->c))
		return true;
	switch (rv) {
	case CPL_ENOMEM:
	case CPL_EMAPFULL:
	case CPL_EPANIC:
	case CPL_EIO:
	case CPL_EINTERNAL:
	case CPL_ETIMEOUT:
	case CPL_ECONNECT:
	case CPL_ESHUTDOWN:
	case CPL_ELOCKED:
		return true;
	default:
		return false;
	}
}

// Adds kill notices for the main loop; called with the lock held.
static void
push_kills(comm *c, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (c->ev.nkills == c->capk) {
			size_t cap = c->capk ? c->capk * 2 : 16;
			uint64_t *k = realloc(c->ev.kills, cap * sizeof(*k));
			if (k == NULL)
				return;
			c->ev.kills = k;
			c->capk = cap;
		}
		c->ev.kills[c->ev.nkills++] = ids[i];
	}
}

static void
free_reports(struct report *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].msg);
	free(r);
}

// How often the lease is renewed when nothing else renews it: a third of
// the TTL, and at least every 2 s so that kill notices for quiet
// launchers arrive promptly.
static uint64_t
hb_every(const comm *c)
{
	uint64_t every = (uint64_t)c->o->lease_ttl_ms * 1000u / 3u;
	return every > 2000000u ? 2000000u : every;
}

// The broker took a report batch sent at sent under lease and says that
// the lease has left_us left: as a heartbeat's answer, it confirms the
// lease (a deadline never moves back), and the next heartbeat waits
// another interval, unless that would leave less than two intervals
// before the lease ends (room for a heartbeat that fails and the one
// after it, as without reports). A launcher that reports sends no
// heartbeats (with a short TTL, fewer).
static void
renewed(comm *c, uint64_t lease, uint64_t sent, uint64_t left_us)
{
	bool soon = false;
	uint64_t every = hb_every(c);
	pthread_mutex_lock(&c->mx);
	if (lease != 0 && lease == c->lease && c->ev.have_lease) {
		// the main loop reads the lease at its next turn (1 s at
		// most), or now if what it has would end before long
		soon = c->ev.lease_until_us < cpl_mono_us() + 2 * every;
		if (sent > c->ev.lease_sent_us)
			c->ev.lease_sent_us = sent;
		if (sent + left_us > c->ev.lease_until_us)
			c->ev.lease_until_us = sent + left_us;
		uint64_t next = sent + every, last = sent + left_us;
		if (last < next + 2 * every)
			next = last > 2 * every ? last - 2 * every : 0;
		if (next > c->next_hb)
			c->next_hb = next;
	}
	pthread_mutex_unlock(&c->mx);
	if (soon)
		wake(c);
}

// Sends reports under request id rid (the same for every copy of one
// batch); 0 when the broker took them (even with refusals of single
// reports, or a refusal of the batch that sending it again cannot
// change), else the error of a transient failure: keep and send again.
static int
send_reports(comm *c, struct report *r, size_t n, uint64_t rid, bool resent)
{
	Copal__StateReport *s = calloc(n, sizeof(*s));
	Copal__StateReport **sp = calloc(n, sizeof(*sp));
	int rv;
	if (s == NULL || sp == NULL) {
		free(s);
		free(sp);
		return CPL_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		Copal__StateReport x = COPAL__STATE_REPORT__INIT;
		s[i] = x;
		s[i].task_id = r[i].id;
		s[i].attempt = r[i].attempt;
		s[i].to_state = r[i].to;
		s[i].return_code = r[i].rc;
		s[i].cut = r[i].cut;
		s[i].message = r[i].msg ? r[i].msg : "";
		s[i].node = r[i].node;
		s[i].event_us = r[i].event_us;
		s[i].restart = r[i].restart;
		sp[i] = &s[i];
	}
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	rr.lease_id = c->lease;
	pthread_mutex_lock(&c->mx);
	rr.stopping = c->stopping || c->stop;
	pthread_mutex_unlock(&c->mx);
	rr.n_reports = n;
	rr.reports = sp;
	req.body_case = COPAL__REQUEST__BODY_REPORT;
	req.report = &rr;
	req.request_id = rid;
	Copal__Reply *rep = NULL;
	uint64_t sent = cpl_mono_us();
	rv = cpl_client_call(c->c, &req, &rep);
	if (rv == 0 && rep->status != 0) {
		rv = (int)rep->status;
		fprintf(stderr, "launcher: reports refused: %s%s%s\n",
		    cpl_strerror(rv), rep->error && rep->error[0] ? ": " : "",
		    rep->error ? rep->error : "");
		// a refusal of the whole batch: only a failed commit is
		// worth sending again
		bool again = rv == CPL_ENOMEM || rv == CPL_EMAPFULL ||
		    rv == CPL_EPANIC || rv == CPL_EIO || rv == CPL_EINTERNAL ||
		    rv == CPL_ESHUTDOWN;
		cpl_reply_free(rep);
		rep = NULL;
		if (!again)
			rv = 0;
	} else if (rv == 0 && rep->report == NULL) {
		cpl_reply_free(rep);
		rep = NULL;
		rv = CPL_EPROTO;
	} else if (rv != 0) {
		fprintf(stderr, "launcher: broker request failed: %s\n",
		    cpl_strerror(rv));
	}
	if (rv == 0 && rep != NULL) {
		c->n.reports += n;
		c->n.report_calls++;
		// (not from a resend: the broker may answer it with the
		// first copy's stored reply, whose time counts from then)
		if (rep->report->lease_left_ms > 0 && !resent)
			renewed(c, rr.lease_id, sent,
			    (uint64_t)rep->report->lease_left_ms * 1000u);
		if (rep->report->n_kill_task_ids) {
			pthread_mutex_lock(&c->mx);
			push_kills(c, rep->report->kill_task_ids,
			    rep->report->n_kill_task_ids);
			pthread_mutex_unlock(&c->mx);
			wake(c);
		}
		for (size_t i = 0; i < rep->report->n_status && i < n; i++)
			if (rep->report->status[i] != 0)
				fprintf(stderr, "launcher: report of task %s "
				    "-> %s refused: %s\n", r[i].who,
				    cpl_state_name(r[i].to),
				    cpl_strerror((int)rep->report->status[i]));
		cpl_reply_free(rep);
	}
	free(s);
	free(sp);
	return rv;
}

// Who holds the lease, as the broker lists it.
static void
owner_of(const comm *c, char *owner, size_t len)
{
	char host[128];
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(owner, len, "launcher %s pid %d %s", host, (int)getpid(),
	    c->o->mode == MODE_MPI ? "mpi" : "serial");
}

// A lease the broker granted at sent (our clock), taken as ours (by_claim:
// it came with the first claim); called with the lock held.
static void
lease_taken(comm *c, uint64_t lease, uint64_t sent, bool by_claim)
{
	c->ev.lease_by_claim = by_claim;
	c->lease = lease;
	c->ev.lease = lease;
	c->ev.have_lease = true;
	c->ev.lease_sent_us = sent;
	c->ev.lease_until_us = sent + (uint64_t)c->o->lease_ttl_ms * 1000u;
}

static void
heartbeat(comm *c, bool release)
{
	char owner[256];
	owner_of(c, owner, sizeof(owner));
	Copal__Reply *rep = NULL;
	// the broker's deadline counts from its commit, after this
	uint64_t sent = cpl_mono_us();
	int rv = called(c, cpl_call_heartbeat_job(c->c, c->lease, owner,
	    c->o->lease_ttl_ms, release, c->o->bjob_id, c->o->sched_job_id,
	    &rep));
	// only "no such lease" ends it: a timeout or a failed commit (disk
	// full) leaves it as it was, unconfirmed, and it is renewed again
	if (rv != 0 && (transient(c, rv) ||
	    (rv != CPL_ENOTFOUND && rv != CPL_EEXPIRED && c->lease != 0))) {
		if (cpl_client_err_remote(c->c))
			fprintf(stderr, "launcher: heartbeat of lease %llu not "
			    "taken: %s; trying again\n",
			    (unsigned long long)c->lease,
			    cpl_client_errmsg(c->c));
		return;
	}
	if (rv == CPL_EBADSTATE && c->lease == 0 && !release &&
	    cpl_client_err_remote(c->c)) {
		// a new lease refused: our batch job has ended (cancelled);
		// the loop stops
		pthread_mutex_lock(&c->mx);
		if (!c->ev.job_ended)
			fprintf(stderr, "launcher: no new lease: %s\n",
			    cpl_client_errmsg(c->c));
		c->ev.job_ended = true;
		pthread_mutex_unlock(&c->mx);
		wake(c);
		return;
	}
	pthread_mutex_lock(&c->mx);
	if (rv == CPL_EPERM && cpl_client_err_remote(c->c)) {
		// its user may not run launchers (or was dropped): asking
		// again changes nothing
		if (!c->ev.refused)
			fprintf(stderr, "launcher: the broker refuses this "
			    "launcher: %s\n", cpl_client_errmsg(c->c));
		c->ev.refused = true;
	}
	if (rv != 0) {
		if (!release && !c->ev.refused) {
			fprintf(stderr, "launcher: lease %llu lost: %s\n",
			    (unsigned long long)c->lease,
			    cpl_client_errmsg(c->c));
			c->ev.lease_lost = true;
			// reports under the old lease would be refused
			free_reports(c->out, c->nout);
			c->out = NULL;
			c->nout = c->capout = 0;
			free_reports(c->again, c->nagain);
			c->again = NULL;
			c->nagain = 0;
		}
		c->lease = 0;
		c->ev.have_lease = false;
		c->ev.lease_until_us = 0;
	} else if (!release) {
		c->n.heartbeats++;
		lease_taken(c, rep->heartbeat->lease_id, sent, false);
		push_kills(c, rep->heartbeat->kill_task_ids,
		    rep->heartbeat->n_kill_task_ids);
		pthread_cond_signal(&c->ccv); // a claim may wait for a lease
	}
	pthread_mutex_unlock(&c->mx);
	cpl_reply_free(rep);
	wake(c);
}

// One claim; with grant, under no lease yet: the claim takes one
// (ClaimRequest.new_lease).
static void
do_claim(comm *c, uint64_t lease, bool grant, uint32_t max, uint32_t rem,
    uint32_t wait, uint32_t maxnodes, size_t n, const uint32_t *units,
    const uint32_t *gpus)
{
	Copal__NodeCapacity *nc = calloc(n, sizeof(*nc));
	Copal__HeartbeatRequest nl = COPAL__HEARTBEAT_REQUEST__INIT;
	char owner[256];
	uint64_t sent = 0;
	Copal__NodeCapacity **ncp = calloc(n, sizeof(*ncp));
	Copal__Reply *rep = NULL;
	bool failed = true;
	if (nc && ncp) {
		for (size_t i = 0; i < n; i++) {
			Copal__NodeCapacity x = COPAL__NODE_CAPACITY__INIT;
			nc[i] = x;
			// exact packing; free_units for a broker that
			// reads no parts
			nc[i].free_parts = units[i];
			nc[i].free_units = units[i] / CPL_NODE_UNITS;
			nc[i].free_gpus = gpus[i];
			ncp[i] = &nc[i];
		}
		Copal__ClaimRequest cr = COPAL__CLAIM_REQUEST__INIT;
		cr.lease_id = lease;
		cr.wait_ms = wait;
		cr.max_tasks = max;
		cr.n_nodes = n;
		cr.node_parts = true;
		cr.nodes = ncp;
		cr.remaining_minutes = rem;
		cr.max_task_nodes = maxnodes;
		cr.order = c->o->claim_order;
		cr.workflow = (char *)(c->o->wf_filter ? c->o->wf_filter : "");
		cr.tags = (char **)c->o->tags;
		cr.n_tags = c->o->ntags;
		if (grant) {
			owner_of(c, owner, sizeof(owner));
			nl.owner = owner;
			nl.ttl_ms = c->o->lease_ttl_ms;
			nl.batch_job_id = c->o->bjob_id;
			nl.scheduler_job_id = (char *)(c->o->sched_job_id ?
			    c->o->sched_job_id : "");
			cr.new_lease = &nl;
		}
		// the broker's deadline counts from its commit, after this
		sent = cpl_mono_us();
		int rv = cpl_call_claim(c->cc, &cr, &rep);
		if (rv == 0 && grant && rep->claim->lease_id == 0)
			rv = CPL_EPROTO; // a broker without new_lease
		pthread_mutex_lock(&c->mx);
		bool stopping = c->stop;
		pthread_mutex_unlock(&c->mx);
		// a claim held open when the lease was given back is refused:
		// nothing to say then
		if (rv == 0)
			failed = false;
		else if (stopping)
			;
		else if (cpl_client_err_remote(c->cc))
			fprintf(stderr, "launcher: claim refused: %s\n",
			    cpl_client_errmsg(c->cc));
		else
			fprintf(stderr, "launcher: broker request failed: %s\n",
			    cpl_strerror(rv));
	}
	pthread_mutex_lock(&c->mx);
	if (grant) {
		// the lease before the tasks: the main loop takes both at its
		// next turn, and starts what the lease covers. Failed: the
		// comm thread's heartbeat asks for the lease now.
		c->grant = GRANT_NONE;
		if (!failed)
			lease_taken(c, rep->claim->lease_id, sent, true);
		c->next_hb = failed || c->grant_renew ? 0 : sent + hb_every(c);
		c->grant_renew = false;
		pthread_cond_signal(&c->cv);
	}
	if (!failed)
		push_kills(c, rep->claim->kill_task_ids,
		    rep->claim->n_kill_task_ids);
	if (!failed) {
		for (size_t i = 0; i < rep->claim->n_tasks; i++) {
			// taken out of the reply: protobuf-c allocates each
			// submessage on its own, so it outlives the reply
			Copal__ClaimedTask *ct = rep->claim->tasks[i];
			if (c->ev.ntasks == c->capt) {
				size_t cap = c->capt ? c->capt * 2 : 64;
				Copal__ClaimedTask **t =
				    realloc(c->ev.tasks, cap * sizeof(*t));
				if (t == NULL) {
					copal__claimed_task__free_unpacked(ct, NULL);
					continue;
				}
				c->ev.tasks = t;
				c->capt = cap;
			}
			c->ev.tasks[c->ev.ntasks++] = ct;
		}
		rep->claim->n_tasks = 0; // every task was taken (or freed)
	}
	c->ev.claim_answered = true;
	c->ev.claim_failed = failed;
	c->claim_pending = false;
	c->n.claims++;
	pthread_mutex_unlock(&c->mx);
	if (rep)
		copal__reply__free_unpacked(rep, NULL);
	free(nc);
	free(ncp);
	wake(c);
}

static void *
comm_main(void *arg)
{
	comm *c = arg;
	uint64_t last_sent = 0, gap = 0;
	pthread_mutex_lock(&c->mx);
	for (;;) {
		uint64_t now;
		while (!c->stop && c->nagain == 0 && !c->renew &&
		    (now = cpl_mono_us()) < c->next_hb &&
		    (c->nout == 0 || (c->nout < REPORT_HOLD_MAX &&
		    now < last_sent + gap))) {
			uint64_t until = c->next_hb;
			if (c->nout && last_sent + gap < until)
				until = last_sent + gap;
			// (comm_report wakes a held batch only once it is full)
			c->holding = c->nout != 0;
			uint64_t left = until - now;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(left / 1000000u);
			ts.tv_nsec += (long)(left % 1000000u) * 1000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->cv, &c->mx, &ts);
		}
		c->holding = false;
		bool stop = c->stop;
		// a batch not taken goes first, as it was; else what is queued
		struct report *reps = c->again;
		size_t nreps = c->nagain;
		uint64_t rid = c->again_rid, blease = c->again_lease;
		bool resent = nreps != 0;
		c->again = NULL;
		c->nagain = 0;
		if (nreps == 0) {
			reps = c->out;
			nreps = c->nout;
			c->out = NULL;
			c->nout = c->capout = 0;
			rid = cpl_client_next_id(c->c);
			blease = c->lease;
		}
		c->ev.pending = nreps + c->nout;
		bool renew = c->renew;
		c->renew = false;
		now = cpl_mono_us();
		if (c->grant == GRANT_WAIT && now >= c->next_hb)
			c->grant = GRANT_NONE; // no claim asked in time
		bool hb;
		if (c->lease == 0 && c->grant != GRANT_NONE) {
			// the first claim brings the lease (its answer wakes
			// us); a lease asked for here too would be a second
			hb = false;
			if (c->grant == GRANT_INFLIGHT)
				c->next_hb = now + GRANT_POLL_US;
			// a stall noticed meanwhile: the lease is confirmed
			// once more when it comes
			c->grant_renew |= renew;
		} else {
			hb = c->lease == 0 || renew || now >= c->next_hb;
		}
		pthread_mutex_unlock(&c->mx);

		if (hb) {
			heartbeat(c, false);
			pthread_mutex_lock(&c->mx);
			c->next_hb = cpl_mono_us() +
			    (c->lease ? hb_every(c) : 500000u);
			pthread_mutex_unlock(&c->mx);
		}
		if (nreps) {
			// a batch of many reports says that they come fast:
			// the next waits for more (see REPORT_GAP_US)
			last_sent = cpl_mono_us();
			gap = nreps >= REPORT_HOLD_MIN ? REPORT_GAP_US : 0;
			if (c->lease == 0 || c->lease != blease ||
			    send_reports(c, reps, nreps, rid, resent) != 0) {
				// not taken: kept, in order, to send again as
				// the same request, unless their lease is gone
				pthread_mutex_lock(&c->mx);
				if (c->lease != blease) {
					free_reports(reps, nreps);
				} else {
					c->again = reps;
					c->nagain = nreps;
					c->again_rid = rid;
					c->again_lease = blease;
				}
				pthread_mutex_unlock(&c->mx);
				if (!stop)
					usleep(200000);
			} else {
				free_reports(reps, nreps);
			}
		}
		pthread_mutex_lock(&c->mx);
		c->ev.pending = c->nout + c->nagain;
		if (stop && ((c->nout == 0 && c->nagain == 0) || c->lease == 0))
			break;
	}
	// a lease on its way in the first claim's answer is given back too
	while (c->grant == GRANT_INFLIGHT)
		pthread_cond_wait(&c->cv, &c->mx);
	pthread_mutex_unlock(&c->mx);
	if (c->lease)
		heartbeat(c, true); // give the lease back (and end a claim
		                    // the broker holds open)
	wake(c);
	return NULL;
}

// The claim thread: one claim at a time, as the main loop asks.
static void *
claim_main(void *arg)
{
	comm *c = arg;
	uint32_t *units = NULL, *gpus = NULL;
	size_t cap = 0;
	pthread_mutex_lock(&c->mx);
	for (;;) {
		while (!c->stop && !(c->claim_pending &&
		    (c->lease || c->grant == GRANT_WAIT)))
			pthread_cond_wait(&c->ccv, &c->mx);
		if (c->stop)
			break;
		bool grant = c->lease == 0;
		if (grant)
			c->grant = GRANT_INFLIGHT;
		uint32_t max = c->cl_max, rem = c->cl_rem, wait = c->cl_wait;
		uint32_t maxnodes = c->cl_maxnodes;
		uint64_t lease = c->lease;
		size_t n = c->cl_n;
		bool ok = true;
		if (n > cap) {
			uint32_t *u = realloc(units, n * sizeof(*u));
			uint32_t *g = u ? realloc(gpus, n * sizeof(*g)) : NULL;
			if (u)
				units = u;
			if (g)
				gpus = g;
			if (u && g)
				cap = n;
			else
				ok = false;
		}
		if (ok) {
			memcpy(units, c->cl_units, n * sizeof(*units));
			memcpy(gpus, c->cl_gpus, n * sizeof(*gpus));
		}
		pthread_mutex_unlock(&c->mx);
		if (ok) {
			do_claim(c, lease, grant, max, rem, wait, maxnodes, n,
			    units, gpus);
		} else {
			pthread_mutex_lock(&c->mx);
			if (grant) {
				c->grant = GRANT_NONE;
				c->next_hb = 0;
				pthread_cond_signal(&c->cv);
			}
			c->ev.claim_answered = true;
			c->ev.claim_failed = true;
			c->claim_pending = false;
			pthread_mutex_unlock(&c->mx);
			wake(c);
		}
		pthread_mutex_lock(&c->mx);
	}
	pthread_mutex_unlock(&c->mx);
	free(units);
	free(gpus);
	return NULL;
}

int
comm_start(cpl_client *cl, cpl_client *claims, const launcher_opts *o,
    comm **out)
{
	comm *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CPL_ENOMEM;
	c->c = cl;
	c->cc = claims;
	c->o = o;
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->evfd < 0) {
		free(c);
		return CPL_ENOMEM;
	}
	pthread_mutex_init(&c->mx, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->ccv, NULL);
	c->grant = GRANT_WAIT;
	c->next_hb = cpl_mono_us() + GRANT_WAIT_US;
	if (pthread_create(&c->cth, NULL, claim_main, c) != 0) {
		close(c->evfd);
		free(c);
		return CPL_ENOMEM;
	}
	c->cth_started = true;
	if (pthread_create(&c->th, NULL, comm_main, c) != 0) {
		pthread_mutex_lock(&c->mx);
		c->stop = true;
		pthread_cond_signal(&c->ccv);
		pthread_mutex_unlock(&c->mx);
		pthread_join(c->cth, NULL);
		close(c->evfd);
		free(c);
		return CPL_ENOMEM;
	}
	*out = c;
	return 0;
}

void
comm_stop(comm *c, comm_counts *counts)
{
	pthread_mutex_lock(&c->mx);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_cond_signal(&c->ccv);
	pthread_mutex_unlock(&c->mx);
	// the comm thread gives the lease back, which ends a claim the
	// broker holds open; then the claim thread is joined
	pthread_join(c->th, NULL);
	pthread_join(c->cth, NULL);
	if (counts)
		*counts = c->n;
	free_reports(c->out, c->nout);
	free_reports(c->again, c->nagain);
	comm_events_free(&c->ev);
	free(c->cl_units);
	free(c->cl_gpus);
	close(c->evfd);
	pthread_mutex_destroy(&c->mx);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->ccv);
	free(c);
}

int
comm_fd(comm *c)
{
	return c->evfd;
}

void
comm_report(comm *c, struct report *r, size_t n)
{
	pthread_mutex_lock(&c->mx);
	if (c->nout + n > c->capout) {
		size_t cap = (c->nout + n) * 2;
		struct report *m = realloc(c->out, cap * sizeof(*m));
		if (m == NULL) {
			pthread_mutex_unlock(&c->mx);
			for (size_t i = 0; i < n; i++)
				free(r[i].msg);
			fprintf(stderr, "launcher: out of memory: %zu reports "
			    "lost\n", n);
			return;
		}
		c->out = m;
		c->capout = cap;
	}
	memcpy(c->out + c->nout, r, n * sizeof(*r));
	c->nout += n;
	c->ev.pending = c->nout + c->nagain;
	if (!c->holding || c->nout >= REPORT_HOLD_MAX)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mx);
}

bool
comm_claim(comm *c, const comm_claim_req *cl)
{
	bool ok = false;
	pthread_mutex_lock(&c->mx);
	if (!c->claim_pending && !c->stop &&
	    (c->lease || c->grant == GRANT_WAIT)) {
		if (cl->n > c->cl_cap) {
			uint32_t *u = realloc(c->cl_units, cl->n * sizeof(*u));
			if (u)
				c->cl_units = u;
			uint32_t *g = u ? realloc(c->cl_gpus, cl->n * sizeof(*g)) :
			                  NULL;
			if (g)
				c->cl_gpus = g;
			if (u && g)
				c->cl_cap = cl->n;
		}
		if (cl->n <= c->cl_cap) {
			memcpy(c->cl_units, cl->units, cl->n * sizeof(uint32_t));
			memcpy(c->cl_gpus, cl->gpus, cl->n * sizeof(uint32_t));
			c->cl_n = cl->n;
			c->cl_max = cl->max_tasks;
			c->cl_rem = cl->remaining_min;
			c->cl_wait = cl->wait_ms;
			c->cl_maxnodes = cl->max_task_nodes;
			c->claim_pending = true;
			ok = true;
			pthread_cond_signal(&c->ccv);
		}
	}
	pthread_mutex_unlock(&c->mx);
	return ok;
}

void
comm_stopping(comm *c)
{
	pthread_mutex_lock(&c->mx);
	c->stopping = true;
	pthread_mutex_unlock(&c->mx);
}

void
comm_renew(comm *c)
{
	pthread_mutex_lock(&c->mx);
	c->renew = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mx);
}

void
comm_take(comm *c, comm_events *ev)
{
	uint64_t v;
	while (read(c->evfd, &v, sizeof(v)) == sizeof(v))
		;
	pthread_mutex_lock(&c->mx);
	*ev = c->ev;
	c->ev.tasks = NULL;
	c->ev.ntasks = 0;
	c->ev.kills = NULL;
	c->ev.nkills = 0;
	c->capt = c->capk = 0;
	c->ev.claim_answered = false;
	c->ev.claim_failed = false;
	c->ev.lease_lost = false;
	pthread_mutex_unlock(&c->mx);
}

void
comm_events_free(comm_events *ev)
{
	for (size_t i = 0; i < ev->ntasks; i++)
		copal__claimed_task__free_unpacked(ev->tasks[i], NULL);
	free(ev->tasks);
	free(ev->kills);
	ev->tasks = NULL;
	ev->kills = NULL;
	ev->ntasks = ev->nkills = 0;
}
