/* farenad end to end: every method of protocol 1 with its results and every
 * error it can return, the farena crate's scenarios, sharing between
 * connections, and concurrent readers. Each test runs its own daemon and
 * ends by checking that the daemon shuts down cleanly (exit status 0, which
 * in the sanitizer build also means no leak). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "th_check.h"

static struct th_daemon D;

/* push of a C string. */
static struct proto_loc push_s(struct th_client *c, uint64_t w, const char *s)
{
    return th_push(c, w, s, strlen(s));
}

/* Writes the C string s as a new file idx and finishes it; returns the file
 * handle, and s's location in *loc unless loc is NULL. */
static uint64_t file_of_s(struct th_client *c, unsigned idx, const char *s, struct proto_loc *loc)
{
    uint64_t w = th_writer_new(c, idx);
    struct proto_loc l = push_s(c, w, s);

    if (loc != NULL)
        *loc = l;
    return th_call_u64(c, "finish", w);
}

/* Writes the C string s as the only file of a new arena, which c holds;
 * returns the arena handle, and s's location in *loc unless loc is NULL. */
static uint64_t arena_of_s(struct th_client *c, const char *s, struct proto_loc *loc)
{
    uint64_t w = th_writer_new(c, 0);
    struct proto_loc l = push_s(c, w, s);

    if (loc != NULL)
        *loc = l;
    return th_call_u64(c, "into_arena", w);
}

/* build or arena_new that must succeed. */
static uint64_t build(struct th_client *c, const char *method, const uint64_t *files, size_t n)
{
    struct th_reply r;

    TH_OK_CALL(c, &r, method, "U", files, n);
    return th_res_u64(&r);
}

/* get that must return exactly the n bytes at p. */
static void expect_get(struct th_client *c, uint64_t arena, struct proto_loc loc, const void *p,
                       size_t n)
{
    struct th_reply r;

    TH_OK_CALL(c, &r, "get", "uL", arena, loc);
    th_assert_bytes(r.result, p, n);
}

/* get that must return the C string s. */
static void expect_get_s(struct th_client *c, uint64_t arena, struct proto_loc loc, const char *s)
{
    expect_get(c, arena, loc, s, strlen(s));
}

/* A location literal. */
static struct proto_loc loc_at(unsigned i, uint32_t off, uint32_t len)
{
    struct proto_loc l = {(uint16_t)i, off, len};
    return l;
}

/* Sends push_many [w, [n empty bins]] under msgid, packed by hand (too many
 * items for th_queue's argument list), and reads its reply into *r. */
static void raw_push_many_empty(struct th_client *c, uint32_t msgid, uint64_t w, uint32_t n,
                                struct th_reply *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_pack_request_head(&pk, msgid, PROTO_M_PUSH_MANY, 2);
    msgpack_pack_uint64(&pk, w);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_bin(&pk, 0);
    ck_assert_int_eq(th_send_raw(c, sb.data, sb.size), TH_OK);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_int_eq(th_recv(c, r), TH_OK);
    ck_assert_uint_eq(r->msgid, msgid);
}

/* Checks that the message of the last error contains text. */
static void expect_msg(const struct th_reply *r, const char *text)
{
    ck_assert_msg(strstr(r->msg, text) != NULL, "message \"%s\" lacks \"%s\"", r->msg, text);
}

/* ---- hello, stat, dispatch ---- */

START_TEST(hello_reports_server_limits_and_methods)
{
    static const char *const keys[] = {"max_message",  "max_batch", "max_depth",   "max_objects",
                                       "max_name",     "file_max",  "max_clients", "max_writers",
                                       "max_handles",  "max_bytes", "min_free",    "io_depth",
                                       "reply_memory", "max_fds"};
    static const char *const methods[] = {
        "hello",   "writer_new", "push",   "push_many", "writer_len", "finish",      "into_arena",
        "build",   "arena_new",  "get",    "get_many",  "arena_info", "arena_files", "open",
        "release", "name",       "lookup", "unname",    "stat",       "list",        "arena_fds"};
    struct th_client *c;
    struct th_reply r;
    const msgpack_object *lim, *ms, *v;

    th_must_start(&D, (const char *const[]){"--max-clients", "77", "--max-bytes", "5M", NULL});
    c = th_must_connect(&D);
    TH_OK_CALL(c, &r, "hello", "");
    v = th_map_get(r.result, "server");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->type, MSGPACK_OBJECT_STR);
    ck_assert_int_eq(v->via.str.size, 7);
    ck_assert_mem_eq(v->via.str.ptr, "farenad", 7);
    v = th_map_get(r.result, "version");
    ck_assert_msg(v != NULL && v->type == MSGPACK_OBJECT_STR && v->via.str.size == 5 &&
                      memcmp(v->via.str.ptr, "0.1.0", 5) == 0,
                  "version is not 0.1.0");
    ck_assert_uint_eq(th_map_u64(r.result, "protocol"), 1);
    lim = th_map_get(r.result, "limits");
    ck_assert_ptr_nonnull(lim);
    ck_assert_uint_eq(lim->via.map.size, sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_msg(th_map_u64(lim, keys[i]) != UINT64_MAX, "limit %s missing", keys[i]);
    ck_assert_uint_eq(th_map_u64(lim, "max_message"), 64u << 20);
    ck_assert_uint_eq(th_map_u64(lim, "max_batch"), 65536);
    ck_assert_uint_eq(th_map_u64(lim, "max_depth"), 16);
    ck_assert_uint_eq(th_map_u64(lim, "max_objects"), 1u << 20);
    ck_assert_uint_eq(th_map_u64(lim, "max_name"), 255);
    ck_assert_uint_eq(th_map_u64(lim, "file_max"), 4294967295u);
    ck_assert_uint_eq(th_map_u64(lim, "max_clients"), 77);
    ck_assert_uint_eq(th_map_u64(lim, "max_writers"), 1024);
    ck_assert_uint_eq(th_map_u64(lim, "max_handles"), 65536);
    ck_assert_uint_eq(th_map_u64(lim, "max_bytes"), 5u << 20);
    ck_assert_uint_eq(th_map_u64(lim, "min_free"), 64u << 20);
    ms = th_map_get(r.result, "methods");
    ck_assert_msg(ms != NULL && ms->type == MSGPACK_OBJECT_ARRAY, "methods missing");
    ck_assert_uint_eq(ms->via.array.size, sizeof(methods) / sizeof(methods[0]));
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        const msgpack_object *m = &ms->via.array.ptr[i];
        ck_assert_msg(m->type == MSGPACK_OBJECT_STR && m->via.str.size == strlen(methods[i]) &&
                          memcmp(m->via.str.ptr, methods[i], m->via.str.size) == 0,
                      "method %zu is not %s", i, methods[i]);
    }
    /* With a client_info map; anything else is a bad request. */
    TH_OK_CALL(c, &r, "hello", "m");
    TH_ERR_CALL(c, &r, "bad_request", "hello", "u", (uint64_t)1);
    expect_msg(&r, "hello: param 1 (client_info)");
    TH_ERR_CALL(c, &r, "bad_request", "hello", "mm");
    expect_msg(&r, "got 2 params");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Unknown methods (names are case-sensitive) get unknown_method; the connection lives. */
START_TEST(unknown_method_keeps_the_connection)
{
    struct th_client *c;
    struct th_reply r;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    TH_ERR_CALL(c, &r, "unknown_method", "frobnicate", "u", (uint64_t)1);
    expect_msg(&r, "frobnicate");
    ck_assert_int_eq(r.item, -1); /* only batch errors name an item */
    TH_ERR_CALL(c, &r, "unknown_method", "Hello", "");
    TH_OK_CALL(c, &r, "hello", "");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Wrong params, method or length with a readable msgid get bad_request. */
START_TEST(bad_envelopes_inside_valid_msgpack)
{
    /* [0, 7, "hello", 5]: params not an array -> bad_request, msgid 7. */
    static const unsigned char params_not_array[] = {0x94, 0x00, 0x07, 0xa5, 'h',
                                                     'e',  'l',  'l',  'o',  0x05};
    /* [0, 8, 3, []]: method not a str. */
    static const unsigned char method_not_str[] = {0x94, 0x00, 0x08, 0x03, 0x90};
    /* [0, 9, "stat", [], 1]: five elements. */
    static const unsigned char five[] = {0x95, 0x00, 0x09, 0xa4, 's', 't', 'a', 't', 0x90, 0x01};
    /* [2, "push", 1]: a malformed notification: counted, never answered. */
    static const unsigned char bad_notify[] = {0x93, 0x02, 0xa4, 'p', 'u', 's', 'h', 0x01};
    struct th_client *c;
    struct th_reply r;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    ck_assert_int_eq(th_send_raw(c, params_not_array, sizeof(params_not_array)), TH_OK);
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, 7);
    ck_assert_str_eq(r.code, "bad_request");
    ck_assert_int_eq(th_send_raw(c, method_not_str, sizeof(method_not_str)), TH_OK);
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, 8);
    ck_assert_str_eq(r.code, "bad_request");
    ck_assert_int_eq(th_send_raw(c, five, sizeof(five)), TH_OK);
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, 9);
    ck_assert_str_eq(r.code, "bad_request");
    ck_assert_int_eq(th_send_raw(c, bad_notify, sizeof(bad_notify)), TH_OK);
    /* Still usable, and the notification was counted against push. */
    TH_OK_CALL(c, &r, "stat", "");
    ck_assert_uint_eq(th_map_u64(th_map_get(r.result, "errors"), "push"), 1);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Responses, maps, scalars and requests without msgid close only their connection. */
START_TEST(unanswerable_messages_close_the_connection)
{
    static const unsigned char response[] = {0x94, 0x01, 0x01, 0xc0, 0xc0}; /* [1,1,nil,nil] */
    static const unsigned char a_map[] = {0x81, 0xa1, 'a', 0x01};           /* {"a": 1} */
    static const unsigned char an_int[] = {0x2a};                           /* 42 */
    static const unsigned char no_msgid[] = {0x94, 0x00, 0xa1, 'x', 0xa1, 'y', 0x90};
    const unsigned char *msgs[] = {response, a_map, an_int, no_msgid};
    size_t lens[] = {sizeof(response), sizeof(a_map), sizeof(an_int), sizeof(no_msgid)};
    struct th_client *other, *c;
    struct th_reply r;

    th_must_start(&D, NULL);
    other = th_must_connect(&D);
    for (size_t i = 0; i < 4; i++) {
        c = th_must_connect(&D);
        ck_assert_int_eq(th_send_raw(c, msgs[i], lens[i]), TH_OK);
        ck_assert_msg(th_wait_eof(c, &r) == TH_EOF, "message %zu did not close", i);
        th_close(c);
    }
    TH_OK_CALL(other, &r, "hello", "");
    th_close(other);
    th_must_stop(&D);
}
END_TEST

/* stat's keys and its per-method counters. */
START_TEST(stat_counts_requests_errors_and_objects)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;
    const msgpack_object *req, *err;
    static const char *const keys[] = {
        "pid",    "uptime_ms", "connections",   "connections_total", "writers",   "files",
        "arenas", "names",     "bytes_on_disk", "bytes_written",     "bytes_read"};

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    push_s(c, w, "12345");
    TH_ERR_CALL(c, &r, "no_such_handle", "push", "us", (uint64_t)999, "x");
    TH_OK_CALL(c, &r, "stat", "");
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_msg(th_map_u64(r.result, keys[i]) != UINT64_MAX, "stat lacks %s", keys[i]);
    ck_assert_uint_eq(th_map_u64(r.result, "pid"), (uint64_t)D.pid);
    ck_assert_uint_eq(th_map_u64(r.result, "connections"), 1);
    ck_assert_uint_eq(th_map_u64(r.result, "writers"), 1);
    ck_assert_uint_eq(th_map_u64(r.result, "bytes_written"), 5);
    req = th_map_get(r.result, "requests");
    err = th_map_get(r.result, "errors");
    ck_assert_uint_eq(req->via.map.size, PROTO_M_COUNT);
    ck_assert_uint_eq(err->via.map.size, PROTO_M_COUNT);
    ck_assert_uint_eq(th_map_u64(req, "push"), 2);
    ck_assert_uint_eq(th_map_u64(err, "push"), 1);
    ck_assert_uint_eq(th_map_u64(req, "writer_new"), 1);
    ck_assert_uint_eq(th_map_u64(req, "stat"), 1);
    ck_assert_uint_eq(th_map_u64(err, "stat"), 0);
    a = th_call_u64(c, "into_arena", w);
    expect_get_s(c, a, loc_at(0, 1, 3), "234");
    TH_OK_CALL(c, &r, "stat", "");
    ck_assert_uint_eq(th_map_u64(r.result, "arenas"), 1);
    ck_assert_uint_eq(th_map_u64(r.result, "files"), 1);
    ck_assert_uint_eq(th_map_u64(r.result, "writers"), 0);
    ck_assert_uint_eq(th_map_u64(r.result, "bytes_read"), 3);
    ck_assert_uint_ge(th_map_u64(r.result, "bytes_on_disk"), 5);
    TH_ERR_CALL(c, &r, "bad_request", "stat", "u", (uint64_t)1);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Notifications execute; their errors are counted, never answered. */
START_TEST(notifications_run_but_are_never_answered)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w;
    int64_t id;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    ck_assert_int_eq(th_queue_notify(c, "push", "us", w, "abc"), 0);
    ck_assert_int_eq(th_queue_notify(c, "push", "us", (uint64_t)999, "x"), 0); /* an error */
    ck_assert_int_eq(th_queue_notify(c, "nosuch", ""), 0);
    id = th_queue(c, "writer_len", "u", w);
    ck_assert_int_eq(th_flush(c), TH_OK);
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, (uint32_t)id); /* the first reply is this one */
    ck_assert_uint_eq(th_res_u64(&r), 3);
    TH_OK_CALL(c, &r, "stat", "");
    ck_assert_uint_eq(th_map_u64(th_map_get(r.result, "errors"), "push"), 1);
    ck_assert_uint_eq(th_map_u64(th_map_get(r.result, "requests"), "push"), 2);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* ---- writers ---- */

START_TEST(writer_new_params)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w1, w2;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w1 = th_writer_new(c, 0);
    w2 = th_writer_new(c, 65535);
    ck_assert_uint_eq(w1, 1);
    ck_assert_uint_eq(w2, 2);
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "u", (uint64_t)65536);
    expect_msg(&r, "writer_new: param 1 (file_index)");
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "i", (int64_t)-1);
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "d", 1.5);
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "s", "0");
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "n");
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "");
    expect_msg(&r, "got 0 params");
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "uu", (uint64_t)0, (uint64_t)0);
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "a", 1u, "u", (uint64_t)0);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* push returns consecutive locations; str is accepted; param errors name the param. */
START_TEST(push_and_writer_len)
{
    struct th_client *c;
    struct th_reply r;
    struct proto_loc l1, l2, l3;
    uint64_t w;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 3);
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 0);
    l1 = push_s(c, w, "hello");
    l2 = push_s(c, w, "");
    TH_OK_CALL(c, &r, "push", "uS", w, " world", (size_t)6); /* a str is accepted */
    l3 = th_res_loc(&r);
    ck_assert_uint_eq(l1.file_index, 3);
    ck_assert_uint_eq(l1.offset, 0);
    ck_assert_uint_eq(l1.len, 5);
    ck_assert_uint_eq(l2.offset, 5);
    ck_assert_uint_eq(l2.len, 0);
    ck_assert_uint_eq(l3.offset, 5);
    ck_assert_uint_eq(l3.len, 6);
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 11);
    TH_ERR_CALL(c, &r, "bad_request", "push", "db", 1.5, "x", (size_t)1);
    expect_msg(&r, "push: param 1 (writer)");
    TH_ERR_CALL(c, &r, "bad_request", "push", "ub", (uint64_t)0, "x", (size_t)1);
    expect_msg(&r, "push: param 1 (writer)");
    TH_ERR_CALL(c, &r, "bad_request", "push", "uu", w, (uint64_t)5);
    expect_msg(&r, "push: param 2 (data)");
    TH_ERR_CALL(c, &r, "bad_request", "push", "u", w);
    TH_ERR_CALL(c, &r, "bad_request", "push", "ubn", w, "x", (size_t)1);
    TH_ERR_CALL(c, &r, "no_such_handle", "push", "ub", (uint64_t)777, "x", (size_t)1);
    TH_ERR_CALL(c, &r, "no_such_handle", "writer_len", "u", (uint64_t)777);
    TH_ERR_CALL(c, &r, "bad_request", "writer_len", "d", 2.5);
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 11);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* push_many writes in order; a bad item anywhere writes nothing. */
START_TEST(push_many_in_order_and_checked_first)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;
    const msgpack_object *locs;
    struct proto_loc loc;
    const char *why;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    TH_OK_CALL(c, &r, "push_many", "ua", w, 0u);
    ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(r.result->via.array.size, 0);
    TH_OK_CALL(c, &r, "push_many", "ua", w, 3u, "b", "ab", (size_t)2, "b", "", (size_t)0, "s",
               "cde");
    locs = r.result;
    ck_assert_uint_eq(locs->via.array.size, 3);
    ck_assert_int_eq(proto_read_loc(&locs->via.array.ptr[2], &loc, &why), 0);
    ck_assert_uint_eq(loc.offset, 2);
    ck_assert_uint_eq(loc.len, 3);
    /* A bad item anywhere: nothing is written. */
    TH_ERR_CALL(c, &r, "bad_request", "push_many", "ua", w, 2u, "s", "zz", "u", (uint64_t)1);
    expect_msg(&r, "item 1");
    ck_assert_int_eq(r.item, 1);
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 5);
    TH_ERR_CALL(c, &r, "bad_request", "push_many", "us", w, "notalist");
    TH_ERR_CALL(c, &r, "no_such_handle", "push_many", "ua", (uint64_t)99, 1u, "s", "x");
    a = th_call_u64(c, "into_arena", w);
    expect_get_s(c, a, loc_at(0, 0, 5), "abcde");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* push_many with max_batch + 1 items is too_large. */
START_TEST(push_many_over_max_batch_is_too_large)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    raw_push_many_empty(c, 4242, w, 65537, &r);
    ck_assert_str_eq(r.code, "too_large");
    expect_msg(&r, "max_batch");
    TH_OK_CALL(c, &r, "hello", "");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* file_full keeps what was written before it, push_many reports the item. */
START_TEST(file_full_keeps_earlier_items)
{
    char big[700];
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;

    memset(big, 'f', sizeof(big));
    th_must_start(&D, (const char *const[]){"--file-max", "1K", NULL});
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    th_push(c, w, big, 600);
    TH_ERR_CALL(c, &r, "file_full", "push", "ub", w, big, (size_t)600);
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 600);
    TH_ERR_CALL(c, &r, "file_full", "push_many", "ua", w, 3u, "b", big, (size_t)200, "b", big,
                (size_t)200, "b", big, (size_t)200);
    expect_msg(&r, "item 2");
    ck_assert_int_eq(r.item, 2);
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 1000);
    th_push(c, w, big, 24); /* exactly 1024 */
    a = th_call_u64(c, "into_arena", w);
    expect_get(c, a, loc_at(0, 1000, 24), big, 24);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* finish returns a new handle and the writer handle ends. */
START_TEST(finish_gives_a_new_handle_and_ends_the_writer)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w, f;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    push_s(c, w, "x");
    f = th_call_u64(c, "finish", w);
    ck_assert_uint_ne(f, w);
    TH_ERR_CALL(c, &r, "no_such_handle", "push", "us", w, "y");
    TH_ERR_CALL(c, &r, "no_such_handle", "finish", "u", w);
    TH_ERR_CALL(c, &r, "no_such_handle", "finish", "u", f); /* a file is not a writer */
    TH_ERR_CALL(c, &r, "bad_request", "finish", "");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* into_arena on index 1 is missing_index and leaves the writer usable. */
START_TEST(into_arena_needs_index_zero)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w1, w0, a;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w1 = th_writer_new(c, 1);
    push_s(c, w1, "one");
    TH_ERR_CALL(c, &r, "missing_index", "into_arena", "u", w1);
    push_s(c, w1, "more"); /* the writer is untouched and usable */
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w1), 7);
    w0 = th_writer_new(c, 0);
    push_s(c, w0, "zero");
    a = th_call_u64(c, "into_arena", w0);
    expect_get_s(c, a, loc_at(0, 0, 4), "zero");
    TH_ERR_CALL(c, &r, "no_such_handle", "into_arena", "u", w0);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* ---- building ---- */

START_TEST(build_errors)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t f0, f0b, f2, w;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    f0 = file_of_s(c, 0, "a", NULL);
    w = th_writer_new(c, 0);
    f0b = th_call_u64(c, "finish", w);
    w = th_writer_new(c, 2);
    f2 = th_call_u64(c, "finish", w);
    TH_ERR_CALL(c, &r, "empty", "build", "a", 0u);
    TH_ERR_CALL(c, &r, "empty", "arena_new", "a", 0u);
    TH_ERR_CALL(c, &r, "duplicate_index", "build", "U", (uint64_t[]){f0, f0b}, (size_t)2);
    TH_ERR_CALL(c, &r, "missing_index", "build", "U", (uint64_t[]){f0, f2}, (size_t)2);
    TH_ERR_CALL(c, &r, "no_such_handle", "build", "U", (uint64_t[]){f0, 12345}, (size_t)2);
    expect_msg(&r, "item 1");
    ck_assert_int_eq(r.item, 1);
    TH_ERR_CALL(c, &r, "no_such_handle", "build", "U", (uint64_t[]){w}, (size_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "build", "a", 1u, "d", 1.5);
    expect_msg(&r, "build: param 1 (files): item 0");
    TH_ERR_CALL(c, &r, "bad_request", "build", "u", f0);
    TH_ERR_CALL(c, &r, "bad_request", "build", "");
    TH_ERR_CALL(c, &r, "index_mismatch", "arena_new", "U", (uint64_t[]){f2}, (size_t)1);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* ---- reading ---- */

START_TEST(get_bounds_and_kinds)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t a, w2;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    a = arena_of_s(c, "0123456789", NULL);
    expect_get_s(c, a, loc_at(0, 0, 10), "0123456789");
    expect_get_s(c, a, loc_at(0, 10, 0), ""); /* empty at the very end */
    TH_ERR_CALL(c, &r, "out_of_bounds", "get", "uL", a, loc_at(0, 11, 0));
    TH_ERR_CALL(c, &r, "out_of_bounds", "get", "uL", a, loc_at(0, 5, 6));
    TH_ERR_CALL(c, &r, "out_of_bounds", "get", "uL", a, loc_at(1, 0, 1));
    TH_ERR_CALL(c, &r, "out_of_bounds", "get", "uL", a, loc_at(0, 4294967295u, 4294967295u));
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 2u, "u", (uint64_t)0, "u", (uint64_t)0);
    expect_msg(&r, "get: param 2 (location)");
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 3u, "u", (uint64_t)65536, "u", (uint64_t)0,
                "u", (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 3u, "u", (uint64_t)0, "d", 0.5, "u",
                (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 3u, "u", (uint64_t)0, "u", (uint64_t)0, "i",
                (int64_t)-1);
    w2 = th_writer_new(c, 0);
    TH_ERR_CALL(c, &r, "no_such_handle", "get", "uL", w2, loc_at(0, 0, 0));
    TH_ERR_CALL(c, &r, "no_such_handle", "get", "uL", (uint64_t)4242, loc_at(0, 0, 0));
    TH_ERR_CALL(c, &r, "no_such_handle", "arena_info", "u", w2);
    TH_ERR_CALL(c, &r, "no_such_handle", "arena_files", "u", (uint64_t)4242);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* get_many mixes small and large payloads; any bad location fails it whole. */
START_TEST(get_many_mixed_sizes_and_errors)
{
    enum { BIG = 600 << 10 };
    unsigned char *big = malloc(BIG), *small = malloc(1000);
    struct th_client *c;
    struct th_reply r;
    struct proto_loc lb, ls;
    const msgpack_object *items;
    uint64_t w, a;

    th_pattern(big, BIG, 1);
    th_pattern(small, 1000, 2);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    ls = th_push(c, w, small, 1000);
    lb = th_push(c, w, big, BIG);
    a = th_call_u64(c, "into_arena", w);
    TH_OK_CALL(c, &r, "get_many", "ua", a, 5u, "L", lb, "L", ls, "L", loc_at(0, 0, 0), "L",
               loc_at(0, 1000, 300000), "L", lb);
    items = r.result;
    ck_assert_uint_eq(items->via.array.size, 5);
    th_assert_bytes(&items->via.array.ptr[0], big, BIG);
    th_assert_bytes(&items->via.array.ptr[1], small, 1000);
    th_assert_bytes(&items->via.array.ptr[2], small, 0);
    th_assert_bytes(&items->via.array.ptr[3], big, 300000);
    th_assert_bytes(&items->via.array.ptr[4], big, BIG);
    /* A single large get. */
    expect_get(c, a, lb, big, BIG);
    TH_OK_CALL(c, &r, "get_many", "ua", a, 0u);
    ck_assert_uint_eq(r.result->via.array.size, 0);
    TH_ERR_CALL(c, &r, "out_of_bounds", "get_many", "ua", a, 3u, "L", ls, "L", ls, "L",
                loc_at(0, 0, BIG + 1001));
    expect_msg(&r, "item 2");
    ck_assert_int_eq(r.item, 2);
    TH_ERR_CALL(c, &r, "bad_request", "get_many", "ua", a, 2u, "L", ls, "u", (uint64_t)3);
    expect_msg(&r, "get_many: param 2 (locations): item 1");
    TH_ERR_CALL(c, &r, "no_such_handle", "get_many", "ua", w, 1u, "L", ls);
    /* bytes_read counts every payload byte served. */
    ck_assert_uint_eq(th_stat_u64(c, "bytes_read"), 2u * BIG + 1000 + 300000 + BIG);
    th_close(c);
    free(big);
    free(small);
    th_must_stop(&D);
}
END_TEST

/* Pipelined gets of sizes from 0 to 300000 bytes arrive whole and in
 * request order, within one batch and across batches (64 requests, then
 * 13): replies complete in any order inside the engine but leave in order. */
START_TEST(pipelined_gets_of_mixed_sizes)
{
    static const uint32_t sizes[] = {1,     100,   16383, 16384,  32767, 32768,
                                     32769, 65536, 0,     300000, 7};
    enum { FILE_BYTES = 1 << 20, ROUNDS = 7 };
    const int n = (int)(sizeof(sizes) / sizeof(sizes[0]));
    unsigned char *data = malloc(FILE_BYTES);
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;
    int64_t first = -1;

    th_pattern(data, FILE_BYTES, 21);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    th_push(c, w, data, FILE_BYTES);
    a = th_call_u64(c, "into_arena", w);
    for (int k = 0; k < ROUNDS * n; k++) {
        uint32_t len = sizes[(k * 3) % n], off = (uint32_t)(k * 4099) % (FILE_BYTES - len);
        int64_t id = th_queue(c, "get", "uL", a, loc_at(0, off, len));
        if (first < 0)
            first = id;
    }
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (int k = 0; k < ROUNDS * n; k++) {
        uint32_t len = sizes[(k * 3) % n], off = (uint32_t)(k * 4099) % (FILE_BYTES - len);
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, (uint64_t)first + (uint64_t)k);
        ck_assert_msg(r.err == 0, "get %d: %s %s", k, r.code, r.msg);
        th_assert_bytes(r.result, data + off, len);
    }
    th_close(c);
    free(data);
    th_must_stop(&D);
}
END_TEST

/* ftruncate()s fd to *(off_t *)size. */
static int truncate_to(int fd, void *size)
{
    return ftruncate(fd, *(const off_t *)size);
}

/* Shrinks the daemon's data file whose descriptor links into its scratch
 * directory to size bytes, through /proc (the file has no name). */
static void truncate_daemon_file(const struct th_daemon *d, off_t size)
{
    ck_assert_int_eq(th_daemon_each_file(d, O_WRONLY, truncate_to, &size), 1);
}

/* A read that fails half-way (the data file shrank behind the daemon's
 * back) answers io_error and leaves no partial response: every response of
 * the same pipelined batch, before and after it, arrives whole and in
 * order, and the connection stays usable. */
START_TEST(failed_reads_leave_no_partial_response)
{
    unsigned char a1[100], a2[100];
    struct th_client *c;
    struct th_reply r;
    struct proto_loc l1, l2;
    const msgpack_object *items;
    uint64_t w, a;
    int64_t id[6];

    th_pattern(a1, sizeof(a1), 3);
    th_pattern(a2, sizeof(a2), 4);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    l1 = th_push(c, w, a1, sizeof(a1));
    l2 = th_push(c, w, a2, sizeof(a2));
    a = th_call_u64(c, "into_arena", w);
    truncate_daemon_file(&D, (off_t)sizeof(a1) + 10);
    id[0] = th_queue(c, "get", "uL", a, l1);
    id[1] = th_queue(c, "get", "uL", a, l2);
    id[2] = th_queue(c, "get_many", "ua", a, 3u, "L", l1, "L", l2, "L", l1);
    id[3] = th_queue(c, "get_many", "ua", a, 2u, "L", l1, "L", l1);
    id[4] = th_queue(c, "get", "uL", a, l1);
    id[5] = th_queue(c, "get_many", "ua", a, 1u, "L", l2);
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (int k = 0; k < 6; k++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, (uint64_t)id[k]);
        switch (k) {
        case 0:
        case 4:
            ck_assert_int_eq(r.err, PROTO_OK);
            th_assert_bytes(r.result, a1, sizeof(a1));
            break;
        case 3:
            ck_assert_int_eq(r.err, PROTO_OK);
            items = r.result;
            ck_assert_uint_eq(items->via.array.size, 2);
            th_assert_bytes(&items->via.array.ptr[0], a1, sizeof(a1));
            th_assert_bytes(&items->via.array.ptr[1], a1, sizeof(a1));
            break;
        default:
            ck_assert_int_eq(r.err, PROTO_IO_ERROR);
            if (k == 2) {
                expect_msg(&r, "item 1");
                ck_assert_int_eq(r.item, 1);
            }
            if (k == 5) {
                expect_msg(&r, "item 0");
                ck_assert_int_eq(r.item, 0);
            }
            break;
        }
    }
    expect_get(c, a, l1, a1, sizeof(a1));
    /* Only the whole responses count as read. */
    ck_assert_uint_eq(th_stat_u64(c, "bytes_read"), 5u * sizeof(a1));
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* A payload whose file shrank behind the daemon's back (after its bounds
 * were checked) reads short: that request alone gets io_error, its
 * connection and every other stay usable, and the daemon does not spin. */
START_TEST(a_read_cut_short_is_io_error_for_that_request)
{
    enum { BIG = 256 << 10, LEN = 200 << 10 };
    unsigned char *big = malloc(BIG);
    struct th_client *c, *c2;
    struct th_reply r;
    uint64_t w, a;
    long t0, t1;

    th_pattern(big, BIG, 8);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    c2 = th_must_connect(&D);
    w = th_writer_new(c, 0);
    th_push(c, w, big, BIG);
    a = th_call_u64(c, "into_arena", w);
    truncate_daemon_file(&D, 100 << 10);
    th_set_timeout(c, 3000);
    TH_ERR_CALL(c, &r, "io_error", "get", "uL", a, loc_at(0, 0, LEN));
    expect_msg(&r, "short read");
    TH_ERR_CALL(c, &r, "io_error", "get_many", "ua", a, 2u, "L", loc_at(0, 0, 10), "L",
                loc_at(0, 150 << 10, 20));
    expect_msg(&r, "item 1: short read");
    ck_assert_int_eq(r.item, 1);
    /* What is still there reads back. */
    TH_OK_CALL(c, &r, "get", "uL", a, loc_at(0, 1000, 64));
    ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_BIN);
    ck_assert_mem_eq(r.result->via.bin.ptr, big + 1000, 64);
    t0 = th_proc_cpu_ticks(D.pid);
    th_sleep_ms(500);
    t1 = th_proc_cpu_ticks(D.pid);
    ck_assert_msg(t0 >= 0 && t1 - t0 < 20, "daemon used %ld ticks while idle", t1 - t0);
    TH_OK_CALL(c2, &r, "hello", "");
    th_close(c);
    th_close(c2);
    free(big);
    th_must_stop(&D);
}
END_TEST

/* Replies over max_message are refused, never truncated. */
START_TEST(responses_over_max_message_are_too_large)
{
    unsigned char chunk[30000];
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;

    memset(chunk, 'm', sizeof(chunk));
    th_must_start(&D, (const char *const[]){"--max-message", "64K", NULL});
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    for (int i = 0; i < 3; i++)
        th_push(c, w, chunk, sizeof(chunk));
    a = th_call_u64(c, "into_arena", w);
    TH_ERR_CALL(c, &r, "too_large", "get", "uL", a, loc_at(0, 0, 90000));
    expect_msg(&r, "max_message");
    TH_ERR_CALL(c, &r, "too_large", "get_many", "ua", a, 3u, "L", loc_at(0, 0, 30000), "L",
                loc_at(0, 30000, 30000), "L", loc_at(0, 60000, 30000));
    /* Exactly at the limit passes: 65536 = head (4) + array (1) + bins. */
    TH_OK_CALL(c, &r, "get_many", "ua", a, 2u, "L", loc_at(0, 0, 30000), "L",
               loc_at(0, 0, 65536 - 4 - 1 - 5 - 30000 - 3));
    TH_OK_CALL(c, &r, "get", "uL", a, loc_at(0, 0, 60000));
    /* push_many's reply is sized before anything is written: 17000 empty
     * items make a 34 KB request but a 68 KB reply. */
    w = th_writer_new(c, 0);
    raw_push_many_empty(c, 9001, w, 17000, &r);
    ck_assert_str_eq(r.code, "too_large");
    expect_msg(&r, "max_message");
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 0);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* ---- arenas: info, files, open/release, names ---- */

START_TEST(arena_info_and_files)
{
    struct th_client *c;
    struct th_reply r;
    uint64_t w0, w1, f0, f1, a;
    const msgpack_object *name;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w1 = th_writer_new(c, 1);
    push_s(c, w1, "bbbb");
    w0 = th_writer_new(c, 0);
    push_s(c, w0, "aa");
    f1 = th_call_u64(c, "finish", w1);
    f0 = th_call_u64(c, "finish", w0);
    a = build(c, "build", (uint64_t[]){f1, f0}, 2);
    TH_OK_CALL(c, &r, "arena_info", "u", a);
    ck_assert_uint_eq(th_map_u64(r.result, "files"), 2);
    ck_assert_uint_eq(th_map_u64(r.result, "bytes"), 6);
    ck_assert_uint_eq(th_map_u64(r.result, "refs"), 1);
    name = th_map_get(r.result, "name");
    ck_assert_msg(name != NULL && name->type == MSGPACK_OBJECT_NIL, "name is not nil");
    TH_OK_CALL(c, &r, "arena_files", "u", a);
    ck_assert_uint_eq(r.result->via.array.size, 2);
    ck_assert_uint_eq(th_u64(&r.result->via.array.ptr[0]), f0); /* index order */
    ck_assert_uint_eq(th_u64(&r.result->via.array.ptr[1]), f1);
    TH_OK_CALL(c, &r, "name", "us", a, "shelf");
    TH_OK_CALL(c, &r, "name", "us", a, "rack");
    TH_OK_CALL(c, &r, "arena_info", "u", a);
    ck_assert_uint_eq(th_map_u64(r.result, "refs"), 3);
    name = th_map_get(r.result, "name");
    ck_assert_msg(name != NULL && name->type == MSGPACK_OBJECT_STR && name->via.str.size == 5 &&
                      memcmp(name->via.str.ptr, "shelf", 5) == 0,
                  "name is not the oldest");
    TH_ERR_CALL(c, &r, "bad_request", "arena_info", "");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* open and release count references per connection. */
START_TEST(open_and_release_are_counted)
{
    struct th_client *a, *b;
    struct th_reply r;
    uint64_t w, ar, f;

    th_must_start(&D, NULL);
    a = th_must_connect(&D);
    b = th_must_connect(&D);
    w = th_writer_new(a, 0);
    push_s(a, w, "shared");
    ar = th_call_u64(a, "into_arena", w);
    TH_OK_CALL(b, &r, "open", "u", ar);
    ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_NIL);
    TH_OK_CALL(b, &r, "open", "u", ar);
    TH_OK_CALL(a, &r, "arena_info", "u", ar);
    ck_assert_uint_eq(th_map_u64(r.result, "refs"), 3);
    TH_OK_CALL(a, &r, "release", "u", ar);
    TH_ERR_CALL(a, &r, "no_such_handle", "release", "u", ar); /* a holds nothing now */
    TH_OK_CALL(b, &r, "release", "u", ar);
    TH_OK_CALL(b, &r, "arena_info", "u", ar);
    ck_assert_uint_eq(th_map_u64(r.result, "refs"), 1);
    TH_OK_CALL(b, &r, "release", "u", ar);
    TH_ERR_CALL(b, &r, "no_such_handle", "get", "uL", ar, loc_at(0, 0, 1));
    TH_ERR_CALL(b, &r, "no_such_handle", "open", "u", ar);
    /* Writers and files: release discards them; others cannot. */
    w = th_writer_new(a, 0);
    TH_ERR_CALL(b, &r, "no_such_handle", "release", "u", w);
    TH_OK_CALL(a, &r, "release", "u", w);
    TH_ERR_CALL(a, &r, "no_such_handle", "writer_len", "u", w);
    w = th_writer_new(a, 0);
    f = th_call_u64(a, "finish", w);
    TH_ERR_CALL(b, &r, "no_such_handle", "release", "u", f);
    TH_OK_CALL(a, &r, "release", "u", f);
    TH_ERR_CALL(a, &r, "no_such_handle", "build", "U", (uint64_t[]){f}, (size_t)1);
    TH_ERR_CALL(a, &r, "bad_request", "release", "i", (int64_t)-3);
    TH_ERR_CALL(a, &r, "no_such_handle", "release", "u", (uint64_t)1u << 40);
    ck_assert_uint_eq(th_stat_u64(a, "files"), 0);
    th_close(a);
    th_close(b);
    th_must_stop(&D);
}
END_TEST

/* name, lookup and unname with every error they return. */
START_TEST(names_lookup_unname)
{
    char longname[257];
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;

    memset(longname, 'q', sizeof(longname));
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    a = arena_of_s(c, "named data", NULL);
    TH_OK_CALL(c, &r, "name", "us", a, "results/2024");
    ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_NIL);
    TH_ERR_CALL(c, &r, "name_taken", "name", "us", a, "results/2024");
    TH_OK_CALL(c, &r, "lookup", "s", "results/2024");
    ck_assert_uint_eq(th_res_u64(&r), a);
    TH_ERR_CALL(c, &r, "no_such_name", "lookup", "s", "results/2025");
    TH_ERR_CALL(c, &r, "no_such_name", "unname", "s", "results/2025");
    TH_ERR_CALL(c, &r, "bad_request", "name", "uS", a, "", (size_t)0);
    expect_msg(&r, "name: param 2 (name)");
    TH_ERR_CALL(c, &r, "bad_request", "name", "uS", a, "a\0b", (size_t)3);
    TH_ERR_CALL(c, &r, "bad_request", "name", "uS", a, longname, (size_t)256);
    TH_OK_CALL(c, &r, "name", "uS", a, longname, (size_t)255);
    TH_ERR_CALL(c, &r, "bad_request", "name", "ub", a, "bin", (size_t)3);
    TH_ERR_CALL(c, &r, "bad_request", "lookup", "u", a);
    TH_ERR_CALL(c, &r, "bad_request", "unname", "");
    TH_ERR_CALL(c, &r, "no_such_handle", "name", "us", (uint64_t)9999, "other");
    w = th_writer_new(c, 0);
    TH_ERR_CALL(c, &r, "no_such_handle", "name", "us", w, "other");
    TH_OK_CALL(c, &r, "unname", "s", "results/2024");
    TH_ERR_CALL(c, &r, "no_such_name", "lookup", "s", "results/2024");
    ck_assert_uint_eq(th_stat_u64(c, "names"), 1);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* max_writers and max_handles answer limit, per connection. */
START_TEST(per_connection_caps_are_limit)
{
    struct th_client *c, *c2;
    struct th_reply r;
    uint64_t w, a;

    th_must_start(&D, (const char *const[]){"--max-writers", "2", "--max-handles", "3", NULL});
    c = th_must_connect(&D);
    th_writer_new(c, 0);
    w = th_writer_new(c, 1);
    TH_ERR_CALL(c, &r, "limit", "writer_new", "u", (uint64_t)2);
    expect_msg(&r, "max_writers");
    c2 = th_must_connect(&D); /* the cap is per connection */
    th_writer_new(c2, 0);
    push_s(c, w, "x");
    w = th_writer_new(c2, 0);
    a = th_call_u64(c2, "into_arena", w);
    TH_OK_CALL(c, &r, "open", "u", a); /* 3 handles */
    TH_ERR_CALL(c, &r, "limit", "open", "u", a);
    expect_msg(&r, "max_handles");
    th_close(c);
    th_close(c2);
    th_must_stop(&D);
}
END_TEST

/* ---- the crate's scenarios ---- */

START_TEST(crate_one_writer_round_trip)
{
    struct th_client *c;
    struct proto_loc l1, l2;
    uint64_t w, a;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    l1 = push_s(c, w, "hello");
    l2 = push_s(c, w, " world");
    a = th_call_u64(c, "into_arena", w);
    expect_get_s(c, a, l1, "hello");
    expect_get_s(c, a, l2, " world");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* The crate's builder example: three writers, built in shuffled order. */
START_TEST(crate_three_writers_built_shuffled)
{
    static const char *const items[] = {"item0", "item1-longer", "i2"};
    struct th_client *c;
    struct proto_loc loc[3];
    uint64_t f[3], a;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    for (unsigned i = 0; i < 3; i++)
        f[i] = file_of_s(c, i, items[i], &loc[i]);
    a = build(c, "build", (uint64_t[]){f[2], f[0], f[1]}, 3);
    for (unsigned i = 0; i < 3; i++)
        expect_get_s(c, a, loc[i], items[i]);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* The crate's FileArena::new example, and its order contract. */
START_TEST(crate_arena_new_in_and_out_of_order)
{
    struct th_client *c;
    struct th_reply r;
    struct proto_loc l1, l2;
    uint64_t f1, f2, a;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    f1 = file_of_s(c, 0, "data1", &l1);
    f2 = file_of_s(c, 1, "data2", &l2);
    TH_ERR_CALL(c, &r, "index_mismatch", "arena_new", "U", (uint64_t[]){f2, f1}, (size_t)2);
    a = build(c, "arena_new", (uint64_t[]){f1, f2}, 2);
    expect_get_s(c, a, l1, "data1");
    expect_get_s(c, a, l2, "data2");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Another connection extends an arena with arena_files, without copying. */
START_TEST(crate_file_reused_in_two_arenas)
{
    struct th_client *a, *b;
    struct th_reply r;
    struct proto_loc l0, l1;
    uint64_t a1, a2, f0, f1;

    th_must_start(&D, NULL);
    a = th_must_connect(&D);
    b = th_must_connect(&D);
    a1 = arena_of_s(a, "first file", &l0);
    /* b extends a's arena without copying: its files plus a new one. */
    TH_OK_CALL(b, &r, "arena_files", "u", a1);
    ck_assert_uint_eq(r.result->via.array.size, 1);
    f0 = th_u64(&r.result->via.array.ptr[0]);
    f1 = file_of_s(b, 1, "second file", &l1);
    a2 = build(b, "build", (uint64_t[]){f1, f0}, 2);
    TH_OK_CALL(a, &r, "release", "u", a1);
    TH_ERR_CALL(b, &r, "no_such_handle", "get", "uL", a1, l0);
    expect_get_s(b, a2, l0, "first file");
    expect_get_s(b, a2, l1, "second file");
    TH_OK_CALL(b, &r, "arena_info", "u", a2);
    ck_assert_uint_eq(th_map_u64(r.result, "bytes"), 21);
    th_close(a);
    th_close(b);
    th_must_stop(&D);
}
END_TEST

/* ---- sharing between connections ---- */

START_TEST(share_by_open_survives_the_builder)
{
    struct th_client *a, *b;
    struct th_reply r;
    struct proto_loc l;
    uint64_t ar;

    th_must_start(&D, NULL);
    a = th_must_connect(&D);
    b = th_must_connect(&D);
    ar = arena_of_s(a, "kept by b", &l);
    TH_OK_CALL(b, &r, "open", "u", ar);
    th_close(a);
    ck_assert_int_eq(th_wait_stat(b, "connections", 1, TH_TIMEOUT_MS), 0);
    expect_get_s(b, ar, l, "kept by b");
    TH_OK_CALL(b, &r, "release", "u", ar);
    TH_ERR_CALL(b, &r, "no_such_handle", "get", "uL", ar, l);
    ck_assert_uint_eq(th_stat_u64(b, "arenas"), 0);
    th_close(b);
    th_must_stop(&D);
}
END_TEST

/* A named arena outlives its producer; a consumer looks it up later. */
START_TEST(share_by_name_outlives_the_producer)
{
    struct th_client *a, *b;
    struct th_reply r;
    struct proto_loc l;
    uint64_t ar;

    th_must_start(&D, NULL);
    a = th_must_connect(&D);
    ar = arena_of_s(a, "left for later", &l);
    TH_OK_CALL(a, &r, "name", "us", ar, "handoff");
    th_close(a);
    b = th_must_connect(&D);
    ck_assert_int_eq(th_wait_stat(b, "connections", 1, TH_TIMEOUT_MS), 0);
    TH_OK_CALL(b, &r, "lookup", "s", "handoff");
    ck_assert_uint_eq(th_res_u64(&r), ar);
    expect_get_s(b, ar, l, "left for later");
    TH_OK_CALL(b, &r, "unname", "s", "handoff");
    TH_ERR_CALL(b, &r, "no_such_handle", "get", "uL", ar, l);
    th_close(b);
    th_must_stop(&D);
}
END_TEST

/* Without open or a name, an arena and pending writers go with their connection. */
START_TEST(unshared_arena_dies_with_its_connection)
{
    struct th_client *a, *b;
    struct th_reply r;
    struct proto_loc l;
    uint64_t ar, wpending;

    th_must_start(&D, NULL);
    a = th_must_connect(&D);
    b = th_must_connect(&D);
    ar = arena_of_s(a, "gone soon", &l);
    wpending = th_writer_new(a, 1);
    push_s(a, wpending, "never finished");
    expect_get_s(b, ar, l, "gone soon"); /* any connection may read without a reference */
    TH_ERR_CALL(b, &r, "no_such_handle", "push", "us", wpending, "mine?");
    th_close(a);
    ck_assert_int_eq(th_wait_stat(b, "connections", 1, TH_TIMEOUT_MS), 0);
    TH_ERR_CALL(b, &r, "no_such_handle", "get", "uL", ar, l);
    th_expect_objects(b, 0, 0, 0);
    th_close(b);
    th_must_stop(&D);
}
END_TEST

/* A finished file is usable in build and arena_new by any connection while
 * it lives; release stays its owner's, writers stay private, and a file in
 * no arena ends with its owner's connection. */
START_TEST(files_are_usable_by_any_connection_while_alive)
{
    struct th_client *a, *b;
    struct th_reply r;
    struct proto_loc l0;
    uint64_t wpending, f0, flate, ar1, ar2;

    th_must_start(&D, NULL);
    a = th_must_connect(&D);
    b = th_must_connect(&D);
    f0 = file_of_s(a, 0, "written by a", &l0);
    flate = file_of_s(a, 0, "never built", NULL);
    wpending = th_writer_new(a, 1);
    push_s(a, wpending, "pending");
    /* b builds with a's unbuilt file while a is connected. */
    ar1 = build(b, "build", (uint64_t[]){f0}, 1);
    ar2 = build(b, "arena_new", (uint64_t[]){f0}, 1);
    expect_get_s(b, ar1, l0, "written by a");
    expect_get_s(b, ar2, l0, "written by a");
    /* Ownership did not move: only a may release it. */
    TH_ERR_CALL(b, &r, "no_such_handle", "release", "u", f0);
    /* a's writer stays a's for every method. */
    TH_ERR_CALL(b, &r, "no_such_handle", "build", "U", (uint64_t[]){wpending}, (size_t)1);
    TH_ERR_CALL(b, &r, "no_such_handle", "arena_new", "U", (uint64_t[]){wpending}, (size_t)1);
    TH_ERR_CALL(b, &r, "no_such_handle", "push", "us", wpending, "x");
    TH_ERR_CALL(b, &r, "no_such_handle", "writer_len", "u", wpending);
    TH_ERR_CALL(b, &r, "no_such_handle", "finish", "u", wpending);
    TH_ERR_CALL(b, &r, "no_such_handle", "into_arena", "u", wpending);
    TH_ERR_CALL(b, &r, "no_such_handle", "release", "u", wpending);
    ck_assert_uint_eq(th_call_u64(a, "writer_len", wpending), 7);
    /* a leaves: its writer and its file in no arena vanish; f0 lives on in
     * b's arenas and stays usable by anyone. */
    th_close(a);
    ck_assert_int_eq(th_wait_stat(b, "connections", 1, TH_TIMEOUT_MS), 0);
    TH_ERR_CALL(b, &r, "no_such_handle", "build", "U", (uint64_t[]){flate}, (size_t)1);
    expect_msg(&r, "item 0");
    ck_assert_int_eq(r.item, 0);
    TH_ERR_CALL(b, &r, "no_such_handle", "arena_new", "U", (uint64_t[]){flate}, (size_t)1);
    TH_ERR_CALL(b, &r, "no_such_handle", "writer_len", "u", wpending);
    expect_get_s(b, ar1, l0, "written by a");
    TH_OK_CALL(b, &r, "release", "u", ar1);
    ck_assert_uint_ne(build(b, "build", (uint64_t[]){f0}, 1), 0);
    TH_ERR_CALL(b, &r, "no_such_handle", "release", "u", f0);
    th_expect_objects(b, 0, 1, 12);
    th_close(b);
    th_must_stop(&D);
}
END_TEST

/* ---- concurrent readers ---- */

enum { RD_FILES = 4, RD_FILE_BYTES = 1 << 20, RD_CLIENTS = 8, RD_READS = 150 };

/* One reader process: random gets and get_manys over the arena, every byte
 * compared with the pattern. Exits 0 when all matched. */
static void reader_child(const char *sock, uint64_t arena, unsigned seed)
{
    struct th_client *c = th_connect(sock, TH_TIMEOUT_MS);
    unsigned char *want = malloc(RD_FILE_BYTES);
    struct th_reply r;
    int bad = 0;

    if (c == NULL || want == NULL)
        _exit(2);
    for (int i = 0; i < RD_READS && !bad; i++) {
        unsigned fi = (unsigned)rand_r(&seed) % RD_FILES;
        uint32_t len = (uint32_t)rand_r(&seed) % (i % 10 == 0 ? 400000u : 5000u);
        uint32_t off = (uint32_t)rand_r(&seed) % (RD_FILE_BYTES - len + 1);
        struct proto_loc loc = {(uint16_t)fi, off, len};
        th_pattern(want, RD_FILE_BYTES, fi + 10);
        if (i % 3 == 0) {
            if (th_call(c, &r, "get_many", "ua", arena, 2u, "L", loc, "L", loc) != TH_OK ||
                r.err != 0 || r.result->via.array.size != 2)
                bad = 1;
            for (int k = 0; k < 2 && !bad; k++) {
                const msgpack_object *o = &r.result->via.array.ptr[k];
                if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != len ||
                    memcmp(o->via.bin.ptr, want + off, len) != 0)
                    bad = 1;
            }
        } else {
            if (th_call(c, &r, "get", "uL", arena, loc) != TH_OK || r.err != 0 ||
                r.result->type != MSGPACK_OBJECT_BIN || r.result->via.bin.size != len ||
                memcmp(r.result->via.bin.ptr, want + off, len) != 0)
                bad = 1;
        }
    }
    th_close(c);
    free(want);
    _exit(bad);
}

/* Eight processes read one arena at random; every byte matches. */
START_TEST(eight_concurrent_readers_see_exact_bytes)
{
    unsigned char *data = malloc(RD_FILE_BYTES);
    struct th_client *c;
    uint64_t files[RD_FILES], a;
    pid_t kids[RD_CLIENTS];
    int mismatches = 0;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    for (unsigned i = 0; i < RD_FILES; i++) {
        uint64_t w = th_writer_new(c, i);
        th_pattern(data, RD_FILE_BYTES, i + 10);
        for (size_t off = 0; off < RD_FILE_BYTES; off += 256 << 10)
            th_push(c, w, data + off, 256 << 10);
        files[i] = th_call_u64(c, "finish", w);
    }
    a = build(c, "build", files, RD_FILES);
    for (int k = 0; k < RD_CLIENTS; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0)
            reader_child(D.sock, a, 1000u + (unsigned)k);
    }
    uint64_t end = th_deadline(60000);
    for (int k = 0; k < RD_CLIENTS; k++) {
        if (th_wait_child(kids[k], th_ms_left(end)) != 0)
            mismatches++;
    }
    ck_assert_int_eq(mismatches, 0);
    th_close(c);
    free(data);
    th_must_stop(&D);
}
END_TEST

/* ---- list, and floats holding integers (stock JavaScript clients) ---- */

/* One page of list [prefix, cursor, count] that must succeed: checks every
 * entry's shape, appends "name=arena/bytes/files/refs," to out (cap bytes)
 * and copies the reply's cursor to cursor (NUL-terminated; "" for nil).
 * Returns how many names the page held. */
static uint32_t list_page(struct th_client *c, const char *prefix, const char *cursor,
                          uint64_t count, char *out, size_t cap, char *next)
{
    const msgpack_object *names, *cur;
    struct th_reply r;
    size_t used = strlen(out);

    if (cursor[0] != '\0')
        TH_OK_CALL(c, &r, "list", "ssu", prefix, cursor, count);
    else
        TH_OK_CALL(c, &r, "list", "snu", prefix, count);
    ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_MAP);
    names = th_map_get(r.result, "names");
    cur = th_map_get(r.result, "cursor");
    ck_assert_ptr_nonnull(names);
    ck_assert_ptr_nonnull(cur);
    ck_assert_int_eq(names->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < names->via.array.size; i++) {
        const msgpack_object *e = &names->via.array.ptr[i], *nm;
        ck_assert_int_eq(e->type, MSGPACK_OBJECT_MAP);
        ck_assert_uint_eq(e->via.map.size, 5);
        nm = th_map_get(e, "name");
        ck_assert_ptr_nonnull(nm);
        ck_assert_int_eq(nm->type, MSGPACK_OBJECT_STR);
        int n = snprintf(out + used, cap - used, "%.*s=%llu/%llu/%llu/%llu,", (int)nm->via.str.size,
                         nm->via.str.ptr, (unsigned long long)th_map_u64(e, "arena"),
                         (unsigned long long)th_map_u64(e, "bytes"),
                         (unsigned long long)th_map_u64(e, "files"),
                         (unsigned long long)th_map_u64(e, "refs"));
        ck_assert_int_gt(n, 0);
        ck_assert_uint_lt((size_t)n, cap - used);
        used += (size_t)n;
    }
    if (cur->type == MSGPACK_OBJECT_NIL) {
        next[0] = '\0';
    } else {
        ck_assert_int_eq(cur->type, MSGPACK_OBJECT_STR);
        ck_assert_uint_gt(cur->via.str.size, 0);
        ck_assert_uint_le(cur->via.str.size, 255);
        ck_assert_uint_gt(names->via.array.size, 0);
        /* The cursor is the page's last name. */
        ck_assert(
            th_map_get(&names->via.array.ptr[names->via.array.size - 1], "name")->via.str.size ==
            cur->via.str.size);
        memcpy(next, cur->via.str.ptr, cur->via.str.size);
        next[cur->via.str.size] = '\0';
    }
    return names->via.array.size;
}

/* Every page of a listing; returns the number of pages. */
static int list_pages(struct th_client *c, const char *prefix, uint64_t count, char *out,
                      size_t cap)
{
    char cursor[256] = "", next[256];
    int pages = 0;

    out[0] = '\0';
    for (;;) {
        uint32_t n = list_page(c, prefix, cursor, count, out, cap, next);
        pages++;
        ck_assert_uint_le(n, count);
        if (next[0] == '\0')
            return pages;
        ck_assert_uint_eq(n, count);
        ck_assert_int_lt(pages, 100000);
        strcpy(cursor, next);
    }
}

/* list pages through the names in byte order, filtered by prefix, with each
 * arena's handle, bytes, files and refs; the cursor is nil on the last page
 * (also when it is exactly full); bad params are bad_request. */
START_TEST(list_pages_names_by_prefix)
{
    char out[8192], want[8192], cursor[256];
    char bad[260];
    struct th_client *c;
    struct th_reply r;
    uint64_t a, b;
    size_t used = 0;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    ck_assert_int_eq(list_pages(c, "", 10, out, sizeof(out)), 1);
    ck_assert_str_eq(out, "");
    a = arena_of_s(c, "abcde", NULL);
    b = arena_of_s(c, "xy", NULL);
    for (int i = 29; i >= 0; i--) {
        char name[32];
        snprintf(name, sizeof(name), "run/%02d", i);
        TH_OK_CALL(c, &r, "name", "us", i % 2 ? b : a, name);
    }
    TH_OK_CALL(c, &r, "name", "us", a, "run");
    TH_OK_CALL(c, &r, "name", "us", b, "zz");
    TH_OK_CALL(c, &r, "name", "us", a, "rum");
    /* a: the connection's reference and 17 names; b: it and 16. */
    used += (size_t)snprintf(want + used, sizeof(want) - used, "run=%llu/5/1/18,",
                             (unsigned long long)a);
    for (int i = 0; i < 30; i++)
        used +=
            (size_t)snprintf(want + used, sizeof(want) - used, "run/%02d=%llu/%d/1/%d,", i,
                             (unsigned long long)(i % 2 ? b : a), i % 2 ? 2 : 5, i % 2 ? 17 : 18);
    for (uint64_t count = 1; count <= 32; count++) {
        int pages = list_pages(c, "run", count, out, sizeof(out));
        ck_assert_str_eq(out, want);
        ck_assert_int_eq(pages, (int)((31 + count - 1) / count));
    }
    ck_assert_int_eq(list_pages(c, "", 1000, out, sizeof(out)), 1);
    ck_assert_uint_eq(strncmp(out, "rum=", 4), 0);
    ck_assert_ptr_nonnull(strstr(out, "zz="));
    ck_assert_int_eq(list_pages(c, "run/1", 4, out, sizeof(out)), 3);
    ck_assert_int_eq(list_pages(c, "s", 4, out, sizeof(out)), 1);
    ck_assert_str_eq(out, "");
    /* A cursor is any name: the listing resumes after it. */
    out[0] = '\0';
    ck_assert_uint_eq(list_page(c, "", "run/28", 10, out, sizeof(out), cursor), 2);
    ck_assert_ptr_nonnull(strstr(out, "run/29="));
    ck_assert_str_eq(cursor, "");
    /* A count above max_batch is served up to max_batch. */
    ck_assert_int_eq(list_pages(c, "", UINT32_MAX, out, sizeof(out)), 1);

    memset(bad, 'p', sizeof(bad));
    TH_ERR_CALL(c, &r, "bad_request", "list", "sn", "run");
    expect_msg(&r, "list: expected params [prefix, cursor, count]");
    TH_ERR_CALL(c, &r, "bad_request", "list", "snuu", "run", (uint64_t)1, (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "nnu", (uint64_t)1);
    expect_msg(&r, "param 1 (prefix)");
    TH_ERR_CALL(c, &r, "bad_request", "list", "unu", (uint64_t)1, (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "Snu", bad, (size_t)256, (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "Snu", "a\0b", (size_t)3, (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "suu", "", (uint64_t)1, (uint64_t)1);
    expect_msg(&r, "param 2 (cursor)");
    TH_ERR_CALL(c, &r, "bad_request", "list", "sSu", "", "", (size_t)0, (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "sSu", "", bad, (size_t)256, (uint64_t)1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "snu", "", (uint64_t)0);
    expect_msg(&r, "param 3 (count)");
    TH_ERR_CALL(c, &r, "bad_request", "list", "sni", "", (int64_t)-1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "snn", "");
    TH_ERR_CALL(c, &r, "bad_request", "list", "snu", "", (uint64_t)UINT32_MAX + 1);
    TH_ERR_CALL(c, &r, "bad_request", "list", "snd", "", 2.5);
    TH_OK_CALL(c, &r, "list", "snd", "run/0", 3.0);
    ck_assert_uint_eq(th_map_get(r.result, "names")->via.array.size, 3);
    ck_assert_uint_eq(th_stat_u64(c, "names"), 33);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* A page stops short of max_message: with the smallest max_message and 400
 * names of 255 bytes, pages hold fewer names than asked, each reply fits,
 * and the pages still list every name once. */
START_TEST(list_pages_stay_under_max_message)
{
    static char out[400 * 300];
    char name[256], cursor[256] = "", next[256];
    struct th_client *c;
    struct th_reply r;
    uint64_t a;
    int pages = 0, total = 0;

    th_must_start(&D, (const char *const[]){"--max-message", "65536", NULL});
    c = th_must_connect(&D);
    a = arena_of_s(c, "long names", NULL);
    memset(name, 'n', 255);
    name[255] = '\0';
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof(name), "%03d", i);
        name[3] = 'n';
        TH_OK_CALL(c, &r, "name", "uS", a, name, (size_t)255);
    }
    out[0] = '\0';
    for (;;) {
        uint32_t n = list_page(c, "", cursor, 100000, out, sizeof(out), next);
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_lt(n, 400);
        total += (int)n;
        pages++;
        if (next[0] == '\0')
            break;
        strcpy(cursor, next);
    }
    ck_assert_int_eq(total, 400);
    ck_assert_int_ge(pages, 2);
    for (int i = 0; i < 400; i++) {
        char head[16];
        snprintf(head, sizeof(head), "%03dn", i);
        ck_assert_ptr_nonnull(strstr(out, head));
    }
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Params a JavaScript encoder sends as float64 are taken when they hold an
 * exact integer in range: a whole write/read round trip with every integer
 * as a float; an offset past 2 GiB as a float is out_of_bounds, a
 * fractional or NaN one bad_request. */
START_TEST(floats_holding_integers_are_integers)
{
    struct th_client *c;
    struct th_reply r;
    struct proto_loc l;
    uint64_t w, a;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    TH_OK_CALL(c, &r, "writer_new", "d", 0.0);
    w = th_res_u64(&r);
    TH_OK_CALL(c, &r, "push", "ds", (double)w, "hello floats");
    l = th_res_loc(&r);
    ck_assert_uint_eq(l.len, 12);
    TH_OK_CALL(c, &r, "writer_len", "d", (double)w);
    ck_assert_uint_eq(th_res_u64(&r), 12);
    TH_OK_CALL(c, &r, "into_arena", "d", (double)w);
    a = th_res_u64(&r);
    TH_OK_CALL(c, &r, "get", "da", (double)a, 3u, "d", 0.0, "d", 6.0, "d", 6.0);
    th_assert_bytes(r.result, "floats", 6);
    TH_OK_CALL(c, &r, "get_many", "ua", a, 2u, "a", 3u, "d", -0.0, "d", 0.0, "d", 5.0, "a", 3u, "u",
               (uint64_t)0, "d", 12.0, "d", 0.0);
    TH_OK_CALL(c, &r, "arena_info", "d", (double)a);
    ck_assert_uint_eq(th_map_u64(r.result, "bytes"), 12);
    TH_ERR_CALL(c, &r, "out_of_bounds", "get", "ua", a, 3u, "d", 0.0, "d", 2147483648.0, "d", 1.0);
    TH_ERR_CALL(c, &r, "out_of_bounds", "get", "ua", a, 3u, "d", 0.0, "d", 4294967295.0, "d", 0.0);
    TH_ERR_CALL(c, &r, "out_of_bounds", "get", "ua", a, 3u, "d", 1.0, "d", 0.0, "d", 1.0);
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 3u, "d", 0.0, "d", 2147483648.5, "d", 1.0);
    expect_msg(&r, "offset");
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 3u, "d", 0.0, "d", 4294967296.0, "d", 1.0);
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 3u, "d", 0.0, "d", 0.0, "d", -1.0);
    TH_ERR_CALL(c, &r, "bad_request", "get", "ua", a, 3u, "d", 65536.0, "d", 0.0, "d", 1.0);
    TH_ERR_CALL(c, &r, "bad_request", "get", "da", (double)a + 0.5, 3u, "d", 0.0, "d", 0.0, "d",
                1.0);
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "d", (double)NAN);
    TH_ERR_CALL(c, &r, "bad_request", "writer_new", "d", (double)INFINITY);
    TH_ERR_CALL(c, &r, "bad_request", "release", "d", 0.0);
    /* The connection lives through all of it. */
    TH_OK_CALL(c, &r, "release", "d", (double)a);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* The daemon suite. */
static Suite *daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc;

    tc = tcase_create("dispatch");
    tcase_add_test(tc, hello_reports_server_limits_and_methods);
    tcase_add_test(tc, unknown_method_keeps_the_connection);
    tcase_add_test(tc, bad_envelopes_inside_valid_msgpack);
    tcase_add_test(tc, unanswerable_messages_close_the_connection);
    tcase_add_test(tc, stat_counts_requests_errors_and_objects);
    tcase_add_test(tc, notifications_run_but_are_never_answered);
    suite_add_tcase(s, tc);

    tc = tcase_create("methods");
    tcase_add_test(tc, writer_new_params);
    tcase_add_test(tc, push_and_writer_len);
    tcase_add_test(tc, push_many_in_order_and_checked_first);
    tcase_add_test(tc, push_many_over_max_batch_is_too_large);
    tcase_add_test(tc, file_full_keeps_earlier_items);
    tcase_add_test(tc, finish_gives_a_new_handle_and_ends_the_writer);
    tcase_add_test(tc, into_arena_needs_index_zero);
    tcase_add_test(tc, build_errors);
    tcase_add_test(tc, get_bounds_and_kinds);
    tcase_add_test(tc, get_many_mixed_sizes_and_errors);
    tcase_add_test(tc, pipelined_gets_of_mixed_sizes);
    tcase_add_test(tc, a_read_cut_short_is_io_error_for_that_request);
    tcase_add_test(tc, failed_reads_leave_no_partial_response);
    tcase_add_test(tc, responses_over_max_message_are_too_large);
    tcase_add_test(tc, arena_info_and_files);
    tcase_add_test(tc, open_and_release_are_counted);
    tcase_add_test(tc, names_lookup_unname);
    tcase_add_test(tc, per_connection_caps_are_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("crate");
    tcase_add_test(tc, crate_one_writer_round_trip);
    tcase_add_test(tc, crate_three_writers_built_shuffled);
    tcase_add_test(tc, crate_arena_new_in_and_out_of_order);
    tcase_add_test(tc, crate_file_reused_in_two_arenas);
    suite_add_tcase(s, tc);

    tc = tcase_create("sharing");
    tcase_add_test(tc, share_by_open_survives_the_builder);
    tcase_add_test(tc, share_by_name_outlives_the_producer);
    tcase_add_test(tc, unshared_arena_dies_with_its_connection);
    tcase_add_test(tc, files_are_usable_by_any_connection_while_alive);
    tcase_add_test(tc, eight_concurrent_readers_see_exact_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("list_and_floats");
    tcase_add_test(tc, list_pages_names_by_prefix);
    tcase_add_test(tc, list_pages_stay_under_max_message);
    tcase_add_test(tc, floats_holding_integers_are_integers);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite; exit status 0 when every test passed. */
int main(void)
{
    return th_run_suite(daemon_suite());
}
