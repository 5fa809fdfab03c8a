// libFuzzer harness of the job-script template renderer (sched/src/tmpl.c):
// an input is a template's text, rendered with the variables that
// copal submit-launch passes (sched/src/launch.c).
//
// What must hold: a rendering that fails says why with its line
// ("LINE: ..."), in valid UTF-8 whatever bytes the template has; one that
// succeeds holds no "{{" (values here have no brace, and every "{{" of
// the text is either replaced or an error), so rendering it again changes
// nothing.
#include <stdlib.h>
#include <string.h>

#include "copal/tmpl.h"
#include "fuzz_util.h"

static const tmpl_var vars[] = {
	{ "job_name", "copal-db-7" }, { "qlaunch_id", "7" },
	{ "project", "" }, { "queue", "debug" },
	{ "nodes", "2" }, { "wall_minutes", "30" },
	{ "time_minutes", "30" }, { "wall_time_hms", "00:30:00" },
	{ "launcher_minutes", "29.00" }, { "job_mode", "serial" },
	{ "wf_filter_opt", "--consume-all" }, { "copal_bin", "/opt/copal/bin" },
	{ "db_path", "/home/u/db" }, { "output", "/home/u/db/qsubmit/q7.out" },
	{ "script", "/home/u/db/qsubmit/q7.sh" },
	{ "template", "/home/u/db/job-templates/slurm.tmpl" },
	{ NULL, "unnamed" }, { "nothing", NULL },
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], err2[512];
	char *text = malloc(size + 1);
	FZ_ASSERT(text != NULL, "out of memory");
	memcpy(text, data, size);
	text[size] = '\0';
	// a small err buffer too: the message is cut, never overrun
	char tiny[8];
	char *out = tmpl_render(text, vars, NVARS, tiny, sizeof(tiny));
	free(out);
	out = tmpl_render(text, vars, NVARS, err, sizeof(err));
	if (out == NULL) {
		char *end;
		FZ_ASSERT(strtoul(err, &end, 10) >= 1 && end[0] == ':',
		    "a failure without its line: \"%s\"", err);
		FZ_ASSERT(fz_utf8_ok(err, strlen(err), false),
		    "the message is not valid UTF-8: \"%s\"", err);
		free(text);
		return 0;
	}
	FZ_ASSERT(strstr(out, "{{") == NULL, "\"{{\" left in the rendering");
	char *again = tmpl_render(out, vars, NVARS, err2, sizeof(err2));
	FZ_ASSERT(again != NULL, "the rendering does not render: %s", err2);
	FZ_ASSERT(strcmp(again, out) == 0, "rendering twice changes it");
	free(again);
	free(out);
	free(text);
	return 0;
}
