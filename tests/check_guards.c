/* farenad's guards: hostile input, back-pressure, the scratch quota, the
 * client cap, descriptor exhaustion, pipelining, cleanup on disconnect and
 * the peer-uid check. Every test runs its own daemon and ends by checking
 * that it shuts down cleanly. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "th_check.h"

static struct th_daemon D;

/* Polls the daemon's descriptor count until it equals want (bounded). */
static int wait_fd_count(pid_t pid, int want, int timeout_ms)
{
    uint64_t end = th_deadline(timeout_ms);
    int n;

    while ((n = th_proc_fd_count(pid)) != want && th_ms_left(end) > 0)
        th_sleep_ms(10);
    return n;
}

/* ---- cleanup ---- */

START_TEST(disconnect_releases_every_descriptor)
{
    struct th_client *probe, *c;
    int base, with;

    th_must_start(&D, NULL);
    probe = th_must_connect(&D);
    ck_assert_uint_eq(th_stat_u64(probe, "connections"), 1);
    base = th_proc_fd_count(D.pid);
    ck_assert_int_gt(base, 0);
    c = th_must_connect(&D);
    for (unsigned i = 0; i < 50; i++) {
        uint64_t w = th_writer_new(c, i);
        th_push(c, w, "pending bytes", 13);
    }
    /* A finished-but-unbuilt file too: also the connection's. */
    th_call_u64(c, "finish", th_writer_new(c, 50));
    with = th_proc_fd_count(D.pid);
    ck_assert_int_ge(with, base + 51);
    th_close(c);
    ck_assert_int_eq(wait_fd_count(D.pid, base, 5000), base);
    th_expect_objects(probe, 0, 0, 0);
    th_close(probe);
    th_must_stop(&D);
}
END_TEST

/* ---- pipelining ---- */

START_TEST(two_thousand_pipelined_requests)
{
    enum { N = 2000 };
    static unsigned char seen[N + 1];
    struct th_client *c;
    struct th_reply r;
    uint64_t w;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0); /* msgid 1 */
    memset(seen, 0, sizeof(seen));
    for (int i = 2; i <= N; i++) {
        int64_t id;
        switch (i % 4) {
        case 0:
            id = th_queue(c, "push", "ub", w, "p", (size_t)1);
            break;
        case 1:
            id = th_queue(c, "writer_len", "u", w);
            break;
        case 2:
            id = th_queue(c, "hello", "");
            break;
        default:
            id = th_queue(c, "get", "uL", (uint64_t)999, (struct proto_loc){0, 0, 0});
            break;
        }
        ck_assert_int_eq(id, i);
    }
    ck_assert_int_eq(th_flush(c), TH_OK); /* every request before any reply is read */
    for (int i = 2; i <= N; i++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_msg(r.msgid >= 2 && r.msgid <= N && !seen[r.msgid], "bad or repeated msgid %u",
                      r.msgid);
        seen[r.msgid] = 1;
        if (r.msgid % 4 == 3)
            ck_assert_str_eq(r.code, "no_such_handle");
        else
            ck_assert_int_eq(r.err, PROTO_OK);
    }
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), N / 4);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* A get or get_many pipelined behind another reply in the same batch gets
 * exactly one reply: the reads move the batch's packed replies to the
 * output themselves, and that must not look like an oversized reply. */
START_TEST(pipelined_reads_after_other_replies_answer_once)
{
    enum { BIG = 300 << 10 };
    unsigned char *big = malloc(BIG);
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;
    int64_t first, last;

    th_pattern(big, BIG, 5);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    th_push(c, w, "small", 5);
    th_push(c, w, big, BIG);
    a = th_call_u64(c, "into_arena", w);
    /* Every read follows a reply packed in the same batch. */
    first = th_queue(c, "hello", "");
    th_queue(c, "get", "uL", a, (struct proto_loc){0, 0, 5});
    th_queue(c, "arena_info", "u", a);
    th_queue(c, "get", "uL", a, (struct proto_loc){0, 5, BIG});
    th_queue(c, "stat", "");
    th_queue(c, "get_many", "ua", a, 2u, "L", (struct proto_loc){0, 0, 5}, "L",
             (struct proto_loc){0, 5, BIG});
    last = th_queue(c, "hello", "");
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (int64_t id = first; id <= last; id++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_msg(r.msgid == (uint32_t)id, "reply msgid %u, expected %u (%s)", r.msgid,
                      (unsigned)id, r.code);
        ck_assert_msg(r.err == PROTO_OK, "msgid %u: %s: %s", r.msgid, r.code, r.msg);
        if (id == first + 1)
            th_assert_bytes(r.result, "small", 5);
        if (id == first + 3)
            th_assert_bytes(r.result, big, BIG);
        if (id == first + 5) {
            ck_assert_int_eq(r.result->type, MSGPACK_OBJECT_ARRAY);
            ck_assert_uint_eq(r.result->via.array.size, 2);
            th_assert_bytes(&r.result->via.array.ptr[0], "small", 5);
            th_assert_bytes(&r.result->via.array.ptr[1], big, BIG);
        }
    }
    /* No stray reply is left: the next call's reply is the next one. */
    TH_OK_CALL(c, &r, "writer_len", "u", th_writer_new(c, 1));
    TH_OK_CALL(c, &r, "stat", "");
    ck_assert_uint_eq(th_map_u64(th_map_get(r.result, "errors"), "get"), 0);
    ck_assert_uint_eq(th_map_u64(th_map_get(r.result, "errors"), "get_many"), 0);
    th_close(c);
    free(big);
    th_must_stop(&D);
}
END_TEST

/* ---- hostile input ---- */

/* Sends bytes on a fresh connection and expects the daemon to close it,
 * after an error reply with msgid when want_code is not NULL. */
static void expect_closed_after(const void *bytes, size_t n, const char *want_code, uint32_t msgid)
{
    struct th_client *c = th_must_connect(&D);
    struct th_reply r;
    int rc;

    rc = th_send_raw(c, bytes, n);
    ck_assert_msg(rc == TH_OK || rc == TH_ERR, "send timed out");
    if (want_code != NULL) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, msgid);
        ck_assert_str_eq(r.code, want_code);
    }
    ck_assert_int_eq(th_wait_eof(c, &r), TH_EOF);
    th_close(c);
}

/* Hostile bytes close their own connection only; the daemon stays small. */
START_TEST(hostile_input_closes_only_that_connection)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    static const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char c1[] = {0xc1, 0xc1, 0xc1};
    /* [0, 5, "push", [ then 10000 nested arrays: a deep request whose msgid
     * is known, answered bad_request before the close. */
    static const unsigned char deep_head[] = {0x94, 0x00, 0x05, 0xa4, 'p', 'u', 's', 'h'};
    /* [0, 6, "push", [1, <bin32 of 4 GiB>: too_large with msgid 6. */
    static const unsigned char huge_push[] = {0x94, 0x00, 0x06, 0xa4, 'p',  'u',  's', 'h',
                                              0x92, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char not_envelope[] = {0x94, 0x01, 0x01, 0xc0, 0xc0};
    unsigned char *nest = malloc(10000 + sizeof(deep_head));
    struct th_client *other;
    struct th_reply r;
    long rss;

    th_must_start(&D, NULL);
    other = th_must_connect(&D);
    TH_OK_CALL(other, &r, "hello", "");
    expect_closed_after(http, sizeof(http) - 1, NULL, 0);
    expect_closed_after(arr32, sizeof(arr32), NULL, 0);
    expect_closed_after(bin32, sizeof(bin32), NULL, 0);
    expect_closed_after(c1, sizeof(c1), NULL, 0);
    memset(nest, 0x91, 10000);
    expect_closed_after(nest, 10000, NULL, 0);
    memcpy(nest, deep_head, sizeof(deep_head));
    memset(nest + sizeof(deep_head), 0x91, 10000);
    expect_closed_after(nest, 10000 + sizeof(deep_head), "bad_request", 5);
    expect_closed_after(huge_push, sizeof(huge_push), "too_large", 6);
    expect_closed_after(not_envelope, sizeof(not_envelope), NULL, 0);
    free(nest);
    ck_assert(th_daemon_alive(&D));
    rss = th_proc_rss_kib(D.pid);
    ck_assert_msg(rss > 0 && rss < 64 * 1024, "daemon RSS %ld KiB after hostile input", rss);
    /* The connection opened before is unaffected. */
    TH_OK_CALL(other, &r, "hello", "");
    ck_assert_uint_eq(th_stat_u64(other, "connections"), 1);
    th_close(other);
    th_must_stop(&D);
}
END_TEST

/* A push over max_message is answered too_large from its header alone. */
START_TEST(push_over_max_message_is_refused_early)
{
    enum { BIG = 2 << 20 };
    unsigned char *buf = malloc(BIG + 64);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct th_client *other, *c;
    struct th_reply r;
    int rc;

    th_must_start(&D, (const char *const[]){"--max-message", "1M", NULL});
    other = th_must_connect(&D);
    c = th_must_connect(&D);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_pack_request_head(&pk, 77, PROTO_M_PUSH, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_bin(&pk, BIG);
    memcpy(buf, sb.data, sb.size);
    memset(buf + sb.size, 'x', BIG);
    /* The daemon answers from the header alone and closes; the rest of
     * the upload may then fail to send, which is fine. */
    th_set_timeout(c, 5000);
    rc = th_send_raw(c, buf, sb.size + BIG);
    ck_assert_msg(rc == TH_OK || rc == TH_ERR, "send timed out");
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, 77);
    ck_assert_str_eq(r.code, "too_large");
    ck_assert_int_eq(th_wait_eof(c, &r), TH_EOF);
    th_close(c);
    msgpack_sbuffer_destroy(&sb);
    free(buf);
    TH_OK_CALL(other, &r, "hello", "");
    th_close(other);
    th_must_stop(&D);
}
END_TEST

/* Requests arriving one byte at a time are framed and answered. */
START_TEST(byte_at_a_time_requests_are_framed)
{
    struct th_client *c;
    struct th_reply r;
    msgpack_sbuffer sb;
    msgpack_packer pk;

    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (uint32_t id = 100; id < 103; id++) {
        proto_pack_request_head(&pk, id, PROTO_M_HELLO, 0);
    }
    for (size_t i = 0; i < sb.size; i++) {
        ck_assert_int_eq(th_send_raw(c, sb.data + i, 1), TH_OK);
        if (i % 7 == 0)
            th_sleep_ms(1);
    }
    for (uint32_t id = 100; id < 103; id++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, id);
        ck_assert_int_eq(r.err, PROTO_OK);
    }
    msgpack_sbuffer_destroy(&sb);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* Client-chosen text that reaches the log (hello's client_info) carries no
 * control characters: no terminal escapes, bells or tabs, one line. */
START_TEST(client_text_in_the_log_has_no_control_characters)
{
    static const unsigned char req[] = {0x94, 0x00, 0x01, 0xa5, 'h',  'e',  'l',  'l', 'o',  0x91,
                                        0x81, 0xa4, 'n',  'a',  'm',  'e',  0xac, 'a', 0x1b, '[',
                                        '3',  '1',  'm',  'X',  0x07, '\t', 0x7f, '%', 'n'};
    const char *const args[] = {"-v", "-v", NULL};
    struct th_client *c;
    struct th_reply r;
    char *log, *line, *end;

    th_must_start(&D, args);
    c = th_must_connect(&D);
    ck_assert_int_eq(th_send_raw(c, req, sizeof(req)), TH_OK);
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_int_eq(r.err, PROTO_OK);
    th_close(c);
    th_must_exit_clean(&D);
    log = th_daemon_log(&D);
    ck_assert_ptr_nonnull(log);
    line = strstr(log, "client_info");
    ck_assert_msg(line != NULL, "client_info not logged");
    end = strchr(line, '\n');
    ck_assert_ptr_nonnull(end);
    ck_assert_msg(memmem(line, (size_t)(end - line), "%n", 2) != NULL, "the text was not logged");
    for (const char *p = line; p < end; p++)
        ck_assert_msg((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f,
                      "control byte 0x%02x in the log line", (unsigned char)*p);
    free(log);
    th_daemon_cleanup(&D);
}
END_TEST

/* ---- back-pressure ---- */

/* The bound on the daemon's resident set while gets are pipelined (KiB). */
#define RSS_BOUND_KIB (128 * 1024)

/* Pipelines n gets of len bytes from a 4 MiB arena without reading, checks
 * the daemon's RSS while the client does not read, then reads and checks
 * every byte. Returns the highest RSS seen (KiB). */
static long pipelined_gets(uint32_t len, int n)
{
    enum { FILE_BYTES = 4 << 20 };
    unsigned char *data = malloc(FILE_BYTES);
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;
    long rss, peak = 0;

    th_pattern(data, FILE_BYTES, 3);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    for (size_t off = 0; off < FILE_BYTES; off += 512 << 10)
        th_push(c, w, data + off, 512 << 10);
    a = th_call_u64(c, "into_arena", w);
    for (int i = 0; i < n; i++) {
        uint32_t off = (uint32_t)(((uint64_t)i * 7919u * 4096u) % (FILE_BYTES - len + 1));
        th_queue(c, "get", "uL", a, (struct proto_loc){0, off, len});
    }
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (int i = 0; i < 10; i++) {
        th_sleep_ms(30);
        rss = th_proc_rss_kib(D.pid);
        peak = rss > peak ? rss : peak;
    }
    ck_assert_msg(peak < RSS_BOUND_KIB, "daemon RSS %ld KiB while the client does not read", peak);
    for (int i = 0; i < n; i++) {
        uint32_t off = (uint32_t)(((uint64_t)i * 7919u * 4096u) % (FILE_BYTES - len + 1));
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_uint_eq(r.msgid, (uint32_t)(i + 3 + FILE_BYTES / (512 << 10)));
        th_assert_bytes(r.result, data + off, len);
        if (i % 50 == 0) {
            rss = th_proc_rss_kib(D.pid);
            peak = rss > peak ? rss : peak;
        }
    }
    ck_assert_msg(peak < RSS_BOUND_KIB, "daemon RSS %ld KiB while the client reads", peak);
    th_close(c);
    free(data);
    return peak;
}

/* --reply-memory bounds the replies of all connections together: 24
 * connections each pipeline 12 gets of 1 MiB and read nothing. Without the
 * bound each would queue about 5 MiB (its own high-water mark), 120 MiB in
 * all (measured: 97 MiB); with 4 MiB, 4 MiB plus one reply per connection
 * (a connection with nothing queued always runs one request). Then every
 * reply still arrives, exact, although the client reads one connection
 * after the other: the one it reads resumes as soon as its own replies are
 * out. */
START_TEST(reply_memory_bounds_all_connections)
{
    enum { CONNS = 24, GETS = 12, LEN = 1 << 20, FILE_BYTES = 4 << 20 };
    unsigned char *data = malloc(FILE_BYTES);
    struct th_client *c0, *c[CONNS];
    struct th_reply r;
    long base, rss, peak = 0;
    uint64_t w, a;

    th_pattern(data, FILE_BYTES, 9);
    th_must_start(&D, (const char *const[]){"--reply-memory", "4M", NULL});
    c0 = th_must_connect(&D);
    TH_OK_CALL(c0, &r, "hello", "");
    ck_assert_uint_eq(th_map_u64(th_map_get(r.result, "limits"), "reply_memory"), 4u << 20);
    w = th_writer_new(c0, 0);
    for (size_t off = 0; off < FILE_BYTES; off += LEN)
        th_push(c0, w, data + off, LEN);
    a = th_call_u64(c0, "into_arena", w);
    base = th_proc_rss_kib(D.pid);
    for (int k = 0; k < CONNS; k++) {
        c[k] = th_must_connect(&D);
        for (int i = 0; i < GETS; i++)
            th_queue(c[k], "get", "uL", a, (struct proto_loc){0, (uint32_t)((i % 4) * LEN), LEN});
        ck_assert_int_eq(th_flush(c[k]), TH_OK);
    }
    for (int i = 0; i < 10; i++) {
        th_sleep_ms(30);
        rss = th_proc_rss_kib(D.pid);
        peak = rss > peak ? rss : peak;
    }
    ck_assert_msg(peak - base < 48 * 1024,
                  "daemon RSS grew by %ld KiB (from %ld) while nobody read", peak - base, base);
    for (int k = 0; k < CONNS; k++) {
        for (int i = 0; i < GETS; i++) {
            ck_assert_int_eq(th_recv(c[k], &r), TH_OK);
            ck_assert_msg(r.err == 0, "%s %s", r.code, r.msg);
            th_assert_bytes(r.result, data + (i % 4) * LEN, LEN);
        }
        th_close(c[k]);
    }
    th_close(c0);
    free(data);
    th_must_stop(&D);
}
END_TEST

/* 400 MiB of 1 MiB gets pipelined unread: RSS stays bounded. */
START_TEST(back_pressure_bounds_memory_large_gets)
{
    long peak;

    th_must_start(&D, NULL);
    peak = pipelined_gets(1 << 20, 400); /* 400 MiB, each read into its reply */
    fprintf(stderr, "back-pressure (400 x 1 MiB gets): daemon peak RSS %ld KiB\n", peak);
    ck_assert_int_gt(peak, 0);
    ck_assert_int_lt(peak, RSS_BOUND_KIB);
    th_must_stop(&D);
}
END_TEST

/* 70 MiB of 12 KiB gets pipelined unread: RSS stays bounded. The requests must fit in the
 * socket buffer, since the daemon stops reading them under back-pressure. */
START_TEST(back_pressure_bounds_memory_small_gets)
{
    long peak;

    th_must_start(&D, NULL);
    peak = pipelined_gets(12 << 10, 6000); /* 70 MiB */
    fprintf(stderr, "back-pressure (6000 x 12 KiB gets): daemon peak RSS %ld KiB\n", peak);
    ck_assert_int_gt(peak, 0);
    ck_assert_int_lt(peak, RSS_BOUND_KIB);
    th_must_stop(&D);
}
END_TEST

/* 64 KiB gets far into a file: a reply's memory must be sized by the reply,
 * not by its offset in the file (libevent 2.1 once sized a header queued
 * behind a sendfile segment from the segment's file offset: ~30 MiB per
 * get). The daemon's address-space peak must not move by anything like
 * that. */
START_TEST(far_replies_do_not_inflate_address_space)
{
    enum { FILE_BYTES = 32 << 20, CHUNK = 1 << 20, LEN = 64 << 10, N = 64 };
    unsigned char *data = malloc(CHUNK);
    struct th_client *c;
    struct th_reply r;
    uint64_t w, a;
    long before, after;

    th_pattern(data, CHUNK, 11);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    for (size_t off = 0; off < FILE_BYTES; off += CHUNK)
        th_push(c, w, data, CHUNK);
    a = th_call_u64(c, "into_arena", w);
    /* One round first, so the buffers every connection keeps exist. */
    TH_OK_CALL(c, &r, "get", "uL", a, (struct proto_loc){0, 0, LEN});
    before = th_proc_status_kib(D.pid, "VmPeak");
    for (int i = 0; i < N; i++)
        th_queue(c, "get", "uL", a,
                 (struct proto_loc){0, (uint32_t)(FILE_BYTES - CHUNK + (i % 16) * LEN), LEN});
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_msg(r.err == 0, "get %d: %s %s", i, r.code, r.msg);
        th_assert_bytes(r.result, data + (i % 16) * LEN, LEN);
    }
    after = th_proc_status_kib(D.pid, "VmPeak");
    fprintf(stderr, "64 KiB gets at offset 31 MiB: daemon VmPeak %ld -> %ld KiB\n", before, after);
    ck_assert_int_gt(before, 0);
    ck_assert_msg(after - before < 8 * 1024, "VmPeak grew by %ld KiB", after - before);
    th_close(c);
    free(data);
    th_must_stop(&D);
}
END_TEST

/* A 24 MiB push grows the connection's input buffer to hold it; once the
 * connection stays idle the daemon gives that memory back, so one large
 * request does not pin its size for the connection's life. */
START_TEST(large_request_memory_is_given_back)
{
    enum { BIG = 24 << 20 };
    unsigned char *data = malloc(BIG);
    struct th_client *c;
    long rss = -1, base;
    uint64_t w, start;

    th_pattern(data, BIG, 13);
    th_must_start(&D, NULL);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    base = th_proc_rss_kib(D.pid);
    th_push(c, w, data, BIG);
    /* No request follows (a small one would let the buffer go at once):
     * the idle timer must give it back. */
    start = th_now_ms();
    while (th_now_ms() - start < 5000) {
        rss = th_proc_rss_kib(D.pid);
        if (rss >= 0 && rss < base + 8 * 1024)
            break;
        th_sleep_ms(50);
    }
    fprintf(stderr, "after a 24 MiB push: daemon RSS %ld KiB (%ld before), %.1f s later\n", rss,
            base, (double)(th_now_ms() - start) / 1000.0);
    ck_assert_int_gt(base, 0);
    ck_assert_msg(rss >= 0 && rss < base + 8 * 1024, "daemon RSS %ld KiB, %ld before the push", rss,
                  base);
    th_close(c);
    free(data);
    th_must_stop(&D);
}
END_TEST

/* The input buffer never grows much past max_message: a message just
 * under the limit arriving right behind another large one moves to the
 * buffer's front rather than doubling it (it once reached almost 4x). */
START_TEST(input_buffer_stays_near_max_message)
{
    enum { MAXMSG = 2100 << 10, A = 2090 << 10, B = 2040 << 10 };
    unsigned char *data = malloc(A);
    struct th_client *c;
    struct th_reply r;
    uint64_t w;
    long before, after;

    th_pattern(data, A, 17);
    th_must_start(&D, (const char *const[]){"--max-message", "2100K", NULL});
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    th_push(c, w, data, A);
    before = th_proc_status_kib(D.pid, "VmPeak");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_ge(th_queue(c, "push", "ub", w, data, (size_t)B), 0);
        ck_assert_int_ge(th_queue(c, "push", "ub", w, data, (size_t)A), 0);
        ck_assert_int_eq(th_flush(c), TH_OK);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(th_recv(c, &r), TH_OK);
            ck_assert_msg(r.err == 0, "push: %s %s", r.code, r.msg);
        }
    }
    after = th_proc_status_kib(D.pid, "VmPeak");
    fprintf(stderr, "pushes near max_message (%d KiB): daemon VmPeak %ld -> %ld KiB\n",
            MAXMSG >> 10, before, after);
    ck_assert_int_gt(before, 0);
    ck_assert_msg(after - before < 3 * 1024, "VmPeak grew by %ld KiB", after - before);
    th_close(c);
    free(data);
    th_must_stop(&D);
}
END_TEST

/* ---- quota ---- */

START_TEST(quota_refuses_pushes_and_keeps_old_data)
{
    enum { CHUNK = 300 << 10 };
    unsigned char *chunk = malloc(CHUNK);
    struct th_client *c;
    struct th_reply r;
    struct proto_loc l0, l1, l2;
    uint64_t w, w2, a;

    th_pattern(chunk, CHUNK, 9);
    th_must_start(&D, (const char *const[]){"--max-bytes", "1M", NULL});
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    l0 = th_push(c, w, chunk, CHUNK);
    l1 = th_push(c, w, chunk, CHUNK);
    l2 = th_push(c, w, chunk, CHUNK);
    TH_ERR_CALL(c, &r, "no_space", "push", "ub", w, chunk, (size_t)CHUNK);
    TH_ERR_CALL(c, &r, "no_space", "push_many", "ua", w, 2u, "b", chunk, (size_t)1000, "b", chunk,
                (size_t)CHUNK);
    ck_assert_msg(strstr(r.msg, "item 1") != NULL, "message: %s", r.msg);
    ck_assert_uint_eq(th_call_u64(c, "writer_len", w), 3 * CHUNK + 1000);
    a = th_call_u64(c, "into_arena", w);
    TH_OK_CALL(c, &r, "get", "uL", a, l0);
    th_assert_bytes(r.result, chunk, CHUNK);
    TH_OK_CALL(c, &r, "get", "uL", a, l2);
    th_assert_bytes(r.result, chunk, CHUNK);
    w2 = th_writer_new(c, 0);
    TH_ERR_CALL(c, &r, "no_space", "push", "ub", w2, chunk, (size_t)CHUNK);
    /* Releasing the arena gives the space back. */
    TH_OK_CALL(c, &r, "release", "u", a);
    th_push(c, w2, chunk, CHUNK);
    (void)l1;
    th_close(c);
    free(chunk);
    th_must_stop(&D);
}
END_TEST

/* ---- max_clients ---- */

START_TEST(max_clients_refuses_with_limit)
{
    struct th_client *c1, *c2, *c3, *c4;
    struct th_reply r;

    th_must_start(&D, (const char *const[]){"--max-clients", "2", NULL});
    c1 = th_must_connect(&D);
    TH_OK_CALL(c1, &r, "hello", "");
    c2 = th_must_connect(&D);
    TH_OK_CALL(c2, &r, "hello", "");
    c3 = th_must_connect(&D);
    ck_assert_int_eq(th_recv(c3, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, 0);
    ck_assert_str_eq(r.code, "limit");
    ck_assert_str_eq(r.msg, "too many clients");
    ck_assert_msg(r.result != NULL && r.result->type == MSGPACK_OBJECT_NIL, "result not nil");
    ck_assert_int_eq(th_wait_eof(c3, &r), TH_EOF);
    th_close(c3);
    TH_OK_CALL(c1, &r, "hello", "");
    TH_OK_CALL(c2, &r, "hello", "");
    th_close(c1);
    ck_assert_int_eq(th_wait_stat(c2, "connections", 1, TH_TIMEOUT_MS), 0);
    c4 = th_must_connect(&D);
    TH_OK_CALL(c4, &r, "hello", "");
    th_close(c4);
    th_close(c2);
    th_must_stop(&D);
}
END_TEST

/* ---- descriptor exhaustion ---- */

START_TEST(emfile_pauses_accepting_without_spinning)
{
    enum { FLOOD = 120 };
    const char *const args[] = {NULL};
    struct th_opts o = {.args = args, .nofile = 48};
    struct th_client *flood[FLOOD], *c = NULL;
    struct th_reply r;
    long t0, t1;
    int n = 0;
    char *log;

    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    for (int i = 0; i < FLOOD; i++) {
        flood[n] = th_connect(D.sock, 1000);
        if (flood[n] != NULL)
            n++;
    }
    ck_assert_int_gt(n, 48);
    th_sleep_ms(200);
    t0 = th_proc_cpu_ticks(D.pid);
    th_sleep_ms(1000);
    t1 = th_proc_cpu_ticks(D.pid);
    ck_assert(th_daemon_alive(&D));
    ck_assert_msg(t1 - t0 < 20, "daemon used %ld ticks in 1 s while out of descriptors", t1 - t0);
    log = th_daemon_log(&D);
    ck_assert_msg(log != NULL && strstr(log, "accept:") != NULL, "no accept warning logged");
    free(log);
    for (int i = 0; i < n; i++)
        th_close(flood[i]);
    /* Serves again once descriptors are free. */
    uint64_t end = th_deadline(TH_TIMEOUT_MS);
    while (th_ms_left(end) > 0) {
        c = th_connect(D.sock, 1000);
        if (c != NULL) {
            th_set_timeout(c, 2000);
            if (th_call(c, &r, "hello", "") == TH_OK && r.err == PROTO_OK)
                break;
            th_close(c);
            c = NULL;
        }
        th_sleep_ms(20);
    }
    ck_assert_msg(c != NULL, "the daemon did not serve again");
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* ---- peers of another uid ---- */

START_TEST(other_uid_is_refused)
{
    struct th_client *mine;
    struct th_reply r;
    char parent[sizeof(D.dir)];
    pid_t kid;
    int ws;
    char *log;

    th_must_start(&D, NULL);
    /* Let uid 65534 reach the socket at all; the daemon must refuse it. */
    snprintf(parent, sizeof(parent), "%s", D.dir);
    *strrchr(parent, '/') = '\0';
    ck_assert_int_eq(chmod(parent, 0711), 0);
    ck_assert_int_eq(chmod(D.dir, 0711), 0);
    ck_assert_int_eq(chmod(D.sock, 0777), 0);
    kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        struct th_client *c;
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(3);
        c = th_connect(D.sock, 2000);
        if (c == NULL)
            _exit(4);
        th_set_timeout(c, 5000);
        _exit(th_wait_eof(c, &r) == TH_EOF ? 0 : 5);
    }
    ck_assert_int_eq(waitpid(kid, &ws, 0), kid);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "uid 65534 was not refused (%d)", ws);
    log = th_daemon_log(&D);
    ck_assert_msg(log != NULL && strstr(log, "uid 65534") != NULL, "refusal not logged");
    free(log);
    mine = th_must_connect(&D);
    TH_OK_CALL(mine, &r, "hello", "");
    th_close(mine);
    th_must_stop(&D);
}
END_TEST

/* The guards suite. */
static Suite *guards_suite(void)
{
    Suite *s = suite_create("guards");
    TCase *tc;

    tc = tcase_create("connections");
    tcase_add_test(tc, disconnect_releases_every_descriptor);
    tcase_add_test(tc, two_thousand_pipelined_requests);
    tcase_add_test(tc, pipelined_reads_after_other_replies_answer_once);
    tcase_add_test(tc, byte_at_a_time_requests_are_framed);
    tcase_add_test(tc, max_clients_refuses_with_limit);
    tcase_add_test(tc, emfile_pauses_accepting_without_spinning);
    if (geteuid() == 0)
        tcase_add_test(tc, other_uid_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("input");
    tcase_add_test(tc, hostile_input_closes_only_that_connection);
    tcase_add_test(tc, push_over_max_message_is_refused_early);
    tcase_add_test(tc, client_text_in_the_log_has_no_control_characters);
    suite_add_tcase(s, tc);

    tc = tcase_create("resources");
    tcase_add_test(tc, back_pressure_bounds_memory_large_gets);
    tcase_add_test(tc, reply_memory_bounds_all_connections);
    tcase_add_test(tc, back_pressure_bounds_memory_small_gets);
    tcase_add_test(tc, far_replies_do_not_inflate_address_space);
    tcase_add_test(tc, large_request_memory_is_given_back);
    tcase_add_test(tc, input_buffer_stays_near_max_message);
    tcase_add_test(tc, quota_refuses_pushes_and_keeps_old_data);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite; exit status 0 when every test passed. */
int main(void)
{
    return th_run_suite(guards_suite());
}
