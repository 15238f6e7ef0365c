/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Read benchmark: the parallel io_uring reader (sl_io_read_files(), what
 * restore loads checkpoint files with) against the disk's own sequential
 * read bandwidth (sl_io_measure_read_bw(): one file, 1 MiB O_DIRECT reads,
 * 32 in flight), alternating in one run: the machines are shared and
 * noisy, so only ratios measured side by side mean anything.  The target
 * of restore is >= 80% of the disk's figure.
 *
 *   build/bench/read_files [--dir DIR] [--mb TOTAL] [--files N]
 *                          [--chunk-kb K] [--depth D] [--buffered]
 *                          [--rounds R] [--pause-s S]
 *
 * Writes N files of TOTAL/N MiB (incompressible, fdatasync'ed, evicted
 * from the page cache) into a temp directory under DIR (default: the
 * current directory; use the checkpoint disk), then per round measures
 * the disk, pauses S seconds (freed memory goes back to a VM's host, so
 * the reader gets cold memory as a restoring process does), reads all
 * the files into memory, and measures the rate at which fresh memory can
 * be touched (the reader's buffers are fresh: on a VM whose memory comes
 * from the host on demand that can be the bound, not the disk).  Prints one line per round and a JSON object with the medians
 * and the median of the per-round ratios.  The temp directory is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/io.h"
#include "sluice/io_file.h"

#include "bench_stats.h"

struct opts {
	const char *dir;
	uint64_t mb;
	unsigned files;
	unsigned chunk_kb;
	unsigned depth;
	bool buffered;
	unsigned rounds;
	unsigned pause_s;
};

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--dir DIR] [--mb TOTAL] [--files N] [--chunk-kb K]\n"
		"          [--depth D] [--buffered] [--rounds R] [--pause-s S]\n"
		"  --dir DIR      where to put the files (default: .)\n"
		"  --mb TOTAL     MiB in all files (default 1024)\n"
		"  --files N      number of files (default 16)\n"
		"  --chunk-kb K   reader chunk size in KiB (default 1024)\n"
		"  --depth D      reads in flight (default 32)\n"
		"  --buffered     read without O_DIRECT (files evicted first)\n"
		"  --rounds R     measurements of each (default 3)\n"
		"  --pause-s S    pause before each read, so that freed memory\n"
		"                 goes back to a VM's host (default 5)\n",
		prog);
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "mb", required_argument, NULL, 'm' },
		{ "files", required_argument, NULL, 'f' },
		{ "chunk-kb", required_argument, NULL, 'c' },
		{ "depth", required_argument, NULL, 'q' },
		{ "buffered", no_argument, NULL, 'b' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "pause-s", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct opts){ ".", 1024, 16, 1024, 32, false, 3, 5 };
	while ((opt = getopt_long(argc, argv, "d:m:f:c:q:br:p:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'd': o->dir = optarg; break;
		case 'm': o->mb = strtoull(optarg, NULL, 10); break;
		case 'f': o->files = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': o->chunk_kb = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'q': o->depth = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': o->buffered = true; break;
		case 'r': o->rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': o->pause_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(argv[0]); exit(0);
		default: usage(argv[0]); return -1;
		}
	}
	if (optind != argc || o->mb == 0 || o->files == 0 || o->rounds == 0 ||
	    o->chunk_kb == 0 || o->chunk_kb % 4 || o->depth == 0 ||
	    o->mb * 1024 * 1024 / o->files < 1) {
		fprintf(stderr, "%s: --mb, --files, --rounds, --depth must be > 0, "
			"--chunk-kb a positive multiple of 4, and every file at least a byte\n",
			argv[0]);
		return -1;
	}
	return 0;
}

/* Write n files of `each` bytes of xorshift noise, durable and evicted. */
static int make_files(const char *dir, unsigned n, uint64_t each, char (*paths)[512])
{
	const size_t buf_len = 1u << 20;
	uint64_t *buf = malloc(buf_len), x = 0x9e3779b97f4a7c15ull;
	int rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		int fd, w;

		w = snprintf(paths[i], sizeof(paths[i]), "%s/f%05u.kstate", dir, i);
		if (w < 0 || (size_t)w >= sizeof(paths[i])) {
			rc = -ENAMETOOLONG;
			break;
		}
		fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = -errno;
			break;
		}
		for (uint64_t done = 0; done < each && rc == 0;) {
			size_t len = each - done < buf_len ? (size_t)(each - done) : buf_len;

			for (size_t k = 0; k < buf_len / 8; k++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				buf[k] = x;
			}
			rc = sl_io_write_all(fd, buf, len);
			done += len;
		}
		if (rc == 0 && fdatasync(fd) < 0)
			rc = -errno;
		close(fd);
	}
	free(buf);
	return rc;
}

/* Bytes/s at which fresh memory is touched for the first time (page
 * faults): the reader's buffers are fresh, the disk measurement's are
 * reused, so this bounds the reader where the disk does not. */
static double first_touch_bw(uint64_t bytes)
{
	struct timespec a, b;
	void *p;
	double t;

	if (posix_memalign(&p, SL_IO_DIRECT_ALIGN, bytes))
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	memset(p, 1, bytes);
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* keep the stores: the compiler may not drop a memset it can see freed */
	__asm__ volatile("" : : "r"(p) : "memory");
	free(p);
	t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
	return t > 0 ? (double)bytes / t : 0;
}

static void evict(char (*paths)[512], unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	char tmp[400], (*paths)[512];
	struct sl_io_read_file *files;
	double *disk, *reader, *ratio, *touch;
	uint64_t each, total;
	int rc;

	if (parse(argc, argv, &o) < 0)
		return 2;
	each = o.mb * 1024 * 1024 / o.files;
	total = each * o.files;
	rc = snprintf(tmp, sizeof(tmp), "%s/.sl_read_bench.XXXXXX", o.dir);
	if (rc < 0 || (size_t)rc >= sizeof(tmp)) {
		fprintf(stderr, "read_files: --dir path too long\n");
		return 2;
	}
	if (mkdtemp(tmp) == NULL) {
		fprintf(stderr, "read_files: cannot create a directory under %s: %s\n",
			o.dir, strerror(errno));
		return 1;
	}
	paths = calloc(o.files, sizeof(*paths));
	files = calloc(o.files, sizeof(*files));
	disk = calloc(o.rounds, sizeof(double));
	reader = calloc(o.rounds, sizeof(double));
	ratio = calloc(o.rounds, sizeof(double));
	touch = calloc(o.rounds, sizeof(double));
	if (!paths || !files || !disk || !reader || !ratio || !touch) {
		fprintf(stderr, "read_files: out of memory\n");
		return 1;
	}
	fprintf(stderr, "read_files: writing %u files of %.1f MiB to %s\n", o.files,
		(double)each / (1 << 20), tmp);
	rc = make_files(tmp, o.files, each, paths);
	if (rc < 0)
		fprintf(stderr, "read_files: writing the files: %s\n", strerror(-rc));
	for (unsigned r = 0; r < o.rounds && rc == 0; r++) {
		struct sl_io_read_conf conf = { .chunk_size = o.chunk_kb * 1024,
						.queue_depth = o.depth,
						.buffered = o.buffered };
		struct sl_io_read_stats st;

		rc = sl_io_measure_read_bw(tmp, total < (1u << 30) ? total : 1u << 30,
					   &disk[r]);
		if (rc < 0) {
			fprintf(stderr, "read_files: measuring the disk: %s\n", strerror(-rc));
			break;
		}
		evict(paths, o.files);
		/* memory freed a moment ago (the last round's buffers) is
		 * still the guest's and faults in fast; a VM hands it back to
		 * the host within seconds, and a restoring process starts
		 * with cold memory, so wait for that */
		sleep(o.pause_s);
		for (unsigned i = 0; i < o.files; i++)
			files[i].path = paths[i];
		rc = sl_io_read_files(files, o.files, &conf, &st);
		if (rc < 0) {
			for (unsigned i = 0; i < o.files; i++) {
				char msg[1024];

				if (files[i].error && files[i].error != -ECANCELED) {
					sl_io_read_describe(&files[i], msg, sizeof(msg));
					fprintf(stderr, "read_files: %s\n", msg);
				}
			}
		}
		for (unsigned i = 0; i < o.files; i++) {
			free(files[i].data);
			files[i].data = NULL;
		}
		if (rc < 0)
			break;
		touch[r] = first_touch_bw(total);
		reader[r] = (double)st.bytes / ((double)st.elapsed_ns * 1e-9);
		ratio[r] = reader[r] / disk[r];
		fprintf(stderr,
			"round %u: disk %.2f GB/s, reader %.2f GB/s (%.0f%% of disk), "
			"fresh memory first touch %.2f GB/s, "
			"%llu reads, %u in flight at most, %llu direct files\n",
			r + 1, disk[r] / 1e9, reader[r] / 1e9, 100 * ratio[r],
			touch[r] / 1e9,
			(unsigned long long)st.reads, st.max_inflight,
			(unsigned long long)st.direct_files);
	}
	for (unsigned i = 0; i < o.files; i++)
		unlink(paths[i]);
	rmdir(tmp);
	if (rc < 0)
		return 1;
	printf("{\n"
	       "  \"files\": %u,\n"
	       "  \"bytes\": %llu,\n"
	       "  \"chunk_kb\": %u,\n"
	       "  \"depth\": %u,\n"
	       "  \"direct\": %s,\n"
	       "  \"rounds\": %u,\n"
	       "  \"disk_read_gbps\": %.3f,\n"
	       "  \"reader_gbps\": %.3f,\n"
	       "  \"reader_vs_disk\": %.3f,\n"
	       "  \"first_touch_gbps\": %.3f\n"
	       "}\n",
	       o.files, (unsigned long long)total, o.chunk_kb, o.depth,
	       o.buffered ? "false" : "true", o.rounds,
	       bench_median(disk, o.rounds) / 1e9, bench_median(reader, o.rounds) / 1e9,
	       bench_median(ratio, o.rounds), bench_median(touch, o.rounds) / 1e9);
	free(paths);
	free(files);
	free(disk);
	free(reader);
	free(ratio);
	free(touch);
	return 0;
}
