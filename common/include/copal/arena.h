// A bump allocator: many small allocations (protobuf-c structs of a reply,
// the strings and arrays of a batch of task specs) freed together. Not
// part of the installed client library.
#ifndef COPAL_ARENA_H
#define COPAL_ARENA_H

#include <stddef.h>

typedef struct arena arena;

// A new, empty arena; NULL when out of memory.
arena *arena_new(void);
// Runs the deferred functions (newest first) and frees everything.
void arena_free(arena *a);
// Runs the deferred functions and forgets every allocation, keeping
// standard-size chunks for reuse.
void arena_reset(arena *a);
void *arena_alloc(arena *a, size_t n); // zeroed; NULL when out of memory
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
// Appends one element to an arena array of n elements (copies it).
void *arena_append(arena *a, void *arr, size_t n, size_t elem);
// Runs fn(p) when the arena is freed or reset (for objects owned
// elsewhere, such as specs unpacked by the store). Returns 0 or
// CPL_ENOMEM (fn(p) then runs at once).
int arena_defer(arena *a, void (*fn)(void *), void *p);

#endif // COPAL_ARENA_H
