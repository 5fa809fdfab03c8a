// libFuzzer harness of the broker's request path: an input is the bytes of
// one request frame, taken as net.c's handle_msg takes it (the wire
// checks, the decode with the budget allocator, validate_request), then
// dispatched by dispatch.c to its handler against a seeded store
// (broker_seed.c) and its reply decoded again.
//
// No NNG and no writer thread: this file stands in for writer.c
// (writer_submit) and runs a mutation's job as the writer runs one of a
// batch, in a nested transaction of a write transaction, but then aborts
// the whole transaction, so that every input meets the same store and a
// crash reproduces from its input alone.
//
// What must hold, beyond "no crash, no leak, no undefined behaviour":
//  * every request that reaches dispatch gets exactly one reply, which
//    decodes, packs again to the same bytes, carries the request's id and
//    holds only valid UTF-8 strings; a failure has an error text;
//  * a handler that fails leaves the store as it was (its nested
//    transaction is undone), and one that succeeds leaves every index and
//    counter consistent (cpl_txn_check);
//  * a mutation sent again with the same identity is answered with the
//    very bytes of its first reply, and not applied again;
//  * no store error that means a bug (CPL_ECORRUPT, CPL_EINTERNAL).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_fuzz.h"
#include "dispatch.h"
#include "fuzz_util.h"

// A value no store call returns: aborts the write transaction.
#define FZ_ROLLBACK 0x7f00

static struct {
	cpl_store *st;
	struct broker_info info;
	dispatch d;
	uint64_t fingerprint;   // of the seeded store
} g;

// ---------------------------------------------------------------- fingerprint

// FNV-1a over everything a handler can change but the stored replies.
static void
fnv(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 0x100000001b3ull;
}

static void
fnv_msg(uint64_t *h, const ProtobufCMessage *m)
{
	uint8_t buf[4096];
	ProtobufCBufferSimple sb = PROTOBUF_C_BUFFER_SIMPLE_INIT(buf);
	protobuf_c_message_pack_to_buffer(m, &sb.base);
	fnv(h, sb.data, sb.len);
	PROTOBUF_C_BUFFER_SIMPLE_CLEAR(&sb);
}

static int
fp_task(const cpl_task *t, void *arg)
{
	uint64_t *h = arg;
	uint64_t v[] = { t->id, t->state, t->attempt, t->lease,
		(uint64_t)t->return_code, t->pending_parents,
		(uint64_t)t->priority, t->created_us, t->changed_us };
	fnv(h, v, sizeof(v));
	fnv(h, t->uuid, sizeof(t->uuid));
	if (t->spec)
		fnv_msg(h, &t->spec->base);
	return 0;
}

static int
fp_app(const Copal__App *app, uint64_t n, void *arg)
{
	fnv(arg, &n, sizeof(n));
	fnv_msg(arg, &app->base);
	return 0;
}

static int
fp_lease(const cpl_lease *l, void *arg)
{
	uint64_t v[] = { l->id, l->deadline_us, l->ttl_ms, l->created_us,
		l->ntasks };
	fnv(arg, v, sizeof(v));
	fnv(arg, l->owner, strlen(l->owner));
	return 0;
}

static int
fp_bjob(const Copal__BatchJob *j, void *arg)
{
	fnv_msg(arg, &j->base);
	return 0;
}

static int
fp_event(const cpl_event *e, void *arg)
{
	uint64_t v[] = { e->seq, e->task_id, e->from, e->to, e->time_us,
		e->attempt, e->lease, (uint64_t)e->return_code };
	fnv(arg, v, sizeof(v));
	fnv(arg, e->message, strlen(e->message));
	fnv(arg, e->node, strlen(e->node));
	return 0;
}

static int
fp_wf(const char *name, uint64_t n, void *arg)
{
	fnv(arg, name, strlen(name));
	fnv(arg, &n, sizeof(n));
	return 0;
}

static int
fp_notice(uint64_t id, void *arg)
{
	fnv(arg, &id, sizeof(id));
	return 0;
}

// Reads everything but the kill notices, which only a write transaction
// can see (by taking them): fp_notices, inside one that is undone.
static int
fingerprint(cpl_txn *txn, uint64_t *h)
{
	cpl_filter all;
	uint64_t counts[CPL_NSTATES];
	int rv;
	memset(&all, 0, sizeof(all));
	*h = 0xcbf29ce484222325ull;
	if ((rv = cpl_count_states(txn, counts)) != 0 ||
	    (rv = cpl_query(txn, &all, 0, 0, CPL_GET_SPEC, fp_task, h,
	         NULL)) != 0 ||
	    (rv = cpl_app_list(txn, fp_app, h)) != 0 ||
	    (rv = cpl_lease_list(txn, fp_lease, h)) != 0 ||
	    (rv = cpl_bjob_list(txn, fp_bjob, h)) != 0 ||
	    (rv = cpl_history_scan(txn, 0, 0, fp_event, h)) != 0 ||
	    (rv = cpl_workflow_list(txn, fp_wf, h)) != 0)
		return rv;
	fnv(h, counts, sizeof(counts));
	return 0;
}

static int
fp_notices_sub(cpl_txn *txn, void *arg)
{
	int rv;
	for (uint64_t l = 1; l <= 4; l++)
		if ((rv = cpl_lease_take_notices(txn, l, fp_notice, arg)) != 0)
			return rv;
	return FZ_ROLLBACK;
}

// The whole fingerprint, notices too, inside a write transaction.
static uint64_t
fingerprint_w(cpl_txn *txn)
{
	uint64_t h;
	int rv = fingerprint(txn, &h);
	if (rv == 0 && cpl_txn_sub(txn, fp_notices_sub, &h) != FZ_ROLLBACK)
		rv = cpl_txn_error(txn) ? cpl_txn_error(txn) : CPL_EINTERNAL;
	if (rv)
		fz_fail("fingerprint: %s", cpl_strerror(rv));
	return h;
}

static int
fp_init_cb(cpl_txn *txn, void *arg)
{
	*(uint64_t *)arg = fingerprint_w(txn);
	return FZ_ROLLBACK;
}

// ---------------------------------------------------------------- the writer

static bool
bug_status(int rv)
{
	return rv == CPL_ECORRUPT || rv == CPL_EINTERNAL || rv == CPL_EPANIC;
}

static int
run_sub(cpl_txn *txn, void *arg)
{
	wjob *j = arg;
	return j->ops->run(txn, j);
}

// One job as writer.c's batch_cb runs it (replay, run in a nested
// transaction, after), with the checks; then the same request again,
// which must be answered from what was stored.
static int
batch_cb(cpl_txn *txn, void *arg)
{
	wjob *j = arg;
	dreq *r = j->arg;
	bool done = false;
	int rv;
	if ((rv = j->ops->replay(txn, j, &done)) != 0)
		return rv;
	if (!done) {
		if ((rv = cpl_txn_error(txn)) != 0)
			return rv;
		rv = cpl_txn_sub(txn, run_sub, j);
		if (cpl_txn_error(txn) != 0)
			return cpl_txn_error(txn);
		FZ_ASSERT(!bug_status(rv), "%s: %s", r->h->name,
		    cpl_strerror(rv));
		if (rv != 0) {
			FZ_ASSERT(fingerprint_w(txn) == g.fingerprint,
			    "%s failed (%s) but changed the store",
			    r->h->name, cpl_strerror(rv));
		} else {
			char rep[512];
			int crv = cpl_txn_check(txn, rep, sizeof(rep));
			if (crv == CPL_ECORRUPT)
				fz_fail("%s: the store is inconsistent: %s",
				    r->h->name, rep);
			// the check's own work may fail for want of memory
			if (crv != 0 && crv != CPL_ENOMEM)
				return crv;
		}
		if ((rv = j->ops->after(txn, j, rv)) != 0)
			return rv;
	}
	// the same request again: the stored reply, byte for byte
	if (r->req->request_id != 0 && r->reply != NULL) {
		uint8_t *first = r->reply;
		size_t flen = r->reply_len;
		uint64_t before = fingerprint_w(txn);
		r->reply = NULL;
		done = false;
		if ((rv = j->ops->replay(txn, j, &done)) != 0) {
			free(first);
			return rv;
		}
		FZ_ASSERT(done, "%s: a resent request was not answered from "
		    "the stored reply", r->h->name);
		FZ_ASSERT(r->reply_len == flen &&
		    memcmp(r->reply, first, flen) == 0, "%s: a resent request "
		    "got another reply", r->h->name);
		FZ_ASSERT(fingerprint_w(txn) == before, "%s: answering a "
		    "resent request changed the store", r->h->name);
		free(first);
	}
	return FZ_ROLLBACK;
}

// Stands in for writer.c: runs j at once, in a transaction that is then
// undone, and completes it as if it had been committed.
int
writer_submit(writer *w, wjob *j)
{
	(void)w;
	int rv = cpl_store_write(g.st, batch_cb, j);
	FZ_ASSERT(!bug_status(rv), "%s: the batch failed: %s",
	    ((dreq *)j->arg)->h->name, cpl_strerror(rv));
	j->ops->done(j, rv == FZ_ROLLBACK ? 0 : rv);
	return 0;
}

// ---------------------------------------------------------------- replies

static int nreplies;
// COPAL_FUZZ_VERBOSE=1: each reply's status on stderr (to see what the
// seeds reach)
static bool verbose;

static void
on_reply(dreq *r)
{
	(void)r;
	nreplies++;
}

static void
check_reply(const dreq *r)
{
	char where[256];
	FZ_ASSERT(nreplies == 1, "%d replies to one request", nreplies);
	FZ_ASSERT(r->reply != NULL, "no reply");
	Copal__Reply *rep = copal__reply__unpack(NULL, r->reply_len, r->reply);
	FZ_ASSERT(rep != NULL, "the reply (%zu bytes) does not decode",
	    r->reply_len);
	size_t n = copal__reply__get_packed_size(rep);
	uint8_t *again = malloc(n ? n : 1);
	FZ_ASSERT(again != NULL, "out of memory");
	copal__reply__pack(rep, again);
	FZ_ASSERT(n == r->reply_len && memcmp(again, r->reply, n) == 0,
	    "the reply packs again to other bytes");
	free(again);
	FZ_ASSERT(rep->request_id == r->req->request_id,
	    "reply to request %llu has id %llu",
	    (unsigned long long)r->req->request_id,
	    (unsigned long long)rep->request_id);
	FZ_ASSERT(fz_msg_strings_ok(&rep->base, where, sizeof(where)),
	    "reply of %s: %s is not valid UTF-8", r->h ? r->h->name : "?",
	    where);
	FZ_ASSERT(rep->status < CPL_NERRORS, "status %u", rep->status);
	FZ_ASSERT(!bug_status((int)rep->status), "%s: %s",
	    r->h ? r->h->name : "?", cpl_strerror((int)rep->status));
	if (rep->status != 0)
		FZ_ASSERT(rep->error && rep->error[0], "an error without text");
	if (verbose)
		fprintf(stderr, "fuzz: %s: %s%s%s\n", r->h ? r->h->name : "?",
		    cpl_errname((int)rep->status), rep->status ? ": " : "",
		    rep->status ? rep->error : "");
	copal__reply__free_unpacked(rep, NULL);
}

// ---------------------------------------------------------------- libFuzzer

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
fixed_clock(void *arg)
{
	(void)arg;
	return 1700000000000000ull;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	// every message is formatted (its arguments checked), none is kept
	cpl_log_level = CPL_LOG_DEBUG;
	verbose = getenv("COPAL_FUZZ_VERBOSE") != NULL;
	if (cpl_log_add(NULL, "/dev/null", NULL) != 0)
		fz_fail("cannot log to /dev/null");
	const char *dir = fz_tmpdir("broker");
	cpl_store_opts o;
	memset(&o, 0, sizeof(o));
	o.map_size = 64u << 20;
	o.no_sync = true;
	o.clock = fixed_clock;
	int rv = cpl_store_open(dir, &o, &g.st);
	if (rv != 0)
		fz_fail("cpl_store_open %s: %s", dir, cpl_strerror(rv));
	fz_seed(g.st);
	if (cpl_store_write(g.st, fp_init_cb, &g.fingerprint) != FZ_ROLLBACK)
		fz_fail("cannot take the store's fingerprint");
	g.info.started_us = fixed_clock(NULL);
	g.info.db_dir = dir;
	g.info.ipc_url = "ipc:///fuzz/sock/broker";
	g.info.tcp_url = "tls+tcp://127.0.0.1:7000";
	g.d.st = g.st;
	g.d.wr = NULL;
	g.d.info = &g.info;
	g.d.reply = on_reply;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	uint8_t digest[CPL_DIGEST_LEN];
	static const uint8_t token[] = FZ_TOKEN;

	// what net.c reads of every frame before it decodes anything
	(void)wire_token_ok(data, size, token, FZ_TOKEN_LEN);
	(void)wire_request_id(data, size);
	if (validate_wire(data, size, err, sizeof(err)) != 0) {
		FZ_ASSERT(err[0] != '\0', "validate_wire: no reason");
		return 0;
	}
	wire_digest(data, size, digest);

	budget bud;
	budget_init(&bud, 32 * size + (1u << 20));
	Copal__Request *req = copal__request__unpack(&bud.pa, size, data);
	if (req == NULL)
		return 0;
	if (validate_request(req, err, sizeof(err)) != 0) {
		FZ_ASSERT(err[0] != '\0', "validate_request: no reason");
		copal__request__free_unpacked(req, &bud.pa);
		return 0;
	}

	dreq r;
	memset(&r, 0, sizeof(r));
	r.req = req;
	memcpy(r.digest, digest, sizeof(r.digest));
	nreplies = 0;
	dispatch_request(&g.d, &r);
	check_reply(&r);
	free(r.reply);
	copal__request__free_unpacked(req, &bud.pa);
	return 0;
}
