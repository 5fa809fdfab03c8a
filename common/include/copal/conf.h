// The settings of a copal database: a strict reader of DB/copal.conf.
//
// The file is UTF-8 text of lines, each one of
//   key = value      a setting (blanks around the key, '=' and the value
//                    are ignored; the value may be empty)
//   # text           a comment: '#' is the first non-blank character
//   (blank)          an empty line or one of spaces and tabs
// and nothing else. Every line is checked, and the first fault fails the
// whole file with "PATH:LINE: what is wrong (what is allowed)":
//  * there are no end-of-line comments: a '#' anywhere in a setting line
//    is an error, so that `x = 5 # seconds` is never read as "5 # seconds"
//    nor silently as 5;
//  * a line is at most CPL_CONF_MAX_LINE bytes without its newline; a
//    trailing '\r' (a file written on Windows) is dropped, a UTF-8 byte
//    order mark at the very start is skipped;
//  * NUL bytes, control characters other than tab and invalid UTF-8 are
//    errors anywhere, comments included;
//  * keys are case-sensitive; an unknown key or a key given twice is an
//    error;
//  * numbers are plain decimal (no sign, no unit) within the setting's
//    range.
// Settings are read when a program starts; there is no reload.
#ifndef COPAL_CONF_H
#define COPAL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CPL_CONF_MAX_QUEUES 16
#define CPL_CONF_MAX_LINE 1023

// The policy of one scheduler queue (partition), from the keys
// queue.NAME.min_nodes, .max_nodes, .min_minutes, .max_minutes,
// .max_queued and .gpus_per_node. A queue exists once any of its keys
// appears; a key not given keeps its default (1, 1, 1, 60, 1, 0), and
// min_nodes <= max_nodes, min_minutes <= max_minutes must hold after
// defaults. NAME is 1..63 characters of [A-Za-z0-9._@+-].
typedef struct cpl_queue_policy {
	char name[64];                     // queue / partition name
	uint32_t min_nodes, max_nodes;     // node band of a job in this queue
	uint32_t min_minutes, max_minutes; // wall-time band
	uint32_t max_queued;    // at most this many jobs of this queue queued
	                        // or running at once (0: none)
	uint32_t gpus_per_node; // GPUs a node of this queue has (0: none)
} cpl_queue_policy;

typedef struct cpl_conf {
	char scheduler[16];      // local | slurm | pbs | cobalt (default local)
	// The job-script template: DB/job-templates/<scheduler>.tmpl when not
	// given or empty; a relative value is relative to DB. Absolute when
	// DB is.
	char job_template[4096];
	char broker_tcp[256];    // "" or [tls+]tcp://HOST:PORT (default "")
	// "true": broker_tcp may be plain tcp:// (default "false")
	char broker_tcp_insecure[8];
	// most TCP connections at once; 0 (default): from the fd budget
	uint32_t broker_max_connections;
	uint32_t lease_ttl_seconds;         // default 30, 2..86400
	// Longest a sbatch/squeue/scancel/qsub/qstat may take: default 30,
	// 1..3600.
	uint32_t scheduler_timeout_seconds;
	// The launcher stops this much before the job's wall time: default
	// 60, 0..3600.
	uint32_t wall_time_margin_seconds;
	// host launchers on other nodes dial for broker_tcp ("": its own,
	// or the broker host's address for a wildcard)
	char broker_advertise[256];
	// a job of more than one node while the broker has no TCP listener:
	// "refuse" (default) or "warn"
	char submit_without_tcp[8];
	char project[128];       // default -A / account ("" = none)
	char job_mode[8];        // the service's job mode: serial | mpi
	char wf_filter[128];     // the service's workflow filter ("" = all)
	uint32_t service_period_seconds;    // default 10, 1..86400
	// Jobs of all queues together that the service keeps queued or
	// running: default 3, 0..1000 (0: the service never submits).
	uint32_t service_max_queued_jobs;
	// Cancel a job still queued (not yet running) after this many
	// minutes: default 0 = never, 0..525600.
	uint32_t service_max_wait_minutes;
	// launchers' order of tasks of equal priority: fifo |
	// long_large_first (default fifo)
	char claim_order[20];
	// fast-failure relaunch: window (default 20, 0..86400; 0: off) and
	// exit codes ("" or "1,127": 1..255 by commas)
	uint32_t fast_fail_seconds;
	char fast_fail_codes[256];
	char task_uuids[8]; // "random" (default, version 4) | "time" (version 7)
	size_t nqueues;
	// In the order of the file: the service prefers earlier queues.
	cpl_queue_policy queues[CPL_CONF_MAX_QUEUES];
} cpl_conf;

// Fills *c with the defaults of every setting for the database in db
// (used for the default job_template; db may be NULL: the path is then
// relative, "job-templates/local.tmpl").
void cpl_conf_defaults(cpl_conf *c, const char *db);

// Fills *c with the defaults, then reads db/copal.conf over them. On any
// error *c holds just the defaults (never half a file) and err (if not
// NULL) a one-line message without a newline: "PATH:LINE: what is wrong
// (what is allowed)" for bad content, "PATH: reason" for a file that
// cannot be read. Reads nothing else and prints nothing.
// Errors: CPL_ENOTFOUND (no such file), CPL_EPERM (not readable),
// CPL_EINVAL (bad content, not a regular file, or larger than 1 MiB),
// CPL_ENOMEM, CPL_EIO.
int cpl_conf_load(const char *db, cpl_conf *c, char *err, size_t errlen);

// Writes the settings file that `copal init` makes: every setting with its
// default, each under a comment that says what it does and what it
// allows, and a commented example of a queue policy. cpl_conf_load reads
// it back as the defaults. Errors: CPL_EIO (fp could not be written).
int cpl_conf_write_default(FILE *fp);

// Parses a list of exit codes "1,2,127" (1..255, by commas; "" is empty)
// into a bit set (set may be NULL: only checks). Errors: CPL_EINVAL.
int cpl_code_list_parse(const char *s, uint8_t set[32]);

// The schedulers copal knows, NULL-terminated: local, slurm, pbs, cobalt.
extern const char *const cpl_schedulers[];
// Whether name is one of them.
bool cpl_scheduler_known(const char *name);

// The policy of queue name, or NULL. Valid as long as *c is.
const cpl_queue_policy *cpl_conf_queue(const cpl_conf *c, const char *name);

#ifdef __cplusplus
}
#endif
#endif // COPAL_CONF_H
