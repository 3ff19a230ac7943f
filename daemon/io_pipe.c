/* The engine's pipes, for payloads spliced from a scratch file to a socket;
 * see io.h.
 *
 * Every pipe has the same capacity, IO_PIPE_BYTES or, if the system's
 * pipe-max-size is smaller, the largest power of two pages under it: a
 * pipe's slots cost a few bytes each until they hold page references, so
 * sizing them all alike lets any pipe serve any eligible payload. The pool belongs to the engine but is freed
 * by whichever comes last, the engine or the last pipe handed out: a
 * connection may still hold one when the engine is gone at shutdown. */
#include "io_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* A pipe's capacity in bytes, at most: 256 pages, the default
 * pipe-max-size an unprivileged process may ask for. */
#define IO_PIPE_BYTES (1u << 20)
/* Pipes out at once, at most: their slots count against the user's
 * pipe-user-pages-soft (16384 pages by default, shared by every process of
 * the user), and this takes half of it. */
#define IO_PIPES_MAX 32u
/* Drained pipes kept for reuse. */
#define IO_PIPES_IDLE 8u

struct io_pipes {
    uint32_t out;    /* pipes handed out and not yet back */
    int engine_gone; /* io_pipes_free ran: free on the last return */
    int unavailable; /* pipes cannot be had here (logged once) */
    size_t cap;      /* bytes each pipe holds */
    size_t page;     /* the page size: a pipe slot holds one page at most */
    struct io_pipe *idle;
    uint32_t nidle;
};

/* One pipe: fd[0] the read end (non-blocking), fd[1] the write end. */
struct io_pipe {
    struct io_pipes *pool;
    struct io_pipe *next; /* in the idle list */
    int fd[2];
};

/* Creates the pool; see io_impl.h. */
struct io_pipes *io_pipes_new(void)
{
    struct io_pipes *pp = calloc(1, sizeof(*pp));
    FILE *f;
    unsigned long max = 0;

    if (pp == NULL)
        return NULL;
    pp->cap = IO_PIPE_BYTES;
    pp->page = (size_t)sysconf(_SC_PAGESIZE);
    f = fopen("/proc/sys/fs/pipe-max-size", "r");
    if (f != NULL) {
        if (fscanf(f, "%lu", &max) != 1)
            max = 0;
        fclose(f);
    }
    /* The kernel rounds a pipe's size up to a power of two pages, and an
     * unprivileged process may not pass pipe-max-size: halve down to a
     * size it accepts. */
    while (max > 0 && pp->cap > max && pp->cap > pp->page)
        pp->cap /= 2;
    return pp;
}

/* Closes a pipe and frees it. */
static void pipe_close(struct io_pipe *p)
{
    close(p->fd[0]);
    close(p->fd[1]);
    free(p);
}

/* Frees the pool, or leaves that to the last pipe's return; see io_impl.h. */
void io_pipes_free(struct io_pipes *pp)
{
    if (pp == NULL)
        return;
    while (pp->idle != NULL) {
        struct io_pipe *p = pp->idle;
        pp->idle = p->next;
        pipe_close(p);
    }
    pp->nidle = 0;
    pp->engine_gone = 1;
    if (pp->out == 0)
        free(pp);
}

/* Makes a pipe of the pool's capacity, or returns NULL (logged once when
 * the system refuses: later gets then read through memory). */
static struct io_pipe *pipe_make(struct io_pipes *pp)
{
    struct io_pipe *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    /* Both ends non-blocking: the write end so that a splice can never
     * wait for room (the pipe holds a whole payload, and if it somehow did
     * not, the read would fail as short instead of hanging a worker), the
     * read end because the loop drains it into the socket. */
    if (pipe2(p->fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        if (errno != EMFILE && errno != ENFILE && !pp->unavailable) {
            log_info("pipe2: %s: large cold gets are read through memory", strerror(errno));
            pp->unavailable = 1;
        }
        free(p);
        return NULL;
    }
    if (fcntl(p->fd[1], F_SETPIPE_SZ, (int)pp->cap) < 0) {
        /* EPERM: the user's pipes are over pipe-user-pages-soft. That can
         * pass, so only this attempt gives up. */
        if (errno != EPERM && !pp->unavailable) {
            log_info("F_SETPIPE_SZ: %s: large cold gets are read through memory", strerror(errno));
            pp->unavailable = 1;
        }
        pipe_close(p);
        return NULL;
    }
    p->pool = pp;
    return p;
}

/* Takes a pipe for [off, off + len); see io.h. */
struct io_pipe *io_pipe_get(struct io *io, uint64_t off, uint32_t len)
{
    struct io_pipes *pp = io->pipes;
    struct io_pipe *p;
    uint64_t pages;

    if (pp == NULL || pp->unavailable || pp->out >= IO_PIPES_MAX)
        return NULL;
    /* A splice fills one pipe slot per page the range touches. */
    pages = (off % pp->page + len + pp->page - 1) / pp->page;
    if (pages > pp->cap / pp->page)
        return NULL;
    p = pp->idle;
    if (p != NULL) {
        pp->idle = p->next;
        pp->nidle--;
    } else {
        p = pipe_make(pp);
        if (p == NULL)
            return NULL;
    }
    p->next = NULL;
    pp->out++;
    return p;
}

/* The read end; see io.h. */
int io_pipe_rfd(const struct io_pipe *p)
{
    return p->fd[0];
}

/* The write end; see io_impl.h. */
int io_pipe_wfd(const struct io_pipe *p)
{
    return p->fd[1];
}

/* Gives a pipe back; see io.h. */
void io_pipe_put(struct io_pipe *p, int drained)
{
    struct io_pipes *pp;

    if (p == NULL)
        return;
    pp = p->pool;
    pp->out--;
    if (drained && !pp->engine_gone && pp->nidle < IO_PIPES_IDLE) {
        p->next = pp->idle;
        pp->idle = p;
        pp->nidle++;
    } else {
        /* Bytes may be left in it (a failed or dropped reply): a new
         * pipe is cheaper than draining this one. */
        pipe_close(p);
    }
    if (pp->engine_gone && pp->out == 0)
        free(pp);
}
