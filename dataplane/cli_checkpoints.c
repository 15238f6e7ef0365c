/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `sluice checkpoints`: the checkpoint statistics of a running job, asked
 * over its control socket (dataplane/control_socket.c; the document is
 * specified in dataplane/checkpoint_stats.c) and printed as a table,
 * newest checkpoint first, or as JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "cli_pvt.h"
#include "sluice/control_socket.h"
#include "sluice/job.h"
#include "sluice/job_file.h"

#define ANSWER_TIMEOUT_MS 5000

static void usage(FILE *f)
{
	char dir[SL_CTL_PATH_MAX] = "?";

	sl_ctl_default_dir(dir, sizeof(dir));
	fprintf(f,
		"Usage: sluice checkpoints [JOB.yaml | --socket PATH] [--json] [--subtasks]\n"
		"\n"
		"Prints the checkpoint statistics of a running job, newest checkpoint first:\n"
		"status, trigger time, end-to-end duration, the mode actually used (aligned,\n"
		"unaligned, switched, at-least-once), subtasks acknowledged, state written and\n"
		"the full state size, in-flight data persisted, the longest start delay,\n"
		"alignment, synchronous and asynchronous part among the subtasks, and why a\n"
		"checkpoint failed.  The job keeps its last 32 checkpoints.\n"
		"\n"
		"Which job: JOB.yaml finds the socket the way 'sluice run JOB.yaml' made it\n"
		"(the file's sluice.control-socket key, or the default for its job name);\n"
		"--socket names the socket; with neither, the one job whose socket is in the\n"
		"default directory, here %s.\n"
		"\n"
		"Options:\n"
		"  -S, --socket PATH   the job's control socket (sluice run --control-socket)\n"
		"  -j, --json          print the statistics as one JSON document\n"
		"                      (fields: docs/checkpointing.md)\n"
		"  -t, --subtasks      add every subtask's figures\n"
		"  -h, --help          show this help\n"
		"\n"
		"Durations are in ns/us/ms/s, sizes in B/KiB/MiB/GiB, trigger times in local\n"
		"time (the JSON has UTC).\n"
		"\n"
		"Exit status: 0 printed, 1 no job answered (the message says why), 2 bad usage.\n",
		dir);
}

/* ------------------------------------------------------------ which job */

static int socket_of_job_file(const char *file, char *path, size_t len)
{
	char err[2048];
	struct sl_job_file *jf = sl_job_file_load(file, err, sizeof(err));
	const struct sl_job_config *cfg;
	int rc = 0;

	if (jf == NULL) {
		fprintf(stderr, "sluice checkpoints: %s\n", err);
		return -EINVAL;
	}
	cfg = sl_job_get_config(jf->job);
	if (cfg->control_socket[0] != '\0')
		snprintf(path, len, "%s", cfg->control_socket);
	else if (sl_ctl_default_path(sl_job_name(jf->job), path, len) < 0) {
		fprintf(stderr, "sluice checkpoints: the default control socket path of job '%s' is too long; give the socket with --socket PATH\n",
			sl_job_name(jf->job));
		rc = -ENAMETOOLONG;
	}
	sl_job_file_free(jf);
	return rc;
}

/* The only socket in the default directory. */
static int only_default_socket(char *path, size_t len)
{
	char dir[SL_CTL_PATH_MAX], names[512] = "";
	size_t nlen = 0;
	unsigned found = 0;
	struct dirent *e;
	DIR *d;

	if (sl_ctl_default_dir(dir, sizeof(dir)) < 0 || (d = opendir(dir)) == NULL) {
		fprintf(stderr, "sluice checkpoints: no running job found: %s does not exist; give the job file (sluice checkpoints JOB.yaml) or its socket (--socket PATH)\n",
			dir);
		return -ENOENT;
	}
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char p[SL_CTL_PATH_MAX + 256];
		struct stat st;

		if (l < 6 || strcmp(e->d_name + l - 5, ".sock") != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (found++ == 0)
			snprintf(path, len, "%s", p);
		if (nlen < sizeof(names))
			nlen += (size_t)snprintf(names + nlen, sizeof(names) - nlen, "%s%s",
						 nlen ? ", " : "", e->d_name);
	}
	closedir(d);
	if (found == 1)
		return 0;
	if (found == 0)
		fprintf(stderr, "sluice checkpoints: no running job found: no control socket in %s; give the job file (sluice checkpoints JOB.yaml) or its socket (--socket PATH)\n",
			dir);
	else
		fprintf(stderr, "sluice checkpoints: %u jobs have control sockets in %s (%s); say which: sluice checkpoints JOB.yaml, or --socket PATH\n",
			found, dir, names);
	return found == 0 ? -ENOENT : -EEXIST;
}

/* ------------------------------------------------------------ table */

static uint64_t u64(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));
	return v > 0 ? (uint64_t)v : 0;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static const char *dur(char *b, size_t n, uint64_t ns)
{
	if (ns < 1000)
		snprintf(b, n, "%" PRIu64 " ns", ns);
	else if (ns < 10000)
		snprintf(b, n, "%.1f us", ns / 1e3);
	else if (ns < 1000000)
		snprintf(b, n, "%.0f us", ns / 1e3);
	else if (ns < 10000000)
		snprintf(b, n, "%.2f ms", ns / 1e6);
	else if (ns < 1000000000)
		snprintf(b, n, "%.1f ms", ns / 1e6);
	else
		snprintf(b, n, "%.2f s", ns / 1e9);
	return b;
}

static const char *size(char *b, size_t n, uint64_t v)
{
	if (v < 1024)
		snprintf(b, n, "%" PRIu64 " B", v);
	else if (v < (1u << 20))
		snprintf(b, n, "%.1f KiB", v / 1024.0);
	else if (v < (1u << 30))
		snprintf(b, n, "%.1f MiB", v / 1048576.0);
	else
		snprintf(b, n, "%.2f GiB", v / 1073741824.0);
	return b;
}

static const char *local_time(char *b, size_t n, uint64_t unix_ns)
{
	time_t sec = (time_t)(unix_ns / 1000000000);
	struct tm tm;
	size_t k;

	localtime_r(&sec, &tm);
	k = strftime(b, n, "%H:%M:%S", &tm);
	snprintf(b + k, n - k, ".%03u", (unsigned)(unix_ns % 1000000000 / 1000000));
	return b;
}

static const char *status_text(const char *s)
{
	return strcmp(s, "in_progress") == 0 ? "in progress" : s;
}

/* Interval as configured: whole seconds or milliseconds. */
static const char *period(char *b, size_t n, uint64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(b, n, "%" PRIu64 " s", ms / 1000);
	else
		snprintf(b, n, "%" PRIu64 " ms", ms);
	return b;
}

/* The columns both tables share: state, full state, in flight, start
 * delay, alignment, sync, async ("-" where nothing was reported yet);
 * then the text of the last column, if any. */
static void figures(const json_t *o, bool known, bool maxima, const char *last)
{
	char v[7][32];

	if (!known) {
		for (unsigned i = 0; i < 7; i++)
			snprintf(v[i], sizeof(v[i]), "-");
	} else {
		size(v[0], sizeof(v[0]), u64(o, "state_bytes"));
		size(v[1], sizeof(v[1]), u64(o, "full_state_bytes"));
		size(v[2], sizeof(v[2]), u64(o, "inflight_bytes"));
		dur(v[3], sizeof(v[3]), u64(o, maxima ? "max_start_delay_ns" : "start_delay_ns"));
		dur(v[4], sizeof(v[4]), u64(o, maxima ? "max_alignment_ns" : "alignment_ns"));
		dur(v[5], sizeof(v[5]), u64(o, maxima ? "max_sync_ns" : "sync_ns"));
		dur(v[6], sizeof(v[6]), u64(o, maxima ? "max_async_ns" : "async_ns"));
	}
	printf("%10s %10s %10s %11s %10s %9s %9s%s%s\n", v[0], v[1], v[2], v[3], v[4],
	       v[5], v[6], last[0] ? "  " : "", last);
}

#define FIGURE_HEADS "     STATE FULL STATE  IN-FLIGHT START DELAY  ALIGNMENT      SYNC     ASYNC"

static void print_subtasks(const json_t *subs)
{
	printf("        %-24s %-12s %-13s " FIGURE_HEADS "  DECLINED BECAUSE\n", "SUBTASK",
	       "STATUS", "MODE");
	for (size_t i = 0; i < json_array_size(subs); i++) {
		const json_t *s = json_array_get(subs, i);
		const char *mode = json_string_value(json_object_get(s, "mode"));
		char name[96];

		snprintf(name, sizeof(name), "%s[%" PRIu64 "]", str(s, "operator"),
			 u64(s, "index"));
		printf("        %-24s %-12s %-13s ", name, str(s, "status"),
		       mode ? mode : "-");
		figures(s, mode != NULL, false, str(s, "decline_reason"));
	}
}

static void print_table(const json_t *doc, bool subtasks)
{
	const json_t *cfg = json_object_get(doc, "config");
	const json_t *counts = json_object_get(doc, "counts");
	const json_t *list = json_object_get(doc, "checkpoints");
	uint64_t n_tasks = u64(doc, "subtasks");
	char b1[32], b2[32];

	if (!json_is_true(json_object_get(doc, "checkpointing"))) {
		printf("job '%s' (pid %" PRIu64 ") runs without checkpoints: execution.checkpointing.interval is not set in its job file\n",
		       str(doc, "job"), u64(doc, "pid"));
		return;
	}
	printf("job '%s' (pid %" PRIu64 "): a checkpoint every %s, mode %s, %" PRIu64 " subtasks, directory %s\n",
	       str(doc, "job"), u64(doc, "pid"),
	       period(b1, sizeof(b1), u64(cfg, "interval_ms")), str(cfg, "mode"),
	       n_tasks, str(cfg, "dir"));
	printf("checkpoints: %" PRIu64 " triggered, %" PRIu64 " completed, %" PRIu64 " failed, %" PRIu64 " in progress; latest completed: ",
	       u64(counts, "triggered"), u64(counts, "completed"), u64(counts, "failed"),
	       u64(counts, "in_progress"));
	if (json_is_integer(json_object_get(doc, "latest_completed")))
		printf("%" PRIu64 "\n", u64(doc, "latest_completed"));
	else
		printf("none\n");
	if (str(doc, "last_failure")[0])
		printf("last failure: %s\n", str(doc, "last_failure"));
	if (json_array_size(list) == 0) {
		printf("no checkpoint yet: the first is triggered %s after the start\n",
		       period(b1, sizeof(b1), u64(cfg, "interval_ms")));
		return;
	}
	printf("\n%6s  %-11s  %-12s  %9s  %-13s  %7s " FIGURE_HEADS "  FAILURE\n", "ID",
	       "STATUS", "TRIGGERED", "DURATION", "MODE", "ACKS");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *ck = json_array_get(list, i);
		char acks[48];

		snprintf(acks, sizeof(acks), "%" PRIu64 "/%" PRIu64, u64(ck, "acknowledged"),
			 n_tasks);
		printf("%6" PRIu64 "  %-11s  %-12s  %9s  %-13s  %7s ", u64(ck, "id"),
		       status_text(str(ck, "status")),
		       local_time(b1, sizeof(b1), u64(ck, "trigger_unix_ns")),
		       dur(b2, sizeof(b2), u64(ck, "duration_ns")), str(ck, "mode"), acks);
		figures(ck, u64(ck, "acknowledged") > 0, true, str(ck, "failure_reason"));
		if (subtasks)
			print_subtasks(json_object_get(ck, "subtasks"));
	}
	printf("\nSTART DELAY, ALIGNMENT, SYNC and ASYNC are the longest among the subtasks%s;\n"
	       "STATE, FULL STATE and IN-FLIGHT are totals.\n",
	       subtasks ? " (each subtask's below its checkpoint)" : " (--subtasks shows each)");
}

/* ------------------------------------------------------------ command */

int sl_cli_checkpoints(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "subtasks", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char path[SL_CTL_PATH_MAX + 256], err[1024];
	const char *socket = NULL;
	bool json = false, subtasks = false;
	char *answer = NULL;
	json_error_t je;
	json_t *doc;
	int opt, rc = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "S:jth", opts, NULL)) != -1) {
		switch (opt) {
		case 'S':
			socket = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 't':
			subtasks = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1 || (socket != NULL && optind < argc)) {
		fprintf(stderr, "sluice checkpoints: name one job: a job file, or --socket PATH\n");
		return EXIT_USAGE;
	}
	if (socket != NULL)
		snprintf(path, sizeof(path), "%s", socket);
	else if (optind < argc)
		rc = socket_of_job_file(argv[optind], path, sizeof(path));
	else
		rc = only_default_socket(path, sizeof(path));
	if (socket == NULL && rc < 0)
		return rc == -EINVAL ? EXIT_USAGE : EXIT_FAILED;

	rc = sl_ctl_request(path, subtasks ? "checkpoints subtasks" : "checkpoints",
			    ANSWER_TIMEOUT_MS, &answer, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "sluice checkpoints: %s\n", err);
		return EXIT_FAILED;
	}
	doc = json_loads(answer, 0, &je);
	free(answer);
	if (!json_is_object(doc)) {
		fprintf(stderr, "sluice checkpoints: the job at %s answered with something that is not a JSON object (%s); is it a sluice control socket?\n",
			path, doc ? "another JSON value" : je.text);
		json_decref(doc);
		return EXIT_FAILED;
	}
	if (!json_is_true(json_object_get(doc, "ok"))) {
		fprintf(stderr, "sluice checkpoints: the job at %s refused: %s\n", path,
			str(doc, "error"));
		json_decref(doc);
		return EXIT_FAILED;
	}
	if (json) {
		json_dumpf(doc, stdout, JSON_INDENT(2));
		printf("\n");
	} else {
		print_table(doc, subtasks);
	}
	json_decref(doc);
	return EXIT_OK;
}
