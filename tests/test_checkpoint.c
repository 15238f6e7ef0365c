/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoints of a running job are consistent cuts: for every complete
 * checkpoint, the generator offsets it recorded account exactly for the
 * keyed state it recorded (per key, no record missing, none counted twice).
 * The expected counts are computed here from the generator's definition.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ckpt_cut.h"
#include "eal_fixture.h"
#include "sluice/io.h"
#include "sluice/job.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define KEYS 1000
#define P 2

struct rec {
	uint64_t key;
	int64_t ts;
	uint64_t value;
};

static void gen_conf(struct sl_generator_conf *g, uint64_t count, double rate)
{
	sl_generator_conf_defaults(g);
	sl_schema_add(&g->schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g->schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&g->schema, "value", SL_TYPE_U64, 0);
	g->seed = 11;
	g->count = count;
	g->rate = rate;
	g->key_cardinality = KEYS;
}

struct tally {
	uint64_t got[KEYS]; /* per key: in keyed state + in flight */
	uint64_t inflight;  /* generator records in channel state */
};

/* Keyed entries of the counting operator: key -> count. */
static void add_counts(void *arg, const char *owner, const struct sl_snap_kv *kv,
		       unsigned n)
{
	uint64_t *got = ((struct tally *)arg)->got;

	(void)owner;
	for (unsigned i = 0; i < n; i++) {
		uint64_t key, count;
		memcpy(&key, kv[i].key, 8);
		memcpy(&count, kv[i].value, 8);
		cr_assert_lt(key, KEYS);
		got[key] += count;
	}
}

/* In-flight generator records persisted as channel state count like state;
 * the counting operator's output (to the sink) is not generator records. */
static void add_inflight(void *arg, const char *owner, const char *sender,
			 const struct sl_snap_chan_batch *b)
{
	struct tally *t = arg;

	(void)owner;
	if (strcmp(sender, "gen") != 0)
		return;
	cr_assert_eq(b->record_size, sizeof(struct rec));
	for (uint32_t i = 0; i < b->record_count; i++) {
		const struct rec *r = (const struct rec *)b->records + i;
		cr_assert_lt(r->key, KEYS);
		t->got[r->key]++;
	}
	t->inflight += b->record_count;
}

/*
 * Check one complete checkpoint: the generator offsets it recorded against
 * its keyed state plus its in-flight records (channel state).  Exactly
 * equal per key for the exactly-once modes; never less for at-least-once,
 * and *over is set when some key was counted twice.  Returns the records
 * the offsets cover.
 */
static uint64_t check_cut(const char *root, uint64_t id,
			  const struct sl_generator_conf *g, bool exact,
			  uint64_t *inflight, bool *over)
{
	uint64_t expect[KEYS] = { 0 }, covered = 0;
	struct tally t = { { 0 }, 0 };
	const uint64_t *got = t.got;
	struct ckpt_cut_visitor v = { .keyed = add_counts, .batch = add_inflight,
				      .arg = &t };
	char dir[4300];
	struct sl_snap_metadata *m = ckpt_cut_open(root, id, dir, sizeof(dir));
	const struct sl_snap_operator_meta *gen = ckpt_cut_operator(m, "gen");
	const struct sl_snap_operator_meta *cnt = ckpt_cut_operator(m, "count");

	cr_assert_eq(gen->parallelism, P);
	for (uint32_t s = 0; s < P; s++) {
		uint64_t next = ckpt_cut_gen_next(gen, s, g->count);
		for (uint64_t i = s; i < next; i += P) {
			struct rec r;
			sl_generator_record(g, i, &r);
			expect[r.key]++;
			covered++;
		}
	}
	ckpt_cut_walk(dir, gen, &v);
	ckpt_cut_walk(dir, cnt, &v);
	*inflight += t.inflight;
	for (unsigned k = 0; k < KEYS; k++) {
		if (exact)
			cr_assert_eq(got[k], expect[k],
				     "checkpoint %" PRIu64 ": key %u counted %" PRIu64 " times in "
				     "state + channel state, but the recorded offsets cover %" PRIu64
				     " of its records", id, k, got[k], expect[k]);
		else
			cr_assert_geq(got[k], expect[k], "at-least-once loses nothing (key %u)", k);
		*over |= got[k] > expect[k];
	}
	sl_snap_meta_free(m);
	return covered;
}

/*
 * _metadata carries the coordinator's figures for its checkpoint: the
 * duration (trigger to the last acknowledgement) and the largest
 * alignment, sync and async parts of any subtask.  The run's summary is
 * built from the same acknowledgements, so its extremes are among them.
 */
static void check_stats(const char *root, const uint64_t *ids, size_t nids,
			const struct sl_job_checkpoints *sum)
{
	bool min_dur = false, max_dur = false, max_sync = false, max_async = false;

	for (size_t i = 0; i < nids; i++) {
		struct sl_snap_metadata *m = NULL;
		struct sl_snap_err err = { "" };
		char dir[4300];
		int n = snprintf(dir, sizeof(dir), "%s/chk-%" PRIu64, root, ids[i]);

		cr_assert(n > 0 && (size_t)n < sizeof(dir));
		cr_assert_eq(sl_snap_meta_load(dir, &m, &err), 0, "%s", err.msg);
		const struct sl_snap_stats *s = &m->stats;
		cr_assert_gt(s->duration_ns, 0, "checkpoint %" PRIu64 ": duration_ns", ids[i]);
		cr_assert_gt(s->sync_ns, 0, "checkpoint %" PRIu64 ": sync_ns", ids[i]);
		cr_assert_gt(s->async_ns, 0, "checkpoint %" PRIu64 ": async_ns", ids[i]);
		cr_assert_geq(s->duration_ns, s->alignment_ns,
			      "checkpoint %" PRIu64 ": alignment within the checkpoint", ids[i]);
		cr_assert_gt(s->keyed_bytes, 0, "checkpoint %" PRIu64 ": keyed_bytes", ids[i]);
		min_dur |= s->duration_ns == sum->min_duration_ns;
		max_dur |= s->duration_ns == sum->max_duration_ns;
		max_sync |= s->sync_ns == sum->max_sync_ns;
		max_async |= s->async_ns == sum->max_async_ns;
		sl_snap_meta_free(m);
	}
	cr_assert(min_dur && max_dur, "the shortest (%" PRIu64 " ns) and longest (%" PRIu64
		  " ns) checkpoint durations are in _metadata", sum->min_duration_ns,
		  sum->max_duration_ns);
	cr_assert(max_sync && max_async, "the longest sync (%" PRIu64 " ns) and async (%" PRIu64
		  " ns) parts are in _metadata", sum->max_sync_ns, sum->max_async_ns);
}

/*
 * gen(P) -hash-> count(P) -rebalance-> sink(1).  With sink_delay_us the
 * sink is slow: backpressure fills every ring, so unaligned checkpoints
 * carry in-flight batches.
 */
static void run_mode(enum sl_ckpt_mode mode, double rate, uint64_t n,
		     uint32_t ring_size, uint32_t sink_delay_us)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	struct sl_count_sink_conf sink = { .delay_us_per_batch = sink_delay_us };
	struct sl_job_checkpoints sum;
	char root[] = "/tmp/sl-ckpt-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 40;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.mode = mode;
	cfg.checkpoint.aligned_timeout_ms = 1;
	cfg.ring_size = ring_size;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, n, rate);
	agg.emit_updates = sink_delay_us > 0;

	struct sl_job *job = sl_job_create("ckpt", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, P);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, P);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert(gi >= 0 && ci >= 0 && si >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));

	uint64_t *ids = NULL;
	size_t nids = 0;
	struct sl_snap_err err;
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	cr_assert_geq(nids, 2, "checkpoints completed while the job ran (%zu)", nids);
	sl_job_checkpoint_summary(job, &sum);
	check_stats(root, ids, nids, &sum);
	uint64_t prev = UINT64_MAX, inflight_total = 0;
	unsigned mid = 0;
	bool over = false;
	for (size_t i = 0; i < nids; i++) {
		uint64_t inflight = 0;
		uint64_t covered = check_cut(root, ids[i], &g,
					     mode != SL_CKPT_AT_LEAST_ONCE, &inflight, &over);
		cr_log_info("%s: checkpoint %" PRIu64 " covers %" PRIu64 " records, %" PRIu64
			    " of them in flight", sl_ckpt_mode_name(mode), ids[i], covered,
			    inflight);
		inflight_total += inflight;
		cr_assert_leq(covered, prev, "newer checkpoints cover more");
		prev = covered;
		mid += covered > 0 && covered < n;
	}
	cr_assert_geq(mid, 1, "a cut taken in the middle of the stream");
	fprintf(stderr, "%s: some key counted twice: %s\n", sl_ckpt_mode_name(mode),
		over ? "yes" : "no");
	if (mode == SL_CKPT_AT_LEAST_ONCE)
		cr_assert(over, "without alignment, records read after an early barrier are "
				"in the snapshot and after the recorded offsets: counted twice");
	if (mode == SL_CKPT_UNALIGNED)
		cr_assert_gt(inflight_total, 0, "unaligned checkpoints carried channel state");
	if (mode == SL_CKPT_ALIGNED)
		cr_assert_eq(inflight_total, 0, "aligned checkpoints carry no channel state");
	free(ids);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

Test(checkpoint, aligned_cuts_are_consistent, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_ALIGNED, 3e6, 3000000, 256, 0);
	sl_test_eal_fini();
}

/* A slow sink and short rings: every ring is full, and unaligned
 * checkpoints carry what is in them. */
Test(checkpoint, unaligned_cuts_are_consistent, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_UNALIGNED, 0, 1500000, 16, 40);
	sl_test_eal_fini();
}

Test(checkpoint, aligned_with_timeout_cuts_are_consistent, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_ALIGNED_TIMEOUT, 0, 1500000, 16, 40);
	sl_test_eal_fini();
}

/* Each keyed subtask reads two generator subtasks whose barriers arrive at
 * slightly different times; in between it keeps reading the early input. */
Test(checkpoint, at_least_once_loses_nothing_but_counts_twice, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_AT_LEAST_ONCE, 3e6, 3000000, 256, 0);
	sl_test_eal_fini();
}

/*
 * A full disk or an I/O error while writing checkpoint 2's (then 3's)
 * files: that checkpoint is declined with the reason, the job goes on, the
 * next ones complete, and earlier complete checkpoints stay intact.
 */
static void run_with_fault(const struct sl_io_fault *fault, const char *expect_reason)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	struct sl_count_sink_conf sink = { 0 };
	struct sl_job_checkpoints sum;
	char root[] = "/tmp/sl-ckfault-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 40;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.tolerable_failures = 2;
	cfg.checkpoint.io_fault = fault;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, 3000000, 3e6);

	struct sl_job *job = sl_job_create("ckfault", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, P);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, P);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "the job survives: %s", sl_job_error(job));

	sl_job_checkpoint_summary(job, &sum);
	cr_log_info("%" PRIu64 " triggered, %" PRIu64 " completed, %" PRIu64 " failed: %s",
		    sum.triggered, sum.completed, sum.failed, sum.last_failure);
	cr_assert_geq(sum.failed, 1, "the faulty checkpoint failed");
	cr_assert(strstr(sum.last_failure, expect_reason), "reason given: %s", sum.last_failure);
	cr_assert(strstr(sum.last_failure, "declined by subtask"), "%s", sum.last_failure);

	uint64_t *ids = NULL;
	size_t nids = 0;
	struct sl_snap_err err;
	bool have1 = false, later = false;
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	for (size_t i = 0; i < nids; i++) {
		bool over = false;
		uint64_t inflight = 0;
		cr_assert_neq(ids[i], 2, "the declined checkpoint is not complete");
		check_cut(root, ids[i], &g, true, &inflight, &over);
		have1 |= ids[i] == 1;
		later |= ids[i] > 3;
	}
	cr_assert(have1, "the checkpoint before the fault is intact");
	cr_assert(later, "checkpoints after the fault completed");
	free(ids);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

Test(checkpoint, full_disk_declines_and_the_job_goes_on, .timeout = 120)
{
	static const struct sl_io_fault enospc = {
		.path_substr = "-c2.", .budget_err = ENOSPC, .budget_bytes = 100 };

	sl_test_eal("(0-2)@(0-1)", NULL);
	run_with_fault(&enospc, "No space left on device");
	sl_test_eal_fini();
}

Test(checkpoint, io_error_declines_and_the_job_goes_on, .timeout = 120)
{
	static const struct sl_io_fault eio = {
		.path_substr = "-c2.", .nth_write = 1, .nth_err = EIO };

	sl_test_eal("(0-2)@(0-1)", NULL);
	run_with_fault(&eio, "Input/output error");
	sl_test_eal_fini();
}

/* Largest synchronous pause of any subtask over the run's checkpoints. */
static void pause_for_state(uint64_t keys, uint64_t records,
			    struct sl_job_checkpoints *sum)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	char root[] = "/tmp/sl-ckpause-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 200;
	cfg.checkpoint.retained = 1;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, records, 0);
	g.key_cardinality = keys;
	g.rate = 8e6;

	struct sl_job *job = sl_job_create("ckpause", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, 1);
	int si = sl_job_add(job, "sink", &sl_op_null_sink, NULL, 1);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_place(job, gi, 0, 1), 0);
	cr_assert_eq(sl_job_place(job, ci, 0, 2), 0);
	cr_assert_eq(sl_job_place(job, si, 0, 2), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, sum);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

/*
 * The synchronous part of a snapshot is O(1) in the state size: with
 * >= 256 MiB of keyed state it stays within an order of magnitude of the
 * pause with a few thousand keys, measured in the same test, while the
 * write-out (asynchronous, between batches) takes far longer.
 */
Test(checkpoint, sync_pause_independent_of_state_size, .timeout = 300)
{
	struct sl_job_checkpoints small, large;

	sl_test_eal("(0-2)@(0-1)", NULL);
	pause_for_state(4096, 4000000, &small);
	pause_for_state(6000000, 24000000, &large);
	fprintf(stderr, "keyed state %.1f MiB: sync pause max %.1f us, write-out max %.1f ms, %.1f MiB written\n",
		    small.max_state_bytes / 1048576.0, small.max_sync_ns / 1e3,
		    small.max_async_ns / 1e6, small.max_written_bytes / 1048576.0);
	fprintf(stderr, "keyed state %.1f MiB: sync pause max %.1f us, write-out max %.1f ms, %.1f MiB written\n",
		    large.max_state_bytes / 1048576.0, large.max_sync_ns / 1e3,
		    large.max_async_ns / 1e6, large.max_written_bytes / 1048576.0);
	cr_assert_geq(small.completed, 2);
	cr_assert_geq(large.completed, 2);
	cr_assert_geq(large.max_state_bytes, 256ULL << 20, "at least 256 MiB of keyed state");
	cr_assert_lt(large.max_sync_ns, 10 * small.max_sync_ns + 1000000,
		     "sync pause %lu ns with %lu MiB vs %lu ns with %lu KiB",
		     (unsigned long)large.max_sync_ns,
		     (unsigned long)(large.max_state_bytes >> 20),
		     (unsigned long)small.max_sync_ns,
		     (unsigned long)(small.max_state_bytes >> 10));
	cr_assert_gt(large.max_async_ns, 10 * large.max_sync_ns,
		     "the write-out is the long part, and it is asynchronous");
	sl_test_eal_fini();
}

/* gen -> slow sink over one short ring: the ring is always full. */
static void backpressured(enum sl_ckpt_mode mode, struct sl_job_checkpoints *sum)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_count_sink_conf sink = { .delay_us_per_batch = 1000 };
	char root[] = "/tmp/sl-ckover-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.ring_size = 128;
	cfg.burst_size = 4; /* a turn of the sink's loop takes 4 ms, not 32 */
	cfg.checkpoint.interval_ms = 200;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.mode = mode;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, 350000, 0);

	struct sl_job *job = sl_job_create("ckover", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert_eq(sl_job_connect(job, gi, si, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_place(job, gi, 0, 1), 0);
	cr_assert_eq(sl_job_place(job, si, 0, 2), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, sum);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

/*
 * Under backpressure the unaligned barrier overtakes the full ring: the
 * sink snapshots while the ring still holds data (persisted as channel
 * state straight from the ring) and checkpoints complete quickly.  The
 * aligned barrier waits behind the ring: no channel state, and every
 * checkpoint takes about as long as draining the ring (128 batches at
 * 1 ms each).
 */
Test(checkpoint, unaligned_barrier_overtakes_a_full_ring, .timeout = 120)
{
	struct sl_job_checkpoints un, al;

	sl_test_eal("(0-2)@(0-1)", NULL);
	backpressured(SL_CKPT_UNALIGNED, &un);
	backpressured(SL_CKPT_ALIGNED, &al);
	fprintf(stderr, "unaligned: %" PRIu64 " checkpoints, %.1f..%.1f ms, in flight >= %" PRIu64 " bytes\n",
		un.completed, un.min_duration_ns / 1e6, un.max_duration_ns / 1e6,
		un.min_inflight_bytes);
	fprintf(stderr, "aligned:   %" PRIu64 " checkpoints, %.1f..%.1f ms, in flight >= %" PRIu64 " bytes\n",
		al.completed, al.min_duration_ns / 1e6, al.max_duration_ns / 1e6,
		al.min_inflight_bytes);
	cr_assert_geq(un.completed, 2);
	cr_assert_geq(al.completed, 2);
	cr_assert_gt(un.min_inflight_bytes, 0,
		     "every unaligned checkpoint holds data that was queued ahead of its barrier");
	cr_assert_eq(al.min_inflight_bytes, 0, "aligned checkpoints persist no channel state");
	cr_assert_geq(al.min_duration_ns, 100000000ULL,
		      "aligned barriers wait behind the full ring (128 batches x 1 ms)");
	/* the fastest, not the slowest: on a loaded machine one descheduled
	 * lcore can stretch any single checkpoint */
	cr_assert_lt(un.min_duration_ns, al.min_duration_ns,
		     "unaligned checkpoints complete before the ring could drain");
	sl_test_eal_fini();
}
