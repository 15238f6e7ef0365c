/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The parallel io_uring reader (io/uring_reader.c, sl_io_read_files()):
 * byte-exact contents for many files of awkward sizes (empty, around the
 * 4 KiB O_DIRECT block and the chunk size), O_DIRECT and buffered, deep
 * and depth-1 queues; relative paths under a directory; missing files,
 * symlinks and directories refused with an error naming the file and
 * nothing read; injected short reads, -EAGAIN/-EINTR and EIO; progress
 * reports; and the restore use: a keyed-state file read into memory and
 * loaded from there.  No timing is asserted (bench/read_files measures).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rm_tree.h"
#include "sluice/io.h"
#include "sluice/io_file.h"
#include "sluice/snapshot.h"

static char dir[256];

static void mk_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sl_reader_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(void)
{
	rm_tree(dir);
}

static uint8_t byte_at(unsigned file, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)file << 40;

	x ^= x >> 29;
	return (uint8_t)(x * 0xbf58476d1ce4e5b9ull >> 56);
}

/* A file of `size` bytes whose contents depend on (file, offset). */
static void make_file(const char *path, unsigned file, uint64_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	for (uint64_t i = 0; i < size; i++)
		b[i] = byte_at(file, i);
	cr_assert_eq(sl_io_write_all(fd, b, size), 0);
	close(fd);
	free(b);
}

static void expect_contents(const struct sl_io_read_file *f, unsigned file,
			    uint64_t size)
{
	const uint8_t *d = f->data;

	cr_assert_eq(f->error, 0, "%s: %d", f->path, f->error);
	cr_assert_not_null(d, "%s: data even when empty", f->path);
	cr_assert_eq(f->len, size, "%s: %llu bytes, want %llu", f->path,
		     (unsigned long long)f->len, (unsigned long long)size);
	cr_assert_eq((uintptr_t)d % SL_IO_DIRECT_ALIGN, 0);
	for (uint64_t i = 0; i < size; i++)
		if (d[i] != byte_at(file, i))
			cr_assert_fail("%s: byte %llu differs", f->path,
				       (unsigned long long)i);
}

/* Whether the test directory's filesystem takes O_DIRECT. */
static bool dir_has_direct(void)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/.probe", dir);
	fd = open(p, O_RDWR | O_CREAT | O_DIRECT, 0644);
	if (fd >= 0) {
		close(fd);
		unlink(p);
	}
	return fd >= 0;
}

/* Sizes around the edges the reader cares about: empty, the O_DIRECT
 * block, the default 1 MiB chunk and several chunks. */
static const uint64_t edge_sizes[] = {
	0, 1, 100, 4095, 4096, 4097, 8192, 65536 + 7, (1u << 20) - 1, 1u << 20,
	(1u << 20) + 1, 3 * (1u << 20) + 12345,
};
#define N_EDGE (sizeof(edge_sizes) / sizeof(edge_sizes[0]))

struct file_set {
	unsigned n;
	char (*paths)[512];
	uint64_t *sizes;
	struct sl_io_read_file *files;
};

/* The edge sizes, then `extra` small files of pseudo-random sizes. */
static void make_set(struct file_set *s, unsigned extra, bool relative)
{
	s->n = N_EDGE + extra;
	s->paths = calloc(s->n, sizeof(*s->paths));
	s->sizes = calloc(s->n, sizeof(*s->sizes));
	s->files = calloc(s->n, sizeof(*s->files));
	for (unsigned i = 0; i < s->n; i++) {
		char full[600];

		s->sizes[i] = i < N_EDGE ? edge_sizes[i] : (i * 7919u) % 20000;
		snprintf(s->paths[i], sizeof(s->paths[i]), "%s%sf%u.bin",
			 relative ? "" : dir, relative ? "" : "/", i);
		snprintf(full, sizeof(full), "%s/f%u.bin", dir, i);
		make_file(full, i, s->sizes[i]);
		s->files[i].path = s->paths[i];
	}
}

static void free_set(struct file_set *s)
{
	for (unsigned i = 0; i < s->n; i++)
		free(s->files[i].data);
	free(s->paths);
	free(s->sizes);
	free(s->files);
}

static uint64_t set_bytes(const struct file_set *s)
{
	uint64_t b = 0;

	for (unsigned i = 0; i < s->n; i++)
		b += s->sizes[i];
	return b;
}

/* Read the set with `conf` and check every byte. */
static void read_and_check(struct file_set *s, const struct sl_io_read_conf *conf,
			   struct sl_io_read_stats *st)
{
	cr_assert_eq(sl_io_read_files(s->files, s->n, conf, st), 0);
	for (unsigned i = 0; i < s->n; i++)
		expect_contents(&s->files[i], i, s->sizes[i]);
	cr_assert_eq(st->files, s->n);
	cr_assert_eq(st->bytes, set_bytes(s));
}

TestSuite(io_reader, .timeout = 120);

Test(io_reader, many_files_byte_exact_direct)
{
	struct file_set s;
	struct sl_io_read_stats st;
	bool direct;

	mk_dir();
	direct = dir_has_direct();
	make_set(&s, 300, false);
	read_and_check(&s, NULL, &st);
	for (unsigned i = 0; i < s.n; i++)
		cr_assert_eq(s.files[i].direct, direct, "%s", s.paths[i]);
	cr_assert(st.max_inflight > 8, "reads overlap: at most %u in flight",
		  st.max_inflight);
	cr_assert(st.reads >= s.n - 1, "one read per non-empty file at least");
	fprintf(stderr, "io_reader: %u files, %llu bytes, %llu reads, %llu submits, "
		"%u in flight at most, %s\n", s.n, (unsigned long long)st.bytes,
		(unsigned long long)st.reads, (unsigned long long)st.submits,
		st.max_inflight, direct ? "O_DIRECT" : "buffered (no O_DIRECT here)");
	/* a second call on the same array starts from scratch */
	for (unsigned i = 0; i < s.n; i++) {
		free(s.files[i].data);
		s.files[i].data = (void *)0x1;
	}
	read_and_check(&s, NULL, &st);
	free_set(&s);
	rm_dir();
}

Test(io_reader, buffered_small_chunks_and_queue_depths)
{
	struct file_set s;
	struct sl_io_read_stats st;
	const struct sl_io_read_conf confs[] = {
		{ .buffered = true },
		{ .chunk_size = 4096, .queue_depth = 256 },
		{ .chunk_size = 8192, .queue_depth = 1 },
		{ .buffered = true, .chunk_size = 64 * 1024, .queue_depth = 3 },
	};

	mk_dir();
	make_set(&s, 40, false);
	for (size_t c = 0; c < sizeof(confs) / sizeof(confs[0]); c++) {
		read_and_check(&s, &confs[c], &st);
		if (confs[c].buffered)
			for (unsigned i = 0; i < s.n; i++)
				cr_assert(!s.files[i].direct);
		if (confs[c].queue_depth == 1)
			cr_assert_eq(st.max_inflight, 1);
		if (confs[c].chunk_size == 4096)
			cr_assert(st.reads >= 3 * (1u << 20) / 4096,
				  "a 3 MiB file in 4 KiB chunks: %llu reads",
				  (unsigned long long)st.reads);
		for (unsigned i = 0; i < s.n; i++) {
			free(s.files[i].data);
			s.files[i].data = NULL;
		}
	}
	free_set(&s);
	rm_dir();
}

Test(io_reader, relative_paths_under_dir)
{
	struct file_set s;
	struct sl_io_read_stats st;
	struct sl_io_read_conf conf = { .dir = dir, .nofollow = true };

	mk_dir();
	make_set(&s, 5, true);
	read_and_check(&s, &conf, &st);
	free_set(&s);
	rm_dir();
}

Test(io_reader, empty_files)
{
	struct sl_io_read_file f[3] = { { .path = NULL } };
	char p[3][512];
	struct sl_io_read_stats st;

	mk_dir();
	for (int i = 0; i < 3; i++) {
		snprintf(p[i], sizeof(p[i]), "%s/empty%d", dir, i);
		make_file(p[i], 0, 0);
		f[i].path = p[i];
	}
	cr_assert_eq(sl_io_read_files(f, 3, NULL, &st), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_not_null(f[i].data);
		cr_assert_eq(f[i].len, 0);
		free(f[i].data);
	}
	cr_assert_eq(st.files, 3);
	cr_assert_eq(st.reads, 0, "nothing to read in an empty file");
	cr_assert_eq(sl_io_read_files(NULL, 0, NULL, &st), 0, "no files at all");
	rm_dir();
}

/* One bad file among good ones: the call fails before reading anything,
 * the bad file has its error and a message naming it, the others are
 * canceled and hold no memory. */
static void expect_refused(struct file_set *s, unsigned bad, const char *bad_path,
			   const struct sl_io_read_conf *conf, int err,
			   const char *words)
{
	struct sl_io_read_stats st;
	char msg[1024];

	s->files[bad].path = bad_path;
	cr_assert_eq(sl_io_read_files(s->files, s->n, conf, &st), err, "%s", bad_path);
	cr_assert_eq(s->files[bad].error, err);
	cr_assert_null(s->files[bad].data);
	sl_io_read_describe(&s->files[bad], msg, sizeof(msg));
	cr_assert(strstr(msg, bad_path) == msg && strstr(msg, words) != NULL,
		  "message: %s", msg);
	cr_assert_eq(st.reads, 0, "nothing read before the bad file was found");
	for (unsigned i = 0; i < s->n; i++) {
		if (i == bad)
			continue;
		cr_assert_eq(s->files[i].error, -ECANCELED);
		cr_assert_eq(s->files[i].error_op, SL_IO_READ_CANCELED);
		cr_assert_null(s->files[i].data);
		sl_io_read_describe(&s->files[i], msg, sizeof(msg));
		cr_assert(strstr(msg, "another file failed") != NULL, "%s", msg);
	}
	s->files[bad].path = s->paths[bad];
}

Test(io_reader, missing_symlink_and_directory_refused)
{
	struct file_set s;
	struct sl_io_read_conf nofollow = { .nofollow = true };
	char missing[512], link[512], sub[512];
	struct sl_io_read_stats st;

	mk_dir();
	make_set(&s, 3, false);
	snprintf(missing, sizeof(missing), "%s/not-there.kstate", dir);
	expect_refused(&s, 4, missing, NULL, -ENOENT, "open: No such file");
	snprintf(link, sizeof(link), "%s/link", dir);
	cr_assert_eq(symlink(s.paths[2], link), 0);
	expect_refused(&s, 7, link, &nofollow, -ELOOP, "symlink");
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	expect_refused(&s, 0, sub, NULL, -EISDIR, "directory");
	/* without nofollow a symlink is read like its target */
	s.files[7].path = link;
	cr_assert_eq(sl_io_read_files(s.files, s.n, NULL, &st), 0);
	expect_contents(&s.files[7], 2, s.sizes[2]);
	s.files[7].path = s.paths[7];
	/* a missing conf dir fails every file as a set-up error */
	{
		struct sl_io_read_conf c = { .dir = missing };
		char msg[512];

		for (unsigned i = 0; i < s.n; i++) {
			free(s.files[i].data);
			s.files[i].data = NULL;
		}
		cr_assert_eq(sl_io_read_files(s.files, s.n, &c, NULL), -ENOENT);
		cr_assert_eq(s.files[0].error_op, SL_IO_READ_SETUP);
		sl_io_read_describe(&s.files[0], msg, sizeof(msg));
		cr_assert(strstr(msg, "could not start") != NULL, "%s", msg);
	}
	free_set(&s);
	rm_dir();
}

Test(io_reader, bad_arguments)
{
	struct sl_io_read_file f = { .path = NULL };
	struct sl_io_read_conf c = { .chunk_size = 1000 };

	cr_assert_eq(sl_io_read_files(&f, 1, NULL, NULL), -EINVAL, "NULL path");
	f.path = "/dev/null";
	cr_assert_eq(sl_io_read_files(&f, 1, &c, NULL), -EINVAL, "unaligned chunk");
	c = (struct sl_io_read_conf){ .queue_depth = 5000 };
	cr_assert_eq(sl_io_read_files(&f, 1, &c, NULL), -EINVAL);
	cr_assert_eq(sl_io_read_files(NULL, 1, NULL, NULL), -EINVAL);
	/* a character device is not a regular file */
	cr_assert_eq(sl_io_read_files(&f, 1, NULL, NULL), -EINVAL);
	cr_assert_eq(f.error_op, SL_IO_READ_STAT);
}

/* Injected short reads (capped requests, odd-length results) and
 * -EAGAIN/-EINTR: retried to the exact bytes. */
Test(io_reader, short_reads_and_eagain_retried)
{
	struct file_set s;
	struct sl_io_read_stats st;
	struct sl_io_read_fault shorts = { .max_read_bytes = 5000 };
	struct sl_io_read_fault again = { .eagain_every = 3 };
	struct sl_io_read_fault both = { .max_read_bytes = 1000, .eagain_every = 2,
					 .short_every = 3 };
	struct sl_io_read_fault odd = { .short_every = 2 };
	struct sl_io_read_conf c = { .fault = &shorts, .chunk_size = 64 * 1024 };

	mk_dir();
	make_set(&s, 20, false);
	read_and_check(&s, &c, &st);
	cr_assert(st.short_reads > 100, "%llu short reads",
		  (unsigned long long)st.short_reads);
	for (unsigned i = 0; i < s.n; i++) {
		free(s.files[i].data);
		s.files[i].data = NULL;
	}
	c.fault = &again;
	read_and_check(&s, &c, &st);
	cr_assert(st.retries > 10, "%llu retries", (unsigned long long)st.retries);
	for (unsigned i = 0; i < s.n; i++) {
		free(s.files[i].data);
		s.files[i].data = NULL;
	}
	/* results of odd lengths: O_DIRECT resubmits from the block below */
	c.fault = &odd;
	read_and_check(&s, &c, &st);
	cr_assert(st.short_reads > 20, "%llu short reads",
		  (unsigned long long)st.short_reads);
	for (unsigned i = 0; i < s.n; i++) {
		free(s.files[i].data);
		s.files[i].data = NULL;
	}
	/* buffered: the cap is not rounded to blocks, remainders unaligned */
	c.fault = &both;
	c.buffered = true;
	read_and_check(&s, &c, &st);
	cr_assert(st.short_reads > 100 && st.retries > 100);
	free_set(&s);
	rm_dir();
}

/* An I/O error in the middle of a large file: that file fails with the
 * offset, no new reads start, nothing leaks (ASan), files finished
 * before keep their contents. */
Test(io_reader, read_error_names_file_and_offset)
{
	struct file_set s;
	struct sl_io_read_stats st;
	struct sl_io_read_fault eio = { .nth_read = 3 };
	struct sl_io_read_conf c = { .fault = &eio, .chunk_size = 64 * 1024,
				     .queue_depth = 4 };
	unsigned big = N_EDGE - 1, failed = 0, done = 0;
	char msg[1024];

	mk_dir();
	make_set(&s, 10, false);
	/* only the 3 MiB file is subject to the fault */
	snprintf(eio.path_substr, sizeof(eio.path_substr), "/f%u.bin", big);
	cr_assert_eq(sl_io_read_files(s.files, s.n, &c, &st), -EIO);
	cr_assert_eq(s.files[big].error, -EIO);
	cr_assert_eq(s.files[big].error_op, SL_IO_READ_READ);
	cr_assert_null(s.files[big].data);
	sl_io_read_describe(&s.files[big], msg, sizeof(msg));
	cr_assert(strstr(msg, s.paths[big]) == msg &&
			  strstr(msg, "read at offset") && strstr(msg, "Input/output error"),
		  "%s", msg);
	cr_assert_eq(s.files[big].error_offset % (64 * 1024), 0, "%s", msg);
	for (unsigned i = 0; i < s.n; i++) {
		if (s.files[i].error == 0) {
			expect_contents(&s.files[i], i, s.sizes[i]);
			done++;
			cr_assert(i < big, "files after the failure are not started");
		} else {
			cr_assert_null(s.files[i].data);
			failed++;
		}
	}
	cr_assert_eq(done + failed, s.n);
	cr_assert(done >= big - 1, "files before the big one were read (%u)", done);
	cr_assert_eq(st.files, done);
	free_set(&s);
	rm_dir();
}

struct progress_log {
	unsigned calls;
	uint64_t last, total;
	bool monotonic;
};

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress_log *p = arg;

	if (done < p->last || (p->calls && total != p->total))
		p->monotonic = false;
	p->calls++;
	p->last = done;
	p->total = total;
}

Test(io_reader, progress_reports)
{
	struct file_set s;
	struct sl_io_read_stats st;
	struct progress_log p = { .monotonic = true };
	struct sl_io_read_conf c = { .progress = on_progress, .progress_arg = &p,
				     .progress_every = 256 * 1024,
				     .chunk_size = 64 * 1024,
				     /* completions are looked at in batches of
				      * up to queue_depth chunks: keep them
				      * smaller than progress_every */
				     .queue_depth = 2 };

	mk_dir();
	make_set(&s, 10, false);
	read_and_check(&s, &c, &st);
	cr_assert(p.monotonic);
	cr_assert_eq(p.total, set_bytes(&s));
	cr_assert_eq(p.last, p.total, "the last call reports everything");
	cr_assert(p.calls >= p.total / (256 * 1024) / 2 && p.calls <= p.total / (256 * 1024) + 2,
		  "%u calls for %llu bytes every 256 KiB", p.calls,
		  (unsigned long long)p.total);
	free_set(&s);
	rm_dir();
}

/* on_file: each file once, complete when called; a refusal fails it */
struct file_log {
	struct file_set *s;
	unsigned *calls;
	unsigned refuse; /* index to refuse, or UINT32_MAX */
	bool complete;	 /* every call saw the file's whole contents */
};

static int on_file(void *arg, unsigned i)
{
	struct file_log *l = arg;
	const struct sl_io_read_file *f = &l->s->files[i];

	l->calls[i]++;
	if (f->data == NULL || f->len != l->s->sizes[i])
		l->complete = false;
	for (uint64_t off = 0; off < f->len && l->complete; off += 997)
		l->complete = ((const uint8_t *)f->data)[off] == byte_at(i, off);
	return i == l->refuse ? -EBADMSG : 0;
}

Test(io_reader, on_file_called_once_per_file_when_read)
{
	struct file_set s;
	struct sl_io_read_stats st;
	struct file_log l = { .refuse = UINT32_MAX, .complete = true };
	struct sl_io_read_conf c = { .chunk_size = 64 * 1024, .queue_depth = 8,
				     .on_file = on_file, .on_file_arg = &l };

	mk_dir();
	make_set(&s, 20, false);
	l.s = &s;
	l.calls = calloc(s.n, sizeof(*l.calls));
	read_and_check(&s, &c, &st);
	cr_assert(l.complete, "on_file saw a file before it was read");
	for (unsigned i = 0; i < s.n; i++)
		cr_assert_eq(l.calls[i], 1, "file %u: %u calls", i, l.calls[i]);

	/* refusing one file fails the call with its error, that file
	 * without data, SL_IO_READ_CHECK */
	for (unsigned i = 0; i < s.n; i++) {
		free(s.files[i].data);
		l.calls[i] = 0;
	}
	l.refuse = N_EDGE - 1; /* the largest, several chunks */
	cr_assert_eq(sl_io_read_files(s.files, s.n, &c, &st), -EBADMSG);
	cr_assert_eq(s.files[l.refuse].error, -EBADMSG);
	cr_assert_eq(s.files[l.refuse].error_op, SL_IO_READ_CHECK);
	cr_assert_null(s.files[l.refuse].data);
	char msg[600];
	sl_io_read_describe(&s.files[l.refuse], msg, sizeof(msg));
	cr_assert_not_null(strstr(msg, "refused by its check"), "%s", msg);
	for (unsigned i = 0; i < s.n; i++)
		cr_assert_leq(l.calls[i], 1);
	free(l.calls);
	free_set(&s);
	rm_dir();
}

/* ---- the restore use ---------------------------------------------------- */

static int file_sink(void *arg, uint64_t off, void *buf, size_t len)
{
	int fd = *(int *)arg;
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	sl_snap_buf_free(buf);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int count_entries(void *arg, const struct sl_snap_kv *kv, unsigned int n)
{
	(void)kv;
	*(uint64_t *)arg += n;
	return 0;
}

Test(io_reader, keyed_state_file_loads_from_memory)
{
	char path[512];
	struct sl_snap_kstate_conf kc = {
		.uid = "agg", .checkpoint_id = 3, .max_parallelism = 128,
		.kg_first = 0, .kg_count = 128, .key_size = 8, .value_size = 24,
		.sink = file_sink,
	};
	struct sl_snap_kstate_enc *e;
	struct sl_snap_file_info info;
	struct sl_io_read_file f = { .path = path };
	struct sl_snap_kstate_visitor v = { .on_entries = count_entries };
	struct sl_snap_src src;
	struct sl_snap_err err;
	uint64_t entries = 0;
	uint8_t key[8], val[24] = { 0 };
	int fd;

	mk_dir();
	snprintf(path, sizeof(path), "%s/agg-0-c3.kstate", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	kc.sink_arg = &fd;
	e = sl_snap_kstate_enc_create(&kc);
	cr_assert_not_null(e);
	for (uint64_t i = 0; i < 100000; i++) {
		struct sl_snap_kv kv = { (uint16_t)(i % 128), i, key, val };

		memcpy(key, &i, 8);
		cr_assert_eq(sl_snap_kstate_enc_add(e, &kv, 1), 0);
	}
	cr_assert_eq(sl_snap_kstate_enc_finish(e, &info), 0);
	sl_snap_kstate_enc_free(e);
	close(fd);

	cr_assert_eq(sl_io_read_files(&f, 1, NULL, NULL), 0);
	cr_assert_eq(f.len, info.size);
	src = (struct sl_snap_src){ "chk-3/agg-0-c3.kstate", f.data, f.len, -1 };
	v.arg = &entries;
	cr_assert_eq(sl_snap_kstate_load(&src, &v, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(entries, 100000);
	free(f.data);
	rm_dir();
}
