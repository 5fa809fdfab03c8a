// Users name tasks by uuid prefixes ("copal modify dda7 ..."); the broker
// works with integer ids. A prefix must match exactly one task.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define SHOW_MATCHES 10

int
resolve_prefix(cpl_client *c, const char *prefix, uint64_t *id, char *uuid)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__Reply *rep;
	int rc;
	if (!is_uuid_prefix(prefix)) {
		cli_err("%s is not a task id (a uuid or a prefix of one: hex "
		    "digits)", prefix);
		return EXIT_USAGE;
	}
	f.uuid_prefix = (char *)prefix;
	if ((rc = cli_call_rc(c, cpl_call_query(c, &f, 0, SHOW_MATCHES + 1,
	         true, &rep))) != 0)
		return rc;
	const Copal__QueryReply *qr = rep->query;
	if (qr->n_tasks == 0) {
		cli_err("no task with id %s", prefix);
		rc = EXIT_NOTFOUND;
	} else if (qr->n_tasks > 1) {
		cli_err("id %s is ambiguous; it matches:", prefix);
		for (size_t i = 0; i < qr->n_tasks && i < SHOW_MATCHES; i++) {
			const Copal__Task *t = qr->tasks[i];
			fprintf(stderr, "  %s  %s  %s  %s\n", t->uuid,
			    t->spec ? t->spec->name : "",
			    t->spec ? t->spec->workflow : "",
			    cpl_state_name(t->status ? (int)t->status->state : 0));
		}
		if (qr->n_tasks > SHOW_MATCHES || qr->more)
			fprintf(stderr, "  ... and more: give more digits\n");
		rc = EXIT_ERR;
	} else {
		*id = qr->tasks[0]->id;
		if (uuid)
			snprintf(uuid, 37, "%s", qr->tasks[0]->uuid);
	}
	copal__reply__free_unpacked(rep, NULL);
	return rc;
}

int
fetch_task(cpl_client *c, uint64_t id, Copal__Reply **rep, Copal__Task **out)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	int rc;
	f.ids = &id;
	f.n_ids = 1;
	if ((rc = cli_call_rc(c, cpl_call_query(c, &f, 0, 1, true, rep))) != 0)
		return rc;
	if ((*rep)->query->n_tasks == 0) {
		cli_err("no task with id %" PRIu64, id);
		copal__reply__free_unpacked(*rep, NULL);
		*rep = NULL;
		return EXIT_NOTFOUND;
	}
	*out = (*rep)->query->tasks[0];
	return 0;
}

// ------------------------------------------------------------ id -> uuid

struct uuid_map {
	uint64_t *keys;  // 0: empty slot (task ids start at 1)
	char (*uuids)[37];
	size_t cap, n;
};

uuid_map *
uuid_map_new(void)
{
	uuid_map *m = xcalloc(1, sizeof(*m));
	m->cap = 256;
	m->keys = xcalloc(m->cap, sizeof(uint64_t));
	m->uuids = xcalloc(m->cap, 37);
	return m;
}

void
uuid_map_free(uuid_map *m)
{
	if (m == NULL)
		return;
	free(m->keys);
	free(m->uuids);
	free(m);
}

static size_t
slot(const uuid_map *m, uint64_t id)
{
	uint64_t h = id * 0x9E3779B97F4A7C15ull;
	size_t i = (size_t)(h >> 7) & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != id)
		i = (i + 1) & (m->cap - 1);
	return i;
}

void
uuid_map_put(uuid_map *m, uint64_t id, const char *uuid)
{
	if (id == 0)
		return;
	if ((m->n + 1) * 2 > m->cap) {
		uuid_map old = *m;
		m->cap *= 2;
		m->n = 0;
		m->keys = xcalloc(m->cap, sizeof(uint64_t));
		m->uuids = xcalloc(m->cap, 37);
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i])
				uuid_map_put(m, old.keys[i], old.uuids[i]);
		free(old.keys);
		free(old.uuids);
	}
	size_t i = slot(m, id);
	if (m->keys[i] == 0) {
		m->keys[i] = id;
		m->n++;
	}
	snprintf(m->uuids[i], 37, "%s", uuid);
}

const char *
uuid_map_get(const uuid_map *m, uint64_t id)
{
	if (m == NULL || id == 0)
		return NULL;
	size_t i = slot(m, id);
	return m->keys[i] == id ? m->uuids[i] : NULL;
}

int
uuid_map_fetch(uuid_map *m, cpl_client *c, const uint64_t *ids, size_t n)
{
	uint64_t *want = xmalloc((n ? n : 1) * sizeof(uint64_t));
	size_t nw = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] && uuid_map_get(m, ids[i]) == NULL)
			want[nw++] = ids[i];
	for (size_t off = 0; off < nw && rc == 0; off += 10000) {
		Copal__Filter f = COPAL__FILTER__INIT;
		Copal__Reply *rep;
		f.ids = want + off;
		f.n_ids = nw - off < 10000 ? nw - off : 10000;
		if ((rc = cli_call_rc(c, cpl_call_query(c, &f, 0,
		         (uint32_t)f.n_ids, false, &rep))) != 0)
			break;
		for (size_t i = 0; i < rep->query->n_tasks; i++)
			uuid_map_put(m, rep->query->tasks[i]->id,
			    rep->query->tasks[i]->uuid);
		copal__reply__free_unpacked(rep, NULL);
	}
	free(want);
	return rc;
}

// ------------------------------------------------------------ apps

int
apps_fetch(cpl_client *c, Copal__Reply **rep)
{
	return cli_call_rc(c, cpl_call_app_list(c, rep));
}

const Copal__App *
apps_find(const Copal__Reply *rep, const char *name)
{
	if (rep == NULL || rep->app_list == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < rep->app_list->n_apps; i++)
		if (strcmp(rep->app_list->apps[i]->name, name) == 0)
			return rep->app_list->apps[i];
	return NULL;
}
