// MPI starter templates: how a site launches a multi-rank task.
#include <stdio.h>
#include <string.h>

#include "copal/common.h"
#include "copal/params.h"
#include "launcher.h"

static const struct {
	const char *name;
	const char *tmpl;
} starters[] = {
	// Debian's OpenMPI; --oversubscribe lets a small machine run more
	// ranks than cores
	{ "openmpi",
	    "mpirun --oversubscribe -n {ranks} --host {hostslots} "
	    "-x OMP_NUM_THREADS {cmd}" },
	{ "mpich", "mpiexec -n {ranks} -ppn {rpn} -hosts {hosts} {cmd}" },
	{ "srun",
	    "srun --exact -n {ranks} -N {nnodes} --ntasks-per-node={rpn} "
	    "-c {tpr} -w {hosts} {cmd}" },
	{ "aprun", "aprun -n {ranks} -N {rpn} -d {tpr} -L {hosts} {cmd}" },
};

const char *
mpi_template_for(const char *starter)
{
	for (size_t i = 0; i < sizeof(starters) / sizeof(starters[0]); i++)
		if (strcmp(starters[i].name, starter) == 0)
			return starters[i].tmpl;
	return NULL;
}

static int
put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	if (*pos + n + 1 > outlen)
		return CPL_ETOOBIG;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return 0;
}

int
mpi_render(const char *tmpl, uint32_t ranks, uint32_t rpn, uint32_t nnodes,
    uint32_t tpr, char *const *hosts, const char *cmd, char *out,
    size_t outlen)
{
	return mpi_render_lp(tmpl, ranks, rpn, nnodes, tpr, hosts, cmd, NULL,
	    0, out, outlen);
}

int
mpi_render_lp(const char *tmpl, uint32_t ranks, uint32_t rpn,
    uint32_t nnodes, uint32_t tpr, char *const *hosts, const char *cmd,
    char *const *lparams, size_t nlp, char *out, size_t outlen)
{
	size_t pos = 0;
	int rv;
	if (outlen == 0)
		return CPL_ETOOBIG;
	out[0] = '\0';
	for (const char *p = tmpl; *p;) {
		if (*p != '{') {
			if ((rv = put(out, outlen, &pos, p, 1)) != 0)
				return rv;
			p++;
			continue;
		}
		const char *e = strchr(p, '}');
		if (e == NULL)
			return CPL_EINVAL;
		size_t n = (size_t)(e - p - 1);
		const char *key = p + 1;
		char num[32];
		if (n == 5 && !memcmp(key, "ranks", 5)) {
			snprintf(num, sizeof(num), "%u", ranks);
			rv = put(out, outlen, &pos, num, strlen(num));
		} else if (n == 3 && !memcmp(key, "rpn", 3)) {
			snprintf(num, sizeof(num), "%u", rpn);
			rv = put(out, outlen, &pos, num, strlen(num));
		} else if (n == 6 && !memcmp(key, "nnodes", 6)) {
			snprintf(num, sizeof(num), "%u", nnodes);
			rv = put(out, outlen, &pos, num, strlen(num));
		} else if (n == 3 && !memcmp(key, "tpr", 3)) {
			snprintf(num, sizeof(num), "%u", tpr);
			rv = put(out, outlen, &pos, num, strlen(num));
		} else if ((n == 5 && !memcmp(key, "hosts", 5)) ||
		    (n == 9 && !memcmp(key, "hostslots", 9))) {
			rv = 0;
			for (uint32_t i = 0; i < nnodes && rv == 0; i++) {
				if (i)
					rv = put(out, outlen, &pos, ",", 1);
				if (rv == 0)
					rv = put(out, outlen, &pos, hosts[i],
					    strlen(hosts[i]));
				if (rv == 0 && n == 9) {
					snprintf(num, sizeof(num), ":%u", rpn);
					rv = put(out, outlen, &pos, num,
					    strlen(num));
				}
			}
		} else if (n == 3 && !memcmp(key, "cmd", 3)) {
			// the starter's own flags go right before the command
			rv = 0;
			for (size_t i = 0; i < nlp && rv == 0; i++)
				if ((rv = cpl_shell_word(out, outlen, &pos,
				         lparams[i])) == 0)
					rv = put(out, outlen, &pos, " ", 1);
			if (rv == 0)
				rv = put(out, outlen, &pos, cmd, strlen(cmd));
		} else {
			return CPL_EINVAL;
		}
		if (rv)
			return rv;
		p = e + 1;
	}
	return 0;
}
