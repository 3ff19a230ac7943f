/* Tests of the protocol module, the check_proto suite: this file holds the
 * error and method tables, the replay of the fuzzing corpus, and the suite
 * itself; each area has a file of its own (one sitting each):
 *   check_proto_scan.c     the scanner's framing (formats, streams, msgid)
 *   check_proto_guards.c   the scanner's guards and hostile sizes
 *   check_proto_unpack.c   proto_unpack and proto_unpack_prefix vs msgpack-c
 *   check_proto_codec.c    envelopes, responses, PROTOCOL.md's example, sizes
 *   check_proto_readers.c  typed readers, floats holding integers
 * with their shared helpers in proto_test.{c,h}. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/pipeline.h"
#include "proto_methods.h"
#include "proto_test.h"

/* ---- tables ---- */

/* Error table: names unique, snake_case, round trip, stable numbers. */
START_TEST(test_err_table)
{
    for (int i = 1; i < PROTO_ERR_COUNT; i++) {
        const char *name = proto_err_name((enum proto_err)i);
        ck_assert_ptr_nonnull(name);
        ck_assert_uint_gt(strlen(name), 0);
        for (const char *c = name; *c != '\0'; c++)
            ck_assert_msg((*c >= 'a' && *c <= 'z') || *c == '_', "%s not snake_case", name);
        ck_assert_int_eq(proto_err_from_name(name, strlen(name)), i);
        ck_assert_uint_gt(strlen(proto_err_describe((enum proto_err)i)), 0);
        for (int j = 1; j < i; j++)
            ck_assert_str_ne(name, proto_err_name((enum proto_err)j));
    }
    ck_assert_ptr_null(proto_err_name(PROTO_OK));
    ck_assert_ptr_null(proto_err_name(PROTO_ERR_COUNT));
    ck_assert_ptr_null(proto_err_name((enum proto_err) - 1));
    ck_assert_ptr_nonnull(proto_err_describe(PROTO_ERR_COUNT));
    ck_assert_ptr_nonnull(proto_err_describe((enum proto_err) - 1));
    ck_assert_int_eq(proto_err_from_name("ok", 2), -1);
    ck_assert_int_eq(proto_err_from_name("", 0), -1);
    ck_assert_int_eq(proto_err_from_name(NULL, 0), -1);
    ck_assert_int_eq(proto_err_from_name("bad_request", 10), -1);
    ck_assert_int_eq(proto_err_from_name("bad_requestX", 11), PROTO_BAD_REQUEST);
    ck_assert_int_eq(proto_err_from_name("bad_requestX", 12), -1);
    /* The numbers are part of libfarena's ABI. */
    ck_assert_str_eq(proto_err_name(PROTO_BAD_REQUEST), "bad_request");
    ck_assert_str_eq(proto_err_name(PROTO_TOO_LARGE), "too_large");
    ck_assert_str_eq(proto_err_name(PROTO_SHUTTING_DOWN), "shutting_down");
    ck_assert_int_eq(PROTO_SHUTTING_DOWN, 16);
}
END_TEST

/* Method table: exact names in enum order, unique, round trip. */
START_TEST(test_method_table)
{
    static const char *const expect[] = {
        "hello",   "writer_new", "push",   "push_many", "writer_len", "finish",      "into_arena",
        "build",   "arena_new",  "get",    "get_many",  "arena_info", "arena_files", "open",
        "release", "name",       "lookup", "unname",    "stat",       "list",        "arena_fds"};
    ck_assert_uint_eq(sizeof(expect) / sizeof(expect[0]), PROTO_M_COUNT);
    for (int i = 0; i < PROTO_M_COUNT; i++) {
        const char *name = proto_method_name((enum proto_method)i);
        ck_assert_str_eq(name, expect[i]);
        ck_assert_uint_le(strlen(name), PROTO_MAX_METHOD_LEN);
        ck_assert_int_eq(proto_method_from_name(name, strlen(name)), i);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(name, proto_method_name((enum proto_method)j));
    }
    ck_assert_ptr_null(proto_method_name(PROTO_M_COUNT));
    ck_assert_ptr_null(proto_method_name((enum proto_method) - 1));
    ck_assert_int_eq(proto_method_from_name("", 0), -1);
    ck_assert_int_eq(proto_method_from_name(NULL, 0), -1);
    ck_assert_int_eq(proto_method_from_name("hellox", 6), -1);
    ck_assert_int_eq(proto_method_from_name("hell", 4), -1);
    ck_assert_int_eq(proto_method_from_name("HELLO", 5), -1);
    ck_assert_int_eq(proto_method_from_name("getx", 3), PROTO_M_GET);
    /* Exact: any one byte changed, a byte cut or added, never matches. */
    for (int i = 0; i < PROTO_M_COUNT; i++) {
        const char *name = proto_method_name((enum proto_method)i);
        size_t n = strlen(name);
        char buf[PROTO_MAX_METHOD_LEN + 2];
        memcpy(buf, name, n);
        buf[n] = 'x';
        ck_assert_int_eq(proto_method_from_name(buf, n + 1), -1);
        ck_assert_int_eq(proto_method_from_name(buf, n - 1), -1);
        for (size_t k = 0; k < n; k++) {
            buf[k] ^= 0x20;
            ck_assert_int_eq(proto_method_from_name(buf, n), -1);
            buf[k] = (char)(buf[k] ^ 0x01 ^ 0x20);
            ck_assert_int_eq(proto_method_from_name(buf, n), -1);
            buf[k] = name[k];
        }
        ck_assert_int_eq(proto_method_from_name(buf, n), i);
    }
}
END_TEST

/* ---- the fuzzing corpus ---- */

/* Every seed and every committed fuzz finding, through the fuzzer's own
 * harness (which aborts on a broken invariant). */
START_TEST(test_fuzz_corpus_replay)
{
    DIR *d = opendir(FARENA_FUZZ_CORPUS);
    struct dirent *e;
    int files = 0;
    size_t msgs = 0;

    ck_assert_msg(d != NULL, "cannot open %s", FARENA_FUZZ_CORPUS);
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        FILE *f;
        uint8_t *buf;
        long len;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", FARENA_FUZZ_CORPUS, e->d_name);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
        len = ftell(f);
        ck_assert_int_ge(len, 0);
        ck_assert_int_le(len, 1 << 20);
        rewind(f);
        buf = malloc(len > 0 ? (size_t)len : 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        msgs += fuzz_pipeline_run(buf, (size_t)len);
        free(buf);
        files++;
    }
    closedir(d);
    ck_assert_int_ge(files, 50);
    ck_assert_uint_ge(msgs, 50);
}
END_TEST

/* ---- suite ---- */

/* The suite: one tcase per area (case time bound: CASE_TIMEOUT in
 * tests/proto.cmake). */
static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *t;

    t = tcase_create("tables");
    tcase_add_test(t, test_err_table);
    tcase_add_test(t, test_method_table);
    suite_add_tcase(s, t);

    proto_scan_cases(s);
    proto_guard_cases(s);
    proto_unpack_cases(s);
    proto_codec_cases(s);
    proto_reader_cases(s);

    t = tcase_create("fuzz_corpus");
    tcase_add_test(t, test_fuzz_corpus_replay);
    suite_add_tcase(s, t);
    return s;
}

/* Runs the suite; the exit status is the verdict. */
int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
