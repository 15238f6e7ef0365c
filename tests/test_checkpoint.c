/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checkpoints of a running job are consistent cuts: for every complete
 * checkpoint, the generator offsets it recorded account exactly for the
 * keyed state it recorded (per key, no record missing, none counted twice).
 * The expected counts are computed here from the generator's definition.
 * Tests assert what checkpoints contain, not how long they took (the
 * machine running them may be loaded): a job that must produce a number
 * of checkpoints runs until a watcher has read them, then is stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <rte_common.h>
#include <xxhash.h>

#include "ckpt_cut.h"
#include "eal_fixture.h"
#include "gen_events.h"
#include "sluice/control_socket.h"
#include "sluice/io.h"
#include "sluice/job.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#define KEYS 1000
#define P 2

/* this suite's generator: seed 11, KEYS keys */
static void gen_conf(struct sl_generator_conf *g, uint64_t count, double rate)
{
	gen_events_conf(g, 11, count, rate, KEYS);
}

struct tally {
	uint64_t got[KEYS]; /* per key: in keyed state + in flight */
	uint64_t inflight;  /* generator records in channel state */
};

/* Keyed entries of the counting operator: key -> count. */
static void add_counts(void *arg, const char *owner, const struct sl_snap_kv *kv,
		       unsigned n)
{
	uint64_t *got = ((struct tally *)arg)->got;

	(void)owner;
	for (unsigned i = 0; i < n; i++) {
		uint64_t key, count;
		memcpy(&key, kv[i].key, 8);
		memcpy(&count, kv[i].value, 8);
		cr_assert_lt(key, KEYS);
		got[key] += count;
	}
}

/* In-flight generator records persisted as channel state count like state;
 * the counting operator's output (to the sink) is not generator records. */
static void add_inflight(void *arg, const char *owner, const char *sender,
			 const struct sl_snap_chan_batch *b)
{
	struct tally *t = arg;

	(void)owner;
	if (strcmp(sender, "gen") != 0)
		return;
	cr_assert_eq(b->record_size, sizeof(struct gen_event));
	for (uint32_t i = 0; i < b->record_count; i++) {
		const struct gen_event *r = (const struct gen_event *)b->records + i;
		cr_assert_lt(r->key, KEYS);
		t->got[r->key]++;
	}
	t->inflight += b->record_count;
}

/*
 * What the generator offsets of the checkpoints checked so far cover, per
 * key.  Checkpoints are checked oldest first and offsets only grow, so
 * each generator record is computed once for the whole run (under ASan,
 * recomputing them per checkpoint took minutes).
 */
struct covered {
	uint64_t pos[P];       /* next generator index per subtask */
	uint64_t expect[KEYS]; /* records per key below the offsets */
	uint64_t total;
};

static void covered_init(struct covered *c)
{
	memset(c, 0, sizeof(*c));
	for (uint32_t s = 0; s < P; s++)
		c->pos[s] = s;
}

/*
 * Check one complete checkpoint: the generator offsets it recorded against
 * its keyed state plus its in-flight records (channel state).  Exactly
 * equal per key for the exactly-once modes; never less for at-least-once,
 * and *over is set when some key was counted twice.  `cov` holds what
 * the previous (older) checkpoint covered and is advanced to this one's
 * offsets.  Returns the records the offsets cover.
 */
static uint64_t check_cut(const char *root, uint64_t id,
			  const struct sl_generator_conf *g, bool exact,
			  uint64_t *inflight, bool *over, struct covered *cov)
{
	const uint64_t *expect = cov->expect;
	struct tally t = { { 0 }, 0 };
	const uint64_t *got = t.got;
	struct ckpt_cut_visitor v = { .keyed = add_counts, .batch = add_inflight,
				      .arg = &t };
	char dir[4300];
	struct sl_snap_metadata *m = ckpt_cut_open(root, id, dir, sizeof(dir));
	const struct sl_snap_operator_meta *gen = ckpt_cut_operator(m, "gen");
	const struct sl_snap_operator_meta *cnt = ckpt_cut_operator(m, "count");

	cr_assert_eq(gen->parallelism, P);
	for (uint32_t s = 0; s < P; s++) {
		uint64_t next = ckpt_cut_gen_next(gen, s, g->count);
		cr_assert(next >= cov->pos[s] || cov->pos[s] >= g->count, "checkpoint %"
			  PRIu64 ": generator subtask %u's offset went back", id, s);
		for (; cov->pos[s] < next; cov->pos[s] += P) {
			struct gen_event r;
			sl_generator_record(g, cov->pos[s], &r);
			cov->expect[r.key]++;
			cov->total++;
		}
	}
	ckpt_cut_walk(dir, gen, &v);
	ckpt_cut_walk(dir, cnt, &v);
	*inflight += t.inflight;
	for (unsigned k = 0; k < KEYS; k++) {
		if (exact)
			cr_assert_eq(got[k], expect[k],
				     "checkpoint %" PRIu64 ": key %u counted %" PRIu64 " times in "
				     "state + channel state, but the recorded offsets cover %" PRIu64
				     " of its records", id, k, got[k], expect[k]);
		else
			cr_assert_geq(got[k], expect[k], "at-least-once loses nothing (key %u)", k);
		*over |= got[k] > expect[k];
	}
	sl_snap_meta_free(m);
	return cov->total;
}

/*
 * _metadata carries the coordinator's figures for its checkpoint: the
 * duration (trigger to the last acknowledgement) and the largest
 * alignment, sync and async parts of any subtask.  The run's summary is
 * built from the same acknowledgements, so its extremes are among them.
 */
static void check_stats(const char *root, const uint64_t *ids, size_t nids,
			const struct sl_job_checkpoints *sum)
{
	bool min_dur = false, max_dur = false, max_sync = false, max_async = false;

	for (size_t i = 0; i < nids; i++) {
		struct sl_snap_metadata *m = NULL;
		struct sl_snap_err err = { "" };
		char dir[4300];
		int n = snprintf(dir, sizeof(dir), "%s/chk-%" PRIu64, root, ids[i]);

		cr_assert(n > 0 && (size_t)n < sizeof(dir));
		cr_assert_eq(sl_snap_meta_load(dir, &m, &err), 0, "%s", err.msg);
		const struct sl_snap_stats *s = &m->stats;
		cr_assert_gt(s->duration_ns, 0, "checkpoint %" PRIu64 ": duration_ns", ids[i]);
		cr_assert_gt(s->sync_ns, 0, "checkpoint %" PRIu64 ": sync_ns", ids[i]);
		cr_assert_gt(s->async_ns, 0, "checkpoint %" PRIu64 ": async_ns", ids[i]);
		cr_assert_geq(s->duration_ns, s->alignment_ns,
			      "checkpoint %" PRIu64 ": alignment within the checkpoint", ids[i]);
		cr_assert_gt(s->keyed_bytes, 0, "checkpoint %" PRIu64 ": keyed_bytes", ids[i]);
		min_dur |= s->duration_ns == sum->min_duration_ns;
		max_dur |= s->duration_ns == sum->max_duration_ns;
		max_sync |= s->sync_ns == sum->max_sync_ns;
		max_async |= s->async_ns == sum->max_async_ns;
		sl_snap_meta_free(m);
	}
	cr_assert(min_dur && max_dur, "the shortest (%" PRIu64 " ns) and longest (%" PRIu64
		  " ns) checkpoint durations are in _metadata", sum->min_duration_ns,
		  sum->max_duration_ns);
	cr_assert(max_sync && max_async, "the longest sync (%" PRIu64 " ns) and async (%" PRIu64
		  " ns) parts are in _metadata", sum->max_sync_ns, sum->max_async_ns);
}

/*
 * gen(P) -hash-> count(P) -rebalance-> sink(1).  With sink_delay_us the
 * sink is slow: backpressure fills every ring, so unaligned checkpoints
 * carry in-flight batches.
 */
static void run_mode(enum sl_ckpt_mode mode, double rate, uint64_t n,
		     uint32_t ring_size, uint32_t sink_delay_us)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	struct sl_count_sink_conf sink = { .delay_us_per_batch = sink_delay_us };
	struct sl_job_checkpoints sum;
	char root[] = "/tmp/sl-ckpt-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 40;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.mode = mode;
	cfg.checkpoint.aligned_timeout_ms = 1;
	cfg.ring_size = ring_size;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, n, rate);
	agg.emit_updates = sink_delay_us > 0;

	struct sl_job *job = sl_job_create("ckpt", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, P);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, P);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert(gi >= 0 && ci >= 0 && si >= 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));

	uint64_t *ids = NULL;
	size_t nids = 0;
	struct sl_snap_err err;
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	cr_assert_geq(nids, 2, "checkpoints completed while the job ran (%zu)", nids);
	sl_job_checkpoint_summary(job, &sum);
	check_stats(root, ids, nids, &sum);
	static struct covered cov;
	uint64_t inflight_total = 0;
	unsigned mid = 0;
	bool over = false;
	covered_init(&cov);
	for (size_t i = nids; i-- > 0;) { /* oldest first */
		uint64_t inflight = 0;
		uint64_t covered = check_cut(root, ids[i], &g, mode != SL_CKPT_AT_LEAST_ONCE,
					     &inflight, &over, &cov);
		cr_log_info("%s: checkpoint %" PRIu64 " covers %" PRIu64 " records, %" PRIu64
			    " of them in flight", sl_ckpt_mode_name(mode), ids[i], covered,
			    inflight);
		inflight_total += inflight;
		mid += covered > 0 && covered < n;
	}
	cr_assert_geq(mid, 1, "a cut taken in the middle of the stream");
	fprintf(stderr, "%s: some key counted twice: %s\n", sl_ckpt_mode_name(mode),
		over ? "yes" : "no");
	if (mode == SL_CKPT_AT_LEAST_ONCE)
		cr_assert(over, "without alignment, records read after an early barrier are "
				"in the snapshot and after the recorded offsets: counted twice");
	if (mode == SL_CKPT_UNALIGNED)
		cr_assert_gt(inflight_total, 0, "unaligned checkpoints carried channel state");
	if (mode == SL_CKPT_ALIGNED)
		cr_assert_eq(inflight_total, 0, "aligned checkpoints carry no channel state");
	free(ids);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

Test(checkpoint, aligned_cuts_are_consistent, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_ALIGNED, 3e6, 3000000, 256, 0);
	sl_test_eal_fini();
}

/* A slow sink and short rings: every ring is full, and unaligned
 * checkpoints carry what is in them. */
Test(checkpoint, unaligned_cuts_are_consistent, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_UNALIGNED, 0, 1500000, 16, 40);
	sl_test_eal_fini();
}

Test(checkpoint, aligned_with_timeout_cuts_are_consistent, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_ALIGNED_TIMEOUT, 0, 1500000, 16, 40);
	sl_test_eal_fini();
}

/* Each keyed subtask reads two generator subtasks whose barriers arrive at
 * slightly different times; in between it keeps reading the early input. */
Test(checkpoint, at_least_once_loses_nothing_but_counts_twice, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	run_mode(SL_CKPT_AT_LEAST_ONCE, 3e6, 3000000, 256, 0);
	sl_test_eal_fini();
}

/* A job built in C with unaligned checkpoints and max-concurrent > 1 does
 * not start: the barrier tracker runs unaligned checkpoints one at a time. */
Test(checkpoint, unaligned_with_concurrent_checkpoints_does_not_start, .timeout = 120)
{
	static const enum sl_ckpt_mode modes[] = { SL_CKPT_UNALIGNED, SL_CKPT_ALIGNED_TIMEOUT };
	struct sl_job_config cfg;
	struct sl_generator_conf g;

	sl_test_eal("(0-2)@(0-1)", NULL);
	for (unsigned i = 0; i < 2; i++) {
		sl_job_config_defaults(&cfg);
		cfg.checkpoint.interval_ms = 40;
		cfg.checkpoint.mode = modes[i];
		cfg.checkpoint.aligned_timeout_ms = 10;
		cfg.checkpoint.max_concurrent = 2;
		snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "/tmp/sl-never-written");
		gen_conf(&g, 1000, 0);

		struct sl_job *job = sl_job_create("ckconc", &cfg);
		int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
		int si = sl_job_add(job, "sink", &sl_op_null_sink, NULL, 1);
		cr_assert_eq(sl_job_connect(job, gi, si, SL_PART_FORWARD, NULL), 0);
		cr_assert_eq(sl_job_run(job), -EINVAL, "%s", sl_job_error(job));
		cr_assert(strstr(sl_job_error(job),
				 "execution.checkpointing.max-concurrent-checkpoints: 2"),
			  "%s", sl_job_error(job));
		cr_assert(strstr(sl_job_error(job), "execution.checkpointing.unaligned.enabled"),
			  "%s", sl_job_error(job));
		sl_job_free(job);
	}
	sl_test_eal_fini();
}

/*
 * A full disk or an I/O error while writing checkpoint 2's (then 3's)
 * files: that checkpoint is declined with the reason, the job goes on, the
 * next ones complete, and earlier complete checkpoints stay intact.  With
 * expect_reason NULL the fault is one the writer recovers from (short
 * writes, EAGAIN): nothing fails and every checkpoint is intact.
 */
static void run_with_fault(const struct sl_io_fault *fault, const char *expect_reason)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	struct sl_count_sink_conf sink = { 0 };
	struct sl_job_checkpoints sum;
	char root[] = "/tmp/sl-ckfault-XXXXXX";

	cr_assert_not_null(mkdtemp(root));
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 40;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.tolerable_failures = 2;
	cfg.checkpoint.io_fault = fault;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, 3000000, 3e6);

	struct sl_job *job = sl_job_create("ckfault", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, P);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, P);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_REBALANCE, NULL), 0);
	cr_assert_eq(sl_job_run(job), 0, "the job survives: %s", sl_job_error(job));

	sl_job_checkpoint_summary(job, &sum);
	cr_log_info("%" PRIu64 " triggered, %" PRIu64 " completed, %" PRIu64 " failed: %s",
		    sum.triggered, sum.completed, sum.failed, sum.last_failure);
	if (expect_reason == NULL) {
		cr_assert_eq(sum.failed, 0, "%s", sum.last_failure);
	} else {
		cr_assert_geq(sum.failed, 1, "the faulty checkpoint failed");
		cr_assert(strstr(sum.last_failure, expect_reason), "reason given: %s",
			  sum.last_failure);
		cr_assert(strstr(sum.last_failure, "declined by subtask"), "%s",
			  sum.last_failure);
	}

	uint64_t *ids = NULL;
	size_t nids = 0;
	struct sl_snap_err err;
	bool have1 = false, later = false;
	static struct covered cov;
	covered_init(&cov);
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	for (size_t i = nids; i-- > 0;) { /* oldest first */
		bool over = false;
		uint64_t inflight = 0;
		cr_assert(expect_reason == NULL || ids[i] != 2,
			  "the declined checkpoint is not complete");
		check_cut(root, ids[i], &g, true, &inflight, &over, &cov);
		have1 |= ids[i] == 1;
		later |= ids[i] > 3;
	}
	cr_assert(have1, "the checkpoint before the fault is intact");
	cr_assert(later, "checkpoints after the fault completed");
	free(ids);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
}

Test(checkpoint, full_disk_declines_and_the_job_goes_on, .timeout = 120)
{
	static const struct sl_io_fault enospc = {
		.path_substr = "-c2.", .budget_err = ENOSPC, .budget_bytes = 100 };

	sl_test_eal("(0-2)@(0-1)", NULL);
	run_with_fault(&enospc, "No space left on device");
	sl_test_eal_fini();
}

/* Checkpoint files are O_DIRECT: short writes (a whole number of blocks,
 * as the kernel returns them) and EAGAIN/EINTR on every file are redone
 * by the writer, the padded last block is trimmed, checkpoints complete. */
Test(checkpoint, short_writes_and_eagain_complete_checkpoints, .timeout = 120)
{
	static const struct sl_io_fault shorts = { .max_write_bytes = 6000,
						   .eagain_every = 3 };

	sl_test_eal("(0-2)@(0-1)", NULL);
	run_with_fault(&shorts, NULL);
	sl_test_eal_fini();
}

Test(checkpoint, io_error_declines_and_the_job_goes_on, .timeout = 120)
{
	static const struct sl_io_fault eio = {
		.path_substr = "-c2.", .nth_write = 1, .nth_err = EIO };

	sl_test_eal("(0-2)@(0-1)", NULL);
	run_with_fault(&eio, "Input/output error");
	sl_test_eal_fini();
}

/*
 * Runs a job until it has the checkpoints a test needs, however slow the
 * machine: a thread counts the complete checkpoints in the directory
 * (retention must keep them all) and stops the job once there are `want`.
 */
struct ckpt_watch {
	struct sl_job *job;
	const char *root;
	unsigned want;	    /* complete checkpoints before the job is stopped */
	unsigned limit_s;   /* stop anyway after this long (the test fails) */
	unsigned counted;   /* result: complete checkpoints seen */
	bool run_returned;  /* set by the test when sl_job_run() returned */
	pthread_t th;
};

static void *watch_checkpoints(void *arg)
{
	struct ckpt_watch *w = arg;

	for (unsigned ms = 0; ms < w->limit_s * 1000u && w->counted < w->want; ms += 10) {
		uint64_t *ids = NULL;
		size_t n = 0;

		if (__atomic_load_n(&w->run_returned, __ATOMIC_ACQUIRE))
			return NULL;
		if (sl_snap_chk_list(w->root, &ids, &n, NULL) == 0)
			w->counted = (unsigned)n;
		free(ids);
		usleep(10000);
	}
	sl_job_stop(w->job, false, false);
	return NULL;
}

/* sl_job_run() with a watcher; the job must not end by itself. */
static void run_watched(struct ckpt_watch *w)
{
	cr_assert_eq(pthread_create(&w->th, NULL, watch_checkpoints, w), 0);
	int rc = sl_job_run(w->job);
	__atomic_store_n(&w->run_returned, true, __ATOMIC_RELEASE);
	pthread_join(w->th, NULL);
	cr_assert_eq(rc, 0, "%s", sl_job_error(w->job));
	cr_assert_geq(w->counted, w->want, "%u of %u checkpoints within %u s",
		      w->counted, w->want, w->limit_s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Synchronous pauses of the keyed operator's subtask, per checkpoint, as
 * the job's control socket reports them (`checkpoints subtasks`, see
 * dataplane/checkpoint_stats.c): the subtask that holds the state.  The
 * figure of the checkpoint as a whole is the longest of any subtask's, and
 * a source's can include waiting for a free batch for its barrier when
 * backpressure emptied its pool (forward() in dataplane/task_checkpoint.c):
 * a wait that depends on the load, not on the state.  A thread asks every 20 ms
 * and stops the job once `want` completed checkpoints had at least
 * `min_state` bytes of keyed state in that subtask.
 */
#define PAUSE_MAX 64

struct pause_watch {
	struct sl_job *job;
	const char *sock;
	uint64_t min_state;
	unsigned want, limit_s;
	bool run_returned;	   /* set by the test when sl_job_run() returned */
	unsigned n;		   /* result: such checkpoints */
	uint64_t id[PAUSE_MAX];
	uint64_t sync_ns[PAUSE_MAX]; /* the keyed subtask's synchronous pause */
};

static uint64_t jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

/* Note the completed checkpoints of one `checkpoints subtasks` answer. */
static void pause_note(struct pause_watch *w, const json_t *doc)
{
	const json_t *list = json_object_get(doc, "checkpoints");

	for (size_t i = 0; i < json_array_size(list) && w->n < PAUSE_MAX; i++) {
		const json_t *ck = json_array_get(list, i), *subs;
		const char *st = json_string_value(json_object_get(ck, "status"));
		uint64_t id = jint(ck, "id");
		bool known = false;

		for (unsigned k = 0; k < w->n; k++)
			known |= w->id[k] == id;
		if (known || st == NULL || strcmp(st, "completed") != 0)
			continue;
		subs = json_object_get(ck, "subtasks");
		for (size_t t = 0; t < json_array_size(subs); t++) {
			const json_t *sub = json_array_get(subs, t);
			const char *op = json_string_value(json_object_get(sub, "operator"));
			if (op == NULL || strcmp(op, "count") != 0 ||
			    jint(sub, "state_memory_bytes") < w->min_state)
				continue;
			w->id[w->n] = id;
			w->sync_ns[w->n++] = jint(sub, "sync_ns");
		}
	}
}

static void *watch_pauses(void *arg)
{
	struct pause_watch *w = arg;

	for (unsigned ms = 0; ms < w->limit_s * 1000u && w->n < w->want; ms += 20) {
		char err[512], *answer = NULL;

		if (__atomic_load_n(&w->run_returned, __ATOMIC_ACQUIRE))
			return NULL;
		if (sl_ctl_request(w->sock, "checkpoints subtasks", 5000, &answer, err,
				   sizeof(err)) == 0) {
			json_t *doc = json_loads(answer, 0, NULL);
			if (doc != NULL)
				pause_note(w, doc);
			json_decref(doc);
			free(answer);
		}
		usleep(20000);
	}
	sl_job_stop(w->job, false, false);
	return NULL;
}

/* Synchronous pauses of one run. */
struct pause_figures {
	struct sl_job_checkpoints sum; /* the run's summary (all subtasks) */
	unsigned n_full;	       /* checkpoints with the state asked for */
	uint64_t median_sync_ns;       /* their keyed subtask's median pause */
	uint64_t max_sync_ns;	       /* and its longest */
};

/*
 * gen -> keyed count -> null sink with `keys` keys.  The generator is
 * unbounded; the job runs until three checkpoints held at least
 * `min_state` bytes of keyed state.
 */
static void pause_for_state(uint64_t keys, uint64_t min_state, struct pause_figures *pf)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	char base[] = "/tmp/sl-ckpause-XXXXXX", sock[64];
	struct pause_watch w = { .min_state = min_state, .want = 3, .limit_s = 150,
				 .sock = sock };
	pthread_t th;

	cr_assert_not_null(mkdtemp(base));
	snprintf(sock, sizeof(sock), "%s/ctl.sock", base);
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 200;
	cfg.checkpoint.retained = 1;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s/chk", base);
	snprintf(cfg.control_socket, sizeof(cfg.control_socket), "%s", sock);
	gen_conf(&g, 0, 8e6);
	g.key_cardinality = keys;

	struct sl_job *job = sl_job_create("ckpause", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, 1);
	int si = sl_job_add(job, "sink", &sl_op_null_sink, NULL, 1);
	cr_assert_eq(sl_job_connect(job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(job, ci, si, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_place(job, gi, 0, 1), 0);
	cr_assert_eq(sl_job_place(job, ci, 0, 2), 0);
	cr_assert_eq(sl_job_place(job, si, 0, 2), 0);
	w.job = job;
	cr_assert_eq(pthread_create(&th, NULL, watch_pauses, &w), 0);
	int rc = sl_job_run(job);
	__atomic_store_n(&w.run_returned, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	cr_assert_eq(rc, 0, "%s", sl_job_error(job));
	cr_assert_geq(w.n, w.want, "%u of %u checkpoints with %" PRIu64 " bytes of keyed "
		      "state within %u s", w.n, w.want, min_state, w.limit_s);
	sl_job_checkpoint_summary(job, &pf->sum);
	pf->n_full = w.n;
	qsort(w.sync_ns, w.n, sizeof(w.sync_ns[0]), cmp_u64);
	pf->median_sync_ns = w.sync_ns[w.n / 2];
	pf->max_sync_ns = w.sync_ns[w.n - 1];
	sl_job_free(job);
	ckpt_cut_remove_root(base);
}

/*
 * The synchronous part of a snapshot is O(1) in the state size: with
 * >= 256 MiB of keyed state it stays within an order of magnitude of the
 * pause with a few thousand keys, measured in the same test, while the
 * write-out (asynchronous, between batches) takes far longer.  Compared:
 * the keyed subtask's median pause over three checkpoints with that
 * state; the longest are printed.  On a loaded machine now and then one
 * snapshot is stretched to milliseconds (10-16 ms seen under ASan, with
 * 5-100 us before and after it): the lcore descheduled, or a page fault
 * under memory pressure.  One such pause says nothing about the state
 * size; the typical one does.
 */
Test(checkpoint, sync_pause_independent_of_state_size, .timeout = 300)
{
	struct pause_figures small, large;

	sl_test_eal("(0-2)@(0-1)", NULL);
	pause_for_state(4096, 1, &small);
	pause_for_state(6000000, 256ULL << 20, &large);
	const struct pause_figures *pf[] = { &small, &large };
	for (unsigned i = 0; i < 2; i++)
		fprintf(stderr, "keyed state %.1f MiB: keyed subtask's sync pause median %.1f us, "
			"max %.1f us over %u checkpoints; any subtask's max %.1f us over all %"
			PRIu64 "; write-out max %.1f ms, %.1f MiB written\n",
			pf[i]->sum.max_state_bytes / 1048576.0, pf[i]->median_sync_ns / 1e3,
			pf[i]->max_sync_ns / 1e3, pf[i]->n_full, pf[i]->sum.max_sync_ns / 1e3,
			pf[i]->sum.completed, pf[i]->sum.max_async_ns / 1e6,
			pf[i]->sum.max_written_bytes / 1048576.0);
	cr_assert_geq(small.n_full, 3);
	cr_assert_geq(large.n_full, 3);
	cr_assert_geq(large.sum.max_state_bytes, 256ULL << 20, "at least 256 MiB of keyed state");
	cr_assert_lt(large.median_sync_ns, 10 * small.median_sync_ns + 1000000,
		     "sync pause %lu ns with %lu MiB vs %lu ns with %lu KiB",
		     (unsigned long)large.median_sync_ns,
		     (unsigned long)(large.sum.max_state_bytes >> 20),
		     (unsigned long)small.median_sync_ns,
		     (unsigned long)(small.sum.max_state_bytes >> 10));
	cr_assert_gt(large.sum.max_async_ns, 10 * large.sum.max_sync_ns,
		     "the write-out is the long part, and it is asynchronous");
	sl_test_eal_fini();
}

#define OVER_RING 128  /* batches in the one ring */
#define OVER_BATCH 256 /* records per batch */
#define OVER_MAX_CK 256

/*
 * What the slow sink saw (its check callback runs before every batch):
 * when chk-<n>'s directory appeared — the coordinator creates it just
 * before it triggers n — how many records it had processed.
 */
struct sink_watch {
	const char *root;
	uint64_t records;
	uint64_t next_id;		  /* directory looked for */
	uint64_t at_trigger[OVER_MAX_CK]; /* by id; UINT64_MAX = not seen */
};

static int watch_sink_batch(struct sl_task *t, const struct sl_batch *b, void *arg)
{
	struct sink_watch *sw = arg;
	char dir[4300];
	struct stat st;

	(void)t;
	/* one stat per batch: the sink sleeps 1 ms per batch anyway */
	while (sw->next_id < OVER_MAX_CK &&
	       snprintf(dir, sizeof(dir), "%s/chk-%" PRIu64, sw->root, sw->next_id) > 0 &&
	       stat(dir, &st) == 0)
		sw->at_trigger[sw->next_id++] = sw->records;
	sw->records += b->count;
	return 0;
}

/* One checkpoint of the backpressured job, read back. */
struct over_cut {
	uint64_t offset;     /* generator records before the barrier */
	uint64_t sink;	     /* records the sink had processed at its snapshot */
	uint64_t overtaken;  /* records persisted as the sink's channel state:
			      * in the ring, ahead of the barrier */
	uint64_t staged;     /* records persisted as the generator's output
			      * channel state: not yet in the ring */
	uint64_t behind;     /* records the sink processed between the trigger
			      * and its snapshot (UINT64_MAX: not seen) */
};

struct over_walk {
	const struct sl_generator_conf *g;
	uint64_t next; /* generator index the next persisted record must have */
};

/* The sink's channel state: exactly the records it had not processed. */
static void over_inflight(void *arg, const char *owner, const char *sender,
			  const struct sl_snap_chan_batch *b)
{
	struct over_walk *w = arg;

	(void)owner;
	cr_assert_str_eq(sender, "gen");
	cr_assert_eq(b->record_size, sizeof(struct gen_event));
	for (uint32_t i = 0; i < b->record_count; i++, w->next++) {
		struct gen_event r;
		sl_generator_record(w->g, w->next, &r);
		cr_assert_eq(memcmp((const struct gen_event *)b->records + i, &r, sizeof(r)), 0,
			     "persisted record %u of a batch is generator record %" PRIu64,
			     i, w->next);
	}
}

/*
 * gen -> slow sink over one ring of OVER_RING batches: the ring is always
 * full.  Runs until four checkpoints completed and reads every one back:
 * the generator's offset, the sink's count and checksum (struct
 * count_sink's snapshot), the channel state of both.  Over one forward channel
 * the sink receives records 0, 1, 2, ... in order, so every figure is
 * checked against the generator's definition.  Returns the cuts, oldest
 * first.
 */
static size_t backpressured(enum sl_ckpt_mode mode, struct sl_job_checkpoints *sum,
			    struct over_cut *cuts, size_t max)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	char root[] = "/tmp/sl-ckover-XXXXXX";
	struct sink_watch *sw = calloc(1, sizeof(*sw));

	cr_assert_not_null(sw);
	cr_assert_not_null(mkdtemp(root));
	sw->root = root;
	sw->next_id = 1;
	for (unsigned i = 0; i < OVER_MAX_CK; i++)
		sw->at_trigger[i] = UINT64_MAX;
	struct sl_count_sink_conf sink = { .delay_us_per_batch = 1000,
					   .check = watch_sink_batch, .check_arg = sw };
	sl_job_config_defaults(&cfg);
	cfg.ring_size = OVER_RING;
	cfg.batch_size = OVER_BATCH;
	cfg.burst_size = 4; /* a turn of the sink's loop takes 4 ms, not 32 */
	cfg.checkpoint.interval_ms = 200;
	cfg.checkpoint.retained = 1000;
	cfg.checkpoint.mode = mode;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	gen_conf(&g, 0, 0);

	struct sl_job *job = sl_job_create("ckover", &cfg);
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int si = sl_job_add(job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert_eq(sl_job_connect(job, gi, si, SL_PART_FORWARD, NULL), 0);
	cr_assert_eq(sl_job_place(job, gi, 0, 1), 0);
	cr_assert_eq(sl_job_place(job, si, 0, 2), 0);
	struct ckpt_watch w = { .job = job, .root = root, .want = 4, .limit_s = 90 };
	run_watched(&w);
	sl_job_checkpoint_summary(job, sum);

	uint64_t *ids = NULL, done = 0, prefix = 0;
	size_t nids = 0;
	struct sl_snap_err err;
	cr_assert_eq(sl_snap_chk_list(root, &ids, &nids, &err), 0, "%s", err.msg);
	cr_assert_leq(nids, max);
	qsort(ids, nids, sizeof(*ids), cmp_u64);
	for (size_t i = 0; i < nids; i++) {
		char dir[4300];
		struct sl_snap_metadata *m = ckpt_cut_open(root, ids[i], dir, sizeof(dir));
		const struct sl_snap_operator_meta *snk = ckpt_cut_operator(m, "sink");
		struct over_cut *c = &cuts[i];
		uint64_t blob[2];

		c->offset = ckpt_cut_gen_next(ckpt_cut_operator(m, "gen"), 0, UINT64_MAX);
		cr_assert_eq(snk->subtasks[0].n_blobs, 1);
		cr_assert_eq(snk->subtasks[0].blobs[0].len, sizeof(blob));
		memcpy(blob, snk->subtasks[0].blobs[0].data, sizeof(blob));
		c->sink = blob[0];
		/* the sink's checksum covers exactly records [0, its count) */
		cr_assert_geq(c->sink, done, "the sink's count only grows");
		for (; done < c->sink; done++) {
			struct gen_event r;
			sl_generator_record(&g, done, &r);
			prefix += XXH3_64bits(&r, sizeof(r));
		}
		cr_assert_eq(blob[1], prefix, "checkpoint %" PRIu64 ": the count sink's "
			     "checksum is that of generator records [0, %" PRIu64 ")",
			     ids[i], c->sink);
		struct over_walk ow = { .g = &g, .next = c->sink };
		struct ckpt_cut_visitor v = { .batch = over_inflight, .arg = &ow };
		/* the ring's records come first, then what the generator
		 * could not send yet */
		c->overtaken = ckpt_cut_walk(dir, snk, &v);
		c->staged = ckpt_cut_walk(dir, ckpt_cut_operator(m, "gen"), &v);
		cr_assert_eq(ow.next, c->offset, "checkpoint %" PRIu64 ": what the sink "
			     "processed (%" PRIu64 ") and what was persisted in the ring (%"
			     PRIu64 ") and in the generator (%" PRIu64 ") are exactly the "
			     "records before the barrier (%" PRIu64 ")", ids[i], c->sink,
			     c->overtaken, c->staged, c->offset);
		c->behind = UINT64_MAX;
		if (ids[i] < OVER_MAX_CK && sw->at_trigger[ids[i]] != UINT64_MAX) {
			cr_assert_leq(sw->at_trigger[ids[i]], c->sink,
				      "checkpoint %" PRIu64 ": the sink snapshots after the trigger",
				      ids[i]);
			c->behind = c->sink - sw->at_trigger[ids[i]];
		}
		sl_snap_meta_free(m);
	}
	free(ids);
	free(sw);
	sl_job_free(job);
	ckpt_cut_remove_root(root);
	return nids;
}

/* Smallest and largest of a field over the cuts, in batches. */
static void batches_range(const struct over_cut *c, size_t n, size_t off,
			  double *lo, double *hi)
{
	*lo = 1e300;
	*hi = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = *(const uint64_t *)((const char *)&c[i] + off);
		if (v == UINT64_MAX)
			continue;
		*lo = v / (double)OVER_BATCH < *lo ? v / (double)OVER_BATCH : *lo;
		*hi = v / (double)OVER_BATCH > *hi ? v / (double)OVER_BATCH : *hi;
	}
}

/*
 * Under backpressure the unaligned barrier overtakes the full ring: the
 * sink snapshots while the ring still holds data ahead of the barrier,
 * which is persisted as channel state straight from the ring.  The aligned
 * barrier waits behind the ring: the sink works through everything ahead
 * of it (at 1 ms a batch) before it snapshots, and nothing is in flight.
 * Proven from the checkpoints' contents, not from their durations (those
 * are printed: on a loaded machine an fsync can take longer than the
 * ring takes to drain).
 */
Test(checkpoint, unaligned_barrier_overtakes_a_full_ring, .timeout = 240)
{
	static struct over_cut un[OVER_MAX_CK], al[OVER_MAX_CK];
	struct sl_job_checkpoints uns, als;
	double lo, hi, slo, shi, blo, bhi;

	sl_test_eal("(0-2)@(0-1)", NULL);
	size_t nun = backpressured(SL_CKPT_UNALIGNED, &uns, un, OVER_MAX_CK);
	size_t nal = backpressured(SL_CKPT_ALIGNED, &als, al, OVER_MAX_CK);

	batches_range(un, nun, offsetof(struct over_cut, overtaken), &lo, &hi);
	batches_range(un, nun, offsetof(struct over_cut, staged), &slo, &shi);
	batches_range(un, nun, offsetof(struct over_cut, behind), &blo, &bhi);
	fprintf(stderr, "unaligned: %zu checkpoints, %.1f..%.1f ms; the barrier overtook "
		"%.1f..%.1f batches in the ring (%u) and %.1f..%.1f staged in the generator; "
		"the sink processed %.1f..%.1f batches between trigger and snapshot\n", nun,
		uns.min_duration_ns / 1e6, uns.max_duration_ns / 1e6, lo, hi, OVER_RING, slo,
		shi, blo, bhi);
	cr_assert_geq(nun, 4);
	for (size_t i = 0; i < nun; i++)
		cr_assert_gt(un[i].overtaken, 0, "unaligned checkpoint %zu: the barrier reached "
			     "the sink while the ring still held data ahead of it", i + 1);
	cr_assert_geq(hi, OVER_RING / 2, "the barrier overtook most of a full ring");

	batches_range(al, nal, offsetof(struct over_cut, behind), &blo, &bhi);
	fprintf(stderr, "aligned:   %zu checkpoints, %.1f..%.1f ms; the barrier waited "
		"behind the ring (%u batches) and the generator's staged output: the sink "
		"processed %.1f..%.1f batches between trigger and snapshot\n", nal,
		als.min_duration_ns / 1e6, als.max_duration_ns / 1e6, OVER_RING, blo, bhi);
	cr_assert_geq(nal, 4);
	for (size_t i = 0; i < nal; i++) {
		cr_assert_eq(al[i].overtaken + al[i].staged, 0,
			     "aligned checkpoint %zu: nothing in flight", i + 1);
		cr_assert_eq(al[i].sink, al[i].offset, "aligned checkpoint %zu: the sink "
			     "processed every record before the barrier", i + 1);
	}
	cr_assert_geq(bhi, OVER_RING / 2, "the aligned barrier waited behind most of a full "
		      "ring: the sink processed it between the trigger and its snapshot");
	sl_test_eal_fini();
}
