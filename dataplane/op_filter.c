/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * filter: keep the records for which every predicate `field cmp value`
 * holds.
 *
 * The predicate value is a double; comparing it with a 64-bit integer field
 * as doubles would round large integers, so open() compiles each predicate
 * on an integer field into an exact integer interval test:
 *
 *     x <  v   ->  x in [MIN, ceil(v) - 1]      x == v  ->  [v, v] if v integral
 *     x <= v   ->  x in [MIN, floor(v)]         x != v  ->  not (x == v)
 *     x >  v   ->  x in [floor(v) + 1, MAX]     NaN     ->  only != holds
 *     x >= v   ->  x in [ceil(v), MAX]
 *
 * with bounds clamped to the field type's range.  f64 fields compare as
 * doubles.
 *
 * Output: while every record of a batch passes, nothing is copied; if the
 * whole batch passes it is forwarded zero-copy (sl_emit_forward).  At the
 * first failing record the records before it are copied out, and from then
 * on each surviving record.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate_pvt.h"
#include "sluice/operators.h"

#define FILTER_MAX_PREDS 8

enum pred_kind { PRED_SIGNED, PRED_UNSIGNED, PRED_U32, PRED_F64 };

struct pred {
	uint8_t kind;	/* enum pred_kind */
	uint8_t cmp;	/* enum sl_cmp, PRED_F64 only */
	bool negate;	/* integer kinds: result is "not in [lo, hi]" */
	uint16_t off;
	union {
		struct { int64_t lo, hi; } s;
		struct { uint64_t lo, hi; } u;
		double value;
	};
};

struct filter_op {
	unsigned n;
	uint16_t record_size;
	struct pred p[FILTER_MAX_PREDS];
};

static int filter_plan(void *conf_, const struct sl_schema *const in[],
		       unsigned n_in, struct sl_schema *out, char *err,
		       size_t errlen)
{
	struct sl_filter_conf *c = conf_;

	(void)n_in;
	if (c->n == 0 || c->n > FILTER_MAX_PREDS) {
		snprintf(err, errlen, "needs 1..%d predicates, has %u",
			 FILTER_MAX_PREDS, c->n);
		return -EINVAL;
	}
	for (unsigned i = 0; i < c->n; i++) {
		const struct sl_field *f = sl_plan_field(in[0], c->pred[i].field,
							 "predicate field", err,
							 errlen);
		if (f == NULL)
			return -EINVAL;
		if (!sl_type_is_numeric(f->type)) {
			snprintf(err, errlen,
				 "predicate on '%s': comparisons need a numeric field, '%s' is %s",
				 f->name, f->name, sl_type_name(f->type));
			return -EINVAL;
		}
		if ((unsigned)c->pred[i].cmp > SL_CMP_GE) {
			snprintf(err, errlen,
				 "predicate on '%s': unknown comparison %d (==, !=, <, <=, >, >=)",
				 f->name, (int)c->pred[i].cmp);
			return -EINVAL;
		}
		c->resolved[i] = f;
	}
	*out = *in[0];
	return 0;
}

/*
 * Integer interval [lo, hi] of `x cmp v`, unclamped; lo > hi when empty.
 * long double holds every 64-bit integer and v +- 1 exactly (x86 80-bit,
 * or 128-bit), so the bounds are exact where plain doubles would round.
 */
static void int_interval(enum sl_cmp cmp, long double v, long double *lo,
			 long double *hi, bool *negate)
{
	*negate = false;
	*lo = -INFINITY;
	*hi = INFINITY;
	if (isnan(v)) {
		/* nothing equals NaN, everything differs from it */
		*lo = 1;
		*hi = 0;
		*negate = cmp == SL_CMP_NE;
		return;
	}
	switch (cmp) {
	case SL_CMP_NE:
		*negate = true;
		/* fall through */
	case SL_CMP_EQ:
		if (v == floorl(v)) {
			*lo = *hi = v;
		} else {
			*lo = 1;
			*hi = 0;
		}
		break;
	case SL_CMP_LT:
		*hi = ceill(v) - 1;
		break;
	case SL_CMP_LE:
		*hi = floorl(v);
		break;
	case SL_CMP_GT:
		*lo = floorl(v) + 1;
		break;
	case SL_CMP_GE:
		*lo = ceill(v);
		break;
	}
}

static void compile_pred(struct pred *p, const struct sl_field *f,
			 enum sl_cmp cmp, double v)
{
	long double lo, hi;

	p->off = f->offset;
	p->cmp = (uint8_t)cmp;
	if (f->type == SL_TYPE_F64) {
		p->kind = PRED_F64;
		p->value = v;
		return;
	}
	int_interval(cmp, v, &lo, &hi, &p->negate);
	if (f->type == SL_TYPE_I64 || f->type == SL_TYPE_TIMESTAMP) {
		const long double min = INT64_MIN, max = INT64_MAX;

		p->kind = PRED_SIGNED;
		if (lo > hi || lo > max || hi < min) {
			p->s.lo = 1;
			p->s.hi = 0;
			return;
		}
		p->s.lo = lo < min ? INT64_MIN : (int64_t)lo;
		p->s.hi = hi > max ? INT64_MAX : (int64_t)hi;
	} else {
		const long double max = UINT64_MAX;

		p->kind = f->type == SL_TYPE_U32 ? PRED_U32 : PRED_UNSIGNED;
		if (lo > hi || lo > max || hi < 0) {
			p->u.lo = 1;
			p->u.hi = 0;
			return;
		}
		p->u.lo = lo < 0 ? 0 : (uint64_t)lo;
		p->u.hi = hi > max ? UINT64_MAX : (uint64_t)hi;
	}
}

static int filter_open(struct sl_task *t, void **opp)
{
	const struct sl_filter_conf *c = t->info.conf;
	const struct sl_schema *in = t->info.in_schema[0];
	struct filter_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return -ENOMEM;
	op->n = c->n;
	op->record_size = in->record_size;
	for (unsigned i = 0; i < c->n; i++) {
		/* by name: the conf's resolved pointers are the planner's */
		const struct sl_field *f = sl_schema_find(in, c->pred[i].field);

		if (f == NULL) {
			free(op);
			sl_task_error(t, "predicate field '%s' vanished from the input schema",
				      c->pred[i].field);
			return -EINVAL;
		}
		compile_pred(&op->p[i], f, c->pred[i].cmp, c->pred[i].value);
	}
	*opp = op;
	return 0;
}

static inline bool pred_holds(const struct pred *p, const uint8_t *rec)
{
	const uint8_t *x = rec + p->off;

	switch ((enum pred_kind)p->kind) {
	case PRED_SIGNED: {
		int64_t v;
		memcpy(&v, x, 8);
		return (v >= p->s.lo && v <= p->s.hi) != p->negate;
	}
	case PRED_UNSIGNED: {
		uint64_t v;
		memcpy(&v, x, 8);
		return (v >= p->u.lo && v <= p->u.hi) != p->negate;
	}
	case PRED_U32: {
		uint32_t v;
		memcpy(&v, x, 4);
		return (v >= p->u.lo && v <= p->u.hi) != p->negate;
	}
	case PRED_F64: {
		double v;
		memcpy(&v, x, 8);
		switch ((enum sl_cmp)p->cmp) {
		case SL_CMP_EQ: return v == p->value;
		case SL_CMP_NE: return v != p->value;
		case SL_CMP_LT: return v < p->value;
		case SL_CMP_LE: return v <= p->value;
		case SL_CMP_GT: return v > p->value;
		case SL_CMP_GE: return v >= p->value;
		}
		return false;
	}
	}
	return false;
}

static inline bool record_passes(const struct filter_op *op, const uint8_t *rec)
{
	for (unsigned k = 0; k < op->n; k++)
		if (!pred_holds(&op->p[k], rec))
			return false;
	return true;
}

static int filter_process(void *op_, struct sl_task *t, unsigned input,
			  struct sl_batch *b)
{
	const struct filter_op *op = op_;
	const uint16_t rs = b->record_size;
	const uint8_t *rec = b->data;
	uint32_t i = 0;

	(void)input;
	/* all-pass prefix: no copy yet */
	while (i < b->count && record_passes(op, rec)) {
		i++;
		rec += rs;
	}
	if (i == b->count) {
		if (i > 0)
			sl_emit_forward(t, b);
		return 0;
	}
	for (uint32_t k = 0; k < i; k++)
		memcpy(sl_emit(t), sl_batch_record(b, k), rs);
	for (i++, rec += rs; i < b->count; i++, rec += rs)
		if (record_passes(op, rec))
			memcpy(sl_emit(t), rec, rs);
	return 0;
}

static void filter_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

const struct sl_operator_ops sl_op_filter = {
	.type = "filter",
	.conf_size = sizeof(struct sl_filter_conf),
	.min_inputs = 1,
	.max_inputs = 1,
	.plan = filter_plan,
	.open = filter_open,
	.process = filter_process,
	.close = filter_close,
};
