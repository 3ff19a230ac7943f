/* The listener and the connections. Every connection is freed by the reaper
 * event, never inside one of its own callbacks: a callback only marks it
 * dead. Requests are found by the pre-scanner in the input evbuffer in
 * place; a message is pulled up into contiguous memory only once complete. */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "../proto/codec.h"
#include "../proto/scan.h"
#include "log.h"
#include "obuf.h"

/* Most bytes read from one socket per read event. */
#define CONN_READ_MAX (64u << 10)
/* Most bytes one write event hands to the kernel. */
#define CONN_WRITE_MAX (4u << 20)
/* The unpacking zone's first chunk. msgpack_zone_clear() frees every chunk
 * but that first one, so one big request does not pin its size for the
 * connection's life. */
#define CONN_ZONE_CHUNK 8192

struct conn {
    struct server *srv;
    struct conn *prev, *next; /* in srv->conns (every allocated connection) */
    struct conn *dead_next;   /* on srv->dead once killed */
    uint64_t id;
    pid_t peer_pid;
    struct bufferevent *bev;
    struct event *more_ev;  /* zero-delay timer: resumes processing next turn */
    struct event *drain_ev; /* bounds the wait for a closing connection's flush */
    struct proto_scan *scan;
    msgpack_zone zone;
    struct obuf scratch;
    struct evbuffer *tmp;
    struct methods_out io;
    struct reg_owner *owner;
    struct evbuffer *msg;    /* the current message's bytes the scanner has seen,
                                moved out of the input so each byte is walked once */
    uint64_t consumed;       /* input bytes fully handled since the connection began */
    uint64_t cutoff;         /* shutdown: messages starting before this are served */
    unsigned reading : 1;    /* EV_READ is enabled */
    unsigned out_paused : 1; /* output above the high-water mark */
    unsigned backlog : 1;    /* a batch ended with input left: more_ev is active */
    unsigned eof : 1;        /* the peer will send nothing more */
    unsigned closing : 1;    /* flush the output, then close */
    unsigned dead : 1;       /* waiting for the reaper */
};

struct server {
    struct event_base *base;
    struct server_config cfg;
    struct reg *reg;
    struct methods *m;
    struct evconnlistener *lev;
    struct event *accept_ev;   /* re-enables the listener after EMFILE */
    struct event *reap_ev;     /* frees dead connections */
    struct event *shutdown_ev; /* bounds the shutdown drain */
    struct conn *conns;
    struct conn *dead;
    uint64_t nconns; /* allocated, dead ones included until reaped */
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

/* Marks c dead and queues it for the reaper; idempotent. The bufferevent
 * stops so no further callback can run for c. */
static void conn_kill(struct conn *c)
{
    struct server *s = c->srv;

    if (c->dead)
        return;
    c->dead = 1;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_del(c->more_ev);
    if (c->drain_ev != NULL)
        event_del(c->drain_ev);
    c->dead_next = s->dead;
    s->dead = c;
    event_active(s->reap_ev, 0, 0);
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
    /* libevent finishes freeing the bufferevent from its loop (or from
     * event_base_free); that also releases any sendfile segment still
     * queued, and with it that segment's arena reference. */
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    bufferevent_free(c->bev);
    event_free(c->more_ev);
    if (c->drain_ev != NULL)
        event_free(c->drain_ev);
    evbuffer_free(c->tmp);
    if (c->msg != NULL)
        evbuffer_free(c->msg);
    proto_scan_free(c->scan);
    msgpack_zone_destroy(&c->zone);
    obuf_fini(&c->scratch);
    reg_owner_free(c->owner);
    log_debug("connection %" PRIu64 " closed", c->id);
    free(c);
}

/* The reaper: frees every connection killed since it last ran. */
static void server_reap(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;

    (void)fd;
    (void)what;
    while (s->dead != NULL) {
        struct conn *c = s->dead;
        s->dead = c->dead_next;
        conn_free(c);
    }
    server_publish_counts(s);
    /* A descriptor came free: try accepting again without waiting. */
    if (s->accept_paused && s->lev != NULL) {
        s->accept_paused = 0;
        event_del(s->accept_ev);
        evconnlistener_enable(s->lev);
    }
    server_maybe_done(s);
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

/* Moves the packed responses to the output; a failure breaks the stream. */
static int conn_flush_scratch(struct conn *c)
{
    if (obuf_flush(&c->scratch, bufferevent_get_output(c->bev)) < 0) {
        log_err("connection %" PRIu64 ": out of memory queueing replies; closing it", c->id);
        conn_kill(c);
        return -1;
    }
    return 0;
}

/* Enables or disables reading to match c's state. */
static void conn_update_read(struct conn *c)
{
    int want = !c->dead && !c->closing && !c->eof && !c->out_paused && !c->backlog;

    if (want && !c->reading)
        bufferevent_enable(c->bev, EV_READ);
    else if (!want && c->reading)
        bufferevent_disable(c->bev, EV_READ);
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
    if (conn_flush_scratch(c) < 0)
        return;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
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
        if (methods_error(&c->io, msgid, reject_code, msg) < 0) {
            conn_kill(c);
            return;
        }
    }
    conn_close_after_flush(c);
}

/* Feeds the input's bytes to the scanner and moves them into c->msg, so a
 * large message arriving in many reads is walked once (re-seeking an offset
 * in the input walked its chain list from the start on every read, which
 * made large requests quadratic). Returns 1 when a whole message is in
 * c->msg (its length is proto_scan_total()), 0 when more bytes are needed,
 * -1 when the stream was rejected or memory ran out (handled). */
static int conn_scan(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_iovec vec[16];
    const char *why = NULL;

    for (;;) {
        size_t moved = 0;
        int ready = 0;
        int n = evbuffer_peek(in, -1, NULL, vec, 16);

        if (n <= 0)
            return 0;
        if (n > 16)
            n = 16;
        for (int i = 0; i < n && !ready; i++) {
            size_t used = 0;
            enum proto_scan_status st =
                proto_scan_feed(c->scan, vec[i].iov_base, vec[i].iov_len, &used, &why);
            moved += used;
            if (st == PROTO_SCAN_READY)
                ready = 1;
            if (st == PROTO_SCAN_REJECT) {
                conn_reject(c, "rejected a message", why, proto_scan_reject_code(c->scan));
                return -1;
            }
        }
        if (moved > 0 && evbuffer_remove_buffer(in, c->msg, moved) != (int)moved) {
            log_err("connection %" PRIu64 ": out of memory buffering a message; closing it", c->id);
            conn_kill(c);
            return -1;
        }
        if (ready)
            return 1;
        if (evbuffer_get_length(in) == 0)
            return 0;
    }
}

/* Forgets the current message's bytes and unpacked objects. */
static void conn_message_done(struct conn *c, size_t len)
{
    evbuffer_drain(c->msg, len);
    c->consumed += len;
    proto_scan_reset(c->scan);
    /* Clearing, never destroy + init: an init that fails for want of
     * memory would leave the zone pointing at freed chunks. */
    msgpack_zone_clear(&c->zone);
}

/* Decodes and executes the complete message of len bytes at p. */
static void conn_dispatch(struct conn *c, const void *p, size_t len)
{
    struct server *s = c->srv;
    struct proto_request req;
    msgpack_object obj;
    const char *why = NULL;
    int shutting;

    if (proto_unpack(&c->zone, p, len, &obj, &why) < 0) {
        conn_reject(c, "malformed message", why, PROTO_BAD_REQUEST);
        return;
    }
    memset(&req, 0, sizeof(req));
    if (proto_request_decode(&obj, &req, &why) < 0) {
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
 * still open, 0 if no whole message is buffered, -1 if c is closing. */
static int conn_next(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len;
    unsigned char *p;
    int rc = conn_scan(c, in);

    if (rc <= 0)
        return rc;
    len = proto_scan_total(c->scan);
    p = evbuffer_pullup(c->msg, (ev_ssize_t)len);
    if (p == NULL) {
        log_err("connection %" PRIu64 ": out of memory for a %zu-byte message; closing it", c->id,
                len);
        conn_kill(c);
        return -1;
    }
    conn_dispatch(c, p, len);
    conn_message_done(c, len);
    return c->dead || c->closing ? -1 : 1;
}

/* Whether a shutting-down connection has nothing left to do. */
static int conn_shutdown_done(const struct conn *c)
{
    return c->srv->shutting_down && c->consumed >= c->cutoff && c->scratch.len == 0 &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

/* Handles up to SERVER_BATCH buffered requests, honouring back-pressure,
 * then decides whether to read more, yield, or close. */
static void conn_process(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = 0;

    if (c->dead || c->closing)
        return;
    c->backlog = 0;
    for (int n = 0;; n++) {
        if (evbuffer_get_length(out) + c->scratch.len > SERVER_OUT_HIGH) {
            c->out_paused = 1;
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
    if (c->dead || conn_flush_scratch(c) < 0)
        return;
    if (c->closing)
        return;
    if (rc == 0 && !c->out_paused && !c->backlog) {
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

/* New bytes arrived. */
static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

/* The output drained to the low-water mark (or below). */
static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    size_t pending = evbuffer_get_length(bufferevent_get_output(bev));

    if (c->dead)
        return;
    if (c->closing) {
        if (pending == 0)
            conn_kill(c);
        return;
    }
    if (c->out_paused && pending <= SERVER_OUT_LOW) {
        c->out_paused = 0;
        c->backlog = 1;
        conn_schedule(c);
        return;
    }
    if (conn_shutdown_done(c))
        conn_kill(c);
}

/* End of stream or a socket error. */
static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (c->dead)
        return;
    if (what & BEV_EVENT_ERROR) {
        log_debug("connection %" PRIu64 ": %s", c->id, strerror(EVUTIL_SOCKET_ERROR()));
        conn_kill(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* Requests already received are still answered. */
        c->eof = 1;
        if (c->backlog || c->out_paused) {
            conn_update_read(c);
            return;
        }
        conn_process(c);
    }
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
    c->srv = s;
    c->peer_pid = peer_pid;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->more_ev = evtimer_new(s->base, conn_more_cb, c);
    c->tmp = evbuffer_new();
    c->msg = evbuffer_new();
    c->scan = proto_scan_new(&s->cfg.limits);
    c->owner = reg_owner_new(s->reg);
    if (c->bev == NULL || c->more_ev == NULL || c->tmp == NULL || c->msg == NULL ||
        c->scan == NULL || c->owner == NULL || !msgpack_zone_init(&c->zone, CONN_ZONE_CHUNK)) {
        if (c->bev != NULL) {
            /* The caller closes fd: do not let the bufferevent close it too. */
            bufferevent_setfd(c->bev, -1);
            bufferevent_free(c->bev);
        }
        if (c->more_ev != NULL)
            event_free(c->more_ev);
        if (c->tmp != NULL)
            evbuffer_free(c->tmp);
        if (c->msg != NULL)
            evbuffer_free(c->msg);
        proto_scan_free(c->scan);
        reg_owner_free(c->owner);
        free(c);
        return -1;
    }
    evbuffer_set_flags(c->tmp, EVBUFFER_FLAG_DRAINS_TO_FD);
    c->io.scratch = &c->scratch;
    c->io.out = bufferevent_get_output(c->bev);
    c->io.tmp = c->tmp;
    c->id = ++s->next_id;
    bufferevent_set_max_single_read(c->bev, CONN_READ_MAX);
    /* libevent's default (16 KiB per write) costs one writev and one loop
     * turn per 16 KiB of a large reply. */
    bufferevent_set_max_single_write(c->bev, CONN_WRITE_MAX);
    bufferevent_setwatermark(c->bev, EV_WRITE, SERVER_OUT_LOW, 0);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_WRITE);
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
                 s->limit_refused, s->cfg.max_clients);
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
    if (s->nconns >= s->cfg.max_clients) {
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
        c->cutoff = c->consumed + evbuffer_get_length(c->msg) +
                    evbuffer_get_length(bufferevent_get_input(c->bev));
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
struct server *server_new(struct event_base *base, int listen_fd, const struct server_config *cfg,
                          struct reg *reg, struct methods *m)
{
    struct server *s = calloc(1, sizeof(*s));
    int saved;

    if (s == NULL) {
        close(listen_fd);
        return NULL;
    }
    s->base = base;
    s->cfg = *cfg;
    s->reg = reg;
    s->m = m;
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
