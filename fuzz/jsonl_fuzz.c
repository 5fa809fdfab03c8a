// libFuzzer harness of the JSON-lines loader (copal job --from-file,
// cli/src/bulk.c and spec.c): an input is one line, read into a task spec
// by bulk_parse_line, as bulk_create reads each line.
//
// What must hold: a refused line says why, in valid UTF-8; an accepted
// line's spec packs and unpacks to the same bytes, passes the rule book again once decoded,
// holds only valid UTF-8 without NUL bytes, and a CreateTasksRequest with
// it passes the broker's checks of a request (validate_wire, the decode
// with the broker's budget, validate_request): what the loader accepts,
// the broker does not refuse as malformed.
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker.h"
#include "cli.h"
#include "copal/spec.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
broker_accepts(Copal__TaskSpec *sp)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	char err[512];
	req.version = 1;
	req.request_id = 1;
	req.body_case = COPAL__REQUEST__BODY_CREATE;
	req.create = &cr;
	cr.tasks = &sp;
	cr.n_tasks = 1;
	size_t n = copal__request__get_packed_size(&req);
	uint8_t *buf = malloc(n);
	FZ_ASSERT(buf != NULL, "out of memory");
	copal__request__pack(&req, buf);
	FZ_ASSERT(validate_wire(buf, n, err, sizeof(err)) == 0,
	    "validate_wire refuses an accepted line: %s", err);
	budget bud;
	budget_init(&bud, 32 * n + (1u << 20));
	Copal__Request *dec = copal__request__unpack(&bud.pa, n, buf);
	FZ_ASSERT(dec != NULL, "the broker cannot decode an accepted line");
	FZ_ASSERT(validate_request(dec, err, sizeof(err)) == 0,
	    "validate_request refuses an accepted line: %s", err);
	copal__request__free_unpacked(dec, &bud.pa);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], where[256];
	void *obj = NULL;
	spec_buf *b = NULL;
	arena *a = arena_new();
	FZ_ASSERT(a != NULL, "out of memory");
	int rc = bulk_parse_line(a, (const char *)data, size, &b, &obj, err,
	    sizeof(err));
	json_decref(obj);
	if (rc != 0) {
		FZ_ASSERT(b == NULL && err[0] != '\0', "a refusal without "
		    "a reason");
		FZ_ASSERT(fz_utf8_ok(err, strlen(err), false),
		    "the reason is not valid UTF-8: \"%s\"", err);
		arena_free(a);
		return 0;
	}
	FZ_ASSERT(b != NULL, "accepted without a spec");
	Copal__TaskSpec *sp = &b->sp;
	FZ_ASSERT(fz_msg_strings_ok(&sp->base, where, sizeof(where)),
	    "%s: not valid UTF-8 or a NUL byte", where);
	size_t n = copal__task_spec__get_packed_size(sp);
	FZ_ASSERT(n <= CPL_SPEC_BYTES_MAX, "a spec of %zu bytes", n);
	uint8_t *buf = malloc(n ? n : 1), *again = malloc(n ? n : 1);
	FZ_ASSERT(buf && again, "out of memory");
	copal__task_spec__pack(sp, buf);
	Copal__TaskSpec *dec = copal__task_spec__unpack(NULL, n, buf);
	FZ_ASSERT(dec != NULL, "the spec does not decode");
	FZ_ASSERT(copal__task_spec__get_packed_size(dec) == n,
	    "the spec packs again to another size");
	copal__task_spec__pack(dec, again);
	FZ_ASSERT(memcmp(buf, again, n) == 0, "the spec packs again to "
	    "other bytes");
	FZ_ASSERT(cpl_spec_check(dec, err, sizeof(err)) == 0,
	    "the decoded spec breaks the rules: %s", err);
	broker_accepts(sp);
	copal__task_spec__free_unpacked(dec, NULL);
	free(buf);
	free(again);
	arena_free(a);
	return 0;
}
