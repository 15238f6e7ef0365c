/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The runtime end to end with test-local operators: partitioners over real
 * channels, backpressure with a slow consumer, stop, failure reporting.
 * (Built-in pipelines are checked in test_e2e.c.)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_cycles.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/keygroup.h"

/* ---- test-local source: record i = {key = i % keys, seq = i, ts = i} ---- */

struct rec {
	uint64_t key;
	uint64_t seq;
	int64_t ts;
};

struct seq_conf {
	uint64_t count; /* total over subtasks; 0 = unbounded */
	uint64_t keys;
};

struct seq_src {
	uint64_t next; /* global index */
	uint64_t step;
	uint64_t count;
	uint64_t keys;
};

static int seq_plan(void *conf, const struct sl_schema *const in[], unsigned n,
		    struct sl_schema *out, char *err, size_t len)
{
	(void)conf, (void)in, (void)n, (void)err, (void)len;
	sl_schema_add(out, "key", SL_TYPE_U64, 0);
	sl_schema_add(out, "seq", SL_TYPE_U64, 0);
	sl_schema_add(out, "ts", SL_TYPE_TIMESTAMP, 0);
	return 0;
}

static int seq_open(struct sl_task *t, void **op)
{
	const struct seq_conf *c = t->info.conf;
	struct seq_src *s = calloc(1, sizeof(*s));

	s->next = t->info.index;
	s->step = t->info.parallelism;
	s->count = c->count;
	s->keys = c->keys;
	*op = s;
	return 0;
}

static int seq_poll(void *op, struct sl_task *t)
{
	struct seq_src *s = op;
	int n = 0;

	for (; n < 256; n++, s->next += s->step) {
		if (s->count && s->next >= s->count)
			return n ? n : SL_SOURCE_END;
		struct rec *r = sl_emit(t);
		r->key = s->next % s->keys;
		r->seq = s->next;
		r->ts = (int64_t)s->next;
	}
	sl_task_set_watermark(t, (int64_t)s->next - 1);
	return n;
}

static void seq_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

static const struct sl_operator_ops seq_source = {
	.type = "seq", .conf_size = sizeof(struct seq_conf),
	.plan = seq_plan, .open = seq_open, .poll = seq_poll, .close = seq_close,
};

/* ---- test-local sink: checks key ownership and per-source order ---- */

#define MAX_SUB 8

struct check_result {
	_Atomic uint64_t records[MAX_SUB];
	_Atomic uint64_t seq_sum[MAX_SUB];
	_Atomic uint64_t wrong_owner;
	_Atomic uint64_t out_of_order;
	_Atomic uint64_t ended_drain;
	_Atomic int64_t max_wm;
};

struct check_conf {
	struct check_result *res;
	uint32_t delay_us;
	int fail_after; /* fail on this batch; 0 = never */
	bool check_owner;
	uint32_t src_parallelism;
};

struct check_sink {
	const struct check_conf *c;
	uint64_t last_seq[MAX_SUB]; /* per source subtask (seq % p) */
	int batches;
};

static int check_open(struct sl_task *t, void **op)
{
	struct check_sink *k = calloc(1, sizeof(*k));
	k->c = t->info.conf;
	for (unsigned i = 0; i < MAX_SUB; i++)
		k->last_seq[i] = UINT64_MAX;
	*op = k;
	return 0;
}

static int check_process(void *op, struct sl_task *t, unsigned input,
			 struct sl_batch *b)
{
	struct check_sink *k = op;
	struct check_result *res = k->c->res;
	uint64_t sum = 0;

	(void)input;
	if (k->c->fail_after && ++k->batches == k->c->fail_after) {
		sl_task_error(t, "injected failure");
		return -EIO;
	}
	for (uint32_t i = 0; i < b->count; i++) {
		const struct rec *r = sl_batch_record(b, i);
		if (k->c->check_owner) {
			uint16_t kg = sl_key_group(sl_key_hash(&r->key, 8),
						   t->info.max_parallelism);
			if (kg < t->info.kg_first || kg >= t->info.kg_first + t->info.kg_count)
				res->wrong_owner++;
		}
		/* records of one source subtask arrive in order on its channel */
		uint32_t src = (uint32_t)(r->seq % k->c->src_parallelism);
		if (k->last_seq[src] != UINT64_MAX && r->seq <= k->last_seq[src])
			res->out_of_order++;
		k->last_seq[src] = r->seq;
		sum += r->seq;
	}
	res->records[t->info.index] += b->count;
	res->seq_sum[t->info.index] += sum;
	if (k->c->delay_us)
		rte_delay_us_sleep(k->c->delay_us);
	return 0;
}

static int check_watermark(void *op, struct sl_task *t, int64_t wm)
{
	struct check_sink *k = op;
	(void)t;
	int64_t cur = k->c->res->max_wm;
	if (wm > cur && wm != SL_WATERMARK_MAX)
		k->c->res->max_wm = wm;
	return 0;
}

static int check_end(void *op, struct sl_task *t, bool drain)
{
	struct check_sink *k = op;
	(void)t;
	if (drain)
		k->c->res->ended_drain++;
	return 0;
}

static void check_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

static const struct sl_operator_ops check_sink = {
	.type = "check-sink", .conf_size = sizeof(struct check_conf),
	.min_inputs = 1, .max_inputs = 1, .sink = true,
	.open = check_open, .process = check_process,
	.on_watermark = check_watermark, .on_end = check_end, .close = check_close,
};

static struct check_result *shared_result(void)
{
	/* Criterion runs the test in its own process; plain memory is shared
	 * by the lcore threads of that process.  One job at a time uses it:
	 * each call starts it afresh (nothing to free) */
	static struct check_result r;

	memset(&r, 0, sizeof(r));
	r.max_wm = INT64_MIN;
	return &r;
}

static uint64_t total(_Atomic uint64_t *a)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < MAX_SUB; i++)
		s += a[i];
	return s;
}

static struct sl_job *make_job(struct sl_job_config *cfg, uint64_t count,
			       uint32_t src_p, uint32_t sink_p,
			       enum sl_partition part, struct check_conf *cc)
{
	struct seq_conf sc = { .count = count, .keys = 1000 };
	struct sl_job *job = sl_job_create("t", cfg);

	cr_assert_not_null(job);
	int src = sl_job_add(job, "src", &seq_source, &sc, src_p);
	cc->src_parallelism = src_p;
	int snk = sl_job_add(job, "sink", &check_sink, cc, sink_p);
	cr_assert_geq(src, 0);
	cr_assert_geq(snk, 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, src, snk, part, "key"), 0, "%s", sl_job_error(job));
	return job;
}

static uint64_t seq_sum(uint64_t n)
{
	return n * (n - 1) / 2;
}

Test(pipeline, hash_partitioning_delivers_each_key_to_its_owner, .timeout = 120)
{
	sl_test_eal("(0-3)@(0-1)", NULL);
	struct sl_job_config cfg;
	struct check_conf cc = { .res = shared_result(), .check_owner = true };
	const uint64_t n = 2000000;

	sl_job_config_defaults(&cfg);
	struct sl_job *job = make_job(&cfg, n, 2, 3, SL_PART_HASH, &cc);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	cr_assert_eq(total(cc.res->records), n, "no record lost or duplicated");
	cr_assert_eq(total(cc.res->seq_sum), seq_sum(n));
	cr_assert_eq(cc.res->wrong_owner, 0, "every key reached the owner of its key group");
	cr_assert_eq(cc.res->out_of_order, 0, "per-channel order kept");
	cr_assert_eq(cc.res->ended_drain, 3, "every sink subtask saw a drained end");
	for (unsigned i = 0; i < 3; i++)
		cr_assert_gt(cc.res->records[i], n / 6, "subtask %u got a fair share", i);
	cr_log_info("max watermark seen %ld of %lu", (long)cc.res->max_wm, n);
	cr_assert_geq(cc.res->max_wm, (int64_t)n / 2, "watermarks travelled to the sinks (max %ld)", (long)cc.res->max_wm);
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(pipeline, forward_rebalance_broadcast, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	struct sl_job_config cfg;
	const uint64_t n = 300000;

	sl_job_config_defaults(&cfg);
	{
		struct check_conf cc = { .res = shared_result() };
		struct sl_job *job = make_job(&cfg, n, 2, 2, SL_PART_FORWARD, &cc);
		cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
		/* subtask i of the source emits seq = i mod 2 */
		cr_assert_eq(cc.res->records[0], n / 2);
		cr_assert_eq(cc.res->records[1], n / 2);
		cr_assert_eq(cc.res->seq_sum[1] - cc.res->seq_sum[0], n / 2,
			     "forward keeps subtask i -> subtask i");
		sl_job_free(job);
	}
	{
		struct check_conf cc = { .res = shared_result() };
		struct sl_job *job = make_job(&cfg, n, 1, 3, SL_PART_REBALANCE, &cc);
		cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
		cr_assert_eq(total(cc.res->records), n);
		cr_assert_eq(total(cc.res->seq_sum), seq_sum(n));
		for (unsigned i = 0; i < 3; i++)
			cr_assert_gt(cc.res->records[i], n / 4, "rebalance spreads batches");
		sl_job_free(job);
	}
	{
		struct check_conf cc = { .res = shared_result() };
		struct sl_job *job = make_job(&cfg, n, 1, 3, SL_PART_BROADCAST, &cc);
		cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
		for (unsigned i = 0; i < 3; i++) {
			cr_assert_eq(cc.res->records[i], n, "broadcast reaches every subtask");
			cr_assert_eq(cc.res->seq_sum[i], seq_sum(n));
		}
		sl_job_free(job);
	}
	sl_test_eal_fini();
}

Test(pipeline, slow_consumer_backpressures_without_loss, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	struct sl_job_config cfg;
	struct check_conf cc = { .res = shared_result(), .delay_us = 200 };
	const uint64_t n = 200000;

	sl_job_config_defaults(&cfg);
	cfg.ring_size = 4;
	cfg.batch_size = 64;
	struct sl_job *job = make_job(&cfg, n, 1, 1, SL_PART_FORWARD, &cc);
	cr_assert_eq(sl_job_place(job, 0, 0, 1), 0);
	cr_assert_eq(sl_job_place(job, 1, 0, 2), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));

	unsigned nt;
	const struct sl_task_stats *st = sl_job_task_stats(job, &nt);
	cr_assert_eq(nt, 2);
	cr_assert_eq(total(cc.res->records), n, "nothing dropped under backpressure");
	cr_assert_eq(total(cc.res->seq_sum), seq_sum(n));
	cr_assert_eq(cc.res->out_of_order, 0);
	cr_assert_gt(st[0].blocked_cycles, rte_get_tsc_hz() / 10,
		     "the source spent time blocked (%.3f s)",
		     (double)st[0].blocked_cycles / rte_get_tsc_hz());
	sl_job_free(job);
	sl_test_eal_fini();
}

struct stopper_arg {
	struct sl_job *job;
	struct check_result *res;
};

/* Stop once records reach the sink (a loaded machine may take a while to
 * start the job), with more still in flight behind them. */
static void *stopper(void *arg)
{
	struct stopper_arg *a = arg;

	for (int i = 0; i < 60000 && total(a->res->records) == 0; i++)
		usleep(1000);
	usleep(100 * 1000);
	sl_job_stop(a->job, false, false);
	return NULL;
}

Test(pipeline, stop_drains_in_flight_records, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	struct sl_job_config cfg;
	struct check_conf cc = { .res = shared_result() };
	pthread_t th;

	sl_job_config_defaults(&cfg);
	struct sl_job *job = make_job(&cfg, 0, 1, 1, SL_PART_FORWARD, &cc);
	struct stopper_arg sa = { job, cc.res };
	pthread_create(&th, NULL, stopper, &sa);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	pthread_join(th, NULL);

	unsigned nt;
	const struct sl_task_stats *st = sl_job_task_stats(job, &nt);
	cr_assert_gt(st[0].records_out, 0);
	cr_assert_eq(total(cc.res->records), st[0].records_out,
		     "every record the source emitted reached the sink");
	cr_assert_eq(total(cc.res->seq_sum), seq_sum(st[0].records_out));
	cr_assert_eq(cc.res->ended_drain, 0, "a stop is not a drained end");
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(pipeline, operator_failure_fails_the_job_with_its_message, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	struct sl_job_config cfg;
	struct check_conf cc = { .res = shared_result(), .fail_after = 10 };

	sl_job_config_defaults(&cfg);
	struct sl_job *job = make_job(&cfg, 0, 1, 1, SL_PART_FORWARD, &cc);
	cr_assert_eq(sl_job_run(job), -EIO);
	cr_assert_not_null(strstr(sl_job_error(job), "'sink'"), "%s", sl_job_error(job));
	cr_assert_not_null(strstr(sl_job_error(job), "injected failure"), "%s", sl_job_error(job));
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(pipeline, layout_naming_missing_lcore_is_refused, .timeout = 60)
{
	sl_test_eal("0-1", NULL);
	struct sl_job_config cfg;
	struct check_conf cc = { .res = shared_result() };

	sl_job_config_defaults(&cfg);
	struct sl_job *job = make_job(&cfg, 10, 1, 1, SL_PART_FORWARD, &cc);
	cr_assert_eq(sl_job_place(job, 1, 0, 5), 0);
	cr_assert_eq(sl_job_run(job), -EINVAL);
	cr_assert_not_null(strstr(sl_job_error(job), "lcore 5"), "%s", sl_job_error(job));
	cr_assert_eq(total(cc.res->records), 0, "nothing started");
	sl_job_free(job);
	sl_test_eal_fini();
}
