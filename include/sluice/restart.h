/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Restart strategies: what a job does when it fails while running (an
 * operator callback returned an error, a sink hit an I/O error, checkpoint
 * failures exceeded the tolerable number): give up, or restart in the same
 * process from its newest complete checkpoint after a delay.  Names and
 * semantics follow Flink's `restart-strategy.*` keys (docs/restore.md).
 *
 * The policy (sl_restart_next()) is a pure function of the configuration,
 * its state and the failed run's duration, so it is testable on its own;
 * sl_job_run() applies it.
 */
#ifndef SLUICE_RESTART_H
#define SLUICE_RESTART_H

#include <stddef.h>
#include <stdint.h>

/** restart-strategy.type */
enum sl_restart_type {
	SL_RESTART_NONE,	      /**< "none": a failure fails the job */
	SL_RESTART_FIXED_DELAY,	      /**< "fixed-delay" */
	SL_RESTART_EXPONENTIAL_DELAY, /**< "exponential-delay" */
};

struct sl_restart_config {
	enum sl_restart_type type;	      /**< default none */
	/* fixed-delay */
	uint32_t attempts;		      /**< restart-strategy.fixed-delay.attempts (1) */
	uint64_t delay_ms;		      /**< restart-strategy.fixed-delay.delay (1 s) */
	/* exponential-delay */
	uint64_t initial_backoff_ms;	      /**< .exponential-delay.initial-backoff (1 s) */
	uint64_t max_backoff_ms;	      /**< .exponential-delay.max-backoff (5 min) */
	double backoff_multiplier;	      /**< .exponential-delay.backoff-multiplier (2.0) */
	uint64_t reset_backoff_threshold_ms;  /**< .exponential-delay.reset-backoff-threshold (1 h) */
	double jitter_factor;		      /**< .exponential-delay.jitter-factor (0.1) */
};

/** Fill with the defaults noted above (type none). */
void sl_restart_config_defaults(struct sl_restart_config *c);

/**
 * Check a configuration.
 * @param err  receives "key: what is wrong; what to do"
 * @return 0 or -EINVAL
 */
int sl_restart_config_check(const struct sl_restart_config *c, char *err,
			    size_t errlen);

/** Strategy name as in job files ("none", "fixed-delay", ...). */
const char *sl_restart_type_name(enum sl_restart_type t);

/** What a strategy remembers between failures of one job. */
struct sl_restart_state {
	uint32_t restarts;   /**< restarts granted so far */
	uint64_t backoff_ms; /**< exponential: next backoff before jitter */
	uint64_t rng;	     /**< jitter's random state */
};

/** Start a job's strategy state; `seed` drives the jitter. */
void sl_restart_state_init(struct sl_restart_state *s,
			   const struct sl_restart_config *c, uint64_t seed);

/**
 * A run failed after running `run_ms`: restart, and after how long?
 * fixed-delay: `attempts` restarts, each after `delay_ms`.
 * exponential-delay: no limit; the first delay is `initial_backoff_ms`,
 * each next one `backoff_multiplier` times longer, at most
 * `max_backoff_ms`, each varied by up to +-`jitter_factor` of itself; a run
 * that lasted at least `reset_backoff_threshold_ms` resets the delay to
 * the initial one.
 * @param delay_ms  receives the delay when restarting
 * @return 1 restart, 0 give up (type none, or attempts used up)
 */
int sl_restart_next(const struct sl_restart_config *c, struct sl_restart_state *s,
		    uint64_t run_ms, uint64_t *delay_ms);

#endif
