/* Check suite of the storage engine (daemon/store.c): every rule of store.h,
 * round trips, error codes and messages, quotas, failure recovery, sharing,
 * concurrency and descriptor hygiene. Each test runs in its own scratch
 * directory (a fresh mkdtemp under $TMPDIR or /var/tmp, removed after). */
#include <check.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "harness.h"
#include "store.h"

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* The directory of this run (made by main under $TMPDIR or /var/tmp) and
 * the scratch directory of the running test, inside it (set by the fixture). */
static char run_dir[4096];
static char scratch[4200];

/* Fixture: a fresh scratch directory per test, inside the run's directory
 * (main removes that one at the end, so a test that fails or times out, and
 * never reaches its teardown, leaves nothing behind either). */
static void scratch_setup(void)
{
    snprintf(scratch, sizeof(scratch), "%s/test-XXXXXX", run_dir);
    ck_assert_msg(mkdtemp(scratch) != NULL, "mkdtemp %s: %s", scratch, strerror(errno));
}

/* Fixture: removes the scratch directory and anything left in it. */
static void scratch_teardown(void)
{
    ck_assert_int_eq(th_rm_tree(scratch), 0);
}

/* Number of entries in the scratch directory (anonymous files leave none). */
static int scratch_entries(void)
{
    DIR *d = opendir(scratch);
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* Number of descriptors open in this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* A deterministic generator (splitmix64), so payloads do not depend on libc. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Fills buf with n pseudo-random bytes. */
static void rng_fill(uint64_t *s, unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)rng_next(s);
}

/* FNV-1a, the readers' checksum. */
static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* An engine over the scratch dir with cfg's other fields (cfg may be NULL). */
static struct store *open_store(const struct store_config *cfg)
{
    struct store_config c = {0};
    struct err err;
    struct store *st = NULL;

    if (cfg)
        c = *cfg;
    c.dir = scratch;
    ck_assert_msg(store_new(&c, &st, &err) == 0, "store_new: %s", err.msg);
    return st;
}

/* A new writer of index i, asserted to succeed. */
static struct store_writer *new_writer(struct store *st, uint16_t i)
{
    struct store_writer *w = NULL;
    struct err err;

    ck_assert_msg(store_writer_new(st, i, &w, &err) == 0, "writer_new: %s", err.msg);
    return w;
}

/* Pushes n bytes, asserted to succeed; returns the location. */
static struct store_loc push_ok(struct store_writer *w, const void *data, size_t n)
{
    struct store_loc loc;
    struct err err;

    ck_assert_msg(store_push(w, data, n, &loc, &err) == 0, "push of %zu: %s", n, err.msg);
    ck_assert_uint_eq(loc.file_index, store_writer_index(w));
    ck_assert_uint_eq(loc.len, n);
    return loc;
}

/* Pushes n bytes, asserted to fail with code; *err keeps the message. */
static void push_fails(struct store_writer *w, const void *data, size_t n, enum proto_err code,
                       struct err *err)
{
    struct store_loc loc;

    ck_assert_int_eq(store_push(w, data, n, &loc, err), -1);
    ck_assert_msg(err->code == code, "push of %zu: code %d, want %d (%s)", n, (int)err->code,
                  (int)code, err->msg);
}

/* Finishes w, asserted to succeed. */
static struct store_file *finish_ok(struct store_writer *w)
{
    struct store_file *f = NULL;
    struct err err;

    ck_assert_msg(store_finish(w, &f, &err) == 0, "finish: %s", err.msg);
    return f;
}

/* Builds an arena, asserted to succeed. */
static struct store_arena *build_ok(struct store *st, struct store_file *const *files, size_t n)
{
    struct store_arena *a = NULL;
    struct err err;

    ck_assert_msg(store_build(st, files, n, &a, &err) == 0, "build: %s", err.msg);
    ck_assert_uint_eq(store_arena_nfiles(a), n);
    return a;
}

/* Asserts that loc reads back exactly the n bytes at want. */
static void expect_bytes(const struct store_arena *a, struct store_loc loc, const void *want,
                         size_t n)
{
    unsigned char *got = malloc(n ? n : 1);
    struct err err;

    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(loc.len, n);
    ck_assert_msg(store_get(a, loc, got, &err) == 0, "get %u/%u/%u: %s", loc.file_index, loc.offset,
                  loc.len, err.msg);
    ck_assert_msg(n == 0 || memcmp(got, want, n) == 0, "bytes differ at %u/%u/%u", loc.file_index,
                  loc.offset, loc.len);
    free(got);
}

/* Asserts that loc is refused by store_check and store_get with out_of_bounds
 * and, when msg is not NULL, exactly that message. */
static void expect_oob(const struct store_arena *a, struct store_loc loc, const char *msg)
{
    unsigned char buf[16];
    struct err err;

    ck_assert_int_eq(store_check(a, loc, &err), -1);
    ck_assert_int_eq(err.code, PROTO_OUT_OF_BOUNDS);
    if (msg)
        ck_assert_str_eq(err.msg, msg);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(store_get(a, loc, buf, &err), -1);
    ck_assert_int_eq(err.code, PROTO_OUT_OF_BOUNDS);
}

/* A one-file arena holding data, via into_arena. */
static struct store_arena *arena_of(struct store *st, const void *data, size_t n,
                                    struct store_loc *loc)
{
    struct store_writer *w = new_writer(st, 0);
    struct store_arena *a = NULL;
    struct err err;

    *loc = push_ok(w, data, n);
    ck_assert_msg(store_into_arena(w, &a, &err) == 0, "into_arena: %s", err.msg);
    return a;
}

START_TEST(test_new_rejects_bad_config)
{
    struct store_config c = {0};
    struct err err;
    struct store *st = NULL;
    char path[4300];
    int fd;

    ck_assert_int_eq(store_new(&c, &st, &err), -1);
    ck_assert_int_eq(err.code, PROTO_BAD_REQUEST);

    snprintf(path, sizeof(path), "%s/missing", scratch);
    c.dir = path;
    ck_assert_int_eq(store_new(&c, &st, &err), -1);
    ck_assert_int_eq(err.code, PROTO_IO_ERROR);
    ck_assert_msg(strstr(err.msg, "no such file") != NULL, "%s", err.msg);

    snprintf(path, sizeof(path), "%s/plain", scratch);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(store_new(&c, &st, &err), -1);
    ck_assert_int_eq(err.code, PROTO_IO_ERROR);
    ck_assert_msg(strstr(err.msg, "not a directory") != NULL, "%s", err.msg);

    c.dir = scratch;
    c.file_max = (uint64_t)UINT32_MAX + 1;
    ck_assert_int_eq(store_new(&c, &st, &err), -1);
    ck_assert_int_eq(err.code, PROTO_BAD_REQUEST);
    ck_assert_str_eq(err.msg, "file_max 4294967296 is over 4294967295");

    c.file_max = 0;
    ck_assert_int_eq(store_new(&c, &st, &err), 0);
    ck_assert_uint_eq(store_file_max(st), 4294967295u);
    store_free(st);
}
END_TEST

START_TEST(test_empty_push)
{
    struct store *st = open_store(NULL);
    struct store_writer *w = new_writer(st, 0);
    struct store_loc e0, abc, e1;
    struct store_arena *a = NULL;
    struct err err;
    struct store_stats s;

    e0 = push_ok(w, NULL, 0);
    ck_assert_uint_eq(e0.offset, 0);
    ck_assert_uint_eq(store_writer_len(w), 0);
    abc = push_ok(w, "abc", 3);
    e1 = push_ok(w, "ignored", 0);
    ck_assert_uint_eq(abc.offset, 0);
    ck_assert_uint_eq(e1.offset, 3);
    ck_assert_uint_eq(e1.len, 0);
    ck_assert_uint_eq(store_writer_len(w), 3);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.bytes_written, 3);

    ck_assert_int_eq(store_into_arena(w, &a, &err), 0);
    expect_bytes(a, e0, NULL, 0);
    expect_bytes(a, e1, NULL, 0);
    expect_bytes(a, abc, "abc", 3);
    ck_assert_int_eq(store_get(a, e1, NULL, &err), 0);
    store_arena_unref(a);

    /* An empty writer makes an empty, readable file. */
    w = new_writer(st, 0);
    ck_assert_uint_eq(store_writer_len(w), 0);
    ck_assert_int_eq(store_into_arena(w, &a, &err), 0);
    ck_assert_uint_eq(store_arena_bytes(a), 0);
    expect_bytes(a, e0, NULL, 0);
    expect_oob(a, (struct store_loc){0, 0, 1},
               "offset 0 + len 1 is past the end of file 0 (size 0)");
    store_arena_unref(a);
    store_free(st);
}
END_TEST

START_TEST(test_all_byte_values)
{
    struct store *st = open_store(NULL);
    struct store_writer *w = new_writer(st, 0);
    struct store_loc all, one[256];
    struct store_arena *a;
    unsigned char bytes[256];

    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    all = push_ok(w, bytes, sizeof(bytes));
    for (int i = 0; i < 256; i++)
        one[i] = push_ok(w, &bytes[255 - i], 1);
    a = NULL;
    {
        struct err err;

        ck_assert_int_eq(store_into_arena(w, &a, &err), 0);
    }
    expect_bytes(a, all, bytes, sizeof(bytes));
    for (int i = 0; i < 256; i++) {
        ck_assert_uint_eq(one[i].offset, 256 + i);
        expect_bytes(a, one[i], &bytes[255 - i], 1);
    }
    store_arena_unref(a);
    store_free(st);
}
END_TEST

/* One pushed payload and where it went. */
struct payload {
    int writer;
    size_t len;
    uint64_t seed;
    struct store_loc loc;
};

START_TEST(test_random_payloads_three_writers)
{
    enum { N = 1000, W = 3 };
    struct store *st = open_store(NULL);
    struct store_writer *w[W];
    struct store_file *f[W], *order[W];
    struct payload *p = calloc(N, sizeof(*p));
    unsigned char buf[4097];
    uint64_t rng = 42, sum[W] = {0};
    struct store_arena *a;

    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < W; i++)
        w[i] = new_writer(st, (uint16_t)i);
    for (int i = 0; i < N; i++) {
        p[i].writer = (int)(rng_next(&rng) % W);
        p[i].len = (size_t)(rng_next(&rng) % 4097);
        p[i].seed = rng_next(&rng);
        {
            uint64_t s = p[i].seed;

            rng_fill(&s, buf, p[i].len);
        }
        p[i].loc = push_ok(w[p[i].writer], buf, p[i].len);
        ck_assert_uint_eq(p[i].loc.offset, sum[p[i].writer]);
        sum[p[i].writer] += p[i].len;
    }
    for (int i = 0; i < W; i++) {
        ck_assert_uint_eq(store_writer_len(w[i]), sum[i]);
        f[i] = finish_ok(w[i]);
        ck_assert_uint_eq(store_file_size(f[i]), sum[i]);
    }
    /* Shuffled: 2, 0, 1. */
    order[0] = f[2];
    order[1] = f[0];
    order[2] = f[1];
    a = build_ok(st, order, W);
    for (int i = 0; i < W; i++)
        ck_assert_ptr_eq(store_arena_file(a, (size_t)i), f[i]);
    ck_assert_uint_eq(store_arena_bytes(a), sum[0] + sum[1] + sum[2]);
    for (int i = 0; i < N; i++) {
        uint64_t s = p[i].seed;

        rng_fill(&s, buf, p[i].len);
        expect_bytes(a, p[i].loc, buf, p[i].len);
    }
    for (int i = 0; i < W; i++)
        store_file_unref(f[i]);
    store_arena_unref(a);
    free(p);
    store_free(st);
}
END_TEST

/* n files of indices idx[0..n) with one byte each. */
static void make_files(struct store *st, const uint16_t *idx, size_t n, struct store_file **out)
{
    for (size_t i = 0; i < n; i++) {
        struct store_writer *w = new_writer(st, idx[i]);

        push_ok(w, "x", 1);
        out[i] = finish_ok(w);
    }
}

/* Drops the caller's references to n files. */
static void unref_files(struct store_file **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_file_unref(f[i]);
}

START_TEST(test_build_errors)
{
    struct store *st = open_store(NULL);
    static const uint16_t dup[] = {1, 0, 2, 1};
    static const uint16_t gap[] = {0, 3, 1};
    static const uint16_t high_dup[] = {0, 70, 70};
    struct store_file *f[4];
    struct store_arena *a = NULL;
    struct err err;
    struct store_stats s;

    ck_assert_int_eq(store_build(st, NULL, 0, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_EMPTY);
    ck_assert_int_eq(store_arena_new(st, NULL, 0, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_EMPTY);

    make_files(st, dup, 4, f);
    ck_assert_int_eq(store_build(st, f, 4, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_DUPLICATE_INDEX);
    ck_assert_str_eq(err.msg, "file index 1 appears more than once");
    unref_files(f, 4);

    make_files(st, gap, 3, f);
    ck_assert_int_eq(store_build(st, f, 3, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_MISSING_INDEX);
    ck_assert_str_eq(err.msg, "file index 2 is missing (3 files need indices 0..2)");
    ck_assert_int_eq(store_build(st, f, 2, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_MISSING_INDEX);
    ck_assert_str_eq(err.msg, "file index 1 is missing (2 files need indices 0..1)");
    unref_files(f, 3);

    make_files(st, high_dup, 3, f);
    ck_assert_int_eq(store_build(st, f, 3, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_DUPLICATE_INDEX);
    ck_assert_str_eq(err.msg, "file index 70 appears more than once");
    ck_assert_int_eq(store_build(st, f + 1, 1, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_MISSING_INDEX);
    ck_assert_str_eq(err.msg, "file index 0 is missing (1 files need indices 0..0)");

    /* Failed builds take no references and make no arena. */
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.arenas, 0);
    ck_assert_uint_eq(s.files, 3);
    unref_files(f, 3);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.files, 0);
    ck_assert_uint_eq(s.bytes_on_disk, 0);
    store_free(st);
}
END_TEST

START_TEST(test_arena_new_order)
{
    struct store *st = open_store(NULL);
    static const uint16_t idx[] = {0, 1, 2};
    struct store_file *f[3], *swapped[3];
    struct store_arena *a = NULL;
    struct err err;
    struct store_loc loc = {2, 0, 1};

    make_files(st, idx, 3, f);
    swapped[0] = f[0];
    swapped[1] = f[2];
    swapped[2] = f[1];
    ck_assert_int_eq(store_arena_new(st, swapped, 3, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_INDEX_MISMATCH);
    ck_assert_str_eq(err.msg, "position 1 holds file index 2 (must be 1)");
    ck_assert_int_eq(store_arena_new(st, f + 1, 2, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_INDEX_MISMATCH);
    ck_assert_str_eq(err.msg, "position 0 holds file index 1 (must be 0)");

    ck_assert_int_eq(store_arena_new(st, f, 3, &a, &err), 0);
    ck_assert_uint_eq(store_arena_nfiles(a), 3);
    ck_assert_uint_eq(store_arena_bytes(a), 3);
    expect_bytes(a, loc, "x", 1);
    unref_files(f, 3);
    expect_bytes(a, loc, "x", 1);
    store_arena_unref(a);
    store_free(st);
}
END_TEST

START_TEST(test_out_of_bounds_edges)
{
    struct store *st = open_store(NULL);
    static const uint16_t idx[] = {0, 1};
    struct store_file *f[2];
    struct store_writer *w0 = new_writer(st, 0);
    struct store_arena *a;
    struct err err;

    push_ok(w0, "0123456789", 10);
    f[0] = finish_ok(w0);
    make_files(st, idx + 1, 1, f + 1);
    a = build_ok(st, f, 2);
    unref_files(f, 2);

    expect_oob(a, (struct store_loc){0, 0xFFFFFFFFu, 2},
               "offset 4294967295 + len 2 is past the end of file 0 (size 10)");
    expect_oob(a, (struct store_loc){0, 0xFFFFFFFFu, 0xFFFFFFFFu},
               "offset 4294967295 + len 4294967295 is past the end of file 0 (size 10)");
    expect_oob(a, (struct store_loc){0, 1, 0xFFFFFFFFu},
               "offset 1 + len 4294967295 is past the end of file 0 (size 10)");
    expect_oob(a, (struct store_loc){2, 0, 0}, "file index 2 is not in the arena (2 files)");
    expect_oob(a, (struct store_loc){65535, 0, 1},
               "file index 65535 is not in the arena (2 files)");
    expect_oob(a, (struct store_loc){0, 11, 0},
               "offset 11 + len 0 is past the end of file 0 (size 10)");
    expect_oob(a, (struct store_loc){0, 5, 6},
               "offset 5 + len 6 is past the end of file 0 (size 10)");
    expect_oob(a, (struct store_loc){1, 1, 1},
               "offset 1 + len 1 is past the end of file 1 (size 1)");

    ck_assert_int_eq(store_check(a, (struct store_loc){0, 10, 0}, &err), 0);
    expect_bytes(a, (struct store_loc){0, 10, 0}, NULL, 0);
    expect_bytes(a, (struct store_loc){0, 5, 5}, "56789", 5);
    expect_bytes(a, (struct store_loc){0, 0, 10}, "0123456789", 10);
    expect_bytes(a, (struct store_loc){1, 0, 1}, "x", 1);
    expect_bytes(a, (struct store_loc){1, 1, 0}, NULL, 0);

    ck_assert_int_ge(store_arena_fd(a, 0), 0);
    ck_assert_int_ge(store_arena_fd(a, 1), 0);
    ck_assert_int_eq(store_arena_fd(a, 2), -1);
    store_arena_unref(a);
    store_free(st);
}
END_TEST

START_TEST(test_file_full)
{
    struct store_config c = {.file_max = 100, .write_buffer = 32};
    struct store *st = open_store(&c);
    struct store_writer *w = new_writer(st, 0);
    unsigned char data[101];
    struct store_loc l1, l2, l3;
    struct store_arena *a = NULL;
    struct err err;
    struct store_stats s;

    for (int i = 0; i < 101; i++)
        data[i] = (unsigned char)(i * 7);
    ck_assert_uint_eq(store_file_max(st), 100);
    push_fails(w, data, 101, PROTO_FILE_FULL, &err);
    ck_assert_str_eq(err.msg, "push of 101 bytes to file 0 at 0 would pass file_max 100");
    l1 = push_ok(w, data, 60);
    push_fails(w, data, 41, PROTO_FILE_FULL, &err);
    ck_assert_str_eq(err.msg, "push of 41 bytes to file 0 at 60 would pass file_max 100");
    push_fails(w, data, SIZE_MAX, PROTO_FILE_FULL, &err);
    ck_assert_uint_eq(store_writer_len(w), 60);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.bytes_written, 60);
    ck_assert_uint_eq(s.bytes_on_disk, 60);

    l2 = push_ok(w, data + 60, 30);
    l3 = push_ok(w, data + 90, 10);
    ck_assert_uint_eq(l3.offset, 90);
    ck_assert_uint_eq(store_writer_len(w), 100);
    push_fails(w, data, 1, PROTO_FILE_FULL, &err);
    ck_assert_uint_eq(push_ok(w, data, 0).offset, 100);

    ck_assert_int_eq(store_into_arena(w, &a, &err), 0);
    ck_assert_uint_eq(store_arena_bytes(a), 100);
    expect_bytes(a, l1, data, 60);
    expect_bytes(a, l2, data + 60, 30);
    expect_bytes(a, l3, data + 90, 10);
    expect_bytes(a, (struct store_loc){0, 0, 100}, data, 100);
    store_arena_unref(a);
    store_free(st);
}
END_TEST

START_TEST(test_into_arena_needs_index_zero)
{
    struct store *st = open_store(NULL);
    struct store_writer *w = new_writer(st, 1), *w0 = new_writer(st, 0);
    struct store_arena *a = NULL;
    struct store_file *f[2];
    struct store_loc l1, l2;
    struct err err;
    struct store_stats s;

    l1 = push_ok(w, "one", 3);
    ck_assert_int_eq(store_into_arena(w, &a, &err), -1);
    ck_assert_int_eq(err.code, PROTO_MISSING_INDEX);
    ck_assert_msg(strstr(err.msg, "index 1") != NULL, "%s", err.msg);
    ck_assert_ptr_null(a);
    /* Untouched: same length, still takes pushes, finishes normally. */
    ck_assert_uint_eq(store_writer_len(w), 3);
    ck_assert_uint_eq(store_writer_index(w), 1);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers, 2);
    ck_assert_uint_eq(s.arenas, 0);
    l2 = push_ok(w, "two", 3);
    ck_assert_uint_eq(l2.offset, 3);
    f[1] = finish_ok(w);
    ck_assert_uint_eq(store_file_size(f[1]), 6);
    f[0] = finish_ok(w0);
    a = build_ok(st, f, 2);
    /* The finished file kept its writer's index: the build placed it at 1. */
    ck_assert_ptr_eq(store_arena_file(a, 1), f[1]);
    unref_files(f, 2);
    expect_bytes(a, l1, "one", 3);
    expect_bytes(a, l2, "two", 3);
    store_arena_unref(a);
    store_free(st);
}
END_TEST

START_TEST(test_file_shared_by_two_arenas)
{
    struct store *st = open_store(NULL);
    struct store_writer *w0 = new_writer(st, 0), *w1 = new_writer(st, 1);
    struct store_loc l0 = push_ok(w0, "shared", 6), l1 = push_ok(w1, "second", 6);
    struct store_file *f[2];
    struct store_arena *small, *big;
    struct store_stats s;

    f[0] = finish_ok(w0);
    f[1] = finish_ok(w1);
    small = build_ok(st, f, 1);
    big = build_ok(st, f, 2);
    ck_assert_ptr_eq(store_arena_file(small, 0), store_arena_file(big, 0));
    unref_files(f, 2);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.files, 2);
    ck_assert_uint_eq(s.arenas, 2);

    store_arena_unref(small);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.files, 2);
    ck_assert_uint_eq(s.arenas, 1);
    expect_bytes(big, l0, "shared", 6);
    expect_bytes(big, l1, "second", 6);

    /* A third arena from the surviving arena's file, then the old one goes. */
    f[0] = store_arena_file(big, 0);
    small = build_ok(st, f, 1);
    store_arena_ref(big);
    store_arena_unref(big);
    store_arena_unref(big);
    expect_bytes(small, l0, "shared", 6);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.files, 1);
    ck_assert_uint_eq(s.bytes_on_disk, 6);
    store_arena_unref(small);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.files, 0);
    ck_assert_uint_eq(s.arenas, 0);
    ck_assert_uint_eq(s.bytes_on_disk, 0);
    store_free(st);
}
END_TEST

START_TEST(test_quota_max_bytes)
{
    struct store_config c = {.max_bytes = 1000, .write_buffer = 256};
    struct store *st = open_store(&c);
    struct store_writer *w = new_writer(st, 0), *w2;
    unsigned char data[1000];
    struct store_loc l1, l2;
    struct store_arena *a;
    struct err err;
    struct store_stats s;

    memset(data, 0xA5, sizeof(data));
    data[0] = 1;
    l1 = push_ok(w, data, 600);
    push_fails(w, data, 401, PROTO_NO_SPACE, &err);
    ck_assert_str_eq(err.msg, "push of 401 bytes would pass max_bytes 1000 (600 in use)");
    l2 = push_ok(w, data + 1, 100); /* buffered bytes count too */
    w2 = new_writer(st, 1);
    push_fails(w2, data, 301, PROTO_NO_SPACE, &err);
    push_ok(w2, data, 300);
    push_fails(w2, data, 1, PROTO_NO_SPACE, &err);
    ck_assert_uint_eq(push_ok(w2, data, 0).offset, 300);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.bytes_on_disk, 1000);
    ck_assert_uint_eq(s.bytes_written, 1000);

    /* Everything stored before stays readable. */
    {
        struct store_arena *tmp = NULL;

        ck_assert_int_eq(store_into_arena(w, &tmp, &err), 0);
        a = tmp;
    }
    expect_bytes(a, l1, data, 600);
    expect_bytes(a, l2, data + 1, 100);

    /* Space comes back when a writer or file goes. */
    store_writer_discard(w2);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.bytes_on_disk, 700);
    w2 = new_writer(st, 0);
    push_ok(w2, data, 300);
    push_fails(w2, data, 1, PROTO_NO_SPACE, &err);
    store_arena_unref(a);
    push_ok(w2, data, 700);
    store_writer_discard(w2);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.bytes_on_disk, 0);
    store_free(st);
}
END_TEST

/* The injected free-space probe: a fixed answer, counted calls. */
struct fake_free {
    uint64_t avail;
    int calls;
    int fail; /* errno to fail with, 0 = succeed */
    char dir[4096];
};

/* store_config.free_bytes for the tests. */
static int fake_free_bytes(void *ctx, const char *dir, uint64_t *avail)
{
    struct fake_free *ff = ctx;

    ff->calls++;
    snprintf(ff->dir, sizeof(ff->dir), "%s", dir);
    if (ff->fail) {
        errno = ff->fail;
        return -1;
    }
    *avail = ff->avail;
    return 0;
}

START_TEST(test_min_free_floor)
{
    struct fake_free ff = {.avail = 1000 + 500};
    struct store_config c = {.min_free = 1000,
                             .write_buffer = 1024,
                             .free_bytes = fake_free_bytes,
                             .free_bytes_ctx = &ff};
    struct store *st = open_store(&c);
    struct store_writer *w = new_writer(st, 0);
    unsigned char data[4096];
    struct store_loc l1, l2, l3;
    struct store_arena *a = NULL;
    struct err err;
    struct store_stats s;
    char real[4096];
    int calls;

    rng_fill(&(uint64_t){7}, data, sizeof(data));
    ck_assert_ptr_nonnull(realpath(scratch, real));

    /* 500 bytes of room above the floor. */
    push_fails(w, data, 501, PROTO_NO_SPACE, &err);
    ck_assert_msg(strstr(err.msg, "min_free 1000") != NULL, "%s", err.msg);
    ck_assert_int_eq(ff.calls, 1);
    ck_assert_str_eq(ff.dir, real);
    l1 = push_ok(w, data, 400);
    l2 = push_ok(w, data + 400, 100);
    /* The room is spent by our own accounting; a re-probe still sees 500
     * (the 500 bytes are buffered, not yet on disk) and refuses. */
    calls = ff.calls;
    push_fails(w, data, 1, PROTO_NO_SPACE, &err);
    ck_assert_int_eq(ff.calls, calls + 1);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.bytes_on_disk, 500);

    /* More space appears: small pushes spend the measured headroom without
     * probing; a flush or a large push probes. */
    ff.avail = 1000 + 1000000;
    l3 = push_ok(w, data, 1);
    calls = ff.calls;
    for (int i = 0; i < 100; i++)
        push_ok(w, data, 5);
    ck_assert_int_eq(ff.calls, calls);
    push_ok(w, data, 1024);
    ck_assert_int_eq(ff.calls, calls + 1);
    push_ok(w, data, 1000);
    push_ok(w, data, 100); /* straddles the buffer end: a flush */
    ck_assert_int_eq(ff.calls, calls + 2);

    /* A failing probe fails the push (io_error) and writes nothing. */
    ff.fail = EIO;
    {
        uint64_t len = store_writer_len(w);

        push_fails(w, data, 2000, PROTO_IO_ERROR, &err);
        ck_assert_msg(strstr(err.msg, "free-space probe") != NULL, "%s", err.msg);
        ck_assert_uint_eq(store_writer_len(w), len);
    }
    ff.fail = 0;

    /* Old data readable after all of this. */
    ck_assert_int_eq(store_into_arena(w, &a, &err), 0);
    expect_bytes(a, l1, data, 400);
    expect_bytes(a, l2, data + 400, 100);
    expect_bytes(a, l3, data, 1);

    /* Freeing a file forgets the measured headroom: the next push probes. */
    w = new_writer(st, 0);
    push_ok(w, data, 1);
    calls = ff.calls;
    push_ok(w, data, 1);
    ck_assert_int_eq(ff.calls, calls);
    store_arena_unref(a);
    push_ok(w, data, 1);
    ck_assert_int_eq(ff.calls, calls + 1);
    store_writer_discard(w);
    store_free(st);

    /* min_free 0: never probed. */
    ff.calls = 0;
    c.min_free = 0;
    st = open_store(&c);
    w = new_writer(st, 0);
    push_ok(w, data, 4096);
    push_ok(w, data, 10);
    store_writer_discard(w);
    store_free(st);
    ck_assert_int_eq(ff.calls, 0);
}
END_TEST

START_TEST(test_default_free_probe)
{
    /* The real statvfs probe: a floor of 1 byte passes, an absurd floor fails. */
    struct store_config c = {.min_free = 1};
    struct store *st = open_store(&c);
    struct store_writer *w = new_writer(st, 0);
    struct err err;

    push_ok(w, "abc", 3);
    store_writer_discard(w);
    store_free(st);
    c.min_free = UINT64_MAX;
    st = open_store(&c);
    w = new_writer(st, 0);
    push_fails(w, "abc", 3, PROTO_NO_SPACE, &err);
    ck_assert_uint_eq(store_writer_len(w), 0);
    store_writer_discard(w);
    store_free(st);
}
END_TEST

START_TEST(test_large_and_straddling_pushes)
{
    static const size_t sizes[] = {10,    200000, 1,     30000, 30000, 30000,  65535,
                                   65536, 65537,  40000, 0,     25535, 131072, 3};
    enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
    struct store *st = open_store(NULL);
    struct store_writer *w = new_writer(st, 0);
    struct store_loc loc[NS];
    unsigned char *data = malloc(200000);
    uint64_t total = 0;
    struct store_arena *a = NULL;
    struct err err;
    struct stat sb;

    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < NS; i++) {
        uint64_t s = i + 1;

        rng_fill(&s, data, sizes[i]);
        loc[i] = push_ok(w, data, sizes[i]);
        ck_assert_uint_eq(loc[i].offset, total);
        total += sizes[i];
    }
    ck_assert_int_eq(store_into_arena(w, &a, &err), 0);
    ck_assert_uint_eq(store_arena_bytes(a), total);
    ck_assert_int_eq(fstat(store_arena_fd(a, 0), &sb), 0);
    ck_assert_int_eq((uint64_t)sb.st_size, total);
    for (size_t i = 0; i < NS; i++) {
        uint64_t s = i + 1;

        rng_fill(&s, data, sizes[i]);
        expect_bytes(a, loc[i], data, sizes[i]);
    }
    store_arena_unref(a);
    free(data);
    store_free(st);
}
END_TEST

START_TEST(test_tiny_buffer_odd_sizes)
{
    struct store_config c = {.write_buffer = 7};
    struct store *st = open_store(&c);
    struct store_writer *w = new_writer(st, 0);
    struct store_loc loc[300];
    unsigned char data[20];
    struct store_arena *a = NULL;
    struct err err;

    for (int i = 0; i < 300; i++) {
        memset(data, i, sizeof(data));
        loc[i] = push_ok(w, data, (size_t)(i % 13));
    }
    ck_assert_int_eq(store_into_arena(w, &a, &err), 0);
    for (int i = 0; i < 300; i++) {
        memset(data, i, sizeof(data));
        expect_bytes(a, loc[i], data, (size_t)(i % 13));
    }
    store_arena_unref(a);
    store_free(st);
}
END_TEST

START_TEST(test_failed_flush_keeps_earlier_pushes)
{
    /* RLIMIT_FSIZE makes writes past 8192 bytes short, then EFBIG: a real
     * failure in the middle of a flush of buffered pushes. */
    struct store_config c = {.write_buffer = 4096};
    struct store *st = open_store(&c);
    struct store_writer *w = new_writer(st, 0), *w2;
    unsigned char d[5][3000];
    struct store_loc la, lb, lc, le, lf;
    struct store_file *f = NULL;
    struct store_arena *a;
    struct err err;
    struct store_stats s;
    struct rlimit old, lim;
    struct stat sb;

    for (int i = 0; i < 5; i++)
        memset(d[i], 'a' + i, sizeof(d[i]));
    ck_assert(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 8192;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

    la = push_ok(w, d[0], 3000);                     /* buffered */
    lb = push_ok(w, d[1], 3000);                     /* flush: 6000 on disk */
    lc = push_ok(w, d[2], 2000);                     /* buffered */
    push_fails(w, d[3], 3000, PROTO_IO_ERROR, &err); /* 5000 at 6000: past 8192 */
    ck_assert_msg(strstr(err.msg, "offset 6000") != NULL, "%s", err.msg);
    ck_assert_uint_eq(store_writer_len(w), 8000);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.bytes_on_disk, 8000);
    ck_assert_uint_eq(s.bytes_written, 8000);

    le = push_ok(w, d[4], 100);
    ck_assert_uint_eq(le.offset, 8000);
    lf = push_ok(w, d[1], 200);
    ck_assert_uint_eq(lf.offset, 8100);
    /* finish must flush 2300 bytes at 6000: past the limit, so it fails and
     * leaves the writer as it was. */
    ck_assert_int_eq(store_finish(w, &f, &err), -1);
    ck_assert_int_eq(err.code, PROTO_IO_ERROR);
    ck_assert_ptr_null(f);
    ck_assert_uint_eq(store_writer_len(w), 8300);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers, 1);
    ck_assert_uint_eq(s.files, 0);

    /* A failed direct write is cut back too: the file ends where the
     * writer's length says, not where the partial write stopped. */
    w2 = new_writer(st, 0);
    push_ok(w2, d[0], 3000);
    push_ok(w2, d[1], 3000);
    push_fails(w2, (const void *)d, 5000, PROTO_IO_ERROR, &err); /* direct */
    f = finish_ok(w2);
    ck_assert_uint_eq(store_file_size(f), 6000);
    a = build_ok(st, &f, 1);
    store_file_unref(f);
    ck_assert_int_eq(fstat(store_arena_fd(a, 0), &sb), 0);
    ck_assert_int_eq(sb.st_size, 6000);
    expect_bytes(a, (struct store_loc){0, 3000, 3000}, d[1], 3000);
    store_arena_unref(a);

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    f = finish_ok(w);
    ck_assert_uint_eq(store_file_size(f), 8300);
    a = build_ok(st, &f, 1);
    store_file_unref(f);
    ck_assert_int_eq(fstat(store_arena_fd(a, 0), &sb), 0);
    ck_assert_int_eq(sb.st_size, 8300);
    expect_bytes(a, la, d[0], 3000);
    expect_bytes(a, lb, d[1], 3000);
    expect_bytes(a, lc, d[2], 2000);
    expect_bytes(a, le, d[4], 100);
    expect_bytes(a, lf, d[1], 200);
    store_arena_unref(a);
    store_free(st);
}
END_TEST

START_TEST(test_short_file_read_is_io_error)
{
    struct store *st = open_store(NULL);
    struct store_loc loc;
    struct store_arena *a = arena_of(st, "0123456789", 10, &loc);
    unsigned char buf[10];
    struct err err;

    /* Someone cut the file behind the engine's back. */
    ck_assert_int_eq(ftruncate(store_arena_fd(a, 0), 6), 0);
    ck_assert_int_eq(store_get(a, (struct store_loc){0, 3, 5}, buf, &err), -1);
    ck_assert_int_eq(err.code, PROTO_IO_ERROR);
    ck_assert_str_eq(err.msg, "file 0 ends at 6, short of its size 10");
    expect_bytes(a, (struct store_loc){0, 2, 4}, "2345", 4);
    store_arena_unref(a);
    store_free(st);
}
END_TEST

/* What each reader thread gets and reports. */
struct reader {
    const struct store_arena *a;
    const struct payload *p;
    const uint64_t *sum;
    int n;
    uint64_t seed;
    int reads;
    int mismatches;
    int errors;
};

/* Reads random payloads and checks them against their checksums. */
static void *reader_main(void *arg)
{
    struct reader *r = arg;
    unsigned char buf[4096];
    struct err err;

    for (int i = 0; i < r->reads; i++) {
        int k = (int)(rng_next(&r->seed) % (uint64_t)r->n);

        if (store_get(r->a, r->p[k].loc, buf, &err) != 0)
            r->errors++;
        else if (fnv1a(buf, r->p[k].len) != r->sum[k])
            r->mismatches++;
    }
    return NULL;
}

START_TEST(test_concurrent_readers)
{
    enum { N = 3000, W = 3, T = 8 };
    struct store *st = open_store(NULL);
    struct store_writer *w[W];
    struct store_file *f[W];
    struct payload *p = calloc(N, sizeof(*p));
    uint64_t *sum = calloc(N, sizeof(*sum));
    struct reader r[T];
    pthread_t tid[T];
    unsigned char buf[4096];
    uint64_t rng = 99;
    struct store_arena *a;
    int total = 0;

    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(sum);
    for (int i = 0; i < W; i++)
        w[i] = new_writer(st, (uint16_t)i);
    for (int i = 0; i < N; i++) {
        p[i].writer = (int)(rng_next(&rng) % W);
        p[i].len = (size_t)(rng_next(&rng) % sizeof(buf));
        rng_fill(&rng, buf, p[i].len);
        sum[i] = fnv1a(buf, p[i].len);
        p[i].loc = push_ok(w[p[i].writer], buf, p[i].len);
    }
    for (int i = 0; i < W; i++)
        f[i] = finish_ok(w[i]);
    a = build_ok(st, f, W);
    unref_files(f, W);
    for (int t = 0; t < T; t++) {
        r[t] = (struct reader){
            .a = a, .p = p, .sum = sum, .n = N, .seed = 1000 + (uint64_t)t, .reads = 20000};
        ck_assert_int_eq(pthread_create(&tid[t], NULL, reader_main, &r[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(pthread_join(tid[t], NULL), 0);
        ck_assert_int_eq(r[t].errors, 0);
        ck_assert_int_eq(r[t].mismatches, 0);
        total += r[t].reads;
    }
    ck_assert_int_eq(total, T * 20000);
    store_arena_unref(a);
    free(p);
    free(sum);
    store_free(st);
}
END_TEST

START_TEST(test_no_fd_left_open)
{
    int before = count_fds(), during;
    struct store *st = open_store(NULL);
    struct store_writer *w[6];
    struct store_file *f[3];
    struct store_arena *a, *b, *c;
    struct store_loc loc;
    struct err err;

    for (int i = 0; i < 6; i++) {
        w[i] = new_writer(st, (uint16_t)(i % 3));
        push_ok(w[i], "payload", 7);
    }
    during = count_fds();
    ck_assert_int_ge(during, before + 6);
    ck_assert_int_eq(scratch_entries(), 0);
    for (int i = 0; i < 3; i++)
        f[i] = finish_ok(w[i]);
    store_writer_discard(w[3]);
    a = build_ok(st, f, 3);
    b = build_ok(st, f, 1);
    ck_assert_int_eq(store_into_arena(w[4], &c, &err), -1); /* index 1 */
    ck_assert_int_eq(store_into_arena(w[5], &c, &err), -1); /* index 2 */
    store_writer_discard(w[4]);
    store_writer_discard(w[5]);
    unref_files(f, 3);
    c = arena_of(st, "z", 1, &loc);
    ck_assert_int_eq(count_fds(), before + 4);
    store_arena_unref(a);
    ck_assert_int_eq(count_fds(), before + 2);
    store_arena_unref(b);
    store_arena_unref(c);
    store_free(st);
    ck_assert_int_eq(count_fds(), before);
    ck_assert_int_eq(scratch_entries(), 0);
}
END_TEST

/* on_file_free recorder: calls per tag. */
struct free_log {
    int calls[8];
    int total;
};

/* store_config.on_file_free for the tests. */
static void log_file_free(void *ctx, uint64_t tag)
{
    struct free_log *fl = ctx;

    ck_assert_uint_lt(tag, 8);
    fl->calls[tag]++;
    fl->total++;
}

START_TEST(test_on_file_free_once_per_file)
{
    struct free_log fl = {{0}, 0};
    struct store_config c = {.on_file_free = log_file_free, .on_file_free_ctx = &fl};
    struct store *st = open_store(&c);
    static const uint16_t idx[] = {0, 1, 2};
    struct store_file *f[3];
    struct store_arena *a, *b, *d;
    struct store_writer *w;
    struct store_loc loc;

    make_files(st, idx, 3, f);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(store_file_tag(f[i]), 0);
        store_file_set_tag(f[i], (uint64_t)i + 1);
        ck_assert_uint_eq(store_file_tag(f[i]), (uint64_t)i + 1);
    }
    a = build_ok(st, f, 3);
    b = build_ok(st, f, 2);
    store_file_ref(f[2]);
    unref_files(f, 3);
    ck_assert_int_eq(fl.total, 0);
    store_arena_unref(a);
    ck_assert_int_eq(fl.total, 0); /* f0, f1 in b; f2 held by the extra ref */
    store_file_unref(f[2]);
    ck_assert_int_eq(fl.calls[3], 1);
    ck_assert_int_eq(fl.total, 1);
    store_arena_unref(b);
    ck_assert_int_eq(fl.calls[1], 1);
    ck_assert_int_eq(fl.calls[2], 1);
    ck_assert_int_eq(fl.total, 3);

    /* A discarded writer is not a file: no call. into_arena's file has tag 0
     * unless set through the arena. */
    w = new_writer(st, 0);
    push_ok(w, "abc", 3);
    store_writer_discard(w);
    ck_assert_int_eq(fl.total, 3);
    d = arena_of(st, "abc", 3, &loc);
    store_file_set_tag(store_arena_file(d, 0), 5);
    store_arena_unref(d);
    ck_assert_int_eq(fl.calls[5], 1);
    d = arena_of(st, "abc", 3, &loc);
    store_arena_unref(d);
    ck_assert_int_eq(fl.calls[0], 1);
    ck_assert_int_eq(fl.total, 5);
    store_free(st);
}
END_TEST

START_TEST(test_stats_counters)
{
    struct store *st = open_store(NULL);
    struct store_writer *w0, *w1, *w2;
    struct store_file *f0, *f1;
    struct store_arena *a;
    struct store_stats s;
    char data[100] = {0};

    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers + s.files + s.arenas + s.bytes_on_disk + s.bytes_written, 0);
    w0 = new_writer(st, 0);
    w1 = new_writer(st, 1);
    w2 = new_writer(st, 0);
    push_ok(w0, data, 10);
    push_ok(w1, data, 20);
    push_ok(w2, data, 40);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers, 3);
    ck_assert_uint_eq(s.bytes_on_disk, 70);
    ck_assert_uint_eq(s.bytes_written, 70);
    store_writer_discard(w2);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers, 2);
    ck_assert_uint_eq(s.bytes_on_disk, 30);
    ck_assert_uint_eq(s.bytes_written, 70);
    f0 = finish_ok(w0);
    f1 = finish_ok(w1);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers, 0);
    ck_assert_uint_eq(s.files, 2);
    ck_assert_uint_eq(s.bytes_on_disk, 30);
    a = build_ok(st, (struct store_file *[]){f1, f0}, 2);
    ck_assert_uint_eq(store_arena_bytes(a), 30);
    store_file_unref(f0);
    store_file_unref(f1);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.arenas, 1);
    ck_assert_uint_eq(s.files, 2);
    store_arena_unref(a);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.arenas, 0);
    ck_assert_uint_eq(s.files, 0);
    ck_assert_uint_eq(s.bytes_on_disk, 0);
    ck_assert_uint_eq(s.bytes_written, 70);
    store_free(st);
}
END_TEST

/* The filesystem type of the mount holding path, from /proc/self/mounts
 * (the longest mount point that is a prefix of path), into type. */
static void mount_type(const char *path, char *type, size_t size)
{
    FILE *fp = fopen("/proc/self/mounts", "re");
    char dev[512], mnt[4096], fs[128];
    size_t best = 0;

    ck_assert_ptr_nonnull(fp);
    type[0] = '\0';
    while (fscanf(fp, "%511s %4095s %127s %*[^\n]", dev, mnt, fs) == 3) {
        size_t n = strlen(mnt);
        bool under = strcmp(mnt, "/") == 0 ||
                     (strncmp(path, mnt, n) == 0 && (path[n] == '/' || path[n] == '\0'));

        if (under && n >= best) {
            best = n;
            snprintf(type, size, "%s", fs);
        }
    }
    fclose(fp);
}

START_TEST(test_dir_in_memory)
{
    const char *fstype = NULL;
    char real[4096], type[128];
    int r;

    ck_assert_ptr_nonnull(realpath(scratch, real));
    mount_type(real, type, sizeof(type));
    r = store_dir_in_memory(scratch, &fstype);
    if (strcmp(type, "tmpfs") == 0 || strcmp(type, "ramfs") == 0) {
        ck_assert_int_eq(r, 1);
        ck_assert_str_eq(fstype, type);
    } else {
        ck_assert_int_eq(r, 0);
    }
    if (access("/dev/shm", F_OK) == 0 && realpath("/dev/shm", real)) {
        mount_type(real, type, sizeof(type));
        if (strcmp(type, "tmpfs") == 0) {
            fstype = NULL;
            ck_assert_int_eq(store_dir_in_memory("/dev/shm", &fstype), 1);
            ck_assert_str_eq(fstype, "tmpfs");
        }
    }
    errno = 0;
    ck_assert_int_eq(store_dir_in_memory("/nonexistent/farena", &fstype), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

#ifdef NATIVE_AUDIT_ARCH
/* Installs a seccomp filter (this forked test process only) that fails
 * `nr` with `err` when the low word of argument `arg` has any bit of `mask`
 * set, or, if mask is 0, when that word is at least `min`. */
static void inject_errno(int nr, int nr2, int arg, uint32_t mask, uint32_t min, int err)
{
    uint32_t off = (uint32_t)offsetof(struct seccomp_data, args[0]) + 8u * (uint32_t)arg;
    struct sock_filter cond =
        mask ? (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, mask, 0, 1)
             : (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, min, 0, 1);
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr2, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off),
        cond,
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};

    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0), 0);
}

/* Makes open(dir, O_TMPFILE) fail with err, as on filesystems without it
 * (glibc's open() is the openat system call; its flags are argument 2). */
static void refuse_tmpfile(int err)
{
    inject_errno(SYS_openat, SYS_openat, 2, (uint32_t)(O_TMPFILE & ~O_DIRECTORY), 0, err);
}

/* What check_fallback() saw once the store was gone. */
struct fallback_outcome {
    int tmpfile_errno; /* errno of open(O_TMPFILE) under the filter */
    int names_left;    /* entries left in the scratch directory */
    int fds_leaked;    /* descriptors open now that were not before */
};

/* Creates writers on a filesystem refusing O_TMPFILE with err: the fallback
 * (mkostemp + unlink) must work; returns what it saw and left behind. */
static struct fallback_outcome check_fallback(int err)
{
    int before = count_fds();
    struct store *st = open_store(NULL);
    struct store_writer *w;
    struct store_arena *a = NULL;
    struct store_loc loc;
    struct err e;
    struct fallback_outcome out;

    refuse_tmpfile(err);
    errno = 0;
    ck_assert_int_eq(open(scratch, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), -1);
    out.tmpfile_errno = errno;
    w = new_writer(st, 0);
    ck_assert_int_eq(scratch_entries(), 0);
    loc = push_ok(w, "fallback", 8);
    ck_assert_int_eq(store_into_arena(w, &a, &e), 0);
    expect_bytes(a, loc, "fallback", 8);
    store_arena_unref(a);
    store_free(st);
    out.names_left = scratch_entries();
    out.fds_leaked = count_fds() - before;
    return out;
}

START_TEST(test_tmpfile_fallback_eopnotsupp)
{
    struct fallback_outcome o = check_fallback(EOPNOTSUPP);

    ck_assert_int_eq(o.tmpfile_errno, EOPNOTSUPP);
    ck_assert_int_eq(o.names_left, 0);
    ck_assert_int_eq(o.fds_leaked, 0);
}
END_TEST

START_TEST(test_tmpfile_fallback_eisdir)
{
    struct fallback_outcome o = check_fallback(EISDIR);

    ck_assert_int_eq(o.tmpfile_errno, EISDIR);
    ck_assert_int_eq(o.names_left, 0);
    ck_assert_int_eq(o.fds_leaked, 0);
}
END_TEST

START_TEST(test_tmpfile_fallback_einval)
{
    struct fallback_outcome o = check_fallback(EINVAL);

    ck_assert_int_eq(o.tmpfile_errno, EINVAL);
    ck_assert_int_eq(o.names_left, 0);
    ck_assert_int_eq(o.fds_leaked, 0);
}
END_TEST

/* writer_new with open failing with e: returns the error it reported
 * (checked here: it failed, says so first, and counts no writer). */
static struct err writer_new_error(int e)
{
    struct store *st = open_store(NULL);
    struct store_writer *w = NULL;
    struct err err;
    struct store_stats s;

    refuse_tmpfile(e);
    ck_assert_int_eq(store_writer_new(st, 0, &w, &err), -1);
    ck_assert_msg(strstr(err.msg, "cannot create a scratch file") == err.msg, "%s", err.msg);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers, 0);
    store_free(st);
    return err;
}

START_TEST(test_writer_new_emfile_is_limit)
{
    struct err err = writer_new_error(EMFILE);

    ck_assert_int_eq(err.code, PROTO_LIMIT);
    ck_assert_msg(strstr(err.msg, "too many open files") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_writer_new_enospc_is_no_space)
{
    struct err err = writer_new_error(ENOSPC);

    ck_assert_int_eq(err.code, PROTO_NO_SPACE);
    ck_assert_msg(strstr(err.msg, "no space left") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_writer_new_eacces_is_io_error)
{
    struct err err = writer_new_error(EACCES);

    ck_assert_int_eq(err.code, PROTO_IO_ERROR);
    ck_assert_msg(strstr(err.msg, "permission denied") != NULL, "%s", err.msg);
}
END_TEST

/* The codes of a failed flush and of the finish after it. */
struct write_fail_codes {
    enum proto_err push, finish;
};

/* Writes at offsets of 4096 and beyond fail with e: returns the codes of a
 * failed flush and of a failed finish, and checks that the writer is
 * unchanged by either. */
static struct write_fail_codes check_write_errno(int e)
{
    struct store_config c = {.write_buffer = 1024};
    struct store *st = open_store(&c);
    struct store_writer *w = new_writer(st, 0);
    unsigned char data[4096];
    struct store_file *f = NULL;
    struct store_loc loc;
    struct err err;
    struct store_stats s;
    struct write_fail_codes out;

    memset(data, 'q', sizeof(data));
    push_ok(w, data, 4096); /* direct, at offset 0 */
    inject_errno(SYS_pwritev, SYS_pwritev2, 3, 0, 4096, e);
    push_ok(w, data, 100); /* buffered */
    ck_assert_int_eq(store_push(w, data, 2000, &loc, &err), -1);
    out.push = err.code;
    ck_assert_msg(strstr(err.msg, "write to file 0 at offset 4096") == err.msg, "%s", err.msg);
    ck_assert_uint_eq(store_writer_len(w), 4196);
    ck_assert_int_eq(store_finish(w, &f, &err), -1);
    out.finish = err.code;
    ck_assert_uint_eq(store_writer_len(w), 4196);
    store_stats_get(st, &s);
    ck_assert_uint_eq(s.writers, 1);
    ck_assert_uint_eq(s.bytes_on_disk, 4196);
    store_writer_discard(w);
    store_free(st);
    return out;
}

START_TEST(test_write_enospc_is_no_space)
{
    struct write_fail_codes got = check_write_errno(ENOSPC);

    ck_assert_int_eq(got.push, PROTO_NO_SPACE);
    ck_assert_int_eq(got.finish, PROTO_NO_SPACE);
}
END_TEST

START_TEST(test_write_edquot_is_no_space)
{
    struct write_fail_codes got = check_write_errno(EDQUOT);

    ck_assert_int_eq(got.push, PROTO_NO_SPACE);
    ck_assert_int_eq(got.finish, PROTO_NO_SPACE);
}
END_TEST

START_TEST(test_write_eio_is_io_error)
{
    struct write_fail_codes got = check_write_errno(EIO);

    ck_assert_int_eq(got.push, PROTO_IO_ERROR);
    ck_assert_int_eq(got.finish, PROTO_IO_ERROR);
}
END_TEST
#endif

/* The suite: one tcase per area, each with its own scratch dir per test. */
static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *basic = tcase_create("basic"), *rules = tcase_create("rules");
    TCase *space = tcase_create("space"), *life = tcase_create("lifetime");
    TCase *inject;
    /* Fault injection (seccomp, rlimits) changes the process for good, so it
     * runs only when Check forks a child per test. */
    const char *fork_env = getenv("CK_FORK");
    bool forked = !fork_env || strcmp(fork_env, "no") != 0;

    tcase_add_checked_fixture(basic, scratch_setup, scratch_teardown);
    tcase_add_checked_fixture(rules, scratch_setup, scratch_teardown);
    tcase_add_checked_fixture(space, scratch_setup, scratch_teardown);
    tcase_add_checked_fixture(life, scratch_setup, scratch_teardown);

    tcase_add_test(basic, test_new_rejects_bad_config);
    tcase_add_test(basic, test_empty_push);
    tcase_add_test(basic, test_all_byte_values);
    tcase_add_test(basic, test_random_payloads_three_writers);
    tcase_add_test(basic, test_large_and_straddling_pushes);
    tcase_add_test(basic, test_tiny_buffer_odd_sizes);

    tcase_add_test(rules, test_build_errors);
    tcase_add_test(rules, test_arena_new_order);
    tcase_add_test(rules, test_out_of_bounds_edges);
    tcase_add_test(rules, test_file_full);
    tcase_add_test(rules, test_into_arena_needs_index_zero);
    tcase_add_test(rules, test_short_file_read_is_io_error);

    tcase_add_test(space, test_quota_max_bytes);
    tcase_add_test(space, test_min_free_floor);
    tcase_add_test(space, test_default_free_probe);
    tcase_add_test(space, test_dir_in_memory);

    tcase_add_test(life, test_file_shared_by_two_arenas);
    tcase_add_test(life, test_concurrent_readers);
    tcase_add_test(life, test_no_fd_left_open);
    tcase_add_test(life, test_on_file_free_once_per_file);
    tcase_add_test(life, test_stats_counters);

    suite_add_tcase(s, basic);
    suite_add_tcase(s, rules);
    suite_add_tcase(s, space);
    suite_add_tcase(s, life);
    if (forked) {
        inject = tcase_create("inject");
        tcase_add_checked_fixture(inject, scratch_setup, scratch_teardown);
        tcase_add_test(inject, test_failed_flush_keeps_earlier_pushes);
#ifdef NATIVE_AUDIT_ARCH
        tcase_add_test(inject, test_tmpfile_fallback_eopnotsupp);
        tcase_add_test(inject, test_tmpfile_fallback_eisdir);
        tcase_add_test(inject, test_tmpfile_fallback_einval);
        tcase_add_test(inject, test_writer_new_emfile_is_limit);
        tcase_add_test(inject, test_writer_new_enospc_is_no_space);
        tcase_add_test(inject, test_writer_new_eacces_is_io_error);
        tcase_add_test(inject, test_write_enospc_is_no_space);
        tcase_add_test(inject, test_write_edquot_is_no_space);
        tcase_add_test(inject, test_write_eio_is_io_error);
#endif
        suite_add_tcase(s, inject);
    }
    return s;
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    SRunner *sr;
    int failed;

    if (!base || !base[0])
        base = "/var/tmp";
    snprintf(run_dir, sizeof(run_dir), "%s/check_store-XXXXXX", base);
    if (!mkdtemp(run_dir)) {
        fprintf(stderr, "check_store: mkdtemp %s: %s\n", run_dir, strerror(errno));
        return EXIT_FAILURE;
    }
    sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (th_rm_tree(run_dir) != 0) {
        fprintf(stderr, "check_store: cannot remove %s: %s\n", run_dir, strerror(errno));
        failed++;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
