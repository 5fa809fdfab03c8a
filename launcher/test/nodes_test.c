// Node discovery and MPI starter templates of the launcher: Slurm hostlist
// expansion (ranges, zero padding, suffixes, refusals), PBS and Cobalt node
// files (duplicates merged), COBALT_PARTNAME, the local-host fallback (with
// a fake getenv), nodes_slice, and mpi_render with every starter template.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copal/common.h"
#include "launcher.h"
#include "nodes.h"

// ------------------------------------------------------------ helpers

// Joins a node list with commas, for one comparison per case.
static const char *
joined(const nodelist *l)
{
	static char buf[8192];
	size_t pos = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		int n = snprintf(buf + pos, sizeof(buf) - pos, "%s%s",
		    i ? "," : "", l->names[i]);
		assert_true(n >= 0 && (size_t)n < sizeof(buf) - pos);
		pos += (size_t)n;
	}
	return buf;
}

static void
expect_expand(const char *spec, const char *want)
{
	nodelist l = { NULL, 0, NULL };
	int rv = hostlist_expand(spec, 1u << 20, &l);
	if (rv != 0)
		fail_msg("hostlist_expand(\"%s\") = %s, want 0", spec,
		    cpl_errname(rv));
	if (strcmp(joined(&l), want) != 0)
		fail_msg("hostlist_expand(\"%s\") = \"%s\", want \"%s\"", spec,
		    joined(&l), want);
	nodes_free(&l);
}

// Refusals are checked all before the test fails, so that one run lists
// every input that was wrongly accepted.
static int refusal_failures;

static void
expect_refused(const char *spec, size_t max)
{
	nodelist l = { NULL, 0, NULL };
	int rv = hostlist_expand(spec, max, &l);
	if (rv != CPL_EINVAL) {
		print_error("hostlist_expand(\"%s\", max %zu) = %s (%zu names: "
		    "\"%s\"), want EINVAL\n", spec, max, cpl_errname(rv), l.n,
		    joined(&l));
		refusal_failures++;
		if (rv == 0)
			nodes_free(&l);
		return;
	}
	assert_int_equal(l.n, 0);
	assert_null(l.names);
}

// A fake environment for nodes_discover: NAME=VALUE pairs.
static const char *fake_env[16];

static char *
fake_getenv(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; fake_env[i]; i++)
		if (strncmp(fake_env[i], name, n) == 0 && fake_env[i][n] == '=')
			return (char *)fake_env[i] + n + 1;
	return NULL;
}

static void
set_env(const char *a, const char *b, const char *c)
{
	memset(fake_env, 0, sizeof(fake_env));
	fake_env[0] = a;
	fake_env[1] = a ? b : NULL;
	fake_env[2] = a && b ? c : NULL;
}

// Writes a node file into a fresh temporary file; returns its path.
static char *
nodefile(const char *content)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/copal-nodes-test.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(content);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

// ------------------------------------------------------------ hostlists

static void
test_hostlist_ranges(void **state)
{
	(void)state;
	expect_expand("nid[001-003,007],login1", "nid001,nid002,nid003,nid007,login1");
	expect_expand("login1", "login1");
	expect_expand("a,b,c", "a,b,c");
	expect_expand("n[1-3]", "n1,n2,n3");
	expect_expand("n[5]", "n5");
	expect_expand("n[1,3,5]", "n1,n3,n5");
	expect_expand("n[1-2],m[7-8]", "n1,n2,m7,m8");
	expect_expand("node-[1-2].cluster", "node-1.cluster,node-2.cluster");
}

static void
test_hostlist_zero_padding(void **state)
{
	(void)state;
	// the width of the first number is kept
	expect_expand("n[08-11]", "n08,n09,n10,n11");
	expect_expand("c[098-101]", "c098,c099,c100,c101");
	expect_expand("n[8-11]", "n8,n9,n10,n11");
	expect_expand("nid[00001-00002]", "nid00001,nid00002");
	expect_expand("x[0-1]", "x0,x1");
}

static void
test_hostlist_suffixes(void **state)
{
	(void)state;
	expect_expand("r[1-2]-ib", "r1-ib,r2-ib");
	expect_expand("gpu[01-02]x,cpu[1]y", "gpu01x,gpu02x,cpu1y");
	expect_expand("[1-2]", "1,2");
}

static void
test_hostlist_duplicates_merged(void **state)
{
	(void)state;
	expect_expand("a,b,a", "a,b");
	expect_expand("n[1-3],n2,n[3-4]", "n1,n2,n3,n4");
}

static void
test_hostlist_malformed(void **state)
{
	(void)state;
	size_t big = 1u << 20;
	refusal_failures = 0;
	// unbalanced brackets
	expect_refused("nid[001-003", big);
	expect_refused("nid001-003]", big);
	expect_refused("nid[001-003]]", big);
	expect_refused("n[[1-2]]", big);
	expect_refused("a,n[1-2", big);
	// reversed and broken ranges
	expect_refused("nid[003-001]", big);
	expect_refused("n[2-1,5]", big);
	expect_refused("n[]", big);
	expect_refused("n[1-]", big);
	expect_refused("n[-3]", big);
	expect_refused("n[1,,2]", big);
	expect_refused("n[a-b]", big);
	expect_refused("n[1-2x]", big);
	expect_refused("n[1 -2]", big);
	// two bracket groups in one name are not supported
	expect_refused("r[1-2]n[1-2]", big);
	// empty input and empty names
	expect_refused("", big);
	expect_refused(",", big);
	expect_refused("a,,b", big);
	// huge ranges: more names than allowed, or numbers too wide
	expect_refused("n[0-99999999999]", big);
	expect_refused("n[1-5000000]", big);
	expect_refused("n[0000000000000000001-0000000000000000002]", big);
	expect_refused("n[1-4]", 3);
	expect_refused("a,b,c,d", 3);
	expect_refused("n[1-2],m[1-2]", 3);
	nodelist l = { NULL, 0, NULL };
	assert_int_equal(hostlist_expand(NULL, big, &l), CPL_EINVAL);
	// exactly max is fine
	assert_int_equal(hostlist_expand("n[1-4]", 4, &l), 0);
	assert_int_equal(l.n, 4);
	nodes_free(&l);
	// a name longer than a host name can be
	char longname[400];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	expect_refused(longname, big);
	if (refusal_failures)
		fail_msg("%d malformed host list(s) accepted", refusal_failures);
}

// ------------------------------------------------------------ discovery

static void
test_discover_slurm(void **state)
{
	(void)state;
	nodelist l = { NULL, 0, NULL };
	set_env("SLURM_JOB_NODELIST=nid[001-002]", "SLURM_NODELIST=other[1-9]",
	    "PBS_NODEFILE=/nonexistent");
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_string_equal(joined(&l), "nid001,nid002");
	assert_string_equal(l.source, "slurm");
	nodes_free(&l);
	// SLURM_NODELIST when SLURM_JOB_NODELIST is not set
	set_env("SLURM_NODELIST=c[1-2]", NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_string_equal(joined(&l), "c1,c2");
	assert_string_equal(l.source, "slurm");
	nodes_free(&l);
	// a malformed list is an error, not the local host
	set_env("SLURM_JOB_NODELIST=nid[001-002", NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), CPL_EINVAL);
	assert_int_equal(l.n, 0);
}

static void
test_discover_pbs(void **state)
{
	(void)state;
	nodelist l = { NULL, 0, NULL };
	// PBS lists a host once per core (or per rank): merged, order kept
	char *path = nodefile("node2\nnode2\nnode1\nnode2 \n\nnode3\nnode1\r\n"
	                      "node3\tslots=4\n");
	char env[128];
	snprintf(env, sizeof(env), "PBS_NODEFILE=%s", path);
	set_env(env, "COBALT_PARTNAME=1-3", NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_string_equal(joined(&l), "node2,node1,node3");
	assert_string_equal(l.source, "pbs");
	nodes_free(&l);
	unlink(path);
	// a missing or empty node file is an error
	set_env("PBS_NODEFILE=/nonexistent/nodefile", NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), CPL_ENOTFOUND);
	path = nodefile("\n\n");
	snprintf(env, sizeof(env), "PBS_NODEFILE=%s", path);
	set_env(env, NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), CPL_EINVAL);
	unlink(path);
}

static void
test_discover_cobalt(void **state)
{
	(void)state;
	nodelist l = { NULL, 0, NULL };
	char *path = nodefile("nid00010\nnid00011\nnid00010\n");
	char env[128];
	snprintf(env, sizeof(env), "COBALT_NODEFILE=%s", path);
	set_env(env, "COBALT_PARTNAME=1-3", NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_string_equal(joined(&l), "nid00010,nid00011");
	assert_string_equal(l.source, "cobalt");
	nodes_free(&l);
	unlink(path);
	// Cobalt on Cray: a node id list
	set_env("COBALT_PARTNAME=1-3,7", NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_string_equal(joined(&l), "nid1,nid2,nid3,nid7");
	assert_string_equal(l.source, "cobalt");
	nodes_free(&l);
	set_env("COBALT_PARTNAME=3824", NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_string_equal(joined(&l), "nid3824");
	nodes_free(&l);
	set_env("COBALT_PARTNAME=7-3", NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), CPL_EINVAL);
	set_env("COBALT_PARTNAME=1-3]", NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), CPL_EINVAL);
	// an empty partition is no node list: never success with no node
	set_env("COBALT_PARTNAME=", NULL, NULL);
	int rv = nodes_discover(fake_getenv, &l);
	if (rv == 0)
		fail_msg("COBALT_PARTNAME=\"\": nodes_discover = OK with %zu "
		    "node(s), want EINVAL", l.n);
	assert_int_equal(rv, CPL_EINVAL);
}

static void
test_discover_local(void **state)
{
	(void)state;
	nodelist l = { NULL, 0, NULL };
	char host[HOST_NAME_MAX + 1];
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	set_env(NULL, NULL, NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], host);
	assert_string_equal(l.source, "local");
	nodes_free(&l);
	// unrelated variables do not count
	set_env("SLURM_JOB_ID=123", "PBS_JOBID=9.server", NULL);
	assert_int_equal(nodes_discover(fake_getenv, &l), 0);
	assert_string_equal(l.source, "local");
	nodes_free(&l);
}

static void
test_slice(void **state)
{
	(void)state;
	nodelist l = { NULL, 0, NULL };
	assert_int_equal(hostlist_expand("n[1-5]", 100, &l), 0);
	assert_int_equal(nodes_slice(&l, 1, 2), 0);
	assert_string_equal(joined(&l), "n2,n3");
	nodes_free(&l);
	assert_int_equal(hostlist_expand("n[1-5]", 100, &l), 0);
	assert_int_equal(nodes_slice(&l, 3, 0), 0); // 0: all from the offset
	assert_string_equal(joined(&l), "n4,n5");
	assert_int_equal(nodes_slice(&l, 0, 10), 0);
	assert_string_equal(joined(&l), "n4,n5");
	assert_int_equal(nodes_slice(&l, 2, 0), CPL_EINVAL); // nothing left
	assert_string_equal(joined(&l), "n4,n5");
	nodes_free(&l);
}

// ------------------------------------------------------------ MPI templates

static void
expect_render(const char *starter, const char *want)
{
	char *hosts[] = { "h1", "h2" };
	char out[1024];
	const char *tmpl = mpi_template_for(starter);
	if (tmpl == NULL)
		fail_msg("no template for starter %s", starter);
	// 2 nodes x 2 ranks, 3 threads per rank
	int rv = mpi_render(tmpl, 4, 2, 2, 3, hosts, "./sim --in 'a b'", out,
	    sizeof(out));
	if (rv != 0)
		fail_msg("mpi_render(%s) = %s", starter, cpl_errname(rv));
	if (strcmp(out, want) != 0)
		fail_msg("mpi_render(%s):\n  got  %s\n  want %s", starter, out,
		    want);
}

static void
test_mpi_templates(void **state)
{
	(void)state;
	expect_render("openmpi", "mpirun --oversubscribe -n 4 --host h1:2,h2:2 "
	                         "-x OMP_NUM_THREADS ./sim --in 'a b'");
	expect_render("mpich", "mpiexec -n 4 -ppn 2 -hosts h1,h2 ./sim --in 'a b'");
	expect_render("srun", "srun --exact -n 4 -N 2 --ntasks-per-node=2 -c 3 "
	                      "-w h1,h2 ./sim --in 'a b'");
	expect_render("aprun", "aprun -n 4 -N 2 -d 3 -L h1,h2 ./sim --in 'a b'");
	assert_null(mpi_template_for("bogus"));
	assert_null(mpi_template_for(""));
}

static void
test_mpi_render_placeholders(void **state)
{
	(void)state;
	char *hosts[] = { "a", "b", "c" };
	char out[256];
	assert_int_equal(mpi_render("{ranks}/{rpn}/{nnodes}/{tpr} [{hosts}] "
	                            "[{hostslots}] {cmd}",
	                     6, 2, 3, 4, hosts, "x", out, sizeof(out)), 0);
	assert_string_equal(out, "6/2/3/4 [a,b,c] [a:2,b:2,c:2] x");
	// one node
	assert_int_equal(mpi_render("--host {hostslots} {cmd}", 1, 1, 1, 1,
	                     hosts, "echo hi", out, sizeof(out)), 0);
	assert_string_equal(out, "--host a:1 echo hi");
	// placeholders may repeat; text without any is copied
	assert_int_equal(mpi_render("{cmd};{cmd}", 1, 1, 1, 1, hosts, "y", out,
	                     sizeof(out)), 0);
	assert_string_equal(out, "y;y");
	assert_int_equal(mpi_render("plain", 1, 1, 1, 1, hosts, "y", out,
	                     sizeof(out)), 0);
	assert_string_equal(out, "plain");
	// unknown or unclosed placeholders
	assert_int_equal(mpi_render("mpirun {bogus} {cmd}", 1, 1, 1, 1, hosts,
	                     "y", out, sizeof(out)), CPL_EINVAL);
	assert_int_equal(mpi_render("mpirun {ranks", 1, 1, 1, 1, hosts, "y",
	                     out, sizeof(out)), CPL_EINVAL);
	assert_int_equal(mpi_render("mpirun {} {cmd}", 1, 1, 1, 1, hosts, "y",
	                     out, sizeof(out)), CPL_EINVAL);
	// too small an output buffer
	assert_int_equal(mpi_render("{cmd}", 1, 1, 1, 1, hosts, "0123456789",
	                     out, 10), CPL_ETOOBIG);
	assert_int_equal(mpi_render("{cmd}", 1, 1, 1, 1, hosts, "012345678",
	                     out, 10), 0);
	assert_string_equal(out, "012345678");
	assert_int_equal(mpi_render("{hostslots}", 3, 1, 3, 1, hosts, "y", out,
	                     8), CPL_ETOOBIG);
	assert_int_equal(mpi_render("x", 1, 1, 1, 1, hosts, "y", out, 0),
	    CPL_ETOOBIG);
}

// A serial launcher started on each node finds its own entry.
static void
test_find_self(void **state)
{
	(void)state;
	nodelist l = { NULL, 0, NULL };
	assert_int_equal(hostlist_expand("nid[001-003],login1.site.org", 100,
	                     &l), 0);
	assert_int_equal(nodes_find_host(&l, "nid002"), 1);
	assert_int_equal(nodes_find_host(&l, "nid003.cluster.org"), 2);
	assert_int_equal(nodes_find_host(&l, "login1"), 3);
	assert_int_equal(nodes_find_host(&l, "nid00"), 4);      // no prefix match
	assert_int_equal(nodes_find_host(&l, "nid002x"), 4);
	assert_int_equal(nodes_find_host(&l, "login1.other.org"), 4);
	nodes_free(&l);
	// the local discovery always contains this host
	assert_int_equal(nodes_discover(NULL, &l) == 0 ? 0 : 1, 0);
	if (strcmp(l.source, "local") == 0)
		assert_int_equal(nodes_find_self(&l), 0);
	nodes_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostlist_ranges),
		cmocka_unit_test(test_hostlist_zero_padding),
		cmocka_unit_test(test_hostlist_suffixes),
		cmocka_unit_test(test_hostlist_duplicates_merged),
		cmocka_unit_test(test_hostlist_malformed),
		cmocka_unit_test(test_discover_slurm),
		cmocka_unit_test(test_discover_pbs),
		cmocka_unit_test(test_discover_cobalt),
		cmocka_unit_test(test_discover_local),
		cmocka_unit_test(test_slice),
		cmocka_unit_test(test_find_self),
		cmocka_unit_test(test_mpi_templates),
		cmocka_unit_test(test_mpi_render_placeholders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
