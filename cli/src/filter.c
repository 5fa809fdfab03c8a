// Task filters from command-line options, shared by ls, modify, rm,
// killjob, export and stats. The broker insists that a filter selecting every task says so
// (--all).
#include <stdlib.h>
#include <string.h>

#include "copal/params.h"
#include "cli.h"

enum {
	KEY_STATE = 300, KEY_WF, KEY_NAME, KEY_ID, KEY_APP, KEY_MIN_NODES,
	KEY_MAX_NODES, KEY_ALL, KEY_TAG, KEY_BATCH_JOB,
};

const cli_opt filter_opts[] = {
	{ "state", 's', OPT_ARG, "STATE",
	    "tasks in this state (repeat, or STATE,STATE...)" },
	{ "wf", 'w', OPT_ARG, "WORKFLOW", "tasks of this workflow" },
	{ "workflow", KEY_WF, OPT_ARG, "WORKFLOW", "same as --wf" },
	{ "name", KEY_NAME, OPT_ARG, "NAME", "tasks with this exact name" },
	{ "id", KEY_ID, OPT_ARG, "PREFIX", "tasks whose uuid starts with PREFIX" },
	{ "app", KEY_APP, OPT_ARG, "APP", "tasks of this application" },
	{ "min-nodes", KEY_MIN_NODES, OPT_ARG, "N", "tasks with num_nodes >= N" },
	{ "max-nodes", KEY_MAX_NODES, OPT_ARG, "N", "tasks with num_nodes <= N" },
	{ "tag", KEY_TAG, OPT_ARG, "K=V", "tasks tagged K=V (repeat: all of "
	    "them)" },
	{ "batch-job", KEY_BATCH_JOB, OPT_ARG, "ID",
	    "tasks that ran in batch job ID (copal ls queues)" },
	{ "all", KEY_ALL, OPT_NOARG, NULL, "every task (needed when no other "
	    "filter is given)" },
	{ NULL, 0, 0, NULL, NULL },
};

void
filt_init(filt *f)
{
	memset(f, 0, sizeof(*f));
	copal__filter__init(&f->f);
}

void
filt_free(filt *f)
{
	free(f->ids);
	f->ids = NULL;
	f->nids = 0;
	free(f->tags);
	f->tags = NULL;
	f->ntags = 0;
}

static int
add_states(filt *f, const char *arg)
{
	char *copy = xstrdup(arg), *save = NULL;
	for (char *tok = strtok_r(copy, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		cpl_state s = cpl_state_parse(tok);
		if (s == CPL_STATE_NONE) {
			char list[512];
			size_t n = 0;
			for (int i = 1; i < CPL_NSTATES; i++)
				n += (size_t)snprintf(list + n, sizeof(list) - n,
				    "%s%s", i > 1 ? " " : "", cpl_state_name(i));
			free(copy);
			return cli_usage("--state: unknown state %s; states are: "
			    "%s", tok, list);
		}
		bool dup = false;
		for (size_t i = 0; i < f->f.n_states; i++)
			dup |= f->states[i] == (Copal__TaskState)s;
		if (!dup)
			f->states[f->f.n_states++] = (Copal__TaskState)s;
	}
	free(copy);
	return 0;
}

int
filt_opt(filt *f, int key, const char *arg, int *rc)
{
	*rc = 0;
	switch (key) {
	case 's':
	case KEY_STATE:
		*rc = add_states(f, arg);
		break;
	case 'w':
	case KEY_WF:
		f->f.workflow = (char *)arg;
		break;
	case KEY_NAME:
		f->f.name = (char *)arg;
		break;
	case KEY_ID:
		if (!is_uuid_prefix(arg))
			*rc = cli_usage("--id: %s is not a uuid prefix (hex "
			    "digits)", arg);
		f->f.uuid_prefix = (char *)arg;
		break;
	case KEY_APP:
		f->f.application = (char *)arg;
		break;
	case KEY_MIN_NODES:
		*rc = cli_u32("--min-nodes", arg, &f->f.min_nodes);
		break;
	case KEY_MAX_NODES:
		*rc = cli_u32("--max-nodes", arg, &f->f.max_nodes);
		break;
	case KEY_ALL:
		f->f.all = 1;
		break;
	case KEY_TAG: {
		char why[200];
		if (cpl_tag_check(arg, why, sizeof(why)) != 0) {
			*rc = cli_usage("--tag: %s", why);
			break;
		}
		if (f->ntags == CPL_TAGS_MAX) {
			*rc = cli_usage("--tag: at most %u", CPL_TAGS_MAX);
			break;
		}
		f->tags = xrealloc(f->tags, (f->ntags + 1) * sizeof(char *));
		f->tags[f->ntags++] = (char *)arg;
		break;
	}
	case KEY_BATCH_JOB: {
		uint32_t v = 0;
		*rc = cli_u32("--batch-job", arg, &v);
		if (*rc == 0 && v == 0)
			*rc = cli_usage("--batch-job: batch job ids start at 1");
		f->f.batch_job_id = v;
		break;
	}
	default:
		return 0;
	}
	f->set = true;
	return 1;
}

int
filt_add_id(filt *f, uint64_t id)
{
	f->ids = xrealloc(f->ids, (f->nids + 1) * sizeof(uint64_t));
	f->ids[f->nids++] = id;
	f->set = true;
	return 0;
}

Copal__Filter *
filt_wire(filt *f)
{
	f->f.states = f->f.n_states ? f->states : NULL;
	f->f.ids = f->ids;
	f->f.n_ids = f->nids;
	f->f.tags = f->tags;
	f->f.n_tags = f->ntags;
	return &f->f;
}

void
filt_describe(const filt *f, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
#define ADD(...)                                                         \
	do {                                                             \
		if (n < len)                                             \
			n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__); \
	} while (0)
	if (f->nids)
		ADD("%s%zu given task%s", n ? ", " : "", f->nids,
		    f->nids == 1 ? "" : "s");
	for (size_t i = 0; i < f->f.n_states; i++)
		ADD("%s%s", i ? "|" : n ? ", state " : "state ",
		    cpl_state_name(f->states[i]));
	if (f->f.workflow && f->f.workflow[0])
		ADD("%sworkflow %s", n ? ", " : "", f->f.workflow);
	if (f->f.name && f->f.name[0])
		ADD("%sname %s", n ? ", " : "", f->f.name);
	if (f->f.application && f->f.application[0])
		ADD("%sapp %s", n ? ", " : "", f->f.application);
	if (f->f.uuid_prefix && f->f.uuid_prefix[0])
		ADD("%sid %s...", n ? ", " : "", f->f.uuid_prefix);
	if (f->f.min_nodes)
		ADD("%snum_nodes >= %u", n ? ", " : "", f->f.min_nodes);
	if (f->f.max_nodes)
		ADD("%snum_nodes <= %u", n ? ", " : "", f->f.max_nodes);
	for (size_t i = 0; i < f->ntags; i++)
		ADD("%stag %s", n ? ", " : "", f->tags[i]);
	if (f->f.batch_job_id)
		ADD("%sbatch job %llu", n ? ", " : "",
		    (unsigned long long)f->f.batch_job_id);
	if (n == 0)
		ADD("all tasks");
#undef ADD
}
