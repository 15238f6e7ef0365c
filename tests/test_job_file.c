/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * YAML job files: the good fixtures load, plan and run; every class of bad
 * input is reported with the file, the line, the key path and what to do
 * (and a did-you-mean where one fits); the demo job loads.  Fixtures are
 * in tests/jobs/; expected lines are found by searching the fixture for
 * the offending text, so comments can be edited freely.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <rte_common.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/job_file.h"
#include "sluice/operators.h"

/* white-box: placements and the did-you-mean helper */
#include "../dataplane/job_pvt.h"
#include "../dataplane/suggest_pvt.h"

#define JOBS SL_SOURCE_ROOT "/tests/jobs/"

static char err[2048];

/* Line (1-based) of the first line of `path` containing `needle`. */
static int fixture_line(const char *path, const char *needle)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	int n = 0;

	cr_assert_not_null(f, "cannot open fixture %s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		if (strstr(line, needle) != NULL) {
			fclose(f);
			return n;
		}
	}
	fclose(f);
	cr_assert_fail("'%s' not found in %s", needle, path);
	return -1;
}

/* "NAME.yaml:LINE: " with LINE the line of `needle` in the fixture */
static void expect_at(const char *name, const char *needle)
{
	char path[PATH_MAX], where[PATH_MAX + 32];

	snprintf(path, sizeof(path), JOBS "%s", name);
	snprintf(where, sizeof(where), "%s:%d: ", path,
		 fixture_line(path, needle));
	cr_assert_not_null(strstr(err, where), "expected '%s' in: %s", where, err);
}

static void expect_text(const char *text)
{
	cr_assert_not_null(strstr(err, text), "expected '%s' in: %s", text, err);
}

/* Load a fixture that must fail; returns nothing, err holds the message. */
static void load_bad(const char *name)
{
	char path[PATH_MAX];
	struct sl_job_file *jf;

	snprintf(path, sizeof(path), JOBS "%s", name);
	jf = sl_job_file_load(path, err, sizeof(err));
	cr_assert_null(jf, "%s loaded but should not have", name);
	cr_assert_neq(err[0], '\0', "no message for %s", name);
}

static struct sl_job_file *load_good(const char *path)
{
	struct sl_job_file *jf = sl_job_file_load(path, err, sizeof(err));

	cr_assert_not_null(jf, "%s did not load: %s", path, err);
	return jf;
}

/* a fresh working directory with an out/ directory, for sinks' paths */
static void enter_tmpdir(void)
{
	char dir[] = "/tmp/sl_jobfile_XXXXXX";

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chdir(dir), 0);
	cr_assert_eq(mkdir("out", 0755), 0);
}

/* ------------------------------------------------------------ good files */

Test(job_file, good_loads_and_plans, .timeout = 120)
{
	static const char *const uids[] = { "gen", "big", "slim", "per-second",
					    "out", "totals", "check" };
	struct sl_job_file *jf;
	const struct sl_job_config *cfg;
	const struct sl_generator_conf *g;
	const struct sl_window_conf *w;
	const struct sl_filter_conf *f;
	const struct sl_project_conf *p;
	const struct sl_keyed_aggregate_conf *ka;
	const struct sl_count_sink_conf *cs;
	const struct sl_schema *out;
	char where[PATH_MAX + 16];

	enter_tmpdir();
	jf = load_good(JOBS "good.yaml");
	struct sl_job *job = jf->job;

	cr_assert_str_eq(sl_job_name(job), "good");
	cr_assert_eq(sl_job_node_count(job), 7);
	for (int i = 0; i < 7; i++)
		cr_expect_str_eq(sl_job_node_uid(job, i), uids[i]);
	cr_expect_eq(sl_job_node_parallelism(job, 0), 2);
	cr_expect_eq(sl_job_node_parallelism(job, 3), 2);
	cr_expect_eq(sl_job_node_parallelism(job, 4), 1); /* parallelism.default */

	cfg = sl_job_get_config(job);
	cr_expect_eq(cfg->max_parallelism, 64); /* nested config form */
	cr_expect_eq(cfg->default_parallelism, 1);
	cr_expect_eq(cfg->buffer_timeout_us, 2000);
	cr_expect_eq(cfg->progress_ms, 0);
	cr_expect_eq(cfg->batch_size, 128);
	cr_expect_eq(cfg->ring_size, 64);
	cr_expect_eq(cfg->burst_size, 16);

	g = sl_job_node_conf(job, 0);
	cr_expect_eq(g->seed, 7);
	cr_expect_eq(g->count, 100000);
	cr_expect_eq(g->key_cardinality, 1000);
	cr_expect_float_eq(g->key_skew, 0.8, 1e-12);
	cr_expect_eq(g->value_range, 1000);
	cr_expect_eq(g->start_time_ns, 1767225600LL * 1000000000LL);
	cr_expect_eq(g->time_step_ns, 1000);
	cr_expect_eq(g->max_out_of_orderness_ns, 5000000);
	cr_expect_str_eq(g->key_field, "user");
	cr_expect_str_eq(g->ts_field, "ts");
	cr_expect_str_eq(g->seq_field, "seq");
	cr_expect_eq(g->schema.nfields, 5);
	cr_expect_eq(g->schema.fields[4].type, SL_TYPE_BYTES);
	cr_expect_eq(g->schema.fields[4].size, 16);

	f = sl_job_node_conf(job, 1);
	cr_expect_eq(f->n, 1);
	cr_expect_str_eq(f->pred[0].field, "value");
	cr_expect_eq(f->pred[0].cmp, SL_CMP_GE);
	cr_expect_float_eq(f->pred[0].value, 10.0, 1e-12);

	p = sl_job_node_conf(job, 2);
	cr_expect_eq(p->n, 3);
	cr_expect_str_eq(p->fields[2], "value");
	cr_expect_str_eq(p->as[2], "amount");

	w = sl_job_node_conf(job, 3);
	cr_expect_eq(w->kind, SL_WINDOW_SLIDING);
	cr_expect_eq(w->size_ns, 2000000000LL);
	cr_expect_eq(w->slide_ns, 500000000LL);
	cr_expect_eq(w->allowed_lateness_ns, 100000000LL);
	cr_expect_eq(w->n_aggs, 3);
	cr_expect_str_eq(w->aggs[1].as, "total");
	cr_expect_str_eq(w->aggs[2].as, "max_amount"); /* default name */

	ka = sl_job_node_conf(job, 5);
	cr_expect_eq(ka->emit_updates, false);
	cr_expect_str_eq(ka->key, "user");
	cs = sl_job_node_conf(job, 6);
	cr_expect_eq(cs->delay_us_per_batch, 10);

	/* planned: the window's output schema exists */
	out = sl_job_node_schema(job, 3);
	cr_assert_not_null(out);
	cr_expect_not_null(sl_schema_find(out, "total"));
	cr_expect_not_null(sl_schema_find(out, "max_amount"));

	/* edges: forward (equal parallelism), hash by key for keyed inputs */
	cr_expect_eq(job->nodes[1].in[0].part, SL_PART_FORWARD);
	cr_expect_eq(job->nodes[3].in[0].part, SL_PART_HASH);
	cr_expect_str_eq(job->nodes[3].in[0].key, "user");
	cr_expect_eq(job->nodes[5].in[0].part, SL_PART_HASH); /* default */
	cr_expect_eq(job->nodes[6].in[0].part, SL_PART_FORWARD);

	/* layout: "gen" = both subtasks, "big/0" = one; the rest unplaced */
	cr_expect_eq(job->nodes[0].placement[0], 1);
	cr_expect_eq(job->nodes[0].placement[1], 1);
	cr_expect_eq(job->nodes[1].placement[0], 1);
	cr_expect_eq(job->nodes[1].placement[1], -1);
	cr_expect_eq(job->nodes[3].placement[0], -1);
	cr_expect_eq(job->nodes[3].placement[1], 2);
	cr_expect_eq(job->nodes[4].placement[0], 2);

	cr_assert_eq(jf->eal_argc, 4);
	cr_expect_str_eq(jf->eal_argv[0], "--no-huge");
	cr_expect_str_eq(jf->eal_argv[3], "0@0,1@1,2@0");

	snprintf(where, sizeof(where), JOBS "good.yaml:%d",
		 fixture_line(JOBS "good.yaml", "uid: per-second"));
	cr_expect_str_eq(sl_job_file_where(jf, 3), where);
	cr_expect_str_eq(sl_job_file_where(jf, 99), JOBS "good.yaml");
	sl_job_file_free(jf);
}

Test(job_file, good_runs, .timeout = 120)
{
	struct sl_job_file *jf;
	char line[256];
	FILE *f;
	int rc;

	enter_tmpdir();
	jf = load_good(JOBS "good.yaml");
	sl_test_eal("0@0,1@1,2@0", NULL);
	rc = sl_job_file_prepare(jf, err, sizeof(err));
	cr_assert_eq(rc, 0, "prepare: %s", err);
	rc = sl_job_run(jf->job);
	cr_assert_eq(rc, 0, "run: %s", sl_job_error(jf->job));
	f = fopen("good-out.csv", "r");
	cr_assert_not_null(f, "the file sink wrote nothing");
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_expect_str_eq(line, "user,window_start,window_end,n,total,max_amount\n");
	cr_expect_not_null(fgets(line, sizeof(line), f), "no windows fired");
	fclose(f);
	sl_job_file_free(jf);
	sl_test_eal_fini();
}

Test(job_file, good_sources_plan, .timeout = 120)
{
	const struct sl_file_source_conf *fs;
	const struct sl_ethdev_source_conf *es;
	struct sl_job_file *jf;

	cr_assert_eq(chdir(SL_SOURCE_ROOT), 0);
	jf = load_good("tests/jobs/good_sources.yaml");
	cr_assert_eq(sl_job_node_count(jf->job), 5);
	fs = sl_job_node_conf(jf->job, 0);
	cr_expect_str_eq(fs->path, "tests/jobs/events.csv");
	cr_expect_eq(fs->format, SL_FILE_CSV);
	cr_expect(fs->skip_header, "CSV sources skip the header by default");
	cr_expect_str_eq(fs->ts_field, "ts");
	cr_expect_eq(fs->max_out_of_orderness_ns, 1000000000LL);
	cr_expect_eq(sl_job_node_parallelism(jf->job, 0), 1);
	es = sl_job_node_conf(jf->job, 2);
	cr_expect_str_eq(es->port, "net_null0");
	cr_expect_str_eq(es->vdev, "net_null0");
	cr_expect_eq(es->rx_desc, 512);
	cr_expect(es->promiscuous);
	cr_expect_eq(es->count, 1000);
	cr_expect_eq(es->idle_end_ms, 100);
	cr_expect_eq(jf->eal_argc, 0);
	sl_job_file_free(jf);
}

Test(job_file, demo_loads, .timeout = 120)
{
	const struct sl_generator_conf *g;
	const struct sl_window_conf *w;
	struct sl_job_file *jf;

	enter_tmpdir(); /* the demo writes out/demo-counts.csv */
	jf = load_good(SL_SOURCE_ROOT "/jobs/demo.yaml");
	cr_assert_str_eq(sl_job_name(jf->job), "demo");
	cr_assert_eq(sl_job_node_count(jf->job), 3);
	g = sl_job_node_conf(jf->job, 0);
	cr_expect_eq(g->count, 100000000);
	cr_expect_eq(g->key_cardinality, 10000);
	cr_expect_eq(g->time_step_ns, 100);
	w = sl_job_node_conf(jf->job, 1);
	cr_expect_eq(w->kind, SL_WINDOW_TUMBLING);
	cr_expect_eq(w->size_ns, 1000000000LL);
	cr_expect_eq(jf->job->nodes[1].in[0].part, SL_PART_HASH);
	cr_expect_eq(sl_job_get_config(jf->job)->progress_ms, 1000);
	cr_expect_gt(jf->eal_argc, 0);
	sl_job_file_free(jf);
}

/* ------------------------------------------------------------- bad files */

Test(job_file, bad_duration, .timeout = 120)
{
	load_bad("bad_duration.yaml");
	expect_at("bad_duration.yaml", "size: 10q");
	expect_text("operators[1].window.size: '10q' is not a duration; use e.g. 500ms, 1s, 2m");
}

Test(job_file, bad_unknown_key, .timeout = 120)
{
	load_bad("bad_unknown_key.yaml");
	expect_at("bad_unknown_key.yaml", "paralelism");
	expect_text("operators[1]: unknown key 'paralelism'; did you mean 'parallelism'?");
}

Test(job_file, bad_type, .timeout = 120)
{
	load_bad("bad_type.yaml");
	expect_at("bad_type.yaml", "windw-aggregate");
	expect_text("operators[1].type: unknown operator type 'windw-aggregate'; did you mean 'window-aggregate'?");
	expect_text("(types: generator, ");
}

Test(job_file, bad_field, .timeout = 120)
{
	load_bad("bad_field.yaml");
	expect_at("bad_field.yaml", "key: usr");
	expect_text("operators[1].key: field 'usr' is not in the output of 'gen' (fields: user, ts, value); did you mean 'user'?");
}

Test(job_file, bad_uid_twice, .timeout = 120)
{
	char first[32], second[PATH_MAX + 64];

	load_bad("bad_uid_twice.yaml");
	/* reported at the second use (the line before the sink's type),
	 * naming the first */
	snprintf(first, sizeof(first), "(first at line %d)",
		 fixture_line(JOBS "bad_uid_twice.yaml", "uid: gen"));
	snprintf(second, sizeof(second), JOBS "bad_uid_twice.yaml:%d: operators[1].uid: ",
		 fixture_line(JOBS "bad_uid_twice.yaml", "type: null-sink") - 1);
	expect_text(second);
	expect_text("uid 'gen' is used twice");
	expect_text(first);
	expect_text("give each operator its own uid");
}

Test(job_file, bad_parallelism, .timeout = 120)
{
	load_bad("bad_parallelism.yaml");
	expect_at("bad_parallelism.yaml", "parallelism: 300");
	expect_text("operators[0].parallelism: 300 is above pipeline.max-parallelism 128");
}

Test(job_file, bad_wrong_type, .timeout = 120)
{
	load_bad("bad_wrong_type.yaml");
	expect_at("bad_wrong_type.yaml", "count: many");
	expect_text("operators[0].count: 'many' is not a whole number");
}

Test(job_file, bad_file_source_path, .timeout = 120)
{
	/* the file source's plan() says what is wrong; the loader adds where */
	cr_assert_eq(chdir(SL_SOURCE_ROOT), 0);
	load_bad("bad_file_source.yaml");
	expect_at("bad_file_source.yaml", "path: tests/jobs/no-such-file.csv");
	expect_text("operators[0].path: ");
	expect_text("no-such-file.csv");
	expect_text("No such file or directory");
}

Test(job_file, malformed_yaml, .timeout = 120)
{
	char where[PATH_MAX + 32];

	load_bad("bad_yaml.yaml");
	/* libyaml's problem, with line and column */
	snprintf(where, sizeof(where), JOBS "bad_yaml.yaml:%d:",
		 fixture_line(JOBS "bad_yaml.yaml", "   schema:"));
	expect_text(where);
	expect_text("invalid YAML: ");
	expect_text("indentation");
}

Test(job_file, missing_file, .timeout = 120)
{
	cr_assert_null(sl_job_file_load(JOBS "no-such-job.yaml", err, sizeof(err)));
	cr_expect_eq(errno, ENOENT);
	expect_text("no-such-job.yaml: cannot read the job file: No such file or directory");
}

/* ------------------------------------------------------- needs the EAL */

Test(job_file, layout_lcore_missing, .timeout = 120)
{
	struct sl_job_file *jf = load_good(JOBS "bad_lcore.yaml");

	sl_test_eal("0-1", NULL);
	cr_assert_lt(sl_job_file_prepare(jf, err, sizeof(err)), 0);
	expect_at("bad_lcore.yaml", "5: [out]");
	expect_text("layout.lcores: lcore 5 does not exist in the EAL (lcores: 0-1; main lcore 0 runs the control plane); change the layout or the EAL -l/--lcores list");
	sl_job_file_free(jf);
	sl_test_eal_fini();
}

Test(job_file, layout_main_lcore, .timeout = 120)
{
	static const char yaml[] =
		"operators:\n"
		"  - {uid: gen, type: generator, schema: [{name: k, type: u64}], count: 1}\n"
		"  - {uid: out, type: null-sink, input: gen}\n"
		"layout:\n"
		"  lcores:\n"
		"    0: out\n";
	struct sl_job_file *jf = sl_job_file_parse("main.yaml", yaml, strlen(yaml),
						   err, sizeof(err));

	cr_assert_not_null(jf, "%s", err);
	sl_test_eal("0-1", NULL);
	cr_assert_lt(sl_job_file_prepare(jf, err, sizeof(err)), 0);
	expect_text("main.yaml:6: layout.lcores: lcore 0 is the main lcore, which runs the control plane");
	sl_job_file_free(jf);
	sl_test_eal_fini();
}

/* io writers' lcores are checked against the EAL, with their lines. */
Test(job_file, layout_io_writer_lcores, .timeout = 120)
{
	static const struct {
		const char *layout;
		const char *expect;
	} cases[] = {
		{ "  io-writers:\n    - {lcore: 7}\n",
		  "w.yaml:6: layout.io-writers[0]: lcore 7 does not exist in the EAL (lcores: 0-2)" },
		{ "  io-writers:\n    - {lcore: 0}\n",
		  "w.yaml:6: layout.io-writers[0]: lcore 0 is the main lcore, which runs the control plane: a writer cannot have it to itself" },
		{ "  io-writers:\n    - lcore: 2\n      serves:\n        - 1\n        - 5\n",
		  "w.yaml:9: layout.io-writers[0].serves: lcore 5 does not exist in the EAL" },
		{ "  io-writers:\n    - {lcore: 2, serves: [0]}\n",
		  "w.yaml:6: layout.io-writers[0].serves: lcore 0 is the main lcore, which hosts no subtasks" },
	};

	sl_test_eal("(0-2)@(0-1)", NULL);
	for (size_t i = 0; i < RTE_DIM(cases); i++) {
		char yaml[1024];
		int n = snprintf(yaml, sizeof(yaml),
				 "operators:\n"
				 "  - {uid: gen, type: generator, schema: [{name: k, type: u64}], count: 1}\n"
				 "  - {uid: out, type: null-sink, input: gen}\n"
				 "layout:\n%s", cases[i].layout);
		cr_assert(n > 0 && (size_t)n < sizeof(yaml));
		struct sl_job_file *jf = sl_job_file_parse("w.yaml", yaml, (size_t)n,
							   err, sizeof(err));
		cr_assert_not_null(jf, "case %zu: %s", i, err);
		cr_assert_lt(sl_job_file_prepare(jf, err, sizeof(err)), 0, "case %zu", i);
		expect_text(cases[i].expect);
		sl_job_file_free(jf);
	}
	sl_test_eal_fini();
}

/* Own lcores take no round-robin subtasks; with none left, a clear error. */
Test(job_file, layout_io_writer_own_lcores_take_no_subtasks, .timeout = 120)
{
	static const char yaml[] =
		"operators:\n"
		"  - {uid: gen, type: generator, parallelism: 3, schema: [{name: k, type: u64}], count: 1}\n"
		"  - {uid: out, type: null-sink, input: {from: gen, partition: rebalance}}\n"
		"layout:\n"
		"  io-writers:\n"
		"    - {lcore: 3, serves: [1]}\n"
		"    - {lcore: 2, poll: inline}\n";
	struct sl_job_file *jf = sl_job_file_parse("o.yaml", yaml, strlen(yaml), err,
						   sizeof(err));

	cr_assert_not_null(jf, "%s", err);
	cr_assert_eq(jf->job->n_io_layout, 2);
	cr_expect_eq(jf->job->io_layout[0].poll, SL_IO_POLL_OWN);
	cr_expect_eq(jf->job->io_layout[1].poll, SL_IO_POLL_INLINE);
	cr_expect_eq(jf->job->io_layout[1].n_serves, 0);
	sl_test_eal("(0-3)@(0-1)", NULL);
	cr_assert_eq(sl_job_file_prepare(jf, err, sizeof(err)), 0, "%s", err);
	for (int n = 0; n < jf->job->n_nodes; n++)
		for (uint32_t s = 0; s < jf->job->nodes[n].parallelism; s++)
			cr_expect_neq(jf->job->nodes[n].placement[s], 3,
				      "%s/%u placed on the writer's own lcore",
				      jf->job->nodes[n].uid, s);
	sl_job_file_free(jf);

	static const char only_own[] =
		"operators:\n"
		"  - {uid: gen, type: generator, schema: [{name: k, type: u64}], count: 1}\n"
		"  - {uid: out, type: null-sink, input: gen}\n"
		"layout:\n"
		"  io-writers:\n"
		"    - {lcore: 1, serves: [2]}\n"
		"    - {lcore: 2, serves: [3]}\n"
		"    - {lcore: 3, poll: inline}\n";
	jf = sl_job_file_parse("o.yaml", only_own, strlen(only_own), err, sizeof(err));
	cr_assert_null(jf, "lcore 2 both has a writer to itself and is served");
	expect_text("o.yaml:7: layout.io-writers[1]: lcore 2 runs an io writer of its own");
	sl_test_eal_fini();
}

Test(job_file, port_missing, .timeout = 120)
{
	struct sl_job_file *jf = load_good(JOBS "bad_port.yaml");

	sl_test_eal("0-1", NULL);
	cr_assert_lt(sl_job_file_prepare(jf, err, sizeof(err)), 0);
	expect_at("bad_port.yaml", "port: net_nothere0");
	expect_text("operators[0].port: ");
	expect_text("'net_nothere0' does not exist");
	sl_job_file_free(jf);
	sl_test_eal_fini();
}

/* ------------------------------------------------- inline error classes */

struct bad_case {
	const char *yaml;
	const char *expect[3]; /* substrings of the message; NULL = unused */
};

#define GEN "  - {uid: gen, type: generator, schema: [{name: user, type: u64}, {name: ts, type: timestamp}, {name: v, type: i64}, {name: b, type: bytes, size: 8}], key-field: user, timestamp-field: ts}\n"

static const struct bad_case bad_cases[] = {
	{ "operators:\n  - {uid: gen}\n",
	  { "x.yaml:2: operators[0]: missing 'type' (one of: generator, " } },
	{ "operators:\n" GEN "  - {uid: c, type: window-aggregate, input: nope, key: user, timestamp-field: ts, window: {size: 1s}, aggregates: [{fn: count}]}\n"
	  "  - {uid: nope, type: null-sink, input: gen}\n",
	  { "x.yaml:3: operators[1].input: 'nope' is defined after this operator (line 4)" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gne}\n",
	  { "x.yaml:3: operators[1].input: no operator 'gne'; did you mean 'gen'?" } },
	{ "operators:\n" GEN "  - {uid: g2, type: generator, input: gen, schema: [{name: k, type: u64}]}\n",
	  { "x.yaml:3: operators[1]: a generator is a source and reads no input; remove 'input'" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink}\n",
	  { "x.yaml:3: operators[1]: a null-sink needs an input; add e.g. input: gen" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, parallelism: 2, input: {from: gen, partition: forward}}\n",
	  { "x.yaml:3: operators[1].input: forward needs equal parallelism", "use partition: rebalance, hash or broadcast" } },
	{ "operators:\n" GEN "  - {uid: c, type: keyed-aggregate, parallelism: 2, input: {from: gen, partition: rebalance}, key: user, aggregates: [{fn: count}]}\n"
	  "  - {uid: out, type: null-sink, input: {from: c, partition: rebalance}}\n",
	  { "operators[1].input: a keyed operator with parallelism 2 must read its input with partition: hash (by its key 'user')" } },
	{ "operators:\n" GEN "  - {uid: c, type: keyed-aggregate, parallelism: 2, input: {from: gen, partition: hash, key: v}, key: user, aggregates: [{fn: count}]}\n"
	  "  - {uid: out, type: null-sink, input: {from: c, partition: rebalance}}\n",
	  { "input is hashed by 'v' but the operator is keyed by 'user'" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: {from: gen, partition: hsh}}\n",
	  { "x.yaml:3: operators[1].input.partition: unknown partition 'hsh'; did you mean 'hash'?" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: {from: gen, partition: hash, key: usr}}\n",
	  { "x.yaml:3: operators[1].input.key: field 'usr' is not in the output of 'gen'", "did you mean 'user'?" } },
	{ "operators:\n" GEN "  - uid: out\n    type: null-sink\n    input: gen\n    type: file-sink\n",
	  { "x.yaml:6: operators[1]: key 'type' is given twice (first at line 4); keep one" } },
	{ "config:\n  pipeline.max-paralelism: 4\noperators:\n" GEN,
	  { "x.yaml:2: config: unknown key 'pipeline.max-paralelism'; did you mean 'pipeline.max-parallelism'?" } },
	{ "config:\n  parallelism.default: 8\n  pipeline.max-parallelism: 4\noperators:\n" GEN,
	  { "parallelism.default 8 is above pipeline.max-parallelism 4" } },
	{ "schemas:\n  e: [{name: b, type: bytes}]\noperators:\n" GEN,
	  { "x.yaml:2: schemas.e[0]: bytes field 'b' needs a size" } },
	{ "schemas:\n  e:\n    - {name: b, type: u64, size: 8}\noperators:\n" GEN,
	  { "x.yaml:3: schemas.e[0].size: only bytes fields take a size" } },
	{ "schemas:\n  e:\n    - {name: b, type: timestmp}\noperators:\n" GEN,
	  { "x.yaml:3: schemas.e[0].type: unknown type 'timestmp'; did you mean 'timestamp'?" } },
	{ "schemas:\n  e:\n    - {name: b, type: u64}\n    - {name: b, type: i64}\noperators:\n" GEN,
	  { "x.yaml:4: schemas.e[1].name: field 'b' appears twice in this schema" } },
	{ "schemas:\n  events: [{name: k, type: u64}]\noperators:\n  - {uid: gen, type: generator, schema: evnts}\n",
	  { "x.yaml:4: operators[0].schema: unknown schema 'evnts'; did you mean 'events'? (schemas: events)" } },
	{ "operators:\n  - {uid: gen, type: generator, schema: [{name: k, type: u64}], key-field: kk}\n",
	  { "x.yaml:2: operators[0].key-field: field 'kk' is not in the schema of operators[0] (fields: k); did you mean 'k'?" } },
	{ "operators:\n  - {uid: gen, type: generator, schema: [{name: k, type: u64}, {name: t, type: f64}], timestamp-field: t}\n",
	  { "operators[0].timestamp-field: field 't' is f64; event time needs a timestamp (or i64 nanoseconds) field" } },
	{ "operators:\n" GEN "  - {uid: c, type: keyed-aggregate, input: gen, key: user, aggregates: [{fn: count, field: v}]}\n",
	  { "operators[1].aggregates[0]: count counts records and takes no 'field'; remove it" } },
	{ "operators:\n" GEN "  - {uid: c, type: keyed-aggregate, input: gen, key: user, aggregates: [{fn: sum}]}\n",
	  { "operators[1].aggregates[0]: sum needs a 'field'" } },
	{ "operators:\n" GEN "  - {uid: c, type: keyed-aggregate, input: gen, key: user, aggregates: [{fn: sum, field: b}]}\n  - {uid: o, type: null-sink, input: c}\n",
	  { "x.yaml:3: operators[1].aggregates[0].field: field 'b' of 'gen' is bytes; sum, min and max need a numeric field" } },
	{ "operators:\n" GEN "  - {uid: c, type: keyed-aggregate, input: gen, key: user, aggregates: [{fn: count}, {fn: count}]}\n",
	  { "operators[1].aggregates[1]: output field 'count' appears twice (also aggregates[0]); name one with 'as'" } },
	{ "operators:\n" GEN "  - {uid: c, type: keyed-aggregate, input: gen, key: user, aggregates: [{fn: avg, field: v}]}\n",
	  { "operators[1].aggregates[0].fn: unknown fn 'avg' (one of: count, sum, min, max)" } },
	{ "operators:\n" GEN "  - {uid: f, type: filter, input: gen, where: [{field: v, op: '=>', value: 1}]}\n",
	  { "operators[1].where[0].op: unknown comparison '=>'" } },
	{ "operators:\n" GEN "  - {uid: w, type: window-aggregate, input: gen, key: user, timestamp-field: ts, window: {size: 1s, slide: 1s}, aggregates: [{fn: count}]}\n",
	  { "operators[1].window.slide: only sliding windows have a slide" } },
	{ "operators:\n" GEN "  - {uid: w, type: window-aggregate, input: gen, key: user, timestamp-field: ts, window: {type: sliding, size: 1s}, aggregates: [{fn: count}]}\n",
	  { "operators[1].window: a sliding window needs a 'slide'" } },
	{ "operators:\n" GEN "  - {uid: w, type: window-aggregate, input: gen, key: user, timestamp-field: ts, window: {type: tumbling, size: 5}, aggregates: [{fn: count}]}\n",
	  { "operators[1].window.size: '5' has no unit; write e.g. 5ms or 5s" } },
	{ "operators:\n" GEN "  - {uid: w, type: window-aggregate, input: gen, key: user, timestamp-field: ts, window: {type: tumblin, size: 1s}, aggregates: [{fn: count}]}\n",
	  { "operators[1].window.type: unknown type 'tumblin'; did you mean 'tumbling'?" } },
	{ "operators:\n" GEN "  - {uid: w, type: window-aggregate, input: gen, key: user, window: {size: 1s}, aggregates: [{fn: count}]}\n",
	  { "x.yaml:3: operators[1]: missing 'timestamp-field' (e.g. timestamp-field: ts)" } },
	{ "operators:\n" GEN "  - {uid: p, type: project, input: gen, fields: [user, {field: v, as: user}]}\n",
	  { "operators[1].fields[1]: output field 'user' appears twice" } },
	{ "operators:\n" GEN "  - {uid: s, type: file-source, parallelism: 2, schema: [{name: k, type: u64}], path: x.csv}\n",
	  { "operators[1]: a file-source reads its file with one subtask; set parallelism: 1" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen, parallelism: 0}\n",
	  { "operators[1].parallelism: '0' is too small (at least 1)" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen, parallelism: two}\n",
	  { "operators[1].parallelism: 'two' is not a whole number" } },
	{ "operators:\n" GEN "  - {uid: 'a/b', type: null-sink, input: gen}\n",
	  { "operators[1].uid: uid 'a/b' must be 1..63 letters, digits, '-', '_' or '.'" } },
	{ "operators:\n" GEN "  - {uid: c, type: count-sink, input: gen, delay-per-batch: 1 s}\n",
	  { "operators[1].delay-per-batch: '1 s' is not a duration" } },
	{ "operators:\n" GEN "  - {uid: c, type: count-sink, input: gen, delay-per-batch: [1s]}\n",
	  { "operators[1].delay-per-batch: expected a single value (e.g. 1s), got a list" } },
	{ "operators:\n" GEN "  - {uid: m, type: filter, input: gen, where: [{field: v, op: '>', value: 1}]}\n",
	  { "x.yaml:3: operators[1]: operator 'm' has no downstream operator" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n  - {uid: o2, type: null-sink, input: out}\n",
	  { "x.yaml:4: operators[2].input: ", "sink" } },
	{ "operator:\n" GEN,
	  { "x.yaml:1: unknown key 'operator'; did you mean 'operators'?" } },
	{ "job: x\n", { "x.yaml:1: missing 'operators:'" } },
	{ "", { "x.yaml: the file is empty" } },
	{ "operators:\n\t- uid: gen\n", { "x.yaml:2:1: invalid YAML: ", "tabs" } },
	{ "operators: [\n", { "x.yaml:2:1: invalid YAML: ", "is closed" } },
	{ "operators:\n" GEN "  - uid: f\n    type: filter\n    input: gen\n    where:\n      - field: v\n        op: >=\n        value: 3\n",
	  { "x.yaml:8:", "invalid YAML: ", "must be quoted, e.g. op: \">=\"" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen, parallelism: -1}\n",
	  { "operators[1].parallelism: '-1' must not be negative" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\nlayout:\n  lcores:\n    1: [gn]\n",
	  { "x.yaml:6: layout.lcores: no operator 'gn'; did you mean 'gen'?" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\nlayout:\n  lcores:\n    1: [gen/1]\n",
	  { "x.yaml:6: layout.lcores: 'gen' has 1 subtask (0..0); there is no subtask 1" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\nlayout:\n  lcores:\n    1: [gen]\n    2: [gen/0]\n",
	  { "x.yaml:7: layout.lcores: 'gen/0' is already placed on lcore 1 at line 6" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\nlayout:\n  priority-ring-size: 100\n",
	  { "x.yaml:5: layout.priority-ring-size: 100 is not a power of two" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\nlayout:\n  rings-size: 100\n",
	  { "x.yaml:5: layout: unknown key 'rings-size'; did you mean 'ring-size'?" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\neal: {no-huge: true}\n",
	  { "x.yaml:4: eal: expected a list of EAL arguments" } },
	/* checkpoint keys */
	{ "config:\n  execution.checkpointing.interval: 1s\n  execution.checkpointing.mode: AT_LEAST_ONCE\n"
	  "  execution.checkpointing.unaligned.enabled: true\n  state.checkpoints.dir: /tmp/c\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:4: config.execution.checkpointing.unaligned: unaligned checkpoints are exactly-once",
	    "AT_LEAST_ONCE (line 3)" } },
	{ "config:\n  execution.checkpointing.interval: 1s\n  execution.checkpointing.aligned-checkpoint-timeout: 100ms\n"
	  "  state.checkpoints.dir: /tmp/c\noperators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:3: config.execution.checkpointing.aligned-checkpoint-timeout: ",
	    "needs execution.checkpointing.unaligned.enabled: true" } },
	{ "config:\n  execution.checkpointing.interval: 1s\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:2: config: state.checkpoints.dir: not set" } },
	{ "config:\n  execution:\n    checkpointing:\n      mode: ONCE\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:4: config.execution.checkpointing.mode: 'ONCE' is not a mode; use EXACTLY_ONCE or AT_LEAST_ONCE" } },
	{ "config:\n  execution.checkpointing.intervall: 1s\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "did you mean 'execution.checkpointing.interval'?" } },
	{ "config:\n  execution.checkpointing.interval: 1s\n  execution.checkpointing.unaligned: true\n"
	  "  execution.checkpointing.aligned-checkpoint-timeout: 20m\n  state.checkpoints.dir: /tmp/c\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "is not below execution.checkpointing.timeout" } },
	{ "config:\n  state.backend.incremental: maybe\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:2: config.state.backend.incremental: 'maybe' is not true or false" } },
	{ "config:\n  state.backend.incremental: true\n  sluice.checkpointing.full-every: 0\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:3: config.sluice.checkpointing.full-every: '0' is not a whole number in 1..1000" } },
	{ "config:\n  state.backend.incremental: true\n  sluice: {checkpointing: {full-every: ten}}\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:3: config.sluice.checkpointing.full-every: 'ten' is not a whole number" } },
	{ "config:\n  sluice.checkpointing.full-every: 5\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:2: config.sluice.checkpointing.full-every: ",
	    "set state.backend.incremental: true or drop this key" } },
	{ "config:\n  state.backend.incremental.full-every: 5\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:2: config: unknown key 'state.backend.incremental.full-every'" } },
	/* restart-strategy keys */
	{ "config:\n  restart-strategy.type: fixed\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:2: config.restart-strategy.type: 'fixed' is not a restart strategy; use none, fixed-delay or exponential-delay" } },
	{ "config:\n  restart-strategy.fixed-delay.attempts: 3\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:2: config.restart-strategy.fixed-delay.attempts: has no effect unless restart-strategy.type: fixed-delay" } },
	{ "config:\n  restart-strategy:\n    type: exponential-delay\n    exponential-delay:\n"
	  "      initial-backoff: 10s\n      max-backoff: 1s\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:5: config: restart-strategy.exponential-delay.max-backoff: 1000 ms is below initial-backoff (10000 ms)" } },
	{ "config:\n  restart-strategy.type: exponential-delay\n"
	  "  restart-strategy.exponential-delay.jitter-factor: 2\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:3: config.restart-strategy.exponential-delay.jitter-factor: '2' is not a number in 0..1" } },
	{ "config:\n  restart-strategy.type: fixed-delay\n"
	  "  restart-strategy.fixed-delay.attempts: 0\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:3: config.restart-strategy.fixed-delay.attempts: '0' is not a whole number in 1.." } },
	{ "config:\n  execution.checkpointing.interval: 1s\n  execution.checkpointing.unaligned.enabled: true\n"
	  "  execution.checkpointing.max-concurrent-checkpoints: 2\n  state.checkpoints.dir: /tmp/c\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:4: config.execution.checkpointing.max-concurrent-checkpoints: 2 checkpoints at once "
	    "cannot be combined with execution.checkpointing.unaligned.enabled: true (line 3)",
	    "set max-concurrent-checkpoints: 1 or disable unaligned checkpoints" } },
	{ "config:\n  execution.checkpointing:\n    interval: 1s\n    max-concurrent-checkpoints: 3\n"
	  "    unaligned: {enabled: true}\n    aligned-checkpoint-timeout: 50ms\n"
	  "  state.checkpoints.dir: /tmp/c\noperators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n",
	  { "x.yaml:4: config.execution.checkpointing.max-concurrent-checkpoints: 3 checkpoints at once",
	    "(line 5), also not when they start aligned with execution.checkpointing.aligned-checkpoint-timeout",
	    "set max-concurrent-checkpoints: 1" } },
	{ "config:\n  execution.checkpointing.interval: 1s\n"
	  "  execution.checkpointing.max-concurrent-checkpoints: 17\n  state.checkpoints.dir: /tmp/c\noperators:\n" GEN
	  "  - {uid: out, type: null-sink, input: gen}\n",
	  { "execution.checkpointing.max-concurrent-checkpoints: 17 is out of range; use 1..16" } },
	/* layout.io-writers */
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {lcore: 2, poll: sometimes}\n",
	  { "x.yaml:6: layout.io-writers[0].poll: 'sometimes' is not a poll mode: own (" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {poll: own}\n",
	  { "x.yaml:6: layout.io-writers[0]: missing 'lcore:'" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {lcore: 2, srves: [1]}\n",
	  { "x.yaml:6: layout.io-writers[0]: unknown key 'srves'; did you mean 'serves'?" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  lcores:\n    2: out\n  io-writers:\n    - {lcore: 2}\n",
	  { "x.yaml:8: layout.io-writers[0]: lcore 2 runs this io writer on its own (poll: own), "
	    "but layout.lcores places 'out' there (line 6); use poll: inline or another lcore" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {lcore: 2}\n    - {lcore: 1, poll: inline}\n",
	  { "x.yaml:7: layout.io-writers[1]: io writer 0 already serves every lcore no other writer lists" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {lcore: 3, serves: [1]}\n    - {lcore: 4, serves: [2, 1]}\n",
	  { "x.yaml:7: layout.io-writers[1]: lcore 1 is already served by io writer 0" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {lcore: 3, serves: [1]}\n    - {lcore: 3, poll: inline, serves: [2]}\n",
	  { "x.yaml:7: layout.io-writers[1]: lcore 3 already polls io writer 0" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {lcore: 3, serves: [1]}\n    - {lcore: 1, poll: inline, serves: [2, 3]}\n",
	  { "x.yaml:7: layout.io-writers[1]: lcore 3 runs an io writer of its own and hosts no subtasks" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers:\n    - {lcore: 3, serves: [1, 1000000]}\n",
	  { "x.yaml:6: layout.io-writers[0].serves: '1000000' is not an lcore id" } },
	{ "operators:\n" GEN "  - {uid: out, type: null-sink, input: gen}\n"
	  "layout:\n  io-writers: 3\n",
	  { "x.yaml:5: layout.io-writers: expected a list of writers" } },
};

/* Criterion runs each parameter in a new process image, where pointers
 * into this one mean nothing: pass the index into bad_cases. */
static int bad_case_index[sizeof(bad_cases) / sizeof(bad_cases[0])];

ParameterizedTestParameters(job_file, bad_inline)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		bad_case_index[i] = (int)i;
	return cr_make_param_array(int, bad_case_index,
				   sizeof(bad_case_index) / sizeof(bad_case_index[0]));
}

ParameterizedTest(int *idx, job_file, bad_inline, .timeout = 120)
{
	const struct bad_case *c = &bad_cases[*idx];
	struct sl_job_file *jf;

	/* sinks' and sources' paths, if any, stay out of the source tree */
	enter_tmpdir();
	jf = sl_job_file_parse("x.yaml", c->yaml, strlen(c->yaml), err, sizeof(err));
	cr_assert_null(jf, "case %d loaded but should not have:\n%s", *idx, c->yaml);
	for (int i = 0; i < 3 && c->expect[i] != NULL; i++)
		cr_expect_not_null(strstr(err, c->expect[i]),
				   "case %d: expected '%s' in: %s", *idx,
				   c->expect[i], err);
}

Test(job_file, checkpoint_keys, .timeout = 120)
{
	static const char yaml[] =
		"config:\n"
		"  execution.checkpointing:\n"
		"    interval: 500ms\n"
		"    timeout: 1m\n"
		"    min-pause: 100ms\n"
		"    max-concurrent-checkpoints: 1\n"
		"    tolerable-failed-checkpoints: 3\n"
		"    unaligned: {enabled: true}\n"
		"    aligned-checkpoint-timeout: 50ms\n"
		"  state.checkpoints.dir: /tmp/sl-ckpts\n"
		"  state.checkpoints.num-retained: 4\n"
		"  state: {backend: {incremental: true}}\n"
		"  sluice.checkpointing.full-every: 7\n"
		"operators:\n"
		"  - uid: gen\n"
		"    type: generator\n"
		"    schema: [{name: key, type: u64}]\n"
		"  - {uid: out, type: null-sink, input: gen}\n";
	struct sl_job_file *jf = sl_job_file_parse("c.yaml", yaml, strlen(yaml), err, sizeof(err));

	cr_assert_not_null(jf, "%s", err);
	const struct sl_checkpoint_config *c = &sl_job_get_config(jf->job)->checkpoint;
	cr_expect_eq(c->interval_ms, 500);
	cr_expect_eq(c->timeout_ms, 60000);
	cr_expect_eq(c->min_pause_ms, 100);
	cr_expect_eq(c->max_concurrent, 1);
	cr_expect_eq(c->tolerable_failures, 3);
	cr_expect_eq(c->aligned_timeout_ms, 50);
	cr_expect_eq(c->mode, SL_CKPT_ALIGNED_TIMEOUT, "unaligned + timeout starts aligned");
	cr_expect_str_eq(c->dir, "/tmp/sl-ckpts");
	cr_expect_eq(c->retained, 4);
	cr_expect(c->incremental);
	cr_expect_eq(c->full_every, 7);
	sl_job_file_free(jf);
}

Test(job_file, restart_strategy_keys, .timeout = 120)
{
	static const char fixed[] =
		"config:\n"
		"  restart-strategy.type: fixed-delay\n"
		"  restart-strategy.fixed-delay: {attempts: 5, delay: 250ms}\n"
		"operators:\n"
		"  - uid: gen\n"
		"    type: generator\n"
		"    schema: [{name: key, type: u64}]\n"
		"  - {uid: out, type: null-sink, input: gen}\n";
	static const char expo[] =
		"config:\n"
		"  restart-strategy:\n"
		"    type: exponential-delay\n"
		"    exponential-delay:\n"
		"      initial-backoff: 100ms\n"
		"      max-backoff: 1m\n"
		"      backoff-multiplier: 1.5\n"
		"      reset-backoff-threshold: 10m\n"
		"      jitter-factor: 0.25\n"
		"operators:\n"
		"  - uid: gen\n"
		"    type: generator\n"
		"    schema: [{name: key, type: u64}]\n"
		"  - {uid: out, type: null-sink, input: gen}\n";
	struct sl_job_file *jf = sl_job_file_parse("r.yaml", fixed, strlen(fixed), err, sizeof(err));

	cr_assert_not_null(jf, "%s", err);
	const struct sl_restart_config *c = &sl_job_get_config(jf->job)->restart;
	cr_expect_eq(c->type, SL_RESTART_FIXED_DELAY);
	cr_expect_eq(c->attempts, 5);
	cr_expect_eq(c->delay_ms, 250);
	sl_job_file_free(jf);

	jf = sl_job_file_parse("r.yaml", expo, strlen(expo), err, sizeof(err));
	cr_assert_not_null(jf, "%s", err);
	c = &sl_job_get_config(jf->job)->restart;
	cr_expect_eq(c->type, SL_RESTART_EXPONENTIAL_DELAY);
	cr_expect_eq(c->initial_backoff_ms, 100);
	cr_expect_eq(c->max_backoff_ms, 60000);
	cr_expect_eq(c->backoff_multiplier, 1.5);
	cr_expect_eq(c->reset_backoff_threshold_ms, 600000);
	cr_expect_eq(c->jitter_factor, 0.25);
	sl_job_file_free(jf);
}

/* Only unaligned checkpoints are limited to one at a time. */
Test(job_file, concurrent_aligned_checkpoints, .timeout = 120)
{
	static const char *const modes[] = { "EXACTLY_ONCE", "AT_LEAST_ONCE" };

	for (unsigned i = 0; i < 2; i++) {
		char yaml[512];
		int n = snprintf(yaml, sizeof(yaml),
				 "config:\n"
				 "  execution.checkpointing.interval: 1s\n"
				 "  execution.checkpointing.mode: %s\n"
				 "  execution.checkpointing.unaligned.enabled: false\n"
				 "  execution.checkpointing.max-concurrent-checkpoints: 2\n"
				 "  state.checkpoints.dir: /tmp/sl-ckpts\n"
				 "operators:\n"
				 "  - {uid: gen, type: generator, schema: [{name: key, type: u64}]}\n"
				 "  - {uid: out, type: null-sink, input: gen}\n",
				 modes[i]);
		cr_assert(n > 0 && (size_t)n < sizeof(yaml));
		struct sl_job_file *jf = sl_job_file_parse("c.yaml", yaml, (size_t)n, err,
							   sizeof(err));
		cr_assert_not_null(jf, "%s: %s", modes[i], err);
		cr_expect_eq(sl_job_get_config(jf->job)->checkpoint.max_concurrent, 2);
		sl_job_file_free(jf);
	}
}

/* ---------------------------------------------------------- values & misc */

Test(job_file, durations_and_numbers, .timeout = 120)
{
	static const char yaml[] =
		"config:\n"
		"  execution.buffer-timeout: 250us\n"
		"  sluice.progress-interval: 1m30s\n"
		"operators:\n"
		"  - uid: gen\n"
		"    type: generator\n"
		"    schema: [{name: k, type: u64}, {name: t, type: timestamp}]\n"
		"    count: 2e6\n"
		"    seed: 0x10\n"
		"    start-time: 1.5s\n"
		"    time-step: 0.5ms\n"
		"    max-out-of-orderness: 0\n"
		"    timestamp-field: t\n"
		"  - {uid: out, type: null-sink, input: gen}\n";
	struct sl_job_file *jf = sl_job_file_parse("d.yaml", yaml, strlen(yaml),
						   err, sizeof(err));
	const struct sl_generator_conf *g;

	cr_assert_not_null(jf, "%s", err);
	cr_expect_eq(sl_job_get_config(jf->job)->buffer_timeout_us, 250);
	cr_expect_eq(sl_job_get_config(jf->job)->progress_ms, 90000);
	g = sl_job_node_conf(jf->job, 0);
	cr_expect_eq(g->count, 2000000);
	cr_expect_eq(g->seed, 16);
	cr_expect_eq(g->start_time_ns, 1500000000LL);
	cr_expect_eq(g->time_step_ns, 500000);
	cr_expect_eq(g->max_out_of_orderness_ns, 0);
	/* the job name defaults to the file's name without its extension */
	cr_expect_str_eq(sl_job_name(jf->job), "d");
	sl_job_file_free(jf);
}

Test(job_file, eal_args_merge, .timeout = 120)
{
	static const char yaml[] =
		"operators:\n"
		"  - {uid: gen, type: generator, schema: [{name: k, type: u64}]}\n"
		"  - {uid: out, type: null-sink, input: gen}\n"
		"eal: --no-huge --no-pci -l 0-1 --vdev net_null0 --file-prefix=a\n";
	char *extra[] = { "--lcores", "0@0,1@1", "--vdev", "net_null1",
			  "--file-prefix", "b" };
	static const char *const want[] = { "sluice", "--no-huge", "--no-pci",
					    "--vdev", "net_null0", "--lcores",
					    "0@0,1@1", "--vdev", "net_null1",
					    "--file-prefix", "b" };
	struct sl_job_file *jf = sl_job_file_parse("e.yaml", yaml, strlen(yaml),
						   err, sizeof(err));
	char **argv;
	int argc = 0;

	cr_assert_not_null(jf, "%s", err);
	cr_assert_eq(jf->eal_argc, 7);
	argv = sl_job_file_eal_args(jf, "sluice", 6, extra, &argc);
	cr_assert_not_null(argv);
	cr_assert_eq(argc, (int)(sizeof(want) / sizeof(want[0])));
	for (int i = 0; i < argc; i++)
		cr_expect_str_eq(argv[i], want[i], "argument %d", i);
	cr_expect_null(argv[argc]);
	free(argv);

	/* without extra arguments: the file's list as is */
	argv = sl_job_file_eal_args(jf, "sluice", 0, NULL, &argc);
	cr_assert_eq(argc, 8);
	cr_expect_str_eq(argv[4], "0-1");
	free(argv);
	sl_job_file_free(jf);
}

Test(suggest, distance_and_threshold, .timeout = 120)
{
	static const char *const types[] = { "generator", "window-aggregate",
					     "keyed-aggregate", "null-sink", NULL };
	static const char *const fields[] = { "key", "ts", "value", "user" };

	cr_expect_eq(sl_edit_distance("", "abc"), 3);
	cr_expect_eq(sl_edit_distance("kitten", "sitting"), 3);
	cr_expect_eq(sl_edit_distance("paralelism", "parallelism"), 1);
	cr_expect_eq(sl_edit_distance("hsah", "hash"), 1); /* transposition */
	cr_expect_eq(sl_edit_distance("Key", "key"), 0);

	cr_expect_str_eq(sl_suggest("windw-aggregate", types, (size_t)-1),
			 "window-aggregate");
	cr_expect_str_eq(sl_suggest("usr", fields, 4), "user");
	/* "window" is too far for a typo but a unique prefix */
	cr_expect_str_eq(sl_suggest("window", types, (size_t)-1), "window-aggregate");
	/* len 3: at most 1 edit */
	cr_expect_null(sl_suggest("xyz", fields, 4));
	cr_expect_null(sl_suggest("key", fields, 4), "exact match is no suggestion");
	cr_expect_null(sl_suggest("", fields, 4));
}

Test(suggest, list, .timeout = 120)
{
	static const char *const names[] = { "a", "bb", "ccc" };
	char buf[64], small[8];

	cr_expect_str_eq(sl_suggest_list(buf, sizeof(buf), names, 3), "a, bb, ccc");
	sl_suggest_list(small, sizeof(small), names, 3);
	cr_expect_str_eq(small, "a, b...");
}
