// Helpers shared by the fuzzing harnesses (fuzz/*_fuzz.c): a private
// directory per process, strict UTF-8, a walk over every string of a
// decoded message, and a loud stop when a property fails.
#ifndef COPAL_FUZZ_UTIL_H
#define COPAL_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

// Prints "fuzz: <what>" and aborts: libFuzzer keeps the input as a crash.
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2),
    noreturn));
#define FZ_ASSERT(c, ...)                  \
	do {                               \
		if (!(c))                  \
			fz_fail(__VA_ARGS__); \
	} while (0)

// A fresh directory under $TMPDIR (or /tmp) named copal-fuzz-<tag>-XXXXXX,
// removed with all it holds when the process exits. Aborts on failure.
const char *fz_tmpdir(const char *tag);

// Strict UTF-8 of n bytes (no overlong forms, surrogates or code points
// past U+10FFFF; NUL allowed only if nul_ok).
bool fz_utf8_ok(const char *s, size_t n, bool nul_ok);

// Every string field of m and of the messages it holds is valid UTF-8
// without NUL bytes; otherwise the field's path goes into where (if not
// NULL) and false is returned.
bool fz_msg_strings_ok(const ProtobufCMessage *m, char *where, size_t len);

#endif
