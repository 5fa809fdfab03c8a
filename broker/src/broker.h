// Internal declarations of the broker daemon (not a public API).
#ifndef COPAL_BROKER_H
#define COPAL_BROKER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copal.pb-c.h"
#include "copal/store.h"

// ---------------------------------------------------------------- log
// syslog-like levels; the level is checked before formatting.
enum { LOG_ERR = 3, LOG_WARN = 4, LOG_NOTICE = 5, LOG_INFO = 6, LOG_DEBUG = 7 };
extern int log_level;
int log_open(const char *path);
void log_close(void);
void log_msg(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define LOG(level, id, ...)                                 \
	do {                                                \
		if ((level) <= log_level)                   \
			log_msg((level), (id), __VA_ARGS__); \
	} while (0)

// ---------------------------------------------------------------- arena
// Replies are built from many small protobuf-c structs; they all come from
// one arena freed at once after the reply is packed.
typedef struct arena arena;
arena *arena_new(void);
void *arena_alloc(arena *a, size_t n); // zeroed; NULL when out of memory
char *arena_strdup(arena *a, const char *s);
// Runs fn(p) when the arena is freed (for objects owned elsewhere, such as
// specs unpacked by the store). Returns 0 or CPL_ENOMEM (fn(p) then runs
// at once).
int arena_defer(arena *a, void (*fn)(void *), void *p);
void arena_free(arena *a);

// ---------------------------------------------------------------- validation
// An allocator for protobuf-c unpack that refuses to go past a budget, so
// that a small message cannot expand into gigabytes (protobuf-c 1.4.1 has
// no limit of its own).
typedef struct budget {
	ProtobufCAllocator pa;
	size_t used, max;
	bool exceeded;   // an allocation was refused
} budget;
void budget_init(budget *b, size_t max);

// Walks a request's wire bytes with the schema's descriptors: every
// string field must be UTF-8 without NUL bytes; no groups; nesting
// bounded. Returns 0 or CPL_EPROTO with a reason in err.
int validate_wire(const uint8_t *buf, size_t len, char *err, size_t errlen);
// The request id of a request's wire bytes (0 if it cannot be read), so
// that a refusal of a malformed request still reaches its caller.
uint64_t wire_request_id(const uint8_t *buf, size_t len);
// Checks a decoded request: counts, enum values, version, body. Returns 0
// or CPL_EPROTO with a reason in err.
int validate_request(const Copal__Request *req, char *err, size_t errlen);

#endif // COPAL_BROKER_H
