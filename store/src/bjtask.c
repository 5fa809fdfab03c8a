// copal store: tasks by batch job. A launcher that runs in a batch job
// says so when it takes its lease (lease_bj); every task it moves to
// RUNNING is indexed under the job (bj_task) and counted (bj_count), so
// that `copal ls --batch-job ID` walks one index range and `copal ls
// queues` reads three numbers per job.
#include <stdio.h>
#include <stdlib.h>

#include "store_impl.h"

int
cs_lease_bjob(cpl_txn *t, uint64_t lease, uint64_t *bjob)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (lease != 0 && t->bj_lease == lease) {
		*bjob = t->bj_id;
		return 0;
	}
	*bjob = 0;
	be64(k, lease);
	rv = tget(t, DB_LEASE_BJ, k, 8, &v);
	if (rv == CPL_ENOTFOUND)
		rv = 0;
	else if (rv == 0 && v.mv_size < 8)
		return fail(t, CPL_ECORRUPT);
	else if (rv == 0)
		*bjob = rd64(v.mv_data);
	if (rv)
		return rv;
	t->bj_lease = lease;
	t->bj_id = *bjob;
	return 0;
}

static int
count_get(cpl_txn *t, uint64_t bjob, struct bjcount *c)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	memset(c, 0, sizeof(*c));
	be64(k, bjob);
	rv = tget(t, DB_BJ_COUNT, k, 8, &v);
	if (rv == CPL_ENOTFOUND)
		return 0;
	if (rv)
		return rv;
	if (v.mv_size != sizeof(*c))
		return fail(t, CPL_ECORRUPT);
	memcpy(c, v.mv_data, sizeof(*c));
	return 0;
}

int
cs_bj_note(cpl_txn *t, uint64_t id, uint64_t lease, cpl_state from,
    cpl_state to)
{
	struct bjcount c;
	uint64_t bjob;
	uint8_t k[16];
	int rv;
	if ((rv = cs_lease_bjob(t, lease, &bjob)) != 0 || bjob == 0)
		return rv;
	if ((rv = count_get(t, bjob, &c)) != 0)
		return rv;
	if (to == CPL_RUNNING) {
		pair_key(k, bjob, id);
		MDB_val key = { 16, k }, val = { 0, (void *)"" };
		int rc = mdb_put(t->txn, t->s->dbi[DB_BJ_TASK], &key, &val,
		    MDB_NOOVERWRITE);
		t->changes++;
		if (rc == 0)
			c.ran++; // a task run again in the same job counts once
		else if (rc != MDB_KEYEXIST)
			return fail(t, map_mdb(rc));
		c.running++;
	}
	if (from == CPL_RUNNING) {
		if (c.running > 0)
			c.running--;
		if (to == CPL_RUN_ERROR || to == CPL_RUN_TIMEOUT)
			c.failed++;
	}
	be64(k, bjob);
	return tput(t, DB_BJ_COUNT, k, 8, &c, sizeof(c), 0);
}

int
cs_bj_forget(cpl_txn *t, uint64_t bjob, uint64_t id)
{
	struct bjcount c;
	uint8_t k[16];
	int rv;
	pair_key(k, bjob, id);
	MDB_val key = { 16, k };
	int rc = mdb_del(t->txn, t->s->dbi[DB_BJ_TASK], &key, NULL);
	t->changes++;
	if (rc == MDB_NOTFOUND)
		return 0; // never RUNNING in this job, or forgotten already
	if (rc)
		return fail(t, map_mdb(rc));
	if ((rv = count_get(t, bjob, &c)) != 0)
		return rv;
	if (c.ran > 0)
		c.ran--;
	be64(k, bjob);
	return tput(t, DB_BJ_COUNT, k, 8, &c, sizeof(c), 0);
}

int
cpl_bjob_counts(cpl_txn *t, uint64_t bjob, uint64_t *ran, uint64_t *running,
    uint64_t *failed)
{
	struct bjcount c;
	int rv;
	if (t == NULL)
		return CPL_EINVAL;
	if ((rv = count_get(t, bjob, &c)) != 0)
		return rv;
	if (ran)
		*ran = c.ran;
	if (running)
		*running = c.running;
	if (failed)
		*failed = c.failed;
	return 0;
}

int
cpl_lease_batch_job(cpl_txn *t, uint64_t lease, uint64_t *bjob, char *sid,
    size_t sidlen)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t == NULL || bjob == NULL)
		return CPL_EINVAL;
	*bjob = 0;
	if (sid && sidlen)
		sid[0] = '\0';
	be64(k, lease);
	if ((rv = tget(t, DB_LEASE_BJ, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size < 8)
		return fail(t, CPL_ECORRUPT);
	*bjob = rd64(v.mv_data);
	if (sid && sidlen) {
		size_t n = v.mv_size - 8;
		if (n > sidlen - 1)
			n = sidlen - 1;
		memcpy(sid, (const uint8_t *)v.mv_data + 8, n);
		sid[n] = '\0';
	}
	return 0;
}

bool
cpl_bjob_ran(cpl_txn *t, uint64_t bjob, uint64_t id)
{
	uint8_t k[16];
	MDB_val v;
	if (t == NULL)
		return false;
	pair_key(k, bjob, id);
	return tget(t, DB_BJ_TASK, k, 16, &v) == 0;
}

// ------------------------------------------------------------ the check

struct bjrun {
	uint64_t bjob, n;
};

static int
bj_count_cb(uint64_t id, void *arg)
{
	(void)id;
	(*(uint64_t *)arg)++;
	return 0;
}

#define BJ_BAD(...)                                                     \
	do {                                                            \
		snprintf(why, len, __VA_ARGS__);                        \
		rv = CPL_ECORRUPT;                                      \
		goto out;                                               \
	} while (0)

// cpl_store_check's part (the first problem in why, CPL_ECORRUPT): every
// lease_bj and bj_task entry names a batch job that exists; bj_count's
// `ran` is the number of its job's bj_task entries (never removed, a
// deleted task's included), its `running` the tasks in RUNNING under a
// lease of the job, each of which has its bj_task entry; no job has
// entries without a counter.
int
cs_bj_check(cpl_txn *t, char *why, size_t len)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct bjrun *run = NULL;
	size_t nrun = 0;
	uint64_t last = 0;
	uint8_t key[16];
	int rc, rv = 0;

	if ((rv = tcursor(t, DB_LEASE_BJ, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8 || v.mv_size < 8 || v.mv_size > 8 + 127)
			BJ_BAD("lease_bj: an entry of %zu+%zu bytes",
			    k.mv_size, v.mv_size);
		uint64_t bj = rd64(v.mv_data), lid = rd64(k.mv_data);
		MDB_val x;
		if (lid == 0 || lid >= t->meta.next_lease)
			BJ_BAD("lease_bj: lease %llu was never granted",
			    (unsigned long long)lid);
		if (bj == 0 || tget(t, DB_BJOB, v.mv_data, 8, &x) != 0)
			BJ_BAD("lease_bj: lease %llu names batch job %llu, "
			    "which does not exist", (unsigned long long)lid,
			    (unsigned long long)bj);
	}
	mdb_cursor_close(c);
	c = NULL;
	// bj_task, by job: each job exists and has its counter
	if ((rv = tcursor(t, DB_BJ_TASK, &c)) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 || v.mv_size != 0)
			BJ_BAD("bj_task: an entry of %zu+%zu bytes",
			    k.mv_size, v.mv_size);
		uint64_t bj = rd64(k.mv_data);
		MDB_val x;
		if (bj == last)
			continue;
		last = bj;
		if (bj == 0 || tget(t, DB_BJOB, k.mv_data, 8, &x) != 0)
			BJ_BAD("bj_task: task %llu is filed under batch job "
			    "%llu, which does not exist",
			    (unsigned long long)rd64((uint8_t *)k.mv_data + 8),
			    (unsigned long long)bj);
		if (tget(t, DB_BJ_COUNT, k.mv_data, 8, &x) != 0)
			BJ_BAD("bj_count: batch job %llu ran tasks but has "
			    "no counts", (unsigned long long)bj);
	}
	mdb_cursor_close(c);
	c = NULL;
	// the tasks RUNNING now, by the batch job of their lease
	st_key(key, CPL_RUNNING, 0);
	if ((rv = tcursor(t, DB_ST_IDX, &c)) != 0)
		goto out;
	k.mv_size = 9;
	k.mv_data = key;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 &&
	     k.mv_size == 9 && ((uint8_t *)k.mv_data)[0] == key[0];
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t id = rd64((uint8_t *)k.mv_data + 1), bj = 0;
		struct srec r;
		MDB_val lv;
		uint8_t lk[8];
		if (srec_get(t, id, &r) != 0 || r.lease == 0) {
			t->err = 0;
			continue; // the rest of the check says why
		}
		be64(lk, r.lease);
		if (tget(t, DB_LEASE_BJ, lk, 8, &lv) != 0)
			continue; // a launcher started by hand
		bj = rd64(lv.mv_data);
		pair_key(key, bj, id);
		if (tget(t, DB_BJ_TASK, key, 16, &lv) != 0)
			BJ_BAD("bj_task: task %llu, RUNNING in batch job %llu, "
			    "is not filed under it", (unsigned long long)id,
			    (unsigned long long)bj);
		size_t i = 0;
		while (i < nrun && run[i].bjob != bj)
			i++;
		if (i == nrun) {
			struct bjrun *nr = realloc(run, (nrun + 1) *
			    sizeof(*run));
			if (nr == NULL) {
				rv = fail(t, CPL_ENOMEM);
				goto out;
			}
			run = nr;
			run[nrun++] = (struct bjrun){ bj, 0 };
		}
		run[i].n++;
	}
	mdb_cursor_close(c);
	c = NULL;
	// each counter against a recount
	if ((rv = tcursor(t, DB_BJ_COUNT, &c)) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct bjcount bc;
		uint64_t ran = 0, running = 0;
		MDB_val x;
		if (k.mv_size != 8 || v.mv_size != sizeof(bc))
			BJ_BAD("bj_count: an entry of %zu+%zu bytes",
			    k.mv_size, v.mv_size);
		uint64_t bj = rd64(k.mv_data);
		memcpy(&bc, v.mv_data, sizeof(bc));
		if (tget(t, DB_BJOB, k.mv_data, 8, &x) != 0)
			BJ_BAD("bj_count: counts of batch job %llu, which "
			    "does not exist", (unsigned long long)bj);
		if ((rv = cs_pair_walk(t, DB_BJ_TASK, bj, bj_count_cb,
		         &ran)) != 0)
			goto out;
		if (bc.ran != ran)
			BJ_BAD("bj_count: batch job %llu ran %llu tasks, "
			    "recount from bj_task %llu", (unsigned long long)bj,
			    (unsigned long long)bc.ran,
			    (unsigned long long)ran);
		for (size_t i = 0; i < nrun; i++)
			if (run[i].bjob == bj) {
				running = run[i].n;
				run[i].bjob = 0; // seen
			}
		if (bc.running != running)
			BJ_BAD("bj_count: batch job %llu has %llu tasks "
			    "running, recount %llu", (unsigned long long)bj,
			    (unsigned long long)bc.running,
			    (unsigned long long)running);
	}
	for (size_t i = 0; i < nrun; i++)
		if (run[i].bjob != 0)
			BJ_BAD("bj_count: batch job %llu runs %llu tasks but "
			    "has no counts", (unsigned long long)run[i].bjob,
			    (unsigned long long)run[i].n);
out:
	if (c)
		mdb_cursor_close(c);
	free(run);
	if (rv == CPL_ECORRUPT)
		t->err = 0;
	return rv;
}
