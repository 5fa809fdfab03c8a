// The job-script templates: the renderer (substitution, errors with line
// numbers), the default templates rendered with a fixed variable set and
// compared with test/expected/<scheduler>.sh (TMPL_UPDATE_GOLDEN=1 writes
// those files instead), `bash -n` on each rendering, and the local
// template run for real with a fake launcher to check that the job script
// passes SIGTERM/SIGINT on and exits with the launcher's own status.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "copal/tmpl.h"

extern char **environ;

#ifndef TMPL_EXPECTED_DIR
#error "TMPL_EXPECTED_DIR: the directory of the golden files"
#endif

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

// ------------------------------------------------------------ helpers

// Renders text, which must succeed, and compares the result with want.
static void
render_ok(const char *text, const tmpl_var *vars, size_t n, const char *want)
{
	char err[256];
	char *out = tmpl_render(text, vars, n, err, sizeof(err));
	if (out == NULL) {
		print_error("render of \"%s\" failed: %s\n", text, err);
		fail();
	}
	assert_string_equal(err, "");
	assert_string_equal(out, want);
	free(out);
}

// Renders text, which must fail with exactly the message want.
static void
render_fails(const char *text, const tmpl_var *vars, size_t n,
    const char *want)
{
	char err[512];
	char *out = tmpl_render(text, vars, n, err, sizeof(err));
	if (out != NULL) {
		print_error("render of \"%s\" succeeded: \"%s\"\n", text, out);
		free(out);
		fail();
	}
	assert_string_equal(err, want);
}

static char *
read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return NULL;
	char *s = NULL;
	size_t n = 0, cap = 0, got;
	char chunk[4096];
	while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (n + got + 1 > cap) {
			cap = (n + got + 1) * 2;
			s = realloc(s, cap);
			assert_non_null(s);
		}
		memcpy(s + n, chunk, got);
		n += got;
	}
	fclose(fp);
	if (s == NULL)
		s = calloc(1, 1);
	else
		s[n] = '\0';
	return s;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		print_error("cannot write %s: %s\n", path, strerror(errno));
		fail();
	}
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

// Runs argv (searched in PATH) with SIGTERM and SIGINT at their defaults
// and nothing blocked, whatever this process inherited (a shell cannot
// trap a signal that was ignored when it started), stdout and stderr to
// out (or inherited if NULL). Returns the pid.
static pid_t
spawn(char *const argv[], const char *out)
{
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	sigset_t none, dfl;
	pid_t pid;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr,
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out) {
		posix_spawn_file_actions_addopen(&fa, 1, out,
		    O_WRONLY | O_CREAT | O_APPEND, 0644);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	int rv = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rv != 0) {
		print_error("cannot run %s: %s\n", argv[0], strerror(rv));
		fail();
	}
	return pid;
}

// The wait status of pid, which must end within ms; else it is killed
// and the test fails.
static int
wait_for(pid_t pid, long ms)
{
	int status;
	for (long t = 0; t < ms; t += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		assert_int_equal(r, 0);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	print_error("pid %ld did not end within %ld ms\n", (long)pid, ms);
	fail();
	return -1;
}

// The temporary directory of the running test, removed by its teardown
// even when an assertion ends the test early.
static char scratch[64];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
scratch_make(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/cpltmpl.XXXXXX");
	assert_non_null(mkdtemp(scratch));
}

static int
scratch_remove(void **state)
{
	(void)state;
	if (scratch[0])
		nftw(scratch, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	scratch[0] = '\0';
	return 0;
}

// ------------------------------------------------------------ renderer

static const tmpl_var basic[] = {
	{ "x", "1" },
	{ "name_2", "two words" },
	{ "empty", "" },
	{ "null", NULL },
	{ "x", "second x" }, // the first of a name counts
	{ "braces", "{{ x }}" },
};

static void
test_render_basics(void **state)
{
	(void)state;
	render_ok("", basic, NELEM(basic), "");
	render_ok("no placeholders\n", basic, NELEM(basic), "no placeholders\n");
	render_ok("{{x}}", basic, NELEM(basic), "1");
	render_ok("a {{ x }} b {{name_2}} c {{ \tx\t }}.", basic, NELEM(basic),
	    "a 1 b two words c 1.");
	render_ok("[{{ empty }}][{{ null }}]", basic, NELEM(basic), "[][]");
	render_ok("{{x}}{{x}}\n{{x}}", basic, NELEM(basic), "11\n1");
	// values are not rendered again
	render_ok("{{ braces }}", basic, NELEM(basic), "{{ x }}");
	// shell text around placeholders stays as it is
	render_ok("${HOME} {x} }} } { $((1+1))", basic, NELEM(basic),
	    "${HOME} {x} }} } { $((1+1))");
	render_ok("{ {{ x }} }", basic, NELEM(basic), "{ 1 }");
}

static void
test_render_errors(void **state)
{
	(void)state;
	render_fails("line one\nline {{ two }}\n", basic, NELEM(basic),
	    "2: unknown variable {{ two }} (known: x, name_2, empty, null, x, "
	    "braces)");
	render_fails("{{ x }}\n{{ x }}\n\n{{ y", basic, NELEM(basic),
	    "4: {{ not closed by }} on its line");
	render_fails("{{ x\n}}", basic, NELEM(basic),
	    "1: {{ not closed by }} on its line");
	render_fails("\n{{ x }", basic, NELEM(basic),
	    "2: {{ not closed by }} on its line");
	render_fails("{{", basic, NELEM(basic),
	    "1: {{ not closed by }} on its line");
	render_fails("\n\n\n{{ }}", basic, NELEM(basic),
	    "4: {{ }} without a variable name");
	render_fails("{{}}", basic, NELEM(basic),
	    "1: {{ }} without a variable name");
	render_fails("{{ a b }}", basic, NELEM(basic),
	    "1: 'b' cannot be in a variable name (letters, digits and _)");
	render_fails("{{ job-name }}", basic, NELEM(basic),
	    "1: '-' cannot be in a variable name (letters, digits and _)");
	render_fails("{{ caf\xC3\xA9 }}", basic, NELEM(basic),
	    "1: byte 0xc3 cannot be in a variable name (letters, digits and _)");
	render_fails("{{ X }}", basic, NELEM(basic),
	    "1: unknown variable {{ X }} (known: x, name_2, empty, null, x, "
	    "braces)");
	render_fails("{{ x }}", NULL, 0, "1: unknown variable {{ x }} (known: )");
	render_fails(NULL, basic, NELEM(basic), "0: no template");

	// no err buffer, and a short one (cut, never overrun)
	assert_null(tmpl_render("{{ y }}", basic, NELEM(basic), NULL, 0));
	char small[8];
	memset(small, 'z', sizeof(small));
	assert_null(tmpl_render("{{ y }}", basic, NELEM(basic), small,
	    sizeof(small)));
	assert_string_equal(small, "1: unkn");
}

// ------------------------------------------------------------ defaults

static void
test_defaults(void **state)
{
	(void)state;
	const char *want[] = { "local", "slurm", "pbs", "cobalt" };
	size_t n = 0;
	while (tmpl_schedulers[n])
		n++;
	assert_int_equal(n, NELEM(want));
	for (size_t i = 0; i < NELEM(want); i++) {
		const char *t = tmpl_default(want[i]);
		assert_non_null(t);
		assert_int_equal(strncmp(t, "#!/bin/bash\n", 12), 0);
		bool listed = false;
		for (size_t k = 0; k < n; k++)
			listed |= strcmp(tmpl_schedulers[k], want[i]) == 0;
		assert_true(listed);
	}
	assert_null(tmpl_default("sge"));
	assert_null(tmpl_default(""));
	assert_null(tmpl_default(NULL));

	// the part from `cd` to the end is one text in every template, so
	// that the signal test of the local template covers all four
	const char *tail0 = strstr(tmpl_default("local"), "\ncd {{ db_path }}");
	assert_non_null(tail0);
	for (size_t i = 0; i < n; i++) {
		const char *tail = strstr(tmpl_texts[i], "\ncd {{ db_path }}");
		assert_non_null(tail);
		if (strcmp(tail, tail0) != 0) {
			print_error("%s.tmpl: the part from `cd` on differs from "
			            "local.tmpl's\n", tmpl_schedulers[i]);
			fail();
		}
	}
}

// The fixed variables of the golden files; template is per scheduler.
static void
golden_vars(tmpl_var *v, const char *sched, char *tpath, size_t len)
{
	snprintf(tpath, len, "/home/u/proj/job-templates/%s.tmpl", sched);
	const tmpl_var fixed[] = {
		{ "job_name", "copal-proj-7" },
		{ "qlaunch_id", "7" },
		{ "project", "chem42" },
		{ "queue", "debug" },
		{ "nodes", "4" },
		{ "wall_minutes", "90" },
		{ "wall_time_hms", "01:30:00" },
		{ "launcher_minutes", "89.00" },
		{ "job_mode", "mpi" },
		{ "wf_filter_opt", "--wf-filter relax" },
		{ "copal_bin", "/opt/copal/bin" },
		{ "db_path", "/home/u/proj" },
		{ "output", "/home/u/proj/qsubmit/qlaunch7.out" },
		{ "script", "/home/u/proj/qsubmit/qlaunch7.sh" },
		{ "template", tpath },
		{ "broker_url", "tls+tcp://10.1.2.3:7555" },
	};
	memcpy(v, fixed, sizeof(fixed));
}
#define NGOLDEN 16

static void
test_golden(void **state)
{
	(void)state;
	const char *update = getenv("TMPL_UPDATE_GOLDEN");
	scratch_make();
	for (size_t i = 0; tmpl_schedulers[i]; i++) {
		const char *sched = tmpl_schedulers[i];
		tmpl_var vars[NGOLDEN];
		char tpath[128], path[512], err[512];
		golden_vars(vars, sched, tpath, sizeof(tpath));
		char *out = tmpl_render(tmpl_texts[i], vars, NGOLDEN, err,
		    sizeof(err));
		if (out == NULL) {
			print_error("%s.tmpl: %s\n", sched, err);
			fail();
		}
		snprintf(path, sizeof(path), "%s/%s.sh", TMPL_EXPECTED_DIR, sched);
		if (update && *update && strcmp(update, "0") != 0) {
			write_file(path, out, 0644);
		} else {
			char *want = read_file(path);
			if (want == NULL) {
				print_error("%s: %s (TMPL_UPDATE_GOLDEN=1 writes "
				            "it)\n", path, strerror(errno));
				fail();
			}
			if (strcmp(out, want) != 0) {
				print_error("%s.tmpl renders differently from %s: "
				            "\n%s\n", sched, path, out);
				fail();
			}
			free(want);
		}
		// the rendering is a bash script bash can parse
		snprintf(path, sizeof(path), "%s/%s.sh", scratch, sched);
		write_file(path, out, 0644);
		char *argv[] = { "bash", "-n", path, NULL };
		int status = wait_for(spawn(argv, NULL), 10000);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			print_error("bash -n %s.sh failed\n", sched);
			fail();
		}
		free(out);
	}
}

// ------------------------------------------------------------ signals

// A temporary directory holding a fake `copal` (the launcher) and the
// local template rendered to run it.
typedef struct run {
	const char *dir;
	char job[128], out[128], started[128], marker[128], args[128];
} run;

static void
run_setup(run *r, const char *fake)
{
	scratch_make();
	r->dir = scratch;
	snprintf(r->job, sizeof(r->job), "%s/job.sh", r->dir);
	snprintf(r->out, sizeof(r->out), "%s/job.out", r->dir);
	snprintf(r->started, sizeof(r->started), "%s/started", r->dir);
	snprintf(r->marker, sizeof(r->marker), "%s/marker", r->dir);
	snprintf(r->args, sizeof(r->args), "%s/args", r->dir);

	char path[128];
	snprintf(path, sizeof(path), "%s/copal", r->dir);
	write_file(path, fake, 0755);
	char tpath[128];
	tmpl_var vars[NGOLDEN];
	golden_vars(vars, "local", tpath, sizeof(tpath));
	for (size_t i = 0; i < NGOLDEN; i++)
		if (strcmp(vars[i].name, "copal_bin") == 0 ||
		    strcmp(vars[i].name, "db_path") == 0)
			vars[i].value = r->dir;
	char err[256];
	char *text = tmpl_render(tmpl_default("local"), vars, NGOLDEN, err,
	    sizeof(err));
	if (text == NULL) {
		print_error("local.tmpl: %s\n", err);
		fail();
	}
	write_file(r->job, text, 0755);
	free(text);
}

// Starts the job script and waits until the fake launcher runs; returns
// the script's pid, and the launcher's in *launcher.
static pid_t
run_start(run *r, pid_t *launcher)
{
	char *argv[] = { "bash", r->job, NULL };
	pid_t pid = spawn(argv, r->out);
	for (int t = 0; t < 1000; t++) {
		char *s = read_file(r->started);
		if (s && *s) {
			*launcher = (pid_t)atol(s);
			free(s);
			return pid;
		}
		free(s);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	char *out = read_file(r->out);
	print_error("the fake launcher did not start; job output:\n%s\n",
	    out ? out : "");
	free(out);
	fail();
	return -1;
}

// The script's end: it must exit (not die of a signal) with want, and the
// launcher must be gone.
static void
run_expect_exit(run *r, pid_t pid, pid_t launcher, int want)
{
	int status = wait_for(pid, 20000);
	// the launcher was the script's child: gone once the script waited
	// for it (a launcher left running is killed, and fails the test)
	bool outlived = kill(launcher, 0) == 0;
	if (outlived)
		kill(launcher, SIGKILL);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != want || outlived) {
		char *out = read_file(r->out);
		print_error("job script: %s %d, want exit %d%s; output:\n%s\n",
		    WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		    want, outlived ? "; the launcher outlived it" : "",
		    out ? out : "");
		free(out);
		fail();
	}
}

// A launcher that takes its time after SIGTERM (so that the script's
// `wait` surely returns early) and then exits 7.
static const char fake_slow[] =
    "#!/bin/bash\n"
    "d=$(dirname \"$0\")\n"
    "echo \"$*\" > \"$d/args\"\n"
    "trap 'sleep 0.3; echo term > \"$d/marker\"; exit 7' TERM\n"
    "echo $$ > \"$d/started.tmp\" && mv \"$d/started.tmp\" \"$d/started\"\n"
    "while :; do sleep 0.05; done\n";

static void
check_forward(int sig)
{
	run r;
	pid_t launcher;
	run_setup(&r, fake_slow);
	pid_t pid = run_start(&r, &launcher);
	assert_int_equal(kill(pid, sig), 0);
	run_expect_exit(&r, pid, launcher, 7);
	char *m = read_file(r.marker);
	assert_non_null(m);
	assert_string_equal(m, "term\n");
	free(m);
	// the launcher's command line as the template writes it
	char *a = read_file(r.args);
	assert_non_null(a);
	assert_string_equal(a, "launcher --job-mode mpi --wf-filter relax "
	                       "--time-limit-minutes 89.00\n");
	free(a);
}

static void
test_sigterm_forwarded(void **state)
{
	(void)state;
	check_forward(SIGTERM);
}

static void
test_sigint_forwarded(void **state)
{
	(void)state;
	check_forward(SIGINT);
}

// Two signals in a row (the scheduler and a user both stopping the job):
// the script still waits for the launcher's own end.
static void
test_two_signals(void **state)
{
	(void)state;
	run r;
	pid_t launcher;
	run_setup(&r, fake_slow);
	pid_t pid = run_start(&r, &launcher);
	assert_int_equal(kill(pid, SIGTERM), 0);
	sleep_ms(50);
	assert_int_equal(kill(pid, SIGTERM), 0);
	run_expect_exit(&r, pid, launcher, 7);
}

// A launcher without a handler dies of the forwarded SIGTERM: the script
// exits 143 like the launcher, after it is gone.
static void
test_launcher_killed(void **state)
{
	(void)state;
	run r;
	pid_t launcher;
	run_setup(&r, "#!/bin/bash\n"
	              "d=$(dirname \"$0\")\n"
	              "echo $$ > \"$d/started.tmp\" && "
	              "mv \"$d/started.tmp\" \"$d/started\"\n"
	              "exec sleep 30\n");
	pid_t pid = run_start(&r, &launcher);
	assert_int_equal(kill(pid, SIGTERM), 0);
	run_expect_exit(&r, pid, launcher, 128 + SIGTERM);
}

// Without a signal the script exits with the launcher's status.
static void
test_launcher_status(void **state)
{
	(void)state;
	run r;
	pid_t launcher;
	run_setup(&r, "#!/bin/bash\n"
	              "d=$(dirname \"$0\")\n"
	              "echo $$ > \"$d/started.tmp\" && "
	              "mv \"$d/started.tmp\" \"$d/started\"\n"
	              "sleep 0.2\n"
	              "exit 3\n");
	pid_t pid = run_start(&r, &launcher);
	run_expect_exit(&r, pid, launcher, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_basics),
		cmocka_unit_test(test_render_errors),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test_teardown(test_golden, scratch_remove),
		cmocka_unit_test_teardown(test_sigterm_forwarded, scratch_remove),
		cmocka_unit_test_teardown(test_sigint_forwarded, scratch_remove),
		cmocka_unit_test_teardown(test_two_signals, scratch_remove),
		cmocka_unit_test_teardown(test_launcher_killed, scratch_remove),
		cmocka_unit_test_teardown(test_launcher_status, scratch_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
