/* A tiny program built against an installed libfarena: pushes two payloads,
 * reads them back, and prints "ok" when they match. Usage: consumer SOCKET */
#include <stdio.h>
#include <string.h>

#include <farena.h>

/* Reports a failed call and returns 1. */
static int fail(farena_client *c, const char *what, int err)
{
    fprintf(stderr, "%s: %s (%s)\n", what, farena_strerror(err), c ? farena_errmsg(c) : "");
    return 1;
}

/* Runs the round trip against the daemon at argv[1]. */
int main(int argc, char **argv)
{
    farena_client *c = NULL;
    farena_handle w, arena;
    struct farena_loc a, b;
    struct farena_buf buf = FARENA_BUF_INIT;
    int err;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer SOCKET\n");
        return 2;
    }
    if ((err = farena_connect(argv[1], &c)) != 0)
        return fail(NULL, "connect", err);
    if ((err = farena_writer_new(c, 0, &w)) != 0)
        return fail(c, "writer_new", err);
    if ((err = farena_push(c, w, "hello", 5, &a)) != 0 ||
        (err = farena_push(c, w, " world", 6, &b)) != 0)
        return fail(c, "push", err);
    if ((err = farena_into_arena(c, w, &arena)) != 0)
        return fail(c, "into_arena", err);
    if ((err = farena_get_str_into(c, arena, a, &buf)) != 0 ||
        (err = farena_get_str_into(c, arena, b, &buf)) != 0)
        return fail(c, "get_str_into", err);
    if (buf.len != 11 || memcmp(buf.data, "hello world", 11) != 0) {
        fprintf(stderr, "read back the wrong bytes\n");
        return 1;
    }
    farena_buf_free(&buf);
    farena_close(c);
    printf("ok %s\n", farena_version_string());
    return 0;
}
