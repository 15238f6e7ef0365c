/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Restart strategies (include/sluice/restart.h, docs/restore.md) and the
 * run loop that applies them: sl_job_run() runs the job; when a run fails
 * while running (not while setting up or restoring, which a restart would
 * only repeat) and the strategy grants a restart, it waits the delay, picks
 * the newest complete checkpoint (or the one the job was first restored
 * from, if nothing newer completed since) and runs again from it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>

#include "job_pvt.h"
#include "mono_clock_pvt.h"

static const char *const type_names[] = {
	[SL_RESTART_NONE] = "none",
	[SL_RESTART_FIXED_DELAY] = "fixed-delay",
	[SL_RESTART_EXPONENTIAL_DELAY] = "exponential-delay",
};

const char *sl_restart_type_name(enum sl_restart_type t)
{
	return (unsigned)t < RTE_DIM(type_names) ? type_names[t] : "?";
}

void sl_restart_config_defaults(struct sl_restart_config *c)
{
	/* Flink's defaults for each strategy */
	*c = (struct sl_restart_config){
		.type = SL_RESTART_NONE,
		.attempts = 1,
		.delay_ms = 1000,
		.initial_backoff_ms = 1000,
		.max_backoff_ms = 5 * 60 * 1000,
		.backoff_multiplier = 2.0,
		.reset_backoff_threshold_ms = 60 * 60 * 1000,
		.jitter_factor = 0.1,
	};
}

int sl_restart_config_check(const struct sl_restart_config *c, char *err,
			    size_t errlen)
{
#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)
	if ((unsigned)c->type >= RTE_DIM(type_names))
		return BAD("restart-strategy.type: unknown strategy %d; use none, fixed-delay or exponential-delay",
			   (int)c->type);
	if (c->type == SL_RESTART_FIXED_DELAY && c->attempts == 0)
		return BAD("restart-strategy.fixed-delay.attempts: must be at least 1 (or use restart-strategy.type: none)");
	if (c->type != SL_RESTART_EXPONENTIAL_DELAY)
		return 0;
	if (c->initial_backoff_ms == 0)
		return BAD("restart-strategy.exponential-delay.initial-backoff: must be at least 1 ms");
	if (c->max_backoff_ms < c->initial_backoff_ms)
		return BAD("restart-strategy.exponential-delay.max-backoff: %" PRIu64 " ms is below initial-backoff (%" PRIu64 " ms); raise it",
			   c->max_backoff_ms, c->initial_backoff_ms);
	if (!(c->backoff_multiplier >= 1.0) || c->backoff_multiplier > 1000)
		return BAD("restart-strategy.exponential-delay.backoff-multiplier: %g; give a number in 1..1000",
			   c->backoff_multiplier);
	if (!(c->jitter_factor >= 0.0 && c->jitter_factor <= 1.0))
		return BAD("restart-strategy.exponential-delay.jitter-factor: %g; give a number in 0..1",
			   c->jitter_factor);
	return 0;
#undef BAD
}

void sl_restart_state_init(struct sl_restart_state *s,
			   const struct sl_restart_config *c, uint64_t seed)
{
	s->restarts = 0;
	s->backoff_ms = c->initial_backoff_ms;
	s->rng = seed | 1;
}

/* xorshift64*: uniform in [0, 1) */
static double next_unit(struct sl_restart_state *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (double)((s->rng * 0x2545F4914F6CDD1DULL) >> 11) * 0x1p-53;
}

int sl_restart_next(const struct sl_restart_config *c, struct sl_restart_state *s,
		    uint64_t run_ms, uint64_t *delay_ms)
{
	double d;

	switch (c->type) {
	case SL_RESTART_FIXED_DELAY:
		if (s->restarts >= c->attempts)
			return 0;
		*delay_ms = c->delay_ms;
		break;
	case SL_RESTART_EXPONENTIAL_DELAY:
		if (run_ms >= c->reset_backoff_threshold_ms)
			s->backoff_ms = c->initial_backoff_ms;
		d = (double)s->backoff_ms *
		    (1.0 + c->jitter_factor * (2.0 * next_unit(s) - 1.0));
		*delay_ms = d < 0 ? 0 : (uint64_t)d;
		d = (double)s->backoff_ms * c->backoff_multiplier;
		s->backoff_ms = d > (double)c->max_backoff_ms ? c->max_backoff_ms
							      : (uint64_t)d;
		break;
	default:
		return 0;
	}
	s->restarts++;
	return 1;
}

/* ------------------------------------------------------------ running */

static bool stop_requested(struct sl_job *job)
{
	return atomic_load(&job->stop) || atomic_load(&job->force);
}

/*
 * Where the next run starts: the newest complete checkpoint in
 * state.checkpoints.dir if it is newer than the one the job was first
 * restored from (`first`, id `first_id`, "" if none); else that one; else
 * empty state.  Returns 0 or a negative errno (job->err set).
 */
static int restart_point(struct sl_job *job, const char *first, uint64_t first_id)
{
	int rc = -ENOENT;

	if (job->cfg.checkpoint.dir[0] != '\0') {
		rc = sl_job_restore_from(job, "latest");
		if (rc == 0 && sl_job_restore_id(job) > first_id)
			return 0;
		if (rc < 0 && rc != -ENOENT)
			return rc; /* e.g. another job's or version's checkpoint */
	}
	if (first[0] != '\0')
		return sl_job_restore_from(job, first);
	sl_job_restore_from(job, NULL);
	return 0;
}

int sl_job_run(struct sl_job *job)
{
	const struct sl_restart_config *c = &job->cfg.restart;
	struct sl_restart_state st;
	char first[sizeof(job->restore->dir)] = "", failure[sizeof(job->err)];
	uint64_t first_id = 0;

	job->restarts = 0;
	atomic_store(&job->stop, 0);
	atomic_store(&job->force, 0);
	if (job->restore != NULL) {
		snprintf(first, sizeof(first), "%s", job->restore->dir);
		first_id = job->restore->id;
	}
	sl_restart_state_init(&st, c, rte_get_tsc_cycles());
	for (;;) {
		uint64_t start = (mono_ns() / 1000000), delay = 0;
		int rc = __sl_job_run_once(job);

		if (rc >= 0 || atomic_load(&job->fail_final) || stop_requested(job))
			return rc;
		if (!sl_restart_next(c, &st, (mono_ns() / 1000000) - start, &delay)) {
			if (c->type != SL_RESTART_NONE) {
				size_t n = strlen(job->err);
				snprintf(job->err + n, sizeof(job->err) - n,
					 " (restart strategy %s gave up after %u restart%s)",
					 sl_restart_type_name(c->type), job->restarts,
					 job->restarts == 1 ? "" : "s");
			}
			return rc;
		}
		memcpy(failure, job->err, sizeof(failure));
		fprintf(stderr, "[%s] failed: %s\n", job->name, failure);
		if (restart_point(job, first, first_id) < 0) {
			char why[sizeof(job->err)];

			memcpy(why, job->err, sizeof(why));
			/* a cut message is still the message */
			if (snprintf(job->err, sizeof(job->err), "%s (not restarted: %s)",
				     failure, why) >= (int)sizeof(job->err))
				job->err[sizeof(job->err) - 1] = '\0';
			return rc;
		}
		job->restarts++;
		fprintf(stderr, "[%s] restart %u (%s) in %.3f s, from %s\n", job->name,
			job->restarts, sl_restart_type_name(c->type), delay / 1e3,
			job->restore ? job->restore->dir : "empty state (no checkpoint)");
		for (uint64_t until = (mono_ns() / 1000000) + delay; (mono_ns() / 1000000) < until;) {
			if (stop_requested(job)) {
				memcpy(job->err, failure, sizeof(job->err));
				__sl_restore_free(job);
				return rc;
			}
			rte_delay_us_sleep(5000);
		}
	}
}

unsigned sl_job_restarts(const struct sl_job *job)
{
	return job->restarts;
}
