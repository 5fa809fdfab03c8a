// Submitting one launcher job (see copal/sched.h): the record in the
// broker first (its id names the script, qsubmit/qlaunch<id>.sh), then the
// script rendered from the database's template, then the scheduler; the
// record ends in QUEUED (or RUNNING, local) with the scheduler's id, or in
// SUBMIT_FAILED with the scheduler's own words.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/tmpl.h"
#include "internal.h"

#define MAX_TEMPLATE (1u << 20)

// ------------------------------------------------------------ helpers

// Words that go into job scripts unquoted: names of projects, queues,
// workflows.
static bool
safe_name(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 128)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || strchr("._@+-", *p)))
			return false;
	return true;
}

// Paths that go into job scripts unquoted (no %: Slurm and PBS expand
// %j and the like in output paths).
static bool
safe_path(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || strchr("._@+-/,=:", *p)))
			return false;
	return *s == '/';
}

static char *
read_file(const char *path, size_t max, char *why, size_t wl)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(why, wl, "template %.1024s: %.600s", path, strerror(errno));
		return NULL;
	}
	char *b = cpl_xcalloc(1, max + 1);
	size_t n = fread(b, 1, max + 1, fp);
	bool bad = ferror(fp);
	fclose(fp);
	if (bad || n > max) {
		snprintf(why, wl, "template %.600s: %.600s", path,
		    bad ? "read error" : "larger than 1 MB");
		free(b);
		return NULL;
	}
	b[n] = '\0';
	if (strlen(b) != n) {
		snprintf(why, wl, "template %.600s: contains a NUL byte", path);
		free(b);
		return NULL;
	}
	return b;
}

static int
write_script(const char *path, const char *text, char *why, size_t wl)
{
	char tmp[PATH_MAX + 128];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0) {
		snprintf(why, wl, "%.1024s: %.600s", tmp, strerror(errno));
		return -1;
	}
	size_t n = strlen(text), off = 0;
	while (off < n) {
		ssize_t k = write(fd, text + off, n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(why, wl, "%.1024s: %.600s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)k;
	}
	if (fchmod(fd, 0755) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(why, wl, "%.1024s: %.600s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

// The directory holding this copal program (job scripts put it first in
// PATH, so the job runs the same copal).
static int
copal_bin_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash == NULL || (size_t)(slash - exe) >= len)
		return -1;
	*slash = '\0';
	snprintf(buf, len, "%s", exe[0] ? exe : "/");
	return 0;
}

// The URL this job's launchers dial ("" when the broker has no TCP
// listener: they use the database's Unix socket). The ping says whether
// the running broker listens on TCP; its broker.addr (same pid) says where
// other hosts reach it (a wildcard bind replaced by a routable address, or
// broker_advertise). The URL goes into the script unquoted: checked.
static int
broker_url(cpl_client *c, const char *db, char *url, size_t len, char *why,
    size_t wl)
{
	Copal__Reply *rep = NULL;
	url[0] = '\0';
	int rv = sched_called(c, cpl_call_ping(c, &rep), why, wl);
	if (rv)
		return rv;
	const Copal__PingReply *p = rep->ping;
	const char *bound = NULL;
	for (size_t i = 0; i < p->n_listen_urls; i++)
		if (strncmp(p->listen_urls[i], "ipc://", 6) != 0)
			bound = p->listen_urls[i];
	cpl_broker_addr ba;
	if (bound && cpl_read_broker_addr(db, &ba) == 0 &&
	    ba.pid == (long)p->pid && ba.tcp[0])
		bound = ba.tcp;
	if (bound)
		snprintf(url, len, "%s", bound);
	copal__reply__free_unpacked(rep, NULL);
	for (const char *q = url; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		        (*q >= '0' && *q <= '9') || strchr("._-+:/[]", *q))) {
			snprintf(why, wl, "the broker's address %.400s has "
			    "characters a job script cannot take unquoted",
			    url);
			return CPL_EINVAL;
		}
	return 0;
}

// ------------------------------------------------------------ submit

// A database made before job templates existed has none: the default
// template of its scheduler is written where init would have put it (only
// there, and only when missing), and the user is told.
static void
restore_default_template(const char *db, const cpl_conf *conf,
    sched_say_fn warn)
{
	char dflt[PATH_MAX + 64], dir[PATH_MAX + 32];
	struct stat st;
	cpl_dbpath(db, CPL_DB_TMPL_DIR, dir, sizeof(dir));
	snprintf(dflt, sizeof(dflt), "%s/%s.tmpl", dir, conf->scheduler);
	const char *text = tmpl_default(conf->scheduler);
	if (strcmp(dflt, conf->job_template) != 0 || text == NULL ||
	    stat(dflt, &st) == 0 || errno != ENOENT)
		return;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return;
	char why[256];
	if (write_script(dflt, text, why, sizeof(why)) == 0 &&
	    chmod(dflt, 0644) == 0)
		warn("no %s: wrote copal's default template there (edit it "
		    "for your site)", dflt);
}

const char *
sched_launch_check(const cpl_conf *conf, const sched_launch_req *r, char *b,
    size_t len)
{
	bool local = strcmp(conf->scheduler, "local") == 0;
	if (r->nodes == 0 || r->nodes > 65535)
		return "nodes: 1..65535";
	if (r->minutes == 0 || r->minutes > 525600)
		return "wall time: 1..525600 minutes";
	if (strcmp(r->job_mode, "serial") && strcmp(r->job_mode, "mpi"))
		return "job mode: serial or mpi";
	if (!local && (r->project == NULL || r->project[0] == '\0'))
		return "a project is needed (-A PROJECT, or project in "
		       "copal.conf)";
	if (!local && (r->queue == NULL || r->queue[0] == '\0'))
		return "a queue is needed (-q QUEUE)";
	if (r->project && r->project[0] && !safe_name(r->project)) {
		snprintf(b, len, "project '%s': only letters, digits and . _ "
		    "@ + - (at most 128)", r->project);
		return b;
	}
	if (r->queue && r->queue[0] && !safe_name(r->queue)) {
		snprintf(b, len, "queue '%s': only letters, digits and . _ @ "
		    "+ - (at most 128)", r->queue);
		return b;
	}
	if (r->wf_filter && r->wf_filter[0] && !safe_name(r->wf_filter)) {
		snprintf(b, len, "workflow filter '%s': only letters, digits "
		    "and . _ @ + - (at most 128)", r->wf_filter);
		return b;
	}
	if (r->flags && strpbrk(r->flags, "\n\r")) 
		return "--sched-flags: one line";
	return NULL;
}

int
sched_launch(cpl_client *c, const char *db, const cpl_conf *conf,
    const sched_launch_req *r, sched_say_fn warn, Copal__BatchJob **out,
    char *why, size_t wl)
{
	char copal_bin[PATH_MAX], script[PATH_MAX + 64], output[PATH_MAX + 64];
	char tbuf[256];
	const char *bad;
	*out = NULL;
	if ((bad = sched_launch_check(conf, r, tbuf, sizeof(tbuf))) != NULL) {
		snprintf(why, wl, "%.600s", bad);
		return CPL_EINVAL;
	}
	const sched_ops *so = sched_find(conf->scheduler);
	if (so == NULL) {
		snprintf(why, wl, "scheduler %.600s unknown", conf->scheduler);
		return CPL_EINVAL;
	}
	if (copal_bin_dir(copal_bin, sizeof(copal_bin)) != 0) {
		snprintf(why, wl, "cannot find where the copal program is");
		return CPL_EINTERNAL;
	}
	if (!safe_path(db) || !safe_path(copal_bin)) {
		snprintf(why, wl, "the database path %.600s or copal's directory "
		    "%.600s has characters a job script cannot take unquoted "
		    "(use letters, digits and . _ - / + , = : @)", db,
		    copal_bin);
		return CPL_EINVAL;
	}
	// Launchers on other hosts cannot use the database's Unix socket: a
	// job of several nodes needs the broker's network listener (and a
	// job of one node may land on another host too: then the launcher
	// says why it cannot connect).
	char burl[512];
	int rv = broker_url(c, db, burl, sizeof(burl), why, wl);
	if (rv)
		return rv;
	if (burl[0] == '\0' && r->nodes > 1 && so != sched_find("local")) {
		static const char fmt[] = "a job of %u nodes needs the "
		    "broker's network listener: launchers on other hosts "
		    "cannot use the database's Unix socket. Set broker_tcp in "
		    "%.600s/copal.conf (e.g. tls+tcp://0.0.0.0:7555) and "
		    "restart the broker (copal server stop; copal server "
		    "start)%s";
		if (strcmp(conf->submit_without_tcp, "warn") != 0) {
			snprintf(why, wl, fmt, r->nodes, db, ", or set "
			    "submit_without_tcp = warn to submit it anyway");
			return CPL_EINVAL;
		}
		char w[1024];
		snprintf(w, sizeof(w), fmt, r->nodes, db, "");
		warn("%s", w);
	}
	restore_default_template(db, conf, warn);
	char *text = read_file(conf->job_template, MAX_TEMPLATE, why, wl);
	if (text == NULL)
		return CPL_ENOTFOUND;

	// the record first: its id names the script
	Copal__BatchJob j = COPAL__BATCH_JOB__INIT;
	Copal__Reply *rep = NULL;
	j.scheduler = (char *)conf->scheduler;
	j.project = (char *)(r->project ? r->project : "");
	j.queue = (char *)(r->queue ? r->queue : "");
	j.nodes = r->nodes;
	j.wall_minutes = r->minutes;
	j.job_mode = (char *)r->job_mode;
	j.wf_filter = (char *)(r->wf_filter ? r->wf_filter : "");
	j.sched_flags = (char *)(r->flags ? r->flags : "");
	j.origin = (char *)r->origin;
	rv = sched_called(c, cpl_call_bjob_add(c, &j, &rep), why, wl);
	if (rv) {
		free(text);
		return rv;
	}
	uint64_t id = rep->batch_add->job->id;
	copal__reply__free_unpacked(rep, NULL);

	cpl_dbpath_file(db, CPL_DB_QSUBMIT_DIR, script, sizeof(script),
	    "qlaunch%" PRIu64 ".sh", id);
	cpl_dbpath_file(db, CPL_DB_QSUBMIT_DIR, output, sizeof(output),
	    "qlaunch%" PRIu64 ".out", id);
	char sdir[PATH_MAX + 16];
	cpl_dbpath(db, CPL_DB_QSUBMIT_DIR, sdir, sizeof(sdir));
	if (mkdir(sdir, 0755) != 0 && errno != EEXIST) {
		snprintf(why, wl, "%.1024s: %.600s", sdir, strerror(errno));
		goto failed;
	}
	// the launcher ends a little before the job: the margin, but never
	// more than a quarter of the job
	unsigned wall_s = r->minutes * 60u;
	unsigned margin = conf->wall_time_margin_seconds;
	if (margin > wall_s / 4)
		margin = wall_s / 4;
	char s_id[24], s_nodes[16], s_min[16], s_hms[32], s_lmin[32],
	    s_name[160], s_wf[160], base[64];
	const char *b = strrchr(db, '/');
	snprintf(base, sizeof(base), "%s", b && b[1] ? b + 1 : "db");
	for (char *p = base; *p; p++)
		if (!strchr("._-", *p) && !((*p >= 'a' && *p <= 'z') ||
		        (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	snprintf(s_id, sizeof(s_id), "%" PRIu64, id);
	snprintf(s_nodes, sizeof(s_nodes), "%u", r->nodes);
	snprintf(s_min, sizeof(s_min), "%u", r->minutes);
	snprintf(s_hms, sizeof(s_hms), "%02u:%02u:00", r->minutes / 60,
	    r->minutes % 60);
	snprintf(s_lmin, sizeof(s_lmin), "%.2f",
	    (double)(wall_s - margin) / 60.0);
	snprintf(s_name, sizeof(s_name), "copal-%s-%s", base, s_id);
	if (r->wf_filter && r->wf_filter[0])
		snprintf(s_wf, sizeof(s_wf), "--wf-filter %s", r->wf_filter);
	else
		snprintf(s_wf, sizeof(s_wf), "--consume-all");
	const tmpl_var vars[] = {
		{ "job_name", s_name }, { "qlaunch_id", s_id },
		{ "project", j.project }, { "queue", j.queue },
		{ "nodes", s_nodes }, { "wall_minutes", s_min },
		{ "time_minutes", s_min }, { "wall_time_hms", s_hms },
		{ "launcher_minutes", s_lmin }, { "job_mode", r->job_mode },
		{ "wf_filter_opt", s_wf }, { "copal_bin", copal_bin },
		{ "db_path", db }, { "output", output }, { "script", script },
		{ "template", conf->job_template },
		{ "broker_url", burl },
	};
	char terr[512];
	char *rendered = tmpl_render(text, vars, sizeof(vars) / sizeof(vars[0]),
	    terr, sizeof(terr));
	if (rendered == NULL) {
		snprintf(why, wl, "template %.600s:%.600s", conf->job_template, terr);
		goto failed;
	}
	rv = write_script(script, rendered, why, wl);
	free(rendered);
	if (rv != 0)
		goto failed;
	char sid[128];
	// a template written before it named the job to its launchers
	// ({{ qlaunch_id }} in COPAL_BATCH_JOB_ID) still does through the
	// environment: sbatch passes it on, a local job inherits it
	setenv("COPAL_BATCH_JOB_ID", s_id, 1);
	if (sched_submit(so, script, output, r->flags,
	        conf->scheduler_timeout_seconds, sid, sizeof(sid), why,
	        wl) != 0)
		goto failed;
	free(text);
	// local jobs start at once
	Copal__BatchJobState st = so == sched_find("local") ? BJ(RUNNING) :
	                                                      BJ(QUEUED);
	char uwhy[512];
	if ((rv = sched_job_update(c, id, st, sid, NULL,
	         st == BJ(RUNNING) ? "running" : "submitted", script, out, uwhy,
	         sizeof(uwhy))) != 0) {
		snprintf(why, wl, "job %.600s was submitted as scheduler job %.600s, "
		    "but recording that failed: %.600s", s_id, sid, uwhy);
		return rv;
	}
	return 0;
failed:
	free(text);
	{
		char uwhy[256];
		sched_job_update(c, id, BJ(SUBMIT_FAILED), NULL, why, NULL, script, out,
		    uwhy, sizeof(uwhy));
	}
	return CPL_EINVAL;
}
