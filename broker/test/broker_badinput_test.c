// Bad input: every kind of malformed, hostile or unauthorized request is
// answered with an error (or the connection is closed), the broker stays
// up and serves a normal client afterwards, and nothing in the database
// changes (counts by state, history log, apps).
//
//  * protobuf-level: truncated requests (every cut of a valid one), 1000
//    random messages (seeded), randomly mutated valid requests, enum values
//    out of range, strings with NUL bytes and invalid UTF-8 (wire bytes
//    built by hand), a NUL hidden by a field that re-packs longer, a small
//    message that expands past the allocation budget, a huge string,
//    wrong protocol version, no body;
//  * transport-level: frames larger than the 64 MiB limit (NNG and raw),
//    frames cut short, wrong SP protocol, garbage handshakes, frames
//    without a REQ header, idle connections, a peer that pipelines
//    requests and never reads the replies;
//  * authorization: TCP with a wrong, missing and right token; a client
//    running as user nobody (root only; skipped otherwise), both with the
//    socket's permissions as the broker set them and with them opened up
//    (so that the broker's peer-uid check is what refuses it).
//
// The test program doubles as the unprivileged client: run as
// `broker_badinput_test --as-client URL` it sends one create and exits 0
// if no reply came, 6 if the reply refused it as not a user of the
// database, 2 for any other reply.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "copal/testing/broker.h"

struct fx {
	bh_broker b;
	cpl_client *c;
	bh_snap before;
};

static int
setup_common(void **state, bool tcp)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	bh_init(&f->b, tcp);
	// the TCP tests write the SP protocol on a raw socket: plain TCP,
	// allowed by name (broker_tcp_insecure)
	if (tcp)
		bh_plain_tcp(&f->b);
	bh_start(&f->b);
	f->c = bh_client(&f->b);
	bh_app(f->c, "app");
	bh_create(f->c, 5, "base", "base", "app");
	bh_snapshot(f->c, &f->before);
	return 0;
}

static int
setup(void **state)
{
	return setup_common(state, false);
}

static int
setup_tcp(void **state)
{
	return setup_common(state, true);
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	cpl_client_close(f->c);
	bh_finish(&f->b);
	free(f);
	return 0;
}

// The broker still serves and the database did not change.
#define UNCHANGED(f, what)                                                 \
	do {                                                               \
		bh_snap now_;                                              \
		BH_SERVES(&(f)->b, 5000u * (unsigned)bh_slow());          \
		bh_snapshot((f)->c, &now_);                                \
		BH_SAME_SNAP(&(f)->before, &now_, (what));                 \
	} while (0)

// A valid create request (packed) used as material.
static uint8_t *
valid_create(size_t *len, uint64_t reqid)
{
	Copal__TaskSpec s[3], *sp[3];
	Copal__EnvVar ev = COPAL__ENV_VAR__INIT, *evp = &ev;
	Copal__Resources res = COPAL__RESOURCES__INIT;
	char *tags[] = { (char *)"t=1", (char *)"t=2" };
	uint64_t parent = 1;
	ev.name = (char *)"OMP_NUM_THREADS";
	ev.value = (char *)"4";
	res.num_nodes = 1;
	res.node_packing_count = 2;
	res.wall_time_minutes = 10;
	for (int i = 0; i < 3; i++) {
		s[i] = bh_spec(i == 0 ? "first" : i == 1 ? "second" : "third",
		    "material", "app");
		s[i].args = (char *)"--x 1 --y 2";
		s[i].n_environ = 1;
		s[i].environ = &evp;
		s[i].n_tags = 2;
		s[i].tags = tags;
		s[i].resources = &res;
		s[i].n_parent_ids = 1;
		s[i].parent_ids = &parent;
		s[i].priority = -3;
		sp[i] = &s[i];
	}
	uint32_t lc = 2, lp = 1;
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = 3;
	cr.tasks = sp;
	cr.n_local_parent_child = 1;
	cr.local_parent_child = &lc;
	cr.n_local_parent_parent = 1;
	cr.local_parent_parent = &lp;
	cr.want_uuids = true;
	Copal__Request rq = COPAL__REQUEST__INIT;
	rq.version = 1;
	rq.request_id = reqid;
	rq.body_case = COPAL__REQUEST__BODY_CREATE;
	rq.create = &cr;
	return bh_pack_req(&rq, len);
}

// Sends buf on an open raw socket; requires a reply whose status is not
// 0 (want < 0) or exactly want. Returns the reply's status.
static int
raw_refused(nng_socket s, const void *buf, size_t len, int want,
    const char *what, size_t i)
{
	Copal__Reply *r;
	int rv = bh_raw_call(s, buf, len, &r);
	if (rv != 0)
		BH_FAIL("%s %zu (%zu bytes): no reply: %s", what, i, len,
		    nng_strerror(rv));
	if (r == NULL)
		BH_FAIL("%s %zu (%zu bytes): undecodable reply", what, i, len);
	int st = (int)r->status;
	if ((want < 0 && st == 0) || (want >= 0 && st != want))
		BH_FAIL("%s %zu (%zu bytes): status %s (%s) \"%s\", expected %s",
		    what, i, len, cpl_errname(st), cpl_strerror(st), r->error,
		    want < 0 ? "a refusal" : cpl_errname(want));
	bh_free(r);
	return st;
}

// ------------------------------------------------------------ protobuf level

static void
test_truncated(void **state)
{
	struct fx *f = *state;
	size_t len;
	uint8_t *buf = valid_create(&len, 0x1234567);
	nng_socket s;
	int rv = bh_raw_open(f->b.url, 5000 * bh_slow(), &s);
	BH_CHECK(rv == 0, "dial: %s", nng_strerror(rv));
	for (size_t cut = 0; cut < len; cut++)
		raw_refused(s, buf, cut, CPL_EPROTO, "request cut to", cut);
	nng_close(s);
	free(buf);
	UNCHANGED(f, "truncated requests");
}

static void
test_random_bytes(void **state)
{
	struct fx *f = *state;
	uint64_t seed = 20240611;
	uint8_t buf[1024];
	nng_socket s;
	int rv = bh_raw_open(f->b.url, 5000 * bh_slow(), &s);
	BH_CHECK(rv == 0, "dial: %s", nng_strerror(rv));
	for (size_t i = 0; i < 1000; i++) {
		size_t n = (size_t)(bh_rand(&seed) % sizeof(buf));
		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)bh_rand(&seed);
		raw_refused(s, buf, n, -1, "random message", i);
	}
	nng_close(s);
	UNCHANGED(f, "1000 random messages");
}

// Valid requests with a few bytes changed: anything may come back, but a
// reply must come, and the broker must survive (a sanitizer build aborts
// on any memory error, and the final stop must exit 0).
static void
test_mutated(void **state)
{
	struct fx *f = *state;
	uint64_t seed = 77;
	size_t len;
	// request id 0x1234567: a 4-byte varint at bytes 3..6
	uint8_t *orig = valid_create(&len, 0x1234567);
	uint8_t *buf = malloc(len);
	nng_socket s;
	int rv = bh_raw_open(f->b.url, 5000 * bh_slow(), &s);
	BH_CHECK(rv == 0, "dial: %s", nng_strerror(rv));
	size_t ok = 0;
	for (size_t i = 0; i < 500; i++) {
		Copal__Reply *r;
		memcpy(buf, orig, len);
		int flips = 1 + (int)(bh_rand(&seed) % 4);
		for (int k = 0; k < flips; k++)
			buf[bh_rand(&seed) % len] ^= (uint8_t)(1u << (bh_rand(&seed) % 8));
		// a request id of its own so that a change that still decodes
		// is not answered from the stored replies
		buf[4] = (uint8_t)(0x80 | (i & 0x7f));
		buf[5] = (uint8_t)(0x80 | ((i >> 7) & 0x7f));
		rv = bh_raw_call(s, buf, len, &r);
		BH_CHECK(rv == 0 && r != NULL, "mutated request %zu: %s", i,
		    rv ? nng_strerror(rv) : "undecodable reply");
		ok += r->status == 0;
		bh_free(r);
	}
	nng_close(s);
	free(buf);
	free(orig);
	print_message("500 mutated requests: %zu accepted\n", ok);
	BH_SERVES(&f->b, 5000u * (unsigned)bh_slow());
}

static void
test_bad_enum(void **state)
{
	struct fx *f = *state;
	Copal__Reply *r;
	int bad[] = { 99, 16, -1 };
	for (size_t i = 0; i < 3; i++) {
		Copal__TaskState st = (Copal__TaskState)bad[i];
		Copal__Filter fl = COPAL__FILTER__INIT;
		fl.n_states = 1;
		fl.states = &st;
		// a read
		Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
		q.filter = &fl;
		BH_REQ(qq, QUERY, query, &q);
		r = BH_CALL(f->c, &qq, CPL_EPROTO);
		BH_CHECK(r->error && strstr(r->error, "TaskState"),
		    "error text \"%s\" does not name the enum", r->error);
		bh_free(r);
		// mutations
		Copal__KillRequest k = COPAL__KILL_REQUEST__INIT;
		k.filter = &fl;
		BH_REQ(kq, KILL, kill, &k);
		bh_free(BH_CALL(f->c, &kq, CPL_EPROTO));
		Copal__StateReport sr = COPAL__STATE_REPORT__INIT, *srp = &sr;
		sr.task_id = 1;
		sr.attempt = 1;
		sr.to_state = st;
		Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
		rr.lease_id = 1;
		rr.n_reports = 1;
		rr.reports = &srp;
		BH_REQ(rq, REPORT, report, &rr);
		bh_free(BH_CALL(f->c, &rq, CPL_EPROTO));
	}
	UNCHANGED(f, "enum values out of range");
}

// Wire bytes: TaskSpec{name, application} with exact bytes for the name.
static void
w_spec(bh_wbuf *out, const void *name, size_t nlen, const char *app)
{
	bh_w_bytes(out, 1, name, nlen);
	bh_w_bytes(out, 4, app, strlen(app));
}

// Request{version 1, request id, create{tasks: [spec]}}.
static void
w_create(bh_wbuf *out, const bh_wbuf *spec, uint64_t reqid)
{
	bh_wbuf cr = { 0 };
	bh_w_sub(&cr, 1, spec);
	bh_w_request(out, 1, reqid, 10, &cr);
	bh_w_free(&cr);
}

static void
send_refused(struct fx *f, const bh_wbuf *w, const char *what, const char *needle)
{
	Copal__Reply *r = BH_RAW_EXPECT(f->b.url, w->p, w->n, CPL_EPROTO);
	BH_CHECK(needle == NULL || (r->error && strstr(r->error, needle)),
	    "%s: error text \"%s\" does not mention \"%s\"", what, r->error,
	    needle);
	bh_free(r);
}

static void
test_nul_and_utf8(void **state)
{
	struct fx *f = *state;
	struct {
		const char *bytes;
		size_t len;
		const char *what;
		const char *needle;
	} names[] = {
		{ "ab\0cd", 5, "NUL inside a task name", NULL },
		{ "abcd\0", 5, "NUL at the end of a task name", NULL },
		{ "\0", 1, "a task name that is one NUL", NULL },
		{ "\xff", 1, "byte 0xff in a task name", "UTF-8" },
		{ "a\xc0\x80", 3, "overlong NUL (C0 80) in a task name", "UTF-8" },
		{ "\xed\xa0\x80", 3, "UTF-16 surrogate in a task name", "UTF-8" },
		{ "\xf4\x90\x80\x80", 4, "code point above U+10FFFF", "UTF-8" },
		{ "ok\xe2\x82", 5, "UTF-8 sequence cut short", "UTF-8" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		bh_wbuf sp = { 0 }, rq = { 0 };
		w_spec(&sp, names[i].bytes, names[i].len, "app");
		w_create(&rq, &sp, 1000 + i);
		send_refused(f, &rq, names[i].what, names[i].needle);
		bh_w_free(&sp);
		bh_w_free(&rq);
	}
	// NUL in a repeated string (a tag)
	{
		bh_wbuf sp = { 0 }, rq = { 0 };
		w_spec(&sp, "tagged", 6, "app");
		bh_w_bytes(&sp, 8, "x\0y", 3);
		w_create(&rq, &sp, 2000);
		send_refused(f, &rq, "NUL in a tag", NULL);
		bh_w_free(&sp);
		bh_w_free(&rq);
	}
	// NUL in an app's executable
	{
		bh_wbuf app = { 0 }, ar = { 0 }, rq = { 0 };
		bh_w_bytes(&app, 1, "nulapp", 6);
		bh_w_bytes(&app, 2, "/bin/\0sh", 8);
		bh_w_sub(&ar, 1, &app);
		bh_w_request(&rq, 1, 2001, 22, &ar);
		send_refused(f, &rq, "NUL in an executable", NULL);
		bh_w_free(&app);
		bh_w_free(&ar);
		bh_w_free(&rq);
	}
	// NUL in a filter's workflow (a mutation: modify)
	{
		bh_wbuf fl = { 0 }, m = { 0 }, rq = { 0 };
		bh_w_bytes(&fl, 2, "base\0x", 6);
		bh_w_sub(&m, 1, &fl);
		bh_w_bytes(&m, 2, "args", 4);
		bh_w_bytes(&m, 3, "changed", 7);
		bh_w_request(&rq, 1, 2002, 16, &m);
		send_refused(f, &rq, "NUL in a filter workflow", NULL);
		bh_w_free(&fl);
		bh_w_free(&m);
		bh_w_free(&rq);
	}
	// NUL in the credentials' user name, with a ping
	{
		bh_wbuf cred = { 0 }, ping = { 0 }, rq = { 0 };
		bh_w_bytes(&cred, 2, "ro\0ot", 5);
		bh_w_uint(&rq, 1, 1);
		bh_w_uint(&rq, 2, 2003);
		bh_w_sub(&rq, 3, &cred);
		bh_w_sub(&rq, 25, &ping);
		send_refused(f, &rq, "NUL in the credentials", NULL);
		bh_w_free(&cred);
		bh_w_free(&rq);
	}
	UNCHANGED(f, "strings with NUL bytes and bad UTF-8");
}

// The NUL check compares the wire size with the re-packed size. An int32
// sent as a 5-byte varint re-packs as 10 bytes (protobuf-c sign-extends
// negative int32s), which makes up for 5 bytes lost at a NUL: the sizes
// match and the NUL must still be caught.
static void
test_nul_hidden_by_negative_int32(void **state)
{
	struct fx *f = *state;
	bh_wbuf sp = { 0 }, rq = { 0 };
	static const uint8_t minus_one_5[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	w_spec(&sp, "evil\0tail", 9, "app");      // decodes as "evil": -5 bytes
	bh_w_varint(&sp, 20u << 3 | 0);             // priority
	bh_w_raw(&sp, minus_one_5, sizeof(minus_one_5)); // -1, re-packed in 10: +5
	w_create(&rq, &sp, 3000);
	nng_socket s;
	Copal__Reply *r;
	int rv = bh_raw_open(f->b.url, 5000 * bh_slow(), &s);
	BH_CHECK(rv == 0, "dial: %s", nng_strerror(rv));
	rv = bh_raw_call(s, rq.p, rq.n, &r);
	nng_close(s);
	bh_w_free(&sp);
	bh_w_free(&rq);
	BH_CHECK(rv == 0 && r, "no reply: %s", rv ? nng_strerror(rv) : "undecodable");
	int st = (int)r->status;
	uint64_t id = st == 0 && r->create ? r->create->first_id : 0;
	bh_free(r);
	if (st != CPL_EPROTO) {
		char name[64] = "?";
		int prio = 0;
		if (id) {
			Copal__Task *t;
			Copal__Reply *q = bh_query_id(f->c, id, true, &t);
			if (t) {
				snprintf(name, sizeof(name), "%s", t->spec->name);
				prio = t->spec->priority;
			}
			bh_free(q);
		}
		BH_FAIL("a create whose task name is \"evil\\0tail\" on the wire, "
		        "with priority -1 sent as a 5-byte varint, was answered %s "
		        "(%s), expected PROTO: the NUL byte went through "
		        "validation; task %" PRIu64 " was created with name \"%s\" "
		        "and priority %d",
		    cpl_errname(st), cpl_strerror(st), id, name, prio);
	}
	UNCHANGED(f, "a NUL byte hidden by a 5-byte negative int32");
}

// A create of n empty TaskSpecs: 2 bytes each on the wire, about 230
// bytes each once decoded.
static void
w_empty_specs(bh_wbuf *rq, int n, uint64_t reqid)
{
	bh_wbuf cr = { 0 };
	for (int i = 0; i < n; i++)
		bh_w_raw(&cr, "\x0a\x00", 2);
	bh_w_request(rq, 1, reqid, 10, &cr);
	bh_w_free(&cr);
}

// 100,000 empty TaskSpecs (200 KB) would decode into about 20 MB: the
// allocation budget (32 bytes per wire byte + 1 MiB) must stop it.
static void
test_expansion(void **state)
{
	struct fx *f = *state;
	bh_wbuf rq = { 0 };
	// control: 4,000 of them (an 8 KB message, about 1.1 MB decoded: a
	// TaskSpec is some 270 bytes since params and launch_params) fit
	// the budget's 1 MiB floor, decode, and are refused by the handler
	// (empty names); so a refusal of 100,000 is the budget's
	w_empty_specs(&rq, 4000, 3999);
	bh_free(BH_RAW_EXPECT(f->b.url, rq.p, rq.n, CPL_EINVAL));
	bh_w_free(&rq);
	w_empty_specs(&rq, 100000, 4000);
	bh_free(BH_RAW_EXPECT(f->b.url, rq.p, rq.n, CPL_EPROTO));
	bh_w_free(&rq);
	// and a string past the 1 MiB string limit, well below the frame limit
	size_t big = 2u << 20;
	char *s = malloc(big + 1);
	memset(s, 'a', big);
	s[big] = '\0';
	Copal__TaskSpec spec = bh_spec("big", "base", "app"), *sp = &spec;
	spec.args = s;
	Copal__CreateTasksRequest c = COPAL__CREATE_TASKS_REQUEST__INIT;
	c.n_tasks = 1;
	c.tasks = &sp;
	BH_REQ(q, CREATE, create, &c);
	q.version = 1;
	q.request_id = 4002;
	size_t len;
	uint8_t *buf = bh_pack_req(&q, &len);
	free(s);
	Copal__Reply *r = BH_RAW_EXPECT(f->b.url, buf, len, CPL_EPROTO);
	free(buf);
	char err[256];
	snprintf(err, sizeof(err), "%s", r->error ? r->error : "");
	bh_free(r);
	BH_CHECK(strstr(err, "longer"), "2 MiB args: error \"%s\"", err);
	UNCHANGED(f, "requests expanding past the limits");
}

// The refusal of a request that expands past the budget says so.
static void
test_expansion_reason(void **state)
{
	struct fx *f = *state;
	bh_wbuf rq = { 0 };
	w_empty_specs(&rq, 100000, 4001);
	size_t n = rq.n;
	Copal__Reply *r = BH_RAW_EXPECT(f->b.url, rq.p, rq.n, CPL_EPROTO);
	bh_w_free(&rq);
	char err[256];
	snprintf(err, sizeof(err), "%s", r->error ? r->error : "");
	bh_free(r);
	BH_CHECK(strstr(err, "memory limit"),
	    "a %zu-byte create of 100000 empty tasks (decodable: 5000 of them "
	    "decode) was refused with \"%s\"; expected the broker's own "
	    "\"request expands past the memory limit\"",
	    n, err);
}

// A request refused for a bad string is answered under its request id,
// so that the client library can match the answer and hand the caller the
// broker's reason. Non-UTF-8 bytes in args (a Latin-1 file name, say) are
// a realistic case; the client library packs them as they are.
static void
test_bad_string_reply_matches(void **state)
{
	struct fx *f = *state;
	Copal__TaskSpec spec = bh_spec("latin1", "base", "app"), *sp = &spec;
	spec.args = (char *)"--input caf\xe9.dat";
	Copal__CreateTasksRequest c = COPAL__CREATE_TASKS_REQUEST__INIT;
	c.n_tasks = 1;
	c.tasks = &sp;
	BH_REQ(q, CREATE, create, &c);
	q.request_id = 0x5eed;
	cpl_client *one = bh_client_opts(&f->b, false, NULL, 3000, 1);
	Copal__Reply *r = NULL;
	int rv = cpl_client_call(one, &q, &r);
	cpl_client_close(one);
	int st = r ? (int)r->status : -1;
	char err[256];
	snprintf(err, sizeof(err), "%s", r && r->error ? r->error : "");
	if (r)
		bh_free(r);
	// what the broker answers on the wire
	q.version = 1;
	q.request_id = 0x5eed;
	size_t len;
	uint8_t *buf = bh_pack_req(&q, &len);
	Copal__Reply *raw = BH_RAW_EXPECT(f->b.url, buf, len, CPL_EPROTO);
	free(buf);
	uint64_t echoed = raw->request_id;
	char rawerr[256];
	snprintf(rawerr, sizeof(rawerr), "%s", raw->error ? raw->error : "");
	bh_free(raw);
	BH_CHECK(rv == 0 && st == CPL_EPROTO && echoed == 0x5eed,
	    "create with args \"--input caf\\xe9.dat\" (not UTF-8), request id "
	    "0x5eed: cpl_client_call returned %s (%s)%s%s%s; on the wire the "
	    "broker answered PROTO \"%s\" with request id %" PRIu64
	    " instead of 0x5eed, so the client library drops the answer and "
	    "its caller never sees the reason",
	    cpl_errname(rv), cpl_strerror(rv), rv == 0 ? ", reply status " : "",
	    rv == 0 ? cpl_errname(st) : "", rv == 0 ? err : "", rawerr, echoed);
	UNCHANGED(f, "a string that is not UTF-8");
}

static void
test_version_and_body(void **state)
{
	struct fx *f = *state;
	Copal__Reply *r;
	size_t len;
	uint8_t *buf;
	uint32_t versions[] = { 0, 2, 0xffffffffu };
	for (size_t i = 0; i < 3; i++) {
		Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
		Copal__TaskSpec s = bh_spec("vx", "base", "app"), *sp = &s;
		cr.n_tasks = 1;
		cr.tasks = &sp;
		Copal__Request rq = COPAL__REQUEST__INIT;
		rq.version = versions[i];
		rq.request_id = 5000 + i;
		rq.body_case = COPAL__REQUEST__BODY_CREATE;
		rq.create = &cr;
		buf = bh_pack_req(&rq, &len);
		r = BH_RAW_EXPECT(f->b.url, buf, len, CPL_EPROTO);
		BH_CHECK(r->error && strstr(r->error, "version"),
		    "version %u: error \"%s\"", versions[i], r->error);
		BH_EQ_U64(r->request_id, 5000 + i);
		bh_free(r);
		free(buf);
	}
	// no body at all, and only an unknown field
	Copal__Request rq = COPAL__REQUEST__INIT;
	rq.version = 1;
	rq.request_id = 5100;
	buf = bh_pack_req(&rq, &len);
	r = BH_RAW_EXPECT(f->b.url, buf, len, CPL_EPROTO);
	BH_CHECK(r->error && strstr(r->error, "body"), "no body: error \"%s\"",
	    r->error);
	bh_free(r);
	free(buf);
	bh_wbuf w = { 0 }, empty = { 0 };
	bh_w_request(&w, 1, 5101, 99, &empty);
	r = BH_RAW_EXPECT(f->b.url, w.p, w.n, CPL_EPROTO);
	bh_free(r);
	bh_w_free(&w);
	// an empty message
	r = BH_RAW_EXPECT(f->b.url, "", 0, CPL_EPROTO);
	bh_free(r);
	UNCHANGED(f, "wrong versions and missing bodies");
}

// ------------------------------------------------------------ transport level

// A message over the 64 MiB limit is refused with CPL_ETOOBIG (and the
// size logged); a frame header past what the transport takes closes the
// connection; the broker goes on serving.
static void
test_oversized(void **state)
{
	struct fx *f = *state;
	size_t len = (64u << 20) + 64;
	uint8_t *buf = calloc(1, len);
	nng_socket s;
	void *rb = NULL;
	size_t rl = 0;
	BH_CHECK(buf != NULL, "out of memory");
	// it starts like a valid ping: only its size is wrong
	size_t plen;
	uint8_t *ping = bh_ping_bytes(&plen, 6000);
	memcpy(buf, ping, plen);
	free(ping);
	int rv = bh_raw_open(f->b.url, 3000 * bh_slow(), &s);
	BH_CHECK(rv == 0, "dial: %s", nng_strerror(rv));
	rv = nng_send(s, buf, len, 0);
	free(buf);
	BH_CHECK(rv == 0, "send of %zu bytes: %s", len, nng_strerror(rv));
	// a frame over the limit (but within twice it, what the transport
	// takes) is answered: the client learns why, the log has the size
	rv = nng_recv(s, &rb, &rl, NNG_FLAG_ALLOC);
	BH_CHECK(rv == 0, "a %zu-byte message (limit 64 MiB) got no reply: %s",
	    len, nng_strerror(rv));
	Copal__Reply *r = copal__reply__unpack(NULL, rl, rb);
	nng_free(rb, rl);
	BH_CHECK(r != NULL && r->status == CPL_ETOOBIG && r->request_id == 6000,
	    "a %zu-byte message: reply %s to request %llu", len,
	    r ? cpl_errname((int)r->status) : "undecodable",
	    r ? (unsigned long long)r->request_id : 0ull);
	copal__reply__free_unpacked(r, NULL);
	char want[96];
	snprintf(want, sizeof(want), "refused a %zu-byte request from ipc", len);
	BH_CHECK(bh_log_contains(&f->b, want), "the log does not say \"%s\"",
	    want);
	nng_close(s);
	BH_CHECK(bh_alive(f->b.pid), "the broker died");

	// the same with a raw frame header that claims 2^40 bytes
	int fd = bh_unix_connect(f->b.url);
	char why[128];
	BH_CHECK(fd >= 0, "connect: %s", strerror(errno));
	BH_CHECK(bh_sp_handshake(fd, BH_SP_REQ, why, sizeof(why)) == 0, "%s", why);
	uint8_t hdr[9] = { 1, 0, 0, 1, 0, 0, 0, 0, 0 };
	BH_CHECK(bh_write_all(fd, hdr, sizeof(hdr)), "write");
	BH_CHECK(bh_peer_closes(fd, 3000u * (unsigned)bh_slow()),
	    "a frame header claiming 2^40 bytes did not close the connection");
	close(fd);
	UNCHANGED(f, "oversized frames");
}

// One raw connection that completed the SP handshake as a REQ peer.
static int
raw_req(struct fx *f)
{
	char why[128];
	int fd = bh_unix_connect(f->b.url);
	BH_CHECK(fd >= 0, "connect %s: %s", f->b.url, strerror(errno));
	BH_CHECK(bh_sp_handshake(fd, BH_SP_REQ, why, sizeof(why)) == 0,
	    "handshake: %s", why);
	return fd;
}

static void
raw_ping_ok(int fd, uint32_t id, const char *what)
{
	size_t plen;
	uint8_t *ping = bh_ping_bytes(&plen, 7000 + id);
	bh_wbuf fr = { 0 };
	bh_sp_frame(&fr, id, ping, plen);
	free(ping);
	BH_CHECK(bh_write_all(fd, fr.p, fr.n), "%s: write", what);
	bh_w_free(&fr);
	uint32_t got = 0;
	Copal__Reply *r;
	BH_CHECK(bh_sp_read_reply(fd, 5000u * (unsigned)bh_slow(), &got, &r) == 0,
	    "%s: no reply to a raw ping", what);
	BH_CHECK(got == (id | 0x80000000u), "%s: reply to request %x, sent %x",
	    what, got, id | 0x80000000u);
	BH_CHECK(r->status == 0 && r->body_case == COPAL__REPLY__BODY_PING,
	    "%s: raw ping answered %s", what, cpl_errname((int)r->status));
	bh_free(r);
}

static void
test_raw_frames(void **state)
{
	struct fx *f = *state;
	char why[128];
	unsigned ms = 3000u * (unsigned)bh_slow();

	// the raw path itself works
	int fd = raw_req(f);
	raw_ping_ok(fd, 1, "raw REQ peer");

	// a frame without the 4-byte REQ header: NNG's REP drops the peer
	// ("speaking garbage"); if it kept it, the connection must still work
	uint8_t tiny[11] = { 1, 0, 0, 0, 0, 0, 0, 0, 2, 0x08, 0x01 };
	BH_CHECK(bh_write_all(fd, tiny, sizeof(tiny)), "write");
	if (!bh_peer_closes(fd, 500))
		raw_ping_ok(fd, 2, "after a frame without a REQ header");
	close(fd);

	// a frame cut short, then the connection closed
	fd = raw_req(f);
	size_t plen;
	uint8_t *ping = bh_ping_bytes(&plen, 7100);
	bh_wbuf fr = { 0 };
	bh_sp_frame(&fr, 3, ping, plen);
	free(ping);
	BH_CHECK(bh_write_all(fd, fr.p, fr.n / 2), "write");
	close(fd);
	// and left hanging open
	int hang = raw_req(f);
	BH_CHECK(bh_write_all(hang, fr.p, fr.n - 1), "write");
	bh_w_free(&fr);
	BH_SERVES(&f->b, 5000u * (unsigned)bh_slow());

	// a message type other than 1
	fd = raw_req(f);
	uint8_t type2[13] = { 2, 0, 0, 0, 0, 0, 0, 0, 4, 0x80, 0, 0, 9 };
	BH_CHECK(bh_write_all(fd, type2, sizeof(type2)), "write");
	BH_CHECK(bh_peer_closes(fd, ms), "message type 2 did not close the "
	    "connection");
	close(fd);

	// a peer of the wrong SP protocol (PAIR0) or not speaking SP
	fd = bh_unix_connect(f->b.url);
	BH_CHECK(fd >= 0, "connect");
	uint8_t pair[8] = { 0, 'S', 'P', 0, 0, 0x10, 0, 0 };
	BH_CHECK(bh_write_all(fd, pair, 8), "write");
	BH_CHECK(bh_peer_closes(fd, ms), "a PAIR0 peer was not disconnected");
	close(fd);
	fd = bh_unix_connect(f->b.url);
	BH_CHECK(fd >= 0, "connect");
	BH_CHECK(bh_write_all(fd, "GET / HTTP/1.0\r\n\r\n", 18), "write");
	BH_CHECK(bh_peer_closes(fd, ms), "an HTTP request was not disconnected");
	close(fd);
	(void)why;

	// 200 idle connections do not keep anyone else out
	int idle[200];
	for (int i = 0; i < 200; i++)
		idle[i] = raw_req(f);
	BH_SERVES(&f->b, 5000u * (unsigned)bh_slow());
	for (int i = 0; i < 200; i++)
		close(idle[i]);
	close(hang);
	UNCHANGED(f, "malformed frames");
}

// A peer that pipelines requests and never reads the replies must not
// stop the broker from serving others (each reply stuck in a send holds
// one of the broker's contexts). Over TCP the peer needs no token: a
// request without one is still answered (PERM).
static void
slow_reader(struct fx *f, bool tcp)
{
	char why[128];
	int small = 4096;
	int fd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	BH_CHECK(fd >= 0, "socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (tcp) {
		struct sockaddr_in sa;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)f->b.port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		BH_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		    "connect %s: %s", f->b.tcp, strerror(errno));
	} else {
		struct sockaddr_un sa;
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, f->b.url + 6, strlen(f->b.url + 6) + 1);
		BH_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		    "connect %s: %s", f->b.url, strerror(errno));
	}
	BH_CHECK(bh_sp_handshake(fd, BH_SP_REQ, why, sizeof(why)) == 0,
	    "handshake: %s", why);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	size_t plen;
	uint8_t *ping = bh_ping_bytes(&plen, 0);
	bh_wbuf all = { 0 };
	// enough to fill the kernel buffers both ways (TCP's grow to MBs)
	const uint32_t n = tcp ? 600000 : 40000;
	for (uint32_t i = 0; i < n; i++)
		bh_sp_frame_on(&all, tcp, i + 1, ping, plen);
	free(ping);
	// write until the broker stops reading (no progress for a second)
	size_t off = 0;
	uint64_t start = bh_now_ms(), progress = start;
	while (off < all.n && bh_now_ms() < start + 10000u * (unsigned)bh_slow() &&
	    bh_now_ms() < progress + 1000) {
		ssize_t w = send(fd, all.p + off, all.n - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			progress = bh_now_ms();
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			bh_sleep_ms(5);
		} else {
			break;
		}
	}
	size_t sent = off / (all.n / n);
	bh_w_free(&all);
	// others must still be served while that peer stalls: a fresh client
	// every 200 ms over 6 s (the broker may still be working through the
	// backlog at first), each answered within 5 s (not scaled for
	// sanitizer builds: a ping takes milliseconds there too)
	const int wait = 5000;
	uint64_t t0 = bh_now_ms();
	int rv = 0, trv = 0;
	while (rv == 0 && trv == 0 && bh_now_ms() < t0 + 6000) {
		cpl_client *c = bh_client_opts(&f->b, false, NULL, wait, 1);
		rv = bh_try_ping(c, wait, NULL);
		cpl_client_close(c);
		if (tcp) {
			c = bh_client_opts(&f->b, true, NULL, wait, 1);
			trv = bh_try_ping(c, wait, NULL);
			cpl_client_close(c);
		}
		bh_sleep_ms(200);
	}
	if (rv == 0 && trv == 0) {
		close(fd);
		print_message("slow %s reader: %zu of %u pipelined pings written, "
		              "none read; others still served\n",
		    tcp ? "TCP (no token)" : "IPC", sent, n);
		UNCHANGED(f, "a peer that does not read its replies");
		return;
	}
	// stuck. Does service come back while that peer stays connected?
	uint64_t stuck = bh_now_ms(), back = 0;
	while (bh_now_ms() < stuck + 15000u) {
		cpl_client *c = bh_client_opts(&f->b, tcp, NULL, 1000, 1);
		int x = bh_try_ping(c, 1000, NULL);
		cpl_client_close(c);
		if (x == 0) {
			back = bh_now_ms() - t0;
			break;
		}
	}
	bool reopened = bh_log_contains(&f->b, "re-opening");
	close(fd);
	// and once it is gone?
	int after = -1;
	uint64_t t1 = bh_now_ms();
	do {
		cpl_client *c = bh_client_opts(&f->b, false, NULL, 1000, 1);
		after = bh_try_ping(c, 1000, NULL);
		cpl_client_close(c);
	} while (after != 0 && bh_now_ms() < t1 + 5000u);
	char backs[200];
	if (back)
		snprintf(backs, sizeof(backs), "came back %" PRIu64 " ms after the "
		    "stall began%s", back, reopened ? ", when the IPC self-check "
		    "re-opened the listener (which drops every IPC connection)" : "");
	else
		snprintf(backs, sizeof(backs), "did not come back within 15 s%s",
		    reopened ? " (the IPC self-check re-opened the IPC listener, "
		    "which did not help)" : "");
	BH_FAIL("while one %s peer%s had %zu pipelined pings outstanding and "
	        "read none of the replies, a new client got no answer within "
	        "%d ms (IPC ping: %s%s%s): the broker's contexts are all stuck "
	        "in sends to that peer. With the peer still connected, service "
	        "%s; after it disconnected the broker %s",
	    tcp ? "TCP" : "IPC", tcp ? " without the token" : "", sent, wait,
	    cpl_errname(rv), tcp ? ", TCP ping with the token: " : "",
	    tcp ? cpl_errname(trv) : "", backs,
	    after == 0 ? "served again" : "still did not answer");
}

static void
test_slow_reader(void **state)
{
	slow_reader(*state, false);
}

static void
test_slow_reader_tcp_no_token(void **state)
{
	slow_reader(*state, true);
}

// ------------------------------------------------------------ authorization

static void
test_tcp_token(void **state)
{
	struct fx *f = *state;
	Copal__Reply *r;
	// wrong token: refused, and a mutation is not applied
	cpl_client *bad = bh_client_opts(&f->b, true, "not-the-secret", 0, 1);
	Copal__TaskSpec s = bh_spec("via-tcp", "base", "app"), *sp = &s;
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = 1;
	cr.tasks = &sp;
	BH_REQ(rq, CREATE, create, &cr);
	r = BH_CALL(bad, &rq, CPL_EPERM);
	BH_CHECK(r->error && strstr(r->error, "token"), "error \"%s\"", r->error);
	bh_free(r);
	Copal__PingRequest p = COPAL__PING_REQUEST__INIT;
	BH_REQ(pq, PING, ping, &p);
	bh_free(BH_CALL(bad, &pq, CPL_EPERM));
	cpl_client_close(bad);
	// a token one byte short, and one byte longer
	char tok[40];
	snprintf(tok, sizeof(tok), "%.31s", f->b.token);
	bad = bh_client_opts(&f->b, true, tok, 0, 1);
	bh_free(BH_CALL(bad, &pq, CPL_EPERM));
	cpl_client_close(bad);
	snprintf(tok, sizeof(tok), "%sx", f->b.token);
	bad = bh_client_opts(&f->b, true, tok, 0, 1);
	bh_free(BH_CALL(bad, &pq, CPL_EPERM));
	cpl_client_close(bad);
	// no token at all (raw, no credentials)
	size_t len;
	uint8_t *buf = bh_ping_bytes(&len, 8000);
	r = BH_RAW_EXPECT(f->b.tcp, buf, len, CPL_EPERM);
	bh_free(r);
	free(buf);
	bh_snap now;
	bh_snapshot(f->c, &now);
	BH_SAME_SNAP(&f->before, &now, "requests with wrong tokens");
	// the right token works, and over IPC none is needed
	cpl_client *good = bh_client_opts(&f->b, true, NULL, 0, 1);
	rq.request_id = 0; // a new request (the refused one was not stored)
	r = BH_OK(good, &rq);
	BH_EQ_U64(r->create->count, 1);
	bh_free(r);
	cpl_client_close(good);
	BH_EQ_U64(bh_count(f->c, NULL, NULL), f->before.total + 1);
}

// The unprivileged client (the child, after setuid and exec).
static int
as_client(const char *url)
{
	nng_socket s;
	void *rb = NULL;
	size_t rl = 0;
	printf("as-client: uid %d euid %d\n", (int)getuid(), (int)geteuid());
	int rv = nng_req0_open(&s);
	if (rv != 0)
		return 3;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_dial(s, url, NULL, 0)) != 0) {
		printf("as-client: dial %s: %s\n", url, nng_strerror(rv));
		nng_close(s);
		return 0;
	}
	Copal__TaskSpec spec = bh_spec("from-nobody", "base", "app"), *sp = &spec;
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = 1;
	cr.tasks = &sp;
	Copal__Request rq = COPAL__REQUEST__INIT;
	rq.version = 1;
	rq.request_id = 424242;
	rq.body_case = COPAL__REQUEST__BODY_CREATE;
	rq.create = &cr;
	uint8_t buf[256];
	size_t n = copal__request__pack(&rq, buf);
	if ((rv = nng_send(s, buf, n, 0)) == 0)
		rv = nng_recv(s, &rb, &rl, NNG_FLAG_ALLOC);
	nng_close(s);
	if (rv == 0) {
		Copal__Reply *r = copal__reply__unpack(NULL, rl, rb);
		int code = 2;
		printf("as-client: got a reply: status %s: %s\n",
		    r ? cpl_errname((int)r->status) : "undecodable",
		    r && r->error ? r->error : "");
		if (r && r->status == CPL_EPERM && r->error &&
		    strstr(r->error, "is not a user of this database"))
			code = 6;
		if (r)
			copal__reply__free_unpacked(r, NULL);
		nng_free(rb, rl);
		return code;
	}
	printf("as-client: no reply: %s\n", nng_strerror(rv));
	return 0;
}

// Runs this program as `nobody` with --as-client url; returns its exit
// status (-1 on failure to run it).
static int
run_as_nobody(const char *url)
{
	struct passwd *pw = getpwnam("nobody");
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (pw == NULL || n <= 0)
		return -1;
	self[n] = '\0';
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		// only async-signal-safe calls until exec (NNG threads exist)
		char *argv[] = { self, (char *)"--as-client", (char *)url, NULL };
		if (setgroups(0, NULL) != 0 || setgid(gid) != 0 ||
		    setuid(uid) != 0)
			_exit(4);
		execv(self, argv);
		_exit(127);
	}
	int status;
	if (!bh_wait_exit(pid, 30000, &status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A case that skipped: the program exits 77 (ctest's SKIP_RETURN_CODE)
// if nothing failed, so that ctest shows the test as skipped, not passed.
static bool skipped;

static void
test_other_uid(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0) {
		print_message("SKIPPED: the other-uid test needs root (to run a "
		              "client as user nobody)\n");
		skipped = true;
		skip();
	}
	if (getpwnam("nobody") == NULL) {
		print_message("SKIPPED: no user nobody\n");
		skipped = true;
		skip();
	}
	// as the broker set it up: 0700 directories, 0600 socket
	int rc = run_as_nobody(f->b.url);
	BH_CHECK(rc == 0, "a client running as nobody with the socket as the "
	    "broker made it: exit %d (0: no reply, 2: it got a reply)", rc);
	bh_snap now;
	bh_snapshot(f->c, &now);
	BH_SAME_SNAP(&f->before, &now, "a request from user nobody");

	// the permissions opened up: now the peer-uid check must refuse it
	char path[160];
	struct stat st;
	snprintf(path, sizeof(path), "%s/sock", f->b.dir);
	BH_CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0,
	    "%s has mode %o, expected 0700", path, st.st_mode & 07777);
	snprintf(path, sizeof(path), "%s/sock/broker", f->b.dir);
	BH_CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0,
	    "%s has mode %o, expected 0600", path, st.st_mode & 07777);
	BH_CHECK(chmod(f->b.dir, 0711) == 0, "chmod");
	snprintf(path, sizeof(path), "%s/sock", f->b.dir);
	BH_CHECK(chmod(path, 0711) == 0, "chmod");
	snprintf(path, sizeof(path), "%s/sock/broker", f->b.dir);
	BH_CHECK(chmod(path, 0666) == 0, "chmod");
	rc = run_as_nobody(f->b.url);
	BH_CHECK(rc == 6, "a client running as nobody that can reach the "
	    "socket: exit %d (6: refused as not a user, 0: no reply, 2: "
	    "another reply)", rc);
	BH_CHECK(bh_log_contains(&f->b, "refused IPC connection from uid"),
	    "the broker's log does not show the peer-uid check refusing the "
	    "connection");
	chmod(path, 0600);
	snprintf(path, sizeof(path), "%s/sock", f->b.dir);
	chmod(path, 0700);
	chmod(f->b.dir, 0700);
	UNCHANGED(f, "requests from user nobody");
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--as-client") == 0)
		return as_client(argv[2]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mutated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_enum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_and_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_hidden_by_negative_int32,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion_reason, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_string_reply_matches, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_version_and_body, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reader_tcp_no_token,
		    setup_tcp, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_token, setup_tcp, teardown),
		cmocka_unit_test_setup_teardown(test_other_uid, setup, teardown),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed ? failed : skipped ? 77 : 0;
}
