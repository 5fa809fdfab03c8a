// copal store: tasks by batch job. A launcher that runs in a batch job
// says so when it takes its lease (lease_bj); every task it moves to
// RUNNING is indexed under the job (bj_task) and counted (bj_count), so
// that `copal ls --batch-job ID` walks one index range and `copal ls
// queues` reads three numbers per job.
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
