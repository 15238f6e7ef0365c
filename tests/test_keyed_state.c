/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of the keyed state (dataplane/keyed_state.c): table operations
 * against a brute-force reference, key-group range checks, size limits, and
 * snapshot consistency under concurrent updates (copy-on-update).
 *
 * Keys are generated from an integer id, values from (id, version), so the
 * reference model is two arrays indexed by id: present[] and ver[].
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "sluice/keyed_state.h"

/* ---- helpers --------------------------------------------------------- */

static uint64_t
rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t
rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

/* Key bytes of @id: little-endian id first, then a pattern. */
static void
make_key(uint8_t *k, uint16_t ks, uint32_t id)
{
	for (uint16_t i = 0; i < ks; i++)
		k[i] = i < 4 ? (uint8_t)(id >> (8 * i))
			     : (uint8_t)(id * 31u + i * 7u + 1u);
}

static uint32_t
key_id(const uint8_t *k, uint16_t ks)
{
	uint32_t id = 0;

	for (uint16_t i = 0; i < ks && i < 4; i++)
		id |= (uint32_t)k[i] << (8 * i);
	return id;
}

static void
make_val(uint8_t *v, uint16_t vs, uint32_t id, uint32_t ver)
{
	for (uint16_t i = 0; i < vs; i++)
		v[i] = (uint8_t)(ver * 131u + id * 7u + i * 13u + (ver >> 8));
}

static bool
val_eq(const uint8_t *v, uint16_t vs, uint32_t id, uint32_t ver)
{
	uint8_t want[SL_KSTATE_VALUE_MAX];

	make_val(want, vs, id, ver);
	return memcmp(v, want, vs) == 0;
}

/* The key-group mapping of include/sluice/keygroup.h, within a range. */
static uint16_t
kg_of(uint64_t hash, uint16_t kg_first, uint16_t kg_count)
{
	return (uint16_t)(kg_first + (((hash >> 32) * kg_count) >> 32));
}

/* A state plus its brute-force reference model. */
struct model {
	struct sl_kstate *st;
	uint16_t kg_first, kg_count, ks, vs;
	uint32_t n;          /* id universe */
	uint8_t *present;
	uint32_t *ver;
	uint64_t live;
	uint64_t (*hash)(const struct model *m, const uint8_t *key, uint32_t id);
};

static uint64_t
good_hash(const struct model *m, const uint8_t *key, uint32_t id)
{
	(void)id;
	return XXH3_64bits(key, m->ks);
}

/* Many keys share one tag, home slot and key group: long clusters. */
static uint64_t
bad_hash(const struct model *m, const uint8_t *key, uint32_t id)
{
	(void)m;
	(void)key;
	return (uint64_t)(id % 61) * 0x0101010101010101ull;
}

static void
model_init(struct model *m, uint16_t kg_first, uint16_t kg_count,
	   uint16_t ks, uint16_t vs, uint32_t n)
{
	memset(m, 0, sizeof(*m));
	m->st = sl_kstate_create(kg_first, kg_count, ks, vs);
	cr_assert_not_null(m->st, "create: %s", strerror(errno));
	m->kg_first = kg_first;
	m->kg_count = kg_count;
	m->ks = ks;
	m->vs = vs;
	m->n = n;
	m->present = calloc(n, 1);
	m->ver = calloc(n, sizeof(*m->ver));
	cr_assert(m->present && m->ver);
	m->hash = good_hash;
}

static void
model_fini(struct model *m)
{
	sl_kstate_free(m->st);
	free(m->present);
	free(m->ver);
}

static void
key_of(const struct model *m, uint32_t id, uint8_t *key, uint64_t *h,
       uint16_t *kg)
{
	make_key(key, m->ks, id);
	*h = m->hash(m, key, id);
	*kg = kg_of(*h, m->kg_first, m->kg_count);
}

static void
op_upsert(struct model *m, uint32_t id, uint32_t ver)
{
	uint8_t key[SL_KSTATE_KEY_MAX];
	uint64_t h;
	uint16_t kg;
	bool created;
	uint8_t *v;

	key_of(m, id, key, &h, &kg);
	v = sl_kstate_upsert(m->st, kg, h, key, &created);
	cr_assert_not_null(v, "upsert id %u: %s", id, strerror(errno));
	cr_assert_eq((uintptr_t)v % 8, 0, "value not 8-aligned");
	cr_assert_eq(created, !m->present[id], "created flag for id %u", id);
	if (created) {
		for (uint16_t i = 0; i < m->vs; i++)
			cr_assert_eq(v[i], 0, "new value not zero-filled");
		m->present[id] = 1;
		m->live++;
	} else {
		cr_assert(val_eq(v, m->vs, id, m->ver[id]),
			  "old value of id %u wrong", id);
	}
	make_val(v, m->vs, id, ver);
	m->ver[id] = ver;
}

/*
 * Upsert ids[0..n) with one sl_kstate_upsert_burst() call, then apply the
 * new versions in burst order, as an operator would. The keys lie in a
 * buffer at an odd stride (unaligned), an id may repeat, and the key group
 * of position @bad_at (if < n) is made out of range.
 * @return the number of keys the call reported done
 */
static unsigned int
op_upsert_burst(struct model *m, const uint32_t *ids, unsigned int n,
		const uint32_t *vers, unsigned int bad_at)
{
	const size_t stride = m->ks + 5;
	uint8_t *keys = malloc(stride * SL_KSTATE_BURST_MAX + 1);
	uint64_t hs[SL_KSTATE_BURST_MAX];
	uint16_t kgs[SL_KSTATE_BURST_MAX];
	void *vals[SL_KSTATE_BURST_MAX];
	bool created[SL_KSTATE_BURST_MAX];
	uint8_t *seen_new = calloc(m->n, 1);
	unsigned int done;

	cr_assert(keys != NULL && seen_new != NULL);
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *k = keys + 1 + i * stride;

		key_of(m, ids[i], k, &hs[i], &kgs[i]);
		if (i == bad_at)
			kgs[i] = (uint16_t)(m->kg_first + m->kg_count);
	}
	errno = 0;
	done = sl_kstate_upsert_burst(m->st, n, kgs, hs, keys + 1, stride,
				      vals, created);
	if (bad_at < n) {
		cr_assert_eq(done, bad_at, "burst stopped at %u, not at the bad key group %u",
			     done, bad_at);
		cr_assert_eq(errno, ERANGE);
	} else {
		cr_assert_eq(done, n, "burst did %u of %u: %s", done, n,
			     strerror(errno));
	}
	/* every pointer is valid at once: check them all before writing */
	for (unsigned int i = 0; i < done; i++) {
		const uint32_t id = ids[i];
		const uint8_t *v = vals[i];

		cr_assert_not_null(v);
		cr_assert_eq((uintptr_t)v % 8, 0, "value not 8-aligned");
		for (unsigned int j = 0; j < i; j++)
			if (ids[j] == id)
				cr_assert_eq(vals[j], vals[i],
					     "id %u: two pointers in one burst", id);
		if (!m->present[id] && !seen_new[id]) {
			cr_assert(created[i], "id %u new but not created", id);
			for (uint16_t b = 0; b < m->vs; b++)
				cr_assert_eq(v[b], 0, "new value not zero-filled");
			seen_new[id] = 1;
		} else {
			cr_assert_not(created[i], "id %u created twice", id);
		}
	}
	for (unsigned int i = 0; i < done; i++) {
		const uint32_t id = ids[i];
		uint8_t *v = vals[i];

		if (m->present[id])
			cr_assert(val_eq(v, m->vs, id, m->ver[id]),
				  "old value of id %u wrong", id);
		else
			m->live++;
		m->present[id] = 1;
		make_val(v, m->vs, id, vers[i]);
		m->ver[id] = vers[i];
	}
	free(seen_new);
	free(keys);
	return done;
}

static void
op_delete(struct model *m, uint32_t id)
{
	uint8_t key[SL_KSTATE_KEY_MAX];
	uint64_t h;
	uint16_t kg;
	int rc;

	key_of(m, id, key, &h, &kg);
	rc = sl_kstate_delete(m->st, kg, h, key);
	if (m->present[id]) {
		cr_assert_eq(rc, 0, "delete id %u: %d", id, rc);
		m->present[id] = 0;
		m->live--;
	} else {
		cr_assert_eq(rc, -ENOENT, "delete absent id %u: %d", id, rc);
	}
}

static void
op_check(const struct model *m, uint32_t id)
{
	uint8_t key[SL_KSTATE_KEY_MAX];
	uint64_t h;
	uint16_t kg;
	const uint8_t *v;

	key_of(m, id, key, &h, &kg);
	v = sl_kstate_get(m->st, kg, h, key);
	if (m->present[id]) {
		cr_assert_not_null(v, "id %u missing", id);
		cr_assert(val_eq(v, m->vs, id, m->ver[id]),
			  "id %u has a wrong value", id);
	} else {
		cr_assert_null(v, "deleted id %u still found", id);
	}
}

struct walk {
	const struct model *m;
	uint8_t *seen;
	uint64_t n;
};

static int
walk_cb(const void *key, const void *value, uint64_t hash, void *arg)
{
	struct walk *w = arg;
	uint32_t id = key_id(key, w->m->ks);

	cr_assert_lt(id, w->m->n);
	cr_assert(w->m->present[id], "foreach: deleted id %u", id);
	cr_assert(!w->seen[id], "foreach: id %u twice", id);
	cr_assert_eq(hash, w->m->hash(w->m, key, id));
	cr_assert(val_eq(value, w->m->vs, id, w->m->ver[id]));
	w->seen[id] = 1;
	w->n++;
	return 0;
}

/* Full comparison: count, every id by lookup, every entry by iteration. */
static void
model_verify(const struct model *m)
{
	struct walk w = { .m = m, .seen = calloc(m->n, 1) };
	uint64_t per_kg = 0;

	cr_assert_not_null(w.seen);
	cr_assert_eq(sl_kstate_count(m->st), m->live, "count %lu != %lu",
		     (unsigned long)sl_kstate_count(m->st),
		     (unsigned long)m->live);
	for (uint32_t id = 0; id < m->n; id++)
		op_check(m, id);
	for (uint32_t k = 0; k < m->kg_count; k++) {
		cr_assert_eq(sl_kstate_foreach(m->st, m->kg_first + k, walk_cb,
					       &w), 0);
		per_kg += sl_kstate_kg_count(m->st, m->kg_first + k);
	}
	cr_assert_eq(w.n, m->live);
	cr_assert_eq(per_kg, m->live);
	free(w.seen);
}

static void
random_ops(struct model *m, uint64_t *rng, uint32_t nops, uint32_t verify_every)
{
	for (uint32_t i = 0; i < nops; i++) {
		uint32_t id = rng_below(rng, m->n);
		uint32_t r = rng_below(rng, 100);

		if (r < 50)
			op_upsert(m, id, (uint32_t)rng_next(rng));
		else if (r < 75)
			op_delete(m, id);
		else
			op_check(m, id);
		if (verify_every && (i + 1) % verify_every == 0)
			model_verify(m);
	}
}

/* ---- table operations ------------------------------------------------ */

Test(keyed_state, roundtrip_random, .timeout = 60)
{
	struct model m;
	uint64_t rng = 42;
	size_t mem0;

	model_init(&m, 7, 40, 12, 20, 30000);
	mem0 = sl_kstate_memory(m.st);
	random_ops(&m, &rng, 100000, 10000);
	cr_assert_gt(sl_kstate_memory(m.st), mem0);
	/* Empty it again and refill: free-list reuse of every slot. */
	for (uint32_t id = 0; id < m.n; id++)
		op_delete(&m, id);
	model_verify(&m);
	cr_assert_eq(sl_kstate_count(m.st), 0);
	random_ops(&m, &rng, 50000, 25000);
	model_fini(&m);
}

Test(keyed_state, roundtrip_growth_one_kg, .timeout = 60)
{
	struct model m;
	uint64_t rng = 7;

	/* One key group: one slab and index grow from 16 slots to 2^17. */
	model_init(&m, 0, 1, 8, 8, 100000);
	for (uint32_t id = 0; id < m.n; id++)
		op_upsert(&m, id, id);
	model_verify(&m);
	random_ops(&m, &rng, 100000, 50000);
	model_fini(&m);
}

Test(keyed_state, colliding_hashes, .timeout = 60)
{
	struct model m;
	uint64_t rng = 99;

	/* 61 distinct hashes for 4000 keys: every probe walks long clusters
	 * of equal tags, and deletion shifts them back. */
	model_init(&m, 3, 4, 16, 8, 4000);
	m.hash = bad_hash;
	random_ops(&m, &rng, 40000, 5000);
	model_verify(&m);
	model_fini(&m);
}

Test(keyed_state, kg_out_of_range, .timeout = 60)
{
	struct sl_kstate *st = sl_kstate_create(10, 5, 8, 8);
	uint8_t key[8] = { 1 };
	bool created;

	cr_assert_not_null(st);
	errno = 0;
	cr_assert_null(sl_kstate_upsert(st, 9, 1, key, &created));
	cr_assert_eq(errno, ERANGE);
	errno = 0;
	cr_assert_null(sl_kstate_upsert(st, 15, 1, key, &created));
	cr_assert_eq(errno, ERANGE);
	errno = 0;
	cr_assert_null(sl_kstate_get(st, 15, 1, key));
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(sl_kstate_delete(st, 9, 1, key), -ERANGE);
	cr_assert_eq(sl_kstate_foreach(st, 65535, walk_cb, NULL), -ERANGE);
	cr_assert_eq(sl_kstate_kg_count(st, 0), 0);
	cr_assert_eq(sl_kstate_count(st), 0);

	/* both ends of the range work */
	cr_assert_not_null(sl_kstate_upsert(st, 10, 1, key, &created));
	cr_assert(created);
	cr_assert_not_null(sl_kstate_upsert(st, 14, 1, key, &created));
	cr_assert(created);
	cr_assert_eq(sl_kstate_count(st), 2);
	cr_assert_eq(sl_kstate_kg_count(st, 14), 1);
	errno = 0;
	cr_assert_null(sl_kstate_get(st, 11, 1, key));
	cr_assert_eq(errno, 0, "absent key must not set errno");
	cr_assert_eq(sl_kstate_delete(st, 11, 1, key), -ENOENT);
	sl_kstate_free(st);

	/* the top of the key-group space */
	st = sl_kstate_create(65535, 1, 8, 8);
	cr_assert_not_null(st);
	cr_assert_not_null(sl_kstate_upsert(st, 65535, 1, key, NULL));
	errno = 0;
	cr_assert_null(sl_kstate_upsert(st, 0, 1, key, NULL));
	cr_assert_eq(errno, ERANGE);
	sl_kstate_free(st);
}

Test(keyed_state, create_invalid, .timeout = 60)
{
	static const uint16_t bad[][4] = {
		{ 0, 0, 8, 8 },      /* no key groups */
		{ 65535, 2, 8, 8 },  /* past 65535 */
		{ 0, 128, 0, 8 },    /* key_size 0 */
		{ 0, 128, 65, 8 },   /* key too large */
		{ 0, 128, 8, 257 },  /* value too large */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		cr_assert_null(sl_kstate_create(bad[i][0], bad[i][1], bad[i][2],
						bad[i][3]), "case %zu", i);
		cr_assert_eq(errno, EINVAL, "case %zu", i);
	}
	sl_kstate_free(NULL);
}

Test(keyed_state, key_size_limits, .timeout = 60)
{
	static const uint16_t sizes[][2] = {
		{ 1, 0 }, { 1, 256 }, { 64, 0 }, { 64, 256 }, { 3, 5 },
	};

	for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++) {
		struct model m;
		uint64_t rng = c + 1;
		/* a 1-byte key has 256 distinct values */
		uint32_t n = sizes[c][0] == 1 ? 256 : 3000;

		model_init(&m, 0, 8, sizes[c][0], sizes[c][1], n);
		for (uint32_t id = 0; id < n; id++)
			op_upsert(&m, id, id * 3);
		model_verify(&m);
		random_ops(&m, &rng, 20000, 10000);
		model_verify(&m);
		model_fini(&m);
	}
}

/* ---- burst upsert ---------------------------------------------------- */

/* Random bursts (duplicates, new and known keys, n from 0 to the maximum)
 * mixed with scalar deletes, against the model. */
static void
burst_random(struct model *m, uint64_t *rng, uint32_t rounds,
	     uint32_t id_range)
{
	uint32_t ids[SL_KSTATE_BURST_MAX], vers[SL_KSTATE_BURST_MAX];

	for (uint32_t r = 0; r < rounds; r++) {
		unsigned int n = rng_below(rng, SL_KSTATE_BURST_MAX + 1);

		for (unsigned int i = 0; i < n; i++) {
			/* a quarter repeat an id of this burst */
			if (i > 0 && rng_below(rng, 4) == 0)
				ids[i] = ids[rng_below(rng, i)];
			else
				ids[i] = rng_below(rng, id_range);
			vers[i] = (uint32_t)rng_next(rng);
		}
		op_upsert_burst(m, ids, n, vers, UINT32_MAX);
		for (unsigned int d = rng_below(rng, 40); d > 0; d--)
			op_delete(m, rng_below(rng, id_range));
	}
}

Test(keyed_state, upsert_burst_matches_model, .timeout = 120)
{
	static const uint16_t ksizes[] = { 4, 8, 12, 16 };

	for (size_t c = 0; c < sizeof(ksizes) / sizeof(ksizes[0]); c++) {
		struct model m;
		uint64_t rng = 1000 + c;

		/* grows from empty: index growth and slab moves inside
		 * bursts, for every specialised key size */
		model_init(&m, 5, 16, ksizes[c], 16, 40000);
		burst_random(&m, &rng, 600, 40000);
		model_verify(&m);
		model_fini(&m);
	}
}

Test(keyed_state, upsert_burst_colliding_hashes, .timeout = 120)
{
	struct model m;
	uint64_t rng = 4242;

	/* equal tags everywhere: guesses point at other keys' entries and
	 * probes run long, so nearly every key takes the scalar path */
	model_init(&m, 3, 4, 16, 8, 3000);
	m.hash = bad_hash;
	burst_random(&m, &rng, 300, 3000);
	model_verify(&m);
	model_fini(&m);
}

Test(keyed_state, upsert_burst_one_kg_growth, .timeout = 120)
{
	struct model m;
	uint32_t ids[SL_KSTATE_BURST_MAX], vers[SL_KSTATE_BURST_MAX];

	/* one key group; each burst inserts 256 new keys, so the slab
	 * reallocs and the index doubles inside bursts again and again */
	model_init(&m, 0, 1, 8, 8, 100000);
	for (uint32_t base = 0; base + SL_KSTATE_BURST_MAX <= m.n;
	     base += SL_KSTATE_BURST_MAX) {
		for (unsigned int i = 0; i < SL_KSTATE_BURST_MAX; i++) {
			ids[i] = base + i;
			vers[i] = i;
		}
		op_upsert_burst(&m, ids, SL_KSTATE_BURST_MAX, vers,
				UINT32_MAX);
	}
	model_verify(&m);
	model_fini(&m);
}

Test(keyed_state, upsert_burst_errors, .timeout = 60)
{
	struct model m;
	uint32_t ids[64], vers[64];
	uint16_t kg = 0;
	uint64_t h = 0;
	void *vals[1];

	model_init(&m, 10, 8, 8, 8, 1000);
	for (unsigned int i = 0; i < 64; i++) {
		ids[i] = i * 7 % 50;
		vers[i] = i;
	}
	/* an out-of-range key group stops the burst there: the keys before
	 * it are upserted, it and the ones after are not */
	cr_assert_eq(op_upsert_burst(&m, ids, 64, vers, 20), 20);
	cr_assert_eq(op_upsert_burst(&m, ids, 64, vers, 0), 0);
	model_verify(&m);
	cr_assert_eq(op_upsert_burst(&m, ids, 64, vers, UINT32_MAX), 64);
	model_verify(&m);
	/* n = 0 does nothing; n > SL_KSTATE_BURST_MAX is refused */
	cr_assert_eq(sl_kstate_upsert_burst(m.st, 0, &kg, &h, ids, 8, vals,
					    NULL),
		     0);
	errno = 0;
	cr_assert_eq(sl_kstate_upsert_burst(m.st, SL_KSTATE_BURST_MAX + 1,
					    &kg, &h, ids, 8, vals, NULL),
		     0);
	cr_assert_eq(errno, EINVAL);
	model_verify(&m);
	model_fini(&m);
}

/* ---- count burst ----------------------------------------------------- */

struct count_model {
	struct model m;	/* keys, hashes and key groups of the ids */
	uint64_t *cnt;	/* expected counter of each id (0: absent) */
	uint64_t *snap;	/* counters as of the active snapshot's begin */
	uint8_t *emitted;
	uint32_t n_emitted;
};

static uint64_t
counter_of(const void *value)
{
	uint64_t c;

	memcpy(&c, value, 8);
	return c;
}

static void
counter_emit(void *arg, uint16_t kg, uint64_t hash, const void *key,
	   const void *value)
{
	struct count_model *c = arg;
	const uint32_t id = key_id(key, c->m.ks);

	(void)kg;
	(void)hash;
	cr_assert_lt(id, c->m.n);
	cr_assert_eq(c->emitted[id], 0, "id %u emitted twice", id);
	cr_assert_eq(counter_of(value), c->snap[id],
		     "snapshot count of id %u: %llu, not %llu", id,
		     (unsigned long long)counter_of(value),
		     (unsigned long long)c->snap[id]);
	c->emitted[id] = 1;
	c->n_emitted++;
}

/* One sl_kstate_count_burst() of @n random ids (a quarter repeat an id of
 * the burst) from keys at an odd stride. */
static void
count_burst_random(struct count_model *c, uint64_t *rng, uint32_t id_range)
{
	const size_t stride = c->m.ks + 3;
	uint8_t keys[(SL_KSTATE_KEY_MAX + 3) * SL_KSTATE_BURST_MAX + 1];
	uint32_t ids[SL_KSTATE_BURST_MAX];
	uint64_t hs[SL_KSTATE_BURST_MAX];
	uint16_t kgs[SL_KSTATE_BURST_MAX];
	const unsigned int n = rng_below(rng, SL_KSTATE_BURST_MAX + 1);
	unsigned int done;

	for (unsigned int i = 0; i < n; i++) {
		ids[i] = i > 0 && rng_below(rng, 4) == 0 ? ids[rng_below(rng, i)]
							  : rng_below(rng, id_range);
		key_of(&c->m, ids[i], keys + 1 + i * stride, &hs[i], &kgs[i]);
	}
	done = sl_kstate_count_burst(c->m.st, n, kgs, hs, keys + 1, stride);
	cr_assert_eq(done, n, "count burst did %u of %u: %s", done, n,
		     strerror(errno));
	for (unsigned int i = 0; i < n; i++)
		c->cnt[ids[i]]++;
}

static void
count_verify(const struct count_model *c)
{
	uint8_t key[SL_KSTATE_KEY_MAX];
	uint64_t live = 0;

	for (uint32_t id = 0; id < c->m.n; id++) {
		const uint8_t *v;
		uint64_t h;
		uint16_t kg;

		key_of(&c->m, id, key, &h, &kg);
		v = sl_kstate_get(c->m.st, kg, h, key);
		if (c->cnt[id] == 0) {
			cr_assert_null(v, "id %u never counted but present", id);
			continue;
		}
		live++;
		cr_assert_not_null(v, "id %u counted but absent", id);
		cr_assert_eq(counter_of(v), c->cnt[id], "count of id %u", id);
		/* the bytes after the counter stay zero */
		for (uint16_t i = 8; i < c->m.vs; i++)
			cr_assert_eq(v[i], 0, "value byte %u of id %u", i, id);
	}
	cr_assert_eq(sl_kstate_count(c->m.st), live);
}

Test(keyed_state, count_burst_matches_model, .timeout = 120)
{
	/* key size, value size (8-byte key + 8-byte value: the constant
	 * 32-byte stride), hash */
	static const struct {
		uint16_t ks, vs;
		bool bad;
	} cases[] = {
		{ 8, 8, false }, { 8, 24, false }, { 4, 8, false },
		{ 16, 16, false }, { 12, 8, false }, { 8, 8, true },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const uint32_t n_ids = cases[k].bad ? 3000 : 30000;
		struct count_model c;
		uint64_t rng = 77 + k;
		uint32_t epoch;

		memset(&c, 0, sizeof(c));
		model_init(&c.m, 3, 16, cases[k].ks, cases[k].vs, n_ids);
		if (cases[k].bad)
			c.m.hash = bad_hash;
		c.cnt = calloc(n_ids, sizeof(*c.cnt));
		c.snap = calloc(n_ids, sizeof(*c.snap));
		c.emitted = calloc(n_ids, 1);
		cr_assert(c.cnt && c.snap && c.emitted);

		/* from empty: inserts, index growth and slab moves inside
		 * bursts */
		for (int r = 0; r < 300; r++)
			count_burst_random(&c, &rng, n_ids);
		count_verify(&c);

		/* a snapshot while counting goes on: every key emitted once
		 * with its count as of begin (copy-on-update) */
		memcpy(c.snap, c.cnt, n_ids * sizeof(*c.cnt));
		cr_assert_eq(sl_kstate_snapshot_begin(c.m.st, counter_emit, &c,
						      &epoch),
			     0);
		while (sl_kstate_snapshot_active(c.m.st)) {
			count_burst_random(&c, &rng, n_ids);
			sl_kstate_snapshot_step(c.m.st, 50);
		}
		for (uint32_t id = 0; id < n_ids; id++)
			cr_assert_eq(c.emitted[id], c.snap[id] != 0,
				     "id %u emitted %u, counted %llu at begin",
				     id, c.emitted[id],
				     (unsigned long long)c.snap[id]);
		count_verify(&c);
		free(c.cnt);
		free(c.snap);
		free(c.emitted);
		model_fini(&c.m);
	}
}

Test(keyed_state, count_burst_errors, .timeout = 60)
{
	struct sl_kstate *st = sl_kstate_create(10, 4, 8, 4);
	uint64_t keys[4] = { 1, 2, 3, 4 }, hs[4] = { 0, 0, 0, 0 };
	uint16_t kgs[4] = { 10, 11, 14, 12 };
	uint8_t k[8];
	const uint8_t *v;

	/* a value too small for a counter */
	cr_assert_not_null(st);
	errno = 0;
	cr_assert_eq(sl_kstate_count_burst(st, 1, kgs, hs, keys, 8), 0);
	cr_assert_eq(errno, EINVAL);
	sl_kstate_free(st);

	st = sl_kstate_create(10, 4, 8, 8);
	cr_assert_not_null(st);
	for (int i = 0; i < 4; i++)
		hs[i] = XXH3_64bits(&keys[i], 8);
	/* key group 14 is out of range: the keys before it are counted,
	 * it and the ones after are not */
	errno = 0;
	cr_assert_eq(sl_kstate_count_burst(st, 4, kgs, hs, keys, 8), 2);
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(sl_kstate_count(st), 2);
	memcpy(k, &keys[1], 8);
	v = sl_kstate_get(st, 11, hs[1], k);
	cr_assert_not_null(v);
	cr_assert_eq(counter_of(v), 1);
	errno = 0;
	cr_assert_eq(sl_kstate_count_burst(st, SL_KSTATE_BURST_MAX + 1, kgs,
					   hs, keys, 8),
		     0);
	cr_assert_eq(errno, EINVAL);
	sl_kstate_free(st);
}

static int
stop_at_3(const void *key, const void *value, uint64_t hash, void *arg)
{
	int *n = arg;

	(void)key;
	(void)value;
	(void)hash;
	return ++*n == 3 ? 77 : 0;
}

Test(keyed_state, foreach_stops, .timeout = 60)
{
	struct model m;
	int n = 0;

	model_init(&m, 0, 1, 8, 8, 10);
	for (uint32_t id = 0; id < 10; id++)
		op_upsert(&m, id, id);
	cr_assert_eq(sl_kstate_foreach(m.st, 0, stop_at_3, &n), 77);
	cr_assert_eq(n, 3);
	model_fini(&m);
}

Test(keyed_state, reused_slot_zeroed, .timeout = 60)
{
	struct sl_kstate *st = sl_kstate_create(0, 1, 8, 24);
	uint64_t k1 = 1, k2 = 2;
	uint8_t *v;
	bool created;

	cr_assert_not_null(st);
	v = sl_kstate_upsert(st, 0, 11, &k1, &created);
	memset(v, 0xAB, 24);
	cr_assert_eq(sl_kstate_delete(st, 0, 11, &k1), 0);
	v = sl_kstate_upsert(st, 0, 22, &k2, &created);
	cr_assert(created);
	for (int i = 0; i < 24; i++)
		cr_assert_eq(v[i], 0);
	cr_assert_null(sl_kstate_get(st, 0, 11, &k1));
	sl_kstate_free(st);
}

/* ---- snapshots ------------------------------------------------------- */

/* Collects emitted entries; checks them against a frozen reference. */
struct collect {
	const struct model *m;
	uint8_t *want_present; /* reference at begin() */
	uint32_t *want_ver;
	uint8_t *seen;
	uint64_t emitted;
};

static void
collect_emit(void *arg, uint16_t kg, uint64_t hash, const void *key,
	     const void *value)
{
	struct collect *c = arg;
	const struct model *m = c->m;
	uint32_t id = key_id(key, m->ks);
	uint8_t k[SL_KSTATE_KEY_MAX];

	cr_assert_not_null(value);
	cr_assert_lt(id, m->n, "emitted id %u out of universe", id);
	make_key(k, m->ks, id);
	cr_assert(memcmp(k, key, m->ks) == 0, "emitted key bytes of %u", id);
	cr_assert_eq(hash, m->hash(m, k, id), "emitted hash of %u", id);
	cr_assert_eq(kg, kg_of(hash, m->kg_first, m->kg_count));
	cr_assert(!c->seen[id], "id %u emitted twice", id);
	cr_assert(c->want_present[id], "id %u emitted but absent at begin", id);
	cr_assert(val_eq(value, m->vs, id, c->want_ver[id]),
		  "id %u emitted with a value other than at begin", id);
	c->seen[id] = 1;
	c->emitted++;
}

static void
collect_init(struct collect *c, const struct model *m)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
	c->want_present = malloc(m->n);
	c->want_ver = malloc((size_t)m->n * sizeof(uint32_t));
	c->seen = calloc(m->n, 1);
	cr_assert(c->want_present && c->want_ver && c->seen);
	memcpy(c->want_present, m->present, m->n);
	memcpy(c->want_ver, m->ver, (size_t)m->n * sizeof(uint32_t));
}

static void
collect_check_complete(const struct collect *c)
{
	uint64_t want = 0;

	for (uint32_t id = 0; id < c->m->n; id++) {
		cr_assert_eq(c->seen[id], c->want_present[id],
			     "id %u: present at begin %d, emitted %d", id,
			     c->want_present[id], c->seen[id]);
		want += c->want_present[id];
	}
	cr_assert_eq(c->emitted, want);
}

static void
collect_fini(struct collect *c)
{
	free(c->want_present);
	free(c->want_ver);
	free(c->seen);
}

struct snap_param {
	uint64_t seed;
	uint32_t fill;        /* keys present at begin */
	uint32_t extra;       /* further ids that may be inserted meanwhile */
	uint32_t ops_max;     /* random ops between two steps: 0..ops_max */
	uint32_t budget_max;  /* step budget: 1..budget_max */
	uint32_t insert_pct;  /* share of inserts of new ids among the ops */
	uint16_t kg_count;
	bool must_grow;       /* slabs and indexes must grow mid-snapshot */
	bool burst;           /* upserts in sl_kstate_upsert_burst() calls */
};

ParameterizedTestParameters(keyed_state, snapshot_consistency)
{
	static struct snap_param params[] = {
		{ 1, 200000, 50000, 20, 64, 20, 128, false },
		{ 2, 200000, 50000, 40, 16, 10, 16, false },
		{ 3, 200000, 100000, 8, 256, 30, 1, false },
		/* few key groups, insert-heavy: every slab reallocs and
		 * every index rebuilds while the stepper is still walking */
		{ 4, 200000, 400000, 200, 32, 80, 4, true },
		{ 5, 200000, 400000, 100, 8, 60, 2, true },
		/* the same through the burst upsert: copy-on-update inside
		 * bursts, duplicate keys in a burst, inserts that grow slabs
		 * and indexes mid-burst */
		{ 6, 200000, 50000, 200, 64, 20, 128, false, true },
		{ 7, 200000, 400000, 400, 32, 80, 4, true, true },
		{ 8, 200000, 400000, 300, 8, 60, 1, true, true },
	};

	return cr_make_param_array(struct snap_param, params,
				   sizeof(params) / sizeof(params[0]));
}

/* Up to @max upserts during a snapshot in one burst: new ids, known ids
 * (deleted ones included) and repeats, as snap_op() draws them. */
static void
snap_burst(struct model *m, const struct snap_param *p, uint64_t *rng,
	   uint32_t *next_new, uint32_t max)
{
	uint32_t ids[SL_KSTATE_BURST_MAX], vers[SL_KSTATE_BURST_MAX];
	unsigned int n = rng_below(rng, (max < SL_KSTATE_BURST_MAX ? max
						 : SL_KSTATE_BURST_MAX) + 1);

	for (unsigned int i = 0; i < n; i++) {
		if (rng_below(rng, 100) < p->insert_pct && *next_new < m->n)
			ids[i] = (*next_new)++;
		else if (i > 0 && rng_below(rng, 5) == 0)
			ids[i] = ids[rng_below(rng, i)];
		else
			ids[i] = rng_below(rng, *next_new);
		vers[i] = (uint32_t)rng_next(rng);
	}
	op_upsert_burst(m, ids, n, vers, UINT32_MAX);
}

/* One random op during a snapshot; inserts draw from the extra ids. */
static void
snap_op(struct model *m, const struct snap_param *p, uint64_t *rng,
	uint32_t *next_new)
{
	uint32_t r = rng_below(rng, 100);

	if (r < p->insert_pct && *next_new < m->n) {
		op_upsert(m, (*next_new)++, (uint32_t)rng_next(rng));
		return;
	}
	r = rng_below(rng, 100);
	{
		uint32_t id = rng_below(rng, *next_new);

		if (r < 55)
			op_upsert(m, id, (uint32_t)rng_next(rng));
		else if (r < 90)
			op_delete(m, id);
		else
			op_check(m, id);
	}
}

ParameterizedTest(struct snap_param *p, keyed_state, snapshot_consistency,
		  .timeout = 60)
{
	struct model m;
	uint64_t rng = p->seed * 0x1234567ull + 1;
	uint32_t next_new = p->fill;

	model_init(&m, 0, p->kg_count, 8, 16, p->fill + p->extra);
	for (uint32_t id = 0; id < p->fill; id++)
		op_upsert(&m, id, id);

	/* Two snapshots back to back: the second must not be confused by
	 * the epochs and snap marks the first one left behind. */
	for (int round = 0; round < 2; round++) {
		struct collect c;
		uint32_t epoch, e0 = sl_kstate_epoch(m.st);
		size_t mem_begin = sl_kstate_memory(m.st);
		bool grew_while_active = false;
		uint64_t steps = 0;

		collect_init(&c, &m);
		cr_assert_eq(sl_kstate_snapshot_begin(m.st, collect_emit, &c,
						      &epoch), 0);
		cr_assert_eq(epoch, e0);
		cr_assert_eq(sl_kstate_epoch(m.st), e0 + 1);
		cr_assert_eq(c.emitted, 0);
		while (sl_kstate_snapshot_active(m.st)) {
			uint32_t nops = rng_below(&rng, p->ops_max + 1);
			size_t budget = 1 + rng_below(&rng, p->budget_max);
			uint64_t before;
			size_t got;

			if (p->burst) {
				/* a burst of upserts, then deletes and
				 * lookups between the steps */
				snap_burst(&m, p, &rng, &next_new, nops);
				for (uint32_t i = 0; i < nops / 8; i++) {
					uint32_t id = rng_below(&rng, next_new);

					if (rng_below(&rng, 2))
						op_delete(&m, id);
					else
						op_check(&m, id);
				}
			} else {
				for (uint32_t i = 0; i < nops; i++)
					snap_op(&m, p, &rng, &next_new);
			}
			if (sl_kstate_memory(m.st) > mem_begin)
				grew_while_active = true;
			before = c.emitted;
			got = sl_kstate_snapshot_step(m.st, budget);
			cr_assert_leq(got, budget);
			cr_assert_eq(c.emitted - before, got,
				     "step's return value is not its emits");
			steps++;
		}
		cr_assert_eq(sl_kstate_snapshot_step(m.st, 10), 0);
		collect_check_complete(&c);
		if (p->must_grow && round == 0)
			cr_assert(grew_while_active,
				  "the slab did not grow during the snapshot");
		fprintf(stderr,
			"snapshot seed %lu round %d: %lu entries, %lu steps, "
			"%u keys now, grew mid-snapshot: %s\n",
			(unsigned long)p->seed, round,
			(unsigned long)c.emitted, (unsigned long)steps,
			(unsigned)sl_kstate_count(m.st),
			grew_while_active ? "yes" : "no");
		collect_fini(&c);
		model_verify(&m);
	}
	model_fini(&m);
}

/* A slot freed and reused during a snapshot: old key emitted once with its
 * old value, the new key not at all. */
Test(keyed_state, snapshot_slot_reuse, .timeout = 60)
{
	struct model m;
	struct collect c;

	model_init(&m, 0, 1, 8, 8, 200);
	for (uint32_t id = 0; id < 100; id++)
		op_upsert(&m, id, id);
	collect_init(&c, &m);
	cr_assert_eq(sl_kstate_snapshot_begin(m.st, collect_emit, &c, NULL), 0);
	cr_assert_eq(sl_kstate_snapshot_step(m.st, 10), 10);
	/* ids 50..59 are after the cursor: deleting emits them */
	for (uint32_t id = 50; id < 60; id++)
		op_delete(&m, id);
	cr_assert_eq(c.emitted, 20);
	/* new ids take the freed slots (LIFO free list) */
	for (uint32_t id = 100; id < 110; id++)
		op_upsert(&m, id, 1000 + id);
	/* already-emitted ids: updates emit nothing */
	for (uint32_t id = 0; id < 10; id++)
		op_upsert(&m, id, 5000 + id);
	cr_assert_eq(c.emitted, 20);
	/* not yet emitted: the update emits the old value first */
	op_upsert(&m, 99, 77);
	cr_assert_eq(c.emitted, 21);
	op_upsert(&m, 99, 78);
	cr_assert_eq(c.emitted, 21);
	while (sl_kstate_snapshot_step(m.st, 7) > 0)
		;
	cr_assert_not(sl_kstate_snapshot_active(m.st));
	collect_check_complete(&c);
	collect_fini(&c);
	model_verify(&m);
	model_fini(&m);
}

static void
count_emit(void *arg, uint16_t kg, uint64_t hash, const void *key,
	   const void *value)
{
	(void)kg;
	(void)hash;
	(void)key;
	(void)value;
	++*(uint64_t *)arg;
}

Test(keyed_state, snapshot_busy_and_args, .timeout = 60)
{
	struct model m;
	uint64_t n1 = 0, n2 = 0;
	uint32_t e;

	model_init(&m, 0, 4, 8, 8, 1000);
	for (uint32_t id = 0; id < 1000; id++)
		op_upsert(&m, id, id);
	cr_assert_eq(sl_kstate_snapshot_step(m.st, 5), 0, "none active");
	cr_assert_eq(sl_kstate_snapshot_begin(m.st, NULL, NULL, &e), -EINVAL);
	cr_assert_eq(sl_kstate_snapshot_begin_since(m.st, sl_kstate_epoch(m.st),
						    count_emit, &n1, &e),
		     -EINVAL);
	cr_assert_eq(sl_kstate_snapshot_begin(m.st, count_emit, &n1, &e), 0);
	cr_assert(sl_kstate_snapshot_active(m.st));
	cr_assert_eq(sl_kstate_snapshot_begin(m.st, count_emit, &n2, NULL),
		     -EBUSY);
	cr_assert_eq(sl_kstate_snapshot_begin_since(m.st, 0, count_emit, &n2,
						    NULL),
		     -EBUSY);
	/* budget 0 is treated as 1 */
	cr_assert_eq(sl_kstate_snapshot_step(m.st, 0), 1);
	sl_kstate_snapshot_abort(m.st);
	cr_assert_not(sl_kstate_snapshot_active(m.st));
	cr_assert_eq(sl_kstate_snapshot_begin(m.st, count_emit, &n2, NULL), 0);
	while (sl_kstate_snapshot_step(m.st, 1000) > 0)
		;
	cr_assert_eq(n1, 1);
	cr_assert_eq(n2, 1000);
	/* an aborted snapshot leaves nothing behind for the next one */
	model_verify(&m);
	model_fini(&m);
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* begin() is O(1): it emits nothing and marks nothing, so stepping
 * afterwards emits every entry. Times are printed, not asserted. */
Test(keyed_state, snapshot_begin_is_o1, .timeout = 60)
{
	static const uint32_t sizes[] = { 10000, 2000000 };

	for (size_t s = 0; s < 2; s++) {
		struct sl_kstate *st = sl_kstate_create(0, 128, 8, 8);
		uint64_t n = 0;
		size_t mem;
		double t0, t1;

		cr_assert_not_null(st);
		for (uint64_t k = 0; k < sizes[s]; k++) {
			uint64_t h = XXH3_64bits(&k, 8);
			uint64_t *v = sl_kstate_upsert(st, kg_of(h, 0, 128), h,
						       &k, NULL);

			cr_assert_not_null(v);
			*v = k;
		}
		mem = sl_kstate_memory(st);
		t0 = now_ns();
		cr_assert_eq(sl_kstate_snapshot_begin(st, count_emit, &n, NULL),
			     0);
		t1 = now_ns();
		cr_assert_eq(n, 0, "begin emitted entries");
		cr_assert_eq(sl_kstate_memory(st), mem);
		fprintf(stderr, "snapshot_begin on %u entries: %.0f ns\n",
			sizes[s], t1 - t0);
		while (sl_kstate_snapshot_step(st, 4096) > 0)
			;
		cr_assert_eq(n, sizes[s],
			     "stepping emitted %lu of %u: begin marked entries",
			     (unsigned long)n, sizes[s]);
		sl_kstate_free(st);
	}
}

/* ---- incremental snapshots and the deletion log ---------------------- */

struct delta {
	const struct model *m;
	uint8_t *present;      /* restored image */
	uint32_t *ver;
	uint8_t *touched;      /* ids written since the base began */
	uint64_t entries, deletions;
};

static void
delta_emit(void *arg, uint16_t kg, uint64_t hash, const void *key,
	   const void *value)
{
	struct delta *d = arg;
	uint32_t id = key_id(key, d->m->ks);
	uint32_t ver;

	(void)kg;
	(void)hash;
	cr_assert_lt(id, d->m->n);
	cr_assert(d->touched[id], "unchanged id %u in the delta", id);
	memcpy(&ver, value, sizeof(ver)); /* make_val is invertible enough:
					   * we store the version in front */
	d->present[id] = 1;
	d->ver[id] = ver;
	d->entries++;
}

static int
delta_deleted(void *arg, uint16_t kg, uint64_t hash, const void *key,
	      uint32_t epoch)
{
	struct delta *d = arg;
	uint32_t id = key_id(key, d->m->ks);

	(void)kg;
	(void)hash;
	(void)epoch;
	cr_assert_lt(id, d->m->n);
	d->present[id] = 0;
	d->deletions++;
	return 0;
}

/* Ops with version-carrying values, tracking touched ids. */
static void
inc_op(struct model *m, uint64_t *rng, uint8_t *touched)
{
	uint32_t id = rng_below(rng, m->n);
	uint32_t r = rng_below(rng, 100);
	uint8_t key[SL_KSTATE_KEY_MAX];
	uint64_t h;
	uint16_t kg;

	key_of(m, id, key, &h, &kg);
	if (r < 60) {
		uint32_t ver = (uint32_t)rng_next(rng);
		uint8_t *v = sl_kstate_upsert(m->st, kg, h, key, NULL);

		cr_assert_not_null(v);
		memcpy(v, &ver, sizeof(ver));
		if (!m->present[id])
			m->live++;
		m->present[id] = 1;
		m->ver[id] = ver;
		touched[id] = 1;
	} else {
		int rc = sl_kstate_delete(m->st, kg, h, key);

		cr_assert_eq(rc, m->present[id] ? 0 : -ENOENT);
		if (m->present[id])
			m->live--;
		m->present[id] = 0;
	}
}

static void
run_snapshot(struct model *m, uint32_t since, sl_kstate_emit_fn fn,
	     void *arg, uint64_t *rng, uint8_t *touched_next, uint32_t *epoch)
{
	cr_assert_eq(sl_kstate_snapshot_begin_since(m->st, since, fn, arg,
						    epoch),
		     0);
	while (sl_kstate_snapshot_active(m->st)) {
		for (int i = 0; i < 5; i++)
			inc_op(m, rng, touched_next);
		sl_kstate_snapshot_step(m->st, 16);
	}
}

Test(keyed_state, incremental_with_deletion_log, .timeout = 60)
{
	const uint32_t n = 40000;
	struct model m;
	uint64_t rng = 2024;
	struct delta d;
	uint8_t *touched_a = calloc(n, 1), *touched_b = calloc(n, 1);
	uint8_t *ref_present = malloc(n);
	uint32_t *ref_ver = malloc(n * sizeof(uint32_t));
	uint32_t e1, e2, e3;

	cr_assert(touched_a && touched_b && ref_present && ref_ver);
	model_init(&m, 0, 16, 8, 8, n);
	sl_kstate_track_deletes(m.st, true);
	for (uint32_t i = 0; i < n / 2; i++)
		inc_op(&m, &rng, touched_a);

	/* Full base snapshot; the restored image starts from it. */
	memset(&d, 0, sizeof(d));
	d.m = &m;
	d.present = calloc(n, 1);
	d.ver = calloc(n, sizeof(uint32_t));
	d.touched = touched_a;
	cr_assert(d.present && d.ver);
	memset(touched_b, 0, n);
	run_snapshot(&m, 0, delta_emit, &d, &rng, touched_b, &e1);
	cr_assert_eq(d.deletions, 0);

	/* Changes after base began: during it (touched_b) and now. */
	for (uint32_t i = 0; i < 20000; i++)
		inc_op(&m, &rng, touched_b);
	memcpy(ref_present, m.present, n);
	memcpy(ref_ver, m.ver, n * sizeof(uint32_t));

	/* Incremental on top: deletions first, then the changed entries. */
	d.touched = touched_b;
	d.entries = 0;
	memset(touched_a, 0, n);
	cr_assert_eq(sl_kstate_snapshot_begin_since(m.st, e1, delta_emit, &d,
						    &e2),
		     0);
	for (uint16_t kg = 0; kg < 16; kg++)
		cr_assert_eq(sl_kstate_deleted_since(m.st, kg, e1, e2,
						     delta_deleted, &d),
			     0);
	cr_assert_gt(d.deletions, 0);
	while (sl_kstate_snapshot_active(m.st)) {
		for (int i = 0; i < 5; i++)
			inc_op(&m, &rng, touched_a);
		sl_kstate_snapshot_step(m.st, 16);
	}
	cr_assert_gt(d.entries, 0);
	cr_assert_lt(d.entries, m.live, "the delta is not smaller than all");
	for (uint32_t id = 0; id < n; id++) {
		cr_assert_eq(d.present[id], ref_present[id], "id %u", id);
		if (ref_present[id])
			cr_assert_eq(d.ver[id], ref_ver[id], "id %u ver", id);
	}

	/* Trimming up to e2 drops (e1, e2] but keeps the later ones. */
	sl_kstate_deleted_trim(m.st, e2);
	d.deletions = 0;
	for (uint16_t kg = 0; kg < 16; kg++)
		sl_kstate_deleted_since(m.st, kg, e1, e2, delta_deleted, &d);
	cr_assert_eq(d.deletions, 0);
	e3 = sl_kstate_epoch(m.st);
	for (uint16_t kg = 0; kg < 16; kg++)
		sl_kstate_deleted_since(m.st, kg, e2, e3, delta_deleted, &d);
	cr_assert_gt(d.deletions, 0, "deletions during snapshot e2 lost");

	sl_kstate_track_deletes(m.st, false);
	cr_assert_eq(sl_kstate_deleted_since(m.st, 0, 0, e3, delta_deleted, &d),
		     -ENOTSUP);

	free(d.present);
	free(d.ver);
	free(touched_a);
	free(touched_b);
	free(ref_present);
	free(ref_ver);
	model_fini(&m);
}

/* Smoke use of the prefetch hint: must not change results. */
Test(keyed_state, prefetch_burst, .timeout = 60)
{
	struct model m;
	uint16_t kgs[32];
	uint64_t hs[32];

	model_init(&m, 0, 8, 8, 8, 1000);
	for (uint32_t base = 0; base < 1000; base += 32) {
		uint32_t n = base + 32 <= 1000 ? 32 : 1000 - base;

		for (uint32_t i = 0; i < n; i++) {
			uint8_t key[SL_KSTATE_KEY_MAX];

			key_of(&m, base + i, key, &hs[i], &kgs[i]);
		}
		kgs[0] = 500; /* out of range: ignored */
		sl_kstate_prefetch_burst(m.st, n, kgs, hs);
		for (uint32_t i = 0; i < n; i++)
			op_upsert(&m, base + i, i);
	}
	model_verify(&m);
	model_fini(&m);
}
