/* check_client: a scripted fake peer (fake_peer.c), for the failures farenad
 * cannot be made to show. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "proto_codec.h"
#include "th_check.h"

/* ---- a scripted fake peer, for failures farenad cannot be made to show ---- */

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
 * text (an old daemon). The client's message goes to msg (cap bytes). */
static void batch_split_numbering(int item_detail, char *msg, size_t cap)
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
    snprintf(msg, cap, "%s", farena_errmsg(c));
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
    char msg[256];

    batch_split_numbering(1, msg, sizeof(msg));
    ck_assert_str_eq(msg, "item 18: fake file_full");
}
END_TEST

/* The same against an old daemon, which sends no item field: the number is
 * parsed from the message's leading "item 2:". */
START_TEST(fake_batch_split_numbering_old_daemon)
{
    char msg[256];

    batch_split_numbering(0, msg, sizeof(msg));
    ck_assert_str_eq(msg, "item 18: fake file_full");
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

/* Adds this file's test cases to s. */
void client_fake_cases(Suite *s)
{
    TCase *tc;

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
}
