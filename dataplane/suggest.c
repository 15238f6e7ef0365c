/* SPDX-License-Identifier: BSD-3-Clause */
/* "Did you mean ...?": edit distance over a candidate list. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "suggest_pvt.h"

#define SUGGEST_MAX_LEN 255

static unsigned min3(unsigned a, unsigned b, unsigned c)
{
	unsigned m = a < b ? a : b;
	return m < c ? m : c;
}

unsigned sl_edit_distance(const char *a, const char *b)
{
	/* Three rows of the DP matrix suffice: the transposition step looks
	 * two rows back.  Words here are keys and names, so rows stay on the
	 * stack. */
	unsigned rows[3][SUGGEST_MAX_LEN + 1];
	size_t la = strnlen(a, SUGGEST_MAX_LEN), lb = strnlen(b, SUGGEST_MAX_LEN);
	unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

	for (size_t j = 0; j <= lb; j++)
		prev[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		int ca = tolower((unsigned char)a[i - 1]);

		cur[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			int cb = tolower((unsigned char)b[j - 1]);
			unsigned cost = ca != cb;

			cur[j] = min3(prev[j] + 1, cur[j - 1] + 1,
				      prev[j - 1] + cost);
			if (i > 1 && j > 1 &&
			    ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb &&
			    prev2[j - 2] + 1 < cur[j])
				cur[j] = prev2[j - 2] + 1;
		}
		unsigned *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

const char *sl_suggest(const char *word, const char *const *cands, size_t n)
{
	size_t len = strlen(word);
	unsigned limit = len / 3 > 1 ? (unsigned)(len / 3) : 1;
	const char *best = NULL, *prefix = NULL;
	unsigned best_d = limit + 1;
	unsigned n_prefix = 0;

	if (len == 0)
		return NULL;
	for (size_t i = 0; n == (size_t)-1 ? cands[i] != NULL : i < n; i++) {
		const char *c = cands[i];
		unsigned d;

		if (c == NULL)
			continue;
		if (strcmp(c, word) == 0)
			return NULL;
		d = sl_edit_distance(word, c);
		if (d < best_d) {
			best_d = d;
			best = c;
		}
		if (len >= 3 && strncasecmp(c, word, len) == 0) {
			prefix = c;
			n_prefix++;
		}
	}
	if (best != NULL)
		return best;
	return n_prefix == 1 ? prefix : NULL;
}

char *sl_suggest_list(char *buf, size_t len, const char *const *cands,
		      size_t n)
{
	size_t used = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; n == (size_t)-1 ? cands[i] != NULL : i < n; i++) {
		if (cands[i] == NULL)
			continue;
		int w = snprintf(buf + used, len - used, "%s%s",
				 used ? ", " : "", cands[i]);
		if (w < 0 || (size_t)w >= len - used) {
			/* mark the cut so a reader knows the list goes on */
			if (len >= 4)
				memcpy(buf + len - 4, "...", 4);
			break;
		}
		used += (size_t)w;
	}
	return buf;
}
