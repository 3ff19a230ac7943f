/* Process and machine probes from /proc: RSS, page-cache residency of a
 * process's files, CPU steal; eviction of a process's files from the page
 * cache; counting a process's system calls with perf or strace. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* Reads a "Key:   N kB" line of /proc/pid/status. */
static int64_t status_kb(long pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t kl = strlen(key);
    int64_t v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtoll(line + kl + 1, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

/* Resident set of pid. */
int64_t probe_rss(long pid)
{
    return status_kb(pid, "VmRSS");
}

/* Peak resident set of pid. */
int64_t probe_hwm(long pid)
{
    return status_kb(pid, "VmHWM");
}

/* Resident page-cache bytes of one open file. */
int64_t probe_resident_fd(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    size_t len = (size_t)sb.st_size;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return -1;
    size_t pages = (len + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(pages);
    int64_t res = -1;
    if (vec && mincore(m, len, vec) == 0) {
        res = 0;
        for (size_t i = 0; i < pages; i++)
            res += vec[i] & 1;
        res *= page;
    }
    free(vec);
    munmap(m, len);
    return res;
}

/* Page-cache bytes of pid's open regular files, or of path. */
int64_t probe_pagecache(long pid, const char *path)
{
    if (pid == 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        int64_t r = probe_resident_fd(fd);
        close(fd);
        return r;
    }
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[384];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOATIME);
        if (fd < 0)
            fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        int64_t r = probe_resident_fd(fd);
        close(fd);
        if (r > 0)
            total += r;
    }
    closedir(d);
    return total;
}

/* CPU seconds of pid from /proc/pid/stat (utime + stime). */
double probe_cpu(long pid)
{
    char path[64], buf[1024];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of this process. */
double probe_self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Steal and total jiffies from /proc/stat. */
int probe_steal(uint64_t *steal, uint64_t *total)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8)
        return -1;
    *steal = v[7];
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += v[i];
    return 0;
}

/* Evicts one file: dirty pages must be written back first, since
 * DONTNEED only drops clean ones. fdatasync works on a read-only fd. */
int probe_evict_fd(int fd)
{
    if (fdatasync(fd) < 0 && errno != EINVAL)
        return -1;
    int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* Opens entry name of /proc/pid/fd read-only when it is a regular file;
 * stores its size. Returns the fd or -1. */
static int open_proc_fd(long pid, const char *name, uint64_t *size)
{
    char p[384];
    snprintf(p, sizeof p, "/proc/%ld/fd/%s", pid, name);
    struct stat sb;
    if (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
        return -1;
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd < 0)
        fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && size)
        *size = (uint64_t)sb.st_size;
    return fd;
}

/* Evicts every regular file of pid. */
int probe_evict(long pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = open_proc_fd(pid, e->d_name, NULL);
        if (fd < 0)
            continue;
        if (probe_evict_fd(fd) == 0)
            n++;
        close(fd);
    }
    closedir(d);
    return n;
}

/* Opens the one regular file of pid of the given size. */
int probe_open_sized(long pid, uint64_t bytes)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int found = -1, many = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t size = 0;
        if (e->d_name[0] == '.')
            continue;
        int fd = open_proc_fd(pid, e->d_name, &size);
        if (fd < 0)
            continue;
        if (size == bytes && found < 0) {
            found = fd;
            continue;
        }
        if (size == bytes)
            many = 1;
        close(fd);
    }
    closedir(d);
    if (many && found >= 0) {
        close(found);
        return -2;
    }
    return found;
}

/* Whether every thread of pid is traced (TracerPid set). io_uring's kernel
 * threads (iou-wrk-*, iou-sqp-*) are skipped: they make no system calls, and
 * a kernel may refuse to trace them. */
static int all_traced(long pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/task", pid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int all = 1, seen = 0;
    struct dirent *e;
    while (all && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[384], line[256];
        snprintf(p, sizeof p, "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(p, "re");
        int kernel = f && fgets(line, sizeof line, f) && strncmp(line, "iou-", 4) == 0;
        if (f)
            fclose(f);
        if (kernel)
            continue;
        snprintf(p, sizeof p, "%s/%s/status", dir, e->d_name);
        f = fopen(p, "re");
        if (!f)
            continue;
        long tracer = 0;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "TracerPid:", 10) == 0)
                tracer = strtol(line + 10, NULL, 10);
        }
        fclose(f);
        seen = 1;
        all = tracer != 0;
    }
    closedir(d);
    return all && seen;
}

/* Whether process cpid holds a perf event descriptor (perf has attached). */
static int has_perf_event(long cpid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/fd", cpid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int yes = 0;
    struct dirent *e;
    while (!yes && (e = readdir(d)) != NULL) {
        char p[384], link[128];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(p, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            yes = strstr(link, "perf_event") != NULL;
        }
    }
    closedir(d);
    return yes;
}

/* The first line of a file, for error messages. */
static void first_line(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, (int)n, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

/* Starts perf or strace on pid. */
long probe_sys_start(long pid, const char *tool, const char *out, char *err, size_t errlen)
{
    char pidarg[32], errpath[512];
    snprintf(pidarg, sizeof pidarg, "%ld", pid);
    snprintf(errpath, sizeof errpath, "%s.err", out);
    int is_perf = strcmp(tool, "perf") == 0;
    fflush(NULL);
    pid_t cpid = fork();
    if (cpid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (cpid == 0) {
        int null = open("/dev/null", O_RDWR);
        int ef = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        if (ef >= 0)
            dup2(ef, 2);
        if (is_perf)
            execlp("perf", "perf", "stat", "-e", "raw_syscalls:sys_enter", "-x", ",", "-o", out,
                   "-p", pidarg, (char *)NULL);
        else
            execlp("strace", "strace", "-f", "-c", "-o", out, "-p", pidarg, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", tool, strerror(errno));
        _exit(127);
    }
    /* Wait (at most 10 s) until the counter has attached. */
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(cpid, &st, WNOHANG) == cpid) {
            char why[200];
            first_line(errpath, why, sizeof why);
            snprintf(err, errlen, "%s exited: %s", tool, why[0] ? why : "no message");
            unlink(errpath);
            unlink(out);
            return -1;
        }
        if (is_perf ? has_perf_event(cpid) : all_traced(pid)) {
            usleep(100000);
            return (long)cpid;
        }
        usleep(10000);
    }
    kill(cpid, SIGKILL);
    waitpid(cpid, NULL, 0);
    snprintf(err, errlen, "%s did not attach within 10 s", tool);
    unlink(errpath);
    unlink(out);
    return -1;
}

/* Parses strace -c output: the total, and the top three calls. */
static int64_t parse_strace(FILE *f, char *top, size_t topn)
{
    char line[512];
    int64_t total = -1;
    struct {
        char name[64];
        long long calls;
    } best[3] = {{"", -1}, {"", -1}, {"", -1}};
    while (fgets(line, sizeof line, f)) {
        char *tok[8];
        int nt = 0;
        for (char *save = NULL, *t = strtok_r(line, " \t\n", &save); t && nt < 8;
             t = strtok_r(NULL, " \t\n", &save))
            tok[nt++] = t;
        if (nt < 5 || (tok[0][0] < '0' || tok[0][0] > '9'))
            continue;
        long long calls = strtoll(tok[3], NULL, 10);
        const char *name = tok[nt - 1];
        if (strcmp(name, "total") == 0) {
            total = calls;
            continue;
        }
        for (int k = 0; k < 3; k++) {
            if (calls > best[k].calls) {
                for (int j = 2; j > k; j--)
                    best[j] = best[j - 1];
                snprintf(best[k].name, sizeof best[k].name, "%s", name);
                best[k].calls = calls;
                break;
            }
        }
    }
    if (top && topn) {
        top[0] = '\0';
        for (int k = 0; k < 3 && best[k].calls >= 0; k++) {
            size_t l = strlen(top);
            snprintf(top + l, topn - l, "%s%s %lld", k ? ", " : "", best[k].name, best[k].calls);
        }
    }
    return total;
}

/* Parses perf stat -x, output: the raw_syscalls:sys_enter count. */
static int64_t parse_perf(FILE *f)
{
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || !strstr(line, "raw_syscalls:sys_enter"))
            continue;
        char *end;
        long long v = strtoll(line, &end, 10);
        if (end != line && *end == ',')
            return v;
    }
    return -1;
}

/* Stops the counter and reads its count. */
int64_t probe_sys_stop(long cpid, const char *tool, const char *out, char *top, size_t topn,
                       char *err, size_t errlen)
{
    char errpath[512];
    snprintf(errpath, sizeof errpath, "%s.err", out);
    if (top && topn)
        top[0] = '\0';
    kill((pid_t)cpid, SIGINT);
    int st = 0, done = 0;
    for (int i = 0; i < 2000 && !done; i++) {
        if (waitpid((pid_t)cpid, &st, WNOHANG) == (pid_t)cpid)
            done = 1;
        else
            usleep(10000);
    }
    if (!done) {
        kill((pid_t)cpid, SIGKILL);
        waitpid((pid_t)cpid, &st, 0);
    }
    int64_t n = -1;
    FILE *f = fopen(out, "re");
    if (f) {
        n = strcmp(tool, "perf") == 0 ? parse_perf(f) : parse_strace(f, top, topn);
        fclose(f);
    }
    if (n < 0) {
        char why[200];
        first_line(errpath, why, sizeof why);
        snprintf(err, errlen, "%s gave no count%s%s", tool, why[0] ? ": " : "", why);
    }
    unlink(out);
    unlink(errpath);
    return n;
}
