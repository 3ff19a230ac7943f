/* libfarena's operations: each packs one protocol method's params, runs the
 * call and reads the result. Batches (push_many, get_many) are split here
 * into requests that fit the daemon's limits and pipelined by cl_run(). */
#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "proto_limits.h"

/* Reads a handle result. */
static int result_handle(farena_client *c, const char *method, const msgpack_object *res,
                         farena_handle *out)
{
    const char *why = NULL;
    uint64_t h;

    if (proto_read_handle(res, &h, &why) != 0)
        return cl_bad_result(c, method, why);
    if (out != NULL)
        *out = h;
    return 0;
}

/* Checks a struct farena_buf the caller passed. */
static int buf_ok(const struct farena_buf *buf)
{
    return buf != NULL && buf->len <= buf->cap && (buf->data != NULL || buf->cap == 0);
}

/* ---- writing ---- */

/* writer_new [file_index] -> writer. */
int farena_writer_new(farena_client *c, uint16_t file_index, farena_handle *writer)
{
    const msgpack_object *res;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (writer == NULL)
        return cl_fail(c, FARENA_EINVAL, "writer is NULL");
    cl_begin(c, PROTO_M_WRITER_NEW, 1);
    msgpack_pack_uint16(&c->pk, file_index);
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    return result_handle(c, "writer_new", res, writer);
}

/* push [writer, data] -> location. */
int farena_push(farena_client *c, farena_handle writer, const void *data, size_t len,
                struct farena_loc *loc)
{
    const msgpack_object *res;
    struct proto_loc pl;
    const char *why = NULL;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (writer == 0 || (data == NULL && len > 0))
        return cl_fail(c, FARENA_EINVAL, writer == 0 ? "writer handle 0" : "data is NULL");
    if (len > UINT32_MAX || proto_size_bin(len) > c->max_message - cl_req_overhead(PROTO_M_PUSH))
        return cl_fail(c, FARENA_ETOOLARGE,
                       "a payload of %zu bytes cannot fit in one request (max_message %" PRIu64 ")",
                       len, c->max_message);
    cl_begin(c, PROTO_M_PUSH, 2);
    msgpack_pack_uint64(&c->pk, writer);
    msgpack_pack_bin(&c->pk, len);
    msgpack_pack_bin_body(&c->pk, data, len);
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    if (proto_read_loc(res, &pl, &why) != 0)
        return cl_bad_result(c, "push", why);
    if (pl.len != len)
        return cl_bad_result(c, "push", "length differs from the payload's");
    if (loc != NULL) {
        loc->file_index = pl.file_index;
        loc->offset = pl.offset;
        loc->len = pl.len;
    }
    return 0;
}

/* State of one push_many. */
struct push_ctx {
    farena_handle writer;
    const struct iovec *items;
    struct farena_loc *locs;
};

/* Packs push_many [writer, [data...]] for request i. */
static int push_pack(farena_client *c, struct cl_call *call, size_t i, uint32_t msgid)
{
    const struct push_ctx *x = call->ctx;
    const struct cl_req *r = &call->reqs[i];

    proto_pack_request_head(&c->pk, msgid, PROTO_M_PUSH_MANY, 2);
    msgpack_pack_uint64(&c->pk, x->writer);
    msgpack_pack_array(&c->pk, (size_t)r->count);
    for (size_t k = r->first; k < r->first + r->count; k++) {
        msgpack_pack_bin(&c->pk, x->items[k].iov_len);
        msgpack_pack_bin_body(&c->pk, x->items[k].iov_base, x->items[k].iov_len);
    }
    return 0;
}

/* Stores the locations push_many returned for request i. */
static int push_done(farena_client *c, struct cl_call *call, size_t i, const msgpack_object *res)
{
    const struct push_ctx *x = call->ctx;
    const struct cl_req *r = &call->reqs[i];
    const msgpack_object *items;
    const char *why = NULL;
    uint32_t n;

    if (proto_read_array(res, &items, &n, &why) != 0)
        return cl_bad_result(c, "push_many", why);
    if (n != r->count)
        return cl_bad_result(c, "push_many", "wrong number of locations");
    for (uint32_t k = 0; k < n; k++) {
        struct proto_loc pl;
        if (proto_read_loc(&items[k], &pl, &why) != 0)
            return cl_bad_result(c, "push_many", why);
        if (pl.len != x->items[r->first + k].iov_len)
            return cl_bad_result(c, "push_many", "a length differs from its payload's");
        if (x->locs != NULL) {
            x->locs[r->first + k].file_index = pl.file_index;
            x->locs[r->first + k].offset = pl.offset;
            x->locs[r->first + k].len = pl.len;
        }
    }
    return 0;
}

/* Most items one batch request may carry under the daemon's limits, given
 * how many objects each item costs in the request. */
static size_t batch_items_max(const farena_client *c, uint64_t objects_per_item)
{
    uint64_t m = c->max_batch;
    uint64_t by_objects = (c->max_objects - 16) / objects_per_item;

    if (by_objects < m)
        m = by_objects;
    if (m == 0)
        m = 1;
    return m > SIZE_MAX ? SIZE_MAX : (size_t)m;
}

/* A batch split into requests (push_many, get_many): the budgets, then what
 * plan_batch() made of the items. */
struct plan {
    size_t req_budget;  /* bytes of items one request may carry */
    size_t resp_budget; /* bytes of items one response may carry */
    size_t per_req;     /* items one request may carry */
    size_t nreq;        /* requests, in c->reqs[0..nreq) */
    size_t hint;        /* largest response's items, in bytes */
    uint64_t total;     /* output bytes of all items */
};

/* What one batch item costs: bytes in its request and in its response, and
 * output bytes it lands (get_many's payload; 0 for push_many). */
struct item_cost {
    size_t req, resp;
    uint64_t out;
};

/* Checks item k of items against the plan's budgets and says its cost.
 * Returns 0 or a FARENA_E... code (message set, naming item k). */
typedef int (*item_cost_fn)(farena_client *c, const void *items, size_t k, const struct plan *p,
                            struct item_cost *cost);

/* Plans every request of a batch of n items of method m (each costing
 * objects_per_item objects) into c->reqs before anything is sent, so an
 * item that can never fit fails the call with nothing done. A request ends
 * at per_req items or when the next item would overflow its request or its
 * response; reqs[i].out is where its first item's output goes. Returns 0 or
 * the first error. */
static int plan_batch(farena_client *c, struct plan *p, enum proto_method m,
                      uint64_t objects_per_item, const void *items, size_t n, item_cost_fn cost)
{
    size_t rq = 0, rs = 0;

    p->req_budget = c->max_message - cl_req_overhead(m);
    p->resp_budget = c->max_message - cl_resp_overhead();
    p->per_req = batch_items_max(c, objects_per_item);
    p->nreq = p->hint = 0;
    p->total = 0;
    for (size_t k = 0; k < n; k++) {
        struct item_cost ic = {0, 0, 0};
        int err = cost(c, items, k, p, &ic);
        if (err != 0)
            return err;
        if (p->nreq == 0 || c->reqs[p->nreq - 1].count == p->per_req ||
            rq + ic.req > p->req_budget || rs + ic.resp > p->resp_budget) {
            err = cl_reqs_reserve(c, p->nreq + 1);
            if (err != 0)
                return err;
            c->reqs[p->nreq].first = k;
            c->reqs[p->nreq].count = 0;
            c->reqs[p->nreq].out = (size_t)p->total;
            p->nreq++;
            rq = rs = 0;
        }
        c->reqs[p->nreq - 1].count++;
        rq += ic.req;
        rs += ic.resp;
        if (rs > p->hint)
            p->hint = rs;
        p->total += ic.out;
    }
    return 0;
}

/* push_many's item cost: the payload in the request, its location (at its
 * widest) in the response. */
static int push_cost(farena_client *c, const void *items, size_t k, const struct plan *p,
                     struct item_cost *cost)
{
    static const struct proto_loc widest = {UINT16_MAX, UINT32_MAX, UINT32_MAX};
    const struct iovec *it = (const struct iovec *)items + k;

    if (it->iov_base == NULL && it->iov_len > 0)
        return cl_fail(c, FARENA_EINVAL, "item %zu: data is NULL", k);
    cost->req = proto_size_bin(it->iov_len);
    cost->resp = proto_size_loc(widest);
    cost->out = 0;
    if (it->iov_len > UINT32_MAX || cost->req > p->req_budget)
        return cl_fail(c, FARENA_ETOOLARGE,
                       "item %zu: a payload of %zu bytes cannot fit in one request "
                       "(max_message %" PRIu64 ")",
                       k, it->iov_len, c->max_message);
    return 0;
}

/* Pushes many payloads in pipelined requests. */
int farena_push_many(farena_client *c, farena_handle writer, const struct iovec *items, size_t n,
                     struct farena_loc *locs)
{
    struct push_ctx x;
    struct cl_call call;
    struct plan plan;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (writer == 0 || (items == NULL && n > 0))
        return cl_fail(c, FARENA_EINVAL, writer == 0 ? "writer handle 0" : "items is NULL");
    if (n == 0)
        return 0;
    err = plan_batch(c, &plan, PROTO_M_PUSH_MANY, 1, items, n, push_cost);
    if (err != 0)
        return err;
    if (locs != NULL)
        for (size_t k = 0; k < n; k++) {
            locs[k].file_index = FARENA_LOC_NONE_INDEX;
            locs[k].offset = FARENA_LOC_NONE_OFFSET;
            locs[k].len = FARENA_LOC_NONE_LEN;
        }
    x.writer = writer;
    x.items = items;
    x.locs = locs;
    memset(&call, 0, sizeof(call));
    call.nreq = plan.nreq;
    call.reqs = c->reqs;
    call.pack = push_pack;
    call.done = push_done;
    call.ctx = &x;
    return cl_run(c, &call);
}

/* Tells the "not stored" location apart. */
int farena_loc_is_none(struct farena_loc loc)
{
    return loc.file_index == FARENA_LOC_NONE_INDEX && loc.offset == FARENA_LOC_NONE_OFFSET &&
           loc.len == FARENA_LOC_NONE_LEN;
}

/* A method whose only param is a handle, on a client cl_ready() accepted;
 * the caller reads the result. */
static int handle_call(farena_client *c, enum proto_method m, farena_handle h,
                       const msgpack_object **res)
{
    if (h == 0)
        return cl_fail(c, FARENA_EINVAL, "handle 0 is never valid");
    cl_begin(c, m, 1);
    msgpack_pack_uint64(&c->pk, h);
    return cl_end(c, 0, res);
}

/* writer_len [writer] -> bytes. */
int farena_writer_len(farena_client *c, farena_handle writer, uint64_t *len)
{
    const msgpack_object *res;
    const char *why = NULL;
    uint64_t v;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (len == NULL)
        return cl_fail(c, FARENA_EINVAL, "len is NULL");
    err = handle_call(c, PROTO_M_WRITER_LEN, writer, &res);
    if (err != 0)
        return err;
    if (proto_read_uint(res, UINT64_MAX, &v, &why) != 0)
        return cl_bad_result(c, "writer_len", why);
    *len = v;
    return 0;
}

/* A method taking one handle and answering one new handle (finish,
 * into_arena); what names the out-param in the EINVAL message. */
static int handle_to_handle(farena_client *c, enum proto_method m, farena_handle in,
                            farena_handle *out, const char *what)
{
    const msgpack_object *res;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (out == NULL)
        return cl_fail(c, FARENA_EINVAL, "%s", what);
    err = handle_call(c, m, in, &res);
    if (err != 0)
        return err;
    err = result_handle(c, proto_method_name(m), res, out);
    if (err == 0 && m == PROTO_M_INTO_ARENA)
        dr_hold(c, *out);
    return err;
}

/* finish [writer] -> file. */
int farena_finish(farena_client *c, farena_handle writer, farena_handle *file)
{
    return handle_to_handle(c, PROTO_M_FINISH, writer, file, "file is NULL");
}

/* into_arena [writer] -> arena. */
int farena_into_arena(farena_client *c, farena_handle writer, farena_handle *arena)
{
    return handle_to_handle(c, PROTO_M_INTO_ARENA, writer, arena, "arena is NULL");
}

/* build / arena_new [[file...]] -> arena. */
static int files_call(farena_client *c, enum proto_method m, const farena_handle *files, size_t n,
                      farena_handle *arena)
{
    const msgpack_object *res;
    size_t size;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (arena == NULL || (files == NULL && n > 0))
        return cl_fail(c, FARENA_EINVAL, arena == NULL ? "arena is NULL" : "files is NULL");
    if (n == 0)
        return cl_fail(c, FARENA_EEMPTY, "no files given");
    size = cl_req_overhead(m);
    for (size_t i = 0; i < n; i++) {
        if (files[i] == 0)
            return cl_fail(c, FARENA_EINVAL, "files[%zu] is handle 0", i);
        size += proto_size_uint(files[i]);
    }
    if (size > c->max_message || n > c->max_objects - 16)
        return cl_fail(c, FARENA_ETOOLARGE, "%zu files cannot fit in one request", n);
    cl_begin(c, m, 1);
    msgpack_pack_array(&c->pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(&c->pk, files[i]);
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    err = result_handle(c, proto_method_name(m), res, arena);
    if (err == 0)
        dr_hold(c, *arena);
    return err;
}

/* build [[file...]] -> arena (any order). */
int farena_build(farena_client *c, const farena_handle *files, size_t n, farena_handle *arena)
{
    return files_call(c, PROTO_M_BUILD, files, n, arena);
}

/* arena_new [[file...]] -> arena (index order). */
int farena_arena_new(farena_client *c, const farena_handle *files, size_t n, farena_handle *arena)
{
    return files_call(c, PROTO_M_ARENA_NEW, files, n, arena);
}

/* ---- reading ---- */

/* get [arena, loc] -> bin, appended to buf (checked as UTF-8 when asked). */
static int get_one(farena_client *c, farena_handle arena, struct farena_loc loc,
                   struct farena_buf *buf, int utf8)
{
    struct proto_loc pl = {loc.file_index, loc.offset, loc.len};
    const msgpack_object *res;
    const void *data = NULL;
    const char *why = NULL;
    size_t len = 0;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (arena == 0 || !buf_ok(buf))
        return cl_fail(c, FARENA_EINVAL, arena == 0 ? "arena handle 0" : "bad buffer");
    if (proto_size_bin(loc.len) > c->max_message - cl_resp_overhead())
        return cl_fail(c, FARENA_ETOOLARGE,
                       "a payload of %" PRIu32 " bytes cannot fit in one response "
                       "(max_message %" PRIu64 ")",
                       loc.len, c->max_message);
    if (c->direct) {
        err = dr_get(c, arena, loc, buf, utf8);
        if (err != DR_FALLBACK)
            return err;
    }
    cl_begin(c, PROTO_M_GET, 2);
    msgpack_pack_uint64(&c->pk, arena);
    proto_pack_loc(&c->pk, pl);
    err = cl_end(c, cl_resp_overhead() + proto_size_bin(loc.len), &res);
    if (err != 0)
        return err;
    if (proto_read_payload(res, &data, &len, &why) != 0)
        return cl_bad_result(c, "get", why);
    if (len != loc.len)
        return cl_bad_result(c, "get", "payload length differs from the location's");
    if (utf8 && !cl_utf8_valid(data, len))
        return cl_fail(c, FARENA_EUTF8,
                       "the payload at %" PRIu16 ":%" PRIu32 ":%" PRIu32 " is not valid UTF-8",
                       loc.file_index, loc.offset, loc.len);
    err = cl_buf_append(buf, data, len);
    if (err != 0)
        return cl_fail(c, err, "out of memory for a %zu-byte payload", len);
    return 0;
}

/* Appends one payload. */
int farena_get_into(farena_client *c, farena_handle arena, struct farena_loc loc,
                    struct farena_buf *buf)
{
    return get_one(c, arena, loc, buf, 0);
}

/* Appends one payload that must be UTF-8. */
int farena_get_str_into(farena_client *c, farena_handle arena, struct farena_loc loc,
                        struct farena_buf *buf)
{
    return get_one(c, arena, loc, buf, 1);
}

/* Appends one payload the caller knows is text. */
int farena_get_str_into_unchecked(farena_client *c, farena_handle arena, struct farena_loc loc,
                                  struct farena_buf *buf)
{
    return get_one(c, arena, loc, buf, 0);
}

/* State of one get_many. */
struct getm_ctx {
    farena_handle arena;
    const struct farena_loc *locs;
    uint8_t *out; /* where payload 0 goes: the buffer's spare room */
};

/* Packs get_many [arena, [loc...]] for request i. */
static int getm_pack(farena_client *c, struct cl_call *call, size_t i, uint32_t msgid)
{
    const struct getm_ctx *x = call->ctx;
    const struct cl_req *r = &call->reqs[i];

    proto_pack_request_head(&c->pk, msgid, PROTO_M_GET_MANY, 2);
    msgpack_pack_uint64(&c->pk, x->arena);
    msgpack_pack_array(&c->pk, r->count);
    for (size_t k = r->first; k < r->first + r->count; k++) {
        struct proto_loc pl = {x->locs[k].file_index, x->locs[k].offset, x->locs[k].len};
        proto_pack_loc(&c->pk, pl);
    }
    return 0;
}

/* Copies request i's payloads to their place in the output. */
static int getm_done(farena_client *c, struct cl_call *call, size_t i, const msgpack_object *res)
{
    const struct getm_ctx *x = call->ctx;
    const struct cl_req *r = &call->reqs[i];
    const msgpack_object *items;
    const char *why = NULL;
    size_t at = r->out;
    uint32_t n;

    if (proto_read_array(res, &items, &n, &why) != 0)
        return cl_bad_result(c, "get_many", why);
    if (n != r->count)
        return cl_bad_result(c, "get_many", "wrong number of payloads");
    for (uint32_t k = 0; k < n; k++) {
        const void *data = NULL;
        size_t len = 0;
        if (proto_read_payload(&items[k], &data, &len, &why) != 0)
            return cl_bad_result(c, "get_many", why);
        if (len != x->locs[r->first + k].len)
            return cl_bad_result(c, "get_many", "a payload's length differs from its location's");
        if (len > 0)
            memcpy(x->out + at, data, len);
        at += len;
    }
    return 0;
}

/* get_many's item cost: the location in the request, the payload in the
 * response and in the output. */
static int getm_cost(farena_client *c, const void *items, size_t k, const struct plan *p,
                     struct item_cost *cost)
{
    const struct farena_loc *l = (const struct farena_loc *)items + k;
    struct proto_loc pl = {l->file_index, l->offset, l->len};

    cost->req = proto_size_loc(pl);
    cost->resp = proto_size_bin(pl.len);
    cost->out = pl.len;
    if (cost->resp > p->resp_budget)
        return cl_fail(c, FARENA_ETOOLARGE,
                       "item %zu: a payload of %" PRIu32 " bytes cannot fit in one response "
                       "(max_message %" PRIu64 ")",
                       k, pl.len, c->max_message);
    return 0;
}

/* Reads many payloads in pipelined requests, appending them in order. */
int farena_get_many_into(farena_client *c, farena_handle arena, const struct farena_loc *locs,
                         size_t n, struct farena_buf *buf)
{
    struct getm_ctx x;
    struct cl_call call;
    struct plan plan;
    uint64_t total;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (arena == 0 || (locs == NULL && n > 0) || !buf_ok(buf))
        return cl_fail(c, FARENA_EINVAL,
                       arena == 0     ? "arena handle 0"
                       : locs == NULL ? "locs is NULL"
                                      : "bad buffer");
    if (n == 0)
        return 0;
    err = plan_batch(c, &plan, PROTO_M_GET_MANY, 4, locs, n, getm_cost);
    if (err != 0)
        return err;
    total = plan.total;
    if (total >= SIZE_MAX - buf->len)
        return cl_fail(c, FARENA_ENOMEM, "%" PRIu64 " bytes cannot fit in memory", total);
    err = farena_buf_reserve(buf, (size_t)total);
    if (err != 0)
        return cl_fail(c, err, "out of memory for %" PRIu64 " bytes of payloads", total);

    if (c->direct) {
        err = dr_get_many(c, arena, locs, n, buf->data + buf->len);
        if (err != DR_FALLBACK) {
            if (err == 0)
                buf->len += (size_t)total;
            buf->data[buf->len] = 0;
            return err;
        }
    }
    x.arena = arena;
    x.locs = locs;
    x.out = buf->data + buf->len;
    memset(&call, 0, sizeof(call));
    call.nreq = plan.nreq;
    call.reqs = c->reqs;
    call.pack = getm_pack;
    call.done = getm_done;
    call.ctx = &x;
    call.rx_hint = plan.hint + cl_resp_overhead();
    err = cl_run(c, &call);
    if (err != 0) {
        buf->data[buf->len] = 0; /* payloads may have landed past len */
        return err;
    }
    buf->len += (size_t)total;
    buf->data[buf->len] = 0;
    return 0;
}

/* arena_info [arena] -> {files, bytes, refs, name}. */
int farena_arena_info(farena_client *c, farena_handle arena, struct farena_arena_info *out)
{
    struct farena_arena_info info;
    const msgpack_object *res, *name;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (out == NULL)
        return cl_fail(c, FARENA_EINVAL, "out is NULL");
    err = handle_call(c, PROTO_M_ARENA_INFO, arena, &res);
    if (err != 0)
        return err;
    memset(&info, 0, sizeof(info));
    if (res->type != MSGPACK_OBJECT_MAP)
        return cl_bad_result(c, "arena_info", "not a map");
    if (cl_map_uint(res, "files", &info.files) || cl_map_uint(res, "bytes", &info.bytes) ||
        cl_map_uint(res, "refs", &info.refs))
        return cl_bad_result(c, "arena_info", "a count is not an unsigned integer");
    name = cl_map_get(res, "name");
    if (name != NULL && name->type == MSGPACK_OBJECT_STR) {
        if (cl_map_str(res, "name", info.name, sizeof(info.name)) != 0)
            return cl_bad_result(c, "arena_info", "name");
        info.has_name = 1;
    } else if (name != NULL && name->type != MSGPACK_OBJECT_NIL) {
        return cl_bad_result(c, "arena_info", "name is neither str nor nil");
    }
    *out = info;
    return 0;
}

/* arena_files [arena] -> [file...]. */
int farena_arena_files(farena_client *c, farena_handle arena, farena_handle *files, size_t cap,
                       size_t *n)
{
    const msgpack_object *res, *items;
    const char *why = NULL;
    uint32_t count;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if ((n == NULL || (files == NULL && cap > 0)))
        return cl_fail(c, FARENA_EINVAL, "n or files is NULL");
    err = handle_call(c, PROTO_M_ARENA_FILES, arena, &res);
    if (err != 0)
        return err;
    if (proto_read_array(res, &items, &count, &why) != 0)
        return cl_bad_result(c, "arena_files", why);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t h;
        if (proto_read_handle(&items[i], &h, &why) != 0)
            return cl_bad_result(c, "arena_files", why);
        if (i < cap)
            files[i] = h;
    }
    *n = count;
    return 0;
}

/* ---- sharing ---- */

/* A method with one handle param and a nil result. */
static int nil_call(farena_client *c, enum proto_method m, farena_handle h)
{
    int err = cl_ready(c);

    if (err != 0)
        return err;
    return handle_call(c, m, h, NULL);
}

/* open [arena] -> nil; the arena is then held (direct reads). */
int farena_open(farena_client *c, farena_handle arena)
{
    int err = nil_call(c, PROTO_M_OPEN, arena);

    if (err == 0)
        dr_hold(c, arena);
    return err;
}

/* release [handle] -> nil. Direct-read descriptors of an arena close
 * before its last reference goes. */
int farena_release(farena_client *c, farena_handle handle)
{
    int err = cl_ready(c);

    if (err != 0)
        return err;
    dr_release_before(c, handle);
    err = handle_call(c, PROTO_M_RELEASE, handle, NULL);
    if (err == 0)
        dr_release_after(c, handle);
    return err;
}

/* Checks a name argument and that the request fits. */
static int name_ok(farena_client *c, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return cl_fail(c, FARENA_EINVAL, name == NULL ? "name is NULL" : "name is empty");
    if (proto_size_str(strlen(name)) > c->max_message - cl_req_overhead(PROTO_M_NAME))
        return cl_fail(c, FARENA_ETOOLARGE, "name of %zu bytes", strlen(name));
    return 0;
}

/* Packs a name param. */
static void pack_name(farena_client *c, const char *name)
{
    size_t n = strlen(name);

    msgpack_pack_str(&c->pk, n);
    msgpack_pack_str_body(&c->pk, name, n);
}

/* name [arena, name] -> nil. */
int farena_name(farena_client *c, farena_handle arena, const char *name)
{
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (arena == 0)
        return cl_fail(c, FARENA_EINVAL, "arena handle 0");
    err = name_ok(c, name);
    if (err != 0)
        return err;
    cl_begin(c, PROTO_M_NAME, 2);
    msgpack_pack_uint64(&c->pk, arena);
    pack_name(c, name);
    return cl_end(c, 0, NULL);
}

/* lookup [name] -> arena. */
int farena_lookup(farena_client *c, const char *name, farena_handle *arena)
{
    const msgpack_object *res;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (arena == NULL)
        return cl_fail(c, FARENA_EINVAL, "arena is NULL");
    err = name_ok(c, name);
    if (err != 0)
        return err;
    cl_begin(c, PROTO_M_LOOKUP, 1);
    pack_name(c, name);
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    return result_handle(c, "lookup", res, arena);
}

/* unname [name] -> nil. */
int farena_unname(farena_client *c, const char *name)
{
    int err = cl_ready(c);

    if (err != 0)
        return err;
    err = name_ok(c, name);
    if (err != 0)
        return err;
    cl_begin(c, PROTO_M_UNNAME, 1);
    pack_name(c, name);
    return cl_end(c, 0, NULL);
}

/* ---- daemon ---- */

/* Adds a {method name: count} map into per-method slots and a total. */
static int method_counts(const msgpack_object *map, uint64_t *slots, uint64_t *total)
{
    if (map == NULL)
        return 0;
    if (map->type != MSGPACK_OBJECT_MAP)
        return -1;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        uint64_t v;
        int m;
        if (k->type != MSGPACK_OBJECT_STR ||
            proto_read_uint(&map->via.map.ptr[i].val, UINT64_MAX, &v, NULL) != 0)
            return -1;
        *total += v;
        m = proto_method_from_name(k->via.str.ptr, k->via.str.size);
        if (m >= 0 && m < FARENA_STAT_METHODS)
            slots[m] = v;
    }
    return 0;
}

/* stat [] -> counters. */
int farena_stat(farena_client *c, struct farena_stat *out)
{
    struct farena_stat st;
    const msgpack_object *res;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (out == NULL)
        return cl_fail(c, FARENA_EINVAL, "out is NULL");
    cl_begin(c, PROTO_M_STAT, 0);
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    memset(&st, 0, sizeof(st));
    if (res->type != MSGPACK_OBJECT_MAP)
        return cl_bad_result(c, "stat", "not a map");
    if (cl_map_uint(res, "pid", &st.pid) || cl_map_uint(res, "uptime_ms", &st.uptime_ms) ||
        cl_map_uint(res, "connections", &st.connections) ||
        cl_map_uint(res, "connections_total", &st.connections_total) ||
        cl_map_uint(res, "writers", &st.writers) || cl_map_uint(res, "files", &st.files) ||
        cl_map_uint(res, "arenas", &st.arenas) || cl_map_uint(res, "names", &st.names) ||
        cl_map_uint(res, "bytes_on_disk", &st.bytes_on_disk) ||
        cl_map_uint(res, "bytes_written", &st.bytes_written) ||
        cl_map_uint(res, "bytes_read", &st.bytes_read))
        return cl_bad_result(c, "stat", "a counter is not an unsigned integer");
    if (method_counts(cl_map_get(res, "requests"), st.requests, &st.requests_total) != 0 ||
        method_counts(cl_map_get(res, "errors"), st.errors, &st.errors_total) != 0)
        return cl_bad_result(c, "stat", "requests or errors is not a map of counters");
    *out = st;
    return 0;
}

/* Reads one list entry {name, arena, bytes, files, refs} into *e. Returns
 * 0, or -1 when it is malformed. */
static int list_entry_parse(const msgpack_object *o, struct farena_list_entry *e)
{
    const msgpack_object *name;
    uint64_t arena = 0;

    if (o->type != MSGPACK_OBJECT_MAP)
        return -1;
    name = cl_map_get(o, "name");
    if (name == NULL || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0 ||
        name->via.str.size >= sizeof(e->name) ||
        memchr(name->via.str.ptr, '\0', name->via.str.size) != NULL)
        return -1;
    memcpy(e->name, name->via.str.ptr, name->via.str.size);
    e->name[name->via.str.size] = '\0';
    e->bytes = e->files = e->refs = 0;
    if (cl_map_uint(o, "arena", &arena) != 0 || arena == 0 ||
        cl_map_uint(o, "bytes", &e->bytes) != 0 || cl_map_uint(o, "files", &e->files) != 0 ||
        cl_map_uint(o, "refs", &e->refs) != 0)
        return -1;
    e->arena = arena;
    return 0;
}

/* list [prefix, cursor, count] -> {names: [...], cursor: str or nil}. */
int farena_list(farena_client *c, const char *prefix, char *cursor,
                struct farena_list_entry *entries, size_t cap, size_t *n)
{
    const msgpack_object *res, *names, *next;
    size_t plen = prefix != NULL ? strlen(prefix) : 0, clen, count;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (cursor == NULL || entries == NULL || n == NULL || cap == 0)
        return cl_fail(c, FARENA_EINVAL, "cursor, entries or n is NULL, or cap is 0");
    clen = strnlen(cursor, FARENA_CURSOR_SIZE);
    if (clen == FARENA_CURSOR_SIZE)
        return cl_fail(c, FARENA_EINVAL,
                       "cursor is not a NUL-terminated string of at most %d bytes",
                       FARENA_CURSOR_SIZE - 1);
    if (plen > PROTO_MAX_NAME_LEN)
        return cl_fail(c, FARENA_EBADREQUEST, "a prefix of %zu bytes (names have at most %u)", plen,
                       PROTO_MAX_NAME_LEN);
    count = cap;
    if (count > c->max_batch)
        count = (size_t)c->max_batch;
    if (count > UINT32_MAX)
        count = UINT32_MAX;
    cl_begin(c, PROTO_M_LIST, 3);
    msgpack_pack_str(&c->pk, plen);
    msgpack_pack_str_body(&c->pk, plen > 0 ? prefix : "", plen);
    if (clen > 0) {
        msgpack_pack_str(&c->pk, clen);
        msgpack_pack_str_body(&c->pk, cursor, clen);
    } else {
        msgpack_pack_nil(&c->pk);
    }
    msgpack_pack_uint64(&c->pk, count);
    err = cl_end(c, 0, &res);
    if (err != 0)
        return err;
    if (res->type != MSGPACK_OBJECT_MAP)
        return cl_bad_result(c, "list", "not a map");
    names = cl_map_get(res, "names");
    next = cl_map_get(res, "cursor");
    if (names == NULL || names->type != MSGPACK_OBJECT_ARRAY || names->via.array.size > count)
        return cl_bad_result(c, "list", "names is not an array of at most count entries");
    if (next == NULL || (next->type != MSGPACK_OBJECT_NIL &&
                         (next->type != MSGPACK_OBJECT_STR || next->via.str.size == 0 ||
                          next->via.str.size >= FARENA_CURSOR_SIZE ||
                          memchr(next->via.str.ptr, '\0', next->via.str.size) != NULL)))
        return cl_bad_result(c, "list", "cursor is neither nil nor a name");
    for (uint32_t i = 0; i < names->via.array.size; i++)
        if (list_entry_parse(&names->via.array.ptr[i], &entries[i]) != 0)
            return cl_bad_result(c, "list", "an entry is not {name, arena, bytes, files, refs}");
    *n = names->via.array.size;
    if (next->type == MSGPACK_OBJECT_NIL) {
        cursor[0] = '\0';
    } else {
        memcpy(cursor, next->via.str.ptr, next->via.str.size);
        cursor[next->via.str.size] = '\0';
    }
    return 0;
}

/* The raw packer's write callback: appends to a struct farena_buf. */
static int raw_write(void *data, const char *p, size_t len)
{
    struct farena_buf *buf = data;

    if (len == 0)
        return 0;
    if (farena_buf_reserve(buf, len) != 0)
        return -1;
    memcpy(buf->data + buf->len, p, len);
    buf->len += len;
    buf->data[buf->len] = 0;
    return 0;
}

/* Checks with the guarding scanner that the len bytes at params are exactly
 * one msgpack object a request could carry, before msgpack-c unpacks them:
 * msgpack-c allocates whatever a header declares. */
static int raw_params_scan(farena_client *c, const void *params, size_t len)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    uint64_t depth = c->info.limits.max_depth ? c->info.limits.max_depth : lim.max_depth;
    struct proto_scan *s;
    enum proto_scan_status st;
    const char *why = NULL;
    size_t used = 0;
    int err = 0;

    lim.max_message = (uint32_t)c->max_message;
    lim.max_objects = c->max_objects > UINT32_MAX ? UINT32_MAX : (uint32_t)c->max_objects;
    /* The envelope takes the first level. */
    lim.max_depth = depth > PROTO_MAX_DEPTH_MAX ? PROTO_MAX_DEPTH_MAX - 1
                    : depth > 1                 ? (uint32_t)depth - 1
                                                : 1;
    s = proto_scan_new(&lim);
    if (s == NULL)
        return cl_fail(c, FARENA_ENOMEM, "out of memory");
    st = proto_scan_feed(s, params, len, &used, &why);
    if (st == PROTO_SCAN_REJECT && proto_scan_reject_code(s) == PROTO_TOO_LARGE)
        err = cl_fail(c, FARENA_ETOOLARGE, "params: %s", why);
    else if (st == PROTO_SCAN_REJECT)
        err = cl_fail(c, FARENA_EINVAL, "params: %s", why);
    else if (st == PROTO_SCAN_MORE)
        err = cl_fail(c, FARENA_EINVAL, "params must be one msgpack array: it is incomplete");
    else if (used != len)
        err = cl_fail(c, FARENA_EINVAL, "params must be one msgpack array: %zu bytes follow it",
                      len - used);
    proto_scan_free(s);
    return err;
}

/* Any method, raw msgpack in and out. */
int farena_call_raw(farena_client *c, const char *method, const void *params, size_t params_len,
                    struct farena_buf *result)
{
    const msgpack_object *res;
    msgpack_object obj;
    msgpack_packer rp;
    const char *why = NULL;
    size_t mlen, old;
    int err = cl_ready(c);

    if (err != 0)
        return err;
    if (method == NULL || method[0] == '\0' || params == NULL ||
        (result != NULL && !buf_ok(result)))
        return cl_fail(c, FARENA_EINVAL, "method, params or result invalid");
    mlen = strlen(method);
    err = raw_params_scan(c, params, params_len);
    if (err != 0)
        return err;
    msgpack_zone_clear(&c->zone);
    if (proto_unpack(&c->zone, params, params_len, &obj, &why) != 0 ||
        obj.type != MSGPACK_OBJECT_ARRAY)
        return cl_fail(c, FARENA_EINVAL, "params must be one msgpack array%s%s", why ? ": " : "",
                       why ? why : "");
    if (params_len + mlen + 16 > c->max_message)
        return cl_fail(c, FARENA_ETOOLARGE, "request too large");
    cl_begin_raw(c, method, mlen, params, params_len);
    err = cl_end(c, 0, &res);
    if (err != 0 || result == NULL)
        return err;
    old = result->len;
    msgpack_packer_init(&rp, result, raw_write);
    if (msgpack_pack_object(&rp, *res) != 0) {
        result->len = old;
        if (result->data != NULL)
            result->data[old] = 0;
        return cl_fail(c, FARENA_ENOMEM, "out of memory for the result");
    }
    return 0;
}
