/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where checkpoint io writers run (layout.io-writers): on an lcore of
 * their own, inline in a worker lcore's loop, several at once.  Every
 * layout must complete checkpoints whose files validate, since only the
 * writers write them.  The EAL gets more lcores than the machine has
 * cores through the --lcores mapping.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ckpt_cut.h"
#include "eal_fixture.h"
#include "gen_events.h"
#include "sluice/job.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define KEYS 1000

/* 8 lcores on the 2 cores: main 0, workers 1..7 */
#define LCORES "(0-3)@0,(4-7)@1"

struct writer {
	enum sl_io_poll poll;
	unsigned lcore;
	unsigned serves[4];
	unsigned n_serves;
	unsigned request_ring_size; /* 0: default */
};

struct layout {
	struct writer w[3];
	unsigned n_w;
	int place_count[2]; /* lcore of count/0, count/1; 0: round-robin */
};

static struct sl_job *make_job(const char *root, const struct layout *l,
			       struct sl_generator_conf *g,
			       const struct sl_job_config *base)
{
	struct sl_job_config cfg;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	struct sl_count_sink_conf sink = { 0 };

	if (base != NULL) {
		cfg = *base;
	} else {
		sl_job_config_defaults(&cfg);
		cfg.checkpoint.interval_ms = 30;
	}
	cfg.checkpoint.retained = 1000;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);

	struct sl_job *job = sl_job_create("ckio", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, g, 2);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, 2);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert(gi >= 0 && ci >= 0 && si >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
	for (unsigned s = 0; s < 2; s++)
		if (l != NULL && l->place_count[s] > 0)
			cr_assert_eq(sl_job_place(job, ci, s, (unsigned)l->place_count[s]), 0);
	for (unsigned i = 0; l != NULL && i < l->n_w; i++) {
		const struct writer *w = &l->w[i];
		struct sl_job_io_writer jw = {
			.poll = w->poll, .lcore = w->lcore,
			.serves = w->n_serves ? w->serves : NULL,
			.n_serves = w->n_serves,
			.request_ring_size = w->request_ring_size,
		};
		cr_assert_eq(sl_job_add_io_writer(job, &jw), (int)i, "%s",
			     sl_job_error(job));
	}
	return job;
}

/* Every complete checkpoint in root validates; returns how many. */
static size_t check_complete_op(const char *root, const char *uid)
{
	uint64_t *ids = NULL;
	size_t nids = 0;
	struct sl_snap_err err;

	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	for (size_t i = 0; i < nids; i++) {
		char dir[4300];
		struct sl_snap_metadata *m = ckpt_cut_open(root, ids[i], dir, sizeof(dir));
		ckpt_cut_operator(m, uid);
		sl_snap_meta_free(m);
	}
	free(ids);
	return nids;
}

static size_t check_complete(const char *root)
{
	return check_complete_op(root, "count");
}

static void run_layout(const struct layout *l)
{
	struct sl_generator_conf g;
	struct sl_job_checkpoints sum;
	char root[] = "/tmp/sl-ckio-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	gen_events_conf(&g, 5, 1500000, 1.5e6, KEYS);
	struct sl_job *job = make_job(root, l, &g, NULL);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, &sum);
	fprintf(stderr, "%" PRIu64 " triggered, %" PRIu64 " completed, %" PRIu64
		" failed %s\n", sum.triggered, sum.completed, sum.failed,
		sum.last_failure);
	cr_assert_geq(sum.completed, 2, "checkpoints completed (%s)", sum.last_failure);
	cr_assert_eq(sum.failed, 0, "%s", sum.last_failure);
	cr_assert_geq(check_complete(root), 2);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

Test(checkpoint_io, writer_on_its_own_lcore, .timeout = 120)
{
	const struct layout l = { .n_w = 1, .w = { { SL_IO_POLL_OWN, 7, { 0 }, 0 } } };

	sl_test_eal(LCORES, NULL);
	run_layout(&l);
	sl_test_eal_fini();
}

Test(checkpoint_io, writer_inline_on_a_worker, .timeout = 120)
{
	/* lcore 2 hosts a counting subtask and polls the writer for all */
	const struct layout l = { .n_w = 1, .w = { { SL_IO_POLL_INLINE, 2, { 0 }, 0 } },
				  .place_count = { 2, 3 } };

	sl_test_eal(LCORES, NULL);
	run_layout(&l);
	sl_test_eal_fini();
}

Test(checkpoint_io, writer_inline_on_an_lcore_without_subtasks, .timeout = 120)
{
	const struct layout l = { .n_w = 1, .w = { { SL_IO_POLL_INLINE, 7, { 0 }, 0 } },
				  .place_count = { 2, 3 } };

	sl_test_eal(LCORES, NULL);
	run_layout(&l);
	sl_test_eal_fini();
}

/* Two writers: count/0's lcore submits to an own-lcore writer, the rest
 * to one polled inline by count/1's lcore. */
Test(checkpoint_io, two_writers, .timeout = 120)
{
	const struct layout l = {
		.n_w = 2,
		.w = { { SL_IO_POLL_OWN, 6, { 2 }, 1 },
		       { SL_IO_POLL_INLINE, 3, { 0 }, 0 } },
		.place_count = { 2, 3 },
	};

	sl_test_eal(LCORES, NULL);
	run_layout(&l);
	sl_test_eal_fini();
}

/* A subtask placed on a writer's own lcore, and lcores the EAL lacks. */
Test(checkpoint_io, bad_layouts_fail_before_running, .timeout = 120)
{
	static const struct {
		struct layout l;
		const char *expect;
	} cases[] = {
		{ { .n_w = 1, .w = { { SL_IO_POLL_OWN, 2, { 0 }, 0 } }, .place_count = { 2, 3 } },
		  "layout places 'count' subtask 0 on lcore 2, which runs an io writer of its own" },
		{ { .n_w = 1, .w = { { SL_IO_POLL_OWN, 9, { 0 }, 0 } } },
		  "io writer 0 is polled by lcore 9, which the EAL does not have" },
		{ { .n_w = 1, .w = { { SL_IO_POLL_OWN, 0, { 0 }, 0 } } },
		  "io writer 0 cannot have the main lcore 0 to itself" },
		{ { .n_w = 1, .w = { { SL_IO_POLL_INLINE, 1, { 12 }, 1 } } },
		  "io writer 0 serves lcore 12, which the EAL does not have" },
	};
	struct sl_generator_conf g;

	sl_test_eal(LCORES, NULL);
	gen_events_conf(&g, 5, 1000, 0, KEYS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sl_job *job = make_job("/tmp/sl-ckio-never-written", &cases[i].l, &g, NULL);
		cr_assert_eq(sl_job_run(job), -EINVAL, "case %zu: %s", i, sl_job_error(job));
		cr_assert(strstr(sl_job_error(job), cases[i].expect), "case %zu: %s", i,
			  sl_job_error(job));
		sl_job_free(job);
	}
	sl_test_eal_fini();
}

/*
 * A writer polled inline by the lcore whose subtasks fill its 2-slot
 * request ring: requests that find it full wait in the subtask for the
 * next turn of the loop (which polls the writer) instead of spinning on
 * an lcore that is the only one able to make room.  Unaligned with a
 * slow sink, so channel state is written too.
 */
Test(checkpoint_io, tiny_request_ring_inline_on_the_submitting_lcore, .timeout = 120)
{
	const struct layout l = {
		.n_w = 1,
		.w = { { SL_IO_POLL_INLINE, 2, { 0 }, 0, .request_ring_size = 2 } },
		.place_count = { 2, 2 },
	};
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_job_checkpoints sum;
	char root[] = "/tmp/sl-ckio-XXXXXX";

	sl_test_eal(LCORES, NULL);
	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 30;
	cfg.checkpoint.mode = SL_CKPT_UNALIGNED;
	cfg.ring_size = 16;
	gen_events_conf(&g, 5, 1000000, 1e6, 100000);
	struct sl_job *job = make_job(root, &l, &g, &cfg);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, &sum);
	fprintf(stderr, "tiny request ring: %" PRIu64 " triggered, %" PRIu64
		" completed, %" PRIu64 " failed %s\n", sum.triggered, sum.completed,
		sum.failed, sum.last_failure);
	cr_assert_geq(sum.completed, 2, "%s", sum.last_failure);
	cr_assert_eq(sum.failed, 0, "%s", sum.last_failure);
	cr_assert_geq(check_complete(root), 2);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
	sl_test_eal_fini();
}

/*
 * Priority lanes of 2 events, up to 4 aligned checkpoints at once and a
 * sink that sleeps in its callback: announcements pile up in its lanes.
 * A source that finds no room declines the checkpoint with the reason
 * instead of spinning until the sink polls again; later checkpoints
 * complete.
 */
Test(checkpoint_io, full_priority_lane_declines_with_the_reason, .timeout = 120)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_job_checkpoints sum;
	/* 20 ms per batch against a 2 ms interval: ten triggers per sleep,
	 * four checkpoints in flight, two lane slots (the sink drains its
	 * lanes only between batches) */
	struct sl_count_sink_conf sink = { .delay_us_per_batch = 20000 };
	char root[] = "/tmp/sl-ckio-XXXXXX";

	sl_test_eal(LCORES, NULL);
	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 2;
	cfg.checkpoint.max_concurrent = 4;
	cfg.checkpoint.tolerable_failures = 1000000;
	cfg.checkpoint.retained = 1000;
	cfg.prio_ring_size = 2;
	cfg.ring_size = 8;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_events_conf(&g, 5, 20000, 0, KEYS);

	struct sl_job *job = sl_job_create("ckprio", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert_eq(sl_job_connect(job, gi, si, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, &sum);
	fprintf(stderr, "priority lane of 2: %" PRIu64 " triggered, %" PRIu64
		" completed, %" PRIu64 " failed, last: %s\n", sum.triggered,
		sum.completed, sum.failed, sum.last_failure);
	cr_assert_geq(sum.failed, 1, "some barrier found the lane full");
	cr_assert(strstr(sum.last_failure, "the priority lane to 'sink' subtask 0 is full"),
		  "%s", sum.last_failure);
	cr_assert_geq(sum.completed, 1, "the others complete");
	cr_assert_geq(check_complete_op(root, "sink"), 1);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
	sl_test_eal_fini();
}

/*
 * max-concurrent-checkpoints above the 4 the barrier trackers used to
 * hold: 8 aligned checkpoints queue up behind a slow sink, and every one
 * completes (a tracker evicting a live checkpoint would leave it to
 * expire; the timeout is long, so an eviction would show as a missing
 * completion at the end).
 */
Test(checkpoint_io, eight_concurrent_checkpoints_complete, .timeout = 120)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_job_checkpoints sum;
	struct sl_count_sink_conf sink = { .delay_us_per_batch = 1000 };
	char root[] = "/tmp/sl-ckio-XXXXXX";

	sl_test_eal(LCORES, NULL);
	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 2;
	cfg.checkpoint.max_concurrent = 8;
	cfg.checkpoint.retained = 1000;
	cfg.ring_size = 32;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_events_conf(&g, 5, 150000, 0, KEYS);

	struct sl_job *job = sl_job_create("ckconc", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert_eq(sl_job_connect(job, gi, si, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, &sum);
	fprintf(stderr, "8 concurrent: %" PRIu64 " triggered, %" PRIu64
		" completed, %" PRIu64 " failed, at most %u at once %s\n",
		sum.triggered, sum.completed, sum.failed, sum.max_in_progress,
		sum.last_failure);
	cr_assert_eq(sum.failed, 0, "%s", sum.last_failure);
	cr_assert_gt(sum.max_in_progress, 4,
		     "more in progress at once than the 4 tracker slots of old");
	cr_assert_geq(sum.completed, 8, "%s", sum.last_failure);
	cr_assert_geq(check_complete_op(root, "sink"), 8);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
	sl_test_eal_fini();
}
