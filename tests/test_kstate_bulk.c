/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of the keyed state's bulk loading (dataplane/keyed_state.c, end of
 * file): sl_kstate_reserve(), sl_kstate_append_burst() and
 * sl_kstate_index_appended() give the same contents as the per-entry upsert
 * path (entries, hashes, values, key-group counts, what a snapshot emits),
 * refuse key groups outside the range, appends to key groups holding
 * indexed entries and keys given twice, keep a reserved key group's
 * entries, and leave a state that grows and updates as usual afterwards.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sluice/keyed_state.h"

#define KG_FIRST 10u
#define KG_COUNT 7u
#define MAXP 32u

/* Key i: its id (little-endian) then a pattern, key_size bytes. */
static void make_key(uint8_t *k, uint16_t ks, uint32_t id)
{
	for (uint16_t i = 0; i < ks; i++)
		k[i] = i < 4 ? (uint8_t)(id >> (8 * i)) : (uint8_t)(id * 13u + i);
}

static void make_val(uint8_t *v, uint16_t vs, uint32_t id)
{
	for (uint16_t i = 0; i < vs; i++)
		v[i] = (uint8_t)(id * 7u + i * 3u + 1u);
}

/* Key groups inside [KG_FIRST, KG_FIRST + KG_COUNT) from the hash. */
static uint16_t kg_of(uint64_t h)
{
	return (uint16_t)(KG_FIRST + h % KG_COUNT);
}

struct keys {
	uint32_t n;
	uint16_t ks, vs;
	uint8_t *k, *v;
	uint64_t *h;
	uint16_t *kg;
	uint64_t per_kg[KG_COUNT];
};

static void keys_make(struct keys *x, uint32_t n, uint16_t ks, uint16_t vs)
{
	x->n = n;
	x->ks = ks;
	x->vs = vs;
	x->k = malloc((size_t)n * ks);
	x->v = malloc((size_t)n * (vs ? vs : 1));
	x->h = malloc(n * sizeof(*x->h));
	x->kg = malloc(n * sizeof(*x->kg));
	cr_assert(x->k && x->v && x->h && x->kg);
	memset(x->per_kg, 0, sizeof(x->per_kg));
	for (uint32_t i = 0; i < n; i++) {
		make_key(x->k + (size_t)i * ks, ks, i);
		make_val(x->v + (size_t)i * vs, vs, i);
		x->h[i] = XXH3_64bits(x->k + (size_t)i * ks, ks);
		x->kg[i] = kg_of(x->h[i]);
		x->per_kg[x->kg[i] - KG_FIRST]++;
	}
}

static void keys_free(struct keys *x)
{
	free(x->k);
	free(x->v);
	free(x->h);
	free(x->kg);
}

/* The per-entry path: upsert, then copy the value in. */
static struct sl_kstate *load_upsert(const struct keys *x)
{
	struct sl_kstate *st = sl_kstate_create(KG_FIRST, KG_COUNT, x->ks, x->vs);

	cr_assert_not_null(st);
	for (uint32_t i = 0; i < x->n; i++) {
		void *val = sl_kstate_upsert(st, x->kg[i], x->h[i], x->k + (size_t)i * x->ks,
					     NULL);
		cr_assert_not_null(val);
		memcpy(val, x->v + (size_t)i * x->vs, x->vs);
	}
	return st;
}

/* The bulk path: reserve every key group, append in bursts of `burst`,
 * index. */
static struct sl_kstate *load_bulk(const struct keys *x, unsigned burst, bool reserve)
{
	struct sl_kstate *st = sl_kstate_create(KG_FIRST, KG_COUNT, x->ks, x->vs);
	const void *kp[SL_KSTATE_BURST_MAX], *vp[SL_KSTATE_BURST_MAX];

	cr_assert_not_null(st);
	for (uint32_t g = 0; g < KG_COUNT && reserve; g++)
		cr_assert_eq(sl_kstate_reserve(st, (uint16_t)(KG_FIRST + g), x->per_kg[g]), 0);
	for (uint32_t i = 0; i < x->n; i += burst) {
		unsigned m = x->n - i < burst ? x->n - i : burst;

		for (unsigned j = 0; j < m; j++) {
			kp[j] = x->k + (size_t)(i + j) * x->ks;
			vp[j] = x->v + (size_t)(i + j) * x->vs;
		}
		cr_assert_eq(sl_kstate_append_burst(st, m, x->kg + i, x->h + i, kp, vp), m,
			     "burst at %u: errno %d", i, errno);
	}
	cr_assert_eq(sl_kstate_index_appended(st, NULL), 0);
	return st;
}

struct emitted {
	uint64_t n, sum; /* count, and an order-independent digest */
	uint16_t ks, vs;
};

static uint64_t entry_digest(uint16_t kg, uint64_t hash, const void *key, uint16_t ks,
			     const void *val, uint16_t vs)
{
	uint64_t d = XXH3_64bits_withSeed(key, ks, hash ^ ((uint64_t)kg << 48));

	return d ^ XXH3_64bits_withSeed(val, vs, d);
}

static void on_emit(void *arg, uint16_t kg, uint64_t hash, const void *key, const void *value)
{
	struct emitted *e = arg;

	e->n++;
	e->sum += entry_digest(kg, hash, key, e->ks, value, e->vs);
}

static struct emitted snapshot(struct sl_kstate *st, uint16_t ks, uint16_t vs)
{
	struct emitted e = { 0, 0, ks, vs };

	cr_assert_eq(sl_kstate_snapshot_begin(st, on_emit, &e, NULL), 0);
	while (sl_kstate_snapshot_step(st, 1000) > 0)
		;
	return e;
}

/* Same entries, hashes, values, counts; and the same snapshot. */
static void assert_same(struct sl_kstate *a, struct sl_kstate *b, const struct keys *x)
{
	cr_assert_eq(sl_kstate_count(a), x->n);
	cr_assert_eq(sl_kstate_count(b), x->n);
	for (uint32_t g = 0; g < KG_COUNT; g++)
		cr_assert_eq(sl_kstate_kg_count(a, (uint16_t)(KG_FIRST + g)),
			     sl_kstate_kg_count(b, (uint16_t)(KG_FIRST + g)));
	for (uint32_t i = 0; i < x->n; i++) {
		const void *va = sl_kstate_get(a, x->kg[i], x->h[i], x->k + (size_t)i * x->ks);
		const void *vb = sl_kstate_get(b, x->kg[i], x->h[i], x->k + (size_t)i * x->ks);

		cr_assert(va && vb, "key %u missing", i);
		cr_assert_eq(memcmp(va, vb, x->vs), 0, "key %u: values differ", i);
		cr_assert_eq(memcmp(va, x->v + (size_t)i * x->vs, x->vs), 0);
	}
	struct emitted ea = snapshot(a, x->ks, x->vs), eb = snapshot(b, x->ks, x->vs);
	cr_assert_eq(ea.n, x->n);
	cr_assert_eq(ea.n, eb.n);
	cr_assert_eq(ea.sum, eb.sum, "snapshots differ");
}

static void same_as_upsert(uint32_t n, uint16_t ks, uint16_t vs, unsigned burst, bool reserve)
{
	struct keys x;

	keys_make(&x, n, ks, vs);
	struct sl_kstate *a = load_bulk(&x, burst, reserve);
	struct sl_kstate *b = load_upsert(&x);
	assert_same(a, b, &x);
	sl_kstate_free(a);
	sl_kstate_free(b);
	keys_free(&x);
}

Test(kstate_bulk, same_contents_as_upsert_8_8)
{
	same_as_upsert(200000, 8, 8, 32, true);
}

Test(kstate_bulk, same_contents_odd_sizes_and_bursts)
{
	same_as_upsert(50000, 12, 5, 7, true);   /* value padding in the entry */
	same_as_upsert(50000, 3, 0, SL_KSTATE_BURST_MAX, true);
	same_as_upsert(30000, 64, 256, 100, true);
}

Test(kstate_bulk, grows_without_reserve)
{
	same_as_upsert(100000, 8, 8, 64, false);
}

Test(kstate_bulk, usable_after_load)
{
	struct keys x, more;

	keys_make(&x, 40000, 8, 8);
	keys_make(&more, 100000, 8, 8); /* ids 0..99999: the first 40000 exist */
	struct sl_kstate *a = load_bulk(&x, 32, true);
	struct sl_kstate *b = load_upsert(&x);
	/* beyond the reservation: upserts update and grow as usual */
	for (uint32_t i = 0; i < more.n; i++) {
		const uint8_t *k = more.k + (size_t)i * 8;
		bool ca, cb;
		uint64_t *va = sl_kstate_upsert(a, more.kg[i], more.h[i], k, &ca);
		uint64_t *vb = sl_kstate_upsert(b, more.kg[i], more.h[i], k, &cb);

		cr_assert(va && vb);
		cr_assert_eq(ca, i >= x.n);
		cr_assert_eq(ca, cb);
		*va += 1;
		*vb += 1;
	}
	for (uint32_t i = 0; i < 1000; i++) {
		const uint8_t *k = more.k + (size_t)i * 8;

		cr_assert_eq(sl_kstate_delete(a, more.kg[i], more.h[i], k), 0);
		cr_assert_eq(sl_kstate_delete(b, more.kg[i], more.h[i], k), 0);
	}
	cr_assert_eq(sl_kstate_count(a), more.n - 1000);
	struct emitted ea = snapshot(a, 8, 8), eb = snapshot(b, 8, 8);
	cr_assert_eq(ea.n, eb.n);
	cr_assert_eq(ea.sum, eb.sum);
	sl_kstate_free(a);
	sl_kstate_free(b);
	keys_free(&x);
	keys_free(&more);
}

Test(kstate_bulk, reserve_keeps_existing_entries)
{
	struct keys x;

	keys_make(&x, 20000, 8, 8);
	struct sl_kstate *a = load_upsert(&x);
	/* a larger index is rebuilt from the entries, none lost */
	for (uint32_t g = 0; g < KG_COUNT; g++)
		cr_assert_eq(sl_kstate_reserve(a, (uint16_t)(KG_FIRST + g), 1000000), 0);
	for (uint32_t i = 0; i < x.n; i++) {
		const uint64_t *v = sl_kstate_get(a, x.kg[i], x.h[i], x.k + (size_t)i * 8);

		cr_assert_not_null(v, "key %u lost by reserve", i);
		cr_assert_eq(memcmp(v, x.v + (size_t)i * 8, 8), 0);
	}
	cr_assert_eq(sl_kstate_reserve(a, KG_FIRST, 0), 0);
	sl_kstate_free(a);
	keys_free(&x);
}

Test(kstate_bulk, key_groups_outside_the_range_refused)
{
	struct sl_kstate *st = sl_kstate_create(KG_FIRST, KG_COUNT, 8, 8);
	uint64_t keys[3] = { 1, 2, 3 }, vals[3] = { 10, 20, 30 };
	const void *kp[3] = { &keys[0], &keys[1], &keys[2] };
	const void *vp[3] = { &vals[0], &vals[1], &vals[2] };
	uint16_t kgs[3] = { KG_FIRST, KG_FIRST + KG_COUNT, KG_FIRST + 1 };
	uint64_t h[3] = { 11, 22, 33 };

	cr_assert_eq(sl_kstate_reserve(st, KG_FIRST - 1, 10), -ERANGE);
	cr_assert_eq(sl_kstate_reserve(st, KG_FIRST + KG_COUNT, 10), -ERANGE);
	errno = 0;
	cr_assert_eq(sl_kstate_append_burst(st, 3, kgs, h, kp, vp), 1);
	cr_assert_eq(errno, ERANGE);
	kgs[0] = KG_FIRST - 1;
	cr_assert_eq(sl_kstate_append_burst(st, 1, kgs, h, kp, vp), 0);
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(sl_kstate_append_burst(st, SL_KSTATE_BURST_MAX + 1, kgs, h, kp, vp), 0);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(sl_kstate_index_appended(st, NULL), 0);
	cr_assert_eq(sl_kstate_count(st), 1); /* the first one, nothing after */
	cr_assert_not_null(sl_kstate_get(st, KG_FIRST, 11, &keys[0]));
	sl_kstate_free(st);
}

Test(kstate_bulk, appends_only_to_key_groups_without_indexed_entries)
{
	struct sl_kstate *st = sl_kstate_create(KG_FIRST, KG_COUNT, 8, 8);
	uint64_t a = 5, b = 6, va = 50, vb = 60;
	const void *kp[1] = { &b }, *vp[1] = { &vb };
	uint16_t kg = KG_FIRST;
	uint64_t h = 98;

	cr_assert_not_null(sl_kstate_upsert(st, KG_FIRST, 99, &a, NULL));
	errno = 0;
	cr_assert_eq(sl_kstate_append_burst(st, 1, &kg, &h, kp, vp), 0);
	cr_assert_eq(errno, EBUSY);
	/* a key group emptied by deletes still has slots in use: refused too */
	cr_assert_eq(sl_kstate_delete(st, KG_FIRST, 99, &a), 0);
	cr_assert_eq(sl_kstate_append_burst(st, 1, &kg, &h, kp, vp), 0);
	cr_assert_eq(errno, EBUSY);
	/* another key group: fine, found once indexed */
	kg = KG_FIRST + 1;
	cr_assert_eq(sl_kstate_append_burst(st, 1, &kg, &h, kp, vp), 1);
	cr_assert_null(sl_kstate_get(st, kg, h, &b), "not indexed yet");
	cr_assert_eq(sl_kstate_index_appended(st, NULL), 0);
	const uint64_t *v = sl_kstate_get(st, kg, h, &b);
	cr_assert(v != NULL && *v == vb);
	cr_assert_eq(sl_kstate_kg_count(st, kg), 1);
	(void)va;
	sl_kstate_free(st);
}

Test(kstate_bulk, a_key_given_twice_is_refused)
{
	struct keys x;
	const void *kp[2], *vp[2];

	keys_make(&x, 5000, 8, 8);
	struct sl_kstate *st = sl_kstate_create(KG_FIRST, KG_COUNT, 8, 8);
	for (uint32_t i = 0; i < x.n; i++) {
		kp[0] = x.k + (size_t)i * 8;
		vp[0] = x.v + (size_t)i * 8;
		cr_assert_eq(sl_kstate_append_burst(st, 1, x.kg + i, x.h + i, kp, vp), 1);
	}
	/* key 1234 again, with another value */
	uint64_t other = 777;
	kp[0] = x.k + (size_t)1234 * 8;
	vp[0] = &other;
	cr_assert_eq(sl_kstate_append_burst(st, 1, x.kg + 1234, x.h + 1234, kp, vp), 1);
	uint16_t bad = 0;
	cr_assert_eq(sl_kstate_index_appended(st, &bad), -EEXIST);
	cr_assert_eq(bad, x.kg[1234], "the key group named: %u, expected %u", bad, x.kg[1234]);
	cr_assert_lt(sl_kstate_count(st), x.n, "that key group stays unindexed");
	sl_kstate_free(st);
	keys_free(&x);
}

Test(kstate_bulk, null_values_are_zero)
{
	struct sl_kstate *st = sl_kstate_create(KG_FIRST, KG_COUNT, 8, 24);
	uint64_t key = 42, h = 4242;
	const void *kp[1] = { &key };
	uint16_t kg = KG_FIRST + 2;
	const uint8_t *v;
	uint8_t zero[24] = { 0 };

	cr_assert_eq(sl_kstate_append_burst(st, 1, &kg, &h, kp, NULL), 1);
	cr_assert_eq(sl_kstate_index_appended(st, NULL), 0);
	v = sl_kstate_get(st, kg, h, &key);
	cr_assert_not_null(v);
	cr_assert_eq(memcmp(v, zero, 24), 0);
	sl_kstate_free(st);
}
