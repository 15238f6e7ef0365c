/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One subtask's share of an lcore loop iteration: read input, call the
 * operator, route output through the partitioners, move watermarks and
 * end-of-stream along.
 *
 * Output policy: a batch is sent when full, when the subtask had no input
 * this iteration, when execution.buffer-timeout expired, and before any
 * watermark or end-of-stream, so that those never overtake records.
 */
#include <stdarg.h>
#include <stdio.h>

#include <rte_cycles.h>
#include <rte_pause.h>

#include "job_pvt.h"
#include "sluice/crash_point.h"
#include "sluice/keygroup.h"

static inline struct task *task_of(struct sl_task *t)
{
	return (struct task *)t;
}

void sl_task_error(struct sl_task *pub, const char *fmt, ...)
{
	struct task *t = task_of(pub);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

void sl_task_set_watermark(struct sl_task *t, int64_t watermark)
{
	if (watermark > t->watermark)
		t->watermark = watermark;
}

/* Send one batch whose watermark stamp is already set. */
static inline void send_on(struct task *t, struct sl_channel *ch,
			   struct sl_batch *b)
{
	if (!sl_channel_send(ch, b))
		t->blocked = true;
}

static struct sl_batch *get_batch(struct task *t)
{
	struct sl_batch *b;
	unsigned spins = 0;

	/* The pool is sized for full rings plus one iteration's output, so
	 * this waits only if an operator emits far more than that at once;
	 * downstream keeps consuming, so batches come back. */
	while ((b = sl_batch_get(t->pool, t->pub.out_record_size)) == NULL) {
		for (unsigned i = 0; i < t->n_out_ch; i++)
			sl_channel_flush(t->out_ch[i]);
		if (++spins < 1000)
			rte_pause();
		else
			rte_delay_us_sleep(50);
		if (atomic_load_explicit(&t->job->force, memory_order_relaxed))
			spins = 0;
	}
	return b;
}

static void route_hash(struct task *t, struct out_port *p, struct sl_batch *b)
{
	const uint32_t maxp = t->job->cfg.max_parallelism;
	const uint16_t rs = b->record_size;
	const uint8_t *rec = b->data;

	for (uint32_t i = 0; i < b->count; i++, rec += rs) {
		uint64_t h = sl_key_hash(rec + p->key_off, p->key_size);
		uint16_t d = p->owner[sl_key_group(h, maxp)];
		struct sl_batch *o = p->partial[d];

		if (o == NULL)
			o = p->partial[d] = get_batch(t);
		memcpy(o->data + (size_t)o->count * rs, rec, rs);
		if (++o->count == o->capacity) {
			/* the task's watermark covers all of b, but records of
			 * b not routed yet may follow on this channel: stamp
			 * what held before b */
			o->watermark = p->wm_routed;
			send_on(t, p->ch[d], o);
			p->partial[d] = NULL;
		}
	}
}

/* Route a batch the task owns one reference of; consumes it. */
static void route(struct task *t, struct sl_batch *b)
{
	if (b->count == 0 || t->n_out == 0) {
		sl_batch_put(b);
		return;
	}
	/* stamp once, before the first send makes the batch visible */
	b->watermark = t->pub.watermark;
	if (t->n_out > 1)
		sl_batch_ref(b, t->n_out - 1);
	for (unsigned k = 0; k < t->n_out; k++) {
		struct out_port *p = &t->out[k];

		switch (p->part) {
		case SL_PART_FORWARD:
			send_on(t, p->ch[0], b);
			break;
		case SL_PART_REBALANCE:
			send_on(t, p->ch[p->rr], b);
			if (++p->rr == p->n_ch)
				p->rr = 0;
			break;
		case SL_PART_BROADCAST:
			if (p->n_ch > 1)
				sl_batch_ref(b, p->n_ch - 1);
			for (uint32_t c = 0; c < p->n_ch; c++)
				send_on(t, p->ch[c], b);
			break;
		case SL_PART_HASH:
			if (p->n_ch == 1) {
				send_on(t, p->ch[0], b);
			} else {
				route_hash(t, p, b);
				p->wm_routed = t->pub.watermark;
				sl_batch_put(b);
			}
			break;
		}
	}
}

struct sl_batch *__sl_task_rollover(struct sl_task *pub)
{
	struct task *t = task_of(pub);

	if (pub->out != NULL)
		route(t, pub->out);
	pub->out = get_batch(t);
	return pub->out;
}

void sl_emit_forward(struct sl_task *pub, struct sl_batch *b)
{
	struct task *t = task_of(pub);

	if (pub->out != NULL && pub->out->count > 0) {
		route(t, pub->out);
		pub->out = NULL;
	}
	sl_batch_ref(b, 1);
	pub->records_out += b->count;
	route(t, b);
}

/* Send every partially filled output batch. */
void __sl_task_flush(struct task *t)
{
	if (t->pub.out != NULL) {
		struct sl_batch *b = t->pub.out;
		t->pub.out = NULL;
		route(t, b);
	}
	for (unsigned k = 0; k < t->n_out; k++) {
		struct out_port *p = &t->out[k];
		if (p->part != SL_PART_HASH || p->n_ch == 1)
			continue;
		for (uint32_t c = 0; c < p->n_ch; c++) {
			if (p->partial[c] != NULL) {
				p->partial[c]->watermark = t->pub.watermark;
				send_on(t, p->ch[c], p->partial[c]);
				p->partial[c] = NULL;
			}
		}
	}
	/* Channels that got no data since the watermark advanced learn it
	 * from a header-only batch, behind every record sent before. */
	for (unsigned i = 0; i < t->n_out_ch; i++) {
		struct sl_channel *ch = t->out_ch[i];

		if (ch->wm_sent < t->pub.watermark) {
			struct sl_batch *b = get_batch(t);
			b->kind = SL_BATCH_WATERMARK;
			b->watermark = t->pub.watermark;
			send_on(t, ch, b);
		}
	}
	t->last_flush_tsc = rte_get_tsc_cycles();
}

/* Header-only batch of `kind` on every output channel. */
static void send_control(struct task *t, uint16_t kind, uint32_t flags)
{
	for (unsigned i = 0; i < t->n_out_ch; i++) {
		struct sl_batch *b = get_batch(t);

		b->kind = kind;
		b->flags = flags;
		b->watermark = t->pub.watermark;
		send_on(t, t->out_ch[i], b);
	}
}

static int fail(struct task *t, int rc, const char *what)
{
	if (t->err[0] == '\0')
		snprintf(t->err, sizeof(t->err), "%s failed: %s", what,
			 strerror(-rc));
	__sl_job_fail(t->job, rc, "operator '%s' (%s) subtask %u: %s",
		      t->node->uid, t->ops->type, t->pub.info.index, t->err);
	t->phase = TASK_DONE;
	return rc;
}

static void finish(struct task *t)
{
	__sl_task_flush(t);
	send_control(t, SL_BATCH_END, t->drain ? SL_END_DRAIN : 0);
	t->phase = TASK_DONE;
	atomic_fetch_add(&t->job->tasks_done, 1);
}

/* A subtask that had finished when the restored checkpoint was taken:
 * ends at once (after the in-flight data restored into its channels). */
void __sl_task_end_restored(struct task *t)
{
	t->drain = true;
	send_control(t, SL_BATCH_END, SL_END_DRAIN);
	t->phase = TASK_DONE;
	atomic_fetch_add(&t->job->tasks_done, 1);
}

/* Run on_watermark for t->firing_wm; 1 when done, 0 when more pending. */
static int fire(struct task *t)
{
	int rc = 0;

	if (t->ops->on_watermark != NULL)
		rc = t->ops->on_watermark(t->op, &t->pub, t->firing_wm);
	if (rc < 0)
		return fail(t, rc, "on_watermark");
	if (rc == SL_MORE) {
		t->phase = TASK_FIRING;
		return 0;
	}
	t->pub.watermark = t->firing_wm;
	t->phase = TASK_RUNNING;
	return 1;
}

static void end_now(struct task *t)
{
	int rc = 0;

	if (t->ops->on_end != NULL)
		rc = t->ops->on_end(t->op, &t->pub, t->drain);
	if (rc < 0) {
		fail(t, rc, "on_end");
		return;
	}
	if (rc == SL_MORE) {
		t->phase = TASK_ENDING;
		return;
	}
	finish(t);
}

/* All inputs ended (or the source stopped). */
static void begin_end(struct task *t)
{
	if (t->drain && t->pub.watermark < SL_WATERMARK_MAX) {
		/* records emitted so far carry the last real watermark */
		__sl_task_flush(t);
		/* end of input is end of event time: fire everything */
		t->firing_wm = SL_WATERMARK_MAX;
		if (!fire(t))
			return; /* resumes in TASK_FIRING, then ends below */
	}
	end_now(t);
}

static int poll_source(struct task *t)
{
	int stop = atomic_load_explicit(&t->job->stop, memory_order_relaxed);
	int rc;

	if (stop) {
		t->drain = stop == 2;
		begin_end(t);
		return 1;
	}
	rc = t->ops->poll(t->op, &t->pub);
	if (rc == SL_SOURCE_END) {
		t->drain = true;
		begin_end(t);
		return 1;
	}
	if (rc < 0)
		return fail(t, rc, "poll");
	return rc;
}

static int handle_batch(struct task *t, struct in_port *in, unsigned idx,
			struct sl_batch *b)
{
	uint64_t seq = in->consumed++;
	int rc = 0;

	switch (b->kind) {
	case SL_BATCH_DATA:
		if (t->bt != NULL) {
			/* in flight for an unaligned checkpoint: persist it,
			 * and process it as usual */
			uint64_t id = sl_bt_persist(t->bt, idx, seq);
			if (id != 0)
				__sl_ckpt_persist_input(t, id, idx, b, seq);
		}
		t->pub.records_in += b->count;
		rc = t->ops->process(t->op, &t->pub, in->input, b);
		break;
	case SL_BATCH_MARKER:
		if (t->bt != NULL) {
			sl_bt_on_marker(t->bt, idx, b->checkpoint_id,
					__sl_ckpt_now_ns(t));
			__sl_ckpt_decide(t);
		}
		break;
	case SL_BATCH_END:
		in->ended = true;
		in->drain = b->flags & SL_END_DRAIN;
		if (t->bt != NULL) {
			sl_bt_on_input_end(t->bt, idx);
			__sl_ckpt_decide(t);
		}
		break;
	default:
		break;
	}
	/* the batch's watermark applies after its records */
	if (b->watermark > in->watermark)
		in->watermark = b->watermark;
	sl_batch_put(b);
	return rc;
}

/*
 * Process batches of one input in order.  An aligned marker blocks the
 * input: the rest is held and read once alignment completed.
 */
static int consume(struct task *t, struct in_port *in, unsigned idx,
		   struct sl_batch **b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int rc = handle_batch(t, in, idx, b[i]);
		if (unlikely(rc < 0)) {
			for (unsigned j = i + 1; j < n; j++)
				sl_batch_put(b[j]);
			return fail(t, rc, "process");
		}
		if (t->bt != NULL && i + 1 < n && sl_bt_input_blocked(t->bt, idx)) {
			sl_crash_point("alignment");
			/* in->held is empty or being read from (then b
			 * points into it and the copy moves it down) */
			memmove(in->held, b + i + 1, (n - i - 1) * sizeof(*b));
			in->n_held = n - i - 1;
			return 0;
		}
		if (t->bt != NULL && i + 1 < n)
			__sl_ckpt_between_batches(t, in, b + i + 1, n - i - 1);
	}
	return 0;
}

static int poll_inputs(struct task *t)
{
	struct sl_batch *burst[HELD_MAX];
	const unsigned max = RTE_MIN(t->job->cfg.burst_size, RTE_DIM(burst));
	unsigned got_total = 0;
	bool all_ended = true;
	bool drain = true;
	int64_t wm = SL_WATERMARK_MAX;

	for (unsigned k = 0; k < t->n_in; k++) {
		unsigned idx = t->in_rr + k;
		if (idx >= t->n_in)
			idx -= t->n_in;
		struct in_port *in = &t->in[idx];
		unsigned got;
		int rc;

		if (in->ended)
			continue;
		if (t->bt != NULL && sl_bt_input_blocked(t->bt, idx))
			continue;
		if (in->n_held > 0) {
			/* the tail of a burst held back by an alignment */
			got = in->n_held;
			in->n_held = 0;
			rc = consume(t, in, idx, in->held, got);
		} else {
			got = sl_channel_recv_burst(in->ch, burst, max);
			if (got == 0)
				continue;
			if (t->bt != NULL) {
				/* announcements of markers in this burst are
				 * visible now: decide before processing it */
				in->pending = burst;
				in->n_pending = got;
				__sl_ckpt_poll_announcements(t);
				__sl_ckpt_decide(t);
				in->pending = NULL;
				in->n_pending = 0;
			}
			rc = consume(t, in, idx, burst, got);
		}
		if (rc < 0)
			return rc;
		got_total += got;
	}
	if (++t->in_rr >= t->n_in)
		t->in_rr = 0;

	for (unsigned k = 0; k < t->n_in; k++) {
		const struct in_port *in = &t->in[k];
		if (!in->ended) {
			all_ended = false;
			if (in->watermark < wm)
				wm = in->watermark;
		} else {
			drain &= in->drain;
		}
	}
	if (all_ended) {
		t->drain = drain;
		begin_end(t);
		return 1;
	}
	if (wm > t->pub.watermark && wm != SL_WATERMARK_MAX) {
		t->firing_wm = wm;
		fire(t);
	}
	return (int)got_total;
}

int __sl_task_poll(struct task *t)
{
	uint64_t start = rte_get_tsc_cycles();
	int work, ck_work = 0;

	if (t->ctl != NULL) {
		/* checkpoint commands, io completions, write-out; barrier
		 * announcements are handled even while backpressured */
		ck_work = __sl_ckpt_poll(t);
		if (t->bt != NULL && t->phase != TASK_DONE) {
			__sl_ckpt_poll_announcements(t);
			/* not in the middle of a firing or of on_end's output:
			 * the operator's state would hold half of it done, and
			 * a restore would emit that half again */
			if (t->phase == TASK_RUNNING)
				ck_work += __sl_ckpt_decide(t);
		}
	}
	if (t->blocked) {
		bool still = false;
		for (unsigned i = 0; i < t->n_out_ch; i++)
			still |= sl_channel_flush(t->out_ch[i]) != 0;
		if (still) {
			if (t->blocked_since == 0)
				t->blocked_since = start;
			return ck_work;
		}
		t->blocked = false;
		if (t->blocked_since != 0) {
			t->blocked_cycles += start - t->blocked_since;
			t->blocked_since = 0;
		}
	}

	switch (t->phase) {
	case TASK_FIRING:
		/* a drained end fires SL_WATERMARK_MAX first, then ends */
		if (fire(t) && t->drain && t->firing_wm == SL_WATERMARK_MAX)
			end_now(t);
		work = 1;
		break;
	case TASK_ENDING:
		end_now(t);
		work = 1;
		break;
	case TASK_DONE:
		return ck_work;
	default:
		work = t->is_source ? poll_source(t) : poll_inputs(t);
		if (work < 0)
			return 0;
		break;
	}

	if (t->phase == TASK_RUNNING && !t->blocked) {
		uint64_t now = rte_get_tsc_cycles();
		if (work == 0 ||
		    now - t->last_flush_tsc > t->job->buffer_timeout_tsc)
			__sl_task_flush(t);
	}
	if (work > 0)
		t->busy_cycles += rte_get_tsc_cycles() - start;
	return work;
}
