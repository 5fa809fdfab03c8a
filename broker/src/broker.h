// Internal declarations of the broker daemon (not a public API).
#ifndef COPAL_BROKER_H
#define COPAL_BROKER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copal.pb-c.h"
#include "copal/arena.h"
#include "copal/log.h"
#include "copal/store.h"

// ---------------------------------------------------------------- log
// The common logger (copal/log.h) in its default style: one line per event
// with time, level and a short stable id. The level is checked before
// formatting.
enum {
	LOG_ERR = CPL_LOG_ERR,
	LOG_WARN = CPL_LOG_WARN,
	LOG_NOTICE = CPL_LOG_NOTICE,
	LOG_INFO = CPL_LOG_INFO,
	LOG_DEBUG = CPL_LOG_DEBUG
};
#define LOG(level, id, ...) CPL_LOG((level), (id), __VA_ARGS__)

// ---------------------------------------------------------------- arena
// Replies are built from many small protobuf-c structs; they all come from
// one arena (copal/arena.h) freed at once after the reply is packed.

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
// Whether a request's wire bytes carry credentials.token equal to token
// (token_len > 0), read without decoding anything else.
bool wire_token_ok(const uint8_t *buf, size_t len, const uint8_t *token,
    size_t token_len);
// The credentials.token of a request's wire bytes (false: none, or the
// bytes cannot be walked); *tok points into buf.
bool wire_token(const uint8_t *buf, size_t len, const uint8_t **tok,
    size_t *tok_len);
// The digest of a request's body (copal.proto, Request: its fields 10 and
// up as they are on the wire): the first 16 bytes of their SHA-256. All
// zero if the bytes cannot be walked (validate_wire refuses them).
void wire_digest(const uint8_t *buf, size_t len, uint8_t digest[16]);
// Checks a decoded request: counts, enum values, version, body. Returns 0
// or CPL_EPROTO with a reason in err.
int validate_request(const Copal__Request *req, char *err, size_t errlen);

#endif // COPAL_BROKER_H
