// Listing: copal ls [jobs|apps|wf], copal history.
//
// Tasks come from the broker a page (at most 10,000) at a time, in id order,
// and are printed as they come.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "copal/suggest.h"

#define PAGE 10000u

enum {
	KEY_HISTORY = 440, KEY_BY_STATES = 441, KEY_TREE = 442,
	KEY_VERBOSE = 'v', KEY_LIMIT = 'n',
};

const cli_opt ls_opts[] = {
	{ "history", KEY_HISTORY, OPT_NOARG, NULL,
	    "show each task's state changes" },
	{ "by-states", KEY_BY_STATES, OPT_NOARG, NULL,
	    "count tasks per state" },
	{ "verbose", KEY_VERBOSE, OPT_NOARG, NULL, "show every field" },
	{ "tree", KEY_TREE, OPT_NOARG, NULL,
	    "show tasks under their parents" },
	{ "limit", KEY_LIMIT, OPT_ARG, "N", "at most N tasks (default: all)" },
	{ NULL, 0, 0, NULL, NULL },
};

const cli_opt history_opts[] = { { NULL, 0, 0, NULL, NULL } };

// Calls fn for each page of tasks that f selects, up to limit tasks
// (0: all).
typedef int (*page_fn)(cpl_client *c, const Copal__QueryReply *page,
    void *arg);

static int
for_each_page(cpl_client *c, filt *f, uint64_t limit, page_fn fn, void *arg)
{
	uint64_t after = 0, seen = 0;
	int rc = 0;
	for (;;) {
		Copal__Reply *rep;
		uint32_t n = PAGE;
		if (limit && limit - seen < PAGE)
			n = (uint32_t)(limit - seen);
		if ((rc = cli_call_rc(c, cpl_call_query(c, filt_wire(f), after, n,
		         true, &rep))) != 0)
			return rc;
		const Copal__QueryReply *qr = rep->query;
		bool more = qr->more && qr->n_tasks > 0;
		if (qr->n_tasks)
			after = qr->tasks[qr->n_tasks - 1]->id;
		seen += qr->n_tasks;
		rc = fn(c, qr, arg);
		copal__reply__free_unpacked(rep, NULL);
		if (rc || !more || (limit && seen >= limit))
			return rc;
	}
}

static const char *
state_of(const Copal__Task *t)
{
	const char *s = cpl_state_name(t->status ? (int)t->status->state : 0);
	return s ? s : "?";
}

static const char *
sp_str(const Copal__Task *t, size_t off)
{
	if (t->spec == NULL)
		return "";
	const char *s = *(const char *const *)((const char *)t->spec + off);
	return s ? s : "";
}

#define SPS(t, f) sp_str(t, offsetof(Copal__TaskSpec, f))

// Fetches the uuids of a page's parents for printing.
static int
page_parents(cpl_client *c, const Copal__QueryReply *qr, uuid_map *m)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	for (size_t i = 0; i < qr->n_tasks; i++) {
		const Copal__Task *t = qr->tasks[i];
		uuid_map_put(m, t->id, t->uuid);
		if (t->spec && t->spec->n_parent_ids) {
			ids = xrealloc(ids, (n + t->spec->n_parent_ids) *
			    sizeof(uint64_t));
			memcpy(ids + n, t->spec->parent_ids,
			    t->spec->n_parent_ids * sizeof(uint64_t));
			n += t->spec->n_parent_ids;
		}
	}
	int rc = uuid_map_fetch(m, c, ids, n);
	free(ids);
	return rc;
}

// ------------------------------------------------------------ plain list

struct list {
	out_fmt fmt;
	bool verbose;
	table *t;
	jout *j;
	uuid_map *m;
	const char *db;
	uint64_t n;
};

static const tcol list_cols[] = {
	{ "job_id", COL_STR }, { "name", COL_STR }, { "workflow", COL_STR },
	{ "application", COL_STR }, { "state", COL_STR },
};

static const tcol verbose_cols[] = {
	{ "job_id", COL_STR }, { "name", COL_STR }, { "workflow", COL_STR },
	{ "application", COL_STR }, { "state", COL_STR }, { "id", COL_INT },
	{ "args", COL_STR }, { "description", COL_STR },
	{ "num_nodes", COL_INT }, { "ranks_per_node", COL_INT },
	{ "priority", COL_INT }, { "attempt", COL_INT },
	{ "return_code", COL_INT }, { "created", COL_STR },
	{ "changed", COL_STR },
};

static void
verbose_block(const struct list *l, const Copal__Task *t)
{
	char title[400], tb[40];
	const Copal__TaskStatus *st = t->status;
	int n = snprintf(title, sizeof(title), "Task %s [%s]", SPS(t, name),
	    t->uuid);
	printf("%s%s\n", l->n ? "\n" : "", title);
	for (int i = 0; i < n && i < (int)sizeof(title); i++)
		putchar('-');
	putchar('\n');
	printf("%-32s%" PRIu64 "\n", "id:", t->id);
	printf("%-32s%s\n", "state:", state_of(t));
	if (t->spec)
		spec_print(stdout, t->spec, NULL, l->db, t->uuid, true, l->m);
	if (st) {
		printf("%-32s%" PRIu32 "\n", "attempt:", st->attempt);
		printf("%-32s%" PRId32 "\n", "return_code:", st->return_code);
		printf("%-32s%" PRIu32 "\n", "pending_parents:",
		    st->pending_parents);
		if (st->lease_id)
			printf("%-32s%" PRIu64 "\n", "lease:", st->lease_id);
		fmt_time_us(st->created_us, tb, sizeof(tb));
		printf("%-32s%s\n", "created:", tb);
		fmt_time_us(st->changed_us, tb, sizeof(tb));
		printf("%-32s%s\n", "changed:", tb);
	}
}

static int
list_page(cpl_client *c, const Copal__QueryReply *qr, void *arg)
{
	struct list *l = arg;
	int rc;
	if ((l->verbose || l->j) && (rc = page_parents(c, qr, l->m)) != 0)
		return rc;
	for (size_t i = 0; i < qr->n_tasks; i++) {
		const Copal__Task *t = qr->tasks[i];
		if (l->j) {
			json_item(l->j, task_json(t, l->m));
		} else if (l->verbose && l->fmt == FMT_TABLE) {
			verbose_block(l, t);
		} else {
			char id[24], nn[16], rpn[16], pr[16], at[16], rcd[16];
			char cr[40], ch[40];
			const Copal__TaskStatus *st = t->status;
			const Copal__Resources *r =
			    t->spec ? t->spec->resources : NULL;
			snprintf(id, sizeof(id), "%" PRIu64, t->id);
			snprintf(nn, sizeof(nn), "%u",
			    r && r->num_nodes ? r->num_nodes : 1);
			snprintf(rpn, sizeof(rpn), "%u",
			    r && r->ranks_per_node ? r->ranks_per_node : 1);
			snprintf(pr, sizeof(pr), "%d",
			    t->spec ? t->spec->priority : 0);
			snprintf(at, sizeof(at), "%u", st ? st->attempt : 0);
			snprintf(rcd, sizeof(rcd), "%d", st ? st->return_code : 0);
			fmt_time_iso(st ? st->created_us : 0, cr, sizeof(cr));
			fmt_time_iso(st ? st->changed_us : 0, ch, sizeof(ch));
			const char *cells[] = { t->uuid, SPS(t, name),
				SPS(t, workflow), SPS(t, application), state_of(t),
				id, SPS(t, args), SPS(t, description), nn, rpn,
				pr, at, rcd, cr, ch };
			table_row(l->t, cells);
		}
		l->n++;
	}
	return 0;
}

static int
ls_list(cpl_client *c, filt *f, uint64_t limit, out_fmt fmt, bool verbose)
{
	struct list l;
	memset(&l, 0, sizeof(l));
	l.fmt = fmt;
	l.verbose = verbose;
	l.db = cpl_client_db(c);
	l.m = uuid_map_new();
	if (fmt == FMT_JSON || fmt == FMT_JSONL)
		l.j = json_open(fmt, stdout);
	else if (!(verbose && fmt == FMT_TABLE))
		l.t = verbose ? table_open(fmt, verbose_cols, 15, stdout) :
		                table_open(fmt, list_cols, 5, stdout);
	int rc = for_each_page(c, f, limit, list_page, &l);
	if (rc) {
		table_discard(l.t);
		json_discard(l.j);
	} else {
		table_close(l.t);
		json_close(l.j);
	}
	if (verbose && fmt == FMT_TABLE && l.n == 0)
		printf("no tasks\n");
	uuid_map_free(l.m);
	return rc;
}

// ------------------------------------------------------------ history

struct hist {
	out_fmt fmt;
	jout *j;
	uint64_t n;
};

static void
print_message(const char *msg)
{
	// continuation lines of a message (a traceback) indented under it
	for (const char *p = msg; *p;) {
		size_t len = strcspn(p, "\n");
		if (p != msg)
			printf("\n      ");
		fwrite(p, 1, len, stdout);
		p += len;
		if (*p == '\n')
			p++;
	}
}

static int
hist_page(cpl_client *c, const Copal__QueryReply *qr, void *arg)
{
	struct hist *h = arg;
	int rc;
	for (size_t i = 0; i < qr->n_tasks; i++) {
		const Copal__Task *t = qr->tasks[i];
		Copal__Reply *rep;
		if ((rc = cli_call_rc(c, cpl_call_history(c, t->id, &rep))) != 0) {
			if (rc == EXIT_NOTFOUND)
				continue; // deleted since the query
			return rc;
		}
		const Copal__HistoryReply *hy = rep->history;
		if (h->j) {
			json_t *o = json_object(), *evs = json_array();
			json_object_set_new(o, "job_id", json_string(t->uuid));
			json_object_set_new(o, "name", json_string(SPS(t, name)));
			json_object_set_new(o, "workflow",
			    json_string(SPS(t, workflow)));
			json_object_set_new(o, "state", json_string(state_of(t)));
			for (size_t k = 0; k < hy->n_events; k++) {
				const Copal__Event *e = hy->events[k];
				char tb[40], cb[40];
				fmt_time_iso(ev_time(e), tb, sizeof(tb));
				fmt_time_iso(e->time_us, cb, sizeof(cb));
				json_t *ev = json_pack(
				    "{s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "time",
				    tb, "commit_time", cb,
				    "from", cpl_state_name((int)e->from_state),
				    "to", cpl_state_name((int)e->to_state),
				    "attempt", (int)e->attempt, "return_code",
				    (int)e->return_code, "message", e->message);
				event_skipped_json(ev, e);
				json_object_set_new(ev, "user",
				    json_string(e->user ? e->user : ""));
				if (e->batch_job_id) {
					// the batch job the task's launcher ran in
					json_object_set_new(ev, "batch_job",
					    json_integer((json_int_t)e->batch_job_id));
					json_object_set_new(ev, "scheduler_job_id",
					    json_string(e->scheduler_job_id));
				}
				json_array_append_new(evs, ev);
			}
			json_object_set_new(o, "events", evs);
			json_item(h->j, o);
		} else {
			char title[400];
			int n = snprintf(title, sizeof(title), "Job %s [%s]",
			    SPS(t, name), t->uuid);
			printf("%s%s\n", h->n ? "\n" : "", title);
			for (int k = 0; k < n && k < (int)sizeof(title); k++)
				putchar('-');
			putchar('\n');
			for (size_t k = 0; k < hy->n_events; k++) {
				const Copal__Event *e = hy->events[k];
				char tb[40], tr[64];
				fmt_time_us(ev_time(e), tb, sizeof(tb));
				snprintf(tr, sizeof(tr), "%s -> %s",
				    cpl_state_name((int)e->from_state),
				    cpl_state_name((int)e->to_state));
				if (e->n_skipped) {
					printf("[%s] %-34s", tb, tr);
					event_skipped_print(e);
					if (e->message[0])
						print_message(e->message);
				} else if (e->message[0]) {
					printf("[%s] %-34s", tb, tr);
					print_message(e->message);
				} else {
					printf("[%s] %s", tb, tr);
				}
				if (e->to_state == COPAL__TASK_STATE__STATE_RUNNING &&
				    e->batch_job_id)
					printf("%s(batch job %" PRIu64 "%s%s)",
					    e->message[0] ? " " : "  ",
					    e->batch_job_id,
					    e->scheduler_job_id[0] ? ", scheduler "
					    "job " : "", e->scheduler_job_id);
				// who did it, when a user did
				if (e->user && e->user[0])
					printf("  (by %s)", e->user);
				putchar('\n');
			}
		}
		h->n++;
		copal__reply__free_unpacked(rep, NULL);
	}
	return 0;
}

static int
ls_history(cpl_client *c, filt *f, uint64_t limit, out_fmt fmt,
    uint64_t *count)
{
	struct hist h;
	memset(&h, 0, sizeof(h));
	h.fmt = fmt;
	if (fmt == FMT_CSV)
		return cli_usage("--history prints table, json or jsonl; for CSV "
		    "of the events use copal export --format csv");
	if (fmt == FMT_JSON || fmt == FMT_JSONL)
		h.j = json_open(fmt, stdout);
	int rc = for_each_page(c, f, limit, hist_page, &h);
	if (rc)
		json_discard(h.j);
	else
		json_close(h.j);
	if (count)
		*count = h.n;
	else if (rc == 0 && h.n == 0 && !h.j)
		printf("no tasks\n");
	return rc;
}

// ------------------------------------------------------------ by states

static int
ls_by_states(cpl_client *c, filt *f, out_fmt fmt)
{
	Copal__Reply *rep;
	static const tcol cols[] = { { "state", COL_STR }, { "count", COL_INT } };
	int rc;
	if ((rc = cli_call_rc(c, cpl_call_count(c, f->set ? filt_wire(f) : NULL,
	         &rep))) != 0)
		return rc;
	const Copal__CountReply *r = rep->count;
	table *t = table_open(fmt, cols, 2, stdout);
	for (size_t s = 1; s < r->n_by_state; s++) {
		char n[24];
		if (r->by_state[s] == 0)
			continue;
		snprintf(n, sizeof(n), "%" PRIu64, r->by_state[s]);
		const char *cells[] = { cpl_state_name((int)s), n };
		table_row(t, cells);
	}
	char total[24];
	snprintf(total, sizeof(total), "%" PRIu64, r->total);
	const char *cells[] = { "total", total };
	table_row(t, cells);
	table_close(t);
	copal__reply__free_unpacked(rep, NULL);
	return 0;
}

// ------------------------------------------------------------ tree

struct node {
	uint64_t id;
	char uuid[37];
	char *name;
	int state;
	size_t *kids;
	size_t nkids;
	bool has_parent, shown;
};

struct tree {
	struct node *v;
	size_t n, cap;
	uint64_t **parents;  // per node, its parent ids
	size_t *nparents;
};

static int
tree_page(cpl_client *c, const Copal__QueryReply *qr, void *arg)
{
	struct tree *tr = arg;
	(void)c;
	for (size_t i = 0; i < qr->n_tasks; i++) {
		const Copal__Task *t = qr->tasks[i];
		if (tr->n == tr->cap) {
			tr->cap = tr->cap ? tr->cap * 2 : 256;
			tr->v = xrealloc(tr->v, tr->cap * sizeof(*tr->v));
			tr->parents = xrealloc(tr->parents,
			    tr->cap * sizeof(*tr->parents));
			tr->nparents = xrealloc(tr->nparents,
			    tr->cap * sizeof(*tr->nparents));
		}
		struct node *nd = &tr->v[tr->n];
		memset(nd, 0, sizeof(*nd));
		nd->id = t->id;
		snprintf(nd->uuid, sizeof(nd->uuid), "%s", t->uuid);
		nd->name = xstrdup(SPS(t, name));
		nd->state = t->status ? (int)t->status->state : 0;
		size_t np = t->spec ? t->spec->n_parent_ids : 0;
		tr->nparents[tr->n] = np;
		tr->parents[tr->n] = np ? xmalloc(np * sizeof(uint64_t)) : NULL;
		if (np)
			memcpy(tr->parents[tr->n], t->spec->parent_ids,
			    np * sizeof(uint64_t));
		tr->n++;
	}
	return 0;
}

static size_t
find_node(const struct tree *tr, uint64_t id)
{
	// nodes are in id order: binary search
	size_t lo = 0, hi = tr->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (tr->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < tr->n && tr->v[lo].id == id ? lo : SIZE_MAX;
}

static void
tree_print(struct tree *tr, size_t i, char *prefix, size_t plen, bool last,
    bool root)
{
	struct node *nd = &tr->v[i];
	printf("%s%s%s  %.8s  %s%s\n", prefix, root ? "" : last ? "`-- " : "|-- ",
	    nd->name, nd->uuid, cpl_state_name(nd->state),
	    nd->shown && nd->nkids ? "  (children shown above)" : "");
	if (nd->shown)
		return;
	nd->shown = true;
	size_t n = plen;
	if (!root) {
		if (n + 5 > 4096)
			return; // deeper than a screen: stop indenting
		memcpy(prefix + n, last ? "    " : "|   ", 5);
		n += 4;
	}
	for (size_t k = 0; k < nd->nkids; k++)
		tree_print(tr, nd->kids[k], prefix, n, k + 1 == nd->nkids, false);
	prefix[plen] = '\0';
}

static int
ls_tree(cpl_client *c, filt *f, uint64_t limit)
{
	struct tree tr;
	char prefix[4096] = "";
	memset(&tr, 0, sizeof(tr));
	int rc = for_each_page(c, f, limit, tree_page, &tr);
	if (rc == 0) {
		for (size_t i = 0; i < tr.n; i++) {
			for (size_t k = 0; k < tr.nparents[i]; k++) {
				size_t p = find_node(&tr, tr.parents[i][k]);
				if (p == SIZE_MAX)
					continue;
				struct node *pn = &tr.v[p];
				pn->kids = xrealloc(pn->kids,
				    (pn->nkids + 1) * sizeof(size_t));
				pn->kids[pn->nkids++] = i;
				tr.v[i].has_parent = true;
			}
		}
		for (size_t i = 0; i < tr.n; i++)
			if (!tr.v[i].has_parent)
				tree_print(&tr, i, prefix, 0, true, true);
		// a cycle cannot exist (the broker refuses one); anything not
		// shown has all its parents outside the selection
		if (tr.n == 0)
			printf("no tasks\n");
	}
	for (size_t i = 0; i < tr.n; i++) {
		free(tr.v[i].name);
		free(tr.v[i].kids);
		free(tr.parents[i]);
	}
	free(tr.v);
	free(tr.parents);
	free(tr.nparents);
	return rc;
}

// ------------------------------------------------------------ workflows

struct wf {
	char *name;
	uint64_t by[CPL_NSTATES];
	uint64_t total;
};

struct wfs {
	struct wf *v;
	size_t n;
	uint64_t used_states;  // bit per state seen
};

static int
wf_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wf *)a)->name, ((const struct wf *)b)->name);
}

static int
wf_page(cpl_client *c, const Copal__QueryReply *qr, void *arg)
{
	struct wfs *w = arg;
	(void)c;
	for (size_t i = 0; i < qr->n_tasks; i++) {
		const Copal__Task *t = qr->tasks[i];
		const char *name = SPS(t, workflow);
		struct wf *e = NULL;
		// tasks of one workflow are usually created together: try the
		// last one first
		if (w->n && strcmp(w->v[w->n - 1].name, name) == 0)
			e = &w->v[w->n - 1];
		for (size_t k = 0; e == NULL && k < w->n; k++)
			if (strcmp(w->v[k].name, name) == 0)
				e = &w->v[k];
		if (e == NULL) {
			w->v = xrealloc(w->v, (w->n + 1) * sizeof(*w->v));
			e = &w->v[w->n++];
			memset(e, 0, sizeof(*e));
			e->name = xstrdup(name);
		}
		int s = t->status ? (int)t->status->state : 0;
		if (s > 0 && s < CPL_NSTATES) {
			e->by[s]++;
			w->used_states |= 1ull << s;
		}
		e->total++;
	}
	return 0;
}

static int
ls_workflows(cpl_client *c, filt *f, out_fmt fmt)
{
	struct wfs w;
	memset(&w, 0, sizeof(w));
	int rc = for_each_page(c, f, 0, wf_page, &w);
	if (rc == 0) {
		tcol cols[2 + CPL_NSTATES];
		size_t nc = 0;
		cols[nc++] = (tcol){ "workflow", COL_STR };
		cols[nc++] = (tcol){ "tasks", COL_INT };
		for (int s = 1; s < CPL_NSTATES; s++)
			if (w.used_states & (1ull << s))
				cols[nc++] = (tcol){ cpl_state_name(s), COL_INT };
		qsort(w.v, w.n, sizeof(*w.v), wf_cmp);
		table *t = table_open(fmt, cols, nc, stdout);
		for (size_t i = 0; i < w.n; i++) {
			char num[2 + CPL_NSTATES][24];
			const char *cells[2 + CPL_NSTATES];
			size_t k = 0;
			cells[k++] = w.v[i].name[0] ? w.v[i].name : "(none)";
			snprintf(num[k], sizeof(num[k]), "%" PRIu64, w.v[i].total);
			cells[k] = num[k];
			k++;
			for (int s = 1; s < CPL_NSTATES; s++) {
				if (!(w.used_states & (1ull << s)))
					continue;
				snprintf(num[k], sizeof(num[k]), "%" PRIu64,
				    w.v[i].by[s]);
				cells[k] = num[k];
				k++;
			}
			table_row(t, cells);
		}
		table_close(t);
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].name);
	free(w.v);
	return rc;
}

// ------------------------------------------------------------ unknown --wf

// A --wf that names no workflow with tasks is a typo more often than not:
// an empty table would hide it. Says so with the closest names (or all,
// when none is close) and returns EXIT_NOTFOUND; 0 when it exists.
static int
check_workflow(cpl_client *c, const char *wf)
{
	Copal__Reply *rep = NULL;
	int rc = cli_call_rc(c, cpl_call_workflow_list(c, &rep));
	if (rc)
		return rc;
	const Copal__WorkflowListReply *l = rep->workflow_list;
	const char **names = xcalloc(l->n_workflows + 1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < l->n_workflows; i++) {
		if (l->workflows[i]->tasks == 0 || !l->workflows[i]->name[0])
			continue;
		if (strcmp(l->workflows[i]->name, wf) == 0)
			goto out; // it exists
		names[n++] = l->workflows[i]->name;
	}
	const char *close[5];
	size_t nc = cpl_closest_names(wf, names, n, close, 5);
	char list[1024];
	size_t off = 0;
	list[0] = '\0';
	const char **show = nc ? close : names;
	size_t ns = nc ? nc : n;
	for (size_t i = 0; i < ns && off < sizeof(list); i++) {
		int k = snprintf(list + off, sizeof(list) - off, "%s%s",
		    i ? ", " : "", show[i]);
		if (k < 0 || (size_t)k >= sizeof(list) - off ||
		    (i == 9 && ns > 10)) {
			snprintf(list + off, sizeof(list) - off, "%s...",
			    i ? ", " : "");
			break;
		}
		off += (size_t)k;
	}
	if (nc)
		cli_err("no workflow named %s; did you mean: %s?", wf, list);
	else if (n)
		cli_err("no workflow named %s; the workflows are: %s", wf, list);
	else
		cli_err("no workflow named %s: no task has a workflow yet", wf);
	rc = EXIT_NOTFOUND;
out:
	free(names);
	copal__reply__free_unpacked(rep, NULL);
	return rc;
}

// ------------------------------------------------------------ the verbs

int
cmd_ls(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	filt f;
	out_fmt fmt = FMT_TABLE;
	bool history = false, by_states = false, verbose = false, tree = false;
	uint64_t limit = 0;
	cpl_client *c = NULL;
	int k, rc;
	filt_init(&f);
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (filt_opt(&f, k, arg, &rc)) {
			// f.all is meaningless for a listing: every task is shown
		} else if (k == KEY_HISTORY) {
			history = true;
		} else if (k == KEY_BY_STATES) {
			by_states = true;
		} else if (k == KEY_VERBOSE) {
			verbose = true;
		} else if (k == KEY_TREE) {
			tree = true;
		} else if (k == KEY_LIMIT) {
			rc = cli_u64("--limit", arg, &limit);
		} else if (k == KEY_FORMAT) {
			rc = out_fmt_parse(arg, &fmt);
		} else {
			rc = EXIT_USAGE;
		}
		if (rc)
			goto out;
	}
	const char *what = p.nargs ? p.argv[p.first] : "jobs";
	if (p.nargs > 1) {
		rc = cli_usage("unexpected argument %s", p.argv[p.first + 1]);
		goto out;
	}
	if (history + by_states + tree > 1) {
		rc = cli_usage("choose one of --history, --by-states, --tree");
		goto out;
	}
	if (tree && fmt != FMT_TABLE) {
		rc = cli_usage("--tree prints a table only");
		goto out;
	}
	if (!strcmp(what, "apps") || !strcmp(what, "app")) {
		rc = f.set || history || by_states || tree ?
		    cli_usage("ls apps takes only --format") :
		    ls_apps(fmt);
		goto out;
	}
	if (!strcmp(what, "queues") || !strcmp(what, "queue")) {
		if (f.set || history || by_states || tree) {
			rc = cli_usage("ls queues takes only --format and "
			    "--verbose");
			goto out;
		}
		if ((rc = cli_connect(&c)) == 0)
			rc = ls_queues(c, fmt, verbose);
		goto out;
	}
	bool wf = !strcmp(what, "wf") || !strcmp(what, "workflows");
	if (!wf && strcmp(what, "jobs") && strcmp(what, "tasks")) {
		rc = cli_usage("ls what? jobs (default), apps, wf or queues, "
		    "not %s", what);
		goto out;
	}
	if (wf && (history || by_states || tree)) {
		rc = cli_usage("ls wf takes filters and --format only");
		goto out;
	}
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	if (f.f.workflow && f.f.workflow[0] &&
	    (rc = check_workflow(c, f.f.workflow)) != 0)
		goto out;
	if (wf)
		rc = ls_workflows(c, &f, fmt);
	else if (by_states)
		rc = ls_by_states(c, &f, fmt);
	else if (history)
		rc = ls_history(c, &f, limit, fmt, NULL);
	else if (tree)
		rc = ls_tree(c, &f, limit);
	else
		rc = ls_list(c, &f, limit, fmt, verbose);
	if (rc == 0 && !wf && !history && fmt == FMT_TABLE)
		ls_warn_unfit(c);
out:
	cpl_client_close(c);
	filt_free(&f);
	cli_parse_free(&p);
	return rc;
}

int
cmd_history(const cli_verb *v, int argc, char **argv)
{
	cli_parse p;
	const char *arg;
	filt f;
	out_fmt fmt = FMT_TABLE;
	cpl_client *c = NULL;
	int k, rc;
	filt_init(&f);
	if ((rc = cli_parse_init(&p, v, argc, argv)) != 0)
		return rc;
	while ((k = cli_parse_next(&p, &arg)) != -1) {
		if (k == KEY_FORMAT)
			rc = out_fmt_parse(arg, &fmt);
		else
			rc = EXIT_USAGE;
		if (rc)
			goto out;
	}
	if (p.nargs != 1) {
		rc = cli_usage("give one task id (uuid prefix)");
		goto out;
	}
	if (!is_uuid_prefix(p.argv[p.first])) {
		rc = cli_usage("%s is not a uuid prefix", p.argv[p.first]);
		goto out;
	}
	f.f.uuid_prefix = p.argv[p.first];
	f.set = true;
	if ((rc = cli_connect(&c)) != 0)
		goto out;
	uint64_t n = 0;
	if ((rc = ls_history(c, &f, 0, fmt, &n)) == 0 && n == 0) {
		cli_err("no task with id %s", p.argv[p.first]);
		rc = EXIT_NOTFOUND;
	}
out:
	cpl_client_close(c);
	filt_free(&f);
	cli_parse_free(&p);
	return rc;
}
