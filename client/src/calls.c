// The typed calls: one per request body of copal.proto. Each wraps its
// arguments in a copal.Request on the stack (pointing at the caller's data,
// nothing copied) and leaves the sending, the retries and the folding of
// the reply's status to cpl__call_typed.
#include "copal/client.h"
#include "internal.h"

// cpl__call_typed checks a reply's body against the request's by number:
// the two oneofs of copal.proto use the same field numbers.
#define SAME_BODY(X)                                                         \
	_Static_assert((int)COPAL__REQUEST__BODY_##X ==                      \
	        (int)COPAL__REPLY__BODY_##X, "body numbers of " #X)
SAME_BODY(CREATE);
SAME_BODY(CLAIM);
SAME_BODY(REPORT);
SAME_BODY(HEARTBEAT);
SAME_BODY(QUERY);
SAME_BODY(COUNT);
SAME_BODY(MODIFY);
SAME_BODY(DELETE);
SAME_BODY(KILL);
SAME_BODY(ADD_DEPENDENCY);
SAME_BODY(HISTORY);
SAME_BODY(EXPORT);
SAME_BODY(APP_REGISTER);
SAME_BODY(APP_LIST);
SAME_BODY(APP_DELETE);
SAME_BODY(PING);
SAME_BODY(WORKFLOW_LIST);
SAME_BODY(LEASE_LIST);
SAME_BODY(BATCH_ADD);
SAME_BODY(BATCH_UPDATE);
SAME_BODY(BATCH_LIST);
SAME_BODY(BACKLOG);
SAME_BODY(ARCHIVE_PICK);
SAME_BODY(ARCHIVE);

// The generated structs hold non-const pointers; packing only reads them.
#define UNCONST(T, p) ((T *)(uintptr_t)(p))

int
cpl_call_create_tasks(cpl_client *c, const Copal__CreateTasksRequest *body,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_CREATE;
	req.create = UNCONST(Copal__CreateTasksRequest, body);
	return cpl__call_typed(c, &req, body, 0, rep);
}

int
cpl_call_claim(cpl_client *c, const Copal__ClaimRequest *body,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_CLAIM;
	req.claim = UNCONST(Copal__ClaimRequest, body);
	return cpl__call_typed(c, &req, body, 0, rep);
}

int
cpl_call_report(cpl_client *c, uint64_t lease_id,
    Copal__StateReport *const *reports, size_t n, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__ReportRequest r = COPAL__REPORT_REQUEST__INIT;
	r.lease_id = lease_id;
	r.n_reports = n;
	r.reports = UNCONST(Copal__StateReport *, reports);
	req.body_case = COPAL__REQUEST__BODY_REPORT;
	req.report = &r;
	return cpl__call_typed(c, &req, &r, 0, rep);
}

int
cpl_call_heartbeat(cpl_client *c, uint64_t lease_id, const char *owner,
    uint32_t ttl_ms, bool release, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.lease_id = lease_id;
	if (owner)
		hb.owner = UNCONST(char, owner);
	hb.ttl_ms = ttl_ms;
	hb.release = release;
	req.body_case = COPAL__REQUEST__BODY_HEARTBEAT;
	req.heartbeat = &hb;
	return cpl__call_typed(c, &req, &hb, 0, rep);
}

int
cpl_call_heartbeat_job(cpl_client *c, uint64_t lease_id, const char *owner,
    uint32_t ttl_ms, bool release, uint64_t batch_job_id,
    const char *scheduler_job_id, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__HeartbeatRequest hb = COPAL__HEARTBEAT_REQUEST__INIT;
	hb.lease_id = lease_id;
	if (owner)
		hb.owner = UNCONST(char, owner);
	hb.ttl_ms = ttl_ms;
	hb.release = release;
	hb.batch_job_id = batch_job_id;
	if (scheduler_job_id)
		hb.scheduler_job_id = UNCONST(char, scheduler_job_id);
	req.body_case = COPAL__REQUEST__BODY_HEARTBEAT;
	req.heartbeat = &hb;
	return cpl__call_typed(c, &req, &hb, 0, rep);
}

int
cpl_call_query(cpl_client *c, const Copal__Filter *filter, uint64_t after_id,
    uint32_t limit, bool with_spec, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__QueryRequest q = COPAL__QUERY_REQUEST__INIT;
	q.filter = UNCONST(Copal__Filter, filter);
	q.after_id = after_id;
	q.limit = limit;
	q.with_spec = with_spec;
	req.body_case = COPAL__REQUEST__BODY_QUERY;
	req.query = &q;
	return cpl__call_typed(c, &req, &q, 0, rep);
}

int
cpl_call_count(cpl_client *c, const Copal__Filter *filter, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__CountRequest cr = COPAL__COUNT_REQUEST__INIT;
	cr.filter = UNCONST(Copal__Filter, filter);
	req.body_case = COPAL__REQUEST__BODY_COUNT;
	req.count = &cr;
	return cpl__call_typed(c, &req, &cr, 0, rep);
}

int
cpl_call_modify(cpl_client *c, const Copal__Filter *filter, const char *field,
    const char *value, const char *message, Copal__Reply **rep)
{
	return cpl_call_modify_held(c, filter, field, value, message, 0, rep);
}

static int
modify_call(cpl_client *c, const Copal__Filter *filter, const char *field,
    const char *value, const char *message, uint64_t lease, bool recursive,
    Copal__Reply **rep);

int
cpl_call_modify_held(cpl_client *c, const Copal__Filter *filter,
    const char *field, const char *value, const char *message, uint64_t lease,
    Copal__Reply **rep)
{
	return modify_call(c, filter, field, value, message, lease, false, rep);
}

int
cpl_call_modify_recursive(cpl_client *c, const Copal__Filter *filter,
    const char *field, const char *value, const char *message, bool recursive,
    Copal__Reply **rep)
{
	return modify_call(c, filter, field, value, message, 0, recursive, rep);
}

static int
modify_call(cpl_client *c, const Copal__Filter *filter, const char *field,
    const char *value, const char *message, uint64_t lease, bool recursive,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__ModifyRequest mr = COPAL__MODIFY_REQUEST__INIT;
	mr.filter = UNCONST(Copal__Filter, filter);
	if (field)
		mr.field = UNCONST(char, field);
	if (value)
		mr.value = UNCONST(char, value);
	if (message)
		mr.message = UNCONST(char, message);
	mr.lease_id = lease;
	mr.recursive = recursive;
	req.body_case = COPAL__REQUEST__BODY_MODIFY;
	req.modify = &mr;
	return cpl__call_typed(c, &req, &mr, 0, rep);
}

int
cpl_call_delete(cpl_client *c, const Copal__Filter *filter, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__DeleteRequest dr = COPAL__DELETE_REQUEST__INIT;
	dr.filter = UNCONST(Copal__Filter, filter);
	req.body_case = COPAL__REQUEST__BODY_DELETE;
	req.delete_ = &dr;
	return cpl__call_typed(c, &req, &dr, 0, rep);
}

int
cpl_call_kill(cpl_client *c, const Copal__Filter *filter, bool recursive,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__KillRequest kr = COPAL__KILL_REQUEST__INIT;
	kr.filter = UNCONST(Copal__Filter, filter);
	kr.recursive = recursive;
	req.body_case = COPAL__REQUEST__BODY_KILL;
	req.kill = &kr;
	return cpl__call_typed(c, &req, &kr, 0, rep);
}

int
cpl_call_add_dependency(cpl_client *c, uint64_t parent_id, uint64_t child_id,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__AddDependencyRequest ad = COPAL__ADD_DEPENDENCY_REQUEST__INIT;
	ad.parent_id = parent_id;
	ad.child_id = child_id;
	req.body_case = COPAL__REQUEST__BODY_ADD_DEPENDENCY;
	req.add_dependency = &ad;
	return cpl__call_typed(c, &req, &ad, 0, rep);
}

int
cpl_call_dep_remove(cpl_client *c, uint64_t parent_id, uint64_t child_id,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__AddDependencyRequest ad = COPAL__ADD_DEPENDENCY_REQUEST__INIT;
	ad.parent_id = parent_id;
	ad.child_id = child_id;
	ad.remove = true;
	req.body_case = COPAL__REQUEST__BODY_ADD_DEPENDENCY;
	req.add_dependency = &ad;
	return cpl__call_typed(c, &req, &ad, 0, rep);
}

int
cpl_call_dep_replace(cpl_client *c, uint64_t child_id, const uint64_t *ids,
    size_t n, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__AddDependencyRequest ad = COPAL__ADD_DEPENDENCY_REQUEST__INIT;
	ad.child_id = child_id;
	ad.replace = true;
	ad.parent_ids = (uint64_t *)ids;
	ad.n_parent_ids = n;
	req.body_case = COPAL__REQUEST__BODY_ADD_DEPENDENCY;
	req.add_dependency = &ad;
	return cpl__call_typed(c, &req, &ad, 0, rep);
}

int
cpl_call_history(cpl_client *c, uint64_t task_id, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__HistoryRequest hr = COPAL__HISTORY_REQUEST__INIT;
	hr.task_id = task_id;
	req.body_case = COPAL__REQUEST__BODY_HISTORY;
	req.history = &hr;
	return cpl__call_typed(c, &req, &hr, 0, rep);
}

int
cpl_call_export(cpl_client *c, const Copal__ExportRequest *body,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_EXPORT;
	req.export = UNCONST(Copal__ExportRequest, body);
	return cpl__call_typed(c, &req, body, 0, rep);
}

int
cpl_call_app_register(cpl_client *c, const Copal__App *app, bool replace,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__AppRegisterRequest ar = COPAL__APP_REGISTER_REQUEST__INIT;
	ar.app = UNCONST(Copal__App, app);
	ar.replace = replace;
	req.body_case = COPAL__REQUEST__BODY_APP_REGISTER;
	req.app_register = &ar;
	return cpl__call_typed(c, &req, &ar, 0, rep);
}

int
cpl_call_app_list(cpl_client *c, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__AppListRequest al = COPAL__APP_LIST_REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_APP_LIST;
	req.app_list = &al;
	return cpl__call_typed(c, &req, &al, 0, rep);
}

int
cpl_call_app_delete(cpl_client *c, const char *name, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__AppDeleteRequest ad = COPAL__APP_DELETE_REQUEST__INIT;
	if (name)
		ad.name = UNCONST(char, name);
	req.body_case = COPAL__REQUEST__BODY_APP_DELETE;
	req.app_delete = &ad;
	return cpl__call_typed(c, &req, &ad, 0, rep);
}

static int
ping(cpl_client *c, int once_ms, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__PingRequest pr = COPAL__PING_REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_PING;
	req.ping = &pr;
	return cpl__call_typed(c, &req, &pr, once_ms, rep);
}

int
cpl_call_ping(cpl_client *c, Copal__Reply **rep)
{
	return ping(c, 0, rep);
}

int
cpl_call_ping_once(cpl_client *c, int timeout_ms, Copal__Reply **rep)
{
	// 0 would mean "the client's attempts": one attempt it is
	return ping(c, timeout_ms > 0 ? timeout_ms : 1, rep);
}

int
cpl_call_workflow_list(cpl_client *c, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__WorkflowListRequest wl = COPAL__WORKFLOW_LIST_REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_WORKFLOW_LIST;
	req.workflow_list = &wl;
	return cpl__call_typed(c, &req, &wl, 0, rep);
}

int
cpl_call_lease_list(cpl_client *c, Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__LeaseListRequest ll = COPAL__LEASE_LIST_REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_LEASE_LIST;
	req.lease_list = &ll;
	return cpl__call_typed(c, &req, &ll, 0, rep);
}

int
cpl_call_bjob_add(cpl_client *c, const Copal__BatchJob *job,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__BatchJobAddRequest ar = COPAL__BATCH_JOB_ADD_REQUEST__INIT;
	ar.job = UNCONST(Copal__BatchJob, job);
	req.body_case = COPAL__REQUEST__BODY_BATCH_ADD;
	req.batch_add = &ar;
	return cpl__call_typed(c, &req, &ar, 0, rep);
}

int
cpl_call_bjob_update(cpl_client *c, const Copal__BatchJobUpdateRequest *body,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_BATCH_UPDATE;
	req.batch_update = UNCONST(Copal__BatchJobUpdateRequest, body);
	return cpl__call_typed(c, &req, body, 0, rep);
}

int
cpl_call_bjob_list(cpl_client *c, const Copal__BatchJobState *states, size_t n,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	Copal__BatchJobListRequest l = COPAL__BATCH_JOB_LIST_REQUEST__INIT;
	l.states = UNCONST(Copal__BatchJobState, states);
	l.n_states = n;
	req.body_case = COPAL__REQUEST__BODY_BATCH_LIST;
	req.batch_list = &l;
	return cpl__call_typed(c, &req, &l, 0, rep);
}

int
cpl_call_backlog(cpl_client *c, const Copal__BacklogRequest *body,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_BACKLOG;
	req.backlog = UNCONST(Copal__BacklogRequest, body);
	return cpl__call_typed(c, &req, body, 0, rep);
}

int
cpl_call_archive_pick(cpl_client *c, const Copal__ArchivePickRequest *body,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_ARCHIVE_PICK;
	req.archive_pick = UNCONST(Copal__ArchivePickRequest, body);
	return cpl__call_typed(c, &req, body, 0, rep);
}

int
cpl_call_archive(cpl_client *c, const Copal__ArchiveRequest *body,
    Copal__Reply **rep)
{
	Copal__Request req = COPAL__REQUEST__INIT;
	req.body_case = COPAL__REQUEST__BODY_ARCHIVE;
	req.archive = UNCONST(Copal__ArchiveRequest, body);
	return cpl__call_typed(c, &req, body, 0, rep);
}
