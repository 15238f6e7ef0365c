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
 * @param err     receives "PATH:LINE: KEY.PATH: what is wrong; what to do",
 *                e.g. "jobs/x.yaml:14: operators[2].window.size: '10q' is
 *                not a duration; use e.g. 500ms, 1s, 2m"
 * @return the loaded job file, or NULL on error (err set)
 */
struct sl_job_file *sl_job_file_load(const char *path, char *err,
				     size_t errlen);

/**
 * Like sl_job_file_load(), from text in memory (tests, fuzzing, job files
 * embedded in programs).
 * @param name  what errors call the file (e.g. "<inline>")
 * @param text  YAML text, `len` bytes (need not be NUL-terminated)
 * @return the loaded job file, or NULL on error (err set, errno EINVAL or
 *         ENOMEM)
 */
struct sl_job_file *sl_job_file_parse(const char *name, const char *text,
				      size_t len, char *err, size_t errlen);

/**
 * After EAL init: check the layout against the EAL's lcores and run
 * sl_job_prepare(), reporting errors with the file and line of the
 * offending entry.
 * @return 0 or a negative errno (err set)
 */
int sl_job_file_prepare(struct sl_job_file *jf, char *err, size_t errlen);

/** "PATH:LINE" of a node's definition (for runtime errors), or the path. */
const char *sl_job_file_where(const struct sl_job_file *jf, int node);

/**
 * The EAL arguments to run the job with: `argv0`, the file's `eal:` list,
 * then `extra` (e.g. the command line after "--").  An option in `extra`
 * replaces the file's option of the same kind (-l/-c/--lcores are one
 * kind, -m/--socket-mem another; --file-prefix, --main-lcore, --proc-type,
 * --iova-mode, --huge-dir, -n each their own), since the EAL refuses a
 * second lcore list; every other option is appended (e.g. more --vdev).
 * Strings are not copied: the array is valid while jf and extra_argv are.
 * @param argc  receives the number of arguments
 * @return a NULL-terminated array to free() (not its strings), or NULL
 *         with errno ENOMEM
 */
char **sl_job_file_eal_args(const struct sl_job_file *jf, const char *argv0,
			    int extra_argc, char **extra_argv, int *argc);

/** Free the job file and its job. */
void sl_job_file_free(struct sl_job_file *jf);

#endif
