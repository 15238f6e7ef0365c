/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyed-aggregate: Flink's keyBy().sum()/min()/max()/count() rolling
 * aggregate over an unbounded stream.
 *
 * State: one sl_kstate entry per key (key = the key field's bytes, value =
 * the aggregate slots of aggregate_pvt.h).  Records are processed in bursts
 * of KA_BURST: hash and key group of the whole burst first, then one
 * sl_kstate_upsert_burst() for the burst (it overlaps the cache misses of
 * all its keys), then the aggregate updates in record order.  A count-only
 * aggregate without per-record output uses sl_kstate_count_burst(), which
 * increments the count while it has the entry at hand.
 *
 * Output (key, aggregates...):
 *  - emit_updates: one row per input record with the key's aggregates after
 *    that record (Flink's rolling aggregate);
 *  - otherwise: every key's final row once, when the input drains
 *    (on_end(drain=true)), key group by key group, at most
 *    sl_emit_budget() rows per call (SL_MORE in between).  A stop without
 *    drain emits nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>

#include "aggregate_pvt.h"
#include "sluice/keygroup.h"
#include "sluice/keyed_state.h"
#include "sluice/operators.h"

#define KA_BURST 64

struct ka_op {
	struct sl_kstate *st;
	struct sl_agg_plan agg;
	uint16_t key_off;
	uint16_t key_size;
	uint16_t out_size;
	bool zero_fill;	    /* output rows have padding to clear */
	bool emit_updates;
	uint32_t max_parallelism;
	uint8_t kg_shift;   /* 64 - log2(max_parallelism) if a power of 2 */
	uint32_t kg_first;
	uint32_t kg_count;
	uint32_t end_kg;    /* on_end cursor: next key group (offset) */
	struct sl_task *task;
};

/* Output schema: the key field, then the aggregates. */
static int ka_schema(const struct sl_keyed_aggregate_conf *c,
		     const struct sl_schema *in, struct sl_schema *out,
		     struct sl_agg_plan *agg, const struct sl_field **keyp,
		     char *err, size_t errlen)
{
	const struct sl_field *key;

	key = sl_plan_field(in, c->key, "key field", err, errlen);
	if (key == NULL)
		return -EINVAL;
	if (key->size > SL_KSTATE_KEY_MAX) {
		snprintf(err, errlen,
			 "key field '%s' is %u bytes; keyed state takes keys of at most %d bytes",
			 key->name, key->size, SL_KSTATE_KEY_MAX);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	if (sl_plan_add_field(out, key->name, key->type, key->size, err,
			      errlen) < 0)
		return -EINVAL;
	if (sl_agg_plan_build(agg, c->aggs, c->n_aggs, in, out, err, errlen) < 0)
		return -EINVAL;
	*keyp = key;
	return 0;
}

static int ka_plan(void *conf_, const struct sl_schema *const in[],
		   unsigned n_in, struct sl_schema *out, char *err,
		   size_t errlen)
{
	const struct sl_field *key;
	struct sl_agg_plan agg;

	(void)n_in;
	return ka_schema(conf_, in[0], out, &agg, &key, err, errlen);
}

static int ka_open(struct sl_task *t, void **opp)
{
	const struct sl_keyed_aggregate_conf *c = t->info.conf;
	struct ka_op *op = calloc(1, sizeof(*op));
	const struct sl_field *key;
	struct sl_schema out;
	char err[256];
	unsigned covered;

	if (op == NULL)
		return -ENOMEM;
	if (ka_schema(c, t->info.in_schema[0], &out, &op->agg, &key, err,
		      sizeof(err)) < 0) {
		sl_task_error(t, "%s", err);
		free(op);
		return -EINVAL;
	}
	op->key_off = key->offset;
	op->key_size = key->size;
	op->out_size = out.record_size;
	covered = key->size;
	for (unsigned i = 1; i < out.nfields; i++)
		covered += out.fields[i].size;
	op->zero_fill = covered < out.record_size;
	op->emit_updates = c->emit_updates;
	op->max_parallelism = t->info.max_parallelism;
	if (rte_is_power_of_2(op->max_parallelism) && op->max_parallelism > 1)
		op->kg_shift = (uint8_t)(64 - rte_log2_u32(op->max_parallelism));
	op->kg_first = t->info.kg_first;
	op->kg_count = t->info.kg_count;
	op->task = t;
	op->st = sl_kstate_create((uint16_t)op->kg_first, (uint16_t)op->kg_count,
				  op->key_size, op->agg.value_size);
	if (op->st == NULL) {
		int rc = -errno;
		sl_task_error(t, "cannot create keyed state: %s", strerror(errno));
		free(op);
		return rc;
	}
	*opp = op;
	return 0;
}

static inline void ka_write_row(const struct ka_op *op, struct sl_task *t,
				const void *key, const uint64_t *v)
{
	uint8_t *o = sl_emit(t);

	if (op->zero_fill)
		memset(o, 0, op->out_size);
	memcpy(o, key, op->key_size);
	sl_agg_write(&op->agg, v, o);
}

static int ka_upsert_failed(const struct ka_op *op, struct sl_task *t,
			    uint16_t kg)
{
	int rc = -errno;

	if (errno == ERANGE)
		sl_task_error(t,
			      "a record of key group %u reached subtask %u, which owns key groups [%u, %u): connect this operator's input with hash partitioning on its key field",
			      kg, t->info.index, op->kg_first,
			      op->kg_first + op->kg_count);
	else
		sl_task_error(t, "keyed state: %s", strerror(errno));
	return rc < 0 ? rc : -ENOMEM;
}

/* Hash and key group of n keys at stride rs. The 8-byte case (u64 keys)
 * gets xxh3's fixed-length path inlined; for a power-of-two max
 * parallelism 2^k, sl_key_group() is (hi32 * 2^k) >> 32 == hash >> (64 - k),
 * a shift instead of a multiply. */
static inline void ka_hash_burst(const struct ka_op *op, const uint8_t *key,
				 uint16_t rs, uint32_t n, uint64_t *hash,
				 uint16_t *kg)
{
	const uint32_t maxp = op->max_parallelism;
	const unsigned int shift = op->kg_shift;
	uint32_t i;

	if (op->key_size == 8 && shift != 0) {
#pragma GCC unroll 4
		for (i = 0; i < n; i++, key += rs) {
			hash[i] = sl_key_hash(key, 8);
			kg[i] = (uint16_t)(hash[i] >> shift);
		}
		return;
	}
	for (i = 0; i < n; i++, key += rs) {
		hash[i] = sl_key_hash(key, op->key_size);
		kg[i] = sl_key_group(hash[i], maxp);
	}
}

static int ka_process(void *op_, struct sl_task *t, unsigned input,
		      struct sl_batch *b)
{
	struct ka_op *op = op_;
	const uint16_t rs = b->record_size;

	(void)input;
	for (uint32_t base = 0; base < b->count; base += KA_BURST) {
		const uint32_t n = RTE_MIN((uint32_t)KA_BURST, b->count - base);
		const uint8_t *rec0 = b->data + (size_t)base * rs;
		uint64_t hash[KA_BURST];
		uint16_t kg[KA_BURST];
		void *val[KA_BURST];
		const uint8_t *rec;
		uint32_t i, done;

		ka_hash_burst(op, rec0 + op->key_off, rs, n, hash, kg);
		if (op->agg.count_only && !op->emit_updates) {
			/* the count (state slot 0) is incremented in place */
			done = sl_kstate_count_burst(op->st, n, kg, hash,
						     rec0 + op->key_off, rs);
		} else {
			done = sl_kstate_upsert_burst(op->st, n, kg, hash,
						      rec0 + op->key_off, rs,
						      val, NULL);
			/* in record order: a key repeated in the burst has the
			 * same value pointer each time, so the updates
			 * accumulate */
			for (i = 0, rec = rec0; i < done; i++, rec += rs) {
				uint64_t *v = val[i];

				if (op->agg.count_only)
					v[0]++;
				else
					sl_agg_update(&op->agg, v, rec);
				if (op->emit_updates)
					ka_write_row(op, t, rec + op->key_off, v);
			}
		}
		if (unlikely(done < n))
			return ka_upsert_failed(op, t, kg[done]);
	}
	return 0;
}

static int ka_emit_entry(const void *key, const void *value, uint64_t hash,
			 void *arg)
{
	const struct ka_op *op = arg;

	(void)hash;
	ka_write_row(op, op->task, key, value);
	return 0;
}

static int ka_on_end(void *op_, struct sl_task *t, bool drain)
{
	struct ka_op *op = op_;
	const uint64_t budget = sl_emit_budget(t);
	uint64_t emitted = 0;

	if (!drain || op->emit_updates)
		return 0;
	op->task = t;
	/* whole key groups per step: the iterator cannot resume inside one */
	while (op->end_kg < op->kg_count) {
		uint16_t kg = (uint16_t)(op->kg_first + op->end_kg);

		if (emitted > 0 && emitted + sl_kstate_kg_count(op->st, kg) > budget)
			return SL_MORE;
		emitted += sl_kstate_kg_count(op->st, kg);
		sl_kstate_foreach(op->st, kg, ka_emit_entry, op);
		op->end_kg++;
	}
	return 0;
}

static void ka_close(void *op_, struct sl_task *t)
{
	struct ka_op *op = op_;

	(void)t;
	sl_kstate_free(op->st);
	free(op);
}

/* Checkpoint: the aggregates per key, as keyed state. */
static int ka_snapshot(void *op_, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	struct ka_op *op = op_;

	(void)t;
	return sl_ckpt_put_keyed(ck, op->st, op->key_size, op->agg.value_size);
}

/* Restore: the aggregates of the key groups this subtask owns. */
static int ka_restore(void *op_, struct sl_task *t, struct sl_restore_ctx *rc)
{
	struct ka_op *op = op_;

	(void)t;
	return sl_restore_keyed(rc, op->st, op->key_size, op->agg.value_size);
}

const struct sl_operator_ops sl_op_keyed_aggregate = {
	.snapshot = ka_snapshot,
	.restore = ka_restore,
	.type = "keyed-aggregate",
	.conf_size = sizeof(struct sl_keyed_aggregate_conf),
	.min_inputs = 1,
	.max_inputs = 1,
	.plan = ka_plan,
	.open = ka_open,
	.process = ka_process,
	.on_end = ka_on_end,
	.close = ka_close,
};
