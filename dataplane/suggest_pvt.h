/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "Did you mean ...?" for user-facing errors: the closest candidate by
 * Damerau-Levenshtein distance (optimal string alignment: insert, delete,
 * substitute, swap two neighbours), case-insensitive.  Never installed.
 */
#ifndef SLUICE_SUGGEST_PVT_H
#define SLUICE_SUGGEST_PVT_H

#include <stddef.h>

/**
 * Edit distance between two strings (optimal string alignment), compared
 * case-insensitively.  Strings longer than 255 bytes are compared on their
 * first 255 bytes.
 */
unsigned sl_edit_distance(const char *a, const char *b);

/**
 * The candidate closest to `word`, if it is close enough to be a likely
 * typo: distance <= max(1, strlen(word) / 3).  Failing that, the only
 * candidate that starts with `word` (at least 3 characters), so that
 * "window" suggests "window-aggregate".  Ties go to the earlier candidate.
 * An exact match is not a suggestion (returns NULL).
 * @param word   what the user wrote
 * @param cands  candidates; NULL entries are skipped
 * @param n      number of candidates, or (size_t)-1 for a NULL-terminated
 *               list
 * @return a pointer into cands, or NULL
 */
const char *sl_suggest(const char *word, const char *const *cands, size_t n);

/**
 * Write "a, b, c" (the candidates separated by ", ") into buf; truncated
 * with "..." if it does not fit.
 * @return buf
 */
char *sl_suggest_list(char *buf, size_t len, const char *const *cands,
		      size_t n);

#endif
