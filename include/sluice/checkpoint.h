/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Checkpoint configuration and the checkpoint coordinator.
 *
 * The coordinator runs on the main lcore.  It decides when to trigger a
 * checkpoint (interval, min pause, max concurrent), collects every
 * subtask's acknowledgement or decline, finalizes complete checkpoints
 * (the metadata file is written last), aborts expired or declined ones,
 * counts failures against the tolerable number, notifies every subtask of
 * completion or abort, and applies retention.  Its semantics follow
 * Flink's CheckpointCoordinator; it knows nothing of lcores or files: the
 * runtime plugs in the actions through struct sl_coord_ops, which keeps it
 * testable on its own and independent of one process.
 */
#ifndef SLUICE_CHECKPOINT_H
#define SLUICE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** How barriers are aligned (execution.checkpointing.*). */
enum sl_ckpt_mode {
	SL_CKPT_ALIGNED,	 /**< exactly-once, aligned */
	SL_CKPT_UNALIGNED,	 /**< exactly-once, unaligned */
	SL_CKPT_ALIGNED_TIMEOUT, /**< aligned, unaligned after a timeout */
	SL_CKPT_AT_LEAST_ONCE,	 /**< no alignment */
};

/** Mode name as in job files and statistics. */
const char *sl_ckpt_mode_name(enum sl_ckpt_mode m);

struct sl_io_fault;

/** Most checkpoints in progress at once
 *  (execution.checkpointing.max-concurrent-checkpoints); the barrier
 *  trackers and the subtasks' checkpoint slots are sized from the
 *  configured value. */
#define SL_CKPT_MAX_CONCURRENT 16u

/** Largest sluice.checkpointing.full-every (a restore reads the chain). */
#define SL_CKPT_FULL_EVERY_MAX 1000u

struct sl_checkpoint_config {
	uint64_t interval_ms;	      /**< execution.checkpointing.interval; 0 = off */
	uint64_t timeout_ms;	      /**< execution.checkpointing.timeout (600000) */
	uint64_t min_pause_ms;	      /**< execution.checkpointing.min-pause (0) */
	uint32_t max_concurrent;      /**< execution.checkpointing.max-concurrent-checkpoints
				       *   (1; 1..SL_CKPT_MAX_CONCURRENT) */
	uint32_t tolerable_failures;  /**< execution.checkpointing.tolerable-failed-checkpoints (0) */
	uint32_t retained;	      /**< state.checkpoints.num-retained (1) */
	enum sl_ckpt_mode mode;
	uint64_t aligned_timeout_ms;  /**< execution.checkpointing.aligned-checkpoint-timeout */
	bool incremental;	      /**< state.backend.incremental (false) */
	uint32_t full_every;	      /**< sluice.checkpointing.full-every: with
				       *   incremental, a keyed chain holds at most
				       *   K files, a full one and K - 1 deltas (10) */
	char dir[4096];		      /**< state.checkpoints.dir */
	/** Fault injection for tests: applied to the checkpoint io writer
	 *  (include/sluice/io.h); NULL in production. */
	const struct sl_io_fault *io_fault;
};

/** Fill with the defaults noted above (checkpointing off). */
void sl_checkpoint_config_defaults(struct sl_checkpoint_config *c);

/**
 * Check a configuration for combinations that cannot work.
 * @param err  receives "key: what is wrong; what to do"
 * @return 0 or -EINVAL
 */
int sl_checkpoint_config_check(const struct sl_checkpoint_config *c, char *err,
			       size_t errlen);

/** State of one checkpoint in the coordinator. */
enum sl_ckpt_status {
	SL_CKPT_PENDING,
	SL_CKPT_COMPLETED,
	SL_CKPT_FAILED,
};

/** What one subtask reported for one checkpoint. */
struct sl_ckpt_task_ack {
	uint64_t id;		 /**< the checkpoint */
	uint32_t task;		 /**< global subtask index */
	int status;		 /**< 0, or negative errno (declined) */
	bool finished;		 /**< the subtask had ended: acknowledged on
				  *   its behalf, nothing persisted */
	char reason[128];	 /**< decline reason */
	enum sl_ckpt_mode mode_used; /**< aligned, unaligned, or switched */
	bool switched;		 /**< aligned-with-timeout switched to unaligned */
	uint64_t start_delay_ns; /**< trigger -> first barrier at this subtask
				  *   (sources: trigger -> snapshot) */
	uint64_t alignment_ns;	 /**< first barrier -> snapshot */
	uint64_t sync_ns;	 /**< synchronous part on the lcore */
	uint64_t async_ns;	 /**< snapshot -> everything durable */
	uint64_t state_bytes;	 /**< keyed + operator state written by this
				  *   checkpoint (incremental: the delta) */
	uint64_t full_state_bytes; /**< keyed + operator state a restore reads:
				    *   incremental: the delta and the files of
				    *   its base chain; full: = state_bytes */
	uint64_t state_memory_bytes; /**< keyed state in memory at the snapshot */
	uint64_t inflight_bytes; /**< channel state persisted */
	void *handles;		 /**< what it persisted, for the metadata */
};

/** One checkpoint as the coordinator tracks it. */
struct sl_coord_ckpt {
	uint64_t id;
	enum sl_ckpt_status status;
	int64_t trigger_ns;	 /**< CLOCK_REALTIME of the trigger */
	uint64_t trigger_mono_ns; /**< monotonic, for durations */
	uint64_t end_mono_ns;	 /**< when it ended; for a completing one
				  *   already set (to the last ack) when
				  *   finalize is called */
	uint32_t acked;		 /**< subtasks that acknowledged */
	char reason[192];	 /**< failure reason */
	struct sl_ckpt_task_ack *acks; /**< by subtask; valid where acked */
	bool *have_ack;
};

/** What the coordinator asks of the runtime. */
struct sl_coord_ops {
	/** Inject barriers for checkpoint `id` at every source. */
	int (*trigger)(void *ctx, uint64_t id);
	/** Persist the checkpoint's metadata (last); <0 fails it. */
	int (*finalize)(void *ctx, const struct sl_coord_ckpt *ck, char *err,
			size_t errlen);
	/** Tell every subtask that `id` completed or was aborted. */
	void (*notify)(void *ctx, uint64_t id, bool completed);
	/** Remove a checkpoint's files (aborted, or dropped by retention). */
	void (*discard)(void *ctx, uint64_t id, bool completed);
	/** Optional: the checkpoint ended (completed or failed); release
	 *  what its acks' handles hold. */
	void (*release)(void *ctx, const struct sl_coord_ckpt *ck);
};

struct sl_coord;

/**
 * Create a coordinator for `n_tasks` subtasks.
 * @param first_id  id of the first checkpoint (1, or restored id + 1)
 * @return the coordinator, or NULL with errno set
 */
struct sl_coord *sl_coord_create(const struct sl_checkpoint_config *cfg,
				 uint32_t n_tasks, uint64_t first_id,
				 const struct sl_coord_ops *ops, void *ctx);
void sl_coord_free(struct sl_coord *c);

/**
 * Periodic work at monotonic time `now_ns`: expire timed-out checkpoints,
 * trigger a new one when due.
 * @return 0, or -ECANCELED when failures exceeded the tolerable number
 *         (the job must fail; sl_coord_error() says why)
 */
int sl_coord_tick(struct sl_coord *c, uint64_t now_ns);

/**
 * Trigger a checkpoint now regardless of the interval (still bounded by
 * max concurrent).
 * @return the checkpoint id, or -EBUSY / -EAGAIN (trigger refused)
 */
int64_t sl_coord_trigger_now(struct sl_coord *c, uint64_t now_ns);

/**
 * A subtask acknowledged (status 0) or declined (status < 0).  Acks for
 * unknown or finished checkpoints are ignored (their handles are returned
 * to the caller to release: the return value is then 1).
 * @return 0 consumed, 1 ignored, -ECANCELED as sl_coord_tick()
 */
int sl_coord_ack(struct sl_coord *c, uint64_t id,
		 const struct sl_ckpt_task_ack *ack, uint64_t now_ns);

/** Newest completed checkpoint id, 0 if none. */
uint64_t sl_coord_latest_completed(const struct sl_coord *c);

/** Counters. */
struct sl_coord_counts {
	uint64_t triggered, completed, failed, in_progress;
	uint32_t consecutive_failures;
};
void sl_coord_counts(const struct sl_coord *c, struct sl_coord_counts *out);

/**
 * Recent checkpoints (completed, failed, pending), newest first; the
 * coordinator keeps the last `SL_COORD_HISTORY` of them for statistics.
 * @return number written to out
 */
#define SL_COORD_HISTORY 32
unsigned sl_coord_history(const struct sl_coord *c,
			  const struct sl_coord_ckpt **out, unsigned max);

/** "checkpoint N: reason" of the newest failure ("" if none). */
const char *sl_coord_last_failure(const struct sl_coord *c);

/** Why the coordinator gave up ("" if it did not). */
const char *sl_coord_error(const struct sl_coord *c);

#endif
