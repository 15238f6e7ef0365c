/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test helper: a digest of a directory tree, to show that a refused
 * operation (a bad --restore, say) changed nothing under it.
 */
#ifndef SLUICE_TESTS_TREE_HASH_H
#define SLUICE_TESTS_TREE_HASH_H

#include <stdint.h>

/** xxh3 of everything under dir: names, types, sizes, mtimes, inodes and
 *  contents (nftw visits in readdir order, stable while nothing changes).
 *  Fails the calling Criterion test if the tree cannot be read. */
uint64_t tree_hash(const char *dir);

#endif
