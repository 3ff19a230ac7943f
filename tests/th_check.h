/* Check-flavoured helpers over the harness for the daemon suites: calls that
 * must succeed, calls that must fail with a given code. Header-only (static
 * inline) so each suite compiles them with its own Check. */
#ifndef FARENA_TESTS_TH_CHECK_H
#define FARENA_TESTS_TH_CHECK_H

#include <check.h>
#include <string.h>

#include "harness.h"

/* Starts a daemon with args or fails the test. */
#define TH_START(d, ...)                                                                           \
    do {                                                                                           \
        const char *const th_args_[] = {__VA_ARGS__, NULL};                                        \
        ck_assert_msg(th_daemon_start((d), th_args_) == 0, "farenad did not start");               \
    } while (0)

/* Connects to d or fails the test. */
static inline struct th_client *th_must_connect(const struct th_daemon *d)
{
    struct th_client *c = th_connect(d->sock, TH_TIMEOUT_MS);

    ck_assert_msg(c != NULL, "cannot connect to %s", d->sock);
    return c;
}

/* A call that must succeed: returns its result object. */
#define TH_OK_CALL(c, r, method, ...)                                                              \
    do {                                                                                           \
        int th_rc_ = th_call((c), (r), (method), __VA_ARGS__);                                     \
        ck_assert_msg(th_rc_ == TH_OK, "%s: transport error %d", (method), th_rc_);                \
        ck_assert_msg((r)->err == PROTO_OK, "%s failed: %s: %s", (method), (r)->code, (r)->msg);   \
    } while (0)

/* A call that must fail with code (a wire name such as "no_such_handle"). */
#define TH_ERR_CALL(c, r, code_, method, ...)                                                      \
    do {                                                                                           \
        int th_rc_ = th_call((c), (r), (method), __VA_ARGS__);                                     \
        ck_assert_msg(th_rc_ == TH_OK, "%s: transport error %d", (method), th_rc_);                \
        ck_assert_msg(strcmp((r)->code, (code_)) == 0, "%s: expected %s, got \"%s\" (%s)",         \
                      (method), (code_), (r)->code, (r)->msg);                                     \
    } while (0)

/* The result as an unsigned integer (fails the test if it is not one). */
static inline uint64_t th_res_u64(const struct th_reply *r)
{
    ck_assert_msg(r->result != NULL && r->result->type == MSGPACK_OBJECT_POSITIVE_INTEGER,
                  "result is not an unsigned integer");
    return r->result->via.u64;
}

/* Checks that a result is a bin (or str) holding exactly len bytes of p. */
static inline void th_assert_bytes(const msgpack_object *o, const void *p, size_t len)
{
    ck_assert_msg(o != NULL && o->type == MSGPACK_OBJECT_BIN, "result is not a bin");
    ck_assert_uint_eq(o->via.bin.size, len);
    ck_assert_msg(len == 0 || memcmp(o->via.bin.ptr, p, len) == 0, "payload bytes differ");
}

/* The location a push returned. */
static inline struct proto_loc th_res_loc(const struct th_reply *r)
{
    struct proto_loc loc;
    const char *why = NULL;

    ck_assert_msg(proto_read_loc(r->result, &loc, &why) == 0, "not a location: %s", why);
    return loc;
}

#endif
