/* The io_uring backend. One ring, its submission queue sized to the
 * engine's depth. A turn's operations go to the kernel in one
 * io_uring_enter; reads of cached pages complete during that call and are
 * reaped right after it from the shared completion ring (no system call).
 * Operations that wait for the device complete later: the kernel then
 * signals an eventfd registered with the ring, which libevent watches.
 *
 * The eventfd is switched off (IORING_CQ_EVENTFD_DISABLED, a flag in
 * shared memory) around our own submit-and-reap, so completions we reap
 * ourselves do not also wake the loop for nothing; anything posted after
 * it is switched back on signals it, and anything before was reaped. */
#include "io_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <liburing.h>

#include "log.h"

/* Reads at least this long go straight to the kernel's worker threads
 * (IOSQE_ASYNC) instead of being tried inline first. */
#define RING_ASYNC_MIN (128u << 10)

/* The backend's state, owned by the engine (io->be_state). */
struct ring {
    struct io_uring ring;
    int efd;
    struct event *ev;
    uint32_t in_kernel; /* submitted, completion not yet reaped */
    int can_toggle;     /* the kernel knows IORING_CQ_EVENTFD_DISABLED */
};

/* Runs what the completion ring holds. */
static void ring_reap(struct io *io, struct ring *r)
{
    struct io_uring_cqe *cqe;

    while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
        struct io_op *op = io_uring_cqe_get_data(cqe);
        ssize_t res = cqe->res;

        io_uring_cqe_seen(&r->ring, cqe);
        r->in_kernel--;
        io_progress(io, op, res);
    }
}

/* Fills submission entries from the queue, submits them, and reaps. */
static unsigned ring_submit(struct io *io)
{
    struct ring *r = io->be_state;
    unsigned n = 0;
    int rc;

    while (r->in_kernel + n < io->depth && io->qhead != NULL) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
        struct io_op *op;

        if (sqe == NULL)
            break;
        op = io_take(io);
        if (op->is_write)
            io_uring_prep_writev(sqe, op->fd, op->iov,
                                 (unsigned)(op->iovcnt < IO_IOV_MAX ? op->iovcnt : IO_IOV_MAX),
                                 op->off);
        else if (op->is_splice)
            io_uring_prep_splice(sqe, op->fd, (int64_t)op->off, op->pipe_fd, -1, (unsigned)op->left,
                                 0);
        else
            io_uring_prep_read(sqe, op->fd, op->dst, (unsigned)op->left, op->off);
        if (!op->is_write && op->left >= RING_ASYNC_MIN)
            io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
        io_uring_sqe_set_data(sqe, op);
        n++;
    }
    if (n == 0 && io_uring_sq_ready(&r->ring) == 0) {
        ring_reap(io, r);
        return 0;
    }
    if (r->can_toggle)
        (void)io_uring_cq_eventfd_toggle(&r->ring, false);
    do {
        rc = io_uring_submit(&r->ring);
    } while (rc == -EINTR);
    if (r->can_toggle)
        (void)io_uring_cq_eventfd_toggle(&r->ring, true);
    if (rc > 0)
        r->in_kernel += (uint32_t)rc;
    else if (rc < 0 && rc != -EAGAIN && rc != -EBUSY)
        log_err("io_uring_submit: %s", strerror(-rc));
    /* EAGAIN / EBUSY: the kernel is short of resources or the completion
     * ring is full; entries stay in the submission ring and go with the
     * next submit, after the reap below makes room. */
    ring_reap(io, r);
    return n;
}

/* The eventfd fired: completions from the device are waiting. It is
 * watched edge-triggered and never read: every signal is an edge (the
 * kernel wakes its waiters on every write, whatever the count), so reading
 * it would only cost a system call per wake-up; the count cannot reach its
 * 2^64 - 1 limit in the daemon's life. */
static void ring_event(evutil_socket_t fd, short what, void *arg)
{
    struct io *io = arg;

    (void)fd;
    (void)what;
    ring_reap(io, io->be_state);
    /* Room came free: submit what waited for it. */
    io_flush(io);
}

/* Sets up the ring; see io_impl.h. */
static int ring_init(struct io *io, char *err, size_t errlen)
{
    struct ring *r = calloc(1, sizeof(*r));
    struct io_uring_params p;
    int rc;

    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memset(&p, 0, sizeof(p));
    /* The completion ring holds twice the depth (the default), and the
     * kernel keeps overflowing completions instead of dropping them
     * (IORING_FEAT_NODROP, checked below). */
    rc = io_uring_queue_init_params(io->depth, &r->ring, &p);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
        free(r);
        return -1;
    }
    if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_SUBMIT_STABLE)) {
        snprintf(err, errlen, "the kernel's io_uring lacks NODROP or SUBMIT_STABLE (too old)");
        io_uring_queue_exit(&r->ring);
        free(r);
        return -1;
    }
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->efd < 0 || io_uring_register_eventfd(&r->ring, r->efd) < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    r->can_toggle = io_uring_cq_eventfd_toggle(&r->ring, true) == 0;
    r->ev = event_new(io->base, r->efd, EV_READ | EV_PERSIST | EV_ET, ring_event, io);
    if (r->ev == NULL || event_add(r->ev, NULL) < 0) {
        snprintf(err, errlen, "cannot watch the eventfd");
        goto fail;
    }
    io->be_state = r;
    return 0;
fail:
    if (r->ev != NULL)
        event_free(r->ev);
    if (r->efd >= 0)
        close(r->efd);
    io_uring_queue_exit(&r->ring);
    free(r);
    return -1;
}

/* Waits for what is in the kernel, then tears the ring down. */
static void ring_fini(struct io *io)
{
    struct ring *r = io->be_state;

    while (r->in_kernel > 0) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&r->ring, &cqe);

        if (rc == -EINTR)
            continue;
        if (rc < 0) {
            log_err("io_uring_wait_cqe at exit: %s", strerror(-rc));
            break;
        }
        ring_reap(io, r);
        /* A partial operation requeued itself: finish it here too. */
        while (io->qhead != NULL)
            io_complete(io, io_take(io), -ECANCELED);
    }
    event_free(r->ev);
    io_uring_queue_exit(&r->ring);
    close(r->efd);
    free(r);
    io->be_state = NULL;
}

const struct io_backend io_uring_backend = {
    .name = "io_uring",
    .init = ring_init,
    .submit = ring_submit,
    .fini = ring_fini,
};
