/* The storage engine's writers: anonymous scratch files, the append buffer,
 * the scratch quota and the free-space floor. See store.h for the contract. */
#include "store_impl.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* A writer: bytes [0, flushed) are in the file; the rest, up to len, are
 * in buf (used bytes) or, while staging, in the staged pieces: siov[0] is
 * the buffer as it was when staging began, then the staged payloads (the
 * callers' memory) in file order. */
struct store_writer {
    struct store *st;
    int fd;
    uint16_t index;
    uint64_t len;
    uint64_t flushed;
    unsigned char *buf; /* wbuf_cap bytes, allocated on first use */
    size_t used;
    struct iovec *siov; /* owned array; the pieces are borrowed */
    int nsiov, siov_cap;
    uint64_t stage_len; /* len when staging began */
    bool staging;
    bool busy; /* a write taken and not yet done */
};

/* The protocol code for a failed write or file creation with errno e. */
static enum proto_err write_errno_code(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return PROTO_NO_SPACE;
    return PROTO_IO_ERROR;
}

/* Opens an anonymous read-write file in dir: O_TMPFILE, or where the
 * filesystem lacks it, a unique name unlinked at once. Returns the fd or -1
 * with errno. */
static int open_anonymous(const char *dir)
{
    static const char suffix[] = "/.farena-XXXXXX";
    size_t dl = strlen(dir);
    char *path;
    int fd, e;

    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    path = malloc(dl + sizeof(suffix));
    if (!path) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(path, dir, dl);
    memcpy(path + dl, suffix, sizeof(suffix));
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0 && unlink(path) != 0) {
        e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    e = errno;
    free(path);
    errno = e;
    return fd;
}

/* A writer on a new anonymous scratch file. */
int store_writer_new(struct store *st, uint16_t index, struct store_writer **out, struct err *err)
{
    struct store_writer *w;
    char eb[96];
    int fd, e;

    w = calloc(1, sizeof(*w));
    if (!w) {
        err_set(err, PROTO_IO_ERROR, "writer %" PRIu16 ": out of memory", index);
        return -1;
    }
    fd = open_anonymous(st->dir);
    if (fd < 0) {
        e = errno;
        free(w);
        err_set(err, e == EMFILE || e == ENFILE ? PROTO_LIMIT : write_errno_code(e),
                "cannot create a scratch file in %s: %s", st->dir, store_errstr(e, eb, sizeof eb));
        return -1;
    }
    w->st = st;
    w->fd = fd;
    w->index = index;
    st->writers++;
    *out = w;
    return 0;
}

/* Writes the whole of iov[0..cnt) at offset off, through short writes and
 * EINTR. Returns 0 or an errno value. iov is consumed. */
static int write_all(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    while (cnt > 0) {
        ssize_t n = pwritev(fd, iov, cnt, (off_t)off);
        size_t k;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return EIO;
        off += (uint64_t)n;
        k = (size_t)n;
        while (cnt > 0 && k >= iov->iov_len) {
            k -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (unsigned char *)iov->iov_base + k;
            iov->iov_len -= k;
        }
    }
    return 0;
}

/* Probes free space on the scratch filesystem, setting st->headroom to the
 * bytes that may still be accepted before the min_free floor. */
static int floor_probe(struct store *st, struct err *err)
{
    uint64_t avail = 0, room;
    char eb[96];

    if (st->free_bytes(st->free_bytes_ctx, st->dir, &avail) != 0) {
        err_set(err, PROTO_IO_ERROR, "free-space probe of %s failed: %s", st->dir,
                store_errstr(errno, eb, sizeof eb));
        st->probed = false;
        return -1;
    }
    room = avail > st->min_free ? avail - st->min_free : 0;
    /* Buffered bytes are accepted but not yet on disk: the probe cannot see
     * them, so they come off the room here. */
    st->headroom = room > st->buffered ? room - st->buffered : 0;
    st->probed = true;
    return 0;
}

/* The min_free floor. Probing (statvfs) on every push would double the
 * system calls of small pushes, so the engine probes only when bytes are
 * about to reach the disk (a flush, or a push of at least the buffer size)
 * and otherwise spends the headroom measured by the last probe, counting
 * every accepted byte itself. A push larger than the remaining headroom
 * always probes again before it is accepted, so by our own accounting the
 * floor is never crossed; only other processes filling the filesystem
 * between two probes can move it, and they are caught at the next flush.
 * Freeing a file or discarding a writer forgets the headroom, since space
 * came back. */
static int floor_check(struct store *st, size_t len, bool writes_now, struct err *err)
{
    if (st->min_free == 0)
        return 0;
    if ((writes_now || !st->probed || len > st->headroom) && floor_probe(st, err) != 0)
        return -1;
    if (len > st->headroom) {
        err_set(err, PROTO_NO_SPACE,
                "push of %zu bytes would leave less than min_free %" PRIu64
                " bytes free (room %" PRIu64 ")",
                len, st->min_free, st->headroom);
        return -1;
    }
    return 0;
}

/* Adds a piece to the staged write. Returns 0 or -1 (out of memory). */
static int stage_add(struct store_writer *w, const void *p, size_t len)
{
    if (w->nsiov == w->siov_cap) {
        int ncap = w->siov_cap != 0 ? w->siov_cap * 2 : 4;
        struct iovec *n = realloc(w->siov, (size_t)ncap * sizeof(*n));

        if (n == NULL)
            return -1;
        w->siov = n;
        w->siov_cap = ncap;
    }
    w->siov[w->nsiov].iov_base = (void *)(uintptr_t)p;
    w->siov[w->nsiov].iov_len = len;
    w->nsiov++;
    return 0;
}

/* Starts staging: the buffered bytes come first. */
static int stage_begin(struct store_writer *w)
{
    w->nsiov = 0;
    w->stage_len = w->len;
    if (w->used > 0 && stage_add(w, w->buf, w->used) < 0)
        return -1;
    w->staging = true;
    return 0;
}

/* Accepts a payload without writing; see store.h. */
int store_stage(struct store_writer *w, const void *data, size_t len, struct store_loc *loc,
                struct err *err)
{
    struct store *st = w->st;
    bool direct;

    assert(data || len == 0);
    assert(!w->busy);
    if (len == 0) {
        loc->file_index = w->index;
        loc->offset = (uint32_t)w->len;
        loc->len = 0;
        return 0;
    }
    if (len > st->file_max - w->len) {
        err_set(err, PROTO_FILE_FULL,
                "push of %zu bytes to file %" PRIu16 " at %" PRIu64 " would pass file_max %" PRIu64,
                len, w->index, w->len, st->file_max);
        return -1;
    }
    if (st->max_bytes &&
        (st->bytes_on_disk >= st->max_bytes || len > st->max_bytes - st->bytes_on_disk)) {
        err_set(err, PROTO_NO_SPACE,
                "push of %zu bytes would pass max_bytes %" PRIu64 " (%" PRIu64 " in use)", len,
                st->max_bytes, st->bytes_on_disk);
        return -1;
    }
    if (!w->staging && !w->buf && len < st->wbuf_cap)
        w->buf = malloc(st->wbuf_cap);
    /* Once staging began, everything after goes by reference behind it;
     * otherwise a payload that does not fit in the buffer (a large push,
     * or no memory for a buffer) is staged together with what is buffered,
     * so large payloads are never copied and a flush is one write. */
    direct = w->staging || len >= st->wbuf_cap || !w->buf || len > st->wbuf_cap - w->used;
    /* The free-space probe runs when a write is about to be made: once,
     * when staging begins; the payloads staged behind it spend the
     * headroom that probe measured (a batch of large items costs one
     * statfs, not one per item). */
    if (floor_check(st, len, direct && !w->staging, err) != 0)
        return -1;
    if (direct) {
        if ((!w->staging && stage_begin(w) < 0) || stage_add(w, data, len) < 0) {
            err_set(err, PROTO_IO_ERROR, "push of %zu bytes: out of memory", len);
            if (w->nsiov == (w->used > 0 ? 1 : 0) && w->len == w->stage_len)
                w->staging = false; /* nothing staged yet: as if never begun */
            return -1;
        }
    } else {
        memcpy(w->buf + w->used, data, len);
        w->used += len;
    }
    st->buffered += len;
    if (st->min_free)
        st->headroom -= len;
    loc->file_index = w->index;
    loc->offset = (uint32_t)w->len;
    loc->len = (uint32_t)len;
    w->len += len;
    st->bytes_on_disk += len;
    st->bytes_written += len;
    return 0;
}

/* Hands out the pending write; see store.h. */
int store_write_take(struct store_writer *w, int flush_all, struct store_wreq *req, struct err *err)
{
    assert(!w->busy);
    if (!w->staging) {
        if (!flush_all || w->used == 0)
            return 0;
        if (stage_begin(w) < 0) {
            w->staging = false;
            err_set(err, PROTO_IO_ERROR, "flush of file %" PRIu16 ": out of memory", w->index);
            return -1;
        }
    }
    req->fd = w->fd;
    req->off = w->flushed;
    req->iov = w->siov;
    req->iovcnt = w->nsiov;
    req->bytes = w->len - w->flushed;
    w->busy = true;
    return 1;
}

/* Commits or rolls back a write; see store.h. */
int store_write_done(struct store_writer *w, const struct store_wreq *req, int errnum,
                     struct err *err)
{
    struct store *st = w->st;
    uint64_t staged = w->len - w->stage_len; /* payload bytes staged by reference */
    char eb[96];

    assert(w->busy && w->staging);
    w->busy = false;
    w->staging = false;
    w->nsiov = 0;
    if (errnum == 0) {
        st->buffered -= w->used + staged;
        w->flushed += req->bytes;
        w->used = 0;
        return 0;
    }
    /* Partial writes past the old end are garbage: drop them so they do
     * not hold disk space. If even that fails they are harmless, since the
     * next flush overwrites them at the same offset. The buffered bytes
     * stay accepted (their locations were answered); the staged payloads
     * are the ones that fail. */
    if (ftruncate(w->fd, (off_t)w->flushed) != 0) {
        /* nothing more to do; see above */
    }
    err_set(err, write_errno_code(errnum), "write to file %" PRIu16 " at offset %" PRIu64 ": %s",
            w->index, w->flushed, store_errstr(errnum, eb, sizeof eb));
    w->len = w->stage_len;
    st->buffered -= staged;
    st->bytes_on_disk -= staged;
    st->bytes_written -= staged;
    st->probed = false;
    return -1;
}

/* Performs req on the calling thread. */
static int write_now(struct store_writer *w, struct store_wreq *req, struct err *err)
{
    struct iovec iov[4];
    int n = req->iovcnt;

    /* The synchronous callers stage one payload at a time: at most the
     * buffer and that payload. */
    assert(n <= 4);
    memcpy(iov, req->iov, (size_t)n * sizeof(*iov));
    return store_write_done(w, req, write_all(w->fd, iov, n, req->off), err);
}

/* Appends on the calling thread; see store.h. */
int store_push(struct store_writer *w, const void *data, size_t len, struct store_loc *loc,
               struct err *err)
{
    struct store_wreq req;
    int rc;

    if (store_stage(w, data, len, loc, err) < 0)
        return -1;
    rc = store_write_take(w, 0, &req, err);
    if (rc <= 0)
        return rc;
    return write_now(w, &req, err);
}

/* Bytes pushed so far, buffered ones included. */
uint64_t store_writer_len(const struct store_writer *w)
{
    return w->len;
}

/* The writer's file index. */
uint16_t store_writer_index(const struct store_writer *w)
{
    return w->index;
}

/* Flushes and turns w into a file; on failure w is untouched. */
int store_finish(struct store_writer *w, struct store_file **out, struct err *err)
{
    struct store *st = w->st;
    struct store_file *f;

    f = calloc(1, sizeof(*f));
    if (!f) {
        err_set(err, PROTO_IO_ERROR, "finish of file %" PRIu16 ": out of memory", w->index);
        return -1;
    }
    assert(!w->busy);
    if (w->used > 0) {
        struct store_wreq req;
        int rc = store_write_take(w, 1, &req, err);

        if (rc < 0 || (rc > 0 && write_now(w, &req, err) != 0)) {
            free(f);
            return -1;
        }
    }
    f->st = st;
    f->fd = w->fd;
    f->index = w->index;
    f->size = w->len;
    f->refs = 1;
    st->writers--;
    st->files++;
    free(w->buf);
    free(w->siov);
    free(w);
    *out = f;
    return 0;
}

/* Drops w, its file and its bytes from the quota. */
void store_writer_discard(struct store_writer *w)
{
    struct store *st;

    if (!w)
        return;
    st = w->st;
    assert(!w->busy);
    close(w->fd);
    if (w->staging) {
        /* Staged, never taken: the payloads count as buffered. */
        st->buffered -= w->len - w->stage_len;
    }
    st->buffered -= w->used;
    st->bytes_on_disk -= w->len;
    st->writers--;
    st->probed = false;
    free(w->buf);
    free(w->siov);
    free(w);
}
