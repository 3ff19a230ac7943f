/* The guarding pre-scanner: finds message boundaries in a msgpack byte stream
 * and rejects hostile declared sizes before msgpack-c ever sees the bytes. */
#ifndef FARENA_PROTO_SCAN_H
#define FARENA_PROTO_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "proto_errors.h"
#include "proto_limits.h"

struct proto_scan; /* opaque; one per connection direction */

enum proto_scan_status {
    PROTO_SCAN_MORE = 0,  /* every byte fed belongs to an unfinished message */
    PROTO_SCAN_READY = 1, /* a message ended within the bytes just fed */
    PROTO_SCAN_REJECT = 2 /* the stream is hostile or malformed; close it */
};

/* Allocates a scanner enforcing *limits (copied). Returns NULL when out of
 * memory. The caller frees it with proto_scan_free(). */
struct proto_scan *proto_scan_new(const struct proto_limits *limits);

/* Frees s; NULL is a no-op. */
void proto_scan_free(struct proto_scan *s);

/* Feeds the n bytes at p, which follow every byte fed since the last reset.
 * The scanner walks msgpack headers only, keeps O(max_depth) state, and never
 * allocates; it needs no byte it was fed before, so p may be any chunk of the
 * stream (one byte at a time works).
 *
 * MORE: all n bytes were consumed; *used = n.
 * READY: the current message ends within p; *used is how many of the n bytes
 *   belong to it (the rest start the next message). The whole message is
 *   proto_scan_total() bytes. Call proto_scan_reset() before feeding the
 *   next message's bytes.
 * REJECT: *why (static string) says why: a declared size that cannot fit in
 *   max_message, nesting deeper than max_depth, more than max_objects objects,
 *   a message longer than max_message, or a byte that is not msgpack (0xc1).
 *   The scanner stays rejected until reset; a stream cannot resynchronise.
 * used and why may be NULL. */
enum proto_scan_status proto_scan_feed(struct proto_scan *s, const void *p, size_t n, size_t *used,
                                       const char **why);

/* Bytes of the current message consumed so far (after READY: its length). */
size_t proto_scan_total(const struct proto_scan *s);

/* After a REJECT (or at any time), tells whether the current message is a
 * request whose msgid the scanner has already walked past: returns 1 and
 * *msgid, so the daemon can answer the rejected request (too_large,
 * bad_request) before it closes the connection; 0 otherwise. */
int proto_scan_msgid(const struct proto_scan *s, uint32_t *msgid);

/* After a REJECT, the protocol error that answers it: PROTO_TOO_LARGE when a
 * size or count limit was hit (max_message, max_objects; the reason text
 * then names that limit), PROTO_BAD_REQUEST for anything else (0xc1,
 * nesting, feeding past READY). PROTO_OK when s is not rejected. */
enum proto_err proto_scan_reject_code(const struct proto_scan *s);

/* Forgets the current message; the next byte fed starts a new one. */
void proto_scan_reset(struct proto_scan *s);

#endif
