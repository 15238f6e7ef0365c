/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Built-in sources, operators and sinks: their conf structs and ops.
 *
 * Usage from C: fill a conf, then sl_job_add(job, uid, &sl_op_X, &conf, p).
 * The job file (docs/job-file.md) builds the same confs from YAML.
 * Field references are by name; each operator's plan() resolves them
 * against its input schema and reports unknown names.
 */
#ifndef SLUICE_OPERATORS_H
#define SLUICE_OPERATORS_H

#include <limits.h>
#include <stdint.h>

#include "sluice/operator.h"
#include "sluice/schema.h"

#define SL_PATH_MAX 4096
#define SL_MAX_AGGS 8

/* ---------------------------------------------------------------- sources */

/**
 * Deterministic generator.  Record i (global index; subtask j of p
 * produces i = j, j+p, j+2p, ...) is a pure function of (seed, i), so any
 * offset replays exactly:
 *  - key_field   = key in [0, key_cardinality), uniform or Zipf(key_skew)
 *  - ts_field    = start_time_ns + i*time_step_ns - jitter, jitter in
 *                  [0, max_out_of_orderness_ns)
 *  - seq_field   = i
 *  - other numeric fields: pseudo-random in [0, value_range); f64 in [0,1);
 *    bytes: pseudo-random bytes.
 * Watermark = (largest timestamp emitted) - max_out_of_orderness_ns.
 */
struct sl_generator_conf {
	struct sl_schema schema;
	uint64_t seed;
	uint64_t count;		     /**< records in total, 0 = unbounded */
	double rate;		     /**< records/s in total, 0 = unlimited */
	uint64_t key_cardinality;    /**< distinct keys (>= 1) */
	double key_skew;	     /**< 0 uniform, > 0 Zipf exponent */
	uint64_t value_range;	     /**< exclusive bound for numeric fields */
	int64_t start_time_ns;	     /**< event time of record 0 */
	int64_t time_step_ns;	     /**< event time between records */
	int64_t max_out_of_orderness_ns;
	/** Resume point: subtask j starts at the first of its indices
	 *  (j, j+p, ...) that is >= start_index (0 = from the beginning). */
	uint64_t start_index;
	/* Field roles.  "" = none.  The defaults ("key", "ts", "seq") are
	 * used only if the schema has such a field; any other name must. */
	char key_field[SL_FIELD_NAME_MAX];
	char ts_field[SL_FIELD_NAME_MAX];
	char seq_field[SL_FIELD_NAME_MAX];
	/* resolved by plan() */
	int16_t key_idx, ts_idx, seq_idx;
};
extern const struct sl_operator_ops sl_op_generator;

/** Fill a generator conf with defaults (count 0, cardinality 1000, ...). */
void sl_generator_conf_defaults(struct sl_generator_conf *c);

/**
 * Compute record `i` of a generator into `rec` (the schema's layout) and
 * return its event time.  Exposed so tests and benchmarks compute expected
 * results independently of the engine.
 */
int64_t sl_generator_record(const struct sl_generator_conf *c, uint64_t i,
			    void *rec);

enum sl_file_format {
	SL_FILE_CSV,	/**< one record per line, comma-separated fields */
	SL_FILE_BINARY, /**< fixed-size records in the schema's row layout */
};

/** Replayable file source; parallelism 1.  Offsets are byte offsets. */
struct sl_file_source_conf {
	struct sl_schema schema;
	char path[SL_PATH_MAX];
	enum sl_file_format format;
	uint64_t start_offset;
	bool skip_header;	     /**< CSV: first line is a header */
	char ts_field[SL_FIELD_NAME_MAX]; /**< "" = no event time */
	int64_t max_out_of_orderness_ns;
	int16_t ts_idx;		     /**< resolved by plan() */
};
extern const struct sl_operator_ops sl_op_file_source;

/**
 * DPDK ethdev source: subtask i polls rx queue i of the port; each packet
 * becomes one flow record.  Output schema (fixed): src_ip u32, dst_ip u32,
 * src_port u32, dst_port u32, proto u32, length u32, ts timestamp (rx
 * time).  Non-IPv4 packets have zero addresses and ports.
 */
struct sl_ethdev_source_conf {
	char port[64];		/**< port name ("net_pcap0") or id ("0") */
	char vdev[512];		/**< optional vdev args to hotplug, "" = none */
	uint16_t rx_desc;	/**< descriptors per queue (1024) */
	bool promiscuous;
	uint64_t count;		/**< stop after this many packets, 0 = never */
	int64_t idle_end_ms;	/**< end after this long without packets, 0 = never */
};
extern const struct sl_operator_ops sl_op_ethdev_source;
/** Fill an ethdev source conf with defaults. */
void sl_ethdev_source_conf_defaults(struct sl_ethdev_source_conf *c);

/* -------------------------------------------------------------- operators */

/** Project (map): keep, reorder and rename fields. */
struct sl_project_conf {
	unsigned n;
	char fields[SL_SCHEMA_MAX_FIELDS][SL_FIELD_NAME_MAX];
	char as[SL_SCHEMA_MAX_FIELDS][SL_FIELD_NAME_MAX]; /**< "" = same name */
	/* resolved by plan() */
	uint16_t src_off[SL_SCHEMA_MAX_FIELDS];
	uint16_t dst_off[SL_SCHEMA_MAX_FIELDS];
	uint16_t size[SL_SCHEMA_MAX_FIELDS];
};
extern const struct sl_operator_ops sl_op_project;

enum sl_cmp { SL_CMP_EQ, SL_CMP_NE, SL_CMP_LT, SL_CMP_LE, SL_CMP_GT, SL_CMP_GE };

/** Filter: keep records where every predicate `field cmp value` holds. */
struct sl_filter_conf {
	unsigned n;
	struct {
		char field[SL_FIELD_NAME_MAX];
		enum sl_cmp cmp;
		double value;
	} pred[8];
	const struct sl_field *resolved[8]; /**< by plan() */
};
extern const struct sl_operator_ops sl_op_filter;

/**
 * User-defined batch function (map, flat-map, filter, anything).  `fn` is
 * called once per input batch and emits with sl_emit(); `out` is the
 * output schema (nfields 0: same as the input).
 */
typedef int (*sl_udf_fn)(struct sl_task *t, struct sl_batch *in, void *arg);
struct sl_udf_conf {
	sl_udf_fn fn;
	void *arg;
	struct sl_schema out;
};
extern const struct sl_operator_ops sl_op_udf;

enum sl_agg_fn { SL_AGG_COUNT, SL_AGG_SUM, SL_AGG_MIN, SL_AGG_MAX };

struct sl_agg_spec {
	enum sl_agg_fn fn;
	char field[SL_FIELD_NAME_MAX]; /**< input field ("" for count) */
	char as[SL_FIELD_NAME_MAX];    /**< output field name */
};

/**
 * Keyed rolling aggregate (Flink's keyBy().sum() family): for every input
 * record, update the key's aggregates and emit (key, aggregates...).
 * With emit_updates=false only state is kept (nothing emitted until end,
 * when every key's final row is emitted).
 */
struct sl_keyed_aggregate_conf {
	char key[SL_FIELD_NAME_MAX];
	unsigned n_aggs;
	struct sl_agg_spec aggs[SL_MAX_AGGS];
	bool emit_updates;
};
extern const struct sl_operator_ops sl_op_keyed_aggregate;

enum sl_window_kind { SL_WINDOW_TUMBLING, SL_WINDOW_SLIDING };

/**
 * Keyed event-time window aggregate.  A window [start, start+size) fires
 * (emits key, window_start, window_end, aggregates...) when the watermark
 * reaches its end; its state is kept for allowed_lateness_ns more, during
 * which each late record updates it and re-emits the row; records later
 * than that are dropped and counted (late_dropped).
 */
struct sl_window_conf {
	char key[SL_FIELD_NAME_MAX];
	char ts_field[SL_FIELD_NAME_MAX];
	enum sl_window_kind kind;
	int64_t size_ns;
	int64_t slide_ns;	     /**< sliding only */
	int64_t allowed_lateness_ns;
	unsigned n_aggs;
	struct sl_agg_spec aggs[SL_MAX_AGGS];
};
extern const struct sl_operator_ops sl_op_window_aggregate;

/* ------------------------------------------------------------------ sinks */

extern const struct sl_operator_ops sl_op_null_sink;

/**
 * File sink.  With parallelism > 1, subtask i writes `path` with ".i"
 * inserted before the extension.  CSV starts with a header line.
 */
struct sl_file_sink_conf {
	char path[SL_PATH_MAX];
	enum sl_file_format format;
};
extern const struct sl_operator_ops sl_op_file_sink;

/** Shared result of a counting sink (all subtasks add into it). */
struct sl_count_result {
	uint64_t records;   /**< atomic */
	uint64_t checksum;  /**< atomic; sum of xxh3 of each record's bytes */
	uint64_t batches;   /**< atomic */
	int64_t max_watermark; /**< atomic max */
};

/**
 * Counting/verifying sink: counts records and an order-independent
 * checksum (sum of per-record xxh3), optionally slowed down per batch (for
 * backpressure tests), optionally calling `check` on every batch.
 */
struct sl_count_sink_conf {
	struct sl_count_result *result;	/**< may be NULL */
	uint32_t delay_us_per_batch;
	int (*check)(struct sl_task *t, const struct sl_batch *b, void *arg);
	void *check_arg;
};
extern const struct sl_operator_ops sl_op_count_sink;

/** Name -> ops for the built-ins ("generator", "window-aggregate", ...). */
const struct sl_operator_ops *sl_builtin_find(const char *type);
/** NULL-terminated list of built-in type names. */
const char *const *sl_builtin_names(void);

#endif
