// copal task store: the functions shared between the files of store/src
// (named cs_, see store_impl.h), file by file in the order of the call
// graph. Included by store_impl.h only.
#ifndef COPAL_STORE_FN_H
#define COPAL_STORE_FN_H

// ------------------------------------------------------------ record.c

// A name of at most MAX_NAME bytes; NULL or "" only if allow_empty.
int cs_check_name(const char *s, bool allow_empty);
// Validates a spec against the rule book (copal/spec.h, all but the packed
// size, which cs_spec_write measures) and derives the record fields it
// fixes into r. Errors: CPL_EINVAL.
int cs_spec_check(const Copal__TaskSpec *sp, struct srec *r);
// Packs a spec under id (CPL_ETOOBIG beyond MAX_SPEC, nothing written).
int cs_spec_write(cpl_txn *t, uint64_t id, const Copal__TaskSpec *sp,
    unsigned flags);
// Unpacks a task's spec; a missing or unreadable one is corruption.
int cs_spec_read(cpl_txn *t, uint64_t id, Copal__TaskSpec **out);
// Reads a task's name and workflow from its packed spec (buffers of
// CPL_SPEC_NAME_MAX + 1) without unpacking it (cpl_spec_packed_names).
int cs_spec_names(cpl_txn *t, uint64_t id, char *name, char *wf);
// How messages name a task: the first 8 hex digits of its uuid and its
// name ("1a2b3c4d (name)"), which the CLI can look up; uuid: the task's.
void cs_task_label(cpl_txn *t, uint64_t id, const uint8_t uuid[16],
    char *buf, size_t len);
// Reads a lease record through the transaction's one-lease cache.
int cs_lease_load(cpl_txn *t, uint64_t id, struct lrec *out);
// 0 if the lease exists and its deadline has not passed: CPL_ENOTFOUND,
// CPL_EEXPIRED otherwise.
int cs_lease_live(cpl_txn *t, uint64_t id);
// Calls fn(b) for each (a, b) key of a pair-keyed index, in b order.
int cs_pair_walk(cpl_txn *t, int db, uint64_t a, cpl_id_fn fn, void *arg);
// A cpl_id_fn that appends the id to the cpl_ids given as arg.
int cs_idvec_cb(uint64_t id, void *arg);

// ------------------------------------------------------------ uuid.c

// A new uuid: random (version 4), or with opts.uuid_v7 time-ordered
// (version 7), increasing within the process.
int cs_uuid_new(cpl_store *s, uint8_t u[16]);
// Adds a new task's uuid (-> id, big-endian) to the uuid index.
int cs_uuid_add(cpl_txn *t, const uint8_t u[16], const uint8_t id[8]);
// Parses a hex uuid prefix (dashes ignored) for prefix_match().
int cs_parse_prefix(const char *p, uint8_t b[16], size_t *nbytes, int *half);
// Calls fn for the id of every uuid (in both trees) that starts with prefix.
int cs_uuid_walk(cpl_txn *t, const char *prefix, cpl_id_fn fn, void *arg);
// Moves one key range of uuid_new into the generation of uuid_gen merged
// into now (at commit, see UUID_MERGE_AT, UUID_MERGE_SLICES, UUID_GEN_MAX).
int cs_uuid_merge(cpl_txn *t);
// Removes a task's uuid from whichever tree holds it (uuid_new, uuid,
// or a generation of uuid_gen); CPL_ECORRUPT if none does.
int cs_uuid_del(cpl_txn *t, const uint8_t u[16]);
// The meta record "ugen" ({0} when absent).
int cs_ugen_load(cpl_txn *t, struct ugen *g);
// Puts the transaction's waiting uuids into uuid_new (UUID_BUF_MAX): at
// commit and before any lookup of uuids in a write transaction.
int cs_uuid_flush(cpl_txn *t);
// Sorts n waiting uuids (cpl_txn.ubuf) by their 16 bytes, with tmp (n
// entries) as room; NULL: slower, in place.
void cs_ubuf_sort(struct ubuf *a, size_t n, struct ubuf *tmp);

// ------------------------------------------------------------ app.c

// Looks up (and with create, interns) a workflow ('w') or app ('a') name.
int cs_name_id(cpl_txn *t, char kind, const char *name, bool create,
    uint32_t *id);
// Writes the buffered task-count deltas of names (before commit and before
// anything reads the counts).
int cs_name_count_flush(cpl_txn *t);
// Adds delta to the task count of an interned name (buffered).
int cs_name_count(cpl_txn *t, char kind, uint32_t id, int64_t delta);
// cs_name_id(t, 'w', name, true, id) through the transaction's cache.
int cs_wf_intern(cpl_txn *t, const char *name, uint32_t *id);
// The interned id of a registered app, through the transaction's cache.
int cs_app_lookup(cpl_txn *t, const char *name, uint32_t *id);
// Forgets the transaction's cached names and lease.
void cs_cache_clear(cpl_txn *t);

// ------------------------------------------------------------ history.c

// Appends one history event; newest: the task was just created; etime:
// the launcher's time of the event (0: none, the commit time stands).
int cs_event_write(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg,
    const char *node, uint64_t etime, bool newest);
// cs_event_write() without a node, for a task that is not the newest.
int cs_event_append(cpl_txn *t, uint64_t id, cpl_state from, cpl_state to,
    uint32_t attempt, uint64_t lease, int32_t rc, const char *msg);

// ------------------------------------------------------------ bjtask.c

// The batch job of a lease (0: none, or a lease of a launcher started by
// hand), through the transaction's cache.
int cs_lease_bjob(cpl_txn *t, uint64_t lease, uint64_t *bjob);
// cpl_store_check of lease_bj, bj_task and bj_count (CPL_ECORRUPT: why)
int cs_bj_check(cpl_txn *t, char *why, size_t len);
// The reply cache holds together: every entry has its age entry, every
// entry in the log its bytes there, and the log nothing else; else
// CPL_ECORRUPT and why (reply.c).
int cs_reply_check(cpl_txn *t, char *why, size_t len);
// An archived task leaves batch job bjob's tasks (bj_task) and its count
// of tasks run (which counts the tasks in the store; a task never RUNNING
// in the job is no error).
int cs_bj_forget(cpl_txn *t, uint64_t bjob, uint64_t id);
// Records a task's move into or out of RUNNING under its lease's batch
// job: the bj_task index and the job's counters.
int cs_bj_note(cpl_txn *t, uint64_t id, uint64_t lease, cpl_state from,
    cpl_state to);

// ------------------------------------------------------------ task.c

// Deletes a task, its index entries and links (cpl_task_delete); with
// note, a "deleted" event is appended to its history, which stays.
int cs_task_remove(cpl_txn *t, uint64_t id, bool note);

// ------------------------------------------------------------ archive.c

// Events removed from the log with the tasks archived (meta "archived"):
// the log's gaps, which cpl_store_check accounts for.
int cs_archived_events(cpl_txn *t, uint64_t *n);

// ------------------------------------------------------------ transition.c

// The one place a task's state changes; r is its current record, updated
// and written. Follow-ups are queued: cs_drain() applies them.
int cs_transition(cpl_txn *t, uint64_t id, struct srec *r, cpl_state to,
    cpl_actor actor, int32_t rc, const char *msg);
// Applies queued follow-up transitions until none is left; *changed (may
// be NULL) counts those applied.
int cs_drain(cpl_txn *t, uint64_t *changed);

#endif // COPAL_STORE_FN_H
