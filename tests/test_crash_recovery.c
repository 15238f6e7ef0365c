/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash harness: end-to-end exactly-once, proven by killing the process.
 *
 * Each test runs a real `sluice run` process on a job with a keyed
 * aggregation and a slow path,
 *
 *   generator(2) --hash(key)--> keyed count(2) --rebalance--> file-sink(1)
 *                                              \-rebalance--> count-sink(1),
 *                                                             slow
 *
 * kills it with SIGKILL, restarts it with `--restore latest`, and repeats;
 * then lets it finish and compares the committed output (the file sink's
 * committed part files) with what the generator's definition says: the
 * rolling count emits (key, c) for c = 1..n(key), so every pair must be
 * there exactly once.  A loss leaves a pair missing; a duplicate shows a
 * pair twice.
 *
 * Kills come at random moments and at named crash points (the process
 * kills itself with SIGKILL when it reaches one; SLUICE_CRASH_AT, see
 * include/sluice/crash_point.h): during alignment, during the keyed-state
 * write-out, between the temp metadata and its rename, and between the
 * renames of a sink commit.
 *
 * Seeds are printed; SLUICE_CRASH_SEED=S replays one, and
 * SLUICE_CRASH_CYCLES=N sets the kills per test (CI runs a few; the full
 * run is 50 or more).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rm_tree.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define SLUICE SL_BUILD_ROOT "/sluice"
#define KEYS 500
#define RECORDS 300000
#define GEN_SEED 7
#define ALO_MAX_CYCLES 40

enum mode { ALIGNED, UNALIGNED, ALIGNED_TIMEOUT, AT_LEAST_ONCE };

static const char *const mode_keys[] = {
	[ALIGNED] = "",
	[UNALIGNED] = "  execution.checkpointing.unaligned.enabled: true\n",
	[ALIGNED_TIMEOUT] = "  execution.checkpointing.unaligned.enabled: true\n"
			    "  execution.checkpointing.aligned-checkpoint-timeout: 2ms\n",
	[AT_LEAST_ONCE] = "  execution.checkpointing.mode: AT_LEAST_ONCE\n",
};
static const char *const mode_names[] = { "aligned", "unaligned",
					  "aligned-with-timeout", "at-least-once" };

/* Crash points the harness aims at, cycled through with random kills. */
static const char *const crash_points[] = {
	"alignment", "state-write", "metadata-rename", "sink-commit",
};

struct harness {
	enum mode mode;
	char dir[64];
	char job[128];
	char ck[128];
	char out[128];
	uint64_t seed;
	unsigned cycles;
	unsigned restores;    /* runs started with --restore */
	unsigned inflight_restores; /* of them, from a checkpoint with
				     * channel state */
	unsigned point_kills; /* runs that died at a crash point */
	unsigned time_kills;  /* runs killed by the harness */
	unsigned streams;     /* streams run to the end and checked */
};

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void write_job(const struct harness *h)
{
	FILE *f = fopen(h->job, "w");

	cr_assert_not_null(f);
	fprintf(f,
		"job: crash\n"
		"config:\n"
		"  parallelism.default: 2\n"
		"  execution.buffer-timeout: 1ms\n"
		"  execution.checkpointing.interval: 40ms\n"
		"%s"
		"  state.checkpoints.dir: %s\n"
		"  state.checkpoints.num-retained: 3\n"
		"schemas:\n"
		"  events:\n"
		"    - {name: key, type: u64}\n"
		"    - {name: ts, type: timestamp}\n"
		"    - {name: value, type: i64}\n"
		"operators:\n"
		"  - uid: gen\n"
		"    type: generator\n"
		"    schema: events\n"
		"    seed: %d\n"
		"    count: %d\n"
		"    rate: 400000\n"
		"    key-field: key\n"
		"    key-cardinality: %d\n"
		"    timestamp-field: ts\n"
		"  - uid: counts\n"
		"    type: keyed-aggregate\n"
		"    input: {from: gen, partition: hash, key: key}\n"
		"    key: key\n"
		"    aggregates:\n"
		"      - {fn: count, as: count}\n"
		"  - uid: out\n"
		"    type: file-sink\n"
		"    parallelism: 1\n"
		"    input: {from: counts, partition: rebalance}\n"
		"    path: %s/counts.csv\n"
		"    format: csv\n"
		"  - uid: slow\n"
		"    type: count-sink\n"
		"    parallelism: 1\n"
		"    input: {from: counts, partition: rebalance}\n"
		"    delay-per-batch: 300us\n"
		"layout:\n"
		"  batch-size: 64\n"
		"  ring-size: 16\n"
		"eal: [--no-huge, --no-pci, --no-telemetry, --log-level=lib.eal:error,"
		" \"--lcores=(0-2)@(0-1)\"]\n",
		mode_keys[h->mode], h->ck, GEN_SEED, RECORDS, KEYS, h->out);
	fclose(f);
}

/* A complete checkpoint exists (its _metadata was published). */
static bool have_checkpoint(const struct harness *h)
{
	DIR *d = opendir(h->ck);
	struct dirent *de;
	bool found = false;

	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		char meta[512];
		if (strncmp(de->d_name, "chk-", 4) != 0)
			continue;
		snprintf(meta, sizeof(meta), "%s/%s/_metadata", h->ck, de->d_name);
		found = access(meta, F_OK) == 0;
	}
	closedir(d);
	return found;
}

/* The checkpoint `--restore latest` takes holds channel state. */
static bool latest_has_channel_state(const struct harness *h)
{
	struct sl_snap_metadata *m = NULL;
	uint64_t id;
	bool found = false;

	if (sl_snap_chk_latest(h->ck, &id, &m, NULL) != 0)
		return false;
	for (uint32_t o = 0; o < m->n_operators; o++)
		for (uint32_t s = 0; s < m->operators[o].parallelism; s++)
			for (uint32_t f = 0; f < m->operators[o].subtasks[s].n_files; f++)
				found |= m->operators[o].subtasks[s].files[f].type ==
					 SL_SNAP_FILE_CHANNEL;
	sl_snap_meta_free(m);
	return found;
}

/*
 * Start sluice: with --restore latest once a checkpoint exists.  With
 * `point`, the process kills itself at that crash point.
 */
static pid_t launch(struct harness *h, const char *point, unsigned nth,
		    bool *restored)
{
	char prefix[64], log[160], crash[96], sock[160];
	pid_t pid;

	*restored = have_checkpoint(h);
	h->restores += *restored;
	h->inflight_restores += *restored && latest_has_channel_state(h);
	snprintf(prefix, sizeof(prefix), "--file-prefix=crash%d", (int)getpid());
	snprintf(log, sizeof(log), "%s/run.log", h->dir);
	snprintf(sock, sizeof(sock), "%s/ctl.sock", h->dir);
	snprintf(crash, sizeof(crash), "%s:%u", point ? point : "", nth);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (point != NULL)
			setenv("SLUICE_CRASH_AT", crash, 1);
		if (*restored)
			execl(SLUICE, SLUICE, "run", h->job, "--quiet", "--control-socket",
			      sock, "--restore", "latest", "--", prefix, (char *)NULL);
		else
			execl(SLUICE, SLUICE, "run", h->job, "--quiet", "--control-socket",
			      sock, "--", prefix, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void show_log(const struct harness *h)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "tail -n 30 %s/run.log >&2", h->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
}

/* Wait for the child; returns its exit status, or 128 + signal. */
static int reap(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Poll for exit for up to `ms`; -1 if still running. */
static int wait_for(pid_t pid, unsigned ms)
{
	for (unsigned t = 0; t < ms; t++) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		cr_assert_geq(r, 0);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(1000);
	}
	return -1;
}

/*
 * One cycle: start, then either kill at a random moment or let a crash
 * point kill it.  Returns true if the run finished on its own.
 */
static bool cycle(struct harness *h, unsigned i, uint64_t *rng)
{
	bool restored, at_point = i % 2 == 1;
	const char *point = at_point ? crash_points[(i / 2) % 4] : NULL;
	unsigned nth = 1 + (unsigned)(rng_next(rng) % 3);
	unsigned kill_ms = 30 + (unsigned)(rng_next(rng) % 700);
	pid_t pid = launch(h, point, nth, &restored);
	int st;

	if (at_point) {
		/* the point may not come (e.g. no alignment in this mode, or
		 * the run ends first): then kill at the random moment */
		st = wait_for(pid, kill_ms + 1500);
		if (st == 128 + SIGKILL) {
			h->point_kills++;
			fprintf(stderr, "  cycle %u: died at crash point %s:%u (%s)\n", i,
				point, nth, restored ? "restored" : "fresh");
			return false;
		}
	} else {
		/* a loaded machine may start slowly: once the job has run
		 * without a complete checkpoint, the kill waits for one, so
		 * that later runs restore */
		st = -1;
		if (i > 0 && !have_checkpoint(h))
			for (unsigned t = 0; t < 30000 && st < 0 && !have_checkpoint(h); t += 10)
				st = wait_for(pid, 10);
		if (st < 0)
			st = wait_for(pid, kill_ms);
	}
	if (st < 0) {
		kill(pid, SIGKILL);
		st = reap(pid);
		if (st == 128 + SIGKILL) {
			h->time_kills++;
			fprintf(stderr, "  cycle %u: killed after %u ms (%s)\n", i, kill_ms,
				restored ? "restored" : "fresh");
			return false;
		}
	}
	if (st != 0)
		show_log(h);
	cr_assert_eq(st, 0, "cycle %u (%s%s): sluice exited with %d; seed %" PRIu64, i,
		     restored ? "restored" : "fresh", point ? ", crash point armed" : "", st,
		     h->seed);
	fprintf(stderr, "  cycle %u: finished before the kill (%s)\n", i,
		restored ? "restored" : "fresh");
	return true;
}

/* Expected final count of every key over the whole stream. */
static void expected_counts(uint64_t *n)
{
	struct sl_generator_conf g;
	struct {
		uint64_t key;
		int64_t ts;
		int64_t value;
	} r;

	sl_generator_conf_defaults(&g);
	sl_schema_add(&g.schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g.schema, "ts", SL_TYPE_TIMESTAMP, 0);
	sl_schema_add(&g.schema, "value", SL_TYPE_I64, 0);
	g.seed = GEN_SEED;
	g.count = RECORDS;
	g.key_cardinality = KEYS;
	memset(n, 0, KEYS * sizeof(*n));
	for (uint64_t i = 0; i < RECORDS; i++) {
		sl_generator_record(&g, i, &r);
		cr_assert_lt(r.key, KEYS);
		n[r.key]++;
	}
}

struct verdict {
	uint64_t rows, missing, duplicated, beyond;
	unsigned parts, pending;
};

/*
 * Read every committed part: count how often each (key, c) appears.
 * seen[key][c-1] for c <= n(key); counts beyond n(key) go to `beyond`.
 */
static void read_output(const struct harness *h, const uint64_t *n,
			struct verdict *v)
{
	uint32_t *seen[KEYS];
	DIR *d = opendir(h->out);
	struct dirent *de;

	cr_assert_not_null(d);
	memset(v, 0, sizeof(*v));
	for (unsigned k = 0; k < KEYS; k++)
		seen[k] = calloc(n[k] + 1, sizeof(uint32_t));
	while ((de = readdir(d)) != NULL) {
		char path[512], line[128];
		FILE *f;

		if (strstr(de->d_name, ".pending") != NULL)
			v->pending++;
		if (strncmp(de->d_name, "counts.part-", 12) != 0)
			continue;
		v->parts++;
		snprintf(path, sizeof(path), "%s/%s", h->out, de->d_name);
		f = fopen(path, "r");
		cr_assert_not_null(f, "%s", path);
		cr_assert_not_null(fgets(line, sizeof(line), f), "%s is empty", path);
		cr_assert_str_eq(line, "key,count\n", "%s", path);
		while (fgets(line, sizeof(line), f) != NULL) {
			uint64_t key, c;
			cr_assert_eq(sscanf(line, "%" SCNu64 ",%" SCNu64, &key, &c), 2,
				     "%s: '%s'", path, line);
			cr_assert_lt(key, KEYS, "%s", path);
			cr_assert_geq(c, 1, "%s", path);
			v->rows++;
			if (c > n[key])
				v->beyond++;
			else
				seen[key][c - 1]++;
		}
		fclose(f);
	}
	closedir(d);
	for (unsigned k = 0; k < KEYS; k++) {
		for (uint64_t c = 0; c < n[k]; c++) {
			v->missing += seen[k][c] == 0;
			v->duplicated += seen[k][c] > 1 ? seen[k][c] - 1 : 0;
		}
		free(seen[k]);
	}
}

/*
 * The stream ran to its end: check its committed output.  Nothing may be
 * missing in any mode; the exactly-once modes hold every row once.
 * Returns the duplicated rows (at-least-once).
 */
static uint64_t check_stream(struct harness *h, const uint64_t *n)
{
	struct verdict v;

	read_output(h, n, &v);
	h->streams++;
	fprintf(stderr,
		"  stream %u: committed %" PRIu64 " rows in %u parts: %" PRIu64 " missing, %" PRIu64
		" duplicated, %" PRIu64 " beyond the true count\n",
		h->streams, v.rows, v.parts, v.missing, v.duplicated, v.beyond);
	cr_assert_eq(v.pending, 0, "a finished job leaves nothing pending");
	cr_assert_eq(v.missing, 0, "%s: %" PRIu64 " (key, count) rows lost; seed %" PRIu64,
		     mode_names[h->mode], v.missing, h->seed);
	if (h->mode != AT_LEAST_ONCE) {
		cr_assert_eq(v.duplicated + v.beyond, 0,
			     "%s: %" PRIu64 " rows duplicated, %" PRIu64
			     " counts beyond the truth; seed %" PRIu64,
			     mode_names[h->mode], v.duplicated, v.beyond, h->seed);
		cr_assert_eq(v.rows, (uint64_t)RECORDS);
	}
	return v.duplicated + v.beyond;
}

static void run_harness(enum mode mode, unsigned default_cycles)
{
	struct harness h = { .mode = mode };
	uint64_t n[KEYS], rng;
	struct verdict v;
	uint64_t dups = 0;
	unsigned i;

	h.seed = env_u64("SLUICE_CRASH_SEED", (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16);
	h.cycles = (unsigned)env_u64("SLUICE_CRASH_CYCLES", default_cycles);
	rng = h.seed;
	snprintf(h.dir, sizeof(h.dir), "/tmp/sl-crash-XXXXXX");
	cr_assert_not_null(mkdtemp(h.dir));
	snprintf(h.job, sizeof(h.job), "%s/job.yaml", h.dir);
	snprintf(h.ck, sizeof(h.ck), "%s/ck", h.dir);
	snprintf(h.out, sizeof(h.out), "%s/out", h.dir);
	cr_assert_eq(mkdir(h.out, 0755), 0);
	write_job(&h);
	fprintf(stderr, "crash harness, %s: seed %" PRIu64 " (SLUICE_CRASH_SEED=%" PRIu64
		" replays it), %u kills, dir %s\n",
		mode_names[mode], h.seed, h.seed, h.cycles, h.dir);

	expected_counts(n);
	/* kill cycles; a run that finishes early has its output checked and
	 * starts the stream again in a clean directory (the kills go on).
	 * At-least-once goes on (up to ALO_MAX_CYCLES) until a restore has
	 * duplicated output: the case the test demonstrates. */
	for (i = 0; i < h.cycles || (mode == AT_LEAST_ONCE && dups == 0 &&
				     i < ALO_MAX_CYCLES); i++) {
		if (cycle(&h, i, &rng)) {
			dups += check_stream(&h, n);
			rm_tree(h.ck);
			rm_tree(h.out);
			cr_assert_eq(mkdir(h.out, 0755), 0, "%s", h.out);
		} else if (mode == AT_LEAST_ONCE && i + 1 >= h.cycles) {
			read_output(&h, n, &v);
			if (v.duplicated + v.beyond > 0)
				break;
		}
	}
	/* the last run goes to the end */
	bool restored;
	int st = reap(launch(&h, NULL, 0, &restored));
	if (st != 0)
		show_log(&h);
	cr_assert_eq(st, 0, "final run (%s) exited with %d; seed %" PRIu64,
		     restored ? "restored" : "fresh", st, h.seed);
	dups += check_stream(&h, n);
	fprintf(stderr,
		"crash harness, %s: %u kills (%u at crash points, %u at random moments), "
		"%u restores (%u with channel state), %u complete streams checked, "
		"%" PRIu64 " duplicated rows in all\n",
		mode_names[mode], h.point_kills + h.time_kills, h.point_kills, h.time_kills,
		h.restores, h.inflight_restores, h.streams, dups);
	cr_assert_geq(h.restores, 1, "some run restored from a checkpoint; seed %" PRIu64,
		      h.seed);
	/* every mode writes keyed state: the state-write point (cycle 3 on)
	 * comes, so the harness did kill inside the checkpoint protocol */
	cr_assert_geq(h.point_kills, 1, "some run died at a crash point; seed %" PRIu64,
		      h.seed);
	if (mode == UNALIGNED)
		cr_assert_geq(h.inflight_restores, 1,
			      "unaligned: some restore replayed in-flight channel state; seed %" PRIu64,
			      h.seed);
	if (mode == AT_LEAST_ONCE)
		cr_assert_gt(dups, 0,
			     "at-least-once: restoring a checkpoint taken without alignment "
			     "counts records twice (seed %" PRIu64 ")", h.seed);

	rm_tree(h.dir);
}

Test(crash, aligned_exactly_once, .timeout = 900)
{
	run_harness(ALIGNED, 4);
}

Test(crash, unaligned_exactly_once, .timeout = 900)
{
	run_harness(UNALIGNED, 4);
}

Test(crash, aligned_with_timeout_exactly_once, .timeout = 900)
{
	run_harness(ALIGNED_TIMEOUT, 4);
}

Test(crash, at_least_once_loses_nothing_and_duplicates, .timeout = 900)
{
	run_harness(AT_LEAST_ONCE, 4);
}
