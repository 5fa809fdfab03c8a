// Internals of the launcher's loop and the files it calls into (not for
// main.c or the comm thread). Layering, each only calling those below it:
//
//   launcher.c  the loop: signals, timers, claims' pacing, ending
//   claim.c     capacity, claims, placing claimed tasks on nodes
//   task.c      the per-task state machine and the reports it queues
//   stages.c    what a stage does: directories, files, starting processes
//   spawn.c     processes: spawn, kill a task's group, reap
//   (logging: the common logger, copal/log.h)
//
// (task.c gives resources back through claim.c; claim.c never starts a
// task: it hands placed tasks back to the loop, which starts them.)
#ifndef COPAL_LAUNCHER_IMPL_H
#define COPAL_LAUNCHER_IMPL_H

#include <limits.h>

#include "copal/log.h"
#include "launcher.h"

#define MAX_TASKS 65536
// at most this much of a task's output goes into a failure's message
#define TAIL_BYTES 2048

// Where a task is in the launcher's hands.
enum stage {
	ST_NEW,      // claimed, nothing done yet
	ST_PRE,      // preprocess running
	ST_RUN,      // the application running
	ST_POST,     // postprocess running
	ST_HANDLER,  // error or timeout handler running
	ST_DONE,     // reported final for this launcher; slot to free
};

typedef struct ltask {
	Copal__ClaimedTask *ct; // owned copy of the claim
	uint64_t id;
	uint32_t attempt;
	const char *name;       // points into ct
	char uuid[37];
	enum stage stage;
	pid_t pid;              // process group leader of the current stage
	uint32_t gslot;         // its slot in the guard's table + 1; 0: none
	uint64_t claimed_us;    // when the claim reply arrived
	uint64_t run_start_us;
	long long out_from;     // size of the output file when the current
	                        // stage started: its own output's tail
	bool out_new;           // the directory was just made: no output yet
	int after;              // state the handler decides from
	bool killed;            // a kill notice arrived
	bool cut;               // cut off by the wall-time limit
	bool queued;            // claimed ahead, waiting for a free slot
	bool held;              // placed, waiting for the lease's renewal
	// placement
	uint32_t *nodes;        // indexes into the launcher's node table
	size_t nnodes;
	uint32_t units;         // per node, in 1/CPL_NODE_PARTS of a node
	uint32_t gpus;          // per node
	char gpu_list[256];     // CUDA_VISIBLE_DEVICES
	int slot;               // on its first node; -1: none yet
	uint32_t fast_restarts; // fast-failure relaunches so far
	// last: claim_adopt zeroes what comes before (not 11 kB per task)
	char workdir[5200];     // absolute
	char outpath[5600];
} ltask;

#define MAX_SLOTS 1024

typedef struct lnode {
	char *name;
	uint8_t *slot_busy;     // MAX_SLOTS entries, made when first needed
	uint32_t free_units;
	uint32_t ngpus;
	uint8_t gpu_busy[64];
} lnode;

// The launcher's state: one per process, owned by the loop (launcher.c),
// passed to the other files as `L`.
typedef struct launcher {
	const launcher_opts *o;
	cpl_client *c;
	cpl_client *cc;             // claims' (comm.c's claim thread)
	comm *cm;
	bool claim_inflight;
	bool claim_all;             // the last claim offered every node: it
	                            // was sent while no task ran
	uint64_t lease;             // for logs; comm owns the lease
	nodelist nl;
	lnode *nodes;
	size_t nnodes;
	ltask **tasks;              // MAX_TASKS entries
	size_t ntasks;
	struct report *reps;        // queued this turn (task.c)
	size_t nreps, capreps;
	int sigfd;
	uint64_t start_us, deadline_us, last_busy_us, next_claim_us;
	uint64_t claim_sent_us;     // when the claim in flight was asked for
	// the lease is confirmed until lease_until_us by a renewal sent at
	// lease_sent_us; after a stall only one sent after confirm_after_us
	// counts (launcher.c: lease_ok)
	uint64_t lease_sent_us, lease_until_us, confirm_after_us, prev_turn_us;
	bool told_packing;  // said once why fewer tasks run than asked
	bool stopping;      // no more claims
	bool cutting;       // wall-time: SIGTERM sent, waiting for the grace
	const char *cut_why;
	uint64_t kill_at_us;
	char self_hosts[8192];
	uint64_t started, finished;
	char db[PATH_MAX];
} launcher;

// ---------------------------------------------------------------- log
// The common logger (copal/log.h) on stderr, one line per message:
// "HH:MM:SS.mmm launcher LEVEL message" (UTC). launcher_run sets it up.

enum {
	LL_ERR = CPL_LOG_ERR,
	LL_WARN = CPL_LOG_WARN,
	LL_NOTICE = CPL_LOG_NOTICE,
	LL_INFO = CPL_LOG_INFO,
	LL_DEBUG = CPL_LOG_DEBUG
};

#define logm(level, ...) CPL_LOG((level), NULL, __VA_ARGS__)

// ---------------------------------------------------------------- spawn.c

// Starts `cmd` through /bin/sh (or directly, when no shell is needed) in
// the task's directory, output appended to its .out file, in a new
// session (its own process group), with default signal handling; extra1
// and extra2 (NULL or NAME=value) are added to its environment, and for
// any stage but the run (extra1 set) COPAL_LEASE_ID, the credential of
// `copal modify --lease` on its own task. Sets t->pid and t->out_from.
// Returns 0 or an errno (ENOENT: the program is not there).
int proc_spawn(launcher *L, ltask *t, const char *cmd, const char *extra1,
    const char *extra2);
// Moves the descriptors inherited above 63 down (see spawn.c). Call
// before anything else opens a descriptor.
void proc_fds_compact(void);
// Starts the guard that kills the task processes still running when the
// launcher ends (SIGKILL included). Call before any thread exists.
// Returns 0 or an errno.
int proc_guard_start(void);
// Sends sig to the process group of the task's current stage, if any.
void proc_kill(ltask *t, int sig);
// Reaps one ended child of a task (WNOHANG): returns the task and its
// wait status, or NULL when no child has ended. Children of no task are
// reaped and skipped.
ltask *proc_reap(launcher *L, int *status);

// ---------------------------------------------------------------- stages.c

// Sets the task's working directory and output path and makes the
// directory. Returns 0, -1 for a working directory that cpl_workdir
// refuses, or the errno of making it (the output path is then /dev/null).
int stage_workdir(launcher *L, ltask *t);
// Stage in: copies stage_in_url's files into the working directory and
// links the parents' outputs that match input_files (a name taken gets
// the parent's uuid prefix: NAME_<uuid8>, one line in note each); *did
// tells whether anything came in. Returns 0, or -1 with a message in err.
int stage_in(launcher *L, ltask *t, char *err, size_t errlen, bool *did,
    char *note, size_t notelen);
// Stage out: copies files matching stage_out_files to stage_out_url (none:
// they stay in the working directory).
// Returns 0, or -1 with a message in err.
int stage_out(ltask *t, char *err, size_t errlen);
// The task's preprocess and postprocess (its own, or else its app's; may
// be empty).
const char *task_preprocess(const ltask *t);
const char *task_postprocess(const ltask *t);
// The application's command line (the task's direct command, or else its
// app's executable: a parameterized app's template rendered with the
// task's values; with its args), through the MPI starter where needed
// (with the task's launch parameters). Returns 0, -1 for an MPI template
// that does not render, -2 for an app template that does not.
int stage_command(launcher *L, ltask *t, char *cmd, size_t len);
// Start the task's preprocess, application, postprocess or handler
// (error or timeout handler, as t->after says: COPAL_ERROR=1 or
// COPAL_TIMED_OUT=1 in its environment). Return 0 or an errno.
int stage_start_pre(launcher *L, ltask *t);
int stage_start_run(launcher *L, ltask *t, const char *cmd);
int stage_start_post(launcher *L, ltask *t);
int stage_start_handler(launcher *L, ltask *t);
// The last lines of a task's output since its current stage started, for
// the history message.
void output_tail(ltask *t, char *buf, size_t len);

// ---------------------------------------------------------------- claim.c

// Asks the comm thread for as much work as fits the free capacity;
// returns whether a claim is now in flight.
// wait_ms: how long the broker may hold it when nothing is runnable.
bool claim_ask(launcher *L, uint32_t wait_ms);
// Makes a task of a claimed one, placed on the nodes the broker chose
// (or queued, when claimed ahead), and adds it to L->tasks; the caller
// starts it unless it is queued. Takes ownership of ct.
// Errors: CPL_ENOMEM, CPL_EPROTO.
int claim_adopt(launcher *L, Copal__ClaimedTask *ct, ltask **out);
// Places the next queued task, from L->tasks[*from] on, that fits a node
// now, for the caller to start; NULL when none (claim order is kept: the
// first that does not fit stops the search).
ltask *claim_next_queued(launcher *L, size_t *from);
// Gives a task's slot, units and GPUs back.
void claim_give_back(launcher *L, ltask *t);

// ---------------------------------------------------------------- fit.c
// (with a client of its own: the comm thread owns L->c)

// Adds this launcher's shape to the database's launchers (copal ls).
void fit_note_shape(launcher *L);
// Logs a warning when runnable tasks fit none of this launcher's nodes
// (nodes, GPUs per node, wall time left): how many, the largest request,
// what it has; `when` starts the line.
void fit_warn_unfit(launcher *L, const char *when);

// ---------------------------------------------------------------- reread.c

// After a preprocess: replaces the task's spec by the one the broker has
// now (what the preprocess changed with `copal modify --lease`), keeping
// the claim's placement (nodes, packing, GPUs). On failure the claimed
// spec stays, with a warning. One query.
void task_reread(launcher *L, ltask *t);
// Closes reread's client (at the launcher's end).
void task_reread_close(void);

// ---------------------------------------------------------------- task.c

// Takes a placed task through stage in and preprocess to its run.
void task_start(launcher *L, ltask *t);
// A process of the task ended with this wait status.
void task_exited(launcher *L, ltask *t, int status);
// Kill notices from the broker: stop the tasks' process groups.
void task_kill_notices(launcher *L, const uint64_t *ids, size_t n);
// The lease is gone: stop every process without reporting, and drop the
// reports not yet handed over.
void task_drop_all(launcher *L, const char *why);
// The launcher stops (wall time, SIGTERM): SIGTERM every task's group;
// cut tasks are reported RUN_TIMEOUT.
void task_cut_all(launcher *L);
// Timeouts of running tasks, and SIGKILL for what ignored a kill notice.
void task_check_timeouts(launcher *L, uint64_t now);
// Tasks not yet done.
size_t task_active(launcher *L);
// Frees the finished tasks.
void task_compact(launcher *L);
// Hands the reports of this turn to the comm thread (one request).
void task_flush_reports(launcher *L);

#endif
