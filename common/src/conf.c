// The strict reader of DB/copal.conf: one table row per setting (key,
// range or check, default, the comment `copal init` writes above it), one
// per queue-policy field. The file's rules are in conf.h; the file that
// `copal init` writes is made from the same tables.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copal/common.h"
#include "copal/conf.h"
#include "copal/dbdir.h"
#include "conf_check.h"

// A settings file is a page of text; anything this large is a mistake
// (a log or a binary given as DB), not worth reading into memory.
#define MAX_FILE (1u << 20)

// ------------------------------------------------------------ the tables

enum kind { STR, NUM };

// One setting. The key is the name of its field in cpl_conf. help is the
// comment above it in the file `copal init` writes, lines without their
// "# ", "{range}" standing for "min..max".
typedef struct setting {
	const char *key;
	enum kind kind;
	size_t off, size;         // the field in cpl_conf
	uint32_t min, max, dflt;  // NUM
	const char *sdflt;        // STR
	bool (*valid)(const char *v); // STR
	const char *allowed;      // STR: for messages
	const char *help;
} setting;

#define STRING(field, d, fn, allow, help)                                 \
	{ #field, STR, offsetof(cpl_conf, field),                         \
		sizeof(((cpl_conf *)0)->field), 0, 0, 0, d, fn, allow, help }
#define NUMBER(field, lo, hi, d, help)                                    \
	{ #field, NUM, offsetof(cpl_conf, field), sizeof(uint32_t), lo, hi, \
		d, NULL, NULL, NULL, help }

#define NAME_CHARS "characters A-Z a-z 0-9 . _ @ + -"

static const setting settings[] = {
	STRING(scheduler, "local", cpl_scheduler_known, "local, slurm, pbs or cobalt",
	    "Batch scheduler that launcher jobs are submitted to:\n"
	    "local (run on this machine), slurm, pbs or cobalt."),
	// resolved against the database directory after the whole file
	STRING(job_template, "", conf_is_any, "a path; relative to the database "
	    "directory unless absolute",
	    "Job-script template that copal submit-launch and copal service render\n"
	    "into qsubmit/ for each job. Empty: job-templates/<scheduler>.tmpl\n"
	    "(copal init wrote one per scheduler). A relative path is relative to\n"
	    "this directory."),
	STRING(broker_tcp, "", conf_is_tcp, "empty, or tls+tcp://HOST:PORT with PORT "
	    "1..65535 (tcp://HOST:PORT with broker_tcp_insecure = true)",
	    "TCP address the broker listens on besides its local socket\n"
	    "(sock/broker), for launchers on other nodes, e.g.\n"
	    "tls+tcp://0.0.0.0:7555. TLS is mutual: the broker shows tls.crt and\n"
	    "takes only clients that hold tls.crt and tls.key (made by copal init);\n"
	    "clients also send the token in the file `secret`. Empty: local socket\n"
	    "only."),
	STRING(broker_tcp_insecure, "false", conf_is_bool, "true or false",
	    "true: broker_tcp may be plain tcp://HOST:PORT, without TLS. The token\n"
	    "and every request then travel in clear and clients cannot tell the\n"
	    "broker from whoever holds the port: only for a network nobody else\n"
	    "can reach. The broker's log and copal server status warn about it."),
	NUMBER(broker_max_connections, 0, 1000000, 0,
	    "Most connections the TCP listener keeps at once; more are closed\n"
	    "at once (and logged). 0: sized to the broker's file descriptors,\n"
	    "keeping enough for local clients. {range}."),
	NUMBER(lease_ttl_seconds, 2, 86400, 30,
	    "Seconds a launcher's lease lasts without a heartbeat (the default of\n"
	    "copal launcher --lease-ttl). When it\n"
	    "expires, the launcher's running tasks become RUN_TIMEOUT and are\n"
	    "retried by their policy (auto_timeout_retry, max_retries). {range}."),
	NUMBER(scheduler_timeout_seconds, 1, 3600, 30,
	    "Seconds a scheduler command (sbatch, squeue, scancel, qsub, qstat,\n"
	    "qdel) may take before copal gives up on it. {range}."),
	NUMBER(wall_time_margin_seconds, 0, 3600, 60,
	    "Seconds before the end of a job's wall time at which its launcher\n"
	    "stops, so that tasks end and leases are returned before the\n"
	    "scheduler kills the job. {range}."),
	STRING(broker_advertise, "", conf_is_host_or_empty, "empty, or a host name, "
	    "IPv4 address or [IPv6 address]",
	    "Host that launchers on other nodes dial to reach the broker's\n"
	    "broker_tcp listener (the job scripts get it as {{ broker_url }}).\n"
	    "Empty: broker_tcp's own host, or when that is a wildcard (0.0.0.0, *,\n"
	    "[::]) an address of the broker's host (the one its name resolves to,\n"
	    "else its first non-loopback IPv4 address)."),
	STRING(submit_without_tcp, "refuse", conf_is_refuse_warn, "refuse or warn",
	    "What copal submit-launch and copal service do with a job of more than\n"
	    "one node while the broker has no broker_tcp listener (launchers on\n"
	    "other hosts cannot use the database's Unix socket): refuse it, or warn\n"
	    "and submit it anyway."),
	STRING(project, "", conf_is_name_or_empty, "empty, or " NAME_CHARS,
	    "Project (account) charged for the jobs of copal submit-launch (unless\n"
	    "it gets --project) and of copal service. Empty: none. Characters\n"
	    "A-Z a-z 0-9 . _ @ + - only."),
	STRING(job_mode, "serial", conf_is_job_mode, "serial or mpi",
	    "Job mode of the launchers that copal service submits: serial or mpi."),
	STRING(wf_filter, "", conf_is_name_or_empty, "empty, or " NAME_CHARS,
	    "Workflow of the tasks that the service's launchers run. Empty: every\n"
	    "workflow."),
	NUMBER(service_period_seconds, 1, 86400, 10,
	    "copal service: seconds between two rounds (look at the queue, submit,\n"
	    "cancel). {range}."),
	NUMBER(service_max_queued_jobs, 0, 1000, 3,
	    "copal service: at most this many launcher jobs queued or running at\n"
	    "once, all queues together. {range}; 0: the service submits nothing."),
	NUMBER(service_max_wait_minutes, 0, 525600, 0,
	    "copal service: cancel a job it submitted that is still waiting in the\n"
	    "queue (not yet running) after this many minutes. 0: never.\n"
	    "{range}."),
	STRING(claim_order, "fifo", conf_is_claim_order,
	    "fifo or long_large_first",
	    "Order in which launchers take tasks of equal priority (the default\n"
	    "of copal launcher --order): fifo (oldest first) or long_large_first\n"
	    "(largest num_nodes x wall_time_minutes first, so that big and long\n"
	    "tasks start at once and small ones fill the nodes left over)."),
	NUMBER(fast_fail_seconds, 0, 86400, 20,
	    "A task whose process cannot start, dies by a signal or exits with\n"
	    "one of fast_fail_codes within this many seconds is started again at\n"
	    "once by its launcher, up to 3 times, before it becomes RUN_ERROR\n"
	    "(copal launcher --fast-fail-seconds). {range}; 0: never."),
	STRING(fast_fail_codes, "", conf_is_code_list,
	    "empty, or exit codes 1..255 separated by commas",
	    "Exit codes that count as a fast failure (see fast_fail_seconds),\n"
	    "e.g. 1,127 (copal launcher --fast-fail-codes). Empty: only a failed\n"
	    "start or a signal."),
	STRING(task_uuids, "random", conf_is_uuid_kind, "random or time",
	    "The uuids of new tasks: random (version 4) or time (version 7,\n"
	    "RFC 9562: the first 12 hex digits are the time of creation, the\n"
	    "rest random). time makes creating tasks cheaper (the uuid index\n"
	    "grows by appends) but tasks created together share their first\n"
	    "12 digits: an id prefix must then be longer than 8 digits to\n"
	    "name one task. Read by the broker at start."),
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

int
cpl_code_list_parse(const char *s, uint8_t set[32])
{
	if (set)
		memset(set, 0, 32);
	while (*s) {
		char *end;
		if (*s < '0' || *s > '9')
			return CPL_EINVAL;
		errno = 0;
		unsigned long v = strtoul(s, &end, 10);
		if (errno || v < 1 || v > 255 || end - s > 3)
			return CPL_EINVAL;
		if (set)
			set[v / 8] |= (uint8_t)(1u << (v % 8));
		s = end;
		if (*s == ',' && s[1] != '\0')
			s++;
		else if (*s)
			return CPL_EINVAL;
	}
	return 0;
}

// One field of a queue policy: queue.NAME.<field>. example: its value in
// the commented example of the file `copal init` writes.
typedef struct qfield {
	const char *name;
	size_t off;
	uint32_t min, max, dflt;
	uint32_t example;
} qfield;

#define QFIELD(field, lo, hi, d, ex)                                      \
	{ #field, offsetof(cpl_queue_policy, field), lo, hi, d, ex }

// The first NBANDS pairs are bands: qfields[2i] is the low end of
// qfields[2i+1].
enum { NBANDS = 2 };
static const qfield qfields[] = {
	QFIELD(min_nodes, 1, 1000000, 1, 1),
	QFIELD(max_nodes, 1, 1000000, 1, 2),
	QFIELD(min_minutes, 1, 525600, 1, 5),
	QFIELD(max_minutes, 1, 525600, 60, 60),
	QFIELD(max_queued, 0, 1000, 1, 1),
	QFIELD(gpus_per_node, 0, 1024, 0, 0),
};
#define NQFIELDS (sizeof(qfields) / sizeof(qfields[0]))
#define QFIELD_NAMES "min_nodes, max_nodes, min_minutes, max_minutes, " \
	"max_queued or gpus_per_node"

static uint32_t *
u32_at(void *base, size_t off)
{
	return (uint32_t *)((char *)base + off);
}

// ------------------------------------------------------------ the parser

typedef struct parser {
	const char *path;
	char *err;
	size_t errlen;
	unsigned line;              // of the line being read
	cpl_conf c;
	unsigned set[NSETTINGS];    // line where each setting was given, or 0
	unsigned qset[CPL_CONF_MAX_QUEUES][NQFIELDS];
} parser;

// "PATH:LINE: message" (line 0: "PATH: message"); returns CPL_EINVAL.
static int fail_at(parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
fail_at(parser *p, unsigned line, const char *fmt, ...)
{
	if (p->err == NULL || p->errlen == 0)
		return CPL_EINVAL;
	int n = line ? snprintf(p->err, p->errlen, "%s:%u: ", p->path, line) :
	               snprintf(p->err, p->errlen, "%s: ", p->path);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return CPL_EINVAL;
}

// At most 60 bytes of a value for a message, cut at a character boundary
// (the line was checked to be UTF-8).
static int
shown(const char *v)
{
	size_t n = strlen(v);
	if (n <= 60)
		return (int)n;
	n = 60;
	while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
		n--;
	return (int)n;
}

// A decimal number within [min, max] into *out; else a message.
static int
parse_number(parser *p, const char *what, const char *v, uint32_t min,
    uint32_t max, uint32_t *out)
{
	uint64_t n = 0;
	const char *d = v;
	if (*d == '\0')
		return fail_at(p, p->line, "%s: no value (an integer %u..%u)",
		    what, min, max);
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return fail_at(p, p->line, "%s: \"%.*s\" is not a number "
			    "(an integer %u..%u)", what, shown(v), v, min, max);
		if (n <= UINT32_MAX)
			n = n * 10 + (uint64_t)(*d - '0');
	}
	if (n < min || n > max)
		return fail_at(p, p->line, "%s: %.*s is out of range (%u..%u)",
		    what, shown(v), v, min, max);
	*out = (uint32_t)n;
	return 0;
}

// The index of queue name, made if new (in file order).
static int
queue_index(parser *p, const char *name, size_t len, size_t *out)
{
	cpl_conf *c = &p->c;
	for (size_t i = 0; i < c->nqueues; i++)
		if (strlen(c->queues[i].name) == len &&
		    memcmp(c->queues[i].name, name, len) == 0) {
			*out = i;
			return 0;
		}
	if (c->nqueues == CPL_CONF_MAX_QUEUES)
		return fail_at(p, p->line, "queue %.*s would be queue %d (at most "
		    "%d queues)", (int)len, name, CPL_CONF_MAX_QUEUES + 1,
		    CPL_CONF_MAX_QUEUES);
	cpl_queue_policy *q = &c->queues[c->nqueues];
	memset(q, 0, sizeof(*q));
	memcpy(q->name, name, len);
	q->name[len] = '\0';
	for (size_t f = 0; f < NQFIELDS; f++)
		*u32_at(q, qfields[f].off) = qfields[f].dflt;
	memset(p->qset[c->nqueues], 0, sizeof(p->qset[0]));
	*out = c->nqueues++;
	return 0;
}

// queue.NAME.FIELD = value. NAME may itself hold dots: FIELD is what
// follows the last one.
static int
queue_setting(parser *p, const char *key, const char *v)
{
	const char *name = key + strlen("queue."), *dot = strrchr(name, '.');
	if (dot == NULL || dot == name || dot[1] == '\0')
		return fail_at(p, p->line, "malformed queue key \"%.*s\" "
		    "(queue.NAME.FIELD with FIELD one of " QFIELD_NAMES ")",
		    shown(key), key);
	size_t len = (size_t)(dot - name);
	for (size_t i = 0; i < len; i++)
		if (!conf_name_char(name[i]))
			return fail_at(p, p->line, "queue name \"%.*s\" not "
			    "allowed (" NAME_CHARS ")", (int)len, name);
	if (len >= sizeof(p->c.queues[0].name))
		return fail_at(p, p->line, "queue name of %zu bytes (at most "
		    "%zu)", len, sizeof(p->c.queues[0].name) - 1);
	size_t f;
	for (f = 0; f < NQFIELDS; f++)
		if (strcmp(dot + 1, qfields[f].name) == 0)
			break;
	if (f == NQFIELDS)
		return fail_at(p, p->line, "unknown queue setting \"%.*s\" "
		    "(FIELD of queue.NAME.FIELD is one of " QFIELD_NAMES ")",
		    shown(key), key);
	size_t qi = 0;
	int rv;
	if ((rv = queue_index(p, name, len, &qi)) != 0)
		return rv;
	if (p->qset[qi][f])
		return fail_at(p, p->line, "%s given twice (first on line %u; "
		    "each key at most once)", key, p->qset[qi][f]);
	if ((rv = parse_number(p, key, v, qfields[f].min, qfields[f].max,
	         u32_at(&p->c.queues[qi], qfields[f].off))) != 0)
		return rv;
	p->qset[qi][f] = p->line;
	return 0;
}

static int
setting_line(parser *p, const char *key, const char *v)
{
	if (strncmp(key, "queue.", 6) == 0)
		return queue_setting(p, key, v);
	size_t i;
	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(key, settings[i].key) == 0)
			break;
	if (i == NSETTINGS) {
		// the known keys, for the message
		char known[512];
		size_t n = 0;
		known[0] = '\0';
		for (size_t k = 0; k < NSETTINGS && n < sizeof(known); k++)
			n += (size_t)snprintf(known + n, sizeof(known) - n, "%s, ",
			    settings[k].key);
		return fail_at(p, p->line, "unknown key \"%.*s\" (%squeue.NAME."
		    "FIELD)", shown(key), key, known);
	}
	const setting *s = &settings[i];
	if (p->set[i])
		return fail_at(p, p->line, "%s given twice (first on line %u; "
		    "each key at most once)", key, p->set[i]);
	if (s->kind == NUM) {
		int rv = parse_number(p, key, v, s->min, s->max,
		    u32_at(&p->c, s->off));
		if (rv)
			return rv;
	} else {
		size_t len = strlen(v);
		if (len >= s->size)
			return fail_at(p, p->line, "%s: value of %zu bytes is too "
			    "long (at most %zu)", key, len, s->size - 1);
		if (!s->valid(v))
			return fail_at(p, p->line, "%s: \"%.*s\" is not allowed "
			    "(%s)", key, shown(v), v, s->allowed);
		memcpy((char *)&p->c + s->off, v, len + 1);
	}
	p->set[i] = p->line;
	return 0;
}

// Where s (n bytes) stops being text: the offset of a NUL, of a control
// character other than tab, or of a byte that is not valid UTF-8
// (overlong forms and surrogates included); n if all is well. *what says
// which.
static size_t
text_end(const unsigned char *s, size_t n, const char **what)
{
	size_t i = 0;
	while (i < n) {
		unsigned char b = s[i];
		if (b < 0x80) {
			if (b == 0) {
				*what = "NUL byte";
				return i;
			}
			if ((b < 0x20 && b != '\t') || b == 0x7f) {
				*what = "control character";
				return i;
			}
			i++;
			continue;
		}
		// the length of the sequence and the range of its 2nd byte
		size_t len;
		unsigned char lo = 0x80, hi = 0xBF;
		if (b >= 0xC2 && b <= 0xDF)
			len = 2;
		else if (b >= 0xE0 && b <= 0xEF) {
			len = 3;
			if (b == 0xE0)
				lo = 0xA0;
			else if (b == 0xED)
				hi = 0x9F;
		} else if (b >= 0xF0 && b <= 0xF4) {
			len = 4;
			if (b == 0xF0)
				lo = 0x90;
			else if (b == 0xF4)
				hi = 0x8F;
		} else {
			*what = "invalid UTF-8";
			return i;
		}
		if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) {
			*what = "invalid UTF-8";
			return i;
		}
		for (size_t k = 2; k < len; k++)
			if ((s[i + k] & 0xC0) != 0x80) {
				*what = "invalid UTF-8";
				return i;
			}
		i += len;
	}
	return n;
}

static bool
blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

// One line of the file, n bytes without its newline.
static int
parse_line(parser *p, const char *raw, size_t n)
{
	char buf[CPL_CONF_MAX_LINE + 1];
	if (n > 0 && raw[n - 1] == '\r')
		n--;
	if (n > CPL_CONF_MAX_LINE)
		return fail_at(p, p->line, "line of %zu bytes is too long (at "
		    "most %d)", n, CPL_CONF_MAX_LINE);
	const char *what = NULL;
	size_t bad = text_end((const unsigned char *)raw, n, &what);
	if (bad < n)
		return fail_at(p, p->line, "%s (byte 0x%02x) at column %zu (UTF-8 "
		    "text; tab is the only control character allowed)", what,
		    (unsigned char)raw[bad], bad + 1);
	memcpy(buf, raw, n);
	buf[n] = '\0';
	char *s = buf, *e = buf + n;
	while (blank(*s))
		s++;
	while (e > s && blank(e[-1]))
		*--e = '\0';
	if (*s == '\0' || *s == '#')
		return 0;
	if (strchr(s, '#'))
		return fail_at(p, p->line, "'#' in a setting line (a comment "
		    "takes a whole line, starting with #)");
	char *eq = strchr(s, '=');
	if (eq == NULL || eq == s)
		return fail_at(p, p->line, "not a setting: \"%.*s\" (key = value, "
		    "a line starting with #, or a blank line)", shown(s), s);
	char *k = eq;
	while (k > s && blank(k[-1]))
		k--;
	*k = '\0';
	char *v = eq + 1;
	while (blank(*v))
		v++;
	return setting_line(p, s, v);
}

// The default job_template: [db/]job-templates/<scheduler>.tmpl. Returns
// what snprintf does.
static int
default_template(cpl_conf *c, const char *db)
{
	return snprintf(c->job_template, sizeof(c->job_template),
	    "%s%s%s/%s.tmpl", db ? db : "", db ? "/" : "",
	    cpl_dbpart_name(CPL_DB_TMPL_DIR), c->scheduler);
}

// The checks that need the whole file: the bands of each queue (a key may
// come before or after its partner, or rely on the other's default), and
// job_template joined to the database directory.
static int
finish(parser *p, const char *db)
{
	cpl_conf *c = &p->c;
	for (size_t qi = 0; qi < c->nqueues; qi++) {
		cpl_queue_policy *q = &c->queues[qi];
		for (size_t b = 0; b < NBANDS; b++) {
			const qfield *lo = &qfields[2 * b], *hi = &qfields[2 * b + 1];
			uint32_t vlo = *u32_at(q, lo->off), vhi = *u32_at(q, hi->off);
			if (vlo <= vhi)
				continue;
			unsigned llo = p->qset[qi][2 * b], lhi = p->qset[qi][2 * b + 1];
			return fail_at(p, llo > lhi ? llo : lhi, "queue.%s: %s %u%s "
			    "is more than %s %u%s (%s <= %s)", q->name, lo->name,
			    vlo, llo ? "" : " (default)", hi->name, vhi,
			    lhi ? "" : " (default)", lo->name, hi->name);
		}
	}
	// job_template: empty means the default, relative means under db
	size_t ti;
	for (ti = 0; strcmp(settings[ti].key, "job_template") != 0; ti++)
		;
	char given[sizeof(c->job_template)];
	memcpy(given, c->job_template, sizeof(given));
	int n;
	if (given[0] == '\0')
		n = default_template(c, db);
	else if (given[0] == '/' || db == NULL)
		n = snprintf(c->job_template, sizeof(c->job_template), "%s",
		    given);
	else
		n = snprintf(c->job_template, sizeof(c->job_template), "%s/%s",
		    db, given);
	if (n < 0 || (size_t)n >= sizeof(c->job_template))
		return fail_at(p, p->set[ti], "job_template: the path in the "
		    "database directory is too long (at most %zu bytes)",
		    sizeof(c->job_template) - 1);
	return 0;
}

// ------------------------------------------------------------ reading

void
cpl_conf_defaults(cpl_conf *c, const char *db)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NSETTINGS; i++) {
		const setting *s = &settings[i];
		if (s->kind == NUM)
			*u32_at(c, s->off) = s->dflt;
		else
			snprintf((char *)c + s->off, s->size, "%s", s->sdflt);
	}
	default_template(c, db);
}

// The whole file into a malloc'd buffer.
static int
read_all(const char *path, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return e == ENOENT || e == ENOTDIR ? CPL_ENOTFOUND :
		       e == EACCES || e == EPERM   ? CPL_EPERM :
		                                     CPL_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		if (err && errlen)
			snprintf(err, errlen, "%s: not a regular file", path);
		return CPL_EINVAL;
	}
	// one byte more than allowed, to see a file that is too large even
	// if it grew after fstat
	char *buf = malloc(MAX_FILE + 1);
	if (buf == NULL) {
		close(fd);
		return CPL_ENOMEM;
	}
	size_t len = 0;
	while (len < MAX_FILE + 1) {
		ssize_t r = read(fd, buf + len, MAX_FILE + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			if (err && errlen)
				snprintf(err, errlen, "%s: %s", path, strerror(e));
			return CPL_EIO;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (len > MAX_FILE) {
		free(buf);
		if (err && errlen)
			snprintf(err, errlen, "%s: larger than %u bytes (a settings "
			    "file of key = value lines)", path, MAX_FILE);
		return CPL_EINVAL;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int
cpl_conf_load(const char *db, cpl_conf *c, char *err, size_t errlen)
{
	char path[4096 + 16];
	char *text = NULL;
	size_t len = 0;
	int rv;

	cpl_conf_defaults(c, db);
	if (err && errlen)
		err[0] = '\0';
	if (db == NULL) {
		if (err && errlen)
			snprintf(err, errlen, "no database directory");
		return CPL_EINVAL;
	}
	if (cpl_dbpath(db, CPL_DB_CONF, path, sizeof(path)) != 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: path too long", db);
		return CPL_EINVAL;
	}
	if ((rv = read_all(path, &text, &len, err, errlen)) != 0)
		return rv;
	parser *p = malloc(sizeof(*p));
	if (p == NULL) {
		free(text);
		return CPL_ENOMEM;
	}
	memset(p, 0, sizeof(*p));
	p->path = path;
	p->err = err;
	p->errlen = errlen;
	cpl_conf_defaults(&p->c, db);
	// the settings are read in place of the default path: finish()
	// resolves what the file says, or the default
	p->c.job_template[0] = '\0';

	const char *s = text, *end = text + len;
	if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (rv == 0 && s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		p->line++;
		rv = parse_line(p, s, (size_t)(e - s));
		s = nl ? nl + 1 : end;
	}
	if (rv == 0)
		rv = finish(p, db);
	if (rv == 0)
		memcpy(c, &p->c, sizeof(*c));
	free(p);
	free(text);
	return rv;
}

const cpl_queue_policy *
cpl_conf_queue(const cpl_conf *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nqueues; i++)
		if (strcmp(c->queues[i].name, name) == 0)
			return &c->queues[i];
	return NULL;
}

// ------------------------------------------------------------ the default file

// The comments of the file that are not about one setting; lines without
// their "# ", "{qdefaults}" standing for every queue field's default.
static const char intro_help[] =
    "copal database settings: one `key = value` per line. A line whose\n"
    "first character (after blanks) is # is a comment; there are no\n"
    "comments after a value, and a # anywhere else is an error. Every line\n"
    "is checked when the broker starts (copal server start, or any copal\n"
    "command that finds it stopped): an unknown key, a key given twice or a\n"
    "bad value stops it, with the line and what is allowed.";
static const char queue_help[] =
    "Queue policies: which jobs the service may submit to each queue\n"
    "(partition), one block of queue.NAME.* keys per queue; earlier queues\n"
    "are preferred. A queue exists once one of its keys is set; a key not\n"
    "set has its default ({qdefaults}). For example:";

// Comment lines are wrapped at this column where a list is filled in.
#define WRAP 72

// Writes text as comment lines ("# " before each), with {range} made s's
// range and {qdefaults} the list of queue fields' defaults, wrapped.
static void
put_comment(FILE *fp, const char *text, const setting *s)
{
	size_t col = 2;
	fputs("# ", fp);
	for (const char *c = text; *c; c++) {
		if (*c == '\n') {
			fputs("\n# ", fp);
			col = 2;
		} else if (s && strncmp(c, "{range}", 7) == 0) {
			col += (size_t)fprintf(fp, "%u..%u", s->min, s->max);
			c += 6;
		} else if (strncmp(c, "{qdefaults}", 11) == 0) {
			for (size_t f = 0; f < NQFIELDS; f++) {
				char word[64];
				int n = snprintf(word, sizeof(word), "%s %u%s",
				    qfields[f].name, qfields[f].dflt,
				    f + 1 < NQFIELDS ? "," : "");
				// the name and its value stay on one line
				size_t first = strcspn(word, " ");
				if (f > 0 && col + 1 + first > WRAP) {
					fputs("\n# ", fp);
					col = 2;
				} else if (f > 0) {
					fputc(' ', fp);
					col++;
				}
				fputs(word, fp);
				col += (size_t)n;
			}
			c += 10;
		} else {
			fputc(*c, fp);
			col++;
		}
	}
	fputc('\n', fp);
}

int
cpl_conf_write_default(FILE *fp)
{
	put_comment(fp, intro_help, NULL);
	for (size_t i = 0; i < NSETTINGS; i++) {
		const setting *s = &settings[i];
		fputc('\n', fp);
		put_comment(fp, s->help, s);
		if (s->kind == NUM)
			fprintf(fp, "%s = %u\n", s->key, s->dflt);
		else
			fprintf(fp, "%s = %s\n", s->key, s->sdflt);
	}
	fputc('\n', fp);
	put_comment(fp, queue_help, NULL);
	for (size_t f = 0; f < NQFIELDS; f++)
		fprintf(fp, "# queue.debug.%s = %u\n", qfields[f].name,
		    qfields[f].example);
	return fflush(fp) != 0 || ferror(fp) ? CPL_EIO : 0;
}
