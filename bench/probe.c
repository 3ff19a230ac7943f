/* Process and machine probes from /proc: RSS, page-cache residency of a
 * process's files, CPU steal. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
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
static int64_t file_resident(int fd)
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
        int64_t r = file_resident(fd);
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
        int64_t r = file_resident(fd);
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
