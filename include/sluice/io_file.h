/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Durable-file helpers: complete writes, directory fsync and atomic publish.
 *
 * The publish protocol (Redis rdbSave, systemd fsync_full):
 *
 *     sl_io_tmp_path(final) -> open(tmp, O_CREAT|O_TRUNC) -> sl_io_write_all()
 *     -> fsync(fd) -> close(fd) -> sl_io_publish(tmp, final)
 *
 * sl_io_publish() renames and then fsyncs the directory, so after it
 * returns the file exists under its final name with all of its contents,
 * even across a power loss; a reader never sees a partial file under the
 * final name.  On failure the caller unlinks the temp file.
 *
 * These are synchronous helpers for the slow path (sinks finishing, metadata
 * files).  The io_uring writer service builds on the same protocol.
 */
#ifndef SLUICE_IO_FILE_H
#define SLUICE_IO_FILE_H

#include <stddef.h>
#include <stdint.h>

/**
 * Write all of `buf`, retrying interrupted calls (EINTR) and short writes.
 * @param fd   file descriptor open for writing
 * @param buf  bytes to write
 * @param len  number of bytes
 * @return 0, or a negative errno from write(2) (-ENOSPC, -EIO, -EBADF, ...);
 *         -EIO if write() keeps returning 0.  On error an unknown prefix of
 *         buf may have been written.
 */
int sl_io_write_all(int fd, const void *buf, size_t len);

/**
 * fsync(2) a directory, making the creation, rename or removal of the
 * entries in it durable.
 * @param dir  directory path ("" or NULL means ".")
 * @return 0 or a negative errno (-ENOENT, -ENOTDIR, -EACCES, -EIO, ...)
 */
int sl_io_fsync_dir(const char *dir);

/**
 * Atomically publish a finished temp file under its final name: rename(2)
 * it over `final_path`, then fsync the directory of `final_path`.  The
 * caller must already have fsync'ed and closed the temp file (the data must
 * be durable before the name is); both paths must be in the same directory
 * (same filesystem), as sl_io_tmp_path() arranges.
 * @param tmp_path    the written and fsync'ed temp file
 * @param final_path  the name readers will use
 * @return 0, or a negative errno from rename(2) (the temp file is left in
 *         place for the caller to unlink) or from the directory fsync (the
 *         rename happened but may not be durable yet)
 */
int sl_io_publish(const char *tmp_path, const char *final_path);

/**
 * Name of the temp file for `final_path`: same directory, hidden, with a
 * ".tmp" suffix ("dir/out.csv" -> "dir/.out.csv.tmp"), so that globs on the
 * final names ignore it and the rename stays within one filesystem.  The
 * name is deterministic, so recovery can find and remove stale temp files.
 * @param final_path  target path
 * @param buf         output buffer
 * @param len         size of buf
 * @return 0, -EINVAL (empty path or path ending in '/'), -ENAMETOOLONG
 */
int sl_io_tmp_path(const char *final_path, char *buf, size_t len);

/**
 * Directory part of a path ("a/b/c" -> "a/b", "c" -> ".", "/c" -> "/").
 * @return 0, -ENAMETOOLONG
 */
int sl_io_dirname(const char *path, char *buf, size_t len);

/**
 * Create a directory and its missing parents (mode 0755), durably: each
 * created directory's parent is fsynced.
 * @return 0 (also if it exists), or a negative errno (-ENOTDIR, -EACCES...)
 */
int sl_io_mkdirs(const char *dir);

/**
 * Nearest existing ancestor of a directory path ("a/b/c" with only "a"
 * existing -> "a"); the path itself if it exists.
 * @return 0, -ENAMETOOLONG
 */
int sl_io_existing_ancestor(const char *dir, char *buf, size_t len);

/**
 * Fault injection for tests (SQLite's SimulateIOError): after `after_bytes`
 * more bytes went through sl_io_write_all() (process-wide), every further
 * call fails with -err until sl_io_fault_clear().  Lets tests exercise the
 * ENOSPC/EIO paths of sinks and checkpoint writers without a full disk.
 * @param err          positive errno to inject (ENOSPC, EIO, ...)
 * @param after_bytes  bytes allowed through first; the call that crosses
 *                     the limit writes the allowed part, then fails
 */
void sl_io_fault_set(int err, uint64_t after_bytes);

/** Stop injecting faults. */
void sl_io_fault_clear(void);

#endif
