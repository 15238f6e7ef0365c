/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Aggregates shared by keyed-aggregate and window-aggregate, plus the
 * field-resolution helpers every built-in operator's plan() uses.  Never
 * installed.
 *
 * State of one key (one key and window): an array of uint64_t slots.
 *
 *     slot 0        records aggregated so far (every COUNT reads it; MIN
 *                   and MAX use "slot 0 == 0" to take the first value)
 *     slot 1..n     one per SUM/MIN/MAX, in spec order; the value as
 *                   uint64 bits: u32/u64 widened to uint64, i64/timestamp
 *                   as two's complement, f64 as its IEEE bits
 *
 * A zero-filled slot array is the empty aggregate, which is what
 * sl_kstate_upsert() hands out for a new key.  Output field types: count
 * u64; sum/min/max keep the input field's type (a u32 sum wraps modulo
 * 2^32, an i64 sum modulo 2^64).
 */
#ifndef SLUICE_AGGREGATE_PVT_H
#define SLUICE_AGGREGATE_PVT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sluice/operator.h"
#include "sluice/operators.h"
#include "sluice/schema.h"

/** Aggregate update kinds: one per (function, input representation), so
 *  the per-record update is a switch, not a function pointer. */
enum sl_agg_op {
	SL_AGGOP_COUNT,
	SL_AGGOP_SUM_U32,
	SL_AGGOP_SUM_INT64, /* u64, i64, timestamp: two's complement add */
	SL_AGGOP_SUM_F64,
	SL_AGGOP_MIN_U32,
	SL_AGGOP_MIN_U64,
	SL_AGGOP_MIN_I64,
	SL_AGGOP_MIN_F64,
	SL_AGGOP_MAX_U32,
	SL_AGGOP_MAX_U64,
	SL_AGGOP_MAX_I64,
	SL_AGGOP_MAX_F64,
};

struct sl_agg_slot {
	uint8_t op;	    /* enum sl_agg_op */
	uint8_t slot;	    /* state slot (0 for COUNT) */
	uint8_t out_size;   /* 4 or 8 */
	uint16_t in_off;    /* input field offset (unused for COUNT) */
	uint16_t out_off;   /* output field offset */
};

/** Compiled aggregate list of one operator. */
struct sl_agg_plan {
	unsigned n;
	bool count_only;     /* every aggregate is COUNT: state is slot 0 */
	uint16_t n_slots;
	uint16_t value_size; /* bytes of state per key: 8 * n_slots */
	struct sl_agg_slot a[SL_MAX_AGGS];
};

/**
 * Check the aggregate specs against the input schema, append one output
 * field per aggregate to `out` (named `as`, or "count"/"sum_<field>"/...
 * when `as` is empty) and compile them into `p`.
 * @return 0, or -EINVAL with a message in err (unknown or non-numeric
 *         field, duplicate output name, too many aggregates)
 */
int sl_agg_plan_build(struct sl_agg_plan *p, const struct sl_agg_spec *aggs,
		      unsigned n, const struct sl_schema *in,
		      struct sl_schema *out, char *err, size_t errlen);

/**
 * Resolve a field by name; on failure write "<what> 'x' is not in the
 * input schema (fields: a, b, c); did you mean 'y'?" into err.
 * @return the field, or NULL
 */
const struct sl_field *sl_plan_field(const struct sl_schema *in,
				     const char *name, const char *what,
				     char *err, size_t errlen);

/**
 * Append a field to an output schema, with a message in err on failure
 * (duplicate name, too many fields).
 * @return 0 or the negative errno of sl_schema_add()
 */
int sl_plan_add_field(struct sl_schema *out, const char *name,
		      enum sl_type type, uint16_t size, char *err,
		      size_t errlen);

/** Number of output rows an operator may emit per on_watermark()/on_end()
 *  call before returning SL_MORE: 64 output batches' worth. */
static inline uint64_t sl_emit_budget(const struct sl_task *t)
{
	uint32_t cap = t->out != NULL ? t->out->capacity : 256;

	return 64ull * (cap ? cap : 256);
}

static inline uint32_t __sl_agg_ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t __sl_agg_ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline double __sl_agg_bits_f64(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, 8);
	return d;
}

static inline uint64_t __sl_agg_f64_bits(double d)
{
	uint64_t bits;

	memcpy(&bits, &d, 8);
	return bits;
}

/** Fold one input record into a key's state. */
static inline void sl_agg_update(const struct sl_agg_plan *p, uint64_t *s,
				 const uint8_t *rec)
{
	const bool first = s[0] == 0;

	s[0]++;
	for (unsigned i = 0; i < p->n; i++) {
		const struct sl_agg_slot *a = &p->a[i];
		uint64_t *v = &s[a->slot];
		const uint8_t *in = rec + a->in_off;

		switch ((enum sl_agg_op)a->op) {
		case SL_AGGOP_COUNT:
			break;
		case SL_AGGOP_SUM_U32:
			*v += __sl_agg_ld32(in);
			break;
		case SL_AGGOP_SUM_INT64:
			*v += __sl_agg_ld64(in);
			break;
		case SL_AGGOP_SUM_F64:
			*v = __sl_agg_f64_bits(__sl_agg_bits_f64(*v) +
					       __sl_agg_bits_f64(__sl_agg_ld64(in)));
			break;
		case SL_AGGOP_MIN_U32: {
			uint64_t x = __sl_agg_ld32(in);
			if (first || x < *v)
				*v = x;
			break;
		}
		case SL_AGGOP_MIN_U64: {
			uint64_t x = __sl_agg_ld64(in);
			if (first || x < *v)
				*v = x;
			break;
		}
		case SL_AGGOP_MIN_I64: {
			uint64_t x = __sl_agg_ld64(in);
			if (first || (int64_t)x < (int64_t)*v)
				*v = x;
			break;
		}
		case SL_AGGOP_MIN_F64: {
			uint64_t x = __sl_agg_ld64(in);
			if (first || __sl_agg_bits_f64(x) < __sl_agg_bits_f64(*v))
				*v = x;
			break;
		}
		case SL_AGGOP_MAX_U32: {
			uint64_t x = __sl_agg_ld32(in);
			if (first || x > *v)
				*v = x;
			break;
		}
		case SL_AGGOP_MAX_U64: {
			uint64_t x = __sl_agg_ld64(in);
			if (first || x > *v)
				*v = x;
			break;
		}
		case SL_AGGOP_MAX_I64: {
			uint64_t x = __sl_agg_ld64(in);
			if (first || (int64_t)x > (int64_t)*v)
				*v = x;
			break;
		}
		case SL_AGGOP_MAX_F64: {
			uint64_t x = __sl_agg_ld64(in);
			if (first || __sl_agg_bits_f64(x) > __sl_agg_bits_f64(*v))
				*v = x;
			break;
		}
		}
	}
}

/** Write a key's aggregates into their output fields. */
static inline void sl_agg_write(const struct sl_agg_plan *p,
				const uint64_t *s, uint8_t *out)
{
	for (unsigned i = 0; i < p->n; i++) {
		const struct sl_agg_slot *a = &p->a[i];

		if (a->out_size == 4) {
			uint32_t x = (uint32_t)s[a->slot];
			memcpy(out + a->out_off, &x, 4);
		} else {
			memcpy(out + a->out_off, &s[a->slot], 8);
		}
	}
}

#endif
