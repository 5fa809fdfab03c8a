// NNG 1.5.2 listener bug guard (upstream #1518): an IPC peer that connects
// and closes at once, during the SP negotiation, can leave the listener no
// longer accepting. The broker's self-check pings itself on a new
// connection every two seconds and re-opens the listener after two
// failures. Here 2000 plain AF_UNIX connect+close, and then 2000
// nng_dial+nng_close, must be followed by new clients being served within
// 15 s; clients connected before keep being served throughout; the
// re-opened socket keeps its 0600 mode. The same flood on the TCP
// listener must not stop TCP clients.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "copal/testing/broker.h"

#define FLOOD 2000
#define RECOVER_MS 15000u

// In sanitizer builds: NNG 1.5.2 leaks dialer state inside libnng when
// nng_dial(NNG_FLAG_NONBLOCK) is closed before it connected, as the flood
// below does 2000 times. Those leaks are in this test process and all in
// libnng; the broker is checked separately (its own suppressions cover
// only libnng frames too, see setup).
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libnng.so\n";
}

struct fx {
	bh_broker b;
	cpl_client *early; // connected before any flood
};

static int
setup_in(void **state, const char *tmpl)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	bh_init_at(&f->b, true, tmpl);
	// A listener broken by the NNG bug cannot be reaped by NNG after the
	// broker closes it: its negotiating pipes and the listener leak inside
	// libnng (every frame of those leaks is in libnng, rooted at
	// nng_listener_create). A sanitizer build would report them at exit;
	// they are NNG's, not the broker's.
	f->b.lsan_suppressions = "leak:libnng.so\n";
	bh_start(&f->b);
	f->early = bh_client_opts(&f->b, false, NULL, 2000, 1);
	BH_CHECK(bh_try_ping(f->early, 2000, NULL) == 0, "early client");
	return 0;
}

static int
setup(void **state)
{
	return setup_in(state, "/tmp/cplbt.XXXXXX");
}

// A database path as long as its socket's allows (95 characters): the
// ping's reply names it twice, and is then twice as long as usual.
static int
setup_long(void **state)
{
	return setup_in(state, "/tmp/cplbt.a-long-path-as-on-a-cluster-file-"
	                       "system-project-user-campaign.XXXXXX");
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	cpl_client_close(f->early);
	bh_finish(&f->b);
	free(f);
	return 0;
}

// Non-blocking connect and immediate close: once the listener stops
// accepting, the backlog fills and connects fail at once instead of
// hanging. Returns whether the connect got through.
static bool
connect_close(const bh_broker *b, bool tcp)
{
	int fd = socket(tcp ? AF_INET : AF_UNIX,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rv;
	if (fd < 0)
		return false;
	if (tcp) {
		struct sockaddr_in sa;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)b->port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} else {
		struct sockaddr_un sa;
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, b->url + 6, strlen(b->url + 6) + 1);
		rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	bool ok = rv == 0 || errno == EINPROGRESS;
	close(fd);
	return ok;
}

// How long until a new client (IPC, or TCP with the token) is served;
// fails the test past RECOVER_MS. One client waits the whole time: a
// client that gives up and closes while its connection is still being
// negotiated is itself the trigger of the NNG bug, so polling with fresh
// clients would break the re-opened listener again.
static uint64_t
time_to_serve(struct fx *f, bool tcp, const char *after)
{
	// (NNG's REQ fails a request whose connection closes, as when the
	// self-check closes the old listener: the client resends on the same
	// socket, as cpl_client_call does.)
	uint64_t t0 = bh_now_ms();
	cpl_client *c = bh_client_opts(&f->b, tcp, NULL, (int)RECOVER_MS, 1);
	int rv;
	do {
		uint64_t left = t0 + RECOVER_MS - bh_now_ms();
		rv = bh_try_ping(c, (int)(left > 0 ? left : 1), NULL);
		if (rv == CPL_ECONNECT)
			bh_sleep_ms(50);
	} while (rv != 0 && bh_now_ms() < t0 + RECOVER_MS);
	cpl_client_close(c);
	uint64_t ms = bh_now_ms() - t0;
	if (rv == 0)
		return ms;
	bh_log_tail(&f->b, 2000);
	BH_FAIL("after %s, a new %s client was not served within %u ms (%s); "
	        "the broker is %s",
	    after, tcp ? "TCP" : "IPC", RECOVER_MS, cpl_errname(rv),
	    bh_alive(f->b.pid) ? "alive" : "DEAD");
	return 0;
}

static void
check_socket_mode(struct fx *f)
{
	struct stat st;
	const char *path = f->b.url + 6;
	BH_CHECK(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	BH_CHECK((st.st_mode & 0777) == 0600, "%s has mode %o, expected 0600",
	    path, st.st_mode & 0777);
}

static void
test_ipc_connect_close(void **state)
{
	struct fx *f = *state;
	int through = 0;
	for (int i = 0; i < FLOOD; i++)
		through += connect_close(&f->b, false);
	// a client connected before is not affected by the listener
	BH_CHECK(bh_try_ping(f->early, 2000, NULL) == 0,
	    "a client connected before the flood is no longer served");
	uint64_t ms = time_to_serve(f, false, "2000 AF_UNIX connect+close");
	print_message("AF_UNIX connect+close x%d (%d got through): new clients "
	              "served after %" PRIu64 " ms; listener re-opened: %s\n",
	    FLOOD, through, ms,
	    bh_log_contains(&f->b, "re-opening") ? "yes" : "no");
	check_socket_mode(f);
	BH_CHECK(bh_try_ping(f->early, 2000, NULL) == 0,
	    "a client connected before the re-open is no longer served");
}

static void
test_nng_dial_close(void **state)
{
	struct fx *f = *state;
	int ok = 0;
	for (int i = 0; i < FLOOD; i++) {
		nng_socket s;
		if (nng_req0_open(&s) != 0)
			continue;
		ok += nng_dial(s, f->b.url, NULL, NNG_FLAG_NONBLOCK) == 0;
		nng_close(s);
	}
	BH_CHECK(bh_try_ping(f->early, 2000, NULL) == 0,
	    "a client connected before the flood is no longer served");
	uint64_t ms = time_to_serve(f, false, "2000 nng_dial+nng_close");
	print_message("nng_dial+nng_close x%d (%d dials started): new clients "
	              "served after %" PRIu64 " ms; listener re-opened: %s\n",
	    FLOOD, ok, ms, bh_log_contains(&f->b, "re-opening") ? "yes" : "no");
	check_socket_mode(f);
	// and a second flood after a re-open is survived the same way
	for (int i = 0; i < FLOOD; i++)
		connect_close(&f->b, false);
	ms = time_to_serve(f, false, "a second flood");
	print_message("second flood: served after %" PRIu64 " ms\n", ms);
	check_socket_mode(f);
}

static void
test_tcp_connect_close(void **state)
{
	struct fx *f = *state;
	int through = 0;
	for (int i = 0; i < FLOOD; i++)
		through += connect_close(&f->b, true);
	for (int i = 0; i < FLOOD / 4; i++) {
		nng_socket s;
		if (nng_req0_open(&s) != 0)
			continue;
		nng_dial(s, f->b.tcp, NULL, NNG_FLAG_NONBLOCK);
		nng_close(s);
	}
	uint64_t ms = time_to_serve(f, true, "2000 TCP connect+close");
	print_message("TCP connect+close x%d (%d got through): TCP clients "
	              "served after %" PRIu64 " ms\n",
	    FLOOD, through, ms);
	time_to_serve(f, false, "the TCP flood");
}

// The self-check's own ping is answered, and the connection it closes is
// freed by NNG: over five rounds of it (2 s apart) an idle broker neither
// re-opens its listener (two failed pings would) nor says that NNG's
// reaper is stuck (three answered pings whose connections are not freed
// would). Run twice: in a short database path and in a long one, whose
// ping replies are twice as long.
static void
test_selfcheck_quiet(void **state)
{
	struct fx *f = *state;
	bh_sleep_ms(10500);
	BH_CHECK(bh_try_ping(f->early, 2000, NULL) == 0, "early client");
	bool reopened = bh_log_contains(&f->b, "re-opening");
	bool stuck = bh_log_contains(&f->b, "reaper is");
	if (reopened || stuck)
		bh_log_tail(&f->b, 2000);
	BH_CHECK(!reopened, "the self-check re-opened a working listener: "
	                    "its ping is not answered");
	BH_CHECK(!stuck, "the self-check says NNG's reaper is stuck on an "
	                 "idle broker");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_selfcheck_quiet, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_selfcheck_quiet,
		    setup_long, teardown),
		cmocka_unit_test_setup_teardown(test_ipc_connect_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nng_dial_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tcp_connect_close, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
