/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzzing entry points for the loaders of on-disk data, in libFuzzer's
 * LLVMFuzzerTestOneInput shape.  They live in the library so that a fuzz
 * target is a two-line file (see snapshot.h) and so that the unit tests can
 * drive the same code with their own random mutations.
 *
 * Each loader is run from memory and from a file descriptor (a memfd), the
 * two ways inputs arrive, since the fd path has its own bounds checks.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sluice/io_file.h"
#include "snap_pvt.h"

/* Touch every delivered byte so that ASan sees out-of-bounds pointers. */
static uint64_t fuzz_sink_sum;

static int fuzz_kv(void *arg, const struct sl_snap_kv *kv, unsigned int n)
{
	const struct sl_snap_kstate_info *info = arg;
	uint64_t s = 0;

	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *k = kv[i].key, *v = kv[i].value;

		s += kv[i].kg + kv[i].hash;
		for (unsigned int b = 0; b < info->key_size; b++)
			s += k[b];
		for (unsigned int b = 0; v && b < info->value_size; b++)
			s += v[b];
	}
	fuzz_sink_sum += s;
	return 0;
}

static int fuzz_batch(void *arg, uint32_t channel,
		      const struct sl_snap_chan_id *id,
		      const struct sl_snap_chan_batch *b)
{
	const uint8_t *r = b->records;
	uint64_t s = channel + id->index + strlen(id->peer_uid);

	(void)arg;
	for (uint64_t i = 0; i < (uint64_t)b->record_size * b->record_count; i++)
		s += r[i];
	fuzz_sink_sum += s;
	return 0;
}

/* A memfd holding the bytes, or -1 (the fd variant is then skipped). */
static int fuzz_memfd(const uint8_t *data, size_t len)
{
	int fd = memfd_create("sl_snap_fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (len && sl_io_write_all(fd, data, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void fuzz_kstate_one(const struct sl_snap_src *src)
{
	struct sl_snap_kstate_info info;
	struct sl_snap_kstate_visitor v = { 0 };
	struct sl_snap_err err;

	if (sl_snap_kstate_read_info(src, &info, &err) != 0)
		return;
	/* the callbacks need the sizes: take them from the verified header */
	v.on_entries = fuzz_kv;
	v.on_deletions = fuzz_kv;
	v.arg = &info;
	(void)sl_snap_kstate_load(src, &v, NULL, &err);
	v.kg_first = info.kg_first + info.kg_count / 2;
	v.kg_count = 1;
	(void)sl_snap_kstate_load(src, &v, NULL, &err);
	sl_snap_kstate_info_clear(&info);
}

int sl_snap_fuzz_kstate(const uint8_t *data, size_t len)
{
	struct sl_snap_src src = { "fuzz.kstate", data ? data : (const uint8_t *)"",
				   len, -1 };
	int fd;

	fuzz_kstate_one(&src);
	fd = fuzz_memfd(data, len);
	if (fd >= 0) {
		src.data = NULL;
		src.fd = fd;
		fuzz_kstate_one(&src);
		close(fd);
	}
	return 0;
}

int sl_snap_fuzz_chan(const uint8_t *data, size_t len)
{
	struct sl_snap_src src = { "fuzz.chstate", data ? data : (const uint8_t *)"",
				   len, -1 };
	struct sl_snap_err err;
	int fd;

	(void)sl_snap_chan_load(&src, fuzz_batch, NULL, NULL, &err);
	fd = fuzz_memfd(data, len);
	if (fd >= 0) {
		src.data = NULL;
		src.fd = fd;
		(void)sl_snap_chan_load(&src, fuzz_batch, NULL, NULL, &err);
		close(fd);
	}
	return 0;
}

int sl_snap_fuzz_metadata(const uint8_t *data, size_t len)
{
	struct sl_snap_metadata *m = NULL, *m2 = NULL;
	struct sl_snap_err err;
	void *buf = NULL;
	size_t blen;
	int rc;

	if (sl_snap_meta_decode(data ? data : (const uint8_t *)"", len, "fuzz",
				&m, &err) != 0)
		return 0;
	/* whatever the loader accepts, the encoder must be able to write and
	 * the loader to read back: a disagreement is a bug */
	rc = sl_snap_meta_encode(m, &buf, &blen);
	if (rc == -ENOMEM || rc == -EFBIG)
		goto out;
	if (rc != 0 ||
	    sl_snap_meta_decode(buf, blen, "fuzz-reencoded", &m2, &err) != 0 ||
	    m2->n_operators != m->n_operators ||
	    m2->checkpoint_id != m->checkpoint_id ||
	    m2->stats.files != m->stats.files)
		__builtin_trap();
out:
	free(buf);
	sl_snap_meta_free(m2);
	sl_snap_meta_free(m);
	return 0;
}
