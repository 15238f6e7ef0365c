/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Incremental checkpoints (state.backend.incremental): a subtask's keyed
 * file holds only the entries changed since a base checkpoint plus the
 * keys deleted since, and the checkpoint's metadata references the base's
 * chain of files instead of copying them (docs/checkpointing.md,
 * "Incremental checkpoints"; the file formats are in
 * docs/snapshot-format.md).
 *
 * The base of checkpoint n is the last checkpoint that was COMPLETE when
 * the coordinator triggered n.  The main lcore writes it into a plan slot
 * before the trigger leaves, so every subtask of n uses the same base,
 * whatever order completions and barriers reach it in.  A subtask keeps the
 * epochs of its recent keyed snapshots; it writes a delta since the base's
 * epoch when it took the base's snapshot itself and the base's chain is
 * shorter than K (sluice.checkpointing.full-every), and a full file
 * otherwise.  A checkpoint that failed is never a base, so after an
 * aborted or declined checkpoint the next delta reaches back to the last
 * complete one: its entries are those with epoch > the base's epoch, which
 * includes everything the failed one would have recorded.
 *
 * Deletions: the keyed state's deletion log is on while incremental
 * checkpoints are.  A delta on base b lists the deletions in
 * (epoch(b), epoch(n)], read at the snapshot (they are fixed from then
 * on).  Bases only move forward in trigger order and a subtask snapshots
 * in that order, so once n is taken no later snapshot needs deletions at
 * or before epoch(b): the log is trimmed there.  A base whose epoch lies
 * below what was trimmed is refused (full file), so a trimming mistake
 * can only cost a full file, never a wrong delta.
 *
 * Shared files: with incremental on, every keyed file (full ones too) goes
 * to <root>/shared/, because later checkpoints reference it.  After each
 * completion, retention (sl_snap_chk_retain) keeps the newest
 * state.checkpoints.num-retained complete checkpoints, and also every
 * complete checkpoint from the base of a still pending checkpoint on (its
 * chain must survive until it completes), then deletes the shared files
 * no kept checkpoint references.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_pvt.h"
#include "sluice/keyed_state.h"
#include "sluice/snapshot.h"

/* ---------------------------------------------------- plan (trigger) */

void __sl_ckpt_incr_plan(struct sl_job *job, uint64_t id)
{
	struct incr_plan *p = &job->incr_plan[id % SL_COORD_HISTORY];
	uint64_t base = job->incr_last ? job->incr_last->checkpoint_id : 0;

	if (!job->cfg.checkpoint.incremental)
		return;
	/* a reader that sees the new base also sees id != its own (the
	 * release fence orders the zeroing before the base) */
	__atomic_store_n(&p->id, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&p->base, base, __ATOMIC_RELAXED);
	/* publishes base; the trigger command is enqueued after this */
	__atomic_store_n(&p->id, id, __ATOMIC_RELEASE);
}

/* The base planned for checkpoint id; 0 if none (or the slot has moved
 * on to a much newer checkpoint: id is long dead, a full file is fine). */
static uint64_t plan_base(const struct sl_job *job, uint64_t id)
{
	const struct incr_plan *p = &job->incr_plan[id % SL_COORD_HISTORY];
	uint64_t base;

	if (__atomic_load_n(&p->id, __ATOMIC_ACQUIRE) != id)
		return 0;
	base = __atomic_load_n(&p->base, __ATOMIC_RELAXED);
	/* orders the base read before the re-check of id */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&p->id, __ATOMIC_RELAXED) == id ? base : 0;
}

/* ------------------------------------------------ subtask: the bases */

static struct keyed_base *find_base(struct task *t, uint64_t id)
{
	for (unsigned i = 0; i < t->n_kb; i++)
		if (t->kb[i].id == id)
			return &t->kb[i];
	return NULL;
}

/**
 * Choose the base of the keyed snapshot of @p st for checkpoint @p id.
 * The first call for a state turns its deletion log on (so its first
 * snapshot is full: deletions before that are not logged).
 * @param base_id  receives the planned base (0: none), for
 *                 __sl_ckpt_incr_record()
 * @return the base's entry (write a delta since its epoch), or NULL
 *         (write a full file)
 */
struct keyed_base *__sl_ckpt_incr_choose(struct task *t, uint64_t id,
					 struct sl_kstate *st,
					 uint64_t *base_id)
{
	struct keyed_base *b;

	if (t->kb_state != st) {
		t->kb_state = st;
		t->n_kb = 0;
		t->kb_trimmed = 0;
		sl_kstate_track_deletes(st, true);
	}
	*base_id = plan_base(t->job, id);
	if (*base_id == 0 || (b = find_base(t, *base_id)) == NULL ||
	    !b->written || b->epoch < t->kb_trimmed)
		return NULL;
	return b->chain < t->job->cfg.checkpoint.full_every ? b : NULL;
}

/**
 * Record the keyed snapshot just taken for checkpoint @p id, and forget
 * what no later snapshot can be based on (bases before @p base_id, the
 * deletions up to them).
 * @param epoch    the snapshot's epoch
 * @param base_id  the planned base, as __sl_ckpt_incr_choose() gave it
 * @param base     the chosen base (its entry), NULL for a full file
 */
void __sl_ckpt_incr_record(struct task *t, uint64_t id, uint32_t epoch,
			   uint64_t base_id, const struct keyed_base *base)
{
	struct keyed_base n = {
		.id = id, .epoch = epoch,
		.chain = base ? base->chain + 1 : 1,
		.chain_bytes = base ? base->chain_bytes : 0,
	};
	uint32_t trim = 0;
	unsigned drop = 0;

	for (unsigned i = 0; i < t->n_kb && t->kb[i].id <= base_id; i++) {
		trim = t->kb[i].epoch;
		drop += t->kb[i].id < base_id;
	}
	if (trim > t->kb_trimmed) {
		sl_kstate_deleted_trim(t->kb_state, trim);
		t->kb_trimmed = trim;
	}
	if (drop == 0 && t->n_kb == KEYED_BASES)
		drop = 1; /* more in flight than ever useful: oldest goes */
	memmove(t->kb, t->kb + drop, (t->n_kb - drop) * sizeof(t->kb[0]));
	t->n_kb -= drop;
	t->kb[t->n_kb++] = n;
}

/**
 * Checkpoint @p id's keyed file is durable and acknowledged (@p bytes
 * long): its snapshot may serve as a base.
 */
void __sl_ckpt_incr_written(struct task *t, uint64_t id, uint64_t bytes)
{
	struct keyed_base *b = find_base(t, id);

	if (b != NULL && !b->written) {
		b->chain_bytes += bytes;
		b->written = true;
	}
}

/* ------------------------------------------- main lcore: finalizing */

/* Metadata of complete checkpoint @p id: the newest one is kept in
 * memory; an older one (a base while newer ones completed, only with
 * max-concurrent-checkpoints > 1) is read back, once per finalization. */
static const struct sl_snap_metadata *base_meta(struct sl_job *job, uint64_t id,
						char *err, size_t errlen)
{
	struct sl_snap_err serr = { "" };
	char dir[4200];
	int rc;

	if (job->incr_last != NULL && job->incr_last->checkpoint_id == id)
		return job->incr_last;
	if (job->incr_aux != NULL && job->incr_aux->checkpoint_id == id)
		return job->incr_aux;
	sl_snap_meta_free(job->incr_aux);
	job->incr_aux = NULL;
	sl_snap_chk_path(dir, sizeof(dir), job->cfg.checkpoint.dir, id);
	rc = sl_snap_meta_load(dir, &job->incr_aux, &serr);
	if (rc < 0) {
		snprintf(err, errlen, "base checkpoint %" PRIu64 " of an incremental one: %s",
			 id, serr.msg[0] ? serr.msg : strerror(-rc));
		return NULL;
	}
	return job->incr_aux;
}

int __sl_ckpt_incr_inherit(struct sl_job *job, struct sl_snap_metadata *m,
			   int op, uint32_t subtask,
			   const struct ckpt_handles *h, char *err,
			   size_t errlen)
{
	const struct sl_snap_metadata *bm;
	int n;

	if (h == NULL || h->keyed_base == 0)
		return 0;
	bm = base_meta(job, h->keyed_base, err, errlen);
	if (bm == NULL)
		return -EIO;
	n = sl_snap_meta_inherit_keyed(m, op, subtask, bm,
				       job->cfg.checkpoint.full_every);
	if (n < 0) {
		snprintf(err, errlen, "referencing the keyed files of checkpoint %" PRIu64 ": %s",
			 h->keyed_base, strerror(-n));
		return n;
	}
	if ((uint32_t)n != h->keyed_inherit) {
		snprintf(err, errlen,
			 "%s subtask %u wrote a delta on checkpoint %" PRIu64 " after a chain of %u keyed files, but that checkpoint's metadata gives %d",
			 m->operators[op].uid, subtask, h->keyed_base,
			 h->keyed_inherit, n);
		return -EINVAL;
	}
	return 0;
}

void __sl_ckpt_incr_completed(struct sl_job *job, struct sl_snap_metadata **m)
{
	if (!job->cfg.checkpoint.incremental)
		return;
	sl_snap_meta_free(job->incr_last);
	job->incr_last = *m;
	*m = NULL;
}

/* -------------------------------------------- main lcore: retention */

void __sl_ckpt_incr_retain(struct sl_job *job)
{
	const struct sl_checkpoint_config *c = &job->cfg.checkpoint;
	struct sl_snap_retain_conf rc = { .keep = c->retained };
	const struct sl_coord_ckpt *h[SL_COORD_HISTORY];
	struct sl_snap_err err = { "" };
	uint64_t oldest_base = UINT64_MAX, *ids = NULL;
	size_t n_ids = 0;
	unsigned n;

	if (!c->incremental)
		return;
	n = sl_coord_history(job->coord, h, SL_COORD_HISTORY);
	for (unsigned i = 0; i < n; i++) {
		uint64_t b;
		if (h[i]->status == SL_CKPT_PENDING &&
		    (b = plan_base(job, h[i]->id)) != 0 && b < oldest_base)
			oldest_base = b;
	}
	/* a pending checkpoint may reference its base's chain: keep every
	 * complete checkpoint from that base on (the coordinator's own
	 * count does not include the one completing now; incr_last does) */
	if (oldest_base != UINT64_MAX && job->incr_last != NULL &&
	    oldest_base < job->incr_last->checkpoint_id) {
		if (sl_snap_chk_list(c->dir, &ids, &n_ids, &err) < 0) {
			fprintf(stderr, "sluice: checkpoint retention postponed: %s\n",
				err.msg);
			return;
		}
		uint32_t newer = 0;
		for (size_t i = 0; i < n_ids; i++)
			newer += ids[i] >= oldest_base;
		if (newer > rc.keep)
			rc.keep = newer;
		free(ids);
	}
	if (sl_snap_chk_retain(c->dir, &rc, NULL, &err) < 0)
		fprintf(stderr, "sluice: checkpoint retention postponed: %s\n",
			err.msg);
}

/* The job stopped: checkpoints still pending will never complete, and
 * nothing is in flight any more, so their directories and shared files go
 * (retention with all_incomplete). */
void __sl_ckpt_incr_fini(struct sl_job *job)
{
	const struct sl_checkpoint_config *c = &job->cfg.checkpoint;
	struct sl_snap_retain_conf rc = { .keep = c->retained, .all_incomplete = true };
	struct sl_snap_err err = { "" };

	if (c->incremental && job->incr_last != NULL &&
	    sl_snap_chk_retain(c->dir, &rc, NULL, &err) < 0)
		fprintf(stderr, "sluice: checkpoint clean-up at stop: %s\n", err.msg);
	sl_snap_meta_free(job->incr_last);
	sl_snap_meta_free(job->incr_aux);
	job->incr_last = NULL;
	job->incr_aux = NULL;
}
