/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * File sink: CSV (a header line, then one line per record, cells formatted
 * by sl_field_format(), bytes as hex) or binary (records in the schema's
 * row layout, padding included, exactly as the batches hold them).
 *
 * Without checkpoints, subtask i writes one file: `path`, or with
 * parallelism > 1 `path` with ".i" inserted before the extension
 * ("out.csv" -> "out.0.csv", "out" -> "out.0").  It writes through a 1 MiB
 * buffer into a hidden temp file in the same directory (sl_io_tmp_path()),
 * and at the end of the stream flushes, fsyncs and publishes it under the
 * final name (rename + directory fsync), so a reader never sees a partial
 * file.  A job that fails or is cancelled removes its temp files and
 * publishes nothing.
 *
 * With checkpoints the sink is transactional (two-phase commit): it writes
 * part files, one per subtask and checkpoint, that become visible when the
 * checkpoint covering them completes, and a restore commits or discards
 * them so that committed output holds every record exactly once.  Names
 * and protocol: sink_file_parts.c.
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

#include "sluice/io_file.h"
#include "sluice/operators.h"
#include "sink_file_pvt.h"

#define FSINK_BUF_SIZE (1u << 20)

struct file_sink {
	int fd;
	enum sl_file_format format;
	const struct sl_schema *schema;
	bool published;
	bool txn;	 /* transactional: part files, see sink_file_parts.c */
	int deferred_rc; /* a commit in notify_complete() failed: fail next */
	uint64_t last_id; /* newest checkpoint snapshotted or restored */
	size_t line_max; /* longest CSV line a record can produce */
	size_t len;	 /* bytes buffered */
	uint8_t *buf;
	char path[SL_PATH_MAX];
	char tmp[SL_PATH_MAX];
	struct fsink_parts parts;
};

static int fsink_err(char *err, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fsink_err(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return rc;
}

/* Subtask `index`'s file: ".index" goes before the basename's extension. */
static int fsink_subtask_path(const char *path, uint32_t index,
			      uint32_t parallelism, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	const char *dot = strrchr(base, '.');
	int n;

	if (parallelism <= 1)
		n = snprintf(buf, len, "%s", path);
	else if (dot == NULL || dot == base) /* no extension, or ".hidden" */
		n = snprintf(buf, len, "%s.%u", path, index);
	else
		n = snprintf(buf, len, "%.*s.%u%s", (int)(dot - path), path,
			     index, dot);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int fsink_plan(void *conf, const struct sl_schema *const in[],
		      unsigned n_in, struct sl_schema *out, char *err,
		      size_t errlen)
{
	const struct sl_file_sink_conf *c = conf;
	char probe[SL_PATH_MAX], tmp[SL_PATH_MAX], dir[SL_PATH_MAX];
	struct stat st;

	(void)out;
	if (n_in != 1 || in[0]->nfields == 0)
		return fsink_err(err, errlen, -EINVAL, "needs one input with a schema");
	if (c->format != SL_FILE_CSV && c->format != SL_FILE_BINARY)
		return fsink_err(err, errlen, -EINVAL, "unknown format %d (csv or binary)",
				 (int)c->format);
	if (c->path[0] == '\0')
		return fsink_err(err, errlen, -EINVAL, "no path given");
	/* the longest name any subtask may use, and its temp file */
	if (fsink_subtask_path(c->path, UINT32_MAX, 2, probe, sizeof(probe)) < 0 ||
	    sl_io_tmp_path(probe, tmp, sizeof(tmp)) < 0)
		return fsink_err(err, errlen, -ENAMETOOLONG, "path %s is too long or ends in '/'",
				 c->path);
	if (stat(c->path, &st) == 0 && S_ISDIR(st.st_mode))
		return fsink_err(err, errlen, -EISDIR,
				 "%s is a directory; give a file name", c->path);
	sl_io_dirname(c->path, dir, sizeof(dir));
	/* a missing directory is created by prepare(); its nearest existing
	 * ancestor must let us */
	sl_io_existing_ancestor(dir, tmp, sizeof(tmp));
	strcpy(dir, tmp);
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return fsink_err(err, errlen, -ENOTDIR,
				 "%s is not a directory (for %s); fix the path", dir,
				 c->path);
	if (access(dir, W_OK | X_OK) < 0)
		return fsink_err(err, errlen, -errno,
				 "cannot write to directory %s (for %s): %s; check that it exists and is writable",
				 dir, c->path, strerror(errno));
	return 0;
}

static int fsink_flush(struct sl_task *t, struct file_sink *s)
{
	int rc;

	if (s->len == 0)
		return 0;
	rc = sl_io_write_all(s->fd, s->buf, s->len);
	if (rc < 0) {
		sl_task_error(t, "cannot write %s (file %s): %s", s->path,
			      s->tmp, strerror(-rc));
		return rc;
	}
	/* transactional: start write-back now, so that the fdatasync at the
	 * next barrier has little left to do */
	if (s->txn)
		(void)sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	s->len = 0;
	return 0;
}

/* Create the file to write (lazily: an empty part is never created). */
static int fsink_start(struct sl_task *t, struct file_sink *s)
{
	int rc;

	s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s->fd < 0) {
		rc = -errno;
		sl_task_error(t, "cannot create %s (for %s): %s; check that the directory exists and is writable",
			      s->tmp, s->path, strerror(errno));
		return rc;
	}
	if (s->format == SL_FILE_CSV) {
		/* the header is at most 32 bytes per field name */
		s->len = (size_t)sl_schema_csv_header(s->schema, (char *)s->buf,
						      FSINK_BUF_SIZE - 1);
		s->buf[s->len++] = '\n';
	}
	return 0;
}

/* Flush, make durable and close the current file. */
static int fsink_finish_file(struct sl_task *t, struct file_sink *s)
{
	int rc = fsink_flush(t, s);

	if (rc < 0)
		return rc;
	if (fdatasync(s->fd) < 0) {
		rc = -errno;
		sl_task_error(t, "cannot fsync %s (for %s): %s", s->tmp, s->path,
			      strerror(errno));
		return rc;
	}
	rc = close(s->fd) < 0 ? -errno : 0;
	s->fd = -1;
	if (rc < 0)
		sl_task_error(t, "cannot close %s (for %s): %s", s->tmp, s->path,
			      strerror(-rc));
	return rc;
}

static int fsink_open(struct sl_task *t, void **op)
{
	const struct sl_file_sink_conf *c = t->info.conf;
	const struct sl_schema *sc = t->info.in_schema[0];
	struct file_sink *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->fd = -1;
	s->format = c->format;
	s->schema = sc;
	s->txn = t->info.checkpointing;
	/* s->tmp is the file being written: the in-progress part, or the
	 * temp file of the one output file */
	if (s->txn) {
		strcpy(s->path, c->path); /* both SL_PATH_MAX */
		rc = fsink_parts_init(&s->parts, c->path, t->info.index);
		if (rc == 0)
			rc = fsink_part_path(&s->parts, FSINK_IN_PROGRESS, 0, s->tmp,
					     sizeof(s->tmp));
	} else {
		rc = fsink_subtask_path(c->path, t->info.index, t->info.parallelism,
					s->path, sizeof(s->path));
		if (rc == 0)
			rc = sl_io_tmp_path(s->path, s->tmp, sizeof(s->tmp));
	}
	if (rc != 0) {
		sl_task_error(t, "path %s is too long", c->path);
		free(s);
		return -ENAMETOOLONG;
	}
	s->buf = malloc(FSINK_BUF_SIZE);
	if (s->buf == NULL) {
		free(s);
		return -ENOMEM;
	}
	if (s->format == SL_FILE_CSV) {
		s->line_max = 1;
		for (unsigned i = 0; i < sc->nfields; i++)
			/* hex bytes, or up to 24 chars of a number ("%.17g"
			 * of a double), plus the separator */
			s->line_max += (sc->fields[i].type == SL_TYPE_BYTES
						? 2u * sc->fields[i].size + 1
						: 32u) + 1;
	}
	if (s->txn && !t->info.restoring) {
		char err[SL_PATH_MAX + 256];
		unsigned removed;

		rc = fsink_parts_fresh(&s->parts, &removed, err, sizeof(err));
		if (rc < 0) {
			sl_task_error(t, "%s", err);
			free(s->buf);
			free(s);
			return rc;
		}
		if (removed > 0)
			fprintf(stderr,
				"sluice: %s: removed %u uncommitted part(s) of subtask %" PRIu32
				" left by an earlier run\n",
				c->path, removed, t->info.index);
	}
	/* without checkpoints the (possibly empty) file always exists */
	if (!s->txn && (rc = fsink_start(t, s)) < 0) {
		free(s->buf);
		free(s);
		return rc;
	}
	*op = s;
	return 0;
}

static int fsink_process_csv(struct sl_task *t, struct file_sink *s,
			     const struct sl_batch *b)
{
	const struct sl_schema *sc = s->schema;
	const uint16_t rs = b->record_size;
	const uint8_t *rec = b->data;
	char *out = (char *)s->buf;

	for (uint32_t i = 0; i < b->count; i++, rec += rs) {
		size_t len;

		if (s->len + s->line_max > FSINK_BUF_SIZE) {
			int rc = fsink_flush(t, s);
			if (rc < 0)
				return rc;
		}
		len = s->len;
		for (unsigned f = 0; f < sc->nfields; f++) {
			if (f > 0)
				out[len++] = ',';
			len += (size_t)sl_field_format(&sc->fields[f], rec, out + len,
						       FSINK_BUF_SIZE - len);
		}
		out[len++] = '\n';
		s->len = len;
	}
	return 0;
}

static int fsink_process_binary(struct sl_task *t, struct file_sink *s,
				const struct sl_batch *b)
{
	size_t bytes = (size_t)b->count * b->record_size;
	int rc;

	if (s->len + bytes > FSINK_BUF_SIZE && (rc = fsink_flush(t, s)) < 0)
		return rc;
	if (bytes > FSINK_BUF_SIZE) {
		rc = sl_io_write_all(s->fd, b->data, bytes);
		if (rc < 0)
			sl_task_error(t, "cannot write %s (temp file %s): %s",
				      s->path, s->tmp, strerror(-rc));
		return rc;
	}
	memcpy(s->buf + s->len, b->data, bytes);
	s->len += bytes;
	return 0;
}

static int fsink_process(void *op, struct sl_task *t, unsigned input,
			 struct sl_batch *b)
{
	struct file_sink *s = op;
	int rc;

	(void)input;
	if (unlikely(s->deferred_rc < 0))
		return s->deferred_rc;
	if (unlikely(s->fd < 0) && (rc = fsink_start(t, s)) < 0)
		return rc;
	return s->format == SL_FILE_CSV ? fsink_process_csv(t, s, b)
					: fsink_process_binary(t, s, b);
}

/* Transactional end of stream: the last part takes the next id, and
 * everything pending is committed (the job finished). */
static int fsink_txn_end(struct sl_task *t, struct file_sink *s)
{
	char err[512];
	int rc;

	if (s->fd >= 0) {
		uint64_t id = s->last_id + 1;

		if (s->parts.n_pending > 0 &&
		    s->parts.pending[s->parts.n_pending - 1] >= id)
			id = s->parts.pending[s->parts.n_pending - 1] + 1;
		if ((rc = fsink_finish_file(t, s)) < 0)
			return rc;
		if ((rc = fsink_parts_seal(&s->parts, id, err, sizeof(err))) < 0) {
			sl_task_error(t, "%s", err);
			return rc;
		}
	}
	rc = fsink_parts_commit(&s->parts, UINT64_MAX, err, sizeof(err));
	if (rc < 0)
		sl_task_error(t, "%s", err);
	return rc;
}

static int fsink_on_end(void *op, struct sl_task *t, bool drain)
{
	struct file_sink *s = op;
	int rc;

	(void)drain; /* a stop also drains in-flight records to us: keep them */
	if (s->published)
		return 0;
	if (s->deferred_rc < 0)
		return s->deferred_rc;
	if (s->txn) {
		rc = fsink_txn_end(t, s);
		s->published = rc == 0;
		return rc;
	}
	if ((rc = fsink_finish_file(t, s)) < 0)
		return rc;
	rc = sl_io_publish(s->tmp, s->path);
	if (rc < 0) {
		sl_task_error(t, "cannot publish %s as %s: %s", s->tmp, s->path,
			      strerror(-rc));
		return rc;
	}
	s->published = true;
	return 0;
}

/*
 * Checkpoint: seal what was written since the last barrier as the pending
 * part of this checkpoint: flush, rename in-progress -> pending (a
 * metadata operation; the next part reuses the in-progress name, so it
 * cannot wait), and hand the descriptor to the io writer, which
 * fdatasyncs and closes it and fsyncs the directory off this lcore; the
 * checkpoint is acknowledged once that is durable.  Then snapshot the
 * pending list.  A crash before the fdatasync leaves a pending part of a
 * checkpoint that never completed, which a restore removes.
 */
static int fsink_snapshot(void *op, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	struct file_sink *s = op;
	uint64_t id = sl_ckpt_id(ck);
	char err[512];
	void *blob;
	int rc;

	if (!s->txn)
		return 0;
	if (s->fd >= 0) {
		char path[SL_PATH_MAX];

		if ((rc = fsink_flush(t, s)) < 0)
			return rc;
		if ((rc = fsink_parts_seal(&s->parts, id, err, sizeof(err))) < 0) {
			sl_task_error(t, "%s", err);
			return rc;
		}
		if ((rc = fsink_part_path(&s->parts, FSINK_PENDING, id, path,
					  sizeof(path))) < 0)
			return rc;
		rc = sl_ckpt_sync_file(ck, s->fd, path);
		s->fd = -1; /* the writer's now, whatever happened */
		if (rc < 0)
			return rc;
	}
	if (id > s->last_id)
		s->last_id = id;
	blob = malloc(fsink_parts_blob_size(&s->parts));
	if (blob == NULL)
		return -ENOMEM;
	fsink_parts_blob_write(&s->parts, blob);
	rc = sl_ckpt_put_blob(ck, blob, fsink_parts_blob_size(&s->parts));
	free(blob);
	return rc;
}

static void fsink_notify_complete(void *op, struct sl_task *t, uint64_t id)
{
	struct file_sink *s = op;
	char err[512];
	int rc;

	if (!s->txn || s->deferred_rc < 0)
		return;
	rc = fsink_parts_commit_async(&s->parts, t, id, err, sizeof(err));
	if (rc < 0) {
		/* the callback cannot fail the job: the next call does */
		sl_task_error(t, "committing output of checkpoint %" PRIu64 ": %s",
			      id, err);
		s->deferred_rc = rc;
	}
}

/*
 * Restore: for every old subtask this one takes over (itself, or with a
 * changed parallelism old subtasks i, i + p, ...), commit the parts its
 * snapshot listed and remove its files after the checkpoint.
 */
static int fsink_restore(void *op, struct sl_task *t, struct sl_restore_ctx *rc)
{
	const struct sl_file_sink_conf *c = t->info.conf;
	struct file_sink *s = op;
	const uint64_t id = sl_restore_id(rc);
	const uint32_t old_p = sl_restore_parallelism(rc);
	char err[512];

	if (!s->txn)
		return 0;
	s->last_id = id;
	if (t->info.index >= old_p) {
		/* a new subtask: only files of an earlier attempt to remove */
		unsigned removed;
		if (fsink_parts_recover(&s->parts, id, NULL, 0, &removed, err,
					sizeof(err)) < 0) {
			sl_task_error(t, "restoring the output of %s: %s", c->path, err);
			return -EIO;
		}
	}
	for (uint32_t i = t->info.index; i < old_p; i += t->info.parallelism) {
		struct fsink_parts *old = i == t->info.index ? &s->parts : NULL;
		struct fsink_parts tmp;
		uint64_t *ids = NULL;
		const void *data;
		unsigned n = 0, removed;
		uint32_t sub;
		size_t len;
		int rc_;

		rc_ = sl_restore_blob_of(rc, i, &data, &len);
		if (rc_ == -ENOENT)
			continue; /* it had finished: everything was committed */
		if (rc_ < 0)
			return rc_;
		if (old == NULL) {
			if (fsink_parts_init(&tmp, c->path, i) < 0)
				return -ENAMETOOLONG;
			old = &tmp;
		}
		ids = malloc(FSINK_MAX_PENDING * sizeof(*ids));
		if (ids == NULL)
			return -ENOMEM;
		rc_ = fsink_parts_blob_read(data, len, &sub, ids, &n);
		if (rc_ == 0 && sub != i)
			rc_ = -EBADMSG;
		if (rc_ < 0) {
			sl_task_error(t, "checkpoint %" PRIu64 ": file-sink state of subtask %" PRIu32
				      " is malformed (%zu bytes)", id, i, len);
			free(ids);
			return rc_;
		}
		rc_ = fsink_parts_recover(old, id, ids, n, &removed, err, sizeof(err));
		free(ids);
		if (rc_ < 0) {
			sl_task_error(t, "restoring the output of %s from checkpoint %" PRIu64 ": %s",
				      c->path, id, err);
			return rc_;
		}
		if (removed > 0)
			fprintf(stderr,
				"sluice: %s: removed %u output part(s) of subtask %" PRIu32
				" committed after checkpoint %" PRIu64
				": their records are read and written again\n",
				c->path, removed, i, id);
	}
	return 0;
}

static void fsink_close(void *op, struct sl_task *t)
{
	struct file_sink *s = op;

	(void)t;
	if (s->fd >= 0)
		close(s->fd);
	/* not published: the job failed or was cancelled; leave no partial
	 * file behind (the final name was never touched).  Pending parts
	 * stay: a restore commits or removes them. */
	if (!s->published)
		unlink(s->tmp);
	free(s->buf);
	free(s);
}

/* Create the output directory before anything starts. */
static int fsink_prepare(void *conf, uint32_t parallelism, char *err,
			 size_t errlen)
{
	const struct sl_file_sink_conf *c = conf;
	char dir[SL_PATH_MAX];
	int rc;

	(void)parallelism;
	sl_io_dirname(c->path, dir, sizeof(dir));
	rc = sl_io_mkdirs(dir);
	if (rc < 0)
		return fsink_err(err, errlen, rc, "cannot create directory %s: %s",
				 dir, strerror(-rc));
	return 0;
}

const struct sl_operator_ops sl_op_file_sink = {
	.prepare = fsink_prepare,
	.type = "file-sink",
	.conf_size = sizeof(struct sl_file_sink_conf),
	.min_inputs = 1,
	.max_inputs = 1,
	.sink = true,
	.plan = fsink_plan,
	.open = fsink_open,
	.process = fsink_process,
	.on_end = fsink_on_end,
	.snapshot = fsink_snapshot,
	.notify_complete = fsink_notify_complete,
	.restore = fsink_restore,
	.close = fsink_close,
};
