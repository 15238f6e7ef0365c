/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Damaged checkpoints are never used (snapshot/checkpoint_dir.c).
 *
 * Every test writes two real checkpoints with the snapshot encoders and
 * sl_snap_meta_write(), as the runtime does: chk-1 (full keyed state, one
 * file in shared/ and one private, channel state, operator state) and
 * chk-2 (an incremental delta in shared/ on top of chk-1's shared file,
 * a private full file, channel state).  Then it damages chk-2 the ways
 * disks and crashes do: a byte flipped anywhere in any of its files
 * (_metadata included), files truncated or extended, a file deleted, a
 * half-written temp metadata, and the ways a hostile or careless hand
 * does: metadata paths that leave the directory, symlinked files and
 * directories.  Each time:
 *
 *   - sl_snap_chk_latest() returns chk-1 (or nothing, when the damaged
 *     file is shared by both), never chk-2;
 *   - its message names the damaged file, relative to the root;
 *   - sl_snap_chk_validate(chk-2) fails naming it too;
 *   - nothing under the root changed: a hash of every name, type, mode,
 *     size, mtime and content is the same before and after.
 *
 * What tests/test_snapshot_format.c already covers is not repeated here
 * (path rules on decoded JSON, a symlinked private file, shared/ or chk-<n>
 * under sl_snap_chk_validate()).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rm_tree.h"
#include "sluice/io_file.h"
#include "sluice/snapshot.h"

/* ================================================================ helpers */

static char root[256];

static void mk_root(void)
{
	snprintf(root, sizeof(root), "/tmp/sl_damage_XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static void rm_root(void)
{
	rm_tree(root);
}

/* "<root>/<rel>" */
static const char *at(const char *rel)
{
	static char buf[4][1024];
	static unsigned int k;
	char *b = buf[k++ % 4];
	int n = snprintf(b, sizeof(buf[0]), "%s/%s", root, rel);

	cr_assert(n > 0 && (size_t)n < sizeof(buf[0]));
	return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(sl_io_write_all(fd, data, len), 0);
	cr_assert_eq(close(fd), 0);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	cr_assert_eq(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

/* ---- a hash of the whole tree under the root ------------------------- */

static uint64_t tree_sum, tree_entries;

/* Entries are hashed one by one and added, so that the result does not
 * depend on the order readdir returns them in. */
static int tree_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	XXH3_state_t *h = XXH3_createState();
	char target[1024];

	(void)flag;
	(void)f;
	XXH3_64bits_reset(h);
	XXH3_64bits_update(h, p, strlen(p) + 1);
	XXH3_64bits_update(h, &st->st_mode, sizeof(st->st_mode));
	XXH3_64bits_update(h, &st->st_size, sizeof(st->st_size));
	XXH3_64bits_update(h, &st->st_mtim, sizeof(st->st_mtim));
	XXH3_64bits_update(h, &st->st_ino, sizeof(st->st_ino));
	if (S_ISREG(st->st_mode)) {
		size_t len;
		uint8_t *d = read_file(p, &len);

		XXH3_64bits_update(h, d, len);
		free(d);
	} else if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlink(p, target, sizeof(target));

		cr_assert(n > 0);
		XXH3_64bits_update(h, target, (size_t)n);
	}
	tree_sum += XXH3_64bits_digest(h);
	tree_entries++;
	XXH3_freeState(h);
	return 0;
}

static uint64_t tree_hash(void)
{
	tree_sum = tree_entries = 0;
	cr_assert_eq(nftw(root, tree_one, 16, FTW_PHYS), 0);
	return tree_sum ^ (tree_entries << 48);
}

/* ---- writing checkpoints with the encoders ------------------------------ */

static int pwrite_sink(void *arg, uint64_t off, void *buf, size_t len)
{
	int fd = *(int *)arg;
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	sl_snap_buf_free(buf);
	return n == (ssize_t)len ? 0 : -EIO;
}

#define KEY 8
#define VAL 16

/* A keyed-state file of subtask t (key groups [64t, 64t + 64)) written by
 * checkpoint cid, full or a delta to `base`, at <root>/<rel>. */
static void put_kstate(const char *rel, uint32_t t, uint64_t cid, uint64_t base,
		       struct sl_snap_file_ref *ref)
{
	int fd = open(at(rel), O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct sl_snap_kstate_conf c = {
		.uid = "agg",
		.subtask = t,
		.checkpoint_id = cid,
		.kind = base ? SL_SNAP_KSTATE_INCREMENTAL : SL_SNAP_KSTATE_FULL,
		.base_checkpoint_id = base,
		.max_parallelism = 128,
		.kg_first = 64 * t,
		.kg_count = 64,
		.key_size = KEY,
		.value_size = VAL,
		.block_size = 512, /* a few blocks per file */
		.sink = pwrite_sink,
		.sink_arg = &fd,
	};
	struct sl_snap_kstate_enc *e;
	struct sl_snap_file_info info;
	uint8_t k[KEY], v[VAL];

	cr_assert(fd >= 0, "%s: %s", rel, strerror(errno));
	e = sl_snap_kstate_enc_create(&c);
	cr_assert_not_null(e);
	for (uint32_t i = 0; i < 40; i++) {
		struct sl_snap_kv kv = { (uint16_t)(64 * t + i % 64), i * 977u + cid, k, v };

		memset(k, (int)(i + 7 * cid), KEY);
		memset(v, (int)(i * 3 + cid), VAL);
		cr_assert_eq(sl_snap_kstate_enc_add(e, &kv, 1), 0);
	}
	for (uint32_t i = 0; base && i < 5; i++) {
		struct sl_snap_kv kv = { (uint16_t)(64 * t + i), i, k, NULL };

		memset(k, (int)(200 + i), KEY);
		cr_assert_eq(sl_snap_kstate_enc_delete(e, &kv, 1), 0);
	}
	cr_assert_eq(sl_snap_kstate_enc_finish(e, &info), 0);
	sl_snap_kstate_enc_free(e);
	cr_assert_eq(fsync(fd), 0);
	cr_assert_eq(close(fd), 0);
	cr_assert_eq(sl_snap_file_ref_set(ref, strncmp(rel, "shared/", 7) == 0 ?
					  rel : strchr(rel, '/') + 1,
					  SL_SNAP_FILE_KEYED, cid, &info, 64 * t, 64), 0);
}

static const struct sl_snap_chan_id chans[] = {
	{ SL_SNAP_CHAN_IN, 0, "src", 0 },
	{ SL_SNAP_CHAN_IN, 1, "src", 1 },
};

/* A channel-state file of subtask 0 at <root>/chk-<cid>/<name>. */
static void put_chan(uint64_t cid, struct sl_snap_file_ref *ref)
{
	char name[SL_SNAP_PATH_MAX], rel[SL_SNAP_PATH_MAX + 32];
	struct sl_snap_file_info info;
	struct sl_snap_chan_enc *e;
	uint8_t rec[16 * 20];
	int fd;

	cr_assert_eq(sl_snap_file_name(name, sizeof(name), "agg", 0, cid,
				       SL_SNAP_FILE_CHANNEL), 0);
	snprintf(rel, sizeof(rel), "chk-%llu/%s", (unsigned long long)cid, name);
	fd = open(at(rel), O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	{
		struct sl_snap_chan_conf c = { "agg", 0, cid, chans, 2, 256,
					       pwrite_sink, &fd };

		e = sl_snap_chan_enc_create(&c);
	}
	cr_assert_not_null(e);
	for (uint32_t i = 0; i < 12; i++) {
		struct sl_snap_chan_batch b = { 50 + i, (int64_t)i * 10, 0, 16,
						1 + i % 20, rec };

		memset(rec, (int)(i + cid), sizeof(rec));
		cr_assert_eq(sl_snap_chan_enc_add(e, i % 2, &b), 0);
	}
	cr_assert_eq(sl_snap_chan_enc_finish(e, &info), 0);
	sl_snap_chan_enc_free(e);
	cr_assert_eq(fsync(fd), 0);
	cr_assert_eq(close(fd), 0);
	cr_assert_eq(sl_snap_file_ref_set(ref, name, SL_SNAP_FILE_CHANNEL, cid, &info,
					  0, 0), 0);
}

/* The files each checkpoint writes (relative to the root). */
#define C1_SHARED "shared/agg-0-c1.kstate"
#define C1_PRIVATE "chk-1/agg-1-c1.kstate"
#define C2_DELTA "shared/agg-0-c2.kstate"
#define C2_PRIVATE "chk-2/agg-1-c2.kstate"
#define C2_CHAN "chk-2/agg-0-c2.chstate"
#define C2_META "chk-2/_metadata"

/* Every file that belongs to chk-2 alone. */
static const char *const chk2_files[] = { C2_META, C2_DELTA, C2_PRIVATE, C2_CHAN };
#define N_CHK2_FILES (sizeof(chk2_files) / sizeof(chk2_files[0]))

/* chk-<cid> as the runtime writes it: subtask 0 of "agg" keeps its keyed
 * state in shared/ (a full file at chk-1, then inherited plus a delta),
 * subtask 1 writes a full private file each time; subtask 0 also has
 * channel state; "src" has operator state.  Returns the metadata. */
static struct sl_snap_metadata *put_checkpoint(uint64_t cid,
					       const struct sl_snap_metadata *prev,
					       bool publish)
{
	struct sl_snap_metadata *m;
	struct sl_snap_file_ref ref;
	struct sl_snap_err err;
	char rel[128], dir[1024], blob[32];
	int op, inherited, n;

	cr_assert_eq(sl_snap_chk_create(root, cid), 0);
	m = sl_snap_meta_create(cid, SL_SNAP_CHECKPOINT, "damage", 0xd00d, 1);
	cr_assert_not_null(m);
	op = sl_snap_meta_add_operator(m, "agg", 2, 128);
	cr_assert_eq(op, 0);
	inherited = sl_snap_meta_inherit_keyed(m, op, 0, prev, 4);
	cr_assert(prev ? inherited >= 1 : inherited == 0, "inherited %d", inherited);
	snprintf(rel, sizeof(rel), "shared/agg-0-c%llu.kstate", (unsigned long long)cid);
	put_kstate(rel, 0, cid, prev ? prev->checkpoint_id : 0, &ref);
	cr_assert_eq(sl_snap_meta_add_file(m, op, 0, &ref), 0);
	put_chan(cid, &ref);
	cr_assert_eq(sl_snap_meta_add_file(m, op, 0, &ref), 0);
	snprintf(rel, sizeof(rel), "chk-%llu/agg-1-c%llu.kstate",
		 (unsigned long long)cid, (unsigned long long)cid);
	put_kstate(rel, 1, cid, 0, &ref);
	cr_assert_eq(sl_snap_meta_add_file(m, op, 1, &ref), 0);
	op = sl_snap_meta_add_operator(m, "src", 1, 128);
	n = snprintf(blob, sizeof(blob), "offset=%llu", (unsigned long long)cid * 100);
	cr_assert_eq(sl_snap_meta_add_blob(m, op, 0, blob, (size_t)n), 0);
	if (publish) {
		cr_assert_eq(sl_snap_chk_path(dir, sizeof(dir), root, cid), 0);
		cr_assert_eq(sl_snap_meta_write(dir, m, &err), 0, "%s", err.msg);
	}
	return m;
}

/* A root holding complete chk-1 and chk-2. */
static void two_checkpoints(void)
{
	struct sl_snap_metadata *m1, *m2;
	struct sl_snap_err err;
	uint64_t id;

	mk_root();
	m1 = put_checkpoint(1, NULL, true);
	m2 = put_checkpoint(2, m1, true);
	cr_assert_eq(m2->operators[0].subtasks[0].n_files, 3, "chain + channel");
	sl_snap_meta_free(m1);
	sl_snap_meta_free(m2);
	cr_assert_eq(sl_snap_chk_latest(root, &id, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(id, 2);
	cr_assert_eq(err.msg[0], '\0', "nothing skipped: %s", err.msg);
}

/* The checks every damage must pass: the newest usable checkpoint is
 * `want` (0: none), the message of sl_snap_chk_latest() and of
 * sl_snap_chk_validate(chk-2) names `file`, and nothing changed. */
static void expect_fallback(uint64_t want, const char *file, const char *what)
{
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err, verr;
	uint64_t before = tree_hash(), id = 0;
	int rc;

	rc = sl_snap_chk_latest(root, &id, &m, &err);
	if (want) {
		cr_assert_eq(rc, 0, "%s: %s", what, err.msg);
		cr_assert_eq(id, want, "%s: restored chk-%llu, the damaged one", what,
			     (unsigned long long)id);
		cr_assert_not_null(m);
		cr_assert_eq(m->checkpoint_id, want);
	} else {
		cr_assert_eq(rc, -ENOENT, "%s: %d", what, rc);
		cr_assert_null(m);
	}
	sl_snap_meta_free(m);
	cr_assert(strstr(err.msg, "chk-2 skipped: ") != NULL, "%s: %s", what,
		  err.msg);
	cr_assert(strstr(err.msg, file) != NULL, "%s: message names %s: %s", what,
		  file, err.msg);
	if (want == 0)
		cr_assert(strstr(err.msg, "; chk-1 skipped: ") != NULL, "%s: %s", what,
			  err.msg);
	cr_assert_neq(sl_snap_chk_validate(root, 2, NULL, &verr), 0, "%s", what);
	cr_assert(strncmp(verr.msg, file, strlen(file)) == 0,
		  "%s: validate names %s: %s", what, file, verr.msg);
	cr_assert_eq(tree_hash(), before, "%s: the root was modified", what);
}

/* ================================================================ tests */

TestSuite(damage, .timeout = 120);

Test(damage, flipped_byte_anywhere_in_any_file)
{
	uint64_t s = 0x5eed;
	size_t checked = 0;

	two_checkpoints();
	for (size_t f = 0; f < N_CHK2_FILES; f++) {
		size_t len;
		uint8_t *orig = read_file(at(chk2_files[f]), &len);
		/* every byte of these small files; at most ~1500 positions */
		size_t step = len / 1500 + 1;
		int fd = open(at(chk2_files[f]), O_WRONLY);

		cr_assert(fd >= 0);
		for (size_t pos = 0; pos < len; pos += step) {
			uint8_t b;
			char what[128];

			s = s * 6364136223846793005ull + 1442695040888963407ull;
			b = orig[pos] ^ (uint8_t)((s >> 56) | 1); /* never 0 */
			cr_assert_eq(pwrite(fd, &b, 1, (off_t)pos), 1);
			snprintf(what, sizeof(what), "%s: byte %zu of %zu flipped",
				 chk2_files[f], pos, len);
			/* the full check (tree hashes) on a sample, the
			 * fallback itself at every position */
			if (pos % 16 == 0 || pos + 1 == len) {
				expect_fallback(1, chk2_files[f], what);
			} else {
				struct sl_snap_err err;
				uint64_t id = 0;

				cr_assert_eq(sl_snap_chk_latest(root, &id, NULL, &err), 0,
					     "%s: %s", what, err.msg);
				cr_assert_eq(id, 1, "%s", what);
				cr_assert(strstr(err.msg, chk2_files[f]) != NULL, "%s: %s",
					  what, err.msg);
			}
			cr_assert_eq(pwrite(fd, &orig[pos], 1, (off_t)pos), 1);
			checked++;
		}
		close(fd);
		free(orig);
	}
	cr_assert(checked > 2000, "%zu positions", checked);
	fprintf(stderr, "damage: %zu flipped bytes over %zu files, none used\n",
		checked, N_CHK2_FILES);
	rm_root();
}

Test(damage, truncated_or_extended_file)
{
	two_checkpoints();
	for (size_t f = 0; f < N_CHK2_FILES; f++) {
		size_t len, cuts[6];
		uint8_t *orig = read_file(at(chk2_files[f]), &len);

		cuts[0] = 0;
		cuts[1] = 1;
		cuts[2] = len / 2;
		cuts[3] = len - 48; /* a data file's trailer gone */
		cuts[4] = len - 1;
		cuts[5] = len + 1; /* a byte appended */
		for (size_t c = 0; c < 6; c++) {
			char what[128];

			if (cuts[c] > len) {
				uint8_t *longer = calloc(1, cuts[c]);

				memcpy(longer, orig, len);
				write_file(at(chk2_files[f]), longer, cuts[c]);
				free(longer);
			} else {
				write_file(at(chk2_files[f]), orig, cuts[c]);
			}
			snprintf(what, sizeof(what), "%s: %zu of %zu bytes", chk2_files[f],
				 cuts[c], len);
			expect_fallback(1, chk2_files[f], what);
		}
		write_file(at(chk2_files[f]), orig, len);
		free(orig);
	}
	rm_root();
}

Test(damage, deleted_file)
{
	struct sl_snap_err err;
	uint64_t id;

	two_checkpoints();
	for (size_t f = 0; f < N_CHK2_FILES; f++) {
		size_t len;
		uint8_t *orig = read_file(at(chk2_files[f]), &len);

		cr_assert_eq(unlink(at(chk2_files[f])), 0);
		expect_fallback(1, chk2_files[f], chk2_files[f]);
		write_file(at(chk2_files[f]), orig, len);
		free(orig);
	}
	cr_assert_eq(sl_snap_chk_latest(root, &id, NULL, &err), 0);
	cr_assert_eq(id, 2, "put back, chk-2 is whole again: %s", err.msg);
	rm_root();
}

/* A file both checkpoints reference (chk-1's full file, chk-2 builds its
 * delta on it): damaged, neither checkpoint may be used. */
Test(damage, shared_base_file_of_both)
{
	size_t len;
	uint8_t *orig;

	two_checkpoints();
	orig = read_file(at(C1_SHARED), &len);
	for (size_t pos = 0; pos < len; pos += 97) {
		orig[pos] ^= 0x40;
		write_file(at(C1_SHARED), orig, len);
		orig[pos] ^= 0x40;
		expect_fallback(0, C1_SHARED, "chk-1's shared file flipped");
	}
	write_file(at(C1_SHARED), orig, len / 3);
	expect_fallback(0, C1_SHARED, "chk-1's shared file truncated");
	cr_assert_eq(unlink(at(C1_SHARED)), 0);
	expect_fallback(0, C1_SHARED, "chk-1's shared file deleted");
	free(orig);
	rm_root();
}

/* A crash while the newest checkpoint's metadata was being written: its
 * data files are all there, `._metadata.tmp` holds any prefix of the
 * metadata (or all of it: crashed before the rename), `_metadata` does
 * not exist.  Also a crash right after chk-3 was created. */
Test(damage, half_written_temp_metadata)
{
	struct sl_snap_metadata *m1, *m2, *m3;
	struct sl_snap_err err;
	void *mb;
	size_t ml;
	uint64_t id;

	two_checkpoints();
	cr_assert_eq(sl_snap_chk_create(root, 4), 0); /* empty */
	cr_assert_eq(sl_snap_meta_load(at("chk-1"), &m1, &err), 0, "%s", err.msg);
	cr_assert_eq(sl_snap_meta_load(at("chk-2"), &m2, &err), 0, "%s", err.msg);
	sl_snap_meta_free(m1);
	m3 = put_checkpoint(3, m2, false);
	cr_assert_eq(sl_snap_meta_encode(m3, &mb, &ml), 0);
	{
		const size_t lens[] = { 0, 1, 31, 32, ml / 2, ml - 9, ml - 1, ml };

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			char what[64];

			write_file(at("chk-3/._metadata.tmp"), mb, lens[i]);
			snprintf(what, sizeof(what), "temp metadata of %zu/%zu bytes",
				 lens[i], ml);
			{
				struct sl_snap_metadata *m = NULL;
				uint64_t before = tree_hash();

				cr_assert_eq(sl_snap_chk_latest(root, &id, &m, &err), 0,
					     "%s: %s", what, err.msg);
				cr_assert_eq(id, 2, "%s", what);
				cr_assert(strstr(err.msg, "chk-4 skipped: chk-4/_metadata: missing") &&
						  strstr(err.msg, "chk-3 skipped: chk-3/_metadata: missing"),
					  "%s: %s", what, err.msg);
				cr_assert_eq(tree_hash(), before, "%s", what);
				sl_snap_meta_free(m);
			}
			cr_assert_eq(sl_snap_chk_validate(root, 3, NULL, &err), -ENOENT);
		}
	}
	/* the same one level down: chk-2's metadata never got renamed */
	{
		size_t len;
		uint8_t *d = read_file(at(C2_META), &len);

		cr_assert_eq(unlink(at(C2_META)), 0);
		write_file(at("chk-2/._metadata.tmp"), d, len);
		expect_fallback(1, C2_META, "chk-2 published only as a temp file");
		free(d);
	}
	free(mb);
	sl_snap_meta_free(m2);
	sl_snap_meta_free(m3);
	rm_root();
}

/* ---- paths that leave the checkpoint directory ------------------------- */

static void put64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrite chk-2/_metadata with `from` replaced by `to` in its JSON body,
 * framed and checksummed per docs/snapshot-format.md, so that only the
 * path rules can refuse it. */
static void rewrite_meta_path(const char *from, const char *to)
{
	size_t len, blen, nlen, nb;
	uint8_t *d = read_file(at(C2_META), &len), *out;
	char *body, *hit;

	cr_assert(len > 48);
	blen = len - 48;
	body = strndup((const char *)d + 32, blen);
	hit = strstr(body, from);
	cr_assert_not_null(hit, "%s in %s", from, body);
	nlen = blen - strlen(from) + strlen(to);
	nb = 48 + nlen;
	out = malloc(nb);
	memcpy(out, d, 16);
	put64le(out + 16, nlen);
	put64le(out + 24, XXH3_64bits(out, 24));
	memcpy(out + 32, body, (size_t)(hit - body));
	memcpy(out + 32 + (hit - body), to, strlen(to));
	strcpy((char *)out + 32 + (hit - body) + strlen(to), hit + strlen(from));
	memcpy(out + 32 + nlen, "SLMDTEND", 8);
	put64le(out + 40 + nlen, XXH3_64bits(out, 40 + nlen));
	write_file(at(C2_META), out, nb);
	free(out);
	free(body);
	free(d);
}

Test(damage, metadata_paths_escaping_the_directory)
{
	char abs_path[512], outside[600], up2[600];
	const char *escapes[] = {
		"\"../outside.chstate\"",	/* .. out of chk-2 */
		up2,				/* .. out of the root */
		"\"../chk-2/agg-0-c2.chstate\"", /* .. back into itself */
		"\"shared/../chk-2/agg-0-c2.chstate\"",
		"\"./agg-0-c2.chstate\"",
		"\"chk-2/agg-0-c2.chstate\"",	/* a subdirectory */
		abs_path,			/* absolute */
	};
	size_t len;
	uint8_t *chan, *meta;

	two_checkpoints();
	/* identical copies of the channel file where the escapes lead, so
	 * that size and checksum would match if they were followed */
	chan = read_file(at(C2_CHAN), &len);
	write_file(at("outside.chstate"), chan, len);
	snprintf(outside, sizeof(outside), "%s-outside.chstate", root);
	write_file(outside, chan, len);
	snprintf(up2, sizeof(up2), "\"../../%s-outside.chstate\"",
		 strrchr(root, '/') + 1);
	snprintf(abs_path, sizeof(abs_path), "\"%s\"", at("outside.chstate"));
	meta = read_file(at(C2_META), &len);
	for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
		struct sl_snap_err err;

		rewrite_meta_path("\"agg-0-c2.chstate\"", escapes[i]);
		expect_fallback(1, C2_META, escapes[i]);
		cr_assert_eq(sl_snap_chk_validate(root, 2, NULL, &err), -EINVAL,
			     "%s: %s", escapes[i], err.msg);
		cr_assert(strstr(err.msg, "escapes") != NULL, "%s", err.msg);
		write_file(at(C2_META), meta, len);
	}
	/* a shared file's path turned into a private path to another
	 * checkpoint's file */
	rewrite_meta_path("\"shared/agg-0-c2.kstate\"", "\"../shared/agg-0-c2.kstate\"");
	expect_fallback(1, C2_META, "../shared");
	unlink(outside);
	free(chan);
	free(meta);
	rm_root();
}

/* Copy <root>/<rel> to <root>/<dst> and replace rel by a symlink to it
 * (absolute or relative target). */
static void symlink_away(const char *rel, const char *dst, bool relative)
{
	size_t len;
	uint8_t *d = read_file(at(rel), &len);

	write_file(at(dst), d, len);
	free(d);
	cr_assert_eq(unlink(at(rel)), 0);
	if (relative) {
		char target[512];
		int depth = 0;

		for (const char *p = rel; *p; p++)
			depth += *p == '/';
		target[0] = '\0';
		for (int i = 0; i < depth; i++)
			strcat(target, "../");
		strcat(target, dst);
		cr_assert_eq(symlink(target, at(rel)), 0);
	} else {
		cr_assert_eq(symlink(at(dst), at(rel)), 0);
	}
}

static void unsymlink(const char *rel, const char *dst)
{
	cr_assert_eq(unlink(at(rel)), 0);
	cr_assert_eq(rename(at(dst), at(rel)), 0);
}

Test(damage, symlinked_files)
{
	two_checkpoints();
	/* an identical copy behind each symlink: only the refusal to
	 * follow symlinks can stop it */
	for (size_t f = 0; f < N_CHK2_FILES; f++) {
		for (int relative = 0; relative < 2; relative++) {
			char what[128];

			symlink_away(chk2_files[f], relative ? "chk-2-copy" : "elsewhere",
				     relative);
			snprintf(what, sizeof(what), "%s is a %s symlink", chk2_files[f],
				 relative ? "relative" : "absolute");
			expect_fallback(1, chk2_files[f], what);
			{
				struct sl_snap_err err;

				cr_assert_eq(sl_snap_chk_validate(root, 2, NULL, &err),
					     -ELOOP, "%s: %s", what, err.msg);
				cr_assert(strstr(err.msg, "symlink") != NULL, "%s",
					  err.msg);
			}
			unsymlink(chk2_files[f], relative ? "chk-2-copy" : "elsewhere");
		}
	}
	rm_root();
}

Test(damage, symlinked_directories)
{
	struct sl_snap_err err;
	uint64_t id, before;

	two_checkpoints();
	/* chk-2 moved away and symlinked back: not a checkpoint of this root */
	cr_assert_eq(rename(at("chk-2"), at("moved")), 0);
	cr_assert_eq(symlink("moved", at("chk-2")), 0);
	before = tree_hash();
	cr_assert_eq(sl_snap_chk_latest(root, &id, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(id, 1);
	cr_assert_eq(sl_snap_chk_validate(root, 2, NULL, &err), -ELOOP);
	cr_assert(strstr(err.msg, "chk-2: is a symlink") == err.msg, "%s", err.msg);
	cr_assert_eq(tree_hash(), before);
	cr_assert_eq(unlink(at("chk-2")), 0);
	cr_assert_eq(rename(at("moved"), at("chk-2")), 0);

	/* shared/ moved away and symlinked back: both checkpoints use it */
	cr_assert_eq(rename(at("shared"), at("shared-copy")), 0);
	cr_assert_eq(symlink("shared-copy", at("shared")), 0);
	expect_fallback(0, "shared", "shared/ is a symlink");

	/* the root itself may be a symlink (a configured path): fine */
	cr_assert_eq(unlink(at("shared")), 0);
	cr_assert_eq(rename(at("shared-copy"), at("shared")), 0);
	{
		char link[300];

		snprintf(link, sizeof(link), "%s-link", root);
		cr_assert_eq(symlink(root, link), 0);
		cr_assert_eq(sl_snap_chk_latest(link, &id, NULL, &err), 0, "%s", err.msg);
		cr_assert_eq(id, 2);
		unlink(link);
	}
	rm_root();
}
