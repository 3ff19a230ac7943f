/* farena-bench-direct: the figures of direct reads (issue 14), as ratios
 * measured in one run against a private farenad it starts itself.
 *
 *   1. one-at-a-time 64 B farena_get_into on a held arena (direct reads)
 *      ÷ in-process pread of the same items (the same files);
 *   2. 16 threads through one farena_reader, random 4 KiB on evicted data
 *      ÷ 16 threads of in-process pread on the same evicted files;
 *   3. 16 threads, 64 B, page-cached, through the reader ÷ 16-thread pread;
 *   4. Python Client.get one at a time ÷ C farena_get_into;
 *   5. Python get_many_views of 10,000 × 64 B ÷ C farena_get_many_into
 *      (the locations packed once in a farena.Locs, as C keeps its array;
 *      also reported converted from a list on every call).
 *
 * The floors pread the very descriptors libfarena received (found through
 * /proc/self/fd: their targets are the daemon's scratch files), so both
 * sides read the same bytes of the same files. Eviction is fdatasync() +
 * posix_fadvise(DONTNEED) on those descriptors (the page cache is per
 * file). Each figure alternates its two sides for --rounds rounds and
 * reports medians. Also reported, for context: the daemon path's
 * one-at-a-time rate.
 *
 *   farena-bench-direct [--farenad PATH] [--dir DIR] [--seconds S]
 *                       [--rounds N] [--threads T] [--cold-mib M]
 *                       [--python PYTHON] [--no-python]
 *
 * --dir is the scratch directory (default $TMPDIR, else /var/tmp): put it
 * on a real disk for figure 2. The machine should be otherwise idle. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "farena.h"

#define SMALL_N    10000
#define SMALL_SIZE 64
#define COLD_SIZE  4096
#define MAX_FDS    64
#define MAX_ROUNDS 15

/* Run-wide settings. */
static struct {
    const char *farenad;
    const char *dir;
    const char *python;
    double seconds;
    int rounds;
    int threads;
    unsigned cold_mib;
} opt = {BENCH_FARENAD, NULL, "python3", 2.0, 3, 16, 2048};

static char sock_path[256], run_dir[128];
static pid_t daemon_pid;

/* Prints a message and exits (the daemon is stopped by atexit). */
static void die(const char *what, int err, farena_client *c)
{
    fprintf(stderr, "farena-bench-direct: %s: %s%s%s\n", what, farena_strerror(err), c ? ": " : "",
            c ? farena_errmsg(c) : "");
    exit(1);
}

/* Seconds on the monotonic clock. */
static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Stops the daemon this program started. */
static void stop_daemon(void)
{
    char path[300];

    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        daemon_pid = 0;
    }
    if (run_dir[0] != '\0') {
        snprintf(path, sizeof(path), "%s/farenad.sock", run_dir);
        unlink(path);
        rmdir(run_dir);
    }
}

/* Starts farenad on a private socket and waits until it answers. */
static void start_daemon(void)
{
    farena_client *c = NULL;

    snprintf(run_dir, sizeof(run_dir), "/tmp/farena-bench-direct-XXXXXX");
    if (mkdtemp(run_dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(sock_path, sizeof(sock_path), "%s/farenad.sock", run_dir);
    daemon_pid = fork();
    if (daemon_pid == 0) {
        execl(opt.farenad, opt.farenad, "--socket", sock_path, "--dir", opt.dir, "--min-free", "0",
              "-q", (char *)NULL);
        perror(opt.farenad);
        _exit(127);
    }
    atexit(stop_daemon);
    for (int i = 0; i < 500; i++) {
        if (farena_connect(sock_path, &c) == 0) {
            farena_close(c);
            return;
        }
        usleep(20000);
    }
    fprintf(stderr, "farena-bench-direct: farenad did not start\n");
    exit(1);
}

/* Connects with direct reads on or off. */
static farena_client *connect_direct(int direct)
{
    struct farena_connect_options o = FARENA_CONNECT_OPTIONS_INIT;
    farena_client *c;
    char why[320];
    int err;

    o.direct = direct;
    err = farena_connect_opts(sock_path, &o, &c, why, sizeof(why));
    if (err != 0) {
        fprintf(stderr, "connect: %s\n", why);
        exit(1);
    }
    return c;
}

/* The descriptors of this process open on scratch files of size `size`:
 * the ones libfarena received. Returns how many (at most max). */
static int scratch_fds(uint64_t size, int *out, int max)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL && n < max) {
        char path[300], target[512];
        struct stat st;
        ssize_t len;
        int fd = atoi(e->d_name);

        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0 || e->d_name[0] == '.')
            continue;
        target[len] = '\0';
        if (strncmp(target, opt.dir, strlen(opt.dir)) != 0 || fstat(fd, &st) != 0 ||
            (uint64_t)st.st_size != size)
            continue;
        out[n++] = fd;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* Drops the files' pages from the page cache. */
static void evict(const int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fdatasync(fds[i]);
        posix_fadvise(fds[i], 0, 0, POSIX_FADV_DONTNEED);
    }
}

/* The share of the files' pages in the page cache (mincore), 0..1. */
static double resident(const int *fds, int n, uint64_t size)
{
    size_t pages = (size_t)((size + 4095) / 4096), in = 0, total = 0;
    unsigned char *vec = malloc(pages);

    for (int i = 0; i < n && vec != NULL; i++) {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fds[i], 0);
        if (p == MAP_FAILED)
            continue;
        if (mincore(p, (size_t)size, vec) == 0)
            for (size_t k = 0; k < pages; k++)
                in += vec[k] & 1;
        total += pages;
        munmap(p, (size_t)size);
    }
    free(vec);
    return total ? (double)in / (double)total : -1;
}

/* The median of n values (n <= MAX_ROUNDS). */
static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- one thread ---- */

static struct farena_loc small_locs[SMALL_N];

/* Random one-at-a-time gets through c for opt.seconds: gets per second. */
static double run_gets(farena_client *c, farena_handle arena)
{
    struct farena_buf buf = FARENA_BUF_INIT;
    uint64_t s = 88172645463325252u, n = 0;
    double t0 = now(), t;
    int err;

    do {
        for (int k = 0; k < 1000; k++) {
            farena_buf_clear(&buf);
            err = farena_get_into(c, arena, small_locs[rnd(&s) % SMALL_N], &buf);
            if (err != 0)
                die("get", err, c);
        }
        n += 1000;
        t = now();
    } while (t - t0 < opt.seconds);
    farena_buf_free(&buf);
    return (double)n / (t - t0);
}

/* The same items with pread on fd: reads per second. */
static double run_pread(int fd)
{
    uint64_t s = 88172645463325252u, n = 0;
    char buf[SMALL_SIZE];
    double t0 = now(), t;

    do {
        for (int k = 0; k < 1000; k++) {
            const struct farena_loc *l = &small_locs[rnd(&s) % SMALL_N];
            if (pread(fd, buf, l->len, l->offset) != (ssize_t)l->len) {
                perror("pread");
                exit(1);
            }
        }
        n += 1000;
        t = now();
    } while (t - t0 < opt.seconds);
    return (double)n / (t - t0);
}

/* get_many of 10,000 random 64 B items, repeated: items per second. */
static double run_get_many(farena_client *c, farena_handle arena, const struct farena_loc *locs)
{
    struct farena_buf buf = FARENA_BUF_INIT;
    uint64_t n = 0;
    double t0 = now(), t;
    int err;

    do {
        farena_buf_clear(&buf);
        err = farena_get_many_into(c, arena, locs, SMALL_N, &buf);
        if (err != 0)
            die("get_many", err, c);
        n += SMALL_N;
        t = now();
    } while (t - t0 < opt.seconds);
    farena_buf_free(&buf);
    return (double)n / (t - t0);
}

/* ---- many threads ---- */

/* One side of a threaded figure. */
struct mt {
    farena_reader *r; /* the reader, or NULL for the pread floor */
    const int *fds;   /* the floor's descriptors */
    int nfds;
    const struct farena_loc *locs; /* small items; NULL: random COLD_SIZE blocks */
    uint32_t nfiles;
    uint64_t file_size;
    atomic_int stop;
    atomic_uint_fast64_t ops;
};

/* Args of one thread. */
struct mt_arg {
    struct mt *m;
    uint64_t seed;
};

/* A worker: reads until stop, then adds its count. */
static void *mt_worker(void *p)
{
    struct mt_arg *a = p;
    struct mt *m = a->m;
    struct farena_buf buf = FARENA_BUF_INIT;
    char block[COLD_SIZE];
    uint64_t s = a->seed, n = 0;

    while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
        for (int k = 0; k < 64; k++) {
            struct farena_loc l;
            uint64_t x = rnd(&s);
            if (m->locs != NULL) {
                l = m->locs[x % SMALL_N];
            } else {
                l.file_index = (uint16_t)(x % m->nfiles);
                l.offset = (uint32_t)(((x >> 16) % (m->file_size / COLD_SIZE)) * COLD_SIZE);
                l.len = COLD_SIZE;
            }
            if (m->r != NULL) {
                farena_buf_clear(&buf);
                if (farena_reader_get_into(m->r, l, &buf) != 0) {
                    fprintf(stderr, "reader get failed\n");
                    exit(1);
                }
            } else if (pread(m->fds[l.file_index % m->nfds], block, l.len, l.offset) !=
                       (ssize_t)l.len) {
                perror("pread");
                exit(1);
            }
        }
        n += 64;
    }
    atomic_fetch_add(&m->ops, n);
    farena_buf_free(&buf);
    return NULL;
}

/* Runs opt.threads workers for opt.seconds: operations per second. */
static double run_threads(struct mt *m)
{
    pthread_t th[256];
    struct mt_arg args[256];
    double t0, t;

    atomic_store(&m->stop, 0);
    atomic_store(&m->ops, 0);
    t0 = now();
    for (int i = 0; i < opt.threads; i++) {
        args[i].m = m;
        args[i].seed = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1);
        pthread_create(&th[i], NULL, mt_worker, &args[i]);
    }
    usleep((useconds_t)(opt.seconds * 1e6));
    atomic_store(&m->stop, 1);
    for (int i = 0; i < opt.threads; i++)
        pthread_join(th[i], NULL);
    t = now();
    return (double)atomic_load(&m->ops) / (t - t0);
}

/* ---- Python ---- */

/* Runs bench/direct_py.py: its one-at-a-time and bulk rates. Returns 0, or
 * -1 when Python or the module is not available. */
static int run_python(double *get_rate, double *bulk_rate, double *bulk_list_rate)
{
    char cmd[2048], line[256];
    FILE *p;
    int got = 0;

    snprintf(cmd, sizeof(cmd),
             "FARENA_LIB='%s' FARENA_PYTHON_DIR='%s' %s '%s' '%s' bench-direct-small %g", BENCH_LIB,
             BENCH_PYDIR, opt.python, BENCH_PYSCRIPT, sock_path, opt.seconds);
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    while (fgets(line, sizeof(line), p) != NULL) {
        got += sscanf(line, "get %lf", get_rate) == 1;
        got += sscanf(line, "bulk %lf", bulk_rate) == 1;
        got += sscanf(line, "bulk_list %lf", bulk_list_rate) == 1;
    }
    return pclose(p) == 0 && got == 3 ? 0 : -1;
}

/* Parses the command line. */
static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-python") == 0) {
            opt.python = NULL;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "usage: see the top of bench/direct.c\n");
            exit(2);
        }
        i++;
        if (strcmp(a, "--farenad") == 0)
            opt.farenad = v;
        else if (strcmp(a, "--dir") == 0)
            opt.dir = v;
        else if (strcmp(a, "--seconds") == 0)
            opt.seconds = atof(v);
        else if (strcmp(a, "--rounds") == 0)
            opt.rounds = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            opt.threads = atoi(v);
        else if (strcmp(a, "--cold-mib") == 0)
            opt.cold_mib = (unsigned)atoi(v);
        else if (strcmp(a, "--python") == 0)
            opt.python = v;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            exit(2);
        }
    }
    if (opt.dir == NULL)
        opt.dir = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/var/tmp";
    if (opt.rounds < 1 || opt.rounds > MAX_ROUNDS || opt.threads < 1 || opt.threads > 256 ||
        opt.seconds <= 0 || opt.cold_mib < 16) {
        fprintf(stderr, "bad option value\n");
        exit(2);
    }
}

/* Builds the small arena (10,000 × 64 B in one file) on c and names it. */
static farena_handle build_small(farena_client *c)
{
    static uint8_t data[SMALL_N][SMALL_SIZE];
    struct iovec iov[SMALL_N];
    farena_handle w, arena;
    int err;

    for (size_t i = 0; i < SMALL_N; i++) {
        memset(data[i], (int)(i & 0xff), SMALL_SIZE);
        iov[i].iov_base = data[i];
        iov[i].iov_len = SMALL_SIZE;
    }
    if ((err = farena_writer_new(c, 0, &w)) != 0 ||
        (err = farena_push_many(c, w, iov, SMALL_N, small_locs)) != 0 ||
        (err = farena_into_arena(c, w, &arena)) != 0 ||
        (err = farena_name(c, arena, "bench-direct-small")) != 0)
        die("building the small arena", err, c);
    return arena;
}

/* Builds the cold arena: nfiles files of file_size bytes. */
static farena_handle build_cold(farena_client *c, uint32_t nfiles, uint64_t file_size)
{
    enum { CHUNK = 256 };
    static uint8_t data[CHUNK][COLD_SIZE];
    struct iovec iov[CHUNK];
    farena_handle files[64], w, arena;
    int err;

    for (size_t i = 0; i < CHUNK; i++) {
        memset(data[i], (int)i, COLD_SIZE);
        iov[i].iov_base = data[i];
        iov[i].iov_len = COLD_SIZE;
    }
    for (uint32_t f = 0; f < nfiles; f++) {
        if ((err = farena_writer_new(c, (uint16_t)f, &w)) != 0)
            die("writer_new", err, c);
        for (uint64_t done = 0; done < file_size; done += (uint64_t)CHUNK * COLD_SIZE)
            if ((err = farena_push_many(c, w, iov, CHUNK, NULL)) != 0)
                die("push_many", err, c);
        if ((err = farena_finish(c, w, &files[f])) != 0)
            die("finish", err, c);
    }
    if ((err = farena_build(c, files, nfiles, &arena)) != 0)
        die("build", err, c);
    return arena;
}

int main(int argc, char **argv)
{
    double v[8][MAX_ROUNDS], med[8], py_get = 0, py_bulk = 0, py_bulk_list = 0, cached_before = 0,
                                     cached_after = 0;
    static struct farena_loc many[SMALL_N];
    farena_client *c, *off;
    farena_reader *r_small, *r_cold;
    farena_handle small, cold;
    struct farena_buf buf = FARENA_BUF_INIT;
    int fd_small, fds_cold[MAX_FDS], nfds_cold, py_ok = 0;
    uint32_t nfiles = 8;
    uint64_t file_size, s = 7;
    struct mt m;

    parse(argc, argv);
    start_daemon();
    c = connect_direct(1);
    off = connect_direct(0);
    if (!farena_direct(c)) {
        fprintf(stderr, "direct reads are off (FARENA_DIRECT=0?)\n");
        return 1;
    }
    small = build_small(c);
    for (size_t i = 0; i < SMALL_N; i++)
        many[i] = small_locs[rnd(&s) % SMALL_N];
    if (farena_get_into(c, small, small_locs[0], &buf) != 0 ||
        scratch_fds((uint64_t)SMALL_N * SMALL_SIZE, &fd_small, 1) != 1)
        die("finding the small arena's descriptor", FARENA_EPROTO, c);
    file_size = (uint64_t)opt.cold_mib * (1u << 20) / nfiles;
    file_size -= file_size % ((uint64_t)256 * COLD_SIZE);
    fprintf(stderr, "building the cold arena: %u files of %llu MiB in %s\n", nfiles,
            (unsigned long long)(file_size >> 20), opt.dir);
    cold = build_cold(c, nfiles, file_size);
    if (farena_reader_open(c, small, &r_small) != 0 || farena_reader_open(c, cold, &r_cold) != 0)
        die("reader_open", FARENA_EPROTO, c);
    for (uint32_t f = 0; f < nfiles; f++) {
        farena_buf_clear(&buf);
        if (farena_reader_get_into(r_cold, (struct farena_loc){(uint16_t)f, 0, 1}, &buf) != 0)
            die("reader get", FARENA_EPROTO, NULL);
    }
    farena_buf_clear(&buf);
    farena_reader_get_into(r_small, small_locs[0], &buf);
    nfds_cold = scratch_fds(file_size, fds_cold, MAX_FDS);
    if (nfds_cold != (int)nfiles)
        die("finding the cold arena's descriptors", FARENA_EPROTO, NULL);

    for (int round = 0; round < opt.rounds; round++) {
        fprintf(stderr, "round %d/%d\n", round + 1, opt.rounds);
        /* 1: one at a time, direct vs pread; the daemon path for context. */
        v[0][round] = run_gets(c, small);
        v[1][round] = run_pread(fd_small);
        v[2][round] = run_gets(off, small);
        /* 3: 16 threads, 64 B, page-cached. */
        memset(&m, 0, sizeof(m));
        m.locs = small_locs;
        m.r = r_small;
        v[3][round] = run_threads(&m);
        m.r = NULL;
        m.fds = &fd_small;
        m.nfds = 1;
        v[4][round] = run_threads(&m);
        /* 2: 16 threads, 4 KiB, evicted. */
        memset(&m, 0, sizeof(m));
        m.nfiles = nfiles;
        m.file_size = file_size;
        m.r = r_cold;
        evict(fds_cold, nfds_cold);
        if (round == 0)
            cached_before = resident(fds_cold, nfds_cold, file_size);
        v[5][round] = run_threads(&m);
        if (round == 0)
            cached_after = resident(fds_cold, nfds_cold, file_size);
        m.r = NULL;
        m.fds = fds_cold;
        m.nfds = nfds_cold;
        evict(fds_cold, nfds_cold);
        v[6][round] = run_threads(&m);
        /* 5's C side. */
        v[7][round] = run_get_many(c, small, many);
    }
    for (int k = 0; k < 8; k++)
        med[k] = median(v[k], opt.rounds);
    if (opt.python != NULL)
        py_ok = run_python(&py_get, &py_bulk, &py_bulk_list) == 0;

    printf("# farena direct reads (bench/direct.c)\n\n");
    printf("%d round(s) of %.1f s per cell, medians; %d threads; scratch %s; cold set %u MiB\n\n",
           opt.rounds, opt.seconds, opt.threads, opt.dir, opt.cold_mib);
    printf("| figure | farena | reference | ratio |\n|---|---|---|---|\n");
    printf("| 1. one-at-a-time 64 B farena_get_into (held arena) ÷ in-process pread | %.0f/s | "
           "%.0f/s | %.3f |\n",
           med[0], med[1], med[0] / med[1]);
    printf("| 2. %d threads, reader, random 4 KiB evicted ÷ %d-thread pread | %.0f/s | %.0f/s | "
           "%.3f |\n",
           opt.threads, opt.threads, med[5], med[6], med[5] / med[6]);
    printf("| 3. %d threads, reader, 64 B page-cached ÷ %d-thread pread | %.0f/s | %.0f/s | "
           "%.3f |\n",
           opt.threads, opt.threads, med[3], med[4], med[3] / med[4]);
    if (py_ok) {
        printf("| 4. Python Client.get one at a time ÷ C farena_get_into | %.0f/s | %.0f/s | "
               "%.3f |\n",
               py_get, med[0], py_get / med[0]);
        printf("| 5. Python get_many_views 10,000 × 64 B ÷ C farena_get_many_into (items) | "
               "%.0f/s | %.0f/s | %.3f |\n",
               py_bulk, med[7], py_bulk / med[7]);
    } else {
        printf("| 4, 5. Python | not measured (--no-python, or python3/farena.py failed) | | |\n");
    }
    printf("\nContext: one-at-a-time through the daemon (direct off) %.0f/s, %.3f of pread.\n",
           med[2], med[2] / med[1]);
    if (py_ok)
        printf("Figure 5 with the locations converted from a Python list on every call: "
               "%.0f/s, %.3f.\n",
               py_bulk_list, py_bulk_list / med[7]);
    printf("Figure 2's files: %.1f%% of their pages cached after eviction, %.1f%% after a "
           "measurement.\n",
           100 * cached_before, 100 * cached_after);

    farena_reader_close(r_small);
    farena_reader_close(r_cold);
    farena_buf_free(&buf);
    farena_close(off);
    farena_close(c);
    return 0;
}
