/* check_proto, the codec's envelopes: request and notification decoding
 * (every envelope case, field edges), packed request, notification, result
 * and error heads round-tripping through the scanner and the decoders,
 * response decoding edges, PROTOCOL.md's worked example byte for byte, and
 * the exact sizes proto_size_* promise. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto_codec.h"
#include "proto_limits.h"
#include "proto_test.h"
#include "proto_scan.h"

/* ---- codec: envelopes ---- */

/* Unpacks hex into *msg, then decodes it as a request. */
static int req_hex(struct pool *p, const char *hex, struct proto_request *r, const char **why)
{
    msgpack_object o = obj(p, hex);
    *why = NULL;
    int rc = proto_request_decode(&o, r, why);
    if (rc != 0)
        ck_assert_ptr_nonnull(*why);
    return rc;
}

/* Same for a response. */
static int resp_hex(struct pool *p, const char *hex, struct proto_response *r, const char **why)
{
    msgpack_object o = obj(p, hex);
    *why = NULL;
    int rc = proto_response_decode(&o, r, why);
    if (rc != 0)
        ck_assert_ptr_nonnull(*why);
    return rc;
}

#define PUSH "a4 70757368"

/* One envelope case: hex, expected rc, expected answerable. */
struct env_case {
    const char *hex;
    int rc;
    int answerable;
};

static const struct env_case env_cases[] = {
    /* valid requests */
    {"94 00 07 " PUSH " 92 01 c4 05 68656c6c6f", 0, 1},
    {"94 00 00 " PUSH " 90", 0, 1},
    {"94 00 ce ffffffff " PUSH " 90", 0, 1},
    {"94 00 cf 0000000000000007 " PUSH " 90", 0, 1},
    {"94 d0 00 07 " PUSH " 90", 0, 1},
    {"94 00 07 a6 6e6f73756368 90", 0, 1}, /* unknown method: the daemon's call */
    {"dc 0004 00 07 " PUSH " dc 0000", 0, 1},
    {"94 00 07 d9 04 70757368 90", 0, 1}, /* str8 method */
    /* msgid */
    {"94 00 cf 0000000100000000 " PUSH " 90", -1, 0},
    {"94 00 ff " PUSH " 90", -1, 0},
    {"94 00 d0 ff " PUSH " 90", -1, 0},
    {"94 00 cb 401c000000000000 " PUSH " 90", -1, 0},
    {"94 00 ca 40e00000 " PUSH " 90", -1, 0},
    {"94 00 a1 37 " PUSH " 90", -1, 0},
    {"94 00 c0 " PUSH " 90", -1, 0},
    {"94 00 91 07 " PUSH " 90", -1, 0},
    /* array size */
    {"93 00 07 " PUSH, -1, 1},
    {"95 00 07 " PUSH " 90 c0", -1, 1},
    {"92 00 07", -1, 1},
    {"91 00", -1, 0},
    {"90", -1, 0},
    /* not an array */
    {"80", -1, 0},
    {"84 00 07 01 02 02 03 03 04", -1, 0},
    {"07", -1, 0},
    {"a3 616263", -1, 0},
    {"c0", -1, 0},
    {"c4 04 94000790", -1, 0},
    /* type */
    {"94 01 07 c0 c0", -1, 0},
    {"94 03 07 " PUSH " 90", -1, 0},
    {"94 ff 07 " PUSH " 90", -1, 0},
    {"94 ca 00000000 07 " PUSH " 90", -1, 0},
    {"94 a1 30 07 " PUSH " 90", -1, 0},
    {"94 c0 07 " PUSH " 90", -1, 0},
    {"94 c2 07 " PUSH " 90", -1, 0},
    /* method */
    {"94 00 07 c4 04 70757368 90", -1, 1},
    {"94 00 07 05 90", -1, 1},
    {"94 00 07 c0 90", -1, 1},
    {"94 00 07 a0 90", -1, 1},
    {"94 00 07 91 " PUSH " 90", -1, 1},
    /* params */
    {"94 00 07 " PUSH " 80", -1, 1},
    {"94 00 07 " PUSH " c0", -1, 1},
    {"94 00 07 " PUSH " 01", -1, 1},
    {"94 00 07 " PUSH " a0", -1, 1},
    {"94 00 07 " PUSH " c4 00", -1, 1},
    /* notifications: never answerable */
    {"93 02 " PUSH " 91 05", 0, 0},
    {"93 02 " PUSH " 90", 0, 0},
    {"92 02 " PUSH, -1, 0},
    {"94 02 " PUSH " 90 c0", -1, 0},
    {"94 02 07 " PUSH " 90", -1, 0},
    {"93 02 05 90", -1, 0},
    {"93 02 a0 90", -1, 0},
    {"93 02 " PUSH " 80", -1, 0},
    {"93 02 " PUSH " c0", -1, 0},
    {"93 02 c4 04 70757368 90", -1, 0},
};

/* One envelope case: decode result and answerable flag. */
START_TEST(test_request_envelopes)
{
    struct pool p;
    struct proto_request r;
    const char *why;
    const struct env_case *c = &env_cases[_i];
    uint8_t b[600];
    size_t n = unhex(c->hex, b, sizeof(b));

    pool_init(&p);
    /* The scanner accepts every one of these (they are well-formed msgpack). */
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    ck_assert_int_eq(scan_once(&lim, b, n, NULL, NULL, &why), PROTO_SCAN_READY);
    memset(&r, 0xa5, sizeof(r));
    ck_assert_msg(req_hex(&p, c->hex, &r, &why) == c->rc, "%s: %s", c->hex, why);
    ck_assert_msg(r.answerable == c->answerable, "%s: answerable %d", c->hex, r.answerable);
    if (c->rc == 0) {
        ck_assert_uint_ge(r.method_len, 1);
        ck_assert_uint_le(r.method_len, PROTO_MAX_METHOD_LEN);
        ck_assert_ptr_nonnull(r.method);
        if (r.nparams > 0)
            ck_assert_ptr_nonnull(r.params);
    }
    if (!r.answerable && r.type == PROTO_REQUEST)
        ck_assert_uint_eq(r.msgid, 0);
    pool_free(&p);
}
END_TEST

/* Decoded request fields, method length edges, partial results. */
START_TEST(test_request_fields)
{
    struct pool p;
    struct proto_request r;
    const char *why;
    char hex[200];

    pool_init(&p);
    ck_assert_int_eq(req_hex(&p, "94 00 07 " PUSH " 92 01 c4 05 68656c6c6f", &r, &why), 0);
    ck_assert_int_eq(r.type, PROTO_REQUEST);
    ck_assert_int_eq(r.answerable, 1);
    ck_assert_uint_eq(r.msgid, 7);
    ck_assert_uint_eq(r.method_len, 4);
    ck_assert_mem_eq(r.method, "push", 4);
    ck_assert_int_eq(proto_method_from_name(r.method, r.method_len), PROTO_M_PUSH);
    ck_assert_uint_eq(r.nparams, 2);
    ck_assert_int_eq(r.params[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    ck_assert_int_eq(r.params[1].type, MSGPACK_OBJECT_BIN);

    ck_assert_int_eq(req_hex(&p, "94 00 ce ffffffff " PUSH " 90", &r, &why), 0);
    ck_assert_uint_eq(r.msgid, UINT32_MAX);
    ck_assert_uint_eq(r.nparams, 0);

    ck_assert_int_eq(req_hex(&p, "93 02 a7 72656c65617365 91 05", &r, &why), 0);
    ck_assert_int_eq(r.type, PROTO_NOTIFY);
    ck_assert_int_eq(r.answerable, 0);
    ck_assert_uint_eq(r.msgid, 0);
    ck_assert_mem_eq(r.method, "release", 7);
    ck_assert_uint_eq(r.nparams, 1);

    /* A bad notification still says it was a notification. */
    ck_assert_int_eq(req_hex(&p, "93 02 05 90", &r, &why), -1);
    ck_assert_int_eq(r.type, PROTO_NOTIFY);

    /* A valid method survives bad params (the daemon counts the error
     * against that method). */
    ck_assert_int_eq(req_hex(&p, "94 00 07 " PUSH " 80", &r, &why), -1);
    ck_assert_int_eq(r.answerable, 1);
    ck_assert_uint_eq(r.method_len, 4);
    ck_assert_mem_eq(r.method, "push", 4);
    ck_assert_int_eq(req_hex(&p, "93 02 " PUSH " c0", &r, &why), -1);
    ck_assert_int_eq(r.type, PROTO_NOTIFY);
    ck_assert_mem_eq(r.method, "push", 4);
    ck_assert_int_eq(req_hex(&p, "94 00 07 a0 90", &r, &why), -1);
    ck_assert_ptr_null(r.method);

    /* A readable msgid survives a bad method. */
    ck_assert_int_eq(req_hex(&p, "94 00 2a 05 90", &r, &why), -1);
    ck_assert_int_eq(r.answerable, 1);
    ck_assert_uint_eq(r.msgid, 42);

    /* Method name length: 32 bytes allowed, 33 not. */
    strcpy(hex, "94 00 07 b");
    for (int len = 31; len <= 33; len++) {
        size_t k;
        if (len < 32)
            snprintf(hex, sizeof(hex), "94 00 07 %02x", 0xa0 | len);
        else
            snprintf(hex, sizeof(hex), "94 00 07 d9 %02x", len);
        k = strlen(hex);
        for (int i = 0; i < len; i++, k += 2)
            memcpy(hex + k, "61", 2);
        strcpy(hex + k, " 90");
        ck_assert_int_eq(req_hex(&p, hex, &r, &why), len <= 32 ? 0 : -1);
        ck_assert_int_eq(r.answerable, 1);
        if (len <= 32)
            ck_assert_uint_eq(r.method_len, (size_t)len);
    }
    /* NULL message */
    ck_assert_int_eq(proto_request_decode(NULL, &r, &why), -1);
    ck_assert_int_eq(r.answerable, 0);
    pool_free(&p);
}
END_TEST

/* Unpacks packed bytes through the scanner, the way the daemon receives them. */
static void recv_msg(msgpack_zone *z, const struct out *o, msgpack_object *msg)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    const char *why = NULL;
    size_t total = 0, used = 0;

    ck_assert_int_eq(scan_once(&lim, o->sb.data, o->sb.size, &total, &used, &why),
                     PROTO_SCAN_READY);
    ck_assert_uint_eq(total, o->sb.size);
    ck_assert_int_eq(proto_unpack(z, o->sb.data, o->sb.size, msg, &why), 0);
}

/* Request and notification heads for every method round-trip. */
START_TEST(test_pack_request_and_notify_heads)
{
    msgpack_zone z;
    ck_assert(msgpack_zone_init(&z, 2048));
    for (int m = 0; m < PROTO_M_COUNT; m++) {
        static const uint32_t ids[] = {0, 1, 127, 128, 65535, 65536, UINT32_MAX};
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            struct out o;
            msgpack_object msg;
            struct proto_request r;
            const char *why = NULL;
            uint32_t np = (uint32_t)(i % 3);

            out_init(&o);
            ck_assert_int_eq(proto_pack_request_head(&o.pk, ids[i], (enum proto_method)m, np), 0);
            ck_assert_uint_eq(o.sb.size, proto_size_request_head(ids[i], (enum proto_method)m, np));
            for (uint32_t k = 0; k < np; k++)
                msgpack_pack_uint64(&o.pk, k + 1);
            recv_msg(&z, &o, &msg);
            ck_assert_int_eq(proto_request_decode(&msg, &r, &why), 0);
            ck_assert_int_eq(r.type, PROTO_REQUEST);
            ck_assert_uint_eq(r.msgid, ids[i]);
            ck_assert_int_eq(proto_method_from_name(r.method, r.method_len), m);
            ck_assert_uint_eq(r.nparams, np);
            msgpack_zone_clear(&z);
            out_free(&o);

            out_init(&o);
            ck_assert_int_eq(proto_pack_notify_head(&o.pk, (enum proto_method)m, np), 0);
            for (uint32_t k = 0; k < np; k++)
                msgpack_pack_uint64(&o.pk, k + 1);
            recv_msg(&z, &o, &msg);
            ck_assert_int_eq(proto_request_decode(&msg, &r, &why), 0);
            ck_assert_int_eq(r.type, PROTO_NOTIFY);
            ck_assert_int_eq(proto_method_from_name(r.method, r.method_len), m);
            ck_assert_uint_eq(r.nparams, np);
            msgpack_zone_clear(&z);
            out_free(&o);
        }
    }
    struct out o;
    out_init(&o);
    ck_assert_int_eq(proto_pack_request_head(&o.pk, 1, PROTO_M_COUNT, 0), -1);
    ck_assert_int_eq(proto_pack_notify_head(&o.pk, (enum proto_method) - 1, 0), -1);
    ck_assert_uint_eq(o.sb.size, 0);
    out_free(&o);
    msgpack_zone_destroy(&z);
}
END_TEST

/* ---- codec: responses ---- */

/* Success responses round-trip (location, bin). */
START_TEST(test_response_result_round_trip)
{
    msgpack_zone z;
    struct out o;
    msgpack_object msg;
    struct proto_response r;
    struct proto_loc loc = {65535, UINT32_MAX, 5}, got;
    const char *why = NULL;

    ck_assert(msgpack_zone_init(&z, 2048));
    out_init(&o);
    ck_assert_int_eq(proto_pack_result_head(&o.pk, 4000000000u), 0);
    ck_assert_uint_eq(o.sb.size, proto_size_result_head(4000000000u));
    ck_assert_int_eq(proto_pack_loc(&o.pk, loc), 0);
    ck_assert_uint_eq(o.sb.size, proto_size_result_head(4000000000u) + proto_size_loc(loc));
    recv_msg(&z, &o, &msg);
    ck_assert_int_eq(proto_response_decode(&msg, &r, &why), 0);
    ck_assert_uint_eq(r.msgid, 4000000000u);
    ck_assert_int_eq(r.err, PROTO_OK);
    ck_assert_ptr_null(r.errname);
    ck_assert_ptr_null(r.message);
    ck_assert_int_eq(proto_read_loc(r.result, &got, &why), 0);
    ck_assert_uint_eq(got.file_index, 65535);
    ck_assert_uint_eq(got.offset, UINT32_MAX);
    ck_assert_uint_eq(got.len, 5);
    out_free(&o);
    msgpack_zone_clear(&z);

    /* A bin result, packed the zero-copy way. */
    out_init(&o);
    ck_assert_int_eq(proto_pack_result_head(&o.pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_bin(&o.pk, 5), 0);
    ck_assert_int_eq(msgpack_pack_bin_body(&o.pk, "hello", 5), 0);
    ck_assert_uint_eq(o.sb.size, proto_size_result_head(3) + proto_size_bin(5));
    recv_msg(&z, &o, &msg);
    ck_assert_int_eq(proto_response_decode(&msg, &r, &why), 0);
    const void *data;
    size_t len;
    ck_assert_int_eq(proto_read_payload(r.result, &data, &len, &why), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(data, "hello", 5);
    out_free(&o);
    msgpack_zone_destroy(&z);
}
END_TEST

/* Error responses for every code round-trip; invalid codes refused. */
START_TEST(test_response_error_round_trip)
{
    msgpack_zone z;
    ck_assert(msgpack_zone_init(&z, 2048));
    for (int code = 1; code < PROTO_ERR_COUNT; code++) {
        for (int with_msg = 0; with_msg < 2; with_msg++) {
            struct out o;
            msgpack_object msg;
            struct proto_response r;
            const char *why = NULL;
            const char *text = with_msg ? "item 3: file index 9 not in arena"
                                        : proto_err_describe((enum proto_err)code);
            const char *name = proto_err_name((enum proto_err)code);

            out_init(&o);
            ck_assert_int_eq(proto_pack_error(&o.pk, (uint32_t)code * 1000u, (enum proto_err)code,
                                              with_msg ? text : NULL),
                             0);
            recv_msg(&z, &o, &msg);
            ck_assert_int_eq(proto_response_decode(&msg, &r, &why), 0);
            ck_assert_uint_eq(r.msgid, (uint32_t)code * 1000u);
            ck_assert_int_eq(r.err, code);
            ck_assert_uint_eq(r.errname_len, strlen(name));
            ck_assert_mem_eq(r.errname, name, r.errname_len);
            ck_assert_uint_eq(r.message_len, strlen(text));
            ck_assert_mem_eq(r.message, text, r.message_len);
            ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_NIL);
            msgpack_zone_clear(&z);
            out_free(&o);
        }
    }
    struct out o;
    out_init(&o);
    ck_assert_int_eq(proto_pack_error(&o.pk, 1, PROTO_OK, "x"), -1);
    ck_assert_int_eq(proto_pack_error(&o.pk, 1, PROTO_ERR_COUNT, NULL), -1);
    ck_assert_uint_eq(o.sb.size, 0);
    out_free(&o);
    msgpack_zone_destroy(&z);
}
END_TEST

/* An error about one batch item carries it as data: [code, message,
 * {"item": k}]. The decoder reads it, ignores other detail keys, refuses a
 * third element that is not a map, and reports -1 when there is none. */
START_TEST(test_response_error_item)
{
    msgpack_zone z;
    struct out o;
    msgpack_object msg;
    struct proto_response r;
    struct pool p;
    const char *why = NULL;

    ck_assert(msgpack_zone_init(&z, 2048));
    for (int64_t item = -1; item <= 70000; item += 70001 / 3) {
        out_init(&o);
        ck_assert_int_eq(proto_pack_error_item(&o.pk, 7, PROTO_OUT_OF_BOUNDS, "item k: far", item),
                         0);
        recv_msg(&z, &o, &msg);
        ck_assert_int_eq(proto_response_decode(&msg, &r, &why), 0);
        ck_assert_int_eq(r.err, PROTO_OUT_OF_BOUNDS);
        ck_assert_int_eq(r.item, item < 0 ? -1 : item);
        ck_assert_uint_eq(msg.via.array.ptr[2].via.array.size, item < 0 ? 2 : 3);
        msgpack_zone_clear(&z);
        out_free(&o);
    }
    msgpack_zone_destroy(&z);
    pool_init(&p);
    /* [1, 5, ["limit", "x", {"why": 1, "item": 4}], nil]: unknown keys ignored */
    ck_assert_int_eq(
        resp_hex(&p, "94 01 05 93 a5 6c696d6974 a1 78 82 a3 776879 01 a4 6974656d 04 c0", &r, &why),
        0);
    ck_assert_int_eq(r.err, PROTO_LIMIT);
    ck_assert_int_eq(r.item, 4);
    /* {"item": "4"}: not an index, so none */
    ck_assert_int_eq(
        resp_hex(&p, "94 01 05 93 a5 6c696d6974 a1 78 81 a4 6974656d a1 34 c0", &r, &why), 0);
    ck_assert_int_eq(r.item, -1);
    /* a third element that is not a map, and a fourth element */
    ck_assert_int_eq(resp_hex(&p, "94 01 05 93 a5 6c696d6974 a1 78 04 c0", &r, &why), -1);
    ck_assert_int_eq(resp_hex(&p, "94 01 05 94 a5 6c696d6974 a1 78 80 80 c0", &r, &why), -1);
    pool_free(&p);
}
END_TEST

/* Responses: unknown codes, empty strings, malformed envelopes. */
START_TEST(test_response_decode_edges)
{
    struct pool p;
    struct proto_response r;
    const char *why;

    pool_init(&p);
    /* An error code from a newer daemon: decoded, err -1, name kept. */
    ck_assert_int_eq(resp_hex(&p, "94 01 09 92 a9 6272616e645f6e6577 a1 78 c0", &r, &why), 0);
    ck_assert_int_eq(r.err, -1);
    ck_assert_uint_eq(r.msgid, 9);
    ck_assert_uint_eq(r.errname_len, 9);
    ck_assert_mem_eq(r.errname, "brand_new", 9);
    ck_assert_uint_eq(r.message_len, 1);
    /* Empty code and message (found by the fuzzer): msgpack-c leaves their
     * pointers NULL, the decoder must not (NULL errname means success). */
    ck_assert_int_eq(resp_hex(&p, "94 01 09 92 a0 a0 c0", &r, &why), 0);
    ck_assert_int_eq(r.err, -1);
    ck_assert_ptr_nonnull(r.errname);
    ck_assert_uint_eq(r.errname_len, 0);
    ck_assert_ptr_nonnull(r.message);
    ck_assert_uint_eq(r.message_len, 0);
    /* "no_space" followed by a NUL is not no_space. */
    ck_assert_int_eq(resp_hex(&p, "94 01 09 92 a9 6e6f5f7370616365 00 a0 c0", &r, &why), 0);
    ck_assert_int_eq(r.err, -1);
    ck_assert_uint_eq(r.errname_len, 9);
    /* The daemon's max_clients refusal. */
    ck_assert_int_eq(resp_hex(&p, "94 01 00 92 a5 6c696d6974 a1 78 c0", &r, &why), 0);
    ck_assert_int_eq(r.err, PROTO_LIMIT);
    ck_assert_uint_eq(r.msgid, 0);
    /* Success with a plain result. */
    ck_assert_int_eq(resp_hex(&p, "94 01 07 c0 05", &r, &why), 0);
    ck_assert_int_eq(r.err, PROTO_OK);
    ck_assert_uint_eq(r.result->via.u64, 5);
    ck_assert_int_eq(resp_hex(&p, "94 01 07 c0 c0", &r, &why), 0);
    ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_NIL);
    /* Malformed. */
    static const char *const bad[] = {
        "93 01 07 c0",
        "95 01 07 c0 c0 c0",
        "94 00 07 c0 c0",
        "94 02 07 c0 c0",
        "94 ff 07 c0 c0",
        "94 01 ff c0 c0",
        "94 01 cf 0000000100000000 c0 c0",
        "94 01 ca 00000000 c0 c0",
        "80",
        "c0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(resp_hex(&p, bad[i], &r, &why) == -1, "%s", bad[i]);
        ck_assert_uint_eq(r.msgid, 0);
    }
    /* Bad error objects: the msgid is still reported. */
    static const char *const bad_err[] = {
        "94 01 07 a3 626164 c0",
        "94 01 07 91 a1 78 c0",
        "94 01 07 92 05 a1 78 c0",
        "94 01 07 92 a1 78 05 c0",
        "94 01 07 93 a1 78 a1 78 a1 78 c0",
        "94 01 07 c2 c0",
        "94 01 07 92 c4 01 78 a1 78 c0",
        "94 01 07 80 c0",
    };
    for (size_t i = 0; i < sizeof(bad_err) / sizeof(bad_err[0]); i++) {
        ck_assert_msg(resp_hex(&p, bad_err[i], &r, &why) == -1, "%s", bad_err[i]);
        ck_assert_uint_eq(r.msgid, 7);
    }
    ck_assert_int_eq(proto_response_decode(NULL, &r, &why), -1);
    pool_free(&p);
}
END_TEST

/* The worked example of PROTOCOL.md section 9, byte for byte. */
START_TEST(test_protocol_md_example)
{
    static const char req_hex_doc[] = "94 00 07 a4 70 75 73 68 92 01 c4 05 68 65 6c 6c 6f";
    static const char resp_hex_doc[] = "94 01 07 c0 93 00 00 05";
    uint8_t want[32];
    size_t n;
    struct out o;
    struct proto_loc loc = {0, 0, 5};

    out_init(&o);
    ck_assert_int_eq(proto_pack_request_head(&o.pk, 7, PROTO_M_PUSH, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&o.pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_bin(&o.pk, 5), 0);
    ck_assert_int_eq(msgpack_pack_bin_body(&o.pk, "hello", 5), 0);
    n = unhex(req_hex_doc, want, sizeof(want));
    ck_assert_uint_eq(o.sb.size, 17);
    ck_assert_uint_eq(o.sb.size, n);
    ck_assert_mem_eq(o.sb.data, want, n);
    ck_assert_uint_eq(
        proto_size_request_head(7, PROTO_M_PUSH, 2) + proto_size_uint(1) + proto_size_bin(5), n);
    msgpack_sbuffer_clear(&o.sb);
    ck_assert_int_eq(proto_pack_result_head(&o.pk, 7), 0);
    ck_assert_int_eq(proto_pack_loc(&o.pk, loc), 0);
    n = unhex(resp_hex_doc, want, sizeof(want));
    ck_assert_uint_eq(o.sb.size, 8);
    ck_assert_uint_eq(o.sb.size, n);
    ck_assert_mem_eq(o.sb.data, want, n);
    out_free(&o);
}
END_TEST

/* ---- codec: sizes ---- */

/* proto_size_* equal what msgpack-c packs, at every width boundary. */
START_TEST(test_sizes_match_msgpack)
{
    static const uint64_t vals[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    static char zeros[70000];
    struct out o;

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        uint64_t v = vals[i];
        out_init(&o);
        msgpack_pack_uint64(&o.pk, v);
        ck_assert_uint_eq(proto_size_uint(v), o.sb.size);
        if (v <= UINT32_MAX) {
            msgpack_sbuffer_clear(&o.sb);
            msgpack_pack_uint32(&o.pk, (uint32_t)v);
            ck_assert_uint_eq(proto_size_uint(v), o.sb.size);
        }
        if (v <= UINT16_MAX) {
            msgpack_sbuffer_clear(&o.sb);
            msgpack_pack_uint16(&o.pk, (uint16_t)v);
            ck_assert_uint_eq(proto_size_uint(v), o.sb.size);
        }
        if (v <= UINT32_MAX) {
            msgpack_sbuffer_clear(&o.sb);
            ck_assert_int_eq(proto_pack_result_head(&o.pk, (uint32_t)v), 0);
            ck_assert_uint_eq(proto_size_result_head((uint32_t)v), o.sb.size);
            /* The hand-encoded head is byte for byte msgpack-c's. */
            unsigned char head[PROTO_RESULT_HEAD_MAX];
            size_t hn = proto_encode_result_head((uint32_t)v, head);
            msgpack_sbuffer_clear(&o.sb);
            msgpack_pack_array(&o.pk, 4);
            msgpack_pack_uint8(&o.pk, 1);
            msgpack_pack_uint32(&o.pk, (uint32_t)v);
            msgpack_pack_nil(&o.pk);
            ck_assert_uint_eq(hn, o.sb.size);
            ck_assert_mem_eq(head, o.sb.data, hn);
        }
        if (v < sizeof(zeros)) {
            msgpack_sbuffer_clear(&o.sb);
            msgpack_pack_bin(&o.pk, (size_t)v);
            msgpack_pack_bin_body(&o.pk, zeros, (size_t)v);
            ck_assert_uint_eq(proto_size_bin((size_t)v), o.sb.size);
            msgpack_sbuffer_clear(&o.sb);
            msgpack_pack_str(&o.pk, (size_t)v);
            msgpack_pack_str_body(&o.pk, zeros, (size_t)v);
            ck_assert_uint_eq(proto_size_str((size_t)v), o.sb.size);
        }
        if (v <= UINT32_MAX) {
            msgpack_sbuffer_clear(&o.sb);
            msgpack_pack_array(&o.pk, (size_t)v);
            ck_assert_uint_eq(proto_size_array((size_t)v), o.sb.size);
            for (size_t j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
                if (v > UINT16_MAX || vals[j] > UINT32_MAX)
                    continue;
                struct proto_loc loc = {(uint16_t)v, (uint32_t)vals[j], (uint32_t)vals[j]};
                struct proto_loc loc2 = {(uint16_t)v, 0, (uint32_t)vals[j]};
                msgpack_sbuffer_clear(&o.sb);
                ck_assert_int_eq(proto_pack_loc(&o.pk, loc), 0);
                ck_assert_uint_eq(proto_size_loc(loc), o.sb.size);
                msgpack_sbuffer_clear(&o.sb);
                ck_assert_int_eq(proto_pack_loc(&o.pk, loc2), 0);
                ck_assert_uint_eq(proto_size_loc(loc2), o.sb.size);
            }
        }
        out_free(&o);
    }
    /* Sizes of every str/bin length boundary. */
    static const size_t lens[] = {0, 15, 16, 31, 32, 255, 256, 65535, 65536, 69999};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        out_init(&o);
        msgpack_pack_str_with_body(&o.pk, zeros, lens[i]);
        ck_assert_uint_eq(proto_size_str(lens[i]), o.sb.size);
        msgpack_sbuffer_clear(&o.sb);
        msgpack_pack_bin_with_body(&o.pk, zeros, lens[i]);
        ck_assert_uint_eq(proto_size_bin(lens[i]), o.sb.size);
        msgpack_sbuffer_clear(&o.sb);
        msgpack_pack_array(&o.pk, lens[i]);
        ck_assert_uint_eq(proto_size_array(lens[i]), o.sb.size);
        out_free(&o);
    }
    ck_assert_uint_eq(proto_size_bin((size_t)UINT32_MAX), (size_t)UINT32_MAX + 5);
    ck_assert_uint_eq(proto_size_array(UINT32_MAX), 5);
}
END_TEST

/* proto_pack_cstr packs what msgpack-c packs for the same bytes, in
 * proto_size_str() of their length, at every str width. */
START_TEST(test_pack_cstr)
{
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    static char text[65537];
    struct out got, want;

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        memset(text, 'z', lens[i]);
        text[lens[i]] = '\0';
        out_init(&got);
        out_init(&want);
        ck_assert_int_eq(proto_pack_cstr(&got.pk, text), 0);
        ck_assert_int_eq(msgpack_pack_str_with_body(&want.pk, text, lens[i]), 0);
        ck_assert_uint_eq(got.sb.size, proto_size_str(lens[i]));
        ck_assert_uint_eq(got.sb.size, want.sb.size);
        ck_assert_mem_eq(got.sb.data, want.sb.data, want.sb.size);
        out_free(&got);
        out_free(&want);
    }
}
END_TEST

/* The envelope, response and size cases. */
void proto_codec_cases(Suite *s)
{
    TCase *t = tcase_create("codec");

    tcase_add_loop_test(t, test_request_envelopes, 0,
                        (int)(sizeof(env_cases) / sizeof(env_cases[0])));
    tcase_add_test(t, test_request_fields);
    tcase_add_test(t, test_pack_request_and_notify_heads);
    tcase_add_test(t, test_response_result_round_trip);
    tcase_add_test(t, test_response_error_round_trip);
    tcase_add_test(t, test_response_error_item);
    tcase_add_test(t, test_response_decode_edges);
    tcase_add_test(t, test_sizes_match_msgpack);
    tcase_add_test(t, test_pack_cstr);
    tcase_add_test(t, test_protocol_md_example);
    suite_add_tcase(s, t);
}
