// Request dispatch: the handler table, running a handler in the right
// kind of transaction, and packing its reply.
//
// Reads are answered at once from a short read snapshot on the calling
// thread. Mutations become jobs of the writer: each runs in a nested
// transaction of the writer's batch; a resent request (same client id,
// request id and body digest) is answered with the reply stored the first
// time, a reused id with another body is refused (CPL_EREUSED), and every
// reply of a mutation is stored in the same transaction as its effect.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "dispatch.h"

// ---------------------------------------------------------------- table

static const handler handlers[] = {
	{ COPAL__REQUEST__BODY_CREATE, "create", true, h_create },
	{ COPAL__REQUEST__BODY_CLAIM, "claim", true, h_claim },
	{ COPAL__REQUEST__BODY_REPORT, "report", true, h_report },
	{ COPAL__REQUEST__BODY_HEARTBEAT, "heartbeat", true, h_heartbeat },
	{ COPAL__REQUEST__BODY_QUERY, "query", false, h_query },
	{ COPAL__REQUEST__BODY_COUNT, "count", false, h_count },
	{ COPAL__REQUEST__BODY_MODIFY, "modify", true, h_modify },
	{ COPAL__REQUEST__BODY_DELETE, "delete", true, h_delete },
	{ COPAL__REQUEST__BODY_KILL, "kill", true, h_kill },
	{ COPAL__REQUEST__BODY_ADD_DEPENDENCY, "add_dependency", true,
	    h_add_dependency },
	{ COPAL__REQUEST__BODY_HISTORY, "history", false, h_history },
	{ COPAL__REQUEST__BODY_EXPORT, "export", false, h_export },
	{ COPAL__REQUEST__BODY_APP_REGISTER, "app_register", true,
	    h_app_register },
	{ COPAL__REQUEST__BODY_APP_LIST, "app_list", false, h_app_list },
	{ COPAL__REQUEST__BODY_APP_DELETE, "app_delete", true, h_app_delete },
	{ COPAL__REQUEST__BODY_PING, "ping", false, h_ping },
	{ COPAL__REQUEST__BODY_WORKFLOW_LIST, "workflow_list", false,
	    h_workflow_list },
	{ COPAL__REQUEST__BODY_LEASE_LIST, "lease_list", false, h_lease_list },
	{ COPAL__REQUEST__BODY_BATCH_ADD, "batch_add", true, h_batch_add },
	{ COPAL__REQUEST__BODY_BATCH_UPDATE, "batch_update", true,
	    h_batch_update },
	{ COPAL__REQUEST__BODY_BATCH_LIST, "batch_list", false, h_batch_list },
	{ COPAL__REQUEST__BODY_BACKLOG, "backlog", false, h_backlog },
	{ COPAL__REQUEST__BODY_ARCHIVE_PICK, "archive_pick", false,
	    h_archive_pick },
	{ COPAL__REQUEST__BODY_ARCHIVE, "archive", true, h_archive },
};

static const handler *
handler_find(Copal__Request__BodyCase body)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].body == body)
			return &handlers[i];
	return NULL;
}

// ---------------------------------------------------------------- replies

// Packs a reply into a malloc'd buffer.
static int
pack_reply(const Copal__Reply *rep, uint8_t **buf, size_t *len)
{
	size_t n = copal__reply__get_packed_size(rep);
	uint8_t *b = malloc(n ? n : 1);
	if (b == NULL)
		return CPL_ENOMEM;
	copal__reply__pack(rep, b);
	*buf = b;
	*len = n;
	return 0;
}

// A reply with only a status and a message.
void
dispatch_error(dreq *r, uint64_t reqid, int status, const char *msg)
{
	Copal__Reply rep = COPAL__REPLY__INIT;
	rep.version = 1;
	rep.request_id = reqid;
	rep.status = (uint32_t)status;
	rep.error = (char *)(msg ? msg : cpl_strerror(status));
	free(r->reply);
	r->reply = NULL;
	r->reply_len = 0;
	(void)pack_reply(&rep, &r->reply, &r->reply_len);
}

// Runs a handler and packs its reply into r->reply. For mutations txn is
// the writer's nested transaction; for reads a read snapshot.
static int
run_handler(dreq *r, cpl_txn *txn, int *status)
{
	hctx h;
	Copal__Reply rep = COPAL__REPLY__INIT;
	memset(&h, 0, sizeof(h));
	h.info = r->d->info;
	h.req = r->req;
	h.rep = &rep;
	uint64_t now = cpl_mono_us();
	h.waited_us = now > r->recv_us ? now - r->recv_us : 0;
	if ((h.a = arena_new()) == NULL)
		return CPL_ENOMEM;
	rep.version = 1;
	rep.request_id = r->req->request_id;
	// what a user does is recorded as theirs; a launcher's claims and
	// reports are its own (their events name its lease)
	Copal__Request__BodyCase b = r->req->body_case;
	if (r->h->mutates && b != COPAL__REQUEST__BODY_CLAIM &&
	    b != COPAL__REQUEST__BODY_REPORT &&
	    b != COPAL__REQUEST__BODY_HEARTBEAT)
		cpl_txn_set_user(txn, r->user);
	int rv = r->h->fn(&h, txn);
	r->park_ms = rv == 0 ? h.park_ms : 0;
	r->park_key = h.park_key;
	r->unpark_key = rv == 0 ? h.unpark_key : 0;
	rep.status = (uint32_t)rv;
	if (rv != 0) {
		// a failed request answers with its error only
		rep.body_case = COPAL__REPLY__BODY__NOT_SET;
		// formatted with user text into a fixed buffer: cut whole
		h.err[cpl_utf8_cut(h.err, strlen(h.err))] = '\0';
		rep.error = h.err[0] ? h.err : (char *)cpl_strerror(rv);
	}
	free(r->reply);
	r->reply = NULL;
	int prv = pack_reply(&rep, &r->reply, &r->reply_len);
	arena_free(h.a);
	*status = rv;
	return prv;
}

struct read_arg {
	dreq *r;
	int status;
};

static int
read_cb(cpl_txn *txn, void *arg)
{
	struct read_arg *ra = arg;
	return run_handler(ra->r, txn, &ra->status);
}

// ---------------------------------------------------------------- writer jobs

// The request's key in the reply cache (copal.proto, Request).
static cpl_reqkey
req_key(const dreq *r)
{
	cpl_reqkey k;
	k.client = r->req->client_id.len == CPL_CLIENT_ID_LEN ?
	    r->req->client_id.data : NULL;
	k.id = r->req->request_id;
	memcpy(k.digest, r->digest, sizeof(k.digest));
	return k;
}

static int
job_replay(cpl_txn *txn, wjob *j, bool *done)
{
	dreq *r = j->arg;
	cpl_reqkey k = req_key(r);
	const void *old;
	size_t oldlen;
	if (k.id == 0)
		return 0;
	int rv = cpl_reply_get(txn, &k, &old, &oldlen);
	if (rv == CPL_EREUSED) {
		// never another request's reply; nothing is stored for this one
		char msg[160];
		snprintf(msg, sizeof(msg), "request id %llu of this client "
		    "was already used for a different request; number each "
		    "new request anew", (unsigned long long)k.id);
		LOG(LOG_WARN, "request", "%s: %s", r->h->name, msg);
		dispatch_error(r, k.id, CPL_EREUSED, msg);
		*done = true;
	} else if (rv == 0) {
		// a resent request: answer as the first time
		free(r->reply);
		r->reply = malloc(oldlen ? oldlen : 1);
		if (r->reply == NULL)
			return CPL_ENOMEM;
		memcpy(r->reply, old, oldlen);
		r->reply_len = oldlen;
		*done = true;
	}
	return 0;
}

static int
job_run(cpl_txn *txn, wjob *j)
{
	dreq *r = j->arg;
	int status = 0;
	// a claim of a launcher that said it stops (a held one woken, or
	// one on its way): answered empty, not run on what the launcher's
	// last reports made runnable
	if (r->req->body_case == COPAL__REQUEST__BODY_CLAIM && r->d->pk &&
	    park_dropped(r->d->pk, r->req->claim->lease_id)) {
		Copal__Reply rep = COPAL__REPLY__INIT;
		Copal__ClaimReply cr = COPAL__CLAIM_REPLY__INIT;
		rep.version = 1;
		rep.request_id = r->req->request_id;
		rep.body_case = COPAL__REPLY__BODY_CLAIM;
		rep.claim = &cr;
		free(r->reply);
		r->reply = NULL;
		r->park_ms = 0;
		return pack_reply(&rep, &r->reply, &r->reply_len);
	}
	int rv = run_handler(r, txn, &status);
	if (rv)
		return rv;
	// at once, not after the commit: a claim of that launcher later in
	// this batch must not take what this request made runnable
	if (status == 0 && r->unpark_key && r->d->pk)
		park_drop_key(r->d->pk, r->unpark_key);
	// a refused request is undone; its error reply is kept
	return status;
}

// The deadline of a claim held open: from its arrival.
static uint64_t
park_until(const dreq *r)
{
	uint32_t ms = r->park_ms < DISPATCH_PARK_MAX_MS ? r->park_ms :
	                                                 DISPATCH_PARK_MAX_MS;
	return r->recv_us + (uint64_t)ms * 1000u;
}

static int
job_after(cpl_txn *txn, wjob *j, int rv)
{
	dreq *r = j->arg;
	cpl_reqkey k = req_key(r);
	if (rv == 0 && r->reply != NULL && r->park_ms && r->d->pk &&
	    cpl_mono_us() < park_until(r) &&
	    park_reserve_key(r->d->pk, r->park_key)) {
		// held open and run again: its empty answer is not stored,
		// so that the next run is not answered with it. Past the
		// bound on held claims it is answered at once.
		r->parking = true;
		return 0;
	}
	if (r->reply == NULL) {
		// run_handler could not even pack a reply
		dispatch_error(r, k.id, rv ? rv : CPL_ENOMEM, NULL);
		if (r->reply == NULL)
			return CPL_ENOMEM;
	}
	if (k.id != 0 &&
	    (rv = cpl_reply_put(txn, &k, r->reply, r->reply_len)) != 0)
		return rv;
	return 0;
}

// Something changed while it was held: the claim runs again.
static void
park_again(pitem *it)
{
	dreq *r = it->arg;
	if (writer_submit(r->d->wr, &r->job) != 0)
		r->d->reply(r); // stopping: answered as it stands
}

// Its time is up: answered with what it found, nothing.
static void
park_expire(pitem *it)
{
	dreq *r = it->arg;
	r->d->reply(r);
}

static void
job_done(wjob *j, int rv)
{
	dreq *r = j->arg;
	if (r->parking) {
		r->parking = false;
		if (rv == 0) {
			r->pi.until_us = park_until(r);
			r->pi.again = park_again;
			r->pi.expire = park_expire;
			r->pi.arg = r;
			r->pi.key = r->park_key;
			park_add(r->d->pk, &r->pi);
			return;
		}
		park_unreserve(r->d->pk);
	}

	if (rv)
		dispatch_error(r, r->req->request_id, rv, NULL);
	r->d->reply(r);
}

// FNV-1a of n bytes at p, never 0 (the writer's "unknown source").
static uint32_t
fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h ? h : 1;
}

// Where a job comes from, for the writer's choice to wait for more
// (writer.h): a launcher (its lease: its claims, reports and heartbeats,
// whichever of its connections they come on), else a client (its id).
static uint32_t
job_source(const Copal__Request *q)
{
	uint64_t lease = 0;
	if (q->body_case == COPAL__REQUEST__BODY_CLAIM && q->claim)
		lease = q->claim->lease_id;
	else if (q->body_case == COPAL__REQUEST__BODY_REPORT && q->report)
		lease = q->report->lease_id;
	else if (q->body_case == COPAL__REQUEST__BODY_HEARTBEAT &&
	    q->heartbeat)
		lease = q->heartbeat->lease_id;
	if (lease != 0)
		return fnv1a(&lease, sizeof(lease));
	if (q->client_id.len > 0)
		return fnv1a(q->client_id.data, q->client_id.len);
	return 0; // unknown
}

// The batch is run again (writer.h): a claim held open by the run given
// up gives its place in the park back, or it would be counted twice. A
// launcher's "stopping" (park_drop_key, job_run) is not taken back: its
// claims found in the run again are answered empty, as ones that come
// after it are.
static void
job_reset(wjob *j)
{
	dreq *r = j->arg;
	if (r->parking) {
		r->parking = false;
		park_unreserve(r->d->pk);
	}
}

static const wjob_ops job_ops = {
	.replay = job_replay,
	.run = job_run,
	.after = job_after,
	.reset = job_reset,
	.done = job_done,
};

// A launcher's claims and reports are run without a nested transaction
// of their own (writer.h): they are most of the writer's jobs, and their
// handlers (h_run.c) check a request before they change anything (a
// report's refusals are per state report, each of which changes nothing,
// and do not fail the job). A claim whose app has gone after its tasks
// were taken is the rare failure after a change: its batch is run again,
// nested. Heartbeats stay nested: one for a lease past its deadline ends
// the lease, then fails (cpl_lease_renew), and few reach the writer.
static bool
job_direct(Copal__Request__BodyCase b)
{
	return b == COPAL__REQUEST__BODY_CLAIM ||
	    b == COPAL__REQUEST__BODY_REPORT;
}

// ---------------------------------------------------------------- heartbeats

// A heartbeat that only renews a live lease is answered here, from a read
// snapshot, and its deadline kept in memory (hbtab.h): no write, no
// durable commit, no stored reply (renewing again is harmless, so a
// resend needs none). Anything else (a new lease, a release, notices to
// hand over, a lease past its deadline, a request id already stored) goes
// to the writer as before.
struct hb_arg {
	dreq *r;
	hbtab *hb;
	uint32_t ttl;
	uint64_t deadline;
	bool fast;
};

static int
hb_read_cb(cpl_txn *txn, void *arg)
{
	struct hb_arg *a = arg;
	uint64_t lease = a->r->req->heartbeat->lease_id, stored;
	uint32_t sttl;
	bool notices;
	const void *old;
	size_t oldlen;
	cpl_reqkey k = req_key(a->r);
	if (k.id != 0 && cpl_reply_get(txn, &k, &old, &oldlen) != CPL_ENOTFOUND)
		return 0;
	if (cpl_lease_peek(txn, lease, &stored, &sttl, &notices) != 0 || notices)
		return 0;
	uint64_t now = cpl_txn_now(txn), kept = hbtab_get(a->hb, lease);
	if ((kept > stored ? kept : stored) < now)
		return 0; // past its deadline: the writer ends it
	a->deadline = now + (uint64_t)a->ttl * 1000u;
	if (hbtab_put(a->hb, lease, a->deadline, a->ttl, stored) != 0)
		return 0;
	a->fast = true;
	return 0;
}

static bool
heartbeat_fast(const dispatch *d, dreq *r)
{
	const Copal__HeartbeatRequest *hb = r->req->heartbeat;
	struct hb_arg a = { r, d->hb, 0, 0, false };
	if (d->hb == NULL || hb == NULL || hb->lease_id == 0 || hb->release)
		return false;
	a.ttl = hb->ttl_ms ? hb->ttl_ms : DEFAULT_TTL_MS;
	if (a.ttl < MIN_TTL_MS || a.ttl > MAX_TTL_MS)
		return false;
	// A TTL this short keeps its stored deadline always within
	// HBTAB_URGENT_US: every batch would flush the table, holding its
	// lock (and every heartbeat thread) through the commit's sync.
	if ((uint64_t)a.ttl * 1000u <= 2u * HBTAB_URGENT_US)
		return false;
	// locked over the snapshot: a sweep either writes this renewal or
	// committed before the snapshot began (hbtab.h)
	hbtab_lock(d->hb);
	int rv = cpl_store_read(d->st, hb_read_cb, &a);
	hbtab_unlock(d->hb);
	if (rv != 0 || !a.fast)
		return false;
	Copal__Reply rep = COPAL__REPLY__INIT;
	Copal__HeartbeatReply hr = COPAL__HEARTBEAT_REPLY__INIT;
	rep.version = 1;
	rep.request_id = r->req->request_id;
	rep.body_case = COPAL__REPLY__BODY_HEARTBEAT;
	rep.heartbeat = &hr;
	hr.lease_id = hb->lease_id;
	hr.deadline_us = a.deadline;
	free(r->reply);
	r->reply = NULL;
	if (pack_reply(&rep, &r->reply, &r->reply_len) != 0)
		dispatch_error(r, rep.request_id, CPL_ENOMEM, NULL);
	d->reply(r);
	return true;
}

// ---------------------------------------------------------------- dispatch

void
dispatch_request(const dispatch *d, dreq *r)
{
	uint64_t reqid = r->req->request_id;
	r->d = d;
	r->recv_us = cpl_mono_us();
	// (a context's dreq serves one request after another)
	r->park_ms = 0;
	r->park_key = r->unpark_key = 0;
	r->parking = false;
	r->h = handler_find(r->req->body_case);
	if (r->h == NULL) {
		dispatch_error(r, reqid, CPL_EPROTO, "unknown request");
		d->reply(r);
		return;
	}
	LOG(LOG_DEBUG, "request", "%s id %llx", r->h->name,
	    (unsigned long long)reqid);
	if (r->req->body_case == COPAL__REQUEST__BODY_HEARTBEAT &&
	    heartbeat_fast(d, r))
		return;
	if (r->h->mutates) {
		r->job.ops = &job_ops;
		r->job.arg = r;
		r->job.src = job_source(r->req);
		r->job.direct = job_direct(r->req->body_case);
		// refused only once the writer has stopped: no reply then
		(void)writer_submit(d->wr, &r->job);
		return;
	}
	struct read_arg ra = { r, 0 };
	int rv = cpl_store_read(d->st, read_cb, &ra);
	if (rv != 0 && r->reply == NULL)
		dispatch_error(r, reqid, rv, NULL);
	d->reply(r);
}
