/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test helper: rewrite the format version of a checkpoint's _metadata file
 * with its checksums fixed up, so that it reads as a genuine file of
 * another version (the layout: docs/snapshot-format.md).
 */
#ifndef SLUICE_TESTS_META_EDIT_H
#define SLUICE_TESTS_META_EDIT_H

#include <stdint.h>

/** Set the version field of the _metadata file at `path`; fails the
 *  calling Criterion test if the file cannot be read or written. */
void set_metadata_version(const char *path, uint32_t version);

#endif
