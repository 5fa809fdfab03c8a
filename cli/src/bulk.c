// copal job --from-file FILE.jsonl: one task per line, streamed.
//
//   {"name": "a", "workflow": "w", "app": "sim", "args": "-x 1", "key": "a"}
//   {"name": "b", "app": "sim", "parent_keys": ["a"], "env": {"X": "1"}}
//   {"name": "c", "app": "sim", "parents": ["0796bd50", 42]}
//
// Field names are the long options' (dashes or underscores). "key" names a
// task so that later lines can list it in "parent_keys"; "parents" lists
// existing tasks by uuid prefix or integer id. Lines are sent in batches
// (one CreateTasksRequest each, all or nothing): a parent in the same batch
// travels as a local dependency, one in an earlier batch as its id (a
// batch's tasks get consecutive ids from first_id). A bad line stops the
// load with FILE:LINE: reason; nothing of its batch is created. After a
// failure the loader says what it knows: the lines the broker acknowledged,
// those of a batch it sent without an answer (and how to look for them),
// and from which line on nothing was added.
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

// ------------------------------------------------------------ string map

typedef struct smap {
	const char **keys;  // in `a`
	uint64_t *vals;
	size_t cap, n;
	arena *a;
} smap;

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

static void
smap_init(smap *m)
{
	memset(m, 0, sizeof(*m));
	m->a = arena_new();
}

static void
smap_free(smap *m)
{
	free(m->keys);
	free(m->vals);
	arena_free(m->a);
}

static size_t
smap_slot(const smap *m, const char *k)
{
	size_t i = (size_t)hash(k) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], k) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static bool
smap_get(const smap *m, const char *k, uint64_t *v)
{
	if (m->cap == 0)
		return false;
	size_t i = smap_slot(m, k);
	if (m->keys[i] == NULL)
		return false;
	*v = m->vals[i];
	return true;
}

static void
smap_put(smap *m, const char *k, uint64_t v)
{
	if ((m->n + 1) * 2 > m->cap) {
		smap old = *m;
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->keys = xcalloc(m->cap, sizeof(char *));
		m->vals = xcalloc(m->cap, sizeof(uint64_t));
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i]) {
				size_t j = smap_slot(m, old.keys[i]);
				m->keys[j] = old.keys[i];
				m->vals[j] = old.vals[i];
			}
		free(old.keys);
		free(old.vals);
	}
	size_t i = smap_slot(m, k);
	if (m->keys[i] == NULL) {
		m->keys[i] = arena_strdup(m->a, k);
		if (m->keys[i] == NULL) {
			cli_err("out of memory");
			exit(EXIT_ERR);
		}
		m->n++;
	}
	m->vals[i] = v;
}

// ------------------------------------------------------------ loading
//
// Two threads: this one parses lines into one batch while a sender thread
// creates the previous batch with its own connection. A parent named by a
// key of an earlier batch may still be in flight when its child is parsed,
// so the child carries a placeholder (SEQ_REF | task number in the file)
// that the sender, which creates batches in order, replaces by the id.

#define SEQ_REF (1ull << 63)

enum { B_FREE, B_FILLED, B_SENDING };

struct batch {
	arena *a;
	Copal__TaskSpec **specs;
	uint64_t *lines;
	uint32_t *lpc, *lpp;
	size_t n, nl, capl;
	uint64_t seq0;   // task number of specs[0]
	int state;
};

struct load {
	cpl_client *c;   // the parser's: apps, uuid prefixes
	cpl_client *sc;  // the sender's
	const char *path;
	uint32_t batch;
	Copal__Reply *apps;
	smap keys;       // key -> task number in the file (0-based)
	smap prefixes;   // uuid prefix -> id
	uuid_map *known; // integer parent ids seen to exist
	struct batch b[2];
	int cur;         // the batch being filled
	uint64_t next_seq;
	// shared with the sender, under mu
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;       // no more batches
	int send_rc;     // first sender error
	uint64_t created;
	uint64_t acked_last;   // last line of the acknowledged batches
	// a batch sent without an answer: its lines, and what finds its tasks
	uint64_t unsure_first, unsure_last;
	char *unsure_wf;       // the workflow of all its tasks, or NULL
	char *unsure_names[2]; // the tasks of its first and last lines
	// the sender's own
	uint64_t *first_ids;
	size_t nbatches;
};

static int
line_err(const struct load *l, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
line_err(const struct load *l, uint64_t line, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "%s:%" PRIu64 ": ", l->path, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERR;
}

static void
push_local(struct batch *b, uint32_t child, uint32_t parent)
{
	if (b->nl == b->capl) {
		b->capl = b->capl ? b->capl * 2 : 1024;
		b->lpc = xrealloc(b->lpc, b->capl * sizeof(uint32_t));
		b->lpp = xrealloc(b->lpp, b->capl * sizeof(uint32_t));
	}
	b->lpc[b->nl] = child;
	b->lpp[b->nl] = parent;
	b->nl++;
}

// The line of a batch entry named in a broker error ("task 12 (name): ...").
static uint64_t
error_line(const struct batch *b, const char *err)
{
	unsigned long idx;
	if (err && sscanf(err, "task %lu (", &idx) == 1 && idx < b->n)
		return b->lines[idx];
	return 0;
}

// Sender: creates one batch. Returns an exit code.
static int
send_batch(struct load *l, struct batch *b)
{
	Copal__CreateTasksRequest cr = COPAL__CREATE_TASKS_REQUEST__INIT;
	Copal__Reply *r = NULL;
	// placeholders of parents in earlier batches become ids
	for (size_t i = 0; i < b->n; i++) {
		Copal__TaskSpec *sp = b->specs[i];
		for (size_t k = 0; k < sp->n_parent_ids; k++) {
			uint64_t v = sp->parent_ids[k];
			if (!(v & SEQ_REF))
				continue;
			v &= ~SEQ_REF;
			sp->parent_ids[k] = l->first_ids[v / l->batch] + v % l->batch;
		}
	}
	cr.tasks = b->specs;
	cr.n_tasks = b->n;
	cr.local_parent_child = b->lpc;
	cr.local_parent_parent = b->lpp;
	cr.n_local_parent_child = cr.n_local_parent_parent = b->nl;
	int rv = cpl_call_create_tasks(l->sc, &cr, &r);
	if (rv && !cpl_client_err_remote(l->sc)) {
		// sent, maybe committed: only the broker knows (bulk_report)
		cli_err("no answer from the broker: %s", cpl_strerror(rv));
		const char *wf = b->specs[0]->workflow;
		for (size_t i = 1; i < b->n && wf; i++)
			if (strcmp(b->specs[i]->workflow, wf) != 0)
				wf = NULL;
		pthread_mutex_lock(&l->mu);
		l->unsure_first = b->lines[0];
		l->unsure_last = b->lines[b->n - 1];
		l->unsure_wf = wf ? xstrdup(wf) : NULL;
		l->unsure_names[0] = xstrdup(b->specs[0]->name);
		l->unsure_names[1] = xstrdup(b->specs[b->n - 1]->name);
		pthread_mutex_unlock(&l->mu);
		return EXIT_ERR;
	}
	if (rv) {
		const char *err = cpl_client_errmsg(l->sc);
		uint64_t line = error_line(b, err);
		if (line)
			line_err(l, line, "%s", err);
		else
			cli_err("%s: lines %" PRIu64 "-%" PRIu64 ": %s", l->path,
			    b->lines[0], b->lines[b->n - 1], err);
		return cli_exit_for(rv);
	}
	l->first_ids = xrealloc(l->first_ids,
	    (l->nbatches + 1) * sizeof(uint64_t));
	l->first_ids[l->nbatches++] = r->create->first_id;
	copal__reply__free_unpacked(r, NULL);
	return 0;
}

// A word for a shell command line: as it is when it is plain, else quoted.
static void
shell_word(FILE *fp, const char *s)
{
	if (s[0] && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
	    "VWXYZ0123456789._@+-/=:,") == strlen(s)) {
		fputs(s, fp);
		return;
	}
	fputc('\'', fp);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", fp);
		else
			fputc(*s, fp);
	}
	fputc('\'', fp);
}

// What a failed load added, as far as this side knows: the lines the
// broker acknowledged, the lines of a batch that got no answer (with the
// command that shows whether they are there), and from which line on
// nothing was. Lines are counted in the file (blank ones included).
static void
bulk_report(const struct load *l, uint64_t lines_read, bool read_all)
{
	fflush(stdout);
	if (l->created)
		fprintf(stderr, "%s: lines 1-%" PRIu64 " were added (%" PRIu64
		    " tasks, acknowledged by the broker)\n", l->path,
		    l->acked_last, l->created);
	else
		fprintf(stderr, "%s: no line was acknowledged by the broker\n",
		    l->path);
	uint64_t next = l->acked_last + 1;
	if (l->unsure_first) {
		fprintf(stderr, "%s: lines %" PRIu64 "-%" PRIu64 " may or may "
		    "not have been added (sent, but the broker did not answer); "
		    "look for the tasks of lines %" PRIu64 " and %" PRIu64
		    " with:\n", l->path, l->unsure_first, l->unsure_last,
		    l->unsure_first, l->unsure_last);
		for (int i = 0; i < 2; i++) {
			if (i && strcmp(l->unsure_names[0], l->unsure_names[1]) == 0)
				break;
			fputs("  copal ls", stderr);
			if (l->unsure_wf && l->unsure_wf[0]) {
				fputs(" --wf ", stderr);
				shell_word(stderr, l->unsure_wf);
			}
			fputs(" --name ", stderr);
			shell_word(stderr, l->unsure_names[i]);
			fputc('\n', stderr);
		}
		next = l->unsure_last + 1;
	}
	if (next <= lines_read || !read_all)
		fprintf(stderr, "%s: nothing from line %" PRIu64 " on was "
		    "added\n", l->path, next);
}

static void *
sender(void *arg)
{
	struct load *l = arg;
	int i = 0;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (l->b[i].state != B_FILLED && !l->done)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->b[i].state != B_FILLED)
			break; // done and nothing left
		struct batch *b = &l->b[i];
		b->state = B_SENDING;
		pthread_mutex_unlock(&l->mu);
		int rc = send_batch(l, b);
		pthread_mutex_lock(&l->mu);
		if (rc == 0) {
			l->created += b->n;
			l->acked_last = b->lines[b->n - 1];
			if (isatty(STDERR_FILENO))
				fprintf(stderr, "\r%" PRIu64 " tasks...", l->created);
		} else if (l->send_rc == 0) {
			l->send_rc = rc;
		}
		b->state = B_FREE;
		pthread_cond_broadcast(&l->cv);
		if (rc)
			break;
		i ^= 1;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

// Parser: hands the current batch to the sender and waits for the other
// one to be free. Returns the sender's error, if any.
static int
hand_over(struct load *l)
{
	int rc;
	pthread_mutex_lock(&l->mu);
	l->b[l->cur].state = B_FILLED;
	pthread_cond_broadcast(&l->cv);
	l->cur ^= 1;
	struct batch *nb = &l->b[l->cur];
	while (nb->state != B_FREE && l->send_rc == 0)
		pthread_cond_wait(&l->cv, &l->mu);
	rc = l->send_rc;
	pthread_mutex_unlock(&l->mu);
	if (rc == 0) {
		arena_reset(nb->a);
		nb->n = nb->nl = 0;
		nb->seq0 = l->next_seq;
	}
	return rc;
}

int
bulk_parse_line(arena *a, const char *text, size_t len, spec_buf **out,
    void **obj, char *err, size_t errlen)
{
	static const char *const skip[] = { "key", "parent_keys", NULL };
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	*obj = o;
	if (o == NULL) {
		snprintf(err, errlen, "not JSON: %s (column %d)", je.text,
		    je.column);
		cpl_utf8_clean(err);
		return EXIT_ERR;
	}
	spec_buf *b = arena_alloc(a, sizeof(*b));
	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return EXIT_ERR;
	}
	spec_init(b);
	if (spec_from_json(b, a, o, skip, err, errlen) != 0 ||
	    cpl_spec_check(&b->sp, err, errlen) != 0) {
		// the reason quotes the line, cut to fit err: never half a
		// character (fuzz/corpus/jsonl_fuzz/regress-cut-key)
		cpl_utf8_clean(err);
		return EXIT_ERR;
	}
	*out = b;
	return 0;
}

static int
add_line(struct load *l, const char *text, size_t len, uint64_t line)
{
	struct batch *bt = &l->b[l->cur];
	char err[256];
	void *obj;
	spec_buf *b = NULL;
	int rc = EXIT_ERR;
	if (bulk_parse_line(bt->a, text, len, &b, &obj, err, sizeof(err)) != 0)
		line_err(l, line, "%s", err);
	json_t *o = obj;
	if (b == NULL)
		goto out;
	if (b->sp.application && b->sp.application[0] &&
	    apps_find(l->apps, b->sp.application) == NULL) {
		line_err(l, line, "no app named %s (see copal ls apps)",
		    b->sp.application);
		rc = EXIT_NOTFOUND;
		goto out;
	}
	uint32_t idx = (uint32_t)bt->n;
	uint64_t seq = l->next_seq;
	json_t *pk = json_object_get(o, "parent_keys");
	if (pk && !json_is_null(pk)) {
		size_t i;
		json_t *e;
		if (!json_is_array(pk)) {
			line_err(l, line, "parent_keys: must be a list of keys");
			goto out;
		}
		json_array_foreach(pk, i, e) {
			uint64_t ps;
			if (!json_is_string(e)) {
				line_err(l, line, "parent_keys: must be a list "
				    "of keys");
				goto out;
			}
			if (!smap_get(&l->keys, json_string_value(e), &ps)) {
				line_err(l, line, "parent key \"%s\" is not the "
				    "key of an earlier line", json_string_value(e));
				goto out;
			}
			if (ps >= bt->seq0)
				push_local(bt, idx, (uint32_t)(ps - bt->seq0));
			else
				spec_add_parent(b, bt->a, SEQ_REF | ps);
		}
	}
	for (size_t i = 0; i < b->nparent_refs; i++) {
		uint64_t id;
		if (!smap_get(&l->prefixes, b->parent_refs[i], &id)) {
			if ((rc = resolve_prefix(l->c, b->parent_refs[i], &id,
			         NULL)) != 0) {
				line_err(l, line, "parent %s: see above",
				    b->parent_refs[i]);
				goto out;
			}
			smap_put(&l->prefixes, b->parent_refs[i], id);
		}
		spec_add_parent(b, bt->a, id);
	}
	// parents given as integer ids: check that they exist (once each)
	for (size_t i = 0; i < b->sp.n_parent_ids; i++) {
		uint64_t id = b->sp.parent_ids[i];
		if ((id & SEQ_REF) || uuid_map_get(l->known, id))
			continue;
		if ((rc = uuid_map_fetch(l->known, l->c, &id, 1)) != 0)
			goto out;
		if (uuid_map_get(l->known, id) == NULL) {
			line_err(l, line, "parent id %" PRIu64 " does not exist", id);
			rc = EXIT_NOTFOUND;
			goto out;
		}
	}
	json_t *key = json_object_get(o, "key");
	if (key && !json_is_null(key)) {
		uint64_t old;
		if (!json_is_string(key)) {
			line_err(l, line, "key: must be a string");
			goto out;
		}
		if (smap_get(&l->keys, json_string_value(key), &old)) {
			line_err(l, line, "key \"%s\" is used twice",
			    json_string_value(key));
			goto out;
		}
		smap_put(&l->keys, json_string_value(key), seq);
	}
	bt->specs[bt->n] = &b->sp;
	bt->lines[bt->n] = line;
	bt->n++;
	l->next_seq++;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static bool
blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

static int
open_sender_client(cpl_client **out)
{
	// the same database and broker as the parser's client; the broker
	// is running by now, so this does not start anything
	return cli_connect(out);
}

int
bulk_create(cpl_client *c, const char *path, uint32_t batch)
{
	struct load l;
	FILE *fp;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t line = 0;
	pthread_t th;
	bool started = false, read_all = false;
	int rc = 0;

	fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (fp == NULL) {
		cli_err("%s: %s", path, strerror(errno));
		return errno == ENOENT ? EXIT_NOTFOUND : EXIT_ERR;
	}
	memset(&l, 0, sizeof(l));
	l.c = c;
	l.path = fp == stdin ? "(stdin)" : path;
	l.batch = batch;
	smap_init(&l.keys);
	smap_init(&l.prefixes);
	l.known = uuid_map_new();
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cv, NULL);
	for (int i = 0; i < 2; i++) {
		l.b[i].a = arena_new();
		l.b[i].specs = xcalloc(batch, sizeof(*l.b[i].specs));
		l.b[i].lines = xcalloc(batch, sizeof(*l.b[i].lines));
		if (l.b[i].a == NULL) {
			cli_err("out of memory");
			rc = EXIT_ERR;
			goto out;
		}
	}
	if ((rc = apps_fetch(c, &l.apps)) != 0 ||
	    (rc = open_sender_client(&l.sc)) != 0)
		goto out;
	if (pthread_create(&th, NULL, sender, &l) != 0) {
		cli_err("cannot start a thread");
		rc = EXIT_ERR;
		goto out;
	}
	started = true;
	double t0 = now_s();
	while ((len = getline(&buf, &cap, fp)) > 0) {
		line++;
		if (blank(buf, (size_t)len))
			continue;
		if ((rc = add_line(&l, buf, (size_t)len, line)) != 0)
			break;
		if (l.b[l.cur].n == batch && (rc = hand_over(&l)) != 0)
			break;
	}
	if (rc == 0 && ferror(fp)) {
		cli_err("%s: %s", l.path, strerror(errno));
		rc = EXIT_ERR;
	}
	read_all = rc == 0;
	if (rc == 0 && l.b[l.cur].n)
		rc = hand_over(&l);
	// let the sender finish what it has, then stop it
	pthread_mutex_lock(&l.mu);
	l.done = true;
	pthread_cond_broadcast(&l.cv);
	pthread_mutex_unlock(&l.mu);
	pthread_join(th, NULL);
	started = false;
	if (rc == 0)
		rc = l.send_rc;
	if (isatty(STDERR_FILENO) && l.created)
		fputc('\n', stderr);
	double dt = now_s() - t0;
	if (rc == 0)
		printf("Added %" PRIu64 " tasks from %s in %.2f s (%.0f tasks/s)\n",
		    l.created, l.path, dt, dt > 0 ? (double)l.created / dt : 0.0);
	else
		bulk_report(&l, line, read_all);
out:
	if (started) {
		pthread_mutex_lock(&l.mu);
		l.done = true;
		pthread_cond_broadcast(&l.cv);
		pthread_mutex_unlock(&l.mu);
		pthread_join(th, NULL);
	}
	cpl_client_close(l.sc);
	if (l.apps)
		copal__reply__free_unpacked(l.apps, NULL);
	smap_free(&l.keys);
	smap_free(&l.prefixes);
	uuid_map_free(l.known);
	for (int i = 0; i < 2; i++) {
		arena_free(l.b[i].a);
		free(l.b[i].specs);
		free(l.b[i].lines);
		free(l.b[i].lpc);
		free(l.b[i].lpp);
	}
	free(l.first_ids);
	free(l.unsure_wf);
	free(l.unsure_names[0]);
	free(l.unsure_names[1]);
	free(buf);
	pthread_mutex_destroy(&l.mu);
	pthread_cond_destroy(&l.cv);
	if (fp != stdin)
		fclose(fp);
	return rc;
}
