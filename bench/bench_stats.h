/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every benchmark program needs: a monotonic clock and the median of
 * its rounds (the machines are noisy; medians of alternating rounds are
 * what the programs report).
 */
#ifndef SLUICE_BENCH_STATS_H
#define SLUICE_BENCH_STATS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t bench_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline double bench_now_s(void)
{
	return (double)bench_mono_ns() / 1e9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/** Median of v[0..n), v left as it is; NAN when n is 0 (or out of memory). */
static inline double bench_median(const double *v, unsigned n)
{
	double *s, m;

	if (n == 0 || (s = malloc(n * sizeof(*s))) == NULL)
		return NAN;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), bench_cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

#endif
