/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The operator loop of one worker lcore: poll every hosted subtask in
 * turn (and an io writer, when the layout has this lcore poll one
 * inline); when none had work, back off (rte_pause, then sleeps growing up to
 * idle_sleep_max_us) so that lcores sharing a core still progress.
 */
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_pause.h>

#include "job_pvt.h"

#define SPIN_ITERS 256

int __sl_lcore_loop(void *arg)
{
	struct lcore_ctx *lc = arg;
	struct sl_job *job = lc->job;
	unsigned idle = 0;
	unsigned sleep_us = 1;

	for (unsigned i = 0; i < lc->n_tasks; i++) {
		struct task *t = lc->tasks[i];
		const char *what = "open";
		int rc = 0;

		/* a subtask restored as finished has ended already */
		if (t->phase != TASK_DONE && t->ops->open != NULL)
			rc = t->ops->open(&t->pub, &t->op);
		if (rc == 0 && t->phase != TASK_DONE && job->restore != NULL) {
			what = "restore";
			rc = __sl_task_restore(t);
		}
		if (rc < 0) {
			/* a restore fails the same way every time */
			if (what[0] == 'r')
				atomic_store(&job->fail_final, true);
			if (t->err[0] == '\0')
				snprintf(t->err, sizeof(t->err), "%s failed: %s",
					 what, strerror(-rc));
			__sl_job_fail(job, rc, "operator '%s' (%s) subtask %u: %s",
				      t->node->uid, t->ops->type,
				      t->pub.info.index, t->err);
			t->phase = TASK_DONE;
		}
		/* release: the main lcore starts checkpoints after this */
		atomic_fetch_add(&job->tasks_restored, 1);
	}

	for (;;) {
		unsigned live = 0;
		int work = 0;

		if (atomic_load_explicit(&job->failed, memory_order_relaxed) ||
		    atomic_load_explicit(&job->force, memory_order_relaxed))
			break;
		for (unsigned i = 0; i < lc->n_tasks; i++) {
			struct task *t = lc->tasks[i];
			/* a finished subtask may still hold staged output
			 * (its END included) that a full ring refused, or a
			 * checkpoint it is writing out, declining or
			 * committing */
			if (t->phase == TASK_DONE && !t->blocked &&
			    __sl_ckpt_task_quiet(t))
				continue;
			live++;
			work += __sl_task_poll(t);
		}
		/* an io writer polled inline: between the subtasks' turns,
		 * and until what it serves (on any lcore) is written */
		if (lc->io != NULL) {
			work += __sl_ckpt_io_poll_inline(lc);
			if (live == 0 && work == 0 && __sl_ckpt_io_idle(lc))
				break;
		} else if (live == 0) {
			break;
		}
		if (work > 0) {
			lc->busy_iters++;
			idle = 0;
			sleep_us = 1;
			continue;
		}
		lc->idle_iters++;
		if (++idle < SPIN_ITERS) {
			rte_pause();
		} else {
			rte_delay_us_sleep(sleep_us);
			if (sleep_us < job->cfg.idle_sleep_max_us)
				sleep_us *= 2;
		}
	}

	for (unsigned i = 0; i < lc->n_tasks; i++) {
		struct task *t = lc->tasks[i];
		if (t->op != NULL && t->ops->close != NULL)
			t->ops->close(t->op, &t->pub);
		t->op = NULL;
	}
	return 0;
}
