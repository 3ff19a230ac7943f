/* Private to the I/O engine (io.c and its two backends): the operation, the
 * engine's shared state and the backend interface. Nothing outside
 * daemon/io*.c includes this. */
#ifndef FARENA_DAEMON_IO_IMPL_H
#define FARENA_DAEMON_IO_IMPL_H

#include "io.h"

/* One read, write or splice. Allocated by io.c (recycled through a free list),
 * owned by the engine from io_read()/io_write() until its callback has
 * run. While the kernel or a worker thread works on it, the backend owns
 * it and nothing else touches it. */
struct io_op {
    struct io_op *next; /* in the queue, the pool's lists or the free list */
    int fd;
    int is_write;
    int is_splice;     /* a read into a pipe (io_splice) */
    int pipe_fd;       /* splice: the pipe's write end */
    uint64_t off;      /* of the first byte not yet moved */
    size_t left;       /* bytes not yet moved */
    size_t moved;      /* bytes moved so far */
    char *dst;         /* read: where the next byte goes */
    struct iovec *iov; /* write: the rest of the caller's iovec */
    int iovcnt;
    struct iovec *iov_mem; /* write: the copy iov points into (owned) */
    struct store_file *f;  /* read, splice: referenced until done */
    io_done_fn cb;
    void *arg;
    ssize_t res; /* the pool backend's outcome */
};

/* A backend: the io_uring one or the thread pool. */
struct io_backend {
    const char *name;
    /* Sets up io->be_state; returns 0 or -1 with a reason in err. */
    int (*init)(struct io *io, char *err, size_t errlen);
    /* Takes what it can from the queue (io_take), hands it to the kernel
     * or the workers, and reports what completed at once (io_progress,
     * which may put a partial operation back in the queue). Returns how
     * many operations it took. */
    unsigned (*submit)(struct io *io);
    /* Waits for everything in flight (reporting it), then frees be_state. */
    void (*fini)(struct io *io);
};

struct io {
    struct event_base *base;
    const struct io_backend *be;
    void *be_state;
    uint32_t depth;
    struct io_op *qhead, *qtail; /* queued, not yet handed to the backend */
    uint64_t queued;
    uint64_t inflight; /* handed to the backend, callback not yet run */
    struct io_op *free_ops;
    uint32_t nfree;
    int flushing;           /* io_flush() is on the stack */
    struct io_pipes *pipes; /* io_pipe.c's pool (NULL: no pipes) */
};

/* Most iovecs one write step hands the kernel (IOV_MAX on Linux); a longer
 * write goes in several steps. */
#define IO_IOV_MAX 1024

struct io_pipes; /* the pipe pool (io_pipe.c) */

/* Creates the pipe pool, or NULL when out of memory. */
struct io_pipes *io_pipes_new(void);

/* Closes the idle pipes and frees the pool, now or, when pipes are still
 * out (held by connections at shutdown), when the last comes back. */
void io_pipes_free(struct io_pipes *pp);

/* The pipe's write end, which a splice fills. */
int io_pipe_wfd(const struct io_pipe *p);

extern const struct io_backend io_uring_backend;
extern const struct io_backend io_pool_backend;

/* The next queued operation, now counted in flight, or NULL. */
struct io_op *io_take(struct io *io);

/* Puts op back at the head of the queue (the backend had no room). */
void io_untake(struct io *io, struct io_op *op);

/* Records that the kernel moved res bytes of op (or failed with -errno):
 * completes op, or queues its rest. Loop thread only. */
void io_progress(struct io *io, struct io_op *op, ssize_t res);

/* Completes op with res: runs its callback and recycles it. */
void io_complete(struct io *io, struct io_op *op, ssize_t res);

/* Advances a write's iovec past n bytes. */
void io_op_advance(struct io_op *op, size_t n);

#endif
