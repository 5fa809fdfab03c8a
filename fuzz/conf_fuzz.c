// libFuzzer harness of the settings reader (common/src/conf.c): an input
// is the content of DB/copal.conf, written to a private database
// directory and read with cpl_conf_load, as every program reads it.
//
// What must hold: a failure says where ("PATH:LINE: ..." or "PATH: ...")
// in valid UTF-8 and leaves the defaults; a success gives strings that
// are NUL-terminated valid UTF-8 within their fields, numbers within
// their ranges, queues within their bands; and writing the default file and reading it back
// gives the defaults (checked once).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copal/common.h"
#include "copal/conf.h"
#include "copal/dbdir.h"
#include "fuzz_util.h"

static const char *db;
static char path[4096 + 64];
static cpl_conf defaults;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
put_file(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FZ_ASSERT(fd >= 0, "cannot write %s", path);
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);
		FZ_ASSERT(w > 0, "cannot write %s", path);
		off += (size_t)w;
	}
	close(fd);
}

#define STR_OK(c, f)                                                     \
	FZ_ASSERT(memchr((c)->f, '\0', sizeof((c)->f)) != NULL &&        \
	    fz_utf8_ok((c)->f, strlen((c)->f), false),                  \
	    #f ": not a NUL-terminated UTF-8 string")

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];
	(void)argc;
	(void)argv;
	db = fz_tmpdir("conf");
	if (cpl_dbpath(db, CPL_DB_CONF, path, sizeof(path)) != 0)
		fz_fail("path of copal.conf too long");
	cpl_conf_defaults(&defaults, db);
	// the file copal init writes reads back as the defaults
	FILE *fp = fopen(path, "w");
	FZ_ASSERT(fp != NULL && cpl_conf_write_default(fp) == 0 &&
	    fclose(fp) == 0, "cannot write the default file");
	cpl_conf c;
	int rv = cpl_conf_load(db, &c, err, sizeof(err));
	FZ_ASSERT(rv == 0, "the default file does not load: %s", err);
	FZ_ASSERT(memcmp(&c, &defaults, sizeof(c)) == 0,
	    "the default file does not read as the defaults");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	cpl_conf c;
	put_file(data, size);
	memset(&c, 0xa5, sizeof(c));
	int rv = cpl_conf_load(db, &c, err, sizeof(err));
	if (rv != 0) {
		FZ_ASSERT(rv == CPL_EINVAL, "load: %s (%s)", cpl_strerror(rv),
		    err);
		FZ_ASSERT(strncmp(err, path, strlen(path)) == 0 &&
		    err[strlen(path)] == ':', "a failure without the path: "
		    "\"%s\"", err);
		FZ_ASSERT(memcmp(&c, &defaults, sizeof(c)) == 0,
		    "a failed load left more than the defaults");
		FZ_ASSERT(fz_utf8_ok(err, strlen(err), false),
		    "the message is not valid UTF-8: \"%s\"", err);
		// a small err buffer too: the message is cut, never overrun
		char tiny[5];
		FZ_ASSERT(cpl_conf_load(db, &c, tiny, sizeof(tiny)) == rv &&
		    strlen(tiny) < sizeof(tiny), "not the same twice");
		return 0;
	}
	STR_OK(&c, scheduler);
	STR_OK(&c, job_template);
	STR_OK(&c, broker_tcp);
	STR_OK(&c, broker_tcp_insecure);
	STR_OK(&c, project);
	STR_OK(&c, job_mode);
	STR_OK(&c, wf_filter);
	FZ_ASSERT(cpl_scheduler_known(c.scheduler), "scheduler %s",
	    c.scheduler);
	FZ_ASSERT(c.job_template[0] == '/', "job_template %s is not "
	    "absolute", c.job_template);
	FZ_ASSERT(c.lease_ttl_seconds >= 2 && c.lease_ttl_seconds <= 86400,
	    "lease_ttl_seconds %u", c.lease_ttl_seconds);
	FZ_ASSERT(c.nqueues <= CPL_CONF_MAX_QUEUES, "%zu queues", c.nqueues);
	for (size_t i = 0; i < c.nqueues; i++) {
		const cpl_queue_policy *q = &c.queues[i];
		STR_OK(q, name);
		FZ_ASSERT(q->name[0] != '\0', "a queue without a name");
		FZ_ASSERT(q->min_nodes <= q->max_nodes &&
		    q->min_minutes <= q->max_minutes, "queue %s: bands",
		    q->name);
		FZ_ASSERT(cpl_conf_queue(&c, q->name) == q,
		    "queue %s given twice", q->name);
	}
	return 0;
}
