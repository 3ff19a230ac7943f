/* The method-name table of protocol 1. */
#include "proto_methods.h"

#include <string.h>

/* Indexed by enum proto_method: the order is part of the protocol (hello's
 * methods list). A new name also needs its case in proto_method_from_name();
 * check_proto's method-table test round-trips every name. */
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
    [PROTO_M_LIST] = "list",
    [PROTO_M_ARENA_FDS] = "arena_fds",
};

/* Returns the wire name of m, or NULL when m is out of range. */
const char *proto_method_name(enum proto_method m)
{
    if ((unsigned)m >= PROTO_M_COUNT)
        return NULL;
    return method_names[m];
}

/* Looks a method name up. The length and one distinguishing byte pick the
 * only candidate (no strlen, no scan over the table); one memcmp against
 * the table's own name then makes the match exact. */
int proto_method_from_name(const char *s, size_t n)
{
    int m;

    if (s == NULL)
        return -1;
    switch (n) {
    case 3:
        m = PROTO_M_GET;
        break;
    case 4:
        m = s[0] == 'p'   ? PROTO_M_PUSH
            : s[0] == 'o' ? PROTO_M_OPEN
            : s[0] == 'n' ? PROTO_M_NAME
            : s[0] == 'l' ? PROTO_M_LIST
                          : PROTO_M_STAT;
        break;
    case 5:
        m = s[0] == 'h' ? PROTO_M_HELLO : PROTO_M_BUILD;
        break;
    case 6:
        m = s[0] == 'f' ? PROTO_M_FINISH : s[0] == 'l' ? PROTO_M_LOOKUP : PROTO_M_UNNAME;
        break;
    case 7:
        m = PROTO_M_RELEASE;
        break;
    case 8:
        m = PROTO_M_GET_MANY;
        break;
    case 9:
        m = s[0] == 'p' ? PROTO_M_PUSH_MANY : s[6] == 'f' ? PROTO_M_ARENA_FDS : PROTO_M_ARENA_NEW;
        break;
    case 10:
        m = s[0] == 'i'   ? PROTO_M_INTO_ARENA
            : s[0] == 'a' ? PROTO_M_ARENA_INFO
            : s[7] == 'n' ? PROTO_M_WRITER_NEW
                          : PROTO_M_WRITER_LEN;
        break;
    case 11:
        m = PROTO_M_ARENA_FILES;
        break;
    default:
        return -1;
    }
    return memcmp(s, method_names[m], n) == 0 ? m : -1;
}
