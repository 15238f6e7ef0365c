/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Channel-state files: the in-flight batches one subtask persisted for an
 * unaligned checkpoint (input batches before the barrier that were not
 * consumed at snapshot time, staged output that could not be sent).  One
 * file per subtask and checkpoint.  Framing (header, blocks, trailer,
 * checksums) is that of block_format.c; docs/snapshot-format.md has the
 * full specification.  All integers little-endian.
 *
 * Header fields (after magic "SLCHSTAT", version, header_len):
 *
 *     16 u64 checkpoint_id
 *     24 u32 subtask
 *     28 u32 n_channels           1..4096
 *     32 u8  uid_len              1..255
 *     33 u8  reserved[7]          0
 *     40 uid[uid_len]             operator uid of the subtask
 *        n_channels x channel:    direction:u8 (0 in, 1 out)
 *                                 peer_uid_len:u8 (1..255) reserved:u16 (0)
 *                                 index:u32 (input/output index)
 *                                 peer_subtask:u32
 *                                 peer_uid[peer_uid_len]
 *        u64 hcheck
 *
 * Channels are identified by operator uids and subtask indexes only,
 * never by lcore, so a restore with another core layout (or on another
 * node) maps them back.  A (direction, index) pair appears once.
 *
 * Blocks:
 *
 *   type 4, batches   count batch records, each
 *                       channel:u32 (position in the channel table)
 *                       kind:u16 (0 data, 1 watermark: enum sl_batch_kind)
 *                       record_size:u16 record_count:u32 reserved:u32 (0)
 *                       seq:u64 (data-lane sequence number)
 *                       watermark:i64
 *                       records[record_size * record_count]
 *                     in the order they were appended: per channel, the
 *                     stream order.  A batch bigger than the block size
 *                     gets a block of its own.
 *   type 5, summary   the last block, count = n_channels:
 *                       batches:u64 records:u64 bytes:u64
 *                       batch_blocks:u32 n_channels:u32
 *                     then n_channels x { batches:u64 records:u64
 *                     bytes:u64 } in table order.
 */
#include <errno.h>
#include <stdlib.h>

#include "snap_pvt.h"

#define CH_HDR_FIXED 24u     /* header fields before the uid */
#define CH_DESC_FIXED 12u    /* channel descriptor before the peer uid */
#define CH_MAX_CHANNELS 4096u
#define CH_BATCH_HDR 32u
#define CH_SUMMARY_FIXED 32u
#define CH_SUMMARY_ROW 24u

struct sl_snap_chan_enc {
	struct __sl_snap_out out;
	uint32_t n_channels;
	uint64_t *batches, *records, *bytes;
	uint64_t total_batches, total_records, total_bytes;
	bool finished;
};

struct sl_snap_chan_enc *
sl_snap_chan_enc_create(const struct sl_snap_chan_conf *c)
{
	struct sl_snap_chan_enc *e = NULL;
	uint8_t *hdr = NULL, *p;
	size_t hlen, uid_len;
	int rc = -EINVAL;

	if (c == NULL || !__sl_snap_name_ok(c->uid) || c->sink == NULL ||
	    c->checkpoint_id == 0 || c->n_channels == 0 ||
	    c->n_channels > CH_MAX_CHANNELS || c->channels == NULL ||
	    c->block_size > SL_SNAP_BLOCK_MAX)
		goto fail;
	uid_len = strlen(c->uid);
	hlen = CH_HDR_FIXED + uid_len;
	for (uint32_t i = 0; i < c->n_channels; i++) {
		const struct sl_snap_chan_id *ch = &c->channels[i];

		if (ch->direction > SL_SNAP_CHAN_OUT ||
		    !__sl_snap_name_ok(ch->peer_uid))
			goto fail;
		for (uint32_t j = 0; j < i; j++)
			if (c->channels[j].direction == ch->direction &&
			    c->channels[j].index == ch->index)
				goto fail;
		hlen += CH_DESC_FIXED + strlen(ch->peer_uid);
	}
	rc = -ENOMEM;
	e = calloc(1, sizeof(*e));
	hdr = calloc(1, hlen);
	if (e == NULL || hdr == NULL)
		goto fail;
	e->n_channels = c->n_channels;
	e->batches = calloc(c->n_channels, sizeof(uint64_t));
	e->records = calloc(c->n_channels, sizeof(uint64_t));
	e->bytes = calloc(c->n_channels, sizeof(uint64_t));
	if (e->batches == NULL || e->records == NULL || e->bytes == NULL)
		goto fail;
	if ((rc = __sl_snap_out_init(&e->out, c->block_size, c->sink,
				     c->sink_arg)) < 0)
		goto fail;

	snap_put64(hdr, c->checkpoint_id);
	snap_put32(hdr + 8, c->subtask);
	snap_put32(hdr + 12, c->n_channels);
	hdr[16] = (uint8_t)uid_len;
	memcpy(hdr + CH_HDR_FIXED, c->uid, uid_len);
	p = hdr + CH_HDR_FIXED + uid_len;
	for (uint32_t i = 0; i < c->n_channels; i++) {
		const struct sl_snap_chan_id *ch = &c->channels[i];
		size_t plen = strlen(ch->peer_uid);

		p[0] = ch->direction;
		p[1] = (uint8_t)plen;
		snap_put16(p + 2, 0);
		snap_put32(p + 4, ch->index);
		snap_put32(p + 8, ch->peer_subtask);
		memcpy(p + CH_DESC_FIXED, ch->peer_uid, plen);
		p += CH_DESC_FIXED + plen;
	}
	if ((rc = __sl_snap_out_header(&e->out, SNAP_MAGIC_CHAN, hdr, hlen)) < 0)
		goto fail;
	free(hdr);
	return e;
fail:
	free(hdr);
	sl_snap_chan_enc_free(e);
	errno = -rc;
	return NULL;
}

void sl_snap_chan_enc_free(struct sl_snap_chan_enc *e)
{
	if (e == NULL)
		return;
	__sl_snap_out_fini(&e->out);
	free(e->batches);
	free(e->records);
	free(e->bytes);
	free(e);
}

static int chan_fail(struct sl_snap_chan_enc *e, int rc)
{
	if (e->out.error == 0)
		e->out.error = rc;
	return e->out.error;
}

int sl_snap_chan_enc_add(struct sl_snap_chan_enc *e, uint32_t channel,
			 const struct sl_snap_chan_batch *b)
{
	uint64_t bytes;
	uint8_t *p;

	if (e->out.error)
		return e->out.error;
	if (e->finished || channel >= e->n_channels || b->kind > 1 ||
	    (b->record_count && (b->record_size == 0 || b->records == NULL)))
		return chan_fail(e, -EINVAL);
	bytes = (uint64_t)b->record_size * b->record_count;
	if (bytes > SL_SNAP_BLOCK_MAX - CH_BATCH_HDR)
		return chan_fail(e, -E2BIG);
	p = __sl_snap_out_record(&e->out, SNAP_BLK_CHAN_BATCHES,
				 CH_BATCH_HDR + (size_t)bytes);
	if (p == NULL)
		return e->out.error;
	snap_put32(p, channel);
	snap_put16(p + 4, b->kind);
	snap_put16(p + 6, b->record_size);
	snap_put32(p + 8, b->record_count);
	snap_put32(p + 12, 0);
	snap_put64(p + 16, b->seq);
	snap_put64(p + 24, (uint64_t)b->watermark);
	if (bytes)
		memcpy(p + CH_BATCH_HDR, b->records, (size_t)bytes);
	e->batches[channel]++;
	e->records[channel] += b->record_count;
	e->bytes[channel] += bytes;
	e->total_batches++;
	e->total_records += b->record_count;
	e->total_bytes += bytes;
	return 0;
}

int sl_snap_chan_enc_finish(struct sl_snap_chan_enc *e,
			    struct sl_snap_file_info *info)
{
	uint64_t summary_off;
	uint32_t batch_blocks;
	uint8_t *p;
	int rc;

	if (e->out.error)
		return e->out.error;
	if (e->finished)
		return chan_fail(e, -EINVAL);
	e->finished = true;
	summary_off = __sl_snap_out_offset(&e->out);
	batch_blocks = e->out.next_seq;
	p = __sl_snap_out_record(&e->out, SNAP_BLK_CHAN_SUMMARY,
				 CH_SUMMARY_FIXED +
					 (size_t)e->n_channels * CH_SUMMARY_ROW);
	if (p == NULL)
		return e->out.error;
	snap_put64(p, e->total_batches);
	snap_put64(p + 8, e->total_records);
	snap_put64(p + 16, e->total_bytes);
	snap_put32(p + 24, batch_blocks);
	snap_put32(p + 28, e->n_channels);
	p += CH_SUMMARY_FIXED;
	for (uint32_t i = 0; i < e->n_channels; i++, p += CH_SUMMARY_ROW) {
		snap_put64(p, e->batches[i]);
		snap_put64(p + 8, e->records[i]);
		snap_put64(p + 16, e->bytes[i]);
	}
	e->out.blk_count = e->n_channels; /* rows, not records */
	if ((rc = __sl_snap_out_finish(&e->out, summary_off, info)) < 0)
		return rc;
	if (info) {
		info->records = e->total_batches;
		info->deletions = 0;
	}
	return 0;
}

/* ================================================================ loader */

void sl_snap_chan_info_clear(struct sl_snap_chan_info *info)
{
	if (info == NULL)
		return;
	if (info->channels) {
		for (uint32_t i = 0; i < info->n_channels; i++)
			free((char *)info->channels[i].peer_uid);
	}
	free(info->channels);
	free(info->batches);
	free(info->records);
	free(info->bytes);
	info->channels = NULL;
	info->batches = info->records = info->bytes = NULL;
	info->n_channels = 0;
}

static int ch_parse_header(struct __sl_snap_in *in, struct sl_snap_chan_info *info)
{
	const uint8_t *b, *p, *end;
	size_t blen;
	uint32_t uid_len, n;
	int rc;

	if ((rc = __sl_snap_in_header(in, SNAP_MAGIC_CHAN, "channel-state", &b,
				      &blen)) < 0)
		return rc;
	if (blen < CH_HDR_FIXED)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "header too short");
	end = b + blen;
	info->checkpoint_id = snap_get64(b);
	info->subtask = snap_get32(b + 8);
	n = snap_get32(b + 12);
	uid_len = b[16];
	for (int i = 17; i < (int)CH_HDR_FIXED; i++)
		if (b[i] != 0)
			return __sl_snap_errf(in->err, in->name, -EBADMSG,
					      "reserved header byte %d is not 0", i);
	if (info->checkpoint_id == 0 || n == 0 || n > CH_MAX_CHANNELS ||
	    uid_len == 0 || uid_len > blen - CH_HDR_FIXED ||
	    memchr(b + CH_HDR_FIXED, 0, uid_len) != NULL)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "header values out of range");
	memcpy(info->uid, b + CH_HDR_FIXED, uid_len);
	info->uid[uid_len] = '\0';
	/* n <= 4096: these allocations are bounded */
	info->channels = calloc(n, sizeof(*info->channels));
	info->batches = calloc(n, sizeof(uint64_t));
	info->records = calloc(n, sizeof(uint64_t));
	info->bytes = calloc(n, sizeof(uint64_t));
	if (info->channels == NULL || info->batches == NULL ||
	    info->records == NULL || info->bytes == NULL)
		return __sl_snap_errf(in->err, in->name, -ENOMEM, "out of memory");
	info->n_channels = n;
	p = b + CH_HDR_FIXED + uid_len;
	for (uint32_t i = 0; i < n; i++) {
		struct sl_snap_chan_id *ch = &info->channels[i];
		uint32_t plen;
		char *s;

		if ((size_t)(end - p) < CH_DESC_FIXED)
			return __sl_snap_errf(in->err, in->name, -EBADMSG,
					      "channel table truncated at channel %u", i);
		plen = p[1];
		if (p[0] > SL_SNAP_CHAN_OUT || plen == 0 ||
		    snap_get16(p + 2) != 0 ||
		    (size_t)(end - p) - CH_DESC_FIXED < plen ||
		    memchr(p + CH_DESC_FIXED, 0, plen) != NULL)
			return __sl_snap_errf(in->err, in->name, -EBADMSG,
					      "channel %u descriptor malformed", i);
		s = malloc(plen + 1);
		if (s == NULL)
			return __sl_snap_errf(in->err, in->name, -ENOMEM,
					      "out of memory");
		memcpy(s, p + CH_DESC_FIXED, plen);
		s[plen] = '\0';
		ch->peer_uid = s;
		ch->direction = p[0];
		ch->index = snap_get32(p + 4);
		ch->peer_subtask = snap_get32(p + 8);
		for (uint32_t j = 0; j < i; j++)
			if (info->channels[j].direction == ch->direction &&
			    info->channels[j].index == ch->index)
				return __sl_snap_errf(in->err, in->name, -EBADMSG,
						      "channel %u duplicates channel %u",
						      i, j);
		p += CH_DESC_FIXED + plen;
	}
	if (p != end)
		return __sl_snap_errf(in->err, in->name, -EBADMSG,
				      "%zu stray bytes after the channel table",
				      (size_t)(end - p));
	return 0;
}

int sl_snap_chan_load(const struct sl_snap_src *src, sl_snap_chan_fn fn,
		      void *arg, struct sl_snap_chan_info *info_out,
		      struct sl_snap_err *err)
{
	struct sl_snap_chan_info local, *info = info_out ? info_out : &local;
	struct __sl_snap_in in;
	struct __sl_snap_trailer t;
	struct __sl_snap_block b;
	uint64_t tot_b, tot_r, tot_y, sb = 0, sr = 0, sy = 0, off;
	uint64_t *cb = NULL, *cr = NULL, *cy = NULL;
	uint32_t batch_blocks;
	const uint8_t *p;
	int rc;

	memset(info, 0, sizeof(*info));
	if ((rc = __sl_snap_in_init(&in, src, err)) < 0)
		return rc;
	if ((rc = ch_parse_header(&in, info)) < 0 ||
	    (rc = __sl_snap_in_trailer(&in, &t)) < 0 ||
	    (rc = __sl_snap_in_block(&in, t.summary_off, t.end,
				     SNAP_BLK_CHAN_SUMMARY,
				     (uint32_t)(t.blocks - 1), &b)) < 0)
		goto out;
	if (b.next != t.end || b.count != info->n_channels ||
	    b.len != CH_SUMMARY_FIXED + (uint64_t)b.count * CH_SUMMARY_ROW) {
		rc = __sl_snap_errf(err, in.name, -EBADMSG, "summary block malformed");
		goto out;
	}
	p = b.payload;
	tot_b = snap_get64(p);
	tot_r = snap_get64(p + 8);
	tot_y = snap_get64(p + 16);
	batch_blocks = snap_get32(p + 24);
	if (snap_get32(p + 28) != info->n_channels ||
	    (uint64_t)batch_blocks + 1 != t.blocks) {
		rc = __sl_snap_errf(err, in.name, -EBADMSG,
				    "summary fields inconsistent");
		goto out;
	}
	p += CH_SUMMARY_FIXED;
	for (uint32_t i = 0; i < info->n_channels; i++, p += CH_SUMMARY_ROW) {
		info->batches[i] = snap_get64(p);
		info->records[i] = snap_get64(p + 8);
		info->bytes[i] = snap_get64(p + 16);
		/* wrapping sums are fine: they only have to match */
		sb += info->batches[i];
		sr += info->records[i];
		sy += info->bytes[i];
	}
	if (sb != tot_b || sr != tot_r || sy != tot_y) {
		rc = __sl_snap_errf(err, in.name, -EBADMSG,
				    "summary totals disagree with its rows");
		goto out;
	}

	cb = calloc(info->n_channels, sizeof(uint64_t));
	cr = calloc(info->n_channels, sizeof(uint64_t));
	cy = calloc(info->n_channels, sizeof(uint64_t));
	if (cb == NULL || cr == NULL || cy == NULL) {
		rc = __sl_snap_errf(err, in.name, -ENOMEM, "out of memory");
		goto out;
	}
	off = in.hdr_len;
	for (uint32_t i = 0; i < batch_blocks; i++) {
		const uint8_t *end;

		if ((rc = __sl_snap_in_block(&in, off, t.summary_off,
					     SNAP_BLK_CHAN_BATCHES, i, &b)) < 0)
			goto out;
		p = b.payload;
		end = p + b.len;
		for (uint32_t r = 0; r < b.count; r++) {
			struct sl_snap_chan_batch cbat;
			uint32_t ch;
			uint64_t bytes;

			if ((size_t)(end - p) < CH_BATCH_HDR) {
				rc = __sl_snap_errf(err, in.name, -EBADMSG,
						    "block %u: batch %u truncated", i, r);
				goto out;
			}
			ch = snap_get32(p);
			cbat.kind = snap_get16(p + 4);
			cbat.record_size = snap_get16(p + 6);
			cbat.record_count = snap_get32(p + 8);
			cbat.seq = snap_get64(p + 16);
			cbat.watermark = (int64_t)snap_get64(p + 24);
			bytes = (uint64_t)cbat.record_size * cbat.record_count;
			if (ch >= info->n_channels || cbat.kind > 1 ||
			    snap_get32(p + 12) != 0 ||
			    (cbat.record_count && cbat.record_size == 0) ||
			    bytes > (uint64_t)(end - p) - CH_BATCH_HDR) {
				rc = __sl_snap_errf(err, in.name, -EBADMSG,
						    "block %u: batch %u malformed", i, r);
				goto out;
			}
			cbat.records = p + CH_BATCH_HDR;
			cb[ch]++;
			cr[ch] += cbat.record_count;
			cy[ch] += bytes;
			if (fn && (rc = fn(arg, ch, &info->channels[ch], &cbat)) != 0)
				goto out;
			p += CH_BATCH_HDR + bytes;
		}
		if (p != end) {
			rc = __sl_snap_errf(err, in.name, -EBADMSG,
					    "block %u: %zu stray bytes after its batches",
					    i, (size_t)(end - p));
			goto out;
		}
		off = b.next;
	}
	if (off != t.summary_off) {
		rc = __sl_snap_errf(err, in.name, -EBADMSG,
				    "batch blocks end at %llu, summary starts at %llu",
				    (unsigned long long)off,
				    (unsigned long long)t.summary_off);
		goto out;
	}
	for (uint32_t i = 0; i < info->n_channels; i++)
		if (cb[i] != info->batches[i] || cr[i] != info->records[i] ||
		    cy[i] != info->bytes[i]) {
			rc = __sl_snap_errf(err, in.name, -EBADMSG,
					    "summary disagrees with the blocks for channel %u",
					    i);
			goto out;
		}
out:
	free(cb);
	free(cr);
	free(cy);
	__sl_snap_in_fini(&in);
	if (rc != 0 || info == &local)
		sl_snap_chan_info_clear(info);
	return rc;
}
