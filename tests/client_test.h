/* Helpers shared by the files of the check_client suite (check_client*.c)
 * and by check_direct.c: this test's daemon, connecting to it or to a fake
 * peer, and calls that must succeed or fail. They assert with Check, so
 * they run inside a test only. Each area file of check_client adds its
 * test cases to the suite (check_client.c). */
#ifndef FARENA_TESTS_CLIENT_TEST_H
#define FARENA_TESTS_CLIENT_TEST_H

#include <check.h>
#include <stdint.h>

#include "farena.h"
#include "fake_peer.h"
#include "harness.h"

/* The daemon of the running test (each test runs in its own process). */
extern struct th_daemon dmn;

/* A NULL-terminated argument list literal. */
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

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

/* The name of a code, for messages. */
const char *ename(int rc);

/* Starts this test's daemon with extra arguments (NULL-terminated, may be
 * NULL). The free-space floor is off so a nearly full disk cannot fail
 * tests that are not about it. */
void start(const char *const *extra);

/* Stops this test's daemon and fails the test unless it exited 0 (in the
 * sanitizer build: no leak either); safe when none ran or the test reaped
 * it. The tcases' checked teardown. */
void stop(void);

/* Reaps this test's daemon after the test killed it with SIGKILL on
 * purpose (fails unless SIGKILL ended it) and removes its directory. */
void reap_killed(void);

/* Whether this run reads directly: not when FARENA_DIRECT=0 (CTest runs
 * the client suites both ways). */
int direct_mode(void);

/* Connects to this test's daemon with a 10 s bound on every call, direct
 * reads as direct says (1 on, 0 off; FARENA_DIRECT=0 turns them off too)
 * and a descriptor budget (0: the default); checks that direct reads are
 * on exactly when both allow them. */
farena_client *conn_opts(int direct, unsigned max_fds);

/* conn_opts(1, 0): the defaults. */
farena_client *conn(void);

/* conn_opts(0, 0): direct reads off, for tests whose subject is the daemon
 * path itself (request counts, batching, a daemon dying mid-read), which a
 * direct read would bypass. */
farena_client *conn_daemon_path(void);

/* Pushes a C string and returns its location. */
farena_loc push_str(farena_client *c, farena_handle w, const char *s);

/* Checks that the payload at loc is exactly the string want. */
void expect_payload(farena_client *c, farena_handle arena, farena_loc loc, const char *want);

/* A counter from the daemon's stat, by method name (requests or errors). */
uint64_t method_count(farena_client *c, const char *method, int errors);

/* Connects to a fake peer or fails the test. */
farena_client *fake_conn(struct fake *f);

/* The area files' test cases, in the suite's order. */
void client_crate_cases(Suite *s);   /* check_client_crate.c */
void client_sharing_cases(Suite *s); /* check_client_sharing.c */
void client_batch_cases(Suite *s);   /* check_client_batches.c */
void client_memory_cases(Suite *s);  /* check_client_memory.c */
void client_failure_cases(Suite *s); /* check_client_failures.c */
void client_fake_cases(Suite *s);    /* check_client_fake.c */
void client_list_cases(Suite *s);    /* check_client_list.c */

#endif
