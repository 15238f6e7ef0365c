/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * window-aggregate: keyed event-time windows (tumbling and sliding) with
 * count/sum/min/max, Flink's WindowOperator + EventTimeTrigger semantics.
 *
 * Windows are [start, start + size) with start a multiple of the slide
 * (tumbling: slide = size), aligned to the epoch.  For a window W:
 *
 *   maxTimestamp(W)  = end - 1
 *   fires            when the watermark >= end - 1
 *   cleanup time     = end - 1 + allowed_lateness; state is deleted when
 *                      the watermark reaches it
 *   late             a record is dropped for W when
 *                      end - 1 + allowed_lateness <= watermark (i.e. W was
 *                      already cleaned up); a record dropped for every
 *                      window it belongs to counts in t->late_dropped
 *   re-fire          a record that arrives after W fired but before its
 *                      cleanup updates W and re-emits W's row at once
 *
 * The watermark compared against is the one in force before the batch
 * (t->watermark): a batch's watermark applies after its records.
 *
 * State: one sl_kstate entry per (key, window): key = key field bytes ||
 * window start (int64), value = aggregate slots (aggregate_pvt.h).  Its
 * 64-bit hash keeps the high 32 bits of the key's hash, which pick the key
 * group (so every window of a key lives in the key group the hash
 * partitioner routed the key to), and mixes the window start into the low
 * 32 bits, which spread the entries inside the key group.
 *
 * Timers: instead of scanning the table when the watermark moves, each
 * subtask keeps its pending windows sorted by start, and each window the
 * list of (hash, key) that have state in it (appended when the entry is
 * created).  Firing a window reads exactly its keys; cleanup deletes
 * exactly its keys.  In-order input touches the newest window(s) only, so
 * the window lookup is cached.  A firing that would emit more than
 * sl_emit_budget() rows stops and returns SL_MORE; the runtime calls again
 * with the same watermark and the firing resumes where it stopped.
 *
 * End of input (drain) arrives as watermark SL_WATERMARK_MAX first, which
 * fires and cleans up every window; a stop without drain drops open
 * windows without output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>

#include "aggregate_pvt.h"
#include "sluice/keygroup.h"
#include "sluice/keyed_state.h"
#include "sluice/operators.h"

#define WIN_BURST 64
/* windows one record may fall into (size / slide), bounded to keep a
 * record's work bounded */
#define WIN_MAX_PER_RECORD 4096
#define WIN_KEY_MAX (SL_KSTATE_KEY_MAX - 8)

/* One pending window of this subtask. */
struct window {
	int64_t start;
	uint32_t n_keys;
	uint32_t cap_keys;
	uint32_t fire_pos;	/* keys already emitted by an unfinished firing */
	uint32_t deleted;	/* keys [0, deleted) already deleted */
	bool fired;
	uint8_t *keys;		/* n_keys x entry_size: uint64 hash, key bytes */
};

struct win_op {
	struct sl_kstate *st;
	struct sl_agg_plan agg;
	uint16_t key_off;
	uint16_t key_size;
	uint16_t ts_off;
	uint16_t entry_size;	/* per-window key list entry */
	uint16_t out_size;
	uint16_t out_start_off;
	uint16_t out_end_off;
	bool zero_fill;		/* output rows have padding to clear */
	bool sliding;
	int64_t size;
	int64_t slide;
	int64_t lateness;
	uint32_t max_parallelism;

	/* pending windows, sorted by start */
	struct window *win;
	uint32_t n_win;
	uint32_t cap_win;
	uint32_t last_win;	/* index of the last window looked up */

	/* start of the last window (by slide) of the last record's ts */
	int64_t last_start;
	bool last_start_valid;
};

/* One (record, window) pair of a burst. */
struct win_item {
	const uint8_t *rec;
	int64_t start;
	uint64_t hash;
	uint16_t kg;
};

/* ------------------------------------------------------------- planning */

static int win_schema(const struct sl_window_conf *c,
		      const struct sl_schema *in, struct sl_schema *out,
		      struct sl_agg_plan *agg, const struct sl_field **keyp,
		      const struct sl_field **tsp, char *err, size_t errlen)
{
	const struct sl_field *key, *ts;

	if (c->kind != SL_WINDOW_TUMBLING && c->kind != SL_WINDOW_SLIDING) {
		snprintf(err, errlen, "unknown window kind %d (tumbling or sliding)",
			 (int)c->kind);
		return -EINVAL;
	}
	if (c->size_ns <= 0) {
		snprintf(err, errlen, "window size must be > 0 ns, is %lld",
			 (long long)c->size_ns);
		return -EINVAL;
	}
	if (c->kind == SL_WINDOW_SLIDING) {
		if (c->slide_ns <= 0) {
			snprintf(err, errlen,
				 "sliding window: slide must be > 0 ns, is %lld",
				 (long long)c->slide_ns);
			return -EINVAL;
		}
		/* ceil(size / slide) without overflowing size + slide */
		int64_t per = c->size_ns / c->slide_ns +
			      (c->size_ns % c->slide_ns != 0);

		if (per > WIN_MAX_PER_RECORD) {
			snprintf(err, errlen,
				 "sliding window: size/slide = %lld windows per record; at most %d (raise the slide)",
				 (long long)per, WIN_MAX_PER_RECORD);
			return -EINVAL;
		}
	}
	if (c->allowed_lateness_ns < 0 ||
	    c->allowed_lateness_ns > INT64_MAX - c->size_ns) {
		snprintf(err, errlen,
			 "allowed lateness must be >= 0 ns and size + lateness must fit 64 bits; is %lld",
			 (long long)c->allowed_lateness_ns);
		return -EINVAL;
	}
	key = sl_plan_field(in, c->key, "key field", err, errlen);
	if (key == NULL)
		return -EINVAL;
	if (key->size > WIN_KEY_MAX) {
		snprintf(err, errlen,
			 "key field '%s' is %u bytes; window state takes keys of at most %d bytes",
			 key->name, key->size, WIN_KEY_MAX);
		return -EINVAL;
	}
	ts = sl_plan_field(in, c->ts_field, "timestamp field", err, errlen);
	if (ts == NULL)
		return -EINVAL;
	if (ts->type != SL_TYPE_TIMESTAMP && ts->type != SL_TYPE_I64) {
		snprintf(err, errlen,
			 "timestamp field '%s' is %s; event time needs a timestamp (or i64 nanoseconds) field",
			 ts->name, sl_type_name(ts->type));
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	if (sl_plan_add_field(out, key->name, key->type, key->size, err,
			      errlen) < 0 ||
	    sl_plan_add_field(out, "window_start", SL_TYPE_TIMESTAMP, 0, err,
			      errlen) < 0 ||
	    sl_plan_add_field(out, "window_end", SL_TYPE_TIMESTAMP, 0, err,
			      errlen) < 0)
		return -EINVAL;
	if (sl_agg_plan_build(agg, c->aggs, c->n_aggs, in, out, err, errlen) < 0)
		return -EINVAL;
	*keyp = key;
	*tsp = ts;
	return 0;
}

static int win_plan(void *conf_, const struct sl_schema *const in[],
		    unsigned n_in, struct sl_schema *out, char *err,
		    size_t errlen)
{
	const struct sl_field *key, *ts;
	struct sl_agg_plan agg;

	(void)n_in;
	return win_schema(conf_, in[0], out, &agg, &key, &ts, err, errlen);
}

static int win_open(struct sl_task *t, void **opp)
{
	const struct sl_window_conf *c = t->info.conf;
	struct win_op *op = calloc(1, sizeof(*op));
	const struct sl_field *key, *ts;
	struct sl_schema out;
	char err[256];
	unsigned covered = 0;

	if (op == NULL)
		return -ENOMEM;
	if (win_schema(c, t->info.in_schema[0], &out, &op->agg, &key, &ts, err,
		       sizeof(err)) < 0) {
		sl_task_error(t, "%s", err);
		free(op);
		return -EINVAL;
	}
	op->key_off = key->offset;
	op->key_size = key->size;
	op->ts_off = ts->offset;
	op->entry_size = (uint16_t)(8 + RTE_ALIGN_CEIL(key->size, 8));
	op->out_size = out.record_size;
	op->out_start_off = out.fields[1].offset;
	op->out_end_off = out.fields[2].offset;
	for (unsigned i = 0; i < out.nfields; i++)
		covered += out.fields[i].size;
	op->zero_fill = covered < out.record_size;
	op->sliding = c->kind == SL_WINDOW_SLIDING && c->slide_ns != c->size_ns;
	op->size = c->size_ns;
	op->slide = op->sliding ? c->slide_ns : c->size_ns;
	op->lateness = c->allowed_lateness_ns;
	op->max_parallelism = t->info.max_parallelism;
	op->last_win = UINT32_MAX;
	op->st = sl_kstate_create((uint16_t)t->info.kg_first,
				  (uint16_t)t->info.kg_count,
				  (uint16_t)(op->key_size + 8),
				  op->agg.value_size);
	if (op->st == NULL) {
		int rc = -errno;
		sl_task_error(t, "cannot create keyed state: %s", strerror(errno));
		free(op);
		return rc;
	}
	*opp = op;
	return 0;
}

/* ------------------------------------------------------------- helpers */

/* Largest window start that satisfies start + span <= wm, i.e.
 * start <= wm - span; false if no start does (wm too small). */
static inline bool start_limit(int64_t wm, int64_t span, int64_t *limit)
{
	if (wm == SL_WATERMARK_MIN)
		return false;
	if (__builtin_sub_overflow(wm, span, limit))
		return false;
	return true;
}

/* Hash of a record's key; u64 keys get xxh3's fixed-length path inlined. */
static inline uint64_t win_key_hash(const struct win_op *op, const uint8_t *rec)
{
	if (op->key_size == 8)
		return sl_key_hash(rec + op->key_off, 8);
	return sl_key_hash(rec + op->key_off, op->key_size);
}

/* Hash of (key, window): key group bits from the key, spread by start. */
static inline uint64_t win_hash(uint64_t key_hash, int64_t start)
{
	uint64_t m = key_hash ^ ((uint64_t)start * 0x9E3779B97F4A7C15ull);

	m ^= m >> 32;
	m *= 0xD6E8FEB86659FD93ull;
	m ^= m >> 32;
	return (key_hash & 0xFFFFFFFF00000000ull) | (m & 0xFFFFFFFFull);
}

static inline void make_ckey(const struct win_op *op, uint8_t *ckey,
			     const void *key, int64_t start)
{
	memcpy(ckey, key, op->key_size);
	memcpy(ckey + op->key_size, &start, 8);
}

static inline void write_row(const struct win_op *op, struct sl_task *t,
			     const void *key, int64_t start, const uint64_t *v)
{
	uint8_t *o = sl_emit(t);
	/* wraps only for windows past year 2262, which no timestamp reaches */
	int64_t end = (int64_t)((uint64_t)start + (uint64_t)op->size);

	if (op->zero_fill)
		memset(o, 0, op->out_size);
	memcpy(o, key, op->key_size);
	memcpy(o + op->out_start_off, &start, 8);
	memcpy(o + op->out_end_off, &end, 8);
	sl_agg_write(&op->agg, v, o);
}

/* The pending window starting at `start`, created if missing. */
static struct window *window_get(struct win_op *op, int64_t start,
				 int64_t fire_limit, bool any_fired)
{
	uint32_t lo = 0, hi = op->n_win;
	struct window *w;

	if (op->last_win < op->n_win && op->win[op->last_win].start == start)
		return &op->win[op->last_win];
	/* in-order input creates windows at the end: check it first */
	if (op->n_win > 0 && op->win[op->n_win - 1].start < start) {
		lo = op->n_win;
	} else {
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (op->win[mid].start < start)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < op->n_win && op->win[lo].start == start) {
			op->last_win = lo;
			return &op->win[lo];
		}
	}
	if (op->n_win == op->cap_win) {
		uint32_t cap = op->cap_win ? op->cap_win * 2 : 16;
		struct window *nw = realloc(op->win, cap * sizeof(*nw));

		if (nw == NULL)
			return NULL;
		op->win = nw;
		op->cap_win = cap;
	}
	memmove(&op->win[lo + 1], &op->win[lo],
		(op->n_win - lo) * sizeof(*op->win));
	op->n_win++;
	w = &op->win[lo];
	*w = (struct window){
		.start = start,
		/* created after its firing time (a late record within the
		 * allowed lateness): it has fired in effect, its row goes out
		 * with the record */
		.fired = any_fired && start <= fire_limit,
	};
	op->last_win = lo;
	return w;
}

static int window_add_key(struct win_op *op, int64_t start, uint64_t hash,
			  const void *key, int64_t fire_limit, bool any_fired)
{
	struct window *w = window_get(op, start, fire_limit, any_fired);
	uint8_t *e;

	if (w == NULL)
		return -ENOMEM;
	if (w->n_keys == w->cap_keys) {
		uint32_t cap = w->cap_keys ? w->cap_keys * 2 : 64;
		uint8_t *nk = realloc(w->keys, (size_t)cap * op->entry_size);

		if (nk == NULL)
			return -ENOMEM;
		w->keys = nk;
		w->cap_keys = cap;
	}
	e = w->keys + (size_t)w->n_keys++ * op->entry_size;
	memcpy(e, &hash, 8);
	memcpy(e + 8, key, op->key_size);
	return 0;
}

static void window_release(struct window *w)
{
	free(w->keys);
	w->keys = NULL;
	w->n_keys = w->cap_keys = 0;
}

/* ------------------------------------------------------------- records */

struct burst_ctx {
	int64_t fire_limit;	/* windows with start <= it have fired */
	bool any_fired;
	unsigned n;
	struct win_item item[WIN_BURST];
	uint8_t ckey[WIN_BURST][SL_KSTATE_KEY_MAX];
};

static int flush_burst(struct win_op *op, struct sl_task *t,
		       struct burst_ctx *bc)
{
	uint64_t hashes[WIN_BURST];
	uint16_t kgs[WIN_BURST];
	void *vals[WIN_BURST];
	bool created[WIN_BURST];
	unsigned int done;

	for (unsigned i = 0; i < bc->n; i++) {
		hashes[i] = bc->item[i].hash;
		kgs[i] = bc->item[i].kg;
	}
	done = sl_kstate_upsert_burst(op->st, bc->n, kgs, hashes, bc->ckey,
				      sizeof(bc->ckey[0]), vals, created);
	/* in burst order: a (key, window) repeated in the burst has the same
	 * value pointer each time, so the updates accumulate */
	for (unsigned i = 0; i < done; i++) {
		const struct win_item *it = &bc->item[i];
		const uint8_t *key = it->rec + op->key_off;
		uint64_t *v = vals[i];

		if (op->agg.count_only)
			v[0]++;
		else
			sl_agg_update(&op->agg, v, it->rec);
		if (unlikely(bc->any_fired && it->start <= bc->fire_limit))
			write_row(op, t, key, it->start, v);
		/* the value pointers stay valid: window_add_key() does not
		 * touch the state */
		if (unlikely(created[i]) &&
		    window_add_key(op, it->start, it->hash, key,
				   bc->fire_limit, bc->any_fired) < 0) {
			sl_task_error(t, "window index: out of memory");
			bc->n = 0;
			return -ENOMEM;
		}
	}
	if (unlikely(done < bc->n)) {
		const struct win_item *it = &bc->item[done];
		int rc = errno == ERANGE ? -ERANGE : -ENOMEM;

		if (rc == -ERANGE)
			sl_task_error(t,
				      "a record of key group %u reached subtask %u, which owns key groups [%u, %u): connect this operator's input with hash partitioning on its key field",
				      it->kg, t->info.index, t->info.kg_first,
				      t->info.kg_first + t->info.kg_count);
		else
			sl_task_error(t, "keyed state: out of memory");
		bc->n = 0;
		return rc;
	}
	bc->n = 0;
	return 0;
}

static inline void add_item(const struct win_op *op, struct burst_ctx *bc,
			    const uint8_t *rec, int64_t start,
			    uint64_t key_hash, uint16_t kg)
{
	struct win_item *it = &bc->item[bc->n];

	it->rec = rec;
	it->start = start;
	it->hash = win_hash(key_hash, start);
	it->kg = kg;
	make_ckey(op, bc->ckey[bc->n], rec + op->key_off, start);
	bc->n++;
}

static int win_process(void *op_, struct sl_task *t, unsigned input,
		       struct sl_batch *b)
{
	struct win_op *op = op_;
	const uint16_t rs = b->record_size;
	const uint32_t maxp = op->max_parallelism;
	const int64_t wm = t->watermark;
	struct burst_ctx bc;
	int64_t late_limit;	/* windows with start <= it are cleaned up */
	bool any_late;
	uint64_t dropped = 0;
	const uint8_t *rec = b->data;
	int rc;

	(void)input;
	bc.n = 0;
	bc.any_fired = start_limit(wm, op->size - 1, &bc.fire_limit);
	any_late = start_limit(wm, op->size - 1 + op->lateness, &late_limit);
	if (!any_late)
		late_limit = INT64_MIN;

	for (uint32_t r = 0; r < b->count; r++, rec += rs) {
		int64_t ts, last;
		uint64_t kh;
		uint16_t kg;

		memcpy(&ts, rec + op->ts_off, 8);
		/* start of the newest window containing ts */
		if (likely(op->last_start_valid) &&
		    (uint64_t)ts - (uint64_t)op->last_start < (uint64_t)op->slide) {
			last = op->last_start;
		} else {
			int64_t rem = ts % op->slide;

			if (rem < 0)
				rem += op->slide;
			if (unlikely(__builtin_sub_overflow(ts, rem, &last))) {
				dropped++; /* before the first representable window */
				continue;
			}
			op->last_start = last;
			op->last_start_valid = true;
		}

		if (!op->sliding) {
			if (unlikely(any_late && last <= late_limit)) {
				dropped++;
				continue;
			}
			kh = win_key_hash(op, rec);
			kg = sl_key_group(kh, maxp);
			add_item(op, &bc, rec, last, kh, kg);
		} else {
			bool any = false, late = false;
			int64_t s = last;

			kh = win_key_hash(op, rec);
			kg = sl_key_group(kh, maxp);
			/* windows [s, s + size) with s <= ts < s + size, newest
			 * first; unsigned difference: s <= ts always */
			while ((uint64_t)ts - (uint64_t)s < (uint64_t)op->size) {
				if (any_late && s <= late_limit) {
					late = true;
					break; /* older ones are late too */
				}
				any = true;
				add_item(op, &bc, rec, s, kh, kg);
				if (bc.n == WIN_BURST && (rc = flush_burst(op, t, &bc)) < 0)
					return rc;
				if (__builtin_sub_overflow(s, op->slide, &s))
					break;
			}
			/* with slide > size a record may fall into no window
			 * at all (a gap): that is not lateness */
			if (!any && late)
				dropped++;
		}
		if (bc.n == WIN_BURST && (rc = flush_burst(op, t, &bc)) < 0)
			return rc;
	}
	if (bc.n > 0 && (rc = flush_burst(op, t, &bc)) < 0)
		return rc;
	t->late_dropped += dropped;
	return 0;
}

/* -------------------------------------------------------------- firing */

/* Remove the first n windows (all released) from the pending list. */
static void drop_prefix(struct win_op *op, uint32_t n)
{
	if (n == 0)
		return;
	memmove(op->win, op->win + n, (op->n_win - n) * sizeof(*op->win));
	op->n_win -= n;
	op->last_win = UINT32_MAX;
}

/* Hashes, key groups and state keys of keys [from, from + n) of a window,
 * prefetched: firing and cleanup walk a window's keys in bursts so the
 * table's cache misses overlap instead of queueing one by one. */
struct key_burst {
	uint64_t hash[WIN_BURST];
	uint16_t kg[WIN_BURST];
	uint8_t ckey[WIN_BURST][SL_KSTATE_KEY_MAX];
};

static void load_keys(const struct win_op *op, const struct window *w,
		      uint32_t from, unsigned n, struct key_burst *kb)
{
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = w->keys + (size_t)(from + i) * op->entry_size;

		memcpy(&kb->hash[i], e, 8);
		kb->kg[i] = sl_key_group(kb->hash[i], op->max_parallelism);
		make_ckey(op, kb->ckey[i], e + 8, w->start);
	}
	sl_kstate_prefetch_burst(op->st, n, kb->kg, kb->hash);
}

/* Delete keys [w->deleted, n_keys) of a window from the state, then
 * forget the window's key list. */
static int window_cleanup(struct win_op *op, struct window *w)
{
	struct key_burst kb;

	while (w->deleted < w->n_keys) {
		unsigned n = RTE_MIN((uint32_t)WIN_BURST, w->n_keys - w->deleted);

		load_keys(op, w, w->deleted, n, &kb);
		for (unsigned i = 0; i < n; i++) {
			int rc = sl_kstate_delete(op->st, kb.kg[i], kb.hash[i],
						  kb.ckey[i]);
			if (rc < 0 && rc != -ENOENT)
				return rc;
		}
		w->deleted += n;
	}
	window_release(w);
	return 0;
}

/*
 * Emit the rows of a window from key w->fire_pos on, at most `budget`
 * rows; with `delete`, delete each key right after reading it (the window
 * is also due for cleanup: its lines are hot now).
 * @return rows emitted, or a negative errno
 */
static int64_t window_fire(struct win_op *op, struct sl_task *t,
			   struct window *w, uint64_t budget, bool delete)
{
	struct key_burst kb;
	int64_t emitted = 0;

	while (w->fire_pos < w->n_keys && (uint64_t)emitted < budget) {
		unsigned n = RTE_MIN((uint32_t)WIN_BURST, w->n_keys - w->fire_pos);

		load_keys(op, w, w->fire_pos, n, &kb);
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *e = w->keys +
					   (size_t)(w->fire_pos + i) * op->entry_size;
			const uint64_t *v = sl_kstate_get(op->st, kb.kg[i],
							  kb.hash[i], kb.ckey[i]);

			if (unlikely(v == NULL)) {
				sl_task_error(t, "window index and keyed state disagree (window %lld): a bug",
					      (long long)w->start);
				return -EIO;
			}
			write_row(op, t, e + 8, w->start, v);
			if (delete) {
				int rc = sl_kstate_delete(op->st, kb.kg[i],
							  kb.hash[i], kb.ckey[i]);
				if (rc < 0) {
					sl_task_error(t, "window cleanup: %s",
						      strerror(-rc));
					return rc;
				}
			}
		}
		w->fire_pos += n;
		if (delete)
			w->deleted = w->fire_pos;
		emitted += n;
	}
	return emitted;
}

static int win_on_watermark(void *op_, struct sl_task *t, int64_t wm)
{
	struct win_op *op = op_;
	const uint64_t budget = sl_emit_budget(t);
	uint64_t emitted = 0;
	int64_t fire_limit, cleanup_limit;
	bool any_cleanup;
	uint32_t n_clean = 0;
	int rc = 0;

	if (!start_limit(wm, op->size - 1, &fire_limit))
		return 0;
	any_cleanup = start_limit(wm, op->size - 1 + op->lateness,
				  &cleanup_limit);

	for (uint32_t i = 0; i < op->n_win; i++) {
		struct window *w = &op->win[i];
		const bool cleanup = any_cleanup && w->start <= cleanup_limit;

		if (w->start > fire_limit)
			break;
		if (!w->fired) {
			int64_t n;

			if (emitted >= budget) {
				rc = SL_MORE;
				goto out;
			}
			n = window_fire(op, t, w, budget - emitted, cleanup);
			if (n < 0) {
				rc = (int)n;
				goto out;
			}
			emitted += (uint64_t)n;
			if (w->fire_pos < w->n_keys) {
				rc = SL_MORE; /* budget spent inside this window */
				goto out;
			}
			w->fired = true;
		}
		if (cleanup) {
			/* cleanup limit <= fire limit and windows are sorted:
			 * the cleaned-up windows form a prefix */
			rc = window_cleanup(op, w);
			if (rc < 0) {
				sl_task_error(t, "window cleanup: %s", strerror(-rc));
				goto out;
			}
			n_clean++;
		}
	}
out:
	drop_prefix(op, n_clean);
	return rc;
}

static int win_on_end(void *op_, struct sl_task *t, bool drain)
{
	struct win_op *op = op_;

	if (drain && op->n_win > 0)
		return win_on_watermark(op, t, SL_WATERMARK_MAX);
	/* a stop: open windows are dropped, their state with the instance */
	for (uint32_t i = 0; i < op->n_win; i++)
		window_release(&op->win[i]);
	op->n_win = 0;
	return 0;
}

static void win_close(void *op_, struct sl_task *t)
{
	struct win_op *op = op_;

	(void)t;
	for (uint32_t i = 0; i < op->n_win; i++)
		window_release(&op->win[i]);
	free(op->win);
	sl_kstate_free(op->st);
	free(op);
}

/*
 * Checkpoint: every open window's aggregates as keyed state (key = the
 * key bytes + the window start); the timers and per-window key lists are
 * derived from it on restore.  Operator-state blob: i64 watermark of the
 * subtask (which windows had fired), little-endian.
 */
static int win_snapshot(void *op_, struct sl_task *t, struct sl_ckpt_ctx *ck)
{
	struct win_op *op = op_;
	int64_t wm = t->watermark;
	int rc = sl_ckpt_put_blob(ck, &wm, sizeof(wm));

	if (rc < 0)
		return rc;
	return sl_ckpt_put_keyed(ck, op->st, (uint16_t)(op->key_size + 8),
				 op->agg.value_size);
}

struct win_rebuild {
	struct win_op *op;
	int64_t fire_limit;
	bool any_fired;
	int err;
};

static int win_rebuild_entry(const void *key, const void *value, uint64_t hash,
			     void *arg)
{
	struct win_rebuild *rb = arg;
	int64_t start;

	(void)value;
	memcpy(&start, (const uint8_t *)key + rb->op->key_size, 8);
	rb->err = window_add_key(rb->op, start, hash, key, rb->fire_limit,
				 rb->any_fired);
	return rb->err;
}

/*
 * Restore: the windows' aggregates of the key groups this subtask owns,
 * then the pending windows and their key lists rebuilt from them.  The
 * watermark comes back too, so records are judged late, and windows count
 * as fired, as they were: a window whose end the watermark had passed
 * fired already (its state is still there for allowed lateness) and does
 * not fire again.  After a rescale the lowest watermark of the old
 * subtasks is taken (they agree at an aligned checkpoint).
 */
static int win_restore_wm(struct sl_task *t, struct sl_restore_ctx *rc,
			  int ret, const void *data, size_t len, int64_t *wm)
{
	int64_t w;

	if (ret < 0)
		return ret;
	if (len != sizeof(w)) {
		sl_task_error(t, "checkpoint %llu: window state of %zu bytes, expected %zu",
			      (unsigned long long)sl_restore_id(rc), len, sizeof(w));
		return -EBADMSG;
	}
	memcpy(&w, data, sizeof(w));
	*wm = w < *wm ? w : *wm;
	return 0;
}

static int win_restore(void *op_, struct sl_task *t, struct sl_restore_ctx *rc)
{
	struct win_op *op = op_;
	struct win_rebuild rb = { .op = op };
	int64_t wm = SL_WATERMARK_MAX;
	const void *data;
	size_t len;
	int ret;

	if (sl_restore_parallelism(rc) == t->info.parallelism) {
		ret = sl_restore_blob(rc, &data, &len);
		if (ret != -ENOENT &&
		    (ret = win_restore_wm(t, rc, ret, data, len, &wm)) < 0)
			return ret;
	} else {
		for (uint32_t i = 0; i < sl_restore_parallelism(rc); i++) {
			ret = sl_restore_blob_of(rc, i, &data, &len);
			if (ret != -ENOENT &&
			    (ret = win_restore_wm(t, rc, ret, data, len, &wm)) < 0)
				return ret;
		}
	}
	ret = sl_restore_keyed(rc, op->st, (uint16_t)(op->key_size + 8),
			       op->agg.value_size);
	if (ret < 0)
		return ret;
	if (wm != SL_WATERMARK_MAX)
		t->watermark = wm;
	rb.any_fired = start_limit(t->watermark, op->size - 1, &rb.fire_limit);
	for (uint32_t kg = t->info.kg_first; kg < t->info.kg_first + t->info.kg_count; kg++) {
		sl_kstate_foreach(op->st, (uint16_t)kg, win_rebuild_entry, &rb);
		if (rb.err < 0) {
			sl_task_error(t, "window index: out of memory");
			return rb.err;
		}
	}
	return 0;
}

const struct sl_operator_ops sl_op_window_aggregate = {
	.snapshot = win_snapshot,
	.restore = win_restore,
	.type = "window-aggregate",
	.conf_size = sizeof(struct sl_window_conf),
	.min_inputs = 1,
	.max_inputs = 1,
	.plan = win_plan,
	.open = win_open,
	.process = win_process,
	.on_watermark = win_on_watermark,
	.on_end = win_on_end,
	.close = win_close,
};
