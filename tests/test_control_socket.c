/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket: who may own its path (owner-only modes, one live
 * job per path, stale sockets replaced, unsafe directories refused), the
 * line protocol (pipelined, half-closed, too long, too many clients, other
 * users refused), the client's errors, and a running job answering
 * `checkpoints` with plausible figures.  The command line's side is in
 * tests/test_cli.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>

#include "eal_fixture.h"
#include "rm_tree.h"
#include "sluice/control_socket.h"
#include "sluice/job.h"
#include "sluice/operators.h"

#define NOBODY 65534

/* ------------------------------------------------------------ helpers */

static char *tmpdir(void)
{
	char *d = strdup("/tmp/sl-ctl-XXXXXX");

	cr_assert_not_null(mkdtemp(d));
	return d;
}

static int echo(void *ctx, const char *request, char **response)
{
	atomic_int *calls = ctx;
	json_t *j = json_pack("{s:b, s:s}", "ok", 1, "echo", request);

	if (calls != NULL)
		atomic_fetch_add(calls, 1);
	*response = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return 0;
}

/* A server polled by a thread, as the main lcore would. */
struct served {
	struct sl_ctl_server *s;
	pthread_t th;
	atomic_bool stop;
};

static void *poller(void *arg)
{
	struct served *sv = arg;

	while (!atomic_load(&sv->stop)) {
		sl_ctl_server_poll(sv->s);
		usleep(200);
	}
	return NULL;
}

static void serve(struct served *sv, struct sl_ctl_server *s)
{
	sv->s = s;
	atomic_store(&sv->stop, false);
	cr_assert_eq(pthread_create(&sv->th, NULL, poller, sv), 0);
}

static void unserve(struct served *sv)
{
	atomic_store(&sv->stop, true);
	pthread_join(sv->th, NULL);
	sl_ctl_server_close(sv->s);
}

static struct sl_ctl_server *open_ok(const char *path, void *ctx)
{
	char err[512] = "";
	struct sl_ctl_server *s = sl_ctl_server_open(path, echo, ctx, err, sizeof(err));

	cr_assert_not_null(s, "open %s: %s", path, err);
	return s;
}

static json_t *ask(const char *path, const char *request)
{
	char err[512] = "", *answer = NULL;
	json_error_t je;
	json_t *j;

	cr_assert_eq(sl_ctl_request(path, request, 5000, &answer, err, sizeof(err)), 0,
		     "%s", err);
	j = json_loads(answer, 0, &je);
	cr_assert_not_null(j, "answer is JSON: %s (%s)", je.text, answer);
	free(answer);
	return j;
}

static int raw_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	return fd;
}

/* Read n lines (or until EOF) into buf; returns the lines read. */
static int read_lines(int fd, char *buf, size_t len, int n)
{
	size_t got = 0;
	int lines = 0;

	while (lines < n && got + 1 < len) {
		ssize_t k = recv(fd, buf + got, 1, 0);
		if (k <= 0)
			break;
		if (buf[got++] == '\n')
			lines++;
	}
	buf[got] = '\0';
	return lines;
}

/* A socket file nobody listens on, as a killed job leaves it. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	close(fd);
}

/* ------------------------------------------------------------ ownership */

Test(ctl_server, owner_only_modes_and_removed_at_close, .timeout = 30)
{
	char *d = tmpdir(), path[256], lock[300], sub[128];
	struct served sv;
	struct stat st;
	atomic_int calls = 0;

	/* missing directories are created, owner-only */
	snprintf(sub, sizeof(sub), "%s/a/b", d);
	snprintf(path, sizeof(path), "%s/job.sock", sub);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	serve(&sv, open_ok(path, &calls));
	cr_assert_str_eq(sl_ctl_server_path(sv.s), path);
	cr_assert_eq(stat(sub, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700, "directory mode %o", st.st_mode & 0777);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "socket mode %o", st.st_mode & 0777);
	cr_assert_eq(stat(lock, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);

	json_t *j = ask(path, "ping");
	cr_assert(json_is_true(json_object_get(j, "ok")));
	cr_assert_str_eq(json_string_value(json_object_get(j, "echo")), "ping");
	json_decref(j);
	cr_assert_eq(atomic_load(&calls), 1);

	unserve(&sv);
	cr_assert_eq(lstat(path, &st), -1, "the socket is removed at close");
	cr_assert_eq(lstat(lock, &st), -1, "the lock file is removed at close");
	rm_tree(d);
	free(d);
}

Test(ctl_server, second_server_on_a_live_path_is_refused, .timeout = 30)
{
	char *d = tmpdir(), path[256], err[512] = "", pid[32];
	struct served sv;

	snprintf(path, sizeof(path), "%s/job.sock", d);
	serve(&sv, open_ok(path, NULL));
	errno = 0;
	cr_assert_null(sl_ctl_server_open(path, echo, NULL, err, sizeof(err)));
	cr_assert_eq(errno, EADDRINUSE);
	cr_assert(strstr(err, path), "names the path: %s", err);
	snprintf(pid, sizeof(pid), "pid %d", getpid());
	cr_assert(strstr(err, pid), "names the owner's pid: %s", err);
	/* the refused one left the live one alone */
	json_t *j = ask(path, "still there");
	cr_assert(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	unserve(&sv);
	rm_tree(d);
	free(d);
}

Test(ctl_server, socket_of_a_killed_job_is_replaced, .timeout = 30)
{
	char *d = tmpdir(), path[256], lock[300];
	struct served sv;
	struct stat st;
	int status;

	snprintf(path, sizeof(path), "%s/job.sock", d);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[512];
		if (sl_ctl_server_open(path, echo, NULL, err, sizeof(err)) == NULL)
			_exit(1);
		raise(SIGKILL); /* dies holding socket and lock */
		_exit(2);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "the child died by SIGKILL (status %d)", status);
	cr_assert_eq(lstat(path, &st), 0, "the dead job left its socket");
	cr_assert_eq(lstat(lock, &st), 0, "and its lock file");

	serve(&sv, open_ok(path, NULL));
	json_t *j = ask(path, "ping");
	cr_assert(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	unserve(&sv);

	/* a stale socket without any lock file is replaced too */
	make_stale_socket(path);
	serve(&sv, open_ok(path, NULL));
	j = ask(path, "ping");
	cr_assert(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	unserve(&sv);
	rm_tree(d);
	free(d);
}

Test(ctl_server, bad_paths_are_refused_with_reasons, .timeout = 30)
{
	char *d = tmpdir(), path[256], dir[128], err[512], longp[200];
	struct stat st;
	FILE *f;

	/* a regular file at the path is never removed */
	snprintf(path, sizeof(path), "%s/notes.sock", d);
	f = fopen(path, "w");
	fputs("mine", f);
	fclose(f);
	cr_assert_null(sl_ctl_server_open(path, echo, NULL, err, sizeof(err)));
	cr_assert_eq(errno, EEXIST);
	cr_assert(strstr(err, "is not a socket"), "%s", err);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 4);

	/* a directory others may write to */
	snprintf(dir, sizeof(dir), "%s/open", d);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	snprintf(path, sizeof(path), "%s/job.sock", dir);
	cr_assert_null(sl_ctl_server_open(path, echo, NULL, err, sizeof(err)));
	cr_assert_eq(errno, EPERM);
	cr_assert(strstr(err, "writable by other users") && strstr(err, dir), "%s", err);

	/* ... unless sticky, as /tmp */
	cr_assert_eq(chmod(dir, 01777), 0);
	struct sl_ctl_server *s = open_ok(path, NULL);
	sl_ctl_server_close(s);

	/* a directory of another user (needs root to make one) */
	if (geteuid() == 0) {
		snprintf(dir, sizeof(dir), "%s/theirs", d);
		cr_assert_eq(mkdir(dir, 0700), 0);
		cr_assert_eq(chown(dir, NOBODY, NOBODY), 0);
		snprintf(path, sizeof(path), "%s/job.sock", dir);
		cr_assert_null(sl_ctl_server_open(path, echo, NULL, err, sizeof(err)));
		cr_assert_eq(errno, EPERM);
		cr_assert(strstr(err, "belongs to uid 65534"), "%s", err);
	}

	/* longer than a socket address holds */
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	cr_assert_null(sl_ctl_server_open(longp, echo, NULL, err, sizeof(err)));
	cr_assert_eq(errno, ENAMETOOLONG);
	cr_assert(strstr(err, "shorter"), "%s", err);
	rm_tree(d);
	free(d);
}

Test(ctl_server, default_paths, .timeout = 10)
{
	char p[SL_CTL_PATH_MAX], big[200];

	setenv("SLUICE_RUNTIME_DIR", "/x/run", 1);
	cr_assert_eq(sl_ctl_default_path("demo", p, sizeof(p)), 0);
	cr_assert_str_eq(p, "/x/run/demo.sock");
	cr_assert_eq(sl_ctl_default_path("a/b c", p, sizeof(p)), 0);
	cr_assert_str_eq(p, "/x/run/a_b_c.sock", "one safe path component");
	cr_assert_eq(sl_ctl_default_path("..", p, sizeof(p)), 0);
	cr_assert_str_eq(p, "/x/run/_..sock");
	memset(big, 'j', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(sl_ctl_default_path(big, p, sizeof(p)), -ENAMETOOLONG);

	unsetenv("SLUICE_RUNTIME_DIR");
	cr_assert_eq(sl_ctl_default_dir(p, sizeof(p)), 0);
	if (geteuid() == 0) {
		cr_assert_str_eq(p, "/run/sluice");
	} else {
		setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
		cr_assert_eq(sl_ctl_default_dir(p, sizeof(p)), 0);
		cr_assert_str_eq(p, "/run/user/1000/sluice");
	}
}

/* ------------------------------------------------------------ protocol */

Test(ctl_server, pipelined_half_closed_and_too_long_requests, .timeout = 30)
{
	char *d = tmpdir(), path[256], buf[4096], line[600];
	struct served sv;
	int fd;

	snprintf(path, sizeof(path), "%s/job.sock", d);
	serve(&sv, open_ok(path, NULL));

	/* several requests at once, CRLF, an empty line; then half-close */
	fd = raw_connect(path);
	const char *reqs = "one\r\n\ntwo\nthree\n";
	cr_assert_eq(send(fd, reqs, strlen(reqs), 0), (ssize_t)strlen(reqs));
	shutdown(fd, SHUT_WR);
	cr_assert_eq(read_lines(fd, buf, sizeof(buf), 10), 3, "%s", buf);
	cr_assert_str_eq(buf, "{\"ok\":true,\"echo\":\"one\"}\n"
			      "{\"ok\":true,\"echo\":\"two\"}\n"
			      "{\"ok\":true,\"echo\":\"three\"}\n");
	close(fd);

	/* a line too long gets an error, then the connection closes */
	fd = raw_connect(path);
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	cr_assert_eq(send(fd, line, sizeof(line), MSG_NOSIGNAL), (ssize_t)sizeof(line));
	cr_assert_eq(read_lines(fd, buf, sizeof(buf), 2), 1);
	cr_assert(strstr(buf, "\"ok\":false") && strstr(buf, "too long"), "%s", buf);
	cr_assert_eq(recv(fd, buf, 1, 0), 0, "closed after the error");
	close(fd);

	/* beyond SL_CTL_CLIENTS connections: told so, and closed */
	int fds[SL_CTL_CLIENTS];
	for (int i = 0; i < SL_CTL_CLIENTS; i++)
		fds[i] = raw_connect(path);
	usleep(50000); /* let the poller take them */
	fd = raw_connect(path);
	cr_assert_eq(read_lines(fd, buf, sizeof(buf), 2), 1);
	cr_assert(strstr(buf, "busy"), "%s", buf);
	close(fd);
	/* the connected ones are still served */
	cr_assert_eq(send(fds[0], "x\n", 2, 0), 2);
	cr_assert_eq(read_lines(fds[0], buf, sizeof(buf), 1), 1);
	cr_assert_str_eq(buf, "{\"ok\":true,\"echo\":\"x\"}\n");
	for (int i = 0; i < SL_CTL_CLIENTS; i++)
		close(fds[i]);
	unserve(&sv);
	rm_tree(d);
	free(d);
}

Test(ctl_server, client_errors_name_the_path, .timeout = 30)
{
	char *d = tmpdir(), path[256], err[512], *answer = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/none.sock", d);
	cr_assert_eq(sl_ctl_request(path, "ping", 1000, &answer, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, path) && strstr(err, "no job is running"), "%s", err);

	snprintf(path, sizeof(path), "%s/file.sock", d);
	f = fopen(path, "w");
	fclose(f);
	cr_assert_eq(sl_ctl_request(path, "ping", 1000, &answer, err, sizeof(err)),
		     -ENOTSOCK);
	cr_assert(strstr(err, "not a socket"), "%s", err);

	snprintf(path, sizeof(path), "%s/stale.sock", d);
	make_stale_socket(path);
	cr_assert_eq(sl_ctl_request(path, "ping", 1000, &answer, err, sizeof(err)),
		     -ECONNREFUSED);
	cr_assert(strstr(err, "no job is listening") && strstr(err, path), "%s", err);

	/* a server that is never polled: it does not answer */
	snprintf(path, sizeof(path), "%s/mute.sock", d);
	struct sl_ctl_server *s = open_ok(path, NULL);
	cr_assert_eq(sl_ctl_request(path, "ping", 300, &answer, err, sizeof(err)),
		     -ETIMEDOUT);
	cr_assert(strstr(err, "did not answer within 300 ms"), "%s", err);
	cr_assert_null(answer);
	sl_ctl_server_close(s);
	rm_tree(d);
	free(d);
}

/* Other users: kept out by the modes, and refused by uid when root asks. */
Test(ctl_server, other_users_are_refused, .timeout = 30)
{
	char *d, path[256], buf[1024];
	struct served sv;
	int status, pipefd[2];

	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	d = tmpdir();

	/* a non-root user's client cannot reach root's job */
	snprintf(path, sizeof(path), "%s/run/job.sock", d);
	cr_assert_eq(chmod(d, 0755), 0);
	serve(&sv, open_ok(path, NULL));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[512], *answer;
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(3);
		int rc = sl_ctl_request(path, "ping", 2000, &answer, err, sizeof(err));
		_exit(rc == -EACCES && strstr(err, "another user") ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the other user's client got EACCES (status %d)", status);
	unserve(&sv);

	/* root asking another user's job is refused by the peer's uid */
	cr_assert_eq(pipe(pipefd), 0);
	snprintf(path, sizeof(path), "%s/nobody/job.sock", d);
	snprintf(buf, sizeof(buf), "%s/nobody", d);
	cr_assert_eq(mkdir(buf, 0700), 0);
	cr_assert_eq(chown(buf, NOBODY, NOBODY), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[512];
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(3);
		struct sl_ctl_server *s = sl_ctl_server_open(path, echo, NULL, err, sizeof(err));
		if (s == NULL)
			_exit(4);
		(void)!write(pipefd[1], "r", 1);
		for (int i = 0; i < 20000; i++) { /* up to ~4 s */
			sl_ctl_server_poll(s);
			usleep(200);
		}
		sl_ctl_server_close(s);
		_exit(0);
	}
	cr_assert_eq(read(pipefd[0], buf, 1), 1, "the other user's server is up");
	int fd = raw_connect(path); /* root passes the modes */
	cr_assert_eq(read_lines(fd, buf, sizeof(buf), 2), 1);
	cr_assert(strstr(buf, "\"ok\":false") && strstr(buf, "permission denied") &&
			  strstr(buf, "uid 65534"),
		  "%s", buf);
	cr_assert_eq(recv(fd, buf, 1, 0), 0, "and disconnected");
	close(fd);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	rm_tree(d);
	free(d);
}

/* ------------------------------------------------------------ a running job */

struct watch {
	struct sl_job *job;
	const char *path;
	enum sl_ckpt_mode mode;
	json_t *doc;	 /* the last `checkpoints subtasks` answer */
	mode_t sock_mode;
	char refused[512]; /* what a second server on the path was told */
	double rtt_min_us, rtt_max_us;
	size_t answer_bytes;
};

static unsigned completed(const json_t *doc)
{
	return (unsigned)json_integer_value(json_object_get(json_object_get(doc, "counts"),
							    "completed"));
}

/* Ask until three checkpoints completed, then stop the job. */
static void *watch_job(void *arg)
{
	struct watch *w = arg;
	struct stat st;

	for (int i = 0; i < 3000; i++) {
		char err[512], *answer = NULL;
		if (sl_ctl_request(w->path, "checkpoints subtasks", 5000, &answer, err,
				   sizeof(err)) == 0) {
			json_decref(w->doc);
			w->doc = json_loads(answer, 0, NULL);
			free(answer);
			if (w->doc != NULL && completed(w->doc) >= 3)
				break;
		}
		usleep(10000);
	}
	/* round trips of the full document (they include the wait for the
	 * main lcore's next poll, at most 1 ms apart): figures only */
	w->rtt_min_us = 1e9;
	for (int i = 0; i < 20; i++) {
		char err[512], *answer = NULL;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (sl_ctl_request(w->path, "checkpoints subtasks", 5000, &answer, err,
				   sizeof(err)) < 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double us = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
		w->rtt_min_us = us < w->rtt_min_us ? us : w->rtt_min_us;
		w->rtt_max_us = us > w->rtt_max_us ? us : w->rtt_max_us;
		w->answer_bytes = strlen(answer);
		free(answer);
	}
	if (lstat(w->path, &st) == 0)
		w->sock_mode = st.st_mode;
	if (sl_ctl_server_open(w->path, echo, NULL, w->refused, sizeof(w->refused)) != NULL)
		snprintf(w->refused, sizeof(w->refused), "(not refused)");
	sl_job_stop(w->job, false, false);
	return NULL;
}

static int64_t num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "%s is an integer", key);
	return json_integer_value(v);
}

static void run_watched(enum sl_ckpt_mode mode, const char *want_mode)
{
	char *d = tmpdir(), path[256];
	struct sl_job_config cfg;
	struct sl_generator_conf g;
	struct sl_keyed_aggregate_conf agg = { .key = "key", .n_aggs = 1,
		.aggs = { { .fn = SL_AGG_COUNT, .as = "count" } } };
	struct sl_count_sink_conf sink = { 0 };
	struct watch w = { .path = path, .mode = mode };
	struct stat st;
	pthread_t th;

	sl_test_eal("(0-2)@(0-1)", NULL);
	sl_job_config_defaults(&cfg);
	cfg.checkpoint.interval_ms = 100;
	cfg.checkpoint.mode = mode;
	cfg.checkpoint.aligned_timeout_ms = 50;
	snprintf(cfg.checkpoint.dir, sizeof(cfg.checkpoint.dir), "%s/chk", d);
	snprintf(path, sizeof(path), "%s/run/job.sock", d);
	cr_assert_lt(strlen(path), sizeof(cfg.control_socket));
	memcpy(cfg.control_socket, path, strlen(path) + 1);
	sl_generator_conf_defaults(&g);
	sl_schema_add(&g.schema, "key", SL_TYPE_U64, 0);
	sl_schema_add(&g.schema, "value", SL_TYPE_U64, 0);
	g.count = 0; /* until stopped */
	g.rate = 200000;
	g.key_cardinality = 5000;

	w.job = sl_job_create("watched", &cfg);
	int gi = sl_job_add(w.job, "gen", &sl_op_generator, &g, 2);
	int ci = sl_job_add(w.job, "count", &sl_op_keyed_aggregate, &agg, 2);
	int si = sl_job_add(w.job, "sink", &sl_op_count_sink, &sink, 1);
	cr_assert(gi >= 0 && ci >= 0 && si >= 0, "%s", sl_job_error(w.job));
	cr_assert_eq(sl_job_connect(w.job, gi, ci, SL_PART_HASH, "key"), 0);
	cr_assert_eq(sl_job_connect(w.job, ci, si, SL_PART_REBALANCE, NULL), 0);
	cr_assert_eq(pthread_create(&th, NULL, watch_job, &w), 0);
	int rc = sl_job_run(w.job);
	pthread_join(th, NULL);
	cr_assert_eq(rc, 0, "%s", sl_job_error(w.job));
	cr_assert_eq(lstat(path, &st), -1, "the socket is gone after the job");

	cr_assert(S_ISSOCK(w.sock_mode) && (w.sock_mode & 0777) == 0600,
		  "socket mode %o while running", w.sock_mode & 0777);
	cr_assert(strstr(w.refused, "control socket of a running job"),
		  "a second server was refused: %s", w.refused);

	json_t *doc = w.doc;
	cr_assert_not_null(doc, "the job answered");
	cr_assert(json_is_true(json_object_get(doc, "ok")));
	cr_assert_str_eq(json_string_value(json_object_get(doc, "job")), "watched");
	cr_assert_eq(num(doc, "pid"), getpid());
	cr_assert(json_is_true(json_object_get(doc, "checkpointing")));
	cr_assert_eq(num(doc, "subtasks"), 5);
	cr_assert_geq(completed(doc), 3);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "config"), "mode")),
			 sl_ckpt_mode_name(mode));

	json_t *list = json_object_get(doc, "checkpoints");
	int64_t latest = num(doc, "latest_completed"), newest_completed = 0, prev_id = INT64_MAX;
	unsigned seen = 0;
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *ck = json_array_get(list, i);
		int64_t id = num(ck, "id");
		cr_assert_lt(id, prev_id, "newest first");
		prev_id = id;
		if (strcmp(json_string_value(json_object_get(ck, "status")), "completed") != 0)
			continue;
		if (newest_completed == 0)
			newest_completed = id;
		seen++;
		cr_assert_str_eq(json_string_value(json_object_get(ck, "mode")), want_mode,
				 "checkpoint %ld", (long)id);
		cr_assert(json_is_null(json_object_get(ck, "failure_reason")));
		cr_assert_eq(num(ck, "acknowledged"), 5);
		cr_assert_gt(num(ck, "duration_ns"), 0);
		cr_assert_lt(num(ck, "duration_ns"), 60LL * 1000000000, "under a minute");
		cr_assert_gt(num(ck, "trigger_unix_ns"), 1600000000LL * 1000000000);
		cr_assert_eq(strlen(json_string_value(json_object_get(ck, "trigger_time"))),
			     strlen("2024-01-01T00:00:00.000000Z"));
		cr_assert_gt(num(ck, "state_bytes"), 0);
		cr_assert_geq(num(ck, "full_state_bytes"), num(ck, "state_bytes") / 4);
		cr_assert_gt(num(ck, "max_sync_ns"), 0);
		cr_assert_gt(num(ck, "max_async_ns"), 0);
		cr_assert_gt(num(ck, "max_start_delay_ns"), 0);
		cr_assert_leq(num(ck, "max_start_delay_ns"), num(ck, "duration_ns"));

		json_t *subs = json_object_get(ck, "subtasks");
		cr_assert_eq(json_array_size(subs), 5);
		for (size_t s = 0; s < 5; s++) {
			json_t *st = json_array_get(subs, s);
			const char *op = json_string_value(json_object_get(st, "operator"));
			cr_assert_str_eq(json_string_value(json_object_get(st, "status")),
					 "acknowledged");
			cr_assert_str_eq(json_string_value(json_object_get(st, "mode")), want_mode);
			cr_assert_gt(num(st, "sync_ns"), 0, "%s sync", op);
			cr_assert_gt(num(st, "async_ns"), 0, "%s async", op);
			cr_assert_leq(num(st, "start_delay_ns"), num(ck, "duration_ns"));
			if (strcmp(op, "count") == 0) {
				cr_assert_gt(num(st, "state_bytes"), 0, "keyed state written");
				cr_assert_gt(num(st, "full_state_bytes"), 0);
			} else {
				/* operator state only: a source offset, a sink's count */
				cr_assert_lt(num(st, "state_bytes"), 1024,
					     "%s has no keyed state", op);
			}
			if (strcmp(op, "sink") == 0)
				cr_assert_gt(num(st, "start_delay_ns"), 0,
					     "the barrier takes time to reach the sink");
		}
	}
	cr_assert_geq(seen, 3);
	cr_assert_eq(latest, newest_completed, "latest_completed is the newest completed one");
	json_t *ck = json_array_get(list, 0);
	fprintf(stderr, "control socket, %s: %u completed checkpoints in the answer; newest: id %lld %s, %.2f ms, state %lld B of %lld B, max sync %.1f us, max async %.2f ms, max start delay %.2f ms\n",
		want_mode, seen, (long long)num(ck, "id"),
		json_string_value(json_object_get(ck, "status")), num(ck, "duration_ns") / 1e6,
		(long long)num(ck, "state_bytes"), (long long)num(ck, "full_state_bytes"),
		num(ck, "max_sync_ns") / 1e3, num(ck, "max_async_ns") / 1e6,
		num(ck, "max_start_delay_ns") / 1e6);
	fprintf(stderr, "control socket, %s: 'checkpoints subtasks' (%zu bytes) round trip %.0f..%.0f us over 20 requests\n",
		want_mode, w.answer_bytes, w.rtt_min_us, w.rtt_max_us);
	json_decref(doc);
	sl_job_free(w.job);
	sl_test_eal_fini();
	rm_tree(d);
	free(d);
}

Test(ctl_job, aligned_checkpoints_answered, .timeout = 120)
{
	run_watched(SL_CKPT_ALIGNED, "aligned");
}

Test(ctl_job, unaligned_checkpoints_answered, .timeout = 120)
{
	run_watched(SL_CKPT_UNALIGNED, "unaligned");
}
