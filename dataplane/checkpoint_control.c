/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The main lcore's side of checkpointing: the coordinator, the io writers
 * of the layout (each polled here, inline by a worker lcore, or on an
 * lcore of its own), the rings to and from the subtasks, and the
 * finalization of complete checkpoints (the _metadata file, written last).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>
#include <xxhash.h>

#include "job_pvt.h"
#include "sluice/io.h"
#include "sluice/io_file.h"
#include "sluice/snapshot.h"
#include "mono_clock_pvt.h"

static void command(struct sl_job *job, struct task *t, uint32_t type,
		    uint64_t id)
{
	struct ckpt_cmd cmd = { .type = type, .id = id };

	/* the subtask drains its ring every poll; 256 slots */
	while (rte_ring_sp_enqueue_elem(t->ctl, &cmd, sizeof(cmd)) != 0) {
		if (atomic_load(&job->failed) || atomic_load(&job->force))
			return;
		rte_delay_us_sleep(10);
	}
}

static bool task_done(const struct task *t)
{
	return __atomic_load_n(&t->phase, __ATOMIC_ACQUIRE) == TASK_DONE &&
	       __sl_ckpt_task_quiet(t);
}

static int co_trigger(void *ctx, uint64_t id)
{
	struct sl_job *job = ctx;
	unsigned slot = (unsigned)(id % SL_COORD_HISTORY);
	int rc;

	/* the start delay counts from here: creating the directory is part
	 * of getting the barrier going */
	__atomic_store_n(&job->trigger_tsc[slot], rte_get_tsc_cycles(), __ATOMIC_RELAXED);
	__atomic_store_n(&job->trigger_id[slot], id, __ATOMIC_RELAXED);
	rc = sl_snap_chk_create(job->cfg.checkpoint.dir, id);
	if (rc < 0)
		return rc;
	__sl_ckpt_incr_plan(job, id); /* before any subtask can see id */
	for (uint32_t i = 0; i < job->n_tasks; i++)
		if (job->tasks[i].is_source && !task_done(&job->tasks[i]))
			command(job, &job->tasks[i], CKPT_TRIGGER, id);
	return 0;
}

/* The durations of _metadata's statistics, as `sluice checkpoints` shows
 * them: end to end, and the largest of any subtask's parts (the byte
 * counts are computed from the file references when it is encoded). */
static void stats_from_acks(const struct sl_job *job, const struct sl_coord_ckpt *ck,
			    struct sl_snap_stats *s)
{
	s->duration_ns = ck->end_mono_ns - ck->trigger_mono_ns;
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		const struct sl_ckpt_task_ack *a = &ck->acks[i];
		if (!ck->have_ack[i])
			continue;
		s->alignment_ns = RTE_MAX(s->alignment_ns, a->alignment_ns);
		s->sync_ns = RTE_MAX(s->sync_ns, a->sync_ns);
		s->async_ns = RTE_MAX(s->async_ns, a->async_ns);
	}
}

static int co_finalize(void *ctx, const struct sl_coord_ckpt *ck, char *err,
		       size_t errlen)
{
	struct sl_job *job = ctx;
	struct sl_snap_metadata *m;
	struct sl_snap_err serr = { "" };
	char dir[4200];
	int rc = 0;

	m = sl_snap_meta_create(ck->id, SL_SNAP_CHECKPOINT, job->name, job->job_id,
				ck->trigger_ns);
	if (m == NULL)
		return -ENOMEM;
	stats_from_acks(job, ck, &m->stats);
	for (int n = 0; n < job->n_nodes && rc >= 0; n++) {
		struct job_node *node = &job->nodes[n];
		int op = sl_snap_meta_add_operator(m, node->uid, node->parallelism,
						   job->cfg.max_parallelism);
		if (op < 0) {
			rc = op;
			break;
		}
		rc = sl_snap_meta_set_type(m, op, node->ops->type);
		for (uint32_t s = 0; s < node->parallelism && rc >= 0; s++) {
			const struct sl_ckpt_task_ack *a = &ck->acks[node->first_task + s];
			const struct ckpt_handles *h = a->handles;
			if (h == NULL) {
				/* it had ended: a restore ends it again */
				rc = sl_snap_meta_set_finished(m, op, s);
				continue;
			}
			/* a delta's chain goes first: application order */
			rc = __sl_ckpt_incr_inherit(job, m, op, s, h, err, errlen);
			for (unsigned f = 0; f < h->n_refs && rc >= 0; f++)
				rc = sl_snap_meta_add_file(m, op, s, &h->refs[f]);
			for (unsigned b = 0; b < h->n_blobs && rc >= 0; b++)
				rc = sl_snap_meta_add_blob(m, op, s, h->blob[b], h->blob_len[b]);
		}
	}
	if (rc >= 0) {
		sl_snap_chk_path(dir, sizeof(dir), job->cfg.checkpoint.dir, ck->id);
		rc = sl_snap_meta_write(dir, m, &serr);
		if (rc < 0)
			snprintf(err, errlen, "%s", serr.msg);
		else
			__sl_ckpt_incr_completed(job, &m); /* next deltas' base */
	}
	sl_snap_meta_free(m);
	return rc;
}

static void co_notify(void *ctx, uint64_t id, bool completed)
{
	struct sl_job *job = ctx;

	for (uint32_t i = 0; i < job->n_tasks; i++)
		if (__atomic_load_n(&job->tasks[i].phase, __ATOMIC_ACQUIRE) != TASK_DONE)
			command(job, &job->tasks[i],
				completed ? CKPT_COMPLETE : CKPT_ABORT, id);
	if (completed)
		__sl_ckpt_incr_retain(job);
}

static void co_discard(void *ctx, uint64_t id, bool completed)
{
	struct sl_job *job = ctx;

	/* incremental: retention after each completion knows which shared
	 * files kept and pending checkpoints still reference */
	if (completed && job->cfg.checkpoint.incremental)
		return;
	sl_snap_chk_dispose(job->cfg.checkpoint.dir, id);
}

static void co_release(void *ctx, const struct sl_coord_ckpt *ck)
{
	struct sl_job *job = ctx;

	for (uint32_t i = 0; i < job->n_tasks; i++)
		if (ck->have_ack[i])
			__sl_ckpt_handles_free(ck->acks[i].handles);
}

static const struct sl_coord_ops coord_ops = {
	.trigger = co_trigger,
	.finalize = co_finalize,
	.notify = co_notify,
	.discard = co_discard,
	.release = co_release,
};

/* Newest chk-<n> in the directory, complete or not: new ids go above. */
static uint64_t highest_checkpoint(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	uint64_t max = 0, id;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (sl_snap_chk_parse(e->d_name, &id) == 0 && id > max)
			max = id;
	closedir(d);
	return max;
}

/* The job's fingerprint: uids, types and parallelism of its operators. */
static uint64_t fingerprint(const struct sl_job *job)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h;

	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, job->name, strlen(job->name));
	for (int i = 0; i < job->n_nodes; i++) {
		XXH3_64bits_update(st, job->nodes[i].uid, strlen(job->nodes[i].uid) + 1);
		XXH3_64bits_update(st, job->nodes[i].ops->type,
				   strlen(job->nodes[i].ops->type) + 1);
	}
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

/* Which writer serves subtasks on `lcore`: the one listing it, else the
 * one without a list, else the first. */
static unsigned io_writer_of(const struct sl_job *job, unsigned lcore)
{
	int rest = -1;

	for (unsigned i = 0; i < job->n_io_layout; i++) {
		const struct job_io_layout *w = &job->io_layout[i];
		if (w->n_serves == 0 && rest < 0)
			rest = (int)i;
		for (unsigned k = 0; k < w->n_serves; k++)
			if (w->serves[k] == lcore)
				return i;
	}
	return rest < 0 ? 0 : (unsigned)rest;
}

/* Create the io writers of the layout (one on the main lcore without
 * any), tell every subtask its writer, and start those with an lcore of
 * their own. */
static int io_writers_start(struct sl_job *job)
{
	const unsigned n = job->n_io_layout ? job->n_io_layout : 1;
	const unsigned main_lcore = rte_get_main_lcore();
	char name[RTE_RING_NAMESIZE];

	for (unsigned i = 0; i < n; i++) {
		struct ckpt_io *io = &job->io[i];
		struct sl_io_writer_conf wc = {
			.name = name, .socket = SOCKET_ID_ANY,
			.idle_sleep_max_us = job->cfg.idle_sleep_max_us,
		};

		if (job->n_io_layout) {
			wc.queue_depth = job->io_layout[i].queue_depth;
			wc.request_ring_size = job->io_layout[i].request_ring_size;
		}
		io->poll = job->n_io_layout ? job->io_layout[i].poll : SL_IO_POLL_INLINE;
		io->lcore = job->n_io_layout ? job->io_layout[i].lcore : main_lcore;
		io->on_main = io->poll == SL_IO_POLL_INLINE && io->lcore == main_lcore;
		if (io->poll != SL_IO_POLL_OWN)
			wc.socket = (int)rte_lcore_to_socket_id(io->lcore);
		snprintf(name, sizeof(name), "slw%uw%u", job->run_id, i);
		io->w = sl_io_writer_create(&wc);
		io->served = calloc(job->n_tasks ? job->n_tasks : 1, sizeof(*io->served));
		job->n_io = i + 1;
		if (io->w == NULL || io->served == NULL) {
			__sl_job_fail(job, io->w ? -ENOMEM : -rte_errno,
				      "cannot create io writer %u: %s", i,
				      io->w ? "out of memory" : rte_strerror(rte_errno));
			return -ENOMEM;
		}
		if (job->cfg.checkpoint.io_fault != NULL)
			sl_io_writer_fault_set(io->w, job->cfg.checkpoint.io_fault);
	}
	for (uint32_t t = 0; t < job->n_tasks; t++) {
		struct task *tk = &job->tasks[t];
		struct ckpt_io *io = &job->io[io_writer_of(job, tk->pub.info.lcore)];
		tk->io = io->w;
		io->served[io->n_served++] = tk;
	}
	for (unsigned i = 0; i < job->n_io; i++) {
		struct ckpt_io *io = &job->io[i];
		if (io->poll == SL_IO_POLL_INLINE && !io->on_main) {
			struct lcore_ctx *lc = &job->lcores[io->lcore];
			lc->io = io;
			lc->job = job;
			lc->lcore = io->lcore;
		} else if (io->poll == SL_IO_POLL_OWN) {
			int rc = rte_eal_remote_launch(sl_io_writer_lcore_main,
						       io->w, io->lcore);
			if (rc != 0) {
				__sl_job_fail(job, -EBUSY,
					      "cannot start io writer %u on lcore %u: %s",
					      i, io->lcore, strerror(-rc));
				return -EBUSY;
			}
			io->launched = true;
		}
	}
	return 0;
}

/* Stop the writers of every run, polled anywhere: they finish what is
 * queued and in flight, deliver the completions, and are freed. */
static void io_writers_free(struct sl_job *job)
{
	for (unsigned i = 0; i < job->n_io; i++) {
		struct ckpt_io *io = &job->io[i];
		if (io->launched) {
			sl_io_writer_stop(io->w);
			rte_eal_wait_lcore(io->lcore);
		}
		sl_io_writer_destroy(io->w);
		free(io->served);
		memset(io, 0, sizeof(*io));
	}
	job->n_io = 0;
}

void __sl_ckpt_io_stop_lcores(struct sl_job *job)
{
	for (unsigned i = 0; i < job->n_io; i++)
		if (job->io[i].launched)
			sl_io_writer_stop(job->io[i].w);
}

int __sl_ckpt_io_poll_inline(struct lcore_ctx *lc)
{
	return (int)sl_io_writer_poll(lc->io->w, 256);
}

/* An lcore polling a writer inline keeps polling it until every subtask
 * it serves ended with its checkpoints written, and nothing is left. */
bool __sl_ckpt_io_idle(const struct lcore_ctx *lc)
{
	const struct ckpt_io *io = lc->io;

	for (unsigned i = 0; i < io->n_served; i++)
		if (!task_done(io->served[i]))
			return false;
	return sl_io_writer_outstanding(io->w) == 0;
}

int __sl_ckpt_control_start(struct sl_job *job)
{
	const struct sl_checkpoint_config *c = &job->cfg.checkpoint;
	struct statvfs vfs;
	char name[RTE_RING_NAMESIZE], err[256];
	int rc;

	job->tsc_hz = rte_get_tsc_hz();
	memset(job->trigger_id, 0, sizeof(job->trigger_id));
	if (c->interval_ms == 0)
		return 0;
	if (sl_checkpoint_config_check(c, err, sizeof(err)) < 0) {
		__sl_job_fail(job, -EINVAL, "%s", err);
		return -EINVAL;
	}
	rc = sl_io_mkdirs(c->dir);
	if (rc < 0 || access(c->dir, W_OK | X_OK) < 0) {
		__sl_job_fail(job, -EACCES,
			      "state.checkpoints.dir: cannot write to %s: %s; create it or give a writable directory",
			      c->dir, strerror(rc < 0 ? -rc : errno));
		return -EACCES;
	}
	if (statvfs(c->dir, &vfs) == 0 && vfs.f_bavail == 0) {
		__sl_job_fail(job, -ENOSPC,
			      "state.checkpoints.dir: %s is on a full filesystem; free space or choose another directory",
			      c->dir);
		return -ENOSPC;
	}
	job->job_id = fingerprint(job);
	if ((rc = io_writers_start(job)) < 0)
		return rc;
	job->done_seen = calloc(job->n_tasks, sizeof(bool));
	snprintf(name, sizeof(name), "sla%u", job->run_id);
	job->acks = rte_ring_create_elem(name, sizeof(struct sl_ckpt_task_ack),
					 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (job->acks == NULL || job->done_seen == NULL) {
		__sl_job_fail(job, -ENOMEM, "cannot set up checkpointing: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < job->n_tasks; i++)
		if ((rc = __sl_ckpt_task_init(&job->tasks[i])) < 0) {
			__sl_job_fail(job, rc, "cannot set up checkpointing: %s",
				      strerror(-rc));
			return rc;
		}
	/* ids continue above everything in the directory and above the
	 * checkpoint the job restores from (which may live elsewhere) */
	uint64_t last = highest_checkpoint(c->dir);
	if (job->restore != NULL && job->restore->id > last)
		last = job->restore->id;
	job->coord = sl_coord_create(c, job->n_tasks, last + 1, &coord_ops, job);
	if (job->coord == NULL) {
		__sl_job_fail(job, -ENOMEM, "cannot create the checkpoint coordinator");
		return -ENOMEM;
	}
	sl_coord_tick(job->coord, mono_ns());
	return 0;
}

/* Acknowledge for subtasks that finished: nothing of theirs to restore.
 * `done` was read before the ack ring was drained, so a subtask's own
 * last ack is never overtaken by one made on its behalf. */
static int ack_finished(struct sl_job *job, const bool *done, uint64_t now)
{
	const struct sl_coord_ckpt *h[SL_COORD_HISTORY];
	unsigned n = sl_coord_history(job->coord, h, SL_COORD_HISTORY);

	for (unsigned k = 0; k < n; k++) {
		if (h[k]->status != SL_CKPT_PENDING)
			continue;
		for (uint32_t i = 0; i < job->n_tasks; i++) {
			if (h[k]->have_ack[i] || !done[i])
				continue;
			struct sl_ckpt_task_ack a = { .id = h[k]->id, .task = i,
						      .finished = true };
			int rc = sl_coord_ack(job->coord, h[k]->id, &a, now);
			if (rc < 0)
				return rc;
			if (h[k]->status != SL_CKPT_PENDING)
				break;
		}
	}
	return 0;
}

int __sl_ckpt_control_poll(struct sl_job *job)
{
	struct sl_ckpt_task_ack a;
	bool stopping;
	uint64_t now;
	int work = 0, rc = 0;

	if (job->coord == NULL)
		return 0;
	for (unsigned i = 0; i < job->n_io; i++)
		if (job->io[i].on_main)
			work += (int)sl_io_writer_poll(job->io[i].w, 256);
	/* No checkpoint before every subtask restored: one could complete,
	 * and retention then remove files still being read. */
	if (job->restore != NULL &&
	    (atomic_load(&job->tasks_restored) < job->n_tasks ||
	     atomic_load(&job->failed)))
		return work;
	/* After a stop without drain, subtasks end without their state: a
	 * checkpoint they "acknowledge" by having ended would be complete
	 * but hollow, and a restore from it would lose the job's state.  So
	 * ended subtasks no longer acknowledge and nothing new is triggered;
	 * checkpoints every subtask acknowledged itself still complete. */
	stopping = atomic_load(&job->stop) == 1;
	for (uint32_t i = 0; i < job->n_tasks; i++)
		job->done_seen[i] = task_done(&job->tasks[i]);
	now = mono_ns();
	while (rc >= 0 && rte_ring_sc_dequeue_elem(job->acks, &a, sizeof(a)) == 0) {
		rc = sl_coord_ack(job->coord, a.id, &a, now);
		if (rc == 1)
			__sl_ckpt_handles_free(a.handles);
		work++;
	}
	if (rc >= 0 && !stopping)
		rc = ack_finished(job, job->done_seen, now);
	if (rc >= 0 && !stopping)
		rc = sl_coord_tick(job->coord, now);
	if (rc < 0) {
		__sl_job_fail(job, -ECANCELED, "%s", sl_coord_error(job->coord));
		return rc;
	}
	return work;
}

uint64_t __sl_ckpt_start_delay_ns(const struct sl_job *job, uint64_t id,
				  uint64_t first_barrier_ns)
{
	unsigned slot = (unsigned)(id % SL_COORD_HISTORY);
	uint64_t tsc = __atomic_load_n(&job->trigger_tsc[slot], __ATOMIC_RELAXED);
	uint64_t trig;

	/* a slot reused by a newer checkpoint: this ack is stale anyway */
	if (__atomic_load_n(&job->trigger_id[slot], __ATOMIC_RELAXED) != id)
		return 0;
	/* the same conversion as the subtasks' clock (__sl_ckpt_now_ns) */
	trig = (uint64_t)((double)tsc * 1e9 / (double)job->tsc_hz);
	return first_barrier_ns > trig ? first_barrier_ns - trig : 0;
}

bool __sl_ckpt_control_busy(struct sl_job *job)
{
	if (job->coord == NULL)
		return false;
	for (uint32_t i = 0; i < job->n_tasks; i++)
		if (!__sl_ckpt_task_quiet(&job->tasks[i]))
			return true;
	return false;
}

void sl_job_checkpoint_summary(const struct sl_job *job,
			       struct sl_job_checkpoints *out)
{
	*out = job->ckpt_summary;
}

void sl_job_checkpoint_summary_from(struct sl_job *job, uint64_t mono_ns)
{
	/* relaxed: read once at the end of the run, after the threads that
	 * may set it were joined */
	__atomic_store_n(&job->ckpt_summary_from_ns, mono_ns, __ATOMIC_RELAXED);
}

static void summarize(struct sl_job *job)
{
	const uint64_t from = __atomic_load_n(&job->ckpt_summary_from_ns,
					      __ATOMIC_RELAXED);
	struct sl_job_checkpoints *s = &job->ckpt_summary;
	const struct sl_coord_ckpt *h[SL_COORD_HISTORY];
	struct sl_coord_counts k;
	unsigned n;

	memset(s, 0, sizeof(*s));
	if (job->coord == NULL)
		return;
	sl_coord_counts(job->coord, &k);
	s->triggered = k.triggered;
	s->completed = k.completed;
	s->failed = k.failed;
	s->latest_completed = sl_coord_latest_completed(job->coord);
	n = sl_coord_history(job->coord, h, SL_COORD_HISTORY);
	s->min_duration_ns = UINT64_MAX;
	s->min_inflight_bytes = UINT64_MAX;
	s->min_state_written_bytes = UINT64_MAX;
	for (unsigned i = 0; i < n; i++) {
		uint64_t state = 0, written = 0, inflight = 0, delta = 0, full = 0;
		uint64_t d = h[i]->end_mono_ns - h[i]->trigger_mono_ns;
		if (h[i]->status != SL_CKPT_COMPLETED || h[i]->trigger_mono_ns < from)
			continue;
		s->min_duration_ns = RTE_MIN(s->min_duration_ns, d);
		s->max_duration_ns = RTE_MAX(s->max_duration_ns, d);
		for (uint32_t t = 0; t < job->n_tasks; t++) {
			const struct sl_ckpt_task_ack *a = &h[i]->acks[t];
			if (!h[i]->have_ack[t])
				continue;
			s->max_sync_ns = RTE_MAX(s->max_sync_ns, a->sync_ns);
			s->max_async_ns = RTE_MAX(s->max_async_ns, a->async_ns);
			state += a->state_memory_bytes;
			written += a->state_bytes + a->inflight_bytes;
			inflight += a->inflight_bytes;
			delta += a->state_bytes;
			full += a->full_state_bytes;
		}
		s->min_state_written_bytes = RTE_MIN(s->min_state_written_bytes, delta);
		s->max_full_state_bytes = RTE_MAX(s->max_full_state_bytes, full);
		s->min_inflight_bytes = RTE_MIN(s->min_inflight_bytes, inflight);
		s->max_state_bytes = RTE_MAX(s->max_state_bytes, state);
		s->max_written_bytes = RTE_MAX(s->max_written_bytes, written);
	}
	/* most in progress at once: at each trigger, the ones triggered
	 * before it that had not ended yet (completed or failed) */
	for (unsigned i = 0; i < n; i++) {
		unsigned at_once = 0;

		if (h[i]->trigger_mono_ns < from)
			continue;
		for (unsigned j = 0; j < n; j++)
			if (h[j]->trigger_mono_ns <= h[i]->trigger_mono_ns &&
			    (h[j]->end_mono_ns == 0 ||
			     h[j]->end_mono_ns > h[i]->trigger_mono_ns))
				at_once++;
		s->max_in_progress = RTE_MAX(s->max_in_progress, at_once);
	}
	if (s->min_duration_ns == UINT64_MAX)
		s->min_duration_ns = 0;
	if (s->min_inflight_bytes == UINT64_MAX)
		s->min_inflight_bytes = 0;
	if (s->min_state_written_bytes == UINT64_MAX)
		s->min_state_written_bytes = 0;
	snprintf(s->last_failure, sizeof(s->last_failure), "%s",
		 sl_coord_last_failure(job->coord));
}

void __sl_ckpt_control_stop(struct sl_job *job)
{
	summarize(job);
	if (job->coord == NULL && job->n_io == 0)
		return;
	/* the writers first: they finish what is in flight (a failed job may
	 * leave checkpoints mid-write) and deliver the completions while
	 * the subtasks' files and completion rings still exist */
	io_writers_free(job);
	for (uint32_t i = 0; i < job->n_tasks; i++)
		__sl_ckpt_task_fini(&job->tasks[i]);
	/* checkpoints the run left unfinished (it failed or was cancelled):
	 * their directories never get a _metadata; remove them, so restarts
	 * do not pile them up (nothing writes to them any more) */
	if (job->coord != NULL) {
		const struct sl_coord_ckpt *h[SL_COORD_HISTORY];
		unsigned n = sl_coord_history(job->coord, h, SL_COORD_HISTORY);

		for (unsigned k = 0; k < n; k++)
			if (h[k]->status == SL_CKPT_PENDING) {
				sl_snap_chk_dispose(job->cfg.checkpoint.dir, h[k]->id);
				/* the coordinator releases handles when a
				 * checkpoint ends; these never will */
				co_release(job, h[k]);
			}
	}
	/* acks nobody read: the job stopped mid-checkpoint */
	if (job->acks != NULL) {
		struct sl_ckpt_task_ack a;
		while (rte_ring_sc_dequeue_elem(job->acks, &a, sizeof(a)) == 0)
			__sl_ckpt_handles_free(a.handles);
	}
	sl_coord_free(job->coord);
	__sl_ckpt_incr_fini(job);
	rte_ring_free(job->acks);
	free(job->done_seen);
	job->done_seen = NULL;
	job->coord = NULL;
	job->acks = NULL;
}
