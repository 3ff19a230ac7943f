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

/* A writer: bytes [0, flushed) are in the file, [flushed, len) in buf. */
struct store_writer {
    struct store *st;
    int fd;
    uint16_t index;
    uint64_t len;
    uint64_t flushed;
    unsigned char *buf; /* wbuf_cap bytes, allocated on first use */
    size_t used;
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
int store_writer_new(struct store *st, uint16_t index, struct store_writer **out,
                     struct store_err *err)
{
    struct store_writer *w;
    char eb[96];
    int fd, e;

    w = calloc(1, sizeof(*w));
    if (!w) {
        store_set_err(err, PROTO_IO_ERROR, "writer %" PRIu16 ": out of memory", index);
        return -1;
    }
    fd = open_anonymous(st->dir);
    if (fd < 0) {
        e = errno;
        free(w);
        store_set_err(err, e == EMFILE || e == ENFILE ? PROTO_LIMIT : write_errno_code(e),
                      "cannot create a scratch file in %s: %s", st->dir,
                      store_errstr(e, eb, sizeof eb));
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

/* Writes the buffered bytes followed by data[0..len) at the end of what is
 * already in the file. On failure the file is cut back to its old length and
 * the buffer is kept, so every byte pushed before stays where its location
 * says; the caller's current push is what fails. */
static int writer_flush(struct store_writer *w, const void *data, size_t len, struct store_err *err)
{
    struct iovec iov[2];
    char eb[96];
    int cnt = 0, e;

    if (w->used > 0) {
        iov[cnt].iov_base = w->buf;
        iov[cnt].iov_len = w->used;
        cnt++;
    }
    if (len > 0) {
        iov[cnt].iov_base = (void *)(uintptr_t)data;
        iov[cnt].iov_len = len;
        cnt++;
    }
    e = write_all(w->fd, iov, cnt, w->flushed);
    if (e != 0) {
        /* Partial writes past the old end are garbage: drop them so they do
         * not hold disk space. If even that fails they are harmless, since
         * the next flush overwrites them at the same offset. */
        int rc = ftruncate(w->fd, (off_t)w->flushed);

        (void)rc;
        store_set_err(err, write_errno_code(e),
                      "write to file %" PRIu16 " at offset %" PRIu64 ": %s", w->index, w->flushed,
                      store_errstr(e, eb, sizeof eb));
        return -1;
    }
    w->st->buffered -= w->used;
    w->flushed += w->used + len;
    w->used = 0;
    return 0;
}

/* Probes free space on the scratch filesystem, setting st->headroom to the
 * bytes that may still be accepted before the min_free floor. */
static int floor_probe(struct store *st, struct store_err *err)
{
    uint64_t avail = 0, room;
    char eb[96];

    if (st->free_bytes(st->free_bytes_ctx, st->dir, &avail) != 0) {
        store_set_err(err, PROTO_IO_ERROR, "free-space probe of %s failed: %s", st->dir,
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
static int floor_check(struct store *st, size_t len, bool writes_now, struct store_err *err)
{
    if (st->min_free == 0)
        return 0;
    if ((writes_now || !st->probed || len > st->headroom) && floor_probe(st, err) != 0)
        return -1;
    if (len > st->headroom) {
        store_set_err(err, PROTO_NO_SPACE,
                      "push of %zu bytes would leave less than min_free %" PRIu64
                      " bytes free (room %" PRIu64 ")",
                      len, st->min_free, st->headroom);
        return -1;
    }
    return 0;
}

/* Appends through the buffer; checks file_max, quota and floor first. */
int store_push(struct store_writer *w, const void *data, size_t len, struct store_loc *loc,
               struct store_err *err)
{
    struct store *st = w->st;
    bool direct;

    assert(data || len == 0);
    if (len == 0) {
        loc->file_index = w->index;
        loc->offset = (uint32_t)w->len;
        loc->len = 0;
        return 0;
    }
    if (len > st->file_max - w->len) {
        store_set_err(err, PROTO_FILE_FULL,
                      "push of %zu bytes to file %" PRIu16 " at %" PRIu64
                      " would pass file_max %" PRIu64,
                      len, w->index, w->len, st->file_max);
        return -1;
    }
    if (st->max_bytes &&
        (st->bytes_on_disk >= st->max_bytes || len > st->max_bytes - st->bytes_on_disk)) {
        store_set_err(err, PROTO_NO_SPACE,
                      "push of %zu bytes would pass max_bytes %" PRIu64 " (%" PRIu64 " in use)",
                      len, st->max_bytes, st->bytes_on_disk);
        return -1;
    }
    if (!w->buf && len < st->wbuf_cap)
        w->buf = malloc(st->wbuf_cap);
    /* Without a buffer (large push, or no memory for one) the bytes go
     * straight to the file, after whatever is buffered. */
    direct = len >= st->wbuf_cap || !w->buf || len > st->wbuf_cap - w->used;
    if (floor_check(st, len, direct, err) != 0)
        return -1;
    if (direct) {
        if (writer_flush(w, data, len, err) != 0) {
            st->probed = false;
            return -1;
        }
    } else {
        memcpy(w->buf + w->used, data, len);
        w->used += len;
        st->buffered += len;
    }
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
int store_finish(struct store_writer *w, struct store_file **out, struct store_err *err)
{
    struct store *st = w->st;
    struct store_file *f;

    f = calloc(1, sizeof(*f));
    if (!f) {
        store_set_err(err, PROTO_IO_ERROR, "finish of file %" PRIu16 ": out of memory", w->index);
        return -1;
    }
    if (w->used > 0 && writer_flush(w, NULL, 0, err) != 0) {
        free(f);
        return -1;
    }
    f->st = st;
    f->fd = w->fd;
    f->index = w->index;
    f->size = w->len;
    f->refs = 1;
    st->writers--;
    st->files++;
    free(w->buf);
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
    close(w->fd);
    st->buffered -= w->used;
    st->bytes_on_disk -= w->len;
    st->writers--;
    st->probed = false;
    free(w->buf);
    free(w);
}
