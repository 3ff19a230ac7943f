/* Input and output buffers of the load generator and the floor server. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <limits.h>

#include "bench.h"

/* Payloads at least this long are queued by pointer rather than copied. */
#define OBUF_EXT_MIN 4096u

/* Makes room for want more bytes after wr. */
int ibuf_reserve(struct ibuf *b, size_t want)
{
    if (b->cap - b->wr >= want)
        return 0;
    /* Compact only when the bytes moved are fewer than the bytes freed, so a
     * large unread tail is never copied again and again. */
    if (b->rd > 0 && b->wr - b->rd <= b->rd) {
        memmove(b->buf, b->buf + b->rd, b->wr - b->rd);
        b->wr -= b->rd;
        b->rd = 0;
        if (b->cap - b->wr >= want)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 65536;
    while (cap - b->wr < want)
        cap *= 2;
    char *p = realloc(b->buf, cap);
    if (!p)
        return -1;
    b->buf = p;
    b->cap = cap;
    return 0;
}

/* Frees an input buffer. */
void ibuf_free(struct ibuf *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* Appends one segment descriptor. */
static struct obuf_seg *obuf_seg_new(struct obuf *b)
{
    if (b->nseg == b->segcap) {
        size_t cap = b->segcap ? b->segcap * 2 : 64;
        struct obuf_seg *s = realloc(b->segs, cap * sizeof *s);
        if (!s) {
            b->oom = 1;
            return NULL;
        }
        b->segs = s;
        b->segcap = cap;
    }
    return &b->segs[b->nseg++];
}

/* Appends len owned bytes. */
void obuf_add(struct obuf *b, const void *p, size_t len)
{
    if (len == 0)
        return;
    if (b->bcap - b->blen < len) {
        size_t cap = b->bcap ? b->bcap : 4096;
        while (cap - b->blen < len)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->bcap = cap;
    }
    memcpy(b->buf + b->blen, p, len);
    struct obuf_seg *last = b->nseg > b->head ? &b->segs[b->nseg - 1] : NULL;
    if (last && !last->ext && last->off + last->len == b->blen) {
        last->len += len;
    } else {
        struct obuf_seg *s = obuf_seg_new(b);
        if (!s)
            return;
        s->ext = NULL;
        s->off = b->blen;
        s->len = len;
    }
    b->blen += len;
    b->pending += len;
}

/* Appends a formatted string. */
void obuf_printf(struct obuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1;
        return;
    }
    obuf_add(b, tmp, (size_t)n);
}

/* Appends external bytes (copied when short). */
void obuf_ext(struct obuf *b, const void *p, size_t len)
{
    if (len < OBUF_EXT_MIN) {
        obuf_add(b, p, len);
        return;
    }
    struct obuf_seg *s = obuf_seg_new(b);
    if (!s)
        return;
    s->ext = p;
    s->off = 0;
    s->len = len;
    b->pending += len;
}

/* Drops written segments and owned bytes nobody points to any more. */
static void obuf_compact(struct obuf *b)
{
    if (b->head == b->nseg) {
        b->head = b->nseg = 0;
        b->blen = 0;
        b->head_done = 0;
        return;
    }
    if (b->head < 256 && b->head * 2 < b->nseg)
        return;
    size_t first_owned = b->blen;
    for (size_t i = b->head; i < b->nseg; i++) {
        if (!b->segs[i].ext) {
            first_owned = b->segs[i].off;
            break;
        }
    }
    if (first_owned > 0) {
        memmove(b->buf, b->buf + first_owned, b->blen - first_owned);
        b->blen -= first_owned;
        for (size_t i = b->head; i < b->nseg; i++) {
            if (!b->segs[i].ext)
                b->segs[i].off -= first_owned;
        }
    }
    memmove(b->segs, b->segs + b->head, (b->nseg - b->head) * sizeof *b->segs);
    b->nseg -= b->head;
    b->head = 0;
}

/* Writes what the socket takes. */
int obuf_flush(struct obuf *b, int fd)
{
    while (b->pending > 0) {
        struct iovec iov[256];
        int n = 0;
        for (size_t i = b->head; i < b->nseg && n < (int)(sizeof iov / sizeof iov[0]); i++) {
            const struct obuf_seg *s = &b->segs[i];
            const char *base = s->ext ? s->ext : b->buf + s->off;
            size_t skip = i == b->head ? b->head_done : 0;
            iov[n].iov_base = (void *)(uintptr_t)(base + skip);
            iov[n].iov_len = s->len - skip;
            n++;
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        size_t left = (size_t)w;
        b->pending -= left;
        while (left > 0) {
            struct obuf_seg *s = &b->segs[b->head];
            size_t rest = s->len - b->head_done;
            if (left >= rest) {
                left -= rest;
                b->head++;
                b->head_done = 0;
            } else {
                b->head_done += left;
                left = 0;
            }
        }
    }
    obuf_compact(b);
    return 0;
}

/* Frees an output queue. */
void obuf_free(struct obuf *b)
{
    free(b->buf);
    free(b->segs);
    memset(b, 0, sizeof *b);
}

/* msgpack write callback. */
int obuf_msgpack_write(void *data, const char *buf, size_t len)
{
    struct obuf *b = data;
    obuf_add(b, buf, len);
    return b->oom ? -1 : 0;
}
