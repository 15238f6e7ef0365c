/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash points (include/sluice/crash_point.h): SLUICE_CRASH_AT is read once
 * when the library is loaded; a matching point counts down atomically (it
 * may be reached on several lcores) and the pass that reaches zero kills
 * the process with SIGKILL, which nothing can catch: as abrupt as a crash.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/crash_point.h"

bool __sl_crash_armed;
static char crash_name[64];
static int64_t crash_countdown;

__attribute__((constructor)) static void crash_point_arm(void)
{
	const char *v = getenv("SLUICE_CRASH_AT");
	const char *colon;
	size_t len;

	if (v == NULL || *v == '\0')
		return;
	colon = strchr(v, ':');
	len = colon ? (size_t)(colon - v) : strlen(v);
	if (len == 0 || len >= sizeof(crash_name))
		return;
	memcpy(crash_name, v, len);
	crash_countdown = colon ? strtoll(colon + 1, NULL, 10) : 1;
	if (crash_countdown < 1)
		crash_countdown = 1;
	__sl_crash_armed = true;
}

void __sl_crash_hit(const char *name)
{
	static const char msg[] = "sluice: crash point reached: SIGKILL\n";

	if (strcmp(name, crash_name) != 0)
		return;
	if (__atomic_sub_fetch(&crash_countdown, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do: we die either way */
	}
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}
