/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * YAML job files: build a job (graph, config, core/queue layout, EAL
 * arguments) from a file.  Every error names the file, line and key and
 * says what to do.  The format is specified in docs/job-file.md.
 */
#ifndef SLUICE_JOB_FILE_H
#define SLUICE_JOB_FILE_H

#include <stddef.h>

#include "sluice/job.h"

struct sl_job_file {
	struct sl_job *job;
	char *path;
	int eal_argc;	/**< arguments from the file's `eal:` list */
	char **eal_argv;
	void *pvt;	/**< loader's line bookkeeping */
};

/**
 * Parse a job file and build the job (planned, so schemas and field names
 * are checked).  Needs no EAL.
 * @param path    the YAML file
 * @param err     receives "PATH:LINE: key 'K': what is wrong; what to do"
 * @return the loaded job file, or NULL on error (err set)
 */
struct sl_job_file *sl_job_file_load(const char *path, char *err,
				     size_t errlen);

/**
 * After EAL init: check the layout against the EAL's lcores and run
 * sl_job_prepare(), reporting errors with the file and line of the
 * offending entry.
 * @return 0 or a negative errno (err set)
 */
int sl_job_file_prepare(struct sl_job_file *jf, char *err, size_t errlen);

/** "PATH:LINE" of a node's definition (for runtime errors), or the path. */
const char *sl_job_file_where(const struct sl_job_file *jf, int node);

/** Free the job file and its job. */
void sl_job_file_free(struct sl_job_file *jf);

#endif
