/* The farenad driver: MessagePack-RPC through farena's own proto module
 * (request packers, the guarding scanner, unpack and response decoding). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "bench.h"
#include "proto_codec.h"
#include "proto_limits.h"
#include "proto_methods.h"
#include "proto_scan.h"

/* Per-connection driver state. */
struct fstate {
    struct proto_scan *scan;
    msgpack_zone zone;
    msgpack_packer pk;
    size_t fed; /* bytes after in.rd already fed to the scanner */
};

/* Limits the bench accepts in replies: the largest the daemon may send. */
static const struct proto_limits bench_limits = {PROTO_MAX_MESSAGE_MAX, PROTO_MAX_DEPTH_DEFAULT,
                                                 (1u << 24)};

/* Tries to take one complete message from c->in and decode it as a
 * response. Returns 1, 0 (incomplete) or -1. */
static int fa_next(struct bconn *c, struct proto_response *resp, char *err, size_t errlen)
{
    struct fstate *st = c->pstate;
    size_t avail = c->in.wr - c->in.rd;
    if (st->fed >= avail) {
        c->need = avail + 1;
        return 0;
    }
    size_t used = 0;
    const char *why = NULL;
    enum proto_scan_status s =
        proto_scan_feed(st->scan, c->in.buf + c->in.rd + st->fed, avail - st->fed, &used, &why);
    if (s == PROTO_SCAN_REJECT) {
        snprintf(err, errlen, "farena: reply rejected by the scanner: %s", why ? why : "?");
        return -1;
    }
    if (s == PROTO_SCAN_MORE) {
        st->fed = avail;
        c->need = avail + 1;
        return 0;
    }
    size_t total = st->fed + used;
    msgpack_zone_clear(&st->zone);
    msgpack_object obj;
    if (proto_unpack(&st->zone, c->in.buf + c->in.rd, total, &obj, &why) < 0) {
        snprintf(err, errlen, "farena: unpack: %s", why ? why : "?");
        return -1;
    }
    if (proto_response_decode(&obj, resp, &why) < 0) {
        snprintf(err, errlen, "farena: bad response: %s", why ? why : "?");
        return -1;
    }
    c->in.rd += total;
    st->fed = 0;
    proto_scan_reset(st->scan);
    if (resp->err != PROTO_OK) {
        snprintf(err, errlen, "farena: error %.*s: %.*s", (int)resp->errname_len,
                 resp->errname ? resp->errname : "?", (int)resp->message_len,
                 resp->message ? resp->message : "");
        return -1;
    }
    return 1;
}

/* Flushes c's output with a blocking socket. */
static int fa_flush(struct bconn *c, char *err, size_t errlen)
{
    while (c->out.pending > 0) {
        if (obuf_flush(&c->out, c->fd) < 0) {
            snprintf(err, errlen, "farena: write: %s", strerror(errno));
            return -1;
        }
    }
    if (c->out.oom) {
        snprintf(err, errlen, "farena: out of memory");
        return -1;
    }
    return 0;
}

/* Waits for the next response (blocking). */
static int fa_wait(struct bconn *c, struct proto_response *resp, char *err, size_t errlen)
{
    for (;;) {
        int rc = 0;
        if (c->in.wr - c->in.rd >= c->need && c->in.wr > c->in.rd)
            rc = fa_next(c, resp, err, errlen);
        if (rc != 0) {
            c->need = 0;
            return rc < 0 ? -1 : 0;
        }
        if (conn_read_more(c) < 0) {
            snprintf(err, errlen, "farena: read: %s", strerror(errno));
            return -1;
        }
    }
}

/* Sends a request with one handle parameter and waits for its reply. */
static int fa_call_handle(struct bconn *c, enum proto_method m, uint64_t h,
                          struct proto_response *resp, char *err, size_t errlen)
{
    struct fstate *st = c->pstate;
    proto_pack_request_head(&st->pk, c->next_id++, m, 1);
    msgpack_pack_uint64(&st->pk, h);
    if (fa_flush(c, err, errlen) < 0)
        return -1;
    return fa_wait(c, resp, err, errlen);
}

/* Reads a handle result. */
static int fa_handle_result(const struct proto_response *resp, uint64_t *h, char *err,
                            size_t errlen)
{
    const char *why = NULL;
    if (proto_read_handle(resp->result, h, &why) < 0) {
        snprintf(err, errlen, "farena: expected a handle: %s", why);
        return -1;
    }
    return 0;
}

/* Creates a writer of index `index`. */
static int fa_writer_new(struct bconn *c, uint16_t index, uint64_t *w, char *err, size_t errlen)
{
    struct fstate *st = c->pstate;
    struct proto_response resp;
    proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_WRITER_NEW, 1);
    msgpack_pack_uint16(&st->pk, index);
    if (fa_flush(c, err, errlen) < 0 || fa_wait(c, &resp, err, errlen) < 0)
        return -1;
    return fa_handle_result(&resp, w, err, errlen);
}

/* Driver setup: state, hello, and a writer for push cells. */
static int fa_setup(struct bconn *c, char *err, size_t errlen)
{
    struct fstate *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->pstate = st;
    st->scan = proto_scan_new(&bench_limits);
    if (!st->scan || !msgpack_zone_init(&st->zone, MSGPACK_ZONE_CHUNK_SIZE)) {
        proto_scan_free(st->scan);
        free(st);
        c->pstate = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    msgpack_packer_init(&st->pk, &c->out, obuf_msgpack_write);
    struct proto_response resp;
    proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_HELLO, 0);
    if (fa_flush(c, err, errlen) < 0 || fa_wait(c, &resp, err, errlen) < 0)
        return -1;
    if (resp.result->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "farena: hello did not return a map");
        return -1;
    }
    if (c->cell && c->cell->op == OP_SET)
        return fa_writer_new(c, 0, &c->writer, err, errlen);
    return 0;
}

/* Driver teardown: releases the writer (discarding its bytes). */
static void fa_teardown(struct bconn *c)
{
    struct fstate *st = c->pstate;
    if (!st)
        return;
    if (c->writer && c->fd >= 0) {
        struct proto_response resp;
        char err[160];
        if (fa_call_handle(c, PROTO_M_RELEASE, c->writer, &resp, err, sizeof err) < 0)
            fprintf(stderr, "farena-bench: release writer: %s\n", err);
    }
    c->writer = 0;
    proto_scan_free(st->scan);
    msgpack_zone_destroy(&st->zone);
    free(st);
    c->pstate = NULL;
}

/* Encodes get / get_many / push / push_many for idx[0..n). */
static void fa_encode(struct bconn *c, const uint32_t *idx, uint32_t n)
{
    struct fstate *st = c->pstate;
    msgpack_packer *pk = &st->pk;
    uint32_t size = c->cell->size;
    const char *payload = bench_payload();
    uint32_t id = c->next_id;
    if (c->cell->op == OP_GET) {
        if (c->cell->batch == 1 && n == 1) {
            proto_pack_request_head(pk, id, PROTO_M_GET, 2);
            msgpack_pack_uint64(pk, c->arena);
            proto_pack_loc(pk, (struct proto_loc){0, idx[0] * size, size});
            return;
        }
        proto_pack_request_head(pk, id, PROTO_M_GET_MANY, 2);
        msgpack_pack_uint64(pk, c->arena);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            proto_pack_loc(pk, (struct proto_loc){0, idx[i] * size, size});
        return;
    }
    if (c->cell->batch == 1 && n == 1) {
        proto_pack_request_head(pk, id, PROTO_M_PUSH, 2);
        msgpack_pack_uint64(pk, c->writer);
        msgpack_pack_bin(pk, size);
        obuf_ext(&c->out, payload, size);
        return;
    }
    proto_pack_request_head(pk, id, PROTO_M_PUSH_MANY, 2);
    msgpack_pack_uint64(pk, c->writer);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_bin(pk, size);
        obuf_ext(&c->out, payload, size);
    }
}

/* Checks that o is a payload of size bytes. */
static int fa_check_bin(const msgpack_object *o, uint32_t size, char *err, size_t errlen)
{
    const void *data;
    size_t len;
    const char *why = NULL;
    if (proto_read_payload(o, &data, &len, &why) < 0) {
        snprintf(err, errlen, "farena: expected bin: %s", why);
        return -1;
    }
    if (len != size) {
        snprintf(err, errlen, "farena: got %zu bytes, expected %u", len, size);
        return -1;
    }
    return 0;
}

/* The item count of the in-flight request msgid (0 if unknown). */
static uint32_t fa_slot_n(const struct bconn *c, uint32_t msgid)
{
    for (uint32_t k = 0; k < c->inflight; k++) {
        uint32_t pos = (c->slot_head + k) % BENCH_MAX_DEPTH;
        if (c->slot[pos].id == msgid)
            return c->slot[pos].n;
    }
    return 0;
}

/* Parses one reply and checks its shape against the request. */
static int fa_parse(struct bconn *c, uint32_t *msgid, char *err, size_t errlen)
{
    struct proto_response resp;
    int rc = fa_next(c, &resp, err, errlen);
    if (rc <= 0)
        return rc;
    *msgid = resp.msgid;
    uint32_t n = fa_slot_n(c, resp.msgid);
    if (n == 0) {
        snprintf(err, errlen, "farena: reply to unknown msgid %u", resp.msgid);
        return -1;
    }
    const msgpack_object *res = resp.result;
    int single = c->cell->batch == 1 && n == 1;
    if (c->cell->op == OP_GET && single)
        return fa_check_bin(res, c->cell->size, err, errlen) < 0 ? -1 : 1;
    if (!single) {
        if (res->type != MSGPACK_OBJECT_ARRAY || res->via.array.size != n) {
            snprintf(err, errlen, "farena: expected an array of %u", n);
            return -1;
        }
        if (c->cell->op == OP_GET) {
            for (uint32_t i = 0; i < n; i++) {
                if (fa_check_bin(&res->via.array.ptr[i], c->cell->size, err, errlen) < 0)
                    return -1;
            }
        }
        return 1;
    }
    struct proto_loc loc;
    const char *why = NULL;
    if (proto_read_loc(res, &loc, &why) < 0 || loc.len != c->cell->size) {
        snprintf(err, errlen, "farena: push returned no location of the right length");
        return -1;
    }
    return 1;
}

const struct tproto tproto_farena = {"farena", fa_setup, fa_encode, fa_parse, fa_teardown};

/* Loads the dataset of nkeys items of size bytes: one writer, push_many
 * batches (checking every location), into_arena. */
int farena_ctl_load(struct bconn *c, uint32_t size, uint32_t nkeys, uint64_t *arena, char *err,
                    size_t errlen)
{
    struct fstate *st = c->pstate;
    struct proto_response resp;
    uint64_t w;
    if (fa_writer_new(c, 0, &w, err, errlen) < 0)
        return -1;
    uint32_t batch = (16u << 20) / size;
    if (batch > BENCH_MAX_BATCH)
        batch = BENCH_MAX_BATCH;
    if (batch == 0)
        batch = 1;
    const char *payload = bench_payload();
    for (uint32_t i = 0; i < nkeys; i += batch) {
        uint32_t n = nkeys - i < batch ? nkeys - i : batch;
        proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_PUSH_MANY, 2);
        msgpack_pack_uint64(&st->pk, w);
        msgpack_pack_array(&st->pk, n);
        for (uint32_t k = 0; k < n; k++) {
            msgpack_pack_bin(&st->pk, size);
            obuf_ext(&c->out, payload, size);
        }
        if (fa_flush(c, err, errlen) < 0 || fa_wait(c, &resp, err, errlen) < 0)
            return -1;
        const msgpack_object *res = resp.result;
        if (res->type != MSGPACK_OBJECT_ARRAY || res->via.array.size != n) {
            snprintf(err, errlen, "farena: push_many returned no array of %u", n);
            return -1;
        }
        for (uint32_t k = 0; k < n; k++) {
            struct proto_loc loc;
            const char *why = NULL;
            if (proto_read_loc(&res->via.array.ptr[k], &loc, &why) < 0 || loc.file_index != 0 ||
                loc.offset != (uint64_t)(i + k) * size || loc.len != size) {
                snprintf(err, errlen, "farena: item %u stored at an unexpected location", i + k);
                return -1;
            }
        }
    }
    if (fa_call_handle(c, PROTO_M_INTO_ARENA, w, &resp, err, errlen) < 0)
        return -1;
    return fa_handle_result(&resp, arena, err, errlen);
}

/* Stores n items with push_many batches into a one-file arena. */
int farena_ctl_store(struct bconn *c, uint32_t size, uint32_t n, uint32_t batch, uint64_t *arena,
                     char *err, size_t errlen)
{
    struct fstate *st = c->pstate;
    struct proto_response resp;
    uint64_t w;
    if (fa_writer_new(c, 0, &w, err, errlen) < 0)
        return -1;
    const char *payload = bench_payload();
    for (uint32_t i = 0; i < n; i += batch) {
        uint32_t k = n - i < batch ? n - i : batch;
        proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_PUSH_MANY, 2);
        msgpack_pack_uint64(&st->pk, w);
        msgpack_pack_array(&st->pk, k);
        for (uint32_t j = 0; j < k; j++) {
            msgpack_pack_bin(&st->pk, size);
            obuf_ext(&c->out, payload, size);
        }
        if (fa_flush(c, err, errlen) < 0 || fa_wait(c, &resp, err, errlen) < 0)
            return -1;
    }
    if (fa_call_handle(c, PROTO_M_INTO_ARENA, w, &resp, err, errlen) < 0)
        return -1;
    return fa_handle_result(&resp, arena, err, errlen);
}

/* Reads the daemon's pid from stat. */
int farena_ctl_stat_pid(struct bconn *c, long *pid, char *err, size_t errlen)
{
    struct fstate *st = c->pstate;
    struct proto_response resp;
    proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_STAT, 0);
    if (fa_flush(c, err, errlen) < 0 || fa_wait(c, &resp, err, errlen) < 0)
        return -1;
    const msgpack_object *m = resp.result;
    if (m->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "farena: stat did not return a map");
        return -1;
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 3 &&
            memcmp(kv->key.via.str.ptr, "pid", 3) == 0 &&
            kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *pid = (long)kv->val.via.u64;
            return 0;
        }
    }
    snprintf(err, errlen, "farena: stat has no pid");
    return -1;
}

/* Releases a handle. */
int farena_ctl_release(struct bconn *c, uint64_t handle, char *err, size_t errlen)
{
    struct proto_response resp;
    return fa_call_handle(c, PROTO_M_RELEASE, handle, &resp, err, errlen);
}

/* Waits for the replies to the n requests sent with ids first..first+n-1 and
 * stores each handle result at out[id - first]. */
static int fa_collect(struct bconn *c, uint32_t first, uint32_t n, uint64_t *out, char *err,
                      size_t errlen)
{
    for (uint32_t k = 0; k < n; k++) {
        struct proto_response resp;
        if (fa_wait(c, &resp, err, errlen) < 0)
            return -1;
        uint32_t pos = resp.msgid - first;
        if (pos >= n) {
            snprintf(err, errlen, "farena: unexpected msgid %u", resp.msgid);
            return -1;
        }
        if (out && fa_handle_result(&resp, &out[pos], err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* The many-files build: groups of depth files (writer_new x depth, push x
 * depth, finish x depth, each group pipelined), then one build. */
int farena_ctl_build_many(struct bconn *c, uint32_t nfiles, uint32_t size, uint32_t depth,
                          double *total_s, double *build_s, uint64_t *arena, char *err,
                          size_t errlen)
{
    struct fstate *st = c->pstate;
    uint64_t *files = calloc(nfiles, sizeof *files);
    uint64_t *w = calloc(depth, sizeof *w);
    int rc = -1;
    if (!files || !w) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const char *payload = bench_payload();
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < nfiles; i += depth) {
        uint32_t n = nfiles - i < depth ? nfiles - i : depth;
        uint32_t first = c->next_id;
        for (uint32_t k = 0; k < n; k++) {
            proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_WRITER_NEW, 1);
            msgpack_pack_uint32(&st->pk, i + k);
        }
        if (fa_flush(c, err, errlen) < 0 || fa_collect(c, first, n, w, err, errlen) < 0)
            goto out;
        first = c->next_id;
        for (uint32_t k = 0; k < n; k++) {
            proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_PUSH, 2);
            msgpack_pack_uint64(&st->pk, w[k]);
            msgpack_pack_bin(&st->pk, size);
            obuf_ext(&c->out, payload, size);
        }
        if (fa_flush(c, err, errlen) < 0 || fa_collect(c, first, n, NULL, err, errlen) < 0)
            goto out;
        first = c->next_id;
        for (uint32_t k = 0; k < n; k++) {
            proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_FINISH, 1);
            msgpack_pack_uint64(&st->pk, w[k]);
        }
        if (fa_flush(c, err, errlen) < 0 || fa_collect(c, first, n, files + i, err, errlen) < 0)
            goto out;
    }
    uint64_t t1 = now_ns();
    proto_pack_request_head(&st->pk, c->next_id++, PROTO_M_BUILD, 1);
    msgpack_pack_array(&st->pk, nfiles);
    for (uint32_t i = 0; i < nfiles; i++)
        msgpack_pack_uint64(&st->pk, files[i]);
    struct proto_response resp;
    if (fa_flush(c, err, errlen) < 0 || fa_wait(c, &resp, err, errlen) < 0 ||
        fa_handle_result(&resp, arena, err, errlen) < 0)
        goto out;
    uint64_t t2 = now_ns();
    *total_s = (double)(t2 - t0) / 1e9;
    *build_s = (double)(t2 - t1) / 1e9;
    rc = 0;
out:
    free(w);
    free(files);
    return rc;
}
