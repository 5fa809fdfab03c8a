// Handlers of apps (register, list, delete) and of the workflow list.
#include <string.h>

#include "copal/params.h"
#include "handlers.h"

// ---------------------------------------------------------------- apps

int
h_app_register(hctx *h, cpl_txn *txn)
{
	const Copal__AppRegisterRequest *r = h->req->app_register;
	char why[300];
	if (r->app == NULL)
		FAIL(h, CPL_EINVAL, "no app given");
	if (cpl_app_params_check(r->app, why, sizeof(why)) != 0)
		FAIL(h, CPL_EINVAL, "app %s: %s", r->app->name ? r->app->name :
		    "", why);
	int rv = cpl_app_put(txn, r->app, r->replace);
	if (rv == CPL_EEXISTS)
		FAIL(h, rv, "app %s already exists (replace it to change it)",
		    r->app->name);
	if (rv == CPL_EINVAL)
		FAIL(h, rv, "an app needs a name (at most 255 bytes) and an "
		    "executable");
	if (rv)
		return rv;
	Copal__AppRegisterReply *rep =
	    NEW(h, Copal__AppRegisterReply, COPAL__APP_REGISTER_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	h->rep->body_case = COPAL__REPLY__BODY_APP_REGISTER;
	h->rep->app_register = rep;
	return 0;
}

struct app_ctx {
	hctx *h;
	Copal__AppListReply *rep;
	size_t cap;
};

static int
app_cb(const Copal__App *app, uint64_t ntasks, void *arg)
{
	struct app_ctx *c = arg;
	(void)ntasks;
	if (c->rep->n_apps == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		Copal__App **v = arena_alloc(c->h->a, cap * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		if (c->rep->n_apps)
			memcpy(v, c->rep->apps, c->rep->n_apps * sizeof(*v));
		c->rep->apps = v;
		c->cap = cap;
	}
	Copal__App *a = NEW(c->h, Copal__App, COPAL__APP__INIT);
	if (a == NULL)
		return CPL_ENOMEM;
	a->name = arena_strdup(c->h->a, app->name);
	a->executable = arena_strdup(c->h->a, app->executable);
	a->preprocess = arena_strdup(c->h->a, app->preprocess);
	a->postprocess = arena_strdup(c->h->a, app->postprocess);
	a->envscript = arena_strdup(c->h->a, app->envscript);
	a->description = arena_strdup(c->h->a, app->description);
	if (!a->name || !a->executable || !a->preprocess || !a->postprocess ||
	    !a->envscript || !a->description)
		return CPL_ENOMEM;
	// the declared parameters too: without them a client cannot tell
	// which values its tasks must give (the store's copy is freed after
	// this call, so each is copied into the reply's arena)
	if (app->n_params) {
		a->params = arena_alloc(c->h->a,
		    app->n_params * sizeof(*a->params));
		if (a->params == NULL)
			return CPL_ENOMEM;
		for (size_t i = 0; i < app->n_params; i++) {
			Copal__AppParam *p = NEW(c->h, Copal__AppParam,
			    COPAL__APP_PARAM__INIT);
			if (p == NULL)
				return CPL_ENOMEM;
			p->name = arena_strdup(c->h->a, app->params[i]->name);
			p->default_value = arena_strdup(c->h->a,
			    app->params[i]->default_value);
			p->has_default = app->params[i]->has_default;
			if (!p->name || !p->default_value)
				return CPL_ENOMEM;
			a->params[i] = p;
		}
		a->n_params = app->n_params;
	}
	c->rep->apps[c->rep->n_apps++] = a;
	return 0;
}

int
h_app_list(hctx *h, cpl_txn *txn)
{
	Copal__AppListReply *rep =
	    NEW(h, Copal__AppListReply, COPAL__APP_LIST_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	struct app_ctx c = { h, rep, 0 };
	int rv = cpl_app_list(txn, app_cb, &c);
	if (rv)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_APP_LIST;
	h->rep->app_list = rep;
	return 0;
}

int
h_app_delete(hctx *h, cpl_txn *txn)
{
	const char *name = h->req->app_delete->name;
	int rv = cpl_app_delete(txn, name);
	if (rv == CPL_EINUSE)
		FAIL(h, rv, "app %s is used by tasks: remove them first", name);
	if (rv == CPL_ENOTFOUND)
		FAIL(h, rv, "no app named %s", name);
	if (rv)
		return rv;
	Copal__AppDeleteReply *rep =
	    NEW(h, Copal__AppDeleteReply, COPAL__APP_DELETE_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	h->rep->body_case = COPAL__REPLY__BODY_APP_DELETE;
	h->rep->app_delete = rep;
	return 0;
}

// ---------------------------------------------------------------- workflows

struct wf_ctx {
	hctx *h;
	Copal__WorkflowListReply *rep;
	size_t cap;
};

static int
wf_cb(const char *name, uint64_t n, void *arg)
{
	struct wf_ctx *c = arg;
	if (c->rep->n_workflows == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		Copal__WorkflowCount **v = arena_alloc(c->h->a, cap * sizeof(*v));
		if (v == NULL)
			return CPL_ENOMEM;
		if (c->rep->n_workflows)
			memcpy(v, c->rep->workflows,
			    c->rep->n_workflows * sizeof(*v));
		c->rep->workflows = v;
		c->cap = cap;
	}
	Copal__WorkflowCount *w =
	    NEW(c->h, Copal__WorkflowCount, COPAL__WORKFLOW_COUNT__INIT);
	if (w == NULL || (w->name = arena_strdup(c->h->a, name)) == NULL)
		return CPL_ENOMEM;
	w->tasks = n;
	c->rep->workflows[c->rep->n_workflows++] = w;
	return 0;
}

int
h_workflow_list(hctx *h, cpl_txn *txn)
{
	Copal__WorkflowListReply *rep =
	    NEW(h, Copal__WorkflowListReply, COPAL__WORKFLOW_LIST_REPLY__INIT);
	if (rep == NULL)
		return CPL_ENOMEM;
	struct wf_ctx c = { h, rep, 0 };
	int rv = cpl_workflow_list(txn, wf_cb, &c);
	if (rv)
		return rv;
	h->rep->body_case = COPAL__REPLY__BODY_WORKFLOW_LIST;
	h->rep->workflow_list = rep;
	return 0;
}
