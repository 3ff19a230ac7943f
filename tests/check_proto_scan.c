/* check_proto, the scanner's framing: every msgpack format whole, in every
 * prefix and a byte at a time, the large encodings, a stream of mixed
 * messages under every chunking, READY's byte count and reset, and the
 * request msgid it reads on the way. The guards are in check_proto_guards.c. */
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

/* ---- scanner: formats and boundaries ---- */

/* Length of the first message in b as msgpack-c sees it (the oracle), or 0
 * if msgpack-c cannot unpack it. Only for small, trusted inputs. */
static size_t oracle_len(const void *b, size_t n)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    msgpack_unpack_return r;

    ck_assert(msgpack_zone_init(&z, 1024));
    r = msgpack_unpack(b, n, &off, &z, &o);
    msgpack_zone_destroy(&z);
    return (r == MSGPACK_UNPACK_SUCCESS || r == MSGPACK_UNPACK_EXTRA_BYTES) ? off : 0;
}

/* Hex of messages covering every msgpack format, including encodings
 * msgpack-c never produces (non-minimal widths), checked against msgpack-c. */
static const char *const format_msgs[] = {
    "c0",
    "c2",
    "c3",
    "00",
    "7f",
    "e0",
    "ff",
    "cc ff",
    "cd ffff",
    "ce ffffffff",
    "cf ffffffffffffffff",
    "d0 80",
    "d1 8000",
    "d2 80000000",
    "d3 8000000000000000",
    "ca 3fc00000",
    "cb 3ff8000000000000",
    "a0",
    "a3 616263",
    /* fixstr of 31 bytes */
    "bf 41414141414141414141414141414141414141414141414141414141414141",
    "d9 00",
    "d9 02 6869",
    "da 0000",
    "da 0002 6869",
    "db 00000000",
    "db 00000002 6869",
    "c4 00",
    "c4 02 0102",
    "c5 0000",
    "c5 0002 0102",
    "c6 00000000",
    "c6 00000002 0102",
    "d4 01 aa",
    "d5 02 aabb",
    "d6 03 aabbccdd",
    "d7 04 0102030405060708",
    "d8 05 0102030405060708090a0b0c0d0e0f10",
    "c7 00 01",
    "c7 02 01 aabb",
    "c8 0000 01",
    "c8 0002 01 aabb",
    "c9 00000000 01",
    "c9 00000002 01 aabb",
    "90",
    "91 c0",
    "9f 000102030405060708090a0b0c0d0e",
    "dc 0000",
    "dc 0002 c0 c0",
    "dd 00000000",
    "dd 00000002 c0 c0",
    "80",
    "81 01 02",
    "8f 0000 0101 0202 0303 0404 0505 0606 0707 0808 0909 0a0a 0b0b 0c0c 0d0d 0e0e",
    "de 0000",
    "de 0001 a161 c0",
    "df 00000000",
    "df 00000001 a161 91 c0",
    /* c1 inside a body or as an ext type byte is data, not a marker. */
    "c4 01 c1",
    "d4 c1 00",
    "c7 01 c1 c1",
    "a1 c1",
    /* nested mixes */
    "93 92 81 c0 90 80 a0 dd 00000001 de 0001 c4 00 d4 00 00",
    "94 00 07 a4 70757368 92 01 c4 05 68656c6c6f",
};

/* Every format alone: whole, every prefix, and a byte at a time. */
START_TEST(test_scan_every_format)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    for (size_t i = 0; i < sizeof(format_msgs) / sizeof(format_msgs[0]); i++) {
        uint8_t b[256];
        size_t n = unhex(format_msgs[i], b, sizeof(b));
        size_t total = 0, used = 0;
        const char *why = NULL;

        ck_assert_msg(oracle_len(b, n) == n, "msgpack-c disagrees on %s", format_msgs[i]);
        /* whole */
        ck_assert_msg(scan_once(&lim, b, n, &total, &used, &why) == PROTO_SCAN_READY, "%s: %s",
                      format_msgs[i], why ? why : "not ready");
        ck_assert_uint_eq(total, n);
        ck_assert_uint_eq(used, n);
        /* every prefix is incomplete */
        for (size_t k = 0; k < n; k++)
            ck_assert_int_eq(scan_once(&lim, b, k, &total, &used, &why), PROTO_SCAN_MORE);
        /* one byte at a time */
        struct proto_scan *s = proto_scan_new(&lim);
        ck_assert_ptr_nonnull(s);
        for (size_t k = 0; k < n; k++) {
            enum proto_scan_status st = proto_scan_feed(s, b + k, 1, &used, &why);
            ck_assert_int_eq(st, k + 1 == n ? PROTO_SCAN_READY : PROTO_SCAN_MORE);
            ck_assert_uint_eq(used, 1);
        }
        ck_assert_uint_eq(proto_scan_total(s), n);
        proto_scan_free(s);
    }
}
END_TEST

/* Large minimal encodings msgpack-c produces: str16/str32, bin16/bin32,
 * array16/array32, map16/map32, ext16/ext32. */
START_TEST(test_scan_large_formats)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    static char zeros[70000];
    struct out o;
    size_t total, used;
    const char *why;

    out_init(&o);
    msgpack_pack_array(&o.pk, 8);
    msgpack_pack_str_with_body(&o.pk, zeros, 300);
    msgpack_pack_str_with_body(&o.pk, zeros, 70000);
    msgpack_pack_bin_with_body(&o.pk, zeros, 300);
    msgpack_pack_bin_with_body(&o.pk, zeros, 70000);
    msgpack_pack_ext_with_body(&o.pk, zeros, 300, 3);
    msgpack_pack_ext_with_body(&o.pk, zeros, 70000, 4);
    msgpack_pack_array(&o.pk, 70000);
    for (int i = 0; i < 70000; i++)
        msgpack_pack_nil(&o.pk);
    msgpack_pack_map(&o.pk, 40000);
    for (int i = 0; i < 40000; i++) {
        msgpack_pack_uint32(&o.pk, (uint32_t)i);
        msgpack_pack_true(&o.pk);
    }
    ck_assert_uint_eq(oracle_len(o.sb.data, o.sb.size), o.sb.size);
    ck_assert_int_eq(scan_once(&lim, o.sb.data, o.sb.size, &total, &used, &why), PROTO_SCAN_READY);
    ck_assert_uint_eq(total, o.sb.size);
    ck_assert_uint_eq(used, o.sb.size);
    out_free(&o);
}
END_TEST

/* One message of the test stream and what the scanner must say about it. */
struct stream_msg {
    size_t off, len;
    int msgid_known;
    uint32_t msgid;
};

#define STREAM_MAX 32

/* A stream of several messages of different shapes, built with msgpack-c. */
struct stream {
    struct out o;
    struct stream_msg m[STREAM_MAX];
    size_t n;
};

/* Closes the message packed since the previous one. */
static void stream_mark(struct stream *st, int known, uint32_t msgid)
{
    size_t off = st->n == 0 ? 0 : st->m[st->n - 1].off + st->m[st->n - 1].len;
    ck_assert_uint_lt(st->n, STREAM_MAX);
    st->m[st->n].off = off;
    st->m[st->n].len = st->o.sb.size - off;
    st->m[st->n].msgid_known = known;
    st->m[st->n].msgid = msgid;
    st->n++;
}

/* Builds the stream. */
static void stream_build(struct stream *st)
{
    static const char big[300] = {1, 2, 3};
    msgpack_packer *pk = &st->o.pk;
    struct proto_loc loc = {3, 70000, 5};

    out_init(&st->o);
    st->n = 0;

    proto_pack_request_head(pk, 7, PROTO_M_PUSH, 2);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_bin_with_body(pk, "hello", 5);
    stream_mark(st, 1, 7);

    proto_pack_request_head(pk, 65536, PROTO_M_PUSH_MANY, 2);
    msgpack_pack_uint64(pk, 300);
    msgpack_pack_array(pk, 3);
    msgpack_pack_bin_with_body(pk, big, sizeof(big));
    msgpack_pack_str_with_body(pk, "text", 4);
    msgpack_pack_bin_with_body(pk, "", 0);
    stream_mark(st, 1, 65536);

    proto_pack_notify_head(pk, PROTO_M_RELEASE, 1);
    msgpack_pack_uint64(pk, 5);
    stream_mark(st, 0, 0);

    proto_pack_error(pk, 9, PROTO_NO_SUCH_HANDLE, "writer 5");
    stream_mark(st, 0, 0);

    proto_pack_request_head(pk, UINT32_MAX, PROTO_M_HELLO, 1);
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "client", 6);
    msgpack_pack_str_with_body(pk, "check_proto", 11);
    msgpack_pack_str_with_body(pk, "pid", 3);
    msgpack_pack_int64(pk, -123456789012LL);
    stream_mark(st, 1, UINT32_MAX);

    proto_pack_result_head(pk, 7);
    proto_pack_loc(pk, loc);
    stream_mark(st, 0, 0);

    proto_pack_request_head(pk, 0, PROTO_M_GET_MANY, 2);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_array(pk, 2);
    proto_pack_loc(pk, loc);
    loc.offset = UINT32_MAX;
    proto_pack_loc(pk, loc);
    stream_mark(st, 1, 0);

    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, 0);
    msgpack_pack_double(pk, 7.0);
    msgpack_pack_str_with_body(pk, "get", 3);
    msgpack_pack_array(pk, 0);
    stream_mark(st, 0, 0);

    msgpack_pack_nil(pk);
    stream_mark(st, 0, 0);

    msgpack_pack_array(pk, 0);
    stream_mark(st, 0, 0);

    msgpack_pack_array(pk, 6);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_double(pk, -2.25);
    msgpack_pack_int8(pk, -100);
    msgpack_pack_int16(pk, -30000);
    msgpack_pack_int32(pk, -2000000000);
    msgpack_pack_ext_with_body(pk, "abcdefgh", 8, 1);
    stream_mark(st, 0, 0);

    msgpack_pack_map(pk, 1);
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 0);
    msgpack_pack_ext_with_body(pk, big, 20, -5);
    stream_mark(st, 0, 0);
}

/* Chunk-size policies for feeding the stream. */
struct chunker {
    int kind; /* 0: fixed size; 1: random; 2: two chunks cut at split */
    size_t size;
    size_t split;
    uint64_t rng;
};

/* The next chunk's length, at most remaining, at least 1. */
static size_t chunk_next(struct chunker *c, size_t pos, size_t remaining)
{
    size_t k;
    if (c->kind == 0) {
        k = c->size;
    } else if (c->kind == 1) {
        uint64_t r = th_rand(&c->rng);
        k = (r & 7) == 0 ? 1 + (size_t)(r >> 8) % 600 : 1 + (size_t)(r >> 8) % 24;
    } else {
        k = pos < c->split ? c->split - pos : remaining;
    }
    return k < remaining ? (k == 0 ? 1 : k) : remaining;
}

/* Feeds the whole stream in chunks and checks every message boundary, every
 * msgid, and that every message unpacks. Returns the number of messages the
 * scanner framed. */
static size_t feed_stream(const struct stream *st, struct chunker *c)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    struct proto_scan *s = proto_scan_new(&lim);
    const uint8_t *buf = (const uint8_t *)st->o.sb.data;
    size_t len = st->o.sb.size, pos = 0, msg = 0, msg_start = 0;
    msgpack_zone z;

    ck_assert_ptr_nonnull(s);
    ck_assert(msgpack_zone_init(&z, 2048));
    while (pos < len) {
        size_t k = chunk_next(c, pos, len - pos);
        size_t off = 0;
        while (off < k) {
            size_t used = 0;
            const char *why = NULL;
            uint32_t id = 0;
            enum proto_scan_status r = proto_scan_feed(s, buf + pos + off, k - off, &used, &why);
            ck_assert_uint_le(used, k - off);
            if (r == PROTO_SCAN_MORE) {
                ck_assert_uint_eq(used, k - off);
                off = k;
                continue;
            }
            ck_assert_msg(r == PROTO_SCAN_READY, "rejected at %zu: %s", pos + off, why);
            off += used;
            ck_assert_uint_lt(msg, st->n);
            ck_assert_uint_eq(msg_start, st->m[msg].off);
            ck_assert_uint_eq(proto_scan_total(s), st->m[msg].len);
            ck_assert_uint_eq(pos + off - msg_start, st->m[msg].len);
            ck_assert_int_eq(proto_scan_msgid(s, &id), st->m[msg].msgid_known);
            if (st->m[msg].msgid_known)
                ck_assert_uint_eq(id, st->m[msg].msgid);
            msgpack_object o;
            ck_assert_int_eq(proto_unpack(&z, buf + msg_start, st->m[msg].len, &o, &why), 0);
            msgpack_zone_clear(&z);
            msg_start += st->m[msg].len;
            msg++;
            proto_scan_reset(s);
            ck_assert_int_eq(proto_scan_msgid(s, &id), 0);
            ck_assert_uint_eq(proto_scan_total(s), 0);
        }
        pos += k;
    }
    ck_assert_uint_eq(proto_scan_total(s), 0);
    msgpack_zone_destroy(&z);
    proto_scan_free(s);
    return msg;
}

/* The stream in fixed chunk sizes, from 1 byte to all at once. */
START_TEST(test_scan_stream_byte_at_a_time)
{
    static const size_t sizes[] = {1, 2, 3, 7, 0};
    struct stream st;

    stream_build(&st);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* 0: all at once, READY reports each message's end */
        struct chunker c = {.kind = 0, .size = sizes[i] != 0 ? sizes[i] : st.o.sb.size};
        ck_assert_uint_eq(feed_stream(&st, &c), st.n);
    }
    out_free(&st.o);
}
END_TEST

/* The stream cut in two at every byte boundary. */
START_TEST(test_scan_stream_every_split)
{
    struct stream st;

    stream_build(&st);
    for (size_t k = 1; k < st.o.sb.size; k++) {
        struct chunker c = {.kind = 2, .split = k};
        ck_assert_uint_eq(feed_stream(&st, &c), st.n);
    }
    out_free(&st.o);
}
END_TEST

/* The stream at 600 random chunkings (fixed seed). */
START_TEST(test_scan_stream_random_splits)
{
    struct stream st;
    struct chunker c = {.kind = 1, .rng = 0x5eed1234abcdULL};

    stream_build(&st);
    for (int i = 0; i < 600; i++)
        ck_assert_uint_eq(feed_stream(&st, &c), st.n);
    out_free(&st.o);
}
END_TEST

/* READY reports the bytes used; feeding past READY needs a reset. */
START_TEST(test_scan_used_and_reset)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    struct proto_scan *s = proto_scan_new(&lim);
    uint8_t b[] = {0xc0, 0x91, 0x05, 0x07};
    size_t used = 99;
    const char *why = NULL;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(proto_scan_feed(s, b, 0, &used, &why), PROTO_SCAN_MORE);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(proto_scan_feed(s, b, 4, &used, &why), PROTO_SCAN_READY);
    ck_assert_uint_eq(used, 1);
    ck_assert_uint_eq(proto_scan_total(s), 1);
    /* Feeding on without a reset is refused, and stays refused. */
    ck_assert_int_eq(proto_scan_feed(s, b + 1, 3, &used, &why), PROTO_SCAN_REJECT);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(proto_scan_reject_code(s), PROTO_BAD_REQUEST);
    ck_assert_int_eq(proto_scan_feed(s, b + 1, 3, NULL, NULL), PROTO_SCAN_REJECT);
    proto_scan_reset(s);
    ck_assert_int_eq(proto_scan_feed(s, b + 1, 3, &used, &why), PROTO_SCAN_READY);
    ck_assert_uint_eq(used, 2);
    ck_assert_uint_eq(proto_scan_total(s), 2);
    proto_scan_reset(s);
    ck_assert_int_eq(proto_scan_feed(s, b + 3, 1, NULL, NULL), PROTO_SCAN_READY);
    proto_scan_free(s);
    proto_scan_free(NULL);
}
END_TEST

/* proto_scan_msgid: when a request msgid is known, and when not. */
START_TEST(test_scan_msgid)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    struct proto_scan *s = proto_scan_new(&lim);
    uint32_t id = 0;
    size_t used;
    const char *why;
    uint8_t b[64];
    size_t n;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(proto_scan_msgid(s, &id), 0);

    /* Known as soon as element 1 is walked, whatever follows. */
    n = unhex("94 00 ce 00010000 a4 70757368 90", b, sizeof(b));
    for (size_t k = 0; k < n; k++) {
        enum proto_scan_status st = proto_scan_feed(s, b + k, 1, &used, &why);
        ck_assert_int_eq(st, k + 1 == n ? PROTO_SCAN_READY : PROTO_SCAN_MORE);
        ck_assert_int_eq(proto_scan_msgid(s, NULL), k >= 6);
    }
    ck_assert_int_eq(proto_scan_msgid(s, &id), 1);
    ck_assert_uint_eq(id, 65536);
    proto_scan_reset(s);
    ck_assert_int_eq(proto_scan_msgid(s, &id), 0);
    proto_scan_free(s);

    struct {
        const char *hex;
        int known;
        uint32_t id;
    } cases[] = {
        {"94 00 07 a1 78 90", 1, 7},
        {"94 00 00 a1 78 90", 1, 0},
        {"94 00 ce ffffffff a1 78 90", 1, UINT32_MAX},
        {"94 00 cf 0000000000000009 a1 78 90", 1, 9}, /* wide encodings */
        {"94 d0 00 d1 0009 a1 78 90", 1, 9},
        {"94 d3 0000000000000000 d2 0000000a a1 78 90", 1, 10},
        {"94 00 cf 0000000100000000 a1 78 90", 0, 0}, /* 2^32 */
        {"94 00 ff a1 78 90", 0, 0},                  /* negative */
        {"94 00 d0 ff a1 78 90", 0, 0},
        {"94 00 cb 401c000000000000 a1 78 90", 0, 0}, /* float */
        {"94 00 a1 37 a1 78 90", 0, 0},               /* str */
        {"94 00 c0 a1 78 90", 0, 0},                  /* nil */
        {"94 01 07 c0 c0", 0, 0},                     /* response */
        {"93 02 a1 78 90", 0, 0},                     /* notification */
        {"94 ca 00000000 07 a1 78 90", 0, 0},         /* float type */
        {"94 91 00 07 a1 78 90", 0, 0},               /* array type */
        {"91 94 00 07 a1 78 90", 0, 0},               /* nested envelope */
        {"82 00 07 01 02", 0, 0},                     /* map */
        {"a4 00070000", 0, 0},                        /* str */
        {"07", 0, 0},
        {"92 00 07", 1, 7}, /* too short for a request, but the msgid is there */
        {"dc 0004 00 07 a1 78 90", 1, 7},
        {"dd 00000004 00 07 a1 78 90", 1, 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s = proto_scan_new(&lim);
        ck_assert_ptr_nonnull(s);
        n = unhex(cases[i].hex, b, sizeof(b));
        ck_assert_int_eq(proto_scan_feed(s, b, n, &used, &why), PROTO_SCAN_READY);
        id = 12345;
        ck_assert_msg(proto_scan_msgid(s, &id) == cases[i].known, "%s", cases[i].hex);
        if (cases[i].known)
            ck_assert_uint_eq(id, cases[i].id);
        proto_scan_free(s);
    }

    /* After a rejection: known if walked before the bad byte. */
    ck_assert_int_eq(scan_hex(&lim, "94 00 c1", NULL, &why), PROTO_SCAN_REJECT);
    s = proto_scan_new(&lim);
    ck_assert_ptr_nonnull(s);
    n = unhex("94 00 2a c1", b, sizeof(b));
    ck_assert_int_eq(proto_scan_feed(s, b, n, &used, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(proto_scan_msgid(s, &id), 1);
    ck_assert_uint_eq(id, 42);
    proto_scan_reset(s);
    n = unhex("94 00 c1", b, sizeof(b));
    ck_assert_int_eq(proto_scan_feed(s, b, n, &used, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(proto_scan_msgid(s, &id), 0);
    proto_scan_free(s);
}
END_TEST

/* The scanner's framing cases. */
void proto_scan_cases(Suite *s)
{
    TCase *t = tcase_create("scan");

    tcase_add_test(t, test_scan_every_format);
    tcase_add_test(t, test_scan_large_formats);
    tcase_add_test(t, test_scan_stream_byte_at_a_time);
    tcase_add_test(t, test_scan_stream_every_split);
    tcase_add_test(t, test_scan_stream_random_splits);
    tcase_add_test(t, test_scan_used_and_reset);
    tcase_add_test(t, test_scan_msgid);
    suite_add_tcase(s, t);
}
