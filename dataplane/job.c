/* SPDX-License-Identifier: BSD-3-Clause */
/* Job graph: building, validation and planning (no EAL needed). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_pvt.h"
#include "sluice/keygroup.h"

static const char *const partition_names[] = {
	[SL_PART_FORWARD] = "forward",
	[SL_PART_HASH] = "hash",
	[SL_PART_REBALANCE] = "rebalance",
	[SL_PART_BROADCAST] = "broadcast",
};

const char *sl_partition_name(enum sl_partition p)
{
	if ((unsigned)p >= RTE_DIM(partition_names))
		return NULL;
	return partition_names[p];
}

void sl_job_config_defaults(struct sl_job_config *cfg)
{
	*cfg = (struct sl_job_config){
		.max_parallelism = SL_MAX_PARALLELISM_DEFAULT,
		.default_parallelism = 1,
		.batch_size = 256,
		.ring_size = 256,
		.prio_ring_size = 64,
		.burst_size = 32,
		.buffer_timeout_us = 1000,
		.idle_sleep_max_us = 200,
		.progress_ms = 0,
	};
	sl_checkpoint_config_defaults(&cfg->checkpoint);
	sl_restart_config_defaults(&cfg->restart);
}

static void job_errorf(struct sl_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void job_errorf(struct sl_job *job, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(job->err, sizeof(job->err), fmt, ap);
	va_end(ap);
}

static bool is_pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

struct sl_job *sl_job_create(const char *name, const struct sl_job_config *cfg)
{
	struct sl_job_config defaults;
	struct sl_job *job;

	if (cfg == NULL) {
		sl_job_config_defaults(&defaults);
		cfg = &defaults;
	}
	if (name == NULL || strlen(name) == 0 || strlen(name) >= SL_UID_MAX ||
	    cfg->max_parallelism == 0 ||
	    cfg->max_parallelism > SL_MAX_PARALLELISM_LIMIT ||
	    cfg->default_parallelism == 0 || cfg->batch_size == 0 ||
	    cfg->burst_size == 0 || !is_pow2(cfg->prio_ring_size) ||
	    cfg->ring_size < 2 ||
	    sl_restart_config_check(&cfg->restart, NULL, 0) < 0) {
		errno = EINVAL;
		return NULL;
	}
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return NULL;
	snprintf(job->name, sizeof(job->name), "%s", name);
	job->cfg = *cfg;
	job->err_node = -1;
	return job;
}

void sl_job_free(struct sl_job *job)
{
	if (job == NULL)
		return;
	for (int i = 0; i < job->n_nodes; i++) {
		free(job->nodes[i].conf);
		free(job->nodes[i].placement);
	}
	free(job->nodes);
	for (unsigned i = 0; i < job->n_io_layout; i++)
		free(job->io_layout[i].serves);
	__sl_restore_free(job);
	free(job->task_stats);
	free(job->lcore_stats);
	free(job);
}

const char *sl_job_name(const struct sl_job *job)
{
	return job->name;
}

const struct sl_job_config *sl_job_get_config(const struct sl_job *job)
{
	return &job->cfg;
}

const char *sl_job_error(const struct sl_job *job)
{
	return job->err;
}

int sl_job_find(const struct sl_job *job, const char *uid)
{
	for (int i = 0; i < job->n_nodes; i++)
		if (strcmp(job->nodes[i].uid, uid) == 0)
			return i;
	return -ENOENT;
}

int sl_job_node_count(const struct sl_job *job)
{
	return job->n_nodes;
}

const char *sl_job_node_uid(const struct sl_job *job, int node)
{
	return node >= 0 && node < job->n_nodes ? job->nodes[node].uid : NULL;
}

uint32_t sl_job_node_parallelism(const struct sl_job *job, int node)
{
	return node >= 0 && node < job->n_nodes ? job->nodes[node].parallelism
						: 0;
}

const void *sl_job_node_conf(const struct sl_job *job, int node)
{
	return node >= 0 && node < job->n_nodes ? job->nodes[node].conf : NULL;
}

const struct sl_schema *sl_job_node_schema(const struct sl_job *job, int node)
{
	if (node < 0 || node >= job->n_nodes || !job->planned ||
	    job->nodes[node].ops->sink)
		return NULL;
	return &job->nodes[node].out_schema;
}

int sl_job_add(struct sl_job *job, const char *uid,
	       const struct sl_operator_ops *ops, const void *conf,
	       uint32_t parallelism)
{
	char gen_uid[SL_UID_MAX];
	struct job_node *n;

	if (ops == NULL || ops->type == NULL) {
		job_errorf(job, "operator has no type");
		return -EINVAL;
	}
	if (uid == NULL) {
		/* Derived from topology position, so the same graph gets the
		 * same uids on every run (state is matched by uid). */
		snprintf(gen_uid, sizeof(gen_uid), "%s-%d", ops->type,
			 job->n_nodes);
		uid = gen_uid;
	}
	if (strlen(uid) == 0 || strlen(uid) >= SL_UID_MAX) {
		job_errorf(job, "uid '%s' must be 1..%d characters", uid,
			   SL_UID_MAX - 1);
		return -EINVAL;
	}
	if (sl_job_find(job, uid) >= 0) {
		job_errorf(job, "uid '%s' is used twice; every operator needs its own uid",
			   uid);
		return -EEXIST;
	}
	if (parallelism == 0)
		parallelism = job->cfg.default_parallelism;
	if (parallelism > job->cfg.max_parallelism) {
		job_errorf(job,
			   "operator '%s': parallelism %u exceeds pipeline.max-parallelism %u; lower it or raise max-parallelism",
			   uid, parallelism, job->cfg.max_parallelism);
		return -EINVAL;
	}
	if (job->n_nodes == job->cap_nodes) {
		int cap = job->cap_nodes ? job->cap_nodes * 2 : 8;
		struct job_node *nn = realloc(job->nodes, cap * sizeof(*nn));
		if (nn == NULL)
			return -ENOMEM;
		job->nodes = nn;
		job->cap_nodes = cap;
	}
	n = &job->nodes[job->n_nodes];
	memset(n, 0, sizeof(*n));
	snprintf(n->uid, sizeof(n->uid), "%s", uid);
	n->ops = ops;
	n->parallelism = parallelism;
	n->conf = calloc(1, ops->conf_size ? ops->conf_size : 1);
	n->placement = malloc(parallelism * sizeof(int));
	if (n->conf == NULL || n->placement == NULL) {
		free(n->conf);
		free(n->placement);
		return -ENOMEM;
	}
	if (ops->conf_size)
		memcpy(n->conf, conf, ops->conf_size);
	for (uint32_t i = 0; i < parallelism; i++)
		n->placement[i] = -1;
	job->planned = false;
	job->prepared = false;
	return job->n_nodes++;
}

int sl_job_connect(struct sl_job *job, int from, int to,
		   enum sl_partition part, const char *key_field)
{
	struct job_node *src, *dst;

	if (from < 0 || from >= job->n_nodes || to < 0 || to >= job->n_nodes) {
		job_errorf(job, "connect: no such operator");
		return -EINVAL;
	}
	src = &job->nodes[from];
	dst = &job->nodes[to];
	/* Nodes may only read from nodes added before them: the graph is
	 * acyclic by construction and node order is a topological order. */
	if (from >= to) {
		job_errorf(job,
			   "operator '%s' cannot read from '%s': inputs must be defined before the operators that read them (no cycles)",
			   dst->uid, src->uid);
		return -EINVAL;
	}
	if (src->ops->sink) {
		job_errorf(job, "operator '%s' cannot read from sink '%s': sinks have no output",
			   dst->uid, src->uid);
		return -EINVAL;
	}
	if (dst->n_in >= dst->ops->max_inputs) {
		job_errorf(job, "operator '%s' (%s) takes at most %u input%s",
			   dst->uid, dst->ops->type, dst->ops->max_inputs,
			   dst->ops->max_inputs == 1 ? "" : "s");
		return -EINVAL;
	}
	if ((unsigned)part > SL_PART_BROADCAST) {
		job_errorf(job, "operator '%s': unknown partitioning", dst->uid);
		return -EINVAL;
	}
	if (part == SL_PART_FORWARD && src->parallelism != dst->parallelism) {
		job_errorf(job,
			   "operator '%s': forward partitioning from '%s' needs equal parallelism (%u vs %u); use hash, rebalance or broadcast",
			   dst->uid, src->uid, src->parallelism, dst->parallelism);
		return -EINVAL;
	}
	if (part == SL_PART_HASH &&
	    (key_field == NULL || key_field[0] == '\0' ||
	     strlen(key_field) >= SL_FIELD_NAME_MAX)) {
		job_errorf(job, "operator '%s': hash partitioning needs a key field",
			   dst->uid);
		return -EINVAL;
	}
	struct job_input *in = &dst->in[dst->n_in++];
	in->from = from;
	in->part = part;
	snprintf(in->key, sizeof(in->key), "%s", key_field ? key_field : "");
	job->planned = false;
	return 0;
}

int sl_job_place(struct sl_job *job, int node, uint32_t subtask,
		 unsigned lcore)
{
	if (node < 0 || node >= job->n_nodes ||
	    subtask >= job->nodes[node].parallelism) {
		job_errorf(job, "place: no such subtask");
		return -EINVAL;
	}
	job->nodes[node].placement[subtask] = (int)lcore;
	return 0;
}

/* The writer polled on `lcore`, or that serves it (by its list); -1. */
static int io_writer_on(const struct sl_job *job, unsigned lcore)
{
	for (unsigned i = 0; i < job->n_io_layout; i++)
		if (job->io_layout[i].lcore == lcore)
			return (int)i;
	return -1;
}

static int io_writer_serving(const struct sl_job *job, unsigned lcore)
{
	for (unsigned i = 0; i < job->n_io_layout; i++)
		for (unsigned k = 0; k < job->io_layout[i].n_serves; k++)
			if (job->io_layout[i].serves[k] == lcore)
				return (int)i;
	return -1;
}

int sl_job_add_io_writer(struct sl_job *job, const struct sl_job_io_writer *wr)
{
	const enum sl_io_poll poll = wr->poll;
	const unsigned lcore = wr->lcore, n_serves = wr->n_serves;
	const unsigned *serves = wr->serves;
	struct job_io_layout *w;
	int o;

	job->err_node = -1;
	if (poll != SL_IO_POLL_OWN && poll != SL_IO_POLL_INLINE) {
		job_errorf(job, "io writer: unknown poll mode %d", (int)poll);
		return -EINVAL;
	}
	if (job->n_io_layout == SL_JOB_IO_WRITERS_MAX) {
		job_errorf(job, "at most %d io writers; let one writer serve several lcores",
			   SL_JOB_IO_WRITERS_MAX);
		return -EINVAL;
	}
	if (lcore >= RTE_MAX_LCORE || (n_serves > 0 && serves == NULL)) {
		job_errorf(job, "io writer: lcore %u is not an lcore id (0..%d)",
			   lcore, RTE_MAX_LCORE - 1);
		return -EINVAL;
	}
	if (wr->queue_depth > 4096 || wr->request_ring_size > (1u << 20) ||
	    (wr->request_ring_size != 0 && wr->request_ring_size < 2)) {
		job_errorf(job, "io writer: queue depth %u (at most 4096) or request ring size %u (2..%u) out of range",
			   wr->queue_depth, wr->request_ring_size, 1u << 20);
		return -EINVAL;
	}
	if ((o = io_writer_on(job, lcore)) >= 0) {
		job_errorf(job, "lcore %u already polls io writer %d; one writer per lcore",
			   lcore, o);
		return -EINVAL;
	}
	if (poll == SL_IO_POLL_OWN && (o = io_writer_serving(job, lcore)) >= 0) {
		job_errorf(job, "lcore %u runs an io writer of its own, so it hosts no subtasks, but io writer %d serves it; list worker lcores in serves",
			   lcore, o);
		return -EINVAL;
	}
	if (n_serves == 0)
		for (unsigned i = 0; i < job->n_io_layout; i++)
			if (job->io_layout[i].n_serves == 0) {
				job_errorf(job, "io writer %u already serves every lcore no other writer lists; give this one the lcores it serves",
					   i);
				return -EINVAL;
			}
	for (unsigned k = 0; k < n_serves; k++) {
		if (serves[k] >= RTE_MAX_LCORE) {
			job_errorf(job, "io writer: %u in its served lcores is not an lcore id (0..%d)",
				   serves[k], RTE_MAX_LCORE - 1);
			return -EINVAL;
		}
		if ((o = io_writer_serving(job, serves[k])) >= 0) {
			job_errorf(job, "lcore %u is already served by io writer %d; each lcore submits to one writer",
				   serves[k], o);
			return -EINVAL;
		}
		for (unsigned j = 0; j < k; j++)
			if (serves[j] == serves[k]) {
				job_errorf(job, "lcore %u is listed twice in the served lcores",
					   serves[k]);
				return -EINVAL;
			}
		o = io_writer_on(job, serves[k]);
		if (serves[k] == lcore ? poll == SL_IO_POLL_OWN
				       : o >= 0 && job->io_layout[o].poll == SL_IO_POLL_OWN) {
			job_errorf(job, "lcore %u runs an io writer of its own and hosts no subtasks; list worker lcores in serves",
				   serves[k]);
			return -EINVAL;
		}
	}
	w = &job->io_layout[job->n_io_layout];
	*w = (struct job_io_layout){ .poll = poll, .lcore = lcore,
				     .queue_depth = wr->queue_depth,
				     .request_ring_size = wr->request_ring_size };
	if (n_serves > 0) {
		w->serves = malloc(n_serves * sizeof(*serves));
		if (w->serves == NULL)
			return -ENOMEM;
		memcpy(w->serves, serves, n_serves * sizeof(*serves));
		w->n_serves = n_serves;
	}
	return (int)job->n_io_layout++;
}

int sl_job_plan(struct sl_job *job)
{
	char msg[512];

	job->err_node = -1;
	if (job->n_nodes == 0) {
		job_errorf(job, "the job has no operators");
		return -EINVAL;
	}
	for (int i = 0; i < job->n_nodes; i++) {
		struct job_node *n = &job->nodes[i];
		const struct sl_schema *in[SL_MAX_INPUTS];

		if (n->n_in < n->ops->min_inputs) {
			job_errorf(job, "operator '%s' (%s) needs %s%u input%s, has %u",
				   n->uid, n->ops->type,
				   n->ops->min_inputs == n->ops->max_inputs ? "" : "at least ",
				   n->ops->min_inputs,
				   n->ops->min_inputs == 1 ? "" : "s", n->n_in);
			job->err_node = i;
			return -EINVAL;
		}
		for (unsigned k = 0; k < n->n_in; k++) {
			struct job_input *ji = &n->in[k];
			const struct job_node *src = &job->nodes[ji->from];

			in[k] = &src->out_schema;
			ji->key_field = NULL;
			if (ji->part != SL_PART_HASH)
				continue;
			ji->key_field = sl_schema_find(&src->out_schema, ji->key);
			if (ji->key_field == NULL) {
				job_errorf(job,
					   "operator '%s': key field '%s' is not in the output of '%s'",
					   n->uid, ji->key, src->uid);
				job->err_node = i;
			return -EINVAL;
			}
		}
		memset(&n->out_schema, 0, sizeof(n->out_schema));
		msg[0] = '\0';
		if (n->ops->plan != NULL) {
			int rc = n->ops->plan(n->conf, in, n->n_in, &n->out_schema,
					      msg, sizeof(msg));
			if (rc < 0) {
				job_errorf(job, "operator '%s' (%s): %s", n->uid,
					   n->ops->type,
					   msg[0] ? msg : "invalid configuration");
				job->err_node = i;
				return rc;
			}
		} else if (!n->ops->sink && n->n_in > 0) {
			n->out_schema = *in[0];
		}
		if (!n->ops->sink && n->out_schema.nfields == 0) {
			job_errorf(job, "operator '%s' (%s) has an empty output schema",
				   n->uid, n->ops->type);
			job->err_node = i;
			return -EINVAL;
		}
	}
	for (int i = 0; i < job->n_nodes; i++) {
		bool read = false;
		if (job->nodes[i].ops->sink)
			continue;
		for (int j = i + 1; j < job->n_nodes && !read; j++)
			for (unsigned k = 0; k < job->nodes[j].n_in; k++)
				read |= job->nodes[j].in[k].from == i;
		if (!read) {
			job_errorf(job,
				   "operator '%s' has no downstream operator; connect it to a sink (e.g. type: null-sink)",
				   job->nodes[i].uid);
			job->err_node = i;
			return -EINVAL;
		}
	}
	job->planned = true;
	return 0;
}
