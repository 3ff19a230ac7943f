/* Check-flavoured helpers over the harness for the daemon suites: calls that
 * must succeed, calls that must fail with a given code. Header-only (static
 * inline) so each suite compiles them with its own Check. */
#ifndef FARENA_TESTS_TH_CHECK_H
#define FARENA_TESTS_TH_CHECK_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Starts a daemon with args (NULL-terminated, may be NULL) or fails the
 * test. */
static inline void th_must_start(struct th_daemon *d, const char *const *args)
{
    ck_assert_msg(th_daemon_start(d, args) == 0, "farenad did not start");
}

/* Stops d and checks that it exited 0 (in the sanitizer build that also
 * means no leak); its log is printed otherwise. Keeps its directory. */
static inline void th_must_exit_clean(struct th_daemon *d)
{
    int st = th_daemon_stop(d);

    if (st != 0)
        th_daemon_dump_log(d);
    ck_assert_int_eq(st, 0);
}

/* th_must_exit_clean(), then removes the daemon's directory. */
static inline void th_must_stop(struct th_daemon *d)
{
    th_must_exit_clean(d);
    th_daemon_cleanup(d);
}

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

/* writer_new [idx] that must succeed; returns the writer handle. */
static inline uint64_t th_writer_new(struct th_client *c, unsigned idx)
{
    struct th_reply r;

    TH_OK_CALL(c, &r, "writer_new", "u", (uint64_t)idx);
    return th_res_u64(&r);
}

/* push [w, bin] that must succeed; returns the location. */
static inline struct proto_loc th_push(struct th_client *c, uint64_t w, const void *p, size_t n)
{
    struct th_reply r;

    TH_OK_CALL(c, &r, "push", "ub", w, p, n);
    return th_res_loc(&r);
}

/* A one-handle call (finish, into_arena, writer_len...) that must succeed
 * with an unsigned integer result. */
static inline uint64_t th_call_u64(struct th_client *c, const char *method, uint64_t h)
{
    struct th_reply r;

    TH_OK_CALL(c, &r, method, "u", h);
    return th_res_u64(&r);
}

/* Checks stat's object counters on c: writers, files and bytes_on_disk. */
static inline void th_expect_objects(struct th_client *c, uint64_t writers, uint64_t files,
                                     uint64_t bytes_on_disk)
{
    struct th_reply r;

    TH_OK_CALL(c, &r, "stat", "");
    ck_assert_uint_eq(th_map_u64(r.result, "writers"), writers);
    ck_assert_uint_eq(th_map_u64(r.result, "files"), files);
    ck_assert_uint_eq(th_map_u64(r.result, "bytes_on_disk"), bytes_on_disk);
}

/* Runs suite s (every test in its own process) inside one run directory
 * for all daemons (th_run_begin). Returns main()'s exit status:
 * EXIT_SUCCESS when every test passed. */
static inline int th_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    if (th_run_begin() < 0) {
        srunner_free(sr);
        return EXIT_FAILURE;
    }
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    th_run_end();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
