/* The method-name table of protocol 1. */
#include "methods.h"

#include <string.h>

/* Indexed by enum proto_method: the order is part of the protocol (hello's
 * methods list). */
static const char *const method_names[PROTO_M_COUNT] = {
    [PROTO_M_HELLO] = "hello",
    [PROTO_M_WRITER_NEW] = "writer_new",
    [PROTO_M_PUSH] = "push",
    [PROTO_M_PUSH_MANY] = "push_many",
    [PROTO_M_WRITER_LEN] = "writer_len",
    [PROTO_M_FINISH] = "finish",
    [PROTO_M_INTO_ARENA] = "into_arena",
    [PROTO_M_BUILD] = "build",
    [PROTO_M_ARENA_NEW] = "arena_new",
    [PROTO_M_GET] = "get",
    [PROTO_M_GET_MANY] = "get_many",
    [PROTO_M_ARENA_INFO] = "arena_info",
    [PROTO_M_ARENA_FILES] = "arena_files",
    [PROTO_M_OPEN] = "open",
    [PROTO_M_RELEASE] = "release",
    [PROTO_M_NAME] = "name",
    [PROTO_M_LOOKUP] = "lookup",
    [PROTO_M_UNNAME] = "unname",
    [PROTO_M_STAT] = "stat",
};

/* Returns the wire name of m, or NULL when m is out of range. */
const char *proto_method_name(enum proto_method m)
{
    if ((unsigned)m >= PROTO_M_COUNT)
        return NULL;
    return method_names[m];
}

/* Looks a method name up; a linear scan over 19 short names costs less than
 * the request's unpacking. */
int proto_method_from_name(const char *s, size_t n)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < PROTO_M_COUNT; i++) {
        const char *name = method_names[i];
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return i;
    }
    return -1;
}
