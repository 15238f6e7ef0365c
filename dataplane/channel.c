/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>

#include <rte_errno.h>
#include <rte_malloc.h>

#include "sluice/channel.h"

struct sl_channel *sl_channel_create(const char *name, unsigned ring_size,
				     unsigned prio_size, int socket)
{
	char rname[RTE_RING_NAMESIZE];
	struct sl_channel *ch;

	ch = rte_zmalloc_socket("sl_channel", sizeof(*ch), RTE_CACHE_LINE_SIZE,
				socket);
	if (ch == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	ch->wm_sent = SL_WATERMARK_MIN;
	snprintf(rname, sizeof(rname), "%s.d", name);
	ch->data = rte_ring_create(rname, ring_size, socket,
				   RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (ch->data == NULL)
		goto fail;
	snprintf(rname, sizeof(rname), "%s.p", name);
	ch->prio = rte_ring_create_elem(rname, sizeof(struct sl_ctrl_event),
					prio_size, socket,
					RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (ch->prio == NULL)
		goto fail;
	return ch;
fail: {
	int err = rte_errno;
	rte_ring_free(ch->data);
	rte_free(ch);
	rte_errno = err;
	return NULL;
}
}

void sl_channel_free(struct sl_channel *ch)
{
	struct sl_batch *b;

	if (ch == NULL)
		return;
	while (rte_ring_sc_dequeue(ch->data, (void **)&b) == 0)
		sl_batch_put(b);
	while ((b = ch->stage_head) != NULL) {
		ch->stage_head = b->next;
		sl_batch_put(b);
	}
	rte_ring_free(ch->data);
	rte_ring_free(ch->prio);
	rte_free(ch);
}
