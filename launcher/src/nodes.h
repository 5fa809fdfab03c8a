// Node discovery for the launcher: which hosts this launcher may use.
#ifndef COPAL_LAUNCHER_NODES_H
#define COPAL_LAUNCHER_NODES_H

#include <stddef.h>

typedef struct nodelist {
	char **names;
	size_t n;
	const char *source; // "slurm", "pbs", "cobalt", "local"
} nodelist;

// Expands a Slurm hostlist ("nid[001-003,007],login1") into names.
// Errors: CPL_EINVAL (malformed: unbalanced brackets, bad range, more than
// max names), CPL_ENOMEM.
int hostlist_expand(const char *spec, size_t max, nodelist *out);

// Discovers nodes from the batch environment: SLURM_JOB_NODELIST (or
// SLURM_NODELIST), PBS_NODEFILE, COBALT_NODEFILE / COBALT_PARTNAME, else
// the local host. `getenv_fn` (NULL: getenv) lets tests supply an
// environment. Duplicate names (PBS lists a host once per core) are
// merged, order kept.
int nodes_discover(char *(*getenv_fn)(const char *), nodelist *out);

// Keeps `limit` nodes starting at `offset` (limit 0: all from offset).
// Errors: CPL_EINVAL if nothing is left.
int nodes_slice(nodelist *l, size_t offset, size_t limit);

// The index of the entry naming this host (its name from gethostname, or
// host the short name of one or the other: "nid001" matches
// "nid001.cluster"), or l->n when none does.
size_t nodes_find_self(const nodelist *l);
// The same for a given host name (for tests).
size_t nodes_find_host(const nodelist *l, const char *host);

void nodes_free(nodelist *l);

#endif
