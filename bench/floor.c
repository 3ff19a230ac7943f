/* The floors: what no daemon can beat on this machine.
 *
 * The socket floor is a tiny one-threaded epoll server, forked from the
 * bench, that speaks no protocol: a 16-byte header asks for n items of size
 * bytes, and it answers with exactly those bytes, each read with pread from a
 * page-cached file at a random item offset (or, for a write, appends the
 * payload to a file and answers 8 bytes). It is the best a pread-based daemon
 * can do over a Unix socket. The in-process floor is the crate's own path:
 * pread on a page-cached temp file, no socket at all. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

enum { FL_GET = 1, FL_SET = 2, FL_PREPARE = 3 };

/* The request header of the floor protocol. */
struct fl_hdr {
    uint32_t op, n, size, seed;
};

/* Most distinct payload sizes the floor server keeps datasets for. */
#define FL_MAX_DATA 16

/* Items in the dataset of a size. */
uint32_t bench_nkeys(uint32_t size, uint64_t dataset_bytes)
{
    uint64_t n = dataset_bytes / size;
    if (n < 16)
        n = 16;
    if (n > 100000)
        n = 100000;
    return (uint32_t)n;
}

/* Largest single write of the floors. On this kind of kernel, writes of
 * 1 MiB and more into fresh page-cache pages run at a third of the speed of
 * 128 KiB writes (measured: ~1 vs ~4 GiB/s), so the floors write in chunks. */
#define FL_WRITE_CHUNK (128u << 10)

/* Writes exactly len bytes at off, in chunks of at most FL_WRITE_CHUNK.
 * Returns 0 or -1. */
static int pwrite_chunked(int fd, const char *p, size_t len, off_t off)
{
    while (len > 0) {
        size_t n = len < FL_WRITE_CHUNK ? len : FL_WRITE_CHUNK;
        ssize_t w = pwrite(fd, p, n, off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Opens an anonymous file in dir. Returns fd or -1. */
static int anon_file(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4096];
    snprintf(path, sizeof path, "%s/farena-bench-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* Creates a page-cached file of nkeys items of size bytes. */
static int make_dataset(const char *dir, uint32_t size, uint32_t nkeys)
{
    int fd = anon_file(dir);
    if (fd < 0)
        return -1;
    const char *payload = bench_payload();
    for (uint32_t i = 0; i < nkeys; i++) {
        if (pwrite_chunked(fd, payload, size, (off_t)i * size) < 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Reads exactly len bytes at off. */
static int pread_full(int fd, char *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t r = pread(fd, p, len, off);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        len -= (size_t)r;
        off += r;
    }
    return 0;
}

/* ---- the server (runs in the forked child) ---- */

/* A file range queued for sendfile. */
struct fl_seg {
    int fd;
    off_t off;
    size_t len;
};

struct fl_conn {
    int fd;
    struct ibuf in, out;
    /* Large items go out with sendfile, like farenad's: a connection's
     * requests are all of one kind within a cell, so queued segments never
     * need ordering against bytes in out. */
    struct fl_seg *segs;
    size_t nseg, seghead, segcap, segbytes;
    int wfd;
    uint64_t wpos;
    int armed_out;
};

struct fl_server {
    const char *scratch;
    uint32_t sendfile_min; /* items this large are sent with sendfile */
    uint64_t dataset_bytes;
    struct {
        uint32_t size, nkeys;
        int fd;
    } data[FL_MAX_DATA];
    int ndata;
};

/* The dataset for size, created on first use. */
static int fl_data(struct fl_server *s, uint32_t size, uint32_t *nkeys)
{
    for (int i = 0; i < s->ndata; i++) {
        if (s->data[i].size == size) {
            *nkeys = s->data[i].nkeys;
            return s->data[i].fd;
        }
    }
    if (s->ndata == FL_MAX_DATA || size == 0 || size > BENCH_MAX_SIZE)
        return -1;
    uint32_t n = bench_nkeys(size, s->dataset_bytes);
    int fd = make_dataset(s->scratch, size, n);
    if (fd < 0)
        return -1;
    s->data[s->ndata].size = size;
    s->data[s->ndata].nkeys = n;
    s->data[s->ndata].fd = fd;
    s->ndata++;
    *nkeys = n;
    return fd;
}

/* Handles every complete request in c->in. Returns 0 or -1 (close). */
static int fl_process(struct fl_server *s, struct fl_conn *c)
{
    static const char ack[8] = "OK000000";
    while (c->in.wr - c->in.rd >= sizeof(struct fl_hdr)) {
        if (c->out.wr - c->out.rd + c->segbytes > (64u << 20))
            return 0;
        struct fl_hdr h;
        memcpy(&h, c->in.buf + c->in.rd, sizeof h);
        if (h.size == 0 || h.size > BENCH_MAX_SIZE || h.n == 0 || h.n > BENCH_MAX_BATCH)
            return -1;
        size_t body = h.op == FL_SET ? (size_t)h.n * h.size : 0;
        if (c->in.wr - c->in.rd < sizeof h + body) {
            if (ibuf_reserve(&c->in, sizeof h + body - (c->in.wr - c->in.rd)) < 0)
                return -1;
            return 0;
        }
        uint32_t nkeys;
        if (h.op == FL_GET) {
            int dfd = fl_data(s, h.size, &nkeys);
            size_t total = (size_t)h.n * h.size;
            int by_file = h.size >= s->sendfile_min;
            if (dfd < 0 || (!by_file && ibuf_reserve(&c->out, total) < 0))
                return -1;
            if (by_file && c->nseg + h.n > c->segcap) {
                size_t cap = c->segcap ? c->segcap : 64;
                while (cap < c->nseg + h.n)
                    cap *= 2;
                struct fl_seg *ns = realloc(c->segs, cap * sizeof *ns);
                if (!ns)
                    return -1;
                c->segs = ns;
                c->segcap = cap;
            }
            uint64_t rng = h.seed ? h.seed : 1;
            for (uint32_t i = 0; i < h.n; i++) {
                off_t off = (off_t)(rng_next(&rng) % nkeys) * h.size;
                if (by_file) {
                    c->segs[c->nseg++] = (struct fl_seg){dfd, off, h.size};
                    c->segbytes += h.size;
                    continue;
                }
                if (pread_full(dfd, c->out.buf + c->out.wr, h.size, off) < 0)
                    return -1;
                c->out.wr += h.size;
            }
        } else if (h.op == FL_SET) {
            if (c->wfd < 0 && (c->wfd = anon_file(s->scratch)) < 0)
                return -1;
            if (pwrite_chunked(c->wfd, c->in.buf + c->in.rd + sizeof h, body, (off_t)c->wpos) < 0)
                return -1;
            c->wpos += body;
            if (ibuf_reserve(&c->out, sizeof ack) < 0)
                return -1;
            memcpy(c->out.buf + c->out.wr, ack, sizeof ack);
            c->out.wr += sizeof ack;
        } else if (h.op == FL_PREPARE) {
            if (fl_data(s, h.size, &nkeys) < 0 || ibuf_reserve(&c->out, sizeof ack) < 0)
                return -1;
            memcpy(c->out.buf + c->out.wr, ack, sizeof ack);
            c->out.wr += sizeof ack;
        } else {
            return -1;
        }
        c->in.rd += sizeof h + body;
    }
    if (c->in.rd == c->in.wr)
        c->in.rd = c->in.wr = 0;
    return 0;
}

/* Sends pending output. Returns 0 or -1. */
static int fl_send(struct fl_conn *c)
{
    while (c->seghead < c->nseg) {
        struct fl_seg *g = &c->segs[c->seghead];
        ssize_t w = sendfile(c->fd, g->fd, &g->off, g->len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        g->len -= (size_t)w;
        c->segbytes -= (size_t)w;
        if (g->len == 0)
            c->seghead++;
    }
    c->seghead = c->nseg = 0;
    while (c->out.wr > c->out.rd) {
        ssize_t w =
            send(c->fd, c->out.buf + c->out.rd, c->out.wr - c->out.rd, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        c->out.rd += (size_t)w;
    }
    if (c->out.rd == c->out.wr)
        c->out.rd = c->out.wr = 0;
    return 0;
}

/* Frees a floor connection. */
static void fl_close(struct fl_conn *c)
{
    close(c->fd);
    if (c->wfd >= 0)
        close(c->wfd);
    ibuf_free(&c->in);
    ibuf_free(&c->out);
    free(c->segs);
    free(c);
}

/* Services one readable/writable connection. Returns 0 or -1 (closed). */
static int fl_service(struct fl_server *s, int ep, struct fl_conn *c, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (ibuf_reserve(&c->in, 256u << 10) < 0)
            return -1;
        ssize_t r = read(c->fd, c->in.buf + c->in.wr, c->in.cap - c->in.wr);
        if (r == 0)
            return -1;
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (r > 0)
            c->in.wr += (size_t)r;
    }
    if (fl_process(s, c) < 0 || fl_send(c) < 0)
        return -1;
    /* After a drain, requests held back by the output cap may be ready. */
    if (c->out.wr == c->out.rd && c->nseg == 0 && c->in.wr - c->in.rd >= sizeof(struct fl_hdr)) {
        if (fl_process(s, c) < 0 || fl_send(c) < 0)
            return -1;
    }
    int want = c->out.wr > c->out.rd || c->nseg > 0;
    if (want != c->armed_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
            return -1;
        c->armed_out = want;
    }
    return 0;
}

/* The server loop; never returns. */
static void fl_serve(int lfd, struct fl_server *s)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        _exit(1);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        _exit(1);
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        for (int k = 0; k < n; k++) {
            struct fl_conn *c = evs[k].data.ptr;
            if (!c) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                c = calloc(1, sizeof *c);
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->wfd = -1;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0)
                    fl_close(c);
                continue;
            }
            if (fl_service(s, ep, c, evs[k].events) < 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                fl_close(c);
            }
        }
    }
}

/* Forks the floor server. */
long floor_server_start(const char *path, const char *scratch, uint64_t dataset_bytes,
                        uint32_t sendfile_min, int cpu)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    strcpy(sa.sun_path, path);
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -1;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 64) < 0) {
        close(lfd);
        return -1;
    }
    bench_payload();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        struct fl_server s;
        memset(&s, 0, sizeof s);
        s.scratch = scratch;
        s.dataset_bytes = dataset_bytes;
        s.sendfile_min = sendfile_min;
        fl_serve(lfd, &s);
    }
    close(lfd);
    return (long)pid;
}

/* Stops the floor server. */
void floor_server_stop(long pid)
{
    if (pid <= 0)
        return;
    kill((pid_t)pid, SIGTERM);
    waitpid((pid_t)pid, NULL, 0);
}

/* ---- the socket-floor driver (client side) ---- */

/* Setup: makes the server prepare the dataset of this size. */
static int fc_setup(struct bconn *c, char *err, size_t errlen)
{
    struct fl_hdr h = {FL_PREPARE, 1, c->cell->size, 1};
    char ack[8];
    if (write_all(c->fd, &h, sizeof h) < 0) {
        snprintf(err, errlen, "floor: write: %s", strerror(errno));
        return -1;
    }
    size_t got = 0;
    while (got < sizeof ack) {
        ssize_t r = read(c->fd, ack + got, sizeof ack - got);
        if (r <= 0) {
            snprintf(err, errlen, "floor: prepare failed");
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* Encodes one floor request. */
static void fc_encode(struct bconn *c, const uint32_t *idx, uint32_t n)
{
    struct fl_hdr h = {c->cell->op == OP_GET ? FL_GET : FL_SET, n, c->cell->size,
                       (uint32_t)rng_next(&c->rng) | 1u};
    obuf_add(&c->out, &h, sizeof h);
    if (c->cell->op == OP_SET) {
        const char *payload = bench_payload();
        for (uint32_t i = 0; i < n; i++)
            obuf_ext(&c->out, payload, c->cell->size);
    }
}

/* Consumes one reply (its length is known from the request). */
static int fc_parse(struct bconn *c, uint32_t *msgid, char *err, size_t errlen)
{
    uint32_t n = c->inflight ? c->slot[c->slot_head].n : 1;
    size_t len = c->cell->op == OP_GET ? (size_t)n * c->cell->size : 8;
    if (c->in.wr - c->in.rd < len) {
        c->need = len;
        return 0;
    }
    c->in.rd += len;
    return 1;
}

const struct tproto tproto_floor = {"floor", fc_setup, fc_encode, fc_parse, NULL};

/* ---- in-process floors ---- */

/* Cached page-cached datasets of the in-process floor, one per size. */
static struct {
    uint32_t size, nkeys;
    int fd;
} pf_data[FL_MAX_DATA];
static int pf_ndata;

/* Measures in-process pread or buffered appends. */
void floor_pread_run(enum bench_op op, uint32_t size, const struct bench_opts *o,
                     struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    char *buf = malloc(size > (64u << 10) ? size : (64u << 10));
    if (!buf) {
        snprintf(r->note, sizeof r->note, "out of memory");
        return;
    }
    int fd = -1;
    uint32_t nkeys = 0;
    if (op == OP_GET) {
        for (int i = 0; i < pf_ndata; i++) {
            if (pf_data[i].size == size) {
                fd = pf_data[i].fd;
                nkeys = pf_data[i].nkeys;
            }
        }
        if (fd < 0 && pf_ndata < FL_MAX_DATA) {
            nkeys = bench_nkeys(size, o->dataset_bytes);
            fd = make_dataset(o->scratch, size, nkeys);
            if (fd >= 0) {
                pf_data[pf_ndata].size = size;
                pf_data[pf_ndata].nkeys = nkeys;
                pf_data[pf_ndata].fd = fd;
                pf_ndata++;
            }
        }
    } else {
        fd = anon_file(o->scratch);
    }
    if (fd < 0) {
        snprintf(r->note, sizeof r->note, "temp file: %s", strerror(errno));
        free(buf);
        return;
    }
    const char *payload = bench_payload();
    uint64_t rng = rng_seed(o->seed, size, op, 0xf100);
    uint64_t t0 = now_ns();
    uint64_t warm_end = t0 + (uint64_t)(o->warmup * 1e9);
    uint64_t end = warm_end + (uint64_t)(o->seconds * 1e9);
    uint64_t items = 0, start_items = 0, t_start = 0, now = t0;
    size_t fill = 0; /* buffered bytes of the write floor */
    uint64_t wpos = 0;
    const size_t wcap = 64u << 10;
    int measuring = 0, failed = 0;
    for (;;) {
        if ((items & 15) == 0) {
            now = now_ns();
            if (!measuring && now >= warm_end) {
                measuring = 1;
                t_start = now;
                start_items = items;
            }
            if (measuring && (now >= end || items - start_items >= o->max_requests))
                break;
        }
        if (op == OP_GET) {
            off_t off = (off_t)(rng_next(&rng) % nkeys) * size;
            if (pread_full(fd, buf, size, off) < 0) {
                failed = 1;
                break;
            }
        } else if (size >= wcap) {
            if (pwrite_chunked(fd, payload, size, (off_t)wpos) < 0) {
                failed = 1;
                break;
            }
            wpos += size;
        } else {
            /* A BufWriter-like append: copy, write out when full. */
            if (fill + size > wcap) {
                if (pwrite(fd, buf, fill, (off_t)wpos) != (ssize_t)fill) {
                    failed = 1;
                    break;
                }
                wpos += fill;
                fill = 0;
            }
            memcpy(buf + fill, payload, size);
            fill += size;
        }
        items++;
    }
    if (op == OP_SET)
        close(fd);
    free(buf);
    if (failed) {
        snprintf(r->note, sizeof r->note, "pread floor: I/O error: %s", strerror(errno));
        return;
    }
    r->ok = 1;
    r->secs = (double)(now - t_start) / 1e9;
    r->items = items - start_items;
    r->reqs = r->items;
    r->bytes = r->items * size;
}

/* Writes the cold floor's file. */
int floor_cold_file(const char *scratch, uint64_t bytes)
{
    int fd = anon_file(scratch);
    if (fd < 0)
        return -1;
    const char *payload = bench_payload();
    for (uint64_t off = 0; off < bytes; off += BENCH_MAX_SIZE) {
        size_t n = bytes - off < BENCH_MAX_SIZE ? (size_t)(bytes - off) : BENCH_MAX_SIZE;
        if (pwrite_chunked(fd, payload, n, (off_t)off) < 0 || fdatasync(fd) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

/* State shared by the cold floor's threads. */
struct cold_floor {
    int fd;
    uint32_t size;
    const uint32_t *perm;
    uint32_t nperm;
    uint64_t deadline;
    atomic_uint next;   /* next index into perm */
    atomic_int go;      /* threads wait for it */
    atomic_int closed;  /* the window has closed */
    atomic_ullong done; /* reads completed (after the window's close too) */
    atomic_int failed;
    uint64_t t_end, done_at_end; /* written by the thread that closes */
};

/* Closes the window once: the first caller records the time and count. */
static void cold_close(struct cold_floor *cf)
{
    int open = 0;
    if (atomic_compare_exchange_strong(&cf->closed, &open, 1)) {
        cf->t_end = now_ns();
        cf->done_at_end = atomic_load(&cf->done);
    }
}

/* One cold floor thread. */
static void *cold_thread(void *arg)
{
    struct cold_floor *cf = arg;
    char *buf = malloc(cf->size);
    if (!buf) {
        atomic_store(&cf->failed, 1);
        cold_close(cf);
        return NULL;
    }
    while (!atomic_load(&cf->go))
        sched_yield();
    while (!atomic_load(&cf->closed)) {
        unsigned i = atomic_fetch_add(&cf->next, 1u);
        if (i >= cf->nperm || now_ns() >= cf->deadline) {
            cold_close(cf);
            break;
        }
        if (pread_full(cf->fd, buf, cf->size, (off_t)cf->perm[i] * cf->size) < 0) {
            atomic_store(&cf->failed, 1);
            cold_close(cf);
            break;
        }
        atomic_fetch_add(&cf->done, 1u);
    }
    free(buf);
    return NULL;
}

/* Runs the cold floor. */
void floor_cold_run(int fd, uint32_t size, const uint32_t *perm, uint32_t nperm, uint32_t threads,
                    double seconds, struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    struct cold_floor cf;
    memset(&cf, 0, sizeof cf);
    cf.fd = fd;
    cf.size = size;
    cf.perm = perm;
    cf.nperm = nperm;
    pthread_t *tid = calloc(threads, sizeof *tid);
    uint32_t started = 0;
    if (!tid) {
        snprintf(r->note, sizeof r->note, "out of memory");
        return;
    }
    cf.deadline = UINT64_MAX;
    for (; started < threads; started++) {
        if (pthread_create(&tid[started], NULL, cold_thread, &cf) != 0)
            break;
    }
    double cpu0 = probe_self_cpu();
    uint64_t t0 = now_ns();
    cf.deadline = t0 + (uint64_t)(seconds * 1e9);
    atomic_store(&cf.go, 1);
    if (started < threads)
        cold_close(&cf);
    for (uint32_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    free(tid);
    if (started < threads || atomic_load(&cf.failed)) {
        snprintf(r->note, sizeof r->note, "cold floor: %s",
                 started < threads ? "cannot start its threads" : "read error");
        return;
    }
    r->ok = 1;
    r->secs = (double)(cf.t_end - t0) / 1e9;
    r->items = r->reqs = cf.done_at_end;
    r->all = atomic_load(&cf.done);
    r->bytes = r->items * size;
    r->cli_cpu_s = probe_self_cpu() - cpu0;
    r->srv_cpu_s = -1;
}

/* The in-process many-files floor. */
double floor_files_run(uint32_t nfiles, uint32_t size, const char *scratch)
{
    int *fds = calloc(nfiles, sizeof *fds);
    if (!fds)
        return -1;
    const char *payload = bench_payload();
    uint64_t t0 = now_ns();
    uint32_t made = 0;
    double secs = -1;
    for (; made < nfiles; made++) {
        fds[made] = anon_file(scratch);
        if (fds[made] < 0 || write(fds[made], payload, size) != (ssize_t)size)
            break;
    }
    if (made == nfiles)
        secs = (double)(now_ns() - t0) / 1e9;
    for (uint32_t i = 0; i < made; i++)
        close(fds[i]);
    if (made < nfiles && fds[made] >= 0)
        close(fds[made]);
    free(fds);
    return secs;
}
