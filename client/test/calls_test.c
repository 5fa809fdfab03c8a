// The typed calls (cpl_call_*) against a real broker and a fake one: the
// reply's status folded into the return value with the broker's message,
// the body asked for on success, per-report statuses left in the reply,
// and local failures (no broker, a reply of the wrong kind, bad arguments)
// told apart from refusals.
//
// Needs COPAL_BROKER and COPAL_CLI: the copal-broker and copal programs of
// the build tree (client/CMakeLists.txt).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "copal/client.h"

#ifndef COPAL_BROKER
#error "define COPAL_BROKER to the copal-broker executable"
#endif
#ifndef COPAL_CLI
#error "define COPAL_CLI to the copal executable"
#endif

extern char **environ;

static char base[64];   // the test's directory under /tmp
static char db[128];    // the database in it, served by broker
static pid_t broker;

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Runs argv with stdout and stderr into base/name; its pid.
static pid_t
spawn(char *const argv[], const char *name)
{
	posix_spawn_file_actions_t fa;
	char out[128];
	pid_t pid;
	snprintf(out, sizeof(out), "%s/%s", base, name);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out,
	    O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e != 0) {
		fprintf(stderr, "calls_test: spawn %s: %s\n", argv[0], strerror(e));
		return -1;
	}
	return pid;
}

static cpl_client *
open_client(const char *dir, const char *url, int timeout_ms, int attempts)
{
	cpl_client_opts o;
	cpl_client *c = NULL;
	memset(&o, 0, sizeof(o));
	o.db_dir = dir;
	o.url = url;
	o.timeout_ms = timeout_ms;
	o.attempts = attempts;
	int rv = cpl_client_open(&o, &c);
	if (rv != 0)
		fprintf(stderr, "calls_test: open: %s\n", cpl_strerror(rv));
	assert_int_equal(rv, 0);
	return c;
}

// A database made by `copal init` and its broker, answering.
static int
setup(void **state)
{
	(void)state;
	// the client library reads these when an option is not given
	unsetenv(CPL_ENV_DB);
	unsetenv(CPL_ENV_URL);
	unsetenv(CPL_ENV_TOKEN);
	setenv("COPAL_NO_AUTOSTART", "1", 1);
	snprintf(base, sizeof(base), "/tmp/cpl-calls.XXXXXX");
	if (mkdtemp(base) == NULL)
		return -1;
	snprintf(db, sizeof(db), "%s/db", base);
	char *init[] = { (char *)COPAL_CLI, (char *)"init", db, NULL };
	int st;
	pid_t pid = spawn(init, "init.out");
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "calls_test: copal init %s failed (see %s/init.out)\n",
		    db, base);
		return -1;
	}
	char *bargv[] = { (char *)COPAL_BROKER, (char *)"--db", db, NULL };
	if ((broker = spawn(bargv, "broker.err")) < 0)
		return -1;
	cpl_client *c = open_client(db, NULL, 0, 0);
	for (int i = 0;; i++) {
		Copal__Reply *r;
		if (cpl_call_ping_once(c, 200, &r) == 0) {
			cpl_reply_free(r);
			break;
		}
		if (i > 100 || waitpid(broker, &st, WNOHANG) == broker) {
			fprintf(stderr, "calls_test: the broker does not answer "
			    "(see %s/broker.err)\n", base);
			cpl_client_close(c);
			return -1;
		}
	}
	cpl_client_close(c);
	return 0;
}

static int
rm_rf(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int
teardown(void **state)
{
	(void)state;
	int st = 0, rc = 0;
	if (broker > 0) {
		kill(broker, SIGTERM);
		if (waitpid(broker, &st, 0) != broker || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			fprintf(stderr, "calls_test: the broker did not exit "
			    "cleanly (see %s/broker.err)\n", base);
			rc = -1;
		}
	}
	if (rc == 0 && base[0])
		(void)rm_rf(base);
	return rc;
}

// A refusal: the broker's status is the return value, its message the
// client's errmsg, and no reply is left to free.
static void
test_refusal_folded(void **state)
{
	(void)state;
	cpl_client *c = open_client(db, NULL, 0, 0);
	Copal__Reply *rep = (Copal__Reply *)&rep; // must be overwritten
	int rv = cpl_call_app_delete(c, "ghost", &rep);
	assert_int_equal(rv, CPL_ENOTFOUND);
	assert_null(rep);
	assert_true(cpl_client_err_remote(c));
	assert_string_equal(cpl_client_errmsg(c), "no app named ghost");

	// a success clears it
	assert_int_equal(cpl_call_app_list(c, &rep), 0);
	assert_false(cpl_client_err_remote(c));
	assert_string_equal(cpl_client_errmsg(c), "");
	cpl_reply_free(rep);

	// dependencies between tasks that do not exist
	rv = cpl_call_add_dependency(c, 1000001, 1000002, &rep);
	assert_int_equal(rv, CPL_ENOTFOUND);
	assert_null(rep);
	assert_true(cpl_client_err_remote(c));
	assert_non_null(strstr(cpl_client_errmsg(c),
	    "the parent task does not exist"));
	// never named by the internal ids the CLI cannot look up
	assert_null(strstr(cpl_client_errmsg(c), "1000001"));

	// a filter-less delete is refused, not "everything"
	rv = cpl_call_delete(c, NULL, &rep);
	assert_int_equal(rv, CPL_EINVAL);
	assert_true(cpl_client_err_remote(c));
	assert_non_null(strstr(cpl_client_errmsg(c), "no filter"));
	cpl_client_close(c);
}

// Successes return the body asked for, with what the broker did.
static void
test_success_bodies(void **state)
{
	(void)state;
	cpl_client *c = open_client(db, NULL, 0, 0);
	Copal__Reply *rep;

	Copal__App app = COPAL__APP__INIT;
	app.name = "calls";
	app.executable = "/bin/true";
	assert_int_equal(cpl_call_app_register(c, &app, false, &rep), 0);
	assert_int_equal(rep->body_case, COPAL__REPLY__BODY_APP_REGISTER);
	assert_non_null(rep->app_register);
	cpl_reply_free(rep);
	// registering it again without replace: EEXISTS with its name
	assert_int_equal(cpl_call_app_register(c, &app, false, &rep),
	    CPL_EEXISTS);
	assert_non_null(strstr(cpl_client_errmsg(c), "app calls already exists"));

	Copal__TaskSpec specs[3], *sp[3];
	char names[3][8];
	for (int i = 0; i < 3; i++) {
		copal__task_spec__init(&specs[i]);
		snprintf(names[i], sizeof(names[i]), "t%d", i);
		specs[i].name = names[i];
		specs[i].workflow = "calls";
		specs[i].application = "calls";
		sp[i] = &specs[i];
	}
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.tasks = sp;
	cr.n_tasks = 3;
	cr.want_uuids = true;
	assert_int_equal(cpl_call_create_tasks(c, &cr, &rep), 0);
	assert_int_equal(rep->body_case, COPAL__REPLY__BODY_CREATE);
	assert_int_equal(rep->create->count, 3);
	assert_int_equal(rep->create->n_uuids, 3);
	uint64_t first = rep->create->first_id;
	cpl_reply_free(rep);

	Copal__Filter f = COPAL__FILTER__INIT;
	f.workflow = "calls";
	assert_int_equal(cpl_call_count(c, &f, &rep), 0);
	assert_int_equal(rep->count->total, 3);
	cpl_reply_free(rep);

	assert_int_equal(cpl_call_query(c, &f, first, 10, true, &rep), 0);
	assert_int_equal(rep->query->n_tasks, 2); // ids after the first
	assert_string_equal(rep->query->tasks[0]->spec->name, "t1");
	cpl_reply_free(rep);

	assert_int_equal(cpl_call_history(c, first, &rep), 0);
	assert_true(rep->history->n_events >= 1);
	cpl_reply_free(rep);

	assert_int_equal(cpl_call_ping(c, &rep), 0);
	assert_int_equal(rep->body_case, COPAL__REPLY__BODY_PING);
	assert_int_equal(rep->ping->pid, (uint32_t)broker);
	cpl_reply_free(rep);

	// a report the broker refuses is a status in the reply, not the
	// call's: the envelope is fine
	assert_int_equal(cpl_call_heartbeat(c, 0, "calls_test", 60000, false,
	    &rep), 0);
	uint64_t lease = rep->heartbeat->lease_id;
	assert_true(lease != 0);
	cpl_reply_free(rep);
	Copal__StateReport s = COPAL__STATE_REPORT__INIT, *sr = &s;
	s.task_id = first;
	s.attempt = 1;
	s.to_state = COPAL__TASK_STATE__STATE_RUNNING; // never claimed
	assert_int_equal(cpl_call_report(c, lease, &sr, 1, &rep), 0);
	assert_int_equal(rep->report->n_status, 1);
	assert_int_not_equal(rep->report->status[0], 0);
	cpl_reply_free(rep);
	assert_int_equal(cpl_call_heartbeat(c, lease, "calls_test", 60000, true,
	    &rep), 0);
	cpl_reply_free(rep);

	assert_int_equal(cpl_call_kill(c, &f, false, &rep), 0);
	assert_int_equal(rep->kill->killed, 3);
	cpl_reply_free(rep);
	cpl_client_close(c);
}

// No broker: a local failure, quickly, with cpl_strerror as the message.
static void
test_no_broker(void **state)
{
	(void)state;
	char url[128];
	snprintf(url, sizeof(url), "ipc://%s/nobody", base);
	cpl_client *c = open_client(NULL, url, 200, 2);
	Copal__Reply *rep;
	double t0 = now_s();
	int rv = cpl_call_count(c, NULL, &rep);
	double dt = now_s() - t0;
	assert_true(rv == CPL_ETIMEOUT || rv == CPL_ECONNECT);
	assert_null(rep);
	assert_false(cpl_client_err_remote(c));
	assert_string_equal(cpl_client_errmsg(c), cpl_strerror(rv));
	assert_true(dt < 3.0);
	rv = cpl_call_ping_once(c, 100, &rep);
	assert_true(rv == CPL_ETIMEOUT || rv == CPL_ECONNECT);
	assert_false(cpl_client_err_remote(c));

	// arguments the call cannot send
	assert_int_equal(cpl_call_claim(c, NULL, &rep), CPL_EINVAL);
	assert_null(rep);
	assert_false(cpl_client_err_remote(c));
	assert_string_equal(cpl_client_errmsg(c), cpl_strerror(CPL_EINVAL));
	assert_int_equal(cpl_call_ping(c, NULL), CPL_EINVAL);
	assert_int_equal(cpl_call_ping(NULL, &rep), CPL_EINVAL);
	assert_null(rep);
	cpl_reply_free(NULL);
	cpl_client_close(c);
}

// ------------------------------------------------------------ fake broker

// Answers every request with a ping body and the status `status` (no error
// text), until told to stop.
struct fake {
	nng_socket s;
	uint32_t status;
	int answered;
	uint64_t ids[8]; // the request ids of the first requests
};

static void *
fake_main(void *arg)
{
	struct fake *fk = arg;
	for (;;) {
		void *buf;
		size_t len;
		if (nng_recv(fk->s, &buf, &len, NNG_FLAG_ALLOC) != 0)
			return NULL;
		Copal__Request *rq = copal__request__unpack(NULL, len, buf);
		nng_free(buf, len);
		if (rq == NULL)
			return NULL;
		Copal__Reply rep = COPAL__REPLY__INIT;
		Copal__PingReply pr = COPAL__PING_REPLY__INIT;
		rep.version = 1;
		rep.request_id = rq->request_id;
		rep.status = fk->status;
		if (fk->status == 0) {
			rep.body_case = COPAL__REPLY__BODY_PING;
			rep.ping = &pr;
		}
		copal__request__free_unpacked(rq, NULL);
		size_t n = copal__reply__get_packed_size(&rep);
		uint8_t *out = malloc(n ? n : 1);
		if (out == NULL)
			return NULL;
		copal__reply__pack(&rep, out);
		// counted before the answer: the test reads it after
		if (fk->answered < 8)
			fk->ids[fk->answered] = rep.request_id;
		fk->answered++;
		int e = nng_send(fk->s, out, n, 0);
		free(out);
		if (e != 0)
			return NULL;
	}
}

static void
test_fake_broker(void **state)
{
	(void)state;
	struct fake fk;
	pthread_t th;
	char url[128];
	memset(&fk, 0, sizeof(fk));
	snprintf(url, sizeof(url), "ipc://%s/fake", base);
	assert_int_equal(nng_rep0_open(&fk.s), 0);
	assert_int_equal(nng_listen(fk.s, url, NULL, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, fake_main, &fk), 0);
	cpl_client *c = open_client(NULL, url, 2000, 1);
	Copal__Reply *rep;

	// a ping body where an app list was asked for: a protocol error
	int rv = cpl_call_app_list(c, &rep);
	assert_int_equal(rv, CPL_EPROTO);
	assert_null(rep);
	assert_false(cpl_client_err_remote(c));
	assert_string_equal(cpl_client_errmsg(c), cpl_strerror(CPL_EPROTO));
	// the body asked for
	assert_int_equal(cpl_call_ping(c, &rep), 0);
	cpl_reply_free(rep);
	// the raw call returns whatever came
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__AppListRequest al = COPAL__APP_LIST_REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_APP_LIST;
	req.app_list = &al;
	assert_int_equal(cpl_client_call(c, &req, &rep), 0);
	assert_int_equal(rep->body_case, COPAL__REPLY__BODY_PING);
	cpl_reply_free(rep);

	// a refusal without text: its status's message stands in
	fk.status = CPL_EBUSY;
	rv = cpl_call_ping(c, &rep);
	assert_int_equal(rv, CPL_EBUSY);
	assert_null(rep);
	assert_true(cpl_client_err_remote(c));
	assert_string_equal(cpl_client_errmsg(c), cpl_strerror(CPL_EBUSY));
	assert_int_equal(fk.answered, 4);
	// the client's request ids: the time in microseconds, each above
	// the last (cpl_client_next_id goes on from them)
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u +
	    (uint64_t)ts.tv_nsec / 1000u;
	for (int i = 0; i < 4; i++) {
		assert_true(fk.ids[i] <= now + 4);
		assert_true(fk.ids[i] + 60u * 1000000u > now);
		assert_true(i == 0 || fk.ids[i] > fk.ids[i - 1]);
	}
	uint64_t next = cpl_client_next_id(c);
	assert_true(next > fk.ids[3]);
	assert_true(cpl_client_next_id(c) > next);
	assert_true(cpl_client_next_id(NULL) != 0);

	cpl_client_close(c);
	nng_close(fk.s); // ends fake_main's nng_recv
	pthread_join(th, NULL);
}

// cpl_client_call_packed: a body packed by the caller gets the envelope,
// a request without an answer is resent byte for byte (the same client id
// and request id), and the reply comes back packed.
struct dropper {
	nng_socket s;
	void *first; // the first request, unanswered
	size_t first_len;
	bool same;   // the second request equals the first
	uint64_t id;
	size_t cid_len;
	int body_case;
};

static void *
dropper_main(void *arg)
{
	struct dropper *d = arg;
	void *buf;
	size_t len;
	if (nng_recv(d->s, &d->first, &d->first_len, NNG_FLAG_ALLOC) != 0 ||
	    nng_recv(d->s, &buf, &len, NNG_FLAG_ALLOC) != 0)
		return NULL;
	d->same = len == d->first_len && memcmp(buf, d->first, len) == 0;
	Copal__Request *rq = copal__request__unpack(NULL, len, buf);
	nng_free(buf, len);
	if (rq == NULL)
		return NULL;
	d->id = rq->request_id;
	d->cid_len = rq->client_id.len;
	d->body_case = (int)rq->body_case;
	Copal__Reply rep = COPAL__REPLY__INIT;
	Copal__PingReply pr = COPAL__PING_REPLY__INIT;
	pr.version = (char *)"fake";
	rep.version = 1;
	rep.request_id = rq->request_id;
	rep.body_case = COPAL__REPLY__BODY_PING;
	rep.ping = &pr;
	copal__request__free_unpacked(rq, NULL);
	uint8_t out[256];
	size_t n = copal__reply__pack(&rep, out);
	nng_send(d->s, out, n, 0);
	return NULL;
}

static void
test_packed_resend(void **state)
{
	(void)state;
	struct dropper d;
	pthread_t th;
	char url[128];
	memset(&d, 0, sizeof(d));
	snprintf(url, sizeof(url), "ipc://%s/dropper", base);
	assert_int_equal(nng_rep0_open(&d.s), 0);
	assert_int_equal(nng_listen(d.s, url, NULL, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, dropper_main, &d), 0);
	cpl_client *c = open_client(NULL, url, 300, 2);

	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__PingRequest pq = COPAL__PING_REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_PING;
	req.ping = &pq;
	uint8_t body[64];
	size_t blen = copal__request__pack(&req, body);
	void *rbuf;
	size_t rlen;
	assert_int_equal(cpl_client_call_packed(c, body, blen, &rbuf, &rlen), 0);
	Copal__Reply *rep = copal__reply__unpack(NULL, rlen, rbuf);
	cpl_packed_free(rbuf, rlen);
	assert_non_null(rep);
	assert_int_equal(rep->body_case, COPAL__REPLY__BODY_PING);
	assert_string_equal(rep->ping->version, "fake");
	assert_int_equal(rep->request_id, d.id);
	cpl_reply_free(rep);
	pthread_join(th, NULL);
	assert_true(d.same);
	assert_int_not_equal(d.id, 0);
	assert_int_equal(d.cid_len, 16);
	assert_int_equal(d.body_case, COPAL__REQUEST__BODY_PING);
	nng_free(d.first, d.first_len);

	// no answer after every attempt: the timeout, recorded as local
	assert_int_equal(cpl_client_call_packed(c, body, blen, &rbuf, &rlen),
	    CPL_ETIMEOUT);
	assert_null(rbuf);
	assert_false(cpl_client_err_remote(c));
	cpl_client_close(c);
	nng_close(d.s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusal_folded),
		cmocka_unit_test(test_success_bodies),
		cmocka_unit_test(test_no_broker),
		cmocka_unit_test(test_fake_broker),
		cmocka_unit_test(test_packed_resend),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
