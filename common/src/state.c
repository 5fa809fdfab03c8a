// The task state machine as data: which actor may move a task from which
// state to which. Everything that changes a task's state asks this table.
#include <stddef.h>
#include <strings.h>

#include "copal/common.h"

#define B CPL_BY_BROKER
#define L CPL_BY_LAUNCHER
#define U CPL_BY_USER

// rows: from; columns: to. 0 = never.
static const unsigned char table[CPL_NSTATES][CPL_NSTATES] = {
	[CPL_CREATED] = {
		[CPL_AWAITING_PARENTS] = B, [CPL_READY] = B,
		[CPL_PARENT_KILLED] = B, [CPL_USER_KILLED] = U,
	},
	[CPL_AWAITING_PARENTS] = {
		[CPL_READY] = B, [CPL_PARENT_KILLED] = B, [CPL_USER_KILLED] = U,
		[CPL_RESTART_READY] = U, // Balsam users reset by hand
	},
	[CPL_READY] = {
		[CPL_AWAITING_PARENTS] = B, [CPL_STAGED_IN] = L,
		[CPL_RUN_TIMEOUT] = L, // cut during its preprocess
		[CPL_PREPROCESSED] = L, [CPL_RUNNING] = L, [CPL_RUN_ERROR] = L,
		[CPL_FAILED] = L, [CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
		[CPL_RESTART_READY] = U, // Balsam users reset by hand
	},
	[CPL_STAGED_IN] = {
		[CPL_PREPROCESSED] = L, [CPL_RUNNING] = L, [CPL_RUN_ERROR] = L,
		[CPL_RUN_TIMEOUT] = L | B, [CPL_FAILED] = L,
		[CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
	},
	[CPL_PREPROCESSED] = {
		[CPL_RUNNING] = L, [CPL_RUN_ERROR] = L, [CPL_RUN_TIMEOUT] = L | B,
		[CPL_FAILED] = L, [CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
	},
	[CPL_RUNNING] = {
		[CPL_RUN_DONE] = L, [CPL_RUN_ERROR] = L, [CPL_RUN_TIMEOUT] = L | B,
		[CPL_FAILED] = L, [CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
	},
	[CPL_RUN_DONE] = {
		[CPL_POSTPROCESSED] = L, [CPL_JOB_FINISHED] = L,
		[CPL_RUN_ERROR] = L, [CPL_RUN_TIMEOUT] = L | B, [CPL_FAILED] = L,
		[CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
	},
	[CPL_POSTPROCESSED] = {
		[CPL_JOB_FINISHED] = L, [CPL_RUN_ERROR] = L,
		[CPL_RUN_TIMEOUT] = L | B, [CPL_FAILED] = L,
		[CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
	},
	[CPL_JOB_FINISHED] = {
		[CPL_RESTART_READY] = U,
	},
	// a handler may judge the run good enough (issue 22)
	[CPL_RUN_ERROR] = {
		[CPL_JOB_FINISHED] = L,
		[CPL_RESTART_READY] = L | B | U, [CPL_FAILED] = L | B | U,
		[CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
	},
	[CPL_RUN_TIMEOUT] = {
		[CPL_JOB_FINISHED] = L,
		[CPL_RESTART_READY] = L | B | U, [CPL_FAILED] = L | B | U,
		[CPL_USER_KILLED] = U, [CPL_PARENT_KILLED] = B,
	},
	// (RUN_TIMEOUT: the timeout handler a wall-time cut did not let run)
	[CPL_RESTART_READY] = {
		[CPL_AWAITING_PARENTS] = B, [CPL_STAGED_IN] = L,
		[CPL_RUN_TIMEOUT] = L,
		[CPL_PREPROCESSED] = L, [CPL_RUNNING] = L, [CPL_RUN_ERROR] = L,
		[CPL_FAILED] = L | B, [CPL_USER_KILLED] = U,
		[CPL_PARENT_KILLED] = B,
	},
	[CPL_FAILED] = {
		[CPL_RESTART_READY] = U,
	},
	[CPL_USER_KILLED] = {
		[CPL_RESTART_READY] = U,
	},
	[CPL_PARENT_KILLED] = {
		[CPL_RESTART_READY] = U,
	},
};

static const char *const state_names[CPL_NSTATES] = {
	[CPL_STATE_NONE] = "NONE",
	[CPL_CREATED] = "CREATED",
	[CPL_AWAITING_PARENTS] = "AWAITING_PARENTS",
	[CPL_READY] = "READY",
	[CPL_STAGED_IN] = "STAGED_IN",
	[CPL_PREPROCESSED] = "PREPROCESSED",
	[CPL_RUNNING] = "RUNNING",
	[CPL_RUN_DONE] = "RUN_DONE",
	[CPL_POSTPROCESSED] = "POSTPROCESSED",
	[CPL_JOB_FINISHED] = "JOB_FINISHED",
	[CPL_RUN_ERROR] = "RUN_ERROR",
	[CPL_RUN_TIMEOUT] = "RUN_TIMEOUT",
	[CPL_RESTART_READY] = "RESTART_READY",
	[CPL_FAILED] = "FAILED",
	[CPL_USER_KILLED] = "USER_KILLED",
	[CPL_PARENT_KILLED] = "PARENT_KILLED",
};

const char *
cpl_state_name(int state)
{
	if (state < 0 || state >= CPL_NSTATES)
		return NULL;
	return state_names[state];
}

cpl_state
cpl_state_parse(const char *name)
{
	if (name == NULL)
		return CPL_STATE_NONE;
	for (int s = 1; s < CPL_NSTATES; s++)
		if (strcasecmp(name, state_names[s]) == 0)
			return (cpl_state)s;
	return CPL_STATE_NONE;
}

bool
cpl_transition_allowed(cpl_state from, cpl_state to, cpl_actor actor)
{
	if ((unsigned)from >= CPL_NSTATES || (unsigned)to >= CPL_NSTATES)
		return false;
	return (table[from][to] & (unsigned)actor) != 0;
}

bool
cpl_state_is_final(cpl_state s)
{
	return s == CPL_JOB_FINISHED || s == CPL_FAILED ||
	    s == CPL_USER_KILLED || s == CPL_PARENT_KILLED;
}
