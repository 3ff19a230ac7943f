/* libfarena direct reads: gets of arenas this client holds are served with
 * pread() on read-only descriptors of the arena's files, which the daemon
 * passes with arena_fds (PROTOCOL.md), instead of a round trip each.
 *
 * Why it is safe: an arena's files are immutable once built, and every
 * peer of the socket runs as the daemon's uid. A file's descriptor is only
 * used while this client holds a reference to its arena (the one its
 * into_arena/build/arena_new gave, or one taken with open), so the file
 * cannot be freed under it; the reference arena_fds itself takes is given
 * back at once with a release notification, which keeps the daemon's
 * reference counts (arena_info's refs) what they are on the daemon path.
 *
 * Same answers as the daemon path: locations are checked against the file
 * sizes arena_fds reported, with the daemon's texts; anything this module
 * cannot decide alone (an arena not held, a file whose descriptor did not
 * come, the descriptor budget spent) returns DR_FALLBACK and the caller
 * asks the daemon. Descriptors are fetched lazily, per file, when a get
 * first needs them, and never more than fd_budget at once: past it the
 * daemon path serves, so no get ever fails for lack of descriptors (a
 * process at its RLIMIT_NOFILE receives none: the kernel drops them and
 * flags the read MSG_CTRUNC, and those files are read through the daemon).
 *
 * The read handle (farena_reader) at the end shares the same pread and
 * bounds code: one private connection per reader fetches descriptors and
 * serves fallbacks under a mutex, and reads of fetched files take no lock. */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto_limits.h"

/* ---- the per-arena table ---- */

/* Sets up direct reads: the option, then FARENA_DIRECT=0 in the
 * environment, may turn them off; the daemon's hello decides the rest. */
void dr_init(farena_client *c, int direct_opt, unsigned max_fds)
{
    const char *env = getenv("FARENA_DIRECT");

    c->direct_opt = direct_opt != 0 && !(env != NULL && strcmp(env, "0") == 0);
    c->fd_budget = max_fds > 0 ? max_fds : FARENA_DIRECT_FDS_DEFAULT;
}

/* Closes the descriptors of d and forgets its files. */
static void dr_arena_close(farena_client *c, struct dr_arena *d)
{
    for (uint32_t i = 0; d->files != NULL && i < d->nfiles; i++)
        if (d->files[i].fd >= 0) {
            close(d->files[i].fd);
            c->fds_held--;
        }
    free(d->files);
    d->files = NULL;
    d->nfiles = 0;
}

/* Frees every arena's state. */
void dr_fini(farena_client *c)
{
    for (size_t i = 0; i < c->dr_len; i++)
        dr_arena_close(c, &c->dr[i]);
    free(c->dr);
    c->dr = NULL;
    c->dr_len = c->dr_cap = 0;
}

/* Binary search: the index of h in c->dr, or where it would go. */
static size_t dr_slot(const farena_client *c, farena_handle h)
{
    size_t lo = 0, hi = c->dr_len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->dr[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The state of arena h, or NULL when c holds no reference to it. */
static struct dr_arena *dr_find(farena_client *c, farena_handle h)
{
    size_t i;

    if (c->dr_last < c->dr_len && c->dr[c->dr_last].h == h)
        return &c->dr[c->dr_last];
    i = dr_slot(c, h);
    if (i == c->dr_len || c->dr[i].h != h)
        return NULL;
    c->dr_last = i;
    return &c->dr[i];
}

/* One more reference; see internal.h. */
void dr_hold(farena_client *c, farena_handle h)
{
    struct dr_arena *d = dr_find(c, h);
    size_t i;

    if (d != NULL) {
        d->held++;
        return;
    }
    if (c->dr_len == c->dr_cap) {
        size_t cap = c->dr_cap ? c->dr_cap * 2 : 16;
        struct dr_arena *p = realloc(c->dr, cap * sizeof(*p));
        if (p == NULL)
            return; /* the daemon path serves it */
        c->dr = p;
        c->dr_cap = cap;
    }
    i = dr_slot(c, h);
    memmove(&c->dr[i + 1], &c->dr[i], (c->dr_len - i) * sizeof(*c->dr));
    memset(&c->dr[i], 0, sizeof(c->dr[i]));
    c->dr[i].h = h;
    c->dr[i].held = 1;
    c->dr_len++;
    c->dr_last = i;
}

/* Closes the descriptors before the last reference goes; see internal.h. */
void dr_release_before(farena_client *c, farena_handle h)
{
    struct dr_arena *d = dr_find(c, h);

    if (d != NULL && d->held == 1)
        dr_arena_close(c, d);
}

/* Forgets one reference; see internal.h. */
void dr_release_after(farena_client *c, farena_handle h)
{
    struct dr_arena *d = dr_find(c, h);
    size_t i;

    if (d == NULL || --d->held > 0)
        return;
    dr_arena_close(c, d);
    i = (size_t)(d - c->dr);
    memmove(&c->dr[i], &c->dr[i + 1], (c->dr_len - i - 1) * sizeof(*c->dr));
    c->dr_len--;
    c->dr_last = 0;
}

/* ---- fetching descriptors ---- */

/* Asks the daemon for the descriptors of d's files idx[0..n-1] (n at most
 * max_fds, distinct, none fetched yet) and stores them with their sizes. A
 * file whose descriptor did not arrive (the process is at its descriptor
 * limit) is marked DR_NOFD. Returns 0 or a FARENA_E... code. */
static int dr_fetch(farena_client *c, struct dr_arena *d, const uint16_t *idx, size_t n)
{
    const msgpack_object *res, *top, *items;
    const char *why = NULL;
    int fds[CL_MAX_FDS];
    uint64_t nfiles;
    uint32_t count, ntop;
    size_t got;
    int err;

    cl_begin(c, PROTO_M_ARENA_FDS, 2);
    msgpack_pack_uint64(&c->pk, d->h);
    msgpack_pack_array(&c->pk, n);
    for (size_t k = 0; k < n; k++)
        msgpack_pack_uint16(&c->pk, idx[k]);
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    got = cl_fds_claim(c, c->result_pos, fds, n);
    /* The reference arena_fds took goes back at once: d's own reference
     * covers the descriptors (see the top of this file). */
    err = cl_notify_release(c, d->h);
    if (err != 0 && c->broken) {
        for (size_t k = 0; k < got; k++)
            close(fds[k]);
        return err;
    }
    if (proto_read_array(res, &top, &ntop, &why) != 0 || ntop != 2 ||
        proto_read_uint(&top[0], UINT16_MAX + 1u, &nfiles, &why) != 0 || nfiles == 0 ||
        proto_read_array(&top[1], &items, &count, &why) != 0 || count != n ||
        (d->nfiles != 0 && nfiles != d->nfiles))
        goto bad;
    if (d->files == NULL) {
        d->files = malloc(nfiles * sizeof(*d->files));
        if (d->files == NULL) {
            for (size_t k = 0; k < got; k++)
                close(fds[k]);
            return cl_fail(c, FARENA_ENOMEM, "out of memory");
        }
        for (uint64_t i = 0; i < nfiles; i++)
            d->files[i].fd = DR_UNFETCHED;
        d->nfiles = (uint32_t)nfiles;
    }
    for (size_t k = 0; k < n; k++) {
        const msgpack_object *pair;
        uint32_t np;
        uint64_t index, size;
        struct dr_file *f;

        if (proto_read_array(&items[k], &pair, &np, &why) != 0 || np != 2 ||
            proto_read_uint(&pair[0], UINT16_MAX, &index, &why) != 0 ||
            proto_read_uint(&pair[1], UINT32_MAX, &size, &why) != 0 || index != idx[k] ||
            index >= d->nfiles)
            goto bad;
        f = &d->files[index];
        if (f->fd >= 0) {
            /* Fetched twice: keep the first. */
            if (k < got)
                close(fds[k]);
            continue;
        }
        f->size = size;
        if (k < got) {
            f->fd = fds[k];
            c->fds_held++;
        } else {
            f->fd = DR_NOFD;
        }
    }
    return 0;
bad:
    for (size_t k = 0; k < got; k++)
        close(fds[k]);
    return cl_fail(c, FARENA_EPROTO, "farenad's arena_fds result is malformed: %s",
                   why ? why : "unexpected shape");
}

/* Makes sure d's files idx[0..n-1] were asked for (those fetched before
 * are skipped). Returns 0; DR_FALLBACK when the budget cannot take them or
 * the daemon refused (its error is left to the daemon path to report);
 * or the code that broke the connection. */
static int dr_ensure(farena_client *c, struct dr_arena *d, uint16_t *idx, size_t n)
{
    size_t m = 0;
    int err;

    for (size_t k = 0; k < n; k++) {
        int dup = 0;
        if (d->nfiles != 0 && (idx[k] >= d->nfiles || d->files[idx[k]].fd != DR_UNFETCHED))
            continue;
        for (size_t j = 0; j < m && !dup; j++)
            dup = idx[j] == idx[k];
        if (!dup)
            idx[m++] = idx[k];
    }
    if (m == 0)
        return 0;
    if (m > c->fd_budget - c->fds_held)
        return DR_FALLBACK;
    for (size_t at = 0; at < m; at += c->max_fds) {
        size_t part = m - at < c->max_fds ? m - at : c->max_fds;
        err = dr_fetch(c, d, idx + at, part);
        if (err != 0) {
            if (c->broken)
                return err;
            c->errmsg[0] = '\0';
            return DR_FALLBACK;
        }
    }
    return 0;
}

/* ---- reading ---- */

/* Where a failed direct read writes its message: a client's errmsg, or
 * nowhere (readers, shared by threads, keep none). */
struct dr_msg {
    char *buf;
    size_t cap;
};

/* Formats a message into m (if any) and returns err. */
static int dr_fail(struct dr_msg m, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dr_fail(struct dr_msg m, int err, const char *fmt, ...)
{
    va_list ap;

    if (m.buf == NULL)
        return err;
    va_start(ap, fmt);
    vsnprintf(m.buf, m.cap, fmt, ap);
    va_end(ap);
    return err;
}

/* The daemon's bounds check (store_check), with its texts: the file index
 * must be in the arena, offset + len within the file (64-bit sums).
 * item >= 0 prefixes "item K: " as get_many does. */
static int dr_check(struct dr_msg m, uint32_t nfiles, const struct dr_file *files,
                    struct farena_loc loc, long long item)
{
    char pre[32] = "";

    if (item >= 0)
        snprintf(pre, sizeof(pre), "item %lld: ", item);
    if (loc.file_index >= nfiles)
        return dr_fail(m, FARENA_EOUTOFBOUNDS,
                       "%sfile index %" PRIu16 " is not in the arena (%" PRIu32 " files)", pre,
                       loc.file_index, nfiles);
    if ((uint64_t)loc.offset + loc.len > files[loc.file_index].size)
        return dr_fail(m, FARENA_EOUTOFBOUNDS,
                       "%soffset %" PRIu32 " + len %" PRIu32 " is past the end of file %" PRIu16
                       " (size %" PRIu64 ")",
                       pre, loc.offset, loc.len, loc.file_index, files[loc.file_index].size);
    return 0;
}

/* Reads loc's bytes from fd into dst with pread (short reads and EINTR
 * retried), failing as the daemon's store_get() does. */
static int dr_pread(struct dr_msg m, int fd, uint64_t size, struct farena_loc loc, uint8_t *dst,
                    long long item)
{
    char pre[32] = "";
    uint64_t done = 0;

    while (done < loc.len) {
        uint64_t off = (uint64_t)loc.offset + done;
        ssize_t n = pread(fd, dst + done, (size_t)(loc.len - done), (off_t)off);

        if (n > 0) {
            done += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (item >= 0)
            snprintf(pre, sizeof(pre), "item %lld: ", item);
        if (n < 0)
            return dr_fail(m, FARENA_EIOERROR,
                           "%sread of file %" PRIu16 " at offset %" PRIu64 ": %s", pre,
                           loc.file_index, off, strerror(errno));
        return dr_fail(m, FARENA_EIOERROR,
                       "%sfile %" PRIu16 " ends at %" PRIu64 ", short of its size %" PRIu64, pre,
                       loc.file_index, off, size);
    }
    return 0;
}

/* Makes room for loc's payload in buf before anything else, as the daemon
 * path allocates its receive buffer before it sends: out of memory is
 * ENOMEM on both paths, whatever the location. */
static int dr_reserve(struct dr_msg m, struct farena_loc loc, struct farena_buf *buf)
{
    int err = farena_buf_reserve(buf, loc.len);

    if (err != 0)
        return dr_fail(m, err, "out of memory for a %" PRIu32 "-byte payload", loc.len);
    return 0;
}

/* Appends the payload at loc (file f, a fetched descriptor, room reserved
 * by dr_reserve) to buf, checked as UTF-8 when asked; buf is unchanged on
 * failure. */
static int dr_append(struct dr_msg m, const struct dr_file *f, struct farena_loc loc,
                     struct farena_buf *buf, int utf8)
{
    int err = dr_pread(m, f->fd, f->size, loc, buf->data + buf->len, -1);
    if (err == 0 && utf8 && !cl_utf8_valid(buf->data + buf->len, loc.len))
        err = dr_fail(m, FARENA_EUTF8,
                      "the payload at %" PRIu16 ":%" PRIu32 ":%" PRIu32 " is not valid UTF-8",
                      loc.file_index, loc.offset, loc.len);
    if (err != 0) {
        buf->data[buf->len] = 0;
        return err;
    }
    buf->len += loc.len;
    buf->data[buf->len] = 0;
    return 0;
}

/* A get from c's descriptors; see internal.h. */
int dr_get(farena_client *c, farena_handle arena, struct farena_loc loc, struct farena_buf *buf,
           int utf8)
{
    struct dr_msg m = {c->errmsg, sizeof(c->errmsg)};
    struct dr_arena *d = dr_find(c, arena);
    uint16_t idx = loc.file_index;
    int err;

    if (d == NULL)
        return DR_FALLBACK;
    err = dr_reserve(m, loc, buf);
    if (err != 0)
        return err;
    if (d->nfiles == 0 || (idx < d->nfiles && d->files[idx].fd == DR_UNFETCHED)) {
        err = dr_ensure(c, d, &idx, 1);
        if (err != 0)
            return err;
    }
    if (loc.file_index < d->nfiles && d->files[loc.file_index].fd < 0)
        return DR_FALLBACK;
    err = dr_check(m, d->nfiles, d->files, loc, -1);
    if (err != 0)
        return err;
    return dr_append(m, &d->files[loc.file_index], loc, buf, utf8);
}

/* A get_many from c's descriptors; see internal.h. */
int dr_get_many(farena_client *c, farena_handle arena, const struct farena_loc *locs, size_t n,
                uint8_t *out)
{
    struct dr_msg m = {c->errmsg, sizeof(c->errmsg)};
    struct dr_arena *d = dr_find(c, arena);
    uint16_t idx[CL_MAX_FDS];
    size_t nidx = 0, at = 0;
    int err;

    if (d == NULL)
        return DR_FALLBACK;
    /* Fetch what is missing, a batch of distinct indices at a time. */
    for (size_t k = 0; k < n; k++) {
        uint16_t i = locs[k].file_index;
        if (d->nfiles != 0 && (i >= d->nfiles || d->files[i].fd != DR_UNFETCHED))
            continue;
        idx[nidx++] = i;
        if (nidx == CL_MAX_FDS) {
            err = dr_ensure(c, d, idx, nidx);
            if (err != 0)
                return err;
            nidx = 0;
        }
    }
    if (nidx > 0 && (err = dr_ensure(c, d, idx, nidx)) != 0)
        return err;
    /* Check every location first, in order, as the daemon does. */
    for (size_t k = 0; k < n; k++) {
        if (locs[k].file_index < d->nfiles && d->files[locs[k].file_index].fd < 0)
            return DR_FALLBACK;
        err = dr_check(m, d->nfiles, d->files, locs[k], (long long)k);
        if (err != 0)
            return err;
    }
    for (size_t k = 0; k < n; k++) {
        const struct dr_file *f = &d->files[locs[k].file_index];
        err = dr_pread(m, f->fd, f->size, locs[k], out + at, (long long)k);
        if (err != 0)
            return err;
        at += locs[k].len;
    }
    return 0;
}

/* A held arena's descriptor for bindings that pread themselves. */
int farena_direct_file(farena_client *c, farena_handle arena, uint16_t file_index, int *fd,
                       uint64_t *size)
{
    struct dr_arena *d;
    uint16_t idx = file_index;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (fd == NULL || size == NULL || arena == 0)
        return cl_fail(c, FARENA_EINVAL, arena == 0 ? "arena handle 0" : "fd or size is NULL");
    if (!c->direct || (d = dr_find(c, arena)) == NULL)
        return 0;
    if (d->nfiles == 0 || (file_index < d->nfiles && d->files[file_index].fd == DR_UNFETCHED)) {
        err = dr_ensure(c, d, &idx, 1);
        if (err == DR_FALLBACK)
            return 0;
        if (err != 0)
            return err;
    }
    if (file_index >= d->nfiles || d->files[file_index].fd < 0)
        return 0;
    *fd = d->files[file_index].fd;
    *size = d->files[file_index].size;
    return 1;
}

/* Tells whether c reads held arenas directly. */
int farena_direct(const farena_client *c)
{
    return c != NULL && c->direct;
}

/* ---- the read handle ---- */

/* A read handle: see farena.h. fds[i] is DR_UNFETCHED until a thread
 * needs file i, then published once (release store after sizes[i] is
 * written; readers load with acquire) and never changed again until
 * farena_reader_close: a descriptor is never closed while a thread may
 * use it. The private connection conn owns the descriptors (its direct
 * state) and the reader's reference; mu serialises every use of conn. */
struct farena_reader {
    farena_handle arena;
    uint32_t nfiles; /* 0: everything goes through conn */
    _Atomic int *fds;
    uint64_t *sizes;
    uint64_t max_message;
    pthread_mutex_t mu;
    farena_client *conn;
};

/* Opens a reader; see farena.h. */
int farena_reader_open(farena_client *c, farena_handle arena, farena_reader **out)
{
    struct farena_connect_options o = FARENA_CONNECT_OPTIONS_INIT;
    struct farena_arena_info info;
    farena_reader *r;
    char why[sizeof(c->errmsg)];
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (out == NULL || arena == 0)
        return cl_fail(c, FARENA_EINVAL, out == NULL ? "out is NULL" : "arena handle 0");
    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return cl_fail(c, FARENA_ENOMEM, "out of memory");
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return cl_fail(c, FARENA_ENOMEM, "pthread_mutex_init failed");
    }
    o.timeout_ms = c->timeout_ms;
    o.direct = c->direct_opt;
    o.max_fds = c->fd_budget;
    err = farena_connect_opts(c->path, &o, &r->conn, why, sizeof(why));
    if (err != 0) {
        cl_fail(c, err, "the reader's connection: %s", why);
        goto fail;
    }
    err = farena_open(r->conn, arena);
    if (err == 0 && r->conn->direct)
        err = farena_arena_info(r->conn, arena, &info);
    if (err != 0) {
        cl_fail(c, err, "%s", farena_errmsg(r->conn));
        goto fail;
    }
    if (r->conn->direct && info.files > 0 && info.files <= UINT16_MAX + 1u) {
        r->fds = malloc(info.files * sizeof(*r->fds));
        r->sizes = calloc(info.files, sizeof(*r->sizes));
        if (r->fds == NULL || r->sizes == NULL) {
            err = cl_fail(c, FARENA_ENOMEM, "out of memory");
            goto fail;
        }
        for (uint64_t i = 0; i < info.files; i++)
            atomic_init(&r->fds[i], DR_UNFETCHED);
        r->nfiles = (uint32_t)info.files;
    }
    r->arena = arena;
    r->max_message = r->conn->max_message;
    *out = r;
    return 0;
fail:
    farena_close(r->conn);
    free(r->fds);
    free(r->sizes);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return err;
}

/* Closes a reader; see farena.h. */
void farena_reader_close(farena_reader *r)
{
    if (r == NULL)
        return;
    farena_close(r->conn); /* closes the descriptors, drops the reference */
    free(r->fds);
    free(r->sizes);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* The descriptor of file i for a reader thread: fetched through conn the
 * first time (under mu), then read without a lock. Returns it, or DR_NOFD
 * when the daemon path must serve the file. */
static int reader_fd(farena_reader *r, uint16_t i, uint64_t *size)
{
    int fd = atomic_load_explicit(&r->fds[i], memory_order_acquire);

    if (fd == DR_UNFETCHED) {
        pthread_mutex_lock(&r->mu);
        fd = atomic_load_explicit(&r->fds[i], memory_order_relaxed);
        if (fd == DR_UNFETCHED) {
            struct dr_arena *d = dr_find(r->conn, r->arena);
            uint16_t idx = i;
            fd = DR_NOFD;
            if (d != NULL && cl_ready(r->conn) == 0 && dr_ensure(r->conn, d, &idx, 1) == 0 &&
                i < d->nfiles && d->files[i].fd >= 0) {
                fd = d->files[i].fd;
                r->sizes[i] = d->files[i].size;
            }
            atomic_store_explicit(&r->fds[i], fd, memory_order_release);
        }
        pthread_mutex_unlock(&r->mu);
    }
    if (fd >= 0)
        *size = r->sizes[i];
    return fd;
}

/* A reader's descriptor for bindings that pread themselves; see farena.h. */
int farena_reader_file(farena_reader *r, uint16_t file_index, int *fd, uint64_t *size)
{
    uint64_t sz = 0;
    int f;

    if (r == NULL || fd == NULL || size == NULL)
        return FARENA_EINVAL;
    if (cl_forked(r->conn))
        return FARENA_EFORK;
    if (file_index >= r->nfiles)
        return 0;
    f = reader_fd(r, file_index, &sz);
    if (f < 0)
        return 0;
    *fd = f;
    *size = sz;
    return 1;
}

/* The reader's daemon path for one get: through conn, under mu. */
static int reader_get_locked(farena_reader *r, struct farena_loc loc, struct farena_buf *buf,
                             int utf8)
{
    int err;

    pthread_mutex_lock(&r->mu);
    err = utf8 ? farena_get_str_into(r->conn, r->arena, loc, buf)
               : farena_get_into(r->conn, r->arena, loc, buf);
    pthread_mutex_unlock(&r->mu);
    return err;
}

/* Checks a buffer argument. */
static int reader_buf_ok(const struct farena_buf *buf)
{
    return buf != NULL && buf->len <= buf->cap && (buf->data != NULL || buf->cap == 0);
}

/* One get through a reader. */
static int reader_get(farena_reader *r, struct farena_loc loc, struct farena_buf *buf, int utf8)
{
    struct dr_msg none = {NULL, 0};
    struct dr_file f;

    if (r == NULL || !reader_buf_ok(buf))
        return FARENA_EINVAL;
    if (cl_forked(r->conn))
        return FARENA_EFORK;
    if (proto_size_bin(loc.len) > r->max_message - cl_resp_overhead())
        return FARENA_ETOOLARGE;
    if (r->nfiles == 0)
        return reader_get_locked(r, loc, buf, utf8);
    if (loc.file_index >= r->nfiles)
        return FARENA_EOUTOFBOUNDS;
    f.fd = reader_fd(r, loc.file_index, &f.size);
    if (f.fd < 0)
        return reader_get_locked(r, loc, buf, utf8);
    if (dr_reserve(none, loc, buf) != 0)
        return FARENA_ENOMEM;
    if ((uint64_t)loc.offset + loc.len > f.size)
        return FARENA_EOUTOFBOUNDS;
    return dr_append(none, &f, loc, buf, utf8);
}

/* Appends one payload through a reader. */
int farena_reader_get_into(farena_reader *r, struct farena_loc loc, struct farena_buf *buf)
{
    return reader_get(r, loc, buf, 0);
}

/* Appends one UTF-8 payload through a reader. */
int farena_reader_get_str_into(farena_reader *r, struct farena_loc loc, struct farena_buf *buf)
{
    return reader_get(r, loc, buf, 1);
}

/* Appends one payload the caller knows is text, through a reader. */
int farena_reader_get_str_into_unchecked(farena_reader *r, struct farena_loc loc,
                                         struct farena_buf *buf)
{
    return reader_get(r, loc, buf, 0);
}

/* Appends many payloads through a reader: every location's descriptor is
 * made sure of first; when one file must go through the daemon, the whole
 * call does (under mu), so a call's errors are those of one path. */
int farena_reader_get_many_into(farena_reader *r, const struct farena_loc *locs, size_t n,
                                struct farena_buf *buf)
{
    struct dr_msg none = {NULL, 0};
    uint64_t total = 0;
    size_t at = 0;
    int err, direct = r != NULL && r->nfiles > 0;

    if (r == NULL || (locs == NULL && n > 0) || !reader_buf_ok(buf))
        return FARENA_EINVAL;
    if (cl_forked(r->conn))
        return FARENA_EFORK;
    if (n == 0)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (proto_size_bin(locs[k].len) > r->max_message - cl_resp_overhead())
            return FARENA_ETOOLARGE;
    for (size_t k = 0; k < n && direct; k++) {
        uint64_t size;
        if (locs[k].file_index >= r->nfiles)
            return FARENA_EOUTOFBOUNDS;
        if (reader_fd(r, locs[k].file_index, &size) < 0)
            direct = 0;
        else if ((uint64_t)locs[k].offset + locs[k].len > size)
            return FARENA_EOUTOFBOUNDS;
        total += locs[k].len;
    }
    if (!direct) {
        pthread_mutex_lock(&r->mu);
        err = farena_get_many_into(r->conn, r->arena, locs, n, buf);
        pthread_mutex_unlock(&r->mu);
        return err;
    }
    if (total >= SIZE_MAX - buf->len)
        return FARENA_ENOMEM;
    err = farena_buf_reserve(buf, (size_t)total);
    if (err != 0)
        return err;
    for (size_t k = 0; k < n; k++) {
        int fd = atomic_load_explicit(&r->fds[locs[k].file_index], memory_order_acquire);
        err = dr_pread(none, fd, r->sizes[locs[k].file_index], locs[k], buf->data + buf->len + at,
                       (long long)k);
        if (err != 0) {
            buf->data[buf->len] = 0;
            return err;
        }
        at += locs[k].len;
    }
    buf->len += (size_t)total;
    buf->data[buf->len] = 0;
    return 0;
}
