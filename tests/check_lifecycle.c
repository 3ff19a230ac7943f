/* farenad's start-up and shutdown: where the socket goes and with which
 * modes, stale sockets, a second daemon, signals and shutting_down, options
 * and their errors, the start-up warnings and logs. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "harness.h"
#include "th_check.h"

static struct th_daemon D;

/* A fresh directory under $TMPDIR or /tmp (for paths chosen by the
 * environment rather than by the harness). */
static void make_dir(char *out, size_t len, const char *tag)
{
    const char *t = getenv("TMPDIR");

    snprintf(out, len, "%s/%s-XXXXXX", t != NULL && t[0] == '/' && strlen(t) < 60 ? t : "/tmp",
             tag);
    ck_assert_ptr_nonnull(mkdtemp(out));
}

/* Recursively removes a directory made by make_dir. */
static void rm_rf(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Checks that the daemon's log contains text. */
static void expect_log(const struct th_daemon *d, const char *text)
{
    char *log = th_daemon_log(d);
    int ok = log != NULL && strstr(log, text) != NULL;

    if (!ok)
        th_daemon_dump_log(d);
    free(log);
    ck_assert_msg(ok, "the log lacks \"%s\"", text);
}

/* Starts farenad with --socket sock (and a --dir of its own) and checks
 * that it refuses to start: exit status 1 and text in its log. */
static void expect_socket_refused(const char *sock, const char *text)
{
    const char *const args[] = {"--socket", sock, NULL};
    struct th_opts o = {.args = args, .no_socket_arg = 1, .no_wait = 1};
    struct th_daemon d;

    ck_assert_int_eq(th_daemon_start_opts(&d, &o), 0);
    ck_assert_int_eq(th_daemon_wait_exit(&d, TH_TIMEOUT_MS), 1);
    expect_log(&d, text);
    th_daemon_cleanup(&d);
}

/* Connects to sock and checks that hello succeeds. */
static void hello_ok(const char *sock)
{
    struct th_client *c = th_connect(sock, TH_TIMEOUT_MS);
    struct th_reply r;

    ck_assert_msg(c != NULL, "cannot connect to %s", sock);
    TH_OK_CALL(c, &r, "hello", "");
    th_close(c);
}

/* The socket's directory is created 0700, the socket is 0600. */
START_TEST(socket_directory_0700_and_socket_0600)
{
    struct th_opts o = {.socket_rel = "private/farenad.sock"};
    struct stat st;
    char dir[300], want[700];

    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    snprintf(dir, sizeof(dir), "%s/private", D.dir);
    ck_assert_int_eq(lstat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(lstat(D.sock, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    snprintf(want, sizeof(want), "farenad listening on %s (scratch %s)", D.sock, D.scratch);
    expect_log(&D, want);
    hello_ok(D.sock);
    th_must_stop(&D);
}
END_TEST

/* Default socket: $XDG_RUNTIME_DIR/farena/farenad.sock, overridden by $FARENA_SOCKET. */
START_TEST(default_socket_paths_from_the_environment)
{
    char xdg[128], env1[200], env2[] = "FARENA_SOCKET=", sock[300], own[300], env3[400];
    const char *const envs[] = {env1, env2, NULL};
    struct th_opts o = {.no_socket_arg = 1, .env = envs};
    struct th_daemon d2;
    struct stat st;

    make_dir(xdg, sizeof(xdg), "xdg");
    snprintf(env1, sizeof(env1), "XDG_RUNTIME_DIR=%s", xdg);
    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    snprintf(sock, sizeof(sock), "%s/farena/farenad.sock", xdg);
    ck_assert_int_eq(lstat(sock, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    hello_ok(sock);
    th_must_stop(&D);
    ck_assert_int_eq(lstat(sock, &st), -1);

    /* $FARENA_SOCKET wins over $XDG_RUNTIME_DIR. */
    snprintf(own, sizeof(own), "%s/own.sock", xdg);
    snprintf(env3, sizeof(env3), "FARENA_SOCKET=%s", own);
    const char *const envs2[] = {env1, env3, NULL};
    struct th_opts o2 = {.no_socket_arg = 1, .env = envs2};
    ck_assert_int_eq(th_daemon_start_opts(&d2, &o2), 0);
    hello_ok(own);
    th_must_stop(&d2);
    rm_rf(xdg);
}
END_TEST

/* Default scratch: $FARENA_DIR, else $TMPDIR. */
START_TEST(default_scratch_from_the_environment)
{
    char a[128], b[128], env1[200], env2[200], want[300];
    char empty[] = "FARENA_DIR=";
    const char *const envs[] = {env1, NULL};
    const char *const envs2[] = {empty, env2, NULL};
    struct th_opts o = {.no_dir_arg = 1, .env = envs};
    struct th_opts o2 = {.no_dir_arg = 1, .env = envs2};

    make_dir(a, sizeof(a), "fdir");
    make_dir(b, sizeof(b), "tdir");
    snprintf(env1, sizeof(env1), "FARENA_DIR=%s", a);
    snprintf(env2, sizeof(env2), "TMPDIR=%s", b);
    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    snprintf(want, sizeof(want), "(scratch %s)", a);
    expect_log(&D, want);
    th_must_stop(&D);
    ck_assert_int_eq(th_daemon_start_opts(&D, &o2), 0);
    snprintf(want, sizeof(want), "(scratch %s)", b);
    expect_log(&D, want);
    th_must_stop(&D);
    rm_rf(a);
    rm_rf(b);
}
END_TEST

/* A second daemon on a served socket exits 1 and names the path. */
START_TEST(second_daemon_refuses_to_start)
{
    char want[400];

    ck_assert_int_eq(th_daemon_start(&D, NULL), 0);
    snprintf(want, sizeof(want), "another farenad is serving %s", D.sock);
    expect_socket_refused(D.sock, want);
    hello_ok(D.sock);
    th_must_stop(&D);
}
END_TEST

/* A socket file nobody listens on is replaced. */
START_TEST(stale_socket_is_replaced)
{
    char dir[128], path[200];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct th_daemon d;
    int fd;

    make_dir(dir, sizeof(dir), "stale");
    snprintf(path, sizeof(path), "%s/farenad.sock", dir);
    strcpy(sa.sun_path, path);
    /* A socket file nobody listens on, as a crashed daemon leaves it. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    const char *const args[] = {"--socket", path, NULL};
    struct th_opts o = {.args = args, .no_socket_arg = 1};
    ck_assert_int_eq(th_daemon_start_opts(&d, &o), 0);
    hello_ok(path);
    th_must_stop(&d);
    rm_rf(dir);
}
END_TEST

/* A regular file at the path, a directory others may write to, or another
 * user's directory stops start-up. */
START_TEST(refuses_what_is_not_its_own)
{
    char dir[128], path[200], sub[200], subsock[300];
    struct stat st;
    int fd;

    make_dir(dir, sizeof(dir), "notmine");
    /* A regular file where the socket should go is never removed. */
    snprintf(path, sizeof(path), "%s/farenad.sock", dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "keep", 4), 4);
    close(fd);
    expect_socket_refused(path, "not a socket");
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 4);
    /* A socket directory of ours that others may write to. */
    snprintf(sub, sizeof(sub), "%s/open", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(chmod(sub, 0777), 0);
    snprintf(subsock, sizeof(subsock), "%s/farenad.sock", sub);
    expect_socket_refused(subsock, "is writable by others (mode 777)");
    ck_assert_int_ne(lstat(subsock, &st), 0);
    /* A socket directory that belongs to another user. */
    if (geteuid() == 0) {
        snprintf(sub, sizeof(sub), "%s/other", dir);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        ck_assert_int_eq(chown(sub, 65534, 65534), 0);
        snprintf(subsock, sizeof(subsock), "%s/farenad.sock", sub);
        expect_socket_refused(subsock, "belongs to uid 65534");
    }
    rm_rf(dir);
}
END_TEST

/* SIGTERM and SIGINT exit 0 and remove the socket. */
START_TEST(sigterm_and_sigint_exit_zero_and_remove_the_socket)
{
    struct stat st;
    int sigs[2] = {SIGTERM, SIGINT};

    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(th_daemon_start(&D, NULL), 0);
        hello_ok(D.sock);
        ck_assert_int_eq(kill(D.pid, sigs[i]), 0);
        ck_assert_int_eq(th_daemon_wait_exit(&D, TH_TIMEOUT_MS), 0);
        ck_assert_int_eq(lstat(D.sock, &st), -1);
        ck_assert_int_eq(errno, ENOENT);
        expect_log(&D, "farenad stopped");
        th_daemon_cleanup(&D);
    }
}
END_TEST

/* Requests received before SIGTERM are answered; later ones get shutting_down. */
START_TEST(shutdown_answers_what_was_received_then_shutting_down)
{
    enum { N = 20, LEN = 1 << 20 };
    unsigned char *data = malloc(LEN);
    struct th_client *c, *late;
    struct th_reply r;
    struct stat st;
    uint64_t w, a;
    int64_t hello_id;

    for (size_t i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i * 7);
    ck_assert_int_eq(th_daemon_start(&D, NULL), 0);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    th_push(c, w, data, LEN);
    a = th_call_u64(c, "into_arena", w);
    /* 20 MiB of replies: the daemon stops at its high-water mark with most
     * requests still buffered. They were received before the signal. */
    for (int i = 0; i < N; i++)
        th_queue(c, "get", "uL", a, (struct proto_loc){0, 0, LEN});
    ck_assert_int_eq(th_flush(c), TH_OK);
    th_sleep_ms(200);
    ck_assert_int_eq(kill(D.pid, SIGTERM), 0);
    th_sleep_ms(200);
    /* No new connections, and the socket file is already gone. */
    late = th_connect(D.sock, 0);
    ck_assert_ptr_null(late);
    ck_assert_int_eq(lstat(D.sock, &st), -1);
    hello_id = th_queue(c, "hello", "");
    ck_assert_int_eq(th_flush(c), TH_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(th_recv(c, &r), TH_OK);
        ck_assert_msg(r.err == PROTO_OK, "get %d: %s %s", i, r.code, r.msg);
        th_assert_bytes(r.result, data, LEN);
    }
    ck_assert_int_eq(th_recv(c, &r), TH_OK);
    ck_assert_uint_eq(r.msgid, (uint32_t)hello_id);
    ck_assert_str_eq(r.code, "shutting_down");
    ck_assert_int_eq(th_wait_eof(c, &r), TH_EOF);
    th_close(c);
    ck_assert_int_eq(th_daemon_wait_exit(&D, TH_TIMEOUT_MS), 0);
    th_daemon_cleanup(&D);
    free(data);
}
END_TEST

/* A client that never reads cannot hold shutdown past its bound. */
START_TEST(shutdown_is_bounded_when_a_client_never_reads)
{
    enum { LEN = 1 << 20 };
    unsigned char *data = calloc(1, LEN);
    struct th_client *c;
    uint64_t w, a, t0;

    ck_assert_int_eq(th_daemon_start(&D, NULL), 0);
    c = th_must_connect(&D);
    w = th_writer_new(c, 0);
    th_push(c, w, data, LEN);
    a = th_call_u64(c, "into_arena", w);
    for (int i = 0; i < 20; i++)
        th_queue(c, "get", "uL", a, (struct proto_loc){0, 0, LEN});
    ck_assert_int_eq(th_flush(c), TH_OK);
    th_sleep_ms(100);
    t0 = th_now_ms();
    ck_assert_int_eq(kill(D.pid, SIGTERM), 0);
    ck_assert_int_eq(th_daemon_wait_exit(&D, 15000), 0);
    ck_assert_uint_lt(th_now_ms() - t0, 9000);
    expect_log(&D, "did not finish");
    th_close(c);
    th_daemon_cleanup(&D);
    free(data);
}
END_TEST

/* Runs farenad with args (no --socket/--dir added) and returns its exit
 * status, its output in *log (caller frees). */
static int run_args(const char *const *args, char **log)
{
    struct th_opts o = {.args = args, .no_socket_arg = 1, .no_dir_arg = 1, .no_wait = 1};
    struct th_daemon d;
    int st;

    ck_assert_int_eq(th_daemon_start_opts(&d, &o), 0);
    st = th_daemon_wait_exit(&d, TH_TIMEOUT_MS);
    *log = th_daemon_log(&d);
    th_daemon_cleanup(&d);
    return st;
}

/* Malformed, out-of-range and unknown options exit 2 with a message. */
START_TEST(bad_options_exit_two)
{
    static const char *const bad[][3] = {
        {"--max-bytes", "-5", NULL},
        {"--max-bytes", "12Q", NULL},
        {"--max-bytes", "1M2", NULL},
        {"--max-bytes", "99999999999999999999", NULL},
        {"--max-bytes", "17179869184G", NULL},
        {"--max-bytes", "", NULL},
        {"--min-free", " 5", NULL},
        {"--max-message", "1K", NULL},
        {"--max-message", "2G", NULL},
        {"--max-clients", "0", NULL},
        {"--max-clients", "1K", NULL},
        {"--max-clients", "4294967296", NULL},
        {"--max-writers", "0x10", NULL},
        {"--max-handles", "1.5", NULL},
        {"--file-max", "0", NULL},
        {"--file-max", "4G", NULL},
        {"--bogus", NULL, NULL},
        {"-x", NULL, NULL},
        {"stray-argument", NULL, NULL},
        {"--socket", NULL, NULL},
        {"--socket", "", NULL},
    };
    char *log;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = run_args(bad[i], &log);
        ck_assert_msg(st == 2, "%s %s: exit %d, not 2", bad[i][0], bad[i][1] ? bad[i][1] : "", st);
        ck_assert_msg(log != NULL && strstr(log, "farenad: ") != NULL &&
                          strstr(log, "--help") != NULL,
                      "%s: no usage message: %s", bad[i][0], log ? log : "");
        free(log);
    }
}
END_TEST

/* --help names every option and its default; --version prints the version. */
START_TEST(help_and_version)
{
    static const char *const opts[] = {
        "--socket",      "--dir",         "--max-bytes",   "--min-free", "--max-message",
        "--max-clients", "--max-writers", "--max-handles", "--file-max", "--verbose",
        "--quiet",       "--version",     "--help"};
    char *log;

    ck_assert_int_eq(run_args((const char *const[]){"--help", NULL}, &log), 0);
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        ck_assert_msg(strstr(log, opts[i]) != NULL, "--help lacks %s", opts[i]);
    ck_assert_ptr_nonnull(strstr(log, "default 64M"));
    ck_assert_ptr_nonnull(strstr(log, "default 1024"));
    ck_assert_ptr_nonnull(strstr(log, "default 65536"));
    ck_assert_ptr_nonnull(strstr(log, "$XDG_RUNTIME_DIR/farena/farenad.sock"));
    free(log);
    ck_assert_int_eq(run_args((const char *const[]){"--version", NULL}, &log), 0);
    ck_assert_ptr_nonnull(strstr(log, "farenad 0.1.0"));
    free(log);
}
END_TEST

/* K/M/G suffixes reach hello's limits exactly. */
START_TEST(sizes_with_suffixes_are_accepted)
{
    struct th_client *c;
    struct th_reply r;
    const msgpack_object *lim;

    const char *const args[] = {
        "--max-bytes",   "3G",    "--min-free",    "0",      "--file-max", "512k",
        "--max-message", "65536", "--max-handles", "100000", NULL};
    ck_assert_int_eq(th_daemon_start(&D, args), 0);
    c = th_must_connect(&D);
    TH_OK_CALL(c, &r, "hello", "");
    lim = th_map_get(r.result, "limits");
    ck_assert_uint_eq(th_map_u64(lim, "max_bytes"), 3ull << 30);
    ck_assert_uint_eq(th_map_u64(lim, "min_free"), 0);
    ck_assert_uint_eq(th_map_u64(lim, "file_max"), 512u << 10);
    ck_assert_uint_eq(th_map_u64(lim, "max_message"), 65536);
    ck_assert_uint_eq(th_map_u64(lim, "max_handles"), 100000);
    th_close(c);
    th_must_stop(&D);
}
END_TEST

/* The soft open-file limit is raised to the hard one, and both are logged. */
START_TEST(raises_the_open_file_soft_limit)
{
    struct th_opts o = {.nofile = 300, .nofile_soft = 100};
    char path[64], line[256], want[128];
    struct rlimit rl;
    int found = 0;
    FILE *f;

    /* A hard limit can only be lowered without privilege. */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max < o.nofile) {
        o.nofile = rl.rlim_max;
        o.nofile_soft = rl.rlim_max / 3;
    }
    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    snprintf(path, sizeof(path), "/proc/%ld/limits", (long)D.pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long soft, hard;
        if (sscanf(line, "Max open files %lu %lu", &soft, &hard) == 2) {
            ck_assert_uint_eq(soft, o.nofile);
            ck_assert_uint_eq(hard, o.nofile);
            found = 1;
        }
    }
    fclose(f);
    ck_assert(found);
    snprintf(want, sizeof(want), "soft %lu (was %lu), hard %lu", (unsigned long)o.nofile,
             (unsigned long)o.nofile_soft, (unsigned long)o.nofile);
    expect_log(&D, want);
    th_must_stop(&D);
}
END_TEST

/* When JOURNAL_STREAM names stderr, lines carry <N> prefixes; -q silences
 * info lines. */
START_TEST(journal_prefixes_and_quiet)
{
    struct th_opts o = {.journal_stream = 1};
    const char *const qargs[] = {"-q", NULL};
    char *log;

    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    expect_log(&D, "<6>farenad listening on ");
    th_must_stop(&D);
    ck_assert_int_eq(th_daemon_start(&D, qargs), 0);
    hello_ok(D.sock);
    ck_assert_int_eq(th_daemon_stop(&D), 0);
    log = th_daemon_log(&D);
    ck_assert_msg(log != NULL && strstr(log, "listening") == NULL, "-q still logs: %s", log);
    free(log);
    th_daemon_cleanup(&D);
}
END_TEST

/* A JOURNAL_STREAM inherited from a service (naming another file than
 * stderr), or malformed, leaves the lines plain. */
START_TEST(journal_stream_of_another_file_is_ignored)
{
    static const char *const values[] = {"JOURNAL_STREAM=8:12345", "JOURNAL_STREAM=junk"};

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        const char *const envs[] = {values[i], NULL};
        struct th_opts o = {.env = envs};
        char *log;

        ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
        expect_log(&D, "farenad listening on ");
        th_must_exit_clean(&D);
        log = th_daemon_log(&D);
        ck_assert_msg(log != NULL && strstr(log, "<6>") == NULL, "%s: %s", values[i], log);
        free(log);
        th_daemon_cleanup(&D);
    }
}
END_TEST

/* A scratch directory on tmpfs draws a warning. */
START_TEST(warns_when_scratch_is_in_memory)
{
    char dir[128] = "/dev/shm/farenad-test-XXXXXX";
    struct statfs sf;

    /* Only where a tmpfs is at hand (it is on every usual Linux). */
    if (statfs("/dev/shm", &sf) != 0 || sf.f_type != 0x01021994 || mkdtemp(dir) == NULL) {
        ck_assert_int_eq(th_daemon_start(&D, NULL), 0);
        th_must_stop(&D);
        return;
    }
    const char *const args[] = {"--dir", dir, NULL};
    struct th_opts o = {.args = args, .no_dir_arg = 1};
    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    expect_log(&D, "is on tmpfs");
    hello_ok(D.sock);
    th_must_stop(&D);
    rmdir(dir);
}
END_TEST

/* A missing scratch directory stops start-up with exit 1. */
START_TEST(missing_scratch_directory_fails_start_up)
{
    const char *const args[] = {"--dir", "/nonexistent/farena-scratch", NULL};
    struct th_opts o = {.args = args, .no_dir_arg = 1, .no_wait = 1};

    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    ck_assert_int_eq(th_daemon_wait_exit(&D, TH_TIMEOUT_MS), 1);
    expect_log(&D, "/nonexistent/farena-scratch");
    th_daemon_cleanup(&D);
}
END_TEST

/* A failing event loop ends farenad with status 1, not the 0 of a clean
 * shutdown, after the usual clean-up (the socket is gone, nothing leaks).
 * The preloaded module makes every epoll_wait fail. */
START_TEST(failing_event_loop_exits_1)
{
    const char *prev = getenv("ASAN_OPTIONS");
    char preload[512], asan[1024];

    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", FARENA_FAIL_EPOLL);
    /* The sanitizer runtime wants to come first among the libraries; the
     * module replaces nothing it relies on. */
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             prev != NULL ? prev : "", prev != NULL && prev[0] != '\0' ? ":" : "");
    const char *const envs[] = {preload, asan, NULL};
    struct th_opts o = {.env = envs, .no_wait = 1};

    ck_assert_int_eq(th_daemon_start_opts(&D, &o), 0);
    ck_assert_int_eq(th_daemon_wait_exit(&D, TH_TIMEOUT_MS), 1);
    expect_log(&D, "farenad listening on ");
    expect_log(&D, "event loop failed");
    expect_log(&D, "farenad stopped");
    ck_assert_int_eq(access(D.sock, F_OK), -1);
    th_daemon_cleanup(&D);
}
END_TEST

/* The lifecycle suite. */
static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc;

    tc = tcase_create("socket");
    tcase_add_test(tc, socket_directory_0700_and_socket_0600);
    tcase_add_test(tc, default_socket_paths_from_the_environment);
    tcase_add_test(tc, default_scratch_from_the_environment);
    tcase_add_test(tc, second_daemon_refuses_to_start);
    tcase_add_test(tc, stale_socket_is_replaced);
    tcase_add_test(tc, refuses_what_is_not_its_own);
    suite_add_tcase(s, tc);

    tc = tcase_create("signals");
    tcase_add_test(tc, sigterm_and_sigint_exit_zero_and_remove_the_socket);
    tcase_add_test(tc, shutdown_answers_what_was_received_then_shutting_down);
    tcase_add_test(tc, shutdown_is_bounded_when_a_client_never_reads);
    suite_add_tcase(s, tc);

    tc = tcase_create("options");
    tcase_add_test(tc, bad_options_exit_two);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, sizes_with_suffixes_are_accepted);
    tcase_add_test(tc, raises_the_open_file_soft_limit);
    tcase_add_test(tc, journal_prefixes_and_quiet);
    tcase_add_test(tc, journal_stream_of_another_file_is_ignored);
    tcase_add_test(tc, warns_when_scratch_is_in_memory);
    tcase_add_test(tc, missing_scratch_directory_fails_start_up);
    tcase_add_test(tc, failing_event_loop_exits_1);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite; exit status 0 when every test passed. */
int main(void)
{
    return th_run_suite(lifecycle_suite());
}
