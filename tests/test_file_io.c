/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * File source and file sink: CSV and binary read back exactly what was
 * written, start offsets resume at the right record, errors name the path
 * (unreadable file, malformed line, ENOSPC), parallel sinks write one file
 * per subtask and nothing is published before the end; plus the io/
 * durable-file helpers.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "eal_fixture.h"
#include "sluice/io_file.h"
#include "sluice/job.h"
#include "sluice/operators.h"

static struct sl_job *new_job(const char *name)
{
	struct sl_job_config cfg;

	sl_job_config_defaults(&cfg);
	return sl_job_create(name, &cfg);
}

/* ------------------------------------------------------------- helpers */

static char tmpdir[256];

static const char *mkdir_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sl_fileio_XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	return tmpdir;
}

static void rm_tmp(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[600];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

static unsigned count_dir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	unsigned n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

/* The test schema: every type, with padding (u32 before u64, 5-byte tail). */
static void test_schema(struct sl_schema *s)
{
	memset(s, 0, sizeof(*s));
	sl_schema_add(s, "id", SL_TYPE_U32, 0);
	sl_schema_add(s, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(s, "delta", SL_TYPE_I64, 0);
	sl_schema_add(s, "x", SL_TYPE_F64, 0);
	sl_schema_add(s, "tag", SL_TYPE_BYTES, 5);
}

struct trec {
	uint32_t id;
	int64_t ts, delta;
	double x;
	uint8_t tag[5];
};

static struct trec trec_of(uint32_t i)
{
	struct trec r = {
		.id = i,
		.ts = 1000000 + (int64_t)i * 10 - (i % 3) * 7, /* a bit out of order */
		.delta = -(int64_t)i * 3,
		.x = i * 0.25 + 1.0 / 3.0,
		.tag = {(uint8_t)i, 0xab, (uint8_t)(i >> 8), 0, 0x7f},
	};
	return r;
}

static void trec_pack(const struct sl_schema *s, const struct trec *r, uint8_t *rec)
{
	memset(rec, 0, s->record_size);
	memcpy(rec + sl_schema_find(s, "id")->offset, &r->id, 4);
	memcpy(rec + sl_schema_find(s, "ts")->offset, &r->ts, 8);
	memcpy(rec + sl_schema_find(s, "delta")->offset, &r->delta, 8);
	memcpy(rec + sl_schema_find(s, "x")->offset, &r->x, 8);
	memcpy(rec + sl_schema_find(s, "tag")->offset, r->tag, 5);
}

static void write_csv(const char *path, uint32_t n, bool header, long *offsets)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	if (header)
		fprintf(f, "id,ts,delta,x,tag\n");
	for (uint32_t i = 0; i < n; i++) {
		struct trec r = trec_of(i);
		if (i % 100 == 50)
			fprintf(f, "\n"); /* blank lines are skipped */
		if (offsets)
			offsets[i] = ftell(f);
		fprintf(f, "%u, %ld,%ld,%.17g,%02x%02x%02x%02x%02x%s\n", r.id,
			(long)r.ts, (long)r.delta, r.x, r.tag[0], r.tag[1],
			r.tag[2], r.tag[3], r.tag[4], i % 7 == 3 ? "\r" : "");
	}
	fclose(f);
}

static void write_bin(const struct sl_schema *s, const char *path, uint32_t n)
{
	FILE *f = fopen(path, "wb");
	uint8_t rec[128];

	cr_assert_not_null(f);
	for (uint32_t i = 0; i < n; i++) {
		struct trec r = trec_of(i);
		trec_pack(s, &r, rec);
		cr_assert_eq(fwrite(rec, s->record_size, 1, f), 1);
	}
	fclose(f);
}

/* Verifies that the stream is records first, first+1, ... in order. */
struct seq_check {
	const struct sl_schema *schema;
	uint32_t next;
	atomic_int bad;
	char why[200];
};

static int seq_check_batch(struct sl_task *t, const struct sl_batch *b, void *arg)
{
	struct seq_check *sc = arg;
	uint8_t want[128];

	(void)t;
	for (uint32_t k = 0; k < b->count; k++, sc->next++) {
		struct trec r = trec_of(sc->next);
		trec_pack(sc->schema, &r, want);
		if (memcmp(sl_batch_record(b, k), want, b->record_size) != 0) {
			snprintf(sc->why, sizeof(sc->why), "record %u differs",
				 sc->next);
			atomic_fetch_add(&sc->bad, 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* Build and run: node(s) given by add() are chained with forward edges. */
struct stage {
	const char *uid;
	const struct sl_operator_ops *ops;
	const void *conf;
	uint32_t p;
	enum sl_partition part; /* of the edge into this stage */
};

static int run_chain(const struct stage *st, unsigned n, char *err, size_t errlen)
{
	struct sl_job *job = new_job("fileio");
	int prev = -1, rc;

	cr_assert_not_null(job);
	for (unsigned i = 0; i < n; i++) {
		int id = sl_job_add(job, st[i].uid, st[i].ops, st[i].conf, st[i].p);
		cr_assert_geq(id, 0, "%s", sl_job_error(job));
		if (prev >= 0)
			cr_assert_eq(sl_job_connect(job, prev, id, st[i].part, NULL), 0,
				     "%s", sl_job_error(job));
		prev = id;
	}
	rc = sl_job_run(job);
	if (err)
		snprintf(err, errlen, "%s", sl_job_error(job));
	sl_job_free(job);
	return rc;
}

static void file_source_conf(struct sl_file_source_conf *c, const char *path,
			     enum sl_file_format fmt)
{
	memset(c, 0, sizeof(*c));
	test_schema(&c->schema);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->format = fmt;
	strcpy(c->ts_field, "ts");
	c->max_out_of_orderness_ns = 100;
}

static uint64_t trec_checksum(const struct sl_schema *s, uint32_t from, uint32_t to)
{
	uint8_t rec[128];
	uint64_t sum = 0;

	for (uint32_t i = from; i < to; i++) {
		struct trec r = trec_of(i);
		trec_pack(s, &r, rec);
		sum += XXH3_64bits(rec, s->record_size);
	}
	return sum;
}

/* ------------------------------------------------------------ sources */

Test(file_source, csv_reads_back_exactly, .timeout = 120)
{
	char path[300];
	struct sl_file_source_conf fc;
	struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
	struct seq_check chk = {0};
	struct sl_count_sink_conf cc = {.result = &res, .check = seq_check_batch,
					.check_arg = &chk};
	const uint32_t n = 10007;
	char err[512];

	sl_test_eal("0-1", NULL);
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/in.csv", tmpdir);
	write_csv(path, n, true, NULL);
	file_source_conf(&fc, path, SL_FILE_CSV);
	fc.skip_header = true;
	chk.schema = &fc.schema;
	struct stage st[] = {{"src", &sl_op_file_source, &fc, 1, 0},
			     {"sink", &sl_op_count_sink, &cc, 1, SL_PART_FORWARD}};
	cr_assert_eq(run_chain(st, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(chk.bad, 0, "%s", chk.why);
	cr_assert_eq(res.records, n);
	cr_assert_eq(chk.next, n);
	cr_assert_eq(res.checksum, trec_checksum(&fc.schema, 0, n));
	int64_t max_ts = INT64_MIN;
	for (uint32_t i = 0; i < n; i++)
		if (trec_of(i).ts > max_ts)
			max_ts = trec_of(i).ts;
	/* largest ts - out-of-orderness, except that the last batch carries
	 * the end-of-event-time watermark (not counted): within 2 batches */
	cr_assert_leq(res.max_watermark, max_ts - 100);
	cr_assert_geq(res.max_watermark, max_ts - 100 - 2 * 256 * 10);
	rm_tmp();
	sl_test_eal_fini();
}

Test(file_source, binary_reads_back_exactly, .timeout = 120)
{
	char path[300], err[512];
	struct sl_file_source_conf fc;
	struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
	struct seq_check chk = {0};
	struct sl_count_sink_conf cc = {.result = &res, .check = seq_check_batch,
					.check_arg = &chk};
	const uint32_t n = 50001; /* several 1 MiB buffer refills */

	sl_test_eal("0-1", NULL);
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/in.bin", tmpdir);
	file_source_conf(&fc, path, SL_FILE_BINARY);
	write_bin(&fc.schema, path, n);
	chk.schema = &fc.schema;
	struct stage st[] = {{"src", &sl_op_file_source, &fc, 1, 0},
			     {"sink", &sl_op_count_sink, &cc, 1, SL_PART_FORWARD}};
	cr_assert_eq(run_chain(st, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(chk.bad, 0, "%s", chk.why);
	cr_assert_eq(res.records, n);
	cr_assert_eq(res.checksum, trec_checksum(&fc.schema, 0, n));
	rm_tmp();
	sl_test_eal_fini();
}

Test(file_source, start_offset_resumes_at_the_record, .timeout = 120)
{
	static long offsets[3000];
	char path[300], err[512];
	struct sl_file_source_conf fc;
	const uint32_t n = 3000;

	sl_test_eal("0-1", NULL);
	mkdir_tmp();

	/* CSV: the offset of line k (after the header) starts at record k */
	snprintf(path, sizeof(path), "%s/in.csv", tmpdir);
	write_csv(path, n, true, offsets);
	for (uint32_t k = 1; k < n; k += 1234) {
		struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
		struct seq_check chk = {.next = k};
		struct sl_count_sink_conf cc = {.result = &res, .check = seq_check_batch,
						.check_arg = &chk};
		file_source_conf(&fc, path, SL_FILE_CSV);
		fc.skip_header = true; /* ignored past offset 0 */
		fc.start_offset = (uint64_t)offsets[k];
		chk.schema = &fc.schema;
		struct stage st[] = {{"src", &sl_op_file_source, &fc, 1, 0},
				     {"sink", &sl_op_count_sink, &cc, 1, SL_PART_FORWARD}};
		cr_assert_eq(run_chain(st, 2, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(chk.bad, 0, "k=%u: %s", k, chk.why);
		cr_assert_eq(res.records, n - k, "k=%u", k);
	}

	/* binary: offset k * record_size */
	snprintf(path, sizeof(path), "%s/in.bin", tmpdir);
	file_source_conf(&fc, path, SL_FILE_BINARY);
	write_bin(&fc.schema, path, n);
	for (uint32_t k = 0; k <= n; k += 1000) {
		struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
		struct seq_check chk = {.next = k, .schema = &fc.schema};
		struct sl_count_sink_conf cc = {.result = &res, .check = seq_check_batch,
						.check_arg = &chk};
		fc.start_offset = (uint64_t)k * fc.schema.record_size;
		struct stage st[] = {{"src", &sl_op_file_source, &fc, 1, 0},
				     {"sink", &sl_op_count_sink, &cc, 1, SL_PART_FORWARD}};
		cr_assert_eq(run_chain(st, 2, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(chk.bad, 0, "k=%u: %s", k, chk.why);
		cr_assert_eq(res.records, n - k);
	}

	/* an offset inside a record is refused at plan time */
	fc.start_offset = 3;
	struct sl_job *job = new_job("bad-offset");
	struct sl_count_sink_conf cc0 = {0};
	int s = sl_job_add(job, "src", &sl_op_file_source, &fc, 1);
	int k = sl_job_add(job, "sink", &sl_op_count_sink, &cc0, 1);
	sl_job_connect(job, s, k, SL_PART_FORWARD, NULL);
	cr_assert_lt(sl_job_plan(job), 0);
	cr_assert(strstr(sl_job_error(job), "not a multiple of the record size"),
		  "%s", sl_job_error(job));
	sl_job_free(job);
	rm_tmp();
	sl_test_eal_fini();
}

static const char *plan_error(const struct sl_file_source_conf *fc,
			      uint32_t p, char *buf, size_t len, bool prepare)
{
	struct sl_job *job = new_job("errs");
	struct sl_count_sink_conf cc = {0};
	int s = sl_job_add(job, "src", &sl_op_file_source, fc, p);
	int k = sl_job_add(job, "sink", &sl_op_count_sink, &cc, 1);
	cr_assert_eq(sl_job_connect(job, s, k, SL_PART_REBALANCE, NULL), 0);
	int rc = prepare ? sl_job_prepare(job) : sl_job_plan(job);
	cr_assert_lt(rc, 0, "expected an error");
	snprintf(buf, len, "%s", sl_job_error(job));
	sl_job_free(job);
	return buf;
}

Test(file_source, errors_name_the_path, .timeout = 120)
{
	struct sl_file_source_conf fc;
	char path[300], msg[1024];

	sl_test_eal("0-1", NULL);
	mkdir_tmp();

	file_source_conf(&fc, "/nonexistent/dir/input.csv", SL_FILE_CSV);
	plan_error(&fc, 1, msg, sizeof(msg), false);
	cr_assert(strstr(msg, "cannot read /nonexistent/dir/input.csv: No such file or directory; check the path"),
		  "%s", msg);

	/* binary file whose size does not fit the schema */
	snprintf(path, sizeof(path), "%s/odd.bin", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("0123456789", f);
	fclose(f);
	file_source_conf(&fc, path, SL_FILE_BINARY);
	plan_error(&fc, 1, msg, sizeof(msg), false);
	cr_assert(strstr(msg, path) && strstr(msg, "not a multiple of the record size"),
		  "%s", msg);

	/* parallelism > 1 */
	snprintf(path, sizeof(path), "%s/ok.csv", tmpdir);
	write_csv(path, 10, false, NULL);
	file_source_conf(&fc, path, SL_FILE_CSV);
	plan_error(&fc, 2, msg, sizeof(msg), true);
	cr_assert(strstr(msg, "parallelism 1"), "%s", msg);

	/* ts field of the wrong type */
	file_source_conf(&fc, path, SL_FILE_CSV);
	strcpy(fc.ts_field, "x");
	plan_error(&fc, 1, msg, sizeof(msg), false);
	cr_assert(strstr(msg, "ts_field 'x'"), "%s", msg);

	/* CSV start offset in the middle of a line */
	file_source_conf(&fc, path, SL_FILE_CSV);
	fc.start_offset = 2;
	plan_error(&fc, 1, msg, sizeof(msg), false);
	cr_assert(strstr(msg, "not at the start of a line"), "%s", msg);
	rm_tmp();
	sl_test_eal_fini();
}

Test(file_source, malformed_csv_fails_with_line_and_field, .timeout = 120)
{
	struct sl_file_source_conf fc;
	struct sl_count_sink_conf cc = {0};
	char path[300], err[1024], want[400];

	sl_test_eal("0-1", NULL);
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/bad.csv", tmpdir);
	FILE *f = fopen(path, "w");
	fprintf(f, "id,ts,delta,x,tag\n1,2,3,4.5,00\n\n2,3,abc,1,00\n");
	fclose(f);
	file_source_conf(&fc, path, SL_FILE_CSV);
	fc.skip_header = true;
	struct stage st[] = {{"src", &sl_op_file_source, &fc, 1, 0},
			     {"sink", &sl_op_count_sink, &cc, 1, SL_PART_FORWARD}};
	cr_assert_lt(run_chain(st, 2, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s:4: field 'delta': 'abc' is not a number", path);
	cr_assert(strstr(err, want), "got: %s", err);

	/* wrong number of cells */
	f = fopen(path, "w");
	fprintf(f, "1,2,3\n");
	fclose(f);
	fc.skip_header = false;
	cr_assert_lt(run_chain(st, 2, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s:1: expected 5 fields, got 3", path);
	cr_assert(strstr(err, want), "got: %s", err);

	/* u32 out of range and bad hex */
	f = fopen(path, "w");
	fprintf(f, "4294967296,2,3,4,00\n");
	fclose(f);
	cr_assert_lt(run_chain(st, 2, err, sizeof(err)), 0);
	cr_assert(strstr(err, "field 'id': '4294967296' is out of range"), "got: %s", err);
	f = fopen(path, "w");
	fprintf(f, "1,2,3,4,0g\n");
	fclose(f);
	cr_assert_lt(run_chain(st, 2, err, sizeof(err)), 0);
	cr_assert(strstr(err, "field 'tag': '0g' is not hex"), "got: %s", err);
	rm_tmp();
	sl_test_eal_fini();
}

/* -------------------------------------------------------------- sinks */

static void gen_conf(struct sl_generator_conf *c, uint64_t count)
{
	sl_generator_conf_defaults(c);
	sl_schema_add(&c->schema, "key", SL_TYPE_U32, 0);
	sl_schema_add(&c->schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&c->schema, "seq", SL_TYPE_U64, 0);
	sl_schema_add(&c->schema, "price", SL_TYPE_F64, 0);
	sl_schema_add(&c->schema, "tag", SL_TYPE_BYTES, 6);
	strcpy(c->key_field, "key");
	strcpy(c->ts_field, "ts");
	strcpy(c->seq_field, "seq");
	c->count = count;
	c->max_out_of_orderness_ns = 3000;
}

static uint64_t gen_checksum(const struct sl_generator_conf *c)
{
	uint8_t rec[256];
	uint64_t sum = 0;

	for (uint64_t i = 0; i < c->count; i++) {
		sl_generator_record(c, i, rec);
		sum += XXH3_64bits(rec, c->schema.record_size);
	}
	return sum;
}

/* generator -> file sink, then file source -> count sink: same records */
static void round_trip(enum sl_file_format fmt, const char *name)
{
	struct sl_generator_conf gc;
	struct sl_file_sink_conf sc = {.format = fmt};
	struct sl_file_source_conf fc = {0};
	struct sl_count_result res = {.max_watermark = SL_WATERMARK_MIN};
	struct sl_count_sink_conf cc = {.result = &res};
	char err[512];

	gen_conf(&gc, 25000);
	snprintf(sc.path, sizeof(sc.path), "%s/%s", tmpdir, name);
	struct stage w[] = {{"gen", &sl_op_generator, &gc, 1, 0},
			    {"out", &sl_op_file_sink, &sc, 1, SL_PART_FORWARD}};
	cr_assert_eq(run_chain(w, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(count_dir_entries(), 1, "only the published file, no temp file");

	fc.schema = gc.schema;
	snprintf(fc.path, sizeof(fc.path), "%s", sc.path);
	fc.format = fmt;
	fc.skip_header = true;
	struct stage r[] = {{"src", &sl_op_file_source, &fc, 1, 0},
			    {"sink", &sl_op_count_sink, &cc, 1, SL_PART_FORWARD}};
	cr_assert_eq(run_chain(r, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(res.records, gc.count);
	cr_assert_eq(res.checksum, gen_checksum(&gc),
		     "records read back equal the generated ones, bit for bit");
}

Test(file_sink, csv_output_parses_back, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mkdir_tmp();
	round_trip(SL_FILE_CSV, "out.csv");

	/* and the text itself: header, then record 0 as sl_field_format says */
	char path[300], line[512] = "", cell[600];
	struct sl_generator_conf gc;
	uint8_t rec[256];
	gen_conf(&gc, 25000);
	sl_generator_record(&gc, 0, rec);
	for (unsigned f = 0; f < gc.schema.nfields; f++) {
		sl_field_format(&gc.schema.fields[f], rec, cell, sizeof(cell));
		strcat(line, f ? "," : "");
		strcat(line, cell);
	}
	snprintf(path, sizeof(path), "%s/out.csv", tmpdir);
	size_t len;
	char *text = slurp(path, &len);
	cr_assert(strncmp(text, "key,ts,seq,price,tag\n", 21) == 0, "header: %.40s", text);
	cr_assert(strncmp(text + 21, line, strlen(line)) == 0,
		  "first row '%s' vs '%.60s'", line, text + 21);
	unsigned lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	cr_assert_eq(lines, 25001);
	free(text);
	rm_tmp();
	sl_test_eal_fini();
}

Test(file_sink, binary_output_reads_back, .timeout = 120)
{
	struct sl_generator_conf gc;
	struct stat st;
	char path[300];

	sl_test_eal("0-1", NULL);
	mkdir_tmp();
	round_trip(SL_FILE_BINARY, "out.bin");
	gen_conf(&gc, 25000);
	snprintf(path, sizeof(path), "%s/out.bin", tmpdir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, 25000ull * gc.schema.record_size);
	rm_tmp();
	sl_test_eal_fini();
}

Test(file_sink, parallel_sink_writes_one_file_per_subtask, .timeout = 120)
{
	struct sl_generator_conf gc;
	struct sl_file_sink_conf sc = {.format = SL_FILE_CSV};
	char path[300], err[512];

	sl_test_eal("0-1", NULL);
	mkdir_tmp();
	gen_conf(&gc, 10000);
	snprintf(sc.path, sizeof(sc.path), "%s/out.csv", tmpdir);
	struct stage w[] = {{"gen", &sl_op_generator, &gc, 2, 0},
			    {"out", &sl_op_file_sink, &sc, 2, SL_PART_FORWARD}};
	cr_assert_eq(run_chain(w, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(count_dir_entries(), 2, "out.0.csv and out.1.csv only");
	cr_assert_neq(access(sc.path, F_OK), 0, "no unsuffixed out.csv");

	unsigned total = 0;
	for (unsigned j = 0; j < 2; j++) {
		snprintf(path, sizeof(path), "%s/out.%u.csv", tmpdir, j);
		char *text = slurp(path, NULL);
		char *save = NULL;
		char *ln = strtok_r(text, "\n", &save);
		cr_assert_str_eq(ln, "key,ts,seq,price,tag");
		while ((ln = strtok_r(NULL, "\n", &save)) != NULL) {
			unsigned long key, s;
			long ts;
			cr_assert_eq(sscanf(ln, "%lu,%ld,%lu,", &key, &ts, &s), 3, "%s", ln);
			cr_assert_eq(s % 2, j, "subtask %u wrote seq %lu (forward edge: generator %u's records)",
				     j, s, j);
			total++;
		}
		free(text);
	}
	cr_assert_eq(total, 10000);
	rm_tmp();
	sl_test_eal_fini();
}

Test(file_sink, write_error_fails_the_job_and_publishes_nothing, .timeout = 120)
{
	struct sl_generator_conf gc;
	struct sl_file_sink_conf sc = {.format = SL_FILE_BINARY};
	char err[1024];

	sl_test_eal("0-1", NULL);
	mkdir_tmp();
	gen_conf(&gc, 200000); /* > 1 MiB: the buffer is flushed mid-stream */
	snprintf(sc.path, sizeof(sc.path), "%s/full.bin", tmpdir);
	sl_io_fault_set(ENOSPC, 100000);
	struct stage w[] = {{"gen", &sl_op_generator, &gc, 1, 0},
			    {"out", &sl_op_file_sink, &sc, 1, SL_PART_FORWARD}};
	int rc = run_chain(w, 2, err, sizeof(err));
	sl_io_fault_clear();
	cr_assert_eq(rc, -ENOSPC, "rc %d: %s", rc, err);
	cr_assert(strstr(err, sc.path) && strstr(err, "No space left on device"),
		  "message names the path and the cause: %s", err);
	cr_assert_eq(count_dir_entries(), 0, "neither the file nor its temp file remains");
	rm_tmp();
	sl_test_eal_fini();
}

Test(file_sink, missing_directories_are_created, .timeout = 60)
{
	sl_test_eal("0-1", NULL);
	struct sl_generator_conf gc;
	struct sl_file_sink_conf sc = {.format = SL_FILE_CSV};
	struct sl_job *job = new_job("mkdir");
	char dir[] = "/tmp/sl-mkdir-XXXXXX";
	struct stat st;

	cr_assert_not_null(mkdtemp(dir));
	gen_conf(&gc, 10);
	snprintf(sc.path, sizeof(sc.path), "%s/a/b/out.csv", dir);
	int g = sl_job_add(job, "gen", &sl_op_generator, &gc, 1);
	int s = sl_job_add(job, "out", &sl_op_file_sink, &sc, 1);
	cr_assert_eq(sl_job_connect(job, g, s, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	cr_assert_eq(stat(sc.path, &st), 0, "%s was written", sc.path);
	cr_assert_gt(st.st_size, 0);
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(file_sink, directory_below_a_file_is_a_plan_error, .timeout = 60)
{
	struct sl_generator_conf gc;
	struct sl_file_sink_conf sc = {.format = SL_FILE_CSV};
	struct sl_job *job = new_job("nodir");
	char file[] = "/tmp/sl-notdir-XXXXXX";
	int fd = mkstemp(file);

	cr_assert_geq(fd, 0);
	close(fd);
	gen_conf(&gc, 10);
	snprintf(sc.path, sizeof(sc.path), "%s/sub/out.csv", file);
	int g = sl_job_add(job, "gen", &sl_op_generator, &gc, 1);
	int s = sl_job_add(job, "out", &sl_op_file_sink, &sc, 1);
	cr_assert_eq(sl_job_connect(job, g, s, SL_PART_FORWARD, NULL), 0);
	cr_assert_lt(sl_job_plan(job), 0);
	cr_assert(strstr(sl_job_error(job), "is not a directory"), "%s", sl_job_error(job));
	cr_assert(strstr(sl_job_error(job), file), "%s", sl_job_error(job));
	unlink(file);
	sl_job_free(job);
}

/* ------------------------------------------------------------ io helpers */

Test(io_file, tmp_path_and_dirname, .timeout = 30)
{
	char buf[64];

	cr_assert_eq(sl_io_tmp_path("dir/out.csv", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "dir/.out.csv.tmp");
	cr_assert_eq(sl_io_tmp_path("out", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, ".out.tmp");
	cr_assert_eq(sl_io_tmp_path("/a/b/c", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/a/b/.c.tmp");
	cr_assert_eq(sl_io_tmp_path("dir/", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(sl_io_tmp_path("0123456789", buf, 10), -ENAMETOOLONG);

	cr_assert_eq(sl_io_dirname("a/b/c", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "a/b");
	cr_assert_eq(sl_io_dirname("c", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, ".");
	cr_assert_eq(sl_io_dirname("/c", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/");
}

Test(io_file, write_publish_and_faults, .timeout = 30)
{
	char final[300], tmp[300];
	static char data[3 << 20];
	size_t len;
	int fd;

	mkdir_tmp();
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 31);
	snprintf(final, sizeof(final), "%s/meta", tmpdir);
	cr_assert_eq(sl_io_tmp_path(final, tmp, sizeof(tmp)), 0);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(sl_io_write_all(fd, data, sizeof(data)), 0);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
	cr_assert_neq(access(final, F_OK), 0, "not visible before publish");
	cr_assert_eq(sl_io_publish(tmp, final), 0);
	cr_assert_neq(access(tmp, F_OK), 0, "temp name gone");
	char *back = slurp(final, &len);
	cr_assert_eq(len, sizeof(data));
	cr_assert_eq(memcmp(back, data, len), 0);
	free(back);

	cr_assert_eq(sl_io_fsync_dir(tmpdir), 0);
	cr_assert_eq(sl_io_fsync_dir("/nonexistent/x"), -ENOENT);
	cr_assert_eq(sl_io_publish("/nonexistent/a", final), -ENOENT);

	/* injected fault: the allowed prefix is written, then -EIO */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	sl_io_fault_set(EIO, 1000);
	cr_assert_eq(sl_io_write_all(fd, data, 600), 0);
	cr_assert_eq(sl_io_write_all(fd, data, 600), -EIO);
	cr_assert_eq(sl_io_write_all(fd, data, 1), -EIO);
	sl_io_fault_clear();
	cr_assert_eq(sl_io_write_all(fd, data, 1), 0);
	close(fd);
	struct stat st;
	cr_assert_eq(stat(tmp, &st), 0);
	cr_assert_eq(st.st_size, 1001);
	cr_assert_eq(sl_io_write_all(-1, data, 1), -EBADF);
	unlink(tmp);
	rm_tmp();
}
