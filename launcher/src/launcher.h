// Internal declarations of the launcher (not a public API).
#ifndef COPAL_LAUNCHER_H
#define COPAL_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "copal.pb-c.h"
#include "copal/client.h"
#include "copal/params.h"
#include "nodes.h"

enum job_mode { MODE_SERIAL, MODE_MPI };
// ClaimRequest.order
enum { ORDER_FIFO = 0, ORDER_LONG_LARGE_FIRST = 1 };

typedef struct launcher_opts {
	enum job_mode mode;
	const char *db_dir;
	const char *wf_filter;      // NULL: consume all
	char *tags[CPL_TAGS_MAX];   // --tag K=V: claim only tasks with all
	size_t ntags;               // of these (Balsam's filter_tags)
	double time_limit_min;      // 0: none
	double idle_ttl_s;          // exit after this long with nothing to do
	bool persistent;            // never exit for idleness
	uint32_t max_concurrent;    // tasks at once (serial) / launches (mpi)
	uint32_t gpus_per_node;
	size_t node_offset, node_limit;
	uint32_t lease_ttl_ms;
	double grace_s;             // SIGTERM -> SIGKILL
	const char *mpi_template;   // NULL: chosen from the environment
	const char *starter;        // openmpi | mpich | srun | aprun
	int log_level;
	uint32_t claim_order;       // ORDER_FIFO | ORDER_LONG_LARGE_FIRST
	// the batch job this launcher runs in ($COPAL_BATCH_JOB_ID and the
	// scheduler's $SLURM_JOB_ID, ...; 0 and NULL: started by hand)
	uint64_t bjob_id;
	const char *sched_job_id;
	// fast-failure relaunch: a start that fails within fast_fail_s
	// (0: never) by a signal, a failed exec or an exit code in the set
	// is started again, up to FAST_FAIL_RESTARTS times
	double fast_fail_s;
	uint8_t fast_fail_codes[32];
} launcher_opts;

#define FAST_FAIL_RESTARTS 3

// Renders an MPI starter command from a template. Placeholders: {ranks}
// {rpn} {nnodes} {tpr} {hosts} (comma list) {hostslots} (host:rpn,...)
// {cmd}. Returns 0, or CPL_EINVAL for an unknown placeholder, CPL_ETOOBIG.
int mpi_render(const char *tmpl, uint32_t ranks, uint32_t rpn,
    uint32_t nnodes, uint32_t tpr, char *const *hosts, const char *cmd,
    char *out, size_t outlen);
// The same with a task's launch parameters (nlp words, lparams may be NULL
// when 0): each goes in as one shell-quoted word just before {cmd}.
int mpi_render_lp(const char *tmpl, uint32_t ranks, uint32_t rpn,
    uint32_t nnodes, uint32_t tpr, char *const *hosts, const char *cmd,
    char *const *lparams, size_t nlp, char *out, size_t outlen);
// The default template of a starter name; NULL if unknown.
const char *mpi_template_for(const char *starter);

int launcher_run(const launcher_opts *o);
// A workflow filter that matches no task: says so on stderr, with the
// workflows there are, and returns CPL_ENOTFOUND; 0 when it matches (or
// the broker cannot be asked: launcher_run reports that). fit.c.
int fit_check_filter(const launcher_opts *o);

// ---------------------------------------------------------------- comm
// All traffic with the broker runs on one thread, so that the main loop
// never waits for a durable commit before refilling a slot.

struct report {
	uint64_t id;
	uint32_t attempt;
	int to;
	int rc;
	char *msg; // malloc'd or NULL
	char node[128]; // "host/slot"
	bool cut;       // RUN_TIMEOUT of the launcher's end, not a failure
	uint64_t event_us; // wall clock at the change (StateReport.event_us)
	char who[80];      // "uuid8 (name)" for messages
	bool restart;   // a fast-failure relaunch (StateReport.restart)
};

typedef struct comm comm;

typedef struct comm_claim {
	uint32_t max_tasks;
	uint32_t remaining_min;
	const char *workflow;      // NULL: any
	size_t n;
	const uint32_t *units;     // per offered node
	const uint32_t *gpus;
	uint32_t wait_ms;          // when nothing is runnable, the broker may
	                           // hold the claim this long (0: answer now)
	uint32_t max_task_nodes;   // the largest task this launcher can run
	                           // (its real nodes; 0: no bound)
} comm_claim_req;

// What the comm thread has for the main loop; arrays owned by the caller
// after comm_take (free with comm_events_free).
typedef struct comm_events {
	Copal__ClaimedTask **tasks; // claimed tasks, owned copies
	size_t ntasks;
	uint64_t *kills;            // kill notices
	size_t nkills;
	bool claim_answered;        // the claim in flight came back
	bool claim_failed;          // ... with an error (back off)
	bool lease_lost;            // tasks held so far are no longer ours
	bool job_ended;             // the broker says our batch job has
	                            // ended: no new lease (sticky)
	bool have_lease;
	uint64_t lease;
	bool lease_by_claim;        // it came with the first claim
	// the lease is the broker's until lease_until_us (our monotonic
	// clock): the renewal that confirmed it was sent at lease_sent_us
	uint64_t lease_sent_us, lease_until_us;
	size_t pending;             // reports not yet acknowledged
	bool refused;               // the broker refuses this launcher's
	                            // credential its role (stays set)
} comm_events;

// Starts the comm thread, which sends reports and heartbeats on c, and the
// claim thread, which sends claims on claims: a claim the broker holds
// open does not hold up the reports that may make tasks runnable. The
// lease comes with the first claim (or, failing that, a heartbeat).
// Errors: CPL_ENOMEM.
int comm_start(cpl_client *c, cpl_client *claims, const launcher_opts *o,
    comm **out);
// What went to the broker over the launcher's life.
typedef struct comm_counts {
	uint64_t reports;       // state reports taken by the broker
	uint64_t report_calls;  // ... in this many requests
	uint64_t claims;        // claims answered
	uint64_t heartbeats;    // leases asked for and renewals taken (a
	                        // report that renews the lease is not one)
} comm_counts;

// Sends what is queued, gives the lease back, stops the thread; counts
// (may be NULL) gets what was sent.
void comm_stop(comm *c, comm_counts *counts);
// Readable when comm_take has something.
int comm_fd(comm *c);
// Queues reports (ownership of messages moves to comm).
void comm_report(comm *c, struct report *r, size_t n);
// Asks for a claim; false if one is in flight or there is no lease (the
// first claim, asked within 5 s of comm_start, takes the lease).
bool comm_claim(comm *c, const comm_claim_req *cl);
// Renews the lease now (after a stall: the main loop starts nothing until
// a renewal sent from now on is answered).
void comm_renew(comm *c);
// The launcher stops: reports from now on tell the broker, which then
// answers the claim it holds open for us instead of running it again on
// what the reports make runnable (a task we cut and it retries).
void comm_stopping(comm *c);
void comm_take(comm *c, comm_events *ev);
void comm_events_free(comm_events *ev);

#endif
