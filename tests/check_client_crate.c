/* check_client: the crate README's scenarios through libfarena (writers,
 * builders, parallel writers, buffers, UTF-8, arena lifetimes, server info
 * and the default socket path). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "th_check.h"

/* ---- the crate README's scenarios ---- */

/* Writes text as the one payload of a new file of the given index and
 * finishes it: returns the finished file's handle, its payload's location
 * in *loc, and the writer's handle in *writer when not NULL. */
static farena_handle one_file(farena_client *c, uint16_t index, const char *text, farena_loc *loc,
                              farena_handle *writer)
{
    farena_handle w, f;

    OK(c, farena_writer_new(c, index, &w));
    *loc = push_str(c, w, text);
    OK(c, farena_finish(c, w, &f));
    if (writer != NULL)
        *writer = w;
    return f;
}

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
    farena_handle w0, f0, f1, arena, again;
    farena_loc loc0, loc1;
    struct farena_arena_info info;

    start(NULL);
    c = conn();
    f0 = one_file(c, 0, "data0", &loc0, &w0);
    f1 = one_file(c, 1, "data1", &loc1, NULL);
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
    farena_handle f1, f2, arena, bad;
    farena_loc loc1, loc2;

    start(NULL);
    c = conn();
    f1 = one_file(c, 0, "data1", &loc1, NULL);
    f2 = one_file(c, 1, "data2", &loc2, NULL);

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
    farena_handle w, arena, big, found, files[4];
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
    files[1] = one_file(c, 1, "second file", &l1, NULL);
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

/* Adds this file's test cases to s. */
void client_crate_cases(Suite *s)
{
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
}
