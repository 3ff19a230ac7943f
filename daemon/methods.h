/* The method table of protocol 1: decode a request's params strictly, call
 * the registry and the store, encode the result. One entry per enum
 * proto_method; per-method request and error counters for stat. */
#ifndef FARENA_DAEMON_METHODS_H
#define FARENA_DAEMON_METHODS_H

#include <stdint.h>

#include "proto_codec.h"
#include "config.h"
#include "io.h"
#include "outq.h"
#include "registry.h"

/* A get of at least this many bytes whose pages are all in the page cache
 * (io_cached) is sent with sendfile from the arena's file instead of being
 * read through the engine into memory first. Below it the copy is cheaper
 * than the three system calls of its own (fstat, cachestat, sendfile) that
 * sendfile costs where the ring's read shares one io_uring_enter with the
 * whole turn. Measured pinned (bench/run.sh --pin, ratios to Redis GET at
 * depth 1 / 16): 64 KiB through memory 1.02 / 1.34 against 0.90 / 0.98 by
 * sendfile; 128 KiB even (0.95 / 1.55 against 1.01 / 1.26); 256 KiB and
 * more, sendfile ahead at depth 1. */
#define METHODS_SENDFILE_MIN (128u << 10)

/* A get of at least this many bytes whose pages are not all cached is
 * spliced: a kernel worker reads the pages into the page cache and into a
 * pipe (references, no copy), and the loop splices the pipe into the
 * socket. Reads this long go to the kernel's workers anyway (io_ring.c),
 * and the two copies through the daemon's memory that splicing saves cost
 * more than the read's wait (bench/, cold 1 MiB gets). Longer than a pipe
 * holds (about 1 MiB), or without a pipe to spare: read into memory. */
#define METHODS_SPLICE_MIN (128u << 10)

struct methods; /* the table's state: registry, limits, counters */

/* Where one call writes its response: the connection's reply queue (owned
 * by the connection, which stays allocated until every slot in it has
 * completed). */
struct methods_out {
    struct outq *q;
};

/* Creates the table over r and io; it enforces cfg's max_message and
 * max_batch and reports every limit in hello. r, io and cfg are borrowed
 * and must outlive the table. Returns NULL when out of memory. Freed with
 * methods_free(). */
struct methods *methods_new(struct reg *r, struct io *io, const struct farenad_config *cfg);

/* Most descriptors one arena_fds answer carries: the kernel's SCM_MAX_FD,
 * the most one sendmsg() passes. Reported as hello's limits.max_fds. */
#define METHODS_MAX_FDS OUTQ_MAX_FDS
void methods_free(struct methods *m);

/* The connection counts stat reports; the server keeps them current. */
void methods_set_connections(struct methods *m, uint64_t live, uint64_t total);

/* Executes req (a decoded request or notification) for owner o. A request
 * gets exactly one response queued in io->q after everything already
 * there: packed in its tail when it is complete now, or in a slot that
 * the I/O engine completes later (a read, a write) or that sendfile
 * serves; a notification gets none (its errors are only counted). When shutting_down is set, every request is
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

/* Packs the error response [1, msgid, [code, message], nil] (with
 * {"item": item} as the error's third element when item >= 0) into the
 * tail of io->q, counting nothing (the server's own replies: scanner rejects,
 * max_clients). Returns 0 or -1 (out of memory). */
int methods_error(struct methods_out *io, uint32_t msgid, enum proto_err code, const char *message,
                  int64_t item);

#endif
