// copal launcher ...: runs the launcher program (copal-launcher) with the
// same arguments, like Balsam's `balsam launcher`.
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const cli_opt launcher_opts[] = { { NULL, 0, 0, NULL, NULL } };

int
cmd_launcher(const cli_verb *v, int argc, char **argv)
{
	char bin[PATH_MAX + 64];
	bool search;
	(void)v;
	cli_find_program("copal-launcher", "COPAL_LAUNCHER_BIN", "launcher", bin,
	    sizeof(bin), &search);
	char **args = xcalloc((size_t)argc + 3, sizeof(char *));
	int n = 0;
	args[n++] = bin;
	// a --db given before the verb goes along
	if (cli_db_opt) {
		args[n++] = (char *)"--db";
		args[n++] = (char *)cli_db_opt;
	}
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	fflush(stdout);
	// nothing of NNG is open yet: exec directly
	if (search)
		execvp(bin, args);
	else
		execv(bin, args);
	cli_err("cannot run %s: %s%s", bin, strerror(errno),
	    search ? " (not next to copal nor in PATH; set COPAL_LAUNCHER_BIN)" :
	             "");
	free(args);
	return EXIT_ERR;
}
