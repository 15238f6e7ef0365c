/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Keyed state: one hash table per key group, each a stable slab of
 * fixed-size entries plus an open-addressing index, with epoch-tagged
 * entries for O(1) asynchronous snapshots (copy-on-update). The layout and
 * the reasoning behind it are in docs/keyed-state.md.
 *
 * Entry (stride bytes, 8-aligned, at slab + idx * stride):
 *
 *     0  uint64_t hash        the caller's 64-bit key hash
 *     8  uint32_t epoch       epoch of creation / last modification;
 *                             0 marks a free slot (the live flag: epochs
 *                             of live entries start at 1)
 *    12  uint32_t snap_epoch  last snapshot whose copy-on-update emitted this
 *                             entry (the stepper marks nothing);
 *                             in a free slot, the free-list link
 *    16  key bytes            key_size
 *     …  value bytes          value_size, at val_off = align8(16 + key_size)
 *
 * The 16-byte header makes an 8-byte key + 8-byte value entry 32 bytes: two
 * per cache line, none straddling two.
 *
 * Index slot (uint64_t): tag << 32 | (entry index + 1); 0 is an empty slot.
 * tag = hi32(hash) ^ lo32(hash); the home slot is a Fibonacci hash of the
 * tag, so the index can be rebuilt from the index alone. Deletion uses
 * backward shift (no tombstones). Linear probing, load factor <= 1/2.
 * The index has one slot more than its size, always 0, so that the burst
 * upsert can read the slot after any home slot without wrapping; a key
 * group without entries points at a shared all-zero index of that shape.
 */
#include "sluice/keyed_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif
#define KS_ALWAYS_INLINE inline __attribute__((always_inline))

#define KS_HDR_SIZE 16u
#define KS_NONE UINT32_MAX
#define KS_INDEX_MIN_BITS 4u /* 16 slots */
#define KS_SLAB_MIN 16u
/* Slab indexes are stored +1 in 32 bits and the index needs
 * 4/3 slots per entry in at most 2^32 slots. */
#define KS_SLAB_MAX (1u << 31)
#define KS_FIB32 0x9E3779B1u
#define KS_SCAN_PER_EMIT 64u

struct __sl_kstate_entry {
	uint64_t hash;
	uint32_t epoch;      /* 0: free slot */
	uint32_t snap_epoch; /* free slot: next free slot or KS_NONE */
	/* key bytes, then value bytes at val_off */
};

_Static_assert(sizeof(struct __sl_kstate_entry) == KS_HDR_SIZE,
	       "entry header layout");

/* One record of the deletion log: header, then the key bytes. */
struct __sl_kstate_dlrec {
	uint64_t hash;
	uint32_t epoch;
	uint32_t pad;
};

_Static_assert(sizeof(struct __sl_kstate_dlrec) == 16, "dlog record layout");

struct __sl_kstate_kg {
	uint8_t *slab;        /* slab_cap entries of stride bytes */
	/* index_mask + 2 slots (the last one always 0); ks_no_index, with
	 * index_mask 0, until the first insert */
	uint64_t *index;
	uint32_t index_mask;
	uint32_t index_shift; /* 32 - log2(index size) */
	uint32_t grow_at;     /* live count above which the index grows */
	uint32_t live;        /* live entries == occupied index slots */
	uint32_t slab_used;   /* high-water mark: slots [0, slab_used) used */
	uint32_t slab_cap;
	uint32_t free_head;   /* KS_NONE if the free list is empty */
	/* slab_used as of the first bump allocation during snapshot
	 * snap_hw_epoch: slots at or above it did not exist when it began. */
	uint32_t snap_hw;
	uint32_t snap_hw_epoch;
	/* deletion log, records in non-decreasing epoch order */
	uint32_t dlog_len;
	uint32_t dlog_cap;
	uint8_t *dlog;
};

struct sl_kstate {
	/* hot, read on every operation */
	struct __sl_kstate_kg *kgs;
	uint32_t stride;
	uint32_t val_off;
	uint16_t kg_first;
	uint16_t kg_count;
	uint16_t key_size;
	uint16_t value_size;
	uint32_t epoch;       /* current epoch, stamped on modified entries */
	bool snap_active;
	bool track_deletes;
	uint64_t live_total;
	/* bumped whenever a slab moves (realloc): value pointers handed out
	 * before are stale; the burst upsert re-resolves them */
	uint32_t slab_moves;
	/* bytes of all indexes: past the caches, bursts prefetch them */
	size_t index_bytes;

	/* active snapshot */
	uint32_t snap_epoch;  /* entries with since < epoch <= snap_epoch */
	uint32_t snap_since;
	uint32_t snap_kg;     /* stepper cursor: key-group offset, slab index */
	uint32_t snap_pos;
	sl_kstate_emit_fn snap_emit;
	sl_kstate_emit_run_fn snap_emit_run; /* the stepper's, if set */
	void *snap_arg;

	uint32_t dl_stride;
};

/* The index of a key group without one: every lookup finds an empty home
 * slot (index_mask 0, index_shift 32: the home slot is 0), and the slot
 * after it is the trailing 0 slot. Never written. */
static uint64_t ks_no_index[2];

/* ---- small helpers --------------------------------------------------- */

static inline bool
__ks_has_index(const struct __sl_kstate_kg *t)
{
	return t->index_mask != 0;
}

static inline uint32_t
__ks_tag(uint64_t hash)
{
	return (uint32_t)(hash >> 32) ^ (uint32_t)hash;
}

static inline uint32_t
__ks_home(const struct __sl_kstate_kg *t, uint32_t tag)
{
	/* 64-bit shift: index_shift is 32 for ks_no_index */
	return (uint32_t)((uint64_t)(uint32_t)(tag * KS_FIB32) >> t->index_shift);
}

static inline struct __sl_kstate_entry *
__ks_entry(const struct sl_kstate *st, const struct __sl_kstate_kg *t,
	   uint32_t idx)
{
	return (struct __sl_kstate_entry *)(t->slab + (size_t)idx * st->stride);
}

static inline bool
__ks_live(const struct __sl_kstate_entry *e)
{
	return e->epoch != 0;
}

static inline uint8_t *
__ks_key(struct __sl_kstate_entry *e)
{
	return (uint8_t *)e + KS_HDR_SIZE;
}

static inline uint8_t *
__ks_val(const struct sl_kstate *st, struct __sl_kstate_entry *e)
{
	return (uint8_t *)e + st->val_off;
}

static inline struct __sl_kstate_kg *
__ks_kg(const struct sl_kstate *st, uint16_t kg)
{
	uint16_t off = (uint16_t)(kg - st->kg_first);

	if (unlikely(off >= st->kg_count))
		return NULL;
	return &st->kgs[off];
}

/* Key compare; the common sizes become a few loads. @a is 8-aligned (in the
 * slab), @b has any alignment. */
static inline bool
__ks_key_eq(const uint8_t *a, const uint8_t *b, uint16_t n)
{
	uint64_t x0, y0, x1, y1;
	uint32_t x, y;

	switch (n) {
	case 4:
		memcpy(&x, a, 4);
		memcpy(&y, b, 4);
		return x == y;
	case 8:
		memcpy(&x0, a, 8);
		memcpy(&y0, b, 8);
		return x0 == y0;
	case 16:
		memcpy(&x0, a, 8);
		memcpy(&y0, b, 8);
		memcpy(&x1, a + 8, 8);
		memcpy(&y1, b + 8, 8);
		return ((x0 ^ y0) | (x1 ^ y1)) == 0;
	default:
		return memcmp(a, b, n) == 0;
	}
}

/*
 * Probe for a key. Returns the index slot holding it, or, if absent,
 * KS_NONE with *empty set to the first empty slot of the probe sequence.
 * The table must have an index.
 */
static inline uint32_t
__ks_probe(const struct sl_kstate *st, const struct __sl_kstate_kg *t,
	   uint64_t hash, const void *key, uint32_t *empty)
{
	const uint32_t tag = __ks_tag(hash);
	uint32_t pos = __ks_home(t, tag);

	for (;;) {
		uint64_t s = t->index[pos];

		if (s == 0) {
			*empty = pos;
			return KS_NONE;
		}
		if ((uint32_t)(s >> 32) == tag) {
			struct __sl_kstate_entry *e =
				__ks_entry(st, t, (uint32_t)s - 1);

			if (likely(__ks_key_eq(__ks_key(e), key, st->key_size)))
				return pos;
		}
		pos = (pos + 1) & t->index_mask;
	}
}

/* ---- index ----------------------------------------------------------- */

static int
__ks_index_resize(struct sl_kstate *st, struct __sl_kstate_kg *t,
		  uint32_t bits)
{
	uint64_t size = (uint64_t)1 << bits;
	/* one more slot: the trailing 0 slot */
	uint64_t *ni = malloc((size + 1) * sizeof(*ni));
	struct __sl_kstate_kg nt = *t;

	if (ni == NULL)
		return -ENOMEM;
	/* Zeroed by writing, not calloc(): fresh pages of a calloc'ed index
	 * are read (probes) before they are written, so each maps the shared
	 * zero page first and faults again on the write, with a TLB
	 * shootdown to every CPU of the process. */
	memset(ni, 0, (size + 1) * sizeof(*ni));
	nt.index = ni;
	nt.index_mask = (uint32_t)(size - 1);
	nt.index_shift = 32 - bits;
	/* Home slots depend on the tag only: the rebuild reads the old index
	 * sequentially and never touches the slab. */
	if (__ks_has_index(t)) {
		for (uint64_t i = 0; i <= t->index_mask; i++) {
			uint64_t s = t->index[i];
			uint32_t pos;

			if (s == 0)
				continue;
			pos = __ks_home(&nt, (uint32_t)(s >> 32));
			while (ni[pos] != 0)
				pos = (pos + 1) & nt.index_mask;
			ni[pos] = s;
		}
		free(t->index);
		st->index_bytes -= ((size_t)t->index_mask + 2) * sizeof(*ni);
	}
	st->index_bytes += (size + 1) * sizeof(*ni);
	t->index = ni;
	t->index_mask = nt.index_mask;
	t->index_shift = nt.index_shift;
	/* load factor <= 1/2: the burst upsert guesses from the first two
	 * slots of a probe, which then hold ~96% of the keys */
	t->grow_at = (uint32_t)(size / 2);
	return 0;
}

/* Remove index slot @pos by shifting later members of its cluster back. */
static void
__ks_index_remove(struct __sl_kstate_kg *t, uint32_t pos)
{
	uint32_t hole = pos;
	uint32_t j = pos;

	for (;;) {
		uint64_t s;
		uint32_t home;

		j = (j + 1) & t->index_mask;
		s = t->index[j];
		if (s == 0)
			break;
		home = __ks_home(t, (uint32_t)(s >> 32));
		/* s may fill the hole iff its home is not cyclically within
		 * (hole, j], i.e. the hole lies on its probe path. */
		if (((j - home) & t->index_mask) >= ((j - hole) & t->index_mask)) {
			t->index[hole] = s;
			hole = j;
		}
	}
	t->index[hole] = 0;
}

/* ---- slab ------------------------------------------------------------ */

static uint32_t
__ks_slab_alloc(struct sl_kstate *st, struct __sl_kstate_kg *t)
{
	uint32_t idx = t->free_head;

	if (idx != KS_NONE) {
		t->free_head = __ks_entry(st, t, idx)->snap_epoch;
		return idx;
	}
	if (t->slab_used == t->slab_cap) {
		uint32_t ncap;
		uint8_t *ns;

		if (t->slab_cap >= KS_SLAB_MAX)
			return KS_NONE;
		ncap = t->slab_cap ? t->slab_cap * 2 : KS_SLAB_MIN;
		ns = realloc(t->slab, (size_t)ncap * st->stride);
		if (ns == NULL)
			return KS_NONE;
		if (ns != t->slab)
			st->slab_moves++;
		t->slab = ns;
		t->slab_cap = ncap;
	}
	/* Remember where the slab ended when the active snapshot began: the
	 * stepper need not look at slots appended afterwards. */
	if (st->snap_active && t->snap_hw_epoch != st->snap_epoch) {
		t->snap_hw = t->slab_used;
		t->snap_hw_epoch = st->snap_epoch;
	}
	return t->slab_used++;
}

static void
__ks_slab_release(struct sl_kstate *st, struct __sl_kstate_kg *t, uint32_t idx)
{
	struct __sl_kstate_entry *e = __ks_entry(st, t, idx);

	e->epoch = 0;
	e->snap_epoch = t->free_head;
	t->free_head = idx;
}

/* ---- snapshot helpers ------------------------------------------------ */

/* Does entry @e still owe the active snapshot an emit? */
static inline bool
__ks_snap_pending(const struct sl_kstate *st,
		  const struct __sl_kstate_entry *e)
{
	return e->epoch <= st->snap_epoch && e->epoch > st->snap_since &&
	       e->snap_epoch != st->snap_epoch;
}

/*
 * Has the stepper's cursor passed entry @e of key group @kg?  The stepper
 * does not mark what it emits (it only reads the state, so a snapshot does
 * not dirty every cache line of it): an entry behind the cursor was
 * emitted by it, or by copy-on-update before.  Slab positions are stable.
 */
static inline bool
__ks_snap_passed(const struct sl_kstate *st, uint16_t kg,
		 const struct __sl_kstate_entry *e)
{
	uint32_t off = (uint32_t)(kg - st->kg_first);

	if (off != st->snap_kg)
		return off < st->snap_kg;
	return (const uint8_t *)e <
	       st->kgs[off].slab + (size_t)st->snap_pos * st->stride;
}

static inline void
__ks_snap_emit(struct sl_kstate *st, uint16_t kg, struct __sl_kstate_entry *e)
{
	e->snap_epoch = st->snap_epoch;
	st->snap_emit(st->snap_arg, kg, e->hash, __ks_key(e), __ks_val(st, e));
}

/* Copy-on-update: emit the old contents before the first write, unless
 * the stepper already did. */
static inline void
__ks_before_write(struct sl_kstate *st, uint16_t kg,
		  struct __sl_kstate_entry *e)
{
	if (unlikely(st->snap_active) && __ks_snap_pending(st, e) &&
	    !__ks_snap_passed(st, kg, e))
		__ks_snap_emit(st, kg, e);
}

/* ---- public API ------------------------------------------------------ */

struct sl_kstate *
sl_kstate_create(uint16_t kg_first, uint16_t kg_count, uint16_t key_size,
		 uint16_t value_size)
{
	struct sl_kstate *st;

	if (kg_count == 0 || (uint32_t)kg_first + kg_count > 65536u ||
	    key_size == 0 || key_size > SL_KSTATE_KEY_MAX ||
	    value_size > SL_KSTATE_VALUE_MAX) {
		errno = EINVAL;
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto nomem;
	st->kgs = calloc(kg_count, sizeof(*st->kgs));
	if (st->kgs == NULL)
		goto nomem;
	for (uint32_t i = 0; i < kg_count; i++) {
		st->kgs[i].free_head = KS_NONE;
		st->kgs[i].index = ks_no_index;
		st->kgs[i].index_shift = 32;
	}
	st->kg_first = kg_first;
	st->kg_count = kg_count;
	st->key_size = key_size;
	st->value_size = value_size;
	st->val_off = (KS_HDR_SIZE + key_size + 7u) & ~7u;
	st->stride = (st->val_off + value_size + 7u) & ~7u;
	st->dl_stride = (uint32_t)((sizeof(struct __sl_kstate_dlrec) + key_size +
				    7u) & ~7u);
	/* snap_epoch 0 in an entry means "never emitted", so epochs start
	 * at 1. */
	st->epoch = 1;
	return st;
nomem:
	free(st);
	errno = ENOMEM;
	return NULL;
}

void
sl_kstate_free(struct sl_kstate *st)
{
	if (st == NULL)
		return;
	for (uint32_t i = 0; i < st->kg_count; i++) {
		free(st->kgs[i].slab);
		if (__ks_has_index(&st->kgs[i]))
			free(st->kgs[i].index);
		free(st->kgs[i].dlog);
	}
	free(st->kgs);
	free(st);
}

/*
 * Find or insert the entry of a key in key group @kg (table @t); the write
 * half of sl_kstate_upsert(): copy-on-update, then stamp the epoch.
 * Returns the slab index, or KS_NONE with errno = ENOMEM.
 */
static inline uint32_t
__ks_upsert_idx(struct sl_kstate *st, struct __sl_kstate_kg *t, uint16_t kg,
		uint64_t hash, const void *key, bool *created)
{
	struct __sl_kstate_entry *e;
	uint32_t pos, empty = 0, idx;

	pos = __ks_probe(st, t, hash, key, &empty);
	if (likely(pos != KS_NONE)) {
		idx = (uint32_t)t->index[pos] - 1;
		e = __ks_entry(st, t, idx);
		__ks_before_write(st, kg, e);
		e->epoch = st->epoch;
		*created = false;
		return idx;
	}

	/* Insert. Grow the index first: should the slab allocation fail
	 * afterwards, a larger index is harmless. */
	if (unlikely(!__ks_has_index(t) || t->live >= t->grow_at)) {
		uint32_t bits = __ks_has_index(t) ? 33 - t->index_shift
						  : KS_INDEX_MIN_BITS;

		if (bits > 32 || __ks_index_resize(st, t, bits) != 0) {
			errno = ENOMEM;
			return KS_NONE;
		}
		pos = __ks_home(t, __ks_tag(hash));
		while (t->index[pos] != 0)
			pos = (pos + 1) & t->index_mask;
		empty = pos;
	}
	idx = __ks_slab_alloc(st, t);
	if (unlikely(idx == KS_NONE)) {
		errno = ENOMEM;
		return KS_NONE;
	}
	t->index[empty] = (uint64_t)__ks_tag(hash) << 32 | (idx + 1u);
	t->live++;
	st->live_total++;

	e = __ks_entry(st, t, idx);
	e->hash = hash;
	/* A (re)used slot is stamped with the current epoch, which is after
	 * any active snapshot: the stepper skips it. */
	e->epoch = st->epoch;
	e->snap_epoch = 0;
	memcpy(__ks_key(e), key, st->key_size);
	memset(__ks_val(st, e), 0, st->stride - st->val_off);
	*created = true;
	return idx;
}

void *
sl_kstate_upsert(struct sl_kstate *st, uint16_t kg, uint64_t hash,
		 const void *key, bool *created)
{
	struct __sl_kstate_kg *t = __ks_kg(st, kg);
	uint32_t idx;
	bool c;

	if (unlikely(t == NULL)) {
		errno = ERANGE;
		return NULL;
	}
	idx = __ks_upsert_idx(st, t, kg, hash, key, &c);
	if (unlikely(idx == KS_NONE))
		return NULL;
	if (created != NULL)
		*created = c;
	return __ks_val(st, __ks_entry(st, t, idx));
}

/*
 * Above this many bytes of index (over all key groups) the burst upsert
 * prefetches the home slots of a whole burst before reading any: the index
 * no longer stays in the L1/L2 caches. Below it, that pass would only cost
 * instructions.
 */
#define KS_PREFETCH_INDEX_BYTES (64u << 10)

/*
 * The keys of a burst that pass 3 found absent (or repeats of such a key
 * within the burst), in burst order: upserted one by one (a repeat finds
 * the entry its first occurrence inserted). Their key groups are in range (checked by
 * the caller). Returns the number of burst keys done: @ok, or the position
 * of the first key that failed (errno code in *err).
 */
static unsigned int
__ks_upsert_slow(struct sl_kstate *st, unsigned int n_slow,
		 const uint16_t *slow, unsigned int ok, const uint16_t *kgs,
		 const uint64_t *hashes, const uint8_t *keys,
		 size_t key_stride, uint32_t *cand, void **values,
		 bool *created, int *err)
{
	for (unsigned int j = 0; j < n_slow; j++) {
		const unsigned int i = slow[j];
		struct __sl_kstate_kg *t = __ks_kg(st, kgs[i]);
		uint32_t idx;
		bool c;

		idx = __ks_upsert_idx(st, t, kgs[i], hashes[i],
				      keys + i * key_stride, &c);
		if (unlikely(idx == KS_NONE)) {
			*err = ENOMEM;
			return i;
		}
		cand[i] = idx;
		values[i] = __ks_val(st, __ks_entry(st, t, idx));
		if (created != NULL)
			created[i] = c;
	}
	return ok;
}

/*
 * Slab index of an existing key by a plain walk of its probe sequence, for
 * the burst upsert's keys that were not where it guessed; KS_NONE if the
 * key is absent.
 */
static KS_ALWAYS_INLINE uint32_t
__ks_find(const struct __sl_kstate_kg *t, uint32_t tag, const uint8_t *key,
	  const uint16_t ks, const size_t stride)
{
	uint32_t pos = __ks_home(t, tag);
	uint64_t s;

	for (; (s = t->index[pos]) != 0; pos = (pos + 1) & t->index_mask)
		if ((uint32_t)(s >> 32) == tag &&
		    __ks_key_eq(t->slab + (size_t)((uint32_t)s - 1) * stride +
					KS_HDR_SIZE,
				key, ks))
			return (uint32_t)s - 1;
	return KS_NONE;
}

/*
 * Pass 2 of the burst upsert for one key: guess its slab index from the
 * first two slots of its probe sequence (@slot: its home slot; the slot
 * after it needs no wrap, see the index layout), without branches, and
 * prefetch the guessed entry. @want is the key's tag << 32. *ent holds the
 * key group's slab base on entry and the guessed entry's address on
 * return; *cand the guessed slab index, KS_NONE for none.
 *
 * slot ^ want is the slot's slab index + 1 (< 2^32) when the slot has the
 * key's tag and at least 2^32 otherwise, so the smaller of the two is the
 * slot with the tag if one has it (if both do, either; the key compare
 * decides). If neither has it, the guess is whatever occupied slot came
 * out smaller, or none (low half 0) for an empty one: a wrong guess is
 * only ever an existing entry of the key group, whose key compare fails.
 */
static KS_ALWAYS_INLINE void
__ks_guess(const uint64_t *slot, uint64_t want, size_t stride,
	   uint32_t *cand, uintptr_t *ent)
{
	const uint64_t x0 = slot[0] ^ want;
	const uint64_t x1 = slot[1] ^ want;
	/* min(x0, x1) with a mask: the compiler turns x0 < x1 ? x0 : x1
	 * into a branch here, mispredicted for every key in the second slot */
	const uint64_t m = -(uint64_t)(x0 < x1);
	const uint32_t c = (uint32_t)(x1 ^ ((x0 ^ x1) & m)) - 1;

	*cand = c;
	/* for none, an address that is only prefetched (which never faults),
	 * never dereferenced */
	*ent += (uintptr_t)c * stride;
	__builtin_prefetch((const void *)*ent);
}

/*
 * The burst upsert for one key size and entry stride (constants after
 * inlining for the common shapes, so key compares are a few loads and
 * entry addresses a shift). The two dependent cache misses of each key
 * (index slot, then entry) overlap with those of the other keys instead of
 * being paid one after the other, and no branch depends on a load that
 * may miss the cache (a mispredicted one throws away every load issued
 * after it, which is most of the cost of a plain probe loop):
 *
 *  0. the key groups of the burst are range-checked up front;
 *  1. the key group, tag and home slot of every key; for an index larger
 *     than the caches, prefetch the home slots;
 *  2. guess each key's slab index from the first two slots of its probe
 *     sequence, without branches (__ks_guess()), and prefetch that entry.
 *     At load factor <= 1/2 the two slots hold ~96% of the keys. The
 *     second slot is read without wrapping around (the trailing 0 slot
 *     follows the last one), so a key whose home is the last slot and
 *     which sits in slot 0 is simply not guessed;
 *  3. in burst order: if the guessed entry holds the key (the usual case),
 *     copy-on-update and stamp it like sl_kstate_upsert() (and, for
 *     @count, increment its counter); else walk the key's probe sequence
 *     (__ks_find()), and if the key is absent, defer it;
 *  4. the deferred keys (found absent in pass 3, or repeats of such a key
 *     within the burst), in burst order, by the scalar path: probe again,
 *     insert (__ks_upsert_slow()).
 *
 * A guess is trusted only after its key compared equal, so a guess from a
 * slot that is not on the probe sequence (the second one when the first is
 * empty) or of another key is harmless, and so is the address computed for
 * "no guess", which is only prefetched. Pass 3 stores into an entry only
 * when its epoch changes (the first upsert after a snapshot began) or to
 * count, so in the steady state its key compares rarely wait behind stores
 * to entries. Only pass 4 inserts, so the entry addresses of pass 2 are
 * valid in pass 3; deferring changes no result: the keys found in pass 3
 * already exist, and a key's occurrences are either all found or all
 * deferred (absent until pass 4).
 *
 * Slab indexes stay valid across inserts (index growth and slab realloc
 * included; nothing is deleted during a burst): if an insert moved a slab,
 * all value pointers are resolved again from them at the end.
 */
static KS_ALWAYS_INLINE unsigned int
__ks_upsert_burst(struct sl_kstate *st, unsigned int n, const uint16_t *kgs,
		  const uint64_t *hashes, const uint8_t *keys,
		  size_t key_stride, void **values, bool *created,
		  const uint16_t ks, const size_t stride, const bool count)
{
	const uint64_t *slot[SL_KSTATE_BURST_MAX];
	uintptr_t ent[SL_KSTATE_BURST_MAX];
	uint64_t want[SL_KSTATE_BURST_MAX];
	uint32_t cand[SL_KSTATE_BURST_MAX];
	uint16_t slow[SL_KSTATE_BURST_MAX];
	unsigned int n_slow = 0;
	const bool pf_index = st->index_bytes > KS_PREFETCH_INDEX_BYTES;
	const uint32_t moves0 = st->slab_moves;
	/* constant during the burst (emit callbacks must not call into the
	 * state); locals, so stores into entries cannot force reloads */
	struct __sl_kstate_kg *const kgt = st->kgs;
	const uint16_t kg_first = st->kg_first;
	const uint16_t kg_count = st->kg_count;
	const uint32_t val_off = st->val_off;
	const uint32_t epoch = st->epoch;
	const bool snap_active = st->snap_active;
	const uint8_t *key;
	unsigned int i, ok = n;
	uint32_t bad = 0;
	int err = 0;

	if (created != NULL)
		memset(created, 0, n * sizeof(*created));
	/* key-group range check of the whole burst first (vectorized), so
	 * that the passes below have no exit */
	for (i = 0; i < n; i++)
		bad |= (uint16_t)(kgs[i] - kg_first) >= kg_count;
	if (unlikely(bad)) {
		for (ok = 0; (uint16_t)(kgs[ok] - kg_first) < kg_count; ok++)
			;
		err = ERANGE; /* the keys before it are still done */
	}
	/* (unrolled: loop overhead is a fair share of these short bodies) */
	if (pf_index) {
#pragma GCC unroll 4
		for (i = 0; i < ok; i++) {
			const struct __sl_kstate_kg *t =
				&kgt[(uint16_t)(kgs[i] - kg_first)];
			const uint32_t tag = __ks_tag(hashes[i]);

			want[i] = (uint64_t)tag << 32;
			slot[i] = t->index + __ks_home(t, tag);
			/* the slab base, for pass 2 */
			ent[i] = (uintptr_t)t->slab;
			__builtin_prefetch(slot[i]);
		}
#pragma GCC unroll 4
		for (i = 0; i < ok; i++)
			__ks_guess(slot[i], want[i], stride, &cand[i], &ent[i]);
	} else {
		/* passes 1 and 2 in one: the index is in the caches */
		for (i = 0; i < ok; i++) {
			const struct __sl_kstate_kg *t =
				&kgt[(uint16_t)(kgs[i] - kg_first)];
			const uint32_t tag = __ks_tag(hashes[i]);

			ent[i] = (uintptr_t)t->slab;
			__ks_guess(t->index + __ks_home(t, tag),
				   (uint64_t)tag << 32, stride, &cand[i],
				   &ent[i]);
		}
	}
	/* No insert happens before the loop below ends (the slow keys are
	 * deferred), so the entry addresses of pass 2 are still valid. */
#pragma GCC unroll 4
	for (i = 0, key = keys; i < ok; i++, key += key_stride) {
		struct __sl_kstate_entry *e =
			(struct __sl_kstate_entry *)ent[i];

		if (unlikely(cand[i] == KS_NONE ||
			     !__ks_key_eq(__ks_key(e), key, ks))) {
			/* not where guessed: further along its probe (the
			 * index and the entries are near by now) or absent */
			const struct __sl_kstate_kg *t =
				&kgt[(uint16_t)(kgs[i] - kg_first)];
			const uint32_t idx = __ks_find(t, __ks_tag(hashes[i]),
						       key, ks, stride);

			if (idx == KS_NONE) {
				slow[n_slow++] = (uint16_t)i;
				continue;
			}
			cand[i] = idx;
			e = (struct __sl_kstate_entry *)(t->slab +
							 (size_t)idx * stride);
		}
		if (unlikely(e->epoch != epoch)) {
			/* an entry owing the snapshot an emit has an epoch
			 * before the current one */
			if (snap_active && __ks_snap_pending(st, e) &&
			    !__ks_snap_passed(st, kgs[i], e))
				__ks_snap_emit(st, kgs[i], e);
			e->epoch = epoch;
		}
		if (count)
			++*(uint64_t *)((uint8_t *)e + val_off);
		else
			values[i] = (uint8_t *)e + val_off;
	}
	if (unlikely(n_slow > 0))
		ok = __ks_upsert_slow(st, n_slow, slow, ok, kgs, hashes, keys,
				      key_stride, cand, values, created, &err);
	if (unlikely(st->slab_moves != moves0))
		for (i = 0; i < ok; i++) {
			const struct __sl_kstate_kg *t =
				&kgt[(uint16_t)(kgs[i] - kg_first)];

			values[i] = __ks_val(st, __ks_entry(st, t, cand[i]));
		}
	/* the deferred keys count once all inserts are done (counts commute) */
	if (count)
		for (unsigned int j = 0; j < n_slow && slow[j] < ok; j++)
			++*(uint64_t *)values[slow[j]];
	if (unlikely(ok < n))
		errno = err;
	return ok;
}

/* The burst upsert with constant key size (and for an 8-byte key with an
 * 8-byte value, as a count or a single aggregate has, constant stride). */
static KS_ALWAYS_INLINE unsigned int
__ks_burst(struct sl_kstate *st, unsigned int n, const uint16_t *kgs,
	   const uint64_t *hashes, const uint8_t *k, size_t key_stride,
	   void **values, bool *created, const bool count)
{
	switch (st->key_size) {
	case 4:
		return __ks_upsert_burst(st, n, kgs, hashes, k, key_stride,
					 values, created, 4, st->stride, count);
	case 8:
		if (st->stride == 32)
			return __ks_upsert_burst(st, n, kgs, hashes, k,
						 key_stride, values, created,
						 8, 32, count);
		return __ks_upsert_burst(st, n, kgs, hashes, k, key_stride,
					 values, created, 8, st->stride,
					 count);
	case 16:
		return __ks_upsert_burst(st, n, kgs, hashes, k, key_stride,
					 values, created, 16, st->stride,
					 count);
	default:
		return __ks_upsert_burst(st, n, kgs, hashes, k, key_stride,
					 values, created, st->key_size,
					 st->stride, count);
	}
}

unsigned int
sl_kstate_upsert_burst(struct sl_kstate *st, unsigned int n,
		       const uint16_t *kgs, const uint64_t *hashes,
		       const void *keys, size_t key_stride, void **values,
		       bool *created)
{
	if (unlikely(n > SL_KSTATE_BURST_MAX)) {
		errno = EINVAL;
		return 0;
	}
	return __ks_burst(st, n, kgs, hashes, keys, key_stride, values,
			  created, false);
}

unsigned int
sl_kstate_count_burst(struct sl_kstate *st, unsigned int n,
		      const uint16_t *kgs, const uint64_t *hashes,
		      const void *keys, size_t key_stride)
{
	void *values[SL_KSTATE_BURST_MAX];

	if (unlikely(n > SL_KSTATE_BURST_MAX || st->value_size < 8)) {
		errno = EINVAL;
		return 0;
	}
	return __ks_burst(st, n, kgs, hashes, keys, key_stride, values, NULL,
			  true);
}

const void *
sl_kstate_get(const struct sl_kstate *st, uint16_t kg, uint64_t hash,
	      const void *key)
{
	const struct __sl_kstate_kg *t = __ks_kg(st, kg);
	uint32_t pos, empty;

	if (unlikely(t == NULL)) {
		errno = ERANGE;
		return NULL;
	}
	pos = __ks_probe(st, t, hash, key, &empty);
	if (pos == KS_NONE)
		return NULL;
	return __ks_val(st, __ks_entry(st, t, (uint32_t)t->index[pos] - 1));
}

static int
__ks_dlog_append(struct sl_kstate *st, struct __sl_kstate_kg *t,
		 const struct __sl_kstate_entry *e)
{
	struct __sl_kstate_dlrec *r;

	if (t->dlog_len == t->dlog_cap) {
		uint32_t ncap = t->dlog_cap ? t->dlog_cap * 2 : 16;
		uint8_t *nl;

		if (t->dlog_cap >= (1u << 30))
			return -ENOMEM;
		nl = realloc(t->dlog, (size_t)ncap * st->dl_stride);
		if (nl == NULL)
			return -ENOMEM;
		t->dlog = nl;
		t->dlog_cap = ncap;
	}
	r = (struct __sl_kstate_dlrec *)(t->dlog +
					 (size_t)t->dlog_len * st->dl_stride);
	r->hash = e->hash;
	r->epoch = st->epoch;
	r->pad = 0;
	memcpy(r + 1, (const uint8_t *)e + KS_HDR_SIZE, st->key_size);
	t->dlog_len++;
	return 0;
}

int
sl_kstate_delete(struct sl_kstate *st, uint16_t kg, uint64_t hash,
		 const void *key)
{
	struct __sl_kstate_kg *t = __ks_kg(st, kg);
	struct __sl_kstate_entry *e;
	uint32_t pos, empty, idx;

	if (unlikely(t == NULL))
		return -ERANGE;
	pos = __ks_probe(st, t, hash, key, &empty);
	if (pos == KS_NONE)
		return -ENOENT;
	idx = (uint32_t)t->index[pos] - 1;
	e = __ks_entry(st, t, idx);
	if (st->track_deletes) {
		int rc = __ks_dlog_append(st, t, e);

		if (rc != 0)
			return rc;
	}
	__ks_before_write(st, kg, e);
	__ks_index_remove(t, pos);
	__ks_slab_release(st, t, idx);
	t->live--;
	st->live_total--;
	return 0;
}

void
sl_kstate_prefetch_burst(const struct sl_kstate *st, unsigned int n,
			 const uint16_t *kgs, const uint64_t *hashes)
{
	for (unsigned int i = 0; i < n; i++) {
		const struct __sl_kstate_kg *t = __ks_kg(st, kgs[i]);

		if (t != NULL)
			__builtin_prefetch(
				&t->index[__ks_home(t, __ks_tag(hashes[i]))]);
	}
	/* Second pass: the index lines requested above are arriving; the
	 * entry of the first tag match among the first two probe slots (as
	 * the burst upsert guesses it, without branches on the slots). */
	for (unsigned int i = 0; i < n; i++) {
		const struct __sl_kstate_kg *t = __ks_kg(st, kgs[i]);
		uint32_t tag, pos, c = KS_NONE;
		uint64_t s0, s1;

		if (t == NULL)
			continue;
		tag = __ks_tag(hashes[i]);
		pos = __ks_home(t, tag);
		s0 = t->index[pos];
		s1 = t->index[pos + 1]; /* the trailing 0 slot after the last */
		c = (uint32_t)(s1 >> 32) == tag ? (uint32_t)s1 - 1 : c;
		c = (uint32_t)(s0 >> 32) == tag ? (uint32_t)s0 - 1 : c;
		if (c != KS_NONE)
			__builtin_prefetch(__ks_entry(st, t, c));
	}
}

uint64_t
sl_kstate_count(const struct sl_kstate *st)
{
	return st->live_total;
}

uint64_t
sl_kstate_kg_count(const struct sl_kstate *st, uint16_t kg)
{
	const struct __sl_kstate_kg *t = __ks_kg(st, kg);

	return t ? t->live : 0;
}

size_t
sl_kstate_memory(const struct sl_kstate *st)
{
	size_t sz = sizeof(*st) + (size_t)st->kg_count * sizeof(*st->kgs);

	for (uint32_t i = 0; i < st->kg_count; i++) {
		const struct __sl_kstate_kg *t = &st->kgs[i];

		sz += (size_t)t->slab_cap * st->stride;
		if (__ks_has_index(t))
			sz += ((size_t)t->index_mask + 2) * sizeof(uint64_t);
		sz += (size_t)t->dlog_cap * st->dl_stride;
	}
	return sz;
}

int
sl_kstate_foreach(const struct sl_kstate *st, uint16_t kg,
		  sl_kstate_foreach_fn fn, void *arg)
{
	const struct __sl_kstate_kg *t = __ks_kg(st, kg);

	if (t == NULL)
		return -ERANGE;
	for (uint32_t i = 0; i < t->slab_used; i++) {
		struct __sl_kstate_entry *e = __ks_entry(st, t, i);
		int rc;

		if (!__ks_live(e))
			continue;
		rc = fn(__ks_key(e), __ks_val(st, e), e->hash, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

uint32_t
sl_kstate_epoch(const struct sl_kstate *st)
{
	return st->epoch;
}

int
sl_kstate_snapshot_begin_since(struct sl_kstate *st, uint32_t since_epoch,
			       sl_kstate_emit_fn emit, void *arg,
			       uint32_t *epoch_out)
{
	if (st->snap_active)
		return -EBUSY;
	if (emit == NULL || since_epoch >= st->epoch)
		return -EINVAL;
	if (st->epoch == UINT32_MAX)
		return -EOVERFLOW;
	/* The whole cut: everything stamped <= snap_epoch belongs to the
	 * snapshot, everything written from now on is stamped later. */
	st->snap_epoch = st->epoch++;
	st->snap_since = since_epoch;
	st->snap_kg = 0;
	st->snap_pos = 0;
	st->snap_emit = emit;
	st->snap_emit_run = NULL;
	st->snap_arg = arg;
	st->snap_active = true;
	if (epoch_out != NULL)
		*epoch_out = st->snap_epoch;
	return 0;
}

int
sl_kstate_snapshot_begin(struct sl_kstate *st, sl_kstate_emit_fn emit,
			 void *arg, uint32_t *epoch_out)
{
	return sl_kstate_snapshot_begin_since(st, 0, emit, arg, epoch_out);
}

int
sl_kstate_snapshot_emit_runs(struct sl_kstate *st, sl_kstate_emit_run_fn run)
{
	if (!st->snap_active)
		return -EINVAL;
	st->snap_emit_run = run;
	return 0;
}

static void
__ks_snap_end(struct sl_kstate *st)
{
	st->snap_active = false;
	st->snap_emit = NULL;
	st->snap_emit_run = NULL;
	st->snap_arg = NULL;
}

/*
 * The stepper's walk, shared by both emit styles: RUNS (a compile-time
 * constant in each instance) collects the entries into runs for
 * snap_emit_run, handed over when full and before returning; the bytes
 * they point to stay put meanwhile (nothing else touches the state).
 */
static KS_ALWAYS_INLINE size_t
__ks_snap_walk(struct sl_kstate *st, size_t budget, const bool RUNS)
{
	struct sl_kstate_snap_entry run[SL_KSTATE_SNAP_RUN_MAX];
	size_t emitted = 0, scanned = 0, scan_cap;
	unsigned int n = 0;

	scan_cap = budget > SIZE_MAX / KS_SCAN_PER_EMIT
			   ? SIZE_MAX
			   : budget * KS_SCAN_PER_EMIT;

	while (st->snap_kg < st->kg_count) {
		struct __sl_kstate_kg *t = &st->kgs[st->snap_kg];
		uint16_t kg = (uint16_t)(st->kg_first + st->snap_kg);
		uint32_t end = t->snap_hw_epoch == st->snap_epoch ? t->snap_hw
								  : t->slab_used;

		while (st->snap_pos < end) {
			struct __sl_kstate_entry *e =
				__ks_entry(st, t, st->snap_pos);

			if (emitted == budget ||
			    (emitted > 0 && scanned >= scan_cap)) {
				if (RUNS && n > 0)
					st->snap_emit_run(st->snap_arg, run, n);
				return emitted;
			}
			st->snap_pos++;
			scanned++;
			if (!__ks_live(e) || !__ks_snap_pending(st, e))
				continue;
			emitted++;
			if (!RUNS) {
				st->snap_emit(st->snap_arg, kg, e->hash,
					      __ks_key(e), __ks_val(st, e));
				continue;
			}
			/* no mark: the cursor has passed it (__ks_snap_passed) */
			run[n].hash = e->hash;
			run[n].key = __ks_key(e);
			run[n].value = __ks_val(st, e);
			run[n].kg = kg;
			if (++n == SL_KSTATE_SNAP_RUN_MAX) {
				st->snap_emit_run(st->snap_arg, run, n);
				n = 0;
			}
		}
		st->snap_kg++;
		st->snap_pos = 0;
	}
	if (RUNS && n > 0)
		st->snap_emit_run(st->snap_arg, run, n);
	__ks_snap_end(st);
	return emitted;
}

size_t
sl_kstate_snapshot_step(struct sl_kstate *st, size_t budget)
{
	if (!st->snap_active)
		return 0;
	if (budget == 0)
		budget = 1;
	return st->snap_emit_run != NULL ? __ks_snap_walk(st, budget, true)
					 : __ks_snap_walk(st, budget, false);
}

bool
sl_kstate_snapshot_active(const struct sl_kstate *st)
{
	return st->snap_active;
}

void
sl_kstate_snapshot_abort(struct sl_kstate *st)
{
	__ks_snap_end(st);
}

void
sl_kstate_track_deletes(struct sl_kstate *st, bool on)
{
	if (!on) {
		for (uint32_t i = 0; i < st->kg_count; i++) {
			free(st->kgs[i].dlog);
			st->kgs[i].dlog = NULL;
			st->kgs[i].dlog_len = 0;
			st->kgs[i].dlog_cap = 0;
		}
	}
	st->track_deletes = on;
}

/* First record of @t with epoch > @epoch (records are epoch-ordered). */
static uint32_t
__ks_dlog_after(const struct sl_kstate *st, const struct __sl_kstate_kg *t,
		uint32_t epoch)
{
	uint32_t lo = 0, hi = t->dlog_len;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct __sl_kstate_dlrec *r =
			(const void *)(t->dlog + (size_t)mid * st->dl_stride);

		if (r->epoch <= epoch)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
sl_kstate_deleted_since(const struct sl_kstate *st, uint16_t kg,
			uint32_t since_epoch, uint32_t upto_epoch,
			sl_kstate_deleted_fn fn, void *arg)
{
	const struct __sl_kstate_kg *t = __ks_kg(st, kg);

	if (t == NULL)
		return -ERANGE;
	if (!st->track_deletes)
		return -ENOTSUP;
	for (uint32_t i = __ks_dlog_after(st, t, since_epoch); i < t->dlog_len;
	     i++) {
		const struct __sl_kstate_dlrec *r =
			(const void *)(t->dlog + (size_t)i * st->dl_stride);
		int rc;

		if (r->epoch > upto_epoch)
			break;
		rc = fn(arg, kg, r->hash, r + 1, r->epoch);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void
sl_kstate_deleted_trim(struct sl_kstate *st, uint32_t upto_epoch)
{
	for (uint32_t i = 0; i < st->kg_count; i++) {
		struct __sl_kstate_kg *t = &st->kgs[i];
		uint32_t n = __ks_dlog_after(st, t, upto_epoch);

		if (n == 0)
			continue;
		memmove(t->dlog, t->dlog + (size_t)n * st->dl_stride,
			(size_t)(t->dlog_len - n) * st->dl_stride);
		t->dlog_len -= n;
		/* Give the memory back when the log runs empty. */
		if (t->dlog_len == 0) {
			free(t->dlog);
			t->dlog = NULL;
			t->dlog_cap = 0;
		}
	}
}

/* ---- bulk loading (restore) ------------------------------------------
 *
 * A restore fills empty key groups from a full keyed-state file, whose
 * summary says how many entries each key group gets and which lists every
 * key once: sl_kstate_reserve() sizes a key group's slab and index for its
 * count up front (no slab doubling, no index rehash while loading), the
 * entries are appended to the slabs (sl_kstate_append_burst()) and then
 * indexed in index order (sl_kstate_index_appended()), with a key compare
 * only where a slot on the way has the key's tag (so that a file listing a
 * key twice is still refused).
 */

int
sl_kstate_reserve(struct sl_kstate *st, uint16_t kg, uint64_t n)
{
	struct __sl_kstate_kg *t = __ks_kg(st, kg);
	uint64_t live, slots;
	uint32_t bits = KS_INDEX_MIN_BITS;

	if (t == NULL)
		return -ERANGE;
	if (n == 0)
		return 0;
	live = (uint64_t)t->live + n;
	slots = (uint64_t)t->slab_used + n;
	if (slots > KS_SLAB_MAX)
		return -ENOMEM;
	if (slots > t->slab_cap) {
		uint8_t *ns = realloc(t->slab, (size_t)slots * st->stride);

		if (ns == NULL)
			return -ENOMEM;
		if (ns != t->slab)
			st->slab_moves++;
		t->slab = ns;
		t->slab_cap = (uint32_t)slots;
	}
	/* an insert grows the index when live >= size / 2 before it */
	while (((uint64_t)1 << bits) / 2 < live)
		bits++;
	if (bits > 32)
		return -ENOMEM;
	if (__ks_has_index(t) && bits <= 32 - t->index_shift)
		return 0;
	/* the new index is written before it is read: see __ks_index_resize() */
	if (__ks_index_resize(st, t, bits) != 0)
		return -ENOMEM;
	return 0;
}

/*
 * Appending without the index, then building it in index order.  Inserting
 * a large file key by key writes index slots in random order; once the
 * indexes outgrow the TLB's reach (a few MiB), each insert waits for a
 * page walk (two-dimensional on a VM) no prefetch hides: loading 4 GiB ran
 * at a quarter of the speed of 1 GiB.  sl_kstate_append_burst() only
 * appends entries to their key groups' slabs; sl_kstate_index_appended()
 * then indexes each such key group with its entries sorted by home slot
 * (a counting sort on the slot's upper bits), so the index is written
 * front to back.
 */

unsigned int
sl_kstate_append_burst(struct sl_kstate *st, unsigned int n,
		       const uint16_t *kgs, const uint64_t *hashes,
		       const void *const *keys, const void *const *values)
{
	const uint32_t pad = st->stride - st->val_off - st->value_size;

	if (unlikely(n > SL_KSTATE_BURST_MAX)) {
		errno = EINVAL;
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct __sl_kstate_kg *t = __ks_kg(st, kgs[i]);
		struct __sl_kstate_entry *e;
		uint32_t idx;

		if (unlikely(t == NULL)) {
			errno = ERANGE;
			return i;
		}
		/* only key groups that hold nothing indexed (empty, or
		 * appended to since) */
		if (unlikely(t->live != 0 || t->free_head != KS_NONE)) {
			errno = EBUSY;
			return i;
		}
		idx = __ks_slab_alloc(st, t);
		if (unlikely(idx == KS_NONE)) {
			errno = ENOMEM;
			return i;
		}
		e = __ks_entry(st, t, idx);
		e->hash = hashes[i];
		e->epoch = st->epoch;
		e->snap_epoch = 0;
		memcpy(__ks_key(e), keys[i], st->key_size);
		if (values != NULL)
			memcpy(__ks_val(st, e), values[i], st->value_size);
		else
			memset(__ks_val(st, e), 0, st->value_size);
		if (pad)
			memset(__ks_val(st, e) + st->value_size, 0, pad);
	}
	return n;
}

/* Index the t->slab_used appended entries of key group t (live == 0). */
static int
__ks_index_build(struct sl_kstate *st, struct __sl_kstate_kg *t)
{
	const uint32_t n = t->slab_used;
	uint32_t bits = KS_INDEX_MIN_BITS, bucket_bits, n_buckets;
	uint32_t *start;
	uint64_t *order; /* tag << 32 | slab index, in home-slot order */

	while (((uint64_t)1 << bits) / 2 < n)
		bits++;
	if (bits > 32)
		return -ENOMEM;
	if (!__ks_has_index(t) || bits > 32 - t->index_shift) {
		if (__ks_index_resize(st, t, bits) != 0)
			return -ENOMEM;
	}
	bits = 32 - t->index_shift;
	/* buckets of 16 slots: within one, order does not matter (two
	 * cache lines) */
	bucket_bits = bits > 4 ? bits - 4 : 0;
	n_buckets = 1u << bucket_bits;
	start = calloc((size_t)n_buckets + 1, sizeof(*start));
	order = malloc((size_t)n * sizeof(*order));
	if (start == NULL || order == NULL) {
		free(start);
		free(order);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t home = __ks_home(t, __ks_tag(__ks_entry(st, t, i)->hash));

		start[(home >> (bits - bucket_bits)) + 1]++;
	}
	for (uint32_t b = 0; b < n_buckets; b++)
		start[b + 1] += start[b];
	for (uint32_t i = 0; i < n; i++) {
		uint32_t tag = __ks_tag(__ks_entry(st, t, i)->hash);
		uint32_t b = __ks_home(t, tag) >> (bits - bucket_bits);

		order[start[b]++] = (uint64_t)tag << 32 | i;
	}
	free(start);
	for (uint32_t j = 0; j < n; j++) {
		const uint32_t tag = (uint32_t)(order[j] >> 32);
		const uint32_t idx = (uint32_t)order[j];
		uint32_t pos;
		uint64_t s;

		for (pos = __ks_home(t, tag); (s = t->index[pos]) != 0;
		     pos = (pos + 1) & t->index_mask)
			if (unlikely((uint32_t)(s >> 32) == tag) &&
			    __ks_key_eq(__ks_key(__ks_entry(st, t, (uint32_t)s - 1)),
					__ks_key(__ks_entry(st, t, idx)), st->key_size)) {
				/* back to appended, not indexed */
				memset(t->index, 0, ((size_t)t->index_mask + 2) *
							    sizeof(*t->index));
				st->live_total -= t->live;
				t->live = 0;
				free(order);
				return -EEXIST;
			}
		t->index[pos] = (uint64_t)tag << 32 | (idx + 1u);
		t->live++;
		st->live_total++;
	}
	free(order);
	return 0;
}

int
sl_kstate_index_appended(struct sl_kstate *st, uint16_t *kg_out)
{
	for (uint32_t i = 0; i < st->kg_count; i++) {
		struct __sl_kstate_kg *t = &st->kgs[i];
		int rc;

		if (t->live != 0 || t->slab_used == 0 || t->free_head != KS_NONE)
			continue;
		if ((rc = __ks_index_build(st, t)) < 0) {
			if (kg_out != NULL)
				*kg_out = (uint16_t)(st->kg_first + i);
			return rc;
		}
	}
	return 0;
}
