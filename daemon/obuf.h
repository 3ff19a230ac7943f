/* A growable byte buffer that a batch's responses are packed into, payloads
 * of small gets included (pread straight into it through obuf_reserve()),
 * before they go to a connection's evbuffer in one evbuffer_add() per
 * batch: msgpack's packer writes a few bytes at a time, and an evbuffer call
 * per write (or a reserve/commit per response) is slow. */
#ifndef FARENA_DAEMON_OBUF_H
#define FARENA_DAEMON_OBUF_H

#include <stddef.h>

#include <event2/buffer.h>
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

/* Moves b's bytes to the end of out and empties b. A few KiB or more move
 * without a copy: out takes b's memory (freeing it once written) and b gets
 * a fresh buffer. Less is copied and b keeps its memory (unless it grew past
 * a batch's usual size). Returns 0 or -1 (ENOMEM; b unchanged). */
int obuf_flush(struct obuf *b, struct evbuffer *out);

/* Appends n bytes at p to out (which may end in a sendfile segment).
 * libevent 2.1 sizes the chain evbuffer_add() creates after a file segment
 * from that segment's file offset plus length: an 11-byte header behind a
 * payload at offset 40 MiB cost a 40 MiB malloc (an mmap and munmap per
 * reply). Reserved space is sized by the request, so it goes through
 * evbuffer_reserve_space(). Returns 0
 * or -1 (ENOMEM; out unchanged). */
int obuf_append_to(struct evbuffer *out, const void *p, size_t n);

/* Cuts b back to len bytes (len <= b->len) and clears failed. */
void obuf_truncate(struct obuf *b, size_t len);

/* Frees b's memory; b is empty afterwards. */
void obuf_fini(struct obuf *b);

#endif
