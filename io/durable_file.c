/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Durable-file helpers: complete writes, directory fsync, atomic publish by
 * rename, and a test-only write fault injector.  See sluice/io_file.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sluice/io_file.h"

/* Fault injection state.  `armed` is read on every write, the rest only
 * once armed, so the normal path costs one relaxed load. */
static int fault_armed;
static int fault_err;
static uint64_t fault_budget;

void sl_io_fault_set(int err, uint64_t after_bytes)
{
	__atomic_store_n(&fault_err, err > 0 ? err : EIO, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_budget, after_bytes, __ATOMIC_RELAXED);
	/* release: a writer that sees armed also sees err and budget */
	__atomic_store_n(&fault_armed, 1, __ATOMIC_RELEASE);
}

void sl_io_fault_clear(void)
{
	__atomic_store_n(&fault_armed, 0, __ATOMIC_RELEASE);
}

/* How many of `len` bytes may be written before the injected fault. */
static size_t fault_allow(size_t len)
{
	uint64_t budget = __atomic_load_n(&fault_budget, __ATOMIC_RELAXED);
	uint64_t take;

	do {
		take = budget < len ? budget : len;
	} while (!__atomic_compare_exchange_n(&fault_budget, &budget,
					      budget - take, false,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return (size_t)take;
}

int sl_io_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	int injected = 0;

	/* acquire: pairs with the release in sl_io_fault_set() */
	if (__builtin_expect(__atomic_load_n(&fault_armed, __ATOMIC_ACQUIRE), 0)) {
		size_t allowed = fault_allow(len);
		if (allowed < len) {
			injected = __atomic_load_n(&fault_err, __ATOMIC_RELAXED);
			len = allowed;
		}
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* no progress and no error: give up */
		p += n;
		len -= (size_t)n;
	}
	return injected ? -injected : 0;
}

int sl_io_dirname(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		if (len < 2)
			return -ENAMETOOLONG;
		memcpy(buf, ".", 2);
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path); /* keep "/" for root */
	if (n + 1 > len)
		return -ENAMETOOLONG;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

int sl_io_existing_ancestor(const char *dir, char *buf, size_t len)
{
	struct stat st;
	int rc;

	if (strlen(dir) + 1 > len)
		return -ENAMETOOLONG;
	strcpy(buf, dir[0] ? dir : ".");
	while (stat(buf, &st) < 0 && strcmp(buf, ".") != 0 && strcmp(buf, "/") != 0) {
		char parent[4096];
		if ((rc = sl_io_dirname(buf, parent, sizeof(parent))) < 0)
			return rc;
		strcpy(buf, parent);
	}
	return 0;
}

int sl_io_mkdirs(const char *dir)
{
	char parent[4096];
	struct stat st;
	int rc;

	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (errno != ENOENT)
		return -errno;
	if ((rc = sl_io_dirname(dir, parent, sizeof(parent))) < 0)
		return rc;
	if (strcmp(parent, dir) != 0 && (rc = sl_io_mkdirs(parent)) < 0)
		return rc;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return sl_io_fsync_dir(parent);
}

int sl_io_fsync_dir(const char *dir)
{
	int fd, rc = 0;

	if (dir == NULL || dir[0] == '\0')
		dir = ".";
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0) {
		/* some filesystems cannot fsync directories; their renames
		 * are as durable as they get */
		if (errno != EINVAL && errno != ENOTSUP)
			rc = -errno;
	}
	close(fd);
	return rc;
}

int sl_io_publish(const char *tmp_path, const char *final_path)
{
	char dir[4096];
	int rc;

	rc = sl_io_dirname(final_path, dir, sizeof(dir));
	if (rc < 0)
		return rc;
	if (rename(tmp_path, final_path) < 0)
		return -errno;
	return sl_io_fsync_dir(dir);
}

int sl_io_tmp_path(const char *final_path, char *buf, size_t len)
{
	const char *slash = strrchr(final_path, '/');
	const char *base = slash ? slash + 1 : final_path;
	size_t dlen = (size_t)(base - final_path);
	int n;

	if (final_path[0] == '\0' || base[0] == '\0')
		return -EINVAL;
	n = snprintf(buf, len, "%.*s.%s.tmp", (int)dlen, final_path, base);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}
