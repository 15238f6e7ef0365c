/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoints of a job with two inputs joined into one keyed operator, one
 * input deliberately slow, in all four modes:
 *
 *   gen_a (2 subtasks, fast) ----------------hash(key)--\
 *                                                        co_count (2) -rebalance-> sink (1)
 *   gen_b (1) -forward-> slow (1, 1 ms/batch) -hash(key)-/
 *
 * co_count is a user-defined two-input keyed operator: per key it counts
 * the records of each input in an sl_kstate (snapshotted with
 * sl_ckpt_put_keyed()) and emits one record (key, seq, input) per record it
 * reads; the count sink snapshots how many records it received and their
 * checksum.  Every generator record carries its global index (seq), so
 * each record is attributable to one generator and one position.
 *
 * The slow stage sleeps per batch, so the ring in front of it is always
 * full: gen_b's barrier reaches co_count a ring's worth of sleeps (~30 ms)
 * after gen_a's.  That is the crafted interleaving: aligned checkpoints
 * block gen_a's channels for that long, unaligned ones snapshot at once and
 * persist what is in flight, aligned-with-timeout ones (1 ms) switch, and
 * at-least-once ones keep reading gen_a's post-barrier records into the
 * state before gen_b's marker arrives.
 *
 * For every complete checkpoint the test re-reads the files and checks
 * against the generator offsets it recorded (expected counts computed from
 * the generator's definition, not from the engine):
 *  - exactly-once modes: per key and input, co_count's state plus the
 *    in-flight generator records (channel state of any operator) equals
 *    what the offsets cover; every in-flight record lies before its
 *    generator's offset and is persisted once; the sink's count plus
 *    co_count's output in flight equals the records in co_count's state,
 *    and their checksum equals that of the covered records that are not in
 *    flight (so the sink saw exactly those, each once);
 *  - at-least-once: nothing is lost, and some key of the fast input is in
 *    the state more often than the offsets allow: the records read after
 *    its early barrier, which a restore would replay again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <rte_cycles.h>
#include <xxhash.h>

#include "ckpt_cut.h"
#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/keyed_state.h"
#include "sluice/keygroup.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define KEYS 1000
#define PA 2		/* gen_a and co_count subtasks */
#define N_A 1200000	/* gen_a records, at RATE_A */
#define RATE_A 1e6
#define N_B 240000	/* gen_b records, as fast as the slow stage takes them */
#define SLOW_US 1000	/* the slow stage's sleep per batch */

enum { IN_A, IN_B, N_IN };
static const char *const gen_uid[N_IN] = { "gen_a", "gen_b" };
static const uint32_t gen_par[N_IN] = { PA, 1 };
static const uint64_t gen_count[N_IN] = { N_A, N_B };

/* generator records */
struct rec {
	uint64_t key;
	int64_t ts;
	uint64_t seq;
};

/* co_count's output records */
struct out {
	uint64_t key;
	uint64_t seq;
	uint64_t input;
};

/* ------------------------------------------------ co_count operator */

struct co_count_conf {
	uint16_t key_off[N_IN], seq_off[N_IN]; /* resolved by plan */
};

static int co_count_plan(void *conf, const struct sl_schema *const in[],
			 unsigned n_in, struct sl_schema *out, char *err,
			 size_t errlen)
{
	struct co_count_conf *c = conf;

	for (unsigned i = 0; i < n_in; i++) {
		const struct sl_field *k = sl_schema_find(in[i], "key");
		const struct sl_field *s = sl_schema_find(in[i], "seq");
		if (k == NULL || s == NULL || k->type != SL_TYPE_U64 ||
		    s->type != SL_TYPE_U64) {
			snprintf(err, errlen, "input %u needs u64 fields 'key' and 'seq'", i);
			return -EINVAL;
		}
		c->key_off[i] = k->offset;
		c->seq_off[i] = s->offset;
	}
	sl_schema_add(out, "key", SL_TYPE_U64, 0);
	sl_schema_add(out, "seq", SL_TYPE_U64, 0);
	sl_schema_add(out, "input", SL_TYPE_U64, 0);
	return 0;
}

static int co_count_open(struct sl_task *t, void **op)
{
	/* key u64 -> u64 count[N_IN] */
	struct sl_kstate *st = sl_kstate_create((uint16_t)t->info.kg_first,
						(uint16_t)t->info.kg_count, 8,
						N_IN * 8);

	if (st == NULL)
		return -errno;
	*op = st;
	return 0;
}

static int co_count_process(void *op, struct sl_task *t, unsigned input,
			    struct sl_batch *b)
{
	const struct co_count_conf *c = t->info.conf;
	struct sl_kstate *st = op;
	const uint8_t *rec = b->data;

	for (uint32_t i = 0; i < b->count; i++, rec += b->record_size) {
		uint64_t key, seq;
		memcpy(&key, rec + c->key_off[input], 8);
		memcpy(&seq, rec + c->seq_off[input], 8);
		uint64_t h = sl_key_hash(&key, 8);
		uint64_t *v = sl_kstate_upsert(st, sl_key_group(h, t->info.max_parallelism),
					       h, &key, NULL);
		if (v == NULL) {
			sl_task_error(t, "key %" PRIu64 ": %s", key, strerror(errno));
			return -errno;
		}
		v[input]++;
		struct out *o = sl_emit(t);
		*o = (struct out){ .key = key, .seq = seq, .input = input };
	}
	return 0;
}

static int co_count_snapshot(void *op, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	(void)t;
	return sl_ckpt_put_keyed(ck, op, 8, N_IN * 8);
}

static void co_count_close(void *op, struct sl_task *t)
{
	(void)t;
	sl_kstate_free(op);
}

static const struct sl_operator_ops co_count = {
	.type = "test-co-count", .conf_size = sizeof(struct co_count_conf),
	.min_inputs = 2, .max_inputs = 2,
	.plan = co_count_plan, .open = co_count_open, .process = co_count_process,
	.snapshot = co_count_snapshot, .close = co_count_close,
};

/* ------------------------------------------------ slow stage */

static int slow_plan(void *conf, const struct sl_schema *const in[], unsigned n_in,
		     struct sl_schema *out, char *err, size_t errlen)
{
	(void)conf, (void)n_in, (void)err, (void)errlen;
	*out = *in[0];
	return 0;
}

static int slow_process(void *op, struct sl_task *t, unsigned input,
			struct sl_batch *b)
{
	(void)op, (void)input;
	rte_delay_us_sleep(SLOW_US);
	sl_emit_forward(t, b);
	return 0;
}

static const struct sl_operator_ops slow_forward = {
	.type = "test-slow-forward", .min_inputs = 1, .max_inputs = 1,
	.plan = slow_plan, .process = slow_process,
};

/* ------------------------------------------------ expected records */

static void gen_conf(struct sl_generator_conf *g, unsigned in)
{
	sl_generator_conf_defaults(g);
	sl_schema_add(&g->schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g->schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&g->schema, "seq", SL_TYPE_U64, 0);
	g->seed = in == IN_A ? 21 : 22;
	g->count = gen_count[in];
	g->rate = in == IN_A ? RATE_A : 0;
	g->key_cardinality = KEYS;
}

/* Every generator record, computed once from the generator's definition:
 * its key, and the checksum term of co_count's output record for it. */
struct truth {
	uint16_t *key[N_IN];
	uint64_t *out_hash[N_IN];
};

static void truth_build(struct truth *tr)
{
	for (unsigned in = 0; in < N_IN; in++) {
		struct sl_generator_conf g;
		gen_conf(&g, in);
		tr->key[in] = malloc(gen_count[in] * sizeof(uint16_t));
		tr->out_hash[in] = malloc(gen_count[in] * sizeof(uint64_t));
		cr_assert(tr->key[in] && tr->out_hash[in]);
		for (uint64_t i = 0; i < gen_count[in]; i++) {
			struct rec r;
			sl_generator_record(&g, i, &r);
			cr_assert_eq(r.seq, i);
			struct out o = { .key = r.key, .seq = i, .input = in };
			tr->key[in][i] = (uint16_t)r.key;
			tr->out_hash[in][i] = XXH3_64bits(&o, sizeof(o));
		}
	}
}

static void truth_free(struct truth *tr)
{
	for (unsigned in = 0; in < N_IN; in++) {
		free(tr->key[in]);
		free(tr->out_hash[in]);
	}
}

/* ------------------------------------------------ one checkpoint */

/* What the generator offsets of a checkpoint cover.  Offsets only grow,
 * so checkpoints are checked oldest first and this is advanced from one
 * to the next. */
struct covered {
	uint64_t next[N_IN][PA];	 /* generator offsets */
	uint64_t expect[N_IN][KEYS];	 /* covered records per key */
	uint64_t records[N_IN];
	uint64_t sum;			 /* their out_hash terms */
};

static void covered_init(struct covered *cv)
{
	memset(cv, 0, sizeof(*cv));
	for (unsigned in = 0; in < N_IN; in++)
		for (uint32_t s = 0; s < gen_par[in]; s++)
			cv->next[in][s] = s; /* subtask s produces s, s + p, ... */
}

static void covered_advance(struct covered *cv, const struct truth *tr,
			    const struct sl_snap_metadata *m)
{
	for (unsigned in = 0; in < N_IN; in++) {
		const struct sl_snap_operator_meta *g = ckpt_cut_operator(m, gen_uid[in]);
		cr_assert_eq(g->parallelism, gen_par[in]);
		for (uint32_t s = 0; s < gen_par[in]; s++) {
			uint64_t next = ckpt_cut_gen_next(g, s, gen_count[in]), i;
			cr_assert_geq(next, cv->next[in][s], "checkpoint %" PRIu64 ": %s "
				      "subtask %u went back", m->checkpoint_id, gen_uid[in], s);
			for (i = cv->next[in][s]; i < next && i < gen_count[in];
			     i += gen_par[in]) {
				cv->expect[in][tr->key[in][i]]++;
				cv->sum += tr->out_hash[in][i];
				cv->records[in]++;
			}
			cv->next[in][s] = next;
		}
	}
}

/* What one checkpoint holds, tallied from its files. */
struct cut {
	const struct truth *tr;
	const struct covered *cv;
	uint64_t state[N_IN][KEYS];	 /* co_count's keyed state */
	uint64_t inflight[N_IN][KEYS];	 /* generator records in channel state */
	uint8_t *seen[N_IN];		 /* by seq: persisted in flight */
	uint64_t inflight_sum;		 /* their out_hash terms */
	uint64_t inflight_records;	 /* generator records in flight */
	uint64_t inflight_at_co_count;	 /* ... persisted by co_count */
	uint64_t out_inflight;		 /* co_count output in flight */
	uint64_t out_inflight_sum;	 /* its checksum */
};

static int sender_input(const char *sender)
{
	if (strcmp(sender, "gen_a") == 0)
		return IN_A;
	if (strcmp(sender, "gen_b") == 0 || strcmp(sender, "slow") == 0)
		return IN_B;
	cr_assert_str_eq(sender, "co_count", "records from an unknown sender");
	return -1;
}

static void on_keyed(void *arg, const char *owner, const struct sl_snap_kv *kv,
		     unsigned n)
{
	struct cut *c = arg;

	cr_assert_str_eq(owner, "co_count", "only co_count has keyed state");
	for (unsigned i = 0; i < n; i++) {
		uint64_t key, count[N_IN];
		memcpy(&key, kv[i].key, 8);
		memcpy(count, kv[i].value, sizeof(count));
		cr_assert_lt(key, KEYS);
		for (unsigned in = 0; in < N_IN; in++)
			c->state[in][key] += count[in];
	}
}

static void on_batch(void *arg, const char *owner, const char *sender,
		     const struct sl_snap_chan_batch *b)
{
	struct cut *c = arg;
	int in = sender_input(sender);

	if (in < 0) {
		cr_assert_eq(b->record_size, sizeof(struct out));
		for (uint32_t i = 0; i < b->record_count; i++)
			c->out_inflight_sum += XXH3_64bits((const struct out *)b->records + i,
							   sizeof(struct out));
		c->out_inflight += b->record_count;
		return;
	}
	cr_assert_eq(b->record_size, sizeof(struct rec));
	for (uint32_t i = 0; i < b->record_count; i++) {
		const struct rec *r = (const struct rec *)b->records + i;
		cr_assert_lt(r->seq, gen_count[in]);
		cr_assert_lt(r->seq, c->cv->next[in][r->seq % gen_par[in]],
			     "%s record %" PRIu64 " persisted in flight (by %s) but it lies "
			     "after its generator's offset %" PRIu64 ": after the barrier",
			     gen_uid[in], r->seq, owner,
			     c->cv->next[in][r->seq % gen_par[in]]);
		cr_assert_not(c->seen[in][r->seq], "%s record %" PRIu64
			      " persisted in flight twice (again by %s)", gen_uid[in],
			      r->seq, owner);
		cr_assert_eq(r->key, c->tr->key[in][r->seq]);
		c->seen[in][r->seq] = 1;
		c->inflight[in][r->key]++;
		c->inflight_sum += c->tr->out_hash[in][r->seq];
	}
	c->inflight_records += b->record_count;
	if (strcmp(owner, "co_count") == 0)
		c->inflight_at_co_count += b->record_count;
}

/* Figures of one mode's run, over its complete checkpoints. */
struct run_figures {
	unsigned checkpoints;
	unsigned mid;			/* taken with both inputs running */
	unsigned with_channel_state;
	uint64_t inflight_records;
	uint64_t inflight_at_co_count;
	unsigned double_counted;	/* checkpoints with a key over-counted */
	uint64_t excess[N_IN];		/* records counted beyond the offsets */
	uint64_t worst_excess;		/* of one key, with where */
	unsigned worst_key, worst_in;
	uint64_t worst_id, worst_state, worst_expect;
};

/*
 * Check checkpoint `id` of `root`, whose offsets cover `cv`.  `exact`: the
 * exactly-once checks; otherwise nothing may be missing and over-counting
 * is tallied.
 */
static void check_cut(const char *root, uint64_t id, const struct truth *tr,
		      struct covered *cv, bool exact, struct run_figures *f)
{
	struct cut *c = calloc(1, sizeof(*c));
	struct ckpt_cut_visitor v = { .keyed = on_keyed, .batch = on_batch, .arg = c };
	uint64_t state_total = 0, excess[N_IN] = { 0 };
	char dir[4300];

	cr_assert_not_null(c);
	struct sl_snap_metadata *m = ckpt_cut_open(root, id, dir, sizeof(dir));
	covered_advance(cv, tr, m);
	c->tr = tr;
	c->cv = cv;
	bool mid = true;
	for (unsigned in = 0; in < N_IN; in++) {
		mid &= cv->records[in] > 0 && cv->records[in] < gen_count[in];
		c->seen[in] = calloc(gen_count[in], 1);
		cr_assert_not_null(c->seen[in]);
	}
	static const char *const uids[] = { "gen_a", "gen_b", "slow", "co_count", "sink" };
	for (unsigned u = 0; u < RTE_DIM(uids); u++)
		ckpt_cut_walk(dir, ckpt_cut_operator(m, uids[u]), &v);

	for (unsigned in = 0; in < N_IN; in++) {
		for (unsigned k = 0; k < KEYS; k++) {
			uint64_t got = c->state[in][k] + c->inflight[in][k];
			state_total += c->state[in][k];
			if (exact)
				cr_assert_eq(got, cv->expect[in][k],
					     "checkpoint %" PRIu64 ": key %u of %s is in co_count's "
					     "state %" PRIu64 " times and in flight %" PRIu64
					     " times, but the offsets cover %" PRIu64 " of its records",
					     id, k, gen_uid[in], c->state[in][k], c->inflight[in][k],
					     cv->expect[in][k]);
			else
				cr_assert_geq(got, cv->expect[in][k], "checkpoint %" PRIu64
					      ": key %u of %s lost (%" PRIu64 " < %" PRIu64 ")",
					      id, k, gen_uid[in], got, cv->expect[in][k]);
			if (got <= cv->expect[in][k])
				continue;
			excess[in] += got - cv->expect[in][k];
			if (got - cv->expect[in][k] > f->worst_excess) {
				f->worst_excess = got - cv->expect[in][k];
				f->worst_key = k;
				f->worst_in = in;
				f->worst_id = id;
				f->worst_state = c->state[in][k];
				f->worst_expect = cv->expect[in][k];
			}
		}
	}

	/* the sink's cut: what co_count emitted before its snapshot (one
	 * record per record in its state) reached the sink or is in flight */
	const struct sl_snap_operator_meta *sink = ckpt_cut_operator(m, "sink");
	uint64_t sink_blob[2] = { 0, 0 };
	cr_assert_eq(sink->subtasks[0].n_blobs, 1);
	memcpy(sink_blob, sink->subtasks[0].blobs[0].data, sizeof(sink_blob));
	if (exact) {
		cr_assert_eq(sink_blob[0] + c->out_inflight, state_total,
			     "checkpoint %" PRIu64 ": the sink holds %" PRIu64 " records and %"
			     PRIu64 " more are in flight, but co_count's state counts %" PRIu64,
			     id, sink_blob[0], c->out_inflight, state_total);
		cr_assert_eq(sink_blob[1] + c->out_inflight_sum, cv->sum - c->inflight_sum,
			     "checkpoint %" PRIu64 ": the sink's records are not exactly the "
			     "covered records minus those in flight", id);
	} else {
		cr_assert_geq(sink_blob[0], state_total);
	}

	f->checkpoints++;
	f->mid += mid;
	f->with_channel_state += c->inflight_records + c->out_inflight > 0;
	f->inflight_records += c->inflight_records;
	f->inflight_at_co_count += c->inflight_at_co_count;
	f->double_counted += excess[IN_A] + excess[IN_B] > 0;
	for (unsigned in = 0; in < N_IN; in++) {
		f->excess[in] += excess[in];
		free(c->seen[in]);
	}
	sl_snap_meta_free(m);
	free(c);
}

/* ------------------------------------------------ the job */

static void run_mode(enum sl_ckpt_mode mode, struct run_figures *f)
{
	const char *name = sl_ckpt_mode_name(mode);
	struct sl_job_config cfg;
	struct sl_generator_conf ga, gb;
	struct co_count_conf cc = { { 0 } };
	/* with a result the sink also sums its checksum (into its snapshot) */
	struct sl_count_result out = { .max_watermark = SL_WATERMARK_MIN };
	struct sl_count_sink_conf sink = { .result = &out };
	struct sl_job_checkpoints sum;
	struct truth tr;
	char root[] = "/tmp/sl-ckjoin-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.ring_size = 32;	/* the slow stage's full ring: ~32 ms of sleeps */
	cfg.burst_size = 4;	/* it polls barriers every 4 batches, not 32 */
	cfg.checkpoint.interval_ms = 50;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.mode = mode;
	cfg.checkpoint.aligned_timeout_ms = 1;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&ga, IN_A);
	gen_conf(&gb, IN_B);

	struct sl_job *job = sl_job_create("ckjoin", &cfg);
	int a = sl_job_add(job, "gen_a", &sl_op_generator, &ga, PA);
	int b = sl_job_add(job, "gen_b", &sl_op_generator, &gb, 1);
	int s = sl_job_add(job, "slow", &slow_forward, NULL, 1);
	int j = sl_job_add(job, "co_count", &co_count, &cc, PA);
	int k = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert(a >= 0 && b >= 0 && s >= 0 && j >= 0 && k >= 0, "%s", sl_job_error(job));
	/* logical inputs in connection order: 0 = gen_a, 1 = slow (gen_b) */
	cr_assert_eq(sl_job_connect(job, a, j, SL_PART_HASH, "key"), 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, b, s, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_connect(job, s, j, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, j, k, SL_PART_REBALANCE, NULL), 0);
	/* the sleeping stage alone on its lcore: it must not stall the rest */
	for (uint32_t i = 0; i < PA; i++) {
		cr_assert_eq(sl_job_place(job, a, i, 1), 0);
		cr_assert_eq(sl_job_place(job, j, i, 2), 0);
	}
	cr_assert_eq(sl_job_place(job, b, 0, 1), 0);
	cr_assert_eq(sl_job_place(job, k, 0, 1), 0);
	cr_assert_eq(sl_job_place(job, s, 0, 3), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	sl_job_checkpoint_summary(job, &sum);

	uint64_t *ids = NULL;
	size_t nids = 0;
	struct sl_snap_err err;
	struct covered *cv = malloc(sizeof(*cv));
	cr_assert_not_null(cv);
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	cr_assert_eq(nids, sum.completed, "every completed checkpoint is on disk");
	truth_build(&tr);
	uint64_t all_sum = 0;
	for (unsigned in = 0; in < N_IN; in++)
		for (uint64_t i = 0; i < gen_count[in]; i++)
			all_sum += tr.out_hash[in][i];
	cr_assert_eq(out.records, N_A + N_B, "the sink got every record once");
	cr_assert_eq(out.checksum, all_sum, "the sink got every record once");
	memset(f, 0, sizeof(*f));
	covered_init(cv);
	for (size_t i = nids; i-- > 0;) /* oldest first */
		check_cut(root, ids[i], &tr, cv, mode != SL_CKPT_AT_LEAST_ONCE, f);
	free(cv);
	truth_free(&tr);
	free(ids);

	fprintf(stderr, "%s: %u checkpoints (%u with both inputs mid-stream), %.0f..%.0f ms; "
		"channel state in %u, %" PRIu64 " generator records in flight (%" PRIu64
		" persisted by co_count)\n", name, f->checkpoints, f->mid,
		sum.min_duration_ns / 1e6, sum.max_duration_ns / 1e6, f->with_channel_state,
		f->inflight_records, f->inflight_at_co_count);
	fprintf(stderr, "%s: %u checkpoints double-count; records counted twice: %" PRIu64
		" of gen_a (fast), %" PRIu64 " of gen_b (slow)\n", name, f->double_counted,
		f->excess[IN_A], f->excess[IN_B]);
	if (f->worst_excess > 0)
		fprintf(stderr, "%s: e.g. checkpoint %" PRIu64 ": key %u of %s is in the state %"
			PRIu64 " times, its offsets cover %" PRIu64 "\n", name, f->worst_id,
			f->worst_key, gen_uid[f->worst_in], f->worst_state, f->worst_expect);
	cr_assert_geq(f->checkpoints, 3, "checkpoints completed while the job ran");
	cr_assert_geq(f->mid, 1, "a cut taken while both inputs were running");

	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

Test(checkpoint_join, aligned_cuts_are_consistent, .timeout = 120)
{
	struct run_figures f;

	sl_test_eal("(0-3)@(0-1)", NULL);
	run_mode(SL_CKPT_ALIGNED, &f);
	cr_assert_eq(f.with_channel_state, 0, "aligned checkpoints persist no channel state");
	sl_test_eal_fini();
}

Test(checkpoint_join, unaligned_cuts_are_consistent, .timeout = 120)
{
	struct run_figures f;

	sl_test_eal("(0-3)@(0-1)", NULL);
	run_mode(SL_CKPT_UNALIGNED, &f);
	cr_assert_gt(f.with_channel_state, 0, "unaligned checkpoints carry channel state");
	cr_assert_gt(f.inflight_at_co_count, 0,
		     "the two-input operator persisted in-flight records of its inputs");
	sl_test_eal_fini();
}

/* gen_b's barrier queues ~32 ms behind the slow stage's ring, far beyond
 * the 1 ms timeout: checkpoints switch to unaligned.  Only a switched
 * subtask persists channel state (aligned ones never do, see above), so
 * channel state in a checkpoint shows that it switched; the per-subtask
 * mode (ack mode_used) is not reachable from the public API. */
Test(checkpoint_join, aligned_with_timeout_cuts_are_consistent, .timeout = 120)
{
	struct run_figures f;

	sl_test_eal("(0-3)@(0-1)", NULL);
	run_mode(SL_CKPT_ALIGNED_TIMEOUT, &f);
	cr_assert_gt(f.with_channel_state, 0, "some checkpoint switched to unaligned");
	cr_assert_gt(f.inflight_at_co_count, 0,
		     "the two-input operator switched and persisted in-flight records");
	sl_test_eal_fini();
}

Test(checkpoint_join, at_least_once_counts_the_fast_input_twice, .timeout = 120)
{
	struct run_figures f;

	sl_test_eal("(0-3)@(0-1)", NULL);
	run_mode(SL_CKPT_AT_LEAST_ONCE, &f);
	cr_assert_eq(f.with_channel_state, 0, "at-least-once persists no channel state");
	cr_assert_gt(f.excess[IN_A], 0,
		     "gen_a's records read after its barrier, while gen_b's was still queued "
		     "behind the slow stage, are in the snapshot and after the offsets: "
		     "counted twice");
	sl_test_eal_fini();
}
