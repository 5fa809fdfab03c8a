// Heartbeats renewed in memory (broker/src/hbtab.h): a heartbeat that
// only renews a live lease makes no commit of its own; its deadline is
// written by the next lease sweep, at a clean stop, and before any claim
// or report could judge the lease by an older stored deadline. Checked
// against the store itself: the LMDB transaction counter, and the lease
// read after the broker is gone (kill -9 and SIGTERM).
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "copal/dbdir.h"
#include "copal/store.h"
#include "copal/testing/broker.h"

static Copal__Reply *
heartbeat(cpl_client *c, uint64_t lease, uint32_t ttl, int want)
{
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.lease_id = lease;
	hb.ttl_ms = ttl;
	hb.owner = (char *)"lazy-test";
	BH_REQ(rq, HEARTBEAT, heartbeat, &hb);
	return BH_CALL(c, &rq, want);
}

// The id of the last committed LMDB transaction of the running broker's
// database (a read-only look from this process).
static uint64_t
last_txnid(const bh_broker *b)
{
	char path[PATH_MAX];
	MDB_env *env;
	MDB_envinfo info;
	BH_CHECK(cpl_dbpath(b->dir, CPL_DB_LMDB_DATA, path, sizeof(path)) == 0,
	    "data path");
	BH_CHECK(mdb_env_create(&env) == 0, "mdb_env_create");
	int rc = mdb_env_open(env, dirname(path), MDB_RDONLY, 0600);
	BH_CHECK(rc == 0, "mdb_env_open: %s", mdb_strerror(rc));
	mdb_env_info(env, &info);
	mdb_env_close(env);
	return (uint64_t)info.me_last_txnid;
}

struct lease_arg {
	uint64_t id;
	cpl_lease l;
};

static int
lease_cb(cpl_txn *txn, void *arg)
{
	struct lease_arg *a = arg;
	return cpl_lease_get(txn, a->id, &a->l);
}

// The lease's stored deadline, read with the broker stopped.
static uint64_t
stored_deadline(const bh_broker *b, uint64_t lease)
{
	cpl_store *st;
	struct lease_arg a = { lease, { 0 } };
	int rv = cpl_store_open(b->dir, NULL, &st);
	BH_CHECK(rv == 0, "store open: %s", cpl_strerror(rv));
	rv = cpl_store_read(st, lease_cb, &a);
	cpl_store_close(st);
	BH_CHECK(rv == 0, "lease %" PRIu64 ": %s", lease, cpl_strerror(rv));
	return a.l.deadline_us;
}

// 200 renewals of one live lease: a handful of commits (sweeps), not 200.
static void
test_heartbeat_no_commit(void **state)
{
	bh_fx *f = *state;
	Copal__Reply *r = heartbeat(f->c, 0, 30000, 0);
	uint64_t lease = r->heartbeat->lease_id, last = 0;
	bh_free(r);
	uint64_t t0 = last_txnid(&f->b), ms0 = bh_now_ms();
	for (int i = 0; i < 200; i++) {
		r = heartbeat(f->c, lease, 30000, 0);
		BH_EQ_U64(r->heartbeat->lease_id, lease);
		BH_CHECK(r->heartbeat->deadline_us >= last, "deadline went back");
		last = r->heartbeat->deadline_us;
		bh_free(r);
	}
	uint64_t t1 = last_txnid(&f->b), secs = (bh_now_ms() - ms0) / 1000;
	// a sweep a second (and a spare): never one commit per heartbeat
	BH_CHECK(t1 - t0 <= 2 * secs + 4, "%" PRIu64 " commits for 200 "
	    "heartbeats in %" PRIu64 " s", t1 - t0, secs);
}

// A renewal kept in memory is written by the next sweep: after it a kill
// -9 loses nothing.
static void
test_renewal_survives_kill9(void **state)
{
	bh_fx *f = *state;
	Copal__Reply *r = heartbeat(f->c, 0, 30000, 0);
	uint64_t lease = r->heartbeat->lease_id;
	bh_free(r);
	bh_sleep_ms(1200);
	r = heartbeat(f->c, lease, 60000, 0);
	uint64_t d = r->heartbeat->deadline_us;
	bh_free(r);
	bh_sleep_ms(2500); // more than a sweep interval
	bh_kill9(&f->b);
	uint64_t s = stored_deadline(&f->b, lease);
	BH_CHECK(s >= d, "stored deadline %" PRIu64 " before the renewed "
	    "%" PRIu64, s, d);
	bh_start(&f->b);
}

// And a broker that stops writes what it kept, at once.
static void
test_renewal_survives_stop(void **state)
{
	bh_fx *f = *state;
	Copal__Reply *r = heartbeat(f->c, 0, 30000, 0);
	uint64_t lease = r->heartbeat->lease_id;
	bh_free(r);
	bh_sleep_ms(1200);
	r = heartbeat(f->c, lease, 60000, 0);
	uint64_t d = r->heartbeat->deadline_us;
	bh_free(r);
	bh_stop(&f->b);
	uint64_t s = stored_deadline(&f->b, lease);
	BH_CHECK(s >= d, "stored deadline %" PRIu64 " before the renewed "
	    "%" PRIu64, s, d);
	bh_start(&f->b);
}

// A lease of the shortest TTL kept alive by heartbeats alone: its claims
// (judged by the stored deadline) are never refused, and no sweep ends it.
static void
test_short_ttl_claims(void **state)
{
	bh_fx *f = *state;
	Copal__Reply *r = heartbeat(f->c, 0, 1000, 0);
	uint64_t lease = r->heartbeat->lease_id;
	bh_free(r);
	for (int i = 0; i < 16; i++) {
		bh_sleep_ms(250);
		bh_free(heartbeat(f->c, lease, 1000, 0));
		Copal__ClaimRequest cl = COPAL__CLAIM_REQUEST__INIT;
		Copal__NodeCapacity nc = COPAL__NODE_CAPACITY__INIT, *ncp = &nc;
		nc.free_units = 5040;
		cl.lease_id = lease;
		cl.max_tasks = 1;
		cl.n_nodes = 1;
		cl.nodes = &ncp;
		BH_REQ(rq, CLAIM, claim, &cl);
		bh_free(BH_OK(f->c, &rq));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_heartbeat_no_commit,
		    bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_renewal_survives_kill9,
		    bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_renewal_survives_stop,
		    bh_fx_setup, bh_fx_teardown),
		cmocka_unit_test_setup_teardown(test_short_ttl_claims,
		    bh_fx_setup, bh_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
