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
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "sluice/snapshot.h"

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
	for (const char *opt = "--check\0--progress\0--quiet\0--stats-json\0--restore\0"; *opt;
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

/* ------------------------------------------------------------- --restore */

static XXH3_state_t *tree_state;
static size_t tree_prefix;

static int tree_entry(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)ftw;
	XXH3_64bits_update(tree_state, path + tree_prefix, strlen(path + tree_prefix) + 1);
	XXH3_64bits_update(tree_state, &st->st_mode, sizeof(st->st_mode));
	XXH3_64bits_update(tree_state, &st->st_size, sizeof(st->st_size));
	XXH3_64bits_update(tree_state, &st->st_mtim, sizeof(st->st_mtim));
	XXH3_64bits_update(tree_state, &st->st_ino, sizeof(st->st_ino));
	if (type == FTW_F) {
		char buf[65536];
		ssize_t n;
		int fd = open(path, O_RDONLY);

		cr_assert_geq(fd, 0, "%s", path);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			XXH3_64bits_update(tree_state, buf, (size_t)n);
		close(fd);
	}
	return 0;
}

/* Names, types, sizes, mtimes, inodes and contents of everything under dir. */
static uint64_t tree_hash(const char *dir)
{
	uint64_t h;

	tree_state = XXH3_createState();
	XXH3_64bits_reset(tree_state);
	tree_prefix = strlen(dir);
	cr_assert_eq(nftw(dir, tree_entry, 16, FTW_PHYS), 0);
	h = XXH3_64bits_digest(tree_state);
	XXH3_freeState(tree_state);
	return h;
}

static void write_restore_job(const char *path, const char *name, const char *ckdir)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f,
		"job: %s\n"
		"config:\n"
		"  execution.checkpointing.interval: 50ms\n"
		"  state.checkpoints.dir: %s\n"
		"  state.checkpoints.num-retained: 3\n"
		"operators:\n"
		"  - uid: gen\n"
		"    type: generator\n"
		"    schema: [{name: key, type: u64}, {name: seq, type: u64}]\n"
		"    count: 600000\n"
		"    rate: 300000\n"
		"  - uid: counts\n"
		"    type: keyed-aggregate\n"
		"    input: gen\n"
		"    key: key\n"
		"    aggregates: [{fn: count}]\n"
		"  - uid: out\n"
		"    type: null-sink\n"
		"    input: counts\n"
		"eal: [--no-huge, --no-pci, --no-telemetry, --log-level=lib.eal:error,\n"
		"      \"--lcores=0@0,1@1\", --file-prefix=slclir%d]\n",
		name, ckdir, getpid());
	fclose(f);
}

/* `sluice run job --restore what` is refused with status 2, a message
 * that names `names`, and nothing under `dir` changed. */
static void cli_refused(const char *job, const char *what, const char *names,
			const char *dir)
{
	uint64_t before = tree_hash(dir);
	struct run r;

	run_sluice(&r, 0, (const char *[]){ "run", job, "-q", "--restore", what, NULL });
	cr_assert_eq(r.status, 2, "--restore %s: exit %d: %s", what, r.status, r.err);
	cr_assert(strstr(r.err, names), "--restore %s names %s: %s", what, names, r.err);
	cr_assert_eq(tree_hash(dir), before, "--restore %s left %s alone", what, dir);
}

Test(cli, restore_latest_resumes_and_bad_restores_exit_2, .timeout = 120)
{
	char dir[] = "/tmp/sl-cli-rs-XXXXXX", job[300], other[300], emptyjob[300];
	char ck[300], empty[300], vdir[300], vchk[400], meta[500], stats[300], cmd[1000];
	struct sl_snap_metadata *m = NULL;
	struct sl_snap_err err;
	uint64_t id, next;
	struct run r;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(job, sizeof(job), "%s/job.yaml", dir);
	snprintf(other, sizeof(other), "%s/other.yaml", dir);
	snprintf(emptyjob, sizeof(emptyjob), "%s/empty.yaml", dir);
	snprintf(ck, sizeof(ck), "%s/ck", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	snprintf(vdir, sizeof(vdir), "%s/v", dir);
	snprintf(stats, sizeof(stats), "%s/stats.json", dir);
	cr_assert_eq(mkdir(empty, 0755), 0);
	write_restore_job(job, "resumable", ck);
	write_restore_job(other, "other", ck);
	write_restore_job(emptyjob, "resumable", empty);

	/* stopped (SIGINT) once a checkpoint completed, mid-stream */
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl(SLUICE, SLUICE, "run", job, "-q", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 6000; i++) {
		uint64_t *ids = NULL;
		size_t n = 0;
		bool have = sl_snap_chk_list(ck, &ids, &n, &err) == 0 && n > 0;

		free(ids);
		if (have)
			break;
		usleep(10000);
	}
	kill(pid, SIGINT);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "first run: status %d", st);
	cr_assert_eq(sl_snap_chk_latest(ck, &id, &m, &err), 0, "%s", err.msg);
	memcpy(&next, sl_snap_meta_find(m, "gen")->subtasks[0].blobs[0].data, 8);
	sl_snap_meta_free(m);
	cr_assert(next > 0 && next < 600000, "a checkpoint in mid-stream (%" PRIu64 ")", next);

	/* bad input: status 2, the path named, nothing changed */
	cli_refused(job, "/nonexistent/chk-1", "/nonexistent/chk-1", ck);
	cli_refused(job, ck, "checkpoint root", ck);
	cli_refused(job, empty, "not a checkpoint", ck);
	cli_refused(job, job, "not a directory", ck);
	cli_refused(other, "latest", "of job 'resumable', not of job 'other'", ck);
	cli_refused(emptyjob, "latest", "holds no checkpoint", empty);
	/* another format version: a copy with its version rewritten */
	cr_assert_eq(mkdir(vdir, 0755), 0);
	snprintf(cmd, sizeof(cmd), "cp -a '%s/chk-%" PRIu64 "' '%s/'", ck, id, vdir);
	cr_assert_eq(system(cmd), 0);
	snprintf(vchk, sizeof(vchk), "%s/chk-%" PRIu64, vdir, id);
	snprintf(meta, sizeof(meta), "%s/_metadata", vchk);
	{
		FILE *f = fopen(meta, "r+b");
		uint8_t buf[1 << 16];
		size_t len = fread(buf, 1, sizeof(buf), f);
		uint32_t v = 7;
		uint64_t body, h;

		memcpy(buf + 8, &v, 4);
		h = XXH3_64bits(buf, 24);
		memcpy(buf + 24, &h, 8);
		memcpy(&body, buf + 16, 8);
		h = XXH3_64bits(buf, 40 + body);
		memcpy(buf + 40 + body, &h, 8);
		rewind(f);
		cr_assert_eq(fwrite(buf, 1, len, f), len);
		fclose(f);
	}
	cli_refused(job, vchk, "another version of sluice", vdir);

	/* --check with --restore says which checkpoint, runs nothing */
	run_sluice(&r, 0, (const char *[]){ "run", job, "--check", "--restore", "latest", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	char line[64];
	snprintf(line, sizeof(line), "restores from checkpoint %" PRIu64, id);
	cr_assert(strstr(r.out, line), "%s", r.out);

	/* the restored run emits exactly the rest of the stream */
	run_sluice(&r, 0, (const char *[]){ "run", job, "-q", "--restore", "latest",
					    "-s", stats, NULL });
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "restoring from"), "%s", r.err);
	json_error_t je;
	json_t *js = json_load_file(stats, 0, &je);
	cr_assert_not_null(js, "%s", je.text);
	json_t *tasks = json_object_get(js, "subtasks");
	long emitted = -1;
	for (size_t i = 0; i < json_array_size(tasks); i++) {
		json_t *t = json_array_get(tasks, i);
		if (strcmp(json_string_value(json_object_get(t, "uid")), "gen") == 0)
			emitted = (long)json_integer_value(json_object_get(t, "records_out"));
	}
	json_decref(js);
	cr_assert_eq((uint64_t)emitted, 600000 - next,
		     "the generator resumed at %" PRIu64 " (emitted %ld)", next, emitted);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}
