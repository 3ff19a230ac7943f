/* The packing scratch buffer; see obuf.h. */
#include "obuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Past this, memory is returned after a flush: one huge response must not
 * pin its size for the connection's whole life. */
#define OBUF_KEEP (256u << 10)

/* From this many bytes a flush hands the memory over instead of copying:
 * a malloc for the next batch then costs less than the copy. */
#define OBUF_HANDOVER (4u << 10)

/* Grows the capacity by doubling until n more bytes fit; see obuf.h. */
int obuf_grow(struct obuf *b, size_t n)
{
    size_t ncap = b->cap != 0 ? b->cap : 4096;
    char *np;

    if (b->failed)
        return -1;
    if (b->p != NULL && n <= b->cap - b->len)
        return 0;
    while (ncap - b->len < n) {
        if (ncap > SIZE_MAX / 2) {
            b->failed = 1;
            return -1;
        }
        ncap *= 2;
    }
    if (b->len == 0) {
        /* Nothing to keep: realloc would copy the old block for nothing. */
        free(b->p);
        b->p = NULL;
        b->cap = 0;
        np = malloc(ncap);
    } else {
        np = realloc(b->p, ncap);
    }
    if (np == NULL) {
        b->failed = 1;
        return -1;
    }
    b->p = np;
    b->cap = ncap;
    return 0;
}

/* Appends len bytes. */
int obuf_write(void *data, const char *buf, size_t len)
{
    struct obuf *b = data;
    char *p = obuf_reserve(b, len);

    if (p == NULL)
        return -1;
    memcpy(p, buf, len);
    b->len += len;
    return 0;
}

/* Points pk at b; see obuf.h. */
void obuf_packer(struct obuf *b, msgpack_packer *pk)
{
    msgpack_packer_init(pk, b, obuf_write);
}

/* Frees a buffer handed to an evbuffer once libevent is done with it. */
static void obuf_release(const void *data, size_t len, void *mem)
{
    (void)data;
    (void)len;
    free(mem);
}

/* Hands the bytes to out; see obuf.h. A batch of OBUF_HANDOVER bytes or
 * more is not copied: out takes the memory itself (freed once written) and
 * b starts over in a fresh buffer of the same capacity, since the next
 * batch is likely as big. Smaller batches are copied and the memory kept. */
int obuf_flush(struct obuf *b, struct evbuffer *out)
{
    if (b->len == 0)
        return 0;
    if (b->len >= OBUF_HANDOVER) {
        char *fresh = b->cap <= OBUF_KEEP ? malloc(b->cap) : NULL;
        if ((fresh != NULL || b->cap > OBUF_KEEP) &&
            evbuffer_add_reference(out, b->p, b->len, obuf_release, b->p) == 0) {
            b->p = fresh;
            b->len = 0;
            if (fresh == NULL)
                b->cap = 0;
            return 0;
        }
        free(fresh);
    }
    if (obuf_append_to(out, b->p, b->len) < 0)
        return -1;
    b->len = 0;
    if (b->cap > OBUF_KEEP)
        obuf_fini(b);
    return 0;
}

/* Adds bytes behind what out holds; see obuf.h. */
int obuf_append_to(struct evbuffer *out, const void *p, size_t n)
{
    struct evbuffer_iovec v;

    if (n == 0)
        return 0;
    if (evbuffer_reserve_space(out, (ev_ssize_t)n, &v, 1) < 1)
        return -1;
    memcpy(v.iov_base, p, n);
    v.iov_len = n;
    return evbuffer_commit_space(out, &v, 1);
}

/* Drops bytes past len; see obuf.h. */
void obuf_truncate(struct obuf *b, size_t len)
{
    if (len < b->len)
        b->len = len;
    b->failed = 0;
}

/* Releases the memory; see obuf.h. */
void obuf_fini(struct obuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}
