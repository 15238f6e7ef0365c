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
#include "gen_events.h"
#include "tree_hash.h"
#include "meta_edit.h"
#include "rm_tree.h"
#include "sluice/job.h"
#include "sluice/keygroup.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define KEYS 500
#define GEN_P 2
/* Rate-limited first runs (4e5 records/s) are stopped by the test once a
 * mid-stream checkpoint completed, usually within 0.2 s; the 3 s of stream
 * leave room for checkpoints declined on a loaded machine. */
#define RATE_LIMITED_COUNT 1200000

/* this suite's generator: seed 23, KEYS keys */
static void gen_conf(struct sl_generator_conf *g, uint64_t count, double rate)
{
	gen_events_conf(g, 23, count, rate, KEYS);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
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
		struct gen_event r;
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
 * Stops the job abruptly (sl_job_stop force: in-flight data is dropped, as
 * in a crash) once a complete
 * checkpoint taken in the middle of the stream exists; with `inflight`,
 * only one that carries in-flight data.  Runs in a sink with one subtask.
 */
struct stopper {
	struct sl_job *job;
	const char *root;
	const char *src_uid; /* the source whose offsets say "mid-stream" */
	uint64_t end;	     /* its records (generator) or bytes (file) */
	bool by_index;	     /* generator: offsets are record indices */
	uint64_t min_records; /* to see before looking */
	bool inflight;
	size_t min_complete; /* complete checkpoints wanted (0: 1) */
	uint64_t records;
	uint64_t next_look_ns;
	uint64_t chosen;     /* the checkpoint that made us stop */
};

/*
 * What a checkpoint's source offsets cover: records before them (a
 * generator subtask j of p at index next covers j, j + p, ... < next), or
 * bytes (a file source).  False if a subtask recorded none (finished).
 */
static bool covered_by(const struct sl_snap_metadata *m, const char *uid,
		       bool by_index, uint64_t *covered)
{
	const struct sl_snap_operator_meta *op = sl_snap_meta_find(m, uid);

	*covered = 0;
	if (op == NULL)
		return false;
	for (uint32_t j = 0; j < op->parallelism; j++) {
		uint64_t next;

		if (op->subtasks[j].n_blobs != 1)
			return false;
		memcpy(&next, op->subtasks[j].blobs[0].data, 8);
		if (!by_index)
			*covered += next;
		else if (next > j)
			*covered += (next - j + op->parallelism - 1) / op->parallelism;
	}
	return true;
}

static int stop_when_checkpointed(struct sl_task *t, const struct sl_batch *b, void *arg)
{
	struct stopper *s = arg;
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err;
	uint64_t *ids = NULL, covered, now;
	size_t n = 0;

	(void)t;
	s->records += b->count;
	now = now_ns();
	if (s->chosen != 0 || s->records < s->min_records || now < s->next_look_ns)
		return 0;
	s->next_look_ns = now + 2000000;
	if (sl_snap_chk_list(s->root, &ids, &n, &err) < 0 || n == 0 ||
	    n < s->min_complete) {
		free(ids);
		return 0;
	}
	if (sl_snap_chk_validate(s->root, ids[0], &m, &err) == 0 &&
	    covered_by(m, s->src_uid, s->by_index, &covered) && covered < s->end &&
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
	uint32_t gen_p;		/* 0: GEN_P */
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
	uint32_t gen_p = rc->gen_p ? rc->gen_p : GEN_P;
	int gi = sl_job_add(job, "gen", &sl_op_generator, g, gen_p);
	int ri = sl_job_add(job, "raw", &sl_op_count_sink, raw, gen_p);
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
/* The first run: into a new rc->root, stopped abruptly after a mid-stream
 * checkpoint; returns that checkpoint's id. */
static uint64_t crash(struct run_conf *rc, uint64_t min_rows, struct expected *e,
		      uint64_t *stopped_records, size_t min_complete)
{
	struct job_results res;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf a;
	struct sl_count_sink_conf raw, rows;
	struct stopper stop = { .root = rc->root, .src_uid = "gen",
				.end = rc->count, .by_index = true,
				.min_records = min_rows, .min_complete = min_complete,
				.inflight = rc->mode == SL_CKPT_UNALIGNED };
	int rc_;

	snprintf(rc->root, sizeof(rc->root), "/tmp/sl-restore-XXXXXX");
	cr_assert_not_null(mkdtemp(rc->root));
	struct sl_job *job = make_job(rc, &res, &stop, &g, &a, &raw, &rows);
	expect(&g, e);
	rc_ = sl_job_run(job);
	cr_assert_eq(rc_, -ECANCELED, "stopped abruptly (%d): %s", rc_, sl_job_error(job));
	cr_assert_neq(stop.chosen, 0, "a mid-stream checkpoint%s completed",
		      stop.inflight ? " with in-flight data" : "");
	cr_assert_lt(res.raw.records, e->raw_records, "the first run stopped early");
	*stopped_records = res.raw.records;
	sl_job_free(job);
	return stop.chosen;
}

static void crash_and_restore(struct run_conf *rc, uint32_t agg_p2,
			      const char *restore, uint64_t min_rows)
{
	struct job_results res2;
	struct sl_generator_conf g2;
	struct sl_keyed_aggregate_conf a2;
	struct sl_count_sink_conf raw2, rows2;
	struct stopper stop = { 0 };
	struct expected e;
	uint64_t stopped_records;
	char chosen_dir[256];
	struct sl_job *job;
	int rc_;

	stop.chosen = crash(rc, min_rows, &e, &stopped_records, 1);

	struct run_conf rc2 = *rc;
	rc2.agg_p = agg_p2;
	/* the rest of the stream at full speed: the output does not depend
	 * on the rate, only the first run's stopping point does */
	rc2.rate = 0;
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
	cr_assert(covered_by(m, "gen", true, &covered));
	cr_assert_lt(covered, rc->count);
	fprintf(stderr,
		"%s, count parallelism %u -> %u: restored checkpoint %" PRIu64
		" (generator offsets cover %" PRIu64 " of %" PRIu64 " records, %" PRIu64
		" bytes in flight); the stopped run's sinks had %" PRIu64 " records\n",
		sl_ckpt_mode_name(rc->mode), rc->agg_p, agg_p2, id, covered, rc->count,
		m->stats.channel_bytes, stopped_records);
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

	if (rc->mode == SL_CKPT_UNALIGNED) {
		/* in-flight data cannot follow a changed parallelism */
		struct run_conf rc3 = *rc;
		struct job_results res3;
		struct sl_generator_conf g3;
		struct sl_keyed_aggregate_conf a3;
		struct sl_count_sink_conf raw3, rows3;
		uint64_t before = tree_hash(rc->root);

		rc3.agg_p = rc->agg_p + 1;
		struct sl_job *j3 = make_job(&rc3, &res3, NULL, &g3, &a3, &raw3, &rows3);
		cr_assert_eq(sl_job_restore_from(j3, chosen_dir), -EINVAL);
		cr_assert(strstr(sl_job_error(j3), "in-flight data cannot be redistributed") &&
			  strstr(sl_job_error(j3), chosen_dir), "%s", sl_job_error(j3));
		cr_assert_eq(tree_hash(rc->root), before, "nothing in %s changed", rc->root);
		sl_job_free(j3);
	}

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
	rm_tree(rc->root);
}

Test(restore, aligned_latest_equals_uninterrupted_run, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = RATE_LIMITED_COUNT,
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
	rm_tree(rc.root);

	crash_and_restore(&rc, 2, "latest", 50000);
	sl_test_eal_fini();
}

/* A slow sink behind short rings: backpressure everywhere, and the
 * checkpoint restored from carries in-flight batches (asserted). */
Test(restore, unaligned_with_inflight_data_equals_uninterrupted_run, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_UNALIGNED, .count = 800000,
			       .rate = 0, .agg_p = 2, .ring_size = 16,
			       .sink_delay_us = 150 };

	sl_test_eal("(0-3)@(0-1)", NULL);
	crash_and_restore(&rc, 2, NULL, 20000);
	sl_test_eal_fini();
}

Test(restore, rescale_keyed_state_2_to_1, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = RATE_LIMITED_COUNT,
			       .rate = 4e5, .agg_p = 2, .ring_size = 64 };

	sl_test_eal("(0-3)@(0-1)", NULL);
	crash_and_restore(&rc, 1, "latest", 50000);
	sl_test_eal_fini();
}

Test(restore, rescale_keyed_state_1_to_3, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = RATE_LIMITED_COUNT,
			       .rate = 4e5, .agg_p = 1, .ring_size = 64 };

	sl_test_eal("(0-3)@(0-1)", NULL);
	crash_and_restore(&rc, 3, "latest", 50000);
	sl_test_eal_fini();
}

/* ------------------------------------------------------------ bad input */

/* A job like make_job()'s, under another name or without an operator. */
static struct sl_job *job_variant(const char *name, const char *root, bool with_rows,
				  uint32_t max_parallelism, struct sl_generator_conf *g,
				  struct sl_keyed_aggregate_conf *agg,
				  struct sl_count_sink_conf *sink)
{
	struct sl_job_config cfg;

	sl_job_config_defaults(&cfg);
	cfg.max_parallelism = max_parallelism;
	cfg.checkpoint.interval_ms = 25;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(g, 1000, 0);
	*agg = (struct sl_keyed_aggregate_conf){ .key = "key", .n_aggs = 1,
		.emit_updates = true, .aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	*sink = (struct sl_count_sink_conf){ 0 };
	struct sl_job *job = sl_job_create(name, &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, g, GEN_P);
	int ri = sl_job_add(job, "raw", &sl_op_count_sink, sink, GEN_P);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, agg, 2);
	cr_assert_eq(sl_job_connect(job, gi, ri, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	if (with_rows) {
		int si = sl_job_add(job, "rows", &sl_op_null_sink, NULL, 1);
		cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
	}
	return job;
}

/* sl_job_restore_from(what) fails with `err`, its message names `names`
 * and says `hint`, and nothing under root changed. */
static void refused(struct sl_job *job, const char *what, int err, const char *names,
		    const char *hint, const char *root)
{
	uint64_t before = tree_hash(root);
	int rc = sl_job_restore_from(job, what);

	cr_assert_eq(rc, err, "--restore %s: %d (%s), expected %d", what, rc,
		     sl_job_error(job), err);
	cr_assert(strstr(sl_job_error(job), names), "the message names %s: %s", names,
		  sl_job_error(job));
	cr_assert(strstr(sl_job_error(job), hint), "the message says '%s': %s", hint,
		  sl_job_error(job));
	cr_assert_eq(sl_job_restore_id(job), 0);
	cr_assert_eq(tree_hash(root), before, "nothing under %s changed", root);
	fprintf(stderr, "refused as expected: %s\n", sl_job_error(job));
}

Test(restore, bad_input_is_refused_and_changes_nothing, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = RATE_LIMITED_COUNT,
			       .rate = 4e5, .agg_p = 2, .ring_size = 64 };
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf a;
	struct sl_count_sink_conf k;
	struct expected e;
	uint64_t stopped;
	char chk[300], meta[400], empty[] = "/tmp/sl-restore-empty-XXXXXX";
	char vroot[] = "/tmp/sl-restore-ver-XXXXXX", vchk[300], cmd[1000];

	sl_test_eal("(0-3)@(0-1)", NULL);
	uint64_t id = crash(&rc, 30000, &e, &stopped, 1);
	snprintf(chk, sizeof(chk), "%s/chk-%" PRIu64, rc.root, id);
	snprintf(meta, sizeof(meta), "%s/_metadata", chk);
	cr_assert_not_null(mkdtemp(empty));

	struct sl_job *job = job_variant("restore", rc.root, true, 128, &g, &a, &k);
	refused(job, "/nonexistent/chk-3", -ENOENT, "/nonexistent/chk-3", "no such directory", rc.root);
	refused(job, meta, -ENOTDIR, meta, "not a directory", rc.root);
	refused(job, empty, -EINVAL, empty, "not a checkpoint", rc.root);
	refused(job, rc.root, -EINVAL, rc.root, "checkpoint root", rc.root);
	sl_job_free(job);

	/* latest, with an empty or a missing checkpoint directory */
	job = job_variant("restore", empty, true, 128, &g, &a, &k);
	refused(job, "latest", -ENOENT, empty, "holds no checkpoint", rc.root);
	sl_job_free(job);
	job = job_variant("restore", "/nonexistent/checkpoints", true, 128, &g, &a, &k);
	refused(job, "latest", -ENOENT, "/nonexistent/checkpoints", "does not exist", rc.root);
	sl_job_free(job);

	/* another job's checkpoint */
	job = job_variant("other", rc.root, true, 128, &g, &a, &k);
	refused(job, chk, -EINVAL, chk, "of job 'restore', not of job 'other'", rc.root);
	refused(job, "latest", -EINVAL, rc.root, "of job 'restore'", rc.root);
	sl_job_free(job);

	/* an operator with state is missing; another operator type; other key groups */
	job = job_variant("restore", rc.root, false, 128, &g, &a, &k);
	refused(job, chk, -EINVAL, "'rows'", "give the operator its old uid", rc.root);
	sl_job_free(job);
	job = job_variant("restore", rc.root, true, 128, &g, &a, &k);
	/* 'rows' is a null sink here, a count sink in the checkpoint */
	refused(job, chk, -EINVAL, "'rows' is a count-sink there but a null-sink", "new uid",
		rc.root);
	sl_job_free(job);

	/* another snapshot format version, named, refused even by "latest"
	 * (falling back past it would silently go back in time) */
	cr_assert_not_null(mkdtemp(vroot));
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s/'", chk, vroot);
	cr_assert_eq(system(cmd), 0);
	snprintf(vchk, sizeof(vchk), "%s/chk-%" PRIu64, vroot, id);
	snprintf(meta, sizeof(meta), "%s/_metadata", vchk);
	set_metadata_version(meta, 2);
	job = job_variant("restore", vroot, true, 128, &g, &a, &k);
	refused(job, vchk, -ENOTSUP, vchk, "format version", vroot);
	refused(job, "latest", -ENOTSUP, vchk, "format version", vroot);
	sl_job_free(job);

	/* pipeline.max-parallelism changed: key groups cannot be remapped */
	struct job_results res;
	struct sl_count_sink_conf raw, rows;
	{
		struct sl_job_config c;
		sl_job_config_defaults(&c);
		c.max_parallelism = 64;
		snprintf(c.checkpoint.dir, sizeof(c.checkpoint.dir), "%s", rc.root);
		c.checkpoint.interval_ms = 25;
		gen_conf(&g, 1000, 0);
		job = sl_job_create("restore", &c);
		int gi = sl_job_add(job, "gen", &sl_op_generator, &g, GEN_P);
		int ri = sl_job_add(job, "raw", &sl_op_count_sink, &raw, GEN_P);
		int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &a, 2);
		int si = sl_job_add(job, "rows", &sl_op_count_sink, &rows, 1);
		cr_assert_eq(sl_job_connect(job, gi, ri, SL_PART_FORWARD, NULL), 0);
		cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
		cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
		refused(job, chk, -EINVAL, "'count'", "pipeline.max-parallelism: 128", rc.root);
		sl_job_free(job);
	}

	/* the generator's offsets cannot follow another parallelism: the run
	 * fails before anything is checkpointed */
	struct run_conf rc3 = rc;
	rc3.gen_p = 1;
	job = make_job(&rc3, &res, NULL, &g, &a, &raw, &rows);
	cr_assert_eq(sl_job_restore_from(job, chk), 0, "%s", sl_job_error(job));
	uint64_t before = tree_hash(rc.root);
	int ret = sl_job_run(job);
	cr_assert_eq(ret, -EXDEV, "%d: %s", ret, sl_job_error(job));
	cr_assert(strstr(sl_job_error(job), "run it with parallelism 2"), "%s",
		  sl_job_error(job));
	cr_assert_eq(tree_hash(rc.root), before, "nothing under %s changed", rc.root);
	fprintf(stderr, "refused as expected: %s\n", sl_job_error(job));
	sl_job_free(job);

	rm_tree(vroot);
	rm_tree(empty);
	rm_tree(rc.root);
	sl_test_eal_fini();
}

/* -------------------------------------------------- damaged checkpoints */

/* Flip one byte in the middle of a file. */
static void flip_byte(const char *path)
{
	int fd = open(path, O_RDWR);
	struct stat st;
	uint8_t c;

	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(pread(fd, &c, 1, st.st_size / 2), 1);
	c ^= 0x40;
	cr_assert_eq(pwrite(fd, &c, 1, st.st_size / 2), 1);
	close(fd);
}

/*
 * The newest complete checkpoint has a damaged state file and a newer one
 * has no _metadata: "latest" skips both (with warnings naming them) for
 * the one before, which restores to the right output; naming the damaged
 * one is refused with the file.
 */
Test(restore, damaged_latest_falls_back_to_the_previous_checkpoint, .timeout = 120)
{
	struct run_conf rc = { .mode = SL_CKPT_ALIGNED, .count = RATE_LIMITED_COUNT,
			       .rate = 4e5, .agg_p = 2, .ring_size = 64 };
	struct job_results res;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf a;
	struct sl_count_sink_conf raw, rows;
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err;
	struct expected e;
	uint64_t stopped, *ids = NULL;
	size_t n = 0;
	char chk[300], file[600];

	sl_test_eal("(0-3)@(0-1)", NULL);
	(void)crash(&rc, 60000, &e, &stopped, 2);
	cr_assert_eq(sl_snap_chk_list(rc.root, &ids, &n, &err), 0, "%s", err.msg);
	cr_assert_geq(n, 2, "two complete checkpoints (%zu)", n);
	cr_assert_eq(sl_snap_chk_validate(rc.root, ids[0], &m, &err), 0, "%s", err.msg);
	const struct sl_snap_operator_meta *op = sl_snap_meta_find(m, "count");
	cr_assert(op && op->subtasks[0].n_files >= 1);
	snprintf(chk, sizeof(chk), "%s/chk-%" PRIu64, rc.root, ids[0]);
	char name[SL_SNAP_PATH_MAX];
	snprintf(name, sizeof(name), "%s", op->subtasks[0].files[0].path);
	snprintf(file, sizeof(file), "%s/%s", chk, name);
	flip_byte(file);
	sl_snap_meta_free(m); /* op is gone with it */

	/* and a newer checkpoint a crash left without its _metadata */
	char partial[400];
	snprintf(partial, sizeof(partial), "%s/chk-%" PRIu64, rc.root, ids[0] + 3);
	cr_assert_eq(mkdir(partial, 0755), 0);
	snprintf(partial, sizeof(partial), "%s/chk-%" PRIu64 "/count-0-c%" PRIu64 ".kstate",
		 rc.root, ids[0] + 3, ids[0] + 3);
	FILE *pf = fopen(partial, "w");
	cr_assert_not_null(pf);
	fputs("half-written", pf);
	fclose(pf);

	rc.rate = 0; /* the restored run: the rest at full speed */
	struct sl_job *job = make_job(&rc, &res, NULL, &g, &a, &raw, &rows);
	refused(job, chk, -EBADMSG, name, "damaged", rc.root);
	uint64_t before = tree_hash(rc.root);
	cr_assert_eq(sl_job_restore_from(job, "latest"), 0, "%s", sl_job_error(job));
	cr_assert_eq(tree_hash(rc.root), before, "nothing under %s changed", rc.root);
	cr_assert_eq(sl_job_restore_id(job), ids[1], "the previous checkpoint (%" PRIu64
		     ") was chosen, not %" PRIu64, ids[1], sl_job_restore_id(job));
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	check_results(&res, &e, "restored from the previous checkpoint");
	free(ids);
	sl_job_free(job);
	rm_tree(rc.root);
	sl_test_eal_fini();
}

/* --------------------------------------------------------------- windows */

/*
 * gen(2) -hash-> 10 ms tumbling windows with 20 ms allowed lateness (2) ->
 * sink: the restored windows' counts, which windows had fired (they must
 * not fire again), and the watermark come back.
 */
static struct sl_job *make_window_job(const char *root, uint64_t count, double rate,
				      struct sl_count_result *res, struct stopper *stop,
				      struct sl_generator_conf *g, struct sl_window_conf *w,
				      struct sl_count_sink_conf *sink)
{
	struct sl_job_config cfg;

	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 25;
	cfg.checkpoint.retained = 1000;
	cfg.ring_size = 64;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(g, count, rate);
	*w = (struct sl_window_conf){ .key = "key", .ts_field = "ts",
		.kind = SL_WINDOW_TUMBLING, .size_ns = 10000000,
		.allowed_lateness_ns = 20000000, .n_aggs = 2,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" },
			  { .fn = SL_AGG_SUM, .field = "value", .as = "sum" } } };
	memset(res, 0, sizeof(*res));
	res->max_watermark = SL_WATERMARK_MIN;
	*sink = (struct sl_count_sink_conf){ .result = res };
	if (stop != NULL) {
		sink->check = stop_when_checkpointed;
		sink->check_arg = stop;
	}
	struct sl_job *job = sl_job_create("windows", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, g, GEN_P);
	int wi = sl_job_add(job, "win", &sl_op_window_aggregate, w, 2);
	int si = sl_job_add(job, "out", &sl_op_count_sink, sink, 1);
	cr_assert(gi >= 0 && wi >= 0 && si >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, gi, wi, SL_PART_HASH, "key"), 0, "%s",
		     sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, wi, si, SL_PART_REBALANCE, NULL), 0);
	if (stop != NULL)
		stop->job = job;
	return job;
}

Test(restore, windows_equal_uninterrupted_run, .timeout = 120)
{
	/* 3 s of stream at the first run's rate; it is stopped after about
	 * the first quarter second's output, the rest is room for declined
	 * checkpoints on a loaded machine */
	const uint64_t count = 900000;
	struct sl_count_result want, got, first;
	struct sl_generator_conf g;
	struct sl_window_conf w;
	struct sl_count_sink_conf sink;
	char root[] = "/tmp/sl-restore-win-XXXXXX";

	sl_test_eal("(0-3)@(0-1)", NULL);
	cr_assert_not_null(mkdtemp(root));
	struct sl_job *job = make_window_job(root, count, 0, &want, NULL, &g, &w, &sink);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_free(job);
	rm_tree(root);
	cr_assert_gt(want.records, 0);

	snprintf(root, sizeof(root), "/tmp/sl-restore-win-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	struct stopper stop = { .root = root, .src_uid = "gen", .end = count,
				.by_index = true, .min_records = want.records / 12 };
	job = make_window_job(root, count, 3e5, &first, &stop, &g, &w, &sink);
	cr_assert_eq(sl_job_run(job), -ECANCELED, "%s", sl_job_error(job));
	cr_assert_neq(stop.chosen, 0, "a mid-stream checkpoint completed");
	sl_job_free(job);

	job = make_window_job(root, count, 0, &got, NULL, &g, &w, &sink);
	cr_assert_eq(sl_job_restore_from(job, "latest"), 0, "%s", sl_job_error(job));
	uint64_t id = sl_job_restore_id(job);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	fprintf(stderr, "windows: %" PRIu64 " rows uninterrupted; %" PRIu64
		" before the stop, %" PRIu64 " after restoring checkpoint %" PRIu64 "\n",
		want.records, first.records, got.records, id);
	cr_assert_eq(got.records, want.records, "every window row once (%" PRIu64 " vs %" PRIu64 ")",
		     got.records, want.records);
	cr_assert_eq(got.checksum, want.checksum, "the same window rows");
	sl_job_free(job);
	rm_tree(root);
	sl_test_eal_fini();
}

/* ----------------------------------------------------------- file source */

Test(restore, file_source_resumes_at_its_byte_offset, .timeout = 120)
{
	const uint64_t count = 200000;
	struct sl_generator_conf g;
	struct sl_file_source_conf fs;
	struct sl_count_result first, got;
	struct sl_count_sink_conf sink;
	struct sl_job_config cfg;
	char root[] = "/tmp/sl-restore-file-XXXXXX", path[128];
	uint64_t checksum = 0;
	FILE *f;

	sl_test_eal("(0-3)@(0-1)", NULL);
	cr_assert_not_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s.bin", root);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	gen_conf(&g, count, 0);
	for (uint64_t i = 0; i < count; i++) {
		struct gen_event r;
		sl_generator_record(&g, i, &r);
		cr_assert_eq(fwrite(&r, sizeof(r), 1, f), 1);
		checksum += XXH3_64bits(&r, sizeof(r));
	}
	fclose(f);

	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 25;
	cfg.checkpoint.retained = 1000;
	cfg.ring_size = 16;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	memset(&fs, 0, sizeof(fs));
	fs.schema = g.schema;
	snprintf(fs.path, sizeof(fs.path), "%s", path);
	fs.format = SL_FILE_BINARY;
	snprintf(fs.ts_field, sizeof(fs.ts_field), "ts");

	struct stopper stop = { .root = root, .src_uid = "src",
				.end = count * sizeof(struct gen_event), .min_records = count / 4 };
	for (int run = 0; run < 2; run++) {
		struct sl_count_result *res = run == 0 ? &first : &got;

		memset(res, 0, sizeof(*res));
		sink = (struct sl_count_sink_conf){ .result = res, .delay_us_per_batch = 300 };
		if (run == 0) {
			sink.check = stop_when_checkpointed;
			sink.check_arg = &stop;
		}
		struct sl_job *job = sl_job_create("file", &cfg);
		int si = sl_job_add(job, "src", &sl_op_file_source, &fs, 1);
		int ki = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
		cr_assert_eq(sl_job_connect(job, si, ki, SL_PART_FORWARD, NULL), 0);
		stop.job = job;
		if (run == 1)
			cr_assert_eq(sl_job_restore_from(job, "latest"), 0, "%s", sl_job_error(job));
		int rc = sl_job_run(job);
		cr_assert_eq(rc, run == 0 ? -ECANCELED : 0, "%s", sl_job_error(job));
		if (run == 0)
			cr_assert_neq(stop.chosen, 0, "a checkpoint in the middle of the file");
		sl_job_free(job);
	}
	fprintf(stderr, "file source: %" PRIu64 " records before the stop, %" PRIu64
		" after restoring\n", first.records, got.records);
	cr_assert_lt(first.records, count);
	cr_assert_eq(got.records, count, "every record of the file once");
	cr_assert_eq(got.checksum, checksum, "the file's records");
	unlink(path);
	rm_tree(root);
	sl_test_eal_fini();
}

/* ------------------------------------------------------ restart strategies */

Test(restore, restart_policies, .timeout = 30)
{
	struct sl_restart_config c;
	struct sl_restart_state s;
	uint64_t d;
	char err[256];

	sl_restart_config_defaults(&c);
	sl_restart_state_init(&s, &c, 1);
	cr_assert_eq(sl_restart_next(&c, &s, 0, &d), 0, "none never restarts");

	c.type = SL_RESTART_FIXED_DELAY;
	c.attempts = 2;
	c.delay_ms = 70;
	sl_restart_state_init(&s, &c, 1);
	cr_assert_eq(sl_restart_next(&c, &s, 0, &d), 1);
	cr_assert_eq(d, 70);
	cr_assert_eq(sl_restart_next(&c, &s, 1000000, &d), 1);
	cr_assert_eq(sl_restart_next(&c, &s, 0, &d), 0, "attempts used up");

	c.type = SL_RESTART_EXPONENTIAL_DELAY;
	c.initial_backoff_ms = 100;
	c.max_backoff_ms = 500;
	c.backoff_multiplier = 2;
	c.reset_backoff_threshold_ms = 10000;
	c.jitter_factor = 0;
	sl_restart_state_init(&s, &c, 1);
	const uint64_t want[] = { 100, 200, 400, 500, 500 };
	for (unsigned i = 0; i < 5; i++) {
		cr_assert_eq(sl_restart_next(&c, &s, 10, &d), 1);
		cr_assert_eq(d, want[i], "delay %u: %" PRIu64 ", expected %" PRIu64, i, d, want[i]);
	}
	cr_assert_eq(sl_restart_next(&c, &s, 10000, &d), 1);
	cr_assert_eq(d, 100, "a run past reset-backoff-threshold resets the backoff");
	c.jitter_factor = 0.5;
	sl_restart_state_init(&s, &c, 42);
	bool varied = false;
	for (unsigned i = 0; i < 50; i++) {
		cr_assert_eq(sl_restart_next(&c, &s, 20000, &d), 1);
		cr_assert(d >= 50 && d <= 150, "100 ms +- 50%%: %" PRIu64, d);
		varied |= d != 100;
	}
	cr_assert(varied, "jitter varies the delay");

	c.max_backoff_ms = 50;
	cr_assert_eq(sl_restart_config_check(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "max-backoff"), "%s", err);
	c.max_backoff_ms = 500;
	c.backoff_multiplier = 0.5;
	cr_assert_eq(sl_restart_config_check(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "backoff-multiplier"), "%s", err);
}

/*
 * A pass-through that fails with an injected I/O error after `after`
 * records of a run, as long as flaky_left says so (shared by the runs of
 * one process).
 */
static int flaky_left;

struct flaky_conf {
	uint64_t after;
};

struct flaky_op {
	uint64_t seen;
	uint64_t after;
};

static int flaky_plan(void *conf, const struct sl_schema *const in[], unsigned n_in,
		      struct sl_schema *out, char *err, size_t errlen)
{
	(void)conf, (void)n_in, (void)err, (void)errlen;
	*out = *in[0];
	return 0;
}

static int flaky_open(struct sl_task *t, void **op)
{
	const struct flaky_conf *c = t->info.conf;
	struct flaky_op *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -ENOMEM;
	f->after = c->after;
	*op = f;
	return 0;
}

static int flaky_process(void *op, struct sl_task *t, unsigned input, struct sl_batch *b)
{
	struct flaky_op *f = op;

	(void)input;
	f->seen += b->count;
	/* subtask 0 only: two subtasks failing at once would be one job
	 * failure, one restart */
	if (t->info.index == 0 && f->seen >= f->after &&
	    __atomic_load_n(&flaky_left, __ATOMIC_RELAXED) > 0 &&
	    __atomic_fetch_sub(&flaky_left, 1, __ATOMIC_RELAXED) > 0) {
		sl_task_error(t, "injected I/O error after %" PRIu64 " records", f->seen);
		return -EIO;
	}
	sl_emit_forward(t, b);
	return 0;
}

static void flaky_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

static const struct sl_operator_ops flaky_ops = {
	.type = "flaky", .conf_size = sizeof(struct flaky_conf),
	.min_inputs = 1, .max_inputs = 1,
	.plan = flaky_plan, .open = flaky_open, .process = flaky_process,
	.close = flaky_close,
};

/*
 * A sink whose totals (records, xxh3 sum) are checkpointed and restored,
 * and published into tally_out[subtask] only when its input drained: the
 * result of the run that finished, whatever runs failed before it.
 */
struct tally {
	uint64_t records, checksum;
};
static struct tally tally_out[4];

static int tally_open(struct sl_task *t, void **op)
{
	(void)t;
	*op = calloc(1, sizeof(struct tally));
	return *op ? 0 : -ENOMEM;
}

static int tally_process(void *op, struct sl_task *t, unsigned input, struct sl_batch *b)
{
	struct tally *s = op;

	(void)t, (void)input;
	for (uint32_t i = 0; i < b->count; i++)
		s->checksum += XXH3_64bits(sl_batch_record(b, i), b->record_size);
	s->records += b->count;
	return 0;
}

static int tally_end(void *op, struct sl_task *t, bool drain)
{
	if (drain)
		tally_out[t->info.index] = *(struct tally *)op;
	return 0;
}

static int tally_snapshot(void *op, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	(void)t;
	return sl_ckpt_put_blob(ck, op, sizeof(struct tally));
}

static int tally_restore(void *op, struct sl_task *t, struct sl_restore_ctx *rc)
{
	const void *data;
	size_t len;
	int ret = sl_restore_blob(rc, &data, &len);

	(void)t;
	if (ret == 0 && len == sizeof(struct tally))
		memcpy(op, data, len);
	return ret == -ENOENT ? 0 : ret;
}

static void tally_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

static const struct sl_operator_ops tally_ops = {
	.type = "tally", .min_inputs = 1, .max_inputs = 1, .sink = true,
	.open = tally_open, .process = tally_process, .on_end = tally_end,
	.snapshot = tally_snapshot, .restore = tally_restore, .close = tally_close,
};

/* gen(2) -> flaky(2) -hash-> count(2, emit updates) -rebalance-> tally(1) */
static int run_flaky(const struct sl_restart_config *restart, int failures,
		     struct expected *e, struct sl_job **jobp)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.emit_updates = true, .aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	struct flaky_conf fc = { .after = 50000 };
	char root[] = "/tmp/sl-restart-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 25;
	cfg.ring_size = 64;
	cfg.restart = *restart;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, 300000, 4e5);
	expect(&g, e);
	memset(tally_out, 0, sizeof(tally_out));
	flaky_left = failures;

	struct sl_job *job = sl_job_create("restarts", &cfg);
	cr_assert_not_null(job);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, GEN_P);
	int fi = sl_job_add(job, "flaky", &flaky_ops, &fc, GEN_P);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, 2);
	int ti = sl_job_add(job, "tally", &tally_ops, NULL, 1);
	cr_assert(gi >= 0 && fi >= 0 && ci >= 0 && ti >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, gi, fi, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_connect(job, fi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, ti, SL_PART_REBALANCE, NULL), 0);
	int rc = sl_job_run(job);
	*jobp = job;
	rm_tree(root);
	return rc;
}

static void restarts_until_done(const struct sl_restart_config *restart)
{
	struct expected e;
	struct sl_job *job;
	int rc = run_flaky(restart, 2, &e, &job);

	cr_assert_eq(rc, 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_restarts(job), 2, "restarted once per failure (%u)",
		     sl_job_restarts(job));
	cr_assert_eq(tally_out[0].records, e.rows, "one row per record (%" PRIu64
		     " vs %" PRIu64 ") after two restarts", tally_out[0].records, e.rows);
	cr_assert_eq(tally_out[0].checksum, e.rows_checksum,
		     "every key's running count as in an uninterrupted run");
	sl_job_free(job);
}

Test(restore, fixed_delay_restarts_from_the_newest_checkpoint, .timeout = 120)
{
	struct sl_restart_config r;

	sl_test_eal("(0-3)@(0-1)", NULL);
	sl_restart_config_defaults(&r);
	r.type = SL_RESTART_FIXED_DELAY;
	r.attempts = 3;
	r.delay_ms = 10;
	restarts_until_done(&r);

	/* one restart allowed, more failures: the job fails, saying so */
	struct expected e;
	struct sl_job *job;
	r.attempts = 1;
	int rc = run_flaky(&r, 5, &e, &job);
	cr_assert_eq(rc, -EIO, "%d: %s", rc, sl_job_error(job));
	cr_assert(strstr(sl_job_error(job), "injected I/O error") &&
		  strstr(sl_job_error(job), "restart strategy fixed-delay gave up after 1 restart"),
		  "%s", sl_job_error(job));
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(restore, exponential_delay_restarts_from_the_newest_checkpoint, .timeout = 120)
{
	struct sl_restart_config r;

	sl_test_eal("(0-3)@(0-1)", NULL);
	sl_restart_config_defaults(&r);
	r.type = SL_RESTART_EXPONENTIAL_DELAY;
	r.initial_backoff_ms = 10;
	r.max_backoff_ms = 40;
	restarts_until_done(&r);
	sl_test_eal_fini();
}

/* ------------------------------------------------- incremental chains */

static int file_sink(void *arg, uint64_t offset, void *buf, size_t len)
{
	int fd = *(int *)arg;
	ssize_t n = pwrite(fd, buf, len, (off_t)offset);

	sl_snap_buf_free(buf);
	return n == (ssize_t)len ? 0 : -EIO;
}

static void kv_of(uint64_t *key, struct sl_snap_kv *kv, const uint64_t *value)
{
	kv->hash = sl_key_hash(key, 8);
	kv->kg = sl_key_group(kv->hash, 128);
	kv->key = key;
	kv->value = value;
}

/* Write shared/<name> as a keyed-state file of "count" subtask 0: entries
 * (key, count) and deleted keys; fills ref. */
static void write_kstate(const char *root, uint64_t id, uint64_t base,
			 const uint64_t (*entries)[2], unsigned n_entries,
			 const uint64_t *deleted, unsigned n_deleted,
			 struct sl_snap_file_ref *ref)
{
	char name[128], path[600], rel[200];
	struct sl_snap_file_info info;
	int fd;

	cr_assert_eq(sl_snap_file_name(name, sizeof(name), "count", 0, id,
				       SL_SNAP_FILE_KEYED), 0);
	snprintf(path, sizeof(path), "%s/shared/%s", root, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	struct sl_snap_kstate_conf c = {
		.uid = "count", .subtask = 0, .checkpoint_id = id,
		.kind = base ? SL_SNAP_KSTATE_INCREMENTAL : SL_SNAP_KSTATE_FULL,
		.base_checkpoint_id = base, .max_parallelism = 128,
		.kg_first = 0, .kg_count = 128, .key_size = 8, .value_size = 8,
		.sink = file_sink, .sink_arg = &fd,
	};
	struct sl_snap_kstate_enc *enc = sl_snap_kstate_enc_create(&c);
	cr_assert_not_null(enc);
	for (unsigned i = 0; i < n_entries; i++) {
		struct sl_snap_kv kv;
		kv_of((uint64_t *)&entries[i][0], &kv, &entries[i][1]);
		cr_assert_eq(sl_snap_kstate_enc_add(enc, &kv, 1), 0);
	}
	for (unsigned i = 0; i < n_deleted; i++) {
		struct sl_snap_kv kv;
		kv_of((uint64_t *)&deleted[i], &kv, NULL);
		cr_assert_eq(sl_snap_kstate_enc_delete(enc, &kv, 1), 0);
	}
	cr_assert_eq(sl_snap_kstate_enc_finish(enc, &info), 0);
	sl_snap_kstate_enc_free(enc);
	close(fd);
	snprintf(rel, sizeof(rel), "shared/%s", name);
	cr_assert_eq(sl_snap_file_ref_set(ref, rel, SL_SNAP_FILE_KEYED, id, &info, 0, 128), 0);
}

/*
 * A subtask's keyed state as a chain (a full file, then a delta with its
 * deletions, both in shared/, as incremental checkpoints write them): the
 * restore applies them in metadata order, deletions before entries.
 */
Test(restore, incremental_chain_is_applied_in_order, .timeout = 60)
{
	char root[] = "/tmp/sl-restore-chain-XXXXXX", chk[200];
	uint64_t full[100][2], delta[12][2], deleted[10];
	struct sl_snap_file_ref rfull, rdelta;
	struct sl_snap_err err;
	uint64_t want[110] = { 0 }, sum = 0, rows = 0;

	sl_test_eal("(0-3)@(0-1)", NULL);
	cr_assert_not_null(mkdtemp(root));
	cr_assert_eq(sl_snap_chk_create(root, 1), 0);
	cr_assert_eq(sl_snap_chk_create(root, 2), 0);
	/* full: keys 0..99 with count key + 1 */
	for (uint64_t k = 0; k < 100; k++) {
		full[k][0] = k;
		full[k][1] = want[k] = k + 1;
	}
	/* delta: keys 0..9 deleted, key 5 back with 1000, key 50 now 5000,
	 * keys 100..109 new with 7 */
	for (uint64_t k = 0; k < 10; k++) {
		deleted[k] = k;
		want[k] = 0;
	}
	delta[0][0] = 5, delta[0][1] = want[5] = 1000;
	delta[1][0] = 50, delta[1][1] = want[50] = 5000;
	for (uint64_t k = 100; k < 110; k++) {
		delta[k - 98][0] = k;
		delta[k - 98][1] = want[k] = 7;
	}
	write_kstate(root, 1, 0, full, 100, NULL, 0, &rfull);
	write_kstate(root, 2, 1, delta, 12, deleted, 10, &rdelta);

	/* the generator had emitted everything it was asked for */
	struct sl_generator_conf g;
	gen_conf(&g, 1000, 0);
	uint64_t gen_blob[2] = { 1000, (uint64_t)INT64_MIN };
	struct sl_snap_metadata *m = sl_snap_meta_create(2, SL_SNAP_CHECKPOINT, "chain", 0, 0);
	int gop = sl_snap_meta_add_operator(m, "gen", 1, 128);
	int cop = sl_snap_meta_add_operator(m, "count", 1, 128);
	cr_assert(gop >= 0 && cop >= 0);
	cr_assert_eq(sl_snap_meta_add_blob(m, gop, 0, gen_blob, sizeof(gen_blob)), 0);
	cr_assert_eq(sl_snap_meta_add_file(m, cop, 0, &rfull), 0);
	cr_assert_eq(sl_snap_meta_add_file(m, cop, 0, &rdelta), 0);
	snprintf(chk, sizeof(chk), "%s/chk-2", root);
	cr_assert_eq(sl_snap_meta_write(chk, m, &err), 0, "%s", err.msg);
	sl_snap_meta_free(m);

	/* gen(1) -> count(1, final rows only) -> tally(1) */
	struct sl_job_config cfg;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	sl_job_config_defaults(&cfg);
	struct sl_job *job = sl_job_create("chain", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, 1);
	int ti = sl_job_add(job, "tally", &tally_ops, NULL, 1);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, ti, SL_PART_FORWARD, NULL), 0);
	memset(tally_out, 0, sizeof(tally_out));
	cr_assert_eq(sl_job_restore_from(job, chk), 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	for (uint64_t k = 0; k < 110; k++) {
		uint64_t row[2] = { k, want[k] };
		if (want[k] == 0)
			continue;
		sum += XXH3_64bits(row, sizeof(row));
		rows++;
	}
	cr_assert_eq(tally_out[0].records, rows, "%" PRIu64 " keys after the chain, got %" PRIu64,
		     rows, tally_out[0].records);
	cr_assert_eq(tally_out[0].checksum, sum, "the chain's final values");
	sl_job_free(job);
	rm_tree(root);
	sl_test_eal_fini();
}

/*
 * One full keyed-state file, large enough that the restore gives back
 * its memory while it loads it (more than 8 MiB, one user), restored into
 * `p` subtasks: every key's final count must come out as written (the
 * bulk load of a full file, dataplane/task_restore.c).  With a key listed
 * twice, the restore is refused naming the file.
 */
static void restore_full_file(uint32_t p, uint64_t n_keys, bool duplicate)
{
	char root[] = "/tmp/sl-restore-full-XXXXXX", chk[200];
	uint64_t (*entries)[2] = malloc(n_keys * sizeof(*entries));
	struct sl_snap_file_ref ref;
	struct sl_snap_err err;
	uint64_t sum = 0;

	cr_assert_not_null(entries);
	sl_test_eal("(0-3)@(0-1)", NULL);
	cr_assert_not_null(mkdtemp(root));
	cr_assert_eq(sl_snap_chk_create(root, 1), 0);
	for (uint64_t k = 0; k < n_keys; k++) {
		uint64_t row[2] = { k, 3 * k + 1 };

		entries[k][0] = k;
		entries[k][1] = 3 * k + 1;
		sum += XXH3_64bits(row, sizeof(row));
	}
	if (duplicate)
		entries[n_keys - 1][0] = n_keys / 2;
	write_kstate(root, 1, 0, entries, (unsigned)n_keys, NULL, 0, &ref);
	free(entries);

	struct sl_generator_conf g;
	gen_conf(&g, 1000, 0);
	uint64_t gen_blob[2] = { 1000, (uint64_t)INT64_MIN };
	struct sl_snap_metadata *m = sl_snap_meta_create(1, SL_SNAP_CHECKPOINT, "full", 0, 0);
	int gop = sl_snap_meta_add_operator(m, "gen", 1, 128);
	int cop = sl_snap_meta_add_operator(m, "count", 1, 128);
	cr_assert(gop >= 0 && cop >= 0);
	cr_assert_eq(sl_snap_meta_add_blob(m, gop, 0, gen_blob, sizeof(gen_blob)), 0);
	cr_assert_eq(sl_snap_meta_add_file(m, cop, 0, &ref), 0);
	snprintf(chk, sizeof(chk), "%s/chk-1", root);
	cr_assert_eq(sl_snap_meta_write(chk, m, &err), 0, "%s", err.msg);
	sl_snap_meta_free(m);

	/* gen(1) -> count(p, final rows only) -> tally(1) */
	struct sl_job_config cfg;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	sl_job_config_defaults(&cfg);
	struct sl_job *job = sl_job_create("full", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, p);
	int ti = sl_job_add(job, "tally", &tally_ops, NULL, 1);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, ti, SL_PART_REBALANCE, NULL), 0);
	memset(tally_out, 0, sizeof(tally_out));
	cr_assert_eq(sl_job_restore_from(job, chk), 0, "%s", sl_job_error(job));
	if (duplicate) {
		cr_assert_lt(sl_job_run(job), 0, "a key listed twice was accepted");
		cr_assert_not_null(strstr(sl_job_error(job), "lists a key twice"), "%s",
				   sl_job_error(job));
		cr_assert_not_null(strstr(sl_job_error(job), ref.path), "%s", sl_job_error(job));
	} else {
		cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
		cr_assert_eq(tally_out[0].records, n_keys, "%" PRIu64 " keys, got %" PRIu64,
			     n_keys, tally_out[0].records);
		cr_assert_eq(tally_out[0].checksum, sum, "the restored counts");
	}
	sl_job_free(job);
	rm_tree(root);
	sl_test_eal_fini();
}

Test(restore, large_full_file_loaded_exactly, .timeout = 120)
{
	restore_full_file(1, 600000, false); /* 15.6 MiB, one user */
}

Test(restore, large_full_file_rescaled_1_to_2, .timeout = 120)
{
	restore_full_file(2, 600000, false); /* two users of one file */
}

Test(restore, full_file_listing_a_key_twice_is_refused, .timeout = 60)
{
	restore_full_file(1, 1000, true);
}
