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
	uint8_t k[TAGKEY_MAX];
	MDB_cursor *c;
	MDB_val key, v;
	bool ok;
	int rv;
	if (t == NULL || tag == NULL || counts == NULL ||
	    cpl_tag_check(tag, NULL, 0) != 0)
		return CPL_EINVAL;
	size_t pl = cs_tag_prefix(k, tag);
	MDB_cursor *sc = NULL; // the state records, in id order
	if ((rv = tcursor(t, DB_TAG_IDX, &c)) != 0)
		return rv;
	for (rv = crange(t, c, MDB_SET_RANGE, k, pl, k, pl, &key, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(t, c, MDB_NEXT, k, pl, NULL, 0, &key, &v, &ok)) {
		MDB_val sv;
		if (key.mv_size != pl + 8) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		rv = cget(t, &sc, DB_STATE, (uint8_t *)key.mv_data + pl, 8, &sv);
		if (rv == 0 && sv.mv_size != sizeof(struct srec))
			rv = CPL_ENOTFOUND;
		if (rv) {
			rv = rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
			break;
		}
		uint8_t st = ((const struct srec *)sv.mv_data)->state;
		counts[st < CPL_NSTATES ? st : 0]++;
	}
	if (sc)
		mdb_cursor_close(sc);
	mdb_cursor_close(c);
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
