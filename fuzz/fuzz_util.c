// Helpers shared by the fuzzing harnesses (see fuzz_util.h).
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

void
fz_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

// ---------------------------------------------------------------- tmpdir

static char dirs[4][4096];
static int ndirs;
static pid_t owner;

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void
rm_dirs(void)
{
	// a child (fork) must not take the parent's directories away
	if (getpid() != owner)
		return;
	for (int i = 0; i < ndirs; i++)
		nftw(dirs[i], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
fz_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (ndirs == (int)(sizeof(dirs) / sizeof(dirs[0])))
		fz_fail("too many temporary directories");
	char *d = dirs[ndirs];
	snprintf(d, sizeof(dirs[0]), "%s/copal-fuzz-%s-XXXXXX", base, tag);
	if (mkdtemp(d) == NULL)
		fz_fail("mkdtemp %s failed", d);
	if (ndirs++ == 0) {
		owner = getpid();
		atexit(rm_dirs);
	}
	return d;
}

// ---------------------------------------------------------------- UTF-8

bool
fz_utf8_ok(const char *str, size_t n, bool nul_ok)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i], cp;
		size_t k;
		if (c < 0x80) {
			if (c == 0 && !nul_ok)
				return false;
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			k = 1, cp = c & 0x1F;
		else if ((c & 0xF0) == 0xE0)
			k = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			k = 3, cp = c & 0x07;
		else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

static bool
str_ok(const char *s, const ProtobufCMessageDescriptor *d,
    const ProtobufCFieldDescriptor *f, char *where, size_t len)
{
	if (s == NULL || fz_utf8_ok(s, strlen(s), false))
		return true;
	if (where && len)
		snprintf(where, len, "%s.%s", d->short_name, f->name);
	return false;
}

bool
fz_msg_strings_ok(const ProtobufCMessage *m, char *where, size_t len)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t count = 1;
		if (f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t which = *(const uint32_t *)((const char *)m +
			    f->quantifier_offset);
			if (which != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)((const char *)m +
			    f->quantifier_offset);
			base = count ? *(const char *const *)base : NULL;
			if (base == NULL)
				continue;
		}
		for (size_t k = 0; k < count; k++) {
			const void *v = f->label == PROTOBUF_C_LABEL_REPEATED ?
			    ((const void *const *)base)[k] :
			    *(const void *const *)base;
			if (f->type == PROTOBUF_C_TYPE_STRING) {
				if (!str_ok(v, d, f, where, len))
					return false;
			} else if (v != NULL &&
			    !fz_msg_strings_ok(v, where, len)) {
				return false;
			}
		}
	}
	return true;
}
