// Names close to a mistyped one, for "did you mean" hints (a workflow
// filter that matches nothing, say). Programs only: not in the client
// library.
#ifndef COPAL_SUGGEST_H
#define COPAL_SUGGEST_H

#include <stddef.h>

// Puts in out (room for max) the names of cand[0..n) close to name,
// closest first: those within a small edit distance (insertions,
// deletions, substitutions and swaps of neighbours: 1 for names of up to
// 4 characters, 2 up to 12, then 3) and those of which name is a prefix or
// that are a prefix of name (of 2 characters or more). Returns how many.
size_t cpl_closest_names(const char *name, const char *const *cand,
    size_t n, const char **out, size_t max);

#endif // COPAL_SUGGEST_H
