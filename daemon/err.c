/* The daemon's error; see err.h. */
#include "err.h"

#include <stdio.h>

/* Fills *e from a va_list. */
static int err_vset(struct err *e, enum proto_err code, int64_t item, const char *fmt, va_list ap)
{
    if (e == NULL)
        return -1;
    e->code = code;
    e->item = item;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return -1;
}

/* Fills *e; see err.h. */
int err_set(struct err *e, enum proto_err code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    err_vset(e, code, -1, fmt, ap);
    va_end(ap);
    return -1;
}

/* Fills *e with an item; see err.h. */
int err_set_item(struct err *e, enum proto_err code, uint32_t k, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    err_vset(e, code, (int64_t)k, fmt, ap);
    va_end(ap);
    return -1;
}
