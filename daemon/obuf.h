/* A growable byte buffer that replies are packed into (the reply queue's
 * tail and its slots): msgpack's packer writes a few bytes at a time, and
 * a call into anything heavier per write is slow. */
#ifndef FARENA_DAEMON_OBUF_H
#define FARENA_DAEMON_OBUF_H

#include <stddef.h>

#include <msgpack.h>

/* Plain struct, embedded by its user; zero-initialised it is empty. It owns
 * p. A write that cannot allocate sets failed; the bytes written since the
 * last check are then incomplete and the caller must drop them. */
struct obuf {
    char *p;
    size_t len;
    size_t cap;
    int failed;
};

/* msgpack_packer write callback: data is a struct obuf *. */
int obuf_write(void *data, const char *buf, size_t len);

/* Makes room for n more bytes past b->len (growing once, to the next
 * doubling that fits). Returns 0, or -1 and sets failed (no memory, or b
 * had already failed). */
int obuf_grow(struct obuf *b, size_t n);

/* Returns where n writable bytes start (b->p + b->len), growing b when
 * needed, or NULL (failed set). Nothing is appended yet: the caller writes
 * at most n bytes there and calls obuf_commit() with how many it wrote, or
 * walks away and leaves b as it was. The pointer stays valid until the next
 * call that writes to or frees b. */
static inline char *obuf_reserve(struct obuf *b, size_t n)
{
    if (b->failed || b->p == NULL || n > b->cap - b->len) {
        if (obuf_grow(b, n) < 0)
            return NULL;
    }
    return b->p + b->len;
}

/* Appends the n bytes the caller wrote at the pointer obuf_reserve() gave
 * (n at most what was reserved). */
static inline void obuf_commit(struct obuf *b, size_t n)
{
    b->len += n;
}

/* Points pk at b. */
void obuf_packer(struct obuf *b, msgpack_packer *pk);

/* Cuts b back to len bytes (len <= b->len) and clears failed. */
void obuf_truncate(struct obuf *b, size_t len);

/* Frees b's memory; b is empty afterwards. */
void obuf_fini(struct obuf *b);

#endif
