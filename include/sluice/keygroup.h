/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Keys, key groups and their assignment to subtasks (as in Flink).
 *
 * key bytes --xxh3--> 64-bit hash --> key group in [0, max_parallelism)
 * --> subtask.  Each of `parallelism` subtasks owns one contiguous range of
 * key groups; state is snapshotted and redistributed per key group, so the
 * number of key groups (max parallelism) is fixed for the life of a job
 * while parallelism may change on restore.
 */
#ifndef SLUICE_KEYGROUP_H
#define SLUICE_KEYGROUP_H

#include <stddef.h>
#include <stdint.h>

/* inline xxh3: it runs once per record on the hash-partitioning path */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define SL_MAX_PARALLELISM_DEFAULT 128
#define SL_MAX_PARALLELISM_LIMIT 32768

/** Hash of a key's bytes (xxh3, seed 0: stable across runs and versions). */
static inline uint64_t sl_key_hash(const void *key, size_t len)
{
	return XXH3_64bits(key, len);
}

/**
 * Key group of a hash.  Uses the high 32 bits with a multiply-shift range
 * reduction (no division on the hot path); the low bits stay free for the
 * hash tables inside one key group.
 */
static inline uint16_t sl_key_group(uint64_t hash, uint32_t max_parallelism)
{
	return (uint16_t)(((hash >> 32) * (uint64_t)max_parallelism) >> 32);
}

/** Subtask that owns a key group (Flink's computeOperatorIndexForKeyGroup). */
static inline uint32_t sl_key_group_owner(uint32_t kg, uint32_t max_parallelism,
					  uint32_t parallelism)
{
	return (uint32_t)((uint64_t)kg * parallelism / max_parallelism);
}

/**
 * First key group and count owned by a subtask: the inverse of
 * sl_key_group_owner(), so every key group has exactly one owner.
 */
static inline void sl_key_group_range(uint32_t subtask, uint32_t max_parallelism,
				      uint32_t parallelism, uint32_t *first,
				      uint32_t *count)
{
	uint32_t start = (uint32_t)(((uint64_t)subtask * max_parallelism +
				     parallelism - 1) / parallelism);
	uint32_t end = (uint32_t)(((uint64_t)(subtask + 1) * max_parallelism +
				   parallelism - 1) / parallelism);

	*first = start;
	*count = end - start;
}

#endif
