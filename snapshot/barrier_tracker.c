/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Barrier bookkeeping of one subtask (see include/sluice/barrier.h for the
 * protocol).  Up to max-concurrent checkpoints can be in flight at once
 * (aligned and at-least-once pipelines); the slots are sized from it.
 * Unaligned modes run one at a time, as in Flink.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/barrier.h"

#define BT_ABORTED_MAX (2 * SL_CKPT_MAX_CONCURRENT)

/* Slots per checkpoint allowed in progress at once: room for ones that
 * ended at the coordinator but whose notification has not reached this
 * subtask yet when newer barriers arrive (at least 4, as always). */
#define BT_SLOTS_PER_CONCURRENT 2
#define BT_SLOTS_MIN 4
#define BT_MAX(a, b) ((a) > (b) ? (a) : (b))

struct bt_input {
	bool announced;
	bool marker;	   /* reached: all batches before it processed */
	uint64_t seq;	   /* marker position, when announced */
	uint64_t consumed; /* processed at the snapshot */
	bool ahead;	   /* [ahead_from, seq) persisted without processing */
	uint64_t ahead_from;
};

struct bt_ckpt {
	uint64_t id;	/* 0 = free slot */
	bool decided;	/* snapshot asked for */
	bool taken;	/* snapshot done */
	bool unaligned;
	bool switched;
	uint64_t first_ns;
	uint64_t snap_ns;
	struct bt_input *in;
};

struct sl_barrier_tracker {
	unsigned n;
	enum sl_ckpt_mode mode;
	uint64_t timeout_ns;
	uint64_t forgotten; /* events for ids <= this are stale */
	/* aborted ids above `forgotten` (an older checkpoint was still in
	 * progress): their events are stale too; a ring, oldest overwritten */
	uint64_t aborted[BT_ABORTED_MAX];
	unsigned n_aborted;
	bool *ended;
	unsigned n_slots;
	struct bt_ckpt ck[];
};

struct sl_barrier_tracker *sl_bt_create(unsigned n_inputs, enum sl_ckpt_mode mode,
					uint64_t aligned_timeout_ns,
					unsigned max_concurrent)
{
	struct sl_barrier_tracker *bt;
	unsigned slots;

	if ((unsigned)mode > SL_CKPT_AT_LEAST_ONCE || max_concurrent == 0 ||
	    max_concurrent > SL_CKPT_MAX_CONCURRENT) {
		errno = EINVAL;
		return NULL;
	}
	slots = BT_MAX(BT_SLOTS_MIN, BT_SLOTS_PER_CONCURRENT * max_concurrent);
	bt = calloc(1, sizeof(*bt) + slots * sizeof(bt->ck[0]));
	if (bt == NULL)
		return NULL;
	bt->n_slots = slots;
	bt->n = n_inputs;
	bt->mode = mode;
	bt->timeout_ns = aligned_timeout_ns;
	bt->ended = calloc(n_inputs + 1, sizeof(bool));
	for (unsigned i = 0; i < bt->n_slots && bt->ended; i++) {
		bt->ck[i].in = calloc(n_inputs + 1, sizeof(struct bt_input));
		if (bt->ck[i].in == NULL) {
			sl_bt_free(bt);
			errno = ENOMEM;
			return NULL;
		}
	}
	if (bt->ended == NULL) {
		sl_bt_free(bt);
		errno = ENOMEM;
		return NULL;
	}
	return bt;
}

void sl_bt_free(struct sl_barrier_tracker *bt)
{
	if (bt == NULL)
		return;
	for (unsigned i = 0; i < bt->n_slots; i++)
		free(bt->ck[i].in);
	free(bt->ended);
	free(bt);
}

static struct bt_ckpt *find(const struct sl_barrier_tracker *bt, uint64_t id)
{
	for (unsigned i = 0; i < bt->n_slots; i++)
		if (bt->ck[i].id == id && id != 0)
			return (struct bt_ckpt *)&bt->ck[i];
	return NULL;
}

static void clear(struct sl_barrier_tracker *bt, struct bt_ckpt *c)
{
	struct bt_input *in = c->in;

	memset(in, 0, (bt->n + 1) * sizeof(*in));
	memset(c, 0, sizeof(*c));
	c->in = in;
}

/* The entry for `id`, created on its first event; NULL when stale. */
static struct bt_ckpt *get(struct sl_barrier_tracker *bt, uint64_t id,
			   uint64_t now)
{
	struct bt_ckpt *c = find(bt, id), *free_slot = NULL;

	if (c != NULL)
		return c;
	if (id <= bt->forgotten)
		return NULL;
	for (unsigned i = 0; i < BT_ABORTED_MAX; i++)
		if (bt->aborted[i] == id)
			return NULL;
	/* An unaligned checkpoint still in flight when a newer one arrives
	 * was aborted by the coordinator (one at a time): drop it.  Every
	 * older one is over, and its markers still queued behind data (an
	 * unaligned checkpoint completes without waiting for them) are
	 * stale: they must not start it again before the coordinator's
	 * notification forgets it. */
	if (bt->mode == SL_CKPT_UNALIGNED || bt->mode == SL_CKPT_ALIGNED_TIMEOUT) {
		for (unsigned i = 0; i < bt->n_slots; i++)
			if (bt->ck[i].id != 0 && bt->ck[i].id < id)
				clear(bt, &bt->ck[i]);
		if (id - 1 > bt->forgotten)
			bt->forgotten = id - 1;
	}
	for (unsigned i = 0; i < bt->n_slots && free_slot == NULL; i++)
		if (bt->ck[i].id == 0)
			free_slot = &bt->ck[i];
	if (free_slot == NULL) {
		/* more in flight than slots: the oldest is the one the
		 * coordinator gave up on */
		free_slot = &bt->ck[0];
		for (unsigned i = 1; i < bt->n_slots; i++)
			if (bt->ck[i].id < free_slot->id)
				free_slot = &bt->ck[i];
		clear(bt, free_slot);
	}
	free_slot->id = id;
	free_slot->first_ns = now;
	return free_slot;
}

void sl_bt_on_announce(struct sl_barrier_tracker *bt, unsigned in,
		       uint64_t id, uint64_t seq, uint64_t now_ns)
{
	struct bt_ckpt *c;

	if (in >= bt->n || (c = get(bt, id, now_ns)) == NULL)
		return;
	c->in[in].announced = true;
	c->in[in].seq = seq;
}

void sl_bt_on_marker(struct sl_barrier_tracker *bt, unsigned in, uint64_t id,
		     uint64_t now_ns)
{
	struct bt_ckpt *c;

	if (in >= bt->n || (c = get(bt, id, now_ns)) == NULL)
		return;
	c->in[in].marker = true;
}

void sl_bt_on_input_end(struct sl_barrier_tracker *bt, unsigned in)
{
	if (in < bt->n)
		bt->ended[in] = true;
}

static bool all_markers(const struct sl_barrier_tracker *bt,
			const struct bt_ckpt *c)
{
	for (unsigned i = 0; i < bt->n; i++)
		if (!c->in[i].marker && !bt->ended[i])
			return false;
	return true;
}

static bool any_barrier(const struct sl_barrier_tracker *bt,
			const struct bt_ckpt *c)
{
	for (unsigned i = 0; i < bt->n; i++)
		if (c->in[i].announced || c->in[i].marker)
			return true;
	return false;
}

struct sl_bt_decision sl_bt_next(struct sl_barrier_tracker *bt, uint64_t now_ns)
{
	struct sl_bt_decision d = { .action = SL_BT_NONE };
	struct bt_ckpt *c = NULL;

	/* the oldest undecided checkpoint; a newer one waits for it */
	for (unsigned i = 0; i < bt->n_slots; i++)
		if (bt->ck[i].id != 0 && !bt->ck[i].decided &&
		    (c == NULL || bt->ck[i].id < c->id))
			c = &bt->ck[i];
	if (c == NULL)
		return d;

	switch (bt->mode) {
	case SL_CKPT_UNALIGNED:
		if (any_barrier(bt, c) || all_markers(bt, c))
			c->unaligned = true, c->decided = true;
		break;
	case SL_CKPT_ALIGNED:
	case SL_CKPT_AT_LEAST_ONCE:
		if (all_markers(bt, c))
			c->decided = true;
		break;
	case SL_CKPT_ALIGNED_TIMEOUT:
		if (all_markers(bt, c)) {
			c->decided = true;
		} else if (now_ns - c->first_ns >= bt->timeout_ns) {
			c->decided = c->unaligned = c->switched = true;
		}
		break;
	}
	if (c->decided) {
		d.action = SL_BT_SNAPSHOT;
		d.id = c->id;
		d.unaligned = c->unaligned;
		d.switched = c->switched;
	}
	return d;
}

void sl_bt_snapshot_taken(struct sl_barrier_tracker *bt, uint64_t id,
			  const uint64_t *consumed, uint64_t now_ns)
{
	struct bt_ckpt *c = find(bt, id);

	if (c == NULL || !c->decided)
		return;
	c->taken = true;
	c->snap_ns = now_ns;
	for (unsigned i = 0; i < bt->n; i++)
		c->in[i].consumed = consumed ? consumed[i] : 0;
}

bool sl_bt_input_blocked(const struct sl_barrier_tracker *bt, unsigned in)
{
	if (bt->mode != SL_CKPT_ALIGNED && bt->mode != SL_CKPT_ALIGNED_TIMEOUT)
		return false;
	for (unsigned i = 0; i < bt->n_slots; i++) {
		const struct bt_ckpt *c = &bt->ck[i];
		/* aligning: an input that delivered its marker waits */
		if (c->id != 0 && !c->decided && c->in[in].marker)
			return true;
	}
	return false;
}

uint64_t sl_bt_persist(const struct sl_barrier_tracker *bt, unsigned in,
		       uint64_t seq)
{
	if (in >= bt->n || bt->ended[in])
		return 0;
	for (unsigned i = 0; i < bt->n_slots; i++) {
		const struct bt_ckpt *c = &bt->ck[i];
		const struct bt_input *x = &c->in[in];

		if (c->id == 0 || !c->taken || !c->unaligned || x->marker)
			continue;
		/* in flight: not processed at the snapshot, before the
		 * barrier (everything until the announcement says where),
		 * and not already persisted ahead of processing */
		if (seq >= x->consumed && (!x->announced || seq < x->seq) &&
		    !(x->ahead && seq >= x->ahead_from))
			return c->id;
	}
	return 0;
}

bool sl_bt_inputs_done(const struct sl_barrier_tracker *bt, uint64_t id)
{
	const struct bt_ckpt *c = find(bt, id);

	if (c == NULL || !c->taken)
		return false;
	if (!c->unaligned)
		return true;
	for (unsigned i = 0; i < bt->n; i++)
		if (!c->in[i].marker && !bt->ended[i] && !c->in[i].ahead)
			return false;
	return true;
}

bool sl_bt_needs_ahead(const struct sl_barrier_tracker *bt, uint64_t id,
		       unsigned in, uint64_t *seq)
{
	const struct bt_ckpt *c = find(bt, id);

	if (c == NULL || !c->taken || !c->unaligned || in >= bt->n)
		return false;
	const struct bt_input *x = &c->in[in];
	if (!x->announced || x->marker || x->ahead || bt->ended[in])
		return false;
	*seq = x->seq;
	return true;
}

void sl_bt_persisted_ahead(struct sl_barrier_tracker *bt, uint64_t id,
			   unsigned in, uint64_t from)
{
	struct bt_ckpt *c = find(bt, id);

	if (c == NULL || in >= bt->n)
		return;
	c->in[in].ahead = true;
	c->in[in].ahead_from = from;
}

void sl_bt_times(const struct sl_barrier_tracker *bt, uint64_t id,
		 uint64_t *first_barrier_ns, uint64_t *snapshot_ns)
{
	const struct bt_ckpt *c = find(bt, id);

	*first_barrier_ns = c ? c->first_ns : 0;
	*snapshot_ns = c ? c->snap_ns : 0;
}

void sl_bt_abort(struct sl_barrier_tracker *bt, uint64_t id)
{
	bool older_live = false;

	for (unsigned i = 0; i < bt->n_slots; i++) {
		if (bt->ck[i].id == id)
			clear(bt, &bt->ck[i]);
		else if (bt->ck[i].id != 0 && bt->ck[i].id < id)
			older_live = true;
	}
	if (id <= bt->forgotten)
		return;
	if (!older_live) {
		bt->forgotten = id;
		return;
	}
	bt->aborted[bt->n_aborted++ % BT_ABORTED_MAX] = id;
}

void sl_bt_forget(struct sl_barrier_tracker *bt, uint64_t id)
{
	for (unsigned i = 0; i < bt->n_slots; i++)
		if (bt->ck[i].id != 0 && bt->ck[i].id <= id)
			clear(bt, &bt->ck[i]);
	if (id > bt->forgotten)
		bt->forgotten = id;
}
