/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The control socket of a running job: a Unix stream socket, owner-only,
 * that answers one-line requests with one-line JSON documents.  The
 * protocol and the files it uses are specified at the top of
 * dataplane/control_socket.c; docs/checkpointing.md shows it in use.
 *
 * The server side never blocks: sl_ctl_server_poll() is called from the
 * main lcore's control loop and only does what the sockets allow at once.
 * It knows nothing of jobs: the job's requests are answered by a handler
 * (dataplane/job_control.c), which keeps the server testable on its own.
 */
#ifndef SLUICE_CONTROL_SOCKET_H
#define SLUICE_CONTROL_SOCKET_H

#include <stddef.h>

/** Longest socket path, with its NUL (sizeof sockaddr_un.sun_path). */
#define SL_CTL_PATH_MAX 108
/** Longest request line, without its newline. */
#define SL_CTL_LINE_MAX 255
/** Connections served at once; further ones get an error and are closed. */
#define SL_CTL_CLIENTS 8
/** A connection with no complete request for this long is closed. */
#define SL_CTL_IDLE_MS 10000

/**
 * Answer one request.
 * @param ctx       the server's context
 * @param request   the request line, without its newline, NUL-terminated
 * @param response  receives a malloc'd JSON document without newline
 * @return 0, or -ENOMEM (the client gets an error document)
 */
typedef int (*sl_ctl_handler)(void *ctx, const char *request, char **response);

struct sl_ctl_server;

/**
 * Take ownership of `path` and listen on it.
 *
 * Creates missing directories of `path` with mode 0700; refuses a
 * directory that belongs to another user or that others may write to
 * (unless it has the sticky bit, as /tmp).  Holds an exclusive lock on
 * `path`.lock while the server lives, so a second server on the same path
 * is refused while the first runs, and a socket left by a server that
 * died is replaced.  The socket gets mode 0600; peers whose uid differs
 * from this process's effective uid are refused.
 *
 * @param path     socket path (1..SL_CTL_PATH_MAX-1 bytes)
 * @param handler  answers requests
 * @param ctx      passed to handler
 * @param err      receives "what is wrong; what to do" on failure
 * @return the server, or NULL with errno set: ENAMETOOLONG, EADDRINUSE
 *         (another live server owns the path), EEXIST (path is not a
 *         socket), EPERM (unsafe directory), or what mkdir/socket/bind
 *         failed with
 */
struct sl_ctl_server *sl_ctl_server_open(const char *path, sl_ctl_handler handler,
					 void *ctx, char *err, size_t errlen);

/**
 * Serve what can be served without blocking: accept, read requests,
 * answer complete ones, write pending answers, close idle connections.
 * Does nothing when called again within a millisecond.
 * @return number of requests answered and connections accepted
 */
int sl_ctl_server_poll(struct sl_ctl_server *s);

/** The path the server listens on. */
const char *sl_ctl_server_path(const struct sl_ctl_server *s);

/** Close every connection, remove the socket and its lock file, free. */
void sl_ctl_server_close(struct sl_ctl_server *s);

/**
 * Directory of control sockets when none is configured:
 * `$SLUICE_RUNTIME_DIR` if set, `/run/sluice` for root,
 * `$XDG_RUNTIME_DIR/sluice` if that variable holds an absolute path,
 * `/tmp/sluice-<uid>` otherwise.
 * @return 0, or -ENAMETOOLONG
 */
int sl_ctl_default_dir(char *buf, size_t len);

/**
 * Default socket path of a job: `<default dir>/<job name>.sock`, with
 * characters of the name other than letters, digits, '.', '-' and '_'
 * replaced by '_'.
 * @return 0, or -ENAMETOOLONG (the path would not fit a socket address)
 */
int sl_ctl_default_path(const char *job_name, char *buf, size_t len);

/**
 * Send one request to the server at `path` and wait for its answer.
 * @param request     request line without newline
 * @param timeout_ms  for connecting and for the answer
 * @param response    receives the malloc'd answer, without newline
 * @param err         receives what went wrong and what to do, naming path
 * @return 0, or -ENOENT (no socket there), -ECONNREFUSED (no server
 *         listening), -EACCES (another user's job), -ENOTSOCK (the path is
 *         not a socket), -ETIMEDOUT, -EPROTO (no complete answer), or
 *         another negative errno
 */
int sl_ctl_request(const char *path, const char *request, int timeout_ms,
		   char **response, char *err, size_t errlen);

#endif
