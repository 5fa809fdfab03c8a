// The shapes of the launchers that ran (copal/shapes.h). The file holds
// one "NODES GPUS_PER_NODE MINUTES" line per shape, after a comment.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "copal/dbdir.h"
#include "copal/shapes.h"

int
cpl_shape_covers(const cpl_shape *a, const cpl_shape *b)
{
	return a->nodes >= b->nodes && a->gpus_per_node >= b->gpus_per_node &&
	    (a->minutes == 0 || (b->minutes != 0 && a->minutes >= b->minutes));
}

size_t
cpl_shapes_read(const char *db, cpl_shape *out, size_t max)
{
	char path[PATH_MAX + 32], line[256];
	size_t n = 0;
	if (cpl_dbpath(db, CPL_DB_LAUNCHERS, path, sizeof(path)) != 0)
		return 0;
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), fp)) {
		cpl_shape s;
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%u %u %u", &s.nodes, &s.gpus_per_node,
		        &s.minutes) == 3 && s.nodes > 0)
			out[n++] = s;
	}
	fclose(fp);
	return n;
}

int
cpl_shapes_add(const char *db, const cpl_shape *s)
{
	cpl_shape v[CPL_SHAPES_MAX + 1];
	char path[PATH_MAX + 32], tmp[PATH_MAX + 64];
	size_t n = cpl_shapes_read(db, v, CPL_SHAPES_MAX), k = 0;
	for (size_t i = 0; i < n; i++)
		if (cpl_shape_covers(&v[i], s))
			return 0; // nothing new
	for (size_t i = 0; i < n; i++)
		if (!cpl_shape_covers(s, &v[i]))
			v[k++] = v[i];
	if (k == CPL_SHAPES_MAX)
		k--; // the oldest stays, the last falls out
	v[k++] = *s;
	if (cpl_dbpath(db, CPL_DB_LAUNCHERS, path, sizeof(path)) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	FILE *fp = fopen(tmp, "w");
	if (fp == NULL)
		return -1;
	fprintf(fp, "# launchers that ran here: nodes, GPUs per node, "
	    "wall-time minutes (0: none)\n");
	for (size_t i = 0; i < k; i++)
		fprintf(fp, "%u %u %u\n", v[i].nodes, v[i].gpus_per_node,
		    v[i].minutes);
	int bad = ferror(fp);
	if (fclose(fp) != 0 || bad || rename(tmp, path) != 0) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}
