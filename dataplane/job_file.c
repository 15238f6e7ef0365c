/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * YAML job files (format: docs/job-file.md).
 *
 * The file is parsed with libyaml's document API, which keeps the position
 * of every node, so each error can name the file, the line, the key path
 * (e.g. operators[2].window.size) and what to write instead.  The job is
 * built through the public API (sl_job_add/connect/place/plan); the loader
 * adds only what the API cannot know: where in the file each thing came
 * from.  That bookkeeping (lines of operators, inputs, field references
 * and layout entries) is kept in struct jf_pvt for the errors that can only
 * be found later: plan() of an operator, and the checks against the EAL in
 * sl_job_file_prepare().
 *
 * Field references (key, timestamp-field, aggregate fields, ...) are
 * checked here against the upstream output schemas computed by
 * sl_job_plan(), so an unknown field is reported at the line that names it,
 * with the fields that do exist and a did-you-mean.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <yaml.h>

#include <rte_lcore.h>

#include "job_pvt.h"
#include "sluice/job_file.h"
#include "sluice/keygroup.h"
#include "sluice/operators.h"
#include "suggest_pvt.h"

#define KP_MAX 160		/* key path, e.g. operators[12].aggregates[3].field */
#define LIST_MAX 512		/* "(fields: a, b, c)" lists in messages */
#define MAX_EAL_ARGS 256
#define MAX_KEYS 32		/* keys one mapping may have */

/* ------------------------------------------------------------ bookkeeping */

/* One scalar of an operator's definition, to find the line an operator's
 * plan()/prepare() message is about (it quotes the value it rejects). */
struct jf_scalar {
	char *key;
	char *value;
	int line;
};

/* A field name that must exist in the output of one of the node's inputs. */
struct jf_ref {
	char key[KP_MAX];
	char field[SL_FIELD_NAME_MAX];
	int line;
	unsigned input;
	const char *numeric_why; /* non-NULL: the field must be numeric */
};

struct jf_node {
	int line;
	char key[32];	/* "operators[3]" */
	char *where;	/* "PATH:LINE" */
	struct jf_scalar *sc;
	unsigned n_sc, cap_sc;
	struct jf_ref *refs;
	unsigned n_refs, cap_refs;
};

/* One `layout.lcores` entry, checked against the EAL in prepare. */
struct jf_place {
	int line;
	unsigned lcore;
	int node;
	int subtask; /* -1 = every subtask */
};

/* One `layout.io-writers` entry, checked against the EAL in prepare. */
struct jf_writer {
	int line;	   /* of its lcore: */
	unsigned lcore;
	bool own;
	unsigned n_serves;
	unsigned serves[64];
	int serves_line[64];
};

struct jf_pvt {
	struct jf_node *nodes;
	int n_nodes;
	struct jf_place *places;
	unsigned n_places, cap_places;
	struct jf_writer writers[SL_JOB_IO_WRITERS_MAX];
	unsigned n_writers;
};

/* ------------------------------------------------------------------ loader */

struct named_schema {
	const char *name; /* points into the YAML document */
	int line;
	struct sl_schema s;
};

struct ld {
	const char *path;
	yaml_document_t doc;
	char *err;
	size_t errlen;
	struct sl_job_file *jf;
	struct jf_pvt *pvt;
	struct sl_job_config cfg;
	struct named_schema *schemas;
	unsigned n_schemas;
	yaml_node_t *root;
	/* checkpoint keys that combine; their nodes give error lines */
	bool at_least_once, unaligned;
	yaml_node_t *mode_node, *unaligned_node, *aligned_timeout_node,
		*max_concurrent_node, *ckpt_node, *full_every_node;
	/* restart-strategy keys: the type, and the first key of each
	 * strategy's own keys (an error if that strategy is not chosen) */
	yaml_node_t *restart_type_node, *fixed_node, *exp_node;
	char fixed_key[KP_MAX], exp_key[KP_MAX];
};

static int line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static void jf_verrf(char *err, size_t errlen, const char *path, int line,
		     const char *key, const char *fmt, va_list ap)
{
	size_t used;
	int w;

	if (err == NULL || errlen == 0)
		return;
	if (line > 0)
		w = snprintf(err, errlen, "%s:%d: ", path, line);
	else
		w = snprintf(err, errlen, "%s: ", path);
	used = w < 0 ? 0 : (size_t)w;
	if (used < errlen && key != NULL && key[0] != '\0') {
		w = snprintf(err + used, errlen - used, "%s: ", key);
		used += w < 0 ? 0 : (size_t)w;
	}
	if (used < errlen)
		vsnprintf(err + used, errlen - used, fmt, ap);
}

static int jf_errf(char *err, size_t errlen, const char *path, int line,
		   const char *key, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int jf_errf(char *err, size_t errlen, const char *path, int line,
		   const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jf_verrf(err, errlen, path, line, key, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Error about node n (its line) at key path `key`; returns -EINVAL. */
static int lerr(struct ld *ld, const yaml_node_t *n, const char *key,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int lerr(struct ld *ld, const yaml_node_t *n, const char *key,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jf_verrf(ld->err, ld->errlen, ld->path, n ? line_of(n) : 0, key, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static yaml_node_t *node_at(struct ld *ld, int id)
{
	return yaml_document_get_node(&ld->doc, id);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* `key:` with nothing after it, `~` or `null` */
static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = sval(n);
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0;
}

/* "a mapping", "a list", "'value'": what the user wrote, for messages */
static const char *kind_of(const yaml_node_t *n, char *buf, size_t len)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (is_null(n))
			return "nothing";
		snprintf(buf, len, "'%s'", sval(n));
		return buf;
	default:
		return "nothing";
	}
}

/* Key paths are only for messages: a cut one is still useful, so
 * truncation is accepted (the checks keep GCC from warning about it). */
static char *kp(char *buf, const char *base, const char *name)
{
	int w;

	if (base == NULL || base[0] == '\0')
		w = snprintf(buf, KP_MAX, "%s", name);
	else
		w = snprintf(buf, KP_MAX, "%s.%s", base, name);
	if (w >= KP_MAX)
		buf[KP_MAX - 1] = '\0';
	return buf;
}

static char *kpi(char *buf, const char *base, size_t i)
{
	if (snprintf(buf, KP_MAX, "%s[%zu]", base, i) >= KP_MAX)
		buf[KP_MAX - 1] = '\0';
	return buf;
}

#define MAP_FOREACH(map, pair)                                                 \
	for (yaml_node_pair_t *pair = (map)->data.mapping.pairs.start;         \
	     pair < (map)->data.mapping.pairs.top; pair++)
#define SEQ_LEN(seq)                                                           \
	((size_t)((seq)->data.sequence.items.top - (seq)->data.sequence.items.start))
#define SEQ_AT(ld, seq, i) node_at(ld, (seq)->data.sequence.items.start[i])

static bool in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

/*
 * Check that `map` is a mapping whose keys are plain names, each given once
 * and each in `allowed` (NULL: any).  `what` names the key set in the
 * message listing the valid keys ("keys of a generator").
 */
static int map_check(struct ld *ld, yaml_node_t *map, const char *key,
		     const char *const *allowed, const char *what)
{
	char b[64], list[LIST_MAX];

	if (map->type != YAML_MAPPING_NODE)
		return lerr(ld, map, key,
			    "expected a mapping (key: value lines), got %s",
			    kind_of(map, b, sizeof(b)));
	MAP_FOREACH(map, pair)
	{
		yaml_node_t *k = node_at(ld, pair->key);

		if (k->type != YAML_SCALAR_NODE)
			return lerr(ld, k, key, "keys must be plain names, got %s",
				    kind_of(k, b, sizeof(b)));
		for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
			yaml_node_t *k0 = node_at(ld, p->key);
			if (k0->type == YAML_SCALAR_NODE &&
			    strcmp(sval(k0), sval(k)) == 0)
				return lerr(ld, k, key,
					    "key '%s' is given twice (first at line %d); keep one",
					    sval(k), line_of(k0));
		}
		if (allowed == NULL || in_list(allowed, sval(k)))
			continue;
		const char *sug = sl_suggest(sval(k), allowed, (size_t)-1);
		if (sug != NULL)
			return lerr(ld, k, key, "unknown key '%s'; did you mean '%s'?",
				    sval(k), sug);
		return lerr(ld, k, key, "unknown key '%s' (%s: %s)", sval(k), what,
			    sl_suggest_list(list, sizeof(list), allowed, (size_t)-1));
	}
	return 0;
}

/* Value of `name` in a checked mapping, or NULL; a null value counts as
 * absent so that `input:` with nothing is reported as missing. */
static yaml_node_t *map_get(struct ld *ld, yaml_node_t *map, const char *name)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	MAP_FOREACH(map, pair)
	{
		yaml_node_t *k = node_at(ld, pair->key);
		if (k->type == YAML_SCALAR_NODE && strcmp(sval(k), name) == 0) {
			yaml_node_t *v = node_at(ld, pair->value);
			return is_null(v) ? NULL : v;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------- scalar values */

static int want_scalar(struct ld *ld, yaml_node_t *v, const char *key,
		       const char *example)
{
	char b[64];

	if (v->type == YAML_SCALAR_NODE && !is_null(v))
		return 0;
	return lerr(ld, v, key, "expected a single value (e.g. %s), got %s",
		    example, kind_of(v, b, sizeof(b)));
}

/* Copy text without '_' digit separators (10_000_000). */
static bool strip_underscores(const char *s, char *out, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] == '_' && i > 0 && isdigit((unsigned char)s[i - 1]) &&
		    isdigit((unsigned char)s[i + 1]))
			continue;
		if (j + 1 >= len)
			return false;
		out[j++] = s[i];
	}
	out[j] = '\0';
	return true;
}

/* Whole number: decimal (with _ separators), 0x hex, or an integral value
 * in exponent form (2e7).  -EINVAL if not a number, -ERANGE if negative or
 * too large for uint64. */
static int parse_u64(const char *text, uint64_t *out)
{
	char s[64], *end;

	if (!strip_underscores(text, s, sizeof(s)) || s[0] == '\0')
		return -EINVAL;
	if (s[0] == '-') {
		double d = strtod(s, &end);
		return *end == '\0' && !isnan(d) ? -ERANGE : -EINVAL;
	}
	if (!isdigit((unsigned char)s[0]) && s[0] != '+')
		return -EINVAL;
	if (strpbrk(s, "eE.") != NULL && strncasecmp(s, "0x", 2) != 0) {
		double d = strtod(s, &end);
		if (*end != '\0' || isnan(d) || d != floor(d))
			return -EINVAL;
		if (d >= 18446744073709551616.0)
			return -ERANGE;
		*out = (uint64_t)d;
		return 0;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, strncasecmp(s, "0x", 2) == 0 ? 16 : 10);
	if (*end != '\0' || end == s)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_double(const char *text, double *out)
{
	char s[64], *end;

	if (!strip_underscores(text, s, sizeof(s)) || s[0] == '\0')
		return -EINVAL;
	errno = 0;
	*out = strtod(s, &end);
	if (*end != '\0' || end == s || isnan(*out) || isinf(*out))
		return -EINVAL;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "0", NULL };

	for (unsigned i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Durations: one or more <number><unit> parts ("1s", "1.5ms", "1m30s"),
 * units ns, us (or µs), ms, s, m (or min), h, d.  A bare 0 needs no unit.
 * -EINVAL: not a duration; -EDOM: a bare number without unit; -ERANGE:
 * too long for int64 nanoseconds.
 */
static int parse_duration(const char *text, int64_t *out)
{
	static const struct {
		const char *name;
		int64_t ns;
	} units[] = {
		{ "ns", 1 },
		{ "us", 1000 },
		{ "\xc2\xb5s", 1000 }, /* µs */
		{ "ms", 1000000 },
		{ "s", 1000000000LL },
		{ "min", 60000000000LL },
		{ "m", 60000000000LL },
		{ "h", 3600000000000LL },
		{ "d", 86400000000000LL },
	};
	const char *p = text;
	int64_t total = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return -EINVAL;
	while (*p != '\0' && !isspace((unsigned char)*p)) {
		uint64_t ip = 0, frac = 0, scale = 1;
		bool digits = false;
		int64_t unit = 0, part;
		size_t ulen = 0;

		for (; isdigit((unsigned char)*p) || *p == '_'; p++) {
			if (*p == '_')
				continue;
			if (ip > (UINT64_MAX - 9) / 10)
				return -ERANGE;
			ip = ip * 10 + (uint64_t)(*p - '0');
			digits = true;
		}
		if (*p == '.') {
			for (p++; isdigit((unsigned char)*p); p++) {
				/* beyond nanosecond resolution the digits
				 * cannot matter */
				if (scale < 1000000000ULL) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
				digits = true;
			}
		}
		if (!digits)
			return -EINVAL;
		for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].name);
			if (strncmp(p, units[i].name, l) == 0 &&
			    !isalpha((unsigned char)p[l])) {
				unit = units[i].ns;
				ulen = l;
				break;
			}
		}
		if (unit == 0) {
			while (isspace((unsigned char)*p))
				p++;
			if (*p != '\0')
				return -EINVAL;
			if (ip == 0 && frac == 0 && total == 0 && p[0] == '\0')
				break; /* a bare 0 */
			return -EDOM;
		}
		p += ulen;
		if (ip > (uint64_t)INT64_MAX ||
		    __builtin_mul_overflow((int64_t)ip, unit, &part) ||
		    __builtin_add_overflow(part, (int64_t)(frac * (uint64_t)unit / scale), &part) ||
		    __builtin_add_overflow(total, part, &total))
			return -ERANGE;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0')
		return -EINVAL;
	*out = total;
	return 0;
}

/* RFC 3339 time ("2026-01-01T00:00:00Z", "...T00:00:00.5+01:00") to ns
 * since the Unix epoch. */
static int parse_rfc3339(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	int64_t frac_ns = 0, scale = 100000000;
	int off_min = 0, n = 0;
	char sep;

	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &sep, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 7 ||
	    (sep != 'T' && sep != 't' && sep != ' '))
		return -EINVAL;
	s += n;
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++) {
			frac_ns += (*s - '0') * scale;
			scale /= 10;
		}
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int hh, mm;
		if (sscanf(s + 1, "%2d:%2d%n", &hh, &mm, &n) != 2)
			return -EINVAL;
		off_min = (hh * 60 + mm) * (*s == '-' ? -1 : 1);
		s += 1 + n;
	} else {
		return -EINVAL;
	}
	if (*s != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	int64_t sec = (int64_t)t - off_min * 60LL, ns;
	/* int64 nanoseconds reach from 1677 to 2262 */
	if (__builtin_mul_overflow(sec, 1000000000LL, &ns) ||
	    __builtin_add_overflow(ns, frac_ns, &ns))
		return -ERANGE;
	*out = ns;
	return 0;
}

/* The getters below: 1 = value read, 0 = key absent, -EINVAL = error
 * (message set).  `base` is the key path of `map`. */

static int opt_u64(struct ld *ld, yaml_node_t *map, const char *base,
		   const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
	yaml_node_t *v = map_get(ld, map, name);
	char key[KP_MAX];
	uint64_t x;
	int rc;

	if (v == NULL)
		return 0;
	kp(key, base, name);
	if ((rc = want_scalar(ld, v, key, "42")) < 0)
		return rc;
	rc = parse_u64(sval(v), &x);
	if (rc == -EINVAL)
		return lerr(ld, v, key, "'%s' is not a whole number; write e.g. %" PRIu64,
			    sval(v), min > 42 ? min : 42);
	if (rc == -ERANGE && sval(v)[0] == '-')
		return lerr(ld, v, key, "'%s' must not be negative", sval(v));
	if (rc == 0 && x < min)
		return lerr(ld, v, key, "'%s' is too small (at least %" PRIu64 ")",
			    sval(v), min);
	if (rc == -ERANGE || x > max)
		return lerr(ld, v, key, "'%s' is too large (at most %" PRIu64 ")",
			    sval(v), max);
	*out = x;
	return 1;
}

static int opt_u32(struct ld *ld, yaml_node_t *map, const char *base,
		   const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t x;
	int rc = opt_u64(ld, map, base, name, min, max, &x);

	if (rc == 1)
		*out = (uint32_t)x;
	return rc;
}

static int opt_double(struct ld *ld, yaml_node_t *map, const char *base,
		      const char *name, double min, double *out)
{
	yaml_node_t *v = map_get(ld, map, name);
	char key[KP_MAX];
	double x;
	int rc;

	if (v == NULL)
		return 0;
	kp(key, base, name);
	if ((rc = want_scalar(ld, v, key, "1.5")) < 0)
		return rc;
	if (parse_double(sval(v), &x) < 0)
		return lerr(ld, v, key, "'%s' is not a number; write e.g. 0.5 or 1000",
			    sval(v));
	if (x < min)
		return lerr(ld, v, key, "'%s' is out of range (at least %g)", sval(v), min);
	*out = x;
	return 1;
}

static int opt_bool(struct ld *ld, yaml_node_t *map, const char *base,
		    const char *name, bool *out)
{
	yaml_node_t *v = map_get(ld, map, name);
	char key[KP_MAX];
	int rc;

	if (v == NULL)
		return 0;
	kp(key, base, name);
	if ((rc = want_scalar(ld, v, key, "true")) < 0)
		return rc;
	if (parse_bool(sval(v), out) < 0)
		return lerr(ld, v, key, "'%s' is not a boolean; write true or false",
			    sval(v));
	return 1;
}

static int duration_err(struct ld *ld, yaml_node_t *v, const char *key, int rc)
{
	if (rc == -EDOM)
		return lerr(ld, v, key, "'%s' has no unit; write e.g. %sms or %ss",
			    sval(v), sval(v), sval(v));
	if (rc == -ERANGE)
		return lerr(ld, v, key, "'%s' is too long a duration", sval(v));
	return lerr(ld, v, key, "'%s' is not a duration; use e.g. 500ms, 1s, 2m",
		    sval(v));
}

static int opt_duration(struct ld *ld, yaml_node_t *map, const char *base,
			const char *name, int64_t *ns)
{
	yaml_node_t *v = map_get(ld, map, name);
	char key[KP_MAX];
	int rc;

	if (v == NULL)
		return 0;
	kp(key, base, name);
	if ((rc = want_scalar(ld, v, key, "1s")) < 0)
		return rc;
	if ((rc = parse_duration(sval(v), ns)) < 0)
		return duration_err(ld, v, key, rc);
	return 1;
}

/* A duration stored in a coarser unit (us, ms) that must fit `max`. */
static int opt_duration_in(struct ld *ld, yaml_node_t *map, const char *base,
			   const char *name, int64_t unit_ns, uint64_t max,
			   uint64_t *out)
{
	int64_t ns;
	int rc = opt_duration(ld, map, base, name, &ns);
	char key[KP_MAX];

	if (rc != 1)
		return rc;
	if ((uint64_t)(ns / unit_ns) > max)
		return lerr(ld, map_get(ld, map, name), kp(key, base, name),
			    "'%s' is too long", sval(map_get(ld, map, name)));
	*out = (uint64_t)(ns / unit_ns);
	return 1;
}

static int opt_str(struct ld *ld, yaml_node_t *map, const char *base,
		   const char *name, char *dst, size_t cap, const char *example)
{
	yaml_node_t *v = map_get(ld, map, name);
	char key[KP_MAX];
	int rc;

	if (v == NULL)
		return 0;
	kp(key, base, name);
	if ((rc = want_scalar(ld, v, key, example)) < 0)
		return rc;
	if (strlen(sval(v)) >= cap)
		return lerr(ld, v, key, "'%.40s...' is too long (at most %zu characters)",
			    sval(v), cap - 1);
	snprintf(dst, cap, "%s", sval(v));
	return 1;
}

static int need(struct ld *ld, int rc, yaml_node_t *map, const char *base,
		const char *name, const char *example)
{
	if (rc != 0)
		return rc;
	return lerr(ld, map, base, "missing '%s' (e.g. %s: %s)", name, name, example);
}

/* One of `names` (NULL-terminated); its index into *out. */
static int opt_enum(struct ld *ld, yaml_node_t *map, const char *base,
		    const char *name, const char *const *names, int *out)
{
	yaml_node_t *v = map_get(ld, map, name);
	char key[KP_MAX], list[LIST_MAX];
	int rc;

	if (v == NULL)
		return 0;
	kp(key, base, name);
	if ((rc = want_scalar(ld, v, key, names[0])) < 0)
		return rc;
	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(sval(v), names[i]) == 0) {
			*out = i;
			return 1;
		}
	}
	const char *sug = sl_suggest(sval(v), names, (size_t)-1);
	sl_suggest_list(list, sizeof(list), names, (size_t)-1);
	if (sug != NULL)
		return lerr(ld, v, key, "unknown %s '%s'; did you mean '%s'? (one of: %s)",
			    name, sval(v), sug, list);
	return lerr(ld, v, key, "unknown %s '%s' (one of: %s)", name, sval(v), list);
}

/* ------------------------------------------------------------ bookkeeping */

/* Field requirements, as the reason given when a field does not meet them.
 * Event-time fields are compared by address: they need timestamp or i64
 * (nanoseconds), the other reasons only a numeric type. */
static const char TS_WHY[] =
	"event time needs a timestamp (or i64 nanoseconds) field";

static bool type_meets(enum sl_type t, const char *why)
{
	if (why == TS_WHY)
		return t == SL_TYPE_TIMESTAMP || t == SL_TYPE_I64;
	return why == NULL || sl_type_is_numeric(t);
}

static int add_ref(struct ld *ld, int node, const char *key, int line,
		   const char *field, unsigned input, const char *numeric_why)
{
	struct jf_node *n = &ld->pvt->nodes[node];

	if (n->n_refs == n->cap_refs) {
		unsigned cap = n->cap_refs ? n->cap_refs * 2 : 8;
		struct jf_ref *r = realloc(n->refs, cap * sizeof(*r));
		if (r == NULL)
			return -ENOMEM;
		n->refs = r;
		n->cap_refs = cap;
	}
	struct jf_ref *r = &n->refs[n->n_refs++];
	snprintf(r->key, sizeof(r->key), "%s", key);
	snprintf(r->field, sizeof(r->field), "%s", field);
	r->line = line;
	r->input = input;
	r->numeric_why = numeric_why;
	return 0;
}

static int add_scalar(struct jf_node *n, const char *key, const char *value,
		      int line)
{
	if (n->n_sc == n->cap_sc) {
		unsigned cap = n->cap_sc ? n->cap_sc * 2 : 16;
		struct jf_scalar *s = realloc(n->sc, cap * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		n->sc = s;
		n->cap_sc = cap;
	}
	struct jf_scalar *s = &n->sc[n->n_sc];
	s->key = strdup(key);
	s->value = strdup(value);
	s->line = line;
	if (s->key == NULL || s->value == NULL) {
		free(s->key);
		free(s->value);
		return -ENOMEM;
	}
	n->n_sc++;
	return 0;
}

/* Remember every scalar of an operator's definition with its key path. */
static int collect_scalars(struct ld *ld, struct jf_node *n, yaml_node_t *v,
			   const char *key)
{
	char sub[KP_MAX];
	int rc = 0;

	switch (v->type) {
	case YAML_SCALAR_NODE:
		return add_scalar(n, key, sval(v), line_of(v));
	case YAML_SEQUENCE_NODE:
		for (size_t i = 0; i < SEQ_LEN(v) && rc == 0; i++)
			rc = collect_scalars(ld, n, SEQ_AT(ld, v, i), kpi(sub, key, i));
		return rc;
	case YAML_MAPPING_NODE:
		MAP_FOREACH(v, pair)
		{
			yaml_node_t *k = node_at(ld, pair->key);
			if (k->type != YAML_SCALAR_NODE)
				continue;
			rc = collect_scalars(ld, n, node_at(ld, pair->value),
					     kp(sub, key, sval(k)));
			if (rc < 0)
				return rc;
		}
		return 0;
	default:
		return 0;
	}
}

static struct jf_pvt *pvt_of(const struct sl_job_file *jf)
{
	return jf->pvt;
}

static void free_pvt(struct jf_pvt *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->n_nodes; i++) {
		struct jf_node *n = &p->nodes[i];
		for (unsigned k = 0; k < n->n_sc; k++) {
			free(n->sc[k].key);
			free(n->sc[k].value);
		}
		free(n->sc);
		free(n->refs);
		free(n->where);
	}
	free(p->nodes);
	free(p->places);
	free(p);
}

/* --------------------------------------------------------------- schemas */

static const char *const type_names[] = { "u32", "u64", "i64", "f64",
					  "timestamp", "bytes", NULL };

static int parse_fields(struct ld *ld, yaml_node_t *seq, const char *key,
			struct sl_schema *s)
{
	static const char *const field_keys[] = { "name", "type", "size", NULL };
	char b[64], sub[KP_MAX], fk[KP_MAX];
	int rc;

	memset(s, 0, sizeof(*s));
	if (seq->type != YAML_SEQUENCE_NODE || SEQ_LEN(seq) == 0)
		return lerr(ld, seq, key,
			    "expected a list of fields like [{name: key, type: u64}, {name: ts, type: timestamp}], got %s",
			    kind_of(seq, b, sizeof(b)));
	for (size_t i = 0; i < SEQ_LEN(seq); i++) {
		yaml_node_t *f = SEQ_AT(ld, seq, i);
		char name[SL_FIELD_NAME_MAX] = "";
		int type = -1;
		uint32_t size = 0;

		kpi(sub, key, i);
		if ((rc = map_check(ld, f, sub, field_keys, "keys of a field")) < 0)
			return rc;
		rc = opt_str(ld, f, sub, "name", name, sizeof(name), "key");
		if ((rc = need(ld, rc, f, sub, "name", "key")) < 0)
			return rc;
		rc = opt_enum(ld, f, sub, "type", type_names, &type);
		if ((rc = need(ld, rc, f, sub, "type", "u64")) < 0)
			return rc;
		rc = opt_u32(ld, f, sub, "size", 1, SL_BYTES_MAX, &size);
		if (rc < 0)
			return rc;
		if (type == SL_TYPE_BYTES && rc == 0)
			return lerr(ld, f, sub, "bytes field '%s' needs a size (1..%d), e.g. size: 16",
				    name, SL_BYTES_MAX);
		if (type != SL_TYPE_BYTES && rc == 1)
			return lerr(ld, map_get(ld, f, "size"), kp(fk, sub, "size"),
				    "only bytes fields take a size (%s fields have a fixed size); remove it",
				    type_names[type]);
		rc = sl_schema_add(s, name, (enum sl_type)type, (uint16_t)size);
		if (rc == -EEXIST)
			return lerr(ld, map_get(ld, f, "name"), kp(fk, sub, "name"),
				    "field '%s' appears twice in this schema; rename one",
				    name);
		if (rc == -ENOSPC)
			return lerr(ld, f, sub, "too many fields (at most %d)",
				    SL_SCHEMA_MAX_FIELDS);
		if (rc < 0)
			return lerr(ld, map_get(ld, f, "name"), kp(fk, sub, "name"),
				    "'%s' is not a valid field name (1..%d characters)",
				    name, SL_FIELD_NAME_MAX - 1);
	}
	return 0;
}

static int parse_schemas(struct ld *ld, yaml_node_t *map)
{
	char key[KP_MAX];
	size_t n;
	int rc;

	if ((rc = map_check(ld, map, "schemas", NULL, NULL)) < 0)
		return rc;
	n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	ld->schemas = calloc(n ? n : 1, sizeof(*ld->schemas));
	if (ld->schemas == NULL)
		return -ENOMEM;
	MAP_FOREACH(map, pair)
	{
		yaml_node_t *k = node_at(ld, pair->key);
		struct named_schema *ns = &ld->schemas[ld->n_schemas];

		ns->name = sval(k);
		ns->line = line_of(k);
		rc = parse_fields(ld, node_at(ld, pair->value),
				  kp(key, "schemas", sval(k)), &ns->s);
		if (rc < 0)
			return rc;
		ld->n_schemas++;
	}
	return 0;
}

/* `schema:` of a source: a name from `schemas:` or an inline field list.
 * `label` receives how messages should name it. */
static int opt_schema(struct ld *ld, yaml_node_t *map, const char *base,
		      struct sl_schema *s, char *label, size_t labellen)
{
	yaml_node_t *v = map_get(ld, map, "schema");
	char key[KP_MAX], list[LIST_MAX];
	const char *names[64];
	unsigned n = 0;

	if (v == NULL)
		return 0;
	kp(key, base, "schema");
	if (v->type == YAML_SEQUENCE_NODE) {
		snprintf(label, labellen, "the schema of %s", base);
		return parse_fields(ld, v, key, s) < 0 ? -EINVAL : 1;
	}
	if (v->type != YAML_SCALAR_NODE)
		return lerr(ld, v, key,
			    "expected a schema name from 'schemas:' or a field list like [{name: key, type: u64}], got a mapping");
	for (unsigned i = 0; i < ld->n_schemas; i++) {
		if (strcmp(ld->schemas[i].name, sval(v)) == 0) {
			*s = ld->schemas[i].s;
			snprintf(label, labellen, "schema '%s'", sval(v));
			return 1;
		}
		if (n < 64)
			names[n++] = ld->schemas[i].name;
	}
	if (n == 0)
		return lerr(ld, v, key,
			    "unknown schema '%s': the file has no 'schemas:' section; define it there or list the fields inline",
			    sval(v));
	const char *sug = sl_suggest(sval(v), names, n);
	sl_suggest_list(list, sizeof(list), names, n);
	if (sug != NULL)
		return lerr(ld, v, key, "unknown schema '%s'; did you mean '%s'? (schemas: %s)",
			    sval(v), sug, list);
	return lerr(ld, v, key, "unknown schema '%s' (schemas: %s)", sval(v), list);
}

static void field_names(const struct sl_schema *s, const char **names)
{
	for (unsigned i = 0; i < s->nfields; i++)
		names[i] = s->fields[i].name;
}

/* A field of the operator's own schema (sources). */
static int opt_own_field(struct ld *ld, yaml_node_t *map, const char *base,
			 const char *name, const struct sl_schema *s,
			 const char *label, const char *numeric_why,
			 char *dst)
{
	yaml_node_t *v = map_get(ld, map, name);
	const char *names[SL_SCHEMA_MAX_FIELDS];
	char key[KP_MAX], list[LIST_MAX];
	const struct sl_field *f;
	int rc;

	if ((rc = opt_str(ld, map, base, name, dst, SL_FIELD_NAME_MAX, "ts")) != 1)
		return rc;
	kp(key, base, name);
	f = sl_schema_find(s, dst);
	if (f == NULL) {
		field_names(s, names);
		const char *sug = sl_suggest(dst, names, s->nfields);
		sl_suggest_list(list, sizeof(list), names, s->nfields);
		if (sug != NULL)
			return lerr(ld, v, key, "field '%s' is not in %s (fields: %s); did you mean '%s'?",
				    dst, label, list, sug);
		return lerr(ld, v, key, "field '%s' is not in %s (fields: %s)", dst,
			    label, list);
	}
	if (!type_meets(f->type, numeric_why))
		return lerr(ld, v, key, "field '%s' is %s; %s", dst,
			    sl_type_name(f->type), numeric_why);
	return 1;
}

/* ------------------------------------------------------------- operators */

struct opctx {
	int idx;
	const char *key;	/* "operators[i]" */
	yaml_node_t *map;
	uint32_t parallelism;	/* 0 = parallelism.default */
	bool parallelism_given;
	const char *key_field;	/* keyed operators: the key, for default hash */
	int key_line;
};

/* A field of the operator's input `input`, checked once schemas exist. */
static int opt_in_field(struct ld *ld, struct opctx *o, yaml_node_t *map,
			const char *base, const char *name, unsigned input,
			const char *numeric_why, char *dst)
{
	char key[KP_MAX];
	int rc = opt_str(ld, map, base, name, dst, SL_FIELD_NAME_MAX, "key");

	if (rc != 1)
		return rc;
	rc = add_ref(ld, o->idx, kp(key, base, name),
		     line_of(map_get(ld, map, name)), dst, input, numeric_why);
	return rc < 0 ? rc : 1;
}

static const char *const format_names[] = { "csv", "binary", NULL };

static const char *const k_generator[] = {
	"schema", "seed", "count", "rate", "key-cardinality", "key-skew",
	"value-range", "start-time", "time-step", "max-out-of-orderness",
	"key-field", "timestamp-field", "seq-field", NULL
};

static int opt_start_time(struct ld *ld, yaml_node_t *map, const char *base,
			  int64_t *out)
{
	yaml_node_t *v = map_get(ld, map, "start-time");
	char key[KP_MAX];
	uint64_t u;
	int rc;

	if (v == NULL)
		return 0;
	kp(key, base, "start-time");
	if ((rc = want_scalar(ld, v, key, "2026-01-01T00:00:00Z")) < 0)
		return rc;
	if (parse_u64(sval(v), &u) == 0 && u <= INT64_MAX) {
		*out = (int64_t)u;
		return 1;
	}
	if (parse_rfc3339(sval(v), out) == 0 || parse_duration(sval(v), out) == 0)
		return 1;
	return lerr(ld, v, key,
		    "'%s' is not a time; write nanoseconds since the epoch, a duration since the epoch (e.g. 0s) or a UTC time like 2026-01-01T00:00:00Z",
		    sval(v));
}

static int parse_generator(struct ld *ld, struct opctx *o, void *conf)
{
	struct sl_generator_conf *c = conf;
	yaml_node_t *m = o->map;
	const char *k = o->key;
	char label[KP_MAX + 32];
	int rc;

	sl_generator_conf_defaults(c);
	rc = opt_schema(ld, m, k, &c->schema, label, sizeof(label));
	if ((rc = need(ld, rc, m, k, "schema", "events")) < 0)
		return rc;
	if ((rc = opt_u64(ld, m, k, "seed", 0, UINT64_MAX, &c->seed)) < 0 ||
	    (rc = opt_u64(ld, m, k, "count", 0, UINT64_MAX, &c->count)) < 0 ||
	    (rc = opt_double(ld, m, k, "rate", 0, &c->rate)) < 0 ||
	    (rc = opt_u64(ld, m, k, "key-cardinality", 1, UINT64_MAX,
			  &c->key_cardinality)) < 0 ||
	    (rc = opt_double(ld, m, k, "key-skew", 0, &c->key_skew)) < 0 ||
	    (rc = opt_u64(ld, m, k, "value-range", 1, UINT64_MAX, &c->value_range)) < 0 ||
	    (rc = opt_start_time(ld, m, k, &c->start_time_ns)) < 0 ||
	    (rc = opt_duration(ld, m, k, "time-step", &c->time_step_ns)) < 0 ||
	    (rc = opt_duration(ld, m, k, "max-out-of-orderness",
			       &c->max_out_of_orderness_ns)) < 0)
		return rc;

	/* The defaults may name fields this schema does not have: a field the
	 * user did not ask for is simply not generated. */
	static const char *const fkeys[] = { "key-field", "timestamp-field", "seq-field" };
	char *fdst[] = { c->key_field, c->ts_field, c->seq_field };
	static const char *const why[] = {
		"the generator writes key numbers into it; use a numeric field",
		TS_WHY,
		"the generator writes sequence numbers into it; use a numeric field",
	};
	for (unsigned i = 0; i < 3; i++) {
		rc = opt_own_field(ld, m, k, fkeys[i], &c->schema, label, why[i], fdst[i]);
		if (rc < 0)
			return rc;
		if (rc == 0 && fdst[i][0] != '\0' &&
		    sl_schema_find(&c->schema, fdst[i]) == NULL)
			fdst[i][0] = '\0';
	}
	return 0;
}

static const char *const k_file_source[] = {
	"schema", "path", "format", "start-offset", "skip-header",
	"timestamp-field", "max-out-of-orderness", NULL
};

static int parse_file_source(struct ld *ld, struct opctx *o, void *conf)
{
	struct sl_file_source_conf *c = conf;
	yaml_node_t *m = o->map;
	const char *k = o->key;
	char label[KP_MAX + 32];
	int fmt = SL_FILE_CSV, rc;

	if (o->parallelism > 1)
		return lerr(ld, map_get(ld, m, "parallelism"), k,
			    "a file-source reads its file with one subtask; set parallelism: 1 (or leave it out)");
	o->parallelism = 1;
	rc = opt_schema(ld, m, k, &c->schema, label, sizeof(label));
	if ((rc = need(ld, rc, m, k, "schema", "events")) < 0)
		return rc;
	rc = opt_str(ld, m, k, "path", c->path, sizeof(c->path), "data/events.csv");
	if ((rc = need(ld, rc, m, k, "path", "data/events.csv")) < 0)
		return rc;
	if ((rc = opt_enum(ld, m, k, "format", format_names, &fmt)) < 0)
		return rc;
	c->format = (enum sl_file_format)fmt;
	/* files written by file-sink in CSV start with a header line */
	c->skip_header = c->format == SL_FILE_CSV;
	if ((rc = opt_u64(ld, m, k, "start-offset", 0, UINT64_MAX, &c->start_offset)) < 0 ||
	    (rc = opt_bool(ld, m, k, "skip-header", &c->skip_header)) < 0 ||
	    (rc = opt_duration(ld, m, k, "max-out-of-orderness",
			       &c->max_out_of_orderness_ns)) < 0)
		return rc;
	rc = opt_own_field(ld, m, k, "timestamp-field", &c->schema, label,
			   TS_WHY, c->ts_field);
	return rc < 0 ? rc : 0;
}

static const char *const k_ethdev_source[] = {
	"port", "vdev", "rx-desc", "promiscuous", "count", "idle-end", NULL
};

static int parse_ethdev_source(struct ld *ld, struct opctx *o, void *conf)
{
	struct sl_ethdev_source_conf *c = conf;
	yaml_node_t *m = o->map;
	const char *k = o->key;
	uint32_t rx_desc;
	uint64_t idle_ms = 0;
	int rc;

	sl_ethdev_source_conf_defaults(c);
	rc = opt_str(ld, m, k, "port", c->port, sizeof(c->port), "net_pcap0");
	if ((rc = need(ld, rc, m, k, "port", "net_pcap0")) < 0)
		return rc;
	if ((rc = opt_str(ld, m, k, "vdev", c->vdev, sizeof(c->vdev),
			  "net_pcap0,rx_pcap=in.pcap")) < 0 ||
	    (rc = opt_bool(ld, m, k, "promiscuous", &c->promiscuous)) < 0 ||
	    (rc = opt_u64(ld, m, k, "count", 0, UINT64_MAX, &c->count)) < 0)
		return rc;
	if ((rc = opt_u32(ld, m, k, "rx-desc", 1, UINT16_MAX, &rx_desc)) < 0)
		return rc;
	if (rc == 1)
		c->rx_desc = (uint16_t)rx_desc;
	if ((rc = opt_duration_in(ld, m, k, "idle-end", 1000000, INT64_MAX, &idle_ms)) < 0)
		return rc;
	if (rc == 1)
		c->idle_end_ms = (int64_t)idle_ms;
	return 0;
}

static const char *const k_project[] = { "fields", NULL };

static int parse_project(struct ld *ld, struct opctx *o, void *conf)
{
	static const char *const item_keys[] = { "field", "as", NULL };
	struct sl_project_conf *c = conf;
	yaml_node_t *v = map_get(ld, o->map, "fields");
	char key[KP_MAX], sub[KP_MAX], b[64];
	int rc;

	kp(key, o->key, "fields");
	if (v == NULL)
		return lerr(ld, o->map, o->key,
			    "missing 'fields' (e.g. fields: [key, ts, {field: value, as: amount}])");
	if (v->type != YAML_SEQUENCE_NODE || SEQ_LEN(v) == 0)
		return lerr(ld, v, key,
			    "expected a list like [key, ts, {field: value, as: amount}], got %s",
			    kind_of(v, b, sizeof(b)));
	if (SEQ_LEN(v) > SL_SCHEMA_MAX_FIELDS)
		return lerr(ld, v, key, "too many fields (at most %d)", SL_SCHEMA_MAX_FIELDS);
	for (size_t i = 0; i < SEQ_LEN(v); i++) {
		yaml_node_t *it = SEQ_AT(ld, v, i);

		kpi(sub, key, i);
		if (it->type == YAML_SCALAR_NODE && !is_null(it)) {
			if (strlen(sval(it)) >= SL_FIELD_NAME_MAX)
				return lerr(ld, it, sub, "'%s' is too long for a field name",
					    sval(it));
			snprintf(c->fields[i], SL_FIELD_NAME_MAX, "%s", sval(it));
			if ((rc = add_ref(ld, o->idx, sub, line_of(it), sval(it), 0, NULL)) < 0)
				return rc;
		} else {
			if ((rc = map_check(ld, it, sub, item_keys, "keys of a projected field")) < 0)
				return rc;
			rc = opt_in_field(ld, o, it, sub, "field", 0, NULL, c->fields[i]);
			if ((rc = need(ld, rc, it, sub, "field", "value")) < 0)
				return rc;
			if ((rc = opt_str(ld, it, sub, "as", c->as[i], SL_FIELD_NAME_MAX,
					  "amount")) < 0)
				return rc;
		}
		const char *out = c->as[i][0] ? c->as[i] : c->fields[i];
		for (size_t j = 0; j < i; j++) {
			const char *prev = c->as[j][0] ? c->as[j] : c->fields[j];
			if (strcmp(prev, out) == 0)
				return lerr(ld, it, sub,
					    "output field '%s' appears twice (also fields[%zu]); rename one with 'as'",
					    out, j);
		}
	}
	c->n = (unsigned)SEQ_LEN(v);
	return 0;
}

static const char *const k_filter[] = { "where", NULL };

static const struct {
	const char *name;
	enum sl_cmp cmp;
} cmp_names[] = {
	{ "==", SL_CMP_EQ }, { "=", SL_CMP_EQ },  { "eq", SL_CMP_EQ },
	{ "!=", SL_CMP_NE }, { "ne", SL_CMP_NE }, { "<", SL_CMP_LT },
	{ "lt", SL_CMP_LT }, { "<=", SL_CMP_LE }, { "le", SL_CMP_LE },
	{ ">", SL_CMP_GT },  { "gt", SL_CMP_GT }, { ">=", SL_CMP_GE },
	{ "ge", SL_CMP_GE },
};

static int parse_filter(struct ld *ld, struct opctx *o, void *conf)
{
	static const char *const item_keys[] = { "field", "op", "value", NULL };
	struct sl_filter_conf *c = conf;
	yaml_node_t *v = map_get(ld, o->map, "where");
	char key[KP_MAX], sub[KP_MAX], fk[KP_MAX], b[64];
	const size_t max = sizeof(c->pred) / sizeof(c->pred[0]);
	int rc;

	kp(key, o->key, "where");
	if (v == NULL)
		return lerr(ld, o->map, o->key,
			    "missing 'where' (e.g. where: [{field: value, op: \">\", value: 10}])");
	if (v->type != YAML_SEQUENCE_NODE || SEQ_LEN(v) == 0)
		return lerr(ld, v, key,
			    "expected a list of conditions like [{field: value, op: \">\", value: 10}], got %s",
			    kind_of(v, b, sizeof(b)));
	if (SEQ_LEN(v) > max)
		return lerr(ld, v, key, "too many conditions (at most %zu)", max);
	for (size_t i = 0; i < SEQ_LEN(v); i++) {
		yaml_node_t *it = SEQ_AT(ld, v, i), *opn;
		bool found = false;

		kpi(sub, key, i);
		if ((rc = map_check(ld, it, sub, item_keys, "keys of a condition")) < 0)
			return rc;
		rc = opt_in_field(ld, o, it, sub, "field", 0,
				  "filters compare numbers; use a numeric field",
				  c->pred[i].field);
		if ((rc = need(ld, rc, it, sub, "field", "value")) < 0)
			return rc;
		opn = map_get(ld, it, "op");
		if (opn == NULL)
			return lerr(ld, it, sub, "missing 'op' (one of ==, !=, <, <=, >, >=)");
		if ((rc = want_scalar(ld, opn, kp(fk, sub, "op"), "\">\"")) < 0)
			return rc;
		for (size_t j = 0; j < sizeof(cmp_names) / sizeof(cmp_names[0]); j++) {
			if (strcmp(sval(opn), cmp_names[j].name) == 0) {
				c->pred[i].cmp = cmp_names[j].cmp;
				found = true;
				break;
			}
		}
		if (!found)
			return lerr(ld, opn, fk,
				    "unknown comparison '%s' (one of ==, !=, <, <=, >, >=, or eq, ne, lt, le, gt, ge)",
				    sval(opn));
		rc = opt_double(ld, it, sub, "value", -INFINITY, &c->pred[i].value);
		if ((rc = need(ld, rc, it, sub, "value", "10")) < 0)
			return rc;
	}
	c->n = (unsigned)SEQ_LEN(v);
	return 0;
}

static const char *const agg_fn_names[] = { "count", "sum", "min", "max", NULL };

static int parse_aggs(struct ld *ld, struct opctx *o, struct sl_agg_spec *aggs,
		      unsigned *n_aggs)
{
	static const char *const item_keys[] = { "fn", "field", "as", NULL };
	yaml_node_t *v = map_get(ld, o->map, "aggregates");
	char key[KP_MAX], sub[KP_MAX], b[64];
	int rc;

	kp(key, o->key, "aggregates");
	if (v == NULL)
		return lerr(ld, o->map, o->key,
			    "missing 'aggregates' (e.g. aggregates: [{fn: count, as: count}, {fn: sum, field: value, as: total}])");
	if (v->type != YAML_SEQUENCE_NODE || SEQ_LEN(v) == 0)
		return lerr(ld, v, key,
			    "expected a list like [{fn: count, as: count}, {fn: sum, field: value, as: total}], got %s",
			    kind_of(v, b, sizeof(b)));
	if (SEQ_LEN(v) > SL_MAX_AGGS)
		return lerr(ld, v, key, "too many aggregates (at most %d)", SL_MAX_AGGS);
	for (size_t i = 0; i < SEQ_LEN(v); i++) {
		yaml_node_t *it = SEQ_AT(ld, v, i);
		struct sl_agg_spec *a = &aggs[i];
		int fn = 0;

		kpi(sub, key, i);
		if ((rc = map_check(ld, it, sub, item_keys, "keys of an aggregate")) < 0)
			return rc;
		rc = opt_enum(ld, it, sub, "fn", agg_fn_names, &fn);
		if ((rc = need(ld, rc, it, sub, "fn", "count")) < 0)
			return rc;
		a->fn = (enum sl_agg_fn)fn;
		rc = opt_in_field(ld, o, it, sub, "field", 0,
				  "sum, min and max need a numeric field", a->field);
		if (rc < 0)
			return rc;
		if (a->fn == SL_AGG_COUNT && rc == 1)
			return lerr(ld, map_get(ld, it, "field"), sub,
				    "count counts records and takes no 'field'; remove it");
		if (a->fn != SL_AGG_COUNT && rc == 0)
			return lerr(ld, it, sub, "%s needs a 'field' (e.g. field: value)",
				    agg_fn_names[fn]);
		if ((rc = opt_str(ld, it, sub, "as", a->as, sizeof(a->as), "total")) < 0)
			return rc;
		if (rc == 0) {
			if (a->fn == SL_AGG_COUNT)
				snprintf(a->as, sizeof(a->as), "count");
			else
				snprintf(a->as, sizeof(a->as), "%s_%.*s", agg_fn_names[fn],
					 (int)(sizeof(a->as) - 5), a->field);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(aggs[j].as, a->as) == 0)
				return lerr(ld, it, sub,
					    "output field '%s' appears twice (also aggregates[%zu]); name one with 'as'",
					    a->as, j);
	}
	*n_aggs = (unsigned)SEQ_LEN(v);
	return 0;
}

/* The key of a keyed operator: a field of its input. */
static int keyed_key(struct ld *ld, struct opctx *o, char *dst)
{
	int rc = opt_in_field(ld, o, o->map, o->key, "key", 0, NULL, dst);

	if ((rc = need(ld, rc, o->map, o->key, "key", "user")) < 0)
		return rc;
	o->key_field = dst;
	o->key_line = line_of(map_get(ld, o->map, "key"));
	return 0;
}

static const char *const k_keyed_aggregate[] = { "key", "aggregates",
						 "emit-updates", NULL };

static int parse_keyed_aggregate(struct ld *ld, struct opctx *o, void *conf)
{
	struct sl_keyed_aggregate_conf *c = conf;
	int rc;

	if ((rc = keyed_key(ld, o, c->key)) < 0 ||
	    (rc = parse_aggs(ld, o, c->aggs, &c->n_aggs)) < 0)
		return rc;
	/* Flink's keyed sum/min/max emit an updated row per record */
	c->emit_updates = true;
	rc = opt_bool(ld, o->map, o->key, "emit-updates", &c->emit_updates);
	return rc < 0 ? rc : 0;
}

static const char *const k_window_aggregate[] = {
	"key", "timestamp-field", "window", "allowed-lateness", "aggregates", NULL
};

static int parse_window_aggregate(struct ld *ld, struct opctx *o, void *conf)
{
	static const char *const window_keys[] = { "type", "size", "slide", NULL };
	static const char *const kinds[] = { "tumbling", "sliding", NULL };
	struct sl_window_conf *c = conf;
	yaml_node_t *m = o->map, *w;
	char wkey[KP_MAX], fk[KP_MAX];
	int kind = SL_WINDOW_TUMBLING, rc;

	if ((rc = keyed_key(ld, o, c->key)) < 0)
		return rc;
	rc = opt_in_field(ld, o, m, o->key, "timestamp-field", 0, TS_WHY,
			  c->ts_field);
	if ((rc = need(ld, rc, m, o->key, "timestamp-field", "ts")) < 0)
		return rc;
	w = map_get(ld, m, "window");
	kp(wkey, o->key, "window");
	if (w == NULL)
		return lerr(ld, m, o->key,
			    "missing 'window' (e.g. window: {type: tumbling, size: 1s} or {type: sliding, size: 10s, slide: 1s})");
	if ((rc = map_check(ld, w, wkey, window_keys, "keys of a window")) < 0 ||
	    (rc = opt_enum(ld, w, wkey, "type", kinds, &kind)) < 0)
		return rc;
	c->kind = (enum sl_window_kind)kind;
	rc = opt_duration(ld, w, wkey, "size", &c->size_ns);
	if ((rc = need(ld, rc, w, wkey, "size", "1s")) < 0)
		return rc;
	if (c->size_ns <= 0)
		return lerr(ld, map_get(ld, w, "size"), kp(fk, wkey, "size"),
			    "a window needs a size above 0; write e.g. 1s");
	if ((rc = opt_duration(ld, w, wkey, "slide", &c->slide_ns)) < 0)
		return rc;
	if (c->kind == SL_WINDOW_TUMBLING && rc == 1)
		return lerr(ld, map_get(ld, w, "slide"), kp(fk, wkey, "slide"),
			    "only sliding windows have a slide; write type: sliding or remove it");
	if (c->kind == SL_WINDOW_SLIDING) {
		if (rc == 0)
			return lerr(ld, w, wkey, "a sliding window needs a 'slide' (e.g. slide: 1s)");
		if (c->slide_ns <= 0 || c->slide_ns > c->size_ns)
			return lerr(ld, map_get(ld, w, "slide"), kp(fk, wkey, "slide"),
				    "the slide must be above 0 and at most the size (%s)",
				    sval(map_get(ld, w, "size")));
	}
	if ((rc = opt_duration(ld, m, o->key, "allowed-lateness",
			       &c->allowed_lateness_ns)) < 0)
		return rc;
	return parse_aggs(ld, o, c->aggs, &c->n_aggs);
}

static const char *const k_none[] = { NULL };

static int parse_null_sink(struct ld *ld, struct opctx *o, void *conf)
{
	(void)ld;
	(void)o;
	(void)conf;
	return 0;
}

static const char *const k_file_sink[] = { "path", "format", NULL };

static int parse_file_sink(struct ld *ld, struct opctx *o, void *conf)
{
	struct sl_file_sink_conf *c = conf;
	int fmt = SL_FILE_CSV, rc;

	rc = opt_str(ld, o->map, o->key, "path", c->path, sizeof(c->path),
		     "out/result.csv");
	if ((rc = need(ld, rc, o->map, o->key, "path", "out/result.csv")) < 0)
		return rc;
	if ((rc = opt_enum(ld, o->map, o->key, "format", format_names, &fmt)) < 0)
		return rc;
	c->format = (enum sl_file_format)fmt;
	return 0;
}

static const char *const k_count_sink[] = { "delay-per-batch", NULL };

static int parse_count_sink(struct ld *ld, struct opctx *o, void *conf)
{
	struct sl_count_sink_conf *c = conf;
	uint64_t us = 0;
	int rc;

	rc = opt_duration_in(ld, o->map, o->key, "delay-per-batch", 1000,
			     UINT32_MAX, &us);
	if (rc == 1)
		c->delay_us_per_batch = (uint32_t)us;
	return rc < 0 ? rc : 0;
}

union any_conf {
	struct sl_generator_conf generator;
	struct sl_file_source_conf file_source;
	struct sl_ethdev_source_conf ethdev_source;
	struct sl_project_conf project;
	struct sl_filter_conf filter;
	struct sl_keyed_aggregate_conf keyed_aggregate;
	struct sl_window_conf window;
	struct sl_file_sink_conf file_sink;
	struct sl_count_sink_conf count_sink;
};

static const struct op_parser {
	const char *type;
	const char *const *keys;
	int (*parse)(struct ld *ld, struct opctx *o, void *conf);
	bool keyed; /* reads its input hash-partitioned by its key */
} op_parsers[] = {
	{ "generator", k_generator, parse_generator, false },
	{ "file-source", k_file_source, parse_file_source, false },
	{ "ethdev-source", k_ethdev_source, parse_ethdev_source, false },
	{ "project", k_project, parse_project, false },
	{ "filter", k_filter, parse_filter, false },
	{ "keyed-aggregate", k_keyed_aggregate, parse_keyed_aggregate, true },
	{ "window-aggregate", k_window_aggregate, parse_window_aggregate, true },
	{ "null-sink", k_none, parse_null_sink, false },
	{ "file-sink", k_file_sink, parse_file_sink, false },
	{ "count-sink", k_count_sink, parse_count_sink, false },
};

static const char *const common_keys[] = { "uid", "type", "parallelism",
					   "input", "inputs", NULL };

static const struct op_parser *find_parser(const char *type)
{
	for (size_t i = 0; i < sizeof(op_parsers) / sizeof(op_parsers[0]); i++)
		if (strcmp(op_parsers[i].type, type) == 0)
			return &op_parsers[i];
	return NULL;
}

static const char *const partition_names[] = { "forward", "hash", "rebalance",
					       "broadcast", NULL };

/* A uid may appear in layout entries ("uid/3") and file names. */
static bool uid_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SL_UID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' &&
		    s[i] != '.')
			return false;
	return true;
}

/* Name an upstream uid that is not (yet) defined. */
static int unknown_input(struct ld *ld, yaml_node_t *v, const char *key,
			 const char *uid, yaml_node_t *ops, int idx)
{
	const char *names[256];
	char list[LIST_MAX];
	unsigned n = 0;

	/* Defined further down?  Then the order is the problem. */
	for (size_t j = (size_t)idx; j < SEQ_LEN(ops); j++) {
		yaml_node_t *u = map_get(ld, SEQ_AT(ld, ops, j), "uid");
		if (u != NULL && u->type == YAML_SCALAR_NODE && strcmp(sval(u), uid) == 0) {
			if ((int)j == idx)
				return lerr(ld, v, key,
					    "operator '%s' cannot read its own output (the graph must have no cycles)",
					    uid);
			return lerr(ld, v, key,
				    "'%s' is defined after this operator (line %d); list operators so that inputs come first",
				    uid, line_of(u));
		}
	}
	for (int j = 0; j < idx && n < 256; j++)
		names[n++] = sl_job_node_uid(ld->jf->job, j);
	if (n == 0)
		return lerr(ld, v, key,
			    "no operator '%s' before this one; the first operator must be a source (generator, file-source, ethdev-source)",
			    uid);
	const char *sug = sl_suggest(uid, names, n);
	sl_suggest_list(list, sizeof(list), names, n);
	if (sug != NULL)
		return lerr(ld, v, key, "no operator '%s'; did you mean '%s'? (uids defined before: %s)",
			    uid, sug, list);
	return lerr(ld, v, key, "no operator '%s' (uids defined before: %s)", uid, list);
}

/* One entry of `input:`/`inputs:`: a uid or {from, partition, key}. */
static int parse_input(struct ld *ld, struct opctx *o, yaml_node_t *ops,
		       yaml_node_t *v, const char *key, unsigned input)
{
	static const char *const in_keys[] = { "from", "partition", "key", NULL };
	struct sl_job *job = ld->jf->job;
	yaml_node_t *from_n = v, *part_n = NULL, *key_n = NULL;
	char hash_key[SL_FIELD_NAME_MAX] = "", sub[KP_MAX];
	int part = -1, from, rc;

	if (v->type == YAML_MAPPING_NODE) {
		if ((rc = map_check(ld, v, key, in_keys, "keys of an input")) < 0)
			return rc;
		from_n = map_get(ld, v, "from");
		if (from_n == NULL)
			return lerr(ld, v, key, "missing 'from' (the uid of the upstream operator)");
		if ((rc = opt_enum(ld, v, key, "partition", partition_names, &part)) < 0)
			return rc;
		part_n = map_get(ld, v, "partition");
		rc = opt_str(ld, v, key, "key", hash_key, sizeof(hash_key), "user");
		if (rc < 0)
			return rc;
		key_n = map_get(ld, v, "key");
		kp(sub, key, "from");
	} else {
		snprintf(sub, sizeof(sub), "%s", key);
	}
	if ((rc = want_scalar(ld, from_n, sub, "gen")) < 0)
		return rc;
	from = sl_job_find(job, sval(from_n));
	if (from < 0 || from >= o->idx)
		return unknown_input(ld, from_n, sub, sval(from_n), ops, o->idx);

	uint32_t up = sl_job_node_parallelism(job, from);
	uint32_t me = sl_job_node_parallelism(job, o->idx);

	if (part < 0) {
		/* Defaults as in Flink: keyed operators read hash-partitioned by
		 * their key (keyBy), others forward when the parallelism
		 * matches, else rebalance. */
		if (o->key_field != NULL)
			part = SL_PART_HASH;
		else
			part = up == me ? SL_PART_FORWARD : SL_PART_REBALANCE;
	}
	if (part == SL_PART_HASH) {
		if (hash_key[0] == '\0') {
			if (o->key_field == NULL)
				return lerr(ld, v, key,
					    "hash partitioning needs a key; add key: <field of '%s'>",
					    sval(from_n));
			snprintf(hash_key, sizeof(hash_key), "%s", o->key_field);
		}
		rc = add_ref(ld, o->idx, key_n ? kp(sub, key, "key") : key,
			     line_of(key_n ? key_n : v), hash_key, input, NULL);
		if (rc < 0)
			return rc;
	} else if (key_n != NULL) {
		return lerr(ld, key_n, kp(sub, key, "key"),
			    "only hash partitioning takes a key; write partition: hash or remove the key");
	}
	/* A keyed operator's subtasks own key-group ranges: with more than
	 * one of them, records must arrive hashed by the operator's key. */
	if (o->key_field != NULL && me > 1) {
		if (part != SL_PART_HASH)
			return lerr(ld, part_n ? part_n : v, key,
				    "a keyed operator with parallelism %u must read its input with partition: hash (by its key '%s')",
				    me, o->key_field);
		if (strcmp(hash_key, o->key_field) != 0)
			return lerr(ld, key_n ? key_n : v, key,
				    "input is hashed by '%s' but the operator is keyed by '%s' (line %d); hash by the same field",
				    hash_key, o->key_field, o->key_line);
	}
	if (part == SL_PART_FORWARD && up != me)
		return lerr(ld, part_n ? part_n : v, key,
			    "forward needs equal parallelism, but '%s' has %u and this operator %u; use partition: rebalance, hash or broadcast",
			    sval(from_n), up, me);
	rc = sl_job_connect(job, from, o->idx, (enum sl_partition)part, hash_key);
	if (rc < 0)
		return lerr(ld, v, key, "%s", sl_job_error(job));
	return 0;
}

static int parse_inputs(struct ld *ld, struct opctx *o, yaml_node_t *ops,
			const struct sl_operator_ops *opsdef)
{
	yaml_node_t *in = map_get(ld, o->map, "input");
	yaml_node_t *ins = map_get(ld, o->map, "inputs");
	char key[KP_MAX], sub[KP_MAX], b[64];
	const char *prev = o->idx > 0 ? sl_job_node_uid(ld->jf->job, o->idx - 1) : NULL;
	size_t n;
	int rc;

	if (in != NULL && ins != NULL)
		return lerr(ld, ins, o->key, "give either 'input' or 'inputs', not both");
	if (opsdef->max_inputs == 0) {
		if (in != NULL || ins != NULL)
			return lerr(ld, in ? in : ins, o->key,
				    "a %s is a source and reads no input; remove '%s'",
				    opsdef->type, in ? "input" : "inputs");
		return 0;
	}
	if (in == NULL && ins == NULL) {
		if (prev != NULL)
			return lerr(ld, o->map, o->key,
				    "a %s needs an input; add e.g. input: %s", opsdef->type,
				    prev);
		return lerr(ld, o->map, o->key,
			    "a %s needs an input, but it is the first operator; start with a source (generator, file-source, ethdev-source)",
			    opsdef->type);
	}
	if (in != NULL)
		return parse_input(ld, o, ops, in, kp(key, o->key, "input"), 0);
	kp(key, o->key, "inputs");
	if (ins->type != YAML_SEQUENCE_NODE || SEQ_LEN(ins) == 0)
		return lerr(ld, ins, key, "expected a list of inputs like [gen, {from: other, partition: hash, key: user}], got %s",
			    kind_of(ins, b, sizeof(b)));
	n = SEQ_LEN(ins);
	if (n > opsdef->max_inputs)
		return lerr(ld, ins, key, "a %s takes at most %u input%s, got %zu",
			    opsdef->type, opsdef->max_inputs,
			    opsdef->max_inputs == 1 ? "" : "s", n);
	for (size_t i = 0; i < n; i++)
		if ((rc = parse_input(ld, o, ops, SEQ_AT(ld, ins, i),
				      kpi(sub, key, i), (unsigned)i)) < 0)
			return rc;
	if (n < opsdef->min_inputs)
		return lerr(ld, ins, key, "a %s needs at least %u inputs, got %zu",
			    opsdef->type, opsdef->min_inputs, n);
	return 0;
}

static int parse_operator(struct ld *ld, yaml_node_t *ops, int idx)
{
	const char *builtin_list[64], *keys[MAX_KEYS];
	yaml_node_t *m = SEQ_AT(ld, ops, (size_t)idx), *tn, *un;
	struct jf_node *jn = &ld->pvt->nodes[idx];
	const struct sl_operator_ops *opsdef;
	const struct op_parser *p;
	char list[LIST_MAX], what[64];
	struct opctx o = { .idx = idx, .key = jn->key, .map = m };
	union any_conf *conf = NULL;
	const char *uid = NULL;
	unsigned nk = 0, nb = 0;
	int rc, node;

	snprintf(jn->key, sizeof(jn->key), "operators[%d]", idx);
	jn->line = line_of(m);
	if (m->type != YAML_MAPPING_NODE)
		return map_check(ld, m, jn->key, NULL, NULL);

	/* the type decides which keys are valid, so it comes first */
	for (const char *const *n = sl_builtin_names(); *n != NULL && nb < 63; n++)
		builtin_list[nb++] = *n;
	builtin_list[nb] = NULL;
	sl_suggest_list(list, sizeof(list), builtin_list, nb);
	tn = map_get(ld, m, "type");
	if (tn == NULL)
		return lerr(ld, m, jn->key, "missing 'type' (one of: %s)", list);
	char tkey[KP_MAX];
	kp(tkey, jn->key, "type");
	if ((rc = want_scalar(ld, tn, tkey, "generator")) < 0)
		return rc;
	opsdef = sl_builtin_find(sval(tn));
	if (opsdef == NULL) {
		const char *sug = sl_suggest(sval(tn), builtin_list, nb);
		if (sug != NULL)
			return lerr(ld, tn, tkey,
				    "unknown operator type '%s'; did you mean '%s'? (types: %s)",
				    sval(tn), sug, list);
		return lerr(ld, tn, tkey, "unknown operator type '%s' (types: %s)",
			    sval(tn), list);
	}
	p = find_parser(opsdef->type);
	if (p == NULL)
		return lerr(ld, tn, tkey,
			    "operator type '%s' cannot be configured from a job file yet; build it with the C API",
			    sval(tn));

	for (unsigned i = 0; common_keys[i] != NULL; i++)
		keys[nk++] = common_keys[i];
	for (unsigned i = 0; p->keys[i] != NULL && nk < MAX_KEYS - 1; i++)
		keys[nk++] = p->keys[i];
	keys[nk] = NULL;
	snprintf(what, sizeof(what), "keys of a %s", p->type);
	if ((rc = map_check(ld, m, jn->key, keys, what)) < 0)
		return rc;

	char ukey[KP_MAX];
	kp(ukey, jn->key, "uid");
	un = map_get(ld, m, "uid");
	if (un != NULL) {
		if ((rc = want_scalar(ld, un, ukey, "gen")) < 0)
			return rc;
		uid = sval(un);
		if (!uid_valid(uid))
			return lerr(ld, un, ukey,
				    "uid '%s' must be 1..%d letters, digits, '-', '_' or '.'",
				    uid, SL_UID_MAX - 1);
		for (int j = 0; j < idx; j++) {
			yaml_node_t *u = map_get(ld, SEQ_AT(ld, ops, (size_t)j), "uid");
			if (u != NULL && u->type == YAML_SCALAR_NODE &&
			    strcmp(sval(u), uid) == 0)
				return lerr(ld, un, ukey,
					    "uid '%s' is used twice (first at line %d); give each operator its own uid",
					    uid, line_of(u));
		}
	}
	rc = opt_u32(ld, m, jn->key, "parallelism", 1, UINT32_MAX, &o.parallelism);
	if (rc < 0)
		return rc;
	o.parallelism_given = rc == 1;
	if (o.parallelism > ld->cfg.max_parallelism) {
		char pk[KP_MAX];
		return lerr(ld, map_get(ld, m, "parallelism"), kp(pk, jn->key, "parallelism"),
			    "%u is above pipeline.max-parallelism %u; lower it or raise pipeline.max-parallelism (under config:)",
			    o.parallelism, ld->cfg.max_parallelism);
	}

	conf = calloc(1, sizeof(*conf));
	if (conf == NULL)
		return -ENOMEM;
	if (opsdef->conf_size > sizeof(*conf)) {
		/* a built-in's conf grew beyond what this loader knows */
		rc = lerr(ld, tn, tkey, "internal error: conf of '%s' is larger than expected",
			  opsdef->type);
		goto out;
	}
	if ((rc = p->parse(ld, &o, conf)) < 0)
		goto out;
	node = sl_job_add(ld->jf->job, uid, opsdef, conf, o.parallelism);
	if (node < 0) {
		rc = node == -ENOMEM ? -ENOMEM : lerr(ld, m, jn->key, "%s", sl_job_error(ld->jf->job));
		goto out;
	}
	if ((rc = parse_inputs(ld, &o, ops, opsdef)) < 0)
		goto out;
	if (asprintf(&jn->where, "%s:%d", ld->path, jn->line) < 0) {
		jn->where = NULL;
		rc = -ENOMEM;
		goto out;
	}
	rc = collect_scalars(ld, jn, m, jn->key);
out:
	free(conf);
	return rc;
}

/* -------------------------------------------------------------- the graph */

/* A field name missing from schema s, with the names that exist. */
static int missing_field(char *err, size_t errlen, const char *path,
			 const struct jf_ref *r, const struct sl_schema *s,
			 const char *from_uid)
{
	const char *names[SL_SCHEMA_MAX_FIELDS];
	char list[LIST_MAX];

	field_names(s, names);
	const char *sug = sl_suggest(r->field, names, s->nfields);
	sl_suggest_list(list, sizeof(list), names, s->nfields);
	if (sug != NULL)
		return jf_errf(err, errlen, path, r->line, r->key,
			       "field '%s' is not in the output of '%s' (fields: %s); did you mean '%s'?",
			       r->field, from_uid, list, sug);
	return jf_errf(err, errlen, path, r->line, r->key,
		       "field '%s' is not in the output of '%s' (fields: %s)",
		       r->field, from_uid, list);
}

/* Check the field references of nodes [0, upto] against their inputs'
 * planned output schemas. */
static int check_refs(struct sl_job_file *jf, int upto, char *err, size_t errlen)
{
	struct jf_pvt *pvt = pvt_of(jf);
	struct sl_job *job = jf->job;

	for (int i = 0; i <= upto && i < job->n_nodes; i++) {
		const struct job_node *n = &job->nodes[i];

		for (unsigned k = 0; k < pvt->nodes[i].n_refs; k++) {
			const struct jf_ref *r = &pvt->nodes[i].refs[k];
			const struct job_node *src;
			const struct sl_field *f;

			if (r->input >= n->n_in)
				continue;
			src = &job->nodes[n->in[r->input].from];
			f = sl_schema_find(&src->out_schema, r->field);
			if (f == NULL)
				return missing_field(err, errlen, jf->path, r,
						     &src->out_schema, src->uid);
			if (!type_meets(f->type, r->numeric_why))
				return jf_errf(err, errlen, jf->path, r->line, r->key,
					       "field '%s' of '%s' is %s; %s", r->field,
					       src->uid, sl_type_name(f->type),
					       r->numeric_why);
		}
	}
	return 0;
}

/* Does msg contain `value` as a word of its own (not inside a longer
 * name or path)? */
static bool contains_word(const char *msg, const char *value)
{
	size_t len = strlen(value);

	for (const char *p = strstr(msg, value); p != NULL; p = strstr(p + 1, value)) {
		char before = p > msg ? p[-1] : ' ';
		char after = p[len];
		if (!isalnum((unsigned char)before) && !strchr("_/.-", before) &&
		    !isalnum((unsigned char)after) && after != '_' && after != '/' &&
		    !(after == '.' && isalnum((unsigned char)p[len + 1])))
			return true;
	}
	return false;
}

/*
 * Report an error of the job API about `node` at the most specific line:
 * operators' messages name the value they reject ("cannot read in.csv"),
 * so the scalar of the node's definition found in the message names the
 * key: a quoted one first, else the longest one that appears as a word;
 * failing that, the operator's first line.
 */
static int node_error(struct sl_job_file *jf, int node, const char *msg,
		      char *err, size_t errlen)
{
	const struct jf_node *n;
	const struct jf_scalar *best = NULL;
	size_t best_score = 0;
	char q[300];

	if (node < 0 || node >= pvt_of(jf)->n_nodes)
		return jf_errf(err, errlen, jf->path, 0, NULL, "%s", msg);
	n = &pvt_of(jf)->nodes[node];
	for (unsigned i = 0; i < n->n_sc; i++) {
		const struct jf_scalar *s = &n->sc[i];
		const char *leaf = strrchr(s->key, '.');
		size_t len = strlen(s->value), score = 0;

		leaf = leaf ? leaf + 1 : s->key;
		/* the uid and type are in every message of the job API */
		if (strcmp(leaf, "uid") == 0 || strcmp(leaf, "type") == 0 ||
		    len < 3 || len + 3 > sizeof(q))
			continue;
		snprintf(q, sizeof(q), "'%s'", s->value);
		if (strstr(msg, q) != NULL)
			score = len + sizeof(q);
		else if (contains_word(msg, s->value))
			score = len;
		if (score > best_score) {
			best = s;
			best_score = score;
		}
	}
	if (best != NULL)
		return jf_errf(err, errlen, jf->path, best->line, best->key, "%s", msg);
	return jf_errf(err, errlen, jf->path, n->line, n->key, "%s", msg);
}

static int plan_job(struct sl_job_file *jf, char *err, size_t errlen)
{
	struct sl_job *job = jf->job;
	int rc = sl_job_plan(job), bad;

	if (rc == 0)
		return check_refs(jf, job->n_nodes - 1, err, errlen);
	/* sl_job_plan() plans nodes in order: everything before the failing
	 * node has its output schema, so a bad field name is found here and
	 * reported at its own line. */
	bad = sl_job_error_node(job);
	if (bad >= 0 && check_refs(jf, bad, err, errlen) < 0)
		return -EINVAL;
	node_error(jf, bad, sl_job_error(job), err, errlen);
	return rc == -ENOMEM ? -ENOMEM : -EINVAL;
}

/* ------------------------------------------------------------ top level */

static int parse_config(struct ld *ld, yaml_node_t *map, const char *prefix);

static const char *const config_keys[] = {
	"parallelism.default", "pipeline.max-parallelism",
	"execution.buffer-timeout", "execution.buffer-timeout.interval",
	"sluice.progress-interval",
	"sluice.control-socket",
	"execution.checkpointing.interval",
	"execution.checkpointing.timeout",
	"execution.checkpointing.min-pause",
	"execution.checkpointing.max-concurrent-checkpoints",
	"execution.checkpointing.tolerable-failed-checkpoints",
	"execution.checkpointing.mode",
	"execution.checkpointing.unaligned",
	"execution.checkpointing.unaligned.enabled",
	"execution.checkpointing.aligned-checkpoint-timeout",
	"state.checkpoints.dir",
	"state.checkpoints.num-retained",
	"state.backend.incremental",
	"sluice.checkpointing.full-every",
	"restart-strategy.type",
	"restart-strategy.fixed-delay.attempts",
	"restart-strategy.fixed-delay.delay",
	"restart-strategy.exponential-delay.initial-backoff",
	"restart-strategy.exponential-delay.max-backoff",
	"restart-strategy.exponential-delay.backoff-multiplier",
	"restart-strategy.exponential-delay.reset-backoff-threshold",
	"restart-strategy.exponential-delay.jitter-factor",
	NULL
};

/* The restart-strategy.* keys (Flink's names and values). */
static int restart_entry(struct ld *ld, const char *name, const char *key,
			 yaml_node_t *v)
{
	struct sl_restart_config *c = &ld->cfg.restart;
	const char *sub = name + strlen("restart-strategy.");
	int64_t ns;
	uint64_t x;
	double d;

	if (strcmp(sub, "type") == 0) {
		const char *t = sval(v);

		if (strcasecmp(t, "none") == 0 || strcasecmp(t, "off") == 0 ||
		    strcasecmp(t, "disable") == 0)
			c->type = SL_RESTART_NONE;
		else if (strcasecmp(t, "fixed-delay") == 0 || strcasecmp(t, "fixeddelay") == 0)
			c->type = SL_RESTART_FIXED_DELAY;
		else if (strcasecmp(t, "exponential-delay") == 0 ||
			 strcasecmp(t, "exponentialdelay") == 0)
			c->type = SL_RESTART_EXPONENTIAL_DELAY;
		else
			return lerr(ld, v, key, "'%s' is not a restart strategy; use none, fixed-delay or exponential-delay",
				    t);
		ld->restart_type_node = v;
		return 0;
	}
	if (strncmp(sub, "fixed-delay.", strlen("fixed-delay.")) == 0) {
		if (ld->fixed_node == NULL) {
			ld->fixed_node = v;
			snprintf(ld->fixed_key, sizeof(ld->fixed_key), "%s", name);
		}
	} else if (ld->exp_node == NULL) {
		ld->exp_node = v;
		snprintf(ld->exp_key, sizeof(ld->exp_key), "%s", name);
	}
	if (strcmp(sub, "fixed-delay.attempts") == 0) {
		if (parse_u64(sval(v), &x) < 0 || x < 1 || x > INT32_MAX)
			return lerr(ld, v, key, "'%s' is not a whole number in 1..%d",
				    sval(v), INT32_MAX);
		c->attempts = (uint32_t)x;
		return 0;
	}
	if (strcmp(sub, "exponential-delay.backoff-multiplier") == 0 ||
	    strcmp(sub, "exponential-delay.jitter-factor") == 0) {
		bool mult = strcmp(sub, "exponential-delay.backoff-multiplier") == 0;

		if (parse_double(sval(v), &d) < 0 || (mult ? d < 1.0 || d > 1000 : d < 0 || d > 1))
			return lerr(ld, v, key, "'%s' is not a number in %s", sval(v),
				    mult ? "1..1000 (e.g. 2.0)" : "0..1 (e.g. 0.1)");
		if (mult)
			c->backoff_multiplier = d;
		else
			c->jitter_factor = d;
		return 0;
	}
	{
		int rc = parse_duration(sval(v), &ns);
		if (rc < 0)
			return duration_err(ld, v, key, rc);
	}
	x = (uint64_t)ns / 1000000;
	if (strcmp(sub, "fixed-delay.delay") == 0)
		c->delay_ms = x;
	else if (strcmp(sub, "exponential-delay.initial-backoff") == 0)
		c->initial_backoff_ms = x;
	else if (strcmp(sub, "exponential-delay.max-backoff") == 0)
		c->max_backoff_ms = x;
	else
		c->reset_backoff_threshold_ms = x;
	return 0;
}

/* A strategy's own keys need that strategy; the values must fit together. */
static int restart_resolve(struct ld *ld)
{
	const struct sl_restart_config *c = &ld->cfg.restart;
	char key[KP_MAX], err[512];

	if (ld->fixed_node != NULL && c->type != SL_RESTART_FIXED_DELAY)
		return lerr(ld, ld->fixed_node, kp(key, "config", ld->fixed_key),
			    "has no effect unless restart-strategy.type: fixed-delay; set that type or drop the key");
	if (ld->exp_node != NULL && c->type != SL_RESTART_EXPONENTIAL_DELAY)
		return lerr(ld, ld->exp_node, kp(key, "config", ld->exp_key),
			    "has no effect unless restart-strategy.type: exponential-delay; set that type or drop the key");
	if (sl_restart_config_check(c, err, sizeof(err)) < 0) {
		yaml_node_t *at = ld->exp_node ? ld->exp_node
				: ld->fixed_node ? ld->fixed_node : ld->restart_type_node;
		return lerr(ld, at, "config", "%s", err);
	}
	return 0;
}

/* The execution.checkpointing.* and state.checkpoints.* keys. */
static int checkpoint_entry(struct ld *ld, const char *name, const char *key,
			    yaml_node_t *v)
{
	struct sl_checkpoint_config *c = &ld->cfg.checkpoint;
	const char *sub = name + strlen("execution.checkpointing.");
	int64_t ns;
	uint64_t x;
	int rc;

	if (strcmp(name, "state.checkpoints.dir") == 0) {
		if (strlen(sval(v)) == 0 || strlen(sval(v)) >= sizeof(c->dir))
			return lerr(ld, v, key, "give a directory path (1..%zu characters)",
				    sizeof(c->dir) - 1);
		snprintf(c->dir, sizeof(c->dir), "%s", sval(v));
		ld->ckpt_node = v;
		return 0;
	}
	if (strcmp(name, "state.backend.incremental") == 0) {
		if (parse_bool(sval(v), &c->incremental) < 0)
			return lerr(ld, v, key, "'%s' is not true or false", sval(v));
		return 0;
	}
	if (strcmp(name, "sluice.checkpointing.full-every") == 0) {
		rc = parse_u64(sval(v), &x);
		if (rc < 0 || x < 1 || x > SL_CKPT_FULL_EVERY_MAX)
			return lerr(ld, v, key,
				    "'%s' is not a whole number in 1..%u (1: every checkpoint is full)",
				    sval(v), SL_CKPT_FULL_EVERY_MAX);
		c->full_every = (uint32_t)x;
		ld->full_every_node = v;
		return 0;
	}
	if (strcmp(name, "state.checkpoints.num-retained") == 0 ||
	    strcmp(sub, "max-concurrent-checkpoints") == 0 ||
	    strcmp(sub, "tolerable-failed-checkpoints") == 0) {
		rc = parse_u64(sval(v), &x);
		if (rc < 0 || x > 1000000)
			return lerr(ld, v, key, "'%s' is not a whole number in 0..1000000",
				    sval(v));
		if (name[0] == 's')
			c->retained = (uint32_t)x;
		else if (sub[0] == 'm') {
			c->max_concurrent = (uint32_t)x;
			ld->max_concurrent_node = v;
		} else
			c->tolerable_failures = (uint32_t)x;
		return 0;
	}
	if (strcmp(sub, "mode") == 0) {
		if (strcasecmp(sval(v), "EXACTLY_ONCE") == 0)
			ld->at_least_once = false;
		else if (strcasecmp(sval(v), "AT_LEAST_ONCE") == 0)
			ld->at_least_once = true;
		else
			return lerr(ld, v, key, "'%s' is not a mode; use EXACTLY_ONCE or AT_LEAST_ONCE",
				    sval(v));
		ld->mode_node = v;
		return 0;
	}
	if (strncmp(sub, "unaligned", 9) == 0) {
		if (parse_bool(sval(v), &ld->unaligned) < 0)
			return lerr(ld, v, key, "'%s' is not true or false", sval(v));
		ld->unaligned_node = v;
		return 0;
	}
	if ((rc = parse_duration(sval(v), &ns)) < 0)
		return duration_err(ld, v, key, rc);
	x = (uint64_t)ns / 1000000;
	if (strcmp(sub, "interval") == 0)
		c->interval_ms = x;
	else if (strcmp(sub, "timeout") == 0)
		c->timeout_ms = x;
	else if (strcmp(sub, "min-pause") == 0)
		c->min_pause_ms = x;
	else {
		c->aligned_timeout_ms = x;
		ld->aligned_timeout_node = v;
	}
	if (strcmp(sub, "interval") == 0 && ns > 0 && x == 0)
		return lerr(ld, v, key, "'%s' is below 1 ms; checkpoint less often",
			    sval(v));
	return 0;
}

/* Checkpoint keys that only make sense together, checked once all are in. */
static int checkpoint_resolve(struct ld *ld)
{
	struct sl_checkpoint_config *c = &ld->cfg.checkpoint;
	char err[512];

	if (ld->unaligned && ld->at_least_once)
		return lerr(ld, ld->unaligned_node, "config.execution.checkpointing.unaligned",
			    "unaligned checkpoints are exactly-once; they cannot be combined with execution.checkpointing.mode: AT_LEAST_ONCE (line %d); drop one of the two",
			    line_of(ld->mode_node));
	if (ld->aligned_timeout_node != NULL && !ld->unaligned)
		return lerr(ld, ld->aligned_timeout_node,
			    "config.execution.checkpointing.aligned-checkpoint-timeout",
			    "switching to unaligned after a timeout needs execution.checkpointing.unaligned.enabled: true");
	if (ld->full_every_node != NULL && !c->incremental)
		return lerr(ld, ld->full_every_node, "config.sluice.checkpointing.full-every",
			    "a full checkpoint every K only applies to incremental ones; set state.backend.incremental: true or drop this key");
	if (ld->unaligned && c->max_concurrent > 1)
		return lerr(ld, ld->max_concurrent_node,
			    "config.execution.checkpointing.max-concurrent-checkpoints",
			    "%u checkpoints at once cannot be combined with execution.checkpointing.unaligned.enabled: true (line %d)%s: unaligned checkpoints run one at a time, as in Flink; set max-concurrent-checkpoints: 1 or disable unaligned checkpoints",
			    c->max_concurrent, line_of(ld->unaligned_node),
			    ld->aligned_timeout_node != NULL
				    ? ", also not when they start aligned with execution.checkpointing.aligned-checkpoint-timeout"
				    : "");
	c->mode = ld->at_least_once ? SL_CKPT_AT_LEAST_ONCE
		  : !ld->unaligned ? SL_CKPT_ALIGNED
		  : c->aligned_timeout_ms > 0 ? SL_CKPT_ALIGNED_TIMEOUT
					      : SL_CKPT_UNALIGNED;
	if (sl_checkpoint_config_check(c, err, sizeof(err)) < 0) {
		yaml_node_t *at = ld->ckpt_node ? ld->ckpt_node
				: map_get(ld, ld->root, "config");
		return lerr(ld, at, "config", "%s", err);
	}
	return 0;
}

/* One flattened config key; `kn` is its key node (for the line). */
static int config_entry(struct ld *ld, yaml_node_t *kn, const char *name,
			yaml_node_t *v)
{
	char key[KP_MAX], list[LIST_MAX];
	int64_t ns;
	uint64_t x;
	int rc;

	kp(key, "config", name);
	if (!in_list(config_keys, name)) {
		const char *sug = sl_suggest(name, config_keys, (size_t)-1);
		if (sug != NULL)
			return lerr(ld, kn, "config", "unknown key '%s'; did you mean '%s'?",
				    name, sug);
		return lerr(ld, kn, "config", "unknown key '%s' (known keys: %s)", name,
			    sl_suggest_list(list, sizeof(list), config_keys, (size_t)-1));
	}
	if ((rc = want_scalar(ld, v, key, "1")) < 0)
		return rc;
	if (strncmp(name, "execution.checkpointing.", 24) == 0 ||
	    strncmp(name, "state.", 6) == 0 ||
	    strncmp(name, "sluice.checkpointing.", 21) == 0)
		return checkpoint_entry(ld, name, key, v);
	if (strcmp(name, "sluice.control-socket") == 0) {
		if (strlen(sval(v)) == 0 || strlen(sval(v)) >= sizeof(ld->cfg.control_socket))
			return lerr(ld, v, key, "give a socket path of 1..%zu bytes (a Unix socket address holds no more)",
				    sizeof(ld->cfg.control_socket) - 1);
		snprintf(ld->cfg.control_socket, sizeof(ld->cfg.control_socket), "%s",
			 sval(v));
		return 0;
	}
	if (strncmp(name, "restart-strategy.", 17) == 0)
		return restart_entry(ld, name, key, v);
	if (strcmp(name, "parallelism.default") == 0 ||
	    strcmp(name, "pipeline.max-parallelism") == 0) {
		uint64_t max = SL_MAX_PARALLELISM_LIMIT;
		rc = parse_u64(sval(v), &x);
		if (rc == -EINVAL)
			return lerr(ld, v, key, "'%s' is not a whole number; write e.g. 4",
				    sval(v));
		if (rc < 0 || x < 1 || x > max)
			return lerr(ld, v, key, "'%s' is out of range (1..%" PRIu64 ")",
				    sval(v), max);
		if (strcmp(name, "parallelism.default") == 0)
			ld->cfg.default_parallelism = (uint32_t)x;
		else
			ld->cfg.max_parallelism = (uint32_t)x;
		return 0;
	}
	if ((rc = parse_duration(sval(v), &ns)) < 0)
		return duration_err(ld, v, key, rc);
	if (strncmp(name, "execution.buffer-timeout", 24) == 0)
		ld->cfg.buffer_timeout_us = (uint64_t)ns / 1000;
	else if (ns / 1000000 > UINT32_MAX)
		return lerr(ld, v, key, "'%s' is too long", sval(v));
	else
		ld->cfg.progress_ms = (uint32_t)(ns / 1000000);
	return 0;
}

/* Flink's flat keys ("pipeline.max-parallelism: 128") and their nested
 * form ("pipeline: {max-parallelism: 128}") are the same key. */
static int parse_config(struct ld *ld, yaml_node_t *map, const char *prefix)
{
	char name[KP_MAX];
	int rc;

	if ((rc = map_check(ld, map, prefix[0] ? prefix : "config", NULL, NULL)) < 0)
		return rc;
	MAP_FOREACH(map, pair)
	{
		yaml_node_t *k = node_at(ld, pair->key), *v = node_at(ld, pair->value);

		kp(name, prefix, sval(k));
		if (v->type == YAML_MAPPING_NODE)
			rc = parse_config(ld, v, name);
		else
			rc = config_entry(ld, k, name, v);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static const char *const layout_keys[] = { "batch-size", "ring-size",
					   "priority-ring-size", "burst-size",
					   "idle-sleep-max", "lcores",
					   "io-writers", NULL };

/* The sizes of `layout:` (needed before the job exists). */
static int parse_layout_sizes(struct ld *ld, yaml_node_t *map)
{
	struct sl_job_config *c = &ld->cfg;
	uint64_t us = 0;
	int rc;

	if ((rc = map_check(ld, map, "layout", layout_keys, "keys of layout")) < 0 ||
	    (rc = opt_u32(ld, map, "layout", "batch-size", 1, 65536, &c->batch_size)) < 0 ||
	    (rc = opt_u32(ld, map, "layout", "ring-size", 2, 1u << 24, &c->ring_size)) < 0 ||
	    (rc = opt_u32(ld, map, "layout", "burst-size", 1, 4096, &c->burst_size)) < 0)
		return rc;
	if ((rc = opt_u32(ld, map, "layout", "priority-ring-size", 2, 1u << 20,
			  &c->prio_ring_size)) < 0)
		return rc;
	if (rc == 1 && (c->prio_ring_size & (c->prio_ring_size - 1)) != 0) {
		char key[KP_MAX];
		return lerr(ld, map_get(ld, map, "priority-ring-size"),
			    kp(key, "layout", "priority-ring-size"),
			    "%u is not a power of two; write e.g. 64", c->prio_ring_size);
	}
	rc = opt_duration_in(ld, map, "layout", "idle-sleep-max", 1000, UINT32_MAX, &us);
	if (rc == 1)
		c->idle_sleep_max_us = (uint32_t)us;
	return rc < 0 ? rc : 0;
}

static int add_place(struct jf_pvt *p, const struct jf_place *pl)
{
	if (p->n_places == p->cap_places) {
		unsigned cap = p->cap_places ? p->cap_places * 2 : 16;
		struct jf_place *np = realloc(p->places, cap * sizeof(*np));
		if (np == NULL)
			return -ENOMEM;
		p->places = np;
		p->cap_places = cap;
	}
	p->places[p->n_places++] = *pl;
	return 0;
}

/* One "uid" or "uid/i" entry placed on `lcore`. */
static int place_entry(struct ld *ld, yaml_node_t *v, unsigned lcore)
{
	struct sl_job *job = ld->jf->job;
	const char *key = "layout.lcores";
	char uid[SL_UID_MAX + 16], list[LIST_MAX];
	const char *names[256];
	struct jf_place pl = { .line = line_of(v), .lcore = lcore, .subtask = -1 };
	int rc;

	if ((rc = want_scalar(ld, v, key, "gen/0")) < 0)
		return rc;
	snprintf(uid, sizeof(uid), "%s", sval(v));
	char *slash = strchr(uid, '/');
	if (slash != NULL) {
		uint64_t s;
		*slash = '\0';
		if (parse_u64(slash + 1, &s) < 0 || s > INT_MAX)
			return lerr(ld, v, key,
				    "'%s': write a uid for all its subtasks or uid/N for subtask N",
				    sval(v));
		pl.subtask = (int)s;
	}
	pl.node = sl_job_find(job, uid);
	if (pl.node < 0) {
		unsigned n = 0;
		for (int j = 0; j < job->n_nodes && n < 256; j++)
			names[n++] = job->nodes[j].uid;
		const char *sug = sl_suggest(uid, names, n);
		sl_suggest_list(list, sizeof(list), names, n);
		if (sug != NULL)
			return lerr(ld, v, key, "no operator '%s'; did you mean '%s'? (uids: %s)",
				    uid, sug, list);
		return lerr(ld, v, key, "no operator '%s' (uids: %s)", uid, list);
	}
	uint32_t par = job->nodes[pl.node].parallelism;
	if (pl.subtask >= 0 && (uint32_t)pl.subtask >= par)
		return lerr(ld, v, key,
			    "'%s' has %u subtask%s (0..%u); there is no subtask %d",
			    uid, par, par == 1 ? "" : "s", par - 1, pl.subtask);
	for (unsigned i = 0; i < ld->pvt->n_places; i++) {
		const struct jf_place *o = &ld->pvt->places[i];
		if (o->node == pl.node &&
		    (o->subtask < 0 || pl.subtask < 0 || o->subtask == pl.subtask))
			return lerr(ld, v, key,
				    "'%s' is already placed on lcore %u at line %d; place each subtask once",
				    sval(v), o->lcore, o->line);
	}
	for (uint32_t s = 0; s < par; s++)
		if (pl.subtask < 0 || (uint32_t)pl.subtask == s)
			sl_job_place(job, pl.node, s, lcore);
	return add_place(ld->pvt, &pl);
}

static int parse_layout_lcores(struct ld *ld, yaml_node_t *map)
{
	const char *key = "layout.lcores";
	yaml_node_t *lc = map_get(ld, map, "lcores");
	int rc;

	if (lc == NULL)
		return 0;
	if ((rc = map_check(ld, lc, key, NULL, NULL)) < 0)
		return rc;
	MAP_FOREACH(lc, pair)
	{
		yaml_node_t *k = node_at(ld, pair->key), *v = node_at(ld, pair->value);
		uint64_t lcore;

		if (parse_u64(sval(k), &lcore) < 0 || lcore >= RTE_MAX_LCORE)
			return lerr(ld, k, key,
				    "'%s' is not an lcore id (0..%d); write e.g. 1: [gen, counts/0]",
				    sval(k), RTE_MAX_LCORE - 1);
		if (v->type == YAML_SEQUENCE_NODE) {
			for (size_t i = 0; i < SEQ_LEN(v); i++)
				if ((rc = place_entry(ld, SEQ_AT(ld, v, i), (unsigned)lcore)) < 0)
					return rc;
		} else if ((rc = place_entry(ld, v, (unsigned)lcore)) < 0) {
			return rc;
		}
	}
	return 0;
}

static const char *const io_writer_keys[] = { "lcore", "poll", "serves",
					      "queue-depth",
					      "request-ring-size", NULL };

/* An lcore id in layout.io-writers[i]. */
static int writer_lcore(struct ld *ld, yaml_node_t *v, const char *key,
			unsigned *out)
{
	uint64_t x;
	int rc;

	if ((rc = want_scalar(ld, v, key, "2")) < 0)
		return rc;
	if (parse_u64(sval(v), &x) < 0 || x >= RTE_MAX_LCORE)
		return lerr(ld, v, key, "'%s' is not an lcore id (0..%d)", sval(v),
			    RTE_MAX_LCORE - 1);
	*out = (unsigned)x;
	return 0;
}

/* One entry of layout.io-writers: {lcore: N, poll: own|inline,
 * serves: [lcores]}. */
static int parse_io_writer(struct ld *ld, yaml_node_t *e, size_t i)
{
	struct jf_writer *w = &ld->pvt->writers[ld->pvt->n_writers];
	char key[KP_MAX], sub[KP_MAX];
	yaml_node_t *v;
	int rc;

	kpi(key, "layout.io-writers", i);
	if ((rc = map_check(ld, e, key, io_writer_keys, "keys of an io writer")) < 0)
		return rc;
	if ((v = map_get(ld, e, "lcore")) == NULL)
		return lerr(ld, e, key,
			    "missing 'lcore:' (the lcore that polls this writer)");
	if ((rc = writer_lcore(ld, v, kp(sub, key, "lcore"), &w->lcore)) < 0)
		return rc;
	w->line = line_of(v);
	w->own = true;
	if ((v = map_get(ld, e, "poll")) != NULL) {
		kp(sub, key, "poll");
		if ((rc = want_scalar(ld, v, sub, "own")) < 0)
			return rc;
		if (strcmp(sval(v), "inline") == 0)
			w->own = false;
		else if (strcmp(sval(v), "own") != 0)
			return lerr(ld, v, sub,
				    "'%s' is not a poll mode: own (the lcore runs only the writer) or inline (the lcore's worker loop polls it between its subtasks)",
				    sval(v));
	}
	if ((v = map_get(ld, e, "serves")) != NULL) {
		kp(sub, key, "serves");
		if (v->type != YAML_SEQUENCE_NODE || SEQ_LEN(v) == 0 ||
		    SEQ_LEN(v) > RTE_DIM(w->serves))
			return lerr(ld, v, sub,
				    "expected a list of 1..%zu worker lcores whose subtasks submit to this writer, e.g. [1, 2]",
				    RTE_DIM(w->serves));
		for (size_t k = 0; k < SEQ_LEN(v); k++) {
			yaml_node_t *l = SEQ_AT(ld, v, k);
			if ((rc = writer_lcore(ld, l, sub, &w->serves[k])) < 0)
				return rc;
			w->serves_line[k] = line_of(l);
		}
		w->n_serves = (unsigned)SEQ_LEN(v);
	}
	/* an lcore of its own hosts no subtask: known here, with lines */
	for (unsigned k = 0; w->own && k < ld->pvt->n_places; k++)
		if (ld->pvt->places[k].lcore == w->lcore)
			return lerr(ld, map_get(ld, e, "lcore"), key,
				    "lcore %u runs this io writer on its own (poll: own), but layout.lcores places '%s' there (line %d); use poll: inline or another lcore",
				    w->lcore, ld->jf->job->nodes[ld->pvt->places[k].node].uid,
				    ld->pvt->places[k].line);
	struct sl_job_io_writer jw = {
		.poll = w->own ? SL_IO_POLL_OWN : SL_IO_POLL_INLINE,
		.lcore = w->lcore,
		.serves = w->n_serves ? w->serves : NULL,
		.n_serves = w->n_serves,
	};
	if ((rc = opt_u32(ld, e, key, "queue-depth", 1, 4096, &jw.queue_depth)) < 0 ||
	    (rc = opt_u32(ld, e, key, "request-ring-size", 2, 1u << 20,
			  &jw.request_ring_size)) < 0)
		return rc;
	rc = sl_job_add_io_writer(ld->jf->job, &jw);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return lerr(ld, e, key, "%s", sl_job_error(ld->jf->job));
	ld->pvt->n_writers++;
	return 0;
}

static int parse_layout_io_writers(struct ld *ld, yaml_node_t *map)
{
	yaml_node_t *v = map_get(ld, map, "io-writers");
	char b[64];
	int rc;

	if (v == NULL)
		return 0;
	if (v->type != YAML_SEQUENCE_NODE || SEQ_LEN(v) == 0)
		return lerr(ld, v, "layout.io-writers",
			    "expected a list of writers (lines starting with '- lcore: N'), got %s",
			    kind_of(v, b, sizeof(b)));
	if (SEQ_LEN(v) > SL_JOB_IO_WRITERS_MAX)
		return lerr(ld, v, "layout.io-writers",
			    "%zu writers; at most %d (a writer may serve several lcores)",
			    SEQ_LEN(v), SL_JOB_IO_WRITERS_MAX);
	for (size_t i = 0; i < SEQ_LEN(v); i++)
		if ((rc = parse_io_writer(ld, SEQ_AT(ld, v, i), i)) < 0)
			return rc;
	return 0;
}

static int parse_eal(struct ld *ld, yaml_node_t *v)
{
	struct sl_job_file *jf = ld->jf;
	char b[64];
	size_t n = 0;

	jf->eal_argv = calloc(MAX_EAL_ARGS + 1, sizeof(char *));
	if (jf->eal_argv == NULL)
		return -ENOMEM;
	if (v->type == YAML_SCALAR_NODE) {
		/* "--no-huge -l 0-1": split on blanks */
		char *copy = strdup(sval(v)), *save = NULL;
		if (copy == NULL)
			return -ENOMEM;
		for (char *t = strtok_r(copy, " \t", &save); t != NULL;
		     t = strtok_r(NULL, " \t", &save)) {
			if (n == MAX_EAL_ARGS || (jf->eal_argv[n] = strdup(t)) == NULL) {
				free(copy);
				return n == MAX_EAL_ARGS
					       ? lerr(ld, v, "eal", "too many arguments (at most %d)",
						      MAX_EAL_ARGS)
					       : -ENOMEM;
			}
			jf->eal_argc = (int)++n;
		}
		free(copy);
		return 0;
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return lerr(ld, v, "eal",
			    "expected a list of EAL arguments like [--no-huge, --no-pci, -l, 0-1], got %s",
			    kind_of(v, b, sizeof(b)));
	if (SEQ_LEN(v) > MAX_EAL_ARGS)
		return lerr(ld, v, "eal", "too many arguments (at most %d)", MAX_EAL_ARGS);
	for (size_t i = 0; i < SEQ_LEN(v); i++) {
		yaml_node_t *a = SEQ_AT(ld, v, i);
		char key[KP_MAX];
		int rc;

		if ((rc = want_scalar(ld, a, kpi(key, "eal", i), "--no-huge")) < 0)
			return rc;
		if ((jf->eal_argv[i] = strdup(sval(a))) == NULL)
			return -ENOMEM;
		jf->eal_argc = (int)i + 1;
	}
	return 0;
}

static const char *const top_keys[] = { "job", "config", "schemas", "operators",
					"layout", "eal", NULL };

static int load_doc(struct ld *ld)
{
	yaml_node_t *root = ld->root, *v, *ops, *layout;
	char name[SL_UID_MAX] = "";
	char b[64];
	int rc;

	if ((rc = map_check(ld, root, "", top_keys, "top-level keys")) < 0)
		return rc;
	if ((rc = opt_str(ld, root, "", "job", name, sizeof(name), "demo")) < 0)
		return rc;
	if (rc == 0) {
		/* the file's name without directory and extension */
		const char *base = strrchr(ld->path, '/');
		base = base ? base + 1 : ld->path;
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(base, "."), base);
		if (name[0] == '\0')
			snprintf(name, sizeof(name), "job");
	}
	sl_job_config_defaults(&ld->cfg);
	if ((v = map_get(ld, root, "config")) != NULL &&
	    (rc = parse_config(ld, v, "")) < 0)
		return rc;
	if ((rc = checkpoint_resolve(ld)) < 0 || (rc = restart_resolve(ld)) < 0)
		return rc;
	if (ld->cfg.default_parallelism > ld->cfg.max_parallelism)
		return lerr(ld, map_get(ld, root, "config"), "config",
			    "parallelism.default %u is above pipeline.max-parallelism %u; lower it or raise the maximum",
			    ld->cfg.default_parallelism, ld->cfg.max_parallelism);
	layout = map_get(ld, root, "layout");
	if (layout != NULL && (rc = parse_layout_sizes(ld, layout)) < 0)
		return rc;
	if ((v = map_get(ld, root, "eal")) != NULL && (rc = parse_eal(ld, v)) < 0)
		return rc;

	ld->jf->job = sl_job_create(name, &ld->cfg);
	if (ld->jf->job == NULL)
		return errno == ENOMEM ? -ENOMEM
				       : lerr(ld, map_get(ld, root, "job"), "job",
					      "invalid job name or configuration");

	if ((v = map_get(ld, root, "schemas")) != NULL && (rc = parse_schemas(ld, v)) < 0)
		return rc;
	ops = map_get(ld, root, "operators");
	if (ops == NULL)
		return lerr(ld, root, "",
			    "missing 'operators:' (a list of sources, operators and sinks; see docs/job-file.md)");
	if (ops->type != YAML_SEQUENCE_NODE || SEQ_LEN(ops) == 0)
		return lerr(ld, ops, "operators",
			    "expected a list of operators (lines starting with '- uid: ...'), got %s",
			    kind_of(ops, b, sizeof(b)));
	ld->pvt->nodes = calloc(SEQ_LEN(ops), sizeof(*ld->pvt->nodes));
	if (ld->pvt->nodes == NULL)
		return -ENOMEM;
	ld->pvt->n_nodes = (int)SEQ_LEN(ops);
	for (size_t i = 0; i < SEQ_LEN(ops); i++)
		if ((rc = parse_operator(ld, ops, (int)i)) < 0)
			return rc;
	if (layout != NULL && (rc = parse_layout_lcores(ld, layout)) < 0)
		return rc;
	if (layout != NULL && (rc = parse_layout_io_writers(ld, layout)) < 0)
		return rc;
	return plan_job(ld->jf, ld->err, ld->errlen);
}

/* Does line `line` (0-based) of text have a value that starts with a YAML
 * indicator, like `op: >=`?  libyaml's message for that is obscure. */
static bool indicator_value(const char *text, size_t len, size_t line)
{
	size_t i = 0;

	for (size_t l = 0; l < line && i < len; i++)
		if (text[i] == '\n')
			l++;
	for (; i < len && text[i] != '\n'; i++) {
		if (text[i] != ':' && text[i] != ',' && text[i] != '{' && text[i] != '[')
			continue;
		size_t j = i + 1;
		if (text[i] == ':' && (j >= len || text[j] != ' '))
			continue;
		while (j < len && text[j] == ' ')
			j++;
		if (j < len && strchr(">|*&!%@`", text[j]) != NULL && text[j] != '\0')
			return true;
	}
	return false;
}

/* libyaml's problem, where it is, and a hint for the usual causes. */
static void yaml_syntax_error(struct ld *ld, const yaml_parser_t *p,
			      const char *text, size_t len)
{
	const char *hint = "";
	size_t off = p->problem_mark.index;
	char ctx[128] = "";

	if (p->problem == NULL) {
		jf_errf(ld->err, ld->errlen, ld->path, 0, NULL,
			"cannot parse the file (out of memory?)");
		return;
	}
	if (off < len && text[off] == '\t')
		hint = "; indent with spaces, YAML does not allow tabs";
	else if (indicator_value(text, len, p->problem_mark.line))
		hint = "; a value starting with '>', '|', '*', '&', '!', '%', '@' or '`' must be quoted, e.g. op: \">=\"";
	else if (p->context != NULL && strstr(p->context, "flow") != NULL)
		hint = "; check that every '[' and '{' is closed and that values containing ',', ':', '[' or '{' are quoted";
	else if (strstr(p->problem, "did not find expected") != NULL)
		hint = "; check the indentation: keys of one mapping and items of one list must start in the same column";
	else if (strstr(p->problem, "mapping values are not allowed") != NULL)
		hint = "; a value containing ': ' must be quoted, or a key is indented wrongly";
	if (p->context != NULL)
		snprintf(ctx, sizeof(ctx), " (%s at line %zu)", p->context,
			 p->context_mark.line + 1);
	if (ld->err != NULL && ld->errlen > 0)
		snprintf(ld->err, ld->errlen, "%s:%zu:%zu: invalid YAML: %s%s%s",
			 ld->path, p->problem_mark.line + 1,
			 p->problem_mark.column + 1, p->problem, ctx, hint);
}

struct sl_job_file *sl_job_file_parse(const char *name, const char *text,
				      size_t len, char *err, size_t errlen)
{
	struct ld ld = { .path = name, .err = err, .errlen = errlen };
	struct sl_job_file *jf;
	yaml_parser_t parser;
	bool have_doc = false;
	int rc = -ENOMEM;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	jf = calloc(1, sizeof(*jf));
	if (jf == NULL || (jf->path = strdup(name)) == NULL ||
	    (jf->pvt = ld.pvt = calloc(1, sizeof(struct jf_pvt))) == NULL)
		goto out;
	ld.jf = jf;
	if (!yaml_parser_initialize(&parser))
		goto out;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &ld.doc)) {
		yaml_syntax_error(&ld, &parser, text, len);
		yaml_parser_delete(&parser);
		rc = -EINVAL;
		goto out;
	}
	yaml_parser_delete(&parser);
	have_doc = true;
	ld.root = yaml_document_get_root_node(&ld.doc);
	if (ld.root == NULL || is_null(ld.root)) {
		rc = jf_errf(err, errlen, name, 0, NULL,
			     "the file is empty; a job needs at least an 'operators:' list (see docs/job-file.md)");
		goto out;
	}
	rc = load_doc(&ld);
out:
	if (have_doc)
		yaml_document_delete(&ld.doc);
	free(ld.schemas);
	if (rc < 0) {
		if (rc == -ENOMEM)
			jf_errf(err, errlen, name, 0, NULL, "out of memory");
		sl_job_file_free(jf);
		errno = -rc;
		return NULL;
	}
	return jf;
}

struct sl_job_file *sl_job_file_load(const char *path, char *err, size_t errlen)
{
	struct sl_job_file *jf;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int saved;

	f = fopen(path, "rb");
	if (f == NULL) {
		saved = errno;
		jf_errf(err, errlen, path, 0, NULL, "cannot read the job file: %s",
			strerror(saved));
		errno = saved;
		return NULL;
	}
	/* read the whole file: small, and the text is needed for hints */
	for (;;) {
		char *nt = realloc(text, len + 65536 + 1);
		if (nt == NULL) {
			free(text);
			fclose(f);
			jf_errf(err, errlen, path, 0, NULL, "out of memory");
			errno = ENOMEM;
			return NULL;
		}
		text = nt;
		size_t got = fread(text + len, 1, 65536, f);
		len += got;
		if (got < 65536)
			break;
	}
	if (ferror(f)) {
		saved = errno;
		free(text);
		fclose(f);
		jf_errf(err, errlen, path, 0, NULL, "cannot read the job file: %s",
			strerror(saved));
		errno = saved;
		return NULL;
	}
	fclose(f);
	text[len] = '\0';
	jf = sl_job_file_parse(path, text, len, err, errlen);
	saved = errno;
	free(text);
	errno = saved;
	return jf;
}

/* "0-1,4" for the enabled lcores */
static void lcore_list(char *buf, size_t len)
{
	size_t used = 0;
	int start = -1;

	buf[0] = '\0';
	for (int l = 0; l <= RTE_MAX_LCORE; l++) {
		bool on = l < RTE_MAX_LCORE && rte_lcore_is_enabled((unsigned)l);
		if (on && start < 0)
			start = l;
		if (!on && start >= 0) {
			int w = start == l - 1
					? snprintf(buf + used, len - used, "%s%d",
						   used ? "," : "", start)
					: snprintf(buf + used, len - used, "%s%d-%d",
						   used ? "," : "", start, l - 1);
			if (w < 0 || (size_t)w >= len - used)
				return;
			used += (size_t)w;
			start = -1;
		}
	}
}

int sl_job_file_prepare(struct sl_job_file *jf, char *err, size_t errlen)
{
	struct jf_pvt *pvt = pvt_of(jf);
	unsigned main_lcore = rte_get_main_lcore();
	char lcores[256];
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	lcore_list(lcores, sizeof(lcores));
	for (unsigned i = 0; i < pvt->n_places; i++) {
		const struct jf_place *pl = &pvt->places[i];

		if (pl->lcore >= RTE_MAX_LCORE || !rte_lcore_is_enabled(pl->lcore))
			return jf_errf(err, errlen, jf->path, pl->line, "layout.lcores",
				       "lcore %u does not exist in the EAL (lcores: %s; main lcore %u runs the control plane); change the layout or the EAL -l/--lcores list",
				       pl->lcore, lcores, main_lcore);
		if (pl->lcore == main_lcore)
			return jf_errf(err, errlen, jf->path, pl->line, "layout.lcores",
				       "lcore %u is the main lcore, which runs the control plane (EAL lcores: %s); place operators on the other lcores or change the EAL -l/--lcores list",
				       pl->lcore, lcores);
	}
	for (unsigned i = 0; i < pvt->n_writers; i++) {
		const struct jf_writer *w = &pvt->writers[i];
		char key[KP_MAX], sub[KP_MAX];

		kpi(key, "layout.io-writers", i);
		if (!rte_lcore_is_enabled(w->lcore))
			return jf_errf(err, errlen, jf->path, w->line, key,
				       "lcore %u does not exist in the EAL (lcores: %s); change the layout or the EAL -l/--lcores list",
				       w->lcore, lcores);
		if (w->own && w->lcore == main_lcore)
			return jf_errf(err, errlen, jf->path, w->line, key,
				       "lcore %u is the main lcore, which runs the control plane: a writer cannot have it to itself; use poll: inline (the control loop polls it, as without io-writers) or a worker lcore",
				       w->lcore);
		for (unsigned k = 0; k < w->n_serves; k++) {
			if (!rte_lcore_is_enabled(w->serves[k]))
				return jf_errf(err, errlen, jf->path, w->serves_line[k],
					       kp(sub, key, "serves"),
					       "lcore %u does not exist in the EAL (lcores: %s); list worker lcores",
					       w->serves[k], lcores);
			if (w->serves[k] == main_lcore)
				return jf_errf(err, errlen, jf->path, w->serves_line[k],
					       kp(sub, key, "serves"),
					       "lcore %u is the main lcore, which hosts no subtasks; list worker lcores",
					       w->serves[k]);
		}
	}
	rc = sl_job_prepare(jf->job);
	if (rc < 0) {
		int node = sl_job_error_node(jf->job);
		if (node >= 0)
			node_error(jf, node, sl_job_error(jf->job), err, errlen);
		else
			jf_errf(err, errlen, jf->path, 0, NULL, "%s", sl_job_error(jf->job));
		return rc;
	}
	return 0;
}

const char *sl_job_file_where(const struct sl_job_file *jf, int node)
{
	const struct jf_pvt *pvt = pvt_of(jf);

	if (pvt != NULL && node >= 0 && node < pvt->n_nodes &&
	    pvt->nodes[node].where != NULL)
		return pvt->nodes[node].where;
	return jf->path;
}

/* ------------------------------------------------------------- EAL args */

/* EAL options that take a value in the next argument (unless given as
 * --opt=value). */
static bool eal_takes_value(const char *opt)
{
	static const char *const with_value[] = {
		"-a", "-b", "-c", "-d", "-l", "-m", "-n", "-r", "-s", "-S",
		"--allow", "--block", "--lcores", "--socket-mem", "--socket-limit",
		"--file-prefix", "--huge-dir", "--proc-type", "--vdev",
		"--log-level", "--main-lcore", "--iova-mode", "--base-virtaddr",
		"--mbuf-pool-ops-name", "--service-corelist", "--service-coremask",
		"--vfio-intr", "--vfio-vf-token", "--trace", "--trace-dir",
		"--trace-bufsz", "--trace-mode", "--syslog", "--huge-worker-stack",
		NULL
	};
	return strchr(opt, '=') == NULL && in_list(with_value, opt);
}

/* Options of which only one instance makes sense, grouped by what they
 * set; a command-line option replaces the file's option of its group. */
static int eal_group(const char *arg)
{
	static const char *const groups[][4] = {
		{ "-l", "-c", "--lcores", NULL },
		{ "-m", "--socket-mem", NULL },
		{ "--file-prefix", NULL },
		{ "--main-lcore", NULL },
		{ "--proc-type", NULL },
		{ "--iova-mode", NULL },
		{ "--huge-dir", NULL },
		{ "-n", NULL },
	};
	size_t n = strcspn(arg, "=");

	for (int g = 0; g < (int)(sizeof(groups) / sizeof(groups[0])); g++)
		for (int i = 0; groups[g][i] != NULL; i++)
			if (strlen(groups[g][i]) == n && strncmp(groups[g][i], arg, n) == 0)
				return g;
	return -1;
}

char **sl_job_file_eal_args(const struct sl_job_file *jf, const char *argv0,
			    int extra_argc, char **extra_argv, int *argc)
{
	bool cli_has[16] = { false };
	char **out;
	int n = 0;

	if (extra_argc < 0)
		extra_argc = 0;
	out = calloc((size_t)(jf->eal_argc + extra_argc + 2), sizeof(char *));
	if (out == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	for (int i = 0; i < extra_argc; i++) {
		int g = eal_group(extra_argv[i]);
		if (g >= 0)
			cli_has[g] = true;
		if (eal_takes_value(extra_argv[i]))
			i++;
	}
	out[n++] = (char *)argv0;
	for (int i = 0; i < jf->eal_argc; i++) {
		int g = eal_group(jf->eal_argv[i]);
		bool value = eal_takes_value(jf->eal_argv[i]) && i + 1 < jf->eal_argc;

		if (g >= 0 && cli_has[g]) {
			i += value;
			continue;
		}
		out[n++] = jf->eal_argv[i];
		if (value)
			out[n++] = jf->eal_argv[++i];
	}
	for (int i = 0; i < extra_argc; i++)
		out[n++] = extra_argv[i];
	out[n] = NULL;
	*argc = n;
	return out;
}

void sl_job_file_free(struct sl_job_file *jf)
{
	if (jf == NULL)
		return;
	sl_job_free(jf->job);
	free(jf->path);
	if (jf->eal_argv != NULL)
		for (int i = 0; i < jf->eal_argc; i++)
			free(jf->eal_argv[i]);
	free(jf->eal_argv);
	free_pvt(jf->pvt);
	free(jf);
}
