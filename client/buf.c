/* struct farena_buf, the caller's growable byte buffer, and UTF-8 validation. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Grows buf so that extra bytes plus a NUL fit after len. */
int farena_buf_reserve(struct farena_buf *buf, size_t extra)
{
    size_t need, cap;
    uint8_t *p;

    if (buf == NULL || buf->len > buf->cap || (buf->data == NULL && buf->cap != 0))
        return FARENA_EINVAL;
    if (extra >= SIZE_MAX - buf->len)
        return FARENA_ENOMEM;
    need = buf->len + extra + 1;
    if (need <= buf->cap)
        return 0;
    cap = buf->cap < 64 ? 64 : buf->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(buf->data, cap);
    if (p == NULL)
        return FARENA_ENOMEM;
    buf->data = p;
    buf->cap = cap;
    return 0;
}

/* Empties buf, keeping its memory. */
void farena_buf_clear(struct farena_buf *buf)
{
    if (buf == NULL)
        return;
    buf->len = 0;
    if (buf->data != NULL && buf->cap > 0)
        buf->data[0] = 0;
}

/* Frees buf's memory. */
void farena_buf_free(struct farena_buf *buf)
{
    if (buf == NULL)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

/* Appends n bytes and keeps a NUL after them. */
int cl_buf_append(struct farena_buf *buf, const void *p, size_t n)
{
    int err = farena_buf_reserve(buf, n);

    if (err != 0)
        return err;
    if (n > 0)
        memcpy(buf->data + buf->len, p, n);
    buf->len += n;
    buf->data[buf->len] = 0;
    return 0;
}

/* Validates UTF-8 with the table of well-formed byte sequences (Unicode
 * 15, table 3-7): the second byte's range depends on the first so that
 * overlong forms, surrogates and code points above U+10FFFF are refused.
 * ASCII runs are skipped eight bytes at a time. */
int cl_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t b = p[i];
        uint8_t lo = 0x80, hi = 0xBF;
        size_t k;

        if (b < 0x80) {
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                i += 8;
            }
            while (i < n && p[i] < 0x80)
                i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF) {
            k = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            k = 2;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            k = 3;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xBF)
                return 0;
        i += k + 1;
    }
    return 1;
}
