/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Keyed-state files: the entries (and, for incremental files, deletions)
 * of one operator subtask's keyed state, one file per subtask and
 * checkpoint.  Framing (header, blocks, trailer, checksums) is that of
 * block_format.c; docs/snapshot-format.md has the full specification.
 * All integers little-endian.
 *
 * Header fields (after magic "SLKSTATE", version, header_len):
 *
 *     16 u64 checkpoint_id       checkpoint that wrote the file (>= 1)
 *     24 u64 base_checkpoint_id  incremental: the checkpoint this is a
 *                                delta to (1 <= base < checkpoint_id);
 *                                full: 0
 *     32 u32 subtask             subtask index
 *     36 u32 max_parallelism     key groups of the job (1..65536)
 *     40 u32 kg_first            key groups [kg_first, kg_first + kg_count)
 *     44 u32 kg_count            (>= 1, inside [0, max_parallelism))
 *     48 u16 key_size            1..4096
 *     50 u16 value_size          0..65535
 *     52 u8  kind                0 full, 1 incremental
 *     53 u8  uid_len             1..255
 *     54 u16 reserved            0
 *     56 uid[uid_len]            operator uid (no NUL)
 *        u64 hcheck              header_len = 64 + uid_len
 *
 * Blocks, in this order:
 *
 *   type 1, entries    count records of kg:u16 hash:u64 key value
 *                      (10 + key_size + value_size bytes each), key groups
 *                      in any order (the snapshot stepper walks key groups
 *                      in order, copy-on-update emits interleave)
 *   type 2, deletions  count records of kg:u16 hash:u64 key; incremental
 *                      files only; a contiguous section after all entry
 *                      blocks, so a loader can deliver deletions first
 *   type 3, summary    the last block, count = rows:
 *                      entries:u64 deletions:u64 deletions_off:u64
 *                      entry_blocks:u32 deletion_blocks:u32 rows:u32
 *                      reserved:u32, then rows x { kg:u32 reserved:u32
 *                      entries:u64 deletions:u64 } for the key groups with
 *                      a non-zero count, ascending.  deletions_off is the
 *                      offset of the first deletion block (= the summary's
 *                      offset when there is none).
 *
 * Restore order: a full file, then the deltas of its chain oldest first;
 * within a delta, every deletion before every entry (a key deleted and
 * re-inserted since the base appears in both).
 */
#include <errno.h>
#include <stdlib.h>

#include "sluice/keyed_state.h"
#include "snap_pvt.h"

_Static_assert(__builtin_types_compatible_p(__typeof__(&sl_snap_kstate_emit),
					    sl_kstate_emit_fn),
	       "sl_snap_kstate_emit must match sl_kstate_emit_fn");
_Static_assert(__builtin_types_compatible_p(__typeof__(&sl_snap_kstate_emit_run),
					    sl_kstate_emit_run_fn),
	       "sl_snap_kstate_emit_run must match sl_kstate_emit_run_fn");
_Static_assert(__builtin_types_compatible_p(__typeof__(&sl_snap_kstate_deleted),
					    sl_kstate_deleted_fn),
	       "sl_snap_kstate_deleted must match sl_kstate_deleted_fn");

#define KS_HDR_FIXED 40u     /* header fields between prefix and uid */
#define KS_SUMMARY_FIXED 40u /* summary payload before the rows */
#define KS_SUMMARY_ROW 24u
#define KS_BURST 32u
/* copy-on-update records collected before they go to the output */
#define KS_PEND_BYTES (16u * 1024)

struct sl_snap_kstate_enc {
	struct __sl_snap_out out;
	struct sl_snap_kstate_conf conf;
	char uid[SL_SNAP_NAME_MAX];
	size_t rec_len; /* bytes of one entry record */
	size_t del_len; /* bytes of one deletion record */
	uint64_t entries, deletions;
	uint64_t *kg_entries;
	uint64_t *kg_deletions;
	uint8_t *dels; /* deletion records, written at finish */
	size_t dels_len, dels_cap;
	uint8_t *pend; /* copy-on-update records, KS_PEND_BYTES */
	size_t pend_len;
	bool finished;
};

static int kstate_conf_ok(const struct sl_snap_kstate_conf *c)
{
	if (c == NULL || !__sl_snap_name_ok(c->uid) || c->sink == NULL ||
	    c->checkpoint_id == 0 || c->key_size == 0 ||
	    c->key_size > SL_SNAP_KEY_MAX ||
	    c->max_parallelism == 0 || c->max_parallelism > 65536 ||
	    c->kg_count == 0 || c->kg_first >= c->max_parallelism ||
	    c->kg_count > c->max_parallelism - c->kg_first ||
	    c->block_size > SL_SNAP_BLOCK_MAX)
		return 0;
	if (c->kind == SL_SNAP_KSTATE_FULL)
		return c->base_checkpoint_id == 0;
	if (c->kind == SL_SNAP_KSTATE_INCREMENTAL)
		return c->base_checkpoint_id >= 1 &&
		       c->base_checkpoint_id < c->checkpoint_id;
	return 0;
}

struct sl_snap_kstate_enc *
sl_snap_kstate_enc_create(const struct sl_snap_kstate_conf *conf)
{
	struct sl_snap_kstate_enc *e;
	uint8_t hdr[KS_HDR_FIXED + SL_SNAP_NAME_MAX];
	size_t uid_len;
	int rc;

	if (!kstate_conf_ok(conf)) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->conf = *conf;
	uid_len = strlen(conf->uid);
	memcpy(e->uid, conf->uid, uid_len + 1);
	e->conf.uid = e->uid;
	e->rec_len = 10u + conf->key_size + conf->value_size;
	e->del_len = 10u + conf->key_size;
	e->kg_entries = calloc(conf->kg_count, sizeof(uint64_t));
	e->kg_deletions = calloc(conf->kg_count, sizeof(uint64_t));
	e->pend = malloc(KS_PEND_BYTES);
	if (e->kg_entries == NULL || e->kg_deletions == NULL || e->pend == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = __sl_snap_out_init(&e->out, conf->block_size, conf->sink,
				     conf->sink_arg)) < 0)
		goto fail;

	memset(hdr, 0, sizeof(hdr));
	snap_put64(hdr + 0, conf->checkpoint_id);
	snap_put64(hdr + 8, conf->base_checkpoint_id);
	snap_put32(hdr + 16, conf->subtask);
	snap_put32(hdr + 20, conf->max_parallelism);
	snap_put32(hdr + 24, conf->kg_first);
	snap_put32(hdr + 28, conf->kg_count);
	snap_put16(hdr + 32, conf->key_size);
	snap_put16(hdr + 34, conf->value_size);
	hdr[36] = (uint8_t)conf->kind;
	hdr[37] = (uint8_t)uid_len;
	memcpy(hdr + KS_HDR_FIXED, conf->uid, uid_len);
	if ((rc = __sl_snap_out_header(&e->out, SNAP_MAGIC_KSTATE, hdr,
				       KS_HDR_FIXED + uid_len)) < 0)
		goto fail;
	return e;
fail:
	sl_snap_kstate_enc_free(e);
	errno = -rc;
	return NULL;
}

void sl_snap_kstate_enc_free(struct sl_snap_kstate_enc *e)
{
	if (e == NULL)
		return;
	__sl_snap_out_fini(&e->out);
	free(e->kg_entries);
	free(e->kg_deletions);
	free(e->dels);
	free(e->pend);
	free(e);
}

static int enc_fail(struct sl_snap_kstate_enc *e, int rc)
{
	if (e->out.error == 0)
		e->out.error = rc;
	return e->out.error;
}

static inline bool enc_kg_ok(const struct sl_snap_kstate_enc *e, uint16_t kg)
{
	return kg >= e->conf.kg_first && kg - e->conf.kg_first < e->conf.kg_count;
}

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* The collected copy-on-update records (counted already) to the output,
 * as many per reservation as block and buffer take. */
static void pend_flush(struct sl_snap_kstate_enc *e)
{
	struct __sl_snap_out *o = &e->out;
	const size_t rec = e->rec_len;
	size_t off = 0;

	while (off < e->pend_len) {
		uint8_t *p = __sl_snap_out_record_fast(o, SNAP_BLK_KEYED_ENTRIES,
						       rec);
		size_t plen, k;

		if (p == NULL)
			break; /* error latched */
		plen = o->len - o->blk_start - SNAP_BLK_HDR;
		k = (e->pend_len - off) / rec - 1;
		k = min_sz(k, plen < o->block_size ? (o->block_size - plen) / rec : 0);
		k = min_sz(k, (o->cap - o->len) / rec);
		k = 1 + min_sz(k, UINT32_MAX - o->blk_count);
		o->len += (k - 1) * rec;
		o->blk_count += (uint32_t)(k - 1);
		memcpy(p, e->pend + off, k * rec);
		off += k * rec;
	}
	e->pend_len = 0;
}

int sl_snap_kstate_enc_add(struct sl_snap_kstate_enc *e,
			   const struct sl_snap_kv *kv, unsigned int n)
{
	const size_t ks = e->conf.key_size, vs = e->conf.value_size;

	if (e->out.error)
		return e->out.error;
	if (e->finished)
		return enc_fail(e, -EINVAL);
	pend_flush(e);
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *p;

		if (!enc_kg_ok(e, kv[i].kg))
			return enc_fail(e, -ERANGE);
		p = __sl_snap_out_record_fast(&e->out, SNAP_BLK_KEYED_ENTRIES,
					      e->rec_len);
		if (p == NULL)
			return e->out.error;
		snap_put16(p, kv[i].kg);
		snap_put64(p + 2, kv[i].hash);
		memcpy(p + 10, kv[i].key, ks);
		if (vs)
			memcpy(p + 10 + ks, kv[i].value, vs);
		e->kg_entries[kv[i].kg - e->conf.kg_first]++;
		e->entries++;
	}
	return 0;
}

int sl_snap_kstate_enc_delete(struct sl_snap_kstate_enc *e,
			      const struct sl_snap_kv *kv, unsigned int n)
{
	const size_t ks = e->conf.key_size;

	if (e->out.error)
		return e->out.error;
	if (e->finished || e->conf.kind != SL_SNAP_KSTATE_INCREMENTAL)
		return enc_fail(e, -EINVAL);
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *p;

		if (!enc_kg_ok(e, kv[i].kg))
			return enc_fail(e, -ERANGE);
		if (e->dels_len + e->del_len > e->dels_cap) {
			size_t cap = e->dels_cap ? e->dels_cap * 2 : 4096;
			uint8_t *nb = realloc(e->dels, cap);

			if (nb == NULL)
				return enc_fail(e, -ENOMEM);
			e->dels = nb;
			e->dels_cap = cap;
		}
		p = e->dels + e->dels_len;
		snap_put16(p, kv[i].kg);
		snap_put64(p + 2, kv[i].hash);
		memcpy(p + 10, kv[i].key, ks);
		e->dels_len += e->del_len;
		e->kg_deletions[kv[i].kg - e->conf.kg_first]++;
		e->deletions++;
	}
	return 0;
}

/* Copy n (< 2^16) bytes whose count is the same on every call of a run:
 * overlapping fixed-size moves instead of a call to memcpy, whose
 * run-time size costs more than the copy for keys and values this small. */
static inline void copy_small(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n >= 8 && n <= 16) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n > 16 && n <= 32) {
		memcpy(d, s, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n > 32 && n <= 64) {
		memcpy(d, s, 32);
		memcpy(d + n - 32, s + n - 32, 32);
	} else {
		memcpy(d, s, n);
	}
}

void sl_snap_kstate_emit_run(void *enc, const struct sl_kstate_snap_entry *v,
			     unsigned int n)
{
	struct sl_snap_kstate_enc *e = enc;
	struct __sl_snap_out *o = &e->out;
	const size_t ks = e->conf.key_size, vs = e->conf.value_size;
	const size_t rec = e->rec_len;

	if (o->error)
		return;
	if (e->finished) {
		enc_fail(e, -EINVAL);
		return;
	}
	if (e->pend_len > 0)
		pend_flush(e);
	while (n > 0) {
		/* the first record may open or seal a block; the ones after it
		 * go where it went as long as block and buffer have room */
		uint8_t *p = __sl_snap_out_record_fast(o, SNAP_BLK_KEYED_ENTRIES,
						       rec);
		size_t plen, k;

		if (p == NULL)
			return; /* error latched */
		plen = o->len - o->blk_start - SNAP_BLK_HDR;
		k = n - 1;
		k = min_sz(k, plen < o->block_size ? (o->block_size - plen) / rec : 0);
		k = min_sz(k, (o->cap - o->len) / rec);
		k = 1 + min_sz(k, UINT32_MAX - o->blk_count);
		o->len += (k - 1) * rec;
		o->blk_count += (uint32_t)(k - 1);
		for (size_t i = 0; i < k; i++, p += rec, v++) {
			if (__builtin_expect(!enc_kg_ok(e, v->kg), 0)) {
				/* the file is unusable anyway: the records
				 * reserved above are never handed out */
				enc_fail(e, -ERANGE);
				return;
			}
			snap_put16(p, v->kg);
			snap_put64(p + 2, v->hash);
			if ((const uint8_t *)v->value == (const uint8_t *)v->key + ks) {
				/* value right after the key (the state's
				 * entry layout): one copy */
				copy_small(p + 10, v->key, ks + vs);
			} else {
				copy_small(p + 10, v->key, ks);
				copy_small(p + 10 + ks, v->value, vs);
			}
			e->kg_entries[v->kg - e->conf.kg_first]++;
		}
		e->entries += k;
		n -= (unsigned int)k;
	}
}

void sl_snap_kstate_emit(void *enc, uint16_t kg, uint64_t hash,
			 const void *key, const void *value)
{
	/*
	 * Copy-on-update: called from the operator's upserts, between the
	 * cache misses of one and the next.  The out-of-order core overlaps
	 * those misses only if the code between them is short, so the record
	 * goes to a small collection (sent to the output with the next run or
	 * at finish) in a few instructions; the encoder's full path here cost
	 * the hot path ~200 ns per emit (docs/benchmarks.md).  Errors are
	 * latched in the encoder and reported by finish.
	 */
	struct sl_snap_kstate_enc *e = enc;
	const size_t ks = e->conf.key_size, vs = e->conf.value_size;
	uint8_t *p;

	if (__builtin_expect(e->pend_len + e->rec_len > KS_PEND_BYTES ||
			     e->finished || !enc_kg_ok(e, kg), 0)) {
		const struct sl_kstate_snap_entry v = {
			.hash = hash, .key = key, .value = value, .kg = kg,
		};

		sl_snap_kstate_emit_run(enc, &v, 1); /* flushes first */
		return;
	}
	p = e->pend + e->pend_len;
	snap_put16(p, kg);
	snap_put64(p + 2, hash);
	if ((const uint8_t *)value == (const uint8_t *)key + ks) {
		copy_small(p + 10, key, ks + vs);
	} else {
		copy_small(p + 10, key, ks);
		copy_small(p + 10 + ks, value, vs);
	}
	e->pend_len += e->rec_len;
	e->kg_entries[kg - e->conf.kg_first]++;
	e->entries++;
}

int sl_snap_kstate_deleted(void *enc, uint16_t kg, uint64_t hash,
			   const void *key, uint32_t epoch)
{
	struct sl_snap_kv kv = { kg, hash, key, NULL };

	(void)epoch;
	return sl_snap_kstate_enc_delete(enc, &kv, 1);
}

int sl_snap_kstate_enc_error(const struct sl_snap_kstate_enc *e)
{
	return e->out.error;
}

int sl_snap_kstate_enc_finish(struct sl_snap_kstate_enc *e,
			      struct sl_snap_file_info *info)
{
	uint64_t del_off, summary_off;
	uint32_t entry_blocks, del_blocks, rows = 0;
	uint8_t *p;
	int rc;

	if (e->out.error)
		return e->out.error;
	if (e->finished)
		return enc_fail(e, -EINVAL);
	pend_flush(e);
	e->finished = true;

	del_off = __sl_snap_out_offset(&e->out);
	entry_blocks = e->out.next_seq;
	for (size_t off = 0; off < e->dels_len; off += e->del_len) {
		p = __sl_snap_out_record(&e->out, SNAP_BLK_KEYED_DELETIONS,
					 e->del_len);
		if (p == NULL)
			return e->out.error;
		memcpy(p, e->dels + off, e->del_len);
	}
	summary_off = __sl_snap_out_offset(&e->out);
	del_blocks = e->out.next_seq - entry_blocks;
	if (e->out.error)
		return e->out.error;

	for (uint32_t i = 0; i < e->conf.kg_count; i++)
		rows += e->kg_entries[i] || e->kg_deletions[i];
	p = __sl_snap_out_record(&e->out, SNAP_BLK_KEYED_SUMMARY,
				 KS_SUMMARY_FIXED + (size_t)rows * KS_SUMMARY_ROW);
	if (p == NULL)
		return e->out.error;
	snap_put64(p, e->entries);
	snap_put64(p + 8, e->deletions);
	snap_put64(p + 16, del_off);
	snap_put32(p + 24, entry_blocks);
	snap_put32(p + 28, del_blocks);
	snap_put32(p + 32, rows);
	snap_put32(p + 36, 0);
	p += KS_SUMMARY_FIXED;
	for (uint32_t i = 0; i < e->conf.kg_count; i++) {
		if (!e->kg_entries[i] && !e->kg_deletions[i])
			continue;
		snap_put32(p, e->conf.kg_first + i);
		snap_put32(p + 4, 0);
		snap_put64(p + 8, e->kg_entries[i]);
		snap_put64(p + 16, e->kg_deletions[i]);
		p += KS_SUMMARY_ROW;
	}
	e->out.blk_count = rows; /* the summary counts rows, not records */
	if ((rc = __sl_snap_out_finish(&e->out, summary_off, info)) < 0)
		return rc;
	if (info) {
		info->records = e->entries;
		info->deletions = e->deletions;
	}
	return 0;
}

/* ================================================================ loader */

void sl_snap_kstate_info_clear(struct sl_snap_kstate_info *info)
{
	if (info == NULL)
		return;
	free(info->kg_entries);
	free(info->kg_deletions);
	info->kg_entries = NULL;
	info->kg_deletions = NULL;
}

/* What the loader keeps between the header/summary and the block passes. */
struct ks_layout {
	uint64_t del_off, summary_off;
	uint32_t entry_blocks, del_blocks;
};

static int ks_parse_header(struct __sl_snap_in *in,
			   struct sl_snap_kstate_info *info)
{
	const uint8_t *b;
	size_t blen;
	uint32_t uid_len;
	int rc;

	if ((rc = __sl_snap_in_header(in, SNAP_MAGIC_KSTATE, "keyed-state",
				      &b, &blen)) < 0)
		return rc;
	if (blen < KS_HDR_FIXED || blen != KS_HDR_FIXED + (size_t)b[37])
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "header length does not match its uid");
	info->checkpoint_id = snap_get64(b);
	info->base_checkpoint_id = snap_get64(b + 8);
	info->subtask = snap_get32(b + 16);
	info->max_parallelism = snap_get32(b + 20);
	info->kg_first = snap_get32(b + 24);
	info->kg_count = snap_get32(b + 28);
	info->key_size = snap_get16(b + 32);
	info->value_size = snap_get16(b + 34);
	info->kind = (enum sl_snap_kstate_kind)b[36];
	uid_len = b[37];
	if (uid_len == 0 || memchr(b + KS_HDR_FIXED, 0, uid_len) != NULL ||
	    snap_get16(b + 38) != 0)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "bad uid or reserved field in header");
	memcpy(info->uid, b + KS_HDR_FIXED, uid_len);
	info->uid[uid_len] = '\0';
	if (info->checkpoint_id == 0 || info->key_size == 0 ||
	    info->key_size > SL_SNAP_KEY_MAX || info->max_parallelism == 0 ||
	    info->max_parallelism > 65536 || info->kg_count == 0 ||
	    info->kg_first >= info->max_parallelism ||
	    info->kg_count > info->max_parallelism - info->kg_first)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "header values out of range");
	if (!(b[36] == SL_SNAP_KSTATE_FULL && info->base_checkpoint_id == 0) &&
	    !(b[36] == SL_SNAP_KSTATE_INCREMENTAL &&
	      info->base_checkpoint_id >= 1 &&
	      info->base_checkpoint_id < info->checkpoint_id))
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "bad kind %u / base checkpoint %llu", b[36],
				      (unsigned long long)info->base_checkpoint_id);
	return 0;
}

static int ks_parse_summary(struct __sl_snap_in *in,
			    struct sl_snap_kstate_info *info,
			    struct ks_layout *lay)
{
	struct __sl_snap_trailer t;
	struct __sl_snap_block b;
	uint64_t sum_e = 0, sum_d = 0;
	const uint8_t *p;
	uint32_t rows;
	int64_t prev = -1;
	int rc;

	if ((rc = __sl_snap_in_trailer(in, &t)) < 0)
		return rc;
	if ((rc = __sl_snap_in_block(in, t.summary_off, t.end,
				     SNAP_BLK_KEYED_SUMMARY,
				     (uint32_t)(t.blocks - 1), &b)) < 0)
		return rc;
	rows = b.count;
	if (b.next != t.end || rows > info->kg_count ||
	    b.len != KS_SUMMARY_FIXED + (uint64_t)rows * KS_SUMMARY_ROW)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "summary block malformed");
	p = b.payload;
	info->entries = snap_get64(p);
	info->deletions = snap_get64(p + 8);
	lay->del_off = snap_get64(p + 16);
	lay->entry_blocks = snap_get32(p + 24);
	lay->del_blocks = snap_get32(p + 28);
	lay->summary_off = t.summary_off;
	if (snap_get32(p + 32) != rows || snap_get32(p + 36) != 0 ||
	    lay->del_off < in->hdr_len || lay->del_off > t.summary_off ||
	    (uint64_t)lay->entry_blocks + lay->del_blocks + 1 != t.blocks ||
	    (info->kind == SL_SNAP_KSTATE_FULL && lay->del_blocks != 0))
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "summary fields inconsistent");
	info->kg_entries = calloc(info->kg_count, sizeof(uint64_t));
	info->kg_deletions = calloc(info->kg_count, sizeof(uint64_t));
	if (info->kg_entries == NULL || info->kg_deletions == NULL)
		return __sl_snap_errf(in->err, in->name, -ENOMEM, "out of memory");
	p += KS_SUMMARY_FIXED;
	for (uint32_t i = 0; i < rows; i++, p += KS_SUMMARY_ROW) {
		uint32_t kg = snap_get32(p);
		uint64_t ne = snap_get64(p + 8), nd = snap_get64(p + 16);

		if ((int64_t)kg <= prev || kg < info->kg_first ||
		    kg - info->kg_first >= info->kg_count ||
		    snap_get32(p + 4) != 0 || (ne == 0 && nd == 0) ||
		    ne > UINT64_MAX - sum_e || nd > UINT64_MAX - sum_d)
			return __sl_snap_errf(in->err, in->name, -EBADMSG,
					      "summary row %u malformed", i);
		prev = kg;
		info->kg_entries[kg - info->kg_first] = ne;
		info->kg_deletions[kg - info->kg_first] = nd;
		sum_e += ne;
		sum_d += nd;
	}
	if (sum_e != info->entries || sum_d != info->deletions ||
	    (info->kind == SL_SNAP_KSTATE_FULL && sum_d != 0))
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "summary totals disagree with its rows");
	return 0;
}

int sl_snap_kstate_read_info(const struct sl_snap_src *src,
			     struct sl_snap_kstate_info *info,
			     struct sl_snap_err *err)
{
	struct __sl_snap_in in;
	struct ks_layout lay;
	int rc;

	memset(info, 0, sizeof(*info));
	if ((rc = __sl_snap_in_init(&in, src, err)) < 0)
		return rc;
	rc = ks_parse_header(&in, info);
	if (rc == 0)
		rc = ks_parse_summary(&in, info, &lay);
	__sl_snap_in_fini(&in);
	if (rc < 0)
		sl_snap_kstate_info_clear(info);
	return rc;
}

/* State of one pass over a section of blocks. */
struct ks_pass {
	struct __sl_snap_in *in;
	const struct sl_snap_kstate_info *info;
	uint32_t f_first, f_end;  /* filter [f_first, f_end) */
	uint64_t *counted;	  /* per key group, for the cross-check */
	sl_snap_kv_fn fn;
	void (*consumed)(void *arg, uint64_t offset);
	void *arg;
};

static int ks_section(struct ks_pass *ps, uint64_t off, uint64_t limit,
		      uint32_t type, uint32_t seq0, uint32_t nblocks,
		      const char *what)
{
	const struct sl_snap_kstate_info *info = ps->info;
	const size_t ks = info->key_size;
	const size_t rec = 10u + ks +
			   (type == SNAP_BLK_KEYED_ENTRIES ? info->value_size : 0);
	struct sl_snap_kv burst[KS_BURST];
	int rc;

	for (uint32_t i = 0; i < nblocks; i++) {
		struct __sl_snap_block b;
		const uint8_t *p;
		unsigned int nb = 0;

		if ((rc = __sl_snap_in_block(ps->in, off, limit, type, seq0 + i,
					     &b)) < 0)
			return rc;
		if ((uint64_t)b.count * rec != b.len)
			return __sl_snap_errf(ps->in->err, ps->in->name, -EBADMSG,
					      "block %u: %u %s do not fill %u bytes",
					      b.seq, b.count, what, b.len);
		p = b.payload;
		for (uint32_t r = 0; r < b.count; r++, p += rec) {
			uint16_t kg = snap_get16(p);

			if (kg < info->kg_first ||
			    kg - info->kg_first >= info->kg_count)
				return __sl_snap_errf(ps->in->err, ps->in->name,
						      -EBADMSG,
						      "block %u: key group %u outside the file's range [%u, %u)",
						      b.seq, kg, info->kg_first,
						      info->kg_first + info->kg_count);
			ps->counted[kg - info->kg_first]++;
			if (ps->fn == NULL || kg < ps->f_first || kg >= ps->f_end)
				continue;
			burst[nb].kg = kg;
			burst[nb].hash = snap_get64(p + 2);
			burst[nb].key = p + 10;
			burst[nb].value = type == SNAP_BLK_KEYED_ENTRIES ?
						  p + 10 + ks : NULL;
			if (++nb == KS_BURST) {
				if ((rc = ps->fn(ps->arg, burst, nb)) != 0)
					return rc;
				nb = 0;
			}
		}
		/* the burst points into this block: deliver before the next
		 * read reuses the buffer */
		if (nb && (rc = ps->fn(ps->arg, burst, nb)) != 0)
			return rc;
		off = b.next;
		if (ps->consumed != NULL)
			ps->consumed(ps->arg, off);
	}
	if (off != limit)
		return __sl_snap_errf(ps->in->err, ps->in->name, -EBADMSG,
				      "%s section ends at %llu, expected %llu",
				      what, (unsigned long long)off,
				      (unsigned long long)limit);
	return 0;
}

int sl_snap_kstate_load(const struct sl_snap_src *src,
			const struct sl_snap_kstate_visitor *v,
			struct sl_snap_kstate_info *info_out,
			struct sl_snap_err *err)
{
	struct sl_snap_kstate_info local, *info = info_out ? info_out : &local;
	struct __sl_snap_in in;
	struct ks_layout lay;
	struct ks_pass ps = { 0 };
	uint64_t *cnt_e = NULL, *cnt_d = NULL;
	uint32_t f_first, f_end, end;
	int rc;

	memset(info, 0, sizeof(*info));
	if ((rc = __sl_snap_in_init(&in, src, err)) < 0)
		return rc;
	if ((rc = ks_parse_header(&in, info)) < 0 ||
	    (rc = ks_parse_summary(&in, info, &lay)) < 0)
		goto out;

	/* the filter, clipped to the file's range; skip the blocks entirely
	 * when nothing in it is wanted */
	end = info->kg_first + info->kg_count;
	f_first = info->kg_first;
	f_end = end;
	if (v && v->kg_count) {
		uint64_t vend = (uint64_t)v->kg_first + v->kg_count;

		f_first = v->kg_first > f_first ? v->kg_first : f_first;
		f_end = vend < f_end ? (uint32_t)vend : f_end;
		if (f_first >= f_end)
			goto out;
	}
	{
		bool any = false;

		for (uint32_t kg = f_first; kg < f_end && !any; kg++)
			any = info->kg_entries[kg - info->kg_first] ||
			      info->kg_deletions[kg - info->kg_first];
		if (!any)
			goto out;
	}

	cnt_e = calloc(info->kg_count, sizeof(uint64_t));
	cnt_d = calloc(info->kg_count, sizeof(uint64_t));
	if (cnt_e == NULL || cnt_d == NULL) {
		rc = __sl_snap_errf(err, in.name, -ENOMEM, "out of memory");
		goto out;
	}
	ps.in = &in;
	ps.info = info;
	ps.f_first = f_first;
	ps.f_end = f_end;
	ps.arg = v ? v->arg : NULL;

	ps.counted = cnt_d;
	ps.fn = v ? v->on_deletions : NULL;
	if ((rc = ks_section(&ps, lay.del_off, lay.summary_off,
			     SNAP_BLK_KEYED_DELETIONS, lay.entry_blocks,
			     lay.del_blocks, "deletions")) != 0)
		goto out;
	ps.counted = cnt_e;
	ps.fn = v ? v->on_entries : NULL;
	/* the entries come last: the header, the summary and the deletions
	 * were read before them */
	ps.consumed = v ? v->on_consumed : NULL;
	if ((rc = ks_section(&ps, in.hdr_len, lay.del_off,
			     SNAP_BLK_KEYED_ENTRIES, 0, lay.entry_blocks,
			     "entries")) != 0)
		goto out;
	for (uint32_t i = 0; i < info->kg_count; i++)
		if (cnt_e[i] != info->kg_entries[i] ||
		    cnt_d[i] != info->kg_deletions[i]) {
			rc = __sl_snap_errf(err, in.name, -EBADMSG,
					    "summary disagrees with the blocks for key group %u",
					    info->kg_first + i);
			goto out;
		}
out:
	free(cnt_e);
	free(cnt_d);
	__sl_snap_in_fini(&in);
	if (rc != 0 || info == &local)
		sl_snap_kstate_info_clear(info);
	return rc;
}
