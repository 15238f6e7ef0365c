/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Crash points: named places where a test can make the process kill
 * itself with SIGKILL, to prove that recovery copes with a crash exactly
 * there (tests/test_crash_recovery.c).
 *
 * Armed only by the environment at start-up:
 *
 *     SLUICE_CRASH_AT=<name>[:<n>]     die at the n-th (default 1st) pass
 *
 * Unarmed, a crash point costs one predictable branch on a global.
 * Names in use:
 *   alignment        an aligned checkpoint blocked an input channel
 *   state-write      a keyed-state file is half written
 *   metadata-rename  `_metadata.tmp` is durable, the rename is not done
 *   sink-commit      a file sink committed one part of several
 */
#ifndef SLUICE_CRASH_POINT_H
#define SLUICE_CRASH_POINT_H

#include <stdbool.h>

#include <rte_branch_prediction.h>

extern bool __sl_crash_armed;

/** Runtime: the armed point `name` was reached. */
void __sl_crash_hit(const char *name);

/** Die here with SIGKILL if SLUICE_CRASH_AT names this point. */
static inline void sl_crash_point(const char *name)
{
	if (unlikely(__sl_crash_armed))
		__sl_crash_hit(name);
}

#endif
