/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a full keyed-state snapshot costs the worker lcore per entry: the
 * snapshot stepper walking the state plus the keyed-state encoder
 * (records, block checksums, file checksum) into buffers that a sink
 * frees at once (no io).  Thread CPU time, so other load on the machine
 * matters little.  Compares the stepper's runs (what checkpoints use)
 * with one emit call per entry, and both with a plain copy of the same
 * bytes.  Prints one JSON object on stdout (docs/benchmarks.md).
 *
 *   build/bench/snapshot_encode [--keys N] [--rounds R]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/keygroup.h"
#include "sluice/keyed_state.h"
#include "sluice/snapshot.h"

#include "bench_stats.h"

#define KEY_SIZE 8
#define VALUE_SIZE 24 /* the keyed aggregate of checkpoint_overhead */
#define MAXP 128
#define BUDGET 2048   /* entries per step, as dataplane/task_checkpoint.c */
#define ROUNDS_MAX 64

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t sink_bytes;

static int free_sink(void *arg, uint64_t off, void *buf, size_t len)
{
	(void)arg, (void)off;
	sink_bytes += len;
	sl_snap_buf_free(buf);
	return 0;
}

/* One full snapshot of st; returns CPU ns per entry. */
static double snapshot_once(struct sl_kstate *st, bool runs, uint64_t *size)
{
	struct sl_snap_kstate_conf c = {
		.uid = "bench", .checkpoint_id = 1, .kind = SL_SNAP_KSTATE_FULL,
		.max_parallelism = MAXP, .kg_first = 0, .kg_count = MAXP,
		.key_size = KEY_SIZE, .value_size = VALUE_SIZE, .sink = free_sink,
	};
	struct sl_snap_file_info info;
	struct sl_snap_kstate_enc *e;
	double t0;

	t0 = cpu_ns();
	e = sl_snap_kstate_enc_create(&c);
	if (e == NULL || sl_kstate_snapshot_begin(st, sl_snap_kstate_emit, e, NULL) < 0) {
		fprintf(stderr, "snapshot_encode: cannot start a snapshot: %s\n",
			strerror(errno));
		exit(1);
	}
	if (runs)
		sl_kstate_snapshot_emit_runs(st, sl_snap_kstate_emit_run);
	while (sl_kstate_snapshot_step(st, BUDGET) > 0)
		;
	if (sl_snap_kstate_enc_finish(e, &info) < 0) {
		fprintf(stderr, "snapshot_encode: encoding failed\n");
		exit(1);
	}
	sl_snap_kstate_enc_free(e);
	*size = info.size;
	return (cpu_ns() - t0) / (double)info.records;
}

/* The same record bytes copied with memcpy into a reused buffer. */
static double copy_once(const uint8_t *src, uint8_t *dst, size_t bytes,
			uint64_t entries)
{
	const size_t chunk = 1u << 20;
	double t0 = cpu_ns();

	for (size_t off = 0; off < bytes; off += chunk)
		memcpy(dst, src + off, bytes - off < chunk ? bytes - off : chunk);
	__asm__ volatile("" : : "r"(dst) : "memory");
	return (cpu_ns() - t0) / (double)entries;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "keys", required_argument, NULL, 'k' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t keys = 1000000, size = 0;
	unsigned rounds = 7;
	double single[ROUNDS_MAX], runs[ROUNDS_MAX], copy[ROUNDS_MAX];
	struct sl_kstate *st;
	uint8_t *src, *dst;
	size_t bytes;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'k': keys = strtoull(optarg, NULL, 0); break;
		case 'r': rounds = (unsigned)strtoul(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s [--keys N (1000000)] [--rounds R (7, at most %d)]\n",
				argv[0], ROUNDS_MAX);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (keys == 0 || rounds == 0 || rounds > ROUNDS_MAX) {
		fprintf(stderr, "snapshot_encode: --keys above 0, --rounds 1..%d\n", ROUNDS_MAX);
		return 2;
	}
	st = sl_kstate_create(0, MAXP, KEY_SIZE, VALUE_SIZE);
	if (st == NULL) {
		fprintf(stderr, "snapshot_encode: %s\n", strerror(errno));
		return 1;
	}
	for (uint64_t k = 0; k < keys; k++) {
		uint64_t h = sl_key_hash(&k, KEY_SIZE);
		uint8_t *v = sl_kstate_upsert(st, sl_key_group(h, MAXP), h, &k, NULL);

		if (v == NULL) {
			fprintf(stderr, "snapshot_encode: filling the state: %s\n",
				strerror(errno));
			return 1;
		}
		memset(v, (int)k, VALUE_SIZE);
	}
	bytes = keys * (10u + KEY_SIZE + VALUE_SIZE);
	src = malloc(bytes);
	dst = malloc(1u << 20);
	if (src == NULL || dst == NULL)
		return 1;
	memset(src, 1, bytes);
	/* interleaved, so that drifting load hits all three alike */
	for (unsigned r = 0; r < rounds; r++) {
		single[r] = snapshot_once(st, false, &size);
		runs[r] = snapshot_once(st, true, &size);
		copy[r] = copy_once(src, dst, bytes, keys);
		fprintf(stderr, "round %u: one emit per entry %.1f ns, runs %.1f ns, memcpy %.1f ns per entry\n",
			r + 1, single[r], runs[r], copy[r]);
	}
	double ms = bench_median(single, rounds), mr = bench_median(runs, rounds),
	       mc = bench_median(copy, rounds);
	printf("{\n  \"benchmark\": \"snapshot encode\",\n  \"keys\": %llu, \"key_size\": %d, \"value_size\": %d, \"rounds\": %u, \"file_bytes\": %llu,\n"
	       "  \"cpu_ns_per_entry\": {\"single_emits\": %.2f, \"runs\": %.2f, \"memcpy_of_the_records\": %.2f},\n"
	       "  \"runs_over_memcpy\": %.2f, \"single_over_runs\": %.2f\n}\n",
	       (unsigned long long)keys, KEY_SIZE, VALUE_SIZE, rounds,
	       (unsigned long long)size, ms, mr, mc, mr / mc, ms / mr);
	sl_kstate_free(st);
	free(src);
	free(dst);
	return 0;
}
