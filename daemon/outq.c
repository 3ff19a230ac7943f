/* A connection's ordered replies; see outq.h. */
#include "outq.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto_codec.h"

/* A slot's buffer always has room for an error response, so a failure
 * never needs memory: [1, msgid, [code, message, {"item": k}], nil] with a
 * message of at most 160 bytes packs into well under this. */
#define OUTQ_SLOT_MIN 288u
/* Pieces handed to one sendmsg. */
#define OUTQ_IOV 64
/* Slot buffers of at least OUTQ_SPARE_MIN bytes (large gets' replies) are
 * kept for the connection's next ones, OUTQ_SPARE_TOTAL bytes at most: a
 * fresh large block is a fresh mapping whose every page faults in, which
 * cost a stream of 1 MiB gets more than the reads themselves. They count
 * in the shared total like queued replies; outq_trim_spares() gives them
 * back (on idle, or when the total is at its bound). */
#define OUTQ_SPARE_MIN   (64u << 10)
#define OUTQ_SPARE_TOTAL (8u << 20)

/* A kept buffer; the struct lives in the buffer's own first bytes. */
struct outq_spare {
    struct outq_spare *next;
    size_t cap;
};

/* A slot, or a frozen piece of the tail (pending 0 from the start). */
struct outq_slot {
    struct outq_slot *next;
    struct outq *q;
    struct obuf b;
    size_t sent;      /* bytes of b already on the socket */
    uint64_t counted; /* bytes of b counted in the queue's totals */
    uint32_t pending; /* parts not yet done */
    uint32_t msgid;
    unsigned flags;
    int failed;
    enum proto_err code;
    char msg[160];
    int64_t item; /* the failing batch item, or -1 */
    int *fds;     /* descriptors to pass with the first byte (owned), or NULL */
    size_t nfds;
    /* Bytes that go out after b, not through memory: part_left bytes of
     * the file part_fd from part_off with sendfile (outq_file: an element
     * whose b is empty), or of the pipe part_fd with splice
     * (outq_slot_attach_pipe). part_done(part_arg, sent) runs once, when
     * they are all out (sent 1) or dropped. */
    int part_is_file;
    int part_fd;
    uint64_t part_off, part_left;
    void (*part_done)(void *arg, int sent);
    void *part_arg;
};

struct outq {
    struct outq_slot *head, *last; /* the chain, oldest first */
    struct obuf tail;              /* after the whole chain */
    size_t tail_sent;
    uint64_t chain_bytes; /* unsent bytes of the chain (slots: reserved) */
    uint32_t busy;        /* slots waiting */
    uint32_t blocking;    /* blocking slots waiting */
    uint64_t *total;
    void (*ready)(void *arg);
    void *arg;
    struct outq_spare *spare; /* large slot buffers kept for reuse */
    size_t spare_bytes;
};

/* Creates a queue; see outq.h. */
struct outq *outq_new(void (*ready)(void *arg), void *arg, uint64_t *total)
{
    struct outq *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->ready = ready;
    q->arg = arg;
    q->total = total;
    return q;
}

/* Adds delta (possibly negative) to the byte counts. */
static void outq_count(struct outq *q, int64_t delta)
{
    q->chain_bytes = (uint64_t)((int64_t)q->chain_bytes + delta);
    if (q->total != NULL)
        *q->total = (uint64_t)((int64_t)*q->total + delta);
}

/* Closes the descriptors a slot still holds. */
static void slot_close_fds(struct outq_slot *s)
{
    for (size_t i = 0; i < s->nfds; i++)
        close(s->fds[i]);
    free(s->fds);
    s->fds = NULL;
    s->nfds = 0;
}

/* Lets go of a slot's part: its bytes are out (part_left 0) or never
 * will be (counted out of the back-pressure bytes). */
static void slot_drop_part(struct outq_slot *s)
{
    if (s->part_done == NULL)
        return;
    s->q->chain_bytes -= s->part_left;
    s->part_done(s->part_arg, s->part_left == 0);
    s->part_done = NULL;
    s->part_left = 0;
}

/* Frees one chain element, keeping a large buffer as the spare. */
static void slot_free(struct outq_slot *s)
{
    struct outq *q = s->q;

    slot_close_fds(s);
    slot_drop_part(s);
    if (s->b.cap >= OUTQ_SPARE_MIN && q->spare_bytes + s->b.cap <= OUTQ_SPARE_TOTAL) {
        struct outq_spare *sp = (struct outq_spare *)(void *)s->b.p;

        sp->cap = s->b.cap;
        sp->next = q->spare;
        q->spare = sp;
        q->spare_bytes += sp->cap;
        if (q->total != NULL)
            *q->total += sp->cap;
        s->b.p = NULL;
    }
    obuf_fini(&s->b);
    free(s);
}

/* Frees the queue; see outq.h. */
void outq_free(struct outq *q)
{
    if (q == NULL)
        return;
    assert(q->busy == 0);
    while (q->head != NULL) {
        struct outq_slot *s = q->head;
        q->head = s->next;
        outq_count(q, -(int64_t)(s->counted - s->sent));
        slot_free(s);
    }
    obuf_fini(&q->tail);
    outq_trim(q, 0);
    free(q);
}

/* The packing buffer; see outq.h. */
struct obuf *outq_tail(struct outq *q)
{
    return &q->tail;
}

/* Appends s to the chain. */
static void chain_add(struct outq *q, struct outq_slot *s)
{
    if (q->last != NULL)
        q->last->next = s;
    else
        q->head = s;
    q->last = s;
}

/* Moves the tail's unsent bytes into the chain, so that what is appended
 * next goes out after them. The tail starts over empty. Returns 0 or -1
 * (out of memory). */
static int tail_freeze(struct outq *q)
{
    struct outq_slot *s;

    if (q->tail.len == q->tail_sent)
        return 0;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    s->q = q;
    s->b = q->tail;
    s->sent = q->tail_sent;
    s->counted = s->b.len;
    memset(&q->tail, 0, sizeof(q->tail));
    q->tail_sent = 0;
    chain_add(q, s);
    outq_count(q, (int64_t)(s->counted - s->sent));
    return 0;
}

/* Appends a slot; see outq.h. */
struct outq_slot *outq_slot_new(struct outq *q, uint32_t msgid, size_t size, unsigned flags)
{
    struct outq_slot *s;
    size_t cap = size > OUTQ_SLOT_MIN ? size : OUTQ_SLOT_MIN;

    if (tail_freeze(q) < 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (cap >= OUTQ_SPARE_MIN) {
        for (struct outq_spare **pp = &q->spare; *pp != NULL; pp = &(*pp)->next) {
            struct outq_spare *sp = *pp;

            if (sp->cap >= cap && sp->cap <= 2 * cap) {
                *pp = sp->next;
                q->spare_bytes -= sp->cap;
                if (q->total != NULL)
                    *q->total -= sp->cap;
                cap = sp->cap;
                s->b.p = (char *)sp;
                break;
            }
        }
    }
    if (s->b.p == NULL)
        s->b.p = malloc(cap);
    if (s->b.p == NULL) {
        free(s);
        return NULL;
    }
    s->b.cap = cap;
    s->q = q;
    s->msgid = msgid;
    s->flags = flags;
    s->pending = 1;
    s->counted = size;
    chain_add(q, s);
    outq_count(q, (int64_t)size);
    q->busy++;
    if (flags & OUTQ_BLOCKING)
        q->blocking++;
    return s;
}

/* Appends a file part; see outq.h. */
int outq_file(struct outq *q, int fd, uint64_t off, uint64_t len, void (*done)(void *arg, int sent),
              void *arg)
{
    struct outq_slot *s;

    assert(len > 0);
    if (tail_freeze(q) < 0)
        return -1;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    s->q = q;
    s->part_is_file = 1;
    s->part_fd = fd;
    s->part_off = off;
    s->part_left = len;
    s->part_done = done;
    s->part_arg = arg;
    chain_add(q, s);
    q->chain_bytes += len; /* back-pressure; not memory, so not the total */
    return 0;
}

/* The slot's buffer; see outq.h. */
struct obuf *outq_slot_buf(struct outq_slot *s)
{
    return &s->b;
}

/* Attaches a pipe; see outq.h. */
void outq_slot_attach_pipe(struct outq_slot *s, int rfd, uint64_t len,
                           void (*done)(void *arg, int sent), void *arg)
{
    assert(s->part_done == NULL && s->nfds == 0 && s->pending > 0 && len > 0);
    s->part_fd = rfd;
    s->part_left = len;
    s->part_done = done;
    s->part_arg = arg;
    s->q->chain_bytes += len; /* back-pressure; not memory, so not the total */
}

/* More parts; see outq.h. */
void outq_slot_add(struct outq_slot *s, uint32_t n)
{
    s->pending += n;
}

/* The slot is complete: its bytes are final. */
static void slot_complete(struct outq_slot *s)
{
    struct outq *q = s->q;

    if (s->failed || s->b.failed) {
        msgpack_packer pk;

        if (!s->failed) {
            s->code = PROTO_IO_ERROR;
            strcpy(s->msg, "out of memory");
        }
        obuf_truncate(&s->b, 0);
        obuf_packer(&s->b, &pk);
        proto_pack_error_item(&pk, s->msgid, s->code, s->msg, s->failed ? s->item : -1);
        slot_drop_part(s); /* the error replaces the payload too */
    }
    outq_count(q, (int64_t)s->b.len - (int64_t)s->counted);
    s->counted = s->b.len;
    q->busy--;
    if (s->flags & OUTQ_BLOCKING)
        q->blocking--;
    q->ready(q->arg);
}

/* Attaches descriptors; see outq.h. */
int outq_slot_attach_fds(struct outq_slot *s, const int *fds, size_t n)
{
    int *copy;

    assert(s->fds == NULL && n > 0 && n <= OUTQ_MAX_FDS);
    copy = malloc(n * sizeof(*copy));
    if (copy == NULL)
        return -1;
    memcpy(copy, fds, n * sizeof(*copy));
    s->fds = copy;
    s->nfds = n;
    return 0;
}

/* A part is done; see outq.h. */
void outq_slot_done(struct outq_slot *s)
{
    assert(s->pending > 0);
    if (--s->pending == 0)
        slot_complete(s);
}

/* A part failed; see outq.h. */
void outq_slot_fail(struct outq_slot *s, enum proto_err code, const char *message, int64_t item)
{
    if (!s->failed) {
        size_t n = strlen(message);

        if (n >= sizeof(s->msg))
            n = sizeof(s->msg) - 1;
        memcpy(s->msg, message, n);
        s->msg[n] = '\0';
        s->code = code;
        s->item = item;
        s->failed = 1;
    }
    outq_slot_done(s);
}

/* Waiting slots; see outq.h. */
uint32_t outq_busy(const struct outq *q)
{
    return q->busy;
}

/* Whether a blocking slot waits; see outq.h. */
int outq_blocked(const struct outq *q)
{
    return q->blocking > 0;
}

/* Unsent bytes; see outq.h. */
uint64_t outq_pending(const struct outq *q)
{
    return q->chain_bytes + (q->tail.len - q->tail_sent);
}

/* Whether anything can go out now; see outq.h. */
int outq_sendable(const struct outq *q)
{
    if (q->head != NULL)
        return q->head->pending == 0;
    return q->tail.len > q->tail_sent;
}

/* Drops n sent bytes from the front. */
static void outq_consume(struct outq *q, size_t n)
{
    while (n > 0 && q->head != NULL) {
        struct outq_slot *s = q->head;
        size_t left = s->b.len - s->sent;
        size_t k = n < left ? n : left;

        s->sent += k;
        n -= k;
        outq_count(q, -(int64_t)k);
        if (s->sent < s->b.len || s->part_left > 0)
            return; /* more of it, or its part, goes next */
        q->head = s->next;
        if (q->head == NULL)
            q->last = NULL;
        s->counted = s->sent; /* nothing left counted */
        slot_free(s);
    }
    q->tail_sent += n;
    if (q->tail_sent == q->tail.len) {
        obuf_truncate(&q->tail, 0);
        q->tail_sent = 0;
    }
}

/* Sends the file or pipe part of the slot at the head of the chain (its
 * own bytes are out), at most room bytes, with sendfile or splice; frees
 * the slot once the part is all out. Returns the bytes sent (0: the socket
 * is full), or -1 with errno (EIO: the file ended early, or the pipe held
 * fewer bytes than it should). */
static ssize_t send_part(struct outq *q, int fd, size_t room)
{
    struct outq_slot *s = q->head;
    size_t k = s->part_left < room ? (size_t)s->part_left : room;
    ssize_t rc;

    do {
        if (s->part_is_file) {
            off_t off = (off_t)s->part_off;
            rc = sendfile(fd, s->part_fd, &off, k);
        } else {
            rc = splice(s->part_fd, NULL, fd, NULL, k, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        }
    } while (rc < 0 && errno == EINTR);
    /* A pipe holds every byte still owed, so EAGAIN is the socket. */
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (rc < 0)
        return -1;
    if (rc == 0) {
        errno = EIO;
        return -1;
    }
    s->part_off += (uint64_t)rc;
    s->part_left -= (uint64_t)rc;
    q->chain_bytes -= (uint64_t)rc;
    if (s->part_left == 0) {
        q->head = s->next;
        if (q->head == NULL)
            q->last = NULL;
        slot_free(s);
    }
    return rc;
}

/* Sends what is ready; see outq.h. */
long outq_send(struct outq *q, int fd, size_t budget)
{
    long total = 0;

    while ((size_t)total < budget) {
        struct iovec iov[OUTQ_IOV];
        struct msghdr mh;
        size_t want = 0, room = budget - (size_t)total;
        int n = 0;
        struct outq_slot *s, *fds = NULL;
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * OUTQ_MAX_FDS)];
        } cm;
        ssize_t rc;

        for (s = q->head; s != NULL && n < OUTQ_IOV && want < room; s = s->next) {
            if (s->pending > 0)
                break;
            /* Descriptors travel on their reply's first byte, sent alone
             * (PROTOCOL.md 4.20: a client finds them at the end of the
             * read that brings that byte): stop before such a reply, or
             * send just that byte when it comes first. */
            if (s->nfds > 0 && n > 0)
                break;
            if (s->nfds > 0) {
                iov[0].iov_base = s->b.p + s->sent;
                iov[0].iov_len = 1;
                want = 1;
                n = 1;
                fds = s;
                break;
            }
            if (s->b.len > s->sent) {
                iov[n].iov_base = s->b.p + s->sent;
                iov[n].iov_len = s->b.len - s->sent;
                want += iov[n].iov_len;
                n++;
            }
            if (s->part_left > 0)
                break; /* its part goes out below, after these bytes */
        }
        if (n == 0 && s != NULL && s == q->head && s->pending == 0 && s->part_left > 0) {
            ssize_t k = send_part(q, fd, room);

            if (k < 0)
                return -1;
            total += k;
            if (q->head == s)
                break; /* the socket is full */
            continue;
        }
        if (s == NULL && n < OUTQ_IOV && want < room && q->tail.len > q->tail_sent) {
            iov[n].iov_base = q->tail.p + q->tail_sent;
            iov[n].iov_len = q->tail.len - q->tail_sent;
            want += iov[n].iov_len;
            n++;
        }
        if (n == 0)
            break;
        if (want > room) {
            /* Cut the last piece so the budget holds. */
            iov[n - 1].iov_len -= want - room;
            want = room;
        }
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        if (fds != NULL) {
            memset(&cm, 0, sizeof(cm));
            mh.msg_control = cm.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds->nfds);
            cm.h.cmsg_level = SOL_SOCKET;
            cm.h.cmsg_type = SCM_RIGHTS;
            cm.h.cmsg_len = CMSG_LEN(sizeof(int) * fds->nfds);
            memcpy(CMSG_DATA(&cm.h), fds->fds, sizeof(int) * fds->nfds);
        }
        rc = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (rc < 0)
            return -1;
        if (fds != NULL && rc > 0)
            slot_close_fds(fds); /* the peer has them now: our copies go */
        outq_consume(q, (size_t)rc);
        total += rc;
        if ((size_t)rc < want)
            break; /* the socket is full */
        if (fds != NULL)
            continue; /* the rest of that reply goes in the next sendmsg */
    }
    return total;
}

/* Whether trimming would free anything; see outq.h. */
int outq_trimmable(const struct outq *q, size_t keep)
{
    return q->tail.cap > keep || q->spare != NULL;
}

/* Gives back a large idle tail and the spare; see outq.h. */
void outq_trim(struct outq *q, size_t keep)
{
    if (q->tail.len == 0 && q->tail.cap > keep)
        obuf_fini(&q->tail);
    outq_trim_spares(q);
}

/* Frees the kept reply buffers; see outq.h. */
void outq_trim_spares(struct outq *q)
{
    while (q->spare != NULL) {
        struct outq_spare *sp = q->spare;

        q->spare = sp->next;
        free(sp);
    }
    if (q->total != NULL)
        *q->total -= q->spare_bytes;
    q->spare_bytes = 0;
}
