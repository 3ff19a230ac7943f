/* The I/O engine: every byte the store moves between its scratch files and
 * memory goes through here, off the event loop's critical path.
 *
 * Callers queue positional reads and writes (pread/pwritev semantics: an
 * explicit offset, no shared file position, so any number of operations on
 * one file run at once). Nothing is issued while a loop turn decodes
 * requests: io_flush(), run once at the end of every turn, hands the whole
 * turn's queue to the kernel in one submission and runs the callbacks of
 * what completed at once (reads of cached pages). Operations that must wait
 * for the device stay in flight, up to the queue depth, and their
 * completions come back on the loop thread through an eventfd that
 * libevent watches.
 *
 * Two backends with one contract:
 * - io_uring (liburing): one io_uring_enter per turn for the whole batch;
 *   the kernel completes cached reads inline and waits for the device
 *   asynchronously.
 * - threads, the fallback where io_uring is unavailable (kernel sysctl,
 *   seccomp, old kernels) or forced: a read is first tried inline with
 *   preadv2(RWF_NOWAIT), which succeeds only when every byte is cached;
 *   whatever would block (cold reads, every write) goes to a small pool of
 *   threads doing plain pread/pwritev.
 *
 * Threading: every function here is called from the event-loop thread, and
 * every callback runs on it. */
#ifndef FARENA_DAEMON_IO_H
#define FARENA_DAEMON_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <event2/event.h>

#include "store.h"

/* Which backend to run. */
enum io_kind {
    IO_AUTO = 0, /* io_uring, else threads (logged) */
    IO_URING,    /* io_uring or fail start-up */
    IO_THREADS,  /* the thread-pool fallback */
};

/* Operations in flight at once, by default: enough to keep an NVMe device
 * busy (it needs tens of requests queued to reach its rated IOPS), small
 * next to the rings' memory (a few pages). */
#define IO_DEPTH_DEFAULT 256u
#define IO_DEPTH_MAX     4096u
/* Worker threads of the fallback backend. */
#define IO_THREADS_DEFAULT 16u

/* Plain configuration, copied by io_new(). */
struct io_config {
    enum io_kind kind;
    uint32_t depth; /* 0 = IO_DEPTH_DEFAULT; at most IO_DEPTH_MAX */
};

struct io; /* the engine */

/* Completion: res is the number of bytes moved (a read that met the end of
 * its file reports fewer than asked) or a negative errno value. Runs on the
 * loop thread, from io_flush() or the eventfd callback, never from inside
 * the io_read()/io_write() call that queued the operation. */
typedef void (*io_done_fn)(void *arg, ssize_t res);

/* Creates the engine on base. Returns NULL with a reason in err (errlen
 * bytes) when the requested backend cannot run. Freed with io_free(). */
struct io *io_new(struct event_base *base, const struct io_config *cfg, char *err, size_t errlen);

/* Waits for every operation in flight (their callbacks run), then frees the
 * engine. NULL is a no-op. */
void io_free(struct io *io);

/* "io_uring" or "threads": the backend that runs. Static string. */
const char *io_engine_name(const struct io *io);

/* The queue depth in force. */
uint32_t io_depth(const struct io *io);

/* Queues a read of len bytes at offset off of file f into dst. The engine
 * takes a reference on f until the callback has run, so the descriptor
 * stays open even if every arena holding f is freed meanwhile. dst belongs
 * to the caller, who must keep it valid, and not touch it, until cb runs.
 * Returns 0, or -1 when out of memory (nothing queued, cb never runs). */
int io_read(struct io *io, struct store_file *f, uint64_t off, void *dst, uint32_t len,
            io_done_fn cb, void *arg);

/* Queues a write of iov[0..n) at offset off of descriptor fd; short writes
 * continue until every byte is written or an error occurs (res is then
 * -errno, with an unknown prefix written). iov is copied; the bytes it
 * points at and fd belong to the caller and must stay valid until cb runs.
 * Returns 0 or -1 (out of memory; cb never runs). */
int io_write(struct io *io, int fd, uint64_t off, const struct iovec *iov, int n, io_done_fn cb,
             void *arg);

/* A pipe from the engine's pool. A payload spliced into it from a file
 * (io_splice) holds references to page-cache pages, not copies, and goes
 * on to a socket with splice(2): the daemon's memory never holds it. */
struct io_pipe;

/* Takes a pipe able to hold the bytes [off, off + len) of a file whole,
 * or returns NULL: the range is too long for a pipe (about 1 MiB; the
 * system's pipe-max-size), too many pipes are out, or the system refuses
 * one (descriptor or pipe-page limits). The caller owns the pipe until it
 * gives it back with io_pipe_put(); it may outlive the engine. */
struct io_pipe *io_pipe_get(struct io *io, uint64_t off, uint32_t len);

/* The pipe's read end (non-blocking), which the caller drains. */
int io_pipe_rfd(const struct io_pipe *p);

/* Gives p back: kept for reuse if drained is set (the pipe is empty),
 * closed otherwise. NULL is a no-op. */
void io_pipe_put(struct io_pipe *p, int drained);

/* Queues a splice of len bytes at offset off of file f into pipe p, which
 * must be empty and come from io_pipe_get(io, off, len). The read waits
 * for the device in the kernel's workers (or the pool's threads), never on
 * the loop. f is referenced and p must stay with the caller until cb
 * runs; res is as for io_read (fewer bytes than len: the file ended).
 * Returns 0, or -1 when out of memory (nothing queued, cb never runs). */
int io_splice(struct io *io, struct store_file *f, uint64_t off, struct io_pipe *p, uint32_t len,
              io_done_fn cb, void *arg);

/* Hands everything queued to the kernel (one submission) and runs the
 * callbacks of what completed at once. Call at the end of every loop turn;
 * callbacks may queue more, which the same call submits. */
void io_flush(struct io *io);

/* Whether every page of [off, off + len) of f is in the page cache now
 * (cachestat(2), Linux 6.5; 0 where the kernel lacks it). A reply whose
 * pages are all cached can go to the socket with sendfile without waiting
 * for the device; anything else is read through the engine. Two system
 * calls (fstat, cachestat). */
int io_cached(const struct store_file *f, uint64_t off, uint64_t len);

#endif
