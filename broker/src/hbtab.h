// Heartbeats renewed in memory (internal). A heartbeat that only renews a
// live lease (no notices wait for it, not a release, not a resend of a
// stored request) is answered from a read snapshot on the receiving
// thread: its new deadline is kept here, not written and synced by the
// writer. The writer writes every kept deadline in its next lease sweep,
// before it expires anything (at least every WRITER_SWEEP_US), and sooner
// when a kept lease's stored deadline comes within HBTAB_URGENT_US, so
// that claims and reports, which judge a lease by its stored deadline,
// never see a live lease as past it. A broker killed in between loses at
// most a sweep interval of renewals: the grace of one TTL every lease
// gets when a broker starts covers that.
#ifndef COPAL_BROKER_HBTAB_H
#define COPAL_BROKER_HBTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "copal/store.h"

// A kept renewal is written before its lease's stored deadline is closer
// than this.
#define HBTAB_URGENT_US 3000000u

typedef struct hbtab hbtab;

hbtab *hbtab_new(void);
void hbtab_free(hbtab *h);

// The lock serialises a renewal (its read snapshot, its judgement and its
// entry) against a sweep (the writing of the entries, the expiry and the
// commit): a renewal either lands before the sweep and is written by it,
// or reads what the sweep committed.
void hbtab_lock(hbtab *h);
void hbtab_unlock(hbtab *h);

// With the lock held: the kept deadline of lease id (0 if none).
uint64_t hbtab_get(hbtab *h, uint64_t id);
// With the lock held: keeps deadline and ttl_ms for lease id, whose
// stored deadline is stored. CPL_ENOMEM, CPL_ESHUTDOWN (closed): nothing
// kept (answer the heartbeat through the writer instead).
int hbtab_put(hbtab *h, uint64_t id, uint64_t deadline, uint32_t ttl_ms,
    uint64_t stored);
// From now on nothing is kept (hbtab_put refuses): heartbeats go to the
// writer, which commits them or, once stopped, does not answer. Called
// when the broker stops, before the writer's last flush, so that no
// renewal is answered from memory after the last write.
void hbtab_close(hbtab *h);
// With the lock held: writes every kept renewal in txn (cpl_lease_extend;
// a lease that has ended is passed over).
int hbtab_flush(hbtab *h, cpl_txn *txn);
// With the lock held, after the commit of a flush: forgets them.
void hbtab_clear(hbtab *h);
// The writer's hooks (writer_leases, arg h): flush locks the table for
// the writer's transaction and writes the kept renewals when all is set
// or one is due; done forgets them if the transaction committed, and
// unlocks.
int hbtab_writer_flush(cpl_txn *txn, void *arg, bool all);
void hbtab_writer_done(void *arg, int rv);
// Renewals answered from memory so far (takes the lock).
uint64_t hbtab_renewed(hbtab *h);

#endif
