/* farenad: options, start-up, signals, shutdown. Everything else lives in
 * the modules: sock (where to listen), registry + store (the data), methods
 * (the protocol's methods), server (connections and guards). */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "proto_limits.h"
#include "config.h"
#include "io.h"
#include "log.h"
#include "methods.h"
#include "registry.h"
#include "server.h"
#include "sock.h"
#include "store.h"
#include "sysd.h"

/* Signal handling state. */
struct sigctx {
    struct server *srv;
    struct sock_bound *bound;
};

/* Prints the usage text with every option and its default. */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: farenad [options]\n"
            "\n"
            "farenad serves farena's scratch store on a Unix socket (MessagePack-RPC,\n"
            "protocol %d) and runs in the foreground until SIGTERM or SIGINT.\n"
            "\n"
            "  --socket PATH      socket to listen on; default $FARENA_SOCKET, else\n"
            "                     $XDG_RUNTIME_DIR/farena/farenad.sock, else\n"
            "                     /tmp/farena-$UID/farenad.sock. Its directory is created\n"
            "                     with mode 0700 and must belong to this user.\n"
            "  --dir DIR          scratch directory for the anonymous data files; default\n"
            "                     $FARENA_DIR, else $TMPDIR, else /var/tmp\n"
            "  --max-bytes N      quota on all scratch bytes; 0 = unlimited (default 0)\n"
            "  --min-free N       bytes that must stay free on the scratch file system;\n"
            "                     0 = no floor (default 64M)\n"
            "  --max-message N    largest request or response, %uK..%uM (default 64M)\n"
            "  --max-clients N    simultaneous connections (default 1024)\n"
            "  --max-writers N    open writers per connection (default 1024)\n"
            "  --max-handles N    writers + files + arena references per connection\n"
            "                     (default 65536)\n"
            "  --file-max N       largest data file, 1..4294967295 (default 4294967295);\n"
            "                     for testing file_full without writing 4 GiB\n"
            "  --io-engine E      file I/O engine: auto (io_uring, else threads; the\n"
            "                     default), uring (fail if unavailable), threads\n"
            "  --io-depth N       reads and writes in flight at once, 1..%u (default %u)\n"
            "  --reply-memory N   replies all connections may hold queued, payloads\n"
            "                     being read included, 1M.. (default 256M)\n"
            "  -v, --verbose      log more (per-connection events); repeatable\n"
            "  -q, --quiet        log less (warnings only; twice: errors only)\n"
            "  --version          print the version and exit\n"
            "  --help             print this help and exit\n"
            "\n"
            "Sizes take an optional K, M or G suffix (powers of 1024).\n"
            "Exit status: 0 after a clean shutdown, 1 if start-up fails, 2 on bad usage.\n",
            PROTO_VERSION, PROTO_MAX_MESSAGE_MIN >> 10, PROTO_MAX_MESSAGE_MAX >> 20, IO_DEPTH_MAX,
            IO_DEPTH_DEFAULT);
}

/* Reports a usage error and exits 2. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("farenad: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'farenad --help'.\n", stderr);
    exit(2);
}

/* Parses a decimal number with an optional K/M/G suffix (1024-based) in
 * [min, max]. Anything else (signs, spaces, junk, overflow) exits 2. */
static uint64_t parse_size(const char *opt, const char *s, uint64_t min, uint64_t max, int suffixes)
{
    uint64_t v = 0, mult = 1;
    const char *p = s;

    if (*p < '0' || *p > '9')
        usage_error("%s: \"%s\" is not a non-negative number", opt, s);
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            usage_error("%s: \"%s\" is too large", opt, s);
        v = v * 10 + d;
    }
    if (*p != '\0' && suffixes) {
        switch (*p) {
        case 'K':
        case 'k':
            mult = 1ull << 10;
            break;
        case 'M':
        case 'm':
            mult = 1ull << 20;
            break;
        case 'G':
        case 'g':
            mult = 1ull << 30;
            break;
        default:
            usage_error("%s: \"%s\": unknown suffix (use K, M or G)", opt, s);
        }
        p++;
    }
    if (*p != '\0')
        usage_error("%s: \"%s\" is not a number%s", opt, s, suffixes ? " with K/M/G suffix" : "");
    if (v > UINT64_MAX / mult)
        usage_error("%s: \"%s\" is too large", opt, s);
    v *= mult;
    if (v < min || v > max)
        usage_error("%s: %s is out of range %" PRIu64 "..%" PRIu64, opt, s, min, max);
    return v;
}

enum {
    OPT_SOCKET = 256,
    OPT_DIR,
    OPT_MAX_BYTES,
    OPT_MIN_FREE,
    OPT_MAX_MESSAGE,
    OPT_MAX_CLIENTS,
    OPT_MAX_WRITERS,
    OPT_MAX_HANDLES,
    OPT_FILE_MAX,
    OPT_IO_ENGINE,
    OPT_IO_DEPTH,
    OPT_REPLY_MEMORY,
    OPT_VERSION,
    OPT_HELP
};

/* Fills *o from argv, exiting on --help, --version and usage errors. */
static void parse_options(int argc, char **argv, struct farenad_config *o)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"dir", required_argument, NULL, OPT_DIR},
        {"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
        {"min-free", required_argument, NULL, OPT_MIN_FREE},
        {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"max-writers", required_argument, NULL, OPT_MAX_WRITERS},
        {"max-handles", required_argument, NULL, OPT_MAX_HANDLES},
        {"file-max", required_argument, NULL, OPT_FILE_MAX},
        {"io-engine", required_argument, NULL, OPT_IO_ENGINE},
        {"io-depth", required_argument, NULL, OPT_IO_DEPTH},
        {"reply-memory", required_argument, NULL, OPT_REPLY_MEMORY},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int ch;

    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":vq", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_SOCKET:
            if (optarg[0] == '\0')
                usage_error("--socket: empty path");
            o->socket = optarg;
            break;
        case OPT_DIR:
            if (optarg[0] == '\0')
                usage_error("--dir: empty path");
            o->store.dir = optarg;
            break;
        case OPT_MAX_BYTES:
            o->store.max_bytes = parse_size("--max-bytes", optarg, 0, UINT64_MAX, 1);
            break;
        case OPT_MIN_FREE:
            o->store.min_free = parse_size("--min-free", optarg, 0, UINT64_MAX, 1);
            break;
        case OPT_MAX_MESSAGE:
            o->limits.max_message = (uint32_t)parse_size(
                "--max-message", optarg, PROTO_MAX_MESSAGE_MIN, PROTO_MAX_MESSAGE_MAX, 1);
            break;
        case OPT_MAX_CLIENTS:
            o->max_clients = (uint32_t)parse_size("--max-clients", optarg, 1, UINT32_MAX, 0);
            break;
        case OPT_MAX_WRITERS:
            o->reg.max_writers = (uint32_t)parse_size("--max-writers", optarg, 1, UINT32_MAX, 0);
            break;
        case OPT_MAX_HANDLES:
            o->reg.max_handles = (uint32_t)parse_size("--max-handles", optarg, 1, UINT32_MAX, 0);
            break;
        case OPT_IO_ENGINE:
            if (strcmp(optarg, "auto") == 0)
                o->io.kind = IO_AUTO;
            else if (strcmp(optarg, "uring") == 0 || strcmp(optarg, "io_uring") == 0)
                o->io.kind = IO_URING;
            else if (strcmp(optarg, "threads") == 0)
                o->io.kind = IO_THREADS;
            else
                usage_error("--io-engine: \"%s\" is not auto, uring or threads", optarg);
            break;
        case OPT_IO_DEPTH:
            o->io.depth = (uint32_t)parse_size("--io-depth", optarg, 1, IO_DEPTH_MAX, 0);
            break;
        case OPT_REPLY_MEMORY:
            o->reply_memory = parse_size("--reply-memory", optarg, 1u << 20, UINT64_MAX / 2, 1);
            break;
        case OPT_FILE_MAX:
            o->store.file_max = parse_size("--file-max", optarg, 1, PROTO_FILE_MAX, 1);
            break;
        case 'v':
            o->verbosity++;
            break;
        case 'q':
            o->verbosity--;
            break;
        case OPT_VERSION:
            printf("farenad %s (protocol %d)\n", FARENAD_VERSION, PROTO_VERSION);
            exit(0);
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case ':':
            usage_error("option %s needs a value", argv[optind - 1]);
        default:
            if (optopt != 0)
                usage_error("unknown option -%c", optopt);
            usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument \"%s\"", argv[optind]);
}

/* The scratch directory: --dir, $FARENA_DIR, $TMPDIR, /var/tmp. */
static const char *scratch_dir(const struct farenad_config *o)
{
    const char *env;

    if (o->store.dir != NULL)
        return o->store.dir;
    env = getenv("FARENA_DIR");
    if (env != NULL && env[0] != '\0')
        return env;
    env = getenv("TMPDIR");
    if (env != NULL && env[0] != '\0')
        return env;
    return "/var/tmp";
}

/* Formats a resource limit value. */
static const char *rlim_str(rlim_t v, char *buf, size_t len)
{
    if (v == RLIM_INFINITY)
        snprintf(buf, len, "unlimited");
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

/* Raises the open-file soft limit to the hard limit: every file of every
 * arena keeps a descriptor open. */
static void raise_nofile(void)
{
    struct rlimit rl;
    char a[32], b[32], c[32];
    rlim_t before;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return;
    }
    before = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            /* An unlimited hard limit is capped by fs.nr_open. */
            FILE *f = fopen("/proc/sys/fs/nr_open", "r");
            unsigned long long nr = 0;
            if (f != NULL) {
                if (fscanf(f, "%llu", &nr) != 1)
                    nr = 0;
                fclose(f);
            }
            rl.rlim_cur = nr > before ? (rlim_t)nr : before;
            if (rl.rlim_cur == before || setrlimit(RLIMIT_NOFILE, &rl) < 0)
                rl.rlim_cur = before;
        }
    }
    log_info("open-file limit: soft %s (was %s), hard %s", rlim_str(rl.rlim_cur, a, sizeof(a)),
             rlim_str(before, b, sizeof(b)), rlim_str(rl.rlim_max, c, sizeof(c)));
}

/* The path an inherited listening socket is bound to, for logs (malloc'd;
 * "(inherited socket)" when it has none). Exits on ENOMEM. */
static char *activated_path(int fd)
{
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);
    char *p;

    memset(&sun, 0, sizeof(sun));
    if (getsockname(fd, (struct sockaddr *)&sun, &len) == 0 &&
        len > offsetof(struct sockaddr_un, sun_path) && sun.sun_path[0] != '\0')
        p = strndup(sun.sun_path, sizeof(sun.sun_path));
    else
        p = strdup("(inherited socket)");
    if (p == NULL)
        fatal("out of memory");
    return p;
}

/* SIGTERM / SIGINT: begin graceful shutdown; the socket file goes at once so
 * no new client finds it. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct sigctx *ctx = arg;

    (void)what;
    if (server_shutting_down(ctx->srv)) {
        log_info("%s again: still finishing connections", strsignal((int)sig));
        return;
    }
    log_info("%s: farenad shutting down", strsignal((int)sig));
    if (sysd_notify("STOPPING=1\nSTATUS=shutting down") < 0)
        log_warn("cannot notify systemd: %s", strerror(errno));
    server_shutdown(ctx->srv);
    sock_unlink(ctx->bound);
}

/* Creates the registry (with its store) and the method table from the
 * configuration; exits on failure. Both are freed by main(). */
static void start_registry(const struct farenad_config *cfg, struct io *io, struct reg **reg,
                           struct methods **m)
{
    const char *dir = cfg->store.dir;
    struct err err;
    const char *fstype = NULL;

    if (store_dir_in_memory(dir, &fstype) == 1)
        log_warn("scratch directory %s is on %s: stored data will take RAM, not disk "
                 "(use --dir or FARENA_DIR to pick a disk)",
                 dir, fstype);
    if (reg_new(&cfg->store, &cfg->reg, reg, &err) < 0)
        fatal("scratch directory %s: %s", dir, err.msg);
    *m = methods_new(*reg, io, cfg);
    if (*m == NULL)
        fatal("out of memory");
}

/* Gets the listening socket: from systemd when socket-activated (bound
 * stays empty: systemd owns the file), else bound at --socket or the
 * default path. Returns the path for logs (malloc'd; main() frees it) and
 * sets *activated; exits on failure. */
static char *open_listener(const struct farenad_config *o, int *fd, struct sock_bound *bound,
                           int *activated)
{
    char *path;
    const char *why;
    enum sock_status st;
    struct err err;

    memset(bound, 0, sizeof(*bound));
    *activated = sysd_listen_fd(fd, &why);
    if (*activated < 0)
        fatal("socket activation: %s", why);
    if (*activated == 1) {
        path = activated_path(*fd);
        if (o->socket != NULL)
            log_warn("--socket %s ignored: systemd passed the listening socket", o->socket);
        return path;
    }
    path = o->socket != NULL ? strdup(o->socket) : sock_default_path();
    if (path == NULL)
        fatal("out of memory");
    st = sock_listen(path, fd, bound, &err);
    if (st != SOCK_OK)
        fatal("%s", err.msg);
    return path;
}

/* Creates the event loop, the server on fd and the signal events; exits on
 * failure (removing the socket file first). */
static struct server *start_server(const struct farenad_config *cfg, int fd, const char *path,
                                   struct reg *reg, struct methods *m, struct io *io,
                                   struct sigctx *sctx, struct event_base **base,
                                   struct event *sigs[2])
{
    struct server *srv;

    srv = server_new(*base, fd, cfg, reg, m, io);
    if (srv == NULL) {
        sock_unlink(sctx->bound);
        fatal("cannot listen on %s: %s", path, strerror(errno));
    }
    sctx->srv = srv;
    sigs[0] = evsignal_new(*base, SIGTERM, on_signal, sctx);
    sigs[1] = evsignal_new(*base, SIGINT, on_signal, sctx);
    if (sigs[0] == NULL || sigs[1] == NULL || evsignal_add(sigs[0], NULL) < 0 ||
        evsignal_add(sigs[1], NULL) < 0) {
        sock_unlink(sctx->bound);
        fatal("cannot install signal handlers");
    }
    return srv;
}

/* Runs the event loop one turn at a time, ending each turn with
 * server_turn_end() (the I/O engine's one submission for the turn), until
 * the server asks it to exit. Returns 0, or -1 when the loop failed. */
static int serve(struct event_base *base, struct server *srv)
{
    for (;;) {
        int rc = event_base_loop(base, EVLOOP_ONCE);

        if (rc < 0)
            return -1;
        server_turn_end(srv);
        if (rc == 1 || event_base_got_exit(base) || event_base_got_break(base))
            return 0;
    }
}

/* Parses options, starts up, serves until a signal, shuts down. */
int main(int argc, char **argv)
{
    struct farenad_config cfg;
    struct sock_bound bound;
    struct reg *reg;
    struct methods *m;
    struct server *srv;
    struct event_base *base;
    struct io *io;
    struct event *sigs[2];
    struct sigctx sctx;
    char *path, msg[512], why[256];
    sigset_t stop_sigs;
    int fd, level, activated, loop_failed;

    config_defaults(&cfg);
    parse_options(argc, argv, &cfg);
    level = LOG_LVL_INFO + cfg.verbosity;
    if (cfg.verbosity < 0)
        level = cfg.verbosity == -1 ? LOG_LVL_WARN : LOG_LVL_ERR;
    if (level > LOG_LVL_DEBUG)
        level = LOG_LVL_DEBUG;
    log_init((enum log_level)level);
    signal(SIGPIPE, SIG_IGN);
    /* A fixed threshold: large buffers (a connection's grown input, a big
     * reply) are mapped on their own and unmapped when freed. glibc's
     * default raises the threshold to the largest block freed so far, after
     * which such buffers come from the heap and freed ones stay resident. */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    /* Until the event loop's handlers exist, a SIGTERM/SIGINT would kill us
     * with the socket file left behind: hold them pending until then. */
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_sigs, NULL);
    raise_nofile();

    cfg.store.dir = scratch_dir(&cfg);
    base = event_base_new();
    if (base == NULL)
        fatal("cannot create the event loop");
    io = io_new(base, &cfg.io, why, sizeof(why));
    if (io == NULL)
        fatal("cannot start the I/O engine: %s", why);
    log_info("I/O engine: %s, depth %" PRIu32, io_engine_name(io), io_depth(io));
    start_registry(&cfg, io, &reg, &m);
    path = open_listener(&cfg, &fd, &bound, &activated);
    sctx.bound = &bound;
    srv = start_server(&cfg, fd, path, reg, m, io, &sctx, &base, sigs);
    sigprocmask(SIG_UNBLOCK, &stop_sigs, NULL);

    log_info("farenad listening on %s (scratch %s)%s", path, cfg.store.dir,
             activated == 1 ? " (socket from systemd)" : "");
    /* Ready only now: the listener is registered, so a client that systemd
     * or a supervisor lets through is served as soon as the loop runs. */
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving on %s", path);
    if (sysd_notify(msg) < 0)
        log_warn("cannot notify systemd: %s", strerror(errno));
    /* A loop that fails (its epoll_wait broke) ends the service: the exit
     * status says so after the usual clean-up, since 0 means a clean
     * shutdown. */
    loop_failed = serve(base, srv) < 0;
    if (loop_failed)
        log_err("event loop failed");
    log_info("farenad stopped");

    /* The engine drains first: a completion must find its connection. */
    io_free(io);
    server_free(srv);
    event_free(sigs[0]);
    event_free(sigs[1]);
    event_base_free(base);
    libevent_global_shutdown();
    methods_free(m);
    reg_free(reg);
    sock_unlink(&bound);
    sock_forget(&bound);
    free(path);
    return loop_failed ? 1 : 0;
}
