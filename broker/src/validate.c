// Validation of decoded requests, driven by the protobuf-c descriptors so
// that every field of every message is checked the same way.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

#define MAX_DEPTH 8
#define MAX_REPEATED 1000000u
#define MAX_STRING (1u << 20)

static void *
budget_alloc(void *d, size_t n)
{
	budget *b = d;
	if (n > b->max - b->used)
		return NULL;
	b->used += n;
	return malloc(n);
}

static void
budget_free(void *d, void *p)
{
	(void)d;
	free(p);
}

void
budget_init(budget *b, size_t max)
{
	b->pa.alloc = budget_alloc;
	b->pa.free = budget_free;
	b->pa.allocator_data = b;
	b->used = 0;
	b->max = max;
}

// Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
static bool
utf8_ok(const unsigned char *s, size_t *len)
{
	size_t i = 0;
	while (s[i]) {
		unsigned c = s[i];
		size_t n;
		unsigned cp;
		if (c < 0x80) {
			i++;
			if (i > MAX_STRING)
				return false;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t j = 1; j <= n; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
		if (i > MAX_STRING)
			return false;
	}
	*len = i;
	return true;
}

static int
check_msg(const ProtobufCMessage *m, int depth, char *err, size_t errlen)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > MAX_DEPTH) {
		snprintf(err, errlen, "message nested too deep");
		return CPL_EPROTO;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t count = 1;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t which = *(const uint32_t *)((const char *)m +
			    f->quantifier_offset);
			if (which != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)((const char *)m +
			    f->quantifier_offset);
			if (count > MAX_REPEATED) {
				snprintf(err, errlen, "%s.%s: %zu entries (most %u)",
				    d->short_name, f->name, count, MAX_REPEATED);
				return CPL_EPROTO;
			}
			if (count == 0)
				continue;
			base = *(const char *const *)base;
			if (base == NULL)
				continue;
		}
		for (size_t k = 0; k < count; k++) {
			switch (f->type) {
			case PROTOBUF_C_TYPE_STRING: {
				const char *s = f->label == PROTOBUF_C_LABEL_REPEATED ?
				    ((const char *const *)base)[k] :
				    *(const char *const *)base;
				size_t len;
				if (s == NULL)
					break;
				if (!utf8_ok((const unsigned char *)s, &len)) {
					snprintf(err, errlen,
					    "%s.%s: not valid UTF-8 or longer than %u bytes",
					    d->short_name, f->name, MAX_STRING);
					return CPL_EPROTO;
				}
				break;
			}
			case PROTOBUF_C_TYPE_ENUM: {
				int v = f->label == PROTOBUF_C_LABEL_REPEATED ?
				    ((const int *)base)[k] : *(const int *)base;
				const ProtobufCEnumDescriptor *ed = f->descriptor;
				if (protobuf_c_enum_descriptor_get_value(ed, v) ==
				    NULL) {
					snprintf(err, errlen,
					    "%s.%s: %d is not a %s value",
					    d->short_name, f->name, v, ed->short_name);
					return CPL_EPROTO;
				}
				break;
			}
			case PROTOBUF_C_TYPE_MESSAGE: {
				const ProtobufCMessage *sub =
				    f->label == PROTOBUF_C_LABEL_REPEATED ?
				    ((const ProtobufCMessage *const *)base)[k] :
				    *(const ProtobufCMessage *const *)base;
				int rv;
				if (sub == NULL)
					break;
				if ((rv = check_msg(sub, depth + 1, err, errlen)) != 0)
					return rv;
				break;
			}
			default:
				break;
			}
		}
	}
	return 0;
}

int
validate_request(const Copal__Request *req, size_t wire_len, char *err,
    size_t errlen)
{
	int rv;
	if ((rv = check_msg(&req->base, 0, err, errlen)) != 0)
		return rv;
	// protobuf-c cuts a string at its first NUL byte without a word; the
	// re-packed size then differs from what came on the wire.
	size_t n = copal__request__get_packed_size(req);
	if (n != wire_len) {
		snprintf(err, errlen,
		    "request is not in canonical form (a string with a NUL "
		    "byte?): %zu bytes on the wire, %zu decoded",
		    wire_len, n);
		return CPL_EPROTO;
	}
	if (req->version != 1) {
		snprintf(err, errlen, "protocol version %u not supported (1)",
		    req->version);
		return CPL_EPROTO;
	}
	if (req->body_case == COPAL__REQUEST__BODY__NOT_SET) {
		snprintf(err, errlen, "request has no body");
		return CPL_EPROTO;
	}
	return 0;
}
