/* The packing buffer; see obuf.h. */
#include "obuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
