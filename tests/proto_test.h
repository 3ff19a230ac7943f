/* Helpers shared by the files of the check_proto suite (check_proto*.c):
 * hex input, a growable packer output, limits, one-shot scanning, and a pool
 * that keeps unpacked objects alive for one test. They assert with Check, so
 * they run inside a test only. */
#ifndef FARENA_TESTS_PROTO_TEST_H
#define FARENA_TESTS_PROTO_TEST_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto_limits.h"
#include "proto_scan.h"

/* Parses hex digits (spaces ignored) into out (cap bytes, caller's); returns
 * the byte count. Fails the test on an odd digit count or overflow. */
size_t unhex(const char *hex, uint8_t *out, size_t cap);

/* A growable output with a packer writing into it: out_init() starts it,
 * out_free() frees its buffer. The caller owns the struct. */
struct out {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

/* Starts an empty output. */
void out_init(struct out *o);
/* Frees the output's buffer. */
void out_free(struct out *o);

/* Limits with the given max_message, max_depth and max_objects. */
struct proto_limits limits(uint32_t max_message, uint32_t max_depth, uint32_t max_objects);

/* Feeds all n bytes in one chunk to a fresh scanner; returns the status and
 * sets *total, *used and *why (each may be NULL; *why is static). */
enum proto_scan_status scan_once(const struct proto_limits *lim, const void *p, size_t n,
                                 size_t *total, size_t *used, const char **why);
/* Same, from hex (at most 512 bytes). */
enum proto_scan_status scan_hex(const struct proto_limits *lim, const char *hex, size_t *total,
                                const char **why);

/* A zone and byte storage that keep unpacked objects alive for one test:
 * pool_init() starts it, pool_free() frees the zone. The caller owns the
 * struct. */
struct pool {
    msgpack_zone zone;
    uint8_t bytes[64][600];
    int used;
};

/* Starts a pool. */
void pool_init(struct pool *p);
/* Frees a pool's zone. */
void pool_free(struct pool *p);
/* Unpacks one message given in hex (at most 600 bytes, 64 per pool) into an
 * object that lives as long as p. */
msgpack_object obj(struct pool *p, const char *hex);

/* Each area file adds its test cases to the suite (check_proto.c). */
void proto_scan_cases(Suite *s);   /* check_proto_scan.c */
void proto_guard_cases(Suite *s);  /* check_proto_guards.c */
void proto_unpack_cases(Suite *s); /* check_proto_unpack.c */
void proto_codec_cases(Suite *s);  /* check_proto_codec.c */
void proto_reader_cases(Suite *s); /* check_proto_readers.c */

#endif
