/* libfarena transport: connecting, the hello exchange, and the call engine
 * that pipelines requests and matches their responses by msgid.
 *
 * The socket stays in blocking mode, but every send is MSG_DONTWAIT: while
 * request bytes are pending the engine polls for both directions at once and
 * reads whatever the daemon answers, so neither side can wedge the other
 * however large a batch is. Only when every request byte is sent does it
 * block in recvmsg() (bounded by SO_RCVTIMEO when a timeout is set): that
 * saves a poll() per round trip on the common small call.
 *
 * Every read is a recvmsg() with room for descriptors (MSG_CMSG_CLOEXEC):
 * arena_fds answers carry them (SCM_RIGHTS). They wait in a FIFO, tagged
 * with their stream offset, until the answer they came with claims them
 * (cl_fds_claim); any that no answer claims are closed. */
#include "internal.h"
#include "proto_path.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto_limits.h"

/* Initial and "keep" sizes of the I/O buffers: a call that needed more gives
 * the excess back when it ends, so one huge get does not pin its memory. */
#define RX_INITIAL  (64u << 10)
#define RX_MIN_READ (64u << 10)
#define BUF_KEEP    (16u << 20)
/* Bytes of requests packed ahead of what the socket has taken. */
#define TX_WINDOW (1u << 20)
/* The size of the page behind farena_client.alive. */
#define ALIVE_PAGE 4096
/* What the response scanner tolerates beyond the daemon's max_message. */
#define RX_SLACK (64u << 10)

/* Sets c's message and returns err. */
int cl_fail(farena_client *c, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
    return err;
}

/* Marks the connection unusable: every later call fails with ECONNLOST. */
static int cl_break(farena_client *c, int err)
{
    if (!c->broken)
        c->broken = err;
    return err;
}

/* Whether c was connected by another process (we are a forked child). */
int cl_forked(const farena_client *c)
{
    if (c->alive != NULL)
        return *c->alive != 1;
    return getpid() != c->pid;
}

/* Checks the client may be used now and clears its message. */
int cl_ready(farena_client *c)
{
    if (c == NULL)
        return FARENA_EINVAL;
    if (cl_forked(c))
        return cl_fail(c, FARENA_EFORK,
                       "this client was connected by process %ld; a forked child must "
                       "connect its own",
                       (long)c->pid);
    if (c->broken)
        return FARENA_ECONNLOST; /* the message of the original failure stays */
    c->errmsg[0] = '\0';
    return 0;
}

/* Takes n consecutive msgids, skipping 0 (the daemon's "no request" id). */
uint32_t cl_msgids(farena_client *c, size_t n)
{
    uint32_t base = c->next_msgid;

    if (base == 0 || (uint64_t)base + n > UINT32_MAX)
        base = 1;
    c->next_msgid = (uint32_t)(base + n);
    return base;
}

/* Grows tx so that n more bytes fit, compacting sent bytes away first. */
static int tx_reserve(farena_client *c, size_t n)
{
    size_t need, cap;
    uint8_t *p;

    if (c->tx_cap - c->tx_len >= n)
        return 0;
    if (c->tx_off > 0) {
        memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
        c->tx_len -= c->tx_off;
        c->tx_off = 0;
        if (c->tx_cap - c->tx_len >= n)
            return 0;
    }
    if (n > SIZE_MAX - c->tx_len)
        return -1;
    need = c->tx_len + n;
    cap = c->tx_cap ? c->tx_cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(c->tx, cap);
    if (p == NULL)
        return -1;
    c->tx = p;
    c->tx_cap = cap;
    return 0;
}

/* The packer's write callback: appends to the output buffer. */
static int tx_write(void *data, const char *buf, size_t len)
{
    farena_client *c = data;

    if (len == 0)
        return 0; /* an empty payload's body may be a NULL pointer */
    if (tx_reserve(c, len) != 0) {
        c->pk_oom = 1;
        return -1;
    }
    memcpy(c->tx + c->tx_len, buf, len);
    c->tx_len += len;
    return 0;
}

struct run;
static int rx_read(farena_client *c, struct run *r, int block);

/* Sends what the socket takes without blocking. Returns 0 or ECONNLOST.
 * When the daemon has closed, reads what it sent before closing first (it
 * explains a refusal, e.g. too many clients, then closes), so the caller
 * gets that error rather than a bare ECONNLOST. */
static int tx_flush(farena_client *c, struct run *r)
{
    while (c->tx_off < c->tx_len) {
        ssize_t n =
            send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->tx_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            int e = errno;
            for (;;) {
                uint64_t before = c->rx_total;
                if (rx_read(c, r, 0) != 0 || c->broken || c->rx_total == before)
                    break;
            }
            if (c->broken)
                return c->broken;
            errno = e;
        }
        return cl_break(c, cl_fail(c, FARENA_ECONNLOST, "connection to farenad lost: %s",
                                   n < 0 ? strerror(errno) : "send returned 0"));
    }
    c->tx_off = c->tx_len = 0;
    return 0;
}

/* Makes room for a read of at least RX_MIN_READ bytes, or for want bytes in
 * all when the call expects a response that large. */
static int rx_room(farena_client *c, size_t want)
{
    size_t need, cap;
    uint8_t *p;

    if (c->rx_start > 0 && c->rx_cap - c->rx_len < RX_MIN_READ) {
        memmove(c->rx, c->rx + c->rx_start, c->rx_len - c->rx_start);
        c->rx_len -= c->rx_start;
        c->rx_scan -= c->rx_start;
        c->rx_start = 0;
    }
    need = c->rx_len + RX_MIN_READ;
    if (want > need)
        need = want;
    if (c->rx_cap >= need)
        return 0;
    cap = c->rx_cap ? c->rx_cap : RX_INITIAL;
    while (cap < need)
        cap *= 2;
    p = realloc(c->rx, cap);
    if (p == NULL)
        return cl_fail(c, FARENA_ENOMEM, "out of memory for a %zu-byte receive buffer", cap);
    c->rx = p;
    c->rx_cap = cap;
    return 0;
}

/* State of one cl_run(). */
struct run {
    struct cl_call *call;
    uint32_t base;
    size_t packed;   /* requests packed so far */
    size_t answered; /* responses handled so far */
    int stop;        /* pack nothing more */
    int err;         /* error of the earliest failed request */
    size_t err_req;  /* which request (SIZE_MAX: none yet) */
    char err_msg[sizeof(((farena_client *)0)->errmsg)];
};

/* Remembers err of request i when it is the earliest failure so far; the
 * message is c's current one. */
static void run_note(farena_client *c, struct run *r, int err, size_t i)
{
    r->stop = 1;
    if (r->err != 0 && r->err_req <= i)
        return;
    r->err = err;
    r->err_req = i;
    memcpy(r->err_msg, c->errmsg, sizeof(r->err_msg));
}

/* Copies a daemon error message. In a batch the error's item is the
 * request's own index, renumbered by the request's first item so the
 * caller sees its own item numbers: "item K: " + the message with its own
 * leading "item N:" (if any) dropped. The index comes from the error's
 * {"item": k} (rsp->item); only a daemon that does not send it (before
 * that field) has it parsed from the message's leading "item K:". */
static void daemon_message(farena_client *c, const struct proto_response *rsp,
                           const struct cl_req *req, int batch)
{
    const char *m = rsp->message ? rsp->message : "";
    size_t n = rsp->message_len;
    size_t k = 0, i = 5;
    int known = rsp->err > 0;
    int found = 0;

    /* The message's leading "item N:", if any: i ends at its colon. */
    if (batch && n > 5 && memcmp(m, "item ", 5) == 0) {
        while (i < n && i < 25 && m[i] >= '0' && m[i] <= '9')
            k = k * 10 + (size_t)(m[i++] - '0');
        found = i > 5 && i < n && m[i] == ':';
    }
    if (batch && rsp->item >= 0) {
        /* The item as data; the text's number, if any, is not read. */
        const char *rest = found ? m + i : ": ";
        size_t rest_len = found ? n - i : 2;
        size_t body = found ? 0 : n;
        k = (size_t)rsp->item;
        if (known)
            cl_fail(c, 0, "item %zu%.*s%.*s", req->first + k, (int)rest_len, rest, (int)body, m);
        else
            cl_fail(c, 0, "%.*s (unknown error code): item %zu%.*s%.*s", (int)rsp->errname_len,
                    rsp->errname, req->first + k, (int)rest_len, rest, (int)body, m);
        return;
    }
    if (found) {
        /* Old-daemon path: no {"item": k}, so the number is the text's. */
        if (known)
            cl_fail(c, 0, "item %zu%.*s", req->first + k, (int)(n - i), m + i);
        else
            cl_fail(c, 0, "%.*s (unknown error code): item %zu%.*s", (int)rsp->errname_len,
                    rsp->errname, req->first + k, (int)(n - i), m + i);
        return;
    }
    if (known)
        cl_fail(c, 0, "%.*s", (int)n, m);
    else
        cl_fail(c, 0, "%.*s (unknown error code): %.*s", (int)rsp->errname_len, rsp->errname,
                (int)n, m);
}

/* Handles one complete response message of len bytes at msg. Returns 0, or
 * an error that ends the call at once (the connection is then broken). */
static int handle_message(farena_client *c, struct run *r, const uint8_t *msg, size_t len)
{
    struct cl_call *call = r->call;
    struct proto_response rsp;
    msgpack_object obj;
    const char *why;
    struct cl_req *req;
    size_t i;
    int err;

    why = "unknown reason";
    c->msg_pos = c->rx_total - c->rx_len + (uint64_t)(msg - c->rx);
    msgpack_zone_clear(&c->zone);
    if (proto_unpack(&c->zone, msg, len, &obj, &why) != 0)
        return cl_break(c, cl_fail(c, FARENA_EPROTO, "unreadable response from farenad: %s", why));
    if (proto_response_decode(&obj, &rsp, &why) != 0)
        return cl_break(c, cl_fail(c, FARENA_EPROTO, "malformed response from farenad: %s", why));
    if (rsp.msgid == 0 && rsp.err != PROTO_OK) {
        /* Not an answer to any request: the daemon refuses the connection
         * (too many clients) and closes it. */
        err = rsp.err > 0 ? -rsp.err : FARENA_EUNKNOWN;
        daemon_message(c, &rsp, &c->one, 0);
        return cl_break(c, err);
    }
    i = (uint32_t)(rsp.msgid - r->base);
    if (i >= r->packed || call->reqs[i].answered)
        return cl_break(c, cl_fail(c, FARENA_EPROTO,
                                   "farenad answered msgid %" PRIu32 ", which is not pending",
                                   rsp.msgid));
    req = &call->reqs[i];
    req->answered = 1;
    r->answered++;
    if (rsp.err != PROTO_OK) {
        err = rsp.err > 0 ? -rsp.err : FARENA_EUNKNOWN;
        daemon_message(c, &rsp, req, call->nreq > 1 || call->pack != NULL);
        run_note(c, r, err, i);
        return 0;
    }
    if (call->done == NULL) {
        c->result = rsp.result;
        c->result_pos = c->msg_pos;
        return 0;
    }
    err = call->done(c, call, i, rsp.result);
    if (err != 0)
        run_note(c, r, err, i);
    return 0;
}

/* Feeds received bytes to the scanner and handles every complete message. */
static int rx_process(farena_client *c, struct run *r)
{
    while (c->rx_scan < c->rx_len) {
        size_t used = 0, total, end;
        const char *why = NULL;
        enum proto_scan_status st;
        int err;

        st = proto_scan_feed(c->scan, c->rx + c->rx_scan, c->rx_len - c->rx_scan, &used, &why);
        if (st == PROTO_SCAN_MORE) {
            c->rx_scan = c->rx_len;
            break;
        }
        if (st == PROTO_SCAN_REJECT)
            return cl_break(
                c, cl_fail(c, FARENA_EPROTO, "bad bytes from farenad: %s", why ? why : "rejected"));
        total = proto_scan_total(c->scan);
        end = c->rx_scan + used;
        proto_scan_reset(c->scan);
        err = handle_message(c, r, c->rx + end - total, total);
        c->rx_start = c->rx_scan = end;
        if (err != 0)
            return err;
    }
    if (c->rx_start == c->rx_len)
        c->rx_start = c->rx_scan = c->rx_len = 0;
    return 0;
}

/* Queues the descriptors a read brought (closing them when out of memory:
 * their response then falls back to the daemon path). pos: the stream
 * offset of the read's last byte, the first byte of their response. */
static void rx_fds(farena_client *c, struct msghdr *mh, uint64_t pos)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
        struct cl_fdbatch *b;
        size_t n;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
            cm->cmsg_len < CMSG_LEN(0))
            continue;
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (n == 0)
            continue;
        b = malloc(sizeof(*b) + n * sizeof(int));
        if (b == NULL) {
            for (size_t i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                close(fd);
            }
            continue;
        }
        b->next = NULL;
        b->pos = pos;
        b->n = n;
        memcpy(b->fds, CMSG_DATA(cm), n * sizeof(int));
        if (c->fdq_tail != NULL)
            c->fdq_tail->next = b;
        else
            c->fdq = b;
        c->fdq_tail = b;
    }
}

/* Closes and frees the head batch of the FIFO. */
static void fdq_pop_close(farena_client *c)
{
    struct cl_fdbatch *b = c->fdq;

    c->fdq = b->next;
    if (c->fdq == NULL)
        c->fdq_tail = NULL;
    for (size_t i = 0; i < b->n; i++)
        close(b->fds[i]);
    free(b);
}

/* Hands out the descriptors of the response at pos; see internal.h. */
size_t cl_fds_claim(farena_client *c, uint64_t pos, int *out, size_t max)
{
    struct cl_fdbatch *b;
    size_t n;

    while (c->fdq != NULL && c->fdq->pos < pos)
        fdq_pop_close(c); /* strays: no response claimed them */
    if (c->fdq == NULL || c->fdq->pos != pos)
        return 0;
    b = c->fdq;
    n = b->n < max ? b->n : max;
    if (n > 0) {
        memcpy(out, b->fds, n * sizeof(int));
        b->n -= n;
        memmove(b->fds, b->fds + n, b->n * sizeof(int));
    }
    fdq_pop_close(c); /* closes any beyond max */
    return n;
}

/* Closes every unclaimed descriptor. */
void cl_fds_drop(farena_client *c)
{
    while (c->fdq != NULL)
        fdq_pop_close(c);
}

/* Reads what is there (block = 0) or waits for bytes (block = 1, bounded by
 * SO_RCVTIMEO), then handles complete messages. Running out of memory here
 * breaks the connection: requests are in flight and their answers could no
 * longer be told from the next call's. */
static int rx_read(farena_client *c, struct run *r, int block)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * CL_MAX_FDS)];
    } u;
    struct msghdr mh;
    struct iovec iov;
    ssize_t n;
    int err = rx_room(c, c->rx_len - c->rx_start + r->call->rx_hint);

    if (err != 0)
        return cl_break(c, err);
    iov.iov_base = c->rx + c->rx_len;
    iov.iov_len = c->rx_cap - c->rx_len;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
    if (n > 0 && mh.msg_controllen > 0)
        rx_fds(c, &mh, c->rx_total + (uint64_t)n - 1);
    if (n > 0) {
        c->rx_len += (size_t)n;
        c->rx_total += (uint64_t)n;
        return rx_process(c, r);
    }
    if (n == 0)
        return cl_break(c, cl_fail(c, FARENA_ECONNLOST,
                                   "farenad closed the connection (it stopped or was killed?)"));
    if (errno == EINTR)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!block)
            return 0;
        return cl_break(c, cl_fail(c, FARENA_ETIMEDOUT,
                                   "no answer from farenad within %d ms; the connection is "
                                   "now unusable",
                                   c->timeout_ms));
    }
    return cl_break(
        c, cl_fail(c, FARENA_ECONNLOST, "connection to farenad lost: %s", strerror(errno)));
}

/* One step of I/O: sends pending bytes and reads answers, waiting for the
 * socket when neither can progress. */
static int run_step(farena_client *c, struct run *r)
{
    struct pollfd pfd;
    int err, n;

    if (c->tx_off < c->tx_len) {
        err = tx_flush(c, r);
        if (err != 0)
            return err;
    }
    if (c->tx_off == c->tx_len) {
        /* The socket took everything: pack more before waiting for answers. */
        if (!r->stop && r->packed < r->call->nreq)
            return 0;
        return rx_read(c, r, 1);
    }

    pfd.fd = c->fd;
    pfd.events = POLLIN | POLLOUT;
    pfd.revents = 0;
    n = poll(&pfd, 1, c->timeout_ms > 0 ? c->timeout_ms : -1);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0)
        return cl_break(c, cl_fail(c, FARENA_ECONNLOST, "poll: %s", strerror(errno)));
    if (n == 0)
        return cl_break(c, cl_fail(c, FARENA_ETIMEDOUT,
                                   "farenad took no request bytes and sent none within %d ms; "
                                   "the connection is now unusable",
                                   c->timeout_ms));
    if (pfd.revents & POLLNVAL)
        return cl_break(c, cl_fail(c, FARENA_ECONNLOST,
                                   "the connection's descriptor was closed behind the library"));
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
        return rx_read(c, r, 0);
    if (pfd.revents & POLLOUT)
        return tx_flush(c, r);
    return 0;
}

/* Gives back buffer memory a large call grew beyond BUF_KEEP. Called as
 * the next call begins, never at the end of the call that grew it: that
 * call's result (c->result) points into rx until its caller has copied it
 * out. */
static void trim_buffers(farena_client *c)
{
    if (c->tx_cap > BUF_KEEP && c->tx_off == c->tx_len) {
        free(c->tx);
        c->tx = NULL;
        c->tx_cap = c->tx_off = c->tx_len = 0;
    }
    if (c->rx_cap > BUF_KEEP && c->rx_len - c->rx_start < RX_INITIAL) {
        uint8_t *p = malloc(RX_INITIAL);
        if (p == NULL)
            return;
        memcpy(p, c->rx + c->rx_start, c->rx_len - c->rx_start);
        c->rx_len -= c->rx_start;
        c->rx_scan -= c->rx_start;
        c->rx_start = 0;
        free(c->rx);
        c->rx = p;
        c->rx_cap = RX_INITIAL;
    }
}

/* The engine; see internal.h. */
int cl_run(farena_client *c, struct cl_call *call)
{
    struct run r;
    int err = 0;

    trim_buffers(c); /* the previous call's result is dead now */
    memset(&r, 0, sizeof(r));
    r.call = call;
    r.err_req = SIZE_MAX;
    /* Every earlier response was handled: descriptors nobody claimed are
     * strays (a reply the caller did not parse, a peer sending what was
     * not asked for), closed rather than leaked. */
    while (c->fdq != NULL && c->fdq->pos < c->rx_total - (c->rx_len - c->rx_start))
        fdq_pop_close(c);
    if (call->pack == NULL) {
        r.base = c->base;
        r.packed = 1;
    } else {
        r.base = cl_msgids(c, call->nreq);
    }
    for (size_t i = 0; i < call->nreq; i++)
        call->reqs[i].answered = 0;
    /* Room for the largest expected answer, before anything is sent: failing
     * now leaves the connection in step. */
    err = rx_room(c, c->rx_len - c->rx_start + call->rx_hint);
    if (err != 0) {
        c->tx_off = c->tx_len = 0; /* a single call's request, never sent */
        return err;
    }

    for (;;) {
        while (!r.stop && r.packed < call->nreq && c->tx_len - c->tx_off < TX_WINDOW) {
            /* Unsent bytes before this request: tx_reserve() may move them
             * to the front of tx while it packs, so tx_len alone is no mark. */
            size_t keep = c->tx_len - c->tx_off;
            int e = call->pack(c, call, r.packed, r.base + (uint32_t)r.packed);

            if (e == 0 && c->pk_oom)
                e = cl_fail(c, FARENA_ENOMEM, "out of memory packing a request");
            if (e != 0) {
                c->tx_len = c->tx_off + keep;
                c->pk_oom = 0;
                run_note(c, &r, e, r.packed);
                break;
            }
            r.packed++;
        }
        if (r.answered == r.packed && (r.stop || r.packed == call->nreq))
            break;
        err = run_step(c, &r);
        if (err != 0)
            break;
    }
    if (err != 0)
        return err;
    if (r.err != 0) {
        memcpy(c->errmsg, r.err_msg, sizeof(c->errmsg));
        return r.err;
    }
    return 0;
}

/* Empties the output for a single request and takes its msgid. */
static uint32_t begin_reset(farena_client *c)
{
    c->tx_off = c->tx_len = 0;
    c->pk_oom = 0;
    c->result = NULL;
    c->base = cl_msgids(c, 1);
    return c->base;
}

/* Starts a single request. */
void cl_begin(farena_client *c, enum proto_method m, uint32_t nparams)
{
    proto_pack_request_head(&c->pk, begin_reset(c), m, nparams);
}

/* Starts a single request by method name with params already packed. */
void cl_begin_raw(farena_client *c, const char *method, size_t mlen, const void *params,
                  size_t params_len)
{
    uint32_t msgid = begin_reset(c);

    msgpack_pack_array(&c->pk, 4);
    msgpack_pack_uint8(&c->pk, PROTO_REQUEST);
    msgpack_pack_uint32(&c->pk, msgid);
    msgpack_pack_str(&c->pk, mlen);
    msgpack_pack_str_body(&c->pk, method, mlen);
    c->pk.callback(c->pk.data, params, params_len);
}

/* Finishes a single request. */
int cl_end(farena_client *c, size_t rx_hint, const msgpack_object **result)
{
    struct cl_call call;
    int err;

    if (c->pk_oom) {
        c->pk_oom = 0;
        c->tx_off = c->tx_len = 0;
        return cl_fail(c, FARENA_ENOMEM, "out of memory packing a request");
    }
    memset(&call, 0, sizeof(call));
    call.nreq = 1;
    call.reqs = &c->one;
    call.rx_hint = rx_hint;
    err = cl_run(c, &call);
    if (err != 0)
        return err;
    if (c->result == NULL)
        return cl_fail(c, FARENA_EPROTO, "farenad sent no result");
    if (result != NULL)
        *result = c->result;
    return 0;
}

/* Sends release [h] as a notification, blocking (bounded by SO_SNDTIMEO):
 * a dozen bytes the socket takes at once unless the daemon stopped
 * reading. A partial send would leave the stream out of step, so any
 * failure breaks the connection. */
int cl_notify_release(farena_client *c, farena_handle h)
{
    size_t off = 0;

    c->tx_off = c->tx_len = 0;
    c->pk_oom = 0;
    proto_pack_notify_head(&c->pk, PROTO_M_RELEASE, 1);
    msgpack_pack_uint64(&c->pk, h);
    if (c->pk_oom) {
        c->pk_oom = 0;
        c->tx_len = 0;
        return cl_fail(c, FARENA_ENOMEM, "out of memory packing a release");
    }
    while (off < c->tx_len) {
        ssize_t n = send(c->fd, c->tx + off, c->tx_len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        c->tx_off = c->tx_len = 0;
        return cl_break(c, cl_fail(c, FARENA_ECONNLOST, "connection to farenad lost: %s",
                                   n < 0 ? strerror(errno) : "send returned 0"));
    }
    c->tx_off = c->tx_len = 0;
    return 0;
}

/* Grows the batch request table. */
int cl_reqs_reserve(farena_client *c, size_t n)
{
    struct cl_req *p;
    size_t cap = c->reqs_cap ? c->reqs_cap : 16;

    if (n <= c->reqs_cap)
        return 0;
    while (cap < n)
        cap *= 2;
    p = realloc(c->reqs, cap * sizeof(*p));
    if (p == NULL)
        return cl_fail(c, FARENA_ENOMEM, "out of memory for %zu requests", n);
    c->reqs = p;
    c->reqs_cap = cap;
    return 0;
}

/* Request head at its widest plus a handle and an array header. */
size_t cl_req_overhead(enum proto_method m)
{
    return proto_size_request_head(UINT32_MAX, m, 2) + proto_size_uint(UINT64_MAX) +
           proto_size_array(UINT32_MAX);
}

/* Result head at its widest plus an array header. */
size_t cl_resp_overhead(void)
{
    return proto_size_result_head(UINT32_MAX) + proto_size_array(UINT32_MAX);
}

/* ---- connecting ---- */

/* Resolves the socket path the way farenad does: proto_socket_path(),
 * which both share, with its errors as FARENA_E... codes. */
int farena_socket_path(const char *path, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return FARENA_EINVAL;
    return proto_socket_path(path, out, cap) < 0 ? FARENA_ETOOLARGE : 0;
}

/* Fills c->info and the effective limits from a hello result (see
 * PROTOCOL.md). Returns 0 or FARENA_EPROTO (message set). */
static int hello_parse(farena_client *c, const msgpack_object *res)
{
    struct farena_server_info info;
    const msgpack_object *lim, *methods;
    uint64_t proto = 0, max_fds = 0;

    memset(&info, 0, sizeof(info));
    if (res == NULL || res->type != MSGPACK_OBJECT_MAP)
        return cl_bad_result(c, "hello", "not a map");
    if (cl_map_str(res, "server", info.server, sizeof(info.server)) != 0 ||
        cl_map_str(res, "version", info.version, sizeof(info.version)) != 0 ||
        cl_map_uint(res, "protocol", &proto) != 0)
        return cl_bad_result(c, "hello", "server, version or protocol mistyped");
    /* A different number is an incompatible protocol (PROTOCOL.md, section
     * 8): refuse it rather than misread its answers. */
    if (proto != PROTO_VERSION)
        return cl_fail(c, FARENA_EPROTO, "farenad speaks protocol %" PRIu64 ", this library %d",
                       proto, PROTO_VERSION);
    info.protocol = (uint32_t)proto;
    lim = cl_map_get(res, "limits");
    if (lim != NULL) {
        struct farena_limits *l = &info.limits;
        if (lim->type != MSGPACK_OBJECT_MAP)
            return cl_bad_result(c, "hello", "limits is not a map");
        if (cl_map_uint(lim, "max_message", &l->max_message) ||
            cl_map_uint(lim, "max_batch", &l->max_batch) ||
            cl_map_uint(lim, "max_depth", &l->max_depth) ||
            cl_map_uint(lim, "max_objects", &l->max_objects) ||
            cl_map_uint(lim, "max_name", &l->max_name) ||
            cl_map_uint(lim, "file_max", &l->file_max) ||
            cl_map_uint(lim, "max_clients", &l->max_clients) ||
            cl_map_uint(lim, "max_writers", &l->max_writers) ||
            cl_map_uint(lim, "max_handles", &l->max_handles) ||
            cl_map_uint(lim, "max_bytes", &l->max_bytes) ||
            cl_map_uint(lim, "min_free", &l->min_free))
            return cl_bad_result(c, "hello", "a limit is not an unsigned integer");
    }
    /* Direct reads need arena_fds (PROTOCOL.md: check methods before
     * calling a method newer than protocol 1's first table). */
    c->direct = 0;
    c->max_fds = 1;
    if (c->direct_opt && (methods = cl_map_get(res, "methods")) != NULL &&
        methods->type == MSGPACK_OBJECT_ARRAY) {
        const char *name = proto_method_name(PROTO_M_ARENA_FDS);
        for (uint32_t i = 0; i < methods->via.array.size; i++) {
            const msgpack_object *m = &methods->via.array.ptr[i];
            if (m->type == MSGPACK_OBJECT_STR && m->via.str.size == strlen(name) &&
                memcmp(m->via.str.ptr, name, m->via.str.size) == 0)
                c->direct = 1;
        }
        if (lim != NULL && cl_map_uint(lim, "max_fds", &max_fds) == 0 && max_fds > 0)
            c->max_fds = max_fds < CL_MAX_FDS ? (uint32_t)max_fds : CL_MAX_FDS;
    }
    if (info.limits.max_message != 0 && info.limits.max_message < 4096)
        return cl_fail(c, FARENA_EPROTO, "farenad's max_message (%" PRIu64 ") is unusably small",
                       info.limits.max_message);
    c->info = info;
    c->max_message = info.limits.max_message ? info.limits.max_message : PROTO_MAX_MESSAGE_DEFAULT;
    /* Lengths travel in 32-bit headers and the scanner counts in 32 bits: a
     * larger announced limit is used as 4 GiB - 1. */
    if (c->max_message > UINT32_MAX)
        c->max_message = UINT32_MAX;
    c->max_batch = info.limits.max_batch ? info.limits.max_batch : PROTO_MAX_BATCH_DEFAULT;
    c->max_objects = info.limits.max_objects ? info.limits.max_objects : PROTO_MAX_OBJECTS_DEFAULT;
    if (c->max_objects < 64)
        c->max_objects = 64;
    return 0;
}

/* Builds the response scanner for the current limits. */
static int make_scanner(farena_client *c)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    struct proto_scan *s;
    uint64_t mm = c->max_message + RX_SLACK;
    uint64_t objs = 4 * c->max_batch + 4096;

    lim.max_message = mm > UINT32_MAX ? UINT32_MAX : (uint32_t)mm;
    if (objs > lim.max_objects)
        lim.max_objects = objs > UINT32_MAX ? UINT32_MAX : (uint32_t)objs;
    s = proto_scan_new(&lim);
    if (s == NULL)
        return cl_fail(c, FARENA_ENOMEM, "out of memory");
    proto_scan_free(c->scan);
    c->scan = s;
    /* Bytes of an unfinished message are fed again to the new scanner. */
    c->rx_scan = c->rx_start;
    return 0;
}

/* Sets the socket's receive and send timeouts (0 = none). */
static int set_sock_timeouts(int fd, int ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Sends hello with a small client_info map and keeps what comes back. */
static int do_hello(farena_client *c)
{
    const msgpack_object *res = NULL;
    const char *ver = farena_version_string();
    int err = cl_ready(c);

    if (err != 0)
        return err;
    cl_begin(c, PROTO_M_HELLO, 1);
    msgpack_pack_map(&c->pk, 2);
    msgpack_pack_str(&c->pk, 6);
    msgpack_pack_str_body(&c->pk, "client", 6);
    msgpack_pack_str(&c->pk, 9);
    msgpack_pack_str_body(&c->pk, "libfarena", 9);
    msgpack_pack_str(&c->pk, 7);
    msgpack_pack_str_body(&c->pk, "version", 7);
    msgpack_pack_str(&c->pk, strlen(ver));
    msgpack_pack_str_body(&c->pk, ver, strlen(ver));
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    err = hello_parse(c, res);
    if (err != 0)
        return err;
    return make_scanner(c);
}

/* Maps the page that tells a forked child (see farena_client.alive); the
 * client falls back to getpid() where the kernel has no MADV_WIPEONFORK. */
static void alive_init(farena_client *c)
{
#ifdef MADV_WIPEONFORK
    void *page = mmap(NULL, ALIVE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (page != MAP_FAILED && madvise(page, ALIVE_PAGE, MADV_WIPEONFORK) == 0) {
        c->alive = page;
        *c->alive = 1;
    } else if (page != MAP_FAILED) {
        munmap(page, ALIVE_PAGE);
    }
#else
    (void)c;
#endif
}

/* Allocates an unconnected client. */
static farena_client *client_new(void)
{
    farena_client *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->fd = -1;
    c->pid = getpid();
    c->next_msgid = 1;
    c->max_message = PROTO_MAX_MESSAGE_DEFAULT;
    c->max_batch = PROTO_MAX_BATCH_DEFAULT;
    c->max_objects = PROTO_MAX_OBJECTS_DEFAULT;
    if (!msgpack_zone_init(&c->zone, 8192)) {
        free(c);
        return NULL;
    }
    msgpack_packer_init(&c->pk, c, tx_write);
    if (make_scanner(c) != 0) {
        msgpack_zone_destroy(&c->zone);
        free(c);
        return NULL;
    }
    alive_init(c);
    return c;
}

/* Frees a client's memory and descriptors. */
static void client_free(farena_client *c)
{
    dr_fini(c);
    cl_fds_drop(c);
    if (c->fd >= 0)
        close(c->fd);
    proto_scan_free(c->scan);
    msgpack_zone_destroy(&c->zone);
    free(c->tx);
    free(c->rx);
    free(c->reqs);
    if (c->alive != NULL)
        munmap(c->alive, ALIVE_PAGE);
    free(c);
}

/* The size of struct farena_connect_options in 0.1 (its first version):
 * the smallest a caller may pass. */
#define CONNECT_OPTIONS_V1 (offsetof(struct farena_connect_options, max_fds) + sizeof(unsigned))

/* Connects with options and reports the reason of a failure. */
int farena_connect_opts(const char *socket_path, const struct farena_connect_options *opts,
                        farena_client **out, char *errbuf, size_t errcap)
{
    struct farena_connect_options o = FARENA_CONNECT_OPTIONS_INIT;
    struct sockaddr_un sa;
    farena_client *c;
    int err, rc, timeout_ms;

    if (errbuf != NULL && errcap > 0)
        errbuf[0] = '\0';
    if (out != NULL)
        *out = NULL;
    if (opts != NULL && opts->size >= CONNECT_OPTIONS_V1)
        memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    timeout_ms = o.timeout_ms;
    if (out == NULL || timeout_ms < 0 || (errbuf == NULL && errcap > 0) ||
        (opts != NULL && opts->size < CONNECT_OPTIONS_V1)) {
        if (errbuf != NULL && errcap > 0)
            snprintf(errbuf, errcap, "invalid argument");
        return FARENA_EINVAL;
    }
    c = client_new();
    if (c == NULL) {
        if (errbuf != NULL && errcap > 0)
            snprintf(errbuf, errcap, "out of memory");
        return FARENA_ENOMEM;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (farena_socket_path(socket_path, sa.sun_path, sizeof(sa.sun_path)) != 0) {
        err = cl_fail(c, FARENA_ECONNECT, "socket path too long (at most %zu bytes)",
                      sizeof(sa.sun_path) - 1);
        goto fail;
    }
    snprintf(c->path, sizeof(c->path), "%s", sa.sun_path);
    dr_init(c, o.direct, o.max_fds);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        err = cl_fail(c, FARENA_ECONNECT, "socket: %s", strerror(errno));
        goto fail;
    }
    c->timeout_ms = timeout_ms;
    if (timeout_ms > 0 && set_sock_timeouts(c->fd, timeout_ms) != 0) {
        err = cl_fail(c, FARENA_ECONNECT, "setsockopt: %s", strerror(errno));
        goto fail;
    }
    do
        rc = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int e = errno;
        if (e == EAGAIN || e == EINPROGRESS)
            err = cl_fail(c, FARENA_ETIMEDOUT, "cannot connect to farenad at %s: %s", sa.sun_path,
                          "timed out (its queue of new connections is full)");
        else
            err = cl_fail(c, FARENA_ECONNECT, "cannot connect to farenad at %s: %s%s", sa.sun_path,
                          strerror(e),
                          e == ENOENT || e == ECONNREFUSED ? " (is farenad running?)" : "");
        goto fail;
    }
    err = do_hello(c);
    if (err != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    if (errbuf != NULL && errcap > 0)
        snprintf(errbuf, errcap, "%s", c->errmsg);
    client_free(c);
    return err;
}

/* Connects with a time limit and the default options. */
int farena_connect_ex(const char *socket_path, int timeout_ms, farena_client **out, char *errbuf,
                      size_t errcap)
{
    struct farena_connect_options o = FARENA_CONNECT_OPTIONS_INIT;

    o.timeout_ms = timeout_ms;
    return farena_connect_opts(socket_path, &o, out, errbuf, errcap);
}

/* Connects with no time limit. */
int farena_connect(const char *socket_path, farena_client **out)
{
    return farena_connect_ex(socket_path, 0, out, NULL, 0);
}

/* Closes; in a forked child only the child's copies go. */
void farena_close(farena_client *c)
{
    if (c == NULL)
        return;
    /* shutdown() acts on the socket every process shares, so only the
     * process that connected may end the connection: the daemon then sees
     * the close at once even if a child still holds a copy of the fd. */
    if (c->fd >= 0 && !cl_forked(c))
        shutdown(c->fd, SHUT_RDWR);
    client_free(c);
}

/* Returns the last failure's details. */
const char *farena_errmsg(const farena_client *c)
{
    if (c == NULL)
        return "no client (NULL)";
    return c->errmsg;
}

/* Sets the call time limit. */
int farena_set_timeout(farena_client *c, int timeout_ms)
{
    if (c == NULL)
        return FARENA_EINVAL;
    if (cl_forked(c))
        return cl_ready(c);
    if (timeout_ms < 0)
        return cl_fail(c, FARENA_EINVAL, "timeout must be >= 0 ms");
    if (set_sock_timeouts(c->fd, timeout_ms) != 0)
        return cl_fail(c, FARENA_EINVAL, "setsockopt: %s", strerror(errno));
    c->timeout_ms = timeout_ms;
    c->errmsg[0] = '\0';
    return 0;
}

/* Copies the hello answer kept at connect. */
int farena_server(const farena_client *c, struct farena_server_info *out)
{
    if (c == NULL || out == NULL)
        return FARENA_EINVAL;
    *out = c->info;
    return 0;
}

/* Sends hello again and refreshes the limits. */
int farena_hello(farena_client *c, struct farena_server_info *out)
{
    int err = do_hello(c);

    if (err != 0)
        return err;
    if (out != NULL)
        *out = c->info;
    return 0;
}
