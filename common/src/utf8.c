// UTF-8 at the edges of cut text: what copal truncates or takes from a
// program's output stays valid UTF-8, which strict decoders (Python's
// protobuf) demand of every string field of a reply.
#include <string.h>

#include "copal/common.h"

// The length of the sequence a lead byte starts (0: not a lead byte).
static size_t
seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

static bool
cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

size_t
cpl_utf8_cut(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t j = n;
	// back over at most three continuation bytes to the last lead byte
	while (j > 0 && n - j < 3 && cont(u[j - 1]))
		j--;
	if (j == 0)
		return n; // nothing but continuation bytes: not UTF-8 anyway
	size_t l = seq_len(u[j - 1]);
	if (l > 1 && (j - 1) + l > n)
		return j - 1; // the last character is incomplete: drop it
	return n;
}

// Whether u[i..] starts a well-formed sequence (no overlong form, no
// surrogate, nothing past U+10FFFF); its length in *l.
static bool
seq_ok(const unsigned char *u, size_t i, size_t n, size_t *l)
{
	size_t k = seq_len(u[i]);
	if (k == 0 || i + k > n)
		return false;
	for (size_t j = 1; j < k; j++)
		if (!cont(u[i + j]))
			return false;
	if (k == 3 && ((u[i] == 0xE0 && u[i + 1] < 0xA0) ||
	    (u[i] == 0xED && u[i + 1] >= 0xA0)))
		return false;
	if (k == 4 && ((u[i] == 0xF0 && u[i + 1] < 0x90) ||
	    (u[i] == 0xF4 && u[i + 1] >= 0x90)))
		return false;
	*l = k;
	return true;
}

size_t
cpl_utf8_clean(char *s)
{
	unsigned char *u = (unsigned char *)s;
	size_t n = strlen(s), i = 0, bad = 0;
	while (i < n) {
		size_t l;
		if (seq_ok(u, i, n, &l)) {
			i += l;
		} else {
			u[i++] = '?';
			bad++;
		}
	}
	return bad;
}
