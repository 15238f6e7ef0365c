/* SPDX-License-Identifier: BSD-3-Clause */
/* The control plane's clock: CLOCK_MONOTONIC in ns (statistics, deadlines,
 * restart delays; the lcores use the TSC). */
#ifndef SLUICE_MONO_CLOCK_PVT_H
#define SLUICE_MONO_CLOCK_PVT_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif
