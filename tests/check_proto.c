/* Tests of the protocol module: the error and method tables, the guarding
 * scanner (every format, every chunk split, every guard, hostile declared
 * sizes without large allocations) and the codec (envelopes, responses,
 * typed readers, exact sizes). */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "codec.h"
#include "fuzz/pipeline.h"
#include "limits.h"
#include "scan.h"

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

/* ---- helpers ---- */

/* Parses hex digits (spaces ignored) into out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (const char *p = hex; *p != '\0'; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
            continue;
        }
        ck_assert_uint_lt(n, cap);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    ck_assert_int_eq(hi, -1);
    return n;
}

/* A growable output with a packer writing into it. */
struct out {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

/* Starts an empty output. */
static void out_init(struct out *o)
{
    msgpack_sbuffer_init(&o->sb);
    msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
}

/* Frees the output's buffer. */
static void out_free(struct out *o)
{
    msgpack_sbuffer_destroy(&o->sb);
}

/* Limits with the given max_message, max_depth and max_objects. */
static struct proto_limits limits(uint32_t max_message, uint32_t max_depth, uint32_t max_objects)
{
    struct proto_limits l = {max_message, max_depth, max_objects};
    return l;
}

/* Feeds all n bytes in one chunk to a fresh scanner; returns the status and
 * sets *total, *used and *why. */
static enum proto_scan_status scan_once(const struct proto_limits *lim, const void *p, size_t n,
                                        size_t *total, size_t *used, const char **why)
{
    struct proto_scan *s = proto_scan_new(lim);
    size_t u = 0;
    const char *w = NULL;
    enum proto_scan_status st;

    ck_assert_ptr_nonnull(s);
    st = proto_scan_feed(s, p, n, &u, &w);
    if (total != NULL)
        *total = proto_scan_total(s);
    if (used != NULL)
        *used = u;
    if (why != NULL)
        *why = w;
    ck_assert_uint_le(u, n);
    if (st == PROTO_SCAN_REJECT)
        ck_assert_ptr_nonnull(w);
    proto_scan_free(s);
    return st;
}

/* Same, from hex. */
static enum proto_scan_status scan_hex(const struct proto_limits *lim, const char *hex,
                                       size_t *total, const char **why)
{
    uint8_t b[512];
    size_t n = unhex(hex, b, sizeof(b));
    return scan_once(lim, b, n, total, NULL, why);
}

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

/* A zone and byte storage that keep unpacked objects alive for one test. */
struct pool {
    msgpack_zone zone;
    uint8_t bytes[64][600];
    int used;
};

/* Starts a pool. */
static void pool_init(struct pool *p)
{
    ck_assert(msgpack_zone_init(&p->zone, 4096));
    p->used = 0;
}

/* Frees a pool's zone. */
static void pool_free(struct pool *p)
{
    msgpack_zone_destroy(&p->zone);
}

/* Unpacks one message given in hex into an object that lives as long as p. */
static msgpack_object obj(struct pool *p, const char *hex)
{
    msgpack_object o;
    const char *why = NULL;
    size_t n;

    ck_assert_int_lt(p->used, 64);
    n = unhex(hex, p->bytes[p->used], sizeof(p->bytes[0]));
    ck_assert_msg(proto_unpack(&p->zone, p->bytes[p->used], n, &o, &why) == 0, "%s: %s", hex, why);
    p->used++;
    return o;
}

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

/* A small deterministic generator (xorshift64*) for the random splits. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* ---- tables ---- */

/* Error table: names unique, snake_case, round trip, stable numbers. */
START_TEST(test_err_table)
{
    for (int i = 1; i < PROTO_ERR_COUNT; i++) {
        const char *name = proto_err_name((enum proto_err)i);
        ck_assert_ptr_nonnull(name);
        ck_assert_uint_gt(strlen(name), 0);
        for (const char *c = name; *c != '\0'; c++)
            ck_assert_msg((*c >= 'a' && *c <= 'z') || *c == '_', "%s not snake_case", name);
        ck_assert_int_eq(proto_err_from_name(name, strlen(name)), i);
        ck_assert_uint_gt(strlen(proto_err_describe((enum proto_err)i)), 0);
        for (int j = 1; j < i; j++)
            ck_assert_str_ne(name, proto_err_name((enum proto_err)j));
    }
    ck_assert_ptr_null(proto_err_name(PROTO_OK));
    ck_assert_ptr_null(proto_err_name(PROTO_ERR_COUNT));
    ck_assert_ptr_null(proto_err_name((enum proto_err) - 1));
    ck_assert_ptr_nonnull(proto_err_describe(PROTO_ERR_COUNT));
    ck_assert_ptr_nonnull(proto_err_describe((enum proto_err) - 1));
    ck_assert_int_eq(proto_err_from_name("ok", 2), -1);
    ck_assert_int_eq(proto_err_from_name("", 0), -1);
    ck_assert_int_eq(proto_err_from_name(NULL, 0), -1);
    ck_assert_int_eq(proto_err_from_name("bad_request", 10), -1);
    ck_assert_int_eq(proto_err_from_name("bad_requestX", 11), PROTO_BAD_REQUEST);
    ck_assert_int_eq(proto_err_from_name("bad_requestX", 12), -1);
    /* The numbers are part of libfarena's ABI. */
    ck_assert_str_eq(proto_err_name(PROTO_BAD_REQUEST), "bad_request");
    ck_assert_str_eq(proto_err_name(PROTO_TOO_LARGE), "too_large");
    ck_assert_str_eq(proto_err_name(PROTO_SHUTTING_DOWN), "shutting_down");
    ck_assert_int_eq(PROTO_SHUTTING_DOWN, 16);
}
END_TEST

/* Method table: exact names in enum order, unique, round trip. */
START_TEST(test_method_table)
{
    static const char *const expect[] = {
        "hello",   "writer_new", "push",   "push_many", "writer_len", "finish",      "into_arena",
        "build",   "arena_new",  "get",    "get_many",  "arena_info", "arena_files", "open",
        "release", "name",       "lookup", "unname",    "stat",     "arena_fds"};
    ck_assert_uint_eq(sizeof(expect) / sizeof(expect[0]), PROTO_M_COUNT);
    for (int i = 0; i < PROTO_M_COUNT; i++) {
        const char *name = proto_method_name((enum proto_method)i);
        ck_assert_str_eq(name, expect[i]);
        ck_assert_uint_le(strlen(name), PROTO_MAX_METHOD_LEN);
        ck_assert_int_eq(proto_method_from_name(name, strlen(name)), i);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(name, proto_method_name((enum proto_method)j));
    }
    ck_assert_ptr_null(proto_method_name(PROTO_M_COUNT));
    ck_assert_ptr_null(proto_method_name((enum proto_method) - 1));
    ck_assert_int_eq(proto_method_from_name("", 0), -1);
    ck_assert_int_eq(proto_method_from_name(NULL, 0), -1);
    ck_assert_int_eq(proto_method_from_name("hellox", 6), -1);
    ck_assert_int_eq(proto_method_from_name("hell", 4), -1);
    ck_assert_int_eq(proto_method_from_name("HELLO", 5), -1);
    ck_assert_int_eq(proto_method_from_name("getx", 3), PROTO_M_GET);
    /* Exact: any one byte changed, a byte cut or added, never matches. */
    for (int i = 0; i < PROTO_M_COUNT; i++) {
        const char *name = proto_method_name((enum proto_method)i);
        size_t n = strlen(name);
        char buf[PROTO_MAX_METHOD_LEN + 2];
        memcpy(buf, name, n);
        buf[n] = 'x';
        ck_assert_int_eq(proto_method_from_name(buf, n + 1), -1);
        ck_assert_int_eq(proto_method_from_name(buf, n - 1), -1);
        for (size_t k = 0; k < n; k++) {
            buf[k] ^= 0x20;
            ck_assert_int_eq(proto_method_from_name(buf, n), -1);
            buf[k] = (char)(buf[k] ^ 0x01 ^ 0x20);
            ck_assert_int_eq(proto_method_from_name(buf, n), -1);
            buf[k] = name[k];
        }
        ck_assert_int_eq(proto_method_from_name(buf, n), i);
    }
}
END_TEST

/* ---- scanner: formats and boundaries ---- */

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
        uint64_t r = rng_next(&c->rng);
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

/* ---- codec: unpack and envelopes ---- */

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
    uint64_t r = rng_next(rng);
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
            buf[(*n)++] = (uint8_t)(rng_next(rng) >> 24);
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
            buf[n + (size_t)t] = (uint8_t)rng_next(&rng);
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
                                      "ca 3f800000",
                                      "cb 3ff0000000000000",
                                      "cb 0000000000000000",
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
    o = obj(&p, "cb 3ff0000000000000");
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
    static const char *const bad_handles[] = {"00",          "cf 0000000000000000",
                                              "ff",          "d3 ffffffffffffffff",
                                              "ca 3f800000", "cb 3ff0000000000000",
                                              "c0",          "a1 31",
                                              "c3",          "91 01"};
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
        "ca 00000000", "cb 0000000000000000", "c0",          "a1 30", "c2"};
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
        "93 ca 00000000 00 00",
        "93 00 cb 0000000000000000 00",
        "93 00 00 ca 3f800000",
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

/* ---- the fuzzing corpus ---- */

/* Every seed and every committed fuzz finding, through the fuzzer's own
 * harness (which aborts on a broken invariant). */
START_TEST(test_fuzz_corpus_replay)
{
    DIR *d = opendir(FARENA_FUZZ_CORPUS);
    struct dirent *e;
    int files = 0;
    size_t msgs = 0;

    ck_assert_msg(d != NULL, "cannot open %s", FARENA_FUZZ_CORPUS);
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        FILE *f;
        uint8_t *buf;
        long len;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", FARENA_FUZZ_CORPUS, e->d_name);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
        len = ftell(f);
        ck_assert_int_ge(len, 0);
        ck_assert_int_le(len, 1 << 20);
        rewind(f);
        buf = malloc(len > 0 ? (size_t)len : 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        msgs += fuzz_pipeline_run(buf, (size_t)len);
        free(buf);
        files++;
    }
    closedir(d);
    ck_assert_int_ge(files, 50);
    ck_assert_uint_ge(msgs, 50);
}
END_TEST

/* ---- suite ---- */

/* The suite: one tcase per area, each bounded to 60 s. */
static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *t;

    t = tcase_create("tables");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_err_table);
    tcase_add_test(t, test_method_table);
    suite_add_tcase(s, t);

    t = tcase_create("scan");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_scan_every_format);
    tcase_add_test(t, test_scan_large_formats);
    tcase_add_test(t, test_scan_stream_byte_at_a_time);
    tcase_add_test(t, test_scan_stream_every_split);
    tcase_add_test(t, test_scan_stream_random_splits);
    tcase_add_test(t, test_scan_used_and_reset);
    tcase_add_test(t, test_scan_msgid);
    suite_add_tcase(s, t);

    t = tcase_create("guards");
    tcase_set_timeout(t, 60);
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

    t = tcase_create("codec");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_unpack);
    tcase_add_test(t, test_unpack_matches_msgpack);
    tcase_add_test(t, test_unpack_prefix_agrees_with_scanner);
    tcase_add_loop_test(t, test_request_envelopes, 0,
                        (int)(sizeof(env_cases) / sizeof(env_cases[0])));
    tcase_add_test(t, test_request_fields);
    tcase_add_test(t, test_pack_request_and_notify_heads);
    tcase_add_test(t, test_response_result_round_trip);
    tcase_add_test(t, test_response_error_round_trip);
    tcase_add_test(t, test_response_decode_edges);
    tcase_add_test(t, test_sizes_match_msgpack);
    tcase_add_test(t, test_protocol_md_example);
    suite_add_tcase(s, t);

    t = tcase_create("readers");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_read_uint);
    tcase_add_test(t, test_read_handle_and_index);
    tcase_add_test(t, test_read_loc);
    tcase_add_test(t, test_read_payload_str_array);
    suite_add_tcase(s, t);

    t = tcase_create("fuzz_corpus");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_fuzz_corpus_replay);
    suite_add_tcase(s, t);
    return s;
}

/* Runs the suite; the exit status is the verdict. */
int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
