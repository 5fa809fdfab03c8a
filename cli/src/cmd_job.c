// Creating tasks: copal job, mkchild, dep, make_dummies.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { KEY_QUIET = 'q', KEY_FROM_FILE = 430, KEY_BATCH, KEY_DWF };

#define DEFAULT_BATCH 10000u
#define MAX_BATCH 100000u

const cli_opt job_opts[] = {
	{ "yes", KEY_YES, OPT_NOARG, NULL, "add without asking" },
	{ "quiet", KEY_QUIET, OPT_NOARG, NULL,
	    "print only the new uuid (implies --yes)" },
	{ "from-file", KEY_FROM_FILE, OPT_ARG, "FILE",
	    "add one task per line of a JSON-lines file (- for stdin)" },
	{ "batch", KEY_BATCH, OPT_ARG, "N",
	    "--from-file: tasks per request (default 10000)" },
	{ NULL, 0, 0, NULL, NULL },
};

const cli_opt mkchild_opts[] = {
	{ "quiet", KEY_QUIET, OPT_NOARG, NULL, "print only the new uuid" },
	{ NULL, 0, 0, NULL, NULL },
};

enum { KEY_DEP_REMOVE = 470, KEY_DEP_REPLACE };

const cli_opt dep_opts[] = {
	{ "remove", KEY_DEP_REMOVE, OPT_NOARG, NULL,
	    "remove the dependency PARENT -> CHILD instead" },
	{ "replace", KEY_DEP_REPLACE, OPT_NOARG, NULL,
	    "CHILD [PARENT...]: make these the child's only parents" },
	{ NULL, 0, 0, NULL, NULL },
};

const cli_opt dummies_opts[] = {
	{ "wf", KEY_DWF, OPT_ARG, "WF", "workflow of the tasks (dummy)" },
	{ "workflow", KEY_DWF, OPT_ARG, "WF", "same as --wf" },
	{ NULL, 0, 0, NULL, NULL },
};

int
create_batch(cpl_client *c, Copal__TaskSpec **specs, size_t n, uint32_t *lpc,
    uint32_t *lpp, size_t nl, bool want_uuids, Copal__Reply **rep)
{
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	cr.tasks = specs;
	cr.n_tasks = n;
	cr.local_parent_child = lpc;
	cr.local_parent_parent = lpp;
	cr.n_local_parent_child = cr.n_local_parent_parent = nl;
	cr.want_uuids = want_uuids;
	return cli_call_rc(c, cpl_call_create_tasks(c, &cr, rep));
}

static int
no_app(const char *name)
{
	cli_err("no app named %s: register it with copal app --name %s "
	    "--executable CMD (see copal ls apps)", name, name);
	return EXIT_NOTFOUND;
}

// The common path of job and mkchild: parents resolved, app checked, the
// block shown, confirmation, creation.
static int
add_task(cpl_client *c, spec_buf *b, arena *a, bool yes, bool quiet,
    uint64_t parent)
{
	Copal__Reply *apps = NULL, *rep = NULL;
	uuid_map *m = uuid_map_new();
	char uuid[37];
	int rc;
	if ((rc = apps_fetch(c, &apps)) != 0)
		goto out;
	// (a task with a direct command may have no app)
	const Copal__App *app = b->sp.application && b->sp.application[0] ?
	    apps_find(apps, b->sp.application) : NULL;
	if (app == NULL && b->sp.application && b->sp.application[0]) {
		rc = no_app(b->sp.application);
		goto out;
	}
	if (parent)
		spec_add_parent(b, a, parent);
	for (size_t i = 0; i < b->nparent_refs; i++) {
		uint64_t id;
		if ((rc = resolve_prefix(c, b->parent_refs[i], &id, uuid)) != 0)
			goto out;
		spec_add_parent(b, a, id);
		uuid_map_put(m, id, uuid);
	}
	if ((rc = uuid_map_fetch(m, c, b->sp.parent_ids,
	         b->sp.n_parent_ids)) != 0)
		goto out;
	if (!quiet) {
		printf("New task\n--------\n");
		spec_print(stdout, &b->sp, app, cpl_client_db(c), NULL, false, m);
		putchar('\n');
		if (!yes && !confirm("Confirm adding job to DB")) {
			printf("Nothing added.\n");
			rc = EXIT_ERR;
			goto out;
		}
	}
	Copal__TaskSpec *one = &b->sp;
	if ((rc = create_batch(c, &one, 1, NULL, NULL, 0, true, &rep)) != 0)
		goto out;
	if (rep->create->n_uuids != 1) {
		cli_err("the broker did not return the new uuid");
		rc = EXIT_ERR;
		goto out;
	}
	if (quiet)
		printf("%s\n", rep->create->uuids[0]);
	else
		printf("Added task %s\n", rep->create->uuids[0]);
out:
	if (rep)
		copal__reply__free_unpacked(rep, NULL);
	if (apps)
		copal__reply__free_unpacked(apps, NULL);
	uuid_map_free(m);
	return rc;
}

int
cmd_job(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *from = NULL;
	spec_buf b;
	arena *a = arena_new();
	cpl_client *c = NULL;
	bool yes = false, quiet = false, any_spec = false;
	uint32_t batch = DEFAULT_BATCH;
	char err[256];
	int k, rc;
	if (a == NULL) {
		cli_err("out of memory");
		return EXIT_ERR;
	}
	spec_init(&b);
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0) {
		arena_free(a);
		return rc;
	}
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k >= KEY_SPEC) {
			any_spec = true;
			rc = spec_set_opt(&b, a, k, arg);
		} else if (k == KEY_YES) {
			yes = true;
		} else if (k == KEY_QUIET) {
			quiet = yes = true;
		} else if (k == KEY_FROM_FILE) {
			from = arg;
		} else if (k == KEY_BATCH) {
			if ((rc = cli_u32("--batch", arg, &batch)) == 0 &&
			    (batch == 0 || batch > MAX_BATCH))
				rc = cli_usage("--batch: 1..%u", MAX_BATCH);
		} else {
			rc = EXIT_USAGE;
		}
		if (rc)
			goto out;
	}
	if (p.nargs) {
		rc = cli_usage("unexpected argument %s (several parents: "
		    "--parents A,B)", p.argv[p.first]);
		goto out;
	}
	if (from) {
		if (any_spec) {
			rc = cli_usage("--from-file takes every field from the "
			    "file; no task options with it");
			goto out;
		}
		if ((rc = cli_connect(&c)) == 0)
			rc = bulk_create(c, from, batch);
		goto out;
	}
	if (cpl_spec_check(&b.sp, err, sizeof(err)) != 0) {
		rc = cli_usage("%s", err);
		goto out;
	}
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	rc = add_task(c, &b, a, yes, quiet, 0);
out:
	cpl_client_close(c);
	cli_parse_free(&p);
	arena_free(a);
	return rc;
}

int
cmd_mkchild(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	spec_buf b;
	arena *a = arena_new();
	cpl_client *c = NULL;
	Copal__Reply *prep = NULL;
	bool quiet = false, wf_given = false;
	uint64_t parent;
	char err[256];
	int k, rc;
	if (a == NULL)
		return EXIT_ERR;
	spec_init(&b);
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0) {
		arena_free(a);
		return rc;
	}
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k >= KEY_SPEC) {
			rc = spec_set_opt(&b, a, k, arg);
		} else if (k == KEY_QUIET) {
			quiet = true;
		} else {
			rc = EXIT_USAGE;
		}
		if (rc)
			goto out;
	}
	if ((rc = cli_no_operands(&p)) != 0)
		goto out;
	wf_given = b.sp.workflow[0] != '\0';
	const char *tid = getenv("COPAL_TASK_ID");
	if (tid == NULL || *tid == '\0') {
		cli_err("COPAL_TASK_ID is not set: mkchild runs inside a task "
		    "started by a launcher (elsewhere use copal job --parents)");
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = cli_u64("COPAL_TASK_ID", tid, &parent)) != 0)
		goto out;
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	Copal__Task *pt;
	if ((rc = fetch_task(c, parent, &prep, &pt)) != 0)
		goto out;
	// a child belongs to its parent's workflow unless told otherwise
	if (!wf_given && pt->spec)
		b.sp.workflow = arena_strdup(a, pt->spec->workflow);
	if (cpl_spec_check(&b.sp, err, sizeof(err)) != 0) {
		rc = cli_usage("%s", err);
		goto out;
	}
	rc = add_task(c, &b, a, true, quiet, parent);
out:
	if (prep)
		copal__reply__free_unpacked(prep, NULL);
	cpl_client_close(c);
	cli_parse_free(&p);
	arena_free(a);
	return rc;
}

// copal dep --replace CHILD [PARENT...]
static int
dep_replace(cli_parse *p)
{
	cpl_client *c = NULL;
	uint64_t child, *ids = NULL;
	char cu[37];
	int rc;
	if (p->nargs < 1) {
		return cli_usage("--replace: give CHILD and its new PARENTs "
		    "(uuid prefixes; none: no parents)");
	}
	size_t n = (size_t)p->nargs - 1;
	if ((ids = calloc(n ? n : 1, sizeof(*ids))) == NULL) {
		cli_err("out of memory");
		return EXIT_ERR;
	}
	if ((rc = cli_connect(&c)) != 0 ||
	    (rc = resolve_prefix(c, p->argv[p->first], &child, cu)) != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if ((rc = resolve_prefix(c, p->argv[p->first + 1 + (int)i],
		         &ids[i], NULL)) != 0)
			goto out;
	Copal__Reply *rep;
	rc = cli_call_rc(c, cpl_call_dep_replace(c, child, ids, n, &rep));
	if (rc == 0) {
		printf("Parents of %s replaced (%zu parent%s)\n", cu, n,
		    n == 1 ? "" : "s");
		cpl_reply_free(rep);
	}
out:
	free(ids);
	cpl_client_close(c);
	return rc;
}

int
cmd_dep(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	cpl_client *c = NULL;
	uint64_t parent, child;
	char pu[37], cu[37];
	bool remove = false, replace = false;
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == KEY_DEP_REMOVE) {
			remove = true;
			continue;
		}
		if (k == KEY_DEP_REPLACE) {
			replace = true;
			continue;
		}
		rc = EXIT_USAGE;
		goto out;
	}
	if (remove && replace) {
		rc = cli_usage("--remove or --replace, not both");
		goto out;
	}
	if (replace) {
		rc = dep_replace(&p);
		goto out;
	}
	if (p.nargs != 2) {
		rc = cli_usage("give PARENT and CHILD (uuid prefixes)");
		goto out;
	}
	if ((rc = cli_connect(&c)) != 0 ||
	    (rc = resolve_prefix(c, p.argv[p.first], &parent, pu)) != 0 ||
	    (rc = resolve_prefix(c, p.argv[p.first + 1], &child, cu)) != 0)
		goto out;
	Copal__Reply *rep;
	if (remove) {
		rc = cli_call_rc(c, cpl_call_dep_remove(c, parent, child, &rep));
		if (rc == 0) {
			printf("Removed dependency %s -> %s\n", pu, cu);
			cpl_reply_free(rep);
		}
		goto out;
	}
	// the broker's message names the tasks by uuid prefix and name
	int rv = cpl_call_add_dependency(c, parent, child, &rep);
	if (rv && !cpl_client_err_remote(c)) {
		cli_err("no answer from the broker: %s", cpl_strerror(rv));
		rc = EXIT_ERR;
		goto out;
	}
	if (rv) {
		const char *why = cpl_client_errmsg(c);
		if (why && why[0])
			cli_err("%s", why);
		else
			cli_err("cannot add %s -> %s: %s%s", pu, cu,
			    parent == child ? "a task cannot depend on itself" :
			    cpl_strerror(rv), rv == CPL_EBADSTATE ? ": the "
			    "child has already started" : "");
		rc = cli_exit_for(rv);
	} else {
		printf("Added dependency %s -> %s\n", pu, cu);
	}
	cpl_reply_free(rep);
out:
	cpl_client_close(c);
	cli_parse_free(&p);
	return rc;
}

// ------------------------------------------------------------ dummies

static int
ensure_dummy_app(cpl_client *c)
{
	Copal__Reply *apps;
	int rc;
	if ((rc = apps_fetch(c, &apps)) != 0)
		return rc;
	bool have = apps_find(apps, "dummy") != NULL;
	copal__reply__free_unpacked(apps, NULL);
	if (have)
		return 0;
	Copal__App app = COPAL__APP__INIT;
	app.name = (char *)"dummy";
	app.executable = (char *)"/bin/true";
	app.description = (char *)"does nothing (copal make_dummies)";
	// a concurrent make_dummies may have registered it meanwhile
	Copal__Reply *r = NULL;
	int rv = cpl_call_app_register(c, &app, false, &r);
	if (rv && !cpl_client_err_remote(c)) {
		cli_err("no answer from the broker: %s", cpl_strerror(rv));
		return EXIT_ERR;
	}
	rc = 0;
	if (rv != 0 && rv != CPL_EEXISTS) {
		cli_err("cannot register the dummy app: %s",
		    cpl_client_errmsg(c));
		rc = cli_exit_for(rv);
	}
	cpl_reply_free(r);
	return rc;
}

int
cmd_make_dummies(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *wf = "dummy";
	cpl_client *c = NULL;
	arena *a = arena_new();
	uint64_t n;
	int k, rc;
	if (a == NULL)
		return EXIT_ERR;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0) {
		arena_free(a);
		return rc;
	}
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == KEY_DWF)
			wf = arg;
		else {
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (p.nargs != 1) {
		rc = cli_usage("give the number of tasks");
		goto out;
	}
	if ((rc = cli_u64("N", p.argv[p.first], &n)) != 0)
		goto out;
	if ((rc = cli_connect(&c)) != 0 || (rc = ensure_dummy_app(c)) != 0)
		goto out;
	double t0 = now_s();
	Copal__TaskSpec **specs = xcalloc(DEFAULT_BATCH, sizeof(*specs));
	for (uint64_t done = 0; done < n && rc == 0;) {
		size_t m = n - done < DEFAULT_BATCH ? (size_t)(n - done) :
		                                      DEFAULT_BATCH;
		arena_reset(a);
		for (size_t i = 0; i < m; i++) {
			spec_buf *b = arena_alloc(a, sizeof(*b));
			char name[32];
			if (b == NULL) {
				cli_err("out of memory");
				rc = EXIT_ERR;
				break;
			}
			spec_init(b);
			b->sp.resources = &b->res;
			snprintf(name, sizeof(name), "dummy%" PRIu64, done + i + 1);
			b->sp.name = arena_strdup(a, name);
			b->sp.workflow = (char *)wf;
			b->sp.application = (char *)"dummy";
			specs[i] = &b->sp;
		}
		Copal__Reply *rep;
		if (rc || (rc = create_batch(c, specs, m, NULL, NULL, 0, false,
		                &rep)) != 0) {
			if (done)
				fprintf(stderr, "(%" PRIu64 " tasks were created "
				    "before the error)\n", done);
			break;
		}
		copal__reply__free_unpacked(rep, NULL);
		done += m;
	}
	free(specs);
	if (rc == 0) {
		double dt = now_s() - t0;
		printf("Created %" PRIu64 " dummy tasks in workflow %s in %.2f s "
		    "(%.0f tasks/s)\n", n, wf, dt, dt > 0 ? (double)n / dt : 0.0);
	}
out:
	cpl_client_close(c);
	cli_parse_free(&p);
	arena_free(a);
	return rc;
}
