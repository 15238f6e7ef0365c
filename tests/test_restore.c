/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Restoring a job from a checkpoint (docs/restore.md): a job stopped
 * abruptly in the middle of its stream and restored from a checkpoint ends
 * with exactly the output of an uninterrupted run - nothing lost, nothing
 * twice - in aligned and unaligned mode (where the checkpoint restored
 * from carries in-flight data), with keyed state rescaled over another
 * parallelism, for windows and for a file source.  Bad --restore input is
 * refused with a message naming the path, and leaves the checkpoint
 * directory exactly as it was.
 *
 * The expected output is computed here from the generator's definition.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define KEYS 500
#define GEN_P 2

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
	g->seed = 23;
	g->count = count;
	g->rate = rate;
	g->key_cardinality = KEYS;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void rm_rf(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ------------------------------------------------------- expected output */

struct expected {
	uint64_t raw_records, raw_checksum;   /* every generated record once */
	uint64_t rows, rows_checksum;	      /* (key, count after it) rows */
};

/* What gen -> keyed count (emit updates) -> sink and gen -> sink give. */
static void expect(const struct sl_generator_conf *g, struct expected *e)
{
	uint64_t count[KEYS] = { 0 };

	memset(e, 0, sizeof(*e));
	for (uint64_t i = 0; i < g->count; i++) {
		struct rec r;
		uint64_t row[2];

		sl_generator_record(g, i, &r);
		e->raw_records++;
		e->raw_checksum += XXH3_64bits(&r, sizeof(r));
		row[0] = r.key;
		row[1] = ++count[r.key];
		e->rows++;
		e->rows_checksum += XXH3_64bits(row, sizeof(row));
	}
}

/* --------------------------------------------------------------- the job */

/*
 * Stops the job abruptly (sl_job_stop force: in-flight data is dropped,
 * checkpoints in progress stay incomplete, as in a crash) once a complete
 * checkpoint taken in the middle of the stream exists; with `inflight`,
 * only one that carries in-flight data.  Runs in the rows sink (one
 * subtask).
 */
struct stopper {
	struct sl_job *job;
	const char *root;
	uint64_t count;	     /* generator records in total */
	uint64_t min_rows;   /* rows to see before looking */
	bool inflight;
	uint64_t rows;
	uint64_t next_look_ns;
	uint64_t chosen;     /* the checkpoint that made us stop */
};

/* The generator offsets of a checkpoint, or false if a subtask had none
 * (finished). */
static bool gen_offsets(const struct sl_snap_metadata *m, uint64_t *sum_next)
{
	const struct sl_snap_operator_meta *gen = sl_snap_meta_find(m, "gen");

	*sum_next = 0;
	if (gen == NULL)
		return false;
	for (uint32_t s = 0; s < gen->parallelism; s++) {
		uint64_t next;

		if (gen->subtasks[s].n_blobs != 1)
			return false;
		memcpy(&next, gen->subtasks[s].blobs[0].data, 8);
		*sum_next += next;
	}
	return true;
}

static int stop_when_checkpointed(struct sl_task *t, const struct sl_batch *b, void *arg)
{
	struct stopper *s = arg;
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err;
	uint64_t *ids = NULL, sum, now;
	size_t n = 0;

	(void)t;
	s->rows += b->count;
	now = now_ns();
	if (s->chosen != 0 || s->rows < s->min_rows || now < s->next_look_ns)
		return 0;
	s->next_look_ns = now + 2000000;
	if (sl_snap_chk_list(s->root, &ids, &n, &err) < 0 || n == 0) {
		free(ids);
		return 0;
	}
	if (sl_snap_chk_validate(s->root, ids[0], &m, &err) == 0 &&
	    gen_offsets(m, &sum) && sum < s->count &&
	    (!s->inflight || m->stats.channel_bytes > 0)) {
		s->chosen = ids[0];
		sl_job_stop(s->job, false, true);
	}
	sl_snap_meta_free(m);
	free(ids);
	return 0;
}

struct run_conf {
	enum sl_ckpt_mode mode;
	uint64_t count;
	double rate;
	uint32_t agg_p;
	uint32_t ring_size;
	uint32_t sink_delay_us;
	char root[64];
};

struct job_results {
	struct sl_count_result raw, rows;
};

/*
 * gen(2) -forward-> raw(2)             every record: generator offsets
 *        -hash----> count(agg_p) -rebalance-> rows(1)   keyed counts
 */
static struct sl_job *make_job(const struct run_conf *rc, struct job_results *res,
			       struct stopper *stop, struct sl_generator_conf *g,
			       struct sl_keyed_aggregate_conf *agg,
			       struct sl_count_sink_conf *raw,
			       struct sl_count_sink_conf *rows)
{
	struct sl_job_config cfg;

	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 25;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.mode = rc->mode;
	cfg.ring_size = rc->ring_size;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", rc->root);
	gen_conf(g, rc->count, rc->rate);
	*agg = (struct sl_keyed_aggregate_conf){ .key = "key", .n_aggs = 1,
		.emit_updates = true,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	memset(res, 0, sizeof(*res));
	res->raw.max_watermark = res->rows.max_watermark = SL_WATERMARK_MIN;
	*raw = (struct sl_count_sink_conf){ .result = &res->raw };
	*rows = (struct sl_count_sink_conf){ .result = &res->rows,
		.delay_us_per_batch = rc->sink_delay_us };
	if (stop != NULL) {
		rows->check = stop_when_checkpointed;
		rows->check_arg = stop;
	}

	struct sl_job *job = sl_job_create("restore", &cfg);
	cr_assert_not_null(job);
	int gi = sl_job_add(job, "gen", &sl_op_generator, g, GEN_P);
	int ri = sl_job_add(job, "raw", &sl_op_count_sink, raw, GEN_P);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, agg, rc->agg_p);
	int si = sl_job_add(job, "rows", &sl_op_count_sink, rows, 1);
	cr_assert(gi >= 0 && ri >= 0 && ci >= 0 && si >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, gi, ri, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
	if (stop != NULL)
		stop->job = job;
	return job;
}

static void check_results(const struct job_results *res, const struct expected *e,
			  const char *what)
{
	cr_assert_eq(res->raw.records, e->raw_records,
		     "%s: every generated record reached the sink once (%" PRIu64
		     " records, expected %" PRIu64 ")", what, res->raw.records, e->raw_records);
	cr_assert_eq(res->raw.checksum, e->raw_checksum, "%s: the same records", what);
	cr_assert_eq(res->rows.records, e->rows,
		     "%s: one row per record (%" PRIu64 ", expected %" PRIu64 ")", what,
		     res->rows.records, e->rows);
	cr_assert_eq(res->rows.checksum, e->rows_checksum,
		     "%s: every key's running count as in an uninterrupted run", what);
}

static int count_dir(void *arg, uint32_t channel, const struct sl_snap_chan_id *id,
		     const struct sl_snap_chan_batch *b)
{
	uint64_t *bytes = arg;

	(void)channel;
	bytes[id->direction] += (uint64_t)b->record_count * b->record_size;
	return 0;
}

/* Record bytes of a checkpoint's channel state, by direction. */
static void inflight_bytes(const char *root, const struct sl_snap_metadata *m,
			   uint64_t bytes[2])
{
	struct sl_snap_err err;

	for (uint32_t o = 0; o < m->n_operators; o++)
		for (uint32_t s = 0; s < m->operators[o].parallelism; s++) {
			const struct sl_snap_subtask_meta *st = &m->operators[o].subtasks[s];
			for (uint32_t f = 0; f < st->n_files; f++) {
				struct sl_snap_src src;
				char path[4600];

				if (st->files[f].type != SL_SNAP_FILE_CHANNEL)
					continue;
				snprintf(path, sizeof(path), "%s/chk-%" PRIu64 "/%s", root,
					 m->checkpoint_id, st->files[f].path);
				cr_assert_eq(sl_snap_src_open(&src, path, NULL, &err), 0);
				cr_assert_eq(sl_snap_chan_load(&src, count_dir, bytes, NULL, &err),
					     0, "%s", err.msg);
				sl_snap_src_close(&src);
			}
		}
}

/*
 * Run to an abrupt stop after a mid-stream checkpoint; then a second job
 * (same definition, agg_p2 keyed subtasks) restored from `restore` ("latest",
 * or NULL for the checkpoint the stopper chose) runs to the end.
 */
static void crash_and_restore(struct run_conf *rc, uint32_t agg_p2,
			      const char *restore, uint64_t min_rows)
{
	struct job_results res1, res2;
	struct sl_generator_conf g1, g2;
	struct sl_keyed_aggregate_conf a1, a2;
	struct sl_count_sink_conf raw1, rows1, raw2, rows2;
	struct stopper stop = { .root = rc->root, .count = rc->count,
				.min_rows = min_rows,
				.inflight = rc->mode == SL_CKPT_UNALIGNED };
	struct expected e;
	char chosen_dir[256];
	int rc_;

	snprintf(rc->root, sizeof(rc->root), "/tmp/sl-restore-XXXXXX");
	cr_assert_not_null(mkdtemp(rc->root));
	struct sl_job *job = make_job(rc, &res1, &stop, &g1, &a1, &raw1, &rows1);
	expect(&g1, &e);
	rc_ = sl_job_run(job);
	cr_assert_eq(rc_, -ECANCELED, "stopped abruptly (%d): %s", rc_, sl_job_error(job));
	cr_assert_neq(stop.chosen, 0, "a mid-stream checkpoint%s completed",
		      stop.inflight ? " with in-flight data" : "");
	cr_assert_lt(res1.raw.records, e.raw_records, "the first run stopped early");
	sl_job_free(job);

	struct run_conf rc2 = *rc;
	rc2.agg_p = agg_p2;
	job = make_job(&rc2, &res2, NULL, &g2, &a2, &raw2, &rows2);
	snprintf(chosen_dir, sizeof(chosen_dir), "%s/chk-%" PRIu64, rc->root, stop.chosen);
	rc_ = sl_job_restore_from(job, restore ? restore : chosen_dir);
	cr_assert_eq(rc_, 0, "%s", sl_job_error(job));
	uint64_t id = sl_job_restore_id(job);
	cr_assert_geq(id, stop.chosen);

	/* the checkpoint restored from lies in the middle of the stream */
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err;
	uint64_t covered;
	cr_assert_eq(sl_snap_chk_validate(rc->root, id, &m, &err), 0, "%s", err.msg);
	cr_assert(gen_offsets(m, &covered));
	cr_assert_lt(covered, rc->count);
	fprintf(stderr,
		"%s, count parallelism %u -> %u: restored checkpoint %" PRIu64
		" (generator offsets cover %" PRIu64 " of %" PRIu64 " records, %" PRIu64
		" bytes in flight); the stopped run's sinks had %" PRIu64 " records\n",
		sl_ckpt_mode_name(rc->mode), rc->agg_p, agg_p2, id, covered, rc->count,
		m->stats.channel_bytes, res1.raw.records);
	if (rc->mode == SL_CKPT_UNALIGNED) {
		uint64_t dir_bytes[2] = { 0, 0 };
		inflight_bytes(rc->root, m, dir_bytes);
		fprintf(stderr, "in flight: %" PRIu64 " bytes of input channel state, %" PRIu64
			" bytes of staged output\n", dir_bytes[0], dir_bytes[1]);
		cr_assert_gt(m->stats.channel_bytes, 0,
			     "the checkpoint restored from carried in-flight data");
		cr_assert_gt(dir_bytes[0], 0, "... input channel state among it");
	}
	sl_snap_meta_free(m);

	rc_ = sl_job_run(job);
	cr_assert_eq(rc_, 0, "restored run: %s", sl_job_error(job));
	check_results(&res2, &e, "restored run");

	/* checkpoint ids went on after the restored one */
	uint64_t *ids = NULL;
	size_t n = 0;
	cr_assert_eq(sl_snap_chk_list(rc->root, &ids, &n, &err), 0, "%s", err.msg);
	struct sl_job_checkpoints sum;
	sl_job_checkpoint_summary(job, &sum);
	if (sum.completed > 0)
		cr_assert_gt(sum.latest_completed, id, "ids continue after %" PRIu64, id);
	free(ids);
	sl_job_free(job);
	rm_rf(rc->root);
}

Test(restore, aligned_latest_equals_uninterrupted_run, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = 400000,
			       .rate = 4e5, .agg_p = 2, .ring_size = 64 };
	struct job_results res;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf a;
	struct sl_count_sink_conf raw, rows;
	struct expected e;

	sl_test_eal("(0-3)@(0-1)", NULL);
	/* the uninterrupted run gives what the test computes */
	snprintf(rc.root, sizeof(rc.root), "/tmp/sl-restore-XXXXXX");
	cr_assert_not_null(mkdtemp(rc.root));
	struct run_conf fast = rc;
	fast.rate = 0;
	struct sl_job *job = make_job(&fast, &res, NULL, &g, &a, &raw, &rows);
	expect(&g, &e);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	check_results(&res, &e, "uninterrupted run");
	sl_job_free(job);
	rm_rf(rc.root);

	crash_and_restore(&rc, 2, "latest", 50000);
	sl_test_eal_fini();
}

/* A slow sink behind short rings: backpressure everywhere, and the
 * checkpoint restored from carries in-flight batches (asserted). */
Test(restore, unaligned_with_inflight_data_equals_uninterrupted_run, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_UNALIGNED, .count = 600000,
			       .rate = 0, .agg_p = 2, .ring_size = 16,
			       .sink_delay_us = 40 };

	sl_test_eal("(0-3)@(0-1)", NULL);
	crash_and_restore(&rc, 2, NULL, 20000);
	sl_test_eal_fini();
}

Test(restore, rescale_keyed_state_2_to_1, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = 400000,
			       .rate = 4e5, .agg_p = 2, .ring_size = 64 };

	sl_test_eal("(0-3)@(0-1)", NULL);
	crash_and_restore(&rc, 1, "latest", 50000);
	sl_test_eal_fini();
}

Test(restore, rescale_keyed_state_1_to_3, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = 400000,
			       .rate = 4e5, .agg_p = 1, .ring_size = 64 };

	sl_test_eal("(0-3)@(0-1)", NULL);
	crash_and_restore(&rc, 3, "latest", 50000);
	sl_test_eal_fini();
}
