/* The measurement engine: C connections, P requests in flight on each, one
 * thread, epoll. It knows nothing of the protocols: a driver encodes requests
 * and parses replies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench.h"

/* Most latency samples kept per measurement. */
#define LAT_MAX (1u << 20)
/* Bytes asked of each read(). */
#define READ_CHUNK (256u << 10)
/* Longest warm-up: past it the window opens even if a pipeline has not
 * turned over yet. */
#define WARM_MAX_NS (5ull * 1000000000ull)
/* How long in-flight requests may take to drain after the window. */
#define DRAIN_NS (60ull * 1000000000ull)

/* Sets or clears O_NONBLOCK. */
static int set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl);
}

/* Queues one request for idx[0..n) and records its slot. */
static void conn_issue(struct bconn *c, const uint32_t *idx, uint32_t n)
{
    uint32_t pos = (c->slot_head + c->inflight) % BENCH_MAX_DEPTH;
    c->slot[pos].id = c->next_id;
    c->slot[pos].t0 = now_ns();
    c->slot[pos].n = n;
    c->tp->encode(c, idx, n);
    c->next_id++;
    c->inflight++;
}

/* Retires the slot of msgid (UINT32_MAX: the oldest). Returns its start
 * time, or 0 when no request has that id. */
static uint64_t conn_retire(struct bconn *c, uint32_t msgid)
{
    if (c->inflight == 0)
        return 0;
    uint32_t head = c->slot_head;
    if (msgid != UINT32_MAX && c->slot[head].id != msgid) {
        uint32_t k;
        for (k = 1; k < c->inflight; k++) {
            uint32_t pos = (head + k) % BENCH_MAX_DEPTH;
            if (c->slot[pos].id == msgid) {
                /* Replies may come out of order: move the oldest into the
                 * answered slot so the ring stays dense. */
                uint64_t t0 = c->slot[pos].t0;
                c->slot[pos] = c->slot[head];
                c->slot[head].t0 = t0;
                break;
            }
        }
        if (k == c->inflight)
            return 0;
    }
    uint64_t t0 = c->slot[head].t0;
    c->slot_head = (head + 1) % BENCH_MAX_DEPTH;
    c->inflight--;
    return t0;
}

/* Blocking read of at least one more byte. */
int conn_read_more(struct bconn *c)
{
    size_t want = READ_CHUNK;
    size_t avail = c->in.wr - c->in.rd;
    if (c->need > avail && c->need - avail > want)
        want = c->need - avail;
    if (ibuf_reserve(&c->in, want) < 0) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        ssize_t r = read(c->fd, c->in.buf + c->in.wr, c->in.cap - c->in.wr);
        if (r > 0) {
            c->in.wr += (size_t)r;
            return 0;
        }
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

/* Synchronous request: queue, flush, wait for its reply. */
int engine_call(struct bconn *c, const uint32_t *idx, uint32_t n, char *err, size_t errlen)
{
    conn_issue(c, idx, n);
    if (c->out.oom) {
        snprintf(err, errlen, "out of memory encoding a request");
        return -1;
    }
    while (c->out.pending > 0) {
        if (obuf_flush(&c->out, c->fd) < 0) {
            snprintf(err, errlen, "write: %s", strerror(errno));
            return -1;
        }
    }
    for (;;) {
        uint32_t msgid = UINT32_MAX;
        int rc = 0;
        if (c->in.wr - c->in.rd >= c->need && c->in.wr > c->in.rd)
            rc = c->tp->parse(c, &msgid, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            c->need = 0;
            conn_retire(c, msgid);
            return 0;
        }
        if (conn_read_more(c) < 0) {
            snprintf(err, errlen, "read: %s", strerror(errno));
            return -1;
        }
    }
}

/* Fills idx with n item numbers: the next ones of the group's order, or
 * uniform picks below nkeys. Returns 0, or -1 when the order has run out
 * (nothing is picked then). */
static int pick(struct bconn *c, uint32_t *idx, uint32_t n)
{
    struct bench_group *g = c->grp;
    if (g && g->perm) {
        if (g->nperm - g->perm_next < n)
            return -1;
        for (uint32_t i = 0; i < n; i++)
            idx[i] = g->perm[g->perm_next++];
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        idx[i] = (uint32_t)(rng_next(&c->rng) % c->nkeys);
    return 0;
}

/* Compares two u32 (qsort). */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* State of one measurement. */
struct run {
    struct bench_group *g;
    int ng;
    int measuring, stopping;
    int exhausted; /* a group's order ran out: close the window */
    uint64_t t_start, t_end;
    uint64_t warm_done; /* replies seen during the warm-up */
    uint64_t all;       /* replies over the whole run */
    int failed;
    char err[160];
};

/* Handles one completed reply. */
static void on_reply(struct run *run, struct bconn *c, uint32_t msgid, uint64_t now)
{
    uint64_t t0 = conn_retire(c, msgid);
    if (t0 == 0) {
        run->failed = 1;
        snprintf(run->err, sizeof run->err, "%s: reply to an unknown request %u", c->tp->name,
                 msgid);
        return;
    }
    run->all++;
    if (!run->measuring)
        run->warm_done++;
    if (run->measuring && !run->stopping) {
        struct bench_group *g = c->grp;
        g->res.reqs++;
        if (g->nlat < LAT_MAX) {
            uint64_t d = now - t0;
            g->lat[g->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        }
    }
}

/* Issues the next request of c, unless the window is closing or its
 * group's order has run out. */
static void conn_next(struct run *run, struct bconn *c, uint32_t *idx)
{
    if (run->stopping)
        return;
    if (pick(c, idx, c->cell->batch) < 0) {
        run->exhausted = 1;
        return;
    }
    conn_issue(c, idx, c->cell->batch);
}

/* Reads what is there and handles every complete reply. Returns 0 or -1. */
static int conn_on_readable(struct run *run, struct bconn *c, uint32_t *idx)
{
    for (int rounds = 0; rounds < 4; rounds++) {
        size_t want = READ_CHUNK;
        size_t avail = c->in.wr - c->in.rd;
        if (c->need > avail && c->need - avail > want)
            want = c->need - avail;
        if (ibuf_reserve(&c->in, want) < 0) {
            snprintf(run->err, sizeof run->err, "out of memory reading");
            return -1;
        }
        size_t room = c->in.cap - c->in.wr;
        ssize_t r = read(c->fd, c->in.buf + c->in.wr, room);
        if (r == 0) {
            snprintf(run->err, sizeof run->err, "%s: server closed the connection", c->tp->name);
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            snprintf(run->err, sizeof run->err, "%s: read: %s", c->tp->name, strerror(errno));
            return -1;
        }
        c->in.wr += (size_t)r;
        uint64_t now = 0;
        while (c->in.wr - c->in.rd >= c->need && c->in.wr > c->in.rd) {
            uint32_t msgid = UINT32_MAX;
            int rc = c->tp->parse(c, &msgid, run->err, sizeof run->err);
            if (rc < 0)
                return -1;
            if (rc == 0)
                break;
            c->need = 0;
            if (!now)
                now = now_ns();
            on_reply(run, c, msgid, now);
            if (run->failed)
                return -1;
            conn_next(run, c, idx);
        }
        if (c->in.rd == c->in.wr)
            c->in.rd = c->in.wr = 0;
        if ((size_t)r < room)
            return 0;
    }
    return 0;
}

/* Opens one connection and runs the driver's setup. */
static int conn_open(struct bconn *c, const struct tproto *tp, const char *sock,
                     const struct bench_cell *cell, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->tp = tp;
    c->cell = cell;
    c->sock = sock;
    c->next_id = 1;
    c->fd = unix_connect(sock);
    if (c->fd < 0) {
        snprintf(err, errlen, "%s: connect %s: %s", tp->name, sock, strerror(errno));
        return -1;
    }
    if (tp->setup(c, err, errlen) < 0) {
        close(c->fd);
        c->fd = -1;
        if (tp->teardown)
            tp->teardown(c);
        obuf_free(&c->out);
        ibuf_free(&c->in);
        return -1;
    }
    return 0;
}

/* Tears a connection down (blocking) and frees it. */
static void conn_close(struct bconn *c)
{
    if (c->fd >= 0) {
        set_nonblock(c->fd, 0);
        if (c->tp->teardown)
            c->tp->teardown(c);
        close(c->fd);
        c->fd = -1;
    } else if (c->tp->teardown) {
        c->tp->teardown(c);
    }
    obuf_free(&c->out);
    ibuf_free(&c->in);
}

/* Opens a control connection (public wrapper). */
int engine_open(struct bconn *c, const struct tproto *tp, const char *sock,
                const struct bench_cell *cell, char *err, size_t errlen)
{
    return conn_open(c, tp, sock, cell, err, errlen);
}

/* Closes a control connection. */
void engine_close(struct bconn *c)
{
    conn_close(c);
}

/* Updates c's epoll interest to match whether output is pending. */
static int conn_arm(int ep, struct bconn *c, int *armed_out)
{
    int want = c->out.pending > 0;
    if (want == *armed_out)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return -1;
    *armed_out = want;
    return 0;
}

/* Whether a group has reached its request bound or run out of its order. */
static int run_bound_hit(const struct run *run)
{
    if (run->exhausted)
        return 1;
    for (int i = 0; i < run->ng; i++) {
        if (run->g[i].max_reqs && run->g[i].res.reqs >= run->g[i].max_reqs)
            return 1;
    }
    return 0;
}

/* Fills a group's result from its counters and latency samples. */
static void group_finish(struct bench_group *g, double secs)
{
    struct bench_result *r = &g->res;
    r->ok = 1;
    r->secs = secs;
    r->items = r->reqs * g->cell->batch;
    r->bytes = r->items * g->cell->size;
    r->samples = g->nlat;
    if (g->nlat > 0) {
        qsort(g->lat, g->nlat, sizeof *g->lat, cmp_u32);
        r->p50_us = g->lat[g->nlat / 2] / 1e3;
        r->p99_us = g->lat[(size_t)((double)g->nlat * 0.99)] / 1e3;
        r->p999_us = g->lat[(size_t)((double)g->nlat * 0.999)] / 1e3;
    }
}

/* One measurement of several groups of connections. */
void engine_mix(const char *sock, struct bench_group *g, int ng, uint64_t stream, long server_pid,
                const struct bench_opts *o)
{
    double srv0 = -1, cli0 = 0;
    struct run run;
    memset(&run, 0, sizeof run);
    run.g = g;
    run.ng = ng;
    uint32_t nconns = 0;
    uint64_t warm_reqs = 0;
    for (int i = 0; i < ng; i++) {
        memset(&g[i].res, 0, sizeof g[i].res);
        g[i].perm_next = 0;
        g[i].nlat = 0;
        g[i].lat = malloc(LAT_MAX * sizeof *g[i].lat);
        nconns += g[i].cell->conns;
        /* The warm-up lasts its time and at least until every request of
         * the first pipeline has been answered: a deep pipeline of large
         * requests otherwise measures the servers filling their buffers. */
        warm_reqs += (uint64_t)g[i].cell->conns * g[i].cell->depth;
    }
    struct bconn *conns = calloc(nconns ? nconns : 1, sizeof *conns);
    int *armed = calloc(nconns ? nconns : 1, sizeof *armed);
    uint32_t *idx = malloc(BENCH_MAX_BATCH * sizeof *idx);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint32_t opened = 0;
    char note[160] = "";
    int ok = 0;
    int lat_ok = 1;
    for (int i = 0; i < ng; i++)
        lat_ok &= g[i].lat != NULL;
    if (!lat_ok || !conns || !armed || !idx || ep < 0) {
        snprintf(note, sizeof note, "out of resources");
        goto out;
    }
    for (int gi = 0; gi < ng; gi++) {
        for (uint32_t k = 0; k < g[gi].cell->conns; k++) {
            struct bconn *c = &conns[opened];
            c->arena = g[gi].arena;
            if (conn_open(c, g[gi].tp, sock, g[gi].cell, note, sizeof note) < 0)
                goto out;
            opened++;
            c->arena = g[gi].arena;
            c->grp = &g[gi];
            c->nkeys = g[gi].nkeys ? g[gi].nkeys : 1;
            /* Group 0 keeps the seeds of the one-group engine_run. */
            c->rng = rng_seed(o->seed, stream, gi == 0 ? k : ((uint64_t)gi << 32) | k, 0x5eed);
            set_nonblock(c->fd, 1);
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                snprintf(note, sizeof note, "epoll_ctl: %s", strerror(errno));
                goto out;
            }
        }
    }
    uint64_t t0 = now_ns();
    uint64_t warm_end = t0 + (uint64_t)(o->warmup * 1e9);
    uint64_t end = 0;
    uint64_t drain_end = 0;
    for (uint32_t i = 0; i < nconns; i++) {
        struct bconn *c = &conns[i];
        while (c->inflight < c->cell->depth && !run.exhausted)
            conn_next(&run, c, idx);
        if (obuf_flush(&c->out, c->fd) < 0 || conn_arm(ep, c, &armed[i]) < 0) {
            snprintf(note, sizeof note, "write: %s", strerror(errno));
            goto out;
        }
    }
    struct epoll_event evs[64];
    for (;;) {
        uint64_t now = now_ns();
        if (!run.measuring && now >= warm_end &&
            (run.warm_done >= warm_reqs || now - t0 >= WARM_MAX_NS)) {
            run.measuring = 1;
            srv0 = probe_cpu(server_pid);
            cli0 = probe_self_cpu();
            now = now_ns();
            run.t_start = now;
            end = now + (uint64_t)(o->seconds * 1e9);
        }
        if (run.measuring && !run.stopping && (now >= end || run_bound_hit(&run))) {
            run.stopping = 1;
            run.t_end = now;
            double srv1 = probe_cpu(server_pid);
            for (int i = 0; i < ng; i++) {
                g[i].res.srv_cpu_s = srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1;
                g[i].res.cli_cpu_s = probe_self_cpu() - cli0;
            }
            drain_end = now + DRAIN_NS;
        }
        if (run.stopping) {
            uint32_t busy = 0;
            for (uint32_t i = 0; i < nconns; i++)
                busy += conns[i].inflight;
            if (busy == 0)
                break;
            if (now >= drain_end) {
                snprintf(note, sizeof note, "%u replies never came", busy);
                goto out;
            }
        }
        uint64_t next = run.stopping     ? drain_end
                        : run.measuring  ? end
                        : now < warm_end ? warm_end
                                         : t0 + WARM_MAX_NS;
        int timeout = next > now ? (int)((next - now) / 1000000u) + 1 : 0;
        int n = epoll_wait(ep, evs, 64, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(note, sizeof note, "epoll_wait: %s", strerror(errno));
            goto out;
        }
        for (int k = 0; k < n; k++) {
            struct bconn *c = evs[k].data.ptr;
            size_t ci = (size_t)(c - conns);
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (conn_on_readable(&run, c, idx) < 0) {
                    snprintf(note, sizeof note, "%s", run.err);
                    goto out;
                }
            }
            if (c->out.oom) {
                snprintf(note, sizeof note, "out of memory encoding");
                goto out;
            }
            if (c->out.pending > 0 && obuf_flush(&c->out, c->fd) < 0) {
                snprintf(note, sizeof note, "%s: write: %s", c->tp->name, strerror(errno));
                goto out;
            }
            if (conn_arm(ep, c, &armed[ci]) < 0) {
                snprintf(note, sizeof note, "epoll_ctl: %s", strerror(errno));
                goto out;
            }
        }
    }
    ok = 1;
    for (int i = 0; i < ng; i++) {
        group_finish(&g[i], (double)(run.t_end - run.t_start) / 1e9);
        g[i].res.all = run.all;
    }
out:
    for (uint32_t i = 0; i < opened; i++) {
        /* A failed run leaves replies in flight: a teardown would wait for
         * them, so just close. */
        if (!ok) {
            close(conns[i].fd);
            conns[i].fd = -1;
        }
        conn_close(&conns[i]);
    }
    for (int i = 0; i < ng; i++) {
        if (!ok) {
            g[i].res.ok = 0;
            snprintf(g[i].res.note, sizeof g[i].res.note, "%s", note);
        }
        free(g[i].lat);
        g[i].lat = NULL;
    }
    if (ep >= 0)
        close(ep);
    free(idx);
    free(armed);
    free(conns);
}

/* One measurement of one cell: a single group. */
void engine_run(const struct tproto *tp, const char *sock, const struct bench_cell *cell,
                uint32_t nkeys, uint64_t arena, uint64_t stream, long server_pid,
                const struct bench_opts *o, struct bench_result *r)
{
    struct bench_group g;
    memset(&g, 0, sizeof g);
    g.tp = tp;
    g.cell = cell;
    g.nkeys = nkeys;
    g.arena = arena;
    g.max_reqs = o->max_requests;
    engine_mix(sock, &g, 1, stream, server_pid, o);
    *r = g.res;
}
