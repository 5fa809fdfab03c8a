// The schedulers (see copal/sched.h): what copal runs to submit, watch and
// cancel a job on each, and the readers of what those commands answer.
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

// ------------------------------------------------------------ schedulers

typedef int (*status_fn)(sched_state *v, size_t n, unsigned t, char *why,
    size_t wl);

struct sched_ops {
	const char *name;
	const char *submit;  // submit command; NULL: local
	const char *cancel;
	status_fn status;
};

static int slurm_status(sched_state *, size_t, unsigned, char *, size_t);
static int pbs_status(sched_state *, size_t, unsigned, char *, size_t);
static int cobalt_status(sched_state *, size_t, unsigned, char *, size_t);
static int local_status(sched_state *, size_t, unsigned, char *, size_t);

static const sched_ops scheds[] = {
	{ "local", NULL, NULL, local_status },
	{ "slurm", "sbatch", "scancel", slurm_status },
	{ "pbs", "qsub", "qdel", pbs_status },
	{ "cobalt", "qsub", "qdel", cobalt_status },
};

const sched_ops *
sched_find(const char *name)
{
	for (size_t i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++)
		if (strcmp(scheds[i].name, name) == 0)
			return &scheds[i];
	return NULL;
}

const char *
sched_name(const sched_ops *s)
{
	return s->name;
}

static const char *
user_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	return pw ? pw->pw_name : "root";
}

// ------------------------------------------------------------ submit

int
sched_parse_submit(const char *sched, const char *text, char *id, size_t len)
{
	// the last line that starts with a digit: sbatch --parsable prints
	// "123" or "123;cluster", qsub "123.server" (PBS) or "123" (Cobalt,
	// possibly after notices)
	const char *best = NULL;
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		while (*l == ' ' || *l == '\t')
			l++;
		if (isdigit((unsigned char)*l))
			best = l;
	}
	if (best == NULL)
		return -1;
	size_t n = 0;
	bool pbs = strcmp(sched, "pbs") == 0;
	while (best[n] && (isalnum((unsigned char)best[n]) ||
	           (pbs && (best[n] == '.' || best[n] == '-' || best[n] == '_'))))
		n++;
	if (n == 0 || n >= len)
		return -1;
	if (!pbs)
		for (size_t i = 0; i < n; i++)
			if (!isdigit((unsigned char)best[i]))
				return -1;
	memcpy(id, best, n);
	id[n] = '\0';
	return 0;
}

static size_t
split_words(char *s, char **v, size_t max)
{
	size_t n = 0;
	for (char *save = NULL, *w = strtok_r(s, " \t\n", &save);
	     w && n < max; w = strtok_r(NULL, " \t\n", &save))
		v[n++] = w;
	return n;
}

#define MAX_FLAGS 64

static int
local_submit(const char *script, const char *output, unsigned t, char *id,
    size_t idlen, char *why, size_t wl)
{
	// sh starts the script in the background and prints its pid; setsid
	// (not a group leader there, so it does not fork) makes the script
	// the leader of a session of its own, so that cancelling can signal
	// the whole job, as a scheduler would.
	char *argv[] = { (char *)"/bin/sh", (char *)"-c",
		(char *)"setsid bash \"$0\" >>\"$1\" 2>&1 </dev/null & echo $!",
		(char *)script, (char *)output, NULL };
	sched_cmd r;
	int rc = sched_exec(argv, t, &r);
	if (rc != 0 || sched_parse_submit("local", r.out, id, idlen) != 0) {
		sched_cmd_explain("sh (local job start)", &r, why, wl);
		sched_cmd_free(&r);
		return -1;
	}
	sched_cmd_free(&r);
	return 0;
}

int
sched_submit(const sched_ops *s, const char *script, const char *output,
    const char *flags, unsigned t, char *id, size_t idlen, char *why,
    size_t wl)
{
	if (s->submit == NULL) {
		if (flags && flags[0]) {
			snprintf(why, wl, "the local scheduler takes no "
			    "--sched-flags");
			return -1;
		}
		return local_submit(script, output, t, id, idlen, why, wl);
	}
	char *fl = cpl_xstrdup(flags ? flags : "");
	char *argv[MAX_FLAGS + 4];
	size_t n = 0;
	argv[n++] = (char *)s->submit;
	if (strcmp(s->name, "slurm") == 0)
		argv[n++] = (char *)"--parsable";
	size_t nf = split_words(fl, argv + n, MAX_FLAGS);
	if (nf == MAX_FLAGS) {
		free(fl);
		snprintf(why, wl, "more than %d words in --sched-flags",
		    MAX_FLAGS - 1);
		return -1;
	}
	n += nf;
	argv[n++] = (char *)script;
	argv[n] = NULL;
	sched_cmd r;
	int rc = sched_exec(argv, t, &r);
	if (rc != 0) {
		sched_cmd_explain(s->submit, &r, why, wl);
	} else if (sched_parse_submit(s->name, r.out, id, idlen) != 0) {
		char said[512];
		sched_one_line(r.out, said, sizeof(said));
		snprintf(why, wl, "%s printed no job id: '%s'", s->submit,
		    said);
		rc = -1;
	}
	sched_cmd_free(&r);
	free(fl);
	return rc;
}

// ------------------------------------------------------------ status

// v[i] whose id matches (PBS: the part before the first '.' is enough:
// qstat shortens "123.server.domain" to "123.serv*")
static sched_state *
find_job(sched_state *v, size_t n, const char *id, size_t idlen)
{
	for (size_t i = 0; i < n; i++) {
		const char *a = v[i].id;
		size_t al = strlen(a);
		if (al == idlen && memcmp(a, id, idlen) == 0)
			return &v[i];
		size_t ad = strcspn(a, "."), bd = strcspn(id, ".*");
		if (bd > idlen)
			bd = idlen;
		if (ad == bd && ad > 0 && memcmp(a, id, ad) == 0 &&
		    (ad < al || bd < idlen))
			return &v[i];
	}
	return NULL;
}

typedef struct word_map {
	const char *word;
	Copal__BatchJobState state;
} word_map;

#define Q COPAL__BATCH_JOB_STATE__BJ_QUEUED
#define R COPAL__BATCH_JOB_STATE__BJ_RUNNING
#define F COPAL__BATCH_JOB_STATE__BJ_FINISHED

static const word_map slurm_words[] = {
	{ "PENDING", Q }, { "REQUEUED", Q }, { "REQUEUE_HOLD", Q },
	{ "REQUEUE_FED", Q }, { "RESV_DEL_HOLD", Q }, { "CONFIGURING", R },
	{ "RUNNING", R }, { "COMPLETING", R }, { "SUSPENDED", R },
	{ "STOPPED", R }, { "SIGNALING", R }, { "STAGE_OUT", R },
	{ "RESIZING", R }, { "COMPLETED", F }, { "CANCELLED", F },
	{ "FAILED", F }, { "TIMEOUT", F }, { "NODE_FAIL", F },
	{ "PREEMPTED", F }, { "BOOT_FAIL", F }, { "DEADLINE", F },
	{ "OUT_OF_MEMORY", F }, { "SPECIAL_EXIT", F }, { "REVOKED", F },
	{ NULL, 0 },
};

// PBS Pro and Torque one-letter states
static const word_map pbs_words[] = {
	{ "Q", Q }, { "H", Q }, { "W", Q }, { "T", Q }, { "M", Q },
	{ "R", R }, { "E", R }, { "B", R }, { "S", R }, { "U", R },
	{ "X", F }, { "F", F }, { "C", F }, { NULL, 0 },
};

static const word_map cobalt_words[] = {
	{ "queued", Q }, { "user_hold", Q }, { "admin_hold", Q },
	{ "dep_hold", Q }, { "maxrun_hold", Q }, { "dep_fail", Q },
	{ "starting", R }, { "running", R }, { "exiting", R },
	{ "killing", R }, { "done", F }, { NULL, 0 },
};

#undef Q
#undef R
#undef F

static bool
map_word(const word_map *m, const char *w, size_t wl, sched_state *s)
{
	for (; m->word; m++) {
		if (strlen(m->word) == wl && strncasecmp(m->word, w, wl) == 0) {
			s->state = m->state;
			snprintf(s->word, sizeof(s->word), "%.*s", (int)wl, w);
			return true;
		}
	}
	return false;
}

// Splits text into lines and each line into blank-separated fields;
// calls fn(fields) per non-empty line. Fields are (pointer, length).
typedef struct field {
	const char *p;
	size_t n;
} field;

#define MAX_FIELDS 16

static size_t
split_fields(const char *line, size_t len, const char *seps, field *f)
{
	size_t n = 0, i = 0;
	while (i < len && n < MAX_FIELDS) {
		while (i < len && strchr(seps, line[i]))
			i++;
		if (i >= len)
			break;
		size_t s = i;
		while (i < len && !strchr(seps, line[i]))
			i++;
		f[n++] = (field){ line + s, i - s };
	}
	return n;
}

typedef bool (*line_fn)(const field *f, size_t nf, sched_state *v, size_t n);

static size_t
parse_lines(const char *text, const char *seps, line_fn fn, sched_state *v,
    size_t n)
{
	size_t bad = 0;
	for (const char *l = text; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		field f[MAX_FIELDS];
		size_t nf = split_fields(l, len, seps, f);
		if (nf > 0 && !fn(f, nf, v, n))
			bad++;
		l += len + (e ? 1 : 0);
	}
	return bad;
}

static bool
all_digits(const field *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (!isdigit((unsigned char)f->p[i]))
			return false;
	return f->n > 0;
}

// squeue -h -o '%i|%T|%r': "123|PENDING|Resources" (the reason is
// optional and may have blanks)
static bool
slurm_line(const field *f, size_t nf, sched_state *v, size_t n)
{
	if (nf < 2)
		return false;
	// array and het jobs print 123_4 or 123+0: only plain ids are ours
	size_t idn = strcspn(f[0].p, "_+|");
	if (idn > f[0].n)
		idn = f[0].n;
	field id = { f[0].p, idn };
	if (!all_digits(&id))
		return false;
	sched_state *s = find_job(v, n, f[0].p, f[0].n);
	sched_state tmp;
	if (!map_word(slurm_words, f[1].p, f[1].n, s ? s : &tmp))
		return false;
	if (s && nf > 2) {
		size_t rn = (size_t)(f[nf - 1].p + f[nf - 1].n - f[2].p);
		snprintf(s->reason, sizeof(s->reason), "%.*s", (int)rn, f[2].p);
	}
	return true;
}

size_t
sched_parse_slurm(const char *text, sched_state *v, size_t n)
{
	return parse_lines(text, "| \t\r", slurm_line, v, n);
}

// qstat (PBS Pro, Torque): a header, a line of dashes, then
// "123.server  name  user  00:00:00 R workq"
static bool
pbs_line(const field *f, size_t nf, sched_state *v, size_t n)
{
	if ((nf >= 2 && f[0].n == 3 && strncasecmp(f[0].p, "Job", 3) == 0) ||
	    (f[0].n > 0 && f[0].p[0] == '-'))
		return true; // header
	if (nf < 5 || !isdigit((unsigned char)f[0].p[0]))
		return false;
	sched_state *s = find_job(v, n, f[0].p, f[0].n);
	sched_state tmp;
	return map_word(pbs_words, f[4].p, f[4].n, s ? s : &tmp);
}

size_t
sched_parse_pbs(const char *text, sched_state *v, size_t n)
{
	return parse_lines(text, " \t\r", pbs_line, v, n);
}

// qstat --header JobID:State (Cobalt): "JobID  State", dashes,
// "123  running"
static bool
cobalt_line(const field *f, size_t nf, sched_state *v, size_t n)
{
	if ((f[0].n == 5 && strncasecmp(f[0].p, "JobID", 5) == 0) ||
	    f[0].p[0] == '=' || f[0].p[0] == '-')
		return true; // header
	if (nf != 2 || !all_digits(&f[0]))
		return false;
	sched_state *s = find_job(v, n, f[0].p, f[0].n);
	sched_state tmp;
	return map_word(cobalt_words, f[1].p, f[1].n, s ? s : &tmp);
}

size_t
sched_parse_cobalt(const char *text, sched_state *v, size_t n)
{
	return parse_lines(text, " \t\r", cobalt_line, v, n);
}

// Runs a status command and applies a parser; jobs not listed in a clean
// answer are FINISHED.
static int
run_status(char *const argv[], size_t (*parse)(const char *, sched_state *,
    size_t), sched_state *v, size_t n, unsigned t, char *why, size_t wl)
{
	sched_cmd r;
	for (size_t i = 0; i < n; i++) {
		v[i].state = COPAL__BATCH_JOB_STATE__BJ_UNSPECIFIED;
		v[i].word[0] = '\0';
		v[i].reason[0] = '\0';
	}
	if (sched_exec(argv, t, &r) != 0) {
		sched_cmd_explain(argv[0], &r, why, wl);
		sched_cmd_free(&r);
		return -1;
	}
	size_t bad = parse(r.out, v, n);
	sched_cmd_free(&r);
	if (bad) {
		// do not conclude that a job is gone from an answer that was
		// not understood; what was read stays
		snprintf(why, wl, "%s: %zu line%s of its answer not understood",
		    argv[0], bad, bad == 1 ? "" : "s");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].state == COPAL__BATCH_JOB_STATE__BJ_UNSPECIFIED) {
			v[i].state = COPAL__BATCH_JOB_STATE__BJ_FINISHED;
			snprintf(v[i].word, sizeof(v[i].word), "gone");
			snprintf(v[i].reason, sizeof(v[i].reason), "no longer "
			    "listed by %s", argv[0]);
		}
	}
	return 0;
}

static int
slurm_status(sched_state *v, size_t n, unsigned t, char *why, size_t wl)
{
	// every job of the user: `squeue -j` fails as a whole when one of the
	// ids is no longer known
	char *argv[] = { (char *)"squeue", (char *)"-h", (char *)"-a",
		(char *)"-t", (char *)"all", (char *)"-u", (char *)user_name(),
		(char *)"-o",
		(char *)"%i|%T|%r", NULL };
	return run_status(argv, sched_parse_slurm, v, n, t, why, wl);
}

static int
pbs_status(sched_state *v, size_t n, unsigned t, char *why, size_t wl)
{
	char *argv[] = { (char *)"qstat", NULL };
	return run_status(argv, sched_parse_pbs, v, n, t, why, wl);
}

static int
cobalt_status(sched_state *v, size_t n, unsigned t, char *why, size_t wl)
{
	char *argv[] = { (char *)"qstat", (char *)"-u", (char *)user_name(),
		(char *)"--header", (char *)"JobID:State", NULL };
	return run_status(argv, sched_parse_cobalt, v, n, t, why, wl);
}

// A local job runs as long as its process does (and is still that job:
// its command line names the script, so a reused pid is not taken for it).
static int
local_status(sched_state *v, size_t n, unsigned t, char *why, size_t wl)
{
	(void)t;
	(void)why;
	(void)wl;
	for (size_t i = 0; i < n; i++) {
		char path[64], cmd[4096], stat[512];
		field id = { v[i].id, strlen(v[i].id) };
		v[i].state = COPAL__BATCH_JOB_STATE__BJ_FINISHED;
		snprintf(v[i].word, sizeof(v[i].word), "gone");
		snprintf(v[i].reason, sizeof(v[i].reason), "no process %s",
		    v[i].id);
		if (!all_digits(&id) || id.n > 9)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", v[i].id);
		FILE *fp = fopen(path, "r");
		if (fp == NULL)
			continue;
		size_t k = fread(stat, 1, sizeof(stat) - 1, fp);
		fclose(fp);
		stat[k] = '\0';
		char *rp = strrchr(stat, ')');
		if (rp == NULL || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
			continue; // a zombie has finished
		snprintf(path, sizeof(path), "/proc/%s/cmdline", v[i].id);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		k = fread(cmd, 1, sizeof(cmd) - 1, fp);
		fclose(fp);
		bool match = v[i].script == NULL;
		for (size_t off = 0; off < k && !match;
		     off += strlen(cmd + off) + 1) {
			cmd[k] = '\0';
			match = strcmp(cmd + off, v[i].script) == 0;
		}
		if (match) {
			v[i].state = COPAL__BATCH_JOB_STATE__BJ_RUNNING;
			snprintf(v[i].word, sizeof(v[i].word), "running");
			snprintf(v[i].reason, sizeof(v[i].reason), "session %s "
			    "(state %c)", v[i].id, rp[2]);
		}
	}
	return 0;
}

int
sched_status(const sched_ops *s, sched_state *v, size_t n, unsigned t,
    char *why, size_t wl)
{
	if (n == 0)
		return 0;
	why[0] = '\0';
	return s->status(v, n, t, why, wl);
}

// ------------------------------------------------------------ cancel

int
sched_cancel(const sched_ops *s, const char *id, unsigned t, char *why,
    size_t wl)
{
	if (s->cancel == NULL) {
		field f = { id, strlen(id) };
		long pid = all_digits(&f) && f.n < 10 ? atol(id) : 0;
		if (pid <= 1) {
			snprintf(why, wl, "%s is not a local job id", id);
			return -1;
		}
		// the job script leads its own session (see local_submit)
		if (kill((pid_t)-pid, SIGTERM) != 0 && errno != ESRCH) {
			snprintf(why, wl, "kill %ld: %s", pid, strerror(errno));
			return -1;
		}
		return 0;
	}
	char *argv[] = { (char *)s->cancel, (char *)id, NULL };
	sched_cmd r;
	int rc = sched_exec(argv, t, &r);
	if (rc != 0)
		sched_cmd_explain(s->cancel, &r, why, wl);
	sched_cmd_free(&r);
	return rc;
}
