// Launcher benchmark: N /bin/true tasks through broker and launcher,
// against raw posix_spawn of the same N at the same concurrency, in the
// same run.
//
//   launcher_bench [-n TASKS] [-c CONCURRENCY]
//
// The tasks are created before the launcher starts; what is timed is from
// starting the launcher to the broker counting every task JOB_FINISHED.
// Prints tasks/s of both and their ratios (targets, issue 13: >= 0.85 of
// bare spawn, >= 0.95 of spawn with a directory and output file), the
// CPU per task of each (all processes counted), the launcher's
// CPU time per task, and how long claimed tasks waited before their
// process started (from the RUNNING events the launcher writes).
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

static int ntasks = 10000, conc = 8;

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

int
main(int argc, char **argv)
{
	bench_name = "launcher_bench";
	int opt;
	while ((opt = getopt(argc, argv, "n:c:")) != -1) {
		if (opt == 'n')
			ntasks = atoi(optarg);
		else if (opt == 'c')
			conc = atoi(optarg);
		else {
			fprintf(stderr, "usage: launcher_bench [-n TASKS] "
			    "[-c CONCURRENCY]\n");
			return 2;
		}
	}
	if (ntasks < 1 || conc < 1 || conc > 5040) {
		fprintf(stderr, "launcher_bench: -n >= 1, -c 1..5040\n");
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
	Copal__Resources res = COPAL__RESOURCES__INIT;
	res.node_packing_count = (uint32_t)conc;
	Copal__TaskSpec *specs = calloc((size_t)ntasks, sizeof(*specs));
	Copal__TaskSpec **sp = calloc((size_t)ntasks, sizeof(*sp));
	char (*names)[16] = calloc((size_t)ntasks, 16);
	for (int i = 0; i < ntasks; i++) {
		Copal__TaskSpec x = COPAL__TASK_SPEC__INIT;
		specs[i] = x;
		snprintf(names[i], 16, "t%d", i);
		specs[i].name = names[i];
		specs[i].workflow = "bench";
		specs[i].application = "true";
		specs[i].resources = &res;
		sp[i] = &specs[i];
	}
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = (size_t)ntasks;
	cr.tasks = sp;
	must(c, cpl_call_create_tasks(c, &cr, &r));
	cpl_reply_free(r);

	// 3. the launcher, timed from its start until the broker counts every
	// task JOB_FINISHED; a task in an end state that is not JOB_FINISHED
	// (FAILED, killed) never gets there, nor does one left behind by a
	// launcher that exited: both fail the run
	char cbuf[16];
	snprintf(cbuf, sizeof(cbuf), "%d", conc);
	char *largv[] = { launcher, "--job-mode", "serial", "--db", dir,
		"--max-concurrent", cbuf, "--idle-ttl", "1", NULL };
	pid_t lpid;
	double b0 = 0, bk, me0 = rusage_s(RUSAGE_SELF);
	proc_cpu(bpid, &b0, &bk);
	double b0_ns = proc_run_s(bpid);
	double t0 = now_s();
	if (posix_spawn(&lpid, launcher, NULL, NULL, largv, environ) != 0)
		die("spawn launcher", CPL_EIO);
	double t_done = 0;
	int lst = 0;
	bool lexited = false;
	for (;;) {
		must(c, cpl_call_count(c, NULL, &r));
		Copal__CountReply *cnt = r->count;
		uint64_t fin = cnt->n_by_state > COPAL__TASK_STATE__STATE_JOB_FINISHED
		    ? cnt->by_state[COPAL__TASK_STATE__STATE_JOB_FINISHED] : 0;
		uint64_t ended = 0;
		const int ends[] = { COPAL__TASK_STATE__STATE_FAILED,
			COPAL__TASK_STATE__STATE_USER_KILLED,
			COPAL__TASK_STATE__STATE_PARENT_KILLED };
		for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
			if ((size_t)ends[i] < cnt->n_by_state)
				ended += cnt->by_state[ends[i]];
		char states[512];
		state_list(cnt, states, sizeof(states));
		cpl_reply_free(r);
		if (fin == (uint64_t)ntasks) {
			t_done = now_s() - t0;
			break;
		}
		if (ended || lexited || now_s() - t0 > DEADLINE_S) {
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
		if (waitpid(lpid, &lst, WNOHANG) == lpid)
			lexited = true; // one more count, then fail
		else
			usleep(10000);
	}
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
	cpl_client_close(c);
	kill(bpid, SIGTERM);
	waitpid(bpid, NULL, 0);
	free(specs);
	free(sp);
	free(names);
	free(wait_us);
	char cmd[2 * PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, rdir);
	if (system(cmd) != 0)
		fprintf(stderr, "launcher_bench: could not remove %s\n", dir);
	return 0;
}
