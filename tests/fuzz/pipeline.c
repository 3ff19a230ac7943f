/* The daemon's receive path with its invariants checked at every step. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto_codec.h"
#include "proto_limits.h"
#include "proto_scan.h"

/* Aborts with the broken invariant's text: libFuzzer and Check both report
 * an abort as a failure with the input that caused it. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A fixed-capacity packer output, so the harness allocates nothing per call. */
struct fixed_out {
    char buf[1024];
    size_t len;
};

/* msgpack_packer write callback into a struct fixed_out. */
static int fixed_write(void *data, const char *p, size_t n)
{
    struct fixed_out *o = data;
    if (n > sizeof(o->buf) - o->len)
        return -1;
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

/* Picks the scanner limits from one byte. Depth stays at most
 * PROTO_MAX_DEPTH_MAX so that every message the scanner accepts must also
 * unpack. */
static struct proto_limits pick_limits(uint8_t sel)
{
    static const uint32_t msg[4] = {PROTO_MAX_MESSAGE_MIN, 1u << 20, PROTO_MAX_MESSAGE_DEFAULT,
                                    PROTO_MAX_MESSAGE_MIN + 7};
    static const uint32_t depth[4] = {1, 4, PROTO_MAX_DEPTH_DEFAULT, PROTO_MAX_DEPTH_MAX};
    static const uint32_t objects[4] = {1, 16, 1024, PROTO_MAX_OBJECTS_DEFAULT};
    struct proto_limits l = {msg[sel & 3], depth[(sel >> 2) & 3], objects[(sel >> 4) & 3]};
    return l;
}

/* The integer o stands for, as the protocol reads integers: a non-negative
 * integer, or a float holding an exact integer in 0..2^64-1 (what
 * JavaScript encoders send). Returns 1 and *v, or 0. */
static int int_value(const msgpack_object *o, uint64_t *v)
{
    double f;

    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *v = o->via.u64;
        return 1;
    }
    if (o->type != MSGPACK_OBJECT_FLOAT32 && o->type != MSGPACK_OBJECT_FLOAT64)
        return 0;
    f = o->via.f64;
    if (!(f >= 0.0 && f < 18446744073709551616.0))
        return 0;
    *v = (uint64_t)f;
    return (double)*v == f;
}

/* Runs every typed reader on o and checks what each one claims. */
static void exercise_readers(const msgpack_object *o)
{
    const char *why = NULL;
    uint64_t u = 0;
    uint16_t ix = 0;
    struct proto_loc loc;
    const void *data = NULL;
    const char *str = NULL;
    size_t len = 0;
    const msgpack_object *items = NULL;
    uint32_t n = 0;

    uint64_t want = 0;
    int is_int = int_value(o, &want);

    if (proto_read_uint(o, UINT64_MAX, &u, &why) == 0) {
        CHECK(is_int && u == want);
        CHECK(proto_size_uint(u) >= 1 && proto_size_uint(u) <= 9);
    } else {
        CHECK(why != NULL && !is_int);
    }
    why = NULL;
    if (proto_read_uint(o, UINT32_MAX, &u, &why) == 0)
        CHECK(is_int && u == want && u <= UINT32_MAX);
    else
        CHECK(why != NULL && (!is_int || want > UINT32_MAX));
    why = NULL;
    if (proto_read_handle(o, &u, &why) == 0)
        CHECK(is_int && u != 0 && u == want);
    else
        CHECK(why != NULL && (!is_int || want == 0));
    why = NULL;
    if (proto_read_index(o, &ix, &why) == 0)
        CHECK(is_int && want <= UINT16_MAX && ix == want);
    else
        CHECK(why != NULL && (!is_int || want > UINT16_MAX));
    why = NULL;
    if (proto_read_loc(o, &loc, &why) == 0) {
        struct fixed_out out = {.len = 0};
        msgpack_packer pk;
        uint64_t e[3];
        CHECK(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 3);
        for (int i = 0; i < 3; i++)
            CHECK(int_value(&o->via.array.ptr[i], &e[i]));
        CHECK(loc.file_index == e[0]);
        CHECK(loc.offset == e[1]);
        CHECK(loc.len == e[2]);
        msgpack_packer_init(&pk, &out, fixed_write);
        CHECK(proto_pack_loc(&pk, loc) == 0);
        CHECK(out.len == proto_size_loc(loc));
    } else {
        CHECK(why != NULL);
    }
    why = NULL;
    if (proto_read_payload(o, &data, &len, &why) == 0) {
        CHECK(o->type == MSGPACK_OBJECT_BIN || o->type == MSGPACK_OBJECT_STR);
        CHECK(data != NULL);
        CHECK(len == (o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.str.size));
    } else {
        CHECK(why != NULL);
    }
    why = NULL;
    if (proto_read_str(o, PROTO_MAX_NAME_LEN, &str, &len, &why) == 0)
        CHECK(len >= 1 && len <= PROTO_MAX_NAME_LEN && memchr(str, 0, len) == NULL);
    else
        CHECK(why != NULL);
    why = NULL;
    if (proto_read_array(o, &items, &n, &why) == 0)
        CHECK(o->type == MSGPACK_OBJECT_ARRAY && n == o->via.array.size);
    else
        CHECK(why != NULL);
}

/* Readers on o and, when o is an array, on its items (batches). */
static void exercise_param(const msgpack_object *o)
{
    exercise_readers(o);
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < o->via.array.size; i++)
            exercise_readers(&o->via.array.ptr[i]);
}

/* Answers a request the way the daemon would and decodes the answer back. */
static void reply_round_trip(msgpack_zone *zone, uint32_t msgid)
{
    struct fixed_out out = {.len = 0};
    msgpack_packer pk;
    msgpack_object o;
    struct proto_response r;
    const char *why = NULL;

    msgpack_packer_init(&pk, &out, fixed_write);
    CHECK(proto_pack_error(&pk, msgid, PROTO_BAD_REQUEST, NULL) == 0);
    CHECK(proto_unpack(zone, out.buf, out.len, &o, &why) == 0);
    CHECK(proto_response_decode(&o, &r, &why) == 0);
    CHECK(r.msgid == msgid && r.err == PROTO_BAD_REQUEST);
}

/* One complete message, alone in an exact-size heap buffer so that any
 * over-read is caught by AddressSanitizer. */
static void run_message(struct proto_scan *s, msgpack_zone *zone, const uint8_t *buf, size_t len)
{
    msgpack_object o;
    struct proto_request req;
    struct proto_response resp;
    const char *why = NULL;
    uint32_t sid = 0;
    int known = proto_scan_msgid(s, &sid);

    /* Whatever the scanner accepts, msgpack-c must be able to unpack, and
     * find exactly the same end. */
    if (proto_unpack(zone, buf, len, &o, &why) != 0) {
        fprintf(stderr, "scanner accepted %zu bytes msgpack-c refuses: %s\n", len, why);
        abort();
    }

    why = NULL;
    if (proto_request_decode(&o, &req, &why) == 0) {
        CHECK(req.method != NULL && req.method_len >= 1);
        CHECK(req.method_len <= PROTO_MAX_METHOD_LEN);
        CHECK(req.nparams == 0 || req.params != NULL);
        CHECK(req.type == PROTO_REQUEST ? req.answerable : !req.answerable);
        (void)proto_method_from_name(req.method, req.method_len);
        for (uint32_t i = 0; i < req.nparams; i++)
            exercise_param(&req.params[i]);
    } else {
        CHECK(why != NULL);
    }
    /* The scanner and the decoder agree on when a msgid is known. */
    CHECK(known == req.answerable);
    if (known) {
        CHECK(sid == req.msgid);
        reply_round_trip(zone, sid);
    }

    why = NULL;
    if (proto_response_decode(&o, &resp, &why) == 0) {
        CHECK(resp.result != NULL);
        if (resp.err != PROTO_OK)
            CHECK(resp.errname != NULL && resp.message != NULL);
        if (resp.err > 0)
            CHECK(proto_err_name((enum proto_err)resp.err) != NULL);
        exercise_param(resp.result);
    } else {
        CHECK(why != NULL);
    }
    msgpack_zone_clear(zone);
}

/* The next chunk length: a pattern derived from the input's seed byte. */
static size_t next_chunk(uint64_t *state, uint8_t seed, size_t remaining)
{
    static const size_t span[4] = {1, 3, 17, 300};
    uint64_t x = *state;
    size_t k;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    if ((seed & 0x80) != 0)
        k = remaining; /* whole stream at once */
    else
        k = 1 + (size_t)((x * 0x2545f4914f6cdd1dULL) >> 33) % span[seed & 3];
    return k < remaining ? k : remaining;
}

/* See pipeline.h. */
size_t fuzz_pipeline_run(const uint8_t *data, size_t size)
{
    struct proto_limits lim;
    struct proto_scan *s;
    msgpack_zone zone, pzone;
    msgpack_object po;
    const uint8_t *stream;
    size_t n, pos = 0, msg_start = 0, count = 0, expect = 0, expect_at = (size_t)-1;
    uint64_t rng;

    if (size < 2)
        return 0;
    lim = pick_limits(data[0]);
    stream = data + 2;
    n = size - 2;
    rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)data[1] << 32 | n);
    s = proto_scan_new(&lim);
    CHECK(s != NULL);
    CHECK(msgpack_zone_init(&zone, 2048));
    CHECK(msgpack_zone_init(&pzone, 2048));

    while (pos < n) {
        size_t k = next_chunk(&rng, data[1], n - pos);
        size_t off = 0;
        while (off < k) {
            size_t used = (size_t)-1;
            /* The daemon's one-pass path, given the rest of the stream at
             * each message start: whatever it takes, the scanner must
             * delimit identically, and never reject. */
            if (expect_at != msg_start) {
                expect = proto_unpack_prefix(&pzone, stream + msg_start, n - msg_start, &lim, &po);
                expect_at = msg_start;
                msgpack_zone_clear(&pzone);
            }
            const char *why = NULL;
            enum proto_scan_status st =
                proto_scan_feed(s, stream + pos + off, k - off, &used, &why);
            CHECK(used <= k - off);
            if (st == PROTO_SCAN_MORE) {
                CHECK(used == k - off);
                off = k;
                CHECK(proto_scan_total(s) == pos + off - msg_start);
                CHECK(proto_scan_total(s) <= lim.max_message);
                continue;
            }
            if (st == PROTO_SCAN_REJECT) {
                uint32_t id;
                CHECK(why != NULL);
                CHECK(expect == 0);
                (void)proto_scan_msgid(s, &id);
                /* A rejected stream stays rejected. */
                CHECK(proto_scan_feed(s, stream, 1, &used, &why) == PROTO_SCAN_REJECT);
                goto out;
            }
            CHECK(st == PROTO_SCAN_READY);
            off += used;
            size_t len = proto_scan_total(s);
            CHECK(len >= 1 && len <= lim.max_message);
            CHECK(len == pos + off - msg_start);
            CHECK(expect == 0 || expect == len);
            uint8_t *copy = malloc(len);
            CHECK(copy != NULL);
            memcpy(copy, stream + msg_start, len);
            run_message(s, &zone, copy, len);
            free(copy);
            msg_start += len;
            count++;
            proto_scan_reset(s);
            CHECK(proto_scan_total(s) == 0 && proto_scan_msgid(s, NULL) == 0);
        }
        pos += k;
    }
out:
    msgpack_zone_destroy(&zone);
    msgpack_zone_destroy(&pzone);
    proto_scan_free(s);
    return count;
}
