/* SPDX-License-Identifier: BSD-3-Clause */
#include <rte_errno.h>
#include <rte_mempool.h>

#include "sluice/batch.h"

struct pool_init_arg {
	uint32_t capacity;
};

static void batch_init(struct rte_mempool *mp, void *arg, void *obj,
		       unsigned idx __rte_unused)
{
	const struct pool_init_arg *a = arg;
	struct sl_batch *b = obj;

	b->pool = mp;
	b->capacity = a->capacity;
	b->refcnt = 0;
}

size_t sl_batch_elt_size(uint32_t capacity, uint16_t record_size)
{
	return sizeof(struct sl_batch) + (size_t)capacity * record_size;
}

struct rte_mempool *sl_batch_pool_create(const char *name, unsigned n,
					 uint32_t capacity,
					 uint16_t record_size, int socket)
{
	struct pool_init_arg arg = { .capacity = capacity };
	/* a per-lcore cache makes get/put on the hot path lock-free; it must
	 * stay well below n so caches cannot strand the pool */
	unsigned cache = n >= 512 ? 32 : 0;

	if (capacity == 0 || record_size == 0) {
		rte_errno = EINVAL;
		return NULL;
	}
	return rte_mempool_create(name, n, sl_batch_elt_size(capacity, record_size),
				  cache, 0, NULL, NULL, batch_init, &arg, socket, 0);
}

struct rte_mempool *sl_batch_marker_pool_create(const char *name, unsigned n,
						int socket)
{
	struct pool_init_arg arg = { .capacity = 1 };

	return rte_mempool_create(name, n, sl_batch_elt_size(1, 8), 0, 0, NULL,
				  NULL, batch_init, &arg, socket, 0);
}
