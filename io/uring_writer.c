/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The io_uring writer service (contract in sluice/io.h, decisions in
 * docs/io.md).
 *
 * Life of a request.  Once the poller took it from the request ring it is
 * an "op" (one slot of a fixed pool) and sits in exactly one place:
 *
 *   request ring --take--> dispatch --+--> file->deferred  (waits for order)
 *                                     +--> ready           (waits for an SQE)
 *                                     +--> done            (failed at once)
 *   ready --prep--> kernel --CQE--> [delayed: slow-disk fault] --> result:
 *       resubmit (short write, -EAGAIN, -EINTR, next step)   --> ready
 *       finished: file bookkeeping, kick file->deferred      --> done
 *   done --deliver--> reference dropped, completion posted, slot freed
 *
 * A file's bookkeeping (fd, sticky error, pending counts, deferred FIFO)
 * is only ever touched by the poller, and only through an op that still
 * references the file: completions are posted last (deliver), so once the
 * submitter sees the completion of its last request on a file, the writer
 * no longer holds a pointer to it and the file may be freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <liburing.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_spinlock.h>

#include "sluice/io.h"
#include "sluice/io_file.h"

#define DEFAULT_QUEUE_DEPTH 64
#define DEFAULT_RING_SIZE 1024
#define DEFAULT_IDLE_SLEEP_MAX_US 200
#define TAKE_BURST 32	   /* requests dequeued per ring access */
#define REAP_BURST 64	   /* CQEs looked at per peek */
#define LCORE_BUDGET 256   /* requests taken per poll by lcore_main */
#define SPIN_ITERS 64	   /* idle polls spent in rte_pause() first */

enum file_state {
	FS_NEW,	    /* no OPEN issued yet */
	FS_OPENING, /* OPEN (and its preallocation) in progress; writes wait */
	FS_OPEN,    /* fd valid */
	FS_CLOSING, /* CLOSE in the kernel */
	FS_CLOSED,  /* closed, or the open failed */
};

/* Steps of an OPEN. */
enum open_step {
	OPEN_FILE,	/* openat() */
	OPEN_PREALLOC,	/* fallocate(0, prealloc): later writes need no
			 * allocation, so O_DIRECT ones complete without
			 * io-wq worker threads (docs/io.md) */
};

/* Steps of a CLOSE. */
enum close_step {
	CLOSE_TRUNCATE, /* ftruncate(end): drop the unwritten preallocation */
	CLOSE_SYNC,	/* fdatasync: make the new size durable */
	CLOSE_FILE,	/* close() */
};

/* IORING_OP_FTRUNCATE (kernel 6.9) is newer than liburing 2.3's headers;
 * its number is fixed ABI.  Probed at create; without it the poller calls
 * ftruncate(2) itself. */
#define SL_IORING_OP_FTRUNCATE 55

/* Steps of a PUBLISH (and of its clean-up on a failed file), of a RENAME
 * (no clean-up) and of a SYNC_DIR (the directory steps only). */
enum publish_step {
	PUB_RENAME,	/* renameat(tmp, final) */
	PUB_OPEN_DIR,	/* openat(dir, O_DIRECTORY) */
	PUB_FSYNC_DIR,	/* fsync(dirfd) */
	PUB_CLOSE_DIR,	/* close(dirfd) */
	PUB_UNLINK,	/* unlinkat(tmp): the file failed or rename did */
};

struct io_op;
STAILQ_HEAD(op_fifo, io_op);

struct sl_io_file {
	/* set by sl_io_file_create(), read-only afterwards */
	unsigned flags;
	unsigned mode;
	const char *path;      /* final name */
	const char *open_path; /* temp name with SL_IO_F_TMP, else path */
	const char *dir;       /* directory of path (PUBLISH fsyncs it) */

	/* poller side: only the writer's poller touches these, and the
	 * submitter reads direct_fallback after reaping the OPEN completion
	 * (the completion ring's release/acquire orders it) */
	int fd;
	int err;	   /* sticky: first failure, a negative errno */
	uint8_t state;	   /* enum file_state */
	bool direct;	   /* O_DIRECT in effect */
	bool direct_fallback;
	uint64_t prealloc; /* bytes preallocated at OPEN */
	uint64_t end;	   /* end of the furthest successful write */
	uint64_t trim_to;  /* CLOSE: the size to truncate the file to */
	uint32_t writes_pending; /* WRITEs issued, not finished */
	uint32_t ops_pending;	 /* all requests issued, not finished */
	struct op_fifo deferred; /* requests waiting for per-file order */
	char strings[];		 /* path, open_path, dir */
};

struct io_op {
	struct sl_io_req req;	 /* copy of the request */
	STAILQ_ENTRY(io_op) link;
	uint64_t done;		 /* WRITE: bytes written so far */
	uint64_t due;		 /* slow-disk fault: tsc when CQE may run */
	int32_t res;		 /* result (CQE while delayed, then final) */
	int32_t err;		 /* CLOSE, PUBLISH: first error of a step,
				  * reported when the last step is done */
	int dirfd;		 /* PUBLISH */
	uint8_t step;		 /* enum open_step, close_step, publish_step */
	bool counted;		 /* seen by the n-th-write fault */
};

struct sl_io_writer {
	/* Read-only after create; read by submitters and the poller. */
	struct rte_ring *rq;
	struct io_op *ops;
	unsigned queue_depth;
	unsigned max_ops;
	unsigned idle_sleep_max_us;
	bool has_ftruncate;	/* kernel has IORING_OP_FTRUNCATE */
	char name[RTE_RING_NAMESIZE];

	/* Written by submitters (only when the ring is full). */
	uint64_t enobufs __rte_cache_aligned;

	/* Written by control threads: stop flag and the next fault set. */
	int stop __rte_cache_aligned;
	uint32_t fault_gen;
	rte_spinlock_t fault_lock;
	struct sl_io_fault fault_next;

	/* Poller side from here on. */
	struct io_uring ring __rte_cache_aligned;
	struct op_fifo free_ops;
	struct op_fifo ready;
	struct op_fifo delayed;
	struct op_fifo done;
	unsigned done_count;	/* ops on `done` */
	uint32_t fault_gen_seen;
	bool fault_on;
	struct sl_io_fault fault;
	uint64_t fault_budget_left;
	uint64_t fault_writes_seen;
	uint64_t fault_cqes_seen;
	uint64_t fault_delay_tsc;
	/* counters: written by the poller only, read by anyone with relaxed
	 * loads (sl_io_writer_stats), so stores are relaxed atomics */
	struct sl_io_writer_stats st;
};

/* Submitters, controllers and the poller each write their own lines. */
_Static_assert(offsetof(struct sl_io_writer, enobufs) % RTE_CACHE_LINE_SIZE == 0,
	       "submitter-written field must start a cache line");
_Static_assert(offsetof(struct sl_io_writer, stop) % RTE_CACHE_LINE_SIZE == 0,
	       "control-written fields must start a cache line");
_Static_assert(offsetof(struct sl_io_writer, ring) % RTE_CACHE_LINE_SIZE == 0,
	       "poller fields must start a cache line");
_Static_assert(offsetof(struct sl_io_writer, ring) -
	       offsetof(struct sl_io_writer, stop) >= RTE_CACHE_LINE_SIZE,
	       "control and poller fields must not share a line");

/* Poller-side counter update: single writer, relaxed atomic store so
 * that concurrent readers never see a torn value. */
#define STAT_ADD(w, field, n)                                                  \
	__atomic_store_n(&(w)->st.field, (w)->st.field + (n), __ATOMIC_RELAXED)

/* ------------------------------------------------------------------ */
/* Files                                                              */

struct sl_io_file *sl_io_file_create(const char *path, unsigned flags,
				     unsigned mode)
{
	char tmp[4096], dir[4096];
	struct sl_io_file *f;
	size_t plen, tlen, dlen;
	char *s;

	if (path == NULL || path[0] == '\0' ||
	    (flags & ~(SL_IO_F_DIRECT | SL_IO_F_TMP)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	plen = strlen(path) + 1;
	if (plen > sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (flags & SL_IO_F_TMP) {
		int rc = sl_io_tmp_path(path, tmp, sizeof(tmp));
		if (rc < 0) {
			errno = -rc;
			return NULL;
		}
	} else {
		memcpy(tmp, path, plen);
	}
	if (sl_io_dirname(path, dir, sizeof(dir)) < 0) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	tlen = strlen(tmp) + 1;
	dlen = strlen(dir) + 1;
	f = calloc(1, sizeof(*f) + plen + tlen + dlen);
	if (f == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	s = f->strings;
	f->path = memcpy(s, path, plen);
	f->open_path = memcpy(s + plen, tmp, tlen);
	f->dir = memcpy(s + plen + tlen, dir, dlen);
	f->flags = flags;
	f->mode = mode;
	f->fd = -1;
	f->state = FS_NEW;
	f->direct = (flags & SL_IO_F_DIRECT) != 0;
	STAILQ_INIT(&f->deferred);
	return f;
}

struct sl_io_file *sl_io_file_adopt(int fd, const char *path)
{
	struct sl_io_file *f;

	if (fd < 0) {
		errno = EINVAL;
		return NULL;
	}
	f = sl_io_file_create(path, 0, 0);
	if (f == NULL)
		return NULL;
	/* as if the writer had opened it */
	f->fd = fd;
	f->state = FS_OPEN;
	return f;
}

void sl_io_file_free(struct sl_io_file *f)
{
	free(f);
}

const char *sl_io_file_path(const struct sl_io_file *f)
{
	return f->path;
}

bool sl_io_file_direct_fallback(const struct sl_io_file *f)
{
	return f->direct_fallback;
}

/* ------------------------------------------------------------------ */
/* Completion rings and submission                                    */

struct rte_ring *sl_io_completion_ring_create(const char *name,
					      unsigned count, int socket)
{
	/* MP enqueue: several writers may post; SC dequeue: one reaper */
	return rte_ring_create_elem(name, sizeof(struct sl_io_completion),
				    count, socket,
				    RING_F_SC_DEQ | RING_F_EXACT_SZ);
}

void sl_io_completion_ring_free(struct rte_ring *cq)
{
	rte_ring_free(cq);
}

int sl_io_submit(struct sl_io_writer *w, const struct sl_io_req *req)
{
	/* the ring's MP enqueue publishes the request (and everything the
	 * submitter wrote before, e.g. the buffer and the file object) with
	 * release semantics; the poller's dequeue acquires it */
	if (unlikely(rte_ring_mp_enqueue_bulk_elem(w->rq, req, sizeof(*req), 1,
						   NULL) == 0)) {
		/* relaxed: a statistic, orders nothing */
		__atomic_fetch_add(&w->enobufs, 1, __ATOMIC_RELAXED);
		return -ENOBUFS;
	}
	return 0;
}

unsigned sl_io_submit_burst(struct sl_io_writer *w,
			    const struct sl_io_req *reqs, unsigned n)
{
	/* release/acquire through the ring as in sl_io_submit() */
	unsigned k = rte_ring_mp_enqueue_burst_elem(w->rq, reqs, sizeof(*reqs),
						    n, NULL);

	if (unlikely(k < n))
		/* relaxed: a statistic, orders nothing */
		__atomic_fetch_add(&w->enobufs, 1, __ATOMIC_RELAXED);
	return k;
}

/* ------------------------------------------------------------------ */
/* Faults                                                             */

int sl_io_writer_fault_set(struct sl_io_writer *w, const struct sl_io_fault *f)
{
	if (f != NULL && (f->budget_err < 0 || f->nth_err < 0 ||
			  f->eagain_every == 1))
		return -EINVAL;
	rte_spinlock_lock(&w->fault_lock);
	if (f != NULL) {
		w->fault_next = *f;
		w->fault_next.path_substr[sizeof(f->path_substr) - 1] = '\0';
	} else {
		memset(&w->fault_next, 0, sizeof(w->fault_next));
	}
	/* release: a poller that sees the new generation without the lock
	 * takes the lock and copies fault_next */
	__atomic_store_n(&w->fault_gen, w->fault_gen + 1, __ATOMIC_RELEASE);
	rte_spinlock_unlock(&w->fault_lock);
	return 0;
}

/* Pick up a new fault set; counters restart from here. */
static void fault_refresh(struct sl_io_writer *w)
{
	const struct sl_io_fault *f = &w->fault;

	/* acquire: pairs with the release in sl_io_writer_fault_set() */
	if (likely(__atomic_load_n(&w->fault_gen, __ATOMIC_ACQUIRE) ==
		   w->fault_gen_seen))
		return;
	rte_spinlock_lock(&w->fault_lock);
	w->fault = w->fault_next;
	w->fault_gen_seen = w->fault_gen;
	rte_spinlock_unlock(&w->fault_lock);
	w->fault_on = f->budget_err != 0 || f->nth_write != 0 ||
		      f->max_write_bytes != 0 || f->delay_us != 0 ||
		      f->eagain_every != 0;
	w->fault_budget_left = f->budget_bytes;
	w->fault_writes_seen = 0;
	w->fault_cqes_seen = 0;
	w->fault_delay_tsc = (uint64_t)f->delay_us * rte_get_tsc_hz() / 1000000;
}

static inline bool fault_hits(const struct sl_io_writer *w,
			      const struct sl_io_file *f)
{
	return unlikely(w->fault_on) &&
	       (w->fault.path_substr[0] == '\0' ||
		strstr(f->path, w->fault.path_substr) != NULL);
}

/*
 * Apply the write faults to the next SQE of a WRITE.
 * @return bytes to submit (> 0), or a negative errno to fail with now
 */
static int64_t fault_write_len(struct sl_io_writer *w, struct io_op *op,
			       uint64_t len)
{
	const struct sl_io_fault *f = &w->fault;

	if (f->nth_write != 0 && !op->counted) {
		op->counted = true;
		if (++w->fault_writes_seen == f->nth_write)
			return -(f->nth_err ? f->nth_err : EIO);
	}
	if (f->budget_err != 0) {
		uint64_t take = RTE_MIN(len, w->fault_budget_left);

		if (take == 0)
			return -f->budget_err;
		w->fault_budget_left -= take;
		len = take;
	}
	if (f->max_write_bytes != 0) {
		uint64_t cap = f->max_write_bytes;

		if (op->req.file->direct)
			cap = RTE_MAX(RTE_ALIGN_FLOOR(cap, SL_IO_DIRECT_ALIGN),
				      (uint64_t)SL_IO_DIRECT_ALIGN);
		len = RTE_MIN(len, cap);
	}
	return (int64_t)len;
}

/* ------------------------------------------------------------------ */
/* Op bookkeeping                                                     */

static inline void push_ready(struct sl_io_writer *w, struct io_op *op)
{
	STAILQ_INSERT_TAIL(&w->ready, op, link);
}

static inline void push_done(struct sl_io_writer *w, struct io_op *op)
{
	STAILQ_INSERT_TAIL(&w->done, op, link);
	w->done_count++;
}

/* Finish an op that never reached the file's pending counts (invalid, or
 * the file already failed). */
static void complete_now(struct sl_io_writer *w, struct io_op *op, int res)
{
	op->res = res;
	if (res < 0)
		STAT_ADD(w, errors, 1);
	push_done(w, op);
}

/* May `op` be issued now, given what of its file is still in flight? */
static bool may_issue(const struct sl_io_file *f, const struct io_op *op)
{
	switch (op->req.op) {
	case SL_IO_OP_WRITE:
		return f->state != FS_OPENING;
	case SL_IO_OP_FSYNC:
		/* fdatasync covers only writes that completed before it
		 * started: wait for every earlier write */
		return f->state != FS_OPENING && f->writes_pending == 0;
	default: /* OPEN, CLOSE, PUBLISH: after everything earlier */
		return f->ops_pending == 0;
	}
}

/* Validate an op against its file's state: 0 if it may go to the kernel,
 * else the result to complete it with at once. */
static int check(struct sl_io_file *f, struct io_op *op)
{
	switch (op->req.op) {
	case SL_IO_OP_OPEN:
		return f->state == FS_NEW ? 0 : -EBUSY;
	case SL_IO_OP_WRITE:
		if (op->req.len > INT32_MAX)
			return -EINVAL; /* the result must fit the completion */
		/* fall through */
	case SL_IO_OP_FSYNC:
		if (f->err)
			return f->err;
		return f->state == FS_OPEN ? 0 : -EBADF;
	case SL_IO_OP_CLOSE:
		if (f->state == FS_OPEN)
			return 0;
		/* a failed open leaves nothing to close but its error */
		return f->state == FS_CLOSED && f->err ? f->err : -EBADF;
	case SL_IO_OP_PUBLISH:
		if (!(f->flags & SL_IO_F_TMP))
			return -EINVAL;
		return f->state == FS_CLOSED ? 0 : -EBADF;
	case SL_IO_OP_RENAME:
		if (op->req.buf == NULL)
			return -EINVAL;
		/* fall through */
	case SL_IO_OP_SYNC_DIR:
		if (f->err)
			return f->err;
		return f->state == FS_CLOSED || f->state == FS_NEW ? 0 : -EBADF;
	default:
		return -EINVAL;
	}
}

/* Queue an op for an SQE, or complete it at once if it cannot go. */
static void issue(struct sl_io_writer *w, struct sl_io_file *f,
		  struct io_op *op)
{
	int rc = check(f, op);

	if (rc != 0 || (op->req.op == SL_IO_OP_WRITE && op->req.len == 0)) {
		complete_now(w, op, rc);
		return;
	}
	switch (op->req.op) {
	case SL_IO_OP_OPEN:
		f->state = FS_OPENING;
		f->prealloc = op->req.offset;
		op->step = OPEN_FILE;
		break;
	case SL_IO_OP_WRITE:
		f->writes_pending++;
		break;
	case SL_IO_OP_CLOSE:
		f->state = FS_CLOSING;
		f->trim_to = f->end;
		op->step = f->prealloc > f->end ? CLOSE_TRUNCATE : CLOSE_FILE;
		if (op->req.flags & SL_IO_REQ_F_SYNC) {
			/* the size the caller says the file has: at most what
			 * was written (a padded last O_DIRECT write is cut
			 * back), and made durable in any case */
			f->trim_to = op->req.offset;
			if (op->req.offset > f->end && f->err == 0)
				op->err = -EINVAL;
			op->step = op->req.offset != RTE_MAX(f->prealloc, f->end)
					   ? CLOSE_TRUNCATE
					   : CLOSE_SYNC;
		}
		/* a failed file's contents do not matter: just close it */
		if (f->err != 0 || op->err != 0)
			op->step = CLOSE_FILE;
		break;
	case SL_IO_OP_PUBLISH:
		/* a failed file is not published: remove its temp file */
		op->err = f->err;
		op->step = f->err ? PUB_UNLINK : PUB_RENAME;
		break;
	case SL_IO_OP_RENAME:
	case SL_IO_OP_SYNC_DIR:
		op->err = 0;
		op->step = op->req.op == SL_IO_OP_RENAME ? PUB_RENAME : PUB_OPEN_DIR;
		break;
	}
	f->ops_pending++;
	push_ready(w, op);
}

/* Issue what the file's deferred FIFO allows now, in order. */
static void kick(struct sl_io_writer *w, struct sl_io_file *f)
{
	struct io_op *op;

	while ((op = STAILQ_FIRST(&f->deferred)) != NULL && may_issue(f, op)) {
		STAILQ_REMOVE_HEAD(&f->deferred, link);
		issue(w, f, op);
	}
}

static void dispatch(struct sl_io_writer *w, struct io_op *op)
{
	struct sl_io_file *f = op->req.file;

	if (unlikely(f == NULL))
		complete_now(w, op, -EINVAL);
	else if (!STAILQ_EMPTY(&f->deferred) || !may_issue(f, op))
		/* anything already waiting keeps its place in front */
		STAILQ_INSERT_TAIL(&f->deferred, op, link);
	else
		issue(w, f, op);
}

/* The last step of an issued op is done: update the file, let waiting
 * requests go, queue the completion. */
static void finish(struct sl_io_writer *w, struct io_op *op, int res)
{
	struct sl_io_file *f = op->req.file;

	op->res = res;
	if (res < 0) {
		STAT_ADD(w, errors, 1);
		if (f->err == 0)
			f->err = res; /* the file is failed from now on */
	} else if (op->req.op == SL_IO_OP_WRITE) {
		STAT_ADD(w, writes, 1);
		STAT_ADD(w, bytes_written, op->req.len);
		f->end = RTE_MAX(f->end, op->req.offset + op->req.len);
	} else if (op->req.op == SL_IO_OP_FSYNC) {
		STAT_ADD(w, fsyncs, 1);
	}
	if (op->req.op == SL_IO_OP_WRITE)
		f->writes_pending--;
	f->ops_pending--;
	kick(w, f);
	push_done(w, op);
}

static inline bool is_retry(int res)
{
	return res == -EAGAIN || res == -EINTR;
}

static void write_result(struct sl_io_writer *w, struct io_op *op, int res)
{
	if (res > 0 && w->fault.eagain_every != 0 && fault_hits(w, op->req.file) &&
	    ++w->fault_cqes_seen % w->fault.eagain_every == 0)
		/* pretend the kernel asked for a retry; writing the same
		 * bytes at the same offset again is harmless */
		res = (w->fault_cqes_seen / w->fault.eagain_every) & 1 ? -EAGAIN
								       : -EINTR;
	if (is_retry(res)) {
		STAT_ADD(w, retries, 1);
		push_ready(w, op);
	} else if (res <= 0) {
		finish(w, op, res < 0 ? res : -EIO); /* 0: no progress */
	} else if ((op->done += (uint64_t)res) < op->req.len) {
		/* short write: submit the remainder */
		STAT_ADD(w, short_writes, 1);
		push_ready(w, op);
	} else {
		finish(w, op, (int)op->req.len);
	}
}

static void open_result(struct sl_io_writer *w, struct io_op *op, int res)
{
	struct sl_io_file *f = op->req.file;

	if (is_retry(res)) {
		STAT_ADD(w, retries, 1);
		push_ready(w, op);
	} else if (op->step == OPEN_PREALLOC) {
		/* no fallocate on this filesystem: fine, just slower;
		 * anything else (ENOSPC...) fails the file, whose fd stays
		 * open for the CLOSE to come */
		if (res == -EOPNOTSUPP || res == -EINVAL) {
			f->prealloc = 0;
			res = 0;
		}
		f->state = FS_OPEN; /* writes may go now */
		finish(w, op, res);
	} else if (res == -EINVAL && f->direct) {
		/* the filesystem refuses O_DIRECT: go buffered */
		f->direct = false;
		f->direct_fallback = true;
		push_ready(w, op);
	} else if (res < 0) {
		f->state = FS_CLOSED;
		finish(w, op, res);
	} else {
		f->fd = res;
		if (f->prealloc > 0) {
			/* writes keep waiting (FS_OPENING) until the space
			 * is reserved */
			op->step = OPEN_PREALLOC;
			push_ready(w, op);
		} else {
			f->state = FS_OPEN;
			finish(w, op, 0);
		}
	}
}

static void close_result(struct sl_io_writer *w, struct io_op *op, int res)
{
	struct sl_io_file *f = op->req.file;

	if (op->step != CLOSE_FILE) {
		if (is_retry(res)) {
			STAT_ADD(w, retries, 1);
		} else {
			if (res < 0 && op->err == 0)
				op->err = res;
			/* after a failed truncate, skip its fdatasync */
			op->step = res < 0 ? CLOSE_FILE : op->step + 1;
		}
		push_ready(w, op);
		return;
	}
	if (op->err != 0 && f->err == 0)
		f->err = op->err;
	/* Linux frees the descriptor even when close reports EINTR; never
	 * retry a close */
	f->fd = -1;
	f->state = FS_CLOSED;
	if (f->err)
		res = f->err;
	else if (res == -EINTR || res > 0)
		res = 0;
	finish(w, op, res);
}

static void publish_result(struct sl_io_writer *w, struct io_op *op, int res)
{
	if (is_retry(res) && op->step != PUB_CLOSE_DIR) {
		STAT_ADD(w, retries, 1);
		push_ready(w, op);
		return;
	}
	switch (op->step) {
	case PUB_RENAME:
		if (res < 0 && op->req.op == SL_IO_OP_RENAME) {
			finish(w, op, res); /* nothing else to undo */
			return;
		}
		if (res < 0) { /* the temp file is still there: remove it */
			op->err = res;
			op->step = PUB_UNLINK;
		} else {
			op->step = PUB_OPEN_DIR;
		}
		break;
	case PUB_OPEN_DIR:
		if (res < 0) { /* renamed, but not durably yet */
			finish(w, op, res);
			return;
		}
		op->dirfd = res;
		op->step = PUB_FSYNC_DIR;
		break;
	case PUB_FSYNC_DIR:
		/* some filesystems cannot fsync directories; their renames
		 * are as durable as they get */
		if (res < 0 && res != -EINVAL && res != -ENOTSUP)
			op->err = res;
		op->step = PUB_CLOSE_DIR;
		break;
	default: /* PUB_CLOSE_DIR, PUB_UNLINK: report the first error */
		finish(w, op, op->err);
		return;
	}
	push_ready(w, op);
}

/* One result for an op: a CQE, or a fault injected instead of one. */
static void on_result(struct sl_io_writer *w, struct io_op *op, int res)
{
	switch (op->req.op) {
	case SL_IO_OP_WRITE:
		write_result(w, op, res);
		break;
	case SL_IO_OP_OPEN:
		open_result(w, op, res);
		break;
	case SL_IO_OP_FSYNC:
		if (is_retry(res)) {
			STAT_ADD(w, retries, 1);
			push_ready(w, op);
		} else {
			finish(w, op, res < 0 ? res : 0);
		}
		break;
	case SL_IO_OP_CLOSE:
		close_result(w, op, res);
		break;
	default:
		publish_result(w, op, res);
		break;
	}
}

/* Turn one ready op into an SQE.  Returns false if there is no SQE. */
static bool prep(struct sl_io_writer *w, struct io_op *op)
{
	struct sl_io_file *f = op->req.file;
	struct io_uring_sqe *sqe;
	uint64_t len = 0;

	/* room first: a fault must not be charged to an op that waits */
	if (unlikely(io_uring_sq_space_left(&w->ring) == 0))
		return false;
	if (unlikely(f->err != 0) && (op->req.op == SL_IO_OP_WRITE ||
				      op->req.op == SL_IO_OP_FSYNC)) {
		/* the file failed while this waited for an SQE: later
		 * requests fail with the file's error */
		on_result(w, op, f->err);
		return true;
	}
	if (op->req.op == SL_IO_OP_OPEN && op->step == OPEN_PREALLOC &&
	    fault_hits(w, f) && w->fault.budget_err != 0 &&
	    f->prealloc > w->fault_budget_left) {
		/* the simulated disk is too full for the preallocation */
		on_result(w, op, -w->fault.budget_err);
		return true;
	}
	if (op->req.op == SL_IO_OP_CLOSE && op->step == CLOSE_TRUNCATE &&
	    !w->has_ftruncate) {
		/* old kernel: a shrinking truncate is a short metadata
		 * operation, done here rather than not at all */
		on_result(w, op, ftruncate(f->fd, (off_t)f->trim_to) < 0 ? -errno : 0);
		return true;
	}
	if (op->req.op == SL_IO_OP_WRITE) {
		len = op->req.len - op->done;
		if (fault_hits(w, f)) {
			int64_t n = fault_write_len(w, op, len);

			if (n < 0) {
				on_result(w, op, (int)n);
				return true;
			}
			len = (uint64_t)n;
		}
	}
	sqe = io_uring_get_sqe(&w->ring); /* cannot fail: space checked */
	switch (op->req.op) {
	case SL_IO_OP_OPEN:
		if (op->step == OPEN_PREALLOC)
			io_uring_prep_fallocate(sqe, f->fd, 0, 0, f->prealloc);
		else
			io_uring_prep_openat(sqe, AT_FDCWD, f->open_path,
					     O_WRONLY | O_CREAT | O_TRUNC |
						     O_CLOEXEC |
						     (f->direct ? O_DIRECT : 0),
					     f->mode);
		break;
	case SL_IO_OP_WRITE:
		io_uring_prep_write(sqe, f->fd,
				    (const char *)op->req.buf + op->done,
				    (unsigned)len, op->req.offset + op->done);
		break;
	case SL_IO_OP_FSYNC:
		io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
		break;
	case SL_IO_OP_CLOSE:
		if (op->step == CLOSE_TRUNCATE)
			io_uring_prep_rw(SL_IORING_OP_FTRUNCATE, sqe, f->fd, NULL,
					 0, f->trim_to);
		else if (op->step == CLOSE_SYNC)
			io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
		else
			io_uring_prep_close(sqe, f->fd);
		break;
	case SL_IO_OP_PUBLISH:
	case SL_IO_OP_RENAME:
	case SL_IO_OP_SYNC_DIR:
		switch (op->step) {
		case PUB_RENAME:
			if (op->req.op == SL_IO_OP_RENAME)
				io_uring_prep_renameat(sqe, AT_FDCWD, f->path,
						       AT_FDCWD, op->req.buf, 0);
			else
				io_uring_prep_renameat(sqe, AT_FDCWD, f->open_path,
						       AT_FDCWD, f->path, 0);
			break;
		case PUB_OPEN_DIR:
			io_uring_prep_openat(sqe, AT_FDCWD, f->dir,
					     O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
			break;
		case PUB_FSYNC_DIR:
			io_uring_prep_fsync(sqe, op->dirfd, 0);
			break;
		case PUB_CLOSE_DIR:
			io_uring_prep_close(sqe, op->dirfd);
			break;
		default:
			io_uring_prep_unlinkat(sqe, AT_FDCWD, f->open_path, 0);
			break;
		}
		break;
	}
	io_uring_sqe_set_data(sqe, op);
	STAT_ADD(w, inflight, 1);
	return true;
}

/* Fill SQEs from the ready FIFO while the kernel has room, then submit
 * them all with one system call. */
static void issue_ready(struct sl_io_writer *w)
{
	struct io_op *op;
	int rc;

	while (w->st.inflight < w->queue_depth &&
	       (op = STAILQ_FIRST(&w->ready)) != NULL) {
		STAILQ_REMOVE_HEAD(&w->ready, link);
		if (!prep(w, op)) {
			STAILQ_INSERT_HEAD(&w->ready, op, link);
			break;
		}
	}
	if (io_uring_sq_ready(&w->ring) == 0)
		return;
	rc = io_uring_submit(&w->ring);
	/* on -EAGAIN/-EBUSY/-EINTR the SQEs stay in the SQ ring and go
	 * with the next submit */
	if (rc > 0) {
		STAT_ADD(w, sqes, (unsigned)rc);
		STAT_ADD(w, submits, 1);
	}
}

static unsigned reap(struct sl_io_writer *w)
{
	struct io_uring_cqe *cqes[REAP_BURST];
	unsigned total = 0, n, i;

	do {
		n = io_uring_peek_batch_cqe(&w->ring, cqes, REAP_BURST);
		for (i = 0; i < n; i++) {
			struct io_op *op = io_uring_cqe_get_data(cqes[i]);
			int res = cqes[i]->res;

			STAT_ADD(w, inflight, -1);
			if (unlikely(w->fault_delay_tsc != 0) &&
			    fault_hits(w, op->req.file)) {
				op->res = res;
				op->due = rte_get_tsc_cycles() + w->fault_delay_tsc;
				STAILQ_INSERT_TAIL(&w->delayed, op, link);
			} else {
				on_result(w, op, res);
			}
		}
		/* release: tells the kernel these CQE slots are free; we
		 * copied what we need out of them above */
		io_uring_cq_advance(&w->ring, n);
		total += n;
	} while (n == REAP_BURST);
	return total;
}

/* Slow-disk fault: handle held CQEs whose time came (FIFO = due order). */
static unsigned run_delayed(struct sl_io_writer *w)
{
	uint64_t now = rte_get_tsc_cycles();
	struct io_op *op;
	unsigned n = 0;

	while ((op = STAILQ_FIRST(&w->delayed)) != NULL && op->due <= now) {
		STAILQ_REMOVE_HEAD(&w->delayed, link);
		on_result(w, op, op->res);
		n++;
	}
	return n;
}

static unsigned take(struct sl_io_writer *w, unsigned budget)
{
	struct sl_io_req reqs[TAKE_BURST];
	unsigned total = 0;

	while (budget > 0) {
		unsigned room = w->max_ops - w->st.held;
		unsigned want = RTE_MIN(RTE_MIN(budget, room), (unsigned)TAKE_BURST);
		unsigned n, i;

		if (want == 0)
			break;
		/* acquire (inside the SC dequeue): pairs with the
		 * submitters' release, so request contents, buffers and
		 * file objects are visible */
		n = rte_ring_sc_dequeue_burst_elem(w->rq, reqs, sizeof(reqs[0]),
						   want, NULL);
		for (i = 0; i < n; i++) {
			struct io_op *op = STAILQ_FIRST(&w->free_ops);

			STAILQ_REMOVE_HEAD(&w->free_ops, link);
			memset(op, 0, sizeof(*op));
			op->req = reqs[i];
			op->dirfd = -1;
			dispatch(w, op);
		}
		STAT_ADD(w, held, n);
		STAT_ADD(w, requests, n);
		total += n;
		budget -= n;
		if (n < want)
			break;
	}
	return total;
}

static inline void release_ref(struct io_op *op)
{
	switch (op->req.release) {
	case SL_IO_REL_BATCH:
		sl_batch_put(op->req.release_obj);
		break;
	case SL_IO_REL_FN:
		op->req.release_fn(op->req.release_obj);
		break;
	}
	op->req.release = SL_IO_REL_NONE; /* exactly once, even if the
					   * completion must wait */
}

static inline void free_op(struct sl_io_writer *w, struct io_op *op)
{
	STAILQ_INSERT_HEAD(&w->free_ops, op, link);
	STAT_ADD(w, held, -1);
}

/* Drop references and post completions; ops whose completion ring is
 * full stay (in order) for the next poll.  Returns completions posted. */
static unsigned deliver(struct sl_io_writer *w, bool drop_if_full)
{
	struct op_fifo keep = STAILQ_HEAD_INITIALIZER(keep);
	unsigned n = 0, kept = 0;
	struct io_op *op;

	while ((op = STAILQ_FIRST(&w->done)) != NULL) {
		STAILQ_REMOVE_HEAD(&w->done, link);
		/* the reference goes before the completion: whoever sees
		 * the completion may count on the batch being back */
		release_ref(op);
		if (op->req.cq != NULL) {
			struct sl_io_completion c = {
				.cookie = op->req.cookie,
				.res = op->res,
				.op = op->req.op,
			};

			/* release (inside the MP enqueue): the file's state
			 * and our reference drop happen before the reaper
			 * sees the completion */
			if (rte_ring_mp_enqueue_elem(op->req.cq, &c,
						     sizeof(c)) != 0) {
				if (drop_if_full) {
					STAT_ADD(w, cq_dropped, 1);
				} else {
					STAT_ADD(w, cq_full, 1);
					STAILQ_INSERT_TAIL(&keep, op, link);
					kept++;
					continue;
				}
			} else {
				STAT_ADD(w, completions, 1);
				n++;
			}
		}
		free_op(w, op);
	}
	STAILQ_CONCAT(&w->done, &keep);
	w->done_count = kept;
	return n;
}

unsigned sl_io_writer_poll(struct sl_io_writer *w, unsigned budget)
{
	unsigned work;

	fault_refresh(w);
	work = reap(w);
	if (unlikely(!STAILQ_EMPTY(&w->delayed)))
		work += run_delayed(w);
	work += take(w, budget);
	issue_ready(w);
	if (!STAILQ_EMPTY(&w->done))
		work += deliver(w, false);
	return work;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

struct sl_io_writer *sl_io_writer_create(const struct sl_io_writer_conf *conf)
{
	struct io_uring_probe *probe;
	struct io_uring_params p;
	struct sl_io_writer *w;
	char rname[RTE_RING_NAMESIZE];
	unsigned ring_size, i;
	int rc;

	if (conf == NULL || conf->name == NULL || conf->name[0] == '\0' ||
	    snprintf(rname, sizeof(rname), "slio_%s", conf->name) >=
		    (int)sizeof(rname) ||
	    conf->queue_depth > 4096) {
		rte_errno = EINVAL;
		return NULL;
	}
	w = rte_zmalloc_socket("sl_io_writer", sizeof(*w), RTE_CACHE_LINE_SIZE,
			       conf->socket);
	if (w == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	strcpy(w->name, rname);
	w->queue_depth = conf->queue_depth ? conf->queue_depth : DEFAULT_QUEUE_DEPTH;
	w->max_ops = conf->max_ops ? conf->max_ops : 4 * w->queue_depth;
	w->idle_sleep_max_us = conf->idle_sleep_max_us ? conf->idle_sleep_max_us
						       : DEFAULT_IDLE_SLEEP_MAX_US;
	ring_size = conf->request_ring_size ? conf->request_ring_size
					    : DEFAULT_RING_SIZE;
	rte_spinlock_init(&w->fault_lock);
	STAILQ_INIT(&w->free_ops);
	STAILQ_INIT(&w->ready);
	STAILQ_INIT(&w->delayed);
	STAILQ_INIT(&w->done);

	w->ops = rte_calloc_socket("sl_io_ops", w->max_ops, sizeof(*w->ops),
				   RTE_CACHE_LINE_SIZE, conf->socket);
	if (w->ops == NULL) {
		rte_errno = ENOMEM;
		goto fail;
	}
	for (i = 0; i < w->max_ops; i++)
		STAILQ_INSERT_TAIL(&w->free_ops, &w->ops[i], link);

	/* MP enqueue from any lcore, SC dequeue by the poller; exact size
	 * so that the configured count is the real capacity */
	w->rq = rte_ring_create_elem(rname, sizeof(struct sl_io_req), ring_size,
				     conf->socket, RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (w->rq == NULL)
		goto fail; /* rte_errno set */

	/* SUBMIT_ALL: an SQE failing at submission must not hold back the
	 * others.  COOP_TASKRUN + TASKRUN_FLAG: completion work runs when
	 * the poller enters the kernel (io_uring_peek_batch_cqe() does so
	 * when the flag says work is pending) instead of interrupting it
	 * with an IPI, so a worker lcore polling us inline is not disturbed
	 * mid-burst.  Kernels before 5.19 refuse them: retry without.
	 * The CQ ring is twice the SQ ring and inflight <= queue_depth, so
	 * the CQ never overflows. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG;
	rc = io_uring_queue_init_params(w->queue_depth, &w->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(w->queue_depth, &w->ring, &p);
	}
	if (rc < 0) {
		rte_errno = -rc;
		goto fail;
	}
	probe = io_uring_get_probe_ring(&w->ring);
	if (probe != NULL) {
		w->has_ftruncate = SL_IORING_OP_FTRUNCATE <= probe->last_op &&
				   io_uring_opcode_supported(probe, SL_IORING_OP_FTRUNCATE);
		io_uring_free_probe(probe);
	}
	return w;
fail:
	rc = rte_errno;
	rte_ring_free(w->rq);
	rte_free(w->ops);
	rte_free(w);
	rte_errno = rc;
	return NULL;
}

void sl_io_writer_stop(struct sl_io_writer *w)
{
	/* release: pairs with the acquire in lcore_main; orders nothing
	 * else but keeps the flag's meaning obvious */
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
}

unsigned sl_io_writer_outstanding(const struct sl_io_writer *w)
{
	/* relaxed: a racy snapshot by contract */
	return rte_ring_count(w->rq) +
	       __atomic_load_n(&w->st.held, __ATOMIC_RELAXED);
}

void sl_io_writer_stats(const struct sl_io_writer *w,
			struct sl_io_writer_stats *st)
{
	const struct sl_io_writer_stats *s = &w->st;

	/* relaxed loads: each counter is written by the poller only */
#define LD(f) st->f = __atomic_load_n(&s->f, __ATOMIC_RELAXED)
	LD(requests); LD(completions); LD(writes); LD(bytes_written);
	LD(fsyncs); LD(errors); LD(sqes); LD(submits); LD(short_writes);
	LD(retries); LD(cq_full); LD(cq_dropped); LD(held); LD(inflight);
#undef LD
	st->enobufs = __atomic_load_n(&w->enobufs, __ATOMIC_RELAXED);
}

/* Nothing left but completions waiting for room in their rings. */
static bool quiescent(const struct sl_io_writer *w)
{
	return w->st.held == w->done_count && rte_ring_empty(w->rq);
}

/* Idle wait: for a CQE if the kernel has work of ours, else plain sleep. */
static void idle_wait(struct sl_io_writer *w, unsigned us)
{
	if (w->st.inflight > 0) {
		struct __kernel_timespec ts = {
			.tv_sec = us / 1000000,
			.tv_nsec = (long long)(us % 1000000) * 1000,
		};
		struct io_uring_cqe *cqe;

		/* returns at the first CQE (left for the next poll to
		 * reap) or after the timeout */
		(void)io_uring_wait_cqe_timeout(&w->ring, &cqe, &ts);
	} else {
		rte_delay_us_sleep(us);
	}
}

int sl_io_writer_lcore_main(void *arg)
{
	struct sl_io_writer *w = arg;
	unsigned idle = 0, sleep_us = 1;

	for (;;) {
		if (sl_io_writer_poll(w, LCORE_BUDGET) > 0) {
			idle = 0;
			sleep_us = 1;
			continue;
		}
		/* acquire: pairs with the release in sl_io_writer_stop() */
		if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) && quiescent(w))
			break;
		if (++idle < SPIN_ITERS) {
			rte_pause();
			continue;
		}
		idle_wait(w, sleep_us);
		if (sleep_us < w->idle_sleep_max_us)
			sleep_us = RTE_MIN(sleep_us * 2, w->idle_sleep_max_us);
	}
	return 0;
}

void sl_io_writer_destroy(struct sl_io_writer *w)
{
	if (w == NULL)
		return;
	/* finish everything queued or in the kernel: the kernel must be
	 * done with every buffer before anyone frees it, and every
	 * reference must be dropped */
	for (;;) {
		unsigned work = sl_io_writer_poll(w, UINT32_MAX);

		if (quiescent(w))
			break;
		if (work > 0)
			continue;
		if (w->st.held == w->done_count)
			/* every slot waits for a full completion ring while
			 * requests queue: nobody will reap, drop them */
			deliver(w, true);
		else
			idle_wait(w, 1000);
	}
	deliver(w, true);
	io_uring_queue_exit(&w->ring);
	rte_ring_free(w->rq);
	rte_free(w->ops);
	rte_free(w);
}
