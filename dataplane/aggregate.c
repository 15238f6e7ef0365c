/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Planning of aggregates (count/sum/min/max) and the field-resolution
 * helpers of the built-in operators.  The per-record update is inline in
 * aggregate_pvt.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aggregate_pvt.h"
#include "suggest_pvt.h"

static const char *const agg_fn_names[] = {
	[SL_AGG_COUNT] = "count",
	[SL_AGG_SUM] = "sum",
	[SL_AGG_MIN] = "min",
	[SL_AGG_MAX] = "max",
};

const struct sl_field *sl_plan_field(const struct sl_schema *in,
				     const char *name, const char *what,
				     char *err, size_t errlen)
{
	const char *names[SL_SCHEMA_MAX_FIELDS];
	const struct sl_field *f;
	char list[SL_SCHEMA_MAX_FIELDS * (SL_FIELD_NAME_MAX + 2)];
	const char *hint;

	f = sl_schema_find(in, name);
	if (f != NULL)
		return f;
	for (unsigned i = 0; i < in->nfields; i++)
		names[i] = in->fields[i].name;
	sl_suggest_list(list, sizeof(list), names, in->nfields);
	hint = name[0] != '\0' ? sl_suggest(name, names, in->nfields) : NULL;
	if (name[0] == '\0')
		snprintf(err, errlen,
			 "%s is not set; name one of the input fields (%s)", what,
			 list);
	else if (hint != NULL)
		snprintf(err, errlen,
			 "%s '%s' is not in the input schema (fields: %s); did you mean '%s'?",
			 what, name, list, hint);
	else
		snprintf(err, errlen,
			 "%s '%s' is not in the input schema (fields: %s)", what,
			 name, list);
	return NULL;
}

int sl_plan_add_field(struct sl_schema *out, const char *name,
		      enum sl_type type, uint16_t size, char *err,
		      size_t errlen)
{
	int rc = sl_schema_add(out, name, type, size);

	if (rc == -EEXIST)
		snprintf(err, errlen,
			 "output field '%s' appears twice; give the aggregates distinct 'as' names",
			 name);
	else if (rc == -ENOSPC)
		snprintf(err, errlen,
			 "output schema would have more than %d fields",
			 SL_SCHEMA_MAX_FIELDS);
	else if (rc < 0)
		snprintf(err, errlen, "invalid output field name '%s' (1..%d characters)",
			 name, SL_FIELD_NAME_MAX - 1);
	return rc;
}

/* Update kind of sum/min/max over a field of type `t`. */
static enum sl_agg_op agg_op(enum sl_agg_fn fn, enum sl_type t)
{
	static const enum sl_agg_op by_repr[3][4] = {
		/* u32, u64, i64, f64 */
		{ SL_AGGOP_SUM_U32, SL_AGGOP_SUM_INT64, SL_AGGOP_SUM_INT64,
		  SL_AGGOP_SUM_F64 },
		{ SL_AGGOP_MIN_U32, SL_AGGOP_MIN_U64, SL_AGGOP_MIN_I64,
		  SL_AGGOP_MIN_F64 },
		{ SL_AGGOP_MAX_U32, SL_AGGOP_MAX_U64, SL_AGGOP_MAX_I64,
		  SL_AGGOP_MAX_F64 },
	};
	unsigned repr;

	switch (t) {
	case SL_TYPE_U32:
		repr = 0;
		break;
	case SL_TYPE_U64:
		repr = 1;
		break;
	case SL_TYPE_F64:
		repr = 3;
		break;
	default: /* i64, timestamp */
		repr = 2;
		break;
	}
	return by_repr[fn - SL_AGG_SUM][repr];
}

int sl_agg_plan_build(struct sl_agg_plan *p, const struct sl_agg_spec *aggs,
		      unsigned n, const struct sl_schema *in,
		      struct sl_schema *out, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (n == 0 || n > SL_MAX_AGGS) {
		snprintf(err, errlen, "needs 1..%d aggregates, has %u",
			 SL_MAX_AGGS, n);
		return -EINVAL;
	}
	p->n = n;
	p->n_slots = 1;
	p->count_only = true;
	for (unsigned i = 0; i < n; i++) {
		const struct sl_agg_spec *s = &aggs[i];
		struct sl_agg_slot *a = &p->a[i];
		/* room for "<fn>_<field>", cut to a field name below */
		char name[2 * SL_FIELD_NAME_MAX];
		enum sl_type out_type;
		uint16_t out_size;
		char what[64];
		int rc;

		if ((unsigned)s->fn > SL_AGG_MAX) {
			snprintf(err, errlen,
				 "aggregate %u: unknown function %d (count, sum, min or max)",
				 i, (int)s->fn);
			return -EINVAL;
		}
		if (s->fn == SL_AGG_COUNT) {
			a->op = SL_AGGOP_COUNT;
			a->slot = 0;
			out_type = SL_TYPE_U64;
			out_size = 8;
			snprintf(name, sizeof(name), "%s",
				 s->as[0] ? s->as : "count");
		} else {
			const struct sl_field *f;

			snprintf(what, sizeof(what), "aggregate %u (%s): field",
				 i, agg_fn_names[s->fn]);
			f = sl_plan_field(in, s->field, what, err, errlen);
			if (f == NULL)
				return -EINVAL;
			if (!sl_type_is_numeric(f->type)) {
				snprintf(err, errlen,
					 "aggregate %u: %s needs a numeric field, but '%s' is %s",
					 i, agg_fn_names[s->fn], f->name,
					 sl_type_name(f->type));
				return -EINVAL;
			}
			p->count_only = false;
			a->op = (uint8_t)agg_op(s->fn, f->type);
			a->slot = (uint8_t)p->n_slots++;
			a->in_off = f->offset;
			out_type = f->type;
			out_size = f->size;
			if (s->as[0])
				snprintf(name, sizeof(name), "%s", s->as);
			else
				snprintf(name, sizeof(name), "%s_%s",
					 agg_fn_names[s->fn], f->name);
		}
		name[SL_FIELD_NAME_MAX - 1] = '\0';
		rc = sl_plan_add_field(out, name, out_type, 0, err, errlen);
		if (rc < 0)
			return -EINVAL;
		a->out_off = out->fields[out->nfields - 1].offset;
		a->out_size = (uint8_t)out_size;
	}
	p->value_size = (uint16_t)(8 * p->n_slots);
	return 0;
}
