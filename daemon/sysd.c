/* systemd socket activation and readiness, without libsystemd. */
#include "sysd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* systemd passes inherited sockets from this descriptor on. */
#define SYSD_LISTEN_FDS_START 3

/* Parses a decimal environment value into *out; 0 or -1 when malformed. */
static int sysd_parse_ulong(const char *s, unsigned long *out)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    return 0;
}

/* Checks that fd is a listening AF_UNIX stream socket; 0 or -1 with *why. */
static int sysd_check_socket(int fd, const char **why)
{
    struct stat sb;
    int val;
    socklen_t len;

    if (fstat(fd, &sb) == -1 || !S_ISSOCK(sb.st_mode)) {
        *why = "inherited descriptor 3 is not a socket";
        return -1;
    }
    len = sizeof(val);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &len) == -1 || val != AF_UNIX) {
        *why = "inherited socket is not an AF_UNIX socket";
        return -1;
    }
    len = sizeof(val);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len) == -1 || val != SOCK_STREAM) {
        *why = "inherited socket is not a stream socket";
        return -1;
    }
    len = sizeof(val);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == -1 || val == 0) {
        *why = "inherited socket is not listening";
        return -1;
    }
    return 0;
}

/* Takes the socket-activated listener, if any. */
int sysd_listen_fd(int *fd, const char **why)
{
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    unsigned long pid, nfds;
    int flags, rc = 0;

    *why = NULL;
    if (pid_s == NULL)
        goto out;
    if (sysd_parse_ulong(pid_s, &pid) == -1) {
        *why = "LISTEN_PID is not a number";
        rc = -1;
        goto out;
    }
    if (pid != (unsigned long)getpid())
        goto out; /* meant for another process (our parent's) */
    if (sysd_parse_ulong(fds_s, &nfds) == -1) {
        *why = "LISTEN_FDS is missing or not a number";
        rc = -1;
        goto out;
    }
    if (nfds != 1) {
        *why = "expected exactly one inherited socket (LISTEN_FDS=1)";
        rc = -1;
        goto out;
    }
    if (sysd_check_socket(SYSD_LISTEN_FDS_START, why) == -1) {
        rc = -1;
        goto out;
    }
    flags = fcntl(SYSD_LISTEN_FDS_START, F_GETFL);
    if (flags == -1 || fcntl(SYSD_LISTEN_FDS_START, F_SETFL, flags | O_NONBLOCK) == -1 ||
        fcntl(SYSD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC) == -1) {
        *why = "cannot make the inherited socket non-blocking";
        rc = -1;
        goto out;
    }
    *fd = SYSD_LISTEN_FDS_START;
    rc = 1;
out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return rc;
}

/* Sends one notification datagram to $NOTIFY_SOCKET. */
int sysd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    socklen_t alen;
    size_t plen;
    ssize_t n;
    int fd, saved;

    if (path == NULL || *path == '\0')
        return 0;
    plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* abstract namespace: no terminating NUL */
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    do {
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
    } while (n == -1 && errno == EINTR);
    saved = errno;
    close(fd);
    if (n == -1) {
        errno = saved;
        return -1;
    }
    return 1;
}
