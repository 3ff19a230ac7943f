/* The method table of protocol 1: decode a request's params strictly, call
 * the registry and the store, encode the result. One entry per enum
 * proto_method; per-method request and error counters for stat. */
#ifndef FARENA_DAEMON_METHODS_H
#define FARENA_DAEMON_METHODS_H

#include <stdint.h>

#include <event2/buffer.h>

#include "../proto/codec.h"
#include "obuf.h"
#include "registry.h"

/* The limits hello reports and the methods enforce; plain values, copied by
 * methods_new(). */
struct methods_limits {
    uint32_t max_message; /* largest response, bytes */
    uint32_t max_batch;   /* items per push_many / get_many */
    uint32_t max_depth;
    uint32_t max_objects;
    uint32_t max_clients;
    uint32_t max_writers;
    uint32_t max_handles;
    uint64_t max_bytes;
    uint64_t min_free;
};

/* Payloads at least this long are sent with sendfile from the arena's file
 * (the arena stays referenced until the bytes are on the socket); shorter
 * ones are pread straight into the packing buffer and leave with the
 * batch's other replies in one send. Measured by bench/ (pinned, ratio to
 * Redis GET at depth 1 / 16): 16 KiB items 1.04 / 1.17 copied against
 * 0.96 / 0.85 by sendfile (a header write and a sendfile per reply); 32 KiB
 * items 1.02 / 0.97 copied against 1.06 / 1.09 by sendfile. */
#define METHODS_SENDFILE_MIN (32u << 10)

/* A get_many response of small items (each below METHODS_SENDFILE_MIN) up
 * to this many bytes is assembled in the scratch obuf with one reservation;
 * a bigger one goes through methods_out.tmp, whose chains take the payloads
 * without a second copy. */
#define METHODS_GATHER_MAX (1u << 20)

struct methods; /* the table's state: registry, limits, counters */

/* Where one call writes its response; every member is owned by the
 * connection and outlives the call. */
struct methods_out {
    struct obuf *scratch; /* packed bytes not yet in out */
    struct evbuffer *out; /* the connection's output (drains to its socket) */
    struct evbuffer *tmp; /* empty on entry and on return; DRAINS_TO_FD set */
    /* arena_fds: hands the n descriptors at fds to the connection, to be
     * sent as SCM_RIGHTS with the first byte of the response packed next
     * (the connection closes its copies once sent, or when it ends).
     * Returns 0 (the connection owns them now) or -1 (out of memory: the
     * caller still owns them). NULL: descriptors cannot be sent here, and
     * arena_fds answers io_error. */
    int (*attach_fds)(void *ctx, const int *fds, size_t n);
    void *attach_ctx;
};

/* Most descriptors one arena_fds answer carries: the kernel's SCM_MAX_FD,
 * the most one sendmsg() passes. Reported as hello's limits.max_fds. */
#define METHODS_MAX_FDS 253u

/* Creates the table over r (borrowed; must outlive the table). Returns NULL
 * when out of memory. Freed with methods_free(). */
struct methods *methods_new(struct reg *r, const struct methods_limits *lim);
void methods_free(struct methods *m);

/* The connection counts stat reports; the server keeps them current. */
void methods_set_connections(struct methods *m, uint64_t live, uint64_t total);

/* Executes req (a decoded request or notification) for owner o. A request
 * gets exactly one response appended to io, in order after everything
 * already there (scratch first, then out); a notification gets none (its
 * errors are only counted). When shutting_down is set, every request is
 * answered shutting_down. Returns 0, or -1 when the response could not be
 * appended (out of memory): the stream is then broken and the caller must
 * close the connection. */
int methods_call(struct methods *m, struct reg_owner *o, const struct proto_request *req,
                 int shutting_down, struct methods_out *io);

/* Answers a request that could not be decoded (req->answerable set by
 * proto_request_decode, why its reason) with bad_request, counting the error
 * against its method when the name was readable. Returns as methods_call. */
int methods_reject(struct methods *m, const struct proto_request *req, const char *why,
                   struct methods_out *io);

/* Packs the error response [1, msgid, [code, message], nil] into
 * io->scratch, counting nothing (the server's own replies: scanner rejects,
 * max_clients). Returns 0 or -1 (out of memory). */
int methods_error(struct methods_out *io, uint32_t msgid, enum proto_err code, const char *message);

#endif
