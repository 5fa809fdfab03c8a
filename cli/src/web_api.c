// copal web: the JSON API (web.h; the table of endpoints is in README.md).
//
// Each endpoint names the parameters it takes: any other is refused (400),
// as is a value out of its bounds. Lists are paged: `limit` (at most
// WEB_MAX_LIMIT) and a cursor (`after`, the last id of the previous page,
// for tasks; `offset` for the short lists of workflows, launchers and
// batch jobs), and each answer says whether more follow.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "copal/dbdir.h"
#include "copal/params.h"
#include "events.h"
#include "web.h"

extern char **environ;

// ------------------------------------------------------------ parameters

// 0 if every parameter of p is one of the NULL-terminated names.
int
web_only(const web_params *p, web_answer *a, const char *const *names)
{
	for (size_t i = 0; i < p->n; i++) {
		const char *const *n = names;
		while (*n && strcmp(*n, p->key[i]) != 0)
			n++;
		if (*n == NULL) {
			web_fail(a, 400, "unknown parameter %s", p->key[i]);
			return -1;
		}
	}
	return 0;
}

// An unsigned parameter within [lo, hi]; dflt when absent.
static int
num(const web_params *p, web_answer *a, const char *key, uint64_t lo,
    uint64_t hi, uint64_t dflt, uint64_t *out)
{
	const char *s = web_param(p, key);
	char *end;
	*out = dflt;
	if (s == NULL)
		return 0;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v < lo || v > hi) {
		web_fail(a, 400, "parameter %s: %s is not a number from %" PRIu64
		    " to %" PRIu64, key, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int
page(const web_params *p, web_answer *a, uint64_t *limit)
{
	return num(p, a, "limit", 1, WEB_MAX_LIMIT, WEB_DEF_LIMIT, limit);
}

// The broker refused or did not answer: 502 with its words.
void
web_broker_fail(web *w, web_answer *a)
{
	web_fail(a, cpl_client_err_remote(w->c) ? 409 : 502, "broker: %s",
	    cpl_client_errmsg(w->c));
}

static void
iso(uint64_t us, char *buf)
{
	fmt_time_iso(us, buf, 40);
}

static json_t *
task_row(const Copal__Task *t)
{
	const Copal__TaskSpec *sp = t->spec;
	const Copal__TaskStatus *s = t->status;
	char c[40];
	iso(s ? s->changed_us : 0, c);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}",
	    "id", (json_int_t)t->id, "uuid", t->uuid,
	    "name", sp ? sp->name : "", "workflow", sp ? sp->workflow : "",
	    "app", sp ? sp->application : "",
	    "state", cpl_state_name(s ? (int)s->state : 0) ?
	        cpl_state_name(s ? (int)s->state : 0) : "?",
	    "attempt", s ? (int)s->attempt : 0,
	    "return_code", s ? (int)s->return_code : 0, "changed", c);
}

// The last WEB_TAIL bytes of a task's output file, as valid UTF-8; ""
// when there is none.
static json_t *
out_tail(web *w, const Copal__Task *t)
{
	char rel[1024], nm[256], path[PATH_MAX + 300], buf[WEB_TAIL + 1];
	const Copal__TaskSpec *sp = t->spec;
	if (sp == NULL || cpl_workdir(sp->workflow, sp->name, t->uuid,
	        sp->workdir, rel, sizeof(rel)) != 0)
		return json_string("");
	cpl_path_component(nm, sizeof(nm), sp->name, "task");
	if (cpl_dbpath_file(w->db, CPL_DB_DATA_DIR, path, sizeof(path),
	        "%s/%s.out", rel, nm) != 0)
		return json_string("");
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	struct stat sb;
	if (fd < 0)
		return json_string("");
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return json_string("");
	}
	off_t off = sb.st_size > WEB_TAIL ? sb.st_size - WEB_TAIL : 0;
	ssize_t n = pread(fd, buf, WEB_TAIL, off);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	char *s = buf;
	if (off) // start at a character (and a line, if one begins soon)
		while (*s && ((unsigned char)*s & 0xC0) == 0x80)
			s++;
	for (char *q = s; *q; q++)
		if (*q == '\0')
			*q = '?';
	cpl_utf8_clean(s);
	return json_string(s);
}

// One task by uuid prefix (4 to 32 hex digits); NULL after a failure.
static Copal__Reply *
by_uuid(web *w, const web_params *p, web_answer *a)
{
	const char *u = web_param(p, "uuid");
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__Reply *rep;
	if (u == NULL || !is_uuid_prefix(u) || strlen(u) > 36) {
		web_fail(a, 400, "parameter uuid: needs a uuid or a prefix of "
		    "one (hex digits)");
		return NULL;
	}
	f.uuid_prefix = (char *)u;
	if (cpl_call_query(w->c, &f, 0, 2, true, &rep) != 0) {
		web_broker_fail(w, a);
		return NULL;
	}
	if (rep->query->n_tasks != 1) {
		web_fail(a, rep->query->n_tasks ? 400 : 404,
		    rep->query->n_tasks ? "uuid %s: more than one task" :
		                          "uuid %s: no such task", u);
		cpl_reply_free(rep);
		return NULL;
	}
	return rep;
}

// ------------------------------------------------------------ endpoints

static void
api_info(web *w, const web_params *p, web_answer *a)
{
	Copal__Reply *rep;
	char st[40];
	if (ONLY("_"))
		return;
	if (cpl_call_ping(w->c, &rep) != 0) {
		web_broker_fail(w, a);
		return;
	}
	const Copal__PingReply *r = rep->ping;
	iso(r->started_us, st);
	a->json = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:b, s:b, s:i}",
	    "db", w->db, "url", w->url, "version", r->version,
	    "broker_pid", (int)r->pid, "broker_started", st,
	    "now_us", (json_int_t)r->broker_time_us,
	    "allow_actions", w->allow_actions, "tls", w->tls,
	    "leases", (int)r->leases);
	cpl_reply_free(rep);
}

static void
api_counts(web *w, const web_params *p, web_answer *a)
{
	Copal__Reply *rep, *wrep;
	uint64_t limit, off;
	if (ONLY("limit", "offset") || page(p, a, &limit) ||
	    num(p, a, "offset", 0, UINT32_MAX, 0, &off))
		return;
	if (cpl_call_count(w->c, NULL, &rep) != 0) {
		web_broker_fail(w, a);
		return;
	}
	if (cpl_call_workflow_list(w->c, &wrep) != 0) {
		cpl_reply_free(rep); {
		web_broker_fail(w, a);
		return;
	}
	}
	json_t *bs = json_object();
	const Copal__CountReply *c = rep->count;
	for (size_t s = 1; s < CPL_NSTATES; s++)
		json_object_set_new(bs, cpl_state_name((int)s),
		    json_integer(s < c->n_by_state ? (json_int_t)c->by_state[s] :
		                                     0));
	json_t *wfs = json_array();
	const Copal__WorkflowListReply *wl = wrep->workflow_list;
	for (size_t i = off; i < wl->n_workflows && i < off + limit; i++)
		json_array_append_new(wfs, json_pack("{s:s, s:I}", "name",
		    wl->workflows[i]->name, "tasks",
		    (json_int_t)wl->workflows[i]->tasks));
	a->json = json_pack("{s:o, s:I, s:o, s:I, s:b}", "by_state", bs,
	    "total", (json_int_t)c->total, "workflows", wfs,
	    "n_workflows", (json_int_t)wl->n_workflows,
	    "more", off + limit < wl->n_workflows);
	cpl_reply_free(rep);
	cpl_reply_free(wrep);
}

static void
api_stats(web *w, const web_params *p, web_answer *a)
{
	const char *r = web_param(p, "range");
	if (ONLY("range"))
		return;
	if (r && strcmp(r, "all") != 0 && strcmp(r, "hour") != 0) {
		web_fail(a, 400, "parameter range: all or hour");
		return;
	}
	json_t *j = web_stats_get(w, r && strcmp(r, "hour") == 0);
	a->json = j ? j : json_pack("{s:b}", "loaded", 0);
}

static void
api_launchers(web *w, const web_params *p, web_answer *a)
{
	Copal__Reply *rep;
	uint64_t limit, off, now;
	if (ONLY("limit", "offset") || page(p, a, &limit) ||
	    num(p, a, "offset", 0, UINT32_MAX, 0, &off))
		return;
	if (ev_broker_now(w->c, &now) != 0 ||
	    cpl_call_lease_list(w->c, &rep) != 0) {
		web_broker_fail(w, a);
		return;
	}
	const Copal__LeaseListReply *l = rep->lease_list;
	json_t *arr = json_array();
	for (size_t i = off; i < l->n_leases && i < off + limit; i++) {
		const Copal__Lease *e = l->leases[i];
		// owner: "launcher HOST pid N ..." (launcher/src/comm.c)
		char host[128] = "";
		if (strncmp(e->owner, "launcher ", 9) == 0)
			snprintf(host, sizeof(host), "%.*s",
			    (int)strcspn(e->owner + 9, " "), e->owner + 9);
		json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:f, "
		    "s:f, s:i}", "id", (json_int_t)e->id, "owner", e->owner,
		    "host", host, "age_s", now > e->created_us ?
		        (double)(now - e->created_us) / 1e6 : 0.0,
		    "deadline_in_s", ((double)e->deadline_us - (double)now) / 1e6,
		    "tasks", (int)e->ntasks));
	}
	a->json = json_pack("{s:o, s:I, s:b}", "launchers", arr, "total",
	    (json_int_t)l->n_leases, "more", off + limit < l->n_leases);
	cpl_reply_free(rep);
}

static const char *
bj_state(int s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &copal__batch_job_state__descriptor, s);
	return v ? v->name + 3 : "?"; // BJ_QUEUED -> QUEUED
}

static void
api_jobs(web *w, const web_params *p, web_answer *a)
{
	Copal__Reply *rep;
	uint64_t limit, off;
	char sub[40];
	if (ONLY("limit", "offset") || page(p, a, &limit) ||
	    num(p, a, "offset", 0, UINT32_MAX, 0, &off))
		return;
	if (cpl_call_bjob_list(w->c, NULL, 0, &rep) != 0) {
		web_broker_fail(w, a);
		return;
	}
	const Copal__BatchJobListReply *l = rep->batch_list;
	json_t *arr = json_array();
	// newest first
	for (size_t k = off; k < l->n_jobs && k < off + limit; k++) {
		const Copal__BatchJob *j = l->jobs[l->n_jobs - 1 - k];
		iso(j->submitted_us, sub);
		json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s, "
		    "s:i, s:i, s:s, s:s, s:s, s:s}", "id", (json_int_t)j->id,
		    "scheduler", j->scheduler, "scheduler_id", j->scheduler_id,
		    "queue", j->queue, "nodes", (int)j->nodes,
		    "wall_minutes", (int)j->wall_minutes,
		    "state", bj_state(j->state), "sched_state", j->sched_state,
		    "message", j->message, "submitted", sub));
	}
	a->json = json_pack("{s:o, s:I, s:b}", "jobs", arr, "total",
	    (json_int_t)l->n_jobs, "more", off + limit < l->n_jobs);
	cpl_reply_free(rep);
}

// A page of tasks of f after `after`, as rows (tails: with output tails).
static void
task_page(web *w, const web_params *p, web_answer *a, Copal__Filter *f,
    bool tails)
{
	Copal__Reply *rep;
	uint64_t limit, after;
	if (page(p, a, &limit) ||
	    num(p, a, "after", 0, INT64_MAX, 0, &after))
		return;
	if (tails && limit > 100)
		limit = 100; // a file read each
	if (cpl_call_query(w->c, f, after, (uint32_t)limit, true, &rep) != 0) {
		web_broker_fail(w, a);
		return;
	}
	const Copal__QueryReply *q = rep->query;
	json_t *arr = json_array();
	uint64_t last = after;
	for (size_t i = 0; i < q->n_tasks; i++) {
		json_t *row = task_row(q->tasks[i]);
		if (tails)
			json_object_set_new(row, "tail", out_tail(w,
			    q->tasks[i]));
		json_array_append_new(arr, row);
		last = q->tasks[i]->id;
	}
	a->json = json_pack("{s:o, s:b, s:I}", "tasks", arr, "more",
	    q->more, "next", (json_int_t)last);
	cpl_reply_free(rep);
}

static void
api_failed(web *w, const web_params *p, web_answer *a)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__TaskState st = COPAL__TASK_STATE__STATE_FAILED;
	if (ONLY("limit", "after"))
		return;
	f.states = &st;
	f.n_states = 1;
	task_page(w, p, a, &f, true);
}

static void
api_search(web *w, const web_params *p, web_answer *a)
{
	Copal__Filter f = COPAL__FILTER__INIT;
	Copal__TaskState st;
	const char *u = web_param(p, "uuid"), *n = web_param(p, "name");
	const char *wf = web_param(p, "workflow"), *s = web_param(p, "state");
	char *tags[WEB_MAX_PARAMS], why[200];
	uint64_t bj;
	if (ONLY("uuid", "name", "workflow", "state", "tag", "batch_job",
	        "limit", "after"))
		return;
	// tag=key=value, repeatable: tasks carrying all (the broker's index)
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->key[i], "tag") != 0 || p->val[i][0] == '\0')
			continue;
		if (cpl_tag_check(p->val[i], why, sizeof(why)) != 0) {
			web_fail(a, 400, "parameter tag: %s", why);
			return;
		}
		tags[f.n_tags++] = p->val[i];
	}
	f.tags = f.n_tags ? tags : NULL;
	if (web_param(p, "batch_job") && *web_param(p, "batch_job")) {
		if (num(p, a, "batch_job", 1, UINT32_MAX, 0, &bj) != 0)
			return;
		f.batch_job_id = bj;
	}
	if (u && *u) {
		if (!is_uuid_prefix(u) || strlen(u) > 36) {
			web_fail(a, 400, "parameter uuid: hex digits "
			    "of a uuid");
			return;
		}
		f.uuid_prefix = (char *)u;
	}
	if (n && *n)
		f.name = (char *)n;
	if (wf && *wf)
		f.workflow = (char *)wf;
	if (s && *s) {
		if ((st = (Copal__TaskState)cpl_state_parse(s)) == 0) {
			web_fail(a, 400, "parameter state: %s is not a "
			    "state", s);
			return;
		}
		f.states = &st;
		f.n_states = 1;
	}
	f.all = true;
	task_page(w, p, a, &f, false);
}

static void
api_task(web *w, const web_params *p, web_answer *a)
{
	Copal__Reply *rep, *hrep;
	char t[40];
	if (ONLY("uuid") || (rep = by_uuid(w, p, a)) == NULL)
		return;
	const Copal__Task *tk = rep->query->tasks[0];
	if (cpl_call_history(w->c, tk->id, &hrep) != 0) {
		cpl_reply_free(rep); {
		web_broker_fail(w, a);
		return;
	}
	}
	json_t *o = task_row(tk);
	const Copal__TaskSpec *sp = tk->spec;
	json_object_set_new(o, "args", json_string(sp ? sp->args : ""));
	json_object_set_new(o, "tail", out_tail(w, tk));
	json_t *ev = json_array();
	const Copal__HistoryReply *h = hrep->history;
	// the newest WEB_MAX_LIMIT changes of a task that went round and round
	size_t from = h->n_events > WEB_MAX_LIMIT ?
	    h->n_events - WEB_MAX_LIMIT : 0;
	for (size_t i = from; i < h->n_events; i++) {
		const Copal__Event *e = h->events[i];
		iso(e->time_us, t);
		const char *fs = cpl_state_name((int)e->from_state);
		const char *ts = cpl_state_name((int)e->to_state);
		json_array_append_new(ev, json_pack("{s:s, s:s, s:s, s:i, "
		    "s:i, s:s, s:s, s:s, s:s, s:I, s:s}", "time", t,
		    "from", fs ? fs : "", "to", ts ? ts : "?",
		    "attempt", (int)e->attempt,
		    "return_code", (int)e->return_code,
		    "message", e->message, "node", e->node,
		    "launcher", e->launcher, "user", e->user ? e->user : "",
		    "batch_job", (json_int_t)e->batch_job_id,
		    "scheduler_job_id", e->scheduler_job_id ?
		        e->scheduler_job_id : ""));
	}
	json_object_set_new(o, "history", ev);
	json_object_set_new(o, "history_total",
	    json_integer((json_int_t)h->n_events));
	a->json = o;
	cpl_reply_free(rep);
	cpl_reply_free(hrep);
}

// A time parameter (ev_parse_time); dflt when absent.
int
web_when(web *w, const web_params *p, web_answer *a, const char *key,
    uint64_t now, uint64_t dflt, uint64_t *out)
{
	const char *s = web_param(p, key);
	(void)w;
	*out = dflt;
	if (s && ev_parse_time(s, now, out) != 0) {
		web_fail(a, 400, "parameter %s: %s is not a time "
		    "(2026-11-25T15:00:00Z, -10m, epoch seconds)", key, s);
		return -1;
	}
	return 0;
}

// `copal export` into a temporary file, answered as a download.
static void
api_export(web *w, const web_params *p, web_answer *a)
{
	static const char *const fmts[] = { "jsonl", "csv", "chrome", NULL };
	static const char *const ext[] = { "jsonl", "csv", "json" };
	const char *f = web_param(p, "format");
	const char *argv[16];
	char self[PATH_MAX], tmp[] = "/tmp/copal-web-XXXXXX";
	uint64_t t, now = 0;
	int n = 0, k;
	if (ONLY("format", "since", "until", "wf"))
		return;
	for (k = 0; f && fmts[k] && strcmp(fmts[k], f) != 0; k++)
		;
	if (f == NULL || fmts[k] == NULL) {
		web_fail(a, 400, "parameter format: jsonl, csv or "
		    "chrome");
		return;
	}
	if (ev_broker_now(w->c, &now) != 0) {
		web_broker_fail(w, a);
		return;
	}
	if (web_when(w, p, a, "since", now, 0, &t) ||
	    web_when(w, p, a, "until", now, 0, &t))
		return;
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0) {
		web_fail(a, 500, "cannot find the copal program");
		return;
	}
	self[sl] = '\0';
	int fd = mkstemp(tmp);
	if (fd < 0) {
		web_fail(a, 500, "cannot make a temporary file: %s",
		    strerror(errno));
		return;
	}
	argv[n++] = self;
	argv[n++] = "--db";
	argv[n++] = w->db;
	argv[n++] = "export";
	argv[n++] = "--format";
	argv[n++] = fmts[k];
	static const char *const keys[] = { "since", "until", "wf" };
	char opt[3][16];
	for (int i = 0; i < 3; i++) {
		const char *v = web_param(p, keys[i]);
		if (v && *v) {
			// an option's argument: "-10m" stays a value
			snprintf(opt[i], sizeof(opt[i]), "--%s", keys[i]);
			argv[n++] = opt[i];
			argv[n++] = v;
		}
	}
	argv[n++] = "-o";
	argv[n++] = tmp;
	argv[n] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int st = 0;
	int e = posix_spawn(&pid, self, &fa, NULL, (char *const *)argv,
	    environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e == 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	struct stat sb;
	if (e != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    fstat(fd, &sb) != 0) {
		close(fd);
		unlink(tmp); {
		web_fail(a, e ? 500 : 400, "copal export failed "
		    "(exit %d): see the parameters", WIFEXITED(st) ?
		    WEXITSTATUS(st) : -1);
		return;
	}
	}
	if ((uint64_t)sb.st_size > WEB_MAX_EXPORT) {
		close(fd);
		unlink(tmp); {
		web_fail(a, 400, "the export is %lld bytes, over %u: "
		    "narrow it (since, until, wf) or run copal export",
		    (long long)sb.st_size, WEB_MAX_EXPORT);
		return;
	}
	}
	a->body = xmalloc((size_t)sb.st_size + 1);
	ssize_t got = pread(fd, a->body, (size_t)sb.st_size, 0);
	close(fd);
	unlink(tmp);
	a->len = got > 0 ? (size_t)got : 0;
	a->type = k == 1 ? "text/csv; charset=utf-8" : k == 0 ?
	    "application/x-ndjson" : "application/json";
	snprintf(a->disposition, sizeof(a->disposition),
	    "attachment; filename=\"copal-export.%s\"", ext[k]);
}

static void
api_action(web *w, const web_params *p, web_answer *a, bool kill)
{
	Copal__Reply *rep, *r2;
	Copal__Filter f = COPAL__FILTER__INIT;
	if (ONLY("uuid"))
		return;
	if (!w->allow_actions) {
		web_fail(a, 403, "actions are off: start copal web "
		    "with --allow-actions");
		return;
	}
	if ((rep = by_uuid(w, p, a)) == NULL)
		return;
	uint64_t id = rep->query->tasks[0]->id;
	char uuid[40];
	snprintf(uuid, sizeof(uuid), "%s", rep->query->tasks[0]->uuid);
	cpl_reply_free(rep);
	f.ids = &id;
	f.n_ids = 1;
	int rv = kill ? cpl_call_kill(w->c, &f, false, &r2) :
	    cpl_call_modify(w->c, &f, "state", "RESTART_READY",
	        "restarted from copal web", &r2);
	if (rv != 0) {
		web_broker_fail(w, a);
		return;
	}
	a->json = json_pack("{s:s, s:s, s:I}", "uuid", uuid, "action",
	    kill ? "kill" : "restart", "changed", kill ?
	    (json_int_t)r2->kill->killed : (json_int_t)r2->modify->changed);
	cpl_reply_free(r2);
}

void
web_api(web *w, const char *method, const char *path, const web_params *p,
    web_answer *a)
{
	static const struct {
		const char *path;
		void (*fn)(web *, const web_params *, web_answer *);
	} gets[] = {
		{ "info", api_info }, { "counts", api_counts },
		{ "stats", api_stats }, { "launchers", api_launchers },
		{ "jobs", api_jobs }, { "failed", api_failed },
		{ "search", api_search }, { "task", api_task },
		{ "timeline", web_timeline }, { "export", api_export },
	};
	bool post = strcmp(method, "POST") == 0;
	if (strcmp(path, "kill") == 0 || strcmp(path, "restart") == 0) {
		if (!post) {
			web_fail(a, 405, "%s needs POST", path);
			return;
		}
		{
			api_action(w, p, a, path[0] == 'k');
			return;
		}
	}
	for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++)
		if (strcmp(gets[i].path, path) == 0) {
			if (post) {
				web_fail(a, 405, "%s needs GET", path);
				return;
			}
			{
				gets[i].fn(w, p, a);
				return;
			}
		}
	web_fail(a, 404, "no such endpoint: /api/%s", path);
}
