// Local dependencies and the writer: a real broker process (IPC).
//
//   deps_bench [-n CHAIN_TASKS] [-N BIG_TASKS] [-b BATCH]
//
// 1. One create of CHAIN_TASKS (300,000) tasks in a chain (task i's parent
//    is task i-1, as local dependencies of the request): its time, beside
//    the same create without dependencies.
// 2. While a create of BIG_TASKS (1,000,000) tasks with a chain runs,
//    another client heartbeats a lease of TTL 2 s every 20 ms: the longest
//    heartbeat (its wait for the writer) and the create's time, once as one
//    request and once split into requests of BATCH (10,000) tasks as the
//    CLI does. The lease must live through it: a heartbeat that waited for
//    the writer is judged as of its arrival.
// Commits are durable.
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "copal/client.h"

extern char **environ;

#define HB_TTL_MS 2000

struct hb {
	const char *dir;
	volatile int stop;
	double max_s;
	unsigned n;
	pthread_t th;
	int rv;
};

static cpl_client *
open_client(const char *dir)
{
	cpl_client *c;
	cpl_client_opts o;
	int rv;
	memset(&o, 0, sizeof(o));
	o.db_dir = dir;
	o.timeout_ms = 600000;
	o.attempts = 1;
	if ((rv = cpl_client_open(&o, &c)) != 0)
		die("client open", rv);
	return c;
}

static void *
hb_main(void *arg)
{
	struct hb *h = arg;
	cpl_client *c = open_client(h->dir);
	Copal__Reply *r;
	must(c, cpl_call_heartbeat(c, 0, "deps_bench", HB_TTL_MS, false, &r));
	uint64_t lease = r->heartbeat->lease_id;
	cpl_reply_free(r);
	while (!h->stop) {
		double t0 = now_s();
		int rv = cpl_call_heartbeat(c, lease, "deps_bench", HB_TTL_MS,
		    false, &r);
		double dt = now_s() - t0;
		if (rv != 0) {
			h->rv = rv;
			break;
		}
		cpl_reply_free(r);
		if (dt > h->max_s)
			h->max_s = dt;
		h->n++;
		usleep(20000);
	}
	cpl_client_close(c);
	return NULL;
}

// Creates n tasks "<prefix><i>" (app "sim"), with chain in a chain, in
// requests of batch tasks (bench_create_chain). Returns the seconds taken.
static double
create_chain(cpl_client *c, const char *prefix, size_t n, size_t batch,
    bool chain)
{
	double t0 = now_s();
	bench_create_chain(c, prefix, "deps", "sim", NULL, 0, n, batch, chain);
	return now_s() - t0;
}

static void
while_heartbeating(cpl_client *c, const char *dir, const char *prefix,
    size_t n, size_t batch)
{
	struct hb h;
	memset(&h, 0, sizeof(h));
	h.dir = dir;
	pthread_create(&h.th, NULL, hb_main, &h);
	usleep(200000);
	double dt = create_chain(c, prefix, n, batch, true);
	h.stop = 1;
	pthread_join(h.th, NULL);
	if (h.rv)
		die("heartbeat", h.rv);
	printf("create %zu chained tasks in requests of %zu: %.2f s; "
	    "longest heartbeat meanwhile %.0f ms (%u heartbeats)\n", n, batch,
	    dt, h.max_s * 1e3, h.n);
}

int
main(int argc, char **argv)
{
	bench_name = "deps_bench";
	size_t nchain = 300000, nbig = 1000000, batch = 10000;
	int opt;
	while ((opt = getopt(argc, argv, "n:N:b:")) != -1) {
		switch (opt) {
		case 'n':
			nchain = (size_t)atol(optarg);
			break;
		case 'N':
			nbig = (size_t)atol(optarg);
			break;
		case 'b':
			batch = (size_t)atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: deps_bench [-n CHAIN_TASKS] "
			    "[-N BIG_TASKS] [-b BATCH]\n");
			return 2;
		}
	}
	if (nchain < 1 || nbig < 1 || batch < 1)
		return 2;
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		die("readlink /proc/self/exe", CPL_EIO);
	self[sl] = '\0';
	*strrchr(self, '/') = '\0';
	signal(SIGPIPE, SIG_IGN);

	char dir[] = "/tmp/copal-dbench-XXXXXX";
	char path[PATH_MAX + 64], broker[PATH_MAX + 64];
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", CPL_EIO);
	cpl_dbpath(dir, CPL_DB_CONF, path, sizeof(path));
	FILE *f = fopen(path, "w");
	fprintf(f, "# benchmark database\n");
	fclose(f);
	snprintf(broker, sizeof(broker), "%s/../broker/copal-broker", self);
	char *bargv[] = { broker, "--db", dir, NULL };
	pid_t pid;
	if (posix_spawn(&pid, broker, NULL, NULL, bargv, environ) != 0)
		die("spawn broker", CPL_EIO);
	cpl_client *c = open_client(dir);
	wait_for_broker(c);
	Copal__App app = COPAL__APP__INIT;
	app.name = "sim";
	app.executable = "/bin/true";
	Copal__Reply *r;
	must(c, cpl_call_app_register(c, &app, false, &r));
	cpl_reply_free(r);

	// the reference: the same create without dependencies
	printf("create %zu independent tasks in one request: %.2f s\n",
	    nchain, create_chain(c, "flat", nchain, nchain, false));
	printf("create %zu chained tasks in one request: %.2f s\n", nchain,
	    create_chain(c, "chain", nchain, nchain, true));
	while_heartbeating(c, dir, "big", nbig, nbig);
	while_heartbeating(c, dir, "split", nbig, batch);

	cpl_client_close(c);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "deps_bench: could not remove %s\n", dir);
	return 0;
}
