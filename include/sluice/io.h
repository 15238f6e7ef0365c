/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Asynchronous persistence: the io_uring writer service.
 *
 * A writer owns one io_uring and one MPSC request ring.  Any lcore (or
 * other thread) submits fixed-size requests by copying them into the ring;
 * submitting never allocates, never enters the kernel and never blocks: a
 * full ring returns -ENOBUFS and the caller retries later.  One thread at a
 * time polls the writer (sl_io_writer_poll()): either a dedicated lcore
 * running sl_io_writer_lcore_main(), or a worker lcore that calls the poll
 * function from its own loop when cores are scarce.  The poller turns
 * requests into SQEs, submits them in batches, reaps CQEs, retries short
 * writes, -EAGAIN and -EINTR, and posts one completion per request to the
 * completion ring the request named.
 *
 * Files (struct sl_io_file) are created and owned by the submitter; the
 * writer performs open, write, fdatasync, close and publish (rename of a
 * temp file plus directory fsync) on them, all through io_uring, so no
 * lcore ever waits for the filesystem.  Requests on one file take effect
 * in submission order where it matters:
 *
 *   - nothing is written before the OPEN completed;
 *   - FSYNC is issued only after every earlier WRITE of the file completed
 *     (io_uring does not order SQEs by itself);
 *   - CLOSE waits for every earlier request of the file; PUBLISH for CLOSE.
 *
 * WRITEs of one file run concurrently with each other (each names its own
 * offset).  The first failure of a file (e.g. -ENOSPC, -EIO) makes it
 * *failed*: the failing request and every later WRITE/FSYNC/PUBLISH on it
 * complete with that error, CLOSE still closes the descriptor, PUBLISH
 * removes the temp file.  Checkpoint code declines the checkpoint on such a
 * completion; the writer itself keeps serving every other file.
 *
 * Write buffers stay owned by the submitter until the request completes.
 * A WRITE may instead hand the writer one reference to drop when it is
 * done (a batch reference for zero-copy channel state, or a release
 * callback), so the submitter need not track the buffer at all.
 *
 * Fault injection (sl_io_writer_fault_set()) simulates ENOSPC, EIO, short
 * writes, EAGAIN/EINTR and a slow disk for tests.  See docs/io.md.
 */
#ifndef SLUICE_IO_H
#define SLUICE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "sluice/batch.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sl_io_writer;
struct sl_io_file;

/** @name File flags (sl_io_file_create())
 * @{ */
/** Open with O_DIRECT: every WRITE's buffer address, offset and length
 * must be multiples of SL_IO_DIRECT_ALIGN.  If the filesystem refuses
 * O_DIRECT at open time (-EINVAL), the file is opened buffered instead. */
#define SL_IO_F_DIRECT 0x1u
/** Write to the temp name sl_io_tmp_path(path) ("dir/.name.tmp");
 * SL_IO_OP_PUBLISH later renames it to `path` and fsyncs the directory. */
#define SL_IO_F_TMP 0x2u
/** @} */

/** Alignment of buffer address, offset and length for SL_IO_F_DIRECT. */
#define SL_IO_DIRECT_ALIGN 4096u

/** Request flag: a CLOSE that trims the file to `offset` bytes and
 * fdatasyncs it first (sl_io_req_close_sync()). */
#define SL_IO_REQ_F_SYNC 0x1u

/** Request kinds. */
enum sl_io_op {
	SL_IO_OP_OPEN = 1, /**< create/truncate the file for writing */
	SL_IO_OP_WRITE,	   /**< write buf[0..len) at offset */
	SL_IO_OP_FSYNC,	   /**< fdatasync after all earlier writes completed */
	SL_IO_OP_CLOSE,	   /**< close after all earlier requests completed */
	SL_IO_OP_PUBLISH,  /**< SL_IO_F_TMP file, closed: rename + fsync dir */
	SL_IO_OP_RENAME,   /**< closed (or never opened) file: rename to
			    *   buf (a path in the same directory) +
			    *   fsync the directory */
	SL_IO_OP_SYNC_DIR, /**< fsync the directory of the file's path */
};

/** What a WRITE drops when it is done (successfully or not). */
enum sl_io_release {
	SL_IO_REL_NONE = 0, /**< nothing: the buffer stays the caller's */
	SL_IO_REL_BATCH,    /**< sl_batch_put(release_obj) */
	SL_IO_REL_FN,	    /**< release_fn(release_obj) */
};

/**
 * One request, copied by value into the writer's ring (one cache line).
 * Build it with the sl_io_req_*() helpers below.
 */
struct sl_io_req {
	uint8_t op;		  /**< enum sl_io_op */
	uint8_t release;	  /**< enum sl_io_release (WRITE only) */
	uint16_t flags;		  /**< SL_IO_REQ_F_*, else 0 */
	uint32_t len;		  /**< WRITE: bytes to write */
	struct sl_io_file *file;  /**< target file */
	uint64_t offset;	  /**< WRITE: file offset; OPEN: bytes to
				   *   preallocate (0: none) */
	const void *buf;	  /**< WRITE: bytes to write */
	uint64_t cookie;	  /**< returned in the completion */
	struct rte_ring *cq;	  /**< completion ring, or NULL for none */
	void *release_obj;	  /**< batch, or argument of release_fn */
	void (*release_fn)(void *obj); /**< SL_IO_REL_FN */
};
_Static_assert(sizeof(struct sl_io_req) == 64,
	       "a request must stay one cache line");

/**
 * One completion.  `res` is >= 0 on success (WRITE: bytes written, i.e.
 * `len`; other requests: 0) and a negative errno on failure.  Completions
 * of different requests arrive in any order.
 */
struct sl_io_completion {
	uint64_t cookie; /**< the request's cookie */
	int32_t res;	 /**< result, see above */
	uint8_t op;	 /**< enum sl_io_op of the request */
	uint8_t pad_[3];
};
_Static_assert(sizeof(struct sl_io_completion) == 16,
	       "completions are 16-byte ring elements");

/** Writer configuration; zero fields take the defaults. */
struct sl_io_writer_conf {
	const char *name;	    /**< unique, at most 23 characters (names
				     *   the request ring "slio_<name>") */
	unsigned queue_depth;	    /**< max SQEs in the kernel (default 64,
				     *   at most 4096) */
	unsigned request_ring_size; /**< request ring slots (default 1024) */
	unsigned max_ops;	    /**< requests the writer holds at once:
				     *   in the kernel, waiting for per-file
				     *   order, or for completion-ring room
				     *   (default 4 * queue_depth) */
	int socket;		    /**< NUMA socket of the writer's memory
				     *   (0 is socket 0; SOCKET_ID_ANY: any) */
	unsigned idle_sleep_max_us; /**< lcore_main back-off cap (default 200) */
};

/** Counters of one writer (sl_io_writer_stats()). */
struct sl_io_writer_stats {
	uint64_t requests;	/**< requests taken from the ring */
	uint64_t completions;	/**< completions posted to completion rings */
	uint64_t writes;	/**< WRITEs that succeeded */
	uint64_t bytes_written; /**< bytes of those WRITEs */
	uint64_t fsyncs;	/**< FSYNCs that succeeded */
	uint64_t errors;	/**< requests that completed with an error */
	uint64_t sqes;		/**< SQEs handed to the kernel */
	uint64_t submits;	/**< io_uring_submit() calls that submitted */
	uint64_t short_writes;	/**< partial write results resubmitted */
	uint64_t retries;	/**< -EAGAIN/-EINTR results resubmitted */
	uint64_t cq_full;	/**< completion posts retried: ring was full */
	uint64_t cq_dropped;	/**< completions dropped by destroy */
	uint64_t enobufs;	/**< submissions refused: request ring full */
	uint32_t held;		/**< requests held by the writer now */
	uint32_t inflight;	/**< SQEs in the kernel now */
};

/**
 * Fault injection (tests; compiled in, off unless set).  Zero fields are
 * off.  Faults apply to files whose path contains `path_substr` (all files
 * when it is empty) and count from the moment they are set.
 */
struct sl_io_fault {
	char path_substr[64];	   /**< only files whose path contains this */
	int budget_err;		   /**< errno once the byte budget ran out */
	uint64_t budget_bytes;	   /**< bytes written before budget_err: the
				    *   write crossing it is cut short there
				    *   (a short write), its remainder and
				    *   all later writes fail; so does a
				    *   preallocation larger than what is
				    *   left */
	uint64_t nth_write;	   /**< the n-th WRITE request (1-based) fails */
	int nth_err;		   /**< ... with this errno (default EIO) */
	uint32_t max_write_bytes;  /**< cap every write SQE at this many bytes
				    *   (rounded down to SL_IO_DIRECT_ALIGN,
				    *   at least one block, for O_DIRECT) */
	uint32_t delay_us;	   /**< hold every CQE this long: slow disk */
	uint32_t eagain_every;	   /**< report every n-th write CQE as -EAGAIN
				    *   or -EINTR (alternating; n >= 2, the
				    *   write is then done again) */
};

/* ---------------------------------------------------------------------- */
/** @name Files
 * @{ */

/**
 * Describe a file to be written through a writer.  Nothing is opened yet;
 * submit SL_IO_OP_OPEN.  The submitter owns the object and frees it with
 * sl_io_file_free() after the completion of its last request.  One file's
 * requests must come from one submitter (or be ordered by the caller) and
 * go to one writer.
 * @param path   file to create (truncated if it exists); with SL_IO_F_TMP
 *               the temp name next to it is written and `path` appears at
 *               SL_IO_OP_PUBLISH
 * @param flags  SL_IO_F_* flags
 * @param mode   creation mode (e.g. 0644)
 * @return the file, or NULL with errno set (EINVAL: empty path, unknown
 *         flag; ENAMETOOLONG; ENOMEM)
 */
struct sl_io_file *sl_io_file_create(const char *path, unsigned flags,
				     unsigned mode);

/**
 * A file object for a descriptor the caller opened for writing: the
 * writer takes the descriptor over with the first request (FSYNC, CLOSE,
 * RENAME; never OPEN) and closes it at the CLOSE.  Lets a component that
 * writes with write(2) leave the fdatasync, close and rename to the
 * writer.
 * @param fd    open descriptor; the caller no longer uses it
 * @param path  its current path (RENAME renames from it)
 * @return the file, or NULL with errno set (EINVAL, ENAMETOOLONG, ENOMEM)
 */
struct sl_io_file *sl_io_file_adopt(int fd, const char *path);

/** Free a file object.  Its descriptor must be closed (SL_IO_OP_CLOSE
 * completed) or never opened.  NULL is ignored. */
void sl_io_file_free(struct sl_io_file *f);

/** The path the file will have once finished (not the temp name). */
const char *sl_io_file_path(const struct sl_io_file *f);

/**
 * True if the file is opened without O_DIRECT although SL_IO_F_DIRECT was
 * asked for (the filesystem refused it).  Meaningful after the OPEN
 * completion was reaped.
 */
bool sl_io_file_direct_fallback(const struct sl_io_file *f);
/** @} */

/* ---------------------------------------------------------------------- */
/** @name Building requests
 * @{ */

/**
 * OPEN `f` (create, truncate, write-only).  Whatever the OPEN's result,
 * finish the file with a CLOSE: it releases what the OPEN got, and
 * completes with the OPEN's error if there was one.
 */
static inline struct sl_io_req
sl_io_req_open(struct sl_io_file *f, struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_OPEN, .file = f,
				   .cq = cq, .cookie = cookie };
}

/**
 * OPEN `f` and preallocate `bytes` (fallocate, the file size becomes
 * `bytes`).  Writes into preallocated space need no block allocation, so
 * on ext4/XFS O_DIRECT writes complete without io-wq worker threads (see
 * docs/io.md: those threads share the CPU of whoever polls the writer),
 * and a disk too full for the whole file fails here, at once, with
 * -ENOSPC.  CLOSE truncates the file back to the end of the furthest
 * successful write (and fdatasyncs the new size) if less was written.
 * Filesystems without fallocate just skip it.
 */
static inline struct sl_io_req
sl_io_req_open_prealloc(struct sl_io_file *f, uint64_t bytes,
			struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_OPEN, .file = f,
				   .offset = bytes, .cq = cq,
				   .cookie = cookie };
}

/** WRITE `len` bytes (at most INT32_MAX) of `buf` at `offset`; `buf`
 * must stay valid and unchanged until the completion. */
static inline struct sl_io_req
sl_io_req_write(struct sl_io_file *f, uint64_t offset, const void *buf,
		uint32_t len, struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_WRITE, .file = f,
				   .offset = offset, .buf = buf, .len = len,
				   .cq = cq, .cookie = cookie };
}

/**
 * WRITE bytes that live in a batch, zero-copy.  The request carries one
 * reference to `b` (take it with sl_batch_ref() if you keep using the
 * batch); the writer drops it with sl_batch_put() when the write is done,
 * also on failure.  If submission fails (-ENOBUFS) the reference is still
 * the caller's.
 */
static inline struct sl_io_req
sl_io_req_write_batch(struct sl_io_file *f, uint64_t offset, const void *buf,
		      uint32_t len, struct sl_batch *b, struct rte_ring *cq,
		      uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_WRITE, .file = f,
				   .offset = offset, .buf = buf, .len = len,
				   .release = SL_IO_REL_BATCH, .release_obj = b,
				   .cq = cq, .cookie = cookie };
}

/**
 * WRITE with a release callback: `fn(arg)` runs on the polling thread when
 * the write is done (also on failure), before the completion is posted.
 * It must not block.  Not called if submission fails.
 */
static inline struct sl_io_req
sl_io_req_write_fn(struct sl_io_file *f, uint64_t offset, const void *buf,
		   uint32_t len, void (*fn)(void *arg), void *arg,
		   struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_WRITE, .file = f,
				   .offset = offset, .buf = buf, .len = len,
				   .release = SL_IO_REL_FN, .release_fn = fn,
				   .release_obj = arg, .cq = cq,
				   .cookie = cookie };
}

/** FSYNC (fdatasync) `f` once every earlier WRITE of it completed.  A
 * successful completion means all those writes are durable. */
static inline struct sl_io_req
sl_io_req_fsync(struct sl_io_file *f, struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_FSYNC, .file = f,
				   .cq = cq, .cookie = cookie };
}

/** CLOSE `f` once every earlier request of it completed.  The descriptor
 * is closed even when the file failed; the completion then carries the
 * file's error.  CLOSE does not fsync the data (submit an FSYNC first),
 * except after trimming unused preallocation. */
static inline struct sl_io_req
sl_io_req_close(struct sl_io_file *f, struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_CLOSE, .file = f,
				   .cq = cq, .cookie = cookie };
}

/**
 * CLOSE `f` once every earlier request of it completed, after making it
 * exactly `size` bytes long (ftruncate, if it is not) and durable
 * (fdatasync): a successful completion means every earlier write up to
 * `size` and the size itself are on disk, no separate FSYNC needed.  This
 * is how an O_DIRECT file ends whose last write was padded to
 * SL_IO_DIRECT_ALIGN: write the last block whole, close at the real size.
 * `size` beyond the furthest byte written is refused (-EINVAL, the file is
 * still closed).  On a failed file it only closes, with the file's error.
 */
static inline struct sl_io_req
sl_io_req_close_sync(struct sl_io_file *f, uint64_t size, struct rte_ring *cq,
		     uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_CLOSE, .file = f,
				   .flags = SL_IO_REQ_F_SYNC, .offset = size,
				   .cq = cq, .cookie = cookie };
}

/**
 * PUBLISH a closed SL_IO_F_TMP file: rename the temp file to its final
 * path, then fsync the directory (the atomic-publish protocol of
 * sluice/io_file.h, without blocking anyone).  Submit it after an FSYNC
 * and the CLOSE.  On a failed file the temp file is unlinked instead and
 * the completion carries the file's error.
 */
static inline struct sl_io_req
sl_io_req_publish(struct sl_io_file *f, struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_PUBLISH, .file = f,
				   .cq = cq, .cookie = cookie };
}

/**
 * RENAME `f` (closed, or a file object for an existing path that was
 * never opened) to `to`, a path in the same directory, then fsync the
 * directory: the rename is durable when the completion says 0.  `to` must
 * stay valid until the completion.  A failed file is not renamed (its
 * error is the result); a failed rename leaves the file where it was.
 */
static inline struct sl_io_req
sl_io_req_rename(struct sl_io_file *f, const char *to, struct rte_ring *cq,
		 uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_RENAME, .file = f, .buf = to,
				   .cq = cq, .cookie = cookie };
}

/**
 * SYNC_DIR: fsync the directory holding `f`'s path once every earlier
 * request of `f` completed (e.g. after a CLOSE, to make a rename the
 * caller did durable).  No file state is needed: a file object of a path
 * never opened through the writer will do.  A failed file completes with
 * its error.
 */
static inline struct sl_io_req
sl_io_req_sync_dir(struct sl_io_file *f, struct rte_ring *cq, uint64_t cookie)
{
	return (struct sl_io_req){ .op = SL_IO_OP_SYNC_DIR, .file = f,
				   .cq = cq, .cookie = cookie };
}
/** @} */

/* ---------------------------------------------------------------------- */
/** @name Submitting and reaping (any lcore or thread, never blocks)
 * @{ */

/**
 * Submit one request.
 * @return 0, or -ENOBUFS if the request ring is full (retry later; any
 *         reference the request carries is still the caller's)
 */
int sl_io_submit(struct sl_io_writer *w, const struct sl_io_req *req);

/**
 * Submit up to `n` requests, in order.  Requests of one submitter are
 * taken by the writer in the order they were submitted.
 * @return how many were accepted (a prefix of reqs); the rest were refused
 *         because the ring is full and still belong to the caller
 */
unsigned sl_io_submit_burst(struct sl_io_writer *w,
			    const struct sl_io_req *reqs, unsigned n);

/**
 * Create a completion ring: many writers may post to it, one consumer
 * reaps it (sl_io_reap()).  Size it for every request the consumer can
 * have outstanding; when it is full the writer holds completions back
 * (and the requests' slots with them) until there is room.
 * @param name   unique ring name (at most RTE_RING_NAMESIZE - 1 chars)
 * @param count  completions it holds
 * @param socket NUMA socket or SOCKET_ID_ANY
 * @return the ring, or NULL with rte_errno set (EINVAL, EEXIST, ENOMEM)
 */
struct rte_ring *sl_io_completion_ring_create(const char *name,
					      unsigned count, int socket);

/** Free a completion ring (rte_ring_free()). */
void sl_io_completion_ring_free(struct rte_ring *cq);

/**
 * Reap up to `n` completions from a completion ring (single consumer).
 * @return the number of completions copied to `c`
 */
static inline unsigned sl_io_reap(struct rte_ring *cq,
				  struct sl_io_completion *c, unsigned n)
{
	return rte_ring_sc_dequeue_burst_elem(cq, c, sizeof(*c), n, NULL);
}
/** @} */

/* ---------------------------------------------------------------------- */
/** @name The writer
 * @{ */

/**
 * Create a writer: its io_uring, request ring and request slots.
 * The EAL must be initialised.  The writer is not polled until someone
 * calls sl_io_writer_poll() or launches sl_io_writer_lcore_main().
 * @return the writer, or NULL with rte_errno set: EINVAL (bad conf, name
 *         missing or too long), EEXIST (name in use), ENOMEM, or the
 *         errno of io_uring_queue_init() (e.g. ENOSYS, EPERM when io_uring
 *         is disabled)
 */
struct sl_io_writer *sl_io_writer_create(const struct sl_io_writer_conf *conf);

/**
 * Destroy a writer.  Nobody may poll it any more (stop the lcore running
 * sl_io_writer_lcore_main() and wait for it first).  Requests still queued
 * are executed and every request still in the kernel is waited for, so
 * buffers are never freed under the kernel and every reference is
 * dropped; completions that find their ring full are dropped (counted).
 * Files left open by their submitters are not closed.  NULL is ignored.
 */
void sl_io_writer_destroy(struct sl_io_writer *w);

/**
 * Do the writer's work once, without blocking: reap CQEs (retrying short
 * writes, -EAGAIN, -EINTR), take up to `budget` requests from the ring,
 * issue what per-file order allows, submit all new SQEs with one
 * io_uring_submit(), post completions.  Call it from one thread at a time.
 * @param w       the writer
 * @param budget  maximum requests to take from the ring (0 = only reap)
 * @return work done (CQEs reaped + requests taken + completions posted);
 *         0 means the call found nothing to do
 */
unsigned sl_io_writer_poll(struct sl_io_writer *w, unsigned budget);

/**
 * Run the writer until sl_io_writer_stop(): an lcore_function_t for
 * rte_eal_remote_launch() (or a pthread).  When idle it backs off:
 * rte_pause() first, then sleeps growing to idle_sleep_max_us, spent in
 * io_uring_wait_cqe_timeout() when requests are in the kernel so that a
 * completion ends the wait at once.  After the stop request it keeps
 * going until the request ring is empty and no request is held, then
 * returns 0.
 * @param arg  the struct sl_io_writer *
 */
int sl_io_writer_lcore_main(void *arg);

/** Ask sl_io_writer_lcore_main() to finish the outstanding work and
 * return.  Safe from any thread. */
void sl_io_writer_stop(struct sl_io_writer *w);

/**
 * Requests not finished yet: in the request ring or held by the writer
 * (a racy snapshot when read while the writer runs).
 */
unsigned sl_io_writer_outstanding(const struct sl_io_writer *w);

/** Read the writer's counters (any thread; each counter is read
 * atomically, the set is not a consistent snapshot). */
void sl_io_writer_stats(const struct sl_io_writer *w,
			struct sl_io_writer_stats *st);

/**
 * Set (or with NULL clear) the writer's injected faults.  Any thread; the
 * poller picks the new set up at its next poll, and counters (budget, n-th
 * write) start from then.
 * @return 0, or -EINVAL (negative errno or eagain_every == 1)
 */
int sl_io_writer_fault_set(struct sl_io_writer *w, const struct sl_io_fault *f);
/** @} */

/* ---------------------------------------------------------------------- */
/** @name Reading files: the parallel io_uring reader (restore)
 *
 * sl_io_read_files() reads a set of files completely into memory through
 * a private io_uring, many reads in flight across files and within large
 * ones, and returns when all are read or one failed.  It blocks the
 * calling thread (restore runs before the job's lcores start) and uses
 * no EAL facility, so it works from any thread.  See docs/io.md.
 * @{ */

/** What went wrong with one file (sl_io_read_file.error_op). */
enum sl_io_read_op {
	SL_IO_READ_OK = 0,	 /**< no error */
	SL_IO_READ_OPEN,	 /**< opening it (or the conf's dir) */
	SL_IO_READ_STAT,	 /**< fstat, or not a regular file */
	SL_IO_READ_ALLOC,	 /**< no memory for its contents */
	SL_IO_READ_READ,	 /**< a read failed (error_offset says where) */
	SL_IO_READ_SHRANK,	 /**< end of file before the size it had at
				  *   open: changed while being read */
	SL_IO_READ_CANCELED,	 /**< not read: another file failed first */
	SL_IO_READ_SETUP,	 /**< not read: the reader's io_uring (or the
				  *   conf's dir) could not be set up */
	SL_IO_READ_CHECK,	 /**< read, but conf->on_file refused it */
};

/** One file to read, and what became of it. */
struct sl_io_read_file {
	const char *path;	 /**< in: the file; a relative path is taken
				  *   relative to the conf's dir */
	void *data;		 /**< out: the contents, never NULL on success
				  *   (also for an empty file, so that it can
				  *   be a memory sl_snap_src); aligned to
				  *   SL_IO_DIRECT_ALIGN; free() it.  NULL on
				  *   failure. */
	uint64_t len;		 /**< out: bytes read (the size at open) */
	int error;		 /**< out: 0 or a negative errno */
	uint8_t error_op;	 /**< out: enum sl_io_read_op */
	bool direct;		 /**< out: read with O_DIRECT */
	uint64_t error_offset;	 /**< out: file offset of a failed read */
};

/** Called with the bytes read so far and the total to read. */
typedef void (*sl_io_read_progress_fn)(void *arg, uint64_t done,
				       uint64_t total);

/**
 * Fault injection for tests (like struct sl_io_fault of the writer).
 * Zero fields are off.  Faults apply to files whose path contains
 * `path_substr` (all files when it is empty).
 */
struct sl_io_read_fault {
	char path_substr[64];	   /**< only files whose path contains this */
	uint32_t max_read_bytes;   /**< cap every read SQE at this many bytes
				    *   (rounded down to SL_IO_DIRECT_ALIGN,
				    *   at least one block, for O_DIRECT):
				    *   the kernel returns short reads */
	uint32_t eagain_every;	   /**< report every n-th successful read CQE
				    *   as -EAGAIN or -EINTR (alternating;
				    *   n >= 2); the read is done again */
	uint32_t short_every;	   /**< report every n-th read CQE of more
				    *   than one byte as having read about
				    *   half of it, an odd count (so an
				    *   unaligned remainder for O_DIRECT) */
	uint64_t nth_read;	   /**< the n-th read CQE (1-based) fails ... */
	int nth_err;		   /**< ... with this errno (default EIO) */
};

/** Reader configuration; NULL or zero fields take the defaults. */
struct sl_io_read_conf {
	const char *dir;	  /**< relative paths are opened relative to
				   *   this directory (NULL: the current one) */
	unsigned queue_depth;	  /**< reads in flight (default 32, at most
				   *   4096) */
	uint32_t chunk_size;	  /**< bytes per read (default 1 MiB; a
				   *   multiple of SL_IO_DIRECT_ALIGN, at
				   *   most 64 MiB) */
	bool buffered;		  /**< never use O_DIRECT (default: O_DIRECT
				   *   where the filesystem allows it) */
	bool nofollow;		  /**< O_NOFOLLOW: a symlink fails with
				   *   -ELOOP (checkpoint files) */
	sl_io_read_progress_fn progress; /**< optional progress callback, on
				   *   the calling thread */
	void *progress_arg;	  /**< passed to progress */
	uint64_t progress_every;  /**< at least this many bytes between
				   *   progress calls (default: 1% of the
				   *   total, at least 1 MiB), checked after
				   *   each batch of completions; there is
				   *   always a last call with done == total
				   *   when everything was read */
	const struct sl_io_read_fault *fault; /**< tests only; NULL: none */
	/** optional: called on the calling thread as soon as file `index`
	 *  (of the array given) is read completely, while the other files'
	 *  reads go on: work on its bytes (e.g. a checksum) overlaps them.
	 *  A negative return fails the file like a read error would: no new
	 *  read starts, the call returns it, the file gets it as `error`
	 *  with `error_op` SL_IO_READ_CHECK and loses its data. */
	int (*on_file)(void *arg, unsigned index);
	void *on_file_arg;	  /**< passed to on_file */
};

/** Counters of one sl_io_read_files() call. */
struct sl_io_read_stats {
	uint64_t files;		/**< files read completely */
	uint64_t bytes;		/**< bytes of those files */
	uint64_t reads;		/**< read SQEs submitted */
	uint64_t short_reads;	/**< partial results resubmitted */
	uint64_t retries;	/**< -EAGAIN/-EINTR results resubmitted */
	uint64_t direct_files;	/**< files read with O_DIRECT */
	uint64_t submits;	/**< io_uring_submit_and_wait() calls */
	uint32_t max_inflight;	/**< most reads in the kernel at once */
	uint64_t elapsed_ns;	/**< wall time of the call */
};

/**
 * Read `n` files completely into memory, in parallel.
 *
 * Sizes are taken first (fstatat) for the progress total; each file is
 * then opened when its first read is due (so few descriptors are open at
 * a time), with O_DIRECT unless conf->buffered or the filesystem refuses
 * it (then buffered; `direct` says which), and read in chunk_size pieces,
 * up to queue_depth reads in flight across all files.  Short reads,
 * -EAGAIN and -EINTR are resubmitted; an O_DIRECT resubmission restarts
 * at the aligned offset below the remainder (rereading a few bytes).
 * A file is read up to the size it had when opened.
 *
 * The first failure stops the call from starting more reads: the reads in
 * flight finish, every failed or never-started file has its `error`,
 * `error_op` (later files: SL_IO_READ_CANCELED, -ECANCELED) and no data,
 * and the files read completely keep theirs.  sl_io_read_describe()
 * turns a file's error into a message naming it.
 *
 * @param files  the files: `path` in, the rest out
 * @param n      number of files (0 is fine)
 * @param conf   configuration, or NULL for the defaults
 * @param stats  if not NULL, receives counters
 * Before any read, every file's size is looked up; a file missing, a
 * symlink (with conf->nofollow) or not a regular file fails the call
 * there, before anything is read (the other files: canceled).
 *
 * @return 0 if every file was read, else the first failure's negative
 *         errno (-ENOENT, -ELOOP, -EACCES, -EISDIR, -EIO, -ENOMEM, ...);
 *         -EINVAL for a bad conf or a NULL path (nothing is touched); for
 *         a dir that does not open or an io_uring that cannot be set up
 *         (-ENOSYS, -EPERM: io_uring disabled) its errno, every file
 *         marked SL_IO_READ_SETUP
 */
int sl_io_read_files(struct sl_io_read_file *files, unsigned n,
		     const struct sl_io_read_conf *conf,
		     struct sl_io_read_stats *stats);

/**
 * Describe the error of one file: "<path>: <what>: <strerror>", e.g.
 * "chk-7/op-0-c7.kstate: open: No such file or directory" or
 * "x.kstate: read at offset 1048576: Input/output error".
 * @return the length snprintf() would have written
 */
int sl_io_read_describe(const struct sl_io_read_file *f, char *buf,
			size_t len);
/** @} */

/* ---------------------------------------------------------------------- */
/** @name Disk bandwidth (for benchmarks to report next to their results)
 * @{ */

/**
 * Measure sequential write bandwidth of the disk under `dir`: `bytes`
 * (rounded up to 1 MiB) written as 1 MiB O_DIRECT writes, 32 in flight
 * through a private io_uring, to a temp file in `dir`, then fdatasync;
 * the time includes the fdatasync.  Falls back to buffered writes if the
 * filesystem refuses O_DIRECT.  Uses 32 MiB of buffers; the temp file is
 * removed.
 * @param dir          directory on the disk to measure
 * @param bytes        bytes to write (e.g. 512 MiB)
 * @param bytes_per_s  result
 * @return 0 or a negative errno (-ENOSPC, -EIO, -ENOENT, -EINVAL if
 *         bytes is 0)
 */
int sl_io_measure_write_bw(const char *dir, size_t bytes, double *bytes_per_s);

/**
 * Measure sequential read bandwidth likewise: write a `bytes` temp file
 * (untimed), then read it back with 1 MiB O_DIRECT reads, 32 in flight
 * (O_DIRECT bypasses the page cache, so this reads the disk).
 * @return 0 or a negative errno
 */
int sl_io_measure_read_bw(const char *dir, size_t bytes, double *bytes_per_s);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
