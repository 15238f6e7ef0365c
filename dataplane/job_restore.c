/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Restoring a job, job side (main lcore): choosing the checkpoint, checking
 * that it belongs to this job, and preparing a run that starts from it
 * (docs/restore.md).
 *
 * Choosing.  "latest" walks state.checkpoints.dir newest first: an
 * incomplete checkpoint (no _metadata: the job stopped while writing it)
 * and a damaged one (a file missing, truncated, or failing its checksum)
 * are skipped with a warning naming the file; a checkpoint of another job
 * or of another format version stops the search with an error, since
 * falling back past it would silently restart from older state.  An
 * explicit directory (chk-<n> or a savepoint) must validate as a whole.
 * Nothing in the checkpoint directory is created, modified or deleted.
 *
 * Checking.  The job name must match; every operator of the checkpoint
 * that holds state must exist in the job (by uid) with the same type; an
 * operator with keyed state keeps its max parallelism (key groups); a
 * changed parallelism is allowed unless the checkpoint carries in-flight
 * data (an unaligned checkpoint) or some but not all of the operator's
 * subtasks had finished.  Operators that are new in the job start empty.
 *
 * Preparing a run (after the channels exist, before any lcore starts):
 * every subtask's persisted input channel state is put into its input
 * channels, then the output channel state of the senders behind it (a
 * sender's staged output is newer than what the receiver had in flight on
 * the same channel), so both are read before any new data; subtasks that
 * had finished end at once.  The lcores then open each subtask and call
 * its restore() (dataplane/task_restore.c); checkpoints are not triggered
 * before every subtask restored, and their ids continue after the
 * restored one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "job_pvt.h"
#include <xxhash.h>

#include "sluice/io.h"
#include "sluice/io_file.h"
#include "sluice/keygroup.h"
#include "mono_clock_pvt.h"

#define PROGRESS_PERIOD_NS 1000000000ULL
/* Reads in flight while a checkpoint is read: they land in the files'
 * own buffers, so more of them cost no memory, and this disk reads
 * faster with more bytes in flight (docs/io.md) */
#define RESTORE_READ_DEPTH 64u

static int fail(struct sl_job *job, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct sl_job *job, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(job->err, sizeof(job->err), fmt, ap);
	va_end(ap);
	return rc;
}

static void release_files(struct sl_job_restore *r);

void __sl_restore_free(struct sl_job *job)
{
	if (job->restore == NULL)
		return;
	release_files(job->restore);
	sl_snap_meta_free(job->restore->meta);
	free(job->restore->blob_base);
	free(job->restore->blob_taken);
	free(job->restore);
	job->restore = NULL;
}

/* ------------------------------------------------------------- reading */

/*
 * Every file a checkpoint references is read once, here, while it is
 * chosen: all files together through the parallel io_uring reader
 * (sl_io_read_files, O_DIRECT where the filesystem allows), each checked
 * in memory against the metadata's size and whole-file xxh3 as soon as it
 * is read, while the reads of the others go on.  A damaged
 * checkpoint is thus found before it is used, and the subtasks load their
 * state from memory (__sl_restore_src_open) instead of reading it again.
 */

/* A message into buf (vsnprintf: cut at its size); returns rc. */
static int msgf(char *buf, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int msgf(char *buf, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return rc;
}

static void release_files(struct sl_job_restore *r)
{
	for (uint32_t i = 0; i < r->n_files; i++)
		free(r->files[i].data);
	free(r->files);
	r->files = NULL;
	r->n_files = 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct restore_file *)a)->ref->path,
		      ((const struct restore_file *)b)->ref->path);
}

static bool is_shared(const struct sl_snap_file_ref *ref)
{
	return strncmp(ref->path, SL_SNAP_SHARED_DIR "/", sizeof(SL_SNAP_SHARED_DIR)) == 0;
}

struct read_progress {
	const char *job;
	const char *base;
	uint64_t start_ns;
	uint64_t next_ns;
};

static void on_read_progress(void *arg, uint64_t done, uint64_t total)
{
	struct read_progress *p = arg;
	uint64_t now = mono_ns();

	if (done == total || now < p->next_ns)
		return;
	p->next_ns = now + PROGRESS_PERIOD_NS;
	fprintf(stderr, "[%s] reading %s: %.1f / %.1f MiB (%.0f%%), %.1f s\n", p->job,
		p->base, done / 1048576.0, total / 1048576.0,
		100.0 * (double)done / (double)total, (now - p->start_ns) / 1e9);
}

/* The unique files of the metadata, sorted by path (a shared file may be
 * referenced by several subtasks, always with the same size and xxh3). */
static int collect_files(const struct sl_snap_metadata *m, struct restore_file **out,
			 uint32_t *n_out)
{
	struct restore_file *v = NULL;
	uint32_t n = 0, u = 0;

	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t s = 0; s < m->operators[i].parallelism; s++)
			n += m->operators[i].subtasks[s].n_files;
	v = calloc(n + 1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	n = 0;
	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t s = 0; s < m->operators[i].parallelism; s++)
			for (uint32_t f = 0; f < m->operators[i].subtasks[s].n_files; f++)
				v[n++].ref = &m->operators[i].subtasks[s].files[f];
	qsort(v, n, sizeof(*v), cmp_file);
	for (uint32_t i = 0; i < n; i++)
		if (u == 0 || strcmp(v[u - 1].ref->path, v[i].ref->path) != 0)
			v[u++] = v[i];
	*out = v;
	*n_out = u;
	return 0;
}

/* Checking each file as soon as it is read, while the others are still
 * being read (sl_io_read_conf.on_file). */
struct file_check {
	const struct sl_io_read_file *rf;
	const struct restore_file *files;
	const char *base;
	char *msg;
	size_t msg_len;
	bool failed; /* msg holds the first check failure */
};

static int check_file(void *arg, unsigned i)
{
	struct file_check *c = arg;
	const struct sl_snap_file_ref *ref = c->files[i].ref;
	const struct sl_io_read_file *rf = &c->rf[i];
	const char *sep = is_shared(ref) ? "" : "/";
	const char *b = is_shared(ref) ? "" : c->base;
	uint64_t hash;

	if (rf->len != ref->size) {
		if (!c->failed)
			msgf(c->msg, c->msg_len, 0, "%s%s%s: size %" PRIu64 ", metadata says %" PRIu64 " (truncated or overwritten)",
			     b, sep, ref->path, rf->len, ref->size);
		c->failed = true;
		return -EBADMSG;
	}
	hash = XXH3_64bits(rf->data, rf->len);
	if (hash != ref->xxh3) {
		if (!c->failed)
			msgf(c->msg, c->msg_len, 0, "%s%s%s: checksum mismatch (xxh3 %016" PRIx64 ", metadata says %016" PRIx64 ")",
			     b, sep, ref->path, hash, ref->xxh3);
		c->failed = true;
		return -EBADMSG;
	}
	return 0;
}

/*
 * Read and check every file of the checkpoint in `dir` (metadata in r->meta).
 * On failure `msg` names the file: "chk-7/x.kstate: checksum mismatch ...".
 * @return 0, -ENOMEM, or another negative errno (the checkpoint is damaged)
 */
static int read_checkpoint(struct sl_job *job, const char *dir, struct sl_job_restore *r,
			   char *msg, size_t msg_len)
{
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	struct read_progress prog = { job->name, base, mono_ns(), 0 };
	struct file_check check = { .base = base, .msg = msg, .msg_len = msg_len };
	struct sl_io_read_conf conf = {
		.dir = dir,
		.queue_depth = RESTORE_READ_DEPTH,
		.nofollow = true,
		.progress = on_read_progress,
		.progress_arg = &prog,
		.on_file = check_file,
		.on_file_arg = &check,
	};
	struct sl_io_read_stats stats;
	struct sl_io_read_file *rf = NULL;
	char (*paths)[SL_SNAP_PATH_MAX + 4] = NULL;
	uint64_t total = 0;
	int rc;

	prog.next_ns = prog.start_ns + PROGRESS_PERIOD_NS;
	if ((rc = collect_files(r->meta, &r->files, &r->n_files)) < 0)
		return rc;
	rf = calloc(r->n_files + 1, sizeof(*rf));
	paths = calloc(r->n_files + 1, sizeof(*paths));
	if (rf == NULL || paths == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < r->n_files; i++) {
		const struct sl_snap_file_ref *ref = r->files[i].ref;

		/* the metadata loader checked the paths already; "shared/NAME"
		 * lies beside the checkpoint directory */
		if (sl_snap_path_check(ref->path, r->meta->kind == SL_SNAP_CHECKPOINT) < 0) {
			msgf(msg, msg_len, 0, "%s/_metadata: path \"%s\" escapes the directory",
				 base, ref->path);
			rc = -EINVAL;
			goto out;
		}
		snprintf(paths[i], sizeof(paths[i]), "%s%s", is_shared(ref) ? "../" : "",
			 ref->path);
		rf[i].path = paths[i];
		total += ref->size;
	}
	/* O_NOFOLLOW guards the file itself; a symlinked shared/ could point
	 * anywhere, so refuse it too */
	for (uint32_t i = 0; i < r->n_files; i++) {
		char shared[4200];
		struct stat st;
		int n;

		if (!is_shared(r->files[i].ref))
			continue;
		n = snprintf(shared, sizeof(shared), "%s/../" SL_SNAP_SHARED_DIR, dir);
		if (n < 0 || (size_t)n >= sizeof(shared) || lstat(shared, &st) < 0 ||
		    !S_ISDIR(st.st_mode)) {
			msgf(msg, msg_len, 0, SL_SNAP_SHARED_DIR ": %s",
				 n > 0 && lstat(shared, &st) == 0 ?
				 "not a directory (symlink?)" : "missing");
			rc = -ELOOP;
			goto out;
		}
		break;
	}
	check.rf = rf;
	check.files = r->files;
	rc = sl_io_read_files(rf, r->n_files, &conf, &stats);
	for (uint32_t i = 0; i < r->n_files; i++) {
		r->files[i].data = rf[i].data;
		r->files[i].len = rf[i].len;
	}
	if (rc < 0 && check.failed)
		goto out; /* msg names the file and what is wrong with it */
	if (rc < 0) {
		for (uint32_t i = 0; i < r->n_files; i++) {
			const char *ref_path = r->files[i].ref->path;
			char name[SL_SNAP_PATH_MAX + 300];
			struct sl_io_read_file d;

			if (rf[i].error_op == SL_IO_READ_OK ||
			    rf[i].error_op == SL_IO_READ_CANCELED)
				continue;
			snprintf(name, sizeof(name), "%s%s%s", is_shared(r->files[i].ref) ? "" : base,
				 is_shared(r->files[i].ref) ? "" : "/", ref_path);
			if (rf[i].error == -ENOENT)
				msgf(msg, msg_len, 0, "%s: missing", name);
			else if (rf[i].error == -ELOOP)
				msgf(msg, msg_len, 0, "%s: is a symlink (refused)", name);
			else {
				d = rf[i];
				d.path = name;
				sl_io_read_describe(&d, msg, msg_len);
			}
			break;
		}
		goto out;
	}
	if (total >= (64u << 20))
		fprintf(stderr, "[%s] read %s: %.1f MiB in %u files in %.2f s (%.0f MiB/s%s), checked\n",
			job->name, base, total / 1048576.0, r->n_files,
			(mono_ns() - prog.start_ns) / 1e9,
			stats.elapsed_ns ? (double)stats.bytes / 1048576.0 /
						   ((double)stats.elapsed_ns / 1e9) : 0.0,
			stats.direct_files == stats.files ? ", O_DIRECT" : "");
	rc = 0;
out:
	free(rf);
	free(paths);
	if (rc < 0)
		release_files(r);
	return rc;
}

/* The metadata of `dir`, then all of its files, read and checked.  With
 * id != 0, dir must be chk-<id> of a root and hold that checkpoint. */
static int load_checkpoint(struct sl_job *job, const char *dir, uint64_t id,
			   struct sl_job_restore *r, struct sl_snap_err *err)
{
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	struct stat st;
	int rc;

	if (id != 0) {
		if (lstat(dir, &st) < 0)
			return msgf(err->msg, sizeof(err->msg), -errno, "%s: %s", base, strerror(errno));
		if (S_ISLNK(st.st_mode))
			return msgf(err->msg, sizeof(err->msg), -ELOOP, "%s: is a symlink (refused)", base);
	}
	if ((rc = sl_snap_meta_load(dir, &r->meta, err)) < 0)
		return rc;
	if (id != 0 && (r->meta->checkpoint_id != id || r->meta->kind != SL_SNAP_CHECKPOINT)) {
		msgf(err->msg, sizeof(err->msg), 0, "%s: metadata describes %s %" PRIu64, base,
			 r->meta->kind == SL_SNAP_CHECKPOINT ? "checkpoint" : "savepoint",
			 r->meta->checkpoint_id);
		rc = -EBADMSG;
	} else
		rc = read_checkpoint(job, dir, r, err->msg, sizeof(err->msg));
	if (rc < 0) {
		sl_snap_meta_free(r->meta);
		r->meta = NULL;
	}
	return rc;
}

/* ------------------------------------------------------------ choosing */

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_metadata(const char *dir)
{
	char path[4200];
	struct stat st;
	int n = snprintf(path, sizeof(path), "%s/" SL_SNAP_METADATA_NAME, dir);

	return n > 0 && (size_t)n < sizeof(path) && lstat(path, &st) == 0;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Ids of every chk-<n> directory of root, newest first. */
static int list_chk_dirs(const char *root, uint64_t **ids, size_t *n)
{
	DIR *d = opendir(root);
	struct dirent *e;
	size_t cap = 0;
	uint64_t id;

	*ids = NULL;
	*n = 0;
	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (sl_snap_chk_parse(e->d_name, &id) < 0)
			continue;
		if (*n == cap) {
			uint64_t *v = realloc(*ids, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (v == NULL) {
				closedir(d);
				return -ENOMEM;
			}
			*ids = v;
		}
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	if (*n > 1)
		qsort(*ids, *n, sizeof(**ids), cmp_desc);
	return 0;
}

static int version_error(struct sl_job *job, const char *path,
			 const struct sl_snap_err *err)
{
	return fail(job, -ENOTSUP,
		    "cannot restore from %s: %s: it was written by another version of sluice; restore it with the sluice that wrote it, or start without --restore",
		    path, err->msg);
}

static int other_job_error(struct sl_job *job, const char *path,
			   const struct sl_snap_metadata *m)
{
	return fail(job, -EINVAL,
		    "cannot restore from %s: it is a checkpoint of job '%s', not of job '%s'; restore it with job '%s''s file, or give a checkpoint of job '%s'",
		    path, m->job_name, job->name, m->job_name, job->name);
}

static int choose_latest(struct sl_job *job, struct sl_job_restore *r)
{
	const char *root = job->cfg.checkpoint.dir;
	unsigned skipped = 0;
	uint64_t *ids;
	size_t n;
	int rc;

	if (root[0] == '\0')
		return fail(job, -EINVAL,
			    "--restore latest: the job has no state.checkpoints.dir to look in; set it in the job file's config, or give a checkpoint directory (e.g. --restore /path/chk-7)");
	if (!is_dir(root))
		return fail(job, -ENOENT,
			    "--restore latest: the checkpoint directory %s %s: there is nothing to restore; start without --restore, or fix state.checkpoints.dir",
			    root, access(root, F_OK) == 0 ? "is not a directory" : "does not exist");
	rc = list_chk_dirs(root, &ids, &n);
	if (rc < 0)
		return fail(job, rc, "--restore latest: cannot read %s: %s", root,
			    strerror(-rc));
	if (n == 0) {
		free(ids);
		return fail(job, -ENOENT,
			    "--restore latest: %s holds no checkpoint (no chk-<n> directory); start without --restore, or point state.checkpoints.dir at the job's checkpoints",
			    root);
	}
	rc = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		struct sl_snap_err err = { "" };
		char dir[sizeof(r->dir)];
		int v;

		if (sl_snap_chk_path(dir, sizeof(dir), root, ids[i]) < 0)
			continue;
		if (!has_metadata(dir)) {
			fprintf(stderr, "sluice: warning: skipping %s: incomplete (no %s: the job stopped while taking it)\n",
				dir, SL_SNAP_METADATA_NAME);
			skipped++;
			continue;
		}
		v = load_checkpoint(job, dir, ids[i], r, &err);
		if (v == -ENOTSUP) {
			rc = version_error(job, dir, &err);
			break;
		}
		if (v == -ENOMEM) {
			rc = fail(job, v, "--restore latest: out of memory");
			break;
		}
		if (v < 0) {
			fprintf(stderr, "sluice: warning: skipping %s: %s\n", dir, err.msg);
			skipped++;
			continue;
		}
		if (strcmp(r->meta->job_name, job->name) != 0) {
			rc = other_job_error(job, dir, r->meta);
			break;
		}
		strcpy(r->dir, dir);
		r->id = ids[i];
		rc = 0;
		break;
	}
	free(ids);
	if (rc == -ENOENT)
		fail(job, rc,
		     "--restore latest: no complete and intact checkpoint in %s (%u skipped, see the warnings); start without --restore, or give an older checkpoint or a savepoint directory",
		     root, skipped);
	return rc;
}

static int choose_dir(struct sl_job *job, const char *path,
		      struct sl_job_restore *r)
{
	struct sl_snap_err err = { "" };
	uint64_t *ids;
	size_t n;
	int rc;

	if (strlen(path) >= sizeof(r->dir))
		return fail(job, -ENAMETOOLONG, "--restore: path too long");
	if (access(path, F_OK) != 0)
		return fail(job, -ENOENT,
			    "--restore %s: no such directory; give a checkpoint directory (chk-<n>), a savepoint directory, or 'latest'",
			    path);
	if (!is_dir(path))
		return fail(job, -ENOTDIR,
			    "--restore %s: not a directory; give a checkpoint directory (chk-<n>), a savepoint directory, or 'latest'",
			    path);
	if (!has_metadata(path)) {
		bool root = list_chk_dirs(path, &ids, &n) == 0 && n > 0;

		free(ids);
		if (root)
			return fail(job, -EINVAL,
				    "--restore %s: this is a checkpoint root, not a checkpoint; use --restore latest with state.checkpoints.dir: %s, or give one of its chk-<n> directories",
				    path, path);
		return fail(job, -EINVAL,
			    "--restore %s: not a checkpoint or savepoint (it has no %s file: an incomplete checkpoint or another directory); give a complete chk-<n> or savepoint directory, or 'latest'",
			    path, SL_SNAP_METADATA_NAME);
	}
	rc = load_checkpoint(job, path, 0, r, &err);
	if (rc == -ENOTSUP)
		return version_error(job, path, &err);
	if (rc < 0)
		return fail(job, rc,
			    "cannot restore from %s: %s; the checkpoint is damaged: give an older one (--restore latest skips damaged checkpoints)",
			    path, err.msg);
	if (strcmp(r->meta->job_name, job->name) != 0)
		return other_job_error(job, path, r->meta);
	snprintf(r->dir, sizeof(r->dir), "%s", path);
	r->id = r->meta->checkpoint_id;
	return 0;
}

/* ------------------------------------------------------------ checking */

static bool subtask_has_state(const struct sl_snap_subtask_meta *st)
{
	return st->n_files > 0 || st->n_blobs > 0;
}

static bool op_has_state(const struct sl_snap_operator_meta *op)
{
	for (uint32_t s = 0; s < op->parallelism; s++)
		if (subtask_has_state(&op->subtasks[s]))
			return true;
	return false;
}

static bool op_has_files(const struct sl_snap_operator_meta *op,
			 enum sl_snap_file_type type)
{
	for (uint32_t s = 0; s < op->parallelism; s++)
		for (uint32_t f = 0; f < op->subtasks[s].n_files; f++)
			if (op->subtasks[s].files[f].type == type)
				return true;
	return false;
}

static uint32_t op_finished(const struct sl_snap_operator_meta *op)
{
	uint32_t n = 0;

	for (uint32_t s = 0; s < op->parallelism; s++)
		n += op->subtasks[s].finished;
	return n;
}

/* Does the checkpoint fit the job?  Pure: reads no file. */
static int check_job(struct sl_job *job, const struct sl_job_restore *r)
{
	const struct sl_snap_metadata *m = r->meta;
	const struct sl_snap_operator_meta *inflight = NULL, *rescaled = NULL;

	if (strcmp(m->job_name, job->name) != 0)
		return other_job_error(job, r->dir, m);
	for (uint32_t i = 0; i < m->n_operators; i++) {
		const struct sl_snap_operator_meta *op = &m->operators[i];
		int node = sl_job_find(job, op->uid);
		uint32_t fin = op_finished(op);

		if (node < 0) {
			if (!op_has_state(op))
				continue; /* a stateless operator was removed */
			return fail(job, -EINVAL,
				    "cannot restore from %s: it holds state of operator '%s', which job '%s' does not have; give the operator its old uid again (the uid is what state is matched by), or start without --restore",
				    r->dir, op->uid, job->name);
		}
		const struct job_node *n = &job->nodes[node];
		if (op->type[0] != '\0' && strcmp(op->type, n->ops->type) != 0)
			return fail(job, -EINVAL,
				    "cannot restore from %s: operator '%s' is a %s there but a %s in the job; state cannot move to another operator type: give the new operator a new uid",
				    r->dir, op->uid, op->type, n->ops->type);
		if (op->max_parallelism != job->cfg.max_parallelism &&
		    op_has_files(op, SL_SNAP_FILE_KEYED))
			return fail(job, -EINVAL,
				    "cannot restore from %s: operator '%s' has keyed state in %u key groups, but the job has pipeline.max-parallelism %u; key groups cannot be remapped: set pipeline.max-parallelism: %u",
				    r->dir, op->uid, op->max_parallelism,
				    job->cfg.max_parallelism, op->max_parallelism);
		if (op_has_files(op, SL_SNAP_FILE_CHANNEL) && inflight == NULL)
			inflight = op;
		if (op->parallelism == n->parallelism)
			continue;
		if (rescaled == NULL)
			rescaled = op;
		if (fin > 0 && fin < op->parallelism)
			return fail(job, -EINVAL,
				    "cannot restore from %s: %u of the %u subtasks of operator '%s' had finished, and the job now runs it with parallelism %u; restore with parallelism %u",
				    r->dir, fin, op->parallelism, op->uid,
				    n->parallelism, op->parallelism);
	}
	if (inflight != NULL && rescaled != NULL) {
		int node = sl_job_find(job, rescaled->uid);
		return fail(job, -EINVAL,
			    "cannot restore from %s: it carries in-flight data (an unaligned checkpoint; operator '%s' has channel state), and operator '%s' changes parallelism %u -> %u; in-flight data cannot be redistributed: restore with parallelism %u, or from an aligned checkpoint or a savepoint",
			    r->dir, inflight->uid, rescaled->uid, rescaled->parallelism,
			    job->nodes[node].parallelism, rescaled->parallelism);
	}
	return 0;
}

int sl_job_restore_from(struct sl_job *job, const char *what)
{
	struct sl_job_restore *r;
	int rc;

	__sl_restore_free(job);
	job->err[0] = '\0';
	if (what == NULL)
		return 0;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return fail(job, -ENOMEM, "--restore: out of memory");
	rc = strcmp(what, "latest") == 0 ? choose_latest(job, r)
					 : choose_dir(job, what, r);
	if (rc == 0)
		rc = check_job(job, r);
	if (rc < 0) {
		release_files(r);
		sl_snap_meta_free(r->meta);
		free(r);
		return rc;
	}
	job->restore = r;
	return 0;
}

uint64_t sl_job_restore_id(const struct sl_job *job)
{
	return job->restore ? job->restore->id : 0;
}

const struct sl_snap_operator_meta *
__sl_restore_op(const struct sl_job *job, const struct job_node *node)
{
	if (job->restore == NULL)
		return NULL;
	return sl_snap_meta_find(job->restore->meta, node->uid);
}

/* ------------------------------------------------------------- reading */

int __sl_restore_src_open(const struct sl_job_restore *r,
			  const struct sl_snap_file_ref *ref,
			  struct sl_snap_src *src, struct sl_snap_err *err)
{
	struct restore_file key = { .ref = ref };
	const struct restore_file *f = NULL;

	if (r->n_files > 0)
		f = bsearch(&key, r->files, r->n_files, sizeof(key), cmp_file);
	if (f != NULL && f->data != NULL) {
		/* src->name points into the metadata, which outlives the source */
		*src = (struct sl_snap_src){ .name = ref->path, .data = f->data,
					     .len = f->len, .fd = -1 };
		return 0;
	}
	/* released already (a subtask restored again): read the file */
	return __sl_restore_src_open_file(r, ref, src, err);
}

int __sl_restore_src_open_file(const struct sl_job_restore *r,
			       const struct sl_snap_file_ref *ref,
			       struct sl_snap_src *src, struct sl_snap_err *err)
{
	char path[8400];
	int n;

	if (is_shared(ref))
		n = snprintf(path, sizeof(path), "%s/../%s", r->dir, ref->path);
	else
		n = snprintf(path, sizeof(path), "%s/%s", r->dir, ref->path);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return sl_snap_src_open(src, path, ref->path, err);
}

void __sl_restore_src_close(struct sl_snap_src *src)
{
	sl_snap_src_close(src);
}

/*
 * Memory.  Each file's bytes are freed as soon as the last subtask that
 * loads it is done with it (users, counted by __sl_restore_start), and a
 * file with one user gives back what it loaded already while it loads the
 * rest, so the checkpoint's bytes and the state built from them are not
 * held in full together.  Other subtasks look files up concurrently: the
 * array is not changed, only the data of a file nobody reads any more.
 */
static struct restore_file *find_file(struct sl_job_restore *r,
				      const struct sl_snap_file_ref *ref)
{
	struct restore_file key = { .ref = ref };

	if (r->n_files == 0)
		return NULL;
	return bsearch(&key, r->files, r->n_files, sizeof(key), cmp_file);
}

void __sl_restore_file_done(struct sl_job_restore *r,
			    const struct sl_snap_file_ref *ref)
{
	struct restore_file *f = find_file(r, ref);

	if (f == NULL || __atomic_load_n(&f->users, __ATOMIC_ACQUIRE) == 0)
		return;
	if (__atomic_sub_fetch(&f->users, 1, __ATOMIC_ACQ_REL) == 0) {
		free(f->data);
		f->data = NULL;
	}
}

#define RELEASE_STEP (8u << 20) /* give memory back in steps this large */

void __sl_restore_file_consumed(struct sl_job_restore *r,
				const struct sl_snap_file_ref *ref,
				uint64_t offset)
{
	struct restore_file *f = find_file(r, ref);
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t end;

	if (f == NULL || f->data == NULL ||
	    __atomic_load_n(&f->users, __ATOMIC_ACQUIRE) != 1 || offset > f->len)
		return;
	/* whole pages only: the buffer is page-aligned (sl_io_read_files) */
	end = offset & ~(page - 1);
	if (end < f->released + RELEASE_STEP)
		return;
	/* the pages read as zeros afterwards; the bytes are freed with the
	 * rest once the file is loaded */
	if (madvise((uint8_t *)f->data + f->released, end - f->released,
		    MADV_DONTNEED) == 0)
		f->released = end;
}

/* Count, per file, the subtasks that will load it in this run. */
static void count_users(struct sl_job *job)
{
	struct sl_job_restore *r = job->restore;

	for (uint32_t i = 0; i < r->n_files; i++) {
		/* bytes partly given back by an earlier run are not the file's
		 * any more: read it again (__sl_restore_src_open) */
		if (r->files[i].released > 0) {
			free(r->files[i].data);
			r->files[i].data = NULL;
		}
		r->files[i].users = 0;
		r->files[i].released = 0;
	}
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		const struct task *t = &job->tasks[i];
		const struct sl_snap_operator_meta *op = __sl_restore_op(job, t->node);
		const uint32_t first = t->pub.info.kg_first;
		const uint32_t end = first + t->pub.info.kg_count;

		if (op == NULL || t->phase == TASK_DONE)
			continue;
		for (uint32_t s = 0; s < op->parallelism; s++)
			for (uint32_t f = 0; f < op->subtasks[s].n_files; f++) {
				const struct sl_snap_file_ref *ref = &op->subtasks[s].files[f];
				struct restore_file *rf;

				if (ref->type != SL_SNAP_FILE_KEYED || t->ops->restore == NULL ||
				    ref->kg_first >= end || ref->kg_first + ref->kg_count <= first)
					continue;
				if ((rf = find_file(r, ref)) != NULL)
					rf->users++;
			}
	}
}

/* ------------------------------------------------------- starting a run */

/* Keyed-state bytes subtask t reads: the files overlapping its key
 * groups. */
static uint64_t task_bytes(const struct task *t,
			   const struct sl_snap_operator_meta *op)
{
	const uint32_t first = t->pub.info.kg_first;
	const uint32_t end = first + t->pub.info.kg_count;
	uint64_t total = 0;

	for (uint32_t s = 0; s < op->parallelism; s++) {
		const struct sl_snap_subtask_meta *st = &op->subtasks[s];
		for (uint32_t f = 0; f < st->n_files; f++) {
			const struct sl_snap_file_ref *ref = &st->files[f];
			if (ref->type == SL_SNAP_FILE_KEYED &&
			    ref->kg_first < end &&
			    ref->kg_first + ref->kg_count > first)
				total += ref->size;
		}
	}
	return total;
}

static void free_later(struct restore_resend_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		sl_batch_put(l->v[i].b);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/*
 * Incremental checkpoints continue the restored checkpoint's chains, as
 * Flink does: when it is a checkpoint of the job's own state.checkpoints.dir
 * (so its shared files are the ones later checkpoints reference and
 * retention keeps), its metadata becomes the last complete checkpoint of
 * the run, the base the first triggers plan.  Each subtask that restored
 * its own chain unchanged records it as its base (task_restore.c); one
 * that did not writes a full file, as before.
 */
static void restored_as_base(struct sl_job *job, struct sl_job_restore *r)
{
	char own[4200], a[PATH_MAX], b[PATH_MAX];
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err = { "" };

	r->as_base = false;
	if (!job->cfg.checkpoint.incremental || r->meta->kind != SL_SNAP_CHECKPOINT ||
	    job->cfg.checkpoint.dir[0] == '\0' ||
	    sl_snap_chk_path(own, sizeof(own), job->cfg.checkpoint.dir, r->id) < 0 ||
	    realpath(own, a) == NULL || realpath(r->dir, b) == NULL || strcmp(a, b) != 0)
		return;
	if (sl_snap_meta_load(r->dir, &m, &err) < 0) {
		fprintf(stderr, "[%s] the first checkpoint writes full keyed files: %s\n",
			job->name, err.msg);
		return;
	}
	sl_snap_meta_free(job->incr_last);
	job->incr_last = m;
	r->as_base = true;
}

int __sl_restore_start(struct sl_job *job)
{
	struct sl_job_restore *r = job->restore;
	struct restore_resend_list later = { 0 };
	uint64_t keyed = 0, inflight = 0;
	int rc;

	atomic_store(&job->tasks_restored, 0);
	if (r == NULL)
		return 0;
	/* the graph may have changed since sl_job_restore_from() */
	if ((rc = check_job(job, r)) < 0)
		return rc;
	uint32_t n_old = 0;
	free(r->blob_base);
	free(r->blob_taken);
	r->blob_base = calloc(r->meta->n_operators + 1, sizeof(*r->blob_base));
	for (uint32_t i = 0; i < r->meta->n_operators; i++) {
		if (r->blob_base != NULL)
			r->blob_base[i] = n_old;
		n_old += r->meta->operators[i].parallelism;
	}
	r->blob_taken = calloc(n_old + 1, 1);
	if (r->blob_base == NULL || r->blob_taken == NULL)
		return fail(job, -ENOMEM, "restore: out of memory");
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		struct task *t = &job->tasks[i];
		const struct sl_snap_operator_meta *op = __sl_restore_op(job, t->node);

		if (op == NULL)
			continue;
		if (op->parallelism == t->pub.info.parallelism
			    ? op->subtasks[t->pub.info.index].finished
			    : op_finished(op) == op->parallelism) {
			t->phase = TASK_DONE; /* ends below, never opened */
			continue;
		}
		keyed += task_bytes(t, op);
	}
	for (uint32_t i = 0; i < r->meta->n_operators; i++) {
		const struct sl_snap_operator_meta *op = &r->meta->operators[i];
		for (uint32_t s = 0; s < op->parallelism; s++)
			for (uint32_t f = 0; f < op->subtasks[s].n_files; f++)
				if (op->subtasks[s].files[f].type == SL_SNAP_FILE_CHANNEL)
					inflight += op->subtasks[s].files[f].size;
	}
	count_users(job);
	restored_as_base(job, r);
	r->total_bytes = keyed + inflight;
	r->read_bytes = 0;
	r->start_ns = mono_ns();
	r->next_report_ns = r->start_ns + PROGRESS_PERIOD_NS;
	r->reported_done = false;
	fprintf(stderr,
		"[%s] restoring from %s (checkpoint %" PRIu64 "): %.1f MiB of state, %.1f MiB in flight\n",
		job->name, r->dir, r->id, keyed / 1048576.0, inflight / 1048576.0);

	/* in-flight input first, on every channel; then the senders' staged
	 * output behind it */
	for (uint32_t i = 0; i < job->n_tasks; i++) {
		if (job->tasks[i].phase == TASK_DONE)
			continue;
		if ((rc = __sl_task_restore_inflight(&job->tasks[i], &later)) < 0) {
			atomic_store(&job->fail_final, true);
			free_later(&later);
			return rc;
		}
	}
	for (size_t i = 0; i < later.n; i++)
		if (!sl_channel_send(later.v[i].ch, later.v[i].b))
			later.v[i].from->blocked = true;
	free(later.v);
	for (uint32_t i = 0; i < job->n_tasks; i++)
		if (job->tasks[i].phase == TASK_DONE)
			__sl_task_end_restored(&job->tasks[i]);
	/* no lcore runs yet: the bytes no subtask will load (in-flight data,
	 * loaded above; files of finished subtasks) go now */
	for (uint32_t i = 0; i < r->n_files; i++)
		if (r->files[i].users == 0) {
			free(r->files[i].data);
			r->files[i].data = NULL;
		}
	return 0;
}

/*
 * After a rescale, new subtasks may take any old subtask's operator state
 * (sl_restore_blob_of); every blob must have been taken by one of them, or
 * the state it holds is lost.
 */
static void check_blobs_taken(struct sl_job *job)
{
	const struct sl_job_restore *r = job->restore;

	for (int n = 0; n < job->n_nodes; n++) {
		const struct job_node *node = &job->nodes[n];
		const struct sl_snap_operator_meta *op = __sl_restore_op(job, node);
		uint32_t i;

		if (op == NULL || op->parallelism == node->parallelism ||
		    op_finished(op) == op->parallelism)
			continue;
		i = (uint32_t)(op - r->meta->operators);
		for (uint32_t s = 0; s < op->parallelism; s++)
			if (op->subtasks[s].n_blobs > 0 &&
			    !__atomic_load_n(&r->blob_taken[r->blob_base[i] + s],
					     __ATOMIC_RELAXED)) {
				atomic_store(&job->fail_final, true);
				__sl_job_fail(job, -EPROTO,
					      "operator '%s' (%s): restoring from %s with parallelism %u instead of %u, no subtask took the operator state of old subtask %u; it would be lost (an operator bug)",
					      node->uid, node->ops->type, r->dir,
					      node->parallelism, op->parallelism, s);
				return;
			}
	}
}

/* Main lcore, while the subtasks restore: progress once a second. */
void __sl_restore_poll(struct sl_job *job)
{
	struct sl_job_restore *r = job->restore;
	uint64_t now, done;

	if (r == NULL || r->reported_done)
		return;
	now = mono_ns();
	done = __atomic_load_n(&r->read_bytes, __ATOMIC_RELAXED);
	if (atomic_load(&job->tasks_restored) >= job->n_tasks) {
		r->reported_done = true;
		/* every subtask loaded its state: the bytes are not needed */
		release_files(r);
		check_blobs_taken(job);
		if (atomic_load(&job->failed))
			return;
		fprintf(stderr, "[%s] restored checkpoint %" PRIu64 " in %.2f s (%.1f MiB read)\n",
			job->name, r->id, (now - r->start_ns) / 1e9, done / 1048576.0);
		return;
	}
	if (now < r->next_report_ns)
		return;
	r->next_report_ns = now + PROGRESS_PERIOD_NS;
	fprintf(stderr, "[%s] restoring: %.1f / %.1f MiB (%.0f%%), %.1f s\n",
		job->name, done / 1048576.0, r->total_bytes / 1048576.0,
		r->total_bytes ? 100.0 * (double)done / (double)r->total_bytes : 100.0,
		(now - r->start_ns) / 1e9);
}
