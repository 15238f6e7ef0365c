/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `_metadata` file of a checkpoint or savepoint: what the checkpoint
 * consists of.  Written last; the checkpoint is complete iff this file
 * exists and verifies.  docs/snapshot-format.md has the full specification.
 *
 * Layout (integers little-endian):
 *
 *      0  "SLMETADT"            magic
 *      8  u32 version           SL_SNAP_FORMAT_VERSION (1)
 *     12  u32 reserved          0
 *     16  u64 body_len          L
 *     24  u64 hcheck            XXH3_64bits(bytes [0, 24))
 *     32  body[L]               JSON (UTF-8), below
 *   32+L  "SLMDTEND"            end magic
 *   40+L  u64 fcheck            XXH3_64bits(bytes [0, 40 + L))
 *
 * The file is exactly 48 + L bytes, so truncation is always detected; the
 * header checksum lets the loader trust L (bounded by the file size)
 * before it reads the body.
 *
 * Body (unknown keys are ignored, so minor additions stay readable):
 *
 *   { "format_version": 1, "checkpoint_id": 7,
 *     "kind": "checkpoint" | "savepoint",
 *     "job_name": "demo", "job_id": "<16 hex digits>",
 *     "trigger_time_ns": <int>,
 *     "operators": [
 *       { "uid": "counts", "type": "keyed-aggregate",   // type optional
 *         "parallelism": 2, "max_parallelism": 128,
 *         "subtasks": [            // exactly parallelism entries, in order
 *           { "subtask": 0,
 *             "finished": true,    // optional, only when true
 *             "files": [ { "path": "shared/counts-0-c5.kstate",
 *                          "type": "keyed" | "channel",
 *                          "checkpoint_id": 5, "size": 1234,
 *                          "xxh3": "<16 hex digits>",
 *                          "kg_first": 0, "kg_count": 64 } ],
 *             "operator_state": [ "<base64>", ... ] } ] } ],
 *     "stats": { "duration_ns": .., "alignment_ns": .., "sync_ns": ..,
 *                "async_ns": .., "files": .., "bytes_written": ..,
 *                "bytes_referenced": .., "keyed_bytes": ..,
 *                "channel_bytes": .. } }
 *
 * Paths are relative: "NAME" inside the checkpoint directory or
 * "shared/NAME" in the shared directory beside it (checkpoints only);
 * see sl_snap_path_check().  Keyed files of a subtask are listed in
 * application order: a full file, then its deltas oldest first.
 * Operator (non-keyed) state is stored inline as a list of base64 blobs
 * per subtask (Flink's ListState), at most SL_SNAP_BLOB_MAX bytes each;
 * a rescaling restore redistributes the concatenated lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "sluice/crash_point.h"
#include "sluice/io_file.h"
#include "sluice/keygroup.h"
#include "snap_pvt.h"

#define META_HDR 32u
#define META_TRAILER 16u
#define META_MAX_OPERATORS 65536u
#define META_MAX_FILES 65536u
#define META_MAX_BLOBS 65536u
#define NAME_MAX_CHARS 200u

/* ======================================================== paths and names */

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static int file_name_ok(const char *s)
{
	size_t n = 0;

	if (s[0] == '\0' || s[0] == '.')
		return 0;
	for (; s[n]; n++)
		if (!name_char_ok(s[n]) || n >= NAME_MAX_CHARS)
			return 0;
	return strcmp(s, SL_SNAP_METADATA_NAME) != 0;
}

static bool path_is_shared(const char *path)
{
	return strncmp(path, SL_SNAP_SHARED_DIR "/",
		       sizeof(SL_SNAP_SHARED_DIR)) == 0;
}

int sl_snap_path_check(const char *path, bool allow_shared)
{
	if (path == NULL)
		return -EINVAL;
	if (path_is_shared(path)) {
		if (!allow_shared)
			return -EINVAL;
		path += sizeof(SL_SNAP_SHARED_DIR);
	}
	return file_name_ok(path) ? 0 : -EINVAL;
}

/* ================================================================ builder */

struct sl_snap_metadata *sl_snap_meta_create(uint64_t checkpoint_id,
					     enum sl_snap_kind kind,
					     const char *job_name,
					     uint64_t job_id,
					     int64_t trigger_time_ns)
{
	struct sl_snap_metadata *m;

	if (checkpoint_id == 0 || checkpoint_id > INT64_MAX ||
	    (kind != SL_SNAP_CHECKPOINT && kind != SL_SNAP_SAVEPOINT) ||
	    !__sl_snap_name_ok(job_name)) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->format_version = SL_SNAP_FORMAT_VERSION;
	m->checkpoint_id = checkpoint_id;
	m->kind = kind;
	snprintf(m->job_name, sizeof(m->job_name), "%s", job_name);
	m->job_id = job_id;
	m->trigger_time_ns = trigger_time_ns;
	return m;
}

void sl_snap_meta_free(struct sl_snap_metadata *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->n_operators; i++) {
		struct sl_snap_operator_meta *op = &m->operators[i];

		for (uint32_t s = 0; op->subtasks && s < op->parallelism; s++) {
			struct sl_snap_subtask_meta *st = &op->subtasks[s];

			for (uint32_t b = 0; b < st->n_blobs; b++)
				free(st->blobs[b].data);
			free(st->blobs);
			free(st->files);
		}
		free(op->subtasks);
	}
	free(m->operators);
	free(m);
}

const struct sl_snap_operator_meta *
sl_snap_meta_find(const struct sl_snap_metadata *m, const char *uid)
{
	for (uint32_t i = 0; i < m->n_operators; i++)
		if (strcmp(m->operators[i].uid, uid) == 0)
			return &m->operators[i];
	return NULL;
}

int sl_snap_meta_add_operator(struct sl_snap_metadata *m, const char *uid,
			      uint32_t parallelism, uint32_t max_parallelism)
{
	struct sl_snap_operator_meta *op;

	if (!__sl_snap_name_ok(uid) || parallelism == 0 ||
	    parallelism > max_parallelism ||
	    max_parallelism > SL_MAX_PARALLELISM_LIMIT ||
	    m->n_operators >= META_MAX_OPERATORS)
		return -EINVAL;
	if (sl_snap_meta_find(m, uid) != NULL)
		return -EEXIST;
	if (m->n_operators == m->cap_operators_) {
		uint32_t cap = m->cap_operators_ ? m->cap_operators_ * 2 : 8;
		void *n = realloc(m->operators, cap * sizeof(*m->operators));

		if (n == NULL)
			return -ENOMEM;
		m->operators = n;
		m->cap_operators_ = cap;
	}
	op = &m->operators[m->n_operators];
	memset(op, 0, sizeof(*op));
	op->subtasks = calloc(parallelism, sizeof(*op->subtasks));
	if (op->subtasks == NULL)
		return -ENOMEM;
	snprintf(op->uid, sizeof(op->uid), "%s", uid);
	op->parallelism = parallelism;
	op->max_parallelism = max_parallelism;
	return (int)m->n_operators++;
}

static struct sl_snap_subtask_meta *subtask_of(struct sl_snap_metadata *m,
					       int op, uint32_t subtask)
{
	if (op < 0 || (uint32_t)op >= m->n_operators ||
	    subtask >= m->operators[op].parallelism)
		return NULL;
	return &m->operators[op].subtasks[subtask];
}

int sl_snap_meta_set_type(struct sl_snap_metadata *m, int op, const char *type)
{
	if (op < 0 || (uint32_t)op >= m->n_operators || type == NULL ||
	    strlen(type) >= SL_SNAP_TYPE_MAX || !__sl_snap_name_ok(type))
		return -EINVAL;
	snprintf(m->operators[op].type, SL_SNAP_TYPE_MAX, "%s", type);
	return 0;
}

int sl_snap_meta_set_finished(struct sl_snap_metadata *m, int op,
			      uint32_t subtask)
{
	struct sl_snap_subtask_meta *st = subtask_of(m, op, subtask);

	if (st == NULL)
		return -EINVAL;
	st->finished = true;
	return 0;
}

int sl_snap_meta_add_file(struct sl_snap_metadata *m, int op, uint32_t subtask,
			  const struct sl_snap_file_ref *ref)
{
	struct sl_snap_subtask_meta *st = subtask_of(m, op, subtask);
	bool shared;

	if (st == NULL || ref == NULL ||
	    memchr(ref->path, 0, sizeof(ref->path)) == NULL ||
	    sl_snap_path_check(ref->path, m->kind == SL_SNAP_CHECKPOINT) < 0 ||
	    ref->checkpoint_id == 0 || ref->checkpoint_id > m->checkpoint_id ||
	    ref->size > INT64_MAX || st->n_files >= META_MAX_FILES)
		return -EINVAL;
	shared = path_is_shared(ref->path);
	if (!shared && ref->checkpoint_id != m->checkpoint_id)
		return -EINVAL;
	if (ref->type == SL_SNAP_FILE_KEYED) {
		uint32_t maxp = m->operators[op].max_parallelism;

		if (ref->kg_count == 0 || ref->kg_first >= maxp ||
		    ref->kg_count > maxp - ref->kg_first)
			return -EINVAL;
	} else if (ref->type == SL_SNAP_FILE_CHANNEL) {
		if (ref->kg_first || ref->kg_count)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (st->n_files == st->cap_files_) {
		uint32_t cap = st->cap_files_ ? st->cap_files_ * 2 : 4;
		void *n = realloc(st->files, cap * sizeof(*st->files));

		if (n == NULL)
			return -ENOMEM;
		st->files = n;
		st->cap_files_ = cap;
	}
	st->files[st->n_files++] = *ref;
	return 0;
}

int sl_snap_meta_inherit_keyed(struct sl_snap_metadata *m, int op,
			       uint32_t subtask,
			       const struct sl_snap_metadata *prev,
			       uint32_t max_chain)
{
	const struct sl_snap_operator_meta *pop;
	const struct sl_snap_subtask_meta *pst;
	struct sl_snap_operator_meta *mop;
	uint32_t n = 0, added = 0;
	int rc;

	if (subtask_of(m, op, subtask) == NULL || m->kind != SL_SNAP_CHECKPOINT ||
	    max_chain == 0)
		return -EINVAL;
	if (prev == NULL || prev->kind != SL_SNAP_CHECKPOINT ||
	    prev->checkpoint_id >= m->checkpoint_id)
		return 0;
	mop = &m->operators[op];
	pop = sl_snap_meta_find(prev, mop->uid);
	if (pop == NULL || pop->parallelism != mop->parallelism ||
	    pop->max_parallelism != mop->max_parallelism)
		return 0;
	pst = &pop->subtasks[subtask];
	for (uint32_t f = 0; f < pst->n_files; f++) {
		if (pst->files[f].type != SL_SNAP_FILE_KEYED)
			continue;
		if (!path_is_shared(pst->files[f].path))
			return 0;
		n++;
	}
	if (n == 0 || n >= max_chain)
		return 0;
	for (uint32_t f = 0; f < pst->n_files; f++) {
		if (pst->files[f].type != SL_SNAP_FILE_KEYED)
			continue;
		if ((rc = sl_snap_meta_add_file(m, op, subtask, &pst->files[f])) < 0) {
			/* leave the subtask as it was: the caller writes a
			 * full file after an error */
			m->operators[op].subtasks[subtask].n_files -= added;
			return rc;
		}
		added++;
	}
	return (int)added;
}

int sl_snap_file_ref_set(struct sl_snap_file_ref *ref, const char *path,
			 enum sl_snap_file_type type, uint64_t checkpoint_id,
			 const struct sl_snap_file_info *info,
			 uint32_t kg_first, uint32_t kg_count)
{
	memset(ref, 0, sizeof(*ref));
	if (strlen(path) >= sizeof(ref->path))
		return -ENAMETOOLONG;
	strcpy(ref->path, path);
	ref->type = type;
	ref->checkpoint_id = checkpoint_id;
	ref->size = info ? info->size : 0;
	ref->xxh3 = info ? info->xxh3 : 0;
	ref->kg_first = kg_first;
	ref->kg_count = kg_count;
	return 0;
}

int sl_snap_meta_add_blob(struct sl_snap_metadata *m, int op, uint32_t subtask,
			  const void *data, size_t len)
{
	struct sl_snap_subtask_meta *st = subtask_of(m, op, subtask);
	uint8_t *copy;

	if (st == NULL || (len && data == NULL) || st->n_blobs >= META_MAX_BLOBS)
		return -EINVAL;
	if (len > SL_SNAP_BLOB_MAX)
		return -E2BIG;
	if (st->n_blobs == st->cap_blobs_) {
		uint32_t cap = st->cap_blobs_ ? st->cap_blobs_ * 2 : 2;
		void *n = realloc(st->blobs, cap * sizeof(*st->blobs));

		if (n == NULL)
			return -ENOMEM;
		st->blobs = n;
		st->cap_blobs_ = cap;
	}
	copy = malloc(len ? len : 1);
	if (copy == NULL)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	st->blobs[st->n_blobs].data = copy;
	st->blobs[st->n_blobs].len = len;
	st->n_blobs++;
	return 0;
}

/* ============================================ cross-reference validation */

static int cmp_ref_ptr(const void *a, const void *b)
{
	const struct sl_snap_file_ref *x = *(const struct sl_snap_file_ref *const *)a;
	const struct sl_snap_file_ref *y = *(const struct sl_snap_file_ref *const *)b;

	return strcmp(x->path, y->path);
}

/* A private path is referenced once; a shared path may be referenced by
 * several subtasks, always describing the same file.  Sorting keeps this
 * O(n log n) for metadata with many files.  Returns 0 or -EINVAL with the
 * offending path in *bad. */
static int check_duplicates(const struct sl_snap_metadata *m, const char **bad)
{
	const struct sl_snap_file_ref **refs;
	size_t n = 0, k = 0;
	int rc = 0;

	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t s = 0; s < m->operators[i].parallelism; s++)
			n += m->operators[i].subtasks[s].n_files;
	if (n < 2)
		return 0;
	refs = malloc(n * sizeof(*refs));
	if (refs == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t s = 0; s < m->operators[i].parallelism; s++) {
			const struct sl_snap_subtask_meta *st =
				&m->operators[i].subtasks[s];

			for (uint32_t f = 0; f < st->n_files; f++)
				refs[k++] = &st->files[f];
		}
	qsort(refs, n, sizeof(*refs), cmp_ref_ptr);
	for (size_t i = 1; i < n; i++) {
		const struct sl_snap_file_ref *a = refs[i - 1], *b = refs[i];

		if (strcmp(a->path, b->path) != 0)
			continue;
		if (!path_is_shared(a->path) || a->size != b->size ||
		    a->xxh3 != b->xxh3 || a->type != b->type ||
		    a->checkpoint_id != b->checkpoint_id) {
			*bad = a->path;
			rc = -EINVAL;
			break;
		}
	}
	free(refs);
	return rc;
}

static void compute_stats(const struct sl_snap_metadata *m,
			  struct sl_snap_stats *s)
{
	s->files = s->bytes_written = s->bytes_referenced = 0;
	s->keyed_bytes = s->channel_bytes = 0;
	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t t = 0; t < m->operators[i].parallelism; t++) {
			const struct sl_snap_subtask_meta *st =
				&m->operators[i].subtasks[t];

			for (uint32_t f = 0; f < st->n_files; f++) {
				const struct sl_snap_file_ref *r = &st->files[f];

				s->files++;
				s->bytes_referenced += r->size;
				if (r->checkpoint_id == m->checkpoint_id)
					s->bytes_written += r->size;
				if (r->type == SL_SNAP_FILE_KEYED)
					s->keyed_bytes += r->size;
				else
					s->channel_bytes += r->size;
			}
		}
}

/* ================================================================ base64 */

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const uint8_t *d, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		*o++ = b64_chars[v >> 18 & 63];
		*o++ = b64_chars[v >> 12 & 63];
		*o++ = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64_chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;

	return p ? (int)(p - b64_chars) : -1;
}

/* Strict: padded, no whitespace, zero unused bits. */
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len)
{
	size_t len, pad = 0;
	uint8_t *d;

	if (n % 4)
		return -EINVAL;
	if (n && s[n - 1] == '=')
		pad = n >= 2 && s[n - 2] == '=' ? 2 : 1;
	len = n / 4 * 3 - pad;
	if (len > SL_SNAP_BLOB_MAX)
		return -E2BIG;
	d = malloc(len ? len : 1);
	if (d == NULL)
		return -ENOMEM;
	for (size_t i = 0, o = 0; i < n; i += 4) {
		int v[4];
		uint32_t w = 0;
		bool last = i + 4 == n;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_val(s[i + k]);
			if (v[k] < 0 && !(last && s[i + k] == '=' &&
					  k >= 4 - (int)pad)) {
				free(d);
				return -EINVAL;
			}
			w = w << 6 | (uint32_t)(v[k] < 0 ? 0 : v[k]);
		}
		if ((last && pad == 1 && (w & 0xff)) ||
		    (last && pad == 2 && (w & 0xffff))) {
			free(d);
			return -EINVAL;
		}
		d[o++] = (uint8_t)(w >> 16);
		if (o < len)
			d[o++] = (uint8_t)(w >> 8);
		if (o < len)
			d[o++] = (uint8_t)w;
	}
	*out = d;
	*out_len = len;
	return 0;
}

/* ================================================================ encode */

static const char *kind_name(enum sl_snap_kind k)
{
	return k == SL_SNAP_SAVEPOINT ? "savepoint" : "checkpoint";
}

static const char *type_name(enum sl_snap_file_type t)
{
	return t == SL_SNAP_FILE_KEYED ? "keyed" : "channel";
}

static json_t *hex64(uint64_t v)
{
	char s[17];

	snprintf(s, sizeof(s), "%016" PRIx64, v);
	return json_string(s);
}

/* json_object_set_new that reports a NULL value (invalid UTF-8, ENOMEM). */
static int jset(json_t *o, const char *k, json_t *v)
{
	if (v == NULL)
		return -EINVAL;
	return json_object_set_new(o, k, v) == 0 ? 0 : -ENOMEM;
}

static int jappend(json_t *a, json_t *v)
{
	if (v == NULL)
		return -EINVAL;
	return json_array_append_new(a, v) == 0 ? 0 : -ENOMEM;
}

/* Add a new array/object under key and return it (owned by o), or NULL. */
static json_t *jchild(json_t *o, const char *k, json_t *v)
{
	return jset(o, k, v) == 0 ? json_object_get(o, k) : NULL;
}

static int encode_subtask(const struct sl_snap_subtask_meta *st, uint32_t idx,
			  json_t *subs)
{
	json_t *o = json_object(), *files, *blobs;
	int rc;

	if (o == NULL || (rc = jappend(subs, o)) < 0)
		return -ENOMEM;
	if ((rc = jset(o, "subtask", json_integer(idx))) < 0)
		return rc;
	if (st->finished && (rc = jset(o, "finished", json_true())) < 0)
		return rc;
	files = jchild(o, "files", json_array());
	blobs = jchild(o, "operator_state", json_array());
	if (files == NULL || blobs == NULL)
		return -ENOMEM;
	for (uint32_t f = 0; f < st->n_files; f++) {
		const struct sl_snap_file_ref *r = &st->files[f];
		json_t *fo = json_object();

		if (fo == NULL || jappend(files, fo) < 0)
			return -ENOMEM;
		if ((rc = jset(fo, "path", json_string(r->path))) < 0 ||
		    (rc = jset(fo, "type", json_string(type_name(r->type)))) < 0 ||
		    (rc = jset(fo, "checkpoint_id",
			       json_integer((json_int_t)r->checkpoint_id))) < 0 ||
		    (rc = jset(fo, "size", json_integer((json_int_t)r->size))) < 0 ||
		    (rc = jset(fo, "xxh3", hex64(r->xxh3))) < 0 ||
		    (rc = jset(fo, "kg_first", json_integer(r->kg_first))) < 0 ||
		    (rc = jset(fo, "kg_count", json_integer(r->kg_count))) < 0)
			return rc;
	}
	for (uint32_t b = 0; b < st->n_blobs; b++) {
		char *s = b64_encode(st->blobs[b].data, st->blobs[b].len);

		rc = s ? jappend(blobs, json_string(s)) : -ENOMEM;
		free(s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Every node is attached to root as soon as it is created, so one
 * json_decref(root) frees everything on any failure. */
static int encode_json(const struct sl_snap_metadata *m, json_t *root)
{
	struct sl_snap_stats s = m->stats;
	json_t *ops, *stats;
	int rc;

	compute_stats(m, &s);
	if ((rc = jset(root, "format_version",
		       json_integer(SL_SNAP_FORMAT_VERSION))) < 0 ||
	    (rc = jset(root, "checkpoint_id",
		       json_integer((json_int_t)m->checkpoint_id))) < 0 ||
	    (rc = jset(root, "kind", json_string(kind_name(m->kind)))) < 0 ||
	    (rc = jset(root, "job_name", json_string(m->job_name))) < 0 ||
	    (rc = jset(root, "job_id", hex64(m->job_id))) < 0 ||
	    (rc = jset(root, "trigger_time_ns",
		       json_integer(m->trigger_time_ns))) < 0)
		return rc;
	ops = jchild(root, "operators", json_array());
	stats = jchild(root, "stats", json_object());
	if (ops == NULL || stats == NULL)
		return -ENOMEM;
#define STAT(f)                                                          \
	if ((rc = jset(stats, #f, json_integer((json_int_t)s.f))) < 0) \
		return rc;
	STAT(duration_ns)
	STAT(alignment_ns)
	STAT(sync_ns)
	STAT(async_ns)
	STAT(files)
	STAT(bytes_written)
	STAT(bytes_referenced)
	STAT(keyed_bytes)
	STAT(channel_bytes)
#undef STAT
	for (uint32_t i = 0; i < m->n_operators; i++) {
		const struct sl_snap_operator_meta *op = &m->operators[i];
		json_t *o = json_object(), *subs;

		if (o == NULL || jappend(ops, o) < 0)
			return -ENOMEM;
		if ((rc = jset(o, "uid", json_string(op->uid))) < 0 ||
		    (op->type[0] &&
		     (rc = jset(o, "type", json_string(op->type))) < 0) ||
		    (rc = jset(o, "parallelism", json_integer(op->parallelism))) < 0 ||
		    (rc = jset(o, "max_parallelism",
			       json_integer(op->max_parallelism))) < 0)
			return rc;
		if ((subs = jchild(o, "subtasks", json_array())) == NULL)
			return -ENOMEM;
		for (uint32_t t = 0; t < op->parallelism; t++)
			if ((rc = encode_subtask(&op->subtasks[t], t, subs)) < 0)
				return rc;
	}
	return 0;
}

int sl_snap_meta_encode(const struct sl_snap_metadata *m, void **bufp,
			size_t *lenp)
{
	const char *bad = NULL;
	json_t *root;
	char *body;
	size_t blen, total;
	uint8_t *buf;
	int rc = 0;

	if ((rc = check_duplicates(m, &bad)) < 0)
		return rc;
	root = json_object();
	if (root == NULL)
		return -ENOMEM;
	if ((rc = encode_json(m, root)) < 0) {
		json_decref(root);
		return rc;
	}
	body = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (body == NULL)
		return -ENOMEM;
	blen = strlen(body);
	total = META_HDR + blen + META_TRAILER;
	if (total > SL_SNAP_META_MAX) {
		free(body);
		return -EFBIG;
	}
	buf = malloc(total);
	if (buf == NULL) {
		free(body);
		return -ENOMEM;
	}
	memcpy(buf, SNAP_MAGIC_META, SNAP_MAGIC_LEN);
	snap_put32(buf + 8, SL_SNAP_FORMAT_VERSION);
	snap_put32(buf + 12, 0);
	snap_put64(buf + 16, blen);
	snap_put64(buf + 24, XXH3_64bits(buf, 24));
	memcpy(buf + META_HDR, body, blen);
	free(body);
	memcpy(buf + META_HDR + blen, SNAP_MAGIC_META_END, SNAP_MAGIC_LEN);
	snap_put64(buf + META_HDR + blen + 8,
		   XXH3_64bits(buf, META_HDR + blen + 8));
	*bufp = buf;
	*lenp = total;
	return 0;
}

/* ================================================================ decode */

struct dec {
	const char *name;
	struct sl_snap_err *err;
	char where[160]; /* JSON position for messages */
};

#define DERR(d, rc, ...) __sl_snap_errf((d)->err, (d)->name, rc, __VA_ARGS__)

static int get_u64(struct dec *d, json_t *o, const char *key, uint64_t max,
		   uint64_t *v)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j))
		return DERR(d, -EBADMSG, "%s.%s: missing or not an integer",
			    d->where, key);
	if (json_integer_value(j) < 0 || (uint64_t)json_integer_value(j) > max)
		return DERR(d, -EINVAL, "%s.%s: %lld out of range", d->where, key,
			    (long long)json_integer_value(j));
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static int get_str(struct dec *d, json_t *o, const char *key, const char **s)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_string(j))
		return DERR(d, -EBADMSG, "%s.%s: missing or not a string",
			    d->where, key);
	/* an embedded NUL would make the C string lie about the value */
	if (strlen(json_string_value(j)) != json_string_length(j))
		return DERR(d, -EINVAL, "%s.%s: contains a NUL character",
			    d->where, key);
	*s = json_string_value(j);
	return 0;
}

static int get_hex64(struct dec *d, json_t *o, const char *key, uint64_t *v)
{
	const char *s;
	int rc = get_str(d, o, key, &s);

	if (rc < 0)
		return rc;
	*v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int x = c >= '0' && c <= '9' ? c - '0' :
			c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (x < 0)
			return DERR(d, -EBADMSG, "%s.%s: not 16 hex digits",
				    d->where, key);
		*v = *v << 4 | (uint64_t)x;
	}
	if (s[16] != '\0')
		return DERR(d, -EBADMSG, "%s.%s: not 16 hex digits", d->where, key);
	return 0;
}

static json_t *get_array(struct dec *d, json_t *o, const char *key)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_array(j)) {
		DERR(d, -EBADMSG, "%s.%s: missing or not an array", d->where, key);
		return NULL;
	}
	return j;
}

static int decode_file(struct dec *d, struct sl_snap_metadata *m, int op,
		       uint32_t t, json_t *fo)
{
	struct sl_snap_file_ref ref;
	const char *path, *type;
	uint64_t v;
	int rc;

	memset(&ref, 0, sizeof(ref));
	if (!json_is_object(fo))
		return DERR(d, -EBADMSG, "%s: not an object", d->where);
	if ((rc = get_str(d, fo, "path", &path)) < 0 ||
	    (rc = get_str(d, fo, "type", &type)) < 0)
		return rc;
	if (strlen(path) >= sizeof(ref.path) ||
	    sl_snap_path_check(path, m->kind == SL_SNAP_CHECKPOINT) < 0)
		return DERR(d, -EINVAL,
			    "%s.path \"%.*s\" escapes the %s directory or is not a plain file name",
			    d->where, 100, path,
			    m->kind == SL_SNAP_CHECKPOINT ?
				    "checkpoint (or shared)" : "savepoint");
	strcpy(ref.path, path);
	if (strcmp(type, "keyed") == 0)
		ref.type = SL_SNAP_FILE_KEYED;
	else if (strcmp(type, "channel") == 0)
		ref.type = SL_SNAP_FILE_CHANNEL;
	else
		return DERR(d, -EBADMSG, "%s.type: unknown file type", d->where);
	if ((rc = get_u64(d, fo, "checkpoint_id", m->checkpoint_id,
			  &ref.checkpoint_id)) < 0 ||
	    (rc = get_u64(d, fo, "size", INT64_MAX, &ref.size)) < 0 ||
	    (rc = get_hex64(d, fo, "xxh3", &ref.xxh3)) < 0 ||
	    (rc = get_u64(d, fo, "kg_first", 65535, &v)) < 0)
		return rc;
	ref.kg_first = (uint32_t)v;
	if ((rc = get_u64(d, fo, "kg_count", 65536, &v)) < 0)
		return rc;
	ref.kg_count = (uint32_t)v;
	rc = sl_snap_meta_add_file(m, op, t, &ref);
	if (rc == -EINVAL)
		return DERR(d, -EINVAL,
			    "%s: inconsistent file reference \"%s\" (checkpoint id, type or key groups)",
			    d->where, ref.path);
	if (rc < 0)
		return DERR(d, rc, "%s: %s", d->where, strerror(-rc));
	return 0;
}

static int decode_subtask(struct dec *d, struct sl_snap_metadata *m, int op,
			  uint32_t t, json_t *so)
{
	char base[sizeof(d->where)];
	json_t *files, *blobs, *fin;
	uint64_t idx;
	int rc;

	if (!json_is_object(so))
		return DERR(d, -EBADMSG, "%s: not an object", d->where);
	if ((rc = get_u64(d, so, "subtask", UINT32_MAX, &idx)) < 0)
		return rc;
	if (idx != t)
		return DERR(d, -EBADMSG, "%s.subtask is %llu, expected %u",
			    d->where, (unsigned long long)idx, t);
	fin = json_object_get(so, "finished");
	if (fin != NULL && !json_is_boolean(fin))
		return DERR(d, -EBADMSG, "%s.finished: not a boolean", d->where);
	if (json_is_true(fin))
		sl_snap_meta_set_finished(m, op, t);
	if ((files = get_array(d, so, "files")) == NULL ||
	    (blobs = get_array(d, so, "operator_state")) == NULL)
		return -EBADMSG;
	if (json_array_size(files) > META_MAX_FILES ||
	    json_array_size(blobs) > META_MAX_BLOBS)
		return DERR(d, -EINVAL, "%s: too many files or blobs", d->where);
	memcpy(base, d->where, sizeof(base));
	for (size_t f = 0; f < json_array_size(files); f++) {
		/* a truncated location in a message is harmless */
		if (snprintf(d->where, sizeof(d->where), "%s.files[%zu]", base, f) < 0)
			return -EINVAL;
		if ((rc = decode_file(d, m, op, t, json_array_get(files, f))) < 0)
			return rc;
	}
	for (size_t b = 0; b < json_array_size(blobs); b++) {
		json_t *j = json_array_get(blobs, b);
		uint8_t *data;
		size_t len;

		if (!json_is_string(j))
			return DERR(d, -EBADMSG, "%s.operator_state[%zu]: not a string",
				    base, b);
		rc = b64_decode(json_string_value(j), json_string_length(j),
				&data, &len);
		if (rc < 0)
			return DERR(d, rc == -ENOMEM ? rc : -EBADMSG,
				    "%s.operator_state[%zu]: %s", base, b,
				    rc == -E2BIG ? "blob too large" :
				    rc == -ENOMEM ? "out of memory" : "bad base64");
		rc = sl_snap_meta_add_blob(m, op, t, data, len);
		free(data);
		if (rc < 0)
			return DERR(d, rc, "%s.operator_state[%zu]: %s", base, b,
				    strerror(-rc));
	}
	memcpy(d->where, base, sizeof(base));
	return 0;
}

static int decode_operator(struct dec *d, struct sl_snap_metadata *m,
			   json_t *oo)
{
	char base[sizeof(d->where)];
	const char *uid, *type = NULL;
	uint64_t par, maxp;
	json_t *subs;
	int op, rc;

	if (!json_is_object(oo))
		return DERR(d, -EBADMSG, "%s: not an object", d->where);
	if ((rc = get_str(d, oo, "uid", &uid)) < 0 ||
	    (rc = get_u64(d, oo, "max_parallelism", SL_MAX_PARALLELISM_LIMIT,
			  &maxp)) < 0 ||
	    (rc = get_u64(d, oo, "parallelism", maxp, &par)) < 0)
		return rc;
	if ((subs = get_array(d, oo, "subtasks")) == NULL)
		return -EBADMSG;
	/* compare before allocating: parallelism subtasks are only allocated
	 * when the input really lists that many */
	if (json_array_size(subs) != par)
		return DERR(d, -EBADMSG, "%s: %zu subtasks listed, parallelism %llu",
			    d->where, json_array_size(subs),
			    (unsigned long long)par);
	op = sl_snap_meta_add_operator(m, uid, (uint32_t)par, (uint32_t)maxp);
	if (op < 0)
		return DERR(d, op == -ENOMEM ? op : -EINVAL,
			    "%s: operator \"%.*s\": %s", d->where, 100, uid,
			    op == -EEXIST ? "uid listed twice" :
			    op == -ENOMEM ? "out of memory" :
					    "bad uid or parallelism");
	if (json_object_get(oo, "type") != NULL &&
	    ((rc = get_str(d, oo, "type", &type)) < 0 ||
	     sl_snap_meta_set_type(m, op, type) < 0))
		return rc < 0 ? rc : DERR(d, -EINVAL, "%s.type: not 1..%d bytes of UTF-8",
					  d->where, SL_SNAP_TYPE_MAX - 1);
	memcpy(base, d->where, sizeof(base));
	for (uint32_t t = 0; t < par; t++) {
		if (snprintf(d->where, sizeof(d->where), "%s.subtasks[%u]", base, t) < 0)
			return -EINVAL;
		if ((rc = decode_subtask(d, m, op, t, json_array_get(subs, t))) < 0)
			return rc;
	}
	memcpy(d->where, base, sizeof(base));
	return 0;
}

static int decode_body(struct dec *d, json_t *root,
		       struct sl_snap_metadata **out)
{
	struct sl_snap_metadata *m = NULL;
	const char *kind, *job_name;
	uint64_t version, id, job_id;
	json_t *ops, *stats, *tt;
	const char *bad = NULL;
	int rc;

	snprintf(d->where, sizeof(d->where), "metadata");
	if (!json_is_object(root))
		return DERR(d, -EBADMSG, "body is not a JSON object");
	if ((rc = get_u64(d, root, "format_version", UINT32_MAX, &version)) < 0 ||
	    (rc = get_u64(d, root, "checkpoint_id", INT64_MAX, &id)) < 0 ||
	    (rc = get_str(d, root, "kind", &kind)) < 0 ||
	    (rc = get_str(d, root, "job_name", &job_name)) < 0 ||
	    (rc = get_hex64(d, root, "job_id", &job_id)) < 0)
		return rc;
	if (version != SL_SNAP_FORMAT_VERSION)
		return DERR(d, -EBADMSG, "body format_version %llu disagrees with the header",
			    (unsigned long long)version);
	tt = json_object_get(root, "trigger_time_ns");
	if (!json_is_integer(tt))
		return DERR(d, -EBADMSG, "metadata.trigger_time_ns: missing or not an integer");
	if (strcmp(kind, "checkpoint") != 0 && strcmp(kind, "savepoint") != 0)
		return DERR(d, -EBADMSG, "metadata.kind: unknown kind");
	m = sl_snap_meta_create(id, strcmp(kind, "savepoint") == 0 ?
				SL_SNAP_SAVEPOINT : SL_SNAP_CHECKPOINT,
				job_name, job_id, json_integer_value(tt));
	if (m == NULL)
		return DERR(d, errno == ENOMEM ? -ENOMEM : -EINVAL,
			    "bad checkpoint id or job name");
	if ((ops = get_array(d, root, "operators")) == NULL) {
		rc = -EBADMSG;
		goto fail;
	}
	if (json_array_size(ops) > META_MAX_OPERATORS) {
		rc = DERR(d, -EINVAL, "too many operators");
		goto fail;
	}
	for (size_t i = 0; i < json_array_size(ops); i++) {
		snprintf(d->where, sizeof(d->where), "operators[%zu]", i);
		if ((rc = decode_operator(d, m, json_array_get(ops, i))) < 0)
			goto fail;
	}
	snprintf(d->where, sizeof(d->where), "stats");
	stats = json_object_get(root, "stats");
	if (stats != NULL) {
		uint64_t v;

		if (!json_is_object(stats)) {
			rc = DERR(d, -EBADMSG, "stats: not an object");
			goto fail;
		}
#define STAT(f)                                                        \
	if (json_object_get(stats, #f) != NULL) {                     \
		if ((rc = get_u64(d, stats, #f, INT64_MAX, &v)) < 0) \
			goto fail;                                    \
		m->stats.f = v;                                       \
	}
		STAT(duration_ns)
		STAT(alignment_ns)
		STAT(sync_ns)
		STAT(async_ns)
#undef STAT
	}
	/* derived counts are recomputed, never trusted */
	compute_stats(m, &m->stats);
	if ((rc = check_duplicates(m, &bad)) < 0) {
		if (rc == -EINVAL)
			rc = DERR(d, -EINVAL,
				  "\"%s\" is referenced twice (or with different sizes/checksums)",
				  bad);
		else
			rc = DERR(d, rc, "out of memory");
		goto fail;
	}
	*out = m;
	return 0;
fail:
	sl_snap_meta_free(m);
	return rc;
}

int sl_snap_meta_decode(const void *buf, size_t len, const char *name,
			struct sl_snap_metadata **out, struct sl_snap_err *err)
{
	const uint8_t *p = buf;
	struct dec d = { name ? name : SL_SNAP_METADATA_NAME, err, "" };
	json_error_t jerr;
	uint64_t blen;
	uint32_t version;
	json_t *root;
	int rc;

	*out = NULL;
	if (len < META_HDR + META_TRAILER)
		return DERR(&d, -EBADMSG, "truncated (%zu bytes)", len);
	if (memcmp(p, SNAP_MAGIC_META, SNAP_MAGIC_LEN) != 0)
		return DERR(&d, -EBADMSG, "not a metadata file (bad magic)");
	if (!snap_sum_ok(snap_get64(p + 24), XXH3_64bits(p, 24)))
		return DERR(&d, -EBADMSG, "header checksum mismatch");
	version = snap_get32(p + 8);
	if (version != SL_SNAP_FORMAT_VERSION)
		return DERR(&d, -ENOTSUP, "format version %u, this build reads %u",
			    version, SL_SNAP_FORMAT_VERSION);
	blen = snap_get64(p + 16);
	if (snap_get32(p + 12) != 0)
		return DERR(&d, -EBADMSG, "reserved header field is not 0");
	if (blen != len - META_HDR - META_TRAILER)
		return DERR(&d, -EBADMSG,
			    "truncated or padded: body of %llu bytes in a %zu-byte file",
			    (unsigned long long)blen, len);
	if (memcmp(p + META_HDR + blen, SNAP_MAGIC_META_END, SNAP_MAGIC_LEN) != 0 ||
	    !snap_sum_ok(snap_get64(p + META_HDR + blen + 8),
			 XXH3_64bits(p, META_HDR + blen + 8)))
		return DERR(&d, -EBADMSG, "checksum mismatch");
	root = json_loadb((const char *)p + META_HDR, blen,
			  JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return DERR(&d, -EBADMSG, "body is not valid JSON: %s (line %d)",
			    jerr.text, jerr.line);
	rc = decode_body(&d, root, out);
	json_decref(root);
	return rc;
}

/* ========================================================== file access */

/* "<last component of dir>/_metadata" for messages */
static void meta_display_name(const char *dir, char *buf, size_t len)
{
	size_t n = strlen(dir);
	const char *b;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	b = dir + n;
	while (b > dir && b[-1] != '/')
		b--;
	snprintf(buf, len, "%.*s/%s", (int)(dir + n - b), b,
		 SL_SNAP_METADATA_NAME);
}

static bool meta_has_shared(const struct sl_snap_metadata *m)
{
	for (uint32_t i = 0; i < m->n_operators; i++)
		for (uint32_t t = 0; t < m->operators[i].parallelism; t++) {
			const struct sl_snap_subtask_meta *st =
				&m->operators[i].subtasks[t];

			for (uint32_t f = 0; f < st->n_files; f++)
				if (path_is_shared(st->files[f].path))
					return true;
		}
	return false;
}

int sl_snap_meta_write(const char *dir, const struct sl_snap_metadata *m,
		       struct sl_snap_err *err)
{
	char final[4096], tmp[4096], name[300];
	struct stat st;
	void *buf = NULL;
	size_t len;
	int fd = -1, rc;

	meta_display_name(dir, name, sizeof(name));
	if ((size_t)snprintf(final, sizeof(final), "%s/%s", dir,
			     SL_SNAP_METADATA_NAME) >= sizeof(final) ||
	    sl_io_tmp_path(final, tmp, sizeof(tmp)) < 0)
		return __sl_snap_errf(err, name, -ENAMETOOLONG, "path too long");
	if (lstat(final, &st) == 0)
		return __sl_snap_errf(err, name, -EEXIST,
				      "already exists; a complete checkpoint is never overwritten");
	if ((rc = sl_snap_meta_encode(m, &buf, &len)) < 0)
		return __sl_snap_errf(err, name, rc, "cannot encode: %s",
				      strerror(-rc));
	if (m->kind == SL_SNAP_CHECKPOINT && meta_has_shared(m)) {
		char parent[4096], shared[4096];

		/* the shared files were created in another directory: make
		 * their names durable before the metadata names them */
		if ((rc = sl_io_dirname(dir, parent, sizeof(parent))) < 0 ||
		    (size_t)snprintf(shared, sizeof(shared), "%s/%s", parent,
				     SL_SNAP_SHARED_DIR) >= sizeof(shared)) {
			rc = __sl_snap_errf(err, name, -ENAMETOOLONG, "path too long");
			goto out;
		}
		if ((rc = sl_io_fsync_dir(shared)) < 0) {
			rc = __sl_snap_errf(err, name, rc, "cannot fsync %s: %s",
					    shared, strerror(-rc));
			goto out;
		}
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = __sl_snap_errf(err, name, -errno, "cannot create %s: %s", tmp,
				    strerror(errno));
		goto out;
	}
	if ((rc = sl_io_write_all(fd, buf, len)) < 0) {
		rc = __sl_snap_errf(err, name, rc, "write failed: %s", strerror(-rc));
		goto unlink_tmp;
	}
	if (fsync(fd) < 0) {
		rc = __sl_snap_errf(err, name, -errno, "fsync failed: %s",
				    strerror(errno));
		goto unlink_tmp;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		rc = __sl_snap_errf(err, name, -errno, "close failed: %s",
				    strerror(errno));
		goto unlink_tmp;
	}
	sl_crash_point("metadata-rename");
	if ((rc = sl_io_publish(tmp, final)) < 0) {
		struct stat ts;

		/* rename failed: the temp is still there; the directory fsync
		 * failed: it is renamed, and the caller disposes the
		 * checkpoint since its durability is unknown */
		__sl_snap_errf(err, name, rc, "publish failed: %s", strerror(-rc));
		if (lstat(tmp, &ts) == 0)
			unlink(tmp);
		goto out;
	}
	goto out;
unlink_tmp:
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int sl_snap_meta_load(const char *dir, struct sl_snap_metadata **out,
		      struct sl_snap_err *err)
{
	char path[4096], name[300];
	struct stat st;
	uint8_t *buf = NULL;
	size_t done = 0;
	int fd, rc;

	*out = NULL;
	meta_display_name(dir, name, sizeof(name));
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
			     SL_SNAP_METADATA_NAME) >= sizeof(path))
		return __sl_snap_errf(err, name, -ENAMETOOLONG, "path too long");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return __sl_snap_errf(err, name, -errno, "%s",
				      errno == ENOENT ? "missing (checkpoint incomplete)" :
				      errno == ELOOP ? "is a symlink" :
				      strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = __sl_snap_errf(err, name, -errno, "cannot stat: %s",
				    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = __sl_snap_errf(err, name, -EBADMSG, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > SL_SNAP_META_MAX) {
		rc = __sl_snap_errf(err, name, -EFBIG, "%lld bytes, more than %u",
				    (long long)st.st_size, SL_SNAP_META_MAX);
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (buf == NULL) {
		rc = __sl_snap_errf(err, name, -ENOMEM, "out of memory");
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = __sl_snap_errf(err, name, -errno, "read error: %s",
					    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	rc = sl_snap_meta_decode(buf, done, name, out, err);
out:
	free(buf);
	close(fd);
	return rc;
}
