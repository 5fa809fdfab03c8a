// "Did you mean": names close to a mistyped one (copal/suggest.h).
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "copal/suggest.h"

// Only short names are compared: a longer one is never a typo of a name
// that fits a filter.
#define CMP_MAX 128

// Edit distance with swaps of neighbours (optimal string alignment),
// stopping early: returns limit + 1 when the distance exceeds limit.
static size_t
distance(const char *a, const char *b, size_t limit)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > CMP_MAX || lb > CMP_MAX)
		return limit + 1;
	if ((la > lb ? la - lb : lb - la) > limit)
		return limit + 1;
	// three rows: i-2, i-1, i
	size_t r[3][CMP_MAX + 1];
	for (size_t j = 0; j <= lb; j++)
		r[0][j] = j;
	size_t *p2 = r[2], *p1 = r[0], *cur = r[1];
	for (size_t i = 1; i <= la; i++) {
		size_t best = cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = p1[j - 1] + cost;
			if (p1[j] + 1 < v)
				v = p1[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && p2[j - 2] + 1 < v)
				v = p2[j - 2] + 1;
			cur[j] = v;
			if (v < best)
				best = v;
		}
		if (best > limit)
			return limit + 1;
		size_t *t = p2;
		p2 = p1;
		p1 = cur;
		cur = t;
	}
	return p1[lb];
}

static bool
prefix_of(const char *a, const char *b)
{
	size_t la = strlen(a);
	return la >= 2 && strncmp(a, b, la) == 0;
}

size_t
cpl_closest_names(const char *name, const char *const *cand, size_t n,
    const char **out, size_t max)
{
	size_t len = strlen(name), got = 0;
	size_t limit = len <= 4 ? 1 : len <= 12 ? 2 : 3;
	size_t score[64];
	if (max > 64)
		max = 64;
	for (size_t i = 0; i < n && max; i++) {
		const char *c = cand[i];
		if (strcmp(c, name) == 0)
			continue;
		size_t d = distance(name, c, limit);
		if (d > limit && (prefix_of(name, c) || prefix_of(c, name))) {
			// after every near miss: by how much longer or shorter
			size_t lc = strlen(c);
			d = limit + 1 + (lc > len ? lc - len : len - lc);
		} else if (d > limit) {
			continue;
		}
		// insert by score, then by name; the worst falls out
		size_t k = got < max ? got : max;
		while (k > 0 && (score[k - 1] > d ||
		    (score[k - 1] == d && strcmp(out[k - 1], c) > 0))) {
			if (k < max) {
				score[k] = score[k - 1];
				out[k] = out[k - 1];
			}
			k--;
		}
		if (k < max) {
			score[k] = d;
			out[k] = c;
			if (got < max)
				got++;
		}
	}
	return got;
}
