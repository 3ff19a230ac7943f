/* The error-code table of protocol 1: enum value, wire name, description. */
#include "proto_errors.h"

#include <string.h>

struct err_entry {
    const char *name;
    const char *desc;
};

/* Indexed by enum proto_err; PROTO_OK has no wire name. */
static const struct err_entry err_table[PROTO_ERR_COUNT] = {
    [PROTO_OK] = {NULL, "success"},
    [PROTO_BAD_REQUEST] = {"bad_request",
                           "malformed envelope, or params of the wrong number, shape or type"},
    [PROTO_UNKNOWN_METHOD] = {"unknown_method", "no method of that name"},
    [PROTO_NO_SUCH_HANDLE] =
        {"no_such_handle",
         "handle unknown, dead, of the wrong kind or not held by this connection"},
    [PROTO_NO_SUCH_NAME] = {"no_such_name", "no arena is bound to that name"},
    [PROTO_NAME_TAKEN] = {"name_taken", "that name is already bound to an arena"},
    [PROTO_OUT_OF_BOUNDS] = {"out_of_bounds",
                             "file index not in the arena, or offset + len past the file's end"},
    [PROTO_FILE_FULL] = {"file_full", "the write would take the file past 4 GiB - 1 bytes"},
    [PROTO_DUPLICATE_INDEX] = {"duplicate_index", "two files with the same file index"},
    [PROTO_MISSING_INDEX] = {"missing_index", "the file indices are not exactly 0..n-1"},
    [PROTO_INDEX_MISMATCH] = {"index_mismatch", "the file at position i does not have index i"},
    [PROTO_EMPTY] = {"empty", "no files given"},
    [PROTO_TOO_LARGE] = {"too_large", "request or response over a size limit"},
    [PROTO_NO_SPACE] = {"no_space", "scratch space exhausted (quota or free-space floor)"},
    [PROTO_LIMIT] = {"limit", "too many clients, writers or handles"},
    [PROTO_IO_ERROR] = {"io_error", "an I/O error on a scratch file"},
    [PROTO_SHUTTING_DOWN] = {"shutting_down", "the daemon is shutting down"},
};

/* Returns the wire name of code, or NULL for PROTO_OK and out-of-range values. */
const char *proto_err_name(enum proto_err code)
{
    if ((unsigned)code >= PROTO_ERR_COUNT)
        return NULL;
    return err_table[code].name;
}

/* Looks a wire name up; a linear scan is fine for 16 entries. */
int proto_err_from_name(const char *s, size_t n)
{
    if (s == NULL)
        return -1;
    for (int i = 1; i < PROTO_ERR_COUNT; i++) {
        const char *name = err_table[i].name;
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return i;
    }
    return -1;
}

/* Returns the description of code, or a generic one when code is unknown. */
const char *proto_err_describe(enum proto_err code)
{
    if ((unsigned)code >= PROTO_ERR_COUNT)
        return "unknown error";
    return err_table[code].desc;
}
