/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The checkpoint root on disk: chk-<n> naming, listing complete
 * checkpoints, full validation of one, retention, disposal.
 *
 *     <root>/chk-<n>/_metadata   complete iff present and verifying
 *     <root>/chk-<n>/<files>     private to checkpoint n
 *     <root>/shared/<files>      incremental keyed state, referenced by
 *                                several checkpoints' metadata
 *
 * Validation opens every referenced file relative to a directory file
 * descriptor with O_NOFOLLOW, after sl_snap_path_check() has limited the
 * path to "NAME" or "shared/NAME", so neither "..", nor an absolute path,
 * nor a symlink (file, chk-<n> or shared/) can lead outside the root.
 *
 * Retention decides from the metadata alone which shared files are still
 * referenced, and uses the checkpoint id embedded in a data file's name
 * (sl_snap_file_name()) to recognise orphans of aborted checkpoints.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/io_file.h"
#include "snap_pvt.h"

#define CHK_PREFIX "chk-"
#define UID_NAME_MAX 120

/* ================================================================ names */

static bool uid_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static const char *type_ext(enum sl_snap_file_type type)
{
	return type == SL_SNAP_FILE_KEYED ? ".kstate" :
	       type == SL_SNAP_FILE_CHANNEL ? ".chstate" : NULL;
}

int sl_snap_file_name(char *buf, size_t len, const char *uid,
		      uint32_t subtask, uint64_t checkpoint_id,
		      enum sl_snap_file_type type)
{
	const char *ext = type_ext(type);
	char san[UID_NAME_MAX + 1];
	size_t n, i;
	bool changed = false;
	int w;

	if (uid == NULL || uid[0] == '\0' || ext == NULL || checkpoint_id == 0)
		return -EINVAL;
	n = strlen(uid);
	if (n > UID_NAME_MAX) {
		n = UID_NAME_MAX;
		changed = true;
	}
	for (i = 0; i < n; i++) {
		san[i] = uid_char_ok(uid[i]) ? uid[i] : '_';
		changed |= san[i] != uid[i];
	}
	san[n] = '\0';
	if (changed)
		w = snprintf(buf, len, "%s_%08x-%" PRIu32 "-c%" PRIu64 "%s", san,
			     (uint32_t)XXH3_64bits(uid, strlen(uid)), subtask,
			     checkpoint_id, ext);
	else
		w = snprintf(buf, len, "%s-%" PRIu32 "-c%" PRIu64 "%s", san,
			     subtask, checkpoint_id, ext);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Decimal, no sign, no leading zero, >= 1, no overflow. */
static int parse_id(const char *s, size_t n, uint64_t *id)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*id = v;
	return 0;
}

int sl_snap_file_name_checkpoint(const char *name, uint64_t *checkpoint_id)
{
	size_t n = strlen(name), d;
	const char *ext;

	if (n > 7 && strcmp(name + n - 7, ".kstate") == 0)
		ext = name + n - 7;
	else if (n > 8 && strcmp(name + n - 8, ".chstate") == 0)
		ext = name + n - 8;
	else
		return -EINVAL;
	d = 0;
	while (ext - d > name && ext[-(ptrdiff_t)d - 1] >= '0' &&
	       ext[-(ptrdiff_t)d - 1] <= '9')
		d++;
	if (ext - d - 2 < name || ext[-(ptrdiff_t)d - 1] != 'c' ||
	    ext[-(ptrdiff_t)d - 2] != '-')
		return -EINVAL;
	return parse_id(ext - d, d, checkpoint_id);
}

int sl_snap_chk_path(char *buf, size_t len, const char *root, uint64_t id)
{
	int w;

	if (id == 0)
		return -EINVAL;
	w = snprintf(buf, len, "%s/" CHK_PREFIX "%" PRIu64, root, id);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

int sl_snap_chk_parse(const char *name, uint64_t *id)
{
	if (strncmp(name, CHK_PREFIX, sizeof(CHK_PREFIX) - 1) != 0)
		return -EINVAL;
	name += sizeof(CHK_PREFIX) - 1;
	return parse_id(name, strlen(name), id);
}

int sl_snap_chk_create(const char *root, uint64_t id)
{
	char path[4096];
	int rc;

	if ((rc = sl_snap_chk_path(path, sizeof(path), root, id)) < 0)
		return rc;
	if ((rc = sl_io_mkdirs(root)) < 0)
		return rc;
	if (mkdir(path, 0755) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", root, SL_SNAP_SHARED_DIR);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return sl_io_fsync_dir(root);
}

/* ============================================================== scanning */

enum chk_state { CHK_INCOMPLETE = 0, CHK_COMPLETE = 1, CHK_ERROR = 2 };

struct chk_entry {
	uint64_t id;
	enum chk_state state;
	int error;
	struct sl_snap_metadata *meta;
	char *why; /* not complete: the loader's message (may be NULL) */
};

struct chk_scan {
	struct chk_entry *e;
	size_t n, cap;
};

static void scan_free(struct chk_scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		sl_snap_meta_free(s->e[i].meta);
		free(s->e[i].why);
	}
	free(s->e);
	s->e = NULL;
	s->n = s->cap = 0;
}

static int cmp_entry_desc(const void *a, const void *b)
{
	const struct chk_entry *x = a, *y = b;

	return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

/* Errors that mean "this metadata is absent or not a valid one" as
 * opposed to "could not look" (EIO, EACCES, EMFILE, ENOMEM, a newer
 * format version): only the former may make a checkpoint incomplete. */
static bool meta_error_is_corruption(int rc)
{
	return rc == -ENOENT || rc == -EBADMSG || rc == -EINVAL ||
	       rc == -EFBIG || rc == -ELOOP;
}

/* Every chk-<n> directory of root (not following symlinks), newest first,
 * with its metadata loaded and classified. */
static int scan_root(const char *root, struct chk_scan *s,
		     struct sl_snap_err *err)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	d = opendir(root);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		return __sl_snap_errf(err, root, -errno, "cannot open: %s",
				      strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		struct sl_snap_err why;
		char path[4096];
		struct stat st;
		struct chk_entry *e;
		uint64_t id;

		if (sl_snap_chk_parse(de->d_name, &id) < 0)
			continue;
		if (sl_snap_chk_path(path, sizeof(path), root, id) < 0 ||
		    lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue; /* symlinks and files are not ours */
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 16;
			void *n = realloc(s->e, cap * sizeof(*s->e));

			if (n == NULL) {
				rc = -ENOMEM;
				break;
			}
			s->e = n;
			s->cap = cap;
		}
		e = &s->e[s->n++];
		memset(e, 0, sizeof(*e));
		e->id = id;
		snprintf(why.msg, sizeof(why.msg), "%s/_metadata: unreadable",
			 de->d_name);
		rc = sl_snap_meta_load(path, &e->meta, &why);
		if (rc == 0 && (e->meta->checkpoint_id != id ||
				e->meta->kind != SL_SNAP_CHECKPOINT))
			rc = __sl_snap_errf(&why, de->d_name, -EBADMSG,
					    "_metadata describes %s %" PRIu64,
					    e->meta->kind == SL_SNAP_CHECKPOINT ?
						    "checkpoint" : "savepoint",
					    e->meta->checkpoint_id);
		if (rc == 0) {
			e->state = CHK_COMPLETE;
		} else {
			sl_snap_meta_free(e->meta);
			e->meta = NULL;
			e->state = meta_error_is_corruption(rc) ? CHK_INCOMPLETE :
								  CHK_ERROR;
			e->error = rc;
			e->why = strdup(why.msg); /* only for messages */
		}
		rc = 0;
	}
	closedir(d);
	if (rc < 0) {
		scan_free(s);
		return __sl_snap_errf(err, root, rc, "out of memory");
	}
	if (s->n)
		qsort(s->e, s->n, sizeof(*s->e), cmp_entry_desc);
	return 0;
}

int sl_snap_chk_list(const char *root, uint64_t **ids, size_t *n,
		     struct sl_snap_err *err)
{
	struct chk_scan s;
	size_t k = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = scan_root(root, &s, err)) < 0)
		return rc;
	for (size_t i = 0; i < s.n; i++)
		k += s.e[i].state == CHK_COMPLETE;
	if (k) {
		*ids = malloc(k * sizeof(uint64_t));
		if (*ids == NULL) {
			scan_free(&s);
			return __sl_snap_errf(err, root, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < s.n; i++)
			if (s.e[i].state == CHK_COMPLETE)
				(*ids)[(*n)++] = s.e[i].id;
	}
	scan_free(&s);
	return 0;
}

/* ============================================================ validation */

/* Last component of a directory path, for messages ("a/chk-7/" -> chk-7). */
static void dir_base(const char *dir, char *buf, size_t len)
{
	size_t n = strlen(dir);
	const char *b;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	b = dir + n;
	while (b > dir && b[-1] != '/')
		b--;
	snprintf(buf, len, "%.*s", (int)(dir + n - b), b);
}

static int validate_file(int dirfd, const char *name, const char *display,
			 const struct sl_snap_file_ref *ref,
			 struct sl_snap_err *err)
{
	struct stat st;
	uint64_t size, hash;
	int fd, rc;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return __sl_snap_errf(err, display, -errno, "%s",
				      errno == ENOENT ? "missing" :
				      errno == ELOOP ? "is a symlink (refused)" :
				      strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = __sl_snap_errf(err, display, -errno, "cannot stat: %s",
				    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = __sl_snap_errf(err, display, -EBADMSG, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size != ref->size) {
		rc = __sl_snap_errf(err, display, -EBADMSG,
				    "size %lld, metadata says %llu (truncated or overwritten)",
				    (long long)st.st_size,
				    (unsigned long long)ref->size);
		goto out;
	}
	if ((rc = __sl_snap_hash_fd(fd, &size, &hash)) < 0) {
		rc = __sl_snap_errf(err, display, rc, "read error: %s",
				    strerror(-rc));
		goto out;
	}
	if (size != ref->size || hash != ref->xxh3)
		rc = __sl_snap_errf(err, display, -EBADMSG,
				    "checksum mismatch (xxh3 %016" PRIx64
				    ", metadata says %016" PRIx64 ")",
				    hash, ref->xxh3);
out:
	close(fd);
	return rc;
}

int sl_snap_dir_validate(const char *dir, struct sl_snap_metadata **meta_out,
			 struct sl_snap_err *err)
{
	struct sl_snap_metadata *m = NULL;
	char base[256], display[600];
	int dfd = -1, sfd = -1, rc;

	if (meta_out)
		*meta_out = NULL;
	dir_base(dir, base, sizeof(base));
	if ((rc = sl_snap_meta_load(dir, &m, err)) < 0)
		return rc;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = __sl_snap_errf(err, base, -errno, "cannot open: %s",
				    strerror(errno));
		goto out;
	}
	for (uint32_t i = 0; i < m->n_operators; i++) {
		const struct sl_snap_operator_meta *op = &m->operators[i];

		for (uint32_t t = 0; t < op->parallelism; t++) {
			const struct sl_snap_subtask_meta *st = &op->subtasks[t];

			for (uint32_t f = 0; f < st->n_files; f++) {
				const struct sl_snap_file_ref *r = &st->files[f];
				bool shared = r->path[0] == 's' &&
					      strncmp(r->path, SL_SNAP_SHARED_DIR "/",
						      sizeof(SL_SNAP_SHARED_DIR)) == 0;

				/* the loader checked it already; checking
				 * again here keeps this function safe on its
				 * own */
				if (sl_snap_path_check(r->path,
						       m->kind == SL_SNAP_CHECKPOINT) < 0) {
					rc = __sl_snap_errf(err, base, -EINVAL,
							    "path \"%s\" escapes the directory",
							    r->path);
					goto out;
				}
				if (shared && sfd < 0) {
					/* shared/ beside dir; a symlinked shared/
					 * could point anywhere, so refuse it */
					sfd = openat(dfd, "../" SL_SNAP_SHARED_DIR,
						     O_RDONLY | O_DIRECTORY |
							     O_CLOEXEC | O_NOFOLLOW);
					if (sfd < 0) {
						rc = __sl_snap_errf(err, SL_SNAP_SHARED_DIR,
								    -errno, "cannot open: %s",
								    errno == ELOOP ||
								    errno == ENOTDIR ?
								    "not a directory (symlink?)" :
								    strerror(errno));
						goto out;
					}
				}
				if (shared)
					snprintf(display, sizeof(display), "%s", r->path);
				else
					snprintf(display, sizeof(display), "%s/%s",
						 base, r->path);
				rc = validate_file(shared ? sfd : dfd,
						   shared ? r->path + sizeof(SL_SNAP_SHARED_DIR) :
							    r->path,
						   display, r, err);
				if (rc < 0)
					goto out;
			}
		}
	}
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	if (rc == 0 && meta_out)
		*meta_out = m;
	else
		sl_snap_meta_free(m);
	return rc;
}

int sl_snap_chk_validate(const char *root, uint64_t id,
			 struct sl_snap_metadata **meta_out,
			 struct sl_snap_err *err)
{
	struct sl_snap_metadata *m = NULL;
	char path[4096], name[64];
	struct stat st;
	int rc;

	if (meta_out)
		*meta_out = NULL;
	if ((rc = sl_snap_chk_path(path, sizeof(path), root, id)) < 0)
		return __sl_snap_errf(err, root, rc, "bad checkpoint id");
	snprintf(name, sizeof(name), CHK_PREFIX "%" PRIu64, id);
	if (lstat(path, &st) < 0)
		return __sl_snap_errf(err, name, -errno, "%s", strerror(errno));
	if (S_ISLNK(st.st_mode))
		return __sl_snap_errf(err, name, -ELOOP, "is a symlink (refused)");
	if (!S_ISDIR(st.st_mode))
		return __sl_snap_errf(err, name, -ENOTDIR, "not a directory");
	if ((rc = sl_snap_dir_validate(path, &m, err)) < 0)
		return rc;
	if (m->checkpoint_id != id || m->kind != SL_SNAP_CHECKPOINT) {
		rc = __sl_snap_errf(err, name, -EBADMSG,
				    "metadata describes %s %llu",
				    m->kind == SL_SNAP_CHECKPOINT ? "checkpoint" :
								    "savepoint",
				    (unsigned long long)m->checkpoint_id);
		sl_snap_meta_free(m);
		return rc;
	}
	if (meta_out)
		*meta_out = m;
	else
		sl_snap_meta_free(m);
	return 0;
}

/* Append "chk-<id> skipped: <why>" to the messages of sl_snap_chk_latest(). */
static void latest_note(struct sl_snap_err *err, size_t *used, uint64_t id,
			const char *why)
{
	int w;

	if (err == NULL || *used >= sizeof(err->msg) - 1)
		return;
	w = snprintf(err->msg + *used, sizeof(err->msg) - *used,
		     "%s" CHK_PREFIX "%" PRIu64 " skipped: %s", *used ? "; " : "",
		     id, why);
	if (w > 0)
		*used += (size_t)w;
	if (*used >= sizeof(err->msg))
		*used = sizeof(err->msg) - 1;
}

int sl_snap_chk_latest(const char *root, uint64_t *id,
		       struct sl_snap_metadata **meta, struct sl_snap_err *err)
{
	struct sl_snap_err one;
	struct chk_scan s;
	size_t used = 0;
	int rc;

	if (meta)
		*meta = NULL;
	if (err)
		err->msg[0] = '\0';
	if ((rc = scan_root(root, &s, err)) < 0)
		return rc;
	rc = -ENOENT;
	/* newest first; every newer directory that is not used is named with
	 * its reason: an incomplete or corrupt _metadata, or the first data
	 * file that fails validation */
	for (size_t i = 0; i < s.n; i++) {
		const struct chk_entry *e = &s.e[i];
		int v;

		if (e->state != CHK_COMPLETE) {
			latest_note(err, &used, e->id, e->why ? e->why : "(out of memory)");
			continue;
		}
		v = sl_snap_chk_validate(root, e->id, meta, &one);
		if (v == 0) {
			*id = e->id;
			rc = 0;
			break;
		}
		if (v == -ENOMEM) {
			rc = v;
			break;
		}
		latest_note(err, &used, e->id, one.msg);
	}
	scan_free(&s);
	if (rc == -ENOENT && err && used == 0)
		snprintf(err->msg, sizeof(err->msg), "%s: no complete checkpoint",
			 root);
	return rc;
}

/* ============================================================== disposal */

int sl_snap_chk_dispose(const char *root, uint64_t id)
{
	char path[4096];
	struct dirent *de;
	bool subdir = false;
	DIR *d;
	int dfd, rc;

	if ((rc = sl_snap_chk_path(path, sizeof(path), root, id)) < 0)
		return rc;
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return errno == ELOOP ? -ELOOP : -errno;
	/* metadata first and durably: from here on the checkpoint is
	 * incomplete, whatever happens to the rest */
	if (unlinkat(dfd, SL_SNAP_METADATA_NAME, 0) < 0 && errno != ENOENT) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	if (fsync(dfd) < 0 && errno != EINVAL) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	d = fdopendir(dfd);
	if (d == NULL) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dfd, de->d_name, 0) < 0) {
			if (errno == EISDIR || errno == EPERM)
				subdir = true;
			else if (errno != ENOENT)
				rc = -errno;
		}
	}
	closedir(d); /* closes dfd */
	if (rc < 0)
		return rc;
	if (subdir)
		return -ENOTEMPTY;
	if (rmdir(path) < 0)
		return -errno;
	return sl_io_fsync_dir(root);
}

int sl_snap_savepoint_dispose(const char *dir, struct sl_snap_err *err)
{
	struct sl_snap_metadata *m = NULL;
	char path[4096], tmp[4096], parent[4096];
	int rc;

	if ((rc = sl_snap_meta_load(dir, &m, err)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", dir, SL_SNAP_METADATA_NAME);
	if (unlink(path) < 0) {
		rc = __sl_snap_errf(err, path, -errno, "cannot remove: %s",
				    strerror(errno));
		goto out;
	}
	if ((rc = sl_io_fsync_dir(dir)) < 0)
		goto out;
	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t t = 0; t < m->operators[i].parallelism; t++) {
			const struct sl_snap_subtask_meta *st =
				&m->operators[i].subtasks[t];

			for (uint32_t f = 0; f < st->n_files; f++) {
				const char *p = st->files[f].path;

				/* a checkpoint's shared files belong to its
				 * root's retention, not to this directory */
				if (strchr(p, '/') != NULL)
					continue;
				snprintf(path, sizeof(path), "%s/%s", dir, p);
				if (unlink(path) < 0 && errno != ENOENT) {
					rc = __sl_snap_errf(err, path, -errno,
							    "cannot remove: %s",
							    strerror(errno));
					goto out;
				}
			}
		}
	snprintf(path, sizeof(path), "%s/%s", dir, SL_SNAP_METADATA_NAME);
	if (sl_io_tmp_path(path, tmp, sizeof(tmp)) == 0)
		unlink(tmp);
	if (rmdir(dir) < 0) {
		rc = __sl_snap_errf(err, dir, -errno,
				    "left in place: %s", strerror(errno));
		goto out;
	}
	if (sl_io_dirname(dir, parent, sizeof(parent)) == 0)
		rc = sl_io_fsync_dir(parent);
out:
	sl_snap_meta_free(m);
	return rc;
}

/* ============================================================= retention */

struct name_set {
	const char **v;
	size_t n, cap;
};

static int set_add(struct name_set *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *n = realloc(s->v, cap * sizeof(*s->v));

		if (n == NULL)
			return -ENOMEM;
		s->v = n;
		s->cap = cap;
	}
	s->v[s->n++] = name;
	return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool set_has(const struct name_set *s, const char *name)
{
	return s->n && bsearch(&name, s->v, s->n, sizeof(*s->v), cmp_str_ptr);
}

/* Add the shared file names (without "shared/") a metadata references. */
static int set_add_shared(struct name_set *s, const struct sl_snap_metadata *m)
{
	int rc;

	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t t = 0; t < m->operators[i].parallelism; t++) {
			const struct sl_snap_subtask_meta *st =
				&m->operators[i].subtasks[t];

			for (uint32_t f = 0; f < st->n_files; f++) {
				const char *p = st->files[f].path;

				if (strncmp(p, SL_SNAP_SHARED_DIR "/",
					    sizeof(SL_SNAP_SHARED_DIR)) != 0)
					continue;
				if ((rc = set_add(s, p + sizeof(SL_SNAP_SHARED_DIR))) < 0)
					return rc;
			}
		}
	return 0;
}

int sl_snap_chk_retain(const char *root, const struct sl_snap_retain_conf *conf,
		       struct sl_snap_retain_result *res,
		       struct sl_snap_err *err)
{
	struct sl_snap_retain_result r = { 0 };
	struct name_set kept = { 0 }, dropped = { 0 };
	struct chk_scan s;
	uint64_t newest = 0;
	uint32_t complete = 0;
	char shared[4096];
	DIR *d = NULL;
	int rc;

	if (conf == NULL || conf->keep == 0)
		return __sl_snap_errf(err, root, -EINVAL,
				      "retention must keep at least one checkpoint");
	if ((rc = scan_root(root, &s, err)) < 0)
		return rc;
	for (size_t i = 0; i < s.n; i++)
		if (s.e[i].state == CHK_ERROR) {
			char name[64];

			snprintf(name, sizeof(name), CHK_PREFIX "%" PRIu64, s.e[i].id);
			rc = __sl_snap_errf(err, name, s.e[i].error,
					    "cannot read its metadata (%s); retention stopped",
					    strerror(-s.e[i].error));
			goto out;
		}

	/* decide, newest first; s.e is sorted by id descending */
	for (size_t i = 0; i < s.n; i++) {
		struct chk_entry *e = &s.e[i];

		if (e->state != CHK_COMPLETE)
			continue;
		if (newest == 0)
			newest = e->id;
		rc = ++complete <= conf->keep ? set_add_shared(&kept, e->meta) :
						set_add_shared(&dropped, e->meta);
		if (rc < 0)
			goto nomem;
	}
	if (kept.n)
		qsort(kept.v, kept.n, sizeof(*kept.v), cmp_str_ptr);
	if (dropped.n)
		qsort(dropped.v, dropped.n, sizeof(*dropped.v), cmp_str_ptr);

	/* checkpoints first: once they are gone, their shared files are
	 * orphans that a later run also recognises */
	complete = 0;
	for (size_t i = 0; i < s.n; i++) {
		struct chk_entry *e = &s.e[i];
		bool drop;

		if (e->state == CHK_COMPLETE)
			drop = ++complete > conf->keep;
		else
			drop = conf->all_incomplete || e->id < newest;
		if (!drop) {
			r.kept += e->state == CHK_COMPLETE;
			continue;
		}
		rc = sl_snap_chk_dispose(root, e->id);
		if (rc < 0 && rc != -ENOENT) {
			char name[64];

			snprintf(name, sizeof(name), CHK_PREFIX "%" PRIu64, e->id);
			rc = __sl_snap_errf(err, name, rc, "cannot dispose: %s",
					    strerror(-rc));
			goto out;
		}
		if (e->state == CHK_COMPLETE)
			r.removed_complete++;
		else
			r.removed_incomplete++;
	}

	snprintf(shared, sizeof(shared), "%s/%s", root, SL_SNAP_SHARED_DIR);
	d = opendir(shared);
	if (d != NULL) {
		struct dirent *de;
		int sfd = dirfd(d);

		while ((de = readdir(d)) != NULL) {
			const char *nm = de->d_name;
			uint64_t cid;
			bool drop;

			if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
			    set_has(&kept, nm))
				continue;
			drop = set_has(&dropped, nm) || conf->all_incomplete ||
			       (sl_snap_file_name_checkpoint(nm, &cid) == 0 &&
				cid <= newest);
			if (!drop)
				continue;
			if (unlinkat(sfd, nm, 0) == 0)
				r.removed_shared++;
			else if (errno != ENOENT && errno != EISDIR) {
				rc = __sl_snap_errf(err, SL_SNAP_SHARED_DIR, -errno,
						    "cannot remove %s: %s", nm,
						    strerror(errno));
				goto out;
			}
		}
		if (r.removed_shared && fsync(sfd) < 0 && errno != EINVAL) {
			rc = -errno;
			goto out;
		}
	} else if (errno != ENOENT) {
		rc = __sl_snap_errf(err, shared, -errno, "cannot open: %s",
				    strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	rc = __sl_snap_errf(err, root, -ENOMEM, "out of memory");
out:
	if (d)
		closedir(d);
	free(kept.v);
	free(dropped.v);
	scan_free(&s);
	if (res)
		*res = r;
	return rc;
}
