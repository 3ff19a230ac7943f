/* farena protocol error codes: the one table shared by daemon, client and docs.
 * No msgpack, no I/O: the store includes this too. */
#ifndef FARENA_PROTO_ERRORS_H
#define FARENA_PROTO_ERRORS_H

#include <stddef.h>

/* Stable error codes of protocol 1. The numbers are farena's own (the wire
 * carries the snake_case name); libfarena's FARENA_E... codes are their
 * negations, so the values below never change once released. */
enum proto_err {
    PROTO_OK = 0,
    PROTO_BAD_REQUEST = 1,     /* "bad_request" */
    PROTO_UNKNOWN_METHOD = 2,  /* "unknown_method" */
    PROTO_NO_SUCH_HANDLE = 3,  /* "no_such_handle" */
    PROTO_NO_SUCH_NAME = 4,    /* "no_such_name" */
    PROTO_NAME_TAKEN = 5,      /* "name_taken" */
    PROTO_OUT_OF_BOUNDS = 6,   /* "out_of_bounds" */
    PROTO_FILE_FULL = 7,       /* "file_full" */
    PROTO_DUPLICATE_INDEX = 8, /* "duplicate_index" */
    PROTO_MISSING_INDEX = 9,   /* "missing_index" */
    PROTO_INDEX_MISMATCH = 10, /* "index_mismatch" */
    PROTO_EMPTY = 11,          /* "empty" */
    PROTO_TOO_LARGE = 12,      /* "too_large" */
    PROTO_NO_SPACE = 13,       /* "no_space" */
    PROTO_LIMIT = 14,          /* "limit" */
    PROTO_IO_ERROR = 15,       /* "io_error" */
    PROTO_SHUTTING_DOWN = 16,  /* "shutting_down" */
    PROTO_ERR_COUNT
};

/* The wire name of code (static storage), or NULL if code is not a valid
 * error (PROTO_OK included). */
const char *proto_err_name(enum proto_err code);

/* The code whose wire name is the n bytes at s, or -1 if none is. */
int proto_err_from_name(const char *s, size_t n);

/* A one-line English description of code (static storage); never NULL. */
const char *proto_err_describe(enum proto_err code);

#endif
