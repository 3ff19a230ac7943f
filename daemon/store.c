/* The storage engine: the engine itself, immutable reference-counted files,
 * arenas and reads. Writers live in store_writer.c. See store.h for the
 * contract. */
#include "store_impl.h"

#include "proto_limits.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

/* An arena: files[i] has index i; holds one reference on each file. */
struct store_arena {
    struct store *st;
    uint64_t refs;
    uint64_t bytes;
    size_t n;
    struct store_file *files[];
};

/* Describes errno value e in lower case (see store_impl.h). */
const char *store_errstr(int e, char *buf, size_t size)
{
    const char *s = strerror_r(e, buf, size);

    if (s != buf) {
        snprintf(buf, size, "%s", s);
        s = buf;
    }
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return s;
}

/* The default free-space probe: statvfs(dir), blocks available to us. */
static int default_free_bytes(void *ctx, const char *dir, uint64_t *avail)
{
    struct statvfs sv;

    (void)ctx;
    if (statvfs(dir, &sv) != 0)
        return -1;
    *avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return 0;
}

/* Creates the engine after checking the scratch dir (see store.h). */
int store_new(const struct store_config *cfg, struct store **out, struct err *err)
{
    struct store *st;
    struct stat sb;
    char eb[96];
    char *dir;

    if (!cfg->dir || !cfg->dir[0]) {
        err_set(err, PROTO_BAD_REQUEST, "scratch dir not set");
        return -1;
    }
    if (cfg->file_max > PROTO_FILE_MAX) {
        err_set(err, PROTO_BAD_REQUEST, "file_max %" PRIu64 " is over %" PRIu32, cfg->file_max,
                (uint32_t)PROTO_FILE_MAX);
        return -1;
    }
    if (stat(cfg->dir, &sb) != 0) {
        err_set(err, PROTO_IO_ERROR, "scratch dir %s: %s", cfg->dir,
                store_errstr(errno, eb, sizeof eb));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        err_set(err, PROTO_IO_ERROR, "scratch dir %s: not a directory", cfg->dir);
        return -1;
    }
    if (access(cfg->dir, W_OK | X_OK) != 0) {
        err_set(err, PROTO_IO_ERROR, "scratch dir %s: %s", cfg->dir,
                store_errstr(errno, eb, sizeof eb));
        return -1;
    }
    /* Absolute, so a later chdir of the daemon cannot move the scratch dir. */
    dir = realpath(cfg->dir, NULL);
    if (!dir) {
        err_set(err, PROTO_IO_ERROR, "scratch dir %s: %s", cfg->dir,
                store_errstr(errno, eb, sizeof eb));
        return -1;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        err_set(err, PROTO_IO_ERROR, "scratch dir %s: out of memory", cfg->dir);
        free(dir);
        return -1;
    }
    st->dir = dir;
    st->max_bytes = cfg->max_bytes;
    st->min_free = cfg->min_free;
    st->file_max = cfg->file_max ? cfg->file_max : PROTO_FILE_MAX;
    st->wbuf_cap = cfg->write_buffer ? cfg->write_buffer : STORE_WRITE_BUFFER_DEFAULT;
    st->free_bytes = cfg->free_bytes ? cfg->free_bytes : default_free_bytes;
    st->free_bytes_ctx = cfg->free_bytes_ctx;
    st->on_file_free = cfg->on_file_free;
    st->on_file_free_ctx = cfg->on_file_free_ctx;
    *out = st;
    return 0;
}

/* Frees the engine; everything it made must be gone. */
void store_free(struct store *st)
{
    if (!st)
        return;
    assert(st->writers == 0 && st->files == 0 && st->arenas == 0);
    free(st->dir);
    free(st);
}

/* Copies the counters out. */
void store_stats_get(const struct store *st, struct store_stats *out)
{
    out->writers = st->writers;
    out->files = st->files;
    out->arenas = st->arenas;
    out->bytes_on_disk = st->bytes_on_disk;
    out->bytes_written = st->bytes_written;
}

/* The file ceiling after defaults. */
uint64_t store_file_max(const struct store *st)
{
    return st->file_max;
}

/* Allocates an arena of n empty slots with refcount 1 (not yet counted). */
static struct store_arena *arena_alloc(struct store *st, size_t n)
{
    struct store_arena *a;

    if (n > (SIZE_MAX - sizeof(*a)) / sizeof(a->files[0]))
        return NULL;
    a = calloc(1, sizeof(*a) + n * sizeof(a->files[0]));
    if (!a)
        return NULL;
    a->st = st;
    a->refs = 1;
    a->n = n;
    return a;
}

/* finish + a one-file arena; needs index 0. */
int store_into_arena(struct store_writer *w, struct store_arena **out, struct err *err)
{
    struct store_arena *a;
    struct store_file *f;

    if (store_writer_index(w) != 0) {
        err_set(err, PROTO_MISSING_INDEX,
                "into_arena: writer has index %" PRIu16 ", a one-file arena needs index 0",
                store_writer_index(w));
        return -1;
    }
    a = arena_alloc(NULL, 1);
    if (!a) {
        err_set(err, PROTO_IO_ERROR, "into_arena: out of memory");
        return -1;
    }
    if (store_finish(w, &f, err) != 0) {
        free(a);
        return -1;
    }
    /* The arena takes over the caller's only reference. */
    a->st = f->st;
    a->files[0] = f;
    a->bytes = f->size;
    f->st->arenas++;
    *out = a;
    return 0;
}

/* One more reference to f. */
void store_file_ref(struct store_file *f)
{
    f->refs++;
}

/* Drops a reference; the last one closes the file and tells on_file_free. */
void store_file_unref(struct store_file *f)
{
    struct store *st;

    if (!f)
        return;
    assert(f->refs > 0);
    if (--f->refs > 0)
        return;
    st = f->st;
    if (st->on_file_free)
        st->on_file_free(st->on_file_free_ctx, f->tag);
    close(f->fd);
    st->bytes_on_disk -= f->size;
    st->files--;
    st->probed = false;
    free(f);
}

/* Keeps the caller's tag with the file. */
void store_file_set_tag(struct store_file *f, uint64_t tag)
{
    f->tag = tag;
}

/* The caller's tag (0 if never set). */
uint64_t store_file_tag(const struct store_file *f)
{
    return f->tag;
}

/* The file's descriptor (borrowed). */
int store_file_fd(const struct store_file *f)
{
    return f->fd;
}

/* The file's size in bytes. */
uint64_t store_file_size(const struct store_file *f)
{
    return f->size;
}

/* Takes a reference on every slot of a, counts it, and hands it out. */
static void arena_commit(struct store_arena *a, struct store_arena **out)
{
    for (size_t i = 0; i < a->n; i++) {
        store_file_ref(a->files[i]);
        a->bytes += a->files[i]->size;
    }
    a->st->arenas++;
    *out = a;
}

/* An arena from files in any order; indices must be exactly 0..n-1. */
int store_build(struct store *st, struct store_file *const *files, size_t n,
                struct store_arena **out, struct err *err)
{
    struct store_arena *a;
    /* One bit per possible u16 index: duplicates are found even among
     * indices that are out of range for n. */
    uint64_t seen[(UINT16_MAX + 1) / 64];

    if (n == 0) {
        err_set(err, PROTO_EMPTY, "no files to build an arena from");
        return -1;
    }
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n; i++) {
        uint16_t x = files[i]->index;

        if (seen[x / 64] & ((uint64_t)1 << (x % 64))) {
            err_set(err, PROTO_DUPLICATE_INDEX, "file index %" PRIu16 " appears more than once", x);
            return -1;
        }
        seen[x / 64] |= (uint64_t)1 << (x % 64);
    }
    /* n distinct u16 indices: n <= 65536, and each of 0..n-1 must be there. */
    for (size_t i = 0; i < n; i++) {
        if (!(seen[i / 64] & ((uint64_t)1 << (i % 64)))) {
            err_set(err, PROTO_MISSING_INDEX,
                    "file index %zu is missing (%zu files need indices 0..%zu)", i, n, n - 1);
            return -1;
        }
    }
    a = arena_alloc(st, n);
    if (!a) {
        err_set(err, PROTO_IO_ERROR, "build of %zu files: out of memory", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        a->files[files[i]->index] = files[i];
    arena_commit(a, out);
    return 0;
}

/* An arena from files already in index order. */
int store_arena_new(struct store *st, struct store_file *const *files, size_t n,
                    struct store_arena **out, struct err *err)
{
    struct store_arena *a;

    if (n == 0) {
        err_set(err, PROTO_EMPTY, "no files to make an arena from");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (files[i]->index != i) {
            err_set(err, PROTO_INDEX_MISMATCH,
                    "position %zu holds file index %" PRIu16 " (must be %zu)", i, files[i]->index,
                    i);
            return -1;
        }
    }
    a = arena_alloc(st, n);
    if (!a) {
        err_set(err, PROTO_IO_ERROR, "arena of %zu files: out of memory", n);
        return -1;
    }
    memcpy(a->files, files, n * sizeof(files[0]));
    arena_commit(a, out);
    return 0;
}

/* One more reference to a. */
void store_arena_ref(struct store_arena *a)
{
    a->refs++;
}

/* Drops a reference; the last one frees a and its file references. */
void store_arena_unref(struct store_arena *a)
{
    if (!a)
        return;
    assert(a->refs > 0);
    if (--a->refs > 0)
        return;
    a->st->arenas--;
    for (size_t i = 0; i < a->n; i++)
        store_file_unref(a->files[i]);
    free(a);
}

/* Number of files in a. */
size_t store_arena_nfiles(const struct store_arena *a)
{
    return a->n;
}

/* The file at index i, borrowed. */
struct store_file *store_arena_file(const struct store_arena *a, size_t i)
{
    assert(i < a->n);
    return a->files[i];
}

/* Total bytes of a's files. */
uint64_t store_arena_bytes(const struct store_arena *a)
{
    return a->bytes;
}

/* Bounds check of loc in 64-bit arithmetic. */
int store_check(const struct store_arena *a, struct store_loc loc, struct err *err)
{
    uint64_t size;

    if (loc.file_index >= a->n) {
        err_set(err, PROTO_OUT_OF_BOUNDS, "file index %" PRIu16 " is not in the arena (%zu files)",
                loc.file_index, a->n);
        return -1;
    }
    size = a->files[loc.file_index]->size;
    if ((uint64_t)loc.offset + loc.len > size) {
        err_set(err, PROTO_OUT_OF_BOUNDS,
                "offset %" PRIu32 " + len %" PRIu32 " is past the end of file %" PRIu16
                " (size %" PRIu64 ")",
                loc.offset, loc.len, loc.file_index, size);
        return -1;
    }
    return 0;
}

/* Reads loc with pread; no locks, no shared writes, so thread-safe. */
int store_get(const struct store_arena *a, struct store_loc loc, void *dst, struct err *err)
{
    const struct store_file *f;
    unsigned char *p = dst;
    uint64_t done = 0;
    char eb[96];

    if (store_check(a, loc, err) != 0)
        return -1;
    f = a->files[loc.file_index];
    while (done < loc.len) {
        uint64_t off = (uint64_t)loc.offset + done;
        ssize_t n = pread(f->fd, p + done, (size_t)(loc.len - done), (off_t)off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_set(err, PROTO_IO_ERROR, "read of file %" PRIu16 " at offset %" PRIu64 ": %s",
                    loc.file_index, off, store_errstr(errno, eb, sizeof eb));
            return -1;
        }
        if (n == 0) {
            err_set(err, PROTO_IO_ERROR,
                    "file %" PRIu16 " ends at %" PRIu64 ", short of its size %" PRIu64,
                    loc.file_index, off, f->size);
            return -1;
        }
        done += (uint64_t)n;
    }
    return 0;
}

/* The descriptor of a's file at index, or -1 (EINVAL) if none. */
int store_arena_fd(const struct store_arena *a, uint16_t index)
{
    if (index >= a->n) {
        errno = EINVAL;
        return -1;
    }
    return a->files[index]->fd;
}

/* statfs: tmpfs or ramfs means the "disk" is RAM. */
int store_dir_in_memory(const char *dir, const char **fstype)
{
    struct statfs sf;

    if (statfs(dir, &sf) != 0)
        return -1;
    if ((unsigned long)sf.f_type == (unsigned long)TMPFS_MAGIC) {
        *fstype = "tmpfs";
        return 1;
    }
    if ((unsigned long)sf.f_type == (unsigned long)RAMFS_MAGIC) {
        *fstype = "ramfs";
        return 1;
    }
    return 0;
}
