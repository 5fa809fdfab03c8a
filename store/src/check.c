// copal store: cpl_store_check: rebuild every index and counter from the
// primary records (state, spec, event) in memory and compare with what is
// stored.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_impl.h"

struct kset {
	size_t w; // bytes per entry: key || value
	size_t n, cap;
	uint8_t *b;
};

static int
kset_add(struct kset *s, const void *k, size_t kl, const void *v, size_t vl)
{
	if (kl + vl != s->w)
		return CPL_EINTERNAL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint8_t *b = realloc(s->b, cap * s->w);
		if (b == NULL)
			return CPL_ENOMEM;
		s->b = b;
		s->cap = cap;
	}
	memcpy(s->b + s->n * s->w, k, kl);
	if (vl)
		memcpy(s->b + s->n * s->w + kl, v, vl);
	s->n++;
	return 0;
}

static int
kset_cmp(const void *a, const void *b, void *w)
{
	return memcmp(a, b, *(size_t *)w);
}

struct report {
	char *buf;
	size_t len, used;
	unsigned problems;
};

static void
say(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct report *r, const char *fmt, ...)
{
	va_list ap;
	r->problems++;
	if (r->buf == NULL || r->used + 1 >= r->len || r->problems > 20)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(r->buf + r->used, r->len - r->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->used += (size_t)n < r->len - r->used ? (size_t)n : r->len - r->used - 1;
	if (r->used + 1 < r->len) {
		r->buf[r->used++] = '\n';
		r->buf[r->used] = '\0';
	}
}

// Compares a database with the expected entries (sorted here).
static int
kset_compare(cpl_txn *t, int db, struct kset *s, struct report *rep)
{
	MDB_cursor *c;
	MDB_val k, v;
	size_t i = 0;
	int rc, rv;
	uint8_t *cur;
	if (s->n)
		qsort_r(s->b, s->n, s->w, kset_cmp, &s->w);
	if ((cur = malloc(s->w ? s->w : 1)) == NULL)
		return CPL_ENOMEM;
	if ((rv = tcursor(t, db, &c)) != 0) {
		free(cur);
		return rv;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size + v.mv_size != s->w) {
			say(rep, "%s: entry of %zu+%zu bytes, expected %zu",
			    cs_db_names[db], k.mv_size, v.mv_size, s->w);
			continue;
		}
		memcpy(cur, k.mv_data, k.mv_size);
		memcpy(cur + k.mv_size, v.mv_data, v.mv_size);
		// expected entries smaller than this one are missing
		while (i < s->n && memcmp(s->b + i * s->w, cur, s->w) < 0) {
			say(rep, "%s: missing entry #%zu", cs_db_names[db], i);
			i++;
		}
		if (i < s->n && memcmp(s->b + i * s->w, cur, s->w) == 0)
			i++;
		else
			say(rep, "%s: unexpected entry", cs_db_names[db]);
	}
	for (; i < s->n; i++)
		say(rep, "%s: missing entry #%zu", cs_db_names[db], i);
	if (rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	free(cur);
	return rv;
}

struct check_ctx {
	char *buf;
	size_t len;
};

enum { K_ST, K_RUNQ, K_UUID, K_UUID_NEW, K_WF, K_APP, K_CHILD, K_PARENT, K_LEASE,
	K_TASKEV, K_WRUNQ, K_MRUNQ, K_WMRUNQ, K_RUNQ_LL, K_WRUNQ_LL,
	K_NKSETS, K_UUID_GEN = K_NKSETS };

// Compares uuid_gen with the expected (uuid, id) entries in s: its keys
// (generation, uuid) are of generations 1 to ugen's, the newest holds as
// many as ugen says, and without their generation they are s's entries.
static int
uuid_gen_compare(cpl_txn *t, struct kset *s, struct report *rep)
{
	struct kset got = { 24, 0, 0, NULL };
	struct ugen g;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t newest = 0;
	int rc, rv;
	if ((rv = cs_ugen_load(t, &g)) != 0)
		return rv;
	if ((rv = tcursor(t, DB_UUID_GEN, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 20 || v.mv_size != 8) {
			say(rep, "uuid_gen: entry of %zu+%zu bytes, expected "
			    "20+8", k.mv_size, v.mv_size);
			continue;
		}
		uint32_t gen = rd32(k.mv_data);
		if (gen == 0 || gen > g.gen)
			say(rep, "uuid_gen: entry of generation %u, newest %u",
			    gen, g.gen);
		newest += gen == g.gen;
		rv = kset_add(&got, (const uint8_t *)k.mv_data + 4, 16,
		    v.mv_data, 8);
	}
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	if (rv == 0 && newest != g.n)
		say(rep, "uuid_gen: %llu entries in generation %u, meta says "
		    "%llu", (unsigned long long)newest, g.gen,
		    (unsigned long long)g.n);
	if (rv == 0) {
		if (s->n)
			qsort_r(s->b, s->n, s->w, kset_cmp, &s->w);
		if (got.n)
			qsort_r(got.b, got.n, got.w, kset_cmp, &got.w);
		size_t i = 0, j = 0;
		while (i < s->n || j < got.n) {
			int d = i == s->n ? 1 : j == got.n ? -1 :
			    memcmp(s->b + i * 24, got.b + j * 24, 24);
			if (d < 0) {
				say(rep, "uuid_gen: missing entry #%zu", i);
				i++;
			} else if (d > 0) {
				say(rep, "uuid_gen: unexpected entry");
				j++;
			} else {
				i++;
				j++;
			}
		}
	}
	free(got.b);
	return rv;
}

static int
check_cb(cpl_txn *t, void *arg)
{
	struct check_ctx *cc = arg;
	struct report rep = { cc->buf, cc->len, 0, 0 };
	struct kset ks[K_NKSETS + 1] = {
		[K_ST] = { 9, 0, 0, NULL },
		[K_RUNQ] = { 12 + sizeof(struct fit), 0, 0, NULL },
		[K_UUID] = { 24, 0, 0, NULL },
		[K_UUID_NEW] = { 24, 0, 0, NULL },
		[K_WF] = { 12, 0, 0, NULL },
		[K_APP] = { 12, 0, 0, NULL },
		[K_CHILD] = { 16, 0, 0, NULL },
		[K_PARENT] = { 16, 0, 0, NULL },
		[K_LEASE] = { 16, 0, 0, NULL },
		[K_TASKEV] = { 16, 0, 0, NULL },
		[K_WRUNQ] = { 16 + sizeof(struct fit), 0, 0, NULL },
		[K_MRUNQ] = { 16 + sizeof(struct fit), 0, 0, NULL },
		[K_WMRUNQ] = { 20 + sizeof(struct fit), 0, 0, NULL },
		[K_RUNQ_LL] = { 20 + sizeof(struct fit), 0, 0, NULL },
		[K_WRUNQ_LL] = { 24 + sizeof(struct fit), 0, 0, NULL },
		[K_UUID_GEN] = { 24, 0, 0, NULL },
	};
	static const int ks_db[K_NKSETS] = { DB_ST_IDX, DB_RUNQ, DB_UUID,
		DB_UUID_NEW,
		DB_WF_IDX, DB_APP_IDX, DB_CHILD, DB_PARENT, DB_LEASE_IDX,
		DB_TASK_EV, DB_WRUNQ, DB_MRUNQ, DB_WMRUNQ, DB_RUNQ_LL,
		DB_WRUNQ_LL };
	uint64_t counts[CPL_NSTATES] = { 0 };
	uint64_t *wfn = calloc(t->meta.next_wf + 1, sizeof(uint64_t));
	uint64_t *appn = calloc(t->meta.next_app + 1, sizeof(uint64_t));
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint8_t key[24];
	int rc, rv = 0;
	uint64_t nspec = 0, ntask = 0;
	uint64_t ntag[3] = { 0 }; // entries tags, tag_idx, tag_runq must have

	if (wfn == NULL || appn == NULL) {
		rv = CPL_ENOMEM;
		goto out;
	}
	if (cc->buf && cc->len)
		cc->buf[0] = '\0';
	// 1. every task: its record, its spec, what indices it implies
	if ((rv = tcursor(t, DB_STATE, &c)) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct srec r;
		Copal__TaskSpec *sp = NULL;
		if (k.mv_size != 8 || v.mv_size != sizeof(r)) {
			say(&rep, "state: bad record size");
			continue;
		}
		uint64_t id = rd64(k.mv_data);
		memcpy(&r, v.mv_data, sizeof(r));
		ntask++;
		if (id >= t->meta.next_task)
			say(&rep, "task %llu: id beyond next id",
			    (unsigned long long)id);
		if (r.state == 0 || r.state >= CPL_NSTATES) {
			say(&rep, "task %llu: bad state %u",
			    (unsigned long long)id, r.state);
			continue;
		}
		counts[r.state]++;
		if (r.wf < t->meta.next_wf)
			wfn[r.wf]++;
		else
			say(&rep, "task %llu: unknown workflow id",
			    (unsigned long long)id);
		if (r.app < t->meta.next_app)
			appn[r.app]++;
		else
			say(&rep, "task %llu: unknown app id",
			    (unsigned long long)id);
		st_key(key, (cpl_state)r.state, id);
		if ((rv = kset_add(&ks[K_ST], key, 9, NULL, 0)) != 0)
			break;
		if (runnable(&r)) {
			// one node: runq and wrunq; more: mrunq and wmrunq
			struct fit f = fit_of(&r);
			uint8_t wk[20];
			int db[2];
			size_t len[2];
			runq_keys(&r, id, db, key, wk, len);
			bool m = db[0] == DB_MRUNQ;
			if ((rv = kset_add(&ks[m ? K_MRUNQ : K_RUNQ], key,
			         len[0], &f, sizeof(f))) != 0 ||
			    (rv = kset_add(&ks[m ? K_WMRUNQ : K_WRUNQ], wk,
			         len[1], &f, sizeof(f))) != 0)
				break;
		}
		// the long_large_first queues, once kept (else empty)
		if (runnable(&r) && (t->meta.flags & META_LL_QUEUES)) {
			struct fit f = fit_of(&r);
			runq_ll_key(key, r.priority, fit_size(&f), id);
			if ((rv = kset_add(&ks[K_RUNQ_LL], key, 20, &f,
			         sizeof(f))) != 0)
				break;
			wrunq_ll_key(key, r.wf, r.priority, fit_size(&f), id);
			if ((rv = kset_add(&ks[K_WRUNQ_LL], key, 24, &f,
			         sizeof(f))) != 0)
				break;
		}
		// a uuid lives in exactly one of uuid_new, uuid and uuid_gen
		be64(key, id);
		MDB_val uv;
		int kind = K_UUID_NEW;
		if (tget(t, DB_UUID_NEW, r.uuid, 16, &uv) != 0)
			kind = tget(t, DB_UUID, r.uuid, 16, &uv) == 0 ? K_UUID :
			    K_UUID_GEN;
		t->err = 0;
		if ((rv = kset_add(&ks[kind], r.uuid, 16, key, 8)) != 0)
			break;
		idx32_key(key, r.wf, id);
		if ((rv = kset_add(&ks[K_WF], key, 12, NULL, 0)) != 0)
			break;
		idx32_key(key, r.app, id);
		if ((rv = kset_add(&ks[K_APP], key, 12, NULL, 0)) != 0)
			break;
		if (r.lease) {
			struct lrec l;
			if (!holds_lease((cpl_state)r.state))
				say(&rep, "task %llu: held in state %s",
				    (unsigned long long)id,
				    cpl_state_name(r.state));
			if (cs_lease_load(t, r.lease, &l) != 0)
				say(&rep, "task %llu: lease %llu missing",
				    (unsigned long long)id,
				    (unsigned long long)r.lease);
			pair_key(key, r.lease, id);
			if ((rv = kset_add(&ks[K_LEASE], key, 16, NULL, 0)) != 0)
				break;
		}
		if (cs_spec_read(t, id, &sp) != 0) {
			t->err = 0;
			say(&rep, "task %llu: spec missing or unreadable",
			    (unsigned long long)id);
			continue;
		}
		{
			char why[200];
			if (cs_tag_check_task(t, id, &r, sp, ntag, why,
			        sizeof(why)) != 0) {
				t->err = 0;
				say(&rep, "task %llu: %s", (unsigned long long)id,
				    why);
			}
		}
		uint32_t pending = 0;
		for (size_t i = 0; i < sp->n_parent_ids; i++) {
			struct srec pr;
			uint64_t pid = sp->parent_ids[i];
			pair_key(key, pid, id);
			if ((rv = kset_add(&ks[K_CHILD], key, 16, NULL, 0)) != 0)
				break;
			pair_key(key, id, pid);
			if ((rv = kset_add(&ks[K_PARENT], key, 16, NULL, 0)) != 0)
				break;
			if (srec_get(t, pid, &pr) != 0) {
				t->err = 0;
				say(&rep, "task %llu: parent %llu missing",
				    (unsigned long long)id,
				    (unsigned long long)pid);
				continue;
			}
			if (pr.state != CPL_JOB_FINISHED)
				pending++;
		}
		if (pending != r.pending)
			say(&rep, "task %llu: pending parents %u, recount %u",
			    (unsigned long long)id, r.pending, pending);
		copal__task_spec__free_unpacked(sp, NULL);
	}
	mdb_cursor_close(c);
	c = NULL;
	if (rv)
		goto out;
	// 2. no spec without a task
	if ((rv = tcursor(t, DB_SPEC, &c)) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		nspec++;
	mdb_cursor_close(c);
	c = NULL;
	if (nspec != ntask)
		say(&rep, "spec: %llu records for %llu tasks",
		    (unsigned long long)nspec, (unsigned long long)ntask);
	// 3. the event log: contiguous sequence, per-task index
	if ((rv = tcursor(t, DB_EVENT, &c)) != 0)
		goto out;
	// (archiving removes events: the log then has gaps, as many seqs as
	// meta "archived" counts)
	uint64_t want = 1, nev = 0, narch = 0;
	if ((rv = cs_archived_events(t, &narch)) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct evrec e;
		if (k.mv_size != 8 || v.mv_size < sizeof(e)) {
			say(&rep, "event: bad record");
			continue;
		}
		memcpy(&e, v.mv_data, sizeof(e));
		uint64_t seq = rd64(k.mv_data);
		if (seq != want && narch == 0)
			say(&rep, "event: seq %llu where %llu expected",
			    (unsigned long long)seq, (unsigned long long)want);
		want = seq + 1;
		nev++;
		if ((e.flags & ~EVF_ETIME) || v.mv_size != sizeof(e) +
		    e.nodelen + e.msglen + ((e.flags & EVF_ETIME) ? 8 : 0) +
		    e.userlen)
			say(&rep, "event %llu: bad message length",
			    (unsigned long long)seq);
		pair_key(key, e.task, seq);
		if ((rv = kset_add(&ks[K_TASKEV], key, 16, NULL, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	c = NULL;
	if (rv)
		goto out;
	if (want > t->meta.next_seq || (narch == 0 && want != t->meta.next_seq))
		say(&rep, "event: log ends at %llu, next seq %llu",
		    (unsigned long long)want - 1,
		    (unsigned long long)t->meta.next_seq);
	if (nev + narch != t->meta.next_seq - 1)
		say(&rep, "event: %llu events and %llu archived, next seq "
		    "%llu", (unsigned long long)nev, (unsigned long long)narch,
		    (unsigned long long)t->meta.next_seq);
	if (ks[K_UUID_NEW].n != t->meta.uuid_new_n)
		say(&rep, "uuid_new: %zu entries, meta says %llu",
		    ks[K_UUID_NEW].n, (unsigned long long)t->meta.uuid_new_n);
	// 3b. the lease log: one entry per lease ever granted, ids 1..next-1
	if ((rv = tcursor(t, DB_LEASE_LOG, &c)) != 0)
		goto out;
	uint64_t want_lease = 1;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t lid = k.mv_size == 8 ? rd64(k.mv_data) : 0;
		if (lid != want_lease)
			say(&rep, "lease_log: lease %llu where %llu expected",
			    (unsigned long long)lid,
			    (unsigned long long)want_lease);
		want_lease = lid + 1;
	}
	mdb_cursor_close(c);
	c = NULL;
	if (want_lease != t->meta.next_lease)
		say(&rep, "lease_log: ends at %llu, next lease %llu",
		    (unsigned long long)want_lease - 1,
		    (unsigned long long)t->meta.next_lease);
	// 4. indices
	for (int i = 0; i < K_NKSETS && rv == 0; i++)
		rv = kset_compare(t, ks_db[i], &ks[i], &rep);
	if (rv == 0)
		rv = uuid_gen_compare(t, &ks[K_UUID_GEN], &rep);
	if (rv)
		goto out;
	// 5. counters
	for (int s = 0; s < CPL_NSTATES; s++)
		if (counts[s] != t->meta.counts[s])
			say(&rep, "count of %s: stored %llu, recount %llu",
			    cpl_state_name(s),
			    (unsigned long long)t->meta.counts[s],
			    (unsigned long long)counts[s]);
	for (int kind = 0; kind < 2; kind++) {
		char kc = kind ? 'a' : 'w';
		uint32_t next = kind ? t->meta.next_app : t->meta.next_wf;
		uint64_t *arr = kind ? appn : wfn;
		for (uint32_t id = 1; id < next; id++) {
			char name[MAX_NAME + 1];
			uint8_t nk[1 + MAX_NAME];
			uint8_t rk[5];
			rk[0] = (uint8_t)(kc - 'a' + 'A');
			be32(rk + 1, id);
			if (tget(t, DB_NAMES, rk, 5, &v) != 0) {
				t->err = 0;
				if (arr[id])
					say(&rep, "%c%u: tasks of a removed name",
					    kc, id);
				continue;
			}
			size_t n = v.mv_size > MAX_NAME ? MAX_NAME : v.mv_size;
			memcpy(name, v.mv_data, n);
			name[n] = '\0';
			nk[0] = (uint8_t)kc;
			memcpy(nk + 1, name, n);
			struct nrec nr;
			if (tget(t, DB_NAMES, nk, 1 + n, &v) != 0 ||
			    v.mv_size != sizeof(nr)) {
				t->err = 0;
				say(&rep, "%c %s: name record missing", kc, name);
				continue;
			}
			memcpy(&nr, v.mv_data, sizeof(nr));
			if (nr.id != id)
				say(&rep, "%c %s: id %u, reverse %u", kc, name,
				    nr.id, id);
			if (nr.count != arr[id])
				say(&rep, "%c %s: count %llu, recount %llu",
				    kc, name, (unsigned long long)nr.count,
				    (unsigned long long)arr[id]);
			// every app that tasks name must still be registered
			if (kc == 'a' && tget(t, DB_APP, name, n, &v) != 0) {
				t->err = 0;
				say(&rep, "app %s: named by %llu task(s) but not "
				    "registered", name,
				    (unsigned long long)arr[id]);
			}
		}
	}
	if (rv == 0) {
		char why[300];
		if (cs_tag_check_counts(t, why, sizeof(why)) != 0) {
			t->err = 0;
			say(&rep, "%s", why);
		}
	}
	if (rv == 0) {
		char why[300];
		if ((rv = cs_bj_check(t, why, sizeof(why))) == CPL_ECORRUPT) {
			rv = 0;
			say(&rep, "%s", why);
		}
	}
	if (rv == 0) {
		char why[300];
		if ((rv = cs_reply_check(t, why, sizeof(why))) ==
		    CPL_ECORRUPT) {
			rv = 0;
			say(&rep, "%s", why);
		}
	}
	// every entry the tasks imply is there (above): equal totals mean
	// none is left over
	static const int tdb[3] = { DB_TAGS, DB_TAG_IDX, DB_TAG_RUNQ };
	for (int i = 0; i < 3 && rv == 0; i++) {
		MDB_stat st;
		if (mdb_stat(t->txn, t->s->dbi[tdb[i]], &st) == 0 &&
		    st.ms_entries != ntag[i])
			say(&rep, "%s: %llu entries, the tasks imply %llu",
			    cs_db_names[tdb[i]],
			    (unsigned long long)st.ms_entries,
			    (unsigned long long)ntag[i]);
	}
out:
	if (c)
		mdb_cursor_close(c);
	for (int i = 0; i <= K_NKSETS; i++)
		free(ks[i].b);
	free(wfn);
	free(appn);
	if (rv)
		return rv;
	return rep.problems ? CPL_ECORRUPT : 0;
}

int
cpl_store_check(cpl_store *s, char *report, size_t len)
{
	struct check_ctx cc = { report, len };
	if (s == NULL)
		return CPL_EINVAL;
	if (report && len)
		report[0] = '\0';
	return cpl_store_read(s, check_cb, &cc);
}

int
cpl_txn_check(cpl_txn *txn, char *report, size_t len)
{
	struct check_ctx cc = { report, len };
	if (txn == NULL)
		return CPL_EINVAL;
	if (report && len)
		report[0] = '\0';
	// check_cb clears the errors of its own lookups: never one from before
	if (txn->err)
		return txn->err;
	return check_cb(txn, &cc);
}
