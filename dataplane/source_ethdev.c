/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DPDK ethdev source: every packet received on a port becomes one flow
 * record (5-tuple, length, rx time).  Works with any PMD: real NICs, and
 * the virtual devices net_pcap, net_null, net_ring, net_af_packet.
 *
 * Subtask i polls rx queue i; the port is configured with exactly
 * `parallelism` rx queues (RSS spreads flows over them on NICs that have
 * it).  The port is set up once, on the main lcore, in prepare(): one mbuf
 * pool per port, queues, start.  Per-port state lives in a small static
 * registry keyed by port id so that preparing the same port again in the
 * same process (a rerun, a second job) restarts it instead of configuring
 * it twice; the last subtask to close stops the port, which for net_pcap
 * also rewinds its file.
 *
 * Timestamps are ingestion time: TSC read once per rx burst, converted to
 * Unix nanoseconds with an epoch pair taken in prepare() and shared by all
 * queues of the port, so records of different queues are comparable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_sctp.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "sluice/operators.h"

/** Packets per rte_eth_rx_burst() call. */
#define ETH_BURST 32
/** Bursts per poll() at most: 8 x 32 fills one default (256) batch, and
 *  bounds the time other subtasks on the lcore wait. */
#define ETH_BURSTS_PER_POLL 8
/** Packets ahead whose headers are prefetched while parsing. */
#define ETH_PREFETCH_AHEAD 4
/** Largest per-lcore mbuf cache. */
#define ETH_POOL_CACHE 256u
/** Idle queues still advance the watermark, at most this often. */
#define ETH_IDLE_WM_PERIOD_US 1000

#define ETH_RX_DESC_DEFAULT 1024

/* The fixed output record.  Its layout is what sl_schema_add() gives the
 * schema built by plan() (u32s at natural alignment, then an 8-aligned
 * timestamp); plan() checks that the two agree. */
struct flow_record {
	uint32_t src_ip;   /* host byte order: 10.0.0.1 = 0x0a000001 */
	uint32_t dst_ip;
	uint32_t src_port; /* host byte order */
	uint32_t dst_port;
	uint32_t proto;	   /* IPv4 protocol number */
	uint32_t length;   /* frame bytes (pkt_len) */
	int64_t ts;	   /* rx time, Unix ns */
};
_Static_assert(sizeof(struct flow_record) == 32, "flow record is 32 bytes");
_Static_assert(offsetof(struct flow_record, ts) == 24, "ts follows 6 u32");

static const struct {
	const char *name;
	enum sl_type type;
	size_t offset;
} flow_fields[] = {
	{"src_ip", SL_TYPE_U32, offsetof(struct flow_record, src_ip)},
	{"dst_ip", SL_TYPE_U32, offsetof(struct flow_record, dst_ip)},
	{"src_port", SL_TYPE_U32, offsetof(struct flow_record, src_port)},
	{"dst_port", SL_TYPE_U32, offsetof(struct flow_record, dst_port)},
	{"proto", SL_TYPE_U32, offsetof(struct flow_record, proto)},
	{"length", SL_TYPE_U32, offsetof(struct flow_record, length)},
	{"ts", SL_TYPE_TIMESTAMP, offsetof(struct flow_record, ts)},
};

#define QUEUE_WORDS (RTE_MAX_QUEUES_PER_PORT / 64)

/*
 * What this process did to a port.  Written by prepare() on the main lcore
 * while no job runs; subtasks touch only the atomics (`refs`, `claimed`,
 * `taken`).
 */
struct eth_port_state {
	bool configured;	  /* queues set up with the fields below */
	bool started;
	uint16_t nb_rxq;
	uint16_t nb_rxd;
	unsigned pool_size;
	unsigned pool_gen;	  /* pool name suffix; pools are never renamed */
	struct rte_mempool *pool;
	uint32_t refs;		  /* atomic: subtasks that have yet to close */
	uint64_t claimed[QUEUE_WORDS]; /* atomic: rx queues being polled */
	uint64_t count;		  /* conf count of the current job, 0 = none */
	uint64_t taken;		  /* atomic: packets handed out of `count` */
	int64_t epoch_ns;	  /* Unix ns at epoch_tsc */
	uint64_t epoch_tsc;
	double ns_per_tsc;
};

static struct eth_port_state eth_ports[RTE_MAX_ETHPORTS];

/* One subtask: polls rx queue `queue` of `port`. */
struct eth_source {
	uint16_t port;
	uint16_t queue;
	bool ended;
	struct eth_port_state *st;
	uint64_t count;		  /* conf: total packets over all subtasks */
	uint64_t idle_end_tsc;	  /* 0 = never */
	uint64_t last_rx_tsc;
	uint64_t last_wm_tsc;
	uint64_t idle_wm_tsc;
	int64_t epoch_ns;
	uint64_t epoch_tsc;
	double ns_per_tsc;
};

void sl_ethdev_source_conf_defaults(struct sl_ethdev_source_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->rx_desc = ETH_RX_DESC_DEFAULT;
	c->promiscuous = false;
	c->count = 0;
	c->idle_end_ms = 0;
}

/* ------------------------------------------------------------- hot path */

static inline int64_t tsc_to_ns(const struct eth_source *s, uint64_t tsc)
{
	/* double keeps ns exact for days of uptime; one multiply per burst */
	return s->epoch_ns + (int64_t)((double)(tsc - s->epoch_tsc) * s->ns_per_tsc);
}

/*
 * Fill a record from a packet's headers.  Only the first segment is read,
 * every header is bounds-checked against its data_len: truncated or
 * non-IPv4 frames give zero addresses/ports/proto (length still set); a
 * truncated L4 header or a non-first fragment gives zero ports.
 */
static inline void parse_flow(const struct rte_mbuf *m, struct flow_record *r)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	const uint32_t len = m->data_len;
	const struct rte_ipv4_hdr *ip;
	uint32_t off = sizeof(struct rte_ether_hdr);
	uint32_t ihl;
	uint16_t type;

	r->src_ip = 0;
	r->dst_ip = 0;
	r->src_port = 0;
	r->dst_port = 0;
	r->proto = 0;
	r->length = m->pkt_len;

	if (unlikely(len < off))
		return;
	type = ((const struct rte_ether_hdr *)p)->ether_type;
	if (type == RTE_BE16(RTE_ETHER_TYPE_VLAN) ||
	    type == RTE_BE16(RTE_ETHER_TYPE_QINQ)) {
		if (unlikely(len < off + sizeof(struct rte_vlan_hdr)))
			return;
		type = ((const struct rte_vlan_hdr *)(p + off))->eth_proto;
		off += sizeof(struct rte_vlan_hdr);
	}
	if (type != RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
	    unlikely(len < off + sizeof(struct rte_ipv4_hdr)))
		return;
	ip = (const struct rte_ipv4_hdr *)(p + off);
	ihl = (uint32_t)(ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) *
	      RTE_IPV4_IHL_MULTIPLIER;
	if (unlikely((ip->version_ihl >> 4) != 4 ||
		     ihl < sizeof(struct rte_ipv4_hdr) || len < off + ihl))
		return;
	r->src_ip = rte_be_to_cpu_32(ip->src_addr);
	r->dst_ip = rte_be_to_cpu_32(ip->dst_addr);
	r->proto = ip->next_proto_id;

	/* later fragments carry no L4 header */
	if (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK))
		return;
	off += ihl;
	switch (ip->next_proto_id) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		/* all three start with source and destination port, which is
		 * all we read, so a header cut after the ports still counts */
		if (likely(len >= off + 2 * sizeof(rte_be16_t))) {
			const struct rte_udp_hdr *l4 =
				(const struct rte_udp_hdr *)(p + off);
			RTE_BUILD_BUG_ON(offsetof(struct rte_tcp_hdr, dst_port) !=
					 offsetof(struct rte_udp_hdr, dst_port));
			RTE_BUILD_BUG_ON(offsetof(struct rte_sctp_hdr, dst_port) !=
					 offsetof(struct rte_udp_hdr, dst_port));
			r->src_port = rte_be_to_cpu_16(l4->src_port);
			r->dst_port = rte_be_to_cpu_16(l4->dst_port);
		}
		break;
	default:
		break;
	}
}

/* How many of `n` received packets this subtask may still emit, out of
 * the job-wide `count`; sets s->ended when the budget is used up. */
static inline uint16_t take_budget(struct eth_source *s, uint16_t n)
{
	/* relaxed: the counter only divides packets, it orders nothing */
	uint64_t prev = __atomic_fetch_add(&s->st->taken, n, __ATOMIC_RELAXED);

	if (prev + n < s->count)
		return n;
	s->ended = true;
	return prev >= s->count ? 0 : (uint16_t)(s->count - prev);
}

static int eth_poll(void *opaque, struct sl_task *t)
{
	struct eth_source *s = opaque;
	struct rte_mbuf *pkts[ETH_BURST];
	uint64_t tsc = 0;
	int total = 0;

	if (unlikely(s->ended))
		return SL_SOURCE_END;

	for (unsigned b = 0; b < ETH_BURSTS_PER_POLL; b++) {
		uint16_t n = rte_eth_rx_burst(s->port, s->queue, pkts, ETH_BURST);
		uint16_t keep = n;
		int64_t ts;

		if (n == 0)
			break;
		tsc = rte_rdtsc();
		ts = tsc_to_ns(s, tsc);
		if (s->count != 0)
			keep = take_budget(s, n);

		for (uint16_t i = 0; i < RTE_MIN(keep, ETH_PREFETCH_AHEAD); i++)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
		for (uint16_t i = 0; i < keep; i++) {
			struct flow_record *r = sl_emit(t);

			if (i + ETH_PREFETCH_AHEAD < keep)
				rte_prefetch0(rte_pktmbuf_mtod(
					pkts[i + ETH_PREFETCH_AHEAD], void *));
			parse_flow(pkts[i], r);
			r->ts = ts;
		}
		rte_pktmbuf_free_bulk(pkts, n);
		total += keep;
		/* every later burst has a later TSC: nothing at or below ts
		 * can come from this queue any more */
		sl_task_set_watermark(t, ts);
		if (s->ended || n < ETH_BURST)
			break;
	}

	if (total > 0) {
		s->last_rx_tsc = tsc;
		s->last_wm_tsc = tsc;
		return total;
	}
	if (s->ended)
		return SL_SOURCE_END;

	tsc = rte_rdtsc();
	if (s->idle_end_tsc != 0 && tsc - s->last_rx_tsc >= s->idle_end_tsc)
		return SL_SOURCE_END;
	/* A quiet queue must not hold back event time downstream (windows
	 * fire on the minimum over all inputs); ingestion time lets the
	 * watermark follow the clock.  Throttled so idle polling does not
	 * flood the channels with watermark-only batches. */
	if (tsc - s->last_wm_tsc >= s->idle_wm_tsc) {
		s->last_wm_tsc = tsc;
		sl_task_set_watermark(t, tsc_to_ns(s, tsc));
	}
	return 0;
}

/* ------------------------------------------------------------ set-up */

static void format_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void format_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "net_pcap0,rx_pcap=x.pcap" -> "net_pcap0" */
static void vdev_name(const char *vdev, char *name, size_t len)
{
	size_t n = strcspn(vdev, ",");

	if (n >= len)
		n = len - 1;
	memcpy(name, vdev, n);
	name[n] = '\0';
}

/* Port by name, or by decimal id; -ENODEV if there is no such port. */
static int resolve_port(const char *port, uint16_t *port_id)
{
	char *end;
	unsigned long id;

	if (rte_eth_dev_get_port_by_name(port, port_id) == 0)
		return 0;
	errno = 0;
	id = strtoul(port, &end, 10);
	if (port[0] >= '0' && port[0] <= '9' && *end == '\0' && errno == 0 &&
	    id < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port((uint16_t)id)) {
		*port_id = (uint16_t)id;
		return 0;
	}
	return -ENODEV;
}

static void list_ports(char *buf, size_t len)
{
	char name[RTE_ETH_NAME_MAX_LEN];
	size_t used = 0;
	uint16_t pid;

	buf[0] = '\0';
	RTE_ETH_FOREACH_DEV(pid) {
		if (rte_eth_dev_get_name_by_port(pid, name) != 0)
			continue;
		used += snprintf(buf + used, used < len ? len - used : 0, "%s%s (%u)",
				 used ? ", " : "", name, pid);
	}
	if (used == 0)
		snprintf(buf, len, "none");
}

static int plan_ethdev(void *conf, const struct sl_schema *const in[],
		       unsigned n_in, struct sl_schema *out, char *err,
		       size_t errlen)
{
	struct sl_ethdev_source_conf *c = conf;

	RTE_SET_USED(in);
	RTE_SET_USED(n_in);
	if (memchr(c->port, '\0', sizeof(c->port)) == NULL ||
	    memchr(c->vdev, '\0', sizeof(c->vdev)) == NULL) {
		format_err(err, errlen, "port or vdev is not NUL-terminated");
		return -EINVAL;
	}
	if (c->port[0] == '\0') {
		if (c->vdev[0] == '\0') {
			format_err(err, errlen,
				   "no port given: set port (a name such as net_pcap0, or a port id) or vdev (e.g. net_pcap0,rx_pcap=FILE)");
			return -EINVAL;
		}
		/* the hotplugged device is the port to read */
		vdev_name(c->vdev, c->port, sizeof(c->port));
	}
	if (c->rx_desc == 0)
		c->rx_desc = ETH_RX_DESC_DEFAULT;
	if (c->idle_end_ms < 0) {
		format_err(err, errlen, "idle_end_ms must be >= 0 (0 = never), got %" PRId64,
			   c->idle_end_ms);
		return -EINVAL;
	}

	for (unsigned i = 0; i < RTE_DIM(flow_fields); i++) {
		int rc = sl_schema_add(out, flow_fields[i].name,
				       flow_fields[i].type, 0);
		if (rc < 0) {
			format_err(err, errlen, "cannot build the output schema: %s",
				   strerror(-rc));
			return rc;
		}
		/* the poll loop writes struct flow_record directly */
		if (out->fields[i].offset != flow_fields[i].offset) {
			format_err(err, errlen, "internal: field %s at offset %u, expected %zu",
				   flow_fields[i].name, out->fields[i].offset,
				   flow_fields[i].offset);
			return -EINVAL;
		}
	}
	if (out->record_size != sizeof(struct flow_record)) {
		format_err(err, errlen, "internal: record size %u, expected %zu",
			   out->record_size, sizeof(struct flow_record));
		return -EINVAL;
	}
	return 0;
}

/* Hotplug conf->vdev unless a port of that name exists already. */
static int hotplug(const struct sl_ethdev_source_conf *c, char *err,
		   size_t errlen)
{
	char name[RTE_DEV_NAME_MAX_LEN];
	uint16_t pid;
	int rc;

	vdev_name(c->vdev, name, sizeof(name));
	if (rte_eth_dev_get_port_by_name(name, &pid) == 0)
		return 0;
	rc = rte_dev_probe(c->vdev);
	if (rc < 0) {
		/* a driver's probe failure comes back as a bare -1, which is
		 * not an errno worth printing */
		format_err(err, errlen,
			   "cannot hotplug vdev '%s': %s (check the driver name and its arguments, e.g. net_pcap0,rx_pcap=FILE or net_null0; the EAL log above has details)",
			   c->vdev,
			   rc == -1 ? "the driver rejected the device or its arguments"
				    : strerror(-rc));
		return rc == -1 ? -EINVAL : rc;
	}
	return 0;
}

/* Symmetric Toeplitz key (0x6d5a repeated): both directions of a flow
 * hash alike, so a connection's packets meet on one queue. */
static void symmetric_rss_key(uint8_t *key, size_t len)
{
	for (size_t i = 0; i < len; i++)
		key[i] = (i & 1) ? 0x5a : 0x6d;
}

/* Mbufs the port needs: a full ring per queue, what one poll holds, and
 * what per-lcore caches may keep. */
static unsigned pool_size_for(uint16_t nb_rxq, uint16_t nb_rxd)
{
	return (unsigned)nb_rxq * (nb_rxd + ETH_BURST * ETH_BURSTS_PER_POLL) +
	       rte_lcore_count() * ETH_POOL_CACHE + 512;
}

/* Stop, configure, set up queues with a (new) pool, leave stopped. */
static int configure_port(uint16_t pid, const char *port,
			  struct eth_port_state *st, uint16_t nb_rxq,
			  uint16_t rx_desc, const struct rte_eth_dev_info *info,
			  char *err, size_t errlen)
{
	struct rte_eth_conf eth_conf;
	uint8_t rss_key[128];
	struct rte_mempool *old = st->pool, *pool;
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	uint16_t nb_rxd = rx_desc, nb_txd = 0;
	uint16_t nb_txq = info->max_tx_queues > 0 ? 1 : 0;
	unsigned n;
	int socket = rte_eth_dev_socket_id(pid);
	int rc;

	if (st->started) {
		rc = rte_eth_dev_stop(pid);
		if (rc < 0) {
			format_err(err, errlen, "cannot stop port '%s' to reconfigure it: %s",
				   port, strerror(-rc));
			return rc;
		}
		st->started = false;
	}
	st->configured = false;

	memset(&eth_conf, 0, sizeof(eth_conf));
	if (nb_rxq > 1) {
		uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			      info->flow_type_rss_offloads;
		if (hf != 0) {
			eth_conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			eth_conf.rx_adv_conf.rss_conf.rss_hf = hf;
			if (info->hash_key_size > 0 &&
			    info->hash_key_size <= sizeof(rss_key)) {
				symmetric_rss_key(rss_key, info->hash_key_size);
				eth_conf.rx_adv_conf.rss_conf.rss_key = rss_key;
				eth_conf.rx_adv_conf.rss_conf.rss_key_len =
					info->hash_key_size;
			}
		}
	}
	rc = rte_eth_dev_configure(pid, nb_rxq, nb_txq, &eth_conf);
	if (rc == -EBUSY) {
		/* started by someone else (the application, another library):
		 * configure needs it stopped */
		rc = rte_eth_dev_stop(pid);
		if (rc == 0)
			rc = rte_eth_dev_configure(pid, nb_rxq, nb_txq, &eth_conf);
	}
	if (rc < 0) {
		format_err(err, errlen, "cannot configure port '%s' with %u rx queue%s: %s",
			   port, nb_rxq, nb_rxq == 1 ? "" : "s", strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, nb_txq ? &nb_txd : NULL);
	if (rc < 0) {
		format_err(err, errlen, "port '%s': cannot fit %u rx descriptors: %s",
			   port, rx_desc, strerror(-rc));
		return rc;
	}

	if (socket < 0)
		socket = (int)rte_socket_id();
	n = pool_size_for(nb_rxq, nb_rxd);
	snprintf(pool_name, sizeof(pool_name), "sl_eth%u_%u", pid, st->pool_gen);
	pool = rte_pktmbuf_pool_create(pool_name, n,
				       RTE_MIN(ETH_POOL_CACHE, n / 8), 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (pool == NULL) {
		format_err(err, errlen,
			   "cannot create the mbuf pool of port '%s' (%u mbufs): %s (raise EAL -m or lower rx_desc)",
			   port, n, rte_strerror(rte_errno));
		return -(rte_errno ? rte_errno : ENOMEM);
	}
	st->pool_gen++;

	for (uint16_t q = 0; q < nb_rxq; q++) {
		rc = rte_eth_rx_queue_setup(pid, q, nb_rxd, (unsigned)socket,
					    NULL, pool);
		if (rc < 0) {
			format_err(err, errlen,
				   "port '%s': rx queue %u setup failed: %s (net_pcap with infinite_rx needs an mbuf per packet of the file: raise rx_desc)",
				   port, q, strerror(-rc));
			goto fail;
		}
	}
	if (nb_txq) {
		rc = rte_eth_tx_queue_setup(pid, 0, nb_txd, (unsigned)socket, NULL);
		if (rc < 0) {
			format_err(err, errlen, "port '%s': tx queue setup failed: %s",
				   port, strerror(-rc));
			goto fail;
		}
	}
	/* the queues now point at the new pool; the old one is unused */
	rte_mempool_free(old);
	st->pool = pool;
	st->pool_size = n;
	st->nb_rxq = nb_rxq;
	st->nb_rxd = rx_desc;
	st->configured = true;
	return 0;
fail:
	/* Queues set up so far reference `pool`, the others may still
	 * reference `old`: keep `pool` with the port and leak `old` rather
	 * than risk a dangling pool.  The port stays unconfigured, so the
	 * next prepare() sets every queue up again. */
	st->pool = pool;
	return rc;
}

static int prepare_ethdev(void *conf, uint32_t parallelism, char *err,
			  size_t errlen)
{
	const struct sl_ethdev_source_conf *c = conf;
	struct rte_eth_dev_info info;
	struct eth_port_state *st;
	struct timespec now;
	uint16_t pid;
	int rc;

	if (c->vdev[0] != '\0' && (rc = hotplug(c, err, errlen)) < 0)
		return rc;
	if (resolve_port(c->port, &pid) < 0) {
		char avail[512];
		list_ports(avail, sizeof(avail));
		format_err(err, errlen,
			   "port '%s' does not exist; available ports: %s (add it with EAL --vdev=... or the source's vdev key)",
			   c->port, avail);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(pid, &info);
	if (rc < 0) {
		format_err(err, errlen, "port '%s': cannot read device info: %s",
			   c->port, strerror(-rc));
		return rc;
	}
	if (parallelism > info.max_rx_queues) {
		format_err(err, errlen,
			   "port '%s' (%s) has at most %u rx queue%s but the source's parallelism is %u: one subtask polls one queue, so lower the parallelism%s",
			   c->port, info.driver_name, info.max_rx_queues,
			   info.max_rx_queues == 1 ? "" : "s", parallelism,
			   strcmp(info.driver_name, "net_pcap") == 0
				   ? " (net_pcap has one rx queue per rx_pcap/rx_iface argument)"
				   : "");
		return -EINVAL;
	}

	st = &eth_ports[pid];
	if (!st->configured || st->nb_rxq != parallelism ||
	    st->nb_rxd != c->rx_desc) {
		rc = configure_port(pid, c->port, st, (uint16_t)parallelism,
				    c->rx_desc, &info, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (!st->started) {
		rc = rte_eth_dev_start(pid);
		if (rc < 0) {
			format_err(err, errlen, "cannot start port '%s': %s",
				   c->port, strerror(-rc));
			return rc;
		}
		st->started = true;
	}
	if (c->promiscuous) {
		rc = rte_eth_promiscuous_enable(pid);
		/* virtual devices without the notion accept everything */
		if (rc < 0 && rc != -ENOTSUP) {
			format_err(err, errlen, "port '%s': cannot enable promiscuous mode: %s",
				   c->port, strerror(-rc));
			return rc;
		}
	}

	/* A new job on this port: fresh budget, all queues free, and one
	 * reference per subtask so the last close() stops the port even if
	 * some subtask ends (and closes) before another has opened. */
	memset(st->claimed, 0, sizeof(st->claimed));
	st->count = c->count;
	__atomic_store_n(&st->taken, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&st->refs, parallelism, __ATOMIC_RELEASE);

	clock_gettime(CLOCK_REALTIME, &now);
	st->epoch_tsc = rte_rdtsc();
	st->epoch_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	st->ns_per_tsc = 1e9 / (double)rte_get_tsc_hz();
	return 0;
}

static int open_ethdev(struct sl_task *t, void **opaque)
{
	const struct sl_ethdev_source_conf *c = t->info.conf;
	struct eth_port_state *st;
	struct eth_source *s;
	uint64_t bit, prev;
	uint16_t pid;
	const uint16_t q = (uint16_t)t->info.index;

	if (resolve_port(c->port, &pid) < 0) {
		sl_task_error(t, "port '%s' disappeared after prepare", c->port);
		return -ENODEV;
	}
	st = &eth_ports[pid];
	if (!st->configured || q >= st->nb_rxq) {
		sl_task_error(t, "port '%s' has no rx queue %u set up (was the job prepared?)",
			      c->port, q);
		return -EINVAL;
	}
	/* two sources on one port would steal each other's packets */
	bit = UINT64_C(1) << (q % 64);
	prev = __atomic_fetch_or(&st->claimed[q / 64], bit, __ATOMIC_ACQ_REL);
	if (prev & bit) {
		sl_task_error(t, "rx queue %u of port '%s' is already polled by another source; give each source its own port",
			      q, c->port);
		return -EBUSY;
	}

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		__atomic_fetch_and(&st->claimed[q / 64], ~bit, __ATOMIC_RELEASE);
		return -ENOMEM;
	}
	s->port = pid;
	s->queue = q;
	s->st = st;
	s->count = c->count;
	s->epoch_ns = st->epoch_ns;
	s->epoch_tsc = st->epoch_tsc;
	s->ns_per_tsc = st->ns_per_tsc;
	s->idle_end_tsc = (uint64_t)c->idle_end_ms * rte_get_tsc_hz() / 1000;
	s->idle_wm_tsc = rte_get_tsc_hz() / 1000000 * ETH_IDLE_WM_PERIOD_US;
	s->last_rx_tsc = rte_rdtsc();
	s->last_wm_tsc = s->last_rx_tsc;
	*opaque = s;
	return 0;
}

static void close_ethdev(void *opaque, struct sl_task *t)
{
	struct eth_source *s = opaque;
	struct eth_port_state *st = s->st;
	const uint64_t bit = UINT64_C(1) << (s->queue % 64);

	RTE_SET_USED(t);
	__atomic_fetch_and(&st->claimed[s->queue / 64], ~bit, __ATOMIC_RELEASE);
	/* acq_rel: the last closer sees every other subtask done with its
	 * queue before it stops the port */
	if (__atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL) == 0 &&
	    st->started) {
		/* stopping rewinds net_pcap files; the next prepare restarts */
		if (rte_eth_dev_stop(s->port) == 0)
			st->started = false;
	}
	free(s);
}

const struct sl_operator_ops sl_op_ethdev_source = {
	.type = "ethdev-source",
	.conf_size = sizeof(struct sl_ethdev_source_conf),
	.min_inputs = 0,
	.max_inputs = 0,
	.sink = false,
	.plan = plan_ethdev,
	.prepare = prepare_ethdev,
	.open = open_ethdev,
	.poll = eth_poll,
	.close = close_ethdev,
};
