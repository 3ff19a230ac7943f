/* farena-bench: one-threaded load generator that drives farenad, Redis and
 * memcached over Unix sockets with the same payloads, connections and depth,
 * and measures the floors (in-process pread, raw socket round trip) in the
 * same run. Shared declarations of the bench's own modules. */
#ifndef FARENA_BENCH_H
#define FARENA_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Largest depth (requests in flight per connection) the engine supports. */
#define BENCH_MAX_DEPTH 64u
/* Largest payload of one item. */
#define BENCH_MAX_SIZE (1u << 20)
/* Largest number of items in one batched request. */
#define BENCH_MAX_BATCH 1000u

/* The systems under test and the two floors. */
enum bench_target {
    TGT_FARENA = 0,
    TGT_REDIS,
    TGT_MC_META,
    TGT_MC_TEXT,
    TGT_SOCK_FLOOR,
    TGT_PREAD_FLOOR,
    TGT_COUNT
};

enum bench_op { OP_GET = 0, OP_SET = 1 };

/* One measurement's shape. batch 1 is a single get/push; above 1 it is a
 * batched request (get_many / MGET / multi-get, push_many / MSET / ...). */
struct bench_cell {
    enum bench_op op;
    uint32_t size;  /* payload bytes per item */
    uint32_t batch; /* items per request (after the byte cap) */
    uint32_t conns; /* connections */
    uint32_t depth; /* requests in flight per connection (after the cap) */
    uint32_t batch_asked, depth_asked;
};

/* What one measurement produced. */
struct bench_result {
    int ok;           /* 1 when the run completed */
    double secs;      /* measured wall time (after warm-up) */
    uint64_t reqs;    /* requests completed in the window */
    uint64_t items;   /* items moved in the window */
    uint64_t bytes;   /* payload bytes moved in the window */
    double p50_us;    /* request latency median */
    double p99_us;    /* request latency 99th percentile */
    double p999_us;   /* request latency 99.9th percentile */
    uint64_t samples; /* latency samples behind the percentiles */
    uint64_t all;     /* replies over the whole run, warm-up and drain included */
    double srv_cpu_s; /* server CPU seconds in the window (-1 unknown) */
    double cli_cpu_s; /* client CPU seconds in the window */
    char note[160];   /* why it failed, when !ok */
};

/* Run-wide settings. */
struct bench_opts {
    double seconds;        /* measured time per measurement */
    double warmup;         /* warm-up time per measurement */
    uint64_t max_requests; /* request bound per measurement */
    uint64_t seed;
    uint64_t dataset_bytes; /* bytes stored per payload size for gets */
    const char *scratch;    /* directory for temp files (not tmpfs) */
    int server_cpu;         /* CPU for the forked floor server, -1 = any */
    int verbose;
};

/* ---- buffers (buf.c) ---- */

/* A growable input buffer: bytes [rd, wr) are unread. Owned by its
 * connection; freed with ibuf_free. */
struct ibuf {
    char *buf;
    size_t rd, wr, cap;
};

/* Makes room for at least want more bytes after wr (compacting or growing).
 * Returns 0 or -1 (out of memory). */
int ibuf_reserve(struct ibuf *b, size_t want);
/* Frees the buffer's memory; b may be reused after. */
void ibuf_free(struct ibuf *b);

/* An output queue of segments: owned bytes (copied in) and external bytes
 * (pointers the caller keeps valid until they are written, e.g. the shared
 * payload). Freed with obuf_free. */
struct obuf_seg {
    const char *ext; /* NULL: owned bytes at buf + off */
    size_t off, len;
};
struct obuf {
    char *buf;
    size_t blen, bcap;
    struct obuf_seg *segs;
    size_t nseg, segcap, head; /* segs[head..nseg) are pending */
    size_t head_done;          /* bytes of segs[head] already written */
    size_t pending;            /* total bytes pending */
    int oom;                   /* an append failed: the run is broken */
};

/* Appends len owned bytes. Sets b->oom on failure. */
void obuf_add(struct obuf *b, const void *p, size_t len);
/* Appends a printf-formatted string as owned bytes. */
void obuf_printf(struct obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends len external bytes at p (not copied when large). */
void obuf_ext(struct obuf *b, const void *p, size_t len);
/* Writes as much as the socket takes. Returns 0 (maybe still pending) or -1
 * with errno. */
int obuf_flush(struct obuf *b, int fd);
void obuf_free(struct obuf *b);
/* msgpack_packer write callback appending to the struct obuf in data. */
int obuf_msgpack_write(void *data, const char *buf, size_t len);

/* ---- utilities (util.c) ---- */

/* Monotonic time in nanoseconds. */
uint64_t now_ns(void);
/* xorshift64* step; *s must not be 0. */
uint64_t rng_next(uint64_t *s);
/* A seed for a stream derived from a base seed and tags (never 0). */
uint64_t rng_seed(uint64_t base, uint64_t a, uint64_t b, uint64_t c);
/* The shared payload (BENCH_MAX_SIZE bytes of pseudo-random data). */
const char *bench_payload(void);
/* Connects to the Unix socket at path (blocking). Returns fd or -1. */
int unix_connect(const char *path);
/* The pid of the process at the other end of the Unix socket fd
 * (SO_PEERCRED), or -1. */
long unix_peer_pid(int fd);
/* Writes all len bytes (blocking fd). Returns 0 or -1. */
int write_all(int fd, const void *p, size_t len);
/* Prints a message to stderr and exits with status 2 (the tool, not a
 * library, may exit). */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Formats a count or rate with k/M/G suffixes into out. */
void fmt_si(char *out, size_t n, double v);

/* ---- the measurement engine (engine.c) ---- */

struct bconn;
struct bench_group;

/* A protocol driver. All functions get the connection; requests and replies
 * are for cell-shaped batches of items. */
struct tproto {
    const char *name;
    /* Synchronous per-connection setup (hello, handles, writers). Returns 0 or
     * -1 with a message in err. */
    int (*setup)(struct bconn *c, char *err, size_t errlen);
    /* Appends one request for the n items idx[] to c's output. */
    void (*encode)(struct bconn *c, const uint32_t *idx, uint32_t n);
    /* Tries to consume one reply from c->in. Returns 1 (one reply consumed,
     * *msgid set for protocols with ids), 0 (need more bytes; c->need may
     * be raised), or -1 (error, message in err). */
    int (*parse)(struct bconn *c, uint32_t *msgid, char *err, size_t errlen);
    /* Synchronous teardown (release writers); may be NULL. */
    void (*teardown)(struct bconn *c);
};

/* One connection of a measurement. */
struct bconn {
    int fd;
    const struct tproto *tp;
    const struct bench_cell *cell;
    struct ibuf in;
    struct obuf out;
    size_t need;      /* reparse only once in.wr - in.rd >= need */
    uint32_t next_id; /* next msgid / request number */
    uint64_t rng;
    uint32_t nkeys; /* dataset items for this size */
    uint32_t inflight;
    struct {
        uint32_t id;
        uint32_t n; /* items in the request */
        uint64_t t0;
    } slot[BENCH_MAX_DEPTH];
    uint32_t slot_head;
    /* protocol state */
    void *pstate;            /* driver-owned, freed by the driver's teardown */
    uint64_t arena;          /* farena: arena for gets */
    uint64_t writer;         /* farena: writer for pushes */
    const char *sock;        /* the server's socket path */
    struct bench_group *grp; /* the group of a measurement (NULL outside one) */
};

/* One group of identical connections in a mixed measurement: its own
 * driver, cell, dataset and picks. The caller fills the inputs and owns the
 * struct; engine_mix fills res and uses the private fields. */
struct bench_group {
    const struct tproto *tp;
    const struct bench_cell *cell;
    uint32_t nkeys;       /* picks are uniform in [0, nkeys) when perm is NULL */
    uint64_t arena;       /* farena: the arena of the gets */
    const uint32_t *perm; /* NULL, or items in the order to read them, each once
                           * (cold reads); owned by the caller. When the order
                           * runs out, the window closes. */
    uint32_t nperm;
    uint64_t max_reqs;       /* the window closes when this group has completed
                        * this many requests in it (0: no bound) */
    struct bench_result res; /* out */
    /* engine-private */
    uint32_t perm_next;
    uint32_t *lat;
    size_t nlat;
};

/* Runs one measurement of cell against the server at sock with driver tp.
 * nkeys: items of the dataset (gets pick uniformly in [0, nkeys)); arena:
 * farena's dataset arena handle. */
void engine_run(const struct tproto *tp, const char *sock, const struct bench_cell *cell,
                uint32_t nkeys, uint64_t arena, uint64_t stream, long server_pid,
                const struct bench_opts *o, struct bench_result *r);

/* Runs one measurement of ng groups of connections at once against the
 * server at sock, in one window: it opens after o->warmup (and once every
 * group's first pipeline has been answered) and closes after o->seconds, or
 * earlier when a group reaches its max_reqs or runs out of its perm. Each
 * group's res gets its own requests and latencies; the server CPU
 * (server_pid) is the whole window's. */
void engine_mix(const char *sock, struct bench_group *g, int ng, uint64_t stream, long server_pid,
                const struct bench_opts *o);

/* Sends one request for idx[0..n) on a fresh synchronous exchange and waits
 * for its reply (used for loading). Returns 0 or -1 with err. */
int engine_call(struct bconn *c, const uint32_t *idx, uint32_t n, char *err, size_t errlen);

/* Opens a connection to sock for cell's shape and runs tp's setup (used for
 * control connections). Returns 0 or -1 with err. Closed with engine_close. */
int engine_open(struct bconn *c, const struct tproto *tp, const char *sock,
                const struct bench_cell *cell, char *err, size_t errlen);
/* Runs the driver's teardown, closes and frees c's buffers. */
void engine_close(struct bconn *c);

/* Blocking read of more bytes into c->in (at least one). Returns 0 or -1. */
int conn_read_more(struct bconn *c);

/* ---- protocol drivers (proto_*.c) ---- */

extern const struct tproto tproto_farena;
extern const struct tproto tproto_redis;
extern const struct tproto tproto_mc_meta;
extern const struct tproto tproto_mc_text;
extern const struct tproto tproto_floor;

/* The key of item i of size s, written to out (NUL-terminated); returns its
 * length. */
size_t bench_key(char *out, size_t n, uint32_t size, uint32_t i);

/* farena helpers for the control connection (proto_farena.c). Each returns 0
 * or -1 with err. */
int farena_ctl_load(struct bconn *c, uint32_t size, uint32_t nkeys, uint64_t *arena, char *err,
                    size_t errlen);
int farena_ctl_stat_pid(struct bconn *c, long *pid, char *err, size_t errlen);
int farena_ctl_release(struct bconn *c, uint64_t handle, char *err, size_t errlen);
/* Builds an arena of nfiles files of one item of size bytes each (writer_new,
 * push, finish for every file, depth requests in flight, then one build).
 * Stores the build time alone and the total time. */
int farena_ctl_build_many(struct bconn *c, uint32_t nfiles, uint32_t size, uint32_t depth,
                          double *total_s, double *build_s, uint64_t *arena, char *err,
                          size_t errlen);
/* Stores n items of size bytes with push_many batches of batch items into a
 * one-file arena (the RSS test). */
int farena_ctl_store(struct bconn *c, uint32_t size, uint32_t n, uint32_t batch, uint64_t *arena,
                     char *err, size_t errlen);
/* Sends one simple command line to Redis or memcached and reads the reply
 * into out (NUL-terminated, truncated to n). Returns 0 or -1. */
int text_ctl(struct bconn *c, const char *cmd, int redis, char *out, size_t n);

/* ---- floors (floor.c) ---- */

/* Items in the get dataset of one payload size (the same for every target). */
uint32_t bench_nkeys(uint32_t size, uint64_t dataset_bytes);
/* Forks the raw socket floor server listening at path, with its data files
 * (dataset_bytes per size) in scratch; items of sendfile_min bytes or more
 * are sent with sendfile, smaller ones pread into a buffer and sent; pins it
 * to cpu when cpu >= 0. Returns its pid or -1. */
long floor_server_start(const char *path, const char *scratch, uint64_t dataset_bytes,
                        uint32_t sendfile_min, int cpu);
/* Stops the floor server by pid and reaps it. */
void floor_server_stop(long pid);
/* Measures in-process pread (OP_GET: random preads of size bytes from a
 * page-cached temp file of about dataset bytes) or buffered append writes
 * (OP_SET) for o->seconds. */
void floor_pread_run(enum bench_op op, uint32_t size, const struct bench_opts *o,
                     struct bench_result *r);
/* Creates an anonymous file of bytes (the shared payload repeated) in
 * scratch and writes it back to disk (fdatasync). Returns its fd (the
 * caller closes it; the file vanishes then) or -1 with errno. */
int floor_cold_file(const char *scratch, uint64_t bytes);
/* The cold in-process floor: threads threads pread items of size bytes at
 * offsets perm[i] * size of fd, each taking the next i from a shared cursor,
 * until perm runs out or seconds pass. The window closes when the first
 * thread finds either; r gets the reads completed in it (r->all: every read
 * completed). */
void floor_cold_run(int fd, uint32_t size, const uint32_t *perm, uint32_t nperm, uint32_t threads,
                    double seconds, struct bench_result *r);
/* In-process floor of the many-files build: nfiles anonymous files each
 * written with one item of size bytes, then all closed. Seconds taken. */
double floor_files_run(uint32_t nfiles, uint32_t size, const char *scratch);

/* ---- process probes (probe.c) ---- */

/* Resident set and peak of pid from /proc, in bytes (-1 when unknown). */
int64_t probe_rss(long pid);
int64_t probe_hwm(long pid);
/* Page-cache bytes resident of the open regular file fd (0 for other
 * kinds), -1 when unknown. */
int64_t probe_resident_fd(int fd);
/* Page-cache bytes resident for the regular files pid holds open (mincore
 * through /proc/pid/fd), or for path when pid is 0. -1 when unknown. */
int64_t probe_pagecache(long pid, const char *path);
/* User + system CPU seconds of pid (all threads), -1 when unknown. */
double probe_cpu(long pid);
/* User + system CPU seconds of this process. */
double probe_self_cpu(void);
/* CPU steal and total jiffies from /proc/stat's first line. */
int probe_steal(uint64_t *steal, uint64_t *total);
/* Writes back and drops from the page cache one open regular file
 * (fdatasync, then POSIX_FADV_DONTNEED over the whole file). Returns 0 or
 * -1 with errno. */
int probe_evict_fd(int fd);
/* Evicts every regular file pid holds open, each opened read-only through
 * /proc/pid/fd (same uid, no root; farenad's anonymous O_TMPFILE files
 * open fine that way). Returns the number of files evicted, or -1 with
 * errno when /proc/pid/fd cannot be read. */
int probe_evict(long pid);
/* Opens read-only the one regular file pid holds whose size is bytes.
 * Returns its fd (the caller closes it), -1 when none is open, -2 when
 * several are. */
int probe_open_sized(long pid, uint64_t bytes);
/* Starts counting the system calls of every thread of pid with tool
 * ("perf": perf stat -e raw_syscalls:sys_enter; "strace": strace -f -c),
 * writing to out (errors to out.err), and waits until it is attached.
 * Returns the counter's pid, or -1 with a reason in err. */
long probe_sys_start(long pid, const char *tool, const char *out, char *err, size_t errlen);
/* Stops the counter (SIGINT), waits for it and reads its total from out;
 * for strace, the three most frequent calls ("name N, ...") go to top.
 * Removes out and out.err. Returns the count, or -1 with a reason in err. */
int64_t probe_sys_stop(long cpid, const char *tool, const char *out, char *top, size_t topn,
                       char *err, size_t errlen);

/* ---- the cold section (cold.c) ---- */

/* Settings of the cold section. Strings are borrowed for the call. */
struct cold_opts {
    const char *sock;     /* farenad's socket (a daemon of this uid) */
    uint64_t bytes;       /* the cold dataset, 16 MiB to 4095 MiB */
    double seconds;       /* longest cold or latency cell */
    uint32_t conns;       /* cold readers, and the floor's threads */
    uint32_t threads;     /* client threads the cold readers share (0: CPUs) */
    int rounds;           /* rounds of every cell */
    const char *syscalls; /* auto (perf and strace), perf, strace or none */
    const char *tmpdir;   /* where the syscall counters write */
    const char *raw;      /* TSV of every measurement, or NULL */
};

/* Runs the cold section against the farenad at co->sock: loads the cold
 * dataset and the hot item, runs the cold reads, hot-get latency and
 * syscall cells, releases what it stored, and writes its markdown to ex
 * (or why it could not run). */
void cold_run(const struct cold_opts *co, const struct bench_opts *o, FILE *ex);

/* ---- the report (report.c) ---- */

/* One stored measurement, as kept for the report. */
struct bench_row {
    struct bench_cell cell;
    enum bench_target target;
    int round;
    struct bench_result res;
};

/* Writes the markdown report of rows (the matrix), extra (preformatted
 * markdown: RSS and build sections) and the header facts to path.
 * farena_rss: the daemon's RSS with rss_bytes stored (-1 = not measured).
 * Returns 0 or -1. */
int report_write(const char *path, const struct bench_row *rows, size_t nrows, const char *header,
                 const char *extra, const int have[TGT_COUNT], int64_t farena_rss,
                 uint64_t rss_bytes);
/* The name of a target for tables. */
const char *target_name(enum bench_target t);

#endif
