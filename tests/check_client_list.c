/* check_client: listing names (paging, and a malformed reply from a fake
 * peer). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_test.h"
#include "farena.h"
#include "harness.h"
#include "th_check.h"

/* ---- listing names ---- */

/* qsort order of C strings: byte order, as the daemon lists. */
static int str_order(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* farena_list pages through the names with a prefix in byte order, small
 * pages or large, reports what each binds, resumes after any name, and
 * checks its arguments. */
START_TEST(list_pages_through_names)
{
    struct farena_list_entry ents[8];
    char names[40][16], cursor[FARENA_CURSOR_SIZE], longp[300];
    const char *want[40];
    farena_client *c;
    farena_handle w, a, b;
    size_t n, got;

    start(NULL);
    c = conn();
    cursor[0] = '\0';
    OK(c, farena_list(c, NULL, cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(cursor, "");
    OK(c, farena_writer_new(c, 0, &w));
    push_str(c, w, "0123456789");
    OK(c, farena_into_arena(c, w, &a));
    OK(c, farena_writer_new(c, 0, &w));
    push_str(c, w, "abc");
    OK(c, farena_into_arena(c, w, &b));
    for (int i = 0; i < 25; i++) {
        snprintf(names[i], sizeof(names[i]), "job/%d", i);
        OK(c, farena_name(c, i == 7 ? b : a, names[i]));
        want[i] = names[i];
    }
    OK(c, farena_name(c, a, "jobs"));
    OK(c, farena_name(c, b, "other"));
    qsort(want, 25, sizeof(want[0]), str_order);

    for (size_t cap = 1; cap <= 8; cap += 3) {
        got = 0;
        cursor[0] = '\0';
        do {
            OK(c, farena_list(c, "job/", cursor, ents, cap, &n));
            ck_assert_uint_le(n, cap);
            for (size_t i = 0; i < n; i++, got++) {
                ck_assert_uint_lt(got, 25);
                ck_assert_str_eq(ents[i].name, want[got]);
                if (strcmp(ents[i].name, "job/7") == 0) {
                    ck_assert_uint_eq(ents[i].arena, b);
                    ck_assert_uint_eq(ents[i].bytes, 3);
                    ck_assert_uint_eq(ents[i].refs, 3); /* ours, job/7, other */
                } else {
                    ck_assert_uint_eq(ents[i].arena, a);
                    ck_assert_uint_eq(ents[i].bytes, 10);
                    ck_assert_uint_eq(ents[i].refs, 26);
                }
                ck_assert_uint_eq(ents[i].files, 1);
            }
        } while (cursor[0] != '\0');
        ck_assert_uint_eq(got, 25);
    }
    /* Every name; then a listing resumed after a name of our choosing. */
    cursor[0] = '\0';
    OK(c, farena_list(c, "", cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 8);
    ck_assert_str_eq(cursor, ents[7].name);
    strcpy(cursor, "job/5");
    OK(c, farena_list(c, NULL, cursor, ents, 3, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(ents[0].name, "job/6");
    ck_assert_str_eq(ents[2].name, "job/8");
    strcpy(cursor, "job/9");
    OK(c, farena_list(c, NULL, cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(ents[0].name, "jobs");
    ck_assert_str_eq(ents[1].name, "other");
    ck_assert_str_eq(cursor, "");

    /* Arguments. */
    cursor[0] = '\0';
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, NULL, ents, 8, &n));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, NULL, 8, &n));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, ents, 0, &n));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, ents, 8, NULL));
    FAILS(NULL, FARENA_EINVAL, farena_list(NULL, NULL, cursor, ents, 8, &n));
    memset(cursor, 'x', sizeof(cursor));
    FAILS(c, FARENA_EINVAL, farena_list(c, NULL, cursor, ents, 8, &n));
    memset(longp, 'p', sizeof(longp));
    longp[256] = '\0';
    cursor[0] = '\0';
    FAILS(c, FARENA_EBADREQUEST, farena_list(c, longp, cursor, ents, 8, &n));
    /* The connection is still in step. */
    OK(c, farena_list(c, "other", cursor, ents, 8, &n));
    ck_assert_uint_eq(n, 1);
    /* One request per page (25, 7 and 4 pages for caps 1, 4 and 7: a page
     * that ends the listing says so, no empty page follows) plus 5 more;
     * the refused arguments sent nothing. */
    ck_assert_uint_eq(method_count(c, "list", 0), 1 + 25 + 7 + 4 + 3 + 1);
    farena_close(c);
}
END_TEST

/* A reply of the wrong shape is FARENA_EPROTO, not a crash. */
START_TEST(fake_list_malformed_reply)
{
    struct farena_list_entry ents[2];
    char cursor[FARENA_CURSOR_SIZE] = "";
    struct fake f;
    farena_client *c;
    size_t n = 77;

    fake_start(&f, FAKE_HUGE_LIMIT, NULL);
    c = fake_conn(&f);
    FAILS(c, FARENA_EPROTO, farena_list(c, NULL, cursor, ents, 2, &n));
    ck_assert_uint_eq(n, 77);
    farena_close(c);
    fake_stop(&f);
}
END_TEST

/* Adds this file's test cases to s. */
void client_list_cases(Suite *s)
{
    TCase *tc;

    tc = tcase_create("list");
    tcase_add_checked_fixture(tc, NULL, stop);
    tcase_add_test(tc, list_pages_through_names);
    tcase_add_test(tc, fake_list_malformed_reply);
    suite_add_tcase(s, tc);
}
