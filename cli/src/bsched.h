// Batch scheduler drivers: how copal submits, watches and cancels launcher
// jobs on Slurm, PBS, Cobalt, or this machine ("local": no scheduler, the
// job script runs at once in its own session).
//
// Every scheduler command runs with a time limit (copal.conf's
// scheduler_timeout_seconds): a command that hangs is killed with its whole
// process group and reported as timed out, never waited on forever. Its
// output is read in full (up to SCHED_OUT_MAX) and parsed defensively: a line
// that does not parse is counted and skipped, never trusted.
#ifndef COPAL_CLI_BSCHED_H
#define COPAL_CLI_BSCHED_H

#include <stdbool.h>
#include <stddef.h>

#include "copal.pb-c.h"

#define SCHED_OUT_MAX (1u << 20)

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
} sched_state;

// Asks the scheduler about jobs v[0..n). A job the scheduler no longer
// lists is FINISHED, unless the answer could not be read completely (then
// it stays UNSPECIFIED). Returns 0, or -1 with why filled when the status
// command failed (every state stays UNSPECIFIED).
int sched_status(const sched_ops *s, sched_state *v, size_t n,
    unsigned timeout_s, char *why, size_t whylen);

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

#endif
