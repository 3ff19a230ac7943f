/* Helpers shared by the check_proto suite's files; see proto_test.h. */
#include "proto_test.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "proto_codec.h"

/* Parses hex digits (spaces ignored) into out; returns the byte count. */
size_t unhex(const char *hex, uint8_t *out, size_t cap)
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

/* Starts an empty output. */
void out_init(struct out *o)
{
    msgpack_sbuffer_init(&o->sb);
    msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
}

/* Frees the output's buffer. */
void out_free(struct out *o)
{
    msgpack_sbuffer_destroy(&o->sb);
}

/* Limits with the given max_message, max_depth and max_objects. */
struct proto_limits limits(uint32_t max_message, uint32_t max_depth, uint32_t max_objects)
{
    struct proto_limits l = {max_message, max_depth, max_objects};
    return l;
}

/* Feeds all n bytes in one chunk to a fresh scanner; returns the status and
 * sets *total, *used and *why. */
enum proto_scan_status scan_once(const struct proto_limits *lim, const void *p, size_t n,
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
enum proto_scan_status scan_hex(const struct proto_limits *lim, const char *hex, size_t *total,
                                const char **why)
{
    uint8_t b[512];
    size_t n = unhex(hex, b, sizeof(b));
    return scan_once(lim, b, n, total, NULL, why);
}

/* Starts a pool. */
void pool_init(struct pool *p)
{
    ck_assert(msgpack_zone_init(&p->zone, 4096));
    p->used = 0;
}

/* Frees a pool's zone. */
void pool_free(struct pool *p)
{
    msgpack_zone_destroy(&p->zone);
}

/* Unpacks one message given in hex into an object that lives as long as p. */
msgpack_object obj(struct pool *p, const char *hex)
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
