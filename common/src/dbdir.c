// The layout of a database directory: the one table of its parts' names.
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copal/common.h"
#include "copal/dbdir.h"

static const char *const names[CPL_DB_NPARTS] = {
	[CPL_DB_CONF] = "copal.conf",
	[CPL_DB_SECRET] = "secret",
	[CPL_DB_SOCK_DIR] = "sock",
	[CPL_DB_SOCKET] = "sock/broker",
	[CPL_DB_LOG_DIR] = "log",
	[CPL_DB_BROKER_LOG] = "log/broker.log",
	[CPL_DB_SERVICE_LOG] = "log/service.log",
	[CPL_DB_BROKER_PID] = "broker.pid",
	[CPL_DB_DATA_DIR] = "data",
	[CPL_DB_TMPL_DIR] = "job-templates",
	[CPL_DB_QSUBMIT_DIR] = "qsubmit",
	[CPL_DB_SERVICE_LOCK] = "service.lock",
	[CPL_DB_LMDB_DATA] = "data.mdb",
	[CPL_DB_LMDB_LOCK] = "lock.mdb",
	[CPL_DB_TLS_CERT] = "tls.crt",
	[CPL_DB_TLS_KEY] = "tls.key",
	[CPL_DB_LAUNCHERS] = "launchers",
	[CPL_DB_BROKER_ADDR] = "broker.addr",
	[CPL_DB_USERS] = "users",
};

const char *
cpl_dbpart_name(cpl_dbpart part)
{
	return (unsigned)part < CPL_DB_NPARTS ? names[part] : NULL;
}

int
cpl_dbpath(const char *db, cpl_dbpart part, char *buf, size_t len)
{
	if ((unsigned)part >= CPL_DB_NPARTS)
		return CPL_EINVAL;
	int n = snprintf(buf, len, "%s/%s", db, names[part]);
	if (n < 0 || (size_t)n >= len)
		return CPL_ETOOBIG;
	if (part == CPL_DB_SOCKET && (size_t)n + 1 > CPL_DB_SOCKET_MAX)
		return CPL_ETOOBIG;
	return 0;
}

int
cpl_dbpath_file(const char *db, cpl_dbpart part, char *buf, size_t len,
    const char *fmt, ...)
{
	int rv = cpl_dbpath(db, part, buf, len);
	if (rv)
		return rv;
	size_t n = strlen(buf);
	if (n + 1 >= len)
		return CPL_ETOOBIG;
	buf[n++] = '/';
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= len - n)
		return CPL_ETOOBIG;
	return 0;
}

int
cpl_db_socket_url(const char *db_dir, char *buf, size_t len)
{
	static const char scheme[] = "ipc://";
	const size_t sl = sizeof(scheme) - 1;
	if (len <= sl)
		return CPL_ETOOBIG;
	memcpy(buf, scheme, sl);
	return cpl_dbpath(db_dir, CPL_DB_SOCKET, buf + sl, len - sl);
}

int
cpl_read_secret(const char *db, uint8_t *buf, size_t cap, size_t *len)
{
	char path[PATH_MAX + 16];
	int rv = cpl_dbpath(db, CPL_DB_SECRET, path, sizeof(path));
	if (rv)
		return rv;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CPL_ENOTFOUND;
	ssize_t n = read(fd, buf, cap);
	close(fd);
	if (n <= 0)
		return CPL_EINVAL;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	*len = (size_t)n;
	return 0;
}

int
cpl_read_broker_addr(const char *db, cpl_broker_addr *out)
{
	char path[PATH_MAX + 16], line[1024];
	memset(out, 0, sizeof(*out));
	int rv = cpl_dbpath(db, CPL_DB_BROKER_ADDR, path, sizeof(path));
	if (rv)
		return rv;
	FILE *fp = fopen(path, "re");
	if (fp == NULL)
		return CPL_ENOTFOUND;
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *sp = strchr(line, ' ');
		if (line[0] == '#' || sp == NULL)
			continue;
		*sp++ = '\0';
		if (strcmp(line, "host") == 0)
			snprintf(out->host, sizeof(out->host), "%s", sp);
		else if (strcmp(line, "pid") == 0)
			out->pid = strtol(sp, NULL, 10);
		else if (strcmp(line, "tcp") == 0)
			snprintf(out->tcp, sizeof(out->tcp), "%s", sp);
	}
	fclose(fp);
	return out->host[0] ? 0 : CPL_EINVAL;
}
