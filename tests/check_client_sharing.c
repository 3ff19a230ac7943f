/* check_client: sharing between processes (a forked child reads the
 * parent's data through its own connection; the inherited one refuses). */
#include <check.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "th_check.h"

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

/* Adds this file's test cases to s. */
void client_sharing_cases(Suite *s)
{
    TCase *tc;

    tc = tcase_create("sharing");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, fork_child_reads_parent_data);
    tcase_add_test(tc, use_after_fork_refused);
    suite_add_tcase(s, tc);
}
