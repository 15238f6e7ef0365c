/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The deterministic generator: replay from any start index at any
 * parallelism, determinism, key distributions, the rate limit, watermarks,
 * and a full generator -> count sink job checked against
 * sl_generator_record().
 */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/operators.h"

static struct sl_job *new_job(const char *name)
{
	struct sl_job_config cfg;

	sl_job_config_defaults(&cfg);
	return sl_job_create(name, &cfg);
}

/* A schema that exercises every type, alignment padding and a tail pad. */
static void mixed_conf(struct sl_generator_conf *c)
{
	sl_generator_conf_defaults(c);
	cr_assert_eq(sl_schema_add(&c->schema, "key", SL_TYPE_U32, 0), 0);
	cr_assert_eq(sl_schema_add(&c->schema, "ts", SL_TYPE_TIMESTAMP, 0), 0);
	cr_assert_eq(sl_schema_add(&c->schema, "seq", SL_TYPE_U64, 0), 0);
	cr_assert_eq(sl_schema_add(&c->schema, "price", SL_TYPE_F64, 0), 0);
	cr_assert_eq(sl_schema_add(&c->schema, "tag", SL_TYPE_BYTES, 13), 0);
	cr_assert_eq(sl_schema_add(&c->schema, "qty", SL_TYPE_U64, 0), 0);
	cr_assert_eq(sl_schema_add(&c->schema, "small", SL_TYPE_U32, 0), 0);
	strcpy(c->key_field, "key");
	strcpy(c->ts_field, "ts");
	strcpy(c->seq_field, "seq");
	c->seed = 7;
	c->key_cardinality = 50;
	c->max_out_of_orderness_ns = 5000;
	c->time_step_ns = 1000;
}

static uint64_t expected_checksum(const struct sl_generator_conf *c,
				  uint64_t from, uint64_t to, int64_t *max_ts)
{
	uint8_t rec[1024];
	uint64_t sum = 0;

	*max_ts = INT64_MIN;
	for (uint64_t i = from; i < to; i++) {
		int64_t ts = sl_generator_record(c, i, rec);
		sum += XXH3_64bits(rec, c->schema.record_size);
		if (ts > *max_ts)
			*max_ts = ts;
	}
	return sum;
}

/* Check state shared by all count-sink subtasks. */
struct replay_check {
	const struct sl_generator_conf *conf;
	uint64_t start;
	uint32_t p;
	uint64_t next[8];    /* next index expected per subtask */
	atomic_int failures;
	char why[256];
};

static int replay_check_batch(struct sl_task *t, const struct sl_batch *b,
			      void *arg)
{
	struct replay_check *rc = arg;
	const struct sl_field *seq = sl_schema_find(&rc->conf->schema, "seq");
	uint32_t j = t->info.index; /* forward edge: sink j reads generator j */
	uint8_t want[1024];

	for (uint32_t r = 0; r < b->count; r++) {
		const uint8_t *rec = sl_batch_record(b, r);
		uint64_t i = (uint64_t)sl_field_get_i64(seq, rec);

		if (i != rc->next[j]) {
			snprintf(rc->why, sizeof(rc->why),
				 "subtask %u: index %lu, expected %lu", j,
				 (unsigned long)i, (unsigned long)rc->next[j]);
			atomic_fetch_add(&rc->failures, 1);
			return -EINVAL;
		}
		sl_generator_record(rc->conf, i, want);
		if (memcmp(rec, want, b->record_size) != 0) {
			snprintf(rc->why, sizeof(rc->why),
				 "record %lu differs from sl_generator_record",
				 (unsigned long)i);
			atomic_fetch_add(&rc->failures, 1);
			return -EINVAL;
		}
		rc->next[j] += rc->p;
	}
	return 0;
}

/* generator(p) -forward-> count-sink(p); returns sl_job_run()'s result. */
static int run_gen_job(const struct sl_generator_conf *gc, uint32_t p,
		       struct sl_count_sink_conf *cc, double *elapsed)
{
	struct sl_job *job = new_job("gen-test");
	int rc;

	cr_assert_not_null(job);
	int g = sl_job_add(job, "gen", &sl_op_generator, gc, p);
	int s = sl_job_add(job, "sink", &sl_op_count_sink, cc, p);
	cr_assert_geq(g, 0, "%s", sl_job_error(job));
	cr_assert_geq(s, 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, g, s, SL_PART_FORWARD, NULL), 0, "%s",
		     sl_job_error(job));
	rc = sl_job_run(job);
	cr_expect_eq(rc, 0, "job failed: %s", sl_job_error(job));
	if (elapsed)
		*elapsed = sl_job_elapsed(job);
	sl_job_free(job);
	return rc;
}

Test(generator, replay_from_any_offset_any_parallelism, .timeout = 120)
{
	static const uint64_t starts[] = {0, 1, 777, 5001};
	struct sl_generator_conf c;

	sl_test_eal("0-1", NULL);
	mixed_conf(&c);
	c.count = 6000;
	for (uint32_t p = 1; p <= 3; p++) {
		for (unsigned s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
			struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
			struct replay_check chk = {.conf = &c, .start = starts[s], .p = p};
			struct sl_count_sink_conf cc = {
				.result = &res, .check = replay_check_batch,
				.check_arg = &chk};
			int64_t max_ts;

			c.start_index = starts[s];
			for (uint32_t j = 0; j < p; j++) /* first i >= start, i % p == j */
				for (chk.next[j] = starts[s]; chk.next[j] % p != j;)
					chk.next[j]++;
			cr_assert_eq(run_gen_job(&c, p, &cc, NULL), 0);
			cr_assert_eq(chk.failures, 0, "p=%u start=%lu: %s", p,
				     (unsigned long)starts[s], chk.why);
			cr_assert_eq(res.records, c.count - starts[s],
				     "p=%u start=%lu: every index in [start, count) exactly once",
				     p, (unsigned long)starts[s]);
			for (uint32_t j = 0; j < p; j++)
				cr_assert_geq(chk.next[j], c.count,
					      "subtask %u stopped early", j);
			cr_assert_eq(res.checksum,
				     expected_checksum(&c, starts[s], c.count, &max_ts));
		}
	}
	sl_test_eal_fini();
}

Test(generator, record_is_pure_function_of_seed_and_index, .timeout = 60)
{
	struct sl_generator_conf c, d;
	uint8_t a[256], b[256];

	mixed_conf(&c);
	d = c;
	for (uint64_t i = 0; i < 1000; i++) {
		memset(a, 0xAA, sizeof(a));
		memset(b, 0x55, sizeof(b));
		int64_t ta = sl_generator_record(&c, i, a);
		int64_t tb = sl_generator_record(&d, i, b);
		cr_assert_eq(ta, tb);
		cr_assert_eq(memcmp(a, b, c.schema.record_size), 0,
			     "record %lu (padding included) is reproducible",
			     (unsigned long)i);
		const struct sl_field *seq = sl_schema_find(&c.schema, "seq");
		const struct sl_field *ts = sl_schema_find(&c.schema, "ts");
		cr_assert_eq(sl_field_get_i64(seq, a), (int64_t)i);
		int64_t nominal = c.start_time_ns + (int64_t)i * c.time_step_ns;
		cr_assert_eq(sl_field_get_i64(ts, a), ta);
		cr_assert(ta <= nominal && ta > nominal - c.max_out_of_orderness_ns,
			  "jitter within [0, max_out_of_orderness)");
		double price = sl_field_get_f64(sl_schema_find(&c.schema, "price"), a);
		cr_assert(price >= 0 && price < 1.0);
		cr_assert_lt(sl_field_get_i64(sl_schema_find(&c.schema, "qty"), a),
			     (int64_t)c.value_range);
	}
	/* a different seed gives different records */
	d.seed = c.seed + 1;
	unsigned same = 0;
	for (uint64_t i = 0; i < 100; i++) {
		sl_generator_record(&c, i, a);
		sl_generator_record(&d, i, b);
		same += memcmp(a, b, c.schema.record_size) == 0;
	}
	cr_assert_eq(same, 0);
}

Test(generator, deterministic_across_runs, .timeout = 120)
{
	struct sl_generator_conf c;
	uint64_t sums[2];

	sl_test_eal("0-1", NULL);
	mixed_conf(&c);
	c.count = 20000;
	for (int run = 0; run < 2; run++) {
		struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
		struct sl_count_sink_conf cc = {.result = &res};
		cr_assert_eq(run_gen_job(&c, 2, &cc, NULL), 0);
		cr_assert_eq(res.records, c.count);
		sums[run] = res.checksum;
	}
	cr_assert_eq(sums[0], sums[1]);
	sl_test_eal_fini();
}

Test(generator, uniform_keys_cover_all, .timeout = 60)
{
	struct sl_generator_conf c;
	unsigned hist[10] = {0};
	uint8_t rec[256];

	mixed_conf(&c);
	c.key_cardinality = 10;
	const struct sl_field *key = sl_schema_find(&c.schema, "key");
	for (uint64_t i = 0; i < 20000; i++) {
		sl_generator_record(&c, i, rec);
		int64_t k = sl_field_get_i64(key, rec);
		cr_assert(k >= 0 && k < 10, "key %ld in range", (long)k);
		hist[k]++;
	}
	for (unsigned k = 0; k < 10; k++)
		cr_assert(hist[k] > 1600 && hist[k] < 2400,
			  "key %u drawn %u times of 20000 (uniform expects 2000)",
			  k, hist[k]);
}

Test(generator, zipf_skew_favours_small_keys, .timeout = 60)
{
	struct sl_generator_conf c;
	static unsigned hist[100];
	uint8_t rec[256];

	mixed_conf(&c);
	c.key_cardinality = 100;
	c.key_skew = 1.2;
	const struct sl_field *key = sl_schema_find(&c.schema, "key");
	for (uint64_t i = 0; i < 200000; i++) {
		sl_generator_record(&c, i, rec);
		int64_t k = sl_field_get_i64(key, rec);
		cr_assert(k >= 0 && k < 100);
		hist[k]++;
	}
	cr_assert_gt(hist[0], 20 * (hist[99] + 1),
		     "key 0 (%u) far more frequent than key 99 (%u)", hist[0],
		     hist[99]);
	for (unsigned k = 1; k < 100; k += 10)
		cr_assert_geq(hist[k - 1] + 200, hist[k],
			      "frequency does not grow with the key");
	cr_assert_gt(hist[99], 0, "the tail is still reached");

	/* skew exactly 1 takes the logarithmic branch */
	memset(hist, 0, sizeof(hist));
	c.key_skew = 1.0;
	for (uint64_t i = 0; i < 100000; i++) {
		sl_generator_record(&c, i, rec);
		hist[sl_field_get_i64(key, rec)]++;
	}
	cr_assert_gt(hist[0], 10 * hist[99]);
}

Test(generator, bytes_key_and_f64_key, .timeout = 60)
{
	struct sl_generator_conf c;
	uint8_t rec[256];

	sl_generator_conf_defaults(&c);
	sl_schema_add(&c.schema, "k", SL_TYPE_BYTES, 3);
	sl_schema_add(&c.schema, "kf", SL_TYPE_F64, 0);
	strcpy(c.key_field, "k");
	c.key_cardinality = 1000;
	for (uint64_t i = 0; i < 1000; i++) {
		sl_generator_record(&c, i, rec);
		uint32_t k = rec[0] | rec[1] << 8 | rec[2] << 16;
		cr_assert_lt(k, 1000, "bytes key is the key, little-endian");
	}
	/* 3 bytes cannot hold 2^24 + 1 keys: plan refuses */
	char err[256] = "";
	struct sl_schema out = {0};
	c.key_cardinality = (1u << 24) + 1;
	cr_assert_lt(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0);
	cr_assert(strstr(err, "'k'") != NULL, "message names the field: %s", err);
}

Test(generator, plan_rejects_bad_confs, .timeout = 60)
{
	struct sl_generator_conf c;
	struct sl_schema out;
	char err[256];

	mixed_conf(&c);
	c.key_cardinality = 0;
	err[0] = '\0';
	cr_assert_lt(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0);
	cr_assert(strstr(err, "key_cardinality") != NULL, "%s", err);

	mixed_conf(&c);
	strcpy(c.key_field, "nope");
	cr_assert_lt(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0);
	cr_assert(strstr(err, "'nope'") != NULL, "%s", err);

	mixed_conf(&c);
	strcpy(c.ts_field, "price");
	cr_assert_lt(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0);
	cr_assert(strstr(err, "timestamp or i64") != NULL, "%s", err);

	mixed_conf(&c);
	strcpy(c.seq_field, "tag");
	cr_assert_lt(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0);
	cr_assert(strstr(err, "numeric") != NULL, "%s", err);

	mixed_conf(&c);
	c.key_skew = -1;
	cr_assert_lt(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0);

	/* a good conf plans, resolves the roles and outputs its schema */
	mixed_conf(&c);
	memset(&out, 0, sizeof(out));
	cr_assert_eq(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(out.record_size, c.schema.record_size);
	cr_assert_eq(c.key_idx, 0);
	cr_assert_eq(c.ts_idx, 1);
	cr_assert_eq(c.seq_idx, 2);

	/* no schema: the default one, with its roles */
	sl_generator_conf_defaults(&c);
	memset(&out, 0, sizeof(out));
	cr_assert_eq(sl_op_generator.plan(&c, NULL, 0, &out, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(sl_schema_find(&out, "key"));
	cr_assert_not_null(sl_schema_find(&out, "ts"));
	cr_assert_str_eq(c.ts_field, "ts");
}

Test(generator, rate_limit_is_respected, .timeout = 120)
{
	struct sl_generator_conf c;
	struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
	struct sl_count_sink_conf cc = {.result = &res};
	struct timespec t0, t1;

	sl_test_eal("0-1", NULL);
	mixed_conf(&c);
	c.count = 200000;
	c.rate = 1e6;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(run_gen_job(&c, 2, &cc, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_eq(res.records, c.count);
	/* 0.2 s nominal; loose bounds: this is not a timing benchmark */
	cr_assert_geq(s, 0.15, "200k records at 1M/s took only %.3f s", s);
	cr_assert_lt(s, 30.0, "rate-limited run took %.3f s", s);
	sl_test_eal_fini();
}

Test(generator, job_count_checksum_and_watermark, .timeout = 120)
{
	struct sl_generator_conf c;
	struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
	struct sl_count_sink_conf cc = {.result = &res};
	int64_t max_ts;

	sl_test_eal("0-1", NULL);
	mixed_conf(&c);
	c.count = 100003; /* not a multiple of the parallelism or batch size */
	cr_assert_eq(run_gen_job(&c, 2, &cc, NULL), 0);
	uint64_t want = expected_checksum(&c, 0, c.count, &max_ts);
	cr_assert_eq(res.records, c.count);
	cr_assert_eq(res.checksum, want, "checksum over the job's records equals the one computed from sl_generator_record");
	cr_assert_geq(res.batches, c.count / 256);
	/* The watermark is largest timestamp - max out-of-orderness.  The
	 * runtime stamps a source's last batch with the end-of-event-time
	 * watermark (not counted), so the largest counted one belongs to an
	 * earlier batch: at most two batches of 256 records (p = 2) behind. */
	int64_t final_wm = max_ts - c.max_out_of_orderness_ns;
	cr_assert_leq(res.max_watermark, final_wm);
	cr_assert_geq(res.max_watermark, final_wm - 2 * 2 * 256 * c.time_step_ns,
		      "watermark %ld trails the final %ld by too much",
		      (long)res.max_watermark, (long)final_wm);
	sl_test_eal_fini();
}

/* Sink-side check: no record is late with respect to the watermark the
 * generator announced before it (ts > watermark of earlier batches). */
struct late_check {
	int64_t wm[4];
	const struct sl_field *ts;
	atomic_int late;
};

static int late_check_batch(struct sl_task *t, const struct sl_batch *b, void *arg)
{
	struct late_check *lc = arg;
	uint32_t j = t->info.index;

	for (uint32_t r = 0; r < b->count; r++)
		if (sl_field_get_i64(lc->ts, sl_batch_record(b, r)) <= lc->wm[j])
			atomic_fetch_add(&lc->late, 1);
	if (b->watermark > lc->wm[j])
		lc->wm[j] = b->watermark;
	return 0;
}

Test(generator, out_of_order_records_are_never_late, .timeout = 120)
{
	struct sl_generator_conf c;
	struct late_check lc = {.wm = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN}};
	struct sl_count_sink_conf cc = {.check = late_check_batch, .check_arg = &lc};

	sl_test_eal("0-1", NULL);
	mixed_conf(&c);
	c.count = 50000;
	c.max_out_of_orderness_ns = 20000; /* 20 records' worth of jitter */
	lc.ts = sl_schema_find(&c.schema, "ts");
	cr_assert_eq(run_gen_job(&c, 2, &cc, NULL), 0);
	cr_assert_eq(lc.late, 0, "records behind the watermark");
	sl_test_eal_fini();
}
