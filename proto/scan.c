/* The guarding pre-scanner: an incremental walk over msgpack headers that finds
 * where each message ends and refuses declared sizes that cannot fit the
 * limits, so msgpack-c (which allocates whatever a header declares) only ever
 * sees messages already known to be bounded. */
#include "proto_scan.h"

#include <stdlib.h>
#include <string.h>

#include "proto_be.h"

/* Longest msgpack header: a marker and an 8-byte value (uint64, float64). */
#define SCAN_HDR_MAX 9

enum scan_state { SCAN_BUSY = 0, SCAN_DONE, SCAN_FAILED };

/* Where the object being read sits, for the msgid tracking. */
enum scan_elem { ELEM_TOP = -1, ELEM_TYPE = 0, ELEM_MSGID = 1, ELEM_OTHER = 2 };

/* What is known of the message's envelope so far. */
enum scan_env {
    ENV_NONE = 0, /* not (or not yet known to be) a request */
    ENV_ARRAY,    /* the top-level object is an array */
    ENV_TYPE0,    /* ... whose element 0 is the integer 0 */
    ENV_MSGID     /* ... and whose element 1 is a uint32: msgid known */
};

struct proto_scan {
    struct proto_limits lim;
    /* Bytes of the current message consumed so far. */
    uint64_t total;
    /* Elements declared by open containers and not started yet; each needs
     * at least one more byte, so total + owed bounds the message from below. */
    uint64_t owed;
    /* Objects declared so far, the top-level one included. */
    uint64_t objects;
    /* Bytes of a bin/str/ext body still to skip. */
    uint64_t skip;
    /* Elements of the top-level array started so far. */
    uint64_t top_seen;
    const char *why;     /* reason of the rejection, while SCAN_FAILED */
    enum proto_err code; /* and the error that answers it */
    uint32_t depth;      /* containers open */
    uint32_t msgid;      /* valid when env == ENV_MSGID */
    uint8_t state;
    uint8_t env;
    int8_t elem;
    uint8_t hlen;  /* header bytes kept in hdr while a header is split */
    uint8_t hneed; /* its full length */
    uint8_t hdr[SCAN_HDR_MAX];
    /* Elements still to start in each open container, outermost first. */
    uint32_t left[];
};

/* Rejection reasons; the size and count ones name their limit. */
static const char why_c1[] = "invalid msgpack byte 0xc1";
static const char why_message[] = "message longer than max_message";
static const char why_body[] = "declared str/bin/ext size does not fit in max_message";
static const char why_count[] = "declared array/map size does not fit in max_message";
static const char why_objects[] = "more objects than max_objects";
static const char why_depth[] = "nesting deeper than max_depth";
static const char why_unreset[] = "bytes fed after a complete message without a reset";

/* Header length by first byte (marker plus length/value bytes, not the body);
 * 0 marks 0xc1, the one byte msgpack never uses. Fixext (d4..d8) counts its
 * type byte as header and its data as body. */
static const uint8_t hdr_len[256] = {
    /* 00 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 10 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 20 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 40 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 80 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 90 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* A0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* B0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* C0 */ 1, 0, 1, 1, 2, 3, 5, 3, 4, 6, 5, 9, 2, 3, 5, 9,
    /* D0 */ 2, 3, 5, 9, 2, 2, 2, 2, 2, 2, 3, 5, 3, 5, 3, 5,
    /* E0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* F0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* If the complete header h is an integer whose value is not negative (in any
 * encoding, as msgpack-c reads it), stores the value and returns 1. */
static int header_uint(const uint8_t *h, uint64_t *v)
{
    uint8_t c = h[0];
    if (c <= 0x7f) {
        *v = c;
        return 1;
    }
    switch (c) {
    case 0xcc:
    case 0xd0:
        *v = h[1];
        return c == 0xcc || h[1] < 0x80;
    case 0xcd:
    case 0xd1:
        *v = proto_be16(h + 1);
        return c == 0xcd || h[1] < 0x80;
    case 0xce:
    case 0xd2:
        *v = proto_be32(h + 1);
        return c == 0xce || h[1] < 0x80;
    case 0xcf:
    case 0xd3:
        *v = proto_be64(h + 1);
        return c == 0xcf || h[1] < 0x80;
    default:
        return 0;
    }
}

/* Follows the envelope of the message: called for headers of the top-level
 * object and of elements 0 and 1 of a top-level array (rare, off the hot
 * path). */
static void track_envelope(struct proto_scan *s, int elem, const uint8_t *h)
{
    uint64_t v;
    uint8_t c = h[0];

    if (elem == ELEM_TOP) {
        int array = (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd;
        s->env = array ? ENV_ARRAY : ENV_NONE;
    } else if (elem == ELEM_TYPE && s->env == ENV_ARRAY) {
        s->env = (header_uint(h, &v) && v == 0) ? ENV_TYPE0 : ENV_NONE;
    } else if (elem == ELEM_MSGID && s->env == ENV_TYPE0) {
        if (header_uint(h, &v) && v <= UINT32_MAX) {
            s->env = ENV_MSGID;
            s->msgid = (uint32_t)v;
        } else {
            s->env = ENV_NONE;
        }
    }
}

/* Allocates a scanner with room for max_depth open containers. */
struct proto_scan *proto_scan_new(const struct proto_limits *limits)
{
    size_t depth = limits->max_depth ? limits->max_depth : 1;
    if (depth > (SIZE_MAX - sizeof(struct proto_scan)) / sizeof(uint32_t))
        return NULL;
    struct proto_scan *s = malloc(sizeof(*s) + depth * sizeof(uint32_t));
    if (s == NULL)
        return NULL;
    s->lim = *limits;
    proto_scan_reset(s);
    return s;
}

/* Frees s. */
void proto_scan_free(struct proto_scan *s)
{
    free(s);
}

/* Starts a new message. */
void proto_scan_reset(struct proto_scan *s)
{
    s->total = 0;
    s->owed = 0;
    s->objects = 1;
    s->skip = 0;
    s->top_seen = 0;
    s->why = NULL;
    s->code = PROTO_OK;
    s->depth = 0;
    s->msgid = 0;
    s->state = SCAN_BUSY;
    s->env = ENV_NONE;
    s->elem = ELEM_TOP;
    s->hlen = 0;
    s->hneed = 0;
}

/* Bytes of the current message consumed so far, a split header's first
 * bytes included. */
size_t proto_scan_total(const struct proto_scan *s)
{
    return (size_t)(s->total + s->hlen);
}

/* Reports the msgid once the envelope's first two elements were walked. */
int proto_scan_msgid(const struct proto_scan *s, uint32_t *msgid)
{
    if (s->env != ENV_MSGID)
        return 0;
    if (msgid != NULL)
        *msgid = s->msgid;
    return 1;
}

/* The error answering a rejection. */
enum proto_err proto_scan_reject_code(const struct proto_scan *s)
{
    return s->state == SCAN_FAILED ? s->code : PROTO_OK;
}

/* Marks s rejected for reason (answered by code) and reports it. */
static enum proto_scan_status scan_fail(struct proto_scan *s, const char *reason,
                                        enum proto_err code, size_t consumed, size_t *used,
                                        const char **why)
{
    if (s->state != SCAN_FAILED)
        s->code = code;
    s->state = SCAN_FAILED;
    s->why = reason;
    if (used != NULL)
        *used = consumed;
    if (why != NULL)
        *why = reason;
    return PROTO_SCAN_REJECT;
}

/* The scanning loop. Per byte of header it does a table lookup and a switch;
 * bodies are skipped by count. Every check compares 64-bit sums of values
 * below 2^36, so none can overflow. The hot state lives in locals while the
 * loop runs and goes back to s on every exit: kept in s, each store to a
 * byte-sized field (elem, env) would make the compiler reload all of it. */
enum proto_scan_status proto_scan_feed(struct proto_scan *s, const void *p, size_t n, size_t *used,
                                       const char **why)
{
    const uint8_t *const start = p;
    const uint8_t *const end = start + n;
    const uint8_t *b = start;
    const uint64_t max = s->lim.max_message;
    const uint64_t max_objects = s->lim.max_objects;
    const uint32_t max_depth = s->lim.max_depth;
    uint32_t *const left = s->left;
    uint64_t total = s->total, owed = s->owed, objects = s->objects, skip = s->skip;
    uint64_t top_seen = s->top_seen;
    uint32_t depth = s->depth;
    int elem = s->elem;
    enum proto_scan_status st = PROTO_SCAN_MORE;
    const char *reason = NULL;
    enum proto_err code = PROTO_OK;

    if (s->state == SCAN_FAILED)
        return scan_fail(s, s->why, s->code, 0, used, why);
    if (s->state == SCAN_DONE)
        return scan_fail(s, why_unreset, PROTO_BAD_REQUEST, 0, used, why);

    while (b < end) {
        const uint8_t *h;
        uint64_t body = 0;
        uint64_t count;
        unsigned hl;
        uint8_t c;

        if (skip > 0) {
            size_t avail = (size_t)(end - b);
            if (avail < skip) {
                skip -= avail;
                total += avail;
                b = end;
                break;
            }
            b += skip;
            total += skip;
            skip = 0;
            goto object_done;
        }

        if (s->hlen > 0) {
            /* The rest of a header that began in an earlier chunk. */
            size_t want = (size_t)(s->hneed - s->hlen);
            size_t avail = (size_t)(end - b);
            if (avail < want) {
                memcpy(s->hdr + s->hlen, b, avail);
                s->hlen = (uint8_t)(s->hlen + avail);
                b = end;
                break;
            }
            memcpy(s->hdr + s->hlen, b, want);
            b += want;
            h = s->hdr;
            hl = s->hneed;
            s->hlen = 0;
        } else {
            hl = hdr_len[*b];
            if (hl == 0) {
                reason = why_c1;
                code = PROTO_BAD_REQUEST;
                goto fail;
            }
            /* A new object starts: it takes one of its container's
             * declared elements. */
            if (depth > 0) {
                left[depth - 1]--;
                owed--;
                if (depth == 1) {
                    uint64_t idx = top_seen++;
                    elem = idx < 2 ? (int)idx : ELEM_OTHER;
                } else {
                    elem = ELEM_OTHER;
                }
            }
            /* The header's fixed part must fit too; checked on its first
             * byte so that the bytes fed never exceed max_message. */
            if (total + hl + owed > max) {
                reason = why_message;
                code = PROTO_TOO_LARGE;
                goto fail;
            }
            if ((size_t)(end - b) < hl) {
                size_t avail = (size_t)(end - b);
                memcpy(s->hdr, b, avail);
                s->hlen = (uint8_t)avail;
                s->hneed = (uint8_t)hl;
                b = end;
                break;
            }
            h = b;
            b += hl;
        }
        total += hl;
        if (elem != ELEM_OTHER)
            track_envelope(s, elem, h);

        c = h[0];
        if (c < 0x80 || c >= 0xe0 || (c >= 0xc0 && c <= 0xc3))
            goto object_done; /* a scalar: fixed size, checked above */
        if (c < 0x90) {
            count = 2u * (c & 0x0fu);
            goto is_container;
        }
        if (c < 0xa0) {
            count = c & 0x0fu;
            goto is_container;
        }
        if (c < 0xc0) {
            body = c & 0x1fu;
            goto is_body;
        }
        switch (c) {
        case 0xc4:
        case 0xc7:
        case 0xd9:
            body = h[1];
            goto is_body;
        case 0xc5:
        case 0xc8:
        case 0xda:
            body = proto_be16(h + 1);
            goto is_body;
        case 0xc6:
        case 0xc9:
        case 0xdb:
            body = proto_be32(h + 1);
            goto is_body;
        case 0xd4:
            body = 1;
            goto is_body;
        case 0xd5:
            body = 2;
            goto is_body;
        case 0xd6:
            body = 4;
            goto is_body;
        case 0xd7:
            body = 8;
            goto is_body;
        case 0xd8:
            body = 16;
            goto is_body;
        case 0xdc:
            count = proto_be16(h + 1);
            goto is_container;
        case 0xdd:
            count = proto_be32(h + 1);
            goto is_container;
        case 0xde:
            count = 2u * (uint64_t)proto_be16(h + 1);
            goto is_container;
        case 0xdf:
            count = 2u * (uint64_t)proto_be32(h + 1);
            goto is_container;
        default:
            /* float32/64, uint8..64, int8..64 */
            goto object_done;
        }

    is_body:
        if (total + owed + body > max) {
            reason = why_body;
            code = PROTO_TOO_LARGE;
            goto fail;
        }
        if (body > 0) {
            skip = body;
            continue;
        }
        goto object_done;

    is_container:
        if (depth >= max_depth) {
            reason = why_depth;
            code = PROTO_BAD_REQUEST;
            goto fail;
        }
        if (total + owed + count > max) {
            reason = why_count;
            code = PROTO_TOO_LARGE;
            goto fail;
        }
        if (objects + count > max_objects) {
            reason = why_objects;
            code = PROTO_TOO_LARGE;
            goto fail;
        }
        objects += count;
        if (count > 0) {
            owed += count;
            left[depth++] = (uint32_t)count;
            continue;
        }

    object_done:
        /* Close every container whose last element just ended. */
        while (depth > 0 && left[depth - 1] == 0)
            depth--;
        if (depth == 0) {
            st = PROTO_SCAN_READY;
            break;
        }
    }

    s->total = total;
    s->owed = owed;
    s->objects = objects;
    s->skip = skip;
    s->top_seen = top_seen;
    s->depth = depth;
    s->elem = (int8_t)elem;
    if (st == PROTO_SCAN_READY)
        s->state = SCAN_DONE;
    if (used != NULL)
        *used = (size_t)(b - start);
    return st;

fail:
    s->total = total;
    s->owed = owed;
    s->objects = objects;
    s->skip = skip;
    s->top_seen = top_seen;
    s->depth = depth;
    s->elem = (int8_t)elem;
    return scan_fail(s, reason, code, (size_t)(b - start), used, why);
}
