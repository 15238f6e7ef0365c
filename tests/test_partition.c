/* SPDX-License-Identifier: BSD-3-Clause */
/* Key groups and their assignment to subtasks. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "sluice/keygroup.h"

struct layout {
	uint32_t maxp;
	uint32_t p;
};

ParameterizedTestParameters(partition, ranges_cover_and_match_owner)
{
	static struct layout l[] = {
		{ 128, 1 }, { 128, 2 }, { 128, 3 }, { 128, 7 }, { 128, 128 },
		{ 1, 1 },   { 10, 3 },  { 4096, 100 }, { 32768, 9 },
	};
	return cr_make_param_array(struct layout, l, sizeof(l) / sizeof(l[0]));
}

ParameterizedTest(struct layout *l, partition, ranges_cover_and_match_owner)
{
	uint32_t expect_first = 0;

	for (uint32_t s = 0; s < l->p; s++) {
		uint32_t first, count;
		sl_key_group_range(s, l->maxp, l->p, &first, &count);
		cr_assert_eq(first, expect_first, "ranges are contiguous (subtask %u)", s);
		cr_assert_geq(count, l->maxp / l->p);
		cr_assert_leq(count, (l->maxp + l->p - 1) / l->p, "ranges are balanced");
		for (uint32_t kg = first; kg < first + count; kg++)
			cr_assert_eq(sl_key_group_owner(kg, l->maxp, l->p), s,
				     "kg %u owned by %u per owner(), by %u per range()",
				     kg, sl_key_group_owner(kg, l->maxp, l->p), s);
		expect_first = first + count;
	}
	cr_assert_eq(expect_first, l->maxp, "every key group has an owner");
}

Test(partition, key_group_in_range_and_uniform)
{
	enum { MAXP = 128, N = 1 << 20 };
	static uint32_t hist[MAXP];

	for (uint64_t k = 0; k < N; k++) {
		uint16_t kg = sl_key_group(sl_key_hash(&k, sizeof(k)), MAXP);
		cr_assert_lt(kg, MAXP);
		hist[kg]++;
	}
	for (unsigned i = 0; i < MAXP; i++) {
		/* expected 8192 per group; 5 sigma is about 450 */
		cr_expect_gt(hist[i], N / MAXP - 600, "key group %u underfull: %u", i, hist[i]);
		cr_expect_lt(hist[i], N / MAXP + 600, "key group %u overfull: %u", i, hist[i]);
	}
}

Test(partition, hash_is_stable)
{
	/* Key groups are persisted in snapshots: the hash of a key must never
	 * change between builds or runs.  These constants pin xxh3-64 seed 0. */
	uint64_t k = 42;
	cr_assert_eq(sl_key_hash("", 0), 0x2d06800538d394c2ULL);
	cr_assert_eq(sl_key_hash(&k, sizeof(k)), sl_key_hash(&k, sizeof(k)));
	cr_assert_eq(sl_key_group(0, 128), 0);
	cr_assert_eq(sl_key_group(UINT64_MAX, 128), 127);
	cr_assert_eq(sl_key_group(1ULL << 63, 128), 64);
}
