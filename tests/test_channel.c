/* SPDX-License-Identifier: BSD-3-Clause */
/* Channels: ordering, sequence numbers, staging under backpressure, the
 * priority lane, and a two-lcore handoff. */
#include <criterion/criterion.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include "eal_fixture.h"
#include "sluice/batch.h"
#include "sluice/channel.h"

static struct rte_mempool *pool(unsigned n)
{
	struct rte_mempool *mp = sl_batch_pool_create("tpool", n, 4, 8, SOCKET_ID_ANY);
	cr_assert_not_null(mp);
	return mp;
}

static struct sl_batch *numbered(struct rte_mempool *mp, uint64_t i)
{
	struct sl_batch *b = sl_batch_get(mp, 8);
	cr_assert_not_null(b);
	b->checkpoint_id = i; /* payload for the test: its send index */
	b->count = 1;
	*(uint64_t *)sl_batch_record(b, 0) = i * 7;
	return b;
}

Test(channel, order_and_sequence_numbers, .timeout = 60)
{
	sl_test_eal("0-1", NULL);
	struct rte_mempool *mp = pool(256);
	struct sl_channel *ch = sl_channel_create("c0", 16, 8, SOCKET_ID_ANY);
	struct sl_batch *got[8];
	uint64_t next = 0;

	cr_assert_not_null(ch);
	for (uint64_t i = 0; i < 100; i++) {
		sl_channel_send(ch, numbered(mp, i));
		if (i % 3 == 2) {
			unsigned n = sl_channel_recv_burst(ch, got, 2);
			for (unsigned k = 0; k < n; k++, next++) {
				cr_assert_eq(got[k]->checkpoint_id, next);
				sl_batch_put(got[k]);
			}
		}
		cr_assert_eq(ch->sent + ch->staged, i + 1,
			     "every batch is either enqueued or staged");
	}
	while (sl_channel_flush(ch) > 0 || rte_ring_count(ch->data) > 0) {
		unsigned n = sl_channel_recv_burst(ch, got, 8);
		for (unsigned k = 0; k < n; k++, next++) {
			cr_assert_eq(got[k]->checkpoint_id, next, "order kept through staging");
			cr_assert_eq(*(uint64_t *)sl_batch_record(got[k], 0), next * 7);
			sl_batch_put(got[k]);
		}
	}
	cr_assert_eq(next, 100);
	cr_assert_eq(ch->sent, 100);
	cr_assert_eq(ch->received, 100, "receiver counted every dequeued batch");
	cr_assert_eq(rte_mempool_avail_count(mp), 256, "every batch returned to the pool");
	sl_channel_free(ch);
	rte_mempool_free(mp);
	sl_test_eal_fini();
}

Test(channel, full_ring_stages_and_blocks, .timeout = 60)
{
	sl_test_eal("0-1", NULL);
	struct rte_mempool *mp = pool(64);
	struct sl_channel *ch = sl_channel_create("c1", 4, 8, SOCKET_ID_ANY);
	struct sl_batch *got[8];

	for (uint64_t i = 0; i < 4; i++)
		cr_assert(sl_channel_send(ch, numbered(mp, i)));
	cr_assert_not(sl_channel_blocked(ch));
	cr_assert_not(sl_channel_send(ch, numbered(mp, 4)), "ring full: staged");
	cr_assert(sl_channel_blocked(ch));
	/* a later batch must queue behind the staged one even if space frees */
	cr_assert_eq(sl_channel_recv_burst(ch, got, 1), 1);
	sl_batch_put(got[0]);
	cr_assert_not(sl_channel_send(ch, numbered(mp, 5)), "older batch staged: new one waits");
	cr_assert_eq(ch->staged, 1, "flush-on-send moved the older one in");
	cr_assert_eq(sl_channel_flush(ch), 1, "ring is full again");
	cr_assert_eq(sl_channel_recv_burst(ch, got, 8), 4);
	for (unsigned k = 0; k < 4; k++) {
		cr_assert_eq(got[k]->checkpoint_id, k + 1);
		sl_batch_put(got[k]);
	}
	cr_assert_eq(sl_channel_flush(ch), 0);
	cr_assert_not(sl_channel_blocked(ch));
	cr_assert_eq(sl_channel_recv_burst(ch, got, 8), 1);
	cr_assert_eq(got[0]->checkpoint_id, 5);
	sl_batch_put(got[0]);
	sl_channel_free(ch);
	cr_assert_eq(rte_mempool_avail_count(mp), 64);
	rte_mempool_free(mp);
	sl_test_eal_fini();
}

Test(channel, priority_lane_overtakes_data, .timeout = 60)
{
	sl_test_eal("0-1", NULL);
	struct rte_mempool *mp = pool(64);
	struct sl_channel *ch = sl_channel_create("c2", 8, 4, SOCKET_ID_ANY);
	struct sl_ctrl_event ev = { .type = SL_CTRL_BARRIER, .checkpoint_id = 9 };
	struct sl_ctrl_event out;

	for (uint64_t i = 0; i < 12; i++)
		sl_channel_send(ch, numbered(mp, i));
	ev.seq = ch->sent;
	cr_assert_eq(sl_channel_post(ch, &ev), 0);
	cr_assert_eq(sl_channel_poll(ch, &out), 0, "visible although data is queued");
	cr_assert_eq(out.checkpoint_id, 9);
	cr_assert_eq(out.seq, 8, "carries the sender's data-lane sequence number");
	cr_assert_eq(sl_channel_poll(ch, &out), -EAGAIN);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(sl_channel_post(ch, &ev), 0);
	cr_assert_eq(sl_channel_post(ch, &ev), -ENOBUFS, "a full priority lane says so");
	sl_channel_free(ch);
	cr_assert_eq(rte_mempool_avail_count(mp), 64, "free returns queued and staged batches");
	rte_mempool_free(mp);
	sl_test_eal_fini();
}

#define HANDOFF_N 200000

struct handoff {
	struct sl_channel *ch;
	struct rte_mempool *mp;
};

static int producer(void *arg)
{
	struct handoff *h = arg;

	for (uint64_t i = 0; i < HANDOFF_N; i++) {
		struct sl_batch *b;
		while ((b = sl_batch_get(h->mp, 8)) == NULL)
			sl_channel_flush(h->ch);
		b->checkpoint_id = i;
		b->count = 1;
		*(uint64_t *)sl_batch_record(b, 0) = i ^ 0x5a5a;
		sl_channel_send(h->ch, b);
		while (sl_channel_blocked(h->ch) && sl_channel_flush(h->ch) > 0)
			rte_pause();
	}
	return 0;
}

Test(channel, two_lcore_handoff_keeps_order, .timeout = 120)
{
	sl_test_eal("0-1", NULL);
	struct handoff h = { .mp = pool(1024) };
	struct sl_batch *got[32];
	uint64_t next = 0;

	h.ch = sl_channel_create("c3", 64, 8, SOCKET_ID_ANY);
	cr_assert_eq(rte_eal_remote_launch(producer, &h, 1), 0);
	while (next < HANDOFF_N) {
		unsigned n = sl_channel_recv_burst(h.ch, got, 32);
		for (unsigned k = 0; k < n; k++, next++) {
			cr_assert_eq(got[k]->checkpoint_id, next);
			cr_assert_eq(*(uint64_t *)sl_batch_record(got[k], 0), next ^ 0x5a5a);
			sl_batch_put(got[k]);
		}
	}
	rte_eal_mp_wait_lcore();
	cr_assert_eq(h.ch->received, HANDOFF_N);
	cr_assert_eq(h.ch->sent, HANDOFF_N);
	sl_channel_free(h.ch);
	rte_mempool_free(h.mp);
	sl_test_eal_fini();
}
