/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A subtask's part of a checkpoint (docs/checkpointing.md):
 *  - snapshot: the operator captures its state synchronously (blobs, and
 *    an O(1) keyed-state snapshot), then the barrier is forwarded on every
 *    output channel: announcement on the priority lane first, then the
 *    marker in the data lane - behind all output when aligned, ahead of
 *    staged output when unaligned (the staged batches are then persisted
 *    as output channel state);
 *  - in flight: data batches the barrier tracker assigns to the checkpoint
 *    are persisted as input channel state while being processed as usual;
 *  - write-out: keyed state is stepped between batches into a keyed-state
 *    file (with state.backend.incremental: a delta on the base checkpoint
 *    the coordinator planned, in shared/; dataplane/checkpoint_incremental.c);
 *    every file goes through the io writer, then fdatasync + close;
 *  - acknowledgement: once the inputs are done and every io request
 *    completed, the subtask acks (or declines, e.g. on ENOSPC) to the
 *    coordinator with the files it wrote.
 * All of it runs on the subtask's lcore and never waits for the disk.
 */
/* rte_ring_dequeue_zc_*: peeking into a ring without consuming */
#define ALLOW_EXPERIMENTAL_API 1
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_peek_zc.h>

#include "job_pvt.h"
#include "sluice/crash_point.h"
#include "sluice/io.h"
#include "sluice/io_file.h"
#include "sluice/keyed_state.h"
#include "sluice/snapshot.h"

/* entries written per poll: bounds the hot-path pause of the write-out */
#define KEYED_STEP_BUDGET 2048
/* files an operator may hand to sl_ckpt_sync_file() per checkpoint */
#define SYNCED_MAX 16
#define SYNCED_COOKIE 0x80u
/* cookie tag of sl_task_rename() requests (the rest is a sequence) */
#define RENAME_COOKIE 0xffu
/* declines kept while the ack ring is full (see post_decline()) */
#define DECLINES_MAX SL_COORD_HISTORY
/* writes (encoder buffers of ~1 MiB, block_format.c) of one checkpoint in
 * the writer at once: enough to keep the disk busy (docs/io.md: flat from
 * 1 to 32 in flight), and a bound on the memory they hold.  At the bound
 * the keyed-state stepper waits; channel state is not held back. */
#define WRITES_IN_FLIGHT_MAX 16

enum { FILE_KEYED, FILE_CHAN, N_FILES };

struct ckpt_file {
	struct sl_io_file *io;
	char name[SL_SNAP_NAME_MAX];
	struct sl_snap_file_info info;
	uint64_t prealloc; /* bytes to reserve at OPEN (0: none) */
};

struct sl_ckpt_ctx {
	struct task *t;
	uint64_t id;
	bool unaligned;
	bool switched;
	bool aborted;
	uint64_t snap_start_tsc;
	uint64_t sync_ns;

	struct sl_kstate *kst;
	struct sl_snap_kstate_enc *kenc;
	bool keyed_active;
	bool keyed_shared;	   /* incremental: the keyed file is in shared/ */
	uint64_t keyed_base;	   /* delta on this checkpoint; 0: full */
	uint32_t keyed_inherit;	   /* files of the base's chain */
	uint64_t keyed_base_bytes; /* and their bytes */
	uint64_t keyed_memory;	   /* bytes of the state in memory */
	uint64_t blob_bytes;
	struct sl_snap_chan_enc *cenc;
	uint64_t inflight_bytes;

	struct ckpt_file file[N_FILES];
	/* operators' own files made durable by the writer
	 * (sl_ckpt_sync_file()); cookies SYNCED_COOKIE + index */
	struct sl_io_file *synced[SYNCED_MAX];
	int synced_fd[SYNCED_MAX];
	unsigned n_synced;
	bool files_closed;    /* encoders finished, CLOSE submitted */
	unsigned outstanding; /* io requests without completion */
	unsigned writes;      /* WRITEs among them */
	struct sl_io_req *pending; /* refused by a full ring, in order */
	unsigned n_pending, cap_pending;

	struct ckpt_handles *h;
	int err;
	char reason[128];
};

uint64_t sl_ckpt_id(const struct sl_ckpt_ctx *ck)
{
	return ck->id;
}

static void ck_fail(struct sl_ckpt_ctx *ck, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ck_fail(struct sl_ckpt_ctx *ck, int err, const char *fmt, ...)
{
	va_list ap;

	if (ck->err != 0)
		return;
	ck->err = err < 0 ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(ck->reason, sizeof(ck->reason), fmt, ap);
	va_end(ap);
}

int sl_ckpt_put_blob(struct sl_ckpt_ctx *ck, const void *data, size_t len)
{
	struct ckpt_handles *h = ck->h;

	if (len > SL_SNAP_BLOB_MAX)
		return -E2BIG;
	if (h->n_blobs == CKPT_BLOBS_MAX)
		return -ENOSPC;
	h->blob[h->n_blobs] = malloc(len ? len : 1);
	if (h->blob[h->n_blobs] == NULL)
		return -ENOMEM;
	memcpy(h->blob[h->n_blobs], data, len);
	h->blob_len[h->n_blobs++] = len;
	ck->blob_bytes += len;
	return 0;
}

/* ---------------------------------------------------------------- io */

static uint64_t cookie(const struct sl_ckpt_ctx *ck, unsigned file)
{
	/* the slot and the file: completions find their checkpoint */
	return ck->id << 8 | file;
}

static void resubmit_pending(struct sl_ckpt_ctx *ck)
{
	unsigned done = 0;

	while (done < ck->n_pending &&
	       sl_io_submit(ck->t->io, &ck->pending[done]) == 0)
		done++;
	if (done) {
		memmove(ck->pending, ck->pending + done,
			(ck->n_pending - done) * sizeof(ck->pending[0]));
		ck->n_pending -= done;
	}
}

/*
 * Hand a request to the writer, or keep it (in order) for the next turn
 * of the loop when the request ring is full: never wait for room, the
 * writer may be polled by this very lcore.  The keyed-state write-out
 * pauses while requests wait (progress()), so what is kept stays small:
 * at most one step's buffers, the closing requests, and channel state.
 */
static void submit(struct sl_ckpt_ctx *ck, const struct sl_io_req *req)
{
	struct sl_io_writer *w = ck->t->io;

	if (ck->n_pending == 0 && sl_io_submit(w, req) == 0) {
		ck->outstanding++;
		return;
	}
	if (ck->n_pending == ck->cap_pending) {
		unsigned cap = ck->cap_pending ? 2 * ck->cap_pending : 16;
		struct sl_io_req *p = realloc(ck->pending, cap * sizeof(*p));
		if (p == NULL) {
			/* a WRITE's buffer is released by its request, which
			 * will never run: release it here */
			if (req->op == SL_IO_OP_WRITE && req->release == SL_IO_REL_FN)
				req->release_fn(req->release_obj);
			ck_fail(ck, -ENOMEM,
				"out of memory keeping io requests while the writer's ring is full");
			return;
		}
		ck->pending = p;
		ck->cap_pending = cap;
	}
	ck->outstanding++;
	ck->pending[ck->n_pending++] = *req;
}

static int open_file(struct sl_ckpt_ctx *ck, unsigned which)
{
	struct task *t = ck->t;
	struct ckpt_file *f = &ck->file[which];
	bool shared = which == FILE_KEYED && ck->keyed_shared;
	char name[SL_SNAP_NAME_MAX - sizeof(SL_SNAP_SHARED_DIR)], path[8400];

	if (f->io != NULL)
		return 0;
	if (sl_snap_file_name(name, sizeof(name), t->node->uid,
			      t->pub.info.index, ck->id,
			      which == FILE_KEYED ? SL_SNAP_FILE_KEYED
						  : SL_SNAP_FILE_CHANNEL) < 0)
		return -ENAMETOOLONG;
	/* the name as the metadata references it, relative to chk-<n> */
	if (shared)
		snprintf(f->name, sizeof(f->name), SL_SNAP_SHARED_DIR "/%s", name);
	else
		snprintf(f->name, sizeof(f->name), "%s", name);
	if (shared)
		snprintf(path, sizeof(path), "%s/%s", t->job->cfg.checkpoint.dir,
			 f->name);
	else
		snprintf(path, sizeof(path), "%s/chk-%" PRIu64 "/%s",
			 t->job->cfg.checkpoint.dir, ck->id, f->name);
	/* O_DIRECT: the encoders hand out aligned buffers (sl_snap_sink_fn),
	 * the disk gets them without a page-cache copy, and the data is on
	 * the disk as each write completes, so the final fdatasync has only
	 * the metadata left (docs/checkpointing.md) */
	f->io = sl_io_file_create(path, SL_IO_F_DIRECT, 0644);
	if (f->io == NULL)
		return -errno;
	struct sl_io_req r = sl_io_req_open_prealloc(f->io, f->prealloc, t->io_cq,
						     cookie(ck, which));
	submit(ck, &r);
	return 0;
}

static void release_buf(void *buf)
{
	sl_snap_buf_free(buf);
}

/* Encoder sink: a finished buffer of file `which` goes to the writer. */
static int sink(struct sl_ckpt_ctx *ck, unsigned which, uint64_t off, void *buf,
		size_t len)
{
	int rc = open_file(ck, which);

	if (rc < 0) {
		sl_snap_buf_free(buf);
		return rc;
	}
	/* the last buffer of a file is written padded to the O_DIRECT
	 * alignment (its padding is zeros); CLOSE trims the file */
	len = RTE_ALIGN_CEIL(len, (size_t)SL_SNAP_BUF_ALIGN);
	struct sl_io_req r = sl_io_req_write_fn(ck->file[which].io, off, buf,
						(uint32_t)len, release_buf, buf,
						ck->t->io_cq, cookie(ck, which));
	ck->writes++;
	submit(ck, &r);
	return 0;
}

static int keyed_sink(void *arg, uint64_t off, void *buf, size_t len)
{
	return sink(arg, FILE_KEYED, off, buf, len);
}

static int chan_sink(void *arg, uint64_t off, void *buf, size_t len)
{
	return sink(arg, FILE_CHAN, off, buf, len);
}

int sl_ckpt_sync_file(struct sl_ckpt_ctx *ck, int fd, const char *path)
{
	struct task *t = ck->t;
	struct sl_io_file *f;
	unsigned k = ck->n_synced;
	uint64_t c = ck->id << 8 | (SYNCED_COOKIE + k);

	if (k == SYNCED_MAX || (f = sl_io_file_adopt(fd, path)) == NULL) {
		/* The writer cannot take it. Syncing here would block the
		 * lcore; declining alone would let the file be committed
		 * later without its data being durable: the job fails, and
		 * its restart from the last complete checkpoint discards it. */
		int rc = k == SYNCED_MAX ? -ENOSPC : -errno;

		close(fd);
		ck_fail(ck, rc, "cannot make %s durable: %s", path, strerror(-rc));
		__sl_job_fail(t->job, rc,
			      "operator '%s' (%s) subtask %u: cannot hand %s to the io writer (%s; at most %u files per checkpoint); its output since the last complete checkpoint is discarded",
			      t->node->uid, t->ops->type, t->pub.info.index, path,
			      strerror(-rc), SYNCED_MAX);
		return rc;
	}
	ck->synced_fd[k] = fd;
	ck->synced[ck->n_synced++] = f;
	/* in order on the one file: data, descriptor, directory entry */
	struct sl_io_req r[3] = {
		sl_io_req_fsync(f, t->io_cq, c),
		sl_io_req_close(f, t->io_cq, c),
		sl_io_req_sync_dir(f, t->io_cq, c),
	};
	for (unsigned i = 0; i < RTE_DIM(r); i++)
		submit(ck, &r[i]);
	return 0;
}

/* --------------------------------------------------- renames (commits) */

static void submit_rename(struct task *t)
{
	struct task_rename *r = &t->renames[0];
	struct sl_io_req q = sl_io_req_rename(r->f, r->to, t->io_cq,
					      r->seq << 8 | RENAME_COOKIE);

	/* a full ring: the next turn of __sl_ckpt_poll() tries again */
	t->ren_submitted = sl_io_submit(t->io, &q) == 0;
}

static void drop_renames(struct task *t, unsigned from)
{
	for (unsigned i = from; i < t->n_renames; i++) {
		sl_io_file_free(t->renames[i].f);
		free(t->renames[i].to);
	}
	__atomic_store_n(&t->n_renames, from, __ATOMIC_RELEASE);
}

int sl_task_rename(struct sl_task *pub, const char *from, const char *to)
{
	struct task *t = (struct task *)pub;
	struct task_rename r = { .seq = ++t->rename_seq };

	if (t->io == NULL)
		return -ENOTSUP;
	if (t->n_renames == t->cap_renames) {
		unsigned cap = t->cap_renames ? 2 * t->cap_renames : 8;
		struct task_rename *p = realloc(t->renames, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		t->renames = p;
		t->cap_renames = cap;
	}
	r.f = sl_io_file_create(from, 0, 0);
	r.to = strdup(to);
	if (r.f == NULL || r.to == NULL) {
		sl_io_file_free(r.f);
		free(r.to);
		return -ENOMEM;
	}
	t->renames[t->n_renames] = r;
	__atomic_store_n(&t->n_renames, t->n_renames + 1, __ATOMIC_RELEASE);
	if (t->n_renames == 1)
		submit_rename(t);
	return 0;
}

/* The rename at the head is done: the next goes, or after a failure none. */
static void rename_done(struct task *t, const struct sl_io_completion *c)
{
	struct task_rename *r = &t->renames[0];

	if (t->n_renames == 0 || !t->ren_submitted || (c->cookie >> 8) != r->seq)
		return; /* cannot happen: one at a time */
	t->ren_submitted = false;
	if (c->res < 0) {
		__sl_job_fail(t->job, c->res,
			      "operator '%s' (%s) subtask %u: cannot rename %s to %s: %s",
			      t->node->uid, t->ops->type, t->pub.info.index,
			      sl_io_file_path(r->f), r->to, strerror(-c->res));
		drop_renames(t, 0);
		return;
	}
	sl_io_file_free(r->f);
	free(r->to);
	sl_crash_point("sink-commit"); /* one part committed, maybe more to go */
	memmove(t->renames, t->renames + 1, (t->n_renames - 1) * sizeof(*r));
	__atomic_store_n(&t->n_renames, t->n_renames - 1, __ATOMIC_RELEASE);
	if (t->n_renames > 0)
		submit_rename(t);
}

/* -------------------------------------------------------- keyed state */

/* Incremental: the keys deleted since the base went into the delta. */
static int put_deletions(struct sl_ckpt_ctx *ck, uint32_t since, uint32_t epoch)
{
	const struct sl_task_info *in = &ck->t->pub.info;
	int rc = 0;

	for (uint32_t kg = in->kg_first; kg < in->kg_first + in->kg_count && rc == 0; kg++)
		rc = sl_kstate_deleted_since(ck->kst, (uint16_t)kg, since, epoch,
					     sl_snap_kstate_deleted, ck->kenc);
	return rc;
}

int sl_ckpt_put_keyed(struct sl_ckpt_ctx *ck, struct sl_kstate *st,
		      uint16_t key_size, uint16_t value_size)
{
	struct task *t = ck->t;
	const bool incremental = t->job->cfg.checkpoint.incremental;
	struct keyed_base *base = NULL;
	uint64_t planned = 0;
	struct sl_snap_kstate_conf c = {
		.uid = t->node->uid,
		.subtask = t->pub.info.index,
		.checkpoint_id = ck->id,
		.kind = SL_SNAP_KSTATE_FULL,
		.max_parallelism = t->pub.info.max_parallelism,
		.kg_first = t->pub.info.kg_first,
		.kg_count = t->pub.info.kg_count,
		.key_size = key_size,
		.value_size = value_size,
		.sink = keyed_sink,
		.sink_arg = ck,
	};
	uint32_t epoch;
	int rc;

	if (ck->kst != NULL || sl_kstate_snapshot_active(st))
		return -EBUSY;
	if (incremental && (base = __sl_ckpt_incr_choose(t, ck->id, st, &planned))) {
		c.kind = SL_SNAP_KSTATE_INCREMENTAL;
		c.base_checkpoint_id = base->id;
	}
	ck->kenc = sl_snap_kstate_enc_create(&c);
	if (ck->kenc == NULL)
		return -errno;
	if (base == NULL) {
		/* a full file's size is known: reserve it, so that O_DIRECT
		 * writes need no allocation (docs/io.md); CLOSE trims */
		uint64_t data = sl_kstate_count(st) * (10u + key_size + value_size);

		ck->file[FILE_KEYED].prealloc =
			data + data / 1024 + 24ull * t->pub.info.kg_count + (64u << 10);
	}
	rc = sl_kstate_snapshot_begin_since(st, base ? base->epoch : 0,
					    sl_snap_kstate_emit, ck->kenc, &epoch);
	/* the stepper hands the encoder runs of entries (one call each) */
	if (rc == 0)
		sl_kstate_snapshot_emit_runs(st, sl_snap_kstate_emit_run);
	ck->kst = st;
	/* O(deletions since the base): those are fixed now, and the log may
	 * be trimmed right after */
	if (rc == 0 && base != NULL && (rc = put_deletions(ck, base->epoch, epoch)) < 0)
		sl_kstate_snapshot_abort(st);
	if (rc < 0) {
		sl_snap_kstate_enc_free(ck->kenc);
		ck->kenc = NULL;
		ck->kst = NULL;
		return rc;
	}
	if (incremental) {
		ck->keyed_shared = true;
		ck->keyed_base = base ? base->id : 0;
		ck->keyed_inherit = base ? base->chain : 0;
		ck->keyed_base_bytes = base ? base->chain_bytes : 0;
		__sl_ckpt_incr_record(t, ck->id, epoch, planned, base);
	}
	ck->keyed_active = true;
	ck->keyed_memory = sl_kstate_memory(st);
	return 0;
}

/* ------------------------------------------------------ channel state */

static int chan_enc(struct sl_ckpt_ctx *ck)
{
	struct task *t = ck->t;
	struct sl_job *job = t->job;
	unsigned n = t->n_in + t->n_out_ch;
	struct sl_snap_chan_id *ids;

	if (ck->cenc != NULL)
		return 0;
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (ids == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < t->n_in; i++) {
		const struct task *src = &job->tasks[t->in[i].ch->src_task];
		ids[i] = (struct sl_snap_chan_id){
			.direction = SL_SNAP_CHAN_IN, .index = i,
			.peer_uid = src->node->uid,
			.peer_subtask = src->pub.info.index };
	}
	for (unsigned i = 0; i < t->n_out_ch; i++) {
		const struct task *dst = &job->tasks[t->out_ch[i]->dst_task];
		ids[t->n_in + i] = (struct sl_snap_chan_id){
			.direction = SL_SNAP_CHAN_OUT, .index = i,
			.peer_uid = dst->node->uid,
			.peer_subtask = dst->pub.info.index };
	}
	struct sl_snap_chan_conf c = {
		.uid = t->node->uid, .subtask = t->pub.info.index,
		.checkpoint_id = ck->id, .channels = ids, .n_channels = n,
		.sink = chan_sink, .sink_arg = ck,
	};
	ck->cenc = sl_snap_chan_enc_create(&c);
	free(ids);
	return ck->cenc ? 0 : -errno;
}

static void persist(struct sl_ckpt_ctx *ck, unsigned channel,
		    const struct sl_batch *b, uint64_t seq)
{
	struct sl_snap_chan_batch cb = {
		.seq = seq, .watermark = b->watermark, .kind = b->kind,
		.record_size = b->record_size, .record_count = b->count,
		.records = b->data,
	};
	int rc;

	/* only records and watermarks are channel state: a range persisted
	 * straight from a ring or a staging list may also hold an older
	 * checkpoint's marker (still queued behind a slow consumer) or an
	 * end of stream, which the file format does not take */
	if (ck->err || ck->aborted ||
	    (b->kind != SL_BATCH_DATA && b->kind != SL_BATCH_WATERMARK))
		return;
	if ((rc = chan_enc(ck)) < 0 ||
	    (rc = sl_snap_chan_enc_add(ck->cenc, channel, &cb)) < 0) {
		ck_fail(ck, rc, "persisting channel state: %s", strerror(-rc));
		return;
	}
	ck->inflight_bytes += (uint64_t)b->count * b->record_size;
}

static struct sl_ckpt_ctx *find_ck(struct task *t, uint64_t id)
{
	for (unsigned i = 0; i < t->n_ck; i++)
		if (t->ck[i]->id == id)
			return t->ck[i];
	return NULL;
}

void __sl_ckpt_persist_input(struct task *t, uint64_t id, unsigned in,
			     const struct sl_batch *b, uint64_t seq)
{
	struct sl_ckpt_ctx *ck = find_ck(t, id);

	if (ck != NULL)
		persist(ck, in, b, seq);
}

/* --------------------------------------------------------- snapshot */

/* The peer subtask at the other end of output channel i, for messages. */
static const struct task *out_peer(const struct task *t, unsigned i)
{
	return &t->job->tasks[t->out_ch[i]->dst_task];
}

/*
 * What forwarding the barrier needs, taken before anything is sent: room
 * on every priority lane and a marker batch per channel (from the marker
 * pool, which backpressure cannot empty).  Short of either (a receiver
 * that does not poll its lanes) the checkpoint is declined here rather
 * than waited for: this lcore may host the very subtask that would make
 * room.  Nothing of it
 * was sent, so the receivers never start it; the coordinator's abort
 * makes those that heard of it from other inputs forget it.
 * @return the markers (the caller sends them), NULL when declined or
 *         when there are no output channels
 */
static struct sl_batch **forward_take(struct task *t, struct sl_ckpt_ctx *ck)
{
	struct sl_batch **m;
	unsigned i;

	if (t->n_out_ch == 0)
		return NULL;
	for (i = 0; i < t->n_out_ch; i++)
		if (rte_ring_free_count(t->out_ch[i]->prio) == 0) {
			ck_fail(ck, -ENOBUFS,
				"the priority lane to '%s' subtask %u is full (layout.priority-ring-size %u); the barrier was not forwarded",
				out_peer(t, i)->node->uid, out_peer(t, i)->pub.info.index,
				t->job->cfg.prio_ring_size);
			return NULL;
		}
	m = malloc(t->n_out_ch * sizeof(*m));
	if (m == NULL) {
		ck_fail(ck, -ENOMEM, "out of memory forwarding the barrier");
		return NULL;
	}
	if (rte_mempool_get_bulk(t->marker_pool, (void **)m, t->n_out_ch) == 0) {
		for (i = 0; i < t->n_out_ch; i++)
			sl_batch_init(m[i], t->pub.out_record_size);
		return m;
	}
	free(m);
	ck_fail(ck, -ENOBUFS,
		"no barrier marker left: max-concurrent-checkpoints markers are still queued on this subtask's output channels; the barrier was not forwarded");
	return NULL;
}

/* Forward the barrier: announcement first, then the marker. */
static void forward(struct task *t, struct sl_ckpt_ctx *ck)
{
	struct sl_batch **markers = forward_take(t, ck);

	if (markers == NULL)
		return;
	for (unsigned i = 0; i < t->n_out_ch; i++) {
		struct sl_channel *ch = t->out_ch[i];
		uint64_t seq = ck->unaligned ? ch->sent : ch->sent + ch->staged;
		struct sl_ctrl_event ev = { .type = SL_CTRL_BARRIER,
					    .checkpoint_id = ck->id, .seq = seq,
					    .flags = ck->unaligned };
		struct sl_batch *m = markers[i];

		/* the receiver must see the announcement before it can
		 * dequeue the marker; forward_take() made sure of room (only
		 * this subtask posts on its lanes) */
		sl_channel_post(ch, &ev);
		if (ck->unaligned) {
			/* output that could not be sent is output state */
			uint64_t s = ch->sent + 1;
			for (struct sl_batch *b = ch->stage_head; b; b = b->next, s++)
				persist(ck, t->n_in + i, b, s);
		}
		m->kind = SL_BATCH_MARKER;
		m->checkpoint_id = ck->id;
		m->watermark = ch->wm_sent;
		if (ck->unaligned ? !sl_channel_send_first(ch, m)
				  : !sl_channel_send(ch, m))
			t->blocked = true;
	}
	free(markers);
}

static uint64_t tsc_ns(const struct task *t, uint64_t tsc)
{
	return (uint64_t)((double)tsc * 1e9 / (double)t->job->tsc_hz);
}

int __sl_ckpt_snapshot(struct task *t, uint64_t id, bool unaligned,
		       bool switched)
{
	struct sl_ckpt_ctx *ck;
	uint64_t consumed[256];
	int rc = 0;

	if (t->n_ck == CKPT_SLOTS)
		return -EBUSY;
	ck = calloc(1, sizeof(*ck));
	if (ck == NULL || (ck->h = calloc(1, sizeof(*ck->h))) == NULL) {
		free(ck);
		return -ENOMEM;
	}
	ck->t = t;
	ck->id = id;
	ck->unaligned = unaligned;
	ck->switched = switched;
	ck->snap_start_tsc = rte_get_tsc_cycles();
	t->ck[t->n_ck++] = ck;

	/* records emitted before the snapshot travel ahead of the barrier
	 * (aligned) or are persisted as staged output (unaligned) */
	__sl_task_flush(t);
	if (t->ops->snapshot != NULL && t->op != NULL)
		rc = t->ops->snapshot(t->op, &t->pub, ck);
	if (rc < 0)
		ck_fail(ck, rc, "operator snapshot failed: %s", strerror(-rc));
	forward(t, ck);
	if (t->bt != NULL) {
		for (unsigned i = 0; i < t->n_in && i < RTE_DIM(consumed); i++)
			consumed[i] = t->in[i].consumed;
		sl_bt_snapshot_taken(t->bt, id, consumed, 0);
	}
	ck->sync_ns = tsc_ns(t, rte_get_tsc_cycles() - ck->snap_start_tsc);
	return 0;
}

/* ------------------------------------------------------ acknowledging */

static void free_ck(struct task *t, struct sl_ckpt_ctx *ck, bool free_handles)
{
	/* requests never handed to the writer (the job stopped): their
	 * references are still ours */
	for (unsigned i = 0; i < ck->n_pending; i++) {
		const struct sl_io_req *r = &ck->pending[i];
		if (r->release == SL_IO_REL_FN)
			r->release_fn(r->release_obj);
		else if (r->release == SL_IO_REL_BATCH)
			sl_batch_put(r->release_obj);
		/* a descriptor handed over by sl_ckpt_sync_file() whose
		 * CLOSE never reached the writer */
		for (unsigned k = 0; r->op == SL_IO_OP_CLOSE && k < ck->n_synced; k++)
			if (ck->synced[k] == r->file)
				close(ck->synced_fd[k]);
	}
	free(ck->pending);
	for (unsigned i = 0; i < N_FILES; i++)
		sl_io_file_free(ck->file[i].io);
	for (unsigned i = 0; i < ck->n_synced; i++)
		sl_io_file_free(ck->synced[i]);
	sl_snap_kstate_enc_free(ck->kenc);
	sl_snap_chan_enc_free(ck->cenc);
	if (free_handles && ck->h != NULL) {
		for (unsigned i = 0; i < ck->h->n_blobs; i++)
			free(ck->h->blob[i]);
		free(ck->h);
	}
	for (unsigned i = 0; i < t->n_ck; i++)
		if (t->ck[i] == ck) {
			t->ck[i] = t->ck[--t->n_ck];
			break;
		}
	free(ck);
}

/** Release the handles of an ack (coordinator side). */
void __sl_ckpt_handles_free(void *handles)
{
	struct ckpt_handles *h = handles;

	if (h == NULL)
		return;
	for (unsigned i = 0; i < h->n_blobs; i++)
		free(h->blob[i]);
	free(h);
}

static bool send_ack(struct task *t, struct sl_ckpt_ctx *ck)
{
	const uint64_t keyed = ck->file[FILE_KEYED].info.size;
	struct sl_ckpt_task_ack a = {
		.id = ck->id,
		.task = (uint32_t)(t - t->job->tasks),
		.status = ck->err,
		.mode_used = ck->switched	 ? SL_CKPT_ALIGNED_TIMEOUT
			     : ck->unaligned ? SL_CKPT_UNALIGNED
					     : t->job->cfg.checkpoint.mode,
		.switched = ck->switched,
		.sync_ns = ck->sync_ns,
		.async_ns = tsc_ns(t, rte_get_tsc_cycles() - ck->snap_start_tsc),
		.state_bytes = keyed + ck->blob_bytes,
		/* a delta stands for its base's chain too */
		.full_state_bytes = ck->keyed_base_bytes + keyed + ck->blob_bytes,
		.state_memory_bytes = ck->keyed_memory,
		.inflight_bytes = ck->inflight_bytes,
		.handles = ck->err ? NULL : ck->h,
	};

	uint64_t first = 0, snap;
	if (t->bt != NULL) {
		sl_bt_times(t->bt, ck->id, &first, &snap);
		if (first != 0)
			a.alignment_ns = tsc_ns(t, ck->snap_start_tsc) - first;
	}
	a.start_delay_ns = __sl_ckpt_start_delay_ns(
		t->job, ck->id, first ? first : tsc_ns(t, ck->snap_start_tsc));
	snprintf(a.reason, sizeof(a.reason), "%s", ck->reason);
	if (rte_ring_mp_enqueue_elem(t->job->acks, &a, sizeof(a)) != 0)
		return false; /* the coordinator is behind; retry next poll */
	if (ck->keyed_shared && !ck->err)
		__sl_ckpt_incr_written(t, ck->id, keyed);
	if (ck->err)
		__sl_ckpt_handles_free(ck->h);
	ck->h = NULL; /* the coordinator owns them now */
	return true;
}

/* Finish the encoders and close the files once nothing more can come. */
static void close_files(struct sl_ckpt_ctx *ck)
{
	struct task *t = ck->t;
	int rc;

	if (ck->kenc != NULL) {
		rc = sl_snap_kstate_enc_finish(ck->kenc, &ck->file[FILE_KEYED].info);
		if (rc < 0)
			ck_fail(ck, rc, "writing keyed state: %s", strerror(-rc));
	}
	if (ck->cenc != NULL) {
		rc = sl_snap_chan_enc_finish(ck->cenc, &ck->file[FILE_CHAN].info);
		if (rc < 0)
			ck_fail(ck, rc, "writing channel state: %s", strerror(-rc));
	}
	for (unsigned i = 0; i < N_FILES; i++) {
		struct ckpt_file *f = &ck->file[i];
		if (f->io == NULL)
			continue;
		/* trims the padding of the last write (and any unused
		 * preallocation) and fdatasyncs: durable once it completes */
		struct sl_io_req cl = sl_io_req_close_sync(f->io, f->info.size,
							   t->io_cq, cookie(ck, i));
		submit(ck, &cl);
		if (ck->h != NULL && !ck->err && i == FILE_KEYED) {
			ck->h->keyed_base = ck->keyed_base;
			ck->h->keyed_inherit = ck->keyed_inherit;
		}
		if (ck->h != NULL && !ck->err)
			sl_snap_file_ref_set(&ck->h->refs[ck->h->n_refs++], f->name,
					     i == FILE_KEYED ? SL_SNAP_FILE_KEYED
							     : SL_SNAP_FILE_CHANNEL,
					     ck->id, &f->info,
					     i == FILE_KEYED ? t->pub.info.kg_first : 0,
					     i == FILE_KEYED ? t->pub.info.kg_count : 0);
	}
}

/* Drive one checkpoint; true when it is finished with (acked/dropped). */
static bool progress(struct task *t, struct sl_ckpt_ctx *ck, int *work)
{
	resubmit_pending(ck);
	if (ck->keyed_active) {
		if (ck->aborted || ck->err) {
			sl_kstate_snapshot_abort(ck->kst);
			ck->keyed_active = false;
		} else if (ck->n_pending > 0) {
			/* the writer's ring is full: write out more next turn */
		} else if (ck->writes < WRITES_IN_FLIGHT_MAX) {
			*work += (int)sl_kstate_snapshot_step(ck->kst, KEYED_STEP_BUDGET);
			ck->keyed_active = sl_kstate_snapshot_active(ck->kst);
			sl_crash_point("state-write");
		}
		if (ck->keyed_active)
			return false;
	}
	bool inputs_done = ck->aborted || t->bt == NULL ||
			   sl_bt_inputs_done(t->bt, ck->id);
	if (!inputs_done)
		return false;
	if (!ck->files_closed) {
		close_files(ck);
		ck->files_closed = true;
	}
	if (ck->outstanding > 0 || ck->n_pending > 0)
		return false;
	if (ck->aborted) {
		free_ck(t, ck, true);
		return true;
	}
	if (!send_ack(t, ck))
		return false;
	free_ck(t, ck, false);
	return true;
}

/*
 * A decline made without a checkpoint context (the snapshot could not be
 * taken) goes to the coordinator now, or waits for room in the ack ring
 * until a later turn: never dropped, never waited for.  More than
 * DECLINES_MAX waiting means the coordinator has not drained its ring for
 * that many checkpoints, so the oldest has long expired there: it goes.
 */
static void post_decline(struct task *t, uint64_t id, int status,
			 const char *reason)
{
	struct sl_ckpt_task_ack a = { .id = id, .status = status,
				      .task = (uint32_t)(t - t->job->tasks) };

	snprintf(a.reason, sizeof(a.reason), "%s", reason);
	if (t->n_declines == 0 &&
	    rte_ring_mp_enqueue_elem(t->job->acks, &a, sizeof(a)) == 0)
		return;
	if (t->declines == NULL &&
	    (t->declines = calloc(DECLINES_MAX, sizeof(*t->declines))) == NULL) {
		__sl_job_fail(t->job, -ENOMEM,
			      "out of memory keeping a checkpoint decline of '%s' subtask %u",
			      t->node->uid, t->pub.info.index);
		return;
	}
	if (t->n_declines == DECLINES_MAX) {
		memmove(t->declines, t->declines + 1,
			(DECLINES_MAX - 1) * sizeof(*t->declines));
		t->n_declines--;
	}
	t->declines[t->n_declines++] = a;
}

static int post_declines_waiting(struct task *t)
{
	unsigned done = 0;

	while (done < t->n_declines &&
	       rte_ring_mp_enqueue_elem(t->job->acks, &t->declines[done],
					sizeof(t->declines[0])) == 0)
		done++;
	if (done > 0) {
		memmove(t->declines, t->declines + done,
			(t->n_declines - done) * sizeof(*t->declines));
		/* release: after the enqueues (the main lcore's task_done()) */
		__atomic_store_n(&t->n_declines, t->n_declines - done,
				 __ATOMIC_RELEASE);
	}
	return (int)done;
}

static void on_command(struct task *t, const struct ckpt_cmd *cmd)
{
	struct sl_ckpt_ctx *ck = find_ck(t, cmd->id);
	int rc;

	switch (cmd->type) {
	case CKPT_TRIGGER:
		rc = __sl_ckpt_snapshot(t, cmd->id,
					t->job->cfg.checkpoint.mode == SL_CKPT_UNALIGNED,
					false);
		if (rc < 0)
			post_decline(t, cmd->id, rc,
				     rc == -EBUSY ? "too many checkpoints in progress at this subtask"
						  : "cannot take the snapshot: out of memory");
		break;
	case CKPT_COMPLETE:
		if (t->ops->notify_complete != NULL && t->op != NULL)
			t->ops->notify_complete(t->op, &t->pub, cmd->id);
		if (t->bt != NULL)
			sl_bt_forget(t->bt, cmd->id);
		break;
	case CKPT_ABORT:
		if (ck != NULL)
			ck->aborted = true;
		if (t->ops->notify_aborted != NULL && t->op != NULL)
			t->ops->notify_aborted(t->op, &t->pub, cmd->id);
		if (t->bt != NULL)
			sl_bt_abort(t->bt, cmd->id);
		break;
	}
}

static int reap_io(struct task *t);

int __sl_ckpt_poll(struct task *t)
{
	struct ckpt_cmd cmd;
	int work = 0;

	if (t->n_declines > 0)
		work += post_declines_waiting(t);
	if (t->n_renames > 0 && !t->ren_submitted)
		submit_rename(t);
	while (rte_ring_sc_dequeue_elem(t->ctl, &cmd, sizeof(cmd)) == 0) {
		on_command(t, &cmd);
		work++;
	}
	work += reap_io(t);
	for (unsigned i = 0; i < t->n_ck;) {
		struct sl_ckpt_ctx *ck = t->ck[i];
		if (!progress(t, ck, &work))
			i++;
	}
	return work;
}

/* io completions: count them against their checkpoints. */
static int reap_io(struct task *t)
{
	struct sl_io_completion c[32];
	int work = 0;
	unsigned n;

	while ((n = sl_io_reap(t->io_cq, c, RTE_DIM(c))) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct sl_ckpt_ctx *ck;
			unsigned which = c[i].cookie & 0xff;

			if (which == RENAME_COOKIE) {
				rename_done(t, &c[i]);
				continue;
			}
			ck = find_ck(t, c[i].cookie >> 8);
			if (ck == NULL)
				continue;
			ck->outstanding--;
			if (c[i].op == SL_IO_OP_WRITE)
				ck->writes--;
			if (c[i].res < 0 && which >= SYNCED_COOKIE) {
				const char *p = sl_io_file_path(
					ck->synced[which - SYNCED_COOKIE]);

				ck_fail(ck, c[i].res, "making %s durable: %s", p,
					strerror(-c[i].res));
				/* After a failed fdatasync the kernel may have
				 * dropped the data: committing that output
				 * with a later checkpoint could publish a hole.
				 * Failing the job restarts it from the last
				 * complete checkpoint, which discards it. */
				__sl_job_fail(t->job, c[i].res,
					      "operator '%s' (%s) subtask %u: cannot make %s durable: %s; its output since the last complete checkpoint is discarded (check the disk, then restart from the latest checkpoint)",
					      t->node->uid, t->ops->type,
					      t->pub.info.index, p,
					      strerror(-c[i].res));
			} else if (c[i].res < 0) {
				ck_fail(ck, c[i].res, "writing chk-%" PRIu64 "/%s: %s",
					ck->id, ck->file[which].name,
					strerror(-c[i].res));
			}
		}
		work += (int)n;
	}
	return work;
}

/*
 * Checkpoint work that must not wait for the end of a loop turn, which
 * for a slow operator (a burst of batches that each take milliseconds) is
 * long: close the files of a checkpoint whose inputs are done, and ack one
 * whose writes completed.  The keyed-state write-out is not stepped here:
 * it keeps its once-per-turn pace.
 */
static int poll_quick(struct task *t)
{
	int work = reap_io(t);

	for (unsigned i = 0; i < t->n_ck;) {
		struct sl_ckpt_ctx *ck = t->ck[i];
		if (ck->keyed_active || !progress(t, ck, &work))
			i++;
	}
	return work;
}

unsigned __sl_ckpt_poll_announcements(struct task *t)
{
	struct sl_ctrl_event ev;
	unsigned n = 0;

	/* the time is read after the event arrived: the first barrier's
	 * time must not precede the trigger (start delay, alignment) */
	for (unsigned i = 0; i < t->n_in; i++)
		while (sl_channel_poll(t->in[i].ch, &ev) == 0)
			if (ev.type == SL_CTRL_BARRIER) {
				sl_bt_on_announce(t->bt, i, ev.checkpoint_id, ev.seq,
						  tsc_ns(t, rte_get_tsc_cycles()));
				n++;
			}
	return n;
}

/*
 * Unaligned: persist an input's in-flight batches as soon as its barrier
 * announcement says where they end, without processing them: the held or
 * just-dequeued ones, then the ones still in the ring (peeked, not
 * consumed).  The checkpoint then need not wait until the subtask worked
 * through a full ring; the batches are processed later as usual.
 */
static void persist_ahead(struct task *t, struct sl_ckpt_ctx *ck, unsigned i,
			  uint64_t end)
{
	struct in_port *in = &t->in[i];
	const uint64_t from = in->consumed;
	uint64_t seq = from;
	uint64_t known = from + in->n_held + in->n_pending;
	struct rte_ring_zc_data zcd;
	unsigned want = 0;

	/* all or nothing: the batches not persisted here are persisted when
	 * processed, so a partial range would be persisted twice.  Batches
	 * still staged at the sender (an aligned barrier) are not in the
	 * ring yet: try again later. */
	if (known != in->ch->received)
		return;
	if (end > known) {
		want = (unsigned)(end - known);
		if (rte_ring_count(in->ch->data) < want)
			return;
	}
	for (unsigned k = 0; k < in->n_held && seq < end; k++, seq++)
		persist(ck, i, in->held[k], seq);
	for (unsigned k = 0; k < in->n_pending && seq < end; k++, seq++)
		persist(ck, i, in->pending[k], seq);
	if (want > 0) {
		/* single consumer: what we counted is still there */
		unsigned n = rte_ring_dequeue_zc_burst_start(in->ch->data, want,
							     &zcd, NULL);
		struct sl_batch **p1 = zcd.ptr1, **p2 = zcd.ptr2;
		for (unsigned k = 0; k < n; k++, seq++)
			persist(ck, i, k < zcd.n1 ? p1[k] : p2[k - zcd.n1], seq);
		/* consume nothing: they are processed in their turn */
		rte_ring_dequeue_zc_finish(in->ch->data, 0);
	}
	sl_bt_persisted_ahead(t->bt, ck->id, i, from);
}

static void persist_ahead_all(struct task *t)
{
	for (unsigned c = 0; c < t->n_ck; c++) {
		struct sl_ckpt_ctx *ck = t->ck[c];
		for (unsigned i = 0; i < t->n_in; i++) {
			uint64_t end;
			if (sl_bt_needs_ahead(t->bt, ck->id, i, &end))
				persist_ahead(t, ck, i, end);
		}
	}
}

int __sl_ckpt_decide(struct task *t)
{
	uint64_t now = tsc_ns(t, rte_get_tsc_cycles());
	int n = 0;

	for (;;) {
		struct sl_bt_decision d = sl_bt_next(t->bt, now);
		if (d.action != SL_BT_SNAPSHOT) {
			if (t->n_ck > 0)
				persist_ahead_all(t);
			/* a new unaligned checkpoint whose in-flight data is
			 * persisted closes its files now, not a turn later */
			if (n > 0)
				poll_quick(t);
			return n;
		}
		int rc = __sl_ckpt_snapshot(t, d.id, d.unaligned, d.switched);
		if (rc < 0) {
			char why[96];
			snprintf(why, sizeof(why), "cannot take the snapshot: %s",
				 rc == -EBUSY ? "too many checkpoints in progress at this subtask"
					      : strerror(-rc));
			post_decline(t, d.id, rc, why);
		}
		n++;
	}
}

void __sl_ckpt_between_batches(struct task *t, struct in_port *in,
			       struct sl_batch **rest, unsigned n_rest)
{
	/* a barrier announced while the operator worked on this burst is
	 * taken now (the rest of the burst is then in flight), not at the
	 * next burst, as Flink takes priority events between records */
	if (t->phase == TASK_RUNNING && __sl_ckpt_poll_announcements(t) > 0) {
		in->pending = rest;
		in->n_pending = n_rest;
		__sl_ckpt_decide(t);
		in->pending = NULL;
		in->n_pending = 0;
	}
	if (t->n_ck > 0)
		poll_quick(t);
}

uint64_t __sl_ckpt_now_ns(const struct task *t)
{
	return tsc_ns(t, rte_get_tsc_cycles());
}

int __sl_ckpt_task_init(struct task *t)
{
	struct sl_job *job = t->job;
	char name[RTE_RING_NAMESIZE];
	unsigned idx = (unsigned)(t - job->tasks);

	snprintf(name, sizeof(name), "slk%uc%u", job->run_id, idx);
	t->ctl = rte_ring_create_elem(name, sizeof(struct ckpt_cmd), 256,
				      SOCKET_ID_ANY,
				      RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "slk%uq%u", job->run_id, idx);
	t->io_cq = sl_io_completion_ring_create(name, 1024, SOCKET_ID_ANY);
	if (t->ctl == NULL || t->io_cq == NULL)
		return -ENOMEM;
	if (!t->is_source) {
		t->bt = sl_bt_create(t->n_in, job->cfg.checkpoint.mode,
				     job->cfg.checkpoint.aligned_timeout_ms * 1000000ULL,
				     job->cfg.checkpoint.max_concurrent);
		if (t->bt == NULL)
			return -ENOMEM;
	}
	return 0;
}

void __sl_ckpt_task_fini(struct task *t)
{
	while (t->n_ck > 0)
		free_ck(t, t->ck[0], true);
	free(t->declines);
	t->declines = NULL;
	t->n_declines = 0;
	drop_renames(t, 0);
	free(t->renames);
	t->renames = NULL;
	t->cap_renames = 0;
	t->ren_submitted = false;
	sl_bt_free(t->bt);
	rte_ring_free(t->ctl);
	sl_io_completion_ring_free(t->io_cq);
	t->bt = NULL;
	t->ctl = NULL;
	t->io_cq = NULL;
}
