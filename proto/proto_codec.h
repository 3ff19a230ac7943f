/* farena protocol codec: MessagePack-RPC envelopes and typed params, on top of
 * msgpack-c. I/O-free: packing goes through a msgpack_packer whose write
 * callback the caller chooses (a growable buffer, ...). */
#ifndef FARENA_PROTO_CODEC_H
#define FARENA_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto_errors.h"
#include "proto_limits.h"
#include "proto_methods.h"

enum proto_msg_type { PROTO_REQUEST = 0, PROTO_RESPONSE = 1, PROTO_NOTIFY = 2 };

/* A location: (file index, offset, length) within an arena. */
struct proto_loc {
    uint16_t file_index;
    uint32_t offset;
    uint32_t len;
};

/* A decoded request or notification. Every pointer points into the unpacked
 * msgpack object (and so into its zone and the message bytes): valid only as
 * long as both are. */
struct proto_request {
    enum proto_msg_type type;     /* PROTO_REQUEST or PROTO_NOTIFY */
    int answerable;               /* 1 when type and msgid were read, so a
                                     bad_request reply can be sent */
    uint32_t msgid;               /* 0 for a notification */
    const char *method;           /* not NUL-terminated */
    size_t method_len;            /* <= PROTO_MAX_METHOD_LEN */
    const msgpack_object *params; /* the params array's items */
    uint32_t nparams;
};

/* A decoded response; pointers as in struct proto_request. */
struct proto_response {
    uint32_t msgid;
    int err;             /* PROTO_OK, an enum proto_err, or -1 when
                                     the daemon sent a code this build does
                                     not know (errname says which) */
    const char *errname; /* NULL on success; never NULL on error,
                                     even when empty */
    size_t errname_len;
    const char *message; /* the error's human text; NULL on success */
    size_t message_len;
    int64_t item;                 /* the failing item of a batch (the error's {"item": k}),
                     or -1: none sent (older daemons never send it) */
    const msgpack_object *result; /* the result (nil on error) */
};

/* Unpacks one complete message of len bytes (as delimited by proto_scan)
 * into *out, allocating from zone, which the caller owns and may clear
 * between messages. The message's bin/str objects point into buf (no copy);
 * an empty one's pointer is unspecified (may be NULL: read it through
 * proto_read_payload / proto_read_str). Messages of nil, booleans, integers,
 * floats, str, bin and arrays up to 8 deep take a direct decoder that builds the
 * same objects msgpack-c would; anything else, and every error, goes
 * through msgpack_unpack(), whose verdict stands.
 * Returns 0, or -1 with *why set (not msgpack, trailing bytes, out of
 * memory). */
int proto_unpack(msgpack_zone *zone, const void *buf, size_t len, msgpack_object *out,
                 const char **why);

/* The one-pass path for the common case, over bytes not yet scanned: when
 * the stream's next message starts at buf, lies whole within its avail
 * bytes and is request-shaped (nil, booleans, integers, floats, str, bin, arrays up
 * to 8 deep) within lim (max_message, max_depth, max_objects, counted as
 * proto_scan counts them), decodes it into *out as proto_unpack would and
 * returns its length. Returns 0 otherwise (incomplete, another type, past a
 * limit, out of memory): the caller then delimits the message with
 * proto_scan, which decides, and unpacks it with proto_unpack. What it
 * allocated from zone stays there until the caller clears it. */
size_t proto_unpack_prefix(msgpack_zone *zone, const void *buf, size_t avail,
                           const struct proto_limits *lim, msgpack_object *out);

/* Decodes a request [0, msgid, method, params] or a notification
 * [2, method, params] with strict validation. Returns 0, or -1 with *why
 * (static) set; then out->answerable says whether out->type and out->msgid
 * were read (a request whose method or params are malformed gets a
 * bad_request reply; anything else is unanswerable). A request is
 * answerable as soon as it is an array whose element 0 is 0 and element 1
 * a uint32, whatever its length (the same rule as proto_scan_msgid). On -1,
 * out->type is PROTO_NOTIFY if element 0 was 2 (a malformed notification),
 * else PROTO_REQUEST; out->method is set when it was a valid str. */
int proto_request_decode(const msgpack_object *msg, struct proto_request *out, const char **why);

/* Decodes a response [1, msgid, error, result], error being nil or
 * [code, message]. Returns 0 or -1 with *why set. On -1, out->msgid is still
 * set when the envelope's type and msgid were readable (0 otherwise), so a
 * client can fail that one call. */
int proto_response_decode(const msgpack_object *msg, struct proto_response *out, const char **why);

/* Packs the head of a success response, [1, msgid, nil, ; the caller then
 * packs exactly one result object. The head goes to the packer's write
 * callback in one call. Returns msgpack's 0 / -1. */
int proto_pack_result_head(msgpack_packer *pk, uint32_t msgid);

/* Longest head proto_encode_result_head() writes (msgid as uint32). */
#define PROTO_RESULT_HEAD_MAX 8

/* Writes the bytes proto_pack_result_head() packs into out (room for
 * PROTO_RESULT_HEAD_MAX bytes, caller's memory) and returns how many:
 * always proto_size_result_head(msgid). For callers that own their output
 * buffer and want no packer callback per field. */
size_t proto_encode_result_head(uint32_t msgid, void *out);

/* The value under the str key in map, or NULL when map is not a map or has
 * no such key (the first one wins). Borrowed from map. */
const msgpack_object *proto_map_get(const msgpack_object *map, const char *key);

/* Packs a whole error response [1, msgid, [name, message], nil]; message may
 * be NULL (the code's description is sent). */
int proto_pack_error(msgpack_packer *pk, uint32_t msgid, enum proto_err code, const char *message);

/* The same for an error about one item of a batch (push_many, get_many,
 * build, arena_new): [1, msgid, [name, message, {"item": item}], nil].
 * item < 0 packs the plain two-element form. */
int proto_pack_error_item(msgpack_packer *pk, uint32_t msgid, enum proto_err code,
                          const char *message, int64_t item);

/* Packs the head of a request [0, msgid, method, [ ; the caller then packs
 * exactly nparams objects. */
int proto_pack_request_head(msgpack_packer *pk, uint32_t msgid, enum proto_method m,
                            uint32_t nparams);

/* Packs the head of a notification [2, method, [ ; then nparams objects. */
int proto_pack_notify_head(msgpack_packer *pk, enum proto_method m, uint32_t nparams);

/* Packs a location as [file_index, offset, len]. */
int proto_pack_loc(msgpack_packer *pk, struct proto_loc loc);

/* Packs the NUL-terminated string s (caller's, only read during the call)
 * as a str of strlen(s) bytes, proto_size_str(strlen(s)) in all. Returns
 * msgpack's 0 / -1. */
int proto_pack_cstr(msgpack_packer *pk, const char *s);

/* Payloads (push data, get results) have no helper on purpose: pack the
 * header with msgpack_pack_bin(pk, len), then either msgpack_pack_bin_body(pk,
 * data, len), which hands the caller's pointer straight to the packer's write
 * callback (no intermediate copy), or append the len body bytes to the same
 * output yourself (e.g. the daemon reads them from the scratch file straight
 * into its output buffer). Exactly len bytes must follow the header. */

/* Exact encoded sizes, for deciding before packing whether a response fits
 * in max_message (get_many) or how to split a batch (client). */
size_t proto_size_uint(uint64_t v);
size_t proto_size_bin(size_t len); /* header + len */
size_t proto_size_array(size_t n); /* header only */
size_t proto_size_loc(struct proto_loc loc);
size_t proto_size_str(size_t len); /* header + len */
/* [1, msgid, nil, : what proto_pack_result_head() packs. */
size_t proto_size_result_head(uint32_t msgid);
/* [0, msgid, method, [ : what proto_pack_request_head() packs (the params
 * array header included, not the params). */
size_t proto_size_request_head(uint32_t msgid, enum proto_method m, uint32_t nparams);

/* Typed readers for params and results. Each returns 0, or -1 with *why
 * (static, e.g. "expected an unsigned integer") set. Where an integer is
 * expected, a non-negative integer in range is taken, and so is a float
 * (float32 or float64) holding an exact integer in range (-0.0 counts as
 * 0): JavaScript's msgpack encoders send numbers of 2^31 or more as
 * float64. NaN, infinities, fractions, negative numbers, nil and every
 * other type are refused. */
int proto_read_uint(const msgpack_object *o, uint64_t max, uint64_t *out, const char **why);
/* A handle: an integer in 1..UINT64_MAX. */
int proto_read_handle(const msgpack_object *o, uint64_t *out, const char **why);
/* A file index: an integer in 0..65535. */
int proto_read_index(const msgpack_object *o, uint16_t *out, const char **why);
/* A location: an array of exactly three integers in range. */
int proto_read_loc(const msgpack_object *o, struct proto_loc *out, const char **why);
/* A payload: bin, or str (accepted on input). *data points into the message;
 * it is never NULL, even for an empty payload. */
int proto_read_payload(const msgpack_object *o, const void **data, size_t *len, const char **why);
/* A str of at most max_len bytes (arena names: also not empty, no NUL).
 * Every str param of protocol 1 is a name, so this reader always requires
 * 1..max_len bytes and no NUL byte. *s points into the message and is not
 * NUL-terminated. */
int proto_read_str(const msgpack_object *o, size_t max_len, const char **s, size_t *len,
                   const char **why);
/* An array: *items points to its n items. */
int proto_read_array(const msgpack_object *o, const msgpack_object **items, uint32_t *n,
                     const char **why);

#endif
