// What a task's stages do: its working directory, stage in and out, and
// the start of its preprocess, application, postprocess and handlers.
// What happens next, and what is reported, is task.c's business.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/params.h"
#include "launcher_impl.h"

// the failure message's output tail: at most this many lines
#define TAIL_LINES 12

static int
copy_file_mode(const char *src, const char *dst, mode_t mode)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rv = 0;
	if (in < 0)
		return errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0) {
		rv = errno;
		close(in);
		return rv;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				rv = errno;
				goto done;
			}
			off += w;
		}
	}
	if (n < 0)
		rv = errno;
done:
	close(in);
	if (close(out) != 0 && rv == 0)
		rv = errno;
	return rv;
}

static int
copy_file(const char *src, const char *dst)
{
	return copy_file_mode(src, dst, 0644);
}

// A local path of a stage-in entry: file:///p, local:/p (Balsam's
// protocol name) and a plain path are the same.
static const char *
strip_file_url(const char *u)
{
	if (strncmp(u, "file://", 7) == 0)
		return u + 7;
	if (strncmp(u, "local:", 6) == 0)
		return u + 6;
	return u;
}

// Copies the contents of directory src into directory dst (made if
// needed), recursively: files with their mode bits, symbolic links as
// links, subdirectories. Depth is bounded by the path buffers. Returns 0
// or an errno, with the path it failed on in bad.
static int
copy_tree(const char *src, const char *dst, char *bad, size_t badlen)
{
	DIR *d = opendir(src);
	int rv = 0;
	if (d == NULL) {
		snprintf(bad, badlen, "%s", src);
		return errno;
	}
	if (mkdir(dst, 0755) != 0 && errno != EEXIST) {
		rv = errno;
		snprintf(bad, badlen, "%s", dst);
		closedir(d);
		return rv;
	}
	struct dirent *e;
	while (rv == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char s[PATH_MAX], t[PATH_MAX];
		struct stat st;
		if (snprintf(s, sizeof(s), "%s/%s", src, e->d_name) >=
		        (int)sizeof(s) ||
		    snprintf(t, sizeof(t), "%s/%s", dst, e->d_name) >=
		        (int)sizeof(t)) {
			snprintf(bad, badlen, "%s/%s", src, e->d_name);
			rv = ENAMETOOLONG;
			break;
		}
		if (lstat(s, &st) != 0) {
			rv = errno;
		} else if (S_ISDIR(st.st_mode)) {
			rv = copy_tree(s, t, bad, badlen);
			continue; // bad is set by the call
		} else if (S_ISLNK(st.st_mode)) {
			char l[PATH_MAX];
			ssize_t n = readlink(s, l, sizeof(l) - 1);
			if (n < 0) {
				rv = errno;
			} else {
				l[n] = '\0';
				(void)unlink(t);
				if (symlink(l, t) != 0)
					rv = errno;
			}
		} else if (S_ISREG(st.st_mode)) {
			rv = copy_file_mode(s, t, st.st_mode & 0777);
		} // sockets, fifos, devices: not data
		if (rv)
			snprintf(bad, badlen, "%s", s);
	}
	closedir(d);
	return rv;
}

static int
mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	// usually only the leaf is new: one system call
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return errno;
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

// Whether dst is a symbolic link to src (linked by an earlier attempt, or
// matched by two patterns).
static bool
links_to(const char *dst, const char *src)
{
	char buf[8192];
	ssize_t n = readlink(dst, buf, sizeof(buf) - 1);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strcmp(buf, src) == 0;
}

// Links a parent's file into the task's directory. A name another
// parent's file (or a staged-in file) already has gets the parent's
// uuid prefix as a suffix, as Balsam does (square.dat_1a2b3c4d), and a
// line in note for the history. Returns 0 or an errno.
static int
link_input(ltask *t, const char *src, const char *puuid, bool *did,
    char *note, size_t notelen)
{
	const char *base = strrchr(src, '/') + 1;
	char dst[8192], alt[8300];
	snprintf(dst, sizeof(dst), "%s/%s", t->workdir, base);
	if (symlink(src, dst) == 0) {
		*did = true;
		return 0;
	}
	if (errno != EEXIST)
		return errno;
	if (links_to(dst, src))
		return 0;
	snprintf(alt, sizeof(alt), "%s_%.8s", dst, cpl_uuid_short(puuid));
	if (symlink(src, alt) != 0) {
		if (errno != EEXIST)
			return errno;
		if (links_to(alt, src))
			return 0;
		return EEXIST; // never silently without a parent's file
	}
	*did = true;
	size_t n = strlen(note);
	if (n < notelen)
		snprintf(note + n, notelen - n, "%s%s of parent %.8s linked as "
		    "%s_%.8s (the name was taken)", n ? "\n" : "", base, puuid,
		    base, cpl_uuid_short(puuid));
	return 0;
}

// Stage in: copy each path or file:// URL of stage_in_url (space
// separated, globs allowed) into the task's directory, and link parents'
// outputs that match input_files. Returns 0 or fills err.
int
stage_in(launcher *L, ltask *t, char *err, size_t errlen, bool *did,
    char *note, size_t notelen)
{
	note[0] = '\0';
	const Copal__TaskSpec *sp = t->ct->task->spec;
	char list[8192];
	*did = false;
	if (sp->stage_in_url && sp->stage_in_url[0]) {
		snprintf(list, sizeof(list), "%s", sp->stage_in_url);
		for (char *save, *tok = strtok_r(list, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save)) {
			glob_t g;
			const char *pat = strip_file_url(tok);
			if (strstr(tok, "://") && strncmp(tok, "file://", 7)) {
				snprintf(err, errlen,
				    "stage in: %s: only local paths, local: and "
				    "file:// URLs are supported", tok);
				return -1;
			}
			if (glob(pat, 0, NULL, &g) != 0) {
				snprintf(err, errlen, "stage in: %s: no such file",
				    pat);
				return -1;
			}
			for (size_t i = 0; i < g.gl_pathc; i++) {
				const char *base = strrchr(g.gl_pathv[i], '/');
				char dst[8192];
				base = base ? base + 1 : g.gl_pathv[i];
				snprintf(dst, sizeof(dst), "%s/%s", t->workdir, base);
				struct stat st;
				char bad[PATH_MAX];
				int e;
				snprintf(bad, sizeof(bad), "%s", g.gl_pathv[i]);
				if (stat(g.gl_pathv[i], &st) == 0 &&
				    S_ISDIR(st.st_mode)) {
					// a directory named as such brings its
					// contents (Balsam); one a pattern
					// matched comes as itself
					bool whole = !strpbrk(pat, "*?[");
					e = copy_tree(g.gl_pathv[i],
					    whole ? t->workdir : dst, bad,
					    sizeof(bad));
				} else {
					e = copy_file(g.gl_pathv[i], dst);
				}
				if (e) {
					snprintf(err, errlen, "stage in: %s: %s",
					    bad, strerror(e));
					globfree(&g);
					return -1;
				}
				*did = true;
			}
			globfree(&g);
		}
	}
	// parents' outputs that match input_files are linked in
	for (size_t p = 0; p < t->ct->n_parent_dirs; p++) {
		for (size_t k = 0; k < sp->n_input_files; k++) {
			char pat[8192];
			glob_t g;
			if (cpl_dbpath_file(L->db, CPL_DB_DATA_DIR, pat,
			        sizeof(pat), "%s/%s", t->ct->parent_dirs[p],
			        sp->input_files[k]) != 0 ||
			    glob(pat, 0, NULL, &g) != 0)
				continue;
			for (size_t i = 0; i < g.gl_pathc; i++) {
				const char *pu = p < t->ct->n_parent_uuids ?
				    t->ct->parent_uuids[p] : "";
				int e = link_input(t, g.gl_pathv[i], pu, did,
				    note, notelen);
				if (e) {
					snprintf(err, errlen, "link %s: %s",
					    g.gl_pathv[i], strerror(e));
					globfree(&g);
					return -1;
				}
			}
			globfree(&g);
		}
	}
	return 0;
}

// Stage out: copy files matching stage_out_files to stage_out_url
// (without one they stay where they are).
int
stage_out(ltask *t, char *err, size_t errlen)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	char list[8192];
	if (!sp->stage_out_files || !sp->stage_out_files[0])
		return 0;
	// no destination: the files stay in the working directory (Balsam)
	if (!sp->stage_out_url || !sp->stage_out_url[0])
		return 0;
	const char *dest = strip_file_url(sp->stage_out_url);
	if (strstr(sp->stage_out_url, "://") &&
	    strncmp(sp->stage_out_url, "file://", 7)) {
		snprintf(err, errlen, "stage out: %s: only local paths and "
		    "file:// URLs are supported", sp->stage_out_url);
		return -1;
	}
	int e = mkdir_p(dest);
	if (e) {
		snprintf(err, errlen, "stage out: %s: %s", dest, strerror(e));
		return -1;
	}
	snprintf(list, sizeof(list), "%s", sp->stage_out_files);
	for (char *save, *tok = strtok_r(list, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		char pat[8192];
		glob_t g;
		// patterns name files of the workdir, nothing above it
		if (!cpl_path_inside(tok)) {
			snprintf(err, errlen, "stage out: %s: a pattern must be "
			    "relative to the task's directory, without ..", tok);
			return -1;
		}
		snprintf(pat, sizeof(pat), "%s/%s", t->workdir, tok);
		if (glob(pat, 0, NULL, &g) != 0)
			continue;
		for (size_t i = 0; i < g.gl_pathc; i++) {
			const char *base = strrchr(g.gl_pathv[i], '/') + 1;
			char dst[8192];
			snprintf(dst, sizeof(dst), "%s/%s", dest, base);
			if ((e = copy_file(g.gl_pathv[i], dst)) != 0) {
				snprintf(err, errlen, "stage out: %s: %s",
				    g.gl_pathv[i], strerror(e));
				globfree(&g);
				return -1;
			}
		}
		globfree(&g);
	}
	return 0;
}

// Returns 0, -1 for a working directory that cpl_workdir refuses, or the
// errno of making it.
int
stage_workdir(launcher *L, ltask *t)
{
	char rel[1024];
	const Copal__TaskSpec *sp = t->ct->task->spec;
	int rv = cpl_workdir(sp->workflow, sp->name, t->uuid, sp->workdir, rel,
	    sizeof(rel));
	if (rv != 0) {
		cpl_dbpath(L->db, CPL_DB_DATA_DIR, t->workdir,
		    sizeof(t->workdir));
		snprintf(t->outpath, sizeof(t->outpath), "/dev/null");
		return -1;
	}
	cpl_dbpath_file(L->db, CPL_DB_DATA_DIR, t->workdir, sizeof(t->workdir),
	    "%s", rel);
	// the name as one component: a name such as ../../X or /abs does
	// not take the output file out of the workdir
	char nm[256];
	cpl_path_component(nm, sizeof(nm), sp->name, "task");
	snprintf(t->outpath, sizeof(t->outpath), "%s/%s.out", t->workdir, nm);
	// usually only the leaf is new, and then there is no output file
	// yet: proc_spawn need not look (one stat less per task)
	int e = 0;
	if (mkdir(t->workdir, 0755) == 0)
		t->out_new = true;
	else if (errno != EEXIST)
		e = mkdir_p(t->workdir);
	if (e)
		snprintf(t->outpath, sizeof(t->outpath), "/dev/null");
	return e;
}

static bool
set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

const char *
task_preprocess(const ltask *t)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	return set(sp->preprocess) ? sp->preprocess : t->ct->app->preprocess;
}

const char *
task_postprocess(const ltask *t)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	return set(sp->postprocess) ? sp->postprocess : t->ct->app->postprocess;
}

int
stage_command(launcher *L, ltask *t, char *cmd, size_t len)
{
	const Copal__TaskSpec *sp = t->ct->task->spec;
	const Copal__Resources *res = sp->resources;
	char base[16384], app[16384];
	// a task's direct command is run instead of its app's executable; a
	// parameterized app's template is rendered with the task's values
	// (checked at creation; an app replaced since may not fit them)
	if (set(sp->command))
		snprintf(app, sizeof(app), "%s", sp->command);
	else if (cpl_cmd_render(t->ct->app, sp, app, sizeof(app)) != 0)
		return -2;
	if (snprintf(base, sizeof(base), "%s%s%s", app,
	        sp->args && sp->args[0] ? " " : "",
	        sp->args ? sp->args : "") >= (int)sizeof(base))
		return -2;
	uint32_t rpn = res && res->ranks_per_node ? res->ranks_per_node : 1;
	uint32_t tpr = res && res->threads_per_rank ? res->threads_per_rank : 1;
	uint32_t nn = (uint32_t)t->nnodes;
	if (L->o->mode == MODE_MPI &&
	    (nn > 1 || rpn > 1 || sp->n_launch_params)) {
		char *hosts[4096];
		for (uint32_t i = 0; i < nn && i < 4096; i++)
			hosts[i] = L->nodes[t->nodes[i]].name;
		if (mpi_render_lp(L->o->mpi_template, nn * rpn, rpn, nn, tpr,
		        hosts, base, sp->launch_params, sp->n_launch_params, cmd,
		        len) != 0)
			return -1;
	} else {
		snprintf(cmd, len, "%s", base);
	}
	return 0;
}

int
stage_start_pre(launcher *L, ltask *t)
{
	return proc_spawn(L, t, task_preprocess(t),
	    "COPAL_STAGE=preprocess", NULL);
}

int
stage_start_run(launcher *L, ltask *t, const char *cmd)
{
	return proc_spawn(L, t, cmd, NULL, NULL);
}

int
stage_start_post(launcher *L, ltask *t)
{
	return proc_spawn(L, t, task_postprocess(t),
	    "COPAL_STAGE=postprocess", NULL);
}

int
stage_start_handler(launcher *L, ltask *t)
{
	// the handler is the postprocess, told why it runs
	// (not COPAL_TIMEOUT: that is the CLI's client timeout, and the
	// handler may well call copal)
	const char *flag = t->after == CPL_RUN_ERROR ? "COPAL_ERROR=1" :
	                                               "COPAL_TIMED_OUT=1";
	return proc_spawn(L, t, task_postprocess(t), flag,
	    "COPAL_STAGE=handler");
}

// The last lines of a task's output, for the history message.
void
output_tail(ltask *t, char *buf, size_t len)
{
	buf[0] = '\0';
	int fd = open(t->outpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > TAIL_BYTES ? end - TAIL_BYTES : 0;
	// only the current stage's own output: not earlier attempts' lines
	if (from < (off_t)t->out_from)
		from = (off_t)t->out_from;
	if (from >= end) {
		close(fd);
		return;
	}
	char tmp[TAIL_BYTES + 1];
	ssize_t n = pread(fd, tmp, TAIL_BYTES, from);
	close(fd);
	if (n <= 0)
		return;
	tmp[n] = '\0';
	// keep the last TAIL_LINES lines
	char *p = tmp + n;
	int lines = 0;
	if (p > tmp && p[-1] == '\n')
		p--;
	while (p > tmp && lines < TAIL_LINES) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (*p == '\n')
		p++;
	for (char *q = p; *q; q++) // keep the message valid text
		if ((unsigned char)*q < 0x20 && *q != '\n' && *q != '\t')
			*q = '?';
	// any bytes a program wrote, and a start that may fall inside a
	// character: valid UTF-8 before it goes into a report, cut whole
	cpl_utf8_clean(p);
	size_t n2 = strlen(p);
	if (n2 >= len)
		n2 = cpl_utf8_cut(p, len - 1);
	memcpy(buf, p, n2);
	buf[n2] = '\0';
}
