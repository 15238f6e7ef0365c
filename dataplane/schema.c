/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sluice/schema.h"

static const char *const type_names[] = {
	[SL_TYPE_U32] = "u32",	 [SL_TYPE_U64] = "u64",
	[SL_TYPE_I64] = "i64",	 [SL_TYPE_F64] = "f64",
	[SL_TYPE_TIMESTAMP] = "timestamp", [SL_TYPE_BYTES] = "bytes",
};

const char *sl_type_name(enum sl_type type)
{
	if ((unsigned)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "?";
	return type_names[type];
}

int sl_type_parse(const char *name, enum sl_type *type)
{
	for (unsigned i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (strcmp(name, type_names[i]) == 0) {
			*type = (enum sl_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

static uint16_t type_size(enum sl_type type, uint16_t bytes)
{
	switch (type) {
	case SL_TYPE_U32:
		return 4;
	case SL_TYPE_BYTES:
		return bytes;
	default:
		return 8;
	}
}

int sl_schema_add(struct sl_schema *s, const char *name, enum sl_type type,
		  uint16_t size)
{
	size_t len = strlen(name);

	if (len == 0 || len >= SL_FIELD_NAME_MAX)
		return -EINVAL;
	if (type == SL_TYPE_BYTES && (size == 0 || size > SL_BYTES_MAX))
		return -EINVAL;
	if (sl_schema_find(s, name) != NULL)
		return -EEXIST;
	if (s->nfields == SL_SCHEMA_MAX_FIELDS)
		return -ENOSPC;

	uint16_t sz = type_size(type, size);
	uint16_t align = type == SL_TYPE_BYTES ? 1 : sz;
	uint16_t end = 0;

	if (s->nfields > 0) {
		const struct sl_field *last = &s->fields[s->nfields - 1];
		end = last->offset + last->size;
	}
	struct sl_field *f = &s->fields[s->nfields++];
	memcpy(f->name, name, len + 1);
	f->type = type;
	f->size = sz;
	f->offset = (uint16_t)((end + align - 1) & ~(align - 1));
	s->record_size = (uint16_t)((f->offset + f->size + 7) & ~7u);
	return 0;
}

const struct sl_field *sl_schema_find(const struct sl_schema *s,
				      const char *name)
{
	for (unsigned i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].name, name) == 0)
			return &s->fields[i];
	return NULL;
}

int64_t sl_field_get_i64(const struct sl_field *f, const void *rec)
{
	const uint8_t *p = (const uint8_t *)rec + f->offset;

	switch (f->type) {
	case SL_TYPE_U32: {
		uint32_t v;
		memcpy(&v, p, 4);
		return v;
	}
	case SL_TYPE_F64: {
		double d;
		memcpy(&d, p, 8);
		return (int64_t)d;
	}
	case SL_TYPE_BYTES:
		return 0;
	default: {
		int64_t v;
		memcpy(&v, p, 8);
		return v;
	}
	}
}

double sl_field_get_f64(const struct sl_field *f, const void *rec)
{
	const uint8_t *p = (const uint8_t *)rec + f->offset;

	switch (f->type) {
	case SL_TYPE_F64: {
		double d;
		memcpy(&d, p, 8);
		return d;
	}
	case SL_TYPE_U64: {
		uint64_t v;
		memcpy(&v, p, 8);
		return (double)v;
	}
	default:
		return (double)sl_field_get_i64(f, rec);
	}
}

void sl_field_set_i64(const struct sl_field *f, void *rec, int64_t v)
{
	uint8_t *p = (uint8_t *)rec + f->offset;

	switch (f->type) {
	case SL_TYPE_U32: {
		uint32_t u = (uint32_t)v;
		memcpy(p, &u, 4);
		break;
	}
	case SL_TYPE_F64: {
		double d = (double)v;
		memcpy(p, &d, 8);
		break;
	}
	case SL_TYPE_BYTES:
		break;
	default:
		memcpy(p, &v, 8);
		break;
	}
}

int sl_field_format(const struct sl_field *f, const void *rec, char *buf,
		    size_t len)
{
	const uint8_t *p = (const uint8_t *)rec + f->offset;

	switch (f->type) {
	case SL_TYPE_U32:
	case SL_TYPE_U64: {
		uint64_t v = 0;
		memcpy(&v, p, f->size);
		return snprintf(buf, len, "%" PRIu64, v);
	}
	case SL_TYPE_I64:
	case SL_TYPE_TIMESTAMP: {
		int64_t v;
		memcpy(&v, p, 8);
		return snprintf(buf, len, "%" PRId64, v);
	}
	case SL_TYPE_F64: {
		double d;
		memcpy(&d, p, 8);
		return snprintf(buf, len, "%.17g", d);
	}
	case SL_TYPE_BYTES: {
		size_t n = 0;
		for (unsigned i = 0; i < f->size && n + 3 <= len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%02x", p[i]);
		return (int)n;
	}
	}
	return 0;
}

int sl_schema_csv_header(const struct sl_schema *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < s->nfields && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "," : "",
				      s->fields[i].name);
	return (int)n;
}
