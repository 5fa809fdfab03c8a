// Launcher benchmark: N /bin/true tasks through broker and launcher,
// against raw posix_spawn of the same N at the same concurrency, in the
// same run.
//
//   launcher_bench [-n TASKS] [-c CONCURRENCY] [-w SECONDS] [-l LEVELS]
//
// The tasks are created before the launcher starts; what is timed is from
// starting the launcher to the broker counting every task JOB_FINISHED.
// Prints tasks/s of both and their ratios (targets, issue 13: >= 0.85 of
// bare spawn, >= 0.95 of spawn with a directory and output file), the
// CPU per task of each (all processes counted), the launcher's
// CPU time per task, and how long claimed tasks waited before their
// process started (from the RUNNING events the launcher writes).
//
// Then, on the same broker (issue 13's other launcher figures):
// - waiting (-w SECONDS, default 30; 0 skips it): WAIT_TASKS `sleep`
//   tasks run on one launcher and nothing more can be claimed (its claim
//   is held open by the broker); the launcher's CPU over SECONDS (target
//   < 0.1 s per 30 s), against a plain parent blocked in wait() on as many
//   `sleep` processes over the same seconds (the physical reference);
// - a chain (-l LEVELS, default 100; 0 skips it) of /bin/true tasks, each
//   the child of the one before: its time (target: 100 levels < 3 s) and
//   the latency per level, from a parent's process ending to its child's
//   process starting, both by the launcher's clock (the RUN_DONE and
//   RUNNING events' event_us), p50 / p99; against the same chain of raw
//   posix_spawn + wait.
//
// Exits 1 if the run was not what it claims to time: a reference process
// or the launcher exited non-zero, a task ended in any state but
// JOB_FINISHED, or a task has not exactly one RUNNING event.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "copal/client.h"

extern char **environ;

static int ntasks = 10000, conc = 8, wait_s = 30, levels = 100;

// Tasks running while the launcher waits: 35 divides 5040, so 32 tasks of
// node_packing_count 35 fit on the one node (as launcher/test/nospin.sh).
#define WAIT_TASKS 32
#define WAIT_PACKING 35

// Every task ends within this many seconds or the run fails.
#define DEADLINE_S 600

// CPU seconds of process pid from /proc/PID/stat: its own (utime +
// stime) into *self, that of its children it has reaped (cutime +
// cstime) into *kids; false if it cannot be read.
static bool
proc_cpu(pid_t pid, double *self, double *kids)
{
	char path[64], buf[2048];
	bool ok = false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f && fgets(buf, sizeof(buf), f)) {
		const char *q = strrchr(buf, ')');
		unsigned long ut = 0, st = 0;
		long cut = 0, cst = 0;
		// fields after the command: state is 3, utime 14 ... cstime 17
		if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
		             "%*u %*u %lu %lu %ld %ld", &ut, &st, &cut, &cst) == 4) {
			double hz = (double)sysconf(_SC_CLK_TCK);
			*self = (double)(ut + st) / hz;
			*kids = (double)(cut + cst) / hz;
			ok = true;
		}
	}
	if (f)
		fclose(f);
	return ok;
}

// CPU seconds of every thread pid has now (the first field of each
// thread's schedstat, in ns): finer than /proc/PID/stat's clock ticks,
// which count 5 us per task at -n 2000. -1 without schedstat.
static double
proc_run_s(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	struct dirent *e;
	unsigned long long sum = 0;
	bool any = false;
	while ((e = readdir(d)) != NULL) {
		char p2[384];
		unsigned long long ns;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s/schedstat", path, e->d_name);
		FILE *f = fopen(p2, "r");
		if (f == NULL)
			continue;
		if (fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
			any = true;
		}
		fclose(f);
	}
	closedir(d);
	return any ? (double)sum / 1e9 : -1;
}

// CPU seconds of this process (self) or its reaped children.
static double
rusage_s(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// The physical reference: keep `conc` /bin/true processes in flight.
// With `dirs`, each process also gets what copal gives a task: its own new
// directory as working directory and an output file there.
// *cpu: the CPU seconds it took, its own and its children's.
static double
raw_spawn(int n, int c, const char *dirs, double *cpu)
{
	char *argv[] = { "/bin/true", NULL };
	int running = 0, started = 0;
	double c0 = rusage_s(RUSAGE_SELF) + rusage_s(RUSAGE_CHILDREN);
	double t0 = now_s();
	while (started < n || running > 0) {
		while (running < c && started < n) {
			pid_t pid;
			posix_spawn_file_actions_t fa, *fap = NULL;
			char d[PATH_MAX + 64], out[PATH_MAX + 200];
			if (dirs) {
				snprintf(d, sizeof(d), "%s/t%d", dirs, started);
				snprintf(out, sizeof(out), "%s/t%d.out", d, started);
				if (mkdir(d, 0755) != 0)
					die("mkdir", CPL_EIO);
				posix_spawn_file_actions_init(&fa);
				posix_spawn_file_actions_addopen(&fa, 1, out,
				    O_WRONLY | O_CREAT | O_APPEND, 0644);
				posix_spawn_file_actions_adddup2(&fa, 1, 2);
				posix_spawn_file_actions_addchdir_np(&fa, d);
				fap = &fa;
			}
			if (posix_spawn(&pid, "/bin/true", fap, NULL, argv,
			        environ) != 0)
				die("posix_spawn", CPL_EIO);
			if (fap)
				posix_spawn_file_actions_destroy(fap);
			running++;
			started++;
		}
		int st;
		if (wait(&st) > 0) {
			running--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "launcher_bench: reference "
				    "/bin/true ended with status %#x\n", st);
				exit(1);
			}
		}
	}
	double t = now_s() - t0;
	*cpu = rusage_s(RUSAGE_SELF) + rusage_s(RUSAGE_CHILDREN) - c0;
	return n / t;
}

// Stops a child: SIGTERM, then SIGKILL if it has not ended within 10 s.
static void
stop_child(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, NULL, WNOHANG) != 0)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

// "READY 150, FAILED 50": the states the tasks are in, into buf.
static void
state_list(const Copal__CountReply *cr, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t s = 0; s < cr->n_by_state && off < len; s++) {
		if (!cr->by_state[s])
			continue;
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		    &copal__task_state__descriptor, (int)s);
		const char *name = v ? v->name : "?";
		if (strncmp(name, "STATE_", 6) == 0)
			name += 6;
		off += (size_t)snprintf(buf + off, len - off, "%s%s %llu",
		    off ? ", " : "", name, (unsigned long long)cr->by_state[s]);
	}
}

// Counts until the broker has `want` tasks JOB_FINISHED (returns the
// seconds since t0) or fails the run: a task in an end state that is not
// JOB_FINISHED (FAILED, killed) never gets there, nor does one left behind
// by a launcher that exited (its status into *lst), nor one past
// DEADLINE_S.
static double
until_finished(cpl_client *c, uint64_t want, pid_t lpid, int *lst,
    pid_t bpid, const char *dir, double t0)
{
	bool lexited = false;
	for (;;) {
		Copal__Reply *r;
		must(c, cpl_call_count(c, NULL, &r));
		Copal__CountReply *cnt = r->count;
		uint64_t fin = bench_in_state(cnt,
		    COPAL__TASK_STATE__STATE_JOB_FINISHED);
		uint64_t ended = 0;
		const int ends[] = { COPAL__TASK_STATE__STATE_FAILED,
			COPAL__TASK_STATE__STATE_USER_KILLED,
			COPAL__TASK_STATE__STATE_PARENT_KILLED };
		for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
			ended += bench_in_state(cnt, ends[i]);
		char states[512];
		state_list(cnt, states, sizeof(states));
		cpl_reply_free(r);
		if (fin == want && !lexited)
			return now_s() - t0;
		if (fin == want || ended || lexited || now_s() - t0 > DEADLINE_S) {
			fprintf(stderr, "launcher_bench: not every task "
			    "JOB_FINISHED: %s (%s)\n", states, lexited ?
			    "the launcher exited" : ended ? "end states" :
			    "deadline passed");
			if (!lexited)
				stop_child(lpid);
			stop_child(bpid);
			fprintf(stderr, "launcher_bench: the database is left in "
			    "%s\n", dir);
			exit(1);
		}
		if (waitpid(lpid, lst, WNOHANG) == lpid)
			lexited = true; // one more count, then fail
		else
			usleep(10000);
	}
}

// Starts `copal-launcher --job-mode serial --max-concurrent n --idle-ttl
// 1` on the database in dir.
static pid_t
start_launcher(const char *launcher, const char *dir, int n)
{
	char cbuf[16];
	snprintf(cbuf, sizeof(cbuf), "%d", n);
	char *largv[] = { (char *)launcher, "--job-mode", "serial", "--db",
		(char *)dir, "--max-concurrent", cbuf, "--idle-ttl", "1", NULL };
	pid_t lpid;
	if (posix_spawn(&lpid, launcher, NULL, NULL, largv, environ) != 0)
		die("spawn launcher", CPL_EIO);
	return lpid;
}

// Waits for a launcher that has nothing left to do (--idle-ttl 1) to
// exit; fails the run unless it exits 0 within DEADLINE_S.
static void
launcher_exits(pid_t lpid)
{
	int st = 0;
	double t0 = now_s();
	pid_t w;
	while ((w = waitpid(lpid, &st, WNOHANG)) == 0 &&
	    now_s() - t0 < DEADLINE_S)
		usleep(10000);
	if (w == 0) {
		stop_child(lpid);
		fprintf(stderr, "launcher_bench: the launcher did not exit\n");
		exit(1);
	}
	if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "launcher_bench: the launcher ended with status "
		    "%#x\n", st);
		exit(1);
	}
}

// Tasks RUNNING now, by the broker's count.
static uint64_t
running_now(cpl_client *c)
{
	Copal__Reply *r;
	must(c, cpl_call_count(c, NULL, &r));
	uint64_t n = bench_in_state(r->count, COPAL__TASK_STATE__STATE_RUNNING);
	cpl_reply_free(r);
	return n;
}

// The waiting figure: WAIT_TASKS `sleep` tasks running and nothing more
// to claim; the launcher's and the broker's CPU over secs seconds, and
// that of the reference, a child process blocked in wait() on as many
// `sleep` processes, over the same seconds.
static void
bench_wait(cpl_client *c, const char *launcher, const char *dir,
    pid_t bpid, int secs, uint64_t finished_before)
{
	Copal__App app = COPAL__APP__INIT;
	app.name = "nap";
	app.executable = "/bin/sleep";
	Copal__Reply *r;
	must(c, cpl_call_app_register(c, &app, false, &r));
	cpl_reply_free(r);
	// the tasks outlast the window by 5 s (the time they take to start
	// included), then end: the run is checked as the first one is
	char args[32];
	snprintf(args, sizeof(args), "%d", secs + 5);
	bench_create_chain(c, "w", "wait", "nap", args, WAIT_PACKING, WAIT_TASKS,
	    WAIT_TASKS, false);
	double t0 = now_s();
	pid_t lpid = start_launcher(launcher, dir, WAIT_TASKS);
	while (running_now(c) != WAIT_TASKS) {
		if (now_s() - t0 > 60 || waitpid(lpid, NULL, WNOHANG) != 0) {
			fprintf(stderr, "launcher_bench: %d sleep tasks not "
			    "running after 60 s\n", WAIT_TASKS);
			stop_child(lpid);
			exit(1);
		}
		usleep(10000);
	}
	// the reference: a plain parent of WAIT_TASKS sleeps, blocked in wait()
	pid_t ref = fork();
	if (ref < 0)
		die("fork", CPL_EIO);
	if (ref == 0) {
		char *sargv[] = { "/bin/sleep", args, NULL };
		for (int i = 0; i < WAIT_TASKS; i++) {
			pid_t p;
			if (posix_spawn(&p, "/bin/sleep", NULL, NULL, sargv,
			        environ) != 0)
				_exit(1);
		}
		while (wait(NULL) > 0)
			;
		_exit(0);
	}
	usleep(200000); // its spawns are not waiting
	double l0 = proc_run_s(lpid), b0 = proc_run_s(bpid);
	double r0 = proc_run_s(ref);
	double w0 = now_s();
	sleep((unsigned)secs);
	double l1 = proc_run_s(lpid), b1 = proc_run_s(bpid);
	double r1 = proc_run_s(ref);
	double w = now_s() - w0;
	// all of them still running: no reaping or reporting in the window
	uint64_t still = running_now(c);
	if (still != WAIT_TASKS) {
		fprintf(stderr, "launcher_bench: %llu of %d sleep tasks still "
		    "running at the end of the window\n",
		    (unsigned long long)still, WAIT_TASKS);
		exit(1);
	}
	int lst = 0;
	until_finished(c, finished_before + WAIT_TASKS, lpid, &lst, bpid, dir,
	    now_s());
	launcher_exits(lpid);
	int rst;
	if (waitpid(ref, &rst, 0) != ref || !WIFEXITED(rst) ||
	    WEXITSTATUS(rst) != 0) {
		fprintf(stderr, "launcher_bench: the waiting reference failed\n");
		exit(1);
	}
	double lc = l1 - l0, per30 = lc / w * 30;
	printf("\n== waiting: %d `sleep` tasks running, nothing to claim, "
	    "%.1f s ==\n", WAIT_TASKS, w);
	printf("%-54s %10.4f s %8s %s  (%.4f s over the %.1f s)\n",
	    "launcher's CPU per 30 s", per30, "<0.1", per30 < 0.1 ? "PASS" :
	    "MISS", lc, w);
	printf("%-54s %10.4f s\n", "raw parent blocked in wait(), per 30 s "
	    "(reference)", (r1 - r0) / w * 30);
	printf("%-54s %10.4f s\n", "broker's CPU per 30 s (heartbeats, held "
	    "claim)", (b1 - b0) / w * 30);
}

// The chain figure: levels /bin/true tasks, each the child of the one
// before, on one launcher; against the same chain of raw posix_spawn +
// wait.
static void
bench_chain(cpl_client *c, const char *launcher, const char *dir,
    pid_t bpid, int n, uint64_t finished_before, uint64_t after_seq)
{
	char *targv[] = { "/bin/true", NULL };
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		pid_t p;
		int st;
		if (posix_spawn(&p, "/bin/true", NULL, NULL, targv, environ) !=
		        0 || waitpid(p, &st, 0) != p || st != 0)
			die("reference /bin/true", CPL_EIO);
	}
	double raw = now_s() - t0;

	uint64_t first = bench_create_chain(c, "c", "chain", "true", NULL, 1,
	    (size_t)n, (size_t)n, true);
	t0 = now_s();
	pid_t lpid = start_launcher(launcher, dir, 4);
	int lst = 0;
	until_finished(c, finished_before + (uint64_t)n, lpid, &lst, bpid, dir,
	    t0);
	launcher_exits(lpid);

	// each task's RUNNING and RUN_DONE by the launcher's clock, and the
	// last JOB_FINISHED
	uint64_t *start = calloc((size_t)n, sizeof(uint64_t));
	uint64_t *end = calloc((size_t)n, sizeof(uint64_t));
	double *lat = calloc((size_t)n, sizeof(double));
	if (!start || !end || !lat)
		die("calloc", CPL_ENOMEM);
	uint64_t last_fin = 0;
	int nrun = 0;
	for (;;) {
		Copal__Reply *r;
		Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
		er.after_seq = after_seq;
		er.limit = 50000;
		must(c, cpl_call_export(c, &er, &r));
		for (size_t i = 0; i < r->export->n_events; i++) {
			Copal__Event *e = r->export->events[i];
			if (e->task_id < first || e->task_id >= first + (uint64_t)n)
				continue;
			size_t k = (size_t)(e->task_id - first);
			uint64_t at = e->event_us ? e->event_us : e->time_us;
			if (e->to_state == COPAL__TASK_STATE__STATE_RUNNING) {
				if (start[k] != 0) {
					fprintf(stderr, "launcher_bench: chain task "
					    "%zu started twice\n", k);
					exit(1);
				}
				start[k] = at;
				nrun++;
			} else if (e->to_state ==
			    COPAL__TASK_STATE__STATE_RUN_DONE)
				end[k] = at;
			else if (e->to_state ==
			    COPAL__TASK_STATE__STATE_JOB_FINISHED && at > last_fin)
				last_fin = at;
		}
		after_seq = r->export->last_seq;
		bool more = r->export->more;
		cpl_reply_free(r);
		if (!more)
			break;
	}
	if (nrun != n) {
		fprintf(stderr, "launcher_bench: %d RUNNING events for a chain "
		    "of %d\n", nrun, n);
		exit(1);
	}
	size_t nl = 0;
	for (int i = 1; i < n; i++) {
		if (start[i] < end[i - 1] || end[i - 1] == 0) {
			fprintf(stderr, "launcher_bench: chain task %d started "
			    "before its parent ended\n", i);
			exit(1);
		}
		lat[nl++] = (double)(start[i] - end[i - 1]);
	}
	double ours = (double)(last_fin - start[0]) * 1e-6;
	printf("\n== a chain of %d /bin/true tasks, one launcher ==\n", n);
	printf("%-54s %10.3f s\n", "raw posix_spawn + wait, one after another "
	    "(reference)", raw);
	printf("%-54s %10.3f s %8s %s  (%.1fx raw; %.1f ms per level)\n",
	    "first start to last JOB_FINISHED", ours,
	    n == 100 ? "<3 s" : "", n != 100 ? "" : ours < 3 ? "PASS" : "MISS",
	    ours / raw, ours / n * 1e3);
	if (nl) {
		qsort(lat, nl, sizeof(double), cmp_d);
		printf("%-54s %10.2f / %.2f / %.2f ms\n",
		    "parent's end to child's start: p50 / p99 / max",
		    lat[nl / 2] * 1e-3, lat[(size_t)((double)nl * 0.99)] * 1e-3,
		    lat[nl - 1] * 1e-3);
		printf("%-54s %10.2f ms\n", "raw: one /bin/true, spawn to reaped",
		    raw / n * 1e3);
	}
	free(start);
	free(end);
	free(lat);
}

int
main(int argc, char **argv)
{
	bench_name = "launcher_bench";
	int opt;
	while ((opt = getopt(argc, argv, "n:c:w:l:")) != -1) {
		if (opt == 'n')
			ntasks = atoi(optarg);
		else if (opt == 'c')
			conc = atoi(optarg);
		else if (opt == 'w')
			wait_s = atoi(optarg);
		else if (opt == 'l')
			levels = atoi(optarg);
		else {
			fprintf(stderr, "usage: launcher_bench [-n TASKS] "
			    "[-c CONCURRENCY] [-w SECONDS] [-l LEVELS]\n");
			return 2;
		}
	}
	if (ntasks < 1 || conc < 1 || conc > 5040 || wait_s < 0 ||
	    wait_s > 3600 || levels < 0 || levels > 100000) {
		fprintf(stderr, "launcher_bench: -n >= 1, -c 1..5040, "
		    "-w 0..3600, -l 0..100000\n");
		return 2;
	}
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		die("readlink", CPL_EIO);
	self[sl] = '\0';
	*strrchr(self, '/') = '\0';
	char broker[PATH_MAX + 64], launcher[PATH_MAX + 64];
	snprintf(broker, sizeof(broker), "%s/../broker/copal-broker", self);
	snprintf(launcher, sizeof(launcher), "%s/../launcher/copal-launcher",
	    self);

	// 1. the references
	double raw_cpu, rawdir_cpu;
	double raw = raw_spawn(ntasks, conc, NULL, &raw_cpu);
	// $TMPDIR (default /tmp) holds both references' and the database's
	// directories: the same file system for all three
	const char *tmp = getenv("TMPDIR");
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	char rdir[PATH_MAX];
	snprintf(rdir, sizeof(rdir), "%s/copal-lbench-raw-XXXXXX", tmp);
	if (mkdtemp(rdir) == NULL)
		die("mkdtemp", CPL_EIO);
	double rawdir = raw_spawn(ntasks, conc, rdir, &rawdir_cpu);

	// 2. a database and its broker
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/copal-lbench-XXXXXX", tmp);
	char path[PATH_MAX + 64];
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", CPL_EIO);
	cpl_dbpath(dir, CPL_DB_CONF, path, sizeof(path));
	FILE *f = fopen(path, "w");
	fprintf(f, "# benchmark database\n");
	fclose(f);
	pid_t bpid;
	char *bargv[] = { broker, "--db", dir, NULL };
	if (posix_spawn(&bpid, broker, NULL, NULL, bargv, environ) != 0)
		die("spawn broker", CPL_EIO);
	cpl_client *c;
	cpl_client_opts o;
	memset(&o, 0, sizeof(o));
	o.db_dir = dir;
	o.timeout_ms = 30000;
	int rv;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die("client", rv);
	wait_for_broker(c);
	Copal__App app = COPAL__APP__INIT;
	app.name = "true";
	app.executable = "/bin/true";
	Copal__Reply *r;
	must(c, cpl_call_app_register(c, &app, false, &r));
	cpl_reply_free(r);

	// N tasks packed `conc` per node, so the one local node runs `conc`
	// at once, as the reference does
	bench_create_chain(c, "t", "bench", "true", NULL, (uint32_t)conc,
	    (size_t)ntasks, (size_t)ntasks, false);

	// 3. the launcher, timed from its start until the broker counts every
	// task JOB_FINISHED; a task in an end state that is not JOB_FINISHED
	// (FAILED, killed) never gets there, nor does one left behind by a
	// launcher that exited: both fail the run
	double b0 = 0, bk, me0 = rusage_s(RUSAGE_SELF);
	proc_cpu(bpid, &b0, &bk);
	double b0_ns = proc_run_s(bpid);
	double t0 = now_s();
	pid_t lpid = start_launcher(launcher, dir, conc);
	int lst = 0;
	double t_done = until_finished(c, (uint64_t)ntasks, lpid, &lst, bpid,
	    dir, t0);
	// the launcher's own CPU time (not its children's), read while it
	// idles before exiting; its tasks' (reaped by then), the broker's
	// and this program's (counting) over the same time
	double me = rusage_s(RUSAGE_SELF) - me0;
	double cpu = -1, kids = -1, b1 = -1;
	proc_cpu(lpid, &cpu, &kids);
	if (proc_cpu(bpid, &b1, &bk))
		b1 -= b0;
	// the same, to the ns, where the kernel keeps schedstat (threads
	// that ended before are not counted: the launcher's and the
	// broker's live as long as they do)
	double cpu_ns = proc_run_s(lpid), b1_ns = proc_run_s(bpid);
	if (cpu_ns >= 0)
		cpu = cpu_ns;
	if (b1_ns >= 0 && b0_ns >= 0)
		b1 = b1_ns - b0_ns;
	if (waitpid(lpid, &lst, 0) < 0)
		die("wait launcher", CPL_EIO);
	if (!WIFEXITED(lst) || WEXITSTATUS(lst) != 0) {
		fprintf(stderr, "launcher_bench: the launcher ended with status "
		    "%#x\n", lst);
		exit(1);
	}

	// 4. claim-to-start delays from the RUNNING events
	double *wait_us = calloc((size_t)ntasks, sizeof(double));
	size_t nw = 0, nrunning = 0;
	uint64_t after = 0;
	for (;;) {
		Copal__ExportRequest er = COPAL__EXPORT_REQUEST__INIT;
		er.after_seq = after;
		er.limit = 50000;
		must(c, cpl_call_export(c, &er, &r));
		for (size_t i = 0; i < r->export->n_events; i++) {
			Copal__Event *e = r->export->events[i];
			// "started N us after claim"
			const char *p = strstr(e->message, "started ");
			if (e->to_state != COPAL__TASK_STATE__STATE_RUNNING)
				continue;
			nrunning++;
			if (p && nw < (size_t)ntasks)
				wait_us[nw++] = atof(p + 8);
		}
		after = r->export->last_seq;
		bool more = r->export->more;
		copal__reply__free_unpacked(r, NULL);
		if (!more)
			break;
	}
	if (nrunning != (size_t)ntasks) {
		fprintf(stderr, "launcher_bench: %zu RUNNING events for %d tasks\n",
		    nrunning, ntasks);
		exit(1);
	}
	qsort(wait_us, nw, sizeof(double), cmp_d);
	double ours = ntasks / t_done;
	printf("\n== %d /bin/true tasks, concurrency %d ==\n", ntasks, conc);
	printf("%-54s %12s %8s %s\n", "figure", "value", "target", "");
	printf("%-54s %10.0f/s\n", "raw posix_spawn + wait (reference)", raw);
	printf("%-54s %10.0f/s\n", "raw posix_spawn, own dir + output file",
	    rawdir);
	printf("%-54s %10.0f/s %8s %s  (%.2f of raw, %.2f of raw with dirs)\n",
	    "broker + launcher, launcher start to all JOB_FINISHED", ours,
	    ".85/.95",
	    ours >= 0.85 * raw && ours >= 0.95 * rawdir ? "PASS" : "MISS",
	    ours / raw, ours / rawdir);
	printf("%-54s %10.1f us\n", "launcher's own CPU per task (user+sys)",
	    cpu / ntasks * 1e6);
	// on a machine with fewer cores than processes in flight the rates
	// follow the CPU each run takes per task, all processes counted
	printf("%-54s %10.0f us\n", "CPU per task, raw (parent + children)",
	    raw_cpu / ntasks * 1e6);
	printf("%-54s %10.0f us\n", "CPU per task, raw with dirs",
	    rawdir_cpu / ntasks * 1e6);
	printf("%-54s %10.0f us  (launcher %.1f, tasks %.0f, broker %.1f, "
	    "counting %.0f)\n", "CPU per task, broker + launcher, all",
	    (cpu + kids + b1 + me) / ntasks * 1e6, cpu / ntasks * 1e6,
	    kids / ntasks * 1e6, b1 / ntasks * 1e6, me / ntasks * 1e6);
	printf("%-54s %10d of %d JOB_FINISHED, one RUNNING event each\n",
	    "check", ntasks, ntasks);
	if (nw)
		printf("%-54s %10.0f / %.0f / %.0f us\n",
		    "claim to process start: p50 / p99 / max", wait_us[nw / 2],
		    wait_us[(size_t)(nw * 0.99)], wait_us[nw - 1]);
	uint64_t fin = (uint64_t)ntasks;
	if (wait_s > 0) {
		bench_wait(c, launcher, dir, bpid, wait_s, fin);
		fin += WAIT_TASKS;
	}
	if (levels > 0)
		bench_chain(c, launcher, dir, bpid, levels, fin, after);
	cpl_client_close(c);
	kill(bpid, SIGTERM);
	waitpid(bpid, NULL, 0);
	free(wait_us);
	char cmd[2 * PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, rdir);
	if (system(cmd) != 0)
		fprintf(stderr, "launcher_bench: could not remove %s\n", dir);
	return 0;
}
