/* check_client: failure paths against the real daemon (no daemon, protocol
 * errors, full files and scratch, client limits, a daemon killed mid-call,
 * invalid arguments, the error tables). */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "proto_codec.h"
#include "th_check.h"

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
    reap_killed();
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

/* Adds this file's test cases to s. */
void client_failure_cases(Suite *s)
{
    TCase *tc;

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
}
