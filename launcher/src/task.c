// The per-task state machine: what each stage's end, a timeout, a kill
// notice, a lost lease or the launcher's stop does to a task, and the
// reports it queues for the broker (handed over once per turn).
//
//   NEW -> [stage in] -> PRE -> RUN -> POST -> [stage out] -> done
//   an error or timeout -> HANDLER (if the task asks for one) -> done
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "launcher_impl.h"

// The exit code of an error or timeout handler that declares its task
// finished (Balsam's handler setting JOB_FINISHED).
#define HANDLER_FINISHED 3

// ---------------------------------------------------------------- reports

static void
release(launcher *L, ltask *t);

static void
report(launcher *L, ltask *t, int to, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

// Appends at most max bytes of s to buf (of size len) at pos, as much as
// fits with its NUL; returns the new end.
static size_t
cat(char *buf, size_t len, size_t pos, const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	if (pos >= len)
		return pos;
	if (n > len - pos - 1)
		n = len - pos - 1;
	memcpy(buf + pos, s, n);
	buf[pos + n] = '\0';
	return pos + n;
}

static void
report(launcher *L, ltask *t, int to, int rc, const char *fmt, ...)
{
	if (L->nreps == L->capreps) {
		size_t cap = L->capreps ? L->capreps * 2 : 256;
		struct report *r = realloc(L->reps, cap * sizeof(*r));
		if (r == NULL) {
			logm(LL_ERR, "out of memory for reports");
			return;
		}
		L->reps = r;
		L->capreps = cap;
	}
	struct report *r = &L->reps[L->nreps++];
	// (three reports per task: strings put together without printf)
	size_t np = 0;
	r->node[0] = '\0';
	if (t->nnodes)
		np = cat(r->node, sizeof(r->node), 0,
		    L->nodes[t->nodes[0]].name, SIZE_MAX);
	if (t->nnodes && t->slot >= 0) {
		char sb[16], *p = sb + sizeof(sb);
		unsigned v = (unsigned)t->slot;
		*--p = '\0';
		do
			*--p = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		*--p = '/';
		cat(r->node, sizeof(r->node), np, p, SIZE_MAX);
	}
	// reports are made as the change happens (a process just started,
	// just reaped): this is the change's time, sent beside it
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	r->event_us = (uint64_t)ts.tv_sec * 1000000u +
	    (uint64_t)ts.tv_nsec / 1000u;
	const char *nm = t->name ? t->name : "";
	size_t nl = cpl_utf8_cut(nm, strnlen(nm, sizeof(r->who) - 12));
	size_t wp = cat(r->who, sizeof(r->who), 0, t->uuid, 8);
	wp = cat(r->who, sizeof(r->who), wp, " (", SIZE_MAX);
	wp = cat(r->who, sizeof(r->who), wp, nm, nl);
	cat(r->who, sizeof(r->who), wp, ")", SIZE_MAX);
	r->id = t->id;
	r->attempt = t->attempt;
	r->to = to;
	r->rc = rc;
	r->cut = false;
	r->msg = NULL;
	r->restart = false;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&r->msg, fmt, ap) < 0)
			r->msg = NULL;
		va_end(ap);
	}
	logm(LL_DEBUG, "task %s %s -> %s", t->uuid, t->name,
	    cpl_state_name(to));
}

// The launcher's end cut the task's stage: RUN_TIMEOUT, marked as a cut
// (not a failure: the broker puts it back without counting the attempt,
// and a timeout handler runs at its next claim).
static void
report_cut(launcher *L, ltask *t, int rc, const char *stage)
{
	report(L, t, CPL_RUN_TIMEOUT, rc, "cut off%s: launcher %s", stage,
	    L->cut_why ? L->cut_why : "stopping");
	if (L->nreps > 0 && L->reps[L->nreps - 1].id == t->id)
		L->reps[L->nreps - 1].cut = true;
	release(L, t);
}

void
task_flush_reports(launcher *L)
{
	if (L->nreps == 0)
		return;
	comm_report(L->cm, L->reps, L->nreps);
	L->nreps = 0;
}

// ---------------------------------------------------------------- stages

// The task is done with this launcher: its resources go back.
static void
release(launcher *L, ltask *t)
{
	claim_give_back(L, t);
	t->stage = ST_DONE;
	t->pid = 0;
	L->finished++;
}

static void
start_post(launcher *L, ltask *t);
static bool
fast_restart(launcher *L, ltask *t, int rc, const char *why);

// Runs the application.
static void
start_run(launcher *L, ltask *t)
{
	char cmd[20000];
	int sc = stage_command(L, t, cmd, sizeof(cmd));
	if (sc == -2) {
		report(L, t, CPL_RUN_ERROR, -1, "app %s: its command template "
		    "does not render with this task's parameters (app replaced "
		    "since the task was made?), or is too long",
		    t->ct->app->name);
		t->after = CPL_RUN_ERROR;
		start_post(L, t);
		return;
	}
	if (sc != 0) {
		report(L, t, CPL_RUN_ERROR, -1, "bad MPI template: %s",
		    L->o->mpi_template);
		t->after = CPL_RUN_ERROR;
		start_post(L, t);
		return;
	}
	int e = stage_start_run(L, t, cmd);
	if (e && L->o->fast_fail_s > 0 && !L->stopping && !L->cutting) {
		// a start that failed is a fast failure: on record as a
		// start, and tried again on the spot
		char why[160];
		t->stage = ST_RUN;
		t->run_start_us = cpl_mono_us();
		L->started++;
		report(L, t, CPL_RUNNING, 0, "could not start: %s", strerror(e));
		snprintf(why, sizeof(why), "could not start: %s", strerror(e));
		if (fast_restart(L, t, e == ENOENT ? 127 : -1, why))
			return;
	}
	if (e == ENOENT) {
		report(L, t, CPL_RUN_ERROR, 127,
		    "return code 127\n%s: command not found", cmd);
		t->after = CPL_RUN_ERROR;
		start_post(L, t);
		return;
	}
	if (e) {
		report(L, t, CPL_RUN_ERROR, -1, "cannot start %s: %s", cmd,
		    strerror(e));
		t->after = CPL_RUN_ERROR;
		start_post(L, t);
		return;
	}
	t->stage = ST_RUN;
	t->run_start_us = cpl_mono_us();
	L->started++;
	report(L, t, CPL_RUNNING, 0, "started %llu us after claim",
	    (unsigned long long)(t->run_start_us - t->claimed_us));
}

void
task_start(launcher *L, ltask *t)
{
	char err[1024];
	bool did = false;
	const Copal__TaskSpec *sp = t->ct->task->spec;
	int e = stage_workdir(L, t);
	if (e < 0) {
		report(L, t, CPL_RUN_ERROR, -1, "bad working directory %s",
		    sp->workdir);
		t->after = CPL_RUN_ERROR;
		start_post(L, t);
		return;
	}
	if (e) {
		report(L, t, CPL_RUN_ERROR, -1, "cannot make %s: %s",
		    t->workdir, strerror(e));
		t->after = CPL_RUN_ERROR;
		start_post(L, t);
		return;
	}
	if (t->ct->timeout_handler_due) {
		// the last run was cut before its timeout handler could run:
		// the handler decides now (launcher/README.md)
		report(L, t, CPL_RUN_TIMEOUT, 0, "timeout handler of the run "
		    "cut off at attempt %u", t->attempt - 1);
		t->after = CPL_RUN_TIMEOUT;
		start_post(L, t);
		return;
	}
	char note[2048];
	if (stage_in(L, t, err, sizeof(err), &did, note, sizeof(note)) != 0) {
		report(L, t, CPL_RUN_ERROR, -1, "%s", err);
		t->after = CPL_RUN_ERROR;
		start_post(L, t);
		return;
	}
	if (did)
		t->out_new = false; // (a staged-in file may be the .out)
	if (did && note[0])
		report(L, t, CPL_STAGED_IN, 0, "%s", note);
	else if (did)
		report(L, t, CPL_STAGED_IN, 0, NULL);
	const char *pre = task_preprocess(t);
	if (pre && pre[0]) {
		if ((e = stage_start_pre(L, t)) != 0) {
			report(L, t, CPL_RUN_ERROR, -1,
			    "cannot start preprocess: %s", strerror(e));
			t->after = CPL_RUN_ERROR;
			start_post(L, t);
			return;
		}
		t->stage = ST_PRE;
		return;
	}
	start_run(L, t);
}

// After the run: RUN_DONE -> postprocess -> stage out -> JOB_FINISHED, or
// the error / timeout handler.
static void
start_post(launcher *L, ltask *t)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const char *post = task_postprocess(t);
	char err[1024];
	int e;
	if (t->after == CPL_RUN_DONE) {
		if (post && post[0]) {
			if ((e = stage_start_post(L, t)) == 0) {
				t->stage = ST_POST;
				return;
			}
			report(L, t, CPL_RUN_ERROR, -1,
			    "cannot start postprocess: %s", strerror(e));
			t->after = CPL_RUN_ERROR;
		} else if (stage_out(t, err, sizeof(err)) != 0) {
			report(L, t, CPL_RUN_ERROR, -1, "%s", err);
			t->after = CPL_RUN_ERROR;
		} else {
			report(L, t, CPL_JOB_FINISHED, 0, NULL);
			release(L, t);
			return;
		}
	}
	// With a handler flag the broker waits for this launcher's verdict;
	// without one it applies the retry policy itself.
	bool handler = (t->after == CPL_RUN_ERROR && sp->post_error_handler) ||
	    (t->after == CPL_RUN_TIMEOUT && sp->post_timeout_handler);
	if (handler) {
		if (!post || !post[0])
			report(L, t, CPL_FAILED, -1, "a handler is asked for "
			    "but neither the task nor its app %s has a "
			    "postprocess", t->ct->app->name);
		else if ((e = stage_start_handler(L, t)) == 0) {
			t->stage = ST_HANDLER;
			return;
		} else
			report(L, t, CPL_FAILED, -1,
			    "cannot start the handler: %s", strerror(e));
	}
	release(L, t);
}

// Balsam's serial-mode relaunch: a run that failed to start (the shell's
// 126, 127), died by a signal or exited with one of the fast-failure
// codes within fast_fail_s of its start is started again here, up to
// FAST_FAIL_RESTARTS times; each start is an event in its history. A
// kill, a timeout or the launcher's end is never a fast failure.
static bool
fast_failure(launcher *L, ltask *t, int status, char *why, size_t wl)
{
	const launcher_opts *o = L->o;
	double ran_s = (double)(cpl_mono_us() - t->run_start_us) / 1e6;
	if (o->fast_fail_s <= 0 || ran_s >= o->fast_fail_s || t->cut ||
	    t->after == CPL_RUN_TIMEOUT || L->stopping || L->cutting ||
	    t->fast_restarts >= FAST_FAIL_RESTARTS)
		return false;
	if (WIFSIGNALED(status)) {
		snprintf(why, wl, "killed by signal %d after %.2f s",
		    WTERMSIG(status), ran_s);
		return true;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 0)
		return false;
	int rc = WEXITSTATUS(status);
	if (rc != 126 && rc != 127 && !(o->fast_fail_codes[rc / 8] &
	        (1u << (rc % 8))))
		return false;
	snprintf(why, wl, "%s %d after %.2f s", rc == 126 || rc == 127 ?
	    "could not start: return code" : "return code", rc, ran_s);
	return true;
}

// Starts a fast-failed run again, each start (or failure to start) an
// event; false once FAST_FAIL_RESTARTS starts have failed to start.
static bool
fast_restart(launcher *L, ltask *t, int rc, const char *why)
{
	char cmd[20000], tail[TAIL_BYTES + 1];
	output_tail(t, tail, sizeof(tail));
	if (stage_command(L, t, cmd, sizeof(cmd)) != 0)
		return false;
	while (t->fast_restarts < FAST_FAIL_RESTARTS) {
		int e = stage_start_run(L, t, cmd);
		t->fast_restarts++;
		t->run_start_us = cpl_mono_us();
		size_t before = L->nreps;
		if (e == 0)
			report(L, t, CPL_RUNNING, rc, "fast failure (%s): "
			    "started again, %u of %u%s%s", why,
			    t->fast_restarts, FAST_FAIL_RESTARTS,
			    tail[0] ? "\n" : "", tail);
		else
			report(L, t, CPL_RUNNING, rc, "fast failure (%s): "
			    "could not start again, %u of %u: %s", why,
			    t->fast_restarts, FAST_FAIL_RESTARTS, strerror(e));
		if (L->nreps > before)
			L->reps[L->nreps - 1].restart = true;
		logm(LL_INFO, "task %s %s: fast failure (%s): %s (%u of %u)",
		    t->uuid, t->name, why, e ? "could not start again" :
		    "started again", t->fast_restarts, FAST_FAIL_RESTARTS);
		if (e == 0)
			return true;
		rc = e == ENOENT ? 127 : -1;
		tail[0] = '\0';
	}
	return false;
}

void
task_exited(launcher *L, ltask *t, int status)
{
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) :
	    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
	char tail[TAIL_BYTES + 1];
	t->pid = 0;
	if (t->killed) {
		// copal killjob: the broker already has it USER_KILLED
		logm(LL_INFO, "task %s %s killed", t->uuid, t->name);
		release(L, t);
		return;
	}
	if (t->cut && (t->stage == ST_PRE || t->stage == ST_RUN ||
	                  t->stage == ST_POST)) {
		report_cut(L, t, rc, t->stage == ST_PRE ? " in its preprocess" :
		    t->stage == ST_POST ? " in its postprocess" : "");
		return;
	}
	switch (t->stage) {
	case ST_PRE:
		if (rc == 0) {
			report(L, t, CPL_PREPROCESSED, 0, NULL);
			task_reread(L, t); // its own edits apply to this run
			start_run(L, t);
		} else {
			output_tail(t, tail, sizeof(tail));
			report(L, t, CPL_RUN_ERROR, rc,
			    "preprocess returned %d\n%s", rc, tail);
			t->after = CPL_RUN_ERROR;
			start_post(L, t);
		}
		break;
	case ST_RUN: {
		char why[128];
		if (rc != 0 && fast_failure(L, t, status, why, sizeof(why)) &&
		    fast_restart(L, t, rc, why))
			break;
		if (t->after == CPL_RUN_TIMEOUT) {
			report(L, t, CPL_RUN_TIMEOUT, rc,
			    "killed after timeout_seconds=%u",
			    t->ct->task->spec->timeout_seconds);
		} else if (rc == 0) {
			report(L, t, CPL_RUN_DONE, 0, NULL);
			t->after = CPL_RUN_DONE;
		} else {
			output_tail(t, tail, sizeof(tail));
			report(L, t, CPL_RUN_ERROR, rc, "return code %d%s\n%s",
			    rc, t->fast_restarts ? " (after fast-failure "
			    "relaunches)" : "", tail);
			t->after = CPL_RUN_ERROR;
		}
		start_post(L, t);
		break;
	}
	case ST_POST: {
		char err[1024];
		if (rc != 0) {
			output_tail(t, tail, sizeof(tail));
			report(L, t, CPL_RUN_ERROR, rc,
			    "postprocess returned %d\n%s", rc, tail);
			t->after = CPL_RUN_ERROR;
			start_post(L, t);
		} else if (stage_out(t, err, sizeof(err)) != 0) {
			report(L, t, CPL_POSTPROCESSED, 0, NULL);
			report(L, t, CPL_RUN_ERROR, -1, "%s", err);
			t->after = CPL_RUN_ERROR;
			start_post(L, t);
		} else {
			report(L, t, CPL_POSTPROCESSED, 0, NULL);
			report(L, t, CPL_JOB_FINISHED, 0, NULL);
			release(L, t);
		}
		break;
	}
	case ST_HANDLER:
		// the handler's verdict (launcher/README.md): 0 = try again,
		// HANDLER_FINISHED = the run is good enough, anything else =
		// fail; its own output goes with it into the history
		output_tail(t, tail, sizeof(tail));
		if (t->cut)
			report(L, t, CPL_RESTART_READY, rc, "handler cut off: "
			    "launcher %s", L->cut_why ? L->cut_why : "stopping");
		else if (rc == 0)
			report(L, t, CPL_RESTART_READY, 0, "handler: retry%s%s",
			    tail[0] ? "\n" : "", tail);
		else if (rc == HANDLER_FINISHED)
			report(L, t, CPL_JOB_FINISHED, 0,
			    "handler: finished (exit %d)%s%s", rc,
			    tail[0] ? "\n" : "", tail);
		else
			report(L, t, CPL_FAILED, rc, "handler returned %d%s%s",
			    rc, tail[0] ? "\n" : "", tail);
		release(L, t);
		break;
	default:
		break;
	}
}

void
task_compact(launcher *L)
{
	size_t w = 0;
	for (size_t i = 0; i < L->ntasks; i++) {
		ltask *t = L->tasks[i];
		if (t->stage == ST_DONE) {
			copal__claimed_task__free_unpacked(t->ct, NULL);
			free(t->nodes);
			free(t);
			continue;
		}
		L->tasks[w++] = t;
	}
	L->ntasks = w;
}

static ltask *
find_task(launcher *L, uint64_t id)
{
	for (size_t i = 0; i < L->ntasks; i++)
		if (L->tasks[i]->id == id && L->tasks[i]->stage != ST_DONE)
			return L->tasks[i];
	return NULL;
}

// ---------------------------------------------------------------- stops

// The broker has given the tasks to others: no report of ours counts.
void
task_drop_all(launcher *L, const char *why)
{
	for (size_t i = 0; i < L->ntasks; i++) {
		ltask *t = L->tasks[i];
		if (t->stage == ST_DONE)
			continue;
		logm(LL_WARN, "task %s %s: %s: stopping it", t->uuid, t->name,
		    why);
		t->killed = true;
		if (t->pid > 0)
			proc_kill(t, SIGKILL);
		else
			release(L, t);
	}
	for (size_t i = 0; i < L->nreps; i++)
		free(L->reps[i].msg);
	L->nreps = 0;
}

void
task_kill_notices(launcher *L, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ltask *t = find_task(L, ids[i]);
		if (t == NULL)
			continue;
		logm(LL_NOTICE, "kill notice for task %s %s", t->uuid, t->name);
		t->killed = true;
		if (t->pid > 0) {
			proc_kill(t, SIGTERM);
			proc_kill(t, SIGCONT);
		} else {
			release(L, t);
		}
	}
}

void
task_check_timeouts(launcher *L, uint64_t now)
{
	for (size_t i = 0; i < L->ntasks; i++) {
		ltask *t = L->tasks[i];
		uint32_t to = t->ct->task->spec->timeout_seconds;
		if (t->stage != ST_RUN || to == 0 || t->after == CPL_RUN_TIMEOUT)
			continue;
		// (a task started later in this same turn has run_start > now)
		if (now > t->run_start_us &&
		    now - t->run_start_us >= (uint64_t)to * 1000000u) {
			logm(LL_INFO, "task %s %s: timeout after %u s", t->uuid,
			    t->name, to);
			t->after = CPL_RUN_TIMEOUT;
			proc_kill(t, SIGKILL);
		}
	}
	// kill notices: SIGKILL what ignored the SIGTERM for 2 s
	static uint64_t last_sweep;
	if (now - last_sweep > 2000000u) {
		last_sweep = now;
		for (size_t i = 0; i < L->ntasks; i++)
			if (L->tasks[i]->killed && L->tasks[i]->pid > 0)
				proc_kill(L->tasks[i], SIGKILL);
	}
}

size_t
task_active(launcher *L)
{
	size_t n = 0;
	for (size_t i = 0; i < L->ntasks; i++)
		n += L->tasks[i]->stage != ST_DONE;
	return n;
}

void
task_cut_all(launcher *L)
{
	for (size_t i = 0; i < L->ntasks; i++) {
		ltask *t = L->tasks[i];
		if (t->stage == ST_DONE)
			continue;
		t->cut = true;
		if (t->pid > 0)
			proc_kill(t, SIGTERM);
		else
			release(L, t);
	}
}
