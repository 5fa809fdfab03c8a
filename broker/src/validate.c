// Validation of decoded requests, driven by the protobuf-c descriptors so
// that every field of every message is checked the same way.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "broker.h"

#define MAX_DEPTH 8
#define MAX_REPEATED 1000000u
#define MAX_STRING (1u << 20)

static void *
budget_alloc(void *d, size_t n)
{
	budget *b = d;
	if (n > b->max - b->used) {
		b->exceeded = true;
		return NULL;
	}
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
	b->exceeded = false;
}

// Strict UTF-8 of n bytes: no NUL, no overlong forms, no surrogates,
// nothing past U+10FFFF.
static bool
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i], cp;
		size_t k;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k) // the sequence runs past the end
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
		    (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

static bool
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7F) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

static int
wire_msg(const uint8_t *p, const uint8_t *end,
    const ProtobufCMessageDescriptor *d, int depth, char *err, size_t errlen)
{
	if (depth > MAX_DEPTH) {
		snprintf(err, errlen, "message nested too deep");
		return CPL_EPROTO;
	}
	while (p < end) {
		uint64_t tag, len;
		if (!varint(&p, end, &tag))
			goto bad;
		unsigned wt = (unsigned)(tag & 7);
		uint64_t num = tag >> 3;
		switch (wt) {
		case 0:
			if (!varint(&p, end, &len))
				goto bad;
			break;
		case 1:
			if (end - p < 8)
				goto bad;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				goto bad;
			p += 4;
			break;
		case 2: {
			if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
				goto bad;
			const ProtobufCFieldDescriptor *f = num <= UINT32_MAX ?
			    protobuf_c_message_descriptor_get_field(d,
			        (unsigned)num) : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_STRING) {
				if (len > MAX_STRING) {
					snprintf(err, errlen,
					    "%s.%s: longer than %u bytes",
					    d->short_name, f->name, MAX_STRING);
					return CPL_EPROTO;
				}
				if (!utf8_ok(p, (size_t)len)) {
					snprintf(err, errlen,
					    "%s.%s: a NUL byte or invalid UTF-8",
					    d->short_name, f->name);
					return CPL_EPROTO;
				}
			} else if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				int rv = wire_msg(p, p + len, f->descriptor,
				    depth + 1, err, errlen);
				if (rv)
					return rv;
			}
			p += len;
			break;
		}
		default:
			snprintf(err, errlen, "%s: wire type %u not accepted",
			    d->short_name, wt);
			return CPL_EPROTO;
		}
	}
	return 0;
bad:
	snprintf(err, errlen, "%s: truncated or malformed field",
	    d->short_name);
	return CPL_EPROTO;
}

uint64_t
wire_request_id(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;
	while (p < end) {
		uint64_t tag, v;
		if (!varint(&p, end, &tag))
			return 0;
		switch (tag & 7) {
		case 0:
			if (!varint(&p, end, &v))
				return 0;
			if ((tag >> 3) == 2)
				return v; // Request.request_id
			break;
		case 1:
			if (end - p < 8)
				return 0;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return 0;
			p += 4;
			break;
		case 2:
			if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
				return 0;
			p += v;
			break;
		default:
			return 0;
		}
	}
	return 0;
}

// The fields of the message in [p, end) with field number num and wire
// type 2 (length-delimited): calls fn for each, in order. false when the
// bytes are not a well-formed message.
static bool
wire_each_len(const uint8_t *p, const uint8_t *end, uint64_t num,
    void (*fn)(const uint8_t *, size_t, void *), void *arg)
{
	while (p < end) {
		uint64_t tag, v;
		if (!varint(&p, end, &tag))
			return false;
		switch (tag & 7) {
		case 0:
			if (!varint(&p, end, &v))
				return false;
			break;
		case 1:
			if (end - p < 8)
				return false;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return false;
			p += 4;
			break;
		case 2:
			if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
				return false;
			if ((tag >> 3) == num)
				fn(p, (size_t)v, arg);
			p += v;
			break;
		default:
			return false;
		}
	}
	return true;
}

struct tokscan {
	const uint8_t *tok;
	size_t len;
	bool bad;
};

static void
tok_field(const uint8_t *p, size_t n, void *arg)
{
	struct tokscan *t = arg;
	t->tok = p;
	t->len = n;
}

static void
cred_field(const uint8_t *p, size_t n, void *arg)
{
	struct tokscan *t = arg;
	// Credentials.token = 1
	if (!wire_each_len(p, p + n, 1, tok_field, t))
		t->bad = true;
}

bool
wire_token_ok(const uint8_t *buf, size_t len, const uint8_t *token,
    size_t token_len)
{
	struct tokscan t = { NULL, 0, false };
	// Request.credentials = 3; protobuf merges repeated occurrences of
	// a message field, so the last token is the one decoding would see
	if (token_len == 0 || !wire_each_len(buf, buf + len, 3, cred_field, &t) ||
	    t.bad || t.tok == NULL || t.len != token_len)
		return false;
	// constant time: no early exit on the first differing byte
	unsigned char diff = 0;
	for (size_t i = 0; i < token_len; i++)
		diff |= t.tok[i] ^ token[i];
	return diff == 0;
}

bool
wire_token(const uint8_t *buf, size_t len, const uint8_t **tok,
    size_t *tok_len)
{
	struct tokscan t = { NULL, 0, false };
	if (!wire_each_len(buf, buf + len, 3, cred_field, &t) || t.bad ||
	    t.tok == NULL || t.len == 0)
		return false;
	*tok = t.tok;
	*tok_len = t.len;
	return true;
}

int
validate_wire(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	return wire_msg(buf, buf + len, &copal__request__descriptor, 0, err,
	    errlen);
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
validate_request(const Copal__Request *req, char *err, size_t errlen)
{
	int rv;
	if ((rv = check_msg(&req->base, 0, err, errlen)) != 0)
		return rv;
	if (req->version != 1) {
		snprintf(err, errlen, "protocol version %u not supported (1)",
		    req->version);
		return CPL_EPROTO;
	}
	if (req->body_case == COPAL__REQUEST__BODY__NOT_SET) {
		snprintf(err, errlen, "request has no body");
		return CPL_EPROTO;
	}
	if (req->client_id.len != 0 && req->client_id.len != CPL_CLIENT_ID_LEN) {
		snprintf(err, errlen, "client_id has %zu bytes (%d or none)",
		    req->client_id.len, CPL_CLIENT_ID_LEN);
		return CPL_EPROTO;
	}
	return 0;
}

// SHA-256 (OpenSSL's libcrypto: well kept, and fast with the CPU's SHA
// instructions) rather than a 64-bit non-cryptographic hash: the digest is
// what tells two requests of one id apart, so a collision must not be
// something a client can make on purpose or meet by chance.
//
// The algorithm is fetched once: EVP_sha256() makes every init look it up
// again, under libcrypto's locks (a third of the digest's cost for a small
// request, more with several threads at it).
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
wire_digest(const uint8_t *buf, size_t len, uint8_t digest[16])
{
	const uint8_t *p = buf, *end = buf + len;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	pthread_once(&sha256_once, sha256_fetch);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	memset(digest, 0, 16);
	if (ctx == NULL || EVP_DigestInit_ex(ctx, sha256_md ? sha256_md :
	                                      EVP_sha256(), NULL) != 1)
		goto out;
	while (p < end) {
		const uint8_t *start = p;
		uint64_t tag, v;
		if (!varint(&p, end, &tag))
			goto out;
		switch (tag & 7) {
		case 0:
			if (!varint(&p, end, &v))
				goto out;
			break;
		case 1:
			if (end - p < 8)
				goto out;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				goto out;
			p += 4;
			break;
		case 2:
			if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
				goto out;
			p += v;
			break;
		default:
			goto out;
		}
		// the envelope (version, id, credentials, client id) is not
		// the request: a resend may carry another token
		if ((tag >> 3) >= 10 &&
		    EVP_DigestUpdate(ctx, start, (size_t)(p - start)) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 16)
		memcpy(digest, md, 16);
out:
	EVP_MD_CTX_free(ctx);
}
