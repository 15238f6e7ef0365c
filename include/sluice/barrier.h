/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Barrier bookkeeping of one subtask: which inputs announced or delivered
 * the barrier of a checkpoint, when to snapshot, which inputs to block,
 * which in-flight batches belong to the checkpoint.
 *
 * A barrier for checkpoint n reaches a subtask on each input channel as an
 * announcement on the priority lane carrying the sender's data-lane
 * sequence number S, and as a marker batch at position S of the data lane.
 * The tracker turns those events into decisions for the runtime, per mode:
 *
 *  aligned          marker on input i blocks i; the last marker snapshots
 *                   and unblocks all.  No channel state.
 *  unaligned        the first announcement snapshots at once; afterwards,
 *                   every data batch of input i with sequence number in
 *                   [received-at-snapshot, S_i) is processed AND persisted;
 *                   an input whose announcement has not come yet persists
 *                   everything until it comes.  Markers are then dropped.
 *  aligned-timeout  as aligned; when alignment has lasted the timeout since
 *                   the first barrier, switch to unaligned for this
 *                   checkpoint with the announcements received so far
 *                   (inputs whose marker came are complete).
 *  at-least-once    nothing blocks; the last marker snapshots.
 *
 * Sequence numbers are the receiver's count of batches dequeued before
 * the batch.  The sender posts the announcement before the marker can be
 * dequeued, so a receiver that polls the priority lane after dequeuing a
 * burst knows S for every marker in that burst.
 *
 * Pure logic: no EAL, no clock of its own; unit-tested on its own.
 */
#ifndef SLUICE_BARRIER_H
#define SLUICE_BARRIER_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/checkpoint.h"

/** What the runtime must do after an event. */
enum sl_bt_action {
	SL_BT_NONE = 0,
	SL_BT_SNAPSHOT,	/**< take the snapshot now and forward the barrier */
};

/** The decision of one event. */
struct sl_bt_decision {
	enum sl_bt_action action;
	uint64_t id;	 /**< checkpoint the action is for */
	bool unaligned;	 /**< forward as unaligned (overtaking, output state) */
	bool switched;	 /**< aligned-timeout switched to unaligned */
};

struct sl_barrier_tracker;

/**
 * Create a tracker.
 * @param n_inputs          input channels of the subtask (0 for sources)
 * @param mode              checkpoint mode of the job
 * @param aligned_timeout_ns  for SL_CKPT_ALIGNED_TIMEOUT
 * @param max_concurrent    checkpoints the coordinator may have in
 *                          progress at once (1..SL_CKPT_MAX_CONCURRENT):
 *                          the tracker keeps that many apart, plus room
 *                          for ones whose end it has not heard of yet
 * @return the tracker or NULL (errno ENOMEM; EINVAL for a bad mode or
 *         max_concurrent)
 */
struct sl_barrier_tracker *sl_bt_create(unsigned n_inputs, enum sl_ckpt_mode mode,
					uint64_t aligned_timeout_ns,
					unsigned max_concurrent);
void sl_bt_free(struct sl_barrier_tracker *bt);

/**
 * Announcement of checkpoint `id` on input `in`: its marker will be the
 * input's batch number `seq`.
 */
void sl_bt_on_announce(struct sl_barrier_tracker *bt, unsigned in,
		       uint64_t id, uint64_t seq, uint64_t now_ns);

/**
 * Marker of checkpoint `id` dequeued and reached on input `in`: every
 * batch of that input before it was processed.
 */
void sl_bt_on_marker(struct sl_barrier_tracker *bt, unsigned in, uint64_t id,
		     uint64_t now_ns);

/** Input `in` ended: it counts as having delivered every barrier. */
void sl_bt_on_input_end(struct sl_barrier_tracker *bt, unsigned in);

/**
 * The next thing to do: a checkpoint that must be snapshotted now (all
 * markers in, the first announcement when unaligned, or the alignment
 * timeout expired).  Call after events and periodically, until it returns
 * SL_BT_NONE.  Checkpoints are decided in id order.
 */
struct sl_bt_decision sl_bt_next(struct sl_barrier_tracker *bt,
				 uint64_t now_ns);

/**
 * The runtime took the snapshot the decision asked for; `consumed` holds
 * every input's count of batches processed at that moment (dequeued but
 * unprocessed batches are in flight).
 */
void sl_bt_snapshot_taken(struct sl_barrier_tracker *bt, uint64_t id,
			  const uint64_t *consumed, uint64_t now_ns);

/** True while input `in` must not be read (aligned, marker seen). */
bool sl_bt_input_blocked(const struct sl_barrier_tracker *bt, unsigned in);

/**
 * Checkpoint whose channel state the data batch at sequence number `seq`
 * of input `in` belongs to, or 0.  Call for every data batch dequeued
 * (after the priority lane was polled for that burst).
 */
uint64_t sl_bt_persist(const struct sl_barrier_tracker *bt, unsigned in,
		       uint64_t seq);

/**
 * True once the subtask's inputs hold nothing more for checkpoint `id`:
 * snapshot taken and every input reached its marker, ended, or had its
 * in-flight batches persisted ahead.
 */
bool sl_bt_inputs_done(const struct sl_barrier_tracker *bt, uint64_t id);

/**
 * Unaligned: true when input `in` announced checkpoint `id` at `*seq` and
 * its batches before that were not persisted yet.  The runtime can then
 * persist them at once, without processing them (they are still queued),
 * and report it with sl_bt_persisted_ahead(): the checkpoint need not wait
 * for the subtask to work through a full ring.
 */
bool sl_bt_needs_ahead(const struct sl_barrier_tracker *bt, uint64_t id,
		       unsigned in, uint64_t *seq);

/** Batches `from`..marker of input `in` were persisted for `id`; they are
 *  processed later as usual, but not persisted again. */
void sl_bt_persisted_ahead(struct sl_barrier_tracker *bt, uint64_t id,
			   unsigned in, uint64_t from);

/** Statistics of the checkpoint in progress (0 when unknown). */
void sl_bt_times(const struct sl_barrier_tracker *bt, uint64_t id,
		 uint64_t *first_barrier_ns, uint64_t *snapshot_ns);

/** Forget checkpoint `id` and every older one (`id` completed: older ones
 *  are subsumed): unblocks their inputs; later events for ids <= `id` are
 *  ignored. */
void sl_bt_forget(struct sl_barrier_tracker *bt, uint64_t id);

/** Checkpoint `id` was aborted: forget it alone (older ones still in
 *  progress go on); later events for `id` are ignored. */
void sl_bt_abort(struct sl_barrier_tracker *bt, uint64_t id);

#endif
