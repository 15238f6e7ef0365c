/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Channels: one upstream subtask to one downstream subtask.
 *
 * A channel is two SPSC rings: the data lane carries batch pointers in
 * order, the priority lane carries small control events (checkpoint
 * barrier announcements) that overtake queued data.  The sender counts the
 * batches it enqueued (`sent`), the receiver the batches it dequeued
 * (`received`); the data lane's position of a batch is its sequence number.
 *
 * Backpressure: sl_channel_send() never drops.  When the data ring is full
 * the batch is staged on the sender side, in order; a sender with staged
 * batches must not consume more input (sl_channel_blocked()) but keeps
 * polling its priority lanes.  The staging list lives on the sender's cache
 * line; the receiver's counter on its own, so the two lcores never share a
 * written line except inside the rings.
 */
#ifndef SLUICE_CHANNEL_H
#define SLUICE_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ring.h>

#include "sluice/batch.h"

/** Priority-lane event types. */
enum sl_ctrl_type {
	SL_CTRL_BARRIER = 1, /**< checkpoint barrier announcement */
};

/** One priority-lane event (copied by value through the ring). */
struct sl_ctrl_event {
	uint32_t type;		/**< enum sl_ctrl_type */
	uint32_t flags;
	uint64_t checkpoint_id;
	uint64_t seq;		/**< sender's data-lane sequence number */
	uint64_t arg;
};

struct sl_channel {
	struct rte_ring *data; /**< SPSC ring of struct sl_batch * */
	struct rte_ring *prio; /**< SPSC ring of struct sl_ctrl_event */
	uint32_t id;
	uint32_t src_task; /**< global subtask ids */
	uint32_t dst_task;

	/* sender side */
	uint64_t sent __rte_cache_aligned; /**< batches enqueued so far */
	struct sl_batch *stage_head;	   /**< staged, oldest first */
	struct sl_batch *stage_tail;
	uint32_t staged;		   /**< batches on the staging list */
	int64_t wm_sent;		   /**< watermark of the last batch sent */

	/* receiver side */
	uint64_t received __rte_cache_aligned; /**< batches dequeued so far */
} __rte_cache_aligned;

_Static_assert(offsetof(struct sl_channel, received) -
		       offsetof(struct sl_channel, sent) >= RTE_CACHE_LINE_SIZE,
	       "sender and receiver counters must not share a cache line");

/**
 * Create a channel with its two rings.
 * @param name       unique base name (rings get suffixes)
 * @param ring_size  data-lane capacity in batches (power of two)
 * @param prio_size  priority-lane capacity in events (power of two)
 * @param socket     NUMA socket or SOCKET_ID_ANY
 * @return the channel, or NULL with rte_errno set
 */
struct sl_channel *sl_channel_create(const char *name, unsigned ring_size,
				     unsigned prio_size, int socket);

/** Free the rings and drop every batch still queued or staged. */
void sl_channel_free(struct sl_channel *ch);

/**
 * Move staged batches into the ring, oldest first, as many as fit.
 * @return batches still staged afterwards (0 = not blocked)
 */
static inline uint32_t sl_channel_flush(struct sl_channel *ch)
{
	while (ch->stage_head != NULL) {
		if (rte_ring_sp_enqueue(ch->data, ch->stage_head) != 0)
			break;
		ch->sent++;
		ch->stage_head = ch->stage_head->next;
		ch->staged--;
	}
	if (ch->stage_head == NULL)
		ch->stage_tail = NULL;
	return ch->staged;
}

/**
 * Send one batch (the caller's reference moves to the channel).  Never
 * fails and never drops: if the ring is full, or older batches are still
 * staged, the batch is staged behind them.
 * @return true if the batch went into the ring, false if it was staged
 */
static inline bool sl_channel_send(struct sl_channel *ch, struct sl_batch *b)
{
	ch->wm_sent = b->watermark;
	if (likely(ch->stage_head == NULL) &&
	    likely(rte_ring_sp_enqueue(ch->data, b) == 0)) {
		ch->sent++;
		return true;
	}
	b->next = NULL;
	if (ch->stage_tail != NULL)
		ch->stage_tail->next = b;
	else
		ch->stage_head = b;
	ch->stage_tail = b;
	ch->staged++;
	/* older staged batches go first; this one may follow them now */
	return sl_channel_flush(ch) == 0;
}

/**
 * Send a batch ahead of every staged batch (an unaligned barrier marker
 * overtaking output that could not be sent yet).  Its sequence number is
 * `sent` at the time of the call.
 * @return true if it went into the ring
 */
static inline bool sl_channel_send_first(struct sl_channel *ch,
					 struct sl_batch *b)
{
	if (ch->stage_head == NULL)
		return sl_channel_send(ch, b);
	b->next = ch->stage_head;
	ch->stage_head = b;
	ch->staged++;
	sl_channel_flush(ch);
	return ch->stage_head != b;
}

/** True while the sender has batches it could not enqueue. */
static inline bool sl_channel_blocked(const struct sl_channel *ch)
{
	return ch->stage_head != NULL;
}

/**
 * Dequeue up to n batches in order.
 * @return number dequeued
 */
static inline unsigned sl_channel_recv_burst(struct sl_channel *ch,
					     struct sl_batch **b, unsigned n)
{
	unsigned got = rte_ring_sc_dequeue_burst(ch->data, (void **)b, n, NULL);

	ch->received += got;
	return got;
}

/** Post a control event on the priority lane; 0 or -ENOBUFS if full. */
static inline int sl_channel_post(struct sl_channel *ch,
				  const struct sl_ctrl_event *ev)
{
	return rte_ring_sp_enqueue_elem(ch->prio, (void *)ev, sizeof(*ev)) == 0
		       ? 0
		       : -ENOBUFS;
}

/** Take one control event; 0, or -EAGAIN if the lane is empty. */
static inline int sl_channel_poll(struct sl_channel *ch,
				  struct sl_ctrl_event *ev)
{
	return rte_ring_sc_dequeue_elem(ch->prio, ev, sizeof(*ev)) == 0
		       ? 0
		       : -EAGAIN;
}

#endif
