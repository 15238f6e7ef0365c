/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoint overhead benchmark (docs/benchmarks.md).  Prints one JSON
 * object on stdout, progress on stderr.
 *
 * The measured job, all subtasks on worker lcore 1 (the main lcore, on
 * the other core, runs the coordinator and polls the io writer):
 *
 *   generator --hash(key)--> keyed-aggregate --forward--> sink
 *     count, sum(value), max(ts) per key: 24-byte values, so the keyed
 *     state takes 64 B per key (entry + index): 1 M keys = 64 MiB,
 *     16 M = 1 GiB, 64 M = 4 GiB (sl_kstate_memory()).
 *
 * Every run first fills the state (the first `keys` records get the keys
 * 0, 1, 2, ... instead of random ones), then measures for --duration
 * seconds with uniformly random keys among those (updates only, so the
 * state keeps its size), then stops the job without draining.
 * Checkpointing, when on, runs from the start of the job.
 *
 * Sections (--sections, all by default):
 *   disk        the disk's sequential write bandwidth (sl_io_measure_write_bw,
 *               O_DIRECT), at the start and again at the end;
 *   throughput  records/s with checkpointing off vs each mode (aligned,
 *               unaligned, aligned with timeout, at-least-once) at each
 *               interval (1 s, 100 ms), for each state size, alternating
 *               off, A, off, B, ..., off; a configuration's ratio is its
 *               throughput over the mean of the two off runs around it,
 *               per wall second, per CPU second of lcore 1, per CPU second
 *               of the process, and projected for a dedicated core (see
 *               enum basis, tp_projected()); medians over --rounds;
 *   latency     p50/p99/p99.9/max of source emit time -> sink, the
 *               generator rate-limited (--latency-rate), the aggregate
 *               emitting every update to a latency sink, checkpointing off
 *               vs each mode every 1 s;
 *   writeout    checkpoint write bandwidth with the large state while the
 *               job runs at --writeout-rate records/s: keyed-state bytes
 *               written / write-out time (snapshot to durable) of the
 *               slowest checkpoint triggered after the fill (those during
 *               the fill write a growing state on a busy lcore), next to
 *               the disk's bandwidth;
 *   pause       the synchronous part of a snapshot (longest over a run's
 *               checkpoints) with the small, large and huge states (the
 *               first two from the throughput runs, or own runs);
 *   backpressure  generator -> keyed-aggregate -> {fast null sink, slow
 *               sink sleeping --slow-us per batch on lcore 2}: checkpoint
 *               duration (trigger to complete) aligned vs unaligned.
 *
 *   build/bench/checkpoint_overhead [--quick] [options] [-- EAL args]
 * See --help and docs/benchmarks.md.  Default EAL: --no-huge --no-pci
 * --lcores (0,2)@0,1@1.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_lcore.h>

#include "sluice/checkpoint.h"
#include "sluice/io.h"
#include "sluice/job.h"
#include "sluice/operators.h"

#include "bench_stats.h"

#define MIB (1024.0 * 1024.0)
#define N_MODES 4
#define N_INTERVALS 4 /* at most */
#define MAX_ROUNDS 16

struct opts {
	bool quick;
	unsigned n_modes;
	enum sl_ckpt_mode modes[N_MODES];
	unsigned n_intervals;
	uint64_t intervals_ms[N_INTERVALS];
	double duration_s;	  /* measured seconds per throughput run */
	unsigned rounds;
	uint64_t small_keys;	  /* ~64 MiB */
	uint64_t large_keys;	  /* ~1 GiB */
	uint64_t huge_keys;	  /* ~4 GiB, pause only; 0 = skip */
	bool throughput_large;	  /* throughput runs with the large state too */
	uint64_t aligned_timeout_ms;
	double latency_rate;
	double latency_s;
	double writeout_rate;
	double writeout_s;
	size_t disk_bytes;
	uint32_t slow_us;
	double backpressure_s;
	char sections[128];
	char dir[4096];
};

static bool section_on(const struct opts *o, const char *name)
{
	const char *p = o->sections;
	size_t len = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		bool start = p == o->sections || p[-1] == ',';
		bool end = p[len] == '\0' || p[len] == ',';
		if (start && end)
			return true;
		p += len;
	}
	return false;
}

/* ------------------------------------------------------------ clean-up */

static char root_dir[4096];
static char eal_runtime_dir[4096]; /* the EAL leaves it; the prefix is ours */
static struct sl_job *volatile running_job;
static volatile sig_atomic_t interrupted;

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "bench: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
	if (root_dir[0] != '\0')
		rm_tree(root_dir);
	if (eal_runtime_dir[0] != '\0')
		rm_tree(eal_runtime_dir);
}

static void on_signal(int sig)
{
	struct sl_job *job = running_job;

	(void)sig;
	interrupted = 1;
	if (job != NULL)
		sl_job_stop(job, false, true);
}

/* ------------------------------------------------------- the feed source */

/*
 * The generator, wrapped: its poll() runs unchanged, then the wrapper
 * rewrites the keys of the fill records, stamps the emit time into `ts`
 * (latency runs), throttles after the fill (--writeout-rate), and stops
 * the job once the measured window is over.  It relies on the generator
 * writing each poll's records contiguously at the end of the current
 * output batch (dataplane/source_generator.c does: one reservation per
 * poll).  One job runs at a time, so the state is global.
 */
struct feed {
	/* set before the run */
	struct sl_job *job;
	uint64_t fill_keys;
	double measure_s;
	double rate;	   /* after the fill, 0 = unthrottled */
	bool stamp;
	bool summary_window; /* checkpoint figures: triggered after the fill */
	uint16_t key_off, ts_off;
	/* during the run (lcore 1; read by the main lcore after it) */
	uint64_t emitted;
	uint64_t at_fill;
	int64_t t_fill_ns; /* 0 until filled; read by the latency sink */
	int64_t t_end_ns;
	/* CPU time at the window's start and end: of lcore 1's thread
	 * (every subtask), and of the process (adds the main lcore's
	 * coordinator and io polling, and io_uring's io-wq workers) */
	int64_t worker_cpu_ns[2], process_cpu_ns[2];
	/* time runnable but waiting for a CPU (schedstat): how much other
	 * load on the machine took from lcore 1 and from the main lcore */
	int64_t worker_wait_ns[2], main_wait_ns[2];
	uint64_t measured;
	bool stopped;
};

static struct feed feed;

static int64_t cpu_ns(clockid_t clock);

/* Run-queue wait of a thread so far, from /proc/.../schedstat (its
 * second field); 0 if the kernel does not keep schedstats. */
static int64_t runq_wait_ns(const char *path)
{
	unsigned long long run = 0, wait = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return (int64_t)wait;
}

static char main_schedstat[64];

/* Sample the clocks at the start (0) or end (1) of the window. */
static void feed_sample(struct feed *f, int at)
{
	f->worker_cpu_ns[at] = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	f->process_cpu_ns[at] = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	f->worker_wait_ns[at] = runq_wait_ns("/proc/thread-self/schedstat");
	f->main_wait_ns[at] = runq_wait_ns(main_schedstat);
}

static int64_t cpu_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int feed_poll(void *op, struct sl_task *t)
{
	struct feed *f = &feed;
	int64_t now = 0;
	int n;

	if (f->stopped)
		return 0;
	if (f->t_fill_ns != 0) {
		now = (int64_t)bench_mono_ns();
		if (now - f->t_fill_ns >= (int64_t)(f->measure_s * 1e9)) {
			feed_sample(f, 1);
			f->t_end_ns = now;
			f->measured = f->emitted - f->at_fill;
			f->stopped = true;
			sl_job_stop(f->job, false, false);
			return 0;
		}
		if (f->rate > 0 &&
		    (double)(f->emitted - f->at_fill) >= f->rate * (double)(now - f->t_fill_ns) / 1e9)
			return 0;
	}
	n = sl_op_generator.poll(op, t);
	if (n <= 0)
		return n;

	struct sl_batch *b = t->out;
	uint8_t *rec = b->data + (size_t)(b->count - (uint32_t)n) * b->record_size;

	if (f->emitted < f->fill_keys) {
		uint64_t k = f->emitted;
		for (int i = 0; i < n && k < f->fill_keys; i++, k++)
			memcpy(rec + (size_t)i * b->record_size + f->key_off, &k, 8);
	}
	if (f->stamp) {
		int64_t ts = (int64_t)bench_mono_ns();
		for (int i = 0; i < n; i++)
			memcpy(rec + (size_t)i * b->record_size + f->ts_off, &ts, 8);
	}
	f->emitted += (uint64_t)n;
	if (f->t_fill_ns == 0 && f->emitted >= f->fill_keys) {
		f->at_fill = f->emitted;
		feed_sample(f, 0);
		if (f->summary_window)
			sl_job_checkpoint_summary_from(f->job, (uint64_t)(int64_t)bench_mono_ns());
		__atomic_store_n(&f->t_fill_ns, (int64_t)bench_mono_ns(), __ATOMIC_RELEASE);
	}
	return n;
}

static struct sl_operator_ops feed_ops;

static void feed_ops_init(void)
{
	feed_ops = sl_op_generator;
	feed_ops.type = "bench-feed";
	feed_ops.poll = feed_poll;
}

/* ------------------------------------------------------- latency sink */

/* Log-linear histogram: 128 sub-buckets per power of two (< 1% error). */
#define LAT_SUB 128
#define LAT_BUCKETS (58 * LAT_SUB)

struct lat_hist {
	uint64_t n[LAT_BUCKETS];
	uint64_t count;
	uint64_t max;
};

static inline unsigned lat_bucket(uint64_t v)
{
	if (v < LAT_SUB)
		return (unsigned)v;
	unsigned e = 63 - (unsigned)__builtin_clzll(v); /* >= 7 */
	return (e - 6) * LAT_SUB + (unsigned)((v >> (e - 7)) - LAT_SUB);
}

/* Middle of bucket b, in ns. */
static double lat_value(unsigned b)
{
	if (b < LAT_SUB)
		return b;
	unsigned e = b / LAT_SUB + 6;
	double lo = (double)((uint64_t)(b % LAT_SUB + LAT_SUB) << (e - 7));
	return lo + (double)(1ULL << (e - 7)) / 2;
}

static double lat_quantile(const struct lat_hist *h, double q)
{
	uint64_t want = (uint64_t)ceil(q * (double)h->count), seen = 0;

	if (h->count == 0)
		return NAN;
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		seen += h->n[b];
		if (seen >= want)
			return lat_value(b);
	}
	return (double)h->max;
}

struct lat_conf {
	struct lat_hist *hist;
};

struct lat_sink {
	struct lat_hist *hist;
	uint16_t ts_off;
};

static int lat_open(struct sl_task *t, void **op)
{
	const struct lat_conf *c = t->info.conf;
	const struct sl_field *f = sl_schema_find(t->info.in_schema[0], "ts");
	struct lat_sink *s;

	if (f == NULL || f->size != 8) {
		sl_task_error(t, "latency sink: the input has no 8-byte field 'ts'");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->hist = c->hist;
	s->ts_off = f->offset;
	*op = s;
	return 0;
}

/* Records stamped during the measured window count: emit -> here. */
static int lat_process(void *op, struct sl_task *t, unsigned input,
		       struct sl_batch *b)
{
	struct lat_sink *s = op;
	struct lat_hist *h = s->hist;
	int64_t from = __atomic_load_n(&feed.t_fill_ns, __ATOMIC_ACQUIRE);
	int64_t now = (int64_t)bench_mono_ns();
	const uint8_t *rec = b->data + s->ts_off;

	(void)t, (void)input;
	if (from == 0)
		return 0;
	for (uint32_t i = 0; i < b->count; i++, rec += b->record_size) {
		int64_t ts;
		memcpy(&ts, rec, 8);
		if (ts < from)
			continue;
		uint64_t d = now > ts ? (uint64_t)(now - ts) : 0;
		h->n[lat_bucket(d)]++;
		h->count++;
		if (d > h->max)
			h->max = d;
	}
	return 0;
}

static void lat_close(void *op, struct sl_task *t)
{
	(void)t;
	free(op);
}

static const struct sl_operator_ops lat_sink_ops = {
	.type = "bench-latency-sink",
	.conf_size = sizeof(struct lat_conf),
	.min_inputs = 1,
	.max_inputs = 1,
	.sink = true,
	.open = lat_open,
	.process = lat_process,
	.close = lat_close,
};

/* ------------------------------------------------------------- one run */

struct run_spec {
	uint64_t keys;
	bool ckpt;
	enum sl_ckpt_mode mode;
	uint64_t interval_ms;
	double measure_s;
	double gen_rate;	/* generator's own limit, from the start */
	double feed_rate;	/* after the fill */
	struct lat_hist *lat;	/* latency run: emit updates to this sink */
	/* backpressure run: a second, slow sink on lcore 2 */
	uint32_t slow_us;
	/* checkpoint figures of the measured window only (not the fill,
	 * where the job runs unthrottled and the state still grows) */
	bool summary_window;
};

struct run_result {
	int rc;
	int64_t t_fill_ns, t_end_ns; /* the measured window */
	double records_per_s;
	double records_per_worker_cpu_s;  /* per CPU-second of lcore 1 */
	double records_per_process_cpu_s; /* per CPU-second of the process */
	double worker_cpu_s;		  /* lcore 1's CPU time in the window */
	uint64_t records;		  /* emitted in the window */
	double worker_cpu_share;	  /* lcore 1's CPU time / window */
	double worker_wait_share;	  /* lcore 1 runnable, not running */
	double main_wait_share;		  /* the same for the main lcore */
	double window_s;
	double wall_s;
	struct sl_job_checkpoints ck;
};

static unsigned run_counter;

/* Longest synchronous part per checkpointed run, by state size. */
#define PAUSE_SIZES 8
#define PAUSE_RUNS 128
struct pause_stats {
	uint64_t keys;
	uint64_t state_bytes;
	unsigned n;
	double max_us[PAUSE_RUNS];
};
static struct pause_stats pauses[PAUSE_SIZES];

static void pause_add(uint64_t keys, const struct sl_job_checkpoints *k)
{
	unsigned i;

	if (k->completed == 0)
		return;
	for (i = 0; i < PAUSE_SIZES && pauses[i].n > 0 && pauses[i].keys != keys; i++)
		;
	if (i == PAUSE_SIZES || pauses[i].n == PAUSE_RUNS)
		return;
	pauses[i].keys = keys;
	if (k->max_state_bytes > pauses[i].state_bytes)
		pauses[i].state_bytes = k->max_state_bytes;
	pauses[i].max_us[pauses[i].n++] = k->max_sync_ns / 1e3;
}

static const struct pause_stats *pause_find(uint64_t keys)
{
	for (unsigned i = 0; i < PAUSE_SIZES && pauses[i].n > 0; i++)
		if (pauses[i].keys == keys)
			return &pauses[i];
	return NULL;
}

static double pause_max(const struct pause_stats *p)
{
	double m = 0;

	for (unsigned i = 0; p != NULL && i < p->n; i++)
		m = p->max_us[i] > m ? p->max_us[i] : m;
	return p != NULL ? m : NAN;
}

static void run_job(const struct opts *o, const struct run_spec *r,
		    struct run_result *res)
{
	struct sl_job_config cfg;
	struct sl_generator_conf gen;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 3,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" },
			  { .fn = SL_AGG_SUM, .field = "value", .as = "sum" },
			  { .fn = SL_AGG_MAX, .field = "ts", .as = "ts" } } };
	struct lat_conf lc = { .hist = r->lat };
	struct sl_count_sink_conf slow = { .delay_us_per_batch = r->slow_us };
	char dir[4200];
	int g, c, s, s2 = -1;
	double t0;

	memset(res, 0, sizeof(*res));
	sl_job_config_defaults(&cfg);
	if (r->ckpt) {
		cfg.checkpoint.interval_ms = r->interval_ms;
		cfg.checkpoint.mode = r->mode;
		cfg.checkpoint.aligned_timeout_ms = o->aligned_timeout_ms;
		cfg.checkpoint.retained = 1;
		int n = snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir),
				 "%s/run-%u", o->dir, run_counter++);
		if (n < 0 || (size_t)n >= sizeof(cfg.checkpoint.dir)) {
			fprintf(stderr, "bench: --dir %s: path too long\n", o->dir);
			exit(2);
		}
		memcpy(dir, cfg.checkpoint.dir, (size_t)n + 1);
	}
	if (r->slow_us) {
		/* the slow sink's loop turn is 4 batches, so it polls its
		 * priority lane every 4 x slow_us (as tests/test_checkpoint.c) */
		cfg.burst_size = 4;
	}
	sl_generator_conf_defaults(&gen);
	sl_schema_add(&gen.schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&gen.schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&gen.schema, "value", SL_TYPE_U64, 0);
	gen.seed = 7;
	gen.key_cardinality = r->keys;
	gen.rate = r->gen_rate;
	agg.emit_updates = r->lat != NULL || r->slow_us;

	memset(&feed, 0, sizeof(feed));
	feed.fill_keys = r->keys;
	feed.measure_s = r->measure_s;
	feed.rate = r->feed_rate;
	feed.stamp = r->lat != NULL;
	feed.summary_window = r->summary_window;
	feed.key_off = sl_schema_find(&gen.schema, "key")->offset;
	feed.ts_off = sl_schema_find(&gen.schema, "ts")->offset;

	struct sl_job *job = sl_job_create("ckbench", &cfg);
	if (job == NULL) {
		fprintf(stderr, "bench: cannot create the job: %s\n", strerror(errno));
		exit(1);
	}
	feed.job = job;
	g = sl_job_add(job, "gen", &feed_ops, &gen, 1);
	c = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, 1);
	s = r->lat ? sl_job_add(job, "sink", &lat_sink_ops, &lc, 1)
		   : sl_job_add(job, "sink", &sl_op_null_sink, NULL, 1);
	if (r->slow_us)
		s2 = sl_job_add(job, "slow", &sl_op_count_sink, &slow, 1);
	if (g < 0 || c < 0 || s < 0 || (r->slow_us && s2 < 0) ||
	    sl_job_connect(job, g, c, SL_PART_HASH, "key") < 0 ||
	    sl_job_connect(job, c, s, SL_PART_FORWARD, NULL) < 0 ||
	    (s2 >= 0 && sl_job_connect(job, c, s2, SL_PART_FORWARD, NULL) < 0) ||
	    sl_job_place(job, g, 0, 1) < 0 || sl_job_place(job, c, 0, 1) < 0 ||
	    sl_job_place(job, s, 0, 1) < 0 ||
	    (s2 >= 0 && sl_job_place(job, s2, 0, 2) < 0)) {
		fprintf(stderr, "bench: building the job: %s\n", sl_job_error(job));
		exit(1);
	}
	running_job = job;
	t0 = bench_now_s();
	res->rc = sl_job_run(job);
	res->wall_s = bench_now_s() - t0;
	running_job = NULL;
	if (res->rc < 0 && !interrupted)
		fprintf(stderr, "bench: the job failed: %s\n", sl_job_error(job));
	res->t_fill_ns = feed.t_fill_ns;
	res->t_end_ns = feed.t_end_ns;
	if (feed.stopped) {
		res->window_s = (double)(feed.t_end_ns - feed.t_fill_ns) / 1e9;
		res->records_per_s = (double)feed.measured / res->window_s;
		res->records_per_worker_cpu_s = (double)feed.measured * 1e9 /
			(double)(feed.worker_cpu_ns[1] - feed.worker_cpu_ns[0]);
		res->records_per_process_cpu_s = (double)feed.measured * 1e9 /
			(double)(feed.process_cpu_ns[1] - feed.process_cpu_ns[0]);
		res->records = feed.measured;
		res->worker_cpu_s = (double)(feed.worker_cpu_ns[1] - feed.worker_cpu_ns[0]) / 1e9;
		res->worker_cpu_share = res->worker_cpu_s / res->window_s;
		res->worker_wait_share = (double)(feed.worker_wait_ns[1] - feed.worker_wait_ns[0]) /
					 1e9 / res->window_s;
		res->main_wait_share = (double)(feed.main_wait_ns[1] - feed.main_wait_ns[0]) /
				       1e9 / res->window_s;
	} else if (res->rc == 0 && !interrupted) {
		fprintf(stderr, "bench: the job ended before its measured window\n");
		res->rc = -EIO;
	}
	sl_job_checkpoint_summary(job, &res->ck);
	if (r->ckpt && !r->summary_window)
		pause_add(r->keys, &res->ck); /* the longest of all counts */
	sl_job_free(job);
	if (r->ckpt)
		rm_tree(dir);
	if (interrupted) {
		fprintf(stderr, "bench: interrupted\n");
		exit(130);
	}
	if (res->rc < 0)
		exit(1);
}

static const char *spec_name(const struct run_spec *r, char *buf, size_t len)
{
	if (!r->ckpt)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "%s/%" PRIu64 "ms", sl_ckpt_mode_name(r->mode),
			 r->interval_ms);
	return buf;
}

static void log_run(const char *what, const struct run_spec *r,
		    const struct run_result *res)
{
	char name[64];

	fprintf(stderr, "%-12s %-27s %5.1f M keys %6.2f M rec/s (%.2f per lcore-1 CPU s, %.2f per process CPU s; lcore 1 ran %.0f%% waited %.0f%%, main waited %.0f%%)",
		what, spec_name(r, name, sizeof(name)), (double)r->keys / 1e6,
		res->records_per_s / 1e6, res->records_per_worker_cpu_s / 1e6,
		res->records_per_process_cpu_s / 1e6, res->worker_cpu_share * 100,
		res->worker_wait_share * 100, res->main_wait_share * 100);
	if (r->ckpt)
		fprintf(stderr, "  ckpt %" PRIu64 " ok %" PRIu64 " failed, sync max %.1f us, "
			"write-out max %.0f ms, %.1f MiB, duration %.0f..%.0f ms",
			res->ck.completed, res->ck.failed, res->ck.max_sync_ns / 1e3,
			res->ck.max_async_ns / 1e6, res->ck.max_written_bytes / MIB,
			res->ck.min_duration_ns / 1e6, res->ck.max_duration_ns / 1e6);
	/* CLOCK_MONOTONIC: matches `perf record -k CLOCK_MONOTONIC` */
	fprintf(stderr, "  (%.1f s, window %.3f..%.3f)\n", res->wall_s,
		res->t_fill_ns / 1e9, res->t_end_ns / 1e9);
}

/* --------------------------------------------------------------- JSON */

static bool json_first;

static void jopen(const char *key, char bracket)
{
	printf("%s\n  %s%s%s%c", json_first ? "" : ",", key ? "\"" : "",
	       key ? key : "", key ? "\": " : "", bracket);
	json_first = false;
}

/* A number, or null when it is not one (NaN). */
static void jnum(const char *fmt, double v)
{
	if (isfinite(v))
		printf(fmt, v);
	else
		printf("null");
}

static void jckpt(const struct run_result *res)
{
	const struct sl_job_checkpoints *k = &res->ck;

	printf(", \"completed\": %" PRIu64 ", \"failed\": %" PRIu64
	       ", \"max_sync_us\": %.1f, \"max_writeout_ms\": %.1f"
	       ", \"state_bytes\": %" PRIu64 ", \"max_written_bytes\": %" PRIu64
	       ", \"min_duration_ms\": %.1f, \"max_duration_ms\": %.1f",
	       k->completed, k->failed, k->max_sync_ns / 1e3, k->max_async_ns / 1e6,
	       k->max_state_bytes, k->max_written_bytes, k->min_duration_ns / 1e6,
	       k->max_duration_ns / 1e6);
	if (k->last_failure[0] != '\0') {
		printf(", \"last_failure\": \"");
		for (const char *p = k->last_failure; *p; p++)
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p >= 0x20)
				putchar(*p);
		printf("\"");
	}
}

/* ------------------------------------------------------------ targets */

struct target {
	char name[96];
	double value;
	char cmp[8];
	double bound;
	bool met;
};

static struct target targets[32];
static unsigned n_targets;

static void target(const char *name, double value, const char *cmp, double bound)
{
	struct target *t = &targets[n_targets++];

	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->cmp, sizeof(t->cmp), "%s", cmp);
	t->value = value;
	t->bound = bound;
	t->met = isfinite(value) &&
		 (strcmp(cmp, ">=") == 0 ? value >= bound : value < bound);
}

/* ----------------------------------------------------------- sections */

static double disk_bw(const struct opts *o)
{
	double bw = NAN;
	int fd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	/* write back what the checkpoints left dirty first: the disk is
	 * measured, not the writeback of earlier runs competing with it */
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	rc = sl_io_measure_write_bw(o->dir, o->disk_bytes, &bw);

	if (rc < 0) {
		fprintf(stderr, "bench: measuring the disk under %s: %s\n", o->dir,
			strerror(-rc));
		return NAN;
	}
	fprintf(stderr, "disk         sequential write (O_DIRECT, 32 x 1 MiB): %.0f MB/s\n",
		bw / 1e6);
	return bw;
}

/*
 * Three ways to count throughput.  Wall-clock records/s is what the issue
 * asks for, but on a shared machine the CPU the job gets varies from run
 * to run by more than the effect measured, so the same records are also
 * divided by the CPU time lcore 1 got (what a dedicated core would
 * deliver) and by the CPU time of the whole process (which adds the main
 * lcore's coordinator and io polling and the kernel's io-wq workers).
 */
enum basis { WALL, WORKER_CPU, PROCESS_CPU, N_BASES };
static const char *const basis_name[N_BASES] = { "wall", "worker_cpu", "process_cpu" };

static double rate_of(const struct run_result *r, enum basis b)
{
	return b == WALL ? r->records_per_s
	       : b == WORKER_CPU ? r->records_per_worker_cpu_s
				 : r->records_per_process_cpu_s;
}

/* Throughput of one state size: off, A, off, B, ..., off per round. */
struct tp_size {
	uint64_t keys;
	/* off runs: round r has n_modes * n_intervals + 1 of them */
	struct run_result off[MAX_ROUNDS][N_MODES * N_INTERVALS + 1];
	struct run_result on[N_MODES][N_INTERVALS][MAX_ROUNDS];
	uint64_t max_sync_ns;
	uint64_t state_bytes;
};

static void throughput_size(const struct opts *o, struct tp_size *ts)
{
	struct run_spec off = { .keys = ts->keys, .measure_s = o->duration_s };

	for (unsigned round = 0; round < o->rounds; round++) {
		unsigned k = 0;

		run_job(o, &off, &ts->off[round][k]);
		log_run("throughput", &off, &ts->off[round][k]);
		for (unsigned m = 0; m < o->n_modes; m++)
			for (unsigned i = 0; i < o->n_intervals; i++) {
				struct run_spec on = off;
				struct run_result *r = &ts->on[m][i][round];

				on.ckpt = true;
				on.mode = o->modes[m];
				on.interval_ms = o->intervals_ms[i];
				run_job(o, &on, r);
				log_run("throughput", &on, r);
				k++;
				run_job(o, &off, &ts->off[round][k]);
				log_run("throughput", &off, &ts->off[round][k]);
				if (r->ck.max_sync_ns > ts->max_sync_ns)
					ts->max_sync_ns = r->ck.max_sync_ns;
				if (r->ck.max_state_bytes > ts->state_bytes)
					ts->state_bytes = r->ck.max_state_bytes;
			}
	}
}

/* Configuration (m, i) of round `round` over the mean of the off runs
 * just before and after it. */
static double tp_ratio(const struct opts *o, const struct tp_size *ts,
		       unsigned m, unsigned i, unsigned round, enum basis b)
{
	unsigned k = m * o->n_intervals + i;
	double before = rate_of(&ts->off[round][k], b);
	double after = rate_of(&ts->off[round][k + 1], b);

	return rate_of(&ts->on[m][i][round], b) / ((before + after) / 2);
}

static double tp_ratio_median(const struct opts *o, const struct tp_size *ts,
			      unsigned m, unsigned i, enum basis b)
{
	double v[MAX_ROUNDS];

	for (unsigned r = 0; r < o->rounds; r++)
		v[r] = tp_ratio(o, ts, m, i, r, b);
	return bench_median(v, o->rounds);
}

/*
 * Projection for lcore 1 on a core of its own.  The checkpoint work of a
 * run is lcore 1's CPU time beyond what its records cost in the off runs
 * around it; it is paced by the wall clock (one full snapshot per
 * interval), not by the records, so on a dedicated core it would take the
 * same share of each second: the ratio is 1 - that share.  When the CPU
 * lcore 1 gets is a fraction of a core, the CPU-normalised ratio charges
 * the same work to fewer records and understates the engine.  Optimistic
 * where snapshots run back to back (a faster core would take more).
 */
static double tp_projected(const struct opts *o, const struct tp_size *ts,
			   unsigned m, unsigned i, unsigned round)
{
	unsigned k = m * o->n_intervals + i;
	const struct run_result *on = &ts->on[m][i][round];
	double off_rate = (ts->off[round][k].records_per_worker_cpu_s +
			   ts->off[round][k + 1].records_per_worker_cpu_s) / 2;
	double extra = on->worker_cpu_s - (double)on->records / off_rate;

	return 1 - extra / on->window_s;
}

static double tp_projected_median(const struct opts *o, const struct tp_size *ts,
				  unsigned m, unsigned i)
{
	double v[MAX_ROUNDS];

	for (unsigned r = 0; r < o->rounds; r++)
		v[r] = tp_projected(o, ts, m, i, r);
	return bench_median(v, o->rounds);
}

static void print_throughput(const struct opts *o, const struct tp_size *ts)
{
	const unsigned n_off = o->rounds * (o->n_modes * o->n_intervals + 1);
	double v[MAX_ROUNDS * (N_MODES * N_INTERVALS + 1)];

	jopen(NULL, '{');
	printf("\"state_keys\": %" PRIu64 ", \"state_bytes\": %" PRIu64 ", \"off_runs\": %u",
	       ts->keys, ts->state_bytes, n_off);
	for (unsigned b = 0; b < N_BASES; b++) {
		unsigned n = 0;
		for (unsigned r = 0; r < o->rounds; r++)
			for (unsigned k = 0; k <= o->n_modes * o->n_intervals; k++)
				v[n++] = rate_of(&ts->off[r][k], (enum basis)b);
		printf(", \"off_records_per_%s_s\": %.0f", basis_name[b], bench_median(v, n));
	}
	printf(",\n     \"runs\": [");
	for (unsigned m = 0; m < o->n_modes; m++)
		for (unsigned i = 0; i < o->n_intervals; i++) {
			const struct run_result *last = &ts->on[m][i][o->rounds - 1];

			printf("%s\n      {\"mode\": \"%s\", \"interval_ms\": %" PRIu64,
			       m + i ? "," : "", sl_ckpt_mode_name(o->modes[m]), o->intervals_ms[i]);
			for (unsigned b = 0; b < N_BASES; b++) {
				for (unsigned r = 0; r < o->rounds; r++)
					v[r] = rate_of(&ts->on[m][i][r], (enum basis)b);
				printf(", \"records_per_%s_s\": %.0f, \"ratio_%s\": %.4f, \"ratios_%s\": [",
				       basis_name[b], bench_median(v, o->rounds), basis_name[b],
				       tp_ratio_median(o, ts, m, i, (enum basis)b), basis_name[b]);
				for (unsigned r = 0; r < o->rounds; r++)
					printf("%s%.4f", r ? ", " : "",
					       tp_ratio(o, ts, m, i, r, (enum basis)b));
				printf("]");
			}
			printf(", \"ratio_projected_dedicated_core\": %.4f, \"ratios_projected\": [",
			       tp_projected_median(o, ts, m, i));
			for (unsigned r = 0; r < o->rounds; r++)
				printf("%s%.4f", r ? ", " : "", tp_projected(o, ts, m, i, r));
			printf("]");
			printf(",\n       \"last_round\": {\"worker_cpu_share\": %.2f",
			       last->worker_cpu_share);
			jckpt(last);
			printf(", \"writeout_bytes_per_s\": ");
			jnum("%.0f", last->ck.max_async_ns
				     ? last->ck.max_written_bytes / (last->ck.max_async_ns / 1e9)
				     : NAN);
			printf("}}");
		}
	printf("]}");
}

/* "aligned,unaligned,..." into o->modes; -1 naming the bad word. */
static int parse_modes(struct opts *o, const char *list)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	o->n_modes = 0;
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		unsigned m;
		for (m = 0; m < N_MODES; m++)
			if (strcmp(w, sl_ckpt_mode_name((enum sl_ckpt_mode)m)) == 0)
				break;
		if (m == N_MODES || o->n_modes == N_MODES) {
			fprintf(stderr, "bench: --modes: '%s' is not one of aligned, unaligned, aligned-with-timeout, at-least-once (each at most once)\n",
				w);
			return -1;
		}
		o->modes[o->n_modes++] = (enum sl_ckpt_mode)m;
	}
	return o->n_modes > 0 ? 0 : -1;
}

static int parse_intervals(struct opts *o, const char *list)
{
	char buf[256], *save = NULL, *end;

	snprintf(buf, sizeof(buf), "%s", list);
	o->n_intervals = 0;
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		unsigned long long v = strtoull(w, &end, 10);
		if (*end != '\0' || v == 0 || o->n_intervals == N_INTERVALS) {
			fprintf(stderr, "bench: --intervals: '%s': give up to %d intervals in ms above 0, e.g. 1000,100\n",
				w, N_INTERVALS);
			return -1;
		}
		o->intervals_ms[o->n_intervals++] = v;
	}
	return o->n_intervals > 0 ? 0 : -1;
}

static void print_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [options] [-- EAL args]\n"
		"  --quick                 ~2 minutes: 64 MiB throughput only, 1 round, short runs\n"
		"  --sections LIST         disk,throughput,latency,writeout,pause,backpressure (all)\n"
		"  --modes LIST            checkpoint modes to compare with off (all four:\n"
		"                          aligned,unaligned,aligned-with-timeout,at-least-once)\n"
		"  --intervals LIST        checkpoint intervals in ms (1000,100)\n"
		"  --duration S            measured seconds per throughput run (8; quick 2)\n"
		"  --rounds R              rounds of the alternating sequence (2; quick 1)\n"
		"  --small-keys N          keys of the small state (1000000 = 64 MiB)\n"
		"  --large-keys N          keys of the large state (16000000 = 1 GiB)\n"
		"  --huge-keys N           keys of the huge state, pause only (64000000 = 4 GiB;\n"
		"                          0 skips; quick: 0)\n"
		"  --no-large-throughput   throughput runs with the small state only (quick)\n"
		"  --aligned-timeout-ms T  aligned-checkpoint-timeout of that mode (10)\n"
		"  --latency-rate R        records/s of the latency runs (200000)\n"
		"  --latency-duration S    measured seconds per latency run (8; quick 2)\n"
		"  --writeout-rate R       records/s during the write-out runs (100000)\n"
		"  --writeout-duration S   measured seconds of the write-out run (15; quick 6)\n"
		"  --disk-bytes B          bytes of each disk measurement (1 GiB; quick 256 MiB)\n"
		"  --slow-us U             backpressure: sleep per batch of the slow sink (2000)\n"
		"  --backpressure-duration S  seconds per backpressure run (12; quick 5)\n"
		"  --dir DIR               checkpoint root (/var/tmp/sluice-bench-<pid>; removed)\n"
		"Default EAL: --no-huge --no-pci --lcores (0,2)@0,1@1\n",
		prog);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.duration_s = 8, .rounds = 2, .small_keys = 1000000,
		.large_keys = 16000000, .huge_keys = 64000000,
		.throughput_large = true, .aligned_timeout_ms = 10,
		.latency_rate = 2e5, .latency_s = 8, .writeout_rate = 1e5,
		.writeout_s = 15, .disk_bytes = 1u << 30, .slow_us = 2000,
		.backpressure_s = 12,
		.sections = "disk,throughput,latency,writeout,pause,backpressure",
		.n_modes = N_MODES,
		.modes = { SL_CKPT_ALIGNED, SL_CKPT_UNALIGNED, SL_CKPT_ALIGNED_TIMEOUT,
			   SL_CKPT_AT_LEAST_ONCE },
		.n_intervals = 2,
		.intervals_ms = { 1000, 100 },
	};
	bool set_duration = false, set_rounds = false, set_huge = false;
	bool set_lat = false, set_wo = false, set_disk = false, set_bp = false;
	static const struct option lopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "sections", required_argument, NULL, 'S' },
		{ "modes", required_argument, NULL, 'M' },
		{ "intervals", required_argument, NULL, 'I' },
		{ "duration", required_argument, NULL, 'd' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "small-keys", required_argument, NULL, 's' },
		{ "large-keys", required_argument, NULL, 'l' },
		{ "huge-keys", required_argument, NULL, 'H' },
		{ "no-large-throughput", no_argument, NULL, 'N' },
		{ "aligned-timeout-ms", required_argument, NULL, 'a' },
		{ "latency-rate", required_argument, NULL, 'L' },
		{ "latency-duration", required_argument, NULL, 'D' },
		{ "writeout-rate", required_argument, NULL, 'w' },
		{ "writeout-duration", required_argument, NULL, 'W' },
		{ "disk-bytes", required_argument, NULL, 'B' },
		{ "slow-us", required_argument, NULL, 'u' },
		{ "backpressure-duration", required_argument, NULL, 'P' },
		{ "dir", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char prefix[64];
	char *eal_default[] = { argv[0], "--no-huge", "--no-pci", "--no-telemetry",
				"--log-level=lib.eal:error", "--lcores", "(0,2)@0,1@1",
				prefix, NULL };
	int opt, idx, eal_at = argc;
	char *end;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			eal_at = i;
			break;
		}
	while ((opt = getopt_long(eal_at, argv, "h", lopts, &idx)) != -1) {
		errno = 0;
		end = NULL;
		switch (opt) {
		case 'q': o.quick = true; break;
		case 'S': snprintf(o.sections, sizeof(o.sections), "%s", optarg); break;
		case 'M':
			if (parse_modes(&o, optarg) < 0)
				return 2;
			break;
		case 'I':
			if (parse_intervals(&o, optarg) < 0)
				return 2;
			break;
		case 'd': o.duration_s = strtod(optarg, &end); set_duration = true; break;
		case 'r': o.rounds = (unsigned)strtoul(optarg, &end, 0); set_rounds = true; break;
		case 's': o.small_keys = strtoull(optarg, &end, 0); break;
		case 'l': o.large_keys = strtoull(optarg, &end, 0); break;
		case 'H': o.huge_keys = strtoull(optarg, &end, 0); set_huge = true; break;
		case 'N': o.throughput_large = false; break;
		case 'a': o.aligned_timeout_ms = strtoull(optarg, &end, 0); break;
		case 'L': o.latency_rate = strtod(optarg, &end); break;
		case 'D': o.latency_s = strtod(optarg, &end); set_lat = true; break;
		case 'w': o.writeout_rate = strtod(optarg, &end); break;
		case 'W': o.writeout_s = strtod(optarg, &end); set_wo = true; break;
		case 'B': o.disk_bytes = strtoull(optarg, &end, 0); set_disk = true; break;
		case 'u': o.slow_us = (uint32_t)strtoul(optarg, &end, 0); break;
		case 'P': o.backpressure_s = strtod(optarg, &end); set_bp = true; break;
		case 'o': snprintf(o.dir, sizeof(o.dir), "%s", optarg); break;
		case 'h':
			print_usage(argv[0]);
			return 0;
		default:
			print_usage(argv[0]);
			return 2;
		}
		if (end != NULL && (errno != 0 || end == optarg || *end != '\0')) {
			fprintf(stderr, "bench: --%s: '%s' is not a number\n",
				lopts[idx].name, optarg);
			return 2;
		}
	}
	if (o.quick) {
		if (!set_duration) o.duration_s = 2;
		if (!set_rounds) o.rounds = 1;
		if (!set_huge) o.huge_keys = 0;
		if (!set_lat) o.latency_s = 2;
		if (!set_wo) o.writeout_s = 6;
		if (!set_disk) o.disk_bytes = 256u << 20;
		if (!set_bp) o.backpressure_s = 5;
		o.throughput_large = false;
	}
	if (o.rounds < 1 || o.rounds > MAX_ROUNDS || !(o.duration_s > 0) ||
	    o.small_keys < 1 || o.large_keys < 1 || !(o.latency_rate > 0) ||
	    !(o.writeout_rate > 0) || o.disk_bytes == 0) {
		fprintf(stderr, "bench: rounds must be 1..%d; durations, key counts, rates and --disk-bytes above 0\n",
			MAX_ROUNDS);
		return 2;
	}
	{
		static const char *const known[] = { "disk", "throughput", "latency",
						      "writeout", "pause", "backpressure" };
		char buf[sizeof(o.sections)], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", o.sections);
		for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
			unsigned k = 0;
			while (k < RTE_DIM(known) && strcmp(w, known[k]) != 0)
				k++;
			if (k == RTE_DIM(known)) {
				fprintf(stderr, "bench: --sections: '%s' is not one of disk, throughput, latency, writeout, pause, backpressure\n",
					w);
				return 2;
			}
		}
	}
	if (o.dir[0] == '\0')
		snprintf(o.dir, sizeof(o.dir), "/var/tmp/sluice-bench-%d", (int)getpid());
	if (mkdir(o.dir, 0700) < 0) {
		fprintf(stderr, "bench: --dir %s: cannot create it: %s; give a new directory on the disk to measure\n",
			o.dir, strerror(errno));
		return 2;
	}
	snprintf(root_dir, sizeof(root_dir), "%s", o.dir);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	snprintf(prefix, sizeof(prefix), "--file-prefix=ckbench%d", getpid());
	int rc = eal_at < argc
		? (argv[eal_at] = argv[0], sl_eal_init(argc - eal_at, argv + eal_at, 512u << 20))
		: sl_eal_init(8, eal_default, 512u << 20);
	if (rc < 0)
		return 1;
	snprintf(eal_runtime_dir, sizeof(eal_runtime_dir), "%s", rte_eal_get_runtime_dir());
	if (!rte_lcore_is_enabled(1) || !rte_lcore_is_enabled(2)) {
		fprintf(stderr, "bench: needs worker lcores 1 and 2 (e.g. --lcores '(0,2)@0,1@1')\n");
		return 2;
	}
	feed_ops_init();
	snprintf(main_schedstat, sizeof(main_schedstat), "/proc/self/task/%d/schedstat",
		 (int)getpid());
	double t_start = bench_now_s();

	/* ---- run every section, then print */
	double disk_before = NAN, disk_after = NAN;
	static struct tp_size tp[2];
	unsigned n_tp = 0;
	struct run_result lat_res[1 + N_MODES];
	static struct lat_hist lat_hist[1 + N_MODES];
	struct run_result wo_res = { 0 };
	struct run_result bp_res[2];
	bool did_lat = false, did_wo = false, did_bp = false;

	if (section_on(&o, "disk"))
		disk_before = disk_bw(&o);

	if (section_on(&o, "throughput")) {
		tp[n_tp++].keys = o.small_keys;
		if (o.throughput_large)
			tp[n_tp++].keys = o.large_keys;
		for (unsigned k = 0; k < n_tp; k++)
			throughput_size(&o, &tp[k]);
	}

	if (section_on(&o, "latency")) {
		for (unsigned m = 0; m <= o.n_modes; m++) {
			struct run_spec r = { .keys = o.small_keys,
					      .measure_s = o.latency_s,
					      .gen_rate = o.latency_rate,
					      .lat = &lat_hist[m] };
			if (m > 0) {
				r.ckpt = true;
				r.mode = o.modes[m - 1];
				r.interval_ms = 1000;
			}
			run_job(&o, &r, &lat_res[m]);
			log_run("latency", &r, &lat_res[m]);
			fprintf(stderr, "             p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us over %" PRIu64 " records\n",
				lat_quantile(&lat_hist[m], 0.5) / 1e3,
				lat_quantile(&lat_hist[m], 0.99) / 1e3,
				lat_quantile(&lat_hist[m], 0.999) / 1e3,
				lat_hist[m].max / 1e3, lat_hist[m].count);
		}
		did_lat = true;
	}

	if (section_on(&o, "writeout")) {
		/* the large state, written out while the job runs below
		 * capacity */
		struct run_spec r = { .keys = o.large_keys, .ckpt = true,
				      .mode = SL_CKPT_UNALIGNED, .interval_ms = 1000,
				      .measure_s = o.writeout_s,
				      .feed_rate = o.writeout_rate,
				      .summary_window = true };
		run_job(&o, &r, &wo_res);
		log_run("writeout", &r, &wo_res);
		did_wo = true;
	}

	if (section_on(&o, "pause")) {
		/* every checkpointed run above counts; run what is missing */
		const uint64_t sizes[3] = { o.small_keys, o.large_keys, o.huge_keys };
		for (unsigned k = 0; k < 3; k++) {
			struct run_result res;
			/* long enough after the fill for a full write-out of the
			 * state while the job runs below capacity */
			struct run_spec r = { .keys = sizes[k], .ckpt = true,
					      .mode = SL_CKPT_UNALIGNED,
					      .interval_ms = 1000,
					      .measure_s = o.writeout_s * (k == 2 ? 2 : 1),
					      .feed_rate = o.writeout_rate };
			if (sizes[k] == 0 || pause_find(sizes[k]) != NULL)
				continue;
			run_job(&o, &r, &res);
			log_run("pause", &r, &res);
		}
	}

	if (section_on(&o, "backpressure")) {
		for (unsigned k = 0; k < 2; k++) {
			struct run_spec r = { .keys = 10000, .ckpt = true,
					      .mode = k == 0 ? SL_CKPT_ALIGNED
							     : SL_CKPT_UNALIGNED,
					      .interval_ms = 2000,
					      .measure_s = o.backpressure_s,
					      .slow_us = o.slow_us };
			run_job(&o, &r, &bp_res[k]);
			log_run("backpressure", &r, &bp_res[k]);
		}
		did_bp = true;
	}

	if (section_on(&o, "disk"))
		disk_after = disk_bw(&o);
	double disk = isfinite(disk_before) && isfinite(disk_after)
			      ? (disk_before + disk_after) / 2
			      : isfinite(disk_before) ? disk_before : disk_after;

	/* ---- JSON */
	printf("{\n  \"benchmark\": \"checkpoint overhead\",\n  \"command\": \"");
	for (int i = 0; i < argc; i++)
		printf("%s%s", i ? " " : "", i == eal_at ? "--" : argv[i]);
	printf("\",\n  \"config\": {\"quick\": %s, \"duration_s\": %g, \"rounds\": %u, "
	       "\"small_keys\": %" PRIu64 ", \"large_keys\": %" PRIu64 ", \"huge_keys\": %" PRIu64
	       ", \"aligned_timeout_ms\": %" PRIu64 ", \"latency_rate\": %g, \"writeout_rate\": %g"
	       ", \"slow_us\": %u, \"dir\": \"%s\"}",
	       o.quick ? "true" : "false", o.duration_s, o.rounds, o.small_keys,
	       o.large_keys, o.huge_keys, o.aligned_timeout_ms, o.latency_rate,
	       o.writeout_rate, o.slow_us, o.dir);
	json_first = false;
	if (section_on(&o, "disk")) {
		jopen("disk_write_bytes_per_s", '{');
		printf("\"before\": ");
		jnum("%.0f", disk_before);
		printf(", \"after\": ");
		jnum("%.0f", disk_after);
		printf(", \"mean\": ");
		jnum("%.0f", disk);
		printf("}");
	}
	if (n_tp > 0) {
		jopen("throughput", '[');
		json_first = true;
		for (unsigned k = 0; k < n_tp; k++)
			print_throughput(&o, &tp[k]);
		printf("]");
		json_first = false;
	}
	if (did_lat) {
		jopen("latency", '[');
		for (unsigned m = 0; m <= o.n_modes; m++) {
			const struct lat_hist *h = &lat_hist[m];
			printf("%s\n    {\"mode\": \"%s\", \"interval_ms\": %d, \"records\": %" PRIu64
			       ", \"rate\": %.0f, \"p50_us\": ",
			       m ? "," : "", m ? sl_ckpt_mode_name(o.modes[m - 1]) : "off",
			       m ? 1000 : 0, h->count, lat_res[m].records_per_s);
			jnum("%.1f", lat_quantile(h, 0.5) / 1e3);
			printf(", \"p99_us\": ");
			jnum("%.1f", lat_quantile(h, 0.99) / 1e3);
			printf(", \"p999_us\": ");
			jnum("%.1f", lat_quantile(h, 0.999) / 1e3);
			printf(", \"max_us\": %.1f", h->max / 1e3);
			if (m > 0)
				jckpt(&lat_res[m]);
			printf("}");
		}
		printf("]");
	}
	double wo_bw = NAN;
	if (did_wo) {
		const struct sl_job_checkpoints *k = &wo_res.ck;
		wo_bw = k->max_async_ns ? k->max_written_bytes / (k->max_async_ns / 1e9) : NAN;
		jopen("writeout", '{');
		printf("\"state_keys\": %" PRIu64 ", \"rate\": %.0f, \"bytes_per_s_slowest\": ",
		       o.large_keys, wo_res.records_per_s);
		jnum("%.0f", wo_bw);
		printf(", \"disk_bytes_per_s\": ");
		jnum("%.0f", disk);
		printf(", \"ratio_to_disk\": ");
		jnum("%.3f", wo_bw / disk);
		jckpt(&wo_res);
		printf("}");
	}
	if (section_on(&o, "pause")) {
		jopen("sync_pause", '[');
		for (unsigned i = 0; i < PAUSE_SIZES && pauses[i].n > 0; i++) {
			const struct pause_stats *p = &pauses[i];
			printf("%s\n    {\"state_keys\": %" PRIu64 ", \"state_bytes\": %" PRIu64
			       ", \"runs\": %u, \"max_sync_us\": %.1f, \"median_run_max_sync_us\": %.1f"
			       ", \"run_max_sync_us\": [",
			       i ? "," : "", p->keys, p->state_bytes, p->n, pause_max(p),
			       bench_median(p->max_us, p->n));
			for (unsigned k = 0; k < p->n; k++)
				printf("%s%.1f", k ? ", " : "", p->max_us[k]);
			printf("]}");
		}
		printf("]");
	}
	double bp_ratio = NAN;
	if (did_bp) {
		/* conservative: the fastest aligned one over the slowest unaligned one */
		bp_ratio = bp_res[1].ck.max_duration_ns
				   ? (double)bp_res[0].ck.min_duration_ns / bp_res[1].ck.max_duration_ns
				   : NAN;
		jopen("backpressure", '{');
		printf("\"slow_us_per_batch\": %u", o.slow_us);
		for (unsigned k = 0; k < 2; k++) {
			printf(",\n    \"%s\": {\"records_per_s\": %.0f", k ? "unaligned" : "aligned",
			       bp_res[k].records_per_s);
			jckpt(&bp_res[k]);
			printf(", \"min_inflight_bytes\": %" PRIu64 "}", bp_res[k].ck.min_inflight_bytes);
		}
		printf(",\n    \"aligned_min_over_unaligned_max\": ");
		jnum("%.1f", bp_ratio);
		printf(", \"aligned_max_over_unaligned_max\": ");
		jnum("%.1f", bp_res[1].ck.max_duration_ns
				? (double)bp_res[0].ck.max_duration_ns / bp_res[1].ck.max_duration_ns
				: NAN);
		printf("}");
	}

	/* ---- targets of issue 3 */
	int um = -1, si = -1;
	for (unsigned m = 0; m < o.n_modes; m++)
		if (o.modes[m] == SL_CKPT_UNALIGNED)
			um = (int)m;
	for (unsigned i = 0; i < o.n_intervals; i++)
		if (o.intervals_ms[i] == 1000)
			si = (int)i;
	for (unsigned k = 0; k < n_tp && um >= 0 && si >= 0; k++)
		for (unsigned b = 0; b < N_BASES; b++) {
			char name[96];
			snprintf(name, sizeof(name),
				 "throughput unaligned 1 s / off, %.0f MiB state, %s",
				 tp[k].state_bytes / MIB, basis_name[b]);
			target(name, tp_ratio_median(&o, &tp[k], (unsigned)um, (unsigned)si,
						     (enum basis)b), ">=", 0.97);
			if (b == N_BASES - 1) {
				snprintf(name, sizeof(name),
					 "throughput unaligned 1 s / off, %.0f MiB state, projected dedicated core",
					 tp[k].state_bytes / MIB);
				target(name, tp_projected_median(&o, &tp[k], (unsigned)um,
								 (unsigned)si), ">=", 0.97);
			}
		}
	if (pause_find(o.large_keys) != NULL) {
		char name[96];
		snprintf(name, sizeof(name), "sync pause, longest of any checkpoint, %.0f MiB state (us)",
			 pause_find(o.large_keys)->state_bytes / MIB);
		target(name, pause_max(pause_find(o.large_keys)), "<", 100);
	}
	if (did_wo)
		target("write-out bandwidth / disk bandwidth", wo_bw / disk, ">=", 0.80);
	if (did_bp)
		target("aligned / unaligned checkpoint duration under backpressure",
		       bp_ratio, ">=", 50);
	jopen("targets", '[');
	for (unsigned k = 0; k < n_targets; k++) {
		printf("%s\n    {\"what\": \"%s\", \"value\": ", k ? "," : "", targets[k].name);
		jnum("%.4g", targets[k].value);
		printf(", \"target\": \"%s %g\", \"met\": %s}", targets[k].cmp, targets[k].bound,
		       targets[k].met ? "true" : "false");
	}
	printf("]");
	printf(",\n  \"wall_s\": %.0f\n}\n", bench_now_s() - t_start);
	rte_eal_cleanup();
	return 0;
}
