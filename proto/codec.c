/* MessagePack-RPC envelopes and strictly typed params on top of msgpack-c. */
#include "proto_codec.h"

#include <string.h>

#include "proto_limits.h"
#include "proto_be.h"

/* Sets *why when the caller asked for it and returns -1. */
static int fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return -1;
}

/* The fast path's deepest nesting; a request's is 3 (envelope, params, a
 * location). Deeper messages take msgpack-c's path. */
#define FAST_DEPTH 8

/* The guards fast_decode() applies, in proto_scan's terms: containers open
 * at once, and objects (the root plus every element). */
struct fast_bounds {
    unsigned depth;
    uint64_t objects;
};

static int fast_decode(msgpack_zone *zone, const unsigned char *p, size_t len,
                       const struct fast_bounds *b, msgpack_object *out, size_t *used);

/* Decodes exactly the len bytes at p as one msgpack object built of nil,
 * booleans, integers, floats, str, bin and arrays, producing the same objects
 * msgpack_unpack() does (arrays from zone, str/bin pointing into p). One
 * difference: an empty str or bin points where its body would be, while
 * msgpack-c gives NULL or a stale pointer into the message; no reader may
 * use a zero-length body's pointer anyway. Floats are taken too (a
 * JavaScript client sends numbers of 2^31 or more as float64). Returns 0,
 * or -1 for anything else: another type (map, ext), nesting past FAST_DEPTH, a
 * truncated or malformed message, trailing bytes, no memory. The caller
 * then runs msgpack_unpack(), which decides; so this path accepts nothing
 * msgpack-c refuses and only saves its per-object callbacks. */
static int fast_unpack(msgpack_zone *zone, const unsigned char *p, size_t len, msgpack_object *out)
{
    const struct fast_bounds b = {FAST_DEPTH, UINT64_MAX};
    size_t used;

    return fast_decode(zone, p, len, &b, out, &used) == 0 && used == len ? 0 : -1;
}

/* fast_unpack()'s decoder: decodes one object from the start of the len
 * bytes at p, setting *used to its length; bytes after it are left alone.
 * Opening a container beyond b->depth levels (empty ones included, as the
 * scanner counts them) or counting more than b->objects objects declines
 * (-1), like every type it does not handle and a message cut short. */
static int fast_decode(msgpack_zone *zone, const unsigned char *p, size_t len,
                       const struct fast_bounds *b, msgpack_object *out, size_t *used)
{
    struct {
        msgpack_object *next;
        uint32_t left;
    } stack[FAST_DEPTH];
    const unsigned char *const begin = p;
    const unsigned char *const end = p + len;
    msgpack_object *o = out;
    uint64_t objects = 1;
    unsigned depth = 0;

    for (;;) {
        uint64_t n;
        unsigned w;
        unsigned char c;

        if (p >= end)
            return -1;
        c = *p++;
        if (c <= 0x7f) {
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = c;
        } else if (c >= 0xe0) {
            o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
            o->via.i64 = (int8_t)c;
        } else if (c >= 0xa0 && c <= 0xbf) {
            n = c & 0x1fu;
            goto str;
        } else if (c >= 0x90 && c <= 0x9f) {
            n = c & 0x0fu;
            goto array;
        } else {
            switch (c) {
            case 0xc0:
                o->type = MSGPACK_OBJECT_NIL;
                break;
            case 0xc2:
            case 0xc3:
                o->type = MSGPACK_OBJECT_BOOLEAN;
                o->via.boolean = c == 0xc3;
                break;
            case 0xcc:
            case 0xcd:
            case 0xce:
            case 0xcf:
                w = 1u << (c - 0xcc);
                if ((size_t)(end - p) < w)
                    return -1;
                o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                o->via.u64 = proto_be(p, w);
                p += w;
                break;
            case 0xca: {
                /* float32, widened to double as msgpack-c does. */
                union {
                    uint32_t u;
                    float f;
                } f32;
                if ((size_t)(end - p) < 4)
                    return -1;
                f32.u = (uint32_t)proto_be(p, 4);
                p += 4;
                o->type = MSGPACK_OBJECT_FLOAT32;
                o->via.f64 = (double)f32.f;
                break;
            }
            case 0xcb: {
                union {
                    uint64_t u;
                    double f;
                } f64;
                if ((size_t)(end - p) < 8)
                    return -1;
                f64.u = proto_be(p, 8);
                p += 8;
                o->type = MSGPACK_OBJECT_FLOAT64;
                o->via.f64 = f64.f;
                break;
            }
            case 0xd0:
            case 0xd1:
            case 0xd2:
            case 0xd3: {
                int64_t v;
                w = 1u << (c - 0xd0);
                if ((size_t)(end - p) < w)
                    return -1;
                n = proto_be(p, w);
                p += w;
                /* Sign-extend the w-byte two's complement value. */
                v = w == 8                        ? (int64_t)n
                    : (n & (1ull << (8 * w - 1))) ? (int64_t)n - (int64_t)(1ull << (8 * w))
                                                  : (int64_t)n;
                if (v >= 0) {
                    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                    o->via.u64 = (uint64_t)v;
                } else {
                    o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                    o->via.i64 = v;
                }
                break;
            }
            case 0xc4:
            case 0xc5:
            case 0xc6:
            case 0xd9:
            case 0xda:
            case 0xdb:
                w = c <= 0xc6 ? 1u << (c - 0xc4) : 1u << (c - 0xd9);
                if ((size_t)(end - p) < w)
                    return -1;
                n = proto_be(p, w);
                p += w;
                if (c <= 0xc6) {
                    if ((size_t)(end - p) < n)
                        return -1;
                    o->type = MSGPACK_OBJECT_BIN;
                    o->via.bin.ptr = (const char *)p;
                    o->via.bin.size = (uint32_t)n;
                    p += n;
                    break;
                }
                goto str;
            case 0xdc:
            case 0xdd:
                w = c == 0xdc ? 2 : 4;
                if ((size_t)(end - p) < w)
                    return -1;
                n = proto_be(p, w);
                p += w;
                goto array;
            default:
                return -1;
            }
        }
        goto done;

    str:
        if ((size_t)(end - p) < n)
            return -1;
        o->type = MSGPACK_OBJECT_STR;
        o->via.str.ptr = (const char *)p;
        o->via.str.size = (uint32_t)n;
        p += n;
        goto done;

    array:
        /* Every element takes at least one byte: a count the rest of the
         * message cannot hold is refused before allocating. */
        if (n > (size_t)(end - p) || (n > 0 && depth == FAST_DEPTH) || depth >= b->depth ||
            objects + n > b->objects)
            return -1;
        objects += n;
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = msgpack_zone_malloc(zone, (size_t)n * sizeof(msgpack_object));
        if (o->via.array.ptr == NULL)
            return -1;
        if (n > 0) {
            stack[depth].next = o->via.array.ptr;
            stack[depth].left = (uint32_t)n;
            depth++;
            o = stack[depth - 1].next++;
            stack[depth - 1].left--;
            continue;
        }

    done:
        while (depth > 0 && stack[depth - 1].left == 0)
            depth--;
        if (depth == 0) {
            *used = (size_t)(p - begin);
            return 0;
        }
        o = stack[depth - 1].next++;
        stack[depth - 1].left--;
    }
}

/* Unpacks one whole message; bytes after it are an error because the scanner
 * already cut the stream at message boundaries. Requests take fast_unpack();
 * whatever it declines goes through msgpack-c, whose verdict stands. */
int proto_unpack(msgpack_zone *zone, const void *buf, size_t len, msgpack_object *out,
                 const char **why)
{
    size_t off = 0;

    if (zone == NULL || out == NULL || (buf == NULL && len > 0))
        return fail(why, "invalid arguments");
    if (len > 0 && fast_unpack(zone, buf, len, out) == 0)
        return 0;
    switch (msgpack_unpack(buf, len, &off, zone, out)) {
    case MSGPACK_UNPACK_SUCCESS:
        return 0;
    case MSGPACK_UNPACK_EXTRA_BYTES:
        return fail(why, "trailing bytes after the message");
    case MSGPACK_UNPACK_CONTINUE:
        return fail(why, "incomplete message");
    case MSGPACK_UNPACK_NOMEM_ERROR:
        return fail(why, "out of memory, or nesting deeper than msgpack-c's 32 levels");
    case MSGPACK_UNPACK_PARSE_ERROR:
    default:
        return fail(why, "not msgpack");
    }
}

/* Decodes a request-shaped message at the start of the stream; see
 * codec.h. Within the limits it accepts only what proto_scan would: no
 * container deeper than max_depth, no more than max_objects objects, no
 * more than max_message bytes; and no array is allocated for more elements
 * than there are bytes left, so the zone grows with the input at most. */
size_t proto_unpack_prefix(msgpack_zone *zone, const void *buf, size_t avail,
                           const struct proto_limits *lim, msgpack_object *out)
{
    struct fast_bounds b;
    size_t used;

    if (zone == NULL || buf == NULL || lim == NULL || out == NULL || avail == 0)
        return 0;
    b.depth = lim->max_depth < FAST_DEPTH ? lim->max_depth : FAST_DEPTH;
    b.objects = lim->max_objects;
    if (fast_decode(zone, buf, avail, &b, out, &used) < 0 || used > lim->max_message)
        return 0;
    return used;
}

/* The bytes of a str or bin. msgpack-c leaves the pointer of an empty one
 * NULL; callers get a valid pointer (to an empty string) instead, so "NULL
 * means absent" holds and memcpy(dst, p, 0) stays defined. */
static const char *body_ptr(const char *p)
{
    return p != NULL ? p : "";
}

/* Reads a msgid: a non-negative integer of at most 32 bits. */
static int read_msgid(const msgpack_object *o, uint32_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return -1;
    *out = (uint32_t)o->via.u64;
    return 0;
}

/* Decodes [0, msgid, method, params] or [2, method, params]. A request is
 * answerable as soon as its type and msgid are read, whatever follows. */
int proto_request_decode(const msgpack_object *msg, struct proto_request *out, const char **why)
{
    const msgpack_object *e, *method, *params;
    uint32_t n;

    memset(out, 0, sizeof(*out));
    out->type = PROTO_REQUEST;
    if (msg == NULL || msg->type != MSGPACK_OBJECT_ARRAY || msg->via.array.size == 0)
        return fail(why, "message is not an array envelope");
    e = msg->via.array.ptr;
    n = msg->via.array.size;
    if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail(why, "envelope type is not an unsigned integer");

    switch (e[0].via.u64) {
    case PROTO_REQUEST:
        if (n < 2 || read_msgid(&e[1], &out->msgid) != 0)
            return fail(why, "msgid is not an unsigned 32-bit integer");
        out->answerable = 1;
        if (n != 4)
            return fail(why, "a request must be an array of 4");
        method = &e[2];
        params = &e[3];
        break;
    case PROTO_NOTIFY:
        out->type = PROTO_NOTIFY;
        if (n != 3)
            return fail(why, "a notification must be an array of 3");
        method = &e[1];
        params = &e[2];
        break;
    case PROTO_RESPONSE:
        return fail(why, "a response where a request was expected");
    default:
        return fail(why, "unknown envelope type");
    }

    if (method->type != MSGPACK_OBJECT_STR)
        return fail(why, "method is not a str");
    if (method->via.str.size == 0 || method->via.str.size > PROTO_MAX_METHOD_LEN)
        return fail(why, "method name is empty or too long");
    out->method = method->via.str.ptr;
    out->method_len = method->via.str.size;
    if (params->type != MSGPACK_OBJECT_ARRAY)
        return fail(why, "params is not an array");
    out->params = params->via.array.ptr;
    out->nparams = params->via.array.size;
    return 0;
}

/* Decodes [1, msgid, error, result]. */
int proto_response_decode(const msgpack_object *msg, struct proto_response *out, const char **why)
{
    const msgpack_object *e, *err;

    memset(out, 0, sizeof(*out));
    out->item = -1;
    if (msg == NULL || msg->type != MSGPACK_OBJECT_ARRAY || msg->via.array.size != 4)
        return fail(why, "a response must be an array of 4");
    e = msg->via.array.ptr;
    if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || e[0].via.u64 != PROTO_RESPONSE)
        return fail(why, "envelope type is not 1 (response)");
    if (read_msgid(&e[1], &out->msgid) != 0)
        return fail(why, "msgid is not an unsigned 32-bit integer");

    err = &e[2];
    out->result = &e[3];
    if (err->type == MSGPACK_OBJECT_NIL) {
        out->err = PROTO_OK;
        return 0;
    }
    if (err->type != MSGPACK_OBJECT_ARRAY || err->via.array.size < 2 || err->via.array.size > 3 ||
        err->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
        err->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
        (err->via.array.size == 3 && err->via.array.ptr[2].type != MSGPACK_OBJECT_MAP))
        return fail(why, "error is neither nil nor [code str, message str(, detail map)]");
    if (err->via.array.size == 3) {
        /* The detail map: keys this build does not know are ignored. */
        const msgpack_object *v = proto_map_get(&err->via.array.ptr[2], "item");

        if (v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= UINT32_MAX)
            out->item = (int64_t)v->via.u64;
    }
    out->errname = body_ptr(err->via.array.ptr[0].via.str.ptr);
    out->errname_len = err->via.array.ptr[0].via.str.size;
    out->message = body_ptr(err->via.array.ptr[1].via.str.ptr);
    out->message_len = err->via.array.ptr[1].via.str.size;
    out->err = proto_err_from_name(out->errname, out->errname_len);
    return 0;
}

/* A map entry by key; see proto_codec.h. */
const msgpack_object *proto_map_get(const msgpack_object *map, const char *key)
{
    size_t klen = strlen(key);

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == klen &&
            memcmp(kv->key.via.str.ptr, key, klen) == 0)
            return &kv->val;
    }
    return NULL;
}

/* A str of strlen(s) bytes; see codec.h. */
int proto_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len);
}

/* fixarray(4), positive fixint 1, msgid in msgpack-c's smallest unsigned
 * encoding, nil. */
size_t proto_encode_result_head(uint32_t msgid, void *out)
{
    unsigned char *p = out;
    size_t n = 2;

    p[0] = 0x94;
    p[1] = PROTO_RESPONSE;
    if (msgid < 128) {
        p[n++] = (unsigned char)msgid;
    } else if (msgid <= UINT8_MAX) {
        p[n++] = 0xcc;
        p[n++] = (unsigned char)msgid;
    } else if (msgid <= UINT16_MAX) {
        p[n++] = 0xcd;
        p[n++] = (unsigned char)(msgid >> 8);
        p[n++] = (unsigned char)msgid;
    } else {
        p[n++] = 0xce;
        p[n++] = (unsigned char)(msgid >> 24);
        p[n++] = (unsigned char)(msgid >> 16);
        p[n++] = (unsigned char)(msgid >> 8);
        p[n++] = (unsigned char)msgid;
    }
    p[n++] = 0xc0;
    return n;
}

/* [1, msgid, nil, ... in one write. */
int proto_pack_result_head(msgpack_packer *pk, uint32_t msgid)
{
    unsigned char head[PROTO_RESULT_HEAD_MAX];
    size_t n = proto_encode_result_head(msgid, head);

    return pk->callback(pk->data, (const char *)head, n) == 0 ? 0 : -1;
}

/* [1, msgid, [name, message], nil] */
int proto_pack_error(msgpack_packer *pk, uint32_t msgid, enum proto_err code, const char *message)
{
    return proto_pack_error_item(pk, msgid, code, message, -1);
}

/* [1, msgid, [name, message, {"item": item}], nil] */
int proto_pack_error_item(msgpack_packer *pk, uint32_t msgid, enum proto_err code,
                          const char *message, int64_t item)
{
    const char *name = proto_err_name(code);

    if (name == NULL)
        return -1;
    if (message == NULL)
        message = proto_err_describe(code);
    if (msgpack_pack_array(pk, 4) || msgpack_pack_uint8(pk, PROTO_RESPONSE) ||
        msgpack_pack_uint32(pk, msgid) || msgpack_pack_array(pk, item < 0 ? 2 : 3) ||
        proto_pack_cstr(pk, name) || proto_pack_cstr(pk, message))
        return -1;
    if (item >= 0 && (msgpack_pack_map(pk, 1) || proto_pack_cstr(pk, "item") ||
                      msgpack_pack_uint64(pk, (uint64_t)item)))
        return -1;
    return msgpack_pack_nil(pk) ? -1 : 0;
}

/* [0, msgid, method, [ ... */
int proto_pack_request_head(msgpack_packer *pk, uint32_t msgid, enum proto_method m,
                            uint32_t nparams)
{
    const char *name = proto_method_name(m);

    if (name == NULL)
        return -1;
    return msgpack_pack_array(pk, 4) || msgpack_pack_uint8(pk, PROTO_REQUEST) ||
                   msgpack_pack_uint32(pk, msgid) || proto_pack_cstr(pk, name) ||
                   msgpack_pack_array(pk, nparams)
               ? -1
               : 0;
}

/* [2, method, [ ... */
int proto_pack_notify_head(msgpack_packer *pk, enum proto_method m, uint32_t nparams)
{
    const char *name = proto_method_name(m);

    if (name == NULL)
        return -1;
    return msgpack_pack_array(pk, 3) || msgpack_pack_uint8(pk, PROTO_NOTIFY) ||
                   proto_pack_cstr(pk, name) || msgpack_pack_array(pk, nparams)
               ? -1
               : 0;
}

/* [file_index, offset, len], each in its smallest encoding. */
int proto_pack_loc(msgpack_packer *pk, struct proto_loc loc)
{
    return msgpack_pack_array(pk, 3) || msgpack_pack_uint16(pk, loc.file_index) ||
                   msgpack_pack_uint32(pk, loc.offset) || msgpack_pack_uint32(pk, loc.len)
               ? -1
               : 0;
}

/* msgpack-c packs every unsigned integer in its smallest encoding. */
size_t proto_size_uint(uint64_t v)
{
    if (v < 128)
        return 1;
    if (v <= UINT8_MAX)
        return 2;
    if (v <= UINT16_MAX)
        return 3;
    if (v <= UINT32_MAX)
        return 5;
    return 9;
}

/* bin8 / bin16 / bin32 header plus the body (msgpack has no fixbin). */
size_t proto_size_bin(size_t len)
{
    if (len <= UINT8_MAX)
        return 2 + len;
    if (len <= UINT16_MAX)
        return 3 + len;
    return 5 + len;
}

/* fixstr, else str8 / str16 / str32, whose headers are as long as bin's. */
size_t proto_size_str(size_t len)
{
    return len < 32 ? 1 + len : proto_size_bin(len);
}

/* fixarray / array16 / array32 header. */
size_t proto_size_array(size_t n)
{
    if (n < 16)
        return 1;
    if (n <= UINT16_MAX)
        return 3;
    return 5;
}

/* A location's array header and three integers. */
size_t proto_size_loc(struct proto_loc loc)
{
    return 1 + proto_size_uint(loc.file_index) + proto_size_uint(loc.offset) +
           proto_size_uint(loc.len);
}

/* fixarray(4), type 1, msgid, nil. */
size_t proto_size_result_head(uint32_t msgid)
{
    return 3 + proto_size_uint(msgid);
}

/* fixarray(4), type 0, msgid, method str, params array header. */
size_t proto_size_request_head(uint32_t msgid, enum proto_method m, uint32_t nparams)
{
    const char *name = proto_method_name(m);
    size_t name_len = name != NULL ? strlen(name) : 0;

    return 2 + proto_size_uint(msgid) + proto_size_str(name_len) + proto_size_array(nparams);
}

/* The reason an object is not the unsigned integer a reader wanted. */
static const char *not_uint_reason(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "expected an unsigned integer, got a negative one";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "expected an unsigned integer, got a float";
    case MSGPACK_OBJECT_NIL:
        return "expected an unsigned integer, got nil";
    default:
        return "expected an unsigned integer";
    }
}

/* 2^64 as a double: the first float no uint64_t holds. */
#define TWO_POW_64 18446744073709551616.0

/* Reads o as an unsigned integer in 0..max into *v. A float (float32 or
 * float64) counts when it holds an exact integer in range: JavaScript's
 * msgpack encoders send every number of 2^31 or more as a float64. NaN,
 * infinities, fractions and negative floats never count; -0.0 is 0.
 * Returns NULL, or the reason o is refused (static). */
static const char *uint_in(const msgpack_object *o, uint64_t max, uint64_t *v)
{
    double f;
    uint64_t u;

    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > max)
            return "integer out of range";
        *v = o->via.u64;
        return NULL;
    }
    if (o->type != MSGPACK_OBJECT_FLOAT32 && o->type != MSGPACK_OBJECT_FLOAT64)
        return not_uint_reason(o);
    f = o->via.f64;
    if (f != f)
        return "expected an unsigned integer, got a float NaN";
    if (f < 0.0)
        return "expected an unsigned integer, got a negative float";
    if (f >= TWO_POW_64)
        return "integer out of range";
    u = (uint64_t)f;
    if ((double)u != f)
        return "expected an unsigned integer, got a float that is not a whole number";
    if (u > max)
        return "integer out of range";
    *v = u;
    return NULL;
}

/* An integer in 0..max (or a float holding one). */
int proto_read_uint(const msgpack_object *o, uint64_t max, uint64_t *out, const char **why)
{
    const char *reason;
    uint64_t v;

    if (o == NULL)
        return fail(why, "missing integer");
    reason = uint_in(o, max, &v);
    if (reason != NULL)
        return fail(why, reason);
    *out = v;
    return 0;
}

/* A handle: 1..UINT64_MAX (or a float holding one). */
int proto_read_handle(const msgpack_object *o, uint64_t *out, const char **why)
{
    uint64_t v;

    if (o == NULL)
        return fail(why, "missing handle");
    if (uint_in(o, UINT64_MAX, &v) != NULL)
        return fail(why, o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64
                             ? "a handle must be a positive integer; a float must be a whole "
                               "number in range"
                             : "a handle must be a positive integer");
    if (v == 0)
        return fail(why, "handle 0 is never valid");
    *out = v;
    return 0;
}

/* A file index: 0..65535 (or a float holding one). */
int proto_read_index(const msgpack_object *o, uint16_t *out, const char **why)
{
    uint64_t v;

    if (o == NULL)
        return fail(why, "missing file index");
    if (uint_in(o, UINT64_MAX, &v) != NULL)
        return fail(why, "a file index must be an integer in 0..65535");
    if (v > UINT16_MAX)
        return fail(why, "file index above 65535");
    *out = (uint16_t)v;
    return 0;
}

/* [file_index u16, offset u32, len u32], each an integer or a float holding
 * one; *out is written only on success. */
int proto_read_loc(const msgpack_object *o, struct proto_loc *out, const char **why)
{
    const msgpack_object *e;
    struct proto_loc loc;
    uint64_t off, len;

    if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
        return fail(why, "a location must be an array of 3 integers");
    e = o->via.array.ptr;
    if (proto_read_index(&e[0], &loc.file_index, why) != 0)
        return -1;
    if (uint_in(&e[1], UINT32_MAX, &off) != NULL)
        return fail(why, "a location's offset must be an integer in 0..4294967295");
    if (uint_in(&e[2], UINT32_MAX, &len) != NULL)
        return fail(why, "a location's len must be an integer in 0..4294967295");
    loc.offset = (uint32_t)off;
    loc.len = (uint32_t)len;
    *out = loc;
    return 0;
}

/* bin, or str accepted on input. */
int proto_read_payload(const msgpack_object *o, const void **data, size_t *len, const char **why)
{
    if (o != NULL && o->type == MSGPACK_OBJECT_BIN) {
        *data = body_ptr(o->via.bin.ptr);
        *len = o->via.bin.size;
        return 0;
    }
    if (o != NULL && o->type == MSGPACK_OBJECT_STR) {
        *data = body_ptr(o->via.str.ptr);
        *len = o->via.str.size;
        return 0;
    }
    return fail(why, "a payload must be bin (or str)");
}

/* A str of 1..max_len bytes without NUL. */
int proto_read_str(const msgpack_object *o, size_t max_len, const char **s, size_t *len,
                   const char **why)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR)
        return fail(why, "expected a str");
    if (o->via.str.size == 0)
        return fail(why, "empty str");
    if (o->via.str.size > max_len)
        return fail(why, "str too long");
    if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
        return fail(why, "str contains a NUL byte");
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

/* Any array. */
int proto_read_array(const msgpack_object *o, const msgpack_object **items, uint32_t *n,
                     const char **why)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY)
        return fail(why, "expected an array");
    *items = o->via.array.ptr;
    *n = o->via.array.size;
    return 0;
}
