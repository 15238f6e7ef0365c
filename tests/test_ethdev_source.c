/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DPDK ethdev source: pcap files written here with libpcap are replayed
 * through net_pcap and every flow record is checked against the frame it
 * came from; net_null checks counts, parallelism and the shared budget;
 * missing ports and too many queues give errors that say what to do.
 *
 * Records are checked by the count sink's check callback, which copies
 * every field out by name, so the test does not depend on the source's
 * record layout.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "eal_fixture.h"
#include "sluice/job.h"
#include "sluice/operators.h"

/* ------------------------------------------------------------ frames */

struct flow {
	uint32_t src_ip, dst_ip, src_port, dst_port, proto, length;
};

#define MAX_FRAMES 128
#define FRAME_MAX 4096

struct frames {
	unsigned n;
	uint16_t len[MAX_FRAMES];
	uint8_t data[MAX_FRAMES][FRAME_MAX];
	struct flow expect[MAX_FRAMES];
};

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
	return (uint32_t)a << 24 | b << 16 | c << 8 | d;
}

static uint8_t *eth(uint8_t *p, uint16_t type, int vlan)
{
	struct rte_ether_hdr *e = (struct rte_ether_hdr *)p;

	memset(e, 0, sizeof(*e));
	e->dst_addr.addr_bytes[0] = 0x02;
	e->src_addr.addr_bytes[0] = 0x02;
	e->src_addr.addr_bytes[5] = 0x01;
	p += sizeof(*e);
	if (vlan >= 0) {
		struct rte_vlan_hdr *v = (struct rte_vlan_hdr *)p;
		e->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
		v->vlan_tci = rte_cpu_to_be_16((uint16_t)vlan);
		v->eth_proto = rte_cpu_to_be_16(type);
		return p + sizeof(*v);
	}
	e->ether_type = rte_cpu_to_be_16(type);
	return p;
}

/*
 * Append an IPv4 frame: `l4_len` bytes after the IP header (ports at its
 * start for TCP/UDP), `opt_words` 32-bit words of IP options, fragment
 * offset `frag` (8-byte units).  The expected record is stored with it.
 */
static void add_ipv4(struct frames *f, int vlan, uint32_t src, uint32_t dst,
		     uint8_t proto, uint16_t sport, uint16_t dport,
		     unsigned opt_words, uint16_t frag, unsigned l4_len)
{
	uint8_t *start = f->data[f->n];
	uint8_t *p = eth(start, RTE_ETHER_TYPE_IPV4, vlan);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)p;
	unsigned ihl = 5 + opt_words;
	struct flow *x = &f->expect[f->n];

	cr_assert_lt(f->n, MAX_FRAMES);
	memset(ip, 0, ihl * 4);
	ip->version_ihl = (uint8_t)(0x40 | ihl);
	ip->total_length = rte_cpu_to_be_16((uint16_t)(ihl * 4 + l4_len));
	ip->fragment_offset = rte_cpu_to_be_16(frag);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = rte_cpu_to_be_32(src);
	ip->dst_addr = rte_cpu_to_be_32(dst);
	for (unsigned i = 0; i < opt_words * 4; i++)
		p[20 + i] = 0x01; /* NOP options */
	p += ihl * 4;
	memset(p, 0xab, l4_len);
	if (l4_len >= 4) {
		uint16_t s = rte_cpu_to_be_16(sport), d = rte_cpu_to_be_16(dport);
		memcpy(p, &s, 2);
		memcpy(p + 2, &d, 2);
	}
	p += l4_len;
	f->len[f->n] = (uint16_t)(p - start);
	cr_assert_leq(f->len[f->n], FRAME_MAX);

	*x = (struct flow){src, dst, 0, 0, proto, f->len[f->n]};
	if (frag == 0 && l4_len >= 4 &&
	    (proto == IPPROTO_TCP || proto == IPPROTO_UDP)) {
		x->src_port = sport;
		x->dst_port = dport;
	}
	f->n++;
}

/* A frame the source must report as all zeros (but its length). */
static void add_other(struct frames *f, uint16_t type, int vlan,
		      unsigned payload)
{
	uint8_t *start = f->data[f->n];
	uint8_t *p = eth(start, type, vlan);

	memset(p, 0x45, payload); /* looks like an IPv4 header if misparsed */
	p += payload;
	f->len[f->n] = (uint16_t)(p - start);
	f->expect[f->n] = (struct flow){0, 0, 0, 0, 0, f->len[f->n]};
	f->n++;
}

/*
 * The reference traffic: UDP and TCP in both directions, IP options, a
 * VLAN tag, ICMP, a later fragment, ARP, IPv6, truncated headers, and
 * (with `jumbo`) a frame spanning several mbufs.
 */
static void build_frames(struct frames *f, bool jumbo)
{
	memset(f, 0, sizeof(*f));
	add_ipv4(f, -1, ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), IPPROTO_UDP, 1234,
		 53, 0, 0, sizeof(struct rte_udp_hdr) + 20);
	add_ipv4(f, -1, ip4(192, 168, 1, 10), ip4(172, 16, 0, 5), IPPROTO_TCP,
		 40000, 443, 0, 0, sizeof(struct rte_tcp_hdr));
	add_ipv4(f, -1, ip4(172, 16, 0, 5), ip4(192, 168, 1, 10), IPPROTO_TCP,
		 443, 40000, 0, 0, sizeof(struct rte_tcp_hdr) + 100);
	add_ipv4(f, -1, ip4(1, 2, 3, 4), ip4(5, 6, 7, 8), IPPROTO_UDP, 5, 9,
		 2 /* options */, 0, sizeof(struct rte_udp_hdr) + 3);
	add_ipv4(f, 42, ip4(10, 1, 1, 1), ip4(10, 2, 2, 2), IPPROTO_TCP, 80,
		 8080, 0, 0, sizeof(struct rte_tcp_hdr) + 7);
	add_ipv4(f, -1, ip4(8, 8, 8, 8), ip4(10, 0, 0, 1), IPPROTO_ICMP, 0, 0,
		 0, 0, 8);
	add_ipv4(f, -1, ip4(10, 9, 9, 9), ip4(10, 8, 8, 8), IPPROTO_UDP, 7777,
		 8888, 0, 185 /* later fragment */, 64);
	/* TCP cut right after the ports: ports are still reported */
	add_ipv4(f, -1, ip4(11, 0, 0, 1), ip4(11, 0, 0, 2), IPPROTO_TCP, 1111,
		 2222, 0, 0, 4);
	/* UDP cut inside the ports: addresses only */
	add_ipv4(f, -1, ip4(12, 0, 0, 1), ip4(12, 0, 0, 2), IPPROTO_UDP, 3333,
		 4444, 0, 0, 2);
	add_other(f, RTE_ETHER_TYPE_ARP, -1, 28);
	add_other(f, RTE_ETHER_TYPE_IPV6, -1, 60);
	add_other(f, RTE_ETHER_TYPE_IPV4, -1, 10); /* truncated IPv4 header */
	add_other(f, RTE_ETHER_TYPE_ARP, 7, 28);   /* tagged, not IP */
	for (unsigned i = 0; i < 40; i++)
		add_ipv4(f, i % 5 == 0 ? (int)i : -1, ip4(10, 3, i / 256, i % 256),
			 ip4(10, 4, 0, 1), i % 2 ? IPPROTO_TCP : IPPROTO_UDP,
			 (uint16_t)(20000 + i), (uint16_t)(i * 1000 + 1), 0, 0,
			 (i % 2 ? sizeof(struct rte_tcp_hdr)
				: sizeof(struct rte_udp_hdr)) + i * 13);
	if (jumbo)
		add_ipv4(f, -1, ip4(10, 5, 5, 5), ip4(10, 6, 6, 6), IPPROTO_UDP,
			 9000, 9001, 0, 0, 3000);
}

static void write_pcap(const char *path, const struct frames *f)
{
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d;

	cr_assert_not_null(dead);
	d = pcap_dump_open(dead, path);
	cr_assert_not_null(d, "pcap_dump_open(%s): %s", path, pcap_geterr(dead));
	for (unsigned i = 0; i < f->n; i++) {
		struct pcap_pkthdr h = {
			.ts = {.tv_sec = 1700000000 + i, .tv_usec = 0},
			.caplen = f->len[i],
			.len = f->len[i],
		};
		pcap_dump((u_char *)d, &h, f->data[i]);
	}
	pcap_dump_close(d);
	pcap_close(dead);
}

static void pcap_path(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/sl_ethdev_%d_%s.pcap", getpid(), tag);
}

/* ------------------------------------------------ count sink + check */

/* What the check callback collected; one sink subtask, so no locking. */
struct capture {
	struct sl_count_result result; /* filled by the count sink */
	uint64_t records;
	uint64_t cap;		/* records kept in `rec` */
	struct flow *rec;
	int64_t *ts;
	uint64_t bad_length;	/* records whose length != want_length */
	uint32_t want_length;	/* 0 = do not check */
};

static const char *const flow_names[7] = {
	"src_ip", "dst_ip", "src_port", "dst_port", "proto", "length", "ts",
};

/* sl_count_sink_conf.check: copy every record out by field name. */
static int capture_check(struct sl_task *t, const struct sl_batch *b,
			 void *arg)
{
	struct capture *c = arg;
	const struct sl_field *f[7];

	for (unsigned i = 0; i < 7; i++) {
		f[i] = sl_schema_find(t->info.in_schema[0], flow_names[i]);
		if (f[i] == NULL) {
			sl_task_error(t, "input has no field %s", flow_names[i]);
			return -EINVAL;
		}
	}
	for (uint32_t i = 0; i < b->count; i++) {
		const void *r = sl_batch_record(b, i);
		uint32_t len = (uint32_t)sl_field_get_i64(f[5], r);

		if (c->want_length && len != c->want_length)
			c->bad_length++;
		if (c->records < c->cap) {
			struct flow *x = &c->rec[c->records];
			x->src_ip = (uint32_t)sl_field_get_i64(f[0], r);
			x->dst_ip = (uint32_t)sl_field_get_i64(f[1], r);
			x->src_port = (uint32_t)sl_field_get_i64(f[2], r);
			x->dst_port = (uint32_t)sl_field_get_i64(f[3], r);
			x->proto = (uint32_t)sl_field_get_i64(f[4], r);
			x->length = len;
			c->ts[c->records] = sl_field_get_i64(f[6], r);
		}
		c->records++;
	}
	return 0;
}

static void capture_init(struct capture *c, uint64_t cap)
{
	memset(c, 0, sizeof(*c));
	c->cap = cap;
	c->result.max_watermark = SL_WATERMARK_MIN;
	if (cap) {
		c->rec = calloc(cap, sizeof(*c->rec));
		c->ts = calloc(cap, sizeof(*c->ts));
		cr_assert(c->rec != NULL && c->ts != NULL);
	}
}

static void capture_fini(struct capture *c)
{
	free(c->rec);
	free(c->ts);
}

/* ---------------------------------------------------------------- jobs */

/* source (parallelism p) -> count sink (1) checking every batch */
static struct sl_job *make_job(const struct sl_ethdev_source_conf *src,
			       uint32_t p, struct capture *c)
{
	struct sl_job_config cfg;
	struct sl_count_sink_conf cc = {
		.result = &c->result,
		.check = capture_check,
		.check_arg = c,
	};
	struct sl_job *job;
	int s, k;

	sl_job_config_defaults(&cfg);
	job = sl_job_create("ethdev-test", &cfg);
	cr_assert_not_null(job);
	s = sl_job_add(job, "eth", &sl_op_ethdev_source, src, p);
	cr_assert_geq(s, 0, "%s", sl_job_error(job));
	k = sl_job_add(job, "sink", &sl_op_count_sink, &cc, 1);
	cr_assert_geq(k, 0, "%s", sl_job_error(job));
	cr_assert_eq(sl_job_connect(job, s, k,
				    p == 1 ? SL_PART_FORWARD : SL_PART_REBALANCE,
				    NULL),
		     0, "%s", sl_job_error(job));
	return job;
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void expect_flows(const struct capture *c, const struct frames *f,
			 uint64_t n, int64_t t0, int64_t t1)
{
	cr_assert_eq(c->records, n, "records %" PRIu64 ", expected %" PRIu64,
		     c->records, n);
	cr_assert_eq(c->result.records, n);
	for (uint64_t i = 0; i < n && i < c->cap; i++) {
		const struct flow *got = &c->rec[i], *want = &f->expect[i % f->n];

		cr_assert(memcmp(got, want, sizeof(*got)) == 0,
			  "record %" PRIu64 ": got %08x:%u -> %08x:%u proto %u len %u, "
			  "want %08x:%u -> %08x:%u proto %u len %u",
			  i, got->src_ip, got->src_port, got->dst_ip,
			  got->dst_port, got->proto, got->length, want->src_ip,
			  want->src_port, want->dst_ip, want->dst_port,
			  want->proto, want->length);
		/* ingestion time: within the run, never going backwards */
		cr_assert(c->ts[i] >= t0 && c->ts[i] <= t1,
			  "record %" PRIu64 " ts %" PRId64 " outside [%" PRId64 ", %" PRId64 "]",
			  i, c->ts[i], t0, t1);
		if (i > 0)
			cr_assert_geq(c->ts[i], c->ts[i - 1]);
	}
}

static struct frames frames; /* large: keep it off the stack */

/* ----------------------------------------------------------------- tests */

Test(ethdev_source, pcap_records_match_frames, .timeout = 120)
{
	char path[128], vdev[256];
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;
	int64_t t0, t1;

	build_frames(&frames, true);
	pcap_path(path, sizeof(path), "match");
	write_pcap(path, &frames);
	snprintf(vdev, sizeof(vdev), "--vdev=net_pcap0,rx_pcap=%s", path);
	sl_test_eal("0-1", vdev);

	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.port, sizeof(conf.port), "net_pcap0");
	conf.idle_end_ms = 200;
	capture_init(&c, MAX_FRAMES);
	job = make_job(&conf, 1, &c);

	t0 = wall_ns();
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	t1 = wall_ns();
	expect_flows(&c, &frames, frames.n, t0, t1);
	/* the source's watermark followed its records to the sink */
	cr_assert_geq(c.result.max_watermark, c.ts[frames.n - 1]);

	sl_job_free(job);
	capture_fini(&c);
	unlink(path);
	sl_test_eal_fini();
}

/* vdev hotplug, and a second run in the same process replays the file:
 * prepare is idempotent and the last close rewinds net_pcap. */
Test(ethdev_source, pcap_hotplug_and_rerun, .timeout = 120)
{
	char path[128];
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;

	build_frames(&frames, false);
	pcap_path(path, sizeof(path), "rerun");
	write_pcap(path, &frames);
	sl_test_eal("0-1", NULL);

	sl_ethdev_source_conf_defaults(&conf);
	/* no port: it is the hotplugged device */
	snprintf(conf.vdev, sizeof(conf.vdev), "net_pcap7,rx_pcap=%s", path);
	conf.idle_end_ms = 150;
	for (int run = 0; run < 3; run++) {
		int64_t t0 = wall_ns(), t1;

		capture_init(&c, MAX_FRAMES);
		job = make_job(&conf, 1, &c);
		cr_assert_eq(sl_job_run(job), 0, "run %d: %s", run,
			     sl_job_error(job));
		t1 = wall_ns();
		expect_flows(&c, &frames, frames.n, t0, t1);
		sl_job_free(job);
		capture_fini(&c);
	}
	unlink(path);
	sl_test_eal_fini();
}

Test(ethdev_source, pcap_infinite_rx_ends_at_count, .timeout = 120)
{
	const uint64_t count = 100000;
	char path[128];
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;
	int64_t t0, t1;
	unsigned n;
	const struct sl_task_stats *ts;

	build_frames(&frames, false);
	pcap_path(path, sizeof(path), "inf");
	write_pcap(path, &frames);
	sl_test_eal("0-1", NULL);

	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.port, sizeof(conf.port), "net_pcap3");
	snprintf(conf.vdev, sizeof(conf.vdev),
		 "net_pcap3,rx_pcap=%s,infinite_rx=1", path);
	conf.count = count;
	capture_init(&c, count);
	job = make_job(&conf, 1, &c);

	t0 = wall_ns();
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	t1 = wall_ns();
	/* infinite_rx loops over the file in order */
	expect_flows(&c, &frames, count, t0, t1);
	ts = sl_job_task_stats(job, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(ts[0].records_out, count);
	cr_assert_eq(ts[1].records_in, count);

	sl_job_free(job);
	capture_fini(&c);
	unlink(path);
	sl_test_eal_fini();
}

Test(ethdev_source, null_count_exact, .timeout = 120)
{
	const uint64_t count = 250001; /* not a multiple of any burst */
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;

	sl_test_eal("0-1", "--vdev=net_null0");
	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.port, sizeof(conf.port), "net_null0");
	conf.count = count;
	capture_init(&c, 0);
	c.want_length = 64; /* net_null's default packet size */
	job = make_job(&conf, 1, &c);

	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	cr_assert_eq(c.records, count);
	cr_assert_eq(c.bad_length, 0, "%" PRIu64 " records with a length other than 64",
		     c.bad_length);

	/* again on the same port: same result */
	capture_init(&c, 0);
	c.want_length = 64;
	sl_job_free(job);
	job = make_job(&conf, 1, &c);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	cr_assert_eq(c.records, count);

	sl_job_free(job);
	sl_test_eal_fini();
}

Test(ethdev_source, port_by_numeric_id, .timeout = 120)
{
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;

	sl_test_eal("0-1", "--vdev=net_null0");
	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.port, sizeof(conf.port), "0");
	conf.count = 1000;
	capture_init(&c, 0);
	job = make_job(&conf, 1, &c);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	cr_assert_eq(c.records, 1000);
	sl_job_free(job);
	sl_test_eal_fini();
}

/*
 * Two subtasks poll rx queues 0 and 1; `count` is a job-wide budget.
 * First both on one lcore, polled in turn, so each must get packets; then
 * on two lcores, racing for the budget, which must still be exact; then
 * one subtask again, which reconfigures the port.
 */
Test(ethdev_source, null_parallelism_two, .timeout = 120)
{
	const uint64_t count = 400000;
	struct sl_ethdev_source_conf conf;
	const struct sl_task_stats *ts;
	struct capture c;
	struct sl_job *job;
	unsigned n;

	sl_test_eal("(0-2)@(0-1)", "--vdev=net_null0");
	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.port, sizeof(conf.port), "net_null0");
	conf.count = count;

	for (int layout = 0; layout < 2; layout++) {
		uint64_t sum = 0;

		capture_init(&c, 0);
		c.want_length = 64;
		job = make_job(&conf, 2, &c);
		cr_assert_eq(sl_job_place(job, 0, 0, 1), 0);
		cr_assert_eq(sl_job_place(job, 0, 1, layout == 0 ? 1 : 2), 0);
		cr_assert_eq(sl_job_place(job, 1, 0, layout == 0 ? 2 : 1), 0);

		cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
		cr_assert_eq(c.records, count, "layout %d: %" PRIu64 " records",
			     layout, c.records);
		cr_assert_eq(c.bad_length, 0);
		ts = sl_job_task_stats(job, &n);
		cr_assert_eq(n, 3);
		for (unsigned i = 0; i < n; i++) {
			if (strcmp(ts[i].uid, "eth") != 0)
				continue;
			if (layout == 0)
				cr_assert_gt(ts[i].records_out, 0,
					     "subtask %u polled nothing", ts[i].index);
			sum += ts[i].records_out;
		}
		cr_assert_eq(sum, count);
		sl_job_free(job);
	}

	/* back to one queue: the port is reconfigured with a new pool */
	capture_init(&c, 0);
	c.want_length = 64;
	job = make_job(&conf, 1, &c);
	cr_assert_eq(sl_job_run(job), 0, "%s", sl_job_error(job));
	cr_assert_eq(c.records, count);
	sl_job_free(job);
	sl_test_eal_fini();
}

Test(ethdev_source, missing_port_lists_available, .timeout = 120)
{
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;
	const char *msg;

	sl_test_eal("0-1", "--vdev=net_null0");
	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.port, sizeof(conf.port), "net_pcap9");
	capture_init(&c, 0);
	job = make_job(&conf, 1, &c);

	cr_assert_lt(sl_job_prepare(job), 0);
	msg = sl_job_error(job);
	cr_assert(strstr(msg, "'net_pcap9' does not exist") != NULL, "%s", msg);
	cr_assert(strstr(msg, "available ports: net_null0") != NULL, "%s", msg);
	cr_assert(strstr(msg, "--vdev") != NULL, "%s", msg);
	cr_assert_eq(sl_job_error_node(job), 0);
	/* sl_job_run reports the same */
	cr_assert_lt(sl_job_run(job), 0);
	cr_assert(strstr(sl_job_error(job), "net_pcap9") != NULL);

	sl_job_free(job);
	sl_test_eal_fini();
}

Test(ethdev_source, too_many_queues, .timeout = 120)
{
	char path[128], vdev[256];
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;
	const char *msg;

	build_frames(&frames, false);
	pcap_path(path, sizeof(path), "queues");
	write_pcap(path, &frames);
	snprintf(vdev, sizeof(vdev), "--vdev=net_pcap0,rx_pcap=%s", path);
	sl_test_eal("0-1", vdev);

	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.port, sizeof(conf.port), "net_pcap0");
	capture_init(&c, 0);
	job = make_job(&conf, 2, &c);
	cr_assert_lt(sl_job_prepare(job), 0);
	msg = sl_job_error(job);
	cr_assert(strstr(msg, "at most 1 rx queue") != NULL, "%s", msg);
	cr_assert(strstr(msg, "parallelism is 2") != NULL, "%s", msg);

	sl_job_free(job);
	unlink(path);
	sl_test_eal_fini();
}

Test(ethdev_source, bad_hotplug_args, .timeout = 120)
{
	struct sl_ethdev_source_conf conf;
	struct capture c;
	struct sl_job *job;
	const char *msg;

	sl_test_eal("0-1", NULL);
	sl_ethdev_source_conf_defaults(&conf);
	snprintf(conf.vdev, sizeof(conf.vdev),
		 "net_pcap0,rx_pcap=/nonexistent/sluice.pcap");
	capture_init(&c, 0);
	job = make_job(&conf, 1, &c);
	cr_assert_lt(sl_job_prepare(job), 0);
	msg = sl_job_error(job);
	cr_assert(strstr(msg, "cannot hotplug vdev 'net_pcap0,rx_pcap=/nonexistent/sluice.pcap'") != NULL,
		  "%s", msg);
	sl_job_free(job);
	sl_test_eal_fini();
}

/* No EAL needed: plan() checks the conf and builds the fixed schema. */
Test(ethdev_source, plan_schema_and_conf_errors)
{
	struct sl_ethdev_source_conf conf;
	const struct sl_schema *s;
	struct capture c;
	struct sl_job *job;
	static const struct {
		const char *name;
		enum sl_type type;
	} want[] = {
		{"src_ip", SL_TYPE_U32},   {"dst_ip", SL_TYPE_U32},
		{"src_port", SL_TYPE_U32}, {"dst_port", SL_TYPE_U32},
		{"proto", SL_TYPE_U32},	   {"length", SL_TYPE_U32},
		{"ts", SL_TYPE_TIMESTAMP},
	};

	sl_ethdev_source_conf_defaults(&conf);
	cr_assert_eq(conf.rx_desc, 1024);
	capture_init(&c, 0);

	job = make_job(&conf, 1, &c);
	cr_assert_lt(sl_job_plan(job), 0);
	cr_assert(strstr(sl_job_error(job), "no port given") != NULL, "%s",
		  sl_job_error(job));
	sl_job_free(job);

	snprintf(conf.vdev, sizeof(conf.vdev), "net_ring0");
	job = make_job(&conf, 1, &c);
	cr_assert_eq(sl_job_plan(job), 0, "%s", sl_job_error(job));
	s = sl_job_node_schema(job, 0);
	cr_assert_not_null(s);
	cr_assert_eq(s->nfields, 7);
	for (unsigned i = 0; i < 7; i++) {
		cr_assert_str_eq(s->fields[i].name, want[i].name);
		cr_assert_eq(s->fields[i].type, want[i].type);
	}
	/* the port defaults to the hotplugged device's name */
	cr_assert_str_eq(((const struct sl_ethdev_source_conf *)
				  sl_job_node_conf(job, 0))->port,
			 "net_ring0");
	sl_job_free(job);

	conf.idle_end_ms = -1;
	job = make_job(&conf, 1, &c);
	cr_assert_lt(sl_job_plan(job), 0);
	cr_assert(strstr(sl_job_error(job), "idle_end_ms") != NULL);
	sl_job_free(job);
}
