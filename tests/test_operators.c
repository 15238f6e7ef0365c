/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The stateless built-in operators (project, filter, udf) and the keyed
 * rolling aggregate, run as real jobs: a test-local table source (records
 * the test wrote) or the generator, and a test-local sink that collects
 * every row so the test can compare with a reference it computes itself.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/keygroup.h"
#include "sluice/operators.h"

/* ------------------------------------------------- collecting sink */

struct collected {
	pthread_mutex_t lock;
	uint8_t *rows;
	size_t n, cap;
	uint16_t record_size;
	uint64_t batches;
	struct rte_mempool *pools[4]; /* distinct pools the batches came from */
	unsigned n_pools;
};

static struct collected got = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int collect_process(void *op, struct sl_task *t, unsigned input,
			   struct sl_batch *b)
{
	(void)op, (void)t, (void)input;
	pthread_mutex_lock(&got.lock);
	got.record_size = b->record_size;
	got.batches++;
	bool seen = false;
	for (unsigned i = 0; i < got.n_pools; i++)
		seen |= got.pools[i] == b->pool;
	if (!seen && got.n_pools < 4)
		got.pools[got.n_pools++] = b->pool;
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

static const uint8_t *row(size_t i)
{
	return got.rows + i * got.record_size;
}

/* ------------------------------------------------- table source */

/* Emits the rows of a table the test filled; subtask j of p emits rows
 * j, j+p, ...  Records where the source's batches came from. */
struct table_conf {
	struct sl_schema schema;
	const uint8_t *rows;
	uint64_t n;
};

struct table_src {
	const struct table_conf *c;
	uint64_t next, step;
};

static struct rte_mempool *source_pool;

static int table_plan(void *conf, const struct sl_schema *const in[],
		      unsigned n, struct sl_schema *out, char *err, size_t len)
{
	(void)in, (void)n, (void)err, (void)len;
	*out = ((struct table_conf *)conf)->schema;
	return 0;
}

static int table_open(struct sl_task *t, void **op)
{
	struct table_src *s = calloc(1, sizeof(*s));

	s->c = t->info.conf;
	s->next = t->info.index;
	s->step = t->info.parallelism;
	*op = s;
	return 0;
}

static int table_poll(void *op, struct sl_task *t)
{
	struct table_src *s = op;
	const uint16_t rs = s->c->schema.record_size;
	int n = 0;

	for (; n < 100 && s->next < s->c->n; n++, s->next += s->step)
		memcpy(sl_emit(t), s->c->rows + s->next * rs, rs);
	if (t->out != NULL)
		source_pool = t->out->pool;
	return n ? n : SL_SOURCE_END;
}

static void table_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

static const struct sl_operator_ops table_source = {
	.type = "test-table",
	.conf_size = sizeof(struct table_conf),
	.plan = table_plan,
	.open = table_open,
	.poll = table_poll,
	.close = table_close,
};

/* Schema of the table tests: a u64, b u32, c i64, d bytes[5], e f64. */
struct trow {
	uint64_t a;
	uint32_t b;
	uint32_t pad_;
	int64_t c;
	uint8_t d[5];
	uint8_t pad2_[3];
	double e;
};

static void table_schema(struct sl_schema *s)
{
	memset(s, 0, sizeof(*s));
	cr_assert_eq(sl_schema_add(s, "a", SL_TYPE_U64, 0), 0);
	cr_assert_eq(sl_schema_add(s, "b", SL_TYPE_U32, 0), 0);
	cr_assert_eq(sl_schema_add(s, "c", SL_TYPE_I64, 0), 0);
	cr_assert_eq(sl_schema_add(s, "d", SL_TYPE_BYTES, 5), 0);
	cr_assert_eq(sl_schema_add(s, "e", SL_TYPE_F64, 0), 0);
	cr_assert_eq(s->record_size, sizeof(struct trow));
	cr_assert_eq(s->fields[3].offset, offsetof(struct trow, d));
	cr_assert_eq(s->fields[4].offset, offsetof(struct trow, e));
}

#define TROWS 1000

static struct trow *make_table(void)
{
	struct trow *t = calloc(TROWS, sizeof(*t));

	for (unsigned i = 0; i < TROWS; i++) {
		t[i].a = (uint64_t)i * 0x9E3779B97F4A7C15ull;
		t[i].b = i % 37;
		t[i].c = (int64_t)i - 500;
		for (unsigned k = 0; k < 5; k++)
			t[i].d[k] = (uint8_t)(i + k);
		t[i].e = i / 8.0;
	}
	/* exact-integer edge cases for the filter: around 2^53 and 2^63 */
	t[0].a = 9007199254740992ull;
	t[1].a = 9007199254740993ull;
	t[2].a = 9007199254740994ull;
	t[3].a = 9223372036854775808ull;
	t[4].a = 9223372036854775807ull;
	return t;
}

/* Build and run source -> op -> collect; returns sl_job_run's result. */
static int run_one(const struct table_conf *tc, const struct sl_operator_ops *ops,
		   const void *conf, uint32_t parallelism)
{
	struct sl_job *job = sl_job_create("ops", NULL);
	int src, op, sink, rc;

	cr_assert_not_null(job);
	src = sl_job_add(job, "src", &table_source, tc, 1);
	op = sl_job_add(job, "op", ops, conf, parallelism);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	cr_assert(src >= 0 && op >= 0 && sink >= 0);
	cr_assert_eq(sl_job_connect(job, src, op, parallelism == 1 ?
				    SL_PART_FORWARD : SL_PART_REBALANCE, NULL), 0);
	cr_assert_eq(sl_job_connect(job, op, sink, SL_PART_REBALANCE, NULL), 0);
	rc = sl_job_run(job);
	cr_expect_eq(rc, 0, "job failed: %s", sl_job_error(job));
	sl_job_free(job);
	return rc;
}

/* ------------------------------------------------- project */

Test(project, reorder_rename_exact, .timeout = 120)
{
	struct table_conf tc = { .n = TROWS };
	struct trow *tab = make_table();
	struct sl_project_conf pc = { .n = 3 };

	sl_test_eal("0-1", NULL);
	table_schema(&tc.schema);
	tc.rows = (const uint8_t *)tab;
	strcpy(pc.fields[0], "d");
	strcpy(pc.as[0], "tag");
	strcpy(pc.fields[1], "b");
	strcpy(pc.fields[2], "c");
	strcpy(pc.as[2], "delta");
	cr_assert_eq(run_one(&tc, &sl_op_project, &pc, 1), 0);

	/* out: tag bytes[5] @0, b u32 @8, delta i64 @16; 24 bytes */
	cr_assert_eq(got.record_size, 24);
	cr_assert_eq(got.n, TROWS);
	for (size_t i = 0; i < got.n; i++) {
		const uint8_t *r = row(i);
		uint32_t b;
		int64_t c;
		static const uint8_t zero[3];

		memcpy(&b, r + 8, 4);
		memcpy(&c, r + 16, 8);
		/* one source subtask, forward edge: order is preserved */
		cr_assert_eq(memcmp(r, tab[i].d, 5), 0, "row %zu tag", i);
		cr_assert_eq(memcmp(r + 5, zero, 3), 0, "row %zu padding", i);
		cr_assert_eq(b, tab[i].b, "row %zu b", i);
		cr_assert_eq(memcmp(r + 12, zero, 3), 0, "row %zu padding", i);
		cr_assert_eq(c, tab[i].c, "row %zu delta", i);
	}
	free(tab);
	sl_test_eal_fini();
}

Test(project, same_layout_is_forwarded, .timeout = 120)
{
	struct table_conf tc = { .n = TROWS };
	struct trow *tab = make_table();
	struct sl_project_conf pc = { .n = 5 };
	const char *names[] = { "a", "b", "c", "d", "e" };

	sl_test_eal("0-1", NULL);
	table_schema(&tc.schema);
	tc.rows = (const uint8_t *)tab;
	for (unsigned i = 0; i < 5; i++)
		strcpy(pc.fields[i], names[i]);
	strcpy(pc.as[4], "score"); /* a rename keeps the layout */
	cr_assert_eq(run_one(&tc, &sl_op_project, &pc, 1), 0);
	cr_assert_eq(got.n, TROWS);
	cr_assert_eq(memcmp(got.rows, tab, sizeof(*tab) * TROWS), 0);
	/* zero-copy: every batch the sink saw is one the source filled */
	cr_assert_eq(got.n_pools, 1);
	cr_assert_eq(got.pools[0], source_pool);
	free(tab);
	sl_test_eal_fini();
}

Test(project, plan_errors, .timeout = 30)
{
	struct table_conf tc = { .n = 0 };
	struct sl_project_conf pc = { .n = 2 };
	struct sl_job *job = sl_job_create("p", NULL);
	int src, op, sink;

	table_schema(&tc.schema);
	strcpy(pc.fields[0], "a");
	strcpy(pc.fields[1], "cc");
	src = sl_job_add(job, "src", &table_source, &tc, 1);
	op = sl_job_add(job, "proj", &sl_op_project, &pc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	sl_job_connect(job, src, op, SL_PART_FORWARD, NULL);
	sl_job_connect(job, op, sink, SL_PART_FORWARD, NULL);
	cr_assert_eq(sl_job_plan(job), -EINVAL);
	cr_expect(strstr(sl_job_error(job),
			 "field 'cc' is not in the input schema (fields: a, b, c, d, e)") != NULL,
		  "message: %s", sl_job_error(job));
	cr_expect(strstr(sl_job_error(job), "'proj'") != NULL);
	sl_job_free(job);

	/* duplicate output name */
	job = sl_job_create("p", NULL);
	strcpy(pc.fields[1], "b");
	strcpy(pc.as[1], "a");
	src = sl_job_add(job, "src", &table_source, &tc, 1);
	op = sl_job_add(job, "proj", &sl_op_project, &pc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	sl_job_connect(job, src, op, SL_PART_FORWARD, NULL);
	sl_job_connect(job, op, sink, SL_PART_FORWARD, NULL);
	cr_assert_eq(sl_job_plan(job), -EINVAL);
	cr_expect(strstr(sl_job_error(job), "'a' appears twice") != NULL,
		  "message: %s", sl_job_error(job));
	sl_job_free(job);
}

/* ------------------------------------------------- filter */

static bool ref_cmp(long double x, enum sl_cmp cmp, long double v)
{
	switch (cmp) {
	case SL_CMP_EQ: return x == v;
	case SL_CMP_NE: return x != v;
	case SL_CMP_LT: return x < v;
	case SL_CMP_LE: return x <= v;
	case SL_CMP_GT: return x > v;
	case SL_CMP_GE: return x >= v;
	}
	return false;
}

struct pred_case {
	const char *field;
	enum sl_cmp cmp;
	double value;
};

/* Run a filter with the given predicates and compare with a reference
 * evaluated in long double (exact for every 64-bit integer). */
static void check_filter(const struct pred_case *pc, unsigned n)
{
	struct table_conf tc = { .n = TROWS };
	struct trow *tab = make_table();
	struct sl_filter_conf fc = { .n = n };
	size_t expect = 0, k = 0;

	table_schema(&tc.schema);
	tc.rows = (const uint8_t *)tab;
	for (unsigned i = 0; i < n; i++) {
		strcpy(fc.pred[i].field, pc[i].field);
		fc.pred[i].cmp = pc[i].cmp;
		fc.pred[i].value = pc[i].value;
	}
	cr_assert_eq(run_one(&tc, &sl_op_filter, &fc, 1), 0);
	for (unsigned r = 0; r < TROWS; r++) {
		bool pass = true;
		for (unsigned i = 0; i < n; i++) {
			long double x = 0;
			switch (pc[i].field[0]) {
			case 'a': x = tab[r].a; break;
			case 'b': x = tab[r].b; break;
			case 'c': x = tab[r].c; break;
			case 'e': x = tab[r].e; break;
			}
			pass &= ref_cmp(x, pc[i].cmp, pc[i].value);
		}
		if (!pass)
			continue;
		expect++;
		cr_assert(k < got.n, "too few rows");
		cr_assert_eq(memcmp(row(k), &tab[r], sizeof(*tab)), 0,
			     "row %zu should be table row %u", k, r);
		k++;
	}
	cr_assert_eq(got.n, expect, "rows %zu, expected %zu", got.n, expect);
	free(tab);
}

Test(filter, conjunction_exact, .timeout = 120)
{
	const struct pred_case p[] = {
		{ "b", SL_CMP_GE, 10 },
		{ "c", SL_CMP_LT, 250.5 },
		{ "e", SL_CMP_NE, 12.5 },
	};

	sl_test_eal("0-1", NULL);
	check_filter(p, 3);
	cr_assert(got.n > 100 && got.n < TROWS, "rows %zu", got.n);
	sl_test_eal_fini();
}

Test(filter, large_integers_compare_exactly, .timeout = 120)
{
	/* as doubles, 2^53 + 1 == 2^53: a double compare would drop row 1 */
	const struct pred_case p[] = {
		{ "a", SL_CMP_GT, 9007199254740992.0 },
		{ "a", SL_CMP_LT, 9223372036854775808.0 },
	};

	sl_test_eal("0-1", NULL);
	check_filter(p, 2);
	sl_test_eal_fini();
}

Test(filter, equality_and_bounds, .timeout = 120)
{
	const struct pred_case p[] = {
		{ "c", SL_CMP_LE, -0.5 },   /* c <= -1 */
		{ "c", SL_CMP_GT, -101.0 }, /* c >= -100 */
		{ "b", SL_CMP_NE, 3 },
	};

	sl_test_eal("0-1", NULL);
	check_filter(p, 3);
	/* c in [-100, -1]: rows 400..499; b == 3 at 407, 444, 481 */
	cr_assert_eq(got.n, 97, "rows %zu", got.n);
	sl_test_eal_fini();
}

Test(filter, all_pass_is_zero_copy, .timeout = 120)
{
	const struct pred_case p[] = { { "b", SL_CMP_LT, 1e9 } };

	sl_test_eal("0-1", NULL);
	check_filter(p, 1);
	cr_assert_eq(got.n, TROWS);
	cr_assert_eq(got.n_pools, 1);
	cr_assert_eq(got.pools[0], source_pool,
		     "batches were copied although every record passed");
	sl_test_eal_fini();
}

Test(filter, partial_pass_is_copied, .timeout = 120)
{
	const struct pred_case p[] = { { "b", SL_CMP_EQ, 5 } };

	sl_test_eal("0-1", NULL);
	check_filter(p, 1);
	cr_assert_eq(got.n, 27); /* i % 37 == 5 for i in [0, 1000) */
	cr_assert_eq(got.n_pools, 1);
	cr_assert_neq(got.pools[0], source_pool);
	sl_test_eal_fini();
}

Test(filter, plan_errors, .timeout = 30)
{
	struct table_conf tc = { .n = 0 };
	struct sl_filter_conf fc = { .n = 1 };
	struct sl_job *job = sl_job_create("f", NULL);
	int src, op, sink;

	table_schema(&tc.schema);
	strcpy(fc.pred[0].field, "d");
	src = sl_job_add(job, "src", &table_source, &tc, 1);
	op = sl_job_add(job, "flt", &sl_op_filter, &fc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	sl_job_connect(job, src, op, SL_PART_FORWARD, NULL);
	sl_job_connect(job, op, sink, SL_PART_FORWARD, NULL);
	cr_assert_eq(sl_job_plan(job), -EINVAL);
	cr_expect(strstr(sl_job_error(job), "numeric") != NULL, "message: %s",
		  sl_job_error(job));
	sl_job_free(job);

	job = sl_job_create("f", NULL);
	strcpy(fc.pred[0].field, "bb");
	src = sl_job_add(job, "src", &table_source, &tc, 1);
	op = sl_job_add(job, "flt", &sl_op_filter, &fc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	sl_job_connect(job, src, op, SL_PART_FORWARD, NULL);
	sl_job_connect(job, op, sink, SL_PART_FORWARD, NULL);
	cr_assert_eq(sl_job_plan(job), -EINVAL);
	cr_expect(strstr(sl_job_error(job),
			 "'bb' is not in the input schema (fields: a, b, c, d, e)") != NULL,
		  "message: %s", sl_job_error(job));
	sl_job_free(job);
}

/* ------------------------------------------------- udf */

/* flat-map: record r becomes (r.b % 4) records {a = r.a, n = copy index} */
static int explode(struct sl_task *t, struct sl_batch *in, void *arg)
{
	uint64_t *calls = arg;

	__atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < in->count; i++) {
		const struct trow *r = sl_batch_record(in, i);
		for (uint32_t k = 0; k < r->b % 4; k++) {
			uint64_t *o = sl_emit(t);
			o[0] = r->a;
			o[1] = k;
		}
	}
	return 0;
}

Test(udf, flat_map_zero_to_three, .timeout = 120)
{
	struct table_conf tc = { .n = TROWS };
	struct trow *tab = make_table();
	static uint64_t calls;
	struct sl_udf_conf uc = { .fn = explode, .arg = &calls };
	size_t k = 0;

	sl_test_eal("0-1", NULL);
	table_schema(&tc.schema);
	tc.rows = (const uint8_t *)tab;
	sl_schema_add(&uc.out, "a", SL_TYPE_U64, 0);
	sl_schema_add(&uc.out, "n", SL_TYPE_U64, 0);
	cr_assert_eq(run_one(&tc, &sl_op_udf, &uc, 1), 0);
	cr_assert(calls > 0 && calls <= TROWS);
	cr_assert_eq(got.record_size, 16);
	for (unsigned r = 0; r < TROWS; r++) {
		for (uint32_t c = 0; c < tab[r].b % 4; c++, k++) {
			const uint64_t *o = (const uint64_t *)row(k);
			cr_assert(k < got.n);
			cr_assert_eq(o[0], tab[r].a, "row %zu", k);
			cr_assert_eq(o[1], c, "row %zu", k);
		}
	}
	cr_assert_eq(got.n, k);
	free(tab);
	sl_test_eal_fini();
}

Test(udf, needs_a_function, .timeout = 30)
{
	struct table_conf tc = { .n = 0 };
	struct sl_udf_conf uc = { 0 };
	struct sl_job *job = sl_job_create("u", NULL);
	int src, op, sink;

	table_schema(&tc.schema);
	src = sl_job_add(job, "src", &table_source, &tc, 1);
	op = sl_job_add(job, "fn", &sl_op_udf, &uc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	sl_job_connect(job, src, op, SL_PART_FORWARD, NULL);
	sl_job_connect(job, op, sink, SL_PART_FORWARD, NULL);
	cr_assert_eq(sl_job_plan(job), -EINVAL);
	cr_expect(strstr(sl_job_error(job), "no function") != NULL);
	sl_job_free(job);
}

/* ------------------------------------------------- keyed aggregate */

/* Generator schema: key, ts, v (u32), w (i64), x (f64). */
static void gen_conf(struct sl_generator_conf *g, uint64_t count,
		     uint64_t keys, bool bytes_key)
{
	sl_generator_conf_defaults(g);
	g->count = count;
	g->key_cardinality = keys;
	g->seed = 42;
	g->value_range = 1000;
	if (bytes_key)
		sl_schema_add(&g->schema, "key", SL_TYPE_BYTES, 12);
	else
		sl_schema_add(&g->schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g->schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&g->schema, "v", SL_TYPE_U32, 0);
	sl_schema_add(&g->schema, "w", SL_TYPE_I64, 0);
	sl_schema_add(&g->schema, "x", SL_TYPE_F64, 0);
	strcpy(g->key_field, "key");
	strcpy(g->ts_field, "ts");
}

struct ref_agg {
	uint64_t count;
	uint32_t sum_v;
	int64_t min_w;
	double max_x;
	uint64_t sum_w;
};

static void agg_conf(struct sl_keyed_aggregate_conf *kc, bool updates)
{
	memset(kc, 0, sizeof(*kc));
	strcpy(kc->key, "key");
	kc->n_aggs = 5;
	kc->aggs[0] = (struct sl_agg_spec){ .fn = SL_AGG_COUNT, .as = "n" };
	kc->aggs[1] = (struct sl_agg_spec){ .fn = SL_AGG_SUM, .field = "v", .as = "sv" };
	kc->aggs[2] = (struct sl_agg_spec){ .fn = SL_AGG_MIN, .field = "w", .as = "mw" };
	kc->aggs[3] = (struct sl_agg_spec){ .fn = SL_AGG_MAX, .field = "x", .as = "mx" };
	kc->aggs[4] = (struct sl_agg_spec){ .fn = SL_AGG_SUM, .field = "w" }; /* sum_w */
	kc->emit_updates = updates;
}

/* Reference per key index (the generator's key is in [0, keys)). */
static struct ref_agg *reference(const struct sl_generator_conf *g, uint64_t keys)
{
	struct ref_agg *ref = calloc(keys, sizeof(*ref));
	uint8_t rec[128];
	const struct sl_field *fk = sl_schema_find(&g->schema, "key");
	const struct sl_field *fv = sl_schema_find(&g->schema, "v");
	const struct sl_field *fw = sl_schema_find(&g->schema, "w");
	const struct sl_field *fx = sl_schema_find(&g->schema, "x");

	for (uint64_t i = 0; i < g->count; i++) {
		uint64_t k = 0;
		uint32_t v;
		int64_t w;
		double x;

		sl_generator_record(g, i, rec);
		memcpy(&k, rec + fk->offset, fk->size < 8 ? fk->size : 8);
		memcpy(&v, rec + fv->offset, 4);
		memcpy(&w, rec + fw->offset, 8);
		memcpy(&x, rec + fx->offset, 8);
		cr_assert(k < keys);
		struct ref_agg *r = &ref[k];
		if (r->count == 0 || w < r->min_w)
			r->min_w = w;
		if (r->count == 0 || x > r->max_x)
			r->max_x = x;
		r->count++;
		r->sum_v += v;
		r->sum_w += (uint64_t)w;
	}
	return ref;
}

/* Output: key (8 or 12 bytes), n u64, sv u32, mw i64, mx f64, sum_w i64. */
struct out_layout {
	uint16_t key_size, n, sv, mw, mx, sum_w;
};

static struct out_layout layout(bool bytes_key)
{
	struct sl_schema s = { 0 };
	struct out_layout l;

	sl_schema_add(&s, "key", bytes_key ? SL_TYPE_BYTES : SL_TYPE_U64, 12);
	sl_schema_add(&s, "n", SL_TYPE_U64, 0);
	sl_schema_add(&s, "sv", SL_TYPE_U32, 0);
	sl_schema_add(&s, "mw", SL_TYPE_I64, 0);
	sl_schema_add(&s, "mx", SL_TYPE_F64, 0);
	sl_schema_add(&s, "sum_w", SL_TYPE_I64, 0);
	l.key_size = s.fields[0].size;
	l.n = s.fields[1].offset;
	l.sv = s.fields[2].offset;
	l.mw = s.fields[3].offset;
	l.mx = s.fields[4].offset;
	l.sum_w = s.fields[5].offset;
	cr_assert_eq(got.record_size, s.record_size);
	return l;
}

/* keyed-aggregate whose on_end counts the calls that returned SL_MORE */
static struct sl_operator_ops ka_spy;
static uint64_t more_returns;

static int spy_on_end(void *op, struct sl_task *t, bool drain)
{
	int rc = sl_op_keyed_aggregate.on_end(op, t, drain);

	if (rc == SL_MORE)
		__atomic_fetch_add(&more_returns, 1, __ATOMIC_RELAXED);
	return rc;
}

static int run_keyed(const struct sl_generator_conf *g,
		     const struct sl_keyed_aggregate_conf *kc, uint32_t src_p,
		     uint32_t agg_p, struct sl_job **jobp)
{
	struct sl_job *job = sl_job_create("keyed", NULL);
	int src, agg, sink, rc;

	src = sl_job_add(job, "gen", &sl_op_generator, g, src_p);
	ka_spy = sl_op_keyed_aggregate;
	ka_spy.on_end = spy_on_end;
	agg = sl_job_add(job, "agg", &ka_spy, kc, agg_p);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	cr_assert(src >= 0 && agg >= 0 && sink >= 0);
	cr_assert_eq(sl_job_connect(job, src, agg, SL_PART_HASH, "key"), 0,
		     "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, agg, sink, SL_PART_REBALANCE, NULL), 0);
	rc = sl_job_run(job);
	cr_assert_eq(rc, 0, "job failed: %s", sl_job_error(job));
	*jobp = job;
	return rc;
}

static void check_final_rows(const struct ref_agg *ref, uint64_t keys,
			     bool bytes_key, size_t expect_rows)
{
	struct out_layout l = layout(bytes_key);
	bool *seen = calloc(keys, 1);
	uint64_t live = 0;

	for (uint64_t k = 0; k < keys; k++)
		live += ref[k].count > 0;
	cr_assert_eq(got.n, expect_rows ? expect_rows : live,
		     "rows %zu, keys with records %lu", got.n, (unsigned long)live);
	for (size_t i = 0; i < got.n; i++) {
		const uint8_t *r = row(i);
		uint64_t k = 0, n;
		uint32_t sv;
		int64_t mw, sw;
		double mx;

		memcpy(&k, r, l.key_size < 8 ? l.key_size : 8);
		if (bytes_key) {
			static const uint8_t zero[4];
			cr_assert_eq(memcmp(r + 8, zero, 4), 0, "key tail");
		}
		cr_assert(k < keys, "row %zu: key %lu", i, (unsigned long)k);
		if (expect_rows == 0) {
			cr_assert(!seen[k], "key %lu emitted twice", (unsigned long)k);
			seen[k] = true;
		}
		memcpy(&n, r + l.n, 8);
		memcpy(&sv, r + l.sv, 4);
		memcpy(&mw, r + l.mw, 8);
		memcpy(&mx, r + l.mx, 8);
		memcpy(&sw, r + l.sum_w, 8);
		if (expect_rows != 0)
			continue; /* rolling rows are checked by the caller */
		cr_assert_eq(n, ref[k].count, "key %lu count", (unsigned long)k);
		cr_assert_eq(sv, ref[k].sum_v, "key %lu sum v", (unsigned long)k);
		cr_assert_eq(mw, ref[k].min_w, "key %lu min w", (unsigned long)k);
		cr_assert_eq(mx, ref[k].max_x, "key %lu max x", (unsigned long)k);
		cr_assert_eq((uint64_t)sw, ref[k].sum_w, "key %lu sum w",
			     (unsigned long)k);
	}
	free(seen);
}

Test(keyed_aggregate, final_rows_match_reference, .timeout = 120)
{
	const uint64_t keys = 40000, n = 300000;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf kc;
	struct sl_job *job;

	sl_test_eal("(0-2)@(0-1)", NULL);
	gen_conf(&g, n, keys, false);
	agg_conf(&kc, false);
	/* 40000 keys: the final emission takes several on_end calls */
	run_keyed(&g, &kc, 2, 2, &job);
	cr_expect(more_returns > 0, "the final emission was not split (SL_MORE)");
	struct ref_agg *ref = reference(&g, keys);
	check_final_rows(ref, keys, false, 0);
	free(ref);
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(keyed_aggregate, bytes_key, .timeout = 120)
{
	const uint64_t keys = 500, n = 50000;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf kc;
	struct sl_job *job;

	sl_test_eal("0-1", NULL);
	gen_conf(&g, n, keys, true);
	agg_conf(&kc, false);
	run_keyed(&g, &kc, 1, 3, &job);
	struct ref_agg *ref = reference(&g, keys);
	check_final_rows(ref, keys, true, 0);
	free(ref);
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(keyed_aggregate, rolling_updates, .timeout = 120)
{
	const uint64_t keys = 300, n = 60000;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf kc;
	struct sl_job *job;

	sl_test_eal("0-1", NULL);
	gen_conf(&g, n, keys, false);
	agg_conf(&kc, true);
	/* one source: every key's records reach its aggregate subtask in index
	 * order, so its rows are the running aggregates 1, 2, ... */
	run_keyed(&g, &kc, 1, 2, &job);
	struct ref_agg *ref = reference(&g, keys);
	check_final_rows(ref, keys, false, n);

	struct out_layout l = layout(false);
	struct ref_agg *last = calloc(keys, sizeof(*last));
	for (size_t i = 0; i < got.n; i++) {
		const uint8_t *r = row(i);
		uint64_t k, cnt;
		memcpy(&k, r, 8);
		memcpy(&cnt, r + l.n, 8);
		cr_assert_eq(cnt, last[k].count + 1, "key %lu: count %lu after %lu",
			     (unsigned long)k, (unsigned long)cnt,
			     (unsigned long)last[k].count);
		last[k].count = cnt;
		memcpy(&last[k].sum_v, r + l.sv, 4);
		memcpy(&last[k].min_w, r + l.mw, 8);
		memcpy(&last[k].max_x, r + l.mx, 8);
		memcpy(&last[k].sum_w, r + l.sum_w, 8);
	}
	/* the last row of each key is the reference's final aggregate */
	for (uint64_t k = 0; k < keys; k++) {
		cr_assert_eq(last[k].count, ref[k].count);
		cr_assert_eq(last[k].sum_v, ref[k].sum_v);
		cr_assert_eq(last[k].min_w, ref[k].min_w);
		cr_assert_eq(last[k].max_x, ref[k].max_x);
		cr_assert_eq(last[k].sum_w, ref[k].sum_w);
	}
	free(last);
	free(ref);
	sl_job_free(job);
	sl_test_eal_fini();
}

static int plan_keyed(struct sl_keyed_aggregate_conf *kc, struct sl_job **jobp)
{
	struct sl_generator_conf g;
	struct sl_job *job = sl_job_create("k", NULL);
	int src, agg, sink;

	gen_conf(&g, 10, 10, true);
	src = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	agg = sl_job_add(job, "agg", &sl_op_keyed_aggregate, kc, 1);
	sink = sl_job_add(job, "sink", &collect_sink, NULL, 1);
	sl_job_connect(job, src, agg, SL_PART_HASH, "key");
	sl_job_connect(job, agg, sink, SL_PART_FORWARD, NULL);
	*jobp = job;
	return sl_job_plan(job);
}

Test(keyed_aggregate, plan_errors, .timeout = 30)
{
	struct sl_keyed_aggregate_conf kc;
	struct sl_job *job;

	/* unknown key field */
	agg_conf(&kc, false);
	strcpy(kc.key, "kye");
	cr_assert_eq(plan_keyed(&kc, &job), -EINVAL);
	cr_expect(strstr(sl_job_error(job),
			 "key field 'kye' is not in the input schema (fields: key, ts, v, w, x)") != NULL,
		  "message: %s", sl_job_error(job));
	sl_job_free(job);

	/* unknown aggregate field */
	agg_conf(&kc, false);
	strcpy(kc.aggs[1].field, "nope");
	cr_assert_eq(plan_keyed(&kc, &job), -EINVAL);
	cr_expect(strstr(sl_job_error(job),
			 "field 'nope' is not in the input schema (fields: key, ts, v, w, x)") != NULL,
		  "message: %s", sl_job_error(job));
	sl_job_free(job);

	/* sum over a bytes field */
	agg_conf(&kc, false);
	strcpy(kc.aggs[1].field, "key");
	cr_assert_eq(plan_keyed(&kc, &job), -EINVAL);
	cr_expect(strstr(sl_job_error(job),
			 "sum needs a numeric field, but 'key' is bytes") != NULL,
		  "message: %s", sl_job_error(job));
	sl_job_free(job);

	/* duplicate output names */
	agg_conf(&kc, false);
	strcpy(kc.aggs[2].as, "sv");
	cr_assert_eq(plan_keyed(&kc, &job), -EINVAL);
	cr_expect(strstr(sl_job_error(job), "'sv' appears twice") != NULL,
		  "message: %s", sl_job_error(job));
	sl_job_free(job);

	/* and a good one plans, with the documented output types */
	agg_conf(&kc, false);
	cr_assert_eq(plan_keyed(&kc, &job), 0, "%s", sl_job_error(job));
	const struct sl_schema *out = sl_job_node_schema(job, 1);
	cr_assert_eq(out->nfields, 6);
	cr_expect_eq(out->fields[0].type, SL_TYPE_BYTES);
	cr_expect_eq(out->fields[0].size, 12);
	cr_expect_eq(out->fields[1].type, SL_TYPE_U64);
	cr_expect_eq(out->fields[2].type, SL_TYPE_U32);
	cr_expect_eq(out->fields[3].type, SL_TYPE_I64);
	cr_expect_eq(out->fields[4].type, SL_TYPE_F64);
	cr_expect_str_eq(out->fields[5].name, "sum_w");
	sl_job_free(job);
}
