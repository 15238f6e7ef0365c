/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Disk bandwidth measurement, so that benchmarks can print "the disk did X
 * GB/s in this run" next to what the writer achieved.
 *
 * Sequential 1 MiB O_DIRECT requests, BW_DEPTH in flight, through a private
 * io_uring (not a writer: this measures the disk, not our code).  On this
 * machine's virtio disk, writes reach the same rate from 1 to 32 in
 * flight, but reads keep improving with bytes in flight (0.72 GB/s at 8 x
 * 1 MiB, 0.93 at 32, 1.04 at 64): 32 is where the gain flattens without
 * pinning much memory.  See docs/io.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "sluice/io.h"

#define BW_BLOCK (1u << 20)
#define BW_DEPTH 32u

struct bw_slot {
	uint64_t off;  /* file offset of this slot's block */
	uint32_t len;  /* bytes of the block */
	uint32_t done; /* bytes transferred so far */
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Temp file in dir, O_DIRECT if the filesystem allows it. */
static int bw_open(const char *dir, char *path, size_t len)
{
	int fd, n;

	n = snprintf(path, len, "%s/.sl_io_bw.XXXXXX", dir);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* F_SETFL may switch O_DIRECT on; tmpfs and friends refuse with
	 * EINVAL, then we measure buffered writes plus fdatasync */
	(void)fcntl(fd, F_SETFL, O_DIRECT);
	return fd;
}

static void bw_prep(struct io_uring *ring, int fd, bool write, char *buf,
		    struct bw_slot *s, unsigned i)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	char *p = buf + (size_t)i * BW_BLOCK + s->done;

	if (write)
		io_uring_prep_write(sqe, fd, p, s->len - s->done, s->off + s->done);
	else
		io_uring_prep_read(sqe, fd, p, s->len - s->done, s->off + s->done);
	io_uring_sqe_set_data64(sqe, i);
}

/* Move `total` bytes sequentially, BW_DEPTH blocks in flight. */
static int bw_run(int fd, bool write, char *buf, uint64_t total)
{
	struct bw_slot slots[BW_DEPTH];
	struct io_uring ring;
	uint64_t next = 0, finished = 0;
	unsigned inflight = 0, i;
	int rc;

	rc = io_uring_queue_init(BW_DEPTH, &ring, 0);
	if (rc < 0)
		return rc;
	for (i = 0; i < BW_DEPTH && next < total; i++, next += BW_BLOCK) {
		slots[i] = (struct bw_slot){ .off = next, .len = BW_BLOCK };
		bw_prep(&ring, fd, write, buf, &slots[i], i);
		inflight++;
	}
	while (inflight > 0) {
		struct io_uring_cqe *cqe;
		struct bw_slot *s;

		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR)
			break;
		rc = 0;
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			int res = cqe->res;

			i = (unsigned)io_uring_cqe_get_data64(cqe);
			io_uring_cqe_seen(&ring, cqe);
			s = &slots[i];
			if (res == -EAGAIN || res == -EINTR) {
				bw_prep(&ring, fd, write, buf, s, i);
				continue;
			}
			if (res <= 0) {
				rc = res < 0 ? res : -EIO;
				inflight--;
				continue;
			}
			s->done += (uint32_t)res;
			if (s->done < s->len) { /* short: the rest */
				bw_prep(&ring, fd, write, buf, s, i);
				continue;
			}
			finished += s->len;
			if (rc == 0 && next < total) {
				*s = (struct bw_slot){ .off = next, .len = BW_BLOCK };
				next += BW_BLOCK;
				bw_prep(&ring, fd, write, buf, s, i);
			} else {
				inflight--;
			}
		}
		if (rc < 0) /* let the others drain, start no more */
			next = total;
	}
	io_uring_queue_exit(&ring);
	if (rc == 0 && finished != total)
		rc = -EIO;
	return rc;
}

static char *bw_buffer(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, *p;
	void *buf;
	size_t i;

	if (posix_memalign(&buf, SL_IO_DIRECT_ALIGN, (size_t)BW_DEPTH * BW_BLOCK))
		return NULL;
	/* incompressible contents: some virtual disks compress or dedupe */
	p = buf;
	for (i = 0; i < (size_t)BW_DEPTH * BW_BLOCK / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
	return buf;
}

/* Write (and, if `read`, then read back) a temp file; time the part
 * asked for. */
static int bw_measure(const char *dir, size_t bytes, bool read, double *bps)
{
	uint64_t total = RTE_ALIGN_CEIL((uint64_t)bytes, BW_BLOCK);
	char path[4096];
	double t0, t;
	char *buf;
	int fd, rc;

	if (dir == NULL || bytes == 0 || bps == NULL)
		return -EINVAL;
	buf = bw_buffer();
	if (buf == NULL)
		return -ENOMEM;
	fd = bw_open(dir, path, sizeof(path));
	if (fd < 0) {
		free(buf);
		return fd;
	}
	t0 = now_s();
	rc = bw_run(fd, true, buf, total);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	t = now_s() - t0;
	if (rc == 0 && read) {
		/* drop cached pages in case O_DIRECT was refused */
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		t0 = now_s();
		rc = bw_run(fd, false, buf, total);
		t = now_s() - t0;
	}
	close(fd);
	unlink(path);
	free(buf);
	if (rc == 0)
		*bps = t > 0 ? (double)total / t : 0.0;
	return rc;
}

int sl_io_measure_write_bw(const char *dir, size_t bytes, double *bytes_per_s)
{
	return bw_measure(dir, bytes, false, bytes_per_s);
}

int sl_io_measure_read_bw(const char *dir, size_t bytes, double *bytes_per_s)
{
	return bw_measure(dir, bytes, true, bytes_per_s);
}
