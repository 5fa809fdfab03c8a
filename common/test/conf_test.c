// The settings reader: defaults, a complete valid file, every kind of
// error with its line number and message, queue order, job_template
// resolution, and files that are missing, too large or not files.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/common.h"
#include "copal/conf.h"

// One database directory for every test; each test writes its own file.
static char dir[64];
static char conf_path[128];

static int
group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cplconf.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/copal.conf", dir);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	unlink(conf_path);
	rmdir(conf_path); // when a test made it a directory
	return rmdir(dir);
}

static void
write_conf(const char *text, size_t len)
{
	unlink(conf_path);
	rmdir(conf_path);
	int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

// Writes text (len bytes, NULs allowed) as the settings file and loads it.
static int
load_n(const char *text, size_t len, cpl_conf *c, char *err, size_t errlen)
{
	write_conf(text, len);
	return cpl_conf_load(dir, c, err, errlen);
}

#define LOAD(text, c, err) load_n(text, sizeof(text) - 1, c, err, sizeof(err))

// The file must load; prints the message if it does not.
static void
must_load(const char *text, size_t len, cpl_conf *c)
{
	char err[512];
	int rv = load_n(text, len, c, err, sizeof(err));
	if (rv != 0) {
		print_error("load failed: %s (%s)\n", cpl_errname(rv), err);
		fail();
	}
	assert_string_equal(err, "");
}
#define MUST_LOAD(text, c) must_load(text, sizeof(text) - 1, c)

// The file must fail with CPL_EINVAL, a message starting "PATH:LINE: "
// and holding want.
static void
must_fail(const char *text, size_t len, unsigned line, const char *want)
{
	cpl_conf c;
	char err[1024], prefix[256];
	int rv = load_n(text, len, &c, err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "%s:%u: ", conf_path, line);
	if (rv != CPL_EINVAL || strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err + strlen(prefix), want) == NULL) {
		print_error("for %.*s\n got rv %s, message \"%s\"\n want "
		            "EINVAL, \"%s...%s...\"\n", (int)len, text,
		    cpl_errname(rv), err, prefix, want);
		fail();
	}
	// never half a file: defaults after an error
	assert_int_equal(c.lease_ttl_seconds, 30);
	assert_int_equal(c.nqueues, 0);
	assert_string_equal(c.scheduler, "local");
}
#define MUST_FAIL(text, line, want) must_fail(text, sizeof(text) - 1, line, want)

// ------------------------------------------------------------ tests

static void
test_defaults(void **state)
{
	(void)state;
	cpl_conf c;
	cpl_conf_defaults(&c, "/data/db");
	assert_string_equal(c.scheduler, "local");
	assert_string_equal(c.job_template, "/data/db/job-templates/local.tmpl");
	assert_string_equal(c.broker_tcp, "");
	assert_int_equal(c.lease_ttl_seconds, 30);
	assert_int_equal(c.scheduler_timeout_seconds, 30);
	assert_int_equal(c.wall_time_margin_seconds, 60);
	assert_string_equal(c.project, "");
	assert_string_equal(c.job_mode, "serial");
	assert_string_equal(c.wf_filter, "");
	assert_int_equal(c.service_period_seconds, 10);
	assert_int_equal(c.service_max_queued_jobs, 3);
	assert_int_equal(c.service_max_wait_minutes, 0);
	assert_int_equal(c.nqueues, 0);
	assert_null(cpl_conf_queue(&c, "debug"));
	cpl_conf_defaults(&c, NULL);
	assert_string_equal(c.job_template, "job-templates/local.tmpl");

	// an empty file, and one of comments and blanks only, are all defaults
	cpl_conf d;
	MUST_LOAD("", &c);
	cpl_conf_defaults(&d, dir);
	assert_memory_equal(&c, &d, sizeof(c));
	MUST_LOAD("# only a comment\n\n   \n\t# indented comment\n", &c);
	assert_memory_equal(&c, &d, sizeof(c));
}

static void
test_full_file(void **state)
{
	(void)state;
	cpl_conf c;
	// CRLF on one line, trailing blanks, tabs, no final newline, a byte
	// order mark, UTF-8 in a comment
	MUST_LOAD("\xEF\xBB\xBF# settings of Jos\xC3\xA9's database \xE2\x9C\x93\n"
	          "scheduler = slurm\r\n"
	          "job_template = /site/templates/theta.tmpl   \n"
	          "broker_tcp = tcp://0.0.0.0:7555\n"
	          "\tlease_ttl_seconds\t=\t120\n"
	          "scheduler_timeout_seconds=5\n"
	          "wall_time_margin_seconds = 0\n"
	          "project = chem42\n"
	          "job_mode = mpi\n"
	          "wf_filter = relax-v2.1\n"
	          "service_period_seconds = 86400\n"
	          "service_max_queued_jobs = 1000\n"
	          "service_max_wait_minutes = 720\n"
	          "claim_order = long_large_first\n"
	          "fast_fail_seconds = 5\n"
	          "fast_fail_codes = 1,127,255\n"
	          "\n"
	          "# debug queue\n"
	          "queue.debug.min_nodes = 1\n"
	          "queue.debug.max_nodes = 8\n"
	          "queue.debug.min_minutes = 5\n"
	          "queue.debug.max_minutes = 60\n"
	          "queue.debug.max_queued = 1\n"
	          "queue.debug.gpus_per_node = 4\n"
	          "queue.prod.large@site.max_nodes = 4096",
	    &c);
	assert_string_equal(c.scheduler, "slurm");
	assert_string_equal(c.claim_order, "long_large_first");
	assert_int_equal(c.fast_fail_seconds, 5);
	assert_string_equal(c.fast_fail_codes, "1,127,255");
	uint8_t codes[32];
	assert_int_equal(cpl_code_list_parse(c.fast_fail_codes, codes), 0);
	assert_true(codes[0] & 2);
	assert_true(codes[127 / 8] & (1u << (127 % 8)));
	assert_true(codes[31] & 0x80);
	assert_false(codes[0] & 4);
	assert_string_equal(c.job_template, "/site/templates/theta.tmpl");
	assert_string_equal(c.broker_tcp, "tcp://0.0.0.0:7555");
	assert_int_equal(c.lease_ttl_seconds, 120);
	assert_int_equal(c.scheduler_timeout_seconds, 5);
	assert_int_equal(c.wall_time_margin_seconds, 0);
	assert_string_equal(c.project, "chem42");
	assert_string_equal(c.job_mode, "mpi");
	assert_string_equal(c.wf_filter, "relax-v2.1");
	assert_int_equal(c.service_period_seconds, 86400);
	assert_int_equal(c.service_max_queued_jobs, 1000);
	assert_int_equal(c.service_max_wait_minutes, 720);
	assert_int_equal(c.nqueues, 2);
	const cpl_queue_policy *q = cpl_conf_queue(&c, "debug");
	assert_ptr_equal(q, &c.queues[0]);
	assert_int_equal(q->min_nodes, 1);
	assert_int_equal(q->max_nodes, 8);
	assert_int_equal(q->min_minutes, 5);
	assert_int_equal(q->max_minutes, 60);
	assert_int_equal(q->max_queued, 1);
	assert_int_equal(q->gpus_per_node, 4);
	// a dot in a queue name: the field is what follows the last dot
	q = cpl_conf_queue(&c, "prod.large@site");
	assert_ptr_equal(q, &c.queues[1]);
	assert_int_equal(q->max_nodes, 4096);
	assert_null(cpl_conf_queue(&c, "prod"));
	assert_null(cpl_conf_queue(&c, NULL));

	// empty string settings, and every broker_tcp form
	MUST_LOAD("broker_tcp =\nproject = \nwf_filter=\n", &c);
	assert_string_equal(c.broker_tcp, "");
	assert_string_equal(c.project, "");
	static const char *const tcp_ok[] = { "tls+tcp://127.0.0.1:1",
		"tls+tcp://[::1]:7555", "tcp://127.0.0.1:1",
		"tcp://node-12.cluster.org:65535", "tcp://[::1]:7555",
		"tcp://[fe80::1]:7555", "tcp://*:7555", "tcp://:7555" };
	for (size_t i = 0; i < sizeof(tcp_ok) / sizeof(tcp_ok[0]); i++) {
		char text[128];
		int n = snprintf(text, sizeof(text), "broker_tcp = %s\n",
		    tcp_ok[i]);
		must_load(text, (size_t)n, &c);
		assert_string_equal(c.broker_tcp, tcp_ok[i]);
	}
	MUST_LOAD("broker_tcp_insecure = true\nbroker_max_connections = 50\n",
	    &c);
	assert_string_equal(c.broker_tcp_insecure, "true");
	assert_int_equal(c.broker_max_connections, 50);
	MUST_FAIL("broker_tcp_insecure = yes\n", 1, "broker_tcp_insecure: "
	    "\"yes\" is not allowed (true or false)");
	MUST_FAIL("broker_tcp = tls+udp://h:1\n", 1, "is not allowed");
	// where launchers on other nodes dial, and what a multi-node job
	// without TCP gets
	MUST_LOAD("broker_advertise = login1.example.org\n"
	    "submit_without_tcp = warn\n", &c);
	assert_string_equal(c.broker_advertise, "login1.example.org");
	assert_string_equal(c.submit_without_tcp, "warn");
	MUST_LOAD("broker_advertise = [fd00::1]\n", &c);
	assert_string_equal(c.broker_advertise, "[fd00::1]");
	assert_string_equal(c.submit_without_tcp, "refuse");
	MUST_FAIL("broker_advertise = a b\n", 1, "is not allowed");
	MUST_FAIL("broker_advertise = tls+tcp://h:1\n", 1, "is not allowed");
	MUST_FAIL("submit_without_tcp = maybe\n", 1, "refuse or warn");
}

static void
test_queue_order_and_defaults(void **state)
{
	(void)state;
	cpl_conf c;
	// queues in the order of their first key; keys of queues interleaved
	MUST_LOAD("queue.zeta.max_queued = 2\n"
	          "queue.alpha.max_nodes = 16\n"
	          "queue.mid.gpus_per_node = 8\n"
	          "queue.zeta.max_nodes = 2\n"
	          "queue.alpha.min_nodes = 16\n",
	    &c);
	assert_int_equal(c.nqueues, 3);
	assert_string_equal(c.queues[0].name, "zeta");
	assert_string_equal(c.queues[1].name, "alpha");
	assert_string_equal(c.queues[2].name, "mid");
	assert_int_equal(c.queues[0].max_queued, 2);
	assert_int_equal(c.queues[0].max_nodes, 2);
	assert_int_equal(c.queues[1].min_nodes, 16);
	assert_int_equal(c.queues[1].max_nodes, 16);
	// the defaults of what a queue does not say
	const cpl_queue_policy *m = cpl_conf_queue(&c, "mid");
	assert_non_null(m);
	assert_int_equal(m->min_nodes, 1);
	assert_int_equal(m->max_nodes, 1);
	assert_int_equal(m->min_minutes, 1);
	assert_int_equal(m->max_minutes, 60);
	assert_int_equal(m->max_queued, 1);
	assert_int_equal(m->gpus_per_node, 8);

	// exactly CPL_CONF_MAX_QUEUES queues is fine
	char text[4096];
	size_t n = 0;
	for (int i = 0; i < CPL_CONF_MAX_QUEUES; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "queue.q%02d.max_queued = 0\n", i);
	must_load(text, n, &c);
	assert_int_equal(c.nqueues, CPL_CONF_MAX_QUEUES);
	assert_string_equal(c.queues[CPL_CONF_MAX_QUEUES - 1].name, "q15");
	// one more is not
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	    "queue.q16.max_queued = 0\n");
	must_fail(text, n, 17, "at most 16 queues");
	// a 63-byte name is fine, 64 is not
	char name[65];
	memset(name, 'n', 64);
	name[63] = '\0';
	n = (size_t)snprintf(text, sizeof(text), "queue.%s.max_nodes = 2\n",
	    name);
	must_load(text, n, &c);
	assert_string_equal(c.queues[0].name, name);
	name[63] = 'n';
	name[64] = '\0';
	n = (size_t)snprintf(text, sizeof(text), "# x\nqueue.%s.max_nodes = 2\n",
	    name);
	must_fail(text, n, 2, "queue name of 64 bytes (at most 63)");
}

static void
test_job_template(void **state)
{
	(void)state;
	cpl_conf c;
	char want[256];
	// relative to the database directory
	MUST_LOAD("job_template = my/site.tmpl\n", &c);
	snprintf(want, sizeof(want), "%s/my/site.tmpl", dir);
	assert_string_equal(c.job_template, want);
	// not given: the scheduler's default, wherever scheduler is set
	MUST_LOAD("lease_ttl_seconds = 30\nscheduler = pbs\n", &c);
	snprintf(want, sizeof(want), "%s/job-templates/pbs.tmpl", dir);
	assert_string_equal(c.job_template, want);
	// empty: the default too
	MUST_LOAD("job_template =\nscheduler = cobalt\n", &c);
	snprintf(want, sizeof(want), "%s/job-templates/cobalt.tmpl", dir);
	assert_string_equal(c.job_template, want);
	// absolute: as given
	MUST_LOAD("job_template = /abs/x.tmpl\n", &c);
	assert_string_equal(c.job_template, "/abs/x.tmpl");
	// a relative path that no longer fits once joined to the directory
	char text[4200];
	int n = snprintf(text, sizeof(text), "\njob_template = ");
	memset(text + n, 'a', 1000);
	n += 1000;
	text[n++] = '\n';
	must_load(text, (size_t)n, &c); // 1000 + dir fits
	assert_int_equal(strlen(c.job_template), strlen(dir) + 1 + 1000);
	// a value that makes the line longer than 1023 bytes
	n = snprintf(text, sizeof(text), "job_template = ");
	memset(text + n, 'a', 1010);
	n += 1010;
	must_fail(text, (size_t)n, 1, "line of 1025 bytes is too long (at "
	    "most 1023)");
}

static void
test_syntax_errors(void **state)
{
	(void)state;
	MUST_FAIL("scheduler = local\nfoo = 1\n", 2, "unknown key \"foo\" "
	    "(scheduler, job_template, broker_tcp, broker_tcp_insecure, "
	    "broker_max_connections, lease_ttl_seconds");
	MUST_FAIL("Scheduler = local\n", 1, "unknown key \"Scheduler\"");
	MUST_FAIL("lease ttl = 3\n", 1, "unknown key \"lease ttl\"");
	MUST_FAIL("\n\nscheduler local\n", 3, "not a setting: \"scheduler "
	    "local\" (key = value, a line starting with #, or a blank line)");
	MUST_FAIL("= 5\n", 1, "not a setting");
	MUST_FAIL("  =\n", 1, "not a setting");
	MUST_FAIL("lease_ttl_seconds = 30 # seconds\n", 1,
	    "'#' in a setting line (a comment takes a whole line");
	MUST_FAIL("project = a#b\n", 1, "'#' in a setting line");
	MUST_FAIL("lease_ttl_seconds = 3\n# again:\nlease_ttl_seconds = 4\n", 3,
	    "lease_ttl_seconds given twice (first on line 1; each key at most "
	    "once)");
	MUST_FAIL("queue.d.max_nodes = 3\nqueue.d.max_nodes = 3\n", 2,
	    "queue.d.max_nodes given twice (first on line 1");
}

static void
test_value_errors(void **state)
{
	(void)state;
	MUST_FAIL("lease_ttl_seconds = abc\n", 1, "lease_ttl_seconds: \"abc\" "
	    "is not a number (an integer 2..86400)");
	MUST_FAIL("lease_ttl_seconds = -5\n", 1, "is not a number");
	MUST_FAIL("lease_ttl_seconds = +5\n", 1, "is not a number");
	MUST_FAIL("lease_ttl_seconds = 5s\n", 1, "is not a number");
	MUST_FAIL("lease_ttl_seconds = 1 0\n", 1, "is not a number");
	MUST_FAIL("lease_ttl_seconds =\n", 1, "lease_ttl_seconds: no value "
	    "(an integer 2..86400)");
	MUST_FAIL("lease_ttl_seconds = 1\n", 1, "lease_ttl_seconds: 1 is out "
	    "of range (2..86400)");
	MUST_FAIL("lease_ttl_seconds = 86401\n", 1, "out of range");
	MUST_FAIL("lease_ttl_seconds = 99999999999999999999999\n", 1,
	    "99999999999999999999999 is out of range (2..86400)");
	MUST_FAIL("scheduler_timeout_seconds = 0\n", 1, "out of range "
	    "(1..3600)");
	MUST_FAIL("wall_time_margin_seconds = 3601\n", 1, "(0..3600)");
	MUST_FAIL("service_period_seconds = 0\n", 1, "(1..86400)");
	MUST_FAIL("service_max_queued_jobs = 1001\n", 1, "(0..1000)");
	MUST_FAIL("scheduler = sge\n", 1, "scheduler: \"sge\" is not allowed "
	    "(local, slurm, pbs or cobalt)");
	MUST_FAIL("scheduler =\n", 1, "scheduler: \"\" is not allowed");
	MUST_FAIL("scheduler = SLURM\n", 1, "is not allowed");
	MUST_FAIL("job_mode = hybrid\n", 1, "job_mode: \"hybrid\" is not "
	    "allowed (serial or mpi)");
	MUST_FAIL("claim_order = lifo\n", 1, "claim_order: \"lifo\" is not "
	    "allowed (fifo or long_large_first)");
	MUST_FAIL("fast_fail_seconds = 86401\n", 1, "(0..86400)");
	MUST_FAIL("fast_fail_codes = 0\n", 1, "fast_fail_codes: \"0\" is not "
	    "allowed (empty, or exit codes 1..255 separated by commas)");
	MUST_FAIL("fast_fail_codes = 256\n", 1, "is not allowed");
	MUST_FAIL("fast_fail_codes = 1,\n", 1, "is not allowed");
	MUST_FAIL("fast_fail_codes = 1 2\n", 1, "is not allowed");
	MUST_FAIL("fast_fail_codes = 1,,2\n", 1, "is not allowed");
	MUST_FAIL("project = a b\n", 1, "project: \"a b\" is not allowed "
	    "(empty, or characters A-Z a-z 0-9 . _ @ + -)");
	MUST_FAIL("project = x;rm\n", 1, "is not allowed");
	MUST_FAIL("wf_filter = $(id)\n", 1, "wf_filter: \"$(id)\" is not "
	    "allowed");
	MUST_FAIL("wf_filter = caf\xC3\xA9\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = http://h:1\n", 1, "broker_tcp: \"http://h:1\" "
	    "is not allowed (empty, or tls+tcp://HOST:PORT with PORT 1..65535 "
	    "(tcp://HOST:PORT with broker_tcp_insecure = true))");
	MUST_FAIL("broker_tcp = tcp://host\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = tcp://host:\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = tcp://host:0\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = tcp://host:65536\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = tcp://host:7555x\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = tcp://a/b:7555\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = tcp://[zz]:7555\n", 1, "is not allowed");
	MUST_FAIL("broker_tcp = tcp\n", 1, "is not allowed");

	char text[300];
	int n = snprintf(text, sizeof(text), "project = ");
	memset(text + n, 'p', 128);
	n += 128;
	must_fail(text, (size_t)n, 1, "project: value of 128 bytes is too long "
	    "(at most 127)");
	n = snprintf(text, sizeof(text), "broker_tcp = tcp://");
	memset(text + n, 'h', 250);
	n += 250;
	n += snprintf(text + n, sizeof(text) - (size_t)n, ":1");
	must_fail(text, (size_t)n, 1, "(at most 255)");
}

static void
test_queue_errors(void **state)
{
	(void)state;
	// min above the other key's default
	MUST_FAIL("queue.debug.min_nodes = 4\n", 1, "queue.debug: min_nodes 4 "
	    "is more than max_nodes 1 (default) (min_nodes <= max_nodes)");
	// reported at the later of the two lines
	MUST_FAIL("queue.debug.max_nodes = 2\nqueue.debug.min_nodes = 3\n", 2,
	    "queue.debug: min_nodes 3 is more than max_nodes 2 (min_nodes <= "
	    "max_nodes)");
	MUST_FAIL("queue.debug.min_nodes = 3\n\nqueue.debug.max_nodes = 2\n", 3,
	    "min_nodes 3 is more than max_nodes 2");
	MUST_FAIL("queue.q.max_minutes = 10\nqueue.q.min_minutes = 30\n", 2,
	    "queue.q: min_minutes 30 is more than max_minutes 10 (min_minutes "
	    "<= max_minutes)");
	MUST_FAIL("# x\nqueue.q.min_minutes = 90\n", 2,
	    "min_minutes 90 is more than max_minutes 60 (default)");
	MUST_FAIL("queue.q.max_nodes = 0\n", 1, "queue.q.max_nodes: 0 is out "
	    "of range (1..1000000)");
	MUST_FAIL("queue.q.min_minutes = 0\n", 1, "(1..525600)");
	MUST_FAIL("queue.q.max_queued = 1001\n", 1, "(0..1000)");
	MUST_FAIL("queue.q.gpus_per_node = x\n", 1, "queue.q.gpus_per_node: "
	    "\"x\" is not a number");
	MUST_FAIL("queue.debug.nodes = 2\n", 1, "unknown queue setting "
	    "\"queue.debug.nodes\" (FIELD of queue.NAME.FIELD is one of "
	    "min_nodes, max_nodes, min_minutes, max_minutes, max_queued or "
	    "gpus_per_node)");
	MUST_FAIL("queue.max_nodes = 2\n", 1, "malformed queue key "
	    "\"queue.max_nodes\" (queue.NAME.FIELD");
	MUST_FAIL("queue..max_nodes = 2\n", 1, "malformed queue key");
	MUST_FAIL("queue.debug. = 2\n", 1, "malformed queue key");
	MUST_FAIL("queue. = 2\n", 1, "malformed queue key");
	MUST_FAIL("queue.a$b.max_nodes = 2\n", 1, "queue name \"a$b\" not "
	    "allowed (characters A-Z a-z 0-9 . _ @ + -)");
}

static void
test_text_errors(void **state)
{
	(void)state;
	MUST_FAIL("scheduler = local\n# a\0b\n", 2, "NUL byte (byte 0x00) at "
	    "column 4");
	MUST_FAIL("scheduler = lo\0cal\n", 1, "NUL byte");
	MUST_FAIL("# \xff\n", 1, "invalid UTF-8 (byte 0xff) at column 3");
	MUST_FAIL("# overlong \xC0\xAF\n", 1, "invalid UTF-8");
	MUST_FAIL("# overlong \xE0\x80\xAF\n", 1, "invalid UTF-8");
	MUST_FAIL("# surrogate \xED\xA0\x80\n", 1, "invalid UTF-8");
	MUST_FAIL("# beyond U+10FFFF \xF4\x90\x80\x80\n", 1, "invalid UTF-8");
	MUST_FAIL("# cut \xE2\x9C\n", 1, "invalid UTF-8");
	MUST_FAIL("# cut at the end \xE2\x9C", 1, "invalid UTF-8");
	MUST_FAIL("project = a\xC3\n", 1, "invalid UTF-8");
	MUST_FAIL("# escape \x1b[31m\n", 1, "control character (byte 0x1b) at "
	    "column 10");
	MUST_FAIL("scheduler = local\rproject = x\n", 1, "control character "
	    "(byte 0x0d)");
	MUST_FAIL("\n\n# del \x7f\n", 3, "control character");

	// 1023 bytes is the longest line, with or without "\r"
	char text[1100];
	text[0] = '#';
	memset(text + 1, 'x', 1022);
	text[1023] = '\r';
	text[1024] = '\n';
	cpl_conf c;
	must_load(text, 1025, &c);
	text[1023] = 'x';
	must_fail(text, 1025, 1, "line of 1024 bytes is too long (at most "
	    "1023)");
	// on a later line, without a final newline
	memcpy(text, "scheduler = local\n", 18);
	memset(text + 18, '#', 1024);
	must_fail(text, 18 + 1024, 2, "line of 1024 bytes is too long");
}

static void
test_files(void **state)
{
	(void)state;
	cpl_conf c;
	char err[512], want[256];

	unlink(conf_path);
	assert_int_equal(cpl_conf_load(dir, &c, err, sizeof(err)),
	    CPL_ENOTFOUND);
	snprintf(want, sizeof(want), "%s: No such file or directory", conf_path);
	assert_string_equal(err, want);
	assert_int_equal(c.lease_ttl_seconds, 30);
	assert_int_equal(cpl_conf_load("/nonexistent/db", &c, NULL, 0),
	    CPL_ENOTFOUND);
	assert_int_equal(cpl_conf_load(NULL, &c, err, sizeof(err)), CPL_EINVAL);

	// not a regular file
	assert_int_equal(mkdir(conf_path, 0755), 0);
	assert_int_equal(cpl_conf_load(dir, &c, err, sizeof(err)), CPL_EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file", conf_path);
	assert_string_equal(err, want);
	rmdir(conf_path);

	// larger than 1 MiB: refused before any line is read
	size_t big = (1u << 20) + 1;
	char *text = malloc(big);
	assert_non_null(text);
	memset(text, '#', big);
	assert_int_equal(load_n(text, big, &c, err, sizeof(err)), CPL_EINVAL);
	assert_non_null(strstr(err, "larger than 1048576 bytes"));
	free(text);

	// a short err buffer is cut, never overrun
	char small[12];
	memset(small, 'z', sizeof(small));
	assert_int_equal(LOAD("foo = 1\n", &c, small), CPL_EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(load_n("foo = 1\n", 8, &c, NULL, 0), CPL_EINVAL);

	// unreadable (not when running as root, who reads everything)
	if (geteuid() != 0) {
		write_conf("scheduler = local\n", 18);
		chmod(conf_path, 0);
		assert_int_equal(cpl_conf_load(dir, &c, err, sizeof(err)),
		    CPL_EPERM);
		chmod(conf_path, 0644);
	}
}

// The file `copal init` writes (made from the settings table) reads back
// as the defaults; it sets every setting, each under a comment; and its
// commented queue example, uncommented, is a valid policy.
static void
test_default_file(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&text, &len);
	assert_non_null(mf);
	assert_int_equal(cpl_conf_write_default(mf), 0);
	fclose(mf);
	assert_non_null(text);

	cpl_conf c, d;
	must_load(text, len, &c);
	cpl_conf_defaults(&d, dir);
	assert_memory_equal(&c, &d, sizeof(c));

	// every line a comment, blank or a setting; one setting per key,
	// right after a comment
	static const char *const keys[] = { "scheduler", "job_template",
		"broker_tcp", "broker_tcp_insecure", "broker_max_connections",
		"lease_ttl_seconds", "scheduler_timeout_seconds",
		"wall_time_margin_seconds", "broker_advertise",
		"submit_without_tcp", "project", "job_mode", "wf_filter",
		"service_period_seconds", "service_max_queued_jobs",
		"service_max_wait_minutes", "claim_order", "fast_fail_seconds",
		"fast_fail_codes", "task_uuids" };
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
	size_t nset = 0;
	char example[1024] = "";
	bool after_comment = false;
	for (char *line = text, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl); // every line ends with a newline
		*nl = '\0';
		if (strncmp(line, "# queue.debug.", 14) == 0) {
			strcat(example, line + 2);
			strcat(example, "\n");
		}
		if (line[0] == '#') {
			assert_true(line[1] == '\0' || line[1] == ' ');
			assert_true(strlen(line) <= 80);
			after_comment = true;
			continue;
		}
		if (line[0] == '\0') {
			after_comment = false;
			continue;
		}
		assert_true(after_comment);
		assert_true(nset < nkeys);
		size_t kl = strlen(keys[nset]);
		assert_true(strncmp(line, keys[nset], kl) == 0 &&
		    strncmp(line + kl, " = ", 3) == 0);
		nset++;
		after_comment = false;
	}
	assert_int_equal(nset, nkeys);
	free(text);

	must_load(example, strlen(example), &c);
	assert_int_equal(c.nqueues, 1);
	assert_string_equal(c.queues[0].name, "debug");
	assert_int_equal(c.queues[0].max_nodes, 2);
	assert_int_equal(c.queues[0].min_minutes, 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_queue_order_and_defaults),
		cmocka_unit_test(test_job_template),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_queue_errors),
		cmocka_unit_test(test_text_errors),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_default_file),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
