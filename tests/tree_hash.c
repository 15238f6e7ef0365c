/* SPDX-License-Identifier: BSD-3-Clause */
/* Directory-tree digest for tests; see tree_hash.h. */
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "tree_hash.h"

/* nftw() takes no argument for its callback */
static XXH3_state_t *tree_state;
static size_t tree_prefix;

static int tree_entry(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)ftw;
	XXH3_64bits_update(tree_state, path + tree_prefix, strlen(path + tree_prefix) + 1);
	XXH3_64bits_update(tree_state, &st->st_mode, sizeof(st->st_mode));
	XXH3_64bits_update(tree_state, &st->st_size, sizeof(st->st_size));
	XXH3_64bits_update(tree_state, &st->st_mtim, sizeof(st->st_mtim));
	XXH3_64bits_update(tree_state, &st->st_ino, sizeof(st->st_ino));
	if (type == FTW_F) {
		char buf[65536];
		ssize_t n;
		int fd = open(path, O_RDONLY);

		cr_assert_geq(fd, 0, "%s", path);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			XXH3_64bits_update(tree_state, buf, (size_t)n);
		close(fd);
	}
	return 0;
}

uint64_t tree_hash(const char *dir)
{
	uint64_t h;

	tree_state = XXH3_createState();
	XXH3_64bits_reset(tree_state);
	tree_prefix = strlen(dir);
	cr_assert_eq(nftw(dir, tree_entry, 16, FTW_PHYS), 0);
	h = XXH3_64bits_digest(tree_state);
	XXH3_freeState(tree_state);
	return h;
}
