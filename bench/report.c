/* The markdown report: medians and min-max over rounds, the ratios, and the
 * project's bars evaluated from the same numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Table names of the targets. */
const char *target_name(enum bench_target t)
{
    static const char *const names[TGT_COUNT] = {"farena",         "Redis",        "memcached meta",
                                                 "memcached text", "socket floor", "pread floor"};
    return (unsigned)t < TGT_COUNT ? names[t] : "?";
}

/* Whether two cells have the same asked shape. */
static int same_cell(const struct bench_cell *a, const struct bench_cell *b)
{
    return a->op == b->op && a->size == b->size && a->batch_asked == b->batch_asked &&
           a->conns == b->conns && a->depth_asked == b->depth_asked;
}

/* Compares doubles (qsort). */
static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median, min and max of one statistic over the rounds. */
struct agg {
    int n;
    double med, min, max;
};

/* What to aggregate. */
enum stat { ST_ITEMS, ST_BYTES, ST_P50, ST_P99, ST_SRV, ST_CLI };

/* The value of one statistic of a result. */
static double stat_of(const struct bench_result *r, enum stat s)
{
    switch (s) {
    case ST_ITEMS:
        return r->secs > 0 ? (double)r->items / r->secs : 0;
    case ST_BYTES:
        return r->secs > 0 ? (double)r->bytes / r->secs : 0;
    case ST_P50:
        return r->p50_us;
    case ST_P99:
        return r->p99_us;
    case ST_SRV:
        return r->items && r->srv_cpu_s >= 0 ? r->srv_cpu_s / (double)r->items * 1e6 : -1;
    case ST_CLI:
        return r->items ? r->cli_cpu_s / (double)r->items * 1e6 : -1;
    }
    return 0;
}

/* Aggregates statistic s of target t for cell over every round. */
static struct agg aggregate(const struct bench_row *rows, size_t nrows,
                            const struct bench_cell *cell, enum bench_target t, enum stat s)
{
    struct agg a = {0, 0, 0, 0};
    double v[64];
    for (size_t i = 0; i < nrows && a.n < 64; i++) {
        if (rows[i].target == t && rows[i].res.ok && same_cell(&rows[i].cell, cell)) {
            double x = stat_of(&rows[i].res, s);
            if (x >= 0)
                v[a.n++] = x;
        }
    }
    if (a.n == 0)
        return a;
    qsort(v, (size_t)a.n, sizeof v[0], cmp_dbl);
    a.min = v[0];
    a.max = v[a.n - 1];
    a.med = a.n % 2 ? v[a.n / 2] : (v[a.n / 2 - 1] + v[a.n / 2]) / 2;
    return a;
}

/* The first failure note of target t for cell, or NULL. */
static const char *fail_note(const struct bench_row *rows, size_t nrows,
                             const struct bench_cell *cell, enum bench_target t)
{
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].target == t && !rows[i].res.ok && same_cell(&rows[i].cell, cell))
            return rows[i].res.note;
    }
    return NULL;
}

/* Whether the cell reports bytes per second rather than items. */
static int cell_in_bytes(const struct bench_cell *c)
{
    return c->size >= (64u << 10);
}

/* Formats one rate. */
static void fmt_rate(char *out, size_t n, double v, int bytes)
{
    if (bytes)
        snprintf(out, n, "%.2f", v / 1e9);
    else
        fmt_si(out, n, v);
}

/* Formats a payload size. */
static void fmt_size(char *out, size_t n, uint32_t size)
{
    if (size >= (1u << 20) && size % (1u << 20) == 0)
        snprintf(out, n, "%u MiB", size >> 20);
    else if (size >= 1024 && size % 1024 == 0)
        snprintf(out, n, "%u KiB", size >> 10);
    else
        snprintf(out, n, "%u B", size);
}

/* Formats "median (min–max)" of target t, or a dash / failure. */
static void fmt_cell(char *out, size_t n, const struct bench_row *rows, size_t nrows,
                     const struct bench_cell *cell, enum bench_target t, const int have[])
{
    if (!have[t]) {
        snprintf(out, n, "–");
        return;
    }
    int bytes = cell_in_bytes(cell);
    struct agg a = aggregate(rows, nrows, cell, t, bytes ? ST_BYTES : ST_ITEMS);
    if (a.n == 0) {
        const char *why = fail_note(rows, nrows, cell, t);
        snprintf(out, n, "failed%s%.60s", why ? ": " : "", why ? why : "");
        return;
    }
    if (a.max <= 0) {
        snprintf(out, n, "0 (no reply within a window)");
        return;
    }
    char m[32], lo[32], hi[32];
    fmt_rate(m, sizeof m, a.med, bytes);
    fmt_rate(lo, sizeof lo, a.min, bytes);
    fmt_rate(hi, sizeof hi, a.max, bytes);
    if (a.n == 1)
        snprintf(out, n, "%s", m);
    else
        snprintf(out, n, "%s (%s–%s)", m, lo, hi);
}

/* Median items/s of target t for cell (0 when missing). */
static double med_items(const struct bench_row *rows, size_t nrows, const struct bench_cell *cell,
                        enum bench_target t)
{
    struct agg a = aggregate(rows, nrows, cell, t, ST_ITEMS);
    return a.n ? a.med : 0;
}

/* Formats a ratio a/b. */
static void fmt_ratio(char *out, size_t n, double a, double b)
{
    if (a > 0 && b > 0)
        snprintf(out, n, "%.2f", a / b);
    else
        snprintf(out, n, "–");
}

/* Writes one table (gets or pushes). */
static void write_table(FILE *f, const struct bench_row *rows, size_t nrows, enum bench_op op,
                        const int have[])
{
    fprintf(f, "| size | batch | c | P | farena | Redis | memcached meta | memcached text | "
               "socket floor | pread floor | f/Redis | f/memcached | f/socket | f/pread |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    /* Distinct cells in order of first appearance. */
    for (size_t i = 0; i < nrows; i++) {
        const struct bench_cell *cell = &rows[i].cell;
        if (cell->op != op)
            continue;
        size_t j;
        for (j = 0; j < i; j++) {
            if (same_cell(&rows[j].cell, cell))
                break;
        }
        if (j < i)
            continue;
        char size[32], batch[32], depth[32];
        fmt_size(size, sizeof size, cell->size);
        if (cell->batch != cell->batch_asked)
            snprintf(batch, sizeof batch, "%u→%u", cell->batch_asked, cell->batch);
        else
            snprintf(batch, sizeof batch, "%u", cell->batch);
        if (cell->depth != cell->depth_asked)
            snprintf(depth, sizeof depth, "%u→%u", cell->depth_asked, cell->depth);
        else
            snprintf(depth, sizeof depth, "%u", cell->depth);
        fprintf(f, "| %s | %s | %u | %s |", size, batch, cell->conns, depth);
        for (int t = 0; t < TGT_COUNT; t++) {
            char v[128];
            fmt_cell(v, sizeof v, rows, nrows, cell, (enum bench_target)t, have);
            fprintf(f, " %s |", v);
        }
        double fa = med_items(rows, nrows, cell, TGT_FARENA);
        double rd = med_items(rows, nrows, cell, TGT_REDIS);
        double mm = med_items(rows, nrows, cell, TGT_MC_META);
        double mt = med_items(rows, nrows, cell, TGT_MC_TEXT);
        double sf = med_items(rows, nrows, cell, TGT_SOCK_FLOOR);
        double pf = med_items(rows, nrows, cell, TGT_PREAD_FLOOR);
        char r1[16], r2[16], r3[16], r4[16];
        fmt_ratio(r1, sizeof r1, fa, rd);
        fmt_ratio(r2, sizeof r2, fa, mm > mt ? mm : mt);
        fmt_ratio(r3, sizeof r3, fa, sf);
        fmt_ratio(r4, sizeof r4, fa, pf);
        fprintf(f, " %s | %s | %s | %s |\n", r1, r2, r3, r4);
    }
    fprintf(f, "\n");
}

/* Prints the median of a statistic, or a dash. */
static void put_med(FILE *f, const struct bench_row *rows, size_t nrows,
                    const struct bench_cell *cell, enum bench_target t, enum stat s, int prec)
{
    struct agg a = aggregate(rows, nrows, cell, t, s);
    if (a.n)
        fprintf(f, " %.*f |", prec, a.med);
    else
        fprintf(f, " – |");
}

/* Writes the latency and CPU table. */
static void write_latency(FILE *f, const struct bench_row *rows, size_t nrows)
{
    fprintf(f,
            "| op | size | batch | c | P | farena p50 µs | farena p99 µs | Redis p50 µs | "
            "socket floor p50 µs | farenad CPU µs/item | Redis CPU µs/item | memcached CPU "
            "µs/item | floor server CPU µs/item | client CPU µs/item: farena | Redis | "
            "socket floor |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < nrows; i++) {
        const struct bench_cell *cell = &rows[i].cell;
        size_t j;
        for (j = 0; j < i; j++) {
            if (same_cell(&rows[j].cell, cell))
                break;
        }
        if (j < i)
            continue;
        char size[32];
        fmt_size(size, sizeof size, cell->size);
        fprintf(f, "| %s | %s | %u | %u | %u |", cell->op == OP_GET ? "get" : "push", size,
                cell->batch, cell->conns, cell->depth);
        put_med(f, rows, nrows, cell, TGT_FARENA, ST_P50, 1);
        put_med(f, rows, nrows, cell, TGT_FARENA, ST_P99, 1);
        put_med(f, rows, nrows, cell, TGT_REDIS, ST_P50, 1);
        put_med(f, rows, nrows, cell, TGT_SOCK_FLOOR, ST_P50, 1);
        put_med(f, rows, nrows, cell, TGT_FARENA, ST_SRV, 3);
        put_med(f, rows, nrows, cell, TGT_REDIS, ST_SRV, 3);
        put_med(f, rows, nrows, cell, TGT_MC_META, ST_SRV, 3);
        put_med(f, rows, nrows, cell, TGT_SOCK_FLOOR, ST_SRV, 3);
        put_med(f, rows, nrows, cell, TGT_FARENA, ST_CLI, 3);
        put_med(f, rows, nrows, cell, TGT_REDIS, ST_CLI, 3);
        put_med(f, rows, nrows, cell, TGT_SOCK_FLOOR, ST_CLI, 3);
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* Finds the cell of a given asked shape among the rows. */
static const struct bench_cell *find_cell(const struct bench_row *rows, size_t nrows,
                                          enum bench_op op, uint32_t size, uint32_t batch,
                                          uint32_t conns, uint32_t depth)
{
    struct bench_cell want = {op, size, batch, conns, depth, batch, depth};
    for (size_t i = 0; i < nrows; i++) {
        if (same_cell(&rows[i].cell, &want))
            return &rows[i].cell;
    }
    return NULL;
}

/* One bar: farena's median over a reference (another target's median times
 * factor, or an absolute bytes/s floor when ref is TGT_COUNT). */
static void write_bar(FILE *f, const struct bench_row *rows, size_t nrows, const char *what,
                      enum bench_op op, uint32_t size, uint32_t batch, uint32_t conns,
                      uint32_t depth, enum bench_target ref, double factor, double abs_bytes)
{
    const struct bench_cell *cell = find_cell(rows, nrows, op, size, batch, conns, depth);
    char shape[96], sz[32];
    fmt_size(sz, sizeof sz, size);
    snprintf(shape, sizeof shape, "%s %s ×%u, c=%u, P=%u", op == OP_GET ? "get" : "push", sz, batch,
             conns, depth);
    if (!cell) {
        fprintf(f, "| %s | %s | not measured in this run | | | |\n", what, shape);
        return;
    }
    if (cell->batch != batch || cell->depth != depth)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), " (ran as ×%u, P=%u)",
                 cell->batch, cell->depth);
    double fa = med_items(rows, nrows, cell, TGT_FARENA);
    if (ref == TGT_COUNT) {
        double gbs = fa * size / 1e9;
        fprintf(f, "| %s | %s | %.2f GB/s | %.2f GB/s | %.3f× | %s |\n", what, shape, gbs,
                abs_bytes / 1e9, abs_bytes > 0 ? gbs / (abs_bytes / 1e9) : 0,
                fa <= 0 ? "no data" : (gbs * 1e9 >= abs_bytes ? "**met**" : "**missed**"));
        return;
    }
    double rv = med_items(rows, nrows, cell, ref);
    char a[32], b[32];
    fmt_si(a, sizeof a, fa);
    fmt_si(b, sizeof b, rv * factor);
    double ratio = rv > 0 ? fa / rv : 0;
    const char *verdict = (fa <= 0 || rv <= 0) ? "no data"
                          : ratio >= factor    ? "**met**"
                                               : "**missed**";
    fprintf(f, "| %s | %s | %s/s | %s/s (%.2f× %s) | %.3f× | %s |\n", what, shape, a, b, factor,
            target_name(ref), ratio, verdict);
}

/* Writes the report. */
int report_write(const char *path, const struct bench_row *rows, size_t nrows, const char *header,
                 const char *extra, const int have[TGT_COUNT], int64_t farena_rss,
                 uint64_t rss_bytes)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -1;
    fprintf(f, "%s\n", header);
    if (nrows == 0) {
        /* A run without the matrix (the cold section alone). */
        fprintf(f, "%s", extra);
        if (ferror(f)) {
            fclose(f);
            return -1;
        }
        return fclose(f);
    }
    fprintf(f, "## Bars\n\nMedians over the rounds; ratios are farena ÷ reference "
               "(the bars are judged on pinned runs).\n\n");
    fprintf(f, "| bar | cell | farena | needed | ratio | verdict |\n|---|---|---|---|---|---|\n");
    static const uint32_t small[] = {64, 1024};
    for (int i = 0; i < 2; i++) {
        for (uint32_t c = 1; c <= 4; c += 3) {
            write_bar(f, rows, nrows, "pipelined small gets ≥ Redis", OP_GET, small[i], 1, c, 16,
                      TGT_REDIS, 1.0, 0);
            write_bar(f, rows, nrows, "stretch: ≥ 0.9× socket+pread floor", OP_GET, small[i], 1, c,
                      16, TGT_SOCK_FLOOR, 0.9, 0);
        }
    }
    write_bar(f, rows, nrows, "get_many 1000×64 B ≥ 0.7× in-process pread", OP_GET, 64, 1000, 1, 1,
              TGT_PREAD_FLOOR, 0.7, 0);
    write_bar(f, rows, nrows, "get_many 1000×64 B ≥ 0.7× in-process pread", OP_GET, 64, 1000, 1, 16,
              TGT_PREAD_FLOOR, 0.7, 0);
    write_bar(f, rows, nrows, "64 KiB gets ≥ 1.3× Redis", OP_GET, 64u << 10, 1, 1, 1, TGT_REDIS,
              1.3, 0);
    write_bar(f, rows, nrows, "64 KiB gets ≥ 1.3× Redis", OP_GET, 64u << 10, 1, 1, 16, TGT_REDIS,
              1.3, 0);
    write_bar(f, rows, nrows, "1 MiB gets ≥ 3 GB/s on one connection", OP_GET, 1u << 20, 1, 1, 1,
              TGT_COUNT, 0, 3e9);
    write_bar(f, rows, nrows, "1 MiB gets ≥ 3 GB/s on one connection", OP_GET, 1u << 20, 1, 1, 16,
              TGT_COUNT, 0, 3e9);
    for (int i = 0; i < 2; i++) {
        write_bar(f, rows, nrows, "pushes ≥ Redis SET", OP_SET, small[i], 1, 1, 1, TGT_REDIS, 1.0,
                  0);
        write_bar(f, rows, nrows, "pushes ≥ Redis SET", OP_SET, small[i], 1, 1, 16, TGT_REDIS, 1.0,
                  0);
    }
    write_bar(f, rows, nrows, "push_many of 1 MiB items ≥ 1 GB/s", OP_SET, 1u << 20, 100, 1, 1,
              TGT_COUNT, 0, 1e9);
    write_bar(f, rows, nrows, "push_many of 1 MiB items ≥ 1 GB/s", OP_SET, 1u << 20, 100, 1, 16,
              TGT_COUNT, 0, 1e9);
    if (farena_rss >= 0)
        fprintf(f,
                "| daemon RSS < 32 MiB with %.1f GiB stored | fresh farenad | %.1f MiB | < 32 "
                "MiB | %.2f | %s |\n",
                (double)rss_bytes / (1u << 30), (double)farena_rss / (1 << 20),
                (double)farena_rss / (32 << 20),
                farena_rss < (32 << 20) ? "**met**" : "**missed**");
    else
        fprintf(f,
                "| daemon RSS < 32 MiB with 2 GiB stored | | not measured in this run | | | |\n");
    fprintf(f, "\n%s\n", extra);
    fprintf(f, "## Gets\n\nItems/s for payloads under 64 KiB, GB/s (10^9 B/s) from 64 KiB up; "
               "median (min–max) over the rounds. get = `get` / `GET` / `mg` / `get`; a batch "
               "is `get_many` / `MGET` / pipelined `mg … q` + `mn` / multi-key `get`. "
               "f/memcached uses the better memcached protocol of the cell. Floors: the socket "
               "floor is a forked one-threaded epoll server that answers a 16-byte request with "
               "the raw items, each pread from a page-cached file into its buffer (items of "
               "16 KiB and more go by sendfile, which is faster), no protocol; the pread floor "
               "is random pread in the bench process itself, no socket (the crate's path; it "
               "does not depend on c, P or the batch).\n\n");
    write_table(f, rows, nrows, OP_GET, have);
    fprintf(f, "## Pushes\n\nSame units. push = `push` / `SET` / `ms` / `set`; a batch is "
               "`push_many` / `MSET` / pipelined `ms … q` + `mn` / pipelined `set`. Floors: "
               "the socket floor appends the payload to a file with pwrite and answers 8 bytes; "
               "the pread floor is in-process buffered appends (64 KiB buffer).\n\n");
    write_table(f, rows, nrows, OP_SET, have);
    fprintf(f, "## Latency and CPU\n\nPer-request latency (a batch is one request) and CPU "
               "time per item, medians over the rounds. Server CPU is the server process's "
               "user+system time over the window (/proc/PID/stat, 10 ms ticks: coarse for short "
               "windows); client CPU is the load generator's own, which includes decoding each "
               "protocol (farena's replies go through proto's scanner and msgpack-c, as in "
               "libfarena).\n\n");
    write_latency(f, rows, nrows);
    if (ferror(f)) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}
