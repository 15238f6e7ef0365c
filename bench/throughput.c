/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Throughput benchmark: generator -> keyed count -> null sink.
 *
 * Measures, alternating in one run (the machines are shared and noisy, so
 * only ratios measured side by side mean anything):
 *   handwritten  one C loop on one worker lcore: generate the same records
 *                (same SplitMix64 derivation as the generator) into a
 *                256-record chunk, then count per key in an open-addressing
 *                table - the same work without the engine;
 *   engine-1     the sluice job with all three subtasks on one worker lcore;
 *   engine-2     the same job scaled out over two worker lcores:
 *                generator, count and sink at parallelism 2, hash
 *                partitioned by key, subtask i of each on lcore i+1, so
 *                half the records cross cores (per-core figure = total/2);
 *   ring         raw SPSC rte_ring hand-off of batch pointers (burst 32)
 *                between two lcores, converted to records/s at batch-size
 *                records per pointer: what the transport alone could carry.
 * Prints one JSON object: medians of every measurement and the ratios.
 *
 *   build/bench/throughput [--records N] [--keys K] [--rounds R]
 *                          [--batch-size B] [-- EAL args]
 * Default EAL: --no-huge --no-pci --lcores (0,2)@0,1@1 (lcore 1 has a core
 * to itself; lcore 2 shares core 0 with the mostly sleeping main lcore).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include "sluice/job.h"
#include "sluice/operators.h"

#include "bench_stats.h"

#define GAMMA 0x9e3779b97f4a7c15ULL
#define FIELD_MUL 0xd1b54a32d192ed03ULL

struct opts {
	uint64_t records;
	uint64_t keys;
	unsigned rounds;
	uint32_t batch_size;
};

/* ------------------------------------------------------------ handwritten */

static inline uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t range(uint64_t h, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)h * n) >> 64);
}

struct hrec {
	uint64_t key;
	int64_t ts;
	uint64_t value;
};

struct hslot {
	uint64_t key;
	uint64_t count; /* 0 = empty */
};

struct hand_arg {
	const struct opts *o;
	double seconds;
	uint64_t checksum;
};

static int handwritten(void *arg)
{
	struct hand_arg *a = arg;
	const uint64_t n = a->o->records, card = a->o->keys;
	const uint64_t seed = 42;
	const uint64_t fk = mix(seed ^ mix(1 * FIELD_MUL));
	const uint64_t fv = mix(seed ^ mix(3 * FIELD_MUL));
	uint64_t cap = 16;
	while (cap < card * 2)
		cap <<= 1;
	struct hslot *tab = calloc(cap, sizeof(*tab));
	struct hrec chunk[256];
	double t0 = bench_now_s();

	for (uint64_t base = 0; base < n; base += 256) {
		unsigned m = n - base < 256 ? (unsigned)(n - base) : 256;
		for (unsigned k = 0; k < m; k++) {
			uint64_t i = base + k;
			chunk[k].key = range(mix(fk + i * GAMMA), card);
			chunk[k].ts = 1600000000000000000LL + (int64_t)i * 1000;
			chunk[k].value = range(mix(fv + i * GAMMA), 1000000);
		}
		for (unsigned k = 0; k < m; k++) {
			uint64_t key = chunk[k].key;
			uint64_t s = (key * GAMMA) >> 32 & (cap - 1);
			while (tab[s].count != 0 && tab[s].key != key)
				s = (s + 1) & (cap - 1);
			tab[s].key = key;
			tab[s].count++;
		}
	}
	a->seconds = bench_now_s() - t0;
	for (uint64_t s = 0; s < cap; s++)
		a->checksum += tab[s].count * (tab[s].key + 1);
	free(tab);
	return 0;
}

/* ------------------------------------------------------------------ ring */

struct ring_arg {
	struct rte_ring *r;
	uint64_t n;	/* pointers to move */
	double seconds;
};

static int ring_producer(void *arg)
{
	struct ring_arg *a = arg;
	void *burst[32];

	for (unsigned k = 0; k < 32; k++)
		burst[k] = (void *)(uintptr_t)(k + 1);
	for (uint64_t sent = 0; sent < a->n;)
		sent += rte_ring_sp_enqueue_burst(a->r, burst, 32, NULL);
	return 0;
}

static int ring_consumer(void *arg)
{
	struct ring_arg *a = arg;
	void *burst[32];
	double t0 = bench_now_s();

	for (uint64_t got = 0; got < a->n;)
		got += rte_ring_sc_dequeue_burst(a->r, burst, 32, NULL);
	a->seconds = bench_now_s() - t0;
	return 0;
}

/* Wait for the workers without spinning: lcore 2 shares core 0 with us. */
static void wait_workers(void)
{
	unsigned l;

	RTE_LCORE_FOREACH_WORKER(l)
		while (rte_eal_get_lcore_state(l) == RUNNING)
			usleep(1000);
	rte_eal_mp_wait_lcore();
}

/* ---------------------------------------------------------------- engine */

static double run_engine(const struct opts *o, bool two_lcores,
			 uint64_t *records_out)
{
	struct sl_job_config cfg;
	struct sl_generator_conf gen;
	struct sl_keyed_aggregate_conf agg = { .emit_updates = false };
	struct sl_job *job;
	int g, c, s;

	sl_job_config_defaults(&cfg);
	cfg.batch_size = o->batch_size;
	job = sl_job_create("bench", &cfg);
	sl_generator_conf_defaults(&gen);
	sl_schema_add(&gen.schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&gen.schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&gen.schema, "value", SL_TYPE_U64, 0);
	strcpy(gen.key_field, "key");
	strcpy(gen.ts_field, "ts");
	gen.seed = 42;
	gen.count = o->records;
	gen.key_cardinality = o->keys;
	strcpy(agg.key, "key");
	agg.n_aggs = 1;
	agg.aggs[0] = (struct sl_agg_spec){ .fn = SL_AGG_COUNT, .as = "count" };

	const uint32_t p = two_lcores ? 2 : 1;

	g = sl_job_add(job, "gen", &sl_op_generator, &gen, p);
	c = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, p);
	s = sl_job_add(job, "sink", &sl_op_null_sink, NULL, p);
	if (g < 0 || c < 0 || s < 0 ||
	    sl_job_connect(job, g, c, SL_PART_HASH, "key") < 0 ||
	    sl_job_connect(job, c, s, SL_PART_FORWARD, NULL) < 0) {
		fprintf(stderr, "bench: %s\n", sl_job_error(job));
		exit(1);
	}
	for (uint32_t i = 0; i < p; i++) {
		sl_job_place(job, g, i, 1 + i);
		sl_job_place(job, c, i, 1 + i);
		sl_job_place(job, s, i, 1 + i);
	}
	if (sl_job_run(job) < 0) {
		fprintf(stderr, "bench: %s\n", sl_job_error(job));
		exit(1);
	}
	unsigned nt;
	const struct sl_task_stats *st = sl_job_task_stats(job, &nt);
	*records_out = 0;
	for (unsigned i = 0; i < nt; i++)
		if (strcmp(st[i].uid, "count") == 0)
			*records_out += st[i].records_in;
	double t = sl_job_elapsed(job);
	sl_job_free(job);
	return t;
}

int main(int argc, char **argv)
{
	struct opts o = { .records = 20000000, .keys = 10000, .rounds = 3,
			  .batch_size = 256 };
	static const struct option lopts[] = {
		{ "records", required_argument, NULL, 'n' },
		{ "keys", required_argument, NULL, 'k' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "batch-size", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	char prefix[64];
	char *eal_default[] = { argv[0], "--no-huge", "--no-pci", "--no-telemetry",
				"--log-level=lib.eal:error", "--lcores", "(0,2)@0,1@1",
				prefix, NULL };
	int opt, eal_at = argc;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			eal_at = i;
			break;
		}
	while ((opt = getopt_long(eal_at, argv, "n:k:r:b:", lopts, NULL)) != -1) {
		switch (opt) {
		case 'n': o.records = strtoull(optarg, NULL, 0); break;
		case 'k': o.keys = strtoull(optarg, NULL, 0); break;
		case 'r': o.rounds = (unsigned)atoi(optarg); break;
		case 'b': o.batch_size = (uint32_t)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [--records N] [--keys K] [--rounds R] [--batch-size B] [-- EAL args]\n",
				argv[0]);
			return 2;
		}
	}
	snprintf(prefix, sizeof(prefix), "--file-prefix=bench%d", getpid());
	int rc = eal_at < argc
		? (argv[eal_at] = argv[0], sl_eal_init(argc - eal_at, argv + eal_at, 256 << 20))
		: sl_eal_init(8, eal_default, 256 << 20);
	if (rc < 0)
		return 1;
	if (rte_lcore_count() < 3 || !rte_lcore_is_enabled(1) || !rte_lcore_is_enabled(2)) {
		fprintf(stderr, "bench: needs worker lcores 1 and 2 (e.g. --lcores '(0,2)@0,1@1')\n");
		return 2;
	}

	double *hand = calloc(o.rounds, sizeof(double));
	double *e1 = calloc(o.rounds, sizeof(double));
	double *e2 = calloc(o.rounds, sizeof(double));
	double *ring = calloc(o.rounds, sizeof(double));
	uint64_t ring_n = o.records / 8;
	struct rte_ring *r = rte_ring_create("bench_ring", 1024, SOCKET_ID_ANY,
					     RING_F_SP_ENQ | RING_F_SC_DEQ);

	for (unsigned round = 0; round < o.rounds; round++) {
		struct hand_arg ha = { .o = &o };
		rte_eal_remote_launch(handwritten, &ha, 1);
		wait_workers();
		hand[round] = o.records / ha.seconds;

		uint64_t out;
		double t = run_engine(&o, false, &out);
		if (out != o.records) {
			fprintf(stderr, "bench: engine counted %" PRIu64 " of %" PRIu64 " records\n",
				out, o.records);
			return 1;
		}
		e1[round] = o.records / t;
		t = run_engine(&o, true, &out);
		if (out != o.records) {
			fprintf(stderr, "bench: engine (2 lcores) counted %" PRIu64 " of %" PRIu64 " records\n",
				out, o.records);
			return 1;
		}
		e2[round] = o.records / t;

		struct ring_arg ra = { .r = r, .n = ring_n };
		rte_eal_remote_launch(ring_consumer, &ra, 2);
		rte_eal_remote_launch(ring_producer, &ra, 1);
		wait_workers();
		ring[round] = ring_n / ra.seconds;
		fprintf(stderr, "round %u: handwritten %.1f M/s, engine-1 %.1f M/s, engine-2 %.1f M/s, ring %.1f M ptr/s\n",
			round, hand[round] / 1e6, e1[round] / 1e6, e2[round] / 1e6,
			ring[round] / 1e6);
	}

	double h = bench_median(hand, o.rounds), m1 = bench_median(e1, o.rounds);
	double m2 = bench_median(e2, o.rounds), rp = bench_median(ring, o.rounds);
	printf("{\n"
	       "  \"benchmark\": \"generator -> keyed count -> null sink\",\n"
	       "  \"records\": %" PRIu64 ", \"keys\": %" PRIu64 ", \"batch_size\": %u, \"rounds\": %u,\n"
	       "  \"handwritten_records_per_s\": %.0f,\n"
	       "  \"engine_1lcore_records_per_s\": %.0f,\n"
	       "  \"engine_2lcores_records_per_s\": %.0f,\n"
	       "  \"engine_2lcores_records_per_s_per_core\": %.0f,\n"
	       "  \"ring_pointers_per_s\": %.0f,\n"
	       "  \"ring_records_per_s_equivalent\": %.0f,\n"
	       "  \"ratio_engine_1lcore_vs_handwritten\": %.3f,\n"
	       "  \"ratio_engine_2lcores_per_core_vs_handwritten\": %.3f,\n"
	       "  \"ratio_engine_2lcores_vs_ring\": %.4f\n"
	       "}\n",
	       o.records, o.keys, o.batch_size, o.rounds, h, m1, m2, m2 / 2, rp,
	       rp * o.batch_size, m1 / h, m2 / 2 / h, m2 / (rp * o.batch_size));
	rte_ring_free(r);
	rte_eal_cleanup();
	return 0;
}
