/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The io_uring writer: concurrent submitters, per-file ordering (fsync
 * after the writes it covers), retry paths (short writes, EAGAIN/EINTR),
 * failures (ENOSPC, EIO) that fail one file and never the writer, batch
 * references, a full request ring, inline polling, publish, O_DIRECT, and
 * a throughput print against the disk's measured bandwidth.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include "rm_tree.h"
#include "eal_fixture.h"
#include "sluice/batch.h"
#include "sluice/io.h"

/* ------------------------------------------------------------------ */
/* helpers                                                            */

static char tmpdir[256];

static const char *mk_tmp(void)
{
	/* under /tmp: a real disk filesystem here (O_DIRECT works) */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sl_iow_XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	return tmpdir;
}

static void rm_tmp(void)
{
	rm_tree(tmpdir);
}

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static struct sl_io_writer *mk_writer(const char *name, unsigned qd,
				      unsigned ring, unsigned max_ops)
{
	struct sl_io_writer_conf c = {
		.name = name, .queue_depth = qd, .request_ring_size = ring,
		.max_ops = max_ops, .socket = SOCKET_ID_ANY,
	};
	struct sl_io_writer *w = sl_io_writer_create(&c);

	cr_assert_not_null(w, "writer create failed: %s", strerror(rte_errno));
	return w;
}

static struct rte_ring *mk_cq(const char *name, unsigned n)
{
	struct rte_ring *cq = sl_io_completion_ring_create(name, n, SOCKET_ID_ANY);

	cr_assert_not_null(cq);
	return cq;
}

/* Contents of file k at offset o: depends on both, so misplaced or
 * mixed-up writes show. */
static inline uint8_t pat(unsigned k, uint64_t o)
{
	return (uint8_t)((o * 131u) ^ (o >> 9) ^ (k * 0x3bu) ^ 0x5a);
}

static void fill(uint8_t *buf, unsigned k, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(k, off + i);
}

/* The file holds exactly `size` bytes of pattern k. */
static void expect_file(const char *path, unsigned k, uint64_t size)
{
	struct stat st;
	uint8_t *buf;
	FILE *fp;

	cr_assert_eq(stat(path, &st), 0, "%s missing", path);
	cr_assert_eq((uint64_t)st.st_size, size, "%s: size %lld, want %llu", path,
		     (long long)st.st_size, (unsigned long long)size);
	buf = malloc(size ? size : 1);
	fp = fopen(path, "rb");
	cr_assert_not_null(fp);
	cr_assert_eq(fread(buf, 1, size, fp), size);
	fclose(fp);
	for (uint64_t i = 0; i < size; i++)
		if (buf[i] != pat(k, i))
			cr_assert_fail("%s: byte %llu is %u, want %u", path,
				       (unsigned long long)i, buf[i], pat(k, i));
	free(buf);
}

/* Poll (if w) and reap until `want` completions arrived. */
static void drain(struct sl_io_writer *w, struct rte_ring *cq,
		  struct sl_io_completion *out, unsigned want)
{
	uint64_t deadline = rte_get_timer_cycles() + 60 * rte_get_timer_hz();
	unsigned got = 0;

	while (got < want) {
		if (w != NULL)
			sl_io_writer_poll(w, 64);
		got += sl_io_reap(cq, out + got, want - got);
		cr_assert(rte_get_timer_cycles() < deadline,
			  "timed out: %u of %u completions", got, want);
	}
	/* and no more than that */
	for (int i = 0; i < 100 && w != NULL; i++)
		sl_io_writer_poll(w, 64);
	cr_assert_eq(sl_io_reap(cq, out, 1), 0, "unexpected extra completion");
}

/* The completion of `cookie`, which must be there exactly once. */
static const struct sl_io_completion *
find(const struct sl_io_completion *c, unsigned n, uint64_t cookie)
{
	const struct sl_io_completion *hit = NULL;

	for (unsigned i = 0; i < n; i++) {
		if (c[i].cookie != cookie)
			continue;
		cr_assert_null(hit, "cookie %llu completed twice",
			       (unsigned long long)cookie);
		hit = &c[i];
	}
	cr_assert_not_null(hit, "cookie %llu never completed",
			   (unsigned long long)cookie);
	return hit;
}

/* Open descriptors of this process (to check that CLOSE always closes). */
static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	cr_assert_not_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void submit(struct sl_io_writer *w, struct sl_io_req r)
{
	cr_assert_eq(sl_io_submit(w, &r), 0);
}

/* ------------------------------------------------------------------ */
/* two submitter lcores, one writer polled by the main lcore          */

#define MT_WRITES 256
#define MT_CHUNK (16u << 10)

struct submitter {
	struct sl_io_writer *w;
	struct rte_ring *cq;
	struct sl_io_file *f;
	uint8_t *buf;
	unsigned k;
	/* results, checked by the main lcore (Criterion asserts belong
	 * there) */
	unsigned seen[MT_WRITES + 3];
	int bad_res;
	unsigned fsync_pos;   /* index among completions of the fsync */
	unsigned last_write;  /* index of the last write completion */
	int done;
};

static void reap_some(struct submitter *s, unsigned *n)
{
	struct sl_io_completion c[32];
	unsigned got = sl_io_reap(s->cq, c, 32);

	for (unsigned i = 0; i < got; i++, (*n)++) {
		uint64_t idx = c[i].cookie & 0xffffffffu;

		if ((c[i].cookie >> 32) != s->k || idx >= MT_WRITES + 3) {
			s->bad_res = -1000;
			continue;
		}
		s->seen[idx]++;
		if (idx < MT_WRITES) {
			if (c[i].res != (int)MT_CHUNK)
				s->bad_res = c[i].res ? c[i].res : -999;
			s->last_write = *n;
		} else if (c[i].res != 0) {
			s->bad_res = c[i].res;
		}
		if (idx == MT_WRITES + 1)
			s->fsync_pos = *n;
	}
}

static int submitter_main(void *arg)
{
	struct submitter *s = arg;
	struct sl_io_req r;
	uint64_t tag = (uint64_t)s->k << 32;
	unsigned n = 0;

	for (unsigned i = 0; i < MT_WRITES + 3; i++) {
		if (i == 0)
			r = sl_io_req_open(s->f, s->cq, tag | MT_WRITES);
		else if (i <= MT_WRITES)
			r = sl_io_req_write(s->f, (uint64_t)(i - 1) * MT_CHUNK,
					    s->buf + (size_t)(i - 1) * MT_CHUNK,
					    MT_CHUNK, s->cq, tag | (i - 1));
		else if (i == MT_WRITES + 1)
			r = sl_io_req_fsync(s->f, s->cq, tag | (MT_WRITES + 1));
		else
			r = sl_io_req_close(s->f, s->cq, tag | (MT_WRITES + 2));
		while (sl_io_submit(s->w, &r) == -ENOBUFS) {
			reap_some(s, &n); /* always reap while retrying */
			sched_yield();
		}
	}
	while (n < MT_WRITES + 3) {
		reap_some(s, &n);
		sched_yield();
	}
	/* release: the main lcore reads the results after seeing done */
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return 0;
}

Test(io_writer, two_lcores_write_separate_files, .timeout = 120)
{
	sl_test_eal("(0-2)@(0-1)", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("mt", 32, 64, 0);
	static struct submitter s[2];
	char path[2][512];
	struct sl_io_writer_stats st;
	unsigned lc[2], i = 0, lcore;

	RTE_LCORE_FOREACH_WORKER(lcore)
		if (i < 2)
			lc[i++] = lcore;
	cr_assert_eq(i, 2, "need two worker lcores");
	for (i = 0; i < 2; i++) {
		char name[16];

		memset(&s[i], 0, sizeof(s[i]));
		snprintf(name, sizeof(name), "cq%u", i);
		snprintf(path[i], sizeof(path[i]), "%s/part-%u", tmpdir, i);
		s[i].w = w;
		s[i].k = i + 1;
		s[i].cq = mk_cq(name, 1024);
		s[i].f = sl_io_file_create(path[i], 0, 0644);
		s[i].buf = malloc((size_t)MT_WRITES * MT_CHUNK);
		fill(s[i].buf, s[i].k, 0, (size_t)MT_WRITES * MT_CHUNK);
		cr_assert_eq(rte_eal_remote_launch(submitter_main, &s[i], lc[i]), 0);
	}
	/* acquire: pairs with the submitters' release of done */
	while (!__atomic_load_n(&s[0].done, __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&s[1].done, __ATOMIC_ACQUIRE)) {
		if (sl_io_writer_poll(w, 64) == 0)
			sched_yield(); /* three lcores share two cores */
	}
	rte_eal_mp_wait_lcore();
	for (i = 0; i < 2; i++) {
		cr_assert_eq(s[i].bad_res, 0, "submitter %u saw result %d", i,
			     s[i].bad_res);
		for (unsigned j = 0; j < MT_WRITES + 3; j++)
			cr_assert_eq(s[i].seen[j], 1, "submitter %u cookie %u seen %u times",
				     i, j, s[i].seen[j]);
		cr_assert_gt(s[i].fsync_pos, s[i].last_write,
			     "fsync completed before a write it covers");
		expect_file(path[i], s[i].k, (uint64_t)MT_WRITES * MT_CHUNK);
		sl_io_file_free(s[i].f);
		sl_io_completion_ring_free(s[i].cq);
		free(s[i].buf);
	}
	sl_io_writer_stats(w, &st);
	cr_assert_eq(st.requests, 2 * (MT_WRITES + 3));
	cr_assert_eq(st.completions, 2 * (MT_WRITES + 3));
	cr_assert_eq(st.writes, 2 * MT_WRITES);
	cr_assert_eq(st.bytes_written, 2ull * MT_WRITES * MT_CHUNK);
	cr_assert_eq(st.fsyncs, 2);
	cr_assert_eq(st.errors, 0);
	cr_assert_eq(st.held, 0);
	cr_assert_eq(st.inflight, 0);
	cr_assert_leq(st.submits, st.sqes, "SQEs go to the kernel in batches");
	cr_log_info("2 submitters: %llu SQEs in %llu submits, %llu ENOBUFS retries",
		    (unsigned long long)st.sqes, (unsigned long long)st.submits,
		    (unsigned long long)st.enobufs);
	sl_io_writer_destroy(w);
	rm_tmp();
	sl_test_eal_fini();
}

/* ------------------------------------------------------------------ */
/* ordering                                                           */

Test(io_writer, fsync_only_after_earlier_writes, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("ord", 64, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	const unsigned n = 8, chunk = 1u << 20, delay_us = 50000;
	struct sl_io_fault fault = { .delay_us = delay_us };
	struct sl_io_completion c[16];
	uint64_t t_done[16] = { 0 }, t0;
	uint8_t *buf = malloc((size_t)n * chunk);
	char path[512];
	unsigned got = 0;

	path_in(path, sizeof(path), "ordered");
	struct sl_io_file *f = sl_io_file_create(path, 0, 0644);
	fill(buf, 3, 0, (size_t)n * chunk);
	submit(w, sl_io_req_open(f, cq, 100));
	drain(w, cq, c, 1);
	cr_assert_eq(c[0].res, 0);

	cr_assert_eq(sl_io_writer_fault_set(w, &fault), 0);
	t0 = rte_get_timer_cycles();
	for (unsigned i = 0; i < n; i++)
		submit(w, sl_io_req_write(f, (uint64_t)i * chunk, buf + (size_t)i * chunk,
					  chunk, cq, i));
	submit(w, sl_io_req_fsync(f, cq, 50));
	while (got < n + 1) {
		unsigned k;

		sl_io_writer_poll(w, 64);
		k = sl_io_reap(cq, c + got, n + 1 - got);
		for (unsigned j = got; j < got + k; j++)
			t_done[c[j].cookie == 50 ? n : c[j].cookie] = rte_get_timer_cycles();
		got += k;
	}
	cr_assert_eq(c[n].cookie, 50, "the fsync completed before a write it covers");
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(find(c, n + 1, i)->res, (int)chunk);
		cr_assert_leq(t_done[i], t_done[n]);
	}
	cr_assert_eq(find(c, n + 1, 50)->res, 0);
	/* every CQE is held delay_us: writes complete after one delay, the
	 * fsync, issued only then, after two */
	double fsync_us = (double)(t_done[n] - t0) * 1e6 / rte_get_timer_hz();
	cr_assert_geq(fsync_us, 1.9 * delay_us,
		      "fsync done after %.0f us: it did not wait for the writes",
		      fsync_us);
	sl_io_writer_fault_set(w, NULL);
	submit(w, sl_io_req_close(f, cq, 51));
	drain(w, cq, c, 1);
	cr_assert_eq(c[0].res, 0);
	expect_file(path, 3, (uint64_t)n * chunk);
	sl_io_file_free(f);
	free(buf);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* Writes submitted before the OPEN completed wait for it, and CLOSE waits
 * for everything: all in one burst, no waiting by the caller. */
Test(io_writer, open_write_close_in_one_burst, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("burst", 8, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_req r[20];
	struct sl_io_completion c[20];
	uint8_t buf[16 * 1000];
	char path[512];

	path_in(path, sizeof(path), "burst");
	struct sl_io_file *f = sl_io_file_create(path, 0, 0600);
	fill(buf, 9, 0, sizeof(buf));
	r[0] = sl_io_req_open(f, cq, 0);
	for (unsigned i = 0; i < 16; i++) /* backwards, to mix offsets */
		r[1 + i] = sl_io_req_write(f, (15 - i) * 1000u, buf + (15 - i) * 1000u,
					   1000, cq, 1 + i);
	r[17] = sl_io_req_fsync(f, cq, 17);
	r[18] = sl_io_req_close(f, cq, 18);
	cr_assert_eq(sl_io_submit_burst(w, r, 19), 19);
	drain(w, cq, c, 19);
	for (unsigned i = 0; i < 19; i++)
		cr_assert_eq(find(c, 19, i)->res, i >= 1 && i <= 16 ? 1000 : 0,
			     "request %u", i);
	cr_assert_eq(find(c, 19, 18)->op, SL_IO_OP_CLOSE);
	expect_file(path, 9, sizeof(buf));
	sl_io_file_free(f);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* ------------------------------------------------------------------ */
/* retry paths                                                        */

Test(io_writer, short_writes_and_eagain_still_exact, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("short", 16, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_fault fault = { .max_write_bytes = 1000, .eagain_every = 3 };
	static const uint32_t sizes[] = { 1, 999, 1000, 1001, 4096, 12345, 65536, 100003 };
	const unsigned n = RTE_DIM(sizes);
	struct sl_io_completion c[32];
	struct sl_io_writer_stats st;
	uint64_t total = 0;
	char path[512];

	for (unsigned i = 0; i < n; i++)
		total += sizes[i];
	uint8_t *buf = malloc(total);
	fill(buf, 4, 0, total);
	path_in(path, sizeof(path), "short");
	struct sl_io_file *f = sl_io_file_create(path, 0, 0644);
	cr_assert_eq(sl_io_writer_fault_set(w, &fault), 0);
	submit(w, sl_io_req_open(f, cq, 1000));
	for (unsigned i = 0, off = 0; i < n; off += sizes[i], i++)
		submit(w, sl_io_req_write(f, off, buf + off, sizes[i], cq, i));
	submit(w, sl_io_req_fsync(f, cq, 1001));
	submit(w, sl_io_req_close(f, cq, 1002));
	drain(w, cq, c, n + 3);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(find(c, n + 3, i)->res, (int)sizes[i],
			     "write %u: %d", i, find(c, n + 3, i)->res);
	cr_assert_eq(find(c, n + 3, 1001)->res, 0);
	cr_assert_eq(find(c, n + 3, 1002)->res, 0);
	expect_file(path, 4, total);
	sl_io_writer_stats(w, &st);
	cr_assert_gt(st.short_writes, 150, "short writes: %llu",
		     (unsigned long long)st.short_writes);
	cr_assert_gt(st.retries, 50, "EAGAIN/EINTR retries: %llu",
		     (unsigned long long)st.retries);
	cr_assert_eq(st.errors, 0);
	sl_io_file_free(f);
	free(buf);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* ------------------------------------------------------------------ */
/* failures                                                           */

Test(io_writer, enospc_fails_one_file_not_the_writer, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("nospc", 16, 128, 0);
	struct rte_ring *cq = mk_cq("cq", 128);
	const unsigned n = 8, chunk = 64u << 10, budget = 300000;
	struct sl_io_fault fault = { .budget_err = ENOSPC, .budget_bytes = budget };
	struct sl_io_completion c[64];
	char vpath[512], opath[512], npath[512];
	uint8_t *bv = malloc((size_t)n * chunk), *bo = malloc((size_t)n * chunk);
	struct sl_io_writer_stats st;

	unsigned fds = open_fds();

	strcpy(fault.path_substr, "victim");
	path_in(vpath, sizeof(vpath), "victim");
	path_in(opath, sizeof(opath), "other");
	path_in(npath, sizeof(npath), "later");
	fill(bv, 5, 0, (size_t)n * chunk);
	fill(bo, 6, 0, (size_t)n * chunk);
	struct sl_io_file *v = sl_io_file_create(vpath, 0, 0644);
	struct sl_io_file *o = sl_io_file_create(opath, 0, 0644);
	cr_assert_eq(sl_io_writer_fault_set(w, &fault), 0);
	submit(w, sl_io_req_open(v, cq, 1000));
	submit(w, sl_io_req_open(o, cq, 2000));
	for (unsigned i = 0; i < n; i++) {
		submit(w, sl_io_req_write(v, (uint64_t)i * chunk, bv + (size_t)i * chunk,
					  chunk, cq, 1000 + 1 + i));
		submit(w, sl_io_req_write(o, (uint64_t)i * chunk, bo + (size_t)i * chunk,
					  chunk, cq, 2000 + 1 + i));
	}
	submit(w, sl_io_req_fsync(v, cq, 1100));
	submit(w, sl_io_req_fsync(o, cq, 2100));
	drain(w, cq, c, 2 * n + 4);
	/* the victim: writes within the budget succeed, the one crossing it
	 * is cut short and then fails, and so does everything after */
	for (unsigned i = 0; i < n; i++) {
		int want = (i + 1) * chunk <= budget ? (int)chunk : -ENOSPC;

		cr_assert_eq(find(c, 2 * n + 4, 1001 + i)->res, want,
			     "victim write %u: %d", i, find(c, 2 * n + 4, 1001 + i)->res);
		cr_assert_eq(find(c, 2 * n + 4, 2001 + i)->res, (int)chunk,
			     "other write %u", i);
	}
	cr_assert_eq(find(c, 2 * n + 4, 1100)->res, -ENOSPC, "victim fsync fails");
	cr_assert_eq(find(c, 2 * n + 4, 2100)->res, 0, "other file unaffected");

	/* disk space back: the victim stays failed, new files work */
	sl_io_writer_fault_set(w, NULL);
	submit(w, sl_io_req_write(v, 0, bv, 100, cq, 1200));
	submit(w, sl_io_req_close(v, cq, 1201));
	submit(w, sl_io_req_close(o, cq, 2201));
	drain(w, cq, c, 3);
	cr_assert_eq(find(c, 3, 1200)->res, -ENOSPC, "failed file stays failed");
	cr_assert_eq(find(c, 3, 1201)->res, -ENOSPC, "close reports the failure");
	cr_assert_eq(find(c, 3, 2201)->res, 0);
	expect_file(opath, 6, (uint64_t)n * chunk);

	struct sl_io_file *l = sl_io_file_create(npath, 0, 0644);
	submit(w, sl_io_req_open(l, cq, 1));
	submit(w, sl_io_req_write(l, 0, bv, chunk, cq, 2));
	submit(w, sl_io_req_fsync(l, cq, 3));
	submit(w, sl_io_req_close(l, cq, 4));
	drain(w, cq, c, 4);
	for (unsigned i = 1; i <= 4; i++)
		cr_assert_eq(find(c, 4, i)->res, i == 2 ? (int)chunk : 0);
	expect_file(npath, 5, chunk);

	sl_io_writer_stats(w, &st);
	cr_assert_eq(st.held, 0);
	cr_assert_eq(st.inflight, 0);
	/* victim writes 4..7, its fsync, the late write, the close */
	cr_assert_eq(st.errors, 7, "errors: %llu", (unsigned long long)st.errors);
	cr_assert_eq(open_fds(), fds, "every file closed, failed or not");
	sl_io_file_free(v);
	sl_io_file_free(o);
	sl_io_file_free(l);
	free(bv);
	free(bo);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

Test(io_writer, eio_on_nth_write, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("eio", 16, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_fault fault = { .nth_write = 3 };
	struct sl_io_completion c[16];
	uint8_t buf[6 * 4096];
	char a[512], b[512];

	fill(buf, 7, 0, sizeof(buf));
	path_in(a, sizeof(a), "a");
	path_in(b, sizeof(b), "b");
	struct sl_io_file *fa = sl_io_file_create(a, 0, 0644);
	struct sl_io_file *fb = sl_io_file_create(b, 0, 0644);
	unsigned fds = open_fds();

	submit(w, sl_io_req_open(fa, cq, 0));
	drain(w, cq, c, 1);
	cr_assert_eq(sl_io_writer_fault_set(w, &fault), 0);
	for (unsigned i = 0; i < 6; i++)
		submit(w, sl_io_req_write(fa, i * 4096u, buf + i * 4096u, 4096, cq, 1 + i));
	submit(w, sl_io_req_fsync(fa, cq, 10));
	submit(w, sl_io_req_close(fa, cq, 11));
	drain(w, cq, c, 8);
	cr_assert_eq(find(c, 8, 1)->res, 4096);
	cr_assert_eq(find(c, 8, 2)->res, 4096);
	cr_assert_eq(find(c, 8, 3)->res, -EIO, "the 3rd write fails");
	for (unsigned i = 4; i <= 6; i++)
		cr_assert_eq(find(c, 8, i)->res, -EIO, "later writes fail (sticky)");
	cr_assert_eq(find(c, 8, 10)->res, -EIO);
	cr_assert_eq(find(c, 8, 11)->res, -EIO);
	cr_assert_eq(open_fds(), fds, "the failed file was closed");

	/* the fault was one-shot: another file writes fine */
	submit(w, sl_io_req_open(fb, cq, 20));
	for (unsigned i = 0; i < 6; i++)
		submit(w, sl_io_req_write(fb, i * 4096u, buf + i * 4096u, 4096, cq, 21 + i));
	submit(w, sl_io_req_fsync(fb, cq, 30));
	submit(w, sl_io_req_close(fb, cq, 31));
	drain(w, cq, c, 9);
	for (unsigned i = 0; i < 9; i++)
		cr_assert_geq(c[i].res, 0, "cookie %llu: %d",
			      (unsigned long long)c[i].cookie, c[i].res);
	expect_file(b, 7, sizeof(buf));
	sl_io_file_free(fa);
	sl_io_file_free(fb);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* Misuse and open failures complete with an error, never crash. */
Test(io_writer, bad_requests_complete_with_errors, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("bad", 8, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_completion c[16];
	char p[512], q[512];
	uint8_t buf[16] = { 0 };

	path_in(p, sizeof(p), "never-opened");
	path_in(q, sizeof(q), "no/such/dir/file");
	struct sl_io_file *f = sl_io_file_create(p, 0, 0644);
	struct sl_io_file *g = sl_io_file_create(q, 0, 0644);
	struct sl_io_req junk = { .op = 99, .file = f, .cq = cq, .cookie = 9 };

	unsigned fds = open_fds();
	struct sl_io_writer_conf long_name = { .name = "abcdefghijklmnopqrstuvwx" };

	cr_assert_null(sl_io_writer_create(NULL));
	cr_assert_eq(rte_errno, EINVAL);
	cr_assert_null(sl_io_writer_create(&long_name), "24 characters is too long");
	cr_assert_eq(rte_errno, EINVAL);
	long_name.name = "abcdefghijklmnopqrstuvw";
	struct sl_io_writer *w23 = sl_io_writer_create(&long_name);
	cr_assert_not_null(w23, "23 characters fit");
	sl_io_writer_destroy(w23);
	cr_assert_null(sl_io_file_create("", 0, 0644));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(sl_io_file_create(p, 0x80, 0644));
	submit(w, sl_io_req_write(f, 0, buf, sizeof(buf), cq, 1));
	submit(w, sl_io_req_fsync(f, cq, 2));
	submit(w, sl_io_req_publish(f, cq, 3));
	submit(w, sl_io_req_close(f, cq, 4));
	submit(w, junk);
	submit(w, sl_io_req_open(g, cq, 5));
	submit(w, sl_io_req_write(g, 0, buf, sizeof(buf), cq, 6));
	submit(w, sl_io_req_close(g, cq, 7));
	drain(w, cq, c, 8);
	cr_assert_eq(find(c, 8, 1)->res, -EBADF, "write before open");
	cr_assert_eq(find(c, 8, 2)->res, -EBADF, "fsync before open");
	cr_assert_eq(find(c, 8, 3)->res, -EINVAL, "publish without SL_IO_F_TMP");
	cr_assert_eq(find(c, 8, 4)->res, -EBADF, "close before open");
	cr_assert_eq(find(c, 8, 9)->res, -EINVAL, "unknown op");
	cr_assert_eq(find(c, 8, 5)->res, -ENOENT, "open in a missing directory");
	cr_assert_eq(find(c, 8, 6)->res, -ENOENT, "the open's error sticks");
	cr_assert_eq(find(c, 8, 7)->res, -ENOENT);
	cr_assert_eq(open_fds(), fds);
	sl_io_file_free(f);
	sl_io_file_free(g);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* ------------------------------------------------------------------ */
/* references                                                         */

static unsigned fn_released;

static void count_release(void *arg)
{
	(*(unsigned *)arg)++;
}

Test(io_writer, batch_references_dropped_exactly_once, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	const unsigned nb = 64, cap = 128, rs = 32;
	struct rte_mempool *mp = sl_batch_pool_create("iowp", nb, cap, rs, SOCKET_ID_ANY);
	struct sl_io_writer *w = mk_writer("refs", 16, 128, 0);
	struct rte_ring *cq = mk_cq("cq", 256);
	struct sl_io_fault fault = { .budget_err = ENOSPC, .budget_bytes = 20 * cap * rs };
	struct sl_batch *b[64];
	struct sl_io_completion c[128];
	char gpath[512], vpath[512];
	const uint32_t len = cap * rs;

	cr_assert_not_null(mp);
	strcpy(fault.path_substr, "victim");
	path_in(gpath, sizeof(gpath), "good");
	path_in(vpath, sizeof(vpath), "victim");
	struct sl_io_file *g = sl_io_file_create(gpath, 0, 0644);
	struct sl_io_file *v = sl_io_file_create(vpath, 0, 0644);
	cr_assert_eq(sl_io_writer_fault_set(w, &fault), 0);
	submit(w, sl_io_req_open(g, cq, 1000));
	submit(w, sl_io_req_open(v, cq, 2000));
	for (unsigned i = 0; i < nb; i++) {
		b[i] = sl_batch_get(mp, rs);
		cr_assert_not_null(b[i]);
		b[i]->count = cap;
		fill(b[i]->data, i < 32 ? 8 : 9, (uint64_t)(i % 32) * len, len);
		/* the channel still holds its own reference: hand one more
		 * to the writer, as channel-state persistence does */
		sl_batch_ref(b[i], 1);
		submit(w, sl_io_req_write_batch(i < 32 ? g : v, (uint64_t)(i % 32) * len,
						b[i]->data, len, b[i], cq, i));
	}
	cr_assert_eq(rte_mempool_avail_count(mp), 0);
	/* the channel consumes its batches meanwhile */
	for (unsigned i = 0; i < nb; i++)
		sl_batch_put(b[i]);
	submit(w, sl_io_req_fsync(g, cq, 1001));
	submit(w, sl_io_req_close(g, cq, 1002));
	submit(w, sl_io_req_close(v, cq, 2002));
	drain(w, cq, c, nb + 5);
	for (unsigned i = 0; i < nb; i++) {
		int res = find(c, nb + 5, i)->res;

		if (i < 32 + 20) /* all good ones, 20 victims in budget */
			cr_assert_eq(res, (int)len, "batch %u: %d", i, res);
		else
			cr_assert_eq(res, -ENOSPC, "batch %u: %d", i, res);
	}
	cr_assert_eq(rte_mempool_avail_count(mp), nb,
		     "every batch back in the pool: %u of %u",
		     rte_mempool_avail_count(mp), nb);
	cr_assert_eq(rte_mempool_in_use_count(mp), 0);
	expect_file(gpath, 8, 32ull * len);

	/* a refused submission leaves the reference with the caller */
	sl_io_writer_fault_set(w, NULL);
	struct sl_io_writer *full = mk_writer("full", 8, 1, 0);
	struct sl_batch *x = sl_batch_get(mp, rs);
	char rpath[512];
	path_in(rpath, sizeof(rpath), "refused");
	struct sl_io_file *h = sl_io_file_create(rpath, 0, 0644);
	submit(full, sl_io_req_open(h, cq, 1));
	struct sl_io_req r = sl_io_req_write_batch(h, 0, x->data, 8, x, cq, 2);
	cr_assert_eq(sl_io_submit(full, &r), -ENOBUFS);
	cr_assert_eq(x->refcnt, 1, "refused: the reference is still ours");
	drain(full, cq, c, 1);
	cr_assert_eq(sl_io_submit(full, &r), 0);
	/* a callback release runs once too */
	fn_released = 0;
	drain(full, cq, c, 1);
	r = sl_io_req_write_fn(h, 8, "12345678", 8, count_release, &fn_released, cq, 3);
	submit(full, r);
	drain(full, cq, c, 1);
	cr_assert_eq(fn_released, 1);
	submit(full, sl_io_req_close(h, cq, 4));
	drain(full, cq, c, 1);
	cr_assert_eq(rte_mempool_avail_count(mp), nb, "x went back exactly once");

	sl_io_file_free(g);
	sl_io_file_free(v);
	sl_io_file_free(h);
	sl_io_writer_destroy(full);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rte_mempool_free(mp);
	rm_tmp();
	sl_test_eal_fini();
}

/* ------------------------------------------------------------------ */
/* back-pressure and polling modes                                    */

Test(io_writer, full_request_ring_returns_enobufs, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("rfull", 8, 8, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_completion c[16];
	struct sl_io_req r[4];
	struct sl_io_writer_stats st;
	uint8_t buf[8 * 100];
	char path[512];

	fill(buf, 10, 0, sizeof(buf));
	path_in(path, sizeof(path), "f");
	struct sl_io_file *f = sl_io_file_create(path, 0, 0644);
	/* nobody polls: the ring (8 slots) fills up */
	submit(w, sl_io_req_open(f, cq, 100));
	for (unsigned i = 0; i < 7; i++)
		submit(w, sl_io_req_write(f, i * 100u, buf + i * 100u, 100, cq, i));
	uint64_t t0 = rte_get_timer_cycles();
	struct sl_io_req more = sl_io_req_write(f, 700, buf + 700, 100, cq, 7);
	cr_assert_eq(sl_io_submit(w, &more), -ENOBUFS);
	for (unsigned i = 0; i < 4; i++)
		r[i] = more;
	cr_assert_eq(sl_io_submit_burst(w, r, 4), 0);
	double us = (double)(rte_get_timer_cycles() - t0) * 1e6 / rte_get_timer_hz();
	cr_log_info("two refused submissions took %.1f us", us);
	cr_assert_eq(sl_io_writer_outstanding(w), 8);
	sl_io_writer_stats(w, &st);
	cr_assert_eq(st.enobufs, 2);
	/* a poll frees the ring */
	sl_io_writer_poll(w, 64);
	cr_assert_eq(sl_io_submit(w, &more), 0);
	submit(w, sl_io_req_close(f, cq, 101));
	drain(w, cq, c, 10);
	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(find(c, 10, i)->res, 100);
	expect_file(path, 10, sizeof(buf));
	cr_assert_eq(sl_io_writer_outstanding(w), 0);
	sl_io_file_free(f);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* One lcore submits and polls (a worker hosting the writer inline), with
 * a small ring, few slots and a small completion ring, so that every kind
 * of back-pressure happens on the way. */
Test(io_writer, inline_polling_from_the_submitter, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("inl", 4, 16, 8);
	struct rte_ring *cq = mk_cq("cq", 8);
	const unsigned n = 2000, chunk = 4096;
	uint8_t *buf = malloc((size_t)n * chunk);
	unsigned seen[2000] = { 0 }, ncomp = 0, next = 0, enobufs = 0;
	struct sl_io_writer_stats st;
	char path[512];

	fill(buf, 11, 0, (size_t)n * chunk);
	path_in(path, sizeof(path), "inline");
	struct sl_io_file *f = sl_io_file_create(path, 0, 0644);
	submit(w, sl_io_req_open(f, NULL, 0)); /* no completion wanted */
	while (ncomp < n) {
		struct sl_io_completion c[8];
		unsigned k;

		while (next < n) { /* as much as the ring takes */
			struct sl_io_req r = sl_io_req_write(f, (uint64_t)next * chunk,
							     buf + (size_t)next * chunk,
							     chunk, cq, next);
			if (sl_io_submit(w, &r) != 0) {
				enobufs++;
				break;
			}
			next++;
		}
		sl_io_writer_poll(w, 4);
		k = sl_io_reap(cq, c, 8);
		for (unsigned i = 0; i < k; i++, ncomp++) {
			cr_assert_lt(c[i].cookie, n);
			cr_assert_eq(c[i].res, (int)chunk);
			seen[c[i].cookie]++;
		}
	}
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(seen[i], 1, "cookie %u seen %u times", i, seen[i]);
	struct sl_io_completion last[2];
	submit(w, sl_io_req_fsync(f, cq, 5000));
	submit(w, sl_io_req_close(f, cq, 5001));
	drain(w, cq, last, 2);
	cr_assert_eq(find(last, 2, 5000)->res, 0);
	cr_assert_eq(find(last, 2, 5001)->res, 0);
	expect_file(path, 11, (uint64_t)n * chunk);
	sl_io_writer_stats(w, &st);
	cr_log_info("inline: %u ENOBUFS, %llu completion-ring-full retries",
		    enobufs, (unsigned long long)st.cq_full);
	cr_assert_gt(enobufs, 0, "the small ring should have pushed back");
	sl_io_file_free(f);
	free(buf);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* A completion ring that is not reaped: the writer holds completions
 * back (never drops or blocks), and delivers each once there is room. */
Test(io_writer, full_completion_ring_holds_completions, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("cqf", 8, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 2);
	struct sl_io_completion c[16];
	struct sl_io_writer_stats st;
	unsigned seen[12] = { 0 }, got = 0;
	uint8_t buf[10 * 512];
	char path[512];

	fill(buf, 16, 0, sizeof(buf));
	path_in(path, sizeof(path), "cqfull");
	struct sl_io_file *f = sl_io_file_create(path, 0, 0644);
	submit(w, sl_io_req_open(f, cq, 10));
	for (unsigned i = 0; i < 10; i++)
		submit(w, sl_io_req_write(f, i * 512u, buf + i * 512u, 512, cq, i));
	submit(w, sl_io_req_close(f, cq, 11));
	/* poll until all I/O is done and only completions wait */
	uint64_t deadline = rte_get_timer_cycles() + 30 * rte_get_timer_hz();
	do {
		sl_io_writer_poll(w, 64);
		sl_io_writer_stats(w, &st);
		cr_assert_lt(rte_get_timer_cycles(), deadline);
	} while (st.held > 10 || st.inflight > 0 || st.writes + st.errors < 10);
	for (int i = 0; i < 100; i++)
		sl_io_writer_poll(w, 64);
	sl_io_writer_stats(w, &st);
	cr_assert_eq(rte_ring_count(cq), 2, "the ring is full: %u held %u cq_full %llu", rte_ring_count(cq), st.held, (unsigned long long)st.cq_full);
	cr_assert_gt(st.cq_full, 0);
	cr_assert_geq(st.held, 8, "held back: %u", st.held);
	cr_assert_eq(st.inflight, 0, "all I/O finished meanwhile");
	while (got < 12) {
		unsigned k = sl_io_reap(cq, c, 1);

		for (unsigned i = 0; i < k; i++, got++) {
			cr_assert_lt(c[i].cookie, 12);
			seen[c[i].cookie]++;
			cr_assert_geq(c[i].res, 0);
		}
		sl_io_writer_poll(w, 64);
	}
	for (unsigned i = 0; i < 12; i++)
		cr_assert_eq(seen[i], 1, "cookie %u seen %u times", i, seen[i]);
	expect_file(path, 16, sizeof(buf));
	cr_assert_eq(sl_io_writer_outstanding(w), 0);
	sl_io_file_free(f);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* destroy() finishes what was submitted and drops references. */
Test(io_writer, destroy_finishes_outstanding_work, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct rte_mempool *mp = sl_batch_pool_create("dp", 16, 64, 64, SOCKET_ID_ANY);
	struct sl_io_writer *w = mk_writer("dtor", 8, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_completion c[32];
	char path[512];

	path_in(path, sizeof(path), "d");
	struct sl_io_file *f = sl_io_file_create(path, 0, 0644);
	submit(w, sl_io_req_open(f, cq, 100));
	for (unsigned i = 0; i < 16; i++) {
		struct sl_batch *b = sl_batch_get(mp, 64);

		fill(b->data, 12, i * 4096u, 4096);
		submit(w, sl_io_req_write_batch(f, i * 4096u, b->data, 4096, b, cq, i));
	}
	submit(w, sl_io_req_fsync(f, cq, 101));
	submit(w, sl_io_req_close(f, cq, 102));
	sl_io_writer_destroy(w);
	cr_assert_eq(rte_mempool_avail_count(mp), 16);
	cr_assert_eq(sl_io_reap(cq, c, 32), 19);
	for (unsigned i = 0; i < 19; i++)
		cr_assert_geq(c[i].res, 0);
	expect_file(path, 12, 16 * 4096);
	sl_io_file_free(f);
	sl_io_completion_ring_free(cq);
	rte_mempool_free(mp);
	rm_tmp();
	sl_test_eal_fini();
}

/* ------------------------------------------------------------------ */
/* publish and O_DIRECT                                               */

Test(io_writer, publish_renames_tmp_and_failed_publish_cleans_up, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("pub", 8, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_fault fault = { .nth_write = 1, .nth_err = EIO };
	struct sl_io_completion c[8];
	uint8_t buf[5000];
	char fin[512], tmp[512], bad[512], badtmp[512];
	struct stat st;

	fill(buf, 13, 0, sizeof(buf));
	path_in(fin, sizeof(fin), "_metadata");
	path_in(tmp, sizeof(tmp), "._metadata.tmp");
	path_in(bad, sizeof(bad), "broken");
	path_in(badtmp, sizeof(badtmp), ".broken.tmp");
	struct sl_io_file *f = sl_io_file_create(fin, SL_IO_F_TMP, 0644);
	cr_assert_str_eq(sl_io_file_path(f), fin);
	submit(w, sl_io_req_open(f, cq, 1));
	submit(w, sl_io_req_write(f, 0, buf, sizeof(buf), cq, 2));
	submit(w, sl_io_req_fsync(f, cq, 3));
	submit(w, sl_io_req_close(f, cq, 4));
	drain(w, cq, c, 4);
	cr_assert_eq(stat(fin, &st), -1, "not visible before publish");
	cr_assert_eq(stat(tmp, &st), 0, "written under the temp name");
	submit(w, sl_io_req_publish(f, cq, 5));
	drain(w, cq, c, 1);
	cr_assert_eq(c[0].res, 0);
	cr_assert_eq(c[0].op, SL_IO_OP_PUBLISH);
	expect_file(fin, 13, sizeof(buf));
	cr_assert_eq(stat(tmp, &st), -1, "temp name gone");

	struct sl_io_file *g = sl_io_file_create(bad, SL_IO_F_TMP, 0644);
	submit(w, sl_io_req_open(g, cq, 10));
	drain(w, cq, c, 1);
	sl_io_writer_fault_set(w, &fault);
	submit(w, sl_io_req_write(g, 0, buf, sizeof(buf), cq, 11));
	submit(w, sl_io_req_fsync(g, cq, 12));
	submit(w, sl_io_req_close(g, cq, 13));
	submit(w, sl_io_req_publish(g, cq, 14));
	drain(w, cq, c, 4);
	cr_assert_eq(find(c, 4, 11)->res, -EIO);
	cr_assert_eq(find(c, 4, 14)->res, -EIO, "a failed file is not published");
	cr_assert_eq(stat(bad, &st), -1);
	cr_assert_eq(stat(badtmp, &st), -1, "its temp file is removed");
	sl_io_file_free(f);
	sl_io_file_free(g);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

Test(io_writer, prealloc_trims_to_written_end, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("pre", 16, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_fault fault = { .budget_err = ENOSPC, .budget_bytes = 1u << 20 };
	const uint32_t chunk = 1u << 20, tail = 100;
	struct sl_io_completion c[16];
	char a[512], b[512], full[512];
	uint8_t *buf;
	struct stat st;

	cr_assert_eq(posix_memalign((void **)&buf, SL_IO_DIRECT_ALIGN, 4 * chunk), 0);
	fill(buf, 17, 0, 4 * chunk);
	path_in(a, sizeof(a), "over-allocated");
	path_in(b, sizeof(b), "exact");
	path_in(full, sizeof(full), "too-big");
	struct sl_io_file *fa = sl_io_file_create(a, 0, 0644);
	struct sl_io_file *fb = sl_io_file_create(b, SL_IO_F_DIRECT, 0644);
	struct sl_io_file *fc = sl_io_file_create(full, 0, 0644);

	unsigned fds = open_fds();

	/* 8 MiB reserved, 3 MiB + 100 written: CLOSE trims the rest */
	submit(w, sl_io_req_open_prealloc(fa, 8 * chunk, cq, 0));
	for (unsigned i = 0; i < 3; i++)
		submit(w, sl_io_req_write(fa, (uint64_t)i * chunk, buf + (size_t)i * chunk,
					  chunk, cq, 1 + i));
	submit(w, sl_io_req_write(fa, 3ull * chunk, buf + 3 * (size_t)chunk, tail, cq, 4));
	submit(w, sl_io_req_fsync(fa, cq, 5));
	drain(w, cq, c, 6);
	for (unsigned i = 0; i < 6; i++)
		cr_assert_geq(c[i].res, 0);
	cr_assert_eq(stat(a, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, 8ull * chunk, "preallocated size");
	submit(w, sl_io_req_close(fa, cq, 6));
	drain(w, cq, c, 1);
	cr_assert_eq(c[0].res, 0);
	expect_file(a, 17, 3ull * chunk + tail);

	/* O_DIRECT into exactly the preallocated space */
	submit(w, sl_io_req_open_prealloc(fb, 2 * chunk, cq, 10));
	submit(w, sl_io_req_write(fb, 0, buf, chunk, cq, 11));
	submit(w, sl_io_req_write(fb, chunk, buf + chunk, chunk, cq, 12));
	submit(w, sl_io_req_fsync(fb, cq, 13));
	submit(w, sl_io_req_close(fb, cq, 14));
	drain(w, cq, c, 5);
	for (unsigned i = 0; i < 5; i++)
		cr_assert_geq(c[i].res, 0);
	expect_file(b, 17, 2ull * chunk);

	/* a disk too small for the reservation fails the OPEN at once */
	strcpy(fault.path_substr, "too-big");
	cr_assert_eq(sl_io_writer_fault_set(w, &fault), 0);
	submit(w, sl_io_req_open_prealloc(fc, 4 * chunk, cq, 20));
	submit(w, sl_io_req_write(fc, 0, buf, 100, cq, 21));
	submit(w, sl_io_req_close(fc, cq, 22));
	drain(w, cq, c, 3);
	cr_assert_eq(find(c, 3, 20)->res, -ENOSPC);
	cr_assert_eq(find(c, 3, 21)->res, -ENOSPC);
	cr_assert_eq(find(c, 3, 22)->res, -ENOSPC, "closed, reporting the failure");
	cr_assert_eq(open_fds(), fds);

	sl_io_file_free(fa);
	sl_io_file_free(fb);
	sl_io_file_free(fc);
	free(buf);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* O_DIRECT file ending in a padded last write: close_sync trims it to the
 * real size (with and without preallocation); a size past the end is
 * refused but the file is closed; on a failed file it only closes. */
Test(io_writer, close_sync_trims_padded_direct_tail, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("csync", 16, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_fault fault = { .nth_write = 1, .nth_err = EIO };
	const uint32_t chunk = 1u << 20, tail = 1234;
	const uint64_t size = 2ull * chunk + tail;
	struct sl_io_completion c[16];
	char a[512], b[512], d[512], e[512];
	uint8_t *buf;
	unsigned fds;

	cr_assert_eq(posix_memalign((void **)&buf, SL_IO_DIRECT_ALIGN, 3 * chunk), 0);
	fill(buf, 21, 0, 3 * chunk);
	path_in(a, sizeof(a), "padded");
	path_in(b, sizeof(b), "padded-prealloc");
	path_in(d, sizeof(d), "past-end");
	path_in(e, sizeof(e), "failed");
	struct sl_io_file *fa = sl_io_file_create(a, SL_IO_F_DIRECT, 0644);
	struct sl_io_file *fb = sl_io_file_create(b, SL_IO_F_DIRECT, 0644);
	struct sl_io_file *fd_ = sl_io_file_create(d, SL_IO_F_DIRECT, 0644);
	struct sl_io_file *fe = sl_io_file_create(e, SL_IO_F_DIRECT, 0644);
	fds = open_fds();

	for (unsigned k = 0; k < 2; k++) {
		struct sl_io_file *f = k ? fb : fa;

		submit(w, sl_io_req_open_prealloc(f, k ? 8ull * chunk : 0, cq, 0));
		submit(w, sl_io_req_write(f, 0, buf, chunk, cq, 1));
		submit(w, sl_io_req_write(f, chunk, buf + chunk, chunk, cq, 2));
		/* the tail written as a whole aligned block */
		submit(w, sl_io_req_write(f, 2ull * chunk, buf + 2 * (size_t)chunk,
					  RTE_ALIGN_CEIL(tail, SL_IO_DIRECT_ALIGN), cq, 3));
		submit(w, sl_io_req_close_sync(f, size, cq, 4));
		drain(w, cq, c, 5);
		for (unsigned i = 0; i < 5; i++)
			cr_assert_geq(c[i].res, 0, "request %llu: %d",
				      (unsigned long long)c[i].cookie, c[i].res);
		cr_assert_not(sl_io_file_direct_fallback(f));
		expect_file(k ? b : a, 21, size);
	}

	/* a size beyond what was written: refused, still closed */
	submit(w, sl_io_req_open(fd_, cq, 10));
	submit(w, sl_io_req_write(fd_, 0, buf, chunk, cq, 11));
	submit(w, sl_io_req_close_sync(fd_, chunk + 1, cq, 12));
	drain(w, cq, c, 3);
	cr_assert_eq(find(c, 3, 12)->res, -EINVAL);

	/* a failed file: the close reports the failure */
	strcpy(fault.path_substr, "failed");
	cr_assert_eq(sl_io_writer_fault_set(w, &fault), 0);
	submit(w, sl_io_req_open_prealloc(fe, 4ull * chunk, cq, 20));
	submit(w, sl_io_req_write(fe, 0, buf, chunk, cq, 21));
	submit(w, sl_io_req_close_sync(fe, chunk, cq, 22));
	drain(w, cq, c, 3);
	cr_assert_eq(find(c, 3, 21)->res, -EIO);
	cr_assert_eq(find(c, 3, 22)->res, -EIO);
	cr_assert_eq(open_fds(), fds, "every descriptor closed");

	sl_io_file_free(fa);
	sl_io_file_free(fb);
	sl_io_file_free(fd_);
	sl_io_file_free(fe);
	free(buf);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

Test(io_writer, direct_io_aligned_and_misaligned, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("dio", 8, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_completion c[16];
	const unsigned chunk = 256u << 10;
	uint8_t *buf;
	char path[512], path2[512];

	cr_assert_eq(posix_memalign((void **)&buf, SL_IO_DIRECT_ALIGN, 4 * chunk + 4096), 0);
	fill(buf, 14, 0, 4 * chunk);
	path_in(path, sizeof(path), "direct");
	path_in(path2, sizeof(path2), "direct-misaligned");
	struct sl_io_file *f = sl_io_file_create(path, SL_IO_F_DIRECT, 0644);
	struct sl_io_file *g = sl_io_file_create(path2, SL_IO_F_DIRECT, 0644);
	submit(w, sl_io_req_open(f, cq, 0));
	for (unsigned i = 0; i < 4; i++)
		submit(w, sl_io_req_write(f, (uint64_t)i * chunk, buf + (size_t)i * chunk,
					  chunk, cq, 1 + i));
	submit(w, sl_io_req_fsync(f, cq, 5));
	submit(w, sl_io_req_close(f, cq, 6));
	drain(w, cq, c, 7);
	for (unsigned i = 0; i < 7; i++)
		cr_assert_geq(c[i].res, 0);
	cr_assert_not(sl_io_file_direct_fallback(f), "ext4 under /tmp takes O_DIRECT");
	expect_file(path, 14, 4ull * chunk);

	submit(w, sl_io_req_open(g, cq, 10));
	submit(w, sl_io_req_write(g, 0, buf + 1, 4096, cq, 11));
	drain(w, cq, c, 2);
	cr_assert_eq(find(c, 2, 11)->res, -EINVAL, "misaligned O_DIRECT write");
	submit(w, sl_io_req_write(g, 4096, buf, 4096, cq, 12));
	submit(w, sl_io_req_close(g, cq, 13));
	drain(w, cq, c, 2);
	cr_assert_eq(find(c, 2, 12)->res, -EINVAL, "the file failed with it");
	cr_assert_eq(find(c, 2, 13)->res, -EINVAL);

	/* tmpfs: O_DIRECT may be refused (older kernels), then the file is
	 * written buffered; either way the contents are right */
	struct stat st;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
		char shm[512];

		snprintf(shm, sizeof(shm), "/dev/shm/sl_iow_%d", getpid());
		struct sl_io_file *h = sl_io_file_create(shm, SL_IO_F_DIRECT, 0644);
		submit(w, sl_io_req_open(h, cq, 20));
		submit(w, sl_io_req_write(h, 0, buf, chunk, cq, 21));
		submit(w, sl_io_req_close(h, cq, 22));
		drain(w, cq, c, 3);
		for (unsigned i = 0; i < 3; i++)
			cr_assert_geq(c[i].res, 0);
		cr_log_info("/dev/shm O_DIRECT fallback: %d",
			    sl_io_file_direct_fallback(h));
		expect_file(shm, 14, chunk);
		unlink(shm);
		sl_io_file_free(h);
	}
	sl_io_file_free(f);
	sl_io_file_free(g);
	free(buf);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* ------------------------------------------------------------------ */
/* writer on its own lcore; throughput vs the disk (print only)       */

#define TP_BUF_BYTES (16u << 20) /* submitter's buffers, reused */
#define TP_MAX_INFLIGHT 64u

struct tp_case {
	const char *what;
	uint32_t chunk;	   /* bytes per write */
	unsigned flags;	   /* SL_IO_F_* */
	bool prealloc;	   /* OPEN preallocates the whole file */
	bool inline_poll;  /* submitter polls the writer (else: own lcore) */
	unsigned divisor;  /* write total / divisor bytes */
	double bps;
};

/* Write total bytes as `chunk`-byte writes (16 MiB of them in flight, at
 * most 64 requests) through the writer, then FSYNC and CLOSE; returns
 * bytes/s including open, fsync and close. */
static double tp_run(struct sl_io_writer *w, struct rte_ring *cq,
		     const char *path, uint8_t *bufs, uint64_t total,
		     const struct tp_case *tc)
{
	const unsigned nbufs = RTE_MIN(TP_MAX_INFLIGHT, TP_BUF_BYTES / tc->chunk);
	struct sl_io_file *f = sl_io_file_create(path, tc->flags, 0644);
	struct sl_io_completion c[TP_MAX_INFLIGHT];
	unsigned free_bufs[TP_MAX_INFLIGHT], nfree = nbufs;
	uint64_t off = 0, done = 0, t0;
	bool closed = false;

	for (unsigned i = 0; i < nbufs; i++)
		free_bufs[i] = i;
	t0 = rte_get_timer_cycles();
	submit(w, sl_io_req_open_prealloc(f, tc->prealloc ? total : 0, cq, UINT64_MAX));
	while (!closed) {
		while (nfree > 0 && off < total) {
			unsigned i = free_bufs[nfree - 1];
			struct sl_io_req r = sl_io_req_write(f, off, bufs + (size_t)i * tc->chunk,
							     tc->chunk, cq, i);
			if (sl_io_submit(w, &r) != 0)
				break;
			nfree--;
			off += tc->chunk;
			if (off == total) {
				submit(w, sl_io_req_fsync(f, cq, UINT64_MAX - 1));
				submit(w, sl_io_req_close(f, cq, UINT64_MAX - 2));
			}
		}
		if (tc->inline_poll)
			sl_io_writer_poll(w, TP_MAX_INFLIGHT);
		unsigned k = sl_io_reap(cq, c, TP_MAX_INFLIGHT);
		for (unsigned j = 0; j < k; j++) {
			cr_assert_geq(c[j].res, 0, "%s, cookie %llu: %s", tc->what,
				      (unsigned long long)c[j].cookie, strerror(-c[j].res));
			if (c[j].cookie < nbufs) {
				free_bufs[nfree++] = (unsigned)c[j].cookie;
				done += tc->chunk;
			} else if (c[j].cookie == UINT64_MAX - 2) {
				closed = true;
			}
		}
		if (k == 0)
			rte_pause();
	}
	double s = (double)(rte_get_timer_cycles() - t0) / rte_get_timer_hz();
	cr_assert_eq(done, total);
	sl_io_file_free(f);
	unlink(path);
	return (double)total / s;
}

/*
 * Print only (no timed assertion): the writer against the disk measured in
 * the same run.  SL_IO_BENCH_MB sets the volume (default 512).  Cases on
 * the writer's own lcore come first, then the same writer polled inline.
 */
Test(io_writer, throughput_vs_disk_bandwidth, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	const char *mb_env = getenv("SL_IO_BENCH_MB");
	uint64_t total = (uint64_t)(mb_env ? atoi(mb_env) : 512) << 20;
	struct sl_io_writer *w = mk_writer("tp", 32, 256, 0);
	struct rte_ring *cq = mk_cq("cq", 256);
	struct sl_io_writer_stats st;
	struct tp_case cases[] = {
		{ "own lcore, 1 MiB, O_DIRECT", 1u << 20, SL_IO_F_DIRECT, false, false, 1 },
		{ "own lcore, 1 MiB, O_DIRECT, prealloc", 1u << 20, SL_IO_F_DIRECT, true, false, 1 },
		{ "own lcore, 1 MiB, buffered", 1u << 20, 0, false, false, 1 },
		/* the same again at once: on a VM whose freed memory goes
		 * back to the host, the first run pays for faulting fresh
		 * page-cache memory in, this one reuses it */
		{ "own lcore, 1 MiB, buffered, again", 1u << 20, 0, false, false, 1 },
		{ "own lcore, 8 KiB, buffered", 8u << 10, 0, false, false, 8 },
		{ "own lcore, 8 KiB, O_DIRECT, prealloc", 8u << 10, SL_IO_F_DIRECT, true, false, 8 },
		{ "inline,    1 MiB, O_DIRECT", 1u << 20, SL_IO_F_DIRECT, false, true, 1 },
		{ "inline,    1 MiB, O_DIRECT, prealloc", 1u << 20, SL_IO_F_DIRECT, true, true, 1 },
	};
	double disk_w, disk_r;
	unsigned lc = rte_get_next_lcore(-1, 1, 0);
	uint64_t bytes = 0;
	uint8_t *bufs;
	char path[512];

	cr_assert_eq(posix_memalign((void **)&bufs, SL_IO_DIRECT_ALIGN, TP_BUF_BYTES), 0);
	fill(bufs, 15, 0, TP_BUF_BYTES);
	cr_assert_eq(sl_io_measure_write_bw(tmpdir, total, &disk_w), 0);
	cr_assert_eq(sl_io_measure_read_bw(tmpdir, total / 4, &disk_r), 0);
	cr_assert_gt(disk_w, 0);
	cr_assert_gt(disk_r, 0);

	path_in(path, sizeof(path), "tp");
	cr_assert_eq(rte_eal_remote_launch(sl_io_writer_lcore_main, w, lc), 0);
	for (unsigned i = 0; i < RTE_DIM(cases); i++) {
		if (cases[i].inline_poll && rte_eal_get_lcore_state(lc) != WAIT) {
			sl_io_writer_stop(w);
			cr_assert_eq(rte_eal_wait_lcore(lc), 0,
				     "lcore_main returns after stop");
		}
		cases[i].bps = tp_run(w, cq, path, bufs, total / cases[i].divisor,
				      &cases[i]);
		bytes += total / cases[i].divisor;
	}
	sl_io_writer_stats(w, &st);
	cr_assert_eq(st.held, 0);
	cr_assert_eq(st.bytes_written, bytes);
	printf("io_writer throughput (writes + fdatasync, 16 MiB / at most 64 "
	       "requests in flight), %llu MiB per 1 MiB case:\n"
	       "  disk (sl_io_measure_*_bw, O_DIRECT 32 x 1 MiB): "
	       "%.2f GB/s write, %.2f GB/s read\n",
	       (unsigned long long)(total >> 20), disk_w / 1e9, disk_r / 1e9);
	for (unsigned i = 0; i < RTE_DIM(cases); i++)
		printf("  writer %-38s %.2f GB/s (%3.0f%% of disk)\n", cases[i].what,
		       cases[i].bps / 1e9, 100 * cases[i].bps / disk_w);
	printf("  %llu SQEs in %llu submits\n", (unsigned long long)st.sqes,
	       (unsigned long long)st.submits);
	fflush(stdout);
	free(bufs);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}

/* A descriptor opened and written by the caller: the writer fdatasyncs,
 * closes and renames it (fsyncing the directory); RENAME and SYNC_DIR
 * also work on a file object of an existing path never opened through
 * the writer; a missing one is reported and its error sticks. */
Test(io_writer, adopted_descriptor_and_rename, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	mk_tmp();
	struct sl_io_writer *w = mk_writer("ren", 8, 64, 0);
	struct rte_ring *cq = mk_cq("cq", 64);
	struct sl_io_completion c[8];
	uint8_t buf[7000];
	char from[512], to[512], again[512], missing[512];
	struct stat st;

	fill(buf, 21, 0, sizeof(buf));
	path_in(from, sizeof(from), ".part.inprogress");
	path_in(to, sizeof(to), ".part-1.pending");
	path_in(again, sizeof(again), "part-1");
	path_in(missing, sizeof(missing), "nothing-here");
	int fd = open(from, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	struct sl_io_file *f = sl_io_file_adopt(fd, from);
	cr_assert_not_null(f);
	submit(w, sl_io_req_fsync(f, cq, 1));
	submit(w, sl_io_req_close(f, cq, 2));
	submit(w, sl_io_req_rename(f, to, cq, 3));
	drain(w, cq, c, 3);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(c[i].res, 0, "cookie %" PRIu64 ": %d", c[i].cookie, c[i].res);
	cr_assert_eq(find(c, 3, 3)->op, SL_IO_OP_RENAME);
	cr_assert_eq(stat(from, &st), -1, "renamed away");
	expect_file(to, 21, sizeof(buf));
	cr_assert_eq(fcntl(fd, F_GETFD), -1, "the writer closed the descriptor");

	/* a path never opened through the writer */
	struct sl_io_file *g = sl_io_file_create(to, 0, 0);
	struct sl_io_file *h = sl_io_file_create(missing, 0, 0);
	submit(w, sl_io_req_rename(g, again, cq, 10));
	submit(w, sl_io_req_rename(h, to, cq, 11));
	submit(w, sl_io_req_rename(g, NULL, cq, 12));
	submit(w, sl_io_req_sync_dir(g, cq, 13));
	submit(w, sl_io_req_sync_dir(h, cq, 14));
	drain(w, cq, c, 5);
	cr_assert_eq(find(c, 5, 10)->res, 0);
	cr_assert_eq(find(c, 5, 11)->res, -ENOENT);
	cr_assert_eq(find(c, 5, 12)->res, -EINVAL, "no target");
	cr_assert_eq(find(c, 5, 13)->res, 0, "directory fsynced");
	cr_assert_eq(find(c, 5, 13)->op, SL_IO_OP_SYNC_DIR);
	cr_assert_eq(find(c, 5, 14)->res, -ENOENT, "the failed rename's error sticks");
	expect_file(again, 21, sizeof(buf));
	cr_assert_eq(stat(to, &st), -1);
	cr_assert_null(sl_io_file_adopt(-1, from));
	sl_io_file_free(f);
	sl_io_file_free(g);
	sl_io_file_free(h);
	sl_io_writer_destroy(w);
	sl_io_completion_ring_free(cq);
	rm_tmp();
	sl_test_eal_fini();
}
