/* check_client: batches far above max_message, split into pipelined
 * requests both ways. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "proto_codec.h"
#include "th_check.h"

/* ---- batches far above max_message (daemon with --max-message 256K) ---- */

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

/* Several MiB of large items both ways, split into many requests. */
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

/* Adds this file's test cases to s. */
void client_batch_cases(Suite *s)
{
    TCase *tc;

    tc = tcase_create("batches");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, batch_megabytes_round_trip);
    tcase_add_test(tc, batch_many_small_default_limits);
    tcase_add_test(tc, batch_many_small_small_messages);
    tcase_add_test(tc, batch_too_large_refused);
    tcase_add_test(tc, get_many_split_fails_late);
    tcase_add_test(tc, large_gets_after_the_buffer_grew);
    suite_add_tcase(s, tc);
}
