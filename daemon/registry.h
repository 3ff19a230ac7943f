/* The handle registry: which protocol handle names which store object, which
 * connection owns what, arena names, and every lifetime rule of protocol 1.
 * No networking and no msgpack: the method table calls it, it calls the
 * store, and failures come back as 0 / -1 with a struct err.
 *
 * Handles: one counter from 1 for writers, files and arenas, never reused.
 * A writer and a not-yet-released file belong to one owner (a connection).
 * A writer is usable by its owner only. A file handle lives while the file
 * lives (its owner's reference or any live arena's) and, while it lives, is
 * usable in build/arena_new by any owner; only its owner may release it,
 * and the owner's end drops the owner's reference (a file in no arena then
 * ends). Every peer runs under the daemon's uid, so ownership is about
 * lifetime and cleanup, not isolation; a coordinator building from files
 * its workers finished is the crate's parallel-writing pattern. An arena
 * handle lives while any owner holds a reference to it or any name binds
 * it. */
#ifndef FARENA_DAEMON_REGISTRY_H
#define FARENA_DAEMON_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct reg;       /* the registry: owns the store */
struct reg_owner; /* one connection's holdings */

/* Per-owner caps; copied by reg_new(). Zero fields take the defaults. */
struct reg_config {
    uint32_t max_writers; /* open writers per owner (default 1024) */
    uint32_t max_handles; /* writers + files + arena references (default 65536) */
};

#define REG_MAX_WRITERS_DEFAULT 1024u
#define REG_MAX_HANDLES_DEFAULT 65536u

/* Live counts, for stat and list. */
struct reg_stats {
    uint64_t names; /* bound names */
};

/* What arena_info reports. name points into the registry: valid until the
 * next registry call. */
struct reg_arena_info {
    size_t files;
    uint64_t bytes;
    uint64_t refs;    /* owner references + names */
    const char *name; /* the oldest bound name, or NULL */
    size_t name_len;
};

/* Creates the registry and its store over scfg (copied; its on_file_free
 * hook is the registry's own, so scfg's is ignored). Returns 0 and *out
 * (freed with reg_free), or -1 with *err from store_new. */
int reg_new(const struct store_config *scfg, const struct reg_config *rcfg, struct reg **out,
            struct err *err);

/* Drops every name, then frees the store. Every owner must have been freed
 * first. Arenas still referenced by the store from outside (store_arena_ref)
 * must have been unreferenced too. */
void reg_free(struct reg *r);

/* The store (borrowed; lives as long as r). */
struct store *reg_store(struct reg *r);

/* Counters; see struct reg_stats. */
void reg_stats_get(const struct reg *r, struct reg_stats *out);

/* A new, empty owner. Returns NULL when out of memory. Freed with
 * reg_owner_free(). */
struct reg_owner *reg_owner_new(struct reg *r);

/* Drops everything o holds (writers discarded, owned files released, arena
 * references dropped) and frees o. NULL is a no-op. */
void reg_owner_free(struct reg_owner *o);

/* Open writers and handles o holds (for its caps and for tests). */
uint32_t reg_owner_writers(const struct reg_owner *o);
uint32_t reg_owner_handles(const struct reg_owner *o);

/* Creates a writer for file index `index` owned by o. Errors: limit (o's
 * writer or handle cap, or the daemon out of descriptors), no_space,
 * io_error. */
int reg_writer_new(struct reg_owner *o, uint16_t index, uint64_t *handle, struct err *err);

/* The writer h owned by o (borrowed: valid until o or the writer ends), or
 * NULL with *err no_such_handle. */
struct store_writer *reg_writer(struct reg_owner *o, uint64_t h, struct err *err);

/* Finishes o's writer wh into a file owned by o under a new handle *fh; the
 * writer handle ends. On failure the writer is untouched. */
int reg_finish(struct reg_owner *o, uint64_t wh, uint64_t *fh, struct err *err);

/* Turns o's writer wh (index 0) into a one-file arena; o holds one
 * reference under the new handle *ah. The file gets a handle of its own
 * (arena_files shows it), owned by no connection. */
int reg_into_arena(struct reg_owner *o, uint64_t wh, uint64_t *ah, struct err *err);

/* How reg_build() places files. */
enum reg_build_mode {
    REG_BUILD_ANY_ORDER, /* build: each file at its own index */
    REG_BUILD_IN_ORDER   /* arena_new: position i must hold index i */
};

/* Builds an arena from the n file handles fh: each a live file, owned by o,
 * by another owner, or held by a live arena. o holds one reference under
 * *ah; the files' owners keep theirs. Errors: no_such_handle ("item k: ...":
 * not a file, or a file that has ended), limit, empty, duplicate_index,
 * missing_index, index_mismatch. */
int reg_build(struct reg_owner *o, const uint64_t *fh, size_t n, enum reg_build_mode mode,
              uint64_t *ah, struct err *err);

/* The live arena h (any connection may read it), borrowed until the next
 * registry call that can drop references; or NULL with *err no_such_handle
 * (unknown, dead, or not an arena). */
struct store_arena *reg_arena(const struct reg *r, uint64_t h, struct err *err);

/* The handle of f, a file of a live arena (every such file has one). */
uint64_t reg_file_handle(const struct store_file *f);

/* Fills *out for the live arena h; errors as reg_arena(). */
int reg_arena_info(const struct reg *r, uint64_t h, struct reg_arena_info *out, struct err *err);

/* o takes one more reference to the live arena h (counted: open twice,
 * release twice). Errors: no_such_handle, limit. */
int reg_open(struct reg_owner *o, uint64_t h, struct err *err);

/* Drops what o holds under h: a writer (discarded), an owned file, or one
 * arena reference. A handle o holds nothing of: no_such_handle, and nobody
 * else's holdings change. */
int reg_release(struct reg_owner *o, uint64_t h, struct err *err);

/* Binds name (len bytes, 1..PROTO_MAX_NAME_LEN, no NUL) to the live arena h;
 * the name holds one reference. Errors: bad_request, no_such_handle,
 * name_taken. */
int reg_name(struct reg *r, uint64_t h, const char *name, size_t len, struct err *err);

/* The arena bound to name, without taking a reference; or no_such_name. */
int reg_lookup(const struct reg *r, const char *name, size_t len, uint64_t *h, struct err *err);

/* Removes the name and its reference (the arena may end); or no_such_name. */
int reg_unname(struct reg *r, const char *name, size_t len, struct err *err);

/* One bound name as a listing reports it. name points into the registry:
 * valid until the next registry call that unbinds names. */
struct reg_list_entry {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    uint64_t arena; /* the handle it binds */
    size_t files;
    uint64_t bytes;
    uint64_t refs; /* owner references + names, as in arena_info */
};

/* The first bound name, in byte order (unsigned bytes, a prefix before its
 * extensions), that starts with the plen bytes at prefix (plen 0: any name)
 * and sorts strictly after the alen bytes at after (after NULL: from the
 * start). Returns 1 with *out filled, or 0 when there is none. O(log n), so
 * a listing that resumes with after = the last name it got sees every name
 * bound throughout exactly once, in order, however names change between
 * calls. */
int reg_list_next(const struct reg *r, const char *prefix, size_t plen, const char *after,
                  size_t alen, struct reg_list_entry *out);

#endif
