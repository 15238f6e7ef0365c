/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test helper: remove a directory tree the test made (rm -r, without a
 * shell).  Fails the calling Criterion test if anything is left.
 */
#ifndef SLUICE_TESTS_RM_TREE_H
#define SLUICE_TESTS_RM_TREE_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

static inline int rm_tree_one(const char *path, const struct stat *st, int type,
			      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) == 0 ? 0 : errno;
}

static inline void rm_tree(const char *dir)
{
	int rc = nftw(dir, rm_tree_one, 16, FTW_DEPTH | FTW_PHYS);

	cr_assert(rc == 0 || (rc < 0 && errno == ENOENT), "removing %s: %s", dir,
		  strerror(rc > 0 ? rc : errno));
}

#endif
