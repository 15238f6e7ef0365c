/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Turning a planned job into running subtasks: placement on lcores,
 * channels for every edge, a batch pool per producing subtask, launch, the
 * main lcore's control loop, and tear-down.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "job_pvt.h"
#include "sluice/keygroup.h"

#define POOL_CACHE 32

static unsigned run_counter;

void __sl_job_fail(struct sl_job *job, int err, const char *fmt, ...)
{
	int expected = 0;
	va_list ap;

	/* first failure wins; it is the cause, the rest are consequences */
	if (!atomic_compare_exchange_strong(&job->failed, &expected,
					    err ? err : -EIO))
		return;
	va_start(ap, fmt);
	vsnprintf(job->err, sizeof(job->err), fmt, ap);
	va_end(ap);
}

void sl_job_stop(struct sl_job *job, bool drain, bool force)
{
	if (force)
		atomic_store(&job->force, 1);
	else
		atomic_store(&job->stop, drain ? 2 : 1);
}

const struct sl_task_stats *sl_job_task_stats(const struct sl_job *job,
					      unsigned *n)
{
	*n = job->task_stats ? job->n_tasks : 0;
	return job->task_stats;
}

const struct sl_lcore_stats *sl_job_lcore_stats(const struct sl_job *job,
						unsigned *n)
{
	*n = job->n_lcore_stats;
	return job->lcore_stats;
}

double sl_job_elapsed(const struct sl_job *job)
{
	return job->elapsed;
}

/* Channels leaving one subtask of `node`. */
static unsigned out_channels(const struct sl_job *job, int node)
{
	unsigned n = 0;

	for (int j = node + 1; j < job->n_nodes; j++)
		for (unsigned k = 0; k < job->nodes[j].n_in; k++)
			if (job->nodes[j].in[k].from == node)
				n += job->nodes[j].in[k].part == SL_PART_FORWARD
					     ? 1
					     : job->nodes[j].parallelism;
	return n;
}

static unsigned pool_size(const struct sl_job *job, int node)
{
	const struct sl_job_config *c = &job->cfg;
	unsigned n_ch = out_channels(job, node);

	/* every ring full, one staged iteration of output per channel, hash
	 * partials, and what per-lcore caches may hold */
	return n_ch * (c->ring_size + 2 + 1) + 2 * c->burst_size + 64 +
	       2 * POOL_CACHE * 4;
}

/*
 * Markers in flight per output channel: an unaligned checkpoint completes
 * while its marker still waits behind the data, so a slow channel can hold
 * a marker in every ring slot; plus one per concurrent checkpoint staged
 * behind a full ring, and one being freed by the receiver.  Markers are
 * small (no records).  No per-lcore cache: they must not be stranded in
 * other lcores' caches.
 */
static unsigned marker_pool_size(const struct sl_job *job, int node)
{
	const struct sl_job_config *c = &job->cfg;

	if (c->checkpoint.interval_ms == 0)
		return 0; /* no checkpoints, no barriers */
	return out_channels(job, node) *
	       (c->ring_size + c->checkpoint.max_concurrent + 2);
}

static struct rte_mempool *marker_pool_create(const struct sl_job *job,
					      int node, unsigned run,
					      unsigned task, unsigned lcore)
{
	char name[RTE_MEMPOOL_NAMESIZE];

	snprintf(name, sizeof(name), "sl%um%u", run, task);
	return sl_batch_marker_pool_create(name, marker_pool_size(job, node),
					   (int)rte_lcore_to_socket_id(lcore));
}

size_t sl_job_memory_estimate(const struct sl_job *job)
{
	const struct sl_job_config *c = &job->cfg;
	size_t total = 0;

	for (int i = 0; i < job->n_nodes; i++) {
		const struct job_node *n = &job->nodes[i];
		unsigned n_ch = out_channels(job, i);

		if (n->ops->sink)
			continue;
		total += (size_t)n->parallelism * pool_size(job, i) *
			 (sl_batch_elt_size(c->batch_size, n->out_schema.record_size) + 64);
		total += (size_t)n->parallelism * n_ch *
			 (c->ring_size * 8 + c->prio_ring_size *
				 sizeof(struct sl_ctrl_event) + 4096);
		total += (size_t)n->parallelism * marker_pool_size(job, i) *
			 (sl_batch_elt_size(1, 8) + 64);
	}
	return total;
}

static bool io_own_lcore(const struct sl_job *job, unsigned lcore)
{
	for (unsigned i = 0; i < job->n_io_layout; i++)
		if (job->io_layout[i].poll == SL_IO_POLL_OWN &&
		    job->io_layout[i].lcore == lcore)
			return true;
	return false;
}

/* The io writers' lcores against the EAL (sl_job_add_io_writer() checked
 * what needs none). */
static int check_io_writers(struct sl_job *job)
{
	const unsigned main_lcore = rte_get_main_lcore();

	for (unsigned i = 0; i < job->n_io_layout; i++) {
		const struct job_io_layout *w = &job->io_layout[i];

		if (!rte_lcore_is_enabled(w->lcore)) {
			__sl_job_fail(job, -EINVAL,
				      "io writer %u is polled by lcore %u, which the EAL does not have; change the layout or the EAL -l/--lcores list",
				      i, w->lcore);
			return -EINVAL;
		}
		if (w->poll == SL_IO_POLL_OWN && w->lcore == main_lcore) {
			__sl_job_fail(job, -EINVAL,
				      "io writer %u cannot have the main lcore %u to itself: it runs the control plane; poll the writer inline there, or give it a worker lcore",
				      i, w->lcore);
			return -EINVAL;
		}
		for (unsigned k = 0; k < w->n_serves; k++)
			if (!rte_lcore_is_enabled(w->serves[k]) ||
			    w->serves[k] == main_lcore) {
				__sl_job_fail(job, -EINVAL,
					      "io writer %u serves lcore %u, which %s; list worker lcores",
					      i, w->serves[k],
					      w->serves[k] == main_lcore
						      ? "is the main lcore (it hosts no subtasks)"
						      : "the EAL does not have");
				return -EINVAL;
			}
	}
	return 0;
}

static int check_and_place(struct sl_job *job)
{
	unsigned workers[RTE_MAX_LCORE];
	unsigned n_workers = 0;
	unsigned lcore, rr = 0;
	char list[256] = "";
	size_t len = 0;
	int rc;

	if ((rc = check_io_writers(job)) < 0)
		return rc;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		/* an lcore running an io writer of its own hosts nothing else */
		if (io_own_lcore(job, lcore))
			continue;
		workers[n_workers++] = lcore;
		len += snprintf(list + len, len < sizeof(list) ? sizeof(list) - len : 0,
				"%s%u", len ? "," : "", lcore);
	}
	if (n_workers == 0) {
		__sl_job_fail(job, -EINVAL,
			      "no worker lcore: the EAL has only the main lcore %u, which runs the control plane%s; give at least two lcores (e.g. EAL -l 0-1)",
			      rte_get_main_lcore(),
			      job->n_io_layout ? ", and lcores running io writers of their own" : "");
		return -EINVAL;
	}
	for (int i = 0; i < job->n_nodes; i++) {
		struct job_node *n = &job->nodes[i];
		for (uint32_t s = 0; s < n->parallelism; s++) {
			int l = n->placement[s];
			if (l < 0) {
				n->placement[s] = (int)workers[rr++ % n_workers];
				continue;
			}
			if (l < RTE_MAX_LCORE && io_own_lcore(job, (unsigned)l)) {
				__sl_job_fail(job, -EINVAL,
					      "layout places '%s' subtask %u on lcore %d, which runs an io writer of its own (layout io-writers); place it on a worker lcore (%s) or poll that writer inline",
					      n->uid, s, l, list);
				return -EINVAL;
			}
			if (l >= RTE_MAX_LCORE || !rte_lcore_is_enabled(l) ||
			    (unsigned)l == rte_get_main_lcore()) {
				__sl_job_fail(job, -EINVAL,
					      "layout places '%s' subtask %u on lcore %d, which %s; worker lcores are %s: change the layout or the EAL lcore list",
					      n->uid, s, l,
					      (unsigned)l == rte_get_main_lcore()
						      ? "is the main lcore (it runs the control plane)"
						      : "the EAL does not have",
					      list);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static void free_runtime(struct sl_job *job)
{
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		struct task *t = &job->tasks[i];
		for (unsigned k = 0; k < t->n_out; k++) {
			for (uint32_t c = 0; c < t->out[k].n_ch; c++)
				if (t->out[k].partial && t->out[k].partial[c])
					sl_batch_put(t->out[k].partial[c]);
			free(t->out[k].ch);
			free(t->out[k].partial);
			free(t->out[k].owner);
		}
		if (t->pub.out != NULL)
			sl_batch_put(t->pub.out);
		free(t->out);
		free(t->in);
		free(t->out_ch);
	}
	/* channels hold batches of the pools: free them before the pools */
	for (uint32_t i = 0; i < job->n_channels; i++)
		sl_channel_free(job->channels[i]);
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		rte_mempool_free(job->tasks[i].pool);
		rte_mempool_free(job->tasks[i].marker_pool);
	}
	free(job->channels);
	rte_free(job->tasks);
	if (job->lcores != NULL)
		for (unsigned i = 0; i < job->n_lcores; i++)
			free(job->lcores[i].tasks);
	rte_free(job->lcores);
	job->channels = NULL;
	job->n_channels = 0;
	job->tasks = NULL;
	job->lcores = NULL;
	job->n_lcores = 0;
}

static int add_channel(struct sl_job *job, unsigned run, struct task *src,
		       struct task *dst, unsigned input, struct sl_channel **out)
{
	char name[RTE_RING_NAMESIZE];
	struct sl_channel *ch;
	struct in_port *in;

	snprintf(name, sizeof(name), "sl%uc%u", run, job->n_channels);
	ch = sl_channel_create(name, job->cfg.ring_size, job->cfg.prio_ring_size,
			       (int)rte_lcore_to_socket_id(dst->pub.info.lcore));
	if (ch == NULL) {
		__sl_job_fail(job, -ENOMEM,
			      "cannot create channel %s -> %s: %s (raise EAL -m or lower ring-size)",
			      src->node->uid, dst->node->uid,
			      rte_strerror(rte_errno));
		return -ENOMEM;
	}
	ch->id = job->n_channels;
	ch->src_task = (uint32_t)(src - job->tasks);
	ch->dst_task = (uint32_t)(dst - job->tasks);
	job->channels[job->n_channels++] = ch;
	src->out_ch[src->n_out_ch++] = ch;
	in = &dst->in[dst->n_in++];
	in->ch = ch;
	in->input = input;
	in->watermark = SL_WATERMARK_MIN;
	*out = ch;
	return 0;
}

static int build(struct sl_job *job, unsigned run)
{
	const struct sl_job_config *c = &job->cfg;
	uint32_t n_tasks = 0, n_ch = 0;

	for (int i = 0; i < job->n_nodes; i++) {
		job->nodes[i].first_task = n_tasks;
		n_tasks += job->nodes[i].parallelism;
		n_ch += job->nodes[i].parallelism * out_channels(job, i);
	}
	job->tasks = rte_zmalloc("sl_tasks", n_tasks * sizeof(struct task),
				 RTE_CACHE_LINE_SIZE);
	job->channels = calloc(n_ch ? n_ch : 1, sizeof(*job->channels));
	if (job->tasks == NULL || job->channels == NULL)
		return -ENOMEM;
	job->n_tasks = n_tasks;

	/* subtasks */
	for (int i = 0; i < job->n_nodes; i++) {
		struct job_node *n = &job->nodes[i];
		unsigned n_in_ch = 0, n_out = 0;

		for (unsigned k = 0; k < n->n_in; k++)
			n_in_ch += n->in[k].part == SL_PART_FORWARD
					   ? 1
					   : job->nodes[n->in[k].from].parallelism;
		for (int j = i + 1; j < job->n_nodes; j++)
			for (unsigned k = 0; k < job->nodes[j].n_in; k++)
				n_out += job->nodes[j].in[k].from == i;

		for (uint32_t s = 0; s < n->parallelism; s++) {
			struct task *t = &job->tasks[n->first_task + s];
			struct sl_task_info *info = &t->pub.info;

			t->job = job;
			t->node = n;
			t->ops = n->ops;
			t->is_source = n->ops->max_inputs == 0;
			t->pub.watermark = SL_WATERMARK_MIN;
			t->pub.out_record_size = n->out_schema.record_size;
			info->job = job->name;
			info->uid = n->uid;
			info->type = n->ops->type;
			info->node = (uint32_t)i;
			info->index = s;
			info->parallelism = n->parallelism;
			info->max_parallelism = c->max_parallelism;
			sl_key_group_range(s, c->max_parallelism, n->parallelism,
					   &info->kg_first, &info->kg_count);
			info->lcore = (unsigned)n->placement[s];
			info->n_inputs = n->n_in;
			info->checkpointing = c->checkpoint.interval_ms > 0;
			info->restoring = job->restore != NULL;
			for (unsigned k = 0; k < n->n_in; k++)
				info->in_schema[k] = &job->nodes[n->in[k].from].out_schema;
			info->out_schema = n->ops->sink ? NULL : &n->out_schema;
			info->conf = n->conf;

			t->in = calloc(n_in_ch ? n_in_ch : 1, sizeof(*t->in));
			t->out = calloc(n_out ? n_out : 1, sizeof(*t->out));
			t->out_ch = calloc(out_channels(job, i) + 1,
					   sizeof(*t->out_ch));
			if (t->in == NULL || t->out == NULL || t->out_ch == NULL)
				return -ENOMEM;

			if (!n->ops->sink) {
				char name[RTE_MEMPOOL_NAMESIZE];
				snprintf(name, sizeof(name), "sl%ut%u", run,
					 n->first_task + s);
				t->pool = sl_batch_pool_create(
					name, pool_size(job, i), c->batch_size,
					n->out_schema.record_size,
					(int)rte_lcore_to_socket_id(info->lcore));
				if (t->pool == NULL) {
					__sl_job_fail(job, -ENOMEM,
						      "cannot create the batch pool of '%s' subtask %u: %s (raise EAL -m, or lower batch-size/ring-size)",
						      n->uid, s,
						      rte_strerror(rte_errno));
					return -ENOMEM;
				}
				if (marker_pool_size(job, i) > 0 &&
				    (t->marker_pool = marker_pool_create(
					     job, i, run, n->first_task + s,
					     info->lcore)) == NULL) {
					__sl_job_fail(job, -ENOMEM,
						      "cannot create the barrier-marker pool of '%s' subtask %u: %s (raise EAL -m)",
						      n->uid, s,
						      rte_strerror(rte_errno));
					return -ENOMEM;
				}
			}
		}
	}

	/* channels, in node order so each subtask's out ports line up */
	for (int j = 0; j < job->n_nodes; j++) {
		struct job_node *dn = &job->nodes[j];

		for (unsigned k = 0; k < dn->n_in; k++) {
			const struct job_input *ji = &dn->in[k];
			struct job_node *sn = &job->nodes[ji->from];

			for (uint32_t s = 0; s < sn->parallelism; s++) {
				struct task *src = &job->tasks[sn->first_task + s];
				struct out_port *p = &src->out[src->n_out++];
				uint32_t n_dst = ji->part == SL_PART_FORWARD
							 ? 1
							 : dn->parallelism;

				p->part = ji->part;
				p->n_ch = n_dst;
				p->wm_routed = SL_WATERMARK_MIN;
				p->ch = calloc(n_dst, sizeof(*p->ch));
				if (p->ch == NULL)
					return -ENOMEM;
				if (ji->part == SL_PART_HASH) {
					p->key_off = ji->key_field->offset;
					p->key_size = ji->key_field->size;
					p->partial = calloc(n_dst, sizeof(*p->partial));
					p->owner = calloc(c->max_parallelism,
							  sizeof(*p->owner));
					if (p->partial == NULL || p->owner == NULL)
						return -ENOMEM;
					for (uint32_t kg = 0; kg < c->max_parallelism; kg++)
						p->owner[kg] = (uint16_t)sl_key_group_owner(
							kg, c->max_parallelism, n_dst);
				}
				/* rebalance starts at the sender's own index so
				 * senders do not all hit subtask 0 first */
				p->rr = s % n_dst;
				for (uint32_t d = 0; d < n_dst; d++) {
					uint32_t ds = ji->part == SL_PART_FORWARD ? s : d;
					struct task *dst = &job->tasks[dn->first_task + ds];
					int rc = add_channel(job, run, src, dst, k,
							     &p->ch[d]);
					if (rc < 0)
						return rc;
				}
			}
		}
	}

	/* lcore contexts */
	job->lcores = rte_zmalloc("sl_lcores", RTE_MAX_LCORE * sizeof(struct lcore_ctx),
				  RTE_CACHE_LINE_SIZE);
	if (job->lcores == NULL)
		return -ENOMEM;
	job->n_lcores = RTE_MAX_LCORE;
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		struct lcore_ctx *lc = &job->lcores[job->tasks[i].pub.info.lcore];
		struct task **nt = realloc(lc->tasks, (lc->n_tasks + 1) * sizeof(*nt));
		if (nt == NULL)
			return -ENOMEM;
		lc->tasks = nt;
		lc->tasks[lc->n_tasks++] = &job->tasks[i];
		lc->job = job;
		lc->lcore = job->tasks[i].pub.info.lcore;
	}
	return 0;
}

static uint64_t load_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void progress(struct sl_job *job, double t, uint64_t *last_in,
		     uint64_t *last_out, double *last_t)
{
	uint64_t in = 0, out = 0;

	for (uint32_t i = 0; i < job->n_tasks; i++) {
		struct task *tk = &job->tasks[i];
		if (tk->is_source)
			in += load_u64(&tk->pub.records_out);
		if (tk->ops->sink)
			out += load_u64(&tk->pub.records_in);
	}
	double dt = t - *last_t;
	fprintf(stderr,
		"[%s] %7.1fs  sources %12" PRIu64 " records (%6.2f M/s)  sinks %12" PRIu64 " records (%6.2f M/s)\n",
		job->name, t, in, dt > 0 ? (in - *last_in) / dt / 1e6 : 0.0,
		out, dt > 0 ? (out - *last_out) / dt / 1e6 : 0.0);
	*last_in = in;
	*last_out = out;
	*last_t = t;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void collect_stats(struct sl_job *job)
{
	free(job->task_stats);
	free(job->lcore_stats);
	job->task_stats = calloc(job->n_tasks ? job->n_tasks : 1,
				 sizeof(*job->task_stats));
	job->lcore_stats = calloc(RTE_MAX_LCORE, sizeof(*job->lcore_stats));
	job->n_lcore_stats = 0;
	if (job->task_stats == NULL || job->lcore_stats == NULL)
		return;
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		const struct task *t = &job->tasks[i];
		struct sl_task_stats *s = &job->task_stats[i];

		s->uid = t->node->uid;
		s->index = t->pub.info.index;
		s->lcore = t->pub.info.lcore;
		s->records_in = t->pub.records_in;
		s->records_out = t->pub.records_out;
		s->busy_cycles = t->busy_cycles;
		s->blocked_cycles = t->blocked_cycles;
		s->late_dropped = t->pub.late_dropped;
	}
	for (unsigned l = 0; l < job->n_lcores; l++) {
		const struct lcore_ctx *lc = &job->lcores[l];
		if (lc->n_tasks == 0)
			continue;
		struct sl_lcore_stats *s = &job->lcore_stats[job->n_lcore_stats++];
		s->lcore = l;
		s->busy_cycles = lc->busy_iters;
		s->idle_cycles = lc->idle_iters;
	}
}

int sl_job_error_node(const struct sl_job *job)
{
	return job->err_node;
}

int sl_job_prepare(struct sl_job *job)
{
	char msg[512];
	int rc;

	job->err[0] = '\0';
	job->err_node = -1;
	atomic_store(&job->failed, 0);
	if (!job->planned && (rc = sl_job_plan(job)) < 0)
		return rc;
	if ((rc = check_and_place(job)) < 0)
		return rc;
	for (int i = 0; i < job->n_nodes; i++) {
		struct job_node *n = &job->nodes[i];
		if (n->ops->prepare == NULL)
			continue;
		msg[0] = '\0';
		rc = n->ops->prepare(n->conf, n->parallelism, msg, sizeof(msg));
		if (rc < 0) {
			snprintf(job->err, sizeof(job->err), "operator '%s' (%s): %s",
				 n->uid, n->ops->type, msg[0] ? msg : strerror(-rc));
			job->err_node = i;
			return rc;
		}
	}
	job->prepared = true;
	return 0;
}

/* One run (sl_job_run() in dataplane/restart.c repeats it on failure). */
int __sl_job_run_once(struct sl_job *job)
{
	unsigned run = __atomic_fetch_add(&run_counter, 1, __ATOMIC_RELAXED);
	double t0, next_progress, last_t;
	uint64_t last_in = 0, last_out = 0;
	int rc;

	if (!job->prepared && (rc = sl_job_prepare(job)) < 0) {
		atomic_store(&job->fail_final, true);
		return rc;
	}
	job->prepared = false; /* a rerun checks again */
	job->err[0] = '\0';
	atomic_store(&job->failed, 0);
	atomic_store(&job->fail_final, false);
	atomic_store(&job->tasks_done, 0);
	job->buffer_timeout_tsc = job->cfg.buffer_timeout_us * rte_get_tsc_hz() / 1000000;

	job->run_id = run;
	rc = __sl_job_control_start(job);
	if (rc == 0)
		rc = build(job, run);
	if (rc == 0)
		rc = __sl_ckpt_control_start(job);
	if (rc == 0)
		rc = __sl_restore_start(job);
	if (rc < 0) {
		if (job->err[0] == '\0')
			__sl_job_fail(job, rc, "cannot set up the job: %s", strerror(-rc));
		__sl_job_control_stop(job);
		__sl_ckpt_control_stop(job);
		free_runtime(job);
		__sl_restore_free(job);
		atomic_store(&job->fail_final, true); /* a restart would repeat it */
		return rc;
	}

	t0 = now_s();
	last_t = 0;
	next_progress = job->cfg.progress_ms / 1000.0;
	for (unsigned l = 0; l < job->n_lcores; l++) {
		/* an lcore may host no subtask but poll an io writer */
		if (job->lcores[l].n_tasks == 0 && job->lcores[l].io == NULL)
			continue;
		rc = rte_eal_remote_launch(__sl_lcore_loop, &job->lcores[l], l);
		if (rc != 0) {
			__sl_job_fail(job, -EBUSY, "lcore %u is busy: %s", l,
				      strerror(-rc));
			break;
		}
	}

	/* control plane on the main lcore */
	/* until every subtask ended and wrote out its checkpoints */
	while ((atomic_load(&job->tasks_done) < job->n_tasks ||
		__sl_ckpt_control_busy(job)) &&
	       !atomic_load(&job->failed) && !atomic_load(&job->force)) {
		/* with checkpoints the main lcore also polls the io writer */
		int work = __sl_job_control_poll(job);
		if (job->coord == NULL) {
			if (work == 0)
				rte_delay_us_sleep(2000);
		} else if (__sl_ckpt_control_poll(job) + work == 0) {
			rte_delay_us_sleep(100);
		}
		__sl_restore_poll(job);
		double t = now_s() - t0;
		if (job->cfg.progress_ms && t >= next_progress) {
			progress(job, t, &last_in, &last_out, &last_t);
			next_progress += job->cfg.progress_ms / 1000.0;
		}
	}
	__sl_job_control_stop(job);
	__sl_ckpt_io_stop_lcores(job); /* they finish what is queued */
	rte_eal_mp_wait_lcore();
	__sl_restore_poll(job); /* its final report, if the job was quick */
	job->elapsed = now_s() - t0;
	if (job->cfg.progress_ms)
		progress(job, job->elapsed, &last_in, &last_out, &last_t);

	collect_stats(job);
	__sl_ckpt_control_stop(job);
	rc = atomic_load(&job->failed);
	if (rc == 0 && atomic_load(&job->force)) {
		rc = -ECANCELED;
		snprintf(job->err, sizeof(job->err),
			 "cancelled: in-flight records were dropped");
	}
	free_runtime(job);
	/* a restore applies to one run */
	__sl_restore_free(job);
	return rc;
}
