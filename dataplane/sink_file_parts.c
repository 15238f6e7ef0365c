/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Part files of the file sink's transactional mode: output becomes visible
 * exactly once, when the checkpoint that covers it completes (two-phase
 * commit, as Flink's FileSink does it).
 *
 * Files of subtask S of a sink with path "dir/counts.csv" (all in dir/):
 *
 *   .counts.part-S.csv.inprogress      records since the last barrier
 *   .counts.part-S-NNNNNNNNNN.csv.pending
 *                                      sealed at checkpoint N's barrier:
 *                                      written, fdatasync'ed, not visible
 *   counts.part-S-NNNNNNNNNN.csv       committed: visible, durable
 *
 * N is the checkpoint id, zero-padded to 10 digits so that a glob lists the
 * parts of a subtask in output order.  Part N holds the records between
 * the barrier before N and barrier N.  The part written after the last
 * barrier, at the end of the stream, takes the next id.
 *
 * Protocol:
 *   snapshot(N)          flush, rename in-progress -> pending N; the io
 *                        writer fdatasyncs and closes it and fsyncs the
 *                        directory, and the subtask acknowledges N only
 *                        then; the operator-state blob lists every
 *                        pending id
 *   notify_complete(N)   rename pending ids <= N -> committed, each
 *                        followed by a directory fsync, in order, by the
 *                        io writer
 *   notify_aborted(N)    nothing: part N is committed with the next
 *                        checkpoint that completes
 *   end of stream        seal and commit everything (the job finished)
 *   restore(N, blob)     commit the blob's pending ids (idempotent: a part
 *                        already committed is skipped), then remove the
 *                        subtask's in-progress part and every pending or
 *                        committed part with id > N: the records after
 *                        barrier N are replayed and written again
 *   fresh start          remove the subtask's in-progress and pending
 *                        parts (a crashed run's, never committed); refuse
 *                        to start over committed parts of an earlier run
 *
 * Blob (little-endian): u32 magic "SLFS", u32 version 1, u32 subtask,
 * u32 count, then count u64 pending ids in ascending order.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/crash_point.h"
#include "sluice/io_file.h"
#include "sink_file_pvt.h"

#define FSINK_BLOB_MAGIC 0x53464c53u /* "SLFS" little-endian */
#define FSINK_BLOB_VERSION 1u
#define FSINK_BLOB_HEADER 16u

int fsink_parts_init(struct fsink_parts *p, const char *path,
		     uint32_t subtask)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t stem_len;

	memset(p, 0, sizeof(*p));
	p->subtask = subtask;
	if (sl_io_dirname(path, p->dir, sizeof(p->dir)) < 0)
		return -ENAMETOOLONG;
	if (dot == NULL || dot == base) /* no extension, or ".hidden" */
		dot = base + strlen(base);
	stem_len = (size_t)(dot - base);
	if (stem_len == 0 || stem_len >= sizeof(p->stem) ||
	    strlen(dot) >= sizeof(p->ext))
		return -ENAMETOOLONG;
	memcpy(p->stem, base, stem_len);
	strcpy(p->ext, dot);
	return 0;
}

int fsink_part_path(const struct fsink_parts *p, enum fsink_part_kind kind,
		    uint64_t id, char *buf, size_t len)
{
	int n;

	switch (kind) {
	case FSINK_IN_PROGRESS:
		n = snprintf(buf, len, "%s/.%s.part-%" PRIu32 "%s.inprogress",
			     p->dir, p->stem, p->subtask, p->ext);
		break;
	case FSINK_PENDING:
		n = snprintf(buf, len, "%s/.%s.part-%" PRIu32 "-%010" PRIu64 "%s.pending",
			     p->dir, p->stem, p->subtask, id, p->ext);
		break;
	default:
		n = snprintf(buf, len, "%s/%s.part-%" PRIu32 "-%010" PRIu64 "%s",
			     p->dir, p->stem, p->subtask, id, p->ext);
		break;
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int fsink_parts_seal(struct fsink_parts *p, uint64_t id, char *err,
		     size_t errlen)
{
	char from[SL_PATH_MAX], to[SL_PATH_MAX];

	if (p->n_pending == FSINK_MAX_PENDING) {
		snprintf(err, errlen,
			 "%u output parts wait for a checkpoint to complete; declining checkpoint %" PRIu64 " until one does",
			 p->n_pending, id);
		return -ENOSPC;
	}
	if (p->n_pending > 0 && p->pending[p->n_pending - 1] >= id) {
		snprintf(err, errlen, "checkpoint %" PRIu64 " is not newer than pending part %" PRIu64,
			 id, p->pending[p->n_pending - 1]);
		return -EINVAL;
	}
	if (fsink_part_path(p, FSINK_IN_PROGRESS, 0, from, sizeof(from)) < 0 ||
	    fsink_part_path(p, FSINK_PENDING, id, to, sizeof(to)) < 0)
		return -ENAMETOOLONG;
	if (rename(from, to) < 0) {
		int rc = -errno;
		snprintf(err, errlen, "cannot rename %s to %s: %s", from, to,
			 strerror(errno));
		return rc;
	}
	p->pending[p->n_pending++] = id;
	return 0;
}

/* Pending part `id` -> committed; a part committed before is fine. */
static int commit_one(const struct fsink_parts *p, uint64_t id, char *err,
		      size_t errlen)
{
	char from[SL_PATH_MAX], to[SL_PATH_MAX];

	if (fsink_part_path(p, FSINK_PENDING, id, from, sizeof(from)) < 0 ||
	    fsink_part_path(p, FSINK_FINAL, id, to, sizeof(to)) < 0)
		return -ENAMETOOLONG;
	if (rename(from, to) == 0)
		return 0;
	if (errno == ENOENT && access(to, F_OK) == 0)
		return 0; /* committed before a crash */
	{
		int rc = -errno;
		snprintf(err, errlen,
			 errno == ENOENT
				 ? "output part %s is missing (neither pending nor committed as %s): its records are lost; restore an older checkpoint"
				 : "cannot commit %s as %s: %s",
			 from, to, strerror(errno));
		return rc;
	}
}

int fsink_parts_commit(struct fsink_parts *p, uint64_t upto, char *err,
		       size_t errlen)
{
	unsigned done = 0;
	int rc = 0;

	while (done < p->n_pending && p->pending[done] <= upto) {
		rc = commit_one(p, p->pending[done], err, errlen);
		if (rc < 0)
			break;
		done++;
		sl_crash_point("sink-commit");
	}
	if (done > 0) {
		memmove(p->pending, p->pending + done,
			(p->n_pending - done) * sizeof(p->pending[0]));
		p->n_pending -= done;
		int frc = sl_io_fsync_dir(p->dir);
		if (frc < 0 && rc == 0) {
			snprintf(err, errlen, "cannot fsync directory %s: %s",
				 p->dir, strerror(-frc));
			rc = frc;
		}
	}
	return rc;
}

int fsink_parts_commit_async(struct fsink_parts *p, struct sl_task *t,
			     uint64_t upto, char *err, size_t errlen)
{
	char from[SL_PATH_MAX], to[SL_PATH_MAX];
	unsigned done = 0;
	int rc = 0;

	while (done < p->n_pending && p->pending[done] <= upto) {
		uint64_t id = p->pending[done];
		if (fsink_part_path(p, FSINK_PENDING, id, from, sizeof(from)) < 0 ||
		    fsink_part_path(p, FSINK_FINAL, id, to, sizeof(to)) < 0) {
			rc = -ENAMETOOLONG;
			snprintf(err, errlen, "path of output part %" PRIu64 " too long", id);
			break;
		}
		if ((rc = sl_task_rename(t, from, to)) < 0) {
			snprintf(err, errlen, "cannot commit %s as %s: %s", from, to,
				 strerror(-rc));
			break;
		}
		done++;
	}
	memmove(p->pending, p->pending + done,
		(p->n_pending - done) * sizeof(p->pending[0]));
	p->n_pending -= done;
	return rc;
}

/*
 * Parse "<prefix>NNNN<suffix>" (prefix/suffix built from this subtask's
 * names) into NNNN; false if `name` is not of that shape.
 */
static bool match_id(const char *name, const char *prefix,
		     const char *suffix, uint64_t *id)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), nl = strlen(name);
	uint64_t v = 0;

	if (nl <= pl + sl || strncmp(name, prefix, pl) != 0 ||
	    strcmp(name + nl - sl, suffix) != 0)
		return false;
	for (size_t i = pl; i < nl - sl; i++) {
		if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*id = v;
	return true;
}

/*
 * Walk this subtask's parts: commit the pending ones with id <= `after`
 * (counted in *committed), remove pending and committed ones with id >
 * `after`, or with `refuse_final` stop at the first committed one
 * (-EEXIST, named in err).
 */
static int sweep(struct fsink_parts *p, uint64_t after, bool refuse_final,
		 unsigned *removed_final, unsigned *removed,
		 unsigned *committed, char *err, size_t errlen)
{
	char pend_pre[320], pend_suf[80], fin_pre[320], path[SL_PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(pend_pre, sizeof(pend_pre), ".%s.part-%" PRIu32 "-", p->stem,
		 p->subtask);
	snprintf(pend_suf, sizeof(pend_suf), "%s.pending", p->ext);
	snprintf(fin_pre, sizeof(fin_pre), "%s.part-%" PRIu32 "-", p->stem,
		 p->subtask);
	if (fsink_part_path(p, FSINK_IN_PROGRESS, 0, path, sizeof(path)) == 0) {
		if (unlink(path) == 0)
			(*removed)++;
		else if (errno != ENOENT) {
			rc = -errno;
			snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
			return rc;
		}
	}
	d = opendir(p->dir);
	if (d == NULL) {
		rc = -errno;
		snprintf(err, errlen, "cannot list %s: %s", p->dir, strerror(errno));
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t id;
		bool final;

		if (match_id(de->d_name, pend_pre, pend_suf, &id))
			final = false;
		else if (match_id(de->d_name, fin_pre, p->ext, &id))
			final = true;
		else
			continue;
		if (id <= after) {
			/* A pending part sealed at a checkpoint up to the
			 * restored one holds records before its barrier: it is
			 * output of the restored run, committed even if the
			 * snapshot no longer listed it (its commit was queued
			 * to the io writer when the crash came). */
			if (!final) {
				rc = commit_one(p, id, err, errlen);
				if (rc < 0)
					break;
				(*committed)++;
			}
			continue;
		}
		if (fsink_part_path(p, final ? FSINK_FINAL : FSINK_PENDING, id,
				    path, sizeof(path)) < 0)
			continue;
		if (final && refuse_final) {
			snprintf(err, errlen,
				 "%s holds committed output of an earlier run (%s); restore that run with --restore latest, or move its files away to start afresh",
				 p->dir, path);
			rc = -EEXIST;
			break;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			rc = -errno;
			snprintf(err, errlen, "cannot remove %s: %s", path,
				 strerror(errno));
			break;
		}
		(*removed)++;
		if (final)
			(*removed_final)++;
	}
	closedir(d);
	if (rc == 0 && *removed + *committed > 0 &&
	    (rc = sl_io_fsync_dir(p->dir)) < 0)
		snprintf(err, errlen, "cannot fsync directory %s: %s", p->dir,
			 strerror(-rc));
	return rc;
}

int fsink_parts_recover(struct fsink_parts *p, uint64_t restored,
			const uint64_t *ids, unsigned n, unsigned *removed,
			char *err, size_t errlen)
{
	unsigned any = 0, committed = 0;
	int rc;

	*removed = 0;
	p->n_pending = 0;
	for (unsigned i = 0; i < n; i++) {
		if (ids[i] > restored || (i > 0 && ids[i] <= ids[i - 1])) {
			snprintf(err, errlen, "pending part %" PRIu64 " does not belong to checkpoint %" PRIu64,
				 ids[i], restored);
			return -EBADMSG;
		}
		rc = commit_one(p, ids[i], err, errlen);
		if (rc < 0)
			return rc;
	}
	if (n > 0 && (rc = sl_io_fsync_dir(p->dir)) < 0) {
		snprintf(err, errlen, "cannot fsync directory %s: %s", p->dir,
			 strerror(-rc));
		return rc;
	}
	return sweep(p, restored, false, removed, &any, &committed, err, errlen);
}

int fsink_parts_fresh(struct fsink_parts *p, unsigned *removed, char *err,
		      size_t errlen)
{
	unsigned finals = 0, committed = 0;

	*removed = 0;
	p->n_pending = 0;
	return sweep(p, 0, true, &finals, removed, &committed, err, errlen);
}

size_t fsink_parts_blob_size(const struct fsink_parts *p)
{
	return FSINK_BLOB_HEADER + (size_t)p->n_pending * 8;
}

void fsink_parts_blob_write(const struct fsink_parts *p, void *buf)
{
	uint32_t h[4] = { htole32(FSINK_BLOB_MAGIC), htole32(FSINK_BLOB_VERSION),
			  htole32(p->subtask), htole32(p->n_pending) };
	uint8_t *out = buf;

	memcpy(out, h, sizeof(h));
	for (unsigned i = 0; i < p->n_pending; i++) {
		uint64_t v = htole64(p->pending[i]);
		memcpy(out + FSINK_BLOB_HEADER + 8 * (size_t)i, &v, 8);
	}
}

int fsink_parts_blob_read(const void *blob, size_t len, uint32_t *subtask,
			  uint64_t *ids, unsigned *n)
{
	const uint8_t *in = blob;
	uint32_t h[4];

	if (len < FSINK_BLOB_HEADER)
		return -EBADMSG;
	memcpy(h, in, sizeof(h));
	if (le32toh(h[0]) != FSINK_BLOB_MAGIC ||
	    le32toh(h[1]) != FSINK_BLOB_VERSION ||
	    le32toh(h[3]) > FSINK_MAX_PENDING ||
	    len != FSINK_BLOB_HEADER + (size_t)le32toh(h[3]) * 8)
		return -EBADMSG;
	*subtask = le32toh(h[2]);
	*n = le32toh(h[3]);
	for (unsigned i = 0; i < *n; i++) {
		uint64_t v;
		memcpy(&v, in + FSINK_BLOB_HEADER + 8 * (size_t)i, 8);
		ids[i] = le64toh(v);
	}
	return 0;
}
