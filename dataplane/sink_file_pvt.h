/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * File sink internals: the part files of the transactional (two-phase
 * commit) mode, used when the job takes checkpoints.  See the format and
 * protocol at the top of sink_file_parts.c.
 */
#ifndef SLUICE_SINK_FILE_PVT_H
#define SLUICE_SINK_FILE_PVT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/operators.h"

/** Most parts waiting for their checkpoint to complete; beyond that the
 *  sink declines checkpoints until one completes. */
#define FSINK_MAX_PENDING 1024

/** One subtask's part files. */
struct fsink_parts {
	char dir[SL_PATH_MAX];	/* directory holding every file */
	char stem[256];		/* "counts" of "out/counts.csv" */
	char ext[64];		/* ".csv", or "" */
	uint32_t subtask;
	unsigned n_pending;	/* sealed, not yet committed, ascending */
	uint64_t pending[FSINK_MAX_PENDING];
};

enum fsink_part_kind {
	FSINK_IN_PROGRESS, /* being written: ".counts.part-0.csv.inprogress" */
	FSINK_PENDING,	   /* sealed at checkpoint n: ".counts.part-0-n.csv.pending" */
	FSINK_FINAL,	   /* committed: "counts.part-0-n.csv" */
};

/** Split the sink's path into directory, stem and extension. */
int fsink_parts_init(struct fsink_parts *p, const char *path,
		     uint32_t subtask);

/** Path of a part file (`id` unused for FSINK_IN_PROGRESS). */
int fsink_part_path(const struct fsink_parts *p, enum fsink_part_kind kind,
		    uint64_t id, char *buf, size_t len);

/** The in-progress part (fsync'ed and closed by the caller) becomes the
 *  pending part of checkpoint `id`. */
int fsink_parts_seal(struct fsink_parts *p, uint64_t id, char *err,
		     size_t errlen);

/** Commit every pending part with id <= `upto`: rename to the final name,
 *  then fsync the directory once. */
int fsink_parts_commit(struct fsink_parts *p, uint64_t upto, char *err,
		       size_t errlen);

/** The same through the subtask's io writer (sl_task_rename(): in order,
 *  each rename followed by a directory fsync), off the lcore; the parts
 *  leave the pending list now.  A rename that fails fails the job. */
int fsink_parts_commit_async(struct fsink_parts *p, struct sl_task *t,
			     uint64_t upto, char *err, size_t errlen);

/**
 * Restore after a restart from checkpoint `restored`, whose snapshot of
 * this subtask listed `ids` as pending: commit them (a part already
 * committed is fine; a missing one is an error: its output is lost) and
 * every other pending part with id <= restored (one whose commit was
 * queued to the io writer after an earlier checkpoint completed, but not
 * done before the crash), then remove this subtask's files that belong
 * after the checkpoint
 * (the in-progress part, pending and committed parts with id > restored):
 * that output is produced again.
 * @param removed  receives the number of committed parts removed
 */
int fsink_parts_recover(struct fsink_parts *p, uint64_t restored,
			const uint64_t *ids, unsigned n, unsigned *removed,
			char *err, size_t errlen);

/**
 * A fresh start (no restore): remove this subtask's in-progress and pending
 * parts, left by an earlier run that crashed (never committed, nothing
 * refers to them); refuse (-EEXIST, naming one) if committed parts of it
 * are there: the new output would mix with them.
 * @param removed  receives the number of files removed
 */
int fsink_parts_fresh(struct fsink_parts *p, unsigned *removed, char *err,
		      size_t errlen);

/** Operator-state blob of a snapshot; see sink_file_parts.c. */
size_t fsink_parts_blob_size(const struct fsink_parts *p);
void fsink_parts_blob_write(const struct fsink_parts *p, void *buf);
/** Parse a blob into `ids` (room for FSINK_MAX_PENDING).  -EBADMSG if
 *  malformed. */
int fsink_parts_blob_read(const void *blob, size_t len, uint32_t *subtask,
			  uint64_t *ids, unsigned *n);

#endif
