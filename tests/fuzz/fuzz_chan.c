/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: arbitrary bytes into the channel-state loader
 * (sl_snap_fuzz_chan() in snapshot/fuzz_entry.c).
 */
#include "sluice/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return sl_snap_fuzz_chan(data, len);
}
