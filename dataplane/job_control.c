/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The running job's side of its control socket: opened when the job
 * starts (before any worker runs, so a job that cannot own its socket
 * never starts), polled by the main lcore's control loop, closed when the
 * job ends.  Answers the requests listed in dataplane/control_socket.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "job_pvt.h"

static json_t *error_doc(const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static int handle(void *ctx, const char *request, char **response)
{
	const struct sl_job *job = ctx;
	json_t *doc;

	if (strcmp(request, "ping") == 0)
		doc = json_pack("{s:b, s:i, s:s, s:I}", "ok", 1, "protocol", 1,
				"job", job->name, "pid", (json_int_t)getpid());
	else if (strcmp(request, "checkpoints") == 0)
		doc = __sl_ckpt_stats_json(job, false);
	else if (strcmp(request, "checkpoints subtasks") == 0)
		doc = __sl_ckpt_stats_json(job, true);
	else
		doc = error_doc("unknown request '%.200s'; requests are: ping, checkpoints, checkpoints subtasks",
				request);
	*response = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return *response ? 0 : -ENOMEM;
}

int __sl_job_control_start(struct sl_job *job)
{
	char err[768];

	job->ctl = NULL;
	if (job->cfg.control_socket[0] == '\0')
		return 0;
	job->ctl = sl_ctl_server_open(job->cfg.control_socket, handle, job, err,
				      sizeof(err));
	if (job->ctl == NULL) {
		int rc = -errno;
		__sl_job_fail(job, rc, "control socket (sluice.control-socket, sluice run --control-socket): %s",
			      err);
		return rc;
	}
	return 0;
}

int __sl_job_control_poll(struct sl_job *job)
{
	return job->ctl ? sl_ctl_server_poll(job->ctl) : 0;
}

void __sl_job_control_stop(struct sl_job *job)
{
	sl_ctl_server_close(job->ctl);
	job->ctl = NULL;
}
