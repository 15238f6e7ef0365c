/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Record schemas: named, fixed-width fields in row layout.
 *
 * A record is a packed row: fields in declaration order, each at its natural
 * alignment (8 for 64-bit types, 4 for u32, 1 for bytes), record size rounded
 * up to 8.  Row layout is chosen because records are moved as units: hash
 * partitioning copies whole records into per-destination batches, channel
 * state is persisted as contiguous batch bytes, and binary files map 1:1.
 */
#ifndef SLUICE_SCHEMA_H
#define SLUICE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#define SL_SCHEMA_MAX_FIELDS 32
#define SL_FIELD_NAME_MAX 32
#define SL_BYTES_MAX 256

/** Field types. Timestamps are signed nanoseconds since the Unix epoch. */
enum sl_type {
	SL_TYPE_U32,
	SL_TYPE_U64,
	SL_TYPE_I64,
	SL_TYPE_F64,
	SL_TYPE_TIMESTAMP,
	SL_TYPE_BYTES,
};

struct sl_field {
	char name[SL_FIELD_NAME_MAX];
	enum sl_type type;
	uint16_t size;   /**< bytes in the record */
	uint16_t offset; /**< from the start of the record */
};

struct sl_schema {
	uint16_t nfields;
	uint16_t record_size;
	struct sl_field fields[SL_SCHEMA_MAX_FIELDS];
};

/**
 * Append a field.
 * @param s     schema to extend
 * @param name  field name, unique, 1..31 chars
 * @param type  field type
 * @param size  byte length for SL_TYPE_BYTES (1..256); ignored otherwise
 * @return 0, -EEXIST (duplicate name), -ENOSPC (too many fields),
 *         -EINVAL (bad name or size)
 */
int sl_schema_add(struct sl_schema *s, const char *name, enum sl_type type,
		  uint16_t size);

/** Find a field by name; NULL if the schema has none. */
const struct sl_field *sl_schema_find(const struct sl_schema *s,
				      const char *name);

/** Type name as written in job files ("u32", "u64", ...). */
const char *sl_type_name(enum sl_type type);

/** Parse a type name; 0 or -EINVAL. */
int sl_type_parse(const char *name, enum sl_type *type);

/** True for the numeric types (everything but bytes). */
static inline int sl_type_is_numeric(enum sl_type t)
{
	return t != SL_TYPE_BYTES;
}

/**
 * Read a numeric field widened to int64 (f64 is truncated).  Used off the
 * hot path (CSV output, filters); hot operators read fields directly.
 */
int64_t sl_field_get_i64(const struct sl_field *f, const void *rec);

/** Read a numeric field as double. */
double sl_field_get_f64(const struct sl_field *f, const void *rec);

/** Store an integer into a numeric field (converted to the field's type). */
void sl_field_set_i64(const struct sl_field *f, void *rec, int64_t v);

/**
 * Format one field as text (CSV cell).  Bytes are printed as hex.
 * @return characters written (excluding NUL), as snprintf.
 */
int sl_field_format(const struct sl_field *f, const void *rec, char *buf,
		    size_t len);

/** Write the schema's field names as a CSV header line into buf. */
int sl_schema_csv_header(const struct sl_schema *s, char *buf, size_t len);

#endif
