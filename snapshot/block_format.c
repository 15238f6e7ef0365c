/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Block framing shared by the data files of a checkpoint (keyed state,
 * channel state): the writer packs records into checksummed blocks in
 * sink buffers, the reader verifies them from memory or a file descriptor.
 * Full specification: docs/snapshot-format.md.  All integers little-endian.
 *
 *   file    := header block* trailer
 *
 *   header  := magic[8] version:u32 header_len:u32 fields... hcheck:u64
 *              header_len counts every header byte, hcheck included;
 *              hcheck = XXH3_64bits(header bytes [0, header_len - 8)).
 *
 *   block   := bcheck:u64 type:u32 len:u32 seq:u32 count:u32 payload[len]
 *              bcheck = XXH3_64bits_withSeed(block bytes [8, 24 + len),
 *                                            seed = hcheck)
 *              seq numbers the blocks 0, 1, 2, ... in file order; count is
 *              the number of records in the payload; type says what the
 *              records are (1..3 keyed state, 4..5 channel state).  Seeding
 *              with the header checksum ties a block to its file: a block
 *              copied from another file does not verify.
 *
 *   trailer := "SLTRAILR" trailer_off:u64 blocks:u64 summary_off:u64
 *              reserved:u64 (0) tcheck:u64          (48 bytes)
 *              trailer_off = file size - 48 (a truncated file cannot
 *              match it); blocks = number of blocks; summary_off = offset
 *              of the last block, the per-file summary;
 *              tcheck = XXH3_64bits_withSeed(trailer bytes [0, 40), hcheck).
 *
 * Every byte of a file is covered by one of the three checksums, so a
 * flipped byte anywhere is detected, and truncation at any length is
 * detected by the trailer.  The loader bounds every length by the bytes
 * actually present before allocating or reading.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_pvt.h"

int __sl_snap_errf(struct sl_snap_err *err, const char *name, int rc,
		   const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL)
		return rc;
	n = snprintf(err->msg, sizeof(err->msg), "%s: ", name ? name : "(input)");
	if (n < 0 || (size_t)n >= sizeof(err->msg))
		return rc;
	va_start(ap, fmt);
	vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * Output buffers handed back (sl_snap_buf_free()) are kept for the next
 * ones instead of going back to the allocator, which may return a ~1 MiB
 * buffer as fresh pages (mmap'ed, or trimmed off the heap when freed)
 * that the worker then faults in and zeroes (about 1.5 k page faults per
 * checkpoint of a 64 MiB state without the pool, docs/benchmarks.md).
 * Buffers are released by whichever thread completes the
 * write (often not the encoder's), hence one pool under a lock, taken
 * once per buffer.  At most SNAP_BUF_POOL buffers of at most
 * SNAP_BUF_POOL_MAX bytes stay in it (what a checkpoint has in flight).
 */
#define SNAP_BUF_POOL 16u
#define SNAP_BUF_POOL_MAX (4u << 20)

static struct {
	pthread_mutex_t lock;
	unsigned int n;
	void *buf[SNAP_BUF_POOL];
	size_t cap[SNAP_BUF_POOL];
} buf_pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* A pooled buffer of at least `need` bytes (*cap set to its size), or NULL. */
static void *buf_pool_get(size_t need, size_t *cap)
{
	void *b = NULL;

	pthread_mutex_lock(&buf_pool.lock);
	for (unsigned int i = buf_pool.n; i-- > 0;) {
		if (buf_pool.cap[i] < need)
			continue;
		b = buf_pool.buf[i];
		*cap = buf_pool.cap[i];
		buf_pool.n--;
		buf_pool.buf[i] = buf_pool.buf[buf_pool.n];
		buf_pool.cap[i] = buf_pool.cap[buf_pool.n];
		break;
	}
	pthread_mutex_unlock(&buf_pool.lock);
	return b;
}

void sl_snap_buf_free(void *buf)
{
	size_t cap;

	if (buf == NULL)
		return;
	/* buffers come from aligned_alloc(SNAP_BUF_ALIGN, multiple of it) */
	cap = malloc_usable_size(buf) & ~(size_t)(SNAP_BUF_ALIGN - 1);
	if (cap > 0 && cap <= SNAP_BUF_POOL_MAX) {
		pthread_mutex_lock(&buf_pool.lock);
		if (buf_pool.n < SNAP_BUF_POOL) {
			buf_pool.buf[buf_pool.n] = buf;
			buf_pool.cap[buf_pool.n] = cap;
			buf_pool.n++;
			buf = NULL;
		}
		pthread_mutex_unlock(&buf_pool.lock);
	}
	free(buf);
}

/* Empty the pool at exit, so that leak checkers see nothing held. */
__attribute__((destructor)) static void buf_pool_drain(void)
{
	pthread_mutex_lock(&buf_pool.lock);
	while (buf_pool.n > 0)
		free(buf_pool.buf[--buf_pool.n]);
	pthread_mutex_unlock(&buf_pool.lock);
}

/* ================================================================ writer */

/*
 * Output buffers.  The sink gets buffers laid out for O_DIRECT: each one
 * SNAP_BUF_ALIGN-aligned in memory and at a file offset that is a multiple
 * of it, every one but the last a multiple of it long, and at least
 * SNAP_FLUSH_BYTES (or a block) long, so that an asynchronous writer has
 * few, large, aligned requests in flight.  A flush hands out the aligned
 * prefix and carries the few bytes after it into the next buffer.  The
 * last buffer is zero-filled up to the next multiple of SNAP_BUF_ALIGN, so
 * a writer may write it whole and trim the file to its real size.
 */
static size_t round_buf(size_t n)
{
	return (n + SNAP_BUF_ALIGN - 1) & ~(size_t)(SNAP_BUF_ALIGN - 1);
}

/* Bytes a buffer collects before it is handed out (at seal time). */
static size_t flush_at(const struct __sl_snap_out *o)
{
	return o->block_size > SNAP_FLUSH_BYTES ? o->block_size : SNAP_FLUSH_BYTES;
}

/* Make room for `extra` more bytes in the current buffer.  Growing
 * copies, since realloc would not keep the alignment. */
static int out_reserve(struct __sl_snap_out *o, size_t extra)
{
	size_t need = o->len + extra, cap;
	uint8_t *nb;

	if (need <= o->cap && o->buf != NULL)
		return 0;
	/* one flush's worth, the block that crosses it, and the carried
	 * tail: the common case never grows */
	cap = o->cap ? o->cap : flush_at(o) + o->block_size + 2 * SNAP_BLK_HDR +
					SNAP_BUF_ALIGN;
	while (cap < need)
		cap *= 2;
	cap = round_buf(cap);
	nb = buf_pool_get(cap, &cap);
	if (nb == NULL)
		nb = aligned_alloc(SNAP_BUF_ALIGN, cap);
	if (nb == NULL)
		return -ENOMEM;
	if (o->len)
		memcpy(nb, o->buf, o->len);
	sl_snap_buf_free(o->buf);
	o->buf = nb;
	o->cap = cap;
	return 0;
}

int __sl_snap_out_init(struct __sl_snap_out *o, uint32_t block_size,
		       sl_snap_sink_fn sink, void *sink_arg)
{
	memset(o, 0, sizeof(*o));
	o->block_size = block_size ? block_size : SL_SNAP_BLOCK_DEFAULT;
	if (o->block_size > SL_SNAP_BLOCK_MAX || sink == NULL)
		return -EINVAL;
	o->blk_start = SIZE_MAX;
	o->sink = sink;
	o->sink_arg = sink_arg;
	o->file_hash = XXH3_createState();
	if (o->file_hash == NULL)
		return -ENOMEM;
	XXH3_64bits_reset(o->file_hash);
	return 0;
}

void __sl_snap_out_fini(struct __sl_snap_out *o)
{
	sl_snap_buf_free(o->buf);
	o->buf = NULL;
	if (o->file_hash)
		XXH3_freeState(o->file_hash);
	o->file_hash = NULL;
}

static int out_fail(struct __sl_snap_out *o, int rc)
{
	if (o->error == 0)
		o->error = rc;
	return o->error;
}

/* Hand the current buffer to the sink: its aligned prefix, or (last)
 * all of it, zero-padded to the alignment.  Called between blocks. */
static int out_flush(struct __sl_snap_out *o, bool last)
{
	uint8_t *b = o->buf, *nb = NULL;
	size_t len = o->len;
	size_t n = last ? len : len & ~(size_t)(SNAP_BUF_ALIGN - 1);
	size_t tail = len - n;
	uint64_t off = o->buf_off;
	int rc;

	if (o->error)
		return o->error;
	if (n == 0)
		return 0;
	if (o->hashed < n)
		XXH3_64bits_update(o->file_hash, b + o->hashed, n - o->hashed);
	o->hashed = o->hashed > n ? o->hashed - n : 0;
	if (tail > 0) {
		/* the bytes after the aligned prefix start the next buffer */
		o->buf = NULL;
		o->cap = 0;
		o->len = 0;
		if ((rc = out_reserve(o, tail)) < 0) {
			o->buf = b; /* freed by fini */
			return out_fail(o, rc);
		}
		nb = o->buf;
		memcpy(nb, b + n, tail);
	} else if (last) {
		memset(b + len, 0, round_buf(len) - len);
	}
	o->buf = nb;
	o->cap = nb ? o->cap : 0;
	o->len = tail;
	o->buf_off += n;
	rc = o->sink(o->sink_arg, off, b, n);
	return rc < 0 ? out_fail(o, rc) : 0;
}

int __sl_snap_out_header(struct __sl_snap_out *o, const char *magic,
			 const uint8_t *body, size_t body_len)
{
	size_t hlen = SNAP_HDR_PREFIX + body_len + 8;
	uint8_t *p;
	int rc;

	if (hlen > SNAP_HDR_MAX)
		return out_fail(o, -EINVAL);
	if ((rc = out_reserve(o, hlen)) < 0)
		return out_fail(o, rc);
	p = o->buf + o->len;
	memcpy(p, magic, SNAP_MAGIC_LEN);
	snap_put32(p + 8, SL_SNAP_FORMAT_VERSION);
	snap_put32(p + 12, (uint32_t)hlen);
	memcpy(p + SNAP_HDR_PREFIX, body, body_len);
	o->seed = XXH3_64bits(p, hlen - 8);
	snap_put64(p + hlen - 8, o->seed);
	o->len += hlen;
	return 0;
}

int __sl_snap_out_seal(struct __sl_snap_out *o)
{
	uint8_t *h;
	size_t plen;

	if (o->error)
		return o->error;
	if (o->blk_start == SIZE_MAX)
		return 0;
	h = o->buf + o->blk_start;
	plen = o->len - o->blk_start - SNAP_BLK_HDR;
	snap_put32(h + 8, o->blk_type);
	snap_put32(h + 12, (uint32_t)plen);
	snap_put32(h + 16, o->next_seq);
	snap_put32(h + 20, o->blk_count);
	snap_put64(h, XXH3_64bits_withSeed(h + 8, SNAP_BLK_HDR - 8 + plen,
					   o->seed));
	XXH3_64bits_update(o->file_hash, o->buf + o->hashed, o->len - o->hashed);
	o->hashed = o->len;
	o->next_seq++;
	o->blk_start = SIZE_MAX;
	if (o->len >= flush_at(o))
		return out_flush(o, false);
	return 0;
}

uint8_t *__sl_snap_out_record(struct __sl_snap_out *o, uint32_t type,
			      size_t rec_len)
{
	uint8_t *p;
	int rc;

	if (o->error)
		return NULL;
	if (rec_len > SL_SNAP_BLOCK_MAX) {
		out_fail(o, -E2BIG);
		return NULL;
	}
	if (o->blk_start != SIZE_MAX) {
		size_t plen = o->len - o->blk_start - SNAP_BLK_HDR;

		/* a record may exceed block_size alone, never join a block
		 * that would then exceed it */
		if (o->blk_type != type || plen + rec_len > o->block_size ||
		    o->blk_count == UINT32_MAX)
			if (__sl_snap_out_seal(o) < 0)
				return NULL;
	}
	if (o->blk_start == SIZE_MAX) {
		if (o->next_seq == UINT32_MAX) {
			out_fail(o, -EFBIG);
			return NULL;
		}
		if ((rc = out_reserve(o, SNAP_BLK_HDR + rec_len)) < 0) {
			out_fail(o, rc);
			return NULL;
		}
		o->blk_start = o->len;
		o->blk_type = type;
		o->blk_count = 0;
		o->len += SNAP_BLK_HDR;
	} else if ((rc = out_reserve(o, rec_len)) < 0) {
		out_fail(o, rc);
		return NULL;
	}
	p = o->buf + o->len;
	o->len += rec_len;
	o->blk_count++;
	return p;
}

uint64_t __sl_snap_out_offset(struct __sl_snap_out *o)
{
	__sl_snap_out_seal(o);
	return o->buf_off + o->len;
}

int __sl_snap_out_finish(struct __sl_snap_out *o, uint64_t summary_offset,
			 struct sl_snap_file_info *info)
{
	uint8_t *t;
	int rc;

	if (__sl_snap_out_seal(o) < 0)
		return o->error;
	if ((rc = out_reserve(o, SNAP_TRAILER_LEN)) < 0)
		return out_fail(o, rc);
	t = o->buf + o->len;
	memcpy(t, SNAP_MAGIC_TRAILER, SNAP_MAGIC_LEN);
	snap_put64(t + 8, o->buf_off + o->len);
	snap_put64(t + 16, o->next_seq);
	snap_put64(t + 24, summary_offset);
	snap_put64(t + 32, 0);
	snap_put64(t + 40, XXH3_64bits_withSeed(t, 40, o->seed));
	o->len += SNAP_TRAILER_LEN;
	if ((rc = out_flush(o, true)) < 0)
		return rc;
	if (info) {
		info->size = o->buf_off;
		info->xxh3 = XXH3_64bits_digest(o->file_hash);
		info->blocks = o->next_seq;
	}
	return 0;
}

/* ================================================================ reader */

int __sl_snap_in_init(struct __sl_snap_in *in, const struct sl_snap_src *src,
		      struct sl_snap_err *err)
{
	memset(in, 0, sizeof(*in));
	in->src = src;
	in->err = err;
	in->name = src && src->name ? src->name : "(input)";
	if (src == NULL)
		return __sl_snap_errf(err, in->name, -EINVAL, "no input");
	if (src->data != NULL) {
		in->size = src->len;
	} else {
		struct stat st;

		if (src->fd < 0)
			return __sl_snap_errf(err, in->name, -EBADF,
					      "no data and no file descriptor");
		if (fstat(src->fd, &st) < 0)
			return __sl_snap_errf(err, in->name, -errno,
					      "cannot stat: %s", strerror(errno));
		if (!S_ISREG(st.st_mode))
			return __sl_snap_errf(err, in->name, -EINVAL,
					      "not a regular file");
		in->size = (uint64_t)st.st_size;
	}
	return 0;
}

void __sl_snap_in_fini(struct __sl_snap_in *in)
{
	free(in->scratch);
	in->scratch = NULL;
	in->scratch_cap = 0;
}

int __sl_snap_in_read(struct __sl_snap_in *in, uint64_t off, size_t len,
		      const uint8_t **p)
{
	size_t done = 0;

	if (off > in->size || len > in->size - off)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "truncated: %zu bytes wanted at offset %llu of %llu",
				      len, (unsigned long long)off,
				      (unsigned long long)in->size);
	if (in->src->data != NULL) {
		*p = (const uint8_t *)in->src->data + off;
		return 0;
	}
	/* len is bounded by the file size just checked, so this allocation
	 * is never larger than the file */
	if (len > in->scratch_cap) {
		size_t cap = len < 4096 ? 4096 : len;
		uint8_t *nb = malloc(cap);

		if (nb == NULL)
			return __sl_snap_errf(in->err, in->name, -ENOMEM,
					      "out of memory reading %zu bytes", len);
		free(in->scratch);
		in->scratch = nb;
		in->scratch_cap = cap;
	}
	while (done < len) {
		ssize_t n = pread(in->src->fd, in->scratch + done, len - done,
				  (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return __sl_snap_errf(in->err, in->name, -errno,
					      "read error at offset %llu: %s",
					      (unsigned long long)(off + done),
					      strerror(errno));
		}
		if (n == 0)
			return __sl_snap_errf(in->err, in->name, -EBADMSG,
					      "file shrank while reading (offset %llu)",
					      (unsigned long long)(off + done));
		done += (size_t)n;
	}
	*p = in->scratch;
	return 0;
}

int __sl_snap_in_header(struct __sl_snap_in *in, const char *magic,
			const char *what, const uint8_t **body,
			size_t *body_len)
{
	const uint8_t *p;
	uint32_t version, hlen;
	int rc;

	if (in->size < SNAP_HDR_PREFIX + 8 + SNAP_TRAILER_LEN)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "too short for a %s file (%llu bytes)", what,
				      (unsigned long long)in->size);
	if ((rc = __sl_snap_in_read(in, 0, SNAP_HDR_PREFIX, &p)) < 0)
		return rc;
	if (memcmp(p, magic, SNAP_MAGIC_LEN) != 0)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "not a %s file (bad magic)", what);
	version = snap_get32(p + 8);
	hlen = snap_get32(p + 12);
	if (hlen < SNAP_HDR_PREFIX + 8 || hlen > SNAP_HDR_MAX ||
	    hlen > in->size - SNAP_TRAILER_LEN)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "bad header length %u", hlen);
	if ((rc = __sl_snap_in_read(in, 0, hlen, &p)) < 0)
		return rc;
	in->seed = XXH3_64bits(p, hlen - 8);
	if (!snap_sum_ok(snap_get64(p + hlen - 8), in->seed))
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "header checksum mismatch");
	/* the version is checked after the checksum, so that a flipped bit
	 * reads as corruption rather than as a newer format */
	if (version != SL_SNAP_FORMAT_VERSION)
		return __sl_snap_errf(in->err, in->name, -ENOTSUP,
				      "format version %u, this build reads %u",
				      version, SL_SNAP_FORMAT_VERSION);
	in->hdr_len = hlen;
	*body = p + SNAP_HDR_PREFIX;
	*body_len = hlen - SNAP_HDR_PREFIX - 8;
	return 0;
}

int __sl_snap_in_trailer(struct __sl_snap_in *in, struct __sl_snap_trailer *t)
{
	const uint8_t *p;
	uint64_t end = in->size - SNAP_TRAILER_LEN;
	int rc;

	if ((rc = __sl_snap_in_read(in, end, SNAP_TRAILER_LEN, &p)) < 0)
		return rc;
	if (memcmp(p, SNAP_MAGIC_TRAILER, SNAP_MAGIC_LEN) != 0 ||
	    !snap_sum_ok(snap_get64(p + 40),
				XXH3_64bits_withSeed(p, 40, in->seed)))
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "no valid trailer (truncated or corrupt)");
	t->end = snap_get64(p + 8);
	t->blocks = snap_get64(p + 16);
	t->summary_off = snap_get64(p + 24);
	if (t->end != end)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "trailer says the file ends at %llu, it ends at %llu",
				      (unsigned long long)t->end,
				      (unsigned long long)end);
	if (snap_get64(p + 32) != 0 || t->blocks == 0 ||
	    t->blocks > UINT32_MAX || t->summary_off < in->hdr_len ||
	    t->summary_off > end - SNAP_BLK_HDR)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "trailer fields out of range");
	return 0;
}

int __sl_snap_in_block(struct __sl_snap_in *in, uint64_t off, uint64_t limit,
		       uint32_t type, uint32_t seq, struct __sl_snap_block *b)
{
	const uint8_t *p;
	uint32_t len;
	int rc;

	if (off > limit || limit - off < SNAP_BLK_HDR)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "block %u: truncated header at offset %llu",
				      seq, (unsigned long long)off);
	if ((rc = __sl_snap_in_read(in, off, SNAP_BLK_HDR, &p)) < 0)
		return rc;
	len = snap_get32(p + 12);
	if (len > SL_SNAP_BLOCK_MAX || len > limit - off - SNAP_BLK_HDR)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "block %u: length %u runs past its section",
				      seq, len);
	if ((rc = __sl_snap_in_read(in, off, SNAP_BLK_HDR + (size_t)len, &p)) < 0)
		return rc;
	if (!snap_sum_ok(snap_get64(p),
			 XXH3_64bits_withSeed(p + 8, SNAP_BLK_HDR - 8 + len,
					      in->seed)))
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "block %u checksum mismatch", seq);
	b->type = snap_get32(p + 8);
	b->len = len;
	b->seq = snap_get32(p + 16);
	b->count = snap_get32(p + 20);
	b->payload = p + SNAP_BLK_HDR;
	b->next = off + SNAP_BLK_HDR + len;
	if (b->seq != seq)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "block %u found where block %u belongs",
				      b->seq, seq);
	if (b->type != type)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "block %u has type %u, expected %u", seq,
				      b->type, type);
	return 0;
}

int __sl_snap_hash_fd(int fd, uint64_t *size, uint64_t *hash)
{
	XXH3_state_t *st = XXH3_createState();
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	uint64_t total = 0;
	int rc = 0;

	if (st == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	XXH3_64bits_reset(st);
	for (;;) {
		ssize_t n = pread(fd, buf, cap, (off_t)total);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		XXH3_64bits_update(st, buf, (size_t)n);
		total += (uint64_t)n;
	}
	*size = total;
	*hash = XXH3_64bits_digest(st);
out:
	free(buf);
	if (st)
		XXH3_freeState(st);
	return rc;
}

/* ============================================================== sources */

int sl_snap_src_open(struct sl_snap_src *src, const char *path,
		     const char *name, struct sl_snap_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	memset(src, 0, sizeof(*src));
	src->fd = -1;
	src->name = name ? name : path;
	if (fd < 0)
		return __sl_snap_errf(err, src->name, -errno, "cannot open: %s",
				      errno == ELOOP ? "is a symlink" :
				      strerror(errno));
	src->fd = fd;
	return 0;
}

void sl_snap_src_close(struct sl_snap_src *src)
{
	if (src->data == NULL && src->fd >= 0)
		close(src->fd);
	src->fd = -1;
}
