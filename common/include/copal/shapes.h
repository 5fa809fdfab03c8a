// The shapes of the launchers that ran on a database (DIR/launchers):
// what the largest of them could give one task. Each launcher adds its own
// at start; `copal ls` warns about runnable tasks that fit none of them
// (nor any queue of copal.conf). Programs only: not in the client library.
#ifndef COPAL_SHAPES_H
#define COPAL_SHAPES_H

#include <stddef.h>
#include <stdint.h>

typedef struct cpl_shape {
	uint32_t nodes;
	uint32_t gpus_per_node;
	uint32_t minutes;       // its wall-time limit; 0: none
} cpl_shape;

// At most this many shapes are kept: none covers another.
#define CPL_SHAPES_MAX 16

// Reads the shapes of db into out (room for max); returns how many (0
// when there is no file or it cannot be read).
size_t cpl_shapes_read(const char *db, cpl_shape *out, size_t max);
// Adds s unless a recorded shape covers it, dropping those s covers; the
// file is replaced whole (temporary file and rename). Two launchers
// starting at once may lose one's shape: the next start adds it again.
// Returns 0, or -1 with errno set.
int cpl_shapes_add(const char *db, const cpl_shape *s);
// Whether a can give everything b can.
int cpl_shape_covers(const cpl_shape *a, const cpl_shape *b);

#endif // COPAL_SHAPES_H
