/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reading a complete checkpoint back, for tests that check it is a
 * consistent cut: the generator offsets it recorded, and a walk over the
 * keyed entries and the persisted in-flight records (channel state) of its
 * operators.  What the records mean is the test's business; this only
 * says which operator emitted them.  Failures are Criterion assertions.
 */
#ifndef SLUICE_TEST_CKPT_CUT_H
#define SLUICE_TEST_CKPT_CUT_H

#include <stdint.h>

#include "sluice/snapshot.h"

/** What ckpt_cut_walk() delivers; either callback may be NULL. */
struct ckpt_cut_visitor {
	/** Keyed entries of operator `owner`'s keyed-state files. */
	void (*keyed)(void *arg, const char *owner, const struct sl_snap_kv *kv,
		      unsigned n);
	/**
	 * A persisted data batch (input or output channel state of
	 * `owner`); `sender` is the operator that emitted its records: the
	 * upstream peer of an input channel, `owner` itself for an output
	 * channel.  Header-only (watermark) batches are not delivered.
	 */
	void (*batch)(void *arg, const char *owner, const char *sender,
		      const struct sl_snap_chan_batch *b);
	void *arg;
};

/**
 * Validate `<root>/chk-<id>` fully (every file's size and checksum) and
 * load its metadata; fails the test if it does not validate.
 * @param dir  receives "<root>/chk-<id>"
 * @return the metadata (sl_snap_meta_free() it)
 */
struct sl_snap_metadata *ckpt_cut_open(const char *root, uint64_t id,
				       char *dir, size_t len);

/** The operator `uid` of a checkpoint; fails the test if it is missing. */
const struct sl_snap_operator_meta *
ckpt_cut_operator(const struct sl_snap_metadata *m, const char *uid);

/**
 * Decode every keyed-state and channel-state file of operator `op` in
 * checkpoint directory `dir` and hand the contents to `v`.
 * @return records in the channel state delivered
 */
uint64_t ckpt_cut_walk(const char *dir, const struct sl_snap_operator_meta *op,
		       const struct ckpt_cut_visitor *v);

/**
 * Offset recorded by generator subtask `s` (its operator-state blob): the
 * next global index it would have produced.  A subtask that had finished
 * when the checkpoint came records nothing and covers all its records:
 * then `count`.
 */
uint64_t ckpt_cut_gen_next(const struct sl_snap_operator_meta *gen, uint32_t s,
			   uint64_t count);

/** Remove a checkpoint root made by mkdtemp() and everything in it. */
void ckpt_cut_remove_root(const char *root);

#endif
