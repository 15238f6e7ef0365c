/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * project: keep, reorder and rename fields.
 *
 * plan() resolves the field names to (source offset, destination offset,
 * size) triples; open() merges triples that are contiguous on both sides
 * into runs, so copying a record is a handful of memcpy calls.  A
 * projection that keeps the record layout unchanged (renames only) forwards
 * batches zero-copy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate_pvt.h"
#include "sluice/operators.h"

struct copy_run {
	uint16_t src_off;
	uint16_t dst_off;
	uint16_t len;
};

struct project_op {
	unsigned n_runs;
	bool zero_fill;	 /* output has padding: clear it, checksums see it */
	bool forward;	 /* same layout as the input: zero-copy */
	uint16_t out_size;
	struct copy_run run[SL_SCHEMA_MAX_FIELDS];
};

static int project_plan(void *conf_, const struct sl_schema *const in[],
			unsigned n_in, struct sl_schema *out, char *err,
			size_t errlen)
{
	struct sl_project_conf *c = conf_;

	(void)n_in;
	if (c->n == 0 || c->n > SL_SCHEMA_MAX_FIELDS) {
		snprintf(err, errlen, "needs 1..%d fields, has %u",
			 SL_SCHEMA_MAX_FIELDS, c->n);
		return -EINVAL;
	}
	for (unsigned i = 0; i < c->n; i++) {
		const struct sl_field *f =
			sl_plan_field(in[0], c->fields[i], "field", err, errlen);
		const char *name;

		if (f == NULL)
			return -EINVAL;
		name = c->as[i][0] ? c->as[i] : c->fields[i];
		if (sl_schema_add(out, name, f->type, f->size) < 0) {
			if (sl_schema_find(out, name) != NULL)
				snprintf(err, errlen,
					 "output field '%s' appears twice; rename one with 'as'",
					 name);
			else
				snprintf(err, errlen,
					 "invalid output field name '%s'", name);
			return -EINVAL;
		}
		c->src_off[i] = f->offset;
		c->dst_off[i] = out->fields[out->nfields - 1].offset;
		c->size[i] = f->size;
	}
	return 0;
}

static int project_open(struct sl_task *t, void **opp)
{
	const struct sl_project_conf *c = t->info.conf;
	const struct sl_schema *in = t->info.in_schema[0];
	struct project_op *op = calloc(1, sizeof(*op));
	unsigned covered = 0;

	if (op == NULL)
		return -ENOMEM;
	op->out_size = t->out_record_size;
	for (unsigned i = 0; i < c->n; i++) {
		struct copy_run *r = op->n_runs ? &op->run[op->n_runs - 1] : NULL;

		covered += c->size[i];
		if (r != NULL && r->src_off + r->len == c->src_off[i] &&
		    r->dst_off + r->len == c->dst_off[i]) {
			r->len += c->size[i];
			continue;
		}
		op->run[op->n_runs++] = (struct copy_run){
			.src_off = c->src_off[i],
			.dst_off = c->dst_off[i],
			.len = c->size[i],
		};
	}
	op->zero_fill = covered < op->out_size;
	/* every input field, in order, at its own offset (destination
	 * offsets increase, so equal offsets mean the identity): the input
	 * batch is the output batch */
	op->forward = c->n == in->nfields && in->record_size == op->out_size;
	for (unsigned i = 0; i < c->n && op->forward; i++)
		op->forward = c->src_off[i] == c->dst_off[i] &&
			      c->size[i] == in->fields[i].size;
	*opp = op;
	return 0;
}

static int project_process(void *op_, struct sl_task *t, unsigned input,
			   struct sl_batch *b)
{
	const struct project_op *op = op_;
	const uint8_t *rec = b->data;

	(void)input;
	if (op->forward) {
		sl_emit_forward(t, b);
		return 0;
	}
	for (uint32_t i = 0; i < b->count; i++, rec += b->record_size) {
		uint8_t *o = sl_emit(t);

		if (op->zero_fill)
			memset(o, 0, op->out_size);
		for (unsigned k = 0; k < op->n_runs; k++)
			memcpy(o + op->run[k].dst_off, rec + op->run[k].src_off,
			       op->run[k].len);
	}
	return 0;
}

static void project_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

const struct sl_operator_ops sl_op_project = {
	.type = "project",
	.conf_size = sizeof(struct sl_project_conf),
	.min_inputs = 1,
	.max_inputs = 1,
	.plan = project_plan,
	.open = project_open,
	.process = project_process,
	.close = project_close,
};
