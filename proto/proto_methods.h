/* The method-name table of protocol 1: one place for every method's name. */
#ifndef FARENA_PROTO_METHODS_H
#define FARENA_PROTO_METHODS_H

#include <stddef.h>

/* Methods of protocol 1, in the order PROTOCOL.md lists them. New methods are
 * appended; values never change. */
enum proto_method {
    PROTO_M_HELLO = 0,
    PROTO_M_WRITER_NEW,
    PROTO_M_PUSH,
    PROTO_M_PUSH_MANY,
    PROTO_M_WRITER_LEN,
    PROTO_M_FINISH,
    PROTO_M_INTO_ARENA,
    PROTO_M_BUILD,
    PROTO_M_ARENA_NEW,
    PROTO_M_GET,
    PROTO_M_GET_MANY,
    PROTO_M_ARENA_INFO,
    PROTO_M_ARENA_FILES,
    PROTO_M_OPEN,
    PROTO_M_RELEASE,
    PROTO_M_NAME,
    PROTO_M_LOOKUP,
    PROTO_M_UNNAME,
    PROTO_M_STAT,
    PROTO_M_LIST,
    PROTO_M_ARENA_FDS,
    PROTO_M_COUNT
};

/* The wire name of m (static storage), or NULL if m is out of range. */
const char *proto_method_name(enum proto_method m);

/* The method whose name is the n bytes at s, or -1 if none is. */
int proto_method_from_name(const char *s, size_t n);

#endif
