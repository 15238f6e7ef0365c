/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * window-aggregate as real jobs:
 *  - tumbling and sliding windows over the generator, compared with a
 *    reference the test computes from sl_generator_record(), at
 *    parallelism 1 and 2 (hash partitioning), with a sink check that no
 *    window is emitted before every source's watermark reached its end - 1;
 *  - scripted streams (records and watermarks in a fixed order, one worker
 *    lcore, so every step is processed before the next) for firing times,
 *    allowed lateness (update + re-emit), late drops and their counter,
 *    and windows fired by the drain at end of input.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/keygroup.h"
#include "sluice/operators.h"

/* ------------------------------------------------- collecting sink */

static struct {
	pthread_mutex_t lock;
	uint8_t *rows;
	size_t n, cap;
	uint16_t record_size;
	uint16_t end_off;	/* window_end in the rows, for the check */
	uint64_t early;		/* rows seen before their window could fire */
} got = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Watermark each source subtask has published (see spy_poll). */
static int64_t published_wm[4] = { INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN };
static unsigned n_sources = 1;

static int64_t min_published(void)
{
	int64_t m = INT64_MAX;

	for (unsigned i = 0; i < n_sources; i++) {
		/* acquire: pairs with the source's release store */
		int64_t w = __atomic_load_n(&published_wm[i], __ATOMIC_ACQUIRE);
		if (w < m)
			m = w;
	}
	return m;
}

static int collect_process(void *op, struct sl_task *t, unsigned input,
			   struct sl_batch *b)
{
	const int64_t wm = min_published();

	(void)op, (void)t, (void)input;
	pthread_mutex_lock(&got.lock);
	got.record_size = b->record_size;
	for (uint32_t i = 0; i < b->count; i++) {
		int64_t end;
		memcpy(&end, (uint8_t *)sl_batch_record(b, i) + got.end_off, 8);
		/* a window may fire only once every source's watermark reached
		 * end - 1: the sources published it before sending it */
		if (end - 1 > wm)
			got.early++;
	}
	if (got.n + b->count > got.cap) {
		got.cap = (got.n + b->count) * 2;
		got.rows = realloc(got.rows, got.cap * b->record_size);
	}
	memcpy(got.rows + got.n * b->record_size, b->data,
	       (size_t)b->count * b->record_size);
	got.n += b->count;
	pthread_mutex_unlock(&got.lock);
	return 0;
}

static const struct sl_operator_ops collect_sink = {
	.type = "test-collect",
	.min_inputs = 1,
	.max_inputs = 1,
	.sink = true,
	.process = collect_process,
};

static size_t collected(void)
{
	size_t n;

	pthread_mutex_lock(&got.lock);
	n = got.n;
	pthread_mutex_unlock(&got.lock);
	return n;
}

/* ------------------------------------------------- spies on built-ins */

static struct sl_operator_ops gen_spy;
static struct sl_operator_ops win_spy;
static uint64_t late_dropped_total;

/* The generator, publishing its watermark after each poll (before any
 * batch stamped with it can be sent) and "end of time" when exhausted. */
static int spy_poll(void *op, struct sl_task *t)
{
	int rc = sl_op_generator.poll(op, t);
	int64_t wm = rc == SL_SOURCE_END ? INT64_MAX : t->watermark;

	__atomic_store_n(&published_wm[t->info.index], wm, __ATOMIC_RELEASE);
	return rc;
}

/* The window operator, reporting its late-drop counter when it closes. */
static void spy_close(void *op, struct sl_task *t)
{
	__atomic_fetch_add(&late_dropped_total, t->late_dropped, __ATOMIC_RELAXED);
	sl_op_window_aggregate.close(op, t);
}

/* ... and counting the firings that stopped at the output budget. */
static uint64_t more_returns;

static int spy_on_watermark(void *op, struct sl_task *t, int64_t wm)
{
	int rc = sl_op_window_aggregate.on_watermark(op, t, wm);

	if (rc == SL_MORE)
		__atomic_fetch_add(&more_returns, 1, __ATOMIC_RELAXED);
	return rc;
}

static void make_spies(void)
{
	gen_spy = sl_op_generator;
	gen_spy.poll = spy_poll;
	win_spy = sl_op_window_aggregate;
	win_spy.close = spy_close;
	win_spy.on_watermark = spy_on_watermark;
}

/* ------------------------------------------------- output rows */

/* key u64, window_start, window_end, n u64, sv u32, mn i64 */
struct wrow {
	uint64_t key;
	int64_t start, end;
	uint64_t n;
	uint32_t sv;
	int64_t mn;
};

struct wlayout {
	uint16_t start, end, n, sv, mn, size;
};

static struct wlayout wlayout(void)
{
	struct sl_schema s = { 0 };

	sl_schema_add(&s, "key", SL_TYPE_U64, 0);
	sl_schema_add(&s, "window_start", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&s, "window_end", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&s, "n", SL_TYPE_U64, 0);
	sl_schema_add(&s, "sv", SL_TYPE_U32, 0);
	sl_schema_add(&s, "mn", SL_TYPE_I64, 0);
	return (struct wlayout){ s.fields[1].offset, s.fields[2].offset,
				 s.fields[3].offset, s.fields[4].offset,
				 s.fields[5].offset, s.record_size };
}

static struct wrow get_row(size_t i)
{
	const struct wlayout l = wlayout();
	const uint8_t *r = got.rows + i * got.record_size;
	struct wrow w;

	cr_assert_eq(got.record_size, l.size);
	memcpy(&w.key, r, 8);
	memcpy(&w.start, r + l.start, 8);
	memcpy(&w.end, r + l.end, 8);
	memcpy(&w.n, r + l.n, 8);
	memcpy(&w.sv, r + l.sv, 4);
	memcpy(&w.mn, r + l.mn, 8);
	return w;
}

static int cmp_row(const void *a, const void *b)
{
	const struct wrow *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

static void window_conf(struct sl_window_conf *wc, enum sl_window_kind kind,
			int64_t size, int64_t slide, int64_t lateness,
			const char *value_field)
{
	memset(wc, 0, sizeof(*wc));
	strcpy(wc->key, "key");
	strcpy(wc->ts_field, "ts");
	wc->kind = kind;
	wc->size_ns = size;
	wc->slide_ns = slide;
	wc->allowed_lateness_ns = lateness;
	wc->n_aggs = 3;
	wc->aggs[0] = (struct sl_agg_spec){ .fn = SL_AGG_COUNT, .as = "n" };
	wc->aggs[1] = (struct sl_agg_spec){ .fn = SL_AGG_SUM, .as = "sv" };
	wc->aggs[2] = (struct sl_agg_spec){ .fn = SL_AGG_MIN, .as = "mn" };
	strcpy(wc->aggs[1].field, value_field);
	strcpy(wc->aggs[2].field, "w");
}

/* ------------------------------------------------- generator streams */

static void gen_conf(struct sl_generator_conf *g, uint64_t count, uint64_t keys)
{
	sl_generator_conf_defaults(g);
	g->count = count;
	g->key_cardinality = keys;
	g->seed = 7;
	g->value_range = 100000;
	g->time_step_ns = 1000;
	g->max_out_of_orderness_ns = 50000; /* jitter up to 50 records */
	sl_schema_add(&g->schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g->schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&g->schema, "v", SL_TYPE_U32, 0);
	sl_schema_add(&g->schema, "w", SL_TYPE_I64, 0);
	strcpy(g->key_field, "key");
	strcpy(g->ts_field, "ts");
}

/* Reference rows: every (record, window) pair, sorted and folded. */
static struct wrow *reference(const struct sl_generator_conf *g,
			      const struct sl_window_conf *wc, size_t *n_out)
{
	const int64_t slide = wc->kind == SL_WINDOW_SLIDING ? wc->slide_ns : wc->size_ns;
	const size_t per = (size_t)((wc->size_ns + slide - 1) / slide);
	struct wrow *t = calloc(g->count * per, sizeof(*t));
	size_t n = 0, m = 0;
	uint8_t rec[64];

	for (uint64_t i = 0; i < g->count; i++) {
		uint64_t key;
		uint32_t v;
		int64_t w, ts = sl_generator_record(g, i, rec);

		memcpy(&key, rec, 8);
		memcpy(&v, rec + 16, 4);
		memcpy(&w, rec + 24, 8);
		/* every window [s, s + size) with s a multiple of slide */
		int64_t last = ts - ((ts % slide) + slide) % slide;
		for (int64_t s = last; s > ts - wc->size_ns; s -= slide)
			t[n++] = (struct wrow){ key, s, s + wc->size_ns, 1, v, w };
	}
	qsort(t, n, sizeof(*t), cmp_row);
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && cmp_row(&t[m - 1], &t[i]) == 0) {
			t[m - 1].n++;
			t[m - 1].sv += t[i].sv;
			if (t[i].mn < t[m - 1].mn)
				t[m - 1].mn = t[i].mn;
		} else {
			t[m++] = t[i];
		}
	}
	*n_out = m;
	return t;
}

static void run_generator_windows(const struct sl_generator_conf *g,
				  const struct sl_window_conf *wc,
				  uint32_t src_p, uint32_t win_p)
{
	struct sl_job *job = sl_job_create("windows", NULL);
	int src, win, sink;
	size_t n_ref;

	make_spies();
	n_sources = src_p;
	got.end_off = wlayout().end;
	src = sl_job_add(job, "gen", &gen_spy, g, src_p);
	win = sl_job_add(job, "win", &win_spy, wc, win_p);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	cr_assert(src >= 0 && win >= 0 && sink >= 0);
	cr_assert_eq(sl_job_connect(job, src, win, SL_PART_HASH, "key"), 0,
		     "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, win, sink, SL_PART_REBALANCE, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "job failed: %s", sl_job_error(job));

	struct wrow *ref = reference(g, wc, &n_ref);
	struct wrow *out = calloc(got.n ? got.n : 1, sizeof(*out));
	for (size_t i = 0; i < got.n; i++)
		out[i] = get_row(i);
	qsort(out, got.n, sizeof(*out), cmp_row);

	cr_expect_eq(got.early, 0, "%lu rows were emitted before the watermark passed their window",
		     (unsigned long)got.early);
	cr_expect_eq(late_dropped_total, 0);
	cr_assert_eq(got.n, n_ref, "rows %zu, reference %zu", got.n, n_ref);
	for (size_t i = 0; i < n_ref; i++) {
		cr_assert_eq(out[i].key, ref[i].key, "row %zu", i);
		cr_assert_eq(out[i].start, ref[i].start, "row %zu (key %lu)", i,
			     (unsigned long)ref[i].key);
		cr_assert_eq(out[i].end, ref[i].end, "row %zu", i);
		cr_assert_eq(out[i].n, ref[i].n, "row %zu: count", i);
		cr_assert_eq(out[i].sv, ref[i].sv, "row %zu: sum", i);
		cr_assert_eq(out[i].mn, ref[i].mn, "row %zu: min", i);
	}
	free(out);
	free(ref);
	sl_job_free(job);
}

Test(window, tumbling_p1_matches_reference, .timeout = 300)
{
	struct sl_generator_conf g;
	struct sl_window_conf wc;

	sl_test_eal("0-1", NULL);
	/* 100 ms windows of 100k records over 50k keys: each firing emits
	 * ~43k rows, more than one on_watermark call's budget (SL_MORE) */
	gen_conf(&g, 300000, 50000);
	window_conf(&wc, SL_WINDOW_TUMBLING, 100000000, 0, 0, "v");
	run_generator_windows(&g, &wc, 1, 1);
	cr_expect(more_returns > 0, "no firing was split (SL_MORE)");
	sl_test_eal_fini();
}

Test(window, tumbling_p2_hash_matches_reference, .timeout = 300)
{
	struct sl_generator_conf g;
	struct sl_window_conf wc;

	sl_test_eal("(0-2)@(0-1)", NULL);
	gen_conf(&g, 200000, 2000);
	window_conf(&wc, SL_WINDOW_TUMBLING, 1000000, 0, 0, "v");
	run_generator_windows(&g, &wc, 2, 2);
	sl_test_eal_fini();
}

Test(window, sliding_p1_matches_reference, .timeout = 300)
{
	struct sl_generator_conf g;
	struct sl_window_conf wc;

	sl_test_eal("0-1", NULL);
	gen_conf(&g, 100000, 300);
	/* 4 windows per record */
	window_conf(&wc, SL_WINDOW_SLIDING, 2000000, 500000, 0, "v");
	run_generator_windows(&g, &wc, 1, 1);
	sl_test_eal_fini();
}

Test(window, sliding_p2_hash_matches_reference, .timeout = 300)
{
	struct sl_generator_conf g;
	struct sl_window_conf wc;

	sl_test_eal("(0-2)@(0-1)", NULL);
	gen_conf(&g, 200000, 1000);
	/* size not a multiple of the slide: 3 or 4 windows per record */
	window_conf(&wc, SL_WINDOW_SLIDING, 10000000, 3000000, 0, "v");
	run_generator_windows(&g, &wc, 2, 2);
	sl_test_eal_fini();
}

/* ------------------------------------------------- scripted streams */

enum step_kind { S_REC, S_WM, S_SNAP };

struct step {
	enum step_kind kind;
	uint64_t key;
	int64_t ts; /* S_REC: event time; S_WM: the watermark */
	int64_t w;  /* S_REC: value of both v (as u32) and w */
};

#define REC(k, t, v) { S_REC, (k), (t), (v) }
#define WM(t) { S_WM, 0, (t), 0 }
#define SNAP { S_SNAP, 0, 0, 0 }

/* Idle polls between steps: each flushes the source and gives every
 * subtask of the (single) worker lcore a turn, so a step is fully
 * processed downstream before the next one starts. */
#define PAUSE_POLLS 20

struct script_conf {
	const struct step *steps;
	unsigned n;
};

struct script_src {
	const struct script_conf *c;
	unsigned i;
	unsigned pause;
};

static size_t snaps[16];
static unsigned n_snaps;

static int script_plan(void *conf, const struct sl_schema *const in[],
		       unsigned n, struct sl_schema *out, char *err, size_t len)
{
	(void)conf, (void)in, (void)n, (void)err, (void)len;
	/* the generator's layout: key, ts, v (u32), w (i64) */
	sl_schema_add(out, "key", SL_TYPE_U64, 0);
	sl_schema_add(out, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(out, "v", SL_TYPE_U32, 0);
	sl_schema_add(out, "w", SL_TYPE_I64, 0);
	return 0;
}

static int script_open(struct sl_task *t, void **op)
{
	struct script_src *s = calloc(1, sizeof(*s));

	s->c = t->info.conf;
	*op = s;
	return 0;
}

static int script_poll(void *op, struct sl_task *t)
{
	struct script_src *s = op;
	const struct step *st;
	int n = 0;

	if (s->pause > 0) {
		s->pause--;
		return 0;
	}
	if (s->i == s->c->n)
		return SL_SOURCE_END;
	s->pause = PAUSE_POLLS;
	st = &s->c->steps[s->i];
	switch (st->kind) {
	case S_REC:
		for (; s->i < s->c->n && s->c->steps[s->i].kind == S_REC; s->i++, n++) {
			uint8_t *r = sl_emit(t);
			st = &s->c->steps[s->i];
			memset(r, 0, 32);
			memcpy(r, &st->key, 8);
			uint32_t v = (uint32_t)st->w;
			memcpy(r + 8, &st->ts, 8);
			memcpy(r + 16, &v, 4);
			memcpy(r + 24, &st->w, 8);
		}
		return n;
	case S_WM:
		sl_task_set_watermark(t, st->ts);
		break;
	case S_SNAP:
		snaps[n_snaps++] = collected();
		break;
	}
	s->i++;
	return 0;
}

static void script_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

static const struct sl_operator_ops script_source = {
	.type = "test-script",
	.conf_size = sizeof(struct script_conf),
	.plan = script_plan,
	.open = script_open,
	.poll = script_poll,
	.close = script_close,
};

static void run_script(const struct step *steps, unsigned n,
		       const struct sl_window_conf *wc)
{
	struct script_conf sc = { steps, n };
	struct sl_job *job = sl_job_create("script", NULL);
	int src, win, sink;

	make_spies();
	n_sources = 1;
	/* the source publishes nothing: the SNAP steps check firing times */
	published_wm[0] = INT64_MAX;
	got.end_off = wlayout().end;
	src = sl_job_add(job, "src", &script_source, &sc, 1);
	win = sl_job_add(job, "win", &win_spy, wc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	cr_assert(src >= 0 && win >= 0 && sink >= 0);
	cr_assert_eq(sl_job_connect(job, src, win, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, win, sink, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "job failed: %s", sl_job_error(job));
	sl_job_free(job);
}

static void expect_rows(const struct wrow *exp, size_t n)
{
	cr_assert_eq(got.n, n, "rows %zu, expected %zu", got.n, n);
	for (size_t i = 0; i < n; i++) {
		struct wrow r = get_row(i);
		cr_expect(r.key == exp[i].key && r.start == exp[i].start &&
				  r.end == exp[i].end && r.n == exp[i].n &&
				  r.mn == exp[i].mn,
			  "row %zu: got (key %lu, [%ld, %ld), n %lu, min %ld), expected (key %lu, [%ld, %ld), n %lu, min %ld)",
			  i, (unsigned long)r.key, (long)r.start, (long)r.end,
			  (unsigned long)r.n, (long)r.mn,
			  (unsigned long)exp[i].key, (long)exp[i].start,
			  (long)exp[i].end, (unsigned long)exp[i].n,
			  (long)exp[i].mn);
	}
}

Test(window, tumbling_lateness_and_firing_times, .timeout = 120)
{
	/* size 10, allowed lateness 5: window [0,10) fires at wm 9, is
	 * cleaned up at wm 14; records for it before that re-emit it */
	static const struct step steps[] = {
		REC(4, -3, 1000), /* window [-10, 0) */
		REC(1, 1, 1),
		REC(1, 5, 2),
		REC(2, 7, 4),
		REC(1, 12, 8),	  /* window [10, 20) */
		WM(8),		  /* fires [-10, 0) only */
		SNAP,		  /* 1 */
		WM(9),		  /* fires [0, 10) */
		SNAP,		  /* 3 */
		REC(1, 3, 16),	  /* late, within lateness: update + re-emit */
		REC(3, 4, 32),	  /* new key in the fired window: emitted */
		SNAP,		  /* 5 */
		WM(14),		  /* cleans up [0, 10); [10, 20) not due */
		REC(1, 2, 64),	  /* beyond lateness: dropped (1) */
		REC(2, 15, 128),
		SNAP,		  /* 5 */
		WM(19),		  /* fires [10, 20) */
		SNAP,		  /* 7 */
		REC(2, 21, 256),  /* [20, 30): fired by the drain */
		REC(1, 9, 512),	  /* dropped (2) */
	};
	static const struct wrow exp[] = {
		{ 4, -10, 0, 1, 0, 1000 },
		{ 1, 0, 10, 2, 0, 1 },
		{ 2, 0, 10, 1, 0, 4 },
		{ 1, 0, 10, 3, 0, 1 },
		{ 3, 0, 10, 1, 0, 32 },
		{ 1, 10, 20, 1, 0, 8 },
		{ 2, 10, 20, 1, 0, 128 },
		{ 2, 20, 30, 1, 0, 256 },
	};
	static const uint32_t sums[] = { 1000, 3, 4, 19, 32, 8, 128, 256 };
	static const size_t exp_snaps[] = { 1, 3, 5, 5, 7 };
	struct sl_window_conf wc;

	sl_test_eal("0-1", NULL);
	window_conf(&wc, SL_WINDOW_TUMBLING, 10, 0, 5, "v");
	run_script(steps, RTE_DIM(steps), &wc);
	expect_rows(exp, RTE_DIM(exp));
	for (size_t i = 0; i < RTE_DIM(sums); i++)
		cr_expect_eq(get_row(i).sv, sums[i], "row %zu sum", i);
	cr_assert_eq(n_snaps, RTE_DIM(exp_snaps));
	for (unsigned i = 0; i < n_snaps; i++)
		cr_expect_eq(snaps[i], exp_snaps[i], "snapshot %u: %zu rows, expected %zu",
			     i, snaps[i], exp_snaps[i]);
	cr_expect_eq(late_dropped_total, 2);
	sl_test_eal_fini();
}

Test(window, sliding_lateness_per_window, .timeout = 120)
{
	/* size 10, slide 5, no lateness: a record is dropped only when all
	 * of its windows are late */
	static const struct step steps[] = {
		REC(1, 12, 1), /* [10, 20) and [5, 15) */
		REC(1, 7, 2),  /* [5, 15) and [0, 10) */
		WM(9),	       /* fires [0, 10) */
		SNAP,	       /* 1 */
		REC(1, 3, 4),  /* [0, 10) and [-5, 5): both late: dropped */
		REC(1, 8, 8),  /* [5, 15) open, [0, 10) late: kept */
		WM(13),
		SNAP,	       /* 1: [5, 15) needs wm 14 */
		WM(14),	       /* fires [5, 15) */
		SNAP,	       /* 2 */
		REC(1, 13, 16), /* [10, 20) open, [5, 15) late */
	};
	static const struct wrow exp[] = {
		{ 1, 0, 10, 1, 0, 2 },
		{ 1, 5, 15, 3, 0, 1 },
		{ 1, 10, 20, 2, 0, 1 },
	};
	static const uint32_t sums[] = { 2, 11, 17 };
	static const size_t exp_snaps[] = { 1, 1, 2 };
	struct sl_window_conf wc;

	sl_test_eal("0-1", NULL);
	window_conf(&wc, SL_WINDOW_SLIDING, 10, 5, 0, "v");
	run_script(steps, RTE_DIM(steps), &wc);
	expect_rows(exp, RTE_DIM(exp));
	for (size_t i = 0; i < RTE_DIM(sums); i++)
		cr_expect_eq(get_row(i).sv, sums[i], "row %zu sum", i);
	cr_assert_eq(n_snaps, RTE_DIM(exp_snaps));
	for (unsigned i = 0; i < n_snaps; i++)
		cr_expect_eq(snaps[i], exp_snaps[i], "snapshot %u", i);
	cr_expect_eq(late_dropped_total, 1);
	sl_test_eal_fini();
}

Test(window, hopping_gaps_are_not_late, .timeout = 120)
{
	/* size 5, slide 10: [0, 5), [10, 15), ...; ts 7 is in no window */
	static const struct step steps[] = {
		REC(9, 7, 1),
		REC(9, 2, 2),
		REC(9, 14, 4),
	};
	static const struct wrow exp[] = {
		{ 9, 0, 5, 1, 0, 2 },
		{ 9, 10, 15, 1, 0, 4 },
	};
	struct sl_window_conf wc;

	sl_test_eal("0-1", NULL);
	window_conf(&wc, SL_WINDOW_SLIDING, 5, 10, 0, "v");
	run_script(steps, RTE_DIM(steps), &wc);
	expect_rows(exp, RTE_DIM(exp));
	cr_expect_eq(late_dropped_total, 0);
	sl_test_eal_fini();
}

Test(window, drain_fires_every_window, .timeout = 120)
{
	/* no watermark at all: everything fires at the end of input */
	static const struct step steps[] = {
		REC(1, 100, 1), REC(2, 250, 2), REC(1, 110, 3), REC(1, 990, 4),
	};
	static const struct wrow exp[] = {
		{ 1, 100, 200, 2, 0, 1 },
		{ 2, 200, 300, 1, 0, 2 },
		{ 1, 900, 1000, 1, 0, 4 },
	};
	struct sl_window_conf wc;

	sl_test_eal("0-1", NULL);
	window_conf(&wc, SL_WINDOW_TUMBLING, 100, 0, 1000, "v");
	run_script(steps, RTE_DIM(steps), &wc);
	expect_rows(exp, RTE_DIM(exp));
	sl_test_eal_fini();
}

/* ------------------------------------------------- planning */

static int plan_window(const struct sl_window_conf *wc, struct sl_job **jobp)
{
	struct sl_generator_conf g;
	struct sl_job *job = sl_job_create("w", NULL);
	int src, win, sink;

	gen_conf(&g, 10, 10);
	sl_schema_add(&g.schema, "tag", SL_TYPE_BYTES, 60);
	src = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	win = sl_job_add(job, "win", &sl_op_window_aggregate, wc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	sl_job_connect(job, src, win, SL_PART_HASH, "key");
	sl_job_connect(job, win, sink, SL_PART_FORWARD, NULL);
	*jobp = job;
	return sl_job_plan(job);
}

#define EXPECT_PLAN_ERROR(wc, text)                                            \
	do {                                                                   \
		struct sl_job *j_;                                             \
		cr_expect_eq(plan_window(&(wc), &j_), -EINVAL);                \
		cr_expect(strstr(sl_job_error(j_), (text)) != NULL,            \
			  "message: %s", sl_job_error(j_));                    \
		sl_job_free(j_);                                               \
	} while (0)

Test(window, plan_errors, .timeout = 30)
{
	struct sl_window_conf wc;
	struct sl_job *job;

	window_conf(&wc, SL_WINDOW_TUMBLING, 1000, 0, 0, "v");
	strcpy(wc.ts_field, "time");
	EXPECT_PLAN_ERROR(wc, "timestamp field 'time' is not in the input schema (fields: key, ts, v, w, tag)");

	window_conf(&wc, SL_WINDOW_TUMBLING, 1000, 0, 0, "v");
	strcpy(wc.ts_field, "v");
	EXPECT_PLAN_ERROR(wc, "timestamp field 'v' is u32");

	window_conf(&wc, SL_WINDOW_TUMBLING, 1000, 0, 0, "v");
	strcpy(wc.key, "tag");
	EXPECT_PLAN_ERROR(wc, "key field 'tag' is 60 bytes");

	window_conf(&wc, SL_WINDOW_TUMBLING, 1000, 0, 0, "tag");
	EXPECT_PLAN_ERROR(wc, "sum needs a numeric field, but 'tag' is bytes");

	window_conf(&wc, SL_WINDOW_TUMBLING, 0, 0, 0, "v");
	EXPECT_PLAN_ERROR(wc, "window size must be > 0");

	window_conf(&wc, SL_WINDOW_SLIDING, 1000, 0, 0, "v");
	EXPECT_PLAN_ERROR(wc, "slide must be > 0");

	window_conf(&wc, SL_WINDOW_TUMBLING, 1000, 0, -1, "v");
	EXPECT_PLAN_ERROR(wc, "allowed lateness");

	/* a good one: key, window_start, window_end, then the aggregates */
	window_conf(&wc, SL_WINDOW_SLIDING, 1000, 100, 10, "v");
	cr_assert_eq(plan_window(&wc, &job), 0, "%s", sl_job_error(job));
	const struct sl_schema *out = sl_job_node_schema(job, 1);
	cr_assert_eq(out->nfields, 6);
	cr_expect_str_eq(out->fields[0].name, "key");
	cr_expect_str_eq(out->fields[1].name, "window_start");
	cr_expect_eq(out->fields[1].type, SL_TYPE_TIMESTAMP);
	cr_expect_str_eq(out->fields[2].name, "window_end");
	cr_expect_eq(out->fields[3].type, SL_TYPE_U64);
	cr_expect_eq(out->fields[4].type, SL_TYPE_U32);
	cr_expect_eq(out->fields[5].type, SL_TYPE_I64);
	sl_job_free(job);
}
