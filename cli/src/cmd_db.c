// copal db: what a user does with a big database.
//
//   stats    the file, its pages and tables, tasks and events, the map's
//            free space: read through a read-only LMDB environment of its
//            own, beside a running broker (LMDB readers of any process
//            are safe beside its one writer; the broker is not asked)
//   compact  LMDB's compacting copy swapped in over data.mdb, with the
//            broker stopped: the swap replaces the file under a writer
//            that would go on writing the old one (the store's lock,
//            copal.lock, refuses a broker that runs meanwhile)
//   check    cpl_store_check, with the broker stopped
//   archive  finished tasks and their events to a gzip'd JSON-lines file
//            and out of the store, through the broker (cmd_db_archive.c)
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cli.h"
#include "copal/store.h"
#include "db_archive.h"

const cli_opt db_opts[] = {
	{ "json", KEY_DB_JSON, OPT_NOARG, NULL, "stats: JSON output" },
	{ "before", KEY_DB_BEFORE, OPT_ARG, "DATE",
	    "archive: tasks whose last event is before DATE (ISO 8601, "
	    "-30d, epoch seconds, or now)" },
	{ "wf", KEY_DB_WF, OPT_ARG, "WF", "archive: only workflow WF" },
	{ "out", 'o', OPT_ARG, "FILE",
	    "archive: the file to write (default: "
	    "archive-YYYYmmddTHHMMSSZ.jsonl.gz); never overwritten" },
	{ "chunk", KEY_DB_CHUNK, OPT_ARG, "N",
	    "archive: tasks per removal (1..10000, default 10000)" },
	{ NULL, 0, 0, NULL, NULL },
};

static double
mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static int
db_stats(const char *db, bool json)
{
	cpl_db_stats *st = xcalloc(1, sizeof(*st));
	double t0 = now_s();
	int rv = cpl_db_stats_get(db, st);
	double dt = now_s() - t0;
	if (rv != 0) {
		cli_err("%s: %s", db, cpl_strerror(rv));
		free(st);
		return rv == CPL_ENOTFOUND ? EXIT_NOTFOUND : EXIT_ERR;
	}
	uint64_t free_bytes = st->free_pages * st->page_size;
	uint64_t map_free = st->map_size > st->used_bytes ?
	    st->map_size - st->used_bytes : 0;
	if (json) {
		json_t *o = json_object(), *tabs = json_array(),
		       *counts = json_object();
		json_object_set_new(o, "database", json_string(db));
		json_object_set_new(o, "file_bytes",
		    json_integer((json_int_t)st->file_bytes));
		json_object_set_new(o, "disk_bytes",
		    json_integer((json_int_t)st->disk_bytes));
		json_object_set_new(o, "page_size",
		    json_integer((json_int_t)st->page_size));
		json_object_set_new(o, "last_pgno",
		    json_integer((json_int_t)st->last_pgno));
		json_object_set_new(o, "used_bytes",
		    json_integer((json_int_t)st->used_bytes));
		json_object_set_new(o, "free_pages",
		    json_integer((json_int_t)st->free_pages));
		json_object_set_new(o, "free_bytes",
		    json_integer((json_int_t)free_bytes));
		json_object_set_new(o, "map_size",
		    json_integer((json_int_t)st->map_size));
		json_object_set_new(o, "map_free_bytes",
		    json_integer((json_int_t)map_free));
		json_object_set_new(o, "tasks",
		    json_integer((json_int_t)st->ntasks));
		json_object_set_new(o, "events",
		    json_integer((json_int_t)st->nevents));
		json_object_set_new(o, "archived_events",
		    json_integer((json_int_t)st->archived_events));
		json_object_set_new(o, "last_txnid",
		    json_integer((json_int_t)st->txnid));
		json_object_set_new(o, "readers",
		    json_integer((json_int_t)st->readers));
		for (int s = 1; s < CPL_NSTATES; s++)
			if (st->counts[s])
				json_object_set_new(counts, cpl_state_name(s),
				    json_integer((json_int_t)st->counts[s]));
		json_object_set_new(o, "by_state", counts);
		for (uint32_t i = 0; i < st->ntables; i++) {
			const cpl_db_table *tb = &st->tables[i];
			json_array_append_new(tabs, json_pack("{s:s,s:I,s:I,s:i}",
			    "name", tb->name, "entries", (json_int_t)tb->entries,
			    "pages", (json_int_t)tb->pages, "depth",
			    (int)tb->depth));
		}
		json_object_set_new(o, "tables", tabs);
		json_object_set_new(o, "seconds", json_real(dt));
		json_dumpf(o, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(o);
		free(st);
		return 0;
	}
	printf("database:     %s\n", db);
	printf("file:         %.1f MiB (%" PRIu64 " bytes; %.1f MiB on disk)\n",
	    mib(st->file_bytes), st->file_bytes, mib(st->disk_bytes));
	printf("pages:        %" PRIu64 " of %" PRIu64 " bytes in use (%.1f "
	    "MiB); %" PRIu64 " of them free for reuse (%.1f MiB, the "
	    "freelist)\n", st->last_pgno + 1, st->page_size,
	    mib(st->used_bytes), st->free_pages, mib(free_bytes));
	printf("map:          %.1f MiB, %.1f MiB free beyond the pages in use\n",
	    mib(st->map_size), mib(map_free));
	printf("tasks:        %" PRIu64 "\n", st->ntasks);
	for (int s = 1; s < CPL_NSTATES; s++)
		if (st->counts[s])
			printf("  %-22s%" PRIu64 "\n", cpl_state_name(s),
			    st->counts[s]);
	printf("events:       %" PRIu64 " (%" PRIu64 " archived)\n",
	    st->nevents, st->archived_events);
	printf("transactions: %" PRIu64 "; readers now %u\n", st->txnid,
	    st->readers);
	printf("\n%-12s %12s %10s %6s %10s\n", "table", "entries", "pages",
	    "depth", "MiB");
	for (uint32_t i = 0; i < st->ntables; i++) {
		const cpl_db_table *tb = &st->tables[i];
		printf("%-12s %12" PRIu64 " %10" PRIu64 " %6u %10.1f\n",
		    tb->name, tb->entries, tb->pages, tb->depth,
		    mib(tb->pages * st->page_size));
	}
	printf("\n(read in %.3f s)\n", dt);
	free(st);
	return 0;
}

static int
db_compact(const char *db)
{
	long pid = cli_broker_pid(db);
	char why[1024];
	uint64_t before = 0, after = 0;
	if (pid > 0) {
		cli_err("the broker of %s runs (pid %ld): stop it first with "
		    "copal server stop (nothing was changed)", db, pid);
		return EXIT_ERR;
	}
	double t0 = now_s();
	int rv = cpl_db_compact(db, &before, &after, why, sizeof(why));
	if (rv == CPL_ELOCKED) {
		cli_err("%s is open in another process (a broker?): stop it "
		    "first with copal server stop (nothing was changed)", db);
		return EXIT_ERR;
	}
	if (rv != 0) {
		cli_err("compact failed: %s (data.mdb was not changed)",
		    why[0] ? why : cpl_strerror(rv));
		return rv == CPL_ENOTFOUND ? EXIT_NOTFOUND : EXIT_ERR;
	}
	printf("compacted %s: %.1f MiB -> %.1f MiB (%" PRIu64 " -> %" PRIu64
	    " bytes) in %.2f s\n", db, mib(before), mib(after), before, after,
	    now_s() - t0);
	return 0;
}

// cpl_store_check on the database: every index and counter rebuilt from
// the records and compared. It opens the store itself (the broker must
// be stopped: one process opens it for writing).
static int
db_check(const char *db)
{
	cpl_store *s = NULL;
	cpl_store_opts so;
	char rep[8192];
	long pid = cli_broker_pid(db);
	if (pid > 0) {
		cli_err("the broker of %s runs (pid %ld): stop it first with "
		    "copal server stop", db, pid);
		return EXIT_ERR;
	}
	memset(&so, 0, sizeof(so));
	int rv = cpl_store_open(db, &so, &s);
	if (rv != 0) {
		cli_err("%s: %s", db, rv == CPL_ELOCKED ? "open in another "
		    "process (a broker?)" : cpl_strerror(rv));
		return EXIT_ERR;
	}
	double t0 = now_s();
	rv = cpl_store_check(s, rep, sizeof(rep));
	double dt = now_s() - t0;
	cpl_store_close(s);
	if (rv != 0) {
		cli_err("check failed: %s\n%s", cpl_strerror(rv), rep);
		return EXIT_ERR;
	}
	printf("check: every index and counter agrees with the records "
	    "(%.2f s)\n", dt);
	return 0;
}

int
cmd_db(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	char db[PATH_MAX];
	db_archive_args aa;
	bool json = false;
	int k, rc;
	memset(&aa, 0, sizeof(aa));
	aa.chunk = 10000;
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		switch (k) {
		case KEY_DB_JSON:
			json = true;
			break;
		case KEY_DB_BEFORE:
			aa.before = arg;
			break;
		case KEY_DB_WF:
			aa.workflow = arg;
			break;
		case 'o':
			aa.out = arg;
			break;
		case KEY_DB_CHUNK:
			if ((rc = cli_u32("--chunk", arg, &aa.chunk)) != 0)
				goto out;
			if (aa.chunk == 0 || aa.chunk > 10000) {
				rc = cli_usage("--chunk: 1..10000 tasks");
				goto out;
			}
			break;
		default:
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (p.nargs != 1) {
		rc = cli_usage("db what? stats, compact or archive");
		goto out;
	}
	const char *what = p.argv[p.first];
	bool arch = strcmp(what, "archive") == 0;
	if (!arch && (aa.before || aa.workflow || aa.out)) {
		rc = cli_usage("--before, --wf and --out are archive's options");
		goto out;
	}
	if (json && strcmp(what, "stats") != 0) {
		rc = cli_usage("--json is stats' option");
		goto out;
	}
	if (strcmp(what, "stats") && strcmp(what, "compact") &&
	    strcmp(what, "check") && !arch) {
		rc = cli_usage("db %s? say stats, compact, check or archive",
		    what);
		goto out;
	}
	if (arch && aa.before == NULL) {
		rc = cli_usage("archive: --before DATE is required");
		goto out;
	}
	// archive talks to the broker only: a user with a credential and
	// $COPAL_BROKER_URL (no database directory here) may run it
	const char *url = getenv("COPAL_BROKER_URL");
	if (arch && url && *url)
		snprintf(db, sizeof(db), "%s", url);
	else if ((rc = cli_db_find(db, sizeof(db))) != 0)
		goto out;
	if (strcmp(what, "stats") == 0)
		rc = db_stats(db, json);
	else if (strcmp(what, "compact") == 0)
		rc = db_compact(db);
	else if (strcmp(what, "check") == 0)
		rc = db_check(db);
	else
		rc = db_archive(db, &aa);
out:
	cli_parse_free(&p);
	return rc;
}
