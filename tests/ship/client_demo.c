// A program built outside copal's tree against an installed copal (by
// pkg-config or by find_package(copal)): registers an app, creates tasks
// in one request and counts them by state through the broker of the
// database named on the command line.
//
//   client_demo DB_DIR NTASKS
// Prints "READY N" and "total N" and exits 0, or says what failed and
// exits 1.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <copal/client.h>
#include <copal/version.h>

// The result rv of a typed call: 0, or -1 having said why.
static int
check(cpl_client *c, int rv)
{
	if (rv && !cpl_client_err_remote(c)) {
		fprintf(stderr, "client_demo: %s\n", cpl_strerror(rv));
		return -1;
	}
	if (rv) {
		fprintf(stderr, "client_demo: broker says %s: %s\n",
		    cpl_errname(rv), cpl_client_errmsg(c));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: client_demo DB_DIR NTASKS\n");
		return 2;
	}
	int n = atoi(argv[2]);
	if (n < 1 || n > 10000)
		return 2;
	fprintf(stderr, "client_demo: built against copal %s\n",
	    COPAL_VERSION);

	cpl_client_opts o;
	memset(&o, 0, sizeof(o));
	o.db_dir = argv[1];
	cpl_client *c;
	int rv = cpl_client_open(&o, &c);
	if (rv) {
		fprintf(stderr, "client_demo: open %s: %s\n", argv[1],
		    cpl_strerror(rv));
		return 1;
	}
	Copal__Reply *rep;

	Copal__App app = COPAL__APP__INIT;
	app.name = "demo";
	app.executable = "/bin/true";
	if (check(c, cpl_call_app_register(c, &app, true, &rep)))
		return 1;
	cpl_reply_free(rep);

	Copal__TaskSpec *specs = calloc((size_t)n, sizeof(*specs));
	Copal__TaskSpec **sp = calloc((size_t)n, sizeof(*sp));
	char (*names)[32] = calloc((size_t)n, sizeof(*names));
	if (specs == NULL || sp == NULL || names == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		copal__task_spec__init(&specs[i]);
		snprintf(names[i], sizeof(names[i]), "demo%d", i);
		specs[i].name = names[i];
		specs[i].workflow = "installed";
		specs[i].application = "demo";
		sp[i] = &specs[i];
	}
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.n_tasks = (size_t)n;
	cr.tasks = sp;
	if (check(c, cpl_call_create_tasks(c, &cr, &rep)))
		return 1;
	cpl_reply_free(rep);

	Copal__Filter f = COPAL__FILTER__INIT;
	f.workflow = "installed";
	if (check(c, cpl_call_count(c, &f, &rep)))
		return 1;
	const Copal__CountReply *cr2 = rep->count;
	uint64_t ready = COPAL__TASK_STATE__STATE_READY < cr2->n_by_state ?
	    cr2->by_state[COPAL__TASK_STATE__STATE_READY] : 0;
	printf("READY %llu\ntotal %llu\n", (unsigned long long)ready,
	    (unsigned long long)cr2->total);
	cpl_reply_free(rep);
	cpl_client_close(c);
	free(specs);
	free(sp);
	free(names);
	return 0;
}
