// copal's batch-scheduler library: how copal submits, watches and cancels
// launcher jobs on Slurm, PBS, Cobalt, or this machine ("local": no
// scheduler, the job script runs at once in its own session), the batch-job
// records it keeps in the broker, and the service that sizes the jobs to
// the backlog. The job-script templates are in copal/tmpl.h.
//
// Every scheduler command runs with a time limit (copal.conf's
// scheduler_timeout_seconds): a command that hangs is killed with its whole
// process group and reported as timed out, never waited on forever. Its
// output is read in full (up to SCHED_OUT_MAX) and parsed defensively: a line
// that does not parse is counted and skipped, never trusted.
//
// The library prints nothing: what it has to say goes through the
// program's sched_say_fn, failures come back as text in a why buffer. Out of
// memory goes to the program's handler (copal/xalloc.h; the allocations
// are small).
#ifndef COPAL_SCHED_H
#define COPAL_SCHED_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copal.pb-c.h"
#include "copal/client.h"
#include "copal/conf.h"

#define SCHED_OUT_MAX (1u << 20)

// ------------------------------------------------------------ commands

// What one command did.
typedef struct sched_cmd {
	int status;        // exit status, or -1 (signal, timeout, no start)
	bool timed_out;
	int spawn_errno;   // non-zero: the command could not start
	char *out;         // standard output (NUL-terminated, malloc'd)
	char *err;         // standard error
	double seconds;    // how long it took
} sched_cmd;

// Runs argv (argv[0] looked up in PATH) with stdin from /dev/null, in a new
// session. Kills the session after timeout_s. Returns 0 when it ran and
// exited 0, else -1 (see *r). Free r with sched_cmd_free.
int sched_exec(char *const argv[], unsigned timeout_s, sched_cmd *r);
void sched_cmd_free(sched_cmd *r);
// One line describing a failed command, its error output included:
// "sbatch exited 1: sbatch: error: invalid partition specified: nope".
void sched_cmd_explain(const char *name, const sched_cmd *r, char *buf,
    size_t len);

// ------------------------------------------------------------ schedulers

// A scheduler: its name and what copal runs for it.
typedef struct sched_ops sched_ops;
const sched_ops *sched_find(const char *name);
const char *sched_name(const sched_ops *s);

// Submits script; flags are extra words for the submit command (split on
// blanks; no shell). On success writes the scheduler's job id to id.
// output: the file the local scheduler writes the script's output to.
// On failure writes the reason (the scheduler's own words) to why.
int sched_submit(const sched_ops *s, const char *script, const char *output,
    const char *flags, unsigned timeout_s, char *id, size_t idlen,
    char *why, size_t whylen);

// A job's state as the scheduler tells it.
typedef struct sched_state {
	const char *id;                // in: the scheduler id
	const char *script;            // in: the job script (local: checked
	                               // against the process, pid reuse)
	Copal__BatchJobState state;    // out: QUEUED, RUNNING, FINISHED, or
	                               // UNSPECIFIED when unknown this time
	char word[32];                 // out: the scheduler's word
	char reason[128];              // out: its longer words, if any
	                               // (squeue's reason; local: the pid)
} sched_state;

// Asks the scheduler about jobs v[0..n). A job the scheduler no longer
// lists is FINISHED, unless the answer could not be read completely (then
// it stays UNSPECIFIED). Returns 0, or -1 with why filled when the status
// command failed (every state stays UNSPECIFIED).
int sched_status(const sched_ops *s, sched_state *v, size_t n,
    unsigned timeout_s, char *why, size_t whylen);

// copal queue rm: cancels batch job id (scancel, qdel; local: SIGTERM
// to the job's session, SIGKILL if it outlives the scheduler timeout)
// and waits until the scheduler no longer runs it; then records it
// CANCELLED, which makes the broker end the leases its launchers left,
// so their tasks run elsewhere. A job still listed after the timeout
// keeps its state with a note (a later sync ends it).
// Errors (why filled): CPL_ENOTFOUND (no such job), CPL_EBADSTATE (the
// job has ended, or was never submitted: nothing to cancel),
// CPL_ETIMEOUT (still running after the timeout), CPL_EIO (the cancel
// command failed), errors of the broker.
int sched_job_cancel(cpl_client *c, const cpl_conf *conf, uint64_t id,
    Copal__BatchJob **out, char *why, size_t wl);

// Asks the scheduler to cancel (or, local: SIGTERM) a job.
int sched_cancel(const sched_ops *s, const char *id, unsigned timeout_s,
    char *why, size_t whylen);

// Parsers, exposed for the unit test. Each fills v[i].state/word for the
// jobs named in text; returns the number of lines it could not read.
size_t sched_parse_slurm(const char *text, sched_state *v, size_t n);
size_t sched_parse_pbs(const char *text, sched_state *v, size_t n);
size_t sched_parse_cobalt(const char *text, sched_state *v, size_t n);
// The job id in a submit command's output ("123", "123;cluster",
// "123.server"), or -1.
int sched_parse_submit(const char *sched, const char *text, char *id,
    size_t len);

// ------------------------------------------------------------ batch jobs

// Where the longer operations (sync, launch, the service) say what they
// did or what the user should know: a line without newline, printf-style.
typedef void (*sched_say_fn)(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

// "QUEUED" for BJ_QUEUED: the schema's name without its prefix; "?" for a
// value the schema does not know.
const char *sched_job_state_name(Copal__BatchJobState s);

// The batch jobs the broker records (active_only: those SUBMITTING, QUEUED
// or RUNNING). Returns 0 and *rep (free with copal__reply__free_unpacked),
// or a copal error code with why filled (the broker's words, or why it did
// not answer).
int sched_job_list(cpl_client *c, bool active_only, Copal__Reply **rep,
    char *why, size_t wl);

// Brings the states of the active batch jobs up to date with their
// schedulers, saying each change through say. A scheduler that fails or
// hangs leaves its jobs as they were (said once per call); a job whose
// submission was cut off (no scheduler id long after it began) becomes
// SUBMIT_FAILED. Returns 0, or a copal error code when the jobs could not
// be listed (said too).
int sched_sync(cpl_client *c, const cpl_conf *conf, sched_say_fn say);

// Asks the broker for the runnable backlog (of workflow wf; NULL or "": all)
// against conf's queues, naming at most max_ids tasks that fit none.
// Returns 0 and *rep (rep->backlog; free with copal__reply__free_unpacked),
// or a copal error code with why filled.
int sched_backlog(cpl_client *c, const cpl_conf *conf, const char *wf,
    uint32_t max_ids, Copal__Reply **rep, char *why, size_t wl);

// The sentence about the runnable tasks of b that no queue of conf's policy
// can run (more nodes, GPUs or wall time than any allows), naming the first
// few (asked from the broker through c; left out if it does not answer).
void sched_unfit_text(cpl_client *c, const cpl_conf *conf,
    const Copal__BacklogReply *b, char *out, size_t len);

// ------------------------------------------------------------ launch

// One launcher job to submit. Strings may be NULL ("" for the record)
// except job_mode and origin.
typedef struct sched_launch_req {
	const char *project, *queue, *job_mode, *wf_filter, *flags, *origin;
	uint32_t nodes, minutes;
} sched_launch_req;

// Checks r against conf and what job scripts can take: NULL when it is
// good, else the reason (static text, or written into b).
const char *sched_launch_check(const cpl_conf *conf,
    const sched_launch_req *r, char *b, size_t len);

// Records, renders and submits one launcher job for the database db. The
// record is made first (its id names the script, db/qsubmit/qlaunch<id>.sh),
// the script rendered from conf's job template, then handed to the
// scheduler. A database without its default template gets it back (said
// through warn). Returns 0 and *out (the record as it stands after the
// submission, to free with copal__batch_job__free_unpacked), or a copal
// error code with why; a job refused by the scheduler stays recorded in
// SUBMIT_FAILED (*out is set then too, when the broker answered).
int sched_launch(cpl_client *c, const char *db, const cpl_conf *conf,
    const sched_launch_req *r, sched_say_fn warn, Copal__BatchJob **out,
    char *why, size_t wl);

// ------------------------------------------------------------ sizing

// The backlog against the jobs that serve it.
typedef struct sched_load {
	uint64_t need;   // nodes the backlog needs (its node units, rounded up)
	uint64_t have;   // nodes of the jobs queued or running
	size_t njobs;    // jobs queued or running
	size_t active[CPL_CONF_MAX_QUEUES]; // of those, in each queue of the
	                                    // policy (in conf's order)
} sched_load;

// Counts the load: node_units from the backlog, the active jobs of l.
void sched_load_count(const cpl_conf *conf, uint64_t node_units,
    const Copal__BatchJobListReply *l, sched_load *ld);

typedef enum sched_size {
	SCHED_SIZE_DONE,   // enough nodes, or the service's maximum of jobs
	SCHED_SIZE_FULL,   // more nodes needed, but every queue is full
	SCHED_SIZE_SUBMIT, // submit a job of *nodes to *q
} sched_size;

// The next job for the load: to the first queue of the policy with room,
// and among those the first that fits the largest task (largest nodes)
// if any does; as many nodes as are missing, within the queue's band, and
// no fewer than the largest task needs when the queue allows.
sched_size sched_size_next(const cpl_conf *conf, const sched_load *ld,
    uint32_t largest, const cpl_queue_policy **q, uint32_t *nodes);

// Counts a job of nodes just submitted to q (from conf's policy).
void sched_load_add(const cpl_conf *conf, sched_load *ld,
    const cpl_queue_policy *q, uint32_t nodes);

// Whether job j (of the service, still QUEUED) waited longer than conf's
// service_max_wait_minutes at now_us (wall-clock microseconds): the service
// cancels it.
bool sched_size_stale(const cpl_conf *conf, const Copal__BatchJob *j,
    uint64_t now_us);

// ------------------------------------------------------------ service

// The service of one database: each round syncs the job states, cancels
// its jobs that waited too long, and submits jobs for the backlog
// (sizing above). After a failed submission it waits before the next.
typedef struct sched_service sched_service;

// One service per database: takes an exclusive lock on db/service.lock,
// held while the process lives (the kernel drops it when the process
// dies), and writes the pid there. Returns 0 and the lock's descriptor in
// *fd (close it to let go), or -1 with why ("a copal service already runs
// for DB (pid N)", or the system's error).
int sched_service_lock(const char *db, int *fd, char *why, size_t wl);

// A service over the broker c for db with settings conf (all kept, not
// copied: they outlive the service). period: seconds between rounds (the
// base of the back-off). log: what each round did; warn: notices for the
// user (a default template written back). A round stops submitting once
// *stop is set (a signal handler may set it).
sched_service *sched_service_new(cpl_client *c, const char *db,
    const cpl_conf *conf, unsigned period, sched_say_fn log,
    sched_say_fn warn, const volatile sig_atomic_t *stop);
void sched_service_round(sched_service *s);
void sched_service_free(sched_service *s);

#endif // COPAL_SCHED_H
