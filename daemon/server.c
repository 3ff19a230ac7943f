/* The listener and the connections. Every connection is freed by the reaper
 * event, never inside one of its own callbacks: a callback only marks it
 * dead.
 *
 * The socket is driven with plain events rather than a bufferevent, for
 * three measured reasons: libevent 2.1 reads at most 4 KiB per
 * evbuffer_read (plus a FIONREAD ioctl each time), a bufferevent arms and
 * disarms EV_WRITE (two epoll_ctl calls) on every request cycle, and it
 * hands the kernel one chain per write event. Here requests are read into
 * one contiguous buffer where the pre-scanner finds them and the unpacker
 * reads them in place (no copy); replies wait in the connection's outq
 * (in request order) and leave with one sendmsg at the end of the batch or
 * of the loop turn, once the I/O engine has read their payloads; EV_WRITE
 * is armed only while the socket is full.
 *
 * A loop turn: libevent runs the ready callbacks (reads, decoding, the
 * methods queueing reads and writes), then server_turn_end() submits the
 * whole turn's I/O at once and sends what completed. A get flows one way:
 * conn_read -> conn_next -> methods_call (decode, resolve, outq slot,
 * io_read) -> io_flush -> completion (rd_done: the slot is done) ->
 * conn_ready -> conn_resume -> outq_send. */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/listener.h>

#include "proto_codec.h"
#include "proto_scan.h"
#include "log.h"
#include "obuf.h"
#include "outq.h"

/* The input buffer's size when a connection starts, and what it shrinks
 * back to once a large message is done: 1024 idle clients then hold 16 MiB
 * of input buffers at most. */
#define CONN_IN_START (16u << 10)
/* Past this, an emptied input buffer is given back: at once if the
 * message that emptied it was small next to it, else after
 * CONN_IN_IDLE_MS without being needed (a stream of large pushes keeps
 * its buffer instead of mapping and faulting in a fresh one per message). */
#define CONN_IN_KEEP    (256u << 10)
#define CONN_IN_IDLE_MS 1000
/* A read is not attempted into less free space than this: the buffered
 * bytes move to the front, or the buffer grows. */
#define CONN_IN_MIN_READ (4u << 10)
/* Most bytes written to one socket per loop turn, so one client fetching
 * large payloads cannot starve the others. */
#define CONN_WRITE_MAX (4u << 20)
/* The packing buffer (the reply queue's tail) keeps its memory across
 * batches (fresh pages cost more than the copies they would save); past
 * CONN_SCRATCH_KEEP it is given back once idle for CONN_IN_IDLE_MS. */
#define CONN_SCRATCH_KEEP (256u << 10)
/* The unpacking zone's first chunk. msgpack_zone_clear() frees every chunk
 * but that first one, so one big request does not pin its size for the
 * connection's life. */
#define CONN_ZONE_CHUNK 8192

/* Bytes read from the socket and not yet handled: [start, end) of p, of
 * which the pre-scanner has seen the first fed bytes. Owned by its
 * connection; p is NULL until the first read. */
struct conn_in {
    char *p;
    size_t cap;
    size_t start;
    size_t end;
    size_t fed;
};

struct conn {
    struct server *srv;
    struct conn *prev, *next; /* in srv->conns (every allocated connection) */
    struct conn *dead_next;   /* on srv->dead once killed */
    struct conn *ready_next;  /* on srv->ready while on_ready */
    uint64_t id;
    pid_t peer_pid;
    evutil_socket_t fd;      /* owned: closed by conn_free() */
    struct event *read_ev;   /* persistent; added while reading is wanted */
    struct event *write_ev;  /* persistent; added while out holds bytes the
                                socket did not take */
    struct event *more_ev;   /* zero-delay timer: resumes processing next turn */
    struct event *drain_ev;  /* bounds the wait for a closing connection's flush */
    struct event *shrink_ev; /* gives large idle input and packing buffers back */
    struct conn_in in;
    struct outq *q; /* replies, in order, until the socket takes them */
    struct proto_scan *scan;
    msgpack_zone zone;
    struct methods_out io;
    struct reg_owner *owner;
    uint64_t consumed;       /* input bytes fully handled since the connection began */
    uint64_t cutoff;         /* shutdown: messages starting before this are served */
    unsigned reading : 1;    /* read_ev is added */
    unsigned writing : 1;    /* write_ev is added */
    unsigned out_paused : 1; /* output above the high-water mark */
    unsigned backlog : 1;    /* a batch ended with input left: more_ev is active */
    unsigned eof : 1;        /* the peer will send nothing more */
    unsigned closing : 1;    /* flush the output, then close */
    unsigned dead : 1;       /* waiting for the reaper */
    unsigned on_ready : 1;   /* on srv->ready: a slot completed */
    unsigned mem_wait : 1;   /* paused: the daemon's reply memory is full */
};

struct server {
    struct event_base *base;
    const struct farenad_config *cfg; /* borrowed */
    struct reg *reg;
    struct methods *m;
    struct io *io;
    struct evconnlistener *lev;
    struct event *accept_ev;   /* re-enables the listener after EMFILE */
    struct event *reap_ev;     /* frees dead connections */
    struct event *shutdown_ev; /* bounds the shutdown drain */
    struct conn *conns;
    struct conn *dead;
    struct conn *ready; /* connections with a slot completed this turn */
    uint64_t out_total; /* reply bytes queued by every connection */
    int mem_waiters;    /* connections paused on out_total */
    uint64_t nconns;    /* allocated, dead ones included until reaped */
    uint64_t total;
    uint64_t next_id;
    int accept_paused;
    int shutting_down;
    time_t last_limit_log;  /* rate limits the max_clients warning */
    time_t last_accept_log; /* rate limits the accept-failure warning */
    uint64_t limit_refused;
};

static void conn_process(struct conn *c);
static void server_maybe_done(struct server *s);

/* Tells stat how many connections there are. */
static void server_publish_counts(struct server *s)
{
    methods_set_connections(s->m, s->nconns, s->total);
}

/* Marks c dead and queues it for the reaper; idempotent. Its events stop,
 * so no further callback can run for c. */
static void conn_kill(struct conn *c)
{
    struct server *s = c->srv;

    if (c->dead)
        return;
    c->dead = 1;
    event_del(c->read_ev);
    event_del(c->write_ev);
    c->reading = 0;
    c->writing = 0;
    event_del(c->more_ev);
    event_del(c->shrink_ev);
    if (c->drain_ev != NULL)
        event_del(c->drain_ev);
    c->dead_next = s->dead;
    s->dead = c;
    event_active(s->reap_ev, 0, 0);
}

/* The reply queue's callback: a slot of c completed (on the loop thread,
 * from an engine completion). Sending waits for server_turn_end(), so one
 * send covers every slot that completed in the turn. */
static void conn_ready(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->srv;

    if (!c->on_ready) {
        c->on_ready = 1;
        c->ready_next = s->ready;
        s->ready = c;
    }
}

/* Frees what conn_new() allocated; every member may be missing. */
static void conn_release(struct conn *c)
{
    if (c->read_ev != NULL)
        event_free(c->read_ev);
    if (c->write_ev != NULL)
        event_free(c->write_ev);
    if (c->more_ev != NULL)
        event_free(c->more_ev);
    if (c->drain_ev != NULL)
        event_free(c->drain_ev);
    if (c->shrink_ev != NULL)
        event_free(c->shrink_ev);
    /* Only once no slot waits (the reaper checks): the engine no longer
     * reads into the queue nor writes from the input buffer. */
    outq_free(c->q);
    free(c->in.p);
    proto_scan_free(c->scan);
    msgpack_zone_destroy(&c->zone);
    reg_owner_free(c->owner);
    free(c);
}

/* Frees a connection: its socket closes, its registry holdings drop. */
static void conn_free(struct conn *c)
{
    struct server *s = c->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    evutil_closesocket(c->fd);
    log_debug("connection %" PRIu64 " closed", c->id);
    conn_release(c);
}

/* The reaper: frees every connection killed since it last ran. */
static void server_reap(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;

    struct conn *keep = NULL;

    (void)fd;
    (void)what;
    while (s->dead != NULL) {
        struct conn *c = s->dead;
        s->dead = c->dead_next;
        if (outq_busy(c->q) > 0 || c->on_ready) {
            /* The engine still reads into its replies or writes from its
             * input: free it when the last slot completes (conn_ready
             * wakes this reaper again). */
            c->dead_next = keep;
            keep = c;
            continue;
        }
        conn_free(c);
    }
    s->dead = keep;
    server_publish_counts(s);
    /* A descriptor came free: try accepting again without waiting. */
    if (s->accept_paused && s->lev != NULL) {
        s->accept_paused = 0;
        event_del(s->accept_ev);
        evconnlistener_enable(s->lev);
    }
    server_maybe_done(s);
}

/* The reply memory is at its bound: every connection gives back the large
 * buffers it keeps for reuse before anyone waits. */
static void server_trim_spares(struct server *s)
{
    for (struct conn *c = s->conns; c != NULL; c = c->next)
        outq_trim_spares(c->q);
}

/* Resumes c's processing on a later loop turn. A zero-delay timer rather
 * than event_active(): libevent runs events activated during a turn in that
 * same turn, so only a timer makes the loop poll the other sockets before
 * c's next batch. */
static void conn_schedule(struct conn *c)
{
    static const struct timeval now = {0, 0};

    evtimer_add(c->more_ev, &now);
}

/* Bytes of replies not yet on the socket. */
static size_t conn_pending(const struct conn *c)
{
    return (size_t)outq_pending(c->q);
}

/* (Re)starts the countdown after which large idle buffers are given back. */
static void conn_shrink_later(struct conn *c)
{
    static const struct timeval idle = {CONN_IN_IDLE_MS / 1000, (CONN_IN_IDLE_MS % 1000) * 1000};

    evtimer_add(c->shrink_ev, &idle);
}

/* Writes what the socket takes of the replies that are ready, at most
 * CONN_WRITE_MAX bytes. Arms EV_WRITE while ready bytes remain (a reply
 * still waiting for the engine does not arm it: its completion sends).
 * Returns 0, or -1 when c was killed (socket error). */
static int conn_send(struct conn *c)
{
    long n = 0;
    int want;

    if (outq_sendable(c->q))
        n = outq_send(c->q, c->fd, CONN_WRITE_MAX);
    if (n < 0) {
        if (errno == EIO)
            log_err("connection %" PRIu64 ": a payload's file ended early (changed behind the "
                    "daemon's back) while it was sent; closing the connection",
                    c->id);
        else
            log_debug("connection %" PRIu64 ": send: %s", c->id, strerror(errno));
        conn_kill(c);
        return -1;
    }
    if (n > 0 && outq_pending(c->q) == 0) {
        /* Large idle buffers go back after CONN_IN_IDLE_MS; the common
         * small batch arms no timer. */
        if (outq_trimmable(c->q, CONN_SCRATCH_KEEP))
            conn_shrink_later(c);
        if (c->mem_wait && !c->dead) {
            c->mem_wait = 0;
            c->backlog = 1;
            conn_schedule(c);
        }
    }
    want = outq_sendable(c->q);
    if (want && !c->writing)
        event_add(c->write_ev, NULL);
    else if (!want && c->writing)
        event_del(c->write_ev);
    c->writing = (unsigned)want;
    return 0;
}

/* Enables or disables reading to match c's state. */
static void conn_update_read(struct conn *c)
{
    int want = !c->dead && !c->closing && !c->eof && !c->out_paused && !c->backlog &&
               !c->mem_wait && !outq_blocked(c->q);

    if (want && !c->reading)
        event_add(c->read_ev, NULL);
    else if (!want && c->reading)
        event_del(c->read_ev);
    c->reading = (unsigned)want;
}

/* Gives up waiting for a closing connection's peer to read its replies. */
static void conn_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    log_debug("connection %" PRIu64 ": replies not read in time; closing", c->id);
    conn_kill(c);
}

/* Stops reading and closes c once its output is flushed (bounded wait). */
static void conn_close_after_flush(struct conn *c)
{
    struct timeval tv = {SERVER_DRAIN_SECONDS, 0};

    if (c->dead || c->closing)
        return;
    c->closing = 1;
    conn_update_read(c);
    if (conn_send(c) < 0)
        return;
    if (conn_pending(c) == 0) {
        conn_kill(c);
        return;
    }
    c->drain_ev = evtimer_new(c->srv->base, conn_drain_timeout, c);
    if (c->drain_ev == NULL || evtimer_add(c->drain_ev, &tv) < 0)
        conn_kill(c);
}

/* The stream cannot be trusted any more: answer the current request if its
 * msgid is known, then close. */
static void conn_reject(struct conn *c, const char *what, const char *why,
                        enum proto_err reject_code)
{
    uint32_t msgid;

    log_info("connection %" PRIu64 ": %s (%s); closing it", c->id, what, why ? why : "?");
    if (proto_scan_msgid(c->scan, &msgid)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s: %s", what, why ? why : "malformed");
        if (methods_error(&c->io, msgid, reject_code, msg, -1) < 0) {
            conn_kill(c);
            return;
        }
    }
    conn_close_after_flush(c);
}

/* Makes room for a read of at least CONN_IN_MIN_READ bytes: the unhandled
 * bytes move to the front when that frees at least as much as it moves (or
 * the buffer is at its cap), else the buffer doubles, up to max_message +
 * CONN_IN_MIN_READ. That cap always leaves room: reading stops while whole
 * messages wait, so the unhandled bytes are one incomplete message, which
 * the pre-scanner keeps within max_message. Returns 0 or -1 (out of
 * memory). */
static int conn_in_room(struct conn *c)
{
    struct conn_in *in = &c->in;
    size_t used = in->end - in->start;
    size_t limit = (size_t)c->srv->cfg->limits.max_message + CONN_IN_MIN_READ;
    size_t ncap;
    char *np;

    if (in->cap - in->end >= CONN_IN_MIN_READ)
        return 0;
    if (in->start > 0 && (in->start >= used || in->cap >= limit)) {
        memmove(in->p, in->p + in->start, used);
        in->start = 0;
        in->end = used;
        if (in->cap - in->end >= CONN_IN_MIN_READ)
            return 0;
    }
    ncap = in->cap != 0 ? in->cap * 2 : CONN_IN_START;
    if (ncap > limit)
        ncap = limit > in->cap ? limit : in->cap + CONN_IN_MIN_READ;
    np = realloc(in->p, ncap);
    if (np == NULL)
        return -1;
    in->p = np;
    in->cap = ncap;
    return 0;
}

/* Reads what the socket has, as far as the buffer's free space goes.
 * Returns 0 (bytes, end of stream or nothing yet), or -1 when c was killed
 * (socket error, out of memory). */
static int conn_read(struct conn *c)
{
    struct conn_in *in = &c->in;
    ssize_t n;

    if (conn_in_room(c) < 0) {
        log_err("connection %" PRIu64 ": out of memory for its input; closing it", c->id);
        conn_kill(c);
        return -1;
    }
    n = recv(c->fd, in->p + in->end, in->cap - in->end, MSG_DONTWAIT);
    if (n > 0) {
        in->end += (size_t)n;
        return 0;
    }
    if (n == 0) {
        c->eof = 1; /* requests already received are still answered */
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    log_debug("connection %" PRIu64 ": %s", c->id, strerror(errno));
    conn_kill(c);
    return -1;
}

/* Feeds the unseen buffered bytes to the scanner. Returns 1 when a whole
 * message starts at in.start (its length is proto_scan_total()), 0 when
 * more bytes are needed, -1 when the stream was rejected (handled). */
static int conn_scan(struct conn *c)
{
    struct conn_in *in = &c->in;
    size_t avail = in->end - in->start - in->fed;
    size_t used = 0;
    const char *why = NULL;
    enum proto_scan_status st;

    if (avail == 0)
        return 0;
    st = proto_scan_feed(c->scan, in->p + in->start + in->fed, avail, &used, &why);
    in->fed += used;
    if (st == PROTO_SCAN_READY)
        return 1;
    if (st == PROTO_SCAN_REJECT) {
        conn_reject(c, "rejected a message", why, proto_scan_reject_code(c->scan));
        return -1;
    }
    return 0;
}

/* Frees the input buffer if it is large and empty, and no write in flight
 * reads a payload from it. */
static void conn_in_shrink(struct conn *c)
{
    struct conn_in *in = &c->in;

    if (in->cap > CONN_IN_KEEP && in->start == in->end && !outq_blocked(c->q)) {
        free(in->p);
        in->p = NULL;
        in->cap = 0;
        in->start = 0;
        in->end = 0;
    }
}

/* The large buffers were not needed for CONN_IN_IDLE_MS: give them back. */
static void conn_shrink_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    conn_in_shrink(c);
    if (!c->dead)
        outq_trim(c->q, CONN_SCRATCH_KEEP);
}

/* Forgets the current message's bytes and unpacked objects. */
static void conn_message_done(struct conn *c, size_t len)
{
    struct conn_in *in = &c->in;

    in->start += len;
    in->fed = 0;
    if (in->start == in->end) {
        in->start = 0;
        in->end = 0;
        if (in->cap > CONN_IN_KEEP) {
            if (len < in->cap / 4)
                conn_in_shrink(c);
            else
                conn_shrink_later(c);
        }
    }
    c->consumed += len;
    proto_scan_reset(c->scan);
    /* Clearing, never destroy + init: an init that fails for want of
     * memory would leave the zone pointing at freed chunks. */
    msgpack_zone_clear(&c->zone);
}

/* Executes an unpacked message. */
static void conn_dispatch(struct conn *c, const msgpack_object *obj)
{
    struct server *s = c->srv;
    struct proto_request req;
    const char *why = NULL;
    int shutting;

    memset(&req, 0, sizeof(req));
    if (proto_request_decode(obj, &req, &why) < 0) {
        /* A request with a readable msgid gets its bad_request; a malformed
         * notification is only counted (never answered); both keep the
         * connection. */
        if (req.answerable || req.type == PROTO_NOTIFY) {
            if (methods_reject(s->m, &req, why, &c->io) < 0)
                conn_kill(c);
            return;
        }
        log_info("connection %" PRIu64 ": not a request (%s); closing it", c->id,
                 why != NULL ? why : "?");
        conn_close_after_flush(c);
        return;
    }
    shutting = s->shutting_down && c->consumed >= c->cutoff;
    if (methods_call(s->m, c->owner, &req, shutting, &c->io) < 0) {
        log_err("connection %" PRIu64 ": out of memory queueing a reply; closing it", c->id);
        conn_kill(c);
    }
}

/* Handles the next buffered message. Returns 1 if one was handled and c is
 * still open, 0 if no whole message is buffered, -1 if c is closing.
 *
 * A request that arrived whole is decoded in one pass, which also finds
 * its end (proto_unpack_prefix applies the scanner's limits); anything
 * else, a message split across reads included, is delimited by the
 * pre-scanner first, so hostile declared sizes are refused before their
 * bytes are awaited, and then unpacked. */
static int conn_next(struct conn *c)
{
    const char *p = c->in.p + c->in.start;
    const char *why = NULL;
    msgpack_object obj;
    size_t len = 0;
    int rc;

    if (c->in.fed == 0)
        len = proto_unpack_prefix(&c->zone, p, c->in.end - c->in.start, &c->srv->cfg->limits, &obj);
    if (len == 0) {
        rc = conn_scan(c);
        if (rc <= 0)
            return rc;
        len = proto_scan_total(c->scan);
        if (proto_unpack(&c->zone, p, len, &obj, &why) < 0) {
            conn_reject(c, "malformed message", why, PROTO_BAD_REQUEST);
            conn_message_done(c, len);
            return -1;
        }
    }
    conn_dispatch(c, &obj);
    conn_message_done(c, len);
    return c->dead || c->closing ? -1 : 1;
}

/* Whether a shutting-down connection has nothing left to do. */
static int conn_shutdown_done(const struct conn *c)
{
    return c->srv->shutting_down && c->consumed >= c->cutoff && conn_pending(c) == 0;
}

/* Handles up to SERVER_BATCH buffered requests, honouring back-pressure,
 * writes their replies, then decides whether to read more, yield, or
 * close. */
static void conn_process(struct conn *c)
{
    int rc = 0;

    if (c->dead || c->closing)
        return;
    c->backlog = 0;
    for (int n = 0;; n++) {
        if (outq_blocked(c->q))
            break; /* a write in flight: its completion resumes c */
        if (conn_pending(c) > SERVER_OUT_HIGH) {
            c->out_paused = 1;
            break;
        }
        if (c->srv->out_total > c->srv->cfg->reply_memory)
            server_trim_spares(c->srv);
        if (c->srv->out_total > c->srv->cfg->reply_memory && conn_pending(c) > 0) {
            /* The daemon's reply memory is at its bound: resume once the
             * sockets have taken enough (server_turn_end), or once this
             * connection's own replies are all out (conn_send). A
             * connection with nothing queued always runs one request, so
             * a client that reads its connections one after another never
             * waits for itself. */
            c->mem_wait = 1;
            c->srv->mem_waiters++;
            break;
        }
        if (n == SERVER_BATCH) {
            c->backlog = 1;
            conn_schedule(c);
            break;
        }
        rc = conn_next(c);
        if (rc <= 0)
            break;
    }
    if (c->dead || c->closing || conn_send(c) < 0)
        return;
    if (c->out_paused && conn_pending(c) <= SERVER_OUT_LOW) {
        /* The socket took it: carry on next turn. */
        c->out_paused = 0;
        c->backlog = 1;
        conn_schedule(c);
    }
    if (rc == 0 && !c->out_paused && !c->backlog && !c->mem_wait && !outq_blocked(c->q) &&
        outq_busy(c->q) == 0) {
        if (c->eof) {
            conn_close_after_flush(c);
            return;
        }
        if (conn_shutdown_done(c)) {
            conn_kill(c);
            return;
        }
    }
    conn_update_read(c);
}

/* The socket is readable (bytes, end of stream or an error). */
static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    /* A write in flight reads its payload from the input buffer: no read
     * may move or reuse it (reading is off then; this catches an event
     * that was already active). */
    if (c->dead || outq_blocked(c->q) || conn_read(c) < 0)
        return;
    conn_process(c);
}

/* The socket takes bytes again. */
static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (c->dead || conn_send(c) < 0)
        return;
    if (c->closing) {
        if (conn_pending(c) == 0)
            conn_kill(c);
        return;
    }
    if (c->out_paused && conn_pending(c) <= SERVER_OUT_LOW) {
        c->out_paused = 0;
        c->backlog = 1;
        conn_schedule(c);
        return;
    }
    if (conn_shutdown_done(c))
        conn_kill(c);
}

/* Resumes a connection after a yield or back-pressure. */
static void conn_more_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    conn_process(c);
}

/* Sets up a connection for an accepted socket. Returns 0 or -1 (the caller
 * closes fd). */
static int conn_new(struct server *s, evutil_socket_t fd, pid_t peer_pid)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -1;
    /* First: conn_release() destroys the zone, which must be initialised. */
    if (!msgpack_zone_init(&c->zone, CONN_ZONE_CHUNK)) {
        free(c);
        return -1;
    }
    c->srv = s;
    c->peer_pid = peer_pid;
    c->fd = fd;
    c->read_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
    c->write_ev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
    c->more_ev = evtimer_new(s->base, conn_more_cb, c);
    c->shrink_ev = evtimer_new(s->base, conn_shrink_cb, c);
    c->q = outq_new(conn_ready, c, &s->out_total);
    c->scan = proto_scan_new(&s->cfg->limits);
    c->owner = reg_owner_new(s->reg);
    if (c->read_ev == NULL || c->write_ev == NULL || c->more_ev == NULL || c->shrink_ev == NULL ||
        c->q == NULL || c->scan == NULL || c->owner == NULL ||
        evutil_make_socket_nonblocking(fd) < 0) {
        conn_release(c);
        return -1;
    }
    c->io.q = c->q;
    c->id = ++s->next_id;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->total++;
    server_publish_counts(s);
    conn_update_read(c);
    log_debug("connection %" PRIu64 " from pid %ld", c->id, (long)peer_pid);
    return 0;
}

/* After slots of c completed: send, and carry on where c had stopped
 * (closing, back-pressure, a write it waited for, end of stream or
 * shutdown). Processing resumes on the next turn, through more_ev, so what
 * it queues for the engine is submitted at that turn's end. */
static void conn_resume(struct conn *c)
{
    if (conn_send(c) < 0)
        return;
    if (c->closing) {
        if (conn_pending(c) == 0)
            conn_kill(c);
        return;
    }
    if (c->out_paused && conn_pending(c) <= SERVER_OUT_LOW)
        c->out_paused = 0;
    else if (c->out_paused)
        return;
    if (outq_blocked(c->q))
        return; /* still waiting for a write */
    if (!c->backlog && (c->eof || c->srv->shutting_down || c->in.end > c->in.start)) {
        c->backlog = 1;
        conn_schedule(c);
        return;
    }
    conn_update_read(c);
}

/* Ends a loop turn; see server.h. */
void server_turn_end(struct server *s)
{
    io_flush(s->io);
    while (s->ready != NULL) {
        struct conn *c = s->ready;

        s->ready = c->ready_next;
        c->on_ready = 0;
        if (c->dead) {
            event_active(s->reap_ev, 0, 0);
            continue;
        }
        conn_resume(c);
    }
    if (s->mem_waiters > 0 && s->out_total <= s->cfg->reply_memory / 4 * 3) {
        s->mem_waiters = 0;
        for (struct conn *c = s->conns; c != NULL; c = c->next) {
            if (!c->mem_wait)
                continue;
            c->mem_wait = 0;
            if (!c->dead && !c->backlog) {
                c->backlog = 1;
                conn_schedule(c);
            }
        }
    }
}

/* Answers a client over max_clients with one error and closes it. The
 * socket is fresh, so its send buffer has room for the few bytes. */
static void server_refuse_limit(struct server *s, evutil_socket_t fd)
{
    struct obuf b = {0};
    msgpack_packer pk;
    time_t now = time(NULL);

    obuf_packer(&b, &pk);
    proto_pack_error(&pk, 0, PROTO_LIMIT, "too many clients");
    if (!b.failed)
        (void)send(fd, b.p, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    obuf_fini(&b);
    s->limit_refused++;
    if (now - s->last_limit_log >= 10) {
        log_warn("refused %" PRIu64 " connection(s): max_clients (%" PRIu32 ") reached",
                 s->limit_refused, s->cfg->max_clients);
        s->last_limit_log = now;
        s->limit_refused = 0;
    }
}

/* A new connection: check the peer's uid and the client cap. */
static void server_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                             int socklen, void *arg)
{
    struct server *s = arg;
    struct ucred cred;
    socklen_t clen = sizeof(cred);

    (void)lev;
    (void)sa;
    (void)socklen;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        log_warn("SO_PEERCRED: %s; closing the connection", strerror(errno));
        evutil_closesocket(fd);
        return;
    }
    if (cred.uid != geteuid()) {
        log_warn("refused a connection from uid %lu (pid %ld): not the daemon's uid",
                 (unsigned long)cred.uid, (long)cred.pid);
        evutil_closesocket(fd);
        return;
    }
    if (s->nconns >= s->cfg->max_clients) {
        server_refuse_limit(s, fd);
        evutil_closesocket(fd);
        return;
    }
    if (conn_new(s, fd, cred.pid) < 0) {
        log_err("out of memory for a new connection; closing it");
        evutil_closesocket(fd);
    }
}

/* Retries accepting after a pause. */
static void server_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;

    (void)fd;
    (void)what;
    if (s->accept_paused && s->lev != NULL) {
        s->accept_paused = 0;
        evconnlistener_enable(s->lev);
    }
}

/* accept() failed for a reason other than a transient one (typically EMFILE
 * or ENFILE): the pending connection stays queued, so accepting again at
 * once would fail again at once. Pause the listener instead of spinning. */
static void server_accept_error(struct evconnlistener *lev, void *arg)
{
    struct server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, SERVER_ACCEPT_PAUSE_MS * 1000};
    time_t now = time(NULL);

    if (now - s->last_accept_log >= 10) {
        log_warn("accept: %s; pausing new connections", strerror(err));
        s->last_accept_log = now;
    }
    evconnlistener_disable(lev);
    s->accept_paused = 1;
    evtimer_add(s->accept_ev, &tv);
}

/* Gives up on connections that did not drain in time. */
static void server_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;

    (void)fd;
    (void)what;
    log_warn("shutdown: %" PRIu64 " connection(s) did not finish in %d s; closing them", s->nconns,
             SERVER_DRAIN_SECONDS);
    for (struct conn *c = s->conns; c != NULL; c = c->next)
        conn_kill(c);
}

/* Ends the event loop once shutdown has nothing left to wait for. */
static void server_maybe_done(struct server *s)
{
    if (s->shutting_down && s->nconns == 0)
        event_base_loopexit(s->base, NULL);
}

/* Starts graceful shutdown; see server.h. */
void server_shutdown(struct server *s)
{
    struct timeval tv = {SERVER_DRAIN_SECONDS, 0};

    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    if (s->lev != NULL) {
        evconnlistener_free(s->lev);
        s->lev = NULL;
    }
    event_del(s->accept_ev);
    for (struct conn *c = s->conns; c != NULL; c = c->next) {
        if (c->dead)
            continue;
        c->cutoff = c->consumed + (c->in.end - c->in.start);
        if (!c->closing && !c->backlog) {
            c->backlog = 1;
            conn_schedule(c);
        }
    }
    evtimer_add(s->shutdown_ev, &tv);
    log_info("shutting down: %" PRIu64 " connection(s) to finish", s->nconns);
    server_maybe_done(s);
}

/* Whether shutdown began; see server.h. */
int server_shutting_down(const struct server *s)
{
    return s->shutting_down;
}

/* Creates the server; see server.h. */
struct server *server_new(struct event_base *base, int listen_fd, const struct farenad_config *cfg,
                          struct reg *reg, struct methods *m, struct io *io)
{
    struct server *s = calloc(1, sizeof(*s));
    int saved;

    if (s == NULL) {
        close(listen_fd);
        return NULL;
    }
    s->base = base;
    s->cfg = cfg;
    s->reg = reg;
    s->m = m;
    s->io = io;
    s->accept_ev = evtimer_new(base, server_accept_resume, s);
    s->reap_ev = event_new(base, -1, 0, server_reap, s);
    s->shutdown_ev = evtimer_new(base, server_shutdown_timeout, s);
    if (s->accept_ev != NULL && s->reap_ev != NULL && s->shutdown_ev != NULL)
        s->lev = evconnlistener_new(base, server_accept_cb, s,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd);
    if (s->lev == NULL) {
        saved = errno;
        close(listen_fd);
        server_free(s);
        errno = saved != 0 ? saved : ENOMEM;
        return NULL;
    }
    evconnlistener_set_error_cb(s->lev, server_accept_error);
    server_publish_counts(s);
    return s;
}

/* Closes everything; see server.h. */
void server_free(struct server *s)
{
    if (s == NULL)
        return;
    for (struct conn *c = s->conns; c != NULL; c = c->next)
        conn_kill(c);
    while (s->dead != NULL) {
        struct conn *c = s->dead;
        s->dead = c->dead_next;
        conn_free(c);
    }
    if (s->lev != NULL)
        evconnlistener_free(s->lev);
    if (s->accept_ev != NULL)
        event_free(s->accept_ev);
    if (s->reap_ev != NULL)
        event_free(s->reap_ev);
    if (s->shutdown_ev != NULL)
        event_free(s->shutdown_ev);
    free(s);
}
