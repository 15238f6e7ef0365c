/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sluice command line as a user meets it: help and version, exit
 * statuses and messages for bad input, and a clean stop on SIGINT that
 * drains in-flight records and publishes the sink's file.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#define SLUICE SL_BUILD_ROOT "/sluice"

struct run {
	int status; /* exit status, or 128 + signal */
	char out[16384];
	char err[16384];
};

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = '\0';
	if (f)
		fclose(f);
}

/* Run sluice with args; if sigint_after_ms > 0, send SIGINT then. */
static void run_sluice(struct run *r, int sigint_after_ms, const char *const *args)
{
	char out[] = "/tmp/sl-cli-out-XXXXXX", err[] = "/tmp/sl-cli-err-XXXXXX";
	int fo = mkstemp(out), fe = mkstemp(err), st;
	const char *argv[32] = { SLUICE };
	unsigned n = 1;

	cr_assert(fo >= 0 && fe >= 0);
	for (; args[n - 1] != NULL; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fo, 1);
		dup2(fe, 2);
		execv(SLUICE, (char *const *)argv);
		_exit(127);
	}
	if (sigint_after_ms > 0) {
		usleep((useconds_t)sigint_after_ms * 1000);
		kill(pid, SIGINT);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
	close(fo);
	close(fe);
	unlink(out);
	unlink(err);
}

Test(cli, help_and_version, .timeout = 30)
{
	struct run r;

	run_sluice(&r, 0, (const char *[]){ "--help", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "sluice run JOB.yaml"), "%s", r.out);
	run_sluice(&r, 0, (const char *[]){ "run", "--help", NULL });
	cr_assert_eq(r.status, 0);
	for (const char *opt = "--check\0--progress\0--quiet\0--stats-json\0"; *opt;
	     opt += strlen(opt) + 1)
		cr_assert(strstr(r.out, opt), "run --help lists %s", opt);
	run_sluice(&r, 0, (const char *[]){ "--version", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(strncmp(r.out, "sluice ", 7) == 0, "%s", r.out);
	run_sluice(&r, 0, (const char *[]){ "frobnicate", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "unknown command 'frobnicate'"), "%s", r.err);
}

Test(cli, bad_input_exits_2_and_names_the_problem, .timeout = 30)
{
	struct run r;

	run_sluice(&r, 0, (const char *[]){ "run", "/nonexistent/job.yaml", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "/nonexistent/job.yaml"), "%s", r.err);

	run_sluice(&r, 0, (const char *[]){ "run", SL_SOURCE_ROOT "/tests/jobs/bad_unknown_key.yaml", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "bad_unknown_key.yaml:11"), "%s", r.err);
	cr_assert(strstr(r.err, "did you mean 'parallelism'"), "%s", r.err);

	run_sluice(&r, 0, (const char *[]){ "run", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "which job?"), "%s", r.err);
}

Test(cli, sigint_drains_and_publishes, .timeout = 120)
{
	char dir[] = "/tmp/sl-cli-XXXXXX", job[4200], csv[4200], stats[4200], line[512];
	struct run r;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(job, sizeof(job), "%s/job.yaml", dir);
	snprintf(csv, sizeof(csv), "%s/out/records.csv", dir);
	snprintf(stats, sizeof(stats), "%s/stats.json", dir);
	f = fopen(job, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"job: forever\n"
		"operators:\n"
		"  - uid: gen\n"
		"    type: generator\n"
		"    schema: [{name: key, type: u64}, {name: seq, type: u64}]\n"
		"    count: 0\n"
		"    rate: 200000\n"
		"  - uid: out\n"
		"    type: file-sink\n"
		"    input: gen\n"
		"    path: %s\n"
		"eal: [--no-huge, --no-pci, --no-telemetry, --log-level=lib.eal:error,\n"
		"      \"--lcores=0@0,1@1\", --file-prefix=slcli%d]\n",
		csv, getpid());
	fclose(f);

	run_sluice(&r, 1500, (const char *[]){ "run", job, "-q", "-s", stats, NULL });
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);

	/* the sink published a complete file: header + one row per record it got */
	f = fopen(csv, "r");
	cr_assert_not_null(f, "the sink's file was published at %s", csv);
	long rows = -1;
	while (fgets(line, sizeof(line), f))
		rows++;
	fclose(f);
	json_error_t je;
	json_t *js = json_load_file(stats, 0, &je);
	cr_assert_not_null(js, "%s", je.text);
	json_t *tasks = json_object_get(js, "subtasks");
	long emitted = -1, received = -1;
	for (size_t i = 0; i < json_array_size(tasks); i++) {
		json_t *t = json_array_get(tasks, i);
		const char *uid = json_string_value(json_object_get(t, "uid"));
		if (strcmp(uid, "gen") == 0)
			emitted = (long)json_integer_value(json_object_get(t, "records_out"));
		else
			received = (long)json_integer_value(json_object_get(t, "records_in"));
	}
	json_decref(js);
	cr_assert_gt(emitted, 100000, "the generator ran about 1.5 s at 200k/s (%ld)", emitted);
	cr_assert_eq(received, emitted, "in-flight records drained to the sink");
	cr_assert_eq(rows, received, "every record the sink got is in the file");
	unlink(csv);
	unlink(stats);
	unlink(job);
	char sub[4300];
	snprintf(sub, sizeof(sub), "%s/out", dir);
	rmdir(sub);
	rmdir(dir);
}
