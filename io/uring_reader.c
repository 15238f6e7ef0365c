/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The parallel io_uring reader (contract in sluice/io.h, decisions in
 * docs/io.md): restore loads checkpoint files into memory with it.
 *
 * A call owns a private io_uring and a fixed pool of `queue_depth` slots;
 * a slot is one chunk (up to chunk_size bytes at a chunk-aligned offset)
 * of one file, in the kernel or about to be resubmitted.  Files are taken
 * in order: the current file hands its next chunk to every free slot, and
 * when it has none left the next file is opened.  So a large file has
 * many chunks in flight, and many small files are in flight together,
 * while only the files with a chunk in flight hold a descriptor.
 *
 *   pre-pass: fstatat every file (progress total; a missing file fails
 *             here, before anything is read)
 *   fill:     free slot -> next chunk of the current file -> read SQE
 *   reap:     CQE -> short: resubmit the rest; -EAGAIN/-EINTR: again;
 *             error: the file fails and no new chunk starts anywhere;
 *             chunk complete: progress, and the file is done when all
 *             of its chunks are
 *
 * O_DIRECT wants buffer address, offset and length aligned.  Buffers are
 * allocated aligned and rounded up to SL_IO_DIRECT_ALIGN, chunks start at
 * aligned offsets, and the last chunk asks for the rounded-up length (the
 * kernel stops at end of file).  A short O_DIRECT result that leaves an
 * unaligned remainder is resubmitted from the aligned offset below it:
 * the few bytes read twice are the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "sluice/io.h"

#define RD_DEFAULT_DEPTH 32u
#define RD_MAX_DEPTH 4096u
#define RD_DEFAULT_CHUNK (1u << 20)
#define RD_MAX_CHUNK (64u << 20)
#define RD_ALIGN ((uint64_t)SL_IO_DIRECT_ALIGN)
#define RD_PROGRESS_MIN (1ull << 20)
#define RD_SUBMIT_EVERY 4u

static inline uint64_t align_down(uint64_t v)
{
	return v & ~(RD_ALIGN - 1);
}

static inline uint64_t align_up(uint64_t v)
{
	return (v + RD_ALIGN - 1) & ~(RD_ALIGN - 1);
}

enum rd_state {
	RD_WAITING,  /* not opened yet */
	RD_READING,  /* open, chunks being issued or in flight */
	RD_DONE,     /* read completely: data and len are the caller's */
	RD_FAILED,   /* error set; cleaned up once no chunk is in flight */
};

/* One file of the call. */
struct rd_file {
	struct sl_io_read_file *f;
	enum rd_state state;
	int fd;
	uint64_t size;	   /* bytes to read: the size at open */
	uint64_t pre_size; /* the size the pre-pass saw (progress total) */
	uint64_t issued;   /* chunks up to here were handed to slots */
	uint64_t done;	   /* bytes of completed chunks */
	unsigned inflight; /* slots working on this file */
	bool fault;	   /* the fault set applies to it */
};

/* One chunk in flight. */
struct rd_slot {
	struct rd_file *file;
	uint64_t off;	 /* chunk start in the file */
	uint32_t len;	 /* chunk bytes */
	uint32_t got;	 /* bytes [off, off + got) are read */
	uint64_t rstart; /* offset the SQE in the kernel reads from */
	uint32_t rlen;	 /* bytes it asked for */
};

struct rd {
	struct io_uring ring;
	struct sl_io_read_conf conf; /* defaults applied */
	struct sl_io_read_fault fault;
	bool fault_on;
	int dirfd;
	struct rd_file *files;
	unsigned n, next_file; /* next file to open */
	struct rd_file *cur;   /* file handing out chunks */
	struct rd_slot *slots;
	unsigned *free_slots, n_free;
	unsigned inflight;
	int first_error;	  /* set: start nothing new */
	uint64_t total, done;	  /* progress */
	uint64_t next_progress, reported;
	bool reported_any;
	uint64_t fault_cqes, fault_reads, fault_shorts; /* fault counters */
	struct sl_io_read_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Record a file's failure; the first one stops new reads everywhere. */
static void rd_fail(struct rd *r, struct rd_file *file, enum sl_io_read_op op,
		    int err, uint64_t offset)
{
	if (file->state != RD_FAILED) {
		file->f->error = err;
		file->f->error_op = (uint8_t)op;
		file->f->error_offset = offset;
		file->state = RD_FAILED;
	}
	if (r->first_error == 0)
		r->first_error = err;
	if (r->cur == file)
		r->cur = NULL;
}

/* A failed file with nothing in flight gives its memory and fd back. */
static void rd_release(struct rd_file *file)
{
	if (file->fd >= 0) {
		close(file->fd);
		file->fd = -1;
	}
	if (file->state == RD_FAILED) {
		free(file->f->data);
		file->f->data = NULL;
		file->f->len = 0;
	}
}

static void rd_finish(struct rd *r, struct rd_file *file)
{
	int rc;

	file->state = RD_DONE;
	file->f->len = file->size;
	rd_release(file);
	r->st.files++;
	r->st.bytes += file->size;
	r->st.direct_files += file->f->direct;
	if (r->conf.on_file != NULL &&
	    (rc = r->conf.on_file(r->conf.on_file_arg,
				  (unsigned)(file - r->files))) < 0) {
		rd_fail(r, file, SL_IO_READ_CHECK, rc, 0);
		rd_release(file);
	}
}

/*
 * Memory for a file of `size` bytes: never NULL, also for an empty file;
 * rounded up to a block so that the last O_DIRECT read may ask for a
 * whole one.  Plain pages: MADV_HUGEPAGE made the reads 3-10x slower on
 * the shared test VM (direct compaction at fault time), see docs/io.md.
 */
static int rd_alloc(uint64_t size, void **data)
{
	if (size > SIZE_MAX - RD_ALIGN)
		return -ENOMEM;
	return posix_memalign(data, RD_ALIGN, size ? align_up(size) : RD_ALIGN) ?
		       -ENOMEM : 0;
}

/* Open the next file and allocate its buffer; NULL when there is none
 * left or it failed (then r->first_error is set).  Empty files finish
 * here. */
static struct rd_file *rd_open_next(struct rd *r)
{
	while (r->next_file < r->n && r->first_error == 0) {
		struct rd_file *file = &r->files[r->next_file++];
		struct sl_io_read_file *f = file->f;
		int flags = O_RDONLY | O_CLOEXEC | (r->conf.nofollow ? O_NOFOLLOW : 0);
		struct stat st;
		void *data;

		file->fd = -1;
		if (!r->conf.buffered) {
			file->fd = openat(r->dirfd, f->path, flags | O_DIRECT);
			/* filesystems without O_DIRECT refuse it with EINVAL */
			f->direct = file->fd >= 0;
		}
		if (file->fd < 0 && (r->conf.buffered || errno == EINVAL))
			file->fd = openat(r->dirfd, f->path, flags);
		if (file->fd < 0) {
			rd_fail(r, file, SL_IO_READ_OPEN, -errno, 0);
			return NULL;
		}
		if (fstat(file->fd, &st) < 0) {
			rd_fail(r, file, SL_IO_READ_STAT, -errno, 0);
			rd_release(file);
			return NULL;
		}
		if (!S_ISREG(st.st_mode)) {
			rd_fail(r, file, SL_IO_READ_STAT,
				S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, 0);
			rd_release(file);
			return NULL;
		}
		file->size = (uint64_t)st.st_size;
		r->total = r->total - file->pre_size + file->size;
		if (rd_alloc(file->size, &data) < 0) {
			rd_fail(r, file, SL_IO_READ_ALLOC, -ENOMEM, 0);
			rd_release(file);
			return NULL;
		}
		f->data = data;
		file->state = RD_READING;
		file->fault = r->fault_on &&
			      (r->fault.path_substr[0] == '\0' ||
			       strstr(f->path, r->fault.path_substr) != NULL);
		if (file->size == 0) {
			rd_finish(r, file);
			continue;
		}
		return file;
	}
	return NULL;
}

/* Queue the read of what is missing of slot i's chunk. */
static void rd_prep(struct rd *r, unsigned i)
{
	struct rd_slot *s = &r->slots[i];
	struct rd_file *file = s->file;
	uint64_t pos = s->off + s->got, end = s->off + s->len, len;
	struct io_uring_sqe *sqe;

	if (file->f->direct) {
		pos = align_down(pos);
		end = align_up(end);
	}
	len = end - pos;
	if (file->fault && r->fault.max_read_bytes) {
		uint64_t cap = r->fault.max_read_bytes;

		if (file->f->direct)
			cap = cap < RD_ALIGN ? RD_ALIGN : align_down(cap);
		if (len > cap)
			len = cap;
	}
	s->rstart = pos;
	s->rlen = (uint32_t)len;
	/* at most queue_depth slots exist and the SQ has that many entries,
	 * so there is always one */
	sqe = io_uring_get_sqe(&r->ring);
	io_uring_prep_read(sqe, file->fd, (char *)file->f->data + pos,
			   (unsigned)len, pos);
	io_uring_sqe_set_data64(sqe, i);
	r->inflight++;
	r->st.reads++;
	if (r->inflight > r->st.max_inflight)
		r->st.max_inflight = r->inflight;
}

/*
 * Give every free slot a chunk, opening files as needed.  The reads are
 * handed to the kernel RD_SUBMIT_EVERY at a time rather than all at the
 * end: the pages of fresh buffers are faulted in as each read is
 * submitted, which for a whole queue of them takes long enough for the
 * disk to sit idle until the last one is prepared (the first fill of a
 * restore is exactly that).
 */
static void rd_fill(struct rd *r)
{
	unsigned queued = 0;

	while (r->n_free > 0 && r->first_error == 0) {
		struct rd_file *file = r->cur;
		unsigned i;
		struct rd_slot *s;

		if (file == NULL || file->issued >= file->size) {
			file = r->cur = rd_open_next(r);
			if (file == NULL)
				return;
		}
		i = r->free_slots[--r->n_free];
		s = &r->slots[i];
		s->file = file;
		s->off = file->issued;
		s->len = (uint32_t)(file->size - file->issued < r->conf.chunk_size ?
					    file->size - file->issued :
					    r->conf.chunk_size);
		s->got = 0;
		file->issued += s->len;
		file->inflight++;
		rd_prep(r, i);
		if (++queued % RD_SUBMIT_EVERY == 0 && io_uring_submit(&r->ring) >= 0)
			r->st.submits++;
	}
}

static void rd_slot_free(struct rd *r, unsigned i)
{
	struct rd_file *file = r->slots[i].file;

	r->slots[i].file = NULL;
	r->free_slots[r->n_free++] = i;
	file->inflight--;
	if (file->inflight > 0)
		return;
	if (file->state == RD_FAILED)
		rd_release(file);
	else if (file->done == file->size)
		rd_finish(r, file);
}

/* Injected faults on a CQE of a file they apply to. */
static int rd_fault(struct rd *r, int res)
{
	if (r->fault.nth_read && ++r->fault_reads == r->fault.nth_read)
		return -(r->fault.nth_err ? r->fault.nth_err : EIO);
	if (res > 0 && r->fault.eagain_every &&
	    ++r->fault_cqes % r->fault.eagain_every == 0)
		return (r->fault_cqes / r->fault.eagain_every) % 2 ? -EAGAIN : -EINTR;
	if (res > 1 && r->fault.short_every &&
	    ++r->fault_shorts % r->fault.short_every == 0)
		return (res / 2) | 1;
	return res;
}

static void rd_complete(struct rd *r, unsigned i, int res)
{
	struct rd_slot *s = &r->slots[i];
	struct rd_file *file = s->file;
	uint64_t reached;

	r->inflight--;
	if (file->fault)
		res = rd_fault(r, res);
	if (file->state == RD_FAILED) {
		rd_slot_free(r, i);
		return;
	}
	if (res == -EAGAIN || res == -EINTR) {
		r->st.retries++;
		if (r->first_error == 0) {
			rd_prep(r, i);
			return;
		}
		rd_fail(r, file, SL_IO_READ_CANCELED, -ECANCELED, 0);
		rd_slot_free(r, i);
		return;
	}
	if (res < 0) {
		rd_fail(r, file, SL_IO_READ_READ, res, s->rstart);
		rd_slot_free(r, i);
		return;
	}
	if (res == 0) {
		rd_fail(r, file, SL_IO_READ_SHRANK, -EIO, s->rstart);
		rd_slot_free(r, i);
		return;
	}
	reached = s->rstart + (uint64_t)res;
	if (reached > s->off + s->len)
		reached = s->off + s->len;
	if (reached > s->off + s->got)
		s->got = (uint32_t)(reached - s->off);
	if (s->got < s->len) {
		r->st.short_reads++;
		if (r->first_error == 0) {
			rd_prep(r, i);
			return;
		}
		rd_fail(r, file, SL_IO_READ_CANCELED, -ECANCELED, 0);
		rd_slot_free(r, i);
		return;
	}
	file->done += s->len;
	r->done += s->len;
	rd_slot_free(r, i);
}

static void rd_progress(struct rd *r, bool last)
{
	if (r->conf.progress == NULL)
		return;
	if (last ? r->reported_any && r->done == r->reported :
		   r->done < r->next_progress)
		return;
	r->conf.progress(r->conf.progress_arg, r->done, r->total);
	r->reported = r->done;
	r->reported_any = true;
	r->next_progress = r->done + r->conf.progress_every;
}

/* Submit what is queued, wait for at least one CQE, handle them all.
 * Returns 0, or a negative errno if the ring itself failed. */
static int rd_wait_and_reap(struct rd *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	int rc;

	rc = io_uring_submit_and_wait(&r->ring, 1);
	r->st.submits++;
	/* -EINTR: a signal; -EAGAIN/-EBUSY: the kernel wants CQEs reaped
	 * first, which the loop below does */
	if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return rc;
	io_uring_for_each_cqe(&r->ring, head, cqe) {
		rd_complete(r, (unsigned)io_uring_cqe_get_data64(cqe), cqe->res);
		seen++;
	}
	io_uring_cq_advance(&r->ring, seen);
	return 0;
}

static int rd_conf(struct rd *r, const struct sl_io_read_conf *conf)
{
	if (conf)
		r->conf = *conf;
	if (r->conf.queue_depth == 0)
		r->conf.queue_depth = RD_DEFAULT_DEPTH;
	if (r->conf.chunk_size == 0)
		r->conf.chunk_size = RD_DEFAULT_CHUNK;
	if (r->conf.queue_depth > RD_MAX_DEPTH ||
	    r->conf.chunk_size > RD_MAX_CHUNK || r->conf.chunk_size % RD_ALIGN)
		return -EINVAL;
	if (r->conf.fault) {
		r->fault = *r->conf.fault;
		r->fault.path_substr[sizeof(r->fault.path_substr) - 1] = '\0';
		if (r->fault.eagain_every == 1 || r->fault.nth_err < 0)
			return -EINVAL;
		r->fault_on = r->fault.max_read_bytes || r->fault.eagain_every ||
			      r->fault.nth_read || r->fault.short_every;
	}
	return 0;
}

/* Look every size up; a file that cannot be read fails the call now. */
static void rd_prepass(struct rd *r)
{
	for (unsigned k = 0; k < r->n && r->first_error == 0; k++) {
		struct rd_file *file = &r->files[k];
		struct stat st;

		if (fstatat(r->dirfd, file->f->path, &st,
			    r->conf.nofollow ? AT_SYMLINK_NOFOLLOW : 0) < 0)
			rd_fail(r, file, SL_IO_READ_OPEN, -errno, 0);
		else if (S_ISLNK(st.st_mode))
			rd_fail(r, file, SL_IO_READ_OPEN, -ELOOP, 0);
		else if (!S_ISREG(st.st_mode))
			rd_fail(r, file, SL_IO_READ_STAT,
				S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, 0);
		else
			r->total += file->pre_size = (uint64_t)st.st_size;
	}
}

int sl_io_read_files(struct sl_io_read_file *files, unsigned n,
		     const struct sl_io_read_conf *conf,
		     struct sl_io_read_stats *stats)
{
	struct rd r = { .dirfd = AT_FDCWD };
	uint64_t t0 = now_ns();
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if ((n && files == NULL) || (rc = rd_conf(&r, conf)) < 0)
		return -EINVAL;
	for (unsigned k = 0; k < n; k++)
		if (files[k].path == NULL)
			return -EINVAL;
	for (unsigned k = 0; k < n; k++) {
		files[k].data = NULL;
		files[k].len = 0;
		files[k].error = 0;
		files[k].error_op = SL_IO_READ_OK;
		files[k].direct = false;
		files[k].error_offset = 0;
	}
	if (n == 0)
		return 0;
	r.n = n;
	r.files = calloc(n, sizeof(*r.files));
	r.slots = calloc(r.conf.queue_depth, sizeof(*r.slots));
	r.free_slots = calloc(r.conf.queue_depth, sizeof(*r.free_slots));
	rc = r.files && r.slots && r.free_slots ? 0 : -ENOMEM;
	if (rc == 0 && r.conf.dir) {
		r.dirfd = open(r.conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r.dirfd < 0)
			rc = -errno;
	}
	if (rc == 0)
		rc = io_uring_queue_init(r.conf.queue_depth, &r.ring, 0);
	if (rc < 0) {
		for (unsigned k = 0; k < n; k++) {
			files[k].error = rc;
			files[k].error_op = SL_IO_READ_SETUP;
		}
		goto out;
	}
	for (unsigned k = 0; k < n; k++) {
		r.files[k].f = &files[k];
		r.files[k].fd = -1;
	}
	for (unsigned k = 0; k < r.conf.queue_depth; k++)
		r.free_slots[k] = r.conf.queue_depth - 1 - k;
	r.n_free = r.conf.queue_depth;

	rd_prepass(&r);
	if (r.conf.progress_every == 0)
		r.conf.progress_every = r.total / 100 > RD_PROGRESS_MIN ?
						r.total / 100 : RD_PROGRESS_MIN;
	r.next_progress = r.conf.progress_every;
	for (;;) {
		rd_fill(&r);
		if (r.inflight == 0)
			break;
		rc = rd_wait_and_reap(&r);
		if (rc < 0) {
			/* the ring is broken with reads in the kernel: their
			 * buffers cannot be freed safely, so they are left
			 * (a leak, never a use after free) */
			r.first_error = r.first_error ? r.first_error : rc;
			for (unsigned k = 0; k < n; k++)
				if (r.files[k].inflight)
					r.files[k].f->data = NULL;
			break;
		}
		rd_progress(&r, false);
	}
	io_uring_queue_exit(&r.ring);
	if (r.first_error == 0)
		rd_progress(&r, true);
	rc = r.first_error;
	/* whatever did not finish: canceled, with nothing left behind */
	for (unsigned k = 0; k < n; k++) {
		struct rd_file *file = &r.files[k];

		if (file->state == RD_DONE)
			continue;
		if (file->state != RD_FAILED)
			rd_fail(&r, file, SL_IO_READ_CANCELED, -ECANCELED, 0);
		rd_release(file);
	}
out:
	if (r.dirfd >= 0)
		close(r.dirfd);
	free(r.files);
	free(r.slots);
	free(r.free_slots);
	r.st.elapsed_ns = now_ns() - t0;
	if (stats)
		*stats = r.st;
	return rc;
}

int sl_io_read_describe(const struct sl_io_read_file *f, char *buf, size_t len)
{
	const char *path = f->path ? f->path : "(no path)";
	const char *err = strerror(f->error < 0 ? -f->error : f->error);

	switch (f->error_op) {
	case SL_IO_READ_OK:
		return snprintf(buf, len, "%s: read, %llu bytes", path,
				(unsigned long long)f->len);
	case SL_IO_READ_OPEN:
		return snprintf(buf, len, "%s: open: %s", path,
				f->error == -ELOOP ? "is a symlink (refused)" : err);
	case SL_IO_READ_STAT:
		return snprintf(buf, len, "%s: %s", path,
				f->error == -EINVAL ? "not a regular file" : err);
	case SL_IO_READ_ALLOC:
		return snprintf(buf, len, "%s: no memory for its contents", path);
	case SL_IO_READ_READ:
		return snprintf(buf, len, "%s: read at offset %llu: %s", path,
				(unsigned long long)f->error_offset, err);
	case SL_IO_READ_SHRANK:
		return snprintf(buf, len,
				"%s: ends at offset %llu, shorter than when it was opened (changed while being read)",
				path, (unsigned long long)f->error_offset);
	case SL_IO_READ_CANCELED:
		return snprintf(buf, len, "%s: not read: another file failed first",
				path);
	case SL_IO_READ_SETUP:
		return snprintf(buf, len, "%s: not read: the reader could not start: %s",
				path, err);
	case SL_IO_READ_CHECK:
		return snprintf(buf, len, "%s: read, but refused by its check: %s",
				path, err);
	}
	return snprintf(buf, len, "%s: %s", path, err);
}
