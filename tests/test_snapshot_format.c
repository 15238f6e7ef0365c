/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Snapshot format (snapshot/, include/sluice/snapshot.h): round trips of
 * keyed-state, channel-state and metadata files; incremental files with
 * deletions built from a real sl_kstate under concurrent updates;
 * corruption (every flipped byte, every truncation) detected with a
 * message naming the file; validation of a checkpoint directory (missing,
 * corrupt and truncated files, symlinks, path escapes); retention with
 * shared files; atomic metadata publish; and a bounded random-mutation
 * loop over the fuzz entry points, with checksums repaired by a framing
 * written here from docs/snapshot-format.md, so that the mutations reach
 * the parsers behind the checksums.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rm_tree.h"
#include "sluice/io_file.h"
#include "sluice/keyed_state.h"
#include "sluice/keygroup.h"
#include "sluice/snapshot.h"

/* ================================================================ helpers */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

static void put64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A sink that collects the buffers in memory and checks their offsets and
 * the O_DIRECT layout of sl_snap_sink_fn: aligned address and offset, only
 * the last buffer of an unaligned length, zeros after it to the alignment. */
struct memsink {
	uint8_t *data;
	size_t len, cap;
	unsigned int calls;
	unsigned int fail_at; /* 1-based call that fails with -EIO; 0: none */
	bool offsets_ok;
	bool layout_ok;
	bool ended;	      /* a buffer of unaligned length came */
};

static int memsink_fn(void *arg, uint64_t off, void *buf, size_t len)
{
	struct memsink *m = arg;
	const uint8_t *pad = (const uint8_t *)buf + len;

	m->calls++;
	if (off != m->len)
		m->offsets_ok = false;
	if ((uintptr_t)buf % SL_SNAP_BUF_ALIGN || off % SL_SNAP_BUF_ALIGN ||
	    m->ended)
		m->layout_ok = false;
	for (size_t i = len; i % SL_SNAP_BUF_ALIGN; i++)
		if (*pad++ != 0)
			m->layout_ok = false;
	if (len % SL_SNAP_BUF_ALIGN)
		m->ended = true;
	if (m->fail_at && m->calls == m->fail_at) {
		sl_snap_buf_free(buf);
		return -EIO;
	}
	if (m->len + len > m->cap) {
		m->cap = (m->len + len) * 2;
		m->data = realloc(m->data, m->cap);
		cr_assert_not_null(m->data);
	}
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	sl_snap_buf_free(buf);
	return 0;
}

static void memsink_init(struct memsink *m)
{
	memset(m, 0, sizeof(*m));
	m->offsets_ok = true;
	m->layout_ok = true;
}

/* A sink writing each buffer at its offset, as an async writer would. */
static int filesink_fn(void *arg, uint64_t off, void *buf, size_t len)
{
	int fd = *(int *)arg;
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	sl_snap_buf_free(buf);
	return n == (ssize_t)len ? 0 : -EIO;
}

static char tmpdir[256];

static const char *mk_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sl_snapfmt_XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	return tmpdir;
}

static void rm_tmp(void)
{
	rm_tree(tmpdir);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(sl_io_write_all(fd, data, len), 0);
	close(fd);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	fstat(fd, &st);
	b = malloc((size_t)st.st_size + 1);
	cr_assert_eq(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static struct sl_snap_src mem_src(const char *name, const void *d, size_t n)
{
	struct sl_snap_src s = { name, d ? d : "", n, -1 };

	return s;
}

/* ============================================ keyed-state test material */

#define KS 8
#define VS 16

static void key_of(uint8_t *k, uint64_t id)
{
	put64le(k, id);
}

static void val_of(uint8_t *v, uint64_t id, uint32_t ver)
{
	for (int i = 0; i < VS; i++)
		v[i] = (uint8_t)(id * 7 + ver * 131 + (uint64_t)i * 13);
}

/* Recorded delivery of a keyed load. */
struct kv_rec {
	uint16_t kg;
	uint64_t hash;
	uint8_t key[KS];
	uint8_t val[VS];
	bool has_val;
};

struct kv_log {
	struct kv_rec *v;
	size_t n, cap;
	size_t dels_after_entries; /* deletions seen after an entry: must be 0 */
	size_t entries;
};

static void kv_push(struct kv_log *l, const struct sl_snap_kv *kv, bool val)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].kg = kv->kg;
	l->v[l->n].hash = kv->hash;
	memcpy(l->v[l->n].key, kv->key, KS);
	if (val)
		memcpy(l->v[l->n].val, kv->value, VS);
	l->v[l->n].has_val = val;
	l->n++;
}

static int on_entries(void *arg, const struct sl_snap_kv *kv, unsigned int n)
{
	struct kv_log *l = arg;

	cr_assert(n >= 1 && n <= 32, "bursts hold 1..32 entries, got %u", n);
	for (unsigned int i = 0; i < n; i++)
		kv_push(l, &kv[i], true);
	l->entries += n;
	return 0;
}

static int on_deletions(void *arg, const struct sl_snap_kv *kv, unsigned int n)
{
	struct kv_log *l = arg;

	if (l->entries)
		l->dels_after_entries += n;
	for (unsigned int i = 0; i < n; i++) {
		cr_assert_null(kv[i].value);
		kv_push(l, &kv[i], false);
	}
	return 0;
}

static struct sl_snap_kstate_conf ks_conf(struct memsink *m, uint32_t block)
{
	struct sl_snap_kstate_conf c = {
		.uid = "counts",
		.subtask = 1,
		.checkpoint_id = 7,
		.kind = SL_SNAP_KSTATE_FULL,
		.max_parallelism = 128,
		.kg_first = 10,
		.kg_count = 32,
		.key_size = KS,
		.value_size = VS,
		.block_size = block,
		.sink = memsink_fn,
		.sink_arg = m,
	};
	return c;
}

/* A keyed-state file with n entries in random key-group order (and, if
 * incremental, nd deletions); the expected entries go into *want. */
static void make_kstate(struct memsink *m, uint32_t block, size_t n, size_t nd,
			struct kv_rec **want, struct sl_snap_file_info *info)
{
	struct sl_snap_kstate_conf c = ks_conf(m, block);
	struct sl_snap_kstate_enc *e;
	uint64_t s = 42;
	struct kv_rec *w = calloc(n + 1, sizeof(*w));

	memsink_init(m);
	if (nd) {
		c.kind = SL_SNAP_KSTATE_INCREMENTAL;
		c.base_checkpoint_id = 5;
	}
	e = sl_snap_kstate_enc_create(&c);
	cr_assert_not_null(e, "create: %s", strerror(errno));
	for (size_t i = 0; i < n; i++) {
		struct sl_snap_kv kv;

		w[i].kg = (uint16_t)(10 + rng_below(&s, 32));
		w[i].hash = rng_next(&s);
		key_of(w[i].key, i);
		val_of(w[i].val, i, 1);
		kv = (struct sl_snap_kv){ w[i].kg, w[i].hash, w[i].key, w[i].val };
		/* mix single adds and bursts */
		cr_assert_eq(sl_snap_kstate_enc_add(e, &kv, 1), 0);
	}
	for (size_t i = 0; i < nd; i++) {
		uint8_t k[KS];

		key_of(k, 100000 + i);
		cr_assert_eq(sl_snap_kstate_deleted(e, (uint16_t)(10 + i % 32),
						    i * 3, k, 9), 0);
	}
	cr_assert_eq(sl_snap_kstate_enc_finish(e, info), 0);
	sl_snap_kstate_enc_free(e);
	cr_assert(m->offsets_ok, "buffers arrive at contiguous offsets");
	cr_assert(m->layout_ok, "buffers are laid out for O_DIRECT");
	if (want)
		*want = w;
	else
		free(w);
}

/* ================================================================ tests */

Test(kstate, roundtrip_many_blocks_file_and_memory, .timeout = 120)
{
	struct memsink m;
	struct kv_rec *want;
	struct sl_snap_file_info info;
	const size_t n = 5000;
	char path[512];
	int fd;

	mk_tmp();
	make_kstate(&m, 300, n, 0, &want, &info);
	cr_assert_eq(info.size, m.len);
	cr_assert_eq(info.xxh3, XXH3_64bits(m.data, m.len));
	cr_assert_eq(info.records, n);
	cr_assert(info.blocks > 100, "small blocks: %llu", (unsigned long long)info.blocks);
	cr_assert(m.calls == 1, "a file under 1 MiB is one buffer: %u", m.calls);

	/* the same bytes through an offset-writing sink into a file */
	snprintf(path, sizeof(path), "%s/counts-1-c7.kstate", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	{
		struct sl_snap_kstate_conf c = ks_conf(NULL, 300);
		struct sl_snap_kstate_enc *e;
		struct sl_snap_file_info i2;

		c.sink = filesink_fn;
		c.sink_arg = &fd;
		e = sl_snap_kstate_enc_create(&c);
		for (size_t i = 0; i < n; i++) {
			struct sl_snap_kv kv = { want[i].kg, want[i].hash,
						 want[i].key, want[i].val };
			sl_snap_kstate_emit(e, kv.kg, kv.hash, kv.key, kv.value);
		}
		cr_assert_eq(sl_snap_kstate_enc_error(e), 0);
		cr_assert_eq(sl_snap_kstate_enc_finish(e, &i2), 0);
		sl_snap_kstate_enc_free(e);
		cr_assert_eq(i2.xxh3, info.xxh3, "same input, same bytes");
	}

	for (int pass = 0; pass < 2; pass++) {
		struct sl_snap_src src;
		struct sl_snap_kstate_info ki;
		struct kv_log log = { 0 };
		struct sl_snap_kstate_visitor v = { 0, 0, on_deletions, on_entries, &log };
		struct sl_snap_err err;

		if (pass == 0)
			src = mem_src("mem.kstate", m.data, m.len);
		else
			cr_assert_eq(sl_snap_src_open(&src, path, "chk-7/counts-1-c7.kstate",
						      &err), 0);
		cr_assert_eq(sl_snap_kstate_load(&src, &v, &ki, &err), 0, "%s", err.msg);
		cr_assert_eq(log.n, n);
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(log.v[i].kg, want[i].kg);
			cr_assert_eq(log.v[i].hash, want[i].hash);
			cr_assert_arr_eq(log.v[i].key, want[i].key, KS);
			cr_assert_arr_eq(log.v[i].val, want[i].val, VS);
		}
		cr_assert_str_eq(ki.uid, "counts");
		cr_assert_eq(ki.subtask, 1);
		cr_assert_eq(ki.checkpoint_id, 7);
		cr_assert_eq(ki.kind, SL_SNAP_KSTATE_FULL);
		cr_assert_eq(ki.kg_first, 10);
		cr_assert_eq(ki.kg_count, 32);
		cr_assert_eq(ki.max_parallelism, 128);
		cr_assert_eq(ki.entries, n);
		{
			uint64_t per[32] = { 0 }, sum = 0;

			for (size_t i = 0; i < n; i++)
				per[want[i].kg - 10]++;
			for (int k = 0; k < 32; k++) {
				cr_assert_eq(ki.kg_entries[k], per[k]);
				sum += ki.kg_entries[k];
			}
			cr_assert_eq(sum, n);
		}
		sl_snap_kstate_info_clear(&ki);
		if (pass == 1)
			sl_snap_src_close(&src);
		free(log.v);
	}
	close(fd);
	free(want);
	free(m.data);
	rm_tmp();
}

Test(kstate, filter_and_non_overlapping_skip, .timeout = 120)
{
	struct memsink m;
	struct kv_rec *want;
	struct sl_snap_src src;
	struct sl_snap_err err;
	struct kv_log log = { 0 };
	struct sl_snap_kstate_visitor v = { 20, 5, on_deletions, on_entries, &log };
	struct sl_snap_kstate_info ki;
	size_t expect = 0;

	make_kstate(&m, 1024, 3000, 0, &want, NULL);
	src = mem_src("f.kstate", m.data, m.len);
	cr_assert_eq(sl_snap_kstate_load(&src, &v, NULL, &err), 0, "%s", err.msg);
	for (size_t i = 0; i < 3000; i++)
		expect += want[i].kg >= 20 && want[i].kg < 25;
	cr_assert_eq(log.n, expect);
	for (size_t i = 0; i < log.n; i++)
		cr_assert(log.v[i].kg >= 20 && log.v[i].kg < 25);

	/* a range the file does not cover: nothing delivered, and the
	 * summary alone decides it (a corrupt entry block goes unnoticed) */
	log.n = 0;
	v.kg_first = 100;
	v.kg_count = 20;
	m.data[200] ^= 0x40;
	cr_assert_eq(sl_snap_kstate_load(&src, &v, NULL, &err), 0);
	cr_assert_eq(log.n, 0);
	cr_assert_eq(sl_snap_kstate_read_info(&src, &ki, &err), 0, "%s", err.msg);
	cr_assert_eq(ki.entries, 3000);
	sl_snap_kstate_info_clear(&ki);
	/* the overlapping load sees the damage */
	v.kg_first = 0;
	v.kg_count = 0;
	cr_assert_eq(sl_snap_kstate_load(&src, &v, NULL, &err), -EBADMSG);
	cr_assert(strstr(err.msg, "f.kstate: block") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "checksum mismatch") != NULL, "%s", err.msg);
	free(log.v);
	free(want);
	free(m.data);
}

Test(kstate, empty_file_and_callback_stop, .timeout = 120)
{
	struct memsink m;
	struct sl_snap_src src;
	struct sl_snap_err err;
	struct sl_snap_kstate_info ki;
	struct kv_log log = { 0 };
	struct sl_snap_kstate_visitor v = { 0, 0, NULL, on_entries, &log };

	make_kstate(&m, 0, 0, 0, NULL, NULL);
	src = mem_src("empty.kstate", m.data, m.len);
	cr_assert_eq(sl_snap_kstate_load(&src, &v, &ki, &err), 0, "%s", err.msg);
	cr_assert_eq(ki.entries, 0);
	cr_assert_eq(log.n, 0);
	sl_snap_kstate_info_clear(&ki);
	free(m.data);
}

/* ---- incremental snapshots of a real keyed state ---------------------- */

#define NKEYS 4000u
#define MAXP 128u

struct model {
	struct sl_kstate *st;
	uint8_t present[NKEYS];
	uint32_t ver[NKEYS];
};

static void model_kg(uint64_t id, uint8_t *key, uint64_t *hash, uint16_t *kg)
{
	key_of(key, id);
	*hash = sl_key_hash(key, KS);
	*kg = sl_key_group(*hash, MAXP);
}

static void model_put(struct model *md, uint64_t id, uint32_t ver)
{
	uint8_t key[KS];
	uint64_t h;
	uint16_t kg;
	void *v;

	model_kg(id, key, &h, &kg);
	v = sl_kstate_upsert(md->st, kg, h, key, NULL);
	cr_assert_not_null(v);
	val_of(v, id, ver);
	md->present[id] = 1;
	md->ver[id] = ver;
}

static void model_del(struct model *md, uint64_t id)
{
	uint8_t key[KS];
	uint64_t h;
	uint16_t kg;

	model_kg(id, key, &h, &kg);
	cr_assert_eq(sl_kstate_delete(md->st, kg, h, key), 0);
	md->present[id] = 0;
}

/* Random updates, deletions and inserts. */
static void model_churn(struct model *md, uint64_t *s, unsigned int ops,
			uint32_t ver)
{
	for (unsigned int i = 0; i < ops; i++) {
		uint64_t id = rng_below(s, NKEYS);

		if (md->present[id] && rng_below(s, 3) == 0)
			model_del(md, id);
		else
			model_put(md, id, ver);
	}
}

/* Reconstruction from files, the way a restore applies them. */
struct recon {
	uint8_t present[NKEYS];
	uint8_t val[NKEYS][VS];
};

static int recon_entries(void *arg, const struct sl_snap_kv *kv, unsigned int n)
{
	struct recon *r = arg;

	for (unsigned int i = 0; i < n; i++) {
		uint64_t id = get64le(kv[i].key);

		cr_assert(id < NKEYS);
		cr_assert_eq(kv[i].hash, sl_key_hash(kv[i].key, KS));
		r->present[id] = 1;
		memcpy(r->val[id], kv[i].value, VS);
	}
	return 0;
}

static int recon_deletions(void *arg, const struct sl_snap_kv *kv, unsigned int n)
{
	struct recon *r = arg;

	for (unsigned int i = 0; i < n; i++) {
		uint64_t id = get64le(kv[i].key);

		cr_assert(id < NKEYS);
		r->present[id] = 0;
	}
	return 0;
}

/* Snapshot the state into a file while churning it between steps. */
static void snapshot_file(struct model *md, uint32_t since, uint64_t cid,
			  uint64_t base, struct memsink *m, uint32_t *epoch,
			  struct model *at_begin, uint64_t *s, uint32_t ver)
{
	struct sl_snap_kstate_conf c = ks_conf(m, 2048);
	struct sl_snap_kstate_enc *e;
	struct sl_snap_file_info info;

	memsink_init(m);
	c.kg_first = 0;
	c.kg_count = MAXP;
	c.checkpoint_id = cid;
	c.kind = since ? SL_SNAP_KSTATE_INCREMENTAL : SL_SNAP_KSTATE_FULL;
	c.base_checkpoint_id = base;
	e = sl_snap_kstate_enc_create(&c);
	cr_assert_not_null(e);
	cr_assert_eq(sl_kstate_snapshot_begin_since(md->st, since, sl_snap_kstate_emit,
						    e, epoch), 0);
	/* odd checkpoints: the stepper's runs (the runtime's way), even
	 * ones: one emit per entry */
	if (cid % 2)
		cr_assert_eq(sl_kstate_snapshot_emit_runs(md->st,
							  sl_snap_kstate_emit_run), 0);
	memcpy(at_begin->present, md->present, sizeof(md->present));
	memcpy(at_begin->ver, md->ver, sizeof(md->ver));
	if (since)
		for (uint32_t kg = 0; kg < MAXP; kg++)
			cr_assert_eq(sl_kstate_deleted_since(md->st, (uint16_t)kg, since,
							     *epoch, sl_snap_kstate_deleted,
							     e), 0);
	/* copy-on-update emits interleave with the stepper's */
	while (sl_kstate_snapshot_step(md->st, 64) > 0)
		model_churn(md, s, 40, ver);
	cr_assert_eq(sl_snap_kstate_enc_finish(e, &info), 0);
	sl_snap_kstate_enc_free(e);
}

static void recon_apply(struct recon *r, struct memsink *m, const char *name)
{
	struct sl_snap_src src = mem_src(name, m->data, m->len);
	struct sl_snap_kstate_visitor v = { 0, 0, recon_deletions, recon_entries, r };
	struct sl_snap_err err;

	cr_assert_eq(sl_snap_kstate_load(&src, &v, NULL, &err), 0, "%s", err.msg);
}

static void recon_check(const struct recon *r, const struct model *want)
{
	for (uint64_t id = 0; id < NKEYS; id++) {
		uint8_t v[VS];

		cr_assert_eq(r->present[id], want->present[id], "key %llu presence",
			     (unsigned long long)id);
		if (!want->present[id])
			continue;
		val_of(v, id, want->ver[id]);
		cr_assert_arr_eq(r->val[id], v, VS, "key %llu value",
				 (unsigned long long)id);
	}
}

/* Runs and single emits of the same snapshot give the same file. */
Test(kstate, emit_runs_same_bytes_as_single_emits, .timeout = 60)
{
	static struct model md;
	struct memsink one, runs;
	struct sl_snap_file_info i1, i2;

	md.st = sl_kstate_create(0, MAXP, KS, VS);
	cr_assert_not_null(md.st);
	for (uint64_t id = 0; id < NKEYS; id += 3)
		model_put(&md, id, 1);
	for (int k = 0; k < 2; k++) {
		struct memsink *m = k ? &runs : &one;
		struct sl_snap_kstate_conf c = ks_conf(m, 2048);
		struct sl_snap_kstate_enc *e;

		memsink_init(m);
		c.kg_first = 0;
		c.kg_count = MAXP;
		e = sl_snap_kstate_enc_create(&c);
		cr_assert_not_null(e);
		cr_assert_eq(sl_kstate_snapshot_emit_runs(md.st, sl_snap_kstate_emit_run),
			     -EINVAL, "no snapshot active");
		cr_assert_eq(sl_kstate_snapshot_begin(md.st, sl_snap_kstate_emit, e,
						      NULL), 0);
		if (k)
			cr_assert_eq(sl_kstate_snapshot_emit_runs(md.st,
								  sl_snap_kstate_emit_run), 0);
		/* odd budgets: runs end mid-way and at every boundary */
		while (sl_kstate_snapshot_step(md.st, 37) > 0)
			;
		cr_assert_eq(sl_snap_kstate_enc_finish(e, k ? &i2 : &i1), 0);
		sl_snap_kstate_enc_free(e);
		cr_assert(m->layout_ok);
	}
	cr_assert_eq(i1.records, (NKEYS + 2) / 3);
	cr_assert_eq(one.len, runs.len);
	cr_assert_eq(i1.xxh3, i2.xxh3);
	cr_assert_arr_eq(one.data, runs.data, one.len);
	free(one.data);
	free(runs.data);
	sl_kstate_free(md.st);
}

Test(kstate, incremental_chain_from_real_state, .timeout = 120)
{
	static struct model md, at1, at2, at3;
	static struct recon rc;
	struct memsink f1, f2, f3;
	uint32_t e1, e2, e3;
	uint64_t s = 7;

	md.st = sl_kstate_create(0, MAXP, KS, VS);
	cr_assert_not_null(md.st);
	sl_kstate_track_deletes(md.st, true);
	for (uint64_t id = 0; id < NKEYS; id += 2)
		model_put(&md, id, 1);

	snapshot_file(&md, 0, 1, 0, &f1, &e1, &at1, &s, 2);
	model_churn(&md, &s, 3000, 3);
	/* deleted and re-inserted within one interval: in both lists */
	model_del(&md, 0);
	model_put(&md, 0, 4);
	snapshot_file(&md, e1, 2, 1, &f2, &e2, &at2, &s, 5);
	model_churn(&md, &s, 2000, 6);
	snapshot_file(&md, e2, 3, 2, &f3, &e3, &at3, &s, 7);

	memset(&rc, 0, sizeof(rc));
	recon_apply(&rc, &f1, "c1.kstate");
	recon_check(&rc, &at1);
	recon_apply(&rc, &f2, "c2.kstate");
	recon_check(&rc, &at2);
	recon_apply(&rc, &f3, "c3.kstate");
	recon_check(&rc, &at3);

	/* a delta is smaller than a full file of the same state */
	{
		struct sl_snap_src src = mem_src("c2.kstate", f2.data, f2.len);
		struct sl_snap_kstate_info ki;
		struct sl_snap_err err;

		cr_assert_eq(sl_snap_kstate_read_info(&src, &ki, &err), 0);
		cr_assert_eq(ki.kind, SL_SNAP_KSTATE_INCREMENTAL);
		cr_assert_eq(ki.base_checkpoint_id, 1);
		cr_assert(ki.deletions > 0, "churn deleted keys");
		sl_snap_kstate_info_clear(&ki);
	}
	sl_kstate_free(md.st);
	free(f1.data);
	free(f2.data);
	free(f3.data);
}

Test(kstate, deletions_delivered_before_entries, .timeout = 120)
{
	struct memsink m;
	struct kv_log log = { 0 };
	struct sl_snap_kstate_visitor v = { 0, 0, on_deletions, on_entries, &log };
	struct sl_snap_src src;
	struct sl_snap_err err;
	struct sl_snap_kstate_info ki;
	struct sl_snap_file_info info;

	/* entries are added before the deletions, and span many blocks */
	make_kstate(&m, 256, 700, 300, NULL, &info);
	cr_assert_eq(info.deletions, 300);
	src = mem_src("d.kstate", m.data, m.len);
	cr_assert_eq(sl_snap_kstate_load(&src, &v, &ki, &err), 0, "%s", err.msg);
	cr_assert_eq(log.n, 1000);
	cr_assert_eq(log.dels_after_entries, 0);
	for (size_t i = 0; i < 300; i++) {
		cr_assert(!log.v[i].has_val);
		cr_assert_eq(get64le(log.v[i].key), 100000 + i);
		cr_assert_eq(log.v[i].hash, i * 3);
	}
	cr_assert_eq(ki.deletions, 300);
	sl_snap_kstate_info_clear(&ki);
	free(log.v);
	free(m.data);
}

Test(kstate, encoder_errors, .timeout = 120)
{
	struct memsink m;
	struct sl_snap_kstate_conf c;
	struct sl_snap_kstate_enc *e;
	uint8_t k[KS] = { 0 }, v[VS] = { 0 };
	struct sl_snap_kv kv = { 9, 1, k, v };

	memsink_init(&m);
	c = ks_conf(&m, 0);
	c.uid = "";
	cr_assert_null(sl_snap_kstate_enc_create(&c));
	cr_assert_eq(errno, EINVAL);
	c = ks_conf(&m, 0);
	c.kg_count = 200; /* beyond max_parallelism */
	cr_assert_null(sl_snap_kstate_enc_create(&c));
	c = ks_conf(&m, 0);
	c.kind = SL_SNAP_KSTATE_INCREMENTAL;
	c.base_checkpoint_id = 7; /* not older than the checkpoint */
	cr_assert_null(sl_snap_kstate_enc_create(&c));
	c = ks_conf(&m, 0);
	c.key_size = 0;
	cr_assert_null(sl_snap_kstate_enc_create(&c));

	/* out-of-range key group: latched, finish fails */
	c = ks_conf(&m, 0);
	e = sl_snap_kstate_enc_create(&c);
	cr_assert_not_null(e);
	cr_assert_eq(sl_snap_kstate_enc_add(e, &kv, 1), -ERANGE);
	kv.kg = 11;
	cr_assert_eq(sl_snap_kstate_enc_add(e, &kv, 1), -ERANGE, "errors are sticky");
	cr_assert_eq(sl_snap_kstate_enc_finish(e, NULL), -ERANGE);
	sl_snap_kstate_enc_free(e);

	/* deletions only in incremental files */
	e = sl_snap_kstate_enc_create(&c);
	cr_assert_eq(sl_snap_kstate_enc_delete(e, &kv, 1), -EINVAL);
	sl_snap_kstate_enc_free(e);

	/* a failing sink fails the file */
	memsink_init(&m);
	m.fail_at = 2;
	c = ks_conf(&m, 128);
	e = sl_snap_kstate_enc_create(&c);
	/* buffers go out every 1 MiB: 3 MiB of records reach the 2nd */
	for (int i = 0; i < (3 << 20) / (10 + KS + VS); i++)
		sl_snap_kstate_emit(e, 11, 1, k, v);
	cr_assert_eq(m.calls, 2);
	cr_assert_eq(sl_snap_kstate_enc_error(e), -EIO);
	cr_assert_eq(sl_snap_kstate_enc_finish(e, NULL), -EIO);
	sl_snap_kstate_enc_free(e);
	free(m.data);
}

/* ---- channel state ---------------------------------------------------- */

static const struct sl_snap_chan_id test_channels[] = {
	{ SL_SNAP_CHAN_IN, 0, "source", 0 },
	{ SL_SNAP_CHAN_IN, 1, "source", 1 },
	{ SL_SNAP_CHAN_OUT, 0, "sink-with-a-long-uid", 3 },
};

struct batch_rec {
	uint32_t ch;
	uint64_t seq;
	int64_t wm;
	uint16_t kind, rsize;
	uint32_t count;
	uint8_t *bytes;
};

struct batch_log {
	struct batch_rec v[512];
	size_t n;
};

static int on_batch(void *arg, uint32_t ch, const struct sl_snap_chan_id *id,
		    const struct sl_snap_chan_batch *b)
{
	struct batch_log *l = arg;
	struct batch_rec *r = &l->v[l->n++];
	size_t bytes = (size_t)b->record_size * b->record_count;

	cr_assert_eq(id->index, test_channels[ch].index);
	cr_assert_str_eq(id->peer_uid, test_channels[ch].peer_uid);
	r->ch = ch;
	r->seq = b->seq;
	r->wm = b->watermark;
	r->kind = b->kind;
	r->rsize = b->record_size;
	r->count = b->record_count;
	r->bytes = malloc(bytes + 1);
	memcpy(r->bytes, b->records, bytes);
	return 0;
}

static void make_chan(struct memsink *m, struct batch_log *want, size_t nb)
{
	struct sl_snap_chan_conf c = { "window", 2, 9, test_channels, 3, 4096,
				       memsink_fn, m };
	struct sl_snap_chan_enc *e;
	uint64_t seq[3] = { 100, 200, 0 }, s = 3;
	struct sl_snap_file_info info;

	memsink_init(m);
	e = sl_snap_chan_enc_create(&c);
	cr_assert_not_null(e, "%s", strerror(errno));
	want->n = 0;
	for (size_t i = 0; i < nb; i++) {
		struct batch_rec *r = &want->v[want->n++];
		struct sl_snap_chan_batch b;
		size_t bytes;

		r->ch = rng_below(&s, 3);
		r->seq = seq[r->ch]++;
		r->wm = (int64_t)i * 1000 - 5000;
		r->kind = i % 7 == 3 ? 1 : 0;
		r->rsize = r->ch == 2 ? 24 : 16;
		r->count = r->kind ? 0 : (i == 5 ? 4500 : 1 + rng_below(&s, 200));
		bytes = (size_t)r->rsize * r->count;
		r->bytes = malloc(bytes + 1);
		for (size_t k = 0; k < bytes; k++)
			r->bytes[k] = (uint8_t)rng_next(&s);
		b = (struct sl_snap_chan_batch){ r->seq, r->wm, r->kind, r->rsize,
						 r->count, r->bytes };
		cr_assert_eq(sl_snap_chan_enc_add(e, r->ch, &b), 0);
	}
	cr_assert_eq(sl_snap_chan_enc_finish(e, &info), 0);
	cr_assert_eq(info.records, nb);
	cr_assert_eq(info.size, m->len);
	cr_assert_eq(info.xxh3, XXH3_64bits(m->data, m->len));
	sl_snap_chan_enc_free(e);
	cr_assert(m->offsets_ok);
	cr_assert(m->layout_ok);
}

static void free_batches(struct batch_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].bytes);
	l->n = 0;
}

Test(chan, roundtrip_in_order_per_channel, .timeout = 120)
{
	static struct batch_log want, got;
	struct memsink m;
	char path[512];

	mk_tmp();
	make_chan(&m, &want, 60);
	snprintf(path, sizeof(path), "%s/window-2-c9.chstate", tmpdir);
	write_file(path, m.data, m.len);
	for (int pass = 0; pass < 2; pass++) {
		struct sl_snap_src src;
		struct sl_snap_chan_info info;
		struct sl_snap_err err;
		uint64_t per[3] = { 0 };

		if (pass == 0)
			src = mem_src("mem.chstate", m.data, m.len);
		else
			cr_assert_eq(sl_snap_src_open(&src, path, NULL, &err), 0);
		got.n = 0;
		cr_assert_eq(sl_snap_chan_load(&src, on_batch, &got, &info, &err), 0,
			     "%s", err.msg);
		cr_assert_eq(got.n, want.n);
		for (size_t i = 0; i < want.n; i++) {
			struct batch_rec *a = &got.v[i], *b = &want.v[i];

			cr_assert_eq(a->ch, b->ch);
			cr_assert_eq(a->seq, b->seq);
			cr_assert_eq(a->wm, b->wm);
			cr_assert_eq(a->kind, b->kind);
			cr_assert_eq(a->rsize, b->rsize);
			cr_assert_eq(a->count, b->count);
			cr_assert_arr_eq(a->bytes, b->bytes, (size_t)a->rsize * a->count);
			per[a->ch]++;
		}
		cr_assert_str_eq(info.uid, "window");
		cr_assert_eq(info.subtask, 2);
		cr_assert_eq(info.checkpoint_id, 9);
		cr_assert_eq(info.n_channels, 3);
		for (int c = 0; c < 3; c++) {
			cr_assert_eq(info.batches[c], per[c]);
			cr_assert_eq(info.channels[c].direction, test_channels[c].direction);
			cr_assert_eq(info.channels[c].peer_subtask,
				     test_channels[c].peer_subtask);
			cr_assert_str_eq(info.channels[c].peer_uid,
					 test_channels[c].peer_uid);
		}
		sl_snap_chan_info_clear(&info);
		free_batches(&got);
		if (pass)
			sl_snap_src_close(&src);
	}
	free_batches(&want);
	free(m.data);
	rm_tmp();
}

Test(chan, encoder_errors, .timeout = 120)
{
	struct memsink m;
	struct sl_snap_chan_id dup[2] = { { SL_SNAP_CHAN_IN, 0, "a", 0 },
					  { SL_SNAP_CHAN_IN, 0, "b", 1 } };
	struct sl_snap_chan_conf c = { "w", 0, 1, dup, 2, 0, memsink_fn, &m };
	struct sl_snap_chan_enc *e;
	struct sl_snap_chan_batch b = { 1, 0, 0, 8, 1, "12345678" };

	memsink_init(&m);
	cr_assert_null(sl_snap_chan_enc_create(&c), "duplicate channel identity");
	cr_assert_eq(errno, EINVAL);
	c.channels = test_channels;
	c.n_channels = 3;
	e = sl_snap_chan_enc_create(&c);
	cr_assert_not_null(e);
	cr_assert_eq(sl_snap_chan_enc_add(e, 3, &b), -EINVAL);
	cr_assert_eq(sl_snap_chan_enc_finish(e, NULL), -EINVAL);
	sl_snap_chan_enc_free(e);
	e = sl_snap_chan_enc_create(&c);
	b.kind = 2; /* markers are never persisted */
	cr_assert_eq(sl_snap_chan_enc_add(e, 0, &b), -EINVAL);
	sl_snap_chan_enc_free(e);
	free(m.data);
}

/* ---- metadata --------------------------------------------------------- */

/* A checkpoint's metadata: "counts" (keyed, parallelism 2, an incremental
 * chain in shared/ plus channel files) and "source" (operator state). */
static struct sl_snap_metadata *make_meta(uint64_t id)
{
	struct sl_snap_metadata *m =
		sl_snap_meta_create(id, SL_SNAP_CHECKPOINT, "demo job", 0xfeedfacecafebeefull,
				    1700000000123456789ll);
	struct sl_snap_file_ref r;
	int op;

	cr_assert_not_null(m);
	op = sl_snap_meta_add_operator(m, "counts", 2, 128);
	cr_assert_eq(op, 0);
	for (uint32_t t = 0; t < 2; t++) {
		char p[SL_SNAP_PATH_MAX];
		struct sl_snap_file_info fi = { 1000 + t, 0x1111 * (t + 1), 1, 0, 0 };

		snprintf(p, sizeof(p), "shared/counts-%u-c1.kstate", t);
		cr_assert_eq(sl_snap_file_ref_set(&r, p, SL_SNAP_FILE_KEYED, 1, &fi,
						  t * 64, 64), 0);
		cr_assert_eq(sl_snap_meta_add_file(m, op, t, &r), 0);
		snprintf(p, sizeof(p), "shared/counts-%u-c%llu.kstate", t,
			 (unsigned long long)id);
		fi.size = 300;
		cr_assert_eq(sl_snap_file_ref_set(&r, p, SL_SNAP_FILE_KEYED, id, &fi,
						  t * 64, 64), 0);
		cr_assert_eq(sl_snap_meta_add_file(m, op, t, &r), 0);
		snprintf(p, sizeof(p), "counts-%u-c%llu.chstate", t,
			 (unsigned long long)id);
		fi.size = 77;
		cr_assert_eq(sl_snap_file_ref_set(&r, p, SL_SNAP_FILE_CHANNEL, id, &fi,
						  0, 0), 0);
		cr_assert_eq(sl_snap_meta_add_file(m, op, t, &r), 0);
	}
	op = sl_snap_meta_add_operator(m, "source", 3, 128);
	cr_assert_eq(op, 1);
	cr_assert_eq(sl_snap_meta_add_blob(m, op, 0, "offset=12345", 12), 0);
	cr_assert_eq(sl_snap_meta_add_blob(m, op, 0, "", 0), 0);
	cr_assert_eq(sl_snap_meta_add_blob(m, op, 2, "\x00\xff\x01\x80z", 5), 0);
	m->stats.duration_ns = 123456;
	m->stats.alignment_ns = 42;
	return m;
}

static void assert_meta_eq(const struct sl_snap_metadata *a,
			   const struct sl_snap_metadata *b)
{
	cr_assert_eq(a->checkpoint_id, b->checkpoint_id);
	cr_assert_eq(a->kind, b->kind);
	cr_assert_str_eq(a->job_name, b->job_name);
	cr_assert_eq(a->job_id, b->job_id);
	cr_assert_eq(a->trigger_time_ns, b->trigger_time_ns);
	cr_assert_eq(a->format_version, SL_SNAP_FORMAT_VERSION);
	cr_assert_eq(a->n_operators, b->n_operators);
	for (uint32_t i = 0; i < a->n_operators; i++) {
		const struct sl_snap_operator_meta *x = &a->operators[i], *y = &b->operators[i];

		cr_assert_str_eq(x->uid, y->uid);
		cr_assert_eq(x->parallelism, y->parallelism);
		cr_assert_eq(x->max_parallelism, y->max_parallelism);
		for (uint32_t t = 0; t < x->parallelism; t++) {
			const struct sl_snap_subtask_meta *s = &x->subtasks[t],
							  *u = &y->subtasks[t];

			cr_assert_eq(s->n_files, u->n_files);
			for (uint32_t f = 0; f < s->n_files; f++) {
				cr_assert_str_eq(s->files[f].path, u->files[f].path);
				cr_assert_eq(s->files[f].type, u->files[f].type);
				cr_assert_eq(s->files[f].checkpoint_id, u->files[f].checkpoint_id);
				cr_assert_eq(s->files[f].size, u->files[f].size);
				cr_assert_eq(s->files[f].xxh3, u->files[f].xxh3);
				cr_assert_eq(s->files[f].kg_first, u->files[f].kg_first);
				cr_assert_eq(s->files[f].kg_count, u->files[f].kg_count);
			}
			cr_assert_eq(s->n_blobs, u->n_blobs);
			for (uint32_t k = 0; k < s->n_blobs; k++) {
				cr_assert_eq(s->blobs[k].len, u->blobs[k].len);
				if (s->blobs[k].len)
					cr_assert_arr_eq(s->blobs[k].data, u->blobs[k].data,
							 s->blobs[k].len);
			}
		}
	}
	cr_assert_eq(a->stats.duration_ns, b->stats.duration_ns);
	cr_assert_eq(a->stats.alignment_ns, b->stats.alignment_ns);
}

Test(meta, roundtrip_write_load, .timeout = 120)
{
	struct sl_snap_metadata *m = make_meta(5), *back = NULL;
	struct sl_snap_err err;
	char dir[512], path[600];

	mk_tmp();
	cr_assert_eq(sl_snap_chk_create(tmpdir, 5), 0);
	cr_assert_eq(sl_snap_chk_create(tmpdir, 5), -EEXIST);
	cr_assert_eq(sl_snap_chk_path(dir, sizeof(dir), tmpdir, 5), 0);
	cr_assert_eq(sl_snap_meta_write(dir, m, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/._metadata.tmp", dir);
	cr_assert(!exists(path), "no temp file left behind");
	cr_assert_eq(sl_snap_meta_load(dir, &back, &err), 0, "%s", err.msg);
	assert_meta_eq(back, m);
	/* derived statistics are recomputed from the references */
	cr_assert_eq(back->stats.files, 6);
	cr_assert_eq(back->stats.bytes_referenced, 2 * (1000 + 300 + 77) + 1);
	cr_assert_eq(back->stats.bytes_written, 2 * (300 + 77));
	cr_assert_eq(back->stats.channel_bytes, 2 * 77);
	cr_assert_not_null(sl_snap_meta_find(back, "source"));
	cr_assert_null(sl_snap_meta_find(back, "nope"));
	/* a complete checkpoint is never overwritten */
	cr_assert_eq(sl_snap_meta_write(dir, m, &err), -EEXIST);
	sl_snap_meta_free(back);
	sl_snap_meta_free(m);
	rm_tmp();
}

Test(meta, builder_rejects_bad_input, .timeout = 120)
{
	struct sl_snap_metadata *m, *sp;
	struct sl_snap_file_ref r;
	struct sl_snap_file_info fi = { 10, 1, 1, 0, 0 };
	void *buf;
	size_t len;

	cr_assert_null(sl_snap_meta_create(0, SL_SNAP_CHECKPOINT, "j", 1, 0));
	cr_assert_null(sl_snap_meta_create(1, SL_SNAP_CHECKPOINT, "", 1, 0));
	m = sl_snap_meta_create(4, SL_SNAP_CHECKPOINT, "j", 1, 0);
	cr_assert_eq(sl_snap_meta_add_operator(m, "a", 3, 2), -EINVAL);
	cr_assert_eq(sl_snap_meta_add_operator(m, "a", 1, 40000), -EINVAL);
	cr_assert_eq(sl_snap_meta_add_operator(m, "a", 2, 8), 0);
	cr_assert_eq(sl_snap_meta_add_operator(m, "a", 2, 8), -EEXIST);
	sl_snap_file_ref_set(&r, "../etc/passwd", SL_SNAP_FILE_CHANNEL, 4, &fi, 0, 0);
	cr_assert_eq(sl_snap_meta_add_file(m, 0, 0, &r), -EINVAL);
	sl_snap_file_ref_set(&r, "x.kstate", SL_SNAP_FILE_KEYED, 3, &fi, 0, 4);
	cr_assert_eq(sl_snap_meta_add_file(m, 0, 0, &r), -EINVAL,
		     "a private file of another checkpoint");
	sl_snap_file_ref_set(&r, "x.kstate", SL_SNAP_FILE_KEYED, 4, &fi, 6, 4);
	cr_assert_eq(sl_snap_meta_add_file(m, 0, 0, &r), -EINVAL,
		     "key groups beyond max parallelism");
	sl_snap_file_ref_set(&r, "x.kstate", SL_SNAP_FILE_KEYED, 4, &fi, 0, 4);
	cr_assert_eq(sl_snap_meta_add_file(m, 0, 2, &r), -EINVAL, "no subtask 2");
	cr_assert_eq(sl_snap_meta_add_file(m, 0, 0, &r), 0);
	cr_assert_eq(sl_snap_meta_add_file(m, 0, 1, &r), 0);
	cr_assert_eq(sl_snap_meta_encode(m, &buf, &len), -EINVAL,
		     "a private file referenced twice");
	cr_assert_eq(sl_snap_meta_add_blob(m, 0, 0, "x", SL_SNAP_BLOB_MAX + 1), -E2BIG);
	sl_snap_meta_free(m);

	/* a savepoint is self-contained: no shared/ */
	sp = sl_snap_meta_create(9, SL_SNAP_SAVEPOINT, "j", 1, 0);
	cr_assert_eq(sl_snap_meta_add_operator(sp, "a", 1, 8), 0);
	sl_snap_file_ref_set(&r, "shared/x-0-c9.kstate", SL_SNAP_FILE_KEYED, 9, &fi, 0, 8);
	cr_assert_eq(sl_snap_meta_add_file(sp, 0, 0, &r), -EINVAL);
	sl_snap_meta_free(sp);
}

Test(meta, atomic_publish_under_write_failure, .timeout = 120)
{
	struct sl_snap_metadata *m = make_meta(3), *back = NULL;
	struct sl_snap_err err;
	char dir[512], path[600];

	mk_tmp();
	cr_assert_eq(sl_snap_chk_create(tmpdir, 3), 0);
	sl_snap_chk_path(dir, sizeof(dir), tmpdir, 3);
	sl_io_fault_set(ENOSPC, 100);
	cr_assert_eq(sl_snap_meta_write(dir, m, &err), -ENOSPC);
	sl_io_fault_clear();
	cr_assert(strstr(err.msg, "chk-3/_metadata") != NULL, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/_metadata", dir);
	cr_assert(!exists(path), "nothing published");
	snprintf(path, sizeof(path), "%s/._metadata.tmp", dir);
	cr_assert(!exists(path), "temp unlinked");
	cr_assert_eq(sl_snap_meta_load(dir, &back, &err), -ENOENT);
	/* retry succeeds */
	cr_assert_eq(sl_snap_meta_write(dir, m, &err), 0, "%s", err.msg);
	cr_assert_eq(sl_snap_meta_load(dir, &back, &err), 0, "%s", err.msg);
	sl_snap_meta_free(back);
	sl_snap_meta_free(m);
	rm_tmp();
}

/* Frame a JSON body as a _metadata file, per docs/snapshot-format.md
 * (written independently of snapshot/metadata.c on purpose). */
static uint8_t *frame_meta(const char *json, size_t blen, uint32_t version,
			   size_t *len)
{
	size_t n = 48 + blen;
	uint8_t *b = malloc(n);

	memcpy(b, "SLMETADT", 8);
	for (int i = 0; i < 4; i++) {
		b[8 + i] = (uint8_t)(version >> (8 * i));
		b[12 + i] = 0;
	}
	put64le(b + 16, blen);
	put64le(b + 24, XXH3_64bits(b, 24));
	memcpy(b + 32, json, blen);
	memcpy(b + 32 + blen, "SLMDTEND", 8);
	put64le(b + 40 + blen, XXH3_64bits(b, 40 + blen));
	*len = n;
	return b;
}

static int decode_json(const char *json, struct sl_snap_err *err)
{
	struct sl_snap_metadata *m = NULL;
	size_t len;
	uint8_t *b = frame_meta(json, strlen(json), 1, &len);
	int rc = sl_snap_meta_decode(b, len, "chk-1/_metadata", &m, err);

	sl_snap_meta_free(m);
	free(b);
	return rc;
}

#define META_JSON(kind, path)                                                  \
	"{\"format_version\":1,\"checkpoint_id\":1,\"kind\":\"" kind "\","   \
	"\"job_name\":\"j\",\"job_id\":\"0000000000000001\",\"trigger_time_ns\":0," \
	"\"operators\":[{\"uid\":\"a\",\"parallelism\":1,\"max_parallelism\":4," \
	"\"subtasks\":[{\"subtask\":0,\"operator_state\":[],\"files\":[{\"path\":" \
	path ",\"type\":\"channel\",\"checkpoint_id\":1,\"size\":0,"          \
	"\"xxh3\":\"0000000000000000\",\"kg_first\":0,\"kg_count\":0}]}]}]}"

Test(paths, escapes_rejected, .timeout = 120)
{
	static const char *bad[] = {
		"", "/etc/passwd", "..", ".", "../x", "a/../b", "shared/../x",
		"shared/.x", "shared/", "shared//x", "a/b", "shared/a/b", ".hidden",
		"_metadata", "shared/_metadata", "a\\b", "x y", "chk-1/x",
		"../shared/x", "./x", "shared/..",
	};
	static const char *good[] = { "x.kstate", "a-0-c1.chstate", "A_b.c-9" };
	struct sl_snap_err err;
	char longname[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(sl_snap_path_check(bad[i], true), -EINVAL, "\"%s\"", bad[i]);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(sl_snap_path_check(good[i], false), 0, "\"%s\"", good[i]);
	cr_assert_eq(sl_snap_path_check("shared/x.kstate", true), 0);
	cr_assert_eq(sl_snap_path_check("shared/x.kstate", false), -EINVAL);
	memset(longname, 'a', 250);
	longname[250] = '\0';
	cr_assert_eq(sl_snap_path_check(longname, true), -EINVAL);

	/* the same through a loaded metadata file */
	cr_assert_eq(decode_json(META_JSON("checkpoint", "\"ok.chstate\""), &err), 0,
		     "%s", err.msg);
	cr_assert_eq(decode_json(META_JSON("checkpoint", "\"../../etc/passwd\""), &err),
		     -EINVAL);
	cr_assert(strstr(err.msg, "chk-1/_metadata: ") == err.msg, "%s", err.msg);
	cr_assert(strstr(err.msg, "escapes") != NULL, "%s", err.msg);
	cr_assert_eq(decode_json(META_JSON("checkpoint", "\"/tmp/x\""), &err), -EINVAL);
	cr_assert_eq(decode_json(META_JSON("checkpoint", "\"shared/../x\""), &err), -EINVAL);
	cr_assert_neq(decode_json(META_JSON("checkpoint", "\"x\\u0000y\""), &err), 0);
	cr_assert_eq(decode_json(META_JSON("savepoint", "\"shared/x\""), &err), -EINVAL,
		     "savepoints are self-contained");
	cr_assert_eq(decode_json(META_JSON("checkpoint", "\"shared/x\""), &err), 0,
		     "%s", err.msg);
	cr_assert_eq(decode_json(META_JSON("checkpoint", "17"), &err), -EBADMSG);
	/* a newer format is refused as such, not as corruption */
	{
		const char *j = META_JSON("checkpoint", "\"ok\"");
		size_t len;
		uint8_t *b = frame_meta(j, strlen(j), 2, &len);
		struct sl_snap_metadata *m = NULL;

		cr_assert_eq(sl_snap_meta_decode(b, len, NULL, &m, &err), -ENOTSUP);
		free(b);
	}
}

/* ---- corruption -------------------------------------------------------- */

typedef int (*load_fn)(const uint8_t *d, size_t n, struct sl_snap_err *err);

static int load_kstate(const uint8_t *d, size_t n, struct sl_snap_err *err)
{
	struct sl_snap_src s = mem_src("chk-7/counts-1-c7.kstate", d, n);

	return sl_snap_kstate_load(&s, NULL, NULL, err);
}

static int load_chan(const uint8_t *d, size_t n, struct sl_snap_err *err)
{
	struct sl_snap_src s = mem_src("chk-9/window-2-c9.chstate", d, n);

	return sl_snap_chan_load(&s, NULL, NULL, NULL, err);
}

static int load_meta(const uint8_t *d, size_t n, struct sl_snap_err *err)
{
	struct sl_snap_metadata *m = NULL;
	int rc = sl_snap_meta_decode(d, n, "chk-5/_metadata", &m, err);

	sl_snap_meta_free(m);
	return rc;
}

/* Flip one bit at every position (sampled above 16 KiB, always including
 * the first and last 256 bytes) and truncate at every length: each must be
 * detected, with the file named in the message. */
static void corruption_sweep(const uint8_t *orig, size_t len, load_fn load,
			     const char *name)
{
	uint8_t *b = malloc(len);
	struct sl_snap_err err;
	uint64_t s = 99;
	size_t step = len > 16384 ? len / 4000 : 1, checked = 0;

	cr_assert_eq(load(orig, len, &err), 0, "pristine: %s", err.msg);
	memcpy(b, orig, len);
	for (size_t pos = 0; pos < len; pos++) {
		if (!(pos < 256 || pos + 256 >= len || pos % step == 0))
			continue;
		uint8_t bit = (uint8_t)(1u << rng_below(&s, 8));

		b[pos] ^= bit;
		err.msg[0] = '\0';
		cr_assert_neq(load(b, len, &err), 0, "%s: flip at %zu undetected", name,
			      pos);
		cr_assert(strncmp(err.msg, name, strlen(name)) == 0,
			  "message names the file: %s", err.msg);
		b[pos] ^= bit;
		checked++;
	}
	for (size_t n = 0; n < len; n += (len > 16384 ? 7 : 1)) {
		cr_assert_neq(load(b, n, &err), 0, "%s: truncation to %zu undetected",
			      name, n);
		checked++;
	}
	cr_assert(checked > 500);
	free(b);
}

Test(corruption, every_flip_and_truncation_detected, .timeout = 120)
{
	struct memsink k, c;
	static struct batch_log want;
	struct sl_snap_metadata *m = make_meta(5);
	void *mb;
	size_t ml;

	make_kstate(&k, 512, 300, 40, NULL, NULL);
	corruption_sweep(k.data, k.len, load_kstate, "chk-7/counts-1-c7.kstate");
	make_chan(&c, &want, 12);
	corruption_sweep(c.data, c.len, load_chan, "chk-9/window-2-c9.chstate");
	cr_assert_eq(sl_snap_meta_encode(m, &mb, &ml), 0);
	corruption_sweep(mb, ml, load_meta, "chk-5/_metadata");
	free_batches(&want);
	free(k.data);
	free(c.data);
	free(mb);
	sl_snap_meta_free(m);
}

Test(corruption, truncated_file_on_disk, .timeout = 120)
{
	struct memsink k;
	struct sl_snap_src src;
	struct sl_snap_err err;
	char path[512];

	mk_tmp();
	make_kstate(&k, 512, 200, 0, NULL, NULL);
	snprintf(path, sizeof(path), "%s/t.kstate", tmpdir);
	for (size_t n = 0; n < k.len; n += 37) {
		write_file(path, k.data, n);
		cr_assert_eq(sl_snap_src_open(&src, path, "t.kstate", &err), 0);
		cr_assert_eq(sl_snap_kstate_load(&src, NULL, NULL, &err), -EBADMSG,
			     "length %zu", n);
		sl_snap_src_close(&src);
	}
	write_file(path, k.data, k.len);
	cr_assert_eq(sl_snap_src_open(&src, path, "t.kstate", &err), 0);
	cr_assert_eq(sl_snap_kstate_load(&src, NULL, NULL, &err), 0, "%s", err.msg);
	sl_snap_src_close(&src);
	free(k.data);
	rm_tmp();
}

/* ---- checkpoint directories ------------------------------------------- */

/* Write a keyed-state file for (uid, subtask, cid) into dir; fill ref. */
static void put_kstate(const char *root, bool shared, const char *uid, uint32_t t,
		       uint64_t cid, uint64_t base, struct sl_snap_file_ref *ref)
{
	char name[SL_SNAP_PATH_MAX], path[2048], rel[SL_SNAP_PATH_MAX + 8];
	struct sl_snap_kstate_conf c;
	struct sl_snap_kstate_enc *e;
	struct sl_snap_file_info info;
	uint8_t k[KS], v[VS];
	int fd;

	cr_assert_eq(sl_snap_file_name(name, sizeof(name), uid, t, cid,
				       SL_SNAP_FILE_KEYED), 0);
	if (shared)
		snprintf(rel, sizeof(rel), "shared/%s", name);
	else
		snprintf(rel, sizeof(rel), "%s", name);
	if (shared)
		snprintf(path, sizeof(path), "%s/%s", root, rel);
	else
		snprintf(path, sizeof(path), "%s/chk-%llu/%s", root,
			 (unsigned long long)cid, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	c = ks_conf(NULL, 0);
	c.uid = uid;
	c.subtask = t;
	c.checkpoint_id = cid;
	c.kind = base ? SL_SNAP_KSTATE_INCREMENTAL : SL_SNAP_KSTATE_FULL;
	c.base_checkpoint_id = base;
	c.sink = filesink_fn;
	c.sink_arg = &fd;
	e = sl_snap_kstate_enc_create(&c);
	cr_assert_not_null(e);
	for (uint64_t i = 0; i < 50; i++) {
		key_of(k, i + cid * 1000);
		val_of(v, i, (uint32_t)cid);
		sl_snap_kstate_emit(e, (uint16_t)(10 + i % 32), i, k, v);
	}
	cr_assert_eq(sl_snap_kstate_enc_finish(e, &info), 0);
	sl_snap_kstate_enc_free(e);
	fsync(fd);
	close(fd);
	cr_assert_eq(sl_snap_file_ref_set(ref, rel, SL_SNAP_FILE_KEYED, cid, &info,
					  10, 32), 0);
}

/* chk-<cid>: operator "op" with one subtask whose keyed chain is
 * shared files written by checkpoints chain[0..n) (the last one written
 * now), plus a private channel file. With publish false, no metadata. */
static void make_checkpoint(const char *root, uint64_t cid, const uint64_t *chain,
			    size_t n, bool publish)
{
	struct sl_snap_metadata *m;
	struct sl_snap_file_ref ref;
	struct sl_snap_err err;
	char dir[1024];
	int op;

	cr_assert_eq(sl_snap_chk_create(root, cid), 0);
	m = sl_snap_meta_create(cid, SL_SNAP_CHECKPOINT, "job", 77, 1);
	op = sl_snap_meta_add_operator(m, "op", 1, 128);
	for (size_t i = 0; i < n; i++) {
		char name[SL_SNAP_PATH_MAX], rel[SL_SNAP_PATH_MAX + 8], path[2048];
		size_t len;
		uint8_t *d;

		if (chain[i] == cid) {
			put_kstate(root, true, "op", 0, cid, i ? chain[i - 1] : 0, &ref);
		} else {
			/* an older file: referenced, not copied */
			sl_snap_file_name(name, sizeof(name), "op", 0, chain[i],
					  SL_SNAP_FILE_KEYED);
			snprintf(rel, sizeof(rel), "shared/%s", name);
			snprintf(path, sizeof(path), "%s/%s", root, rel);
			d = read_file(path, &len);
			ref = (struct sl_snap_file_ref){ .type = SL_SNAP_FILE_KEYED,
							 .checkpoint_id = chain[i],
							 .size = len,
							 .xxh3 = XXH3_64bits(d, len),
							 .kg_first = 10,
							 .kg_count = 32 };
			strcpy(ref.path, rel);
			free(d);
		}
		cr_assert_eq(sl_snap_meta_add_file(m, op, 0, &ref), 0);
	}
	{
		struct memsink ms;
		struct sl_snap_chan_conf c = { "op", 0, cid, test_channels, 3, 0,
					       memsink_fn, &ms };
		struct sl_snap_chan_enc *e;
		struct sl_snap_chan_batch b = { 1, 2, 0, 8, 2, "0123456789abcdef" };
		struct sl_snap_file_info info;
		char name[SL_SNAP_PATH_MAX], path[2048];

		memsink_init(&ms);
		e = sl_snap_chan_enc_create(&c);
		cr_assert_eq(sl_snap_chan_enc_add(e, 1, &b), 0);
		cr_assert_eq(sl_snap_chan_enc_finish(e, &info), 0);
		sl_snap_chan_enc_free(e);
		sl_snap_file_name(name, sizeof(name), "op", 0, cid, SL_SNAP_FILE_CHANNEL);
		snprintf(path, sizeof(path), "%s/chk-%llu/%s", root,
			 (unsigned long long)cid, name);
		write_file(path, ms.data, ms.len);
		free(ms.data);
		sl_snap_file_ref_set(&ref, name, SL_SNAP_FILE_CHANNEL, cid, &info, 0, 0);
		cr_assert_eq(sl_snap_meta_add_file(m, op, 0, &ref), 0);
	}
	if (publish) {
		sl_snap_chk_path(dir, sizeof(dir), root, cid);
		cr_assert_eq(sl_snap_meta_write(dir, m, &err), 0, "%s", err.msg);
	}
	sl_snap_meta_free(m);
}

static void shared_path(char *buf, size_t len, const char *root, uint64_t cid)
{
	char name[SL_SNAP_PATH_MAX];

	sl_snap_file_name(name, sizeof(name), "op", 0, cid, SL_SNAP_FILE_KEYED);
	snprintf(buf, len, "%s/shared/%s", root, name);
}

static void chan_path(char *buf, size_t len, const char *root, uint64_t cid)
{
	char name[SL_SNAP_PATH_MAX];

	sl_snap_file_name(name, sizeof(name), "op", 0, cid, SL_SNAP_FILE_CHANNEL);
	snprintf(buf, len, "%s/chk-%llu/%s", root, (unsigned long long)cid, name);
}

Test(chkdir, validate_missing_corrupt_truncated, .timeout = 120)
{
	const uint64_t c1[] = { 1 }, c2[] = { 1, 2 };
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err;
	char p[1024], name[SL_SNAP_PATH_MAX];
	uint8_t *d;
	size_t len;

	mk_tmp();
	make_checkpoint(tmpdir, 1, c1, 1, true);
	make_checkpoint(tmpdir, 2, c2, 2, true);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 2, &m, &err), 0, "%s", err.msg);
	cr_assert_eq(m->operators[0].subtasks[0].n_files, 3);
	sl_snap_meta_free(m);

	/* a private file missing: named relative to the root */
	chan_path(p, sizeof(p), tmpdir, 2);
	d = read_file(p, &len);
	unlink(p);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 2, NULL, &err), -ENOENT);
	sl_snap_file_name(name, sizeof(name), "op", 0, 2, SL_SNAP_FILE_CHANNEL);
	cr_assert(strstr(err.msg, "chk-2/") == err.msg && strstr(err.msg, name) &&
		  strstr(err.msg, "missing"), "%s", err.msg);
	/* flipped byte: checksum */
	d[len / 2] ^= 1;
	write_file(p, d, len);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 2, NULL, &err), -EBADMSG);
	cr_assert(strstr(err.msg, "checksum mismatch") != NULL, "%s", err.msg);
	/* truncated: size */
	d[len / 2] ^= 1;
	write_file(p, d, len - 1);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 2, NULL, &err), -EBADMSG);
	cr_assert(strstr(err.msg, "size") != NULL, "%s", err.msg);
	write_file(p, d, len);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 2, NULL, &err), 0, "%s", err.msg);
	free(d);

	/* a shared file missing: both checkpoints referencing it fail */
	shared_path(p, sizeof(p), tmpdir, 1);
	d = read_file(p, &len);
	unlink(p);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 2, NULL, &err), -ENOENT);
	cr_assert(strstr(err.msg, "shared/") == err.msg, "%s", err.msg);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 1, NULL, &err), -ENOENT);
	{
		uint64_t id;

		cr_assert_eq(sl_snap_chk_latest(tmpdir, &id, NULL, &err), -ENOENT);
		cr_assert(strstr(err.msg, "skipped") != NULL, "%s", err.msg);
	}
	write_file(p, d, len);
	free(d);
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 3, NULL, &err), -ENOENT);
	rm_tmp();
}

Test(chkdir, incomplete_and_half_written_metadata_ignored, .timeout = 120)
{
	const uint64_t c1[] = { 1 }, c2[] = { 2 }, c3[] = { 3 }, c4[] = { 4 };
	uint64_t *ids, id;
	size_t n;
	struct sl_snap_err err;
	char p[1024];
	struct sl_snap_metadata *m;
	void *mb;
	size_t ml;

	mk_tmp();
	cr_assert_eq(sl_snap_chk_list(tmpdir, &ids, &n, &err), 0);
	cr_assert_eq(n, 0);
	make_checkpoint(tmpdir, 1, c1, 1, true);
	/* chk-2: crashed while writing the temp metadata */
	make_checkpoint(tmpdir, 2, c2, 1, false);
	m = make_meta(2);
	sl_snap_meta_encode(m, &mb, &ml);
	snprintf(p, sizeof(p), "%s/chk-2/._metadata.tmp", tmpdir);
	write_file(p, mb, ml / 2);
	/* chk-3: a torn _metadata (as if written without the protocol) */
	make_checkpoint(tmpdir, 3, c3, 1, false);
	snprintf(p, sizeof(p), "%s/chk-3/_metadata", tmpdir);
	write_file(p, mb, ml - 3);
	/* chk-4: metadata fine, a data file corrupt */
	make_checkpoint(tmpdir, 4, c4, 1, true);
	shared_path(p, sizeof(p), tmpdir, 4);
	{
		size_t len;
		uint8_t *d = read_file(p, &len);

		d[100] ^= 0x10;
		write_file(p, d, len);
		free(d);
	}
	/* a stray file and a symlink named like checkpoints are not ours */
	snprintf(p, sizeof(p), "%s/chk-9", tmpdir);
	write_file(p, "x", 1);
	snprintf(p, sizeof(p), "%s/chk-10", tmpdir);
	cr_assert_eq(symlink("/tmp", p), 0);

	cr_assert_eq(sl_snap_chk_list(tmpdir, &ids, &n, &err), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(ids[0], 4);
	cr_assert_eq(ids[1], 1);
	free(ids);
	cr_assert_eq(sl_snap_chk_latest(tmpdir, &id, NULL, &err), 0);
	cr_assert_eq(id, 1, "falls back past the corrupt chk-4");
	cr_assert(strstr(err.msg, "chk-4 skipped: shared/op-0-c4.kstate: checksum mismatch") != NULL,
		  "%s", err.msg);
	free(mb);
	sl_snap_meta_free(m);
	rm_tmp();
}

Test(chkdir, symlinks_refused, .timeout = 120)
{
	const uint64_t c1[] = { 1 };
	struct sl_snap_err err;
	char p[512], outside[1024], outdir[1024], cmd[4096];

	mk_tmp();
	snprintf(p, sizeof(p), "%s/root", tmpdir);
	make_checkpoint(p, 1, c1, 1, true);
	cr_assert_eq(sl_snap_chk_validate(p, 1, NULL, &err), 0, "%s", err.msg);

	/* a data file replaced by a symlink to an identical file outside */
	chan_path(outside, sizeof(outside), p, 1);
	snprintf(cmd, sizeof(cmd), "%s/outside.chstate", tmpdir);
	cr_assert_eq(rename(outside, cmd), 0);
	cr_assert_eq(symlink(cmd, outside), 0);
	cr_assert_eq(sl_snap_chk_validate(p, 1, NULL, &err), -ELOOP);
	cr_assert(strstr(err.msg, "symlink") != NULL, "%s", err.msg);
	unlink(outside);
	cr_assert_eq(rename(cmd, outside), 0);
	cr_assert_eq(sl_snap_chk_validate(p, 1, NULL, &err), 0, "%s", err.msg);

	/* shared/ replaced by a symlink to a copy elsewhere */
	snprintf(outdir, sizeof(outdir), "%s/elsewhere", tmpdir);
	snprintf(cmd, sizeof(cmd), "%s/shared", p);
	cr_assert_eq(rename(cmd, outdir), 0);
	cr_assert_eq(symlink(outdir, cmd), 0);
	cr_assert_neq(sl_snap_chk_validate(p, 1, NULL, &err), 0);
	cr_assert(strstr(err.msg, "shared") != NULL, "%s", err.msg);
	unlink(cmd);
	cr_assert_eq(rename(outdir, cmd), 0);

	/* the checkpoint directory itself a symlink */
	snprintf(cmd, sizeof(cmd), "%s/chk-1", p);
	snprintf(outdir, sizeof(outdir), "%s/moved", p);
	cr_assert_eq(rename(cmd, outdir), 0);
	cr_assert_eq(symlink(outdir, cmd), 0);
	cr_assert_eq(sl_snap_chk_validate(p, 1, NULL, &err), -ELOOP);
	rm_tmp();
}

Test(chkdir, retention_keeps_shared_files_of_kept_checkpoints, .timeout = 120)
{
	const uint64_t c1[] = { 1 }, c2[] = { 1, 2 }, c3[] = { 3 }, c4[] = { 4 },
		       c5[] = { 4, 5 }, c6[] = { 4, 5, 6 };
	struct sl_snap_retain_conf conf = { 2, false };
	struct sl_snap_retain_result r;
	struct sl_snap_err err;
	char p[1024];

	mk_tmp();
	make_checkpoint(tmpdir, 1, c1, 1, true);
	make_checkpoint(tmpdir, 2, c2, 2, true);
	make_checkpoint(tmpdir, 3, c3, 1, false); /* aborted */
	make_checkpoint(tmpdir, 4, c4, 1, true);
	make_checkpoint(tmpdir, 5, c5, 2, true);
	make_checkpoint(tmpdir, 6, c6, 3, false); /* in progress */
	snprintf(p, sizeof(p), "%s/shared/foreign.txt", tmpdir);
	write_file(p, "x", 1);

	cr_assert_eq(sl_snap_chk_retain(tmpdir, &conf, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.kept, 2);
	cr_assert_eq(r.removed_complete, 2);
	cr_assert_eq(r.removed_incomplete, 1);
	cr_assert_eq(r.removed_shared, 3);
	for (uint64_t id = 1; id <= 6; id++) {
		bool chk_should = id >= 4, shared_should = id >= 4;

		sl_snap_chk_path(p, sizeof(p), tmpdir, id);
		cr_assert_eq(exists(p), chk_should, "chk-%llu", (unsigned long long)id);
		shared_path(p, sizeof(p), tmpdir, id);
		cr_assert_eq(exists(p), shared_should, "shared c%llu",
			     (unsigned long long)id);
	}
	snprintf(p, sizeof(p), "%s/shared/foreign.txt", tmpdir);
	cr_assert(exists(p), "unknown files are only removed at a full clean-up");

	/* keep 1: chk-4 goes, its shared file stays (chk-5 builds on it) */
	conf.keep = 1;
	cr_assert_eq(sl_snap_chk_retain(tmpdir, &conf, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.removed_complete, 1);
	cr_assert_eq(r.removed_shared, 0);
	sl_snap_chk_path(p, sizeof(p), tmpdir, 4);
	cr_assert(!exists(p));
	shared_path(p, sizeof(p), tmpdir, 4);
	cr_assert(exists(p));
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 5, NULL, &err), 0, "%s", err.msg);
	sl_snap_chk_path(p, sizeof(p), tmpdir, 6);
	cr_assert(exists(p), "an in-progress newer checkpoint is left alone");

	/* start-up clean-up: nothing is in progress */
	conf.all_incomplete = true;
	cr_assert_eq(sl_snap_chk_retain(tmpdir, &conf, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.removed_incomplete, 1);
	cr_assert_eq(r.removed_shared, 2); /* c6 and foreign.txt */
	sl_snap_chk_path(p, sizeof(p), tmpdir, 6);
	cr_assert(!exists(p));
	shared_path(p, sizeof(p), tmpdir, 6);
	cr_assert(!exists(p));
	cr_assert_eq(sl_snap_chk_validate(tmpdir, 5, NULL, &err), 0, "%s", err.msg);

	conf.keep = 0;
	cr_assert_eq(sl_snap_chk_retain(tmpdir, &conf, &r, &err), -EINVAL);
	rm_tmp();
}

Test(chkdir, retention_stops_on_unreadable_metadata, .timeout = 120)
{
	const uint64_t c1[] = { 1 }, c2[] = { 2 }, c3[] = { 3 };
	struct sl_snap_retain_conf conf = { 1, false };
	struct sl_snap_retain_result r;
	struct sl_snap_err err;
	const char *j = META_JSON("checkpoint", "\"ok\"");
	char p[1024];
	uint8_t *b;
	size_t len;

	mk_tmp();
	make_checkpoint(tmpdir, 1, c1, 1, true);
	make_checkpoint(tmpdir, 2, c2, 1, true);
	make_checkpoint(tmpdir, 3, c3, 1, false);
	/* chk-3 written by a newer sluice: not ours to judge */
	b = frame_meta(j, strlen(j), 2, &len);
	snprintf(p, sizeof(p), "%s/chk-3/_metadata", tmpdir);
	write_file(p, b, len);
	free(b);
	cr_assert_eq(sl_snap_chk_retain(tmpdir, &conf, &r, &err), -ENOTSUP);
	cr_assert(strstr(err.msg, "chk-3") == err.msg, "%s", err.msg);
	sl_snap_chk_path(p, sizeof(p), tmpdir, 1);
	cr_assert(exists(p), "nothing removed");
	rm_tmp();
}

Test(chkdir, dispose, .timeout = 120)
{
	const uint64_t c1[] = { 1 };
	struct sl_snap_metadata *m;
	struct sl_snap_err err;
	char p[1024], dir[512];

	mk_tmp();
	make_checkpoint(tmpdir, 1, c1, 1, true);
	cr_assert_eq(sl_snap_chk_dispose(tmpdir, 1), 0);
	sl_snap_chk_path(p, sizeof(p), tmpdir, 1);
	cr_assert(!exists(p));
	cr_assert_eq(sl_snap_chk_dispose(tmpdir, 1), -ENOENT);

	/* a savepoint: its own files go, foreign ones stay */
	snprintf(dir, sizeof(dir), "%s/savepoint-1", tmpdir);
	mkdir(dir, 0755);
	m = sl_snap_meta_create(12, SL_SNAP_SAVEPOINT, "job", 77, 1);
	sl_snap_meta_add_operator(m, "op", 1, 128);
	{
		struct memsink ms;
		struct sl_snap_chan_conf c = { "op", 0, 12, test_channels, 3, 0,
					       memsink_fn, &ms };
		struct sl_snap_chan_enc *e;
		struct sl_snap_file_info info;
		struct sl_snap_file_ref ref;

		memsink_init(&ms);
		e = sl_snap_chan_enc_create(&c);
		sl_snap_chan_enc_finish(e, &info);
		sl_snap_chan_enc_free(e);
		snprintf(p, sizeof(p), "%s/op-0-c12.chstate", dir);
		write_file(p, ms.data, ms.len);
		free(ms.data);
		sl_snap_file_ref_set(&ref, "op-0-c12.chstate", SL_SNAP_FILE_CHANNEL, 12,
				     &info, 0, 0);
		cr_assert_eq(sl_snap_meta_add_file(m, 0, 0, &ref), 0);
	}
	cr_assert_eq(sl_snap_meta_write(dir, m, &err), 0, "%s", err.msg);
	sl_snap_meta_free(m);
	cr_assert_eq(sl_snap_dir_validate(dir, NULL, &err), 0, "%s", err.msg);
	snprintf(p, sizeof(p), "%s/notes.txt", dir);
	write_file(p, "mine", 4);
	cr_assert_eq(sl_snap_savepoint_dispose(dir, &err), -ENOTEMPTY);
	cr_assert(exists(p));
	snprintf(p, sizeof(p), "%s/op-0-c12.chstate", dir);
	cr_assert(!exists(p));
	snprintf(p, sizeof(p), "%s/_metadata", dir);
	cr_assert(!exists(p));
	rm_tmp();
}

Test(names, file_and_checkpoint_names, .timeout = 120)
{
	char b[SL_SNAP_PATH_MAX], b2[SL_SNAP_PATH_MAX];
	uint64_t id;

	cr_assert_eq(sl_snap_file_name(b, sizeof(b), "counts", 3, 42, SL_SNAP_FILE_KEYED), 0);
	cr_assert_str_eq(b, "counts-3-c42.kstate");
	cr_assert_eq(sl_snap_file_name_checkpoint(b, &id), 0);
	cr_assert_eq(id, 42);
	cr_assert_eq(sl_snap_file_name(b, sizeof(b), "a/b c", 0, 7, SL_SNAP_FILE_CHANNEL), 0);
	cr_assert_eq(sl_snap_path_check(b, false), 0, "%s", b);
	cr_assert(strncmp(b, "a_b_c_", 6) == 0, "%s", b);
	cr_assert_eq(sl_snap_file_name(b2, sizeof(b2), "a_b_c", 0, 7, SL_SNAP_FILE_CHANNEL), 0);
	cr_assert_str_neq(b, b2, "sanitised uids stay distinct");
	cr_assert_eq(sl_snap_file_name_checkpoint(b, &id), 0);
	cr_assert_eq(id, 7);
	cr_assert_eq(sl_snap_file_name(b, 10, "counts", 3, 42, SL_SNAP_FILE_KEYED),
		     -ENAMETOOLONG);
	cr_assert_eq(sl_snap_file_name_checkpoint("foreign.txt", &id), -EINVAL);
	cr_assert_eq(sl_snap_file_name_checkpoint("x-c.kstate", &id), -EINVAL);
	cr_assert_eq(sl_snap_file_name_checkpoint("x-c0.kstate", &id), -EINVAL);

	cr_assert_eq(sl_snap_chk_parse("chk-1", &id), 0);
	cr_assert_eq(id, 1);
	cr_assert_eq(sl_snap_chk_parse("chk-18446744073709551615", &id), 0);
	cr_assert_eq(id, UINT64_MAX);
	cr_assert_eq(sl_snap_chk_parse("chk-18446744073709551616", &id), -EINVAL);
	cr_assert_eq(sl_snap_chk_parse("chk-0", &id), -EINVAL);
	cr_assert_eq(sl_snap_chk_parse("chk-01", &id), -EINVAL);
	cr_assert_eq(sl_snap_chk_parse("chk-", &id), -EINVAL);
	cr_assert_eq(sl_snap_chk_parse("chk-1a", &id), -EINVAL);
	cr_assert_eq(sl_snap_chk_parse("chk--1", &id), -EINVAL);
	cr_assert_eq(sl_snap_chk_path(b, sizeof(b), "/r", 12), 0);
	cr_assert_str_eq(b, "/r/chk-12");
}

/* ---- random mutations through the fuzz entry points ------------------ */

/* Recompute every checksum of a (mutated) block file, following the
 * framing of docs/snapshot-format.md, so that mutations reach the parsers
 * behind the checksums.  Lengths are taken from the mutated bytes and
 * clipped, as garbage deserves. */
static void fix_block_file(uint8_t *b, size_t len)
{
	uint32_t hlen;
	uint64_t seed, off;

	if (len < 24)
		return;
	hlen = get32le(b + 12);
	if (hlen < 24 || hlen > len)
		return;
	seed = XXH3_64bits(b, hlen - 8);
	put64le(b + hlen - 8, seed);
	off = hlen;
	while (len >= 48 && off + 24 <= len - 48) {
		uint32_t plen = get32le(b + off + 12);

		if (plen > len - 48 - off - 24)
			break;
		put64le(b + off, XXH3_64bits_withSeed(b + off + 8, 16 + plen, seed));
		off += 24 + plen;
	}
	if (len >= 48 && memcmp(b + len - 48, "SLTRAILR", 8) == 0)
		put64le(b + len - 8, XXH3_64bits_withSeed(b + len - 48, 40, seed));
}

static void fix_meta_file(uint8_t *b, size_t len)
{
	if (len < 48)
		return;
	put64le(b + 16, len - 48);
	put64le(b + 24, XXH3_64bits(b, 24));
	memcpy(b + len - 16, "SLMDTEND", 8);
	put64le(b + len - 8, XXH3_64bits(b, len - 8));
}

static size_t mutate(uint8_t *b, size_t len, size_t cap, uint64_t *s)
{
	unsigned int n = 1 + rng_below(s, 4);

	for (unsigned int i = 0; i < n && len; i++) {
		size_t pos = rng_below(s, (uint32_t)len);

		switch (rng_below(s, 7)) {
		case 0: /* bit flip */
			b[pos] ^= (uint8_t)(1u << rng_below(s, 8));
			break;
		case 1: /* random byte */
			b[pos] = (uint8_t)rng_next(s);
			break;
		case 2: { /* interesting 32-bit value */
			static const uint32_t vals[] = { 0, 1, 0x7fffffff, 0xffffffff,
							 0x80000000, 65535, 65536, 24 };
			uint32_t v = vals[rng_below(s, 8)];

			if (pos + 4 <= len)
				for (int k = 0; k < 4; k++)
					b[pos + k] = (uint8_t)(v >> (8 * k));
			break;
		}
		case 3: /* truncate */
			len = pos;
			break;
		case 4: /* grow with random bytes */
			while (len < cap && rng_below(s, 8))
				b[len++] = (uint8_t)rng_next(s);
			break;
		case 5: { /* copy a chunk over another */
			size_t from = rng_below(s, (uint32_t)len);
			size_t k = rng_below(s, 64);

			if (from + k <= len && pos + k <= len)
				memmove(b + pos, b + from, k);
			break;
		}
		default: /* JSON-ish: replace a byte with a syntax character */
			b[pos] = (uint8_t)"{}[]\",:0-9.e\\/ "[rng_below(s, 16)];
			break;
		}
	}
	return len;
}

Test(fuzz, random_mutations_never_crash, .timeout = 120)
{
	struct memsink k, c;
	static struct batch_log want;
	struct sl_snap_metadata *m = make_meta(5);
	struct { const uint8_t *d; size_t n; int kind; } seeds[3];
	uint8_t *buf;
	size_t cap;
	uint64_t s = (uint64_t)time(NULL), iters = 0, fixed = 0;
	struct timespec t0, t1;
	void *mb;
	size_t ml;

	make_kstate(&k, 200, 40, 10, NULL, NULL);
	make_chan(&c, &want, 8);
	cr_assert_eq(sl_snap_meta_encode(m, &mb, &ml), 0);
	seeds[0].d = k.data, seeds[0].n = k.len, seeds[0].kind = 0;
	seeds[1].d = c.data, seeds[1].n = c.len, seeds[1].kind = 1;
	seeds[2].d = mb, seeds[2].n = ml, seeds[2].kind = 2;
	cap = (k.len > c.len ? k.len : c.len) + ml + 4096;
	buf = malloc(cap);
	cr_log_info("fuzz seed %llu", (unsigned long long)s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 3; i++) {
			size_t n = seeds[i].n;

			memcpy(buf, seeds[i].d, n);
			n = mutate(buf, n, cap, &s);
			/* half of the inputs get valid checksums */
			if (rng_below(&s, 2)) {
				if (seeds[i].kind == 2)
					fix_meta_file(buf, n);
				else
					fix_block_file(buf, n);
				fixed++;
			}
			if (seeds[i].kind == 0)
				sl_snap_fuzz_kstate(buf, n);
			else if (seeds[i].kind == 1)
				sl_snap_fuzz_chan(buf, n);
			else
				sl_snap_fuzz_metadata(buf, n);
			iters++;
		}
		/* pure garbage too */
		{
			size_t n = rng_below(&s, 512);

			for (size_t j = 0; j < n; j++)
				buf[j] = (uint8_t)rng_next(&s);
			sl_snap_fuzz_kstate(buf, n);
			sl_snap_fuzz_chan(buf, n);
			sl_snap_fuzz_metadata(buf, n);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec) <
		 2000000000ll);
	cr_log_info("fuzz: %llu mutated inputs (%llu with repaired checksums)",
		    (unsigned long long)iters, (unsigned long long)fixed);
	cr_assert(iters > 300, "only %llu iterations", (unsigned long long)iters);
	/* the repaired framing is the real one: unmutated seeds stay valid */
	memcpy(buf, k.data, k.len);
	fix_block_file(buf, k.len);
	cr_assert_arr_eq(buf, k.data, k.len);
	memcpy(buf, mb, ml);
	fix_meta_file(buf, ml);
	cr_assert_arr_eq(buf, mb, ml);
	free(buf);
	free(mb);
	free(k.data);
	free(c.data);
	free_batches(&want);
	sl_snap_meta_free(m);
}

Test(meta, inherit_keyed_chain_full_every_k, .timeout = 120)
{
	struct sl_snap_metadata *prev = NULL, *m;
	const uint32_t K = 3;
	uint32_t expect[] = { 0, 1, 2, 0, 1, 2, 0 };

	for (uint64_t id = 1; id <= 7; id++) {
		struct sl_snap_file_ref r;
		struct sl_snap_file_info fi = { 100 + id, id, 1, 0, 0 };
		char path[SL_SNAP_PATH_MAX];
		int op, n;

		m = sl_snap_meta_create(id, SL_SNAP_CHECKPOINT, "j", 1, 0);
		op = sl_snap_meta_add_operator(m, "agg", 2, 16);
		for (uint32_t t = 0; t < 2; t++) {
			n = sl_snap_meta_inherit_keyed(m, op, t, prev, K);
			cr_assert_eq(n, (int)expect[id - 1], "checkpoint %llu: %d",
				     (unsigned long long)id, n);
			snprintf(path, sizeof(path), "shared/agg-%u-c%llu.kstate", t,
				 (unsigned long long)id);
			sl_snap_file_ref_set(&r, path, SL_SNAP_FILE_KEYED, id, &fi, t * 8, 8);
			cr_assert_eq(sl_snap_meta_add_file(m, op, t, &r), 0);
			cr_assert_eq(m->operators[op].subtasks[t].n_files, (uint32_t)n + 1);
			if (n > 0)
				cr_assert_eq(m->operators[op].subtasks[t].files[n - 1].checkpoint_id,
					     id - 1, "the delta's base is the previous checkpoint");
		}
		sl_snap_meta_free(prev);
		prev = m;
	}
	/* rescaled: parallelism changed, a full file is due */
	m = sl_snap_meta_create(8, SL_SNAP_CHECKPOINT, "j", 1, 0);
	sl_snap_meta_add_operator(m, "agg", 4, 16);
	cr_assert_eq(sl_snap_meta_inherit_keyed(m, 0, 0, prev, K), 0);
	cr_assert_eq(sl_snap_meta_inherit_keyed(m, 0, 9, prev, K), -EINVAL);
	sl_snap_meta_free(m);
	sl_snap_meta_free(prev);
}
