/* check_client: running out of memory in the client (address-space limit)
 * keeps the connection usable or breaks it cleanly. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "th_check.h"

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

/* Adds this file's test cases to s. */
void client_memory_cases(Suite *s)
{
    TCase *tc;

    tc = tcase_create("memory");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, enomem_get_keeps_connection);
    tcase_add_test(tc, enomem_push_many_mid_pipeline);
    suite_add_tcase(s, tc);
}
