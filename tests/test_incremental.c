/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Incremental checkpoints of a running job (state.backend.incremental):
 *  - with few keys changing between checkpoints, deltas are far smaller
 *    than full files;
 *  - re-reading a checkpoint's chain (full file, then deltas oldest first,
 *    deletions before entries) gives exactly the keyed state that the
 *    checkpoint's source offsets imply (a consistent cut), also across a
 *    declined checkpoint;
 *  - a full file every K (sluice.checkpointing.full-every);
 *  - retention keeps the shared files that kept checkpoints reference and
 *    deletes the others.
 *
 * The keyed operator is "modcount", defined here: per key it counts
 * records modulo MOD and DELETES the key when the count reaches MOD, so
 * deltas carry deletions.  Its input: a "bulk" generator that fills many
 * keys and ends early, and a slow "hot" generator over a few of them that
 * keeps changing a small fraction of the state.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "gen_events.h"
#include "eal_fixture.h"
#include "rm_tree.h"
#include "sluice/io.h"
#include "sluice/job.h"
#include "sluice/keygroup.h"
#include "sluice/keyed_state.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define MOD 3
#define KEYS 40000	/* bulk generator's keys */
#define HOT_KEYS 200	/* the hot generator's keys: 0..HOT_KEYS-1 */
#define P 2		/* bulk generator and modcount parallelism */

struct rec {
	uint64_t key;
	int64_t ts;
	uint64_t value;
};

/* ------------------------------------------------------------ modcount */

struct modcount {
	struct sl_kstate *st;
	uint32_t max_parallelism;
};

static int mc_open(struct sl_task *t, void **opp)
{
	struct modcount *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return -ENOMEM;
	m->max_parallelism = t->info.max_parallelism;
	m->st = sl_kstate_create((uint16_t)t->info.kg_first, (uint16_t)t->info.kg_count,
				 8, 8);
	if (m->st == NULL) {
		free(m);
		return -ENOMEM;
	}
	*opp = m;
	return 0;
}

static int mc_process(void *op, struct sl_task *t, unsigned input, struct sl_batch *b)
{
	struct modcount *m = op;

	(void)t;
	(void)input;
	for (uint32_t i = 0; i < b->count; i++) {
		const struct rec *r = (const struct rec *)(b->data + (size_t)i * b->record_size);
		uint64_t h = sl_key_hash(&r->key, 8);
		uint16_t kg = sl_key_group(h, m->max_parallelism);
		uint64_t *v = sl_kstate_upsert(m->st, kg, h, &r->key, NULL);

		if (v == NULL)
			return -errno;
		if (++*v == MOD && sl_kstate_delete(m->st, kg, h, &r->key) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int mc_snapshot(void *op, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	struct modcount *m = op;

	(void)t;
	return sl_ckpt_put_keyed(ck, m->st, 8, 8);
}

static int mc_restore(void *op, struct sl_task *t, struct sl_restore_ctx *rc)
{
	struct modcount *m = op;

	(void)t;
	return sl_restore_keyed(rc, m->st, 8, 8);
}

static void mc_close(void *op, struct sl_task *t)
{
	struct modcount *m = op;

	(void)t;
	sl_kstate_free(m->st);
	free(m);
}

static const struct sl_operator_ops modcount_ops = {
	.type = "modcount",
	.min_inputs = 1,
	.max_inputs = 2,
	.sink = true,
	.open = mc_open,
	.process = mc_process,
	.snapshot = mc_snapshot,
	.restore = mc_restore,
	.close = mc_close,
};

/* ------------------------------------------------------------ the job */

struct gens {
	struct sl_generator_conf bulk, hot;
	uint32_t *bulk_keys, *hot_keys; /* key of record i */
};

static uint32_t *keys_of(const struct sl_generator_conf *g)
{
	uint32_t *k = malloc(g->count * sizeof(*k));

	cr_assert_not_null(k);
	for (uint64_t i = 0; i < g->count; i++) {
		struct rec r;
		sl_generator_record(g, i, &r);
		k[i] = (uint32_t)r.key;
	}
	return k;
}

static void gens_init(struct gens *gs, uint64_t bulk_n, uint64_t hot_n, double hot_rate)
{
	gen_events_conf(&gs->bulk, 5, bulk_n, 4e6, KEYS);
	gen_events_conf(&gs->hot, 6, hot_n, hot_rate, HOT_KEYS);
	gs->bulk_keys = keys_of(&gs->bulk);
	gs->hot_keys = keys_of(&gs->hot);
}

static void gens_fini(struct gens *gs)
{
	free(gs->bulk_keys);
	free(gs->hot_keys);
}

/* bulk(P) and hot(1), both hash-partitioned into modcount(P). */
static struct sl_job *make_job(struct sl_job_config *cfg, struct gens *gs)
{
	struct sl_job *job = sl_job_create("incr", cfg);
	int bi = sl_job_add(job, "bulk", &sl_op_generator, &gs->bulk, P);
	int hi = sl_job_add(job, "hot", &sl_op_generator, &gs->hot, 1);
	int mi = sl_job_add(job, "modcount", &modcount_ops, NULL, P);

	cr_assert(bi >= 0 && hi >= 0 && mi >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, bi, mi, SL_PART_HASH, "key"), 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, hi, mi, SL_PART_HASH, "key"), 0, "%s", sl_job_error(job));
	return job;
}

static void config(struct sl_job_config *cfg, const char *root, uint32_t full_every,
		   uint32_t retained, uint64_t interval_ms)
{
	sl_job_config_defaults(cfg);
	cfg->checkpoint.interval_ms = interval_ms;
	cfg->checkpoint.retained = retained;
	cfg->checkpoint.incremental = true;
	cfg->checkpoint.full_every = full_every;
	snprintf(cfg->checkpoint.dir, sizeof(cfg->checkpoint.dir), "%s", root);
}

/* ------------------------------------------------------ reading chains */

/* Keyed state rebuilt from files: value per key, 0 = absent. */
struct rebuilt {
	uint64_t v[KEYS];
};

static int on_deletions(void *arg, const struct sl_snap_kv *kv, unsigned n)
{
	struct rebuilt *s = arg;

	for (unsigned i = 0; i < n; i++) {
		uint64_t key;
		memcpy(&key, kv[i].key, 8);
		cr_assert_lt(key, KEYS);
		s->v[key] = 0;
	}
	return 0;
}

static int on_entries(void *arg, const struct sl_snap_kv *kv, unsigned n)
{
	struct rebuilt *s = arg;

	for (unsigned i = 0; i < n; i++) {
		uint64_t key, v;
		memcpy(&key, kv[i].key, 8);
		memcpy(&v, kv[i].value, 8);
		cr_assert_lt(key, KEYS);
		cr_assert(v > 0 && v < MOD, "key %" PRIu64 " has count %" PRIu64, key, v);
		s->v[key] = v;
	}
	return 0;
}

/* What one subtask's chain in one checkpoint looked like. */
struct chain {
	uint32_t len;		/* keyed files */
	uint64_t bytes;		/* all of them */
	uint64_t own_bytes;	/* the one this checkpoint wrote */
	bool own_delta;		/* it is a delta ... */
	uint64_t own_base;	/* ... on this checkpoint */
};

/*
 * Apply a subtask's keyed files in metadata order into *s, checking that
 * they form a chain: a full file, then deltas each based on the file
 * before it, all in shared/, the last one written by this checkpoint.
 */
static void apply_chain(const char *root, uint64_t id, const struct sl_snap_subtask_meta *st,
			struct rebuilt *s, struct chain *c)
{
	struct sl_snap_err err = { "" };
	uint64_t prev = 0;

	memset(c, 0, sizeof(*c));
	for (uint32_t f = 0; f < st->n_files; f++) {
		const struct sl_snap_file_ref *ref = &st->files[f];
		struct sl_snap_kstate_visitor v = { .on_deletions = on_deletions,
						    .on_entries = on_entries, .arg = s };
		struct sl_snap_kstate_info info;
		struct sl_snap_src src;
		char path[4700];

		cr_assert_eq(ref->type, SL_SNAP_FILE_KEYED);
		cr_assert_eq(strncmp(ref->path, "shared/", 7), 0,
			     "incremental keyed files live in shared/: %s", ref->path);
		snprintf(path, sizeof(path), "%s/%s", root, ref->path);
		cr_assert_eq(sl_snap_src_open(&src, path, NULL, &err), 0, "%s", err.msg);
		cr_assert_eq(sl_snap_kstate_load(&src, &v, &info, &err), 0, "%s", err.msg);
		sl_snap_src_close(&src);
		if (f == 0)
			cr_assert_eq(info.kind, SL_SNAP_KSTATE_FULL,
				     "checkpoint %" PRIu64 ": a chain starts with a full file", id);
		else
			cr_assert(info.kind == SL_SNAP_KSTATE_INCREMENTAL &&
				  info.base_checkpoint_id == prev,
				  "checkpoint %" PRIu64 ": file %u is a delta on the one before", id, f);
		cr_assert_eq(info.checkpoint_id, ref->checkpoint_id);
		prev = info.checkpoint_id;
		c->len++;
		c->bytes += ref->size;
		if (f + 1 == st->n_files) {
			cr_assert_eq(ref->checkpoint_id, id, "the newest file is this checkpoint's");
			c->own_bytes = ref->size;
			c->own_delta = info.kind == SL_SNAP_KSTATE_INCREMENTAL;
			c->own_base = info.base_checkpoint_id;
		}
		sl_snap_kstate_info_clear(&info);
	}
}

/* Source offset recorded by a generator subtask; its count if it had
 * finished (it records nothing then). */
static uint64_t offset_of(const struct sl_snap_subtask_meta *st, uint64_t count)
{
	uint64_t next = count;

	cr_assert_leq(st->n_blobs, 1);
	if (st->n_blobs == 1)
		memcpy(&next, st->blobs[0].data, 8);
	return next;
}

/* The counts the offsets imply: records of key k before the cut, mod MOD. */
static void expected(const struct sl_snap_metadata *m, const struct gens *gs,
		     struct rebuilt *want, bool *bulk_done)
{
	const struct sl_snap_operator_meta *bulk = sl_snap_meta_find(m, "bulk");
	const struct sl_snap_operator_meta *hot = sl_snap_meta_find(m, "hot");
	uint64_t *n = calloc(KEYS, sizeof(*n));

	cr_assert(bulk && hot && n);
	*bulk_done = true;
	for (uint32_t s = 0; s < P; s++) {
		uint64_t next = offset_of(&bulk->subtasks[s], gs->bulk.count);
		*bulk_done &= next >= gs->bulk.count;
		for (uint64_t i = s; i < next && i < gs->bulk.count; i += P)
			n[gs->bulk_keys[i]]++;
	}
	uint64_t next = offset_of(&hot->subtasks[0], gs->hot.count);
	for (uint64_t i = 0; i < next && i < gs->hot.count; i++)
		n[gs->hot_keys[i]]++;
	for (unsigned k = 0; k < KEYS; k++)
		want->v[k] = n[k] % MOD;
	free(n);
}

/* ------------------------------------------------------------- tests */

#define MAX_ID 4096

/*
 * bulk: 240k records over 40k keys (ends within the first checkpoints);
 * hot: 4000 records/s over 200 keys for ~2 s, checkpoints every 30 ms with
 * a full one every 4; checkpoint 3 is declined (full disk).  For every
 * complete checkpoint, the chains of both modcount subtasks rebuild
 * exactly the counts its offsets imply; the chain grows by one delta per
 * checkpoint up to K files, then restarts with a full file; a delta taken
 * while only the hot keys change is a small fraction of the full state.
 */
Test(incremental, deltas_are_small_and_chains_rebuild_the_cut, .timeout = 180)
{
	static const struct sl_io_fault enospc = {
		.path_substr = "-c3.", .budget_err = ENOSPC, .budget_bytes = 100 };
	const uint32_t K = 4;
	struct sl_job_config cfg;
	struct sl_job_checkpoints sum;
	struct gens gs;
	char root[] = "/tmp/sl-incr-XXXXXX";

	sl_test_eal("(0-2)@(0-1)", NULL);
	cr_assert_not_null(mkdtemp(root));
	gens_init(&gs, 240000, 8000, 4000);
	config(&cfg, root, K, 1000, 30);
	cfg.checkpoint.tolerable_failures = 2;
	cfg.checkpoint.io_fault = &enospc;
	struct sl_job *job = make_job(&cfg, &gs);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, &sum);
	sl_job_free(job);

	uint64_t *ids = NULL;
	size_t nids = 0;
	struct sl_snap_err err = { "" };
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	cr_assert_geq(nids, 3 * K, "checkpoints completed while the job ran (%zu)", nids);
	cr_assert_geq(sum.failed, 1, "checkpoint 3 was declined: %s", sum.last_failure);

	static struct chain chains[MAX_ID][P];
	static bool complete[MAX_ID], bulk_done[MAX_ID], have[MAX_ID][P];
	struct rebuilt *got = malloc(sizeof(*got)), *want = malloc(sizeof(*want));
	uint64_t small = 0, fulls = 0, deltas = 0, delta_bytes = 0, full_bytes = 0;
	uint64_t max_delta_ratio_pm = 0; /* per mille of the full state */

	cr_assert(got && want);
	for (size_t i = 0; i < nids; i++) {
		cr_assert_lt(ids[i], MAX_ID);
		complete[ids[i]] = true;
	}
	cr_assert(!complete[3], "the declined checkpoint is not complete");
	/* oldest first: a delta's base was checked before it */
	for (size_t i = nids; i-- > 0;) {
		const uint64_t id = ids[i];
		struct sl_snap_metadata *m = NULL;

		cr_assert_eq(sl_snap_chk_validate(root, id, &m, &err), 0, "%s", err.msg);
		expected(m, &gs, want, &bulk_done[id]);
		memset(got, 0, sizeof(*got));
		const struct sl_snap_operator_meta *mc = sl_snap_meta_find(m, "modcount");
		cr_assert_not_null(mc);
		for (uint32_t s = 0; s < P; s++) {
			struct chain *c = &chains[id][s];
			if (mc->subtasks[s].n_files == 0)
				continue; /* had finished: nothing to restore */
			apply_chain(root, id, &mc->subtasks[s], got, c);
			have[id][s] = true;
			cr_assert_leq(c->len, K, "a chain holds at most K files");
			/* the base is the previous COMPLETE checkpoint; after a
			 * declined one the delta reaches back past it */
			uint64_t prev = id - 1;
			while (prev > 0 && !complete[prev])
				prev--;
			if (prev > 0 && have[prev][s]) {
				uint32_t plen = chains[prev][s].len;
				cr_assert_eq(c->len, plen == K ? 1 : plen + 1,
					     "checkpoint %" PRIu64 " subtask %u: chain of %u after %u",
					     id, s, c->len, plen);
				if (c->own_delta)
					cr_assert_eq(c->own_base, prev);
			}
			if (c->own_delta) {
				deltas++;
				if (bulk_done[c->own_base]) {
					/* only hot keys changed since the base */
					uint64_t pm = c->own_bytes * 1000 / c->bytes;
					max_delta_ratio_pm = pm > max_delta_ratio_pm ? pm : max_delta_ratio_pm;
					cr_assert_lt(c->own_bytes * 10, c->bytes,
						     "checkpoint %" PRIu64 ": delta %" PRIu64 " B of %" PRIu64
						     " B", id, c->own_bytes, c->bytes);
					small++;
					delta_bytes += c->own_bytes;
				}
			} else {
				fulls++;
				if (bulk_done[id])
					full_bytes = c->own_bytes > full_bytes ? c->own_bytes : full_bytes;
			}
		}
		for (unsigned k = 0; k < KEYS; k++)
			cr_assert_eq(got->v[k], want->v[k],
				     "checkpoint %" PRIu64 ": key %u rebuilt as %" PRIu64
				     " from its chain, but its offsets imply %" PRIu64,
				     id, k, got->v[k], want->v[k]);
		sl_snap_meta_free(m);
	}
	cr_assert(complete[4] && chains[4][0].own_delta && chains[4][0].own_base == 2,
		  "after the declined checkpoint 3, checkpoint 4 is a delta on 2");
	cr_assert_geq(small, 4, "deltas taken while only the hot keys changed");
	cr_assert_geq(fulls, 2 * P, "a full file every K (%u) checkpoints", K);
	cr_assert_geq(deltas, 2 * fulls, "mostly deltas");

	/* the same figures from the checkpoint summary (acks' statistics) */
	cr_assert_lt(sum.min_state_written_bytes * 10, sum.max_full_state_bytes,
		     "summary: smallest checkpoint wrote %" PRIu64 " B, largest references %" PRIu64
		     " B", sum.min_state_written_bytes, sum.max_full_state_bytes);

	/* the declined checkpoint's shared files were collected */
	char shared[4200];
	snprintf(shared, sizeof(shared), "%s/shared", root);
	DIR *d = opendir(shared);
	cr_assert_not_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		cr_assert_null(strstr(e->d_name, "-c3."), "orphan %s removed", e->d_name);
	closedir(d);

	fprintf(stderr,
		"incremental: %zu checkpoints, %" PRIu64 " full files, %" PRIu64 " deltas; "
		"full file %.1f KiB, mean delta (hot keys only) %.1f KiB, largest delta %.1f%% of its chain; "
		"summary: min written %.1f KiB, max referenced %.1f KiB\n",
		nids, fulls, deltas, full_bytes / 1024.0, small ? delta_bytes / 1024.0 / small : 0.0,
		max_delta_ratio_pm / 10.0, sum.min_state_written_bytes / 1024.0,
		sum.max_full_state_bytes / 1024.0);
	free(got);
	free(want);
	free(ids);
	gens_fini(&gs);
	rm_tree(root);
	sl_test_eal_fini();
}

/* Names in <root>/shared. */
static size_t list_shared(const char *root, char names[][264], size_t max)
{
	char shared[4200];
	size_t n = 0;
	DIR *d;

	snprintf(shared, sizeof(shared), "%s/shared", root);
	d = opendir(shared);
	cr_assert_not_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		cr_assert_lt(n, max);
		snprintf(names[n++], 264, "shared/%s", e->d_name);
	}
	closedir(d);
	return n;
}

static bool referenced(const struct sl_snap_metadata *m, const char *path)
{
	for (uint32_t o = 0; o < m->n_operators; o++)
		for (uint32_t s = 0; s < m->operators[o].parallelism; s++) {
			const struct sl_snap_subtask_meta *st = &m->operators[o].subtasks[s];
			for (uint32_t f = 0; f < st->n_files; f++)
				if (strcmp(st->files[f].path, path) == 0)
					return true;
		}
	return false;
}

/*
 * Retention with shared files: after the run only the newest `retained`
 * checkpoints exist, they validate (every file they reference is there),
 * and shared/ holds exactly the files they reference.  Returns the oldest
 * checkpoint id a kept checkpoint references a file of.
 */
static uint64_t run_retained(uint32_t full_every, uint32_t retained, uint32_t max_concurrent,
			     uint64_t interval_ms, const struct sl_io_fault *slow,
			     uint64_t *completed)
{
	struct sl_job_config cfg;
	struct sl_job_checkpoints sum;
	struct gens gs;
	char root[] = "/tmp/sl-incret-XXXXXX";
	static char names[4096][264];

	cr_assert_not_null(mkdtemp(root));
	/* a small state (~1000 keys per subtask) is stepped out in one go */
	gens_init(&gs, 2000, 8000, 4000);
	config(&cfg, root, full_every, retained, interval_ms);
	cfg.checkpoint.max_concurrent = max_concurrent;
	cfg.checkpoint.tolerable_failures = 1000;
	cfg.checkpoint.io_fault = slow;
	struct sl_job *job = make_job(&cfg, &gs);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, &sum);
	sl_job_free(job);
	*completed = sum.completed;
	/* A checkpoint whose barrier comes while the previous one's keyed
	 * snapshot is still being stepped out is declined (EBUSY): rare, a
	 * starved lcore.  One whose base's files were deleted fails to
	 * finalize ("base checkpoint N ...: missing"), often. */
	cr_assert_null(strstr(sum.last_failure, "finalizing"), "%s", sum.last_failure);
	cr_assert_leq(sum.failed * 4, sum.completed, "%" PRIu64 " failed, %" PRIu64
		      " completed; last: %s", sum.failed, sum.completed, sum.last_failure);

	uint64_t *ids = NULL, oldest = UINT64_MAX;
	size_t nids = 0;
	struct sl_snap_err err = { "" };
	struct sl_snap_metadata *m[8] = { 0 };
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	cr_assert_eq(nids, retained, "the newest %u checkpoints are kept (%zu)", retained, nids);
	for (size_t i = 0; i < nids; i++) {
		cr_assert_eq(sl_snap_chk_validate(root, ids[i], &m[i], &err), 0,
			     "a kept checkpoint is intact: %s", err.msg);
		for (uint32_t o = 0; o < m[i]->n_operators; o++)
			for (uint32_t s = 0; s < m[i]->operators[o].parallelism; s++) {
				const struct sl_snap_subtask_meta *st = &m[i]->operators[o].subtasks[s];
				for (uint32_t f = 0; f < st->n_files; f++)
					if (st->files[f].checkpoint_id < oldest)
						oldest = st->files[f].checkpoint_id;
			}
	}
	size_t n = list_shared(root, names, 4096);
	for (size_t k = 0; k < n; k++) {
		bool ref = false;
		for (size_t i = 0; i < nids; i++)
			ref |= referenced(m[i], names[k]);
		cr_assert(ref, "%s is referenced by no kept checkpoint, yet was not deleted",
			  names[k]);
	}
	fprintf(stderr,
		"retention (full every %u, keep %u, %u concurrent): %" PRIu64 " completed, "
		"%" PRIu64 " failed (%s), kept %zu, shared files left %zu, oldest referenced c%" PRIu64 "\n",
		full_every, retained, max_concurrent, sum.completed, sum.failed, sum.last_failure,
		nids, n, oldest);
	for (size_t i = 0; i < nids; i++)
		sl_snap_meta_free(m[i]);
	free(ids);
	gens_fini(&gs);
	rm_tree(root);
	return oldest;
}

Test(incremental, retention_keeps_referenced_shared_files_and_deletes_the_rest, .timeout = 180)
{
	/* every io completion held 60 ms: a checkpoint (open, writes,
	 * fsync, close per file) lasts longer than the 150 ms interval, so
	 * two run at once */
	static const struct sl_io_fault slow = { .delay_us = 60000 };
	uint64_t completed;

	sl_test_eal("(0-2)@(0-1)", NULL);
	/* one chain for the whole run: the kept checkpoint still needs the
	 * full file of checkpoint 1, long removed itself */
	cr_assert_eq(run_retained(1000, 1, 1, 30, NULL, &completed), 1,
		     "checkpoint 1's full file is kept for the newest checkpoint");
	cr_assert_geq(completed, 4);
	/* chains of 2: older chains become unreferenced and are deleted.
	 * Two at once: when n-1 completes, n may still be pending with a
	 * delta on n-2, whose chain must outlive the retention of n-1 even
	 * though only one checkpoint is retained */
	run_retained(2, 1, 2, 150, &slow, &completed);
	cr_assert_geq(completed, 6, "enough checkpoints that whole chains were dropped");
	sl_test_eal_fini();
}

/*
 * After a restore from a checkpoint of the job's own directory, the first
 * checkpoints are deltas on the restored one, whose chains they reference
 * (as Flink does), instead of full files; their chains still rebuild
 * exactly what their offsets imply.  The restore target is a mid-stream
 * checkpoint of a first run whose chains are shorter than K.
 */
Test(incremental, restored_chain_is_the_base_of_the_next_delta, .timeout = 180)
{
	const uint32_t K = 6;
	struct sl_job_config cfg;
	struct gens gs;
	char root[] = "/tmp/sl-incr-restore-XXXXXX", dir[4200];
	struct sl_snap_err err = { "" };
	uint64_t *ids = NULL, restored = 0, first_new = 0;
	size_t nids = 0;
	struct chain base_chain[P];
	struct rebuilt *got = malloc(sizeof(*got)), *want = malloc(sizeof(*want));

	cr_assert(got && want);
	sl_test_eal("(0-2)@(0-1)", NULL);
	cr_assert_not_null(mkdtemp(root));
	gens_init(&gs, 240000, 6000, 4000);
	config(&cfg, root, K, 1000, 30);
	struct sl_job *job = make_job(&cfg, &gs);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_free(job);

	/* the newest checkpoint with the hot source mid-stream, the bulk one
	 * done, and both chains shorter than K (so a delta can follow) */
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	for (size_t i = 0; i < nids && restored == 0; i++) {
		struct sl_snap_metadata *m = NULL;
		bool bulk_done, ok = true;

		cr_assert_eq(sl_snap_chk_validate(root, ids[i], &m, &err), 0, "%s", err.msg);
		const struct sl_snap_operator_meta *hot = sl_snap_meta_find(m, "hot");
		const struct sl_snap_operator_meta *mc = sl_snap_meta_find(m, "modcount");
		expected(m, &gs, want, &bulk_done);
		ok = bulk_done && offset_of(&hot->subtasks[0], gs.hot.count) < gs.hot.count * 3 / 4;
		for (uint32_t s = 0; s < P && ok; s++)
			ok = mc->subtasks[s].n_files > 0 && mc->subtasks[s].n_files < K;
		if (ok) {
			restored = ids[i];
			memset(got, 0, sizeof(*got));
			for (uint32_t s = 0; s < P; s++)
				apply_chain(root, restored, &mc->subtasks[s], got, &base_chain[s]);
		}
		sl_snap_meta_free(m);
	}
	cr_assert_neq(restored, 0, "a mid-stream checkpoint with short chains among %zu", nids);
	uint64_t newest_before = ids[0];
	free(ids);

	/* run 2, restored from it; ids go on above every chk-<n> */
	snprintf(dir, sizeof(dir), "%s/chk-%" PRIu64, root, restored);
	job = make_job(&cfg, &gs);
	cr_assert_eq(sl_job_restore_from(job, dir), 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_free(job);

	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	for (size_t i = nids; i-- > 0;)
		if (ids[i] > newest_before && first_new == 0)
			first_new = ids[i];
	cr_assert_neq(first_new, 0, "run 2 completed a checkpoint");
	struct sl_snap_metadata *m = NULL;
	bool bulk_done;
	cr_assert_eq(sl_snap_chk_validate(root, first_new, &m, &err), 0, "%s", err.msg);
	expected(m, &gs, want, &bulk_done);
	const struct sl_snap_operator_meta *mc = sl_snap_meta_find(m, "modcount");
	memset(got, 0, sizeof(*got));
	for (uint32_t s = 0; s < P; s++) {
		struct chain c;

		cr_assert_gt(mc->subtasks[s].n_files, 0);
		apply_chain(root, first_new, &mc->subtasks[s], got, &c);
		cr_assert(c.own_delta && c.own_base == restored,
			  "checkpoint %" PRIu64 " subtask %u: a delta on the restored checkpoint %" PRIu64
			  " (%s on %" PRIu64 ")", first_new, s, restored,
			  c.own_delta ? "a delta" : "a full file", c.own_base);
		cr_assert_eq(c.len, base_chain[s].len + 1, "the restored chain, then the delta");
		cr_assert_lt(c.own_bytes * 4, c.bytes, "the delta is small: %" PRIu64 " of %" PRIu64
			     " B", c.own_bytes, c.bytes);
	}
	for (unsigned k = 0; k < KEYS; k++)
		cr_assert_eq(got->v[k], want->v[k],
			     "checkpoint %" PRIu64 ": key %u rebuilt as %" PRIu64
			     " from its chain, but its offsets imply %" PRIu64,
			     first_new, k, got->v[k], want->v[k]);
	fprintf(stderr, "incremental after restore: checkpoint %" PRIu64
		" is a delta on the restored checkpoint %" PRIu64 "\n", first_new, restored);
	sl_snap_meta_free(m);
	free(ids);
	free(got);
	free(want);
	gens_fini(&gs);
	rm_tree(root);
	sl_test_eal_fini();
}
