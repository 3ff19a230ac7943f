/* Small helpers: time, random numbers, the payload, sockets, messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Monotonic nanoseconds. */
uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*. */
uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* splitmix64 finaliser, to spread tags over the seed space. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A non-zero seed derived from base and three tags. */
uint64_t rng_seed(uint64_t base, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = mix64(base + 0x9e3779b97f4a7c15ULL);
    s = mix64(s ^ a);
    s = mix64(s ^ (b << 1));
    s = mix64(s ^ (c << 2));
    return s ? s : 1;
}

/* The shared payload, filled once. */
const char *bench_payload(void)
{
    static char *payload;
    if (!payload) {
        payload = malloc(BENCH_MAX_SIZE);
        if (!payload)
            die("out of memory for the payload");
        uint64_t s = 0x243f6a8885a308d3ULL;
        for (size_t i = 0; i < BENCH_MAX_SIZE; i += 8) {
            uint64_t v = rng_next(&s);
            memcpy(payload + i, &v, 8);
        }
    }
    return payload;
}

/* Blocking connect to a Unix socket. */
int unix_connect(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The peer's pid from SO_PEERCRED. */
long unix_peer_pid(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.pid <= 0)
        return -1;
    return (long)cr.pid;
}

/* Writes everything to a blocking fd. */
int write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Fatal error of the tool. */
void die(const char *fmt, ...)
{
    va_list ap;
    fputs("farena-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* Formats v with a k/M/G suffix. */
void fmt_si(char *out, size_t n, double v)
{
    if (v >= 1e9)
        snprintf(out, n, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, n, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, n, "%.1fk", v / 1e3);
    else
        snprintf(out, n, "%.0f", v);
}
