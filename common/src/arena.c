// A bump allocator: many small allocations, freed together (copal/arena.h).
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "copal/arena.h"
#include "copal/common.h"

#define CHUNK (64u * 1024u)
// Every allocation is aligned for any object, and to 16 bytes at least.
#define ALIGN (alignof(max_align_t) > 16 ? alignof(max_align_t) : 16)

struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(ALIGN) unsigned char data[];
};

struct defer {
	struct defer *next;
	void (*fn)(void *);
	void *p;
};

struct arena {
	struct chunk *head;  // current chunk first
	struct chunk *spare; // chunks kept by arena_reset
	struct defer *defers;
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

static void
run_defers(arena *a)
{
	for (struct defer *d = a->defers, *n; d; d = n) {
		n = d->next;
		d->fn(d->p);
		free(d);
	}
	a->defers = NULL;
}

void
arena_free(arena *a)
{
	if (a == NULL)
		return;
	run_defers(a);
	chunks_free(a->head);
	chunks_free(a->spare);
	free(a);
}

void
arena_reset(arena *a)
{
	run_defers(a);
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
	n = (n + ALIGN - 1) / ALIGN * ALIGN;
	if (n == 0)
		n = ALIGN;
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
	void *p = c->data + c->used;
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

int
arena_defer(arena *a, void (*fn)(void *), void *p)
{
	struct defer *d = malloc(sizeof(*d));
	if (d == NULL) {
		fn(p);
		return CPL_ENOMEM;
	}
	d->fn = fn;
	d->p = p;
	d->next = a->defers;
	a->defers = d;
	return 0;
}
