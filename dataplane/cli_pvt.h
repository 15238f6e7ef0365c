/* SPDX-License-Identifier: BSD-3-Clause */
/* The sluice command line's commands (dataplane/main.c dispatches). */
#ifndef SLUICE_CLI_PVT_H
#define SLUICE_CLI_PVT_H

/* exit statuses of every command */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* sluice checkpoints: dataplane/cli_checkpoints.c; argv[0] is "checkpoints" */
int sl_cli_checkpoints(int argc, char **argv);

#endif
