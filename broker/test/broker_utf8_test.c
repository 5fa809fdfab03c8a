// Valid UTF-8 in every reply (issue 12): text the broker cuts to a length
// (lease owners, node names, history messages, error texts) is cut at a
// character boundary, so a strict decoder reads every reply. Each reply
// is checked here field by field with a strict UTF-8 check walking the
// schema's descriptors, and, when python3 with its protobuf module and
// protoc are installed, decoded by Python's protobuf (strict about UTF-8)
// from the bytes the broker sent.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "copal/testing/broker.h"

#ifndef COPAL_SOURCE_DIR
#error COPAL_SOURCE_DIR must name the source tree
#endif

static char dumpdir[] = "/tmp/copal-utf8-XXXXXX";
static int ndumped;

// Strict UTF-8 of n bytes: well formed, no overlong form, no surrogate,
// nothing past U+10FFFF.
static bool
utf8_strict(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t k;
		unsigned lo = 0x80, hi = 0xBF;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			if (c == 0xE0)
				lo = 0xA0;
			if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			if (c == 0xF0)
				lo = 0x90;
			if (c == 0xF4)
				hi = 0x8F;
		} else {
			return false;
		}
		if (i + k >= n)
			return false; // truncated
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t j = 2; j <= k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

// Every string field of m, nested messages included; names the first bad
// one in where.
static bool
msg_ok(const ProtobufCMessage *m, char *where, size_t wl)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t n = 1;
		const void *const *vals = (const void *const *)base;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)((const char *)m + f->quantifier_offset);
			vals = *(const void *const *const *)base;
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t cs = *(const uint32_t *)((const char *)m +
			    f->quantifier_offset);
			if (cs != f->id)
				continue;
		}
		if (f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		for (size_t j = 0; j < n; j++) {
			const void *v = vals[j];
			if (v == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING) {
				const char *s = v;
				if (!utf8_strict((const unsigned char *)s,
				        strlen(s))) {
					snprintf(where, wl, "%s.%s", d->name,
					    f->name);
					return false;
				}
			} else if (!msg_ok(v, where, wl)) {
				return false;
			}
		}
	}
	return true;
}

// Checks one reply and keeps its bytes for the Python decoder.
static void
check_reply(const char *what, const Copal__Reply *r)
{
	char where[256] = "";
	if (!msg_ok(&r->base, where, sizeof(where)))
		BH_FAIL("%s: reply field %s is not valid UTF-8", what, where);
	size_t len;
	uint8_t *b = bh_pack_reply(r, &len);
	char path[128];
	snprintf(path, sizeof(path), "%s/%02d-%s.bin", dumpdir, ndumped++, what);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
	free(b);
}

// A string of n bytes: "a" * (n - 2) + "é", so that a cut one byte short
// of the whole would split the "é".
static char *
with_e(size_t n)
{
	char *s = malloc(n + 1);
	memset(s, 'a', n - 2);
	s[n - 2] = (char)0xC3;
	s[n - 1] = (char)0xA9;
	s[n] = '\0';
	return s;
}

static void
test_replies_strict(void **state)
{
	(void)state;
	bh_broker b;
	bh_init(&b, false);
	bh_start(&b);
	cpl_client *c = bh_client(&b);
	bh_app(c, "app");
	assert_non_null(mkdtemp(dumpdir));

	// a lease owner of 126 x "a" + "é": 128 bytes, kept to 127
	char *owner = with_e(128);
	uint64_t lease = bh_lease(c, owner, 60000);
	uint64_t id = bh_create(c, 1, "t", "wf", "app");
	Copal__Reply *r = bh_claim(c, lease, 1, 1, 5040, 0, NULL);
	check_reply("claim", r);
	BH_EQ_U64(r->claim->n_tasks, 1);
	bh_free(r);

	// a node name of 254 x "a" + "é" (kept to 255 bytes) and a message
	// of 8191 + 2 bytes (kept to 8192)
	char *node = with_e(256), *msg = with_e(8193);
	Copal__StateReport s = COPAL__STATE_REPORT__INIT, *sp = &s;
	s.task_id = id;
	s.attempt = 1;
	s.to_state = COPAL__TASK_STATE__STATE_RUNNING;
	s.message = msg;
	s.node = node;
	Copal__ReportRequest rr = COPAL__REPORT_REQUEST__INIT;
	rr.lease_id = lease;
	rr.n_reports = 1;
	rr.reports = &sp;
	BH_REQ(rq, REPORT, report, &rr);
	r = BH_OK(c, &rq);
	check_reply("report", r);
	BH_EQ_ERR(r->report->status[0], 0);
	bh_free(r);

	Copal__LeaseListRequest ll = COPAL__LEASE_LIST_REQUEST__INIT;
	BH_REQ(lq, LEASE_LIST, lease_list, &ll);
	r = BH_OK(c, &lq);
	check_reply("lease_list", r);
	BH_EQ_U64(r->lease_list->n_leases, 1);
	BH_CHECK(strlen(r->lease_list->leases[0]->owner) == 126,
	    "owner of %zu bytes", strlen(r->lease_list->leases[0]->owner));
	bh_free(r);

	r = bh_history(c, id);
	check_reply("history", r);
	bool seen = false;
	for (size_t i = 0; i < r->history->n_events; i++) {
		Copal__Event *e = r->history->events[i];
		if (e->to_state != COPAL__TASK_STATE__STATE_RUNNING)
			continue;
		seen = true;
		BH_CHECK(strlen(e->node) == 254, "node of %zu bytes",
		    strlen(e->node));
		BH_CHECK(strlen(e->message) == 8191, "message of %zu bytes",
		    strlen(e->message));
		BH_CHECK(strncmp(e->launcher, owner, 126) == 0,
		    "launcher %s", e->launcher);
	}
	BH_CHECK(seen, "no RUNNING event in the history");
	bh_free(r);

	Copal__ExportRequest ex = COPAL__EXPORT_REQUEST__INIT;
	BH_REQ(eq, EXPORT, export, &ex);
	r = BH_OK(c, &eq);
	check_reply("export", r);
	bh_free(r);

	// an error text that quotes a long name: cut to its buffer, whole;
	// 0..3 leading ASCII bytes move the cut through a character
	char *name = malloc(1200);
	for (int shift = 0; shift < 4; shift++) {
		size_t i = 0;
		for (; i < (size_t)shift; i++)
			name[i] = 'a';
		for (; i + 2 < 1200; i += 2) {
			name[i] = (char)0xC3;
			name[i + 1] = (char)0xA9;
		}
		name[i] = '\0';
		Copal__TaskSpec ts = bh_spec(name, "wf", name), *tsp = &ts;
		Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
		cr.n_tasks = 1;
		cr.tasks = &tsp;
		BH_REQ(cq, CREATE, create, &cr);
		r = BH_CALL(c, &cq, -1);
		BH_CHECK(r->status != 0, "a create of a missing app succeeded");
		check_reply("create_error", r);
		bh_free(r);
	}

	Copal__QueryRequest qr = COPAL__QUERY_REQUEST__INIT;
	Copal__Filter fa = COPAL__FILTER__INIT;
	fa.all = true;
	qr.filter = &fa;
	qr.with_spec = true;
	BH_REQ(qq, QUERY, query, &qr);
	r = BH_OK(c, &qq);
	check_reply("query", r);
	bh_free(r);

	// Python's protobuf, strict about UTF-8, decodes every reply kept
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "sh %s/broker/test/strict_decode.sh %s "
	    "%s/proto/copal.proto", COPAL_SOURCE_DIR, dumpdir, COPAL_SOURCE_DIR);
	int rc = system(cmd);
	if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77)
		fprintf(stderr, "NOTE: no python3 protobuf or protoc: the C "
		    "check alone\n");
	else
		BH_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		    "python's protobuf refused a reply (%s)", cmd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dumpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dumpdir);

	free(owner);
	free(node);
	free(msg);
	free(name);
	cpl_client_close(c);
	bh_finish(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replies_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
