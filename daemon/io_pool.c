/* The thread-pool backend, for kernels or sandboxes without io_uring.
 *
 * A read is first tried on the loop thread with preadv2(RWF_NOWAIT), which
 * returns only bytes already in the page cache and never waits for the
 * device: a hot read costs one system call, as a plain pread would, and a
 * cold one costs a failed attempt before a worker takes it. Writes always
 * go to the workers, since a buffered write can block on writeback
 * throttling, and so do splices into pipes (io_splice). Workers do plain
 * blocking pread/pwritev/splice and hand finished operations back through
 * a list and an eventfd. */
#include "io_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

/* The pool's state, owned by the engine (io->be_state). The lists and stop
 * are shared with the workers under mu; everything else is the loop's. */
struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct io_op *todo_head, *todo_tail; /* for the workers */
    struct io_op *done;                  /* finished by the workers */
    int stop;
    pthread_t th[IO_THREADS_DEFAULT];
    unsigned nthreads;
    int efd;
    struct event *ev;
    uint64_t in_pool; /* handed to the workers, not yet reaped */
    int nowait;       /* preadv2(RWF_NOWAIT) works here */
};

/* Moves the whole of op (blocking): the worker's half. */
static ssize_t pool_do(struct io_op *op)
{
    while (op->left > 0) {
        ssize_t n;

        if (op->is_write)
            n = pwritev(op->fd, op->iov, op->iovcnt < IO_IOV_MAX ? op->iovcnt : IO_IOV_MAX,
                        (off_t)op->off);
        else if (op->is_splice) {
            loff_t from = (loff_t)op->off;
            n = splice(op->fd, &from, op->pipe_fd, NULL, op->left, 0);
        } else
            n = pread(op->fd, op->dst, op->left, (off_t)op->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return op->is_write ? -EIO : (ssize_t)op->moved;
        op->moved += (size_t)n;
        op->left -= (size_t)n;
        op->off += (uint64_t)n;
        if (op->is_write)
            io_op_advance(op, (size_t)n);
        else if (!op->is_splice)
            op->dst += n;
    }
    return (ssize_t)op->moved;
}

/* A worker: takes operations until told to stop. */
static void *pool_worker(void *arg)
{
    struct pool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct io_op *op;
        int was_empty;
        uint64_t one = 1;

        while (!p->stop && p->todo_head == NULL)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->todo_head == NULL)
            break; /* stop, and nothing left */
        op = p->todo_head;
        p->todo_head = op->next;
        if (p->todo_head == NULL)
            p->todo_tail = NULL;
        pthread_mutex_unlock(&p->mu);

        op->res = pool_do(op);

        pthread_mutex_lock(&p->mu);
        was_empty = p->done == NULL;
        op->next = p->done;
        p->done = op;
        if (was_empty && write(p->efd, &one, sizeof(one)) < 0)
            log_err("io pool eventfd: %s", strerror(errno));
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Hands op to the workers. */
static void pool_push(struct pool *p, struct io_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->todo_tail != NULL)
        p->todo_tail->next = op;
    else
        p->todo_head = op;
    p->todo_tail = op;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    p->in_pool++;
}

/* Runs the workers' finished operations. */
static void pool_reap(struct io *io, struct pool *p)
{
    struct io_op *list, *rev = NULL;

    pthread_mutex_lock(&p->mu);
    list = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    /* The list is newest first: complete in the order they finished. */
    while (list != NULL) {
        struct io_op *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev != NULL) {
        struct io_op *next = rev->next;
        p->in_pool--;
        io_complete(io, rev, rev->res);
        rev = next;
    }
}

/* Tries reads inline, hands the rest to the workers. */
static unsigned pool_submit(struct io *io)
{
    struct pool *p = io->be_state;
    struct io_op *op;
    unsigned taken = 0;

    while (p->in_pool < io->depth && (op = io_take(io)) != NULL) {
        taken++;
        if (!op->is_write && !op->is_splice && p->nowait) {
            struct iovec v = {op->dst, op->left};
            ssize_t n = preadv2(op->fd, &v, 1, (off_t)op->off, RWF_NOWAIT);

            if (n > 0 && (size_t)n < op->left) {
                /* Part was cached: RWF_NOWAIT stops at the first page
                 * that is not, so a worker reads the rest. */
                op->moved += (size_t)n;
                op->left -= (size_t)n;
                op->off += (uint64_t)n;
                op->dst += n;
                pool_push(p, op);
                continue;
            }
            if (n >= 0) {
                io_progress(io, op, n); /* all of it, or the end of the file */
                continue;
            }
            if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS) {
                log_info("preadv2(RWF_NOWAIT) unsupported here (%s): every read goes to a worker",
                         strerror(errno));
                p->nowait = 0;
            } else if (errno != EAGAIN && errno != EINTR) {
                io_complete(io, op, -errno);
                continue;
            }
        }
        pool_push(p, op);
    }
    return taken;
}

/* A worker finished something. */
static void pool_event(evutil_socket_t fd, short what, void *arg)
{
    struct io *io = arg;
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_debug("io pool eventfd: %s", strerror(errno));
    pool_reap(io, io->be_state);
    io_flush(io);
}

/* Stops the workers (they finish what they hold first) and joins them. */
static void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->th[i], NULL);
    p->nthreads = 0;
}

/* Starts the pool; see io_impl.h. */
static int pool_init(struct io *io, char *err, size_t errlen)
{
    struct pool *p = calloc(1, sizeof(*p));
    int rc;

    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->nowait = 1;
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    p->ev = event_new(io->base, p->efd, EV_READ | EV_PERSIST, pool_event, io);
    if (p->ev == NULL || event_add(p->ev, NULL) < 0) {
        snprintf(err, errlen, "cannot watch the eventfd");
        goto fail;
    }
    for (unsigned i = 0; i < IO_THREADS_DEFAULT; i++) {
        rc = pthread_create(&p->th[i], NULL, pool_worker, p);
        if (rc != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            goto fail;
        }
        p->nthreads++;
    }
    io->be_state = p;
    return 0;
fail:
    pool_stop(p);
    if (p->ev != NULL)
        event_free(p->ev);
    if (p->efd >= 0)
        close(p->efd);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return -1;
}

/* Finishes what the workers hold, then frees the pool. */
static void pool_fini(struct io *io)
{
    struct pool *p = io->be_state;

    pool_stop(p);
    pool_reap(io, p);
    event_free(p->ev);
    close(p->efd);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    io->be_state = NULL;
}

const struct io_backend io_pool_backend = {
    .name = "threads",
    .init = pool_init,
    .submit = pool_submit,
    .fini = pool_fini,
};
