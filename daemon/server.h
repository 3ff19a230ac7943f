/* The transport: a listening Unix socket served on one explicit event_base,
 * one connection state per client, the framing guards (pre-scanner,
 * back-pressure, bounded batches, max_clients, peer uid, EMFILE pause) and
 * graceful shutdown. What a request does is methods.c's business. */
#ifndef FARENA_DAEMON_SERVER_H
#define FARENA_DAEMON_SERVER_H

#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "io.h"
#include "methods.h"
#include "registry.h"

/* Per-connection output marks: above HIGH pending bytes a connection's
 * requests are not read (nor processed); below LOW they are again. */
#define SERVER_OUT_HIGH (4u << 20)
#define SERVER_OUT_LOW  (1u << 20)
/* Requests handled per connection per event-loop turn before yielding. */
#define SERVER_BATCH 64
/* How long shutdown and a closing connection wait for output to drain. */
#define SERVER_DRAIN_SECONDS 5
/* How long the listener pauses after accept() runs out of descriptors. */
#define SERVER_ACCEPT_PAUSE_MS 100

struct server;

/* Starts serving on base: listen_fd must be a bound, listening, non-blocking
 * AF_UNIX stream socket; the server owns it from now on (closes it). The
 * server reads cfg's limits, max_clients and reply_memory. cfg, reg, m and
 * io are borrowed and must outlive the server. Returns NULL (errno) on
 * failure, having closed listen_fd. */
struct server *server_new(struct event_base *base, int listen_fd, const struct farenad_config *cfg,
                          struct reg *reg, struct methods *m, struct io *io);

/* Ends one turn of the event loop: hands the turn's reads and writes to the
 * I/O engine in one submission, then sends the replies that completed
 * (cached reads complete within that submission). The owner of the loop
 * calls it after every event_base_loop(EVLOOP_ONCE). */
void server_turn_end(struct server *s);

/* Begins graceful shutdown: stops accepting (the listening socket closes),
 * answers what every connection had already received, answers anything
 * newer with shutting_down, and closes each connection once its replies are
 * flushed. When the last one is gone, or after SERVER_DRAIN_SECONDS, the
 * event loop is told to exit. Safe to call more than once. */
void server_shutdown(struct server *s);

/* Tells whether server_shutdown() ran. */
int server_shutting_down(const struct server *s);

/* Closes every connection (their holdings are released in the registry) and
 * frees the server. Call with the event loop stopped and the I/O engine
 * drained (io_free), so no completion can reach a connection. */
void server_free(struct server *s);

#endif
