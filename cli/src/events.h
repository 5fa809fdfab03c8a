// The event log as a stream, for the profiling verbs (export, stats, top).
//
// ev_stream() walks the broker's history log page by page (ExportRequest,
// at most EV_PAGE events per page, after_seq = the last_seq of the previous
// page) and hands each page to a callback. A second thread fetches the next
// page while the callback works on the current one, so that at most two
// pages (and the one being unpacked) are ever in memory, whatever the size
// of the log.
//
// Also here: the time arguments of --since/--until, a JSON string writer
// for hand-made JSON, and two small open-addressing hash maps (u64 keys,
// and interned strings) that keep per-task state only while it is needed.
#ifndef COPAL_EVENTS_H
#define COPAL_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "copal/params.h"
#include "cli.h"

#define EV_PAGE 100000u

// --since, --until, --wf, --tag: the option table and the parsed values.
extern const cli_opt window_opts[];
enum { KEY_WF = 600, KEY_SINCE, KEY_UNTIL, KEY_WTAG };

typedef struct ev_window {
	const char *since;    // as given (parsed once the broker's time is known)
	const char *until;
	const char *workflow; // NULL: every workflow
	uint64_t since_us;    // 0: from the start
	uint64_t until_us;    // 0: to the end
	char *tags[CPL_TAGS_MAX]; // --tag K=V: tasks with all of them
	size_t ntags;
} ev_window;

// Handles a window option: 1 if key was one (*rc = 0 or an exit code).
int ev_window_opt(ev_window *w, int key, const char *arg, int *rc);
// Checks the window before connecting (absolute times are known already):
// 0 or an exit code. Everything that can be refused is refused before a
// connection is made: a client that connects and leaves at once can stall
// the broker's IPC listener with NNG 1.5.2 (DESIGN.md, section 8).
int ev_window_check(const ev_window *w);
// Resolves relative times (they count back from the broker's clock, asked
// with one ping). Returns 0 or an exit code.
int ev_window_resolve(cpl_client *c, ev_window *w);

// A time argument: ISO 8601 ("2026-11-25T15:00:00Z", "2026-11-25
// 15:00:00.5", "2026-11-25T15:00:00+01:00", "2026-11-25"; without a zone:
// local time), a relative time ("-10m", "-2h", "-30s", "-1d", "-1.5h":
// before now_us), or seconds since the epoch ("1764082800", "1764082800.25").
// Returns 0 with *out in microseconds, or -1 (the caller says why).
int ev_parse_time(const char *s, uint64_t now_us, uint64_t *out);

// The broker's clock (PingReply.broker_time_us). Returns 0 or an exit code.
int ev_broker_now(cpl_client *c, uint64_t *now_us);

// Called once per page, in log order. A non-zero return (an exit code)
// stops the stream and is returned by ev_stream.
typedef int (*ev_page_fn)(const Copal__ExportReply *page, void *arg);

// Streams every event of the window in pages of EV_PAGE. The fetching
// thread uses c: the callback must not (stats opens a second client for
// its own calls). Returns 0 or an exit code (the reason is printed).
int ev_stream(cpl_client *c, const ev_window *w, ev_page_fn fn, void *arg);

// One event as export's JSON lines have it (cmd_export.c), the object
// alone, without the line's end (copal db archive's lines hold them).
void export_event_json(FILE *fp, const Copal__Event *e);

// Writes s as a JSON string (quotes included) into fp. Bytes that are not
// valid UTF-8 become U+FFFD.
void json_str(FILE *fp, const char *s);

// ------------------------------------------------------------ u64 map
// Open addressing with linear probing; key 0 is reserved (task, lease and
// sequence numbers start at 1). Values are fixed-size, zeroed when added.
typedef struct u64map {
	uint64_t *keys;
	unsigned char *vals;
	size_t vsize;
	size_t cap;   // a power of two
	size_t n;
} u64map;

void u64map_init(u64map *m, size_t vsize);
void u64map_free(u64map *m);
// The value of key, or NULL.
void *u64map_get(const u64map *m, uint64_t key);
// The value of key, added (zeroed) if missing; *added says which.
void *u64map_put(u64map *m, uint64_t key, bool *added);
// Removes key (no-op if missing).
void u64map_del(u64map *m, uint64_t key);
// Iteration: for (size_t i = 0; u64map_next(m, &i, &k, &v); ) ...
bool u64map_next(const u64map *m, size_t *i, uint64_t *key, void **val);

// ------------------------------------------------------------ string set
// Interned strings numbered 0, 1, 2... in order of arrival.
typedef struct strset {
	char **strs;    // by number
	size_t n, capn;
	uint32_t *slots; // hash table of number + 1 (0 = empty)
	size_t cap;
} strset;

void strset_init(strset *s);
void strset_free(strset *s);
// The number of s, added if missing (*added says which; may be NULL).
uint32_t strset_add(strset *s, const char *str, bool *added);

// ------------------------------------------------------------ verbs
int cmd_export(const cli_verb *, int, char **);
int cmd_stats(const cli_verb *, int, char **);
int cmd_top(const cli_verb *, int, char **);
extern const cli_opt export_opts[], stats_opts[], top_opts[];

#endif // COPAL_EVENTS_H
