// Definitions shared by every part of copal: the one error enum and the
// task state machine. No dependencies.
#ifndef COPAL_COMMON_H
#define COPAL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ------------------------------------------------------------------ errors
// One list makes the enum, the names and the messages. 0 is success.
#define CPL_ERRNO_MAP(X)                                                     \
	X(OK, "success")                                                     \
	X(NOMEM, "out of memory")                                            \
	X(INVAL, "invalid argument")                                         \
	X(NOTFOUND, "not found")                                             \
	X(EXISTS, "already exists")                                          \
	X(AMBIGUOUS, "id prefix matches more than one task")                 \
	X(BADSTATE, "state transition not allowed")                          \
	X(STALE, "report for an old attempt or another lease")               \
	X(EXPIRED, "lease expired")                                          \
	X(CYCLE, "dependency would create a cycle")                          \
	X(INUSE, "still in use")                                             \
	X(BUSY, "task is held by a launcher")                                \
	X(NETFS, "database directory is on a network filesystem")            \
	X(LOCKED, "database is open in another process")                     \
	X(MAPFULL, "database map is full and could not grow")                \
	X(PANIC, "database environment failed and was reopened")             \
	X(IO, "input/output error (disk full?)")                             \
	X(CORRUPT, "database is inconsistent")                               \
	X(VERSION, "database was written by an incompatible version")        \
	X(TOOBIG, "value too large")                                         \
	X(INTERNAL, "internal error")                                        \
	X(PROTO, "malformed or invalid request")                             \
	X(PERM, "permission denied")                                         \
	X(TIMEOUT, "timed out")                                              \
	X(CONNECT, "cannot reach the broker")                                \
	X(SHUTDOWN, "broker is shutting down")                               \
	X(REUSED, "request id already used for a different request")

typedef enum cpl_err {
#define CPL_X_ENUM(name, msg) CPL_E##name,
	CPL_ERRNO_MAP(CPL_X_ENUM)
#undef CPL_X_ENUM
	CPL_NERRORS
} cpl_err;
// CPL_EOK is 0.

// A static message for an error code; never NULL.
const char *cpl_strerror(int err);
// The short name of an error code ("NOTFOUND"); never NULL.
const char *cpl_errname(int err);

// ------------------------------------------------------------------ states
// The numbers equal the wire's copal.TaskState values.
typedef enum cpl_state {
	CPL_STATE_NONE = 0,
	CPL_CREATED = 1,
	CPL_AWAITING_PARENTS = 2,
	CPL_READY = 3,
	CPL_STAGED_IN = 4,
	CPL_PREPROCESSED = 5,
	CPL_RUNNING = 6,
	CPL_RUN_DONE = 7,
	CPL_POSTPROCESSED = 8,
	CPL_JOB_FINISHED = 9,
	CPL_RUN_ERROR = 10,
	CPL_RUN_TIMEOUT = 11,
	CPL_RESTART_READY = 12,
	CPL_FAILED = 13,
	CPL_USER_KILLED = 14,
	CPL_PARENT_KILLED = 15,
	CPL_NSTATES = 16
} cpl_state;

// Who asks for a transition. The transition table says which actor may
// perform which transition.
typedef enum cpl_actor {
	CPL_BY_BROKER = 1,   // bookkeeping inside the store
	CPL_BY_LAUNCHER = 2, // a report under a lease, with the attempt number
	CPL_BY_USER = 4,     // copal modify / kill from the command line
} cpl_actor;

// "RUN_DONE"; NULL for values out of range.
const char *cpl_state_name(int state);
// Parses a state name (case-insensitive); returns CPL_STATE_NONE if unknown.
cpl_state cpl_state_parse(const char *name);
// True if actor may move a task from `from` to `to`.
bool cpl_transition_allowed(cpl_state from, cpl_state to, cpl_actor actor);
// True for JOB_FINISHED, FAILED, USER_KILLED, PARENT_KILLED.
bool cpl_state_is_final(cpl_state s);

// ------------------------------------------------------------------ capacity
// Node capacity is measured in units of 1/CPL_NODE_UNITS of a node: a task
// with node_packing_count p uses ceil(CPL_NODE_UNITS/p) units of one node;
// a task with num_nodes n > 1 uses n whole free nodes. 5040 divides evenly
// by every packing count from 1 to 10 and by 12, 14, 15, 16, ...
#define CPL_NODE_UNITS 5040u

// Exact packing: claims and launchers place tasks in parts of a node,
// CPL_NODE_PARTS = 5040^2 to a node, a task with node_packing_count p
// taking floor(CPL_NODE_PARTS / p) of them. Exactly p such tasks fit on a
// node for every p in 1..5040: with q = floor(P/p) >= 5040 >= p and
// r = P - p*q < p <= q, p*q <= P < (p+1)*q. Counts that divide 5040 take
// exact shares, so mixes of them fill a node exactly; any other mix is
// off by less than one part per task (a node never takes one task more
// than the exact shares allow). CPL_NODE_UNITS stays the unit of figures
// (backlog, stats) and of claims from launchers that send no parts.
#define CPL_NODE_PARTS (CPL_NODE_UNITS * CPL_NODE_UNITS)
static inline uint32_t
cpl_packing_parts(uint32_t packing)
{
	return packing > 1 ? CPL_NODE_PARTS / packing : CPL_NODE_PARTS;
}

// ------------------------------------------------------------------ helpers
// A growable array of ids. Start with { NULL, 0, 0 }; free(v) when done.
typedef struct cpl_ids {
	uint64_t *v;
	size_t n, cap;
} cpl_ids;
// Appends id. Errors: CPL_ENOMEM (the array is unchanged).
int cpl_ids_push(cpl_ids *a, uint64_t id);

// Microseconds of CLOCK_MONOTONIC: for intervals, never for broker time.
uint64_t cpl_mono_us(void);

// ------------------------------------------------------------------ paths
// The run directory of a task relative to <database>/data/: `workdir` if
// the user gave one (relative, without ".."), else
// <workflow>/<name>_<8 characters of uuid: cpl_uuid_short>, with names made
// safe as path components. Errors: CPL_EINVAL (workdir absolute or with
// ".."), CPL_ETOOBIG.
int cpl_workdir(const char *workflow, const char *name, const char *uuid,
    const char *workdir, char *buf, size_t len);
// Where the 8 characters that tell a uuid (text form) from its neighbours
// start: its first 8 for a version 4 uuid (random throughout), its last 8
// for a version 7 one (RFC 9562: the first 12 hex digits are the time of
// creation, the same for every task of a bulk create; the last 8 random).
const char *cpl_uuid_short(const char *uuid);
// Every path the launcher writes below data/ is made with these two:
// whether rel (a path relative to some directory: a workdir, a stage-out
// pattern) stays below it: not absolute, no ".." component;
bool cpl_path_inside(const char *rel);
// and src as one path component (a task's name in its output file's
// name): '/', control bytes and a leading '.' become '_'; src NULL or
// empty is dflt. Returns the length written to dst (cap > 0).
size_t cpl_path_component(char *dst, size_t cap, const char *src,
    const char *dflt);

// ------------------------------------------------------------------ UTF-8
// Where to cut the first n bytes of UTF-8 text s without splitting a
// character: n, or less to drop an incomplete last character. Every cut
// of user text (names, owners, messages, error texts) goes through it.
size_t cpl_utf8_cut(const char *s, size_t n);
// Makes s (NUL-terminated bytes, e.g. a program's output) valid UTF-8 in
// place: each byte that does not begin a well-formed character becomes
// '?'. Returns how many were replaced.
size_t cpl_utf8_clean(char *s);

#ifdef __cplusplus
}
#endif
#endif // COPAL_COMMON_H
