/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoint coordinator: when to trigger, when a checkpoint is complete,
 * failed or expired, how many failures are tolerable, what to keep.
 * Semantics follow Flink's CheckpointCoordinator:
 *  - periodic triggers every interval, at most max_concurrent pending, and
 *    none sooner than min_pause after the previous one ended;
 *  - a checkpoint completes when every subtask acknowledged and its
 *    metadata was finalized (written last); completion subsumes older
 *    pending checkpoints (aborted, not counted as failures);
 *  - a decline (e.g. ENOSPC) or an expiry fails it; consecutive failures
 *    beyond tolerable_failures fail the job; a completion resets the count;
 *  - the newest `retained` completed checkpoints are kept.
 * Pure bookkeeping driven by the caller's clock: no threads, no I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/checkpoint.h"

struct sl_coord {
	struct sl_checkpoint_config cfg;
	uint32_t n_tasks;
	const struct sl_coord_ops *ops;
	void *ctx;

	uint64_t next_id;
	uint64_t next_trigger_ns; /* periodic trigger due */
	uint64_t last_end_ns;	  /* end of the last finished checkpoint */
	bool ever_ended;
	unsigned pending;

	/* slot id % SL_COORD_HISTORY; pending ones are never overwritten
	 * because max_concurrent <= SL_COORD_HISTORY / 2 */
	struct sl_coord_ckpt hist[SL_COORD_HISTORY];

	uint64_t *retained; /* completed ids, oldest first */
	uint32_t n_retained;

	struct sl_coord_counts counts;
	char last_failure[224]; /* newest failure, whatever the history keeps */
	char err[320];
};

_Static_assert(SL_CKPT_MAX_CONCURRENT <= SL_COORD_HISTORY / 2,
	       "pending checkpoints must never be overwritten in the history");

static const char *const mode_names[] = {
	[SL_CKPT_ALIGNED] = "aligned",
	[SL_CKPT_UNALIGNED] = "unaligned",
	[SL_CKPT_ALIGNED_TIMEOUT] = "aligned-with-timeout",
	[SL_CKPT_AT_LEAST_ONCE] = "at-least-once",
};

const char *sl_ckpt_mode_name(enum sl_ckpt_mode m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0])
		       ? mode_names[m]
		       : "?";
}

void sl_checkpoint_config_defaults(struct sl_checkpoint_config *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = 600000;
	c->max_concurrent = 1;
	c->retained = 1;
	c->mode = SL_CKPT_ALIGNED;
	c->full_every = 10;
}

int sl_checkpoint_config_check(const struct sl_checkpoint_config *c, char *err,
			       size_t errlen)
{
#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)
	if (c->interval_ms == 0)
		return 0;
	if (c->dir[0] == '\0')
		return BAD("state.checkpoints.dir: not set, but execution.checkpointing.interval is; give a directory for checkpoints");
	if (c->timeout_ms == 0)
		return BAD("execution.checkpointing.timeout: must be above 0");
	if (c->max_concurrent == 0 || c->max_concurrent > SL_CKPT_MAX_CONCURRENT)
		return BAD("execution.checkpointing.max-concurrent-checkpoints: %u is out of range; use 1..%u",
			   c->max_concurrent, SL_CKPT_MAX_CONCURRENT);
	if (c->retained == 0)
		return BAD("state.checkpoints.num-retained: must be at least 1");
	/* the barrier tracker runs unaligned checkpoints one at a time (a
	 * newer barrier ends an older one), so, as Flink does, refuse them
	 * concurrently */
	if (c->max_concurrent > 1 &&
	    (c->mode == SL_CKPT_UNALIGNED || c->mode == SL_CKPT_ALIGNED_TIMEOUT))
		return BAD("execution.checkpointing.max-concurrent-checkpoints: %u, but unaligned checkpoints (execution.checkpointing.unaligned.enabled%s) run one at a time; set max-concurrent-checkpoints to 1 or disable unaligned checkpoints",
			   c->max_concurrent,
			   c->mode == SL_CKPT_ALIGNED_TIMEOUT
				   ? ", also with aligned-checkpoint-timeout" : "");
	if (c->mode == SL_CKPT_ALIGNED_TIMEOUT && c->aligned_timeout_ms == 0)
		return BAD("execution.checkpointing.aligned-checkpoint-timeout: must be above 0 to switch aligned checkpoints to unaligned");
	if (c->mode == SL_CKPT_ALIGNED_TIMEOUT && c->aligned_timeout_ms >= c->timeout_ms)
		return BAD("execution.checkpointing.aligned-checkpoint-timeout: %llu ms is not below execution.checkpointing.timeout (%llu ms), so a checkpoint would expire before it could switch to unaligned; lower it",
			   (unsigned long long)c->aligned_timeout_ms,
			   (unsigned long long)c->timeout_ms);
	if (c->incremental && (c->full_every == 0 || c->full_every > SL_CKPT_FULL_EVERY_MAX))
		return BAD("sluice.checkpointing.full-every: %u is out of range; use 1..%u (1: every checkpoint is full)",
			   c->full_every, SL_CKPT_FULL_EVERY_MAX);
	return 0;
#undef BAD
}

struct sl_coord *sl_coord_create(const struct sl_checkpoint_config *cfg,
				 uint32_t n_tasks, uint64_t first_id,
				 const struct sl_coord_ops *ops, void *ctx)
{
	struct sl_coord *c;
	char err[256];

	if (n_tasks == 0 || first_id == 0 || ops == NULL ||
	    sl_checkpoint_config_check(cfg, err, sizeof(err)) < 0) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cfg = *cfg;
	c->n_tasks = n_tasks;
	c->ops = ops;
	c->ctx = ctx;
	c->next_id = first_id;
	c->retained = calloc(cfg->retained + 1, sizeof(*c->retained));
	for (unsigned i = 0; i < SL_COORD_HISTORY && c->retained; i++) {
		c->hist[i].acks = calloc(n_tasks, sizeof(*c->hist[i].acks));
		c->hist[i].have_ack = calloc(n_tasks, sizeof(bool));
		if (c->hist[i].acks == NULL || c->hist[i].have_ack == NULL) {
			sl_coord_free(c);
			errno = ENOMEM;
			return NULL;
		}
	}
	if (c->retained == NULL) {
		sl_coord_free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

void sl_coord_free(struct sl_coord *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < SL_COORD_HISTORY; i++) {
		free(c->hist[i].acks);
		free(c->hist[i].have_ack);
	}
	free(c->retained);
	free(c);
}

static struct sl_coord_ckpt *slot(struct sl_coord *c, uint64_t id)
{
	return &c->hist[id % SL_COORD_HISTORY];
}

static struct sl_coord_ckpt *find_pending(struct sl_coord *c, uint64_t id)
{
	struct sl_coord_ckpt *ck = slot(c, id);

	return ck->id == id && ck->status == SL_CKPT_PENDING ? ck : NULL;
}

static void ended(struct sl_coord *c, struct sl_coord_ckpt *ck, uint64_t now)
{
	ck->end_mono_ns = now;
	c->pending--;
	c->counts.in_progress--;
	c->last_end_ns = now;
	c->ever_ended = true;
}

/* Fail a pending checkpoint; `counts` says whether it is a failure in
 * Flink's sense (a subsumed one is not). */
static int fail(struct sl_coord *c, struct sl_coord_ckpt *ck, uint64_t now,
		bool counts, const char *reason)
{
	snprintf(ck->reason, sizeof(ck->reason), "%s", reason);
	ck->status = SL_CKPT_FAILED;
	ended(c, ck, now);
	c->ops->notify(c->ctx, ck->id, false);
	c->ops->discard(c->ctx, ck->id, false);
	if (c->ops->release != NULL)
		c->ops->release(c->ctx, ck);
	if (!counts)
		return 0;
	snprintf(c->last_failure, sizeof(c->last_failure), "checkpoint %llu: %s",
		 (unsigned long long)ck->id, reason);
	c->counts.failed++;
	if (++c->counts.consecutive_failures > c->cfg.tolerable_failures) {
		snprintf(c->err, sizeof(c->err),
			 "checkpoint %llu failed (%s): %u consecutive checkpoint failure%s exceed execution.checkpointing.tolerable-failed-checkpoints (%u)",
			 (unsigned long long)ck->id, reason,
			 c->counts.consecutive_failures,
			 c->counts.consecutive_failures == 1 ? "" : "s",
			 c->cfg.tolerable_failures);
		return -ECANCELED;
	}
	return 0;
}

static void retain(struct sl_coord *c, uint64_t id)
{
	c->retained[c->n_retained++] = id;
	while (c->n_retained > c->cfg.retained) {
		c->ops->discard(c->ctx, c->retained[0], true);
		memmove(c->retained, c->retained + 1,
			--c->n_retained * sizeof(*c->retained));
	}
}

static int complete(struct sl_coord *c, struct sl_coord_ckpt *ck, uint64_t now)
{
	char err[160] = "";
	int rc;

	/* the end is the last acknowledgement: finalize records the
	 * duration in the metadata, and the statistics show the same */
	ck->end_mono_ns = now;
	rc = c->ops->finalize(c->ctx, ck, err, sizeof(err));

	if (rc < 0) {
		char reason[192];
		snprintf(reason, sizeof(reason), "finalizing failed: %s",
			 err[0] ? err : strerror(-rc));
		return fail(c, ck, now, true, reason);
	}
	ck->status = SL_CKPT_COMPLETED;
	ended(c, ck, now);
	c->counts.completed++;
	c->counts.consecutive_failures = 0;
	/* older pending checkpoints are subsumed by this one */
	for (unsigned i = 0; i < SL_COORD_HISTORY; i++) {
		struct sl_coord_ckpt *o = &c->hist[i];
		if (o->status == SL_CKPT_PENDING && o->id < ck->id && o->id != 0) {
			char reason[64];
			snprintf(reason, sizeof(reason), "subsumed by checkpoint %llu",
				 (unsigned long long)ck->id);
			fail(c, o, now, false, reason);
		}
	}
	c->ops->notify(c->ctx, ck->id, true);
	if (c->ops->release != NULL)
		c->ops->release(c->ctx, ck);
	retain(c, ck->id);
	return 0;
}

static int64_t trigger(struct sl_coord *c, uint64_t now)
{
	uint64_t id = c->next_id;
	struct sl_coord_ckpt *ck = slot(c, id);
	struct timespec ts;
	int rc;

	if (ck->status == SL_CKPT_PENDING && ck->id != 0)
		return -EBUSY; /* cannot happen with max_concurrent bounded */
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(ck->acks, 0, c->n_tasks * sizeof(*ck->acks));
	memset(ck->have_ack, 0, c->n_tasks * sizeof(bool));
	ck->id = id;
	ck->status = SL_CKPT_PENDING;
	ck->trigger_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	ck->trigger_mono_ns = now;
	ck->end_mono_ns = 0;
	ck->acked = 0;
	ck->reason[0] = '\0';
	c->next_id++;
	c->pending++;
	c->counts.triggered++;
	c->counts.in_progress++;
	rc = c->ops->trigger(c->ctx, id);
	if (rc < 0) {
		char reason[96];
		snprintf(reason, sizeof(reason), "could not inject barriers: %s",
			 strerror(-rc));
		if (fail(c, ck, now, true, reason) < 0)
			return -ECANCELED;
		return rc;
	}
	return (int64_t)id;
}

int64_t sl_coord_trigger_now(struct sl_coord *c, uint64_t now_ns)
{
	if (c->pending >= c->cfg.max_concurrent)
		return -EBUSY;
	return trigger(c, now_ns);
}

int sl_coord_tick(struct sl_coord *c, uint64_t now)
{
	const uint64_t ms = 1000000;

	for (unsigned i = 0; i < SL_COORD_HISTORY; i++) {
		struct sl_coord_ckpt *ck = &c->hist[i];
		if (ck->status != SL_CKPT_PENDING || ck->id == 0 ||
		    now - ck->trigger_mono_ns < c->cfg.timeout_ms * ms)
			continue;
		char reason[96];
		snprintf(reason, sizeof(reason),
			 "expired before completing (execution.checkpointing.timeout %llu ms)",
			 (unsigned long long)c->cfg.timeout_ms);
		if (fail(c, ck, now, true, reason) < 0)
			return -ECANCELED;
	}
	if (c->cfg.interval_ms == 0)
		return 0;
	if (c->next_trigger_ns == 0)
		c->next_trigger_ns = now + c->cfg.interval_ms * ms;
	if (now < c->next_trigger_ns || c->pending >= c->cfg.max_concurrent)
		return 0;
	if (c->cfg.min_pause_ms &&
	    (c->pending > 0 ||
	     (c->ever_ended && now - c->last_end_ns < c->cfg.min_pause_ms * ms)))
		return 0;
	c->next_trigger_ns = now + c->cfg.interval_ms * ms;
	return trigger(c, now) == -ECANCELED ? -ECANCELED : 0;
}

int sl_coord_ack(struct sl_coord *c, uint64_t id,
		 const struct sl_ckpt_task_ack *ack, uint64_t now)
{
	struct sl_coord_ckpt *ck = find_pending(c, id);

	if (ck == NULL || ack->task >= c->n_tasks || ck->have_ack[ack->task])
		return 1;
	ck->acks[ack->task] = *ack;
	ck->have_ack[ack->task] = true;
	if (ack->status < 0) {
		char reason[192];
		snprintf(reason, sizeof(reason), "declined by subtask %u: %s",
			 ack->task, ack->reason[0] ? ack->reason : strerror(-ack->status));
		return fail(c, ck, now, true, reason);
	}
	if (++ck->acked == c->n_tasks)
		return complete(c, ck, now);
	return 0;
}

uint64_t sl_coord_latest_completed(const struct sl_coord *c)
{
	return c->n_retained ? c->retained[c->n_retained - 1] : 0;
}

void sl_coord_counts(const struct sl_coord *c, struct sl_coord_counts *out)
{
	*out = c->counts;
}

unsigned sl_coord_history(const struct sl_coord *c,
			  const struct sl_coord_ckpt **out, unsigned max)
{
	unsigned n = 0;

	/* newest first: walk ids downwards from the last one triggered */
	for (uint64_t id = c->next_id - 1; id > 0 && n < max &&
					   id + SL_COORD_HISTORY >= c->next_id;
	     id--) {
		const struct sl_coord_ckpt *ck = &c->hist[id % SL_COORD_HISTORY];
		if (ck->id == id)
			out[n++] = ck;
	}
	return n;
}

const char *sl_coord_last_failure(const struct sl_coord *c)
{
	return c->last_failure;
}

const char *sl_coord_error(const struct sl_coord *c)
{
	return c->err;
}
