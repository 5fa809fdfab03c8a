// Scheduler drivers (sched/src/exec.c, ops.c): commands with a time limit,
// and the readers of sbatch/qsub/squeue/qstat answers, good and bad. Faults
// that a real scheduler cannot be made to show on demand (a status command
// that hangs, exits 1, or prints garbage) come from small scripts put first
// in PATH.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "copal/sched.h"

#define BJ(x) COPAL__BATCH_JOB_STATE__BJ_##x

// ------------------------------------------------------------ submit ids

static void
test_parse_submit(void **state)
{
	(void)state;
	char id[64];
	assert_int_equal(sched_parse_submit("slurm", "4711\n", id, sizeof id), 0);
	assert_string_equal(id, "4711");
	assert_int_equal(sched_parse_submit("slurm", "4712;cluster1\n", id,
	                     sizeof id), 0);
	assert_string_equal(id, "4712");
	assert_int_equal(sched_parse_submit("pbs", "123.pbs01.example.org\n",
	                     id, sizeof id), 0);
	assert_string_equal(id, "123.pbs01.example.org");
	assert_int_equal(sched_parse_submit("cobalt",
	                     "Job routed to queue \"debug\".\n"
	                     "Memory mode set to cache quad\n 338124\n",
	                     id, sizeof id), 0);
	assert_string_equal(id, "338124");
	assert_int_equal(sched_parse_submit("slurm", "", id, sizeof id), -1);
	assert_int_equal(sched_parse_submit("slurm", "sbatch: error\n", id,
	                     sizeof id), -1);
	// slurm and cobalt ids are numbers
	assert_int_equal(sched_parse_submit("slurm", "12ab\n", id, sizeof id), -1);
	// too long for the buffer
	assert_int_equal(sched_parse_submit("slurm", "123456789\n", id, 4), -1);
}

// ------------------------------------------------------------ status

static void
jobs3(sched_state v[3], const char *a, const char *b, const char *c)
{
	memset(v, 0, 3 * sizeof(*v));
	v[0].id = a;
	v[1].id = b;
	v[2].id = c;
}

static void
test_parse_slurm(void **state)
{
	(void)state;
	sched_state v[3];
	jobs3(v, "12", "13", "14");
	size_t bad = sched_parse_slurm("12|PENDING\n13|RUNNING\n99|COMPLETING\n"
	                               "20_3|RUNNING\n",
	    v, 3);
	assert_int_equal(bad, 0);
	assert_int_equal(v[0].state, BJ(QUEUED));
	assert_string_equal(v[0].word, "PENDING");
	assert_int_equal(v[1].state, BJ(RUNNING));
	assert_int_equal(v[2].state, BJ(UNSPECIFIED)); // not listed
	jobs3(v, "12", "13", "14");
	bad = sched_parse_slurm("12|COMPLETED\nslurm_load_jobs error: "
	                        "Socket timed out\n13|WEIRD_STATE\n14\n",
	    v, 3);
	assert_int_equal(bad, 3);
	assert_int_equal(v[0].state, BJ(FINISHED));
	assert_int_equal(v[1].state, BJ(UNSPECIFIED));
	assert_int_equal(v[2].state, BJ(UNSPECIFIED));
}

static void
test_parse_pbs(void **state)
{
	(void)state;
	sched_state v[3];
	jobs3(v, "101.pbs01", "102.pbs01", "103.pbs01");
	const char *out =
	    "Job id            Name             User              Time Use S Queue\n"
	    "----------------  ---------------- ----------------  -------- - -----\n"
	    "101.pbs01         copal-proj-1     alice             00:00:00 Q workq\n"
	    "102.pbs*          copal-proj-2     alice             00:01:10 R workq\n"
	    "104.pbs01         other            bob               00:00:00 R workq\n";
	assert_int_equal(sched_parse_pbs(out, v, 3), 0);
	assert_int_equal(v[0].state, BJ(QUEUED));
	assert_int_equal(v[1].state, BJ(RUNNING)); // shortened id matches
	assert_int_equal(v[2].state, BJ(UNSPECIFIED));
	jobs3(v, "101.pbs01", "102.pbs01", "103.pbs01");
	assert_int_equal(sched_parse_pbs("qstat: cannot connect to server\n",
	                     v, 3), 1);
}

static void
test_parse_cobalt(void **state)
{
	(void)state;
	sched_state v[3];
	jobs3(v, "338124", "338125", "338126");
	const char *out = "JobID   State\n"
	                  "=================\n"
	                  "338124  queued\n"
	                  "338125  running\n";
	assert_int_equal(sched_parse_cobalt(out, v, 3), 0);
	assert_int_equal(v[0].state, BJ(QUEUED));
	assert_int_equal(v[1].state, BJ(RUNNING));
	assert_int_equal(v[2].state, BJ(UNSPECIFIED));
}

// ------------------------------------------------------------ commands

static void
test_exec_output_and_status(void **state)
{
	(void)state;
	sched_cmd r;
	char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	assert_int_equal(sched_exec(argv, 10, &r), -1);
	assert_int_equal(r.status, 3);
	assert_false(r.timed_out);
	assert_string_equal(r.out, "out\n");
	assert_string_equal(r.err, "err\n");
	char why[256];
	sched_cmd_explain("sh", &r, why, sizeof why);
	assert_string_equal(why, "sh exited 3: err");
	sched_cmd_free(&r);

	char *none[] = { "copal-no-such-command", NULL };
	assert_int_equal(sched_exec(none, 10, &r), -1);
	assert_int_equal(r.spawn_errno, ENOENT);
	sched_cmd_explain("copal-no-such-command", &r, why, sizeof why);
	assert_non_null(strstr(why, "cannot run"));
	sched_cmd_free(&r);
}

// A command that hangs, and one that leaves a child holding its output
// open: both are cut off at the time limit, children included.
static void
test_exec_timeout(void **state)
{
	(void)state;
	sched_cmd r;
	char *hang[] = { "sleep", "30", NULL };
	assert_int_equal(sched_exec(hang, 1, &r), -1);
	assert_true(r.timed_out);
	assert_true(r.seconds < 5);
	sched_cmd_free(&r);

	char pidfile[] = "/tmp/bsched_test_pid_XXXXXX";
	int fd = mkstemp(pidfile);
	assert_true(fd >= 0);
	close(fd);
	char script[256];
	snprintf(script, sizeof script, "sleep 30 & echo $! > %s; echo hi",
	    pidfile);
	char *bg[] = { "sh", "-c", script, NULL };
	assert_int_equal(sched_exec(bg, 1, &r), -1);
	assert_true(r.timed_out);
	assert_string_equal(r.out, "hi\n");
	sched_cmd_free(&r);
	FILE *fp = fopen(pidfile, "r");
	long pid = 0;
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%ld", &pid), 1);
	fclose(fp);
	unlink(pidfile);
	// the background sleep was killed with the session
	usleep(100000);
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/%ld/stat", pid);
	struct stat st;
	if (stat(proc, &st) == 0) {
		// a zombie waiting for init is dead too
		fp = fopen(proc, "r");
		char buf[256] = "";
		if (fp) {
			if (fgets(buf, sizeof buf, fp) == NULL)
				buf[0] = '\0';
			fclose(fp);
		}
		char *rp = strrchr(buf, ')');
		assert_true(rp == NULL || rp[2] == 'Z');
	}
}

// ------------------------------------------------------------ faults

static char fakedir[64];
static char *old_path;

static void
fake(const char *name, const char *body)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", fakedir, name);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "#!/bin/sh\n%s\n", body);
	fclose(fp);
	chmod(path, 0755);
}

static int
fake_setup(void **state)
{
	(void)state;
	snprintf(fakedir, sizeof fakedir, "/tmp/bsched_test_XXXXXX");
	if (mkdtemp(fakedir) == NULL)
		return -1;
	const char *p = getenv("PATH");
	old_path = strdup(p ? p : "/usr/bin:/bin");
	char *np = malloc(strlen(old_path) + 80);
	sprintf(np, "%s:%s", fakedir, old_path);
	setenv("PATH", np, 1);
	free(np);
	return 0;
}

static int
fake_teardown(void **state)
{
	(void)state;
	setenv("PATH", old_path, 1);
	free(old_path);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", fakedir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_status_faults(void **state)
{
	(void)state;
	const sched_ops *slurm = sched_find("slurm");
	sched_state v[3];
	char why[512];

	// a clean answer: jobs not listed have finished
	fake("squeue", "echo '12|RUNNING'");
	jobs3(v, "12", "13", "14");
	assert_int_equal(sched_status(slurm, v, 3, 5, why, sizeof why), 0);
	assert_int_equal(v[0].state, BJ(RUNNING));
	assert_int_equal(v[1].state, BJ(FINISHED));
	assert_string_equal(v[1].word, "gone");

	// garbage in the answer: what was read counts, nothing is concluded
	// about the others
	fake("squeue", "echo '12|RUNNING'; echo '<html>proxy error</html>'");
	jobs3(v, "12", "13", "14");
	assert_int_equal(sched_status(slurm, v, 3, 5, why, sizeof why), 0);
	assert_int_equal(v[0].state, BJ(RUNNING));
	assert_int_equal(v[1].state, BJ(UNSPECIFIED));
	assert_non_null(strstr(why, "not understood"));

	// a failing command: nothing changes, the reason is its stderr
	fake("squeue", "echo 'squeue: error: Unable to contact slurm "
	               "controller' >&2; exit 1");
	jobs3(v, "12", "13", "14");
	assert_int_equal(sched_status(slurm, v, 3, 5, why, sizeof why), -1);
	assert_int_equal(v[0].state, BJ(UNSPECIFIED));
	assert_non_null(strstr(why, "Unable to contact"));

	// a hanging command: cut off at the time limit
	fake("squeue", "sleep 60");
	jobs3(v, "12", "13", "14");
	assert_int_equal(sched_status(slurm, v, 3, 1, why, sizeof why), -1);
	assert_non_null(strstr(why, "did not finish in time"));
	assert_int_equal(v[2].state, BJ(UNSPECIFIED));

	// a huge answer is read, bounded, and not trusted
	fake("squeue", "yes '12|RUNNING' | head -c 3000000");
	jobs3(v, "12", "13", "14");
	assert_int_equal(sched_status(slurm, v, 3, 10, why, sizeof why), 0);
	assert_int_equal(v[0].state, BJ(RUNNING));
}

static void
test_submit_faults(void **state)
{
	(void)state;
	const sched_ops *slurm = sched_find("slurm");
	char id[64], why[512];
	fake("sbatch", "echo 'sbatch: error: invalid partition specified: "
	               "nope' >&2; exit 1");
	assert_int_equal(sched_submit(slurm, "/x.sh", "/x.out", "", 5, id,
	                     sizeof id, why, sizeof why), -1);
	assert_string_equal(why, "sbatch exited 1: sbatch: error: invalid "
	                         "partition specified: nope");
	fake("sbatch", "echo 'Submitted batch job'");
	assert_int_equal(sched_submit(slurm, "/x.sh", "/x.out", "", 5, id,
	                     sizeof id, why, sizeof why), -1);
	assert_non_null(strstr(why, "printed no job id"));
	// flags are words of the command, never a shell line
	fake("sbatch", "for a in \"$@\"; do echo \"[$a]\" >&2; done; echo 77");
	assert_int_equal(sched_submit(slurm, "/x.sh", "/x.out",
	                     "--qos=high  --exclusive;rm", 5, id, sizeof id,
	                     why, sizeof why), 0);
	assert_string_equal(id, "77");
	// the local scheduler takes no flags
	assert_int_equal(sched_submit(sched_find("local"), "/x.sh", "/x.out",
	                     "-x", 5, id, sizeof id, why, sizeof why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_submit),
		cmocka_unit_test(test_parse_slurm),
		cmocka_unit_test(test_parse_pbs),
		cmocka_unit_test(test_parse_cobalt),
		cmocka_unit_test(test_exec_output_and_status),
		cmocka_unit_test(test_exec_timeout),
		cmocka_unit_test_setup_teardown(test_status_faults, fake_setup,
		    fake_teardown),
		cmocka_unit_test_setup_teardown(test_submit_faults, fake_setup,
		    fake_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
