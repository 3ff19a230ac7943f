/* libfarena internals shared by its .c files: the client structure and the
 * call engine. Nothing here is exported (the library is built with hidden
 * visibility; only FARENA_API functions leave it). */
#ifndef FARENA_CLIENT_INTERNAL_H
#define FARENA_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

#include "farena.h"
#include "proto_codec.h"
#include "proto_scan.h"

/* One request of the call in progress. */
struct cl_req {
    size_t first; /* index of the first batch item it carries */
    size_t count; /* how many items it carries */
    size_t out;   /* get_many: offset of its first payload in the output */
    int answered; /* its response has been handled */
};

struct cl_call;

/* Packs request i of call into the client's output with the given msgid
 * (through c->pk). Returns 0 or a FARENA_E... code (with the message set). */
typedef int (*cl_pack_fn)(farena_client *c, struct cl_call *call, size_t i, uint32_t msgid);

/* Handles the successful result of request i; result points into the
 * client's receive buffer and zone and is valid only during the call.
 * Returns 0 or a FARENA_E... code (with the message set). */
typedef int (*cl_done_fn)(farena_client *c, struct cl_call *call, size_t i,
                          const msgpack_object *result);

/* A call: nreq requests sent back to back (pipelined) and their responses
 * matched by msgid. Lives on the caller's stack for one call. */
struct cl_call {
    size_t nreq;
    struct cl_req *reqs; /* nreq entries (c->reqs or c->one) */
    cl_pack_fn pack;     /* NULL: the single request is already packed */
    cl_done_fn done;     /* NULL: the result is left in c->result */
    void *ctx;           /* the API function's own state */
    size_t rx_hint;      /* largest response expected, in bytes */
};

/* Descriptors one recvmsg() brought (SCM_RIGHTS): they belong to the
 * response whose first byte is the last byte of that read (pos), because
 * farenad sends that byte alone with them and the kernel ends a read after
 * the bytes that carry descriptors. A FIFO in stream order, owned by the
 * client; cl_fds_claim() hands them out, anything unclaimed is closed. */
struct cl_fdbatch {
    struct cl_fdbatch *next;
    uint64_t pos;
    size_t n;
    int fds[];
};

/* Most descriptors one arena_fds answer carries (the kernel's SCM_MAX_FD). */
#define CL_MAX_FDS 253

/* Direct reads: what this client knows of one arena it holds (see
 * direct.c). */
struct dr_file {
    int fd;        /* >= 0, or DR_UNFETCHED, or DR_NOFD (read through the daemon) */
    uint64_t size; /* valid when fd >= 0 or DR_NOFD */
};
#define DR_UNFETCHED (-1)
#define DR_NOFD      (-2)

struct dr_arena {
    farena_handle h;
    uint32_t held;         /* references taken through this client's typed calls */
    uint32_t nfiles;       /* the arena's file count; 0 until the first arena_fds */
    struct dr_file *files; /* nfiles entries (malloc), or NULL */
};

/* The client. Allocated by farena_connect_ex(), freed by farena_close(). */
struct farena_client {
    int fd;
    pid_t pid; /* the process that connected */
    /* A page fork() gives the child zeroed (MADV_WIPEONFORK), holding 1 in
     * the process that connected: tells a forked child without a getpid()
     * system call per call. NULL where the kernel lacks it (getpid then). */
    uint8_t *alive;
    int timeout_ms; /* 0 = none */
    int broken;     /* the FARENA_E... that made the connection unusable */
    uint32_t next_msgid;
    uint32_t base; /* msgid of request 0 of the call in progress */

    struct farena_server_info info; /* what hello reported */
    uint64_t max_message;           /* effective limits (defaults where unreported) */
    uint64_t max_batch;
    uint64_t max_objects;

    /* Output: packed request bytes; tx[tx_off..tx_len) are not sent yet. */
    uint8_t *tx;
    size_t tx_off, tx_len, tx_cap;
    msgpack_packer pk; /* writes into tx */
    int pk_oom;        /* the packer's write callback ran out of memory */

    /* Input: rx[rx_start..rx_len) are unhandled bytes, of which
     * rx[rx_start..rx_scan) were already fed to the scanner. */
    uint8_t *rx;
    size_t rx_start, rx_scan, rx_len, rx_cap;
    uint64_t rx_total; /* bytes received since connect */
    struct proto_scan *scan;
    msgpack_zone zone;            /* unpacked responses; cleared per message */
    const msgpack_object *result; /* single calls: the result, valid until the next call */

    /* Descriptors received and not yet claimed, oldest first. */
    struct cl_fdbatch *fdq, *fdq_tail;
    uint64_t msg_pos;    /* stream offset of the response being handled */
    uint64_t result_pos; /* the same for c->result */

    /* Direct reads (direct.c). dr is sorted by handle; dr_last caches the
     * index of the last lookup. */
    char path[108];     /* the socket path connected to (readers connect again) */
    int direct_opt;     /* the caller's option (and FARENA_DIRECT) allow them */
    int direct;         /* ... and the daemon offers arena_fds */
    uint32_t fd_budget; /* most descriptors held for direct reads */
    uint32_t fds_held;
    uint32_t max_fds; /* the daemon's per-call limit */
    struct dr_arena *dr;
    size_t dr_len, dr_cap, dr_last;

    struct cl_req one;   /* the request of a single call */
    struct cl_req *reqs; /* batch calls' requests, reused (reqs_cap entries) */
    size_t reqs_cap;

    char errmsg[320];
};

/* Sets c's message (printf-style) and returns err. */
int cl_fail(farena_client *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whether this process is not the one that connected c (a forked child). */
int cl_forked(const farena_client *c);

/* Checks that c may make a call now (not NULL, same process, not broken) and
 * clears its message. Returns 0 or the FARENA_E... code. */
int cl_ready(farena_client *c);

/* Starts a single request on a client cl_ready() accepted: takes a msgid
 * and packs the envelope head with nparams params; the caller then packs the
 * params with c->pk and calls cl_end(). */
void cl_begin(farena_client *c, enum proto_method m, uint32_t nparams);

/* Starts a single request for the method named method (mlen bytes, any
 * name: farena_call_raw) whose params array is already packed (params_len
 * bytes, copied); the caller then calls cl_end(). */
void cl_begin_raw(farena_client *c, const char *method, size_t mlen, const void *params,
                  size_t params_len);

/* Sends the request cl_begin() started and waits for its answer (rx_hint:
 * its expected size in bytes, 0 if small). On success *result (may be NULL)
 * is the result object, valid until the next call on c. */
int cl_end(farena_client *c, size_t rx_hint, const msgpack_object **result);

/* Makes sure c->reqs has room for n requests. Returns 0 or FARENA_ENOMEM. */
int cl_reqs_reserve(farena_client *c, size_t n);

/* Takes n consecutive msgids (never 0) and returns the first. */
uint32_t cl_msgids(farena_client *c, size_t n);

/* Runs a call: packs, sends and receives concurrently until every request
 * sent is answered. Stops packing new requests after the first error, but
 * always drains the answers of those already sent, so the connection stays in
 * step. Returns 0 or the error of the earliest failed request. */
int cl_run(farena_client *c, struct cl_call *call);

/* Largest bytes of a request envelope head (msgid and nparams at their
 * widest) for method m, plus slack for one handle param and one array
 * header: what a batch request costs besides its items. */
size_t cl_req_overhead(enum proto_method m);

/* The same for a response: result head plus one array header. */
size_t cl_resp_overhead(void);

/* ---- reading results (result.c) ---- */

/* Fails the call with FARENA_EPROTO: farenad's result for method has the
 * wrong shape (why: what, or NULL). Returns FARENA_EPROTO. */
int cl_bad_result(farena_client *c, const char *method, const char *why);

/* map's value for the str key, or NULL when absent; points into map. */
const msgpack_object *cl_map_get(const msgpack_object *map, const char *key);

/* Reads an optional unsigned map entry into *out (left alone if absent).
 * Returns 0, or -1 when present but not an unsigned integer. */
int cl_map_uint(const msgpack_object *map, const char *key, uint64_t *out);

/* Copies an optional str map entry into out (cap bytes, NUL-terminated,
 * truncated; left alone if absent). Returns 0, or -1 when not a str. */
int cl_map_str(const msgpack_object *map, const char *key, char *out, size_t cap);

/* Checks that the n bytes at p are UTF-8 as Unicode defines it (no overlong
 * forms, no surrogates, nothing above U+10FFFF). Returns 1 if so. */
int cl_utf8_valid(const uint8_t *p, size_t n);

/* Appends n bytes to buf, keeping a NUL after them. Returns 0 or
 * FARENA_ENOMEM (buf unchanged). */
int cl_buf_append(struct farena_buf *buf, const void *p, size_t n);

/* Hands out the descriptors that came with the response at stream offset
 * pos: stores up to max of them in out (closing any beyond) and returns
 * how many; 0 when none came with it. Unclaimed batches of earlier
 * responses are closed on the way. */
size_t cl_fds_claim(farena_client *c, uint64_t pos, int *out, size_t max);

/* Closes every unclaimed descriptor. */
void cl_fds_drop(farena_client *c);

/* Sends the notification release [h] (no answer comes). Returns 0 or the
 * FARENA_E... that broke the connection. */
int cl_notify_release(farena_client *c, farena_handle h);

/* ---- direct reads (direct.c) ---- */

/* What a direct read returns when the daemon path must serve the call. */
#define DR_FALLBACK 1

/* Sets up c's direct-read state from its options and the environment. */
void dr_init(farena_client *c, int direct_opt, unsigned max_fds);

/* Frees c's direct-read state, closing every descriptor it holds. */
void dr_fini(farena_client *c);

/* Records that c took one more reference to arena h (into_arena, build,
 * arena_new, open). Out of memory just leaves h to the daemon path. */
void dr_hold(farena_client *c, farena_handle h);

/* Before a release of h is sent: closes h's descriptors when this is the
 * last reference c took. */
void dr_release_before(farena_client *c, farena_handle h);

/* After a successful release of h: forgets one reference. */
void dr_release_after(farena_client *c, farena_handle h);

/* A get served from c's descriptors: 0 or a FARENA_E... code (as the
 * daemon path would answer, message set), or DR_FALLBACK. */
int dr_get(farena_client *c, farena_handle arena, struct farena_loc loc, struct farena_buf *buf,
           int utf8);

/* get_many served from c's descriptors into out (total bytes, room
 * reserved by the caller): 0, a FARENA_E... code, or DR_FALLBACK. */
int dr_get_many(farena_client *c, farena_handle arena, const struct farena_loc *locs, size_t n,
                uint8_t *out);

#endif
