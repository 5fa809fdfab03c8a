// Handlers of tasks: create, query, count, modify, delete, kill and
// dependencies, with the wire filters they select tasks by.
#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "copal/params.h"
#include "copal/spec.h"
#include "handlers.h"

#define DEFAULT_PAGE 100u
#define MAX_PAGE 10000u

// ---------------------------------------------------------------- filters

static int
ids_cb(const cpl_task *t, void *arg)
{
	return cpl_ids_push(arg, t->id);
}

// Translates a wire filter. Returns CPL_EINVAL for an empty filter unless
// `all` is set or empty_ok.
static int
filter_from_wire(hctx *h, cpl_txn *txn, const Copal__Filter *wf,
    cpl_filter *f, bool empty_ok)
{
	memset(f, 0, sizeof(*f));
	if (wf == NULL) {
		if (empty_ok)
			return 0;
		FAIL(h, CPL_EINVAL, "no filter: say which tasks (or all)");
	}
	for (size_t i = 0; i < wf->n_states; i++) {
		if ((int)wf->states[i] <= 0 || (int)wf->states[i] >= CPL_NSTATES)
			FAIL(h, CPL_EINVAL, "state %d out of range", wf->states[i]);
		f->states |= 1u << wf->states[i];
	}
	if (wf->workflow && wf->workflow[0])
		f->workflow = wf->workflow;
	if (wf->application && wf->application[0])
		f->application = wf->application;
	if (wf->name && wf->name[0])
		f->name = wf->name;
	if (wf->uuid_prefix && wf->uuid_prefix[0])
		f->uuid_prefix = wf->uuid_prefix;
	f->min_nodes = wf->min_nodes;
	f->max_nodes = wf->max_nodes;
	if (wf->n_tags > CPL_TAGS_MAX)
		FAIL(h, CPL_EINVAL, "%zu tags in a filter, above the limit %u",
		    wf->n_tags, CPL_TAGS_MAX);
	for (size_t i = 0; i < wf->n_tags; i++) {
		char why[200];
		if (cpl_tag_check(wf->tags[i], why, sizeof(why)) != 0)
			FAIL(h, CPL_EINVAL, "filter: %s", why);
	}
	f->tags = (const char *const *)wf->tags;
	f->ntags = wf->n_tags;
	f->batch_job = wf->batch_job_id;
	if (f->batch_job) {
		Copal__BatchJob *bj = NULL;
		int rv = cpl_bjob_get(txn, f->batch_job, &bj);
		if (rv == CPL_ENOTFOUND)
			FAIL(h, rv, "no batch job %" PRIu64 " (copal ls queues "
			    "lists them)", f->batch_job);
		if (rv)
			return rv;
		copal__batch_job__free_unpacked(bj, NULL);
	}
	bool empty = !f->states && !f->workflow && !f->application &&
	    !f->name && !f->uuid_prefix && !f->min_nodes && !f->max_nodes &&
	    !f->batch_job && wf->n_ids == 0 && wf->n_tags == 0;
	if (empty && !wf->all && !empty_ok)
		FAIL(h, CPL_EINVAL,
		    "the filter selects every task: say so explicitly (all)");
	return 0;
}

// Whether task id matches every criterion of f (for explicit id lists;
// cpl_query applies the same criteria through the indices).
static int
task_matches(hctx *h, cpl_txn *txn, uint64_t id, const cpl_filter *f,
    bool *ok)
{
	cpl_task t;
	char u[37];
	int rv = task_get_owned(h, txn, id, &t);
	*ok = false;
	if (rv)
		return rv;
	const Copal__TaskSpec *sp = t.spec;
	uint32_t nodes = sp->resources && sp->resources->num_nodes ?
	    sp->resources->num_nodes : 1;
	cpl_uuid_format(t.uuid, u);
	if (f->states && !(f->states & (1u << t.state)))
		return 0;
	if (f->workflow && strcmp(sp->workflow, f->workflow) != 0)
		return 0;
	if (f->application && strcmp(sp->application, f->application) != 0)
		return 0;
	if (f->name && strcmp(sp->name, f->name) != 0)
		return 0;
	if (f->min_nodes && nodes < f->min_nodes)
		return 0;
	if (f->max_nodes && nodes > f->max_nodes)
		return 0;
	for (size_t i = 0; i < f->ntags; i++) {
		bool has = false;
		for (size_t j = 0; j < sp->n_tags && !has; j++)
			has = strcmp(sp->tags[j], f->tags[i]) == 0;
		if (!has)
			return 0;
	}
	if (f->batch_job && !cpl_bjob_ran(txn, f->batch_job, id))
		return 0;
	if (f->uuid_prefix) {
		// compare hex digits, dashes ignored on both sides
		const char *p = f->uuid_prefix, *q = u;
		while (*p) {
			if (*p == '-') {
				p++;
				continue;
			}
			while (*q == '-')
				q++;
			if (*q == '\0' || tolower((unsigned char)*p) != *q)
				return 0;
			p++;
			q++;
		}
	}
	*ok = true;
	return 0;
}

// The ids a wire filter selects, in id order.
static int
select_ids(hctx *h, cpl_txn *txn, const Copal__Filter *wf, cpl_ids *out)
{
	cpl_filter f;
	int rv;
	if ((rv = filter_from_wire(h, txn, wf, &f, false)) != 0)
		return rv;
	if (wf->n_ids) {
		// explicit ids: each must exist and match the rest
		for (size_t i = 0; i < wf->n_ids; i++) {
			bool ok;
			if ((rv = task_matches(h, txn, wf->ids[i], &f, &ok)) != 0)
				FAIL(h, rv, "%s: %s", task_label(h, txn,
				    wf->ids[i]), cpl_strerror(rv));
			if (ok && (rv = cpl_ids_push(out, wf->ids[i])) != 0)
				return rv;
		}
		return 0;
	}
	return cpl_query(txn, &f, 0, 0, 0, ids_cb, out, NULL);
}

// Whether the store refused a spec (rv) for breaking the rule book; if so
// writes which rule into why. The store says only CPL_EINVAL or
// CPL_ETOOBIG; the book says which field and which limit.
static bool
spec_refusal(int rv, const Copal__TaskSpec *sp, char *why, size_t len)
{
	if (rv != CPL_EINVAL && rv != CPL_ETOOBIG)
		return false;
	return cpl_spec_check(sp, why, len) == rv;
}

// ---------------------------------------------------------------- create

// Checks a task's parameter values against its app (*app: the app of the
// task before, reused when the name is the same, else replaced; NULL when
// the task names no registered app, which the store then refuses).
static int
params_check(hctx *h, cpl_txn *txn, const Copal__TaskSpec *sp, size_t i,
    Copal__App **app)
{
	char why[300];
	int rv;
	const char *name = sp->application ? sp->application : "";
	if (*app == NULL || strcmp((*app)->name, name) != 0) {
		if (*app)
			copal__app__free_unpacked(*app, NULL);
		*app = NULL;
		rv = cpl_app_get(txn, name, app);
		if (rv == CPL_ENOTFOUND || rv == CPL_EINVAL)
			return 0;
		if (rv)
			return rv;
	}
	if (cpl_task_params_check(*app, sp, why, sizeof(why)) != 0)
		FAIL(h, CPL_EINVAL, "task %zu (%s): %s", i,
		    sp->name ? sp->name : "", why);
	return 0;
}

// h_create's work; *app is the app record it last read (freed by the
// caller, whatever the outcome).
static int
create_tasks(hctx *h, cpl_txn *txn, Copal__App **appp)
{
	const Copal__CreateTasksRequest *r = h->req->create;
	Copal__CreateTasksReply *rep =
	    NEW(h, Copal__CreateTasksReply, COPAL__CREATE_TASKS_REPLY__INIT);
	char why[256];
	int rv = 0;
	if (rep == NULL)
		return CPL_ENOMEM;
	if (r->n_tasks == 0)
		FAIL(h, CPL_EINVAL, "no tasks to create");
	if (r->n_local_parent_child != r->n_local_parent_parent)
		FAIL(h, CPL_EINVAL, "local dependency lists differ in length");
	for (size_t i = 0; i < r->n_local_parent_child; i++) {
		uint32_t c = r->local_parent_child[i], p = r->local_parent_parent[i];
		if (c >= r->n_tasks || p >= c)
			FAIL(h, CPL_EINVAL,
			    "local dependency %zu: parent %u must come before "
			    "child %u in the batch", i, p, c);
	}
	uint64_t *ids = arena_alloc(h->a, r->n_tasks * sizeof(uint64_t));
	char **uuids = r->want_uuids ?
	    arena_alloc(h->a, r->n_tasks * sizeof(char *)) : NULL;
	if (ids == NULL || (r->want_uuids && uuids == NULL))
		return CPL_ENOMEM;
	// local dependencies sorted by child (a counting sort: linear in
	// tasks + dependencies): task i's local parents are
	// lpar[first[i] .. first[i + 1] - 1]
	size_t nd = r->n_local_parent_child;
	size_t *first = arena_alloc(h->a, (r->n_tasks + 1) * sizeof(size_t));
	uint32_t *lpar = arena_alloc(h->a, (nd ? nd : 1) * sizeof(uint32_t));
	if (first == NULL || lpar == NULL)
		return CPL_ENOMEM;
	memset(first, 0, (r->n_tasks + 1) * sizeof(size_t));
	for (size_t i = 0; i < nd; i++)
		first[r->local_parent_child[i] + 1]++;
	for (size_t i = 0; i < r->n_tasks; i++)
		first[i + 1] += first[i];
	for (size_t i = 0; i < nd; i++)
		lpar[first[r->local_parent_child[i]]++] = r->local_parent_parent[i];
	// the fill moved each start to the next task's: shift back
	for (size_t i = r->n_tasks; i > 0; i--)
		first[i] = first[i - 1];
	first[0] = 0;
	for (size_t i = 0; i < r->n_tasks; i++) {
		Copal__TaskSpec sp = *r->tasks[i];
		uint8_t uuid[16];
		size_t nloc = first[i + 1] - first[i];
		if ((rv = params_check(h, txn, &sp, i, appp)) != 0)
			return rv;
		if (nloc) {
			size_t n = sp.n_parent_ids + nloc, k = sp.n_parent_ids;
			uint64_t *pids = arena_alloc(h->a, n * sizeof(uint64_t));
			if (pids == NULL)
				return CPL_ENOMEM;
			if (k)
				memcpy(pids, sp.parent_ids, k * sizeof(uint64_t));
			for (size_t j = first[i]; j < first[i + 1]; j++)
				pids[k++] = ids[lpar[j]];
			sp.parent_ids = pids;
			sp.n_parent_ids = n;
		}
		if ((rv = cpl_task_create(txn, &sp, &ids[i], uuid)) != 0) {
			if (spec_refusal(rv, &sp, why, sizeof(why)))
				FAIL(h, rv, "task %zu (%s): %s", i,
				    sp.name ? sp.name : "", why);
			if (rv != CPL_ENOTFOUND)
				FAIL(h, rv, "task %zu (%s): %s", i,
				    sp.name ? sp.name : "", cpl_strerror(rv));
			// say which: the app or a parent
			if (sp.application && sp.application[0] && *appp == NULL)
				FAIL(h, rv, "task %zu (%s): no app named %s", i,
				    sp.name ? sp.name : "", sp.application);
			for (size_t j = 0; j < sp.n_parent_ids; j++) {
				cpl_task pt;
				if (cpl_task_get(txn, sp.parent_ids[j], 0, &pt) != 0)
					FAIL(h, rv, "task %zu (%s): its parent "
					    "%zu does not exist", i,
					    sp.name ? sp.name : "", j + 1);
			}
			FAIL(h, rv, "task %zu (%s): %s", i, sp.name ? sp.name : "",
			    cpl_strerror(rv));
		}
		if (uuids) {
			if ((uuids[i] = arena_alloc(h->a, 37)) == NULL)
				return CPL_ENOMEM;
			cpl_uuid_format(uuid, uuids[i]);
		}
	}
	rep->first_id = ids[0];
	rep->count = (uint32_t)r->n_tasks;
	rep->n_uuids = uuids ? r->n_tasks : 0;
	rep->uuids = uuids;
	h->rep->body_case = COPAL__REPLY__BODY_CREATE;
	h->rep->create = rep;
	return 0;
}

int
h_create(hctx *h, cpl_txn *txn)
{
	Copal__App *app = NULL; // the last task's app, for its parameters
	int rv = create_tasks(h, txn, &app);
	if (app)
		copal__app__free_unpacked(app, NULL);
	return rv;
}

// ---------------------------------------------------------------- query

struct query_ctx {
	hctx *h;
	cpl_txn *txn;
	Copal__QueryReply *rep;
	bool with_spec;
};

static int
query_cb(const cpl_task *t, void *arg)
{
	struct query_ctx *q = arg;
	cpl_task full;
	Copal__Task *w;
	int rv;
	if (q->with_spec) {
		if ((rv = task_get_owned(q->h, q->txn, t->id, &full)) != 0)
			return rv;
		w = task_wire(q->h, &full, full.spec);
	} else {
		w = task_wire(q->h, t, NULL);
	}
	if (w == NULL)
		return CPL_ENOMEM;
	q->rep->tasks[q->rep->n_tasks++] = w;
	return 0;
}

int
h_query(hctx *h, cpl_txn *txn)
{
	const Copal__QueryRequest *r = h->req->query;
	cpl_filter f;
	bool more = false;
	int rv;
	uint32_t limit = r->limit ? r->limit : DEFAULT_PAGE;
	if (limit > MAX_PAGE)
		FAIL(h, CPL_EINVAL, "limit above %u per page", MAX_PAGE);
	if ((rv = filter_from_wire(h, txn, r->filter, &f, true)) != 0)
		return rv;
	Copal__QueryReply *rep = NEW(h, Copal__QueryReply, COPAL__QUERY_REPLY__INIT);
	if (rep == NULL ||
	    (rep->tasks = arena_alloc(h->a, limit * sizeof(Copal__Task *))) ==
	        NULL)
		return CPL_ENOMEM;
	struct query_ctx q = { h, txn, rep, r->with_spec };
	if (r->filter && r->filter->n_ids) {
		for (size_t i = 0; i < r->filter->n_ids; i++) {
			cpl_task t;
			uint64_t id = r->filter->ids[i];
			if (id <= r->after_id)
				continue;
			if (rep->n_tasks == limit) {
				more = true;
				break;
			}
			bool ok;
			rv = task_matches(h, txn, id, &f, &ok);
			if (rv == CPL_ENOTFOUND || (rv == 0 && !ok))
				continue;
			if (rv || (rv = cpl_task_get(txn, id, 0, &t)) != 0 ||
			    (rv = query_cb(&t, &q)) != 0)
				return rv;
		}
	} else if ((rv = cpl_query(txn, &f, r->after_id, limit, 0, query_cb, &q,
	                &more)) != 0) {
		return rv;
	}
	rep->more = more;
	h->rep->body_case = COPAL__REPLY__BODY_QUERY;
	h->rep->query = rep;
	return 0;
}

struct count_ctx {
	uint64_t *by;
	uint64_t total;
};

static int
count_cb(const cpl_task *t, void *arg)
{
	struct count_ctx *c = arg;
	c->by[t->state]++;
	c->total++;
	return 0;
}

int
h_count(hctx *h, cpl_txn *txn)
{
	cpl_filter f;
	int rv;
	if ((rv = filter_from_wire(h, txn, h->req->count->filter, &f, true)) != 0)
		return rv;
	Copal__CountReply *rep = NEW(h, Copal__CountReply, COPAL__COUNT_REPLY__INIT);
	uint64_t *by = arena_alloc(h->a, CPL_NSTATES * sizeof(uint64_t));
	if (rep == NULL || by == NULL)
		return CPL_ENOMEM;
	const Copal__Filter *wf = h->req->count->filter;
	bool plain = !f.workflow && !f.application && !f.name &&
	    !f.uuid_prefix && !f.min_nodes && !f.max_nodes && !f.ntags &&
	    !f.batch_job &&
	    (wf == NULL || wf->n_ids == 0);
	bool one_tag = f.ntags == 1 && !f.workflow && !f.application &&
	    !f.name && !f.uuid_prefix && !f.min_nodes && !f.max_nodes &&
	    !f.batch_job && (wf == NULL || wf->n_ids == 0);
	if (plain || one_tag) {
		// O(1): the stored counters (of all tasks, or of one tag's)
		uint64_t all[CPL_NSTATES] = { 0 };
		if ((rv = plain ? cpl_count_states(txn, all) :
		         cpl_count_tag(txn, f.tags[0], all)) != 0)
			return rv;
		for (int s = 1; s < CPL_NSTATES; s++) {
			if (f.states && !(f.states & (1u << s)))
				continue;
			by[s] = all[s];
			rep->total += all[s];
		}
	} else {
		struct count_ctx c = { by, 0 };
		cpl_ids sel = { NULL, 0, 0 };
		if (wf && wf->n_ids) {
			rv = select_ids(h, txn, wf, &sel);
			for (size_t i = 0; rv == 0 && i < sel.n; i++) {
				cpl_task t;
				if ((rv = cpl_task_get(txn, sel.v[i], 0, &t)) == 0)
					rv = count_cb(&t, &c);
			}
			free(sel.v);
		} else {
			rv = cpl_query(txn, &f, 0, 0, 0, count_cb, &c, NULL);
		}
		if (rv)
			return rv;
		rep->total = c.total;
	}
	rep->by_state = by;
	rep->n_by_state = CPL_NSTATES;
	h->rep->body_case = COPAL__REPLY__BODY_COUNT;
	h->rep->count = rep;
	return 0;
}

// ---------------------------------------------------------------- modify

// modify ID env K=V: sets K in the task's environment (replacing its
// value), in a copy made in the request's arena (issue 22: a preprocess
// sets its own task's environment).
static int
env_set(hctx *h, Copal__TaskSpec *sp, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (eq == NULL || eq == kv)
		return CPL_EINVAL;
	size_t nl = (size_t)(eq - kv);
	Copal__EnvVar **v = arena_alloc(h->a,
	    (sp->n_environ + 1) * sizeof(*v));
	Copal__EnvVar *e = NEW(h, Copal__EnvVar, COPAL__ENV_VAR__INIT);
	char *name = arena_alloc(h->a, nl + 1);
	if (v == NULL || e == NULL || name == NULL)
		return CPL_ENOMEM;
	memcpy(name, kv, nl);
	name[nl] = '\0';
	e->name = name;
	e->value = (char *)(eq + 1);
	size_t n = 0;
	for (size_t i = 0; i < sp->n_environ; i++)
		if (strcmp(sp->environ[i]->name, name) != 0)
			v[n++] = sp->environ[i];
	v[n++] = e;
	sp->environ = v;
	sp->n_environ = n;
	return 0;
}

// Splits s at any of seps into words in the arena (empty ones dropped).
static int
split_list(hctx *h, const char *s, const char *seps, char ***out, size_t *n)
{
	size_t cap = 1;
	for (const char *p = s; *p; p++)
		cap += strchr(seps, *p) != NULL;
	char **v = arena_alloc(h->a, cap * sizeof(char *));
	if (v == NULL)
		return CPL_ENOMEM;
	*n = 0;
	while (*s) {
		s += strspn(s, seps);
		size_t len = strcspn(s, seps);
		if (len) {
			if ((v[*n] = arena_alloc(h->a, len + 1)) == NULL)
				return CPL_ENOMEM;
			memcpy(v[*n], s, len);
			v[(*n)++][len] = '\0';
		}
		s += len;
	}
	*out = v;
	return 0;
}

int
h_modify(hctx *h, cpl_txn *txn)
{
	const Copal__ModifyRequest *r = h->req->modify;
	cpl_ids sel = { NULL, 0, 0 };
	const cpl_spec_field *fd = NULL;
	cpl_state st = CPL_STATE_NONE;
	uint64_t changed = 0;
	char why[256];
	int rv;
	if (r->field == NULL || r->value == NULL)
		FAIL(h, CPL_EINVAL, "modify needs a field and a value");
	if (r->lease_id != 0 && strcmp(r->field, "state") == 0)
		FAIL(h, CPL_EINVAL, "a task's own stage decides its state by its "
		    "exit code, not by modify state (see launcher/README.md)");
	if (strcmp(r->field, "state") == 0) {
		if ((st = cpl_state_parse(r->value)) == CPL_STATE_NONE)
			FAIL(h, CPL_EINVAL, "unknown state %s", r->value);
	} else if (strcmp(r->field, "tags") == 0) {
		// a list: the whole set is replaced, re-indexed by the store
		fd = cpl_spec_find("tags");
	} else if ((fd = cpl_spec_find(r->field)) == NULL ||
	    (!fd->modify && fd->type != CPL_SPEC_ENV)) {
		FAIL(h, CPL_EINVAL, "unknown or unmodifiable field %s", r->field);
	}
	if (r->recursive && st != CPL_RESTART_READY)
		FAIL(h, CPL_EINVAL, "recursive is for state RESTART_READY (it "
		    "brings PARENT_KILLED descendants back), not %s %s",
		    r->field, r->value);
	if ((rv = select_ids(h, txn, r->filter, &sel)) != 0) {
		free(sel.v);
		return rv;
	}
	for (size_t i = 0; i < sel.n && rv == 0; i++) {
		uint64_t self = 1; // the task itself changed
		if (fd == NULL) {
			cpl_task t;
			if ((rv = cpl_task_get(txn, sel.v[i], 0, &t)) != 0)
				break;
			self = t.state != st;
			if (!self && !r->recursive)
				continue;
			if (self)
				rv = cpl_task_set_state(txn, sel.v[i], st,
				    r->message && r->message[0] ? r->message :
				                                  "modified by user");
			uint64_t nrev = 0;
			if (rv == 0 && r->recursive &&
			    (rv = cpl_task_revive(txn, sel.v[i], &nrev)) == 0)
				changed += nrev;
		} else {
			cpl_task t;
			Copal__Resources res = COPAL__RESOURCES__INIT;
			if ((rv = task_get_owned(h, txn, sel.v[i], &t)) != 0)
				break;
			Copal__TaskSpec sp = *t.spec;
			if (sp.resources)
				res = *sp.resources;
			sp.resources = &res;
			if (fd->type == CPL_SPEC_LIST &&
			    fd->off == offsetof(Copal__TaskSpec, tags)) {
				// the whole set: comma-separated, "" for none
				if ((rv = split_list(h, r->value, fd->sep,
				         &sp.tags, &sp.n_tags)) != 0)
					break;
			} else if ((rv = fd->type == CPL_SPEC_ENV ?
			         env_set(h, &sp, r->value) :
			         cpl_spec_set(fd, &sp, r->value)) != 0) {
				snprintf(h->err, sizeof(h->err),
				    "bad value %s for %s", r->value, fd->key);
				break;
			}
			// a stage of a held task edits its own spec with its
			// launcher's lease (issue 22)
			rv = cpl_task_update_spec_held(txn, sel.v[i], &sp,
			    r->lease_id);
			if (spec_refusal(rv, &sp, why, sizeof(why))) {
				char u[37];
				cpl_uuid_format(t.uuid, u);
				snprintf(h->err, sizeof(h->err),
				    "task %s: %s (nothing was changed)", u, why);
			} else if (rv == CPL_EBUSY && r->lease_id != 0) {
				char u[37];
				cpl_uuid_format(t.uuid, u);
				snprintf(h->err, sizeof(h->err), "task %s: held by "
				    "another lease than %llu (nothing was "
				    "changed)", u,
				    (unsigned long long)r->lease_id);
			} else if (rv == CPL_ESTALE) {
				char u[37];
				cpl_uuid_format(t.uuid, u);
				snprintf(h->err, sizeof(h->err), "task %s: not held "
				    "by lease %llu (nothing was changed)", u,
				    (unsigned long long)r->lease_id);
			}
		}
		if (rv == 0) {
			changed += self;
		} else if (h->err[0] == '\0') {
			cpl_task t;
			char u[37] = "?";
			if (cpl_task_get(txn, sel.v[i], 0, &t) == 0)
				cpl_uuid_format(t.uuid, u);
			snprintf(h->err, sizeof(h->err),
			    "task %s: %s (nothing was changed)", u,
			    cpl_strerror(rv));
		}
	}
	size_t matched = sel.n;
	free(sel.v);
	if (rv)
		return rv;
	Copal__ModifyReply *rep = NEW(h, Copal__ModifyReply, COPAL__MODIFY_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->matched = matched;
	rep->changed = changed;
	h->rep->body_case = COPAL__REPLY__BODY_MODIFY;
	h->rep->modify = rep;
	return 0;
}

// ---------------------------------------------------------------- delete, kill

static int
delete_one(cpl_txn *txn, uint64_t id, void *arg)
{
	(void)arg;
	return cpl_task_delete(txn, id);
}

int
h_delete(hctx *h, cpl_txn *txn)
{
	cpl_ids sel = { NULL, 0, 0 };
	int rv;
	if ((rv = select_ids(h, txn, h->req->delete_->filter, &sel)) != 0) {
		free(sel.v);
		return rv;
	}
	// children before parents; a task whose children are outside the
	// selection stops it all
	rv = remove_children_first(txn, sel.v, sel.n, delete_one, NULL);
	if (rv != 0) {
		cpl_task t;
		char u[37] = "?";
		if (cpl_task_get(txn, sel.v[0], 0, &t) == 0)
			cpl_uuid_format(t.uuid, u);
		snprintf(h->err, sizeof(h->err),
		    "task %s: %s%s (nothing was deleted)", u, cpl_strerror(rv),
		    rv == CPL_EINUSE ? ": it has children that are not being "
		                       "deleted" : "");
	}
	size_t n = sel.n;
	free(sel.v);
	if (rv)
		return rv;
	Copal__DeleteReply *rep = NEW(h, Copal__DeleteReply, COPAL__DELETE_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->deleted = n;
	h->rep->body_case = COPAL__REPLY__BODY_DELETE;
	h->rep->delete_ = rep;
	return 0;
}

int
h_kill(hctx *h, cpl_txn *txn)
{
	cpl_ids sel = { NULL, 0, 0 };
	uint64_t total = 0;
	int rv;
	if ((rv = select_ids(h, txn, h->req->kill->filter, &sel)) != 0) {
		free(sel.v);
		return rv;
	}
	for (size_t i = 0; i < sel.n && rv == 0; i++) {
		uint64_t n = 0;
		// --recursive: the subtree is the user's kill (issue 22)
		rv = h->req->kill->recursive ?
		    cpl_task_kill_tree(txn, sel.v[i], "killed by user", &n) :
		    cpl_task_kill(txn, sel.v[i], "killed by user", &n);
		total += n;
	}
	free(sel.v);
	if (rv)
		return rv;
	Copal__KillReply *rep = NEW(h, Copal__KillReply, COPAL__KILL_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	rep->killed = total;
	h->rep->body_case = COPAL__REPLY__BODY_KILL;
	h->rep->kill = rep;
	return 0;
}

// The uuid of a task for a message, or "#ID" when it does not exist.
static const char *
dep_name(hctx *h, cpl_txn *txn, uint64_t id, char *buf)
{
	cpl_task t;
	if (cpl_task_get(txn, id, 0, &t) == 0)
		cpl_uuid_format(t.uuid, buf);
	else
		snprintf(buf, 37, "#%" PRIu64, id);
	(void)h;
	return buf;
}

// copal dep --remove / --replace (issue 22): all or nothing.
static int
dep_change(hctx *h, cpl_txn *txn, const Copal__AddDependencyRequest *r)
{
	char cu[37], pu[37];
	cpl_task t;
	int rv;
	if (r->remove && r->replace)
		FAIL(h, CPL_EINVAL, "remove or replace, not both");
	if (cpl_task_get(txn, r->child_id, 0, &t) != 0)
		FAIL(h, CPL_ENOTFOUND, "no task with id %" PRIu64, r->child_id);
	dep_name(h, txn, r->child_id, cu);
	if (r->remove) {
		if (cpl_task_get(txn, r->parent_id, 0, &t) != 0)
			FAIL(h, CPL_ENOTFOUND, "no task with id %" PRIu64,
			    r->parent_id);
		dep_name(h, txn, r->parent_id, pu);
		if ((rv = cpl_dep_remove(txn, r->parent_id, r->child_id)) != 0)
			FAIL(h, rv, "cannot remove %s -> %s: %s (nothing was "
			    "changed)", pu, cu, rv == CPL_ENOTFOUND ?
			    "it is not a parent of the task" :
			    rv == CPL_EBADSTATE || rv == CPL_EBUSY ?
			    "the child has already started" : cpl_strerror(rv));
		return 0;
	}
	if (r->n_parent_ids > 65535)
		FAIL(h, CPL_EINVAL, "more than 65535 parents");
	for (size_t i = 0; i < r->n_parent_ids; i++) {
		if (r->parent_ids[i] == r->child_id)
			FAIL(h, CPL_EINVAL, "a task cannot depend on itself "
			    "(nothing was changed)");
		if (cpl_task_get(txn, r->parent_ids[i], 0, &t) != 0)
			FAIL(h, CPL_ENOTFOUND, "no task with id %" PRIu64
			    " (nothing was changed)", r->parent_ids[i]);
	}
	rv = cpl_dep_replace(txn, r->child_id, r->parent_ids, r->n_parent_ids);
	if (rv)
		FAIL(h, rv, "cannot replace the parents of %s: %s%s (nothing "
		    "was changed)", cu, cpl_strerror(rv),
		    rv == CPL_EBADSTATE || rv == CPL_EBUSY ?
		    ": the task has already started" :
		    rv == CPL_EINVAL ? ": a parent given twice" : "");
	return 0;
}

int
h_add_dependency(hctx *h, cpl_txn *txn)
{
	const Copal__AddDependencyRequest *r = h->req->add_dependency;
	int rv;
	if (r->remove || r->replace) {
		if ((rv = dep_change(h, txn, r)) != 0)
			return rv;
		goto reply;
	}
	if (r->parent_id == r->child_id)
		FAIL(h, CPL_EINVAL, "a task cannot depend on itself");
	rv = cpl_dep_add(txn, r->parent_id, r->child_id);
	cpl_task t;
	if (rv == CPL_ENOTFOUND &&
	    cpl_task_get(txn, r->parent_id, 0, &t) == CPL_ENOTFOUND)
		FAIL(h, rv, "the parent task does not exist");
	if (rv == CPL_ENOTFOUND &&
	    cpl_task_get(txn, r->child_id, 0, &t) == CPL_ENOTFOUND)
		FAIL(h, rv, "the child task does not exist");
	if (rv)
		FAIL(h, rv, "dependency %s -> %s: %s%s",
		    task_label(h, txn, r->parent_id),
		    task_label(h, txn, r->child_id), cpl_strerror(rv),
		    rv == CPL_EBADSTATE ? ": the child has already started" : "");
reply:;
	Copal__AddDependencyReply *rep =
	    NEW(h, Copal__AddDependencyReply, COPAL__ADD_DEPENDENCY_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	h->rep->body_case = COPAL__REPLY__BODY_ADD_DEPENDENCY;
	h->rep->add_dependency = rep;
	return 0;
}
