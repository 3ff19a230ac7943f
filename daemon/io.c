/* The I/O engine's common half: the queue, the operations and their
 * completion; the backends (io_ring.c, io_pool.c) move the bytes. */
#include "io_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* Recycled operations kept for the next turn: a turn of pipelined gets
 * reuses them instead of calling malloc per read. */
#define IO_FREE_KEEP 1024u

/* Creates the engine; see io.h. */
struct io *io_new(struct event_base *base, const struct io_config *cfg, char *err, size_t errlen)
{
    struct io *io = calloc(1, sizeof(*io));
    char why[200] = "";

    if (io == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    io->base = base;
    io->depth = cfg->depth != 0 ? cfg->depth : IO_DEPTH_DEFAULT;
    if (io->depth > IO_DEPTH_MAX)
        io->depth = IO_DEPTH_MAX;
    io->pipes = io_pipes_new();
    if (io->pipes == NULL) {
        snprintf(err, errlen, "out of memory");
        free(io);
        return NULL;
    }
    if (cfg->kind != IO_THREADS) {
        io->be = &io_uring_backend;
        if (io->be->init(io, why, sizeof(why)) == 0)
            return io;
        if (cfg->kind == IO_URING) {
            snprintf(err, errlen, "io_uring: %s", why);
            io_pipes_free(io->pipes);
            free(io);
            return NULL;
        }
        log_warn("io_uring is unavailable (%s); using the thread-pool engine", why);
    }
    io->be = &io_pool_backend;
    if (io->be->init(io, why, sizeof(why)) == 0)
        return io;
    snprintf(err, errlen, "thread pool: %s", why);
    io_pipes_free(io->pipes);
    free(io);
    return NULL;
}

/* Frees the engine; see io.h. */
void io_free(struct io *io)
{
    if (io == NULL)
        return;
    /* Anything still queued fails: the loop is gone, nobody would submit
     * it. (Shutdown waits for connections, so this is normally empty.) */
    while (io->qhead != NULL) {
        struct io_op *op = io_take(io);
        io_complete(io, op, -ECANCELED);
    }
    io->be->fini(io);
    while (io->free_ops != NULL) {
        struct io_op *op = io->free_ops;
        io->free_ops = op->next;
        free(op);
    }
    io_pipes_free(io->pipes);
    free(io);
}

/* The backend's name; see io.h. */
const char *io_engine_name(const struct io *io)
{
    return io->be->name;
}

/* The depth in force; see io.h. */
uint32_t io_depth(const struct io *io)
{
    return io->depth;
}

/* cachestat(2)'s arguments, for C libraries and headers that predate it. */
struct io_cachestat_range {
    uint64_t off, len;
};
struct io_cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};
#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same on every architecture */
#endif

/* Residency of a range; see io.h. */
int io_cached(const struct store_file *f, uint64_t off, uint64_t len)
{
    static int unsupported;
    static uint64_t page;
    struct io_cachestat_range r;
    struct io_cachestat cs;
    struct stat st;
    uint64_t pages;

    if (unsupported || len == 0)
        return 0;
    if (page == 0)
        page = (uint64_t)sysconf(_SC_PAGESIZE);
    r.off = off / page * page;
    r.len = off + len - r.off;
    pages = (r.len + page - 1) / page;
    /* A file shrunk behind the daemon's back (a same-uid process, through
     * /proc) still counts its cut pages as cached: check the size too, so
     * such a get reads short through the engine (io_error) instead of
     * ending its sendfile early (which closes the connection). */
    if (fstat(store_file_fd(f), &st) != 0 || (uint64_t)st.st_size < off + len)
        return 0;
    if (syscall(__NR_cachestat, store_file_fd(f), &r, &cs, 0) != 0) {
        if (errno == ENOSYS || errno == EPERM) {
            unsupported = 1; /* old kernel, or a seccomp filter */
            log_info("cachestat unavailable (%s): large gets are read through the engine",
                     strerror(errno));
        }
        return 0;
    }
    return cs.nr_cache >= pages;
}

/* A fresh (zeroed) operation, from the free list when possible. */
static struct io_op *io_op_alloc(struct io *io)
{
    struct io_op *op = io->free_ops;

    if (op != NULL) {
        io->free_ops = op->next;
        io->nfree--;
        memset(op, 0, sizeof(*op));
        return op;
    }
    return calloc(1, sizeof(*op));
}

/* Appends op to the queue. */
static void io_enqueue(struct io *io, struct io_op *op)
{
    op->next = NULL;
    if (io->qtail != NULL)
        io->qtail->next = op;
    else
        io->qhead = op;
    io->qtail = op;
    io->queued++;
}

/* Queues a read of len bytes at off of f, into memory (dst) or into a
 * pipe (pipe_fd >= 0). Returns 0 or -1 (out of memory). */
static int io_queue_read(struct io *io, struct store_file *f, uint64_t off, char *dst, int pipe_fd,
                         uint32_t len, io_done_fn cb, void *arg)
{
    struct io_op *op = io_op_alloc(io);

    if (op == NULL)
        return -1;
    op->fd = store_file_fd(f);
    op->off = off;
    op->left = len;
    op->dst = dst;
    op->is_splice = pipe_fd >= 0;
    op->pipe_fd = pipe_fd;
    op->f = f;
    op->cb = cb;
    op->arg = arg;
    store_file_ref(f);
    io_enqueue(io, op);
    return 0;
}

/* Queues a read; see io.h. */
int io_read(struct io *io, struct store_file *f, uint64_t off, void *dst, uint32_t len,
            io_done_fn cb, void *arg)
{
    return io_queue_read(io, f, off, dst, -1, len, cb, arg);
}

/* Queues a splice into a pipe; see io.h. */
int io_splice(struct io *io, struct store_file *f, uint64_t off, struct io_pipe *p, uint32_t len,
              io_done_fn cb, void *arg)
{
    return io_queue_read(io, f, off, NULL, io_pipe_wfd(p), len, cb, arg);
}

/* Queues a write; see io.h. */
int io_write(struct io *io, int fd, uint64_t off, const struct iovec *iov, int n, io_done_fn cb,
             void *arg)
{
    struct io_op *op = io_op_alloc(io);
    size_t total = 0;

    if (op == NULL)
        return -1;
    op->iov = malloc((size_t)(n > 0 ? n : 1) * sizeof(*iov));
    if (op->iov == NULL) {
        free(op);
        return -1;
    }
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    memcpy(op->iov, iov, (size_t)n * sizeof(*iov));
    op->iov_mem = op->iov;
    op->iovcnt = n;
    op->is_write = 1;
    op->fd = fd;
    op->off = off;
    op->left = total;
    op->cb = cb;
    op->arg = arg;
    io_enqueue(io, op);
    return 0;
}

/* Takes the queue's head; see io_impl.h. */
struct io_op *io_take(struct io *io)
{
    struct io_op *op = io->qhead;

    if (op == NULL)
        return NULL;
    io->qhead = op->next;
    if (io->qhead == NULL)
        io->qtail = NULL;
    op->next = NULL;
    io->queued--;
    io->inflight++;
    return op;
}

/* Puts op back at the head; see io_impl.h. */
void io_untake(struct io *io, struct io_op *op)
{
    op->next = io->qhead;
    io->qhead = op;
    if (io->qtail == NULL)
        io->qtail = op;
    io->queued++;
    io->inflight--;
}

/* Advances a write's iovec; see io_impl.h. */
void io_op_advance(struct io_op *op, size_t n)
{
    while (op->iovcnt > 0 && n >= op->iov->iov_len) {
        n -= op->iov->iov_len;
        op->iov++;
        op->iovcnt--;
    }
    if (op->iovcnt > 0 && n > 0) {
        op->iov->iov_base = (char *)op->iov->iov_base + n;
        op->iov->iov_len -= n;
    }
}

/* Completes op; see io_impl.h. */
void io_complete(struct io *io, struct io_op *op, ssize_t res)
{
    io_done_fn cb = op->cb;
    void *arg = op->arg;

    io->inflight--;
    if (op->f != NULL)
        store_file_unref(op->f);
    free(op->iov_mem);
    if (io->nfree < IO_FREE_KEEP) {
        op->next = io->free_ops;
        io->free_ops = op;
        io->nfree++;
    } else {
        free(op);
    }
    cb(arg, res);
}

/* Records progress; see io_impl.h. */
void io_progress(struct io *io, struct io_op *op, ssize_t res)
{
    if (res < 0) {
        io_complete(io, op, res);
        return;
    }
    if (res == 0) {
        /* A read at the end of the file, or a write that wrote nothing
         * (which POSIX does not expect for a regular file): stop. */
        io_complete(io, op, op->is_write ? -EIO : (ssize_t)op->moved);
        return;
    }
    op->moved += (size_t)res;
    op->left -= (size_t)res < op->left ? (size_t)res : op->left;
    op->off += (uint64_t)res;
    if (op->is_write)
        io_op_advance(op, (size_t)res);
    else if (!op->is_splice)
        op->dst += res;
    if (op->left == 0) {
        io_complete(io, op, (ssize_t)op->moved);
        return;
    }
    /* The rest goes back to the front of the queue. */
    io_untake(io, op);
}

/* Submits the queue; see io.h. */
void io_flush(struct io *io)
{
    /* Callbacks may queue more (and the backend may have left some for
     * lack of room): go on while the queue shrinks. */
    if (io->flushing)
        return;
    io->flushing = 1;
    while (io->qhead != NULL) {
        if (io->be->submit(io) == 0)
            break; /* full: completions will resubmit */
    }
    io->flushing = 0;
}
