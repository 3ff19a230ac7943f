/* The method table. Each method decodes its params with proto_read_*,
 * calls the registry or the store, and packs its result. Errors are
 * collected in one struct err and packed by the dispatcher, so every
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

#include "proto_limits.h"
#include "io.h"
#include "log.h"
#include "outq.h"

struct methods {
    struct reg *reg;
    struct io *io;
    const struct farenad_config *cfg; /* borrowed */
    uint64_t started_ms;              /* CLOCK_MONOTONIC, for uptime */
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
    struct obuf *tail; /* outq_tail(io->q): replies complete now */
    msgpack_packer pk; /* packs into tail */
    struct err err;
};

/* A method's outcome: done (its reply packed in the tail), failed with
 * c->err, the output is broken, or answered through a slot (the reply waits
 * for the I/O engine; the slot owns it from now on, errors included). */
enum { M_OK = 0, M_ERR = -1, M_BROKEN = -2, M_SLOT = 1 };

typedef int (*method_fn)(struct call *c);

/* Milliseconds on the monotonic clock. */
static uint64_t methods_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Creates the table; see methods.h. */
struct methods *methods_new(struct reg *r, struct io *io, const struct farenad_config *cfg)
{
    struct methods *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->reg = r;
    m->io = io;
    m->cfg = cfg;
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

/* The bad_request for param i (0-based) named what: "push: param 1
 * (writer): expected ...". */
static int call_bad_param(struct call *c, uint32_t i, const char *what, const char *why)
{
    return err_set(&c->err, PROTO_BAD_REQUEST, "%s: param %" PRIu32 " (%s): %s",
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
        return err_set(&c->err, PROTO_TOO_LARGE, "%s: %" PRIu32 " items, max_batch is %" PRIu32,
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

/* Packs key (a string) followed by an unsigned value. */
static void pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    proto_pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

/* Starts the success response: the head's bytes in one write to the
 * scratch. Out of memory sets scratch->failed, which methods_call checks. */
static void call_result(struct call *c)
{
    struct obuf *b = c->tail;
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

/* ---- replies that wait for the I/O engine ----
 *
 * A get reserves its whole reply in a slot of the connection's outq (head,
 * bin header, and room for the payload, which the engine reads straight
 * into it); a push's reply waits in a blocking slot until its write is
 * done. The completions below finish those slots. */

/* Reads into one slot: a get (one item) or a get_many (one per non-empty
 * item). Allocated by the method, freed by the last completion. */
struct rd_batch {
    struct methods *m;
    struct outq_slot *s;
    enum proto_method method;
    uint32_t left;  /* reads not yet complete */
    uint64_t bytes; /* payload bytes, for bytes_read */
    int failed;
    struct rd_item {
        struct rd_batch *b;
        uint32_t k;   /* the item's index (get_many's messages) */
        uint32_t len; /* bytes asked */
    } it[];
};

/* A read into a slot completed (res bytes, or -errno). */
static void rd_done(void *arg, ssize_t res)
{
    struct rd_item *it = arg;
    struct rd_batch *b = it->b;

    if (res == (ssize_t)it->len) {
        outq_slot_done(b->s);
    } else {
        char msg[160], item[24] = "";

        if (b->method == PROTO_M_GET_MANY)
            snprintf(item, sizeof(item), "item %" PRIu32 ": ", it->k);
        if (res < 0)
            snprintf(msg, sizeof(msg), "%sread of %" PRIu32 " bytes failed: %s", item, it->len,
                     strerror((int)-res));
        else
            snprintf(msg, sizeof(msg),
                     "%sshort read: %zd of %" PRIu32
                     " bytes (the file ended early: changed behind the daemon's back)",
                     item, res, it->len);
        if (!b->failed) {
            b->failed = 1;
            b->m->errors[b->method]++;
            log_warn("%s: %s", proto_method_name(b->method), msg);
        }
        outq_slot_fail(b->s, PROTO_IO_ERROR, msg,
                       b->method == PROTO_M_GET_MANY ? (int64_t)it->k : -1);
    }
    if (--b->left == 0) {
        if (!b->failed)
            b->m->bytes_read += b->bytes;
        free(b);
    }
}

/* A batch of nreads reads into s, items not yet filled in; NULL when out
 * of memory, with s failed (the caller returns M_SLOT). */
static struct rd_batch *rd_batch_new(struct call *c, struct outq_slot *s, uint32_t nreads)
{
    struct rd_batch *b = malloc(sizeof(*b) + nreads * sizeof(b->it[0]));

    if (b == NULL) {
        c->m->errors[c->method]++;
        outq_slot_fail(s, PROTO_IO_ERROR, "out of memory", -1);
        return NULL;
    }
    b->m = c->m;
    b->s = s;
    b->method = c->method;
    b->left = nreads;
    b->bytes = 0;
    b->failed = 0;
    return b;
}

/* Issues the reads of a slot's payloads: n locations of a, each read into
 * dst[k] (items of length 0 have nothing to read). The slot holds one part
 * on entry; it ends up with one per read. Returns M_SLOT. */
static int rd_issue(struct call *c, struct outq_slot *s, const struct store_arena *a,
                    const struct store_loc *locs, char *const *dst, uint32_t n)
{
    struct rd_batch *b;
    uint32_t nreads = 0, j = 0;

    for (uint32_t k = 0; k < n; k++)
        nreads += locs[k].len > 0;
    if (nreads == 0) {
        outq_slot_done(s);
        return M_SLOT;
    }
    b = rd_batch_new(c, s, nreads);
    if (b == NULL)
        return M_SLOT;
    outq_slot_add(s, nreads - 1);
    for (uint32_t k = 0; k < n; k++) {
        if (locs[k].len == 0)
            continue;
        b->it[j].b = b;
        b->it[j].k = k;
        b->it[j].len = locs[k].len;
        b->bytes += locs[k].len;
        j++;
    }
    j = 0;
    for (uint32_t k = 0; k < n; k++) {
        struct store_file *f;

        if (locs[k].len == 0)
            continue;
        f = store_arena_file(a, locs[k].file_index);
        if (io_read(c->m->io, f, locs[k].offset, dst[k], locs[k].len, rd_done, &b->it[j]) < 0) {
            /* Out of memory half-way: this read and every later one fail
             * here (the earlier ones complete as usual). */
            for (uint32_t r = j; r < nreads; r++)
                rd_done(&b->it[r], -ENOMEM);
            break;
        }
        j++;
    }
    return M_SLOT;
}

/* A write in flight for push, push_many, finish or into_arena: what its
 * completion needs to answer. Allocated by the method, freed by wr_done. */
struct wr {
    struct methods *m;
    struct reg_owner *o;
    struct outq_slot *s;
    struct store_writer *w;
    struct store_wreq req;
    enum proto_method method;
    int answer;
    uint32_t msgid;
    uint64_t h;     /* finish / into_arena: the writer's handle */
    uint64_t start; /* push_many: the writer's length before item 0 */
    uint32_t n;     /* push_many: items */
    uint32_t *lens; /* push_many: their lengths (owned) */
    int refused;    /* push_many: item refused_k was refused before the write */
    uint32_t refused_k;
    struct err refused_err;
};

/* Ends x's slot with an error about item (-1: none); a notification's
 * slot just ends. */
static void wr_fail(struct wr *x, enum proto_err code, const char *msg, int64_t item)
{
    x->m->errors[x->method]++;
    if (!x->answer) {
        obuf_truncate(outq_slot_buf(x->s), 0);
        outq_slot_done(x->s);
        return;
    }
    outq_slot_fail(x->s, code, msg, item);
}

/* push_many: the item that starts at offset off (the first byte a failed
 * write lost). */
static uint32_t wr_item_at(const struct wr *x, uint64_t off)
{
    uint64_t pos = x->start;

    for (uint32_t k = 0; k < x->n; k++) {
        if (pos >= off && x->lens[k] > 0)
            return k;
        pos += x->lens[k];
    }
    return x->n > 0 ? x->n - 1 : 0;
}

/* A write completed (res bytes, or -errno). */
static void wr_done(void *arg, ssize_t res)
{
    struct wr *x = arg;
    struct err err;
    char msg[sizeof(err.msg) + 24];
    int errnum = res < 0 ? (int)-res : ((uint64_t)res != x->req.bytes ? EIO : 0);

    if (store_write_done(x->w, &x->req, errnum, &err) < 0) {
        if (x->method == PROTO_M_PUSH_MANY) {
            uint32_t k = wr_item_at(x, store_writer_len(x->w));

            snprintf(msg, sizeof(msg), "item %" PRIu32 ": %s", k, err.msg);
            wr_fail(x, err.code, msg, k);
        } else {
            wr_fail(x, err.code, err.msg, -1);
        }
    } else if (x->refused) {
        snprintf(msg, sizeof(msg), "item %" PRIu32 ": %s", x->refused_k, x->refused_err.msg);
        wr_fail(x, x->refused_err.code, msg, x->refused_k);
    } else if (x->method == PROTO_M_FINISH || x->method == PROTO_M_INTO_ARENA) {
        uint64_t out;
        int rc = x->method == PROTO_M_FINISH ? reg_finish(x->o, x->h, &out, &err)
                                             : reg_into_arena(x->o, x->h, &out, &err);
        if (rc < 0) {
            wr_fail(x, err.code, err.msg, -1);
        } else if (x->answer) {
            struct obuf *b = outq_slot_buf(x->s);
            char *p = obuf_reserve(b, PROTO_RESULT_HEAD_MAX);
            msgpack_packer pk;

            if (p != NULL)
                obuf_commit(b, proto_encode_result_head(x->msgid, p));
            obuf_packer(b, &pk);
            msgpack_pack_uint64(&pk, out);
            outq_slot_done(x->s); /* a failed pack becomes io_error there */
        } else {
            outq_slot_done(x->s);
        }
    } else {
        if (!x->answer)
            obuf_truncate(outq_slot_buf(x->s), 0);
        outq_slot_done(x->s);
    }
    free(x->lens);
    free(x);
}

/* Sends req (taken from w) to the engine, answering through a new blocking
 * slot. x is filled by the caller beyond what this sets, or NULL for a
 * plain push. The slot holds result bytes the caller packs after this
 * returns (answer only). Returns M_SLOT, or M_BROKEN when out of memory
 * before anything was queued (the write is then rolled back). */
static int wr_start(struct call *c, struct store_writer *w, const struct store_wreq *req,
                    struct wr *x)
{
    struct err err;

    x->m = c->m;
    x->o = c->o;
    x->w = w;
    x->req = *req;
    x->method = c->method;
    x->answer = c->answer;
    x->msgid = c->msgid;
    x->s = outq_slot_new(c->io->q, c->msgid, 0, OUTQ_BLOCKING);
    if (x->s == NULL ||
        io_write(c->m->io, req->fd, req->off, req->iov, req->iovcnt, wr_done, x) < 0) {
        /* Nothing went to the kernel: undo as a failed write would. A slot
         * already made still answers (with the error). */
        store_write_done(w, req, ENOMEM, &err);
        if (x->s == NULL) {
            free(x->lens);
            free(x);
            return M_BROKEN;
        }
        wr_fail(x, PROTO_IO_ERROR, "out of memory", -1);
        free(x->lens);
        free(x);
        return M_SLOT;
    }
    return M_SLOT;
}

/* Packs the start of a success reply into a write's slot: its head. The
 * caller packs the result behind it with pk (pointed at the slot). */
static void wr_result(struct call *c, struct wr *x, msgpack_packer *pk)
{
    struct obuf *b = outq_slot_buf(x->s);
    char *p = obuf_reserve(b, PROTO_RESULT_HEAD_MAX);

    if (p != NULL)
        obuf_commit(b, proto_encode_result_head(c->msgid, p));
    obuf_packer(b, pk);
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
    const struct farenad_config *l = c->m->cfg;
    msgpack_packer *pk = &c->pk;

    if (c->np == 1 && c->p[0].type != MSGPACK_OBJECT_MAP)
        return call_bad_param(c, 0, "client_info", "expected a map");
    if (c->np == 1)
        log_client_info(&c->p[0]);
    call_result(c);
    msgpack_pack_map(pk, 5);
    proto_pack_cstr(pk, "server");
    proto_pack_cstr(pk, "farenad");
    proto_pack_cstr(pk, "version");
    proto_pack_cstr(pk, FARENAD_VERSION);
    pack_kv_u64(pk, "protocol", PROTO_VERSION);
    proto_pack_cstr(pk, "limits");
    msgpack_pack_map(pk, 14);
    pack_kv_u64(pk, "max_message", l->limits.max_message);
    pack_kv_u64(pk, "max_batch", l->max_batch);
    pack_kv_u64(pk, "max_depth", l->limits.max_depth);
    pack_kv_u64(pk, "max_objects", l->limits.max_objects);
    pack_kv_u64(pk, "max_name", PROTO_MAX_NAME_LEN);
    pack_kv_u64(pk, "file_max", store_file_max(reg_store(c->m->reg)));
    pack_kv_u64(pk, "max_clients", l->max_clients);
    pack_kv_u64(pk, "max_writers", l->reg.max_writers);
    pack_kv_u64(pk, "max_handles", l->reg.max_handles);
    pack_kv_u64(pk, "max_bytes", l->store.max_bytes);
    pack_kv_u64(pk, "min_free", l->store.min_free);
    pack_kv_u64(pk, "io_depth", io_depth(c->m->io));
    pack_kv_u64(pk, "reply_memory", l->reply_memory);
    pack_kv_u64(pk, "max_fds", METHODS_MAX_FDS);
    proto_pack_cstr(pk, "methods");
    msgpack_pack_array(pk, PROTO_M_COUNT);
    for (int i = 0; i < PROTO_M_COUNT; i++)
        proto_pack_cstr(pk, proto_method_name((enum proto_method)i));
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

/* push [writer, data]. A payload that fits in the writer's buffer is
 * answered at once; one that makes the buffer flush is answered once its
 * write is done, and the connection waits for it (its bytes are in the
 * connection's input buffer). */
static int m_push(struct call *c)
{
    const char *why = NULL;
    struct store_writer *w;
    struct store_wreq req;
    struct store_loc loc;
    msgpack_packer pk;
    const void *data;
    struct wr *x;
    size_t len;
    uint64_t h;
    int rc;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    if (proto_read_payload(&c->p[1], &data, &len, &why) < 0)
        return call_bad_param(c, 1, "data", why);
    w = reg_writer(c->o, h, &c->err);
    if (w == NULL || store_stage(w, data, len, &loc, &c->err) < 0)
        return M_ERR;
    rc = store_write_take(w, 0, &req, &c->err);
    if (rc < 0)
        return M_ERR;
    if (rc == 0) {
        call_result(c);
        pack_loc(&c->pk, loc);
        return M_OK;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        store_write_done(w, &req, ENOMEM, &c->err);
        return M_ERR;
    }
    rc = wr_start(c, w, &req, x);
    if (rc == M_SLOT && c->answer) {
        wr_result(c, x, &pk);
        pack_loc(&pk, loc);
    }
    return rc;
}

/* push_many [writer, [data, ...]]: every item's type is checked before the
 * first byte is accepted; a store failure at item k leaves items before k
 * written and reports item k. The items that make the buffer flush go to
 * the file in one write, by reference. */
static int m_push_many(struct call *c)
{
    const msgpack_object *items;
    struct store_writer *w;
    struct store_wreq req;
    struct store_loc loc;
    msgpack_packer pk;
    const void *data;
    const char *why;
    struct err refused_err;
    struct wr *x;
    size_t len, mark;
    uint32_t n, k;
    uint64_t h, size, off, start;
    int rc, refused = 0;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    if (param_array(c, 1, "data", c->m->cfg->max_batch, &items, &n) < 0)
        return M_ERR;
    for (k = 0; k < n; k++) {
        why = NULL;
        if (proto_read_payload(&items[k], &data, &len, &why) < 0)
            return err_set_item(&c->err, PROTO_BAD_REQUEST, k,
                                "push_many: param 2 (data): item %" PRIu32 ": %s", k, why);
    }
    w = reg_writer(c->o, h, &c->err);
    if (w == NULL)
        return M_ERR;
    /* The locations are known before anything is written, so the reply's
     * exact size is too: refuse now rather than write and lose the reply. */
    size = proto_size_result_head(c->msgid) + proto_size_array(n);
    off = store_writer_len(w);
    for (k = 0; k < n; k++) {
        proto_read_payload(&items[k], &data, &len, &why);
        struct proto_loc pl = {store_writer_index(w), (uint32_t)off, (uint32_t)len};
        size += proto_size_loc(pl);
        off += len;
    }
    if (size > c->m->cfg->limits.max_message)
        return err_set(&c->err, PROTO_TOO_LARGE,
                       "push_many: the reply would take %" PRIu64 " bytes, max_message is %" PRIu32,
                       size, c->m->cfg->limits.max_message);
    start = store_writer_len(w);
    /* The reply goes to the tail for now; it moves to the write's slot if
     * one is needed. */
    mark = c->tail->len;
    call_result(c);
    msgpack_pack_array(&c->pk, n);
    for (k = 0; k < n; k++) {
        proto_read_payload(&items[k], &data, &len, &why);
        if (store_stage(w, data, len, &loc, &refused_err) < 0) {
            refused = 1;
            break;
        }
        pack_loc(&c->pk, loc);
    }
    rc = store_write_take(w, 0, &req, &c->err);
    if (rc < 0)
        return M_ERR;
    if (rc == 0) {
        /* Nothing to write: the reply packed above stands, unless an item
         * was refused. */
        if (!refused)
            return M_OK;
        obuf_truncate(c->tail, mark);
        return err_set_item(&c->err, refused_err.code, k, "item %" PRIu32 ": %s", k,
                            refused_err.msg);
    }
    obuf_truncate(c->tail, mark);
    /* A write is needed: its completion answers, and needs the items'
     * lengths to name the one a failed write lost. */
    x = calloc(1, sizeof(*x));
    if (x == NULL || (n > 0 && (x->lens = malloc(n * sizeof(*x->lens))) == NULL)) {
        free(x);
        store_write_done(w, &req, ENOMEM, &c->err);
        return err_set(&c->err, PROTO_IO_ERROR, "out of memory");
    }
    x->n = n;
    x->start = start;
    x->refused = refused;
    x->refused_k = k;
    x->refused_err = refused_err;
    for (uint32_t i = 0; i < n; i++) {
        proto_read_payload(&items[i], &data, &len, &why);
        x->lens[i] = (uint32_t)len;
    }
    rc = wr_start(c, w, &req, x);
    if (rc == M_SLOT && c->answer && !refused) {
        wr_result(c, x, &pk);
        msgpack_pack_array(&pk, n);
        off = start;
        for (k = 0; k < n; k++) {
            struct store_loc l = {store_writer_index(w), (uint32_t)off, x->lens[k]};
            pack_loc(&pk, l);
            off += x->lens[k];
        }
    }
    return rc;
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

/* finish [writer] and into_arena [writer]: bytes still in the writer's
 * buffer are written first (through the engine; the reply waits for it). */
static int finish_common(struct call *c)
{
    struct store_writer *w;
    struct store_wreq req;
    struct wr *x;
    uint64_t h, out;
    int rc;

    if (param_handle(c, 0, "writer", &h) < 0)
        return M_ERR;
    w = reg_writer(c->o, h, &c->err);
    if (w == NULL)
        return M_ERR;
    if (c->method == PROTO_M_INTO_ARENA && store_writer_index(w) != 0) {
        /* Refused before any write, as the registry would. */
        rc = reg_into_arena(c->o, h, &out, &c->err);
        return rc < 0 ? M_ERR : call_result_u64(c, out);
    }
    rc = store_write_take(w, 1, &req, &c->err);
    if (rc < 0)
        return M_ERR;
    if (rc == 0) {
        rc = c->method == PROTO_M_FINISH ? reg_finish(c->o, h, &out, &c->err)
                                         : reg_into_arena(c->o, h, &out, &c->err);
        return rc < 0 ? M_ERR : call_result_u64(c, out);
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        store_write_done(w, &req, ENOMEM, &c->err);
        return M_ERR;
    }
    x->h = h;
    return wr_start(c, w, &req, x);
}

/* finish [writer]. */
static int m_finish(struct call *c)
{
    return finish_common(c);
}

/* into_arena [writer]. */
static int m_into_arena(struct call *c)
{
    return finish_common(c);
}

/* build [[file, ...]] and arena_new [[file, ...]]. */
static int build_common(struct call *c, enum reg_build_mode mode)
{
    const msgpack_object *items;
    const char *why;
    uint64_t *fh = NULL, ah;
    uint32_t n;
    int rc;

    if (param_array(c, 0, "files", c->m->cfg->max_batch, &items, &n) < 0)
        return M_ERR;
    if (n > 0) {
        fh = calloc(n, sizeof(*fh));
        if (fh == NULL)
            return err_set(&c->err, PROTO_IO_ERROR, "out of memory");
    }
    for (uint32_t k = 0; k < n; k++) {
        why = NULL;
        if (proto_read_handle(&items[k], &fh[k], &why) < 0) {
            free(fh);
            return err_set_item(&c->err, PROTO_BAD_REQUEST, k,
                                "%s: param 1 (files): item %" PRIu32 ": %s",
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

/* A sendfile part of a get's reply went out (or was dropped): the file's
 * reference goes. */
static void file_part_done(void *arg, int sent)
{
    (void)sent;
    store_file_unref(arg);
}

/* A spliced get's pipe came back from its reply: reusable if drained. */
static void pipe_part_done(void *arg, int sent)
{
    io_pipe_put(arg, sent);
}

/* Issues the splice of a get's payload (loc of f) into p, which then goes
 * out right after s (the reply's head and bin header). Returns M_SLOT. */
static int rd_splice(struct call *c, struct outq_slot *s, struct store_file *f,
                     struct store_loc loc, struct io_pipe *p)
{
    struct rd_batch *b;

    /* The slot owns the pipe from here: a failure drops it. */
    outq_slot_attach_pipe(s, io_pipe_rfd(p), loc.len, pipe_part_done, p);
    b = rd_batch_new(c, s, 1);
    if (b == NULL)
        return M_SLOT;
    b->bytes = loc.len;
    b->it[0].b = b;
    b->it[0].k = 0;
    b->it[0].len = loc.len;
    if (io_splice(c->m->io, f, loc.offset, p, loc.len, rd_done, &b->it[0]) < 0)
        rd_done(&b->it[0], -ENOMEM);
    return M_SLOT;
}

/* Reserves a get's or get_many's whole reply (size bytes) in a new slot
 * and packs its head; *p is where the next byte goes. Returns the slot, or
 * NULL when out of memory. */
static struct outq_slot *get_slot(struct call *c, size_t size, unsigned char **p)
{
    struct outq_slot *s = outq_slot_new(c->io->q, c->msgid, size, 0);
    struct obuf *b;

    if (s == NULL)
        return NULL;
    b = outq_slot_buf(s);
    *p = (unsigned char *)obuf_reserve(b, size); /* the slot has room: no move */
    obuf_commit(b, size);
    *p += proto_encode_result_head(c->msgid, *p);
    return s;
}

/* get [arena, location]: the reply is reserved in a slot and the payload
 * read into it by the engine (a cached one within this loop turn). */
static int m_get(struct call *c)
{
    struct outq_slot *s;
    struct store_arena *a;
    struct store_file *f;
    struct store_loc loc;
    const char *why = NULL;
    unsigned char *p;
    char *dst;
    uint64_t h, size;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    if (read_loc(&c->p[1], &loc, &why) < 0)
        return call_bad_param(c, 1, "location", why);
    a = reg_arena(c->m->reg, h, &c->err);
    if (a == NULL || store_check(a, loc, &c->err) < 0)
        return M_ERR;
    size = proto_size_result_head(c->msgid) + proto_size_bin(loc.len);
    if (size > c->m->cfg->limits.max_message)
        return err_set(&c->err, PROTO_TOO_LARGE,
                       "get: a %" PRIu64 "-byte response, max_message is %" PRIu32, size,
                       c->m->cfg->limits.max_message);
    if (!c->answer)
        return M_OK;
    if (loc.len == 0) {
        unsigned char hdr[5];
        call_result(c);
        return obuf_write(c->tail, (const char *)hdr, bin_header(0, hdr)) < 0 ? M_BROKEN : M_OK;
    }
    f = store_arena_file(a, loc.file_index);
    if (loc.len >= METHODS_SENDFILE_MIN && io_cached(f, loc.offset, loc.len)) {
        /* Every page is cached: the payload goes from the page cache to
         * the socket with sendfile, without a copy through our memory and
         * without waiting for the device. The file stays referenced until
         * its bytes are sent. */
        unsigned char hdr[5];

        call_result(c);
        if (obuf_write(c->tail, (const char *)hdr, bin_header(loc.len, hdr)) < 0)
            return M_BROKEN;
        store_file_ref(f);
        if (outq_file(c->io->q, store_file_fd(f), loc.offset, loc.len, file_part_done, f) < 0) {
            store_file_unref(f);
            return M_BROKEN;
        }
        c->m->bytes_read += loc.len;
        return M_SLOT; /* the reply is in the queue's chain, past the tail */
    }
    if (loc.len >= METHODS_SPLICE_MIN) {
        struct io_pipe *pipe = io_pipe_get(c->m->io, loc.offset, loc.len);

        if (pipe != NULL) {
            s = get_slot(c, (size_t)size - loc.len, &p);
            if (s == NULL) {
                io_pipe_put(pipe, 1);
                return M_BROKEN;
            }
            bin_header(loc.len, p);
            return rd_splice(c, s, f, loc, pipe);
        }
    }
    s = get_slot(c, (size_t)size, &p);
    if (s == NULL)
        return M_BROKEN;
    p += bin_header(loc.len, p);
    dst = (char *)p;
    return rd_issue(c, s, a, &loc, &dst, 1);
}

/* get_many [arena, [location, ...]]: every location is checked and the
 * response's exact size computed before anything is read; the whole
 * response is one slot, every payload read straight into its place. A
 * read error fails the whole response (no partial response goes out). */
static int m_get_many(struct call *c)
{
    const msgpack_object *items;
    struct store_loc *locs = NULL;
    struct outq_slot *s;
    struct store_arena *a;
    struct err err;
    unsigned char *p;
    char **dst = NULL;
    const char *why;
    uint64_t h, size;
    uint32_t n;
    int rc = M_OK;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    if (param_array(c, 1, "locations", c->m->cfg->max_batch, &items, &n) < 0)
        return M_ERR;
    if (n > 0) {
        locs = calloc(n, sizeof(*locs));
        dst = calloc(n, sizeof(*dst));
        if (locs == NULL || dst == NULL) {
            rc = err_set(&c->err, PROTO_IO_ERROR, "out of memory");
            goto out;
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        why = NULL;
        if (read_loc(&items[k], &locs[k], &why) < 0) {
            rc = err_set_item(&c->err, PROTO_BAD_REQUEST, k,
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
            rc = err_set_item(&c->err, err.code, k, "item %" PRIu32 ": %s", k, err.msg);
            goto out;
        }
        size += proto_size_bin(locs[k].len);
    }
    if (size > c->m->cfg->limits.max_message) {
        rc = err_set(&c->err, PROTO_TOO_LARGE,
                     "get_many: a %" PRIu64 "-byte response, max_message is %" PRIu32, size,
                     c->m->cfg->limits.max_message);
        goto out;
    }
    if (!c->answer)
        goto out;
    s = get_slot(c, (size_t)size, &p);
    if (s == NULL) {
        rc = M_BROKEN;
        goto out;
    }
    p += array_header(n, p);
    for (uint32_t k = 0; k < n; k++) {
        p += bin_header(locs[k].len, p);
        dst[k] = (char *)p;
        p += locs[k].len;
    }
    rc = rd_issue(c, s, a, locs, dst, n);
out:
    free(locs);
    free(dst);
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
    proto_pack_cstr(pk, "name");
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
    if (size > c->m->cfg->limits.max_message)
        return err_set(&c->err, PROTO_TOO_LARGE,
                       "arena_files: the reply would take %" PRIu64
                       " bytes, max_message is %" PRIu32,
                       size, c->m->cfg->limits.max_message);
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
    proto_pack_cstr(pk, key);
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

/* The bytes one list entry takes: {name, arena, bytes, files, refs}. */
static size_t list_entry_size(const struct reg_list_entry *e)
{
    return 1 + proto_size_str(4) + proto_size_str(e->name_len) + proto_size_str(5) +
           proto_size_uint(e->arena) + proto_size_str(5) + proto_size_uint(e->bytes) +
           proto_size_str(5) + proto_size_uint(e->files) + proto_size_str(4) +
           proto_size_uint(e->refs);
}

/* list [prefix, cursor, count]: the names starting with prefix that sort
 * after cursor, in byte order, at most count (and max_batch) of them and
 * fewer when the reply would pass max_message; the reply's cursor is the
 * last name returned, or nil when no later name has the prefix. */
static int m_list(struct call *c)
{
    const struct farenad_config *l = c->m->cfg;
    msgpack_packer *pk = &c->pk;
    const char *why = NULL, *prefix = "", *after = NULL;
    size_t plen = 0, alen = 0, cap, n = 0, size;
    struct reg_list_entry *ents = NULL, e;
    struct reg_stats rs;
    uint64_t count;
    int more;

    if (c->p[0].type != MSGPACK_OBJECT_STR)
        return call_bad_param(c, 0, "prefix", "expected a str (\"\" for every name)");
    if (c->p[0].via.str.size > 0 &&
        proto_read_str(&c->p[0], PROTO_MAX_NAME_LEN, &prefix, &plen, &why) < 0)
        return call_bad_param(c, 0, "prefix", why);
    if (c->p[1].type != MSGPACK_OBJECT_NIL &&
        proto_read_str(&c->p[1], PROTO_MAX_NAME_LEN, &after, &alen, &why) < 0)
        return call_bad_param(c, 1, "cursor", "expected nil or the cursor of a previous list");
    if (proto_read_uint(&c->p[2], UINT32_MAX, &count, &why) < 0)
        return call_bad_param(c, 2, "count", why);
    if (count == 0)
        return call_bad_param(c, 2, "count", "count must be at least 1");
    reg_stats_get(c->m->reg, &rs);
    cap = count < l->max_batch ? (size_t)count : l->max_batch;
    cap = cap < rs.names ? cap : (size_t)rs.names;
    if (cap > 0 && (ents = malloc(cap * sizeof(*ents))) == NULL)
        return err_set(&c->err, PROTO_IO_ERROR, "list: out of memory");
    /* Head, {"names": [...], "cursor": the longest name}: every entry that
     * fits after that stays under max_message (64 KiB at least, so a page
     * always holds one name of 255 bytes). */
    size = proto_size_result_head(c->msgid) + 1 + proto_size_str(5) + proto_size_array(cap) +
           proto_size_str(6) + proto_size_str(PROTO_MAX_NAME_LEN);
    while (n < cap && reg_list_next(c->m->reg, prefix, plen, after, alen, &e)) {
        size_t es = list_entry_size(&e);
        if (size + es > l->limits.max_message)
            break;
        size += es;
        ents[n++] = e;
        after = e.name;
        alen = e.name_len;
    }
    more = reg_list_next(c->m->reg, prefix, plen, after, alen, &e);
    call_result(c);
    msgpack_pack_map(pk, 2);
    proto_pack_cstr(pk, "names");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 5);
        proto_pack_cstr(pk, "name");
        msgpack_pack_str(pk, ents[i].name_len);
        msgpack_pack_str_body(pk, ents[i].name, ents[i].name_len);
        pack_kv_u64(pk, "arena", ents[i].arena);
        pack_kv_u64(pk, "bytes", ents[i].bytes);
        pack_kv_u64(pk, "files", ents[i].files);
        pack_kv_u64(pk, "refs", ents[i].refs);
    }
    proto_pack_cstr(pk, "cursor");
    if (more) {
        msgpack_pack_str(pk, alen);
        msgpack_pack_str_body(pk, after, alen);
    } else {
        msgpack_pack_nil(pk);
    }
    free(ents);
    return M_OK;
}

/* Reopens a's file of index i read-only through /proc/self/fd, close-on-
 * exec: the store's own descriptor is read-write, and a client must never
 * be able to write to or truncate a file through what it receives. Returns
 * the new descriptor, or -1 with *err (limit when the daemon is out of
 * descriptors, io_error otherwise). */
static int reopen_ro(const struct store_arena *a, uint16_t i, struct err *err)
{
    char path[64];
    int fd;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", store_arena_fd(a, i));
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd >= 0)
        return fd;
    return err_set(err, errno == EMFILE || errno == ENFILE ? PROTO_LIMIT : PROTO_IO_ERROR,
                   "arena_fds: reopening file %" PRIu16 " read-only: %s", i, strerror(errno));
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
    struct outq_slot *s;
    struct obuf *b;
    msgpack_packer pk;
    struct err err;
    uint16_t idx[METHODS_MAX_FDS];
    int fds[METHODS_MAX_FDS];
    const char *why = NULL;
    uint32_t n, opened = 0;
    uint64_t h;
    size_t size;

    if (param_handle(c, 0, "arena", &h) < 0)
        return M_ERR;
    if (proto_read_array(&c->p[1], &items, &n, &why) < 0)
        return call_bad_param(c, 1, "file_indices", why);
    if (n > METHODS_MAX_FDS)
        return err_set(&c->err, PROTO_TOO_LARGE, "arena_fds: %" PRIu32 " files, max_fds is %u", n,
                       METHODS_MAX_FDS);
    for (uint32_t k = 0; k < n; k++) {
        why = NULL;
        if (proto_read_index(&items[k], &idx[k], &why) < 0)
            return err_set_item(&c->err, PROTO_BAD_REQUEST, k,
                                "arena_fds: param 2 (file_indices): item %" PRIu32 ": %s", k, why);
    }
    a = reg_arena(c->m->reg, h, &c->err);
    if (a == NULL)
        return M_ERR;
    for (uint32_t k = 0; k < n; k++) {
        struct store_loc loc = {idx[k], 0, 0};
        if (store_check(a, loc, &err) < 0)
            return err_set_item(&c->err, err.code, k, "item %" PRIu32 ": %s", k, err.msg);
    }
    if (!c->answer)
        return M_OK;
    /* The reply's exact size: [files, [[index, size], ...]]. */
    size = proto_size_result_head(c->msgid) + 1 + proto_size_uint(store_arena_nfiles(a)) +
           proto_size_array(n);
    for (uint32_t k = 0; k < n; k++)
        size += 1 + proto_size_uint(idx[k]) +
                proto_size_uint(store_file_size(store_arena_file(a, idx[k])));
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
    /* The reply gets a slot of its own, which carries the descriptors on
     * its first byte (outq sends it in a sendmsg of its own). */
    s = outq_slot_new(io->q, c->msgid, size, 0);
    if (s == NULL || (n > 0 && outq_slot_attach_fds(s, fds, n) < 0)) {
        close_fds(fds, n);
        reg_release(c->o, h, &err);
        if (s == NULL)
            return M_BROKEN;
        outq_slot_fail(s, PROTO_IO_ERROR, "out of memory", -1);
        return M_SLOT;
    }
    b = outq_slot_buf(s);
    obuf_commit(b, proto_encode_result_head(c->msgid, obuf_reserve(b, PROTO_RESULT_HEAD_MAX)));
    obuf_packer(b, &pk);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, store_arena_nfiles(a));
    msgpack_pack_array(&pk, n);
    for (uint32_t k = 0; k < n; k++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint16(&pk, idx[k]);
        msgpack_pack_uint64(&pk, store_file_size(store_arena_file(a, idx[k])));
    }
    outq_slot_done(s); /* a failed pack becomes io_error there */
    return M_SLOT;
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
    [PROTO_M_LIST] = {m_list, 3, 3, "[prefix, cursor, count]"},
    [PROTO_M_ARENA_FDS] = {m_arena_fds, 2, 2, "[arena, [file_index, ...]]"},
};

/* Packs c->err as the response, unless c is a notification. */
static int call_answer_error(struct call *c)
{
    if (!c->answer)
        return 0;
    return methods_error(c->io, c->msgid, c->err.code, c->err.msg, c->err.item);
}

/* Dispatches one request; see methods.h. */
int methods_call(struct methods *m, struct reg_owner *o, const struct proto_request *req,
                 int shutting_down, struct methods_out *io)
{
    struct call c = {
        .m = m, .o = o, .p = req->params, .np = req->nparams, .io = io, .err = {.item = -1}};
    struct obuf *tail = outq_tail(io->q);
    const struct method_def *def;
    size_t mark = tail->len;
    int mi, rc;

    c.tail = tail;
    c.answer = req->type == PROTO_REQUEST;
    c.msgid = c.answer ? req->msgid : 0;
    mi = proto_method_from_name(req->method, req->method_len);
    if (mi < 0) {
        err_set(&c.err, PROTO_UNKNOWN_METHOD, "no method \"%.*s\"",
                (int)(req->method_len > 64 ? 64 : req->method_len), req->method);
        return call_answer_error(&c) < 0 ? -1 : 0;
    }
    c.method = (enum proto_method)mi;
    def = &method_table[mi];
    m->requests[mi]++;
    if (shutting_down) {
        m->errors[mi]++;
        err_set(&c.err, PROTO_SHUTTING_DOWN, "the daemon is shutting down");
        return call_answer_error(&c) < 0 ? -1 : 0;
    }
    obuf_packer(tail, &c.pk);
    if (c.np < def->min_params || c.np > def->max_params) {
        err_set(&c.err, PROTO_BAD_REQUEST, "%s: expected params %s, got %" PRIu32 " params",
                proto_method_name(c.method), def->params, c.np);
        rc = M_ERR;
    } else {
        rc = def->fn(&c);
    }
    if (rc == M_BROKEN)
        return -1;
    if (rc == M_SLOT)
        return 0; /* the slot answers, errors included */
    if (rc == M_OK && !c.answer)
        obuf_truncate(tail, mark); /* a notification's result is dropped */
    if (rc == M_OK && tail->len - mark > m->cfg->limits.max_message) {
        /* Methods with side effects check their reply's size before acting;
         * this net only catches the side-effect-free rest. */
        obuf_truncate(tail, mark);
        err_set(&c.err, PROTO_TOO_LARGE, "%s: the reply is over max_message (%" PRIu32 " bytes)",
                proto_method_name(c.method), m->cfg->limits.max_message);
        rc = M_ERR;
    }
    if (rc == M_OK && tail->failed) {
        /* The packed result is incomplete: answer with an error instead. */
        obuf_truncate(tail, mark);
        err_set(&c.err, PROTO_IO_ERROR, "out of memory");
        rc = M_ERR;
    }
    if (rc == M_ERR) {
        m->errors[mi]++;
        obuf_truncate(tail, mark);
        if (call_answer_error(&c) < 0)
            return -1;
    }
    return 0;
}

/* Answers an undecodable request; see methods.h. */
int methods_reject(struct methods *m, const struct proto_request *req, const char *why,
                   struct methods_out *io)
{
    char msg[sizeof(((struct err *)0)->msg)];
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
    return methods_error(io, req->msgid, PROTO_BAD_REQUEST, msg, -1);
}

/* Packs an error response; see methods.h. */
int methods_error(struct methods_out *io, uint32_t msgid, enum proto_err code, const char *message,
                  int64_t item)
{
    struct obuf *tail = outq_tail(io->q);
    msgpack_packer pk;
    size_t mark = tail->len;

    obuf_packer(tail, &pk);
    proto_pack_error_item(&pk, msgid, code, message, item);
    if (tail->failed) {
        obuf_truncate(tail, mark);
        return -1;
    }
    return 0;
}
