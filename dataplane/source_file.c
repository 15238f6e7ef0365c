/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replayable file source (parallelism 1).
 *
 * Formats:
 *  - CSV: one record per line, fields in schema order separated by ',';
 *    numbers in decimal (f64 as strtod reads them), bytes fields as hex
 *    (at most 2*size digits, shorter values are zero-padded on the right).
 *    No quoting: the format carries numbers and hex only.  Blank lines are
 *    skipped, "\r\n" endings accepted, a last line without '\n' is read.
 *  - binary: fixed-size records in the schema's row layout (native byte
 *    order, padding included), as the binary file sink writes them.
 *
 * Offsets: the source reads sequentially through a 1 MiB buffer and keeps
 * `next_offset`, the byte offset of the first record it has not emitted
 * yet.  A checkpoint stores that offset; a restart passes it back as
 * start_offset and the source continues with exactly the next record
 * (offsets always point at a record start: a line start for CSV, a multiple
 * of the record size for binary).  skip_header applies only when starting
 * at offset 0, since any later offset is past the header already.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/operators.h"

#define FSRC_BUF_SIZE (1u << 20)
/* longest CSV cell we copy for parsing: hex of the largest bytes field */
#define FSRC_CELL_MAX (2 * SL_BYTES_MAX + 64)

/** A running file source subtask. */
struct file_src {
	int fd;
	enum sl_file_format format;
	uint16_t rs;
	const struct sl_schema *schema;
	const char *path;
	/** Byte offset in the file of the next record not yet emitted: what a
	 *  checkpoint stores, and what start_offset resumes from. */
	uint64_t next_offset;
	uint8_t *buf;
	size_t pos;	   /* first unconsumed byte */
	size_t end;	   /* bytes in buf */
	uint64_t buf_off;  /* file offset of buf[0] */
	bool eof;
	bool header_pending;
	bool has_ts;
	uint16_t ts_off;
	int64_t ooo;
	int64_t max_ts;
};

static int fsrc_err(char *err, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fsrc_err(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return rc;
}

/* Checks shared by plan() and open(): the file is readable and the start
 * offset is a record boundary.  Returns an open fd or a negative errno. */
static int fsrc_open_checked(const struct sl_file_source_conf *c, char *err,
			     size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fsrc_err(err, errlen, -errno, "cannot read %s: %s; check the path",
				c->path, strerror(errno));
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
		close(fd);
		return fsrc_err(err, errlen, -e, "cannot read %s: %s; check the path",
				c->path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		if (c->start_offset == 0)
			return fd; /* a pipe can be read once, from the start */
		close(fd);
		return fsrc_err(err, errlen, -EINVAL,
				"%s is not a regular file, so it cannot start at offset %" PRIu64,
				c->path, c->start_offset);
	}
	if (c->format == SL_FILE_BINARY && st.st_size % c->schema.record_size != 0) {
		close(fd);
		return fsrc_err(err, errlen, -EINVAL,
				"%s: size %lld bytes is not a multiple of the record size %u; the file does not match the schema (binary format)",
				c->path, (long long)st.st_size, c->schema.record_size);
	}
	if (c->start_offset > (uint64_t)st.st_size) {
		close(fd);
		return fsrc_err(err, errlen, -EINVAL,
				"start_offset %" PRIu64 " is beyond the end of %s (%lld bytes)",
				c->start_offset, c->path, (long long)st.st_size);
	}
	if (c->format == SL_FILE_BINARY && c->start_offset % c->schema.record_size) {
		close(fd);
		return fsrc_err(err, errlen, -EINVAL,
				"start_offset %" PRIu64 " of %s is not a multiple of the record size %u",
				c->start_offset, c->path, c->schema.record_size);
	}
	if (c->format == SL_FILE_CSV && c->start_offset > 0) {
		char prev;
		ssize_t n = pread(fd, &prev, 1, (off_t)c->start_offset - 1);
		if (n != 1 || prev != '\n') {
			close(fd);
			return fsrc_err(err, errlen, -EINVAL,
					"start_offset %" PRIu64 " of %s is not at the start of a line",
					c->start_offset, c->path);
		}
	}
	return fd;
}

static int fsrc_plan(void *conf, const struct sl_schema *const in[],
		     unsigned n_in, struct sl_schema *out, char *err,
		     size_t errlen)
{
	struct sl_file_source_conf *c = conf;
	int fd;

	(void)in, (void)n_in;
	if (c->schema.nfields == 0 || c->schema.record_size == 0)
		return fsrc_err(err, errlen, -EINVAL,
				"the schema has no fields; declare the file's columns");
	if (c->format != SL_FILE_CSV && c->format != SL_FILE_BINARY)
		return fsrc_err(err, errlen, -EINVAL, "unknown format %d (csv or binary)",
				(int)c->format);
	if (c->path[0] == '\0')
		return fsrc_err(err, errlen, -EINVAL, "no path given");
	if (c->max_out_of_orderness_ns < 0)
		return fsrc_err(err, errlen, -EINVAL,
				"max_out_of_orderness_ns must be >= 0");
	c->ts_idx = -1;
	if (c->ts_field[0] != '\0') {
		const struct sl_field *f = sl_schema_find(&c->schema, c->ts_field);
		if (f == NULL)
			return fsrc_err(err, errlen, -EINVAL,
					"ts_field '%s' is not in the schema", c->ts_field);
		if (f->type != SL_TYPE_TIMESTAMP && f->type != SL_TYPE_I64)
			return fsrc_err(err, errlen, -EINVAL,
					"ts_field '%s' must be of type timestamp or i64, not %s",
					c->ts_field, sl_type_name(f->type));
		c->ts_idx = (int16_t)(f - c->schema.fields);
	}
	fd = fsrc_open_checked(c, err, errlen);
	if (fd < 0)
		return fd;
	close(fd);
	*out = c->schema;
	return 0;
}

static int fsrc_prepare(void *conf, uint32_t parallelism, char *err,
			size_t errlen)
{
	const struct sl_file_source_conf *c = conf;

	if (parallelism != 1)
		return fsrc_err(err, errlen, -EINVAL,
				"a file source reads %s sequentially and runs with parallelism 1, not %u; spread its output with a rebalance or hash edge instead",
				c->path, parallelism);
	return 0;
}

static int fsrc_open(struct sl_task *t, void **op)
{
	const struct sl_file_source_conf *c = t->info.conf;
	struct file_src *s;
	char err[512];
	int fd;

	fd = fsrc_open_checked(c, err, sizeof(err));
	if (fd < 0) {
		sl_task_error(t, "%s", err);
		return fd;
	}
	s = calloc(1, sizeof(*s));
	if (s != NULL)
		s->buf = malloc(FSRC_BUF_SIZE);
	if (s == NULL || s->buf == NULL) {
		free(s);
		close(fd);
		return -ENOMEM;
	}
	if (c->start_offset > 0 &&
	    lseek(fd, (off_t)c->start_offset, SEEK_SET) == (off_t)-1) {
		sl_task_error(t, "cannot seek %s to %" PRIu64 ": %s", c->path,
			      c->start_offset, strerror(errno));
		free(s->buf);
		free(s);
		close(fd);
		return -EIO;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s->fd = fd;
	s->format = c->format;
	s->schema = &c->schema;
	s->path = c->path;
	s->rs = c->schema.record_size;
	s->next_offset = c->start_offset;
	s->buf_off = c->start_offset;
	s->header_pending = c->format == SL_FILE_CSV && c->skip_header &&
			    c->start_offset == 0;
	s->has_ts = c->ts_idx >= 0;
	if (s->has_ts)
		s->ts_off = c->schema.fields[c->ts_idx].offset;
	s->ooo = c->max_out_of_orderness_ns;
	s->max_ts = INT64_MIN;
	*op = s;
	return 0;
}

/* Keep the unconsumed bytes and read more behind them.  Returns bytes
 * read (0 at end of file) or a negative errno. */
static ssize_t fsrc_refill(struct sl_task *t, struct file_src *s)
{
	ssize_t n;

	if (s->pos > 0) {
		memmove(s->buf, s->buf + s->pos, s->end - s->pos);
		s->buf_off += s->pos;
		s->end -= s->pos;
		s->pos = 0;
	}
	do {
		n = read(s->fd, s->buf + s->end, FSRC_BUF_SIZE - s->end);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;
		sl_task_error(t, "cannot read %s: %s", s->path, strerror(e));
		return -e;
	}
	if (n == 0)
		s->eof = true;
	s->end += (size_t)n;
	return n;
}

/* 1-based line number of the line starting at `offset` (error path only:
 * counts newlines from the start of the file). */
static uint64_t fsrc_line_of(const struct file_src *s, uint64_t offset)
{
	char chunk[65536];
	uint64_t line = 1, at = 0;

	while (at < offset) {
		size_t want = offset - at < sizeof(chunk) ? offset - at : sizeof(chunk);
		ssize_t n = pread(s->fd, chunk, want, (off_t)at);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			line += chunk[i] == '\n';
		at += (uint64_t)n;
	}
	return line;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Parse one cell into its field; a static message on error. */
static const char *fsrc_parse_cell(const struct sl_field *f, const char *cell,
				   uint8_t *rec)
{
	uint8_t *p = rec + f->offset;
	char *endp;

	if (f->type == SL_TYPE_BYTES) {
		size_t len = strlen(cell);
		if (len % 2 != 0 || len / 2 > f->size)
			return "is not hex of the field's size";
		for (size_t i = 0; i < len / 2; i++) {
			int hi = hexval(cell[2 * i]), lo = hexval(cell[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return "is not hex";
			p[i] = (uint8_t)(hi << 4 | lo);
		}
		return NULL; /* the rest stays zero */
	}
	if (cell[0] == '\0')
		return "is not a number";
	errno = 0;
	switch (f->type) {
	case SL_TYPE_U32:
	case SL_TYPE_U64: {
		if (cell[0] == '-')
			return "is not a number"; /* strtoull would negate */
		unsigned long long v = strtoull(cell, &endp, 10);
		if (*endp != '\0')
			return "is not a number";
		if (errno == ERANGE || (f->type == SL_TYPE_U32 && v > UINT32_MAX))
			return "is out of range";
		if (f->type == SL_TYPE_U32) {
			uint32_t u = (uint32_t)v;
			memcpy(p, &u, 4);
		} else {
			uint64_t u = v;
			memcpy(p, &u, 8);
		}
		return NULL;
	}
	case SL_TYPE_I64:
	case SL_TYPE_TIMESTAMP: {
		long long v = strtoll(cell, &endp, 10);
		if (*endp != '\0')
			return "is not a number";
		if (errno == ERANGE)
			return "is out of range";
		int64_t i = v;
		memcpy(p, &i, 8);
		return NULL;
	}
	case SL_TYPE_F64: {
		double d = strtod(cell, &endp);
		if (*endp != '\0')
			return "is not a number";
		memcpy(p, &d, 8);
		return NULL;
	}
	default:
		return "has an unknown type";
	}
}

static inline bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Parse the CSV line [line, line+len) into rec. */
static int fsrc_parse_line(struct sl_task *t, struct file_src *s,
			   const char *line, size_t len, uint8_t *rec)
{
	const struct sl_schema *sc = s->schema;
	char cell[FSRC_CELL_MAX];
	size_t at = 0;
	unsigned fi = 0;

	memset(rec, 0, s->rs); /* padding and short bytes fields */
	for (;;) {
		const char *start = line + at;
		const char *comma = memchr(start, ',', len - at);
		size_t clen = comma ? (size_t)(comma - start) : len - at;
		const char *why;

		if (fi == sc->nfields) {
			fi++; /* count the extra cells for the message */
		} else {
			const struct sl_field *f = &sc->fields[fi++];
			while (clen > 0 && is_blank(*start))
				start++, clen--;
			while (clen > 0 && is_blank(start[clen - 1]))
				clen--;
			if (clen >= sizeof(cell)) {
				sl_task_error(t, "%s:%" PRIu64 ": field '%s': value of %zu characters is too long",
					      s->path, fsrc_line_of(s, s->next_offset),
					      f->name, clen);
				return -EINVAL;
			}
			memcpy(cell, start, clen);
			cell[clen] = '\0';
			why = fsrc_parse_cell(f, cell, rec);
			if (why != NULL) {
				sl_task_error(t, "%s:%" PRIu64 ": field '%s': '%s' %s",
					      s->path, fsrc_line_of(s, s->next_offset),
					      f->name, cell, why);
				return -EINVAL;
			}
		}
		if (comma == NULL)
			break;
		at = (size_t)(comma - line) + 1;
	}
	if (fi != sc->nfields) {
		sl_task_error(t, "%s:%" PRIu64 ": expected %u fields, got %u",
			      s->path, fsrc_line_of(s, s->next_offset),
			      sc->nfields, fi);
		return -EINVAL;
	}
	return 0;
}

static void fsrc_watermark(struct sl_task *t, struct file_src *s, int64_t max_ts)
{
	if (max_ts <= s->max_ts)
		return;
	s->max_ts = max_ts;
	sl_task_set_watermark(t, max_ts < INT64_MIN + s->ooo ? INT64_MIN
							     : max_ts - s->ooo);
}

static int fsrc_poll_csv(struct sl_task *t, struct file_src *s)
{
	uint64_t limit = UINT64_MAX, emitted = 0;
	int64_t max_ts = INT64_MIN;

	while (emitted < limit) {
		const char *line = (const char *)s->buf + s->pos;
		const char *nl = memchr(line, '\n', s->end - s->pos);
		size_t len, consumed;
		uint8_t *rec;

		if (nl == NULL && !s->eof) {
			if (s->pos == 0 && s->end == FSRC_BUF_SIZE) {
				sl_task_error(t, "%s:%" PRIu64 ": line longer than %u bytes",
					      s->path, fsrc_line_of(s, s->next_offset),
					      FSRC_BUF_SIZE);
				return -EINVAL;
			}
			ssize_t n = fsrc_refill(t, s);
			if (n < 0)
				return (int)n;
			continue;
		}
		if (nl == NULL && s->pos == s->end)
			break; /* end of file */
		len = nl ? (size_t)(nl - line) : s->end - s->pos;
		consumed = nl ? len + 1 : len;
		if (len > 0 && line[len - 1] == '\r')
			len--;

		if (len == 0) {
			/* blank line: skipped */
		} else if (s->header_pending) {
			s->header_pending = false;
		} else {
			rec = sl_emit(t);
			if (emitted == 0) /* fill at most the rest of this batch */
				limit = t->out->capacity - t->out->count + 1;
			if (fsrc_parse_line(t, s, line, len, rec) < 0) {
				sl_emit_undo(t);
				return -EINVAL;
			}
			if (s->has_ts) {
				int64_t ts;
				memcpy(&ts, rec + s->ts_off, 8);
				max_ts = ts > max_ts ? ts : max_ts;
			}
			emitted++;
		}
		s->pos += consumed;
		s->next_offset = s->buf_off + s->pos;
	}
	if (emitted == 0)
		return SL_SOURCE_END;
	if (s->has_ts)
		fsrc_watermark(t, s, max_ts);
	return (int)emitted;
}

static int fsrc_poll_binary(struct sl_task *t, struct file_src *s)
{
	const uint16_t rs = s->rs;
	size_t avail = (s->end - s->pos) / rs;
	uint8_t *first;
	uint64_t n;
	int64_t max_ts = INT64_MIN;

	while (avail == 0) {
		if (s->eof) {
			if (s->pos != s->end) {
				sl_task_error(t, "%s: truncated record at offset %" PRIu64 " (%zu of %u bytes); was the file cut short?",
					      s->path, s->next_offset, s->end - s->pos, rs);
				return -EINVAL;
			}
			return SL_SOURCE_END;
		}
		ssize_t r = fsrc_refill(t, s);
		if (r < 0)
			return (int)r;
		avail = (s->end - s->pos) / rs;
	}
	first = sl_emit(t);
	n = (uint64_t)(t->out->capacity - t->out->count) + 1;
	if (n > avail)
		n = avail;
	for (uint64_t k = 1; k < n; k++)
		sl_emit(t);
	/* the reserved slots are contiguous and so are the file's records */
	memcpy(first, s->buf + s->pos, n * rs);
	if (s->has_ts) {
		const uint8_t *p = first + s->ts_off;
		for (uint64_t k = 0; k < n; k++, p += rs) {
			int64_t ts;
			memcpy(&ts, p, 8);
			max_ts = ts > max_ts ? ts : max_ts;
		}
		fsrc_watermark(t, s, max_ts);
	}
	s->pos += n * rs;
	s->next_offset = s->buf_off + s->pos;
	return (int)n;
}

static int fsrc_poll(void *op, struct sl_task *t)
{
	struct file_src *s = op;

	return s->format == SL_FILE_CSV ? fsrc_poll_csv(t, s)
					: fsrc_poll_binary(t, s);
}

static void fsrc_close(void *op, struct sl_task *t)
{
	struct file_src *s = op;

	(void)t;
	close(s->fd);
	free(s->buf);
	free(s);
}

/*
 * Checkpoint: the position.  Operator-state blob (little-endian):
 *   u64 next_offset  byte offset of the first record not emitted yet
 *   i64 max_ts       largest timestamp emitted (its watermark basis)
 */
static int fsrc_snapshot(void *op, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	const struct file_src *s = op;
	uint64_t blob[2] = { s->next_offset, (uint64_t)s->max_ts };

	(void)t;
	return sl_ckpt_put_blob(ck, blob, sizeof(blob));
}

/*
 * Restore: continue with the record at the snapshotted offset, checked as
 * a start_offset is (a record boundary inside the file: a file that was
 * rewritten since is noticed when it no longer fits).
 */
static int fsrc_restore(void *op, struct sl_task *t, struct sl_restore_ctx *rc)
{
	struct file_src *s = op;
	const struct sl_file_source_conf *c = t->info.conf;
	struct sl_file_source_conf *at;
	uint64_t blob[2];
	const void *data;
	size_t len;
	char err[512];
	int fd, ret = sl_restore_blob(rc, &data, &len);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (len != sizeof(blob)) {
		sl_task_error(t, "checkpoint %llu: file-source state of %zu bytes, expected %zu",
			      (unsigned long long)sl_restore_id(rc), len, sizeof(blob));
		return -EBADMSG;
	}
	memcpy(blob, data, sizeof(blob));
	at = malloc(sizeof(*at));
	if (at == NULL)
		return -ENOMEM;
	*at = *c;
	at->start_offset = blob[0];
	fd = fsrc_open_checked(at, err, sizeof(err));
	free(at);
	if (fd < 0) {
		sl_task_error(t, "restoring checkpoint %llu: %s (did the file change since?)",
			      (unsigned long long)sl_restore_id(rc), err);
		return fd;
	}
	if (lseek(fd, (off_t)blob[0], SEEK_SET) == (off_t)-1) {
		sl_task_error(t, "cannot seek %s to %" PRIu64 ": %s", c->path,
			      blob[0], strerror(errno));
		close(fd);
		return -EIO;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	close(s->fd);
	s->fd = fd;
	s->next_offset = s->buf_off = blob[0];
	s->pos = s->end = 0;
	s->eof = false;
	s->header_pending = c->format == SL_FILE_CSV && c->skip_header && blob[0] == 0;
	s->max_ts = (int64_t)blob[1];
	if (s->has_ts && s->max_ts != INT64_MIN)
		sl_task_set_watermark(t, s->max_ts < INT64_MIN + s->ooo
						 ? INT64_MIN
						 : s->max_ts - s->ooo);
	return 0;
}

const struct sl_operator_ops sl_op_file_source = {
	.snapshot = fsrc_snapshot,
	.restore = fsrc_restore,
	.type = "file-source",
	.conf_size = sizeof(struct sl_file_source_conf),
	.min_inputs = 0,
	.max_inputs = 0,
	.plan = fsrc_plan,
	.prepare = fsrc_prepare,
	.open = fsrc_open,
	.poll = fsrc_poll,
	.close = fsrc_close,
};
