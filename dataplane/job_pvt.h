/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal job graph and runtime structures; never installed. */
#ifndef SLUICE_JOB_PVT_H
#define SLUICE_JOB_PVT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>

#include "sluice/channel.h"
#include "sluice/job.h"
#include "sluice/operator.h"

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

/* One input channel of a running subtask. */
struct in_port {
	struct sl_channel *ch;
	unsigned input;	   /* logical input of the operator */
	int64_t watermark;
	bool ended;
	bool drain;
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
	char err[256];
} __rte_cache_aligned;

struct lcore_ctx {
	struct sl_job *job;
	unsigned lcore;
	unsigned n_tasks;
	struct task **tasks;
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

	struct sl_task_stats *task_stats;
	struct sl_lcore_stats *lcore_stats;
	unsigned n_lcore_stats;
	double elapsed;
};

/* runtime entry points shared between files */
int __sl_task_poll(struct task *t);
void __sl_task_flush(struct task *t);
int __sl_lcore_loop(void *arg);
void __sl_job_fail(struct sl_job *job, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
