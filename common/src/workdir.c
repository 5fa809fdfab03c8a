// The run directory of a task, relative to the database's data/ folder.
#include <stdio.h>
#include <string.h>

#include "copal/common.h"

// Copies a name as one path component: '/' and NUL-unsafe bytes become
// '_', and a leading '.' too, so that no name can climb out of data/.
size_t
cpl_path_component(char *dst, size_t cap, const char *src, const char *dflt)
{
	size_t n = 0;
	if (src == NULL || src[0] == '\0')
		src = dflt;
	for (; *src && n + 1 < cap; src++, n++) {
		char c = *src;
		if (c == '/' || (n == 0 && c == '.') || (unsigned char)c < 0x20)
			c = '_';
		dst[n] = c;
	}
	dst[n] = '\0';
	return n;
}

bool
cpl_path_inside(const char *rel)
{
	// relative, and no ".." component: it stays below where it is put
	if (rel == NULL || rel[0] == '/')
		return false;
	for (const char *p = rel; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return true;
}

int
cpl_workdir(const char *workflow, const char *name, const char *uuid,
    const char *workdir, char *buf, size_t len)
{
	if (workdir && workdir[0]) {
		if (!cpl_path_inside(workdir))
			return CPL_EINVAL;
		if ((size_t)snprintf(buf, len, "%s", workdir) >= len)
			return CPL_ETOOBIG;
		return 0;
	}
	char wf[256], nm[256];
	cpl_path_component(wf, sizeof(wf), workflow, "default");
	cpl_path_component(nm, sizeof(nm), name, "task");
	if ((size_t)snprintf(buf, len, "%s/%s_%.8s", wf, nm,
	        uuid ? cpl_uuid_short(uuid) : "") >= len)
		return CPL_ETOOBIG;
	return 0;
}

const char *
cpl_uuid_short(const char *uuid)
{
	size_t n = strlen(uuid);
	// canonical text: the version is the first digit of the third group
	if (n == 36 && uuid[14] == '7')
		return uuid + 28;
	return uuid;
}
