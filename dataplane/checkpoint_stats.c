/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoint statistics of a running job as one JSON document: the answer
 * to the control socket's `checkpoints` request (dataplane/control_socket.c),
 * which `sluice checkpoints` prints as a table or as is.  It is built on
 * the main lcore from the coordinator's history, so it is consistent: the
 * coordinator only changes there, between requests.
 *
 * The document (protocol version 1).  *_ns are nanoseconds, *_bytes bytes,
 * both integers.
 *   ok                 true
 *   job, pid           the job's name and process id
 *   checkpointing      false when execution.checkpointing.interval is 0;
 *                      the counts are then 0 and "checkpoints" is empty
 *   config             {interval_ms, timeout_ms, mode (as configured:
 *                      "aligned", "unaligned", "aligned-with-timeout",
 *                      "at-least-once"), aligned_timeout_ms,
 *                      max_concurrent, dir}
 *   subtasks           number of subtasks in the job
 *   counts             {triggered, completed, failed, in_progress} since
 *                      the job started
 *   latest_completed   id of the newest completed checkpoint, or null
 *   last_failure       "checkpoint N: reason" of the newest failure, or null
 *   checkpoints        the newest SL_COORD_HISTORY (32), newest first, each:
 *     id
 *     status           "in_progress", "completed" or "failed"
 *     trigger_time     wall clock of the trigger, UTC, ISO 8601 with µs
 *     trigger_unix_ns  the same in ns since the epoch
 *     duration_ns      trigger to completion or failure (end to end); so
 *                      far, while in progress
 *     mode             mode actually used: "aligned", "unaligned",
 *                      "switched" (aligned with timeout, and at least one
 *                      subtask switched to unaligned), "at-least-once"
 *     failure_reason   why it failed, or null
 *     acknowledged     subtasks that acknowledged so far
 *     state_bytes      keyed and operator state written for it (an
 *                      incremental checkpoint writes only what changed)
 *     full_state_bytes size of the full state it stands for (what a
 *                      restore reads: an incremental one's whole chain)
 *     inflight_bytes   in-flight data persisted as channel state
 *     max_start_delay_ns, max_alignment_ns, max_sync_ns, max_async_ns
 *                      the largest of the subtasks' figures below
 *     subtasks         only for `checkpoints subtasks`: every subtask, in
 *                      the job's order:
 *       operator, index  the operator's uid and the subtask's index
 *       status         "acknowledged", "declined", "finished" (it had
 *                      ended; nothing to snapshot), "pending" (no answer
 *                      yet) or "missing" (the checkpoint ended without it)
 *       mode           as above, for this subtask; null without an answer
 *       start_delay_ns trigger to the first barrier here (sources: to
 *                      their snapshot)
 *       alignment_ns   first barrier to the snapshot
 *       sync_ns        synchronous part of the snapshot, on the lcore
 *       async_ns       snapshot to everything durable
 *       state_bytes, full_state_bytes, inflight_bytes   this subtask's
 *       state_memory_bytes keyed state in memory at its snapshot
 *       decline_reason why it declined, or null
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "job_pvt.h"
#include "mono_clock_pvt.h"

static const char *ack_mode(const struct sl_ckpt_task_ack *a)
{
	if (a->switched)
		return "switched";
	if (a->mode_used == SL_CKPT_UNALIGNED)
		return "unaligned";
	if (a->mode_used == SL_CKPT_AT_LEAST_ONCE)
		return "at-least-once";
	return "aligned";
}

/* Which mode name wins for the checkpoint as a whole. */
static int mode_rank(const char *m)
{
	return strcmp(m, "switched") == 0    ? 3
	       : strcmp(m, "unaligned") == 0 ? 2
	       : strcmp(m, "at-least-once") == 0 ? 1
						 : 0;
}

static const char *status_name(enum sl_ckpt_status s)
{
	return s == SL_CKPT_COMPLETED ? "completed"
	       : s == SL_CKPT_FAILED  ? "failed"
				      : "in_progress";
}

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

static json_t *iso_time(int64_t unix_ns)
{
	time_t sec = (time_t)(unix_ns / 1000000000);
	struct tm tm;
	char buf[64];
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%06dZ",
		 (int)(unix_ns % 1000000000 / 1000));
	return json_string(buf);
}

static json_t *subtask_json(const struct sl_job *job, const struct sl_coord_ckpt *ck,
			    uint32_t t)
{
	const struct sl_ckpt_task_ack *a = &ck->acks[t];
	const struct task *tk = &job->tasks[t];
	const char *status;
	bool answered = ck->have_ack[t] && !a->finished;

	if (!ck->have_ack[t])
		status = ck->status == SL_CKPT_PENDING ? "pending" : "missing";
	else if (a->finished)
		status = "finished";
	else
		status = a->status < 0 ? "declined" : "acknowledged";
	return json_pack("{s:s, s:I, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			 "operator", tk->node->uid,
			 "index", (json_int_t)tk->pub.info.index,
			 "status", status,
			 "mode", answered ? json_string(ack_mode(a)) : json_null(),
			 "start_delay_ns", (json_int_t)a->start_delay_ns,
			 "alignment_ns", (json_int_t)a->alignment_ns,
			 "sync_ns", (json_int_t)a->sync_ns,
			 "async_ns", (json_int_t)a->async_ns,
			 "state_bytes", (json_int_t)a->state_bytes,
			 "full_state_bytes", (json_int_t)a->full_state_bytes,
			 "state_memory_bytes", (json_int_t)a->state_memory_bytes,
			 "inflight_bytes", (json_int_t)a->inflight_bytes,
			 "decline_reason",
			 answered && a->status < 0 ? json_string(a->reason) : json_null());
}

static json_t *checkpoint_json(const struct sl_job *job, const struct sl_coord_ckpt *ck,
			       bool subtasks, uint64_t now)
{
	uint64_t state = 0, full = 0, inflight = 0;
	uint64_t delay = 0, align = 0, sync = 0, async = 0;
	const char *mode = NULL;
	json_t *o, *subs = subtasks ? json_array() : NULL;

	for (uint32_t t = 0; t < job->n_tasks; t++) {
		const struct sl_ckpt_task_ack *a = &ck->acks[t];

		if (subs != NULL)
			json_array_append_new(subs, subtask_json(job, ck, t));
		if (!ck->have_ack[t] || a->finished || a->status < 0)
			continue;
		if (mode == NULL || mode_rank(ack_mode(a)) > mode_rank(mode))
			mode = ack_mode(a);
		state += a->state_bytes;
		full += a->full_state_bytes;
		inflight += a->inflight_bytes;
		delay = RTE_MAX(delay, a->start_delay_ns);
		align = RTE_MAX(align, a->alignment_ns);
		sync = RTE_MAX(sync, a->sync_ns);
		async = RTE_MAX(async, a->async_ns);
	}
	if (mode == NULL) /* nobody answered yet: what it starts as */
		mode = job->cfg.checkpoint.mode == SL_CKPT_AT_LEAST_ONCE ? "at-least-once"
		       : job->cfg.checkpoint.mode == SL_CKPT_UNALIGNED	 ? "unaligned"
									 : "aligned";
	o = json_pack("{s:I, s:s, s:o, s:I, s:I, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		      "id", (json_int_t)ck->id,
		      "status", status_name(ck->status),
		      "trigger_time", iso_time(ck->trigger_ns),
		      "trigger_unix_ns", (json_int_t)ck->trigger_ns,
		      "duration_ns",
		      (json_int_t)((ck->status == SL_CKPT_PENDING ? now : ck->end_mono_ns) -
				   ck->trigger_mono_ns),
		      "mode", mode,
		      "failure_reason", str_or_null(ck->reason),
		      "acknowledged", (json_int_t)ck->acked,
		      "state_bytes", (json_int_t)state,
		      "full_state_bytes", (json_int_t)full,
		      "inflight_bytes", (json_int_t)inflight,
		      "max_start_delay_ns", (json_int_t)delay,
		      "max_alignment_ns", (json_int_t)align,
		      "max_sync_ns", (json_int_t)sync,
		      "max_async_ns", (json_int_t)async);
	if (o == NULL) {
		json_decref(subs);
		return NULL;
	}
	if (subs != NULL)
		json_object_set_new(o, "subtasks", subs);
	return o;
}

json_t *__sl_ckpt_stats_json(const struct sl_job *job, bool subtasks)
{
	const struct sl_checkpoint_config *c = &job->cfg.checkpoint;
	const struct sl_coord_ckpt *h[SL_COORD_HISTORY];
	struct sl_coord_counts k = { 0 };
	json_t *doc, *list = json_array();
	uint64_t latest = 0, now = mono_ns();
	const char *failure = "";
	unsigned n = 0;

	if (job->coord != NULL) {
		sl_coord_counts(job->coord, &k);
		latest = sl_coord_latest_completed(job->coord);
		failure = sl_coord_last_failure(job->coord);
		n = sl_coord_history(job->coord, h, SL_COORD_HISTORY);
	}
	for (unsigned i = 0; i < n; i++) {
		json_t *ck = checkpoint_json(job, h[i], subtasks, now);
		if (ck == NULL || json_array_append_new(list, ck) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	doc = json_pack("{s:b, s:s, s:I, s:b, s:{s:I, s:I, s:s, s:I, s:I, s:s}, s:I, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:o}",
			"ok", 1, "job", job->name, "pid", (json_int_t)getpid(),
			"checkpointing", job->coord != NULL,
			"config",
			"interval_ms", (json_int_t)c->interval_ms,
			"timeout_ms", (json_int_t)c->timeout_ms,
			"mode", sl_ckpt_mode_name(c->mode),
			"aligned_timeout_ms", (json_int_t)c->aligned_timeout_ms,
			"max_concurrent", (json_int_t)c->max_concurrent,
			"dir", c->dir,
			"subtasks", (json_int_t)job->n_tasks,
			"counts",
			"triggered", (json_int_t)k.triggered,
			"completed", (json_int_t)k.completed,
			"failed", (json_int_t)k.failed,
			"in_progress", (json_int_t)k.in_progress,
			"latest_completed",
			latest ? json_integer((json_int_t)latest) : json_null(),
			"last_failure", str_or_null(failure),
			"checkpoints", list);
	return doc;
}
