/* farena-bench: runs the benchmark matrix against farenad, Redis, memcached
 * and the two floors, interleaving the targets cell by cell, round by round,
 * then the memory, many-files and cold sections, and writes a markdown
 * report. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Largest bytes of one batched request and of one connection's requests in
 * flight: beyond them the cell's batch, then its depth, are lowered (the
 * report shows asked→used), which keeps every server's buffers sane. */
#define BATCH_BYTES_CAP    (16u << 20)
#define INFLIGHT_BYTES_CAP (64u << 20)
/* A push cell writes at most this much per connection (file_max is 4 GiB). */
#define PUSH_BYTES_CAP (3ull << 30)
#define MAX_SIZES      8
#define MAX_LIST       8
#define MAX_NOTES      16

/* Run-wide state. */
struct ctx {
    struct bench_opts o;
    const char *sock[TGT_COUNT];
    int have[TGT_COUNT];
    const char *mc_ext_sock;
    const char *farena_mem_sock;  /* a fresh farenad for the memory and build sections */
    const char *farena_cold_sock; /* a farenad for the cold section (NULL: no section) */
    int cold_only;                /* run the cold section alone */
    struct cold_opts cold;
    int64_t farena_rss;          /* its RSS with rss_bytes stored, -1 unknown */
    uint32_t floor_sendfile_min; /* the socket floor sends items this large by sendfile */
    int ops;                     /* bit 1 << OP_GET, 1 << OP_SET: parts of the matrix */
    long pid[TGT_COUNT];         /* server pids, for CPU per request (0 unknown) */
    int rounds;
    int quick;
    const char *out, *raw, *command;
    uint64_t rss_bytes;
    uint32_t build_files;
    const char *notes[MAX_NOTES];
    int nnotes;
    uint32_t sizes[MAX_SIZES];
    int nsizes;
    uint32_t gbatches[MAX_LIST], sbatches[MAX_LIST], conns[MAX_LIST], depths[MAX_LIST];
    int ngb, nsb, nconns, ndepths;
    /* datasets */
    struct bconn farena_ctl;
    int farena_ctl_open;
    uint64_t farena_arena[MAX_SIZES];
    int loaded[TGT_COUNT][MAX_SIZES];
    /* rows */
    struct bench_row *rows;
    size_t nrows, caprows;
    /* pread floor cache of the current round */
    struct {
        enum bench_op op;
        uint32_t size;
        int round;
        struct bench_result r;
    } pcache[2 * MAX_SIZES];
    int npcache;
    long floor_pid;
    char floor_dir[64], floor_sock[128];
};

/* Index of size in the size list (-1 if absent). */
static int size_slot(const struct ctx *x, uint32_t size)
{
    for (int i = 0; i < x->nsizes; i++) {
        if (x->sizes[i] == size)
            return i;
    }
    return -1;
}

/* Loads the get dataset of one size into Redis or memcached through tp. */
static int load_kv(struct ctx *x, const struct tproto *tp, const char *sock, uint32_t size,
                   char *err, size_t errlen)
{
    uint32_t nkeys = bench_nkeys(size, x->o.dataset_bytes);
    uint32_t batch = BATCH_BYTES_CAP / size;
    if (batch > BENCH_MAX_BATCH)
        batch = BENCH_MAX_BATCH;
    if (batch == 0)
        batch = 1;
    struct bench_cell cell = {OP_SET, size, batch, 1, 1, batch, 1};
    struct bconn c;
    if (engine_open(&c, tp, sock, &cell, err, errlen) < 0)
        return -1;
    uint32_t *idx = malloc(batch * sizeof *idx);
    int rc = idx ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && i < nkeys; i += batch) {
        uint32_t n = nkeys - i < batch ? nkeys - i : batch;
        for (uint32_t k = 0; k < n; k++)
            idx[k] = i + k;
        rc = engine_call(&c, idx, n, err, errlen);
    }
    free(idx);
    engine_close(&c);
    return rc;
}

/* Makes sure target t holds the get dataset of size. */
static int ensure_dataset(struct ctx *x, enum bench_target t, uint32_t size, char *err,
                          size_t errlen)
{
    int s = size_slot(x, size);
    if (s < 0) {
        snprintf(err, errlen, "size %u not in the matrix", size);
        return -1;
    }
    enum bench_target key = t == TGT_MC_TEXT ? TGT_MC_META : t;
    if (x->loaded[key][s])
        return x->loaded[key][s] > 0 ? 0 : -1;
    int rc = 0;
    uint32_t nkeys = bench_nkeys(size, x->o.dataset_bytes);
    if (t == TGT_FARENA) {
        if (!x->farena_ctl_open) {
            struct bench_cell cell = {OP_GET, size, 1, 1, 1, 1, 1};
            rc = engine_open(&x->farena_ctl, &tproto_farena, x->sock[TGT_FARENA], &cell, err,
                             errlen);
            x->farena_ctl_open = rc == 0;
        }
        if (rc == 0) {
            struct bench_cell cell = {OP_SET, size, 1, 1, 1, 1, 1};
            x->farena_ctl.cell = &cell;
            rc = farena_ctl_load(&x->farena_ctl, size, nkeys, &x->farena_arena[s], err, errlen);
            x->farena_ctl.cell = NULL;
        }
    } else if (t == TGT_REDIS) {
        rc = load_kv(x, &tproto_redis, x->sock[t], size, err, errlen);
    } else {
        rc = load_kv(x, &tproto_mc_meta, x->sock[TGT_MC_META], size, err, errlen);
    }
    x->loaded[key][s] = rc == 0 ? 1 : -1;
    return rc;
}

/* Runs one measurement of target t. */
static void run_one(struct ctx *x, enum bench_target t, const struct bench_cell *cell, int round,
                    uint64_t stream, struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    if (t == TGT_PREAD_FLOOR) {
        for (int i = 0; i < x->npcache; i++) {
            if (x->pcache[i].op == cell->op && x->pcache[i].size == cell->size &&
                x->pcache[i].round == round) {
                *r = x->pcache[i].r;
                return;
            }
        }
        floor_pread_run(cell->op, cell->size, &x->o, r);
        int slot = x->npcache < 2 * MAX_SIZES ? x->npcache++ : 0;
        x->pcache[slot].op = cell->op;
        x->pcache[slot].size = cell->size;
        x->pcache[slot].round = round;
        x->pcache[slot].r = *r;
        return;
    }
    const struct tproto *tp = t == TGT_FARENA    ? &tproto_farena
                              : t == TGT_REDIS   ? &tproto_redis
                              : t == TGT_MC_META ? &tproto_mc_meta
                              : t == TGT_MC_TEXT ? &tproto_mc_text
                                                 : &tproto_floor;
    const char *sock = t == TGT_SOCK_FLOOR ? x->floor_sock : x->sock[t];
    uint64_t arena = 0;
    if (cell->op == OP_GET && t != TGT_SOCK_FLOOR) {
        if (ensure_dataset(x, t, cell->size, r->note, sizeof r->note) < 0)
            return;
        if (t == TGT_FARENA)
            arena = x->farena_arena[size_slot(x, cell->size)];
    }
    struct bench_opts o = x->o;
    if (cell->op == OP_SET) {
        uint64_t per_req = (uint64_t)cell->batch * cell->size;
        uint64_t cap = PUSH_BYTES_CAP * cell->conns / per_req;
        if (cap < o.max_requests)
            o.max_requests = cap;
    }
    engine_run(tp, sock, cell, bench_nkeys(cell->size, x->o.dataset_bytes), arena, stream,
               x->pid[t], &o, r);
}

/* Appends a row. */
static void add_row(struct ctx *x, const struct bench_cell *cell, enum bench_target t, int round,
                    const struct bench_result *r)
{
    if (x->nrows == x->caprows) {
        size_t cap = x->caprows ? x->caprows * 2 : 256;
        struct bench_row *rows = realloc(x->rows, cap * sizeof *rows);
        if (!rows)
            die("out of memory");
        x->rows = rows;
        x->caprows = cap;
    }
    struct bench_row *row = &x->rows[x->nrows++];
    row->cell = *cell;
    row->target = t;
    row->round = round;
    row->res = *r;
}

/* Builds the cell list of the matrix. Returns the count. */
static size_t make_cells(const struct ctx *x, struct bench_cell *cells, size_t max)
{
    size_t n = 0;
    for (int op = 0; op < 2; op++) {
        if (!(x->ops & (1 << op)))
            continue;
        const uint32_t *batches = op == OP_GET ? x->gbatches : x->sbatches;
        int nb = op == OP_GET ? x->ngb : x->nsb;
        for (int s = 0; s < x->nsizes; s++) {
            for (int b = 0; b < nb; b++) {
                for (int ci = 0; ci < x->nconns; ci++) {
                    for (int di = 0; di < x->ndepths; di++) {
                        struct bench_cell c;
                        memset(&c, 0, sizeof c);
                        c.op = (enum bench_op)op;
                        c.size = x->sizes[s];
                        c.batch_asked = batches[b];
                        c.conns = x->conns[ci];
                        c.depth_asked = x->depths[di];
                        c.batch = c.batch_asked;
                        uint32_t bmax = BATCH_BYTES_CAP / c.size;
                        if (bmax == 0)
                            bmax = 1;
                        if (c.batch > 1 && c.batch > bmax)
                            c.batch = bmax;
                        uint64_t req = (uint64_t)c.batch * c.size;
                        uint64_t dmax = INFLIGHT_BYTES_CAP / req;
                        if (dmax == 0)
                            dmax = 1;
                        c.depth = c.depth_asked < dmax ? c.depth_asked : (uint32_t)dmax;
                        /* Skip a batch that the cap turned into a copy of an
                         * earlier cell. */
                        int dup = 0;
                        for (size_t k = 0; k < n; k++) {
                            if (cells[k].op == c.op && cells[k].size == c.size &&
                                cells[k].batch == c.batch && cells[k].conns == c.conns &&
                                cells[k].depth == c.depth && cells[k].batch > 1)
                                dup = 1;
                        }
                        if (!dup && n < max)
                            cells[n++] = c;
                    }
                }
            }
        }
    }
    return n;
}

/* Parses a comma-separated list of sizes (with K/M suffixes) or counts. */
static int parse_list(const char *s, uint32_t *out, int max)
{
    int n = 0;
    char *dup = strdup(s), *save = NULL;
    if (!dup)
        return 0;
    for (char *tok = strtok_r(dup, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long v = strtoul(tok, &end, 10);
        if (*end == 'K' || *end == 'k')
            v <<= 10;
        else if (*end == 'M' || *end == 'm')
            v <<= 20;
        if (v > 0)
            out[n++] = (uint32_t)v;
    }
    free(dup);
    return n;
}

/* Prints one measurement to stderr as progress. */
static void progress(const struct ctx *x, int round, const struct bench_cell *c,
                     enum bench_target t, const struct bench_result *r)
{
    char v[32];
    if (r->ok)
        fmt_si(v, sizeof v, r->secs > 0 ? (double)r->items / r->secs : 0);
    fprintf(stderr, "[%d/%d] %-4s %7u B x%-4u c%u P%-2u %-15s %s%s\n", round + 1, x->rounds,
            c->op == OP_GET ? "get" : "push", c->size, c->batch, c->conns, c->depth, target_name(t),
            r->ok ? v : "FAILED: ", r->ok ? " items/s" : r->note);
}

/* Extracts "key:value" or "STAT key value" numbers from a text reply. */
static long long reply_field(const char *reply, const char *key)
{
    const char *p = strstr(reply, key);
    if (!p)
        return -1;
    p += strlen(key);
    while (*p == ':' || *p == ' ')
        p++;
    return strtoll(p, NULL, 10);
}

/* Finds each server's pid (farenad's stat, Redis's INFO, memcached's stats),
 * for the CPU-per-request figures. */
static void discover_pids(struct ctx *x)
{
    char err[160], reply[16384];
    struct bench_cell cell = {OP_GET, 64, 1, 1, 1, 1, 1};
    struct bconn c;
    x->pid[TGT_SOCK_FLOOR] = x->floor_pid;
    if (x->have[TGT_FARENA] &&
        engine_open(&c, &tproto_farena, x->sock[TGT_FARENA], &cell, err, sizeof err) == 0) {
        if (farena_ctl_stat_pid(&c, &x->pid[TGT_FARENA], err, sizeof err) < 0)
            x->pid[TGT_FARENA] = 0;
        engine_close(&c);
    }
    if (x->have[TGT_REDIS] &&
        engine_open(&c, &tproto_redis, x->sock[TGT_REDIS], &cell, err, sizeof err) == 0) {
        if (text_ctl(&c, "INFO server", 1, reply, sizeof reply) == 0)
            x->pid[TGT_REDIS] = (long)reply_field(reply, "process_id");
        engine_close(&c);
    }
    if (x->have[TGT_MC_META] &&
        engine_open(&c, &tproto_mc_meta, x->sock[TGT_MC_META], &cell, err, sizeof err) == 0) {
        if (text_ctl(&c, "stats", 0, reply, sizeof reply) == 0)
            x->pid[TGT_MC_META] = x->pid[TGT_MC_TEXT] = (long)reply_field(reply, "STAT pid");
        engine_close(&c);
    }
}

/* Runs the whole matrix. */
static void run_matrix(struct ctx *x)
{
    struct bench_cell cells[512];
    size_t ncells = make_cells(x, cells, 512);
    for (int round = 0; round < x->rounds; round++) {
        x->npcache = 0;
        for (size_t i = 0; i < ncells; i++) {
            uint64_t stream = ((uint64_t)round << 32) | i;
            for (int t = 0; t < TGT_COUNT; t++) {
                if (!x->have[t])
                    continue;
                struct bench_result r;
                run_one(x, (enum bench_target)t, &cells[i], round, stream, &r);
                if (x->o.verbose || !r.ok)
                    progress(x, round, &cells[i], (enum bench_target)t, &r);
                add_row(x, &cells[i], (enum bench_target)t, round, &r);
            }
        }
        fprintf(stderr, "farena-bench: round %d/%d done\n", round + 1, x->rounds);
    }
}

/* Formats bytes as MiB. */
static double mib(int64_t b)
{
    return b < 0 ? -1 : (double)b / (1 << 20);
}

/* Stores rss_bytes into a key-value server through tp (1 MiB items, batches
 * of 16) and reports its memory. */
static void rss_kv(struct ctx *x, FILE *ex, const char *label, const struct tproto *tp,
                   const char *sock, int redis)
{
    char err[160], reply[16384];
    const uint32_t size = 1u << 20;
    /* memcached takes small batches, paced by its extstore flusher below. */
    const uint32_t batch = redis ? 16 : 1;
    long long stalls = 0;
    uint32_t n = (uint32_t)(x->rss_bytes / size);
    struct bench_cell cell = {OP_SET, size, batch, 1, 1, batch, 1};
    struct bconn c;
    if (engine_open(&c, tp, sock, &cell, err, sizeof err) < 0) {
        fprintf(ex, "| %s | failed: %s | | | | |\n", label, err);
        return;
    }
    long pid = -1;
    if (redis) {
        text_ctl(&c, "FLUSHALL", 1, reply, sizeof reply);
        if (text_ctl(&c, "INFO server", 1, reply, sizeof reply) == 0)
            pid = (long)reply_field(reply, "process_id");
    } else {
        text_ctl(&c, "flush_all", 0, reply, sizeof reply);
        if (text_ctl(&c, "stats", 0, reply, sizeof reply) == 0)
            pid = (long)reply_field(reply, "STAT pid");
    }
    int64_t rss0 = pid > 0 ? probe_rss(pid) : -1;
    uint32_t idx[16];
    int rc = 0;
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; rc == 0 && i < n; i += batch) {
        uint32_t k = n - i < batch ? n - i : batch;
        for (uint32_t j = 0; j < k; j++)
            idx[j] = 1000000 + i + j;
        rc = engine_call(&c, idx, k, err, sizeof err);
        /* memcached evicts what its extstore flusher has not written yet
         * (the flusher wakes only once memory is nearly full): pace the
         * writes to about 200 MB/s. */
        if (!redis) {
            usleep(5000);
            stalls += 5;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    if (rc < 0) {
        fprintf(ex, "| %s | failed: %s | | | | |\n", label, err);
        engine_close(&c);
        return;
    }
    /* Let background flushers (memcached's extstore) settle. */
    sleep(redis ? 1 : 2);
    int64_t rss1 = pid > 0 ? probe_rss(pid) : -1;
    int64_t hwm = pid > 0 ? probe_hwm(pid) : -1;
    int64_t pc = pid > 0 ? probe_pagecache(pid, NULL) : -1;
    char extra[200] = "";
    if (redis && text_ctl(&c, "INFO memory", 1, reply, sizeof reply) == 0) {
        snprintf(extra, sizeof extra, "used_memory %.1f MiB",
                 mib(reply_field(reply, "used_memory")));
    } else if (!redis && text_ctl(&c, "stats", 0, reply, sizeof reply) == 0) {
        long long items = reply_field(reply, "STAT curr_items");
        long long ext = reply_field(reply, "STAT extstore_objects_written");
        long long evict = reply_field(reply, "STAT evictions");
        snprintf(extra, sizeof extra,
                 "%lld of %u items kept, %lld written to extstore, %lld evicted; writes paced "
                 "for the flusher (%.1f s of waits)",
                 items, n, ext, evict, (double)stalls / 1e3);
    }
    fprintf(ex, "| %s | %.1f | %.1f | %.1f | %.1f | %.2f GB/s; %s |\n", label, mib(rss0), mib(rss1),
            mib(hwm), mib(pc), (double)n * size / secs / 1e9, extra);
    if (redis)
        text_ctl(&c, "FLUSHALL", 1, reply, sizeof reply);
    else
        text_ctl(&c, "flush_all", 0, reply, sizeof reply);
    engine_close(&c);
}

/* The memory section: RSS and page cache after storing rss_bytes. */
static void run_rss(struct ctx *x, FILE *ex)
{
    fprintf(ex,
            "## Memory after storing %.1f GiB\n\n1 MiB items in batches of 16 "
            "(push_many / MSET / ms q + mn) on one connection; RSS from "
            "/proc/PID/status, page cache = resident pages of the files the server holds "
            "open (mincore through /proc/PID/fd). Peak RSS is over the server's whole "
            "life, matrix included.\n\n",
            (double)x->rss_bytes / (1u << 30));
    fprintf(ex, "| server | RSS before (MiB) | RSS after (MiB) | peak RSS (MiB) | page cache of "
                "its files (MiB) | notes |\n|---|---|---|---|---|---|\n");
    if (x->have[TGT_FARENA]) {
        /* The matrix daemon first: what the whole matrix left behind. */
        char err[160];
        struct bench_cell cell = {OP_GET, 1u << 20, 1, 1, 1, 1, 1};
        struct bconn c;
        long pid = -1;
        if (engine_open(&c, &tproto_farena, x->sock[TGT_FARENA], &cell, err, sizeof err) == 0 &&
            farena_ctl_stat_pid(&c, &pid, err, sizeof err) == 0) {
            fprintf(ex,
                    "| farenad after the matrix (nothing stored) | – | %.1f | %.1f | %.1f | "
                    "the matrix daemon, datasets released |\n",
                    mib(probe_rss(pid)), mib(probe_hwm(pid)), mib(probe_pagecache(pid, NULL)));
        }
        engine_close(&c);
    }
    if (x->farena_mem_sock) {
        char err[160];
        struct bench_cell cell = {OP_GET, 1u << 20, 1, 1, 1, 1, 1};
        struct bconn c;
        long pid = -1;
        if (engine_open(&c, &tproto_farena, x->farena_mem_sock, &cell, err, sizeof err) < 0 ||
            farena_ctl_stat_pid(&c, &pid, err, sizeof err) < 0) {
            fprintf(ex, "| farenad | failed: %s | | | | |\n", err);
        } else {
            int64_t rss0 = probe_rss(pid);
            uint64_t arena = 0;
            uint64_t t0 = now_ns();
            uint32_t n = (uint32_t)(x->rss_bytes >> 20);
            if (farena_ctl_store(&c, 1u << 20, n, 16, &arena, err, sizeof err) < 0) {
                fprintf(ex, "| farenad | failed: %s | | | | |\n", err);
            } else {
                double secs = (double)(now_ns() - t0) / 1e9;
                sleep(1);
                int64_t rss1 = probe_rss(pid);
                x->farena_rss = rss1;
                fprintf(ex, "| farenad%s | %.1f | %.1f | %.1f | %.1f | stored at %.2f GB/s |\n",
                        x->farena_mem_sock != x->sock[TGT_FARENA] ? " (fresh)" : "", mib(rss0),
                        mib(rss1), mib(probe_hwm(pid)), mib(probe_pagecache(pid, NULL)),
                        (double)x->rss_bytes / secs / 1e9);
                farena_ctl_release(&c, arena, err, sizeof err);
            }
        }
        engine_close(&c);
    }
    if (x->have[TGT_REDIS])
        rss_kv(x, ex, "redis-server", &tproto_redis, x->sock[TGT_REDIS], 1);
    if (x->mc_ext_sock)
        rss_kv(x, ex, "memcached + extstore", &tproto_mc_meta, x->mc_ext_sock, 0);
    else
        fprintf(ex, "| memcached + extstore | not run (no extstore instance) | | | | |\n");
    fprintf(ex, "\n");
}

/* The many-files section. */
static void run_build(struct ctx *x, FILE *ex)
{
    fprintf(ex,
            "## Building an arena of %u files\n\n%u × (writer_new + push of 64 B + "
            "finish), pipelined 64 files at a time on one connection, then one build of "
            "all of them. The in-process floor opens %u anonymous files and writes 64 B to "
            "each (the crate's path). Redis and memcached have no counterpart.\n\n",
            x->build_files, x->build_files, x->build_files);
    fprintf(ex, "| what | total (s) | build alone (ms) | per file (µs) |\n|---|---|---|---|\n");
    if (x->farena_mem_sock) {
        char err[160];
        struct bench_cell cell = {OP_GET, 64, 1, 1, 1, 1, 1};
        struct bconn c;
        double total = 0, build = 0;
        uint64_t arena = 0;
        if (engine_open(&c, &tproto_farena, x->farena_mem_sock, &cell, err, sizeof err) < 0) {
            fprintf(ex, "| farenad | failed: %s | | |\n", err);
        } else {
            if (farena_ctl_build_many(&c, x->build_files, 64, 64, &total, &build, &arena, err,
                                      sizeof err) < 0)
                fprintf(ex, "| farenad | failed: %s | | |\n", err);
            else
                fprintf(ex, "| farenad | %.3f | %.1f | %.1f |\n", total, build * 1e3,
                        total / x->build_files * 1e6);
            engine_close(&c);
        }
    }
    double fl = floor_files_run(x->build_files, 64, x->o.scratch);
    if (fl >= 0)
        fprintf(ex, "| in-process floor | %.3f | – | %.1f |\n", fl, fl / x->build_files * 1e6);
    else
        fprintf(ex, "| in-process floor | failed: %s | | |\n", strerror(errno));
    fprintf(ex, "\n");
}

/* The CPU model name. */
static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ')
                    p++;
                p[strcspn(p, "\n")] = '\0';
                snprintf(out, n, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

/* Writes the raw rows as TSV. */
static void write_raw(const struct ctx *x)
{
    FILE *f = fopen(x->raw, "we");
    if (!f) {
        fprintf(stderr, "farena-bench: %s: %s\n", x->raw, strerror(errno));
        return;
    }
    fprintf(f, "round\ttarget\top\tsize\tbatch\tconns\tdepth\tok\tsecs\treqs\titems\tbytes\t"
               "items_per_s\tp50_us\tp99_us\tsrv_cpu_s\tcli_cpu_s\tnote\n");
    for (size_t i = 0; i < x->nrows; i++) {
        const struct bench_row *r = &x->rows[i];
        fprintf(f,
                "%d\t%s\t%s\t%u\t%u\t%u\t%u\t%d\t%.4f\t%llu\t%llu\t%llu\t%.1f\t%.1f\t%.1f\t%.3f\t%."
                "3f\t%s\n",
                r->round, target_name(r->target), r->cell.op == OP_GET ? "get" : "push",
                r->cell.size, r->cell.batch, r->cell.conns, r->cell.depth, r->res.ok, r->res.secs,
                (unsigned long long)r->res.reqs, (unsigned long long)r->res.items,
                (unsigned long long)r->res.bytes,
                r->res.secs > 0 ? (double)r->res.items / r->res.secs : 0, r->res.p50_us,
                r->res.p99_us, r->res.srv_cpu_s, r->res.cli_cpu_s, r->res.note);
    }
    fclose(f);
}

/* Prints usage. */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: farena-bench [options]\n"
            "  --farena SOCK          farenad socket\n"
            "  --farena-mem SOCK      a fresh farenad for the memory and build sections\n"
            "  --farena-cold SOCK     a farenad for the cold section (runs the section)\n"
            "  --cold-only            only the cold section (socket: --farena-cold or --farena)\n"
            "  --cold-bytes BYTES     cold dataset, up to 4095M (default 2G; quick 64M)\n"
            "  --cold-seconds S       longest cold or latency cell (default 4; quick 0.3)\n"
            "  --cold-conns N         cold readers and floor threads (default 16)\n"
            "  --cold-threads N       client threads of the cold readers (default: CPUs)\n"
            "  --syscalls TOOL        count farenad's syscalls per get: auto (perf and\n"
            "                         strace), perf, strace, none (default auto)\n"
            "  --redis SOCK           redis-server unix socket\n"
            "  --memcached SOCK       memcached unix socket (meta and text protocols)\n"
            "  --memcached-ext SOCK   memcached with extstore, for the memory section\n"
            "  --scratch DIR          temp files of the floors (default $TMPDIR or /var/tmp)\n"
            "  --rounds N             rounds of the matrix and the cold section (default 5)\n"
            "  --seconds S            measured seconds per measurement (default 0.5)\n"
            "  --warmup S             warm-up seconds per measurement (default 0.05)\n"
            "  --requests N           request bound per measurement (default 50000000)\n"
            "  --seed N               seed of the key streams (default 1)\n"
            "  --quick                one round, small matrix, short measurements\n"
            "  --sizes LIST --get-batches LIST --push-batches LIST --conns LIST --depths LIST\n"
            "  --ops get|push|both    which half of the matrix (default both)\n"
            "  --dataset BYTES        bytes stored per payload size for gets (default 64M)\n"
            "  --rss-bytes BYTES      memory section: bytes to store (default 2G; 0 = skip)\n"
            "  --build-files N        files of the many-files build (default 10000; 0 = skip)\n"
            "  --server-cpu N         pin the forked socket-floor server to CPU N\n"
            "  --floor-sendfile BYTES socket floor: sendfile items this large (default 16K)\n"
            "  --out FILE             markdown report (default bench-report.md)\n"
            "  --raw FILE             every measurement as TSV\n"
            "  --command STR          the command line to record in the report\n"
            "  --note STR             a line for the report's notes (repeatable)\n"
            "  --verbose              print every measurement\n");
}

/* Parses a byte count with K/M/G suffixes. */
static uint64_t parse_bytes(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    switch (*end) {
    case 'G':
    case 'g':
        v <<= 30;
        break;
    case 'M':
    case 'm':
        v <<= 20;
        break;
    case 'K':
    case 'k':
        v <<= 10;
        break;
    default:
        break;
    }
    return v;
}

int main(int argc, char **argv)
{
    static struct ctx x;
    x.o.seconds = 0.5;
    x.o.warmup = 0.05;
    x.o.max_requests = 50000000;
    x.o.seed = 1;
    x.o.dataset_bytes = 64u << 20;
    x.o.server_cpu = -1;
    x.rounds = 5;
    x.farena_rss = -1;
    x.floor_sendfile_min = 16u << 10;
    x.ops = 3;
    x.out = "bench-report.md";
    x.cold.syscalls = "auto";
    x.cold.conns = 16;
    x.rss_bytes = 2ull << 30;
    x.build_files = 10000;
    const char *tmp = getenv("TMPDIR");
    x.o.scratch = tmp && *tmp ? tmp : "/var/tmp";
    const char *sizes = NULL, *gb = NULL, *sb = NULL, *cs = NULL, *ds = NULL;
    int rounds_set = 0, seconds_set = 0, rss_set = 0, build_set = 0, dataset_set = 0;
    enum {
        O_FARENA = 256,
        O_FARENA_MEM,
        O_FARENA_COLD,
        O_COLD_ONLY,
        O_COLD_BYTES,
        O_COLD_SECONDS,
        O_COLD_CONNS,
        O_COLD_THREADS,
        O_SYSCALLS,
        O_REDIS,
        O_MC,
        O_MCEXT,
        O_SCRATCH,
        O_ROUNDS,
        O_SECONDS,
        O_WARMUP,
        O_REQUESTS,
        O_SEED,
        O_QUICK,
        O_SIZES,
        O_GB,
        O_SB,
        O_CONNS,
        O_DEPTHS,
        O_DATASET,
        O_RSS,
        O_BUILD,
        O_SENDFILE,
        O_OPS,
        O_CPU,
        O_OUT,
        O_RAW,
        O_COMMAND,
        O_NOTE,
        O_VERBOSE,
        O_HELP
    };
    static const struct option opts[] = {
        {"farena", required_argument, NULL, O_FARENA},
        {"farena-mem", required_argument, NULL, O_FARENA_MEM},
        {"farena-cold", required_argument, NULL, O_FARENA_COLD},
        {"cold-only", no_argument, NULL, O_COLD_ONLY},
        {"cold-bytes", required_argument, NULL, O_COLD_BYTES},
        {"cold-seconds", required_argument, NULL, O_COLD_SECONDS},
        {"cold-conns", required_argument, NULL, O_COLD_CONNS},
        {"cold-threads", required_argument, NULL, O_COLD_THREADS},
        {"syscalls", required_argument, NULL, O_SYSCALLS},
        {"redis", required_argument, NULL, O_REDIS},
        {"memcached", required_argument, NULL, O_MC},
        {"memcached-ext", required_argument, NULL, O_MCEXT},
        {"scratch", required_argument, NULL, O_SCRATCH},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"requests", required_argument, NULL, O_REQUESTS},
        {"seed", required_argument, NULL, O_SEED},
        {"quick", no_argument, NULL, O_QUICK},
        {"sizes", required_argument, NULL, O_SIZES},
        {"get-batches", required_argument, NULL, O_GB},
        {"push-batches", required_argument, NULL, O_SB},
        {"conns", required_argument, NULL, O_CONNS},
        {"depths", required_argument, NULL, O_DEPTHS},
        {"dataset", required_argument, NULL, O_DATASET},
        {"rss-bytes", required_argument, NULL, O_RSS},
        {"build-files", required_argument, NULL, O_BUILD},
        {"server-cpu", required_argument, NULL, O_CPU},
        {"floor-sendfile", required_argument, NULL, O_SENDFILE},
        {"ops", required_argument, NULL, O_OPS},
        {"out", required_argument, NULL, O_OUT},
        {"raw", required_argument, NULL, O_RAW},
        {"command", required_argument, NULL, O_COMMAND},
        {"note", required_argument, NULL, O_NOTE},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_FARENA:
            x.sock[TGT_FARENA] = optarg;
            break;
        case O_FARENA_MEM:
            x.farena_mem_sock = optarg;
            break;
        case O_FARENA_COLD:
            x.farena_cold_sock = optarg;
            break;
        case O_COLD_ONLY:
            x.cold_only = 1;
            break;
        case O_COLD_BYTES:
            x.cold.bytes = parse_bytes(optarg);
            break;
        case O_COLD_SECONDS:
            x.cold.seconds = atof(optarg);
            break;
        case O_COLD_CONNS:
            x.cold.conns = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_COLD_THREADS:
            x.cold.threads = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_SYSCALLS:
            x.cold.syscalls = optarg;
            break;
        case O_REDIS:
            x.sock[TGT_REDIS] = optarg;
            break;
        case O_MC:
            x.sock[TGT_MC_META] = x.sock[TGT_MC_TEXT] = optarg;
            break;
        case O_MCEXT:
            x.mc_ext_sock = optarg;
            break;
        case O_SCRATCH:
            x.o.scratch = optarg;
            break;
        case O_ROUNDS:
            x.rounds = atoi(optarg);
            rounds_set = 1;
            break;
        case O_SECONDS:
            x.o.seconds = atof(optarg);
            seconds_set = 1;
            break;
        case O_WARMUP:
            x.o.warmup = atof(optarg);
            break;
        case O_REQUESTS:
            x.o.max_requests = strtoull(optarg, NULL, 10);
            break;
        case O_SEED:
            x.o.seed = strtoull(optarg, NULL, 10);
            break;
        case O_QUICK:
            x.quick = 1;
            break;
        case O_SIZES:
            sizes = optarg;
            break;
        case O_GB:
            gb = optarg;
            break;
        case O_SB:
            sb = optarg;
            break;
        case O_CONNS:
            cs = optarg;
            break;
        case O_DEPTHS:
            ds = optarg;
            break;
        case O_DATASET:
            x.o.dataset_bytes = parse_bytes(optarg);
            dataset_set = 1;
            break;
        case O_RSS:
            x.rss_bytes = parse_bytes(optarg);
            rss_set = 1;
            break;
        case O_BUILD:
            x.build_files = (uint32_t)strtoul(optarg, NULL, 10);
            build_set = 1;
            break;
        case O_CPU:
            x.o.server_cpu = atoi(optarg);
            break;
        case O_SENDFILE:
            x.floor_sendfile_min = (uint32_t)parse_bytes(optarg);
            break;
        case O_OPS:
            x.ops = strcmp(optarg, "get") == 0 ? 1 : strcmp(optarg, "push") == 0 ? 2 : 3;
            break;
        case O_OUT:
            x.out = optarg;
            break;
        case O_RAW:
            x.raw = optarg;
            break;
        case O_COMMAND:
            x.command = optarg;
            break;
        case O_NOTE:
            if (x.nnotes < MAX_NOTES)
                x.notes[x.nnotes++] = optarg;
            break;
        case O_VERBOSE:
            x.o.verbose = 1;
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (x.quick) {
        if (!rounds_set)
            x.rounds = 1;
        if (!seconds_set)
            x.o.seconds = 0.15;
        if (!rss_set)
            x.rss_bytes = 256u << 20;
        if (!build_set)
            x.build_files = 1000;
        if (!dataset_set)
            x.o.dataset_bytes = 16u << 20;
        x.o.warmup = 0.03;
        if (!x.cold.bytes)
            x.cold.bytes = 64u << 20;
        if (x.cold.seconds <= 0)
            x.cold.seconds = 0.3;
    }
    if (!x.cold.bytes)
        x.cold.bytes = 2ull << 30;
    if (x.cold.seconds <= 0)
        x.cold.seconds = 4;
    if (x.cold_only && !x.farena_cold_sock)
        x.farena_cold_sock = x.sock[TGT_FARENA];
    if (x.cold_only && !x.farena_cold_sock)
        die("--cold-only needs --farena-cold or --farena");
    if (x.cold.conns == 0 || x.cold.conns > 1024 || x.cold.seconds <= 0 ||
        (strcmp(x.cold.syscalls, "auto") != 0 && strcmp(x.cold.syscalls, "perf") != 0 &&
         strcmp(x.cold.syscalls, "strace") != 0 && strcmp(x.cold.syscalls, "none") != 0))
        die("bad cold options (see --help)");
    x.nsizes = parse_list(sizes ? sizes : x.quick ? "64,64K" : "64,1K,64K,1M", x.sizes, MAX_SIZES);
    x.ngb = parse_list(gb ? gb : x.quick ? "1,100" : "1,100,1000", x.gbatches, MAX_LIST);
    x.nsb = parse_list(sb ? sb : x.quick ? "1,100" : "1,100,1000", x.sbatches, MAX_LIST);
    x.nconns = parse_list(cs ? cs : x.quick ? "1,4" : "1,4", x.conns, MAX_LIST);
    x.ndepths = parse_list(ds ? ds : x.quick ? "1,16" : "1,16", x.depths, MAX_LIST);
    if (x.rounds < 1 || x.rounds > 50 || x.nsizes == 0 || x.ngb == 0 || x.nsb == 0 ||
        x.nconns == 0 || x.ndepths == 0 || x.o.seconds <= 0)
        die("bad options (see --help)");
    for (int i = 0; i < x.nsizes; i++) {
        if (x.sizes[i] > BENCH_MAX_SIZE)
            die("size %u is over the %u maximum", x.sizes[i], BENCH_MAX_SIZE);
    }
    for (int i = 0; i < x.ngb; i++) {
        if (x.gbatches[i] > BENCH_MAX_BATCH)
            die("batch %u over %u", x.gbatches[i], BENCH_MAX_BATCH);
    }
    for (int i = 0; i < x.nsb; i++) {
        if (x.sbatches[i] > BENCH_MAX_BATCH)
            die("batch %u over %u", x.sbatches[i], BENCH_MAX_BATCH);
    }
    for (int i = 0; i < x.ndepths; i++) {
        if (x.depths[i] > BENCH_MAX_DEPTH)
            die("depth %u over %u", x.depths[i], BENCH_MAX_DEPTH);
    }
    for (int t = 0; t < TGT_COUNT; t++)
        x.have[t] = x.sock[t] != NULL;
    if (!x.farena_mem_sock)
        x.farena_mem_sock = x.sock[TGT_FARENA];
    x.have[TGT_SOCK_FLOOR] = x.have[TGT_PREAD_FLOOR] = 1;

    snprintf(x.floor_dir, sizeof x.floor_dir, "/tmp/farena-bench-XXXXXX");
    if (!mkdtemp(x.floor_dir))
        die("mkdtemp: %s", strerror(errno));
    snprintf(x.floor_sock, sizeof x.floor_sock, "%s/floor.sock", x.floor_dir);
    if (!x.cold_only) {
        x.floor_pid = floor_server_start(x.floor_sock, x.o.scratch, x.o.dataset_bytes,
                                         x.floor_sendfile_min, x.o.server_cpu);
        if (x.floor_pid < 0)
            die("cannot start the socket floor server: %s", strerror(errno));
    }

    uint64_t steal0 = 0, total0 = 0, steal1 = 0, total1 = 0;
    probe_steal(&steal0, &total0);
    double load0[3] = {0, 0, 0};
    getloadavg(load0, 3);
    time_t started = time(NULL);
    uint64_t t_start = now_ns();

    if (!x.cold_only) {
        discover_pids(&x);
        run_matrix(&x);
    }
    if (x.farena_ctl_open) {
        engine_close(&x.farena_ctl);
        x.farena_ctl_open = 0;
    }
    char *extra = NULL;
    size_t extra_len = 0;
    FILE *ex = open_memstream(&extra, &extra_len);
    if (!ex)
        die("out of memory");
    if (x.rss_bytes > 0 && !x.cold_only)
        run_rss(&x, ex);
    if (x.build_files > 0 && !x.cold_only)
        run_build(&x, ex);
    char cold_raw[4096];
    if (x.farena_cold_sock) {
        x.cold.sock = x.farena_cold_sock;
        x.cold.rounds = x.rounds;
        x.cold.tmpdir = x.floor_dir;
        x.cold.raw = NULL;
        if (x.raw) {
            size_t l = strlen(x.raw);
            if (l > 4 && strcmp(x.raw + l - 4, ".tsv") == 0)
                l -= 4;
            snprintf(cold_raw, sizeof cold_raw, "%.*s-cold.tsv", (int)l, x.raw);
            x.cold.raw = cold_raw;
        }
        cold_run(&x.cold, &x.o, ex);
    }
    if (x.nnotes > 0) {
        fprintf(ex, "## Notes\n\n");
        for (int i = 0; i < x.nnotes; i++)
            fprintf(ex, "- %s\n", x.notes[i]);
        fprintf(ex, "\n");
    }
    fclose(ex);

    if (x.floor_pid > 0)
        floor_server_stop(x.floor_pid);
    unlink(x.floor_sock);
    rmdir(x.floor_dir);
    probe_steal(&steal1, &total1);
    double elapsed = (double)(now_ns() - t_start) / 1e9;

    char *header = NULL;
    size_t header_len = 0;
    FILE *hf = open_memstream(&header, &header_len);
    if (!hf)
        die("out of memory");
    char date[64], model[128];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&started));
    cpu_model(model, sizeof model);
    struct utsname un;
    uname(&un);
    struct sysinfo si;
    sysinfo(&si);
    double steal_pct =
        total1 > total0 ? 100.0 * (double)(steal1 - steal0) / (double)(total1 - total0) : 0;
    /* Where the client ran: one CPU, the servers' one, or anywhere. */
    char pin_text[128] = "; not pinned";
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) == 0 && CPU_COUNT(&mine) == 1 &&
        x.o.server_cpu >= 0 && CPU_ISSET(x.o.server_cpu, &mine))
        snprintf(pin_text, sizeof pin_text,
                 "; pinned: servers, socket floor and client all on CPU %d (taskset)",
                 x.o.server_cpu);
    else if (x.o.server_cpu >= 0)
        snprintf(pin_text, sizeof pin_text, "; socket floor pinned to CPU %d, client %s",
                 x.o.server_cpu, CPU_COUNT(&mine) == 1 ? "on another CPU" : "not pinned");
    fprintf(hf, "# farena benchmark report\n\n");
    fprintf(hf, "- Date: %s (%.0f s)\n", date, elapsed);
    fprintf(hf, "- Machine: %ld cores (%s), %.1f GiB RAM, kernel %s %s\n",
            sysconf(_SC_NPROCESSORS_ONLN), model, (double)si.totalram * si.mem_unit / (1u << 30),
            un.sysname, un.release);
    fprintf(hf, "- CPU steal during the run (/proc/stat): %.2f %%; load average at start %.2f\n",
            steal_pct, load0[0]);
    fprintf(hf, "- Command: `%s`\n", x.command ? x.command : "farena-bench");
    if (x.cold_only) {
        fprintf(hf,
                "- Settings: the cold section alone: %d round%s, %.2f GiB cold dataset, cells of "
                "at most %.2f s, %u cold readers, seed %llu%s\n",
                x.rounds, x.rounds == 1 ? "" : "s", (double)x.cold.bytes / (1u << 30),
                x.cold.seconds, x.cold.conns, (unsigned long long)x.o.seed, pin_text);
    } else {
        fprintf(hf,
                "- Settings: %d round%s, %.2f s measured + %.2f s warm-up per measurement, seed "
                "%llu, %.0f MiB get dataset per size, targets interleaved per cell%s\n",
                x.rounds, x.rounds == 1 ? "" : "s", x.o.seconds, x.o.warmup,
                (unsigned long long)x.o.seed, (double)x.o.dataset_bytes / (1 << 20), pin_text);
        fprintf(hf,
                "- Caps: a batch over %u MiB and a connection's requests in flight over %u MiB "
                "are lowered (shown as asked→used)\n",
                BATCH_BYTES_CAP >> 20, INFLIGHT_BYTES_CAP >> 20);
        fprintf(hf, "- Targets: farena %s, Redis %s, memcached %s; one client thread (epoll)\n",
                x.have[TGT_FARENA] ? "yes" : "SKIPPED", x.have[TGT_REDIS] ? "yes" : "SKIPPED",
                x.have[TGT_MC_META] ? "yes" : "SKIPPED");
    }
    fclose(hf);

    if (report_write(x.out, x.rows, x.nrows, header, extra, x.have, x.farena_rss, x.rss_bytes) < 0)
        die("cannot write %s: %s", x.out, strerror(errno));
    if (x.raw)
        write_raw(&x);
    fprintf(stderr, "farena-bench: report written to %s\n", x.out);
    free(header);
    free(extra);
    free(x.rows);
    return 0;
}
