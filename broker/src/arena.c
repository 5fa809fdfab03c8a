// A bump allocator for building replies.
#include <stdlib.h>
#include <string.h>

#include "broker.h"

#define CHUNK (64u * 1024u)

struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct defer {
	struct defer *next;
	void (*fn)(void *);
	void *p;
};

struct arena {
	struct chunk *head;
	struct defer *defers;
};

arena *
arena_new(void)
{
	return calloc(1, sizeof(arena));
}

void *
arena_alloc(arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct chunk *c = a->head;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > CHUNK ? n : CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *
arena_strdup(arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(a, n);
	if (p)
		memcpy(p, s, n);
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

void
arena_free(arena *a)
{
	if (a == NULL)
		return;
	for (struct defer *d = a->defers, *n; d; d = n) {
		n = d->next;
		d->fn(d->p);
		free(d);
	}
	struct chunk *c = a->head;
	while (c) {
		struct chunk *n = c->next;
		free(c);
		c = n;
	}
	free(a);
}
