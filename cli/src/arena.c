// A bump allocator: many small allocations, freed together. Task specs of
// one batch (strings, arrays, messages) live in one arena.
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CHUNK (256u << 10)

struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct chunk *head;  // current chunk first
	struct chunk *spare; // chunks kept by arena_reset
};

arena *
arena_new(void)
{
	return calloc(1, sizeof(arena));
}

static void
chunks_free(struct chunk *c)
{
	while (c) {
		struct chunk *n = c->next;
		free(c);
		c = n;
	}
}

void
arena_free(arena *a)
{
	if (a == NULL)
		return;
	chunks_free(a->head);
	chunks_free(a->spare);
	free(a);
}

void
arena_reset(arena *a)
{
	// keep standard-size chunks for reuse, free the big ones
	while (a->head) {
		struct chunk *c = a->head;
		a->head = c->next;
		if (c->cap == CHUNK) {
			c->used = 0;
			c->next = a->spare;
			a->spare = c;
		} else {
			free(c);
		}
	}
}

void *
arena_alloc(arena *a, size_t n)
{
	const size_t al = sizeof(max_align_t);
	n = (n + al - 1) / al * al;
	if (n == 0)
		n = al;
	struct chunk *c = a->head;
	if (c == NULL || c->cap - c->used < n) {
		if (n <= CHUNK && a->spare) {
			c = a->spare;
			a->spare = c->next;
		} else {
			size_t cap = n > CHUNK ? n : CHUNK;
			if ((c = malloc(sizeof(*c) + cap)) == NULL)
				return NULL;
			c->cap = cap;
		}
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *
arena_strndup(arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *
arena_strdup(arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

void *
arena_append(arena *a, void *arr, size_t n, size_t elem)
{
	// Small arrays: copy to a fresh array each time (command-line
	// options repeat a few times at most; JSON arrays are sized first).
	char *p = arena_alloc(a, (n + 1) * elem);
	if (p && n)
		memcpy(p, arr, n * elem);
	return p;
}
