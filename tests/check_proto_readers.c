/* check_proto, the typed readers: integers, handles, file indices,
 * locations, payloads, names and arrays at their edges, and floats holding
 * exact integers (as stock JavaScript clients send them) through both
 * decoders. */
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

/* ---- codec: typed readers ---- */

/* proto_read_uint: ranges, encodings, and refusals with reasons. */
START_TEST(test_read_uint)
{
    struct pool p;
    const char *why = NULL;
    uint64_t v = 0;
    pool_init(&p);

    msgpack_object o = obj(&p, "00");
    ck_assert_int_eq(proto_read_uint(&o, 0, &v, &why), 0);
    ck_assert_uint_eq(v, 0);
    o = obj(&p, "cd ffff");
    ck_assert_int_eq(proto_read_uint(&o, 65535, &v, &why), 0);
    ck_assert_uint_eq(v, 65535);
    ck_assert_int_eq(proto_read_uint(&o, 65534, &v, &why), -1);
    ck_assert_ptr_nonnull(why);
    o = obj(&p, "cf ffffffffffffffff");
    ck_assert_int_eq(proto_read_uint(&o, UINT64_MAX, &v, &why), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    o = obj(&p, "d0 05"); /* int8 5: msgpack-c reads it as positive */
    ck_assert_int_eq(proto_read_uint(&o, 10, &v, &why), 0);
    ck_assert_uint_eq(v, 5);

    static const char *const bad[] = {"ff",
                                      "d0 ff",
                                      "d3 8000000000000000",
                                      "ca 3fc00000",         /* 1.5f */
                                      "cb 3ff8000000000000", /* 1.5 */
                                      "cb 7ff8000000000000", /* NaN */
                                      "c0",
                                      "c2",
                                      "c3",
                                      "a1 31",
                                      "c4 01 01",
                                      "90",
                                      "80",
                                      "d4 01 01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = obj(&p, bad[i]);
        why = NULL;
        v = 77;
        ck_assert_msg(proto_read_uint(&o, UINT64_MAX, &v, &why) == -1, "%s", bad[i]);
        ck_assert_ptr_nonnull(why);
        ck_assert_uint_eq(v, 77);
    }
    o = obj(&p, "ff");
    proto_read_uint(&o, 10, &v, &why);
    ck_assert_ptr_nonnull(strstr(why, "negative"));
    o = obj(&p, "cb 3ff8000000000000");
    proto_read_uint(&o, 10, &v, &why);
    ck_assert_ptr_nonnull(strstr(why, "float"));
    o = obj(&p, "c0");
    proto_read_uint(&o, 10, &v, &why);
    ck_assert_ptr_nonnull(strstr(why, "nil"));
    ck_assert_int_eq(proto_read_uint(NULL, 10, &v, &why), -1);
    ck_assert_int_eq(proto_read_uint(&o, 10, &v, NULL), -1);
    pool_free(&p);
}
END_TEST

/* Handles (0 refused) and file indices (65535 ok, 65536 not). */
START_TEST(test_read_handle_and_index)
{
    struct pool p;
    const char *why = NULL;
    uint64_t h = 0;
    uint16_t ix = 0;
    pool_init(&p);

    msgpack_object o = obj(&p, "01");
    ck_assert_int_eq(proto_read_handle(&o, &h, &why), 0);
    ck_assert_uint_eq(h, 1);
    o = obj(&p, "cf ffffffffffffffff");
    ck_assert_int_eq(proto_read_handle(&o, &h, &why), 0);
    ck_assert_uint_eq(h, UINT64_MAX);
    static const char *const bad_handles[] = {"00",
                                              "cf 0000000000000000",
                                              "ff",
                                              "d3 ffffffffffffffff",
                                              "ca 3fc00000",
                                              "cb 3ff8000000000000",
                                              "cb 0000000000000000",
                                              "ca 80000000",
                                              "c0",
                                              "a1 31",
                                              "c3",
                                              "91 01"};
    for (size_t i = 0; i < sizeof(bad_handles) / sizeof(bad_handles[0]); i++) {
        o = obj(&p, bad_handles[i]);
        h = 99;
        ck_assert_msg(proto_read_handle(&o, &h, &why) == -1, "%s", bad_handles[i]);
        ck_assert_uint_eq(h, 99);
    }
    ck_assert_int_eq(proto_read_handle(NULL, &h, &why), -1);

    o = obj(&p, "00");
    ck_assert_int_eq(proto_read_index(&o, &ix, &why), 0);
    ck_assert_uint_eq(ix, 0);
    o = obj(&p, "cd ffff");
    ck_assert_int_eq(proto_read_index(&o, &ix, &why), 0);
    ck_assert_uint_eq(ix, 65535);
    o = obj(&p, "ce 0000ffff");
    ck_assert_int_eq(proto_read_index(&o, &ix, &why), 0);
    ck_assert_uint_eq(ix, 65535);
    static const char *const bad_idx[] = {
        "ce 00010000", "cf 0000000000010000", "ce ffffffff", "ff",    "d1 ff00",
        "ca 47800000", "cb 40f0000000000000", "c0",          "a1 30", "c2"};
    for (size_t i = 0; i < sizeof(bad_idx) / sizeof(bad_idx[0]); i++) {
        o = obj(&p, bad_idx[i]);
        ix = 7;
        ck_assert_msg(proto_read_index(&o, &ix, &why) == -1, "%s", bad_idx[i]);
        ck_assert_uint_eq(ix, 7);
    }
    o = obj(&p, "ce 00010000");
    proto_read_index(&o, &ix, &why);
    ck_assert_ptr_nonnull(strstr(why, "65535"));
    ck_assert_int_eq(proto_read_index(NULL, &ix, &why), -1);
    pool_free(&p);
}
END_TEST

/* Locations: exact shape and ranges; *out untouched on failure. */
START_TEST(test_read_loc)
{
    struct pool p;
    const char *why = NULL;
    struct proto_loc l = {1, 2, 3};
    pool_init(&p);

    msgpack_object o = obj(&p, "93 00 00 00");
    ck_assert_int_eq(proto_read_loc(&o, &l, &why), 0);
    ck_assert_uint_eq(l.file_index, 0);
    ck_assert_uint_eq(l.offset, 0);
    ck_assert_uint_eq(l.len, 0);
    o = obj(&p, "93 cd ffff ce ffffffff ce ffffffff");
    ck_assert_int_eq(proto_read_loc(&o, &l, &why), 0);
    ck_assert_uint_eq(l.file_index, 65535);
    ck_assert_uint_eq(l.offset, UINT32_MAX);
    ck_assert_uint_eq(l.len, UINT32_MAX);
    o = obj(&p, "dc 0003 cf 0000000000000001 d0 02 d1 0003");
    ck_assert_int_eq(proto_read_loc(&o, &l, &why), 0);
    ck_assert_uint_eq(l.file_index, 1);
    ck_assert_uint_eq(l.offset, 2);
    ck_assert_uint_eq(l.len, 3);

    static const char *const bad[] = {
        "93 ce 00010000 00 00",         /* index 65536 */
        "93 00 cf 0000000100000000 00", /* offset 2^32 */
        "93 00 00 cf 0000000100000000", /* len 2^32 */
        "93 ff 00 00",
        "93 00 ff 00",
        "93 00 00 ff",
        "93 ca 3f000000 00 00",         /* index 0.5f */
        "93 00 cb 41f0000000000000 00", /* offset 2.0^32 */
        "93 00 00 ca bf800000",         /* len -1.0f */
        "93 c0 00 00",
        "93 00 c0 00",
        "93 00 00 c0",
        "92 00 00",
        "94 00 00 00 00",
        "90",
        "c0",
        "80",
        "00",
        "83 00 00 01 01 02 02",
        "93 a1 30 00 00",
        "93 00 00 c4 01 00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proto_loc keep = {9, 9, 9};
        o = obj(&p, bad[i]);
        why = NULL;
        ck_assert_msg(proto_read_loc(&o, &keep, &why) == -1, "%s", bad[i]);
        ck_assert_ptr_nonnull(why);
        ck_assert_uint_eq(keep.file_index, 9);
        ck_assert_uint_eq(keep.offset, 9);
        ck_assert_uint_eq(keep.len, 9);
    }
    ck_assert_int_eq(proto_read_loc(NULL, &l, &why), -1);
    pool_free(&p);
}
END_TEST

/* Payloads, names and arrays at their edges. */
START_TEST(test_read_payload_str_array)
{
    struct pool p;
    const char *why = NULL;
    const void *data = NULL;
    size_t len = 99;
    const char *s = NULL;
    const msgpack_object *items = NULL;
    uint32_t n = 99;
    pool_init(&p);

    msgpack_object o = obj(&p, "c4 05 68656c6c6f");
    ck_assert_int_eq(proto_read_payload(&o, &data, &len, &why), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(data, "hello", 5);
    o = obj(&p, "a5 68656c6c6f");
    ck_assert_int_eq(proto_read_payload(&o, &data, &len, &why), 0);
    ck_assert_uint_eq(len, 5);
    o = obj(&p, "c4 00");
    ck_assert_int_eq(proto_read_payload(&o, &data, &len, &why), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(data);
    o = obj(&p, "a0");
    data = NULL;
    ck_assert_int_eq(proto_read_payload(&o, &data, &len, &why), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(data);
    static const char *const bad_payload[] = {"c0",       "05", "90",
                                              "d4 01 00", "80", "cb 0000000000000000"};
    for (size_t i = 0; i < sizeof(bad_payload) / sizeof(bad_payload[0]); i++) {
        o = obj(&p, bad_payload[i]);
        ck_assert_msg(proto_read_payload(&o, &data, &len, &why) == -1, "%s", bad_payload[i]);
    }
    ck_assert_int_eq(proto_read_payload(NULL, &data, &len, &why), -1);

    o = obj(&p, "a4 6a6f6273");
    ck_assert_int_eq(proto_read_str(&o, PROTO_MAX_NAME_LEN, &s, &len, &why), 0);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(s, "jobs", 4);
    ck_assert_int_eq(proto_read_str(&o, 4, &s, &len, &why), 0);
    ck_assert_int_eq(proto_read_str(&o, 3, &s, &len, &why), -1);
    o = obj(&p, "a0");
    ck_assert_int_eq(proto_read_str(&o, PROTO_MAX_NAME_LEN, &s, &len, &why), -1);
    o = obj(&p, "a3 610062");
    ck_assert_int_eq(proto_read_str(&o, PROTO_MAX_NAME_LEN, &s, &len, &why), -1);
    ck_assert_ptr_nonnull(strstr(why, "NUL"));
    o = obj(&p, "c4 03 616263");
    ck_assert_int_eq(proto_read_str(&o, PROTO_MAX_NAME_LEN, &s, &len, &why), -1);
    o = obj(&p, "05");
    ck_assert_int_eq(proto_read_str(&o, PROTO_MAX_NAME_LEN, &s, &len, &why), -1);
    ck_assert_int_eq(proto_read_str(NULL, PROTO_MAX_NAME_LEN, &s, &len, &why), -1);
    /* 255 bytes allowed, 256 not. */
    {
        static char hex[2 * 256 + 16];
        for (int size = 255; size <= 256; size++) {
            int k = snprintf(hex, sizeof(hex), size < 256 ? "d9 %02x" : "da %04x", size);
            for (int i = 0; i < size; i++, k += 2)
                memcpy(hex + k, "7a", 2);
            hex[k] = '\0';
            o = obj(&p, hex);
            ck_assert_int_eq(proto_read_str(&o, PROTO_MAX_NAME_LEN, &s, &len, &why),
                             size <= 255 ? 0 : -1);
        }
    }

    o = obj(&p, "92 01 02");
    ck_assert_int_eq(proto_read_array(&o, &items, &n, &why), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(items[1].via.u64, 2);
    o = obj(&p, "90");
    ck_assert_int_eq(proto_read_array(&o, &items, &n, &why), 0);
    ck_assert_uint_eq(n, 0);
    o = obj(&p, "81 01 02");
    ck_assert_int_eq(proto_read_array(&o, &items, &n, &why), -1);
    o = obj(&p, "c0");
    ck_assert_int_eq(proto_read_array(&o, &items, &n, &why), -1);
    ck_assert_int_eq(proto_read_array(NULL, &items, &n, &why), -1);
    pool_free(&p);
}
END_TEST

/* ---- floats holding integers (stock JavaScript clients) ---- */

/* Unpacks hex twice, into out[0] by the direct decoder (the daemon's
 * proto_unpack_prefix) and into out[1] by msgpack-c itself, so every reader
 * is checked over the objects of both paths. Objects live as long as p. */
static void unpack_both(struct pool *p, const char *hex, msgpack_object out[2])
{
    const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    uint8_t *b;
    size_t n, off = 0;

    ck_assert_int_lt(p->used, 64);
    b = p->bytes[p->used++];
    n = unhex(hex, b, sizeof(p->bytes[0]));
    ck_assert_msg(proto_unpack_prefix(&p->zone, b, n, &lim, &out[0]) == n, "%s", hex);
    ck_assert_int_eq(msgpack_unpack((const char *)b, n, &off, &p->zone, &out[1]),
                     MSGPACK_UNPACK_SUCCESS);
}

/* A float32 or float64 holding an exact integer in range is read as that
 * integer by every integer reader, through both decoders; NaN, infinities,
 * fractions, negatives and values out of range stay refused. */
START_TEST(test_read_float_integers)
{
    static const struct {
        const char *hex;
        uint64_t max;
        int ok;
        uint64_t v;
    } cases[] = {
        {"cb 41e0000000000000", UINT32_MAX, 1, 2147483648u}, /* 2^31 */
        {"cb 41efffffffe00000", UINT32_MAX, 1, UINT32_MAX},  /* 2^32 - 1 */
        {"cb 41f0000000000000", UINT32_MAX, 0, 0},           /* 2^32 */
        {"ca 4f000000", UINT32_MAX, 1, 2147483648u},         /* float32 2^31 */
        {"ca 4b800000", UINT32_MAX, 1, 16777216u},           /* float32 2^24 */
        {"ca 4f800000", UINT32_MAX, 0, 0},                   /* float32 2^32 */
        {"cb 401c000000000000", 7, 1, 7},
        {"cb 401c000000000000", 6, 0, 0},
        {"cb 0000000000000000", 0, 1, 0},
        {"cb 8000000000000000", 10, 1, 0}, /* -0.0 */
        {"ca 80000000", 10, 1, 0},         /* -0.0f */
        {"cb 43efffffffffffff", UINT64_MAX, 1, 18446744073709549568u},
        {"cb 43f0000000000000", UINT64_MAX, 0, 0}, /* 2^64 */
        {"cb 4415af1d78b58c40", UINT64_MAX, 0, 0}, /* 1e20 */
        {"cb 41e0000000100000", UINT32_MAX, 0, 0}, /* 2^31 + 0.5 */
        {"cb 3fe0000000000000", 10, 0, 0},         /* 0.5 */
        {"ca 3fc00000", 10, 0, 0},                 /* 1.5f */
        {"cb bff0000000000000", 10, 0, 0},         /* -1.0 */
        {"ca bf800000", 10, 0, 0},                 /* -1.0f */
        {"cb 7ff0000000000000", UINT64_MAX, 0, 0}, /* inf */
        {"cb fff0000000000000", UINT64_MAX, 0, 0}, /* -inf */
        {"ca 7f800000", UINT64_MAX, 0, 0},         /* inf f32 */
        {"cb 7ff8000000000000", UINT64_MAX, 0, 0}, /* NaN */
        {"ca 7fc00000", UINT64_MAX, 0, 0},         /* NaN f32 */
        {"cb 0000000000000001", UINT64_MAX, 0, 0}, /* the smallest subnormal */
    };
    struct pool p;
    msgpack_object o[2];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pool_init(&p);
        unpack_both(&p, cases[i].hex, o);
        for (int k = 0; k < 2; k++) {
            const char *why = NULL;
            uint64_t v = 12345;
            ck_assert_msg(o[k].type == MSGPACK_OBJECT_FLOAT32 ||
                              o[k].type == MSGPACK_OBJECT_FLOAT64,
                          "%s", cases[i].hex);
            ck_assert_msg(proto_read_uint(&o[k], cases[i].max, &v, &why) == (cases[i].ok ? 0 : -1),
                          "%s (decoder %d)", cases[i].hex, k);
            if (cases[i].ok) {
                ck_assert_uint_eq(v, cases[i].v);
            } else {
                ck_assert_ptr_nonnull(why);
                ck_assert_uint_eq(v, 12345);
            }
        }
        pool_free(&p);
    }

    /* Handles: 2^31 and 4.0 are handles, 0.0 and 1.5 are not. */
    pool_init(&p);
    {
        uint64_t h = 0;
        const char *why = NULL;
        unpack_both(&p, "cb 41e0000000000000", o);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(proto_read_handle(&o[k], &h, &why), 0);
            ck_assert_uint_eq(h, 2147483648u);
        }
        unpack_both(&p, "ca 40800000", o);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(proto_read_handle(&o[k], &h, &why), 0);
            ck_assert_uint_eq(h, 4);
        }
        unpack_both(&p, "cb 0000000000000000", o);
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(proto_read_handle(&o[k], &h, &why), -1);
        unpack_both(&p, "cb 3ff8000000000000", o);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(proto_read_handle(&o[k], &h, &why), -1);
            ck_assert_ptr_nonnull(strstr(why, "float"));
        }
    }
    /* File indices: 65535.0 is one, 65536.0 is not. */
    {
        uint16_t ix = 0;
        const char *why = NULL;
        unpack_both(&p, "cb 40efffe000000000", o);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(proto_read_index(&o[k], &ix, &why), 0);
            ck_assert_uint_eq(ix, 65535);
        }
        unpack_both(&p, "ca 47800000", o);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(proto_read_index(&o[k], &ix, &why), -1);
            ck_assert_ptr_nonnull(strstr(why, "65535"));
        }
    }
    /* Locations: every element may be a float; a fraction anywhere fails. */
    {
        struct proto_loc l = {9, 9, 9};
        const char *why = NULL;
        unpack_both(&p, "93 cb 0000000000000000 cb 41e0000000000000 ca 4f000000", o);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(proto_read_loc(&o[k], &l, &why), 0);
            ck_assert_uint_eq(l.file_index, 0);
            ck_assert_uint_eq(l.offset, 2147483648u);
            ck_assert_uint_eq(l.len, 2147483648u);
        }
        unpack_both(&p, "93 00 cb 41e0000000100000 05", o);
        for (int k = 0; k < 2; k++) {
            l = (struct proto_loc){9, 9, 9};
            ck_assert_int_eq(proto_read_loc(&o[k], &l, &why), -1);
            ck_assert_ptr_nonnull(strstr(why, "offset"));
            ck_assert_uint_eq(l.offset, 9);
        }
        unpack_both(&p, "93 00 05 cb 41f0000000000000", o);
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(proto_read_loc(&o[k], &l, &why), -1);
    }
    pool_free(&p);
}
END_TEST

/* A whole get request as a JavaScript encoder writes it (handle and offset
 * as float64) takes the daemon's one-pass decoder, decodes as a request and
 * reads back exact integers. */
START_TEST(test_request_with_floats_fast_path)
{
    const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    uint8_t b[64];
    size_t n = unhex("94 00 01 a3 676574 92 cb 4014000000000000"
                     " 93 00 cb 41e0000000000000 05",
                     b, sizeof(b));
    msgpack_zone z;
    msgpack_object o;
    struct proto_request r;
    struct proto_loc l;
    const char *why = NULL;
    uint64_t h;

    ck_assert(msgpack_zone_init(&z, 1024));
    ck_assert_uint_eq(proto_unpack_prefix(&z, b, n, &lim, &o), n);
    ck_assert_int_eq(proto_request_decode(&o, &r, &why), 0);
    ck_assert_int_eq(proto_method_from_name(r.method, r.method_len), PROTO_M_GET);
    ck_assert_uint_eq(r.nparams, 2);
    ck_assert_int_eq(proto_read_handle(&r.params[0], &h, &why), 0);
    ck_assert_uint_eq(h, 5);
    ck_assert_int_eq(proto_read_loc(&r.params[1], &l, &why), 0);
    ck_assert_uint_eq(l.offset, 2147483648u);
    ck_assert_uint_eq(l.len, 5);
    /* Cut anywhere, the one-pass decoder declines (the scanner decides). */
    for (size_t k = 1; k < n; k++)
        ck_assert_uint_eq(proto_unpack_prefix(&z, b, k, &lim, &o), 0);
    msgpack_zone_destroy(&z);
}
END_TEST

/* The reader cases. */
void proto_reader_cases(Suite *s)
{
    TCase *t = tcase_create("readers");

    tcase_add_test(t, test_read_uint);
    tcase_add_test(t, test_read_handle_and_index);
    tcase_add_test(t, test_read_loc);
    tcase_add_test(t, test_read_payload_str_array);
    suite_add_tcase(s, t);

    t = tcase_create("float_integers");
    tcase_add_test(t, test_read_float_integers);
    tcase_add_test(t, test_request_with_floats_fast_path);
    suite_add_tcase(s, t);
}
