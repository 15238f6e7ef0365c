/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test helper: the generator configuration the checkpoint and restore
 * suites share, and the record it produces, so expected results can be
 * computed with sl_generator_record() into a struct gen_event.
 */
#ifndef SLUICE_TESTS_GEN_EVENTS_H
#define SLUICE_TESTS_GEN_EVENTS_H

#include <stdint.h>

#include "sluice/operators.h"

/** One record of the schema below (row layout, no padding). */
struct gen_event {
	uint64_t key;
	int64_t ts;
	uint64_t value;
};

/** A generator of (key u64, ts timestamp, value u64) records. */
static inline void gen_events_conf(struct sl_generator_conf *g, uint64_t seed,
				   uint64_t count, double rate, uint64_t keys)
{
	sl_generator_conf_defaults(g);
	sl_schema_add(&g->schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g->schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&g->schema, "value", SL_TYPE_U64, 0);
	g->seed = seed;
	g->count = count;
	g->rate = rate;
	g->key_cardinality = keys;
}

#endif
