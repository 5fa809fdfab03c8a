// copal/testing/broker.h: helpers of the broker integration tests, built
// once in the copal_testing library (tests/testing/).
//
//   #include "copal/testing/broker.h"    (includes cmocka itself)
//
// Link with copal_testing; its brokers are the copal-broker of the same
// build tree (the library is compiled with its path).
//
// What is here:
//  * bh_broker: a database in its own mkdtemp directory under /tmp (with
//    copal.conf and a 0600 secret) and the broker process serving it.
//    bh_init() makes the directory (and picks a free TCP port if asked),
//    bh_start() spawns the broker with posix_spawn and waits until it
//    answers a ping, bh_stop() sends SIGTERM and requires exit status 0
//    (so a sanitizer report or a leak in the broker fails the test) and
//    that no process is left, bh_kill9() kills it hard, bh_destroy() kills
//    whatever is left and removes the directory. Every broker spawned is
//    also killed at exit, and (through setpriv --pdeathsig, if present)
//    when the test process dies, so no broker outlives its test.
//    The broker's stderr (its log, --log-stderr, and any sanitizer report)
//    goes to DIR/broker.err; failures print its tail.
//  * calls through the client library that fail the test with the status
//    name, its message and the broker's error text (BH_OK, BH_CALL), and
//    one-line helpers for common requests (main thread only: they assert);
//  * raw NNG REQ sockets and raw AF_UNIX connections for bad input;
//  * a protobuf wire writer for requests protobuf-c cannot pack (strings
//    with NUL bytes, out-of-range values);
//  * a snapshot of what a database holds (counts by state, history length)
//    to prove that a bad request changed nothing.
//
// cmocka assertions jump out of the test: never call an asserting helper
// from a thread other than the one running the test. Threads record their
// errors and the test asserts after joining them.
#ifndef COPAL_TESTING_BROKER_H
#define COPAL_TESTING_BROKER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <sys/types.h>

#include <nng/nng.h>

#include "copal/client.h"

// ------------------------------------------------------------ basics

#define BH_FAIL(...)                                                       \
	do {                                                               \
		print_error(__VA_ARGS__);                                  \
		print_error("\n");                                         \
		fail();                                                    \
	} while (0)

#define BH_CHECK(cond, ...)                                                \
	do {                                                               \
		if (!(cond)) {                                             \
			print_error("%s:%d: check failed: %s\n  ",         \
			    __FILE__, __LINE__, #cond);                    \
			BH_FAIL(__VA_ARGS__);                              \
		}                                                          \
	} while (0)

#define BH_EQ_U64(got, want)                                               \
	do {                                                               \
		unsigned long long bh_g_ = (unsigned long long)(got);      \
		unsigned long long bh_w_ = (unsigned long long)(want);     \
		if (bh_g_ != bh_w_)                                        \
			BH_FAIL("%s:%d: %s is %llu, expected %llu (%s)",   \
			    __FILE__, __LINE__, #got, bh_g_, bh_w_, #want); \
	} while (0)

// The name of state s, or "(invalid state)".
const char *bh_sname(int s);

#define BH_EQ_STATE(got, want)                                             \
	do {                                                               \
		int bh_g_ = (int)(got), bh_w_ = (int)(want);               \
		if (bh_g_ != bh_w_)                                        \
			BH_FAIL("%s:%d: %s is %s (%d), expected %s (%d)",  \
			    __FILE__, __LINE__, #got, bh_sname(bh_g_),     \
			    bh_g_, bh_sname(bh_w_), bh_w_);                \
	} while (0)

// Compare two error codes (copal statuses), by name.
#define BH_EQ_ERR(got, want)                                               \
	do {                                                               \
		int bh_g_ = (int)(got), bh_w_ = (int)(want);               \
		if (bh_g_ != bh_w_)                                        \
			BH_FAIL("%s:%d: %s is %s (%s), expected %s (%s)",  \
			    __FILE__, __LINE__, #got, cpl_errname(bh_g_),  \
			    cpl_strerror(bh_g_), cpl_errname(bh_w_),       \
			    cpl_strerror(bh_w_));                          \
	} while (0)

// A monotonic clock in milliseconds, and a sleep that resumes after
// signals.
uint64_t bh_now_ms(void);
void bh_sleep_ms(unsigned ms);

// Time factor: sanitizer builds run the broker several times slower.
int bh_slow(void);

// A small seeded PRNG (xorshift64*), the same sequence on every run.
uint64_t bh_rand(uint64_t *s);

// A seed from COPAL_TEST_SEED or from the time and pid (printed by the
// caller so that a failing run can be repeated).
uint64_t bh_seed(void);

// Removes a directory tree (like rm -rf), ignoring errors.
void bh_rm_rf(const char *dir);

// ------------------------------------------------------------ processes

// Waits up to ms for pid to exit; returns true and the status if it did.
bool bh_wait_exit(pid_t pid, unsigned ms, int *status);

// A wait status in words ("exit status 1", "killed by signal 9 ...").
void bh_describe_status(int status, char *buf, size_t len);

// ------------------------------------------------------------ brokers

typedef struct bh_broker {
	char dir[96];        // the database directory (mkdtemp); its
	                     // socket, DIR/sock/broker, must fit in 108
	char url[160];       // ipc://DIR/sock/broker
	char tcp[64];        // tls+tcp://127.0.0.1:PORT (tcp:// after
	                     // bh_plain_tcp), or "" for IPC only
	char token[33];      // the database secret
	char errpath[128];   // DIR/broker.err
	int port;
	pid_t pid;           // running broker, or 0
	int starts;
	// LeakSanitizer suppressions for the broker (sanitizer builds), one
	// per line such as "leak:libnng.so"; NULL: none. Only for tests that
	// trigger a known leak inside a dependency on purpose.
	const char *lsan_suppressions;
} bh_broker;

// A TCP port on 127.0.0.1 that nobody listens on now, chosen from the
// pid so that test programs running at once do not pick the same ones.
int bh_free_port(void);

// Makes a fresh database directory; with tcp, also picks a port and
// makes the database's TLS key and certificate (tls.key, tls.crt): the
// broker listens on tls+tcp://127.0.0.1:PORT and bh_client_opts' TCP
// clients use them.
void bh_init(bh_broker *b, bool tcp);
// The same in a directory made from a mkdtemp template other than
// /tmp/cplbt.XXXXXX (at most 95 characters), e.g. a long path.
void bh_init_at(bh_broker *b, bool tcp, const char *tmpl);

// After bh_init(b, true), before bh_start: plain tcp:// instead of TLS,
// with broker_tcp_insecure = true in copal.conf (tests that write the
// SP protocol on a raw TCP socket).
void bh_plain_tcp(bh_broker *b);

// Prints the last `max` bytes of the broker's stderr.
void bh_log_tail(const bh_broker *b, size_t max);

// Whether the broker's stderr contains s.
bool bh_log_contains(const bh_broker *b, const char *s);
// bh_log_contains, asked again every 20 ms for up to ms: for a line the
// broker writes after something the test saw (a close, a refusal), which
// a loaded machine may delay.
bool bh_log_wait(const bh_broker *b, const char *s, unsigned ms);

// Spawns the broker; does not wait for it.
pid_t bh_spawn(bh_broker *b);

// Opens a client on the broker's IPC socket (or TCP with the right token
// if tcp is set). timeout_ms 0: 5000 (times the sanitizer factor).
cpl_client *bh_client_opts(const bh_broker *b, bool tcp, const char *token,
    int timeout_ms, int attempts);

// bh_client_opts over IPC with the defaults.
cpl_client *bh_client(const bh_broker *b);

// One ping with a short timeout; 0 if the broker answered with success.
int bh_try_ping(cpl_client *c, int timeout_ms, uint32_t *pid);

// Waits until the broker answers a ping over IPC (and TCP if it has a
// port), failing the test if it exits or does not answer in time.
void bh_wait_ready(bh_broker *b, unsigned ms);

// Spawns the broker and waits until it serves. A TCP port taken by
// someone else meanwhile is replaced by another once or twice.
void bh_start(bh_broker *b);

// Whether process pid exists.
bool bh_alive(pid_t pid);

// Stops the broker with SIGTERM. It must exit with status 0 within a
// generous time, remove its pid file and socket, and be gone. Returns
// false with the reason in err (and the log tail printed) otherwise.
bool bh_stop_check(bh_broker *b, char *err, size_t errlen);

// bh_stop_check that fails the test.
void bh_stop(bh_broker *b);

// Kills the broker with SIGKILL and reaps it.
void bh_kill9(bh_broker *b);

// The usual fixture end: stop the broker if it runs (it must exit 0),
// remove the directory, then fail if the stop was not clean.
void bh_finish(bh_broker *b);

// Kills a broker still running (a failed test) and removes the directory
// (kept, and named on stderr, with COPAL_TEST_KEEP set).
void bh_destroy(bh_broker *b);

// The fixture most broker tests share: a broker on a local socket with an
// app named "app" registered, and one client connected to it.
typedef struct bh_fx {
	bh_broker b;
	cpl_client *c;
} bh_fx;

// cmocka setup and teardown of a bh_fx (*state points at it); the
// teardown requires the broker to stop cleanly (bh_finish).
int bh_fx_setup(void **state);
int bh_fx_teardown(void **state);

// ------------------------------------------------------------ requests

// The name of the body of rq ("create", "claim", ...).
const char *bh_body_name(const Copal__Request *rq);

// Sends rq (a fresh request id unless rq->request_id is set) and returns
// the reply; want < 0 accepts any status, else the status must be want.
// The caller frees the reply with copal__reply__free_unpacked(r, NULL).
Copal__Reply *bh_call_(cpl_client *c, Copal__Request *rq, int want,
    const char *expr, const char *file, int line);

#define BH_CALL(c, rq, want) bh_call_((c), (rq), (want), #rq, __FILE__, __LINE__)
#define BH_OK(c, rq) BH_CALL((c), (rq), 0)

// Declares `Copal__Request name` with the given body.
#define BH_REQ(name, KIND, field, bodyp)                                   \
	Copal__Request name = COPAL__REQUEST__INIT;                        \
	name.body_case = COPAL__REQUEST__BODY_##KIND;                      \
	name.field = (bodyp)

// Frees a reply.
#define bh_free(r) copal__reply__free_unpacked((r), NULL)

// Packs a reply to compare two replies byte for byte; free the result.
uint8_t *bh_pack_reply(const Copal__Reply *r, size_t *len);

// Two replies must be equal (same packed bytes).
#define BH_SAME_REPLY(a, b) bh_same_reply_((a), (b), __FILE__, __LINE__)
void bh_same_reply_(const Copal__Reply *a, const Copal__Reply *b,
    const char *file, int line);

// --- one-call helpers (assert on failure)

// Registers (or replaces) app name running /bin/true.
void bh_app(cpl_client *c, const char *name);

// A spec in the caller's storage.
Copal__TaskSpec bh_spec(const char *name, const char *wf, const char *app);

// Creates n tasks named "<prefix><i>" in workflow wf with app; returns the
// first id (ids are first .. first+n-1).
uint64_t bh_create(cpl_client *c, size_t n, const char *prefix, const char *wf,
    const char *app);

// The reply to a query for one task by id (NULL task if it does not
// exist). Free the reply.
Copal__Reply *bh_query_id(cpl_client *c, uint64_t id, bool with_spec,
    Copal__Task **t);

// State of task id, or -1 if there is no such task.
int bh_state(cpl_client *c, uint64_t id);

// Task id must be in state want.
#define BH_STATE(c, id, want)                                              \
	do {                                                               \
		uint64_t bh_id_ = (id);                                    \
		int bh_s_ = bh_state((c), bh_id_);                         \
		if (bh_s_ != (int)(want))                                  \
			BH_FAIL("%s:%d: task %" PRIu64 " (%s) is %s, "     \
			        "expected %s",                             \
			    __FILE__, __LINE__, bh_id_, #id,               \
			    bh_s_ < 0 ? "absent" : bh_sname(bh_s_),        \
			    bh_sname((int)(want)));                        \
	} while (0)

// Grants a lease (ttl_ms) and returns its id.
uint64_t bh_lease(cpl_client *c, const char *owner, uint32_t ttl_ms);

// Claims under a lease with nnodes nodes of `units` free units each;
// returns the reply (free it).
Copal__Reply *bh_claim(cpl_client *c, uint64_t lease, uint32_t max,
    size_t nnodes, uint32_t units, uint32_t gpus, const char *wf);

// One report; returns its per-report status.
int bh_report1(cpl_client *c, uint64_t lease, uint64_t id, uint32_t attempt,
    int to, int rc, const char *msg);

// The reply to a history request for task id (free it).
Copal__Reply *bh_history(cpl_client *c, uint64_t id);

// Counts of one plain count request: by_state[16] and total.
uint64_t bh_count(cpl_client *c, const Copal__Filter *f,
    uint64_t by[CPL_NSTATES]);

// Tasks in one state, over the whole database.
uint64_t bh_count_state(cpl_client *c, int state);

// Tasks in one workflow.
uint64_t bh_count_wf(cpl_client *c, const char *wf);

// What a database holds, to show that a request changed nothing.
typedef struct bh_snap {
	uint64_t by_state[CPL_NSTATES];
	uint64_t total;
	uint64_t nevents;   // history events (export of the whole log)
	uint64_t last_seq;
	uint64_t napps;
} bh_snap;

// Takes a snapshot (counts, the whole event log, apps).
void bh_snapshot(cpl_client *c, bh_snap *s);

// Snapshot b (after `what`) must equal a.
#define BH_SAME_SNAP(a, b, what) bh_same_snap_((a), (b), (what), __FILE__, __LINE__)
void bh_same_snap_(const bh_snap *a, const bh_snap *b, const char *what,
    const char *file, int line);

// ------------------------------------------------------------ raw NNG

// A REQ socket dialed to url (blocking dial), with send and receive
// timeouts and NNG's own resend turned off.
int bh_raw_open(const char *url, int timeout_ms, nng_socket *s);

// Sends bytes as one message and waits for one reply; *rep gets the
// decoded reply (NULL if undecodable). Returns an NNG error or 0.
int bh_raw_call(nng_socket s, const void *buf, size_t len, Copal__Reply **rep);

// Packs a request with protobuf-c exactly as given (no defaults filled).
uint8_t *bh_pack_req(const Copal__Request *rq, size_t *len);

// Sends raw bytes on a fresh REQ socket and requires a reply with status
// want (< 0: any non-zero status); returns the reply (free it).
#define BH_RAW_EXPECT(url, buf, len, want)                                 \
	bh_raw_expect_((url), (buf), (len), (want), __FILE__, __LINE__)
Copal__Reply *bh_raw_expect_(const char *url, const void *buf, size_t len,
    int want, const char *file, int line);

// ------------------------------------------------------------ wire writer

// A growing byte buffer for hand-made protobuf and SP frames (free with
// bh_w_free; a helper that cannot grow it fails the test).
typedef struct bh_wbuf {
	uint8_t *p;
	size_t n, cap;
} bh_wbuf;

// Appends raw bytes, and a bare varint.
void bh_w_raw(bh_wbuf *b, const void *d, size_t n);

void bh_w_varint(bh_wbuf *b, uint64_t v);
// A varint field.
void bh_w_uint(bh_wbuf *b, unsigned field, uint64_t v);

// A length-delimited field (string, bytes or sub-message).
void bh_w_bytes(bh_wbuf *b, unsigned field, const void *d, size_t n);

// A sub-message field.
void bh_w_sub(bh_wbuf *b, unsigned field, const bh_wbuf *sub);

// Frees the buffer and empties it.
void bh_w_free(bh_wbuf *b);

// A whole request: version, request id, then one body field.
void bh_w_request(bh_wbuf *out, uint32_t version, uint64_t reqid,
    unsigned body, const bh_wbuf *sub);

// ------------------------------------------------------------ raw sockets

// A plain AF_UNIX stream connection to an ipc:// URL; -1 on error.
int bh_unix_connect(const char *url);

// A plain TCP connection to 127.0.0.1:port; -1 on error.
int bh_tcp_connect(int port);

// Writes all of buf (MSG_NOSIGNAL); false on error.
bool bh_write_all(int fd, const void *buf, size_t n);

// Reads exactly n bytes within ms; returns n, 0 if the peer closed, -1 on
// error or timeout.
ssize_t bh_read_full(int fd, void *buf, size_t n, unsigned ms);

// Whether the peer closes fd within ms (reading and dropping anything it
// sends first).
bool bh_peer_closes(int fd, unsigned ms);

// SP protocol numbers (NNG: REQ 0x30, REP 0x31).
#define BH_SP_REQ 0x30
#define BH_SP_REP 0x31

// The SP connection header for `proto`; writes it and reads the peer's.
// Returns 0, or -1 (closed or wrong answer) with a reason in why.
int bh_sp_handshake(int fd, unsigned proto, char *why, size_t whylen);

// One SP message on a raw stream: for IPC a type byte (1) first, then the
// 64-bit big-endian length, the 4-byte REQ request id (top bit set) and
// the body. TCP frames have no type byte.
void bh_sp_frame_on(bh_wbuf *out, bool tcp, uint32_t reqid, const void *body,
    size_t n);

// bh_sp_frame_on for IPC.
void bh_sp_frame(bh_wbuf *out, uint32_t reqid, const void *body, size_t n);

// Reads one SP message from a raw stream within ms: *reqid gets its REQ
// id and *rep the decoded reply. Returns 0, or -1 (timeout, closed, bad).
int bh_sp_read_reply_on(int fd, bool tcp, unsigned ms, uint32_t *reqid,
    Copal__Reply **rep);

// bh_sp_read_reply_on for IPC.
int bh_sp_read_reply(int fd, unsigned ms, uint32_t *reqid, Copal__Reply **rep);

// A packed ping request (version 1).
uint8_t *bh_ping_bytes(size_t *len, uint64_t reqid);

// A fresh client must be served: a ping on a new connection within ms.
#define BH_SERVES(b, ms) bh_serves_((b), (ms), __FILE__, __LINE__)
void bh_serves_(bh_broker *b, unsigned ms, const char *file, int line);

#endif // COPAL_TESTING_BROKER_H
