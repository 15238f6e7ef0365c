/* SPDX-License-Identifier: BSD-3-Clause */
/* Reading a complete checkpoint back for cut checks (see ckpt_cut.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ckpt_cut.h"
#include "rm_tree.h"
#include "sluice/batch.h"

struct sl_snap_metadata *ckpt_cut_open(const char *root, uint64_t id,
				       char *dir, size_t len)
{
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err = { "" };
	int n = snprintf(dir, len, "%s/chk-%" PRIu64, root, id);

	cr_assert(n > 0 && (size_t)n < len, "checkpoint path too long");
	cr_assert_eq(sl_snap_chk_validate(root, id, &m, &err), 0, "%s", err.msg);
	return m;
}

const struct sl_snap_operator_meta *
ckpt_cut_operator(const struct sl_snap_metadata *m, const char *uid)
{
	const struct sl_snap_operator_meta *op = sl_snap_meta_find(m, uid);

	cr_assert_not_null(op, "checkpoint %" PRIu64 " has no operator '%s'",
			   m->checkpoint_id, uid);
	return op;
}

struct walk {
	const char *owner;
	const struct ckpt_cut_visitor *v;
	uint64_t records;
};

static int on_entries(void *arg, const struct sl_snap_kv *kv, unsigned n)
{
	struct walk *w = arg;

	w->v->keyed(w->v->arg, w->owner, kv, n);
	return 0;
}

static int on_batch(void *arg, uint32_t channel, const struct sl_snap_chan_id *id,
		    const struct sl_snap_chan_batch *b)
{
	struct walk *w = arg;

	(void)channel;
	if (b->kind != SL_BATCH_DATA)
		return 0;
	w->records += b->record_count;
	if (w->v->batch != NULL)
		w->v->batch(w->v->arg, w->owner,
			    id->direction == SL_SNAP_CHAN_IN ? id->peer_uid : w->owner, b);
	return 0;
}

uint64_t ckpt_cut_walk(const char *dir, const struct sl_snap_operator_meta *op,
		       const struct ckpt_cut_visitor *v)
{
	struct walk w = { .owner = op->uid, .v = v };
	struct sl_snap_err err = { "" };

	for (uint32_t s = 0; s < op->parallelism; s++) {
		const struct sl_snap_subtask_meta *st = &op->subtasks[s];
		for (uint32_t f = 0; f < st->n_files; f++) {
			char path[4700];
			struct sl_snap_src src;
			int n = snprintf(path, sizeof(path), "%s/%s", dir, st->files[f].path);

			cr_assert(n > 0 && (size_t)n < sizeof(path), "path too long");
			cr_assert_eq(sl_snap_src_open(&src, path, NULL, &err), 0, "%s", err.msg);
			if (st->files[f].type == SL_SNAP_FILE_KEYED) {
				struct sl_snap_kstate_visitor kv = {
					.on_entries = v->keyed ? on_entries : NULL, .arg = &w };
				cr_assert_eq(sl_snap_kstate_load(&src, &kv, NULL, &err), 0,
					     "%s", err.msg);
			} else {
				cr_assert_eq(sl_snap_chan_load(&src, on_batch, &w, NULL, &err),
					     0, "%s", err.msg);
			}
			sl_snap_src_close(&src);
		}
	}
	return w.records;
}

uint64_t ckpt_cut_gen_next(const struct sl_snap_operator_meta *gen, uint32_t s,
			   uint64_t count)
{
	const struct sl_snap_subtask_meta *st = &gen->subtasks[s];
	uint64_t next = count;

	cr_assert_lt(s, gen->parallelism);
	cr_assert_leq(st->n_blobs, 1, "generator '%s' subtask %u: one offset", gen->uid, s);
	if (st->n_blobs == 1) {
		cr_assert_geq(st->blobs[0].len, 8);
		memcpy(&next, st->blobs[0].data, 8);
	}
	return next;
}

void ckpt_cut_remove_root(const char *root)
{
	rm_tree(root);
}
