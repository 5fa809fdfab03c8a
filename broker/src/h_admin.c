// The ping handler: the broker's health and identity.
#include <unistd.h>

#include "handlers.h"
#include "copal/version.h"

// ---------------------------------------------------------------- ping

int
h_ping(hctx *h, cpl_txn *txn)
{
	const struct broker_info *si = h->info;
	Copal__PingReply *rep = NEW(h, Copal__PingReply, COPAL__PING_REPLY__INIT);
	uint64_t *by = arena_alloc(h->a, CPL_NSTATES * sizeof(uint64_t));
	if (rep == NULL || by == NULL)
		return CPL_ENOMEM;
	int rv = cpl_count_states(txn, by);
	if (rv)
		return rv;
	rep->broker_time_us = cpl_txn_now(txn);
	rep->pid = (uint32_t)getpid();
	rep->started_us = si->started_us;
	rep->version = COPAL_VERSION;
	rep->db_dir = (char *)(si->db_dir ? si->db_dir : "");
	char **urls = arena_alloc(h->a, 2 * sizeof(char *));
	if (urls == NULL)
		return CPL_ENOMEM;
	if (si->ipc_url && si->ipc_url[0])
		urls[rep->n_listen_urls++] = (char *)si->ipc_url;
	if (si->tcp_url && si->tcp_url[0])
		urls[rep->n_listen_urls++] = (char *)si->tcp_url;
	rep->listen_urls = urls;
	rep->by_state = by;
	rep->n_by_state = CPL_NSTATES;
	struct lease_ctx lc = { h, NEW(h, Copal__LeaseListReply,
		COPAL__LEASE_LIST_REPLY__INIT), 0 };
	if (lc.rep == NULL)
		return CPL_ENOMEM;
	if ((rv = cpl_lease_list(txn, lease_cb, &lc)) != 0)
		return rv;
	rep->leases = (uint32_t)lc.rep->n_leases;
	h->rep->body_case = COPAL__REPLY__BODY_PING;
	h->rep->ping = rep;
	return 0;
}
