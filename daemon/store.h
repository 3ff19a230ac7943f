/* The storage engine: farena's model (writers, immutable files, arenas) in C,
 * in-process, with no networking and no msgpack. It is the Rust crate farena
 * 0.3 with every silent failure turned into an error code.
 *
 * Threading: every function except store_get() and the const accessors must
 * be called from one thread at a time (the daemon's event loop).
 * store_get() on an arena that stays referenced may run from any number of
 * threads at once; it takes no lock and touches no shared mutable state. */
#ifndef FARENA_STORE_H
#define FARENA_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "err.h"

struct store;        /* the engine: scratch dir, quota, counters */
struct store_writer; /* an append-only file being written */
struct store_file;   /* a finished, immutable file (reference-counted) */
struct store_arena;  /* an ordered set of files (reference-counted) */

/* A location in an arena, as in the crate's Location. */
struct store_loc {
    uint16_t file_index;
    uint32_t offset;
    uint32_t len;
};

/* Engine configuration, copied by store_new(). Zero fields take defaults. */
struct store_config {
    const char *dir;     /* scratch directory (required; copied) */
    uint64_t max_bytes;  /* quota on all scratch bytes; 0 = unlimited */
    uint64_t min_free;   /* keep this many bytes free on dir's filesystem; 0 = off */
    uint64_t file_max;   /* largest file; 0 = 4 GiB - 1 (tests lower it) */
    size_t write_buffer; /* per-writer append buffer; 0 = default (64 KiB) */
    /* Free-space probe for the min_free floor: stores the bytes available to
     * the daemon on dir's filesystem in *avail, returns 0 or -1 (errno). NULL
     * = statvfs(dir). Tests inject a fake here. */
    int (*free_bytes)(void *ctx, const char *dir, uint64_t *avail);
    void *free_bytes_ctx;
    /* Called when a file's last reference drops, just before it is freed,
     * with the tag set by store_file_set_tag() (0 if none): lets the daemon
     * retire the file's handle. NULL = no callback. */
    void (*on_file_free)(void *ctx, uint64_t tag);
    void *on_file_free_ctx;
};

/* Counters, all since store_new() except the "live" ones. */
struct store_stats {
    uint64_t writers;       /* live writers */
    uint64_t files;         /* live files (finished, referenced) */
    uint64_t arenas;        /* live arenas */
    uint64_t bytes_on_disk; /* scratch bytes held by live writers and files */
    uint64_t bytes_written; /* payload bytes accepted by pushes */
};

/* Creates an engine over cfg->dir (checked to be a writable directory).
 * Returns 0 and *out (freed with store_free), or -1 with *err: bad_request
 * for a bad configuration (no dir, file_max over 4 GiB - 1), io_error for a
 * dir that is missing, not a directory or not writable. */
int store_new(const struct store_config *cfg, struct store **out, struct err *err);

/* Frees the engine. Every writer, file and arena must have been released;
 * objects still alive are a caller bug (asserted in debug builds). */
void store_free(struct store *st);

/* Reads the counters into *out. */
void store_stats_get(const struct store *st, struct store_stats *out);

/* The configured file ceiling (file_max after defaults). */
uint64_t store_file_max(const struct store *st);

/* Creates a writer for file index `index` backed by a new anonymous file
 * (O_TMPFILE, else create-and-unlink) in the scratch dir. Returns 0 and *out
 * (owned by the caller: end it with store_finish, store_into_arena or
 * store_writer_discard), or -1 with *err (io_error, no_space, limit on
 * EMFILE). */
int store_writer_new(struct store *st, uint16_t index, struct store_writer **out, struct err *err);

/* Appends len bytes and stores their location in *loc. An empty push writes
 * nothing and returns len 0 at the current cursor. A push that would take the
 * file past file_max fails with file_full before writing a byte; over the
 * quota or the free-space floor, no_space; ENOSPC no_space; EIO io_error. On
 * any failure the writer keeps every byte pushed before and stays usable. */
int store_push(struct store_writer *w, const void *data, size_t len, struct store_loc *loc,
               struct err *err);

/* ---- asynchronous appends (the daemon's path) ----
 *
 * store_push() and store_finish() write on the calling thread. The daemon
 * must not block its event loop on a write, so it splits an append in
 * three: store_stage() accepts payloads (every check of store_push, and
 * their locations are final) without writing; store_write_take() hands out
 * the one write that makes them durable, which the caller performs
 * elsewhere (the I/O engine); store_write_done() commits or rolls back.
 * Between take and done the writer is busy: no other call may touch it,
 * and the writer's buffer and the staged payloads must stay valid. */

/* One write the store needs: iovcnt pieces, contiguous in the file from
 * off. iov is the writer's (valid until store_write_done); the pieces are
 * the writer's buffer and the payloads given to store_stage(). */
struct store_wreq {
    int fd;
    uint64_t off;
    const struct iovec *iov;
    int iovcnt;
    uint64_t bytes;
};

/* Accepts len bytes at data for w, as store_push() does (same checks, same
 * errors, same location), but writes nothing: small payloads are copied
 * into the writer's buffer; anything that would make the buffer flush is
 * staged by reference, so data must stay valid (and unchanged) until
 * store_write_done(). A failure leaves every earlier accepted payload
 * accepted. */
int store_stage(struct store_writer *w, const void *data, size_t len, struct store_loc *loc,
                struct err *err);

/* The write that the staged payloads need, plus the buffered bytes when
 * flush_all is set (before finish). Returns 1 and fills *req (w is busy
 * until store_write_done), 0 when nothing needs writing, -1 when out of
 * memory (*err; the staged payloads are dropped as by a failed write). */
int store_write_take(struct store_writer *w, int flush_all, struct store_wreq *req,
                     struct err *err);

/* Ends the write of req: errnum 0 commits it; any other errno value cuts
 * the file back, drops every payload staged since the last commit (their
 * locations are void) while the buffered ones stay accepted, and fills
 * *err (no_space for ENOSPC/EDQUOT, else io_error) naming the first dropped
 * payload's offset. Returns 0 or -1. */
int store_write_done(struct store_writer *w, const struct store_wreq *req, int errnum,
                     struct err *err);

/* Bytes pushed so far (the crate's len; 0 means is_empty). */
uint64_t store_writer_len(const struct store_writer *w);

/* The writer's file index. */
uint16_t store_writer_index(const struct store_writer *w);

/* Flushes and turns w into an immutable file with refcount 1, owned by the
 * caller. On success w is gone. On failure (-1, *err: io_error or no_space)
 * w is untouched and still owned by the caller. */
int store_finish(struct store_writer *w, struct store_file **out, struct err *err);

/* Discards w: its file and descriptor vanish, its bytes leave the quota. */
void store_writer_discard(struct store_writer *w);

/* finish + a one-file arena. w must have index 0 (else missing_index, and w
 * is untouched). On success w is gone and *out is an arena with refcount 1;
 * the file is owned by the arena only. */
int store_into_arena(struct store_writer *w, struct store_arena **out, struct err *err);

/* Takes one more reference to f. */
void store_file_ref(struct store_file *f);
/* Drops one reference; at zero the descriptor closes and the bytes leave the
 * quota. */
void store_file_unref(struct store_file *f);
/* A caller-chosen tag kept with the file (the daemon stores its handle). */
void store_file_set_tag(struct store_file *f, uint64_t tag);
uint64_t store_file_tag(const struct store_file *f);
/* The file's size in bytes: the length of everything pushed to it. */
uint64_t store_file_size(const struct store_file *f);
/* f's descriptor, for positional reads; borrowed: valid while f is
 * referenced. Never close, write or seek it. */
int store_file_fd(const struct store_file *f);

/* Builds an arena from n files in any order, each placed at its own index.
 * Errors: empty (n == 0), duplicate_index, missing_index (indices must be
 * exactly 0..n-1). On success the arena holds its own reference to every
 * file (the caller keeps its references) and *out has refcount 1. */
int store_build(struct store *st, struct store_file *const *files, size_t n,
                struct store_arena **out, struct err *err);

/* The low-level form: files[i] must have index i (else index_mismatch, or
 * empty for n == 0). References as in store_build. */
int store_arena_new(struct store *st, struct store_file *const *files, size_t n,
                    struct store_arena **out, struct err *err);

/* Takes one more reference to a. */
void store_arena_ref(struct store_arena *a);
/* Drops one reference; at zero the arena frees and unrefs its files. */
void store_arena_unref(struct store_arena *a);

size_t store_arena_nfiles(const struct store_arena *a);
/* The file at index i (i < nfiles); borrowed, valid while a lives. */
struct store_file *store_arena_file(const struct store_arena *a, size_t i);
/* Sum of the sizes of a's files. */
uint64_t store_arena_bytes(const struct store_arena *a);

/* Checks loc against a in 64-bit arithmetic: out_of_bounds when the file
 * index is not in a, or offset + len is past that file's end (a len-0 loc
 * at the very end is fine). */
int store_check(const struct store_arena *a, struct store_loc loc, struct err *err);

/* Reads loc's bytes into dst (room for loc.len bytes) with pread, retrying
 * short reads and EINTR. Errors: out_of_bounds, io_error. Thread-safe as
 * described at the top of this header. */
int store_get(const struct store_arena *a, struct store_loc loc, void *dst, struct err *err);

/* The descriptor of a's file at index i (reads go through the I/O engine
 * with store_file_fd; this is for inspecting files, as the tests do).
 * Borrowed: valid while a lives; the caller must not close or seek it.
 * -1 (errno EINVAL) if a has no file of that index. */
int store_arena_fd(const struct store_arena *a, uint16_t index);

/* Tells whether dir is on a memory filesystem (tmpfs or ramfs): returns 1
 * (and *fstype = "tmpfs" or "ramfs", static), 0, or -1 with errno. */
int store_dir_in_memory(const char *dir, const char **fstype);

#endif
