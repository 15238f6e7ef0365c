/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Seed corpus of the fuzz targets, written by the real encoders so that
 * the seeds follow the format whatever it becomes: the fuzzer starts from
 * valid files and mutates them, instead of guessing magic numbers.
 *
 *     fuzz_seeds metadata|kstate|chan DIR
 *
 * writes a handful of small, varied files (a few KiB each, so that every
 * run of a target is cheap) into DIR, which must exist.  Small block sizes
 * give the data files several blocks while staying small.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/io_file.h"
#include "sluice/snapshot.h"

/* The buffers of one encoded file, gathered in order. */
struct seed_buf {
	uint8_t *data;
	size_t len, cap;
};

static int seed_sink(void *arg, uint64_t off, void *buf, size_t len)
{
	struct seed_buf *s = arg;

	if (off != s->len) {
		sl_snap_buf_free(buf);
		return -EINVAL;
	}
	if (s->len + len > s->cap) {
		size_t cap = (s->len + len) * 2;
		uint8_t *n = realloc(s->data, cap);

		if (n == NULL) {
			sl_snap_buf_free(buf);
			return -ENOMEM;
		}
		s->data = n;
		s->cap = cap;
	}
	memcpy(s->data + s->len, buf, len);
	s->len += len;
	sl_snap_buf_free(buf);
	return 0;
}

static int seed_write(const char *dir, const char *name, const void *data,
		      size_t len)
{
	char path[4096];
	int fd, rc, n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		fprintf(stderr, "fuzz_seeds: %s: %s\n", path, strerror(errno));
		return rc;
	}
	rc = sl_io_write_all(fd, data, len);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		fprintf(stderr, "fuzz_seeds: %s: %s\n", path, strerror(-rc));
	return rc;
}

/* ------------------------------------------------------------ keyed state */

struct kstate_seed {
	const char *name;
	enum sl_snap_kstate_kind kind;
	uint16_t key_size, value_size;
	uint32_t kg_first, kg_count, block_size;
	unsigned int entries, deletions;
};

static const struct kstate_seed kstate_seeds[] = {
	{ "full-small.kstate", SL_SNAP_KSTATE_FULL, 8, 16, 10, 32, 256, 40, 0 },
	{ "full-empty.kstate", SL_SNAP_KSTATE_FULL, 8, 16, 0, 128, 0, 0, 0 },
	{ "full-keyonly.kstate", SL_SNAP_KSTATE_FULL, 3, 0, 0, 1, 64, 20, 0 },
	{ "incremental.kstate", SL_SNAP_KSTATE_INCREMENTAL, 8, 8, 64, 64, 200, 25, 15 },
	{ "incremental-deletions-only.kstate", SL_SNAP_KSTATE_INCREMENTAL, 4, 4,
	  0, 4, 0, 0, 6 },
};

static int gen_kstate(const char *dir)
{
	for (size_t i = 0; i < sizeof(kstate_seeds) / sizeof(kstate_seeds[0]); i++) {
		const struct kstate_seed *k = &kstate_seeds[i];
		struct seed_buf out = { 0 };
		struct sl_snap_kstate_conf c = {
			.uid = i % 2 ? "keyed agg/1" : "counts",
			.subtask = (uint32_t)i,
			.checkpoint_id = 7,
			.kind = k->kind,
			.base_checkpoint_id = k->kind == SL_SNAP_KSTATE_FULL ? 0 : 5,
			.max_parallelism = 128,
			.kg_first = k->kg_first,
			.kg_count = k->kg_count,
			.key_size = k->key_size,
			.value_size = k->value_size,
			.block_size = k->block_size,
			.sink = seed_sink,
			.sink_arg = &out,
		};
		struct sl_snap_kstate_enc *e = sl_snap_kstate_enc_create(&c);
		uint8_t key[8], val[16];
		int rc = 0;

		if (e == NULL)
			return -errno;
		for (unsigned int n = 0; n < k->entries && rc == 0; n++) {
			struct sl_snap_kv kv = {
				(uint16_t)(k->kg_first + n % k->kg_count),
				n * 0x9e3779b97f4a7c15ull, key, val };

			memset(key, (int)n, sizeof(key));
			memset(val, (int)(n * 3), sizeof(val));
			rc = sl_snap_kstate_enc_add(e, &kv, 1);
		}
		for (unsigned int n = 0; n < k->deletions && rc == 0; n++) {
			memset(key, (int)(200 + n), sizeof(key));
			rc = sl_snap_kstate_deleted(e, (uint16_t)(k->kg_first + n % k->kg_count),
						    n, key, 3);
		}
		if (rc == 0)
			rc = sl_snap_kstate_enc_finish(e, NULL);
		sl_snap_kstate_enc_free(e);
		if (rc == 0)
			rc = seed_write(dir, k->name, out.data, out.len);
		free(out.data);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------- channel state */

static const struct sl_snap_chan_id chan_ids[] = {
	{ SL_SNAP_CHAN_IN, 0, "source", 0 },
	{ SL_SNAP_CHAN_IN, 1, "source", 1 },
	{ SL_SNAP_CHAN_OUT, 0, "sink", 3 },
};

static int gen_chan_one(const char *dir, const char *name, uint32_t n_channels,
			uint32_t block_size, unsigned int batches)
{
	struct seed_buf out = { 0 };
	struct sl_snap_chan_conf c = { "window", 2, 9, chan_ids, n_channels,
				       block_size, seed_sink, &out };
	struct sl_snap_chan_enc *e = sl_snap_chan_enc_create(&c);
	uint8_t rec[16 * 12];
	int rc = 0;

	if (e == NULL)
		return -errno;
	for (unsigned int i = 0; i < batches && rc == 0; i++) {
		bool wm = i % 5 == 4;
		struct sl_snap_chan_batch b = {
			.seq = 100 + i,
			.watermark = (int64_t)i * 1000 - 3000,
			.kind = wm ? 1 : 0,
			.record_size = 16,
			.record_count = wm ? 0 : 1 + i % 12,
			.records = rec,
		};

		memset(rec, (int)i, sizeof(rec));
		rc = sl_snap_chan_enc_add(e, i % n_channels, &b);
	}
	if (rc == 0)
		rc = sl_snap_chan_enc_finish(e, NULL);
	sl_snap_chan_enc_free(e);
	if (rc == 0)
		rc = seed_write(dir, name, out.data, out.len);
	free(out.data);
	return rc;
}

static int gen_chan(const char *dir)
{
	int rc;

	if ((rc = gen_chan_one(dir, "three-channels.chstate", 3, 256, 20)) < 0 ||
	    (rc = gen_chan_one(dir, "one-channel.chstate", 1, 0, 4)) < 0 ||
	    (rc = gen_chan_one(dir, "empty.chstate", 2, 0, 0)) < 0)
		return rc;
	return 0;
}

/* --------------------------------------------------------------- metadata */

static int add_ref(struct sl_snap_metadata *m, int op, uint32_t t,
		   const char *path, enum sl_snap_file_type type, uint64_t cid,
		   uint64_t size, uint32_t kg_first, uint32_t kg_count)
{
	struct sl_snap_file_info fi = { size, 0x0123456789abcdefull + size, 1, 0, 0 };
	struct sl_snap_file_ref r;
	int rc = sl_snap_file_ref_set(&r, path, type, cid, &fi, kg_first, kg_count);

	return rc < 0 ? rc : sl_snap_meta_add_file(m, op, t, &r);
}

/* A checkpoint with an incremental chain in shared/, channel state and
 * operator state; a savepoint with private files only; a minimal one. */
static int gen_metadata(const char *dir)
{
	struct sl_snap_metadata *m[3];
	const char *names[3] = { "checkpoint.meta", "savepoint.meta", "minimal.meta" };
	int op, rc = 0;

	m[0] = sl_snap_meta_create(7, SL_SNAP_CHECKPOINT, "demo job",
				   0xfeedfacecafebeefull, 1700000000123456789ll);
	m[1] = sl_snap_meta_create(3, SL_SNAP_SAVEPOINT, "sp",
				   0x0123456789abcdefull, 1);
	m[2] = sl_snap_meta_create(1, SL_SNAP_CHECKPOINT, "j", 1, 0);
	if (m[0] == NULL || m[1] == NULL || m[2] == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	op = sl_snap_meta_add_operator(m[0], "counts", 2, 128);
	for (uint32_t t = 0; op >= 0 && t < 2 && rc == 0; t++) {
		char p[SL_SNAP_PATH_MAX];

		snprintf(p, sizeof(p), "shared/counts-%u-c5.kstate", t);
		rc = add_ref(m[0], op, t, p, SL_SNAP_FILE_KEYED, 5, 1000 + t,
			     t * 64, 64);
		snprintf(p, sizeof(p), "shared/counts-%u-c7.kstate", t);
		if (rc == 0)
			rc = add_ref(m[0], op, t, p, SL_SNAP_FILE_KEYED, 7, 300,
				     t * 64, 64);
		snprintf(p, sizeof(p), "counts-%u-c7.chstate", t);
		if (rc == 0)
			rc = add_ref(m[0], op, t, p, SL_SNAP_FILE_CHANNEL, 7, 77, 0, 0);
	}
	if (op < 0 || rc < 0)
		goto fail;
	op = sl_snap_meta_add_operator(m[0], "source", 2, 128);
	if (op < 0 || (rc = sl_snap_meta_add_blob(m[0], op, 0, "offset=12345", 12)) < 0 ||
	    (rc = sl_snap_meta_add_blob(m[0], op, 1, "\x00\xff\x01\x80z", 5)) < 0)
		goto fail;
	m[0]->stats.duration_ns = 123456;
	m[0]->stats.alignment_ns = 42;

	op = sl_snap_meta_add_operator(m[1], "agg", 1, 4);
	if (op < 0 ||
	    (rc = add_ref(m[1], op, 0, "agg-0-c3.kstate", SL_SNAP_FILE_KEYED, 3, 64,
			  0, 4)) < 0 ||
	    (rc = sl_snap_meta_add_blob(m[1], op, 0, "", 0)) < 0)
		goto fail;

	if ((op = sl_snap_meta_add_operator(m[2], "a", 1, 1)) < 0)
		goto fail;

	for (int i = 0; i < 3 && rc == 0; i++) {
		void *buf;
		size_t len;

		rc = sl_snap_meta_encode(m[i], &buf, &len);
		if (rc == 0) {
			rc = seed_write(dir, names[i], buf, len);
			free(buf);
		}
	}
	goto out;
fail:
	if (rc == 0)
		rc = op;
out:
	for (int i = 0; i < 3; i++)
		sl_snap_meta_free(m[i]);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s metadata|kstate|chan DIR\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "metadata") == 0) {
		rc = gen_metadata(argv[2]);
	} else if (strcmp(argv[1], "kstate") == 0) {
		rc = gen_kstate(argv[2]);
	} else if (strcmp(argv[1], "chan") == 0) {
		rc = gen_chan(argv[2]);
	} else {
		fprintf(stderr, "%s: unknown kind \"%s\" (metadata, kstate or chan)\n",
			argv[0], argv[1]);
		return 2;
	}
	if (rc < 0) {
		fprintf(stderr, "%s: writing %s seeds to %s failed: %s\n", argv[0],
			argv[1], argv[2], strerror(-rc));
		return 1;
	}
	return 0;
}
