// copal store: the tag indices. A task's "key=value" tags are kept three
// ways: its own list (tags: id -> the tags, NUL-terminated, which the run
// queue's helpers read without unpacking the spec), tasks by tag (tag_idx:
// tag NUL id, for listing, counting and filters) and runnable tasks by tag
// in claim order (tag_runq: tag NUL ~prio id -> fit, for a launcher that
// claims only tagged work). All three change in the transaction that
// changes the task.
#include <stdio.h>
#include <stdlib.h>

#include "copal/params.h"
#include "store_impl.h"

#define TAGKEY_MAX (CPL_TAG_MAX + 1 + 12)

size_t
cs_tag_prefix(uint8_t *k, const char *tag)
{
	size_t n = strlen(tag);
	if (n == 0 || n > CPL_TAG_MAX)
		return 0;
	memcpy(k, tag, n);
	k[n] = 0;
	return n + 1;
}

// Reads a task's tag list: *blob and *len (valid until the transaction
// ends or writes); an untagged task has none (CPL_ENOTFOUND).
static int
tags_get(cpl_txn *t, uint64_t id, const char **blob, size_t *len)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	be64(k, id);
	if ((rv = tget(t, DB_TAGS, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size == 0 || ((const char *)v.mv_data)[v.mv_size - 1] != 0)
		return fail(t, CPL_ECORRUPT);
	*blob = v.mv_data;
	*len = v.mv_size;
	return 0;
}

int
cs_tag_runq(cpl_txn *t, uint64_t id, const struct srec *r, bool add)
{
	const char *blob;
	size_t len;
	int rv;
	if ((rv = tags_get(t, id, &blob, &len)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	// the blob may move when we write: copy it
	char *copy = malloc(len);
	if (copy == NULL)
		return fail(t, CPL_ENOMEM);
	memcpy(copy, blob, len);
	struct fit f = fit_of(r);
	for (const char *p = copy; rv == 0 && p < copy + len;
	     p += strlen(p) + 1) {
		uint8_t k[TAGKEY_MAX];
		size_t pl = cs_tag_prefix(k, p);
		if (pl == 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		runq_key(k + pl, r->priority, id);
		rv = add ? tput(t, DB_TAG_RUNQ, k, pl + 12, &f, sizeof(f), 0) :
		           tdel(t, DB_TAG_RUNQ, k, pl + 12);
	}
	free(copy);
	return rv;
}

int
cs_tag_add(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp)
{
	size_t len = 0, n = 0;
	int rv = 0;
	if (sp->n_tags == 0)
		return 0;
	for (size_t i = 0; i < sp->n_tags; i++)
		len += strlen(sp->tags[i]) + 1;
	char *blob = malloc(len);
	if (blob == NULL)
		return fail(t, CPL_ENOMEM);
	for (size_t i = 0; i < sp->n_tags && rv == 0; i++) {
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(sp->tags[j], sp->tags[i]) == 0;
		if (dup)
			continue; // one entry per distinct tag
		uint8_t k[TAGKEY_MAX];
		size_t pl = cs_tag_prefix(k, sp->tags[i]);
		if (pl == 0) {
			rv = fail(t, CPL_EINVAL); // checked before: a bug
			break;
		}
		memcpy(blob + n, k, pl);
		n += pl;
		be64(k + pl, id);
		rv = tput(t, DB_TAG_IDX, k, pl + 8, "", 0, 0);
	}
	if (rv == 0) {
		uint8_t k[8];
		be64(k, id);
		rv = tput(t, DB_TAGS, k, 8, blob, n, 0);
	}
	free(blob);
	return rv;
}

int
cs_tag_del(cpl_txn *t, uint64_t id)
{
	const char *blob;
	size_t len;
	uint8_t k[TAGKEY_MAX];
	int rv;
	if ((rv = tags_get(t, id, &blob, &len)) != 0)
		return rv == CPL_ENOTFOUND ? 0 : rv;
	char *copy = malloc(len);
	if (copy == NULL)
		return fail(t, CPL_ENOMEM);
	memcpy(copy, blob, len);
	for (const char *p = copy; rv == 0 && p < copy + len;
	     p += strlen(p) + 1) {
		size_t pl = cs_tag_prefix(k, p);
		if (pl == 0) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		be64(k + pl, id);
		rv = tdel(t, DB_TAG_IDX, k, pl + 8);
	}
	free(copy);
	if (rv == 0) {
		be64(k, id);
		rv = tdel(t, DB_TAGS, k, 8);
	}
	return rv;
}

int
cs_tag_has(cpl_txn *t, uint64_t id, const char *tag, bool *has)
{
	return cs_tag_has_c(t, NULL, id, tag, has);
}

int
cs_tag_has_c(cpl_txn *t, MDB_cursor **c, uint64_t id, const char *tag,
    bool *has)
{
	uint8_t k[TAGKEY_MAX];
	MDB_val v;
	size_t pl = cs_tag_prefix(k, tag);
	*has = false;
	if (pl == 0)
		return 0;
	be64(k + pl, id);
	int rv = c ? cget(t, c, DB_TAG_IDX, k, pl + 8, &v) :
	             tget(t, DB_TAG_IDX, k, pl + 8, &v);
	if (rv == CPL_ENOTFOUND)
		return 0;
	if (rv == 0)
		*has = true;
	return rv;
}

int
cpl_count_tag(cpl_txn *t, const char *tag, uint64_t *counts)
{
	uint64_t c[CPL_NSTATES];
	MDB_val v;
	int rv;
	if (t == NULL || tag == NULL || counts == NULL ||
	    cpl_tag_check(tag, NULL, 0) != 0)
		return CPL_EINVAL;
	rv = tget(t, DB_TAG_CNT, tag, strlen(tag), &v);
	if (rv == CPL_ENOTFOUND)
		return 0;
	if (rv)
		return rv;
	if (v.mv_size != sizeof(c))
		return fail(t, CPL_ECORRUPT);
	memcpy(c, v.mv_data, sizeof(c));
	for (int i = 0; i < CPL_NSTATES; i++)
		counts[i] += c[i];
	return 0;
}

int
cs_tag_count(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to)
{
	const char *blob;
	size_t len;
	int rv;
	if ((rv = tags_get(t, id, &blob, &len)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	char *copy = malloc(len);
	if (copy == NULL)
		return fail(t, CPL_ENOMEM);
	memcpy(copy, blob, len);
	for (const char *p = copy; rv == 0 && p < copy + len;
	     p += strlen(p) + 1) {
		uint64_t c[CPL_NSTATES], total = 0;
		MDB_val v;
		size_t n = strlen(p);
		rv = tget(t, DB_TAG_CNT, p, n, &v);
		if (rv == CPL_ENOTFOUND) {
			memset(c, 0, sizeof(c));
			rv = 0;
		} else if (rv == 0 && v.mv_size == sizeof(c)) {
			memcpy(c, v.mv_data, sizeof(c));
		} else {
			rv = fail(t, rv ? rv : CPL_ECORRUPT);
			break;
		}
		if ((from != CPL_STATE_NONE && c[from] == 0)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		if (from != CPL_STATE_NONE)
			c[from]--;
		if (to != CPL_STATE_NONE)
			c[to]++;
		for (int i = 0; i < CPL_NSTATES; i++)
			total += c[i];
		// a tag no task has any more leaves no record
		rv = total ? tput(t, DB_TAG_CNT, p, n, c, sizeof(c), 0) :
		             tdel(t, DB_TAG_CNT, p, n);
	}
	free(copy);
	return rv;
}

int
cs_tag_check_counts(cpl_txn *t, char *why, size_t len)
{
	MDB_cursor *c, *sc = NULL;
	MDB_val k, v;
	uint64_t cnt[CPL_NSTATES], ntags = 0;
	char cur[CPL_TAG_MAX + 1] = "";
	size_t curlen = 0;
	MDB_stat st;
	int rc, rv = 0;
	// tag_idx is sorted by tag: recount each tag's run of entries
	if ((rv = tcursor(t, DB_TAG_IDX, &c)) != 0)
		return rv;
	memset(cnt, 0, sizeof(cnt));
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);; 
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *kb = k.mv_data;
		size_t tl = rc == 0 && k.mv_size > 9 ? k.mv_size - 9 : 0;
		if (rc == 0 && (tl == 0 || kb[tl] != 0)) {
			snprintf(why, len, "tag_idx: a malformed key");
			rv = CPL_ECORRUPT;
			break;
		}
		bool same = rc == 0 && tl == curlen && memcmp(kb, cur, tl) == 0;
		if (!same && curlen) {
			// the run of `cur` ended: compare with its counter
			uint64_t s[CPL_NSTATES];
			MDB_val cv;
			ntags++;
			if (tget(t, DB_TAG_CNT, cur, curlen, &cv) != 0 ||
			    cv.mv_size != sizeof(s) ||
			    (memcpy(s, cv.mv_data, sizeof(s)),
			        memcmp(s, cnt, sizeof(s)) != 0)) {
				t->err = 0;
				snprintf(why, len, "tag %s: its counter differs "
				    "from a recount", cur);
				rv = CPL_ECORRUPT;
				break;
			}
			memset(cnt, 0, sizeof(cnt));
		}
		if (rc != 0)
			break;
		if (!same) {
			memcpy(cur, kb, tl);
			cur[tl] = '\0';
			curlen = tl;
		}
		MDB_val sv;
		if (cget(t, &sc, DB_STATE, kb + tl + 1, 8, &sv) != 0 ||
		    sv.mv_size != sizeof(struct srec)) {
			t->err = 0;
			snprintf(why, len, "tag %s: an entry of no task", cur);
			rv = CPL_ECORRUPT;
			break;
		}
		uint8_t s = ((const struct srec *)sv.mv_data)->state;
		cnt[s < CPL_NSTATES ? s : 0]++;
	}
	if (sc)
		mdb_cursor_close(sc);
	mdb_cursor_close(c);
	if (rv == 0 && mdb_stat(t->txn, t->s->dbi[DB_TAG_CNT], &st) == 0 &&
	    st.ms_entries != ntags) {
		snprintf(why, len, "tag_cnt: %llu counters for %llu tags",
		    (unsigned long long)st.ms_entries,
		    (unsigned long long)ntags);
		rv = CPL_ECORRUPT;
	}
	return rv;
}

int
cpl_task_has_tags(cpl_txn *t, uint64_t id, const char *const *tags,
    size_t ntags, bool *has)
{
	int rv = 0;
	if (t == NULL || has == NULL || (ntags && tags == NULL))
		return CPL_EINVAL;
	*has = true;
	for (size_t i = 0; i < ntags && *has && rv == 0; i++)
		rv = cs_tag_has(t, id, tags[i], has);
	return rv;
}

int
cs_tag_check_task(cpl_txn *t, uint64_t id, const struct srec *r,
    const Copal__TaskSpec *sp, uint64_t n[3], char *why, size_t len)
{
	const char *blob = NULL;
	size_t blen = 0, want = 0;
	int rv = tags_get(t, id, &blob, &blen);
	if (rv && rv != CPL_ENOTFOUND)
		return rv;
	if (!(r->flags & SF_TAGGED)) {
		// a task of a database before tags were indexed may have
		// tags, but no entries
		if (rv == 0) {
			snprintf(why, len, "tag list of an untagged task");
			return CPL_ECORRUPT;
		}
		return 0;
	}
	if (rv) {
		snprintf(why, len, "tagged, but no tag list");
		return CPL_ECORRUPT;
	}
	n[0]++;
	for (size_t i = 0; i < sp->n_tags; i++) {
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(sp->tags[j], sp->tags[i]) == 0;
		if (dup)
			continue;
		want += strlen(sp->tags[i]) + 1;
		uint8_t k[TAGKEY_MAX];
		MDB_val v;
		size_t pl = cs_tag_prefix(k, sp->tags[i]);
		if (pl == 0) {
			snprintf(why, len, "malformed tag in its spec");
			return CPL_ECORRUPT;
		}
		be64(k + pl, id);
		if (tget(t, DB_TAG_IDX, k, pl + 8, &v) != 0) {
			snprintf(why, len, "tag %s: no tag_idx entry",
			    sp->tags[i]);
			return CPL_ECORRUPT;
		}
		n[1]++;
		if (runnable(r)) {
			struct fit f = fit_of(r);
			runq_key(k + pl, r->priority, id);
			if (tget(t, DB_TAG_RUNQ, k, pl + 12, &v) != 0 ||
			    v.mv_size != sizeof(f) ||
			    memcmp(v.mv_data, &f, sizeof(f)) != 0) {
				snprintf(why, len, "tag %s: no or a wrong "
				    "tag_runq entry", sp->tags[i]);
				return CPL_ECORRUPT;
			}
			n[2]++;
		}
	}
	if (want != blen) {
		snprintf(why, len, "tag list of %zu bytes, its spec's tags "
		    "make %zu", blen, want);
		return CPL_ECORRUPT;
	}
	return 0;
}

int
cs_tag_fill(cpl_txn *t)
{
	cpl_ids ids = { NULL, 0, 0 };
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv;
	// the tasks first, then the writes (no write under the walk)
	if ((rv = tcursor(t, DB_STATE, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (k.mv_size == 8)
			rv = cpl_ids_push(&ids, rd64(k.mv_data));
	mdb_cursor_close(c);
	for (size_t i = 0; i < ids.n && rv == 0; i++) {
		Copal__TaskSpec *sp = NULL;
		struct srec r;
		bool ok = true;
		if ((rv = srec_get(t, ids.v[i], &r)) != 0 ||
		    (rv = cs_spec_read(t, ids.v[i], &sp)) != 0)
			break;
		for (size_t j = 0; j < sp->n_tags && ok; j++)
			ok = cpl_tag_check(sp->tags[j], NULL, 0) == 0;
		if (ok && sp->n_tags && !(r.flags & SF_TAGGED)) {
			r.flags |= SF_TAGGED;
			if ((rv = cs_tag_add(t, ids.v[i], sp)) == 0 &&
			    (rv = cs_tag_count(t, ids.v[i], CPL_STATE_NONE,
			         (cpl_state)r.state)) == 0 &&
			    (!runnable(&r) ||
			        (rv = cs_tag_runq(t, ids.v[i], &r, true)) == 0))
				rv = srec_put(t, ids.v[i], &r);
		}
		copal__task_spec__free_unpacked(sp, NULL);
	}
	free(ids.v);
	return rv;
}
