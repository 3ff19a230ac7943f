/* Where farenad listens: the socket path's defaults, its private directory,
 * replacing a stale socket file, binding with mode 0600. Kept apart from the
 * server so that a listening descriptor may later come from elsewhere
 * (systemd socket activation) and the server does not care. */
#ifndef FARENA_DAEMON_SOCK_H
#define FARENA_DAEMON_SOCK_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* A socket file this process created; plain struct, filled by
 * sock_listen(). path is owned (freed by sock_forget). */
struct sock_bound {
    char *path;
    dev_t dev;
    ino_t ino;
};

/* How sock_listen() failed. */
enum sock_status {
    SOCK_OK = 0,
    SOCK_ERROR = -1,  /* *err says why */
    SOCK_SERVING = -2 /* another daemon answers on the path */
};

/* The default socket path: $FARENA_SOCKET, else
 * $XDG_RUNTIME_DIR/farena/farenad.sock, else /tmp/farena-$UID/farenad.sock.
 * Returns a malloc'd string (the caller frees it) or NULL (ENOMEM). */
char *sock_default_path(void);

/* Creates path's directory (mode 0700) if missing and refuses one that is
 * not a directory owned by this user; replaces a leftover socket file only
 * if connecting to it is refused; binds under umask 0177 (mode 0600) and
 * listens. On success returns SOCK_OK, *fd (non-blocking, close-on-exec;
 * the caller owns it) and *bound (release with sock_forget). On failure
 * fills *err with a one-line reason. */
enum sock_status sock_listen(const char *path, int *fd, struct sock_bound *bound, struct err *err);

/* Removes the socket file if it is still the one this process bound (a
 * later daemon may have replaced it). Idempotent. */
void sock_unlink(struct sock_bound *bound);

/* Frees bound's memory (does not unlink). */
void sock_forget(struct sock_bound *bound);

#endif
