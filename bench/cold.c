/* The cold section: reads that miss the page cache, head-of-line blocking
 * behind them and behind a push stream, and system calls per get.
 *
 * Reads are made cold without root: before every cell the bench writes back
 * and drops from the page cache every regular file farenad holds, opening
 * each read-only through /proc/PID/fd (the pid from SO_PEERCRED). A cold
 * cell then reads the dataset's blocks in a random order, each block at most
 * once (and at most a quarter of the 4 KiB blocks, before readahead wakes
 * up), so reads miss whatever the cell's length. The floor is the crate's
 * path: N threads of this process doing pread in the same order on the same
 * evicted bytes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* The cold dataset is pushed as items of this size; gets read any block. */
#define COLD_ITEM (1u << 20)
/* The hot item: HOT_KEYS items of HOT_SIZE bytes, all in one page. */
#define HOT_SIZE 64u
#define HOT_KEYS 64u
/* The push stream of the write-stall cell. */
#define PUSH_CONNS 2u
#define PUSH_DEPTH 4u
/* The pipelined get whose system calls are counted. */
#define SYS_DEPTH 16u
/* Largest rounds kept. */
#define COLD_MAX_ROUNDS 50
/* A cell reads at most 1/COLD_SHARE_4K of the 4 KiB blocks. Past that, the
 * kernel's readahead starts to fire (it reads ahead when the pages before a
 * miss are cached), and a "cold" read would often hit. */
#define COLD_SHARE_4K 4u

/* The measurements of the section, per round. */
enum cold_kind {
    CK_F4K,      /* farena, cold random 4 KiB gets */
    CK_P4K,      /* pread floor, same */
    CK_F1M,      /* farena, cold 1 MiB gets */
    CK_P1M,      /* pread floor, same */
    CK_HOT,      /* hot get alone */
    CK_HOT_COLD, /* hot get with the cold readers */
    CK_COLD_BG,  /* the cold readers of that cell */
    CK_HOT_PUSH, /* hot get with the push stream */
    CK_PUSH_BG,  /* the push stream of that cell */
    CK_COUNT
};

static const char *const ck_name[CK_COUNT] = {
    "cold 4 KiB gets",   "cold 4 KiB preads",   "cold 1 MiB gets",
    "cold 1 MiB preads", "hot get alone",       "hot get with cold readers",
    "cold readers",      "hot get with pushes", "push stream"};

/* State of one run of the section: static in cold_run, which owns the
 * floor's fd and the arenas; co and o are borrowed for the call. */
struct cold {
    const struct cold_opts *co;
    const struct bench_opts *o;
    long pid;
    uint64_t bytes;
    uint64_t cold_arena, hot_arena;
    int floor_fd;
    int floor_shared; /* the floor reads farenad's own file */
    int rounds;
    struct bench_result res[CK_COUNT][COLD_MAX_ROUNDS];
    /* page cache filled by a cold cell ÷ the bytes it read (1: no readahead) */
    double amp[CK_COUNT][COLD_MAX_ROUNDS];
    int evicted_files;
    int64_t resident_max; /* most page cache left right after an eviction */
    double evict_secs_max;
    char evict_err[160];
};

/* Evicts farenad's files (and the floor's own file). Returns 0 or -1. */
static int cold_evict(struct cold *k)
{
    uint64_t t0 = now_ns();
    int n = probe_evict(k->pid);
    if (n < 0) {
        snprintf(k->evict_err, sizeof k->evict_err, "cannot read /proc/%ld/fd: %s", k->pid,
                 strerror(errno));
        return -1;
    }
    if (!k->floor_shared && k->floor_fd >= 0 && probe_evict_fd(k->floor_fd) < 0) {
        snprintf(k->evict_err, sizeof k->evict_err, "evicting the floor's file: %s",
                 strerror(errno));
        return -1;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    if (secs > k->evict_secs_max)
        k->evict_secs_max = secs;
    k->evicted_files = n;
    int64_t res = probe_pagecache(k->pid, NULL);
    if (res > k->resident_max)
        k->resident_max = res;
    return 0;
}

/* A random order of the n blocks 0..n-1 (Fisher-Yates). */
static uint32_t *cold_perm(uint32_t n, uint64_t seed)
{
    uint32_t *p = malloc((size_t)n * sizeof *p);
    if (!p)
        die("out of memory");
    for (uint32_t i = 0; i < n; i++)
        p[i] = i;
    uint64_t s = seed;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rng_next(&s) % (i + 1));
        uint32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

/* Prints one measurement as progress. */
static void cold_progress(int round, enum cold_kind ck, const struct bench_result *r)
{
    if (!r->ok) {
        fprintf(stderr, "[cold %d] %-26s FAILED: %s\n", round + 1, ck_name[ck], r->note);
        return;
    }
    fprintf(stderr, "[cold %d] %-26s %8.0f items/s %7.3f GB/s p50 %.0f µs p99 %.0f µs (%.2f s)\n",
            round + 1, ck_name[ck], r->secs > 0 ? (double)r->items / r->secs : 0,
            r->secs > 0 ? (double)r->bytes / r->secs / 1e9 : 0, r->p50_us, r->p99_us, r->secs);
}

/* One client thread of a cold farena cell. */
struct cold_client {
    pthread_t th;
    const char *sock;
    struct bench_cell cell;
    struct bench_group g;
    struct bench_opts o;
    uint64_t stream;
    long pid;
};

/* A client thread: runs its connections over its slice of the order. */
static void *cold_client_main(void *arg)
{
    struct cold_client *t = arg;
    engine_mix(t->sock, &t->g, 1, t->stream, t->pid, &t->o);
    return NULL;
}

/* The client threads of farena's cold readers: --cold-threads, else one
 * per CPU; at most one per connection. */
static uint32_t cold_nthreads(const struct cold_opts *co)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t nt = co->threads ? co->threads : ncpu > 1 ? (uint32_t)ncpu : 1;
    return nt < co->conns ? nt : co->conns > 0 ? co->conns : 1;
}

/* Runs farena's side of a cold throughput cell on as many client threads as
 * there are CPUs, or --cold-threads (at most one per connection), each with its share of the
 * connections and its own slice of the block order, and merges their
 * results into r: rates add up, latencies are the worst thread's. One epoll
 * thread would measure the client instead of farenad: every reply is
 * copied out of the socket by the client, and the floor's threads spread
 * their copies over every CPU. */
static void cold_farena_run(struct cold *k, const struct bench_cell *cell, uint32_t nkeys,
                            const uint32_t *perm, uint32_t nread, uint64_t stream,
                            const struct bench_opts *o, struct bench_result *r)
{
    uint32_t nt = cold_nthreads(k->co);
    struct cold_client *t = calloc(nt, sizeof *t);
    if (!t)
        die("out of memory");
    for (uint32_t i = 0; i < nt; i++) {
        t[i].sock = k->co->sock;
        t[i].cell = *cell;
        t[i].cell.conns = cell->conns / nt + (i < cell->conns % nt);
        t[i].g.tp = &tproto_farena;
        t[i].g.cell = &t[i].cell;
        t[i].g.nkeys = nkeys;
        t[i].g.arena = k->cold_arena;
        t[i].g.perm = perm + (uint64_t)nread * i / nt;
        t[i].g.nperm = (uint32_t)((uint64_t)nread * (i + 1) / nt - (uint64_t)nread * i / nt);
        t[i].o = *o;
        t[i].stream = stream ^ ((uint64_t)i << 48);
        t[i].pid = k->pid;
        if (pthread_create(&t[i].th, NULL, cold_client_main, &t[i]) != 0)
            die("pthread_create failed");
    }
    double items = 0, bytes = 0, reqs = 0;
    memset(r, 0, sizeof *r);
    r->ok = 1;
    for (uint32_t i = 0; i < nt; i++) {
        pthread_join(t[i].th, NULL);
        const struct bench_result *x = &t[i].g.res;
        if (!x->ok) {
            if (r->ok)
                snprintf(r->note, sizeof r->note, "%s", x->note);
            r->ok = 0;
            continue;
        }
        if (x->secs > 0) {
            items += (double)x->items / x->secs;
            bytes += (double)x->bytes / x->secs;
            reqs += (double)x->reqs / x->secs;
        }
        if (x->secs > r->secs)
            r->secs = x->secs;
        if (x->p50_us > r->p50_us)
            r->p50_us = x->p50_us;
        if (x->p99_us > r->p99_us)
            r->p99_us = x->p99_us;
        if (x->p999_us > r->p999_us)
            r->p999_us = x->p999_us;
        r->samples += x->samples;
        r->all += x->all;
        if (x->srv_cpu_s > r->srv_cpu_s)
            r->srv_cpu_s = x->srv_cpu_s;
        if (x->cli_cpu_s > r->cli_cpu_s)
            r->cli_cpu_s = x->cli_cpu_s;
    }
    r->items = (uint64_t)(items * r->secs + 0.5);
    r->bytes = (uint64_t)(bytes * r->secs + 0.5);
    r->reqs = (uint64_t)(reqs * r->secs + 0.5);
    free(t);
}

/* The cold throughput cells of one size: farena and the floor, each on
 * freshly evicted data, in the same block order. */
static void cold_reads(struct cold *k, int round, uint32_t size, enum cold_kind fk,
                       enum cold_kind pk)
{
    uint32_t n = (uint32_t)(k->bytes / size);
    uint32_t *perm = cold_perm(n, rng_seed(k->o->seed, (uint64_t)round, size, 0xc01d));
    uint32_t nread = size == 4096 ? n / COLD_SHARE_4K : n;
    struct bench_cell cell = {OP_GET, size, 1, k->co->conns, 1, 1, 1};
    struct bench_opts o = *k->o;
    o.seconds = k->co->seconds;
    o.warmup = 0;
    for (int t = 0; t < 2; t++) {
        int floor_turn = (t + round) % 2;
        enum cold_kind ck = floor_turn ? pk : fk;
        struct bench_result *r = &k->res[ck][round];
        if (cold_evict(k) < 0) {
            snprintf(r->note, sizeof r->note, "%s", k->evict_err);
        } else if (floor_turn) {
            floor_cold_run(k->floor_fd, size, perm, nread, k->co->conns, k->co->seconds, r);
        } else {
            cold_farena_run(k, &cell, n, perm, nread, ((uint64_t)round << 32) | size, &o, r);
        }
        int64_t cached = floor_turn && !k->floor_shared ? probe_resident_fd(k->floor_fd)
                                                        : probe_pagecache(k->pid, NULL);
        if (r->ok && r->all > 0 && cached >= 0)
            k->amp[ck][round] = (double)cached / ((double)r->all * size);
        cold_progress(round, ck, r);
    }
    free(perm);
}

/* The hot-get latency cells: alone, with the cold readers, with pushes. */
static void cold_latency(struct cold *k, int round)
{
    struct bench_cell hot_cell = {OP_GET, HOT_SIZE, 1, 1, 1, 1, 1};
    struct bench_cell cold_cell = {OP_GET, 4096, 1, k->co->conns, 1, 1, 1};
    struct bench_cell push_cell = {OP_SET, COLD_ITEM, 1, PUSH_CONNS, PUSH_DEPTH, 1, PUSH_DEPTH};
    struct bench_opts o = *k->o;
    o.seconds = k->co->seconds;
    o.warmup = 0.2;
    uint32_t n = (uint32_t)(k->bytes / 4096);
    /* The pushes are discarded with their writers; they may add up to the
     * dataset's size on disk (and no more than a file holds). */
    uint64_t push_cap = k->bytes < (3ull << 30) ? k->bytes : (3ull << 30);
    for (int which = 0; which < 3; which++) {
        struct bench_group g[2];
        memset(g, 0, sizeof g);
        g[0].tp = &tproto_farena;
        g[0].cell = &hot_cell;
        g[0].nkeys = HOT_KEYS;
        g[0].arena = k->hot_arena;
        g[1].tp = &tproto_farena;
        uint32_t *perm = NULL;
        enum cold_kind hk = which == 0 ? CK_HOT : which == 1 ? CK_HOT_COLD : CK_HOT_PUSH;
        enum cold_kind bk = which == 1 ? CK_COLD_BG : CK_PUSH_BG;
        if (which == 1) {
            perm = cold_perm(n, rng_seed(k->o->seed, (uint64_t)round, 4096, 0x407));
            g[1].cell = &cold_cell;
            g[1].nkeys = n;
            g[1].arena = k->cold_arena;
            g[1].perm = perm;
            g[1].nperm = n / COLD_SHARE_4K;
        } else if (which == 2) {
            g[1].cell = &push_cell;
            g[1].max_reqs = push_cap / COLD_ITEM;
        }
        if (cold_evict(k) < 0) {
            snprintf(k->res[hk][round].note, sizeof k->res[hk][round].note, "%s", k->evict_err);
        } else {
            /* The warm-up's first get brings the hot page back. */
            engine_mix(k->co->sock, g, which == 0 ? 1 : 2, ((uint64_t)round << 32) | 0x407u, k->pid,
                       &o);
            k->res[hk][round] = g[0].res;
            if (which > 0)
                k->res[bk][round] = g[1].res;
        }
        cold_progress(round, hk, &k->res[hk][round]);
        if (which > 0)
            cold_progress(round, bk, &k->res[bk][round]);
        free(perm);
    }
    /* Let the writeback of the pushes (discarded with their writers) end
     * before the next cold cell. */
    sleep(1);
}

/* Counts farenad's system calls over a pipelined 64 B get cell with one
 * tool. Writes a table row to ex. Returns syscalls per get, or -1. */
static double cold_syscalls(struct cold *k, const char *tool, FILE *ex)
{
    char out[512], err[200] = "", top[200] = "";
    snprintf(out, sizeof out, "%s/syscalls-%s.txt", k->co->tmpdir, tool);
    struct bench_cell cell = {OP_GET, HOT_SIZE, 1, 1, SYS_DEPTH, 1, SYS_DEPTH};
    struct bench_opts o = *k->o;
    o.seconds = k->co->seconds < 2 ? k->co->seconds : 2;
    o.warmup = 0.05;
    /* strace stops the daemon at every call: fewer gets keep it short. */
    o.max_requests = strcmp(tool, "strace") == 0 ? 50000 : 200000;
    long cpid = probe_sys_start(k->pid, tool, out, err, sizeof err);
    if (cpid < 0) {
        fprintf(ex, "| %s | not measured: %s | | | |\n", tool, err);
        fprintf(stderr, "[cold] syscalls (%s): %s\n", tool, err);
        return -1;
    }
    struct bench_result r;
    engine_run(&tproto_farena, k->co->sock, &cell, HOT_KEYS, k->hot_arena, 0x5c, k->pid, &o, &r);
    int64_t n = probe_sys_stop(cpid, tool, out, top, sizeof top, err, sizeof err);
    if (!r.ok || n < 0) {
        fprintf(ex, "| %s | not measured: %s | | | |\n", tool, r.ok ? err : r.note);
        fprintf(stderr, "[cold] syscalls (%s): %s\n", tool, r.ok ? err : r.note);
        return -1;
    }
    double per = r.all ? (double)n / (double)r.all : -1;
    fprintf(ex, "| %s | %llu | %lld | %.3f | %s |\n", tool, (unsigned long long)r.all, (long long)n,
            per, top[0] ? top : "–");
    fprintf(stderr, "[cold] syscalls (%s): %lld for %llu gets: %.3f per get\n", tool, (long long)n,
            (unsigned long long)r.all, per);
    return per;
}

/* Compares doubles (qsort). */
static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* What to aggregate over the rounds. */
enum cstat {
    CS_ITEMS, /* items per second */
    CS_BYTES, /* bytes per second */
    CS_P50,   /* latency percentiles, µs */
    CS_P99,
    CS_P999,
    CS_SAMPLES, /* latency samples */
    CS_N,       /* items in the window */
    CS_SRV_CPU, /* server CPU µs per item */
    CS_CLI_CPU, /* bench CPU µs per item */
    CS_AMP      /* page cache filled ÷ bytes read */
};

/* Median, min and max of one statistic over the rounds (n 0: no data). */
struct cagg {
    int n;
    double med, min, max;
};

/* Aggregates statistic s of kind ck. */
static struct cagg cold_agg(const struct cold *k, enum cold_kind ck, enum cstat s)
{
    struct cagg a = {0, 0, 0, 0};
    double v[COLD_MAX_ROUNDS];
    for (int i = 0; i < k->rounds; i++) {
        const struct bench_result *r = &k->res[ck][i];
        if (!r->ok || r->secs <= 0)
            continue;
        if ((s == CS_SRV_CPU && r->srv_cpu_s < 0) ||
            ((s == CS_SRV_CPU || s == CS_CLI_CPU) && r->items == 0))
            continue;
        if (s == CS_AMP && k->amp[ck][i] <= 0)
            continue;
        double x = s == CS_AMP       ? k->amp[ck][i]
                   : s == CS_SRV_CPU ? r->srv_cpu_s / (double)r->items * 1e6
                   : s == CS_CLI_CPU ? r->cli_cpu_s / (double)r->items * 1e6
                   : s == CS_ITEMS   ? (double)r->items / r->secs
                   : s == CS_BYTES   ? (double)r->bytes / r->secs
                   : s == CS_P50     ? r->p50_us
                   : s == CS_P99     ? r->p99_us
                   : s == CS_P999    ? r->p999_us
                   : s == CS_SAMPLES ? (double)r->samples
                                     : (double)r->items;
        v[a.n++] = x;
    }
    if (a.n == 0)
        return a;
    qsort(v, (size_t)a.n, sizeof v[0], cmp_d);
    a.min = v[0];
    a.max = v[a.n - 1];
    a.med = a.n % 2 ? v[a.n / 2] : (v[a.n / 2 - 1] + v[a.n / 2]) / 2;
    return a;
}

/* Formats "median (min–max)" of a statistic: rates with k/M suffixes,
 * bandwidth in GB/s, latencies in µs; the first failure note when no round
 * succeeded. */
static void cold_fmt(char *out, size_t n, const struct cold *k, enum cold_kind ck, enum cstat s)
{
    struct cagg a = cold_agg(k, ck, s);
    if (a.n == 0) {
        const char *why = "not measured";
        for (int i = 0; i < k->rounds; i++) {
            if (!k->res[ck][i].ok && k->res[ck][i].note[0]) {
                why = k->res[ck][i].note;
                break;
            }
        }
        snprintf(out, n, "failed: %.80s", why);
        return;
    }
    char m[32], lo[32], hi[32];
    double vals[3] = {a.med, a.min, a.max};
    char *dst[3] = {m, lo, hi};
    for (int i = 0; i < 3; i++) {
        if (s == CS_BYTES)
            snprintf(dst[i], 32, "%.3f", vals[i] / 1e9);
        else if (s == CS_ITEMS || s == CS_SAMPLES || s == CS_N)
            fmt_si(dst[i], 32, vals[i]);
        else
            snprintf(dst[i], 32, "%.0f", vals[i]);
    }
    if (a.n == 1)
        snprintf(out, n, "%s", m);
    else
        snprintf(out, n, "%s (%s–%s)", m, lo, hi);
}

/* Median of a statistic, or 0. */
static double cold_med(const struct cold *k, enum cold_kind ck, enum cstat s)
{
    struct cagg a = cold_agg(k, ck, s);
    return a.n ? a.med : 0;
}

/* One bar row: a ratio (higher is better) against its goal. */
static void cold_bar(FILE *f, const char *what, const char *a, const char *b, double ratio,
                     double goal)
{
    if (ratio > 0)
        fprintf(f, "| %s | %s | %s | %.3f | ≥ %.1f | %s |\n", what, a, b, ratio, goal,
                ratio >= goal ? "**met**" : "**missed**");
    else
        fprintf(f, "| %s | %s | %s | – | ≥ %.1f | no data |\n", what, a, b, goal);
}

/* Writes every measurement of the section as TSV. */
static void cold_raw(const struct cold *k, const char *path)
{
    FILE *f = fopen(path, "we");
    if (!f) {
        fprintf(stderr, "farena-bench: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "round\tcell\tok\tsecs\treqs\titems\tbytes\titems_per_s\tp50_us\tp99_us\tp999_"
               "us\tsamples\tsrv_cpu_s\tnote\n");
    for (int i = 0; i < k->rounds; i++) {
        for (int c = 0; c < CK_COUNT; c++) {
            const struct bench_result *r = &k->res[c][i];
            fprintf(f,
                    "%d\t%s\t%d\t%.4f\t%llu\t%llu\t%llu\t%.1f\t%.1f\t%.1f\t%.1f\t%llu\t%.3f\t%s\n",
                    i, ck_name[c], r->ok, r->secs, (unsigned long long)r->reqs,
                    (unsigned long long)r->items, (unsigned long long)r->bytes,
                    r->secs > 0 ? (double)r->items / r->secs : 0, r->p50_us, r->p99_us, r->p999_us,
                    (unsigned long long)r->samples, r->srv_cpu_s, r->note);
        }
    }
    fclose(f);
}

/* Writes the section's markdown (syscalls: its table rows, prepared). */
static void cold_write(const struct cold *k, FILE *ex, const char *sys_rows, double sys_per,
                       const char *sys_tool, double load_gbs, double flush_secs)
{
    const struct cold_opts *co = k->co;
    char a[128], b[128];
    fprintf(ex, "## Cold reads, head-of-line blocking and system calls\n\n");
    if (!k->floor_shared)
        fprintf(ex, "**Warning:** the dataset's file is not, or not alone, among farenad's open "
                    "descriptors of its size (/proc/PID/fd), so the eviction may not have reached "
                    "it (a daemon that keeps its files only as io_uring registered files would do "
                    "this): farena's cold cells may have read cached data. The floor used a file "
                    "of its own.\n\n");
    fprintf(ex,
            "A %.2f GiB dataset (pushed as 1 MiB items into one arena at %.2f GB/s) is read "
            "cold: before every cell the bench writes back and drops from the page cache "
            "every regular file farenad holds (fdatasync + POSIX_FADV_DONTNEED through "
            "/proc/PID/fd, pid from SO_PEERCRED; no root), and a cell reads the dataset's "
            "blocks in a random order, each at most once, so reads miss. A 4 KiB cell reads "
            "at most 1/%u of the blocks: past that, the kernel's readahead (which fires when "
            "the pages before a miss are cached) turns misses into hits. A cold cell "
            "ends when its order runs out or after %.1f s. The pread floor is %u threads of "
            "the bench doing pread in the same order on %s, evicted the same way (the crate's "
            "path). The hot get is a 64 B item whose page is cached (the warm-up reads it "
            "back after the eviction), on its own connection at depth 1; its load runs on "
            "other connections of the same daemon. Medians (min–max) over %d round%s.\n\n",
            (double)k->bytes / (1u << 30), load_gbs, COLD_SHARE_4K, co->seconds, co->conns,
            k->floor_shared ? "the same file (farenad's, opened read-only through /proc/PID/fd)"
                            : "a file of its own of the same size on the scratch filesystem",
            k->rounds, k->rounds == 1 ? "" : "s");
    fprintf(ex,
            "| bar | farena | reference | ratio | goal | verdict |\n|---|---|---|---|---|---|\n");
    {
        double f = cold_med(k, CK_F4K, CS_ITEMS), p = cold_med(k, CK_P4K, CS_ITEMS);
        char what[160];
        snprintf(what, sizeof what,
                 "cold random 4 KiB gets, %u connections (P=1) ÷ %u-thread pread, %s", co->conns,
                 co->conns,
                 k->floor_shared ? "same evicted data" : "evicted file of the same size");
        fmt_si(a, sizeof a, f);
        fmt_si(b, sizeof b, p);
        strcat(a, "/s");
        strcat(b, "/s");
        cold_bar(ex, what, a, b, f > 0 && p > 0 ? f / p : 0, 0.8);
    }
    {
        double f = cold_med(k, CK_F1M, CS_BYTES), p = cold_med(k, CK_P1M, CS_BYTES);
        char what[160];
        snprintf(what, sizeof what,
                 "cold 1 MiB gets, %u connections (P=1) ÷ %u-thread pread (bandwidth)", co->conns,
                 co->conns);
        snprintf(a, sizeof a, "%.3f GB/s", f / 1e9);
        snprintf(b, sizeof b, "%.3f GB/s", p / 1e9);
        cold_bar(ex, what, a, b, f > 0 && p > 0 ? f / p : 0, 0.8);
    }
    double alone = cold_med(k, CK_HOT, CS_P99);
    for (int i = 0; i < 2; i++) {
        enum cold_kind ck = i == 0 ? CK_HOT_COLD : CK_HOT_PUSH;
        double loaded = cold_med(k, ck, CS_P99);
        char what[160];
        if (i == 0)
            snprintf(what, sizeof what,
                     "hot 64 B get p99 alone ÷ p99 with %u cold readers (farena = p99 under "
                     "load, reference = alone)",
                     co->conns);
        else
            snprintf(what, sizeof what,
                     "hot 64 B get p99 alone ÷ p99 with %u connections pushing 1 MiB items flat "
                     "out (P=%u)",
                     PUSH_CONNS, PUSH_DEPTH);
        snprintf(a, sizeof a, "%.0f µs", loaded);
        snprintf(b, sizeof b, "%.0f µs", alone);
        cold_bar(ex, what, a, b, alone > 0 && loaded > 0 ? alone / loaded : 0, 0.2);
    }
    if (sys_per >= 0)
        fprintf(ex,
                "| syscalls per pipelined 64 B get at P=%u (%s) | %.3f | – | – | ≤ 0.2 | %s |\n",
                SYS_DEPTH, sys_tool, sys_per, sys_per <= 0.2 ? "**met**" : "**missed**");
    else
        fprintf(ex,
                "| syscalls per pipelined 64 B get at P=%u | not measured | – | – | ≤ 0.2 | "
                "no data |\n",
                SYS_DEPTH);
    fprintf(ex,
            "\n### Cold reads\n\nReads per second for 4 KiB, GB/s for 1 MiB; latency is "
            "farena's per get; reads counted in a cell's window; CPU per read from "
            "/proc/PID/stat (10 ms ticks, farenad's io_uring workers included) and "
            "getrusage. farena's cold readers share %u client thread%s (each its slice of "
            "the connections and of the order), the floor is %u threads: on a small machine "
            "the bench's own CPU bounds what either can show. Cached ÷ read: the page cache the "
            "cell left behind over the bytes it read "
            "(about 1 when every read missed and nothing was read ahead; above 1 means "
            "readahead did I/O nobody asked for).\n\n",
            cold_nthreads(co), cold_nthreads(co) == 1 ? "" : "s", co->conns);
    fprintf(ex,
            "| cell | farena | pread floor | f/pread | farena p50 µs | farena p99 µs | reads: "
            "farena | floor | cached ÷ read: farena | floor | farenad CPU µs/read | bench CPU "
            "µs/read: farena | floor |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 2; i++) {
        enum cold_kind fk = i ? CK_F1M : CK_F4K, pk = i ? CK_P1M : CK_P4K;
        enum cstat s = i ? CS_BYTES : CS_ITEMS;
        char f[128], p[128], p50[128], p99[128], nf[32], np[32];
        cold_fmt(f, sizeof f, k, fk, s);
        cold_fmt(p, sizeof p, k, pk, s);
        cold_fmt(p50, sizeof p50, k, fk, CS_P50);
        cold_fmt(p99, sizeof p99, k, fk, CS_P99);
        double fm = cold_med(k, fk, s), pm = cold_med(k, pk, s);
        /* Reads in a cell's window, medians. */
        fmt_si(nf, sizeof nf, cold_med(k, fk, CS_N));
        fmt_si(np, sizeof np, cold_med(k, pk, CS_N));
        char ratio[16] = "–";
        if (fm > 0 && pm > 0)
            snprintf(ratio, sizeof ratio, "%.2f", fm / pm);
        fprintf(ex, "| random %s gets, c=%u, P=1 / %u threads | %s | %s | %s | %s | %s | %s | %s |",
                i ? "1 MiB" : "4 KiB", co->conns, co->conns, f, p, ratio, p50, p99, nf, np);
        fprintf(ex, " %.2f | %.2f | %.1f | %.1f | %.1f |\n", cold_med(k, fk, CS_AMP),
                cold_med(k, pk, CS_AMP), cold_med(k, fk, CS_SRV_CPU), cold_med(k, fk, CS_CLI_CPU),
                cold_med(k, pk, CS_CLI_CPU));
    }
    fprintf(ex, "\n### Hot 64 B get latency\n\nThe hot get (c=1, P=1, one cached page) "
                "under each load; the load's own rate and p99 beside it.\n\n");
    fprintf(ex, "| load | hot samples | hot p50 µs | hot p99 µs | hot p999 µs | p99 alone ÷ p99 | "
                "load rate | load p99 µs |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 3; i++) {
        enum cold_kind hk = i == 0 ? CK_HOT : i == 1 ? CK_HOT_COLD : CK_HOT_PUSH;
        enum cold_kind bk = i == 1 ? CK_COLD_BG : CK_PUSH_BG;
        char load[128], ns[128], p50[128], p99[128], p999[128], ratio[16] = "–";
        char rate[160] = "–", lp99[128] = "–";
        if (i == 0)
            snprintf(load, sizeof load, "none");
        else if (i == 1)
            snprintf(load, sizeof load, "%u cold readers: random 4 KiB gets, P=1", co->conns);
        else
            snprintf(load, sizeof load, "%u connections pushing 1 MiB items, P=%u", PUSH_CONNS,
                     PUSH_DEPTH);
        cold_fmt(ns, sizeof ns, k, hk, CS_SAMPLES);
        cold_fmt(p50, sizeof p50, k, hk, CS_P50);
        cold_fmt(p99, sizeof p99, k, hk, CS_P99);
        cold_fmt(p999, sizeof p999, k, hk, CS_P999);
        double l = cold_med(k, hk, CS_P99);
        if (l > 0 && alone > 0)
            snprintf(ratio, sizeof ratio, "%.3f", alone / l);
        if (i > 0) {
            char v[128];
            cold_fmt(v, sizeof v, k, bk, i == 1 ? CS_ITEMS : CS_BYTES);
            snprintf(rate, sizeof rate, "%s%s", v, i == 1 ? " reads/s" : " GB/s");
            cold_fmt(lp99, sizeof lp99, k, bk, CS_P99);
        }
        fprintf(ex, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", load, ns, p50, p99, p999, ratio,
                rate, lp99);
    }
    fprintf(ex,
            "\n### System calls per get\n\nfarenad's system calls (all its threads) while "
            "one connection keeps %u pipelined 64 B gets of cached data in flight, divided by "
            "the gets answered. perf counts raw_syscalls:sys_enter of the threads that exist "
            "when it attaches; strace -f -c also follows new threads and stops the daemon at "
            "every call (slow, but it names them). Work the kernel does for the daemon "
            "(io_uring's SQPOLL or io-wq threads) makes no system calls and is not "
            "counted.\n\n",
            SYS_DEPTH);
    fprintf(ex,
            "| tool | gets | syscalls | per get | most frequent calls |\n|---|---|---|---|---|\n");
    fprintf(ex, "%s\n", sys_rows);
    fprintf(ex,
            "Eviction: %d files of farenad's per eviction (its log file included), at most "
            "%.1f MiB of them still cached right after one, each eviction at most %.2f s (the "
            "first write-back of the dataset, before the cells: %.2f s).\n\n",
            k->evicted_files, k->resident_max < 0 ? -1.0 : (double)k->resident_max / (1 << 20),
            k->evict_secs_max, flush_secs);
}

/* Runs the section. */
void cold_run(const struct cold_opts *co, const struct bench_opts *o, FILE *ex)
{
    static struct cold k;
    memset(&k, 0, sizeof k);
    k.co = co;
    k.o = o;
    k.floor_fd = -1;
    k.resident_max = -1;
    k.rounds = co->rounds < COLD_MAX_ROUNDS ? co->rounds : COLD_MAX_ROUNDS;
    k.bytes = co->bytes / COLD_ITEM * COLD_ITEM;
    char err[200] = "";
    struct bench_cell ctl_cell = {OP_GET, HOT_SIZE, 1, 1, 1, 1, 1};
    struct bconn ctl;
    int ctl_open = 0;
    double load_gbs = 0, flush_secs = 0;
    if (k.bytes < 16u * COLD_ITEM || k.bytes > (4095ull << 20)) {
        snprintf(err, sizeof err, "--cold-bytes must be 16 MiB to 4095 MiB");
        goto fail;
    }
    if (engine_open(&ctl, &tproto_farena, co->sock, &ctl_cell, err, sizeof err) < 0)
        goto fail;
    ctl_open = 1;
    k.pid = unix_peer_pid(ctl.fd);
    if (k.pid <= 0 && farena_ctl_stat_pid(&ctl, &k.pid, err, sizeof err) < 0)
        goto fail;
    if (cold_evict(&k) < 0) {
        snprintf(err, sizeof err, "%s", k.evict_err);
        goto fail;
    }
    k.resident_max = -1;
    fprintf(stderr, "[cold] loading %.2f GiB into farenad (pid %ld)\n",
            (double)k.bytes / (1u << 30), k.pid);
    uint64_t t0 = now_ns();
    if (farena_ctl_load(&ctl, COLD_ITEM, (uint32_t)(k.bytes / COLD_ITEM), &k.cold_arena, err,
                        sizeof err) < 0)
        goto fail;
    load_gbs = (double)k.bytes / ((double)(now_ns() - t0) / 1e9) / 1e9;
    if (farena_ctl_load(&ctl, HOT_SIZE, HOT_KEYS, &k.hot_arena, err, sizeof err) < 0)
        goto fail;
    /* Write the dataset back once before the cells, so that no cell's
     * eviction pays for it, and let the device settle. */
    t0 = now_ns();
    if (cold_evict(&k) < 0) {
        snprintf(err, sizeof err, "%s", k.evict_err);
        goto fail;
    }
    flush_secs = (double)(now_ns() - t0) / 1e9;
    int64_t left = probe_pagecache(k.pid, NULL);
    if (left < 0 || (uint64_t)left > k.bytes / 8) {
        snprintf(err, sizeof err,
                 "the eviction left %.1f MiB of farenad's files cached (a scratch directory on "
                 "tmpfs keeps them in memory)",
                 (double)left / (1 << 20));
        goto fail;
    }
    sleep(1);
    k.resident_max = -1;
    k.evict_secs_max = 0;
    k.floor_fd = probe_open_sized(k.pid, k.bytes);
    k.floor_shared = k.floor_fd >= 0;
    if (!k.floor_shared)
        fprintf(stderr, "[cold] warning: the dataset is not among farenad's open files: the "
                        "eviction may not reach it\n");
    if (!k.floor_shared) {
        k.floor_fd = floor_cold_file(o->scratch, k.bytes);
        if (k.floor_fd < 0) {
            snprintf(err, sizeof err, "the floor's file: %s", strerror(errno));
            goto fail;
        }
    }
    for (int round = 0; round < k.rounds; round++) {
        cold_reads(&k, round, 4096, CK_F4K, CK_P4K);
        cold_reads(&k, round, COLD_ITEM, CK_F1M, CK_P1M);
        cold_latency(&k, round);
    }
    char *rows = NULL;
    size_t rows_len = 0;
    FILE *rf = open_memstream(&rows, &rows_len);
    if (!rf)
        die("out of memory");
    double sys_per = -1;
    const char *sys_tool = "";
    int want_perf = strcmp(co->syscalls, "auto") == 0 || strcmp(co->syscalls, "perf") == 0;
    int want_strace = strcmp(co->syscalls, "auto") == 0 || strcmp(co->syscalls, "strace") == 0;
    if (want_perf) {
        sys_per = cold_syscalls(&k, "perf", rf);
        sys_tool = "perf";
    }
    if (want_strace) {
        double s = cold_syscalls(&k, "strace", rf);
        if (sys_per < 0) {
            sys_per = s;
            sys_tool = "strace";
        }
    }
    if (!want_perf && !want_strace)
        fprintf(rf, "| – | not measured (--syscalls none) | | | |\n");
    fclose(rf);
    cold_write(&k, ex, rows, sys_per, sys_tool, load_gbs, flush_secs);
    free(rows);
    if (co->raw)
        cold_raw(&k, co->raw);
    goto done;
fail:
    fprintf(stderr, "farena-bench: cold section: %s\n", err);
    fprintf(ex, "## Cold reads, head-of-line blocking and system calls\n\nNot run: %s\n\n", err);
done:
    if (ctl_open) {
        if (k.cold_arena)
            farena_ctl_release(&ctl, k.cold_arena, err, sizeof err);
        if (k.hot_arena)
            farena_ctl_release(&ctl, k.hot_arena, err, sizeof err);
        engine_close(&ctl);
    }
    if (k.floor_fd >= 0)
        close(k.floor_fd);
}
