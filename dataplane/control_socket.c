/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket of a running job: who owns its path, a server the
 * main lcore polls without ever blocking, and the client side that
 * `sluice checkpoints` uses.
 *
 * Files
 *   PATH       the socket.  Default: <dir>/<job name>.sock, where <dir> is
 *              $SLUICE_RUNTIME_DIR if set, /run/sluice for root,
 *              $XDG_RUNTIME_DIR/sluice or else /tmp/sluice-<uid> for other
 *              users (sl_ctl_default_dir()); `sluice.control-socket` in
 *              the job file or `sluice run --control-socket` override it.
 *              Mode 0600.  Missing directories are created with mode 0700;
 *              a directory owned by another user (root excepted), or one
 *              others may write to without the sticky bit, is refused.
 *   PATH.lock  an empty file (0600) on which the job holds an exclusive
 *              flock(2) while it runs.  The kernel drops the lock when the
 *              process dies however it dies, so a job that gets the lock
 *              knows that a socket left at PATH is stale and replaces it;
 *              a job that does not get it refuses to start (the message
 *              names the pid of the owner).  Both files are removed when
 *              the job ends.
 *
 * Protocol (version 1)
 *   A client connects and sends requests, one per line: words separated by
 *   single spaces, at most SL_CTL_LINE_MAX (255) bytes, each ended by '\n'
 *   ('\r\n' is accepted; empty lines are ignored).  The server answers
 *   every request, in order, with exactly one JSON object on one line,
 *   ended by '\n'.  Every answer has "ok": true or false; a false one
 *   carries "error": "what went wrong; what to do".  Several requests may
 *   share a connection; a client may shut down its writing side after the
 *   last one and still gets the answers.  The server closes a connection
 *   after answering a line that is too long, after SL_CTL_IDLE_MS (10 s)
 *   without a request, and when the job ends.  Requests beyond
 *   SL_CTL_CLIENTS (8) simultaneous connections get
 *   {"ok":false,"error":...} and are closed.
 *
 *   Requests a job answers (dataplane/job_control.c):
 *     ping                  {"ok":true,"protocol":1,"job":NAME,"pid":PID}
 *     checkpoints           checkpoint statistics; the document is
 *                           specified in dataplane/checkpoint_stats.c
 *     checkpoints subtasks  the same with every subtask's figures
 *
 *   Only peers with the job's effective uid are served (SO_PEERCRED);
 *   others get {"ok":false,"error":"permission denied: ..."} and are
 *   disconnected at once.  The socket's mode already keeps other users
 *   out; the check stops root from talking to another user's job by
 *   accident.
 *
 * The server is polled from the main lcore's control loop: at most once a
 * millisecond one poll(2) with zero timeout tells which sockets are ready;
 * it accepts, reads and writes only what they allow at once, and answers
 * a connection's next request only after its previous answer went out, so
 * a client that does not read cannot make it buffer without bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sluice/control_socket.h"
#include "mono_clock_pvt.h"

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == SL_CTL_PATH_MAX,
	       "SL_CTL_PATH_MAX is the size of sun_path");

#define POLL_PERIOD_NS 1000000ULL
#define ANSWER_MAX (64u << 20) /* the client gives up on longer answers */

struct ctl_client {
	int fd;		     /* -1: free slot */
	bool eof;	     /* the peer shut down its writing side */
	bool close_after;    /* close once `out` is sent */
	size_t n_in;
	char in[SL_CTL_LINE_MAX + 2]; /* a line, '\r', '\n' */
	char *out;	     /* answer being sent */
	size_t out_len, out_off;
	uint64_t last_ns;    /* last request or progress */
};

struct sl_ctl_server {
	int fd;
	int lock_fd;
	uid_t uid;
	dev_t dev;	     /* the socket file we created */
	ino_t ino;
	sl_ctl_handler handler;
	void *ctx;
	uint64_t next_poll_ns;
	struct ctl_client cl[SL_CTL_CLIENTS];
	char path[SL_CTL_PATH_MAX];
	char lock_path[SL_CTL_PATH_MAX + 8];
};

/* Say what went wrong in err; return -e with errno = e. */
static int fail_msg(char *err, size_t errlen, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_msg(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = e;
	return -e;
}
#define FAIL(e, ...) fail_msg(err, errlen, (e), __VA_ARGS__)

/* ------------------------------------------------------------ paths */

int sl_ctl_default_dir(char *buf, size_t len)
{
	const char *own = getenv("SLUICE_RUNTIME_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (own != NULL && own[0] != '\0')
		n = snprintf(buf, len, "%s", own);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/sluice");
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/sluice", xdg);
	else
		n = snprintf(buf, len, "/tmp/sluice-%u", (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int sl_ctl_default_path(const char *job_name, char *buf, size_t len)
{
	char dir[SL_CTL_PATH_MAX];
	size_t at;
	int n;

	if (sl_ctl_default_dir(dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, len, "%s/%s.sock", dir, job_name);
	if (n < 0 || (size_t)n >= len || (size_t)n >= SL_CTL_PATH_MAX)
		return -ENAMETOOLONG;
	/* the name is one path component of safe characters */
	at = strlen(dir) + 1;
	for (size_t i = at; i < (size_t)n - strlen(".sock"); i++) {
		char c = buf[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			buf[i] = '_';
	}
	if (buf[at] == '.')
		buf[at] = '_'; /* no hidden files, no ".." */
	return 0;
}

/* Create the missing directories of `dir` (0700) and check the last one
 * is safe: ours or root's, and not writable by others unless sticky. */
static int ensure_dir(const char *dir, char *err, size_t errlen)
{
	char p[SL_CTL_PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		/* an existing directory may refuse mkdir with EACCES */
		if (mkdir(p, 0700) < 0 && errno != EEXIST &&
		    (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)))
			return FAIL(errno, "cannot create the directory %s for the control socket: %s; create it, or choose another path",
				    p, strerror(errno));
		*s = c;
		if (c == '\0')
			break;
	}
	if (stat(dir, &st) < 0)
		return FAIL(errno, "cannot use the directory %s for the control socket: %s",
			    dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return FAIL(ENOTDIR, "%s is not a directory; choose another control socket path",
			    dir);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return FAIL(EPERM, "the directory %s belongs to uid %u, not to you (uid %u), so another user could replace the control socket; remove it or choose another path",
			    dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return FAIL(EPERM, "the directory %s is writable by other users (mode %03o), so they could replace the control socket; run 'chmod 700 %s' or choose another path",
			    dir, (unsigned)(st.st_mode & 0777), dir);
	return 0;
}

static int connect_to(const char *path, int *fd_out)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*fd_out = fd;
	return 0;
}

/* pid of the server listening on `path`, or 0 */
static pid_t owner_pid(const char *path)
{
	struct ucred cr = { 0 };
	socklen_t l = sizeof(cr);
	int fd = -1;

	if (connect_to(path, &fd) < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		cr.pid = 0;
	close(fd);
	return cr.pid;
}

static int in_use(const char *path, char *err, size_t errlen)
{
	pid_t pid = owner_pid(path);

	if (pid > 0)
		return FAIL(EADDRINUSE, "%s is the control socket of a running job (pid %d); stop that job, or give this one another path",
			    path, (int)pid);
	return FAIL(EADDRINUSE, "%s belongs to a running job (its lock %s.lock is held); stop that job, or give this one another path",
		    path, path);
}

/* Lock PATH.lock for as long as the server lives. */
static int take_lock(struct sl_ctl_server *s, char *err, size_t errlen)
{
	for (int tries = 0; tries < 8; tries++) {
		struct stat a, b;
		int fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			      0600);

		if (fd < 0)
			return FAIL(errno, "cannot create the lock file %s: %s",
				    s->lock_path, strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				return in_use(s->path, err, errlen);
			return FAIL(e, "cannot lock %s: %s", s->lock_path, strerror(e));
		}
		/* the previous owner removes the file when it ends: if it did
		 * between our open and flock, we hold a lock on a dead file */
		if (fstat(fd, &a) == 0 && stat(s->lock_path, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			s->lock_fd = fd;
			return 0;
		}
		close(fd);
	}
	return FAIL(EAGAIN, "cannot lock %s: it keeps being replaced; is another job starting on the same control socket?",
		    s->lock_path);
}

/* ------------------------------------------------------------ server */

struct sl_ctl_server *sl_ctl_server_open(const char *path, sl_ctl_handler handler,
					 void *ctx, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct sl_ctl_server *s;
	char dir[SL_CTL_PATH_MAX];
	const char *slash;
	struct stat st;
	int e = 0, fd;

	if (path == NULL || path[0] == '\0' || strlen(path) >= SL_CTL_PATH_MAX) {
		FAIL(ENAMETOOLONG, "control socket path '%s' is %zu bytes long; a Unix socket path has 1..%d bytes: choose a shorter one",
		     path ? path : "", path ? strlen(path) : 0, SL_CTL_PATH_MAX - 1);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		FAIL(ENOMEM, "out of memory");
		return NULL;
	}
	s->fd = s->lock_fd = -1;
	for (unsigned i = 0; i < SL_CTL_CLIENTS; i++)
		s->cl[i].fd = -1;
	s->handler = handler;
	s->ctx = ctx;
	s->uid = geteuid();
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->lock_path, sizeof(s->lock_path), "%s.lock", path);

	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
			 (int)(slash == path ? 1 : slash - path), path);
	if ((e = ensure_dir(dir, err, errlen)) < 0 ||
	    (e = take_lock(s, err, errlen)) < 0)
		goto fail;

	/* we hold the lock: a socket at the path is stale, unless someone
	 * removed the lock file under a live job */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			e = FAIL(EEXIST, "%s exists and is not a socket; remove it, or choose another control socket path",
				 path);
			goto fail;
		}
		if (owner_pid(path) > 0) {
			e = in_use(path, err, errlen);
			goto fail;
		}
		unlink(path);
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = FAIL(errno, "cannot create a socket: %s", strerror(errno));
		goto fail;
	}
	s->fd = fd;
	/* Linux gives the socket file the mode of the socket's inode: set
	 * before bind(), the file never exists with a wider mode */
	fchmod(fd, 0600);
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		e = FAIL(errno, "cannot create the control socket %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0 ||
	    listen(fd, SL_CTL_CLIENTS) < 0) {
		e = FAIL(errno, "cannot listen on the control socket %s: %s", path,
			 strerror(errno));
		unlink(path);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return s;
fail:
	if (s->fd >= 0)
		close(s->fd);
	if (s->lock_fd >= 0) {
		unlink(s->lock_path);
		close(s->lock_fd);
	}
	free(s);
	errno = -e;
	return NULL;
}

const char *sl_ctl_server_path(const struct sl_ctl_server *s)
{
	return s->path;
}

static void drop(struct ctl_client *c)
{
	close(c->fd);
	free(c->out);
	*c = (struct ctl_client){ .fd = -1 };
}

/* Best effort, for a peer we refuse at once. */
static void refuse(int fd, const char *msg)
{
	char line[384];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", msg);

	if (n > 0 && (size_t)n < sizeof(line))
		(void)!send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static int accept_new(struct sl_ctl_server *s, uint64_t now)
{
	int work = 0;

	/* bounded, so a flood of connections cannot hold the main lcore */
	for (unsigned k = 0; k < 2 * SL_CTL_CLIENTS; k++) {
		struct ucred cr = { 0 };
		socklen_t l = sizeof(cr);
		char msg[256];
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned i;

		if (fd < 0)
			break;
		work++;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 ||
		    cr.uid != s->uid) {
			snprintf(msg, sizeof(msg),
				 "permission denied: this job runs as uid %u and answers only that user, the request came from uid %u; run the command as uid %u",
				 (unsigned)s->uid, (unsigned)cr.uid, (unsigned)s->uid);
			refuse(fd, msg);
			continue;
		}
		for (i = 0; i < SL_CTL_CLIENTS && s->cl[i].fd >= 0; i++)
			;
		if (i == SL_CTL_CLIENTS) {
			snprintf(msg, sizeof(msg),
				 "busy: %d connections are open already; close one or retry",
				 SL_CTL_CLIENTS);
			refuse(fd, msg);
			continue;
		}
		s->cl[i] = (struct ctl_client){ .fd = fd, .last_ns = now };
	}
	return work;
}

static void set_error(struct ctl_client *c, const char *msg)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}", msg);

	c->out = strndup(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	c->out_len = c->out ? strlen(c->out) : 0;
}

/* Answer the next complete line, if any.  Returns 1 if it answered. */
static int answer(struct sl_ctl_server *s, struct ctl_client *c)
{
	char *nl;
	size_t len;

	for (;;) {
		nl = memchr(c->in, '\n', c->n_in);
		if (nl == NULL) {
			if (c->n_in < sizeof(c->in))
				return 0;
			set_error(c, "request line too long: requests are single words such as 'checkpoints', at most 255 bytes");
			c->close_after = true;
			c->n_in = 0;
			break;
		}
		size_t used = (size_t)(nl - c->in) + 1;
		len = used - 1;
		*nl = '\0';
		if (len > 0 && c->in[len - 1] == '\r')
			c->in[--len] = '\0';
		if (len > 0) {
			if (s->handler(s->ctx, c->in, &c->out) < 0 || c->out == NULL) {
				free(c->out);
				set_error(c, "out of memory while answering; retry");
			}
			c->out_len = c->out ? strlen(c->out) : 0;
		}
		c->n_in -= used;
		memmove(c->in, nl + 1, c->n_in);
		if (c->out != NULL)
			break;
	}
	if (c->out == NULL) {
		c->close_after = true; /* out of memory: nothing to say */
		return 1;
	}
	/* the newline that ends the answer */
	char *o = realloc(c->out, c->out_len + 1);
	if (o == NULL) {
		free(c->out);
		c->out = NULL;
		c->close_after = true;
		return 1;
	}
	o[c->out_len++] = '\n';
	c->out = o;
	c->out_off = 0;
	return 1;
}

/* Move what the socket allows; returns work done, -1 to drop. */
static int serve(struct sl_ctl_server *s, struct ctl_client *c, short revents,
		 uint64_t now)
{
	int work = 0;
	ssize_t n;

	if ((revents & POLLIN) && !c->eof && c->n_in < sizeof(c->in)) {
		n = recv(c->fd, c->in + c->n_in, sizeof(c->in) - c->n_in, MSG_DONTWAIT);
		if (n == 0)
			c->eof = true;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		else if (n > 0)
			c->n_in += (size_t)n;
	}
	if ((revents & (POLLERR | POLLHUP)) && !(revents & POLLIN) && c->out == NULL)
		return -1;
	for (;;) {
		if (c->out == NULL && !c->close_after) {
			int a = answer(s, c);
			if (a == 0)
				break;
			work += a;
			c->last_ns = now;
		}
		if (c->out == NULL)
			break;
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
		c->last_ns = now;
		if (c->out_off < c->out_len)
			break;
		free(c->out);
		c->out = NULL;
	}
	if (c->out == NULL && (c->close_after || c->eof))
		return -1; /* said everything it asked for */
	if (now - c->last_ns > (uint64_t)SL_CTL_IDLE_MS * 1000000ULL)
		return -1;
	return work;
}

int sl_ctl_server_poll(struct sl_ctl_server *s)
{
	struct pollfd pf[1 + SL_CTL_CLIENTS];
	struct ctl_client *who[1 + SL_CTL_CLIENTS];
	uint64_t now = mono_ns();
	unsigned n = 0;
	int work = 0;

	if (s == NULL || now < s->next_poll_ns)
		return 0;
	s->next_poll_ns = now + POLL_PERIOD_NS;
	pf[n++] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
	for (unsigned i = 0; i < SL_CTL_CLIENTS; i++) {
		struct ctl_client *c = &s->cl[i];
		if (c->fd < 0)
			continue;
		who[n] = c;
		pf[n++] = (struct pollfd){
			.fd = c->fd,
			.events = (short)((c->eof ? 0 : POLLIN) | (c->out ? POLLOUT : 0)),
		};
	}
	if (poll(pf, n, 0) < 0)
		return 0;
	for (unsigned i = 1; i < n; i++) {
		int w = serve(s, who[i], pf[i].revents, now);
		if (w < 0)
			drop(who[i]);
		else
			work += w;
	}
	if (pf[0].revents & POLLIN)
		work += accept_new(s, now);
	return work;
}

void sl_ctl_server_close(struct sl_ctl_server *s)
{
	struct stat st;

	if (s == NULL)
		return;
	for (unsigned i = 0; i < SL_CTL_CLIENTS; i++)
		if (s->cl[i].fd >= 0)
			drop(&s->cl[i]);
	close(s->fd);
	/* remove the socket only if it is still the one we made */
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	/* unlink before unlocking: see take_lock() */
	unlink(s->lock_path);
	close(s->lock_fd);
	free(s);
}

/* ------------------------------------------------------------ client */

int sl_ctl_request(const char *path, const char *request, int timeout_ms,
		   char **response, char *err, size_t errlen)
{
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ULL;
	struct timeval tv = { .tv_sec = timeout_ms / 1000,
			      .tv_usec = (timeout_ms % 1000) * 1000 };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 4096;
	char *buf = NULL, *line = NULL;
	struct stat st;
	int fd = -1, rc;

	*response = NULL;
	if (strlen(path) >= SL_CTL_PATH_MAX)
		return FAIL(ENAMETOOLONG, "%s is longer than a Unix socket path can be (%d bytes)",
			    path, SL_CTL_PATH_MAX - 1);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return FAIL(ENOENT, "no job is running with the control socket %s (there is no such file); start the job with 'sluice run JOB.yaml', or name a running job's socket with --socket PATH",
				    path);
		if (errno == EACCES)
			return FAIL(EACCES, "permission denied reaching %s: the job runs as another user; run this command as that user",
				    path);
		return FAIL(errno, "cannot reach %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return FAIL(ENOTSOCK, "%s is not a socket; give the control socket of a running job (sluice run prints it)",
			    path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return FAIL(errno, "cannot create a socket: %s", strerror(errno));
	/* a Unix connect() waits for room in the backlog up to SO_SNDTIMEO */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		if (e == ECONNREFUSED)
			return FAIL(ECONNREFUSED, "no job is listening on %s: the job that created it has ended without removing it; start the job again (it replaces the stale socket) or remove the file",
				    path);
		if (e == EACCES || e == EPERM)
			return FAIL(EACCES, "permission denied connecting to %s: the job runs as another user; run this command as that user",
				    path);
		if (e == EAGAIN || e == ETIMEDOUT)
			return FAIL(ETIMEDOUT, "the job at %s did not accept the connection within %d ms; retry",
				    path, timeout_ms);
		return FAIL(e, "cannot connect to %s: %s", path, strerror(e));
	}
	rc = asprintf(&line, "%s\n", request);
	if (rc < 0 || send(fd, line, (size_t)rc, MSG_NOSIGNAL) != rc) {
		rc = FAIL(EPROTO, "cannot send the request to %s: %s", path,
			  rc < 0 ? "out of memory" : strerror(errno));
		goto out;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		rc = FAIL(ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		uint64_t now = mono_ns();
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (memchr(buf, '\n', len) != NULL)
			break;
		if (now >= deadline ||
		    poll(&pf, 1, (int)((deadline - now + 999999) / 1000000)) == 0) {
			rc = FAIL(ETIMEDOUT, "the job at %s did not answer within %d ms; retry, and if it persists the job's main lcore is stuck",
				  path, timeout_ms);
			goto out;
		}
		if (len + 1 >= cap) {
			char *nb = cap < ANSWER_MAX ? realloc(buf, cap * 2) : NULL;
			if (nb == NULL) {
				rc = FAIL(EPROTO, "the answer of the job at %s is too long", path);
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = FAIL(EPROTO, "the job at %s closed the connection without a complete answer (did it just end?)",
				  path);
			goto out;
		}
		len += (size_t)n;
	}
	*(char *)memchr(buf, '\n', len) = '\0';
	*response = buf;
	buf = NULL;
	rc = 0;
out:
	free(line);
	free(buf);
	close(fd);
	return rc;
}
