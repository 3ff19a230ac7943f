/* The farenad test harness; see harness.h. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto_limits.h"
#include "proto_scan.h"

#ifndef FARENAD_PATH
#error "FARENAD_PATH must name the farenad binary under test"
#endif

static char th_run_dir[128];

/* ---- small utilities ---- */

/* Milliseconds on the monotonic clock. */
uint64_t th_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleeps ms milliseconds, resuming after signals. */
void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A deadline; see harness.h. */
uint64_t th_deadline(int timeout_ms)
{
    return th_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
}

/* Milliseconds left until a deadline; see harness.h. */
int th_ms_left(uint64_t deadline)
{
    uint64_t now = th_now_ms();

    return now < deadline ? (int)(deadline - now) : 0;
}

/* Position- and seed-dependent bytes; see harness.h. */
void th_pattern(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

/* xorshift64*; see harness.h. */
uint64_t th_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Whether th_rm_tree's walk failed to remove an entry. */
static _Thread_local int th_rm_failed;
static _Thread_local int th_rm_errno;

/* Removes one entry of a tree (depth-first, so directories come empty). */
static int th_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) < 0 && !th_rm_failed) {
        th_rm_failed = 1;
        th_rm_errno = errno;
    }
    return 0;
}

/* Removes a directory tree; see harness.h. */
int th_rm_tree(const char *dir)
{
    th_rm_failed = 0;
    if (nftw(dir, th_rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return -1;
    if (th_rm_failed) {
        errno = th_rm_errno;
        return -1;
    }
    return 0;
}

/* The farenad under test; see harness.h. */
const char *th_farenad_path(void)
{
    return FARENAD_PATH;
}

/* A temporary directory's parent: $TMPDIR when short enough for a socket
 * path inside it, else /tmp. */
static const char *th_tmp_base(void)
{
    const char *t = getenv("TMPDIR");

    if (th_run_dir[0] != '\0')
        return th_run_dir;
    if (t != NULL && t[0] == '/' && strlen(t) < 60)
        return t;
    return "/tmp";
}

/* The run directory or the temporary base; see harness.h. */
const char *th_run_path(void)
{
    return th_tmp_base();
}

/* Creates the run directory; see harness.h. */
int th_run_begin(void)
{
    char tmpl[128];

    th_run_dir[0] = '\0';
    snprintf(tmpl, sizeof(tmpl), "%s/farenad-tests-XXXXXX", th_tmp_base());
    if (mkdtemp(tmpl) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return -1;
    }
    snprintf(th_run_dir, sizeof(th_run_dir), "%s", tmpl);
    return 0;
}

/* Removes the run directory and everything in it. */
void th_run_end(void)
{
    if (th_run_dir[0] != '\0')
        (void)th_rm_tree(th_run_dir);
    th_run_dir[0] = '\0';
}

/* ---- /proc ---- */

int th_proc_fd_count(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

/* VmRSS from /proc/PID/status, in KiB. */
long th_proc_rss_kib(pid_t pid)
{
    return th_proc_status_kib(pid, "VmRSS");
}

/* One KiB figure of /proc/PID/status. */
long th_proc_status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
            sscanf(line + klen + 1, " %ld kB", &kib) == 1)
            break;
    }
    fclose(f);
    return kib;
}

/* utime + stime from /proc/PID/stat, in clock ticks. */
long th_proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long utime, stime;
    const char *p;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip past the last
     * ')'; then come state (field 3) ... utime (14) and stime (15). */
    p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (long)(utime + stime);
}

/* ---- the daemon ---- */

/* A wait status as an exit code, 128 + the signal number, or -1. */
static int th_exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

/* Polls waitpid(pid) until it exits or timeout_ms pass. Returns 1 with
 * *wstatus set once reaped, 0 if it still runs at the deadline, -1 if it
 * cannot be waited for. */
static int th_reap_within(pid_t pid, int timeout_ms, int *wstatus)
{
    uint64_t end = th_deadline(timeout_ms);

    for (;;) {
        pid_t r = waitpid(pid, wstatus, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (th_ms_left(end) == 0)
            return 0;
        th_sleep_ms(5);
    }
}

/* Records a wait status: exit code, or 128 + signal. */
static void th_daemon_reaped(struct th_daemon *d, int wstatus)
{
    d->status = th_exit_code(wstatus);
    d->pid = 0;
}

/* Reaps the daemon if it exited; tells whether it still runs. */
int th_daemon_alive(struct th_daemon *d)
{
    int ws;

    if (d->pid == 0)
        return 0;
    if (waitpid(d->pid, &ws, WNOHANG) == d->pid) {
        th_daemon_reaped(d, ws);
        return 0;
    }
    return 1;
}

/* Reads the whole log file into a malloc'd string. */
char *th_daemon_log(const struct th_daemon *d)
{
    FILE *f = fopen(d->logpath, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f == NULL)
        return NULL;
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Copies the log to stderr, framed, for a failing test's output. */
void th_daemon_dump_log(const struct th_daemon *d)
{
    char *log = th_daemon_log(d);

    fprintf(stderr, "---- farenad log (%s) ----\n%s---- end of log ----\n", d->logpath,
            log != NULL ? log : "(none)\n");
    free(log);
}

/* The child's side of the fork: limits, output, environment, exec. */
static void th_daemon_child(const struct th_daemon *d, const struct th_opts *o, pid_t parent)
{
    const char *argv[64];
    const char *engine;
    int argc = 0, fd;
    char asan[1024];
    const char *prev;

    /* If the test process dies (a failed assertion ends it at once), the
     * daemon must not outlive it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    if (o->nofile != 0 || o->nofile_soft != 0) {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        if (o->nofile != 0)
            rl.rlim_cur = rl.rlim_max = o->nofile;
        if (o->nofile_soft != 0)
            rl.rlim_cur = o->nofile_soft;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            _exit(126);
    }
    fd = open(d->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        _exit(125);
    dup2(fd, 1);
    dup2(fd, 2);
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        dup2(fd, 0);
    /* The daemon's descriptor count is measured: hand it nothing else. */
    if (close_range(3, ~0u, 0) < 0) {
        for (int i = 3; i < 4096; i++)
            close(i);
    }
    for (const char *const *e = o->env; e != NULL && *e != NULL; e++)
        putenv((char *)(uintptr_t)*e);
    if (o->journal_stream) {
        struct stat st;
        char js[64];
        if (fstat(2, &st) < 0)
            _exit(124);
        snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", js, 1);
    }
    /* A sanitizer build keeps freed memory in quarantine (256 MiB by
     * default), which would drown the RSS measurements. */
    prev = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=16", prev != NULL ? prev : "",
             prev != NULL && prev[0] != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);

    engine = getenv("FARENA_TEST_IO_ENGINE");
    argv[argc++] = FARENAD_PATH;
    if (!o->no_socket_arg) {
        argv[argc++] = "--socket";
        argv[argc++] = d->sock;
    }
    if (!o->no_dir_arg) {
        argv[argc++] = "--dir";
        argv[argc++] = d->scratch;
    }
    /* Before the test's own arguments, which may choose another engine. */
    if (engine != NULL && engine[0] != '\0') {
        argv[argc++] = "--io-engine";
        argv[argc++] = engine;
    }
    for (const char *const *a = o->args; a != NULL && *a != NULL && argc < 62; a++)
        argv[argc++] = *a;
    argv[argc] = NULL;
    execv(FARENAD_PATH, (char *const *)(uintptr_t)argv);
    _exit(127);
}

/* Whether args ask the daemon to be quiet (then it prints no listening
 * line and readiness is probed by connecting). */
static int th_args_quiet(const char *const *args)
{
    for (const char *const *a = args; a != NULL && *a != NULL; a++) {
        if (strcmp(*a, "-q") == 0 || strcmp(*a, "--quiet") == 0)
            return 1;
    }
    return 0;
}

/* Waits until the daemon listens: its log says so (no connection is made,
 * so connection counters start at zero), or, for a quiet daemon, a connect
 * succeeds. */
static int th_daemon_wait_ready(struct th_daemon *d, int quiet, int timeout_ms)
{
    uint64_t end = th_deadline(timeout_ms);

    while (th_ms_left(end) > 0) {
        if (!th_daemon_alive(d))
            return -1;
        if (quiet) {
            struct th_client *c = th_connect(d->sock, 0);
            if (c != NULL) {
                th_close(c);
                return 0;
            }
        } else {
            char *log = th_daemon_log(d);
            int ready = log != NULL && strstr(log, "listening on") != NULL;
            free(log);
            if (ready)
                return 0;
        }
        th_sleep_ms(5);
    }
    return -1;
}

/* Makes the directories, forks and execs farenad, waits until it listens. */
int th_daemon_start_opts(struct th_daemon *d, const struct th_opts *o)
{
    pid_t parent = getpid();
    char tmpl[160];

    memset(d, 0, sizeof(*d));
    snprintf(tmpl, sizeof(tmpl), "%s/d-XXXXXX", th_tmp_base());
    if (mkdtemp(tmpl) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return -1;
    }
    snprintf(d->dir, sizeof(d->dir), "%s", tmpl);
    snprintf(d->sock, sizeof(d->sock), "%s/%s", d->dir,
             o->socket_rel != NULL ? o->socket_rel : "farenad.sock");
    snprintf(d->scratch, sizeof(d->scratch), "%s/scratch", d->dir);
    snprintf(d->logpath, sizeof(d->logpath), "%s/farenad.log", d->dir);
    if (mkdir(d->scratch, 0700) < 0) {
        fprintf(stderr, "harness: mkdir %s: %s\n", d->scratch, strerror(errno));
        return -1;
    }
    fflush(NULL);
    d->pid = fork();
    if (d->pid < 0) {
        d->pid = 0;
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (d->pid == 0)
        th_daemon_child(d, o, parent);
    if (o->no_wait)
        return 0;
    if (th_daemon_wait_ready(d, th_args_quiet(o->args), TH_TIMEOUT_MS) < 0) {
        fprintf(stderr, "harness: farenad did not start listening on %s\n", d->sock);
        th_daemon_stop(d);
        th_daemon_dump_log(d);
        return -1;
    }
    return 0;
}

/* th_daemon_start_opts with only extra arguments. */
int th_daemon_start(struct th_daemon *d, const char *const *args)
{
    struct th_opts o = {.args = args};

    return th_daemon_start_opts(d, &o);
}

/* Polls waitpid until the deadline, then kills with SIGKILL. */
int th_daemon_wait_exit(struct th_daemon *d, int timeout_ms)
{
    int ws, r;

    if (d->pid == 0)
        return d->status;
    r = th_reap_within(d->pid, timeout_ms, &ws);
    if (r == 1) {
        th_daemon_reaped(d, ws);
        return d->status;
    }
    if (r == 0) {
        fprintf(stderr, "harness: farenad (pid %ld) did not exit in %d ms; killing it\n",
                (long)d->pid, timeout_ms);
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &ws, 0);
    }
    d->pid = 0;
    d->status = -1;
    return -1;
}

/* Waits for a child of the test within timeout_ms, killing it after. */
int th_wait_child(pid_t pid, int timeout_ms)
{
    int ws, r = th_reap_within(pid, timeout_ms, &ws);

    if (r == 1)
        return th_exit_code(ws);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &ws, 0);
    }
    return -1;
}

/* SIGTERM, then a bounded wait for the exit. */
int th_daemon_stop_within(struct th_daemon *d, int timeout_ms)
{
    if (d->pid == 0)
        return d->status;
    kill(d->pid, SIGTERM);
    return th_daemon_wait_exit(d, timeout_ms);
}

/* SIGTERM with the default bound. */
int th_daemon_stop(struct th_daemon *d)
{
    return th_daemon_stop_within(d, TH_TIMEOUT_MS);
}

/* Calls fn(path, link, arg) for each descriptor the daemon holds (path:
 * /proc/PID/fd/N, link: what it points at); returns how many calls
 * returned 0, or -1 when the descriptors cannot be listed. */
static int th_daemon_each_fd(const struct th_daemon *d,
                             int (*fn)(const char *path, const char *link, void *arg), void *arg)
{
    char dir[64], path[320], link[512];
    struct dirent *e;
    DIR *dp;
    int n = 0;

    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)d->pid);
    dp = opendir(dir);
    if (dp == NULL)
        return -1;
    while ((e = readdir(dp)) != NULL) {
        ssize_t len;

        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        len = readlink(path, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        n += fn(path, link, arg) == 0;
    }
    closedir(dp);
    return n;
}

/* th_daemon_each_file's step: the call's arguments, and the scratch dir. */
struct th_each_file {
    const char *scratch;
    int flags;
    int (*fn)(int fd, void *arg);
    void *arg;
};

/* Opens one descriptor of the daemon's if it is a data file and runs the
 * caller's function on it. */
static int th_each_file_one(const char *path, const char *link, void *arg)
{
    const struct th_each_file *ef = arg;
    int fd, rc;

    if (strncmp(link, ef->scratch, strlen(ef->scratch)) != 0)
        return -1;
    fd = open(path, ef->flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = ef->fn(fd, ef->arg);
    close(fd);
    return rc;
}

/* Opens each of the daemon's data files; see harness.h. */
int th_daemon_each_file(const struct th_daemon *d, int flags, int (*fn)(int fd, void *arg),
                        void *arg)
{
    struct th_each_file ef = {d->scratch, flags, fn, arg};

    return th_daemon_each_fd(d, th_each_file_one, &ef);
}

/* Whether a descriptor's link is a pipe: 0 if so (th_daemon_each_fd counts). */
static int th_is_pipe(const char *path, const char *link, void *arg)
{
    (void)path;
    (void)arg;
    return strncmp(link, "pipe:", 5) == 0 ? 0 : -1;
}

/* Counts the daemon's pipe descriptors; see harness.h. */
int th_daemon_pipes(const struct th_daemon *d)
{
    return th_daemon_each_fd(d, th_is_pipe, NULL);
}

/* Writes one file back and drops it from the page cache. */
static int th_evict_one(int fd, void *arg)
{
    (void)arg;
    return fdatasync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 ? 0 : -1;
}

/* Evicts the daemon's data files from the page cache; see harness.h. */
int th_daemon_evict(const struct th_daemon *d)
{
    return th_daemon_each_file(d, O_RDONLY, th_evict_one, NULL);
}

/* Stops the daemon if needed and removes its directory. */
void th_daemon_cleanup(struct th_daemon *d)
{
    if (d->pid != 0)
        th_daemon_stop(d);
    if (d->dir[0] != '\0')
        (void)th_rm_tree(d->dir);
    d->dir[0] = '\0';
}

/* ---- the client ---- */

struct th_client {
    int fd;
    int timeout_ms;
    uint32_t next_msgid;
    char *out; /* queued requests */
    size_t out_len, out_cap;
    char *in; /* received bytes; in[in_off..in_len) not yet consumed */
    size_t in_len, in_cap, in_off;
    size_t fed; /* bytes of the current message fed to the scanner */
    struct proto_scan *scan;
    msgpack_zone zone;
    msgpack_object obj;
};

/* Appends to the send queue (msgpack_packer write callback). */
static int th_out_write(void *data, const char *buf, size_t len)
{
    struct th_client *c = data;

    if (len > c->out_cap - c->out_len) {
        size_t ncap = c->out_cap ? c->out_cap : 4096;
        while (ncap - c->out_len < len)
            ncap *= 2;
        char *n = realloc(c->out, ncap);
        if (n == NULL)
            return -1;
        c->out = n;
        c->out_cap = ncap;
    }
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
    return 0;
}

/* Connects, retrying while the socket is missing or its backlog full. */
struct th_client *th_connect(const char *path, int timeout_ms)
{
    struct proto_limits lim = {PROTO_MAX_MESSAGE_MAX + 4096u, PROTO_MAX_DEPTH_MAX, 1u << 24};
    uint64_t end = th_deadline(timeout_ms);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct th_client *c;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return NULL;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        /* EAGAIN: the listener's backlog is full; ENOENT/ECONNREFUSED: not
         * up yet. Retry until the deadline. */
        if ((errno != EAGAIN && errno != ENOENT && errno != ECONNREFUSED) || th_ms_left(end) == 0) {
            close(fd);
            return NULL;
        }
        th_sleep_ms(2);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->scan = proto_scan_new(&lim)) == NULL ||
        !msgpack_zone_init(&c->zone, 8192)) {
        if (c != NULL)
            proto_scan_free(c->scan);
        free(c);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->timeout_ms = TH_TIMEOUT_MS;
    c->next_msgid = 1;
    return c;
}

/* Closes the socket and frees the client. */
void th_close(struct th_client *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    proto_scan_free(c->scan);
    msgpack_zone_destroy(&c->zone);
    free(c->out);
    free(c->in);
    free(c);
}

/* The client's socket. */
int th_client_fd(const struct th_client *c)
{
    return c->fd;
}

/* Sets the bound on each of c's waits. */
void th_set_timeout(struct th_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

/* Waits for events on c's socket until the deadline: 1 ready, 0 timeout. */
static int th_wait(const struct th_client *c, short events, uint64_t end)
{
    for (;;) {
        int left = th_ms_left(end);
        if (left == 0)
            return 0;
        struct pollfd p = {c->fd, events, 0};
        int r = poll(&p, 1, left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 1; /* let the following I/O call report the error */
    }
}

/* Sends all n bytes, polling for room until the deadline. */
int th_send_raw(struct th_client *c, const void *p, size_t n)
{
    uint64_t end = th_deadline(c->timeout_ms);
    const char *b = p;

    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return TH_ERR;
        if (!th_wait(c, POLLOUT, end))
            return TH_TIMEOUT;
    }
    return TH_OK;
}

/* Sends the queued requests and empties the queue. */
int th_flush(struct th_client *c)
{
    int rc = th_send_raw(c, c->out, c->out_len);

    c->out_len = 0;
    return rc;
}

/* Packs one fmt item (recursively for arrays); pk NULL only consumes the
 * arguments. Returns 0 or -1 (bad format). */
static int th_pack_item(const char **f, va_list *ap, msgpack_packer *pk)
{
    char ch = *(*f)++;

    switch (ch) {
    case 'u': {
        uint64_t v = va_arg(*ap, uint64_t);
        return pk ? msgpack_pack_uint64(pk, v) : 0;
    }
    case 'i': {
        int64_t v = va_arg(*ap, int64_t);
        return pk ? msgpack_pack_int64(pk, v) : 0;
    }
    case 'd': {
        double v = va_arg(*ap, double);
        return pk ? msgpack_pack_double(pk, v) : 0;
    }
    case 'n':
        return pk ? msgpack_pack_nil(pk) : 0;
    case 'T':
        return pk ? msgpack_pack_true(pk) : 0;
    case 's': {
        const char *s = va_arg(*ap, const char *);
        size_t len = strlen(s);
        return pk ? (msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len)) : 0;
    }
    case 'S': {
        const char *s = va_arg(*ap, const char *);
        size_t len = va_arg(*ap, size_t);
        return pk ? (msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len)) : 0;
    }
    case 'b': {
        const void *p = va_arg(*ap, const void *);
        size_t len = va_arg(*ap, size_t);
        return pk ? (msgpack_pack_bin(pk, len) || msgpack_pack_bin_body(pk, p, len)) : 0;
    }
    case 'L': {
        struct proto_loc loc = va_arg(*ap, struct proto_loc);
        return pk ? proto_pack_loc(pk, loc) : 0;
    }
    case 'U': {
        const uint64_t *v = va_arg(*ap, const uint64_t *);
        size_t n = va_arg(*ap, size_t);
        if (pk == NULL)
            return 0;
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (msgpack_pack_uint64(pk, v[i]))
                return -1;
        }
        return 0;
    }
    case 'a': {
        unsigned n = va_arg(*ap, unsigned);
        if (pk != NULL && msgpack_pack_array(pk, n))
            return -1;
        for (unsigned i = 0; i < n; i++) {
            const char *item = va_arg(*ap, const char *);
            if (item == NULL || item[0] == '\0' || th_pack_item(&item, ap, pk) < 0)
                return -1;
        }
        return 0;
    }
    case 'm':
        return pk ? msgpack_pack_map(pk, 0) : 0;
    default:
        fprintf(stderr, "harness: bad format letter '%c'\n", ch);
        return -1;
    }
}

/* Packs [0, msgid, method, params] (notify: [2, method, params]) into the
 * send queue. Returns the msgid (0 for a notification) or -1. */
static int64_t th_vqueue(struct th_client *c, int notify, const char *method, const char *fmt,
                         va_list ap)
{
    msgpack_packer pk;
    const char *f = fmt;
    uint32_t n = 0, msgid = notify ? 0 : c->next_msgid++;
    size_t mark = c->out_len;
    size_t mlen = strlen(method);
    va_list cp;
    int bad = 0;

    va_copy(cp, ap);
    while (*f != '\0') {
        if (th_pack_item(&f, &cp, NULL) < 0) {
            bad = 1;
            break;
        }
        n++;
    }
    va_end(cp);
    if (bad)
        return -1;
    msgpack_packer_init(&pk, c, th_out_write);
    if (notify)
        bad = msgpack_pack_array(&pk, 3) || msgpack_pack_uint8(&pk, 2);
    else
        bad = msgpack_pack_array(&pk, 4) || msgpack_pack_uint8(&pk, 0) ||
              msgpack_pack_uint32(&pk, msgid);
    bad = bad || msgpack_pack_str(&pk, mlen) || msgpack_pack_str_body(&pk, method, mlen) ||
          msgpack_pack_array(&pk, n);
    f = fmt;
    va_copy(cp, ap);
    while (!bad && *f != '\0')
        bad = th_pack_item(&f, &cp, &pk) < 0;
    va_end(cp);
    if (bad) {
        c->out_len = mark;
        return -1;
    }
    return msgid;
}

/* Queues a request; see harness.h for fmt. */
int64_t th_queue(struct th_client *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    int64_t id;

    va_start(ap, fmt);
    id = th_vqueue(c, 0, method, fmt, ap);
    va_end(ap);
    return id;
}

/* Queues a notification; see harness.h for fmt. */
int th_queue_notify(struct th_client *c, const char *method, const char *fmt, ...)
{
    va_list ap;
    int64_t id;

    va_start(ap, fmt);
    id = th_vqueue(c, 1, method, fmt, ap);
    va_end(ap);
    return id < 0 ? -1 : 0;
}

/* Copies at most cap-1 bytes of a non-terminated string. */
static void th_copy(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Decodes the complete message at in[in_off], len bytes, into *r. */
static int th_decode(struct th_client *c, size_t len, struct th_reply *r)
{
    struct proto_response resp;
    const char *why = NULL;

    if (proto_unpack(&c->zone, c->in + c->in_off, len, &c->obj, &why) < 0 ||
        proto_response_decode(&c->obj, &resp, &why) < 0) {
        fprintf(stderr, "harness: bad response: %s\n", why != NULL ? why : "?");
        return TH_ERR;
    }
    memset(r, 0, sizeof(*r));
    r->msgid = resp.msgid;
    r->err = resp.err;
    r->item = resp.item;
    r->result = resp.result;
    if (resp.errname != NULL)
        th_copy(r->code, sizeof(r->code), resp.errname, resp.errname_len);
    if (resp.message != NULL)
        th_copy(r->msg, sizeof(r->msg), resp.message, resp.message_len);
    return TH_OK;
}

/* Reads until the scanner delimits one response, then decodes it. */
int th_recv(struct th_client *c, struct th_reply *r)
{
    uint64_t end = th_deadline(c->timeout_ms);

    /* The previous reply's objects are dead now: reclaim its bytes. */
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    msgpack_zone_clear(&c->zone);
    for (;;) {
        while (c->in_off + c->fed < c->in_len) {
            size_t used = 0;
            const char *why = NULL;
            enum proto_scan_status st = proto_scan_feed(
                c->scan, c->in + c->in_off + c->fed, c->in_len - c->in_off - c->fed, &used, &why);
            c->fed += used;
            if (st == PROTO_SCAN_REJECT) {
                fprintf(stderr, "harness: scanner rejected a response: %s\n", why);
                return TH_ERR;
            }
            if (st == PROTO_SCAN_READY) {
                size_t len = proto_scan_total(c->scan);
                int rc = th_decode(c, len, r);
                c->in_off += len;
                c->fed = 0;
                proto_scan_reset(c->scan);
                return rc;
            }
        }
        if (c->in_cap - c->in_len < 65536) {
            size_t ncap = c->in_cap ? c->in_cap * 2 : 262144;
            char *n = realloc(c->in, ncap);
            if (n == NULL)
                return TH_ERR;
            c->in = n;
            c->in_cap = ncap;
        }
        ssize_t got = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (got > 0) {
            c->in_len += (size_t)got;
            continue;
        }
        if (got == 0 || (got < 0 && errno == ECONNRESET))
            return c->in_len > c->in_off ? TH_ERR : TH_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return TH_ERR;
        if (!th_wait(c, POLLIN, end))
            return TH_TIMEOUT;
    }
}

/* Succeeds only if the peer closes before sending anything more. */
int th_wait_eof(struct th_client *c, struct th_reply *r)
{
    int rc = th_recv(c, r);

    return rc == TH_OK ? TH_ERR : rc;
}

/* One request and its reply, matched by msgid. */
int th_call(struct th_client *c, struct th_reply *r, const char *method, const char *fmt, ...)
{
    va_list ap;
    int64_t id;
    int rc;

    va_start(ap, fmt);
    id = th_vqueue(c, 0, method, fmt, ap);
    va_end(ap);
    if (id < 0)
        return TH_ERR;
    rc = th_flush(c);
    if (rc != TH_OK)
        return rc;
    rc = th_recv(c, r);
    if (rc == TH_OK && r->msgid != (uint32_t)id) {
        fprintf(stderr, "harness: reply msgid %u, expected %u\n", r->msgid, (unsigned)id);
        return TH_ERR;
    }
    return rc;
}

/* ---- results ---- */

const msgpack_object *th_map_get(const msgpack_object *map, const char *key)
{
    return proto_map_get(map, key);
}

/* An unsigned integer object's value, or UINT64_MAX. */
uint64_t th_u64(const msgpack_object *o)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return UINT64_MAX;
    return o->via.u64;
}

/* map[key] as an unsigned integer, or UINT64_MAX. */
uint64_t th_map_u64(const msgpack_object *map, const char *key)
{
    return th_u64(th_map_get(map, key));
}

/* One stat counter, or UINT64_MAX. */
uint64_t th_stat_u64(struct th_client *c, const char *key)
{
    struct th_reply r;

    if (th_call(c, &r, "stat", "") != TH_OK || r.err != PROTO_OK)
        return UINT64_MAX;
    return th_map_u64(r.result, key);
}

/* Polls one stat counter until it equals want. */
int th_wait_stat(struct th_client *c, const char *key, uint64_t want, int timeout_ms)
{
    uint64_t end = th_deadline(timeout_ms);

    for (;;) {
        if (th_stat_u64(c, key) == want)
            return 0;
        if (th_ms_left(end) == 0)
            return -1;
        th_sleep_ms(5);
    }
}
