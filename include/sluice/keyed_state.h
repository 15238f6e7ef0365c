/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file keyed_state.h
 *
 * Keyed state of one operator subtask, partitioned by key group.
 *
 * A key is hashed by the caller (xxh3, the same 64-bit hash the hash
 * partitioner uses) and mapped to a key group in [0, max_parallelism). A
 * subtask owns the contiguous key-group range [kg_first, kg_first + kg_count)
 * and keeps one hash table per key group, so that snapshots, incremental
 * checkpoints and rescaling work key group by key group.
 *
 * Keys and values are fixed-size byte strings whose sizes are fixed at
 * creation. Each key group stores its entries in a stable slab (entries are
 * addressed by index and never move relative to each other) plus an
 * open-addressing index that maps the hash to the slab index.
 *
 * Snapshots are asynchronous: sl_kstate_snapshot_begin() is O(1) and the
 * contents as of that moment are emitted in slices by
 * sl_kstate_snapshot_step(), while the owner keeps updating the table.
 * Entries touched before the stepper reached them are emitted with their old
 * value first (copy-on-update). See docs/keyed-state.md.
 *
 * Thread safety: none. A state belongs to one subtask on one lcore; every
 * function, including the snapshot stepper and the emit callbacks, runs on
 * that lcore.
 *
 * Pointer lifetime: a value pointer returned by sl_kstate_upsert(),
 * sl_kstate_upsert_burst() or sl_kstate_get() stays valid until the next
 * sl_kstate_upsert(), sl_kstate_upsert_burst(), sl_kstate_delete(),
 * sl_kstate_reserve() or sl_kstate_append_burst() on the same state (an
 * insert may move the slab of its key group) or sl_kstate_free().
 */
#ifndef SLUICE_KEYED_STATE_H
#define SLUICE_KEYED_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest key size in bytes accepted by sl_kstate_create(). */
#define SL_KSTATE_KEY_MAX 64
/** Largest value size in bytes accepted by sl_kstate_create(). */
#define SL_KSTATE_VALUE_MAX 256
/** Most keys one sl_kstate_upsert_burst() call takes. */
#define SL_KSTATE_BURST_MAX 256

/** Keyed state of one subtask (opaque). */
struct sl_kstate;

/**
 * Callback receiving one entry of a snapshot.
 *
 * @param arg   The argument given to sl_kstate_snapshot_begin().
 * @param kg    Key group of the entry.
 * @param hash  The 64-bit key hash the entry was inserted with.
 * @param key   Key bytes (key_size of them); valid only during the call.
 * @param value Value bytes as of the snapshot (value_size of them, never
 *              NULL, also for value_size 0); valid only during the call.
 *
 * The callback must copy what it needs and must not call into the state.
 */
typedef void (*sl_kstate_emit_fn)(void *arg, uint16_t kg, uint64_t hash,
				  const void *key, const void *value);

/** Most entries one sl_kstate_emit_run_fn call receives. */
#define SL_KSTATE_SNAP_RUN_MAX 64

/** One entry of a snapshot run (sl_kstate_emit_run_fn). */
struct sl_kstate_snap_entry {
	uint64_t hash;	   /**< the 64-bit key hash the entry was inserted with */
	const void *key;   /**< key_size bytes */
	const void *value; /**< value_size bytes as of the snapshot (never NULL) */
	uint16_t kg;	   /**< key group */
};

/**
 * Callback receiving a run of snapshot entries from the stepper (see
 * sl_kstate_snapshot_emit_runs()): one indirect call per run instead of
 * one per entry, so that an encoder can copy the run in a tight loop.
 *
 * @param arg The argument given to sl_kstate_snapshot_begin().
 * @param e   1..SL_KSTATE_SNAP_RUN_MAX entries; the array and the bytes it
 *            points to are valid only during the call.
 * @param n   Number of entries.
 *
 * The callback must copy what it needs and must not call into the state.
 */
typedef void (*sl_kstate_emit_run_fn)(void *arg,
				      const struct sl_kstate_snap_entry *e,
				      unsigned int n);

/**
 * Callback of sl_kstate_foreach().
 *
 * @param key   Key bytes; valid only during the call.
 * @param value Value bytes; valid only during the call; must not be written.
 * @param hash  The 64-bit key hash the entry was inserted with.
 * @param arg   The argument given to sl_kstate_foreach().
 * @return 0 to continue, any other value to stop the iteration (it is then
 *         returned by sl_kstate_foreach()).
 */
typedef int (*sl_kstate_foreach_fn)(const void *key, const void *value,
				    uint64_t hash, void *arg);

/**
 * Callback of sl_kstate_deleted_since(): one logged deletion.
 *
 * @param arg   The argument given to sl_kstate_deleted_since().
 * @param kg    Key group of the deleted key.
 * @param hash  The key's 64-bit hash.
 * @param key   Key bytes; valid only during the call.
 * @param epoch Epoch in which the deletion happened.
 * @return 0 to continue, any other value to stop.
 */
typedef int (*sl_kstate_deleted_fn)(void *arg, uint16_t kg, uint64_t hash,
				    const void *key, uint32_t epoch);

/**
 * Create an empty keyed state for the key groups
 * [kg_first, kg_first + kg_count).
 *
 * Per-key-group tables are allocated lazily on their first insert, so an
 * empty state costs O(kg_count) small headers.
 *
 * @param kg_first   First key group owned by this subtask.
 * @param kg_count   Number of key groups owned (>= 1;
 *                   kg_first + kg_count <= 65536).
 * @param key_size   Key size in bytes, 1..SL_KSTATE_KEY_MAX.
 * @param value_size Value size in bytes, 0..SL_KSTATE_VALUE_MAX.
 * @return The new state, or NULL with errno set:
 *         - EINVAL: a size or the key-group range is out of bounds;
 *         - ENOMEM: out of memory.
 */
struct sl_kstate *sl_kstate_create(uint16_t kg_first, uint16_t kg_count,
				   uint16_t key_size, uint16_t value_size);

/**
 * Free a keyed state and everything it holds. An active snapshot is dropped
 * without further emits.
 *
 * @param st The state; NULL is a no-op.
 */
void sl_kstate_free(struct sl_kstate *st);

/**
 * Find or create the entry of a key, for writing.
 *
 * If a snapshot is active and the entry still belongs to it unemitted, its
 * current value is emitted first (copy-on-update). The entry is then marked
 * as modified in the current epoch, whether or not the caller writes to it.
 *
 * @param st      The state.
 * @param kg      Key group of the key (computed by the caller from @p hash);
 *                must lie in the owned range.
 * @param hash    64-bit hash of the key.
 * @param key     key_size key bytes (any alignment).
 * @param created If not NULL, set to true when the entry was created, false
 *                when it existed.
 * @return Pointer to the value_size value bytes, 8-byte aligned,
 *         zero-filled when newly created; valid as described in the file
 *         comment. NULL with errno set:
 *         - ERANGE: @p kg is outside the owned range;
 *         - ENOMEM: out of memory (the state is unchanged).
 */
void *sl_kstate_upsert(struct sl_kstate *st, uint16_t kg, uint64_t hash,
		       const void *key, bool *created);

/**
 * Look a key up for reading. Does not mark the entry modified and never
 * emits snapshot data.
 *
 * @param st   The state.
 * @param kg   Key group of the key.
 * @param hash 64-bit hash of the key.
 * @param key  key_size key bytes.
 * @return Pointer to the value bytes (must not be written), or NULL if the
 *         key is absent (errno untouched) or @p kg is out of range (errno set
 *         to ERANGE).
 */
const void *sl_kstate_get(const struct sl_kstate *st, uint16_t kg,
			  uint64_t hash, const void *key);

/**
 * Delete a key. If a snapshot is active and the entry still belongs to it
 * unemitted, its value is emitted first (copy-on-update). If deletion
 * tracking is on (sl_kstate_track_deletes()), the deletion is logged.
 *
 * @param st   The state.
 * @param kg   Key group of the key.
 * @param hash 64-bit hash of the key.
 * @param key  key_size key bytes.
 * @return 0 on success;
 *         -ENOENT if the key is absent;
 *         -ERANGE if @p kg is out of range;
 *         -ENOMEM if deletion tracking is on and the log could not grow
 *                 (the key is then not deleted).
 */
int sl_kstate_delete(struct sl_kstate *st, uint16_t kg, uint64_t hash,
		     const void *key);

/**
 * Find or create the entries of a burst of keys, for writing: the same as
 * calling sl_kstate_upsert() on each key in order (copy-on-update and epoch
 * stamping included), with the cache misses of all keys overlapped, as
 * DPDK's rte_hash_lookup_bulk() does: the keys' index slots are prefetched,
 * then their entries, then the keys are resolved. Use it on the hot path of
 * keyed operators.
 *
 * A key may occur several times in a burst: all its occurrences get the
 * same value pointer (the first one creates the entry if it is new), so
 * applying the updates to values[0], values[1], ... in order gives the same
 * result as one sl_kstate_upsert() per record followed by its update. All
 * returned pointers are valid together, until the next call that may
 * insert (see the file comment): they are resolved after the last insert of
 * the burst. Copy-on-update emits happen inside the call, before the caller
 * writes any value.
 *
 * @param st         The state.
 * @param n          Number of keys, 0..SL_KSTATE_BURST_MAX.
 * @param kgs        Key group of each key (computed from its hash).
 * @param hashes     64-bit hash of each key.
 * @param keys       The first key; key i is at keys + i * key_stride (any
 *                   alignment; e.g. the key field of consecutive records).
 * @param key_stride Bytes from one key to the next.
 * @param values     Receives a pointer to the value of each key (8-byte
 *                   aligned, zero-filled when the entry was created).
 * @param created    If not NULL, created[i] is set to true when key i's
 *                   entry was created by this call at occurrence i.
 * @return @p n on success. Otherwise the number k < n of keys that were
 *         upserted (the first k; their values[] are valid), with errno set
 *         for key k:
 *         - ERANGE: its key group is outside the owned range (keys k.. are
 *           untouched);
 *         - ENOMEM: out of memory inserting it (keys k.. were not upserted,
 *           but some of them may have been marked modified: harmless, the
 *           next incremental snapshot merely includes them);
 *         - EINVAL: @p n > SL_KSTATE_BURST_MAX (then 0 is returned).
 */
unsigned int sl_kstate_upsert_burst(struct sl_kstate *st, unsigned int n,
				    const uint16_t *kgs,
				    const uint64_t *hashes, const void *keys,
				    size_t key_stride, void **values,
				    bool *created);

/**
 * Count a burst of keys: the same as sl_kstate_upsert_burst() followed by
 * adding 1 to the uint64_t at the start of each key's value (native byte
 * order), once per occurrence, but without handing out value pointers and
 * with the increment done while the entry is at hand. For count
 * aggregates, whose state is that one counter.
 *
 * @param st         The state; its value_size must be at least 8.
 * @param n          Number of keys, 0..SL_KSTATE_BURST_MAX.
 * @param kgs        Key group of each key (computed from its hash).
 * @param hashes     64-bit hash of each key.
 * @param keys       The first key; key i is at keys + i * key_stride.
 * @param key_stride Bytes from one key to the next.
 * @return @p n on success. Otherwise the number k < n of keys that were
 *         counted among the first ones, with errno set:
 *         - ERANGE: key k's key group is outside the owned range (no key
 *           from k on was touched);
 *         - ENOMEM: out of memory inserting key k (keys after k that
 *           already existed may have been counted too);
 *         - EINVAL: @p n > SL_KSTATE_BURST_MAX or value_size < 8 (then 0
 *           is returned and nothing is counted).
 */
unsigned int sl_kstate_count_burst(struct sl_kstate *st, unsigned int n,
				   const uint16_t *kgs,
				   const uint64_t *hashes, const void *keys,
				   size_t key_stride);

/**
 * Prefetch what gets/deletes of a burst of keys will touch: the index slots
 * first, then the slab entries they point to. Purely a hint; call it on a
 * burst (e.g. 32 records) before processing the burst record by record.
 * Upserts should use sl_kstate_upsert_burst() instead, which probes once.
 *
 * @param st     The state.
 * @param n      Number of keys.
 * @param kgs    Key group of each key (out-of-range ones are ignored).
 * @param hashes Hash of each key.
 */
void sl_kstate_prefetch_burst(const struct sl_kstate *st, unsigned int n,
			      const uint16_t *kgs, const uint64_t *hashes);

/**
 * @param st The state.
 * @return Number of live entries over all key groups.
 */
uint64_t sl_kstate_count(const struct sl_kstate *st);

/**
 * @param st The state.
 * @param kg A key group in the owned range.
 * @return Number of live entries of key group @p kg, 0 if out of range.
 */
uint64_t sl_kstate_kg_count(const struct sl_kstate *st, uint16_t kg);

/**
 * @param st The state.
 * @return Bytes of heap memory held (slabs, indexes, deletion logs and
 *         headers; allocator overhead not included).
 */
size_t sl_kstate_memory(const struct sl_kstate *st);

/**
 * Iterate the live entries of one key group in slab order.
 *
 * The state must not be modified during the iteration (neither from the
 * callback nor otherwise).
 *
 * @param st  The state.
 * @param kg  Key group to iterate.
 * @param fn  Called once per live entry.
 * @param arg Passed to @p fn.
 * @return 0 after a full iteration, the first non-zero value returned by
 *         @p fn, or -ERANGE if @p kg is out of range.
 */
int sl_kstate_foreach(const struct sl_kstate *st, uint16_t kg,
		      sl_kstate_foreach_fn fn, void *arg);

/**
 * The current epoch: the epoch stamped on entries modified now.
 *
 * Epochs start at 1 and each sl_kstate_snapshot_begin() returns the current
 * epoch E and advances it to E + 1. Hence an entry whose epoch is > E was
 * created or modified after snapshot E began, and an entry with epoch <= E is
 * unchanged since then.
 *
 * @param st The state.
 * @return The current epoch.
 */
uint32_t sl_kstate_epoch(const struct sl_kstate *st);

/**
 * Start a full snapshot of the current contents. O(1): no entry is read or
 * written; the current epoch is advanced.
 *
 * Afterwards, the union of the entries emitted by sl_kstate_snapshot_step()
 * and by copy-on-update in sl_kstate_upsert()/sl_kstate_delete() is exactly
 * the contents at this moment, each key once, with its value as of now.
 *
 * @param st        The state.
 * @param emit      Receives the entries; must not call into the state.
 * @param arg       Passed to @p emit.
 * @param epoch_out If not NULL, receives the snapshot's epoch E.
 * @return 0 on success;
 *         -EBUSY if a snapshot is already active;
 *         -EINVAL if @p emit is NULL;
 *         -EOVERFLOW if the epoch counter is exhausted (2^32 - 2 snapshots).
 */
int sl_kstate_snapshot_begin(struct sl_kstate *st, sl_kstate_emit_fn emit,
			     void *arg, uint32_t *epoch_out);

/**
 * Start an incremental snapshot: like sl_kstate_snapshot_begin(), but only
 * entries created or modified after snapshot @p since_epoch began (entry
 * epoch > @p since_epoch) are emitted. Keys deleted in that interval are
 * listed by sl_kstate_deleted_since(st, kg, since_epoch, E, ...) when
 * deletion tracking is on. since_epoch 0 gives a full snapshot.
 *
 * @param st          The state.
 * @param since_epoch Epoch of the base snapshot (0: none).
 * @param emit        Receives the entries; must not call into the state.
 * @param arg         Passed to @p emit.
 * @param epoch_out   If not NULL, receives the snapshot's epoch E.
 * @return As sl_kstate_snapshot_begin(); also -EINVAL if
 *         @p since_epoch >= the current epoch.
 */
int sl_kstate_snapshot_begin_since(struct sl_kstate *st, uint32_t since_epoch,
				   sl_kstate_emit_fn emit, void *arg,
				   uint32_t *epoch_out);

/**
 * Let the stepper of the active snapshot hand its entries to @p run in runs
 * (same argument as the snapshot's emit callback). Copy-on-update emits in
 * sl_kstate_upsert()/sl_kstate_delete() still go one by one to the emit
 * callback given to sl_kstate_snapshot_begin(). Lasts until the snapshot
 * ends or is aborted; the set of entries emitted does not change.
 *
 * @param st  The state.
 * @param run Receives the stepper's runs; NULL: back to single emits.
 * @return 0, or -EINVAL if no snapshot is active.
 */
int sl_kstate_snapshot_emit_runs(struct sl_kstate *st, sl_kstate_emit_run_fn run);

/**
 * Emit up to @p budget not-yet-emitted entries of the active snapshot,
 * walking key groups in order and each slab by index.
 *
 * Besides @p budget emits, one call stops after it has emitted at least one
 * entry and skipped 64 * @p budget slots, to bound its latency when most
 * entries were modified since the snapshot began.
 *
 * @param st     The state.
 * @param budget Maximum number of entries to emit (0 is treated as 1).
 * @return Number of entries emitted by this call. 0 means the snapshot is
 *         complete (or none was active): the snapshot is then over and
 *         sl_kstate_snapshot_active() returns false. A call that reaches the
 *         end after emitting some entries also ends the snapshot and returns
 *         their number.
 */
size_t sl_kstate_snapshot_step(struct sl_kstate *st, size_t budget);

/**
 * @param st The state.
 * @return true while a snapshot is active (begun and not yet fully emitted).
 */
bool sl_kstate_snapshot_active(const struct sl_kstate *st);

/**
 * Drop the active snapshot (e.g. the checkpoint was aborted). Entries not
 * emitted yet are simply not emitted. No-op when none is active.
 *
 * @param st The state.
 */
void sl_kstate_snapshot_abort(struct sl_kstate *st);

/**
 * Turn the deletion log on or off (default off).
 *
 * With the log on, every sl_kstate_delete() appends (key group, hash, key,
 * epoch) to a per-key-group log, which incremental checkpoints read with
 * sl_kstate_deleted_since() and trim with sl_kstate_deleted_trim() once a
 * checkpoint is complete. Turn it on before the first deletion: deletions
 * made while it was off are not logged, so the first checkpoint after
 * turning it on must be full. Turning it off drops the log.
 *
 * @param st The state.
 * @param on true to log deletions.
 */
void sl_kstate_track_deletes(struct sl_kstate *st, bool on);

/**
 * List the logged deletions of one key group with
 * since_epoch < epoch <= upto_epoch, oldest first.
 *
 * For an incremental snapshot E based on snapshot B, the deletions to record
 * are those with B < epoch <= E; they are fixed once snapshot E began, so
 * this may be called at any time until they are trimmed. A key may appear
 * both here and among the emitted entries (deleted, then re-inserted): apply
 * deletions before entries on restore.
 *
 * @param st          The state.
 * @param kg          Key group.
 * @param since_epoch Exclusive lower bound.
 * @param upto_epoch  Inclusive upper bound.
 * @param fn          Called per deletion.
 * @param arg         Passed to @p fn.
 * @return 0 after a full listing, the first non-zero value returned by
 *         @p fn, -ERANGE if @p kg is out of range, or -ENOTSUP if the log is
 *         off.
 */
int sl_kstate_deleted_since(const struct sl_kstate *st, uint16_t kg,
			    uint32_t since_epoch, uint32_t upto_epoch,
			    sl_kstate_deleted_fn fn, void *arg);

/**
 * Forget logged deletions with epoch <= @p upto_epoch in every key group.
 * Call it when checkpoint @p upto_epoch is complete and no later incremental
 * checkpoint will be based on an older one.
 *
 * @param st         The state.
 * @param upto_epoch Inclusive bound.
 */
void sl_kstate_deleted_trim(struct sl_kstate *st, uint32_t upto_epoch);

/**
 * Make room for @p n more entries in key group @p kg: its slab and its
 * index are grown now, so that the next @p n inserts into it (by any
 * function) neither move the slab nor rebuild the index. For loading a
 * key group whose entry count is known (a restore reads it from the
 * file's summary, then uses sl_kstate_append_burst()); a later insert
 * beyond it grows as usual.
 *
 * @param st The state.
 * @param kg Key group in the owned range.
 * @param n  Entries about to be inserted (0: nothing to do).
 * @return 0, -ERANGE if @p kg is out of range, or -ENOMEM (the key group
 *         then holds what it held, possibly with a larger slab or index).
 */
int sl_kstate_reserve(struct sl_kstate *st, uint16_t kg, uint64_t n);

/**
 * Append a burst of new keys with their values to their key groups'
 * slabs, without indexing them: for loading many keys (a restore from a
 * full keyed-state file), whose index sl_kstate_index_appended() then
 * builds in index order, far faster than inserting key by key once the
 * indexes outgrow the caches and the TLB.
 *
 * Only key groups that hold no indexed entry take appends (empty ones,
 * or ones appended to since). Until sl_kstate_index_appended() has run,
 * the appended entries are not found and the state must not be used
 * otherwise (no upsert, get, delete, snapshot) — except for more appends.
 *
 * @param st     The state.
 * @param n      Number of keys, 0..SL_KSTATE_BURST_MAX.
 * @param kgs    Key group of each key.
 * @param hashes 64-bit hash of each key.
 * @param keys   keys[i]: key_size bytes of key i (any alignment).
 * @param values values[i]: value_size bytes of key i's value; NULL:
 *               zero-filled values.
 * @return @p n on success. Otherwise the number k < n of keys appended
 *         (the first k), with errno set for key k, which was not:
 *         - ERANGE: its key group is outside the owned range;
 *         - EBUSY: its key group holds indexed entries;
 *         - ENOMEM: out of memory;
 *         - EINVAL: @p n > SL_KSTATE_BURST_MAX (then 0 is returned).
 */
unsigned int sl_kstate_append_burst(struct sl_kstate *st, unsigned int n,
				    const uint16_t *kgs,
				    const uint64_t *hashes,
				    const void *const *keys,
				    const void *const *values);

/**
 * Index the entries sl_kstate_append_burst() appended, key group by key
 * group: each one's entries sorted by index slot, so that its index is
 * written front to back. Afterwards the state is as if the keys had been
 * inserted one by one (sl_kstate_upsert() and a copy of the value).
 *
 * @param st     The state.
 * @param kg_out If not NULL, receives the key group that failed.
 * @return 0; -EEXIST if a key group was given a key twice (that key group
 *         then stays appended, not indexed: free the state); -ENOMEM.
 */
int sl_kstate_index_appended(struct sl_kstate *st, uint16_t *kg_out);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_KEYED_STATE_H */
