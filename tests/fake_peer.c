/* The scripted fake peer; see fake_peer.h. */
#include "fake_peer.h"

#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <msgpack.h>

#include "harness.h"
#include "proto_codec.h"
#include "proto_methods.h"
#include "proto_scan.h"

/* Sends a packed buffer whole, its first byte by sendmsg() with two
 * descriptors of /dev/null (unasked for). The fake closes its copies
 * before it sends the rest, so once the client holds the whole reply the
 * only /dev/null descriptors left in the process are the client's. */
static void fake_send_stray_fds(int fd, const msgpack_sbuffer *sb)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_RDONLY | O_CLOEXEC)};
    struct iovec iov = {sb->data, 1};
    struct msghdr mh;
    struct cmsghdr *cm;
    size_t off = 1;
    ssize_t sent;

    memset(&u, 0, sizeof(u));
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, sizeof(fds));
    sent = sendmsg(fd, &mh, MSG_NOSIGNAL);
    close(fds[0]);
    close(fds[1]);
    if (sent == 1)
        while (off < sb->size) {
            ssize_t n = send(fd, sb->data + off, sb->size - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
}

/* Sends a packed buffer whole (blocking socket). */
static void fake_send(int fd, const msgpack_sbuffer *sb)
{
    size_t off = 0;

    while (off < sb->size) {
        ssize_t n = send(fd, sb->data + off, sb->size - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* Answers one decoded request the way the mode says. */
static void fake_answer(struct fake *f, int fd, const struct proto_request *rq, size_t *k)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int hello = rq->method_len == 5 && memcmp(rq->method, "hello", 5) == 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (hello) {
        proto_pack_result_head(&pk, rq->msgid);
        msgpack_pack_map(&pk, f->mode == FAKE_OLD || f->mode == FAKE_STRAY_FDS ? 5 : 4);
        proto_pack_cstr(&pk, "server");
        proto_pack_cstr(&pk, "fake");
        proto_pack_cstr(&pk, "version");
        proto_pack_cstr(&pk, "0.0.0");
        proto_pack_cstr(&pk, "protocol");
        msgpack_pack_uint8(&pk, f->mode == FAKE_BAD_HELLO ? 0 : f->mode == FAKE_PROTO_2 ? 2 : 1);
        if (f->mode == FAKE_OLD || f->mode == FAKE_STRAY_FDS) {
            /* A methods list: protocol 1's first table, plus arena_fds for
             * FAKE_STRAY_FDS. */
            int n = f->mode == FAKE_OLD ? PROTO_M_ARENA_FDS : PROTO_M_ARENA_FDS + 1;
            proto_pack_cstr(&pk, "methods");
            msgpack_pack_array(&pk, (size_t)n);
            for (int i = 0; i < n; i++)
                proto_pack_cstr(&pk, proto_method_name((enum proto_method)i));
        }
        proto_pack_cstr(&pk, "limits");
        msgpack_pack_map(&pk, 2);
        proto_pack_cstr(&pk, "max_message");
        msgpack_pack_uint64(&pk, f->mode == FAKE_HUGE_LIMIT ? UINT64_C(1) << 33 : 65536);
        proto_pack_cstr(&pk, "max_batch");
        msgpack_pack_uint32(&pk, 16);
    } else {
        switch (f->mode) {
        case FAKE_ERRORS: {
            const char *name = f->errors[*k] != NULL ? f->errors[*k] : "bad_request";
            int batch = rq->method_len == 9 && memcmp(rq->method, "push_many", 9) == 0;
            char msg[64];
            (*k)++;
            if (name[0] == '\0' && batch) {
                /* "" answers a push_many with its locations. */
                const msgpack_object *items = &rq->params[1];
                proto_pack_result_head(&pk, rq->msgid);
                msgpack_pack_array(&pk, items->via.array.size);
                for (uint32_t i = 0; i < items->via.array.size; i++) {
                    uint32_t len = items->via.array.ptr[i].via.bin.size;
                    proto_pack_loc(&pk, (struct proto_loc){0, f->offset, len});
                    f->offset += len;
                }
                break;
            }
            snprintf(msg, sizeof(msg),
                     !batch           ? "fake %s"
                     : f->item_detail ? "item 9: fake %s"
                                      : "item 2: fake %s",
                     name);
            msgpack_pack_array(&pk, 4);
            msgpack_pack_uint8(&pk, 1);
            msgpack_pack_uint32(&pk, rq->msgid);
            msgpack_pack_array(&pk, batch && f->item_detail ? 3 : 2);
            proto_pack_cstr(&pk, name);
            proto_pack_cstr(&pk, msg);
            if (batch && f->item_detail) {
                msgpack_pack_map(&pk, 1);
                proto_pack_cstr(&pk, "item");
                msgpack_pack_uint8(&pk, 2);
            }
            msgpack_pack_nil(&pk);
            break;
        }
        case FAKE_BAD_MSGID:
            proto_pack_result_head(&pk, rq->msgid + 1000);
            msgpack_pack_nil(&pk);
            break;
        case FAKE_GARBAGE:
            msgpack_sbuffer_write(&sb, "\xc1", 1);
            break;
        case FAKE_BAD_RESULT:
            proto_pack_result_head(&pk, rq->msgid);
            proto_pack_cstr(&pk, "not a handle");
            break;
        case FAKE_HUGE_LIMIT:
        case FAKE_STRAY_FDS:
            proto_pack_result_head(&pk, rq->msgid);
            msgpack_pack_nil(&pk);
            break;
        case FAKE_OLD:
            if (rq->method_len == 9 && memcmp(rq->method, "arena_fds", 9) == 0) {
                f->asked_fds++;
                proto_pack_error(&pk, rq->msgid, PROTO_UNKNOWN_METHOD, "no method");
            } else if (rq->method_len == 3 && memcmp(rq->method, "get", 3) == 0) {
                uint32_t len = (uint32_t)rq->params[1].via.array.ptr[2].via.u64;
                proto_pack_result_head(&pk, rq->msgid);
                msgpack_pack_bin(&pk, len);
                for (uint32_t i = 0; i < len; i++)
                    msgpack_pack_bin_body(&pk, "f", 1);
            } else {
                proto_pack_result_head(&pk, rq->msgid);
                msgpack_pack_nil(&pk);
            }
            break;
        default:
            break;
        }
    }
    if (f->mode == FAKE_STRAY_FDS && !hello)
        fake_send_stray_fds(fd, &sb);
    else
        fake_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* The fake's thread: accepts one connection and serves it until EOF. */
static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    struct proto_scan *scan = proto_scan_new(&lim);
    struct pollfd p = {f->lfd, POLLIN, 0};
    static uint8_t in[1 << 20];
    size_t have = 0, fed = 0, k = 0;
    msgpack_zone zone;
    int fd;

    msgpack_zone_init(&zone, 4096);
    if (poll(&p, 1, 10000) != 1 || (fd = accept(f->lfd, NULL, NULL)) < 0)
        goto out;
    if (f->mode == FAKE_REFUSE) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        proto_pack_error(&pk, 0, PROTO_LIMIT, "too many clients");
        fake_send(fd, &sb);
        msgpack_sbuffer_destroy(&sb);
        close(fd);
        goto out;
    }
    for (;;) {
        struct pollfd q = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&q, 1, 10000) != 1)
            break;
        n = recv(fd, in + have, sizeof(in) - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        while (fed < have) {
            size_t used = 0, total;
            msgpack_object obj;
            struct proto_request rq;
            enum proto_scan_status st = proto_scan_feed(scan, in + fed, have - fed, &used, NULL);
            if (st != PROTO_SCAN_READY) {
                fed = have;
                break;
            }
            total = proto_scan_total(scan);
            fed += used;
            proto_scan_reset(scan);
            msgpack_zone_clear(&zone);
            if (proto_unpack(&zone, in + fed - total, total, &obj, NULL) == 0 &&
                proto_request_decode(&obj, &rq, NULL) == 0) {
                int hello = rq.method_len == 5 && memcmp(rq.method, "hello", 5) == 0;
                if (f->mode == FAKE_HANG_UP && !hello) {
                    close(fd);
                    goto out;
                }
                if (!(f->mode == FAKE_SILENT && !hello))
                    fake_answer(f, fd, &rq, &k);
            }
            memmove(in, in + fed, have - fed);
            have -= fed;
            fed = 0;
        }
    }
    close(fd);
out:
    msgpack_zone_destroy(&zone);
    proto_scan_free(scan);
    return NULL;
}

/* Starts a fake peer; see fake_peer.h. */
void fake_start(struct fake *f, enum fake_mode mode, const char *const *errors)
{
    struct sockaddr_un sa;

    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->errors = errors;
    ck_assert_int_lt(snprintf(f->path, sizeof(f->path), "%s/fake-%ld-%d.sock", th_run_path(),
                              (long)getpid(), (int)mode),
                     (int)sizeof(f->path));
    unlink(f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->lfd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->lfd, 4), 0);
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

/* Stops a fake peer; see fake_peer.h. */
void fake_stop(struct fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    unlink(f->path);
}
