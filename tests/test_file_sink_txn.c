/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The file sink's transactional mode (two-phase commit): part files are
 * sealed at each barrier and become visible only when their checkpoint
 * completes; a restore commits what the checkpoint listed and removes what
 * came after it.  The part-file protocol is tested directly, then in jobs
 * whose committed output is checked record by record against the
 * generator's definition and the offsets in the checkpoints.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../dataplane/sink_file_pvt.h"
#include "eal_fixture.h"
#include "rm_tree.h"
#include "sluice/io.h"
#include "sluice/job.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void touch(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static void part(const struct fsink_parts *p, enum fsink_part_kind k,
		 uint64_t id, char *buf)
{
	cr_assert_eq(fsink_part_path(p, k, id, buf, SL_PATH_MAX), 0);
}

Test(file_sink_parts, names_keep_output_order_and_hide_uncommitted_files)
{
	struct fsink_parts p;
	char path[SL_PATH_MAX];

	cr_assert_eq(fsink_parts_init(&p, "out/dir/counts.csv", 3), 0);
	part(&p, FSINK_FINAL, 7, path);
	cr_expect_str_eq(path, "out/dir/counts.part-3-0000000007.csv");
	part(&p, FSINK_PENDING, 7, path);
	cr_expect_str_eq(path, "out/dir/.counts.part-3-0000000007.csv.pending");
	part(&p, FSINK_IN_PROGRESS, 0, path);
	cr_expect_str_eq(path, "out/dir/.counts.part-3.csv.inprogress");
	cr_assert_eq(fsink_parts_init(&p, "plain", 0), 0);
	part(&p, FSINK_FINAL, 12, path);
	cr_expect_str_eq(path, "./plain.part-0-0000000012");
}

Test(file_sink_parts, seal_commit_and_recover)
{
	char root[] = "/tmp/sl-parts-XXXXXX", out[SL_PATH_MAX], a[SL_PATH_MAX];
	char err[512] = "";
	struct fsink_parts p;
	uint64_t ids[FSINK_MAX_PENDING];
	uint32_t sub;
	unsigned n, removed;

	cr_assert_not_null(mkdtemp(root));
	snprintf(out, sizeof(out), "%s/o.csv", root);
	cr_assert_eq(fsink_parts_init(&p, out, 1), 0);

	/* two barriers: parts 3 and 5 pending */
	part(&p, FSINK_IN_PROGRESS, 0, a);
	touch(a, "three\n");
	cr_assert_eq(fsink_parts_seal(&p, 3, err, sizeof(err)), 0, "%s", err);
	touch(a, "five\n");
	cr_assert_eq(fsink_parts_seal(&p, 5, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(fsink_parts_seal(&p, 5, err, sizeof(err)), -EINVAL);
	cr_assert_eq(p.n_pending, 2);

	/* checkpoint 3 completes: only part 3 becomes visible */
	cr_assert_eq(fsink_parts_commit(&p, 3, err, sizeof(err)), 0, "%s", err);
	part(&p, FSINK_FINAL, 3, a);
	cr_expect(exists(a));
	part(&p, FSINK_FINAL, 5, a);
	cr_expect(!exists(a));
	part(&p, FSINK_PENDING, 5, a);
	cr_expect(exists(a));
	cr_assert_eq(p.n_pending, 1);

	/* the snapshot of checkpoint 5 lists part 5 */
	size_t len = fsink_parts_blob_size(&p);
	uint8_t blob[64];
	cr_assert_leq(len, sizeof(blob));
	fsink_parts_blob_write(&p, blob);
	cr_assert_eq(fsink_parts_blob_read(blob, len, &sub, ids, &n), 0);
	cr_assert_eq(sub, 1);
	cr_assert_eq(n, 1);
	cr_assert_eq(ids[0], 5);
	cr_expect_eq(fsink_parts_blob_read(blob, len - 1, &sub, ids, &n), -EBADMSG);
	blob[0] ^= 1;
	cr_expect_eq(fsink_parts_blob_read(blob, len, &sub, ids, &n), -EBADMSG);

	/* the crashed run went on: an in-progress part, part 7 pending,
	 * part 9 committed (checkpoint 9 completed, but it is damaged and
	 * the restore falls back to 5); another subtask's files are left */
	part(&p, FSINK_IN_PROGRESS, 0, a);
	touch(a, "after five\n");
	part(&p, FSINK_PENDING, 7, a);
	touch(a, "seven\n");
	part(&p, FSINK_FINAL, 9, a);
	touch(a, "nine\n");
	/* and part 4: checkpoint 4 completed, so the sink queued its commit
	 * to the io writer and no longer listed it, but the rename had not
	 * run when the process died */
	part(&p, FSINK_PENDING, 4, a);
	touch(a, "four\n");
	char other[SL_PATH_MAX + 64];
	snprintf(other, sizeof(other), "%s/o.part-2-0000000009.csv", root);
	touch(other, "other subtask\n");

	struct fsink_parts q;
	cr_assert_eq(fsink_parts_init(&q, out, 1), 0);
	cr_assert_eq(fsink_parts_recover(&q, 5, ids, n, &removed, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(removed, 1, "part 9 was committed after checkpoint 5");
	part(&q, FSINK_FINAL, 3, a);
	cr_expect(exists(a));
	part(&q, FSINK_FINAL, 5, a);
	cr_expect(exists(a), "the restored checkpoint's pending part is committed");
	part(&q, FSINK_FINAL, 4, a);
	cr_expect(exists(a), "an unlisted pending part before the checkpoint is committed");
	part(&q, FSINK_PENDING, 4, a);
	cr_expect(!exists(a));
	part(&q, FSINK_PENDING, 7, a);
	cr_expect(!exists(a));
	part(&q, FSINK_FINAL, 9, a);
	cr_expect(!exists(a));
	part(&q, FSINK_IN_PROGRESS, 0, a);
	cr_expect(!exists(a));
	cr_expect(exists(other), "another subtask's part is not touched");
	cr_expect_eq(q.n_pending, 0);

	/* restoring again (a crash during the restore) changes nothing */
	cr_assert_eq(fsink_parts_recover(&q, 5, ids, n, &removed, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(removed, 0);
	part(&q, FSINK_FINAL, 5, a);
	cr_expect(exists(a));

	/* a listed part that is neither pending nor committed is lost output */
	ids[0] = 2;
	cr_expect_eq(fsink_parts_recover(&q, 5, ids, 1, &removed, err, sizeof(err)),
		     -ENOENT);
	cr_expect(strstr(err, ".o.part-1-0000000002.csv.pending") != NULL, "%s", err);
	/* and ids after the checkpoint are refused */
	ids[0] = 6;
	cr_expect_eq(fsink_parts_recover(&q, 5, ids, 1, &removed, err, sizeof(err)),
		     -EBADMSG);
	rm_tree(root);
}

/* A fresh start clears a crashed run's uncommitted parts, but refuses to
 * mix its output with committed parts of an earlier run. */
Test(file_sink_parts, fresh_start_clears_uncommitted_and_refuses_committed)
{
	char root[] = "/tmp/sl-parts-XXXXXX", out[SL_PATH_MAX], a[SL_PATH_MAX];
	char err[512] = "";
	struct fsink_parts p;
	unsigned removed;

	cr_assert_not_null(mkdtemp(root));
	snprintf(out, sizeof(out), "%s/o.csv", root);
	cr_assert_eq(fsink_parts_init(&p, out, 0), 0);
	part(&p, FSINK_IN_PROGRESS, 0, a);
	touch(a, "x\n");
	part(&p, FSINK_PENDING, 4, a);
	touch(a, "x\n");
	cr_assert_eq(fsink_parts_fresh(&p, &removed, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(removed, 2);
	cr_expect(!exists(a));
	part(&p, FSINK_FINAL, 2, a);
	touch(a, "x\n");
	cr_assert_eq(fsink_parts_fresh(&p, &removed, err, sizeof(err)), -EEXIST);
	cr_expect(strstr(err, "o.part-0-0000000002.csv") != NULL, "%s", err);
	cr_expect(strstr(err, "--restore latest") != NULL, "%s", err);
	cr_expect(exists(a), "committed output is never removed by a fresh start");
	rm_tree(root);
}

/* ------------------------------------------------------------------ jobs */

struct part_file {
	uint64_t id;
	bool pending;
};

static int cmp_part(const void *a, const void *b)
{
	const struct part_file *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The part files of subtask 0 of "<root>/o.csv", in id order. */
static unsigned list_parts(const char *root, struct part_file *parts,
			   unsigned max, unsigned *in_progress)
{
	DIR *d = opendir(root);
	struct dirent *de;
	unsigned n = 0;

	cr_assert_not_null(d);
	*in_progress = 0;
	while ((de = readdir(d)) != NULL) {
		uint64_t id;
		int used = 0;

		if (strcmp(de->d_name, ".o.part-0.csv.inprogress") == 0)
			(*in_progress)++;
		else if (sscanf(de->d_name, "o.part-0-%" SCNu64 ".csv%n", &id, &used) == 1 &&
			 de->d_name[used] == '\0') {
			cr_assert_lt(n, max);
			parts[n++] = (struct part_file){ id, false };
		} else if (sscanf(de->d_name, ".o.part-0-%" SCNu64 ".csv.pending%n", &id,
				  &used) == 1 &&
			   de->d_name[used] == '\0') {
			cr_assert_lt(n, max);
			parts[n++] = (struct part_file){ id, true };
		}
	}
	closedir(d);
	qsort(parts, n, sizeof(parts[0]), cmp_part);
	return n;
}

/*
 * Read part `p` (CSV "key,seq" with a header) and check that its records
 * are the generator's records *next, *next + 1, ...; advances *next.
 */
static void check_part(const char *root, const struct part_file *p,
		       const struct sl_generator_conf *g, uint64_t *next)
{
	char path[SL_PATH_MAX], line[256];
	struct {
		uint64_t key, seq;
	} r;
	FILE *f;

	snprintf(path, sizeof(path), p->pending ? "%s/.o.part-0-%010" PRIu64 ".csv.pending"
						: "%s/o.part-0-%010" PRIu64 ".csv",
		 root, p->id);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_assert_str_eq(line, "key,seq\n", "every part starts with the header");
	while (fgets(line, sizeof(line), f) != NULL) {
		uint64_t key, seq;
		cr_assert_eq(sscanf(line, "%" SCNu64 ",%" SCNu64, &key, &seq), 2, "%s: %s",
			     path, line);
		sl_generator_record(g, *next, &r);
		cr_assert_eq(seq, *next, "%s: record %" PRIu64 " expected, %" PRIu64 " found",
			     path, *next, seq);
		cr_assert_eq(key, r.key, "%s: record %" PRIu64, path, seq);
		(*next)++;
	}
	fclose(f);
}

/* The generator's offset ("next") recorded in checkpoint `id`; false if
 * that checkpoint did not complete. */
static bool gen_offset(const char *ckroot, uint64_t id, uint64_t *next)
{
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err = { "" };
	char meta[4200];

	snprintf(meta, sizeof(meta), "%s/chk-%" PRIu64 "/_metadata", ckroot, id);
	if (!exists(meta))
		return false;
	cr_assert_eq(sl_snap_chk_validate(ckroot, id, &m, &err), 0, "%s", err.msg);
	const struct sl_snap_operator_meta *gen = sl_snap_meta_find(m, "gen");
	cr_assert_not_null(gen);
	cr_assert_eq(gen->subtasks[0].n_blobs, 1);
	memcpy(next, gen->subtasks[0].blobs[0].data, 8);
	sl_snap_meta_free(m);
	return true;
}

struct fail_after {
	uint64_t limit;
};

/* Pass batches through; fail the job once `limit` records went by. */
static int fail_after(struct sl_task *t, struct sl_batch *in, void *arg)
{
	const struct fail_after *f = arg;

	if (t->records_in >= f->limit) {
		sl_task_error(t, "injected failure after %" PRIu64 " records",
			      t->records_in);
		return -EIO;
	}
	sl_emit_forward(t, in);
	return 0;
}

/* io faults for the next run_job() (NULL: none), and its checkpoints */
static const struct sl_io_fault *run_fault;
static struct sl_job_checkpoints run_sum;

/*
 * gen -> udf (fails after `fail_at` records, 0 = never) -> file sink,
 * checkpoints every 15 ms.  Returns sl_job_run()'s result.
 */
static int run_job(const char *out_root, const char *ck_root, uint64_t count,
		   uint64_t fail_at, struct sl_generator_conf *g)
{
	struct sl_job_config cfg;
	struct sl_file_sink_conf fs = { .format = SL_FILE_CSV };
	struct fail_after fa = { .limit = fail_at ? fail_at : UINT64_MAX };
	struct sl_udf_conf uc = { .fn = fail_after, .arg = &fa };
	int rc;

	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 15;
	cfg.checkpoint.retained = 1000;
	cfg.batch_size = 64;
	cfg.checkpoint.io_fault = run_fault;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", ck_root);
	snprintf(fs.path, sizeof(fs.path), "%s/o.csv", out_root);
	sl_generator_conf_defaults(g);
	sl_schema_add(&g->schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g->schema, "seq", SL_TYPE_U64, 0);
	g->seed = 5;
	g->count = count;
	g->rate = 400000;
	g->key_cardinality = 100;

	struct sl_job *job = sl_job_create("txn", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, g, 1);
	int ui = sl_job_add(job, "fail", &sl_op_udf, &uc, 1);
	int si = sl_job_add(job, "sink", &sl_op_file_sink, &fs, 1);
	cr_assert(gi >= 0 && ui >= 0 && si >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, gi, ui, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_connect(job, ui, si, SL_PART_FORWARD, NULL), 0);
	rc = sl_job_run(job);
	sl_job_checkpoint_summary(job, &run_sum);
	if (fail_at == 0)
		cr_assert_eq(rc, 0, "%s", sl_job_error(job));
	else
		cr_assert(strstr(sl_job_error(job), "injected failure") != NULL, "%s",
			  sl_job_error(job));
	sl_job_free(job);
	return rc;
}

Test(file_sink_txn, finished_job_commits_every_record_once_in_order, .timeout = 120)
{
	char out[] = "/tmp/sl-txn-out-XXXXXX", ck[] = "/tmp/sl-txn-ck-XXXXXX";
	struct sl_generator_conf g;
	struct part_file parts[4096];
	unsigned n, in_progress;
	uint64_t next = 0;
	const uint64_t count = 60000;

	cr_assert_not_null(mkdtemp(out));
	cr_assert_not_null(mkdtemp(ck));
	sl_test_eal("(0-1)@(0-1)", NULL);
	run_job(out, ck, count, 0, &g);

	n = list_parts(out, parts, 4096, &in_progress);
	cr_assert_eq(in_progress, 0);
	cr_assert_geq(n, 3, "parts sealed at barriers (%u)", n);
	for (unsigned i = 0; i < n; i++) {
		cr_assert(!parts[i].pending, "part %" PRIu64 " left pending", parts[i].id);
		check_part(out, &parts[i], &g, &next);
	}
	cr_assert_eq(next, count, "committed output holds every record once");
	fprintf(stderr, "file_sink_txn: %" PRIu64 " records in %u committed parts\n",
		next, n);
	rm_tree(out);
	rm_tree(ck);
	sl_test_eal_fini();
}

/*
 * A failing job leaves committed parts exactly up to a completed
 * checkpoint's offset, then pending parts up to the newest snapshot; it
 * never commits output no complete checkpoint covers.
 */
Test(file_sink_txn, failed_job_commits_only_what_checkpoints_cover, .timeout = 120)
{
	char out[] = "/tmp/sl-txn-out-XXXXXX", ck[] = "/tmp/sl-txn-ck-XXXXXX";
	struct sl_generator_conf g;
	struct part_file parts[4096];
	unsigned n, in_progress, committed = 0;
	uint64_t next = 0;

	cr_assert_not_null(mkdtemp(out));
	cr_assert_not_null(mkdtemp(ck));
	sl_test_eal("(0-1)@(0-1)", NULL);
	run_job(out, ck, 0, 50000, &g);

	n = list_parts(out, parts, 4096, &in_progress);
	cr_assert_eq(in_progress, 0, "the failed run's in-progress part is removed");
	cr_assert_geq(n, 2, "parts sealed before the failure (%u)", n);
	for (unsigned i = 0; i < n; i++) {
		if (!parts[i].pending) {
			cr_assert_eq(committed, i, "committed parts come before pending ones");
			committed++;
		}
		check_part(out, &parts[i], &g, &next);
		/* parts end exactly at their checkpoint's offset; a committed
		 * part's checkpoint completed */
		uint64_t offset;
		bool complete = gen_offset(ck, parts[i].id, &offset);
		cr_assert(complete || parts[i].pending,
			  "part %" PRIu64 " committed without its checkpoint", parts[i].id);
		if (complete)
			cr_assert_eq(next, offset,
				     "part %" PRIu64 " ends at the offset checkpoint %" PRIu64
				     " recorded", parts[i].id, parts[i].id);
	}
	cr_assert_geq(committed, 1, "some checkpoint completed and was committed");
	cr_assert_lt(next, 50000 + 1, "nothing after the failure was sealed");
	fprintf(stderr, "file_sink_txn: failed run left %u committed and %u pending parts, %" PRIu64
		" records\n", committed, n - committed, next);
	rm_tree(out);
	rm_tree(ck);
	sl_test_eal_fini();
}

/*
 * The sink's lcore only hands its sealed part to the io writer: with
 * every request on the part files held 50 ms by a slow-disk fault, the
 * checkpoints still complete, their asynchronous part covers the
 * writer's fdatasync, close and directory fsync (at least 3 x 50 ms:
 * the acknowledgement waited for them), and the output is exactly once.
 */
Test(file_sink_txn, seal_is_done_by_the_io_writer, .timeout = 120)
{
	static const struct sl_io_fault slow = { .path_substr = ".csv.pending",
						 .delay_us = 50000 };
	char out[] = "/tmp/sl-txn-out-XXXXXX", ck[] = "/tmp/sl-txn-ck-XXXXXX";
	struct sl_generator_conf g;
	struct part_file parts[4096];
	unsigned n, in_progress;
	uint64_t next = 0;
	const uint64_t count = 400000; /* 1 s: checkpoints complete meanwhile */

	cr_assert_not_null(mkdtemp(out));
	cr_assert_not_null(mkdtemp(ck));
	sl_test_eal("(0-1)@(0-1)", NULL);
	run_fault = &slow;
	run_job(out, ck, count, 0, &g);
	fprintf(stderr, "file_sink_txn: slow seal: %" PRIu64 " completed, %" PRIu64
		" failed, longest sync part %.1f ms, longest async part %.1f ms\n",
		run_sum.completed, run_sum.failed, run_sum.max_sync_ns / 1e6,
		run_sum.max_async_ns / 1e6);
	cr_assert_geq(run_sum.completed, 1, "%s", run_sum.last_failure);
	cr_assert_geq(run_sum.max_async_ns, 150000000ull,
		      "the acknowledgement waited for the writer's seal");
	n = list_parts(out, parts, 4096, &in_progress);
	cr_assert_eq(in_progress, 0);
	for (unsigned i = 0; i < n; i++) {
		cr_assert(!parts[i].pending, "part %" PRIu64 " left pending", parts[i].id);
		check_part(out, &parts[i], &g, &next);
	}
	cr_assert_eq(next, count, "committed output holds every record once");
	rm_tree(out);
	rm_tree(ck);
	sl_test_eal_fini();
}
