/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end with the built-ins: generator -> hash by key -> tumbling
 * window count -> CSV file sink, on several lcores; the file's rows are
 * compared with counts computed here from the generator's definition
 * (sl_generator_record), not from anything the engine computed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/operators.h"

#define KEYS 500
#define WINDOWS 10
#define N 400000
#define STEP_NS 20000	  /* 400k records * 20 us = 8 s of event time, from 1 s */
#define SIZE_NS 1000000000LL

struct rec {
	uint64_t key;
	int64_t ts;
	uint64_t value;
};

static void generator_conf(struct sl_generator_conf *g)
{
	sl_generator_conf_defaults(g);
	sl_schema_add(&g->schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g->schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&g->schema, "value", SL_TYPE_U64, 0);
	strcpy(g->key_field, "key");
	strcpy(g->ts_field, "ts");
	g->seed = 7;
	g->count = N;
	g->key_cardinality = KEYS;
	g->key_skew = 0.8;
	g->start_time_ns = SIZE_NS;
	g->time_step_ns = STEP_NS;
	g->max_out_of_orderness_ns = 5 * STEP_NS * 3; /* 3 parallel subtasks */
}

static int read_rows(const char *path, uint64_t (*got)[WINDOWS], uint64_t *rows)
{
	char line[256];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -errno;
	cr_assert_not_null(fgets(line, sizeof(line), f), "header line in %s", path);
	cr_assert_str_eq(line, "key,window_start,window_end,count\n");
	while (fgets(line, sizeof(line), f)) {
		uint64_t key, count;
		int64_t ws, we;
		cr_assert_eq(sscanf(line, "%" SCNu64 ",%" SCNd64 ",%" SCNd64 ",%" SCNu64,
				    &key, &ws, &we, &count), 4, "bad row '%s'", line);
		cr_assert_lt(key, KEYS);
		cr_assert_eq(ws % SIZE_NS, 0, "window start aligned");
		cr_assert_eq(we - ws, SIZE_NS);
		cr_assert_lt(ws / SIZE_NS, WINDOWS);
		cr_assert_eq(got[key][ws / SIZE_NS], 0, "window (%" PRIu64 ", %" PRId64 ") emitted twice",
			     key, ws);
		got[key][ws / SIZE_NS] = count;
		(*rows)++;
	}
	fclose(f);
	return 0;
}

Test(e2e, window_counts_match_generator_definition, .timeout = 300)
{
	sl_test_eal("(0-3)@(0-1)", NULL);
	struct sl_job_config cfg;
	struct sl_generator_conf gen;
	struct sl_window_conf win = { .kind = SL_WINDOW_TUMBLING, .size_ns = SIZE_NS };
	struct sl_file_sink_conf out = { .format = SL_FILE_CSV };
	char dir[] = "/tmp/sluice-e2e-XXXXXX";
	static uint64_t expect[KEYS][WINDOWS], got[KEYS][WINDOWS];
	uint64_t rows = 0, expect_rows = 0;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(out.path, sizeof(out.path), "%s/counts.csv", dir);
	generator_conf(&gen);
	strcpy(win.key, "key");
	strcpy(win.ts_field, "ts");
	win.n_aggs = 1;
	win.aggs[0] = (struct sl_agg_spec){ .fn = SL_AGG_COUNT, .as = "count" };

	sl_job_config_defaults(&cfg);
	struct sl_job *job = sl_job_create("e2e", &cfg);
	int g = sl_job_add(job, "gen", &sl_op_generator, &gen, 3);
	int w = sl_job_add(job, "windows", &sl_op_window_aggregate, &win, 2);
	int s = sl_job_add(job, "out", &sl_op_file_sink, &out, 2);
	cr_assert(g >= 0 && w >= 0 && s >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, g, w, SL_PART_HASH, "key"), 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, w, s, SL_PART_FORWARD, NULL), 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));

	/* the reference, from the generator's definition */
	for (uint64_t i = 0; i < N; i++) {
		struct rec r;
		int64_t ts = sl_generator_record(&gen, i, &r);
		cr_assert_eq(ts, r.ts);
		cr_assert_geq(r.ts, 0);
		if (expect[r.key][r.ts / SIZE_NS]++ == 0)
			expect_rows++;
	}
	for (unsigned p = 0; p < 2; p++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/counts.%u.csv", dir, p);
		cr_assert_eq(read_rows(path, got, &rows), 0, "cannot read %s", path);
		unlink(path);
	}
	rmdir(dir);
	cr_assert_eq(rows, expect_rows, "one row per non-empty (key, window)");
	for (unsigned k = 0; k < KEYS; k++)
		for (unsigned wi = 0; wi < WINDOWS; wi++)
			cr_assert_eq(got[k][wi], expect[k][wi], "key %u window %u: %" PRIu64 " vs expected %" PRIu64,
				     k, wi, got[k][wi], expect[k][wi]);
	sl_job_free(job);
	sl_test_eal_fini();
}
