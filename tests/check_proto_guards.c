/* check_proto, the scanner's guards: 0xc1, max_depth, max_objects and
 * max_message at their edges, degenerate limits, and hostile declared sizes
 * refused without any allocation in proportion to them (watched by the
 * allocation watch below). */
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

/* ---- allocation watch ----
 * The hostile-size tests must fail if anything allocates in proportion to a
 * declared size. The watch records the largest single allocation request of
 * the process: under AddressSanitizer through its malloc hook, otherwise by
 * interposing the malloc family on glibc's own entry points (this executable
 * defines them, so libmsgpackc's calls land here too). */
static size_t alloc_biggest;

/* Notes one allocation request of n bytes. */
static void alloc_note(size_t n)
{
    if (n > alloc_biggest)
        alloc_biggest = n;
}

#if defined(__SANITIZE_ADDRESS__)
#define CHECK_PROTO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_PROTO_ASAN 1
#endif
#endif

#ifdef CHECK_PROTO_ASAN
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

/* ASan's hook, called after every successful allocation. */
static void asan_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    alloc_note(n);
}

/* ASan's free hook: nothing to do. */
static void asan_free_hook(const volatile void *p)
{
    (void)p;
}

/* Starts watching from zero. */
static void alloc_watch_reset(void)
{
    static int installed;
    if (!installed) {
        __sanitizer_install_malloc_and_free_hooks(asan_malloc_hook, asan_free_hook);
        installed = 1;
    }
    alloc_biggest = 0;
}
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

/* Interposed malloc: notes the request, then lets glibc serve it. */
void *malloc(size_t n)
{
    alloc_note(n);
    return __libc_malloc(n);
}

/* Interposed calloc. */
void *calloc(size_t n, size_t size)
{
    alloc_note(size != 0 && n > SIZE_MAX / size ? SIZE_MAX : n * size);
    return __libc_calloc(n, size);
}

/* Interposed realloc. */
void *realloc(void *p, size_t n)
{
    alloc_note(n);
    return __libc_realloc(p, n);
}

/* Interposed free, paired with the functions above. */
void free(void *p)
{
    __libc_free(p);
}

/* Starts watching from zero. */
static void alloc_watch_reset(void)
{
    alloc_biggest = 0;
}
#endif

/* Largest allocation a hostile input may cause: the scanner itself allocates
 * nothing while feeding, msgpack-c a few KiB for a small message. */
#define ALLOC_SMALL (1u << 20)

/* ---- scanner: guards ---- */

/* 0xc1 where an object starts is refused, and the refusal is sticky. */
START_TEST(test_scan_c1)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    const char *why = NULL;
    struct proto_scan *s;
    size_t used = 0;

    ck_assert_int_eq(scan_hex(&lim, "c1", NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_ptr_nonnull(strstr(why, "0xc1"));
    s = proto_scan_new(&lim);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(proto_scan_reject_code(s), PROTO_OK);
    ck_assert_int_eq(proto_scan_feed(s, "\xc1", 1, &used, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(proto_scan_reject_code(s), PROTO_BAD_REQUEST);
    proto_scan_reset(s);
    ck_assert_int_eq(proto_scan_reject_code(s), PROTO_OK);
    proto_scan_free(s);
    ck_assert_int_eq(scan_hex(&lim, "93 01 02 c1", NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(scan_hex(&lim, "81 c1 00", NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(scan_hex(&lim, "94 00 07 c1", NULL, &why), PROTO_SCAN_REJECT);

    /* The rejection is sticky: later bytes change nothing. */
    s = proto_scan_new(&lim);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(proto_scan_feed(s, "\x92\x01\xc1\x02", 4, &used, &why), PROTO_SCAN_REJECT);
    ck_assert_uint_le(used, 4);
    ck_assert_int_eq(proto_scan_feed(s, "\xc0", 1, &used, &why), PROTO_SCAN_REJECT);
    ck_assert_ptr_nonnull(strstr(why, "0xc1"));
    proto_scan_reset(s);
    ck_assert_int_eq(proto_scan_feed(s, "\xc0", 1, &used, &why), PROTO_SCAN_READY);
    proto_scan_free(s);
}
END_TEST

/* Nesting at max_depth passes, one deeper fails; 10000 levels fail fast. */
START_TEST(test_scan_depth)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    static uint8_t b[20010];
    const char *why;
    size_t total;

    /* 16 nested arrays (the envelope counts as level 1): allowed. */
    memset(b, 0x91, 16);
    b[16] = 0xc0;
    ck_assert_int_eq(scan_once(&lim, b, 17, &total, NULL, &why), PROTO_SCAN_READY);
    ck_assert_uint_eq(total, 17);
    /* An empty array is a level too. */
    memset(b, 0x91, 15);
    b[15] = 0x90;
    ck_assert_int_eq(scan_once(&lim, b, 16, NULL, NULL, &why), PROTO_SCAN_READY);
    /* 17: refused. */
    memset(b, 0x91, 17);
    b[17] = 0xc0;
    ck_assert_int_eq(scan_once(&lim, b, 18, NULL, NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_ptr_nonnull(strstr(why, "max_depth"));
    memset(b, 0x91, 16);
    b[16] = 0x90;
    ck_assert_int_eq(scan_once(&lim, b, 17, NULL, NULL, &why), PROTO_SCAN_REJECT);
    /* Maps nest the same way. */
    for (int i = 0; i < 17; i++) {
        b[2 * i] = 0x81;
        b[2 * i + 1] = 0x01;
    }
    b[34] = 0xc0;
    ck_assert_int_eq(scan_once(&lim, b, 35, NULL, NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(scan_once(&lim, b + 2, 33, NULL, NULL, &why), PROTO_SCAN_READY);
    /* 10000 nested arrays, whole and byte by byte. */
    memset(b, 0x91, 10000);
    b[10000] = 0xc0;
    ck_assert_int_eq(scan_once(&lim, b, 10001, NULL, NULL, &why), PROTO_SCAN_REJECT);
    for (int i = 0; i < 2000; i++)
        memcpy(b + 5 * i, "\xdd\x00\x00\x00\x01", 5);
    ck_assert_int_eq(scan_once(&lim, b, 10000, NULL, NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_ptr_nonnull(strstr(why, "max_depth"));

    /* PROTO_MAX_DEPTH_MAX is as deep as msgpack-c itself goes. */
    struct proto_limits deep = limits(PROTO_MAX_MESSAGE_DEFAULT, 64, PROTO_MAX_OBJECTS_DEFAULT);
    msgpack_zone z;
    msgpack_object o;
    ck_assert(msgpack_zone_init(&z, 1024));
    memset(b, 0x91, PROTO_MAX_DEPTH_MAX);
    b[PROTO_MAX_DEPTH_MAX] = 0xc0;
    ck_assert_int_eq(scan_once(&deep, b, PROTO_MAX_DEPTH_MAX + 1, NULL, NULL, &why),
                     PROTO_SCAN_READY);
    ck_assert_int_eq(proto_unpack(&z, b, PROTO_MAX_DEPTH_MAX + 1, &o, &why), 0);
    msgpack_zone_clear(&z);
    memset(b, 0x91, PROTO_MAX_DEPTH_MAX + 1);
    b[PROTO_MAX_DEPTH_MAX + 1] = 0xc0;
    ck_assert_int_eq(scan_once(&deep, b, PROTO_MAX_DEPTH_MAX + 2, NULL, NULL, &why),
                     PROTO_SCAN_READY);
    ck_assert_int_eq(proto_unpack(&z, b, PROTO_MAX_DEPTH_MAX + 2, &o, &why), -1);
    msgpack_zone_destroy(&z);
}
END_TEST

/* Nesting fed a byte at a time fails exactly at level 17. */
START_TEST(test_scan_depth_byte_at_a_time)
{
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    struct proto_scan *s = proto_scan_new(&lim);
    const char *why = NULL;
    size_t used;
    int k;

    ck_assert_ptr_nonnull(s);
    for (k = 0; k < 10000; k++) {
        enum proto_scan_status st = proto_scan_feed(s, "\x91", 1, &used, &why);
        if (st == PROTO_SCAN_REJECT)
            break;
        ck_assert_int_eq(st, PROTO_SCAN_MORE);
    }
    ck_assert_int_eq(k, 16);
    ck_assert_ptr_nonnull(strstr(why, "max_depth"));
    ck_assert_int_eq(proto_scan_reject_code(s), PROTO_BAD_REQUEST);
    proto_scan_free(s);
}
END_TEST

/* max_objects at its edge: arrays, maps (keys count) and nesting. */
START_TEST(test_scan_max_objects)
{
    struct proto_limits lim = limits(PROTO_MAX_MESSAGE_DEFAULT, 16, 100);
    uint8_t b[400];
    const char *why;

    /* The top-level object counts, so an array of 99 is 100 objects. */
    b[0] = 0xdc;
    b[1] = 0;
    b[2] = 99;
    memset(b + 3, 0xc0, 100);
    ck_assert_int_eq(scan_once(&lim, b, 3 + 99, NULL, NULL, &why), PROTO_SCAN_READY);
    b[2] = 100;
    ck_assert_int_eq(scan_once(&lim, b, 3 + 100, NULL, NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_ptr_nonnull(strstr(why, "max_objects"));
    /* The header alone is refused: no element needs to arrive. */
    ck_assert_int_eq(scan_once(&lim, b, 3, NULL, NULL, &why), PROTO_SCAN_REJECT);
    /* Map keys count: 49 pairs are 99 objects, 50 pairs 101. */
    b[0] = 0xde;
    b[2] = 49;
    for (int i = 0; i < 50; i++) {
        b[3 + 2 * i] = 0x01;
        b[4 + 2 * i] = 0xc0;
    }
    ck_assert_int_eq(scan_once(&lim, b, 3 + 98, NULL, NULL, &why), PROTO_SCAN_READY);
    b[2] = 50;
    ck_assert_int_eq(scan_once(&lim, b, 3 + 100, NULL, NULL, &why), PROTO_SCAN_REJECT);
    /* Nested containers add up: [[48 nils], [49 nils]] is 1 + 2 + 97 = 100. */
    b[0] = 0x92;
    b[1] = 0xdc;
    b[2] = 0;
    b[3] = 48;
    memset(b + 4, 0xc0, 48);
    b[52] = 0xdc;
    b[53] = 0;
    b[54] = 49;
    memset(b + 55, 0xc0, 49);
    ck_assert_int_eq(scan_once(&lim, b, 104, NULL, NULL, &why), PROTO_SCAN_READY);
    /* [[49 nils], [49 nils]] is 101. */
    {
        uint8_t c[200];
        size_t n = 0;
        c[n++] = 0x92;
        c[n++] = 0xdc;
        c[n++] = 0;
        c[n++] = 49;
        memset(c + n, 0xc0, 49);
        n += 49;
        c[n++] = 0xdc;
        c[n++] = 0;
        c[n++] = 49;
        memset(c + n, 0xc0, 49);
        n += 49;
        ck_assert_int_eq(scan_once(&lim, c, n, NULL, NULL, &why), PROTO_SCAN_REJECT);
        ck_assert_ptr_nonnull(strstr(why, "max_objects"));
    }
}
END_TEST

/* max_message at its edge: bodies, owed elements, scalars, counts. */
START_TEST(test_scan_max_message)
{
    struct proto_limits lim = limits(PROTO_MAX_MESSAGE_MIN, 16, PROTO_MAX_OBJECTS_DEFAULT);
    static uint8_t b[PROTO_MAX_MESSAGE_MIN + 64];
    const uint32_t max = PROTO_MAX_MESSAGE_MIN;
    const char *why;
    size_t total;

    /* A bin ending exactly at max_message is fine; one byte more is not,
     * and is refused from its header alone. */
    memset(b, 0, sizeof(b));
    b[0] = 0xc5;
    b[1] = (uint8_t)((max - 3) >> 8);
    b[2] = (uint8_t)(max - 3);
    ck_assert_int_eq(scan_once(&lim, b, max, &total, NULL, &why), PROTO_SCAN_READY);
    ck_assert_uint_eq(total, max);
    b[1] = (uint8_t)((max - 2) >> 8);
    b[2] = (uint8_t)(max - 2);
    ck_assert_int_eq(scan_once(&lim, b, 3, NULL, NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_ptr_nonnull(strstr(why, "max_message"));

    /* Elements still owed by open containers count: [bin, nil]. */
    b[0] = 0x92;
    b[1] = 0xc5;
    b[2] = (uint8_t)((max - 5) >> 8);
    b[3] = (uint8_t)(max - 5);
    b[max - 1] = 0xc0;
    ck_assert_int_eq(scan_once(&lim, b, max, &total, NULL, &why), PROTO_SCAN_READY);
    b[2] = (uint8_t)((max - 4) >> 8);
    b[3] = (uint8_t)(max - 4);
    ck_assert_int_eq(scan_once(&lim, b, 4, NULL, NULL, &why), PROTO_SCAN_REJECT);

    /* An array of float64s: the count fits, the bytes do not. 7281 floats
     * make 3 + 7281 * 9 = 65532 bytes; 7282 make 65541. */
    b[0] = 0xdc;
    for (uint32_t count = 7281; count <= 7282; count++) {
        size_t n = 3;
        b[1] = (uint8_t)(count >> 8);
        b[2] = (uint8_t)count;
        for (uint32_t i = 0; i < count && n + 9 <= sizeof(b); i++) {
            b[n] = 0xcb;
            memset(b + n + 1, 0x11, 8);
            n += 9;
        }
        ck_assert_int_eq(scan_once(&lim, b, n, NULL, NULL, &why),
                         count == 7281 ? PROTO_SCAN_READY : PROTO_SCAN_REJECT);
    }
    ck_assert_ptr_nonnull(strstr(why, "max_message"));

    /* Array headers whose count alone cannot fit. */
    ck_assert_int_eq(scan_hex(&lim, "dc ffff", NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(scan_hex(&lim, "de ffff", NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(scan_hex(&lim, "da ffff", NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(scan_hex(&lim, "c8 ffff 01", NULL, &why), PROTO_SCAN_REJECT);
    ck_assert_int_eq(scan_hex(&lim, "dc fff0", NULL, &why), PROTO_SCAN_MORE);
}
END_TEST

/* A hostile input for the no-allocation test. */
struct hostile {
    const char *hex;
    int small_max; /* run with max_message = PROTO_MAX_MESSAGE_MIN */
    int msgid_known;
};

static const struct hostile hostile_inputs[] = {
    {"dd ffffffff", 0, 0},
    {"dc ffff", 1, 0},
    {"df ffffffff", 0, 0},
    {"de ffff", 1, 0},
    {"c6 ffffffff", 0, 0},
    {"db ffffffff", 0, 0},
    {"c9 ffffffff 01", 0, 0},
    {"c5 ffff", 1, 0},
    {"da ffff", 1, 0},
    {"c8 ffff 01", 1, 0},
    {"dd 04000000", 0, 0}, /* 64 Mi elements: one more byte than fits */
    {"dd 00100001", 0, 0}, /* fits in bytes, but over max_objects */
    {"df 00080000", 0, 0}, /* 512 Ki pairs: over max_objects */
    {"94 00 07 a4 70757368 92 01 c6 ffffffff", 0, 1},
    {"94 00 ce 00010000 a3 676574 92 01 dd ffffffff", 0, 1},
    {"94 00 07 a8 6765745f6d616e79 92 01 dd 7fffffff", 0, 1},
    {"93 02 a4 70757368 92 01 db ffffffff", 0, 0},
    {"94 00 07 a4 70757368 dd ffffffff", 0, 1},
    {"91 91 91 91 df ffffffff", 0, 0},
};

/* Each hostile header is refused without any large allocation. */
START_TEST(test_scan_hostile_sizes_no_allocation)
{
    const struct hostile *h = &hostile_inputs[_i];
    struct proto_limits lim =
        limits(h->small_max ? PROTO_MAX_MESSAGE_MIN : PROTO_MAX_MESSAGE_DEFAULT,
               PROTO_MAX_DEPTH_DEFAULT, PROTO_MAX_OBJECTS_DEFAULT);
    uint8_t b[64];
    size_t n = unhex(h->hex, b, sizeof(b));
    msgpack_zone z;
    uint32_t id = 0;

    ck_assert(msgpack_zone_init(&z, 2048));
    /* Whole, and one byte at a time: the daemon's whole path (scan, and
     * unpack+decode only on READY) must refuse it without allocating. */
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct proto_scan *s = proto_scan_new(&lim);
        enum proto_scan_status st = PROTO_SCAN_MORE;
        const char *why = NULL;
        size_t pos = 0, used = 0;

        ck_assert_ptr_nonnull(s);
        alloc_watch_reset();
        while (pos < n && st == PROTO_SCAN_MORE) {
            size_t k = bytewise ? 1 : n;
            st = proto_scan_feed(s, b + pos, k, &used, &why);
            pos += used;
        }
        if (st == PROTO_SCAN_READY) {
            msgpack_object o;
            struct proto_request r;
            if (proto_unpack(&z, b, proto_scan_total(s), &o, &why) == 0)
                proto_request_decode(&o, &r, &why);
        }
        ck_assert_msg(alloc_biggest < ALLOC_SMALL, "%s: allocated %zu bytes", h->hex,
                      alloc_biggest);
        ck_assert_msg(st == PROTO_SCAN_REJECT, "%s not rejected (%d)", h->hex, (int)st);
        ck_assert_int_eq(proto_scan_reject_code(s), PROTO_TOO_LARGE);
        ck_assert_int_eq(proto_scan_msgid(s, &id), h->msgid_known);
        if (h->msgid_known)
            ck_assert_uint_gt(id, 0);
        proto_scan_free(s);
    }
    msgpack_zone_destroy(&z);
}
END_TEST

/* The watch itself works: msgpack-c handed a hostile header directly does
 * allocate in proportion to it (which is why the scanner exists). */
START_TEST(test_alloc_watch_catches_msgpack)
{
    static const uint8_t b[] = {0xdd, 0x00, 0x10, 0x00, 0x00};
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;

    ck_assert(msgpack_zone_init(&z, 2048));
    alloc_watch_reset();
    (void)msgpack_unpack((const char *)b, sizeof(b), &off, &z, &o);
    ck_assert_uint_ge(alloc_biggest, (size_t)(1u << 20) * sizeof(msgpack_object));
    msgpack_zone_destroy(&z);
}
END_TEST

/* Degenerate limits still behave. */
START_TEST(test_scan_new_limits)
{
    struct proto_limits lim = limits(PROTO_MAX_MESSAGE_DEFAULT, 0, PROTO_MAX_OBJECTS_DEFAULT);
    const char *why;

    /* max_depth 0 admits scalars only. */
    ck_assert_int_eq(scan_hex(&lim, "c0", NULL, &why), PROTO_SCAN_READY);
    ck_assert_int_eq(scan_hex(&lim, "90", NULL, &why), PROTO_SCAN_REJECT);
    /* max_objects 1 admits only empty containers. */
    lim = limits(PROTO_MAX_MESSAGE_DEFAULT, 16, 1);
    ck_assert_int_eq(scan_hex(&lim, "90", NULL, &why), PROTO_SCAN_READY);
    ck_assert_int_eq(scan_hex(&lim, "91 c0", NULL, &why), PROTO_SCAN_REJECT);
}
END_TEST

/* The guard cases. */
void proto_guard_cases(Suite *s)
{
    TCase *t = tcase_create("guards");

    tcase_add_test(t, test_scan_c1);
    tcase_add_test(t, test_scan_depth);
    tcase_add_test(t, test_scan_depth_byte_at_a_time);
    tcase_add_test(t, test_scan_max_objects);
    tcase_add_test(t, test_scan_max_message);
    tcase_add_test(t, test_scan_new_limits);
    tcase_add_loop_test(t, test_scan_hostile_sizes_no_allocation, 0,
                        (int)(sizeof(hostile_inputs) / sizeof(hostile_inputs[0])));
    tcase_add_test(t, test_alloc_watch_catches_msgpack);
    suite_add_tcase(s, t);
}
