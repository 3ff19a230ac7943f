/* farenad's I/O engine end to end: reads that miss the page cache (the
 * daemon's files evicted through /proc), and everything that can happen
 * while reads and writes are in flight: a connection that closes, an arena
 * released or unnamed, a shutdown. Under ASan a completion landing in freed
 * memory, or anything left unfreed, fails the daemon's exit. CTest runs the
 * suite on each engine (check_engine, check_engine_threads). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "th_check.h"

static struct th_daemon D;

/* The data the tests read back: DATA bytes of pattern, in one arena. */
enum { DATA = 16 << 20, CHUNK = 1 << 20, NREAD = 300, RLEN = 24 << 10 };

static unsigned char *data;

/* Fixture: the pattern. */
static void setup(void)
{
    data = malloc(DATA);
    ck_assert_ptr_nonnull(data);
    th_pattern(data, DATA, 11);
}

/* Fixture: frees it. */
static void teardown(void)
{
    free(data);
    data = NULL;
}

/* Pushes the pattern into a one-file arena on c and evicts it from the
 * page cache. */
static uint64_t cold_arena(struct th_client *c)
{
    uint64_t w = th_writer_new(c, 0), a;

    for (size_t off = 0; off < DATA; off += CHUNK)
        th_push(c, w, data + off, CHUNK);
    a = th_call_u64(c, "into_arena", w);
    ck_assert_int_ge(th_daemon_evict(&D), 1);
    return a;
}

/* The k-th read's location: spread over the file, not page-aligned. */
static struct proto_loc read_loc(unsigned k)
{
    uint64_t off = ((uint64_t)k * 2654435761u) % (DATA - RLEN);
    struct proto_loc l = {0, (uint32_t)off, RLEN};

    return l;
}

/* Queues NREAD gets of a on c (not flushed); ids[k] gets their msgids. */
static void queue_reads(struct th_client *c, uint64_t a, int64_t *ids)
{
    for (unsigned k = 0; k < NREAD; k++) {
        ids[k] = th_queue(c, "get", "uL", a, read_loc(k));
        ck_assert_int_ge(ids[k], 0);
    }
}

/* Receives the NREAD replies of queue_reads() and checks every byte. */
static void expect_reads(struct th_client *c, const int64_t *ids)
{
    struct th_reply r;

    for (unsigned k = 0; k < NREAD; k++) {
        struct proto_loc l = read_loc(k);

        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, (uint64_t)ids[k]);
        ck_assert_msg(r.err == 0, "read %u: %s %s", k, r.code, r.msg);
        th_assert_bytes(r.result, data + l.offset, l.len);
    }
}

/* Cold gets and a cold get_many come back exact. */
START_TEST(cold_reads_are_exact)
{
    struct th_client *c;
    struct th_reply r;
    int64_t ids[NREAD];
    uint64_t a;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    a = cold_arena(c);
    queue_reads(c, a, ids);
    ck_assert_int_eq(th_flush(c), TH_OK);
    expect_reads(c, ids);
    /* A large get cold (read through the engine), then again once its
     * pages are cached (sent with sendfile): the same bytes. */
    for (int i = 0; i < 2; i++) {
        TH_OK_CALL(c, &r, "get", "uL", a, (struct proto_loc){0, 12345, 700 << 10});
        th_assert_bytes(r.result, data + 12345, 700 << 10);
    }
    ck_assert_int_ge(th_daemon_evict(&D), 1);
    TH_OK_CALL(c, &r, "get_many", "ua", a, 3u, "L", read_loc(1), "L", read_loc(7), "L",
               read_loc(2));
    ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(r.result->via.array.size, 3);
    th_assert_bytes(&r.result->via.array.ptr[0], data + read_loc(1).offset, RLEN);
    th_assert_bytes(&r.result->via.array.ptr[1], data + read_loc(7).offset, RLEN);
    th_assert_bytes(&r.result->via.array.ptr[2], data + read_loc(2).offset, RLEN);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Reads a cold get of len bytes at off of a and checks them. */
static void expect_cold_get(struct th_client *c, uint64_t a, uint32_t off, uint32_t len)
{
    struct th_reply r;

    ck_assert_int_ge(th_daemon_evict(&D), 1);
    TH_OK_CALL(c, &r, "get", "uL", a, (struct proto_loc){0, off, len});
    th_assert_bytes(r.result, data + off, len);
}

/* Counts the resident pages of fd's first 2 MiB (th_daemon_each_file's
 * function: 0 when none is cached). */
static int resident_pages(int fd, void *arg)
{
    size_t len = 2u << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char vec[(2u << 20) / 4096];
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    int n = 0;

    (void)arg;
    if (p == MAP_FAILED || page != 4096)
        return -1;
    if (mincore(p, len, vec) == 0)
        for (size_t i = 0; i < len / page; i++)
            n += vec[i] & 1;
    munmap(p, len);
    return n == 0 ? 0 : -1;
}

/* Whether large cold gets can take the spliced path here: eviction works
 * on the scratch filesystem (not tmpfs) and pipes may hold 1 MiB. */
static int splice_expected(void)
{
    unsigned long max = 0;
    FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");

    if (f != NULL) {
        if (fscanf(f, "%lu", &max) != 1)
            max = 0;
        fclose(f);
    }
    if (max < CHUNK || th_daemon_each_file(&D, O_RDONLY, resident_pages, NULL) < 1) {
        fprintf(stderr, "large_cold_gets_are_spliced: pipes of 1 MiB or eviction unavailable "
                        "here; checking the bytes only\n");
        return 0;
    }
    return 1;
}

/* A large cold get goes through a pipe (spliced: a worker reads the pages
 * into it, the loop splices it into the socket) when the pipe can hold it,
 * and through memory otherwise; either way the bytes are exact. The pipes
 * are the daemon's, reused, and bounded: pipelined gets past the pool's
 * limit read through memory, and a connection closed with spliced gets in
 * flight leaves nothing behind (ASan checks the daemon's exit). */
START_TEST(large_cold_gets_are_spliced)
{
    enum { SPLICED = 40, SLEN = 256 << 10, STRIDE = (400 << 10) + 4099 };
    struct th_client *c;
    struct th_reply r;
    int64_t ids[SPLICED];
    uint64_t a;
    int base, spliced;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    a = cold_arena(c);
    spliced = splice_expected();
    base = th_daemon_pipes(&D);
    ck_assert_int_ge(base, 0);
    /* 256 pages, page-aligned: spliced; the pipe is kept for reuse. */
    expect_cold_get(c, a, CHUNK, CHUNK);
    if (spliced)
        ck_assert_int_eq(th_daemon_pipes(&D), base + 2);
    /* Unaligned and shorter: the same pipe again. */
    expect_cold_get(c, a, 12345, 700 << 10);
    if (spliced)
        ck_assert_int_eq(th_daemon_pipes(&D), base + 2);
    /* 257 pages, and 2 MiB: too long for a pipe, read through memory. */
    expect_cold_get(c, a, 100, CHUNK);
    expect_cold_get(c, a, 3 * CHUNK + 5, 2 * CHUNK);
    if (spliced)
        ck_assert_int_eq(th_daemon_pipes(&D), base + 2);
    /* More pipelined than the pool lends at once: all exact, in order. */
    ck_assert_int_ge(th_daemon_evict(&D), 1);
    for (unsigned k = 0; k < SPLICED; k++)
        ids[k] = th_queue(c, "get", "uL", a, (struct proto_loc){0, k * STRIDE, SLEN});
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (unsigned k = 0; k < SPLICED; k++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, (uint64_t)ids[k]);
        ck_assert_msg(r.err == 0, "get %u: %s %s", k, r.code, r.msg);
        th_assert_bytes(r.result, data + k * STRIDE, SLEN);
    }
    if (spliced)
        ck_assert_int_gt(th_daemon_pipes(&D), base + 2);
    ck_assert_int_le(th_daemon_pipes(&D), base + 2 * 8);
    /* Closed with spliced gets in flight and unread. */
    ck_assert_int_ge(th_daemon_evict(&D), 1);
    for (unsigned k = 0; k < SPLICED; k++)
        ck_assert_int_ge(th_queue(c, "get", "uL", a, (struct proto_loc){0, k * SLEN, SLEN}), 0);
    ck_assert_int_eq(th_flush(c), TH_OK);
    th_close(c);
    c = th_must_connect(&D);
    ck_assert_int_eq(th_wait_stat(c, "connections", 1, TH_TIMEOUT_MS), 0);
    ck_assert_int_le(th_daemon_pipes(&D), base + 2 * 8);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* A connection that closes with hundreds of reads in flight: the daemon
 * frees it once they complete, and serves everyone else meanwhile. */
START_TEST(close_with_reads_in_flight)
{
    struct th_client *c, *c2;
    struct th_reply r;
    int64_t ids[NREAD];
    uint64_t a;

    th_must_start(&D, NULL);
    c2 = th_must_connect(&D);
    c = th_must_connect(&D);
    a = cold_arena(c);
    TH_OK_CALL(c, &r, "name", "us", a, "kept");
    for (int round = 0; round < 3; round++) {
        ck_assert_int_ge(th_daemon_evict(&D), 1);
        queue_reads(c, a, ids);
        ck_assert_int_eq(th_flush(c), TH_OK);
        th_close(c);
        c = th_must_connect(&D);
    }
    th_close(c);
    ck_assert_int_eq(th_wait_stat(c2, "connections", 1, TH_TIMEOUT_MS), 0);
    TH_OK_CALL(c2, &r, "get", "uL", a, read_loc(5));
    th_assert_bytes(r.result, data + read_loc(5).offset, RLEN);
    th_close(c2);
    th_must_stop(&D);
}
END_TEST

/* The arena is released by the only connection holding it while its
 * reads are in flight: they complete with the right bytes (the files stay
 * open until then), and everything is freed afterwards. */
START_TEST(release_with_reads_in_flight)
{
    struct th_client *c;
    struct th_reply r;
    int64_t ids[NREAD], rel;
    uint64_t a;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    a = cold_arena(c);
    queue_reads(c, a, ids);
    rel = th_queue(c, "release", "u", a);
    ck_assert_int_ge(rel, 0);
    ck_assert_int_eq(th_flush(c), TH_OK);
    expect_reads(c, ids);
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, (uint64_t)rel);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(th_wait_stat(c, "files", 0, TH_TIMEOUT_MS), 0);
    th_expect_objects(c, 0, 0, 0);
    TH_ERR_CALL(c, &r, "no_such_handle", "get", "uL", a, read_loc(0));
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Another connection unnames the arena (its last reference) while a reader
 * has reads in flight on it: one get_many, so they are all issued at
 * once. */
START_TEST(unname_with_reads_in_flight)
{
    struct th_client *c, *c2;
    struct th_reply r;
    uint64_t a;
    int64_t id;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    c2 = th_must_connect(&D);
    a = cold_arena(c);
    TH_OK_CALL(c, &r, "name", "us", a, "shared");
    TH_OK_CALL(c, &r, "release", "u", a);
    id = th_queue(c2, "get_many", "ua", a, 4u, "L", read_loc(3), "L", read_loc(9), "L", read_loc(4),
                  "L", read_loc(11));
    ck_assert_int_ge(id, 0);
    ck_assert_int_eq(th_flush(c2), TH_OK);
    th_sleep_ms(5);
    TH_OK_CALL(c, &r, "unname", "s", "shared");
    ck_assert_int_eq(th_recv(c2, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, (uint64_t)id);
    ck_assert_msg(r.err == 0, "%s %s", r.code, r.msg);
    th_assert_bytes(&r.result->via.array.ptr[0], data + read_loc(3).offset, RLEN);
    th_assert_bytes(&r.result->via.array.ptr[3], data + read_loc(11).offset, RLEN);
    ck_assert_int_eq(th_wait_stat(c, "files", 0, TH_TIMEOUT_MS), 0);
    th_close(c);
    th_close(c2);
    th_must_stop(&D);
}
END_TEST

/* Pipelined: a large push (written through the engine), into_arena, then a
 * get of what was pushed: read-after-write holds on one connection. */
START_TEST(a_push_is_readable_when_answered)
{
    struct th_client *c;
    struct th_reply r;
    int64_t id[4];
    uint64_t w;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    id[0] = th_queue(c, "push", "ub", w, data, (size_t)4 << 20);
    id[1] = th_queue(c, "push", "ub", w, data + 100, (size_t)100);
    id[2] = th_queue(c, "into_arena", "u", w);
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, (uint64_t)id[k]);
        ck_assert_msg(r.err == 0, "%s %s", r.code, r.msg);
        if (k == 2)
            id[3] = (int64_t)th_res_u64(&r);
    }
    TH_OK_CALL(c, &r, "get", "uL", (uint64_t)id[3], (struct proto_loc){0, 4u << 20, 100});
    th_assert_bytes(r.result, data + 100, 100);
    TH_OK_CALL(c, &r, "get", "uL", (uint64_t)id[3], (struct proto_loc){0, 12345, 1000});
    th_assert_bytes(r.result, data + 12345, 1000);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* A write that fails in the engine (here EFBIG: the daemon runs under a
 * 1 MiB RLIMIT_FSIZE) answers the error for the items it carried, leaves
 * everything accepted before it readable, and the writer usable. */
START_TEST(a_failed_write_rolls_back_only_its_items)
{
    struct rlimit lim = {1 << 20, 1 << 20};
    struct th_client *c;
    struct th_reply r;
    struct proto_loc l1, l2;
    uint64_t w, a;

    /* Inherited by the daemon; SIG_IGN survives its exec. */
    ck_assert(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    l1 = th_push(c, w, data, 512 << 10);
    TH_ERR_CALL(c, &r, "io_error", "push_many", "ua", w, 3u, "b", data, (size_t)100, "b", data,
                (size_t)(600 << 10), "b", data, (size_t)10);
    ck_assert_msg(strstr(r.msg, "item 1: ") == r.msg && strstr(r.msg, "large") != NULL, "%s",
                  r.msg);
    /* Item 0 went to the writer's buffer before the failing write: it
     * stays, as the protocol says; items 1 and 2 are gone. */
    TH_OK_CALL(c, &r, "writer_len", "u", w);
    ck_assert_uint_eq(th_res_u64(&r), (512 << 10) + 100);
    TH_ERR_CALL(c, &r, "io_error", "push", "ub", w, data, (size_t)(700 << 10));
    l2 = th_push(c, w, data + 7, 1000);
    ck_assert_uint_eq(l2.offset, (512 << 10) + 100);
    a = th_call_u64(c, "into_arena", w);
    TH_OK_CALL(c, &r, "get", "uL", a, l1);
    th_assert_bytes(r.result, data, 512 << 10);
    TH_OK_CALL(c, &r, "get", "uL", a, l2);
    th_assert_bytes(r.result, data + 7, 1000);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* SIGTERM with reads and writes in flight: every request gets exactly one
 * answer (its result, or shutting_down if it arrived after the signal), the
 * results are right, and the daemon exits 0 with nothing leaked. */
START_TEST(sigterm_with_io_in_flight)
{
    struct th_client *c;
    struct th_reply r;
    int64_t ids[NREAD], pid;
    uint64_t a, w;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    a = cold_arena(c);
    w = th_writer_new(c, 1);
    /* The push first: the daemon stops reading while its replies to
     * unread gets pile up, so a push queued behind them would never be
     * sent. */
    pid = th_queue(c, "push", "ub", w, data, (size_t)8 << 20);
    ck_assert_int_ge(pid, 0);
    queue_reads(c, a, ids);
    ck_assert_int_eq(th_flush(c), TH_OK);
    ck_assert_int_eq(kill(D.pid, SIGTERM), 0);
    for (unsigned k = 0; k <= NREAD; k++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, k == 0 ? (uint64_t)pid : (uint64_t)ids[k - 1]);
        if (r.err != 0) {
            ck_assert_str_eq(r.code, "shutting_down");
            continue;
        }
        if (k > 0)
            th_assert_bytes(r.result, data + read_loc(k - 1).offset, RLEN);
    }
    th_close(c);
    ck_assert_int_eq(th_daemon_wait_exit(&D, TH_TIMEOUT_MS), 0);
    th_daemon_cleanup(&D);
}
END_TEST

/* The log names the engine; --io-engine uring either runs io_uring or
 * refuses to start with a reason (exit 1), never falls back silently. */
START_TEST(the_engine_is_named)
{
    struct th_daemon d2;
    char *log;
    int st;

    th_must_start(&D, (const char *const[]){"--io-engine", "threads", NULL});
    log = th_daemon_log(&D);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "I/O engine: threads") != NULL, "%s", log);
    free(log);
    th_must_stop(&D);

    memset(&d2, 0, sizeof(d2));
    st = th_daemon_start_opts(
        &d2, &(struct th_opts){.args = (const char *const[]){"--io-engine", "uring", NULL},
                               .no_wait = 1});
    ck_assert_int_eq(st, 0);
    th_sleep_ms(300);
    log = th_daemon_log(&d2);
    ck_assert_ptr_nonnull(log);
    if (strstr(log, "I/O engine: io_uring") != NULL) {
        free(log);
        th_must_stop(&d2);
    } else {
        ck_assert_int_eq(th_daemon_wait_exit(&d2, TH_TIMEOUT_MS), 1);
        ck_assert_msg(strstr(log, "io_uring") != NULL, "%s", log);
        free(log);
        th_daemon_cleanup(&d2);
    }
}
END_TEST

/* Bad engine options are usage errors. */
START_TEST(bad_engine_options_are_usage_errors)
{
    static const char *const bad[][3] = {
        {"--io-engine", "aio", NULL}, {"--io-depth", "0", NULL}, {"--io-depth", "99999", NULL}};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct th_daemon d2;

        memset(&d2, 0, sizeof(d2));
        ck_assert_int_eq(th_daemon_start_opts(&d2, &(struct th_opts){.args = bad[i], .no_wait = 1}),
                         0);
        ck_assert_int_eq(th_daemon_wait_exit(&d2, TH_TIMEOUT_MS), 2);
        th_daemon_cleanup(&d2);
    }
}
END_TEST

/* The suite. */
static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("in_flight");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cold_reads_are_exact);
    tcase_add_test(tc, large_cold_gets_are_spliced);
    tcase_add_test(tc, close_with_reads_in_flight);
    tcase_add_test(tc, release_with_reads_in_flight);
    tcase_add_test(tc, unname_with_reads_in_flight);
    tcase_add_test(tc, a_push_is_readable_when_answered);
    tcase_add_test(tc, a_failed_write_rolls_back_only_its_items);
    tcase_add_test(tc, sigterm_with_io_in_flight);
    suite_add_tcase(s, tc);
    tc = tcase_create("options");
    tcase_add_test(tc, the_engine_is_named);
    tcase_add_test(tc, bad_engine_options_are_usage_errors);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite. */
int main(void)
{
    return th_run_suite(engine_suite());
}
