// The launcher: pulls tasks that fit its nodes from the broker, runs them
// through their stages and reports every state change in batches.
//
// One thread, one loop: signals (SIGCHLD, SIGTERM, SIGINT) arrive on a
// signalfd; children are reaped with waitpid(WNOHANG) in a loop; reports
// collected during one turn go to the broker in one request; one
// heartbeat per launcher renews the lease of every task it holds.
//
// The loop is here; what it calls is in claim.c (claims and placement),
// task.c (what happens to each task), stages.c and spawn.c (see
// launcher_impl.h). None of them calls back into the loop.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "launcher_impl.h"

static launcher L;

// A turn of the loop sleeps at most 1 s; a gap this long means that the
// process did not run (SIGSTOP, a suspended VM, a starved machine).
#define STALL_US 3000000u

// Whether the broker still holds our lease by our own clock: renewed by a
// heartbeat sent less than a TTL ago (the broker counts from its commit,
// later), and, after a stall, by one sent since. A launcher starts no task
// otherwise: the broker may have expired the lease and given its tasks to
// another launcher.
static bool
lease_ok(uint64_t now)
{
	return L.lease != 0 && now < L.lease_until_us &&
	    L.lease_sent_us >= L.confirm_after_us;
}

// How long the broker may hold a claim that finds nothing: it answers as
// soon as a task becomes runnable, so this only bounds how stale the
// capacity offered may get, and how late the launcher notices that it
// has been idle long enough.
#define CLAIM_WAIT_MS 2000u
// A claim answered empty at once (the broker had no room to hold it) is
// sent again no sooner than this after the last.
#define CLAIM_MIN_GAP_US 250000u

static uint32_t
claim_wait_ms(uint64_t now)
{
	uint64_t ttl = (uint64_t)(L.o->idle_ttl_s * 1e6), idle;
	if (L.o->persistent || task_active(&L) > 0)
		return CLAIM_WAIT_MS;
	// answered by the time the launcher may end for idleness
	idle = now - L.last_busy_us;
	if (idle >= ttl)
		return 1;
	uint64_t left_ms = (ttl - idle) / 1000u + 1;
	return left_ms < CLAIM_WAIT_MS ? (uint32_t)left_ms : CLAIM_WAIT_MS;
}

// Starts a placed task, or holds it until the lease is confirmed.
static void
start_or_hold(ltask *t, uint64_t now)
{
	if (lease_ok(now)) {
		t->held = false;
		task_start(&L, t);
	} else {
		t->held = true;
	}
}

// The wall-time limit or a SIGTERM: stop claiming, SIGTERM every task's
// process group, SIGKILL after the grace period; cut tasks are reported
// RUN_TIMEOUT marked as cuts: the broker puts them back without counting
// the attempt (launcher/README.md).
static void
begin_cut(const char *why)
{
	if (L.cutting)
		return;
	logm(LL_NOTICE, "%s: stopping %zu task(s)", why, task_active(&L));
	L.stopping = true;
	L.cutting = true;
	L.cut_why = why;
	L.kill_at_us = cpl_mono_us() + (uint64_t)(L.o->grace_s * 1e6);
	comm_stopping(L.cm);
	task_cut_all(&L);
}

static int
setup_nodes(void)
{
	int rv = nodes_discover(NULL, &L.nl);
	if (rv) {
		logm(LL_ERR, "node discovery failed: %s", cpl_strerror(rv));
		return rv;
	}
	if ((rv = nodes_slice(&L.nl, L.o->node_offset, L.o->node_limit)) != 0) {
		logm(LL_ERR, "--node-offset/--num-nodes leave no node of %zu",
		    L.nl.n);
		return rv;
	}
	// serial mode: this launcher is the agent of its own node, the one
	// of the list it runs on (job scripts start one per node: srun,
	// aprun, mpiexec), else the first
	if (L.o->mode == MODE_SERIAL && L.nl.n > 1) {
		size_t self = nodes_find_self(&L.nl);
		size_t pick = self < L.nl.n ? self : 0;
		logm(LL_NOTICE, "serial mode: this launcher runs the tasks of "
		    "node %s (%s of %zu); run one launcher per node for the "
		    "others", L.nl.names[pick],
		    self < L.nl.n ? "this host" : "the first", L.nl.n);
		nodes_slice(&L.nl, pick, 1);
	}
	L.nnodes = L.nl.n;
	L.nodes = calloc(L.nnodes, sizeof(lnode));
	if (L.nodes == NULL)
		return CPL_ENOMEM;
	size_t pos = 0;
	for (size_t i = 0; i < L.nnodes; i++) {
		L.nodes[i].name = L.nl.names[i];
		L.nodes[i].free_units = CPL_NODE_PARTS;
		L.nodes[i].ngpus = L.o->gpus_per_node;
		int n = snprintf(L.self_hosts + pos, sizeof(L.self_hosts) - pos,
		    "%s%s", i ? "," : "", L.nodes[i].name);
		if (n > 0 && (size_t)n < sizeof(L.self_hosts) - pos)
			pos += (size_t)n;
	}
	logm(LL_INFO, "%zu node(s) from %s: %s", L.nnodes, L.nl.source,
	    L.self_hosts);
	return 0;
}

int
launcher_run(const launcher_opts *o)
{
	cpl_client_opts co;
	sigset_t sigs;
	int rv;
	memset(&L, 0, sizeof(L));
	L.o = o;
	proc_fds_compact();
	// messages above the level (syslog numbering) are dropped
	static const cpl_log_style log_style = { CPL_LOG_UTC_HMS_MS, "launcher",
		true, false, false };
	cpl_log_close();
	cpl_log_add(stderr, NULL, &log_style);
	cpl_log_level = o->log_level;
	L.sigfd = -1;
	if (realpath(o->db_dir, L.db) == NULL) {
		logm(LL_ERR, "%s: %s", o->db_dir, strerror(errno));
		return CPL_ENOTFOUND;
	}
	if ((rv = setup_nodes()) != 0)
		return rv;
	fit_note_shape(&L);
	L.tasks = calloc(MAX_TASKS, sizeof(ltask *));
	if (L.tasks == NULL)
		return CPL_ENOMEM;
	// Block the signals the loop takes from its signalfd before any
	// thread exists (NNG's and the comm thread inherit the mask);
	// otherwise the kernel may deliver SIGTERM to a thread that does not
	// block it, and the default action ends the launcher at once.
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	// (forked here, before the client's threads)
	if ((rv = proc_guard_start()) != 0) {
		logm(LL_ERR, "cannot start the guard of task processes: %s",
		    strerror(rv));
		return CPL_ENOMEM;
	}
	memset(&co, 0, sizeof(co));
	co.db_dir = L.db;
	co.timeout_ms = 15000;
	if ((rv = cpl_client_open(&co, &L.c)) != 0 ||
	    (rv = cpl_client_open(&co, &L.cc)) != 0) {
		logm(LL_ERR, "cannot reach the broker of %s: %s", L.db,
		    cpl_strerror(rv));
		cpl_client_close(L.c);
		return rv;
	}
	L.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	if ((rv = comm_start(L.c, L.cc, o, &L.cm)) != 0) {
		cpl_client_close(L.c);
		cpl_client_close(L.cc);
		return rv;
	}
	L.start_us = cpl_mono_us();
	L.last_busy_us = L.start_us;
	if (o->time_limit_min > 0)
		L.deadline_us = L.start_us + (uint64_t)(o->time_limit_min * 60e6);
	bool announced = false, idle_warned = false, refused = false;

	for (;;) {
		uint64_t now = cpl_mono_us();
		if (L.prev_turn_us && now - L.prev_turn_us > STALL_US) {
			// stopped time is not idle time, and the lease may
			// have ended meanwhile: ask the broker before any start
			logm(LL_WARN, "did not run for %.1f s: confirming lease "
			    "%llu before starting anything",
			    (double)(now - L.prev_turn_us) / 1e6,
			    (unsigned long long)L.lease);
			L.last_busy_us += now - L.prev_turn_us;
			L.confirm_after_us = now;
			comm_renew(L.cm);
		}
		L.prev_turn_us = now;
		struct signalfd_siginfo si;
		while (read(L.sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				begin_cut(si.ssi_signo == SIGTERM ?
				    "got SIGTERM" : "got SIGINT");
		}
		ltask *t;
		int status;
		while ((t = proc_reap(&L, &status)) != NULL) {
			task_exited(&L, t, status);
			L.next_claim_us = 0; // room may have come free
		}
		comm_events ev;
		comm_take(L.cm, &ev);
		if (ev.job_ended && !L.stopping)
			begin_cut("its batch job has ended");
		if (ev.refused) {
			logm(LL_ERR, "the broker refuses this launcher's "
			    "credential: stopping");
			refused = true;
			comm_events_free(&ev);
			break;
		}
		if (ev.lease_lost) {
			task_drop_all(&L, "lease lost");
			// what the broker took back is work to claim again
			L.last_busy_us = now;
		}
		if (ev.have_lease && !announced) {
			logm(LL_NOTICE, "started: %s mode, %zu node(s), up to %u "
			    "task(s), lease %llu%s", o->mode == MODE_MPI ?
			    "mpi" : "serial", L.nnodes, o->max_concurrent,
			    (unsigned long long)ev.lease, ev.lease_by_claim ?
			    " (with the first claim)" : "");
			announced = true;
			L.last_busy_us = now; // idleness counts from here
			// a first claim refused (its lease came by a heartbeat
			// since) is not a reason to wait
			L.next_claim_us = 0;
		}
		L.lease = ev.have_lease ? ev.lease : 0;
		L.lease_sent_us = ev.lease_sent_us;
		L.lease_until_us = ev.lease_until_us;
		task_kill_notices(&L, ev.kills, ev.nkills);
		for (size_t i = 0; i < ev.ntasks; i++) {
			if (L.stopping) {
				// the lease release gives it back
				copal__claimed_task__free_unpacked(ev.tasks[i], NULL);
				continue;
			}
			if (claim_adopt(&L, ev.tasks[i], &t) != 0)
				logm(LL_ERR, "could not take a claimed task");
			else if (!t->queued)
				start_or_hold(t, now);
		}
		if (ev.claim_answered) {
			L.claim_inflight = false;
			if (ev.ntasks > 0) {
				L.last_busy_us = now;
				L.next_claim_us = 0; // more may fit
				idle_warned = false;
			} else if (ev.claim_failed) {
				L.next_claim_us = now + 1000000u;
			} else {
				// idle: say why, when tasks are left that
				// fit no node of ours (once per idle spell)
				if (!idle_warned && task_active(&L) == 0) {
					fit_warn_unfit(&L, "idle");
					idle_warned = true;
				}
				// nothing: the broker held the claim open
				// until its wait ran out, so ask again at
				// once; a claim it answered at once (no room
				// to hold it) is not repeated too often
				L.next_claim_us = L.claim_sent_us +
				    CLAIM_MIN_GAP_US;
			}
		}
		free(ev.tasks); // the tasks themselves were adopted or freed
		free(ev.kills);
		if (lease_ok(now)) {
			// tasks held for the lease's renewal, then backlog
			// tasks that now fit
			for (size_t i = 0; i < L.ntasks; i++)
				if (L.tasks[i]->held)
					start_or_hold(L.tasks[i], now);
			for (size_t from = 0;
			     (t = claim_next_queued(&L, &from)) != NULL;)
				task_start(&L, t);
		}
		task_check_timeouts(&L, now);
		if (L.deadline_us && now >= L.deadline_us)
			begin_cut("reached its wall-time limit");
		if (L.cutting && now >= L.kill_at_us) {
			for (size_t i = 0; i < L.ntasks; i++)
				proc_kill(L.tasks[i], SIGKILL);
		}
		if (!announced && now - L.start_us > 60000000u) {
			logm(LL_ERR, "no lease from the broker after 60 s");
			break;
		}
		// idle: judged before the next claim, which would be in
		// flight (held open by the broker) most of the time
		size_t act = task_active(&L);
		if (act)
			L.last_busy_us = now;
		// (a claim that found nothing while tasks still held nodes
		// says nothing of what fits now that they are free: one
		// more claim first)
		if (!o->persistent && act == 0 && !L.stopping && announced &&
		    !L.claim_inflight && L.claim_all &&
		    now - L.last_busy_us > (uint64_t)(o->idle_ttl_s * 1e6)) {
			logm(LL_NOTICE, "idle for %.0f s: done", o->idle_ttl_s);
			break;
		}
		// (before the first lease: the first claim takes it with it)
		if ((L.lease || !announced) && !L.stopping &&
		    !L.claim_inflight && now >= L.next_claim_us) {
			L.claim_all = act == 0;
			L.claim_inflight = claim_ask(&L, claim_wait_ms(now));
			// nothing to ask for (no room): not again until a task
			// ends, or a second from now
			if (!L.claim_inflight)
				L.next_claim_us = now + 1000000u;
			else
				L.claim_sent_us = now;
		}
		task_flush_reports(&L);
		task_compact(&L);
		act = task_active(&L);
		if (act)
			L.last_busy_us = now;
		if (L.stopping && act == 0)
			break;
		// sleep until a child ends, a signal, the comm thread, or a timer
		int ms = 1000;
		if (!L.stopping && !L.claim_inflight && L.lease) {
			ms = L.next_claim_us > now ?
			    (int)((L.next_claim_us - now) / 1000u) : 0;
			if (ms > 1000)
				ms = 1000;
		}
		if (act && ms > 100)
			ms = 100; // timeouts and kill escalation
		struct pollfd pfd[2] = { { L.sigfd, POLLIN, 0 },
			{ comm_fd(L.cm), POLLIN, 0 } };
		if (ms > 0)
			poll(pfd, 2, ms);
	}
	task_flush_reports(&L);
	// the comm thread sends what is left and gives the lease back
	comm_counts cn;
	comm_stop(L.cm, &cn);
	fit_warn_unfit(&L, "done");
	logm(LL_NOTICE, "done: %llu task(s) run; %llu report(s) in %llu "
	    "request(s), %llu claim(s), %llu heartbeat(s)",
	    (unsigned long long)L.started, (unsigned long long)cn.reports,
	    (unsigned long long)cn.report_calls, (unsigned long long)cn.claims,
	    (unsigned long long)cn.heartbeats);
	cpl_client_close(L.c);
	cpl_client_close(L.cc);
	task_reread_close();
	close(L.sigfd);
	free(L.tasks);
	free(L.reps);
	for (size_t i = 0; i < L.nnodes; i++)
		free(L.nodes[i].slot_busy);
	free(L.nodes);
	nodes_free(&L.nl);
	return refused ? CPL_EPERM : 0;
}
