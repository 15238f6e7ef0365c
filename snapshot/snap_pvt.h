/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of the snapshot component: little-endian field access, the
 * block framing shared by the keyed-state and channel-state files (writer
 * side: __sl_snap_out, reader side: __sl_snap_in), and error messages.
 * Never installed; see docs/snapshot-format.md for the byte layout.
 */
#ifndef SLUICE_SNAP_PVT_H
#define SLUICE_SNAP_PVT_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sluice/snapshot.h"

/* ---- constants of the framing (docs/snapshot-format.md) --------------- */

#define SNAP_MAGIC_LEN 8
#define SNAP_MAGIC_KSTATE "SLKSTATE"
#define SNAP_MAGIC_CHAN "SLCHSTAT"
#define SNAP_MAGIC_META "SLMETADT"
#define SNAP_MAGIC_TRAILER "SLTRAILR"
#define SNAP_MAGIC_META_END "SLMDTEND"

/* common file-header prefix: magic, version, header length */
#define SNAP_HDR_PREFIX 16u
/* a header is at most this long (the channel table is the big one) */
#define SNAP_HDR_MAX (1u << 20)
/* block header: checksum, type, payload length, sequence, count */
#define SNAP_BLK_HDR 24u
#define SNAP_TRAILER_LEN 48u
/* writer buffers: alignment (O_DIRECT) and the bytes one collects before
 * it goes to the sink (block_format.c, "Output buffers") */
#define SNAP_BUF_ALIGN SL_SNAP_BUF_ALIGN
#define SNAP_FLUSH_BYTES (1u << 20)

enum snap_block_type {
	SNAP_BLK_KEYED_ENTRIES = 1,
	SNAP_BLK_KEYED_DELETIONS = 2,
	SNAP_BLK_KEYED_SUMMARY = 3,
	SNAP_BLK_CHAN_BATCHES = 4,
	SNAP_BLK_CHAN_SUMMARY = 5,
};

/* ---- little-endian fields ------------------------------------------- */

/* Unaligned little-endian access: a plain load/store on little-endian
 * hosts, a byte swap elsewhere. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SNAP_LE16(x) (x)
#define SNAP_LE32(x) (x)
#define SNAP_LE64(x) (x)
#else
#define SNAP_LE16(x) __builtin_bswap16(x)
#define SNAP_LE32(x) __builtin_bswap32(x)
#define SNAP_LE64(x) __builtin_bswap64(x)
#endif

static inline void snap_put16(uint8_t *p, uint16_t v)
{
	v = SNAP_LE16(v);
	memcpy(p, &v, 2);
}

static inline void snap_put32(uint8_t *p, uint32_t v)
{
	v = SNAP_LE32(v);
	memcpy(p, &v, 4);
}

static inline void snap_put64(uint8_t *p, uint64_t v)
{
	v = SNAP_LE64(v);
	memcpy(p, &v, 8);
}

static inline uint16_t snap_get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return SNAP_LE16(v);
}

static inline uint32_t snap_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return SNAP_LE32(v);
}

static inline uint64_t snap_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return SNAP_LE64(v);
}

/* ---- checksums -------------------------------------------------------- */

/* Whether a stored checksum matches the computed one.  A fuzzing build
 * (-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the OSS-Fuzz convention)
 * accepts any value, so that a coverage-guided fuzzer reaches the parsers
 * behind the checksums instead of stopping at them. */
static inline int snap_sum_ok(uint64_t stored, uint64_t computed)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	(void)stored;
	(void)computed;
	return 1;
#else
	return stored == computed;
#endif
}

/* ---- error messages --------------------------------------------------- */

/* "<name>: <message>" into err (if any); returns rc so that callers can
 * `return snap_errf(err, name, -EBADMSG, "...")`. */
int __sl_snap_errf(struct sl_snap_err *err, const char *name, int rc,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- writer: blocks into sink buffers -------------------------------- */

struct __sl_snap_out {
	uint8_t *buf;		/* current buffer (not yet handed out) */
	size_t len, cap;
	uint64_t buf_off;	/* file offset of buf[0] */
	size_t blk_start;	/* offset in buf of the open block, or SIZE_MAX */
	uint32_t blk_type;
	uint32_t blk_count;
	uint32_t next_seq;	/* sequence number of the next block */
	uint32_t block_size;	/* target payload per block */
	uint64_t seed;		/* block checksum seed: header checksum */
	XXH3_state_t *file_hash; /* xxh3 of every byte handed out */
	size_t hashed;		/* bytes of buf already in file_hash: each
				 * sealed block goes in at once, while it
				 * is still in the cache */
	sl_snap_sink_fn sink;
	void *sink_arg;
	int error;		/* latched first error */
};

int __sl_snap_out_init(struct __sl_snap_out *o, uint32_t block_size,
		       sl_snap_sink_fn sink, void *sink_arg);
void __sl_snap_out_fini(struct __sl_snap_out *o);

/* Write the file header: the 16-byte prefix (magic, version, length),
 * `body` (the kind-specific fields, body_len bytes), and its checksum;
 * the checksum becomes the seed of every block checksum. */
int __sl_snap_out_header(struct __sl_snap_out *o, const char *magic,
			 const uint8_t *body, size_t body_len);

/* Room for one record of rec_len bytes in a block of `type`: seals the
 * open block first if it has another type or would outgrow block_size.
 * Returns a pointer to write the record to, or NULL (o->error set). */
uint8_t *__sl_snap_out_record(struct __sl_snap_out *o, uint32_t type,
			      size_t rec_len);

/* Fast path of __sl_snap_out_record() for the common case, inlined into
 * the per-entry encoders: the open block has the type and room for one
 * more record, and so has the buffer. */
static inline uint8_t *__sl_snap_out_record_fast(struct __sl_snap_out *o,
						 uint32_t type, size_t rec_len)
{
	if (__builtin_expect(o->blk_start != SIZE_MAX && o->blk_type == type &&
			     o->len - o->blk_start - SNAP_BLK_HDR + rec_len <=
				     o->block_size &&
			     o->len + rec_len <= o->cap &&
			     o->blk_count < UINT32_MAX, 1)) {
		uint8_t *p = o->buf + o->len;

		o->len += rec_len;
		o->blk_count++;
		return p;
	}
	return __sl_snap_out_record(o, type, rec_len);
}

/* Close the open block (if any); hand the buffer out if it is full. */
int __sl_snap_out_seal(struct __sl_snap_out *o);

/* Offset in the file where the next block will start (seals first). */
uint64_t __sl_snap_out_offset(struct __sl_snap_out *o);

/* Seal, write the trailer, hand out the rest; fills size/xxh3/blocks. */
int __sl_snap_out_finish(struct __sl_snap_out *o, uint64_t summary_offset,
			 struct sl_snap_file_info *info);

/* ---- reader: verified blocks from a source --------------------------- */

struct __sl_snap_in {
	const struct sl_snap_src *src;
	const char *name;
	struct sl_snap_err *err;
	uint64_t size;
	uint8_t *scratch; /* fd sources: the last bytes read */
	size_t scratch_cap;
	uint64_t seed;	  /* header checksum */
	uint32_t hdr_len;
};

/* A verified block; payload points into the source or the scratch and
 * stays valid until the next read. */
struct __sl_snap_block {
	uint32_t type;
	uint32_t seq;
	uint32_t count;
	uint32_t len;
	const uint8_t *payload;
	uint64_t next;	/* offset of the following block */
};

/* Trailer fields after verification. */
struct __sl_snap_trailer {
	uint64_t end;		/* offset of the trailer = end of the blocks */
	uint64_t blocks;
	uint64_t summary_off;
};

int __sl_snap_in_init(struct __sl_snap_in *in, const struct sl_snap_src *src,
		      struct sl_snap_err *err);
void __sl_snap_in_fini(struct __sl_snap_in *in);

/* Bytes [off, off + len) of the source; -EBADMSG if beyond the end. */
int __sl_snap_in_read(struct __sl_snap_in *in, uint64_t off, size_t len,
		      const uint8_t **p);

/* Read and verify the header of a file of kind `magic`; *body points to
 * the kind-specific fields (body_len bytes, up to the checksum). */
int __sl_snap_in_header(struct __sl_snap_in *in, const char *magic,
			const char *what, const uint8_t **body,
			size_t *body_len);

/* Read and verify the trailer (header must have been read). */
int __sl_snap_in_trailer(struct __sl_snap_in *in, struct __sl_snap_trailer *t);

/* Read and verify the block at `off`, which must end by `limit`, have
 * `type` and sequence number `seq`. */
int __sl_snap_in_block(struct __sl_snap_in *in, uint64_t off, uint64_t limit,
		       uint32_t type, uint32_t seq, struct __sl_snap_block *b);

/* ---- shared helpers --------------------------------------------------- */

/* A uid or name: 1..255 bytes, no NUL. */
static inline int __sl_snap_name_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, SL_SNAP_NAME_MAX);
	return n >= 1 && n < SL_SNAP_NAME_MAX;
}

/* xxh3 of a whole file from an fd, reading it sequentially. */
int __sl_snap_hash_fd(int fd, uint64_t *size, uint64_t *hash);

#endif
