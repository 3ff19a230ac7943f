/* farenad under systemd's protocols: started by systemd-socket-activate it
 * serves the inherited socket (and never unlinks it); with NOTIFY_SOCKET it
 * sends READY=1 only once it can serve, and STOPPING=1 on shutdown. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "th_check.h"

/* Where systemd-socket-activate is, or NULL. */
static const char *socket_activate_path(void)
{
    static const char *const candidates[] = {"/usr/bin/systemd-socket-activate",
                                             "/bin/systemd-socket-activate"};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

/* Finds systemd-socket-activate and makes dir (a mkdtemp template) with a
 * scratch directory in it (its path goes to scratch). Returns the tool's
 * path, or NULL when it is missing (the test is then skipped). */
static const char *activation_setup(char *dir, char *scratch, size_t scratch_len)
{
    const char *sa = socket_activate_path();

    if (sa == NULL) {
        fprintf(stderr, "SKIP: systemd-socket-activate not found\n");
        return NULL;
    }
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(scratch, scratch_len, "%s/scratch", dir);
    ck_assert_int_eq(mkdir(scratch, 0700), 0);
    return sa;
}

/* Forks and runs argv (NULL-terminated; argv[0] is the program's path) with
 * stdout and stderr on /dev/null, dying with the test. Returns the pid. */
static pid_t spawn_quiet(const char *const *argv)
{
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *v[16];
        size_t n = 0;
        int null = open("/dev/null", O_WRONLY);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        /* execv wants mutable strings; this process execs or exits. */
        for (; argv[n] != NULL && n < 15; n++)
            v[n] = strdup(argv[n]);
        v[n] = NULL;
        execv(v[0], v);
        _exit(127);
    }
    return pid;
}

/* Checks that hello answers on c with protocol 1. */
static void assert_hello(struct th_client *c)
{
    struct th_reply r;

    TH_OK_CALL(c, &r, "hello", "");
    ck_assert_uint_eq(th_map_u64(r.result, "protocol"), 1);
}

START_TEST(test_socket_activation)
{
    char dir[] = "/tmp/farena-sa-XXXXXX", sock[64], scratch[160];
    const char *sa = activation_setup(dir, scratch, sizeof(scratch));
    struct th_client *c;
    struct stat st;
    pid_t pid;
    int status;

    if (sa == NULL)
        return; /* skipped */
    snprintf(sock, sizeof(sock), "%s/farenad.sock", dir);

    /* --socket points elsewhere on purpose: the inherited socket wins. */
    pid = spawn_quiet((const char *const[]){sa, "-l", sock, th_farenad_path(), "--dir", scratch,
                                            "--min-free", "0", "--socket",
                                            "/nonexistent/ignored.sock", NULL});
    c = th_connect(sock, TH_TIMEOUT_MS);
    ck_assert_msg(c != NULL, "cannot connect to the activated socket");
    assert_hello(c);
    th_close(c);

    /* A second client on the same inherited listener. */
    c = th_connect(sock, TH_TIMEOUT_MS);
    ck_assert_ptr_nonnull(c);
    assert_hello(c);
    th_close(c);

    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    status = th_wait_child(pid, TH_TIMEOUT_MS);
    ck_assert_msg(status == 0, "farenad did not exit 0 on SIGTERM (status %d)", status);
    /* The socket file belongs to whoever made it (systemd): still there. */
    ck_assert_int_eq(lstat(sock, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    unlink(sock);
    rmdir(scratch);
    rmdir(dir);
}
END_TEST

START_TEST(test_bad_activation_refused)
{
    char dir[] = "/tmp/farena-sa-XXXXXX", sock[64], sock2[64], scratch[160];
    const char *sa = activation_setup(dir, scratch, sizeof(scratch));
    pid_t pid;
    int status, fd;

    if (sa == NULL)
        return; /* skipped */
    snprintf(sock, sizeof(sock), "%s/a.sock", dir);
    snprintf(sock2, sizeof(sock2), "%s/b.sock", dir);

    /* Two inherited sockets: farenad wants exactly one, and says so. */
    pid = spawn_quiet((const char *const[]){sa, "-l", sock, "-l", sock2, th_farenad_path(), "--dir",
                                            scratch, "--min-free", "0", NULL});
    /* systemd-socket-activate execs farenad on the first connection. */
    for (int i = 0; i < 500; i++) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            close(fd);
            break;
        }
        close(fd);
        th_sleep_ms(10);
    }
    status = th_wait_child(pid, TH_TIMEOUT_MS);
    ck_assert_msg(status == 1,
                  "farenad should refuse two inherited sockets with exit 1 (status %d)", status);
    unlink(sock);
    unlink(sock2);
    rmdir(scratch);
    rmdir(dir);
}
END_TEST

/* Binds a datagram socket at path for the daemon's notifications. */
static int notify_socket(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    return fd;
}

/* Receives one notification within timeout_ms into buf; returns its length
 * or -1 on timeout. */
static ssize_t recv_notify(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    ssize_t n;

    if (poll(&pfd, 1, timeout_ms) != 1)
        return -1;
    n = recv(fd, buf, cap - 1, 0);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

START_TEST(test_ready_only_when_serving)
{
    struct th_daemon d;
    struct th_opts o;
    struct th_client *c;
    char dir[] = "/tmp/farena-notify-XXXXXX", path[64], env[160], buf[512];
    const char *envv[2];
    const char *const args[] = {"--min-free", "0", NULL};
    int nfd, status;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    nfd = notify_socket(path);
    snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", path);
    envv[0] = env;
    envv[1] = NULL;

    memset(&o, 0, sizeof(o));
    o.args = args;
    o.env = envv;
    o.no_wait = 1;
    ck_assert_int_eq(th_daemon_start_opts(&d, &o), 0);

    ck_assert_msg(recv_notify(nfd, buf, sizeof(buf), TH_TIMEOUT_MS) > 0, "no READY=1 arrived");
    ck_assert_msg(strncmp(buf, "READY=1", 7) == 0, "first notification: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "STATUS=serving on "));
    /* READY=1 promises service: the very first connect must work, with no
     * retry for a missing socket. */
    c = th_connect(d.sock, 0);
    ck_assert_msg(c != NULL, "READY=1 came before the socket accepted connections");
    assert_hello(c);
    th_close(c);

    status = th_daemon_stop(&d);
    ck_assert_int_eq(status, 0);
    ck_assert_msg(recv_notify(nfd, buf, sizeof(buf), TH_TIMEOUT_MS) > 0, "no STOPPING=1");
    ck_assert_msg(strncmp(buf, "STOPPING=1", 10) == 0, "shutdown notification: %s", buf);
    th_daemon_cleanup(&d);
    close(nfd);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* Builds the suite. */
static Suite *systemd_suite(void)
{
    Suite *s = suite_create("systemd");
    TCase *tc = tcase_create("protocols");
    tcase_add_test(tc, test_socket_activation);
    tcase_add_test(tc, test_bad_activation_refused);
    tcase_add_test(tc, test_ready_only_when_serving);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite. */
int main(void)
{
    return th_run_suite(systemd_suite());
}
