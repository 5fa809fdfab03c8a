// The `copal` command: declarations shared by its source files.
//
// Layout: copal.c holds the verb table and main(); opts.c parses options
// from per-verb tables and prints help from the same tables; db.c finds the
// database and talks to (or starts) its broker; resolve.c turns uuid prefixes
// into task ids; filter.c builds task filters from options; spec.c makes
// `job` options, `job --from-file` JSON and `modify` help from the task
// spec's field table (copal/spec.h);
// table.c prints tables, JSON and CSV. The cmd_*.c files and bulk.c hold the
// verbs.
#ifndef COPAL_CLI_H
#define COPAL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "copal/arena.h"
#include "copal/client.h"
#include "copal/common.h"
#include "copal/spec.h"
#include "copal/xalloc.h"

// ------------------------------------------------------------ exit codes
enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,      // the broker refused, or a system error
	EXIT_USAGE = 2,    // bad command line
	EXIT_NOTFOUND = 3, // no such task / app / database
};

// ------------------------------------------------------------ messages
// "copal VERB: message" on stderr. The verb is set by main().
extern const char *cli_verb_name;
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Exit code for a copal error code: CPL_ENOTFOUND -> 3, others -> 1.
int cli_exit_for(int err);

// ------------------------------------------------------------ options
enum { OPT_NOARG = 0, OPT_ARG = 1, OPT_OPTARG = 2 };

// One command-line option of a verb. Tables end with a zeroed entry.
typedef struct cli_opt {
	const char *name;    // long name, without the dashes
	int key;             // short option character, or a value >= 256
	int arg;             // OPT_NOARG, OPT_ARG or OPT_OPTARG (--name=VALUE)
	const char *metavar; // shown in help for an argument
	const char *help;
} cli_opt;

// Keys shared by every verb.
enum { KEY_HELP = 'h', KEY_DB = 256, KEY_FORMAT, KEY_YES = 'y' };

typedef struct cli_verb cli_verb;
typedef int (*cli_exec)(const cli_verb *v, int argc, char **argv);

// One verb of the command line (tmux's cmd_entry).
struct cli_verb {
	const char *name;
	const char *usage;              // what follows "copal NAME"
	const char *help;               // one line
	const char *more;               // longer text for --help, or NULL
	const cli_opt *const *opts;     // NULL-terminated list of option tables
	cli_exec exec;
};

extern const cli_opt common_opts[];  // --db, --help

// Parser over a verb's option tables (getopt_long underneath). Options
// and operands may be mixed; an operand such as "-5" is not taken for an
// option. The operands are p->argv[p->first .. p->argc) after the loop
// (p->argv is the parser's own rearranged copy of the array, valid until
// cli_parse_free; the strings are the caller's).
typedef struct cli_parse {
	const cli_verb *verb;
	int argc;
	char **argv;
	void *longopts;  // struct option[]
	char *shortopts;
	int nargs;       // number of operands, after the loop
	int first;       // index of the first operand in p->argv
} cli_parse;

// Prepares parsing of argv (argv[0] is the verb). Handles --help (prints
// help and exits 0) and --db (recorded in cli_db_opt) by itself.
int cli_parse_init(cli_parse *p, const cli_verb *v, int argc, char **argv);
// The next option: its key and *arg (or NULL); -1 at the end, after which
// p->first indexes the first operand; '?' after printing a usage error.
int cli_parse_next(cli_parse *p, const char **arg);
void cli_parse_free(cli_parse *p);
void cli_verb_help(const cli_verb *v, FILE *fp);
// After the option loop of a verb that takes no operands: 0, or a usage
// error naming the first one (EXIT_USAGE).
int cli_no_operands(const cli_parse *p);
// Prints "copal VERB: <msg> (see copal VERB --help)" and returns EXIT_USAGE.
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Number parsing for options: prints a usage error on failure.
int cli_u32(const char *opt, const char *s, uint32_t *out);
int cli_i32(const char *opt, const char *s, int32_t *out);
int cli_u64(const char *opt, const char *s, uint64_t *out);
int cli_bool(const char *opt, const char *s, bool *out);

// ------------------------------------------------------------ database
extern const char *cli_db_opt; // --db, or NULL

// Finds the database directory: --db, else $COPAL_DB. Writes the absolute
// path into out (PATH_MAX bytes). Prints why on failure; returns an exit
// code.
int cli_db_find(char *out, size_t len);
// Connects to the database's broker, starting it when it is not running
// (unless $COPAL_NO_AUTOSTART is set). With $COPAL_BROKER_URL the broker
// named there is used as is.
int cli_connect(cpl_client **out);
// The exit code of a typed call on c that returned rv (cpl_call_*): 0, or
// prints why it failed (the broker's message, or that it did not answer)
// and returns the exit code for it.
int cli_call_rc(cpl_client *c, int rv);

// The stages a history event passed over (skipped.c): added to a JSON
// event object (a json_t *, NULL: nothing), or printed "(skipped A, B) ".
void event_skipped_json(void *ev, const Copal__Event *e);
void event_skipped_print(const Copal__Event *e);

// The pid of the running broker of db (from db/broker.pid, checked
// against /proc), or 0.
long cli_broker_pid(const char *db);
// Starts the broker of db unless it runs; waits until it answers.
// tcp: URL to listen on too, or NULL (copal.conf's broker_tcp).
// *started: whether this call started it; *pid (if not NULL): the pid
// the broker gave in its answer, the one that runs.
int cli_broker_start(const char *db, const char *tcp, bool *started,
    long *pid);
int cli_broker_stop(const char *db, bool *was_running);
// One ping to the local broker of db with a short timeout: a copal error
// code (0: *rep holds the reply).
int cli_ping(const char *db, Copal__Reply **rep);
// A copal program: $ENV, else next to this program, else in the build
// tree beside it (../SUBDIR/NAME), else NAME to look up in PATH (*search).
void cli_find_program(const char *name, const char *env, const char *subdir,
    char *buf, size_t len, bool *search);
// Appends path to ~/.copal/databases unless listed.
void cli_db_remember(const char *path);
// Reads a copal.conf setting into buf ("" if unset). Returns 0 if found.
int cli_conf_get(const char *db, const char *key, char *buf, size_t len);

// ------------------------------------------------------------ arena
// copal/arena.h (common)

// ------------------------------------------------------------ output
typedef enum out_fmt { FMT_TABLE, FMT_JSON, FMT_JSONL, FMT_CSV } out_fmt;
extern const cli_opt format_opts[];  // --format
int out_fmt_parse(const char *s, out_fmt *out);

enum { COL_STR = 0, COL_INT = 1 };
typedef struct tcol {
	const char *name;
	int type;  // COL_INT: right-aligned in tables, a number in JSON
} tcol;

typedef struct table table;
// Starts a table on fp. Tables take their column widths from the data
// (the first TABLE_BUFFER rows; later rows are streamed with those widths).
table *table_open(out_fmt fmt, const tcol *cols, size_t ncols, FILE *fp);
void table_row(table *t, const char *const *cells);
void table_close(table *t);
// Ends a table after an error: prints nothing more (a JSON array already
// started is closed).
void table_discard(table *t);
#define TABLE_BUFFER 10000

// A JSON stream of objects (FMT_JSON: one array; FMT_JSONL: one per line).
// json_item takes ownership of the object (a json_t *).
typedef struct jout jout;
jout *json_open(out_fmt fmt, FILE *fp);
void json_item(jout *j, void *obj);
void json_close(jout *j);
void json_discard(jout *j);

// CSV field with RFC 4180 quoting.
void csv_field(FILE *fp, const char *s);

// ------------------------------------------------------------ util
// Allocation that ends the program with a message when memory runs out:
// common's (copal/xalloc.h), whose handler main sets to cli_oom.
#define xmalloc(n) cpl_xmalloc(n)
#define xcalloc(n, size) cpl_xcalloc((n), (size))
#define xrealloc(p, n) cpl_xrealloc((p), (n))
#define xstrdup(s) cpl_xstrdup(s)
// "copal VERB: out of memory" on stderr, and exit with EXIT_ERR.
void cli_oom(void);
// Local time "2024-05-01 12:00:00.123456" into buf (32 bytes).
void fmt_time_us(uint64_t us, char *buf, size_t len);
// UTC ISO 8601 "2024-05-01T12:00:00.123456Z" (JSON output); "" for 0.
void fmt_time_iso(uint64_t us, char *buf, size_t len);
double now_s(void);
// When an event happened: the launcher's clock for its reports (event_us),
// else the commit time (time_us; also for a broker that sends no event_us).
static inline uint64_t
ev_time(const Copal__Event *e)
{
	return e->event_us ? e->event_us : e->time_us;
}
// Asks "prompt [y/n]: " on stdout, reads stdin. True for y/yes.
bool confirm(const char *prompt);
// Writes s single-quoted for a POSIX shell.
void shell_quote(FILE *fp, const char *s);
bool is_uuid_prefix(const char *s);

// ------------------------------------------------------------ filters
extern const cli_opt filter_opts[];
typedef struct filt {
	Copal__Filter f;
	Copal__TaskState states[CPL_NSTATES];
	uint64_t *ids;
	size_t nids;
	char **tags; // --tag K=V (all must match)
	size_t ntags;
	bool set;  // some option given
} filt;
void filt_init(filt *f);
void filt_free(filt *f);
// Handles a filter option. Returns 1 if it was one (and *rc = 0 or an exit
// code after a bad value), 0 if key is not a filter option.
int filt_opt(filt *f, int key, const char *arg, int *rc);
// Finalizes f->f (points states/ids into f). Call before sending.
Copal__Filter *filt_wire(filt *f);
// Adds an id to select.
int filt_add_id(filt *f, uint64_t id);
// Text such as "state READY, workflow test".
void filt_describe(const filt *f, char *buf, size_t len);

// ------------------------------------------------------------ resolve
// Resolves a uuid prefix to exactly one task. Prints why on failure
// (no match: 3; ambiguous: 1, listing the matches; bad prefix: 2).
// uuid may be NULL.
int resolve_prefix(cpl_client *c, const char *prefix, uint64_t *id,
    char *uuid);
// Fetches one task by id (with spec). *out freed by the caller with
// copal__reply__free_unpacked(*rep, NULL).
int fetch_task(cpl_client *c, uint64_t id, Copal__Reply **rep,
    Copal__Task **out);

// id -> uuid lookups, cached, in batches.
typedef struct uuid_map uuid_map;
uuid_map *uuid_map_new(void);
void uuid_map_free(uuid_map *m);
// Records an id's uuid.
void uuid_map_put(uuid_map *m, uint64_t id, const char *uuid);
// Looks up every id not yet known with one query per 10,000 ids.
int uuid_map_fetch(uuid_map *m, cpl_client *c, const uint64_t *ids, size_t n);
// The uuid of id, or NULL (deleted or not fetched).
const char *uuid_map_get(const uuid_map *m, uint64_t id);

// ------------------------------------------------------------ apps
// Fetches the app list. *rep owns the apps.
int apps_fetch(cpl_client *c, Copal__Reply **rep);
const Copal__App *apps_find(const Copal__Reply *rep, const char *name);

// ------------------------------------------------------------ task specs
// A task spec being built, with its storage in an arena.
typedef struct spec_buf {
	Copal__TaskSpec sp;
	Copal__Resources res;
	const char **parent_refs;  // uuid prefixes from --parents, unresolved
	size_t nparent_refs;
} spec_buf;

// One option per field of the table (copal/spec.h), and other spellings;
// keys from KEY_SPEC up. modify_more: the FIELD help of `copal modify`.
// Both are filled by spec_cli_init, which main calls first.
extern cli_opt spec_opts[];
extern char modify_more[];
enum { KEY_SPEC = 1000 };
void spec_cli_init(void);
// The field a user names: its key or alias, '-' read as '_'; with proto,
// its schema name too (copal modify data_json). NULL if none.
const cpl_spec_field *spec_field_named(const char *name, bool proto);
// The defaults of the table (max_retries 3, auto_timeout_retry true).
void spec_init(spec_buf *b);
// Sets a field from a command-line option (key from spec_opts). Returns 0
// or an exit code after printing why.
int spec_set_opt(spec_buf *b, arena *a, int key, const char *arg);
// Sets fields from one JSON object (a json_t *); unknown keys are errors.
// Keys handled by the caller (listed in skip, NULL-terminated) are ignored.
// On failure writes the reason into err and returns -1.
struct json_t;
int spec_from_json(spec_buf *b, arena *a, struct json_t *obj,
    const char *const *skip, char *err, size_t errlen);
// Adds a resolved parent id.
void spec_add_parent(spec_buf *b, arena *a, uint64_t id);
// Prints a key: value block (Balsam's confirmation). app, db, uuid and m
// may be NULL; parents are shown by uuid when m knows them. all: every
// field, not only the usual ones and those set.
void spec_print(FILE *fp, const Copal__TaskSpec *sp, const Copal__App *app,
    const char *db, const char *uuid, bool all, const uuid_map *m);
// A task as a JSON object (json_t *); m gives parent uuids (may be NULL).
void *task_json(const Copal__Task *t, const uuid_map *m);

// ------------------------------------------------------------ verbs
int cmd_init(const cli_verb *, int, char **);
int cmd_activate(const cli_verb *, int, char **);
int cmd_deactivate(const cli_verb *, int, char **);
int cmd_which(const cli_verb *, int, char **);
int cmd_log(const cli_verb *, int, char **);
int cmd_server(const cli_verb *, int, char **);
int cmd_app(const cli_verb *, int, char **);
int cmd_job(const cli_verb *, int, char **);
int cmd_mkchild(const cli_verb *, int, char **);
int cmd_dep(const cli_verb *, int, char **);
int cmd_ls(const cli_verb *, int, char **);
int cmd_history(const cli_verb *, int, char **);
int cmd_modify(const cli_verb *, int, char **);
int cmd_rm(const cli_verb *, int, char **);
int cmd_killjob(const cli_verb *, int, char **);
int cmd_make_dummies(const cli_verb *, int, char **);
int cmd_launcher(const cli_verb *, int, char **);
int cmd_completion(const cli_verb *, int, char **);
int cmd_web(const cli_verb *, int, char **);
extern const cli_opt web_opts[];
// The verb table (copal.c), n rows.
const cli_verb *cli_verb_table(size_t *n);

// Sub-verbs reached through another verb: `ls apps`, `rm app`.
int ls_apps(out_fmt fmt);
// cmd_queue.c: batch jobs (submit-launch, service, ls queues; the work is
// the scheduler library's, copal/sched.h)
int cmd_submit_launch(const cli_verb *, int, char **);
int cmd_service(const cli_verb *, int, char **);
int ls_queues(cpl_client *c, out_fmt fmt, bool verbose);
// copal queue rm ID...: cancels batch jobs (sched_job_cancel).
int cmd_queue(const cli_verb *, int, char **);
// Warns on stderr about runnable tasks that no queue of the settings'
// policy can run.
void ls_warn_unfit(cpl_client *c);
extern const cli_opt submit_opts[], service_opts[], queue_opts[];
int rm_app(const char *name);

// Bulk creation from a JSON-lines file (job --from-file).
int bulk_create(cpl_client *c, const char *path, uint32_t batch);
// One line of such a file into a spec (in arena a): the JSON object
// (a json_t * into *obj, NULL if the line is not JSON; the caller
// decrefs it) read as the spec's fields and checked by the rule book; "key"
// and "parent_keys" are left to the caller. Returns 0, or EXIT_ERR with
// the reason in err.
int bulk_parse_line(arena *a, const char *text, size_t len, spec_buf **out,
    void **obj, char *err, size_t errlen);
// Creates one batch of tasks (one CreateTasksRequest). Returns an exit
// code; on success *rep holds the reply (first_id, count, uuids).
int create_batch(cpl_client *c, Copal__TaskSpec **specs, size_t n,
    uint32_t *lpc, uint32_t *lpp, size_t nl, bool want_uuids,
    Copal__Reply **rep);

// Option tables of the verbs (defined beside each verb).
extern const cli_opt init_opts[], activate_opts[], which_opts[], log_opts[],
    server_opts[], app_opts[], job_opts[], mkchild_opts[], dep_opts[],
    ls_opts[], history_opts[], modify_opts[], rm_opts[], killjob_opts[],
    dummies_opts[], launcher_opts[], completion_opts[];

// ------------------------------------------------------------ cmd_users.c
// copal server's user options (the broker checks the caller is an admin).
int users_add(const char *db, const char *name, const char *role,
    const char *out);
int users_drop(const char *db, const char *name);
int users_list(const char *db);
int users_conns(const char *db);

#endif // COPAL_CLI_H
