/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Null sink: consumes and drops every record.  The runtime already counts
 * records_in per subtask (sl_job_task_stats()), which is all a throughput
 * benchmark needs, so process() does nothing at all.
 */
#include "sluice/operators.h"

static int null_process(void *op, struct sl_task *t, unsigned input,
			struct sl_batch *b)
{
	(void)op, (void)t, (void)input, (void)b;
	return 0;
}

const struct sl_operator_ops sl_op_null_sink = {
	.type = "null-sink",
	.conf_size = 0,
	.min_inputs = 1,
	.max_inputs = SL_MAX_INPUTS,
	.sink = true,
	.process = null_process,
};
