// copal client library: talks to a database's broker over NNG. Used by the
// `copal` command, the launcher and programs that speak the protocol.
//
// Each request of proto/copal.proto has a typed call (cpl_call_create_tasks,
// cpl_call_claim, ...) that builds the copal.Request, sends it and returns
// the broker's status as its own; cpl_client_call sends a request built by
// the caller. The library fills in the protocol version, a request id and
// the credentials, sends it and waits for the reply. If the broker does not
// answer in time, the same request (same request id) is sent again: the
// broker applies a mutation once and answers a resent one with the stored
// reply.
#ifndef COPAL_CLIENT_H
#define COPAL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copal.pb-c.h"
#include "copal/common.h"
#include "copal/dbdir.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CPL_PROTOCOL_VERSION 1u
// CPL_ENV_DB, the variable naming the current database directory, is in
// copal/dbdir.h.
// Environment variable naming a broker URL (tls+tcp://host:port) to use
// instead of the database's local socket; the token is then read from
// CPL_ENV_TOKEN or from the database directory's secret file.
#define CPL_ENV_URL "COPAL_BROKER_URL"
#define CPL_ENV_TOKEN "COPAL_TOKEN"
// Over tls+tcp:// the client shows the database's certificate and key and
// accepts only a broker that shows the same certificate. They are read
// from the database directory (tls.crt, tls.key), or from the files these
// variables name (a machine without the database directory); a
// certificate file may hold the key too, then CPL_ENV_TLS_KEY is not
// needed.
#define CPL_ENV_TLS_CERT "COPAL_TLS_CERT"
#define CPL_ENV_TLS_KEY "COPAL_TLS_KEY"
// A user's credential file (copal server --add-user writes it): a line
// "token HEX", the user's certificate and key, and the database's
// certificate. It stands for CPL_ENV_TOKEN and CPL_ENV_TLS_CERT when those
// are not set; the broker must then show the database's certificate (the
// last one in the file).
#define CPL_ENV_CREDENTIAL "COPAL_CREDENTIAL"

typedef struct cpl_client cpl_client;

typedef struct cpl_client_opts {
	const char *db_dir;   // NULL: $COPAL_DB
	const char *url;      // NULL: $COPAL_BROKER_URL, else the local socket
	const char *token;    // NULL: $COPAL_TOKEN, else <db_dir>/secret if readable
	int timeout_ms;       // per attempt; 0: 10000
	int attempts;         // sends of one request; 0: 3
	// tls+tcp:// only: the database's certificate and our key (PEM
	// files); NULL: $COPAL_TLS_CERT / $COPAL_TLS_KEY, else <db_dir>/tls.crt
	// and tls.key
	const char *tls_cert;
	const char *tls_key;
} cpl_client_opts;

// cpl_db_socket_url(db_dir, buf, len), the URL of a database's local
// socket, is in copal/dbdir.h with the other paths of a database directory.

// Opens a client. Does not wait for the broker: the first call does.
// Errors: CPL_EINVAL (no database given and $COPAL_DB unset), CPL_ENOTFOUND
// (not a copal database), CPL_ETOOBIG, CPL_ENOMEM, CPL_ECONNECT.
int cpl_client_open(const cpl_client_opts *opts, cpl_client **out);
// Closes a client. It waits at most 3 s for NNG to close the socket: past
// that (NNG 1.5.2's reaper stuck after a broker died mid-answer) the
// socket is left to a thread of its own and the call returns.
void cpl_client_close(cpl_client *c);
// The database directory of this client (absolute), or "" for a URL only.
const char *cpl_client_db(const cpl_client *c);

// Sends req and waits for its reply. The library sets req->version,
// req->request_id (if 0: the client's next sequence number; it stays in
// req, so sending req again is a resend) and req->credentials, and sends
// the client's id (picked at random at open) unless req->client_id is set
// (copal.proto, Request: a reused id with another body is refused with
// CPL_EREUSED). On success *reply is the
// broker's answer (check (*reply)->status; free with cpl_reply_free or
// copal__reply__free_unpacked(*reply, NULL)). Errors: CPL_ETIMEOUT (no
// answer after every attempt), CPL_ECONNECT, CPL_EPROTO (unreadable reply),
// CPL_ENOMEM. Programs use the typed calls below; this one is for those
// that build requests themselves (tests of the wire).
int cpl_client_call(cpl_client *c, Copal__Request *req, Copal__Reply **reply);

// Same with one attempt and the given timeout; for health checks.
int cpl_client_call_once(cpl_client *c, Copal__Request *req, int timeout_ms,
    Copal__Reply **reply);

// The same with the request and its reply packed: body is a packed
// copal.Request holding its body only (fields 10 and up; programs in other
// languages make it with their protobuf library); the library adds the
// envelope (version, the next request id, client id, credentials) and
// resends the same bytes like cpl_client_call. On success *reply is the
// packed Reply (its request id checked, nothing else decoded; check its
// status), freed with cpl_packed_free(*reply, *reply_len). Errors: as
// cpl_client_call.
int cpl_client_call_packed(cpl_client *c, const void *body, size_t body_len,
    void **reply, size_t *reply_len);
void cpl_packed_free(void *reply, size_t len);

// A fresh random request id (never 0).
uint64_t cpl_request_id(void);
// The next request id of c, for a request whose copies must share one
// (request_id of cpl_client_call, sent again after a lost reply): the
// time in microseconds, or one more than c's last id, as c numbers the
// requests it sends itself. Ids that grow with time let the broker store
// the replies of one moment together; a random one (cpl_request_id)
// scatters them. Not thread-safe: use c from one thread at a time, as
// for its calls. c NULL: a random id.
uint64_t cpl_client_next_id(cpl_client *c);

// ------------------------------------------------------------ typed calls
// One call per request body of copal.proto. Each builds the request from
// its arguments (which it only reads: they stay the caller's), sends it
// like cpl_client_call (resent with the same request id when the broker
// does not answer in time) and folds the reply's status into the return
// value:
//   0: *rep is the broker's reply, its body the one named by the call
//      ((*rep)->claim for cpl_call_claim, ...). The caller owns it and
//      frees it with cpl_reply_free; parts of it may be taken out and kept
//      (protobuf-c allocates every submessage on its own).
//   else: a copal error code and *rep is NULL. The code is the broker's
//      status (the request was refused) or a local failure; the two are
//      told apart by cpl_client_err_remote and explained by
//      cpl_client_errmsg.
// Names carry `call` so that they cannot meet the store's cpl_claim,
// cpl_query, cpl_app_list... in a program that links both.
//
// Every call can fail with these, besides those listed at each call:
//   local: CPL_ETIMEOUT (no answer after every attempt), CPL_ECONNECT,
//     CPL_EINVAL (c or rep NULL, or a URL NNG does not take), CPL_ENOMEM,
//     CPL_EPROTO (an unreadable reply, or one whose body is not the one
//     asked for);
//   from the broker: CPL_EPERM (wrong or missing token), CPL_EPROTO (a
//     request the broker cannot read or check), CPL_ESHUTDOWN, CPL_ENOMEM,
//     CPL_EINTERNAL, and for the calls that change the database its store
//     errors: CPL_EIO, CPL_EMAPFULL, CPL_EPANIC, CPL_ECORRUPT.
// A client is used by one thread at a time; the error state below is the
// client's, like its socket.

// Why the last call on c failed: the broker's error text (its status's
// message when the text is empty) or cpl_strerror of a local failure; ""
// after a success. Valid until the next call on c or cpl_client_close.
const char *cpl_client_errmsg(const cpl_client *c);
// Whether the last call's error is a status the broker answered with (true)
// rather than a local failure (false; also after a success).
bool cpl_client_err_remote(const cpl_client *c);

// Frees a reply of a typed call or of cpl_client_call; NULL does nothing.
void cpl_reply_free(Copal__Reply *rep);

// Creates body->tasks (one transaction: all or none) and the dependencies
// within the batch. Reply: create (first_id, count; uuids if want_uuids).
// Errors: CPL_EINVAL (no tasks, bad spec or local dependency lists; the
// message names the task: "task I (NAME): ..."), CPL_ENOTFOUND (no such app
// or parent task), CPL_ETOOBIG.
int cpl_call_create_tasks(cpl_client *c, const Copal__CreateTasksRequest *body,
    Copal__Reply **rep);

// Claims runnable tasks for a lease that fit the offered capacity. Reply:
// claim (the tasks with their apps; kill notices).
// Errors: CPL_EINVAL (max_tasks or capacity out of range), CPL_ENOTFOUND /
// CPL_EEXPIRED (the lease is gone).
int cpl_call_claim(cpl_client *c, const Copal__ClaimRequest *body,
    Copal__Reply **rep);

// Reports state changes of tasks held by lease_id. A report refused (stale
// attempt, state move not allowed...) does not fail the call: reply
// report->status[i] holds the status of reports[i]; kill notices too.
// Errors: only the common ones.
int cpl_call_report(cpl_client *c, uint64_t lease_id,
    Copal__StateReport *const *reports, size_t n, Copal__Reply **rep);

// Renews lease_id (0: asks for a new lease for owner) with ttl_ms (0: the
// broker's default), or gives it back (release). Reply: heartbeat (lease
// id, deadline, kill notices).
// Errors: CPL_EINVAL (ttl_ms out of range, release of lease 0),
// CPL_ENOTFOUND / CPL_EEXPIRED (the lease is gone: stop its tasks).
int cpl_call_heartbeat(cpl_client *c, uint64_t lease_id, const char *owner,
    uint32_t ttl_ms, bool release, Copal__Reply **rep);
// cpl_call_heartbeat of a launcher that runs in a batch job: copal's id of
// the job (0: none) and the scheduler's (NULL or "": none), recorded with
// a new lease.
int cpl_call_heartbeat_job(cpl_client *c, uint64_t lease_id,
    const char *owner, uint32_t ttl_ms, bool release, uint64_t batch_job_id,
    const char *scheduler_job_id, Copal__Reply **rep);

// One page of the tasks filter selects (NULL: all), ids above after_id, at
// most limit (0: the broker's page); with_spec adds their specs. Reply:
// query (tasks, more).
// Errors: CPL_EINVAL (limit above the page size, bad filter).
int cpl_call_query(cpl_client *c, const Copal__Filter *filter,
    uint64_t after_id, uint32_t limit, bool with_spec, Copal__Reply **rep);

// Counts the tasks filter selects (NULL: all) by state. Reply: count.
// Errors: CPL_EINVAL (bad filter).
int cpl_call_count(cpl_client *c, const Copal__Filter *filter,
    Copal__Reply **rep);

// Sets field to value in the tasks filter selects; message (NULL: none)
// goes into the history of a state change. Reply: modify (matched,
// changed).
// Errors: CPL_EINVAL (no or bad filter, unknown field or value),
// CPL_EBUSY (a task is held by a launcher), CPL_EBADSTATE.
int cpl_call_modify(cpl_client *c, const Copal__Filter *filter,
    const char *field, const char *value, const char *message,
    Copal__Reply **rep);
// The same from a stage (handler, preprocess, postprocess) of a task held
// by lease: only spec fields, of tasks held by that lease.
// Errors: as above; CPL_EBUSY (held by another lease), CPL_ESTALE (not
// held), CPL_EINVAL (field "state").
int cpl_call_modify_held(cpl_client *c, const Copal__Filter *filter,
    const char *field, const char *value, const char *message, uint64_t lease,
    Copal__Reply **rep);

// cpl_call_modify of field "state" to RESTART_READY that also brings the
// PARENT_KILLED descendants of the tasks back (recursive), or any modify
// (recursive false). Errors: as cpl_call_modify; CPL_EINVAL (recursive
// with another field or state).
int cpl_call_modify_recursive(cpl_client *c, const Copal__Filter *filter,
    const char *field, const char *value, const char *message, bool recursive,
    Copal__Reply **rep);

// Deletes the tasks filter selects (all or none). Reply: delete_.
// Errors: CPL_EINVAL (no or bad filter), CPL_EBUSY (held by a launcher),
// CPL_EINUSE (a task has children outside the selection).
int cpl_call_delete(cpl_client *c, const Copal__Filter *filter,
    Copal__Reply **rep);

// Kills the tasks filter selects (recursive: their descendants too).
// Reply: kill (killed).
// Errors: CPL_EINVAL (no or bad filter).
int cpl_call_kill(cpl_client *c, const Copal__Filter *filter, bool recursive,
    Copal__Reply **rep);

// Makes child wait for parent (ids). Reply: add_dependency (empty).
// Errors: CPL_ENOTFOUND, CPL_EINVAL (parent == child), CPL_EEXISTS,
// CPL_ECYCLE, CPL_EBUSY / CPL_EBADSTATE (the child has already started).
int cpl_call_add_dependency(cpl_client *c, uint64_t parent_id,
    uint64_t child_id, Copal__Reply **rep);
// Removes the dependency of child on parent. Reply: add_dependency.
// Errors: CPL_ENOTFOUND (no such task, or not a parent), CPL_EBUSY /
// CPL_EBADSTATE (the child has already started).
int cpl_call_dep_remove(cpl_client *c, uint64_t parent_id, uint64_t child_id,
    Copal__Reply **rep);
// Replaces child's parents by ids[0..n), all or nothing. Reply:
// add_dependency. Errors: those of both calls above, CPL_EINVAL (a parent
// twice, or the child itself).
int cpl_call_dep_replace(cpl_client *c, uint64_t child_id,
    const uint64_t *ids, size_t n, Copal__Reply **rep);

// The state changes of one task. Reply: history (events).
// Errors: CPL_ENOTFOUND (no such task).
int cpl_call_history(cpl_client *c, uint64_t task_id, Copal__Reply **rep);

// One page of the event log. Reply: export (events, last_seq, more).
// Errors: CPL_EINVAL (limit above the page size).
int cpl_call_export(cpl_client *c, const Copal__ExportRequest *body,
    Copal__Reply **rep);

// Registers app (replace: an existing one of that name too). Reply:
// app_register (empty).
// Errors: CPL_EEXISTS (without replace), CPL_EINVAL (no name, a name over
// 255 bytes or no executable).
int cpl_call_app_register(cpl_client *c, const Copal__App *app, bool replace,
    Copal__Reply **rep);

// Every registered app. Reply: app_list (apps). Errors: the common ones.
int cpl_call_app_list(cpl_client *c, Copal__Reply **rep);

// Removes an app. Reply: app_delete (empty).
// Errors: CPL_ENOTFOUND ("no app named NAME"), CPL_EINUSE (tasks use it).
int cpl_call_app_delete(cpl_client *c, const char *name, Copal__Reply **rep);

// The broker's time, pid, version, addresses and task counts. Reply: ping.
// Errors: the common ones.
int cpl_call_ping(cpl_client *c, Copal__Reply **rep);
// Same with one attempt of timeout_ms; for health checks ("is it up?").
int cpl_call_ping_once(cpl_client *c, int timeout_ms, Copal__Reply **rep);

// The workflows with their task counts. Reply: workflow_list.
// Errors: the common ones.
int cpl_call_workflow_list(cpl_client *c, Copal__Reply **rep);

// The live leases (running launchers). Reply: lease_list.
// Errors: the common ones.
int cpl_call_lease_list(cpl_client *c, Copal__Reply **rep);

// Records a batch job in BJ_SUBMITTING (its id and times are the broker's).
// Reply: batch_add (the stored job).
// Errors: CPL_EINVAL (unknown scheduler or job mode, missing or malformed
// fields).
int cpl_call_bjob_add(cpl_client *c, const Copal__BatchJob *job,
    Copal__Reply **rep);

// Moves a batch job to body->state and updates what the scheduler said
// (see BatchJobUpdateRequest for the allowed moves). Reply: batch_update
// (the stored job).
// Errors: CPL_ENOTFOUND (no such job), CPL_EBADSTATE (move not allowed),
// CPL_EINVAL (no state, fields too long).
int cpl_call_bjob_update(cpl_client *c, const Copal__BatchJobUpdateRequest *body,
    Copal__Reply **rep);

// The batch jobs in any of states[0..n) (n 0: all), by id. Reply:
// batch_list. Errors: the common ones.
int cpl_call_bjob_list(cpl_client *c, const Copal__BatchJobState *states,
    size_t n, Copal__Reply **rep);

// The runnable backlog against a queue policy. Reply: backlog.
// Errors: CPL_EINVAL (too many queues or unfit ids, a queue of no nodes).
int cpl_call_backlog(cpl_client *c, const Copal__BacklogRequest *body,
    Copal__Reply **rep);
// copal db archive (admin): a page of tasks that may leave the store, with
// their events (reply: archive_pick); the removal of exactly those
// (reply: archive). See ArchivePickRequest in copal.proto.
int cpl_call_archive_pick(cpl_client *c, const Copal__ArchivePickRequest *body,
    Copal__Reply **rep);
int cpl_call_archive(cpl_client *c, const Copal__ArchiveRequest *body,
    Copal__Reply **rep);

#ifdef __cplusplus
}
#endif
#endif // COPAL_CLIENT_H
