// What the files of the scheduler library share and do not export.
#ifndef COPAL_SCHED_INTERNAL_H
#define COPAL_SCHED_INTERNAL_H

#include "copal/sched.h"
#include "copal/xalloc.h"

#define BJ(x) COPAL__BATCH_JOB_STATE__BJ_##x

// exec.c: seconds of CLOCK_MONOTONIC.
double sched_mono_s(void);
// exec.c: text with runs of white space (newlines included) made one
// blank, trimmed, control characters as '?'.
void sched_one_line(const char *text, char *out, size_t len);

// jobs.c: the result rv of a typed call on c with its error as text (the
// service logs them) instead of printed: rv, and why when it is not 0.
int sched_called(cpl_client *c, int rv, char *why, size_t wl);
// jobs.c: whether a job in state s counts against the policy (SUBMITTING,
// QUEUED, RUNNING).
bool sched_job_active(Copal__BatchJobState s);
// jobs.c: moves batch job id to st; empty or NULL strings leave a field as
// it is. out (may be NULL): the record after the update, to free with
// copal__batch_job__free_unpacked. Each call is a new request (and request
// id): a reused one would be answered from the broker's reply cache.
int sched_job_update(cpl_client *c, uint64_t id, Copal__BatchJobState st,
    const char *sid, const char *msg, const char *word, const char *script,
    Copal__BatchJob **out, char *why, size_t wl);
// sched_job_update with the scheduler's longer words (reason: NULL or
// "": unchanged).
int sched_job_update_reason(cpl_client *c, uint64_t id,
    Copal__BatchJobState st, const char *sid, const char *msg,
    const char *word, const char *reason, const char *script,
    Copal__BatchJob **out, char *why, size_t wl);

#endif // COPAL_SCHED_INTERNAL_H
