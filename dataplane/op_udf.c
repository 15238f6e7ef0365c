/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udf: a user-defined batch function.  The function sees each input batch
 * once and emits with sl_emit()/sl_emit_forward(), so it can map, flat-map
 * or filter; one indirect call per batch, none per record.
 */
#include <errno.h>
#include <stdio.h>

#include "sluice/operators.h"

static int udf_plan(void *conf_, const struct sl_schema *const in[],
		    unsigned n_in, struct sl_schema *out, char *err,
		    size_t errlen)
{
	const struct sl_udf_conf *c = conf_;

	(void)n_in;
	if (c->fn == NULL) {
		snprintf(err, errlen,
			 "no function: set sl_udf_conf.fn (udf operators are built from C, not from job files)");
		return -EINVAL;
	}
	*out = c->out.nfields ? c->out : *in[0];
	return 0;
}

static int udf_open(struct sl_task *t, void **opp)
{
	/* the planned conf lives as long as the job: it is the instance */
	*opp = (void *)t->info.conf;
	return 0;
}

static int udf_process(void *op, struct sl_task *t, unsigned input,
		       struct sl_batch *b)
{
	const struct sl_udf_conf *c = op;
	int rc;

	(void)input;
	rc = c->fn(t, b, c->arg);
	return rc > 0 ? 0 : rc;
}

const struct sl_operator_ops sl_op_udf = {
	.type = "udf",
	.conf_size = sizeof(struct sl_udf_conf),
	.min_inputs = 1,
	.max_inputs = 1,
	.plan = udf_plan,
	.open = udf_open,
	.process = udf_process,
};
