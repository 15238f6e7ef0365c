/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Building and running a job: a DAG of operators, each with a parallelism
 * and a uid, connected by partitioned edges, plus the core/queue layout.
 *
 * Building and planning need no EAL; sl_job_run() does (call sl_eal_init()
 * first).  Config field names follow Flink's keys where one exists; the job
 * file uses those keys (see docs/job-file.md).
 */
#ifndef SLUICE_JOB_H
#define SLUICE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/checkpoint.h"
#include "sluice/control_socket.h"
#include "sluice/operator.h"
#include "sluice/restart.h"

/** How records of an edge are spread over the downstream subtasks. */
enum sl_partition {
	SL_PART_FORWARD,   /**< subtask i -> subtask i (equal parallelism) */
	SL_PART_HASH,	   /**< by key -> key group -> owning subtask */
	SL_PART_REBALANCE, /**< whole batches round-robin */
	SL_PART_BROADCAST, /**< every batch to every subtask (zero-copy) */
};

/** Partitioning name as in job files; NULL if out of range. */
const char *sl_partition_name(enum sl_partition p);

struct sl_job_config {
	uint32_t max_parallelism;     /**< pipeline.max-parallelism (128) */
	uint32_t default_parallelism; /**< parallelism.default (1) */
	uint32_t batch_size;	      /**< records per batch (256) */
	uint32_t ring_size;	      /**< batches per data lane (256) */
	uint32_t prio_ring_size;      /**< events per priority lane (64) */
	uint32_t burst_size;	      /**< batches per dequeue (32) */
	uint64_t buffer_timeout_us;   /**< execution.buffer-timeout (1000) */
	uint32_t idle_sleep_max_us;   /**< longest idle back-off sleep (200) */
	uint32_t progress_ms;	      /**< progress line period, 0 = off */
	struct sl_checkpoint_config checkpoint; /**< off unless interval set */
	/** sluice.control-socket: the job's control socket while it runs
	 *  (include/sluice/control_socket.h); "" = none.  `sluice run` fills
	 *  in sl_ctl_default_path() when the job file gives none. */
	char control_socket[SL_CTL_PATH_MAX];
	struct sl_restart_config restart;	/**< restart-strategy.*: none */
};

/** Fill a config with the defaults above. */
void sl_job_config_defaults(struct sl_job_config *cfg);

struct sl_job;

/**
 * Create an empty job.
 * @param name  job name (1..63 characters)
 * @param cfg   configuration, or NULL for sl_job_config_defaults()
 * @return the job, or NULL with errno set (EINVAL for a bad config, ENOMEM)
 */
struct sl_job *sl_job_create(const char *name, const struct sl_job_config *cfg);

/** Free a job (not while it runs). */
void sl_job_free(struct sl_job *job);

/** The job's name and config. */
const char *sl_job_name(const struct sl_job *job);
const struct sl_job_config *sl_job_get_config(const struct sl_job *job);

/**
 * Add an operator.
 * @param uid          unique id (state is matched to operators by it);
 *                     NULL derives one from the type and position
 * @param ops          its callbacks
 * @param conf         ops->conf_size bytes, copied
 * @param parallelism  subtasks; 0 takes parallelism.default
 * @return node id (>= 0), or -EEXIST (uid taken), -EINVAL (bad
 *         parallelism, with sl_job_error() saying why), -ENOMEM
 */
int sl_job_add(struct sl_job *job, const char *uid,
	       const struct sl_operator_ops *ops, const void *conf,
	       uint32_t parallelism);

/**
 * Connect `from`'s output to the next logical input of `to`.
 * @param key_field  field of `from`'s output schema to hash (SL_PART_HASH)
 * @return 0, -EINVAL (unknown node, forward with unequal parallelism,
 *         missing key, too many inputs, cycle), see sl_job_error()
 */
int sl_job_connect(struct sl_job *job, int from, int to,
		   enum sl_partition part, const char *key_field);

/** Look a node up by uid; -ENOENT if none. */
int sl_job_find(const struct sl_job *job, const char *uid);

/** Number of nodes, and a node's uid / parallelism. */
int sl_job_node_count(const struct sl_job *job);
const char *sl_job_node_uid(const struct sl_job *job, int node);
uint32_t sl_job_node_parallelism(const struct sl_job *job, int node);

/** The node's planned conf (valid after sl_job_plan()). */
const void *sl_job_node_conf(const struct sl_job *job, int node);
/** The node's output schema (valid after sl_job_plan()). */
const struct sl_schema *sl_job_node_schema(const struct sl_job *job, int node);

/**
 * Pin a subtask to an lcore.  Unplaced subtasks are spread round-robin
 * over the worker lcores (every enabled lcore but the main one).
 * @return 0, -EINVAL (no such node/subtask)
 */
int sl_job_place(struct sl_job *job, int node, uint32_t subtask,
		 unsigned lcore);

/** How an io writer of the layout is polled (layout.io-writers). */
enum sl_io_poll {
	SL_IO_POLL_OWN,	   /**< its lcore runs only the writer's loop
			    *   (sl_io_writer_lcore_main(): polls, and
			    *   backs off when idle) and hosts no subtask */
	SL_IO_POLL_INLINE, /**< the worker loop of its lcore polls it
			    *   between its subtasks' turns (on the main
			    *   lcore: the control loop does, as by default) */
};

/** Most io writers a job's layout may have. */
#define SL_JOB_IO_WRITERS_MAX 8

/** One checkpoint io writer of the layout (layout.io-writers[i]). */
struct sl_job_io_writer {
	enum sl_io_poll poll;	    /**< own lcore or inline */
	unsigned lcore;		    /**< the lcore that polls it */
	const unsigned *serves;	    /**< worker lcores whose subtasks submit
				     *   to it; NULL (n_serves 0): every lcore
				     *   no other writer lists.  When every
				     *   writer has a list, lcores nobody lists
				     *   are served by the first writer. */
	unsigned n_serves;	    /**< entries in serves */
	unsigned queue_depth;	    /**< SQEs in the kernel (0: 64) */
	unsigned request_ring_size; /**< request ring slots (0: 1024) */
};

/**
 * Add a checkpoint io writer to the layout (docs/io.md).  Without any, the
 * job has one writer that the main lcore's control loop polls.  With
 * several, each subtask submits its checkpoint files to the writer that
 * serves the lcore it runs on.
 * @param w  the writer (copied)
 * @return the writer's index (>= 0), or -EINVAL with sl_job_error()
 *         saying why: too many writers, an lcore that already polls a
 *         writer, an lcore served twice, a second writer without a list,
 *         an own-lcore writer on an lcore some writer serves, sizes out
 *         of range; -ENOMEM.  What needs the EAL (lcores exist, an own
 *         lcore hosts no subtask and is not the main lcore) is checked
 *         by sl_job_prepare().
 */
int sl_job_add_io_writer(struct sl_job *job, const struct sl_job_io_writer *w);

/**
 * Check the graph and compute every operator's output schema: inputs
 * counts, key fields, schemas, parallelism bounds.  Needs no EAL.
 * @return 0 or -EINVAL with sl_job_error() set
 */
int sl_job_plan(struct sl_job *job);

/**
 * Bytes of DPDK memory the job needs (pools and rings), for EAL's -m when
 * running without hugepages.  Call after sl_job_plan().
 */
size_t sl_job_memory_estimate(const struct sl_job *job);

/**
 * After EAL init: check the placement against the EAL's lcores and let
 * every operator check what needs the EAL (ports).  sl_job_run() calls it
 * if the caller did not.
 * @return 0 or -EINVAL/-ENODEV with sl_job_error() and
 *         sl_job_error_node() set
 */
int sl_job_prepare(struct sl_job *job);

/** Node the last error is about, or -1. */
int sl_job_error_node(const struct sl_job *job);

/** Per-subtask counters, filled by sl_job_run(). */
struct sl_task_stats {
	const char *uid;
	uint32_t index;
	unsigned lcore;
	uint64_t records_in;
	uint64_t records_out;
	uint64_t busy_cycles;	  /**< cycles in callbacks */
	uint64_t blocked_cycles;  /**< cycles with output staged */
	uint64_t late_dropped;	  /**< operator-reported, windows */
};

/** Per-lcore counters, filled by sl_job_run(). */
struct sl_lcore_stats {
	unsigned lcore;
	uint64_t busy_cycles; /**< iterations that did work */
	uint64_t idle_cycles; /**< iterations with nothing to do */
};

/**
 * Run the job until every sink ended, sl_job_stop() was called, or a
 * subtask failed.  EAL must be initialised; placement is checked against
 * the lcores it has.  With a restart strategy (cfg.restart), a failure
 * while running (an operator callback's error, a sink's I/O error,
 * checkpoint failures beyond the tolerable number) restarts the job in
 * this process from its newest complete checkpoint, as long as the
 * strategy allows (docs/restore.md); failures while setting up or
 * restoring are not retried.
 * @return 0, -EINVAL (layout names an lcore the EAL lacks, etc.),
 *         -ENOMEM, -ECANCELED (stopped), or the failing subtask's error;
 *         sl_job_error() says what happened
 */
int sl_job_run(struct sl_job *job);

/**
 * Start the next sl_job_run() from a checkpoint or savepoint instead of
 * empty state (docs/restore.md).  Choose and check it now, before anything
 * runs; call it once the graph is complete.  Nothing in the checkpoint
 * directory is created, modified or deleted, whatever the outcome.
 *
 * @param what  "latest": the newest complete and intact checkpoint in
 *              state.checkpoints.dir (incomplete or damaged ones are
 *              skipped with a warning on stderr naming the file);
 *              otherwise a chk-<n> or savepoint directory.  NULL cancels
 *              an earlier request.
 * @return 0, or with sl_job_error() saying what is wrong and what to do:
 *         -ENOENT (no such directory, or no usable checkpoint in it),
 *         -ENOTDIR, -EINVAL (not a checkpoint; a checkpoint of another
 *         job; an operator with state missing from the job or of another
 *         type; max parallelism changed; in-flight data with a changed
 *         parallelism), -ENOTSUP (another snapshot format version),
 *         -EBADMSG/-ELOOP (the given checkpoint is damaged), -ENOMEM
 */
int sl_job_restore_from(struct sl_job *job, const char *what);

/** Id of the checkpoint the next run restores from, 0 if none. */
uint64_t sl_job_restore_id(const struct sl_job *job);

/**
 * Ask a running job to stop (async-signal-safe).  Sources stop producing;
 * records already in flight drain to the sinks.  With `drain`, end of
 * event time is signalled so windows fire; without, open windows are
 * dropped.  A second call with force=true abandons in-flight data.
 */
void sl_job_stop(struct sl_job *job, bool drain, bool force);

/** Counters of the last run; valid until sl_job_free(). */
const struct sl_task_stats *sl_job_task_stats(const struct sl_job *job,
					      unsigned *n);
const struct sl_lcore_stats *sl_job_lcore_stats(const struct sl_job *job,
						unsigned *n);
/** Checkpoints of the last run. */
struct sl_job_checkpoints {
	uint64_t triggered, completed, failed;
	uint64_t latest_completed;	/**< id, 0 if none */
	char last_failure[192];		/**< reason of the newest failure */
	/* over the last SL_COORD_HISTORY completed checkpoints */
	uint64_t max_sync_ns;		/**< longest synchronous part of a subtask */
	uint64_t max_async_ns;		/**< longest snapshot-to-durable of a subtask */
	uint64_t max_state_bytes;	/**< largest keyed state (memory) snapshotted */
	uint64_t max_written_bytes;	/**< largest checkpoint (state + in flight) */
	uint64_t min_state_written_bytes; /**< smallest state written by one
					   *   checkpoint (incremental: a delta) */
	uint64_t max_full_state_bytes;	/**< largest state one checkpoint
					 *   references (a delta's whole chain) */
	uint64_t min_duration_ns;	/**< trigger to complete, shortest */
	uint64_t max_duration_ns;	/**< trigger to complete, longest */
	uint64_t min_inflight_bytes;	/**< channel state of the lightest one */
	uint32_t max_in_progress;	/**< most checkpoints in progress at
					 *   once (completed or failed ones) */
};
void sl_job_checkpoint_summary(const struct sl_job *job,
			       struct sl_job_checkpoints *out);
/**
 * Let the figures of sl_job_checkpoint_summary() that are taken over the
 * history (maxima, minima) count only checkpoints triggered at or after
 * `mono_ns` (CLOCK_MONOTONIC), e.g. to leave out a warm-up.  Counters
 * (triggered, completed, failed) are unaffected.  Any thread, during or
 * before sl_job_run(); 0 (the default) counts all.
 */
void sl_job_checkpoint_summary_from(struct sl_job *job, uint64_t mono_ns);

/** Restarts the restart strategy made during the last sl_job_run(). */
unsigned sl_job_restarts(const struct sl_job *job);

/** Wall time of the last run in seconds. */
double sl_job_elapsed(const struct sl_job *job);

/** Last error message ("" if none). */
const char *sl_job_error(const struct sl_job *job);

/**
 * Initialise DPDK's EAL with the given arguments (argv[0] is the program
 * name).  Adds -m sized for `memory_bytes` when --no-huge is given without
 * -m.  Errors are reported on stderr with what to do.
 * @return 0 or a negative errno
 */
int sl_eal_init(int argc, char **argv, size_t memory_bytes);

#endif
