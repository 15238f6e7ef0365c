/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Deterministic generator source.
 *
 * Record i (global index) is a pure function of (seed, i): every field f
 * has its own stream seed fs = mix(seed ^ mix((f+1) * C)) and draws
 * h = mix(fs + i * GAMMA), SplitMix64 style (mix = the SplitMix64
 * finalizer, a bijection).  Nothing depends on what was generated before,
 * so any index can be produced alone: subtask j of p produces j, j+p, ...,
 * a restarted job resumes at start_index, and tests recompute expected
 * records with sl_generator_record().
 *
 * Field contents (f = the field's position in the schema):
 *  - key:   uniform: multiply-shift of h into [0, key_cardinality).
 *           Zipf(s): inverse CDF of the continuous power law x^-s on
 *           [1, N+1), u = top 53 bits of h, key = floor(x) - 1:
 *             s != 1: x = (1 + u * ((N+1)^(1-s) - 1))^(1/(1-s))
 *             s == 1: x = (N+1)^u
 *           This approximates discrete Zipf P(k) ~ (k+1)^-s: each key k
 *           gets the mass of [k+1, k+2) (key 0 is a bit less dominant than
 *           in exact Zipf, e.g. P(0)/P(1) = 1.71 instead of 2 for s = 1),
 *           but it is closed-form, O(1) and needs no table.
 *  - ts:    start_time_ns + i * time_step_ns - jitter, jitter uniform in
 *           [0, max_out_of_orderness_ns).
 *  - seq:   i.
 *  - other numeric fields: [0, value_range) (0 = the raw 64 hash bits);
 *           f64 in [0, 1); u32 fields keep the low 32 bits.
 *  - bytes: key fields get the key in little-endian order, zero-padded;
 *           other bytes fields are pseudo-random.
 *  - padding between and after fields is zero, so record bytes (and the
 *    count sink's checksum) are deterministic.
 *
 * Hot path: poll() reserves up to one batch of slots and fills them from a
 * plan built once in open().  Common layouts (up to GEN_ROW_MAX packed
 * 8-byte fields, each a uniform key, a value with value_range, a ts without
 * jitter or a seq) take a fused row loop: one pass over the records that
 * writes each record's fields in turn, specialised per field count and
 * kind mask so it has no per-field branch.  Other layouts are filled column
 * by column (one loop per field with the type branch hoisted out of it).
 * sl_generator_record() always takes the column path, so the tests that
 * recompute a job's output with it check the row path against it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>

#include "sluice/operators.h"

#define GEN_GAMMA 0x9e3779b97f4a7c15ULL
#define GEN_FIELD_MUL 0xd1b54a32d192ed03ULL
/* records per column pass: the value scratch array stays in L1 */
#define GEN_CHUNK 256
/* the rate limiter never lets more than this much time's worth of records
 * out at once (after backpressure or a descheduling) */
#define GEN_BURST_S 0.010

/* SplitMix64 finalizer: a bijection of 64-bit words with full avalanche. */
static inline uint64_t gen_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t gen_field_seed(uint64_t seed, unsigned field)
{
	return gen_mix(seed ^ gen_mix((uint64_t)(field + 1) * GEN_FIELD_MUL));
}

static inline uint64_t gen_hash(uint64_t field_seed, uint64_t i)
{
	return gen_mix(field_seed + i * GEN_GAMMA);
}

/* h * n / 2^64: uniform in [0, n) without division. */
static inline uint64_t gen_range(uint64_t h, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)h * n) >> 64);
}

static inline double gen_unit(uint64_t h)
{
	return (double)(h >> 11) * 0x1p-53;
}

static inline uint64_t gen_f64_bits(double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	return v;
}

enum gen_kind {
	GK_ZERO,	/* padding */
	GK_SEQ,
	GK_TS,
	GK_KEY_UNIFORM,
	GK_KEY_ZIPF,
	GK_RAND,
};

struct gen_col {
	uint8_t kind;	 /* enum gen_kind */
	uint8_t type;	 /* enum sl_type */
	uint16_t off;
	uint16_t size;
	uint64_t fseed;
};

/* fused row path: at most this many fields (a compiled copy per count) */
#define GEN_ROW_MAX 4

/*
 * Row plan: field c is the 8 bytes at offset 8 * c, either hashed (bit c of
 * `hashed`: range(mix(fseed + i * GAMMA), range)) or affine (a0 + i * da,
 * mod 2^64).  ncols == 0: the layout does not qualify.
 */
struct gen_row {
	unsigned ncols;
	unsigned hashed;
	int ts_col;	/* the ts field's column, -1 = none */
	uint64_t fseed[GEN_ROW_MAX];
	uint64_t range[GEN_ROW_MAX];
	uint64_t a0[GEN_ROW_MAX];
	uint64_t da[GEN_ROW_MAX];
};

/* Everything needed to compute a record, resolved once. */
struct gen_plan {
	struct gen_row row;
	uint16_t record_size;
	unsigned ncols;
	struct gen_col col[2 * SL_SCHEMA_MAX_FIELDS + 1];
	uint64_t card;
	uint64_t value_range;
	int64_t t0, step, ooo;
	uint64_t ts_fseed;
	bool has_ts;
	bool zipf_log;	/* s == 1 */
	double zipf_a;	/* (N+1)^(1-s) - 1 */
	double zipf_inv; /* 1 / (1-s) */
	double zipf_ln;	/* ln(N+1) */
};

static inline uint64_t gen_key_zipf(const struct gen_plan *g, uint64_t h)
{
	double u = gen_unit(h);
	double x = g->zipf_log ? exp(u * g->zipf_ln)
			       : exp(log1p(u * g->zipf_a) * g->zipf_inv);
	uint64_t k = x >= 2.0 ? (uint64_t)x - 1 : 0;

	return k < g->card ? k : g->card - 1; /* rounding at the top end */
}

static inline int64_t gen_ts(const struct gen_plan *g, uint64_t i)
{
	/* unsigned arithmetic: wraps instead of undefined overflow */
	uint64_t ts = (uint64_t)g->t0 + i * (uint64_t)g->step;

	if (g->ooo > 0)
		ts -= gen_range(gen_hash(g->ts_fseed, i), (uint64_t)g->ooo);
	return (int64_t)ts;
}

/* Key as the bit pattern of its field type. */
static inline uint64_t gen_key_bits(uint8_t type, uint64_t k)
{
	return type == SL_TYPE_F64 ? gen_f64_bits((double)k) : k;
}

static inline void gen_store(uint8_t *base, uint16_t rs, const struct gen_col *c,
			     const uint64_t *vals, unsigned n)
{
	uint8_t *p = base + c->off;

	if (c->size == 4) {
		for (unsigned k = 0; k < n; k++, p += rs) {
			uint32_t v = (uint32_t)vals[k];
			memcpy(p, &v, 4);
		}
	} else {
		for (unsigned k = 0; k < n; k++, p += rs)
			memcpy(p, &vals[k], 8);
	}
}

static inline void gen_store_key_bytes(uint8_t *base, uint16_t rs,
				       const struct gen_col *c,
				       const uint64_t *keys, unsigned n)
{
	uint8_t *p = base + c->off;
	unsigned head = c->size < 8 ? c->size : 8;

	for (unsigned k = 0; k < n; k++, p += rs) {
		uint64_t v = keys[k];
		for (unsigned b = 0; b < head; b++)
			p[b] = (uint8_t)(v >> (8 * b)); /* little-endian */
		if (c->size > 8)
			memset(p + 8, 0, c->size - 8);
	}
}

static inline void gen_rand_bytes(uint8_t *p, uint16_t size, uint64_t h)
{
	for (unsigned j = 0; j < size; j += 8) {
		uint64_t v = j == 0 ? h : gen_mix(h + j * GEN_GAMMA);
		unsigned m = size - j < 8 ? size - j : 8;
		memcpy(p + j, &v, m);
	}
}

/*
 * One column of n records: v = EXPR for each global index IDX = i0,
 * i0 + stride, ... (EXPR reads IDX), stored into the field of each record
 * in turn as 8 or 4 bytes (u32 keeps the low half). Computes and stores in
 * one pass; the size test is hoisted out of the loop.
 */
#define GEN_COLUMN(c, base, rs, n, IDX, i0, stride, EXPR)                   \
	do {                                                                \
		uint8_t *p_ = (base) + (c)->off;                            \
		unsigned k_;                                                \
		if ((c)->size == 8) {                                       \
			_Pragma("GCC unroll 4")                             \
			for (k_ = 0, IDX = (i0); k_ < (n);                  \
			     k_++, IDX += (stride), p_ += (rs)) {           \
				uint64_t v_ = (EXPR);                       \
				memcpy(p_, &v_, 8);                         \
			}                                                   \
		} else {                                                    \
			for (k_ = 0, IDX = (i0); k_ < (n);                  \
			     k_++, IDX += (stride), p_ += (rs)) {           \
				uint32_t v_ = (uint32_t)(EXPR);             \
				memcpy(p_, &v_, 4);                         \
			}                                                   \
		}                                                           \
	} while (0)

/*
 * Fill n records at `base` (stride record_size) with global indices
 * i0, i0 + stride, ... column by column.  Returns the largest timestamp
 * written (INT64_MIN without a ts field).
 */
static int64_t gen_fill_columns(const struct gen_plan *g, uint8_t *base,
				unsigned n, uint64_t i0, uint64_t stride)
{
	const uint16_t rs = g->record_size;
	uint64_t vals[GEN_CHUNK];
	int64_t max_ts = INT64_MIN;

	for (unsigned ci = 0; ci < g->ncols; ci++) {
		const struct gen_col *c = &g->col[ci];
		const uint64_t fs = c->fseed;
		uint64_t i = i0;

		switch (c->kind) {
		case GK_ZERO: {
			uint8_t *p = base + c->off;
			for (unsigned k = 0; k < n; k++, p += rs)
				memset(p, 0, c->size);
			break;
		}
		case GK_SEQ:
			if (c->type == SL_TYPE_F64)
				GEN_COLUMN(c, base, rs, n, i, i0, stride,
					   gen_f64_bits((double)i));
			else
				GEN_COLUMN(c, base, rs, n, i, i0, stride, i);
			break;
		case GK_TS:
			if (c->size == 8 && g->ooo == 0) {
				/* locals: the stores below could alias *g */
				const uint64_t t0 = (uint64_t)g->t0;
				const uint64_t step = (uint64_t)g->step;
				uint8_t *p = base + c->off;
				int64_t mx = max_ts;

#pragma GCC unroll 4
				for (unsigned k = 0; k < n; k++, i += stride, p += rs) {
					/* as gen_ts() without jitter */
					int64_t ts = (int64_t)(t0 + i * step);

					memcpy(p, &ts, 8);
					mx = ts > mx ? ts : mx;
				}
				max_ts = mx;
				break;
			}
			for (unsigned k = 0; k < n; k++, i += stride) {
				int64_t ts = gen_ts(g, i);
				vals[k] = (uint64_t)ts;
				max_ts = ts > max_ts ? ts : max_ts;
			}
			gen_store(base, rs, c, vals, n);
			break;
		case GK_KEY_UNIFORM:
			if (c->type != SL_TYPE_BYTES && c->type != SL_TYPE_F64) {
				const uint64_t card = g->card;

				GEN_COLUMN(c, base, rs, n, i, i0, stride,
					   gen_range(gen_hash(fs, i), card));
				break;
			}
			/* fall through */
		case GK_KEY_ZIPF:
			if (c->kind == GK_KEY_UNIFORM)
				for (unsigned k = 0; k < n; k++, i += stride)
					vals[k] = gen_range(gen_hash(fs, i), g->card);
			else
				for (unsigned k = 0; k < n; k++, i += stride)
					vals[k] = gen_key_zipf(g, gen_hash(fs, i));
			if (c->type == SL_TYPE_BYTES) {
				gen_store_key_bytes(base, rs, c, vals, n);
				break;
			}
			if (c->type == SL_TYPE_F64)
				for (unsigned k = 0; k < n; k++)
					vals[k] = gen_key_bits(SL_TYPE_F64, vals[k]);
			gen_store(base, rs, c, vals, n);
			break;
		case GK_RAND:
			if (c->type == SL_TYPE_BYTES) {
				uint8_t *p = base + c->off;
				for (unsigned k = 0; k < n; k++, i += stride, p += rs)
					gen_rand_bytes(p, c->size, gen_hash(fs, i));
				break;
			}
			if (c->type == SL_TYPE_F64) {
				GEN_COLUMN(c, base, rs, n, i, i0, stride,
					   gen_f64_bits(gen_unit(gen_hash(fs, i))));
			} else if (g->value_range != 0) {
				const uint64_t vr = g->value_range;

				GEN_COLUMN(c, base, rs, n, i, i0, stride,
					   gen_range(gen_hash(fs, i), vr));
			} else {
				GEN_COLUMN(c, base, rs, n, i, i0, stride,
					   gen_hash(fs, i));
			}
			break;
		}
	}
	return max_ts;
}

/*
 * The row loop for `ncols` fields with kind mask `hashed`, both constants in
 * each inlined copy: the field loop unrolls and its kind tests fold away,
 * leaving per record the hashes, the stores and one add per field (i * GAMMA
 * and i * da advance by addition).
 */
static inline __attribute__((always_inline)) void
gen_rows(const struct gen_row *r, uint8_t *p, unsigned n, uint64_t i0,
	 uint64_t stride, const unsigned ncols, const unsigned hashed)
{
	uint64_t x[GEN_ROW_MAX], dx[GEN_ROW_MAX], rng[GEN_ROW_MAX];
	const uint8_t *end = p + (size_t)n * 8 * ncols;

	for (unsigned c = 0; c < ncols; c++) {
		if (hashed >> c & 1) {
			x[c] = r->fseed[c] + i0 * GEN_GAMMA;
			dx[c] = stride * GEN_GAMMA;
			rng[c] = r->range[c];
		} else {
			x[c] = r->a0[c] + i0 * r->da[c];
			dx[c] = stride * r->da[c];
			rng[c] = 0;
		}
	}
	for (; p != end; p += 8 * ncols) {
		for (unsigned c = 0; c < ncols; c++) {
			uint64_t v = hashed >> c & 1
				? gen_range(gen_mix(x[c]), rng[c]) : x[c];

			memcpy(p + 8 * c, &v, 8);
			x[c] += dx[c];
		}
	}
}

#define GEN_ROWS_CASE(nc, m)                                                \
	case (nc) * 16 + (m):                                               \
		gen_rows(r, base, n, i0, stride, nc, m);                    \
		break;
#define GEN_ROWS_CASE2(nc, m) GEN_ROWS_CASE(nc, m) GEN_ROWS_CASE(nc, (m) + 1)
#define GEN_ROWS_CASE4(nc, m) GEN_ROWS_CASE2(nc, m) GEN_ROWS_CASE2(nc, (m) + 2)
#define GEN_ROWS_CASE8(nc, m) GEN_ROWS_CASE4(nc, m) GEN_ROWS_CASE4(nc, (m) + 4)
#define GEN_ROWS_CASE16(nc, m) GEN_ROWS_CASE8(nc, m) GEN_ROWS_CASE8(nc, (m) + 8)

/*
 * gen_fill_columns() for a plan with a row layout.  The largest timestamp
 * is the last one unless t0 + i * step (never decreasing: step >= 0) passes
 * INT64_MAX within the chunk and wraps; then the written ones are scanned.
 */
static int64_t gen_fill_rows(const struct gen_plan *g, uint8_t *base,
			     unsigned n, uint64_t i0, uint64_t stride)
{
	const struct gen_row *r = &g->row;
	uint64_t last_i;
	__int128 last_ts;
	int64_t max_ts = INT64_MIN;

	switch (r->ncols * 16 + r->hashed) {
	GEN_ROWS_CASE2(1, 0)
	GEN_ROWS_CASE4(2, 0)
	GEN_ROWS_CASE8(3, 0)
	GEN_ROWS_CASE16(4, 0)
	}
	if (r->ts_col < 0 || n == 0)
		return INT64_MIN;
	last_ts = (__int128)INT64_MAX + 1; /* "wrapped" unless shown otherwise */
	if (!__builtin_mul_overflow((uint64_t)(n - 1), stride, &last_i) &&
	    !__builtin_add_overflow(last_i, i0, &last_i))
		last_ts = (__int128)g->t0 + (__int128)last_i * g->step;
	if (last_ts <= INT64_MAX)
		return (int64_t)last_ts;
	for (unsigned k = 0; k < n; k++) {
		int64_t ts;

		memcpy(&ts, base + (size_t)k * g->record_size + 8 * r->ts_col, 8);
		max_ts = ts > max_ts ? ts : max_ts;
	}
	return max_ts;
}

static int64_t gen_fill(const struct gen_plan *g, uint8_t *base, unsigned n,
			uint64_t i0, uint64_t stride)
{
	return g->row.ncols != 0 ? gen_fill_rows(g, base, n, i0, stride)
				 : gen_fill_columns(g, base, n, i0, stride);
}

/*
 * The row plan of a column plan, if every column qualifies (see struct
 * gen_row); leaves row->ncols 0 otherwise.
 */
static void gen_row_build(struct gen_plan *g)
{
	struct gen_row r = { .ts_col = -1 };

	if (g->ncols > GEN_ROW_MAX || g->record_size != 8 * g->ncols)
		return;
	for (unsigned ci = 0; ci < g->ncols; ci++) {
		const struct gen_col *c = &g->col[ci];
		bool scalar = c->type != SL_TYPE_BYTES && c->type != SL_TYPE_F64;

		if (c->off != 8 * ci || c->size != 8 || !scalar)
			return;
		switch (c->kind) {
		case GK_KEY_UNIFORM:
			r.hashed |= 1u << ci;
			r.fseed[ci] = c->fseed;
			r.range[ci] = g->card;
			break;
		case GK_RAND:
			if (g->value_range == 0)
				return; /* raw hash bits: column path */
			r.hashed |= 1u << ci;
			r.fseed[ci] = c->fseed;
			r.range[ci] = g->value_range;
			break;
		case GK_TS:
			if (g->ooo != 0)
				return;
			r.ts_col = (int)ci;
			r.a0[ci] = (uint64_t)g->t0;
			r.da[ci] = (uint64_t)g->step;
			break;
		case GK_SEQ:
			r.a0[ci] = 0;
			r.da[ci] = 1;
			break;
		default:
			return;
		}
	}
	r.ncols = g->ncols;
	g->row = r;
}

static int gen_err(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int gen_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Resolve a named role to a field index: -1 for "" (no such role), -2 when
 * the schema lacks the field.  A role still carrying its default name
 * ("key", "ts", "seq") is simply unused when the schema has no field of
 * that name, so defaults never force fields on a schema.
 */
static int gen_find(const struct sl_schema *s, const char *name,
		    const char *default_name)
{
	if (name[0] == '\0')
		return -1;
	for (unsigned i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].name, name) == 0)
			return (int)i;
	return strcmp(name, default_name) == 0 ? -1 : -2;
}

/*
 * Validate a conf and build its column plan.  Field roles are resolved by
 * name, so this works on confs that never went through plan().
 */
static int gen_plan_build(const struct sl_generator_conf *c, struct gen_plan *g,
			  char *err, size_t errlen)
{
	const struct sl_schema *s = &c->schema;
	int key = gen_find(s, c->key_field, "key");
	int ts = gen_find(s, c->ts_field, "ts");
	int seq = gen_find(s, c->seq_field, "seq");
	uint16_t end = 0;

	memset(g, 0, sizeof(*g));
	if (s->nfields == 0 || s->record_size == 0)
		return gen_err(err, errlen, "the schema has no fields; declare some (e.g. key u64, ts timestamp, value u64)");
	if (c->key_cardinality < 1)
		return gen_err(err, errlen, "key_cardinality must be at least 1");
	if (!(c->key_skew >= 0) || !isfinite(c->key_skew))
		return gen_err(err, errlen, "key_skew must be a finite number >= 0 (0 = uniform), got %g",
			       c->key_skew);
	if (!(c->rate >= 0) || !isfinite(c->rate))
		return gen_err(err, errlen, "rate must be >= 0 records/s (0 = unlimited), got %g",
			       c->rate);
	if (c->time_step_ns < 0)
		return gen_err(err, errlen, "time_step_ns must be >= 0 (event time never goes backwards), got %lld",
			       (long long)c->time_step_ns);
	if (c->max_out_of_orderness_ns < 0)
		return gen_err(err, errlen, "max_out_of_orderness_ns must be >= 0, got %lld",
			       (long long)c->max_out_of_orderness_ns);
	if (key == -2 || ts == -2 || seq == -2) {
		const char *role = key == -2 ? "key_field" : ts == -2 ? "ts_field" : "seq_field";
		const char *name = key == -2 ? c->key_field : ts == -2 ? c->ts_field : c->seq_field;
		return gen_err(err, errlen, "%s '%s' is not in the schema", role, name);
	}
	if ((key >= 0 && (key == ts || key == seq)) || (ts >= 0 && ts == seq))
		return gen_err(err, errlen, "key_field, ts_field and seq_field must name different fields");
	if (key >= 0) {
		const struct sl_field *f = &s->fields[key];
		if (f->type == SL_TYPE_U32 && c->key_cardinality > (1ULL << 32))
			return gen_err(err, errlen, "key field '%s' is u32 but key_cardinality %llu does not fit; use u64",
				       f->name, (unsigned long long)c->key_cardinality);
		if (f->type == SL_TYPE_BYTES && f->size < 8 &&
		    c->key_cardinality > (1ULL << (8 * f->size)))
			return gen_err(err, errlen, "key field '%s' has %u bytes, too few for key_cardinality %llu",
				       f->name, f->size,
				       (unsigned long long)c->key_cardinality);
	}
	if (ts >= 0 && s->fields[ts].type != SL_TYPE_TIMESTAMP &&
	    s->fields[ts].type != SL_TYPE_I64)
		return gen_err(err, errlen, "ts_field '%s' must be of type timestamp or i64, not %s",
			       c->ts_field, sl_type_name(s->fields[ts].type));
	if (seq >= 0 && !sl_type_is_numeric(s->fields[seq].type))
		return gen_err(err, errlen, "seq_field '%s' must be numeric, not %s",
			       c->seq_field, sl_type_name(s->fields[seq].type));

	g->record_size = s->record_size;
	g->card = c->key_cardinality;
	g->value_range = c->value_range;
	g->t0 = c->start_time_ns;
	g->step = c->time_step_ns;
	g->ooo = c->max_out_of_orderness_ns;
	g->has_ts = ts >= 0;
	g->ts_fseed = gen_field_seed(c->seed, ts >= 0 ? (unsigned)ts : SL_SCHEMA_MAX_FIELDS);
	if (c->key_skew > 0) {
		double one_minus_s = 1.0 - c->key_skew;
		double n1 = (double)c->key_cardinality + 1.0;

		g->zipf_ln = log(n1);
		g->zipf_log = fabs(one_minus_s) < 1e-9;
		if (!g->zipf_log) {
			g->zipf_a = expm1(one_minus_s * g->zipf_ln);
			g->zipf_inv = 1.0 / one_minus_s;
		}
	}

	for (unsigned i = 0; i < s->nfields; i++) {
		const struct sl_field *f = &s->fields[i];
		struct gen_col *col;

		if (f->offset < end || f->offset + f->size > s->record_size)
			return gen_err(err, errlen, "field '%s' lies outside the record layout; build schemas with sl_schema_add()",
				       f->name);
		if (f->offset > end)
			g->col[g->ncols++] = (struct gen_col){
				.kind = GK_ZERO, .off = end,
				.size = (uint16_t)(f->offset - end)};
		col = &g->col[g->ncols++];
		col->type = (uint8_t)f->type;
		col->off = f->offset;
		col->size = f->size;
		col->fseed = gen_field_seed(c->seed, i);
		if ((int)i == key)
			col->kind = c->key_skew > 0 ? GK_KEY_ZIPF : GK_KEY_UNIFORM;
		else if ((int)i == ts)
			col->kind = GK_TS;
		else if ((int)i == seq)
			col->kind = GK_SEQ;
		else
			col->kind = GK_RAND;
		end = f->offset + f->size;
	}
	if (end < s->record_size)
		g->col[g->ncols++] = (struct gen_col){
			.kind = GK_ZERO, .off = end,
			.size = (uint16_t)(s->record_size - end)};
	gen_row_build(g);
	return 0;
}

void sl_generator_conf_defaults(struct sl_generator_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->seed = 1;
	c->count = 0;
	c->rate = 0;
	c->key_cardinality = 1000;
	c->key_skew = 0;
	c->value_range = 1000000;
	c->start_time_ns = 1600000000LL * 1000000000LL; /* 2020-09-13 */
	c->time_step_ns = 1000;
	c->max_out_of_orderness_ns = 0;
	c->start_index = 0;
	strcpy(c->key_field, "key");
	strcpy(c->ts_field, "ts");
	strcpy(c->seq_field, "seq");
	c->key_idx = c->ts_idx = c->seq_idx = -1;
}

int64_t sl_generator_record(const struct sl_generator_conf *c, uint64_t i,
			    void *rec)
{
	struct gen_plan g;
	int64_t ts;

	if (gen_plan_build(c, &g, NULL, 0) < 0) {
		memset(rec, 0, c->schema.record_size);
		return INT64_MIN;
	}
	/* the column path: the reference the row path is tested against */
	ts = gen_fill_columns(&g, rec, 1, i, 1);
	/* without a ts field the event time is the nominal, jitter-free one */
	if (!g.has_ts)
		ts = (int64_t)((uint64_t)g.t0 + i * (uint64_t)g.step);
	return ts;
}

static int gen_plan_cb(void *conf, const struct sl_schema *const in[],
		       unsigned n_in, struct sl_schema *out, char *err,
		       size_t errlen)
{
	struct sl_generator_conf *c = conf;
	struct gen_plan g;
	int rc;

	(void)in, (void)n_in;
	if (c->schema.nfields == 0) {
		/* no schema given: a usable default, whose field names are
		 * the default roles */
		sl_schema_add(&c->schema, "key", SL_TYPE_U64, 0);
		sl_schema_add(&c->schema, "ts", SL_TYPE_TIMESTAMP, 0);
		sl_schema_add(&c->schema, "seq", SL_TYPE_U64, 0);
		sl_schema_add(&c->schema, "value", SL_TYPE_U64, 0);
	}
	rc = gen_plan_build(c, &g, err, errlen);
	if (rc < 0)
		return rc;
	c->key_idx = (int16_t)gen_find(&c->schema, c->key_field, "key");
	c->ts_idx = (int16_t)gen_find(&c->schema, c->ts_field, "ts");
	c->seq_idx = (int16_t)gen_find(&c->schema, c->seq_field, "seq");
	*out = c->schema;
	return 0;
}

struct gen_src {
	struct gen_plan g;
	uint64_t next;	    /* next global index this subtask produces */
	uint64_t stride;    /* parallelism */
	uint64_t count;	    /* global end, 0 = unbounded */
	int64_t ooo;
	int64_t max_ts;
	/* rate limiting: tokens are records we may still emit */
	bool limited;
	double tokens;
	double tokens_per_cycle;
	double burst;
	uint64_t last_tsc;
};

static int gen_open(struct sl_task *t, void **op)
{
	const struct sl_generator_conf *c = t->info.conf;
	const uint64_t p = t->info.parallelism;
	const uint64_t j = t->info.index;
	struct gen_src *s;
	char err[256];
	int rc;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = gen_plan_build(c, &s->g, err, sizeof(err));
	if (rc < 0) {
		sl_task_error(t, "%s", err);
		free(s);
		return rc;
	}
	if (s->g.record_size != t->out_record_size) {
		sl_task_error(t, "record size %u differs from the planned %u",
			      s->g.record_size, t->out_record_size);
		free(s);
		return -EINVAL;
	}
	/* first index >= start_index that is congruent to j mod p */
	s->next = c->start_index + (j + p - c->start_index % p) % p;
	if (s->next < c->start_index) /* wrapped past 2^64 */
		s->next = UINT64_MAX;
	s->stride = p;
	s->count = c->count;
	s->ooo = c->max_out_of_orderness_ns;
	s->max_ts = INT64_MIN;
	if (c->rate > 0) {
		double per_subtask = c->rate / (double)p;

		s->limited = true;
		s->tokens = 0;
		s->tokens_per_cycle = per_subtask / (double)rte_get_tsc_hz();
		s->burst = per_subtask * GEN_BURST_S;
		if (s->burst < 1.0)
			s->burst = 1.0;
		s->last_tsc = rte_rdtsc();
	}
	*op = s;
	return 0;
}

static int gen_poll(void *op, struct sl_task *t)
{
	struct gen_src *s = op;
	uint64_t left = UINT64_MAX;
	uint64_t n;
	uint8_t *first;
	struct sl_batch *b;
	int64_t max_ts = INT64_MIN;

	if (s->count != 0) {
		if (s->next >= s->count)
			return SL_SOURCE_END;
		left = (s->count - s->next + s->stride - 1) / s->stride;
	}
	if (s->limited) {
		uint64_t now = rte_rdtsc();

		s->tokens += (double)(now - s->last_tsc) * s->tokens_per_cycle;
		s->last_tsc = now;
		if (s->tokens > s->burst)
			s->tokens = s->burst;
		if (s->tokens < 1.0)
			return 0;
		if ((double)left > s->tokens)
			left = (uint64_t)s->tokens;
	}

	/* Reserve the rest of the current output batch: the slots are
	 * contiguous until sl_emit() rolls over to a new batch. */
	first = sl_emit(t);
	b = t->out;
	n = (uint64_t)(b->capacity - b->count) + 1;
	if (n > left)
		n = left;
	/* the other n - 1 slots, as n - 1 sl_emit() calls would take them
	 * (none of them rolls over: they fit in this batch) */
	b->count += (uint32_t)(n - 1);
	t->records_out += n - 1;

	for (uint64_t done = 0; done < n; done += GEN_CHUNK) {
		unsigned m = n - done < GEN_CHUNK ? (unsigned)(n - done) : GEN_CHUNK;
		int64_t mt = gen_fill(&s->g, first + done * s->g.record_size, m,
				      s->next + done * s->stride, s->stride);
		max_ts = mt > max_ts ? mt : max_ts;
	}
	s->next += n * s->stride;
	if (s->limited)
		s->tokens -= (double)n;

	if (s->g.has_ts && max_ts > s->max_ts) {
		s->max_ts = max_ts;
		/* saturate instead of wrapping below INT64_MIN */
		sl_task_set_watermark(t, max_ts < INT64_MIN + s->ooo
						 ? INT64_MIN
						 : max_ts - s->ooo);
	}
	return (int)n;
}

static void gen_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

/*
 * Checkpoint: the subtask's position.  Operator-state blob (little-endian):
 *   u64 next    next global index this subtask produces
 *   i64 max_ts  largest timestamp emitted (its watermark basis)
 */
static int gen_snapshot(void *op, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	const struct gen_src *s = op;
	uint64_t blob[2] = { s->next, (uint64_t)s->max_ts };

	(void)t;
	return sl_ckpt_put_blob(ck, blob, sizeof(blob));
}

/*
 * Restore: continue at the snapshotted index (the blob of gen_snapshot),
 * with the watermark it had.  The subtask's indices are j, j + p, ...: the
 * parallelism must be the one of the checkpoint (sl_restore_blob() refuses
 * another).
 */
static int gen_restore(void *op, struct sl_task *t, struct sl_restore_ctx *rc)
{
	struct gen_src *s = op;
	const void *data;
	size_t len;
	uint64_t blob[2];
	int ret = sl_restore_blob(rc, &data, &len);

	if (ret == -ENOENT)
		return 0; /* nothing emitted yet when the checkpoint was taken */
	if (ret < 0)
		return ret;
	if (len != sizeof(blob)) {
		sl_task_error(t, "checkpoint %llu: generator state of %zu bytes, expected %zu",
			      (unsigned long long)sl_restore_id(rc), len, sizeof(blob));
		return -EBADMSG;
	}
	memcpy(blob, data, sizeof(blob));
	if (blob[0] != UINT64_MAX && blob[0] % s->stride != t->info.index % s->stride) {
		sl_task_error(t, "checkpoint %llu: generator offset %llu does not belong to subtask %u of %llu",
			      (unsigned long long)sl_restore_id(rc),
			      (unsigned long long)blob[0], t->info.index,
			      (unsigned long long)s->stride);
		return -EBADMSG;
	}
	s->next = blob[0];
	s->max_ts = (int64_t)blob[1];
	if (s->g.has_ts && s->max_ts != INT64_MIN)
		sl_task_set_watermark(t, s->max_ts < INT64_MIN + s->ooo
						 ? INT64_MIN
						 : s->max_ts - s->ooo);
	return 0;
}

const struct sl_operator_ops sl_op_generator = {
	.snapshot = gen_snapshot,
	.restore = gen_restore,
	.type = "generator",
	.conf_size = sizeof(struct sl_generator_conf),
	.min_inputs = 0,
	.max_inputs = 0,
	.plan = gen_plan_cb,
	.open = gen_open,
	.poll = gen_poll,
	.close = gen_close,
};
