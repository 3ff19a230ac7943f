/* check_proto, unpacking: proto_unpack against msgpack-c (same verdict, same
 * objects, bodies not copied) and the daemon's one-pass proto_unpack_prefix
 * against the scanner and proto_unpack, over random messages of every type
 * and encoding. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto_codec.h"
#include "harness.h"
#include "proto_limits.h"
#include "proto_test.h"
#include "proto_scan.h"

/* ---- codec: unpack ---- */

/* proto_unpack: no copy of bodies, trailing bytes, bad input, zone reuse. */
START_TEST(test_unpack)
{
    msgpack_zone z;
    msgpack_object o;
    const char *why = NULL;
    uint8_t b[32];
    size_t n = unhex("94 00 07 a4 70757368 92 01 c4 05 68656c6c6f", b, sizeof(b));

    ck_assert(msgpack_zone_init(&z, 2048));
    ck_assert_int_eq(proto_unpack(&z, b, n, &o, &why), 0);
    ck_assert_int_eq(o.type, MSGPACK_OBJECT_ARRAY);
    /* bin bodies point into the message: no copy */
    ck_assert_ptr_eq(o.via.array.ptr[3].via.array.ptr[1].via.bin.ptr, (const char *)b + 12);
    msgpack_zone_clear(&z);
    b[n] = 0xc0;
    ck_assert_int_eq(proto_unpack(&z, b, n + 1, &o, &why), -1);
    ck_assert_ptr_nonnull(strstr(why, "trailing"));
    msgpack_zone_clear(&z);
    ck_assert_int_eq(proto_unpack(&z, b, n - 1, &o, &why), -1);
    msgpack_zone_clear(&z);
    ck_assert_int_eq(proto_unpack(&z, b, 0, &o, &why), -1);
    ck_assert_int_eq(proto_unpack(&z, "\xc1", 1, &o, &why), -1);
    ck_assert_int_eq(proto_unpack(&z, "\x92\x01\xc1", 3, &o, &why), -1);
    ck_assert_int_eq(proto_unpack(NULL, b, n, &o, &why), -1);
    msgpack_zone_clear(&z);
    /* One zone serves many messages when cleared in between. */
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(proto_unpack(&z, b, n, &o, &why), 0);
        msgpack_zone_clear(&z);
    }
    msgpack_zone_destroy(&z);
}
END_TEST

/* Whether two unpacked objects are the same: types, values, and for str,
 * bin and ext the same pointer into the message (an empty one's pointer is
 * unspecified: msgpack-c itself gives NULL or a stale one). */
static int obj_same(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return 1;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return a->via.i64 == b->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
    case MSGPACK_OBJECT_STR:
        return a->via.str.size == b->via.str.size &&
               (a->via.str.size == 0 || a->via.str.ptr == b->via.str.ptr);
    case MSGPACK_OBJECT_BIN:
        return a->via.bin.size == b->via.bin.size &&
               (a->via.bin.size == 0 || a->via.bin.ptr == b->via.bin.ptr);
    case MSGPACK_OBJECT_EXT:
        return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
               a->via.ext.ptr == b->via.ext.ptr;
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return 0;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!obj_same(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return 0;
        return 1;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return 0;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!obj_same(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !obj_same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return 0;
        return 1;
    default:
        return 0;
    }
}

/* Appends a random msgpack object of every kind (any width, minimal or
 * not; containers up to depth levels) to buf at *n (cap bytes). */
static void gen_obj(uint64_t *rng, uint8_t *buf, size_t *n, size_t cap, int depth)
{
    static const uint8_t markers[] = {0x00, 0x7f, 0xe0, 0xff, 0xc0, 0xc2, 0xc3, 0xcc,
                                      0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca,
                                      0xcb, 0xa0, 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6,
                                      0xd4, 0xc7, 0x90, 0xdc, 0xdd, 0x80, 0xde};
    uint64_t r = th_rand(rng);
    uint8_t c = markers[r % sizeof(markers)];
    unsigned len = (unsigned)(r >> 8) % 6;
    unsigned k;

    if (cap - *n < 64)
        c = 0xc0;
    if (depth == 0 && (c == 0x90 || c == 0xdc || c == 0xdd || c == 0x80 || c == 0xde))
        c = 0x01;
    if (c == 0x00 || c == 0x7f || c == 0xe0 || c == 0xff) {
        buf[(*n)++] = (uint8_t)(c ^ (r >> 16 & 0x1f));
        return;
    }
    if (c == 0x90 || c == 0x80)
        buf[(*n)++] = (uint8_t)(c | len);
    else if (c == 0xa0)
        buf[(*n)++] = (uint8_t)(c | len);
    else
        buf[(*n)++] = c;
    switch (c) {
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
    case 0xca:
    case 0xcb:
        k = c >= 0xd0 ? 1u << (c - 0xd0) : c >= 0xcc ? 1u << (c - 0xcc) : c == 0xca ? 4 : 8;
        for (unsigned i = 0; i < k; i++)
            buf[(*n)++] = (uint8_t)(th_rand(rng) >> 24);
        return;
    case 0xd9:
    case 0xc4:
    case 0xc7:
        buf[(*n)++] = (uint8_t)len;
        break;
    case 0xda:
    case 0xc5:
    case 0xdc:
    case 0xde:
        buf[(*n)++] = 0;
        buf[(*n)++] = (uint8_t)len;
        break;
    case 0xdb:
    case 0xc6:
    case 0xdd:
        buf[(*n)++] = 0;
        buf[(*n)++] = 0;
        buf[(*n)++] = 0;
        buf[(*n)++] = (uint8_t)len;
        break;
    case 0xd4:
        len = 1;
        break;
    default:
        break;
    }
    if (c == 0xc7 || c == 0xd4)
        buf[(*n)++] = 5; /* ext type */
    if (c == 0x90 || c == 0xdc || c == 0xdd || c == 0x80 || c == 0xde) {
        unsigned items = (c == 0x80 || c == 0xde) ? 2 * len : len;
        for (unsigned i = 0; i < items; i++)
            gen_obj(rng, buf, n, cap, depth - 1);
        return;
    }
    if (c == 0xc0 || c == 0xc2 || c == 0xc3)
        return;
    for (unsigned i = 0; i < len; i++)
        buf[(*n)++] = (uint8_t)('a' + i);
}

/* proto_unpack takes a faster path for most messages; whatever it returns
 * must be exactly what msgpack-c gives (same verdict, same objects), for
 * random messages of every type and encoding, each prefix of them, and
 * each with a trailing byte. */
START_TEST(test_unpack_matches_msgpack)
{
    static uint8_t buf[1 << 16];
    uint64_t rng = 0x5eed;
    msgpack_zone z1, z2;
    msgpack_object a, b;
    const char *why;

    ck_assert(msgpack_zone_init(&z1, 4096));
    ck_assert(msgpack_zone_init(&z2, 4096));
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0;
        gen_obj(&rng, buf, &n, sizeof(buf) - 1, 1 + iter % 12);
        buf[n] = 0xc0;
        for (size_t len = 0; len <= n + 1; len += (len < 64 || len + 1 >= n ? 1 : n / 16)) {
            size_t off = 0;
            why = NULL;
            int rc = proto_unpack(&z1, buf, len, &a, &why);
            msgpack_unpack_return mr = msgpack_unpack((const char *)buf, len, &off, &z2, &b);
            ck_assert_int_eq(rc == 0, mr == MSGPACK_UNPACK_SUCCESS);
            if (rc == 0)
                ck_assert_msg(obj_same(&a, &b), "iteration %d, %zu bytes: objects differ", iter,
                              len);
            else
                ck_assert_ptr_nonnull(why);
            msgpack_zone_clear(&z1);
            msgpack_zone_clear(&z2);
        }
    }
    /* Empty str and bin: size 0, and the payload reader never gives NULL. */
    ck_assert_int_eq(proto_unpack(&z1, "\x92\xa0\xc4\x00", 4, &a, &why), 0);
    ck_assert_uint_eq(a.via.array.ptr[0].via.str.size, 0);
    ck_assert_uint_eq(a.via.array.ptr[1].via.bin.size, 0);
    {
        const void *d = NULL;
        size_t dl = 1;
        ck_assert_int_eq(proto_read_payload(&a.via.array.ptr[1], &d, &dl, &why), 0);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(dl, 0);
    }
    msgpack_zone_destroy(&z1);
    msgpack_zone_destroy(&z2);
}
END_TEST

/* The daemon's one-pass path must accept exactly what the pre-scanner
 * would have delimited and proto_unpack decoded: for random messages with
 * trailing bytes, each prefix, under the default limits and tight ones,
 * a message proto_unpack_prefix takes has the scanner's length and
 * proto_unpack's objects, and one the scanner rejects is never taken. */
START_TEST(test_unpack_prefix_agrees_with_scanner)
{
    static uint8_t buf[1 << 16];
    const struct proto_limits lims[] = {
        limits(PROTO_MAX_MESSAGE_DEFAULT, PROTO_MAX_DEPTH_DEFAULT, PROTO_MAX_OBJECTS_DEFAULT),
        limits(64, 3, 12),
        limits(20, 2, 5),
        limits(1 << 16, 1, 3),
        limits(9, PROTO_MAX_DEPTH_DEFAULT, 1000),
        limits(1 << 16, PROTO_MAX_DEPTH_DEFAULT, 0),
    };
    uint64_t rng = 0xfa57;
    msgpack_zone z1, z2;
    msgpack_object a, b;
    const char *why;
    int taken = 0;

    ck_assert(msgpack_zone_init(&z1, 4096));
    ck_assert(msgpack_zone_init(&z2, 4096));
    for (int iter = 0; iter < 2000; iter++) {
        const struct proto_limits *lim = &lims[iter % 6];
        size_t n = 0;
        gen_obj(&rng, buf, &n, sizeof(buf) - 8, 1 + iter % 10);
        for (int t = 0; t < 4; t++)
            buf[n + (size_t)t] = (uint8_t)th_rand(&rng);
        for (size_t len = 0; len <= n + 4; len += (len < 64 || len + 1 >= n ? 1 : n / 16)) {
            size_t total = 0;
            enum proto_scan_status st = scan_once(lim, buf, len, &total, NULL, NULL);
            size_t k = proto_unpack_prefix(&z1, buf, len, lim, &a);
            if (k > 0) {
                taken++;
                ck_assert_msg(st == PROTO_SCAN_READY && total == k,
                              "iteration %d, %zu bytes: prefix took %zu, scanner %d/%zu", iter, len,
                              k, (int)st, total);
                why = NULL;
                ck_assert_int_eq(proto_unpack(&z2, buf, k, &b, &why), 0);
                ck_assert_msg(obj_same(&a, &b), "iteration %d: objects differ", iter);
            }
            if (st == PROTO_SCAN_REJECT)
                ck_assert_uint_eq(k, 0);
            msgpack_zone_clear(&z1);
            msgpack_zone_clear(&z2);
        }
    }
    /* The random messages exercise the path, not only its refusals. */
    ck_assert_int_gt(taken, 1000);
    /* A typical request is taken whole, with the next one's bytes behind it;
     * one byte short, it is not. */
    {
        static const uint8_t get[] = {0x94, 0x00, 0x07, 0xa3, 'g',  'e',  't', 0x92,
                                      0x05, 0x93, 0x00, 0x10, 0x20, 0x94, 0x00};
        ck_assert_uint_eq(proto_unpack_prefix(&z1, get, sizeof(get), &lims[0], &a), 13);
        ck_assert_uint_eq(proto_unpack_prefix(&z1, get, 12, &lims[0], &a), 0);
        /* Hostile counts are declined without allocating for them. */
        ck_assert_uint_eq(proto_unpack_prefix(&z1, "\xdd\xff\xff\xff\xff\x00", 6, &lims[0], &a), 0);
        ck_assert_uint_eq(proto_unpack_prefix(&z1, "\xc6\xff\xff\xff\xff\x00", 6, &lims[0], &a), 0);
    }
    msgpack_zone_destroy(&z1);
    msgpack_zone_destroy(&z2);
}
END_TEST

/* The unpacking cases. */
void proto_unpack_cases(Suite *s)
{
    TCase *t = tcase_create("unpack");

    tcase_add_test(t, test_unpack);
    tcase_add_test(t, test_unpack_matches_msgpack);
    tcase_add_test(t, test_unpack_prefix_agrees_with_scanner);
    suite_add_tcase(s, t);
}
