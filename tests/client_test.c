/* Helpers shared by the files of the check_client suite; see
 * client_test.h. */
#include "client_test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "th_check.h"

/* The daemon of the running test (each test runs in its own process). */
struct th_daemon dmn;

/* The name of a code, for messages. */
const char *ename(int rc)
{
    const char *n = farena_errname(rc);

    return n != NULL ? n : "(not a farena code)";
}

/* Starts this test's daemon with extra arguments (NULL-terminated, may be
 * NULL). The free-space floor is off so a nearly full disk cannot fail
 * tests that are not about it. */
void start(const char *const *extra)
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

/* Stops this test's daemon and fails the test unless it exited 0 (in the
 * sanitizer build: no leak either), its log printed; safe when none ran or
 * the test reaped it (reap_killed). The tcases' checked teardown. */
void stop(void)
{
    if (dmn.dir[0] != '\0')
        th_must_stop(&dmn);
    memset(&dmn, 0, sizeof(dmn));
}

/* Reaps this test's daemon, which the test killed with SIGKILL on purpose:
 * fails unless SIGKILL ended it, then removes its directory, leaving the
 * teardown nothing to check. */
void reap_killed(void)
{
    ck_assert_int_eq(th_daemon_stop(&dmn), 128 + SIGKILL);
    th_daemon_cleanup(&dmn);
    memset(&dmn, 0, sizeof(dmn));
}

/* Whether this run reads directly (CTest runs the client suites both
 * ways: FARENA_DIRECT=0 turns direct reads off). */
int direct_mode(void)
{
    const char *e = getenv("FARENA_DIRECT");

    return !(e != NULL && strcmp(e, "0") == 0);
}

/* Connects with options: direct (1 on, 0 off) and a descriptor budget. */
farena_client *conn_opts(int direct, unsigned max_fds)
{
    struct farena_connect_options o = FARENA_CONNECT_OPTIONS_INIT;
    farena_client *c = NULL;
    char why[320];
    int rc;

    o.timeout_ms = 10000;
    o.direct = direct;
    o.max_fds = max_fds;
    rc = farena_connect_opts(dmn.sock, &o, &c, why, sizeof(why));
    ck_assert_msg(rc == 0, "connect: %s: %s", ename(rc), why);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(farena_direct(c), direct && direct_mode());
    return c;
}

/* Connects with the defaults. */
farena_client *conn(void)
{
    return conn_opts(1, 0);
}

/* Connects with direct reads off. */
farena_client *conn_daemon_path(void)
{
    return conn_opts(0, 0);
}

/* Pushes a C string and returns its location. */
farena_loc push_str(farena_client *c, farena_handle w, const char *s)
{
    farena_loc loc;

    OK(c, farena_push(c, w, s, strlen(s), &loc));
    ck_assert_uint_eq(loc.len, strlen(s));
    return loc;
}

/* Checks that the payload at loc is exactly the string want. */
void expect_payload(farena_client *c, farena_handle arena, farena_loc loc, const char *want)
{
    farena_buf buf = FARENA_BUF_INIT;

    OK(c, farena_get_into(c, arena, loc, &buf));
    ck_assert_uint_eq(buf.len, strlen(want));
    ck_assert_msg(memcmp(buf.data, want, buf.len) == 0, "payload differs");
    ck_assert_int_eq(buf.data[buf.len], 0);
    farena_buf_free(&buf);
}

/* A counter from the daemon's stat, by method name (requests or errors). */
uint64_t method_count(farena_client *c, const char *method, int errors)
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

/* Connects to a fake peer or fails the test. */
farena_client *fake_conn(struct fake *f)
{
    farena_client *c = NULL;
    char why[320];
    int rc = farena_connect_ex(f->path, 10000, &c, why, sizeof(why));

    ck_assert_msg(rc == 0, "connect to fake: %s: %s", ename(rc), why);
    return c;
}
