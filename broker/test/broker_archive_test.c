// Integration test of the archive requests (copal db archive) against a
// real copal-broker: ArchivePickRequest answers only final tasks before
// the time, with all their events, and never a parent of an unfinished
// task; ArchiveRequest removes exactly the tasks given, all or nothing:
// bad fields, a task that is not final, a stale last event, a duplicate,
// are refused with nothing changed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copal/testing/broker.h"

static void
kill_id(cpl_client *c, uint64_t id)
{
	Copal__KillRequest k = COPAL__KILL_REQUEST__INIT;
	Copal__Filter kf = COPAL__FILTER__INIT;
	uint64_t ids[1] = { id };
	kf.ids = ids;
	kf.n_ids = 1;
	k.filter = &kf;
	BH_REQ(rq, KILL, kill, &k);
	bh_free(BH_OK(c, &rq));
}

static Copal__Reply *
pick(cpl_client *c, uint64_t before, const char *wf, uint32_t limit,
    int want)
{
	Copal__ArchivePickRequest p = COPAL__ARCHIVE_PICK_REQUEST__INIT;
	p.before_us = before;
	p.workflow = (char *)wf;
	p.limit = limit;
	BH_REQ(rq, ARCHIVE_PICK, archive_pick, &p);
	return BH_CALL(c, &rq, want);
}

static Copal__Reply *
archive(cpl_client *c, uint64_t before, uint64_t *ids, uint64_t *seqs,
    size_t n, size_t nseqs, int want)
{
	Copal__ArchiveRequest a = COPAL__ARCHIVE_REQUEST__INIT;
	a.before_us = before;
	a.workflow = "";
	a.ids = ids;
	a.n_ids = n;
	a.last_seqs = seqs;
	a.n_last_seqs = nseqs;
	BH_REQ(rq, ARCHIVE, archive, &a);
	return BH_CALL(c, &rq, want);
}

static void
test_archive(void **state)
{
	bh_fx *f = *state;
	uint64_t a = bh_create(f->c, 1, "a", "w", "app");
	uint64_t r = bh_create(f->c, 1, "r", "w", "app");
	uint64_t p = bh_create(f->c, 1, "p", "w2", "app");
	// p's child: READY (a dependency added to an unstarted task)
	uint64_t ch = bh_create(f->c, 1, "ch", "w2", "app");
	Copal__AddDependencyRequest d = COPAL__ADD_DEPENDENCY_REQUEST__INIT;
	d.parent_id = p;
	d.child_id = ch;
	BH_REQ(drq, ADD_DEPENDENCY, add_dependency, &d);
	bh_free(BH_OK(f->c, &drq));
	kill_id(f->c, a);
	kill_id(f->c, p); // ch becomes PARENT_KILLED: both final
	Copal__PingRequest pg = COPAL__PING_REQUEST__INIT;
	BH_REQ(prq, PING, ping, &pg);
	Copal__Reply *pong = BH_OK(f->c, &prq);
	uint64_t later = pong->ping->broker_time_us + 60000000u;
	bh_free(pong);

	// bad picks
	bh_snap s0, s1;
	bh_snapshot(f->c, &s0);
	bh_free(pick(f->c, 0, "", 10, CPL_EINVAL));
	bh_free(pick(f->c, later, "", 0, CPL_EINVAL));
	bh_free(pick(f->c, later, "", 10001, CPL_EINVAL));
	bh_free(pick(f->c, later, "nope", 10, CPL_ENOTFOUND));
	// nothing before the epoch's first second
	Copal__Reply *rp = pick(f->c, 1, "", 10, 0);
	BH_EQ_U64(rp->archive_pick->n_tasks, 0);
	bh_free(rp);

	// the pick: a, p, ch (not r: READY); their events
	rp = pick(f->c, later, "", 10, 0);
	const Copal__ArchivePickReply *pr = rp->archive_pick;
	BH_EQ_U64(pr->n_tasks, 3);
	BH_EQ_U64(pr->tasks[0]->id, a);
	BH_EQ_U64(pr->tasks[1]->id, p);
	BH_EQ_U64(pr->tasks[2]->id, ch);
	BH_CHECK(pr->tasks[0]->spec != NULL, "picked tasks carry their spec");
	uint64_t ids[3], seqs[3];
	size_t e = 0;
	for (size_t i = 0; i < 3; i++) {
		ids[i] = pr->tasks[i]->id;
		seqs[i] = 0;
		for (; e < pr->n_events && pr->events[e]->task_id == ids[i]; e++)
			seqs[i] = pr->events[e]->seq;
		BH_CHECK(seqs[i] != 0, "task %zu has events", i);
	}
	BH_EQ_U64(e, pr->n_events);
	// a page of 2 holds a, not p (its child is in the next page)
	Copal__Reply *rp2 = pick(f->c, later, "", 2, 0);
	BH_EQ_U64(rp2->archive_pick->n_tasks, 1);
	BH_EQ_U64(rp2->archive_pick->deferred, 1);
	BH_CHECK(rp2->archive_pick->more, "more after a page of 2");
	bh_free(rp2);

	// bad removals: nothing changes
	uint64_t dup[2] = { a, a }, dseq[2] = { seqs[0], seqs[0] };
	bh_free(archive(f->c, later, dup, dseq, 2, 2, CPL_EINVAL));
	bh_free(archive(f->c, later, ids, seqs, 3, 2, CPL_EINVAL));
	bh_free(archive(f->c, 0, ids, seqs, 3, 3, CPL_EINVAL));
	bh_free(archive(f->c, later, ids, seqs, 0, 0, CPL_EINVAL));
	uint64_t rid[1] = { r }, rseq[1] = { 1 };
	bh_free(archive(f->c, later, rid, rseq, 1, 1, CPL_ESTALE));
	uint64_t stale[3] = { seqs[0] - 1, seqs[1], seqs[2] };
	bh_free(archive(f->c, later, ids, stale, 3, 3, CPL_ESTALE));
	// p without its child
	bh_free(archive(f->c, later, ids, seqs, 2, 2, CPL_EINUSE));
	bh_snapshot(f->c, &s1);
	BH_SAME_SNAP(&s0, &s1, "refused archive requests");

	// the removal of exactly those three
	Copal__Reply *ra = archive(f->c, later, ids, seqs, 3, 3, 0);
	BH_EQ_U64(ra->archive->removed, 3);
	BH_EQ_U64(ra->archive->removed_events, pr->n_events);
	bh_free(ra);
	bh_free(rp);
	BH_EQ_U64(bh_count_state(f->c, CPL_USER_KILLED), 0);
	BH_EQ_U64(bh_count_state(f->c, CPL_PARENT_KILLED), 0);
	BH_EQ_U64(bh_count_state(f->c, CPL_READY), 1);
	BH_STATE(f->c, r, CPL_READY);
	// again: nothing left to pick, and the same removal is refused
	rp = pick(f->c, later, "", 10, 0);
	BH_EQ_U64(rp->archive_pick->n_tasks, 0);
	bh_free(rp);
	bh_free(archive(f->c, later, ids, seqs, 3, 3, CPL_ESTALE));
}

static void
add_dep(cpl_client *c, uint64_t parent, uint64_t child)
{
	Copal__AddDependencyRequest d = COPAL__ADD_DEPENDENCY_REQUEST__INIT;
	d.parent_id = parent;
	d.child_id = child;
	BH_REQ(rq, ADD_DEPENDENCY, add_dependency, &d);
	bh_free(BH_OK(c, &rq));
}

static uint64_t
later_us(cpl_client *c)
{
	Copal__PingRequest pg = COPAL__PING_REQUEST__INIT;
	BH_REQ(prq, PING, ping, &pg);
	Copal__Reply *pong = BH_OK(c, &prq);
	uint64_t later = pong->ping->broker_time_us + 60000000u;
	bh_free(pong);
	return later;
}

// Picks everything final before later and archives it as picked.
static uint64_t
archive_all(cpl_client *c, uint64_t later, size_t want_tasks)
{
	Copal__Reply *rp = pick(c, later, "", 10000, 0);
	const Copal__ArchivePickReply *pr = rp->archive_pick;
	BH_EQ_U64(pr->n_tasks, want_tasks);
	uint64_t *ids = calloc(pr->n_tasks + 1, 8), *seqs = calloc(
	    pr->n_tasks + 1, 8);
	BH_CHECK(ids && seqs, "memory");
	size_t e = 0;
	for (size_t i = 0; i < pr->n_tasks; i++) {
		ids[i] = pr->tasks[i]->id;
		for (; e < pr->n_events && pr->events[e]->task_id == ids[i]; e++)
			seqs[i] = pr->events[e]->seq;
	}
	Copal__Reply *ra = archive(c, later, ids, seqs, pr->n_tasks,
	    pr->n_tasks, 0);
	uint64_t removed = ra->archive->removed;
	bh_free(ra);
	bh_free(rp);
	free(ids);
	free(seqs);
	return removed;
}

// A child made before its parent (a dependency added to an existing task)
// has the smaller id: archive and delete still take the family, children
// first (a parent deferred by a pass once overwrote an id not yet tried).
static void
test_older_child(void **state)
{
	bh_fx *f = *state;
	uint64_t ch = bh_create(f->c, 1, "ch", "w", "app");
	uint64_t p = bh_create(f->c, 1, "p", "w", "app");
	BH_CHECK(ch < p, "ids in creation order");
	add_dep(f->c, p, ch);
	kill_id(f->c, p); // ch: PARENT_KILLED
	BH_EQ_U64(archive_all(f->c, later_us(f->c), 2), 2);
	BH_EQ_U64(bh_count_state(f->c, CPL_PARENT_KILLED), 0);

	uint64_t dch = bh_create(f->c, 1, "dch", "w", "app");
	uint64_t dp = bh_create(f->c, 1, "dp", "w", "app");
	add_dep(f->c, dp, dch);
	Copal__DeleteRequest d = COPAL__DELETE_REQUEST__INIT;
	Copal__Filter fi = COPAL__FILTER__INIT;
	uint64_t both[2] = { dch, dp };
	fi.ids = both;
	fi.n_ids = 2;
	d.filter = &fi;
	BH_REQ(drq, DELETE, delete_, &d);
	Copal__Reply *r = BH_OK(f->c, &drq);
	BH_EQ_U64(r->delete_->deleted, 2);
	bh_free(r);
}

// A chain of 40 diamonds (root -> a, b -> join -> ...): each task is
// reached by 2^depth paths; whether the root may go is decided once per
// task, not once per path (2^40 would never finish).
static void
test_diamonds(void **state)
{
	bh_fx *f = *state;
	enum { K = 40 };
	uint64_t top = bh_create(f->c, 1, "d0", "w", "app"), j = top;
	for (int i = 0; i < K; i++) {
		uint64_t a = bh_create(f->c, 1, "a", "w", "app");
		uint64_t b = bh_create(f->c, 1, "b", "w", "app");
		uint64_t n = bh_create(f->c, 1, "j", "w", "app");
		add_dep(f->c, j, a);
		add_dep(f->c, j, b);
		add_dep(f->c, a, n);
		add_dep(f->c, b, n);
		j = n;
	}
	kill_id(f->c, top); // every descendant: PARENT_KILLED
	BH_EQ_U64(bh_count_state(f->c, CPL_PARENT_KILLED), 3 * K);
	uint64_t t0 = bh_now_ms();
	// deeper than ELIGIBLE_DEPTH (64): the top levels wait, the rest go
	uint64_t removed = archive_all(f->c, later_us(f->c), 3 * K + 1 - 24);
	print_message("archived %llu of a %d-diamond chain in %llu ms\n",
	    (unsigned long long)removed, K,
	    (unsigned long long)(bh_now_ms() - t0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_archive, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_older_child, bh_fx_setup,
		    bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_diamonds, bh_fx_setup,
		    bh_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
