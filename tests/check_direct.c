/* check_direct: direct reads. The arena_fds method as a stock client sees
 * it (descriptors, sizes, the reference it takes, bad params), and
 * libfarena reading held arenas through those descriptors: the same bytes,
 * codes and messages as the daemon path, reads after the builder let go,
 * 16 threads on one farena_reader, a process at its descriptor limit, more
 * files than the descriptor budget, fork, and read-only descriptors.
 *
 * CTest runs this suite twice: as is (direct reads on) and with
 * FARENA_DIRECT=0, where every test must still pass with the daemon path
 * serving (tests say what differs, e.g. how many descriptors are held).
 * It shares check_client's helpers (client_test.c). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <msgpack.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "th_check.h"
#include "proto_codec.h"

/* Byte k of the deterministic payload i. */
static uint8_t pattern(size_t i, size_t k)
{
    return (uint8_t)(i * 131u + k * 7u + (k >> 8));
}

/* The length of payload i: 0..300 bytes, some empty. */
static size_t pattern_len(size_t i)
{
    return (i * 37u) % 301u;
}

/* Builds an arena of nfiles files holding n payloads (payload i in file
 * i % nfiles) on c, storing their locations in locs. Returns the arena. */
static farena_handle build_arena(farena_client *c, unsigned nfiles, size_t n, farena_loc *locs)
{
    farena_handle *w = calloc(nfiles, sizeof(*w)), *f = calloc(nfiles, sizeof(*f)), arena;
    uint8_t buf[512];

    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(f);
    for (unsigned i = 0; i < nfiles; i++)
        OK(c, farena_writer_new(c, (uint16_t)i, &w[i]));
    for (size_t i = 0; i < n; i++) {
        size_t len = pattern_len(i);
        for (size_t k = 0; k < len; k++)
            buf[k] = pattern(i, k);
        OK(c, farena_push(c, w[i % nfiles], buf, len, &locs[i]));
    }
    for (unsigned i = 0; i < nfiles; i++)
        OK(c, farena_finish(c, w[i], &f[i]));
    OK(c, farena_build(c, f, nfiles, &arena));
    /* The files' handles go: the arena holds them now. */
    for (unsigned i = 0; i < nfiles; i++)
        OK(c, farena_release(c, f[i]));
    free(w);
    free(f);
    return arena;
}

/* Checks that the len bytes at p are payload i. */
static int payload_ok(size_t i, const uint8_t *p, size_t len)
{
    if (len != pattern_len(i))
        return 0;
    for (size_t k = 0; k < len; k++)
        if (p[k] != pattern(i, k))
            return 0;
    return 1;
}

/* How many of this process's descriptors are open files in the daemon's
 * scratch directory (what direct reads hold). */
static int scratch_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], target[512];
        ssize_t len;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, dmn.scratch, strlen(dmn.scratch)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ---- arena_fds as a stock client sees it ---- */

/* One recvmsg of up to len bytes into buf with room for any descriptors:
 * they are appended to fds (*nfds of cap used; any beyond cap are closed).
 * Fails the test on an error, an end of stream or truncated control data.
 * Returns the bytes read. */
static ssize_t recv_fds(int s, void *buf, size_t len, int *fds, size_t cap, size_t *nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 253)];
    } u;
    struct iovec iov = {buf, len};
    struct msghdr mh;
    ssize_t r;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    r = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
    ck_assert_int_gt(r, 0);
    ck_assert_int_eq(mh.msg_flags & MSG_CTRUNC, 0);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

        ck_assert_int_eq(cm->cmsg_type, SCM_RIGHTS);
        for (size_t j = 0; j < k; j++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
            if (*nfds < cap)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    return r;
}

/* Sends arena_fds [arena, [idx...]] on a fresh connection to the test's
 * daemon and receives the reply with recvmsg: *fds gets the descriptors
 * (at most cap, *nfds of them), the decoded reply goes to *out (the caller
 * destroys it). The connection is closed before returning unless keep is
 * non-NULL (then *keep is its descriptor). */
static void raw_arena_fds(uint64_t arena, const uint16_t *idx, size_t n, int *fds, size_t cap,
                          size_t *nfds, msgpack_unpacked *out, int *keep)
{
    struct sockaddr_un sa;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char in[65536];
    size_t have = 0, off = 0;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(s, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(dmn.sock), sizeof(sa.sun_path));
    memcpy(sa.sun_path, dmn.sock, strlen(dmn.sock) + 1);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str(&pk, 9);
    msgpack_pack_str_body(&pk, "arena_fds", 9);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, arena);
    msgpack_pack_array(&pk, n);
    for (size_t k = 0; k < n; k++)
        msgpack_pack_uint16(&pk, idx[k]);
    ck_assert_int_eq(send(s, sb.data, sb.size, MSG_NOSIGNAL), (ssize_t)sb.size);
    msgpack_sbuffer_destroy(&sb);
    *nfds = 0;
    msgpack_unpacked_init(out);
    for (;;) {
        ssize_t r = recv_fds(s, in + have, sizeof(in) - have, fds, cap, nfds);

        have += (size_t)r;
        off = 0;
        if (msgpack_unpack_next(out, in, have, &off) == MSGPACK_UNPACK_SUCCESS)
            break;
    }
    ck_assert_uint_eq(off, have);
    if (keep != NULL)
        *keep = s;
    else
        close(s);
}

/* The arena's reference count, through a fresh harness connection. */
static uint64_t arena_refs(uint64_t arena)
{
    struct th_client *t = th_must_connect(&dmn);
    struct th_reply r;
    uint64_t refs;

    TH_OK_CALL(t, &r, "arena_info", "u", arena);
    refs = th_map_u64(r.result, "refs");
    th_close(t);
    return refs;
}

/* arena_fds passes read-only, close-on-exec descriptors of the files asked
 * for, in order, with [files, [[index, size], ...]], and takes a reference
 * that release (or disconnect) drops. A write or truncate through a
 * descriptor fails. */
START_TEST(arena_fds_stock_client)
{
    static const uint16_t idx[] = {1, 0, 1};
    farena_loc locs[10];
    msgpack_unpacked res;
    msgpack_object *r, *files;
    int fds[8], keep;
    size_t nfds;
    farena_handle arena;
    farena_client *c;
    char b[8];

    start(NULL);
    c = conn();
    arena = build_arena(c, 2, 10, locs);
    raw_arena_fds(arena, idx, 3, fds, 8, &nfds, &res, &keep);
    ck_assert_uint_eq(nfds, 3);
    r = &res.data;
    ck_assert_int_eq(r->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_int_eq(r->via.array.ptr[2].type, MSGPACK_OBJECT_NIL);
    r = &r->via.array.ptr[3];
    ck_assert_uint_eq(r->via.array.size, 2);
    ck_assert_uint_eq(r->via.array.ptr[0].via.u64, 2);
    files = &r->via.array.ptr[1];
    ck_assert_uint_eq(files->via.array.size, 3);
    for (size_t k = 0; k < 3; k++) {
        const msgpack_object *pair = files->via.array.ptr[k].via.array.ptr;
        struct stat st;
        uint64_t size = 0;
        ck_assert_uint_eq(pair[0].via.u64, idx[k]);
        for (size_t i = idx[k]; i < 10; i += 2)
            size += pattern_len(i);
        ck_assert_uint_eq(pair[1].via.u64, size);
        ck_assert_int_eq(fstat(fds[k], &st), 0);
        ck_assert_uint_eq((uint64_t)st.st_size, size);
        ck_assert_int_eq(fcntl(fds[k], F_GETFL) & O_ACCMODE, O_RDONLY);
        ck_assert_int_ne(fcntl(fds[k], F_GETFD) & FD_CLOEXEC, 0);
        ck_assert_int_eq(write(fds[k], "x", 1), -1);
        ck_assert_int_eq(errno, EBADF);
        ck_assert_int_eq(pwrite(fds[k], "x", 1, 0), -1);
        ck_assert_int_ne(ftruncate(fds[k], 0), 0);
    }
    /* Payload 3 lives in file 1 at locs[3]. */
    ck_assert_int_eq(pread(fds[0], b, 8, locs[3].offset), 8);
    for (size_t k = 0; k < 8; k++)
        ck_assert_uint_eq((uint8_t)b[k], pattern(3, k));
    msgpack_unpacked_destroy(&res);
    /* The builder's reference and arena_fds's. */
    ck_assert_uint_eq(arena_refs(arena), 2);
    close(keep); /* disconnect drops it */
    for (int i = 0; i < 100 && arena_refs(arena) != 1; i++)
        th_sleep_ms(10);
    ck_assert_uint_eq(arena_refs(arena), 1);
    /* The descriptors outlive it; the builder's reference keeps the file. */
    ck_assert_int_eq(pread(fds[2], b, 8, locs[3].offset), 8);
    for (size_t k = 0; k < 3; k++)
        close(fds[k]);
    farena_close(c);
}
END_TEST

/* Bad params, unknown arenas, indices out of the arena, too many indices:
 * errors, no descriptor and no reference. A stock client reading with
 * plain recv() loses the descriptors (the kernel closes them) and nothing
 * else; the daemon keeps no descriptor for it. A notification takes
 * nothing. */
START_TEST(arena_fds_errors_and_plain_recv)
{
    static uint64_t many[254];
    struct th_client *t;
    struct th_reply r;
    farena_loc locs[4];
    farena_handle arena;
    farena_client *c;
    int before;

    start(NULL);
    c = conn();
    arena = build_arena(c, 2, 4, locs);
    t = th_must_connect(&dmn);
    TH_ERR_CALL(t, &r, "bad_request", "arena_fds", "u", arena);
    TH_ERR_CALL(t, &r, "bad_request", "arena_fds", "us", arena, "x");
    TH_ERR_CALL(t, &r, "bad_request", "arena_fds", "uU", arena, (uint64_t[]){65536}, (size_t)1);
    TH_ERR_CALL(t, &r, "no_such_handle", "arena_fds", "uU", (uint64_t)999, many, (size_t)1);
    TH_ERR_CALL(t, &r, "out_of_bounds", "arena_fds", "uU", arena, (uint64_t[]){0, 2}, (size_t)2);
    ck_assert_str_eq(r.msg, "item 1: file index 2 is not in the arena (2 files)");
    TH_ERR_CALL(t, &r, "too_large", "arena_fds", "uU", arena, many, (size_t)254);
    ck_assert_uint_eq(arena_refs(arena), 1);
    ck_assert_int_eq(th_queue_notify(t, "arena_fds", "uU", arena, many, (size_t)2), 0);
    ck_assert_int_eq(th_flush(t), TH_OK);
    /* The harness reads with recv(): the descriptors are dropped. */
    before = th_proc_fd_count(dmn.pid);
    for (int i = 0; i < 20; i++) {
        TH_OK_CALL(t, &r, "arena_fds", "uU", arena, many, (size_t)2);
        ck_assert_uint_eq(r.result->via.array.ptr[0].via.u64, 2);
    }
    ck_assert_int_le(th_proc_fd_count(dmn.pid), before);
    ck_assert_uint_eq(arena_refs(arena), 21);
    for (int i = 0; i < 20; i++)
        TH_OK_CALL(t, &r, "release", "u", arena);
    ck_assert_uint_eq(arena_refs(arena), 1);
    /* An empty list takes the reference and reports the file count. */
    TH_OK_CALL(t, &r, "arena_fds", "uU", arena, many, (size_t)0);
    ck_assert_uint_eq(r.result->via.array.ptr[0].via.u64, 2);
    ck_assert_uint_eq(r.result->via.array.ptr[1].via.array.size, 0);
    ck_assert_uint_eq(arena_refs(arena), 2);
    th_close(t);
    farena_close(c);
    th_must_stop(&dmn);
}
END_TEST

/* Descriptors ride on the first byte of their own response even when the
 * daemon must wait for the socket: arena_fds requests pipelined between
 * 2 MiB gets (sent with sendfile) on a client that reads nothing for a
 * while; every batch arrives as the last byte of a read, which is the first
 * byte of an arena_fds answer, and holds the file that answer names. */
START_TEST(arena_fds_behind_large_replies)
{
    enum { ROUNDS = 12, BIG = 2 << 20 };
    static uint8_t in[ROUNDS * (BIG + 64) + 4096];
    uint64_t pos[ROUNDS * 2];
    int fds[ROUNDS * 2];
    size_t nb = 0, have = 0, off = 0, matched = 0;
    struct sockaddr_un sa;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    farena_handle w0, w1, f[2], arena;
    farena_loc big, small;
    farena_client *c;
    uint8_t *payload = calloc(1, BIG);
    int s;

    ck_assert_ptr_nonnull(payload);
    start(NULL);
    c = conn();
    OK(c, farena_writer_new(c, 0, &w0));
    OK(c, farena_push(c, w0, payload, BIG, &big));
    OK(c, farena_writer_new(c, 1, &w1));
    OK(c, farena_push(c, w1, "small", 5, &small));
    OK(c, farena_finish(c, w0, &f[0]));
    OK(c, farena_finish(c, w1, &f[1]));
    OK(c, farena_build(c, f, 2, &arena));
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, dmn.sock, strlen(dmn.sock) + 1);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (uint32_t k = 0; k < ROUNDS; k++) {
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_uint32(&pk, 2 * k + 2); /* even: get */
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "get", 3);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, arena);
        proto_pack_loc(&pk, (struct proto_loc){0, 0, BIG});
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_uint32(&pk, 2 * k + 3); /* odd: arena_fds of file k % 2 */
        msgpack_pack_str(&pk, 9);
        msgpack_pack_str_body(&pk, "arena_fds", 9);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, arena);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_uint16(&pk, (uint16_t)(k % 2));
    }
    ck_assert_int_eq(send(s, sb.data, sb.size, MSG_NOSIGNAL), (ssize_t)sb.size);
    msgpack_sbuffer_destroy(&sb);
    th_sleep_ms(200); /* the daemon meets a full socket */
    while (matched < ROUNDS) {
        size_t before = nb;
        ssize_t r = recv_fds(s, in + have, sizeof(in) - have, fds, ROUNDS * 2, &nb);

        /* Each descriptor rides alone on its answer's first byte, which
         * ends the read that brings it. */
        ck_assert_uint_le(nb - before, 1);
        if (nb > before)
            pos[before] = have + (size_t)r - 1;
        have += (size_t)r;
        /* Check the answers completed by this read. */
        for (;;) {
            msgpack_unpacked m;
            size_t at = off, next = off;
            msgpack_unpacked_init(&m);
            if (msgpack_unpack_next(&m, (const char *)in, have, &next) != MSGPACK_UNPACK_SUCCESS) {
                msgpack_unpacked_destroy(&m);
                break;
            }
            off = next;
            if (m.data.via.array.ptr[1].via.u64 % 2 == 1) {
                uint32_t k = (uint32_t)(m.data.via.array.ptr[1].via.u64 - 3) / 2;
                struct stat st;
                ck_assert_int_eq(m.data.via.array.ptr[2].type, MSGPACK_OBJECT_NIL);
                ck_assert_uint_lt(matched, nb);
                ck_assert_uint_eq(pos[matched], at);
                ck_assert_int_eq(fstat(fds[matched], &st), 0);
                ck_assert_int_eq(st.st_size, k % 2 ? 5 : BIG);
                matched++;
            }
            msgpack_unpacked_destroy(&m);
        }
    }
    ck_assert_uint_eq(nb, ROUNDS);
    for (size_t i = 0; i < nb; i++)
        close(fds[i]);
    close(s);
    free(payload);
    farena_close(c);
    th_must_stop(&dmn);
}
END_TEST

/* ---- libfarena: same answers both ways ---- */

/* Every get, get_str and get_many of a held arena gives the same bytes,
 * codes and messages with direct reads as through the daemon; in direct
 * mode no get reaches the daemon. */
START_TEST(same_answers_as_daemon_path)
{
    enum { N = 400 };
    static farena_loc locs[N];
    farena_buf a = FARENA_BUF_INIT, b = FARENA_BUF_INIT;
    farena_client *c, *d;
    farena_handle arena;
    farena_loc bad[] = {
        {3, 0, 0},          /* file index not in the arena */
        {0, 0, 1u << 20},   /* past the end */
        {1, UINT32_MAX, 1}, /* offset + len wraps 32 bits */
        {2, 1u << 20, 0},   /* empty, past the end */
    };
    static const uint8_t bad_utf8[] = {0xc3, 0x28};
    farena_handle w, a2;
    farena_loc text;
    uint64_t gets;

    start(NULL);
    c = conn();
    d = conn_opts(0, 0);
    arena = build_arena(c, 3, N, locs);
    OK(d, farena_open(d, arena));
    for (size_t i = 0; i < N; i++) {
        farena_buf_clear(&a);
        farena_buf_clear(&b);
        OK(c, farena_get_into(c, arena, locs[i], &a));
        OK(d, farena_get_into(d, arena, locs[i], &b));
        ck_assert_uint_eq(a.len, b.len);
        ck_assert_msg(payload_ok(i, a.data, a.len), "payload %zu differs", i);
        ck_assert(a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
        OK(c, farena_get_str_into_unchecked(c, arena, locs[i], &a));
    }
    /* The end of a file is a valid empty location. */
    farena_buf_clear(&a);
    OK(c, farena_get_into(
              c, arena,
              (farena_loc){locs[N - 1].file_index, locs[N - 1].offset + locs[N - 1].len, 0}, &a));
    ck_assert_uint_eq(a.len, 0);
    /* In direct mode the gets of c never reach the daemon. */
    gets = method_count(c, "get", 0);
    for (size_t i = 0; i < N; i++)
        OK(c, farena_get_into(c, arena, locs[i], &a));
    ck_assert_uint_eq(method_count(c, "get", 0), gets + (direct_mode() ? 0 : N));
    ck_assert_uint_eq(method_count(c, "arena_fds", 0) > 0, direct_mode());
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char msg[320];
        farena_buf_clear(&a);
        OK(c, farena_buf_reserve(&a, 3));
        memcpy(a.data, "ab", 3);
        a.len = 2;
        FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_into(c, arena, bad[k], &a));
        snprintf(msg, sizeof(msg), "%s", farena_errmsg(c));
        FAILS(d, FARENA_EOUTOFBOUNDS, farena_get_into(d, arena, bad[k], &b));
        ck_assert_str_eq(msg, farena_errmsg(d));
        ck_assert_uint_eq(a.len, 2);
        ck_assert_str_eq((char *)a.data, "ab");
        FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_str_into(c, arena, bad[k], &a));
    }
    /* get_many: all, then with a bad item 250 (same message, buf kept). */
    farena_buf_clear(&a);
    farena_buf_clear(&b);
    OK(c, farena_get_many_into(c, arena, locs, N, &a));
    OK(d, farena_get_many_into(d, arena, locs, N, &b));
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_int_eq(memcmp(a.data, b.data, a.len), 0);
    {
        static farena_loc mixed[N];
        char msg[320];
        size_t keep = a.len;
        memcpy(mixed, locs, sizeof(mixed));
        mixed[250] = bad[1];
        mixed[300] = bad[0];
        FAILS(c, FARENA_EOUTOFBOUNDS, farena_get_many_into(c, arena, mixed, N, &a));
        snprintf(msg, sizeof(msg), "%s", farena_errmsg(c));
        FAILS(d, FARENA_EOUTOFBOUNDS, farena_get_many_into(d, arena, mixed, N, &b));
        ck_assert_str_eq(msg, farena_errmsg(d));
        ck_assert_msg(strncmp(msg, "item 250: ", 10) == 0, "%s", msg);
        ck_assert_uint_eq(a.len, keep);
        ck_assert_int_eq(a.data[a.len], 0);
    }
    /* UTF-8 checks. */
    OK(c, farena_writer_new(c, 0, &w));
    OK(c, farena_push(c, w, bad_utf8, 2, &text));
    OK(c, farena_into_arena(c, w, &a2));
    FAILS(c, FARENA_EUTF8, farena_get_str_into(c, a2, text, &a));
    OK(c, farena_get_str_into_unchecked(c, a2, text, &a));
    /* A handle that is not an arena, and a released arena. */
    FAILS(c, FARENA_ENOSUCHHANDLE, farena_get_into(c, 999, locs[0], &a));
    OK(c, farena_release(c, a2));
    FAILS(c, FARENA_ENOSUCHHANDLE, farena_get_into(c, a2, text, &a));
    /* The reference arena_fds took went back: refs is what it was. */
    ck_assert_uint_eq(arena_refs(arena), 2);
    farena_buf_free(&a);
    farena_buf_free(&b);
    farena_close(d);
    farena_close(c);
    th_must_stop(&dmn); /* exits 0: under ASan, no leak either */
}
END_TEST

/* A second client holding the arena reads it after the builder released
 * its reference and closed; releasing the last reference closes the
 * descriptors and the arena goes. A client that does not hold an arena
 * reads it through the daemon. */
START_TEST(reads_after_builder_releases)
{
    enum { N = 50 };
    farena_loc locs[N];
    farena_buf buf = FARENA_BUF_INIT;
    farena_client *a, *b, *other;
    farena_handle arena;
    struct farena_stat st;
    uint64_t gets;

    start(NULL);
    a = conn();
    b = conn();
    other = conn();
    arena = build_arena(a, 2, N, locs);
    OK(b, farena_open(b, arena));
    OK(b, farena_get_into(b, arena, locs[1], &buf));
    OK(a, farena_release(a, arena));
    farena_close(a);
    ck_assert_uint_eq(arena_refs(arena), 1);
    for (size_t i = 0; i < N; i++) {
        farena_buf_clear(&buf);
        OK(b, farena_get_into(b, arena, locs[i], &buf));
        ck_assert(payload_ok(i, buf.data, buf.len));
    }
    ck_assert_int_eq(scratch_fds(), direct_mode() ? 2 : 0);
    /* other does not hold it: the daemon serves it. */
    gets = method_count(other, "get", 0);
    farena_buf_clear(&buf);
    OK(other, farena_get_into(other, arena, locs[3], &buf));
    ck_assert(payload_ok(3, buf.data, buf.len));
    ck_assert_uint_eq(method_count(other, "get", 0), gets + 1);
    /* Open twice, release twice: descriptors go with the last one. */
    OK(b, farena_open(b, arena));
    OK(b, farena_release(b, arena));
    ck_assert_int_eq(scratch_fds(), direct_mode() ? 2 : 0);
    OK(b, farena_release(b, arena));
    ck_assert_int_eq(scratch_fds(), 0);
    FAILS(b, FARENA_ENOSUCHHANDLE, farena_get_into(b, arena, locs[0], &buf));
    OK(b, farena_stat(b, &st));
    ck_assert_uint_eq(st.arenas, 0);
    ck_assert_uint_eq(st.files, 0);
    farena_buf_free(&buf);
    farena_close(b);
    farena_close(other);
}
END_TEST

/* More files than the descriptor budget: every file reads correctly, no
 * more than the budget is held; past it the daemon serves. */
START_TEST(more_files_than_budget)
{
    enum { FILES = 40, N = 400, BUDGET = 8 };
    static farena_loc locs[N];
    farena_buf buf = FARENA_BUF_INIT;
    farena_client *c;
    farena_handle arena;

    start(NULL);
    c = conn_opts(1, BUDGET);
    arena = build_arena(c, FILES, N, locs);
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < N; i++) {
            farena_buf_clear(&buf);
            OK(c, farena_get_into(c, arena, locs[i], &buf));
            ck_assert_msg(payload_ok(i, buf.data, buf.len), "payload %zu", i);
            ck_assert_int_le(scratch_fds(), BUDGET);
        }
    farena_buf_clear(&buf);
    OK(c, farena_get_many_into(c, arena, locs, N, &buf));
    for (size_t i = 0, at = 0; i < N; at += locs[i].len, i++)
        ck_assert(payload_ok(i, buf.data + at, locs[i].len));
    ck_assert_int_eq(scratch_fds(), direct_mode() ? BUDGET : 0);
    /* The default budget with more files than it: 300 files. */
    farena_close(c);
    c = conn();
    {
        enum { BIG = 300 };
        static farena_loc many[BIG];
        farena_handle big = build_arena(c, BIG, BIG, many);
        farena_buf_clear(&buf);
        OK(c, farena_get_many_into(c, big, many, BIG, &buf));
        for (size_t i = 0, at = 0; i < BIG; at += many[i].len, i++)
            ck_assert(payload_ok(i, buf.data + at, many[i].len));
        for (size_t i = 0; i < BIG; i++) {
            farena_buf_clear(&buf);
            OK(c, farena_get_into(c, big, many[i], &buf));
            ck_assert(payload_ok(i, buf.data, buf.len));
        }
        ck_assert_int_le(scratch_fds(), FARENA_DIRECT_FDS_DEFAULT);
    }
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* For a forked child (no Check assertions there): whether every get of
 * locs[0..n) on k reads back its payload. */
static int child_gets_ok(farena_client *k, farena_handle arena, const farena_loc *locs, size_t n,
                         farena_buf *buf)
{
    for (size_t i = 0; i < n; i++) {
        farena_buf_clear(buf);
        if (farena_get_into(k, arena, locs[i], buf) != 0 || !payload_ok(i, buf->data, buf->len))
            return 0;
    }
    return 1;
}

/* A process at its descriptor limit: the kernel cannot install the
 * descriptors (MSG_CTRUNC), the daemon path serves every get, nothing
 * leaks, and reads go on once descriptors are free again. Runs in a forked
 * child (setrlimit). */
START_TEST(emfile_falls_back)
{
    enum { N = 60, FILES = 3 };
    farena_loc locs[N];
    farena_client *c;
    farena_handle arena;
    pid_t pid;

    start(NULL);
    c = conn();
    arena = build_arena(c, FILES, N, locs);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        farena_buf buf = FARENA_BUF_INIT;
        struct rlimit rl = {64, 64};
        farena_client *k = NULL;
        int fill[64], nfill = 0, bad = 0;

        farena_close(c); /* the parent's: frees memory only */
        if (farena_connect(dmn.sock, &k) != 0 || farena_open(k, arena) != 0 ||
            setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(10);
        while (nfill < 64 && (fill[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
            nfill++;
        if (nfill == 64 || errno != EMFILE)
            _exit(11);
        if (!child_gets_ok(k, arena, locs, N, &buf))
            bad++;
        farena_buf_clear(&buf);
        if (farena_get_many_into(k, arena, locs, N, &buf) != 0)
            bad++;
        if (bad)
            _exit(12);
        while (nfill > 0)
            close(fill[--nfill]);
        if (scratch_fds() != 0)
            _exit(13); /* nothing was received, nothing leaked */
        if (!child_gets_ok(k, arena, locs, N, &buf))
            _exit(14);
        farena_buf_free(&buf);
        farena_close(k);
        _exit(0);
    }
    ck_assert_int_eq(th_wait_child(pid, 30000), 0);
    farena_close(c);
}
END_TEST

/* After fork() the child's client and reader refuse every call (EFORK)
 * without touching the parent's descriptors; the child connects its own
 * client and reads directly; the parent reads on. */
START_TEST(fork_rule)
{
    enum { N = 20 };
    farena_loc locs[N];
    farena_buf buf = FARENA_BUF_INIT;
    farena_reader *r;
    farena_client *c;
    farena_handle arena;
    pid_t pid;

    start(NULL);
    c = conn();
    arena = build_arena(c, 2, N, locs);
    OK(c, farena_get_into(c, arena, locs[0], &buf));
    OK(c, farena_reader_open(c, arena, &r));
    OK(c, farena_reader_get_into(r, locs[1], &buf));
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        farena_client *k = NULL;
        farena_buf kb = FARENA_BUF_INIT;
        if (farena_get_into(c, arena, locs[0], &kb) != FARENA_EFORK ||
            farena_get_many_into(c, arena, locs, N, &kb) != FARENA_EFORK ||
            farena_reader_get_into(r, locs[0], &kb) != FARENA_EFORK ||
            farena_reader_get_many_into(r, locs, N, &kb) != FARENA_EFORK || kb.len != 0)
            _exit(10);
        farena_reader_close(r);
        farena_close(c);
        if (farena_connect(dmn.sock, &k) != 0 || farena_open(k, arena) != 0)
            _exit(11);
        if (!child_gets_ok(k, arena, locs, N, &kb))
            _exit(12);
        farena_buf_free(&kb);
        farena_close(k);
        _exit(0);
    }
    ck_assert_int_eq(th_wait_child(pid, 30000), 0);
    for (size_t i = 0; i < N; i++) {
        farena_buf_clear(&buf);
        OK(c, farena_get_into(c, arena, locs[i], &buf));
        ck_assert(payload_ok(i, buf.data, buf.len));
        farena_buf_clear(&buf);
        OK(c, farena_reader_get_into(r, locs[i], &buf));
        ck_assert(payload_ok(i, buf.data, buf.len));
    }
    farena_reader_close(r);
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* A held arena whose descriptors were fetched stays readable directly
 * after the daemon died (the files live while a descriptor does); through
 * the daemon the same get is ECONNLOST. */
START_TEST(daemon_gone_descriptors_stay)
{
    farena_loc locs[4];
    farena_buf buf = FARENA_BUF_INIT;
    farena_client *c;
    farena_handle arena;
    struct farena_stat st;

    start(NULL);
    c = conn();
    arena = build_arena(c, 1, 4, locs);
    OK(c, farena_get_into(c, arena, locs[0], &buf));
    kill(dmn.pid, SIGKILL);
    /* Killed on purpose: reaped here, so the teardown has nothing to check. */
    ck_assert_int_eq(th_daemon_stop(&dmn), 128 + SIGKILL);
    th_daemon_cleanup(&dmn);
    memset(&dmn, 0, sizeof(dmn));
    farena_buf_clear(&buf);
    if (direct_mode()) {
        OK(c, farena_get_into(c, arena, locs[1], &buf));
        ck_assert(payload_ok(1, buf.data, buf.len));
    } else {
        FAILS(c, FARENA_ECONNLOST, farena_get_into(c, arena, locs[1], &buf));
    }
    FAILS(c, FARENA_ECONNLOST, farena_stat(c, &st));
    farena_buf_free(&buf);
    farena_close(c);
}
END_TEST

/* farena_direct_file gives bindings the descriptor and size of a held
 * arena's file (1), or says to use the get functions (0). */
START_TEST(direct_file_for_bindings)
{
    farena_loc locs[6];
    farena_client *c, *other;
    farena_handle arena;
    uint64_t size = 0;
    uint8_t b[300];
    int fd = -1;

    start(NULL);
    c = conn();
    other = conn();
    arena = build_arena(c, 2, 6, locs);
    ck_assert_int_eq(farena_direct_file(c, arena, 1, &fd, &size), direct_mode());
    if (direct_mode()) {
        ck_assert_uint_eq(size, pattern_len(1) + pattern_len(3) + pattern_len(5));
        ck_assert_int_eq(pread(fd, b, locs[3].len, locs[3].offset), (ssize_t)locs[3].len);
        ck_assert(payload_ok(3, b, locs[3].len));
        /* What libfarena received: read-only and close-on-exec. */
        ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
        ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
        ck_assert_int_eq(pwrite(fd, "x", 1, 0), -1);
        ck_assert_int_ne(ftruncate(fd, 0), 0);
    }
    ck_assert_int_eq(farena_direct_file(c, arena, 2, &fd, &size), 0);     /* not in the arena */
    ck_assert_int_eq(farena_direct_file(other, arena, 0, &fd, &size), 0); /* not held */
    FAILS(c, FARENA_EINVAL, farena_direct_file(c, arena, 0, NULL, &size));
    FAILS(c, FARENA_EINVAL, farena_direct_file(c, 0, 0, &fd, &size));
    OK(c, farena_release(c, arena));
    ck_assert_int_eq(farena_direct_file(c, arena, 1, &fd, &size), 0);
    ck_assert_int_eq(scratch_fds(), 0);
    farena_close(other);
    farena_close(c);
}
END_TEST

/* ---- the read handle ---- */

enum { RN = 2000, RFILES = 4, RTHREADS = 16 };
static farena_loc rlocs[RN];

/* A reader thread: random gets, get_strs of ASCII-free payloads skipped,
 * get_many of random runs, out-of-bounds probes; counts mismatches. */
static void *reader_thread(void *arg)
{
    farena_reader *r = arg;
    farena_buf buf = FARENA_BUF_INIT;
    static _Thread_local uint64_t seed;
    uintptr_t bad = 0;
    farena_loc many[32];
    size_t idx[32];

    seed = (uint64_t)(uintptr_t)&buf ^ 0x9e3779b97f4a7c15u;
    for (int it = 0; it < 3000; it++) {
        size_t i;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        i = seed % RN;
        farena_buf_clear(&buf);
        if (it % 10 == 9) {
            size_t n = 1 + seed % 32, at = 0;
            for (size_t k = 0; k < n; k++) {
                idx[k] = (i + k * 97) % RN;
                many[k] = rlocs[idx[k]];
            }
            if (farena_reader_get_many_into(r, many, n, &buf) != 0)
                bad++;
            for (size_t k = 0; k < n && !bad; k++) {
                if (!payload_ok(idx[k], buf.data + at, many[k].len))
                    bad++;
                at += many[k].len;
            }
        } else if (it % 10 == 5) {
            farena_loc oob = rlocs[i];
            oob.offset = UINT32_MAX - 1;
            if (farena_reader_get_into(r, oob, &buf) != FARENA_EOUTOFBOUNDS || buf.len != 0)
                bad++;
        } else {
            if (farena_reader_get_into(r, rlocs[i], &buf) != 0 || !payload_ok(i, buf.data, buf.len))
                bad++;
        }
    }
    farena_buf_free(&buf);
    return (void *)bad;
}

/* 16 threads read one arena through one reader, byte-exact; the reader
 * holds its own reference, so the builder may release and close first. */
START_TEST(reader_sixteen_threads)
{
    pthread_t th[RTHREADS];
    farena_buf buf = FARENA_BUF_INIT;
    farena_reader *r;
    farena_client *c;
    farena_handle arena;

    start(NULL);
    c = conn();
    arena = build_arena(c, RFILES, RN, rlocs);
    OK(c, farena_reader_open(c, arena, &r));
    ck_assert_uint_eq(arena_refs(arena), 2);
    OK(c, farena_release(c, arena));
    farena_close(c);
    for (int t = 0; t < RTHREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, reader_thread, r), 0);
    for (int t = 0; t < RTHREADS; t++) {
        void *bad;
        ck_assert_int_eq(pthread_join(th[t], &bad), 0);
        ck_assert_msg(bad == NULL, "thread %d saw %lu wrong answers", t,
                      (unsigned long)(uintptr_t)bad);
    }
    ck_assert_int_eq(scratch_fds(), direct_mode() ? RFILES : 0);
    /* The descriptor for bindings. */
    {
        uint64_t size = 0;
        uint8_t b[300];
        int fd = -1;
        ck_assert_int_eq(farena_reader_file(r, rlocs[5].file_index, &fd, &size), direct_mode());
        if (direct_mode()) {
            ck_assert_int_eq(pread(fd, b, rlocs[5].len, rlocs[5].offset), (ssize_t)rlocs[5].len);
            ck_assert(payload_ok(5, b, rlocs[5].len));
        }
        ck_assert_int_eq(farena_reader_file(r, RFILES, &fd, &size), 0);
        ck_assert_int_eq(farena_reader_file(r, 0, NULL, &size), FARENA_EINVAL);
        ck_assert_int_eq(farena_reader_file(NULL, 0, &fd, &size), FARENA_EINVAL);
    }
    /* Single-thread edge cases. */
    ck_assert_int_eq(farena_reader_get_into(r, (farena_loc){RFILES, 0, 0}, &buf),
                     FARENA_EOUTOFBOUNDS);
    ck_assert_int_eq(farena_reader_get_str_into(r, rlocs[0], &buf), 0); /* empty */
    ck_assert_int_eq(farena_reader_get_str_into(r, rlocs[7], &buf), FARENA_EUTF8);
    ck_assert_int_eq(farena_reader_get_str_into_unchecked(r, rlocs[8], &buf), 0);
    ck_assert_int_eq(farena_reader_get_many_into(r, rlocs, 0, &buf), 0);
    ck_assert_int_eq(farena_reader_get_into(NULL, rlocs[0], &buf), FARENA_EINVAL);
    ck_assert_int_eq(farena_reader_get_into(r, rlocs[0], NULL), FARENA_EINVAL);
    ck_assert_uint_eq(arena_refs(arena), 1);
    farena_reader_close(r);
    farena_reader_close(NULL);
    ck_assert_int_eq(scratch_fds(), 0);
    farena_buf_free(&buf);
    th_must_stop(&dmn);
}
END_TEST

/* Opening a reader: a bad handle, NULL arguments. */
START_TEST(reader_open_errors)
{
    farena_reader *r = NULL;
    farena_client *c;

    start(NULL);
    c = conn();
    FAILS(c, FARENA_ENOSUCHHANDLE, farena_reader_open(c, 12345, &r));
    ck_assert_ptr_null(r);
    FAILS(c, FARENA_EINVAL, farena_reader_open(c, 0, &r));
    FAILS(c, FARENA_EINVAL, farena_reader_open(c, 1, NULL));
    FAILS(NULL, FARENA_EINVAL, farena_reader_open(NULL, 1, &r));
    farena_close(c);
}
END_TEST

/* Connect options: a too-small size is refused; NULL means defaults. */
START_TEST(connect_options)
{
    struct farena_connect_options o = FARENA_CONNECT_OPTIONS_INIT;
    farena_client *c = NULL;
    char why[320];

    start(NULL);
    o.size = 4;
    ck_assert_int_eq(farena_connect_opts(dmn.sock, &o, &c, why, sizeof(why)), FARENA_EINVAL);
    ck_assert_ptr_null(c);
    o.size = sizeof(o);
    o.timeout_ms = -1;
    ck_assert_int_eq(farena_connect_opts(dmn.sock, &o, &c, why, sizeof(why)), FARENA_EINVAL);
    ck_assert_int_eq(farena_connect_opts(dmn.sock, NULL, &c, why, sizeof(why)), 0);
    ck_assert_int_eq(farena_direct(c), direct_mode());
    ck_assert_int_eq(farena_direct(NULL), 0);
    farena_close(c);
    {
        /* A caller built against a later, larger struct: its extra fields
         * are ignored. */
        struct {
            struct farena_connect_options o;
            uint64_t later[4];
        } big = {FARENA_CONNECT_OPTIONS_INIT, {1, 2, 3, 4}};
        big.o.size = sizeof(big);
        big.o.direct = 0;
        ck_assert_int_eq(farena_connect_opts(dmn.sock, &big.o, &c, why, sizeof(why)), 0);
        ck_assert_int_eq(farena_direct(c), 0);
        farena_close(c);
    }
}
END_TEST

/* Builds the suite. */
static Suite *direct_suite(void)
{
    Suite *s = suite_create("direct");
    TCase *tc;

    tc = tcase_create("protocol");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, arena_fds_stock_client);
    tcase_add_test(tc, arena_fds_errors_and_plain_recv);
    tcase_add_test(tc, arena_fds_behind_large_replies);
    suite_add_tcase(s, tc);

    tc = tcase_create("client");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, same_answers_as_daemon_path);
    tcase_add_test(tc, reads_after_builder_releases);
    tcase_add_test(tc, more_files_than_budget);
    tcase_add_test(tc, emfile_falls_back);
    tcase_add_test(tc, fork_rule);
    tcase_add_test(tc, daemon_gone_descriptors_stay);
    tcase_add_test(tc, connect_options);
    tcase_add_test(tc, direct_file_for_bindings);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, reader_sixteen_threads);
    tcase_add_test(tc, reader_open_errors);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite inside one harness run directory. */
int main(void)
{
    return th_run_suite(direct_suite());
}
