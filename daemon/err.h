/* The daemon's error: a protocol error code and a human message. It is the
 * error type of the store, the registry, the method table and the socket
 * setup alike, so an error travels from where it happens to the reply (or
 * the log) unchanged. */
#ifndef FARENA_DAEMON_ERR_H
#define FARENA_DAEMON_ERR_H

#include <stdarg.h>
#include <stdint.h>

#include "proto_errors.h"

/* Filled only when a call fails; owned by the caller (usually on its
 * stack). msg is NUL-terminated and at most 159 bytes long. */
struct err {
    enum proto_err code;
    char msg[160];
    int64_t item; /* the failing item of a batch, or -1 */
};

/* Fills *e, if e is not NULL, with code and a printf-style message (item
 * -1). Returns -1, so a failing path can end with return err_set(...). */
int err_set(struct err *e, enum proto_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same for an error about item k of a batch: the reply carries k as
 * data too (PROTOCOL.md 2.2), the message still says it for humans. */
int err_set_item(struct err *e, enum proto_err code, uint32_t k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
