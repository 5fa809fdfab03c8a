// Changing tasks: copal modify, rm, killjob. Each sends one request; the
// broker applies it to every selected task or to none.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

enum { KEY_MESSAGE = 'm', KEY_RECURSIVE = 'r', KEY_LEASE = 460 };

const cli_opt modify_opts[] = {
	{ "message", KEY_MESSAGE, OPT_ARG, "TEXT",
	    "state changes: message for the history" },
	{ "lease", KEY_LEASE, OPT_ARG, "ID",
	    "from a handler, preprocess or postprocess: change its own task, "
	    "held by this lease ($COPAL_LEASE_ID)" },
	{ "recursive", KEY_RECURSIVE, OPT_NOARG, NULL,
	    "with state RESTART_READY: PARENT_KILLED descendants go back to "
	    "AWAITING_PARENTS (those whose parents are all alive again)" },
	{ NULL, 0, 0, NULL, NULL },
};

const cli_opt rm_opts[] = {
	{ "yes", KEY_YES, OPT_NOARG, NULL, "do not ask for confirmation" },
	{ NULL, 0, 0, NULL, NULL },
};

const cli_opt killjob_opts[] = {
	{ "recursive", KEY_RECURSIVE, OPT_NOARG, NULL,
	    "kill descendants too: USER_KILLED, as the task (without it "
	    "they become PARENT_KILLED)" },
	{ "yes", KEY_YES, OPT_NOARG, NULL,
	    "do not ask for confirmation (filters only)" },
	{ NULL, 0, 0, NULL, NULL },
};

// The field name of `copal modify` as the broker knows it (the table's
// key) for the spellings users may type.
static const char *
field_name(const char *in, char *buf, size_t len)
{
	const cpl_spec_field *f = spec_field_named(in, true);
	if (f != NULL)
		return f->key;
	snprintf(buf, len, "%s", in);
	for (char *p = buf; *p; p++)
		if (*p == '-')
			*p = '_';
	if (strcmp(buf, "job_state") == 0)
		return "state";
	return buf;
}

// Counts the tasks a filter selects (for confirmations).
static int
count_tasks(cpl_client *c, filt *f, uint64_t *n)
{
	Copal__Reply *rep;
	int rc;
	if ((rc = cli_call_rc(c, cpl_call_count(c, filt_wire(f), &rep))) != 0)
		return rc;
	*n = rep->count->total;
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

// Resolves operands (uuid prefixes) into the filter's ids.
static int
add_prefixes(cpl_client *c, filt *f, char **ids, int n, char *first_uuid)
{
	for (int i = 0; i < n; i++) {
		uint64_t id;
		int rc = resolve_prefix(c, ids[i], &id, i == 0 ? first_uuid : NULL);
		if (rc)
			return rc;
		filt_add_id(f, id);
	}
	return 0;
}

int
cmd_modify(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg, *message = NULL;
	uint64_t lease = 0;
	bool recursive = false;
	filt f;
	cpl_client *c = NULL;
	char fbuf[64], uuid[37] = "";
	char *norm = NULL; // the compact JSON sent for data, printed after
	int k, rc;
	filt_init(&f);
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (filt_opt(&f, k, arg, &rc))
			;
		else if (k == KEY_MESSAGE)
			message = arg;
		else if (k == KEY_RECURSIVE)
			recursive = true;
		else if (k == KEY_LEASE) {
			char *end;
			lease = strtoull(arg, &end, 10);
			if (*arg == '\0' || *end != '\0' || lease == 0)
				rc = cli_usage("--lease needs a lease id, "
				    "not %s", arg);
		} else
			rc = EXIT_USAGE;
		if (rc)
			goto out;
	}
	bool by_id = p.nargs == 3;
	if (p.nargs != 3 && p.nargs != 2) {
		rc = cli_usage("give ID FIELD VALUE, or filter options and "
		    "FIELD VALUE");
		goto out;
	}
	if (by_id && f.set) {
		rc = cli_usage("give a task id or filter options, not both");
		goto out;
	}
	if (!by_id && !f.set) {
		rc = cli_usage("no tasks selected: give a task id or filter "
		    "options (--all for every task)");
		goto out;
	}
	char **ops = p.argv + p.first;
	const char *field = field_name(ops[by_id ? 1 : 0], fbuf, sizeof(fbuf));
	const char *value = ops[by_id ? 2 : 1];
	if (strcmp(field, "state") == 0) {
		cpl_state s = cpl_state_parse(value);
		if (s == CPL_STATE_NONE) {
			rc = cli_usage("unknown state %s", value);
			goto out;
		}
		value = cpl_state_name(s);
	}
	if (recursive && (strcmp(field, "state") != 0 ||
	    strcmp(value, "RESTART_READY") != 0)) {
		rc = cli_usage("--recursive is for state RESTART_READY (it "
		    "brings PARENT_KILLED descendants back), not %s %s", field,
		    value);
		goto out;
	}
	if (recursive && lease) {
		rc = cli_usage("--recursive changes states, which --lease "
		    "cannot");
		goto out;
	}
	if (strcmp(field, "state") != 0 && cpl_spec_find(field) &&
	    cpl_spec_find(field)->type == CPL_SPEC_JSON) {
		// sent compact, as `copal job --data` does
		json_error_t je;
		json_t *j = json_loads(value, JSON_DECODE_ANY, &je);
		if (j == NULL) {
			rc = cli_usage("%s: not valid JSON: %s", field,
			    je.text);
			goto out;
		}
		norm = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(j);
		if (norm)
			value = norm;
	}
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	if (by_id && (rc = add_prefixes(c, &f, ops, 1, uuid)) != 0)
		goto out;
	Copal__Reply *rep;
	rc = cli_call_rc(c, recursive ?
	    cpl_call_modify_recursive(c, filt_wire(&f), field, value, message,
	        true, &rep) :
	    cpl_call_modify_held(c, filt_wire(&f), field, value, message, lease,
	        &rep));
	if (rc)
		goto out;
	const Copal__ModifyReply *r = rep->modify;
	if (by_id && recursive)
		printf("task %s: %s %s; changed %" PRIu64 " task%s with its "
		    "descendants\n", uuid, field, value, r->changed,
		    r->changed == 1 ? "" : "s");
	else if (by_id && r->changed)
		printf("task %s: %s changed to: %s\n", uuid, field, value);
	else if (by_id)
		printf("task %s: %s already %s\n", uuid, field, value);
	else
		printf("matched %" PRIu64 " task%s, changed %" PRIu64 "\n",
		    r->matched, r->matched == 1 ? "" : "s", r->changed);
	copal__reply__free_unpacked(rep, NULL);
out:
	free(norm);
	cpl_client_close(c);
	filt_free(&f);
	cli_parse_free(&p);
	return rc;
}

// rm and killjob select tasks the same way: ids or filters, confirmation.
static int
selection_usage(const cli_parse *p, const filt *f)
{
	if (p->nargs && f->set)
		return cli_usage("give task ids or filter options, not both");
	if (!p->nargs && !f->set)
		return cli_usage("no tasks selected: give task ids or filter "
		    "options (--all for every task)");
	return 0;
}

static int
select_tasks(cpl_client *c, cli_parse *p, filt *f, bool yes,
    const char *verb, uint64_t *n)
{
	int rc;
	char what[512];
	if (p->nargs) {
		if ((rc = add_prefixes(c, f, p->argv + p->first, p->nargs,
		         NULL)) != 0)
			return rc;
		*n = f->nids;
	} else if ((rc = count_tasks(c, f, n)) != 0) {
		return rc;
	}
	filt_describe(f, what, sizeof(what));
	if (*n == 0) {
		cli_err("no task matches (%s)", what);
		return EXIT_NOTFOUND;
	}
	if (!yes) {
		char prompt[700];
		printf("%s %" PRIu64 " task%s (%s).\n", verb, *n,
		    *n == 1 ? "" : "s", what);
		snprintf(prompt, sizeof(prompt), "Confirm: %s %" PRIu64 " task%s",
		    verb, *n, *n == 1 ? "" : "s");
		if (!confirm(prompt)) {
			printf("Nothing done.\n");
			return EXIT_ERR;
		}
	}
	return 0;
}

int
cmd_rm(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	filt f;
	cpl_client *c = NULL;
	bool yes = false;
	uint64_t n;
	int k, rc;
	filt_init(&f);
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (filt_opt(&f, k, arg, &rc))
			;
		else if (k == KEY_YES)
			yes = true;
		else
			rc = EXIT_USAGE;
		if (rc)
			goto out;
	}
	if (p.nargs && !strcmp(p.argv[p.first], "app")) {
		rc = p.nargs != 2 || f.set ? cli_usage("rm app NAME") :
		                             rm_app(p.argv[p.first + 1]);
		goto out;
	}
	if ((rc = selection_usage(&p, &f)) != 0 ||
	    (rc = cli_connect(&c)) != 0 ||
	    (rc = select_tasks(c, &p, &f, yes, "remove", &n)) != 0)
		goto out;
	Copal__Reply *rep;
	if ((rc = cli_call_rc(c, cpl_call_delete(c, filt_wire(&f), &rep))) != 0)
		goto out;
	printf("Removed %" PRIu64 " task%s\n", rep->delete_->deleted,
	    rep->delete_->deleted == 1 ? "" : "s");
	copal__reply__free_unpacked(rep, NULL);
out:
	cpl_client_close(c);
	filt_free(&f);
	cli_parse_free(&p);
	return rc;
}

int
cmd_killjob(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	filt f;
	cpl_client *c = NULL;
	bool yes = false, recursive = false;
	uint64_t n;
	int k, rc;
	filt_init(&f);
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (filt_opt(&f, k, arg, &rc))
			;
		else if (k == KEY_YES)
			yes = true;
		else if (k == KEY_RECURSIVE)
			recursive = true;
		else
			rc = EXIT_USAGE;
		if (rc)
			goto out;
	}
	// naming tasks by id is explicit enough; filters get a confirmation
	if ((rc = selection_usage(&p, &f)) != 0 ||
	    (rc = cli_connect(&c)) != 0 ||
	    (rc = select_tasks(c, &p, &f, yes || p.nargs > 0, "kill", &n)) != 0)
		goto out;
	Copal__Reply *rep;
	if ((rc = cli_call_rc(c, cpl_call_kill(c, filt_wire(&f), recursive,
	         &rep))) != 0)
		goto out;
	uint64_t killed = rep->kill->killed;
	if (killed == 0)
		printf("Nothing to kill: the task%s already ended\n",
		    n == 1 ? " has" : "s have");
	else
		printf("Killed %" PRIu64 " task%s (USER_KILLED%s)\n", killed,
		    killed == 1 ? "" : "s", recursive ? ", descendants "
		    "included" : "; waiting descendants become PARENT_KILLED");
	copal__reply__free_unpacked(rep, NULL);
out:
	cpl_client_close(c);
	filt_free(&f);
	cli_parse_free(&p);
	return rc;
}
