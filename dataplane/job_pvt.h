/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal job graph and runtime structures; never installed. */
#ifndef SLUICE_JOB_PVT_H
#define SLUICE_JOB_PVT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>

#include "sluice/barrier.h"
#include "sluice/channel.h"
#include "sluice/checkpoint.h"
#include "sluice/job.h"
#include "sluice/operator.h"
#include "sluice/snapshot.h"

#define SL_UID_MAX 64

struct job_input {
	int from;		       /* upstream node */
	enum sl_partition part;
	char key[SL_FIELD_NAME_MAX];
	const struct sl_field *key_field; /* in from's output schema, by plan */
};

struct job_node {
	char uid[SL_UID_MAX];
	const struct sl_operator_ops *ops;
	void *conf;
	uint32_t parallelism;
	unsigned n_in;
	struct job_input in[SL_MAX_INPUTS];
	struct sl_schema out_schema;
	int *placement;	     /* lcore per subtask, -1 = unplaced */
	uint32_t first_task; /* global index of subtask 0 (runtime) */
};

/* One output edge of a running subtask. */
struct out_port {
	enum sl_partition part;
	uint16_t key_off;
	uint16_t key_size;
	uint32_t n_ch;
	uint32_t rr;		   /* rebalance cursor */
	int64_t wm_routed;	   /* hash: watermark when the last routed
				    * batch was done: safe for batches that
				    * fill in the middle of the next one */
	struct sl_channel **ch;	   /* by downstream subtask index */
	struct sl_batch **partial; /* hash: batch being filled per channel */
	uint16_t *owner;	   /* hash: key group -> channel index */
};

#define HELD_MAX 64

/* One input channel of a running subtask. */
struct in_port {
	struct sl_channel *ch;
	unsigned input;	   /* logical input of the operator */
	int64_t watermark;
	bool ended;
	bool drain;
	uint64_t consumed; /* batches processed: the next one's sequence number */
	/* the rest of a burst after an aligned marker, read after alignment */
	unsigned n_held;
	struct sl_batch *held[HELD_MAX];
	/* a burst dequeued but not processed yet (while deciding on it) */
	struct sl_batch **pending;
	unsigned n_pending;
};

/* Coordinator -> subtask commands (an SPSC ring per subtask). */
enum ckpt_cmd_type { CKPT_TRIGGER = 1, CKPT_COMPLETE, CKPT_ABORT };
struct ckpt_cmd {
	uint32_t type;
	uint32_t pad_;
	uint64_t id;
};

/* checkpoints a subtask works on at once: max concurrent, and as many
 * again that ended at the coordinator while their files are still being
 * closed here */
#define CKPT_SLOTS (2 * SL_CKPT_MAX_CONCURRENT)
#define CKPT_BLOBS_MAX 16

/* What a subtask persisted for one checkpoint: travels with its ack to
 * the coordinator, which puts it into the metadata. */
struct ckpt_handles {
	struct sl_snap_file_ref refs[2];
	unsigned n_refs;
	/* incremental: the keyed file is a delta on checkpoint keyed_base,
	 * whose chain of keyed_inherit files the metadata inherits first
	 * (0/0: full or no keyed state) */
	uint64_t keyed_base;
	uint32_t keyed_inherit;
	unsigned n_blobs;
	void *blob[CKPT_BLOBS_MAX];
	size_t blob_len[CKPT_BLOBS_MAX];
};

/* A keyed snapshot a subtask took, as a possible base of a delta
 * (dataplane/checkpoint_incremental.c). */
struct keyed_base {
	uint64_t id;	      /* checkpoint */
	uint32_t epoch;	      /* its keyed-state snapshot epoch */
	uint32_t chain;	      /* keyed files in its chain: 1 full + deltas */
	uint64_t chain_bytes; /* their bytes (this one's once written) */
	bool written;	      /* acknowledged: usable as a base */
};
#define KEYED_BASES 8

/* What the coordinator decided for a checkpoint at its trigger: the base
 * of incremental keyed snapshots.  id doubles as a sequence number: the
 * main lcore zeroes it, writes base, then publishes id. */
struct incr_plan {
	uint64_t id;
	uint64_t base; /* last completed checkpoint at the trigger, 0 none */
};

enum task_phase {
	TASK_RUNNING,
	TASK_FIRING,	/* on_watermark returned SL_MORE */
	TASK_ENDING,	/* all inputs ended; on_end pending */
	TASK_DONE,
};

struct task {
	struct sl_task pub; /* first: operators see only this */
	struct sl_job *job;
	struct job_node *node;
	const struct sl_operator_ops *ops;
	void *op;
	struct rte_mempool *pool;
	/* barrier markers only: a pool of their own, so that a data pool
	 * emptied by backpressure never keeps a barrier from being forwarded */
	struct rte_mempool *marker_pool;

	unsigned n_in;
	struct in_port *in;
	unsigned in_rr;

	unsigned n_out;
	struct out_port *out;
	unsigned n_out_ch;	    /* all output channels, flat */
	struct sl_channel **out_ch;

	enum task_phase phase;
	bool blocked;		    /* some output channel has staged batches */
	bool drain;		    /* end was an exhausted input, not a stop */
	bool is_source;
	int64_t firing_wm;	    /* watermark on_watermark is working on */
	uint64_t last_flush_tsc;

	uint64_t busy_cycles;
	uint64_t blocked_cycles;
	uint64_t blocked_since;

	/* checkpointing (all NULL when off) */
	struct sl_io_writer *io;	   /* the writer serving its lcore */
	struct sl_barrier_tracker *bt;	   /* non-sources */
	struct rte_ring *ctl;		   /* commands from the coordinator */
	struct rte_ring *io_cq;		   /* io completions */
	struct sl_ckpt_ctx *ck[CKPT_SLOTS]; /* checkpoints in progress here */
	unsigned n_ck;
	struct sl_ckpt_task_ack *declines; /* waiting for room in the ack ring */
	unsigned n_declines;
	/* sl_task_rename(): done one after the other, oldest first; the
	 * first is with the writer when ren_submitted */
	struct task_rename *renames;
	unsigned n_renames, cap_renames;
	bool ren_submitted;
	uint64_t rename_seq;	/* cookie of the next one */
	/* incremental: the keyed state snapshotted and its recent snapshots */
	struct sl_kstate *kb_state;
	struct keyed_base kb[KEYED_BASES]; /* ascending ids */
	unsigned n_kb;
	uint32_t kb_trimmed;	/* deletion log trimmed up to this epoch */
	char err[256];
} __rte_cache_aligned;

/* One io writer of the layout (sl_job_add_io_writer()). */
struct job_io_layout {
	enum sl_io_poll poll;
	unsigned lcore;
	unsigned *serves; /* worker lcores; NULL: the lcores nobody lists */
	unsigned n_serves;
	unsigned queue_depth;	    /* 0: the writer's default */
	unsigned request_ring_size; /* 0: the writer's default */
};

/* A running io writer (dataplane/checkpoint_control.c). */
struct ckpt_io {
	struct sl_io_writer *w;
	enum sl_io_poll poll;
	unsigned lcore;
	bool on_main;	   /* polled by the control loop */
	bool launched;	   /* SL_IO_POLL_OWN: its lcore runs it */
	struct task **served; /* subtasks submitting to it */
	unsigned n_served;
};

/* An sl_task_rename() in flight (dataplane/task_checkpoint.c). */
struct task_rename {
	uint64_t seq;
	struct sl_io_file *f; /* `from` */
	char *to;
};

struct lcore_ctx {
	struct sl_job *job;
	unsigned lcore;
	unsigned n_tasks;
	struct task **tasks;
	struct ckpt_io *io; /* an io writer this loop polls inline, or NULL */
	uint64_t busy_iters;
	uint64_t idle_iters;
} __rte_cache_aligned;

struct sl_job {
	char name[SL_UID_MAX];
	struct sl_job_config cfg;
	struct job_node *nodes;
	int n_nodes;
	int cap_nodes;
	bool planned;
	bool prepared;
	int err_node;
	char err[1024];
	struct job_io_layout io_layout[SL_JOB_IO_WRITERS_MAX];
	unsigned n_io_layout;

	/* runtime */
	struct task *tasks;
	uint32_t n_tasks;
	struct sl_channel **channels;
	uint32_t n_channels;
	struct lcore_ctx *lcores;
	unsigned n_lcores;
	uint64_t buffer_timeout_tsc;
	atomic_uint tasks_done;
	atomic_int failed;	   /* first failing errno, 0 = none */
	atomic_int stop;	   /* 0, 1 = stop, 2 = stop + drain */
	atomic_int force;
	atomic_bool fail_final;	   /* the failure is not worth a restart
				    * (setting up, restoring) */
	unsigned restarts;	   /* by the restart strategy, this run */

	/* restoring (dataplane/job_restore.c); NULL: empty state */
	struct sl_job_restore *restore;
	atomic_uint tasks_restored; /* subtasks past open + restore */

	/* checkpointing */
	struct sl_coord *coord;
	struct ckpt_io io[SL_JOB_IO_WRITERS_MAX]; /* io writers, n_io of them */
	unsigned n_io;
	struct rte_ring *acks;	   /* subtasks -> coordinator (MPSC) */
	bool *done_seen;	   /* per subtask, read before draining acks */
	struct sl_job_checkpoints ckpt_summary; /* of the last run */
	uint64_t ckpt_summary_from_ns;	/* history counted from (atomic) */
	uint64_t job_id;	   /* fingerprint of the graph, in metadata */
	/* incremental checkpoints (dataplane/checkpoint_incremental.c) */
	struct incr_plan incr_plan[SL_COORD_HISTORY]; /* by id % size */
	struct sl_snap_metadata *incr_last; /* newest completed, main lcore */
	struct sl_snap_metadata *incr_aux;  /* an older base, read back */
	unsigned run_id;	   /* makes rte object names unique per run */
	uint64_t tsc_hz;
	/* TSC of each checkpoint's trigger, by id % SL_COORD_HISTORY:
	 * written on the main lcore before the trigger commands are sent,
	 * read by subtasks after the barrier reached them (the rings in
	 * between order it), for the start delay */
	uint64_t trigger_id[SL_COORD_HISTORY];
	uint64_t trigger_tsc[SL_COORD_HISTORY];

	struct sl_ctl_server *ctl; /* control socket, NULL if none */

	struct sl_task_stats *task_stats;
	struct sl_lcore_stats *lcore_stats;
	unsigned n_lcore_stats;
	double elapsed;
};

/*
 * The checkpoint a job restores from, chosen and checked by
 * sl_job_restore_from() (dataplane/job_restore.c) and read by the subtasks
 * in dataplane/task_restore.c.
 */
struct sl_job_restore {
	char dir[4096];			/* checkpoint/savepoint directory */
	uint64_t id;			/* its checkpoint id */
	struct sl_snap_metadata *meta;
	/* every file the metadata references, read once (in parallel, while
	 * the checkpoint was chosen) and checked against its size and xxh3;
	 * sorted by path, freed once every subtask restored */
	struct restore_file *files;
	uint32_t n_files;
	/* per run: progress of the reading (bytes, relaxed atomics) */
	uint64_t total_bytes;
	uint64_t read_bytes;
	uint64_t start_ns;
	uint64_t next_report_ns;
	bool reported_done;
	/* per metadata operator, per old subtask: its blob was read (after a
	 * rescale any new subtask may take it; all must be taken) */
	uint32_t *blob_base;
	uint8_t *blob_taken;
	/* per run: incremental checkpoints take the restored checkpoint as
	 * the base of their first deltas (it lies in the job's own
	 * checkpoint directory) */
	bool as_base;
};

/* restoring, job side (main lcore): dataplane/job_restore.c */
int __sl_restore_start(struct sl_job *job);
void __sl_restore_poll(struct sl_job *job);
void __sl_restore_free(struct sl_job *job);
const struct sl_snap_operator_meta *
__sl_restore_op(const struct sl_job *job, const struct job_node *node);
/* One referenced file, in memory (dataplane/job_restore.c). */
struct restore_file {
	const struct sl_snap_file_ref *ref; /* in the metadata */
	void *data;			    /* its bytes (free()), or NULL */
	uint64_t len;
	/* per run: subtasks still to load it (atomic); the last one frees
	 * the bytes */
	uint32_t users;
	uint64_t released; /* bytes at the start given back (sole user) */
};
/* The one place restore reads a referenced file through: a memory source
 * over the bytes read while the checkpoint was chosen (or, once those are
 * released, an O_NOFOLLOW descriptor read with pread). */
int __sl_restore_src_open(const struct sl_job_restore *r,
			  const struct sl_snap_file_ref *ref,
			  struct sl_snap_src *src, struct sl_snap_err *err);
/* The same, always reading the file (not the bytes in memory). */
int __sl_restore_src_open_file(const struct sl_job_restore *r,
			       const struct sl_snap_file_ref *ref,
			       struct sl_snap_src *src, struct sl_snap_err *err);
void __sl_restore_src_close(struct sl_snap_src *src);
/* A subtask counted as a user of the file (__sl_restore_start) is done
 * with it: the last one frees its bytes. */
void __sl_restore_file_done(struct sl_job_restore *r,
			    const struct sl_snap_file_ref *ref);
/* The sole user of the file will not read its bytes before `offset`
 * again: they are given back to the system now. */
void __sl_restore_file_consumed(struct sl_job_restore *r,
				const struct sl_snap_file_ref *ref,
				uint64_t offset);
/* restoring, subtask side: dataplane/task_restore.c */
int __sl_task_restore(struct task *t);
/* output in flight at the checkpoint, re-sent once every input channel
 * holds its own in-flight batches (which are older) */
struct restore_resend {
	struct task *from;
	struct sl_channel *ch;
	struct sl_batch *b;
};
struct restore_resend_list {
	struct restore_resend *v;
	size_t n, cap;
};
int __sl_task_restore_inflight(struct task *t, struct restore_resend_list *later);
void __sl_task_end_restored(struct task *t);

/* checkpointing: dataplane/task_checkpoint.c */
/* Nothing of the checkpoint path left to do at this subtask: no
 * checkpoint in progress, no decline or rename waiting (read from any
 * lcore: the owner stores the counters after the work they count). */
static inline bool __sl_ckpt_task_quiet(const struct task *t)
{
	return __atomic_load_n(&t->n_ck, __ATOMIC_ACQUIRE) == 0 &&
	       __atomic_load_n(&t->n_declines, __ATOMIC_ACQUIRE) == 0 &&
	       __atomic_load_n(&t->n_renames, __ATOMIC_ACQUIRE) == 0;
}
int __sl_ckpt_task_init(struct task *t);
void __sl_ckpt_task_fini(struct task *t);
int __sl_ckpt_poll(struct task *t);
int __sl_ckpt_snapshot(struct task *t, uint64_t id, bool unaligned, bool switched);
void __sl_ckpt_persist_input(struct task *t, uint64_t id, unsigned in,
			     const struct sl_batch *b, uint64_t seq);
unsigned __sl_ckpt_poll_announcements(struct task *t);
int __sl_ckpt_decide(struct task *t);
void __sl_ckpt_between_batches(struct task *t, struct in_port *in,
			       struct sl_batch **rest, unsigned n_rest);
void __sl_ckpt_handles_free(void *handles);
uint64_t __sl_ckpt_now_ns(const struct task *t);
/* incremental checkpoints: dataplane/checkpoint_incremental.c */
struct keyed_base *__sl_ckpt_incr_choose(struct task *t, uint64_t id,
					 struct sl_kstate *st,
					 uint64_t *base_id);
void __sl_ckpt_incr_record(struct task *t, uint64_t id, uint32_t epoch,
			   uint64_t base_id, const struct keyed_base *base);
void __sl_ckpt_incr_written(struct task *t, uint64_t id, uint64_t bytes);
void __sl_ckpt_incr_plan(struct sl_job *job, uint64_t id);
int __sl_ckpt_incr_inherit(struct sl_job *job, struct sl_snap_metadata *m,
			   int op, uint32_t subtask,
			   const struct ckpt_handles *h, char *err,
			   size_t errlen);
void __sl_ckpt_incr_completed(struct sl_job *job, struct sl_snap_metadata **m);
void __sl_ckpt_incr_retain(struct sl_job *job);
void __sl_ckpt_incr_fini(struct sl_job *job);
/* checkpointing on the main lcore: dataplane/checkpoint_control.c */
int __sl_ckpt_control_start(struct sl_job *job);
int __sl_ckpt_control_poll(struct sl_job *job);
void __sl_ckpt_control_stop(struct sl_job *job);
bool __sl_ckpt_control_busy(struct sl_job *job);
/* io writers polled elsewhere than the main lcore */
void __sl_ckpt_io_stop_lcores(struct sl_job *job);
int __sl_ckpt_io_poll_inline(struct lcore_ctx *lc);
bool __sl_ckpt_io_idle(const struct lcore_ctx *lc);
uint64_t __sl_ckpt_start_delay_ns(const struct sl_job *job, uint64_t id,
				  uint64_t first_barrier_ns);
/* statistics: dataplane/checkpoint_stats.c */
struct json_t;
struct json_t *__sl_ckpt_stats_json(const struct sl_job *job, bool subtasks);
/* the control socket while the job runs: dataplane/job_control.c */
int __sl_job_control_start(struct sl_job *job);
int __sl_job_control_poll(struct sl_job *job);
void __sl_job_control_stop(struct sl_job *job);

/* runtime entry points shared between files */
int __sl_job_run_once(struct sl_job *job);
int __sl_task_poll(struct task *t);
void __sl_task_flush(struct task *t);
int __sl_lcore_loop(void *arg);
void __sl_job_fail(struct sl_job *job, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
