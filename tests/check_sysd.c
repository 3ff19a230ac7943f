/* Tests of the systemd glue: socket activation validation and readiness. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sysd.h"

/* What sysd_listen_fd() did in a child process. */
struct activation {
    int rc;
    int fd;
    int nonblock;
    int cloexec;
    int env_cleared;
    char why[96];
};

/* How the child sets up descriptor 3 before calling sysd_listen_fd(). */
enum fd3_kind { FD3_UNIX_LISTEN, FD3_UNIX_UNLISTENED, FD3_UNIX_DGRAM, FD3_INET, FD3_FILE };

/* Makes the socket (or file) of kind and moves it to descriptor 3, as systemd
 * would. Runs in the child only: descriptor 3 may be Check's own. */
static int make_fd3(enum fd3_kind kind)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (kind == FD3_FILE)
        fd = open("/dev/null", O_RDONLY);
    else if (kind == FD3_INET)
        fd = socket(AF_INET, SOCK_STREAM, 0);
    else
        fd = socket(AF_UNIX, kind == FD3_UNIX_DGRAM ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (kind == FD3_UNIX_LISTEN || kind == FD3_UNIX_UNLISTENED) {
        snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/farena-sysd-%d.sock", (int)getpid());
        unlink(sun.sun_path);
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
            return -1;
        unlink(sun.sun_path);
        if (kind == FD3_UNIX_LISTEN && listen(fd, 4) == -1)
            return -1;
    }
    if (fd != 3) {
        if (dup2(fd, 3) != 3)
            return -1;
        close(fd);
    }
    return 0;
}

/* Runs sysd_listen_fd() in a child with descriptor 3 of kind and the given
 * LISTEN_PID (NULL: the child's own pid) and LISTEN_FDS; returns what it saw. */
static struct activation activate(enum fd3_kind kind, const char *pid, const char *nfds)
{
    struct activation act;
    int p[2], status;
    pid_t child;

    memset(&act, 0, sizeof(act));
    ck_assert_int_eq(pipe(p), 0);
    /* Keep the pipe well above 3 so make_fd3() cannot clobber it. */
    ck_assert_int_eq(dup2(p[1], 40), 40);
    close(p[1]);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct activation out;
        const char *why = NULL;
        char self[32];
        memset(&out, 0, sizeof(out));
        out.fd = -1;
        close(p[0]);
        snprintf(self, sizeof(self), "%d", (int)getpid());
        setenv("LISTEN_PID", pid ? pid : self, 1);
        setenv("LISTEN_FDS", nfds, 1);
        if (make_fd3(kind) == -1)
            _exit(3);
        out.rc = sysd_listen_fd(&out.fd, &why);
        if (why)
            snprintf(out.why, sizeof(out.why), "%s", why);
        if (out.rc == 1) {
            out.nonblock = (fcntl(out.fd, F_GETFL) & O_NONBLOCK) != 0;
            out.cloexec = (fcntl(out.fd, F_GETFD) & FD_CLOEXEC) != 0;
        }
        out.env_cleared = getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL;
        _exit(write(40, &out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 4);
    }
    close(40);
    ck_assert_int_eq(read(p[0], &act, sizeof(act)), (ssize_t)sizeof(act));
    close(p[0]);
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return act;
}

START_TEST(test_not_activated)
{
    int fd = -1;
    const char *why;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    ck_assert_int_eq(sysd_listen_fd(&fd, &why), 0);
    ck_assert_int_eq(fd, -1);
}
END_TEST

START_TEST(test_activated_listener)
{
    struct activation a = activate(FD3_UNIX_LISTEN, NULL, "1");
    ck_assert_int_eq(a.rc, 1);
    ck_assert_int_eq(a.fd, 3);
    ck_assert(a.nonblock);
    ck_assert(a.cloexec);
    /* The variables are consumed so children never inherit them. */
    ck_assert(a.env_cleared);
}
END_TEST

START_TEST(test_other_pid_ignored)
{
    struct activation a = activate(FD3_UNIX_LISTEN, "1", "1");
    ck_assert_int_eq(a.rc, 0);
    ck_assert_int_eq(a.fd, -1);
    ck_assert(a.env_cleared);
}
END_TEST

START_TEST(test_two_fds_refused)
{
    struct activation a = activate(FD3_UNIX_LISTEN, NULL, "2");
    ck_assert_int_eq(a.rc, -1);
    ck_assert_ptr_nonnull(strstr(a.why, "exactly one"));
}
END_TEST

START_TEST(test_bad_numbers_refused)
{
    struct activation a = activate(FD3_UNIX_LISTEN, "12x", "1");
    ck_assert_int_eq(a.rc, -1);
    ck_assert_ptr_nonnull(strstr(a.why, "LISTEN_PID"));
    a = activate(FD3_UNIX_LISTEN, NULL, "");
    ck_assert_int_eq(a.rc, -1);
    ck_assert_ptr_nonnull(strstr(a.why, "LISTEN_FDS"));
}
END_TEST

START_TEST(test_datagram_refused)
{
    struct activation a = activate(FD3_UNIX_DGRAM, NULL, "1");
    ck_assert_int_eq(a.rc, -1);
    ck_assert_ptr_nonnull(strstr(a.why, "stream"));
}
END_TEST

START_TEST(test_not_listening_refused)
{
    struct activation a = activate(FD3_UNIX_UNLISTENED, NULL, "1");
    ck_assert_int_eq(a.rc, -1);
    ck_assert_ptr_nonnull(strstr(a.why, "listening"));
}
END_TEST

START_TEST(test_inet_refused)
{
    struct activation a = activate(FD3_INET, NULL, "1");
    ck_assert_int_eq(a.rc, -1);
    ck_assert_ptr_nonnull(strstr(a.why, "AF_UNIX"));
}
END_TEST

START_TEST(test_not_a_socket_refused)
{
    struct activation a = activate(FD3_FILE, NULL, "1");
    ck_assert_int_eq(a.rc, -1);
    ck_assert_ptr_nonnull(strstr(a.why, "not a socket"));
}
END_TEST

/* Binds a datagram socket at path (abstract when path starts with '@'). */
static int notify_listener(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    memcpy(sun.sun_path, path, n);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    else
        n++;
    ck_assert_int_eq(
        bind(fd, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
        0);
    return fd;
}

/* Reads one datagram into buf (NUL-terminated) without blocking forever. */
static void recv_state(int fd, char *buf, size_t cap)
{
    struct timeval tv = {.tv_sec = 5};
    ssize_t n;
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    n = recv(fd, buf, cap - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
}

START_TEST(test_notify_path)
{
    char path[64], buf[128];
    int fd;
    snprintf(path, sizeof(path), "/tmp/farena-notify-%d", (int)getpid());
    unlink(path);
    fd = notify_listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(sysd_notify("READY=1\nSTATUS=serving"), 1);
    recv_state(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "READY=1\nSTATUS=serving");
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(test_notify_abstract)
{
    char path[64], buf[128];
    int fd;
    snprintf(path, sizeof(path), "@farena-notify-%d", (int)getpid());
    fd = notify_listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(sysd_notify("STOPPING=1"), 1);
    recv_state(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "STOPPING=1");
    close(fd);
}
END_TEST

START_TEST(test_notify_unset_and_bad)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(sysd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    errno = 0;
    ck_assert_int_eq(sysd_notify("READY=1"), -1);
    ck_assert_int_eq(errno, EINVAL);
    setenv("NOTIFY_SOCKET", "/nonexistent/farena/notify", 1);
    ck_assert_int_eq(sysd_notify("READY=1"), -1);
}
END_TEST

/* Builds the suite. */
static Suite *sysd_suite(void)
{
    Suite *s = suite_create("sysd");
    TCase *tc = tcase_create("activation");
    tcase_add_test(tc, test_not_activated);
    tcase_add_test(tc, test_activated_listener);
    tcase_add_test(tc, test_other_pid_ignored);
    tcase_add_test(tc, test_two_fds_refused);
    tcase_add_test(tc, test_bad_numbers_refused);
    tcase_add_test(tc, test_datagram_refused);
    tcase_add_test(tc, test_not_listening_refused);
    tcase_add_test(tc, test_inet_refused);
    tcase_add_test(tc, test_not_a_socket_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("notify");
    tcase_add_test(tc, test_notify_path);
    tcase_add_test(tc, test_notify_abstract);
    tcase_add_test(tc, test_notify_unset_and_bad);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite. Activation cases run in a child of their own, since
 * descriptor 3 may belong to Check itself. */
int main(void)
{
    SRunner *sr = srunner_create(sysd_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
