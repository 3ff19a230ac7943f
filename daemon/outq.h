/* A connection's replies, in the order its requests arrived, on their way
 * to the socket.
 *
 * Replies that are complete when their request is handled are packed into
 * the tail, a growable buffer (msgpack's packer writes a few bytes at a
 * time there). A reply that waits for the I/O engine (a get's payload, a
 * push's write) gets a slot: its own buffer, appended after everything
 * queued so far, into which the engine reads the payload directly. Bytes
 * go out in order up to the first slot still waiting; a slot that fails is
 * replaced, whole, by an error response before it goes out.
 *
 * Why in order: a client reads replies in the order it sent requests
 * unless it matches msgids (stock clients and libfarena match; simple
 * scripts often do not), a push's reply then trivially follows its write,
 * and a waiting reply holds back only its own connection: other
 * connections never wait for it. */
#ifndef FARENA_DAEMON_OUTQ_H
#define FARENA_DAEMON_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "proto_errors.h"
#include "obuf.h"

struct outq;      /* owned by its connection */
struct outq_slot; /* owned by its queue; valid until the queue frees it
                     after its bytes went out (never while it waits) */

/* Slot flags. */
#define OUTQ_BLOCKING                                                                              \
    1u /* the connection handles no further request until
                            this slot is complete (writes: their payloads
                            live in the connection's input buffer) */

/* Creates a queue. ready(arg) runs (on the loop thread) whenever a slot
 * completes; *total, if not NULL, is a counter shared by every queue that
 * this one keeps its buffered bytes added to. Returns NULL when out of
 * memory. */
struct outq *outq_new(void (*ready)(void *arg), void *arg, uint64_t *total);

/* Frees q and everything queued. No slot may be waiting (outq_busy() is
 * 0): the engine could still write into it. */
void outq_free(struct outq *q);

/* The packing buffer for replies that are complete now; they go out after
 * everything queued before them. Valid until the next outq call. */
struct obuf *outq_tail(struct outq *q);

/* Appends a slot for the reply to request msgid, with room for size bytes
 * in its buffer (outq_slot_buf). One part is pending: the slot completes
 * when as many outq_slot_done/fail calls as parts have been made. Returns
 * NULL when out of memory. */
struct outq_slot *outq_slot_new(struct outq *q, uint32_t msgid, size_t size, unsigned flags);

/* The slot's buffer: the caller packs the reply there (or reserves room
 * for reads into it). Its memory does not move once the caller stops
 * writing to it. */
struct obuf *outq_slot_buf(struct outq_slot *s);

/* Most descriptors one reply passes (the kernel's SCM_MAX_FD). */
#define OUTQ_MAX_FDS 253u

/* Gives the slot n descriptors (1..OUTQ_MAX_FDS) to pass to the peer as
 * SCM_RIGHTS with the slot's first byte; the queue owns them from then on
 * and closes its copies once they are sent, or when the slot is freed
 * unsent. At most once per slot. Returns 0, or -1 when out of memory (the
 * caller still owns them). */
int outq_slot_attach_fds(struct outq_slot *s, const int *fds, size_t n);

/* Gives the slot a pipe whose len (> 0) bytes go out, with splice(2),
 * right after the slot's own bytes: the payload of a get whose reply
 * buffer holds only its head. rfd is the pipe's non-blocking read end; the pipe is
 * filled while the slot waits (one of its parts). done(arg, sent) runs
 * once the bytes are out (sent 1) or when they never will be: the slot
 * failed (its error response goes out instead) or was freed unsent
 * (sent 0; the pipe may hold bytes). At most once per slot, and not
 * with descriptors. The bytes count in outq_pending (back-pressure) but
 * not in the shared memory total: they are page-cache pages. */
void outq_slot_attach_pipe(struct outq_slot *s, int rfd, uint64_t len,
                           void (*done)(void *arg, int sent), void *arg);

/* Adds n pending parts (one per read issued into the slot). */
void outq_slot_add(struct outq_slot *s, uint32_t n);

/* One part is done. */
void outq_slot_done(struct outq_slot *s);

/* One part failed: the whole reply becomes the error [code, message]
 * (with {"item": item} when item >= 0; the first failure wins). */
void outq_slot_fail(struct outq_slot *s, enum proto_err code, const char *message, int64_t item);

/* Appends len (> 0) bytes of the file fd from offset off, sent with
 * sendfile(2) after everything queued so far (no copy through the daemon's
 * memory: for replies whose pages are cached, io_cached). done(arg, sent)
 * runs once they are all sent (sent 1) or the queue drops them (0); fd
 * must stay open until then. They count in outq_pending (back-pressure)
 * but not in the shared memory total. Returns 0 or -1 (out of memory;
 * done is not called). */
int outq_file(struct outq *q, int fd, uint64_t off, uint64_t len, void (*done)(void *arg, int sent),
              void *arg);

/* Slots still waiting. */
uint32_t outq_busy(const struct outq *q);

/* Whether a blocking slot is waiting. */
int outq_blocked(const struct outq *q);

/* Bytes queued and not yet sent, waiting slots included. */
uint64_t outq_pending(const struct outq *q);

/* Whether bytes are ready to go out now. */
int outq_sendable(const struct outq *q);

/* Sends ready bytes to fd (a non-blocking stream socket), at most budget
 * of them, until the socket is full. Returns the bytes sent (0 when the
 * socket is full or nothing was ready), or -1 with errno on a socket
 * error, or EIO when a file part ended early (the file shrank behind the
 * daemon's back: that reply can never be completed) or a pipe held fewer
 * bytes than promised. */
long outq_send(struct outq *q, int fd, size_t budget);

/* Whether outq_trim(q, keep) would give memory back: a tail larger than
 * keep, or reply buffers kept for reuse. */
int outq_trimmable(const struct outq *q, size_t keep);

/* Gives back the tail's memory if it is large and empty, and the large
 * reply buffers kept for reuse. */
void outq_trim(struct outq *q, size_t keep);

/* Gives back the large reply buffers kept for reuse (they count in the
 * shared total until then). */
void outq_trim_spares(struct outq *q);

#endif
