/* The listening socket's file-system side; see sock.h. */
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto_path.h"

/* Failures return err_set()'s -1, which is SOCK_ERROR. */
_Static_assert(SOCK_ERROR == -1, "err_set returns SOCK_ERROR");

/* Builds the default path; see sock.h. */
char *sock_default_path(void)
{
    char buf[4096];

    /* Longer than any usable socket path: sock_listen refuses it anyway. */
    if (proto_socket_path(NULL, buf, sizeof(buf)) < 0)
        return strdup("");
    return strdup(buf);
}

/* Fills addr with path, refusing paths too long for sun_path. */
static int sock_addr(const char *path, struct sockaddr_un *addr)
{
    size_t n = strlen(path);

    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof(addr->sun_path))
        return -1;
    memcpy(addr->sun_path, path, n + 1);
    return 0;
}

/* Makes sure path's directory exists, is a real directory (not a symlink)
 * and belongs to us; creates it with mode 0700 if missing. Another user's
 * directory could let them replace our socket with theirs. */
static enum sock_status sock_dir(const char *path, struct err *err)
{
    char *dir = strdup(path);
    char *slash;
    struct stat st;
    enum sock_status rc = SOCK_OK;

    if (dir == NULL)
        return err_set(err, PROTO_IO_ERROR, "out of memory");
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = err_set(err, PROTO_IO_ERROR, "cannot create the socket directory %s: %s", dir,
                     strerror(errno));
    } else if (lstat(dir, &st) < 0) {
        rc = err_set(err, PROTO_IO_ERROR, "cannot stat the socket directory %s: %s", dir,
                     strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        rc = err_set(err, PROTO_IO_ERROR, "the socket directory %s is not a directory", dir);
    } else if (st.st_uid != geteuid()) {
        rc = err_set(err, PROTO_IO_ERROR,
                     "the socket directory %s belongs to uid %lu, not to us (uid %lu); "
                     "refusing to use it",
                     dir, (unsigned long)st.st_uid, (unsigned long)geteuid());
    } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        /* Others could unlink our socket and put their own in its place. */
        rc = err_set(err, PROTO_IO_ERROR,
                     "the socket directory %s is writable by others (mode %03o); "
                     "run chmod 700 on it",
                     dir, (unsigned)(st.st_mode & 0777));
    }
    free(dir);
    return rc;
}

/* Deals with whatever is at path already: nothing, a stale socket (removed),
 * a live daemon's socket, or something that is not ours to remove. */
static enum sock_status sock_clear(const char *path, const struct sockaddr_un *addr,
                                   struct err *err)
{
    struct stat st;
    int fd, rc, e;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return SOCK_OK;
        return err_set(err, PROTO_IO_ERROR, "cannot stat %s: %s", path, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return err_set(err, PROTO_IO_ERROR, "%s exists and is not a socket; not replacing it",
                       path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return err_set(err, PROTO_IO_ERROR, "socket: %s", strerror(errno));
    rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    e = errno;
    close(fd);
    /* A full backlog (EAGAIN) also means somebody is listening. */
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
        err_set(err, PROTO_IO_ERROR, "another farenad is serving %s", path);
        return SOCK_SERVING;
    }
    if (e != ECONNREFUSED)
        return err_set(err, PROTO_IO_ERROR, "cannot probe the existing socket %s: %s", path,
                       strerror(e));
    if (unlink(path) < 0 && errno != ENOENT)
        return err_set(err, PROTO_IO_ERROR, "cannot remove the stale socket %s: %s", path,
                       strerror(errno));
    return SOCK_OK;
}

/* Binds and listens; see sock.h. */
enum sock_status sock_listen(const char *path, int *fd, struct sock_bound *bound, struct err *err)
{
    struct sockaddr_un addr;
    enum sock_status rc;
    struct stat st;
    mode_t old;
    int s, brc, e;

    memset(bound, 0, sizeof(*bound));
    if (sock_addr(path, &addr) < 0)
        return err_set(err, PROTO_IO_ERROR, "socket path \"%s\" is empty or longer than %zu bytes",
                       path, sizeof(addr.sun_path) - 1);
    rc = sock_dir(path, err);
    if (rc != SOCK_OK)
        return rc;
    rc = sock_clear(path, &addr, err);
    if (rc != SOCK_OK)
        return rc;
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return err_set(err, PROTO_IO_ERROR, "socket: %s", strerror(errno));
    /* The mode comes from the umask at bind time; fchmod cannot reach a
     * socket's file, and a chmod after bind would leave a window. */
    old = umask(0177);
    brc = bind(s, (const struct sockaddr *)&addr, sizeof(addr));
    e = errno;
    umask(old);
    if (brc < 0) {
        close(s);
        if (e == EADDRINUSE) {
            err_set(err, PROTO_IO_ERROR, "another farenad is serving %s", path);
            return SOCK_SERVING;
        }
        return err_set(err, PROTO_IO_ERROR, "bind %s: %s", path, strerror(e));
    }
    if (listen(s, SOMAXCONN) < 0 || lstat(path, &st) < 0) {
        e = errno;
        unlink(path);
        close(s);
        return err_set(err, PROTO_IO_ERROR, "listen %s: %s", path, strerror(e));
    }
    bound->path = strdup(path);
    if (bound->path == NULL) {
        unlink(path);
        close(s);
        return err_set(err, PROTO_IO_ERROR, "out of memory");
    }
    bound->dev = st.st_dev;
    bound->ino = st.st_ino;
    *fd = s;
    return SOCK_OK;
}

/* Removes our socket file; see sock.h. */
void sock_unlink(struct sock_bound *bound)
{
    struct stat st;

    if (bound->path == NULL || bound->ino == 0)
        return;
    if (lstat(bound->path, &st) == 0 && st.st_dev == bound->dev && st.st_ino == bound->ino)
        unlink(bound->path);
    bound->ino = 0;
}

/* Frees the path; see sock.h. */
void sock_forget(struct sock_bound *bound)
{
    free(bound->path);
    bound->path = NULL;
}
