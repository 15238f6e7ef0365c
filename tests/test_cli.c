/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sluice command line as a user meets it: help and version, exit
 * statuses and messages for bad input, a clean stop on SIGINT that
 * drains in-flight records and publishes the sink's file, and
 * `sluice checkpoints` talking to a running job.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/stat.h>

#include "sluice/snapshot.h"

#include "sluice/control_socket.h"

#include "meta_edit.h"
#include "tree_hash.h"

#define SLUICE SL_BUILD_ROOT "/sluice"

struct run {
	int status; /* exit status, or 128 + signal */
	char out[131072];
	char err[16384];
	/* while it runs */
	pid_t pid;
	int fo, fe;
	char out_path[32], err_path[32];
};

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = '\0';
	if (f)
		fclose(f);
}

/* Start sluice with args, its output going to temporary files. */
static void start_sluice(struct run *r, const char *const *args)
{
	const char *argv[32] = { SLUICE };
	unsigned n = 1;

	snprintf(r->out_path, sizeof(r->out_path), "/tmp/sl-cli-out-XXXXXX");
	snprintf(r->err_path, sizeof(r->err_path), "/tmp/sl-cli-err-XXXXXX");
	r->fo = mkstemp(r->out_path);
	r->fe = mkstemp(r->err_path);
	cr_assert(r->fo >= 0 && r->fe >= 0);
	for (; args[n - 1] != NULL; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	r->pid = fork();
	cr_assert_geq(r->pid, 0);
	if (r->pid == 0) {
		dup2(r->fo, 1);
		dup2(r->fe, 2);
		execv(SLUICE, (char *const *)argv);
		_exit(127);
	}
}

/* Wait for it to end; collect its status and output. */
static void wait_sluice(struct run *r)
{
	int st;

	cr_assert_eq(waitpid(r->pid, &st, 0), r->pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	slurp(r->out_path, r->out, sizeof(r->out));
	slurp(r->err_path, r->err, sizeof(r->err));
	close(r->fo);
	close(r->fe);
	unlink(r->out_path);
	unlink(r->err_path);
}

/* Run sluice with args; if sigint_after_ms > 0, send SIGINT then. */
static void run_sluice(struct run *r, int sigint_after_ms, const char *const *args)
{
	start_sluice(r, args);
	if (sigint_after_ms > 0) {
		usleep((useconds_t)sigint_after_ms * 1000);
		kill(r->pid, SIGINT);
	}
	wait_sluice(r);
}

Test(cli, help_and_version, .timeout = 30)
{
	struct run r;

	run_sluice(&r, 0, (const char *[]){ "--help", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "sluice run JOB.yaml"), "%s", r.out);
	run_sluice(&r, 0, (const char *[]){ "run", "--help", NULL });
	cr_assert_eq(r.status, 0);
	for (const char *opt = "--check\0--progress\0--quiet\0--stats-json\0--control-socket\0"
			       "--restore\0";
	     *opt; opt += strlen(opt) + 1)
		cr_assert(strstr(r.out, opt), "run --help lists %s", opt);
	run_sluice(&r, 0, (const char *[]){ "checkpoints", "--help", NULL });
	cr_assert_eq(r.status, 0);
	for (const char *opt = "--socket\0--json\0--subtasks\0"; *opt; opt += strlen(opt) + 1)
		cr_assert(strstr(r.out, opt), "checkpoints --help lists %s", opt);
	run_sluice(&r, 0, (const char *[]){ "checkpoints", "a.yaml", "b.yaml", NULL });
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "name one job"), "%s", r.err);
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

	/* SIGINT once the job runs (its control socket exists), however
	 * slowly a loaded machine starts it */
	char sock[4200];
	snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
	start_sluice(&r, (const char *[]){ "run", job, "-q", "-s", stats, "--control-socket",
					   sock, NULL });
	for (int i = 0; i < 6000 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	usleep(500000);
	kill(r.pid, SIGINT);
	wait_sluice(&r);
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
	/* at 200k/s for 1.5 s; a loaded machine starts slowly, so only ask
	 * that the stream was running when the signal came */
	cr_assert_gt(emitted, 1000, "the generator was running when SIGINT came (%ld)", emitted);
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

static long completed_in(const char *json_text)
{
	json_t *j = json_loads(json_text, 0, NULL);
	long n = -1;

	if (j != NULL)
		n = (long)json_integer_value(json_object_get(json_object_get(j, "counts"),
							     "completed"));
	json_decref(j);
	return n;
}

Test(cli, checkpoints_of_a_running_job, .timeout = 120)
{
	char dir[] = "/tmp/sl-cli-ck-XXXXXX", job[64], rt[64], sock[96], other[64];
	char prefix[64], pid[32];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static struct run jr, r;
	struct stat st;
	FILE *f;
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(job, sizeof(job), "%s/job.yaml", dir);
	snprintf(rt, sizeof(rt), "%s/rt", dir);
	snprintf(sock, sizeof(sock), "%s/cpjob.sock", rt);
	/* the default directory of this test, inherited by the commands */
	setenv("SLUICE_RUNTIME_DIR", rt, 1);
	f = fopen(job, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"job: cpjob\n"
		"config:\n"
		"  execution.checkpointing.interval: 100ms\n"
		"  state.checkpoints.dir: %s/chk\n"
		"operators:\n"
		"  - {uid: gen, type: generator, parallelism: 2, count: 0, rate: 50000,\n"
		"     key-cardinality: 5000, schema: [{name: key, type: u64}, {name: v, type: u64}]}\n"
		"  - {uid: count, type: keyed-aggregate, parallelism: 2, key: key,\n"
		"     input: {from: gen, partition: hash, key: key},\n"
		"     aggregates: [{fn: count, as: count}]}\n"
		"  - {uid: out, type: null-sink, input: count}\n"
		"eal: [--no-huge, --no-pci, --no-telemetry, --log-level=lib.eal:error,\n"
		"      \"--lcores=(0-2)@(0-1)\", --file-prefix=slcick%d]\n",
		dir, getpid());
	fclose(f);

	/* a socket left by a job that was killed: the new job replaces it */
	cr_assert_eq(mkdir(rt, 0700), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);

	start_sluice(&jr, (const char *[]){ "run", job, "-q", NULL });
	/* wait in-process (cheap: the other tests of this suite run beside
	 * it), then ask with the command */
	long done = -1;
	for (int i = 0; i < 600 && done < 3; i++) {
		char err[512], *answer = NULL;
		usleep(50000);
		if (sl_ctl_request(sock, "checkpoints", 5000, &answer, err, sizeof(err)) == 0)
			done = completed_in(answer);
		free(answer);
	}
	cr_assert_geq(done, 3, "three checkpoints completed");
	run_sluice(&r, 0, (const char *[]){ "checkpoints", "--socket", sock, "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_geq(completed_in(r.out), 3, "%s", r.out);
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600, "mode %o",
		  st.st_mode & 0777);

	/* the JSON: plausible figures for the completed checkpoints */
	json_t *doc = json_loads(r.out, 0, NULL);
	json_t *list = json_object_get(doc, "checkpoints");
	unsigned checked = 0;
	cr_assert_str_eq(json_string_value(json_object_get(doc, "job")), "cpjob");
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *ck = json_array_get(list, i);
		if (strcmp(json_string_value(json_object_get(ck, "status")), "completed") != 0)
			continue;
		checked++;
		cr_assert_str_eq(json_string_value(json_object_get(ck, "mode")), "aligned");
		cr_assert_gt(json_integer_value(json_object_get(ck, "duration_ns")), 0);
		cr_assert_gt(json_integer_value(json_object_get(ck, "state_bytes")), 0);
		cr_assert_gt(json_integer_value(json_object_get(ck, "max_sync_ns")), 0);
		cr_assert_null(json_object_get(ck, "subtasks"), "only with --subtasks");
	}
	cr_assert_geq(checked, 3);
	json_decref(doc);

	/* the table, found by the job file and as the only job around */
	run_sluice(&r, 0, (const char *[]){ "checkpoints", job, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	for (const char *col = "ID\0STATUS\0TRIGGERED\0DURATION\0MODE\0ACKS\0STATE\0FULL STATE\0"
			       "IN-FLIGHT\0START DELAY\0ALIGNMENT\0SYNC\0ASYNC\0FAILURE\0";
	     *col; col += strlen(col) + 1)
		cr_assert(strstr(r.out, col), "the table has column %s:\n%s", col, r.out);
	cr_assert(strstr(r.out, "completed") && strstr(r.out, "aligned") &&
			  strstr(r.out, "5/5") && strstr(r.out, "KiB"),
		  "%s", r.out);
	run_sluice(&r, 0, (const char *[]){ "checkpoints", "--subtasks", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "count[1]") && strstr(r.out, "acknowledged"), "%s", r.out);

	/* a second job on the same socket is refused, naming the first */
	snprintf(prefix, sizeof(prefix), "--file-prefix=slcick2%d", getpid());
	run_sluice(&r, 0, (const char *[]){ "run", job, "-q", "--", prefix, NULL });
	cr_assert_eq(r.status, 1, "%s", r.err);
	snprintf(pid, sizeof(pid), "pid %d", jr.pid);
	cr_assert(strstr(r.err, sock) && strstr(r.err, "running job") && strstr(r.err, pid),
		  "%s", r.err);

	/* the socket disappears when the job ends */
	kill(jr.pid, SIGINT);
	wait_sluice(&jr);
	cr_assert_eq(jr.status, 0, "%s", jr.err);
	cr_assert_eq(lstat(sock, &st), -1, "the socket was removed at exit");
	run_sluice(&r, 0, (const char *[]){ "checkpoints", job, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "no job is running") && strstr(r.err, sock), "%s", r.err);

	/* sluice.control-socket in the job file is where both commands look */
	snprintf(other, sizeof(other), "%s/job2.yaml", dir);
	f = fopen(other, "w");
	fprintf(f, "job: two\nconfig: {sluice.control-socket: %s/elsewhere.sock}\n"
		   "operators: [{uid: g, type: generator, schema: [{name: k, type: u64}]},\n"
		   "            {uid: o, type: null-sink, input: g}]\n", dir);
	fclose(f);
	run_sluice(&r, 0, (const char *[]){ "checkpoints", other, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "elsewhere.sock"), "%s", r.err);

	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ------------------------------------------------------------- --restore */

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

	/* stopped once a checkpoint completed (however slowly a loaded
	 * machine starts the job) */
	start_sluice(&r, (const char *[]){ "run", job, "-q", NULL });
	for (int i = 0; i < 1200 && sl_snap_chk_latest(ck, &id, NULL, NULL) != 0; i++)
		usleep(50000);
	usleep(100000);
	kill(r.pid, SIGINT);
	wait_sluice(&r);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
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
	set_metadata_version(meta, 7);
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
