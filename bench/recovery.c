/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recovery benchmark: how long a job takes to come back from a checkpoint
 * holding S bytes of keyed state, next to the read bandwidth of the same
 * disk measured in the same run (the machines are shared and noisy, so
 * only side-by-side ratios mean anything).  Target: restore reads at
 * >= 80% of the disk's read bandwidth.
 *
 *   build/bench/recovery [--dir DIR] [--sizes MB,MB,...] [--quick]
 *                        [--parallelism P] [--rounds R] [-- EAL args]
 *
 * Per size (default 64, 1024, 4096 MiB; --quick: 64, 256):
 *  1. a checkpoint: chk-1 of job "recovery" under a temp root in DIR, with
 *     operator "count" (keyed-aggregate, count per u64 key) holding S bytes
 *     of keyed state in P files (one per old subtask, in shared/, as
 *     incremental checkpoints write them) and a generator that had emitted
 *     1000 records; every file is fsync'ed and then dropped from the page
 *     cache (posix_fadvise DONTNEED), so restore reads the disk (it reads
 *     with O_DIRECT anyway where the filesystem allows);
 *  then R rounds (--rounds; default 3 up to 1 GiB, 1 above) of:
 *  2. recovery, timed from before sl_job_create() ("process start": the
 *     EAL is already up) to the first record a sink processes after the
 *     restore: gen(1) -> count(P, emit updates) -> first(1).  The restore
 *     read time is the time of sl_job_restore_from(), which reads every
 *     file of the checkpoint through the parallel io_uring reader and
 *     checks its size and xxh3 (dataplane/job_restore.c); the loading of
 *     the state into the subtasks' hash tables follows, from memory, on
 *     the subtasks' lcores (load = first record - end of the read);
 *  3. the disk, measured right after, as the best of two references (so
 *     that the ratio is never flattered by a weak one):
 *     a. sl_io_measure_read_bw() under DIR: one temp file of
 *        max(256 MiB, min(S, 1 GiB)), 1 MiB O_DIRECT reads, 32 in flight;
 *     b. the checkpoint's own P files, all at once, 1 MiB O_DIRECT reads,
 *        128 in flight, into a reused, already-touched buffer pool: the
 *        same bytes, sizes and file count as the restore, read by a raw
 *        loop deeper than the restore's (64 in flight) and without its
 *        costs (fresh memory for the files, the checksums).
 *  The restore's ratio is its read rate over the better of a and b, per
 *  round; the medians over the rounds are printed.
 *
 * Prints one JSON object per size on stdout (vm_hwm_mib: the process's
 * peak resident memory so far, VmHWM; run one size per process to get the
 * peak of that size).  The temp root is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "sluice/io.h"
#include "sluice/job.h"
#include "sluice/keygroup.h"
#include "sluice/operators.h"
#include "sluice/snapshot.h"

#include "bench_stats.h"

#define MIB (1ull << 20)
#define GEN_DONE 1000u	  /* records the generator had emitted */
#define GEN_AFTER 1000u	  /* records it emits after the restore */
#define ENTRY_BYTES 26u	  /* on disk: 10 bytes of framing + u64 key + u64 count */

/* ------------------------------------------------ the first-record sink */

static _Atomic uint64_t first_record_ns;

static int first_open(struct sl_task *t, void **op)
{
	(void)t;
	*op = NULL;
	return 0;
}

static int first_process(void *op, struct sl_task *t, unsigned input, struct sl_batch *b)
{
	uint64_t zero = 0;

	(void)op, (void)t, (void)input;
	if (b->count > 0)
		atomic_compare_exchange_strong(&first_record_ns, &zero, bench_mono_ns());
	return 0;
}

static const struct sl_operator_ops first_ops = {
	.type = "first-record", .min_inputs = 1, .max_inputs = 1, .sink = true,
	.open = first_open, .process = first_process,
};

/* ------------------------------------------------------ the checkpoint */

struct file_out {
	int fd;
	int err;
};

static int file_sink(void *arg, uint64_t offset, void *buf, size_t len)
{
	struct file_out *o = arg;
	ssize_t n = pwrite(o->fd, buf, len, (off_t)offset);

	sl_snap_buf_free(buf);
	if (n != (ssize_t)len)
		return o->err = n < 0 ? -errno : -EIO;
	return 0;
}

/*
 * Write chk-1 under root: `entries` keys (0..entries-1, count = key + 1)
 * spread by key group over `p` keyed-state files of operator "count".
 * @return bytes of keyed state written, or 0 on failure (message printed)
 */
static uint64_t write_checkpoint(const char *root, uint64_t entries, uint32_t p)
{
	const uint32_t maxp = SL_MAX_PARALLELISM_DEFAULT;
	struct sl_snap_kstate_enc **enc = calloc(p, sizeof(*enc));
	struct file_out *out = calloc(p, sizeof(*out));
	struct sl_snap_file_ref *refs = calloc(p, sizeof(*refs));
	uint32_t *owner = calloc(maxp, sizeof(*owner));
	char name[128], path[4400], rel[200];
	struct sl_snap_err err = { "" };
	uint64_t total = 0;
	int rc = sl_snap_chk_create(root, 1);

	if (enc == NULL || out == NULL || refs == NULL || owner == NULL || rc < 0) {
		fprintf(stderr, "recovery: cannot create %s/chk-1: %s\n", root,
			strerror(rc < 0 ? -rc : ENOMEM));
		return 0;
	}
	for (uint32_t kg = 0; kg < maxp; kg++)
		owner[kg] = sl_key_group_owner(kg, maxp, p);
	for (uint32_t s = 0; s < p; s++) {
		uint32_t first, count;

		sl_key_group_range(s, maxp, p, &first, &count);
		sl_snap_file_name(name, sizeof(name), "count", s, 1, SL_SNAP_FILE_KEYED);
		snprintf(path, sizeof(path), "%s/shared/%s", root, name);
		out[s].fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out[s].fd < 0) {
			fprintf(stderr, "recovery: cannot create %s: %s\n", path, strerror(errno));
			return 0;
		}
		struct sl_snap_kstate_conf c = {
			.uid = "count", .subtask = s, .checkpoint_id = 1,
			.kind = SL_SNAP_KSTATE_FULL, .max_parallelism = maxp,
			.kg_first = first, .kg_count = count,
			.key_size = 8, .value_size = 8,
			.sink = file_sink, .sink_arg = &out[s],
		};
		enc[s] = sl_snap_kstate_enc_create(&c);
		if (enc[s] == NULL) {
			fprintf(stderr, "recovery: cannot create a keyed-state encoder\n");
			return 0;
		}
	}
	for (uint64_t k = 0; k < entries; k++) {
		uint64_t v = k + 1;
		struct sl_snap_kv kv = { .key = &k, .value = &v };

		kv.hash = sl_key_hash(&k, 8);
		kv.kg = sl_key_group(kv.hash, maxp);
		if ((rc = sl_snap_kstate_enc_add(enc[owner[kv.kg]], &kv, 1)) < 0) {
			fprintf(stderr, "recovery: encoding keyed state: %s\n", strerror(-rc));
			return 0;
		}
	}
	struct sl_snap_metadata *m = sl_snap_meta_create(1, SL_SNAP_CHECKPOINT, "recovery", 0, 0);
	int gop = sl_snap_meta_add_operator(m, "gen", 1, maxp);
	int cop = sl_snap_meta_add_operator(m, "count", p, maxp);
	uint64_t gen_blob[2] = { GEN_DONE, (uint64_t)INT64_MIN };

	if (m == NULL || gop < 0 || cop < 0 ||
	    sl_snap_meta_add_blob(m, gop, 0, gen_blob, sizeof(gen_blob)) < 0) {
		fprintf(stderr, "recovery: cannot build the metadata\n");
		return 0;
	}
	for (uint32_t s = 0; s < p; s++) {
		struct sl_snap_file_info info;
		uint32_t first, count;

		rc = sl_snap_kstate_enc_finish(enc[s], &info);
		sl_snap_kstate_enc_free(enc[s]);
		/* durable, then out of the page cache: restore must read the disk */
		if (rc == 0 && fsync(out[s].fd) < 0)
			rc = -errno;
		if (rc == 0)
			rc = -posix_fadvise(out[s].fd, 0, 0, POSIX_FADV_DONTNEED);
		close(out[s].fd);
		if (rc < 0) {
			fprintf(stderr, "recovery: writing keyed state: %s\n", strerror(-rc));
			return 0;
		}
		sl_key_group_range(s, maxp, p, &first, &count);
		sl_snap_file_name(name, sizeof(name), "count", s, 1, SL_SNAP_FILE_KEYED);
		snprintf(rel, sizeof(rel), "shared/%s", name);
		if (sl_snap_file_ref_set(&refs[s], rel, SL_SNAP_FILE_KEYED, 1, &info, first,
					 count) < 0 ||
		    sl_snap_meta_add_file(m, cop, s, &refs[s]) < 0) {
			fprintf(stderr, "recovery: cannot reference %s\n", rel);
			return 0;
		}
		total += info.size;
	}
	snprintf(path, sizeof(path), "%s/chk-1", root);
	if ((rc = sl_snap_meta_write(path, m, &err)) < 0) {
		fprintf(stderr, "recovery: %s\n", err.msg);
		total = 0;
	}
	sl_snap_meta_free(m);
	free(enc);
	free(out);
	free(refs);
	free(owner);
	return total;
}

/* ----------------------------------------------------------- recovery */

struct result {
	uint64_t state_bytes;
	double disk_bw;		/* bytes/s: the better reference */
	double disk_file_bw;	/* a: one temp file, 32 in flight */
	double disk_same_bw;	/* b: the checkpoint's files, 128 in flight */
	double read_s;		/* sl_job_restore_from() */
	double recovery_s;	/* job creation -> first record after restore */
	double load_s;		/* end of the read -> first record */
	double run_s;		/* sl_job_run() until the job ended */
};

/* ------------------------------------- reference: the same files, raw */

#define RAW_DEPTH 128u
#define RAW_CHUNK (1u << 20)

struct raw_file {
	int fd;
	uint64_t size, next;
};

/*
 * Read the files completely, all at once: RAW_CHUNK O_DIRECT reads taken
 * from the files in turn, RAW_DEPTH in flight, into a pool of RAW_DEPTH
 * buffers touched beforehand and reused (the data is dropped).  A short
 * read fails the measurement (the files are not changing).
 */
static int read_raw(char paths[][4400], uint32_t n, double *bps)
{
	struct raw_file *f = calloc(n, sizeof(*f));
	char *pool = NULL;
	unsigned free_slot[RAW_DEPTH], n_free = RAW_DEPTH, inflight = 0, cur = 0;
	uint64_t total = 0, t0;
	struct io_uring ring;
	int rc = 0;

	if (f == NULL || posix_memalign((void **)&pool, 4096, (size_t)RAW_DEPTH * RAW_CHUNK)) {
		free(f);
		return -ENOMEM;
	}
	memset(pool, 1, (size_t)RAW_DEPTH * RAW_CHUNK);
	for (unsigned i = 0; i < RAW_DEPTH; i++)
		free_slot[i] = i;
	for (uint32_t i = 0; i < n; i++) {
		f[i].fd = open(paths[i], O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (f[i].fd < 0)
			f[i].fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (f[i].fd < 0) {
			rc = -errno;
			break;
		}
		f[i].size = (uint64_t)lseek(f[i].fd, 0, SEEK_END);
		(void)posix_fadvise(f[i].fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	if (rc == 0)
		rc = io_uring_queue_init(RAW_DEPTH, &ring, 0);
	if (rc < 0)
		goto out;
	t0 = bench_mono_ns();
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		/* one chunk from each file in turn */
		for (uint32_t tries = 0; n_free > 0 && tries < n; ) {
			struct raw_file *x = &f[cur];

			cur = (cur + 1) % n;
			if (x->next >= x->size) {
				tries++;
				continue;
			}
			tries = 0;
			unsigned slot = free_slot[--n_free];
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			uint64_t len = x->size - x->next < RAW_CHUNK ? x->size - x->next : RAW_CHUNK;

			/* O_DIRECT: whole blocks; the kernel stops at the end */
			io_uring_prep_read(sqe, x->fd, pool + (size_t)slot * RAW_CHUNK,
					   (unsigned)((len + 4095) & ~4095ull), x->next);
			io_uring_sqe_set_data64(sqe, (uint64_t)slot << 32 | (uint32_t)len);
			x->next += len;
			inflight++;
		}
		if (inflight == 0)
			break;
		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR)
			break;
		rc = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			uint64_t d = io_uring_cqe_get_data64(cqe);

			if (cqe->res != (int)(uint32_t)d)
				rc = cqe->res < 0 ? cqe->res : -EIO;
			total += cqe->res > 0 ? (uint64_t)cqe->res : 0;
			free_slot[n_free++] = (unsigned)(d >> 32);
			inflight--;
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
		if (rc < 0) {
			for (uint32_t i = 0; i < n; i++)
				f[i].next = f[i].size; /* start nothing more */
		}
	}
	if (rc == 0)
		*bps = (double)total / ((bench_mono_ns() - t0) / 1e9);
	io_uring_queue_exit(&ring);
out:
	for (uint32_t i = 0; i < n; i++)
		if (f[i].fd > 0)
			close(f[i].fd);
	free(f);
	free(pool);
	return rc;
}

static int recover(const char *root, uint32_t p, struct result *res)
{
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.emit_updates = true, .aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	uint64_t t0, t1, t2, t3;
	int rc;

	sl_generator_conf_defaults(&g);
	sl_schema_add(&g.schema, "key", SL_TYPE_U64, 0);
	g.seed = 7;
	g.count = GEN_DONE + GEN_AFTER;
	g.key_cardinality = 1000;
	sl_job_config_defaults(&cfg);
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s", root);
	cfg.checkpoint.interval_ms = 0;

	atomic_store(&first_record_ns, 0);
	t0 = bench_mono_ns();
	struct sl_job *job = sl_job_create("recovery", &cfg);
	if (job == NULL) {
		fprintf(stderr, "recovery: cannot create the job\n");
		return -1;
	}
	int gi = sl_job_add(job, "gen", &sl_op_generator, &g, 1);
	int ci = sl_job_add(job, "count", &sl_op_keyed_aggregate, &agg, p);
	int fi = sl_job_add(job, "first", &first_ops, NULL, 1);
	if (gi < 0 || ci < 0 || fi < 0 ||
	    sl_job_connect(job, gi, ci, SL_PART_HASH, "key") < 0 ||
	    sl_job_connect(job, ci, fi, SL_PART_REBALANCE, NULL) < 0) {
		fprintf(stderr, "recovery: building the job: %s\n", sl_job_error(job));
		sl_job_free(job);
		return -1;
	}
	t1 = bench_mono_ns();
	rc = sl_job_restore_from(job, "latest");
	t2 = bench_mono_ns();
	if (rc == 0)
		rc = sl_job_run(job);
	t3 = bench_mono_ns();
	if (rc < 0 || atomic_load(&first_record_ns) == 0) {
		fprintf(stderr, "recovery: %s\n", rc < 0 ? sl_job_error(job) :
			"no record reached the sink after the restore");
		sl_job_free(job);
		return -1;
	}
	res->read_s = (t2 - t1) / 1e9;
	res->recovery_s = (atomic_load(&first_record_ns) - t0) / 1e9;
	res->load_s = (atomic_load(&first_record_ns) - t2) / 1e9;
	res->run_s = (t3 - t2) / 1e9;
	sl_job_free(job);
	return 0;
}

static uint64_t vm_hwm_kib(void)
{
	char line[256];
	uint64_t kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %" SCNu64, &kib) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kib;
}

#define MAX_ROUNDS 15

/* One size: the checkpoint, then `rounds` of recovery and the disk; one
 * JSON line with the medians. */
static int run_size(const char *dir, uint64_t mib, uint32_t p, unsigned rounds)
{
	char root[2048], (*paths)[4400] = calloc(p, sizeof(*paths));
	uint64_t disk_bytes = mib < 1024 ? mib * MIB : 1024 * MIB;
	double ratio[MAX_ROUNDS], read_bw[MAX_ROUNDS], disk[MAX_ROUNDS], file_bw[MAX_ROUNDS];
	double same_bw[MAX_ROUNDS], rec[MAX_ROUNDS], load[MAX_ROUNDS], read_s[MAX_ROUNDS];
	struct result res = { 0 };
	int rc = 0, n;

	if (disk_bytes < 256 * MIB)
		disk_bytes = 256 * MIB;
	n = snprintf(root, sizeof(root), "%s/sl-recovery-XXXXXX", dir);
	if (paths == NULL || n < 0 || (size_t)n >= sizeof(root) || mkdtemp(root) == NULL) {
		fprintf(stderr, "recovery: cannot create a temp directory in %s: %s\n", dir,
			strerror(errno));
		free(paths);
		return -1;
	}
	res.state_bytes = write_checkpoint(root, mib * MIB / ENTRY_BYTES, p);
	if (res.state_bytes == 0)
		rc = -1;
	for (uint32_t s = 0; s < p; s++) {
		char name[128];

		sl_snap_file_name(name, sizeof(name), "count", s, 1, SL_SNAP_FILE_KEYED);
		snprintf(paths[s], sizeof(paths[s]), "%s/shared/%s", root, name);
	}
	for (unsigned i = 0; i < rounds && rc == 0; i++) {
		/* the restore first: the references read after it */
		if ((rc = recover(root, p, &res)) < 0)
			break;
		rc = sl_io_measure_read_bw(dir, disk_bytes, &res.disk_file_bw);
		if (rc == 0)
			rc = read_raw(paths, p, &res.disk_same_bw);
		if (rc < 0) {
			fprintf(stderr, "recovery: measuring the disk under %s: %s\n", dir,
				strerror(-rc));
			break;
		}
		res.disk_bw = res.disk_file_bw > res.disk_same_bw ? res.disk_file_bw
								   : res.disk_same_bw;
		read_bw[i] = res.state_bytes / res.read_s;
		ratio[i] = read_bw[i] / res.disk_bw;
		disk[i] = res.disk_bw;
		file_bw[i] = res.disk_file_bw;
		same_bw[i] = res.disk_same_bw;
		rec[i] = res.recovery_s;
		load[i] = res.load_s;
		read_s[i] = res.read_s;
		fprintf(stderr,
			"recovery: %" PRIu64 " MiB round %u: restore read %.0f MiB/s, disk %.0f MiB/s (one file %.0f, the same files %.0f), ratio %.2f; recovery %.2f s, load %.2f s\n",
			mib, i + 1, read_bw[i] / MIB, res.disk_bw / MIB, res.disk_file_bw / MIB,
			res.disk_same_bw / MIB, ratio[i], res.recovery_s, res.load_s);
	}
	if (rc == 0) {
		double l = bench_median(load, rounds);

		printf("{\"state_bytes\": %" PRIu64 ", \"rounds\": %u, \"restore_read_s\": %.3f, "
		       "\"restore_read_mib_s\": %.1f, \"disk_read_mib_s\": %.1f, "
		       "\"disk_one_file_mib_s\": %.1f, \"disk_same_files_mib_s\": %.1f, "
		       "\"ratio\": %.3f, \"target\": 0.8, \"recovery_s\": %.3f, "
		       "\"load_s\": %.3f, \"load_mib_s\": %.1f, \"parallelism\": %u, "
		       "\"vm_hwm_mib\": %.0f}\n",
		       res.state_bytes, rounds, bench_median(read_s, rounds),
		       bench_median(read_bw, rounds) / MIB, bench_median(disk, rounds) / MIB,
		       bench_median(file_bw, rounds) / MIB, bench_median(same_bw, rounds) / MIB,
		       bench_median(ratio, rounds), bench_median(rec, rounds), l,
		       res.state_bytes / l / MIB, p, vm_hwm_kib() / 1024.0);
		fflush(stdout);
	}
	char cmd[2200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "recovery: could not remove %s\n", root);
	free(paths);
	return rc;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--dir DIR] [--sizes MB,MB,...] [--quick] [--parallelism P] [--rounds R] [-- EAL args]\n"
		"  --dir DIR          disk to measure and restore from (default: .)\n"
		"  --sizes LIST       keyed-state sizes in MiB (default: 64,1024,4096)\n"
		"  --quick            sizes 64,256\n"
		"  --parallelism P    subtasks of the keyed aggregation (default: 2)\n"
		"  --rounds R         recoveries and disk measurements per size, medians\n"
		"                     printed (default: 3 up to 1 GiB, 1 above; at most %u)\n",
		prog, MAX_ROUNDS);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "sizes", required_argument, NULL, 's' },
		{ "quick", no_argument, NULL, 'q' },
		{ "parallelism", required_argument, NULL, 'p' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = ".", *sizes = "64,1024,4096";
	uint32_t p = 2;
	unsigned rounds = 0;
	char prefix[64];
	char *eal_default[] = { argv[0], "--no-huge", "--no-pci", "--no-telemetry",
				"--log-level=lib.eal:error", "--lcores", "(0,2)@0,1@1",
				prefix, NULL };
	int opt, eal_at = argc, failed = 0;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			eal_at = i;
			break;
		}
	while ((opt = getopt_long(eal_at, argv, "d:s:qp:r:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 's': sizes = optarg; break;
		case 'q': sizes = "64,256"; break;
		case 'p': p = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': rounds = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'h': usage(argv[0]); return 0;
		default: usage(argv[0]); return 2;
		}
	}
	if (p == 0 || p > SL_MAX_PARALLELISM_DEFAULT) {
		fprintf(stderr, "recovery: --parallelism must be 1..%u\n",
			SL_MAX_PARALLELISM_DEFAULT);
		return 2;
	}
	if (rounds > MAX_ROUNDS) {
		fprintf(stderr, "recovery: --rounds must be 1..%u\n", MAX_ROUNDS);
		return 2;
	}
	snprintf(prefix, sizeof(prefix), "--file-prefix=recov%d", getpid());
	int rc = eal_at < argc
		? (argv[eal_at] = argv[0], sl_eal_init(argc - eal_at, argv + eal_at, 256 << 20))
		: sl_eal_init(8, eal_default, 256 << 20);
	if (rc < 0)
		return 1;

	for (const char *s = sizes; *s != '\0';) {
		char *end;
		uint64_t mib = strtoull(s, &end, 10);

		if (end == s || mib == 0 || (*end != ',' && *end != '\0')) {
			fprintf(stderr, "recovery: --sizes %s: give sizes in MiB, e.g. 64,1024\n",
				sizes);
			return 2;
		}
		s = *end == ',' ? end + 1 : end;
		if (run_size(dir, mib, p, rounds ? rounds : mib <= 1024 ? 3 : 1) < 0)
			failed = 1;
	}
	rte_eal_cleanup();
	return failed;
}
