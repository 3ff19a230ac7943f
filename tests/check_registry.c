/* Unit tests of the handle registry (daemon/registry.c) and its hash map:
 * handle numbering, ownership, sharing through arenas and names, every
 * lifetime rule of protocol 1 and the per-connection caps. No networking. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nametree.h"
#include "registry.h"
#include "u64map.h"

static char scratch[128];
static struct reg *R;

/* A registry over a fresh scratch directory with the given caps. */
static void reg_setup_caps(uint32_t max_writers, uint32_t max_handles)
{
    struct store_config sc = {0};
    struct reg_config rc = {max_writers, max_handles};
    struct err err;
    const char *t = getenv("TMPDIR");

    snprintf(scratch, sizeof(scratch), "%s/check_registry-XXXXXX",
             t != NULL && t[0] == '/' ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    sc.dir = scratch;
    sc.min_free = 0;
    ck_assert_int_eq(reg_new(&sc, &rc, &R, &err), 0);
}

/* Fixture: a registry with default caps. */
static void setup(void)
{
    reg_setup_caps(0, 0);
}

/* Fixture: frees the registry and its scratch directory. */
static void teardown(void)
{
    reg_free(R);
    R = NULL;
    (void)th_rm_tree(scratch);
}

/* The store's counters. */
static struct store_stats stats(void)
{
    struct store_stats s;

    store_stats_get(reg_store(R), &s);
    return s;
}

/* A writer of index idx owned by o holding the bytes of s. */
static uint64_t writer_with(struct reg_owner *o, uint16_t idx, const char *s)
{
    struct err err;
    struct store_loc loc;
    uint64_t h;

    ck_assert_int_eq(reg_writer_new(o, idx, &h, &err), 0);
    struct store_writer *w = reg_writer(o, h, &err);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(store_push(w, s, strlen(s), &loc, &err), 0);
    return h;
}

/* A finished file of index idx owned by o. */
static uint64_t file_with(struct reg_owner *o, uint16_t idx, const char *s)
{
    struct err err;
    uint64_t fh;

    ck_assert_int_eq(reg_finish(o, writer_with(o, idx, s), &fh, &err), 0);
    return fh;
}

/* Reads the whole of file i of arena h. */
static void expect_arena_bytes(uint64_t h, uint16_t i, const char *want)
{
    struct err err;
    struct store_arena *a = reg_arena(R, h, &err);
    char buf[256];
    struct store_loc loc = {i, 0, (uint32_t)strlen(want)};

    ck_assert_msg(a != NULL, "arena %llu: %s", (unsigned long long)h, err.msg);
    ck_assert_int_eq(store_get(a, loc, buf, &err), 0);
    ck_assert_mem_eq(buf, want, strlen(want));
}

/* Checks that h is no live arena. */
static void expect_no_arena(uint64_t h)
{
    struct err err;

    ck_assert_ptr_null(reg_arena(R, h, &err));
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
}

/* One counter from 1 for every kind; finish gives a new number; none is reused. */
START_TEST(handles_count_from_one_and_are_never_reused)
{
    struct reg_owner *o = reg_owner_new(R);
    struct err err;
    uint64_t w1, w2, f, w3;

    ck_assert_int_eq(reg_writer_new(o, 0, &w1, &err), 0);
    ck_assert_uint_eq(w1, 1);
    ck_assert_int_eq(reg_writer_new(o, 1, &w2, &err), 0);
    ck_assert_uint_eq(w2, 2);
    ck_assert_int_eq(reg_finish(o, w1, &f, &err), 0);
    ck_assert_uint_gt(f, w2); /* a new number, never the writer's */
    /* The writer's handle has ended. */
    ck_assert_ptr_null(reg_writer(o, w1, &err));
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_release(o, f, &err), 0);
    ck_assert_int_eq(reg_release(o, w2, &err), 0);
    ck_assert_int_eq(reg_writer_new(o, 0, &w3, &err), 0);
    ck_assert_uint_gt(w3, f);
    ck_assert_uint_eq(reg_owner_writers(o), 1);
    reg_owner_free(o);
    ck_assert_uint_eq(stats().writers, 0);
}
END_TEST

/* Another owner cannot push to, finish, turn, build with or release a writer. */
START_TEST(writers_belong_to_their_owner)
{
    struct reg_owner *a = reg_owner_new(R), *b = reg_owner_new(R);
    struct err err;
    uint64_t w = writer_with(a, 0, "mine"), fh, ah;

    ck_assert_ptr_null(reg_writer(b, w, &err));
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_finish(b, w, &fh, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_into_arena(b, w, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_release(b, w, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    /* A writer is never a file, for anyone: build and arena_new refuse it. */
    ck_assert_int_eq(reg_build(b, &w, 1, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_build(b, &w, 1, REG_BUILD_IN_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_open(b, w, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_uint_eq(reg_owner_handles(b), 0);
    /* Still a's, untouched. */
    ck_assert_uint_eq(store_writer_len(reg_writer(a, w, &err)), 4);
    reg_owner_free(b);
    reg_owner_free(a);
}
END_TEST

/* Any owner may build with a live file; only its owner may release it. */
START_TEST(live_files_are_usable_by_any_owner)
{
    struct reg_owner *a = reg_owner_new(R), *b = reg_owner_new(R);
    struct err err;
    uint64_t f0 = file_with(a, 0, "zero"), f1, bh, bh2, bh3;

    /* b builds with a's file, not yet in any arena, while a holds it. */
    ck_assert_int_eq(reg_build(b, &f0, 1, REG_BUILD_ANY_ORDER, &bh, &err), 0);
    ck_assert_int_eq(reg_build(b, &f0, 1, REG_BUILD_IN_ORDER, &bh2, &err), 0);
    expect_arena_bytes(bh, 0, "zero");
    expect_arena_bytes(bh2, 0, "zero");
    /* Ownership did not move: b cannot release a's file, a still holds it. */
    ck_assert_int_eq(reg_release(b, f0, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_uint_eq(reg_owner_handles(a), 1);
    ck_assert_uint_eq(reg_owner_handles(b), 2); /* two arena references */
    /* a leaves: its ownership ends, the file lives on in b's arenas. */
    reg_owner_free(a);
    expect_arena_bytes(bh, 0, "zero");
    ck_assert_uint_eq(stats().files, 1);
    /* Still a live file, so still usable; nobody owns it now. */
    f1 = file_with(b, 1, "one");
    uint64_t both[2] = {f1, f0};
    ck_assert_int_eq(reg_build(b, both, 2, REG_BUILD_ANY_ORDER, &bh3, &err), 0);
    expect_arena_bytes(bh3, 0, "zero");
    expect_arena_bytes(bh3, 1, "one");
    ck_assert_int_eq(reg_release(b, f0, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    reg_owner_free(b);
    ck_assert_uint_eq(stats().arenas, 0);
    ck_assert_uint_eq(stats().files, 0);
    ck_assert_uint_eq(stats().bytes_on_disk, 0);
}
END_TEST

/* A file in no arena ends with its owner; nobody can build with it then. */
START_TEST(unbuilt_file_ends_with_its_owner)
{
    struct reg_owner *a = reg_owner_new(R), *b = reg_owner_new(R);
    struct err err;
    uint64_t f0 = file_with(a, 0, "gone"), f1 = file_with(b, 1, "one"), ah;
    uint64_t both[2] = {f1, f0};

    reg_owner_free(a);
    ck_assert_uint_eq(stats().files, 1); /* b's own */
    ck_assert_int_eq(reg_build(b, &f0, 1, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "item 0"));
    ck_assert_int_eq(reg_build(b, both, 2, REG_BUILD_IN_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "item 1"));
    /* The same after a release by the owner. */
    a = reg_owner_new(R);
    f0 = file_with(a, 0, "released");
    ck_assert_int_eq(reg_release(a, f0, &err), 0);
    ck_assert_int_eq(reg_build(b, &f0, 1, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_uint_eq(reg_owner_handles(b), 1);
    reg_owner_free(a);
    reg_owner_free(b);
    ck_assert_uint_eq(stats().files, 0);
}
END_TEST

/* A file held only by an arena whose handle ended (the store keeps it for
 * a reply in flight) is not live: no build may pick it up. */
START_TEST(file_of_an_ended_arena_is_not_live)
{
    struct reg_owner *a = reg_owner_new(R), *b = reg_owner_new(R);
    struct err err;
    uint64_t f0 = file_with(a, 0, "late"), ah, bh;
    struct store_arena *kept;

    ck_assert_int_eq(reg_build(a, &f0, 1, REG_BUILD_ANY_ORDER, &ah, &err), 0);
    kept = reg_arena(R, ah, &err);
    ck_assert_ptr_nonnull(kept);
    store_arena_ref(kept); /* what a reply being sent does */
    ck_assert_int_eq(reg_release(a, f0, &err), 0);
    ck_assert_int_eq(reg_release(a, ah, &err), 0);
    expect_no_arena(ah);
    ck_assert_uint_eq(stats().files, 1);
    ck_assert_int_eq(reg_build(b, &f0, 1, REG_BUILD_ANY_ORDER, &bh, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_build(a, &f0, 1, REG_BUILD_ANY_ORDER, &bh, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    store_arena_unref(kept);
    ck_assert_uint_eq(stats().files, 0);
    reg_owner_free(a);
    reg_owner_free(b);
}
END_TEST

/* With no owner and no arena left, the file and its handle are gone. */
START_TEST(file_handle_dies_with_its_last_reference)
{
    struct reg_owner *a = reg_owner_new(R), *b = reg_owner_new(R);
    struct err err;
    uint64_t f0 = file_with(a, 0, "x"), ah, bh;

    ck_assert_int_eq(reg_build(a, &f0, 1, REG_BUILD_IN_ORDER, &ah, &err), 0);
    ck_assert_int_eq(reg_release(a, f0, &err), 0); /* only the arena holds it now */
    ck_assert_int_eq(reg_build(b, &f0, 1, REG_BUILD_IN_ORDER, &bh, &err), 0);
    ck_assert_int_eq(reg_release(a, ah, &err), 0);
    ck_assert_int_eq(reg_release(b, bh, &err), 0);
    /* No arena and no owner: the file and its handle are gone. */
    ck_assert_uint_eq(stats().files, 0);
    ck_assert_int_eq(reg_build(a, &f0, 1, REG_BUILD_IN_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_release(a, f0, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    reg_owner_free(a);
    reg_owner_free(b);
}
END_TEST

/* into_arena: index 0 only; its file gets a handle nobody owns. */
START_TEST(into_arena_gives_its_file_a_handle)
{
    struct reg_owner *a = reg_owner_new(R), *b = reg_owner_new(R);
    struct err err;
    uint64_t w = writer_with(a, 0, "solo"), w1 = writer_with(a, 1, "one"), ah, bh;
    struct store_arena *arena;
    uint64_t fh;

    ck_assert_int_eq(reg_into_arena(a, w1, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_MISSING_INDEX);
    ck_assert_uint_eq(store_writer_len(reg_writer(a, w1, &err)), 3); /* untouched */
    ck_assert_int_eq(reg_into_arena(a, w, &ah, &err), 0);
    ck_assert_ptr_null(reg_writer(a, w, &err));
    arena = reg_arena(R, ah, &err);
    ck_assert_ptr_nonnull(arena);
    fh = reg_file_handle(store_arena_file(arena, 0));
    ck_assert_uint_ne(fh, 0);
    ck_assert_uint_ne(fh, ah);
    ck_assert_uint_ne(fh, w);
    /* Nobody owns it, but anyone may build with it. */
    ck_assert_int_eq(reg_release(a, fh, &err), -1);
    ck_assert_int_eq(reg_build(b, &fh, 1, REG_BUILD_ANY_ORDER, &bh, &err), 0);
    expect_arena_bytes(bh, 0, "solo");
    ck_assert_uint_eq(reg_owner_handles(a), 2); /* writer w1 + arena reference */
    reg_owner_free(a);
    reg_owner_free(b);
    ck_assert_uint_eq(stats().files, 0);
}
END_TEST

/* open twice, release twice; a release never touches another owner's references. */
START_TEST(arena_references_are_counted_per_owner)
{
    struct reg_owner *a = reg_owner_new(R), *b = reg_owner_new(R);
    struct err err;
    struct reg_arena_info info;
    uint64_t w = writer_with(a, 0, "data"), ah;

    ck_assert_int_eq(reg_into_arena(a, w, &ah, &err), 0);
    ck_assert_int_eq(reg_open(b, ah, &err), 0);
    ck_assert_int_eq(reg_open(b, ah, &err), 0);
    ck_assert_int_eq(reg_arena_info(R, ah, &info, &err), 0);
    ck_assert_uint_eq(info.refs, 3);
    ck_assert_uint_eq(info.files, 1);
    ck_assert_uint_eq(info.bytes, 4);
    ck_assert_ptr_null(info.name);
    ck_assert_int_eq(reg_release(a, ah, &err), 0);
    /* a holds nothing now: its release never touches b's references. */
    ck_assert_int_eq(reg_release(a, ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_arena_info(R, ah, &info, &err), 0);
    ck_assert_uint_eq(info.refs, 2);
    ck_assert_int_eq(reg_release(b, ah, &err), 0);
    expect_arena_bytes(ah, 0, "data");
    ck_assert_int_eq(reg_release(b, ah, &err), 0);
    expect_no_arena(ah);
    ck_assert_int_eq(reg_open(a, ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_uint_eq(stats().arenas, 0);
    reg_owner_free(a);
    reg_owner_free(b);
}
END_TEST

/* Names hold arenas after their builder leaves; info shows the oldest name. */
START_TEST(a_name_keeps_an_arena_alive)
{
    struct reg_owner *a = reg_owner_new(R);
    struct err err;
    struct reg_arena_info info;
    uint64_t ah, found;

    ck_assert_int_eq(reg_into_arena(a, writer_with(a, 0, "named"), &ah, &err), 0);
    ck_assert_int_eq(reg_name(R, ah, "first", 5, &err), 0);
    ck_assert_int_eq(reg_name(R, ah, "second", 6, &err), 0);
    reg_owner_free(a);
    ck_assert_int_eq(reg_lookup(R, "second", 6, &found, &err), 0);
    ck_assert_uint_eq(found, ah);
    expect_arena_bytes(ah, 0, "named");
    ck_assert_int_eq(reg_arena_info(R, ah, &info, &err), 0);
    ck_assert_uint_eq(info.refs, 2);
    ck_assert_uint_eq(info.name_len, 5);
    ck_assert_mem_eq(info.name, "first", 5); /* the oldest name */
    ck_assert_int_eq(reg_unname(R, "first", 5, &err), 0);
    ck_assert_int_eq(reg_arena_info(R, ah, &info, &err), 0);
    ck_assert_mem_eq(info.name, "second", 6);
    ck_assert_int_eq(reg_unname(R, "second", 6, &err), 0);
    expect_no_arena(ah);
    ck_assert_int_eq(reg_lookup(R, "second", 6, &found, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_NAME);
    ck_assert_uint_eq(stats().files, 0);
}
END_TEST

/* name_taken, bad names, names for writers or unknown handles. */
START_TEST(name_errors)
{
    struct reg_owner *a = reg_owner_new(R);
    struct err err;
    char longname[300];
    uint64_t ah, w, found;

    ck_assert_int_eq(reg_into_arena(a, writer_with(a, 0, "n"), &ah, &err), 0);
    ck_assert_int_eq(reg_name(R, ah, "x", 1, &err), 0);
    ck_assert_int_eq(reg_name(R, ah, "x", 1, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NAME_TAKEN);
    ck_assert_int_eq(reg_name(R, ah, "", 0, &err), -1);
    ck_assert_int_eq(err.code, PROTO_BAD_REQUEST);
    ck_assert_int_eq(reg_name(R, ah, "a\0b", 3, &err), -1);
    ck_assert_int_eq(err.code, PROTO_BAD_REQUEST);
    memset(longname, 'n', sizeof(longname));
    ck_assert_int_eq(reg_name(R, ah, longname, 256, &err), -1);
    ck_assert_int_eq(err.code, PROTO_BAD_REQUEST);
    ck_assert_int_eq(reg_name(R, ah, longname, 255, &err), 0);
    ck_assert_int_eq(reg_lookup(R, longname, 255, &found, &err), 0);
    /* A writer is not an arena; an unknown handle is nothing. */
    w = writer_with(a, 1, "w");
    ck_assert_int_eq(reg_name(R, w, "y", 1, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_name(R, 999999, "y", 1, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_unname(R, "nope", 4, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_NAME);
    reg_owner_free(a);
    /* Names still hold it; reg_free in teardown unbinds them. */
    expect_arena_bytes(ah, 0, "n");
}
END_TEST

/* 2000 names bound, half removed, every lookup right. */
START_TEST(many_names_survive_hash_collisions_and_removal)
{
    struct reg_owner *a = reg_owner_new(R);
    struct err err;
    char name[32];
    uint64_t ah, found;

    ck_assert_int_eq(reg_into_arena(a, writer_with(a, 0, "n"), &ah, &err), 0);
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(name, sizeof(name), "name-%d", i);
        ck_assert_int_eq(reg_name(R, ah, name, (size_t)n, &err), 0);
    }
    for (int i = 0; i < 2000; i += 2) {
        int n = snprintf(name, sizeof(name), "name-%d", i);
        ck_assert_int_eq(reg_unname(R, name, (size_t)n, &err), 0);
    }
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(name, sizeof(name), "name-%d", i);
        ck_assert_int_eq(reg_lookup(R, name, (size_t)n, &found, &err), i % 2 ? 0 : -1);
    }
    reg_owner_free(a);
}
END_TEST

/* A handle of the wrong kind is no_such_handle everywhere. */
START_TEST(wrong_kinds_are_no_such_handle)
{
    struct reg_owner *a = reg_owner_new(R);
    struct err err;
    uint64_t w = writer_with(a, 0, "k"), f = file_with(a, 1, "f"), ah, fh;

    ck_assert_ptr_null(reg_arena(R, w, &err));
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_ptr_null(reg_arena(R, f, &err));
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_finish(a, f, &fh, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_build(a, &w, 1, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "item 0"));
    ck_assert_int_eq(reg_release(a, 424242, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    ck_assert_int_eq(reg_open(a, w, &err), -1);
    ck_assert_int_eq(err.code, PROTO_NO_SUCH_HANDLE);
    reg_owner_free(a);
}
END_TEST

/* empty, duplicate_index, missing_index, index_mismatch pass through. */
START_TEST(build_errors_come_from_the_store)
{
    struct reg_owner *a = reg_owner_new(R);
    struct err err;
    uint64_t f0 = file_with(a, 0, "a"), f1 = file_with(a, 1, "b"), f0b = file_with(a, 0, "c");
    uint64_t f2 = file_with(a, 2, "d"), ah;
    uint64_t dup[2] = {f0, f0b}, gap[2] = {f0, f2}, order[2] = {f1, f0};

    ck_assert_int_eq(reg_build(a, NULL, 0, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_EMPTY);
    ck_assert_int_eq(reg_build(a, dup, 2, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_DUPLICATE_INDEX);
    ck_assert_int_eq(reg_build(a, gap, 2, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_MISSING_INDEX);
    ck_assert_int_eq(reg_build(a, order, 2, REG_BUILD_IN_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_INDEX_MISMATCH);
    ck_assert_int_eq(reg_build(a, order, 2, REG_BUILD_ANY_ORDER, &ah, &err), 0);
    expect_arena_bytes(ah, 0, "a");
    expect_arena_bytes(ah, 1, "b");
    ck_assert_uint_eq(stats().arenas, 1);
    reg_owner_free(a);
}
END_TEST

/* Freeing an owner discards its writers, files and references. */
START_TEST(owner_free_discards_everything)
{
    struct reg_owner *a = reg_owner_new(R);
    struct err err;
    uint64_t ah;

    for (int i = 0; i < 20; i++)
        writer_with(a, (uint16_t)i, "pending");
    for (int i = 0; i < 5; i++)
        file_with(a, (uint16_t)i, "finished");
    ck_assert_int_eq(reg_into_arena(a, writer_with(a, 0, "arena"), &ah, &err), 0);
    ck_assert_int_eq(reg_open(a, ah, &err), 0);
    ck_assert_uint_eq(reg_owner_handles(a), 27);
    ck_assert_uint_gt(stats().bytes_on_disk, 0);
    reg_owner_free(a);
    ck_assert_uint_eq(stats().writers, 0);
    ck_assert_uint_eq(stats().files, 0);
    ck_assert_uint_eq(stats().arenas, 0);
    ck_assert_uint_eq(stats().bytes_on_disk, 0);
    expect_no_arena(ah);
}
END_TEST

/* max_writers is per owner and counts open writers only. */
START_TEST(writer_cap)
{
    struct reg_owner *a, *b;
    struct err err;
    uint64_t w1, w2, w3, f;

    reg_free(R);
    (void)th_rm_tree(scratch);
    reg_setup_caps(2, 100);
    a = reg_owner_new(R);
    b = reg_owner_new(R);
    ck_assert_int_eq(reg_writer_new(a, 0, &w1, &err), 0);
    ck_assert_int_eq(reg_writer_new(a, 1, &w2, &err), 0);
    ck_assert_int_eq(reg_writer_new(a, 2, &w3, &err), -1);
    ck_assert_int_eq(err.code, PROTO_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_writers"));
    /* Per connection: b is not affected. */
    ck_assert_int_eq(reg_writer_new(b, 0, &w3, &err), 0);
    ck_assert_int_eq(reg_finish(a, w1, &f, &err), 0);
    ck_assert_int_eq(reg_writer_new(a, 2, &w3, &err), 0);
    reg_owner_free(a);
    reg_owner_free(b);
}
END_TEST

/* max_handles counts writers, files and arena references. */
START_TEST(handle_cap)
{
    struct reg_owner *a, *b;
    struct err err;
    uint64_t w1, w2, w3, ah, bh;

    reg_free(R);
    (void)th_rm_tree(scratch);
    reg_setup_caps(10, 3);
    a = reg_owner_new(R);
    b = reg_owner_new(R);
    ck_assert_int_eq(reg_into_arena(b, writer_with(b, 0, "b"), &bh, &err), 0);
    ck_assert_int_eq(reg_writer_new(a, 0, &w1, &err), 0);
    ck_assert_int_eq(reg_writer_new(a, 1, &w2, &err), 0);
    ck_assert_int_eq(reg_open(a, bh, &err), 0);
    ck_assert_uint_eq(reg_owner_handles(a), 3);
    ck_assert_int_eq(reg_writer_new(a, 2, &w3, &err), -1);
    ck_assert_int_eq(err.code, PROTO_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_handles"));
    ck_assert_int_eq(reg_open(a, bh, &err), -1);
    ck_assert_int_eq(err.code, PROTO_LIMIT);
    /* finish and into_arena trade one handle for another: allowed. */
    uint64_t f;
    ck_assert_int_eq(reg_finish(a, w1, &f, &err), 0);
    ck_assert_int_eq(reg_build(a, &f, 1, REG_BUILD_ANY_ORDER, &ah, &err), -1);
    ck_assert_int_eq(err.code, PROTO_LIMIT);
    ck_assert_int_eq(reg_release(a, bh, &err), 0);
    ck_assert_int_eq(reg_build(a, &f, 1, REG_BUILD_ANY_ORDER, &ah, &err), 0);
    ck_assert_uint_eq(reg_owner_handles(a), 3);
    reg_owner_free(a);
    reg_owner_free(b);
}
END_TEST

/* Random puts and deletes agree with a plain array. */
START_TEST(u64map_matches_a_reference)
{
    enum { N = 20000 };
    static void *ref[N + 1];
    struct u64map m = {0};
    unsigned seed = 12345;
    size_t live = 0;

    memset(ref, 0, sizeof(ref));
    for (int step = 0; step < 200000; step++) {
        uint64_t k = (uint64_t)(rand_r(&seed) % N) + 1;
        if (rand_r(&seed) % 3 != 0) {
            void *v = (void *)(uintptr_t)(k * 2 + 1);
            if (ref[k] == NULL)
                live++;
            ck_assert_int_eq(u64map_put(&m, k, v), 0);
            ref[k] = v;
        } else {
            void *old = u64map_del(&m, k);
            ck_assert_ptr_eq(old, ref[k]);
            if (ref[k] != NULL)
                live--;
            ref[k] = NULL;
        }
        ck_assert_uint_eq(m.len, live);
    }
    for (uint64_t k = 1; k <= N; k++)
        ck_assert_ptr_eq(u64map_get(&m, k), ref[k]);
    size_t pos = 0, seen = 0;
    uint64_t k;
    void *v;
    while (u64map_next(&m, &pos, &k, &v)) {
        ck_assert_ptr_eq(v, ref[k]);
        seen++;
    }
    ck_assert_uint_eq(seen, live);
    ck_assert_ptr_null(u64map_get(&m, 0));
    ck_assert_int_eq(u64map_put(&m, 0, &m), -1);
    u64map_fini(&m);
}
END_TEST

/* Replacing a present key's value never reallocates, so it cannot fail:
 * reg_release and reg_unname rely on that to keep counts consistent. */
START_TEST(u64map_replace_never_reallocates)
{
    struct u64map m = {0};
    uint64_t *keys;
    size_t cap;

    for (uint64_t k = 1; k <= 8; k++)
        ck_assert_int_eq(u64map_put(&m, k, (void *)(uintptr_t)k), 0);
    cap = m.cap;
    keys = m.keys;
    ck_assert_uint_eq(m.len * 2, cap); /* one more key would grow the map */
    for (uint64_t k = 1; k <= 8; k++) {
        ck_assert_int_eq(u64map_put(&m, k, (void *)(uintptr_t)(k + 100)), 0);
        ck_assert_uint_eq(m.cap, cap);
        ck_assert_ptr_eq(m.keys, keys);
        ck_assert_uint_eq(m.len, 8);
    }
    for (uint64_t k = 1; k <= 8; k++)
        ck_assert_ptr_eq(u64map_get(&m, k), (void *)(uintptr_t)(k + 100));
    ck_assert_int_eq(u64map_put(&m, 9, &m), 0);
    ck_assert_uint_gt(m.cap, cap);
    u64map_fini(&m);
}
END_TEST

/* ---- listing names (reg_list_next) and the ordered name set ---- */

/* Collects every name reg_list_next gives for prefix, resuming after the
 * last one each time as a paging client does, into out (NUL-separated
 * text); returns how many. */
static int list_all(const char *prefix, char *out, size_t cap)
{
    struct reg_list_entry e;
    char after[256];
    size_t alen = 0, used = 0;
    int n = 0;

    while (reg_list_next(R, prefix, strlen(prefix), n > 0 ? after : NULL, alen, &e)) {
        ck_assert_uint_le(e.name_len, 255);
        ck_assert_uint_lt(used + e.name_len + 1, cap);
        ck_assert_uint_ge(e.name_len, strlen(prefix));
        ck_assert_mem_eq(e.name, prefix, strlen(prefix));
        if (n > 0) /* strictly increasing */
            ck_assert_int_gt(nametree_cmp(e.name, e.name_len, after, alen), 0);
        memcpy(after, e.name, e.name_len);
        alen = e.name_len;
        memcpy(out + used, e.name, e.name_len);
        used += e.name_len;
        out[used++] = ',';
        n++;
    }
    out[used] = '\0';
    return n;
}

/* Names come back in unsigned byte order, filtered by prefix, with their
 * arena's numbers; a listing resumes after any name, even one not bound. */
START_TEST(list_names_in_byte_order_by_prefix)
{
    static const char *const names[] = {"b", "a/2", "a", "a/10", "\xc3\xa9t\xc3\xa9", "ab", "a/1"};
    struct reg_owner *o = reg_owner_new(R);
    struct err err;
    struct reg_list_entry e;
    char got[1024];
    uint64_t a1, a2;

    ck_assert_int_eq(reg_list_next(R, "", 0, NULL, 0, &e), 0);
    ck_assert_int_eq(reg_into_arena(o, writer_with(o, 0, "12345"), &a1, &err), 0);
    ck_assert_int_eq(reg_into_arena(o, writer_with(o, 0, "xy"), &a2, &err), 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_int_eq(reg_name(R, i % 2 ? a2 : a1, names[i], strlen(names[i]), &err), 0);

    ck_assert_int_eq(list_all("", got, sizeof(got)), 7);
    ck_assert_str_eq(got, "a,a/1,a/10,a/2,ab,b,\xc3\xa9t\xc3\xa9,");
    ck_assert_int_eq(list_all("a", got, sizeof(got)), 5);
    ck_assert_str_eq(got, "a,a/1,a/10,a/2,ab,");
    ck_assert_int_eq(list_all("a/", got, sizeof(got)), 3);
    ck_assert_str_eq(got, "a/1,a/10,a/2,");
    ck_assert_int_eq(list_all("a/1", got, sizeof(got)), 2);
    ck_assert_int_eq(list_all("\xc3", got, sizeof(got)), 1);
    ck_assert_int_eq(list_all("c", got, sizeof(got)), 0);
    ck_assert_int_eq(list_all("a/10x", got, sizeof(got)), 0);

    /* The numbers: "a" binds a1 (5 bytes, 1 file), "a/2" binds a2. a1 holds
     * the owner's reference and 4 names. */
    ck_assert_int_eq(reg_list_next(R, "a", 1, NULL, 0, &e), 1);
    ck_assert_uint_eq(e.name_len, 1);
    ck_assert_uint_eq(e.arena, a1);
    ck_assert_uint_eq(e.files, 1);
    ck_assert_uint_eq(e.bytes, 5);
    ck_assert_uint_eq(e.refs, 5);
    ck_assert_int_eq(reg_list_next(R, "a/2", 3, NULL, 0, &e), 1);
    ck_assert_uint_eq(e.arena, a2);
    ck_assert_uint_eq(e.bytes, 2);
    ck_assert_uint_eq(e.refs, 4);

    /* Cursors: after a name that is not bound, before the prefix, past it. */
    ck_assert_int_eq(reg_list_next(R, "", 0, "a/", 2, &e), 1);
    ck_assert_mem_eq(e.name, "a/1", 3);
    ck_assert_int_eq(reg_list_next(R, "a/", 2, "0", 1, &e), 1);
    ck_assert_mem_eq(e.name, "a/1", 3);
    ck_assert_int_eq(reg_list_next(R, "a/", 2, "a/2", 3, &e), 0);
    ck_assert_int_eq(reg_list_next(R, "a", 1, "b", 1, &e), 0);
    ck_assert_int_eq(reg_list_next(R, "", 0, "\xc3\xa9t\xc3\xa9", 6, &e), 0);
    ck_assert_int_eq(reg_list_next(R, "", 0, "\xff", 1, &e), 0);

    /* Unbinding removes a name from the order; the arena's refs follow. */
    ck_assert_int_eq(reg_unname(R, "a/10", 4, &err), 0);
    ck_assert_int_eq(list_all("a/", got, sizeof(got)), 2);
    ck_assert_str_eq(got, "a/1,a/2,");
    reg_owner_free(o);
}
END_TEST

/* A scan paged one name at a time while names are bound and unbound
 * between pages returns every name bound throughout exactly once. */
START_TEST(list_survives_changes_between_pages)
{
    struct reg_owner *o = reg_owner_new(R);
    struct err err;
    struct reg_list_entry e;
    char after[64], name[64];
    size_t alen = 0;
    int seen[1000] = {0}, pages = 0;
    uint64_t ah;

    ck_assert_int_eq(reg_into_arena(o, writer_with(o, 0, "s"), &ah, &err), 0);
    /* Even names stay bound all along; odd ones come and go. */
    for (int i = 0; i < 1000; i += 2) {
        int n = snprintf(name, sizeof(name), "k%04d", i);
        ck_assert_int_eq(reg_name(R, ah, name, (size_t)n, &err), 0);
    }
    while (reg_list_next(R, "k", 1, pages > 0 ? after : NULL, alen, &e)) {
        int i;
        ck_assert_uint_eq(e.name_len, 5);
        memcpy(name, e.name, 5);
        name[5] = '\0';
        i = atoi(name + 1);
        ck_assert_int_lt(i, 1000);
        seen[i]++;
        memcpy(after, e.name, e.name_len);
        alen = e.name_len;
        pages++;
        /* Bind an odd name behind and one ahead of the cursor, and unbind
         * an odd one bound earlier. */
        for (int j = (i + 1) % 1000, k = 0; k < 2; j = (i + 501) % 1000 | 1, k++) {
            int n = snprintf(name, sizeof(name), "k%04d", j | 1);
            (void)reg_name(R, ah, name, (size_t)n, &err);
        }
        {
            int n = snprintf(name, sizeof(name), "k%04d", ((i * 7) % 1000) | 1);
            (void)reg_unname(R, name, (size_t)n, &err);
        }
    }
    for (int i = 0; i < 1000; i += 2)
        ck_assert_msg(seen[i] == 1, "k%04d seen %d times", i, seen[i]);
    for (int i = 1; i < 1000; i += 2)
        ck_assert_int_le(seen[i], 1);
    reg_owner_free(o);
}
END_TEST

/* An element of the reference test: a node and its key. */
struct tn {
    struct nametree_node node;
    char key[8];
    int in;
};

/* qsort order of keys, as nametree_cmp. */
static int tn_cmp(const void *a, const void *b)
{
    const struct tn *x = *(struct tn *const *)a, *y = *(struct tn *const *)b;

    return nametree_cmp(x->key, x->node.len, y->key, y->node.len);
}

/* Checks the AVL invariants below n; returns its height. */
static int tn_check(const struct nametree_node *n)
{
    int l, r;

    if (n == NULL)
        return 0;
    l = tn_check(n->left);
    r = tn_check(n->right);
    ck_assert_int_le(abs(l - r), 1);
    ck_assert_int_eq(n->height, (l > r ? l : r) + 1);
    if (n->left != NULL)
        ck_assert_int_lt(nametree_cmp(n->left->key, n->left->len, n->key, n->len), 0);
    if (n->right != NULL)
        ck_assert_int_gt(nametree_cmp(n->right->key, n->right->len, n->key, n->len), 0);
    return n->height;
}

/* Random inserts and removals of short binary keys: the tree stays a
 * balanced search tree, and seeking from each key walks the same order as a
 * sorted reference. */
START_TEST(nametree_matches_a_reference)
{
    enum { N = 600 };
    static struct tn t[N];
    struct tn *sorted[N];
    struct nametree tree = NAMETREE_INIT;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int ns;

    /* Distinct keys: 1..3 bytes from a small alphabet with high bytes. */
    for (int i = 0; i < N; i++) {
        t[i].node.len = (size_t)(i % 3) + 1;
        t[i].node.key = t[i].key;
        for (size_t k = 0, v = (size_t)i; k < t[i].node.len; k++, v /= 9)
            t[i].key[k] = (char)(v % 9 == 8 ? 0xf0 : 'a' + (int)(v % 9));
        t[i].in = 0;
    }
    for (int round = 0; round < 4000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        struct tn *e = &t[x % N];
        if (e->in) {
            nametree_remove(&tree, &e->node);
            e->in = 0;
        } else if (nametree_seek(&tree, e->key, e->node.len, 0) == NULL ||
                   nametree_cmp(nametree_seek(&tree, e->key, e->node.len, 0)->key,
                                nametree_seek(&tree, e->key, e->node.len, 0)->len, e->key,
                                e->node.len) != 0) {
            nametree_insert(&tree, &e->node);
            e->in = 1;
        }
        if (round % 97 != 0)
            continue;
        tn_check(tree.root);
        ns = 0;
        for (int i = 0; i < N; i++)
            if (t[i].in)
                sorted[ns++] = &t[i];
        qsort(sorted, (size_t)ns, sizeof(sorted[0]), tn_cmp);
        {
            const struct nametree_node *n = nametree_seek(&tree, "", 0, 0);
            for (int i = 0; i < ns; i++) {
                ck_assert_ptr_eq(n, &sorted[i]->node);
                ck_assert_ptr_eq(nametree_seek(&tree, n->key, n->len, 0), n);
                n = nametree_seek(&tree, n->key, n->len, 1);
            }
            ck_assert_ptr_null(n);
        }
    }
}
END_TEST

/* The registry suite. */
static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("lifetimes");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, handles_count_from_one_and_are_never_reused);
    tcase_add_test(tc, writers_belong_to_their_owner);
    tcase_add_test(tc, live_files_are_usable_by_any_owner);
    tcase_add_test(tc, unbuilt_file_ends_with_its_owner);
    tcase_add_test(tc, file_of_an_ended_arena_is_not_live);
    tcase_add_test(tc, file_handle_dies_with_its_last_reference);
    tcase_add_test(tc, into_arena_gives_its_file_a_handle);
    tcase_add_test(tc, arena_references_are_counted_per_owner);
    tcase_add_test(tc, a_name_keeps_an_arena_alive);
    tcase_add_test(tc, name_errors);
    tcase_add_test(tc, many_names_survive_hash_collisions_and_removal);
    tcase_add_test(tc, wrong_kinds_are_no_such_handle);
    tcase_add_test(tc, build_errors_come_from_the_store);
    tcase_add_test(tc, owner_free_discards_everything);
    tcase_add_test(tc, writer_cap);
    tcase_add_test(tc, handle_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("u64map");
    tcase_add_test(tc, u64map_matches_a_reference);
    tcase_add_test(tc, u64map_replace_never_reallocates);
    suite_add_tcase(s, tc);

    tc = tcase_create("list");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, list_names_in_byte_order_by_prefix);
    tcase_add_test(tc, list_survives_changes_between_pages);
    tcase_add_test(tc, nametree_matches_a_reference);
    suite_add_tcase(s, tc);
    return s;
}

/* Runs the suite; exit status 0 when every test passed. */
int main(void)
{
    SRunner *sr = srunner_create(registry_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
