/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Restoring a job, subtask side (docs/restore.md):
 *  - state: after open(), on the subtask's lcore, the operator's restore()
 *    loads its operator-state blob (sl_restore_blob) and its keyed state
 *    (sl_restore_keyed: the key groups it owns, from every old subtask's
 *    keyed files, each subtask's chain applied in metadata order - a full
 *    file, then deltas with their deletions first); afterwards the runtime
 *    checks that nothing the checkpoint holds for the subtask was ignored;
 *  - in flight: before any lcore starts, the batches an unaligned
 *    checkpoint persisted are put back into the channels
 *    (__sl_task_restore_inflight, called on the main lcore by
 *    dataplane/job_restore.c): a subtask's input channel state into its
 *    input channels, its staged output returned to be sent behind every
 *    channel's input state.  The subtask then reads them, in order, before
 *    anything new.
 * Files are read through __sl_restore_src_open(), the one seam where a
 * parallel reader plugs in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_pvt.h"
#include "sluice/keyed_state.h"
#include "sluice/snapshot.h"

#define RESTORE_BURST 64

struct sl_restore_ctx {
	struct task *t;
	struct sl_job_restore *r;
	const struct sl_snap_operator_meta *op;
	bool blob_taken;  /* the operator asked for its blob(s) */
	bool keyed_taken; /* ... and for its keyed state */
};

uint64_t sl_restore_id(const struct sl_restore_ctx *rc)
{
	return rc->r->id;
}

uint32_t sl_restore_parallelism(const struct sl_restore_ctx *rc)
{
	return rc->op->parallelism;
}

int sl_restore_blob_of(struct sl_restore_ctx *rc, uint32_t subtask,
		       const void **data, size_t *len)
{
	const struct sl_snap_subtask_meta *st;

	rc->blob_taken = true;
	if (subtask >= rc->op->parallelism)
		return -EINVAL;
	/* relaxed: read by the main lcore after every subtask restored */
	__atomic_store_n(&rc->r->blob_taken[rc->r->blob_base[rc->op -
							      rc->r->meta->operators] +
					    subtask],
			 1, __ATOMIC_RELAXED);
	st = &rc->op->subtasks[subtask];
	if (st->n_blobs == 0)
		return -ENOENT;
	*data = st->blobs[0].data;
	*len = st->blobs[0].len;
	return 0;
}

static bool any_blob(const struct sl_snap_operator_meta *op)
{
	for (uint32_t s = 0; s < op->parallelism; s++)
		if (op->subtasks[s].n_blobs > 0)
			return true;
	return false;
}

int sl_restore_blob(struct sl_restore_ctx *rc, const void **data, size_t *len)
{
	struct task *t = rc->t;

	rc->blob_taken = true;
	if (rc->op->parallelism == t->pub.info.parallelism)
		return sl_restore_blob_of(rc, t->pub.info.index, data, len);
	if (!any_blob(rc->op))
		return -ENOENT;
	sl_task_error(&t->pub,
		      "restoring from %s: operator '%s' ran with parallelism %u there and with %u now, and a %s cannot redistribute its operator state (e.g. source offsets) over another number of subtasks; run it with parallelism %u",
		      rc->r->dir, t->node->uid, rc->op->parallelism,
		      t->pub.info.parallelism, t->ops->type, rc->op->parallelism);
	return -EXDEV;
}

/* --------------------------------------------------------- keyed state */

struct keyed_load {
	struct task *t;
	struct sl_job_restore *r;
	struct sl_kstate *st;
	uint16_t key_size;
	uint16_t value_size;
	uint8_t *keys;	  /* RESTORE_BURST keys, contiguous */
	uint64_t counted; /* bytes of the file accounted for so far */
	bool bulk;	  /* a full file into empty key groups: insert */
	const struct sl_snap_file_ref *ref; /* the file being loaded */
	bool in_memory;	  /* a counted user of the files' bytes in memory */
	int err;	  /* the state refused an entry */
	uint16_t err_kg;  /* ... of this key group */
};

static void count_read(struct keyed_load *l, uint64_t bytes)
{
	l->counted += bytes;
	/* relaxed: a progress figure, read by the main lcore */
	__atomic_fetch_add(&l->r->read_bytes, bytes, __ATOMIC_RELAXED);
}

static int on_deletions(void *arg, const struct sl_snap_kv *kv, unsigned n)
{
	struct keyed_load *l = arg;

	for (unsigned i = 0; i < n; i++) {
		int rc = sl_kstate_delete(l->st, kv[i].kg, kv[i].hash, kv[i].key);

		/* a delta may delete what an older file never held here */
		if (rc < 0 && rc != -ENOENT) {
			l->err = rc;
			return 1;
		}
	}
	count_read(l, (uint64_t)n * (10 + l->key_size));
	return 0;
}

/* Entries of a full file into key groups that were empty: every key is
 * new (a full file lists each key once), so they are appended with their
 * values, and indexed once the file is loaded (load_keyed_file). */
static int append_entries(struct keyed_load *l, const struct sl_snap_kv *kv, unsigned n)
{
	uint16_t kgs[RESTORE_BURST];
	uint64_t hashes[RESTORE_BURST];
	const void *keys[RESTORE_BURST], *vals[RESTORE_BURST];

	for (unsigned base = 0; base < n; base += RESTORE_BURST) {
		unsigned m = RTE_MIN(n - base, (unsigned)RESTORE_BURST), done;

		for (unsigned i = 0; i < m; i++) {
			kgs[i] = kv[base + i].kg;
			hashes[i] = kv[base + i].hash;
			keys[i] = kv[base + i].key;
			vals[i] = kv[base + i].value;
		}
		done = sl_kstate_append_burst(l->st, m, kgs, hashes, keys,
					      l->value_size ? vals : NULL);
		if (done < m) {
			l->err = errno ? -errno : -ENOMEM;
			l->err_kg = kgs[done];
			return 1;
		}
	}
	count_read(l, (uint64_t)n * (10u + l->key_size + l->value_size));
	return 0;
}

static int on_entries(void *arg, const struct sl_snap_kv *kv, unsigned n)
{
	struct keyed_load *l = arg;
	uint16_t kgs[RESTORE_BURST];
	uint64_t hashes[RESTORE_BURST];
	void *vals[RESTORE_BURST];

	if (l->bulk)
		return append_entries(l, kv, n);
	for (unsigned base = 0; base < n; base += RESTORE_BURST) {
		unsigned m = RTE_MIN(n - base, (unsigned)RESTORE_BURST);

		for (unsigned i = 0; i < m; i++) {
			kgs[i] = kv[base + i].kg;
			hashes[i] = kv[base + i].hash;
			memcpy(l->keys + (size_t)i * l->key_size, kv[base + i].key,
			       l->key_size);
		}
		if (sl_kstate_upsert_burst(l->st, m, kgs, hashes, l->keys,
					   l->key_size, vals, NULL) < m) {
			l->err = errno ? -errno : -ENOMEM;
			return 1;
		}
		if (l->value_size > 0)
			for (unsigned i = 0; i < m; i++)
				memcpy(vals[i], kv[base + i].value, l->value_size);
	}
	count_read(l, (uint64_t)n * (10u + l->key_size + l->value_size));
	return 0;
}

static int keyed_error(struct sl_restore_ctx *rc, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int keyed_error(struct sl_restore_ctx *rc, int err, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sl_task_error(&rc->t->pub, "restoring keyed state from %s: %s", rc->r->dir,
		      msg);
	return err;
}

/*
 * A full file whose key groups (those we own) are all still empty here is
 * loaded in bulk: each of them is sized for its entry count from the
 * file's summary, the entries are appended as new keys, and then indexed
 * key group by key group in index order.  Anything
 * else (a delta, or key groups holding entries already) goes through the
 * upsert, as a delta must.
 */
static int prepare_bulk(struct sl_restore_ctx *rc, const struct sl_snap_file_ref *ref,
			const struct sl_snap_kstate_info *hdr, struct keyed_load *l)
{
	const struct sl_task_info *info = &rc->t->pub.info;
	const uint32_t first = RTE_MAX(info->kg_first, hdr->kg_first);
	const uint32_t end = RTE_MIN(info->kg_first + info->kg_count,
				     hdr->kg_first + hdr->kg_count);

	l->bulk = hdr->kind == SL_SNAP_KSTATE_FULL;
	/* the counts size allocations before the blocks are read (and the
	 * blocks are checked against them only after): bound them by what
	 * the file can hold */
	if (l->bulk && hdr->entries > ref->size / (10u + hdr->key_size + hdr->value_size))
		return keyed_error(rc, -EBADMSG,
				   "%s: its summary counts %" PRIu64 " entries, more than its %" PRIu64 " bytes can hold",
				   ref->path, hdr->entries, ref->size);
	for (uint32_t kg = first; kg < end && l->bulk; kg++)
		l->bulk = sl_kstate_kg_count(l->st, (uint16_t)kg) == 0;
	if (!l->bulk)
		return 0;
	for (uint32_t kg = first; kg < end; kg++) {
		int e = sl_kstate_reserve(l->st, (uint16_t)kg,
					  hdr->kg_entries[kg - hdr->kg_first]);

		if (e < 0)
			return keyed_error(rc, e, "%s: key group %u: %" PRIu64 " entries: %s",
					   ref->path, kg, hdr->kg_entries[kg - hdr->kg_first],
					   strerror(-e));
	}
	return 0;
}

static void on_consumed(void *arg, uint64_t offset)
{
	struct keyed_load *l = arg;

	__sl_restore_file_consumed(l->r, l->ref, offset);
}

/* Apply one keyed-state file of old subtask `old` to the state. */
static int load_keyed_file(struct sl_restore_ctx *rc, const struct sl_snap_file_ref *ref,
			   struct keyed_load *l)
{
	const struct sl_task_info *info = &rc->t->pub.info;
	struct sl_snap_kstate_info hdr;
	struct sl_snap_err err = { "" };
	struct sl_snap_src src;
	int rc_;

	memset(&hdr, 0, sizeof(hdr));
	l->ref = ref;
	rc_ = l->in_memory ? __sl_restore_src_open(rc->r, ref, &src, &err)
			 : __sl_restore_src_open_file(rc->r, ref, &src, &err);
	if (rc_ < 0)
		return keyed_error(rc, rc_, "%s: %s", ref->path,
				   err.msg[0] ? err.msg : strerror(-rc_));
	rc_ = sl_snap_kstate_read_info(&src, &hdr, &err);
	if (rc_ < 0) {
		keyed_error(rc, rc_, "%s", err.msg);
		goto out;
	}
	if (hdr.key_size != l->key_size || hdr.value_size != l->value_size) {
		rc_ = keyed_error(rc, -EINVAL,
				  "%s holds keys of %u and values of %u bytes, but operator '%s' now uses %u and %u: its key or its aggregates changed; give it a new uid to start it empty",
				  ref->path, hdr.key_size, hdr.value_size,
				  rc->t->node->uid, l->key_size, l->value_size);
		goto out;
	}
	if (hdr.max_parallelism != info->max_parallelism ||
	    strcmp(hdr.uid, rc->op->uid) != 0) {
		rc_ = keyed_error(rc, -EBADMSG,
				  "%s was written by operator '%s' with %u key groups, not by '%s' with %u: the metadata and the file disagree",
				  ref->path, hdr.uid, hdr.max_parallelism,
				  rc->op->uid, info->max_parallelism);
		goto out;
	}
	if ((rc_ = prepare_bulk(rc, ref, &hdr, l)) < 0)
		goto out;
	l->counted = 0;
	struct sl_snap_kstate_visitor v = {
		.kg_first = info->kg_first,
		.kg_count = info->kg_count,
		.on_deletions = on_deletions,
		.on_entries = on_entries,
		.arg = l,
		.on_consumed = l->in_memory ? on_consumed : NULL,
	};
	rc_ = sl_snap_kstate_load(&src, &v, NULL, &err);
	if (rc_ == 0 && l->bulk && (rc_ = sl_kstate_index_appended(l->st, &l->err_kg)) < 0) {
		l->err = rc_;
		rc_ = 1;
	}
	if (rc_ == 1 && l->err == -EEXIST) {
		rc_ = keyed_error(rc, -EBADMSG,
				  "%s: key group %u lists a key twice, which a full keyed-state file never does: the file was written wrongly; restore an older checkpoint",
				  ref->path, l->err_kg);
		goto out;
	}
	if (rc_ == 1) {
		rc_ = keyed_error(rc, l->err, "%s: keyed state: %s", ref->path,
				  strerror(-l->err));
		goto out;
	}
	if (rc_ < 0) {
		keyed_error(rc, rc_, "%s", err.msg);
		goto out;
	}
	/* the rest of the file (framing, other key groups) counts as read */
	if (ref->size > l->counted)
		count_read(l, ref->size - l->counted);
out:
	sl_snap_kstate_info_clear(&hdr);
	__sl_restore_src_close(&src);
	if (l->in_memory)
		__sl_restore_file_done(rc->r, ref);
	return rc_;
}

static void no_emit(void *arg, uint16_t kg, uint64_t hash, const void *key,
		    const void *value)
{
	(void)arg, (void)kg, (void)hash, (void)key, (void)value;
}

/*
 * The restored chain of this subtask as the base of its next delta
 * (job_restore.c, restored_as_base): with the parallelism unchanged, the
 * state holds exactly what the subtask's own files hold.  Every loaded
 * entry carries the state's current epoch E; advancing the epoch past it
 * (a snapshot begun and dropped at once) stamps every later change after
 * E, and the deletion log starts now, so a delta since E is exact.
 */
static void restored_base(struct sl_restore_ctx *rc, struct sl_kstate *st)
{
	struct task *t = rc->t;
	const struct sl_snap_subtask_meta *sm = &rc->op->subtasks[t->pub.info.index];
	struct keyed_base b = { .id = rc->r->id, .written = true };

	for (uint32_t f = 0; f < sm->n_files; f++) {
		if (sm->files[f].type != SL_SNAP_FILE_KEYED)
			continue;
		if (strncmp(sm->files[f].path, SL_SNAP_SHARED_DIR "/",
			    sizeof(SL_SNAP_SHARED_DIR)) != 0)
			return; /* not referenceable by a later checkpoint */
		b.chain++;
		b.chain_bytes += sm->files[f].size;
	}
	if (b.chain == 0 || sl_kstate_snapshot_begin(st, no_emit, NULL, &b.epoch) < 0)
		return;
	sl_kstate_snapshot_abort(st);
	sl_kstate_track_deletes(st, true);
	t->kb_state = st;
	t->kb_trimmed = 0;
	t->kb[0] = b;
	t->n_kb = 1;
}

int sl_restore_keyed(struct sl_restore_ctx *rc, struct sl_kstate *st,
		     uint16_t key_size, uint16_t value_size)
{
	const struct sl_task_info *info = &rc->t->pub.info;
	const uint32_t first = info->kg_first, end = first + info->kg_count;
	struct keyed_load l = {
		.t = rc->t, .r = rc->r, .st = st,
		.key_size = key_size, .value_size = value_size,
	};
	int ret = 0;

	/* the first call is the one counted as the files' user; should an
	 * operator ask again, it reads the files (their bytes in memory may
	 * be gone) */
	l.in_memory = !rc->keyed_taken;
	rc->keyed_taken = true;
	if (key_size == 0)
		return keyed_error(rc, -EINVAL, "key size 0");
	l.keys = malloc((size_t)RESTORE_BURST * key_size);
	if (l.keys == NULL)
		return keyed_error(rc, -ENOMEM, "out of memory");
	/* every old subtask whose key groups overlap ours; within one, its
	 * chain in metadata order (full, then deltas oldest first) */
	for (uint32_t s = 0; s < rc->op->parallelism && ret == 0; s++) {
		const struct sl_snap_subtask_meta *sm = &rc->op->subtasks[s];

		for (uint32_t f = 0; f < sm->n_files && ret == 0; f++) {
			const struct sl_snap_file_ref *ref = &sm->files[f];

			if (ref->type != SL_SNAP_FILE_KEYED ||
			    ref->kg_first >= end || ref->kg_first + ref->kg_count <= first)
				continue;
			ret = load_keyed_file(rc, ref, &l);
		}
	}
	free(l.keys);
	if (ret == 0 && l.in_memory && rc->r->as_base &&
	    rc->op->parallelism == info->parallelism)
		restored_base(rc, st);
	return ret;
}

/* ------------------------------------------------- restoring a subtask */

/* What the checkpoint holds for this subtask, that restore() must take. */
static void state_of(const struct task *t, const struct sl_snap_operator_meta *op,
		     bool *blobs, bool *keyed)
{
	const uint32_t first = t->pub.info.kg_first;
	const uint32_t end = first + t->pub.info.kg_count;

	/* after a rescale, the main lcore checks the blobs operator-wide */
	*blobs = op->parallelism == t->pub.info.parallelism &&
		 op->subtasks[t->pub.info.index].n_blobs > 0;
	*keyed = false;
	for (uint32_t s = 0; s < op->parallelism; s++)
		for (uint32_t f = 0; f < op->subtasks[s].n_files; f++) {
			const struct sl_snap_file_ref *ref = &op->subtasks[s].files[f];
			if (ref->type == SL_SNAP_FILE_KEYED && ref->kg_first < end &&
			    ref->kg_first + ref->kg_count > first)
				*keyed = true;
		}
}

int __sl_task_restore(struct task *t)
{
	struct sl_job *job = t->job;
	const struct sl_snap_operator_meta *op = __sl_restore_op(job, t->node);
	struct sl_restore_ctx rc = { .t = t, .r = job->restore, .op = op };
	bool blobs, keyed;
	int ret;

	if (op == NULL)
		return 0; /* new in the job: starts empty */
	state_of(t, op, &blobs, &keyed);
	if (t->ops->restore == NULL) {
		if (!blobs && !keyed)
			return 0;
		sl_task_error(&t->pub,
			      "checkpoint %" PRIu64 " (%s) holds state of this subtask, but a %s cannot restore state; its state would be lost: give the operator a new uid to start it empty",
			      rc.r->id, rc.r->dir, t->ops->type);
		return -ENOTSUP;
	}
	ret = t->ops->restore(t->op, &t->pub, &rc);
	if (ret < 0)
		return ret;
	if ((blobs && !rc.blob_taken) || (keyed && !rc.keyed_taken)) {
		sl_task_error(&t->pub,
			      "restore() left the %s state that checkpoint %" PRIu64 " holds for it unread; it would be lost (an operator bug)",
			      blobs && !rc.blob_taken ? "operator" : "keyed", rc.r->id);
		return -EPROTO;
	}
	return 0;
}

/* ------------------------------------------------------------ in flight */

struct inflight_load {
	struct task *t;
	struct sl_job_restore *r;
	struct restore_resend_list *later;
	int64_t *in_wm;	 /* per input channel: watermark of the last batch */
	int64_t *out_wm; /* per output channel */
	int err;
	char msg[300];
};

static int inflight_error(struct inflight_load *l, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int inflight_error(struct inflight_load *l, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->msg, sizeof(l->msg), fmt, ap);
	va_end(ap);
	l->err = err;
	return 1;
}

static int later_add(struct restore_resend_list *later, struct task *from,
		     struct sl_channel *ch, struct sl_batch *b)
{
	if (later->n == later->cap) {
		size_t cap = later->cap ? 2 * later->cap : 64;
		struct restore_resend *v = realloc(later->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		later->v = v;
		later->cap = cap;
	}
	later->v[later->n++] = (struct restore_resend){ from, ch, b };
	return 0;
}

static int on_batch(void *arg, uint32_t channel, const struct sl_snap_chan_id *id,
		    const struct sl_snap_chan_batch *pb)
{
	struct inflight_load *l = arg;
	struct task *t = l->t;
	struct sl_job *job = t->job;
	const bool in = id->direction == SL_SNAP_CHAN_IN;
	struct sl_channel *ch;
	struct task *peer, *sender;
	int64_t *prev_wm;
	uint32_t left = pb->record_count;
	const uint8_t *rec = pb->records;

	(void)channel;
	if (in ? id->index >= t->n_in : id->index >= t->n_out_ch)
		return inflight_error(l, -EINVAL, "%s channel %u does not exist in the job",
				      in ? "input" : "output", id->index);
	ch = in ? t->in[id->index].ch : t->out_ch[id->index];
	peer = &job->tasks[in ? ch->src_task : ch->dst_task];
	if (strcmp(peer->node->uid, id->peer_uid) != 0 ||
	    peer->pub.info.index != id->peer_subtask)
		return inflight_error(l, -EINVAL,
				      "%s channel %u led %s '%s' subtask %u, in the job it leads %s '%s' subtask %u: the job's edges changed",
				      in ? "input" : "output", id->index,
				      in ? "from" : "to", id->peer_uid, id->peer_subtask,
				      in ? "from" : "to", peer->node->uid,
				      peer->pub.info.index);
	sender = in ? peer : t;
	if (pb->kind != SL_BATCH_DATA && pb->kind != SL_BATCH_WATERMARK)
		return inflight_error(l, -EBADMSG, "batch of kind %u", pb->kind);
	if (pb->record_count > 0 && pb->record_size != sender->pub.out_record_size)
		return inflight_error(l, -EINVAL,
				      "records of %u bytes on the channel from '%s', which now emits %u-byte records: its output schema changed",
				      pb->record_size, sender->node->uid,
				      sender->pub.out_record_size);
	prev_wm = in ? &l->in_wm[id->index] : &l->out_wm[id->index];
	/* a batch larger than this run's batches goes out in pieces; the
	 * watermark, which holds after the records, goes with the last */
	do {
		struct sl_batch *b = sl_batch_get(sender->pool, sender->pub.out_record_size);
		uint32_t n;

		if (b == NULL)
			return inflight_error(l, -ENOBUFS,
					      "the batch pool of '%s' subtask %u is exhausted; raise ring-size or batch-size",
					      sender->node->uid, sender->pub.info.index);
		n = RTE_MIN(left, b->capacity);
		b->kind = pb->kind;
		b->count = n;
		memcpy(b->data, rec, (size_t)n * pb->record_size);
		rec += (size_t)n * pb->record_size;
		left -= n;
		b->watermark = left == 0 ? pb->watermark : *prev_wm;
		if (in) {
			if (!sl_channel_send(ch, b))
				sender->blocked = true;
		} else if (later_add(l->later, t, ch, b) < 0) {
			sl_batch_put(b);
			return inflight_error(l, -ENOMEM, "out of memory");
		}
	} while (left > 0);
	*prev_wm = pb->watermark;
	return 0;
}

int __sl_task_restore_inflight(struct task *t, struct restore_resend_list *later)
{
	struct sl_job *job = t->job;
	struct sl_job_restore *r = job->restore;
	const struct sl_snap_operator_meta *op = __sl_restore_op(job, t->node);
	const struct sl_snap_subtask_meta *sm;
	struct inflight_load l = { .t = t, .r = r, .later = later };
	int rc = 0;

	/* in-flight data exists only without rescaling (checked when the
	 * checkpoint was chosen) */
	if (op == NULL || op->parallelism != t->pub.info.parallelism)
		return 0;
	sm = &op->subtasks[t->pub.info.index];
	l.in_wm = malloc((t->n_in + 1) * sizeof(int64_t));
	l.out_wm = malloc((t->n_out_ch + 1) * sizeof(int64_t));
	if (l.in_wm == NULL || l.out_wm == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < t->n_in; i++)
		l.in_wm[i] = SL_WATERMARK_MIN;
	for (unsigned i = 0; i < t->n_out_ch; i++)
		l.out_wm[i] = SL_WATERMARK_MIN;
	for (uint32_t f = 0; f < sm->n_files && rc == 0; f++) {
		const struct sl_snap_file_ref *ref = &sm->files[f];
		struct sl_snap_err err = { "" };
		struct sl_snap_src src;

		if (ref->type != SL_SNAP_FILE_CHANNEL)
			continue;
		rc = __sl_restore_src_open(r, ref, &src, &err);
		if (rc == 0) {
			rc = sl_snap_chan_load(&src, on_batch, &l, NULL, &err);
			__sl_restore_src_close(&src);
		}
		if (rc == 1)
			__sl_job_fail(job, l.err,
				      "restoring the in-flight data of operator '%s' subtask %u from %s/%s: %s",
				      t->node->uid, t->pub.info.index, r->dir,
				      ref->path, l.msg);
		else if (rc < 0)
			__sl_job_fail(job, rc, "restoring from %s: %s", r->dir,
				      err.msg[0] ? err.msg : strerror(-rc));
		if (rc == 1)
			rc = l.err;
		if (rc == 0)
			__atomic_fetch_add(&r->read_bytes, ref->size, __ATOMIC_RELAXED);
	}
out:
	free(l.in_wm);
	free(l.out_wm);
	return rc;
}
