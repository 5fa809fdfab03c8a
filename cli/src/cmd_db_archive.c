// copal db archive --before DATE [--wf W] [-o FILE]: finished tasks and
// their events leave the store for a gzip'd JSON-lines file.
//
// Through the broker (it runs, or is started as for any verb): a page of
// tasks that may go is picked (ArchivePickRequest, a read), written to
// the file as one gzip member, made durable (fdatasync), and only then
// removed (ArchiveRequest: exactly those tasks, each checked again, all or
// nothing, one write transaction of at most --chunk tasks). A removal
// refused leaves the file cut back to where the page began. A crash
// between the fsync and the removal's commit leaves tasks in both the
// file and the store: nothing is lost, and a later run archives them
// again (to another file). Every member of the file is complete for a
// page whose removal was asked; concatenated gzip members are one stream
// to zcat and gzip -d.
//
// One line per task: {"task": <copal ls --json's object>, "events":
// [<copal export's JSON-lines objects>]}, the same encoders.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "cli.h"
#include "db_archive.h"
#include "events.h"

#define RETRIES 3

struct arch {
	cpl_client *c;
	const char *path;
	int fd;
	uint64_t off;        // end of the last member whose removal committed
	uint64_t before_us;
	const char *wf;
	uint32_t chunk;
	uint64_t tasks, events, members;
	bool dir_synced;
};

// The page's lines into a memory buffer.
static int
encode_page(struct arch *x, const Copal__ArchivePickReply *pr, char **buf,
    size_t *len, uint64_t *last_seqs)
{
	uuid_map *m = uuid_map_new();
	uint64_t *par = NULL;
	size_t npar = 0, cap = 0;
	int rc;
	for (size_t i = 0; i < pr->n_tasks; i++) {
		const Copal__Task *t = pr->tasks[i];
		uuid_map_put(m, t->id, t->uuid);
		for (size_t j = 0; t->spec && j < t->spec->n_parent_ids; j++) {
			if (npar == cap) {
				cap = cap ? cap * 2 : 64;
				par = xrealloc(par, cap * sizeof(*par));
			}
			par[npar++] = t->spec->parent_ids[j];
		}
	}
	if ((rc = uuid_map_fetch(m, x->c, par, npar)) != 0) {
		free(par);
		uuid_map_free(m);
		return rc;
	}
	free(par);
	FILE *mf = open_memstream(buf, len);
	if (mf == NULL)
		cli_oom();
	size_t e = 0;
	for (size_t i = 0; i < pr->n_tasks; i++) {
		const Copal__Task *t = pr->tasks[i];
		json_t *o = task_json(t, m);
		fputs("{\"task\":", mf);
		json_dumpf(o, mf, JSON_COMPACT);
		json_decref(o);
		fputs(",\"events\":[", mf);
		last_seqs[i] = 0;
		for (bool first = true; e < pr->n_events &&
		     pr->events[e]->task_id == t->id; e++, first = false) {
			if (!first)
				fputc(',', mf);
			export_event_json(mf, pr->events[e]);
			last_seqs[i] = pr->events[e]->seq;
		}
		fputs("]}\n", mf);
	}
	if (fclose(mf) != 0)
		cli_oom();
	if (e != pr->n_events) {
		cli_err("archive: the broker's page has events out of task "
		    "order (nothing was removed)");
		free(*buf);
		*buf = NULL;
		uuid_map_free(m);
		return EXIT_ERR;
	}
	uuid_map_free(m);
	return 0;
}

// buf as one gzip member at x->off, durable. 0, or an exit code (the
// file is cut back to x->off).
static int
write_member(struct arch *x, const char *buf, size_t len, uint64_t *end)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8,
	        Z_DEFAULT_STRATEGY) != Z_OK)
		cli_oom();
	uLong bound = deflateBound(&zs, (uLong)len);
	unsigned char *out = xmalloc(bound);
	zs.next_in = (unsigned char *)buf;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	int z = deflate(&zs, Z_FINISH);
	size_t n = bound - zs.avail_out;
	deflateEnd(&zs);
	if (z != Z_STREAM_END) {
		free(out);
		cli_err("archive: compression failed (nothing was removed)");
		return EXIT_ERR;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t w = pwrite(x->fd, out + done, n - done,
		    (off_t)(x->off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		done += (size_t)w;
	}
	if (fdatasync(x->fd) != 0)
		goto fail;
	if (!x->dir_synced) {
		// the file's name, once: a new file is durable with its entry
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", x->path);
		int dfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
		x->dir_synced = true;
	}
	free(out);
	*end = x->off + n;
	return 0;
fail:
	cli_err("archive: writing %s: %s (nothing more was removed)", x->path,
	    strerror(errno ? errno : EIO));
	free(out);
	(void)ftruncate(x->fd, (off_t)x->off);
	(void)fdatasync(x->fd);
	return EXIT_ERR;
}

// One page from after_id: picked, written, removed. *next, *more,
// *deferred for the walk; *removed: tasks removed.
static int
archive_page(struct arch *x, uint64_t after, uint64_t *next, bool *more,
    uint64_t *deferred, uint64_t *removed)
{
	Copal__ArchivePickRequest pk = COPAL__ARCHIVE_PICK_REQUEST__INIT;
	Copal__Reply *rep = NULL, *rrep = NULL;
	int rc;
	*removed = 0;
	for (int attempt = 0;; attempt++) {
		pk.before_us = x->before_us;
		pk.workflow = (char *)(x->wf ? x->wf : "");
		pk.after_id = after;
		pk.limit = x->chunk;
		if ((rc = cli_call_rc(x->c, cpl_call_archive_pick(x->c, &pk,
		         &rep))) != 0)
			return rc;
		const Copal__ArchivePickReply *pr = rep->archive_pick;
		*next = pr->last_id;
		*more = pr->more;
		*deferred = pr->deferred;
		if (pr->n_tasks == 0) {
			copal__reply__free_unpacked(rep, NULL);
			return 0;
		}
		char *buf = NULL;
		size_t len = 0;
		uint64_t *seqs = xmalloc(pr->n_tasks * sizeof(*seqs));
		uint64_t *ids = xmalloc(pr->n_tasks * sizeof(*ids));
		for (size_t i = 0; i < pr->n_tasks; i++)
			ids[i] = pr->tasks[i]->id;
		uint64_t end = 0;
		if ((rc = encode_page(x, pr, &buf, &len, seqs)) == 0)
			rc = write_member(x, buf, len, &end);
		free(buf);
		if (rc) {
			free(seqs);
			free(ids);
			copal__reply__free_unpacked(rep, NULL);
			return rc;
		}
		Copal__ArchiveRequest ar = COPAL__ARCHIVE_REQUEST__INIT;
		ar.before_us = x->before_us;
		ar.workflow = pk.workflow;
		ar.ids = ids;
		ar.n_ids = pr->n_tasks;
		ar.last_seqs = seqs;
		ar.n_last_seqs = pr->n_tasks;
		int rv = cpl_call_archive(x->c, &ar, &rrep);
		size_t ntasks = pr->n_tasks, nev = pr->n_events;
		copal__reply__free_unpacked(rep, NULL);
		rep = NULL;
		free(ids);
		free(seqs);
		if (rv == 0) {
			x->off = end;
			x->tasks += rrep->archive->removed;
			x->events += rrep->archive->removed_events;
			x->members++;
			*removed = rrep->archive->removed;
			if (rrep->archive->removed != ntasks ||
			    rrep->archive->removed_events != nev)
				cli_warn("archive: the broker removed %" PRIu64
				    " tasks and %" PRIu64 " events, the file "
				    "has %zu and %zu", rrep->archive->removed,
				    rrep->archive->removed_events, ntasks, nev);
			copal__reply__free_unpacked(rrep, NULL);
			return 0;
		}
		// No answer (a timeout, a lost connection, an unreadable
		// reply): the broker may have committed the removal, so the
		// member stays, already fsync'd, and nothing more is asked. A
		// task in both the file and the store is harmless (a later run
		// archives it again, into another file); one in neither would
		// be lost.
		if (!cpl_client_err_remote(x->c)) {
			x->off = end;
			x->members++;
			cli_warn("archive: no answer to the removal of %zu "
			    "tasks (%s); they are in %s and may still be in "
			    "the store too: run copal db archive again to "
			    "move what is left", ntasks,
			    cpl_client_errmsg(x->c), x->path);
			return cli_call_rc(x->c, rv);
		}
		// refused (nothing removed): the member goes, the page is
		// read again (a task changed meanwhile), a few times
		(void)ftruncate(x->fd, (off_t)x->off);
		(void)fdatasync(x->fd);
		if (rv != CPL_ESTALE || attempt + 1 >= RETRIES)
			return cli_call_rc(x->c, rv);
	}
}

int
db_archive(const char *db, const db_archive_args *a)
{
	struct arch x;
	char name[64];
	uint64_t t;
	int rc = 0;
	memset(&x, 0, sizeof(x));
	x.fd = -1;
	x.wf = a->workflow && *a->workflow ? a->workflow : NULL;
	x.chunk = a->chunk;
	bool now = strcmp(a->before, "now") == 0;
	// everything that can be refused is, before a connection is made
	if (!now && ev_parse_time(a->before, UINT64_C(4102444800000000),
	        &t) != 0)
		return cli_usage("--before %s: not a time (say "
		    "2026-11-25T15:00:00Z, 2026-11-25, -30d, epoch seconds "
		    "or now)", a->before);
	if (a->out) {
		x.path = a->out;
	} else {
		time_t s = time(NULL);
		struct tm tm;
		gmtime_r(&s, &tm);
		strftime(name, sizeof(name), "archive-%Y%m%dT%H%M%SZ.jsonl.gz",
		    &tm);
		x.path = name;
	}
	x.fd = open(x.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (x.fd < 0) {
		cli_err("archive: cannot create %s: %s%s (nothing was "
		    "removed)", x.path, strerror(errno), errno == EEXIST ?
		    " (an archive is never overwritten)" : "");
		return EXIT_ERR;
	}
	if ((rc = cli_connect(&x.c)) != 0)
		goto out;
	uint64_t bnow;
	if ((rc = ev_broker_now(x.c, &bnow)) != 0)
		goto out;
	if (now)
		x.before_us = bnow;
	else if (ev_parse_time(a->before, bnow, &x.before_us) != 0) {
		rc = cli_usage("--before %s: not a time", a->before);
		goto out;
	}
	// Passes over the store: a page holds a task only with all its
	// children, so a parent whose children were in a later page waits
	// for the next pass (which finds them gone).
	for (int pass = 0;; pass++) {
		uint64_t after = 0, deferred = 0, got = 0;
		bool more = true;
		while (more) {
			uint64_t next = 0, d = 0, r = 0;
			if ((rc = archive_page(&x, after, &next, &more, &d,
			         &r)) != 0)
				goto out;
			deferred += d;
			got += r;
			if (next <= after && more) {
				cli_err("archive: the broker's paging went "
				    "nowhere (after %" PRIu64 ")", after);
				rc = EXIT_ERR;
				goto out;
			}
			after = next;
		}
		if (deferred == 0 || got == 0)
			break;
	}
out:
	if (x.fd >= 0) {
		// a failure after some pages keeps what they removed, and a
		// member whose removal went unanswered (archive_page)
		if (x.members == 0) {
			close(x.fd);
			unlink(x.path);
		} else if (close(x.fd) != 0 && rc == 0) {
			cli_err("archive: %s: %s", x.path, strerror(errno));
			rc = EXIT_ERR;
		}
	}
	if (x.tasks == 0 && rc == 0)
		printf("nothing to archive: no finished task%s%s with its last "
		    "event before %s\n", x.wf ? " of workflow " : "",
		    x.wf ? x.wf : "", a->before);
	else if (x.tasks)
		printf("archived %" PRIu64 " tasks and %" PRIu64 " events of %s "
		    "to %s (%" PRIu64 " bytes, %" PRIu64 " gzip members)%s\n",
		    x.tasks, x.events, db, x.path, x.off, x.members,
		    rc ? "; then stopped on the error above" : "");
	cpl_client_close(x.c);
	return rc;
}
