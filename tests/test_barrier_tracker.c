/* SPDX-License-Identifier: BSD-3-Clause */
/* Barrier bookkeeping per mode, event by event. */
#include <criterion/criterion.h>

#include "sluice/barrier.h"

#define MS 1000000ULL

static void expect_snapshot(struct sl_barrier_tracker *bt, uint64_t now, uint64_t id,
			    bool unaligned, bool switched)
{
	struct sl_bt_decision d = sl_bt_next(bt, now);
	cr_assert_eq(d.action, SL_BT_SNAPSHOT, "a snapshot is due for %lu", (unsigned long)id);
	cr_assert_eq(d.id, id);
	cr_assert_eq(d.unaligned, unaligned);
	cr_assert_eq(d.switched, switched);
	cr_assert_eq(sl_bt_next(bt, now).action, SL_BT_NONE, "decided once");
}

Test(barrier_tracker, aligned_blocks_until_all_markers)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_ALIGNED, 0, 4);
	uint64_t consumed[2] = { 4, 9 };

	sl_bt_on_announce(bt, 0, 1, 4, 0);
	cr_assert_eq(sl_bt_next(bt, 0).action, SL_BT_NONE, "aligned ignores announcements");
	cr_assert_not(sl_bt_input_blocked(bt, 0));
	sl_bt_on_marker(bt, 0, 1, MS);
	cr_assert(sl_bt_input_blocked(bt, 0), "input 0 waits after its marker");
	cr_assert_not(sl_bt_input_blocked(bt, 1));
	cr_assert_eq(sl_bt_next(bt, MS).action, SL_BT_NONE);
	sl_bt_on_marker(bt, 1, 1, 2 * MS);
	expect_snapshot(bt, 2 * MS, 1, false, false);
	sl_bt_snapshot_taken(bt, 1, consumed, 2 * MS);
	cr_assert_not(sl_bt_input_blocked(bt, 0), "resumed after the snapshot");
	cr_assert_eq(sl_bt_persist(bt, 1, 9), 0, "aligned persists no channel state");
	cr_assert(sl_bt_inputs_done(bt, 1));
	uint64_t first, snap;
	sl_bt_times(bt, 1, &first, &snap);
	cr_assert_eq(first, 0);
	cr_assert_eq(snap, 2 * MS);
	sl_bt_free(bt);
}

/* max-concurrent > 1: aborting checkpoint 2 leaves checkpoint 1, still
 * aligning, to complete; 2's late marker is ignored. */
Test(barrier_tracker, abort_of_a_newer_checkpoint_keeps_an_older_one)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_ALIGNED, 0, 4);
	uint64_t consumed[2] = { 4, 9 };

	sl_bt_on_marker(bt, 0, 1, 0);
	sl_bt_on_announce(bt, 1, 2, 12, MS);
	sl_bt_abort(bt, 2);
	cr_assert(sl_bt_input_blocked(bt, 0), "checkpoint 1 still aligns");
	sl_bt_on_marker(bt, 1, 1, 2 * MS);
	expect_snapshot(bt, 2 * MS, 1, false, false);
	sl_bt_snapshot_taken(bt, 1, consumed, 2 * MS);
	cr_assert(sl_bt_inputs_done(bt, 1));
	sl_bt_forget(bt, 1);
	sl_bt_on_marker(bt, 0, 2, 3 * MS);
	cr_assert_not(sl_bt_input_blocked(bt, 0), "aborted 2 does not block");
	cr_assert_eq(sl_bt_next(bt, 3 * MS).action, SL_BT_NONE);
	/* with nothing older in progress, an abort is a watermark */
	sl_bt_on_marker(bt, 0, 3, 4 * MS);
	sl_bt_abort(bt, 3);
	cr_assert_not(sl_bt_input_blocked(bt, 0));
	sl_bt_on_marker(bt, 1, 3, 5 * MS);
	cr_assert_eq(sl_bt_next(bt, 5 * MS).action, SL_BT_NONE);
	sl_bt_free(bt);
}

Test(barrier_tracker, unaligned_snapshots_on_first_announcement)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_UNALIGNED, 0, 4);
	uint64_t consumed[2] = { 3, 5 };

	sl_bt_on_announce(bt, 0, 7, 10, 0);
	expect_snapshot(bt, 0, 7, true, false);
	sl_bt_snapshot_taken(bt, 7, consumed, MS);
	cr_assert_not(sl_bt_input_blocked(bt, 0), "unaligned never blocks");
	/* input 0: batches 3..9 are in flight, 10 is the marker */
	cr_assert_eq(sl_bt_persist(bt, 0, 2), 0, "processed before the snapshot");
	for (uint64_t s = 3; s < 10; s++)
		cr_assert_eq(sl_bt_persist(bt, 0, s), 7, "batch %lu is in flight", (unsigned long)s);
	cr_assert_eq(sl_bt_persist(bt, 0, 11), 0, "after the barrier");
	/* input 1 has not announced: everything it delivers is persisted */
	cr_assert_eq(sl_bt_persist(bt, 1, 5), 7);
	cr_assert_eq(sl_bt_persist(bt, 1, 50), 7);
	sl_bt_on_announce(bt, 1, 7, 8, 2 * MS);
	cr_assert_eq(sl_bt_persist(bt, 1, 7), 7);
	cr_assert_eq(sl_bt_persist(bt, 1, 8), 0, "up to its S once announced");
	cr_assert_not(sl_bt_inputs_done(bt, 7));
	sl_bt_on_marker(bt, 0, 7, 3 * MS);
	cr_assert_eq(sl_bt_persist(bt, 0, 5), 0, "input reached its barrier");
	cr_assert_not(sl_bt_inputs_done(bt, 7));
	sl_bt_on_marker(bt, 1, 7, 4 * MS);
	cr_assert(sl_bt_inputs_done(bt, 7));
	sl_bt_forget(bt, 7);
	sl_bt_on_marker(bt, 1, 7, 5 * MS);
	cr_assert_eq(sl_bt_next(bt, 5 * MS).action, SL_BT_NONE, "late markers are dropped");
	sl_bt_free(bt);
}

Test(barrier_tracker, aligned_timeout_switches_to_unaligned)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_ALIGNED_TIMEOUT, 50 * MS, 4);
	uint64_t consumed[2] = { 6, 12 };

	sl_bt_on_announce(bt, 0, 3, 6, 0);
	sl_bt_on_marker(bt, 0, 3, 1 * MS);
	sl_bt_on_announce(bt, 1, 3, 20, 2 * MS);
	cr_assert(sl_bt_input_blocked(bt, 0));
	cr_assert_eq(sl_bt_next(bt, 49 * MS).action, SL_BT_NONE, "still within the timeout");
	expect_snapshot(bt, 50 * MS, 3, true, true);
	sl_bt_snapshot_taken(bt, 3, consumed, 50 * MS);
	cr_assert_not(sl_bt_input_blocked(bt, 0), "switched: the aligned input resumes");
	cr_assert_eq(sl_bt_persist(bt, 0, 7), 0, "after input 0's barrier");
	cr_assert_eq(sl_bt_persist(bt, 1, 12), 3);
	cr_assert_eq(sl_bt_persist(bt, 1, 19), 3);
	cr_assert_eq(sl_bt_persist(bt, 1, 20), 0);
	sl_bt_on_marker(bt, 1, 3, 60 * MS);
	cr_assert(sl_bt_inputs_done(bt, 3));
	sl_bt_free(bt);
}

Test(barrier_tracker, aligned_timeout_completes_aligned_when_in_time)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_ALIGNED_TIMEOUT, 50 * MS, 4);

	sl_bt_on_marker(bt, 0, 3, 0);
	sl_bt_on_marker(bt, 1, 3, 10 * MS);
	expect_snapshot(bt, 10 * MS, 3, false, false);
	sl_bt_free(bt);
}

Test(barrier_tracker, at_least_once_never_blocks)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_AT_LEAST_ONCE, 0, 4);

	sl_bt_on_marker(bt, 0, 1, 0);
	cr_assert_not(sl_bt_input_blocked(bt, 0), "keeps reading past the marker");
	cr_assert_eq(sl_bt_next(bt, 0).action, SL_BT_NONE);
	/* pipelined: checkpoint 2's marker on input 0 before 1's on input 1 */
	sl_bt_on_marker(bt, 0, 2, MS);
	sl_bt_on_marker(bt, 1, 1, 2 * MS);
	expect_snapshot(bt, 2 * MS, 1, false, false);
	sl_bt_snapshot_taken(bt, 1, NULL, 2 * MS);
	sl_bt_forget(bt, 1);
	cr_assert_eq(sl_bt_next(bt, 2 * MS).action, SL_BT_NONE);
	sl_bt_on_marker(bt, 1, 2, 3 * MS);
	expect_snapshot(bt, 3 * MS, 2, false, false);
	sl_bt_free(bt);
}

Test(barrier_tracker, ended_inputs_count_as_aligned)
{
	struct sl_barrier_tracker *bt = sl_bt_create(3, SL_CKPT_ALIGNED, 0, 4);

	sl_bt_on_input_end(bt, 2);
	sl_bt_on_marker(bt, 0, 5, 0);
	cr_assert_eq(sl_bt_next(bt, 0).action, SL_BT_NONE);
	sl_bt_on_marker(bt, 1, 5, 0);
	expect_snapshot(bt, 0, 5, false, false);
	sl_bt_free(bt);
}

Test(barrier_tracker, newer_unaligned_checkpoint_replaces_an_abandoned_one)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_UNALIGNED, 0, 4);
	uint64_t consumed[2] = { 0, 0 };

	sl_bt_on_announce(bt, 0, 1, 5, 0);
	expect_snapshot(bt, 0, 1, true, false);
	sl_bt_snapshot_taken(bt, 1, consumed, 0);
	/* the coordinator expired 1 and triggered 2 */
	sl_bt_on_announce(bt, 1, 2, 9, MS);
	expect_snapshot(bt, MS, 2, true, false);
	cr_assert_not(sl_bt_inputs_done(bt, 1), "1 is gone");
	sl_bt_snapshot_taken(bt, 2, consumed, MS);
	cr_assert_eq(sl_bt_persist(bt, 1, 3), 2);
	sl_bt_free(bt);
}

Test(barrier_tracker, forget_unblocks_and_drops_stale_events)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_ALIGNED, 0, 4);

	sl_bt_on_marker(bt, 0, 4, 0);
	cr_assert(sl_bt_input_blocked(bt, 0));
	sl_bt_forget(bt, 4); /* aborted by the coordinator */
	cr_assert_not(sl_bt_input_blocked(bt, 0));
	sl_bt_on_marker(bt, 1, 4, MS);
	cr_assert_eq(sl_bt_next(bt, MS).action, SL_BT_NONE);
	cr_assert_not(sl_bt_input_blocked(bt, 1));
	sl_bt_free(bt);
}

Test(barrier_tracker, unaligned_in_flight_batches_persisted_ahead)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_UNALIGNED, 0, 4);
	uint64_t consumed[2] = { 3, 5 }, seq;

	sl_bt_on_announce(bt, 0, 7, 10, 0);
	expect_snapshot(bt, 0, 7, true, false);
	sl_bt_snapshot_taken(bt, 7, consumed, 0);
	cr_assert(sl_bt_needs_ahead(bt, 7, 0, &seq), "input 0's batches 3..9 can go now");
	cr_assert_eq(seq, 10);
	cr_assert_not(sl_bt_needs_ahead(bt, 7, 1, &seq), "input 1 has not announced");
	sl_bt_persisted_ahead(bt, 7, 0, 3);
	cr_assert_not(sl_bt_needs_ahead(bt, 7, 0, &seq), "once");
	cr_assert_eq(sl_bt_persist(bt, 0, 4), 0, "not persisted again when processed");
	cr_assert_not(sl_bt_inputs_done(bt, 7), "input 1 still open");
	cr_assert_eq(sl_bt_persist(bt, 1, 6), 7, "input 1 persists what it delivers");
	sl_bt_on_announce(bt, 1, 7, 9, 0);
	cr_assert(sl_bt_needs_ahead(bt, 7, 1, &seq));
	sl_bt_persisted_ahead(bt, 7, 1, 7);
	cr_assert_eq(sl_bt_persist(bt, 1, 6), 7, "before the ahead range: persisted when processed");
	cr_assert_eq(sl_bt_persist(bt, 1, 7), 0);
	cr_assert(sl_bt_inputs_done(bt, 7), "done without waiting for the markers");
	sl_bt_free(bt);
}

/*
 * An unaligned checkpoint completes without waiting for its markers, so a
 * marker of checkpoint 1 can still be queued behind data when the
 * announcement of 2 arrives, before the subtask has read the coordinator's
 * "1 complete".  That marker is stale: it must not start checkpoint 1
 * again (whose second snapshot would find the keyed state busy with 2's
 * write-out and never finish).
 */
Test(barrier_tracker, stale_marker_after_a_newer_unaligned_checkpoint_is_dropped)
{
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_UNALIGNED, 0, 4);
	uint64_t consumed[2] = { 0, 0 };

	sl_bt_on_announce(bt, 0, 1, 5, 0);
	expect_snapshot(bt, 0, 1, true, false);
	sl_bt_snapshot_taken(bt, 1, consumed, 0);
	sl_bt_on_announce(bt, 0, 2, 9, MS);
	expect_snapshot(bt, MS, 2, true, false);
	sl_bt_snapshot_taken(bt, 2, consumed, MS);
	sl_bt_on_marker(bt, 1, 1, MS); /* 1's marker, behind data on input 1 */
	cr_assert_eq(sl_bt_next(bt, MS).action, SL_BT_NONE, "checkpoint 1 is over");
	cr_assert_eq(sl_bt_persist(bt, 1, 3), 2, "input 1 still persists for 2");
	sl_bt_free(bt);
}

/* As many checkpoints as max-concurrent allows are tracked side by side:
 * none is dropped to make room (the tracker used to have 4 slots while
 * the configuration allowed 16). */
Test(barrier_tracker, max_concurrent_checkpoints_all_tracked)
{
	const unsigned n = SL_CKPT_MAX_CONCURRENT;
	struct sl_barrier_tracker *bt = sl_bt_create(2, SL_CKPT_AT_LEAST_ONCE, 0, n);
	uint64_t consumed[2] = { 0, 0 };

	cr_assert_not_null(bt);
	for (uint64_t id = 1; id <= n; id++) {
		sl_bt_on_marker(bt, 0, id, id * MS);
		cr_assert_eq(sl_bt_next(bt, id * MS).action, SL_BT_NONE,
			     "%lu waits for input 1", (unsigned long)id);
	}
	for (uint64_t id = 1; id <= n; id++) {
		sl_bt_on_marker(bt, 1, id, (n + id) * MS);
		expect_snapshot(bt, (n + id) * MS, id, false, false);
		sl_bt_snapshot_taken(bt, id, consumed, (n + id) * MS);
		uint64_t first, snap;
		sl_bt_times(bt, id, &first, &snap);
		cr_assert_eq(first, id * MS, "%lu kept its first barrier's time",
			     (unsigned long)id);
	}
	sl_bt_free(bt);
}

Test(barrier_tracker, max_concurrent_out_of_range)
{
	cr_assert_null(sl_bt_create(2, SL_CKPT_ALIGNED, 0, 0));
	cr_assert_null(sl_bt_create(2, SL_CKPT_ALIGNED, 0, SL_CKPT_MAX_CONCURRENT + 1));
}
