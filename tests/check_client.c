/* check_client: libfarena against a private farenad (the crate README's
 * scenarios, sharing between processes, batches far above max_message,
 * failure paths), plus a scripted fake peer for the failures a real daemon
 * cannot be made to produce on demand (every error code, malformed replies,
 * silence). Every test starts its own daemon through the harness; the
 * harness makes it die with the test process. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <msgpack.h>

#include "farena.h"
#include "harness.h"
#include "th_check.h"
#include "proto_codec.h"
#include "proto_scan.h"

/* The daemon of the running test (each test runs in its own process). */
static struct th_daemon dmn;

/* A NULL-terminated argument list literal. */
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The name of a code, for messages. */
static const char *ename(int rc)
{
    const char *n = farena_errname(rc);

    return n != NULL ? n : "(not a farena code)";
}

/* A call that must succeed. */
#define OK(c, expr)                                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        ck_assert_msg(rc_ == 0, "%s -> %s: %s", #expr, ename(rc_), farena_errmsg(c));              \
    } while (0)

/* A call that must fail with code. */
#define FAILS(c, code, expr)                                                                       \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        ck_assert_msg(rc_ == (code), "%s -> %s, expected %s: %s", #expr, ename(rc_), ename(code),  \
                      farena_errmsg(c));                                                           \
    } while (0)

/* Starts this test's daemon with extra arguments (NULL-terminated, may be
 * NULL). The free-space floor is off so a nearly full disk cannot fail
 * tests that are not about it. */
static void start(const char *const *extra)
{
    const char *args[32];
    int n = 0;

    args[n++] = "--min-free";
    args[n++] = "0";
    for (const char *const *a = extra; a != NULL && *a != NULL && n < 30; a++)
        args[n++] = *a;
    args[n] = NULL;
    th_must_start(&dmn, args);
}

/* Stops this test's daemon (checked teardown; also safe when none ran). */
static void stop(void)
{
    if (dmn.dir[0] != '\0')
        th_daemon_cleanup(&dmn);
    memset(&dmn, 0, sizeof(dmn));
}

/* Connects to this test's daemon with a 10 s bound on every call. */
static farena_client *conn(void)
{
    farena_client *c = NULL;
    char why[320];
    int rc = farena_connect_ex(dmn.sock, 10000, &c, why, sizeof(why));

    ck_assert_msg(rc == 0, "connect: %s: %s", ename(rc), why);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Connects with direct reads off, for tests whose subject is the daemon
 * path itself (request counts, batching, a daemon dying mid-read), which a
 * direct read would bypass. */
static farena_client *conn_daemon_path(void)
{
    struct farena_connect_options o = FARENA_CONNECT_OPTIONS_INIT;
    farena_client *c = NULL;
    char why[320];
    int rc;

    o.timeout_ms = 10000;
    o.direct = 0;
    rc = farena_connect_opts(dmn.sock, &o, &c, why, sizeof(why));
    ck_assert_msg(rc == 0, "connect: %s: %s", ename(rc), why);
    ck_assert_int_eq(farena_direct(c), 0);
    return c;
}

/* Pushes a C string and returns its location. */
static farena_loc push_str(farena_client *c, farena_handle w, const char *s)
{
    farena_loc loc;

    OK(c, farena_push(c, w, s, strlen(s), &loc));
    ck_assert_uint_eq(loc.len, strlen(s));
    return loc;
}

/* Checks that the payload at loc is exactly the string want. */
static void expect_payload(farena_client *c, farena_handle arena, farena_loc loc, const char *want)
{
    farena_buf buf = FARENA_BUF_INIT;

    OK(c, farena_get_into(c, arena, loc, &buf));
    ck_assert_uint_eq(buf.len, strlen(want));
    ck_assert_msg(memcmp(buf.data, want, buf.len) == 0, "payload differs");
    ck_assert_int_eq(buf.data[buf.len], 0);
    farena_buf_free(&buf);
}

/* A counter from the daemon's stat, by method name (requests or errors). */
static uint64_t method_count(farena_client *c, const char *method, int errors)
{
    struct farena_stat st;

    OK(c, farena_stat(c, &st));
    for (unsigned i = 0; i < FARENA_STAT_METHODS; i++) {
        const char *m = farena_method_name(i);
        if (m != NULL && strcmp(m, method) == 0)
            return errors ? st.errors[i] : st.requests[i];
    }
    ck_abort_msg("no method %s", method);
    return 0;
}

/* ---- the crate README's scenarios ---- */

/* "Usage": one writer, two payloads, into_arena, get. */
START_TEST(crate_usage)
{
    farena_client *c = NULL;
    farena_handle w, arena;
    farena_loc l1, l2;
    uint64_t len = 99;

    start(NULL);
    OK(c, farena_connect(dmn.sock, &c)); /* no timeout: the default */
    OK(c, farena_writer_new(c, 0, &w));
    OK(c, farena_writer_len(c, w, &len));
    ck_assert_uint_eq(len, 0); /* is_empty */
    l1 = push_str(c, w, "hello");
    l2 = push_str(c, w, " world");
    ck_assert_uint_eq(l1.file_index, 0);
    ck_assert_uint_eq(l1.offset, 0);
    ck_assert_uint_eq(l2.offset, 5);
    OK(c, farena_writer_len(c, w, &len));
    ck_assert_uint_eq(len, 11);
    OK(c, farena_into_arena(c, w, &arena));
    ck_assert_uint_ne(arena, w);
    expect_payload(c, arena, l1, "hello");
    expect_payload(c, arena, l2, " world");
    /* The writer handle ended with into_arena. */
    FAILS(c, FARENA_ENOSUCHHANDLE, farena_push(c, w, "x", 1, NULL));
    ck_assert_msg(farena_errmsg(c)[0] != '\0', "no message for a daemon error");
    farena_close(c);
}
END_TEST

/* "Building multi-file arenas": files added in any order. */
START_TEST(crate_builder_any_order)
{
    farena_client *c;
    farena_handle w0, w1, f0, f1, arena, again;
    farena_loc loc0, loc1;
    struct farena_arena_info info;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w0));
    loc0 = push_str(c, w0, "data0");
    OK(c, farena_finish(c, w0, &f0));
    OK(c, farena_writer_new(c, 1, &w1));
    loc1 = push_str(c, w1, "data1");
    OK(c, farena_finish(c, w1, &f1));
    ck_assert_uint_ne(f0, w0); /* finish gives a new handle */
    ck_assert_uint_eq(loc1.file_index, 1);

    OK(c, farena_build(c, (farena_handle[]){f1, f0}, 2, &arena));
    expect_payload(c, arena, loc0, "data0");
    expect_payload(c, arena, loc1, "data1");
    OK(c, farena_arena_info(c, arena, &info));
    ck_assert_uint_eq(info.files, 2);
    ck_assert_uint_eq(info.bytes, 10);
    /* A file may belong to several arenas. */
    OK(c, farena_build(c, (farena_handle[]){f0, f1}, 2, &again));
    ck_assert_uint_ne(again, arena);
    expect_payload(c, again, loc1, "data1");
    farena_close(c);
}
END_TEST

/* "Multiple files (low-level)": FileArena::new wants index order. */
START_TEST(crate_arena_new_low_level)
{
    farena_client *c;
    farena_handle w1, w2, f1, f2, arena, bad;
    farena_loc loc1, loc2;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w1));
    loc1 = push_str(c, w1, "data1");
    OK(c, farena_finish(c, w1, &f1));
    OK(c, farena_writer_new(c, 1, &w2));
    loc2 = push_str(c, w2, "data2");
    OK(c, farena_finish(c, w2, &f2));

    FAILS(c, FARENA_EINDEXMISMATCH, farena_arena_new(c, (farena_handle[]){f2, f1}, 2, &bad));
    OK(c, farena_arena_new(c, (farena_handle[]){f1, f2}, 2, &arena));
    expect_payload(c, arena, loc1, "data1");
    expect_payload(c, arena, loc2, "data2");
    farena_close(c);
}
END_TEST

#define NWORKERS 4
#define NITEMS   3

/* One parallel writer's share of crate_parallel_writers: what it was given,
 * what it hands back, and how it fared. */
struct worker {
    pthread_t th;
    unsigned index;
    pthread_barrier_t *finished, *built;
    char items[NITEMS][48];
    farena_loc locs[NITEMS]; /* where its items landed */
    farena_handle file;      /* its finished file, owned by its connection */
    int rc;                  /* 0, or the first failure */
    char why[320];           /* what failed */
};

/* Writes the worker's items to a new writer of its index and finishes it.
 * Returns 0 or the failing call's code, with wk->why set. */
static int worker_write(struct worker *wk, farena_client *c)
{
    farena_handle w;
    int rc = farena_writer_new(c, (uint16_t)wk->index, &w);

    for (unsigned k = 0; rc == 0 && k < NITEMS; k++)
        rc = farena_push(c, w, wk->items[k], strlen(wk->items[k]), &wk->locs[k]);
    if (rc == 0)
        rc = farena_finish(c, w, &wk->file);
    if (rc != 0)
        snprintf(wk->why, sizeof(wk->why), "%s", farena_errmsg(c));
    return rc;
}

/* A parallel writer: its own connection, its own file. It keeps the
 * connection open until the coordinator has built, since a file in no arena
 * ends with its owner's connection. Failures are recorded, never asserted
 * here, so the barriers are always reached. */
static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    farena_client *c = NULL;

    wk->rc = farena_connect_ex(dmn.sock, 10000, &c, wk->why, sizeof(wk->why));
    if (wk->rc == 0)
        wk->rc = worker_write(wk, c);
    pthread_barrier_wait(wk->finished);
    pthread_barrier_wait(wk->built);
    farena_close(c);
    return NULL;
}

/* 1 when every worker succeeded. */
static int workers_ok(const struct worker *wk)
{
    for (unsigned i = 0; i < NWORKERS; i++) {
        if (wk[i].rc != 0)
            return 0;
    }
    return 1;
}

/* "Parallel writing": each thread writes file i on its own connection and
 * hands back (file, locations); the main thread builds the arena from those
 * file handles on its own connection; the arena outlives the workers. */
START_TEST(crate_parallel_writers)
{
    struct worker wk[NWORKERS];
    pthread_barrier_t finished, built;
    farena_handle files[NWORKERS], arena = 0, ordered = 0;
    struct farena_arena_info info;
    struct farena_stat st;
    farena_client *c;
    int rc_build = -1, rc_new = -1, rc_release = 0;
    uint64_t bytes = 0, end;

    start(NULL);
    c = conn();
    ck_assert_int_eq(pthread_barrier_init(&finished, NULL, NWORKERS + 1), 0);
    ck_assert_int_eq(pthread_barrier_init(&built, NULL, NWORKERS + 1), 0);
    for (unsigned i = 0; i < NWORKERS; i++) {
        memset(&wk[i], 0, sizeof(wk[i]));
        wk[i].index = i;
        wk[i].finished = &finished;
        wk[i].built = &built;
        for (unsigned k = 0; k < NITEMS; k++) {
            snprintf(wk[i].items[k], sizeof(wk[i].items[k]), "file %u item %u%s", i, k,
                     k == 1 ? "" : ", of another length");
            bytes += strlen(wk[i].items[k]);
        }
        ck_assert_int_eq(pthread_create(&wk[i].th, NULL, worker_main, &wk[i]), 0);
    }
    pthread_barrier_wait(&finished);
    /* Every worker has finished its file and is still connected. The
     * builder places files by their index, whatever the order. */
    if (workers_ok(wk)) {
        for (unsigned i = 0; i < NWORKERS; i++)
            files[i] = wk[NWORKERS - 1 - i].file;
        rc_build = farena_build(c, files, NWORKERS, &arena);
        for (unsigned i = 0; i < NWORKERS; i++)
            files[i] = wk[i].file;
        rc_new = farena_arena_new(c, files, NWORKERS, &ordered);
        /* The files are still the workers': the coordinator cannot release them. */
        rc_release = farena_release(c, wk[0].file);
    }
    pthread_barrier_wait(&built);
    for (unsigned i = 0; i < NWORKERS; i++)
        ck_assert_int_eq(pthread_join(wk[i].th, NULL), 0);
    pthread_barrier_destroy(&finished);
    pthread_barrier_destroy(&built);
    for (unsigned i = 0; i < NWORKERS; i++)
        ck_assert_msg(wk[i].rc == 0, "worker %u: %s: %s", i, ename(wk[i].rc), wk[i].why);
    ck_assert_msg(rc_build == 0, "build -> %s", ename(rc_build));
    ck_assert_msg(rc_new == 0, "arena_new -> %s", ename(rc_new));
    ck_assert_msg(rc_release == FARENA_ENOSUCHHANDLE, "release -> %s", ename(rc_release));

    /* The workers' connections are gone; the arenas hold the files. */
    end = th_deadline(5000);
    do {
        OK(c, farena_stat(c, &st));
        if (st.connections > 1)
            th_sleep_ms(5);
    } while (st.connections > 1 && th_ms_left(end) > 0);
    ck_assert_uint_eq(st.connections, 1);
    ck_assert_uint_eq(st.files, NWORKERS);
    for (unsigned i = 0; i < NWORKERS; i++) {
        for (unsigned k = 0; k < NITEMS; k++) {
            ck_assert_uint_eq(wk[i].locs[k].file_index, i);
            expect_payload(c, arena, wk[i].locs[k], wk[i].items[k]);
            expect_payload(c, ordered, wk[i].locs[k], wk[i].items[k]);
        }
    }
    OK(c, farena_arena_info(c, arena, &info));
    ck_assert_uint_eq(info.files, NWORKERS);
    ck_assert_uint_eq(info.bytes, bytes);
    farena_close(c);
}
END_TEST

/* A node of crate_graph_tree: metadata in memory, text in the arena. */
struct node {
    uint64_t id;
    farena_loc payload;
    size_t children[2];
    size_t nchildren;
};

/* FNV-1a, the test's "own hash function". */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
    return h;
}

/* "Graph/tree structures": traverse, read per node, then concatenate. */
START_TEST(crate_graph_tree)
{
    static const char *const names[] = {"root", "child1", "child2"};
    static const char *const texts[] = {"root text", "child text", "ünïcödé child ✓"};
    struct node nodes[3];
    char want[128] = "";
    farena_buf full = FARENA_BUF_INIT;
    farena_handle w, arena;
    farena_client *c;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    for (size_t i = 0; i < 3; i++) {
        nodes[i].id = fnv1a(names[i]);
        nodes[i].payload = push_str(c, w, texts[i]);
        nodes[i].nchildren = 0;
    }
    nodes[0].children[0] = 1;
    nodes[0].children[1] = 2;
    nodes[0].nchildren = 2;
    OK(c, farena_into_arena(c, w, &arena));

    /* A fresh buffer per node: get_str_into appends. */
    for (size_t i = 0; i < 3; i++) {
        farena_buf buf = FARENA_BUF_INIT;
        OK(c, farena_get_str_into(c, arena, nodes[i].payload, &buf));
        ck_assert_str_eq((const char *)buf.data, texts[i]);
        farena_buf_free(&buf);
    }
    /* Depth-first from the root, concatenating into one buffer. */
    OK(c, farena_get_str_into(c, arena, nodes[0].payload, &full));
    strcat(want, texts[0]);
    for (size_t k = 0; k < nodes[0].nchildren; k++) {
        size_t child = nodes[0].children[k];
        OK(c, farena_get_str_into(c, arena, nodes[child].payload, &full));
        strcat(want, texts[child]);
    }
    ck_assert_uint_eq(full.len, strlen(want));
    ck_assert_str_eq((const char *)full.data, want);
    ck_assert_uint_ne(nodes[0].id, nodes[1].id);
    farena_buf_free(&full);
    farena_close(c);
}
END_TEST

/* "Buffer reuse": clear keeps the memory. */
START_TEST(crate_buffer_reuse)
{
    farena_buf buf = FARENA_BUF_INIT;
    farena_handle w, arena;
    farena_loc l1, l2;
    farena_client *c;
    uint8_t *mem;
    size_t cap;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    l1 = push_str(c, w, "hello");
    l2 = push_str(c, w, " world");
    OK(c, farena_into_arena(c, w, &arena));
    OK(c, farena_get_into(c, arena, l1, &buf));
    ck_assert_uint_eq(buf.len, 5);
    ck_assert_mem_eq(buf.data, "hello", 5);
    mem = buf.data;
    cap = buf.cap;
    farena_buf_clear(&buf);
    OK(c, farena_get_into(c, arena, l2, &buf));
    ck_assert_uint_eq(buf.len, 6);
    ck_assert_mem_eq(buf.data, " world", 6);
    ck_assert_ptr_eq(buf.data, mem);
    ck_assert_uint_eq(buf.cap, cap);
    /* Appends, as the crate's get_into does. */
    OK(c, farena_get_into(c, arena, l1, &buf));
    ck_assert_str_eq((const char *)buf.data, " worldhello");
    farena_buf_free(&buf);
    ck_assert_ptr_null(buf.data);
    farena_close(c);
}
END_TEST

/* get_str_into accepts UTF-8 and refuses anything else without touching
 * the buffer; the unchecked variant returns the bytes as they are. */
START_TEST(crate_get_str_utf8)
{
    static const char *const good[] = {
        "plain ascii",
        "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e",
        "\xc2\x80",
        "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
        "",
        "0123456789abcdef0123456789abcdef\xc3\xa9",
    };
    static const char *const bad[] = {
        "\xff",     "\xc0\x80",         "\xc1\xbf",         "\xed\xa0\x80",
        "\xe2\x82", "\xf4\x90\x80\x80", "ok\xc3",           "\xf8\x88\x80\x80\x80",
        "\x80",     "\xe0\x80\x80",     "\xf0\x80\x80\x80", "0123456789abcdef\xfe",
    };
    farena_loc gl[7], bl[12], nul;
    farena_handle w, arena;
    farena_client *c;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    for (size_t i = 0; i < 7; i++)
        gl[i] = push_str(c, w, good[i]);
    for (size_t i = 0; i < 12; i++)
        bl[i] = push_str(c, w, bad[i]);
    OK(c, farena_push(c, w, "a\0b", 3, &nul));
    OK(c, farena_into_arena(c, w, &arena));

    for (size_t i = 0; i < 7; i++) {
        farena_buf buf = FARENA_BUF_INIT;
        OK(c, farena_get_str_into(c, arena, gl[i], &buf));
        ck_assert_uint_eq(buf.len, strlen(good[i]));
        ck_assert_msg(buf.len == 0 || memcmp(buf.data, good[i], buf.len) == 0, "good %zu", i);
        farena_buf_free(&buf);
    }
    for (size_t i = 0; i < 12; i++) {
        farena_buf buf = FARENA_BUF_INIT;
        OK(c, farena_buf_reserve(&buf, 6));
        memcpy(buf.data, "prefix", 6);
        buf.len = 6;
        FAILS(c, FARENA_EUTF8, farena_get_str_into(c, arena, bl[i], &buf));
        ck_assert_uint_eq(buf.len, 6);
        ck_assert_mem_eq(buf.data, "prefix", 6);
        OK(c, farena_get_str_into_unchecked(c, arena, bl[i], &buf));
        ck_assert_uint_eq(buf.len, 6 + strlen(bad[i]));
        ck_assert_mem_eq(buf.data + 6, bad[i], strlen(bad[i]));
        farena_buf_free(&buf);
    }
    {
        farena_buf buf = FARENA_BUF_INIT;
        OK(c, farena_get_str_into(c, arena, nul, &buf)); /* NUL is valid UTF-8 */
        ck_assert_uint_eq(buf.len, 3);
        ck_assert_mem_eq(buf.data, "a\0b", 3);
        farena_buf_free(&buf);
    }
    farena_close(c);
}
END_TEST

/* get_many appends in order; a bad location fails the call untouched. */
START_TEST(get_many_order_and_failure)
{
    static const char *const items[] = {"a", "", "bcd", "the fourth one"};
    struct iovec iov[4];
    farena_loc locs[4], bad[2];
    farena_buf buf = FARENA_BUF_INIT;
    farena_handle w, arena;
    farena_client *c;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    for (size_t i = 0; i < 4; i++) {
        iov[i].iov_base = (void *)(uintptr_t)items[i];
        iov[i].iov_len = strlen(items[i]);
    }
    OK(c, farena_push_many(c, w, iov, 4, locs));
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(locs[i].len, strlen(items[i]));
    OK(c, farena_into_arena(c, w, &arena));

    OK(c, farena_buf_reserve(&buf, 3));
    memcpy(buf.data, "<<<", 3);
    buf.len = 3;
    OK(c,
       farena_get_many_into(c, arena, (farena_loc[]){locs[3], locs[1], locs[0], locs[2]}, 4, &buf));
    ck_assert_str_eq((const char *)buf.data, "<<<the fourth oneabcd");
    OK(c, farena_get_many_into(c, arena, locs, 0, &buf));
    ck_assert_uint_eq(buf.len, 21);

    bad[0] = locs[0];
    bad[1] = (farena_loc){0, 1000, 1};
    FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_many_into(c, arena, bad, 2, &buf));
    ck_assert_msg(strstr(farena_errmsg(c), "item 1") != NULL, "errmsg: %s", farena_errmsg(c));
    ck_assert_uint_eq(buf.len, 21);
    ck_assert_str_eq((const char *)buf.data, "<<<the fourth oneabcd");
    bad[1] = (farena_loc){1, 0, 0}; /* no file 1, even for len 0 */
    FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_many_into(c, arena, bad, 2, &buf));
    ck_assert_uint_eq(buf.len, 21);
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* Info, files, open/release, names, and a bigger arena from old files. */
START_TEST(arena_lifecycle)
{
    struct farena_arena_info info;
    farena_handle w, w1, f1, arena, big, found, files[4];
    farena_loc l0, l1;
    size_t n = 0;
    farena_client *c;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    l0 = push_str(c, w, "first file");
    OK(c, farena_into_arena(c, w, &arena));
    OK(c, farena_arena_info(c, arena, &info));
    ck_assert_uint_eq(info.files, 1);
    ck_assert_uint_eq(info.bytes, 10);
    ck_assert_uint_eq(info.refs, 1);
    ck_assert_int_eq(info.has_name, 0);

    OK(c, farena_open(c, arena));
    OK(c, farena_name(c, arena, "lifecycle-a"));
    OK(c, farena_name(c, arena, "lifecycle-b")); /* several names */
    FAILS(c, FARENA_ENAMETAKEN, farena_name(c, arena, "lifecycle-a"));
    OK(c, farena_arena_info(c, arena, &info));
    ck_assert_uint_eq(info.refs, 4);
    ck_assert_int_eq(info.has_name, 1);
    ck_assert_str_eq(info.name, "lifecycle-a");
    OK(c, farena_lookup(c, "lifecycle-b", &found));
    ck_assert_uint_eq(found, arena);

    /* "To add more data, create a new writer, then build a new arena
     * containing all files." */
    OK(c, farena_arena_files(c, arena, files, 4, &n));
    ck_assert_uint_eq(n, 1);
    OK(c, farena_arena_files(c, arena, NULL, 0, &n)); /* count only */
    ck_assert_uint_eq(n, 1);
    OK(c, farena_writer_new(c, 1, &w1));
    l1 = push_str(c, w1, "second file");
    OK(c, farena_finish(c, w1, &f1));
    files[1] = f1;
    OK(c, farena_build(c, files, 2, &big));
    expect_payload(c, big, l0, "first file");
    expect_payload(c, big, l1, "second file");

    OK(c, farena_unname(c, "lifecycle-a"));
    FAILS(c, FARENA_ENOSUCHNAME, farena_unname(c, "lifecycle-a"));
    OK(c, farena_release(c, arena));
    OK(c, farena_arena_info(c, arena, &info));
    ck_assert_uint_eq(info.refs, 2); /* the first reference and lifecycle-b */
    ck_assert_str_eq(info.name, "lifecycle-b");
    OK(c, farena_release(c, arena));
    OK(c, farena_unname(c, "lifecycle-b"));
    /* Nothing holds it any more. */
    FAILS(c, FARENA_ENOSUCHHANDLE, farena_arena_info(c, arena, &info));
    FAILS(c, FARENA_ENOSUCHHANDLE, farena_release(c, arena));
    expect_payload(c, big, l0, "first file"); /* the big arena holds file 0 */
    farena_close(c);
}
END_TEST

/* Closing a client drops its references: an unnamed arena goes. */
START_TEST(close_drops_references)
{
    struct farena_arena_info info;
    farena_handle w, arena;
    farena_client *a, *b;
    uint64_t end;
    int rc;

    start(NULL);
    a = conn();
    b = conn();
    OK(a, farena_writer_new(a, 0, &w));
    push_str(a, w, "ephemeral");
    OK(a, farena_into_arena(a, w, &arena));
    OK(b, farena_arena_info(b, arena, &info));
    ck_assert_uint_eq(info.refs, 1);
    farena_close(a);
    end = th_deadline(5000);
    do {
        rc = farena_arena_info(b, arena, &info);
        if (rc == 0)
            th_sleep_ms(5);
    } while (rc == 0 && th_ms_left(end) > 0);
    FAILS(b, FARENA_ENOSUCHHANDLE, rc);
    farena_close(b);
}
END_TEST

/* hello, limits, stat, version. */
START_TEST(server_stat_version)
{
    farena_server_info info, again;
    struct farena_stat st;
    farena_client *c;

    start(NULL);
    c = conn();
    OK(c, farena_server(c, &info));
    ck_assert_str_eq(info.server, "farenad");
    ck_assert_uint_eq(info.protocol, 1);
    ck_assert_uint_eq(info.limits.max_message, 64u << 20);
    ck_assert_uint_eq(info.limits.max_batch, 65536);
    ck_assert_uint_eq(info.limits.max_name, 255);
    OK(c, farena_hello(c, &again));
    ck_assert_str_eq(again.version, info.version);
    OK(c, farena_stat(c, &st));
    ck_assert_uint_eq(st.pid, (uint64_t)dmn.pid);
    ck_assert_uint_ge(st.connections, 1);
    ck_assert_uint_ge(st.requests[0], 2); /* two hellos */
    ck_assert_uint_ge(st.requests_total, 3);
    ck_assert_uint_eq(farena_version(), FARENA_VERSION_HEX);
    ck_assert_str_eq(farena_version_string(), "0.1.0");
    ck_assert_str_eq(farena_method_name(0), "hello");
    ck_assert_ptr_null(farena_method_name(1000));
    OK(c, farena_set_timeout(c, 0));
    OK(c, farena_set_timeout(c, 5000));
    farena_close(c);
}
END_TEST

/* NULL path: $FARENA_SOCKET, else the runtime dir, else /tmp/farena-UID. */
START_TEST(default_socket_path)
{
    char path[256], want[256];
    farena_client *c = NULL;

    start(NULL);
    setenv("FARENA_SOCKET", dmn.sock, 1);
    OK(c, farena_connect(NULL, &c));
    farena_close(c);
    c = NULL;
    OK(c, farena_connect("", &c));
    farena_close(c);
    c = NULL;
    OK(c, farena_socket_path("/x/y.sock", path, sizeof(path)));
    ck_assert_str_eq(path, "/x/y.sock");
    OK(c, farena_socket_path(NULL, path, sizeof(path)));
    ck_assert_str_eq(path, dmn.sock);
    setenv("FARENA_SOCKET", "", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    OK(c, farena_socket_path(NULL, path, sizeof(path)));
    ck_assert_str_eq(path, "/run/user/4242/farena/farenad.sock");
    unsetenv("FARENA_SOCKET");
    unsetenv("XDG_RUNTIME_DIR");
    OK(c, farena_socket_path(NULL, path, sizeof(path)));
    snprintf(want, sizeof(want), "/tmp/farena-%lu/farenad.sock", (unsigned long)geteuid());
    ck_assert_str_eq(path, want);
    FAILS(c, FARENA_ETOOLARGE, farena_socket_path("/a/long/path", path, 5));
    ck_assert_str_eq(path, "");
    FAILS(c, FARENA_EINVAL, farena_socket_path(NULL, NULL, 10));
}
END_TEST

/* ---- sharing between processes ---- */

/* Reads one byte from fd within timeout_ms; returns it or -1. */
static int read_byte(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char b;

    if (poll(&p, 1, timeout_ms) != 1 || read(fd, &b, 1) != 1)
        return -1;
    return b;
}

/* The child of fork_child_reads_parent_data; returns its exit status. */
static int fork_child(farena_client *inherited, int to_parent, int from_parent, farena_loc loc)
{
    farena_buf buf = FARENA_BUF_INIT;
    farena_handle w, arena;
    farena_client *own = NULL;
    struct farena_stat st;
    char why[320];

    /* The parent's client is refused here, without touching the socket. */
    if (farena_writer_new(inherited, 0, &w) != FARENA_EFORK ||
        farena_stat(inherited, &st) != FARENA_EFORK ||
        farena_lookup(inherited, "shared", &arena) != FARENA_EFORK ||
        strstr(farena_errmsg(inherited), "fork") == NULL)
        return 10;
    farena_close(inherited);
    if (write(to_parent, "c", 1) != 1)
        return 11;
    if (read_byte(from_parent, 10000) != 'g') /* the parent has closed */
        return 12;
    if (farena_connect_ex(dmn.sock, 10000, &own, why, sizeof(why)) != 0)
        return 13;
    if (farena_lookup(own, "shared", &arena) != 0)
        return 14;
    if (farena_get_into(own, arena, loc, &buf) != 0)
        return 15;
    if (buf.len != 15 || memcmp(buf.data, "from the parent", 15) != 0)
        return 16;
    if (farena_unname(own, "shared") != 0)
        return 17;
    farena_buf_free(&buf);
    farena_close(own);
    return 0;
}

/* A forked child looks up a name its parent bound and reads the parent's
 * data after the parent's client has closed. */
START_TEST(fork_child_reads_parent_data)
{
    int up[2], down[2];
    struct farena_stat st;
    farena_handle w, arena;
    farena_client *c;
    farena_loc loc;
    pid_t pid;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    loc = push_str(c, w, "from the parent");
    OK(c, farena_into_arena(c, w, &arena));
    OK(c, farena_name(c, arena, "shared"));
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fork_child(c, up[1], down[0], loc));
    ck_assert_int_eq(read_byte(up[0], 10000), 'c');
    /* The child's farena_close did not end the parent's connection. */
    OK(c, farena_stat(c, &st));
    farena_close(c);
    ck_assert_int_eq(write(down[1], "g", 1), 1);
    ck_assert_int_eq(th_wait_child(pid, 20000), 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
}
END_TEST

/* Every call in a forked child is refused; the parent's client lives on. */
START_TEST(use_after_fork_refused)
{
    farena_buf buf = FARENA_BUF_INIT;
    struct farena_stat st;
    farena_handle w;
    farena_client *c;
    pid_t pid;

    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int bad = 0;
        bad |= farena_push(c, w, "x", 1, NULL) != FARENA_EFORK;
        bad |= farena_push_many(c, w, NULL, 0, NULL) != FARENA_EFORK;
        bad |= farena_get_into(c, 1, (farena_loc){0, 0, 0}, &buf) != FARENA_EFORK;
        bad |= farena_hello(c, NULL) != FARENA_EFORK;
        bad |= farena_set_timeout(c, 10) != FARENA_EFORK;
        bad |= farena_release(c, w) != FARENA_EFORK;
        farena_close(c);
        _exit(bad ? 1 : 0);
    }
    ck_assert_int_eq(th_wait_child(pid, 10000), 0);
    OK(c, farena_push(c, w, "still mine", 10, NULL));
    OK(c, farena_stat(c, &st));
    ck_assert_uint_eq(st.writers, 1);
    farena_close(c);
}
END_TEST

/* ---- batches far above max_message (daemon with --max-message 256K) ---- */

/* Several MiB of large items both ways, split into many requests. */
/* Replies that grow the receive buffer past what it keeps (16 MiB): the
 * buffer is trimmed only once the call's result has been copied out, so
 * both gets return their exact bytes (the trim once freed the buffer the
 * result pointed into: wrong bytes or a crash on the second get). */
START_TEST(large_gets_after_the_buffer_grew)
{
    static const size_t sizes[] = {(8u << 20) + 1, 10u << 20, 17u << 20, 64};
    farena_loc locs[4];
    farena_handle w, arena;
    farena_client *c;
    uint8_t *data;

    start(NULL);
    c = conn();
    data = malloc(17u << 20);
    ck_assert_ptr_nonnull(data);
    th_pattern(data, 17u << 20, 5);
    OK(c, farena_writer_new(c, 0, &w));
    for (int i = 0; i < 4; i++)
        OK(c, farena_push(c, w, data, sizes[i], &locs[i]));
    OK(c, farena_into_arena(c, w, &arena));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            farena_buf out = FARENA_BUF_INIT;

            OK(c, farena_get_into(c, arena, locs[i], &out));
            ck_assert_uint_eq(out.len, sizes[i]);
            ck_assert_msg(memcmp(out.data, data, sizes[i]) == 0, "get %d of round %d differs", i,
                          round);
            farena_buf_free(&out);
        }
    }
    free(data);
    farena_close(c);
}
END_TEST

START_TEST(batch_megabytes_round_trip)
{
    enum { N = 64 };
    struct iovec iov[N];
    farena_loc locs[N];
    farena_buf out = FARENA_BUF_INIT;
    farena_handle w, arena;
    size_t total = 0, at = 0;
    uint64_t seed = 42, pushes, gets;
    uint8_t *data;
    farena_client *c;

    start(ARGS("--max-message", "256K"));
    c = conn_daemon_path();
    data = malloc((size_t)N * 200000);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < N; i++) {
        size_t len = 1 + th_rand(&seed) % 200000;
        for (size_t k = 0; k < len; k++)
            data[total + k] = (uint8_t)(th_rand(&seed) >> 24);
        iov[i].iov_base = data + total;
        iov[i].iov_len = len;
        total += len;
    }
    ck_assert_uint_gt(total, 4u << 20);
    OK(c, farena_writer_new(c, 0, &w));
    OK(c, farena_push_many(c, w, iov, N, locs));
    for (size_t i = 0; i < N; i++) {
        ck_assert_uint_eq(locs[i].offset, at);
        ck_assert_uint_eq(locs[i].len, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    OK(c, farena_into_arena(c, w, &arena));
    OK(c, farena_get_many_into(c, arena, locs, N, &out));
    ck_assert_uint_eq(out.len, total);
    ck_assert_msg(memcmp(out.data, data, total) == 0, "get_many bytes differ");
    pushes = method_count(c, "push_many", 0);
    gets = method_count(c, "get_many", 0);
    ck_assert_uint_ge(pushes, total / (256u << 10));
    ck_assert_uint_ge(gets, total / (256u << 10));
    ck_assert_uint_eq(method_count(c, "push_many", 1), 0);
    ck_assert_uint_eq(method_count(c, "get_many", 1), 0);
    free(data);
    farena_buf_free(&out);
    farena_close(c);
}
END_TEST

/* How many requests each way a batch took (the daemon's stat). */
struct batch_requests {
    uint64_t push_many, get_many;
};

/* 100 000 small items pushed and read back in batches: checks that they come
 * back exact and returns how many requests that cost. */
static struct batch_requests many_small_items(void)
{
    enum { N = 100000 };
    struct iovec *iov = calloc(N, sizeof(*iov));
    farena_loc *locs = calloc(N, sizeof(*locs));
    char *data = malloc((size_t)N * 16);
    farena_buf out = FARENA_BUF_INIT;
    farena_handle w, arena;
    size_t total = 0, at = 0;
    farena_client *c = conn();
    struct batch_requests req;
    uint64_t t0;

    ck_assert(iov != NULL && locs != NULL && data != NULL);
    for (size_t i = 0; i < N; i++) {
        int n = snprintf(data + total, 16, "#%zu", i * 7919);
        iov[i].iov_base = data + total;
        iov[i].iov_len = (size_t)n;
        total += (size_t)n;
    }
    t0 = th_now_ms();
    OK(c, farena_writer_new(c, 0, &w));
    OK(c, farena_push_many(c, w, iov, N, locs));
    OK(c, farena_into_arena(c, w, &arena));
    OK(c, farena_get_many_into(c, arena, locs, N, &out));
    ck_assert_uint_eq(out.len, total);
    ck_assert_msg(memcmp(out.data, data, total) == 0, "bytes differ");
    for (size_t i = 0; i < N; i++) {
        ck_assert_uint_eq(locs[i].offset, at);
        at += locs[i].len;
    }
    req.push_many = method_count(c, "push_many", 0);
    req.get_many = method_count(c, "get_many", 0);
    fprintf(stderr, "100000 items pushed and read back in %llu ms\n",
            (unsigned long long)(th_now_ms() - t0));
    free(iov);
    free(locs);
    free(data);
    farena_buf_free(&out);
    farena_close(c);
    return req;
}

START_TEST(batch_many_small_default_limits)
{
    struct batch_requests req;

    start(NULL);
    req = many_small_items();
    /* max_batch 65536: two push_many requests, at most two get_many */
    ck_assert_uint_eq(req.push_many, 2);
    ck_assert_uint_le(req.get_many, 2);
}
END_TEST

START_TEST(batch_many_small_small_messages)
{
    struct batch_requests req;

    start(ARGS("--max-message", "256K"));
    req = many_small_items();
    ck_assert_uint_le(req.push_many, 16);
    ck_assert_uint_le(req.get_many, 16);
    ck_assert_uint_ge(req.push_many, 2); /* above max_batch */
}
END_TEST

/* Over-limit single items are refused locally, before anything is sent;
 * a hand-made over-limit get_many gets the daemon's too_large. */
START_TEST(batch_too_large_refused)
{
    static uint8_t big[300000];
    struct iovec iov[3] = {{big, 10}, {big, sizeof(big)}, {big, 10}};
    farena_buf out = FARENA_BUF_INIT, res = FARENA_BUF_INIT;
    farena_loc locs[3];
    farena_handle w, arena;
    uint64_t len = 1;
    farena_client *c;
    msgpack_sbuffer sb;
    msgpack_packer pk;

    start(ARGS("--max-message", "256K"));
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    FAILS(c, FARENA_ETOOLARGE, farena_push(c, w, big, sizeof(big), NULL));
    FAILS(c, FARENA_ETOOLARGE, farena_push_many(c, w, iov, 3, locs));
    ck_assert_msg(strstr(farena_errmsg(c), "item 1") != NULL, "errmsg: %s", farena_errmsg(c));
    OK(c, farena_writer_len(c, w, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(method_count(c, "push", 0), 0);
    ck_assert_uint_eq(method_count(c, "push_many", 0), 0);

    for (size_t i = 0; i < 3; i++)
        iov[i].iov_len = 100000;
    OK(c, farena_push_many(c, w, iov, 3, locs));
    OK(c, farena_into_arena(c, w, &arena));
    FAILS(c, FARENA_ETOOLARGE, farena_get_into(c, arena, (farena_loc){0, 0, sizeof(big)}, &out));
    ck_assert_uint_eq(method_count(c, "get", 0), 0);
    ck_assert_uint_eq(out.len, 0);

    /* The daemon's own check, through the raw call. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, arena);
    msgpack_pack_array(&pk, 3);
    for (size_t i = 0; i < 3; i++)
        proto_pack_loc(&pk, (struct proto_loc){locs[i].file_index, locs[i].offset, locs[i].len});
    FAILS(c, FARENA_ETOOLARGE, farena_call_raw(c, "get_many", sb.data, sb.size, &res));
    ck_assert_uint_eq(res.len, 0);
    ck_assert_uint_eq(method_count(c, "get_many", 1), 1);
    /* The library splits the same batch and succeeds. */
    OK(c, farena_get_many_into(c, arena, locs, 3, &out));
    ck_assert_uint_eq(out.len, 300000);
    msgpack_sbuffer_destroy(&sb);
    farena_buf_free(&out);
    farena_buf_free(&res);
    farena_close(c);
}
END_TEST

/* ---- running out of memory (address-space limit; not under ASan, whose
 * shadow memory cannot live under RLIMIT_AS) ---- */

#if defined(__SANITIZE_ADDRESS__)
#define TEST_CAN_LIMIT_MEMORY 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_CAN_LIMIT_MEMORY 0
#endif
#endif
#ifndef TEST_CAN_LIMIT_MEMORY
#define TEST_CAN_LIMIT_MEMORY 1
#endif

/* Lets this process map at most extra more bytes (soft RLIMIT_AS); the old
 * limit goes to *old for unlimit_memory(). */
static void limit_memory(size_t extra, struct rlimit *old)
{
    struct rlimit rl;
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    ck_assert_int_eq(getrlimit(RLIMIT_AS, old), 0);
    rl = *old;
    rl.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + extra;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
}

/* Restores the limit limit_memory() saved. */
static void unlimit_memory(const struct rlimit *old)
{
    ck_assert_int_eq(setrlimit(RLIMIT_AS, old), 0);
}

/* A get whose receive buffer cannot be allocated fails with ENOMEM before
 * its request is sent: the buffer is untouched and the next call is answered
 * (an unsent request leaves no stray answer to confuse it). */
START_TEST(enomem_get_keeps_connection)
{
    static char text[] = "abc";
    struct iovec abc = {text, 3};
    farena_buf buf = FARENA_BUF_INIT;
    struct rlimit old;
    farena_handle w, arena;
    farena_client *c;
    farena_loc loc;
    uint64_t len = 1;
    int rc;

    if (!TEST_CAN_LIMIT_MEMORY)
        return;
    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    loc = push_str(c, w, "hello");
    OK(c, farena_into_arena(c, w, &arena));
    OK(c, farena_writer_new(c, 0, &w));
    OK(c, farena_buf_reserve(&buf, 4));
    memcpy(buf.data, "keep", 5);
    buf.len = 4;
    limit_memory(24u << 20, &old);
    rc = farena_get_into(c, arena, (farena_loc){0, 0, 48u << 20}, &buf);
    unlimit_memory(&old);
    FAILS(c, FARENA_ENOMEM, rc);
    ck_assert_uint_eq(buf.len, 4);
    ck_assert_int_eq(memcmp(buf.data, "keep", 5), 0);
    /* A batch call next: nothing of the failed get may go out with it. */
    OK(c, farena_push_many(c, w, &abc, 1, NULL));
    OK(c, farena_writer_len(c, w, &len));
    ck_assert_uint_eq(len, 3);
    expect_payload(c, arena, loc, "hello");
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* Memory runs out while packing the second request of a push_many whose
 * first request is half sent: the partial second request is dropped and
 * exactly the first one's bytes reach the daemon, so the connection stays in
 * step and the first request's items are stored. */
START_TEST(enomem_push_many_mid_pipeline)
{
    size_t small = 10u << 20, big = 60u << 20;
    uint8_t *data = calloc(1, big);
    struct iovec iov[2] = {{data, small}, {data, big}};
    farena_loc locs[2];
    struct rlimit old;
    farena_handle w;
    farena_client *c;
    uint64_t len = 0;
    int rc;

    if (!TEST_CAN_LIMIT_MEMORY) {
        free(data);
        return;
    }
    ck_assert_ptr_nonnull(data);
    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w));
    limit_memory(40u << 20, &old);
    rc = farena_push_many(c, w, iov, 2, locs);
    unlimit_memory(&old);
    FAILS(c, FARENA_ENOMEM, rc);
    ck_assert_uint_eq(locs[0].len, small);
    ck_assert(farena_loc_is_none(locs[1]));
    OK(c, farena_writer_len(c, w, &len));
    ck_assert_uint_eq(len, small);
    free(data);
    farena_close(c);
}
END_TEST

/* A get_many split over several requests fails in its last request after
 * the earlier ones delivered their payloads into the buffer's spare room:
 * the buffer still holds exactly what it held before, NUL included, and
 * the connection stays in step. */
START_TEST(get_many_split_fails_late)
{
    static uint8_t big[100000];
    struct iovec iov[3] = {{big, sizeof(big)}, {big, sizeof(big)}, {big, sizeof(big)}};
    farena_buf buf = FARENA_BUF_INIT;
    farena_loc locs[4];
    farena_handle w, arena;
    farena_client *c;

    memset(big, 'z', sizeof(big));
    start(ARGS("--max-message", "256K"));
    c = conn_daemon_path();
    OK(c, farena_writer_new(c, 0, &w));
    OK(c, farena_push_many(c, w, iov, 3, locs));
    OK(c, farena_into_arena(c, w, &arena));
    locs[3] = (farena_loc){0, 300000, 1};
    OK(c, farena_buf_reserve(&buf, 2));
    memcpy(buf.data, "<<", 3);
    buf.len = 2;
    FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_many_into(c, arena, locs, 4, &buf));
    ck_assert_msg(strstr(farena_errmsg(c), "item 3") != NULL, "errmsg: %s", farena_errmsg(c));
    ck_assert_uint_eq(method_count(c, "get_many", 0), 2);
    ck_assert_uint_eq(buf.len, 2);
    ck_assert_str_eq((const char *)buf.data, "<<");
    OK(c, farena_get_many_into(c, arena, locs, 3, &buf));
    ck_assert_uint_eq(buf.len, 300002);
    ck_assert_int_eq(buf.data[buf.len], 0);
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* ---- failure paths against the real daemon ---- */

/* No daemon: a clear error, no crash. */
START_TEST(no_daemon)
{
    farena_client *c = (farena_client *)1;
    char why[320], path[200], lng[300];
    int fd;

    snprintf(path, sizeof(path), "/tmp/farena-check-nodaemon-%ld.sock", (long)getpid());
    unlink(path);
    FAILS(NULL, FARENA_ECONNECT, farena_connect_ex(path, 0, &c, why, sizeof(why)));
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(why, path) != NULL && strstr(why, "No such file") != NULL, "%s", why);
    FAILS(NULL, FARENA_ECONNECT, farena_connect(path, &c));
    /* A regular file where the socket should be. */
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    FAILS(NULL, FARENA_ECONNECT, farena_connect_ex(path, 1000, &c, why, sizeof(why)));
    unlink(path);
    memset(lng, 'x', sizeof(lng) - 1);
    lng[0] = '/';
    lng[sizeof(lng) - 1] = '\0';
    FAILS(NULL, FARENA_ECONNECT, farena_connect_ex(lng, 0, &c, why, sizeof(why)));
    ck_assert_msg(strstr(why, "too long") != NULL, "%s", why);
    /* A truncated message buffer is fine. */
    FAILS(NULL, FARENA_ECONNECT, farena_connect_ex(path, 0, &c, why, 8));
    ck_assert_uint_eq(strlen(why), 7);
}
END_TEST

/* Packs a one-element params array [x] (or any msgpack built by fn). */
static void raw_expect(farena_client *c, int code, const char *method, const char *params,
                       size_t len)
{
    farena_buf res = FARENA_BUF_INIT;

    FAILS(c, code, farena_call_raw(c, method, params, len, &res));
    ck_assert_uint_eq(res.len, 0);
    farena_buf_free(&res);
}

/* Every protocol error the daemon produces on demand, as its FARENA_E. */
START_TEST(protocol_errors_real_daemon)
{
    struct farena_arena_info info;
    farena_handle w0, w0b, w1, w2, f0, f0b, f2, arena, h;
    farena_buf buf = FARENA_BUF_INIT;
    char longname[301];
    farena_client *c;

    start(NULL);
    c = conn();
    raw_expect(c, FARENA_EBADREQUEST, "push", "\x90", 1);
    raw_expect(c, FARENA_EBADREQUEST, "writer_new", "\x91\xce\x00\x01\x00\x00", 6); /* 65536 */
    raw_expect(c, FARENA_EUNKNOWNMETHOD, "frobnicate", "\x90", 1);
    memset(longname, 'n', 300);
    longname[300] = '\0';
    FAILS(c, FARENA_EBADREQUEST, farena_name(c, 1, longname));
    FAILS(c, FARENA_EBADREQUEST, farena_lookup(c, longname, &h));

    FAILS(c, FARENA_ENOSUCHHANDLE, farena_get_into(c, 999999, (farena_loc){0, 0, 0}, &buf));
    FAILS(c, FARENA_ENOSUCHHANDLE, farena_arena_info(c, 999999, &info));
    FAILS(c, FARENA_ENOSUCHNAME, farena_lookup(c, "nobody", &h));
    FAILS(c, FARENA_ENOSUCHNAME, farena_unname(c, "nobody"));

    OK(c, farena_writer_new(c, 0, &w0));
    push_str(c, w0, "zero");
    OK(c, farena_finish(c, w0, &f0));
    OK(c, farena_writer_new(c, 0, &w0b));
    OK(c, farena_finish(c, w0b, &f0b));
    OK(c, farena_writer_new(c, 2, &w2));
    OK(c, farena_finish(c, w2, &f2));
    FAILS(c, FARENA_EDUPLICATEINDEX, farena_build(c, (farena_handle[]){f0, f0b}, 2, &arena));
    FAILS(c, FARENA_EMISSINGINDEX, farena_build(c, (farena_handle[]){f0, f2}, 2, &arena));
    FAILS(c, FARENA_EINDEXMISMATCH, farena_arena_new(c, (farena_handle[]){f2, f0}, 2, &arena));
    FAILS(c, FARENA_EEMPTY, farena_build(c, NULL, 0, &arena));     /* refused locally */
    FAILS(c, FARENA_EEMPTY, farena_arena_new(c, NULL, 0, &arena)); /* likewise */
    raw_expect(c, FARENA_EEMPTY, "build", "\x91\x90", 2);          /* the daemon's answer */

    OK(c, farena_writer_new(c, 1, &w1));
    FAILS(c, FARENA_EMISSINGINDEX, farena_into_arena(c, w1, &arena));
    push_str(c, w1, "the writer is untouched");

    OK(c, farena_build(c, (farena_handle[]){f0}, 1, &arena));
    OK(c, farena_name(c, arena, "taken"));
    FAILS(c, FARENA_ENAMETAKEN, farena_name(c, arena, "taken"));
    FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_into(c, arena, (farena_loc){0, 2, 3}, &buf));
    FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_into(c, arena, (farena_loc){1, 0, 1}, &buf));
    FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_into(c, arena, (farena_loc){0, UINT32_MAX, 2}, &buf));
    /* A length no response can carry is refused before sending. */
    FAILS(c, FARENA_ETOOLARGE,
          farena_get_into(c, arena, (farena_loc){0, UINT32_MAX, UINT32_MAX}, &buf));
    ck_assert_uint_eq(buf.len, 0);
    /* The connection lives through every error. */
    expect_payload(c, arena, (farena_loc){0, 0, 4}, "zero");
    ck_assert_uint_ge(method_count(c, "build", 1), 3);
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* file_full mid-batch: the items before it are stored and located; item
 * numbers in the message are the caller's, across split requests. */
START_TEST(push_many_file_full)
{
    enum { N = 150, SZ = 1000 };
    static uint8_t item[SZ];
    struct iovec iov[N];
    farena_loc locs[N];
    farena_handle w, arena;
    uint64_t len = 0;
    farena_client *c;

    start(ARGS("--max-message", "64K", "--file-max", "100000"));
    c = conn();
    memset(item, 'f', sizeof(item));
    for (size_t i = 0; i < N; i++) {
        iov[i].iov_base = item;
        iov[i].iov_len = SZ;
    }
    OK(c, farena_writer_new(c, 0, &w));
    FAILS(c, FARENA_EFILEFULL, farena_push_many(c, w, iov, N, locs));
    ck_assert_msg(strstr(farena_errmsg(c), "item 100") != NULL, "errmsg: %s", farena_errmsg(c));
    ck_assert_uint_ge(method_count(c, "push_many", 0), 2);
    for (size_t i = 0; i < N; i++) {
        if (i < 100 && !farena_loc_is_none(locs[i])) {
            ck_assert_uint_eq(locs[i].offset, i * SZ);
            continue;
        }
        if (i >= 100)
            ck_assert_msg(farena_loc_is_none(locs[i]), "item %zu has a location", i);
    }
    ck_assert_msg(!farena_loc_is_none(locs[0]), "the first request's items are located");
    OK(c, farena_writer_len(c, w, &len));
    ck_assert_uint_eq(len, 100000);
    FAILS(c, FARENA_EFILEFULL, farena_push(c, w, "x", 1, NULL));
    OK(c, farena_push(c, w, NULL, 0, NULL)); /* nothing more still fits */
    OK(c, farena_into_arena(c, w, &arena));
    expect_payload(c, arena, (farena_loc){0, 99000, 3}, "fff");
    farena_close(c);
}
END_TEST

/* no_space and limit; what is stored stays readable. */
START_TEST(no_space_and_limits)
{
    static uint8_t item[50000];
    farena_handle w[5], arena;
    farena_loc loc;
    farena_client *c;
    int rc;

    start(ARGS("--max-bytes", "120000", "--max-writers", "3"));
    c = conn();
    memset(item, 's', sizeof(item));
    OK(c, farena_writer_new(c, 0, &w[0]));
    OK(c, farena_push(c, w[0], item, sizeof(item), &loc));
    OK(c, farena_writer_new(c, 0, &w[1]));
    OK(c, farena_push(c, w[1], item, sizeof(item), NULL));
    OK(c, farena_writer_new(c, 0, &w[2]));
    FAILS(c, FARENA_ENOSPACE, farena_push(c, w[2], item, sizeof(item), NULL));
    FAILS(c, FARENA_ELIMIT, farena_writer_new(c, 0, &w[3]));
    OK(c, farena_into_arena(c, w[0], &arena));
    expect_payload(c, arena, (farena_loc){0, 49997, 3}, "sss");
    rc = farena_writer_new(c, 0, &w[3]); /* one writer slot is free again */
    ck_assert_msg(rc == 0, "writer_new: %s", farena_errmsg(c));
    farena_close(c);
}
END_TEST

/* max_clients: the daemon's refusal surfaces at connect as FARENA_ELIMIT. */
START_TEST(too_many_clients)
{
    farena_client *a, *b = NULL;
    char why[320];

    start(ARGS("--max-clients", "1"));
    a = conn();
    FAILS(NULL, FARENA_ELIMIT, farena_connect_ex(dmn.sock, 5000, &b, why, sizeof(why)));
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(why, "client") != NULL, "why: %s", why);
    farena_close(a);
}
END_TEST

/* Kills the daemon after a delay (a thread of the test process). */
static void *killer(void *arg)
{
    th_sleep_ms(*(int *)arg);
    kill(dmn.pid, SIGKILL);
    return NULL;
}

/* The daemon dies in the middle of big calls: no SIGPIPE, a bounded wait,
 * and every later call fails at once. Returns the code the interrupted call
 * ended with. */
static int killed_mid_call(int reading)
{
    enum { N = 128, SZ = 64 << 10 };
    static uint8_t item[SZ];
    struct iovec iov[N];
    farena_loc locs[N];
    farena_buf out = FARENA_BUF_INIT;
    farena_handle w, arena = 0;
    struct farena_stat st;
    pthread_t th;
    uint64_t t0;
    int delay = 50, rc = 0;
    farena_client *c;

    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    start(NULL);
    c = conn_daemon_path();          /* direct reads outlive the daemon: check_direct tests that */
    OK(c, farena_set_timeout(c, 0)); /* the daemon's death must end the wait by itself */
    for (size_t i = 0; i < N; i++) {
        iov[i].iov_base = item;
        iov[i].iov_len = SZ;
    }
    OK(c, farena_writer_new(c, 0, &w));
    if (reading) {
        OK(c, farena_push_many(c, w, iov, N, locs));
        OK(c, farena_into_arena(c, w, &arena));
    }
    ck_assert_int_eq(pthread_create(&th, NULL, killer, &delay), 0);
    t0 = th_now_ms();
    while (rc == 0 && th_now_ms() - t0 < 10000) {
        if (reading) {
            farena_buf_clear(&out);
            rc = farena_get_many_into(c, arena, locs, N, &out);
        } else {
            rc = farena_push_many(c, w, iov, N, locs);
        }
    }
    pthread_join(th, NULL);
    ck_assert_msg(rc == FARENA_ECONNLOST, "got %s: %s", ename(rc), farena_errmsg(c));
    ck_assert_uint_lt(th_now_ms() - t0, 5000);
    FAILS(c, FARENA_ECONNLOST, farena_stat(c, &st));
    FAILS(c, FARENA_ECONNLOST, farena_push(c, w, "x", 1, NULL));
    farena_buf_free(&out);
    farena_close(c);
    return rc;
}

START_TEST(daemon_killed_while_pushing)
{
    ck_assert_int_eq(killed_mid_call(0), FARENA_ECONNLOST);
}
END_TEST

START_TEST(daemon_killed_while_reading)
{
    ck_assert_int_eq(killed_mid_call(1), FARENA_ECONNLOST);
}
END_TEST

/* NULL pointers, handle 0, bad buffers, n == 0. */
START_TEST(invalid_arguments)
{
    static char ab[] = "ab";
    farena_buf buf = FARENA_BUF_INIT, bad = {NULL, 5, 0};
    struct farena_arena_info info;
    farena_server_info sinfo;
    struct farena_stat st;
    farena_handle h, w, arena;
    farena_loc loc;
    uint64_t len;
    size_t n;
    farena_client *c;

    /* A NULL client is refused by every call. */
    FAILS(NULL, FARENA_EINVAL, farena_writer_new(NULL, 0, &h));
    FAILS(NULL, FARENA_EINVAL, farena_push(NULL, 1, "x", 1, &loc));
    FAILS(NULL, FARENA_EINVAL, farena_push_many(NULL, 1, NULL, 0, NULL));
    FAILS(NULL, FARENA_EINVAL, farena_writer_len(NULL, 1, &len));
    FAILS(NULL, FARENA_EINVAL, farena_finish(NULL, 1, &h));
    FAILS(NULL, FARENA_EINVAL, farena_into_arena(NULL, 1, &h));
    FAILS(NULL, FARENA_EINVAL, farena_build(NULL, &h, 1, &h));
    FAILS(NULL, FARENA_EINVAL, farena_arena_new(NULL, &h, 1, &h));
    FAILS(NULL, FARENA_EINVAL, farena_get_into(NULL, 1, loc, &buf));
    FAILS(NULL, FARENA_EINVAL, farena_get_str_into(NULL, 1, loc, &buf));
    FAILS(NULL, FARENA_EINVAL, farena_get_str_into_unchecked(NULL, 1, loc, &buf));
    FAILS(NULL, FARENA_EINVAL, farena_get_many_into(NULL, 1, &loc, 1, &buf));
    FAILS(NULL, FARENA_EINVAL, farena_arena_info(NULL, 1, &info));
    FAILS(NULL, FARENA_EINVAL, farena_arena_files(NULL, 1, &h, 1, &n));
    FAILS(NULL, FARENA_EINVAL, farena_open(NULL, 1));
    FAILS(NULL, FARENA_EINVAL, farena_release(NULL, 1));
    FAILS(NULL, FARENA_EINVAL, farena_name(NULL, 1, "x"));
    FAILS(NULL, FARENA_EINVAL, farena_lookup(NULL, "x", &h));
    FAILS(NULL, FARENA_EINVAL, farena_unname(NULL, "x"));
    FAILS(NULL, FARENA_EINVAL, farena_stat(NULL, &st));
    FAILS(NULL, FARENA_EINVAL, farena_hello(NULL, &sinfo));
    FAILS(NULL, FARENA_EINVAL, farena_server(NULL, &sinfo));
    FAILS(NULL, FARENA_EINVAL, farena_set_timeout(NULL, 10));
    FAILS(NULL, FARENA_EINVAL, farena_call_raw(NULL, "stat", "\x90", 1, NULL));
    FAILS(NULL, FARENA_EINVAL, farena_connect(NULL, NULL));
    FAILS(NULL, FARENA_EINVAL, farena_buf_reserve(NULL, 1));
    FAILS(NULL, FARENA_EINVAL, farena_buf_reserve(&bad, 1));
    ck_assert_ptr_nonnull(farena_errmsg(NULL));
    farena_close(NULL);
    farena_buf_clear(NULL);
    farena_buf_free(NULL);

    start(NULL);
    c = conn();
    FAILS(c, FARENA_EINVAL, farena_writer_new(c, 0, NULL));
    OK(c, farena_writer_new(c, 0, &w));
    FAILS(c, FARENA_EINVAL, farena_push(c, 0, "x", 1, NULL));
    FAILS(c, FARENA_EINVAL, farena_push(c, w, NULL, 1, NULL));
    OK(c, farena_push(c, w, NULL, 0, &loc)); /* an empty payload */
    ck_assert_uint_eq(loc.len, 0);
    FAILS(c, FARENA_EINVAL, farena_push_many(c, w, NULL, 3, NULL));
    FAILS(c, FARENA_EINVAL, farena_push_many(c, w, (struct iovec[]){{ab, 1}, {NULL, 2}}, 2, NULL));
    OK(c, farena_push_many(c, w, NULL, 0, NULL));
    OK(c, farena_push_many(c, w, (struct iovec[]){{ab, 2}}, 1, NULL)); /* locs optional */
    FAILS(c, FARENA_EINVAL, farena_writer_len(c, w, NULL));
    FAILS(c, FARENA_EINVAL, farena_writer_len(c, 0, &len));
    FAILS(c, FARENA_EINVAL, farena_finish(c, w, NULL));
    FAILS(c, FARENA_EINVAL, farena_into_arena(c, w, NULL));
    FAILS(c, FARENA_EINVAL, farena_build(c, NULL, 2, &arena));
    FAILS(c, FARENA_EINVAL, farena_build(c, (farena_handle[]){0}, 1, &arena));
    FAILS(c, FARENA_EINVAL, farena_build(c, &w, 1, NULL));
    OK(c, farena_into_arena(c, w, &arena));
    FAILS(c, FARENA_EINVAL, farena_get_into(c, 0, (farena_loc){0, 0, 1}, &buf));
    FAILS(c, FARENA_EINVAL, farena_get_into(c, arena, (farena_loc){0, 0, 1}, NULL));
    FAILS(c, FARENA_EINVAL, farena_get_into(c, arena, (farena_loc){0, 0, 1}, &bad));
    FAILS(c, FARENA_EINVAL, farena_get_many_into(c, arena, NULL, 1, &buf));
    FAILS(c, FARENA_EINVAL, farena_get_many_into(c, arena, &loc, 1, NULL));
    OK(c, farena_get_many_into(c, arena, NULL, 0, &buf));
    ck_assert_uint_eq(buf.len, 0);
    FAILS(c, FARENA_EINVAL, farena_arena_info(c, arena, NULL));
    FAILS(c, FARENA_EINVAL, farena_arena_files(c, arena, NULL, 1, &n));
    FAILS(c, FARENA_EINVAL, farena_arena_files(c, arena, &h, 1, NULL));
    FAILS(c, FARENA_EINVAL, farena_open(c, 0));
    FAILS(c, FARENA_EINVAL, farena_release(c, 0));
    FAILS(c, FARENA_EINVAL, farena_name(c, arena, NULL));
    FAILS(c, FARENA_EINVAL, farena_name(c, arena, ""));
    FAILS(c, FARENA_EINVAL, farena_name(c, 0, "x"));
    FAILS(c, FARENA_EINVAL, farena_lookup(c, NULL, &h));
    FAILS(c, FARENA_EINVAL, farena_lookup(c, "x", NULL));
    FAILS(c, FARENA_EINVAL, farena_unname(c, ""));
    FAILS(c, FARENA_EINVAL, farena_stat(c, NULL));
    FAILS(c, FARENA_EINVAL, farena_server(c, NULL));
    FAILS(c, FARENA_EINVAL, farena_set_timeout(c, -1));
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, "stat", "\x80", 1, NULL));     /* a map */
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, "stat", "\x90\x90", 2, NULL)); /* two arrays */
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, "", "\x90", 1, NULL));
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, NULL, "\x90", 1, NULL));
    OK(c, farena_call_raw(c, "stat", "\x90", 1, &buf));
    ck_assert_uint_gt(buf.len, 10); /* a msgpack map */
    ck_assert_uint_eq(buf.data[0] & 0xf0, 0x80);
    /* The connection is still fine. */
    OK(c, farena_hello(c, NULL));
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* "On failure *out is set to NULL" holds for invalid arguments too, so a
 * caller may farena_close() whatever it got back. */
START_TEST(connect_invalid_args_null_out)
{
    farena_client *c = (farena_client *)1;
    char why[64];

    FAILS(NULL, FARENA_EINVAL, farena_connect_ex("/nonexistent.sock", -1, &c, NULL, 0));
    ck_assert_ptr_null(c);
    c = (farena_client *)1;
    FAILS(NULL, FARENA_EINVAL, farena_connect_ex("/nonexistent.sock", 0, &c, NULL, 8));
    ck_assert_ptr_null(c);
    c = (farena_client *)1;
    FAILS(NULL, FARENA_EINVAL, farena_connect_ex("/nonexistent.sock", -5, &c, why, sizeof(why)));
    ck_assert_ptr_null(c);
    ck_assert_str_eq(why, "invalid argument");
}
END_TEST

/* farena_call_raw walks the caller's params with the guarding scanner before
 * msgpack-c sees them: five bytes declaring a two-billion-element array are
 * refused at once (msgpack-c would try to allocate ~48 GiB for them), and
 * truncated or trailing bytes are invalid. Nothing is sent. */
START_TEST(call_raw_hostile_params)
{
    farena_buf res = FARENA_BUF_INIT;
    farena_client *c;

    start(NULL);
    c = conn();
    FAILS(c, FARENA_ETOOLARGE, farena_call_raw(c, "stat", "\xdd\x7f\xff\xff\xff", 5, &res));
    FAILS(c, FARENA_ETOOLARGE, farena_call_raw(c, "stat", "\x91\xdf\x7f\xff\xff\xff", 6, &res));
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, "stat", "\x92\x01", 2, &res));
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, "stat", "\x90\x01", 2, &res));
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, "stat", "\x91\xc1", 2, &res));
    FAILS(c, FARENA_EINVAL, farena_call_raw(c, "stat", "", 0, &res));
    ck_assert_uint_eq(res.len, 0);
    ck_assert_uint_eq(method_count(c, "stat", 0), 1); /* method_count's own */
    OK(c, farena_call_raw(c, "stat", "\x90", 1, &res));
    ck_assert_uint_gt(res.len, 10);
    farena_buf_free(&res);
    farena_close(c);
}
END_TEST

/* Every code has a text and a symbolic name; the tables are consistent. */
START_TEST(error_tables)
{
    static const int codes[] = {
        FARENA_EBADREQUEST,   FARENA_EUNKNOWNMETHOD, FARENA_ENOSUCHHANDLE, FARENA_ENOSUCHNAME,
        FARENA_ENAMETAKEN,    FARENA_EOUTOFBOUNDS,   FARENA_EFILEFULL,     FARENA_EDUPLICATEINDEX,
        FARENA_EMISSINGINDEX, FARENA_EINDEXMISMATCH, FARENA_EEMPTY,        FARENA_ETOOLARGE,
        FARENA_ENOSPACE,      FARENA_ELIMIT,         FARENA_EIOERROR,      FARENA_ESHUTTINGDOWN,
        FARENA_ECONNECT,      FARENA_ECONNLOST,      FARENA_EPROTO,        FARENA_ENOMEM,
        FARENA_EUTF8,         FARENA_EINVAL,         FARENA_EFORK,         FARENA_EUNKNOWN,
        FARENA_ETIMEDOUT,
    };
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    const char *generic = farena_strerror(-50);

    for (size_t i = 0; i < n; i++) {
        const char *name = farena_errname(codes[i]);
        const char *text = farena_strerror(codes[i]);
        ck_assert_ptr_nonnull(name);
        ck_assert_msg(strncmp(name, "FARENA_E", 8) == 0, "%s", name);
        ck_assert_msg(text[0] != '\0' && strcmp(text, generic) != 0, "%s has no text", name);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(name, farena_errname(codes[j]));
        if (codes[i] > -100) /* the protocol's own description */
            ck_assert_str_eq(text, proto_err_describe((enum proto_err) - codes[i]));
    }
    ck_assert_str_eq(farena_errname(0), "FARENA_OK");
    ck_assert_str_eq(farena_strerror(0), "success");
    ck_assert_ptr_null(farena_errname(1));
    ck_assert_ptr_null(farena_errname(-50));
    ck_assert_ptr_null(farena_errname(-99));
    ck_assert_ptr_null(farena_errname(FARENA_ETIMEDOUT - 1));
    ck_assert_ptr_nonnull(farena_strerror(INT32_MIN));
    ck_assert_int_eq(farena_loc_is_none((farena_loc)FARENA_LOC_NONE), 1);
    ck_assert_int_eq(farena_loc_is_none((farena_loc){0, 0, 0}), 0);
}
END_TEST

/* ---- a scripted fake peer, for failures farenad cannot be made to show ---- */

enum fake_mode {
    FAKE_ERRORS,     /* answer request k with errors[k] */
    FAKE_SILENT,     /* never answer after hello */
    FAKE_BAD_MSGID,  /* answer with a msgid nobody asked for */
    FAKE_GARBAGE,    /* answer with a byte that is not msgpack */
    FAKE_HANG_UP,    /* close after reading a request */
    FAKE_BAD_RESULT, /* answer writer_new with a str */
    FAKE_REFUSE,     /* at once: the too-many-clients reply, then close */
    FAKE_BAD_HELLO,  /* answer hello with protocol 0 */
    FAKE_PROTO_2,    /* answer hello with protocol 2 (a future, incompatible one) */
    FAKE_HUGE_LIMIT, /* report max_message 8 GiB; answer anything else with nil */
    FAKE_OLD,        /* a daemon without arena_fds: get answers 'f' bytes, others nil */
    FAKE_STRAY_FDS,  /* offers arena_fds; answers all with nil plus 2 unasked descriptors */
};

/* One fake peer: a listening socket and a thread serving one connection. */
struct fake {
    char path[108];
    int lfd;
    pthread_t th;
    enum fake_mode mode;
    const char *const *errors; /* FAKE_ERRORS: wire names, NULL-terminated */
    uint32_t offset;           /* FAKE_ERRORS: bytes "stored" so far */
    int asked_fds;             /* arena_fds requests seen */
    int item_detail;           /* FAKE_ERRORS: batch errors carry {"item": 2}
                                  and a message naming item 9 (which a
                                  client must not read); else the old form
                                  [name, "item 2: ..."] */
};

/* Sends a packed buffer whole, its first byte by sendmsg() with two
 * descriptors of /dev/null (unasked for), then closes the fake's copies. */
static void fake_send_stray_fds(int fd, const msgpack_sbuffer *sb)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_RDONLY | O_CLOEXEC)};
    struct iovec iov = {sb->data, 1};
    struct msghdr mh;
    struct cmsghdr *cm;
    size_t off = 1;

    memset(&u, 0, sizeof(u));
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, sizeof(fds));
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) == 1)
        while (off < sb->size) {
            ssize_t n = send(fd, sb->data + off, sb->size - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    close(fds[0]);
    close(fds[1]);
}

/* Sends a packed buffer whole (blocking socket). */
static void fake_send(int fd, const msgpack_sbuffer *sb)
{
    size_t off = 0;

    while (off < sb->size) {
        ssize_t n = send(fd, sb->data + off, sb->size - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* Answers one decoded request the way the mode says. */
static void fake_answer(struct fake *f, int fd, const struct proto_request *rq, size_t *k)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int hello = rq->method_len == 5 && memcmp(rq->method, "hello", 5) == 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (hello) {
        proto_pack_result_head(&pk, rq->msgid);
        msgpack_pack_map(&pk, f->mode == FAKE_OLD || f->mode == FAKE_STRAY_FDS ? 5 : 4);
        proto_pack_cstr(&pk, "server");
        proto_pack_cstr(&pk, "fake");
        proto_pack_cstr(&pk, "version");
        proto_pack_cstr(&pk, "0.0.0");
        proto_pack_cstr(&pk, "protocol");
        msgpack_pack_uint8(&pk, f->mode == FAKE_BAD_HELLO ? 0 : f->mode == FAKE_PROTO_2 ? 2 : 1);
        if (f->mode == FAKE_OLD || f->mode == FAKE_STRAY_FDS) {
            /* A methods list: protocol 1's first table, plus arena_fds for
             * FAKE_STRAY_FDS. */
            int n = f->mode == FAKE_OLD ? PROTO_M_ARENA_FDS : PROTO_M_ARENA_FDS + 1;
            proto_pack_cstr(&pk, "methods");
            msgpack_pack_array(&pk, (size_t)n);
            for (int i = 0; i < n; i++)
                proto_pack_cstr(&pk, proto_method_name((enum proto_method)i));
        }
        proto_pack_cstr(&pk, "limits");
        msgpack_pack_map(&pk, 2);
        proto_pack_cstr(&pk, "max_message");
        msgpack_pack_uint64(&pk, f->mode == FAKE_HUGE_LIMIT ? UINT64_C(1) << 33 : 65536);
        proto_pack_cstr(&pk, "max_batch");
        msgpack_pack_uint32(&pk, 16);
    } else {
        switch (f->mode) {
        case FAKE_ERRORS: {
            const char *name = f->errors[*k] != NULL ? f->errors[*k] : "bad_request";
            int batch = rq->method_len == 9 && memcmp(rq->method, "push_many", 9) == 0;
            char msg[64];
            (*k)++;
            if (name[0] == '\0' && batch) {
                /* "" answers a push_many with its locations. */
                const msgpack_object *items = &rq->params[1];
                proto_pack_result_head(&pk, rq->msgid);
                msgpack_pack_array(&pk, items->via.array.size);
                for (uint32_t i = 0; i < items->via.array.size; i++) {
                    uint32_t len = items->via.array.ptr[i].via.bin.size;
                    proto_pack_loc(&pk, (struct proto_loc){0, f->offset, len});
                    f->offset += len;
                }
                break;
            }
            snprintf(msg, sizeof(msg),
                     !batch           ? "fake %s"
                     : f->item_detail ? "item 9: fake %s"
                                      : "item 2: fake %s",
                     name);
            msgpack_pack_array(&pk, 4);
            msgpack_pack_uint8(&pk, 1);
            msgpack_pack_uint32(&pk, rq->msgid);
            msgpack_pack_array(&pk, batch && f->item_detail ? 3 : 2);
            proto_pack_cstr(&pk, name);
            proto_pack_cstr(&pk, msg);
            if (batch && f->item_detail) {
                msgpack_pack_map(&pk, 1);
                proto_pack_cstr(&pk, "item");
                msgpack_pack_uint8(&pk, 2);
            }
            msgpack_pack_nil(&pk);
            break;
        }
        case FAKE_BAD_MSGID:
            proto_pack_result_head(&pk, rq->msgid + 1000);
            msgpack_pack_nil(&pk);
            break;
        case FAKE_GARBAGE:
            msgpack_sbuffer_write(&sb, "\xc1", 1);
            break;
        case FAKE_BAD_RESULT:
            proto_pack_result_head(&pk, rq->msgid);
            proto_pack_cstr(&pk, "not a handle");
            break;
        case FAKE_HUGE_LIMIT:
        case FAKE_STRAY_FDS:
            proto_pack_result_head(&pk, rq->msgid);
            msgpack_pack_nil(&pk);
            break;
        case FAKE_OLD:
            if (rq->method_len == 9 && memcmp(rq->method, "arena_fds", 9) == 0) {
                f->asked_fds++;
                proto_pack_error(&pk, rq->msgid, PROTO_UNKNOWN_METHOD, "no method");
            } else if (rq->method_len == 3 && memcmp(rq->method, "get", 3) == 0) {
                uint32_t len = (uint32_t)rq->params[1].via.array.ptr[2].via.u64;
                proto_pack_result_head(&pk, rq->msgid);
                msgpack_pack_bin(&pk, len);
                for (uint32_t i = 0; i < len; i++)
                    msgpack_pack_bin_body(&pk, "f", 1);
            } else {
                proto_pack_result_head(&pk, rq->msgid);
                msgpack_pack_nil(&pk);
            }
            break;
        default:
            break;
        }
    }
    if (f->mode == FAKE_STRAY_FDS && !hello)
        fake_send_stray_fds(fd, &sb);
    else
        fake_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* The fake's thread: accepts one connection and serves it until EOF. */
static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    struct proto_scan *scan = proto_scan_new(&lim);
    struct pollfd p = {f->lfd, POLLIN, 0};
    static uint8_t in[1 << 20];
    size_t have = 0, fed = 0, k = 0;
    msgpack_zone zone;
    int fd;

    msgpack_zone_init(&zone, 4096);
    if (poll(&p, 1, 10000) != 1 || (fd = accept(f->lfd, NULL, NULL)) < 0)
        goto out;
    if (f->mode == FAKE_REFUSE) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        proto_pack_error(&pk, 0, PROTO_LIMIT, "too many clients");
        fake_send(fd, &sb);
        msgpack_sbuffer_destroy(&sb);
        close(fd);
        goto out;
    }
    for (;;) {
        struct pollfd q = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&q, 1, 10000) != 1)
            break;
        n = recv(fd, in + have, sizeof(in) - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        while (fed < have) {
            size_t used = 0, total;
            msgpack_object obj;
            struct proto_request rq;
            enum proto_scan_status st = proto_scan_feed(scan, in + fed, have - fed, &used, NULL);
            if (st != PROTO_SCAN_READY) {
                fed = have;
                break;
            }
            total = proto_scan_total(scan);
            fed += used;
            proto_scan_reset(scan);
            msgpack_zone_clear(&zone);
            if (proto_unpack(&zone, in + fed - total, total, &obj, NULL) == 0 &&
                proto_request_decode(&obj, &rq, NULL) == 0) {
                int hello = rq.method_len == 5 && memcmp(rq.method, "hello", 5) == 0;
                if (f->mode == FAKE_HANG_UP && !hello) {
                    close(fd);
                    goto out;
                }
                if (!(f->mode == FAKE_SILENT && !hello))
                    fake_answer(f, fd, &rq, &k);
            }
            memmove(in, in + fed, have - fed);
            have -= fed;
            fed = 0;
        }
    }
    close(fd);
out:
    msgpack_zone_destroy(&zone);
    proto_scan_free(scan);
    return NULL;
}

/* Starts a fake peer on a fresh socket path. */
static void fake_start(struct fake *f, enum fake_mode mode, const char *const *errors)
{
    struct sockaddr_un sa;

    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->errors = errors;
    ck_assert_int_lt(snprintf(f->path, sizeof(f->path), "%s/fake-%ld-%d.sock", th_run_path(),
                              (long)getpid(), (int)mode),
                     (int)sizeof(f->path));
    unlink(f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->lfd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->lfd, 4), 0);
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

/* Waits for the fake's thread and removes its socket. */
static void fake_stop(struct fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    unlink(f->path);
}

/* Connects to a fake peer or fails the test. */
static farena_client *fake_conn(struct fake *f)
{
    farena_client *c = NULL;
    char why[320];
    int rc = farena_connect_ex(f->path, 10000, &c, why, sizeof(why));

    ck_assert_msg(rc == 0, "connect to fake: %s: %s", ename(rc), why);
    return c;
}

/* Every protocol error code, and one this library does not know, surfaces
 * as its FARENA_E code with the peer's message. */
START_TEST(fake_every_error_code)
{
    const char *names[PROTO_ERR_COUNT + 1];
    struct fake f;
    farena_client *c;
    uint64_t len;

    for (int i = 1; i < PROTO_ERR_COUNT; i++)
        names[i - 1] = proto_err_name((enum proto_err)i);
    names[PROTO_ERR_COUNT - 1] = "brand_new_error";
    names[PROTO_ERR_COUNT] = NULL;
    fake_start(&f, FAKE_ERRORS, names);
    c = fake_conn(&f);
    for (int i = 1; i < PROTO_ERR_COUNT; i++) {
        char want[64];
        snprintf(want, sizeof(want), "fake %s", proto_err_name((enum proto_err)i));
        FAILS(c, -i, farena_writer_len(c, 1, &len));
        ck_assert_str_eq(farena_errmsg(c), want);
    }
    FAILS(c, FARENA_EUNKNOWN, farena_writer_len(c, 1, &len));
    ck_assert_msg(strstr(farena_errmsg(c), "brand_new_error") != NULL, "%s", farena_errmsg(c));
    farena_close(c);
    fake_stop(&f);
}
END_TEST

/* A silent peer: the timeout ends the call, the client is then unusable. */
START_TEST(fake_timeout)
{
    struct fake f;
    farena_client *c;
    uint64_t len, t0, took;

    fake_start(&f, FAKE_SILENT, NULL);
    c = fake_conn(&f);
    OK(c, farena_set_timeout(c, 200));
    t0 = th_now_ms();
    FAILS(c, FARENA_ETIMEDOUT, farena_writer_len(c, 1, &len));
    took = th_now_ms() - t0;
    ck_assert_uint_ge(took, 150);
    ck_assert_uint_lt(took, 5000);
    FAILS(c, FARENA_ECONNLOST, farena_writer_len(c, 1, &len));
    ck_assert_msg(strstr(farena_errmsg(c), "200 ms") != NULL, "%s", farena_errmsg(c));
    farena_close(c);
    fake_stop(&f);
}
END_TEST

/* Malformed replies are protocol errors, never crashes. */
START_TEST(fake_malformed_replies)
{
    static const enum fake_mode modes[] = {FAKE_BAD_MSGID, FAKE_GARBAGE, FAKE_BAD_RESULT,
                                           FAKE_HANG_UP};
    static const int want[] = {FARENA_EPROTO, FARENA_EPROTO, FARENA_EPROTO, FARENA_ECONNLOST};

    for (size_t i = 0; i < 4; i++) {
        struct fake f;
        farena_client *c;
        farena_handle w;
        int rc;

        fake_start(&f, modes[i], NULL);
        c = fake_conn(&f);
        rc = farena_writer_new(c, 0, &w);
        ck_assert_msg(rc == want[i], "fake mode %d: writer_new -> %s, expected %s: %s",
                      (int)modes[i], ename(rc), ename(want[i]), farena_errmsg(c));
        farena_close(c);
        fake_stop(&f);
    }
}
END_TEST

/* Refusals during connect: too many clients, a protocol this library does
 * not speak. */
START_TEST(fake_connect_refusals)
{
    struct fake f;
    farena_client *c = NULL;
    char why[320];

    fake_start(&f, FAKE_REFUSE, NULL);
    FAILS(NULL, FARENA_ELIMIT, farena_connect_ex(f.path, 5000, &c, why, sizeof(why)));
    ck_assert_str_eq(why, "too many clients");
    ck_assert_ptr_null(c);
    fake_stop(&f);
    fake_start(&f, FAKE_BAD_HELLO, NULL);
    FAILS(NULL, FARENA_EPROTO, farena_connect_ex(f.path, 5000, &c, why, sizeof(why)));
    ck_assert_msg(strstr(why, "protocol 0") != NULL, "%s", why);
    fake_stop(&f);
    fake_start(&f, FAKE_PROTO_2, NULL);
    FAILS(NULL, FARENA_EPROTO, farena_connect_ex(f.path, 5000, &c, why, sizeof(why)));
    ck_assert_msg(strstr(why, "protocol 2") != NULL, "%s", why);
    ck_assert_ptr_null(c);
    fake_stop(&f);
}
END_TEST

/* Batches follow the peer's limits: the fake says max_batch 16, so a
 * 40-item push_many makes three pipelined requests; the first succeeds, the
 * second fails at its item 2, and the error names the caller's item 18. The
 * peer's batch errors carry the item as data (item_detail) or only in the
 * text (an old daemon). */
static void batch_split_numbering(int item_detail)
{
    static const char *const errs[] = {"", "file_full", "no_space", NULL};
    static char x[] = "x";
    struct iovec iov[40];
    farena_loc locs[40];
    struct fake f;
    farena_client *c;
    farena_server_info info;

    fake_start(&f, FAKE_ERRORS, errs);
    f.item_detail = item_detail;
    c = fake_conn(&f);
    OK(c, farena_server(c, &info));
    ck_assert_str_eq(info.server, "fake");
    ck_assert_uint_eq(info.limits.max_batch, 16);
    for (size_t i = 0; i < 40; i++) {
        iov[i].iov_base = x;
        iov[i].iov_len = 1;
    }
    FAILS(c, FARENA_EFILEFULL, farena_push_many(c, 1, iov, 40, locs));
    ck_assert_str_eq(farena_errmsg(c), "item 18: fake file_full");
    for (size_t i = 0; i < 16; i++)
        ck_assert_uint_eq(locs[i].offset, i);
    for (size_t i = 16; i < 40; i++)
        ck_assert(farena_loc_is_none(locs[i]));
    farena_close(c);
    fake_stop(&f);
}

/* A push_many split over requests of max_batch (16) items: the second
 * request's error about its item 2 is the caller's item 18, read from the
 * error's {"item": 2} while the text says item 9. */
START_TEST(fake_batch_split_numbering)
{
    batch_split_numbering(1);
}
END_TEST

/* The same against an old daemon, which sends no item field: the number is
 * parsed from the message's leading "item 2:". */
START_TEST(fake_batch_split_numbering_old_daemon)
{
    batch_split_numbering(0);
}
END_TEST

/* A peer announcing a max_message above 4 GiB cannot make the library pack
 * a payload whose length does not fit a bin32 header (which would truncate
 * the header and desynchronise the stream): such payloads are refused before
 * anything is packed, and nothing of data is read. */
START_TEST(fake_huge_max_message_payload_refused)
{
    static char one[1] = "x";
    struct iovec iov[1] = {{one, (size_t)UINT32_MAX + 2}};
    farena_server_info info;
    struct fake f;
    farena_client *c;
    farena_loc loc;

    fake_start(&f, FAKE_HUGE_LIMIT, NULL);
    c = fake_conn(&f);
    OK(c, farena_server(c, &info));
    ck_assert_uint_eq(info.limits.max_message, UINT64_C(1) << 33);
    FAILS(c, FARENA_ETOOLARGE, farena_push(c, 1, one, (size_t)UINT32_MAX + 2, &loc));
    FAILS(c, FARENA_ETOOLARGE, farena_push_many(c, 1, iov, 1, NULL));
    /* The connection is still in step: the next call is answered. */
    OK(c, farena_open(c, 7));
    farena_close(c);
    fake_stop(&f);
}
END_TEST

/* ---- listing names ---- */

/* qsort order of C strings: byte order, as the daemon lists. */
static int str_order(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* farena_list pages through the names with a prefix in byte order, small
 * pages or large, reports what each binds, resumes after any name, and
 * checks its arguments. */
START_TEST(list_pages_through_names)
{
    struct farena_list_entry ents[8];
    char names[40][16], cursor[FARENA_CURSOR_SIZE], longp[300];
    const char *want[40];
    farena_client *c;
    farena_handle w, a, b;
    size_t n, got;

    start(NULL);
    c = conn();
    cursor[0] = '\0';
    OK(c, farena_list(c, NULL, cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(cursor, "");
    OK(c, farena_writer_new(c, 0, &w));
    push_str(c, w, "0123456789");
    OK(c, farena_into_arena(c, w, &a));
    OK(c, farena_writer_new(c, 0, &w));
    push_str(c, w, "abc");
    OK(c, farena_into_arena(c, w, &b));
    for (int i = 0; i < 25; i++) {
        snprintf(names[i], sizeof(names[i]), "job/%d", i);
        OK(c, farena_name(c, i == 7 ? b : a, names[i]));
        want[i] = names[i];
    }
    OK(c, farena_name(c, a, "jobs"));
    OK(c, farena_name(c, b, "other"));
    qsort(want, 25, sizeof(want[0]), str_order);

    for (size_t cap = 1; cap <= 8; cap += 3) {
        got = 0;
        cursor[0] = '\0';
        do {
            OK(c, farena_list(c, "job/", cursor, ents, cap, &n));
            ck_assert_uint_le(n, cap);
            for (size_t i = 0; i < n; i++, got++) {
                ck_assert_uint_lt(got, 25);
                ck_assert_str_eq(ents[i].name, want[got]);
                if (strcmp(ents[i].name, "job/7") == 0) {
                    ck_assert_uint_eq(ents[i].arena, b);
                    ck_assert_uint_eq(ents[i].bytes, 3);
                    ck_assert_uint_eq(ents[i].refs, 3); /* ours, job/7, other */
                } else {
                    ck_assert_uint_eq(ents[i].arena, a);
                    ck_assert_uint_eq(ents[i].bytes, 10);
                    ck_assert_uint_eq(ents[i].refs, 26);
                }
                ck_assert_uint_eq(ents[i].files, 1);
            }
        } while (cursor[0] != '\0');
        ck_assert_uint_eq(got, 25);
    }
    /* Every name; then a listing resumed after a name of our choosing. */
    cursor[0] = '\0';
    OK(c, farena_list(c, "", cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 8);
    ck_assert_str_eq(cursor, ents[7].name);
    strcpy(cursor, "job/5");
    OK(c, farena_list(c, NULL, cursor, ents, 3, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(ents[0].name, "job/6");
    ck_assert_str_eq(ents[2].name, "job/8");
    strcpy(cursor, "job/9");
    OK(c, farena_list(c, NULL, cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(ents[0].name, "jobs");
    ck_assert_str_eq(ents[1].name, "other");
    ck_assert_str_eq(cursor, "");

    /* Arguments. */
    cursor[0] = '\0';
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, NULL, ents, 8, &n));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, NULL, 8, &n));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, ents, 0, &n));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, ents, 8, NULL));
    FAILS(NULL, FARENA_EINVAL, farena_list(NULL, NULL, cursor, ents, 8, &n));
    memset(cursor, 'x', sizeof(cursor));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, ents, 8, &n));
    memset(longp, 'p', sizeof(longp));
    longp[256] = '\0';
    cursor[0] = '\0';
    FAILS(c, FARENA_EBADREQUEST, farena_list(c, longp, cursor, ents, 8, &n));
    /* The connection is still in step. */
    OK(c, farena_list(c, "other", cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 1);
    /* One request per page (25, 7 and 4 pages for caps 1, 4 and 7: a page
     * that ends the listing says so, no empty page follows) plus 5 more;
     * the refused arguments sent nothing. */
    ck_assert_uint_eq(method_count(c, "list", 0), 1 + 25 + 7 + 4 + 3 + 1);
    farena_close(c);
}
END_TEST

/* A reply of the wrong shape is FARENA_EPROTO, not a crash. */
START_TEST(fake_list_malformed_reply)
{
    struct farena_list_entry ents[2];
    char cursor[FARENA_CURSOR_SIZE] = "";
    struct fake f;
    farena_client *c;
    size_t n = 77;

    fake_start(&f, FAKE_HUGE_LIMIT, NULL);
    c = fake_conn(&f);
    FAILS(c, FARENA_EPROTO, farena_list(c, NULL, cursor, ents, 2, &n));
    ck_assert_uint_eq(n, 77);
    farena_close(c);
    fake_stop(&f);
}
END_TEST

/* A daemon that does not offer arena_fds (one older than direct reads):
 * the client never asks for descriptors and reads through the daemon. */
START_TEST(fake_old_daemon_daemon_path)
{
    farena_buf buf = FARENA_BUF_INIT;
    farena_loc locs[2] = {{0, 0, 5}, {0, 5, 3}};
    struct fake f;
    farena_client *c;

    fake_start(&f, FAKE_OLD, NULL);
    c = fake_conn(&f);
    ck_assert_int_eq(farena_direct(c), 0);
    OK(c, farena_open(c, 7)); /* held: direct reads would apply */
    OK(c, farena_get_into(c, 7, locs[0], &buf));
    ck_assert_str_eq((const char *)buf.data, "fffff");
    OK(c, farena_get_str_into(c, 7, locs[1], &buf));
    ck_assert_str_eq((const char *)buf.data, "ffffffff");
    farena_close(c);
    fake_stop(&f);
    ck_assert_int_eq(f.asked_fds, 0);
    farena_buf_free(&buf);
}
END_TEST

/* How many of this process's descriptors are open on /dev/null. */
static int devnull_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++) {
        char path[64], target[64];
        ssize_t len;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        len = readlink(path, target, sizeof(target) - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strcmp(target, "/dev/null") == 0;
        }
    }
    return n;
}

/* Descriptors nobody asked for (a peer attaching them to ordinary
 * replies) are closed, never kept or leaked. */
START_TEST(fake_stray_descriptors_closed)
{
    struct fake f;
    farena_client *c;
    int base = devnull_fds();

    fake_start(&f, FAKE_STRAY_FDS, NULL);
    c = fake_conn(&f);
    ck_assert_int_eq(farena_direct(c),
                     getenv("FARENA_DIRECT") == NULL || strcmp(getenv("FARENA_DIRECT"), "0") != 0);
    for (int i = 0; i < 10; i++)
        OK(c, farena_open(c, 7));
    ck_assert_int_le(devnull_fds(), base + 2); /* at most the last reply's */
    farena_close(c);
    fake_stop(&f);
    ck_assert_int_eq(devnull_fds(), base);
}
END_TEST

/* Builds the suite: one tcase per theme, each test with its own daemon. */
static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc;

    tc = tcase_create("crate");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, crate_usage);
    tcase_add_test(tc, crate_builder_any_order);
    tcase_add_test(tc, crate_arena_new_low_level);
    tcase_add_test(tc, crate_parallel_writers);
    tcase_add_test(tc, crate_graph_tree);
    tcase_add_test(tc, crate_buffer_reuse);
    tcase_add_test(tc, crate_get_str_utf8);
    tcase_add_test(tc, get_many_order_and_failure);
    tcase_add_test(tc, arena_lifecycle);
    tcase_add_test(tc, close_drops_references);
    tcase_add_test(tc, server_stat_version);
    tcase_add_test(tc, default_socket_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("sharing");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, fork_child_reads_parent_data);
    tcase_add_test(tc, use_after_fork_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("batches");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, batch_megabytes_round_trip);
    tcase_add_test(tc, batch_many_small_default_limits);
    tcase_add_test(tc, batch_many_small_small_messages);
    tcase_add_test(tc, batch_too_large_refused);
    tcase_add_test(tc, get_many_split_fails_late);
    tcase_add_test(tc, large_gets_after_the_buffer_grew);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, enomem_get_keeps_connection);
    tcase_add_test(tc, enomem_push_many_mid_pipeline);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, no_daemon);
    tcase_add_test(tc, protocol_errors_real_daemon);
    tcase_add_test(tc, push_many_file_full);
    tcase_add_test(tc, no_space_and_limits);
    tcase_add_test(tc, too_many_clients);
    tcase_add_test(tc, daemon_killed_while_pushing);
    tcase_add_test(tc, daemon_killed_while_reading);
    tcase_add_test(tc, invalid_arguments);
    tcase_add_test(tc, connect_invalid_args_null_out);
    tcase_add_test(tc, call_raw_hostile_params);
    tcase_add_test(tc, error_tables);
    suite_add_tcase(s, tc);

    tc = tcase_create("fake_peer");
    tcase_add_test(tc, fake_every_error_code);
    tcase_add_test(tc, fake_timeout);
    tcase_add_test(tc, fake_malformed_replies);
    tcase_add_test(tc, fake_connect_refusals);
    tcase_add_test(tc, fake_batch_split_numbering);
    tcase_add_test(tc, fake_batch_split_numbering_old_daemon);
    tcase_add_test(tc, fake_huge_max_message_payload_refused);
    tcase_add_test(tc, fake_old_daemon_daemon_path);
    tcase_add_test(tc, fake_stray_descriptors_closed);
    suite_add_tcase(s, tc);

    tc = tcase_create("list");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, list_pages_through_names);
    tcase_add_test(tc, fake_list_malformed_reply);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite inside one harness run directory. */
int main(void)
{
    return th_run_suite(client_suite());
}
