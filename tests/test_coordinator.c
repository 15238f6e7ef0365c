/* SPDX-License-Identifier: BSD-3-Clause */
/* The checkpoint coordinator's bookkeeping, driven by a fake clock. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "sluice/checkpoint.h"

#define MS 1000000ULL

struct fake {
	uint64_t triggered[64];
	unsigned n_triggered;
	uint64_t finalized[64];
	uint64_t finalized_duration[64]; /* end - trigger seen by finalize */
	unsigned n_finalized;
	uint64_t notified_ok[64], notified_abort[64];
	unsigned n_ok, n_abort;
	uint64_t discarded[64];
	bool discarded_completed[64];
	unsigned n_discarded;
	int finalize_rc;
};

static int f_trigger(void *ctx, uint64_t id)
{
	struct fake *f = ctx;
	f->triggered[f->n_triggered++] = id;
	return 0;
}

static int f_finalize(void *ctx, const struct sl_coord_ckpt *ck, char *err, size_t len)
{
	struct fake *f = ctx;
	if (f->finalize_rc < 0) {
		snprintf(err, len, "disk full");
		return f->finalize_rc;
	}
	f->finalized_duration[f->n_finalized] = ck->end_mono_ns - ck->trigger_mono_ns;
	f->finalized[f->n_finalized++] = ck->id;
	return 0;
}

static void f_notify(void *ctx, uint64_t id, bool completed)
{
	struct fake *f = ctx;
	if (completed)
		f->notified_ok[f->n_ok++] = id;
	else
		f->notified_abort[f->n_abort++] = id;
}

static void f_discard(void *ctx, uint64_t id, bool completed)
{
	struct fake *f = ctx;
	f->discarded_completed[f->n_discarded] = completed;
	f->discarded[f->n_discarded++] = id;
}

static const struct sl_coord_ops ops = { f_trigger, f_finalize, f_notify, f_discard };

static struct sl_checkpoint_config cfg(uint64_t interval_ms)
{
	struct sl_checkpoint_config c;
	sl_checkpoint_config_defaults(&c);
	c.interval_ms = interval_ms;
	strcpy(c.dir, "/tmp/x");
	return c;
}

static int ack_all(struct sl_coord *c, uint64_t id, uint32_t n, uint64_t now)
{
	int rc = 0;
	for (uint32_t t = 0; t < n && rc == 0; t++) {
		struct sl_ckpt_task_ack a = { .task = t };
		rc = sl_coord_ack(c, id, &a, now);
	}
	return rc;
}

Test(coordinator, periodic_trigger_and_completion)
{
	struct fake f = { 0 };
	struct sl_checkpoint_config c = cfg(100);
	c.retained = 2;
	struct sl_coord *co = sl_coord_create(&c, 3, 1, &ops, &f);
	sl_coord_tick(co, 0); /* the clock starts */

	cr_assert_not_null(co);
	cr_assert_eq(sl_coord_tick(co, 1 * MS), 0);
	cr_assert_eq(f.n_triggered, 0, "first trigger after one interval");
	cr_assert_eq(sl_coord_tick(co, 101 * MS), 0);
	cr_assert_eq(f.n_triggered, 1);
	cr_assert_eq(f.triggered[0], 1);
	cr_assert_eq(sl_coord_tick(co, 250 * MS), 0);
	cr_assert_eq(f.n_triggered, 1, "max-concurrent 1: no trigger while one is pending");

	struct sl_ckpt_task_ack a = { .task = 0 };
	cr_assert_eq(sl_coord_ack(co, 1, &a, 260 * MS), 0);
	cr_assert_eq(sl_coord_ack(co, 1, &a, 260 * MS), 1, "duplicate ack ignored");
	cr_assert_eq(f.n_finalized, 0);
	a.task = 1;
	sl_coord_ack(co, 1, &a, 261 * MS);
	a.task = 2;
	cr_assert_eq(sl_coord_ack(co, 1, &a, 262 * MS), 0);
	cr_assert_eq(f.n_finalized, 1, "complete when every subtask acked");
	cr_assert_eq(f.finalized_duration[0], 161 * MS,
		     "finalize sees the duration: trigger to the last ack");
	cr_assert_eq(f.n_ok, 1);
	cr_assert_eq(sl_coord_latest_completed(co), 1);

	/* two more: retention keeps the newest two */
	for (uint64_t id = 2; id <= 3; id++) {
		uint64_t t = (200 + 100 * id) * MS;
		cr_assert_eq(sl_coord_tick(co, t), 0);
		cr_assert_eq(f.triggered[f.n_triggered - 1], id);
		cr_assert_eq(ack_all(co, id, 3, t + MS), 0);
	}
	cr_assert_eq(f.n_discarded, 1);
	cr_assert_eq(f.discarded[0], 1, "oldest completed checkpoint dropped by retention");
	cr_assert(f.discarded_completed[0]);

	const struct sl_coord_ckpt *h[8];
	unsigned n = sl_coord_history(co, h, 8);
	cr_assert_eq(n, 3);
	cr_assert_eq(h[0]->id, 3, "history newest first");
	cr_assert_eq(h[0]->status, SL_CKPT_COMPLETED);
	sl_coord_free(co);
}

Test(coordinator, declines_and_tolerable_failures)
{
	struct fake f = { 0 };
	struct sl_checkpoint_config c = cfg(10);
	c.tolerable_failures = 1;
	struct sl_coord *co = sl_coord_create(&c, 2, 1, &ops, &f);
	sl_coord_tick(co, 0); /* the clock starts */
	struct sl_ckpt_task_ack no = { .task = 1, .status = -ENOSPC };
	strcpy(no.reason, "No space left on device writing chk-1/state");

	sl_coord_tick(co, 10 * MS);
	cr_assert_eq(sl_coord_ack(co, 1, &no, 11 * MS), 0, "one failure is tolerated");
	cr_assert_eq(f.n_abort, 1);
	cr_assert_eq(f.notified_abort[0], 1);
	cr_assert_eq(f.n_discarded, 1, "files of the failed checkpoint are removed");
	cr_assert_not(f.discarded_completed[0]);

	const struct sl_coord_ckpt *h[1];
	sl_coord_history(co, h, 1);
	cr_assert(strstr(h[0]->reason, "declined by subtask 1"), "%s", h[0]->reason);
	cr_assert(strstr(h[0]->reason, "No space left"), "%s", h[0]->reason);

	/* a completion resets the count */
	sl_coord_tick(co, 30 * MS);
	cr_assert_eq(ack_all(co, 2, 2, 31 * MS), 0);
	struct sl_coord_counts k;
	sl_coord_counts(co, &k);
	cr_assert_eq(k.consecutive_failures, 0);
	cr_assert_eq(k.failed, 1);
	cr_assert_eq(k.completed, 1);

	sl_coord_tick(co, 50 * MS);
	no.task = 0;
	cr_assert_eq(sl_coord_ack(co, 3, &no, 51 * MS), 0);
	sl_coord_tick(co, 70 * MS);
	cr_assert_eq(sl_coord_ack(co, 4, &no, 71 * MS), -ECANCELED,
		     "second consecutive failure exceeds tolerable-failed-checkpoints 1");
	cr_assert(strstr(sl_coord_error(co), "tolerable-failed-checkpoints"), "%s",
		  sl_coord_error(co));
	sl_coord_free(co);
}

Test(coordinator, expiry_and_min_pause)
{
	struct fake f = { 0 };
	struct sl_checkpoint_config c = cfg(100);
	c.timeout_ms = 50;
	c.min_pause_ms = 300;
	c.tolerable_failures = 10;
	struct sl_coord *co = sl_coord_create(&c, 1, 7, &ops, &f);
	sl_coord_tick(co, 0); /* the clock starts */

	sl_coord_tick(co, 100 * MS);
	cr_assert_eq(f.triggered[0], 7, "ids start at first_id (restored + 1)");
	sl_coord_tick(co, 149 * MS);
	cr_assert_eq(f.n_abort, 0);
	sl_coord_tick(co, 150 * MS);
	cr_assert_eq(f.n_abort, 1, "expired at the timeout");
	struct sl_ckpt_task_ack a = { .task = 0 };
	cr_assert_eq(sl_coord_ack(co, 7, &a, 151 * MS), 1, "late ack of an expired checkpoint is ignored");
	sl_coord_tick(co, 300 * MS);
	cr_assert_eq(f.n_triggered, 1, "min-pause: not before 150 + 300 ms");
	sl_coord_tick(co, 450 * MS);
	cr_assert_eq(f.n_triggered, 2);
	sl_coord_free(co);
}

Test(coordinator, completion_subsumes_older_pending)
{
	struct fake f = { 0 };
	struct sl_checkpoint_config c = cfg(10);
	c.max_concurrent = 2;
	struct sl_coord *co = sl_coord_create(&c, 2, 1, &ops, &f);
	sl_coord_tick(co, 0); /* the clock starts */

	sl_coord_tick(co, 10 * MS);
	sl_coord_tick(co, 20 * MS);
	cr_assert_eq(f.n_triggered, 2, "two may be pending");
	sl_coord_tick(co, 30 * MS);
	cr_assert_eq(f.n_triggered, 2, "not three");
	cr_assert_eq(ack_all(co, 2, 2, 31 * MS), 0);
	cr_assert_eq(f.n_abort, 1);
	cr_assert_eq(f.notified_abort[0], 1, "checkpoint 1 subsumed by 2");
	struct sl_coord_counts k;
	sl_coord_counts(co, &k);
	cr_assert_eq(k.failed, 0, "subsumption is not a failure");
	cr_assert_eq(k.in_progress, 0);
	sl_coord_free(co);
}

Test(coordinator, finalize_failure_fails_the_checkpoint)
{
	struct fake f = { .finalize_rc = -ENOSPC };
	struct sl_checkpoint_config c = cfg(10);
	struct sl_coord *co = sl_coord_create(&c, 1, 1, &ops, &f);
	sl_coord_tick(co, 0); /* the clock starts */

	sl_coord_tick(co, 10 * MS);
	cr_assert_eq(ack_all(co, 1, 1, 11 * MS), -ECANCELED, "tolerable 0");
	cr_assert_eq(sl_coord_latest_completed(co), 0, "nothing completed");
	cr_assert_eq(f.n_ok, 0);
	cr_assert(strstr(sl_coord_error(co), "disk full"), "%s", sl_coord_error(co));
	sl_coord_free(co);
}

Test(coordinator, config_errors_name_the_key)
{
	struct sl_checkpoint_config c = cfg(1000);
	char err[256];

	c.dir[0] = '\0';
	cr_assert_eq(sl_checkpoint_config_check(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "state.checkpoints.dir"), "%s", err);
	c = cfg(1000);
	c.mode = SL_CKPT_ALIGNED_TIMEOUT;
	c.aligned_timeout_ms = 700000;
	cr_assert_eq(sl_checkpoint_config_check(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "aligned-checkpoint-timeout"), "%s", err);
	c = cfg(1000);
	c.max_concurrent = 0;
	cr_assert_eq(sl_checkpoint_config_check(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "max-concurrent-checkpoints"), "%s", err);
	c = cfg(0);
	c.dir[0] = '\0';
	cr_assert_eq(sl_checkpoint_config_check(&c, err, sizeof(err)), 0, "off needs no dir");
}

/* The barrier tracker runs unaligned checkpoints one at a time. */
Test(coordinator, unaligned_refuses_concurrent_checkpoints)
{
	static const enum sl_ckpt_mode unaligned[] = { SL_CKPT_UNALIGNED,
						       SL_CKPT_ALIGNED_TIMEOUT };
	static const enum sl_ckpt_mode aligned[] = { SL_CKPT_ALIGNED,
						     SL_CKPT_AT_LEAST_ONCE };
	struct fake f = { 0 };
	char err[256];

	for (unsigned i = 0; i < 2; i++) {
		struct sl_checkpoint_config c = cfg(1000);
		c.mode = unaligned[i];
		c.aligned_timeout_ms = 100;
		c.max_concurrent = 2;
		cr_assert_eq(sl_checkpoint_config_check(&c, err, sizeof(err)), -EINVAL,
			     "%s with 2 concurrent checkpoints", sl_ckpt_mode_name(c.mode));
		cr_assert(strstr(err, "execution.checkpointing.max-concurrent-checkpoints: 2"),
			  "%s", err);
		cr_assert(strstr(err, "execution.checkpointing.unaligned.enabled"), "%s", err);
		cr_assert(strstr(err, "set max-concurrent-checkpoints to 1"), "%s", err);
		errno = 0;
		cr_assert_null(sl_coord_create(&c, 2, 1, &ops, &f));
		cr_assert_eq(errno, EINVAL);
		c.max_concurrent = 1;
		cr_assert_eq(sl_checkpoint_config_check(&c, err, sizeof(err)), 0, "%s", err);
	}
	for (unsigned i = 0; i < 2; i++) {
		struct sl_checkpoint_config c = cfg(1000);
		c.mode = aligned[i];
		c.max_concurrent = 2;
		cr_assert_eq(sl_checkpoint_config_check(&c, err, sizeof(err)), 0,
			     "%s may run 2 at once: %s", sl_ckpt_mode_name(c.mode), err);
	}
}
