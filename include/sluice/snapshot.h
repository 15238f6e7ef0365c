/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file snapshot.h
 *
 * Snapshot format: the files of a checkpoint or savepoint, their encoders
 * and loaders, and the checkpoint directory (naming, listing, validation,
 * retention, disposal).  Prefix sl_snap_.  The byte-level specification is
 * docs/snapshot-format.md; each writer repeats its part at the top of its
 * .c file.
 *
 * Layout of a checkpoint root (e.g. state.checkpoints.dir/<job>):
 *
 *     <root>/chk-<n>/_metadata         written last, atomically: the
 *                                      checkpoint is complete iff it exists
 *                                      and verifies
 *     <root>/chk-<n>/<file>            files private to checkpoint n
 *     <root>/shared/<file>             incremental keyed-state files, shared
 *                                      by several checkpoints (referenced,
 *                                      never copied)
 *
 * A savepoint is one self-contained directory with the same `_metadata` and
 * private files; it never references shared/.
 *
 * Data files (keyed state, channel state) are produced as BUFFERS: an
 * encoder packs entries into framed, checksummed blocks and hands each
 * finished buffer, with its file offset, to a caller-supplied sink (for
 * instance the io_uring writer).  Nothing here writes data files itself;
 * only the small `_metadata` file is written synchronously.  Loaders read
 * from memory or from a file descriptor (pread), verify every checksum, and
 * never trust a length they have not bounded by the bytes actually present.
 *
 * Errors: functions return 0 or a negative errno.  Loaders also fill a
 * struct sl_snap_err with a message naming the file and what is wrong, e.g.
 * "chk-7/counts-1-c7.kstate: block 12 checksum mismatch".
 *
 * Thread safety: an encoder or a metadata object belongs to one thread at a
 * time; loaders and directory helpers share no state and may run
 * concurrently on different inputs.
 */
#ifndef SLUICE_SNAPSHOT_H
#define SLUICE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Format version written into every file; loaders refuse others. */
#define SL_SNAP_FORMAT_VERSION 1u
/** Name of the metadata file inside a checkpoint/savepoint directory. */
#define SL_SNAP_METADATA_NAME "_metadata"
/** Name of the shared directory beside the chk-<n> directories. */
#define SL_SNAP_SHARED_DIR "shared"
/** Size of path buffers (a relative path in metadata is shorter). */
#define SL_SNAP_PATH_MAX 256
/** Size of uid and job-name buffers (the strings are 1..255 bytes). */
#define SL_SNAP_NAME_MAX 256
/** Size of the operator-type buffer (the string is 0..63 bytes). */
#define SL_SNAP_TYPE_MAX 64
/** Default block payload size of the encoders. */
#define SL_SNAP_BLOCK_DEFAULT (64u * 1024)
/** Largest block payload an encoder writes or a loader accepts. */
#define SL_SNAP_BLOCK_MAX (64u * 1024 * 1024)
/** Largest `_metadata` file a loader accepts. */
#define SL_SNAP_META_MAX (64u * 1024 * 1024)
/** Largest operator-state blob (stored inline in `_metadata`). */
#define SL_SNAP_BLOB_MAX (1u * 1024 * 1024)
/** Largest key size of a keyed-state file. */
#define SL_SNAP_KEY_MAX 4096u
/** Largest value size of a keyed-state file. */
#define SL_SNAP_VALUE_MAX 65535u

/** Error message of a loader or directory helper. */
struct sl_snap_err {
	char msg[512]; /**< "<file>: <what is wrong>", NUL-terminated */
};

/**
 * Input of a loader: either bytes in memory (data != NULL; an empty input
 * still needs a non-NULL pointer) or an open file descriptor (data NULL).
 * The loader never modifies the input and never seeks the descriptor (it
 * uses pread).
 */
struct sl_snap_src {
	const char *name; /**< name for messages, e.g. "chk-7/x.kstate" */
	const void *data; /**< file contents, or NULL to read from fd */
	size_t len;	  /**< bytes at data */
	int fd;		  /**< file read when data is NULL (size via fstat) */
};

/**
 * Open a file as a loader input (O_RDONLY, O_NOFOLLOW: a symlink is
 * refused with -ELOOP).
 * @param src   filled in; close with sl_snap_src_close()
 * @param path  file to open
 * @param name  name used in messages (NULL: path); must outlive src
 * @param err   message on failure (may be NULL)
 * @return 0, or -errno from open(2) (-ENOENT, -ELOOP, -EACCES, ...)
 */
int sl_snap_src_open(struct sl_snap_src *src, const char *path,
		     const char *name, struct sl_snap_err *err);

/** Close a source opened with sl_snap_src_open() (memory sources: no-op). */
void sl_snap_src_close(struct sl_snap_src *src);

/**
 * Receives one finished buffer of an encoder.
 *
 * Buffers arrive in file order, each with the file offset it belongs at;
 * together they are the whole file.  Ownership of @p buf passes to the
 * sink whatever it returns: it must release it with sl_snap_buf_free()
 * once written (for an asynchronous writer, on completion).
 *
 * Buffers suit O_DIRECT (SL_SNAP_BUF_ALIGN = 4096): each is 4096-aligned
 * in memory and starts at a file offset that is a multiple of 4096; every
 * buffer but the last is a multiple of 4096 long (about 1 MiB, or a block
 * if blocks are larger); the last one is followed in memory by zeros up
 * to the next multiple of 4096, so it can be written padded and the file
 * then trimmed to its size (sl_snap_file_info.size).
 *
 * @param arg     the sink_arg of the encoder's conf
 * @param offset  file offset of the first byte of @p buf
 * @param buf     the bytes (malloc'ed, see above)
 * @param len     number of bytes
 * @return 0, or a negative errno that the encoder latches and returns
 *         from every later call (the file is then unusable)
 */
typedef int (*sl_snap_sink_fn)(void *arg, uint64_t offset, void *buf,
			       size_t len);

/** Alignment of the buffers encoders hand to their sink (see sl_snap_sink_fn). */
#define SL_SNAP_BUF_ALIGN 4096u

/** Release a buffer handed to a sink. NULL is a no-op. */
void sl_snap_buf_free(void *buf);

/** What an encoder produced (all of it went through the sink). */
struct sl_snap_file_info {
	uint64_t size;	    /**< file size in bytes */
	uint64_t xxh3;	    /**< xxh3-64 of the whole file (for metadata) */
	uint64_t blocks;    /**< framed blocks, summary included */
	uint64_t records;   /**< entries (keyed) or batches (channel) */
	uint64_t deletions; /**< deletion records (keyed, incremental) */
};

/* ------------------------------------------------------------------ */
/* Keyed-state files                                                   */
/* ------------------------------------------------------------------ */

/** Kind of a keyed-state file. */
enum sl_snap_kstate_kind {
	SL_SNAP_KSTATE_FULL = 0,	/**< every entry of the key groups */
	SL_SNAP_KSTATE_INCREMENTAL = 1, /**< changes since a base checkpoint */
};

/** Configuration of a keyed-state encoder. */
struct sl_snap_kstate_conf {
	const char *uid;	     /**< operator uid (1..255 bytes) */
	uint32_t subtask;	     /**< subtask index */
	uint64_t checkpoint_id;	     /**< checkpoint that writes the file (>= 1) */
	enum sl_snap_kstate_kind kind; /**< full or incremental */
	uint64_t base_checkpoint_id; /**< incremental: checkpoint it is a delta
				      *   to (>= 1, < checkpoint_id); full: 0 */
	uint32_t max_parallelism;    /**< number of key groups of the job */
	uint32_t kg_first;	     /**< first key group of the subtask */
	uint32_t kg_count;	     /**< key groups owned (>= 1, range inside
				      *   [0, max_parallelism)) */
	uint16_t key_size;	     /**< 1..SL_SNAP_KEY_MAX */
	uint16_t value_size;	     /**< 0..SL_SNAP_VALUE_MAX */
	uint32_t block_size;	     /**< target block payload; 0: default */
	sl_snap_sink_fn sink;	     /**< receives the file's buffers */
	void *sink_arg;		     /**< passed to sink */
};

/** One keyed entry or deletion (value is NULL/ignored for deletions). */
struct sl_snap_kv {
	uint16_t kg;	   /**< key group */
	uint64_t hash;	   /**< 64-bit key hash the state used */
	const void *key;   /**< key_size bytes */
	const void *value; /**< value_size bytes (entries only) */
};

/** Keyed-state encoder (opaque). */
struct sl_snap_kstate_enc;

/**
 * Create a keyed-state encoder.  The file header goes out with the first
 * buffer.
 * @param conf  configuration (copied; uid copied)
 * @return the encoder, or NULL with errno EINVAL (bad conf) or ENOMEM
 */
struct sl_snap_kstate_enc *
sl_snap_kstate_enc_create(const struct sl_snap_kstate_conf *conf);

/**
 * Append a burst of entries, in any key-group order (the stepper's order
 * interleaved with copy-on-update emits).  Full blocks go to the sink.
 * Every error is latched: the encoder refuses all further work and
 * sl_snap_kstate_enc_finish() returns the same error.
 * @param enc  the encoder
 * @param kv   entries (key and value bytes are copied)
 * @param n    number of entries
 * @return 0, -ERANGE (a key group outside the conf range), -E2BIG,
 *         -ENOMEM, -EINVAL (already finished), or the latched error of an
 *         earlier failure (sink error, ...)
 */
int sl_snap_kstate_enc_add(struct sl_snap_kstate_enc *enc,
			   const struct sl_snap_kv *kv, unsigned int n);

/**
 * Record a burst of deletions (incremental files only).  They are kept
 * in memory and written as the deletion section at sl_snap_kstate_enc_finish()
 * time, so that a loader delivers them before any entry.
 * @return 0, -EINVAL (full file), -ERANGE, -ENOMEM, or the latched error
 */
int sl_snap_kstate_enc_delete(struct sl_snap_kstate_enc *enc,
			      const struct sl_snap_kv *kv, unsigned int n);

/**
 * Adapter with the signature of sl_kstate_emit_fn (keyed_state.h): pass
 * it with the encoder as argument to sl_kstate_snapshot_begin().  Errors
 * are latched and returned by sl_snap_kstate_enc_finish().
 */
void sl_snap_kstate_emit(void *enc, uint16_t kg, uint64_t hash,
			 const void *key, const void *value);

struct sl_kstate_snap_entry;

/**
 * Adapter with the signature of sl_kstate_emit_run_fn (keyed_state.h):
 * after sl_kstate_snapshot_begin() with sl_snap_kstate_emit and the
 * encoder, pass it to sl_kstate_snapshot_emit_runs() so that the stepper
 * hands the encoder runs of entries, which it copies into the block in one
 * loop (the same records as one sl_snap_kstate_emit() per entry).  Errors
 * are latched and returned by sl_snap_kstate_enc_finish().
 */
void sl_snap_kstate_emit_run(void *enc, const struct sl_kstate_snap_entry *e,
			     unsigned int n);

/**
 * Adapter with the signature of sl_kstate_deleted_fn: pass it with the
 * encoder to sl_kstate_deleted_since().
 * @return 0, or the negative errno of sl_snap_kstate_enc_delete()
 */
int sl_snap_kstate_deleted(void *enc, uint16_t kg, uint64_t hash,
			   const void *key, uint32_t epoch);

/**
 * @return the latched error of the encoder (0 if none): the first failure
 *         of an add, a delete or the sink
 */
int sl_snap_kstate_enc_error(const struct sl_snap_kstate_enc *enc);

/**
 * Finish the file: seal the last entry block, write the deletion section,
 * the summary (entries and deletions per key group) and the trailer, and
 * hand the rest to the sink.
 * @param enc   the encoder (free it afterwards either way)
 * @param info  if not NULL, receives size, whole-file xxh3 and counts
 * @return 0, or the latched error / -ENOMEM / sink error
 */
int sl_snap_kstate_enc_finish(struct sl_snap_kstate_enc *enc,
			      struct sl_snap_file_info *info);

/** Free an encoder (buffers already handed to the sink are not touched). */
void sl_snap_kstate_enc_free(struct sl_snap_kstate_enc *enc);

/** Header and summary of a keyed-state file. */
struct sl_snap_kstate_info {
	char uid[SL_SNAP_NAME_MAX];	/**< operator uid */
	uint32_t subtask;		/**< subtask index */
	uint64_t checkpoint_id;		/**< checkpoint that wrote it */
	enum sl_snap_kstate_kind kind;	/**< full or incremental */
	uint64_t base_checkpoint_id;	/**< incremental: base; full: 0 */
	uint32_t max_parallelism;	/**< key groups of the job */
	uint32_t kg_first;		/**< first key group */
	uint32_t kg_count;		/**< key groups covered */
	uint16_t key_size;		/**< bytes per key */
	uint16_t value_size;		/**< bytes per value */
	uint64_t entries;		/**< total entries */
	uint64_t deletions;		/**< total deletions */
	uint64_t *kg_entries;	/**< kg_count counters, [kg - kg_first] */
	uint64_t *kg_deletions; /**< kg_count counters, [kg - kg_first] */
};

/**
 * Read the header, trailer and summary of a keyed-state file (not the
 * entries): enough to decide whether a restore needs it.
 * @param src   the file
 * @param info  filled in; release with sl_snap_kstate_info_clear()
 * @param err   message on failure (may be NULL)
 * @return 0, -EBADMSG (corrupt or truncated), -ENOTSUP (other version),
 *         -ENOMEM, -EIO or another -errno of pread/fstat
 */
int sl_snap_kstate_read_info(const struct sl_snap_src *src,
			     struct sl_snap_kstate_info *info,
			     struct sl_snap_err *err);

/** Free the arrays of an info (the struct itself is the caller's). */
void sl_snap_kstate_info_clear(struct sl_snap_kstate_info *info);

/**
 * Receives a burst of decoded entries or deletions.  Pointers are valid
 * only during the call.
 * @return 0 to continue, non-zero to stop (returned by the loader)
 */
typedef int (*sl_snap_kv_fn)(void *arg, const struct sl_snap_kv *kv,
			     unsigned int n);

/** What a keyed-state load delivers, and where. */
struct sl_snap_kstate_visitor {
	uint32_t kg_first;	   /**< filter: first key group wanted */
	uint32_t kg_count;	   /**< filter: key groups wanted (0: all) */
	sl_snap_kv_fn on_deletions; /**< all deletions, before any entry (may
				     *   be NULL) */
	sl_snap_kv_fn on_entries;   /**< entries (may be NULL) */
	void *arg;		   /**< passed to the callbacks */
	/** optional: after each block of entries, the offset below which
	 *  the load reads none of the file's bytes again (so a caller
	 *  holding the file in memory may give those bytes back) */
	void (*on_consumed)(void *arg, uint64_t offset);
};

/**
 * Decode a keyed-state file: verify header, trailer and summary, then
 * deliver the deletions (in bursts, filtered), then the entries (in file
 * order, filtered), verifying every block before delivering from it.  A
 * file whose key groups do not overlap the filter is not read beyond its
 * summary.  If the load fails midway, what was delivered must be dropped.
 * @param src   the file
 * @param v     callbacks and filter (NULL: verify only)
 * @param info  if not NULL, receives header and summary (clear it after)
 * @param err   message on failure (may be NULL)
 * @return 0, a callback's non-zero value, -EBADMSG (corruption, truncation,
 *         an entry outside the file's key-group range, counts disagreeing
 *         with the summary), -ENOTSUP, -ENOMEM, -EIO/-errno of reading
 */
int sl_snap_kstate_load(const struct sl_snap_src *src,
			const struct sl_snap_kstate_visitor *v,
			struct sl_snap_kstate_info *info,
			struct sl_snap_err *err);

/* ------------------------------------------------------------------ */
/* Channel-state files (in-flight batches of unaligned checkpoints)    */
/* ------------------------------------------------------------------ */

/** Direction of a persisted channel, seen from the subtask. */
enum sl_snap_chan_dir {
	SL_SNAP_CHAN_IN = 0,  /**< input channel: batches not yet consumed */
	SL_SNAP_CHAN_OUT = 1, /**< output channel: staged, unsent batches */
};

/**
 * Identity of a channel, independent of lcores: the subtask's input or
 * output index and the operator uid + subtask at the other end.
 */
struct sl_snap_chan_id {
	uint8_t direction;    /**< enum sl_snap_chan_dir */
	uint32_t index;	      /**< input/output channel index of the subtask */
	const char *peer_uid; /**< upstream (IN) / downstream (OUT) uid */
	uint32_t peer_subtask; /**< subtask index at the other end */
};

/** One persisted batch. */
struct sl_snap_chan_batch {
	uint64_t seq;	       /**< data-lane sequence number on its channel */
	int64_t watermark;     /**< watermark stamped on the batch */
	uint16_t kind;	       /**< enum sl_batch_kind: DATA (0) or WATERMARK (1) */
	uint16_t record_size;  /**< bytes per record */
	uint32_t record_count; /**< records */
	const void *records;   /**< record_size * record_count bytes */
};

/** Configuration of a channel-state encoder. */
struct sl_snap_chan_conf {
	const char *uid;		       /**< operator uid of the subtask */
	uint32_t subtask;		       /**< subtask index */
	uint64_t checkpoint_id;		       /**< checkpoint (>= 1) */
	const struct sl_snap_chan_id *channels; /**< channel table (copied) */
	uint32_t n_channels;		       /**< 1..4096 entries */
	uint32_t block_size;		       /**< target payload; 0: default */
	sl_snap_sink_fn sink;		       /**< receives the buffers */
	void *sink_arg;			       /**< passed to sink */
};

/** Channel-state encoder (opaque). */
struct sl_snap_chan_enc;

/**
 * Create a channel-state encoder; the channel table goes into the header.
 * @return the encoder, or NULL with errno EINVAL (bad conf) or ENOMEM
 */
struct sl_snap_chan_enc *
sl_snap_chan_enc_create(const struct sl_snap_chan_conf *conf);

/**
 * Append one batch of a channel.  Batches of one channel must be appended
 * in stream order; channels may interleave.  The records are copied.
 * @param enc      the encoder
 * @param channel  position of the channel in the conf's table
 * @param b        the batch
 * @return 0, -EINVAL (bad channel, kind, or record_size 0 with records),
 *         -E2BIG (batch larger than SL_SNAP_BLOCK_MAX), -ENOMEM, or the
 *         latched error
 */
int sl_snap_chan_enc_add(struct sl_snap_chan_enc *enc, uint32_t channel,
			 const struct sl_snap_chan_batch *b);

/**
 * Finish the file (last block, per-channel summary, trailer).
 * @param info  if not NULL, receives size, xxh3 and counts
 * @return 0 or the latched error / -ENOMEM / sink error
 */
int sl_snap_chan_enc_finish(struct sl_snap_chan_enc *enc,
			    struct sl_snap_file_info *info);

/** Free a channel-state encoder. */
void sl_snap_chan_enc_free(struct sl_snap_chan_enc *enc);

/** Header and summary of a channel-state file. */
struct sl_snap_chan_info {
	char uid[SL_SNAP_NAME_MAX];	  /**< operator uid */
	uint32_t subtask;		  /**< subtask index */
	uint64_t checkpoint_id;		  /**< checkpoint */
	uint32_t n_channels;		  /**< entries of channels[] */
	struct sl_snap_chan_id *channels; /**< table; peer_uid owned here */
	uint64_t *batches;		  /**< per channel: batches */
	uint64_t *records;		  /**< per channel: records */
	uint64_t *bytes;		  /**< per channel: record bytes */
};

/**
 * Receives one persisted batch, in file order (so in stream order per
 * channel).  Pointers are valid only during the call.
 * @return 0 to continue, non-zero to stop (returned by the loader)
 */
typedef int (*sl_snap_chan_fn)(void *arg, uint32_t channel,
			       const struct sl_snap_chan_id *id,
			       const struct sl_snap_chan_batch *b);

/**
 * Decode a channel-state file, verifying every block before delivering
 * the batches in it.
 * @param src   the file
 * @param fn    called per batch (may be NULL: verify only)
 * @param arg   passed to fn
 * @param info  if not NULL, receives header and summary (clear it after)
 * @param err   message on failure (may be NULL)
 * @return 0, fn's non-zero value, -EBADMSG, -ENOTSUP, -ENOMEM, -errno
 */
int sl_snap_chan_load(const struct sl_snap_src *src, sl_snap_chan_fn fn,
		      void *arg, struct sl_snap_chan_info *info,
		      struct sl_snap_err *err);

/** Free what an info holds (the struct itself is the caller's). */
void sl_snap_chan_info_clear(struct sl_snap_chan_info *info);

/* ------------------------------------------------------------------ */
/* _metadata                                                           */
/* ------------------------------------------------------------------ */

/** Checkpoint or savepoint. */
enum sl_snap_kind {
	SL_SNAP_CHECKPOINT = 0, /**< periodic; may reference shared/ */
	SL_SNAP_SAVEPOINT = 1,	/**< user-triggered, self-contained */
};

/** What a referenced file holds. */
enum sl_snap_file_type {
	SL_SNAP_FILE_KEYED = 1,	  /**< keyed-state file */
	SL_SNAP_FILE_CHANNEL = 2, /**< channel-state file */
};

/** One file referenced by the metadata. */
struct sl_snap_file_ref {
	char path[SL_SNAP_PATH_MAX]; /**< "NAME" (in the checkpoint directory)
				      *   or "shared/NAME"; see
				      *   sl_snap_path_check() */
	enum sl_snap_file_type type; /**< content */
	uint64_t checkpoint_id;	     /**< checkpoint that wrote the file */
	uint64_t size;		     /**< bytes */
	uint64_t xxh3;		     /**< xxh3-64 of the whole file */
	uint32_t kg_first;	     /**< keyed: first key group (else 0) */
	uint32_t kg_count;	     /**< keyed: key groups (else 0) */
};

/** Operator (non-keyed) state: one opaque blob of a list entry. */
struct sl_snap_blob {
	uint8_t *data; /**< bytes (owned by the metadata) */
	size_t len;    /**< 0..SL_SNAP_BLOB_MAX */
};

/** What one subtask persisted. */
struct sl_snap_subtask_meta {
	uint32_t n_files;		/**< entries of files[] */
	struct sl_snap_file_ref *files; /**< keyed files in application order
					 *   (full first, then deltas oldest
					 *   first), channel files */
	uint32_t n_blobs;		/**< entries of blobs[] */
	struct sl_snap_blob *blobs;	/**< operator-state list entries */
	bool finished;			/**< the subtask had ended (its input
					 *   was exhausted) before the
					 *   checkpoint reached it: it has no
					 *   state and a restore does not run it */
	uint32_t cap_files_, cap_blobs_; /**< internal */
};

/** One operator of the job. */
struct sl_snap_operator_meta {
	char uid[SL_SNAP_NAME_MAX];	      /**< operator uid */
	char type[SL_SNAP_TYPE_MAX];	      /**< operator type ("" if not
					       *   recorded) */
	uint32_t parallelism;		      /**< subtasks when snapshotted */
	uint32_t max_parallelism;	      /**< key groups */
	struct sl_snap_subtask_meta *subtasks; /**< parallelism entries */
};

/**
 * Statistics.  The byte and file counts are computed from the file
 * references when encoding and decoding; the durations are the caller's
 * (a checkpoint's come from its coordinator, dataplane/checkpoint_control.c).
 */
struct sl_snap_stats {
	uint64_t duration_ns;	       /**< trigger to the last subtask's ack */
	uint64_t alignment_ns;	       /**< longest barrier alignment of a subtask */
	uint64_t sync_ns;	       /**< longest synchronous part of a subtask */
	uint64_t async_ns;	       /**< longest asynchronous part of a subtask */
	uint64_t files;		       /**< referenced files (computed) */
	uint64_t bytes_written;	       /**< of files written by this
					*   checkpoint (computed) */
	uint64_t bytes_referenced;     /**< of all referenced files (computed) */
	uint64_t keyed_bytes;	       /**< keyed-state bytes (computed) */
	uint64_t channel_bytes;	       /**< in-flight bytes (computed) */
};

/** Contents of a `_metadata` file. */
struct sl_snap_metadata {
	uint32_t format_version;	     /**< SL_SNAP_FORMAT_VERSION */
	uint64_t checkpoint_id;		     /**< n of chk-<n> (>= 1) */
	enum sl_snap_kind kind;		     /**< checkpoint / savepoint */
	char job_name[SL_SNAP_NAME_MAX];     /**< job name */
	uint64_t job_id;		     /**< job fingerprint; a restore
					      *   refuses a mismatch */
	int64_t trigger_time_ns;	     /**< CLOCK_REALTIME at trigger */
	uint32_t n_operators;		     /**< entries of operators[] */
	struct sl_snap_operator_meta *operators; /**< operators */
	struct sl_snap_stats stats;	     /**< statistics */
	uint32_t cap_operators_;	     /**< internal */
};

/**
 * Create empty metadata.
 * @param checkpoint_id    >= 1 (and < 2^63)
 * @param kind             checkpoint or savepoint
 * @param job_name         1..255 bytes, valid UTF-8
 * @param job_id           job fingerprint
 * @param trigger_time_ns  trigger time
 * @return the metadata, or NULL with errno EINVAL or ENOMEM
 */
struct sl_snap_metadata *sl_snap_meta_create(uint64_t checkpoint_id,
					     enum sl_snap_kind kind,
					     const char *job_name,
					     uint64_t job_id,
					     int64_t trigger_time_ns);

/** Free metadata and everything it owns. NULL is a no-op. */
void sl_snap_meta_free(struct sl_snap_metadata *m);

/**
 * Add an operator with @p parallelism empty subtasks.
 * @return the operator's index (>= 0), -EINVAL (bad uid or parallelism:
 *         1 <= parallelism <= max_parallelism <= 32768), -EEXIST (uid
 *         already present), -ENOMEM
 */
int sl_snap_meta_add_operator(struct sl_snap_metadata *m, const char *uid,
			      uint32_t parallelism, uint32_t max_parallelism);

/**
 * Record an operator's type (e.g. "keyed-aggregate"), so that a restore
 * can tell a changed operator from a renamed one.
 * @return 0, -EINVAL (bad operator, or type not 1..63 bytes of valid
 *         UTF-8)
 */
int sl_snap_meta_set_type(struct sl_snap_metadata *m, int op,
			  const char *type);

/**
 * Mark a subtask as finished: it had ended before the checkpoint reached
 * it, so it has nothing to restore and a restore ends it at once.
 * @return 0, -EINVAL (bad operator/subtask)
 */
int sl_snap_meta_set_finished(struct sl_snap_metadata *m, int op,
			      uint32_t subtask);

/**
 * Reference a file from a subtask.  The path is checked with
 * sl_snap_path_check() (shared/ only for checkpoints); a private (not
 * shared/) file must have been written by this checkpoint.  A private path
 * may be referenced once; a shared path by several subtasks (e.g. after a
 * rescale), always with the same size and checksum: sl_snap_meta_encode()
 * and sl_snap_meta_decode() check that.
 * @return 0, -EINVAL (bad operator/subtask/path/type/ids/key groups),
 *         -ENOMEM
 */
int sl_snap_meta_add_file(struct sl_snap_metadata *m, int op, uint32_t subtask,
			  const struct sl_snap_file_ref *ref);

/**
 * Carry an incremental chain forward: reference from subtask @p subtask of
 * operator @p op the keyed-state files that the same uid and subtask
 * referenced in @p prev, the previous complete checkpoint, so that a delta
 * based on prev->checkpoint_id can be added after them.  This is the
 * "full every K" policy: nothing is inherited, and the caller writes a full
 * file instead, when there is no previous checkpoint, the operator's
 * parallelism or max parallelism changed (rescaled), its chain is not
 * entirely in shared/, or it already holds @p max_chain files (a full one
 * plus max_chain - 1 deltas).
 * @param m          the new checkpoint's metadata
 * @param op         operator index in @p m
 * @param subtask    subtask index
 * @param prev       previous complete checkpoint's metadata, or NULL
 * @param max_chain  K: longest chain (>= 1; 1 means always full)
 * @return number of files inherited (> 0: write a delta), 0 (write a full
 *         file), -EINVAL (bad op/subtask, or @p m is a savepoint), -ENOMEM
 */
int sl_snap_meta_inherit_keyed(struct sl_snap_metadata *m, int op,
			       uint32_t subtask,
			       const struct sl_snap_metadata *prev,
			       uint32_t max_chain);

/**
 * Fill a file reference from an encoder's result.
 * @return 0, -ENAMETOOLONG
 */
int sl_snap_file_ref_set(struct sl_snap_file_ref *ref, const char *path,
			 enum sl_snap_file_type type, uint64_t checkpoint_id,
			 const struct sl_snap_file_info *info,
			 uint32_t kg_first, uint32_t kg_count);

/**
 * Append an operator-state blob to a subtask's list (copied).
 * @return 0, -EINVAL (bad operator/subtask), -E2BIG (> SL_SNAP_BLOB_MAX),
 *         -ENOMEM
 */
int sl_snap_meta_add_blob(struct sl_snap_metadata *m, int op, uint32_t subtask,
			  const void *data, size_t len);

/**
 * Find an operator by uid.
 * @return the operator, or NULL
 */
const struct sl_snap_operator_meta *
sl_snap_meta_find(const struct sl_snap_metadata *m, const char *uid);

/**
 * Encode metadata into the bytes of a `_metadata` file (binary header,
 * JSON body, xxh3 trailer).  Computes the statistics' counts.
 * @param m    the metadata
 * @param buf  receives a malloc'ed buffer (free() it)
 * @param len  receives its length
 * @return 0, -EINVAL (a string is not valid UTF-8, a private path is
 *         referenced twice, or a shared one with different size/checksum),
 *         -EFBIG (more than SL_SNAP_META_MAX bytes), -ENOMEM
 */
int sl_snap_meta_encode(const struct sl_snap_metadata *m, void **buf,
			size_t *len);

/**
 * Decode and validate the bytes of a `_metadata` file: framing, checksums,
 * JSON structure, ranges, and every path (sl_snap_path_check()).
 * @param buf   bytes
 * @param len   length
 * @param name  name for messages (NULL: "_metadata")
 * @param out   receives the metadata (sl_snap_meta_free() it)
 * @param err   message on failure (may be NULL)
 * @return 0, -EBADMSG (corrupt, truncated, malformed), -ENOTSUP (other
 *         version), -EINVAL (a path escapes or a value is out of range),
 *         -ENOMEM
 */
int sl_snap_meta_decode(const void *buf, size_t len, const char *name,
			struct sl_snap_metadata **out, struct sl_snap_err *err);

/**
 * Write `<dir>/_metadata` durably and atomically: temp file
 * `<dir>/._metadata.tmp` -> write -> fsync -> close -> rename -> fsync dir
 * (the temp is unlinked on failure).  For a checkpoint referencing shared/
 * files, `<dir>/../shared` is fsync'ed first so their names are durable.
 * The data files must already be durable.
 * @param dir  the checkpoint or savepoint directory (exists)
 * @param m    the metadata
 * @param err  message on failure (may be NULL)
 * @return 0, -EEXIST (dir already has a _metadata: a complete checkpoint
 *         is never overwritten), or -errno (-ENOSPC, -EIO, ...)
 */
int sl_snap_meta_write(const char *dir, const struct sl_snap_metadata *m,
		       struct sl_snap_err *err);

/**
 * Read and decode `<dir>/_metadata` (O_NOFOLLOW, at most SL_SNAP_META_MAX
 * bytes).  Messages name "<basename of dir>/_metadata".
 * @return 0, -ENOENT (no metadata: incomplete), -ELOOP, -EFBIG, the
 *         errors of sl_snap_meta_decode(), or -errno of reading
 */
int sl_snap_meta_load(const char *dir, struct sl_snap_metadata **out,
		      struct sl_snap_err *err);

/**
 * Check a relative path of a metadata file reference: "NAME" or, if
 * @p allow_shared, "shared/NAME", where NAME is 1..200 characters of
 * [A-Za-z0-9._-], does not start with '.' (so no "..", no hidden or temp
 * file) and is not "_metadata".  Absolute paths, "..", empty components
 * and any other separator are refused.
 * @return 0 or -EINVAL
 */
int sl_snap_path_check(const char *path, bool allow_shared);

/* ------------------------------------------------------------------ */
/* Checkpoint directory                                                */
/* ------------------------------------------------------------------ */

/**
 * Conventional file name of a data file:
 * "<uid>-<subtask>-c<checkpoint_id>.kstate" / ".chstate", with characters
 * outside [A-Za-z0-9_-] of the uid replaced by '_' (then an 8-hex-digit
 * hash of the uid is appended so that names stay unique).  The checkpoint
 * id in the name lets retention collect orphaned shared files.
 * @return 0, -EINVAL (empty uid, bad type), -ENAMETOOLONG
 */
int sl_snap_file_name(char *buf, size_t len, const char *uid,
		      uint32_t subtask, uint64_t checkpoint_id,
		      enum sl_snap_file_type type);

/**
 * Checkpoint id embedded in a name made by sl_snap_file_name().
 * @return 0, or -EINVAL if the name does not follow the convention
 */
int sl_snap_file_name_checkpoint(const char *name, uint64_t *checkpoint_id);

/**
 * Path of a checkpoint directory: "<root>/chk-<id>".
 * @return 0, -EINVAL (id 0), -ENAMETOOLONG
 */
int sl_snap_chk_path(char *buf, size_t len, const char *root, uint64_t id);

/**
 * Parse a directory name "chk-<id>" (decimal, no sign, no leading zero,
 * id >= 1).
 * @return 0 or -EINVAL
 */
int sl_snap_chk_parse(const char *name, uint64_t *id);

/**
 * Create (durably) `<root>/chk-<id>` and `<root>/shared`.
 * @return 0, -EEXIST (the checkpoint directory exists), or -errno
 */
int sl_snap_chk_create(const char *root, uint64_t id);

/**
 * List the complete checkpoints of a root, newest first: the chk-<n>
 * directories whose `_metadata` loads, verifies and carries id n.  Their
 * data files are not checked (see sl_snap_chk_validate()).
 * @param root  checkpoint root (a missing root lists nothing)
 * @param ids   receives a malloc'ed array (free() it; NULL when *n is 0)
 * @param n     receives the count
 * @param err   message on failure (may be NULL)
 * @return 0, -ENOMEM, or -errno of opening/reading root
 */
int sl_snap_chk_list(const char *root, uint64_t **ids, size_t *n,
		     struct sl_snap_err *err);

/**
 * Validate a checkpoint or savepoint directory fully: its `_metadata`,
 * and every referenced file: the path stays inside the directory (or the
 * sibling shared/ directory), neither the file nor the directory holding
 * it is a symlink, and the size and whole-file xxh3 match.
 * @param dir   the directory
 * @param meta  if not NULL, receives the metadata on success
 * @param err   message naming the offending file
 * @return 0, -ENOENT (metadata or a file missing), -ELOOP (symlink),
 *         -EBADMSG (size or checksum mismatch, corrupt metadata),
 *         -EINVAL, -ENOTSUP, -ENOMEM, -errno
 */
int sl_snap_dir_validate(const char *dir, struct sl_snap_metadata **meta,
			 struct sl_snap_err *err);

/**
 * sl_snap_dir_validate() of `<root>/chk-<id>`, also checking that the
 * metadata's checkpoint id is @p id and that it is a checkpoint.
 */
int sl_snap_chk_validate(const char *root, uint64_t id,
			 struct sl_snap_metadata **meta,
			 struct sl_snap_err *err);

/**
 * Newest checkpoint that validates fully (sl_snap_chk_validate()),
 * skipping broken ones.  Every newer chk-<n> it did not use is listed in
 * err->msg with its first problem, also on success, e.g. "chk-9 skipped:
 * chk-9/_metadata: missing (checkpoint incomplete); chk-8 skipped:
 * shared/op-0-c8.kstate: checksum mismatch (...)" (cut at the size of the
 * message).  Nothing under @p root is modified.
 * @param root  checkpoint root
 * @param id    receives the id
 * @param meta  if not NULL, receives its metadata
 * @param err   messages (may be NULL)
 * @return 0, -ENOENT (none valid), -ENOMEM, -errno
 */
int sl_snap_chk_latest(const char *root, uint64_t *id,
		       struct sl_snap_metadata **meta, struct sl_snap_err *err);

/**
 * Dispose of `<root>/chk-<id>`: unlink `_metadata` first (so a crash
 * midway leaves an incomplete checkpoint, never a complete one with holes)
 * and fsync, then the other files, then the directory.  Shared files are
 * left to sl_snap_chk_retain().
 * @return 0, -ENOENT, -ENOTEMPTY (it held a subdirectory, left in place),
 *         or -errno
 */
int sl_snap_chk_dispose(const char *root, uint64_t id);

/**
 * Dispose of a savepoint directory: its `_metadata` first, then the files
 * the metadata references, then the directory if it is empty (anything
 * else in it is left alone).
 * @return 0, -ENOENT, -EBADMSG/-EINVAL (metadata unreadable: nothing is
 *         deleted), -ENOTEMPTY (foreign files remain), -errno
 */
int sl_snap_savepoint_dispose(const char *dir, struct sl_snap_err *err);

/** Retention policy. */
struct sl_snap_retain_conf {
	uint32_t keep;	     /**< complete checkpoints to keep (>= 1) */
	bool all_incomplete; /**< also remove incomplete checkpoints newer than
			      *   the newest complete one and unreferenced
			      *   shared files of any age (only when no
			      *   checkpoint is in progress, e.g. at start) */
};

/** What retention did. */
struct sl_snap_retain_result {
	uint32_t kept;		     /**< complete checkpoints kept */
	uint32_t removed_complete;   /**< complete checkpoints removed */
	uint32_t removed_incomplete; /**< incomplete checkpoints removed */
	uint32_t removed_shared;     /**< shared files removed */
};

/**
 * Apply retention to a root: keep the newest @p keep complete checkpoints;
 * remove older complete ones, incomplete ones older than the newest
 * complete one (subsumed or aborted), and shared files that no kept
 * checkpoint references and that were either referenced by a removed
 * checkpoint or written (per their name) by a checkpoint no newer than the
 * newest complete one.  Files referenced by a kept checkpoint are never
 * removed.  A checkpoint whose metadata cannot be read for a reason other
 * than absence or corruption (EIO, EACCES, EMFILE, ...) stops retention
 * with that error, so a transient error never deletes a good checkpoint.
 * @return 0, -EINVAL (keep 0), -errno
 */
int sl_snap_chk_retain(const char *root, const struct sl_snap_retain_conf *conf,
		       struct sl_snap_retain_result *res,
		       struct sl_snap_err *err);

/* ------------------------------------------------------------------ */
/* Fuzzing entry points (libFuzzer's LLVMFuzzerTestOneInput shape)     */
/* ------------------------------------------------------------------ */

/**
 * Decode arbitrary bytes as a `_metadata` file; when that succeeds,
 * re-encode and decode again and trap (__builtin_trap) if the round trip
 * fails, since that is a loader/encoder disagreement.  A fuzz target is
 * `int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
 * { return sl_snap_fuzz_metadata(d, n); }`.
 * @return 0
 */
int sl_snap_fuzz_metadata(const uint8_t *data, size_t len);

/**
 * Decode arbitrary bytes as a keyed-state file, from memory and (through
 * a memfd) from a file descriptor, with and without a key-group filter.
 * @return 0
 */
int sl_snap_fuzz_kstate(const uint8_t *data, size_t len);

/**
 * Decode arbitrary bytes as a channel-state file, from memory and from a
 * file descriptor.
 * @return 0
 */
int sl_snap_fuzz_chan(const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_SNAPSHOT_H */
