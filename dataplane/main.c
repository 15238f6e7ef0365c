/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sluice command line.
 *
 *   sluice run JOB.yaml [options] [-- EAL arguments]
 *   sluice checkpoints [JOB.yaml | --socket PATH] [--json] [--subtasks]
 *   sluice run JOB.yaml --restore latest|DIR ...
 *
 * Loads and checks the whole job file before touching DPDK, so a bad file
 * never half-starts anything; then initialises the EAL (the job file's
 * `eal:` list, then the arguments after --), checks the layout against the
 * EAL's lcores, and runs until the job ends or is stopped.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <rte_cycles.h>
#include <rte_eal.h>

#include "cli_pvt.h"
#include "sluice/control_socket.h"
#include "sluice/job.h"
#include "sluice/job_file.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

/* long options without a short form */
enum { OPT_CONTROL_SOCKET = 256 };

static struct sl_job *running_job;
static volatile sig_atomic_t stop_requests;

static void usage(FILE *f)
{
	fprintf(f,
		"sluice %s - stream processing on pinned DPDK lcores\n"
		"\n"
		"Usage:\n"
		"  sluice run JOB.yaml [options] [-- EAL arguments]\n"
		"  sluice checkpoints [JOB.yaml | --socket PATH] [--json] [--subtasks]\n"
		"  sluice --help | --version\n"
		"\n"
		"Commands:\n"
		"  run          run the job described by JOB.yaml (see 'sluice run --help')\n"
		"  checkpoints  checkpoint statistics of a running job, from its control\n"
		"               socket (see 'sluice checkpoints --help')\n"
		"\n"
		"Options:\n"
		"  -h, --help      show this help\n"
		"  -V, --version   print the version\n"
		"\n"
		"Job files are described in docs/job-file.md.\n",
		SLUICE_VERSION);
}

static void run_usage(FILE *f)
{
	char ctl_dir[SL_CTL_PATH_MAX] = "?";

	sl_ctl_default_dir(ctl_dir, sizeof(ctl_dir));
	fprintf(f,
		"Usage: sluice run JOB.yaml [options] [-- EAL arguments]\n"
		"\n"
		"Runs a job until its sources are exhausted or it is stopped.\n"
		"\n"
		"Options:\n"
		"  -c, --check             load and check the job file, print the plan, do not run\n"
		"                          (with --restore, also choose and check the checkpoint)\n"
		"  -r, --restore latest|DIR\n"
		"                          start from a checkpoint instead of empty state:\n"
		"                          'latest' is the newest complete, intact checkpoint in\n"
		"                          state.checkpoints.dir (incomplete or damaged ones are\n"
		"                          skipped with a warning); DIR is a chk-<n> or savepoint\n"
		"                          directory.  It must belong to this job (name, operator\n"
		"                          uids and types).  Nothing in it is modified.\n"
		"  -p, --progress SECONDS  print a progress line every SECONDS (0 = off;\n"
		"                          default: the file's sluice.progress-interval)\n"
		"  -q, --quiet             no progress lines and no summary\n"
		"  -s, --stats-json FILE   write per-subtask and per-lcore statistics as JSON\n"
		"      --control-socket PATH\n"
		"                          the job's control socket while it runs (default:\n"
		"                          the file's sluice.control-socket, else\n"
		"                          %s/<job>.sock); 'sluice checkpoints' talks to it\n"
		"  -h, --help              show this help\n"
		"\n"
		"EAL arguments: the job file's 'eal:' list, then everything after '--'\n"
		"(e.g. -- --no-huge --no-pci -l 0-1 --file-prefix=job1).  Without hugepages,\n"
		"pass --no-huge; sluice then sizes -m for the job unless given.\n"
		"\n"
		"Signals: the first SIGINT/SIGTERM stops the sources; records already in\n"
		"flight drain through the operators to the sinks, which flush and close\n"
		"their files; windows that are still open are not fired (their state is\n"
		"dropped).  A second signal cancels at once and drops in-flight records.\n"
		"\n"
		"Exit status: 0 finished or stopped, 1 the job failed (also: another job\n"
		"owns its control socket), 2 bad usage, bad job file, or a checkpoint\n"
		"--restore cannot use.\n",
		ctl_dir);
}

static void on_signal(int sig)
{
	(void)sig;
	if (running_job == NULL)
		return;
	sl_job_stop(running_job, false, ++stop_requests > 1);
}

static void print_plan(const struct sl_job_file *jf)
{
	const struct sl_job *job = jf->job;

	printf("job '%s': %d operators\n", sl_job_name(job), sl_job_node_count(job));
	for (int i = 0; i < sl_job_node_count(job); i++) {
		const struct sl_schema *s = sl_job_node_schema(job, i);
		printf("  %-20s parallelism %-3u", sl_job_node_uid(job, i),
		       sl_job_node_parallelism(job, i));
		if (s != NULL) {
			printf(" out (");
			for (unsigned f = 0; f < s->nfields; f++)
				printf("%s%s %s", f ? ", " : "", s->fields[f].name,
				       sl_type_name(s->fields[f].type));
			printf(")");
		} else {
			printf(" sink");
		}
		printf("\n");
	}
}

static int write_stats_json(const struct sl_job *job, const char *path)
{
	unsigned nt, nl;
	const struct sl_task_stats *ts = sl_job_task_stats(job, &nt);
	const struct sl_lcore_stats *ls = sl_job_lcore_stats(job, &nl);
	double hz = (double)rte_get_tsc_hz();
	json_t *root = json_object(), *tasks = json_array(), *lcores = json_array();
	int rc;

	json_object_set_new(root, "job", json_string(sl_job_name(job)));
	json_object_set_new(root, "elapsed_s", json_real(sl_job_elapsed(job)));
	for (unsigned i = 0; i < nt; i++) {
		json_array_append_new(tasks, json_pack(
			"{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f}",
			"uid", ts[i].uid, "subtask", (json_int_t)ts[i].index,
			"lcore", (json_int_t)ts[i].lcore,
			"records_in", (json_int_t)ts[i].records_in,
			"records_out", (json_int_t)ts[i].records_out,
			"late_dropped", (json_int_t)ts[i].late_dropped,
			"busy_s", ts[i].busy_cycles / hz,
			"backpressured_s", ts[i].blocked_cycles / hz));
	}
	for (unsigned i = 0; i < nl; i++) {
		json_array_append_new(lcores, json_pack(
			"{s:I, s:I, s:I}", "lcore", (json_int_t)ls[i].lcore,
			"busy_iterations", (json_int_t)ls[i].busy_cycles,
			"idle_iterations", (json_int_t)ls[i].idle_cycles));
	}
	json_object_set_new(root, "subtasks", tasks);
	json_object_set_new(root, "lcores", lcores);
	rc = json_dump_file(root, path, JSON_INDENT(2));
	json_decref(root);
	if (rc != 0) {
		fprintf(stderr, "sluice: cannot write statistics to %s: %s\n", path,
			strerror(errno));
		return -EIO;
	}
	return 0;
}

static void print_summary(const struct sl_job *job)
{
	unsigned nt;
	const struct sl_task_stats *ts = sl_job_task_stats(job, &nt);
	uint64_t src = 0, snk = 0;
	double t = sl_job_elapsed(job);

	for (unsigned i = 0; i < nt; i++) {
		if (ts[i].records_in == 0)
			src += ts[i].records_out;
		if (ts[i].records_out == 0)
			snk += ts[i].records_in;
	}
	fprintf(stderr,
		"[%s] done in %.2f s: sources emitted %" PRIu64 " records (%.2f M/s), sinks received %" PRIu64 "\n",
		sl_job_name(job), t, src, t > 0 ? src / t / 1e6 : 0.0, snk);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "check", no_argument, NULL, 'c' },
		{ "progress", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "restore", required_argument, NULL, 'r' },
		{ "stats-json", required_argument, NULL, 's' },
		{ "control-socket", required_argument, NULL, OPT_CONTROL_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *stats_path = NULL, *ctl_path = NULL, *restore = NULL;
	bool check = false, quiet = false;
	double progress = -1;
	char err[2048];
	int eal_at = argc, opt, rc;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			eal_at = i;
			break;
		}
	optind = 1;
	while ((opt = getopt_long(eal_at, argv, "cp:qr:s:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			check = true;
			break;
		case 'p': {
			char *end;
			progress = strtod(optarg, &end);
			if (*end != '\0' || progress < 0) {
				fprintf(stderr, "sluice run: --progress takes seconds (e.g. 1 or 0.5), not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'q':
			quiet = true;
			break;
		case 'r':
			restore = optarg;
			break;
		case 's':
			stats_path = optarg;
			break;
		case OPT_CONTROL_SOCKET:
			ctl_path = optarg;
			if (strlen(ctl_path) == 0 || strlen(ctl_path) >= SL_CTL_PATH_MAX) {
				fprintf(stderr, "sluice run: --control-socket takes a socket path of 1..%d bytes, not '%s'\n",
					SL_CTL_PATH_MAX - 1, ctl_path);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			run_usage(stdout);
			return EXIT_OK;
		default:
			run_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != eal_at - 1) {
		fprintf(stderr, optind >= eal_at
				? "sluice run: which job? give the job file, e.g. 'sluice run jobs/demo.yaml'\n"
				: "sluice run: one job file only; EAL arguments go after '--'\n");
		return EXIT_USAGE;
	}

	struct sl_job_file *jf = sl_job_file_load(argv[optind], err, sizeof(err));
	if (jf == NULL) {
		fprintf(stderr, "sluice: %s\n", err);
		return EXIT_USAGE;
	}
	/* before the EAL: a checkpoint that cannot be used never starts
	 * anything */
	if (restore != NULL && sl_job_restore_from(jf->job, restore) < 0) {
		fprintf(stderr, "sluice: %s\n", sl_job_error(jf->job));
		sl_job_file_free(jf);
		return EXIT_USAGE;
	}
	if (check) {
		print_plan(jf);
		if (restore != NULL)
			printf("restores from checkpoint %" PRIu64 "\n",
			       sl_job_restore_id(jf->job));
		sl_job_file_free(jf);
		return EXIT_OK;
	}
	struct sl_job_config *cfg = (struct sl_job_config *)sl_job_get_config(jf->job);
	if (quiet)
		cfg->progress_ms = 0;
	else if (progress >= 0)
		cfg->progress_ms = (uint32_t)(progress * 1000);
	if (ctl_path != NULL)
		snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s", ctl_path);
	else if (cfg->control_socket[0] == '\0' &&
		 sl_ctl_default_path(sl_job_name(jf->job), cfg->control_socket,
				     sizeof(cfg->control_socket)) < 0) {
		fprintf(stderr, "sluice run: the default control socket path of job '%s' is too long for a Unix socket; give one with --control-socket PATH or sluice.control-socket\n",
			sl_job_name(jf->job));
		sl_job_file_free(jf);
		return EXIT_USAGE;
	}
	if (!quiet)
		fprintf(stderr, "[%s] control socket %s\n", sl_job_name(jf->job),
			cfg->control_socket);

	/* EAL argv: program name, the file's list, then the command line's
	 * (which replaces the file's options of the same kind) */
	int eal_argc = 0;
	int extra = eal_at < argc ? argc - eal_at - 1 : 0;
	char **eal_argv = sl_job_file_eal_args(jf, argv[0], extra,
					       argv + eal_at + 1, &eal_argc);
	if (eal_argv == NULL) {
		sl_job_file_free(jf);
		return EXIT_FAILED;
	}
	rc = sl_eal_init(eal_argc, eal_argv, sl_job_memory_estimate(jf->job));
	free(eal_argv);
	if (rc < 0) {
		sl_job_file_free(jf);
		return EXIT_USAGE;
	}
	rc = sl_job_file_prepare(jf, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "sluice: %s\n", err);
		sl_job_file_free(jf);
		rte_eal_cleanup();
		return EXIT_USAGE;
	}

	running_job = jf->job;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = sl_job_run(jf->job);
	running_job = NULL;
	if (rc < 0 && rc != -ECANCELED) {
		int node = sl_job_error_node(jf->job);
		fprintf(stderr, "sluice: job '%s' failed: %s\n", sl_job_name(jf->job),
			sl_job_error(jf->job));
		if (node >= 0)
			fprintf(stderr, "  (operator defined at %s)\n",
				sl_job_file_where(jf, node));
	} else if (rc == -ECANCELED) {
		fprintf(stderr, "sluice: job '%s' %s\n", sl_job_name(jf->job),
			sl_job_error(jf->job));
	}
	if (!quiet && rc >= 0)
		print_summary(jf->job);
	if (stats_path != NULL && write_stats_json(jf->job, stats_path) < 0 && rc == 0)
		rc = -EIO;
	sl_job_file_free(jf);
	rte_eal_cleanup();
	return rc < 0 && rc != -ECANCELED ? EXIT_FAILED : EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("sluice %s\n", SLUICE_VERSION);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "checkpoints") == 0)
		return sl_cli_checkpoints(argc - 1, argv + 1);
	fprintf(stderr, "sluice: unknown command '%s'; commands: run, checkpoints (see 'sluice --help')\n",
		argv[1]);
	return EXIT_USAGE;
}
