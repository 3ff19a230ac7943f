/* libfarena's error codes, version and method names: static tables only. */
#include "internal.h"

#include "proto_errors.h"
#include "proto_methods.h"

/* FARENA_E<X> is the negation of the protocol's code: checked here so the
 * two tables can never drift apart. */
_Static_assert(FARENA_EBADREQUEST == -PROTO_BAD_REQUEST, "bad_request");
_Static_assert(FARENA_EUNKNOWNMETHOD == -PROTO_UNKNOWN_METHOD, "unknown_method");
_Static_assert(FARENA_ENOSUCHHANDLE == -PROTO_NO_SUCH_HANDLE, "no_such_handle");
_Static_assert(FARENA_ENOSUCHNAME == -PROTO_NO_SUCH_NAME, "no_such_name");
_Static_assert(FARENA_ENAMETAKEN == -PROTO_NAME_TAKEN, "name_taken");
_Static_assert(FARENA_EOUTOFBOUNDS == -PROTO_OUT_OF_BOUNDS, "out_of_bounds");
_Static_assert(FARENA_EFILEFULL == -PROTO_FILE_FULL, "file_full");
_Static_assert(FARENA_EDUPLICATEINDEX == -PROTO_DUPLICATE_INDEX, "duplicate_index");
_Static_assert(FARENA_EMISSINGINDEX == -PROTO_MISSING_INDEX, "missing_index");
_Static_assert(FARENA_EINDEXMISMATCH == -PROTO_INDEX_MISMATCH, "index_mismatch");
_Static_assert(FARENA_EEMPTY == -PROTO_EMPTY, "empty");
_Static_assert(FARENA_ETOOLARGE == -PROTO_TOO_LARGE, "too_large");
_Static_assert(FARENA_ENOSPACE == -PROTO_NO_SPACE, "no_space");
_Static_assert(FARENA_ELIMIT == -PROTO_LIMIT, "limit");
_Static_assert(FARENA_EIOERROR == -PROTO_IO_ERROR, "io_error");
_Static_assert(FARENA_ESHUTTINGDOWN == -PROTO_SHUTTING_DOWN, "shutting_down");
_Static_assert(PROTO_ERR_COUNT == 17, "a protocol error code was added: give it a FARENA_E code");
_Static_assert(PROTO_M_COUNT <= FARENA_STAT_METHODS, "struct farena_stat needs more slots");

/* The library's own codes, from FARENA_ECONNECT down. */
static const char *const own_names[] = {
    "FARENA_ECONNECT", "FARENA_ECONNLOST", "FARENA_EPROTO",   "FARENA_ENOMEM",    "FARENA_EUTF8",
    "FARENA_EINVAL",   "FARENA_EFORK",     "FARENA_EUNKNOWN", "FARENA_ETIMEDOUT",
};
static const char *const own_texts[] = {
    "cannot connect to farenad",
    "the connection to farenad is lost or unusable",
    "farenad's reply breaks the protocol",
    "out of memory",
    "the payload is not valid UTF-8",
    "invalid argument",
    "client used in a forked child; connect a new one",
    "farenad sent an error code this library does not know",
    "farenad did not answer in time",
};
/* Indexed by protocol code number. */
static const char *const proto_names[PROTO_ERR_COUNT] = {
    "FARENA_OK",
    "FARENA_EBADREQUEST",
    "FARENA_EUNKNOWNMETHOD",
    "FARENA_ENOSUCHHANDLE",
    "FARENA_ENOSUCHNAME",
    "FARENA_ENAMETAKEN",
    "FARENA_EOUTOFBOUNDS",
    "FARENA_EFILEFULL",
    "FARENA_EDUPLICATEINDEX",
    "FARENA_EMISSINGINDEX",
    "FARENA_EINDEXMISMATCH",
    "FARENA_EEMPTY",
    "FARENA_ETOOLARGE",
    "FARENA_ENOSPACE",
    "FARENA_ELIMIT",
    "FARENA_EIOERROR",
    "FARENA_ESHUTTINGDOWN",
};

#define OWN_COUNT (sizeof(own_names) / sizeof(own_names[0]))
_Static_assert(sizeof(own_texts) == sizeof(own_names), "one text per own code");
_Static_assert(FARENA_ETIMEDOUT == FARENA_ECONNECT - (int)OWN_COUNT + 1, "own codes are dense");

/* Returns the version number. */
unsigned farena_version(void)
{
    return FARENA_VERSION_HEX;
}

#define STR2(x) #x
#define STR(x)  STR2(x)

/* Returns the version string. */
const char *farena_version_string(void)
{
    return STR(FARENA_VERSION_MAJOR) "." STR(FARENA_VERSION_MINOR) "." STR(FARENA_VERSION_PATCH);
}

/* Describes a code. */
const char *farena_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err < 0 && err > -PROTO_ERR_COUNT)
        return proto_err_describe((enum proto_err) - err);
    if (err <= FARENA_ECONNECT && err > FARENA_ECONNECT - (int)OWN_COUNT)
        return own_texts[FARENA_ECONNECT - err];
    return "unknown farena error code";
}

/* Names a code. */
const char *farena_errname(int err)
{
    if (err <= 0 && err > -PROTO_ERR_COUNT)
        return proto_names[-err];
    if (err <= FARENA_ECONNECT && err > FARENA_ECONNECT - (int)OWN_COUNT)
        return own_names[FARENA_ECONNECT - err];
    return NULL;
}

/* Names a protocol method. */
const char *farena_method_name(unsigned i)
{
    if (i >= PROTO_M_COUNT)
        return NULL;
    return proto_method_name((enum proto_method)i);
}
