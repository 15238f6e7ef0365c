/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The operator interface: what every source, operator and sink implements,
 * built-in or user-defined.
 *
 * Operators see whole batches (one call per batch, never per record) and
 * write output records with sl_emit(), an inline call that hands out the
 * next record slot of the subtask's current output batch.  The runtime
 * sends output batches when they are full, when the subtask goes idle, when
 * the buffer timeout expires, and before any watermark, barrier or end of
 * stream, so operators never deal with channels or partitioning.
 */
#ifndef SLUICE_OPERATOR_H
#define SLUICE_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_branch_prediction.h>

#include "sluice/batch.h"
#include "sluice/schema.h"

#define SL_MAX_INPUTS 8

/** on_watermark()/on_end() return value: output is pending, call again
 *  once the subtask is no longer backpressured. */
#define SL_MORE 1
/** Source poll() return value: the source is exhausted. */
#define SL_SOURCE_END (-100000)

/** What a subtask knows about itself. */
struct sl_task_info {
	const char *job;		   /**< job name */
	const char *uid;		   /**< operator uid */
	const char *type;		   /**< operator type name */
	uint32_t node;			   /**< operator index in the job */
	uint32_t index;			   /**< subtask index */
	uint32_t parallelism;		   /**< subtasks of this operator */
	uint32_t max_parallelism;	   /**< key groups of the job */
	uint32_t kg_first;		   /**< first key group owned */
	uint32_t kg_count;		   /**< key groups owned */
	unsigned lcore;			   /**< lcore running it */
	unsigned n_inputs;		   /**< logical inputs */
	bool checkpointing;		   /**< the job takes checkpoints */
	bool restoring;			   /**< restore() follows open() */
	const struct sl_schema *in_schema[SL_MAX_INPUTS];
	const struct sl_schema *out_schema; /**< NULL for sinks */
	const void *conf;		   /**< the operator's planned conf */
};

/**
 * A running subtask.  Operators use `info`, sl_emit() and the functions
 * below; the remaining fields belong to the runtime.
 */
struct sl_task {
	struct sl_batch *out;	   /**< batch being filled by sl_emit() */
	uint16_t out_record_size;
	struct sl_task_info info;
	int64_t watermark;	   /**< current event-time watermark */
	uint64_t records_in;
	uint64_t records_out;
	uint64_t late_dropped;	   /**< operator-counted: records dropped as
				    *   too late (window operators) */
};

/** Runtime: send the full current batch and start a new one. */
struct sl_batch *__sl_task_rollover(struct sl_task *t);

/**
 * Reserve the next output record.  The slot is uninitialised: write every
 * field.  Valid until the next sl_emit()/sl_emit_forward() call.
 */
static inline void *sl_emit(struct sl_task *t)
{
	struct sl_batch *b = t->out;

	if (unlikely(b == NULL || b->count == b->capacity))
		b = __sl_task_rollover(t);
	t->records_out++;
	return b->data + (size_t)b->count++ * t->out_record_size;
}

/** Take back the record last returned by sl_emit() (e.g. filtered out). */
static inline void sl_emit_undo(struct sl_task *t)
{
	t->out->count--;
	t->records_out--;
}

/**
 * Forward an input batch unchanged, zero-copy (its schema must be the
 * operator's output schema).  Output emitted before stays before it.
 */
void sl_emit_forward(struct sl_task *t, struct sl_batch *b);

/** Sources: advance the subtask's watermark (monotonic; lower is ignored). */
void sl_task_set_watermark(struct sl_task *t, int64_t watermark);

struct sl_ckpt_ctx;
struct sl_kstate;
struct sl_restore_ctx;

/**
 * Operator callbacks.  Unused callbacks are NULL.  Every callback returns
 * 0 or a negative errno; a negative return fails the job with the message
 * set by sl_task_error().
 */
struct sl_operator_ops {
	const char *type;	/**< type name, as in job files */
	size_t conf_size;	/**< bytes of conf copied by sl_job_add() */
	unsigned min_inputs;	/**< 0 for sources */
	unsigned max_inputs;
	bool sink;		/**< no output */

	/**
	 * Check the conf against the input schemas and fill the output schema
	 * (unused for sinks).  May store resolved offsets into conf.  On error
	 * write a message into err (the caller adds the operator's uid).
	 */
	int (*plan)(void *conf, const struct sl_schema *const in[],
		    unsigned n_in, struct sl_schema *out, char *err,
		    size_t errlen);
	/**
	 * Check resources that need the EAL (ports, devices) on the main
	 * lcore before anything starts; `parallelism` subtasks will open.
	 * On error write a message into err.
	 */
	int (*prepare)(void *conf, uint32_t parallelism, char *err,
		       size_t errlen);
	/** Create the subtask's instance; runs on the subtask's lcore. */
	int (*open)(struct sl_task *t, void **op);
	/** Process one batch from logical input `input`.  The batch stays the
	 *  caller's; keep it beyond the call only via sl_emit_forward(). */
	int (*process)(void *op, struct sl_task *t, unsigned input,
		       struct sl_batch *b);
	/** Sources: produce output.  Returns records produced (0 = idle),
	 *  SL_SOURCE_END when exhausted, or a negative errno. */
	int (*poll)(void *op, struct sl_task *t);
	/** Event time reached `wm`.  Returns 0, SL_MORE or a negative errno. */
	int (*on_watermark)(void *op, struct sl_task *t, int64_t wm);
	/** All inputs ended; `drain` if they were exhausted (as opposed to a
	 *  stop).  Returns 0, SL_MORE or a negative errno. */
	int (*on_end)(void *op, struct sl_task *t, bool drain);
	/**
	 * Checkpoint: capture the state as of now, synchronously, in O(1) or
	 * O(changed since the last checkpoint), never O(state): hand small
	 * state to sl_ckpt_put_blob() and keyed state to sl_ckpt_put_keyed().
	 * NULL for stateless operators.
	 */
	int (*snapshot)(void *op, struct sl_task *t, struct sl_ckpt_ctx *ck);
	/** Checkpoint `id` is complete (sinks commit what it covers). */
	void (*notify_complete)(void *op, struct sl_task *t, uint64_t id);
	/** Checkpoint `id` was aborted. */
	void (*notify_aborted)(void *op, struct sl_task *t, uint64_t id);
	/** The job starts from checkpoint sl_restore_id(rc): called after open(),
	 *  before any poll/process/on_watermark.  Load state with
	 *  sl_restore_blob()/sl_restore_keyed().  NULL: nothing to restore. */
	int (*restore)(void *op, struct sl_task *t, struct sl_restore_ctx *rc);
	/** Release the instance. */
	void (*close)(void *op, struct sl_task *t);
};

/**
 * Checkpoint hooks, for operators' snapshot() callback: what to persist.
 * Both are cheap and synchronous; the bytes are written asynchronously.
 */
/** Persist a small blob of operator (non-keyed) state, e.g. an offset.
 *  @return 0, -ENOMEM, -E2BIG (over 1 MiB) */
int sl_ckpt_put_blob(struct sl_ckpt_ctx *ck, const void *data, size_t len);
/** Persist keyed state: starts its O(1) snapshot now; the runtime writes
 *  it out between batches.  One keyed state per subtask.
 *  @param key_size, value_size  as the state was created with
 *  @return 0, -EBUSY (a second one, or the previous write-out of this
 *          state is still running), -ENOMEM */
int sl_ckpt_put_keyed(struct sl_ckpt_ctx *ck, struct sl_kstate *st,
		      uint16_t key_size, uint16_t value_size);
/** The checkpoint's id. */
uint64_t sl_ckpt_id(const struct sl_ckpt_ctx *ck);
/**
 * Make a file the operator wrote with write(2) durable as part of the
 * checkpoint, off the lcore: the checkpoint's io writer fdatasyncs `fd`,
 * closes it, then fsyncs the directory of `path` (so a rename the operator
 * did to `path` before is durable too).  The subtask acknowledges the
 * checkpoint only once all of it is done, and declines it (with the
 * path) if a step fails.  The descriptor is the writer's from now on,
 * also when this fails.
 * @param path  the file's current path
 * @return 0, or a negative errno (-ENOMEM, -ENOSPC: more than 16 files
 *         in one checkpoint); the checkpoint is then declined and the
 *         job fails (the file was not made durable, so it must not be
 *         committed with a later checkpoint)
 */
int sl_ckpt_sync_file(struct sl_ckpt_ctx *ck, int fd, const char *path);
/**
 * Rename `from` to `to` (in the same directory) and fsync the directory,
 * through the subtask's io writer, off the lcore: for commits once a
 * checkpoint completed (notify_complete()).  Renames of one subtask are
 * done in the order they were asked for, and after a failed one none is
 * (the job fails, with both paths in the message).  The subtask's loop
 * keeps going until they are done.  Needs checkpointing.
 * @return 0, -ENOMEM, -ENOTSUP (checkpointing is off)
 */
int sl_task_rename(struct sl_task *t, const char *from, const char *to);

/*
 * Restore hooks, for operators' restore() callback (docs/restore.md).  The
 * runtime checks afterwards that the operator loaded every piece of state
 * the checkpoint holds for it (a state it ignored would be lost silently)
 * and fails the job otherwise.
 */
/** The id of the checkpoint (or savepoint) the job starts from. */
uint64_t sl_restore_id(const struct sl_restore_ctx *rc);
/** The operator-state blob subtask `index` of this operator put into the
 *  checkpoint (the first one, if it put several); -ENOENT if none. Valid
 *  during restore() only.  -EXDEV when the operator's parallelism changed
 *  and the old subtasks did store blobs: they cannot be matched to
 *  subtasks (the message for the job's failure report is set); operators
 *  that can redistribute their state use sl_restore_blob_of(). */
int sl_restore_blob(struct sl_restore_ctx *rc, const void **data, size_t *len);
/** Load the entries of the key groups this subtask owns (from every old
 *  subtask's keyed files, so a changed parallelism rescales by key group)
 *  into st, created empty with the same key/value sizes.
 *  @return 0, -EINVAL (key/value sizes or max parallelism differ from the
 *          files'), -EBADMSG (a corrupt file), -ENOMEM, -errno of reading;
 *          the message is set for the job's failure report */
int sl_restore_keyed(struct sl_restore_ctx *rc, struct sl_kstate *st,
		     uint16_t key_size, uint16_t value_size);
/** Parallelism of this operator when the checkpoint was taken. */
uint32_t sl_restore_parallelism(const struct sl_restore_ctx *rc);
/** For operators that redistribute operator state on a changed
 *  parallelism: the (first) blob old subtask `subtask` stored.
 *  @return 0, -ENOENT (none), -EINVAL (subtask >= sl_restore_parallelism()) */
int sl_restore_blob_of(struct sl_restore_ctx *rc, uint32_t subtask,
		       const void **data, size_t *len);

/** Record an error message for the job's failure report (printf-style). */
void sl_task_error(struct sl_task *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
