/* SPDX-License-Identifier: BSD-3-Clause */
/* Test helper: see meta_edit.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "meta_edit.h"

void set_metadata_version(const char *path, uint32_t version)
{
	FILE *f = fopen(path, "r+b");
	uint8_t *buf;
	long len;
	uint64_t body, h;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len);
	cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	memcpy(buf + 8, &version, 4);
	h = XXH3_64bits(buf, 24);
	memcpy(buf + 24, &h, 8);
	memcpy(&body, buf + 16, 8);
	cr_assert_leq(40 + body + 8, (uint64_t)len, "%s: not a _metadata file", path);
	h = XXH3_64bits(buf, 40 + body);
	memcpy(buf + 40 + body, &h, 8);
	rewind(f);
	cr_assert_eq(fwrite(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	free(buf);
}
