/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * EAL set-up for Criterion tests.  Criterion forks one process per test and
 * may run them in parallel, so every EAL instance gets its own file prefix
 * (--in-memory is refused together with --no-huge).
 */
#ifndef SLUICE_TEST_EAL_FIXTURE_H
#define SLUICE_TEST_EAL_FIXTURE_H

#include <stdio.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_eal.h>

#include "sluice/job.h"

/**
 * Initialise the EAL for this test process.
 * @param lcores  EAL --lcores value, e.g. "0-1" or "(0-3)@0,(4-5)@1"
 * @param extra   one extra EAL argument (e.g. a --vdev) or NULL
 */
static inline void sl_test_eal(const char *lcores, const char *extra)
{
	char prefix[64];
	char *argv[16];
	int argc = 0;

	snprintf(prefix, sizeof(prefix), "--file-prefix=sltest%d", getpid());
	argv[argc++] = "sluice-test";
	argv[argc++] = "--no-huge";
	argv[argc++] = "--no-pci";
	argv[argc++] = "--no-telemetry";
	argv[argc++] = "--log-level=lib.eal:error";
	argv[argc++] = "-m";
	argv[argc++] = "512";
	argv[argc++] = prefix;
	argv[argc++] = "--lcores";
	argv[argc++] = (char *)lcores;
	if (extra != NULL)
		argv[argc++] = (char *)extra;
	argv[argc] = NULL;
	cr_assert_eq(sl_eal_init(argc, argv, 0), 0, "EAL init failed");
}

static inline void sl_test_eal_fini(void)
{
	rte_eal_cleanup();
}

#endif
