/* The daemon's error; see err.h. */
#include "err.h"

#include <stdio.h>

/* Fills *e; see err.h. */
int err_set(struct err *e, enum proto_err code, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return -1;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}
