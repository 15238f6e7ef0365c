/* SPDX-License-Identifier: BSD-3-Clause */
/* DPDK EAL bootstrap: hugepages on bare metal, --no-huge on dev machines. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "sluice/job.h"

#define MIN_NOHUGE_MB 64
#define EAL_OVERHEAD_MB 48

static bool has_arg(int argc, char **argv, const char *a)
{
	size_t n = strlen(a);

	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], a, n) == 0 &&
		    (argv[i][n] == '\0' || argv[i][n] == '='))
			return true;
	return false;
}

int sl_eal_init(int argc, char **argv, size_t memory_bytes)
{
	char **args = calloc((size_t)argc + 4, sizeof(char *));
	char mem[32];
	int n = 0, rc;

	if (args == NULL)
		return -ENOMEM;
	for (int i = 0; i < argc; i++)
		args[n++] = argv[i];
	/* Without hugepages the EAL reserves a fixed 64 MiB unless told;
	 * size it for the job's pools and rings. */
	if (has_arg(argc, argv, "--no-huge") && !has_arg(argc, argv, "-m") &&
	    !has_arg(argc, argv, "--socket-mem")) {
		size_t mb = memory_bytes / (1024 * 1024) + EAL_OVERHEAD_MB;
		if (mb < MIN_NOHUGE_MB)
			mb = MIN_NOHUGE_MB;
		snprintf(mem, sizeof(mem), "%zu", mb);
		args[n++] = "-m";
		args[n++] = mem;
	}
	args[n] = NULL;
	rc = rte_eal_init(n, args);
	free(args);
	if (rc < 0) {
		int err = rte_errno;
		fprintf(stderr,
			"sluice: DPDK EAL initialisation failed: %s\n"
			"  On machines without hugepages pass --no-huge.  Every running DPDK process\n"
			"  needs its own --file-prefix (\"Cannot create lock\" means another one uses\n"
			"  the same prefix).  The lcore list (-l/--lcores) must name existing cores.\n",
			err ? rte_strerror(err) : "see the EAL messages above");
		return -(err ? err : EINVAL);
	}
	return 0;
}
