/* The method table. Each method decodes its params with proto_read_*,
 * calls the registry or the store, and packs its result. Errors are
 * collected in one struct store_err and packed by the dispatcher, so every
 * method answers exactly once. */
#include "methods.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../proto/limits.h"
#include "log.h"

struct methods {
    struct reg *reg;
    struct methods_limits lim;
    uint64_t started_ms; /* CLOCK_MONOTONIC, for uptime */
    uint64_t connections, connections_total;
    uint64_t bytes_read;
    uint64_t requests[PROTO_M_COUNT];
    uint64_t errors[PROTO_M_COUNT];
};

/* One call in progress. */
struct call {
    struct methods *m;
    struct reg_owner *o;
    enum proto_method method;
    const msgpack_object *p; /* params */
    uint32_t np;
    uint32_t msgid;
    int answer; /* 0 for a notification */
    struct methods_out *io;
    msgpack_packer pk; /* packs into io->scratch */
    struct store_err err;
};

/* A method's outcome: done, failed with c->err, or the output is broken. */
enum { M_OK = 0, M_ERR = -1, M_BROKEN = -2 };

typedef int (*method_fn)(struct call *c);

/* Milliseconds on the monotonic clock. */
static uint64_t methods_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Creates the table; see methods.h. */
struct methods *methods_new(struct reg *r, const struct methods_limits *lim)
{
    struct methods *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->reg = r;
    m->lim = *lim;
    m->started_ms = methods_now_ms();
    return m;
}

/* Frees the table; see methods.h. */
void methods_free(struct methods *m)
{
    free(m);
}

/* Records the connection counts; see methods.h. */
void methods_set_connections(struct methods *m, uint64_t live, uint64_t total)
{
    m->connections = live;
    m->connections_total = total;
}

/* Fills c->err; returns M_ERR for tail calls. */
static int call_fail(struct call *c, enum proto_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int call_fail(struct call *c, enum proto_err code, const char *fmt, ...)
{
    va_list ap;

    c->err.code = code;
    va_start(ap, fmt);
    vsnprintf(c->err.msg, sizeof(c->err.msg), fmt, ap);
    va_end(ap);
    return M_ERR;
}

/* The bad_request for param i (0-based) named what: "push: param 1
 * (writer): expected ...". */
static int call_bad_param(struct call *c, uint32_t i, const char *what, const char *why)
{
    return call_fail(c, PROTO_BAD_REQUEST, "%s: param %" PRIu32 " (%s): %s",
                     proto_method_name(c->method), i + 1, what, why);
}

/* Reads param i as a handle. */
static int param_handle(struct call *c, uint32_t i, const char *what, uint64_t *out)
{
    const char *why = NULL;

    if (proto_read_handle(&c->p[i], out, &why) < 0)
        return call_bad_param(c, i, what, why);
    return 0;
}

/* Reads param i as an array (its items in *items, count in *n), refusing
 * more than max items with too_large. */
static int param_array(struct call *c, uint32_t i, const char *what, uint32_t max,
                       const msgpack_object **items, uint32_t *n)
{
    const char *why = NULL;

    if (proto_read_array(&c->p[i], items, n, &why) < 0)
        return call_bad_param(c, i, what, why);
    if (*n > max)
        return call_fail(c, PROTO_TOO_LARGE, "%s: %" PRIu32 " items, max_batch is %" PRIu32,
                         proto_method_name(c->method), *n, max);
    return 0;
}

/* Reads param i as an arena name: proto_read_str requires 1..max bytes and
 * no NUL. */
static int param_name(struct call *c, uint32_t i, const char **s, size_t *len)
{
    const char *why = NULL;

    if (proto_read_str(&c->p[i], PROTO_MAX_NAME_LEN, s, len, &why) < 0)
        return call_bad_param(c, i, "name", why);
    return 0;
}

/* Copies a store or registry error into the call. */
static int call_store_fail(struct call *c, const struct store_err *err)
{
    c->err = *err;
    return M_ERR;
}

/* Packs a NUL-terminated string. */
static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Packs key (a string) followed by an unsigned value. */
static void pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

/* Starts the success response: the head's bytes in one write to the
 * scratch. Out of memory sets scratch->failed, which methods_call checks. */
static void call_result(struct call *c)
{
    struct obuf *b = c->io->scratch;
    char *p = obuf_reserve(b, PROTO_RESULT_HEAD_MAX);

    if (p != NULL)
        obuf_commit(b, proto_encode_result_head(c->msgid, p));
}

/* A result that is one handle or one unsigned number. */
static int call_result_u64(struct call *c, uint64_t v)
{
    call_result(c);
    msgpack_pack_uint64(&c->pk, v);
    return M_OK;
}

/* A nil result. */
static int call_result_nil(struct call *c)
{
    call_result(c);
    msgpack_pack_nil(&c->pk);
    return M_OK;
}

/* Packs a store location as a protocol location. */
static void pack_loc(msgpack_packer *pk, struct store_loc l)
{
    struct proto_loc pl = {l.file_index, l.offset, l.len};

    proto_pack_loc(pk, pl);
}

/* Writes the msgpack bin header for a len-byte payload into hdr (5 bytes of
 * room) and returns its length. */
static size_t bin_header(uint32_t len, unsigned char *hdr)
{
    if (len <= UINT8_MAX) {
        hdr[0] = 0xc4;
        hdr[1] = (unsigned char)len;
        return 2;
    }
    if (len <= UINT16_MAX) {
        hdr[0] = 0xc5;
        hdr[1] = (unsigned char)(len >> 8);
        hdr[2] = (unsigned char)len;
        return 3;
    }
    hdr[0] = 0xc6;
    hdr[1] = (unsigned char)(len >> 24);
    hdr[2] = (unsigned char)(len >> 16);
    hdr[3] = (unsigned char)(len >> 8);
    hdr[4] = (unsigned char)len;
    return 5;
}

/* Writes the msgpack array header for n items into hdr (5 bytes of room)
 * and returns its length. */
static size_t array_header(uint32_t n, unsigned char *hdr)
{
    if (n < 16) {
        hdr[0] = (unsigned char)(0x90 | n);
        return 1;
    }
    if (n <= UINT16_MAX) {
        hdr[0] = 0xdc;
        hdr[1] = (unsigned char)(n >> 8);
        hdr[2] = (unsigned char)n;
        return 3;
    }
    hdr[0] = 0xdd;
    hdr[1] = (unsigned char)(n >> 24);
    hdr[2] = (unsigned char)(n >> 16);
    hdr[3] = (unsigned char)(n >> 8);
    hdr[4] = (unsigned char)n;
    return 5;
}

/* Drops the arena reference a sendfile segment held, once libevent is done
 * with the segment. */
static void segment_done(const struct evbuffer_file_segment *seg, int flags, void *arg)
{
    (void)seg;
    (void)flags;
    store_arena_unref(arg);
}

/* Appends loc's bytes of a to buf as a sendfile segment. The segment holds a
 * reference to a, so the descriptor stays open until the bytes are sent or
 * the buffer is freed. Returns 0 or -1 (out of memory). */
static int add_segment(struct evbuffer *buf, struct store_arena *a, struct store_loc loc)
{
    int fd = store_arena_fd(a, loc.file_index);
    struct evbuffer_file_segment *seg;
    int rc;

    if (fd < 0)
        return -1;
    seg = evbuffer_file_segment_new(fd, loc.offset, loc.len, EVBUF_FS_DISABLE_LOCKING);
    if (seg == NULL)
        return -1;
    store_arena_ref(a);
    evbuffer_file_segment_add_cleanup_cb(seg, segment_done, a);
    rc = evbuffer_add_file_segment(buf, seg, 0, loc.len);
    /* The buffer's chain holds its own reference to seg. */
    evbuffer_file_segment_free(seg);
    return rc;
}

/* Appends [bin header, payload] for loc to buf, the payload pread straight
 * into buf's free space. On a read error nothing is appended. Returns 0,
 * M_ERR (c->err) or M_BROKEN. */
static int add_payload_copy(struct call *c, struct evbuffer *buf, const struct store_arena *a,
                            struct store_loc loc)
{
    unsigned char hdr[5];
    size_t hl = bin_header(loc.len, hdr);
    size_t need = hl + loc.len;
    struct evbuffer_iovec v;
    struct store_err err;
    char *p;

    if (evbuffer_reserve_space(buf, (ev_ssize_t)need, &v, 1) < 1)
        return M_BROKEN;
    p = v.iov_base;
    memcpy(p, hdr, hl);
    if (store_get(a, loc, p + hl, &err) < 0)
        return call_store_fail(c, &err); /* uncommitted space is discarded */
    v.iov_len = need;
    if (evbuffer_commit_space(buf, &v, 1) < 0)
        return M_BROKEN;
    return M_OK;
}

/* Appends a small get's whole response, [result head, bin header,
 * payload], to the scratch, the payload pread straight into it; the batch's
 * responses then reach the connection's output in one obuf_flush(). On a
 * read error nothing is appended. Returns 0, M_ERR (c->err) or M_BROKEN. */
static int add_small_get(struct call *c, const struct store_arena *a, struct store_loc loc)
{
    struct obuf *b = c->io->scratch;
    unsigned char *p = (unsigned char *)obuf_reserve(b, PROTO_RESULT_HEAD_MAX + 5 + loc.len);
    struct store_err err;
    size_t n;

    if (p == NULL)
        return M_BROKEN;
    n = proto_encode_result_head(c->msgid, p);
    n += bin_header(loc.len, p + n);
    if (store_get(a, loc, p + n, &err) < 0)
        return call_store_fail(c, &err); /* nothing committed */
    obuf_commit(b, n + loc.len);
    return M_OK;
}

/* Logs a hello's client_info map (debug level): its str values, so an
 * operator can tell clients apart. */
static void log_client_info(const msgpack_object *map)
{
    char line[256];
    size_t used = 0;

    if (!log_enabled(LOG_LVL_DEBUG))
        return;
    line[0] = '\0';
    for (uint32_t i = 0; i < map->via.map.size && used < sizeof(line) - 1; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_STR)
            continue;
        int w = snprintf(
            line + used, sizeof(line) - used, " %.*s=%.*s",
            (int)(kv->key.via.str.size > 32 ? 32 : kv->key.via.str.size), kv->key.via.str.ptr,
            (int)(kv->val.via.str.size > 64 ? 64 : kv->val.via.str.size), kv->val.via.str.ptr);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    log_debug("hello: client_info%s", used > 0 ? line : " (no str entries)");
}

/* hello [] or [client_info map]. */
static int m_hello(struct call *c)
{
    const struct methods_limits *l = &c->m->lim;
    msgpack_packer *pk = &c->pk;

    if (c->np == 1 && c->p[0].type != MSGPACK_OBJECT_MAP)
        return call_bad_param(c, 0, "client_info", "expected a map");
    if (c->np == 1)
        log_client_info(&c->p[0]);
    call_result(c);
    msgpack_pack_map(pk, 5);
    pack_cstr(pk, "server");
    pack_cstr(pk, "farenad");
    pack_cstr(pk, "version");
    pack_cstr(pk, FARENAD_VERSION);
    pack_kv_u64(pk, "protocol", PROTO_VERSION);
    pack_cstr(pk, "limits");
    msgpack_pack_map(pk, 12);
    pack_kv_u64(pk, "max_message", l->max_message);
    pack_kv_u64(pk, "max_batch", l->max_batch);
    pack_kv_u64(pk, "max_depth", l->max_depth);
    pack_kv_u64(pk, "max_objects", l->max_objects);
    pack_kv_u64(pk, "max_name", PROTO_MAX_NAME_LEN);
    pack_kv_u64(pk, "file_max", store_file_max(reg_store(c->m->reg)));
    pack_kv_u64(pk, "max_clients", l->max_clients);
    pack_kv_u64(pk, "max_writers", l->max_writers);
    pack_kv_u64(pk, "max_handles", l->max_handles);
    pack_kv_u64(pk, "max_bytes", l->max_bytes);
    pack_kv_u64(pk, "min_free", l->min_free);
    pack_kv_u64(pk, "max_fds", METHODS_MAX_FDS);
    pack_cstr(pk, "methods");
    msgpack_pack_array(pk, PROTO_M_COUNT);
    for (int i = 0; i < PROTO_M_COUNT; i++)
        pack_cstr(pk, proto_method_name((enum proto_method)i));
    return M_OK;
}

/* writer_new [file_index]. */
static int m_writer_new(struct call *c)
{
    const char *why = NULL;
    uint16_t index;
    uint64_t h;

    if (proto_read_index(&c->p[0], &index, &why) < 0)
        return call_bad_param(c, 0, "file_index", why);
    if (reg_writer_new(c->o, index, &h, &c->err) < 0)
        return M_ERR;
    return call_result_u64(c, h);
}

/* push [writer, data]. */
static int m_push(struct call *c)
{
    const char *why = NULL;
    struct store_writer *w;
    struct store_loc loc;
    const void *data;
    size_t len;
    uint64_t h;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    if (proto_read_payload(&c->p[1], &data, &len, &why) < 0)
        return call_bad_param(c, 1, "data", why);
    w = reg_writer(c->o, h, &c->err);
    if (w == NULL || store_push(w, data, len, &loc, &c->err) < 0)
        return M_ERR;
    call_result(c);
    pack_loc(&c->pk, loc);
    return M_OK;
}

/* push_many [writer, [data, ...]]: every item's type is checked before the
 * first byte is written; a store failure at item k leaves items before k
 * written and reports item k. */
static int m_push_many(struct call *c)
{
    const msgpack_object *items;
    struct store_writer *w;
    struct store_loc loc;
    struct store_err err;
    const void *data;
    const char *why;
    size_t len;
    uint32_t n;
    uint64_t h, size, off;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    if (param_array(c, 1, "data", c->m->lim.max_batch, &items, &n) < 0)
        return M_ERR;
    for (uint32_t k = 0; k < n; k++) {
        why = NULL;
        if (proto_read_payload(&items[k], &data, &len, &why) < 0)
            return call_fail(c, PROTO_BAD_REQUEST,
                             "push_many: param 2 (data): item %" PRIu32 ": %s", k, why);
    }
    w = reg_writer(c->o, h, &c->err);
    if (w == NULL)
        return M_ERR;
    /* The locations are known before anything is written, so the reply's
     * exact size is too: refuse now rather than write and lose the reply. */
    size = proto_size_result_head(c->msgid) + proto_size_array(n);
    off = store_writer_len(w);
    for (uint32_t k = 0; k < n; k++) {
        proto_read_payload(&items[k], &data, &len, &why);
        struct proto_loc pl = {store_writer_index(w), (uint32_t)off, (uint32_t)len};
        size += proto_size_loc(pl);
        off += len;
    }
    if (size > c->m->lim.max_message)
        return call_fail(c, PROTO_TOO_LARGE,
                         "push_many: the reply would take %" PRIu64
                         " bytes, max_message is %" PRIu32,
                         size, c->m->lim.max_message);
    call_result(c);
    msgpack_pack_array(&c->pk, n);
    for (uint32_t k = 0; k < n; k++) {
        proto_read_payload(&items[k], &data, &len, &why);
        if (store_push(w, data, len, &loc, &err) < 0)
            return call_fail(c, err.code, "item %" PRIu32 ": %s", k, err.msg);
        pack_loc(&c->pk, loc);
    }
    return M_OK;
}

/* writer_len [writer]. */
static int m_writer_len(struct call *c)
{
    struct store_writer *w;
    uint64_t h;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    w = reg_writer(c->o, h, &c->err);
    if (w == NULL)
        return M_ERR;
    return call_result_u64(c, store_writer_len(w));
}

/* finish [writer]. */
static int m_finish(struct call *c)
{
    uint64_t h, fh;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    if (reg_finish(c->o, h, &fh, &c->err) < 0)
        return M_ERR;
    return call_result_u64(c, fh);
}

/* into_arena [writer]. */
static int m_into_arena(struct call *c)
{
    uint64_t h, ah;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    if (reg_into_arena(c->o, h, &ah, &c->err) < 0)
        return M_ERR;
    return call_result_u64(c, ah);
}

/* build [[file, ...]] and arena_new [[file, ...]]. */
static int build_common(struct call *c, enum reg_build_mode mode)
{
    const msgpack_object *items;
    const char *why;
    uint64_t *fh = NULL, ah;
    uint32_t n;
    int rc;

    if (param_array(c, 0, "files", c->m->lim.max_batch, &items, &n) < 0)
        return M_ERR;
    if (n > 0) {
        fh = calloc(n, sizeof(*fh));
        if (fh == NULL)
            return call_fail(c, PROTO_IO_ERROR, "out of memory");
    }
    for (uint32_t k = 0; k < n; k++) {
        why = NULL;
        if (proto_read_handle(&items[k], &fh[k], &why) < 0) {
            free(fh);
            return call_fail(c, PROTO_BAD_REQUEST, "%s: param 1 (files): item %" PRIu32 ": %s",
                             proto_method_name(c->method), k, why);
        }
    }
    rc = reg_build(c->o, fh, n, mode, &ah, &c->err);
    free(fh);
    if (rc < 0)
        return M_ERR;
    return call_result_u64(c, ah);
}

/* build [[file, ...]]: files in any order. */
static int m_build(struct call *c)
{
    return build_common(c, REG_BUILD_ANY_ORDER);
}

/* arena_new [[file, ...]]: position i holds the file of index i. */
static int m_arena_new(struct call *c)
{
    return build_common(c, REG_BUILD_IN_ORDER);
}

/* Reads a protocol location into a store location. */
static int read_loc(const msgpack_object *o, struct store_loc *out, const char **why)
{
    struct proto_loc pl;

    if (proto_read_loc(o, &pl, why) < 0)
        return -1;
    out->file_index = pl.file_index;
    out->offset = pl.offset;
    out->len = pl.len;
    return 0;
}

/* get [arena, location]. */
static int m_get(struct call *c)
{
    struct methods_out *io = c->io;
    struct store_arena *a;
    struct store_loc loc;
    const char *why = NULL;
    uint64_t h, size;
    int rc;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    if (read_loc(&c->p[1], &loc, &why) < 0)
        return call_bad_param(c, 1, "location", why);
    a = reg_arena(c->m->reg, h, &c->err);
    if (a == NULL || store_check(a, loc, &c->err) < 0)
        return M_ERR;
    size = proto_size_result_head(c->msgid) + proto_size_bin(loc.len);
    if (size > c->m->lim.max_message)
        return call_fail(c, PROTO_TOO_LARGE,
                         "get: a %" PRIu64 "-byte response, max_message is %" PRIu32, size,
                         c->m->lim.max_message);
    if (!c->answer)
        return M_OK;
    if (loc.len >= METHODS_SENDFILE_MIN) {
        unsigned char hdr[5];
        size_t hl = bin_header(loc.len, hdr);
        call_result(c);
        if (obuf_write(io->scratch, (const char *)hdr, hl) < 0 ||
            obuf_flush(io->scratch, io->out) < 0 || add_segment(io->out, a, loc) < 0)
            return M_BROKEN;
    } else {
        rc = add_small_get(c, a, loc);
        if (rc != M_OK)
            return rc;
    }
    c->m->bytes_read += loc.len;
    return M_OK;
}

/* Appends get_many's whole response (size bytes, computed by the caller)
 * to the scratch in one reservation: head, array header, then each item's
 * bin header with its payload pread straight behind it. Nothing is
 * committed until every read succeeded. Returns 0 or M_ERR (c->err). */
static int gather_small(struct call *c, const struct store_arena *a, const struct store_loc *locs,
                        uint32_t n, size_t size)
{
    struct obuf *b = c->io->scratch;
    unsigned char *p;
    struct store_err err;
    size_t off;

    /* The batch's earlier responses go to the output first rather than be
     * copied by a realloc: a big response would otherwise copy them on
     * every doubling. */
    if (b->len > 0 && size > b->cap - b->len && obuf_flush(b, c->io->out) < 0)
        return call_fail(c, PROTO_IO_ERROR, "out of memory");
    p = (unsigned char *)obuf_reserve(b, size);
    if (p == NULL)
        return call_fail(c, PROTO_IO_ERROR, "out of memory");
    off = proto_encode_result_head(c->msgid, p);
    off += array_header(n, p + off);
    for (uint32_t k = 0; k < n; k++) {
        off += bin_header(locs[k].len, p + off);
        if (store_get(a, locs[k], p + off, &err) < 0)
            return call_fail(c, err.code, "item %" PRIu32 ": %s", k, err.msg);
        off += locs[k].len;
    }
    obuf_commit(b, off);
    return M_OK;
}

/* get_many [arena, [location, ...]]: every location is checked and the
 * response's exact size computed before anything is read. A response of
 * small items only (each below METHODS_SENDFILE_MIN, the whole at most
 * METHODS_GATHER_MAX) is assembled in the scratch by gather_small(); any
 * other is assembled in io->tmp (sendfile segments for the large items) and
 * moved to the output in one step. Either way a read error half-way leaves
 * no partial response behind. */
static int m_get_many(struct call *c)
{
    struct methods_out *io = c->io;
    const msgpack_object *items;
    struct store_loc *locs = NULL;
    struct store_arena *a;
    struct store_err err;
    const char *why;
    uint64_t h, size, total = 0;
    uint32_t n, longest = 0;
    int rc = M_OK;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    if (param_array(c, 1, "locations", c->m->lim.max_batch, &items, &n) < 0)
        return M_ERR;
    if (n > 0) {
        locs = calloc(n, sizeof(*locs));
        if (locs == NULL)
            return call_fail(c, PROTO_IO_ERROR, "out of memory");
    }
    for (uint32_t k = 0; k < n; k++) {
        why = NULL;
        if (read_loc(&items[k], &locs[k], &why) < 0) {
            rc = call_fail(c, PROTO_BAD_REQUEST,
                           "get_many: param 2 (locations): item %" PRIu32 ": %s", k, why);
            goto out;
        }
    }
    a = reg_arena(c->m->reg, h, &c->err);
    if (a == NULL) {
        rc = M_ERR;
        goto out;
    }
    size = proto_size_result_head(c->msgid) + proto_size_array(n);
    for (uint32_t k = 0; k < n; k++) {
        if (store_check(a, locs[k], &err) < 0) {
            rc = call_fail(c, err.code, "item %" PRIu32 ": %s", k, err.msg);
            goto out;
        }
        size += proto_size_bin(locs[k].len);
        total += locs[k].len;
        if (locs[k].len > longest)
            longest = locs[k].len;
    }
    if (size > c->m->lim.max_message) {
        rc = call_fail(c, PROTO_TOO_LARGE,
                       "get_many: a %" PRIu64 "-byte response, max_message is %" PRIu32, size,
                       c->m->lim.max_message);
        goto out;
    }
    if (!c->answer)
        goto out;
    if (longest < METHODS_SENDFILE_MIN && size <= METHODS_GATHER_MAX) {
        rc = gather_small(c, a, locs, n, (size_t)size);
        if (rc == M_OK)
            c->m->bytes_read += total;
        goto out;
    }
    for (uint32_t k = 0; k < n && rc == M_OK; k++) {
        if (locs[k].len >= METHODS_SENDFILE_MIN) {
            unsigned char hdr[5];
            size_t hl = bin_header(locs[k].len, hdr);
            if (obuf_append_to(io->tmp, hdr, hl) < 0 || add_segment(io->tmp, a, locs[k]) < 0)
                rc = call_fail(c, PROTO_IO_ERROR, "out of memory");
        } else {
            rc = add_payload_copy(c, io->tmp, a, locs[k]);
            if (rc == M_ERR) {
                err = c->err;
                rc = call_fail(c, err.code, "item %" PRIu32 ": %s", k, err.msg);
            } else if (rc == M_BROKEN) {
                rc = call_fail(c, PROTO_IO_ERROR, "out of memory");
            }
        }
    }
    if (rc != M_OK) {
        evbuffer_drain(io->tmp, evbuffer_get_length(io->tmp));
        goto out;
    }
    call_result(c);
    msgpack_pack_array(&c->pk, n);
    if (io->scratch->failed || obuf_flush(io->scratch, io->out) < 0 ||
        evbuffer_add_buffer(io->out, io->tmp) < 0) {
        evbuffer_drain(io->tmp, evbuffer_get_length(io->tmp));
        rc = M_BROKEN;
        goto out;
    }
    c->m->bytes_read += total;
out:
    free(locs);
    return rc;
}

/* arena_info [arena]. */
static int m_arena_info(struct call *c)
{
    struct reg_arena_info info;
    msgpack_packer *pk = &c->pk;
    uint64_t h;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    if (reg_arena_info(c->m->reg, h, &info, &c->err) < 0)
        return M_ERR;
    call_result(c);
    msgpack_pack_map(pk, 4);
    pack_kv_u64(pk, "files", info.files);
    pack_kv_u64(pk, "bytes", info.bytes);
    pack_kv_u64(pk, "refs", info.refs);
    pack_cstr(pk, "name");
    if (info.name != NULL) {
        msgpack_pack_str(pk, info.name_len);
        msgpack_pack_str_body(pk, info.name, info.name_len);
    } else {
        msgpack_pack_nil(pk);
    }
    return M_OK;
}

/* arena_files [arena]. */
static int m_arena_files(struct call *c)
{
    struct store_arena *a;
    size_t n;
    uint64_t h, size;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    a = reg_arena(c->m->reg, h, &c->err);
    if (a == NULL)
        return M_ERR;
    n = store_arena_nfiles(a);
    size = proto_size_result_head(c->msgid) + proto_size_array(n);
    for (size_t i = 0; i < n; i++)
        size += proto_size_uint(reg_file_handle(store_arena_file(a, i)));
    if (size > c->m->lim.max_message)
        return call_fail(c, PROTO_TOO_LARGE,
                         "arena_files: the reply would take %" PRIu64
                         " bytes, max_message is %" PRIu32,
                         size, c->m->lim.max_message);
    call_result(c);
    msgpack_pack_array(&c->pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(&c->pk, reg_file_handle(store_arena_file(a, i)));
    return M_OK;
}

/* open [arena]. */
static int m_open(struct call *c)
{
    uint64_t h;

    if (param_handle(c, 0, "arena", &h) < 0 || reg_open(c->o, h, &c->err) < 0)
        return M_ERR;
    return call_result_nil(c);
}

/* release [handle]. */
static int m_release(struct call *c)
{
    uint64_t h;

    if (param_handle(c, 0, "handle", &h) < 0 || reg_release(c->o, h, &c->err) < 0)
        return M_ERR;
    return call_result_nil(c);
}

/* name [arena, name]. */
static int m_name(struct call *c)
{
    const char *s;
    size_t len;
    uint64_t h;

    if (param_handle(c, 0, "arena", &h) < 0 || param_name(c, 1, &s, &len) < 0)
        return M_ERR;
    if (reg_name(c->m->reg, h, s, len, &c->err) < 0)
        return M_ERR;
    return call_result_nil(c);
}

/* lookup [name]. */
static int m_lookup(struct call *c)
{
    const char *s;
    size_t len;
    uint64_t h;

    if (param_name(c, 0, &s, &len) < 0 || reg_lookup(c->m->reg, s, len, &h, &c->err) < 0)
        return M_ERR;
    return call_result_u64(c, h);
}

/* unname [name]. */
static int m_unname(struct call *c)
{
    const char *s;
    size_t len;

    if (param_name(c, 0, &s, &len) < 0 || reg_unname(c->m->reg, s, len, &c->err) < 0)
        return M_ERR;
    return call_result_nil(c);
}

/* Packs one of stat's per-method count maps. */
static void pack_counts(msgpack_packer *pk, const char *key, const uint64_t *counts)
{
    pack_cstr(pk, key);
    msgpack_pack_map(pk, PROTO_M_COUNT);
    for (int i = 0; i < PROTO_M_COUNT; i++)
        pack_kv_u64(pk, proto_method_name((enum proto_method)i), counts[i]);
}

/* stat []. */
static int m_stat(struct call *c)
{
    struct methods *m = c->m;
    msgpack_packer *pk = &c->pk;
    struct store_stats ss;
    struct reg_stats rs;

    store_stats_get(reg_store(m->reg), &ss);
    reg_stats_get(m->reg, &rs);
    call_result(c);
    msgpack_pack_map(pk, 13);
    pack_kv_u64(pk, "pid", (uint64_t)getpid());
    pack_kv_u64(pk, "uptime_ms", methods_now_ms() - m->started_ms);
    pack_kv_u64(pk, "connections", m->connections);
    pack_kv_u64(pk, "connections_total", m->connections_total);
    pack_kv_u64(pk, "writers", ss.writers);
    pack_kv_u64(pk, "files", ss.files);
    pack_kv_u64(pk, "arenas", ss.arenas);
    pack_kv_u64(pk, "names", rs.names);
    pack_kv_u64(pk, "bytes_on_disk", ss.bytes_on_disk);
    pack_kv_u64(pk, "bytes_written", ss.bytes_written);
    pack_kv_u64(pk, "bytes_read", m->bytes_read);
    pack_counts(pk, "requests", m->requests);
    pack_counts(pk, "errors", m->errors);
    return M_OK;
}

/* Reopens a's file of index i read-only through /proc/self/fd, close-on-
 * exec: the store's own descriptor is read-write, and a client must never
 * be able to write to or truncate a file through what it receives. Returns
 * the new descriptor, or -1 with *err (limit when the daemon is out of
 * descriptors, io_error otherwise). */
static int reopen_ro(const struct store_arena *a, uint16_t i, struct store_err *err)
{
    char path[64];
    int fd;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", store_arena_fd(a, i));
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd >= 0)
        return fd;
    err->code = errno == EMFILE || errno == ENFILE ? PROTO_LIMIT : PROTO_IO_ERROR;
    snprintf(err->msg, sizeof(err->msg), "arena_fds: reopening file %" PRIu16 " read-only: %s", i,
             strerror(errno));
    return -1;
}

/* Closes the first n descriptors of fds. */
static void close_fds(const int *fds, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        close(fds[k]);
}

/* arena_fds [arena, [file_index, ...]]: read-only descriptors of the
 * arena's files, sent as SCM_RIGHTS with the response's first byte, one
 * per listed index in that order; the result is [files, [[file_index,
 * size], ...]] (files: the arena's file count). Taking them takes one
 * reference on the arena for this connection, as open does, so the files
 * stay alive (and counted) while the client may read them; release or
 * disconnect drops it. Everything is checked and every descriptor opened
 * before the reference is taken, so a failure takes nothing. A
 * notification takes and sends nothing. */
static int m_arena_fds(struct call *c)
{
    const msgpack_object *items;
    struct methods_out *io = c->io;
    struct store_arena *a;
    struct store_err err;
    uint16_t idx[METHODS_MAX_FDS];
    int fds[METHODS_MAX_FDS];
    const char *why = NULL;
    uint32_t n, opened = 0;
    uint64_t h;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    if (proto_read_array(&c->p[1], &items, &n, &why) < 0)
        return call_bad_param(c, 1, "file_indices", why);
    if (n > METHODS_MAX_FDS)
        return call_fail(c, PROTO_TOO_LARGE, "arena_fds: %" PRIu32 " files, max_fds is %u", n,
                         METHODS_MAX_FDS);
    for (uint32_t k = 0; k < n; k++) {
        why = NULL;
        if (proto_read_index(&items[k], &idx[k], &why) < 0)
            return call_fail(c, PROTO_BAD_REQUEST,
                             "arena_fds: param 2 (file_indices): item %" PRIu32 ": %s", k, why);
    }
    a = reg_arena(c->m->reg, h, &c->err);
    if (a == NULL)
        return M_ERR;
    for (uint32_t k = 0; k < n; k++) {
        struct store_loc loc = {idx[k], 0, 0};
        if (store_check(a, loc, &err) < 0)
            return call_fail(c, err.code, "item %" PRIu32 ": %s", k, err.msg);
    }
    if (!c->answer)
        return M_OK;
    if (io->attach_fds == NULL && n > 0)
        return call_fail(c, PROTO_IO_ERROR, "arena_fds: this connection cannot carry descriptors");
    for (; opened < n; opened++) {
        fds[opened] = reopen_ro(a, idx[opened], &c->err);
        if (fds[opened] < 0) {
            close_fds(fds, opened);
            return M_ERR;
        }
    }
    if (reg_open(c->o, h, &c->err) < 0) {
        close_fds(fds, n);
        return M_ERR;
    }
    if (n > 0 && io->attach_fds(io->attach_ctx, fds, n) < 0) {
        close_fds(fds, n);
        reg_release(c->o, h, &err);
        return call_fail(c, PROTO_IO_ERROR, "out of memory");
    }
    /* From here the descriptors ride on the next response: should packing
     * run out of memory, the io_error answer carries them and the client
     * closes them as strays (its reference then lasts until it
     * disconnects). */
    call_result(c);
    msgpack_pack_array(&c->pk, 2);
    msgpack_pack_uint64(&c->pk, store_arena_nfiles(a));
    msgpack_pack_array(&c->pk, n);
    for (uint32_t k = 0; k < n; k++) {
        msgpack_pack_array(&c->pk, 2);
        msgpack_pack_uint16(&c->pk, idx[k]);
        msgpack_pack_uint64(&c->pk, store_file_size(store_arena_file(a, idx[k])));
    }
    return M_OK;
}

/* One method: its handler, how many params it takes (hello: 0 or 1) and
 * their names for the wrong-count message. */
struct method_def {
    method_fn fn;
    uint8_t min_params, max_params;
    const char *params;
};

static const struct method_def method_table[PROTO_M_COUNT] = {
    [PROTO_M_HELLO] = {m_hello, 0, 1, "[] or [client_info]"},
    [PROTO_M_WRITER_NEW] = {m_writer_new, 1, 1, "[file_index]"},
    [PROTO_M_PUSH] = {m_push, 2, 2, "[writer, data]"},
    [PROTO_M_PUSH_MANY] = {m_push_many, 2, 2, "[writer, [data, ...]]"},
    [PROTO_M_WRITER_LEN] = {m_writer_len, 1, 1, "[writer]"},
    [PROTO_M_FINISH] = {m_finish, 1, 1, "[writer]"},
    [PROTO_M_INTO_ARENA] = {m_into_arena, 1, 1, "[writer]"},
    [PROTO_M_BUILD] = {m_build, 1, 1, "[[file, ...]]"},
    [PROTO_M_ARENA_NEW] = {m_arena_new, 1, 1, "[[file, ...]]"},
    [PROTO_M_GET] = {m_get, 2, 2, "[arena, location]"},
    [PROTO_M_GET_MANY] = {m_get_many, 2, 2, "[arena, [location, ...]]"},
    [PROTO_M_ARENA_INFO] = {m_arena_info, 1, 1, "[arena]"},
    [PROTO_M_ARENA_FILES] = {m_arena_files, 1, 1, "[arena]"},
    [PROTO_M_OPEN] = {m_open, 1, 1, "[arena]"},
    [PROTO_M_RELEASE] = {m_release, 1, 1, "[handle]"},
    [PROTO_M_NAME] = {m_name, 2, 2, "[arena, name]"},
    [PROTO_M_LOOKUP] = {m_lookup, 1, 1, "[name]"},
    [PROTO_M_UNNAME] = {m_unname, 1, 1, "[name]"},
    [PROTO_M_STAT] = {m_stat, 0, 0, "[]"},
    [PROTO_M_ARENA_FDS] = {m_arena_fds, 2, 2, "[arena, [file_index, ...]]"},
};

/* Packs c->err as the response, unless c is a notification. */
static int call_answer_error(struct call *c)
{
    if (!c->answer)
        return 0;
    return methods_error(c->io, c->msgid, c->err.code, c->err.msg);
}

/* Dispatches one request; see methods.h. */
int methods_call(struct methods *m, struct reg_owner *o, const struct proto_request *req,
                 int shutting_down, struct methods_out *io)
{
    struct call c = {.m = m, .o = o, .p = req->params, .np = req->nparams, .io = io};
    const struct method_def *def;
    size_t mark = io->scratch->len;
    int mi, rc;

    c.answer = req->type == PROTO_REQUEST;
    c.msgid = c.answer ? req->msgid : 0;
    mi = proto_method_from_name(req->method, req->method_len);
    if (mi < 0) {
        call_fail(&c, PROTO_UNKNOWN_METHOD, "no method \"%.*s\"",
                  (int)(req->method_len > 64 ? 64 : req->method_len), req->method);
        return call_answer_error(&c) < 0 ? -1 : 0;
    }
    c.method = (enum proto_method)mi;
    def = &method_table[mi];
    m->requests[mi]++;
    if (shutting_down) {
        m->errors[mi]++;
        call_fail(&c, PROTO_SHUTTING_DOWN, "the daemon is shutting down");
        return call_answer_error(&c) < 0 ? -1 : 0;
    }
    obuf_packer(io->scratch, &c.pk);
    if (c.np < def->min_params || c.np > def->max_params) {
        call_fail(&c, PROTO_BAD_REQUEST, "%s: expected params %s, got %" PRIu32 " params",
                  proto_method_name(c.method), def->params, c.np);
        rc = M_ERR;
    } else {
        rc = def->fn(&c);
    }
    if (rc == M_BROKEN)
        return -1;
    if (rc == M_OK && !c.answer)
        obuf_truncate(io->scratch, mark); /* a notification's result is dropped */
    if (rc == M_OK && io->scratch->len >= mark && io->scratch->len - mark > m->lim.max_message) {
        /* Methods with side effects check their reply's size before acting;
         * this net only catches the side-effect-free rest. get and get_many
         * check theirs too and move the batch's replies to io->out
         * themselves, which can leave the scratch shorter than mark. */
        obuf_truncate(io->scratch, mark);
        call_fail(&c, PROTO_TOO_LARGE, "%s: the reply is over max_message (%" PRIu32 " bytes)",
                  proto_method_name(c.method), m->lim.max_message);
        rc = M_ERR;
    }
    if (rc == M_OK && io->scratch->failed) {
        /* The packed result is incomplete: answer with an error instead. */
        obuf_truncate(io->scratch, mark);
        call_fail(&c, PROTO_IO_ERROR, "out of memory");
        rc = M_ERR;
    }
    if (rc == M_ERR) {
        m->errors[mi]++;
        obuf_truncate(io->scratch, mark);
        if (call_answer_error(&c) < 0)
            return -1;
    }
    return 0;
}

/* Answers an undecodable request; see methods.h. */
int methods_reject(struct methods *m, const struct proto_request *req, const char *why,
                   struct methods_out *io)
{
    char msg[sizeof(((struct store_err *)0)->msg)];
    int mi = -1;

    if (req->method != NULL)
        mi = proto_method_from_name(req->method, req->method_len);
    if (mi >= 0) {
        m->requests[mi]++;
        m->errors[mi]++;
        snprintf(msg, sizeof(msg), "%s: %s", proto_method_name((enum proto_method)mi),
                 why != NULL ? why : "malformed request");
    } else {
        snprintf(msg, sizeof(msg), "%s", why != NULL ? why : "malformed request");
    }
    if (req->type != PROTO_REQUEST || !req->answerable)
        return 0;
    return methods_error(io, req->msgid, PROTO_BAD_REQUEST, msg);
}

/* Packs an error response; see methods.h. */
int methods_error(struct methods_out *io, uint32_t msgid, enum proto_err code, const char *message)
{
    msgpack_packer pk;
    size_t mark = io->scratch->len;

    obuf_packer(io->scratch, &pk);
    proto_pack_error(&pk, msgid, code, message);
    if (io->scratch->failed) {
        obuf_truncate(io->scratch, mark);
        return -1;
    }
    return 0;
}
