// copal store: interned workflow and app names (ids and task counts, kept
// in the names table) and the app registry.
#include <stdio.h>

#include "store_impl.h"

// ------------------------------------------------------------ names

// Looks up (and with create, interns) a workflow ('w') or app ('a') name.
int
cs_name_id(cpl_txn *t, char kind, const char *name, bool create, uint32_t *id)
{
	uint8_t k[1 + MAX_NAME];
	size_t n = strlen(name);
	MDB_val v;
	int rv;
	if (n > MAX_NAME)
		return CPL_EINVAL;
	k[0] = (uint8_t)kind;
	memcpy(k + 1, name, n);
	rv = tget(t, DB_NAMES, k, 1 + n, &v);
	if (rv == 0) {
		struct nrec nr;
		if (v.mv_size != sizeof(nr))
			return fail(t, CPL_ECORRUPT);
		memcpy(&nr, v.mv_data, sizeof(nr));
		*id = nr.id;
		return 0;
	}
	if (rv != CPL_ENOTFOUND || !create)
		return rv;
	struct nrec nr = { 0, 0, 0 };
	nr.id = kind == 'w' ? t->meta.next_wf++ : t->meta.next_app++;
	if ((rv = tput(t, DB_NAMES, k, 1 + n, &nr, sizeof(nr), 0)) != 0)
		return rv;
	uint8_t rk[5];
	rk[0] = (uint8_t)(kind - 'a' + 'A');
	be32(rk + 1, nr.id);
	if ((rv = tput(t, DB_NAMES, rk, 5, name, n, 0)) != 0)
		return rv;
	*id = nr.id;
	return 0;
}

// Reads the name of an interned id into buf (MAX_NAME + 1 bytes).
static int
name_of(cpl_txn *t, char kind, uint32_t id, char *buf)
{
	uint8_t rk[5];
	MDB_val v;
	int rv;
	rk[0] = (uint8_t)(kind - 'a' + 'A');
	be32(rk + 1, id);
	if ((rv = tget(t, DB_NAMES, rk, 5, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	size_t n = v.mv_size > MAX_NAME ? MAX_NAME : v.mv_size;
	memcpy(buf, v.mv_data, n);
	buf[n] = '\0';
	return 0;
}

// Writes the task count delta of one interned name.
static int
name_count_write(cpl_txn *t, char kind, uint32_t id, int64_t delta)
{
	char name[MAX_NAME + 1];
	uint8_t k[1 + MAX_NAME];
	MDB_val v;
	int rv;
	if ((rv = name_of(t, kind, id, name)) != 0)
		return rv;
	size_t n = strlen(name);
	k[0] = (uint8_t)kind;
	memcpy(k + 1, name, n);
	if ((rv = tget(t, DB_NAMES, k, 1 + n, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	struct nrec nr;
	memcpy(&nr, v.mv_data, sizeof(nr));
	nr.count = (uint64_t)((int64_t)nr.count + delta);
	return tput(t, DB_NAMES, k, 1 + n, &nr, sizeof(nr), 0);
}

// Writes every buffered count delta. Called before commit and before
// anything reads the counts.
int
cs_name_count_flush(cpl_txn *t)
{
	int rv = 0;
	for (size_t i = 0; i < t->nndelta && rv == 0; i++)
		if (t->ndelta[i].delta != 0)
			rv = name_count_write(t, t->ndelta[i].kind,
			    t->ndelta[i].id, t->ndelta[i].delta);
	t->nndelta = 0;
	return rv;
}

// Adds delta to the task count of an interned name (buffered: a batch of
// creates in one workflow costs one write).
int
cs_name_count(cpl_txn *t, char kind, uint32_t id, int64_t delta)
{
	if (id == 0)
		return 0; // a task with a direct command and no app

	int rv;
	t->changes++;
	for (size_t i = 0; i < t->nndelta; i++) {
		if (t->ndelta[i].kind == kind && t->ndelta[i].id == id) {
			t->ndelta[i].delta += delta;
			return 0;
		}
	}
	if (t->nndelta == sizeof(t->ndelta) / sizeof(t->ndelta[0]) &&
	    (rv = cs_name_count_flush(t)) != 0)
		return rv;
	t->ndelta[t->nndelta].kind = kind;
	t->ndelta[t->nndelta].id = id;
	t->ndelta[t->nndelta].delta = delta;
	t->nndelta++;
	return 0;
}

// Cached forms for the create path, where one batch shares names.
int
cs_wf_intern(cpl_txn *t, const char *name, uint32_t *id)
{
	int rv;
	// FNV-1a of the name picks the first of 4 slots to look in
	enum { NSLOT = sizeof(t->wfc) / sizeof(t->wfc[0]), PROBES = 4 };
	uint32_t h = 2166136261u;
	size_t n = 0;
	for (; name[n] != '\0'; n++)
		h = (h ^ (uint8_t)name[n]) * 16777619u;
	size_t free_slot = NSLOT;
	for (size_t p = 0; p < PROBES; p++) {
		size_t i = (h + p) % NSLOT;
		if (t->wfc[i].id == 0) {
			if (free_slot == NSLOT)
				free_slot = i;
		} else if (strcmp(t->wfc[i].name, name) == 0) {
			*id = t->wfc[i].id;
			return 0;
		}
	}
	if ((rv = cs_name_id(t, 'w', name, true, id)) != 0)
		return rv;
	if (n < sizeof(t->wfc[0].name)) {
		size_t i = free_slot < NSLOT ? free_slot : h % NSLOT;
		memcpy(t->wfc[i].name, name, n + 1);
		t->wfc[i].id = *id;
	}
	return 0;
}

int
cs_app_lookup(cpl_txn *t, const char *name, uint32_t *id)
{
	int rv;
	MDB_val v;
	if (strcmp(t->app_name, name) == 0 && t->app_id != 0) {
		*id = t->app_id;
		return 0;
	}
	size_t n = strlen(name);
	if (n == 0 || n > MAX_NAME)
		return CPL_ENOTFOUND;
	// the app record must exist, not only its interned name
	if ((rv = tget(t, DB_APP, name, n, &v)) != 0)
		return rv;
	if ((rv = cs_name_id(t, 'a', name, false, id)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	snprintf(t->app_name, sizeof(t->app_name), "%s", name);
	t->app_id = *id;
	return 0;
}

void
cs_cache_clear(cpl_txn *t)
{
	for (size_t i = 0; i < sizeof(t->wfc) / sizeof(t->wfc[0]); i++)
		t->wfc[i].id = 0;
	t->app_name[0] = '\0';
	t->app_id = 0;
	t->lease_ok = false;
	t->bj_lease = 0;
	t->lease_id = 0;
}

// Interned ids start at 1 so that 0 means "none" in caches.
static int
names_walk(cpl_txn *t, char kind, cpl_name_count_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t pre = (uint8_t)kind;
	bool ok;
	int rv, frv = 0;
	if (t->write && (rv = cs_name_count_flush(t)) != 0)
		return rv;
	if ((rv = tcursor(t, DB_NAMES, &c)) != 0)
		return rv;
	for (rv = crange(t, c, MDB_SET_RANGE, &pre, 1, &pre, 1, &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(t, c, MDB_NEXT, &pre, 1, NULL, 0, &k, &v, &ok)) {
		struct nrec nr;
		char name[MAX_NAME + 1];
		size_t n = k.mv_size - 1;
		if (n > MAX_NAME || v.mv_size != sizeof(nr)) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		memcpy(&nr, v.mv_data, sizeof(nr));
		memcpy(name, (char *)k.mv_data + 1, n);
		name[n] = '\0';
		if (kind == 'w' && nr.count == 0)
			continue;
		if ((frv = fn(name, nr.count, arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv ? rv : frv;
}

int
cpl_workflow_list(cpl_txn *t, cpl_name_count_fn fn, void *arg)
{
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	return names_walk(t, 'w', fn, arg);
}

// ------------------------------------------------------------ apps

int
cpl_app_put(cpl_txn *t, const Copal__App *app, bool replace)
{
	MDB_val v;
	void *p = NULL;
	uint32_t id;
	int rv;
	if (t == NULL || app == NULL || !t->write)
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	if (cs_check_name(app->name, false) || app->executable == NULL ||
	    app->executable[0] == '\0')
		return CPL_EINVAL;
	size_t n = strlen(app->name);
	rv = tget(t, DB_APP, app->name, n, &v);
	if (rv == 0 && !replace)
		return CPL_EEXISTS;
	if (rv != 0 && rv != CPL_ENOTFOUND)
		return rv;
	size_t sz = protobuf_c_message_get_packed_size(&app->base);
	if (sz > MAX_SPEC)
		return CPL_ETOOBIG;
	if ((rv = treserve(t, DB_APP, app->name, n, sz, 0, &p)) != 0)
		return rv;
	protobuf_c_message_pack(&app->base, p);
	return cs_name_id(t, 'a', app->name, true, &id);
}

int
cpl_app_get(cpl_txn *t, const char *name, Copal__App **out)
{
	MDB_val v;
	int rv;
	if (t == NULL || name == NULL || out == NULL ||
	    cs_check_name(name, false))
		return CPL_EINVAL;
	if ((rv = tget(t, DB_APP, name, strlen(name), &v)) != 0)
		return rv;
	Copal__App *a = copal__app__unpack(NULL, v.mv_size, v.mv_data);
	if (a == NULL)
		return fail(t, CPL_ECORRUPT);
	*out = a;
	return 0;
}

static int
app_ntasks(cpl_txn *t, const char *name, uint64_t *n)
{
	uint8_t k[1 + MAX_NAME];
	MDB_val v;
	int rv;
	size_t len = strlen(name);
	if (t->write && (rv = cs_name_count_flush(t)) != 0)
		return rv;
	k[0] = 'a';
	memcpy(k + 1, name, len);
	if ((rv = tget(t, DB_NAMES, k, 1 + len, &v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	struct nrec nr;
	memcpy(&nr, v.mv_data, sizeof(nr));
	*n = nr.count;
	return 0;
}

int
cpl_app_list(cpl_txn *t, cpl_app_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, rv = 0;
	if (t == NULL || fn == NULL)
		return CPL_EINVAL;
	if ((rv = tcursor(t, DB_APP, &c)) != 0)
		return rv;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		Copal__App *a = copal__app__unpack(NULL, v.mv_size, v.mv_data);
		uint64_t n = 0;
		if (a == NULL) {
			rv = fail(t, CPL_ECORRUPT);
			break;
		}
		rv = app_ntasks(t, a->name, &n);
		if (rv == 0)
			rv = fn(a, n, arg);
		copal__app__free_unpacked(a, NULL);
		if (rv)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		rv = fail(t, map_mdb(rc));
	mdb_cursor_close(c);
	return rv;
}

int
cpl_app_delete(cpl_txn *t, const char *name)
{
	MDB_val v;
	uint64_t n;
	uint32_t id;
	uint8_t k[1 + MAX_NAME];
	int rv;
	if (t == NULL || name == NULL || !t->write ||
	    cs_check_name(name, false))
		return CPL_EINVAL;
	if (t->err)
		return t->err;
	size_t len = strlen(name);
	if ((rv = tget(t, DB_APP, name, len, &v)) != 0)
		return rv;
	if ((rv = app_ntasks(t, name, &n)) != 0)
		return rv;
	if (n > 0)
		return CPL_EINUSE;
	if ((rv = cs_name_id(t, 'a', name, false, &id)) != 0)
		return fail(t, CPL_ECORRUPT);
	if ((rv = tdel(t, DB_APP, name, len)) != 0)
		return rv;
	k[0] = 'a';
	memcpy(k + 1, name, len);
	if ((rv = tdel(t, DB_NAMES, k, 1 + len)) != 0)
		return rv;
	k[0] = 'A';
	be32(k + 1, id);
	if ((rv = tdel(t, DB_NAMES, k, 5)) != 0)
		return rv;
	cs_cache_clear(t);
	return 0;
}
