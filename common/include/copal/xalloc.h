// Allocation that never returns NULL, for the programs (the copal command,
// the scheduler library): when memory runs out, one settable handler
// runs. Not part of the installed client library, whose calls return
// CPL_ENOMEM instead.
#ifndef COPAL_XALLOC_H
#define COPAL_XALLOC_H

#include <stddef.h>

// Called when an allocation fails; must not return (if it does, the
// program aborts). The default prints "<program>: out of memory" to
// stderr and exits with status 1.
typedef void (*cpl_oom_fn)(void);
// Sets the handler (NULL: the default); returns the one it replaces.
cpl_oom_fn cpl_set_oom_handler(cpl_oom_fn fn);

// As malloc, calloc, realloc and strdup; a size of 0 allocates 1 byte.
void *cpl_xmalloc(size_t n);
void *cpl_xcalloc(size_t n, size_t size);
void *cpl_xrealloc(void *p, size_t n);
char *cpl_xstrdup(const char *s);

#endif // COPAL_XALLOC_H
