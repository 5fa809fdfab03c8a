// copal completion bash: a bash completion script made from the verb table
// (copal.c) and the verbs' option tables (the cli_opt arrays, the task
// spec's among them), so that it never lags behind them. The launcher's
// options are the launcher program's: the script asks `copal launcher
// --list-options` (its option table) for them when they are completed.
//
//   source <(copal completion bash)
//   copal completion bash > /etc/bash_completion.d/copal
#include <string.h>

#include "cli.h"
#include "copal/version.h"

const cli_opt completion_opts[] = { { NULL, 0, 0, NULL, NULL } };

// The words of a verb's options: --name (--name= for an optional
// argument) and -x for a short key; with_arg: only those that take an
// argument (for which the next word is a value, not an option).
static void
opt_words(FILE *fp, const cli_verb *v, bool with_arg)
{
	bool first = true;
	for (const cli_opt *const *t = v->opts; t && *t; t++) {
		for (const cli_opt *o = *t; o->name; o++) {
			if (with_arg && o->arg != OPT_ARG)
				continue;
			fprintf(fp, "%s--%s%s", first ? "" : " ", o->name,
			    o->arg == OPT_OPTARG ? "=" : "");
			first = false;
			if (o->key > ' ' && o->key < 127)
				fprintf(fp, " -%c", o->key);
		}
	}
}

static void
bash_script(FILE *fp)
{
	size_t n;
	const cli_verb *verbs = cli_verb_table(&n);
	fprintf(fp, "# bash completion of copal %s, made by `copal completion "
	    "bash`\n# from copal's verb and option tables. Enable it with\n"
	    "#   source <(copal completion bash)\n# or for everyone: copal "
	    "completion bash > /etc/bash_completion.d/copal\n\n",
	    COPAL_VERSION);
	fprintf(fp, "_copal_verbs=\"help");
	for (size_t i = 0; i < n; i++)
		fprintf(fp, " %s", verbs[i].name);
	fprintf(fp, "\"\n\n# _copal_opts VERB [arg]: its options (arg: those "
	    "taking a value)\n_copal_opts() {\n\tcase $1 in\n");
	for (size_t i = 0; i < n; i++) {
		if (verbs[i].exec == cmd_launcher) {
			// the options are copal-launcher's
			fprintf(fp, "\t%s) command \"${COMP_WORDS[0]}\" "
			    "launcher --list-options 2>/dev/null | while read "
			    "-r o a; do [[ $2 && $a == 0 ]] || echo \"$o\"; "
			    "done ;;\n", verbs[i].name);
			continue;
		}
		fprintf(fp, "\t%s) [[ $2 ]] && echo \"", verbs[i].name);
		opt_words(fp, &verbs[i], true);
		fprintf(fp, "\" || echo \"");
		opt_words(fp, &verbs[i], false);
		fprintf(fp, "\" ;;\n");
	}
	fprintf(fp, "\tesac\n}\n\n");
	fprintf(fp,
	    "_copal() {\n"
	    "\tlocal cur=${COMP_WORDS[COMP_CWORD]} verb= i\n"
	    "\tCOMPREPLY=()\n"
	    "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	    "\t\tcase ${COMP_WORDS[i]} in\n"
	    "\t\t--db) ((i++)) ;;\n"
	    "\t\t-*) ;;\n"
	    "\t\t*) verb=${COMP_WORDS[i]}; break ;;\n"
	    "\t\tesac\n"
	    "\tdone\n"
	    "\tif [[ -z $verb ]]; then\n"
	    "\t\tif [[ ${COMP_WORDS[COMP_CWORD-1]} == --db ]]; then\n"
	    "\t\t\tCOMPREPLY=($(compgen -d -- \"$cur\"))\n"
	    "\t\telif [[ $cur == -* ]]; then\n"
	    "\t\t\tCOMPREPLY=($(compgen -W \"--db --help --version\" -- "
	    "\"$cur\"))\n"
	    "\t\telse\n"
	    "\t\t\tCOMPREPLY=($(compgen -W \"$_copal_verbs\" -- \"$cur\"))\n"
	    "\t\tfi\n"
	    "\t\treturn 0\n"
	    "\tfi\n"
	    "\tif [[ $verb == help ]]; then\n"
	    "\t\t((i == COMP_CWORD - 1)) &&\n"
	    "\t\t    COMPREPLY=($(compgen -W \"$_copal_verbs\" -- \"$cur\"))\n"
	    "\t\treturn 0\n"
	    "\tfi\n"
	    "\tlocal prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	    "\tif ((COMP_CWORD - 1 > i)) && [[ $prev == -* ]] &&\n"
	    "\t    [[ \" $(_copal_opts \"$verb\" arg) \" == *\" $prev \"* ]]; "
	    "then\n"
	    "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	    "\telif [[ $cur == -* ]]; then\n"
	    "\t\tCOMPREPLY=($(compgen -W \"$(_copal_opts \"$verb\")\" -- "
	    "\"$cur\"))\n"
	    "\telse\n"
	    "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	    "\tfi\n"
	    "\treturn 0\n"
	    "}\n"
	    "complete -F _copal copal\n");
}

int
cmd_completion(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	int k, rc;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (p.nargs != 1 || strcmp(p.argv[p.first], "bash") != 0) {
		rc = cli_usage("give the shell: copal completion bash");
		goto out;
	}
	bash_script(stdout);
out:
	cli_parse_free(&p);
	return rc;
}
