// Applications: copal app, copal ls apps, copal rm app.
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "copal/params.h"
#include "cli.h"

enum {
	KEY_ANAME = 420, KEY_EXE, KEY_PRE, KEY_POST, KEY_ENVSCRIPT, KEY_ADESC,
	KEY_REPLACE, KEY_PARAM,
};

const cli_opt app_opts[] = {
	{ "name", KEY_ANAME, OPT_ARG, "NAME", "app name (required)" },
	{ "executable", KEY_EXE, OPT_ARG, "CMD",
	    "command line to run; task args are appended (required)" },
	{ "command", KEY_EXE, OPT_ARG, "CMD",
	    "same as --executable; may hold {{ NAME }} for a --param" },
	{ "param", KEY_PARAM, OPT_ARG, "NAME[=DEFAULT]",
	    "a parameter of the command: tasks give --param NAME=VALUE, "
	    "shell-quoted as one word at launch (repeat)" },
	{ "preprocess", KEY_PRE, OPT_ARG, "CMD",
	    "run in the task's directory before the app" },
	{ "postprocess", KEY_POST, OPT_ARG, "CMD",
	    "run in the task's directory after the app" },
	{ "envscript", KEY_ENVSCRIPT, OPT_ARG, "FILE",
	    "shell script sourced before the app runs" },
	{ "description", KEY_ADESC, OPT_ARG, "TEXT", "free text" },
	{ "replace", KEY_REPLACE, OPT_NOARG, NULL,
	    "replace an app of the same name" },
	{ NULL, 0, 0, NULL, NULL },
};

// An app's declared parameters as copal app takes them: "n=1 input"
// (NAME=DEFAULT, or NAME alone when every task must give a value),
// cut short if they do not fit.
static void
params_str(const Copal__App *a, char *pl, size_t cap)
{
	size_t pn = 0;
	pl[0] = '\0';
	for (size_t i = 0; i < a->n_params && pn < cap; i++)
		pn += (size_t)snprintf(pl + pn, cap - pn, "%s%s%s%s",
		    i ? " " : "", a->params[i]->name,
		    a->params[i]->has_default ? "=" : "",
		    a->params[i]->has_default ? a->params[i]->default_value : "");
}

static void
app_print(const Copal__App *a)
{
	char title[300];
	int n = snprintf(title, sizeof(title), "Application %s:", a->name);
	printf("%s\n", title);
	for (int i = 0; i < n; i++)
		putchar('-');
	putchar('\n');
	static const struct {
		const char *key;
		size_t off;
		bool always;
	} rows[] = {
		{ "name", offsetof(Copal__App, name), true },
		{ "description", offsetof(Copal__App, description), true },
		{ "executable", offsetof(Copal__App, executable), true },
		{ "preprocess", offsetof(Copal__App, preprocess), false },
		{ "postprocess", offsetof(Copal__App, postprocess), false },
		{ "envscript", offsetof(Copal__App, envscript), false },
	};
	char pl[4096];
	params_str(a, pl, sizeof(pl));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *v = *(char *const *)((const char *)a + rows[i].off);
		char key[32];
		snprintf(key, sizeof(key), "%s:", rows[i].key);
		if (v && *v)
			printf("%-32s%s\n", key, v);
		else if (rows[i].always)
			printf("%s\n", key);
	}
	if (a->n_params)
		printf("%-32s%s\n", "params:", pl);
	putchar('\n');
}

int
cmd_app(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	Copal__App app = COPAL__APP__INIT;
	Copal__AppParam *par = NULL, **parp = NULL;
	char why[300];
	bool replace = false;
	cpl_client *c = NULL;
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		switch (k) {
		case KEY_ANAME:
			app.name = (char *)arg;
			break;
		case KEY_EXE:
			app.executable = (char *)arg;
			break;
		case KEY_PRE:
			app.preprocess = (char *)arg;
			break;
		case KEY_POST:
			app.postprocess = (char *)arg;
			break;
		case KEY_ENVSCRIPT:
			app.envscript = (char *)arg;
			break;
		case KEY_ADESC:
			app.description = (char *)arg;
			break;
		case KEY_REPLACE:
			replace = true;
			break;
		case KEY_PARAM: {
			if (app.n_params == CPL_PARAMS_MAX) {
				rc = cli_usage("--param: at most %u",
				    CPL_PARAMS_MAX);
				goto out;
			}
			par = xrealloc(par, (app.n_params + 1) * sizeof(*par));
			Copal__AppParam *q = &par[app.n_params++];
			copal__app_param__init(q);
			// NAME=DEFAULT is cut in place (argv is ours)
			char *eq = strchr(arg, '=');
			q->name = (char *)arg;
			if (eq) {
				*eq = '\0';
				q->default_value = eq + 1;
				q->has_default = 1;
			}
			break;
		}
		default:
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if ((rc = cli_no_operands(&p)) != 0)
		goto out;
	if (app.name[0] == '\0' || app.executable[0] == '\0') {
		rc = cli_usage("an app needs --name and --executable");
		goto out;
	}
	if (strlen(app.name) > 255) {
		rc = cli_usage("--name: at most 255 bytes");
		goto out;
	}
	if (app.n_params) {
		parp = xcalloc(app.n_params, sizeof(*parp));
		for (size_t i = 0; i < app.n_params; i++)
			parp[i] = &par[i];
		app.params = parp;
	}
	if (cpl_app_params_check(&app, why, sizeof(why)) != 0) {
		rc = cli_usage("%s", why);
		goto out;
	}
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	Copal__Reply *rep;
	if ((rc = cli_call_rc(c, cpl_call_app_register(c, &app, replace,
	         &rep))) != 0) {
		if (!replace)
			fprintf(stderr, "(to change an app, add --replace)\n");
		goto out;
	}
	copal__reply__free_unpacked(rep, NULL);
	app_print(&app);
	printf(replace ? "Added or replaced app in database\n" :
	                 "Added app to database\n");
out:
	free(parp);
	free(par);
	cpl_client_close(c);
	cli_parse_free(&p);
	return rc;
}

int
ls_apps(out_fmt fmt)
{
	cpl_client *c = NULL;
	Copal__Reply *rep;
	int rc;
	if ((rc = cli_connect(&c)) != 0)
		return rc;
	if ((rc = apps_fetch(c, &rep)) != 0) {
		cpl_client_close(c);
		return rc;
	}
	const Copal__AppListReply *al = rep->app_list;
	if (fmt == FMT_JSON || fmt == FMT_JSONL) {
		jout *j = json_open(fmt, stdout);
		for (size_t i = 0; i < al->n_apps; i++) {
			const Copal__App *a = al->apps[i];
			json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
			    "name", a->name, "executable", a->executable,
			    "description", a->description, "preprocess",
			    a->preprocess, "postprocess", a->postprocess,
			    "envscript", a->envscript);
			if (a->n_params) {
				json_t *pv = json_object();
				for (size_t k = 0; k < a->n_params; k++)
					json_object_set_new(pv, a->params[k]->name,
					    a->params[k]->has_default ?
					    json_string(a->params[k]->default_value) :
					    json_null());
				json_object_set_new(o, "params", pv);
			}
			json_item(j, o);
		}
		json_close(j);
	} else {
		// params is the last column of each form (CSV readers keep
		// their column positions)
		static const tcol cols[] = { { "name", COL_STR },
			{ "executable", COL_STR }, { "description", COL_STR },
			{ "params", COL_STR } };
		static const tcol csv_cols[] = { { "name", COL_STR },
			{ "executable", COL_STR }, { "description", COL_STR },
			{ "preprocess", COL_STR }, { "postprocess", COL_STR },
			{ "envscript", COL_STR }, { "params", COL_STR } };
		bool csv = fmt == FMT_CSV;
		table *t = csv ? table_open(fmt, csv_cols, 7, stdout) :
		                 table_open(fmt, cols, 4, stdout);
		for (size_t i = 0; i < al->n_apps; i++) {
			const Copal__App *a = al->apps[i];
			char pl[4096];
			params_str(a, pl, sizeof(pl));
			const char *tab[] = { a->name, a->executable,
				a->description, pl };
			const char *all[] = { a->name, a->executable,
				a->description, a->preprocess, a->postprocess,
				a->envscript, pl };
			table_row(t, csv ? all : tab);
		}
		table_close(t);
	}
	copal__reply__free_unpacked(rep, NULL);
	cpl_client_close(c);
	return 0;
}

int
rm_app(const char *name)
{
	cpl_client *c = NULL;
	Copal__Reply *rep;
	int rc;
	if ((rc = cli_connect(&c)) != 0)
		return rc;
	if ((rc = cli_call_rc(c, cpl_call_app_delete(c, name, &rep))) == 0) {
		copal__reply__free_unpacked(rep, NULL);
		printf("Removed app %s\n", name);
	}
	cpl_client_close(c);
	return rc;
}
