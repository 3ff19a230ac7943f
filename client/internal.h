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

/* The client. Allocated by farena_connect_ex(), freed by farena_close(). */
struct farena_client {
    int fd;
    pid_t pid;      /* the process that connected */
    int timeout_ms; /* 0 = none */
    int broken;     /* the FARENA_E... that made the connection unusable */
    uint32_t next_msgid;
    uint32_t base; /* msgid of request 0 of the call in progress */

    farena_server_info info; /* what hello reported */
    uint64_t max_message;    /* effective limits (defaults where unreported) */
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

    struct cl_req one;   /* the request of a single call */
    struct cl_req *reqs; /* batch calls' requests, reused (reqs_cap entries) */
    size_t reqs_cap;

    char errmsg[320];
};

/* Sets c's message (printf-style) and returns err. */
int cl_fail(farena_client *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checks that c may make a call now (not NULL, same process, not broken) and
 * clears its message. Returns 0 or the FARENA_E... code. */
int cl_ready(farena_client *c);

/* Starts a single request on a client cl_ready() accepted: takes a msgid
 * and packs the envelope head with nparams params; the caller then packs the
 * params with c->pk and calls cl_end(). */
void cl_begin(farena_client *c, enum proto_method m, uint32_t nparams);

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

/* Fills c->info and the effective limits from a hello result. Returns 0 or
 * FARENA_EPROTO (message set). */
int cl_hello_parse(farena_client *c, const msgpack_object *result);

/* Checks that the n bytes at p are UTF-8 as Unicode defines it (no overlong
 * forms, no surrogates, nothing above U+10FFFF). Returns 1 if so. */
int cl_utf8_valid(const uint8_t *p, size_t n);

/* Appends n bytes to buf, keeping a NUL after them. Returns 0 or
 * FARENA_ENOMEM (buf unchanged). */
int cl_buf_append(farena_buf *buf, const void *p, size_t n);

#endif
