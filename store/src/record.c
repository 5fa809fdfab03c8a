// copal store: the records of a task besides its state record (the spec,
// checked and packed), lease records, and walks over the pair-keyed
// indices (child, parent, lease_idx, notice, task_ev).
#include <stdio.h>
#include <stdlib.h>

#include "store_impl.h"

int
cs_check_name(const char *s, bool allow_empty)
{
	if (s == NULL)
		return allow_empty ? 0 : CPL_EINVAL;
	size_t n = strnlen(s, MAX_NAME + 1);
	if (n > MAX_NAME || (!allow_empty && n == 0))
		return CPL_EINVAL;
	return 0;
}

// The rule book's bounds are what lets the record keep these values in
// 16 bits.
_Static_assert(CPL_SPEC_NODES_MAX <= UINT16_MAX, "srec.nodes");
_Static_assert(CPL_NODE_UNITS <= UINT16_MAX, "srec.packing");
_Static_assert(CPL_SPEC_GPUS_MAX <= UINT16_MAX, "srec.gpus");
_Static_assert(CPL_SPEC_RETRIES_MAX <= UINT16_MAX, "srec.max_retries");

int
cs_spec_check(const Copal__TaskSpec *sp, struct srec *r)
{
	int rv;
	if ((rv = cpl_spec_check_fields(sp, NULL, 0)) != 0)
		return rv;
	uint32_t nodes = 1, packing = 1, rpn = 1, gpr = 0, wall = 0;
	const Copal__Resources *res = sp->resources;
	if (res != NULL) {
		nodes = res->num_nodes ? res->num_nodes : 1;
		packing = res->node_packing_count ? res->node_packing_count : 1;
		rpn = res->ranks_per_node ? res->ranks_per_node : 1;
		gpr = res->gpus_per_rank;
		wall = res->wall_time_minutes;
	}
	r->nodes = (uint16_t)nodes;
	r->packing = (uint16_t)packing;
	r->gpus = (uint16_t)(gpr * rpn);
	r->wall_min = wall;
	r->priority = sp->priority;
	r->max_retries = (uint16_t)sp->max_retries;
	// (a handler due after a cut stays due)
	r->flags = (uint8_t)((r->flags & SF_HANDLER_DUE) |
	    (sp->auto_timeout_retry ? SF_AUTO_RETRY : 0) |
	    (sp->post_error_handler ? SF_ERR_HANDLER : 0) |
	    (sp->post_timeout_handler ? SF_TIMEOUT_HANDLER : 0) |
	    (sp->n_tags ? SF_TAGGED : 0));
	return 0;
}

int
cs_spec_write(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp,
    unsigned flags)
{
	uint8_t k[8];
	void *p = NULL;
	int rv;
	size_t n = protobuf_c_message_get_packed_size(&sp->base);
	if (n > MAX_SPEC)
		return CPL_ETOOBIG;
	be64(k, id);
	if ((rv = treserve(t, DB_SPEC, k, 8, n, flags, &p)) != 0)
		return rv;
	protobuf_c_message_pack(&sp->base, p);
	return 0;
}

// The packed spec of task id (a task without one is a corrupt store).
static int
spec_bytes(cpl_txn *t, uint64_t id, MDB_val *v)
{
	uint8_t k[8];
	int rv;
	be64(k, id);
	if ((rv = tget(t, DB_SPEC, k, 8, v)) != 0)
		return rv == CPL_ENOTFOUND ? fail(t, CPL_ECORRUPT) : rv;
	return 0;
}

int
cs_spec_read(cpl_txn *t, uint64_t id, Copal__TaskSpec **out)
{
	MDB_val v;
	int rv;
	if ((rv = spec_bytes(t, id, &v)) != 0)
		return rv;
	*out = copal__task_spec__unpack(NULL, v.mv_size, v.mv_data);
	if (*out == NULL)
		return fail(t, CPL_ECORRUPT);
	return 0;
}

int
cs_spec_names(cpl_txn *t, uint64_t id, char *name, char *wf)
{
	MDB_val v;
	int rv;
	if ((rv = spec_bytes(t, id, &v)) != 0)
		return rv;
	if (cpl_spec_packed_names(v.mv_data, v.mv_size, name, wf) != 0)
		return fail(t, CPL_ECORRUPT);
	return 0;
}

void
cs_task_label(cpl_txn *t, uint64_t id, const uint8_t uuid[16], char *buf,
    size_t len)
{
	char name[CPL_SPEC_NAME_MAX + 1], wf[CPL_SPEC_NAME_MAX + 1];
	char u[37];
	cpl_uuid_format(uuid, u);
	u[8] = '\0';
	if (cs_spec_names(t, id, name, wf) == 0 && name[0]) {
		// names are cut whole (UTF-8) to what fits
		size_t room = len > 12 ? len - 12 : 0;
		size_t n = cpl_utf8_cut(name, strnlen(name, room));
		snprintf(buf, len, "%s (%.*s)", u, (int)n, name);
	} else {
		snprintf(buf, len, "%s", u);
	}
}

// ------------------------------------------------------------ leases

int
cs_lease_load(cpl_txn *t, uint64_t id, struct lrec *out)
{
	uint8_t k[8];
	MDB_val v;
	int rv;
	if (t->lease_ok && t->lease_id == id) {
		*out = t->lease;
		return 0;
	}
	be64(k, id);
	if ((rv = tget(t, DB_LEASE, k, 8, &v)) != 0)
		return rv;
	if (v.mv_size < sizeof(*out))
		return fail(t, CPL_ECORRUPT);
	memcpy(out, v.mv_data, sizeof(*out));
	t->lease = *out;
	t->lease_id = id;
	t->lease_ok = true;
	return 0;
}

int
cs_lease_live(cpl_txn *t, uint64_t id)
{
	struct lrec l;
	int rv;
	if (id == 0)
		return CPL_ENOTFOUND;
	if ((rv = cs_lease_load(t, id, &l)) != 0)
		return rv;
	if (l.deadline < t->now)
		return CPL_EEXPIRED;
	return 0;
}

// ------------------------------------------------------------ pair indices

// Walks (a, *) keys of a pair-keyed index.
int
cs_pair_walk(cpl_txn *t, int db, uint64_t a, cpl_id_fn fn, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t start[16], pre[8];
	bool ok;
	int rv, frv = 0;
	be64(pre, a);
	pair_key(start, a, 0);
	if ((rv = tcursor(t, db, &c)) != 0)
		return rv;
	for (rv = crange(t, c, MDB_SET_RANGE, pre, 8, start, 16, &k, &v, &ok);
	     rv == 0 && ok;
	     rv = crange(t, c, MDB_NEXT, pre, 8, NULL, 0, &k, &v, &ok)) {
		if ((frv = fn(rd64((uint8_t *)k.mv_data + 8), arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rv ? rv : frv;
}

int
cs_idvec_cb(uint64_t id, void *arg)
{
	return cpl_ids_push(arg, id);
}

