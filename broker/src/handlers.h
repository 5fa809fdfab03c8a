// The request handlers of the broker (internal): one function per request
// body, grouped by family in h_*.c and listed in dispatch.c's table.
// Mutating handlers run inside the writer's nested transaction: returning
// an error undoes everything the handler did. Read handlers run in a short
// read snapshot.
#ifndef COPAL_BROKER_HANDLERS_H
#define COPAL_BROKER_HANDLERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "broker.h"

// Broker-wide facts the handlers report (ping).
struct broker_info {
	uint64_t started_us;
	const char *db_dir;
	const char *ipc_url;   // ipc://<db>/sock/broker
	const char *tcp_url;   // tcp://HOST:PORT as bound (port 0 resolved), or ""
};

// A lease's TTL (HeartbeatRequest.ttl_ms; 0: the default).
#define MIN_TTL_MS 1000u
#define MAX_TTL_MS 3600000u
#define DEFAULT_TTL_MS 30000u

// What a handler produces: status, error text and the reply body, all in
// the arena.
typedef struct hctx {
	const struct broker_info *info;
	const Copal__Request *req;
	Copal__Reply *rep;
	arena *a;
	char err[512];
	uint64_t waited_us;   // from the request's arrival to the handler
	uint32_t park_ms;     // set by a handler whose answer found nothing:
	                      // it may be held this long and run again
	uint64_t park_key;    // ... under this lease
	uint64_t unpark_key;  // set by a handler: claims held under this
	                      // lease are answered now, and no more held
} hctx;

typedef int (*handler_fn)(hctx *h, cpl_txn *txn);

typedef struct handler {
	Copal__Request__BodyCase body;
	const char *name;
	bool mutates;      // runs in the writer's transaction
	handler_fn fn;
} handler;

#define FAIL(h, rv, ...)                                             \
	do {                                                         \
		snprintf((h)->err, sizeof((h)->err), __VA_ARGS__);   \
		return (rv);                                         \
	} while (0)

#define NEW(h, T, init)                                  \
	({                                               \
		T *p_ = arena_alloc((h)->a, sizeof(T));  \
		if (p_)                                  \
			*p_ = (T)init;                   \
		p_;                                      \
	})

// ---------------------------------------------------------------- h_common.c
// A task on the wire. With a spec, the spec (owned by the caller until
// the arena is freed) is referenced, not copied.
Copal__Task *task_wire(hctx *h, const cpl_task *t, Copal__TaskSpec *spec);
// Reads a task with its spec; the spec lives until the arena is freed.
int task_get_owned(hctx *h, cpl_txn *txn, uint64_t id, cpl_task *t);
// How messages name a task: "1a2b3c4d (name)" (uuid prefix and name, in
// the arena), never the internal id the CLI cannot look up.
const char *task_label(hctx *h, cpl_txn *txn, uint64_t id);
// Removes the n tasks of ids with rm (cpl_task_delete, a purge), children
// before parents: each pass removes what has no children left, newest
// first, and tries the others (rm's CPL_EINUSE) again in the next. Stops
// at a pass that removes nothing (CPL_EINUSE: children outside ids) or at
// any other error, with the task it stopped at in ids[0]; the caller's
// transaction is then to be given up. ids is reordered.
int remove_children_first(cpl_txn *txn, uint64_t *ids, size_t n,
    int (*rm)(cpl_txn *txn, uint64_t id, void *arg), void *arg);

// ---------------------------------------------------------------- h_tasks.c
int h_create(hctx *h, cpl_txn *txn);
int h_query(hctx *h, cpl_txn *txn);
int h_count(hctx *h, cpl_txn *txn);
int h_modify(hctx *h, cpl_txn *txn);
int h_delete(hctx *h, cpl_txn *txn);
int h_kill(hctx *h, cpl_txn *txn);
int h_add_dependency(hctx *h, cpl_txn *txn);

// ---------------------------------------------------------------- h_run.c
int h_claim(hctx *h, cpl_txn *txn);
int h_report(hctx *h, cpl_txn *txn);
int h_heartbeat(hctx *h, cpl_txn *txn);
int h_lease_list(hctx *h, cpl_txn *txn);

// The leases into a lease list reply (also counted by ping).
struct lease_ctx {
	hctx *h;
	Copal__LeaseListReply *rep;
	size_t cap;
};
int lease_cb(const cpl_lease *l, void *arg);

// ---------------------------------------------------------------- h_history.c
int h_history(hctx *h, cpl_txn *txn);
int h_export(hctx *h, cpl_txn *txn);

// ---------------------------------------------------------------- h_apps.c
int h_app_register(hctx *h, cpl_txn *txn);
int h_app_list(hctx *h, cpl_txn *txn);
int h_app_delete(hctx *h, cpl_txn *txn);
int h_workflow_list(hctx *h, cpl_txn *txn);

// ---------------------------------------------------------------- h_bjobs.c
int h_batch_add(hctx *h, cpl_txn *txn);
int h_batch_update(hctx *h, cpl_txn *txn);
int h_batch_list(hctx *h, cpl_txn *txn);
int h_backlog(hctx *h, cpl_txn *txn);

// ---------------------------------------------------------------- h_archive.c
int h_archive_pick(hctx *h, cpl_txn *txn);
int h_archive(hctx *h, cpl_txn *txn);

// ---------------------------------------------------------------- h_history.c
// Appends the events of task id (as a history reply has them) to *v
// (n used of cap, grown in the arena).
int history_events(hctx *h, cpl_txn *txn, uint64_t id, Copal__Event ***v,
    size_t *n, size_t *cap);

// ---------------------------------------------------------------- h_admin.c
int h_ping(hctx *h, cpl_txn *txn);

#endif
