/* Private to the storage engine (store.c, store_writer.c): the structures
 * both halves share and their error helpers. Nothing outside daemon/store*.c
 * includes this. */
#ifndef FARENA_STORE_IMPL_H
#define FARENA_STORE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The per-writer append buffer, 64 KiB by default.
 *
 * Why buffer at all: the typical client pushes many small payloads (tree
 * nodes, log records of a few hundred bytes). One pwrite per push would cost
 * a system call each; with 64 KiB of buffer a stream of 100-byte pushes
 * costs one system call per ~650 pushes.
 *
 * Why 64 KiB and not more: at that size the fixed cost of a write (a couple
 * of microseconds) is already small next to copying 64 KiB into the page
 * cache, so a bigger buffer buys little, while the daemon may hold many
 * writers at once (max_writers per connection times max_clients) and the
 * design wants payload bytes on disk, not in the daemon's memory. The buffer
 * is allocated on the first small push and freed at finish, so writers fed
 * only large pushes never allocate one.
 *
 * A push that does not fit in what is left of the buffer (a large push, or a
 * small one straddling the end) is written together with the buffered bytes
 * by one pwritev, so large payloads are never copied and each flush is a
 * single system call. */
#define STORE_WRITE_BUFFER_DEFAULT ((size_t)64 << 10)

/* The engine. Counters are written only from the event-loop thread. */
struct store {
    char *dir; /* absolute scratch directory, owned */
    uint64_t max_bytes;
    uint64_t min_free;
    uint64_t file_max;
    size_t wbuf_cap;
    int (*free_bytes)(void *ctx, const char *dir, uint64_t *avail);
    void *free_bytes_ctx;
    void (*on_file_free)(void *ctx, uint64_t tag);
    void *on_file_free_ctx;

    uint64_t writers;
    uint64_t files;
    uint64_t arenas;
    uint64_t bytes_on_disk; /* accepted by live writers (buffered included) + live files */
    uint64_t bytes_written;

    /* The free-space floor (see floor_check): bytes sitting in writer buffers,
     * and how many more bytes may be accepted before the floor by our own
     * accounting since the last probe. */
    uint64_t buffered;
    uint64_t headroom;
    bool probed;
};

/* A finished file: immutable contents, reference-counted. */
struct store_file {
    struct store *st;
    int fd;
    uint16_t index;
    uint64_t size;
    uint64_t tag;
    uint64_t refs;
};

/* Writes errno value e's description, first letter lower-cased, into buf
 * (size bytes) and returns buf. Thread-safe. */
const char *store_errstr(int e, char *buf, size_t size);

#endif
