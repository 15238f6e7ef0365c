/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Record batches: the unit that moves through channels.
 *
 * A batch is one rte_mempool element: a one-cache-line header followed by
 * `capacity` records in row layout.  Batches are handed over zero-copy as
 * pointers; a reference count lets several holders share one (broadcast,
 * forward to several edges, the io layer persisting channel state).  The
 * last sl_batch_put() returns it to the pool it came from.
 *
 * Besides data, the data lane carries header-only batches of other kinds so
 * that they keep their place in the stream: watermarks, checkpoint markers
 * and end-of-stream.
 */
#ifndef SLUICE_BATCH_H
#define SLUICE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_mempool.h>

enum sl_batch_kind {
	SL_BATCH_DATA = 0,  /**< records; watermark field also valid */
	SL_BATCH_WATERMARK, /**< no records; carries the sender's watermark */
	SL_BATCH_MARKER,    /**< checkpoint barrier marker (checkpoint_id) */
	SL_BATCH_END,       /**< end of stream; flags say drain or stop */
};

/** SL_BATCH_END flags. */
#define SL_END_DRAIN 0x1u /**< input exhausted: fire all event time */

/** Watermark value meaning "no watermark yet". */
#define SL_WATERMARK_MIN INT64_MIN
/** Watermark value meaning "end of event time". */
#define SL_WATERMARK_MAX INT64_MAX

struct sl_batch {
	struct rte_mempool *pool;
	struct sl_batch *next;	  /**< link while staged by the sender */
	uint32_t refcnt;	  /**< atomic; see sl_batch_ref() */
	uint16_t kind;		  /**< enum sl_batch_kind */
	uint16_t record_size;	  /**< bytes per record */
	uint32_t count;		  /**< records held */
	uint32_t capacity;	  /**< records that fit */
	int64_t watermark;	  /**< sender's watermark after these records */
	uint64_t checkpoint_id;	  /**< SL_BATCH_MARKER */
	uint32_t flags;		  /**< SL_BATCH_END flags */
	uint32_t pad_;
	uint8_t data[] __rte_cache_aligned;
};
_Static_assert(offsetof(struct sl_batch, data) == RTE_CACHE_LINE_SIZE,
	       "batch header must fit one cache line");

/** Pointer to record i of a batch. */
static inline void *sl_batch_record(const struct sl_batch *b, uint32_t i)
{
	return (void *)(b->data + (size_t)i * b->record_size);
}

/** Take one more reference. */
static inline void sl_batch_ref(struct sl_batch *b, uint32_t n)
{
	/* relaxed: the caller already holds a reference, nothing to order */
	__atomic_fetch_add(&b->refcnt, n, __ATOMIC_RELAXED);
}

/** Drop a reference; the last one returns the batch to its pool. */
static inline void sl_batch_put(struct sl_batch *b)
{
	/* acq_rel: our reads of the batch happen before another lcore
	 * reuses it after the final put */
	if (__atomic_sub_fetch(&b->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		rte_mempool_put(b->pool, b);
}

/** Make a batch taken from its pool fresh: refcnt 1, count 0, kind DATA. */
static inline void sl_batch_init(struct sl_batch *b, uint16_t record_size)
{
	b->next = NULL;
	b->refcnt = 1;
	b->kind = SL_BATCH_DATA;
	b->record_size = record_size;
	b->count = 0;
	b->watermark = SL_WATERMARK_MIN;
	b->checkpoint_id = 0;
	b->flags = 0;
}

/**
 * Get a fresh batch (refcnt 1, count 0, kind DATA) from a pool.
 * @return the batch, or NULL if the pool is exhausted.
 */
static inline struct sl_batch *sl_batch_get(struct rte_mempool *mp,
					    uint16_t record_size)
{
	struct sl_batch *b;

	if (unlikely(rte_mempool_get(mp, (void **)&b) != 0))
		return NULL;
	sl_batch_init(b, record_size);
	return b;
}

/**
 * Create a pool of batches.
 * @param name         unique pool name
 * @param n            number of batches
 * @param capacity     records per batch
 * @param record_size  largest record size the pool serves (bytes)
 * @param socket       NUMA socket, or SOCKET_ID_ANY
 * @return the pool, or NULL with rte_errno set (ENOMEM, EEXIST, EINVAL)
 */
struct rte_mempool *sl_batch_pool_create(const char *name, unsigned n,
					 uint32_t capacity,
					 uint16_t record_size, int socket);

/**
 * Create a pool of barrier-marker batches: no records, no per-lcore cache
 * (receivers on other lcores return them; a cache there would strand the
 * few a sender has).
 * @param name    unique pool name
 * @param n       number of markers
 * @param socket  NUMA socket, or SOCKET_ID_ANY
 * @return the pool, or NULL with rte_errno set
 */
struct rte_mempool *sl_batch_marker_pool_create(const char *name, unsigned n,
						int socket);

/** Bytes one pool element takes (header + records), for memory sizing. */
size_t sl_batch_elt_size(uint32_t capacity, uint16_t record_size);

#endif
